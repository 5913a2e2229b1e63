#!/usr/bin/env python3
"""Checks a model written by `classify export` the way a user elsewhere
would run it: onnx.checker with full checking, then ONNX Runtime at every
graph optimization level on extract's own preprocessed images, against
`classify predict`'s rows. Prints one JSON object.

    check_export.py EXPORTED.onnx PIXELS.parquet PREDICT.csv

PIXELS.parquet holds, per image, the exact input tensor extract fed the
backbone (written by extract through an identity model: column `pixels`).
"""
import csv
import json
import sys

import numpy as np
import onnx
import onnxruntime as ort
import pyarrow.parquet as pq

LEVELS = {
    "disable_all": ort.GraphOptimizationLevel.ORT_DISABLE_ALL,
    "basic": ort.GraphOptimizationLevel.ORT_ENABLE_BASIC,
    "extended": ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED,
    "all": ort.GraphOptimizationLevel.ORT_ENABLE_ALL,
}


def main():
    exported, pixels_file, predict_csv = sys.argv[1:4]
    model = onnx.load(exported)
    onnx.checker.check_model(model, full_check=True)
    meta = {p.key: p.value for p in model.metadata_props}
    classes = json.loads(meta["classify.classes"])
    pre = json.loads(meta["classify.preprocess"])

    table = pq.read_table(pixels_file)
    x = np.stack(table.column("pixels").to_numpy(zero_copy_only=False)).astype(np.float32)
    x = x.reshape(len(x), 3, pre["crop"], pre["crop"])
    paths = table.column("path").to_pylist()

    with open(predict_csv, newline="") as f:
        rows = list(csv.DictReader(f))
    by_path = {r["path"]: r for r in rows}
    want_labels = [by_path[p]["predicted"] for p in paths]
    want_scores = np.array([[float(by_path[p][f"score_{c}"]) for c in classes] for p in paths])

    out = {
        "checker": "ok",
        "opset": max(o.version for o in model.opset_import if o.domain in ("", "ai.onnx")),
        "domains": sorted({n.domain or "ai.onnx" for n in model.graph.node}),
        "inputs": [(i.name, [d.dim_param or d.dim_value for d in i.type.tensor_type.shape.dim]) for i in model.graph.input],
        "outputs": [o.name for o in model.graph.output],
        "metadata": meta,
        "rows": len(paths),
        "levels": {},
    }
    for name, level in LEVELS.items():
        so = ort.SessionOptions()
        so.graph_optimization_level = level
        sess = ort.InferenceSession(exported, so, providers=["CPUExecutionProvider"])
        names = [o.name for o in sess.get_outputs()]
        # Two batches of different sizes: the batch dimension is dynamic.
        half = max(1, len(x) // 2)
        res = [sess.run(None, {sess.get_inputs()[0].name: part}) for part in (x[:half], x[half:]) if len(part)]
        got = {n: np.concatenate([r[i] for r in res]) for i, n in enumerate(names)}
        score_name = next(n for n in ("probabilities", "votes", "scores") if n in got)
        labels = [classes[int(i)] for i in got["label"]]
        scores = got[score_name].astype(np.float64)
        scale = np.maximum(np.abs(want_scores).max(axis=1, keepdims=True), 1.0)
        out["levels"][name] = {
            "label_dtype": str(got["label"].dtype),
            "labels_differ": [p for p, a, b in zip(paths, labels, want_labels) if a != b],
            "max_rel_score_diff": float((np.abs(scores - want_scores) / scale).max()),
            "score_output": score_name,
        }
    print(json.dumps(out))


if __name__ == "__main__":
    main()
