#!/usr/bin/env python3
"""Real ImageNet weights for extract, as one ONNX file, without PyTorch.

    scripts/fetch-resnet50.py                       torchvision IMAGENET1K_V1 (the default)
    scripts/fetch-resnet50.py --weights V2          IMAGENET1K_V2, evaluated at resize 232
    scripts/fetch-resnet50.py --weights zoo-v1      a ready ONNX from the ONNX model zoo
    scripts/fetch-resnet50.py --weights mindspore   the MindSpore tutorial's resnet50_224_new.ckpt
    scripts/fetch-resnet50.py --from FILE.pth --out models/mine.onnx
    scripts/fetch-resnet50.py --from resnet50_224_new.ckpt

The checkpoint is downloaded into models/ (kept, so a second run is offline),
verified (size, sha256), read without torch or MindSpore (pickles through an
allow-list: a checkpoint is untrusted input), and converted with the same
graph builder as the offline test model: torchvision's topology, dynamic
batch, BatchNorm folded (eps 1e-5). The ONNX records the source, the weights'
name, the source file's full sha256 and the eval resize/crop, which extract
then uses. Nothing is left at --out unless the whole run succeeds.

Environment: RESNET50_BASE_URL replaces the download address up to the file
name (a mirror, or a local server in the tests).
"""
import argparse
import hashlib
import os
import sys
import time
import urllib.error
import urllib.request

try:
    import onnx
except ImportError:
    # Run as `scripts/fetch-resnet50.py` by a Python without onnx: the
    # project's .venv has it (scripts/setup.sh makes it).
    venv = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), ".venv")
    python = os.path.join(venv, "bin", "python")
    if os.path.exists(python) and os.path.abspath(sys.prefix) != os.path.abspath(venv):
        os.execv(python, [python] + sys.argv)
    sys.exit("fetch-resnet50: needs numpy and onnx: run scripts/setup.sh first (it makes .venv)")

import atomic_file
import checkpoints
import resnet_onnx

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PROG = "fetch-resnet50"

# The sources. torchvision checks only that a file's sha256 starts with the
# 8 hex digits in its name; that is all it publishes.
SOURCES = {
    "V1": dict(
        url="https://download.pytorch.org/models/resnet50-0676ba61.pth", kind="torch", sha256_prefix="0676ba61",
        weights="torchvision ResNet50_Weights.IMAGENET1K_V1", top1=76.13, resize=256, crop=224,
        license="BSD-3-Clause"),
    "V2": dict(
        url="https://download.pytorch.org/models/resnet50-11ad3fa6.pth", kind="torch", sha256_prefix="11ad3fa6",
        weights="torchvision ResNet50_Weights.IMAGENET1K_V2", top1=80.86, resize=232, crop=224,
        license="BSD-3-Clause"),
    "zoo-v1": dict(
        url="https://huggingface.co/onnxmodelzoo/resnet50-v1-12/resolve/"
            "1f95315d8bd3b3ca2ceabe54d274e0cdf5a83bbe/resnet50-v1-12.onnx",
        kind="onnx", sha256="3f03fdef724b22947eed826f1eef1dc5c34151bb4c37d634f1db89dfa2dd1526", size=102_576_593,
        weights="ONNX model zoo resnet50-v1-12 (MXNet Gluon ResNet v1)", top1=74.97, resize=256, crop=224,
        license="Apache-2.0"),
    "mindspore": dict(
        url="https://mindspore-website.obs.cn-north-4.myhuaweicloud.com/notebook/models/application/"
            "resnet50_224_new.ckpt",
        kind="mindspore", weights="MindSpore ResNet50 transfer learning tutorial, resnet50_224_new.ckpt",
        top1=None, resize=256, crop=224, license="Apache-2.0"),
}


class FetchError(Exception):
    pass


