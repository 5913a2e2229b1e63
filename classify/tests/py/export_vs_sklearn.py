#!/usr/bin/env python3
"""An exported model against scikit-learn, with no classify code between
them: scikit-learn fits the model the classifier file records (its kind,
C, kernel and gamma, k, scaling, class weights) on the training file, and
predicts the training file's rows; ONNX Runtime runs the exported file on
the same images' input tensors. Prints one JSON object: the share of
images whose labels agree, and for the logistic regression the largest
difference in probabilities.

    export_vs_sklearn.py EXPORTED.onnx PIXELS.parquet TRAIN.parquet CLASSIFIER.json

PIXELS.parquet holds, per image, the input tensor extract fed the backbone
(column `pixels`); TRAIN.parquet extract's features of the same images.
"""
import json
import sys

import numpy as np
import onnxruntime as ort
import pyarrow.parquet as pq
from sklearn.linear_model import LogisticRegression
from sklearn.neighbors import KNeighborsClassifier
from sklearn.preprocessing import Normalizer, StandardScaler
from sklearn.svm import SVC

from sklearn_reference import OneVsOneLinearSVC, load


def main():
    exported, pixels_file, train_file, classifier_file = sys.argv[1:5]
    with open(classifier_file) as f:
        c = json.load(f)
    model, scale = c["model"], c["scaler"]["kind"]
    x, y, paths = load(train_file, c["feature_column"])
    if scale == "standard":
        x = StandardScaler().fit_transform(x)
    elif scale == "l2":
        x = Normalizer().transform(x)
    cw = "balanced" if c.get("class_weight") == "balanced" else None
    if model["kind"] == "knn":
        m = KNeighborsClassifier(n_neighbors=model["k"], metric="cosine", algorithm="brute")
    elif model["kind"] == "logistic":
        m = LogisticRegression(C=model["c"], max_iter=10_000, tol=1e-8, class_weight=cw)
    elif model["kernel"] == "rbf":
        m = SVC(C=model["c"], kernel="rbf", gamma=model["gamma"], class_weight=cw)
    else:
        m = OneVsOneLinearSVC(model["c"], cw)
    m.fit(x, y)
    theirs = dict(zip(paths, m.predict(x)))

    table = pq.read_table(pixels_file)
    crop = json.loads(ort.InferenceSession(exported).get_modelmeta().custom_metadata_map["classify.preprocess"])["crop"]
    pixels = np.stack(table.column("pixels").to_numpy(zero_copy_only=False)).astype(np.float32)
    pixels = pixels.reshape(len(pixels), 3, crop, crop)
    sess = ort.InferenceSession(exported, providers=["CPUExecutionProvider"])
    names = [o.name for o in sess.get_outputs()]
    got = dict(zip(names, sess.run(None, {sess.get_inputs()[0].name: pixels})))
    classes = c["classes"]
    ours = dict(zip(table.column("path").to_pylist(), (classes[int(i)] for i in got["label"])))
    common = [p for p in paths if p in ours]
    out = {
        "rows": len(common),
        "agreement": float(np.mean([ours[p] == theirs[p] for p in common])),
    }
    if model["kind"] == "logistic":
        order = {p: i for i, p in enumerate(table.column("path").to_pylist())}
        mine = got["probabilities"][[order[p] for p in paths]]
        # Columns by class name: scikit-learn sorts its classes.
        sk = m.predict_proba(x)[:, [list(m.classes_).index(k) for k in classes]]
        out["max_probability_diff"] = float(np.abs(mine - sk).max())
    print(json.dumps(out))


if __name__ == "__main__":
    main()
