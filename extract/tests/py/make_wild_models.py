#!/usr/bin/env python3
"""ONNX files of the kinds users bring, for extract's tests.

    make_wild_models.py OUT_DIR NARROW_MODEL

  caffe2.onnx     the narrow test model as Caffe2 exports write it: residual
                  joins as Sum, BatchNormalization unfused, and the running
                  statistics built at run time by ConstantOfShape. Computes
                  exactly what NARROW_MODEL computes.
  preact.onnx     a small pre-activation ResNet (v2): BN -> ReLU -> conv
                  branches, joins not followed by a ReLU; 2 stages.
  plain.onnx      a small CNN without residual joins, with a classifier head.
  external.onnx   NARROW_MODEL with its weights in external.onnx.data.
"""
import os
import sys

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper


def caffe2(narrow):
    m = onnx.load(narrow)
    g = m.graph
    for n in g.node:
        if n.op_type == "Add":
            n.op_type = "Sum"
            n.name = n.name.replace("Add", "Sum")
    # The stem's BatchNorm statistics (zeros and ones) come from ConstantOfShape.
    consts = []
    for name, value in (("bn1.running_mean", 0.0), ("bn1.running_var", 1.0)):
        init = next(t for t in g.initializer if t.name == name)
        arr = numpy_helper.to_array(init)
        assert np.all(arr == value)
        g.initializer.remove(init)
        shape = numpy_helper.from_array(np.array(arr.shape, np.int64), name + "_shape")
        g.initializer.append(shape)
        consts.append(helper.make_node("ConstantOfShape", [shape.name], [name],
                                       value=helper.make_tensor("v", TensorProto.FLOAT, [1], [value])))
    for c in reversed(consts):
        g.node.insert(0, c)
    del m.metadata_props[:]
    onnx.checker.check_model(m)
    return m


class Net:
    def __init__(self, seed):
        self.rng = np.random.default_rng(seed)
        self.nodes, self.inits, self.n = [], [], 0

    def w(self, shape, scale=None):
        self.n += 1
        fan = int(np.prod(shape[1:])) if len(shape) > 1 else shape[0]
        a = self.rng.standard_normal(shape) * (scale if scale is not None else np.sqrt(2.0 / fan))
        self.inits.append(numpy_helper.from_array(a.astype(np.float32), f"w{self.n}"))
        return f"w{self.n}"

    def op(self, op, inputs, **attrs):
        self.n += 1
        out = f"/{op.lower()}{self.n}/{op}_output_0"
        self.nodes.append(helper.make_node(op, inputs, [out], name=f"{op}{self.n}", **attrs))
        return out

    def conv(self, x, cin, cout, k, stride=1):
        return self.op("Conv", [x, self.w((cout, cin, k, k))], kernel_shape=[k, k], strides=[stride, stride],
                       pads=[k // 2] * 4)

    def bn_relu(self, x, c):
        scale = self.w((c,), 0.1)
        self.inits[-1] = numpy_helper.from_array((1 + numpy_helper.to_array(self.inits[-1])).astype(np.float32), scale)
        y = self.op("BatchNormalization", [x, scale, self.w((c,), 0.1), self.w((c,), 0.1),
                                           self.const_ones(c)], epsilon=1e-5)
        return self.op("Relu", [y])

    def const_ones(self, c):
        self.n += 1
        self.inits.append(numpy_helper.from_array(np.ones(c, np.float32), f"w{self.n}"))
        return f"w{self.n}"

    def model(self, x, classes, cin):
        y = self.op("GlobalAveragePool", [x])
        y = self.op("Flatten", [y], axis=1)
        y = self.op("Gemm", [y, self.w((classes, cin)), self.w((classes,), 0.0)], transB=1)
        self.nodes[-1].output[0] = "logits"
        g = helper.make_graph(self.nodes, "net",
                              [helper.make_tensor_value_info("image", TensorProto.FLOAT, ["N", 3, 224, 224])],
                              [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["N", classes])], self.inits)
        m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])
        m.ir_version = 8
        onnx.checker.check_model(m)
        return m


def preact():
    n = Net(3)
    x = n.conv("image", 3, 8, 7, 2)
    x = n.op("MaxPool", [x], kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1])
    c = 8
    for stage, (blocks, width, stride) in enumerate([(2, 8, 1), (2, 16, 2)]):
        for b in range(blocks):
            s = stride if b == 0 else 1
            pre = n.bn_relu(x, c)
            y = n.conv(pre, c, width, 3, s)
            y = n.bn_relu(y, width)
            y = n.conv(y, width, width, 3)
            shortcut = n.conv(pre, c, width, 1, s) if (s != 1 or c != width) else x
            x = n.op("Add", [y, shortcut])
            c = width
    x = n.bn_relu(x, c)
    return n.model(x, 10, c)


def plain():
    n = Net(4)
    x = n.op("Relu", [n.conv("image", 3, 8, 3, 2)])
    x = n.op("Relu", [n.conv(x, 8, 16, 3, 2)])
    return n.model(x, 5, 16)


def main():
    out, narrow = sys.argv[1], sys.argv[2]
    os.makedirs(out, exist_ok=True)
    onnx.save(caffe2(narrow), os.path.join(out, "caffe2.onnx"))
    onnx.save(preact(), os.path.join(out, "preact.onnx"))
    onnx.save(plain(), os.path.join(out, "plain.onnx"))
    m = onnx.load(narrow)
    onnx.save(m, os.path.join(out, "external.onnx"), save_as_external_data=True, all_tensors_to_one_file=True,
              location="external.onnx.data", size_threshold=0)


if __name__ == "__main__":
    main()
