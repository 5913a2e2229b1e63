//! Finds ResNet's named layers in any ONNX export from the graph's structure,
//! never from one exporter's node names, and exposes them as model outputs.
//!
//! A residual join is an `Add` or `Sum` of two tensors computed from the
//! image (Caffe2 exports join with `Sum`); the block's output is the `Relu`
//! that is the join's only consumer, else the join itself (pre-activation
//! ResNet v2). Block outputs are grouped into stages by shape
//! (`layer1`..`layer4`), `stem` is the tensor the first block starts from.
//! `avgpool` is the pooled vector the classifier head takes, on any model
//! that has one; raw tensor names work on any model at all.
//!
//! The file is untrusted input: whatever it holds, parsing ends in a model
//! or an error, never a panic.

use std::collections::{HashMap, HashSet};
use std::fmt;

use prost::Message;

use crate::onnx::{
    tensor_proto, tensor_shape_proto, type_proto, AttributeProto, GraphProto,
    ModelProto, NodeProto, TensorProto, TensorShapeProto, TypeProto, ValueInfoProto,
};

/// The layer names `--layer` accepts besides raw tensor names, in network order.
pub const NAMED: [&str; 6] = ["stem", "layer1", "layer2", "layer3", "layer4", "avgpool"];

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
    #[error("the shape of tensor {0:?} could not be inferred")]
    UnknownShape(String),
    #[error("layer {0:?} is not present in this model ({1})")]
    Missing(String, &'static str),
    #[error("unknown layer {name:?}: use one of {}, or a tensor name from the model (see --list-layers)", NAMED.join(", "))]
    Unknown { name: String },
}

/// A tensor shape; `None` where a dimension is symbolic (the batch) or unknown.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Shape(pub Vec<Option<i64>>);

impl Shape {
    fn known(dims: &[i64]) -> Self {
        Shape(dims.iter().map(|&d| Some(d)).collect())
    }
    /// Dimensions after the batch, if all are known.
    pub fn sample_dims(&self) -> Option<Vec<i64>> {
        self.0.iter().skip(1).copied().collect()
    }
}

