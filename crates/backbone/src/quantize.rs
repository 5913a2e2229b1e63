//! Static int8 quantization in ONNX's QDQ form: the model stays an fp32
//! graph, with QuantizeLinear / DequantizeLinear pairs around the tensors
//! that flow between quantizable operators and dequantized int8 weights,
//! which ONNX Runtime and OpenVINO fuse into int8 kernels (QLinearConv,
//! QLinearAdd, ...). What ONNX Runtime's own `quantize_static` writes with
//! `QuantFormat.QDQ`, `per_channel=True`, uint8 activations, int8 weights and
//! the MinMax calibrator, and for the same reasons:
//!
//! - weights per output channel, symmetric (zero point 0, -127..127): a
//!   channel's scale follows its own range, and x86's u8 x s8 products need
//!   a zero weight offset; 7-bit (-64..64, `reduce_range`) where the CPU's
//!   u8 x s8 kernels would saturate ([`WeightBits`]);
//! - activations per tensor, asymmetric uint8 over the calibrated [min, max]
//!   widened to hold 0 (a ReLU's output uses all 256 levels);
//! - a ReLU or a Clip with constant bounds (ReLU6: `Clip(0, 6)`) that is
//!   the only reader of a quantized output is dropped, and the output is
//!   quantized in its place over the activation's calibrated range: uint8
//!   saturates where the activation clamped (zero point 0 at 0; Clip(0, 6)'s
//!   6 at 255), and the levels go to the range that survives the clamp.
//!   ONNX Runtime's quantizer does the same (its `adjust_tensor_ranges` and
//!   `QDQRemovableActivation`); quantizing a conv's output over its own
//!   range before a Clip(0, 6) left about ten levels below 6, and on an
//!   ImageNet-trained EfficientNet-Lite0 a median cosine to fp32 of 0.890
//!   where ONNX Runtime's gave 0.995;
//! - MaxPool's output, and a constant-mode Pad's (padding with 0, which
//!   the grid holds exactly), keep their input's scale and zero point:
//!   they only pick or add values (ONNX Runtime fuses such a Pad into the
//!   Conv that reads it, which computes the same);
//! - biases as int32 at the input's scale times the weight's, which is what
//!   an int8 convolution adds them in.
//!
//! - a BatchNormalization that alone reads a convolution's output is folded
//!   into its weights first ([`crate::fold::batch_norms`]): otherwise it
//!   would sit in float between the int8 convolution and the ReLU, and
//!   nothing would fuse.
//!
//! [`plan`] says which tensors calibration must measure
//! ([`calibration_model`] gives them as outputs); [`apply`] writes the
//! quantized model from the measured ranges.

use std::collections::{HashMap, HashSet};

use crate::builder::{attr_int, raw_tensor};
use crate::onnx::{tensor_proto, ModelProto, NodeProto, TensorProto};

/// Changes whenever the quantized graph changes for the same inputs: part
/// of every cache key.
pub const VERSION: u32 = 2;

/// Operators whose inputs and output are quantized. Their float inputs are
/// activations, except the weights and biases of the three products, and
/// Pad's pads and constant value.
const QUANTIZED: [&str; 8] = ["Conv", "Gemm", "MatMul", "Add", "MaxPool", "AveragePool", "GlobalAveragePool", "Pad"];

/// Operators that only pick, move or add zeros to their input's values:
/// their output is quantized with their input's parameters.
const SAME_SCALE: [&str; 2] = ["MaxPool", "Pad"];

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("the model's opset {0} is below 13, the first with per-channel DequantizeLinear; int8 needs a model exported at opset 13 or later")]
    Opset(i64),
    #[error("the model has no Conv, Gemm or MatMul with constant weights to quantize")]
    NothingToQuantize,
    #[error("the model has no graph")]
    NoGraph,
    #[error("no calibrated range for tensor {0:?}")]
    NoRange(String),
    #[error("weight {0:?} is not a float tensor this quantizer reads")]
    Weight(String),
}

