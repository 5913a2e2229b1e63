#!/usr/bin/env python3
"""scikit-learn's own logistic objective and gradient (the LinearModelLoss
its LogisticRegression minimizes) at a given point, in classify's terms.

    logistic_objective.py PROBLEM.json

PROBLEM.json: {"x": rows, "y": classes, "k": classes, "c": C,
"class_weight": per class, "theta": weight rows (one for two classes)
row-major, then intercepts}. Prints {"value": v, "gradient": [...]} in the
layout of theta.

scikit-learn averages the class-weighted row losses and adds
l2 / 2 ||W||^2; with l2 = 1 / (C S), S the sum of the row weights, S times
its objective is classify's (the sum of the weighted losses plus
||W||^2 / (2 C)), and S times its gradient classify's gradient.
"""
import json
import sys

import numpy as np
from sklearn._loss.loss import HalfBinomialLoss, HalfMultinomialLoss
from sklearn.linear_model._linear_loss import LinearModelLoss

p = json.load(open(sys.argv[1]))
x = np.asarray(p["x"], dtype=np.float64)
y = np.asarray(p["y"], dtype=np.float64)
k, c = p["k"], p["c"]
sw = np.asarray(p["class_weight"], dtype=np.float64)[y.astype(int)]
theta = np.asarray(p["theta"], dtype=np.float64)
n, d = x.shape
rows = 1 if k == 2 else k
w, b = theta[: rows * d].reshape(rows, d), theta[rows * d :]
coef = np.hstack([w, b[:, None]])
if k == 2:
    loss = LinearModelLoss(base_loss=HalfBinomialLoss(), fit_intercept=True)
    coef = coef[0]
else:
    loss = LinearModelLoss(base_loss=HalfMultinomialLoss(n_classes=k), fit_intercept=True)
s = sw.sum()
value, grad = loss.loss_gradient(coef, x, y, sample_weight=sw, l2_reg_strength=1.0 / (c * s))
grad = np.asarray(grad).reshape(rows, d + 1)
out = np.concatenate([grad[:, :d].ravel(), grad[:, d]]) * s
print(json.dumps({"value": float(value) * s, "gradient": out.tolist()}))
