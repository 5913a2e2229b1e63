#!/usr/bin/env bash
# What one task of a sharded run costs before its first image (process
# start, reading and hashing the model, building the session, listing the
# tree), against the per-image time, so N can be chosen
# (scripts/bench/bench_shards.py says how each figure is measured).
#
#   scripts/bench-shards.sh [--model models/resnet50.onnx] [--photos DIR] [--listed 100000]
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
cargo build --release --quiet -p extract -p classify --bins --example inference_bound
exec .venv/bin/python scripts/bench/bench_shards.py "$@"
