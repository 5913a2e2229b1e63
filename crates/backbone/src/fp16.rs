//! float16: the model's arithmetic in IEEE half precision, which GPUs'
//! tensor cores compute at several times their float32 rate, with the
//! image input and the outputs still float32: a Cast after the input and
//! before each output, as ONNX Runtime's `convert_float_to_float16` writes
//! with `keep_io_types=True`. Callers feed and read the same tensors as
//! for the float32 model.
//!
//! What runs in half is decided per node, so that any model converts:
//!
//! - an operator of [`HALF`] (every float input and output of one type T,
//!   float16 among T's types) runs in half when it computes on the image's
//!   values; any other operator, one from another domain, or one with a
//!   subgraph keeps float32, with Casts around it;
//! - arithmetic on shapes and constants alone (a Shape's size turned into
//!   a float and scaled, say) keeps float32: float16 holds integers exactly
//!   only up to 2048;
//! - a weight read in half is stored in half (no Cast at run time), clamped
//!   into half's range as ONNX Runtime's converter does: magnitudes above
//!   65504 to 65504, nonzero ones below 2^-24 to 2^-24, so no weight turns
//!   into an infinity or a zero;
//! - tensors that must keep float32 under their own name (the graph's
//!   outputs, names a subgraph reads from outside) are written in half
//!   under another name and cast back.

use std::collections::{HashMap, HashSet};

use half::f16;

use crate::builder::{attr_int, raw_tensor};
use crate::onnx::{attribute_proto, tensor_proto, type_proto, GraphProto, ModelProto, NodeProto, TensorProto};

const FLOAT: i32 = tensor_proto::DataType::Float as i32;
const FLOAT16: i32 = tensor_proto::DataType::Float16 as i32;
const INT64: i32 = tensor_proto::DataType::Int64 as i32;
const BOOL: i32 = tensor_proto::DataType::Bool as i32;

/// Operators that run in half: each float input and output is of one type
/// T, with float16 among T's types and float16 kernels in ONNX Runtime's
/// CUDA provider. (Resize, whose scales stay float, and LayerNormalization,
/// whose statistics outputs are float32, are not among them.)
pub const HALF: &[&str] = &[
    "Conv",
    "ConvTranspose",
    "Gemm",
    "MatMul",
    "BatchNormalization",
    "InstanceNormalization",
    "Relu",
    "LeakyRelu",
    "PRelu",
    "Elu",
    "Sigmoid",
    "HardSigmoid",
    "HardSwish",
    "Tanh",
    "Clip",
    "Erf",
    "Softmax",
    "Add",
    "Sub",
    "Mul",
    "Div",
    "Sum",
    "Sqrt",
    "Pow",
    "Exp",
    "Neg",
    "Abs",
    "Reciprocal",
    "MaxPool",
    "AveragePool",
    "GlobalAveragePool",
    "GlobalMaxPool",
    "ReduceMean",
    "Flatten",
    "Reshape",
    "Squeeze",
    "Unsqueeze",
    "Transpose",
    "Concat",
    "Split",
    "Slice",
    "Gather",
    "Pad",
    "Identity",
    "Expand",
    "Tile",
];

/// Half's largest finite value and its smallest positive one (a subnormal),
/// ONNX Runtime's converter's `max_finite_val` and `min_positive_val`.
const MAX_FINITE: f32 = 65504.0;
const MIN_POSITIVE: f32 = 5.96e-8;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("the model has no graph")]
    NoGraph,
    #[error("the model has no operator that computes on the image in float16 (Conv, Gemm, MatMul, ...)")]
    NothingInHalf,
    #[error("weight {0:?} is not a float tensor this converter reads")]
    Weight(String),
}

/// `value` in half, clamped as ONNX Runtime's converter clamps (infinities
/// and NaN stay what they are).
fn to_half(value: f32) -> f16 {
    let a = value.abs();
    let v = if a > 0.0 && a < MIN_POSITIVE {
        MIN_POSITIVE.copysign(value)
    } else if a > MAX_FINITE && a.is_finite() {
        MAX_FINITE.copysign(value)
    } else {
        value
    };
    f16::from_f32(v)
}

