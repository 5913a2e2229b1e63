"""Reading ResNet50 checkpoints without PyTorch or MindSpore.

- PyTorch `.pth` state dicts in both formats `torch.save` writes: the zip
  format (PyTorch >= 1.6: `<name>/data.pkl` plus one raw file per storage
  under `<name>/data/`) and the older one (a run of pickles: magic number,
  protocol version, system info, the object, the storage keys; then each
  storage as an int64 element count and its raw bytes).
- MindSpore `.ckpt` files: one protobuf message (field 1: repeated Value
  {1: name, 2: Tensor {1: dims, 2: type name, 3: raw little-endian bytes}}).

A checkpoint is untrusted input and a pickle can run code, so unpickling
goes through an allow-list: an OrderedDict, the tensor-rebuild functions and
the storage types, nothing else. Anything else is refused with
CheckpointError before it is called.

Both readers return {name: numpy array}.
"""
import io
import pickle
import struct
import zipfile

import numpy as np


class CheckpointError(Exception):
    """A file that is not a checkpoint this module reads, or one it will not trust."""


# torch storage type -> numpy dtype
_STORAGES = {
    "FloatStorage": np.float32, "DoubleStorage": np.float64, "HalfStorage": np.float16,
    "BFloat16Storage": "bfloat16", "LongStorage": np.int64, "IntStorage": np.int32,
    "ShortStorage": np.int16, "CharStorage": np.int8, "ByteStorage": np.uint8, "BoolStorage": np.bool_,
}


class _StorageType:
    def __init__(self, name):
        self.name = name
        self.dtype = _STORAGES[name]


class _Storage:
    """A storage's values; in the older format they come after the object
    that refers to them, so `array` may be filled in later."""

    def __init__(self, array=None, dtype=None, numel=0):
        self.array, self.dtype, self.numel = array, dtype, numel


class _Deferred:
    """A tensor whose storage is not read yet (older format)."""

    def __init__(self, args, kwargs):
        self.args, self.kwargs = args, kwargs

    def resolve(self):
        return _rebuild_tensor_v2(*self.args, **self.kwargs)


def _rebuild_tensor_v2(storage, offset, size, stride, requires_grad=False, hooks=None, metadata=None):
    a = storage.array
    if len(size) == 0:
        return np.array(a[offset])
    itemsize = a.dtype.itemsize
    need = offset + sum((n - 1) * s for n, s in zip(size, stride)) + 1 if all(size) else offset
    if need > a.size:
        raise CheckpointError(f"a tensor of shape {tuple(size)} reaches past its storage of {a.size} values")
    view = np.lib.stride_tricks.as_strided(a[offset:], shape=tuple(size), strides=tuple(s * itemsize for s in stride))
    return np.array(view)


def _rebuild_parameter(data, requires_grad=False, hooks=None):
    return data


class _Unpickler(pickle.Unpickler):
    """Unpickles only what a state dict is made of (see the module's doc)."""

    def __init__(self, f, load_storage, rebuild=_rebuild_tensor_v2):
        super().__init__(f)
        self._load_storage = load_storage
        self._allowed = {
            ("collections", "OrderedDict"): __import__("collections").OrderedDict,
            ("torch._utils", "_rebuild_tensor_v2"): rebuild,
            ("torch._utils", "_rebuild_parameter"): _rebuild_parameter,
        }

    def find_class(self, module, name):
        if (module, name) in self._allowed:
            return self._allowed[(module, name)]
        if module == "torch" and name in _STORAGES:
            return _StorageType(name)
        raise CheckpointError(f"the checkpoint asks for {module}.{name}, which a state dict never needs; "
                              "refused (a pickle can run code)")

    def persistent_load(self, pid):
        if not (isinstance(pid, tuple) and len(pid) >= 5 and pid[0] == "storage" and isinstance(pid[1], _StorageType)):
            raise CheckpointError(f"unexpected persistent id {pid!r:.80}")
        return self._load_storage(str(pid[2]), pid[1].dtype, int(pid[4]))


def _array(raw, dtype, numel):
    if dtype == "bfloat16":
        u = np.frombuffer(raw, dtype="<u2", count=numel).astype(np.uint32) << 16
        return u.view(np.float32)
    dt = np.dtype(dtype).newbyteorder("<")
    if len(raw) < numel * dt.itemsize:
        raise CheckpointError(f"a storage holds {len(raw)} bytes, fewer than its {numel} values need")
    return np.frombuffer(raw, dtype=dt, count=numel)


def _state_dict(obj):
    if not isinstance(obj, dict):
        raise CheckpointError(f"the checkpoint holds a {type(obj).__name__}, not a state dict")
    # Training scripts often save {"state_dict": ...} or {"model": ...}.
    for key in ("state_dict", "model"):
        if key in obj and isinstance(obj[key], dict) and not isinstance(obj[key], np.ndarray):
            return _state_dict(obj[key])
    out = {}
    for k, v in obj.items():
        if not isinstance(v, np.ndarray):
            raise CheckpointError(f"entry {k!r} is a {type(v).__name__}, not a tensor")
        out[k[len("module."):] if k.startswith("module.") else k] = v
    return out


def read_torch(path):
    """The state dict in a `torch.save` file, zip or older format, as {name: array}."""
    with open(path, "rb") as f:
        head = f.read(4)
    if head == b"PK\x03\x04":
        return _read_torch_zip(path)
    return _read_torch_legacy(path)