/// The weights' integer range. x86 CPUs without VNNI (AVX2, AVX-512 before
/// VNNI: AMD before Zen 4, Intel before Cascade Lake) multiply u8 by s8 with
/// VPMADDUBSW, which adds each pair of products in 16 bits and saturates
/// where 2 x 255 x 127 > 32767; with weights in -64..64 every pair fits
/// (2 x 255 x 64 = 32640). ONNX Runtime documents the saturation and
/// `reduce_range` as its remedy; VNNI, AMX and ARM's dot products add in 32
/// bits and keep the full range.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WeightBits {
    Eight,
    Seven,
}

impl WeightBits {
    /// What this CPU's kernels need: 7 bits on x86 without VNNI, else 8.
    pub fn for_this_cpu() -> WeightBits {
        #[cfg(target_arch = "x86_64")]
        {
            if !(std::arch::is_x86_feature_detected!("avx512vnni") || std::arch::is_x86_feature_detected!("avxvnni")) {
                return WeightBits::Seven;
            }
        }
        WeightBits::Eight
    }

    pub fn bits(self) -> u8 {
        match self {
            WeightBits::Eight => 8,
            WeightBits::Seven => 7,
        }
    }

    /// The largest weight magnitude: ONNX Runtime's symmetric int8 range and its reduced one.
    fn max(self) -> f32 {
        match self {
            WeightBits::Eight => 127.0,
            WeightBits::Seven => 64.0,
        }
    }
}

/// Which tensors a model's quantization needs ranges for.
#[derive(Debug, Clone)]
pub struct Quantization {
    /// The image input; its range is measured on the calibration batches themselves.
    pub input: String,
    /// Activations whose ranges a calibration run must output (the image
    /// input and MaxPool outputs excluded), in graph order.
    pub calibrate: Vec<String>,
    /// Quantized activations: (tensor, where its parameters come from).
    quantized: Vec<(String, Params)>,
    /// ReLU and Clip nodes folded into their producer: the producer's
    /// output (the key) is renamed to the activation's (the value).
    folded: HashMap<String, String>,
    /// Weight initializers: name -> channel axis.
    weights: HashMap<String, usize>,
    /// Bias initializers: name -> (the activation input, the weight).
    biases: HashMap<String, (String, String)>,
}

#[derive(Debug, Clone, PartialEq)]
enum Params {
    /// Its own calibrated range.
    Calibrated,
    /// The same scale and zero point as another quantized tensor.
    SameAs(String),
}

/// `proto` with `tensors` as its outputs, for a calibration run.
pub fn calibration_model(proto: &ModelProto, tensors: &[&str]) -> ModelProto {
    let mut m = proto.clone();
    if let Some(g) = m.graph.as_mut() {
        g.output = crate::model::float_outputs(tensors);
    }
    m
}

