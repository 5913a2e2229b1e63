"""The field's reference, in one importable module: how a PyTorch user
reads an image (PIL), torchvision's eval transform (in PIL + numpy), the
global pooling, and which tensor of a ResNet ONNX graph each named layer is,
found here independently of `extract`.

Imported by reference-features.py, bench.py, gpu-check.py and the tests'
Python helpers (the tests put scripts/ on PYTHONPATH).
"""
import numpy as np
from PIL import Image, ImageOps

# torchvision's ImageNet normalization.
IMAGENET_MEAN = [0.485, 0.456, 0.406]
IMAGENET_STD = [0.229, 0.224, 0.225]


def load_rgb(path, draft=None):
    """The image as extract reads it. `draft`: the shorter side a JPEG may be
    decoded down to at its own 1/2, 1/4 or 1/8 scale (PIL's draft), as
    extract does unless --exact-decode (the file's preprocess record says
    "decode": "scaled"): colour and greyscale JPEGs, not CMYK ones (extract
    decodes those in full); a no-op on other formats."""
    im = Image.open(path)
    if draft and im.format == "JPEG" and im.mode in ("RGB", "L"):
        im.draft(im.mode, (draft, draft))
    # extract applies EXIF orientation (torchvision's folder loader does not).
    im = ImageOps.exif_transpose(im)
    if im.mode in ("I;16", "I;16B", "I;16L", "I"):
        # extract scales 16-bit samples to 8 bits; PIL's convert would clip them.
        a = np.asarray(im, dtype=np.float64)
        im = Image.fromarray(np.clip(np.floor(a / 257 + 0.5), 0, 255).astype(np.uint8), "L")
    return im.convert("RGB")


def draft_of(pre):
    """The `draft` of load_rgb for a file's preprocess record (extract.preprocess)."""
    return pre["resize"] if pre.get("decode", "exact") == "scaled" else None


def transform(im, resize=256, crop=224, mean=IMAGENET_MEAN, std=IMAGENET_STD):
    """torchvision: Resize(resize) (bilinear, antialiased) + CenterCrop(crop) + ToTensor + Normalize."""
    w, h = im.size
    if w <= h:
        nw, nh = resize, int(resize * h / w)
    else:
        nw, nh = int(resize * w / h), resize
    im = im.resize((nw, nh), Image.BILINEAR)
    top = int(round((nh - crop) / 2.0))
    left = int(round((nw - crop) / 2.0))
    a = np.asarray(im.crop((left, top, left + crop, top + crop)), dtype=np.float32) / np.float32(255)
    a = (a - np.asarray(mean, np.float32)) / np.asarray(std, np.float32)
    return a.transpose(2, 0, 1)


def pool(x, kind):
    x = x.reshape(x.shape[0], x.shape[1], -1)
    if kind == "none":
        return x.reshape(x.shape[0], -1)
    avg, mx = x.mean(axis=2, dtype=np.float64).astype(np.float32), x.max(axis=2)
    return {"avg": avg, "max": mx, "avgmax": np.concatenate([avg, mx], axis=1)}[kind]


