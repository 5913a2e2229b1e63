#!/usr/bin/env python3
"""The GPU check behind scripts/gpu-check.sh (which installs and builds what
this needs, then runs it).

1. Parity: extract on --device and on the CPU over the same photos; every
   image's features must agree to cosine >= --min-cosine, layer by layer;
   and --precision fp16 on --device against the CPU's fp32, to cosine >=
   --fp16-min-cosine.
   The device that actually ran is read from extract's own report, so a
   silent fall-back to the CPU fails the check.
2. Speed, for each batch size, on the photos linked --copies times over:
   - inference: ONNX Runtime alone on a preprocessed batch, through the
     session extract uses (on CUDA: a pinned input bound by I/O binding),
     and on CUDA without I/O binding ("off": plain Session::run, ordinary
     memory);
   - extract end to end, to Parquet, at fp32 and at fp16. Its rate is the
     marginal one between a run over all the copies and a run over half of
     them, so the fixed cost of starting (loading the model, cuDNN's
     algorithm search) drops out.
Exits 1 when parity fails or the device was not the one asked for.
"""
import argparse
import os
import re
import subprocess
import sys
import tempfile
import time

import numpy as np
import pyarrow.parquet as pq

# The shared modules (reference, photos, ...) live in scripts/lib.
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "../lib"))
from photos import photos_or_generated, replicate

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def extract(args, images, out, device, batch, layers, precision="fp32"):
    """Runs extract; returns (wall seconds, the device it reports)."""
    cmd = [args.extract, "--model", args.model, "--images", images, "--out", out, "--overwrite", "--device", device,
           "--batch", str(batch), "--precision", precision] + [a for layer in layers for a in ("--layer", layer)]
    if args.threads:
        cmd += ["--threads", str(args.threads)]
    start = time.perf_counter()
    p = subprocess.run(cmd, capture_output=True, text=True)
    secs = time.perf_counter() - start
    if p.returncode != 0:
        sys.exit(f"gpu-check: extract --device {device} --precision {precision} failed: {p.stderr.strip()}")
    ran = re.search(r"^device: (\S+)", p.stderr, re.M)
    return secs, ran.group(1) if ran else "?"


def features(path, layer):
    t = pq.read_table(path)
    x = np.asarray(t.column(layer).combine_chunks().flatten(), np.float64).reshape(t.num_rows, -1)
    return t.column("path").to_pylist(), x


def inference(args, n, batch, bind=None):
    cmd = [args.bound, args.model, str(n), str(batch), str(args.threads or os.cpu_count()), args.device]
    p = subprocess.run(cmd + (["--bind", bind] if bind else []), capture_output=True, text=True)
    if p.returncode != 0:
        sys.exit(f"gpu-check: inference_bound failed: {p.stderr.strip()[-400:]}")
    return float(p.stdout.split("images_per_s=")[1].split()[0])


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--extract", required=True)
    ap.add_argument("--bound", required=True, help="the inference_bound example binary")
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--model", default=os.path.join(ROOT, "models", "resnet50.onnx"))
    ap.add_argument("--images", default=os.path.join(ROOT, "..", "shared", "data", "imagenet-samples"))
    ap.add_argument("--batches", default="32,64,128", help="comma-separated batch sizes")
    ap.add_argument("--copies", type=int, default=160, help="links to each photo in the speed runs")
    ap.add_argument("--threads", type=int, default=0, help="decode threads (default: all cores)")
    ap.add_argument("--layers", default="layer2,avgpool", help="layers compared for parity")
    ap.add_argument("--min-cosine", type=float, default=0.999)
    ap.add_argument("--fp16-min-cosine", type=float, default=0.999,
                    help="--precision fp16 on the device against fp32 on the CPU")
    args = ap.parse_args()
    tmp = tempfile.mkdtemp(prefix="gpu-check-")
    photos, n = photos_or_generated(args.images, tmp)
    layers = args.layers.split(",")
    print(f"gpu-check: {n} photos from {photos}; model {os.path.basename(args.model)}; {os.cpu_count()} cores", flush=True)

    # 1. Parity against the CPU.
    cpu_out, dev_out, half_out = (os.path.join(tmp, f) for f in ("cpu.parquet", "dev.parquet", "fp16.parquet"))
    extract(args, photos, cpu_out, "cpu", 32, layers)
    want = "cpu" if args.device == "cpu" else args.device if ":" in args.device else f"{args.device}:0"
    failed = False
    # fp32 on the device, then fp16 on the device, each against fp32 on the CPU.
    for precision, out, min_cos in (("fp32", dev_out, args.min_cosine), ("fp16", half_out, args.fp16_min_cosine)):
        _, ran = extract(args, photos, out, args.device, 32, layers, precision)
        wrong = ran != want
        failed |= wrong
        print(f"{precision}: device asked {args.device}, extract ran on {ran}{'' if not wrong else '  <- WRONG DEVICE'}")
        for layer in layers:
            pc, fc = features(cpu_out, layer)
            pd, fd = features(out, layer)
            assert pc == pd, "the two runs list different images"
            cos = (fc * fd).sum(1) / (np.linalg.norm(fc, axis=1) * np.linalg.norm(fd, axis=1))
            bad = cos < min_cos
            failed |= bool(bad.any())
            print(f"parity {precision} {layer:<8} dim {fc.shape[1]:>5}: cosine min {cos.min():.6f} mean {cos.mean():.6f}; "
                  f"max |diff| {np.abs(fc - fd).max():.3g}; {int(bad.sum())} of {len(cos)} below {min_cos}")

    # 2. Speed.
    full, half = os.path.join(tmp, "full"), os.path.join(tmp, "half")
    total = replicate(photos, full, args.copies)
    part = replicate(photos, half, max(1, args.copies // 2))
    rows = []
    for batch in (int(b) for b in args.batches.split(",")):
        bound = inference(args, total, batch)
        gpu = args.device != "cpu"
        off = inference(args, total, batch, "off") if gpu else float("nan")
        t_full, _ = extract(args, full, os.path.join(tmp, "speed.parquet"), args.device, batch, ["avgpool"])
        t_half, _ = extract(args, half, os.path.join(tmp, "speed.parquet"), args.device, batch, ["avgpool"])
        marginal = (total - part) / max(t_full - t_half, 1e-9)
        h_full, _ = extract(args, full, os.path.join(tmp, "speed.parquet"), args.device, batch, ["avgpool"], "fp16")
        h_half, _ = extract(args, half, os.path.join(tmp, "speed.parquet"), args.device, batch, ["avgpool"], "fp16")
        fp16 = (total - part) / max(h_full - h_half, 1e-9)
        rows.append((batch, bound, off, marginal, total / t_full, t_full - total / marginal, fp16))
        print(f"batch {batch}: done", flush=True)

    print(f"\n{args.device}, {total} images ({args.copies} x {n} photos), avgpool, "
          f"{args.threads or os.cpu_count()} decode threads")
    print(f"{'batch':>5} {'inference img/s':>16} {'unbound img/s':>14} {'extract img/s':>14} "
          f"{'incl. start':>12} {'start s':>8} {'extract/inference':>18} {'fp16 extract img/s':>19} {'fp16/fp32':>10}")
    for batch, bound, off, marginal, whole, start, fp16 in rows:
        print(f"{batch:>5} {bound:>16.1f} {off:>14.1f} {marginal:>14.1f} {whole:>12.1f} {start:>8.2f} "
              f"{marginal / bound:>18.2f} {fp16:>19.1f} {fp16 / marginal:>10.2f}")
    print(f"\nparity: {'FAILED' if failed else 'ok'}")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
