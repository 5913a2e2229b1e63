#!/usr/bin/env bash
# Installs what the project needs beyond the Rust toolchain, idempotently:
#   - .venv with ONNX Runtime (its libonnxruntime.so is what extract loads),
#     the test-model generator and the reference oracles (scripts/requirements.txt);
#   - a copy of OpenVINO's plugin in .venv/test-openvino for the tests and
#     the benchmark (scripts/requirements-openvino.txt);
#   - img2dataset in a venv of its own, .venv/img2dataset (its pins are
#     not the oracles'), for the tests that read the shards it writes
#     (scripts/requirements-img2dataset.txt);
#   - the offline test models in models/ (only where no model is there yet:
#     a models/resnet50.onnx that is already there is never replaced).
#
#   scripts/setup.sh             CPU ONNX Runtime
#   scripts/setup.sh --gpu       onnxruntime-gpu with its CUDA and cuDNN wheels
#   scripts/setup.sh --openvino  also OpenVINO's plugin for ONNX Runtime
#                                (scripts/requirements-openvino.txt): --device openvino
#   scripts/setup.sh --web       also what `classify export --web` copies and its
#                                test drives the page with: web/node_modules
#                                (onnxruntime-web, playwright-core; npm) and
#                                Debian's chromium (apt-get, as root)
#   A run without --gpu or --openvino goes back to the CPU runtime alone.
set -euo pipefail
cd "$(dirname "$0")/.."

gpu=0
openvino=0
web=0
for arg in "$@"; do
    case "$arg" in
        --gpu) gpu=1 ;;
        --openvino) openvino=1 ;;
        --web) web=1 ;;
        -h|--help) sed -n '2,21p' "$0"; exit 0 ;;
        *) echo "setup.sh: unknown option $arg (try --help)" >&2; exit 2 ;;
    esac
done

python=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
    echo "setup: creating .venv" >&2
    "$python" -m venv .venv
fi

# The GPU build of ONNX Runtime, pinned here; it replaces the CPU wheel.
gpu_pin="onnxruntime-gpu[cuda,cudnn]==1.31.1"

# Reinstall only when the pinned lists, the GPU pin, or the GPU or OpenVINO choice changed.
stamp=.venv/.setup-stamp
want="$(cat scripts/requirements.txt scripts/requirements-openvino.txt - <<<"$gpu_pin" | sha256sum | cut -d' ' -f1) gpu=$gpu openvino=$openvino"
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
    echo "setup: installing Python packages into .venv" >&2
    # Both wheels install the same onnxruntime package folder: the one not
    # chosen goes first, or its files would stay mixed in with the other's.
    if [ "$gpu" = 1 ]; then
        .venv/bin/python -m pip uninstall -q -y onnxruntime 2>/dev/null || true
    else
        .venv/bin/python -m pip uninstall -q -y onnxruntime-gpu 2>/dev/null || true
    fi
    .venv/bin/python -m pip install -q --disable-pip-version-check -r scripts/requirements.txt
    if [ "$gpu" = 1 ]; then
        .venv/bin/python -m pip uninstall -q -y onnxruntime
        .venv/bin/python -m pip install -q --disable-pip-version-check "$gpu_pin"
    else
        # A package folder a removed GPU wheel shared with the CPU one: reinstall it whole.
        .venv/bin/python -m pip install -q --disable-pip-version-check --force-reinstall --no-deps \
            "$(grep -E '^onnxruntime==' scripts/requirements.txt)"
    fi
    # The plugin goes beside ONNX Runtime, where --device auto finds it; a
    # run without --openvino takes it away again.
    if [ "$openvino" = 1 ]; then
        .venv/bin/python -m pip install -q --disable-pip-version-check --no-deps -r scripts/requirements-openvino.txt
    else
        .venv/bin/python -m pip uninstall -q -y onnxruntime-ep-openvino 2>/dev/null || true
    fi
    echo "$want" > "$stamp"
fi

# A copy of the OpenVINO plugin outside site-packages, for the tests and the
# benchmark (they name it in ORT_OPENVINO_PLUGIN), so that no other run's
# --device auto takes it.
ov=.venv/test-openvino
if [ "$(cat "$ov/.stamp" 2>/dev/null)" != "$(sha256sum < scripts/requirements-openvino.txt)" ]; then
    echo "setup: installing the tests' copy of the OpenVINO plugin into $ov" >&2
    rm -rf "$ov"
    .venv/bin/python -m pip install -q --disable-pip-version-check --no-deps --target "$ov" -r scripts/requirements-openvino.txt
    sha256sum < scripts/requirements-openvino.txt > "$ov/.stamp"
fi

i2d=.venv/img2dataset
if [ "$(cat "$i2d/.stamp" 2>/dev/null)" != "$(sha256sum < scripts/requirements-img2dataset.txt)" ]; then
    echo "setup: installing img2dataset into $i2d" >&2
    rm -rf "$i2d"
    "$python" -m venv "$i2d"
    "$i2d/bin/python" -m pip install -q --disable-pip-version-check -r scripts/requirements-img2dataset.txt
    sha256sum < scripts/requirements-img2dataset.txt > "$i2d/.stamp"
fi

if [ "$web" = 1 ]; then
    command -v node >/dev/null || { echo "setup: --web needs Node.js and npm (apt-get install nodejs npm)" >&2; exit 1; }
    if [ "$(cat web/node_modules/.stamp 2>/dev/null)" != "$(sha256sum < web/package-lock.json)" ]; then
        echo "setup: installing onnxruntime-web and playwright-core into web/node_modules" >&2
        # No install scripts: playwright-core would fetch nothing, and the page needs none.
        (cd web && npm ci --no-audit --no-fund --ignore-scripts --loglevel=error)
        sha256sum < web/package-lock.json > web/node_modules/.stamp
    fi
    if ! command -v chromium >/dev/null; then
        if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
            echo "setup: installing Debian's chromium (the page's test drives it)" >&2
            apt-get update -qq >/dev/null
            DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
        else
            echo "setup: no chromium: install Debian's package chromium for the page's test" >&2
        fi
    fi
fi

if [ ! -f models/resnet50.onnx ] || [ ! -f models/resnet50-narrow.onnx ]; then
    echo "setup: writing the offline test models (untrained; see models/README.md)" >&2
    .venv/bin/python scripts/make-test-model.py \
        --out models/resnet50.onnx.new --narrow-out models/resnet50-narrow.onnx
    # Never overwrite a model that is already there (it may be real weights).
    if [ -f models/resnet50.onnx ]; then rm models/resnet50.onnx.new; else mv models/resnet50.onnx.new models/resnet50.onnx; fi
fi
echo "setup: ready (ONNX Runtime: $(ls .venv/lib/python3*/site-packages/onnxruntime/capi/libonnxruntime.so* | head -1))" >&2
