#!/usr/bin/env python3
"""Feature files with planted faults, for `classify inspect`: four
well-separated Gaussian classes in 32 dimensions (60 training, 20
validation rows each), then in TRAIN two rows that are copies of other
TRAIN rows (one exact, one with noise 1e-3), two rows that are copies of
VAL rows (leakage) and five rows whose label is moved to another class.
Prints {"inside": [[a, b], ...], "across": [[train, val], ...],
"mislabeled": {path: true class}} as JSON.

    make_mislabeled.py TRAIN VAL [--seed S]
"""
import argparse
import json

import numpy as np

from bench_logistic import write


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("train")
    ap.add_argument("val")
    ap.add_argument("--seed", type=int, default=5)
    a = ap.parse_args()
    rng = np.random.default_rng(a.seed)
    k, d = 4, 32
    centres = rng.normal(0, 3.0, (k, d))

    def rows(per):
        y = np.repeat(np.arange(k), per)
        return (centres[y] + rng.normal(0, 1.0, (len(y), d))).astype(np.float32), y

    xt, yt = rows(60)
    xv, yv = rows(20)
    path = lambda y, i: f"c{y}/{i:06d}.jpg"  # as bench_logistic.write names rows
    xt[10], xt[70] = xt[3], xt[65] + rng.normal(0, 1e-3, d)
    inside = [[path(yt[3], 3), path(yt[10], 10)], [path(yt[65], 65), path(yt[70], 70)]]
    xt[130], xt[200] = xv[5], xv[61]
    yt[130], yt[200] = yv[5], yv[61]
    across = [[path(yt[130], 130), path(yv[5], 5)], [path(yt[200], 200), path(yv[61], 61)]]
    mislabeled = {}
    for i in (20, 80, 140, 170, 230):
        true = int(yt[i])
        yt[i] = (true + 1) % k
        mislabeled[path(yt[i], i)] = f"c{true}"
    write(a.train, xt, yt, k)
    write(a.val, xv, yv, k)
    print(json.dumps({"inside": inside, "across": across, "mislabeled": mislabeled}))


if __name__ == "__main__":
    main()