def resolve_layer(model, name):
    """The tensor behind a layer name in an ONNX ResNet (an onnx.ModelProto).

    A residual block's output is a Relu whose input is an Add (ONNX graphs
    are topologically sorted); blocks are grouped into stages by channel
    count; `layerK` is the last block of stage K, `stem` the tensor the
    first block's two branches both start from, `avgpool` the global
    average pool's output. Any other name is taken as a raw tensor name.
    """
    import onnx

    graph = model.graph
    producer = {o: n for n in graph.node for o in n.output}
    if name not in ("stem", "avgpool") and not (name.startswith("layer") and name[5:].isdigit()):
        if name not in producer:
            raise SystemExit(f"reference: no tensor {name!r} in the model")
        return name
    if name == "avgpool":
        # The global pool's output, as the vector the classifier head takes
        # when a Flatten or Reshape follows it.
        out = [n for n in graph.node if n.op_type == "GlobalAveragePool"][-1].output[0]
        after = [n for n in graph.node if out in n.input]
        if len(after) == 1 and after[0].op_type in ("Flatten", "Reshape"):
            return after[0].output[0]
        return out
    blocks = [n.output[0] for n in graph.node
              if n.op_type == "Relu" and n.input[0] in producer and producer[n.input[0]].op_type == "Add"]
    if name == "stem":
        add = producer[producer[blocks[0]].input[0]]
        order = {o: i for i, n in enumerate(graph.node) for o in n.output}

        def ancestors(t):
            seen, todo = set(), [t]
            while todo:
                t = todo.pop()
                if t in seen:
                    continue
                seen.add(t)
                if t in producer:
                    todo.extend(producer[t].input)
            return seen

        common = ancestors(add.input[0]) & ancestors(add.input[1])
        return max((t for t in common if t in order), key=order.get)
    inferred = onnx.shape_inference.infer_shapes(model)
    channels = {v.name: v.type.tensor_type.shape.dim[1].dim_value
                for v in list(inferred.graph.value_info) + list(inferred.graph.output)}
    stages = []
    for b in blocks:
        if stages and channels[stages[-1][-1]] == channels[b]:
            stages[-1].append(b)
        else:
            stages.append([b])
    k = int(name[5:])
    if not 1 <= k <= len(stages):
        raise SystemExit(f"reference: the model has {len(stages)} stages, no {name}")
    return stages[k - 1][-1]


def int8_weight_bits(asked="auto"):
    """The weights' bits for ONNX Runtime's int8 kernels on this CPU, from
    ONNX Runtime's quantization guide rather than from extract: x86's u8 x s8
    kernels without VNNI (VPMADDUBSW) saturate, and `reduce_range` (7-bit
    weights) is the remedy; VNNI (AVX512-VNNI or AVX-VNNI) adds in 32 bits.
    `asked`: "7" or "8" to choose, "auto" for this CPU's."""
    import platform

    if asked != "auto":
        return int(asked)
    if platform.machine() not in ("x86_64", "AMD64"):
        return 8
    with open("/proc/cpuinfo") as f:
        flags = next((line.split(":", 1)[1].split() for line in f if line.startswith("flags")), [])
    return 8 if {"avx512_vnni", "avx_vnni"} & set(flags) else 7


def ort_int8(model, calibration, pre, weight_bits=8):
    """ONNX Runtime's own static quantization of `model` (QDQ, per-channel int8
    weights, uint8 activations, MinMax), calibrated on the image files
    `calibration` through this module's transform with `pre`'s sizes;
    `weight_bits` 7 is its `reduce_range`."""
    import os
    import tempfile

    import onnx
    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static
    from onnxruntime.quantization.shape_inference import quant_pre_process

    name = model.graph.input[0].name

    class Images(CalibrationDataReader):
        def __init__(self):
            self.left = iter(calibration)

        def get_next(self):
            p = next(self.left, None)
            return None if p is None else {name: transform(load_rgb(p, draft_of(pre)), pre["resize"], pre["crop"], pre["mean"], pre["std"])[None]}

    with tempfile.TemporaryDirectory() as d:
        fp32, prepared, q = (os.path.join(d, f) for f in ("fp32.onnx", "pre.onnx", "int8.onnx"))
        onnx.save(model, fp32)
        quant_pre_process(fp32, prepared, skip_symbolic_shape=True)
        quantize_static(prepared, q, Images(), quant_format=QuantFormat.QDQ, per_channel=True,
                        activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8,
                        reduce_range=weight_bits == 7)
        return onnx.load(q)


# --- Augmented views (FEATURE-FILE.md, "Views"), written from the contract's
# text: the generator, torchvision's RandomResizedCrop.get_params, the flip.

