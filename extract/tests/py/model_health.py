#!/usr/bin/env python3
"""Checks that a generated test model is fit to test against.

Prints one JSON object:
  noise_min_cosine  avgpool cosine between each photo and itself with +-1 grey
                    level of noise added: how smooth the network is;
  pairwise_mean_cosine / pairwise_max_cosine
                    between different photos: how far apart features of
                    different images are, so a parity bar can tell them apart;
  blocks_finite, blocks_min_std
                    every residual block output is finite and not constant.

    model_health.py MODEL IMAGE...

(scripts/ must be on PYTHONPATH, as the tests set it, for `reference`.)
"""
import json
import sys

import numpy as np
import onnx
import onnxruntime as ort

from reference import load_rgb, transform


def main():
    model_path, images = sys.argv[1], sys.argv[2:]
    m = onnx.load(model_path)
    consumers = {}
    for n in m.graph.node:
        for i in n.input:
            consumers.setdefault(i, []).append(n)
    blocks = [consumers[n.output[0]][0].output[0] for n in m.graph.node
              if n.op_type == "Add" and [c.op_type for c in consumers.get(n.output[0], [])] == ["Relu"]]
    pool = [n.output[0] for n in m.graph.node if n.op_type == "GlobalAveragePool"][0]
    del m.graph.output[:]
    for t in blocks + [pool]:
        m.graph.output.append(onnx.helper.make_tensor_value_info(t, onnx.TensorProto.FLOAT, None))
    sess = ort.InferenceSession(m.SerializeToString(), providers=["CPUExecutionProvider"])
    name = sess.get_inputs()[0].name

    rng = np.random.default_rng(0)
    clean, noisy = [], []
    for path in images:
        img = np.asarray(load_rgb(path))
        for target, a in ((clean, img), (noisy, np.clip(img.astype(int) + rng.integers(-1, 2, img.shape), 0, 255))):
            from PIL import Image
            target.append(transform(Image.fromarray(a.astype(np.uint8))))
    outs = sess.run(None, {name: np.stack(clean)})
    noisy_pool = sess.run([pool], {name: np.stack(noisy)})[0]
    a = outs[-1].reshape(len(images), -1)
    b = noisy_pool.reshape(len(images), -1)
    unit = lambda x: x / np.linalg.norm(x, axis=1, keepdims=True)
    noise = (unit(a) * unit(b)).sum(1)
    pair = unit(a) @ unit(a).T
    iu = np.triu_indices(len(images), 1)
    print(json.dumps({
        "images": len(images),
        "blocks": len(blocks),
        "noise_min_cosine": float(noise.min()),
        "pairwise_mean_cosine": float(pair[iu].mean()),
        "pairwise_max_cosine": float(pair[iu].max()),
        "blocks_finite": bool(all(np.isfinite(o).all() for o in outs)),
        "blocks_min_std": float(min(o.std() for o in outs[:-1])),
    }))


if __name__ == "__main__":
    main()
