//! The one ONNX graph builder: nodes, constants and attributes, written
//! the same way for a converted checkpoint (`resnet`) and for the head
//! `classify export` appends to a backbone, and the opset a model imports
//! (raised where no operator it uses changed meaning).

use crate::onnx::{
    attribute_proto, tensor_proto, tensor_shape_proto, type_proto, AttributeProto, ModelProto, NodeProto,
    OperatorSetIdProto, TensorProto, TensorShapeProto, TypeProto, ValueInfoProto,
};

/// Nodes and constants, in the order they were added.
#[derive(Debug, Default)]
pub struct Graph {
    pub nodes: Vec<NodeProto>,
    pub inits: Vec<TensorProto>,
}

impl Graph {
    /// Adds a node with one output and returns the output's name.
    pub fn node(
        &mut self,
        op: &str,
        inputs: &[&str],
        output: String,
        name: String,
        attrs: Vec<AttributeProto>,
    ) -> String {
        self.nodes.push(NodeProto {
            input: inputs.iter().map(|s| s.to_string()).collect(),
            output: vec![output.clone()],
            name: Some(name),
            op_type: Some(op.into()),
            attribute: attrs,
            ..Default::default()
        });
        output
    }

    /// A float32 constant, stored as little-endian raw data.
    pub fn floats(&mut self, name: String, dims: &[usize], values: &[f32]) -> String {
        assert_eq!(dims.iter().product::<usize>(), values.len(), "{name}: dims and values agree");
        self.inits.push(TensorProto {
            name: Some(name.clone()),
            dims: dims.iter().map(|&d| d as i64).collect(),
            data_type: Some(tensor_proto::DataType::Float as i32),
            raw_data: Some(values.iter().flat_map(|v| v.to_le_bytes()).collect()),
            ..Default::default()
        });
        name
    }

    /// An int64 vector constant.
    pub fn ints(&mut self, name: String, values: &[i64]) -> String {
        self.inits.push(TensorProto {
            name: Some(name.clone()),
            dims: vec![values.len() as i64],
            data_type: Some(tensor_proto::DataType::Int64 as i32),
            int64_data: values.to_vec(),
            ..Default::default()
        });
        name
    }
}

/// A constant of any type from its little-endian bytes.
pub fn raw_tensor(name: &str, dims: &[i64], data_type: tensor_proto::DataType, raw: Vec<u8>) -> TensorProto {
    TensorProto {
        name: Some(name.to_string()),
        dims: dims.to_vec(),
        data_type: Some(data_type as i32),
        raw_data: Some(raw),
        ..Default::default()
    }
}

pub fn attr_int(name: &str, v: i64) -> AttributeProto {
    AttributeProto {
        name: Some(name.into()),
        r#type: Some(attribute_proto::AttributeType::Int as i32),
        i: Some(v),
        ..Default::default()
    }
}

pub fn attr_ints(name: &str, v: &[i64]) -> AttributeProto {
    AttributeProto {
        name: Some(name.into()),
        r#type: Some(attribute_proto::AttributeType::Ints as i32),
        ints: v.to_vec(),
        ..Default::default()
    }
}

pub fn attr_float(name: &str, v: f32) -> AttributeProto {
    AttributeProto {
        name: Some(name.into()),
        r#type: Some(attribute_proto::AttributeType::Float as i32),
        f: Some(v),
        ..Default::default()
    }
}

pub fn attr_string(name: &str, v: &str) -> AttributeProto {
    AttributeProto {
        name: Some(name.into()),
        r#type: Some(attribute_proto::AttributeType::String as i32),
        s: Some(v.as_bytes().to_vec()),
        ..Default::default()
    }
}

/// A dimension of a graph input or output.
#[derive(Debug, Clone)]
pub enum Dim {
    Fixed(i64),
    Named(String),
}

impl From<Dim> for tensor_shape_proto::dimension::Value {
    fn from(d: Dim) -> Self {
        match d {
            Dim::Fixed(v) => tensor_shape_proto::dimension::Value::DimValue(v),
            Dim::Named(s) => tensor_shape_proto::dimension::Value::DimParam(s),
        }
    }
}

