#!/usr/bin/env python3
"""A pixels model (`classify export --input pixels`) run by onnxruntime-Python
on images decoded by PIL (EXIF turn applied), as a user's script would feed
it. Prints {file name: {"label": class, "scores": [...]}} as JSON.

    pixels_predict.py MODEL.onnx IMAGE...
"""
import json
import os
import sys

import numpy as np
import onnxruntime as ort
from reference import load_rgb

model, *images = sys.argv[1:]
sess = ort.InferenceSession(model, providers=["CPUExecutionProvider"])
classes = json.loads(sess.get_modelmeta().custom_metadata_map["classify.classes"])
names = [o.name for o in sess.get_outputs()]
score = next(n for n in ("probabilities", "votes", "scores") if n in names)
out = {}
for path in images:
    got = dict(zip(names, sess.run(None, {"pixels": np.asarray(load_rgb(path), dtype=np.uint8)})))
    out[os.path.basename(path)] = {"label": classes[int(got["label"][0])], "scores": got[score][0].tolist()}
print(json.dumps(out))
