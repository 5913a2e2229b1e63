#!/usr/bin/env python3
"""Write ResNet50 ONNX models with torchvision's topology and seeded weights.

Real ImageNet weights cannot be downloaded everywhere this project is built
and tested, so the tests run on models generated here. They are untrained:
their features carry no ImageNet semantics, but every layer, shape and
operator is that of torchvision's resnet50, so layer discovery, preprocessing
parity and the whole pipeline are exercised for real.

A ResNet50 with plain random weights is chaotic: one grey level of input noise
can swing its avgpool features to cosine ~0.99, which would make any parity
bar meaningless. Each residual branch is damped (a small scale on its last
batch norm), which keeps the network smooth while activations stay finite
and varied through all 50 layers.

Variants:
  torchvision  node and tensor names as torch.onnx.export writes them for
               torchvision.models.resnet50, dynamic batch, BatchNormalization
               nodes kept.
  foreign      the same network under other names (node_17, t42, ...), a fixed
               batch of 1, batch norm folded into the convolutions and a
               Reshape instead of Flatten, as other exporters write it.
"""
import argparse
import os
import sys

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

OPSET = 17
# torchvision resnet50: (blocks, bottleneck width, stride of the stage)
STAGES = [(3, 64, 1), (4, 128, 2), (6, 256, 2), (3, 512, 2)]
EXPANSION = 4


