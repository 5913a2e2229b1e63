//! An ONNX model as the project sees it: parsed, its image input, its
//! shapes and named layers, its identity, and copies cut down to chosen
//! outputs.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::io::Read;
use std::path::{Component, Path, PathBuf};

use prost::Message;
use sha2::{Digest, Sha256};

use crate::layers::{self, Found, Layer, NAMED};
use crate::onnx::{tensor_proto, type_proto, GraphProto, ModelProto, TensorProto, TypeProto, ValueInfoProto};
use crate::shapes::{self, Shape};

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("not an ONNX model: {0}")]
    Decode(#[from] prost::DecodeError),
    #[error("the model has no image input")]
    NoInput,
    #[error("the model's input {name:?} is {shape}, not an image batch N x 3 x H x W")]
    InputShape { name: String, shape: Shape },
    #[error("no residual blocks (Add or Sum joins) found: {0:?} needs a ResNet-style model; raw tensor names work on any model (see --list-layers)")]
    NoBlocks(String),
    #[error("the model's graph is malformed: {0}")]
    Malformed(String),
    #[error("the shape of tensor {0:?} is not known (neither the graph nor a run of the model gave it)")]
    UnknownShape(String),
    #[error("layer {0:?} is not present in this model ({1})")]
    Missing(String, &'static str),
    #[error("unknown layer {name:?}: use one of {}, or a tensor name from the model (see --list-layers)", NAMED.join(", "))]
    Unknown { name: String },
}

/// A parsed model with the structure the tools need.
pub struct Model {
    proto: ModelProto,
    pub input: String,
    pub input_shape: Shape,
    shapes: HashMap<String, Shape>,
    /// The graph's integer constants, read once for inference and discovery.
    consts: HashMap<String, Vec<i64>>,
    found: Found,
}

impl Model {
    pub fn parse(bytes: &[u8]) -> Result<Self, Error> {
        let proto = ModelProto::decode(bytes)?;
        Self::from_proto(proto)
    }

    pub fn from_proto(proto: ModelProto) -> Result<Self, Error> {
        let graph = proto.graph.as_ref().ok_or(Error::NoInput)?;
        let inits: HashSet<&str> = graph.initializer.iter().map(|t| t.name()).collect();
        // Old exporters list the weights among the inputs too.
        let input = graph.input.iter().find(|i| !inits.contains(i.name())).ok_or(Error::NoInput)?;
        let input_shape = shapes::value_info_shape(input).unwrap_or(Shape(vec![]));
        let ok = input_shape.0.len() == 4 && input_shape.0[1] == Some(3);
        if !ok {
            return Err(Error::InputShape { name: input.name().to_string(), shape: input_shape });
        }
        if let Some(n) = graph.node.iter().find(|n| n.output.is_empty()) {
            return Err(Error::Malformed(format!("node {:?} ({}) has no output", n.name(), n.op_type())));
        }
        let name = input.name().to_string();
        let consts = shapes::int_constants(graph);
        let shapes = shapes::infer(graph, &name, &input_shape, &consts);
        let found = layers::discover(graph, &name, &shapes, &consts);
        Ok(Model { input: name, input_shape, shapes, consts, found, proto })
    }

    /// The tensors whose shapes layer discovery needs and static inference
    /// could not make concrete. A caller with a runtime runs the model once
    /// with these as outputs and hands the answer to [`Model::supply_shapes`].
    pub fn shapes_needed(&self) -> &[String] {
        &self.found.missing
    }

    /// Shapes measured by running the model (batch first), for the tensors
    /// [`Model::shapes_needed`] named; discovery runs again with them.
    pub fn supply_shapes(&mut self, measured: impl IntoIterator<Item = (String, Vec<i64>)>) {
        let batch = self.input_shape.0[0];
        for (name, dims) in measured {
            let mut s = Shape::known(&dims);
            if let Some(first) = s.0.first_mut() {
                *first = batch; // the run's batch, not the model's
            }
            self.shapes.insert(name, s);
        }
        let graph = self.proto.graph.as_ref().expect("checked in parse");
        self.found = layers::discover(graph, &self.input, &self.shapes, &self.consts);
    }

    /// The named layers found (`stem`, `layer1`.., `avgpool`), with shapes.
    pub fn layers(&self) -> Result<&[Layer], Error> {
        match self.found.missing.first() {
            Some(t) => Err(Error::UnknownShape(t.clone())),
            None => Ok(&self.found.layers),
        }
    }

    /// Every residual block output, in order (none in a model without joins).
    pub fn blocks(&self) -> &[String] {
        &self.found.blocks
    }

    /// Which rule found `avgpool`, in words, when one did.
    pub fn avgpool_rule(&self) -> Option<&str> {
        self.found.avgpool_rule.as_deref()
    }

    /// The batch size the model is fixed to, if it is.
    pub fn fixed_batch(&self) -> Option<i64> {
        self.input_shape.0[0]
    }

    /// The input's fixed spatial size, if it has one.
    pub fn fixed_size(&self) -> Option<(i64, i64)> {
        Some((self.input_shape.0[2]?, self.input_shape.0[3]?))
    }

    /// Resolves `--layer` names: the named layers, else any tensor in the graph.
    pub fn resolve(&self, names: &[String]) -> Result<Vec<Layer>, Error> {
        let graph = self.graph();
        let tensors: HashSet<&str> = graph.node.iter().flat_map(|n| n.output.iter().map(|s| s.as_str())).collect();
        names
            .iter()
            .map(|name| {
                if NAMED.contains(&name.as_str()) {
                    if let Some(l) = self.layers()?.iter().find(|l| &l.name == name) {
                        return Ok(l.clone());
                    }
                    if self.found.blocks.is_empty() && name != "avgpool" {
                        return Err(Error::NoBlocks(name.clone()));
                    }
                    let why = if name == "avgpool" {
                        "no global average pooling was found"
                    } else {
                        "the graph does not have that many stages"
                    };
                    return Err(Error::Missing(name.clone(), why));
                }
                if tensors.contains(name.as_str()) {
                    return Ok(Layer {
                        name: name.clone(),
                        tensor: name.clone(),
                        shape: self.shapes.get(name).cloned(),
                    });
                }
                Err(Error::Unknown { name: name.clone() })
            })
            .collect()
    }

    /// An in-memory copy of the model whose outputs are exactly `tensors`,
    /// cut down to the nodes and weights they depend on: ONNX Runtime does
    /// not prune a graph by itself, so without the cut an early layer would
    /// cost the whole network.
    pub fn with_outputs(&self, tensors: &[&str]) -> Vec<u8> {
        self.cut(tensors).encode_to_vec()
    }

    /// The model cut down to the nodes and weights `tensors` depend on,
    /// with exactly those outputs (float tensors of unknown shape).
    pub fn cut(&self, tensors: &[&str]) -> ModelProto {
        let mut proto = self.proto.clone();
        let graph = proto.graph.as_mut().expect("checked in parse");
        let mut needed: HashSet<String> = tensors.iter().map(|t| t.to_string()).collect();
        let mut keep = vec![false; graph.node.len()];
        for (i, node) in graph.node.iter().enumerate().rev() {
            if node.output.iter().any(|o| needed.contains(o)) {
                keep[i] = true;
                needed.extend(node.input.iter().filter(|n| !n.is_empty()).cloned());
            }
        }
        let mut flags = keep.into_iter();
        graph.node.retain(|_| flags.next().expect("one flag per node"));
        graph.initializer.retain(|t| needed.contains(t.name()));
        graph.value_info.retain(|v| needed.contains(v.name()));
        let input = self.input.clone();
        graph.input.retain(|i| i.name() == input || needed.contains(i.name()));
        graph.output = float_outputs(tensors);
        proto
    }

    fn graph(&self) -> &GraphProto {
        self.proto.graph.as_ref().expect("checked in parse")
    }

    /// The files beside the model that hold its weights (ONNX external data:
    /// the `location`s, relative to the model's folder), each once, sorted.
    /// A location that leaves the folder is refused.
    pub fn external_files(&self) -> Result<Vec<String>, Error> {
        let mut files = BTreeSet::new();
        for t in &self.graph().initializer {
            if t.data_location != Some(tensor_proto::DataLocation::External as i32) {
                continue;
            }
            let loc = t.external_data.iter().find(|e| e.key() == "location").map(|e| e.value()).unwrap_or_default();
            let inside = !loc.is_empty()
                && Path::new(loc).components().all(|c| matches!(c, Component::Normal(_) | Component::CurDir));
            if !inside {
                return Err(Error::Malformed(format!(
                    "weights of {:?} are in {loc:?}, outside the model's folder",
                    t.name()
                )));
            }
            files.insert(loc.to_string());
        }
        Ok(files.into_iter().collect())
    }

    /// A value of the model's metadata (`metadata_props`), as the project's
    /// converter and test-model generator write them: `weights`,
    /// `source_url`, `source_sha256`, `eval_resize`, `eval_crop`, `untrained`.
    pub fn metadata(&self, key: &str) -> Option<&str> {
        self.proto.metadata_props.iter().find(|p| p.key() == key).map(|p| p.value())
    }
}

/// Graph outputs for `tensors`: float tensors of unknown shape.
pub(crate) fn float_outputs(tensors: &[&str]) -> Vec<ValueInfoProto> {
    tensors
        .iter()
        .map(|t| ValueInfoProto {
            name: Some(t.to_string()),
            r#type: Some(TypeProto {
                value: Some(type_proto::Value::TensorType(type_proto::Tensor {
                    elem_type: Some(tensor_proto::DataType::Float as i32),
                    shape: None,
                })),
                ..Default::default()
            }),
            ..Default::default()
        })
        .collect()
}