impl fmt::Display for Shape {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let dims: Vec<String> = self.0.iter().map(|d| d.map_or("N".to_string(), |d| d.to_string())).collect();
        f.write_str(&dims.join("x"))
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Layer {
    /// `stem`, `layer1`, ..., `avgpool`, or the raw tensor name.
    pub name: String,
    pub tensor: String,
    pub shape: Option<Shape>,
}

/// A parsed model with the structure `extract` needs.
pub struct Model {
    proto: ModelProto,
    pub input: String,
    pub input_shape: Shape,
    shapes: HashMap<String, Shape>,
    /// Stage outputs and the pool, as found.
    pub layers: Vec<Layer>,
    /// Every residual block output, in order (none in a model without joins).
    pub blocks: Vec<String>,
}

impl Model {
    pub fn parse(bytes: &[u8]) -> Result<Self, Error> {
        let proto = ModelProto::decode(bytes)?;
        let graph = proto.graph.as_ref().ok_or(Error::NoInput)?;
        let inits: HashSet<&str> = graph.initializer.iter().map(|t| t.name()).collect();
        // Old exporters list the weights among the inputs too.
        let input = graph.input.iter().find(|i| !inits.contains(i.name())).ok_or(Error::NoInput)?;
        let input_shape = value_info_shape(input).unwrap_or(Shape(vec![]));
        let ok = input_shape.0.len() == 4 && input_shape.0[1] == Some(3);
        if !ok {
            return Err(Error::InputShape { name: input.name().to_string(), shape: input_shape });
        }
        if let Some(n) = graph.node.iter().find(|n| n.output.is_empty()) {
            return Err(Error::Malformed(format!("node {:?} ({}) has no output", n.name(), n.op_type())));
        }
        let name = input.name().to_string();
        let shapes = infer_shapes(graph, &name, &input_shape);
        let (blocks, layers) = find_layers(graph, &name, &shapes)?;
        Ok(Model { input: name, input_shape, shapes, layers, blocks, proto })
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
                if let Some(l) = self.layers.iter().find(|l| &l.name == name) {
                    return Ok(l.clone());
                }
                if NAMED.contains(&name.as_str()) {
                    if self.blocks.is_empty() && name != "avgpool" {
                        return Err(Error::NoBlocks(name.clone()));
                    }
                    let why = if name == "avgpool" {
                        "no classifier head on a global pool was found"
                    } else {
                        "the graph does not have that many stages"
                    };
                    return Err(Error::Missing(name.clone(), why));
                }
                if tensors.contains(name.as_str()) {
                    return Ok(Layer { name: name.clone(), tensor: name.clone(), shape: self.shapes.get(name).cloned() });
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
        graph.output = tensors
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
            .collect();
        proto
    }

    fn graph(&self) -> &GraphProto {
        self.proto.graph.as_ref().expect("checked in parse")
    }

    /// The files beside the model that hold its weights (ONNX external data:
    /// the `location`s, relative to the model's folder), each once, sorted.
    /// A location that leaves the folder is refused.
    pub fn external_files(&self) -> Result<Vec<String>, Error> {
        let mut files = std::collections::BTreeSet::new();
        for t in &self.graph().initializer {
            if t.data_location != Some(tensor_proto::DataLocation::External as i32) {
                continue;
            }
            let loc = t.external_data.iter().find(|e| e.key() == "location").map(|e| e.value()).unwrap_or_default();
            let p = std::path::Path::new(loc);
            let inside = !loc.is_empty()
                && p.components().all(|c| matches!(c, std::path::Component::Normal(_) | std::path::Component::CurDir));
            if !inside {
                return Err(Error::Malformed(format!("weights of {:?} are in {loc:?}, outside the model's folder", t.name())));
            }
            files.insert(loc.to_string());
        }
        Ok(files.into_iter().collect())
    }

    /// A value of the model's metadata (`metadata_props`), as the project's
    /// converters and test-model generator write them: `weights`,
    /// `eval_resize`, `eval_crop`, `untrained`, ...
    pub fn metadata(&self, key: &str) -> Option<&str> {
        self.proto.metadata_props.iter().find(|p| p.key() == key).map(|p| p.value())
    }
}

/// Reads the weights a model keeps as external data (files in `dir`, the
/// model's folder) into the model itself, so it can be written anywhere as
/// one file. The locations were checked by [`Model::external_files`].
pub fn inline_external_data(proto: &mut ModelProto, dir: &std::path::Path) -> Result<(), Error> {
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
        let range = end.filter(|&e| e <= bytes.len() as u64 && offset <= e).ok_or_else(|| bad("shorter than recorded".into()))?;
        t.raw_data = Some(bytes[offset as usize..range as usize].to_vec());
        t.external_data.clear();
        t.data_location = None;
    }
    Ok(())
}

fn value_info_shape(v: &ValueInfoProto) -> Option<Shape> {
    let Some(type_proto::Value::TensorType(t)) = v.r#type.as_ref()?.value.as_ref() else { return None };
    Some(proto_shape(t.shape.as_ref()?))
}

fn proto_shape(s: &TensorShapeProto) -> Shape {
    Shape(
        s.dim
            .iter()
            .map(|d| match d.value {
                Some(tensor_shape_proto::dimension::Value::DimValue(v)) if v > 0 => Some(v),
                _ => None,
            })
            .collect(),
    )
}

fn attr<'a>(node: &'a NodeProto, name: &str) -> Option<&'a AttributeProto> {
    node.attribute.iter().find(|a| a.name() == name)
}

fn attr_ints(node: &NodeProto, name: &str) -> Option<Vec<i64>> {
    attr(node, name).map(|a| a.ints.clone())
}

fn attr_int(node: &NodeProto, name: &str) -> Option<i64> {
    attr(node, name).and_then(|a| a.i)
}

fn tensor_ints(t: &TensorProto) -> Option<Vec<i64>> {
    if t.data_type() != tensor_proto::DataType::Int64 as i32 {
        return None;
    }
    if !t.int64_data.is_empty() {
        return Some(t.int64_data.clone());
    }
    let raw = t.raw_data.as_ref()?;
    Some(raw.chunks_exact(8).map(|c| i64::from_le_bytes(c.try_into().unwrap())).collect())
}

