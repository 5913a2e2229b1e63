#!/usr/bin/env python3
"""The oracle for what tar shards hold: webdataset's own reader lists each
sample's key, its image extension and its label members.

    read_shards.py SHARD [SHARD ...]

Prints [{"shard": name, "key": key, "image": ext, "cls": text|null,
"txt": text|null, "json": object|null}, ...] as JSON, in reading order.
"""
import json
import os
import sys

import webdataset as wds

IMAGE = {"jpg", "jpeg", "png", "bmp", "gif", "tif", "tiff", "webp", "jfif"}
out = []
for shard in sys.argv[1:]:
    for s in wds.WebDataset(shard, shardshuffle=False, empty_check=False):
        exts = [k for k in s if not k.startswith("__")]
        image = next((k for k in exts if k.rsplit(".", 1)[-1].lower() in IMAGE), None)
        text = lambda k: s[k].decode().strip() if k in s else None
        out.append({
            "shard": os.path.basename(shard),
            "key": s["__key__"],
            "image": image,
            "cls": text("cls"),
            "txt": text("txt"),
            "json": json.loads(s["json"]) if "json" in s else None,
        })
print(json.dumps(out))
