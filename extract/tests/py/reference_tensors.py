#!/usr/bin/env python3
"""The model input PIL + numpy make of each image (the `reference` module's
transform), as raw little-endian float32 (3 x crop x crop, CHW), so a test
can compare extract's preprocessing tensor for tensor.

    reference_tensors.py OUT_DIR --resize N --crop N IMAGE...

Writes OUT_DIR/<i>.f32 for the i-th image; for an image with an EXIF
orientation other than 1, also OUT_DIR/<i>.unturned.f32, the input it
would give if the orientation were ignored (what a wrong result looks like).
Prints the number of images.
"""
import argparse
import os

import numpy as np
from PIL import Image

from reference import load_rgb, transform


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("out")
    ap.add_argument("images", nargs="+")
    ap.add_argument("--resize", type=int, default=256)
    ap.add_argument("--crop", type=int, default=224)
    ap.add_argument("--draft", action="store_true", help="decode JPEGs as extract's default does (PIL's draft)")
    args = ap.parse_args()
    os.makedirs(args.out, exist_ok=True)
    for i, path in enumerate(args.images):
        t = transform(load_rgb(path, args.resize if args.draft else None), args.resize, args.crop)
        np.ascontiguousarray(t, dtype="<f4").tofile(os.path.join(args.out, f"{i}.f32"))
        im = Image.open(path)
        if im.getexif().get(0x0112, 1) != 1:
            u = transform(im.convert("RGB"), args.resize, args.crop)
            np.ascontiguousarray(u, dtype="<f4").tofile(os.path.join(args.out, f"{i}.unturned.f32"))
    print(len(args.images))


if __name__ == "__main__":
    main()
