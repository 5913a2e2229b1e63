//! torchvision's ResNet50 topology: checking that a state dict is one,
//! MindSpore's parameter names in torchvision's, and the ONNX model of it.
//!
//! Bottleneck blocks 3-4-6-3 with the stride on the 3x3 conv (v1.5);
//! widths are read from the weights, so narrow variants build too. Each
//! BatchNorm is folded into its convolution (in f64, PyTorch's eps 1e-5).
//! MindSpore's `pad_mode='same'` becomes explicit pads, the odd one after.

use crate::builder::{attr_float, attr_int, attr_ints, tensor_info, Dim, Graph};
use crate::checkpoint::{StateDict, Tensor};
use crate::onnx::{tensor_proto::DataType, ModelProto, OperatorSetIdProto, StringStringEntryProto};

/// PyTorch's BatchNorm epsilon (MindSpore's ResNet uses the same).
pub const BN_EPS: f64 = 1e-5;
pub const OPSET: i64 = 17;
/// Residual blocks per stage.
pub const BLOCKS: [usize; 4] = [3, 4, 6, 3];

#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct WeightsError(pub String);

/// How convolutions pad: PyTorch's symmetric pads, or TensorFlow's and
/// MindSpore's `same` (total padding split with the odd one after).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Padding {
    Symmetric,
    Same,
}

/// The keys of a torchvision ResNet50 state dict, without `num_batches_tracked`.
pub fn expected_keys() -> Vec<String> {
    let bn = |p: &str| ["weight", "bias", "running_mean", "running_var"].map(|s| format!("{p}.{s}"));
    let mut keys = vec!["conv1.weight".to_string()];
    keys.extend(bn("bn1"));
    for (s, &n) in BLOCKS.iter().enumerate() {
        for b in 0..n {
            let p = format!("layer{}.{b}", s + 1);
            for i in 1..=3 {
                keys.push(format!("{p}.conv{i}.weight"));
                keys.extend(bn(&format!("{p}.bn{i}")));
            }
            if b == 0 {
                keys.push(format!("{p}.downsample.0.weight"));
                keys.extend(bn(&format!("{p}.downsample.1")));
            }
        }
    }
    keys.extend(["fc.weight".to_string(), "fc.bias".to_string()]);
    keys
}

fn listed(keys: &[String]) -> String {
    let shown: Vec<&str> = keys.iter().take(4).map(String::as_str).collect();
    format!("{}{}", shown.join(", "), if keys.len() > 4 { ", ..." } else { "" })
}