/// Static shape inference for the operators a ResNet uses. Shapes the graph
/// itself records (`value_info`) fill in where an operator is not covered.
fn infer_shapes(graph: &GraphProto, input: &str, input_shape: &Shape) -> HashMap<String, Shape> {
    let mut shapes: HashMap<String, Shape> = HashMap::new();
    let mut consts: HashMap<String, Vec<i64>> = HashMap::new();
    for t in &graph.initializer {
        shapes.insert(t.name().to_string(), Shape::known(&t.dims));
        if let Some(v) = tensor_ints(t) {
            consts.insert(t.name().to_string(), v);
        }
    }
    let recorded: HashMap<&str, Shape> = graph
        .value_info
        .iter()
        .chain(&graph.output)
        .filter_map(|v| Some((v.name(), value_info_shape(v)?)))
        .collect();
    shapes.insert(input.to_string(), input_shape.clone());
    for node in &graph.node {
        if node.op_type() == "Constant" {
            if let (Some(t), Some(out)) = (attr(node, "value").and_then(|a| a.t.as_ref()), node.output.first()) {
                if let Some(v) = tensor_ints(t) {
                    consts.insert(out.clone(), v);
                }
                shapes.insert(out.clone(), Shape::known(&t.dims));
            }
            continue;
        }
        let get = |i: usize| node.input.get(i).and_then(|n| shapes.get(n)).cloned();
        let out = infer_node(node, get(0), get(1), |i| node.input.get(i).and_then(|n| consts.get(n)).cloned());
        if let Some(name) = node.output.first() {
            if let Some(s) = out.or_else(|| recorded.get(name.as_str()).cloned()) {
                shapes.insert(name.clone(), s);
            }
        }
    }
    shapes
}

fn infer_node(
    node: &NodeProto,
    x: Option<Shape>,
    w: Option<Shape>,
    constant: impl Fn(usize) -> Option<Vec<i64>>,
) -> Option<Shape> {
    let x = x?;
    let d = &x.0;
    let w_rank = w.as_ref().map_or(0, |w| w.0.len());
    // What each operator below indexes: a malformed file must not make it panic.
    let ranks_ok = match node.op_type() {
        "Conv" => d.len() >= 3 && w_rank == d.len(),
        "MaxPool" | "AveragePool" | "GlobalAveragePool" | "GlobalMaxPool" => d.len() >= 2,
        "Flatten" | "ReduceMean" | "ReduceMax" | "Squeeze" => !d.is_empty(),
        "Gemm" => d.len() == 2 && w_rank == 2,
        "MatMul" => !d.is_empty() && w_rank >= 1,
        _ => true,
    };
    if !ranks_ok {
        return None;
    }
    match node.op_type() {
        "Relu" | "BatchNormalization" | "Clip" | "Identity" | "Dropout" | "Sigmoid" | "LeakyRelu"
        | "HardSwish" | "Mul" | "Div" | "Sub" => Some(x),
        "Add" | "Sum" => match w {
            // A residual sum: both sides agree; a bias add keeps x's shape.
            Some(w) if w.0.len() > d.len() => Some(w),
            _ => Some(x),
        },
        "Conv" => {
            let w = w?.0;
            let k: Vec<i64> = w[2..].iter().map(|v| v.unwrap_or(1)).collect();
            let mut out = vec![d[0], w[0]];
            out.extend(spatial(node, d, &k));
            Some(Shape(out))
        }
        "MaxPool" | "AveragePool" => {
            let k = attr_ints(node, "kernel_shape")?;
            if k.len() + 2 != d.len() {
                return None;
            }
            let mut out = vec![d[0], d[1]];
            out.extend(spatial(node, d, &k));
            Some(Shape(out))
        }
        "GlobalAveragePool" | "GlobalMaxPool" => {
            let mut out = d[..2].to_vec();
            out.extend(std::iter::repeat_n(Some(1), d.len().saturating_sub(2)));
            Some(Shape(out))
        }
        "ReduceMean" | "ReduceMax" => {
            let axes = attr_ints(node, "axes").or_else(|| constant(1))?;
            let rank = d.len() as i64;
            let axes: Vec<usize> = axes.iter().map(|a| a.rem_euclid(rank) as usize).collect();
            let keep = attr_int(node, "keepdims").unwrap_or(1) != 0;
            let out = d
                .iter()
                .enumerate()
                .filter_map(|(i, v)| match (axes.contains(&i), keep) {
                    (false, _) => Some(*v),
                    (true, true) => Some(Some(1)),
                    (true, false) => None,
                })
                .collect();
            Some(Shape(out))
        }
        "Flatten" => {
            let axis = attr_int(node, "axis").unwrap_or(1).rem_euclid(d.len() as i64) as usize;
            let prod = |s: &[Option<i64>]| s.iter().try_fold(1i64, |a, v| v.and_then(|v| a.checked_mul(v)));
            Some(Shape(vec![prod(&d[..axis]), prod(&d[axis..])]))
        }
        "Squeeze" => {
            let axes = attr_ints(node, "axes").or_else(|| constant(1));
            let out = d
                .iter()
                .enumerate()
                .filter(|(i, v)| match &axes {
                    Some(a) => !a.iter().any(|a| (a.rem_euclid(d.len() as i64)) as usize == *i),
                    None => **v != Some(1),
                })
                .map(|(_, v)| *v)
                .collect();
            Some(Shape(out))
        }
        "Reshape" => {
            let target = constant(1)?;
            let total = d.iter().try_fold(1i64, |a, v| v.and_then(|v| a.checked_mul(v)));
            let mut out: Vec<Option<i64>> = target
                .iter()
                .enumerate()
                .map(|(i, &t)| match t {
                    0 => d.get(i).copied().flatten(),
                    -1 => None,
                    t => Some(t),
                })
                .collect();
            if let (Some(total), Some(pos)) = (total, target.iter().position(|&t| t == -1)) {
                let rest = out
                    .iter()
                    .enumerate()
                    .filter(|(i, _)| *i != pos)
                    .try_fold(1i64, |a, (_, v)| v.and_then(|v| a.checked_mul(v)));
                out[pos] = rest.filter(|&r| r > 0).map(|r| total / r);
            }
            Some(Shape(out))
        }
        "Gemm" => {
            let w = w?.0;
            let trans_b = attr_int(node, "transB").unwrap_or(0) != 0;
            Some(Shape(vec![d[0], if trans_b { w[0] } else { w[1] }]))
        }
        "MatMul" => {
            let w = w?.0;
            let mut out = d[..d.len() - 1].to_vec();
            out.push(*w.last()?);
            Some(Shape(out))
        }
        _ => None,
    }
}

