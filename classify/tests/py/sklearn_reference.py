#!/usr/bin/env python3
"""scikit-learn on the same feature files, for comparison with classify.

    sklearn_reference.py TRAIN VAL --layer L --model logistic|svm|knn [--k 5]
        [--kernel linear|rbf] [--C 1.0] [--gamma G] [--scale standard|l2|none]
        [--class-weight none|balanced] [--predictions PRED.csv [--score-tol T]]

Prints {"train_accuracy": ..., "val_accuracy": ..., "val_balanced_accuracy":
..., "gamma": ...} as JSON.
With --predictions (what `classify predict` wrote for VAL), it also scores
classify's rows itself, against the labels and against scikit-learn's own
predictions, and compares the per-class scores: probabilities for the
logistic regression, `decision_function` for the SVM.
"""
import argparse
import csv
import json

import numpy as np
import pyarrow.parquet as pq
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import balanced_accuracy_score
from sklearn.neighbors import KNeighborsClassifier
from sklearn.utils.class_weight import compute_class_weight
from sklearn.preprocessing import Normalizer, StandardScaler
from sklearn.svm import SVC, LinearSVC


class OneVsOneLinearSVC:
    """The problem classify's linear SVM solves, solved by LIBLINEAR itself:
    one LinearSVC (hinge loss, dual) per pair of classes, the bias the weight
    of a constant feature as large as the pair's RMS row norm (at least 1),
    and libsvm's one-vs-one votes and confidences, as SVC reports them."""

    def __init__(self, C, class_weight=None):
        self.C = C
        self.class_weight = class_weight

    def fit(self, x, y):
        self.classes_ = np.unique(y)
        # SVC's rule: the class weights from all training rows, each pair's
        # two classes keeping theirs.
        w = (compute_class_weight("balanced", classes=self.classes_, y=y) if self.class_weight == "balanced"
             else np.ones(len(self.classes_)))
        self.pairs = []
        for a in range(len(self.classes_)):
            for b in range(a + 1, len(self.classes_)):
                rows = (y == self.classes_[a]) | (y == self.classes_[b])
                xs = x[rows]
                scaling = max(1.0, float(np.sqrt((xs * xs).sum(axis=1).mean())))
                m = LinearSVC(C=self.C, loss="hinge", dual=True, intercept_scaling=scaling,
                              tol=1e-6, max_iter=200_000, class_weight={1: w[a], -1: w[b]}, random_state=0)
                m.fit(xs, np.where(y[rows] == self.classes_[a], 1, -1))
                self.pairs.append((a, b, m))
        return self

    def decision_function(self, x):
        k = len(self.classes_)
        d = np.stack([m.decision_function(x) for _, _, m in self.pairs], axis=1)
        if k == 2:
            return d[:, 0] * -1  # SVC's binary sign: positive for classes_[1]
        votes, conf = np.zeros((len(x), k)), np.zeros((len(x), k))
        for col, (a, b, _) in enumerate(self.pairs):
            votes[:, a] += d[:, col] > 0
            votes[:, b] += d[:, col] <= 0
            conf[:, a] += d[:, col]
            conf[:, b] -= d[:, col]
        return votes + conf / (3 * (np.abs(conf) + 1))

    def predict(self, x):
        d = self.decision_function(x)
        if d.ndim == 1:
            return self.classes_[(d > 0).astype(int)]
        return self.classes_[np.argmax(np.round(d), axis=1)]  # libsvm: most votes, ties to the first


def load(path, layer):
    t = pq.read_table(path)
    keep = np.asarray([l is not None for l in t.column("label").to_pylist()])
    x = np.asarray(t.column(layer).combine_chunks().flatten(), dtype=np.float64).reshape(t.num_rows, -1)
    # Labels by class name, so files with differently ordered classes compare right.
    y = np.asarray(t.column("label_name").to_pylist(), dtype=object)
    paths = np.asarray(t.column("path").to_pylist(), dtype=object)
    return x[keep], y[keep], paths[keep]


