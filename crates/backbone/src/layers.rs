//! Finds ResNet's named layers in any ONNX export from the graph's structure,
//! never from one exporter's node names.
//!
//! A residual join is an `Add` or `Sum` of two tensors computed from the
//! image (Caffe2 exports join with `Sum`); the block's output is the `Relu`
//! that is the join's only consumer, else the join itself (pre-activation
//! ResNet v2). Block outputs are grouped into stages by shape
//! (`layer1`..`layer4`), `stem` is the tensor the first block starts from.
//! `avgpool` is the global average pooling the classifier head takes
//! (Gemm, MatMul or a 1x1 Conv), else, on a model without a head, the last
//! global average pooling; raw tensor names work on any model at all.
//!
//! Shapes come from the caller: where one is not known the tensor is
//! listed in [`Found::missing`], and discovery is run again once the caller
//! has measured it.

use std::cell::RefCell;
use std::collections::{BTreeSet, HashMap, HashSet};

use crate::onnx::{GraphProto, NodeProto};
use crate::shapes::{attr_int, attr_ints, Shape};

/// The layer names `--layer` accepts besides raw tensor names, in network order.
pub const NAMED: [&str; 6] = ["stem", "layer1", "layer2", "layer3", "layer4", "avgpool"];

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Layer {
    /// `stem`, `layer1`, ..., `avgpool`, or the raw tensor name.
    pub name: String,
    pub tensor: String,
    pub shape: Option<Shape>,
}

/// What discovery found.
#[derive(Debug, Default)]
pub(crate) struct Found {
    pub blocks: Vec<String>,
    pub layers: Vec<Layer>,
    pub avgpool_rule: Option<String>,
    /// Tensors whose shapes were needed and not known, sorted.
    pub missing: Vec<String>,
}

pub(crate) fn discover(
    graph: &GraphProto,
    input: &str,
    shapes: &HashMap<String, Shape>,
    consts: &HashMap<String, Vec<i64>>,
) -> Found {
    let missing = RefCell::new(BTreeSet::new());
    let shape_of = |t: &str| -> Option<Shape> {
        let s = shapes.get(t).filter(|s| s.sample_dims().is_some()).cloned();
        if s.is_none() {
            missing.borrow_mut().insert(t.to_string());
        }
        s
    };
    let g = Graph::new(graph, input, consts);
    let blocks = g.blocks();
    let mut layers = Vec::new();
    if let Some((first_join, _)) = blocks.first() {
        let stem = g.block_start(first_join);
        layers.push(Layer { name: "stem".into(), shape: shape_of(&stem), tensor: stem });
        // Consecutive blocks of one output shape form a stage; its last block is the stage output.
        let dims: Vec<Option<Vec<i64>>> =
            blocks.iter().map(|(_, o)| shape_of(o).and_then(|s| s.sample_dims())).collect();
        let mut stage = 0;
        for (i, (_, out)) in blocks.iter().enumerate() {
            if dims.get(i + 1) != Some(&dims[i]) {
                stage += 1;
                layers.push(Layer { name: format!("layer{stage}"), tensor: out.to_string(), shape: shape_of(out) });
            }
        }
    }
    let mut avgpool_rule = None;
    if let Some((tensor, rule)) = g.avgpool(&shape_of) {
        layers.push(Layer { name: "avgpool".into(), shape: shape_of(&tensor), tensor });
        avgpool_rule = Some(rule);
    }
    Found {
        blocks: blocks.iter().map(|(_, o)| o.to_string()).collect(),
        layers,
        avgpool_rule,
        missing: missing.into_inner().into_iter().collect(),
    }
}

/// The graph with the indexes discovery walks.
struct Graph<'g> {
    graph: &'g GraphProto,
    input: &'g str,
    inits: HashSet<&'g str>,
    consumers: HashMap<&'g str, Vec<&'g NodeProto>>,
    producer: HashMap<&'g str, (usize, &'g NodeProto)>,
    /// Tensors computed from the image: a join of two of them is residual,
    /// where an Add of a computed tensor and a constant (a bias; a weight
    /// that Caffe2 builds with ConstantOfShape) is not.
    from_image: HashSet<&'g str>,
    consts: &'g HashMap<String, Vec<i64>>,
}

/// Operators that only reshape a pooled map into a vector.
const RESHAPES: [&str; 5] = ["Flatten", "Reshape", "Squeeze", "Identity", "Dropout"];

