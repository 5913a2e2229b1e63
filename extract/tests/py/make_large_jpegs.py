#!/usr/bin/env python3
"""Writes JPEGs large enough for extract to decode them at a reduced scale,
and some just too small or of a kind it decodes in full, then prints what
PIL does with each when asked for `draft(mode, (R, R))`: one JSON object,
file name (relative to OUT_DIR) to the scale's denominator (1: full size).

    make_large_jpegs.py OUT_DIR [--resize R]
"""
import argparse
import json
import os

import numpy as np
from PIL import Image

from reference import load_rgb


def texture(rng, w, h):
    """Smooth colour fields with a camera's noise on top."""
    coarse = Image.fromarray((rng.random((24, 32, 3)) * 255).astype(np.uint8)).resize((w, h), Image.BICUBIC)
    a = np.asarray(coarse, np.float32) + rng.normal(0, 6, (h, w, 3)).astype(np.float32)
    return Image.fromarray(np.clip(a, 0, 255).astype(np.uint8))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("out")
    ap.add_argument("--resize", type=int, default=256)
    args = ap.parse_args()
    rng = np.random.default_rng(7)
    files = {
        "x/phone.jpg": (texture(rng, 4032, 3024), {"quality": 90}),
        "x/half.jpg": (texture(rng, 1100, 700), {"quality": 92}),
        "x/twice.jpg": (texture(rng, 800, 512), {"quality": 90}),
        "x/just-under-twice.jpg": (texture(rng, 900, 511), {"quality": 90}),
        "x/quarter-444.jpg": (texture(rng, 2103, 1601), {"quality": 95, "subsampling": 0}),
        "y/grey.jpg": (texture(rng, 1400, 1100).convert("L"), {"quality": 90}),
        "y/progressive.jpg": (texture(rng, 1800, 1300), {"quality": 88, "progressive": True}),
        "y/cmyk.jpg": (texture(rng, 1200, 1000).convert("CMYK"), {"quality": 95}),
    }
    exif = Image.Exif()
    exif[0x0112] = 6  # stored sideways: turned upright by 90 degrees
    files["y/turned.jpg"] = (texture(rng, 2048, 1536), {"quality": 90, "exif": exif.tobytes()})
    scales = {}
    for rel, (img, kw) in files.items():
        path = os.path.join(args.out, rel)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        img.save(path, **kw)
        full = Image.open(path).size
        scaled = load_rgb(path, args.resize)
        # The denominator PIL's draft chose (the upright image may be turned).
        scales[rel] = round(max(full) / max(scaled.size))
    print(json.dumps(scales))


if __name__ == "__main__":
    main()
