#!/usr/bin/env bash
# The project's test command (README, CI): set-up, then every test.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
cargo test --workspace "$@"