/// The model with its arithmetic in half (see the module's text). `proto`
/// has its weights inline; how many nodes run in half is the second value.
pub fn convert(proto: &ModelProto) -> Result<(ModelProto, usize), Error> {
    let mut out = proto.clone();
    let graph = out.graph.as_mut().ok_or(Error::NoGraph)?;
    let types = elem_types(graph);
    let from_image = value_dependent(graph);
    let mut keep_float: HashSet<String> = graph.output.iter().map(|o| o.name().to_string()).collect();
    for n in &graph.node {
        for a in &n.attribute {
            for g in a.g.iter().chain(&a.graphs) {
                outer_names(g, &mut keep_float);
            }
        }
    }
    let mut taken: HashSet<String> = graph.initializer.iter().map(|t| t.name().to_string()).collect();
    taken.extend(graph.input.iter().map(|i| i.name().to_string()));
    taken.extend(graph.node.iter().flat_map(|n| n.output.iter().chain(&n.input).cloned()));
    taken.extend(graph.node.iter().map(|n| n.name().to_string()));
    // The weights are read from `proto`, the copy left as it came.
    let source = proto.graph.as_ref().ok_or(Error::NoGraph)?;
    let mut w = Writer {
        initializers: source.initializer.iter().map(|t| (t.name(), t)).collect(),
        half: HashMap::new(),
        float: HashMap::new(),
        taken,
        nodes: Vec::new(),
        new_initializers: Vec::new(),
    };
    for i in &graph.input {
        w.float.insert(i.name().to_string(), i.name().to_string());
    }
    for t in &graph.initializer {
        w.float.insert(t.name().to_string(), t.name().to_string());
    }
    let mut in_half = 0;
    for mut n in std::mem::take(&mut graph.node) {
        let is_float = |t: &String| !t.is_empty() && types.get(t) == Some(&FLOAT);
        let half = default_domain(&n)
            && HALF.contains(&n.op_type())
            && n.attribute.iter().all(|a| a.g.is_none() && a.graphs.is_empty())
            && n.input.iter().any(|i| is_float(i) && from_image.contains(i));
        for i in n.input.iter_mut() {
            if is_float(i) {
                *i = if half { w.half_of(i)? } else { w.float_of(i) };
            }
        }
        let mut casts_back = Vec::new();
        for o in n.output.iter_mut() {
            if !is_float(o) {
                continue;
            }
            if !half {
                w.float.insert(o.clone(), o.clone());
            } else if keep_float.contains(o.as_str()) {
                let h = w.fresh(&format!("{o}/fp16"));
                casts_back.push(w.cast(&h, o, FLOAT));
                w.half.insert(o.clone(), h.clone());
                w.float.insert(o.clone(), o.clone());
                *o = h;
            } else {
                w.half.insert(o.clone(), o.clone());
            }
        }
        in_half += usize::from(half);
        w.nodes.push(n);
        w.nodes.extend(casts_back);
    }
    if in_half == 0 {
        return Err(Error::NothingInHalf);
    }
    let Writer { nodes, new_initializers, half, .. } = w;
    // Tensors that are float16 now: every half version.
    let halves: HashSet<&str> = half.values().map(String::as_str).collect();
    graph.node = nodes;
    graph.initializer.extend(new_initializers);
    // Float weights that only half nodes read are gone (their half copies stay).
    let read: HashSet<&str> = graph
        .node
        .iter()
        .flat_map(|n| n.input.iter().map(String::as_str))
        .chain(keep_float.iter().map(String::as_str))
        .collect();
    let unread: HashSet<String> =
        graph.initializer.iter().map(|t| t.name().to_string()).filter(|n| !read.contains(n.as_str())).collect();
    graph.initializer.retain(|t| !unread.contains(t.name()));
    graph.input.retain(|i| !unread.contains(i.name()));
    for v in &mut graph.value_info {
        if halves.contains(v.name()) {
            if let Some(type_proto::Value::TensorType(t)) = v.r#type.as_mut().and_then(|t| t.value.as_mut()) {
                t.elem_type = Some(FLOAT16);
            }
        }
    }
    Ok((out, in_half))
}

