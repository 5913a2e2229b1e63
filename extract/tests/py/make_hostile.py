#!/usr/bin/env python3
"""Writes the hostile-input suite's inputs and asks PIL what it makes of
them (the oracle the images crate follows):

    make_hostile.py OUT_DIR

OUT_DIR/images/{bright,dark}/*.png   small images, bright and dark
OUT_DIR/bombs/icc/bomb.png           a 32x32 PNG whose iCCP chunk inflates to 64 MB
OUT_DIR/bombs/icc/fine.png           an ordinary image beside it
OUT_DIR/nan.onnx                     a model whose output is log(mean of the image):
                                     NaN on a dark image, finite on a bright one

Prints one JSON object: what PIL did with the bomb.
"""
import io
import json
import os
import struct
import sys
import zlib

import numpy as np
import onnx
from onnx import TensorProto, helper
from PIL import Image


def png(pixels):
    out = io.BytesIO()
    Image.fromarray(pixels).save(out, format="PNG")
    return out.getvalue()


def with_chunk(data, kind, body):
    """`data` (a PNG) with a chunk inserted after IHDR."""
    chunk = struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body) & 0xFFFFFFFF)
    at = 8 + 25
    return data[:at] + chunk + data[at:]


def main():
    out = sys.argv[1]
    rng = np.random.default_rng(7)
    for cls, lo in (("bright", 200), ("dark", 0)):
        os.makedirs(os.path.join(out, "images", cls), exist_ok=True)
        for i in range(2):
            a = rng.integers(lo, lo + 40, (40, 48, 3), dtype=np.uint8)
            with open(os.path.join(out, "images", cls, f"{i}.png"), "wb") as f:
                f.write(png(a))

    icc = os.path.join(out, "bombs", "icc")
    os.makedirs(icc, exist_ok=True)
    base = png(rng.integers(0, 255, (32, 32, 3), dtype=np.uint8))
    body = b"icc\0\0" + zlib.compress(b"\0" * (64 << 20), 9)
    bomb = os.path.join(icc, "bomb.png")
    with open(bomb, "wb") as f:
        f.write(with_chunk(base, b"iCCP", body))
    with open(os.path.join(icc, "fine.png"), "wb") as f:
        f.write(base)
    try:
        Image.open(bomb).load()
        pil = "read"
    except Exception as e:  # the oracle's answer, whatever it is
        pil = f"{type(e).__name__}: {e}"

    # log(ReduceMean(x)) over channels and pixels: the normalized mean of a
    # dark image is negative.
    x = helper.make_tensor_value_info("input", TensorProto.FLOAT, ["N", 3, 224, 224])
    y = helper.make_tensor_value_info("logmean", TensorProto.FLOAT, ["N", 1])
    axes = helper.make_tensor("axes", TensorProto.INT64, [3], [1, 2, 3])
    shape = helper.make_tensor("shape", TensorProto.INT64, [2], [-1, 1])
    nodes = [
        helper.make_node("ReduceMean", ["input", "axes"], ["mean"], keepdims=0),
        helper.make_node("Log", ["mean"], ["log"]),
        helper.make_node("Reshape", ["log", "shape"], ["logmean"]),
    ]
    graph = helper.make_graph(nodes, "nan", [x], [y], initializer=[axes, shape])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    onnx.save(model, os.path.join(out, "nan.onnx"))
    print(json.dumps({"pil_bomb": pil, "bomb_bytes": os.path.getsize(bomb)}))


if __name__ == "__main__":
    main()
