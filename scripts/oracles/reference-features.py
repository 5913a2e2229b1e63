#!/usr/bin/env python3
"""The field's reference for a feature file: PIL + onnxruntime's Python API.

For every row of a feature file written by `extract`, recompute the layer's
features the way a PyTorch user would (PIL decode, torchvision's eval
transform in PIL + numpy, onnxruntime on the same model) and compare them by
cosine similarity. In a file of views (`extract --views`), each row gets its
view as FEATURE-FILE.md draws it. Prints one JSON object; exits 1 when any
row is below --min-cosine.

    .venv/bin/python scripts/oracles/reference-features.py features/val.parquet \
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

# The shared modules (reference, photos, ...) live in scripts/lib.
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "../lib"))
from reference import draft_of, int8_weight_bits, load_rgb, ort_int8, pool, resolve_layer, transform, view_tensors


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("features")
    ap.add_argument("--model", required=True)
    ap.add_argument("--layer", default="avgpool",
                    help="stem, layer1..layer4, avgpool (found in the model here, not taken from the file) or a raw tensor name")
    ap.add_argument("--tensor", help="compute this tensor of the model for the column --layer (a test names the "
                                     "tensor it planted; default: find the layer in the model here)")
    ap.add_argument("--pool", choices=["avg", "max", "avgmax", "none"],
                    help="pooling to apply [default: what the file records]")
    ap.add_argument("--min-cosine", type=float, default=0.999)
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--int8-calibrate", type=int, metavar="N",
                    help="quantize the model with ONNX Runtime's own quantize_static first (QDQ, per-channel int8 "
                         "weights, uint8 activations, MinMax), calibrated on N of the file's images taken by "
                         "extract's rule: rows k * rows // N for k < N, in the file's order")
    ap.add_argument("--int8-weight-bits", choices=["auto", "7", "8"], default="auto",
                    help="int8 weights' range: 7 is quantize_static's reduce_range [default: auto, 7 on an x86 CPU "
                         "without VNNI, as ONNX Runtime's guide says]")
    ap.add_argument("--fp16", action="store_true",
                    help="convert the model with ONNX Runtime's own float16 converter first "
                         "(onnxruntime.transformers.float16, keep_io_types=True)")
    args = ap.parse_args()

    table = pq.read_table(args.features)
    meta = {k.decode(): v.decode() for k, v in table.schema.metadata.items()}
    recorded = json.loads(meta["extract.layers"])[args.layer]
    kind = args.pool or recorded["pool"]
    pre = json.loads(meta["extract.preprocess"])
    root = meta["extract.root"]

    model = onnx.load(args.model)
    tensor = args.tensor or resolve_layer(model, args.layer)
    del model.graph.output[:]
    model.graph.output.append(onnx.helper.make_tensor_value_info(tensor, onnx.TensorProto.FLOAT, None))
    paths = table.column("path").to_pylist()
    if args.int8_calibrate:
        model = ort_int8(model, [os.path.join(root, paths[k * len(paths) // args.int8_calibrate]) for k in range(args.int8_calibrate)], pre,
                         int8_weight_bits(args.int8_weight_bits))
    if args.fp16:
        from onnxruntime.transformers.float16 import convert_float_to_float16
        model = convert_float_to_float16(model, keep_io_types=True)
    sess = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    inp = sess.get_inputs()[0]
    fixed = inp.shape[0] if isinstance(inp.shape[0], int) else None

    ours = np.asarray(table.column(args.layer).combine_chunks().flatten()).reshape(len(paths), -1)
    cosines, max_diff = [], []
    step = fixed or args.batch
    if pre.get("views"):
        # A file of views: each image's rows are its views 0..K-1, in order.
        views = table.column("view").to_pylist()
        inputs = {}
        for p, v in zip(paths, views):
            if v == 0:
                inputs[p] = view_tensors(os.path.join(root, p), p, pre)

        def model_input(k):
            return inputs[paths[k]][views[k]]
    else:
        def model_input(k):
            return transform(load_rgb(os.path.join(root, paths[k]), draft_of(pre)), pre["resize"], pre["crop"], pre["mean"], pre["std"])
    for i in range(0, len(paths), step):
        batch = np.stack([model_input(k) for k in range(i, min(i + step, len(paths)))])
        ref = pool(sess.run(None, {inp.name: batch})[0], kind)
        mine = ours[i:i + step]
        cos = (ref * mine).sum(1) / (np.linalg.norm(ref, axis=1) * np.linalg.norm(mine, axis=1))
        cosines.extend(cos.tolist())
        max_diff.extend(np.abs(ref - mine).max(axis=1).tolist())
    cosines = np.asarray(cosines)
    worst = int(np.argmin(cosines))
    report = {
        "rows": len(paths),
        "layer": args.layer,
        "tensor": tensor,
        "recorded_tensor": recorded["tensor"],
        "pool": kind,
        "fp16": args.fp16,
        "int8_weight_bits": int8_weight_bits(args.int8_weight_bits) if args.int8_calibrate else None,
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
