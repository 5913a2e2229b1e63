#!/usr/bin/env python3
"""Export torchvision's ImageNet-pretrained ResNet50 to ONNX.

For a user with internet access and torch + torchvision installed (they are
not in the project's .venv: the weights download from PyTorch's servers):

    pip install torch torchvision onnx
    python scripts/export-resnet50.py                 # V1 weights -> models/resnet50.onnx
    python scripts/export-resnet50.py --weights V2    # evaluate with extract --resize 232

IMAGENET1K_V1 (top-1 76.1%) is evaluated at resize 256 / crop 224, extract's
defaults. IMAGENET1K_V2 (top-1 80.9%) was evaluated at resize 232 / crop 224.
"""
import argparse
import os
import sys


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--weights", choices=["V1", "V2"], default="V1")
    ap.add_argument("--out", default="models/resnet50.onnx")
    ap.add_argument("--opset", type=int, default=17)
    args = ap.parse_args()
    try:
        import torch
        import torchvision
    except ImportError:
        sys.exit("export-resnet50.py: needs torch and torchvision (pip install torch torchvision onnx)")

    weights = getattr(torchvision.models.ResNet50_Weights, f"IMAGENET1K_{args.weights}")
    model = torchvision.models.resnet50(weights=weights).eval()
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    tmp = args.out + ".tmp"
    export = dict(input_names=["input"], output_names=["output"], opset_version=args.opset,
                  dynamic_axes={"input": {0: "batch_size"}, "output": {0: "batch_size"}})
    try:
        torch.onnx.export(model, torch.randn(1, 3, 224, 224), tmp, dynamo=False, **export)
    except TypeError:  # torch before 2.5 has no dynamo argument
        torch.onnx.export(model, torch.randn(1, 3, 224, 224), tmp, **export)
    os.replace(tmp, args.out)
    resize = 256 if args.weights == "V1" else 232
    print(f"wrote {args.out} (ResNet50 IMAGENET1K_{args.weights}); extract with --resize {resize} --crop 224",
          file=sys.stderr)


if __name__ == "__main__":
    main()
