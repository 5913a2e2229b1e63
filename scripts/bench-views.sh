#!/usr/bin/env bash
# What augmented views (extract --views K) do to accuracy, on the shared
# photos and on digits, beside K=1 in the same run (scripts/bench/views.py
# says what each column is).
#
#   scripts/bench-views.sh [--views 1,4,8] [--seed 0] [--photos DIR] [--digits-per-class 30]
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
cargo build --release --quiet -p extract -p classify --bins
exec .venv/bin/python scripts/bench/views.py "$@"
