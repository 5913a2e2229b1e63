#!/usr/bin/env python3
"""Reads a folder of parts (extract --shard) as one table, the way users do:
pyarrow.dataset, polars and DuckDB, each over the folder's *.parquet files.
Prints, per reader, the row count, the paths in order and the sha256 of
the avgpool values as little-endian float32 in row order (equal hashes:
the same values bit for bit), as one JSON object.

    read_parts.py FOLDER"""
import hashlib
import json
import os
import sys

import numpy as np

import duckdb
import polars as pl
import pyarrow.compute as pc
import pyarrow.dataset as ds


def digest(rows):
    return hashlib.sha256(np.asarray(rows, dtype="<f4").tobytes()).hexdigest()


def main():
    folder = sys.argv[1]
    glob = os.path.join(folder, "*.parquet")
    out = {}

    table = ds.dataset(folder, format="parquet").to_table()
    flat = pc.list_flatten(table.column("avgpool")).to_numpy()
    out["pyarrow"] = {"rows": table.num_rows, "paths": table.column("path").to_pylist(), "avgpool_sha256": digest(flat)}

    df = pl.read_parquet(glob)
    out["polars"] = {"rows": df.height, "paths": df["path"].to_list(), "avgpool_sha256": digest(df["avgpool"].to_list())}

    con = duckdb.connect()
    # Part names sort in the parts' order: ordered by file, then row, it is the single run's order.
    rows = con.execute(
        f"select path, avgpool from read_parquet('{glob}', filename=true, file_row_number=true) "
        f"order by filename, file_row_number").fetchall()
    out["duckdb"] = {"rows": len(rows), "paths": [r[0] for r in rows], "avgpool_sha256": digest([r[1] for r in rows])}
    print(json.dumps(out))


if __name__ == "__main__":
    main()
