//! Graph preparations that change no result: a BatchNormalization that
//! follows a convolution, folded into the convolution's weights (as
//! exporters and ONNX Runtime's pre-processing do). int8 and fp16 both
//! start here: the fold is computed in float64 before any rounding, and
//! leaves one operator where there were two.

use std::collections::{HashMap, HashSet};

use crate::builder::raw_tensor;
use crate::model::float_values;
use crate::onnx::{tensor_proto, ModelProto};

/// Folds every BatchNormalization (inference form: one output) that alone
/// reads a Conv's output into that Conv: per output channel m, with
/// k = scale / sqrt(var + epsilon), W'[m] = k W[m] and b' = k (b - mean) + B.
/// The Conv then writes the BatchNormalization's output. Returns how many
/// were folded.
pub fn batch_norms(proto: &mut ModelProto) -> usize {
    let Some(graph) = proto.graph.as_mut() else { return 0 };
    let mut readers: HashMap<String, usize> = HashMap::new();
    for n in &graph.node {
        for i in &n.input {
            *readers.entry(i.clone()).or_default() += 1;
        }
    }
    let outputs: HashSet<String> = graph.output.iter().map(|o| o.name().to_string()).collect();
    let producer: HashMap<String, usize> =
        graph.node.iter().enumerate().flat_map(|(i, n)| n.output.iter().map(move |o| (o.clone(), i))).collect();
    let index: HashMap<String, usize> =
        graph.initializer.iter().enumerate().map(|(i, t)| (t.name().to_string(), i)).collect();
    let float = |name: &str, graph: &crate::onnx::GraphProto| -> Option<Vec<f32>> {
        index.get(name).and_then(|&i| float_values(&graph.initializer[i]))
    };
    let mut removed = vec![false; graph.node.len()];
    let mut folded = 0;
    for (b, flag) in removed.iter_mut().enumerate() {
        let bn = &graph.node[b];
        if bn.op_type() != "BatchNormalization" || bn.output.len() != 1 || bn.input.len() != 5 {
            continue;
        }
        let x = &bn.input[0];
        let Some(&c) = producer.get(x) else { continue };
        let conv = &graph.node[c];
        if conv.op_type() != "Conv" || readers.get(x) != Some(&1) || outputs.contains(x) {
            continue;
        }
        let w_name = conv.input[1].clone();
        if readers.get(&w_name) != Some(&1) {
            continue;
        }
        let eps = bn.attribute.iter().find(|a| a.name() == "epsilon").map_or(1e-5, |a| a.f());
        let stats: Option<Vec<Vec<f32>>> = bn.input[1..5].iter().map(|t| float(t, graph)).collect();
        let (Some(stats), Some(w)) = (stats, float(&w_name, graph)) else { continue };
        let (gamma, beta, mean, var) = (&stats[0], &stats[1], &stats[2], &stats[3]);
        let m = gamma.len();
        let bias_name = conv.input.get(2).filter(|n| !n.is_empty()).cloned();
        let bias = match &bias_name {
            Some(n) if readers.get(n) == Some(&1) => match float(n, graph) {
                Some(v) => v,
                None => continue,
            },
            Some(_) => continue,
            None => vec![0.0; m],
        };
        if [beta.len(), mean.len(), var.len(), bias.len()].iter().any(|&l| l != m) || m == 0 || w.len() % m != 0 {
            continue;
        }
        let k: Vec<f64> = (0..m).map(|i| f64::from(gamma[i]) / (f64::from(var[i]) + f64::from(eps)).sqrt()).collect();
        let per = w.len() / m;
        let w2: Vec<f32> = w.iter().enumerate().map(|(i, &v)| (f64::from(v) * k[i / per]) as f32).collect();
        let b2: Vec<f32> =
            (0..m).map(|i| (k[i] * (f64::from(bias[i]) - f64::from(mean[i])) + f64::from(beta[i])) as f32).collect();
        let out = bn.output[0].clone();
        let wi = index[&w_name];
        let dims = graph.initializer[wi].dims.clone();
        graph.initializer[wi] = raw_tensor(
            &w_name,
            &dims,
            tensor_proto::DataType::Float,
            w2.iter().flat_map(|v| v.to_le_bytes()).collect(),
        );
        let b_name = bias_name.unwrap_or_else(|| format!("{out}/folded_bias"));
        let b_tensor = raw_tensor(
            &b_name,
            &[m as i64],
            tensor_proto::DataType::Float,
            b2.iter().flat_map(|v| v.to_le_bytes()).collect(),
        );
        match index.get(&b_name) {
            Some(&bi) => graph.initializer[bi] = b_tensor,
            None => graph.initializer.push(b_tensor),
        }
        let conv = &mut graph.node[c];
        if conv.input.len() < 3 {
            conv.input.resize(3, String::new());
        }
        conv.input[2] = b_name;
        conv.output[0] = out;
        *flag = true;
        folded += 1;
    }
    let mut flags = removed.into_iter();
    graph.node.retain(|_| !flags.next().expect("one flag per node"));
    // The folded statistics: read by nothing now (an exporter that lists
    // weights among the inputs lists them there too).
    let read: HashSet<String> = graph.node.iter().flat_map(|n| n.input.iter().cloned()).collect();
    let unused: HashSet<String> =
        graph.initializer.iter().map(|t| t.name().to_string()).filter(|n| !read.contains(n)).collect();
    graph.initializer.retain(|t| !unused.contains(t.name()));
    graph.input.retain(|i| !unused.contains(i.name()));
    folded
}
