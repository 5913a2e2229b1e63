#!/usr/bin/env python3
"""Whether LIBLINEAR itself meets its stopping rule on the problem classify's
linear SVM solves (one-vs-one, hinge loss, dual coordinate descent, the bias
a constant feature as large as the pair's RMS row norm), at the tolerance and
pass limit given (the test gives LIBLINEAR's own defaults).

    liblinear_converges.py TRAIN --layer L --C C --tol T --max-passes N [--scale standard|none]

Prints {"converged": bool, "passes": [per pair]} as JSON.
"""
import argparse
import json
import warnings

import numpy as np
import pyarrow.parquet as pq
from sklearn.exceptions import ConvergenceWarning
from sklearn.preprocessing import StandardScaler
from sklearn.svm import LinearSVC

p = argparse.ArgumentParser()
p.add_argument("train")
p.add_argument("--layer", required=True)
p.add_argument("--C", type=float, required=True)
p.add_argument("--tol", type=float, required=True)
p.add_argument("--max-passes", type=int, required=True)
p.add_argument("--scale", default="standard", choices=["standard", "none"])
a = p.parse_args()

t = pq.read_table(a.train)
x = np.stack(t.column(a.layer).to_numpy(zero_copy_only=False)).astype(np.float64)
y = t.column("label").to_numpy()
if a.scale == "standard":
    x = StandardScaler().fit_transform(x)
converged, passes = True, []
classes = np.unique(y)
for i in range(len(classes)):
    for j in range(i + 1, len(classes)):
        rows = (y == classes[i]) | (y == classes[j])
        xs = x[rows]
        scaling = max(1.0, float(np.sqrt((xs * xs).sum(axis=1).mean())))
        with warnings.catch_warnings(record=True) as w:
            warnings.simplefilter("always")
            m = LinearSVC(C=a.C, loss="hinge", dual=True, intercept_scaling=scaling, tol=a.tol, max_iter=a.max_passes, random_state=0)
            m.fit(xs, np.where(y[rows] == classes[i], 1, -1))
        converged &= not any(issubclass(x.category, ConvergenceWarning) for x in w)
        passes.append(int(m.n_iter_))
print(json.dumps({"converged": converged, "passes": passes}))