/// Output spatial dims of a convolution or pooling window over `d` (N, C, ...).
fn spatial(node: &NodeProto, d: &[Option<i64>], k: &[i64]) -> Vec<Option<i64>> {
    let n = k.len();
    let sized = |v: Option<Vec<i64>>, len: usize, fill: i64| v.filter(|v| v.len() == len).unwrap_or_else(|| vec![fill; len]);
    let strides = sized(attr_ints(node, "strides"), n, 1);
    let dil = sized(attr_ints(node, "dilations"), n, 1);
    let pads = sized(attr_ints(node, "pads"), 2 * n, 0);
    let ceil = attr_int(node, "ceil_mode").unwrap_or(0) != 0;
    let auto = attr(node, "auto_pad").map(|a| String::from_utf8_lossy(a.s()).into_owned()).unwrap_or_default();
    (0..n)
        .map(|i| {
            let size = d.get(i + 2).copied().flatten()?;
            let s = strides[i];
            if s <= 0 {
                return None;
            }
            if auto == "SAME_UPPER" || auto == "SAME_LOWER" {
                return Some((size + s - 1) / s);
            }
            let pad = if auto == "VALID" { 0 } else { pads[i] + pads[i + n] };
            let eff = dil[i].checked_mul(k[i] - 1)? + 1;
            let span = size.checked_add(pad)?.checked_sub(eff)?;
            Some(if ceil { (span + s - 1) / s + 1 } else { span / s + 1 })
        })
        .collect()
}

