#!/usr/bin/env python3
"""Checks a model written by `classify export --input pixels` as a user
elsewhere would feed it: each image decoded by PIL and turned upright by
its EXIF orientation, its uint8 [height, width, 3] pixels straight into
ONNX Runtime. Compares the graph's own preprocessing (its tensor
classify/pixels/preprocessed, added as an output here) with the tensor
extract fed the backbone, and the labels and scores with `classify
predict`'s, and with PIL's own transform of the same pixels (torchvision's
eval transform: scripts/lib/reference.py), the independent oracle of the
resize. Prints one JSON object.

    check_pixels.py EXPORTED.onnx IMAGES_ROOT TENSORS.parquet PREDICT.csv [BATCH.onnx]

BATCH.onnx (`--input pixel-batch`, the same classifier): the photos of each
size that two or more share, as one batch, must get what EXPORTED gives
each of them alone.

TENSORS.parquet: per image, the exact input tensor extract --exact-decode
fed the backbone (extract through an identity model: column `pixels`).
"""
import csv
import json
import os
import sys

import numpy as np
import onnx
import onnxruntime as ort
import pyarrow.parquet as pq
from reference import load_rgb, transform

PREPROCESSED = "classify/pixels/preprocessed"


def main():
    exported, root, tensors_file, predict_csv = sys.argv[1:5]
    batch_model = sys.argv[5] if len(sys.argv) > 5 else None
    model = onnx.load(exported)
    onnx.checker.check_model(model, full_check=True)
    meta = {p.key: p.value for p in model.metadata_props}
    classes = json.loads(meta["classify.classes"])
    pre = json.loads(meta["classify.preprocess"])
    crop = pre["crop"]
    std = np.asarray(pre["std"], np.float64).reshape(3, 1, 1)
    model.graph.output.append(onnx.helper.make_tensor_value_info(PREPROCESSED, onnx.TensorProto.FLOAT, None))
    sess = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    names = [o.name for o in sess.get_outputs()]
    score_name = next(n for n in ("probabilities", "votes", "scores") if n in names)

    table = pq.read_table(tensors_file)
    paths = table.column("path").to_pylist()
    tensors = np.stack(table.column("pixels").to_numpy(zero_copy_only=False)).astype(np.float64)
    tensors = tensors.reshape(len(paths), 3, crop, crop)
    with open(predict_csv, newline="") as f:
        by_path = {r["path"]: r for r in csv.DictReader(f)}

    worst, off, values, agree, score_diff, sizes = 0.0, 0, 0, 0, 0.0, set()
    alone, by_size = {}, {}
    worst_pil, off_pil = 0.0, 0
    for path, want in zip(paths, tensors):
        image = load_rgb(os.path.join(root, path))
        pixels = np.asarray(image, dtype=np.uint8)
        sizes.add(pixels.shape[:2])
        got = dict(zip(names, sess.run(None, {"pixels": pixels})))
        alone[path] = got
        by_size.setdefault(pixels.shape, []).append((path, pixels))
        levels = np.abs(got[PREPROCESSED][0].astype(np.float64) - want) * std * 255.0
        worst = max(worst, float(levels.max()))
        off += int((levels > 0.5).sum())
        pil = transform(image, pre["resize"], crop, pre["mean"], pre["std"]).astype(np.float64)
        levels = np.abs(got[PREPROCESSED][0].astype(np.float64) - pil) * std * 255.0
        worst_pil = max(worst_pil, float(levels.max()))
        off_pil += int((levels > 0.5).sum())
        values += levels.size
        row = by_path[path]
        agree += classes[int(got["label"][0])] == row["predicted"]
        want_scores = np.array([float(row[f"score_{c}"]) for c in classes])
        score_diff = max(score_diff, float(np.abs(got[score_name][0] - want_scores).max()))
    batch = None
    if batch_model:
        bsess = ort.InferenceSession(batch_model, providers=["CPUExecutionProvider"])
        bnames = [o.name for o in bsess.get_outputs()]
        batched, labels_same, diff = 0, True, 0.0
        for group in (g for g in by_size.values() if len(g) > 1):
            got = dict(zip(bnames, bsess.run(None, {"pixels": np.stack([p for _, p in group])})))
            for i, (path, _) in enumerate(group):
                batched += 1
                labels_same &= int(got["label"][i]) == int(alone[path]["label"][0])
                diff = max(diff, float(np.abs(got[score_name][i] - alone[path][score_name][0]).max()))
        batch = {"images": batched, "labels_same": bool(labels_same), "max_score_diff": diff,
                 "input": [(i.name, i.shape) for i in bsess.get_inputs()]}
    print(json.dumps({
        "batch": batch,
        "images": len(paths),
        "sizes": len(sizes),
        "max_levels_vs_pil": worst_pil,
        "fraction_off_vs_pil": off_pil / values,
        "max_levels_vs_extract": worst,
        "fraction_off_vs_extract": off / values,
        "label_agreement": agree / len(paths),
        "max_score_diff": score_diff,
        "inputs": [(i.name, i.type, i.shape) for i in sess.get_inputs()],
        "input_doc": json.loads(meta["classify.input"]),
        "opset": max(o.version for o in model.opset_import if o.domain in ("", "ai.onnx")),
    }))


if __name__ == "__main__":
    main()
