#!/usr/bin/env python3
"""The field's reference for a feature file: PIL + onnxruntime's Python API.

For every row of a feature file written by `extract`, recompute the layer's
features the way a PyTorch user would (PIL decode, torchvision's eval
transform in PIL + numpy, onnxruntime on the same model) and compare them by
cosine similarity. Prints one JSON object; exits 1 when any image is below
--min-cosine.

    .venv/bin/python scripts/reference-features.py features/val.parquet \
        --model models/resnet50.onnx --layer avgpool
"""
import argparse
import json
import os
import sys

import numpy as np
import onnx
import onnxruntime as ort
import pyarrow.parquet as pq
from PIL import Image, ImageOps


def load_rgb(path):
    im = Image.open(path)
    # extract applies EXIF orientation (torchvision's folder loader does not).
    im = ImageOps.exif_transpose(im)
    if im.mode in ("I;16", "I;16B", "I;16L", "I"):
        # extract scales 16-bit samples to 8 bits; PIL's convert would clip them.
        a = np.asarray(im, dtype=np.float64)
        im = Image.fromarray(np.clip(np.floor(a / 257 + 0.5), 0, 255).astype(np.uint8), "L")
    return im.convert("RGB")


def transform(im, resize, crop, mean, std):
    """torchvision: Resize(resize) (bilinear, antialiased) + CenterCrop(crop) + ToTensor + Normalize."""
    w, h = im.size
    if w <= h:
        nw, nh = resize, int(resize * h / w)
    else:
        nw, nh = int(resize * w / h), resize
    im = im.resize((nw, nh), Image.BILINEAR)
    top = int(round((nh - crop) / 2.0))
    left = int(round((nw - crop) / 2.0))
    a = np.asarray(im.crop((left, top, left + crop, top + crop)), dtype=np.float32) / np.float32(255)
    a = (a - np.asarray(mean, np.float32)) / np.asarray(std, np.float32)
    return a.transpose(2, 0, 1)


def pool(x, kind):
    x = x.reshape(x.shape[0], x.shape[1], -1)
    if kind == "none":
        return x.reshape(x.shape[0], -1)
    avg, mx = x.mean(axis=2, dtype=np.float64).astype(np.float32), x.max(axis=2)
    return {"avg": avg, "max": mx, "avgmax": np.concatenate([avg, mx], axis=1)}[kind]


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("features")
    ap.add_argument("--model", required=True)
    ap.add_argument("--layer", default="avgpool")
    ap.add_argument("--min-cosine", type=float, default=0.999)
    ap.add_argument("--batch", type=int, default=16)
    args = ap.parse_args()

    table = pq.read_table(args.features)
    meta = {k.decode(): v.decode() for k, v in table.schema.metadata.items()}
    layer = json.loads(meta["extract.layers"])[args.layer]
    pre = json.loads(meta["extract.preprocess"])
    root = meta["extract.root"]

    model = onnx.load(args.model)
    del model.graph.output[:]
    model.graph.output.append(onnx.helper.make_tensor_value_info(layer["tensor"], onnx.TensorProto.FLOAT, None))
    sess = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    inp = sess.get_inputs()[0]
    fixed = inp.shape[0] if isinstance(inp.shape[0], int) else None

    paths = table.column("path").to_pylist()
    ours = np.asarray(table.column(args.layer).combine_chunks().flatten()).reshape(len(paths), -1)
    cosines, max_diff = [], []
    step = fixed or args.batch
    for i in range(0, len(paths), step):
        batch = np.stack([transform(load_rgb(os.path.join(root, p)), pre["resize"], pre["crop"], pre["mean"], pre["std"])
                          for p in paths[i:i + step]])
        ref = pool(sess.run(None, {inp.name: batch})[0], layer["pool"])
        mine = ours[i:i + step]
        cos = (ref * mine).sum(1) / (np.linalg.norm(ref, axis=1) * np.linalg.norm(mine, axis=1))
        cosines.extend(cos.tolist())
        max_diff.extend(np.abs(ref - mine).max(axis=1).tolist())
    cosines = np.asarray(cosines)
    worst = int(np.argmin(cosines))
    report = {
        "rows": len(paths),
        "layer": args.layer,
        "min_cosine": float(cosines.min()),
        "mean_cosine": float(cosines.mean()),
        "worst": paths[worst],
        "below": [p for p, c in zip(paths, cosines) if c < args.min_cosine],
        # Per image: [cosine, largest absolute difference]. Losslessly stored
        # images decode to the same pixels in both, so there the difference is 0.
        "images": {p: [float(c), float(d)] for p, c, d in zip(paths, cosines, max_diff)},
    }
    print(json.dumps(report))
    sys.exit(1 if report["below"] else 0)


if __name__ == "__main__":
    main()
