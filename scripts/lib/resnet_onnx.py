"""The offline test models' ONNX builder (make-test-model.py): ResNet50 in
torchvision's topology with seeded weights. Real checkpoints are converted
in Rust (the backbone crate's `resnet` module), not here; the tests hold
both to the frameworks' own outputs.

`params` is a state dict in torchvision's names (`conv1.weight`,
`bn1.running_var`, `layer3.5.conv2.weight`, `layer1.0.downsample.1.bias`,
`fc.weight`, ...) as numpy arrays. Bottleneck blocks, stride on the 3x3
conv (v1.5); stage and block counts and widths are read from the names and
shapes, so narrow variants build too.
"""
import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

OPSET = 17
# PyTorch's BatchNorm epsilon (MindSpore's ResNet uses the same).
BN_EPS = 1e-5


def same_pads(size, k, stride):
    """TensorFlow's (and MindSpore's pad_mode='same') padding for one axis:
    (before, after), the odd one after; and the output size."""
    out = -(-size // stride)
    total = max((out - 1) * stride + k - size, 0)
    return (total // 2, total - total // 2), out


class _Graph:
    def __init__(self, foreign):
        self.foreign = foreign
        self.nodes = []
        self.inits = []
        self.counter = 0

    def _name(self, scoped):
        if not self.foreign:
            return scoped
        self.counter += 1
        return f"t{self.counter}"

    def init(self, name, array, dtype=np.float32):
        self.inits.append(numpy_helper.from_array(np.asarray(array).astype(dtype), self._name(name)))
        return self.inits[-1].name

    def node(self, op, inputs, scope, **attrs):
        node_name = f"node_{len(self.nodes)}" if self.foreign else f"{scope}/{op}"
        out = self._name(f"{scope}/{op}_output_0")
        self.nodes.append(helper.make_node(op, inputs, [out], name=node_name, **attrs))
        return out


def build(params, *, fold_bn, names="torchvision", padding="symmetric", fixed_batch=None, size=224,
          graph_name="resnet50", input_name="input", output_name="output", flatten="Flatten",
          doc="", producer="resnet_onnx", metadata=None):
    """The model as an onnx.ModelProto, checked.

    fold_bn: fold each BatchNorm into the convolution before it (eps BN_EPS)
             instead of keeping BatchNormalization nodes.
    names:   "torchvision" (names as torch.onnx.export writes them) or
             "foreign" (node_17, t42, ...).
    padding: "symmetric" (PyTorch) or "same" (MindSpore/TensorFlow: the odd
             pad after), computed for a size x size input.
    """
    g = _Graph(names == "foreign")
    spatial = [size]

    def conv_bn(x, conv, bn, stride):
        w = np.asarray(params[f"{conv}.weight"], np.float64)
        k = w.shape[2]
        if padding == "same":
            (before, after), spatial[0] = same_pads(spatial[0], k, stride)
            pads = [before, before, after, after]
        else:
            spatial[0] = (spatial[0] + 2 * (k // 2) - k) // stride + 1
            pads = [k // 2] * 4
        gamma = np.asarray(params[f"{bn}.weight"], np.float64)
        beta = np.asarray(params[f"{bn}.bias"], np.float64)
        mean = np.asarray(params[f"{bn}.running_mean"], np.float64)
        var = np.asarray(params[f"{bn}.running_var"], np.float64)
        attrs = dict(kernel_shape=[k, k], strides=[stride, stride], pads=pads, dilations=[1, 1], group=1)
        if fold_bn:
            scale = gamma / np.sqrt(var + BN_EPS)
            wf = w * scale[:, None, None, None]
            bf = beta - mean * scale
            return g.node("Conv", [x, g.init(f"{conv}.weight", wf), g.init(f"{conv}.bias", bf)], f"/{conv}", **attrs)
        y = g.node("Conv", [x, g.init(f"{conv}.weight", w)], f"/{conv}", **attrs)
        return g.node(
            "BatchNormalization",
            [y, g.init(f"{bn}.weight", gamma), g.init(f"{bn}.bias", beta),
             g.init(f"{bn}.running_mean", mean), g.init(f"{bn}.running_var", var)],
            f"/{bn}", epsilon=BN_EPS, momentum=0.9)

    def max_pool(x):
        if padding == "same":
            (before, after), spatial[0] = same_pads(spatial[0], 3, 2)
            pads = [before, before, after, after]
        else:
            spatial[0] = (spatial[0] + 2 - 3) // 2 + 1
            pads = [1, 1, 1, 1]
        return g.node("MaxPool", [x], "/maxpool", kernel_shape=[3, 3], strides=[2, 2], pads=pads,
                      ceil_mode=0, dilations=[1, 1])

    x = conv_bn(input_name, "conv1", "bn1", 2)
    x = g.node("Relu", [x], "/relu")
    x = max_pool(x)
    for stage in range(1, 5):
        block = 0
        while f"layer{stage}.{block}.conv1.weight" in params:
            p = f"layer{stage}.{block}"
            stride = 2 if stage > 1 and block == 0 else 1
            at = spatial[0]
            y = conv_bn(x, f"{p}.conv1", f"{p}.bn1", 1)
            y = g.node("Relu", [y], f"/{p}/relu")
            y = conv_bn(y, f"{p}.conv2", f"{p}.bn2", stride)
            y = g.node("Relu", [y], f"/{p}/relu_1")
            y = conv_bn(y, f"{p}.conv3", f"{p}.bn3", 1)
            after = spatial[0]
            if f"{p}.downsample.0.weight" in params:
                spatial[0] = at
                x = conv_bn(x, f"{p}.downsample.0", f"{p}.downsample.1", stride)
                assert spatial[0] == after, "both branches end at one size"
            y = g.node("Add", [y, x], f"/{p}/add")
            x = g.node("Relu", [y], f"/{p}/relu_2")
            block += 1
    x = g.node("GlobalAveragePool", [x], "/avgpool")
    channels = params["fc.weight"].shape[1]
    if flatten == "Reshape":
        shape = g.init("reshape_shape", np.array([fixed_batch or -1, channels]), dtype=np.int64)
        x = g.node("Reshape", [x, shape], "/flatten")
    else:
        x = g.node("Flatten", [x], "/flatten", axis=1)
    g.node("Gemm", [x, g.init("fc.weight", params["fc.weight"]), g.init("fc.bias", params["fc.bias"])], "/fc",
           alpha=1.0, beta=1.0, transB=1)
    # The graph output keeps its conventional name whatever the naming.
    g.nodes[-1].output[0] = output_name
    batch = fixed_batch or "batch_size"
    classes = params["fc.weight"].shape[0]
    graph = helper.make_graph(
        g.nodes, graph_name,
        [helper.make_tensor_value_info(input_name, TensorProto.FLOAT, [batch, 3, size, size])],
        [helper.make_tensor_value_info(output_name, TensorProto.FLOAT, [batch, classes])],
        g.inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)], producer_name=producer)
    model.ir_version = 8
    model.doc_string = doc
    for k, v in (metadata or {}).items():
        model.metadata_props.add(key=k, value=str(v))
    onnx.checker.check_model(model)
    return model


# torchvision resnet50: residual blocks per stage.
BLOCKS = (3, 4, 6, 3)


def expected_keys(blocks=BLOCKS):
    """The keys of a torchvision ResNet50 state dict, without num_batches_tracked."""
    keys = ["conv1.weight"]
    bn = lambda p: [f"{p}.weight", f"{p}.bias", f"{p}.running_mean", f"{p}.running_var"]
    keys += bn("bn1")
    for s, n in enumerate(blocks, 1):
        for b in range(n):
            p = f"layer{s}.{b}"
            for i in (1, 2, 3):
                keys += [f"{p}.conv{i}.weight"] + bn(f"{p}.bn{i}")
            if b == 0:
                keys += [f"{p}.downsample.0.weight"] + bn(f"{p}.downsample.1")
    return keys + ["fc.weight", "fc.bias"]


class WeightsError(Exception):
    pass


def check_torchvision(params):
    """Checks a state dict is a torchvision ResNet50's: every key there (the
    BatchNorm counters `num_batches_tracked` may be missing, as in the
    official files), none extra, shapes consistent. Returns the dict without
    the counters."""
    want = expected_keys()
    got = {k: v for k, v in params.items() if not k.endswith(".num_batches_tracked")}
    missing = [k for k in want if k not in got]
    extra = sorted(set(got) - set(want))
    if missing or extra:
        parts = []
        if missing:
            parts.append(f"missing {len(missing)} keys ({', '.join(missing[:4])}{', ...' if len(missing) > 4 else ''})")
        if extra:
            parts.append(f"{len(extra)} unexpected keys ({', '.join(extra[:4])}{', ...' if len(extra) > 4 else ''})")
        raise WeightsError("not a torchvision ResNet50 state dict: " + "; ".join(parts))
    width = got["conv1.weight"].shape[0]
    shapes = {"conv1.weight": (width, 3, 7, 7)}
    cin = width
    for s, n in enumerate(BLOCKS, 1):
        mid = width * 2 ** (s - 1)
        for b in range(n):
            p = f"layer{s}.{b}"
            shapes[f"{p}.conv1.weight"] = (mid, cin, 1, 1)
            shapes[f"{p}.conv2.weight"] = (mid, mid, 3, 3)
            shapes[f"{p}.conv3.weight"] = (mid * 4, mid, 1, 1)
            if b == 0:
                shapes[f"{p}.downsample.0.weight"] = (mid * 4, cin, 1, 1)
            cin = mid * 4
    classes = got["fc.weight"].shape[0]
    shapes["fc.weight"] = (classes, cin)
    shapes["fc.bias"] = (classes,)
    for k in want:
        if k in shapes:
            want_shape = shapes[k]
        else:  # a BatchNorm vector: as many as its convolution's outputs
            want_shape = (shapes[f"{_conv_of(k.rsplit('.', 1)[0])}.weight"][0],)
        if tuple(got[k].shape) != want_shape:
            raise WeightsError(f"{k} has shape {tuple(got[k].shape)}, a ResNet50 of stem width {width} has {want_shape}")
    return got


def _conv_of(bn):
    """The convolution a BatchNorm follows: bn1 -> conv1, layer1.0.bn3 ->
    layer1.0.conv3, layer1.0.downsample.1 -> layer1.0.downsample.0."""
    if bn.endswith("downsample.1"):
        return bn[:-1] + "0"
    head, _, last = bn.rpartition(".")
    return f"{head}.conv{last[2:]}" if head else f"conv{last[2:]}"


# MindSpore's tutorial ResNet50 -> torchvision names.
_MS_BN = {"gamma": "weight", "beta": "bias", "moving_mean": "running_mean", "moving_variance": "running_var"}


def from_mindspore(params):
    """The tutorial's MindSpore ResNet50 parameters in torchvision's names,
    and the names left out (optimizer state, counters)."""
    out, ignored = {}, []
    for name, v in params.items():
        parts = name.split(".")
        if name.startswith(("moments.", "accum.", "adam_", "global_step", "learning_rate", "momentum", "beta1_power",
                            "beta2_power", "current_iterator_step", "epoch_num", "step_num", "scale_sense")) \
                or parts[0] not in ("conv1", "norm", "fc") and not parts[0].startswith("layer"):
            ignored.append(name)
            continue
        if parts[-1] in _MS_BN:
            parts[-1] = _MS_BN[parts[-1]]
        if parts[0] == "norm":
            parts[0] = "bn1"
        parts = [p.replace("norm", "bn") if p.startswith("norm") else p for p in parts]
        name = ".".join(parts).replace("down_sample", "downsample")
        out[name] = v
    return out, ignored
