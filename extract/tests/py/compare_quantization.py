#!/usr/bin/env python3
"""Holds a quantized model that extract wrote against ONNX Runtime's own
quantize_static (QDQ, MinMax, per-channel, uint8 activations, int8
weights), tensor by tensor, on the same calibration images:

    compare_quantization.py FP32_MODEL OURS_INT8 --resize R --crop C
        --weight-bits 7|8 IMAGE...

ONNX Runtime quantizes FP32_MODEL cut to OURS_INT8's outputs (so both
quantize the same graph), calibrated on the IMAGEs through PIL and the
reference transform. Then, for both models:

  activations: every QuantizeLinear's input tensor (ours write `t/fp32`
               for a tensor `t`) with its scale and zero point;
  weights:     each Conv / Gemm / MatMul's per-channel weight scales, by
               the tensor the node writes (names of folded weights differ).

Two differences of form compute the same numbers and are listed apart
(`equivalent`), not as differences: ONNX Runtime's pre-processing fuses a
constant Pad into the Conv that reads it, where ours keeps the Pad and
quantizes its output with its input's parameters; and ONNX Runtime
quantizes a Flatten (Reshape, ...) that writes a graph output with its
input's parameters, where ours flattens the dequantized values.

Prints one JSON object: the pairs, the tensors only one side quantizes,
the largest relative scale difference and the zero points that differ.
"""
import argparse
import json
import os
import sys
import tempfile

import numpy as np
import onnx
from onnx import numpy_helper

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "..", "scripts", "lib"))
from reference import ort_int8  # noqa: E402


def base(name):
    """The tensor a quantized name stands for: ours write `t/fp32` before
    quantizing `t`; ONNX Runtime renames a graph output's producer to
    `t_QuantizeLinear_Input`."""
    for suffix in ("/fp32", "_QuantizeLinear_Input"):
        if name.endswith(suffix):
            return name[: -len(suffix)]
    return name


# Operators whose output carries its input's values (or zeros added): a
# quantized output of one with its input's parameters loses nothing more.
MOVES = ("Pad", "Flatten", "Reshape", "Squeeze", "Unsqueeze", "Transpose")


def params(model):
    """(activations, weights, equivalent): activations tensor -> (scale,
    zero point); weights by the tensor their node writes; `equivalent` the
    outputs of MOVES quantized with their input's parameters, set apart."""
    g = model.graph
    inits = {t.name: numpy_helper.to_array(t) for t in g.initializer}
    produced_by = {o: n for n in g.node for o in n.output}
    acts = {}
    for n in g.node:
        if n.op_type == "QuantizeLinear":
            s, z = inits[n.input[1]], inits[n.input[2]]
            acts[base(n.input[0])] = (float(s), int(z))
    # A DequantizeLinear's output names the tensor it restores (ours: `t`;
    # ONNX Runtime's: `t_DequantizeLinear_Output`): a MOVE reading one reads
    # that tensor.
    restored = {}
    for n in g.node:
        if n.op_type == "DequantizeLinear":
            q = produced_by.get(n.input[0])
            if q is not None and q.op_type == "QuantizeLinear":
                restored[n.output[0]] = base(q.input[0])
    equivalent = []
    for n in g.node:
        if n.op_type in MOVES:
            src, out = restored.get(n.input[0]), base(n.output[0])
            if src in acts and out in acts and acts[src] == acts[out]:
                equivalent.append(out)
                del acts[out]
    weights = {}
    for n in g.node:
        if n.op_type not in ("Conv", "Gemm", "MatMul") or len(n.input) < 2:
            continue
        dq = produced_by.get(n.input[1])
        if dq is None or dq.op_type != "DequantizeLinear" or dq.input[0] not in inits:
            continue
        weights[base(n.output[0])] = [float(v) for v in np.atleast_1d(inits[dq.input[1]])]
    return acts, weights, sorted(equivalent)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("fp32")
    ap.add_argument("ours")
    ap.add_argument("images", nargs="+")
    ap.add_argument("--resize", type=int, required=True)
    ap.add_argument("--crop", type=int, required=True)
    ap.add_argument("--weight-bits", type=int, choices=[7, 8], required=True)
    a = ap.parse_args()

    ours = onnx.load(a.ours)
    outputs = [o.name for o in ours.graph.output]
    with tempfile.TemporaryDirectory() as d:
        cut = os.path.join(d, "cut.onnx")
        full = onnx.load(a.fp32)
        onnx.save(full, os.path.join(d, "full.onnx"))
        onnx.utils.extract_model(os.path.join(d, "full.onnx"), cut, [full.graph.input[0].name], outputs)
        pre = {"resize": a.resize, "crop": a.crop, "mean": [0.485, 0.456, 0.406], "std": [0.229, 0.224, 0.225],
               "decode": "exact"}
        theirs = ort_int8(onnx.load(cut), a.images, pre, a.weight_bits)

    (oa, ow, oe), (ta, tw, te) = params(ours), params(theirs)
    pairs, worst, zero_diff = {}, 0.0, []
    for name in sorted(set(oa) & set(ta)):
        (s1, z1), (s2, z2) = oa[name], ta[name]
        rel = abs(s1 - s2) / max(s2, 1e-30)
        worst = max(worst, rel)
        if z1 != z2:
            zero_diff.append(name)
        pairs[name] = {"ours": [s1, z1], "ort": [s2, z2], "relative": rel}
    weights = {}
    for name in sorted(set(ow) & set(tw)):
        s1, s2 = np.array(ow[name]), np.array(tw[name])
        rel = float(np.max(np.abs(s1 - s2) / np.maximum(s2, 1e-30))) if s1.shape == s2.shape else float("inf")
        worst = max(worst, rel)
        weights[name] = {"channels": [len(s1), len(s2)], "relative": rel}
    print(json.dumps({
        "activations": pairs,
        "weights": weights,
        "equivalent": {"ours": oe, "ort": te},
        "only_ours": sorted(set(oa) - set(ta)),
        "only_ort": sorted(set(ta) - set(oa)),
        "weights_only_ours": sorted(set(ow) - set(tw)),
        "weights_only_ort": sorted(set(tw) - set(ow)),
        "worst_relative_scale": worst,
        "zero_points_differ": zero_diff,
    }, indent=1))


if __name__ == "__main__":
    main()
