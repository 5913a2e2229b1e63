#!/usr/bin/env python3
"""An ONNX model whose output `pixels` is its input flattened: run through
`extract --layer pixels`, it writes the exact tensors extract feeds a
backbone, one row per image.

    make_identity.py OUT.onnx"""
import sys

import onnx
from onnx import TensorProto, helper


def main():
    inp = helper.make_tensor_value_info("input", TensorProto.FLOAT, ["N", 3, None, None])
    out = helper.make_tensor_value_info("pixels", TensorProto.FLOAT, ["N", None])
    graph = helper.make_graph([helper.make_node("Flatten", ["input"], ["pixels"], axis=1)], "identity", [inp], [out])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], producer_name="make_identity")
    onnx.save(model, sys.argv[1])


if __name__ == "__main__":
    main()