_MASK = (1 << 64) - 1


class SplitMix64:
    def __init__(self, state):
        self.state = state

    def next(self):
        self.state = (self.state + 0x9E3779B97F4A7C15) & _MASK
        z = self.state
        z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & _MASK
        z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & _MASK
        return z ^ (z >> 31)

    def unit(self):
        return (self.next() >> 11) / float(1 << 53)

    def uniform(self, a, b):
        return a + (b - a) * self.unit()

    def below(self, n):
        return self.next() % n


def view_boxes(record, path, width, height):
    """(left, top, w, h, flip) of views 1..count-1 of the image whose row
    path is `path`, on its upright full-size width x height."""
    import hashlib
    import math

    digest = hashlib.sha256(f"{record['seed']}:{path}".encode()).digest()
    rng = SplitMix64(int.from_bytes(digest[:8], "little"))
    scale, ratio = record["scale"], record["ratio"]
    area = width * height
    log_ratio = (math.log(ratio[0]), math.log(ratio[1]))
    boxes = []
    for _ in range(1, record["count"]):
        for _ in range(10):
            target = area * rng.uniform(scale[0], scale[1])
            aspect = math.exp(rng.uniform(*log_ratio))
            w = int(round(math.sqrt(target * aspect)))
            h = int(round(math.sqrt(target / aspect)))
            if 0 < w <= width and 0 < h <= height:
                top = rng.below(height - h + 1)
                left = rng.below(width - w + 1)
                break
        else:
            in_ratio = width / height
            if in_ratio < min(ratio):
                w, h = width, int(round(width / min(ratio)))
            elif in_ratio > max(ratio):
                h, w = height, int(round(height * max(ratio)))
            else:
                w, h = width, height
            top, left = (height - h) // 2, (width - w) // 2
        boxes.append((left, top, w, h, rng.unit() < record["flip"]))
    return boxes


def view_tensors(file, path, pre):
    """Every view of one image as extract computes it from the file's
    preprocess record `pre` (with its `views`): view 0 the eval transform,
    then each box cut, resized to crop x crop, flipped or not, normalized."""
    resize, crop, record = pre["resize"], pre["crop"], pre["views"]
    first = transform(load_rgb(file, draft_of(pre)), resize, crop)
    im = Image.open(file)
    sideways = im.getexif().get(0x0112, 1) in (5, 6, 7, 8)
    stored = im.size
    width, height = (stored[1], stored[0]) if sideways else stored
    boxes = view_boxes(record, path, width, height)
    d = 1
    if draft_of(pre) and im.format == "JPEG" and im.mode in ("RGB", "L"):
        shortest = min(min(b[2], b[3]) for b in boxes)
        d = next((s for s in (8, 4, 2) if shortest // crop >= s), 1)
    if d > 1:
        im.draft(im.mode, (stored[0] // d, stored[1] // d))
        assert im.size == (-(-stored[0] // d), -(-stored[1] // d)), (im.size, stored, d)
        im = ImageOps.exif_transpose(im).convert("RGB")
    else:
        im = load_rgb(file)
    dw, dh = im.size
    out = [first]
    for left, top, w, h, flip in boxes:
        x0 = min((left * dw + width // 2) // width, dw - 1)
        y0 = min((top * dh + height // 2) // height, dh - 1)
        x1 = min(max(((left + w) * dw + width // 2) // width, x0 + 1), dw)
        y1 = min(max(((top + h) * dh + height // 2) // height, y0 + 1), dh)
        v = im.crop((x0, y0, x1, y1)).resize((crop, crop), Image.BILINEAR)
        if flip:
            v = ImageOps.mirror(v)
        a = np.asarray(v, dtype=np.float32) / np.float32(255)
        a = (a - np.asarray(pre["mean"], np.float32)) / np.asarray(pre["std"], np.float32)
        out.append(a.transpose(2, 0, 1))
    return out
