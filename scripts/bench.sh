#!/usr/bin/env bash
# The speed benchmark: prints one table of ratios against baselines measured
# in the same run (scripts/bench/bench.py says what each column is).
#
#   scripts/bench.sh [--batch 32] [--threads N] [--photos DIR] [--fit-rows 1500]
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
cargo build --release --quiet -p extract -p classify --bins --example inference_bound
exec .venv/bin/python scripts/bench/bench.py "$@"