impl<'g> Graph<'g> {
    fn new(graph: &'g GraphProto, input: &'g str, consts: &'g HashMap<String, Vec<i64>>) -> Self {
        let mut consumers: HashMap<&str, Vec<&NodeProto>> = HashMap::new();
        for node in &graph.node {
            for i in &node.input {
                consumers.entry(i.as_str()).or_default().push(node);
            }
        }
        let producer = graph
            .node
            .iter()
            .enumerate()
            .flat_map(|(i, n)| n.output.iter().map(move |o| (o.as_str(), (i, n))))
            .collect();
        let mut from_image: HashSet<&str> = HashSet::from([input]);
        for node in &graph.node {
            if node.input.iter().any(|i| from_image.contains(i.as_str())) {
                from_image.extend(node.output.iter().map(String::as_str));
            }
        }
        let inits = graph.initializer.iter().map(|t| t.name()).collect();
        Graph { graph, input, inits, consumers, producer, from_image, consts }
    }

    fn computed(&self, t: &str) -> bool {
        self.from_image.contains(t) && !self.inits.contains(t)
    }

    /// (join node, block output) of every residual block, in graph order.
    fn blocks(&self) -> Vec<(&'g NodeProto, &'g str)> {
        let mut blocks = Vec::new();
        for node in self.graph.node.iter().filter(|n| matches!(n.op_type(), "Add" | "Sum")) {
            let computed = node.input.iter().filter(|i| self.computed(i));
            if node.input.len() != 2 || computed.count() != 2 {
                continue;
            }
            let join = node.output[0].as_str();
            let out = match self.consumers.get(join).map(|v| v.as_slice()) {
                Some([relu]) if relu.op_type() == "Relu" => relu.output[0].as_str(),
                _ => join, // pre-activation (v2): the join is the block's output
            };
            blocks.push((node, out));
        }
        // A join that is not on the image's path between two others (a
        // squeeze-excite gate added to a bias, say) still counts: only
        // joins of two computed tensors are here at all.
        blocks
    }

    /// The tensor a block's two branches both start from: the nearest
    /// common ancestor of the join's inputs (the stem's output for the
    /// first block).
    fn block_start(&self, join: &NodeProto) -> String {
        let a = self.ancestors(&join.input[0]);
        let b = self.ancestors(&join.input[1]);
        a.intersection(&b)
            .max_by_key(|t| self.producer.get(t.as_str()).map_or(-1, |(i, _)| *i as i64))
            .cloned()
            .unwrap_or_else(|| self.input.to_string())
    }

    fn ancestors(&self, start: &str) -> HashSet<String> {
        let mut seen = HashSet::new();
        let mut stack = vec![start.to_string()];
        while let Some(t) = stack.pop() {
            if self.inits.contains(t.as_str()) || !seen.insert(t.clone()) {
                continue;
            }
            if let Some((_, n)) = self.producer.get(t.as_str()) {
                stack.extend(n.input.iter().cloned());
            }
        }
        seen
    }