def compare(path, model, xv, yv, pv, kind, tol):
    """classify's predictions for the rows of VAL, by path, against the truth and scikit-learn."""
    with open(path, newline="") as f:
        rows = {r["path"]: r for r in csv.DictReader(f)}
    ours = np.asarray([rows[p]["predicted"] for p in pv], dtype=object)
    classes = [str(c) for c in model.classes_]
    ours_scores = np.asarray([[float(rows[p][f"score_{c}"]) for c in classes] for p in pv])
    if kind in ("logistic", "knn"):
        theirs_scores = model.predict_proba(xv)
    else:
        d = model.decision_function(xv)
        # Binary SVC gives the positive class's (classes_[1]) value; classify writes -d, d.
        theirs_scores = np.stack([-d, d], axis=1) if d.ndim == 1 else d
    row_diff = np.abs(ours_scores - theirs_scores).max(axis=1)
    out = {
        "ours_accuracy": float((ours == yv).mean()),
        "ours_balanced_accuracy": float(balanced_accuracy_score(yv.astype(str), ours.astype(str))),
        "agreement": float((ours == model.predict(xv)).mean()),
        # The balanced accuracy of the model of classify's objective.
        "same_balanced_accuracy": float(balanced_accuracy_score(yv.astype(str), model.predict(xv).astype(str))),
        "score_max_diff": float(row_diff.max()),
        "score_rows_within_tol": float((row_diff <= tol).mean()),
    }
    if kind == "svm" and len(classes) > 2:
        # One-vs-one scores are votes plus a confidence squashed into
        # (-1/3, 1/3): the votes are the scores rounded. A pairwise decision
        # that flips sign near zero moves a row's votes by one; such a row
        # is counted apart, and every other row's confidences must agree.
        same_votes = (np.round(ours_scores) == np.round(theirs_scores)).all(axis=1)
        conf_diff = np.abs((ours_scores - np.round(ours_scores)) - (theirs_scores - np.round(theirs_scores))).max(axis=1)
        out["vote_rows_agree"] = float(same_votes.mean())
        out["score_rows_within_tol"] = float((same_votes & (conf_diff <= tol)).mean())
        out["score_max_diff_same_votes"] = float(conf_diff[same_votes].max()) if same_votes.any() else 0.0
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("train")
    ap.add_argument("val")
    ap.add_argument("--layer", required=True)
    ap.add_argument("--model", choices=["logistic", "svm", "knn"], required=True)
    ap.add_argument("--k", type=int, default=5)
    ap.add_argument("--kernel", choices=["linear", "rbf"], default="linear")
    ap.add_argument("--C", type=float, default=1.0)
    ap.add_argument("--gamma", type=float)
    ap.add_argument("--scale", choices=["standard", "l2", "none"], default="standard")
    ap.add_argument("--class-weight", choices=["none", "balanced"], default="none")
    ap.add_argument("--predictions")
    ap.add_argument("--score-tol", type=float, default=1e-3)
    args = ap.parse_args()
    xt, yt, _ = load(args.train, args.layer)
    xv, yv, pv = load(args.val, args.layer)
    if args.scale == "standard":
        s = StandardScaler().fit(xt)
        xt, xv = s.transform(xt), s.transform(xv)
    elif args.scale == "l2":
        xt, xv = Normalizer().transform(xt), Normalizer().transform(xv)
    gamma = args.gamma if args.gamma is not None else 1.0 / (xt.shape[1] * xt.var())
    cw = "balanced" if args.class_weight == "balanced" else None
    if args.model == "knn":
        m = KNeighborsClassifier(n_neighbors=args.k, metric="cosine", algorithm="brute")
    elif args.model == "logistic":
        m = LogisticRegression(C=args.C, max_iter=1000, class_weight=cw)
    else:
        m = SVC(C=args.C, kernel=args.kernel, gamma=gamma if args.kernel == "rbf" else "scale", class_weight=cw)
    m.fit(xt, yt)
    out = {
        "train_accuracy": float((m.predict(xt) == yt).mean()),
        "val_accuracy": float((m.predict(xv) == yv).mean()),
        "val_balanced_accuracy": float(balanced_accuracy_score(yv.astype(str), m.predict(xv).astype(str))),
        "val_rows": int(len(yv)),
        "gamma": gamma,
    }
    if args.predictions:
        # Row by row against the model of the same objective: SVC for the
        # logistic's and RBF's, LIBLINEAR's pairs for the linear SVM (whose
        # bias, unlike SVC's, is regularized).
        same = OneVsOneLinearSVC(args.C, cw).fit(xt, yt) if args.model == "svm" and args.kernel == "linear" else m
        out.update(compare(args.predictions, same, xv, yv, pv, args.model, args.score_tol))
    print(json.dumps(out))


if __name__ == "__main__":
    main()
