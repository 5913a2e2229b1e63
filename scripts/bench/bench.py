#!/usr/bin/env python3
"""The benchmark behind scripts/bench.sh: one table, every number a ratio
against a baseline measured in the same run (this machine is noisy).

For the same model file, threads and batch size:
  1. inference bound: ONNX Runtime alone on a preprocessed batch
     (extract/examples/inference_bound.rs, the session extract uses);
  2. extract end to end on real JPEG photos, to Parquet;
  3. the field's Python baseline on the same photos: PIL decode + resize +
     crop + normalize in a loop, onnxruntime's Python API, pyarrow;
  4. ratios 2/1 and 2/3, for the full and the narrow model; peak memory of
     extract on N and 4N images;
  5. devices and precisions: extract end to end with the full model on the
     CPU provider at fp32 (the baseline), fp16 and int8 (calibrated on 64
     of the photos), and OpenVINO's plugin at fp32 and int8 (on an Intel
     CPU: the plugin offers no other vendor's): images/s, the ratio to
     the baseline, and the features' cosine to the baseline's (min, median);
     the CPU's model and its avx512_vnni / amx flags printed above;
  5b. tar shards: the same photos as webdataset shards (scripts/make-shards.py)
     against the folder, narrow model, end to end; peak memory for 4 and
     16 shards; what one task of a 1,000-shard run pays before its image;
  6. phone photos (12 Mpx JPEGs made from the photos, photos.phone_photos):
     extract end to end with the narrow and the full model, JPEGs decoded
     at their reduced scale (the default) against --exact-decode (the
     baseline), the features' cosine between the two; and PIL's decode
     alone, draft against full, for scale;
  7. classify fit against scikit-learn on one feature file (n in the
     thousands): fit-time ratio and accuracy difference.
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

import numpy as np
import onnx
import onnxruntime as ort
import pyarrow as pa
import pyarrow.parquet as pq

# The shared modules (reference, photos, ...) live in scripts/lib.
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "../lib"))
from photos import images_under, phone_photos, photos_or_generated, replicate
from reference import load_rgb, transform

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def timed(cmd, env=None):
    """Wall seconds and peak RSS (MiB) of a command, via GNU time."""
    with tempfile.NamedTemporaryFile("r") as t:
        start = time.perf_counter()
        subprocess.run(["/usr/bin/time", "-f", "%M", "-o", t.name] + cmd, check=True,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
        secs = time.perf_counter() - start
        return secs, int(t.read().strip().splitlines()[-1]) / 1024


def python_baseline(model_path, root, out, batch, threads):
    """The usual PyTorch-free Python loop; returns seconds."""
    start = time.perf_counter()
    m = onnx.load(model_path)
    pool = [n.output[0] for n in m.graph.node if n.op_type == "GlobalAveragePool"][0]
    del m.graph.output[:]
    m.graph.output.append(onnx.helper.make_tensor_value_info(pool, onnx.TensorProto.FLOAT, None))
    so = ort.SessionOptions()
    so.intra_op_num_threads = threads
    sess = ort.InferenceSession(m.SerializeToString(), so, providers=["CPUExecutionProvider"])
    name = sess.get_inputs()[0].name
    paths = images_under(root)
    feats = []
    for i in range(0, len(paths), batch):
        x = np.stack([transform(load_rgb(p), 256, 224) for p in paths[i:i + batch]])
        feats.append(sess.run(None, {name: x})[0].reshape(len(x), -1))
    f = np.concatenate(feats)
    rel = [os.path.relpath(p, root) for p in paths]
    col = pa.FixedSizeListArray.from_arrays(pa.array(f.ravel(), pa.float32()), f.shape[1])
    pq.write_table(pa.table({"path": rel, "avgpool": col}), out)
    return time.perf_counter() - start


def cpu_line():
    """The CPU's model and the flags the int8 and OpenVINO kernels use."""
    try:
        info = open("/proc/cpuinfo").read()
    except OSError:
        return "cpu: unknown"
    model = next((l.split(":", 1)[1].strip() for l in info.splitlines() if l.startswith("model name")), "unknown")
    flags = set(next((l.split(":", 1)[1].split() for l in info.splitlines() if l.startswith("flags")), []))
    wanted = ["avx2", "avx512f", "avx512_vnni", "avx512_bf16", "amx_tile", "amx_int8", "amx_bf16"]
    return f"cpu: {model}; flags: {' '.join(f for f in wanted if f in flags) or 'none of ' + ' '.join(wanted)}"


