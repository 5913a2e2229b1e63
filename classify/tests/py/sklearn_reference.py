#!/usr/bin/env python3
"""scikit-learn on the same feature files, for comparison with classify.

    sklearn_reference.py TRAIN VAL --layer L --model logistic|svm
        [--kernel linear|rbf] [--C 1.0] [--gamma G] [--scale standard|l2|none]

Prints {"train_accuracy": ..., "val_accuracy": ..., "gamma": ...} as JSON.
"""
import argparse
import json

import numpy as np
import pyarrow.parquet as pq
from sklearn.linear_model import LogisticRegression
from sklearn.preprocessing import Normalizer, StandardScaler
from sklearn.svm import SVC


def load(path, layer):
    t = pq.read_table(path)
    keep = np.asarray([l is not None for l in t.column("label").to_pylist()])
    x = np.asarray(t.column(layer).combine_chunks().flatten(), dtype=np.float64).reshape(t.num_rows, -1)
    # Labels by class name, so files with differently ordered classes compare right.
    y = np.asarray(t.column("label_name").to_pylist(), dtype=object)
    return x[keep], y[keep]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("train")
    ap.add_argument("val")
    ap.add_argument("--layer", required=True)
    ap.add_argument("--model", choices=["logistic", "svm"], required=True)
    ap.add_argument("--kernel", choices=["linear", "rbf"], default="linear")
    ap.add_argument("--C", type=float, default=1.0)
    ap.add_argument("--gamma", type=float)
    ap.add_argument("--scale", choices=["standard", "l2", "none"], default="standard")
    args = ap.parse_args()
    xt, yt = load(args.train, args.layer)
    xv, yv = load(args.val, args.layer)
    if args.scale == "standard":
        s = StandardScaler().fit(xt)
        xt, xv = s.transform(xt), s.transform(xv)
    elif args.scale == "l2":
        xt, xv = Normalizer().transform(xt), Normalizer().transform(xv)
    gamma = args.gamma if args.gamma is not None else 1.0 / (xt.shape[1] * xt.var())
    if args.model == "logistic":
        m = LogisticRegression(C=args.C, max_iter=1000)
    else:
        m = SVC(C=args.C, kernel=args.kernel, gamma=gamma if args.kernel == "rbf" else "scale")
    m.fit(xt, yt)
    print(json.dumps({
        "train_accuracy": float((m.predict(xt) == yt).mean()),
        "val_accuracy": float((m.predict(xv) == yv).mean()),
        "gamma": gamma,
    }))


if __name__ == "__main__":
    main()
