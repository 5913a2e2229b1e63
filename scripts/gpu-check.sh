#!/usr/bin/env bash
# The GPU check, one script for a lent GPU machine:
#   1. onnxruntime-gpu and its CUDA and cuDNN wheels into .venv (setup.sh --gpu);
#   2. a release build of extract and of the inference-bound example;
#   3. extract --device cuda, at fp32 and at --precision fp16, over a folder of
#      JPEGs, whose features must match the CPU's fp32 (cosine >= 0.999), and
#      images/s for batch 32, 64 and 128: inference alone, end to end, and end
#      to end at fp16, side by side (scripts/bench/gpu-check.py).
#
#   scripts/gpu-check.sh [--device cuda:N] [--images DIR] [--batches 32,64,128]
#                        [--copies 160] [--model models/resnet50.onnx]
#
# --device cpu runs every step on the CPU: that is how the tests check this
# script on machines without a GPU. For a machine that cannot reach PyPI or
# crates.io, set ORT_DYLIB_PATH (an onnxruntime-gpu libonnxruntime.so),
# PYTHON (one with numpy and pyarrow, and the nvidia-* CUDA wheels if the
# system has no CUDA libraries), and EXTRACT and INFERENCE_BOUND (binaries
# built elsewhere): then nothing is installed or built.
set -euo pipefail
cd "$(dirname "$0")/.."

device=cuda
args=("$@")
for ((i = 0; i < ${#args[@]}; i++)); do
    case "${args[i]}" in
        --device) device=${args[i + 1]:-cuda} ;;
        --device=*) device=${args[i]#--device=} ;;
        -h|--help) sed -n '2,18p' "$0"; exit 0 ;;
    esac
done

if [ -n "${ORT_DYLIB_PATH:-}" ]; then
    python=${PYTHON:-python3}
else
    if [ "$device" = cpu ]; then scripts/setup.sh; else scripts/setup.sh --gpu; fi
    python=.venv/bin/python
fi
if [ -z "${EXTRACT:-}" ] || [ -z "${INFERENCE_BOUND:-}" ]; then
    cargo build --release --quiet -p extract --bins --example inference_bound
    EXTRACT=${CARGO_TARGET_DIR:-target}/release/extract
    INFERENCE_BOUND=${CARGO_TARGET_DIR:-target}/release/examples/inference_bound
fi
if [ ! -f models/resnet50.onnx ]; then
    "$python" scripts/make-test-model.py --out models/resnet50.onnx --narrow-out models/resnet50-narrow.onnx
fi

# extract preloads the CUDA libraries that sit beside its ONNX Runtime; those
# of another Python (ORT_DYLIB_PATH elsewhere) reach it through the loader.
cuda_libs=$("$python" - <<'PY'
import glob, importlib.util, os
spec = importlib.util.find_spec("nvidia")
dirs = [d for p in (spec.submodule_search_locations if spec else []) for d in sorted(glob.glob(os.path.join(p, "*", "lib")))]
print(":".join(dirs))
PY
)
if [ -n "$cuda_libs" ]; then
    export LD_LIBRARY_PATH="$cuda_libs${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
fi
if [ "$device" != cpu ] && command -v nvidia-smi >/dev/null; then
    nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader
fi
exec "$python" scripts/bench/gpu-check.py --extract "$EXTRACT" --bound "$INFERENCE_BOUND" "$@"
