#!/usr/bin/env bash
# From a clone to scored classifiers: set-up, extract, fit, score, reports.
#
#   scripts/quickstart.sh                 offline unless the ImageNet weights are cached
#                                         (or real weights are in models/resnet50.onnx)
#   scripts/quickstart.sh --pretrained    fetch torchvision's ImageNet ResNet50
#                                         (extract --model torchvision:IMAGENET1K_V1,
#                                         no torch) and the tutorial's wolves-vs-dogs data
#
# Online it reproduces the MindSpore tutorial's two scenarios on its own data.
# Offline (here, or whenever a download fails) it says so and uses what the
# package registries give: the seeded, untrained ResNet50 and scikit-learn's
# handwritten digits, a small dataset unlike ImageNet.
#
# Options for a smaller, faster run: --train-per-class N --val-per-class M
# (digits only). Environment: QUICKSTART_DIR (where data/, features/,
# reports/ and the classifiers go; default: the repository), EXTRACT and
# CLASSIFY (binaries to use instead of building release ones).
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$(pwd)

pretrained=0
train_per_class=50
val_per_class=20
while [ $# -gt 0 ]; do
    case "$1" in
        --pretrained) pretrained=1 ;;
        --train-per-class) train_per_class=$2; shift ;;
        --val-per-class) val_per_class=$2; shift ;;
        -h|--help) sed -n '2,17p' "$0"; exit 0 ;;
        *) echo "quickstart: unknown option $1 (try --help)" >&2; exit 2 ;;
    esac
    shift
done
work=${QUICKSTART_DIR:-$repo}
mkdir -p "$work"
work=$(cd "$work" && pwd)
py=$repo/.venv/bin/python
say() { echo "quickstart: $*" >&2; }

scripts/setup.sh
if [ -z "${EXTRACT:-}" ] || [ -z "${CLASSIFY:-}" ]; then
    say "building extract and classify (release; the first build takes a few minutes)"
    cargo build --release --quiet -p extract -p classify
    EXTRACT=${CARGO_TARGET_DIR:-$repo/target}/release/extract
    CLASSIFY=${CARGO_TARGET_DIR:-$repo/target}/release/classify
fi

untrained() { "$py" -c 'import onnx, sys; m = onnx.load(sys.argv[1], load_external_data=False); sys.exit(0 if "UNTRAINED" in m.doc_string else 1)' "$1"; }

# Real weights: a models/resnet50.onnx that is not ours, else torchvision's
# ImageNet weights from extract's cache (fetched with --pretrained).
imagenet=torchvision:IMAGENET1K_V1
model=""
if [ -f models/resnet50.onnx ] && ! untrained models/resnet50.onnx; then model=models/resnet50.onnx; fi
offline_why=""
if [ -z "$model" ] && [ "$pretrained" = 1 ]; then
    if log=$("$EXTRACT" --model "$imagenet" --list-layers 2>&1); then
        model=$imagenet
    else
        offline_why="fetching the pretrained ResNet50 failed: $(echo "$log" | tail -1)"
    fi
elif [ -z "$model" ]; then
    # Cached already? A mirror nowhere makes the check offline.
    if RESNET50_BASE_URL=http://127.0.0.1:9 "$EXTRACT" --model "$imagenet" --list-layers > /dev/null 2>&1; then
        model=$imagenet
    else
        offline_why="the ImageNet weights are not cached (run with --pretrained, online, or extract --model $imagenet)"
    fi
fi
if [ -n "$model" ] && [ -z "$offline_why" ]; then
    if log=$(scripts/fetch-canidae.sh "$work/data" 2>&1); then
        data=$work/data/Canidae
    else
        offline_why="downloading the wolves-vs-dogs dataset failed: $(echo "$log" | tail -1)"
    fi
fi

if [ -n "$offline_why" ]; then
    say "offline: $offline_why"
    say "offline: using the seeded, UNTRAINED ResNet50 (models/resnet50.onnx) and scikit-learn's handwritten digits"
    model=models/resnet50.onnx
    data=$work/data/digits
    stamp="$train_per_class $val_per_class"
    if [ "$(cat "$data/.split" 2>/dev/null)" != "$stamp" ]; then
        "$py" scripts/make-digits.py --out "$data" --train-per-class "$train_per_class" --val-per-class "$val_per_class"
        echo "$stamp" > "$data/.split"
    fi
    dataset="digits (offline)"
else
    dataset="Canidae wolves vs dogs"
fi

name=$(basename "$data")
mkdir -p "$work/features" "$work/reports" "$work/models"
for split in train val; do
    out=$work/features/$name-$split.parquet
    # Extraction is the slow step: reuse features newer than the model (a
    # file; named weights do not change) and every image.
    if [ -f "$out" ] && { [ ! -f "$model" ] || [ "$out" -nt "$model" ]; } && [ -z "$(find "$data/$split" -newer "$out" -print -quit)" ]; then
        say "reusing $out"
    else
        "$EXTRACT" --model "$model" --images "$data/$split" --layer layer3,avgpool --out "$out" --overwrite
    fi
done

rows=()
reports=()
for scenario in "fixed feature extractor|avgpool|logistic" "small, different dataset|layer3|svm"; do
    IFS='|' read -r title layer clf <<< "$scenario"
    slug=$name-$layer-$clf
    # C=1, scikit-learn's default, as the tutorial's recipe (and the test
    # that holds each row to scikit-learn's) takes it.
    "$CLASSIFY" fit --train "$work/features/$name-train.parquet" --layer "$layer" --model "$clf" --C 1 \
        --out "$work/models/$slug.json" > /dev/null
    "$CLASSIFY" score "$work/features/$name-val.parquet" --classifier "$work/models/$slug.json" --json \
        --report "$work/reports/$slug.html" > "$work/reports/$slug.json"
    rows+=("$title|$layer|$work/models/$slug.json|$work/reports/$slug.json")
    reports+=("$work/reports/$slug.html")
done

"$py" - "$dataset" "${rows[@]}" <<'PY'
import json, sys
dataset, rows = sys.argv[1], sys.argv[2:]
online = "offline" not in dataset
print(f"\nResNet50 transfer learning on {dataset}\n")
head = f"{'scenario':<26} {'layer':<8} {'classifier':<18} {'train':>6} {'val':>6} {'fit s':>7}"
print(head + ("   tutorial (val)" if online else ""))
for row in rows:
    title, layer, clf_path, score_path = row.split("|")
    clf, score = json.load(open(clf_path)), json.load(open(score_path))
    m = clf["model"]
    name = f"{m['kind']} C={m['c']:g}" + (f" {m['kernel']}" if m["kind"] == "svm" else "")
    line = f"{title:<26} {layer:<8} {name:<18} {clf['train_accuracy']:>6.3f} {score['accuracy']:>6.3f} {clf['fit_seconds']:>7.2f}"
    if online:
        line += "   0.983 after 2 epochs, 1.000 after 10" if layer == "avgpool" else "   -"
    print(line)
if not online:
    print("\n(untrained weights: the numbers show the pipeline learning, not ImageNet transfer;"
          f" chance is {1 / len(clf['classes']):.2f})")
PY
echo
for r in "${reports[@]}"; do echo "report: $r"; done