def _read_torch_zip(path):
    try:
        z = zipfile.ZipFile(path)
    except zipfile.BadZipFile as e:
        raise CheckpointError(f"not a PyTorch zip checkpoint ({e})")
    with z:
        pkls = [n for n in z.namelist() if n.endswith("/data.pkl") or n == "data.pkl"]
        if len(pkls) != 1:
            raise CheckpointError("not a PyTorch checkpoint (no single data.pkl in the zip)")
        prefix = pkls[0][: -len("data.pkl")]
        order = prefix + "byteorder"
        if order in z.namelist() and z.read(order).strip() != b"little":
            raise CheckpointError("big-endian checkpoints are not supported")

        def load(key, dtype, numel):
            try:
                raw = z.read(f"{prefix}data/{key}")
            except KeyError:
                raise CheckpointError(f"storage {key} is missing from the zip")
            return _Storage(_array(raw, dtype, numel))

        try:
            obj = _Unpickler(io.BytesIO(z.read(pkls[0])), load).load()
        except CheckpointError:
            raise
        except Exception as e:
            raise CheckpointError(f"the checkpoint's pickle is damaged ({type(e).__name__}: {e})")
    return _state_dict(obj)


_LEGACY_MAGIC = 0x1950A86A20F9469CFC6C


def _read_torch_legacy(path):
    with open(path, "rb") as f:
        buf = io.BytesIO(f.read())
    storages = {}

    def later(key, dtype, numel):
        return storages.setdefault(key, _Storage(dtype=dtype, numel=numel))

    def load(what, rebuild=_rebuild_tensor_v2):
        try:
            return _Unpickler(buf, later, rebuild).load()
        except CheckpointError:
            raise
        except Exception as e:
            raise CheckpointError(f"not a PyTorch checkpoint ({what}: {type(e).__name__}: {e})")

    if load("magic number") != _LEGACY_MAGIC:
        raise CheckpointError("not a PyTorch checkpoint (wrong magic number)")
    load("protocol version")
    load("system info")
    obj = load("the object", rebuild=lambda *a, **k: _Deferred(a, k))
    for key in load("storage keys"):
        st = storages.get(str(key))
        if st is None:
            raise CheckpointError(f"storage {key} is listed but never used")
        head = buf.read(8)
        if len(head) < 8:
            raise CheckpointError("the file ends before its storages do (truncated?)")
        (numel,) = struct.unpack("<q", head)
        itemsize = 2 if st.dtype == "bfloat16" else np.dtype(st.dtype).itemsize
        st.array = _array(buf.read(numel * itemsize), st.dtype, numel)

    def resolve(v):
        if isinstance(v, _Deferred):
            if v.args[0].array is None:
                raise CheckpointError("a tensor's storage is missing from the file")
            return v.resolve()
        if isinstance(v, dict):
            return type(v)((k, resolve(x)) for k, x in v.items())
        return v

    return _state_dict(resolve(obj))


# MindSpore ----------------------------------------------------------------

_MS_DTYPES = {"Float32": np.float32, "Float16": np.float16, "Float64": np.float64, "Int32": np.int32,
              "Int64": np.int64, "Int8": np.int8, "UInt8": np.uint8, "Bool": np.bool_}


def _varint(b, i):
    shift = result = 0
    while True:
        if i >= len(b):
            raise CheckpointError("the checkpoint ends inside a field (truncated?)")
        c = b[i]
        i += 1
        result |= (c & 0x7F) << shift
        if not c & 0x80:
            return result, i
        shift += 7
        if shift > 63:
            raise CheckpointError("a malformed number in the checkpoint")


def _fields(b):
    """(field number, wire type, value) of a protobuf message; length-delimited values as bytes."""
    i = 0
    while i < len(b):
        key, i = _varint(b, i)
        field, wire = key >> 3, key & 7
        if wire == 0:
            v, i = _varint(b, i)
        elif wire == 2:
            n, i = _varint(b, i)
            if i + n > len(b):
                raise CheckpointError("the checkpoint ends inside a field (truncated?)")
            v, i = b[i:i + n], i + n
        elif wire == 1:
            v, i = b[i:i + 8], i + 8
        elif wire == 5:
            v, i = b[i:i + 4], i + 4
        else:
            raise CheckpointError(f"not a MindSpore checkpoint (protobuf wire type {wire})")
        yield field, wire, v


def read_mindspore(path):
    """The parameters in a MindSpore `.ckpt`, as {name: array}, in file order."""
    with open(path, "rb") as f:
        data = f.read()
    out = {}
    for field, wire, value in _fields(data):
        if field != 1 or wire != 2:
            continue
        name, tensor = None, None
        for f2, w2, v2 in _fields(value):
            if f2 == 1 and w2 == 2:
                name = v2.decode("utf-8", "replace")
            elif f2 == 2 and w2 == 2:
                tensor = v2
        if name is None or tensor is None:
            raise CheckpointError("not a MindSpore checkpoint (an entry without a name or a tensor)")
        dims, dtype, raw = [], None, b""
        for f3, w3, v3 in _fields(tensor):
            if f3 == 1:
                if w3 == 0:
                    dims.append(v3)
                else:  # packed
                    j = 0
                    while j < len(v3):
                        d, j = _varint(v3, j)
                        dims.append(d)
            elif f3 == 2 and w3 == 2:
                dtype = v3.decode()
            elif f3 == 3 and w3 == 2:
                raw = v3
        if dtype not in _MS_DTYPES:
            raise CheckpointError(f"{name}: tensor type {dtype!r} is not supported")
        count = int(np.prod(dims)) if dims else 1
        a = np.frombuffer(raw, dtype=np.dtype(_MS_DTYPES[dtype]).newbyteorder("<"))
        if a.size != count:
            raise CheckpointError(f"{name}: {a.size} values for shape {tuple(dims)}")
        out[name] = a.reshape(dims) if dims else a.reshape(())
    if not out:
        raise CheckpointError("not a MindSpore checkpoint (no parameters found)")
    return out