def cosines(a, b):
    x, y = (pq.read_table(f).column("avgpool").combine_chunks() for f in (a, b))
    x, y = (np.asarray(t.flatten()).reshape(len(t), -1) for t in (x, y))
    c = (x * y).sum(1) / (np.linalg.norm(x, axis=1) * np.linalg.norm(y, axis=1))
    return float(c.min()), float(np.median(c))


def devices(extract, photos, many, n, common, repeat, tmp):
    """Each device and precision against the CPU provider at fp32, in the same rounds."""
    plugin = os.path.join(ROOT, ".venv", "test-openvino", "onnxruntime_ep_openvino",
                          "libonnxruntime_providers_openvino_plugin.so")
    env = dict(os.environ, XDG_CACHE_HOME=os.path.join(tmp, "cache"))
    configs = [("cpu fp32", ["--device", "cpu"]), ("cpu fp16", ["--device", "cpu", "--precision", "fp16"]),
               ("cpu int8", ["--device", "cpu", "--precision", "int8"])]
    model = os.path.join(ROOT, "models", "resnet50.onnx")
    print(f"\ndevices and precisions, full model, extract end to end (steady-state as above); {cpu_line()}")
    if os.path.isfile(plugin):
        env["ORT_OPENVINO_PLUGIN"] = plugin
        # The plugin offers Intel devices alone: elsewhere extract says so in one line.
        probe = subprocess.run([extract, "--model", model, "--images", photos, "--out", os.path.join(tmp, "probe.parquet"),
                                "--device", "openvino"] + common, capture_output=True, text=True, env=env)
        if probe.returncode == 0:
            configs[1:1] = [("openvino fp32", ["--device", "openvino"])]
            configs.append(("openvino int8", ["--device", "openvino", "--precision", "int8"]))
        else:
            print(f"(no OpenVINO rows: {probe.stderr.strip().splitlines()[-1]})")
    else:
        print(f"(no OpenVINO rows: {plugin} is missing; scripts/setup.sh installs it)")

    def run(folder, out, extra):
        start = time.perf_counter()
        subprocess.run([extract, "--model", model, "--images", folder, "--out", out, "--overwrite"] + common + extra,
                       check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
        return time.perf_counter() - start

    # The int8 model is calibrated and cached once, before any timing.
    run(photos, os.path.join(tmp, "warm.parquet"), ["--device", "cpu", "--precision", "int8"])
    rates = {label: [] for label, _ in configs}
    for _ in range(repeat):
        for label, extra in configs:
            out = os.path.join(tmp, label.replace(" ", "-") + ".parquet")
            t1 = run(photos, out, extra)
            t4 = run(many, os.path.join(tmp, "x4.parquet"), extra)
            rates[label].append(3 * n / (t4 - t1))
    base = float(np.median(rates["cpu fp32"]))
    print(f"{'configuration':<16} {'img/s':>8} {'vs cpu fp32':>12} {'min cos':>9} {'median cos':>11}")
    for label, _ in configs:
        r = float(np.median(rates[label]))
        lo, mid = cosines(os.path.join(tmp, label.replace(" ", "-") + ".parquet"), os.path.join(tmp, "cpu-fp32.parquet"))
        print(f"{label:<16} {r:>8.1f} {r / base:>12.2f} {lo:>9.5f} {mid:>11.5f}")


def phones(extract, photos, common, repeat, tmp):
    """Phone-size JPEGs: the default (scaled) decode against --exact-decode."""
    folder = os.path.join(tmp, "phone")
    n = phone_photos(photos, folder, 16)
    many = os.path.join(tmp, "phone-x4")
    replicate(folder, many, 4)
    print(f"\nphone photos: {n} JPEGs of 4032x3024 (portrait 3024x4032), extract end to end (steady-state as "
          f"above), the default decode against --exact-decode; {cpu_line()}")

    def rate(fn, files):
        start = time.perf_counter()
        for f in files:
            fn(f)
        return len(files) / (time.perf_counter() - start)

    from PIL import Image

    def draft(f):
        im = Image.open(f)
        im.draft(im.mode, (256, 256))
        im.convert("RGB")

    files = images_under(folder)
    full_pil = rate(lambda f: Image.open(f).convert("RGB"), files)
    draft_pil = rate(draft, files)
    print(f"PIL's decode alone, one thread: full {full_pil:.1f} img/s, draft {draft_pil:.1f} img/s ({draft_pil / full_pil:.2f}x)")
    print(f"{'model':<8} {'exact img/s':>12} {'scaled img/s':>13} {'scaled/exact':>13} {'min cos':>9} {'median cos':>11}")
    for label in ("narrow", "full"):
        model = os.path.join(ROOT, "models", "resnet50.onnx" if label == "full" else "resnet50-narrow.onnx")

        def run(images, out, extra):
            start = time.perf_counter()
            subprocess.run([extract, "--model", model, "--images", images, "--out", out, "--overwrite", "--device", "cpu"]
                           + common + extra, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            return time.perf_counter() - start

        rates = {"exact": [], "scaled": []}
        for _ in range(repeat):
            for decode, extra in (("exact", ["--exact-decode"]), ("scaled", [])):
                out = os.path.join(tmp, f"phone-{label}-{decode}.parquet")
                t1 = run(folder, out, extra)
                t4 = run(many, os.path.join(tmp, "phone-x4.parquet"), extra)
                rates[decode].append(3 * n / (t4 - t1))
        exact, scaled = (float(np.median(rates[d])) for d in ("exact", "scaled"))
        lo, mid = cosines(*(os.path.join(tmp, f"phone-{label}-{d}.parquet") for d in ("scaled", "exact")))
        print(f"{label:<8} {exact:>12.1f} {scaled:>13.1f} {scaled / exact:>13.2f} {lo:>9.5f} {mid:>11.5f}")


class S3Server:
    """A real S3 server on 127.0.0.1 (scripts/s3-server.sh), its AWS_*
    variables in `env`; stopped by its pid on exit."""

    def __init__(self, tmp):
        self.dir = os.path.join(tmp, "s3-server")
        subprocess.run([os.path.join(ROOT, "scripts", "s3-server.sh"), "start", self.dir], check=True,
                       stderr=subprocess.DEVNULL)
        self.env = dict(os.environ)
        for line in open(os.path.join(self.dir, "env")):
            key, value = line.removeprefix("export ").strip().split("=", 1)
            self.env[key] = value

    def s3(self, *args):
        subprocess.run([sys.executable, os.path.join(ROOT, "extract", "tests", "py", "s3.py"), *args], check=True,
                       env=self.env)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        subprocess.run([os.path.join(ROOT, "scripts", "s3-server.sh"), "stop", self.dir], check=False)


def tar_shards(extract, photos, many, n, common, repeat, tmp):
    """The same photos as a folder, as webdataset tar shards on local disk,
    and as the same shards in a bucket on a real S3 server on 127.0.0.1 (4
    shards for N photos, 16 for 4N), narrow model: shards must not cost the
    decode-bound model its rate, nor grow memory with the shards."""
    model = os.path.join(ROOT, "models", "resnet50-narrow.onnx")
    make = os.path.join(ROOT, "scripts", "make-shards.py")
    sharded = {}
    for name, folder, count in (("n", photos, 4), ("4n", many, 16)):
        sharded[name] = os.path.join(tmp, f"shards-{name}")
        subprocess.run([sys.executable, make, folder, sharded[name], "--shards", str(count)], check=True)
    with S3Server(tmp) as server:
        server.s3("mb", "bench")
        for name in sharded:
            server.s3("put", sharded[name], f"bench/shards-{name}")
        tar_rates(extract, model, photos, many, sharded, server, n, common, repeat, tmp)
        task_overhead(extract, model, make, photos, server, common, repeat, tmp)


def tar_rates(extract, model, photos, many, sharded, server, n, common, repeat, tmp):
    print(f"\ntar shards against the folder, narrow model, extract end to end (steady-state as above); {cpu_line()}")
    sources = {"folder": (photos, many), "shards": (sharded["n"], sharded["4n"]),
               "bucket": ("s3://bench/shards-n/", "s3://bench/shards-4n/")}
    rows = {k: [] for k in sources}
    mem = {k: [] for k in sources}
    for _ in range(repeat):
        for label, (small, large) in sources.items():
            out = os.path.join(tmp, f"tar-{label}.parquet")
            (t1, m1), (t4, m4) = (timed([extract, "--model", model, "--images", images, "--out", out, "--overwrite",
                                         "--device", "cpu"] + common, env=server.env) for images in (small, large))
            rows[label].append(3 * n / (t4 - t1))
            mem[label].append((m1, m4))
    folder = float(np.median(rows["folder"]))
    print(f"{'images':<8} {'img/s':>8} {'vs folder':>10} {'peak MiB N':>11} {'4N':>6} {'ratio':>6}")
    for label in sources:
        rate = float(np.median(rows[label]))
        m1, m4 = (float(np.median(col)) for col in zip(*mem[label]))
        print(f"{label:<8} {rate:>8.1f} {rate / folder:>10.2f} {m1:>11.0f} {m4:>6.0f} {m4 / m1:>6.3f}")
    print("(folder: N photos and 4N; shards: 4 and 16 shards on disk; bucket: the same shards from the S3 server)")


def task_overhead(extract, model, make, photos, server, common, repeat, tmp):
    """What a task pays before its first image where the run has 1,000
    shards: one task of 1,000 (--shard 0/1000: one image) against the same
    image in one shard alone. Without a class map every task lists every
    shard; with one it lists the names and reads its own shard."""
    one = os.path.join(tmp, "one-image")
    first = images_under(photos)[0]
    os.makedirs(os.path.join(one, "c"), exist_ok=True)
    os.symlink(os.path.abspath(first), os.path.join(one, "c", os.path.basename(first)))
    thousand = os.path.join(tmp, "thousand")
    subprocess.run([sys.executable, make, one, os.path.join(tmp, "single-shard"), "--shards", "1"], check=True)
    os.makedirs(thousand, exist_ok=True)
    for k in range(1000):
        os.link(os.path.join(tmp, "single-shard", "shard-00000.tar"), os.path.join(thousand, f"shard-{k:05d}.tar"))
    server.s3("put", thousand, "bench/thousand")
    server.s3("put", os.path.join(tmp, "single-shard"), "bench/single")
    classes = os.path.join(tmp, "classes.txt")
    with open(classes, "w") as f:
        f.write("0\n")

    def task(images, extra):
        start = time.perf_counter()
        subprocess.run([extract, "--model", model, "--images", images, "--device", "cpu"] + common + extra,
                       check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=server.env)
        return time.perf_counter() - start

    print("\none task of a 1,000-shard run (--shard 0/1000, one image) against its image in one shard alone")
    print(f"{'shards':<8} {'split':<24} {'task s':>7} {'alone s':>8} {'overhead ms':>12}")
    for where, many_shards, single in (("disk", thousand, os.path.join(tmp, "single-shard")),
                                       ("bucket", "s3://bench/thousand/", "s3://bench/single/")):
        for split, extra in (("listing every shard", []), ("whole shards (class map)", ["--class-map", classes])):
            lone, big = [], []
            for _ in range(repeat):
                lone.append(task(single, ["--out", os.path.join(tmp, "lone.parquet"), "--overwrite"] + extra))
                big.append(task(many_shards, ["--shard", "0/1000", "--out", os.path.join(tmp, "thousand-parts") + "/",
                                              "--overwrite"] + extra))
            lone, big = float(np.median(lone)), float(np.median(big))
            print(f"{where:<8} {split:<24} {big:>7.2f} {lone:>8.2f} {(big - lone) * 1000:>12.0f}")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--photos", default=os.path.join(ROOT, "..", "shared", "data", "imagenet-samples"))
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--threads", type=int, default=os.cpu_count())
    ap.add_argument("--repeat", type=int, default=3, help="rounds of the extract measurements (median shown)")
    ap.add_argument("--fit-rows", type=int, default=1500,
                    help="training rows of the classify-vs-scikit-learn feature file (at most 1500)")
    ap.add_argument("--only", choices=["all", "tar"], default="all",
                    help="tar: the tar-shard and bucket section alone")
    args = ap.parse_args()
    extract = os.path.join(ROOT, "target", "release", "extract")
    classify = os.path.join(ROOT, "target", "release", "classify")
    bound = os.path.join(ROOT, "target", "release", "examples", "inference_bound")
    tmp = tempfile.mkdtemp(prefix="bench-")
    photos, n = photos_or_generated(args.photos, tmp)
    common = ["--batch", str(args.batch), "--threads", str(args.threads)]

    many = os.path.join(tmp, "x4")
    replicate(photos, many, 4)
    if args.only == "tar":
        tar_shards(extract, photos, many, n, common, args.repeat, tmp)
        return
    print(f"machine: {os.cpu_count()} cores; threads {args.threads}, batch {args.batch}; {n} photos from {photos}")
    print(f"rates are steady-state: (4N - N) images over the time between a run on N={n} and one on 4N "
          f"(start-up excluded); the median of {args.repeat} rounds, each round measuring all three in turn\n")
    print(f"{'model':<8} {'inference img/s':>16} {'extract img/s':>14} {'python img/s':>13} {'extract/inference':>18} {'extract/python':>15}")
    mem = []
    for label, model in (("full", "models/resnet50.onnx"), ("narrow", "models/resnet50-narrow.onnx")):
        model = os.path.join(ROOT, model)
        out = os.path.join(tmp, f"{label}.parquet")
        rounds = []
        for _ in range(args.repeat):
            text = subprocess.run([bound, model, str(3 * n), str(args.batch), str(args.threads)], check=True,
                                  capture_output=True, text=True).stdout
            inf = float(text.split("images_per_s=")[1].split()[0])
            (t1, m1), (t4, m4) = (timed([extract, "--model", model, "--images", folder, "--out", out, "--overwrite", "--device", "cpu"]
                                        + common) for folder in (photos, many))
            ext = 3 * n / (t4 - t1)
            py = 3 * n / (python_baseline(model, many, out, args.batch, args.threads)
                          - python_baseline(model, photos, out, args.batch, args.threads))
            rounds.append((inf, ext, py, ext / inf, ext / py))
            if label == "narrow":
                mem.append((m1, m4))
        inf, ext, py, r_inf, r_py = (float(np.median(col)) for col in zip(*rounds))
        print(f"{label:<8} {inf:>16.1f} {ext:>14.1f} {py:>13.1f} {r_inf:>18.2f} {r_py:>15.2f}")
        spread = [f"{r[3]:.2f}/{r[4]:.2f}" for r in rounds]
        print(f"{'':<8} rounds (extract/inference / extract/python): {', '.join(spread)}")

    # Peak memory: the same photos once (N) and four times over (4N), narrow model.
    m1, m4 = (float(np.median(col)) for col in zip(*mem))
    print(f"\npeak memory of extract (narrow): N={n}: {m1:.0f} MiB, 4N={4 * n}: {m4:.0f} MiB, ratio {m4 / m1:.3f}")

    devices(extract, photos, many, n, common, args.repeat, tmp)
    tar_shards(extract, photos, many, n, common, args.repeat, tmp)
    phones(extract, photos, common, args.repeat, tmp)

    # classify fit against scikit-learn on one feature file, n in the thousands.
    digits = os.path.join(tmp, "digits")
    # The smallest digit class has 174 images: up to 150 train, the rest validate.
    per = min(150, max(2, args.fit_rows // 10))
    subprocess.run([sys.executable, os.path.join(ROOT, "scripts", "make-digits.py"), "--out", digits,
                    "--train-per-class", str(per), "--val-per-class", str(174 - per)], check=True,
                   stderr=subprocess.DEVNULL)
    feats = {}
    for split in ("train", "val"):
        feats[split] = os.path.join(tmp, f"digits-{split}.parquet")
        subprocess.run([extract, "--model", os.path.join(ROOT, "models", "resnet50.onnx"), "--images",
                        os.path.join(digits, split), "--out", feats[split], "--layer", "avgpool",
                        "--device", "cpu"] + common, check=True, stderr=subprocess.DEVNULL)
    print(f"\nclassify fit vs scikit-learn on {10 * per} x 2048 avgpool features of the full model, 10 classes")
    print(f"{'model':<22} {'classify s':>11} {'sklearn s':>10} {'time ratio':>11} {'acc classify':>13} {'acc sklearn':>12}")
    from sklearn.linear_model import LogisticRegression
    from sklearn.preprocessing import StandardScaler
    from sklearn.svm import SVC

    def load(path):
        t = pq.read_table(path)
        x = np.asarray(t.column("avgpool").combine_chunks().flatten(), np.float64).reshape(t.num_rows, -1)
        return x, np.asarray(t.column("label_name").to_pylist())

    xt, yt = load(feats["train"])
    xv, yv = load(feats["val"])
    for label, cli, make in (("logistic C=1", ["--model", "logistic", "--C", "1"], lambda: LogisticRegression(C=1.0, max_iter=1000)),
                             ("svm linear C=1", ["--model", "svm", "--C", "1"], lambda: SVC(kernel="linear", C=1.0))):
        clf = os.path.join(tmp, "c.json")
        start = time.perf_counter()
        subprocess.run([classify, "fit", "--train", feats["train"], "--out", clf] + cli, check=True, stdout=subprocess.DEVNULL)
        ours_s = time.perf_counter() - start
        ours = json.loads(subprocess.run([classify, "score", feats["val"], "--classifier", clf, "--json"], check=True,
                                         capture_output=True, text=True).stdout)["accuracy"]
        start = time.perf_counter()
        s = StandardScaler().fit(xt)
        m = make().fit(s.transform(xt), yt)
        sk_s = time.perf_counter() - start
        sk = float((m.predict(s.transform(xv)) == yv).mean())
        print(f"{label:<22} {ours_s:>11.2f} {sk_s:>10.2f} {ours_s / sk_s:>11.2f} {ours:>13.4f} {sk:>12.4f}")


if __name__ == "__main__":
    main()
