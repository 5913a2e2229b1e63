#!/usr/bin/env python3
"""Write scikit-learn's handwritten digits as PNG class folders.

The digits (1,797 8x8 greyscale scans, 10 classes) ship inside the
scikit-learn wheel, so this works offline. They are the quickstart's small
dataset that differs from ImageNet. The split is stratified and
deterministic: within each class, a seeded shuffle, then the first
--train-per-class images train and the next --val-per-class validate.

    make-digits.py [--out data/digits] [--train-per-class 50] [--val-per-class 20] [--seed 0]

Writes OUT/train/<digit>/<index>.png and OUT/val/<digit>/<index>.png, each
image upscaled to 64x64 (nearest neighbour: the original pixels, larger).
"""
import argparse
import os
import shutil
import sys

import numpy as np
from PIL import Image
from sklearn.datasets import load_digits

# Folder names sort in digit order, so class index k is digit k.
NAMES = [str(k) for k in range(10)]


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default="data/digits")
    ap.add_argument("--train-per-class", type=int, default=50)
    ap.add_argument("--val-per-class", type=int, default=20)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    digits = load_digits()
    images, target = digits.images, digits.target
    rng = np.random.default_rng(args.seed)
    # Written beside the destination, then moved into place whole.
    tmp = args.out.rstrip("/") + ".partial"
    shutil.rmtree(tmp, ignore_errors=True)
    for k, name in enumerate(NAMES):
        idx = np.flatnonzero(target == k)
        rng.shuffle(idx)
        need = args.train_per_class + args.val_per_class
        if len(idx) < need:
            sys.exit(f"make-digits.py: class {k} has {len(idx)} images, fewer than {need}")
        for split, chosen in (("train", idx[:args.train_per_class]),
                              ("val", idx[args.train_per_class:need])):
            d = os.path.join(tmp, split, name)
            os.makedirs(d, exist_ok=True)
            for i in chosen:
                a = (images[i] * (255.0 / 16.0)).round().astype(np.uint8)
                Image.fromarray(a).resize((64, 64), Image.NEAREST).save(os.path.join(d, f"{i:04d}.png"))
    shutil.rmtree(args.out, ignore_errors=True)
    os.replace(tmp, args.out)
    print(f"wrote {args.out}: {args.train_per_class} train + {args.val_per_class} val images per digit",
          file=sys.stderr)


if __name__ == "__main__":
    main()