fn find_layers(
    graph: &GraphProto,
    input: &str,
    shapes: &HashMap<String, Shape>,
) -> Result<(Vec<String>, Vec<Layer>), Error> {
    let inits: HashSet<&str> = graph.initializer.iter().map(|t| t.name()).collect();
    let mut consumers: HashMap<&str, Vec<&NodeProto>> = HashMap::new();
    for node in &graph.node {
        for i in &node.input {
            consumers.entry(i.as_str()).or_default().push(node);
        }
    }
    // Tensors computed from the image: a join of two of them is residual,
    // where an Add of a computed tensor and a constant (a bias; an
    // initializer that Caffe2 builds with ConstantOfShape) is not.
    let mut from_image: HashSet<&str> = HashSet::from([input]);
    for node in &graph.node {
        if node.input.iter().any(|i| from_image.contains(i.as_str())) {
            from_image.extend(node.output.iter().map(String::as_str));
        }
    }
    let mut blocks: Vec<(&NodeProto, &str)> = Vec::new();
    for node in graph.node.iter().filter(|n| matches!(n.op_type(), "Add" | "Sum")) {
        let computed = node.input.iter().filter(|i| from_image.contains(i.as_str()) && !inits.contains(i.as_str()));
        if node.input.len() != 2 || computed.count() != 2 {
            continue;
        }
        let join = node.output[0].as_str();
        let out = match consumers.get(join).map(|v| v.as_slice()) {
            Some([relu]) if relu.op_type() == "Relu" => relu.output[0].as_str(),
            _ => join, // pre-activation (v2): the join is the block's output
        };
        blocks.push((node, out));
    }
    let shape_of = |t: &str| shapes.get(t).ok_or_else(|| Error::UnknownShape(t.to_string()));
    let layer = |name: &str, tensor: &str| -> Result<Layer, Error> {
        Ok(Layer { name: name.to_string(), tensor: tensor.to_string(), shape: Some(shape_of(tensor)?.clone()) })
    };

    let mut layers = Vec::new();
    if let Some((first_join, _)) = blocks.first() {
        layers.push(layer("stem", &block_start(graph, input, first_join, &inits))?);
        // Consecutive blocks of one output shape form a stage; its last block is the stage output.
        let mut stage = 0;
        for (i, (_, out)) in blocks.iter().enumerate() {
            let this = shape_of(out)?.sample_dims();
            let next = blocks.get(i + 1).map(|(_, o)| shape_of(o)).transpose()?.map(|s| s.sample_dims());
            if next.as_ref() != Some(&this) {
                stage += 1;
                layers.push(layer(&format!("layer{stage}"), out)?);
            }
        }
    }
    if let Some(pooled) = classifier_input(graph, shapes, &consumers) {
        layers.push(layer("avgpool", &pooled)?);
    }
    Ok((blocks.iter().map(|(_, o)| o.to_string()).collect(), layers))
}

/// The pooled vector a classifier head takes: the input of the last `Gemm`
/// or `MatMul` when it comes from a global pool (GlobalAveragePool, a
/// ReduceMean over the spatial axes, an AveragePool to 1x1) through any
/// Flatten, Reshape or Squeeze. The flattened vector when the exporter
/// writes one right after the pool, else the pool's own output.
fn classifier_input(
    graph: &GraphProto,
    shapes: &HashMap<String, Shape>,
    consumers: &HashMap<&str, Vec<&NodeProto>>,
) -> Option<String> {
    let producer: HashMap<&str, &NodeProto> =
        graph.node.iter().flat_map(|n| n.output.iter().map(move |o| (o.as_str(), n))).collect();
    let head = graph.node.iter().rev().find(|n| matches!(n.op_type(), "Gemm" | "MatMul"))?;
    let mut t = head.input.first()?.as_str();
    for _ in 0..8 {
        let n = producer.get(t)?;
        match n.op_type() {
            "Flatten" | "Reshape" | "Squeeze" => t = n.input.first()?.as_str(),
            _ => break,
        }
    }
    let pool = producer.get(t)?;
    let out = shapes.get(t);
    let one_by_one = out.is_some_and(|s| s.0.len() == 4 && s.0[2] == Some(1) && s.0[3] == Some(1));
    let global = match pool.op_type() {
        "GlobalAveragePool" => true,
        "ReduceMean" | "AveragePool" => one_by_one || out.is_some_and(|s| s.0.len() == 2),
        _ => false,
    };
    if !global {
        return None;
    }
    // Prefer the flattened vector right after the pool, when it is one.
    match consumers.get(t).map(|v| v.as_slice()) {
        Some([n]) if matches!(n.op_type(), "Flatten" | "Reshape" | "Squeeze")
            && shapes.get(&n.output[0]).is_some_and(|s| s.0.len() == 2) => Some(n.output[0].clone()),
        _ => Some(t.to_string()),
    }
}