/// Decides what to quantize in `proto` (a model cut to the outputs it will
/// give, its weights inline). `input` is the image input.
pub fn plan(proto: &ModelProto, input: &str) -> Result<Quantization, Error> {
    let v = crate::builder::opset(proto);
    if v < 13 {
        return Err(Error::Opset(v));
    }
    let graph = proto.graph.as_ref().ok_or(Error::NoGraph)?;
    let inits: HashMap<&str, &TensorProto> = graph.initializer.iter().map(|t| (t.name(), t)).collect();
    let outputs: HashSet<&str> = graph.output.iter().map(|o| o.name()).collect();
    let mut readers: HashMap<&str, Vec<&NodeProto>> = HashMap::new();
    for n in &graph.node {
        for i in &n.input {
            readers.entry(i.as_str()).or_default().push(n);
        }
    }
    // Tensors computed from the image: the only activations.
    let mut from_image: HashSet<&str> = HashSet::from([input]);
    for n in &graph.node {
        if n.input.iter().any(|i| from_image.contains(i.as_str())) {
            from_image.extend(n.output.iter().map(String::as_str));
        }
    }
    let is_float_init =
        |name: &str| inits.get(name).is_some_and(|t| t.data_type() == tensor_proto::DataType::Float as i32);
    let mut weights = HashMap::new();
    let mut biases = HashMap::new();
    let mut quantized: Vec<(String, Params)> = Vec::new();
    let mut seen: HashSet<String> = HashSet::new();
    let mut add = |t: &str, p: Params, quantized: &mut Vec<(String, Params)>| {
        if seen.insert(t.to_string()) {
            quantized.push((t.to_string(), p));
        }
    };
    let mut folded = HashMap::new();
    for n in &graph.node {
        let op = n.op_type();
        if !QUANTIZED.contains(&op) || n.output.len() != 1 {
            continue;
        }
        let acts: Vec<&str> = n.input.iter().map(String::as_str).filter(|i| from_image.contains(i)).collect();
        match op {
            // Products: one activation, a constant weight read by this node alone.
            "Conv" | "Gemm" | "MatMul" => {
                let (Some(x), Some(w)) = (n.input.first(), n.input.get(1)) else { continue };
                let transposed = op == "Gemm" && n.attribute.iter().any(|a| a.name() == "transB" && a.i() == 1);
                let gemm_plain = op == "Gemm"
                    && n.attribute.iter().all(|a| match a.name() {
                        "alpha" | "beta" => a.f() == 1.0,
                        "transA" => a.i() == 0,
                        _ => true,
                    });
                let single_reader = readers.get(w.as_str()).is_some_and(|r| r.len() == 1);
                let ok = from_image.contains(x.as_str())
                    && is_float_init(w)
                    && single_reader
                    && (op != "Gemm" || gemm_plain);
                if !ok {
                    continue;
                }
                // Output channels: Conv's weight is M x C x kh x kw; Gemm's is N x K
                // when transposed, else K x N, as MatMul's.
                let axis = match op {
                    "Conv" => 0,
                    "Gemm" if transposed => 0,
                    _ => 1,
                };
                if op == "MatMul" && inits[w.as_str()].dims.len() != 2 {
                    continue;
                }
                weights.insert(w.clone(), axis);
                if let Some(b) = n.input.get(2).filter(|b| !b.is_empty()) {
                    let per_channel = inits.get(b.as_str()).is_some_and(|t| t.dims.len() == 1);
                    if is_float_init(b) && per_channel && readers.get(b.as_str()).is_some_and(|r| r.len() == 1) {
                        biases.insert(b.clone(), (x.clone(), w.clone()));
                    }
                }
                add(x, Params::Calibrated, &mut quantized);
            }
            // Joins of two activations only (a constant operand would need its own quantization).
            "Add" => {
                if acts.len() != 2 || n.input.len() != 2 {
                    continue;
                }
                for x in &acts {
                    add(x, Params::Calibrated, &mut quantized);
                }
            }
            // Padding with zeros: the constant value, where given, must be 0.
            "Pad" => {
                let zero_pad = n.attribute.iter().all(|a| a.name() != "mode" || a.s() == b"constant")
                    && n.input.get(2).filter(|v| !v.is_empty()).is_none_or(|v| {
                        inits
                            .get(v.as_str())
                            .and_then(|t| crate::model::float_values(t))
                            .is_some_and(|v| v.iter().all(|&x| x == 0.0))
                    });
                let Some(x) = n.input.first().filter(|x| zero_pad && from_image.contains(x.as_str())) else { continue };
                add(x, Params::Calibrated, &mut quantized);
            }
            _ => {
                let Some(x) = acts.first() else { continue };
                add(x, Params::Calibrated, &mut quantized);
            }
        }
        // The output, or the ReLU or Clip that alone reads it.
        let out = n.output[0].as_str();
        let activation = match readers.get(out).map(Vec::as_slice) {
            Some([r]) if removable_activation(r, &inits) && !outputs.contains(out) && !SAME_SCALE.contains(&op) => {
                Some(r.output[0].as_str())
            }
            _ => None,
        };
        let target = activation.unwrap_or(out);
        if let Some(a) = activation {
            folded.insert(out.to_string(), a.to_string());
        }
        let params = if SAME_SCALE.contains(&op) { Params::SameAs(n.input[0].clone()) } else { Params::Calibrated };
        add(target, params, &mut quantized);
    }
    if weights.is_empty() {
        return Err(Error::NothingToQuantize);
    }
    let calibrate =
        quantized.iter().filter(|(t, p)| *p == Params::Calibrated && t != input).map(|(t, _)| t.clone()).collect();
    Ok(Quantization { input: input.to_string(), calibrate, quantized, folded, weights, biases })
}