/// Checks a state dict is a torchvision ResNet50's: every key there (the
/// BatchNorm counters may be missing, as in the official files), none
/// extra, every shape consistent with the stem's width.
pub fn check(params: &StateDict) -> Result<(), WeightsError> {
    let want = expected_keys();
    // A BatchNorm's step counter, which the conversion does not use, is
    // expected only beside a BatchNorm of the network (as torchvision's
    // strict load_state_dict expects it): any other is unexpected.
    let counter_of_a_batch_norm = |k: &str| {
        k.strip_suffix(".num_batches_tracked").is_some_and(|bn| want.iter().any(|w| *w == format!("{bn}.running_mean")))
    };
    let got: Vec<&str> = params.0.iter().map(|(k, _)| k.as_str()).filter(|k| !counter_of_a_batch_norm(k)).collect();
    let missing: Vec<String> = want.iter().filter(|k| !got.contains(&k.as_str())).cloned().collect();
    let mut extra: Vec<String> = got.iter().filter(|k| !want.iter().any(|w| w == *k)).map(|k| k.to_string()).collect();
    extra.sort();
    if !missing.is_empty() || !extra.is_empty() {
        let mut parts = Vec::new();
        if !missing.is_empty() {
            parts.push(format!("missing {} keys ({})", missing.len(), listed(&missing)));
        }
        if !extra.is_empty() {
            parts.push(format!("{} unexpected keys ({})", extra.len(), listed(&extra)));
        }
        return Err(WeightsError(format!("not a torchvision ResNet50 state dict: {}", parts.join("; "))));
    }
    let dims = |k: &str| params.get(k).map(|t| t.dims.clone()).unwrap_or_default();
    let width = *dims("conv1.weight").first().unwrap_or(&0);
    let mut shapes: Vec<(String, Vec<usize>)> = vec![("conv1.weight".into(), vec![width, 3, 7, 7])];
    let mut cin = width;
    for (s, &n) in BLOCKS.iter().enumerate() {
        let mid = width << s;
        for b in 0..n {
            let p = format!("layer{}.{b}", s + 1);
            shapes.push((format!("{p}.conv1.weight"), vec![mid, cin, 1, 1]));
            shapes.push((format!("{p}.conv2.weight"), vec![mid, mid, 3, 3]));
            shapes.push((format!("{p}.conv3.weight"), vec![mid * 4, mid, 1, 1]));
            if b == 0 {
                shapes.push((format!("{p}.downsample.0.weight"), vec![mid * 4, cin, 1, 1]));
            }
            cin = mid * 4;
        }
    }
    let classes = *dims("fc.weight").first().unwrap_or(&0);
    shapes.push(("fc.weight".into(), vec![classes, cin]));
    shapes.push(("fc.bias".into(), vec![classes]));
    for k in &want {
        let expected = match shapes.iter().find(|(n, _)| n == k) {
            Some((_, s)) => s.clone(),
            None => {
                // A BatchNorm vector: as many as its convolution's outputs.
                let conv = conv_of(k.rsplit_once('.').map_or("", |(bn, _)| bn));
                vec![shapes.iter().find(|(n, _)| *n == format!("{conv}.weight")).map_or(0, |(_, s)| s[0])]
            }
        };
        if dims(k) != expected {
            return Err(WeightsError(format!(
                "{k} has shape {:?}, a ResNet50 of stem width {width} has {expected:?}",
                dims(k)
            )));
        }
    }
    Ok(())
}

/// The convolution a BatchNorm follows: bn1 -> conv1, layer1.0.bn3 ->
/// layer1.0.conv3, layer1.0.downsample.1 -> layer1.0.downsample.0.
fn conv_of(bn: &str) -> String {
    if let Some(head) = bn.strip_suffix("downsample.1") {
        return format!("{head}downsample.0");
    }
    match bn.rsplit_once('.') {
        Some((head, last)) => format!("{head}.conv{}", last.trim_start_matches("bn")),
        None => format!("conv{}", bn.trim_start_matches("bn")),
    }
}

/// The tutorial's MindSpore ResNet50 parameters in torchvision's names,
/// and the names left out (optimizer state, counters).
pub fn from_mindspore(params: StateDict) -> (StateDict, Vec<String>) {
    let (mut out, mut ignored) = (Vec::new(), Vec::new());
    for (name, t) in params.0 {
        let mut parts: Vec<String> = name.split('.').map(str::to_string).collect();
        let first = parts[0].as_str();
        let optimizer = [
            "moments.",
            "accum.",
            "adam_",
            "global_step",
            "learning_rate",
            "momentum",
            "beta1_power",
            "beta2_power",
            "current_iterator_step",
            "epoch_num",
            "step_num",
            "scale_sense",
        ]
        .iter()
        .any(|p| name.starts_with(p));
        if optimizer || !(matches!(first, "conv1" | "norm" | "fc") || first.starts_with("layer")) {
            ignored.push(name);
            continue;
        }
        let last = parts.len() - 1;
        parts[last] = match parts[last].as_str() {
            "gamma" => "weight".into(),
            "beta" => "bias".into(),
            "moving_mean" => "running_mean".into(),
            "moving_variance" => "running_var".into(),
            other => other.into(),
        };
        if parts[0] == "norm" {
            parts[0] = "bn1".into();
        }
        for p in &mut parts {
            if let Some(rest) = p.strip_prefix("norm") {
                *p = format!("bn{rest}");
            }
        }
        out.push((parts.join(".").replace("down_sample", "downsample"), t));
    }
    (StateDict(out), ignored)
}