/// A float32 tensor's values, from either of its encodings; `None` for
/// another type, external data not read in, or a size its dims disagree with.
pub fn float_values(t: &TensorProto) -> Option<Vec<f32>> {
    if t.data_type() != tensor_proto::DataType::Float as i32 {
        return None;
    }
    let count = t.dims.iter().try_fold(1usize, |n, &d| n.checked_mul(usize::try_from(d).ok()?))?;
    if !t.float_data.is_empty() {
        return (t.float_data.len() == count).then(|| t.float_data.clone());
    }
    let raw = t.raw_data();
    if Some(raw.len()) != count.checked_mul(4) {
        return None;
    }
    Some(raw.chunks_exact(4).map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])).collect())
}

/// The model's bytes, as an ONNX file holds them.
pub fn encode(proto: &ModelProto) -> Vec<u8> {
    proto.encode_to_vec()
}

/// Reads the weights a model keeps as external data (files in `dir`, the
/// model's folder) into the model itself, so it can be written anywhere as
/// one file. The locations were checked by [`Model::external_files`].
pub fn inline_external_data(proto: &mut ModelProto, dir: &Path) -> Result<(), Error> {
    let Some(graph) = proto.graph.as_mut() else { return Ok(()) };
    for t in &mut graph.initializer {
        if t.data_location != Some(tensor_proto::DataLocation::External as i32) {
            continue;
        }
        let get = |k: &str| t.external_data.iter().find(|e| e.key() == k).map(|e| e.value().to_string());
        let location = get("location").unwrap_or_default();
        let offset: u64 = get("offset").and_then(|v| v.parse().ok()).unwrap_or(0);
        let path = dir.join(&location);
        let bad = |why: String| Error::Malformed(format!("weights of {:?} in {}: {why}", t.name(), path.display()));
        let bytes = std::fs::read(&path).map_err(|e| bad(e.to_string()))?;
        let end = match get("length").and_then(|v| v.parse::<u64>().ok()) {
            Some(len) => offset.checked_add(len),
            None => Some(bytes.len() as u64),
        };
        let range = end
            .filter(|&e| e <= bytes.len() as u64 && offset <= e)
            .ok_or_else(|| bad("shorter than recorded".into()))?;
        t.raw_data = Some(bytes[offset as usize..range as usize].to_vec());
        t.external_data.clear();
        t.data_location = None;
    }
    Ok(())
}