/// A ReLU, or a Clip whose bounds are constants (or absent): an activation
/// that only clamps, which uint8's saturation can take over once its
/// producer's output is quantized over the activation's range.
fn removable_activation(n: &NodeProto, inits: &HashMap<&str, &TensorProto>) -> bool {
    match n.op_type() {
        "Relu" => n.input.len() == 1,
        "Clip" => n.input.iter().skip(1).all(|b| b.is_empty() || inits.contains_key(b.as_str())),
        _ => false,
    }
}

/// uint8 parameters for values seen in [min, max]: the range widened to
/// hold 0, so that 0 (padding, a ReLU's floor) is exact.
fn activation_params(min: f32, max: f32) -> (f32, u8) {
    let (lo, hi) = (min.min(0.0), max.max(0.0));
    let scale = if hi > lo { (hi - lo) / 255.0 } else { 1.0 };
    let zero = (-lo / scale).round().clamp(0.0, 255.0) as u8;
    (scale, zero)
}

fn weight_values(t: &TensorProto) -> Result<Vec<f32>, Error> {
    crate::model::float_values(t).ok_or_else(|| Error::Weight(t.name().to_string()))
}

/// `name` as a DequantizeLinear of `values` (their type and bytes, shaped
/// `dims`) with one scale per channel along `axis` and zero points 0; the
/// constants go to `inits`.
fn dequantized(
    name: &str,
    dims: &[i64],
    values: (tensor_proto::DataType, Vec<u8>),
    scales: &[f32],
    axis: usize,
    inits: &mut Vec<TensorProto>,
) -> NodeProto {
    let (kind, raw) = values;
    let suffix = if kind == tensor_proto::DataType::Int8 { "int8" } else { "int32" };
    let n = scales.len();
    let (q, s, z) = (format!("{name}/{suffix}"), format!("{name}/scale"), format!("{name}/zero"));
    let zero_bytes = if kind == tensor_proto::DataType::Int8 { n } else { 4 * n };
    inits.push(raw_tensor(&q, dims, kind, raw));
    inits.push(raw_tensor(
        &s,
        &[n as i64],
        tensor_proto::DataType::Float,
        scales.iter().flat_map(|v| v.to_le_bytes()).collect(),
    ));
    inits.push(raw_tensor(&z, &[n as i64], kind, vec![0; zero_bytes]));
    node("DequantizeLinear", &[&q, &s, &z], name, Some(axis as i64))
}

fn node(op: &str, inputs: &[&str], output: &str, axis: Option<i64>) -> NodeProto {
    NodeProto {
        input: inputs.iter().map(|s| s.to_string()).collect(),
        output: vec![output.to_string()],
        name: Some(format!("{output}/{op}")),
        op_type: Some(op.to_string()),
        attribute: axis.map(|a| vec![attr_int("axis", a)]).unwrap_or_default(),
        ..Default::default()
    }
}

