#!/usr/bin/env python3
"""Reads a folder of parts (extract --shard) as one table, the way users do:
pyarrow.dataset, polars and DuckDB, each over the folder's *.parquet files.
Prints, per reader, the row count, the paths in order and the sum of the
avgpool column, as one JSON object.

    read_parts.py FOLDER"""
import json
import os
import sys

import duckdb
import polars as pl
import pyarrow.compute as pc
import pyarrow.dataset as ds


def main():
    folder = sys.argv[1]
    glob = os.path.join(folder, "*.parquet")
    out = {}

    table = ds.dataset(folder, format="parquet").to_table()
    flat = pc.list_flatten(table.column("avgpool"))
    out["pyarrow"] = {"rows": table.num_rows, "paths": table.column("path").to_pylist(),
                      "avgpool_sum": float(pc.sum(flat).as_py())}

    df = pl.read_parquet(glob)
    out["polars"] = {"rows": df.height, "paths": df["path"].to_list(),
                     "avgpool_sum": float(df["avgpool"].arr.sum().sum())}

    con = duckdb.connect()
    # Part names sort in the parts' order: ordered by file, then row, it is the single run's order.
    rows = con.execute(
        f"select path, list_sum(avgpool::double[]) from read_parquet('{glob}', filename=true, file_row_number=true) "
        f"order by filename, file_row_number").fetchall()
    out["duckdb"] = {"rows": len(rows), "paths": [r[0] for r in rows], "avgpool_sum": float(sum(r[1] for r in rows))}
    print(json.dumps(out))


if __name__ == "__main__":
    main()
