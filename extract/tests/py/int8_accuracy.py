#!/usr/bin/env python3
"""The field's int8 on a transfer task, for comparison with extract's:
ONNX Runtime's own quantize_static (QDQ, per-channel int8 weights, uint8
activations, MinMax; 7-bit weights where this CPU needs them) of MODEL,
calibrated on N images of TRAIN taken by extract's rule (the sorted list's
images k * len // N), through PIL; the LAYER features (4-D ones
average-pooled) of TRAIN and VAL at fp32 and at int8; scikit-learn's
LogisticRegression(C=1) on standardized features.

    int8_accuracy.py MODEL TRAIN_DIR VAL_DIR [--layer avgpool] [--calibrate 64] [--weight-bits auto]

Prints {"fp32": accuracy, "int8": accuracy, "between_image_cosine": median,
"weight_bits": 7 or 8} as JSON.
"""
import argparse
import json
import os

import numpy as np
import onnx
import onnxruntime as ort
from sklearn.linear_model import LogisticRegression
from sklearn.preprocessing import StandardScaler

from reference import int8_weight_bits, load_rgb, ort_int8, resolve_layer, transform

PRE = {"resize": 256, "crop": 224, "mean": [0.485, 0.456, 0.406], "std": [0.229, 0.224, 0.225]}


def listing(root):
    classes = sorted(d for d in os.listdir(root) if os.path.isdir(os.path.join(root, d)))
    rows = sorted((f"{c}/{f}", i) for i, c in enumerate(classes) for f in os.listdir(os.path.join(root, c)))
    return [os.path.join(root, p) for p, _ in rows], np.array([i for _, i in rows])


def features(model, paths):
    s = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    name = s.get_inputs()[0].name
    out = np.concatenate([s.run(None, {name: np.stack([transform(load_rgb(p)) for p in paths[i:i + 16]])})[0] for i in range(0, len(paths), 16)])
    return (out.mean(axis=(2, 3)) if out.ndim == 4 else out).reshape(len(paths), -1)


def accuracy(xt, yt, xv, yv):
    s = StandardScaler().fit(xt)
    m = LogisticRegression(C=1.0, max_iter=2000).fit(s.transform(xt), yt)
    return float((m.predict(s.transform(xv)) == yv).mean())


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("model")
    ap.add_argument("train")
    ap.add_argument("val")
    ap.add_argument("--layer", default="avgpool")
    ap.add_argument("--calibrate", type=int, default=64)
    ap.add_argument("--weight-bits", choices=["auto", "7", "8"], default="auto")
    a = ap.parse_args()
    model = onnx.load(a.model)
    tensor = resolve_layer(model, a.layer)
    del model.graph.output[:]
    model.graph.output.append(onnx.helper.make_tensor_value_info(tensor, onnx.TensorProto.FLOAT, None))
    (pt, yt), (pv, yv) = listing(a.train), listing(a.val)
    bits = int8_weight_bits(a.weight_bits)
    q = ort_int8(model, [pt[k * len(pt) // a.calibrate] for k in range(a.calibrate)], PRE, bits)
    fp = features(model, pt), features(model, pv)
    n = fp[1] / np.linalg.norm(fp[1], axis=1, keepdims=True)
    c = n @ n.T
    print(json.dumps({
        "fp32": accuracy(fp[0], yt, fp[1], yv),
        "int8": accuracy(features(q, pt), yt, features(q, pv), yv),
        "between_image_cosine": float(np.median(c[np.triu_indices(len(c), 1)])),
        "weight_bits": bits,
    }))


if __name__ == "__main__":
    main()
