#!/usr/bin/env python3
"""scikit-learn on feature files of several views per image (a `view`
column), for comparison with classify.

    views_reference.py make OUT --images N --views K [--seed S] [--drop-row R]
        N images of 3 classes with a weak class signal, each written as K
        rows (its views: the image's vector plus a little noise), in a file of
        the contract with its `view` column; --drop-row leaves row R out (a
        view column with a gap).
    views_reference.py cv TRAIN --layer L --C 0.1,1 --cv K
        {"grouped": [...], "leaky": [...]}: the mean accuracy per C of
        SVC(kernel="rbf", gamma="scale") in a Pipeline with StandardScaler,
        through PredefinedSplit, on folds that deal out images (within each
        class, images in file order go to folds 0, 1, ..., K-1, 0, ..., each
        row with its image), and on folds that deal out rows regardless of
        their image (the leak: an image's views on both sides).
    views_reference.py score TRAIN VAL --layer L [--model logistic --C 1 | --model knn --k 5] --predictions PRED.csv
        LogisticRegression(C) or KNeighborsClassifier(k, metric="cosine")
        fitted on every (standardized) TRAIN row; per VAL image the mean of
        its views' predict_proba and the class of the highest mean. Prints
        {"images", "accuracy", "view0_accuracy", "agreement",
        "score_max_diff", "view0_score_diff"}: against classify's one row
        per image in PRED.csv (the last: how far view 0's own scores are from
        the mean, what a classify that did not average would be off by).
"""
import argparse
import csv
import json

import numpy as np
import pyarrow.parquet as pq
from sklearn.linear_model import LogisticRegression
from sklearn.neighbors import KNeighborsClassifier
from sklearn.model_selection import PredefinedSplit, cross_val_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.svm import SVC


def make(a):
    import pyarrow as pa

    rng = np.random.default_rng(a.seed)
    classes, d, k = ["c0", "c1", "c2"], 16, a.views
    y = np.arange(a.images) % 3
    centres = rng.normal(0, 1, (3, d))
    base = 0.5 * centres[y] + rng.normal(0, 1, (a.images, d))
    x = np.repeat(base, k, axis=0) + rng.normal(0, 0.05, (a.images * k, d))
    rows = np.repeat(np.arange(a.images), k)
    view = np.tile(np.arange(k), a.images)
    keep = np.arange(len(rows)) != a.drop_row
    rows, view, x = rows[keep], view[keep], x[keep]
    table = pa.table({
        "path": pa.array([f"c{y[i]}/{i:04d}.jpg" for i in rows]),
        "label": pa.array(y[rows].astype(np.int32)),
        "label_name": pa.array([classes[y[i]] for i in rows]),
        "view": pa.array(view.astype(np.int32)),
        "avgpool": pa.FixedSizeListArray.from_arrays(pa.array(x.astype(np.float32).ravel(), pa.float32()), d),
    })
    views = {"count": k, "seed": a.seed, "scale": [0.08, 1.0], "ratio": [0.75, 4 / 3], "flip": 0.5}
    meta = {
        "extract.format": "1", "extract.version": "views_reference",
        "extract.model": json.dumps({"file": "generated", "sha256": "0" * 64, "input": "input"}),
        "extract.classes": json.dumps(classes),
        "extract.layers": json.dumps({"avgpool": {"tensor": "generated", "pool": "none", "dim": d}}),
        "extract.preprocess": json.dumps({"resize": 256, "crop": 224, "mean": [0.485, 0.456, 0.406],
                                          "std": [0.229, 0.224, 0.225], "filter": "pil-bilinear-antialias",
                                          "decode": "exact", "views": views}),
        "extract.root": "/generated", "extract.skipped": "[]",
    }
    pq.write_table(table.replace_schema_metadata(meta), a.out)


def load(path, layer):
    t = pq.read_table(path)
    x = np.stack(t.column(layer).to_numpy(zero_copy_only=False)).astype(np.float64)
    return x, np.asarray(t.column("label_name").to_pylist(), dtype=object), t.column("path").to_pylist(), t.column("view").to_numpy()


def deal(labels, k):
    seen, f = {}, []
    for c in labels:
        f.append(seen.get(c, 0) % k)
        seen[c] = seen.get(c, 0) + 1
    return np.array(f)


def cv(a):
    x, y, paths, view = load(a.train, a.layer)
    image = np.cumsum(view == 0) - 1
    firsts = np.flatnonzero(view == 0)
    grouped = deal(y[firsts], a.cv)[image]
    leaky = deal(y, a.cv)
    cs = [float(c) for c in a.C.split(",")]
    score = lambda folds: [cross_val_score(make_pipeline(StandardScaler(), SVC(C=c, gamma="scale")), x, y,
                                           cv=PredefinedSplit(folds)).mean() for c in cs]
    print(json.dumps({"grouped": score(grouped), "leaky": score(leaky)}))


def score(a):
    xt, yt, _, _ = load(a.train, a.layer)
    xv, yv, pv, view = load(a.val, a.layer)
    s = StandardScaler().fit(xt)
    if a.model == "knn":
        m = KNeighborsClassifier(n_neighbors=a.k, metric="cosine", algorithm="brute")
    else:
        m = LogisticRegression(C=a.C, max_iter=5000, tol=1e-8)
    m.fit(s.transform(xt), yt)
    p = m.predict_proba(s.transform(xv))
    image = np.cumsum(view == 0) - 1
    n = image[-1] + 1
    mean = np.zeros((n, p.shape[1]))
    np.add.at(mean, image, p)
    mean /= np.bincount(image)[:, None]
    firsts = np.flatnonzero(view == 0)
    theirs = m.classes_[mean.argmax(axis=1)]
    with open(a.predictions, newline="") as f:
        rows = list(csv.DictReader(f))
    assert [r["path"] for r in rows] == [pv[i] for i in firsts], "one row per image, in file order"
    ours = np.asarray([r["predicted"] for r in rows], dtype=object)
    ours_scores = np.asarray([[float(r[f"score_{c}"]) for c in m.classes_] for r in rows])
    print(json.dumps({
        "images": int(n),
        "accuracy": float((theirs == yv[firsts]).mean()),
        "view0_accuracy": float((m.predict(s.transform(xv[firsts])) == yv[firsts]).mean()),
        "agreement": float((ours == theirs).mean()),
        "score_max_diff": float(np.abs(ours_scores - mean).max()),
        "view0_score_diff": float(np.abs(p[firsts] - mean).max()),
    }))


if __name__ == "__main__":
    p = argparse.ArgumentParser()
    sub = p.add_subparsers(dest="what", required=True)
    m = sub.add_parser("make")
    m.add_argument("out")
    m.add_argument("--images", type=int, required=True)
    m.add_argument("--views", type=int, required=True)
    m.add_argument("--seed", type=int, default=1)
    m.add_argument("--drop-row", type=int, default=-1)
    c = sub.add_parser("cv")
    c.add_argument("train")
    c.add_argument("--layer", required=True)
    c.add_argument("--C", required=True)
    c.add_argument("--cv", type=int, required=True)
    sc = sub.add_parser("score")
    sc.add_argument("train")
    sc.add_argument("val")
    sc.add_argument("--layer", required=True)
    sc.add_argument("--C", type=float, default=1.0)
    sc.add_argument("--model", choices=["logistic", "knn"], default="logistic")
    sc.add_argument("--k", type=int, default=5)
    sc.add_argument("--predictions", required=True)
    a = p.parse_args()
    {"make": make, "cv": cv, "score": score}[a.what](a)