/// The tensor a block's two branches both start from: the nearest common
/// ancestor of the Add's inputs (the stem's output for the first block).
fn block_start(graph: &GraphProto, input: &str, add: &NodeProto, inits: &HashSet<&str>) -> String {
    let producer: HashMap<&str, (usize, &NodeProto)> = graph
        .node
        .iter()
        .enumerate()
        .flat_map(|(i, n)| n.output.iter().map(move |o| (o.as_str(), (i, n))))
        .collect();
    let ancestors = |start: &str| -> HashSet<String> {
        let mut seen = HashSet::new();
        let mut stack = vec![start.to_string()];
        while let Some(t) = stack.pop() {
            if inits.contains(t.as_str()) || !seen.insert(t.clone()) {
                continue;
            }
            if let Some((_, n)) = producer.get(t.as_str()) {
                stack.extend(n.input.iter().cloned());
            }
        }
        seen
    };
    let a = ancestors(&add.input[0]);
    let b = ancestors(&add.input[1]);
    a.intersection(&b)
        .max_by_key(|t| producer.get(t.as_str()).map_or(-1, |(i, _)| *i as i64))
        .cloned()
        .unwrap_or_else(|| input.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node(op: &str, inputs: &[&str], output: &str) -> NodeProto {
        NodeProto {
            op_type: Some(op.into()),
            input: inputs.iter().map(|s| s.to_string()).collect(),
            output: vec![output.into()],
            ..Default::default()
        }
    }

    fn tensor(name: &str, dims: &[i64]) -> TensorProto {
        TensorProto {
            name: Some(name.into()),
            dims: dims.to_vec(),
            data_type: Some(tensor_proto::DataType::Float as i32),
            float_data: vec![0.0; dims.iter().product::<i64>() as usize],
            ..Default::default()
        }
    }

    fn input(name: &str, dims: &[i64]) -> ValueInfoProto {
        let dim = dims
            .iter()
            .map(|&d| tensor_shape_proto::Dimension {
                value: Some(tensor_shape_proto::dimension::Value::DimValue(d)),
                ..Default::default()
            })
            .collect();
        ValueInfoProto {
            name: Some(name.into()),
            r#type: Some(TypeProto {
                value: Some(type_proto::Value::TensorType(type_proto::Tensor {
                    elem_type: Some(1),
                    shape: Some(TensorShapeProto { dim }),
                })),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    /// x -> conv -> relu = s; two residual blocks on s; pool; fc.
    fn tiny() -> Model {
        let graph = GraphProto {
            node: vec![
                node("Conv", &["x", "w0"], "c0"),
                node("Relu", &["c0"], "s"),
                node("Conv", &["s", "w1"], "c1"),
                node("Add", &["c1", "s"], "a1"),
                node("Relu", &["a1"], "b1"),
                node("Conv", &["b1", "w2"], "c2"),
                node("Add", &["c2", "b1"], "a2"),
                node("Relu", &["a2"], "b2"),
                node("GlobalAveragePool", &["b2"], "p"),
                node("Flatten", &["p"], "f"),
                node("Gemm", &["f", "fc"], "y"),
            ],
            initializer: vec![tensor("w0", &[4, 3, 1, 1]), tensor("w1", &[4, 4, 1, 1]), tensor("w2", &[4, 4, 1, 1]), tensor("fc", &[2, 4])],
            input: vec![input("x", &[1, 3, 8, 8])],
            output: vec![input("y", &[1, 2])],
            ..Default::default()
        };
        let bytes = ModelProto { graph: Some(graph), ..Default::default() }.encode_to_vec();
        Model::parse(&bytes).unwrap()
    }

    #[test]
    fn finds_stem_stages_and_pool_by_structure() {
        let m = tiny();
        let found: Vec<(&str, &str, String)> =
            m.layers.iter().map(|l| (l.name.as_str(), l.tensor.as_str(), l.shape.clone().unwrap().to_string())).collect();
        assert_eq!(
            found,
            vec![("stem", "s", "1x4x8x8".to_string()), ("layer1", "b2", "1x4x8x8".to_string()), ("avgpool", "f", "1x4".to_string())]
        );
        assert_eq!(m.blocks, vec!["b1", "b2"]);
    }

    #[test]
    fn the_copy_for_an_early_layer_keeps_only_what_it_needs() {
        let m = tiny();
        let cut = ModelProto::decode(m.with_outputs(&["s"]).as_slice()).unwrap();
        let g = cut.graph.unwrap();
        let ops: Vec<&str> = g.node.iter().map(|n| n.op_type()).collect();
        assert_eq!(ops, vec!["Conv", "Relu"]);
        let weights: Vec<&str> = g.initializer.iter().map(|t| t.name()).collect();
        assert_eq!(weights, vec!["w0"]);
        assert_eq!(g.output.iter().map(|o| o.name()).collect::<Vec<_>>(), vec!["s"]);

        let all = ModelProto::decode(m.with_outputs(&["s", "f"]).as_slice()).unwrap().graph.unwrap();
        assert_eq!(all.node.len(), 10, "everything but the classifier");
    }
}
