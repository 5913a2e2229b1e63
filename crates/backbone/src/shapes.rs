//! Static shape inference, for the operators where the answer is certain.
//! Anything else is left unknown, never guessed: the caller that needs a
//! shape measures it with one run of the model (`Model::shapes_needed`).

use std::collections::HashMap;
use std::fmt;

use crate::onnx::{
    tensor_proto, tensor_shape_proto, type_proto, AttributeProto, GraphProto, NodeProto, TensorProto, TensorShapeProto,
    ValueInfoProto,
};

/// A tensor shape; `None` where a dimension is symbolic (the batch) or unknown.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Shape(pub Vec<Option<i64>>);

impl Shape {
    pub fn known(dims: &[i64]) -> Self {
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

pub(crate) fn value_info_shape(v: &ValueInfoProto) -> Option<Shape> {
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

pub(crate) fn attr<'a>(node: &'a NodeProto, name: &str) -> Option<&'a AttributeProto> {
    node.attribute.iter().find(|a| a.name() == name)
}

pub(crate) fn attr_ints(node: &NodeProto, name: &str) -> Option<Vec<i64>> {
    attr(node, name).map(|a| a.ints.clone())
}

pub(crate) fn attr_int(node: &NodeProto, name: &str) -> Option<i64> {
    attr(node, name).and_then(|a| a.i)
}

pub(crate) fn tensor_ints(t: &TensorProto) -> Option<Vec<i64>> {
    if t.data_type() != tensor_proto::DataType::Int64 as i32 {
        return None;
    }
    if !t.int64_data.is_empty() {
        return Some(t.int64_data.clone());
    }
    let raw = t.raw_data.as_ref()?;
    Some(raw.chunks_exact(8).map(|c| i64::from_le_bytes(c.try_into().expect("8 bytes"))).collect())
}

/// The int64 constants of a graph (initializers and `Constant` nodes), by name.
pub(crate) fn int_constants(graph: &GraphProto) -> HashMap<String, Vec<i64>> {
    let mut consts: HashMap<String, Vec<i64>> = HashMap::new();
    for t in &graph.initializer {
        if let Some(v) = tensor_ints(t) {
            consts.insert(t.name().to_string(), v);
        }
    }
    for node in graph.node.iter().filter(|n| n.op_type() == "Constant") {
        if let (Some(t), Some(out)) = (attr(node, "value").and_then(|a| a.t.as_ref()), node.output.first()) {
            if let Some(v) = tensor_ints(t) {
                consts.insert(out.clone(), v);
            }
        }
    }
    consts
}

/// Shapes of the graph's tensors, where certain. Shapes the graph itself
/// records (`value_info`) fill in where an operator is not covered.
/// `consts` are the graph's integer constants ([`int_constants`]).
pub fn infer(
    graph: &GraphProto,
    input: &str,
    input_shape: &Shape,
    consts: &HashMap<String, Vec<i64>>,
) -> HashMap<String, Shape> {
    let mut shapes: HashMap<String, Shape> = HashMap::new();
    for t in &graph.initializer {
        shapes.insert(t.name().to_string(), Shape::known(&t.dims));
    }
    let recorded: HashMap<&str, Shape> =
        graph.value_info.iter().chain(&graph.output).filter_map(|v| Some((v.name(), value_info_shape(v)?))).collect();
    shapes.insert(input.to_string(), input_shape.clone());
    for node in &graph.node {
        let ins: Vec<Option<Shape>> = node.input.iter().map(|n| shapes.get(n).cloned()).collect();
        let constant = |i: usize| node.input.get(i).and_then(|n| consts.get(n)).cloned();
        let out = if node.op_type() == "Constant" {
            attr(node, "value").and_then(|a| a.t.as_ref()).map(|t| Shape::known(&t.dims))
        } else {
            infer_node(node, &ins, constant)
        };
        if let Some(name) = node.output.first() {
            if let Some(s) = out.or_else(|| recorded.get(name.as_str()).cloned()) {
                shapes.insert(name.clone(), s);
            }
        }
    }
    shapes
}

/// numpy's broadcasting of known shapes; a dimension that cannot be
/// decided (unknown against anything but a 1) stays unknown.
fn broadcast(shapes: &[Shape]) -> Option<Shape> {
    let rank = shapes.iter().map(|s| s.0.len()).max()?;
    let mut out = vec![Some(1i64); rank];
    for s in shapes {
        let pad = rank - s.0.len();
        for (i, d) in s.0.iter().enumerate() {
            let o = &mut out[pad + i];
            *o = match (*o, *d) {
                (Some(1), d) => d,
                (o, Some(1)) => o,
                (Some(a), Some(b)) if a == b => Some(a),
                (Some(_), Some(_)) => return None, // not broadcastable: not ours to say
                // An unknown one is 1 or the other: the other wins.
                (None, Some(b)) | (Some(b), None) => Some(b),
                (None, None) => None,
            };
        }
    }
    Some(Shape(out))
}

fn infer_node(node: &NodeProto, ins: &[Option<Shape>], constant: impl Fn(usize) -> Option<Vec<i64>>) -> Option<Shape> {
    if node.op_type() == "ConstantOfShape" {
        return constant(0).map(|dims| Shape::known(&dims));
    }
    let x = ins.first()?.clone()?;
    let d = &x.0;
    let w = ins.get(1).cloned().flatten();
    let w_rank = w.as_ref().map_or(0, |w| w.0.len());
    // What each operator below indexes: a malformed file must not make it panic.
    let ranks_ok = match node.op_type() {
        "Conv" => d.len() >= 3 && w_rank == d.len(),
        "MaxPool" | "AveragePool" | "GlobalAveragePool" | "GlobalMaxPool" => d.len() >= 2,
        "Flatten" | "ReduceMean" | "ReduceMax" | "Squeeze" => !d.is_empty(),
        "Gemm" => d.len() == 2 && w_rank == 2,
        "MatMul" => d.len() >= 2 && w_rank >= 2,
        _ => true,
    };
    if !ranks_ok {
        return None;
    }
    match node.op_type() {
        "Relu"
        | "BatchNormalization"
        | "Clip"
        | "Identity"
        | "Dropout"
        | "Sigmoid"
        | "HardSigmoid"
        | "LeakyRelu"
        | "HardSwish"
        | "Tanh"
        | "Elu"
        | "Selu"
        | "Softplus"
        | "Erf"
        | "Neg"
        | "Abs"
        | "Sqrt"
        | "Exp"
        | "Softmax"
        | "LRN"
        | "InstanceNormalization" => Some(x),
        "Add" | "Sum" | "Mul" | "Div" | "Sub" | "Max" | "Min" | "Pow" => {
            let all: Option<Vec<Shape>> = ins.iter().cloned().collect();
            broadcast(&all?)
        }
        "Conv" => {
            let w = w?.0;
            let k: Vec<i64> = match attr_ints(node, "kernel_shape") {
                Some(k) if k.len() + 2 == d.len() => k,
                _ => w[2..].iter().copied().collect::<Option<Vec<i64>>>()?,
            };
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
    let sized =
        |v: Option<Vec<i64>>, len: usize, fill: i64| v.filter(|v| v.len() == len).unwrap_or_else(|| vec![fill; len]);
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

#[cfg(test)]
mod tests {
    use super::*;

    fn s(d: &[i64]) -> Shape {
        Shape(d.iter().map(|&v| if v < 0 { None } else { Some(v) }).collect())
    }

    #[test]
    fn broadcasting_follows_numpy() {
        // squeeze-excite: a map times its per-channel gate
        assert_eq!(broadcast(&[s(&[-1, 32, 14, 14]), s(&[-1, 32, 1, 1])]), Some(s(&[-1, 32, 14, 14])));
        assert_eq!(broadcast(&[s(&[-1, 32, 1, 1]), s(&[-1, 32, 14, 14])]), Some(s(&[-1, 32, 14, 14])));
        assert_eq!(broadcast(&[s(&[4, 1]), s(&[3])]), Some(s(&[4, 3])));
        assert_eq!(broadcast(&[s(&[4, 2]), s(&[3])]), None);
        // an unknown dimension against a 7 is 1 or 7: the result is 7
        assert_eq!(broadcast(&[s(&[-1, 7]), s(&[-1, -1])]), Some(s(&[-1, 7])));
    }
}
