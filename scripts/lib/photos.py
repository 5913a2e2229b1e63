"""Photo folders for the benchmarks: listing them, and generating photo-sized
JPEGs where the shared photos are absent. Imported by bench.py and
gpu-check.py (it needs only numpy and Pillow)."""
import os

import numpy as np

EXTS = (".jpg", ".jpeg", ".png")


def images_under(root):
    out = []
    for d, _, files in os.walk(root):
        out += [os.path.join(d, f) for f in files if f.lower().endswith(EXTS) and not f.startswith(".")]
    return sorted(out)


def make_photos(root, n=100, seed=0):
    """Photo-sized JPEGs (500x375, smooth colour fields with detail) in four folders."""
    from PIL import Image
    rng = np.random.default_rng(seed)
    for i in range(n):
        d = os.path.join(root, f"class{i % 4}")
        os.makedirs(d, exist_ok=True)
        coarse = Image.fromarray((rng.random((24, 32, 3)) * 255).astype(np.uint8)).resize((500, 375), Image.BICUBIC)
        a = np.asarray(coarse, np.float64) + rng.normal(0, 10, (375, 500, 3))
        Image.fromarray(np.clip(a, 0, 255).astype(np.uint8)).save(os.path.join(d, f"{i:03d}.jpg"), quality=90)


def photos_or_generated(photos, tmp):
    """`photos` when that folder exists, else generated ones under `tmp`;
    with the number of images."""
    if not os.path.isdir(photos):
        photos = os.path.join(tmp, "photos")
        make_photos(photos)
    return photos, len(images_under(photos))


def replicate(photos, dest, copies):
    """`copies` links to every photo, class folders kept: a large folder that
    decodes like the small one. Returns the number of images."""
    n = 0
    for k in range(copies):
        for p in images_under(photos):
            d = os.path.join(dest, os.path.relpath(os.path.dirname(p), photos))
            os.makedirs(d, exist_ok=True)
            os.symlink(os.path.abspath(p), os.path.join(d, f"{k}-{os.path.basename(p)}"))
            n += 1
    return n


def phone_photos(photos, dest, n=16, seed=0):
    """`n` phone-camera-sized JPEGs (12 Mpx: 4032x3024, portrait ones
    3024x4032) made from the first `n` images under `photos`: upscaled
    (Lanczos), with a camera's sensor noise so that they cost a decoder
    what a real photo of that size does, saved at quality 90 (4:2:0) in
    the same class folders. Returns the number written."""
    from PIL import Image
    rng = np.random.default_rng(seed)
    for p in images_under(photos)[:n]:
        im = Image.open(p).convert("RGB")
        size = (4032, 3024) if im.width >= im.height else (3024, 4032)
        a = np.asarray(im.resize(size, Image.LANCZOS), np.float32)
        a += rng.normal(0, 3, a.shape).astype(np.float32)
        d = os.path.join(dest, os.path.relpath(os.path.dirname(p), photos))
        os.makedirs(d, exist_ok=True)
        name = os.path.splitext(os.path.basename(p))[0] + ".jpg"
        Image.fromarray(np.clip(a, 0, 255).astype(np.uint8)).save(os.path.join(d, name), quality=90)
    return min(n, len(images_under(photos)))