/// (before, after) padding of one axis under `same`, and the output size.
fn same_pads(size: i64, k: i64, stride: i64) -> ((i64, i64), i64) {
    let out = (size + stride - 1) / stride;
    let total = ((out - 1) * stride + k - size).max(0);
    ((total / 2, total - total / 2), out)
}

/// The ONNX model of a checked ResNet50 state dict ([`check`]): input
/// `input` [batch_size, 3, size, size], output `output` (the logits),
/// opset 17, with `metadata` as its `metadata_props`. Deterministic: the
/// same weights give the same bytes.
pub fn build(params: &StateDict, padding: Padding, size: i64, doc: &str, metadata: &[(String, String)]) -> ModelProto {
    let mut b = Builder { g: Graph::default(), params, padding, spatial: size };
    let mut x = b.conv_bn("input", "conv1", "bn1", 2);
    x = b.g.node("Relu", &[&x], "/relu/Relu_output_0".into(), "/relu/Relu".into(), vec![]);
    x = b.max_pool(&x);
    for (s, &n) in BLOCKS.iter().enumerate() {
        for block in 0..n {
            let p = format!("layer{}.{block}", s + 1);
            let stride = if s > 0 && block == 0 { 2 } else { 1 };
            let at = b.spatial;
            let mut y = b.conv_bn(&x, &format!("{p}.conv1"), &format!("{p}.bn1"), 1);
            y = b.relu(&y, &format!("/{p}/relu"));
            y = b.conv_bn(&y, &format!("{p}.conv2"), &format!("{p}.bn2"), stride);
            y = b.relu(&y, &format!("/{p}/relu_1"));
            y = b.conv_bn(&y, &format!("{p}.conv3"), &format!("{p}.bn3"), 1);
            if params.contains(&format!("{p}.downsample.0.weight")) {
                let after = b.spatial;
                b.spatial = at;
                x = b.conv_bn(&x, &format!("{p}.downsample.0"), &format!("{p}.downsample.1"), stride);
                debug_assert_eq!(b.spatial, after, "both branches end at one size");
            }
            let sum = b.g.node("Add", &[&y, &x], format!("/{p}/add/Add_output_0"), format!("/{p}/add/Add"), vec![]);
            x = b.relu(&sum, &format!("/{p}/relu_2"));
        }
    }
    let pooled = b.g.node(
        "GlobalAveragePool",
        &[&x],
        "/avgpool/GlobalAveragePool_output_0".into(),
        "/avgpool/GlobalAveragePool".into(),
        vec![],
    );
    let flat = b.g.node(
        "Flatten",
        &[&pooled],
        "/flatten/Flatten_output_0".into(),
        "/flatten/Flatten".into(),
        vec![attr_int("axis", 1)],
    );
    let fc = params.get("fc.weight").expect("checked");
    let w = b.weights("fc.weight", fc);
    let bias = b.weights("fc.bias", params.get("fc.bias").expect("checked"));
    b.g.node(
        "Gemm",
        &[&flat, &w, &bias],
        "output".into(),
        "/fc/Gemm".into(),
        vec![attr_float("alpha", 1.0), attr_float("beta", 1.0), attr_int("transB", 1)],
    );

    let batch = Dim::Named("batch_size".into());
    let graph = crate::onnx::GraphProto {
        node: b.g.nodes,
        name: Some("resnet50".into()),
        initializer: b.g.inits,
        input: vec![tensor_info(
            "input",
            DataType::Float,
            vec![batch.clone(), Dim::Fixed(3), Dim::Fixed(size), Dim::Fixed(size)],
        )],
        output: vec![tensor_info("output", DataType::Float, vec![batch, Dim::Fixed(fc.dims[0] as i64)])],
        ..Default::default()
    };
    ModelProto {
        ir_version: Some(8),
        opset_import: vec![OperatorSetIdProto { domain: Some(String::new()), version: Some(OPSET) }],
        producer_name: Some("resnet-features backbone".into()),
        producer_version: Some(env!("CARGO_PKG_VERSION").into()),
        doc_string: Some(doc.into()),
        graph: Some(graph),
        metadata_props: metadata
            .iter()
            .map(|(k, v)| StringStringEntryProto { key: Some(k.clone()), value: Some(v.clone()) })
            .collect(),
        ..Default::default()
    }
}

