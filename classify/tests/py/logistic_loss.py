#!/usr/bin/env python3
"""The regularized loss classify's logistic regression reached, and
scikit-learn's on the same standardized rows (C from the classifier).

    logistic_loss.py TRAIN.parquet CLASSIFIER.json [--layer avgpool]

Prints {"classify": loss, "sklearn": loss, "converged": bool}."""
import argparse
import json

import numpy as np
import pyarrow.parquet as pq
from sklearn.linear_model import LogisticRegression
from sklearn.preprocessing import StandardScaler

from bench_logistic import loss


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("train")
    ap.add_argument("classifier")
    ap.add_argument("--layer", default="avgpool")
    args = ap.parse_args()
    t = pq.read_table(args.train)
    x = np.asarray(t.column(args.layer).combine_chunks().flatten(), np.float64).reshape(t.num_rows, -1)
    y = np.asarray(t.column("label").to_pylist())
    xs = StandardScaler().fit_transform(x)
    saved = json.load(open(args.classifier))
    c = saved["model"]["c"]
    ours = loss(np.asarray(saved["model"]["weights"]), np.asarray(saved["model"]["intercepts"]), xs, y, c)
    m = LogisticRegression(C=c, max_iter=1000).fit(xs, y)
    print(json.dumps({"classify": ours, "sklearn": loss(m.coef_, m.intercept_, xs, y, c),
                      "converged": saved.get("converged", True)}))


if __name__ == "__main__":
    main()