/// A graph input's or output's declaration: a tensor of `elem` and `dims`.
pub fn tensor_info(name: &str, elem: tensor_proto::DataType, dims: Vec<Dim>) -> ValueInfoProto {
    let dim = dims
        .into_iter()
        .map(|d| tensor_shape_proto::Dimension { value: Some(d.into()), ..Default::default() })
        .collect();
    ValueInfoProto {
        name: Some(name.to_string()),
        r#type: Some(TypeProto {
            value: Some(type_proto::Value::TensorType(type_proto::Tensor {
                elem_type: Some(elem as i32),
                shape: Some(TensorShapeProto { dim }),
            })),
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// The version of the default (`ai.onnx`) domain a model imports; 1 when
/// it names none, as ONNX reads it.
pub fn opset(proto: &ModelProto) -> i64 {
    proto.opset_import.iter().find(|o| is_default_domain(o)).map_or(1, |o| o.version())
}

fn is_default_domain(o: &OperatorSetIdProto) -> bool {
    o.domain().is_empty() || o.domain() == "ai.onnx"
}

/// Operators whose meaning is the same from opset 7 to 13: a model made
/// of these alone may be raised to any opset up to 13 as it is.
/// Operators whose meaning has not changed up to opset 18 (later versions
/// only added types, or attributes whose defaults keep the old meaning:
/// BatchNormalization's training_mode, Reshape's allowzero, Shape's
/// start and end).
const SAME_UP_TO_18: [&str; 24] = [
    "Conv",
    "Relu",
    "MaxPool",
    "AveragePool",
    "GlobalAveragePool",
    "GlobalMaxPool",
    "Add",
    "Sum",
    "Sub",
    "Mul",
    "Div",
    "BatchNormalization",
    "Flatten",
    "Gemm",
    "MatMul",
    "Concat",
    "Identity",
    "Reshape",
    "Shape",
    "Gather",
    "Constant",
    "ConstantOfShape",
    "Transpose",
    "Softmax",
];

/// A model that cannot be raised: an operator it uses means something
/// else at the opset asked for.
#[derive(Debug, thiserror::Error)]
#[error("opset {from} and uses {op}, which changed by opset {to}")]
pub struct OpsetChanged {
    pub from: i64,
    pub to: i64,
    pub op: String,
}

/// Raises the default domain's opset to `to` (at most 18) when it is
/// below, if every operator of the graph means the same there; a model
/// already at `to` or later is left as it is.
pub fn raise_opset(proto: &mut ModelProto, to: i64) -> Result<(), OpsetChanged> {
    assert!(to <= 18, "SAME_UP_TO_18 vouches for opsets up to 18 only");
    let from = opset(proto);
    if from >= to {
        return Ok(());
    }
    let graph = proto.graph.as_ref().expect("a parsed model has a graph");
    if let Some(n) = graph.node.iter().find(|n| !SAME_UP_TO_18.contains(&n.op_type())) {
        return Err(OpsetChanged { from, to, op: n.op_type().to_string() });
    }
    proto.opset_import.retain(|o| !is_default_domain(o));
    proto.opset_import.push(OperatorSetIdProto { domain: Some(String::new()), version: Some(to) });
    Ok(())
}

/// The graph as a model for unit tests: float32 input `x`, float32
/// `outputs` (both as `model::float_outputs` declares a float tensor),
/// shapes left to the reader, opset 17.
#[cfg(test)]
pub(crate) fn test_model(g: Graph, outputs: &[&str]) -> crate::onnx::ModelProto {
    use crate::model::float_outputs;
    use crate::onnx::{GraphProto, ModelProto, OperatorSetIdProto};
    ModelProto {
        opset_import: vec![OperatorSetIdProto { domain: Some(String::new()), version: Some(17) }],
        graph: Some(GraphProto {
            node: g.nodes,
            initializer: g.inits,
            input: float_outputs(&["x"]),
            output: float_outputs(outputs),
            ..Default::default()
        }),
        ..Default::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at_opset(op: &str, version: i64) -> ModelProto {
        let mut g = Graph::default();
        g.node(op, &["x"], "y".into(), "n".into(), vec![]);
        let mut m = test_model(g, &["y"]);
        m.opset_import = vec![
            OperatorSetIdProto { domain: Some("ai.onnx".into()), version: Some(version) },
            OperatorSetIdProto { domain: Some("com.microsoft".into()), version: Some(1) },
        ];
        m
    }

    #[test]
    fn a_model_of_unchanged_operators_is_raised_and_its_other_domains_kept() {
        let mut m = at_opset("Relu", 11);
        raise_opset(&mut m, 13).unwrap();
        assert_eq!(opset(&m), 13);
        let domains: Vec<(&str, i64)> = m.opset_import.iter().map(|o| (o.domain(), o.version())).collect();
        assert_eq!(domains, [("com.microsoft", 1), ("", 13)], "one default-domain import, the other kept");
    }

    #[test]
    fn an_operator_that_changed_is_named_and_the_model_left_as_it_was() {
        let mut m = at_opset("Dropout", 11);
        let e = raise_opset(&mut m, 13).unwrap_err();
        assert_eq!(e.to_string(), "opset 11 and uses Dropout, which changed by opset 13");
        assert_eq!(opset(&m), 11);
    }

    #[test]
    fn a_model_at_the_opset_or_later_is_left_alone() {
        let mut m = at_opset("Dropout", 17);
        raise_opset(&mut m, 13).unwrap();
        assert_eq!(opset(&m), 17);
        assert_eq!(opset(&ModelProto::default()), 1, "no import reads as opset 1");
    }
}
