#!/usr/bin/env python3
"""A small image classification task that untrained (seeded) ResNet features
can learn: classes differ in the hue of one of the two colours of a stripe
texture, under random orientations, stripe widths, second colours and noise.

    make_dataset.py OUT --classes 3 --train 30 --val 15 [--seed 7] [--easy]

--easy makes the second colour grey instead of random: the classes are then
plainly told apart by colour.

Writes OUT/train/<class>/*.png and OUT/val/<class>/*.png.
"""
import argparse
import os

import numpy as np
from PIL import Image

NAMES = ["crimson", "lime", "azure", "amber", "violet", "teal"]
HUES = [0.0, 0.33, 0.62, 0.12, 0.78, 0.5]


def hsv(h, s, v):
    i, f = int(h * 6) % 6, h * 6 - int(h * 6)
    p, q, t = v * (1 - s), v * (1 - f * s), v * (1 - (1 - f) * s)
    return 255 * np.asarray([(v, t, p), (q, v, p), (p, v, t), (p, q, v), (t, p, v), (v, p, q)][i])


def image(rng, hue, easy, size=160):
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float64)
    a = rng.uniform(0, np.pi)
    period = rng.uniform(8, 30)
    wave = np.sin((xx * np.sin(a) + yy * np.cos(a)) * 2 * np.pi / period + rng.uniform(0, 2 * np.pi))
    c1 = hsv((hue + rng.normal(0, 0.05)) % 1.0, rng.uniform(0.4, 1.0), rng.uniform(0.4, 1.0))
    c2 = np.full(3, 128.0) if easy else rng.uniform(0, 255, 3)
    img = c1 + (c2 - c1) * ((wave[..., None] + 1) / 2)
    img += rng.normal(0, 25, img.shape)
    return Image.fromarray(np.clip(img, 0, 255).astype(np.uint8))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("out")
    ap.add_argument("--classes", type=int, default=3)
    ap.add_argument("--train", type=int, default=30)
    ap.add_argument("--val", type=int, default=15)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--easy", action="store_true")
    args = ap.parse_args()
    rng = np.random.default_rng(args.seed)
    for split, n in (("train", args.train), ("val", args.val)):
        for k in range(args.classes):
            d = os.path.join(args.out, split, NAMES[k])
            os.makedirs(d, exist_ok=True)
            for i in range(n):
                image(rng, HUES[k], args.easy).save(os.path.join(d, f"{i:03d}.png"))


if __name__ == "__main__":
    main()