    fn descendants(&self, start: &str) -> HashSet<&'g str> {
        let mut seen = HashSet::new();
        let mut stack: Vec<&str> = vec![start];
        while let Some(t) = stack.pop() {
            for n in self.consumers.get(t).into_iter().flatten() {
                for o in &n.output {
                    if seen.insert(o.as_str()) {
                        stack.push(o.as_str());
                    }
                }
            }
        }
        seen
    }

    /// Whether `node` averages its input over every spatial position.
    fn global_average(&self, node: &NodeProto, shape_of: &impl Fn(&str) -> Option<Shape>) -> bool {
        let x = node.input.first().map(String::as_str).unwrap_or_default();
        match node.op_type() {
            "GlobalAveragePool" => true,
            "ReduceMean" => {
                let Some(axes) =
                    attr_ints(node, "axes").or_else(|| node.input.get(1).and_then(|a| self.consts.get(a)).cloned())
                else {
                    return false;
                };
                let rank = shape_of(x).map_or(4, |s| s.0.len() as i64);
                let mut axes: Vec<i64> = axes.iter().map(|a| a.rem_euclid(rank.max(1))).collect();
                axes.sort();
                rank > 2 && axes == (2..rank).collect::<Vec<_>>()
            }
            "AveragePool" => {
                let (Some(k), Some(s)) = (attr_ints(node, "kernel_shape"), shape_of(x)) else { return false };
                let pads = attr_ints(node, "pads").unwrap_or_default();
                s.0.len() == k.len() + 2
                    && pads.iter().all(|&p| p == 0)
                    && s.0[2..].iter().zip(&k).all(|(d, k)| *d == Some(*k))
            }
            _ => false,
        }
    }

    /// A pooled tensor whose result never meets the map it was pooled from
    /// again: a squeeze-excite gate multiplies its map, a head does not.
    fn terminal(&self, pooled: &str) -> bool {
        let below = self.descendants(pooled);
        let inside = |t: &str| t == pooled || below.contains(t);
        let terminal = std::iter::once(pooled).chain(below.iter().copied()).all(|t| {
            self.consumers.get(t).into_iter().flatten().all(|n| n.input.iter().all(|i| inside(i) || !self.computed(i)))
        });
        terminal
    }

    /// The classifier head a pooled map feeds, through reshapes: a Gemm,
    /// a MatMul or a 1x1 Conv, named.
    fn head(&self, pooled: &str) -> Option<&'static str> {
        let mut t = pooled;
        for _ in 0..8 {
            let [n] = self.consumers.get(t)?.as_slice() else { return None };
            match n.op_type() {
                op if RESHAPES.contains(&op) => t = n.output.first()?.as_str(),
                "Gemm" => return Some("Gemm"),
                "MatMul" => return Some("MatMul"),
                "Conv" => {
                    let w = n.input.get(1).and_then(|w| self.graph.initializer.iter().find(|i| i.name() == w));
                    let k =
                        attr_ints(n, "kernel_shape").or_else(|| w.map(|w| w.dims.iter().skip(2).copied().collect()));
                    return k.filter(|k| !k.is_empty() && k.iter().all(|&k| k == 1)).map(|_| "1x1 Conv");
                }
                _ => return None,
            }
        }
        None
    }

    /// `avgpool`: the pooled vector and the rule that found it.
    fn avgpool(&self, shape_of: &impl Fn(&str) -> Option<Shape>) -> Option<(String, String)> {
        let pools: Vec<&NodeProto> = self
            .graph
            .node
            .iter()
            .filter(|n| matches!(n.op_type(), "GlobalAveragePool" | "ReduceMean" | "AveragePool"))
            .filter(|n| n.input.first().is_some_and(|x| self.computed(x)) && !n.output.is_empty())
            .filter(|n| self.global_average(n, shape_of))
            .filter(|n| self.terminal(&n.output[0]))
            .collect();
        let (pool, rule) = match pools.iter().rev().find_map(|p| self.head(&p.output[0]).map(|h| (p, h))) {
            Some((p, head)) => (p, format!("the {} the {head} head takes", p.op_type())),
            None => {
                let p = pools.last()?;
                (p, format!("the last {} (no classifier head)", p.op_type()))
            }
        };
        let t = pool.output[0].as_str();
        // Prefer the flattened vector right after the pool, when it is one.
        let flat = match self.consumers.get(t).map(|v| v.as_slice()) {
            Some([n]) if matches!(n.op_type(), "Flatten" | "Reshape" | "Squeeze") => {
                let o = n.output[0].as_str();
                let keep = attr_int(pool, "keepdims").unwrap_or(1) != 0 || pool.op_type() != "ReduceMean";
                (keep && shape_of(o).is_some_and(|s| s.0.len() == 2)).then(|| o.to_string())
            }
            _ => None,
        };
        Some((flat.unwrap_or_else(|| t.to_string()), rule))
    }
}

#[cfg(test)]
mod tests {
    use prost::Message;

    use crate::model::Model;
    use crate::onnx::{
        tensor_proto, tensor_shape_proto, type_proto, GraphProto, ModelProto, NodeProto, TensorProto, TensorShapeProto,
        TypeProto, ValueInfoProto,
    };

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

    fn model(nodes: Vec<NodeProto>, inits: Vec<TensorProto>) -> Model {
        let graph = GraphProto {
            node: nodes,
            initializer: inits,
            input: vec![input("x", &[1, 3, 8, 8])],
            ..Default::default()
        };
        Model::parse(&ModelProto { graph: Some(graph), ..Default::default() }.encode_to_vec()).unwrap()
    }

    /// x -> conv -> relu = s; two residual blocks on s; then `tail`.
    fn resnet(tail: Vec<NodeProto>, extra: Vec<TensorProto>) -> Model {
        let mut nodes = vec![
            node("Conv", &["x", "w0"], "c0"),
            node("Relu", &["c0"], "s"),
            node("Conv", &["s", "w1"], "c1"),
            node("Add", &["c1", "s"], "a1"),
            node("Relu", &["a1"], "b1"),
            node("Conv", &["b1", "w2"], "c2"),
            node("Add", &["c2", "b1"], "a2"),
            node("Relu", &["a2"], "b2"),
        ];
        nodes.extend(tail);
        let mut inits = vec![tensor("w0", &[4, 3, 1, 1]), tensor("w1", &[4, 4, 1, 1]), tensor("w2", &[4, 4, 1, 1])];
        inits.extend(extra);
        model(nodes, inits)
    }