def sha256_of(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def url_for(source):
    base = os.environ.get("RESNET50_BASE_URL")
    if not base:
        return source["url"]
    return base.rstrip("/") + "/" + source["url"].rsplit("/", 1)[1]


def check_hash(digest, source, what):
    if "sha256" in source and digest != source["sha256"]:
        raise FetchError(f"{what}: sha256 {digest} is not the published {source['sha256']}")
    if "sha256_prefix" in source and not digest.startswith(source["sha256_prefix"]):
        raise FetchError(f"{what}: sha256 {digest} does not start with {source['sha256_prefix']}, as the file name says")


def download(url, dest, source, timeout=60):
    """Streams `url` to a temporary file beside `dest`, checks it, renames it
    into place; a failure leaves nothing at `dest`. Returns the sha256."""
    h = hashlib.sha256()
    got = 0
    req = urllib.request.Request(url, headers={"User-Agent": "resnet-features fetch-resnet50"})
    with atomic_file.replacing(dest) as tmp:
        try:
            resp = urllib.request.urlopen(req, timeout=timeout)  # follows redirects
        except urllib.error.HTTPError as e:
            raise FetchError(f"HTTP {e.code} {e.reason} from {url}")
        except (urllib.error.URLError, OSError) as e:
            raise FetchError(f"cannot reach {url}: {getattr(e, 'reason', e)}")
        with resp, open(tmp, "wb") as out:
            length = resp.headers.get("Content-Length")
            total = int(length) if length and length.isdigit() else None
            start = last = time.monotonic()
            while True:
                try:
                    chunk = resp.read(1 << 20)
                except Exception as e:  # IncompleteRead, a reset, a timeout
                    raise FetchError(f"download of {url} broke off after {got / 1e6:.1f} MB ({type(e).__name__})")
                if not chunk:
                    break
                out.write(chunk)
                h.update(chunk)
                got += len(chunk)
                now = time.monotonic()
                if now - last >= 0.5:
                    last = now
                    of = f" / {total / 1e6:.1f}" if total else ""
                    print(f"\r{PROG}: {got / 1e6:.1f}{of} MB, {got / 1e6 / max(now - start, 1e-9):.1f} MB/s",
                          end="", file=sys.stderr, flush=True)
            print(f"\r{PROG}: {got / 1e6:.1f} MB in {time.monotonic() - start:.1f} s" + " " * 20,
                  file=sys.stderr, flush=True)
            if total is not None and got != total:
                raise FetchError(f"download of {url} is truncated: {got} of {total} bytes")
            out.flush()
            os.fsync(out.fileno())
        if "size" in source and got != source["size"]:
            raise FetchError(f"{url}: {got} bytes, not the published {source['size']}")
        digest = h.hexdigest()
        check_hash(digest, source, url)
    return digest


def known_release(digest):
    """The name of the source whose published hash this file has, if any."""
    for name, s in SOURCES.items():
        if s.get("sha256") == digest or ("sha256_prefix" in s and digest.startswith(s["sha256_prefix"])):
            return name
    return None


def kind_of(path):
    with open(path, "rb") as f:
        head = f.read(8)
    if path.endswith(".onnx"):
        return "onnx"
    if path.endswith(".ckpt"):
        return "mindspore"
    if head[:4] == b"PK\x03\x04" or head[:1] == b"\x80":
        return "torch"
    return "mindspore"


def convert(path, kind, meta):
    """The ONNX model for a checkpoint, with `meta` in its metadata."""
    if kind == "onnx":
        model = onnx.load(path)
        for k, v in meta.items():
            model.metadata_props.add(key=k, value=str(v))
        return model
    if kind == "torch":
        params = checkpoints.read_torch(path)
        padding = "symmetric"
    else:
        params, ignored = resnet_onnx.from_mindspore(checkpoints.read_mindspore(path))
        if ignored:
            print(f"{PROG}: ignoring {len(ignored)} entries that are not weights (optimizer state, counters: "
                  f"{', '.join(ignored[:3])}{', ...' if len(ignored) > 3 else ''})", file=sys.stderr)
        padding = "same"  # MindSpore's pad_mode='same': the odd pad after
    params = resnet_onnx.check_torchvision(params)
    return resnet_onnx.build(params, fold_bn=True, padding=padding, producer=PROG,
                             doc=f"ResNet50, {meta['weights']}", metadata=meta)


def save(model, out):
    with atomic_file.replacing(out) as tmp:
        onnx.save(model, tmp)


def main():
    ap = argparse.ArgumentParser(prog="fetch-resnet50.py", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--weights", choices=list(SOURCES), default="V1", help="which release to download (default: V1)")
    ap.add_argument("--from", dest="source", metavar="FILE",
                    help="convert this checkpoint instead of downloading (.pth state dict, MindSpore .ckpt, or .onnx)")
    ap.add_argument("--out", default=os.path.join("models", "resnet50-imagenet.onnx"),
                    help="the ONNX model to write (default: %(default)s)")
    ap.add_argument("--resize", type=int, help="eval resize to record [default: the release's, else 256]")
    ap.add_argument("--crop", type=int, help="eval crop to record [default: 224]")
    args = ap.parse_args()
    try:
        if args.source:
            path = args.source
            if not os.path.isfile(path):
                raise FetchError(f"{path}: no such file")
            digest = sha256_of(path)
            name = known_release(digest)
            kind = kind_of(path)
            if name:
                source = SOURCES[name]
                print(f"{PROG}: {path} is {source['weights']} (sha256 {digest})", file=sys.stderr)
                weights, url = source["weights"], source["url"]
            else:
                source = dict(resize=256, crop=224)
                weights, url = f"{os.path.basename(path)} (not a known release)", ""
                print(f"{PROG}: {path}: sha256 {digest} (not a known release)", file=sys.stderr)
        else:
            name = args.weights
            source = SOURCES[name]
            url = url_for(source)
            path = os.path.join(os.path.dirname(args.out) or ".", url.rsplit("/", 1)[1])
            if os.path.isfile(path):
                digest = sha256_of(path)
                check_hash(digest, source, path)
                print(f"{PROG}: using {path}, already here (sha256 {digest})", file=sys.stderr)
            else:
                print(f"{PROG}: downloading {url}", file=sys.stderr)
                try:
                    digest = download(url, path, source)
                except FetchError as e:
                    raise FetchError(f"{e}; to finish by hand, download {source['url']} elsewhere "
                                     f"and run: scripts/fetch-resnet50.py --from FILE")
                print(f"{PROG}: {path}: sha256 {digest}", file=sys.stderr)
            kind, weights = source["kind"], source["weights"]
        meta = {
            "weights": weights,
            "source_url": url,
            "source_sha256": digest,
            "eval_resize": args.resize or source["resize"],
            "eval_crop": args.crop or source["crop"],
        }
        if source.get("license"):
            meta["license"] = source["license"]
        model = convert(path, kind, meta)
        save(model, args.out)
    except (FetchError, checkpoints.CheckpointError, resnet_onnx.WeightsError) as e:
        print(f"{PROG}: {e}", file=sys.stderr)
        sys.exit(1)
    except OSError as e:
        print(f"{PROG}: {e}", file=sys.stderr)
        sys.exit(1)
    print(f"wrote {args.out}: {weights}, eval resize {meta['eval_resize']} crop {meta['eval_crop']}, "
          f"source sha256 {digest}")


if __name__ == "__main__":
    main()
