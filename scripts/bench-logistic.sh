#!/usr/bin/env bash
# classify's logistic regression against scikit-learn's over sizes n x 2048,
# separable and noisy (scripts/bench/bench_logistic.py says what each column is).
#
#   scripts/bench-logistic.sh [--sizes 500,2000,5000,20000]
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
cargo build --release --quiet -p classify --bins
exec .venv/bin/python scripts/bench/bench_logistic.py "$@"
