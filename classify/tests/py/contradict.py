#!/usr/bin/env python3
"""Writes a copy of a feature file that contradicts itself, as a hand or
another tool could, with pyarrow: the footer and the schema's metadata kept,
one thing made wrong.

    contradict.py IN OUT CASE

CASE: duplicate_path   row 1's path on row 2 as well
      label_name       row of class 1's label_name set to class 2's name
      duplicate_class  extract.classes names class 0 twice
      reserved_layer   the feature column renamed "label" (the footer too)
"""
import json
import sys

import pyarrow as pa
import pyarrow.parquet as pq


def main():
    src, dst, case = sys.argv[1:4]
    t = pq.read_table(src)
    meta = dict(t.schema.metadata)
    cols = {n: t.column(n).to_pylist() for n in t.column_names}
    classes = json.loads(meta[b"extract.classes"])
    if case == "duplicate_path":
        cols["path"][2] = cols["path"][1]
    elif case == "label_name":
        i = cols["label"].index(1)
        cols["label_name"][i] = classes[2]
    elif case == "duplicate_class":
        classes[1] = classes[0]
        meta[b"extract.classes"] = json.dumps(classes).encode()
    elif case == "reserved_layer":
        layers = json.loads(meta[b"extract.layers"])
        meta[b"extract.layers"] = json.dumps({"label": layers.pop("avgpool")}).encode()
    else:
        raise SystemExit(f"unknown case {case}")
    arrays = [pa.array(cols[n], type=t.schema.field(n).type) for n in t.column_names]
    names = ["label" if case == "reserved_layer" and n == "avgpool" else n for n in t.column_names]
    out = pa.Table.from_arrays(arrays, names=names).replace_schema_metadata(meta)
    pq.write_table(out, dst)


if __name__ == "__main__":
    main()
