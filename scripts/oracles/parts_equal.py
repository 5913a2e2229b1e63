#!/usr/bin/env python3
"""Checks that a folder of parts (extract --shard) is a single run, row for
row: the same paths in the same order, the same labels, the same feature
bits in every column. Prints one line saying so, or exits 1 saying where
they differ.

    parts_equal.py FOLDER SINGLE.parquet N"""
import os
import sys

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq


def main():
    folder, single, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
    names = sorted(f for f in os.listdir(folder) if not f.startswith("."))
    want = [f"part-{k:05d}-of-{n:05d}.parquet" for k in range(n)]
    if names != want:
        sys.exit(f"parts_equal: {folder} holds {names}, expected {want}")
    parts = pa.concat_tables(pq.read_table(os.path.join(folder, f)) for f in names)
    whole = pq.read_table(single)
    if parts.schema.names != whole.schema.names:
        sys.exit(f"parts_equal: columns {parts.schema.names} vs {whole.schema.names}")
    for col in whole.schema.names:
        a, b = parts.column(col).combine_chunks(), whole.column(col).combine_chunks()
        if pa.types.is_fixed_size_list(a.type):
            a = np.asarray(a.flatten()).view(np.uint32)
            b = np.asarray(b.flatten()).view(np.uint32)
            same = a.shape == b.shape and bool((a == b).all())
        else:
            same = a.to_pylist() == b.to_pylist()
        if not same:
            sys.exit(f"parts_equal: column {col} differs between the parts and the single run")
    print(f"parts == single run: {whole.num_rows} rows, {len(whole.schema.names) - 3} feature columns, bit for bit")


if __name__ == "__main__":
    main()
