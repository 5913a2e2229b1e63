//! MindSpore's `.ckpt`: one protobuf message, `Checkpoint { repeated Value
//! value = 1 }`, `Value { string tag = 1; TensorProto tensor = 2 }`,
//! `TensorProto { repeated int64 dims = 1; string tensor_type = 2; bytes
//! tensor_content = 3 }` (little-endian values).

use std::path::Path;

use prost::Message;

use super::pickle::f16_to_f32;
use super::{Error, StateDict, Tensor};

#[derive(Clone, PartialEq, prost::Message)]
struct Checkpoint {
    #[prost(message, repeated, tag = "1")]
    value: Vec<Entry>,
}

#[derive(Clone, PartialEq, prost::Message)]
struct Entry {
    #[prost(string, tag = "1")]
    tag: String,
    #[prost(message, optional, tag = "2")]
    tensor: Option<TensorProto>,
}

#[derive(Clone, PartialEq, prost::Message)]
struct TensorProto {
    #[prost(int64, repeated, tag = "1")]
    dims: Vec<i64>,
    #[prost(string, tag = "2")]
    tensor_type: String,
    #[prost(bytes = "vec", tag = "3")]
    tensor_content: Vec<u8>,
}

pub fn read(path: &Path) -> Result<StateDict, Error> {
    let fail = |why: String| Error::Format { path: path.to_owned(), why };
    let data = std::fs::read(path).map_err(|e| Error::Io { path: path.to_owned(), source: e })?;
    let ckpt = Checkpoint::decode(data.as_slice()).map_err(|e| fail(format!("not a MindSpore checkpoint ({e})")))?;
    let mut out = Vec::new();
    for entry in ckpt.value {
        // Map tensors (embedding tables) and other kinds carry no tensor here.
        let Some(t) = entry.tensor else { continue };
        let dims: Vec<usize> = t
            .dims
            .iter()
            .map(|&d| usize::try_from(d))
            .collect::<Result<_, _>>()
            .map_err(|_| fail(format!("{}: a negative dimension", entry.tag)))?;
        let (size, read): (usize, fn(&[u8]) -> f32) = match t.tensor_type.as_str() {
            "Float32" => (4, |b| f32::from_le_bytes(b.try_into().expect("4 bytes"))),
            "Float64" => (8, |b| f64::from_le_bytes(b.try_into().expect("8 bytes")) as f32),
            "Float16" => (2, |b| f16_to_f32(u16::from_le_bytes(b.try_into().expect("2 bytes")))),
            "Int32" => (4, |b| i32::from_le_bytes(b.try_into().expect("4 bytes")) as f32),
            "Int64" => (8, |b| i64::from_le_bytes(b.try_into().expect("8 bytes")) as f32),
            "Int8" => (1, |b| b[0] as i8 as f32),
            "UInt8" | "Bool" => (1, |b| b[0] as f32),
            other => return Err(fail(format!("{}: tensor type {other:?} is not supported", entry.tag))),
        };
        let count = dims.iter().try_fold(1usize, |a, &d| a.checked_mul(d));
        if count.and_then(|c| c.checked_mul(size)) != Some(t.tensor_content.len()) {
            return Err(fail(format!(
                "{}: {} bytes for shape {dims:?} of {}",
                entry.tag,
                t.tensor_content.len(),
                t.tensor_type
            )));
        }
        let values = t.tensor_content.chunks_exact(size).map(read).collect();
        out.push((entry.tag, Tensor { dims, values }));
    }
    if out.is_empty() {
        return Err(fail("not a MindSpore checkpoint (no parameters found)".into()));
    }
    Ok(StateDict(out))
}
