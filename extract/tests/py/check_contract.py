#!/usr/bin/env python3
"""Reads a feature file the way users do (pyarrow, polars, DuckDB, pandas)
and prints what the contract fixes, as one JSON object.

    check_contract.py FEATURES [MODEL]

With MODEL, also the SHA-256 of the model file, computed here."""
import hashlib
import json
import sys

import duckdb
import pandas as pd
import polars as pl
import pyarrow.parquet as pq


def main():
    path = sys.argv[1]
    f = pq.ParquetFile(path)
    table = f.read()
    meta = {k.decode(): v.decode() for k, v in table.schema.metadata.items()}
    paths = table.column("path").to_pylist()
    labels = table.column("label").to_pylist()
    names = table.column("label_name").to_pylist()
    print(json.dumps({
        "schema": {fld.name: f"{fld.type}" + ("" if fld.nullable else " not null") for fld in table.schema},
        "format": meta["extract.format"],
        "version": meta["extract.version"],
        "model": json.loads(meta["extract.model"]),
        "classes": json.loads(meta["extract.classes"]),
        "layers": json.loads(meta["extract.layers"]),
        "preprocess": json.loads(meta["extract.preprocess"]),
        "root": meta["extract.root"],
        "skipped": json.loads(meta["extract.skipped"]),
        "rows": table.num_rows,
        "row_groups": f.num_row_groups,
        # Sorted, each path once (UTF-8 byte order, which Python's str order is).
        "sorted": all(a < b for a, b in zip(paths, paths[1:])),
        "model_file_sha256": hashlib.sha256(open(sys.argv[2], "rb").read()).hexdigest() if len(sys.argv) > 2 else None,
        "labels": {p: [l, n] for p, l, n in zip(paths, labels, names)},
        "polars_rows": pl.read_parquet(path).height,
        "duckdb_rows": duckdb.sql(f"select count(*) from read_parquet('{path}')").fetchone()[0],
        "pandas_rows": len(pd.read_parquet(path)),
    }))


if __name__ == "__main__":
    main()