    fn found(m: &Model) -> Vec<(String, String, String)> {
        m.layers()
            .unwrap()
            .iter()
            .map(|l| (l.name.clone(), l.tensor.clone(), l.shape.clone().unwrap().to_string()))
            .collect()
    }

    fn triple(a: &str, b: &str, c: &str) -> (String, String, String) {
        (a.into(), b.into(), c.into())
    }

    #[test]
    fn finds_stem_stages_and_pool_by_structure() {
        let m = resnet(
            vec![
                node("GlobalAveragePool", &["b2"], "p"),
                node("Flatten", &["p"], "f"),
                node("Gemm", &["f", "fc"], "y"),
            ],
            vec![tensor("fc", &[2, 4])],
        );
        assert_eq!(
            found(&m),
            vec![triple("stem", "s", "1x4x8x8"), triple("layer1", "b2", "1x4x8x8"), triple("avgpool", "f", "1x4")]
        );
        assert_eq!(m.blocks(), ["b1", "b2"]);
        assert_eq!(m.avgpool_rule(), Some("the GlobalAveragePool the Gemm head takes"));
    }

    #[test]
    fn a_one_by_one_conv_head_and_a_headless_model_both_give_avgpool() {
        let m = resnet(
            vec![
                node("GlobalAveragePool", &["b2"], "p"),
                node("Conv", &["p", "head"], "h"),
                node("Flatten", &["h"], "y"),
            ],
            vec![tensor("head", &[10, 4, 1, 1])],
        );
        assert_eq!(found(&m)[2], triple("avgpool", "p", "1x4x1x1"));
        assert_eq!(m.avgpool_rule(), Some("the GlobalAveragePool the 1x1 Conv head takes"));

        let m = resnet(vec![node("ReduceMean", &["b2"], "p")], vec![]);
        assert!(m.layers().unwrap().iter().all(|l| l.name != "avgpool"), "a ReduceMean without axes is not global");
        let mut mean = node("ReduceMean", &["b2"], "p");
        mean.attribute.push(crate::onnx::AttributeProto {
            name: Some("axes".into()),
            ints: vec![-1, -2],
            ..Default::default()
        });
        mean.attribute.push(crate::onnx::AttributeProto {
            name: Some("keepdims".into()),
            i: Some(0),
            ..Default::default()
        });
        let m = resnet(vec![mean], vec![]);
        assert_eq!(found(&m)[2], triple("avgpool", "p", "1x4"));
        assert_eq!(m.avgpool_rule(), Some("the last ReduceMean (no classifier head)"));
    }

    #[test]
    fn a_squeeze_excite_gate_is_not_the_pool() {
        // b2 -> pool -> 1x1 conv -> sigmoid, times b2: a gate, not a head.
        let m = resnet(
            vec![
                node("GlobalAveragePool", &["b2"], "se_p"),
                node("Conv", &["se_p", "se_w"], "se_c"),
                node("Sigmoid", &["se_c"], "se_g"),
                node("Mul", &["b2", "se_g"], "gated"),
            ],
            vec![tensor("se_w", &[4, 4, 1, 1])],
        );
        assert!(m.layers().unwrap().iter().all(|l| l.name != "avgpool"), "{:?}", m.layers());
    }

    #[test]
    fn unknown_shapes_are_asked_for_then_taken() {
        // An operator outside the table (here "Custom") hides every shape after it.
        let mut m = resnet(
            vec![
                node("Custom", &["b2"], "u"),
                node("GlobalAveragePool", &["u"], "p"),
                node("Flatten", &["p"], "f"),
                node("Gemm", &["f", "fc"], "y"),
            ],
            vec![tensor("fc", &[2, 4])],
        );
        assert_eq!(m.shapes_needed(), ["f", "p"], "the flattened vector, and the pool in case it is not one");
        assert!(m.layers().is_err());
        m.supply_shapes([("f".to_string(), vec![1, 4])]);
        assert!(m.shapes_needed().is_empty());
        assert_eq!(found(&m)[2], triple("avgpool", "f", "1x4"));
    }

    #[test]
    fn the_copy_for_an_early_layer_keeps_only_what_it_needs() {
        let m = resnet(
            vec![
                node("GlobalAveragePool", &["b2"], "p"),
                node("Flatten", &["p"], "f"),
                node("Gemm", &["f", "fc"], "y"),
            ],
            vec![tensor("fc", &[2, 4])],
        );
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