/// Per-channel symmetric int8 of `w` along `axis`, in `bits`' range: (values, one scale per channel).
fn quantize_weight(w: &[f32], dims: &[i64], axis: usize, bits: WeightBits) -> (Vec<i8>, Vec<f32>) {
    let channels = dims[axis] as usize;
    let inner: usize = dims[axis + 1..].iter().product::<i64>() as usize;
    let channel = |i: usize| (i / inner) % channels;
    let mut amax = vec![0f32; channels];
    for (i, v) in w.iter().enumerate() {
        let c = channel(i);
        amax[c] = amax[c].max(v.abs());
    }
    let m = bits.max();
    let scales: Vec<f32> = amax.iter().map(|&a| if a > 0.0 { a / m } else { 1.0 }).collect();
    let q = w.iter().enumerate().map(|(i, v)| (v / scales[channel(i)]).round().clamp(-m, m) as i8).collect();
    (q, scales)
}

/// The quantized model: `proto` as [`plan`] saw it, with `ranges` (min, max)
/// for every tensor in `plan.calibrate` and for the input, weights in `bits`' range.
pub fn apply(
    proto: &ModelProto,
    plan: &Quantization,
    ranges: &HashMap<String, (f32, f32)>,
    bits: WeightBits,
) -> Result<ModelProto, Error> {
    let mut out = proto.clone();
    let graph = out.graph.as_mut().ok_or(Error::NoGraph)?;
    // Each quantized tensor's (scale, zero point), in plan order: a SameAs
    // always follows the tensor it copies.
    let mut params: HashMap<String, (f32, u8)> = HashMap::new();
    for (t, p) in &plan.quantized {
        let v = match p {
            Params::Calibrated => {
                let (lo, hi) = *ranges.get(t).ok_or_else(|| Error::NoRange(t.clone()))?;
                activation_params(lo, hi)
            }
            Params::SameAs(src) => *params.get(src).ok_or_else(|| Error::NoRange(src.clone()))?,
        };
        params.insert(t.clone(), v);
    }
    let mut inits: Vec<TensorProto> = Vec::new();
    let mut weight_nodes: Vec<NodeProto> = Vec::new();
    let mut weight_scales: HashMap<String, Vec<f32>> = HashMap::new();
    let mut replaced: HashSet<String> = HashSet::new();
    for t in &graph.initializer {
        let name = t.name();
        if let Some(&axis) = plan.weights.get(name) {
            let (q, scales) = quantize_weight(&weight_values(t)?, &t.dims, axis, bits);
            let values = (tensor_proto::DataType::Int8, q.iter().map(|&v| v as u8).collect());
            weight_nodes.push(dequantized(name, &t.dims, values, &scales, axis, &mut inits));
            weight_scales.insert(name.to_string(), scales);
            replaced.insert(name.to_string());
        }
    }
    for t in &graph.initializer {
        let name = t.name();
        let Some((x, w)) = plan.biases.get(name) else { continue };
        let (Some(&(sx, _)), Some(sw)) = (params.get(x), weight_scales.get(w)) else { continue };
        let b = weight_values(t)?;
        if b.len() != sw.len() {
            continue;
        }
        let scales: Vec<f32> = sw.iter().map(|s| s * sx).collect();
        let q: Vec<i32> = b
            .iter()
            .zip(&scales)
            .map(|(v, s)| (v / s).round().clamp(i32::MIN as f32, i32::MAX as f32) as i32)
            .collect();
        let values = (tensor_proto::DataType::Int32, q.iter().flat_map(|v| v.to_le_bytes()).collect());
        weight_nodes.push(dequantized(name, &[q.len() as i64], values, &scales, 0, &mut inits));
        replaced.insert(name.to_string());
    }
    graph.initializer.retain(|t| !replaced.contains(t.name()));
    graph.input.retain(|i| !replaced.contains(i.name()));
    // One Q -> DQ pair per activation: the producer writes `t/fp32`, every
    // reader (and a graph output) still reads `t`.
    // tensor `t` quantized from `from` and dequantized into `to`.
    let pair = |t: &str, from: &str, to: &str, inits: &mut Vec<TensorProto>| -> [NodeProto; 2] {
        let (scale, zero) = params[t];
        inits.push(raw_tensor(
            &format!("{t}/qscale"),
            &[],
            tensor_proto::DataType::Float,
            scale.to_le_bytes().to_vec(),
        ));
        inits.push(raw_tensor(&format!("{t}/qzero"), &[], tensor_proto::DataType::Uint8, vec![zero]));
        let (s, z) = (format!("{t}/qscale"), format!("{t}/qzero"));
        [
            node("QuantizeLinear", &[from, &s, &z], &format!("{t}/uint8"), None),
            node("DequantizeLinear", &[&format!("{t}/uint8"), &s, &z], to, None),
        ]
    };
    let mut nodes = weight_nodes;
    // The constant bounds of the Clips folded away.
    let mut bounds: HashSet<String> = HashSet::new();
    if params.contains_key(&plan.input) {
        // The image itself: its readers read the dequantized copy.
        let t = &plan.input;
        nodes.extend(pair(t, t, &format!("{t}/dq"), &mut inits));
    }
    for mut n in std::mem::take(&mut graph.node) {
        // A folded ReLU or Clip: its producer now writes its output.
        if matches!(n.op_type(), "Relu" | "Clip")
            && n.input.first().and_then(|i| plan.folded.get(i)) == n.output.first()
        {
            bounds.extend(n.input.iter().skip(1).filter(|b| !b.is_empty()).cloned());
            continue;
        }
        for i in n.input.iter_mut() {
            if *i == plan.input && params.contains_key(&plan.input) {
                *i = format!("{}/dq", plan.input);
            }
        }
        let mut after = Vec::new();
        for o in n.output.iter_mut() {
            let t = plan.folded.get(o.as_str()).cloned().unwrap_or_else(|| o.clone());
            if params.contains_key(&t) {
                *o = format!("{t}/fp32");
                after.extend(pair(&t, o, &t, &mut inits));
            } else if t != *o {
                *o = t;
            }
        }
        nodes.push(n);
        nodes.extend(after);
    }
    graph.node = nodes;
    graph.initializer.extend(inits);
    // A folded Clip's bounds, where nothing else reads them.
    let read: HashSet<&str> = graph.node.iter().flat_map(|n| n.input.iter().map(String::as_str)).collect();
    let unread: HashSet<String> = bounds.into_iter().filter(|b| !read.contains(b.as_str())).collect();
    graph.initializer.retain(|t| !unread.contains(t.name()));
    graph.input.retain(|i| !unread.contains(i.name()));
    // Shapes recorded for the float graph name tensors that are gone or renamed.
    graph.value_info.clear();
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::builder::{test_model as model, Graph};

    /// x -> [Pad] -> Conv(w, b) -> y -> `activation` -> z (the output).
    fn one_conv(activation: Option<&str>, pad: bool) -> ModelProto {
        let mut g = Graph::default();
        let w = g.floats("w".into(), &[2, 1, 1, 1], &[0.5, -0.25]);
        let b = g.floats("b".into(), &[2], &[0.1, -0.1]);
        let lo = g.floats("lo".into(), &[], &[0.0]);
        let hi = g.floats("hi".into(), &[], &[6.0]);
        let x = if pad {
            let pads = g.ints("pads".into(), &[0, 0, 1, 1, 0, 0, 1, 1]);
            g.node("Pad", &["x", &pads], "p".into(), "pad".into(), vec![])
        } else {
            "x".to_string()
        };
        let y = g.node("Conv", &[&x, &w, &b], "y".into(), "conv".into(), vec![]);
        match activation {
            Some("Relu") => _ = g.node("Relu", &[&y], "z".into(), "relu".into(), vec![]),
            Some("Clip") => _ = g.node("Clip", &[&y, &lo, &hi], "z".into(), "clip".into(), vec![]),
            _ => {}
        }
        model(g, &[if activation.is_some() { "z" } else { "y" }])
    }

    fn quantized_tensors(p: &Quantization) -> Vec<(&str, &Params)> {
        p.quantized.iter().map(|(t, p)| (t.as_str(), p)).collect()
    }

    #[test]
    fn a_relu_or_relu6_after_a_conv_gives_the_conv_its_range() {
        for act in ["Relu", "Clip"] {
            let p = plan(&one_conv(Some(act), false), "x").unwrap();
            // The conv's own output is never measured: only what survives the clamp.
            assert_eq!(p.calibrate, ["z"], "{act}");
            assert_eq!(quantized_tensors(&p), [("x", &Params::Calibrated), ("z", &Params::Calibrated)], "{act}");
            assert_eq!(p.folded, HashMap::from([("y".to_string(), "z".to_string())]), "{act}");
            assert_eq!(p.weights, HashMap::from([("w".to_string(), 0)]));
            assert_eq!(p.biases, HashMap::from([("b".to_string(), ("x".to_string(), "w".to_string()))]));
        }
        // Without an activation, the conv's output is measured itself.
        let p = plan(&one_conv(None, false), "x").unwrap();
        assert_eq!((p.calibrate.as_slice(), p.folded.is_empty()), (&["y".to_string()][..], true));
        // A Clip whose bounds are computed is no pure clamp: kept.
        let mut m = one_conv(Some("Clip"), false);
        m.graph.as_mut().unwrap().initializer.retain(|t| t.name() != "hi");
        let p = plan(&m, "x").unwrap();
        assert!(p.folded.is_empty() && p.calibrate == ["y"], "{:?}", p.calibrate);
    }

    #[test]
    fn the_rewrite_drops_the_clamp_and_quantizes_its_output_over_its_range() {
        let m = one_conv(Some("Clip"), false);
        let p = plan(&m, "x").unwrap();
        let ranges = HashMap::from([("x".to_string(), (-1.0, 3.0)), ("z".to_string(), (0.0, 6.0))]);
        let q = apply(&m, &p, &ranges, WeightBits::Eight).unwrap();
        let g = q.graph.unwrap();
        let ops: Vec<(&str, Vec<&str>, &str)> = g
            .node
            .iter()
            .map(|n| (n.op_type(), n.input.iter().map(String::as_str).collect(), n.output[0].as_str()))
            .collect();
        assert_eq!(
            ops,
            [
                ("DequantizeLinear", vec!["w/int8", "w/scale", "w/zero"], "w"),
                ("DequantizeLinear", vec!["b/int32", "b/scale", "b/zero"], "b"),
                ("QuantizeLinear", vec!["x", "x/qscale", "x/qzero"], "x/uint8"),
                ("DequantizeLinear", vec!["x/uint8", "x/qscale", "x/qzero"], "x/dq"),
                ("Conv", vec!["x/dq", "w", "b"], "z/fp32"),
                ("QuantizeLinear", vec!["z/fp32", "z/qscale", "z/qzero"], "z/uint8"),
                ("DequantizeLinear", vec!["z/uint8", "z/qscale", "z/qzero"], "z"),
            ]
        );
        let init = |name: &str| g.initializer.iter().find(|t| t.name() == name).unwrap_or_else(|| panic!("no {name}"));
        // Clip(0, 6)'s 6 is the top of the grid, and 0 its zero point.
        assert_eq!(init("z/qscale").raw_data(), (6.0f32 / 255.0).to_le_bytes());
        assert_eq!(init("z/qzero").raw_data(), [0]);
        // x over [-1, 3]: 4/255 a level, 0 at 64 (63.75 rounded).
        assert_eq!(init("x/qscale").raw_data(), (4.0f32 / 255.0).to_le_bytes());
        assert_eq!(init("x/qzero").raw_data(), [64]);
        assert_eq!(init("w/int8").raw_data(), [127u8, (-127i8) as u8]);
        // The bounds went with the Clip; the float weights with their quantization.
        for gone in ["lo", "hi", "w", "b"] {
            assert!(g.initializer.iter().all(|t| t.name() != gone), "{gone} left");
        }
    }

    #[test]
    fn a_zero_pad_keeps_its_inputs_parameters() {
        let m = one_conv(Some("Relu"), true);
        let p = plan(&m, "x").unwrap();
        assert_eq!(
            quantized_tensors(&p),
            [("x", &Params::Calibrated), ("p", &Params::SameAs("x".into())), ("z", &Params::Calibrated)]
        );
        assert_eq!(p.calibrate, ["z"]);
        let ranges = HashMap::from([("x".to_string(), (-1.0, 3.0)), ("z".to_string(), (0.0, 2.0))]);
        let g = apply(&m, &p, &ranges, WeightBits::Eight).unwrap().graph.unwrap();
        let param = |name: &str| g.initializer.iter().find(|t| t.name() == name).unwrap().raw_data().to_vec();
        assert_eq!((param("p/qscale"), param("p/qzero")), (param("x/qscale"), param("x/qzero")));
        // Padding with another value than 0 is no pure padding: measured on its own.
        let mut m = m;
        let g = m.graph.as_mut().unwrap();
        g.initializer.push(raw_tensor("one", &[], tensor_proto::DataType::Float, 1f32.to_le_bytes().to_vec()));
        g.node[0].input.push("one".into());
        let p = plan(&m, "x").unwrap();
        assert_eq!(quantized_tensors(&p), [("p", &Params::Calibrated), ("z", &Params::Calibrated)]);
        assert_eq!(p.calibrate, ["p", "z"]);
    }

    #[test]
    fn activation_parameters_hold_zero_and_the_range() {
        let (s, z) = activation_params(0.0, 6.0);
        assert_eq!(z, 0);
        assert!((s - 6.0 / 255.0).abs() < 1e-7);
        let (s, z) = activation_params(-1.0, 3.0);
        assert!((s - 4.0 / 255.0).abs() < 1e-7);
        assert_eq!(z, 64); // round(1 / (4 / 255)) = round(63.75)
        let (_, z) = activation_params(2.0, 3.0); // widened to hold 0
        assert_eq!(z, 0);
        assert_eq!(activation_params(0.0, 0.0), (1.0, 0));
    }

    #[test]
    fn weights_are_symmetric_per_output_channel() {
        // Two output channels of 2 x 1 x 1 x 2.
        let w = [1.0, -0.5, 0.25, -0.125];
        let (q, s) = quantize_weight(&w, &[2, 1, 1, 2], 0, WeightBits::Eight);
        assert_eq!(s, vec![1.0 / 127.0, 0.25 / 127.0]);
        assert_eq!(q, vec![127, -64, 127, -64]);
        // Along the last axis (MatMul's K x N): channel = column.
        let (q, s) = quantize_weight(&w, &[2, 2], 1, WeightBits::Eight);
        assert_eq!(s, vec![1.0 / 127.0, 0.5 / 127.0]);
        assert_eq!(q, vec![127, -127, 32, -32]);
    }

    #[test]
    fn seven_bit_weights_are_onnx_runtimes_reduced_range() {
        // quantize_data(reduce_range=True, symmetric): -64..64, scale absmax / 64.
        let w = [1.0, -0.5, 0.25, -0.126];
        let (q, s) = quantize_weight(&w, &[2, 1, 1, 2], 0, WeightBits::Seven);
        assert_eq!(s, vec![1.0 / 64.0, 0.25 / 64.0]);
        assert_eq!(q, vec![64, -32, 64, -32]);
        // No pair of products leaves VPMADDUBSW's 16 bits.
        assert!(2 * 255 * q.iter().map(|v| (*v as i32).abs()).max().unwrap() <= i16::MAX as i32);
    }
}