class Builder:
    def __init__(self, rng, foreign, damp, shift):
        self.rng = rng
        self.shift = shift
        self.foreign = foreign
        self.damp = damp
        self.nodes = []
        self.inits = []
        self.counter = 0

    def _name(self, scoped):
        if not self.foreign:
            return scoped
        self.counter += 1
        return f"t{self.counter}"

    def init(self, name, array, dtype=np.float32):
        self.inits.append(numpy_helper.from_array(array.astype(dtype), self._name(name)))
        return self.inits[-1].name

    def node(self, op, inputs, scope, **attrs):
        node_name = f"node_{len(self.nodes)}" if self.foreign else f"{scope}/{op}"
        out = self._name(f"{scope}/{op}_output_0")
        self.nodes.append(helper.make_node(op, inputs, [out], name=node_name, **attrs))
        return out

    def conv_bn(self, x, cin, cout, k, stride, scope, bn_scope, gamma=1.0):
        fan_in = cin * k * k
        w = self.rng.standard_normal((cout, cin, k, k)) * np.sqrt(2.0 / fan_in)
        g = np.full(cout, gamma)
        # A negative batch-norm shift makes the ReLUs sparse, as in a trained
        # network: without it every avgpool vector is dominated by one common
        # positive mean and different photos sit at cosine ~0.97 of each other,
        # too close for a parity bar at 0.999 to tell them apart.
        b = (self.rng.standard_normal(cout) * 0.1 + self.shift) * gamma
        mean = np.zeros(cout)
        var = np.ones(cout)
        eps = 1e-5
        pads = [k // 2] * 4
        if self.foreign:
            scale = g / np.sqrt(var + eps)
            wf = w * scale[:, None, None, None]
            bf = b - mean * scale
            return self.node(
                "Conv", [x, self.init(f"{scope}.weight", wf), self.init(f"{scope}.bias", bf)],
                f"/{scope}", kernel_shape=[k, k], strides=[stride, stride], pads=pads,
                dilations=[1, 1], group=1)
        y = self.node("Conv", [x, self.init(f"{scope}.weight", w)], f"/{scope}",
                      kernel_shape=[k, k], strides=[stride, stride], pads=pads,
                      dilations=[1, 1], group=1)
        return self.node(
            "BatchNormalization",
            [y, self.init(f"{bn_scope}.weight", g), self.init(f"{bn_scope}.bias", b),
             self.init(f"{bn_scope}.running_mean", mean), self.init(f"{bn_scope}.running_var", var)],
            f"/{bn_scope}",
            epsilon=eps, momentum=0.9)

    def bottleneck(self, x, cin, width, stride, prefix):
        cout = width * EXPANSION
        y = self.conv_bn(x, cin, width, 1, 1, f"{prefix}.conv1", f"{prefix}.bn1")
        y = self.node("Relu", [y], f"/{prefix}/relu")
        y = self.conv_bn(y, width, width, 3, stride, f"{prefix}.conv2", f"{prefix}.bn2")
        y = self.node("Relu", [y], f"/{prefix}/relu_1")
        y = self.conv_bn(y, width, cout, 1, 1, f"{prefix}.conv3", f"{prefix}.bn3", gamma=self.damp)
        if stride != 1 or cin != cout:
            x = self.conv_bn(x, cin, cout, 1, stride, f"{prefix}.downsample.0", f"{prefix}.downsample.1")
        y = self.node("Add", [y, x], f"/{prefix}/add")
        return self.node("Relu", [y], f"/{prefix}/relu_2"), cout


def build(seed, width, foreign, damp, shift):
    rng = np.random.default_rng(seed)
    b = Builder(rng, foreign, damp, shift)
    batch = 1 if foreign else "batch_size"
    inp = "input" if not foreign else "data"
    x = b.conv_bn(inp, 3, width, 7, 2, "conv1", "bn1")
    x = b.node("Relu", [x], "/relu")
    x = b.node("MaxPool", [x], "/maxpool", kernel_shape=[3, 3], strides=[2, 2],
               pads=[1, 1, 1, 1], ceil_mode=0, dilations=[1, 1])
    cin = width
    for si, (blocks, w, stride) in enumerate(STAGES):
        for bi in range(blocks):
            x, cin = b.bottleneck(x, cin, w * width // 64, stride if bi == 0 else 1,
                                  f"layer{si + 1}.{bi}")
    x = b.node("GlobalAveragePool", [x], "/avgpool")
    if foreign:
        shape = b.init("reshape_shape", np.array([1, cin]), dtype=np.int64)
        x = b.node("Reshape", [x, shape], "/flatten")
    else:
        x = b.node("Flatten", [x], "/flatten", axis=1)
    fc_w = rng.standard_normal((1000, cin)) * np.sqrt(1.0 / cin)
    fc_b = np.zeros(1000)
    out = b.node("Gemm", [x, b.init("fc.weight", fc_w), b.init("fc.bias", fc_b)], "/fc",
                 alpha=1.0, beta=1.0, transB=1)
    # The graph output keeps its conventional name whatever the variant.
    b.nodes[-1].output[0] = "output" if not foreign else "prob"
    graph = helper.make_graph(
        b.nodes, "resnet50" if not foreign else "main_graph",
        [helper.make_tensor_value_info(inp, TensorProto.FLOAT, [batch, 3, 224, 224])],
        [helper.make_tensor_value_info(b.nodes[-1].output[0], TensorProto.FLOAT, [batch, 1000])],
        b.inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)],
                              producer_name="make-test-model.py")
    model.ir_version = 8
    model.doc_string = (f"UNTRAINED ResNet50 (torchvision topology, width {width}, seed {seed}); "
                        "seeded weights for tests, not ImageNet weights")
    onnx.checker.check_model(model)
    return model


def save(model, path):
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    tmp = path + ".tmp"
    onnx.save(model, tmp)
    os.replace(tmp, path)
    print(f"wrote {path} ({os.path.getsize(path) / 1e6:.1f} MB)", file=sys.stderr)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default="models/resnet50.onnx", help="full-width model (default: %(default)s)")
    ap.add_argument("--narrow-out", default="models/resnet50-narrow.onnx",
                    help="narrow model for fast tests, width 8 instead of 64 (default: %(default)s)")
    ap.add_argument("--variant", choices=["torchvision", "foreign"], default="torchvision")
    ap.add_argument("--width", type=int, help="write only one model of this stem width to --out")
    ap.add_argument("--seed", type=int, default=50)
    ap.add_argument("--damp", type=float, default=0.05, help="scale on each residual branch's last batch norm")
    ap.add_argument("--shift", type=float, default=-0.35, help="mean batch-norm shift (sparsity of the ReLUs)")
    args = ap.parse_args()
    foreign = args.variant == "foreign"
    if args.width:
        save(build(args.seed, args.width, foreign, args.damp, args.shift), args.out)
        return
    save(build(args.seed, 64, foreign, args.damp, args.shift), args.out)
    save(build(args.seed, 8, foreign, args.damp, args.shift), args.narrow_out)


if __name__ == "__main__":
    main()
