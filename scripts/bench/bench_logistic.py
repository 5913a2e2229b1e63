#!/usr/bin/env python3
"""classify's logistic regression against scikit-learn's, where transfer
learning lives: n rows x 2,048 features, 10 classes, separable (as ImageNet
features of a few thousand images usually are) and noisy.

    scripts/bench-logistic.sh [--sizes 500,2000,5000,20000] [--classify target/release/classify]

For each case it writes one feature file (the contract's layout), fits
`classify fit --model logistic` (C=1, standardized) and scikit-learn's
`LogisticRegression(C=1, solver="lbfgs", max_iter=1000)` on the same
standardized rows, and prints fit seconds of both and their ratio, the final
regularized loss of both (sum of -log p + |W|^2 / 2C, computed here from
each model's weights), and the training accuracy of both. classify's time
is its own `fit seconds`, the solver alone, as scikit-learn's is its fit.
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq


def features(n, d, k, separable, seed):
    rng = np.random.default_rng(seed)
    y = np.arange(n) % k
    centers = rng.standard_normal((k, d)) * (1.0 if separable else 0.08)
    x = centers[y] + rng.standard_normal((n, d)) * (0.5 if separable else 1.0)
    # Like pooled ReLU activations: non-negative, skewed.
    return np.maximum(x + 0.5, 0).astype(np.float32), y


def write(path, x, y, k):
    classes = [f"c{i}" for i in range(k)]
    d = x.shape[1]
    table = pa.table({
        "path": pa.array([f"c{c}/{i:06d}.jpg" for i, c in enumerate(y)]),
        "label": pa.array(y.astype(np.int32)),
        "label_name": pa.array([classes[c] for c in y]),
        "avgpool": pa.FixedSizeListArray.from_arrays(pa.array(x.ravel(), pa.float32()), d),
    })
    meta = {
        "extract.format": "1", "extract.version": "bench",
        "extract.model": json.dumps({"file": "generated", "sha256": "0" * 64, "input": "input"}),
        "extract.classes": json.dumps(classes),
        "extract.layers": json.dumps({"avgpool": {"tensor": "generated", "pool": "none", "dim": d}}),
        "extract.preprocess": json.dumps({"resize": 256, "crop": 224, "mean": [0.485, 0.456, 0.406],
                                          "std": [0.229, 0.224, 0.225], "filter": "pil-bilinear-antialias"}),
        "extract.root": "/generated", "extract.skipped": "[]",
    }
    pq.write_table(table.replace_schema_metadata(meta), path)


def loss(w, b, xs, y, c):
    z = xs @ w.T + b
    if w.shape[0] == 1:
        t = np.where(y == 1, 1.0, -1.0)
        nll = np.logaddexp(0, -t * z[:, 0]).sum()
    else:
        m = z.max(axis=1, keepdims=True)
        lse = (m[:, 0] + np.log(np.exp(z - m).sum(axis=1)))
        nll = (lse - z[np.arange(len(y)), y]).sum()
    return nll + (w * w).sum() / (2 * c)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", default="500,2000,5000,20000")
    ap.add_argument("--dim", type=int, default=2048)
    ap.add_argument("--classes", type=int, default=10)
    ap.add_argument("--classify", default=os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))),
                                                       "target", "release", "classify"))
    args = ap.parse_args()
    from sklearn.linear_model import LogisticRegression
    from sklearn.preprocessing import StandardScaler

    tmp = tempfile.mkdtemp(prefix="bench-logistic-")
    k, d = args.classes, args.dim
    print(f"logistic regression, C=1, standardized, {k} classes x {d} features; classify vs scikit-learn "
          f"({os.cpu_count()} cores)")
    print(f"{'case':<18} {'classify s':>10} {'sklearn s':>10} {'ratio':>7} {'loss classify':>15} {'loss sklearn':>15} "
          f"{'rel diff':>9} {'acc classify':>13} {'acc sklearn':>12}")
    for n in (int(s) for s in args.sizes.split(",")):
        for separable in (True, False):
            x, y = features(n, d, k, separable, seed=n)
            path = os.path.join(tmp, "f.parquet")
            write(path, x, y, k)
            clf = os.path.join(tmp, "c.json")
            p = subprocess.run([args.classify, "fit", "--train", path, "--out", clf, "--model", "logistic", "--C", "1"],
                               capture_output=True, text=True)
            if p.returncode != 0:
                sys.exit(f"classify failed: {p.stderr}")
            saved = json.load(open(clf))
            ours_s = saved["fit_seconds"]
            xs = StandardScaler().fit_transform(x.astype(np.float64))
            w = np.asarray(saved["model"]["weights"])
            b = np.asarray(saved["model"]["intercepts"])
            ours_loss = loss(w, b, xs, y, 1.0)
            ours_acc = saved["train_accuracy"]
            start = time.perf_counter()
            m = LogisticRegression(C=1.0, max_iter=1000).fit(xs, y)
            sk_s = time.perf_counter() - start
            sk_loss = loss(m.coef_, m.intercept_, xs, y, 1.0)
            sk_acc = float((m.predict(xs) == y).mean())
            case = f"{n} {'separable' if separable else 'noisy'}"
            warn = "" if saved.get("converged", True) else "  (classify: not converged)"
            print(f"{case:<18} {ours_s:>10.2f} {sk_s:>10.2f} {ours_s / sk_s:>7.2f} {ours_loss:>15.6f} {sk_loss:>15.6f} "
                  f"{(ours_loss - sk_loss) / sk_loss:>9.1e} {ours_acc:>13.4f} {sk_acc:>12.4f}{warn}", flush=True)


if __name__ == "__main__":
    main()
