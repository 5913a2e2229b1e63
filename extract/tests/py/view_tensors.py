#!/usr/bin/env python3
"""The model inputs of every view of each image, computed from the contract's
text (`reference.view_tensors`: the generator, torchvision's crop draw, PIL's
crop, resize and mirror), as raw little-endian float32 (3 x crop x crop, CHW).

    view_tensors.py OUT_DIR PREPROCESS_JSON FILE PATH [FILE PATH ...]

PREPROCESS_JSON is a feature file's `extract.preprocess` record (with its
`views`); PATH is the image's row path. Writes OUT_DIR/<i>.<view>.f32 for
the i-th image. Prints the number of images.
"""
import json
import os
import sys

import numpy as np

from reference import view_tensors


def main():
    out, pre, rest = sys.argv[1], json.loads(sys.argv[2]), sys.argv[3:]
    os.makedirs(out, exist_ok=True)
    pairs = list(zip(rest[::2], rest[1::2]))
    for i, (file, path) in enumerate(pairs):
        for v, t in enumerate(view_tensors(file, path, pre)):
            np.ascontiguousarray(t, dtype="<f4").tofile(os.path.join(out, f"{i}.{v}.f32"))
    print(len(pairs))


if __name__ == "__main__":
    main()
