#!/usr/bin/env python3
"""Writes a folder of generated images covering what extract must read:
every colour mode PIL writes (RGB, greyscale, palette, RGBA, 16-bit, CMYK),
JPEG, PNG, BMP, WebP, GIF, an EXIF-rotated JPEG, images that are shrunk and
enlarged, one tall enough that Pillow resizes it vertically first, an
unlabeled image at the root, a corrupt file, a text file and a hidden file.

    make_images.py OUT_DIR [--seed N]
"""
import argparse
import io
import os

import numpy as np
from PIL import Image


def texture(rng, w, h):
    """Smooth random colour fields with some fine detail, like a photo."""
    coarse = rng.random((max(2, h // 16), max(2, w // 16), 3))
    img = Image.fromarray((coarse * 255).astype(np.uint8)).resize((w, h), Image.BICUBIC)
    a = np.asarray(img, dtype=np.float64)
    a += rng.normal(0, 12, a.shape)
    yy, xx = np.mgrid[0:h, 0:w]
    a[..., 0] += 40 * np.sin(xx / 7.0)
    a[..., 2] += 40 * np.cos(yy / 5.0)
    return np.clip(a, 0, 255).astype(np.uint8)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("out")
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args()
    rng = np.random.default_rng(args.seed)
    out = args.out

    def save(rel, img, **kw):
        path = os.path.join(out, rel)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        img.save(path, **kw)

    rgb = lambda w, h: Image.fromarray(texture(rng, w, h))
    save("alpha/landscape.jpg", rgb(320, 240), quality=90)
    save("alpha/portrait.jpg", rgb(200, 300), quality=85)
    save("alpha/tall.jpg", rgb(300, 1500), quality=90)            # vertical pass first
    save("alpha/small.png", rgb(64, 48))                          # enlarged
    save("alpha/square.bmp", rgb(256, 256))                       # no resize at all
    save("alpha/nested/deeper/wide.webp", rgb(700, 260), quality=90, method=4)
    save("alpha/grey.jpg", rgb(300, 200).convert("L"), quality=90)
    save("beta/grey.png", rgb(240, 300).convert("L"))
    save("beta/palette.png", rgb(300, 260).convert("P", palette=Image.ADAPTIVE, colors=64))
    save("beta/anim.gif", rgb(280, 240).convert("P", palette=Image.ADAPTIVE, colors=128))
    rgba = rgb(260, 300).convert("RGBA")
    rgba.putalpha(Image.fromarray(texture(rng, 260, 300)[..., 0]))
    save("beta/rgba.png", rgba)
    deep = (texture(rng, 300, 250)[..., 1].astype(np.uint16) * 257 + rng.integers(0, 257, (250, 300))).astype(np.uint16)
    save("beta/sixteen.png", Image.fromarray(deep))  # mode I;16
    save("beta/cmyk.jpg", rgb(300, 240).convert("CMYK"), quality=95)
    rotated = rgb(320, 200)
    exif = Image.Exif()
    exif[0x0112] = 6  # orientation: rotate 90 degrees clockwise to display
    save("beta/rotated.jpg", rotated, quality=90, exif=exif.tobytes())
    save("loose.png", rgb(300, 300))                              # unlabeled

    # What must be skipped or ignored.
    buf = io.BytesIO()
    rgb(300, 200).save(buf, "JPEG")
    with open(os.path.join(out, "alpha/broken.jpg"), "wb") as f:
        f.write(buf.getvalue()[:200])
    with open(os.path.join(out, "beta/notes.txt"), "w") as f:
        f.write("not an image\n")
    save("beta/.hidden.png", rgb(50, 50))


if __name__ == "__main__":
    main()
