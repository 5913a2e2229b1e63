//! PyTorch's `torch.save` files, both formats it writes:
//! - zip (PyTorch >= 1.6): `<name>/data.pkl` plus one file per storage
//!   under `<name>/data/`, stored uncompressed;
//! - the older one: a run of pickles (magic number, protocol version,
//!   system info, the object, the storage keys), then each storage as an
//!   int64 element count and its raw bytes.

use std::collections::HashMap;
use std::io::Read;
use std::path::Path;

use super::pickle::{self, DType, TensorRef, Value};
use super::{Error, StateDict, Tensor};

/// More tensor data than any ResNet50 checkpoint holds (about 100 MB);
/// what a file claims beyond it is refused before it is read.
const MAX_TOTAL_BYTES: u64 = 4 << 30;
/// A zip entry that inflates to more than this many times its stored
/// size (plus a little) is a zip bomb, not weights: float weights do not
/// compress.
const MAX_RATIO: u64 = 100;

const LEGACY_MAGIC: [u8; 10] = [0x6c, 0xfc, 0x9c, 0x46, 0xf9, 0x20, 0x6a, 0xa8, 0x50, 0x19];

pub fn read(path: &Path) -> Result<StateDict, Error> {
    let fail = |why: String| Error::Format { path: path.to_owned(), why };
    let mut f = std::fs::File::open(path).map_err(|e| Error::Io { path: path.to_owned(), source: e })?;
    let mut head = [0u8; 4];
    let n = f.read(&mut head).map_err(|e| Error::Io { path: path.to_owned(), source: e })?;
    let tensors = if n == 4 && head == *b"PK\x03\x04" { read_zip(f) } else { read_legacy(path) };
    tensors.map_err(fail)
}

fn read_zip(f: std::fs::File) -> Result<StateDict, String> {
    let mut z = zip::ZipArchive::new(f).map_err(|e| format!("not a PyTorch zip checkpoint ({e})"))?;
    let names: Vec<String> = z.file_names().map(str::to_string).collect();
    let pkls: Vec<&String> = names.iter().filter(|n| n.ends_with("/data.pkl") || *n == "data.pkl").collect();
    let [pkl] = pkls.as_slice() else { return Err("not a PyTorch checkpoint (no single data.pkl in the zip)".into()) };
    let prefix = pkl[..pkl.len() - "data.pkl".len()].to_string();
    if let Ok(order) = read_entry(&mut z, &format!("{prefix}byteorder"), 64) {
        if order.trim_ascii() != b"little" {
            return Err("big-endian checkpoints are not supported".into());
        }
    }
    let pickle_bytes = read_entry(&mut z, pkl, 256 << 20)?;
    let obj = pickle::load(&pickle_bytes, &mut 0).map_err(|e| e.to_string())?;
    let refs = state_dict(obj)?;
    let mut budget = MAX_TOTAL_BYTES;
    let mut storages: HashMap<String, Vec<u8>> = HashMap::new();
    for (_, t) in &refs {
        let key = &t.storage.key;
        if storages.contains_key(key) {
            continue;
        }
        let need = storage_bytes(t)?;
        budget = budget.checked_sub(need).ok_or("the tensors add up to more data than any ResNet50 holds")?;
        let bytes = read_entry(&mut z, &format!("{prefix}data/{key}"), need)?;
        if (bytes.len() as u64) < need {
            return Err(format!(
                "storage {key} holds {} bytes, fewer than its {} values need",
                bytes.len(),
                t.storage.numel
            ));
        }
        storages.insert(key.clone(), bytes);
    }
    materialize(refs, &storages)
}

/// A zip entry's bytes, refusing one that is larger than `limit` or that
/// inflates far beyond its stored size, before inflating it.
fn read_entry(z: &mut zip::ZipArchive<std::fs::File>, name: &str, limit: u64) -> Result<Vec<u8>, String> {
    let mut e = z.by_name(name).map_err(|_| format!("{name} is missing from the zip"))?;
    let (size, packed) = (e.size(), e.compressed_size());
    if size > packed.saturating_mul(MAX_RATIO) + (1 << 16) {
        return Err(format!("{name} inflates {packed} bytes to {size}: a zip bomb, not weights; refused"));
    }
    if size > limit {
        return Err(format!("{name} says it holds {size} bytes, more than the {limit} it can need"));
    }
    let mut buf = Vec::with_capacity(size as usize);
    (&mut e).take(size + 1).read_to_end(&mut buf).map_err(|err| format!("{name}: {err}"))?;
    if buf.len() as u64 != size {
        return Err(format!("{name} holds {} bytes, not the {size} its header says", buf.len()));
    }
    Ok(buf)
}