/// Writes the converted graph: the name each float tensor has in half and
/// in float32, made when a reader first needs it.
struct Writer<'a> {
    initializers: HashMap<&'a str, &'a TensorProto>,
    half: HashMap<String, String>,
    float: HashMap<String, String>,
    taken: HashSet<String>,
    nodes: Vec<NodeProto>,
    new_initializers: Vec<TensorProto>,
}

impl Writer<'_> {
    /// `base`, or `base` with a number, whichever the graph does not use yet.
    fn fresh(&mut self, base: &str) -> String {
        let mut name = base.to_string();
        let mut k = 1;
        while self.taken.contains(&name) {
            name = format!("{base}.{k}");
            k += 1;
        }
        self.taken.insert(name.clone());
        name
    }

    fn cast(&mut self, from: &str, to: &str, elem: i32) -> NodeProto {
        let name = self.fresh(&format!("{to}/Cast"));
        NodeProto {
            input: vec![from.to_string()],
            output: vec![to.to_string()],
            name: Some(name),
            op_type: Some("Cast".into()),
            attribute: vec![attr_int("to", i64::from(elem))],
            ..Default::default()
        }
    }

    /// The tensor's half version: stored in half for a weight, else a Cast
    /// of its float32 one.
    fn half_of(&mut self, t: &str) -> Result<String, Error> {
        if let Some(h) = self.half.get(t) {
            return Ok(h.clone());
        }
        let h = self.fresh(&format!("{t}/fp16"));
        if let Some(&init) = self.initializers.get(t) {
            let values = crate::model::float_values(init).ok_or_else(|| Error::Weight(t.to_string()))?;
            let raw = values.iter().flat_map(|&v| to_half(v).to_le_bytes()).collect();
            self.new_initializers.push(raw_tensor(&h, &init.dims, tensor_proto::DataType::Float16, raw));
        } else {
            let from = self.float.get(t).cloned().unwrap_or_else(|| t.to_string());
            let cast = self.cast(&from, &h, FLOAT16);
            self.nodes.push(cast);
        }
        self.half.insert(t.to_string(), h.clone());
        Ok(h)
    }

    /// The tensor's float32 version: itself, or a Cast of its half one.
    fn float_of(&mut self, t: &str) -> String {
        if let Some(f) = self.float.get(t) {
            return f.clone();
        }
        let Some(h) = self.half.get(t).cloned() else { return t.to_string() };
        let f = self.fresh(&format!("{t}/fp32"));
        let cast = self.cast(&h, &f, FLOAT);
        self.nodes.push(cast);
        self.float.insert(t.to_string(), f.clone());
        f
    }
}

