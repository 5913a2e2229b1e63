//! The one ONNX graph builder: nodes, constants and attributes, written
//! the same way for a converted checkpoint (`resnet`) and for the head
//! `classify export` appends to a backbone.

use crate::onnx::{
    attribute_proto, tensor_proto, tensor_shape_proto, type_proto, AttributeProto, NodeProto, TensorProto,
    TensorShapeProto, TypeProto, ValueInfoProto,
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

/// The graph as a model for unit tests: float32 input `x`, float32
/// `outputs`, shapes left to the reader, opset 17.
#[cfg(test)]
pub(crate) fn test_model(g: Graph, outputs: &[&str]) -> crate::onnx::ModelProto {
    use crate::onnx::{GraphProto, ModelProto, OperatorSetIdProto};
    let value = |name: &str| ValueInfoProto {
        name: Some(name.into()),
        r#type: Some(TypeProto {
            value: Some(type_proto::Value::TensorType(type_proto::Tensor {
                elem_type: Some(tensor_proto::DataType::Float as i32),
                shape: None,
            })),
            ..Default::default()
        }),
        ..Default::default()
    };
    ModelProto {
        opset_import: vec![OperatorSetIdProto { domain: Some(String::new()), version: Some(17) }],
        graph: Some(GraphProto {
            node: g.nodes,
            initializer: g.inits,
            input: vec![value("x")],
            output: outputs.iter().map(|o| value(o)).collect(),
            ..Default::default()
        }),
        ..Default::default()
    }
}