/// The model's identity (FEATURE-FILE.md): the SHA-256 of the model file's
/// bytes, followed, when its weights are external data, by each external
/// file's bytes in the order of their names. Also the folder those files
/// are in, when there are any.
pub fn identity(path: &Path, bytes: &[u8], model: &Model) -> Result<(String, Option<PathBuf>), IdentityError> {
    let mut h = Sha256::new();
    h.update(bytes);
    let files = model.external_files().map_err(IdentityError::Model)?;
    let dir = path.parent().map(Path::to_path_buf).unwrap_or_default();
    for name in &files {
        let p = dir.join(name);
        let io = |e| IdentityError::Io { path: p.clone(), source: e };
        let mut f = std::fs::File::open(&p).map_err(io)?;
        std::io::copy(&mut f, &mut h).map_err(io)?;
    }
    let weights_dir = (!files.is_empty()).then(|| if dir.as_os_str().is_empty() { PathBuf::from(".") } else { dir });
    Ok((hex::encode(h.finalize()), weights_dir))
}

#[derive(Debug, thiserror::Error)]
pub enum IdentityError {
    #[error(transparent)]
    Model(Error),
    #[error("{}: {source}", .path.display())]
    Io { path: PathBuf, source: std::io::Error },
}

/// The SHA-256 of a file, streamed.
pub fn sha256_file(path: &Path) -> std::io::Result<String> {
    let mut h = Sha256::new();
    let mut f = std::fs::File::open(path)?;
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = f.read(&mut buf)?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
    }
    Ok(hex::encode(h.finalize()))
}
