#!/usr/bin/env python3
"""webdataset tar shards of an image folder (`SRC/<class>/<image>`), written
by webdataset's own TarWriter: the images in sorted order, cut into N
shards of consecutive samples, the original bytes kept. The tests and the
benchmark make their shards with it; so can anyone with a folder.

    scripts/make-shards.py SRC OUT --shards N [--label cls|folder|json|txt|none]

--label: cls (a .cls member, the class index in sorted class order), folder
(no label member; the sample's key is `<class>/<stem>`, timm's ImageTar),
json (a .json member {"label": class name, "url": ...}), txt (a .txt member:
the class name), none. Shards are OUT/shard-00000.tar, ...
"""
import argparse
import os

import webdataset as wds

ap = argparse.ArgumentParser()
ap.add_argument("src")
ap.add_argument("out")
ap.add_argument("--shards", type=int, default=1)
ap.add_argument("--label", default="cls", choices=["cls", "folder", "json", "txt", "none"])
a = ap.parse_args()

classes = sorted(d for d in os.listdir(a.src) if os.path.isdir(os.path.join(a.src, d)))
items = [(c, f) for c in classes for f in sorted(os.listdir(os.path.join(a.src, c)))]
os.makedirs(a.out, exist_ok=True)
per = -(-len(items) // a.shards)
for k in range(a.shards):
    with wds.TarWriter(os.path.join(a.out, f"shard-{k:05d}.tar")) as w:
        for c, f in items[k * per:(k + 1) * per]:
            stem, ext = os.path.splitext(f)
            with open(os.path.join(a.src, c, f), "rb") as fh:
                data = fh.read()
            key = f"{c}/{stem}" if a.label == "folder" else f"{c}_{stem}"
            sample = {"__key__": key, ext[1:].lower(): data}
            if a.label == "cls":
                sample["cls"] = classes.index(c)
            elif a.label == "json":
                sample["json"] = {"label": c, "url": f"http://127.0.0.1/{c}/{f}"}
            elif a.label == "txt":
                sample["txt"] = c
            w.write(sample)
