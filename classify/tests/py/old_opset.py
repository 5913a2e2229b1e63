#!/usr/bin/env python3
"""A copy of a model declared at an older opset (11), as old exporters
wrote them; with --dropout, also a Dropout after the first Relu (an
operator whose form changed by opset 13: its ratio became an input).

    old_opset.py IN.onnx OUT.onnx [--dropout]"""
import sys

import onnx
from onnx import helper


def main():
    src, dst = sys.argv[1], sys.argv[2]
    m = onnx.load(src)
    for o in m.opset_import:
        if o.domain in ("", "ai.onnx"):
            o.version = 11
    if "--dropout" in sys.argv[3:]:
        g = m.graph
        i, relu = next((i, n) for i, n in enumerate(g.node) if n.op_type == "Relu")
        out = relu.output[0]
        relu.output[0] = out + "_pre_dropout"
        g.node.insert(i + 1, helper.make_node("Dropout", [relu.output[0]], [out], ratio=0.0))
    onnx.checker.check_model(m)
    onnx.save(m, dst)


if __name__ == "__main__":
    main()
