#!/usr/bin/env bash
# Installs what the project needs beyond the Rust toolchain, idempotently:
#   - .venv with ONNX Runtime (its libonnxruntime.so is what extract loads),
#     the test-model generator and the reference oracles (scripts/requirements.txt);
#   - the offline test models in models/ (only where no model is there yet:
#     a models/resnet50.onnx that is already there is never replaced).
#
#   scripts/setup.sh          CPU ONNX Runtime
#   scripts/setup.sh --gpu    onnxruntime-gpu with its CUDA and cuDNN wheels
set -euo pipefail
cd "$(dirname "$0")/.."

gpu=0
for arg in "$@"; do
    case "$arg" in
        --gpu) gpu=1 ;;
        -h|--help) sed -n '2,9p' "$0"; exit 0 ;;
        *) echo "setup.sh: unknown option $arg (try --help)" >&2; exit 2 ;;
    esac
done

python=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
    echo "setup: creating .venv" >&2
    "$python" -m venv .venv
fi

# Reinstall only when the pinned list (or the GPU choice) changed.
stamp=.venv/.setup-stamp
want="$(sha256sum scripts/requirements.txt | cut -d' ' -f1) gpu=$gpu"
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
    echo "setup: installing Python packages into .venv" >&2
    .venv/bin/python -m pip install -q --disable-pip-version-check -r scripts/requirements.txt
    if [ "$gpu" = 1 ]; then
        # The GPU wheel ships the same module and library plus the CUDA provider.
        .venv/bin/python -m pip uninstall -q -y onnxruntime
        .venv/bin/python -m pip install -q --disable-pip-version-check "onnxruntime-gpu[cuda,cudnn]==1.31.1"
    fi
    echo "$want" > "$stamp"
fi

if [ ! -f models/resnet50.onnx ] || [ ! -f models/resnet50-narrow.onnx ]; then
    echo "setup: writing the offline test models (untrained; see models/README.md)" >&2
    .venv/bin/python scripts/make-test-model.py \
        --out models/resnet50.onnx.new --narrow-out models/resnet50-narrow.onnx
    # Never overwrite a model that is already there (it may be real weights).
    if [ -f models/resnet50.onnx ]; then rm models/resnet50.onnx.new; else mv models/resnet50.onnx.new models/resnet50.onnx; fi
fi
echo "setup: ready (ONNX Runtime: $(ls .venv/lib/python3*/site-packages/onnxruntime/capi/libonnxruntime.so* | head -1))" >&2
