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

# The shared modules (reference, photos, ...) live in scripts/lib.
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
import atomic_file
from resnet_onnx import build

# torchvision resnet50: (blocks, bottleneck width, stride of the stage)
STAGES = [(3, 64, 1), (4, 128, 2), (6, 256, 2), (3, 512, 2)]
EXPANSION = 4
# Marks the model as untrained for extract, which warns when it runs one.
UNTRAINED = {"untrained": "true"}


def seeded_params(seed, width, damp, shift):
    """A torchvision-format state dict with seeded weights (see the doc above)."""
    rng = np.random.default_rng(seed)
    params = {}

    def conv_bn(cin, cout, k, conv, bn, gamma=1.0):
        fan_in = cin * k * k
        params[f"{conv}.weight"] = rng.standard_normal((cout, cin, k, k)) * np.sqrt(2.0 / fan_in)
        # A negative batch-norm shift makes the ReLUs sparse, as in a trained
        # network: without it every avgpool vector is dominated by one common
        # positive mean and different photos sit at cosine ~0.97 of each other,
        # too close for a parity bar at 0.999 to tell them apart.
        params[f"{bn}.weight"] = np.full(cout, gamma)
        params[f"{bn}.bias"] = (rng.standard_normal(cout) * 0.1 + shift) * gamma
        params[f"{bn}.running_mean"] = np.zeros(cout)
        params[f"{bn}.running_var"] = np.ones(cout)

    conv_bn(3, width, 7, "conv1", "bn1")
    cin = width
    for si, (blocks, w, _) in enumerate(STAGES):
        for bi in range(blocks):
            p = f"layer{si + 1}.{bi}"
            mid, cout = w * width // 64, w * width // 64 * EXPANSION
            conv_bn(cin, mid, 1, f"{p}.conv1", f"{p}.bn1")
            conv_bn(mid, mid, 3, f"{p}.conv2", f"{p}.bn2")
            conv_bn(mid, cout, 1, f"{p}.conv3", f"{p}.bn3", gamma=damp)
            if bi == 0:
                conv_bn(cin, cout, 1, f"{p}.downsample.0", f"{p}.downsample.1")
            cin = cout
    params["fc.weight"] = rng.standard_normal((1000, cin)) * np.sqrt(1.0 / cin)
    params["fc.bias"] = np.zeros(1000)
    return params


def make(seed, width, foreign, damp, shift, fixed_batch=None):
    params = seeded_params(seed, width, damp, shift)
    doc = (f"UNTRAINED ResNet50 (torchvision topology, width {width}, seed {seed}); "
           "seeded weights for tests, not ImageNet weights")
    if foreign:
        return build(params, fold_bn=True, names="foreign", fixed_batch=fixed_batch or 1, graph_name="main_graph",
                     input_name="data", output_name="prob", flatten="Reshape", doc=doc,
                     producer="make-test-model.py", metadata=UNTRAINED)
    return build(params, fold_bn=False, doc=doc, producer="make-test-model.py", metadata=UNTRAINED,
                 fixed_batch=fixed_batch)


def save(model, path):
    with atomic_file.replacing(path) as tmp:
        onnx.save(model, tmp)
    print(f"wrote {path} ({os.path.getsize(path) / 1e6:.1f} MB)", file=sys.stderr)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default="models/resnet50.onnx", help="full-width model (default: %(default)s)")
    ap.add_argument("--narrow-out", default="models/resnet50-narrow.onnx",
                    help="narrow model for fast tests, width 8 instead of 64 (default: %(default)s)")
    ap.add_argument("--variant", choices=["torchvision", "foreign"], default="torchvision")
    ap.add_argument("--width", type=int, help="write only one model of this stem width to --out")
    ap.add_argument("--seed", type=int, default=50)
    ap.add_argument("--fixed-batch", type=int, help="a fixed batch size instead of a dynamic one")
    ap.add_argument("--damp", type=float, default=0.05, help="scale on each residual branch's last batch norm")
    ap.add_argument("--shift", type=float, default=-0.35, help="mean batch-norm shift (sparsity of the ReLUs)")
    args = ap.parse_args()
    foreign = args.variant == "foreign"
    if args.width:
        save(make(args.seed, args.width, foreign, args.damp, args.shift, args.fixed_batch), args.out)
        return
    save(make(args.seed, 64, foreign, args.damp, args.shift), args.out)
    save(make(args.seed, 8, foreign, args.damp, args.shift), args.narrow_out)


if __name__ == "__main__":
    main()