fn read_legacy(path: &Path) -> Result<StateDict, String> {
    let data = std::fs::read(path).map_err(|e| e.to_string())?;
    let mut pos = 0;
    let not = |what: &str, e: pickle::Error| match e {
        pickle::Error::Refused(_) => e.to_string(),
        _ => format!("not a PyTorch checkpoint ({what}: {e})"),
    };
    match pickle::load(&data, &mut pos).map_err(|e| not("magic number", e))? {
        Value::BigInt(b) if b == LEGACY_MAGIC => {}
        _ => return Err("not a PyTorch checkpoint (wrong magic number)".into()),
    }
    pickle::load(&data, &mut pos).map_err(|e| not("protocol version", e))?;
    pickle::load(&data, &mut pos).map_err(|e| not("system info", e))?;
    let obj = pickle::load(&data, &mut pos).map_err(|e| not("the object", e))?;
    let refs = state_dict(obj)?;
    let Value::List(keys) = pickle::load(&data, &mut pos).map_err(|e| not("storage keys", e))? else {
        return Err("not a PyTorch checkpoint (the storage keys are not a list)".into());
    };
    let dtypes: HashMap<&str, DType> = refs.iter().map(|(_, t)| (t.storage.key.as_str(), t.storage.dtype)).collect();
    let mut storages: HashMap<String, Vec<u8>> = HashMap::new();
    for key in keys {
        let key = match key {
            Value::Str(s) => s,
            Value::Int(i) => i.to_string(),
            other => return Err(format!("a storage key is a {}", other.kind())),
        };
        let dtype =
            *dtypes.get(key.as_str()).ok_or_else(|| format!("storage {key} is listed but no tensor uses it"))?;
        let head: [u8; 8] = data
            .get(pos..pos + 8)
            .ok_or("the file ends before its storages do (truncated?)")?
            .try_into()
            .expect("8 bytes");
        pos += 8;
        let numel = u64::from_le_bytes(head);
        let len = numel.checked_mul(dtype.size() as u64).filter(|&l| l <= (data.len() - pos) as u64);
        let len = len.ok_or("the file ends before its storages do (truncated?)")? as usize;
        storages.insert(key, data[pos..pos + len].to_vec());
        pos += len;
    }
    materialize(refs, &storages)
}

/// The (name, tensor) entries of a checkpoint's object: a state dict, or
/// one under `state_dict` or `model` (as training scripts save them).
fn state_dict(obj: Value) -> Result<Vec<(String, TensorRef)>, String> {
    let Value::Dict(items) = obj else {
        return Err(format!("the checkpoint holds a {}, not a state dict", obj.kind()));
    };
    for wrapper in ["state_dict", "model"] {
        if let Some((_, inner @ Value::Dict(_))) = items.iter().find(|(k, _)| *k == Value::Str(wrapper.into())) {
            return state_dict(inner.clone());
        }
    }
    items
        .into_iter()
        .map(|(k, v)| {
            let Value::Str(k) = k else { return Err(format!("a state dict key is a {}", k.kind())) };
            let Value::Tensor(t) = v else { return Err(format!("entry {k:?} is a {}, not a tensor", v.kind())) };
            let k = k.strip_prefix("module.").map(str::to_string).unwrap_or(k);
            Ok((k, t))
        })
        .collect()
}

fn storage_bytes(t: &TensorRef) -> Result<u64, String> {
    t.storage.numel.checked_mul(t.storage.dtype.size() as u64).ok_or_else(|| "a storage larger than memory".to_string())
}

fn materialize(refs: Vec<(String, TensorRef)>, storages: &HashMap<String, Vec<u8>>) -> Result<StateDict, String> {
    let mut out = Vec::with_capacity(refs.len());
    for (name, t) in refs {
        let bytes =
            storages.get(&t.storage.key).ok_or_else(|| format!("{name}: its storage is missing from the file"))?;
        out.push((name.clone(), view(&t, bytes).map_err(|e| format!("{name}: {e}"))?));
    }
    Ok(StateDict(out))
}

/// The values a tensor views: `size` elements at `offset`, `stride` apart.
fn view(t: &TensorRef, bytes: &[u8]) -> Result<Tensor, String> {
    let dtype = t.storage.dtype;
    let available = (bytes.len() / dtype.size()) as u64;
    if t.size.len() != t.stride.len() {
        return Err("size and stride disagree".into());
    }
    let count = t.size.iter().try_fold(1u64, |a, &d| a.checked_mul(d)).ok_or("a tensor larger than memory")?;
    if count > 0 {
        let last = t
            .size
            .iter()
            .zip(&t.stride)
            .try_fold(t.offset, |a, (&n, &s)| (n - 1).checked_mul(s).and_then(|x| a.checked_add(x)))
            .ok_or("a tensor larger than memory")?;
        if last >= available.min(t.storage.numel) {
            return Err(format!(
                "a tensor of shape {:?} reaches past its storage of {} values",
                t.size,
                available.min(t.storage.numel)
            ));
        }
    }
    let mut values = Vec::with_capacity(count as usize);
    let mut index = vec![0u64; t.size.len()];
    for _ in 0..count {
        let at = t.offset + index.iter().zip(&t.stride).map(|(i, s)| i * s).sum::<u64>();
        values.push(dtype.read(bytes, at as usize));
        for d in (0..index.len()).rev() {
            index[d] += 1;
            if index[d] < t.size[d] {
                break;
            }
            index[d] = 0;
        }
    }
    Ok(Tensor { dims: t.size.iter().map(|&d| d as usize).collect(), values })
}
