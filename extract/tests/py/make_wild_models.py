#!/usr/bin/env python3
"""ONNX files of the kinds users bring, for extract's tests.

    make_wild_models.py OUT_DIR NARROW_MODEL
    make_wild_models.py --no-half OUT_FILE

  caffe2.onnx     the narrow test model as Caffe2 exports write it: residual
                  joins as Sum, BatchNormalization unfused, and the running
                  statistics built at run time by ConstantOfShape. Computes
                  exactly what NARROW_MODEL computes.
  preact.onnx     a small pre-activation ResNet (v2): BN -> ReLU -> conv
                  branches, joins not followed by a ReLU; 2 stages.
  plain.onnx      a small CNN without residual joins, with a classifier head.
  external.onnx   NARROW_MODEL with its weights in external.onnx.data.
  zoo-caffe2.onnx as the ONNX model zoo's Caffe2 conversions are: caffe2.onnx
                  with every initializer listed among the graph inputs too,
                  and a convolution whose weights ConstantOfShape makes.
  effnet.onnx     an EfficientNet-style network: swish, a depthwise conv, a
                  squeeze-excite gate (a broadcasting Mul), a Pad (an
                  operator static shape inference does not cover), and a
                  head whose pool is an AveragePool over the whole map.
  convhead.onnx   preact.onnx with a 1x1 Conv head on the pooled map, then Flatten.
  headless.onnx   NARROW_MODEL with its classifier (the Gemm) removed.

--no-half writes one model alone: an image input and a Floor, no operator
that computes in float16 (the output is the tensor "y").

--mobilenet writes one model alone: a MobileNetV2-style network (what the
int8 tests hold the quantizer to ONNX Runtime's on): Conv -> BN -> Clip(0, 6)
with constant bounds, depthwise 3x3 convs (group = channels) behind an
explicit Pad where they stride, linear 1x1 projections, a residual Add, then
GlobalAveragePool, Flatten and a Gemm head.

Also writes OUT_DIR/planted.json: for each model, the tensor its avgpool
is (and effnet's projection output, read by raw name).
"""
import json
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


def zoo_caffe2(narrow):
    m = caffe2(narrow)
    g = m.graph
    # Weights listed as inputs too (IR < 4 style), BN parameters included.
    have = {i.name for i in g.input}
    for t in g.initializer:
        if t.name not in have:
            g.input.append(helper.make_tensor_value_info(t.name, t.data_type, list(t.dims)))
    # One convolution's weights come from ConstantOfShape: the first block's 1x1 conv.
    conv = next(n for n in g.node if n.op_type == "Conv" and "layer1.0" in n.name and "conv1" in n.name)
    w = next(t for t in g.initializer if t.name == conv.input[1])
    shape = numpy_helper.from_array(np.array(w.dims, np.int64), "const_w_shape")
    g.initializer.append(shape)
    g.node.insert(0, helper.make_node("ConstantOfShape", [shape.name], ["const_w"],
                                      value=helper.make_tensor("v", TensorProto.FLOAT, [1], [0.02])))
    conv.input[1] = "const_w"
    onnx.checker.check_model(m)
    return m


def effnet():
    n = Net(5)
    def swish(x):
        return n.op("Mul", [x, n.op("Sigmoid", [x])])
    x = swish(n.conv("image", 3, 8, 3, 2))                       # 112
    # MBConv: expand 1x1, depthwise 3x3, squeeze-excite, project 1x1.
    e = swish(n.op("Conv", [x, n.w((24, 8, 1, 1))], kernel_shape=[1, 1]))
    n.inits.append(numpy_helper.from_array(np.array([0, 0, 1, 1, 0, 0, 1, 1], np.int64), "pads"))
    pads = "pads"
    p = n.op("Pad", [e, pads], mode="constant")
    d = swish(n.op("Conv", [p, n.w((24, 1, 3, 3))], kernel_shape=[3, 3], strides=[2, 2], group=24))  # 56
    s = n.op("GlobalAveragePool", [d])
    s = swish(n.op("Conv", [s, n.w((6, 24, 1, 1)), n.w((6,), 0.1)], kernel_shape=[1, 1]))
    s = n.op("Sigmoid", [n.op("Conv", [s, n.w((24, 6, 1, 1)), n.w((24,), 0.1)], kernel_shape=[1, 1])])
    d = n.op("Mul", [s, d])                                      # the gate first: broadcast from the left
    proj = n.op("Conv", [d, n.w((16, 24, 1, 1))], kernel_shape=[1, 1])
    x = swish(n.op("Conv", [proj, n.w((32, 16, 1, 1))], kernel_shape=[1, 1]))
    pooled = n.op("AveragePool", [x], kernel_shape=[56, 56])
    flat = n.op("Flatten", [pooled], axis=1)
    y = n.op("Gemm", [flat, n.w((5, 32)), n.w((5,), 0.0)], transB=1)
    n.nodes[-1].output[0] = "logits"
    g = helper.make_graph(n.nodes, "effnet",
                          [helper.make_tensor_value_info("image", TensorProto.FLOAT, ["N", 3, 224, 224])],
                          [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["N", 5])], n.inits)
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])
    m.ir_version = 8
    onnx.checker.check_model(m)
    return m, proj, flat


