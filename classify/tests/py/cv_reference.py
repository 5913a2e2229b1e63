#!/usr/bin/env python3
"""scikit-learn's cross-validation of classify's grid, for comparison with
the table `classify fit --cv K` prints.

    cv_reference.py make OUT [--seed S]
        Two overlapping classes in 2 dimensions, 30 rows, two of them far
        outliers on the first axis: data on which scaling or gamma="scale"
        fitted on all rows, rather than on each fold's training rows, gives
        another cross-validation table.
    cv_reference.py table TRAIN --layer L --C 0.1,1 --cv K [--scale standard|none]
        [--scoring accuracy|balanced_accuracy|f1_macro] [--class-weight none|balanced]

`table` prints {"pipeline": [...], "leaky": [...]} as JSON: mean accuracy
per C of SVC(kernel="rbf", gamma="scale") in a Pipeline with the scaler,
on the folds classify's documented rule deals (within each class, rows in
file order go to folds 0, 1, ..., K-1, 0, ...), through PredefinedSplit;
and the same with the scaler and gamma fitted once on all rows (the leak).
"""
import argparse
import json

import numpy as np
import pyarrow.parquet as pq
from sklearn.model_selection import PredefinedSplit, cross_val_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import FunctionTransformer, StandardScaler
from sklearn.svm import SVC



def make(out, seed):
    from bench_logistic import write

    rng = np.random.default_rng(seed)
    n = 30
    y = np.arange(n) % 2
    x = np.stack([y * 2.0 + rng.normal(0, 0.8, n), rng.normal(0, 1, n)], 1)
    for r in rng.choice(n, 2, replace=False):
        x[r, 0] += rng.choice([-1, 1]) * 60
    write(out, x.astype(np.float32), y, 2)


def folds(y, k):
    seen, f = {}, []
    for c in y:
        f.append(seen.get(c, 0) % k)
        seen[c] = seen.get(c, 0) + 1
    return np.array(f)


def table(a):
    t = pq.read_table(a.train)
    x = np.stack(t.column(a.layer).to_numpy(zero_copy_only=False)).astype(np.float64)
    y = t.column("label").to_numpy()
    split = PredefinedSplit(folds(y, a.cv))
    scaler = StandardScaler if a.scale == "standard" else lambda: FunctionTransformer()
    cs = [float(c) for c in a.C.split(",")]
    cw = "balanced" if a.class_weight == "balanced" else None
    pipeline = [cross_val_score(make_pipeline(scaler(), SVC(C=c, gamma="scale", class_weight=cw)), x, y, cv=split,
                                scoring=a.scoring).mean() for c in cs]
    xs = scaler().fit_transform(x)
    gamma = 1.0 / (xs.shape[1] * xs.var())
    leaky = [cross_val_score(SVC(C=c, gamma=gamma, class_weight=cw), xs, y, cv=split, scoring=a.scoring).mean()
             for c in cs]
    print(json.dumps({"pipeline": pipeline, "leaky": leaky}))


if __name__ == "__main__":
    p = argparse.ArgumentParser()
    sub = p.add_subparsers(dest="what", required=True)
    m = sub.add_parser("make")
    m.add_argument("out")
    m.add_argument("--seed", type=int, default=1)
    t = sub.add_parser("table")
    t.add_argument("train")
    t.add_argument("--layer", required=True)
    t.add_argument("--C", required=True)
    t.add_argument("--cv", type=int, required=True)
    t.add_argument("--scale", default="standard", choices=["standard", "none"])
    t.add_argument("--scoring", default="accuracy", choices=["accuracy", "balanced_accuracy", "f1_macro"])
    t.add_argument("--class-weight", default="none", choices=["none", "balanced"])
    a = p.parse_args()
    make(a.out, a.seed) if a.what == "make" else table(a)
