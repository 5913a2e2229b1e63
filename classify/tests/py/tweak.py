#!/usr/bin/env python3
"""Writes a modified copy of a feature file, for error tests.

    tweak.py IN OUT --format 2        # another extract.format
    tweak.py IN OUT --nan-row 3       # NaN in row 3 of every feature column
"""
import argparse

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("src")
    ap.add_argument("dst")
    ap.add_argument("--format")
    ap.add_argument("--nan-row", type=int)
    args = ap.parse_args()
    t = pq.read_table(args.src)
    meta = dict(t.schema.metadata)
    if args.format:
        meta[b"extract.format"] = args.format.encode()
    if args.nan_row is not None:
        for i, field in enumerate(t.schema):
            if pa.types.is_fixed_size_list(field.type):
                x = np.asarray(t.column(i).combine_chunks().flatten()).reshape(t.num_rows, -1).copy()
                x[args.nan_row, 0] = np.nan
                arr = pa.FixedSizeListArray.from_arrays(pa.array(x.ravel(), pa.float32()), type=field.type)
                t = t.set_column(i, field, pa.chunked_array([arr]))
    pq.write_table(t.replace_schema_metadata(meta), args.dst)


if __name__ == "__main__":
    main()
