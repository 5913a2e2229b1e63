#!/usr/bin/env python3
"""What augmented views do to accuracy (scripts/bench-views.sh): for the
shared photos and for scikit-learn's digits, train features with
`extract --views K` for each K (K=1: the eval transform alone, the
baseline), `classify fit` with its defaults (--C auto), then `classify
score` on the validation images with the eval transform alone and with the
same K views averaged per image (test-time augmentation). Every row shows
its accuracy and balanced accuracy beside the K=1 baseline of the same run,
and what the views cost: extract's time and fit's time as ratios to K=1's.

The untrained test model's features carry no ImageNet knowledge, so the
differences here are small and may go either way: the table reports them as
they come.
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "../lib"))
from photos import images_under

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
EXTRACT = os.path.join(ROOT, "target", "release", "extract")
CLASSIFY = os.path.join(ROOT, "target", "release", "classify")


def split_photos(photos, dest, train_per_class):
    """The first `train_per_class` photos of each class (sorted) train, the rest validate, as links."""
    for cls in sorted(os.listdir(photos)):
        files = sorted(images_under(os.path.join(photos, cls)))
        for i, f in enumerate(files):
            d = os.path.join(dest, "train" if i < train_per_class else "val", cls)
            os.makedirs(d, exist_ok=True)
            os.symlink(os.path.abspath(f), os.path.join(d, os.path.basename(f)))


def timed(cmd):
    start = time.perf_counter()
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - start


def run(name, root, model, views, seed, common, tmp):
    def feats(split, k):
        out = os.path.join(tmp, f"{name}-{split}-v{k}.parquet")
        args = [EXTRACT, "--model", model, "--images", os.path.join(root, split), "--out", out, "--overwrite",
                "--device", "cpu", "--views", str(k), "--seed", str(seed)] + common
        return out, timed(args)

    val1, _ = feats("val", 1)
    rows = []
    for k in views:
        train, t_extract = feats("train", k)
        clf = os.path.join(tmp, f"{name}-v{k}.json")
        t_fit = timed([CLASSIFY, "fit", "--train", train, "--out", clf])
        saved = json.load(open(clf))

        def score(f):
            return json.loads(subprocess.run([CLASSIFY, "score", f, "--classifier", clf, "--json"], check=True,
                                             capture_output=True, text=True).stdout)

        plain = score(val1)
        tta = score(feats("val", k)[0]) if k > 1 else plain
        rows.append((k, saved["train_rows"], saved["model"].get("c"), plain, tta, t_extract, t_fit))
    base = rows[0]
    print(f"\n{name}: {base[1]} training images, validated on {base[3]['rows']} (model {os.path.basename(model)}, seed {seed})")
    print(f"{'views':>5} {'rows':>6} {'C':>8} {'val acc':>8} {'vs K=1':>7} {'bal acc':>8} {'TTA acc':>8} {'vs K=1':>7}"
          f" {'extract x':>10} {'fit x':>7}")
    for k, n, c, plain, tta, te, tf in rows:
        print(f"{k:>5} {n:>6} {c if c is not None else '-':>8} {plain['accuracy']:>8.4f} "
              f"{plain['accuracy'] - base[3]['accuracy']:>+7.4f} {plain['balanced_accuracy']:>8.4f} "
              f"{tta['accuracy']:>8.4f} {tta['accuracy'] - base[3]['accuracy']:>+7.4f} {te / base[5]:>10.2f} {tf / base[6]:>7.2f}")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--photos", default=os.path.join(ROOT, "..", "shared", "data", "imagenet-samples"))
    ap.add_argument("--views", default="1,4,8", help="comma list; the first is the baseline")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--digits-per-class", type=int, default=30, help="training images per digit class")
    ap.add_argument("--threads", type=int, default=os.cpu_count())
    args = ap.parse_args()
    views = [int(v) for v in args.views.split(",")]
    common = ["--threads", str(args.threads)]
    model = os.path.join(ROOT, "models", "resnet50.onnx")
    tmp = tempfile.mkdtemp(prefix="bench-views-")
    flags = open("/proc/cpuinfo").read().split("flags")[1].split("\n")[0] if os.path.exists("/proc/cpuinfo") else ""
    marks = [f for f in ("avx512_vnni", "amx_tile", "amx_int8") if f" {f}" in flags]
    print(f"machine: {os.cpu_count()} cores, flags {' '.join(marks) or 'no avx512_vnni/amx'}; views {views}")
    if os.path.isdir(args.photos):
        photos = os.path.join(tmp, "photos")
        split_photos(args.photos, photos, 15)
        run("photos", photos, model, views, args.seed, common, tmp)
    else:
        print(f"\nphotos: {args.photos} not found; left out")
    digits = os.path.join(tmp, "digits")
    subprocess.run([sys.executable, os.path.join(ROOT, "scripts", "make-digits.py"), "--out", digits,
                    "--train-per-class", str(args.digits_per_class), "--val-per-class", "40"], check=True,
                   stderr=subprocess.DEVNULL)
    run("digits", digits, model, views, args.seed, common, tmp)


if __name__ == "__main__":
    main()