/// Every tensor's element type, where the graph's inputs, constants and
/// operators' type rules give it (ONNX graphs list nodes in order).
fn elem_types(graph: &GraphProto) -> HashMap<String, i32> {
    let mut types: HashMap<String, i32> = HashMap::new();
    for i in graph.input.iter().chain(&graph.value_info).chain(&graph.output) {
        if let Some(type_proto::Value::TensorType(t)) = i.r#type.as_ref().and_then(|t| t.value.as_ref()) {
            if let Some(e) = t.elem_type {
                types.insert(i.name().to_string(), e);
            }
        }
    }
    for t in &graph.initializer {
        types.insert(t.name().to_string(), t.data_type());
    }
    for n in &graph.node {
        let input = |k: usize| n.input.get(k).and_then(|i| types.get(i)).copied();
        let first_known = n.input.iter().find_map(|i| types.get(i)).copied();
        let attr = |name: &str| n.attribute.iter().find(|a| a.name() == name);
        let value_type = || {
            attr("value").map(|a| match a.r#type() {
                attribute_proto::AttributeType::Tensor => a.t.as_ref().map_or(FLOAT, |t| t.data_type()),
                _ => FLOAT,
            })
        };
        let domain_default = default_domain(n);
        let mut found = Vec::new();
        for (k, o) in n.output.iter().enumerate() {
            let t = match (domain_default, n.op_type()) {
                (false, _) => first_known,
                (_, "Cast") => attr("to").map(|a| a.i() as i32),
                (_, "CastLike") => input(1),
                (_, "Shape" | "Size" | "NonZero" | "ArgMax" | "ArgMin" | "NonMaxSuppression") => Some(INT64),
                (
                    _,
                    "Equal" | "Less" | "Greater" | "LessOrEqual" | "GreaterOrEqual" | "Not" | "And" | "Or" | "Xor"
                    | "IsNaN" | "IsInf",
                ) => Some(BOOL),
                (_, "Constant") => value_type().or_else(|| {
                    n.attribute.first().map(|a| match a.name() {
                        "value_int" | "value_ints" => INT64,
                        _ => FLOAT,
                    })
                }),
                (_, "ConstantOfShape") => Some(value_type().unwrap_or(FLOAT)),
                (_, "Where") => input(1),
                (_, "DequantizeLinear") => input(1),
                (_, "QuantizeLinear") => input(2).or(Some(tensor_proto::DataType::Uint8 as i32)),
                (_, "MaxPool" | "TopK" | "Unique") if k > 0 => Some(INT64),
                _ => input(0).or(first_known),
            };
            if let Some(t) = t {
                found.push((o.clone(), t));
            }
        }
        for (o, t) in found {
            types.entry(o).or_insert(t);
        }
    }
    types
}

/// ONNX's own operator set (the empty domain or its name).
fn default_domain(n: &NodeProto) -> bool {
    n.domain().is_empty() || n.domain() == "ai.onnx"
}

/// Tensors whose values come from the image (the graph's inputs that are
/// not weights): a Shape or a Size of one gives only its shape.
fn value_dependent(graph: &GraphProto) -> HashSet<String> {
    let inits: HashSet<&str> = graph.initializer.iter().map(|t| t.name()).collect();
    let mut from: HashSet<String> =
        graph.input.iter().map(|i| i.name()).filter(|n| !inits.contains(n)).map(str::to_string).collect();
    for n in &graph.node {
        if matches!(n.op_type(), "Shape" | "Size") {
            continue;
        }
        if n.input.iter().any(|i| from.contains(i)) || n.attribute.iter().any(|a| a.g.is_some() || !a.graphs.is_empty())
        {
            from.extend(n.output.iter().cloned());
        }
    }
    from
}

