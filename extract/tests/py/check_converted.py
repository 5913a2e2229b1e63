#!/usr/bin/env python3
"""A converted ONNX against the framework's own outputs in a fixture folder
(input.npy, expected.npz: layer1..layer4, avgpool, logits).

    check_converted.py MODEL FIXTURE_DIR

Prints {tensor name: largest absolute difference / largest |expected|}. The
layers' tensors are found by the reference's own lookup, not extract's."""
import json
import os
import sys

import numpy as np
import onnx
import onnxruntime as ort

from reference import resolve_layer


def main():
    model_path, fixture = sys.argv[1], sys.argv[2]
    model = onnx.load(model_path)
    x = np.load(os.path.join(fixture, "input.npy"))
    expected = np.load(os.path.join(fixture, "expected.npz"))
    tensors = {k: resolve_layer(model, k) for k in ("layer1", "layer2", "layer3", "layer4", "avgpool")}
    logits = model.graph.output[0].name
    for t in tensors.values():
        model.graph.output.append(onnx.helper.make_tensor_value_info(t, onnx.TensorProto.FLOAT, None))
    sess = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    out = dict(zip([o.name for o in sess.get_outputs()], sess.run(None, {sess.get_inputs()[0].name: x})))
    report = {}
    for name, tensor in list(tensors.items()) + [("logits", logits)]:
        e = expected[name]
        got = out[tensor].reshape(e.shape)
        report[name] = float(np.abs(got - e).max() / np.abs(e).max())
    print(json.dumps(report))


if __name__ == "__main__":
    main()