def mobilenet():
    n = Net(6)

    def bn(x, c):
        scale = n.w((c,), 0.1)
        n.inits[-1] = numpy_helper.from_array((1 + numpy_helper.to_array(n.inits[-1])).astype(np.float32), scale)
        return n.op("BatchNormalization", [x, scale, n.w((c,), 0.1), n.w((c,), 0.1), n.const_ones(c)], epsilon=1e-5)

    n.inits.append(numpy_helper.from_array(np.array(0.0, np.float32), "relu6_min"))
    n.inits.append(numpy_helper.from_array(np.array(6.0, np.float32), "relu6_max"))
    n.inits.append(numpy_helper.from_array(np.array([0, 0, 0, 0, 0, 0, 1, 1], np.int64), "pads"))

    def relu6(x):
        return n.op("Clip", [x, "relu6_min", "relu6_max"])

    def pointwise(x, cin, cout):
        return n.op("Conv", [x, n.w((cout, cin, 1, 1))], kernel_shape=[1, 1])

    def depthwise(x, c, stride):
        if stride == 2:
            # TensorFlow's "same" padding for a stride: one more at the end.
            x = n.op("Pad", [x, "pads"], mode="constant")
            return n.op("Conv", [x, n.w((c, 1, 3, 3))], kernel_shape=[3, 3], strides=[2, 2], group=c)
        return n.op("Conv", [x, n.w((c, 1, 3, 3))], kernel_shape=[3, 3], pads=[1, 1, 1, 1], group=c)

    def inverted(x, cin, cout, stride, expand=4):
        e = relu6(bn(pointwise(x, cin, cin * expand), cin * expand))
        d = relu6(bn(depthwise(e, cin * expand, stride), cin * expand))
        y = bn(pointwise(d, cin * expand, cout), cout)
        return n.op("Add", [x, y]) if stride == 1 and cin == cout else y

    x = relu6(bn(n.conv("image", 3, 8, 3, 2), 8))                # 112
    x = inverted(x, 8, 8, 1)
    x = inverted(x, 8, 16, 2)                                     # 56
    x = inverted(x, 16, 16, 1)
    x = relu6(bn(pointwise(x, 16, 32), 32))
    return n.model(x, 5, 32)


def convhead():
    m = preact()
    g = m.graph
    gemm = g.node[-1]
    flatten = g.node[-2]
    assert gemm.op_type == "Gemm" and flatten.op_type == "Flatten"
    pooled = flatten.input[0]
    w = next(t for t in g.initializer if t.name == gemm.input[1])
    b = next(t for t in g.initializer if t.name == gemm.input[2])
    wa = numpy_helper.to_array(w)
    g.initializer.remove(w)
    g.initializer.append(numpy_helper.from_array(wa.reshape(wa.shape[0], wa.shape[1], 1, 1), w.name))
    del g.node[-2:]
    g.node.append(helper.make_node("Conv", [pooled, w.name, b.name], ["head_conv"], name="head", kernel_shape=[1, 1]))
    g.node.append(helper.make_node("Flatten", ["head_conv"], ["logits"], name="head_flatten", axis=1))
    onnx.checker.check_model(m)
    return m, pooled


def headless(narrow):
    m = onnx.load(narrow)
    g = m.graph
    gemm = next(n for n in g.node if n.op_type == "Gemm")
    flat = gemm.input[0]
    g.node.remove(gemm)
    for t in list(g.initializer):
        if t.name in gemm.input[1:]:
            g.initializer.remove(t)
    del g.output[:]
    g.output.append(helper.make_tensor_value_info(flat, TensorProto.FLOAT, [None, None]))
    onnx.checker.check_model(m)
    return m, flat


def no_half():
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 3, 224, 224])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 3, 224, 224])
    g = helper.make_graph([helper.make_node("Floor", ["x"], ["y"], name="floor")], "no-half", [x], [y])
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])
    onnx.checker.check_model(m)
    return m


def main():
    if sys.argv[1] == "--no-half":
        onnx.save(no_half(), sys.argv[2])
        return
    if sys.argv[1] == "--mobilenet":
        onnx.save(mobilenet(), sys.argv[2])
        return
    out, narrow = sys.argv[1], sys.argv[2]
    os.makedirs(out, exist_ok=True)
    onnx.save(caffe2(narrow), os.path.join(out, "caffe2.onnx"))
    onnx.save(preact(), os.path.join(out, "preact.onnx"))
    onnx.save(plain(), os.path.join(out, "plain.onnx"))
    onnx.save(zoo_caffe2(narrow), os.path.join(out, "zoo-caffe2.onnx"))
    planted = {}
    m, proj, flat = effnet()
    onnx.save(m, os.path.join(out, "effnet.onnx"))
    planted["effnet"] = {"avgpool": flat, "projection": proj}
    m, pooled = convhead()
    onnx.save(m, os.path.join(out, "convhead.onnx"))
    planted["convhead"] = {"avgpool": pooled}
    m, flat = headless(narrow)
    onnx.save(m, os.path.join(out, "headless.onnx"))
    planted["headless"] = {"avgpool": flat}
    with open(os.path.join(out, "planted.json"), "w") as f:
        json.dump(planted, f)
    m = onnx.load(narrow)
    onnx.save(m, os.path.join(out, "external.onnx"), save_as_external_data=True, all_tensors_to_one_file=True,
              location="external.onnx.data", size_threshold=0)


if __name__ == "__main__":
    main()
