#!/usr/bin/env python3
"""An imbalanced task as feature files: three overlapping Gaussian classes
in 16 dimensions, 240 / 48 / 12 training rows and 40 validation rows each,
so that an unweighted fit leans to the large class and `balanced` class
weights change the predictions.

    make_imbalanced.py TRAIN VAL [--seed S] [--counts 240,48,12]

--counts: the training rows of each class (a large file, a class of one row).
"""
import argparse

import numpy as np

from bench_logistic import write


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("train")
    ap.add_argument("val")
    ap.add_argument("--seed", type=int, default=3)
    ap.add_argument("--counts", default="240,48,12")
    a = ap.parse_args()
    rng = np.random.default_rng(a.seed)
    d = 16
    centres = rng.normal(0, 1.0, (3, d))

    def rows(counts):
        y = np.concatenate([np.full(n, c) for c, n in enumerate(counts)])
        x = centres[y] + rng.normal(0, 1.6, (len(y), d))
        return x.astype(np.float32), y

    write(a.train, *rows([int(n) for n in a.counts.split(",")]), 3)
    write(a.val, *rows([40, 40, 40]), 3)


if __name__ == "__main__":
    main()
