#!/usr/bin/env bash
# The project's test command (README, CI): the format and lint gates
# (cargo fmt --check, cargo clippy -D warnings, no import cycle), set-up, every test, then
# the Slurm check (scripts/slurm-check.sh: a real one-node Slurm running
# scripts/slurm/extract.sbatch; it installs Slurm where it can and says
# when and why it skipped). Arguments go to cargo test; with any, the Slurm
# check is left out.
set -euo pipefail
cd "$(dirname "$0")/.."
# The code as the Rust ecosystem keeps it: formatted (rustfmt.toml) and
# clippy-clean, or nothing is tested.
cargo fmt --check
cargo clippy --workspace --all-targets --quiet -- -D warnings
# No module imports one that imports it back (cargo tree checks the crates).
scripts/check-modules.py
# --web: the browser page's runtime and test tools (onnxruntime-web, chromium).
scripts/setup.sh --web
# Checks bound to hardware this machine lacks may be skipped, by name and
# said here; any other missing piece fails its test (testkit::hardware).
if grep -q '^vendor_id.*GenuineIntel' /proc/cpuinfo; then
    skip=openvino-not-intel
    echo "test: an Intel CPU: the OpenVINO refusal a CPU of another vendor gets is not seen (RESNET_FEATURES_SKIP=$skip)" >&2
else
    skip=openvino-parity
    echo "test: not an Intel CPU: OpenVINO's parity with ONNX Runtime is not checked (RESNET_FEATURES_SKIP=$skip)" >&2
fi
export RESNET_FEATURES_SKIP="${RESNET_FEATURES_SKIP:+$RESNET_FEATURES_SKIP,}$skip"
# The integration tests are #[ignore]d for a plain `cargo test` (they need
# this set-up); here every one of them runs.
if printf '%s\n' "$@" | grep -qx -- '--'; then
    cargo test --workspace "$@" --include-ignored
else
    cargo test --workspace "$@" -- --include-ignored
fi
# classify reads models through backbone alone: it links neither extract nor ONNX Runtime.
if cargo tree -p classify -e normal --prefix none | grep -E '^(extract|ort|ort-sys) v'; then
    echo "test: classify depends on extract or ort (above)" >&2
    exit 1
fi
if [ $# -gt 0 ]; then
    echo "slurm-check: skipped: cargo test was given arguments ($*)" >&2
    exit 0
fi
# The debug binary the tests just built (where cargo puts it): no second build.
EXTRACT=${CARGO_TARGET_DIR:-target}/debug/extract scripts/slurm-check.sh --install
