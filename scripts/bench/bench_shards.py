#!/usr/bin/env python3
"""Per-task overhead of a sharded extract run, against its per-image time.

    scripts/bench-shards.sh [--model M] [--photos DIR] [--listed 100000] [--threads N]

Each task of `extract --shard K/N` pays, before its first image, for the
process start, reading and hashing the model, building the ONNX Runtime
session, and listing the whole tree (every task lists it all, so all agree
on the classes and the split). Measured here, each figure the median of 3
runs of the release binary:

- t1: a task whose range is one photo, over a tree of just the photos;
- tP: the same over all P photos (--shard 0/1): the per-image time is
  (tP - t1) / (P - 1), and the overhead t1 minus one image's time;
- tL: a task of one photo in a tree that also holds `--listed` empty .jpg
  files (listed, never decoded, since the task's range is the one photo):
  tL - t1 is what listing that many files adds.

Then, for tasks of 1,000, 10,000 and 100,000 images, the share of the
task's time that the overhead takes, and the fewest images per task that
keep it under 5%: N at most (images / that).
"""
import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def timed(cmd):
    runs = []
    for _ in range(3):
        start = time.perf_counter()
        p = subprocess.run(cmd, capture_output=True, text=True)
        runs.append(time.perf_counter() - start)
        if p.returncode != 0:
            sys.exit(f"bench-shards: {' '.join(cmd)} failed: {p.stderr.strip().splitlines()[-1:]}")
    return statistics.median(runs)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default=os.path.join(ROOT, "models", "resnet50.onnx"))
    ap.add_argument("--photos", default=os.path.join(ROOT, "..", "shared", "data", "imagenet-samples"))
    ap.add_argument("--listed", type=int, default=100_000)
    ap.add_argument("--threads", type=int, default=os.cpu_count())
    ap.add_argument("--extract", default=os.path.join(ROOT, "target", "release", "extract"))
    args = ap.parse_args()

    tmp = tempfile.mkdtemp(prefix="bench-shards-")
    try:
        photos = [os.path.join(d, f) for d, _, fs in os.walk(args.photos) for f in fs
                  if f.lower().endswith((".jpg", ".jpeg", ".png"))]
        photos.sort()
        if len(photos) < 2:
            sys.exit(f"bench-shards: no photos under {args.photos}")
        tree = os.path.join(tmp, "tree")
        for i, p in enumerate(photos):
            # All in class "a" so that "a/..." sorts before the listed files' class "z".
            os.makedirs(os.path.join(tree, "a"), exist_ok=True)
            os.symlink(os.path.abspath(p), os.path.join(tree, "a", f"{i:05d}{os.path.splitext(p)[1]}"))
        n = len(photos)
        base = [args.extract, "--model", args.model, "--threads", str(args.threads), "--overwrite"]
        out = os.path.join(tmp, "out") + "/"
        # Task 0 of n: exactly the first photo.
        t1 = timed(base + ["--images", tree, "--shard", f"0/{n}", "--out", out])
        tp = timed(base + ["--images", tree, "--shard", "0/1", "--out", out])
        per_image = (tp - t1) / (n - 1)
        overhead = t1 - per_image

        big = os.path.join(tmp, "big")
        shutil.copytree(tree, big, symlinks=True)
        os.makedirs(os.path.join(big, "z"))
        for i in range(args.listed):
            open(os.path.join(big, "z", f"{i:07d}.jpg"), "w").close()
        total = n + args.listed
        tl = timed(base + ["--images", big, "--shard", f"0/{total}", "--out", out])
        listing = tl - t1

        print(f"extract per-task overhead ({os.cpu_count()} cores, {args.threads} threads, model {os.path.basename(args.model)})")
        print(f"  one-photo task, {n} files listed:        {t1:7.2f} s")
        print(f"  {n}-photo task:                          {tp:7.2f} s  -> {per_image:.3f} s per image ({1 / per_image:.1f} images/s)")
        print(f"  overhead (start, model, session, list):  {overhead:7.2f} s  = {overhead / per_image:.1f} images' time")
        print(f"  one-photo task, {total} files listed:   {tl:7.2f} s  -> listing {args.listed} more files adds {listing:.2f} s")
        print("  task of     overhead share (with listing of 1M files)")
        per_file = max(listing, 0.0) / args.listed
        for images in (1_000, 10_000, 100_000):
            fixed = overhead + per_file * 1_000_000
            print(f"  {images:>9,}   {overhead / (overhead + images * per_image):6.2%}   ({fixed / (fixed + images * per_image):6.2%})")
        fewest = overhead * 19 / per_image
        print(f"  overhead under 5%: at least {fewest:,.0f} images per task, so N <= images / {fewest:,.0f}")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