struct Builder<'p> {
    g: Graph,
    params: &'p StateDict,
    padding: Padding,
    /// The current feature map's side, for `same` padding.
    spatial: i64,
}

impl Builder<'_> {
    fn weights(&mut self, name: &str, t: &Tensor) -> String {
        self.g.floats(name.to_string(), &t.dims, &t.values)
    }

    fn relu(&mut self, x: &str, scope: &str) -> String {
        self.g.node("Relu", &[x], format!("{scope}/Relu_output_0"), format!("{scope}/Relu"), vec![])
    }

    fn pads(&mut self, k: i64, stride: i64) -> Vec<i64> {
        match self.padding {
            Padding::Same => {
                let ((before, after), out) = same_pads(self.spatial, k, stride);
                self.spatial = out;
                vec![before, before, after, after]
            }
            Padding::Symmetric => {
                self.spatial = (self.spatial + 2 * (k / 2) - k) / stride + 1;
                vec![k / 2; 4]
            }
        }
    }

    /// A convolution with its BatchNorm folded in: w' = w * g / sqrt(v + eps), b' = beta - mean * g / sqrt(v + eps).
    fn conv_bn(&mut self, x: &str, conv: &str, bn: &str, stride: i64) -> String {
        let p = self.params;
        let w = p.get(&format!("{conv}.weight")).expect("checked");
        let get = |s: &str| &p.get(&format!("{bn}.{s}")).expect("checked").values;
        let (gamma, beta, mean, var) = (get("weight"), get("bias"), get("running_mean"), get("running_var"));
        let k = w.dims[2] as i64;
        let per_out = w.values.len() / w.dims[0];
        let scale: Vec<f64> = gamma.iter().zip(var).map(|(&g, &v)| g as f64 / (v as f64 + BN_EPS).sqrt()).collect();
        let folded: Vec<f32> =
            w.values.iter().enumerate().map(|(i, &v)| (v as f64 * scale[i / per_out]) as f32).collect();
        let bias: Vec<f32> = (0..w.dims[0]).map(|o| (beta[o] as f64 - mean[o] as f64 * scale[o]) as f32).collect();
        let pads = self.pads(k, stride);
        let wn = self.g.floats(format!("{conv}.weight"), &w.dims, &folded);
        let bn_ = self.g.floats(format!("{conv}.bias"), &[w.dims[0]], &bias);
        let scope = format!("/{conv}");
        let attrs = vec![
            attr_ints("kernel_shape", &[k, k]),
            attr_ints("strides", &[stride, stride]),
            attr_ints("pads", &pads),
            attr_ints("dilations", &[1, 1]),
            attr_int("group", 1),
        ];
        self.g.node("Conv", &[x, &wn, &bn_], format!("{scope}/Conv_output_0"), format!("{scope}/Conv"), attrs)
    }

    fn max_pool(&mut self, x: &str) -> String {
        let pads = self.pads(3, 2);
        let attrs = vec![
            attr_ints("kernel_shape", &[3, 3]),
            attr_ints("strides", &[2, 2]),
            attr_ints("pads", &pads),
            attr_int("ceil_mode", 0),
            attr_ints("dilations", &[1, 1]),
        ];
        self.g.node("MaxPool", &[x], "/maxpool/MaxPool_output_0".into(), "/maxpool/MaxPool".into(), attrs)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_padding_puts_the_odd_pad_after() {
        assert_eq!(same_pads(224, 7, 2), ((2, 3), 112));
        assert_eq!(same_pads(112, 3, 2), ((0, 1), 56));
        assert_eq!(same_pads(56, 3, 1), ((1, 1), 56));
    }

    #[test]
    fn batch_norms_follow_their_convolutions() {
        assert_eq!(conv_of("bn1"), "conv1");
        assert_eq!(conv_of("layer1.0.bn3"), "layer1.0.conv3");
        assert_eq!(conv_of("layer1.0.downsample.1"), "layer1.0.downsample.0");
    }
}