/// Names a subgraph reads that it does not define: the enclosing graph's tensors.
fn outer_names(g: &GraphProto, names: &mut HashSet<String>) {
    let mut defined: HashSet<&str> = g.input.iter().map(|i| i.name()).collect();
    defined.extend(g.initializer.iter().map(|t| t.name()));
    for n in &g.node {
        for i in &n.input {
            if !i.is_empty() && !defined.contains(i.as_str()) {
                names.insert(i.clone());
            }
        }
        for a in &n.attribute {
            for sub in a.g.iter().chain(&a.graphs) {
                outer_names(sub, names);
            }
        }
        defined.extend(n.output.iter().map(String::as_str));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::builder::{test_model as model, Graph};

    fn op<'a>(g: &'a GraphProto, output: &str) -> &'a NodeProto {
        g.node
            .iter()
            .find(|n| n.output.iter().any(|o| o == output))
            .unwrap_or_else(|| panic!("no node writes {output}"))
    }

    #[test]
    fn the_edges_stay_float32_and_weights_are_stored_in_half() {
        let mut g = Graph::default();
        let w = g.floats("w".into(), &[2, 3, 1, 1], &[1.0, -2.0, 0.5, 1e-9, 70000.0, -0.25]);
        let c = g.node("Conv", &["x", &w], "c".into(), "conv".into(), vec![]);
        g.node("Relu", &[&c], "y".into(), "relu".into(), vec![]);
        let (m, in_half) = convert(&model(g, &["c", "y"])).unwrap();
        assert_eq!(in_half, 2);
        let g = m.graph.unwrap();
        // The input is cast once; the Conv reads the cast and the half weight.
        let conv = op(&g, "c/fp16");
        assert_eq!(conv.input, ["x/fp16", "w/fp16"]);
        assert_eq!(op(&g, "x/fp16").op_type(), "Cast");
        // Both outputs keep their names, in float32: cast back from half.
        for (out, from) in [("c", "c/fp16"), ("y", "y/fp16")] {
            let n = op(&g, out);
            assert_eq!((n.op_type(), n.input[0].as_str(), n.attribute[0].i()), ("Cast", from, i64::from(FLOAT)));
        }
        // The Relu reads the Conv's half output, not the cast back.
        assert_eq!(op(&g, "y/fp16").input, ["c/fp16"]);
        let w16 = g.initializer.iter().find(|t| t.name() == "w/fp16").unwrap();
        assert_eq!(w16.data_type(), FLOAT16);
        let values: Vec<f32> =
            w16.raw_data().chunks_exact(2).map(|b| f16::from_le_bytes([b[0], b[1]]).to_f32()).collect();
        // Clamped as ONNX Runtime's converter clamps: no zero, no infinity.
        assert_eq!(values, [1.0, -2.0, 0.5, f16::from_f32(MIN_POSITIVE).to_f32(), 65504.0, -0.25]);
        assert!(g.initializer.iter().all(|t| t.name() != "w"), "the float32 weight nobody reads is gone");
    }

    #[test]
    fn an_operator_outside_the_list_keeps_float32_between_casts() {
        let mut g = Graph::default();
        let r = g.node("Relu", &["x"], "r".into(), "relu".into(), vec![]);
        let e = g.node("Einsum", &[&r], "e".into(), "einsum".into(), vec![]);
        g.node("Relu", &[&e], "y".into(), "relu2".into(), vec![]);
        let (m, in_half) = convert(&model(g, &["y"])).unwrap();
        assert_eq!(in_half, 2);
        let g = m.graph.unwrap();
        let einsum = op(&g, "e");
        assert_eq!(einsum.input, ["r/fp32"]);
        assert_eq!(op(&g, "r/fp32").input, ["r"]);
        assert_eq!(op(&g, "y/fp16").input, ["e/fp16"]);
        assert_eq!(op(&g, "e/fp16").op_type(), "Cast");
    }

    #[test]
    fn arithmetic_on_shapes_keeps_float32() {
        // size = float(shape(x)) * 2: integers past 2048 would round in half.
        let mut g = Graph::default();
        let s = g.node("Shape", &["x"], "s".into(), "shape".into(), vec![]);
        let f = g.node("Cast", &[&s], "f".into(), "cast".into(), vec![attr_int("to", i64::from(FLOAT))]);
        let two = g.floats("two".into(), &[1], &[2.0]);
        g.node("Mul", &[&f, &two], "size".into(), "mul".into(), vec![]);
        g.node("Relu", &["x"], "y".into(), "relu".into(), vec![]);
        let (m, _) = convert(&model(g, &["y", "size"])).unwrap();
        let g = m.graph.unwrap();
        assert_eq!(op(&g, "size").input, ["f", "two"]);
        assert_eq!(op(&g, "size").op_type(), "Mul");
    }

    #[test]
    fn a_model_with_nothing_to_compute_in_half_is_refused() {
        let mut g = Graph::default();
        g.node("Einsum", &["x"], "y".into(), "einsum".into(), vec![]);
        assert!(matches!(convert(&model(g, &["y"])), Err(Error::NothingInHalf)));
    }
}
