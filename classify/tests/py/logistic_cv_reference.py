#!/usr/bin/env python3
"""scikit-learn's LogisticRegressionCV on the grid `classify fit --C auto`
searches, for comparison with what classify picks.

    logistic_cv_reference.py TRAIN VAL --Cs LIST --cv K

Standardizes on TRAIN (as a user of LogisticRegressionCV would, before it),
searches the Cs on the folds classify's documented rule deals (within each
class, rows in file order go to folds 0, 1, ..., K-1, 0, ...) by accuracy,
refits on all of TRAIN and prints {"C": ..., "val_accuracy": ...,
"val_rows": ...} as JSON.
"""
import argparse
import json
import warnings

import numpy as np
from sklearn.linear_model import LogisticRegressionCV
from sklearn.model_selection import PredefinedSplit
from sklearn.preprocessing import StandardScaler

from cv_reference import folds
from sklearn_reference import load


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("train")
    ap.add_argument("val")
    ap.add_argument("--Cs", required=True)
    ap.add_argument("--cv", type=int, required=True)
    ap.add_argument("--layer", default="avgpool")
    a = ap.parse_args()
    warnings.filterwarnings("ignore", category=FutureWarning)  # scikit-learn 1.8's notices of its 1.10
    xt, yt, _ = load(a.train, a.layer)
    xv, yv, _ = load(a.val, a.layer)
    s = StandardScaler().fit(xt)
    cs = [float(c) for c in a.Cs.split(",")]
    m = LogisticRegressionCV(Cs=cs, cv=PredefinedSplit(folds(yt, a.cv)), scoring="accuracy", max_iter=1000)
    m.fit(s.transform(xt), yt)
    print(json.dumps({"C": float(np.ravel(m.C_)[0]), "val_accuracy": float((m.predict(s.transform(xv)) == yv).mean()),
                      "val_rows": int(len(yv))}))


if __name__ == "__main__":
    main()
