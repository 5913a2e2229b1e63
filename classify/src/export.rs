//! `classify export`: the backbone and the fitted head as one ONNX model
//! that any runtime runs on a preprocessed image batch: the backbone up to
//! the classifier's layer, the same pooling and flatten, the saved scaling,
//! then the model (logistic: Gemm and Softmax or Sigmoid; linear SVM:
//! pairwise Gemm and libsvm's one-vs-one vote; RBF SVM: squared distances
//! to the support vectors by MatMul, Exp, then the vote; kNN: unit rows,
//! MatMul with the kept training rows, TopK, Gather of one-hot votes).
//!
//! Only standard `ai.onnx` operators (runtimes without `ai.onnx.ml` run
//! it), opset 13 or later, the backbone's batch dimension kept.
//!
//! With `--input pixels` the model takes one image as it comes, uint8
//! `[height, width, 3]` RGB of any size, and does what `extract` does to it
//! inside the graph first ([`Head::pixels`]); it needs opset 18 (`Resize`
//! with `antialias`), to which the backbone is raised.
//!
//! Outputs: `label` (int64 class index, as `classify predict` picks it),
//! `probabilities` (logistic), `scores` (SVM: `classify predict`'s
//! per-class scores, votes plus squashed confidences) or `votes` (kNN:
//! each class's share of the neighbours), and for SVMs
//! `decision_values` (one column per machine, in libsvm's pair order).

use std::path::PathBuf;

use backbone::builder::{attr_int, attr_string, tensor_info, Dim, Graph};
use backbone::cache::Cache;
use backbone::download::DownloadEvent;
use backbone::onnx::{tensor_proto, tensor_shape_proto, type_proto, AttributeProto, StringStringEntryProto};
use featurefile::Pool;
use prost::Message;
use serde_json::json;

use crate::model::{pairs, Machines, RbfMachine, Trained};
use crate::scale::Scaler;
use crate::{Classifier, Error, Result};

/// The opset the head needs (ReduceSum's axes as an input, Softmax over
/// one axis); a backbone at an older one is raised to it.
pub const MIN_OPSET: i64 = 13;
/// The opset of `--input pixels`: `Resize` with `antialias` (Pillow's filter).
pub const PIXELS_OPSET: i64 = 18;

/// `--input`: what the exported model takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Input {
    /// The preprocessed float batch `extract` feeds the backbone.
    #[default]
    Tensor,
    /// One decoded RGB image, uint8 [height, width, 3], of any size.
    Pixels,
    /// A batch of same-size decoded RGB images, uint8 [N, height, width, 3].
    PixelBatch,
}

featurefile::named_choice!(Input { Tensor => "tensor", Pixels => "pixels", PixelBatch => "pixel-batch" });

impl Input {
    /// Whether the model takes pixels (one image, or a batch of them).
    pub fn pixels(self) -> bool {
        matches!(self, Input::Pixels | Input::PixelBatch)
    }
}

/// The graph input of `--input pixels`.
pub const PIXELS: &str = "pixels";
/// The preprocessed image inside a pixels model, before the backbone:
/// float [N, 3, crop, crop], normalized as `extract` normalizes it. Not an
/// output; a test adds it as one to compare it with `extract`'s tensor.
pub const PREPROCESSED: &str = "classify/pixels/preprocessed";

#[derive(Debug, Clone)]
pub struct ExportOptions {
    pub classifier: PathBuf,
    pub model: backbone::ModelSpec,
    /// The ONNX file; `None` with `web` alone.
    pub out: Option<PathBuf>,
    /// What the exported model takes; `None`: pixels with `web`, else the tensor.
    pub input: Option<Input>,
    /// `--web DIR`: a static page that runs the pixels model in a browser.
    pub web: Option<PathBuf>,
}

/// What was written, for the summary line.
pub struct Exported {
    pub out: Option<PathBuf>,
    pub web: Option<PathBuf>,
    pub outputs: Vec<String>,
    pub bytes: usize,
}

pub fn export(opts: &ExportOptions, report: &mut dyn FnMut(DownloadEvent)) -> Result<Exported> {
    let input = match (opts.input, &opts.web) {
        // The page feeds one image at a time.
        (Some(input), Some(_)) if input != Input::Pixels => return Err(Error::WebNeedsPixels),
        (Some(input), _) => input,
        (None, Some(_)) => Input::Pixels,
        (None, None) => Input::Tensor,
    };
    if opts.out.is_none() && opts.web.is_none() {
        return Err(Error::NoExportDestination);
    }
    let mut inputs = vec![atomic::Input::Path { what: "classifier", path: &opts.classifier }];
    if let backbone::ModelSpec::File(model) = &opts.model {
        inputs.push(atomic::Input::Path { what: "model", path: model });
    }
    if let Some(out) = &opts.out {
        atomic::check_destination(out, &inputs)?;
    }
    let runtime = crate::web::runtime_dir();
    if let Some(dir) = &opts.web {
        crate::web::check(dir, &runtime)?;
    }
    let c = Classifier::load(&opts.classifier)?;
    let preprocess = c.preprocess.clone().ok_or_else(|| Error::NoPreprocess(opts.classifier.clone()))?;
    let opened = backbone::source::open(&opts.model, Cache::default_location().as_ref(), report)?;
    if opened.sha256 != c.backbone.sha256 {
        return Err(Error::ExportOtherBackbone {
            model: opts.model.to_string(),
            sha256: opened.sha256,
            fitted_file: c.backbone.file.clone(),
            fitted_sha256: c.backbone.sha256.clone(),
        });
    }
    let mut proto = opened.proto(&[c.layer.tensor.as_str()])?;
    let opset = if input.pixels() { PIXELS_OPSET } else { MIN_OPSET };
    backbone::builder::raise_opset(&mut proto, opset)
        .map_err(|e| Error::BackboneOpset { model: opts.model.to_string(), source: e })?;
    let backbone = &opened.model;

    let mut g = Head::default();
    let features = g.pool(&c.layer.tensor, c.layer.pool);
    let scaled = g.scale(&features, &c.scaler);
    let outputs = g.model(&scaled, &c.model, c.classes.len());
    let graph = proto.graph.as_mut().expect("a parsed model has a graph");
    graph.node.extend(g.g.nodes);
    graph.initializer.extend(g.g.inits);
    // The outputs' batch dimension is the input's (symbolic, or a fixed size).
    let batch = graph
        .input
        .iter()
        .find(|i| i.name() == backbone.input)
        .and_then(|i| match i.r#type.as_ref()?.value.as_ref()? {
            type_proto::Value::TensorType(t) => t.shape.as_ref()?.dim.first()?.value.clone(),
            _ => None,
        })
        .unwrap_or(tensor_shape_proto::dimension::Value::DimParam("N".into()));
    graph.output = outputs.iter().map(|o| output_info(&o.name, o.elem, &batch, o.cols)).collect();
    graph.name = Some("backbone and classifier".into());
    if input.pixels() {
        // The prefix comes first (nodes in order), and produces what the
        // backbone read from its input.
        let batch = input == Input::PixelBatch;
        let mut pre = Head::default();
        pre.pixels(PIXELS, batch, &backbone.input, &preprocess);
        graph.node.splice(0..0, pre.g.nodes);
        graph.initializer.extend(pre.g.inits);
        graph.input.retain(|i| i.name() != backbone.input);
        let mut dims = vec![Dim::Named("height".into()), Dim::Named("width".into()), Dim::Fixed(3)];
        if batch {
            dims.insert(0, Dim::Named("N".into()));
        } else {
            for o in &mut graph.output {
                set_batch(o, 1);
            }
        }
        graph.input.insert(0, tensor_info(PIXELS, tensor_proto::DataType::Uint8, dims));
    }

    let layer = json!({"column": c.feature_column, "tensor": c.layer.tensor, "pool": c.layer.pool, "dim": c.layer.dim});
    let provenance = json!({
        "model": c.params().to_string(),
        "scaler": c.scaler,
        "train_file": c.train_file,
        "train_rows": c.train_rows,
        "train_accuracy": c.train_accuracy,
        "converged": c.converged,
        "classify_version": c.version,
        "classifier_file": opts.classifier.display().to_string(),
    });
    let output_doc: serde_json::Map<String, serde_json::Value> =
        outputs.iter().map(|o| (o.name.clone(), json!(describe_output(&o.name)))).collect();
    let meta = [
        ("classify.classes", serde_json::to_string(&c.classes).expect("strings")),
        ("classify.preprocess", serde_json::to_string(&preprocess).expect("plain struct")),
        ("classify.backbone", json!({"file": c.backbone.file, "sha256": c.backbone.sha256}).to_string()),
        ("classify.layer", layer.to_string()),
        ("classify.classifier", provenance.to_string()),
        ("classify.outputs", serde_json::Value::Object(output_doc).to_string()),
        ("classify.input", input_doc(input, &backbone.input, &preprocess).to_string()),
    ];
    proto.metadata_props.retain(|p| !p.key().starts_with("classify."));
    proto
        .metadata_props
        .extend(meta.into_iter().map(|(k, v)| StringStringEntryProto { key: Some(k.to_string()), value: Some(v) }));
    proto.producer_name = Some("classify export".into());
    proto.producer_version = Some(env!("CARGO_PKG_VERSION").into());

    let bytes = proto.encode_to_vec();
    if let Some(out) = &opts.out {
        atomic::write_bytes(out, &bytes).map_err(|e| Error::io(out, e))?;
    }
    if let Some(dir) = &opts.web {
        let scores =
            outputs.iter().map(|o| o.name.as_str()).find(|n| matches!(*n, "probabilities" | "scores" | "votes"));
        let info = format!(
            "{} on {} features of {} ({} classes), exported by classify {}.",
            c.params(),
            c.feature_column,
            c.backbone.file,
            c.classes.len(),
            env!("CARGO_PKG_VERSION")
        );
        let page = crate::web::Page {
            title: "Image classifier",
            info: &info,
            classes: &c.classes,
            scores: scores.expect("every head has a scores output"),
        };
        crate::web::write(dir, &runtime, &bytes, &page)?;
    }
    Ok(Exported {
        out: opts.out.clone(),
        web: opts.web.clone(),
        outputs: outputs.into_iter().map(|o| o.name).collect(),
        bytes: bytes.len(),
    })
}

/// `classify.input`: what the model takes, and the preprocessing it embeds.
fn input_doc(input: Input, backbone_input: &str, p: &featurefile::Preprocess) -> serde_json::Value {
    match input {
        Input::Tensor => json!({
            "kind": "tensor",
            "name": backbone_input,
            "doc": format!("float [N, 3, {c}, {c}]: RGB resized (shorter side {r}, antialiased bilinear), centre-cropped, /255, normalized by mean and std (classify.preprocess)", c = p.crop, r = p.resize),
        }),
        Input::Pixels | Input::PixelBatch => json!({
            "kind": input.to_string(),
            "name": PIXELS,
            "doc": if input == Input::Pixels {
                "uint8 [height, width, 3]: one decoded RGB image, upright (EXIF orientation applied), of any size"
            } else {
                "uint8 [N, height, width, 3]: N decoded RGB images of one size, upright (EXIF orientation applied)"
            },
            "embeds": {
                "resize": p.resize, "crop": p.crop, "mean": p.mean, "std": p.std,
                "filter": "onnx Resize linear antialias=1 half_pixel (Pillow's antialiased bilinear, within one grey level)",
            },
        }),
    }
}

/// Sets a graph output's first dimension.
fn set_batch(o: &mut backbone::onnx::ValueInfoProto, n: i64) {
    if let Some(type_proto::Value::TensorType(t)) = o.r#type.as_mut().and_then(|t| t.value.as_mut()) {
        if let Some(d) = t.shape.as_mut().and_then(|s| s.dim.first_mut()) {
            d.value = Some(tensor_shape_proto::dimension::Value::DimValue(n));
        }
    }
}

fn describe_output(name: &str) -> &'static str {
    match name {
        "label" => "int64 [N]: index into classify.classes of the predicted class",
        "probabilities" => "float [N, classes]: class probabilities (softmax; binary: sigmoid)",
        "scores" => "float [N, classes]: votes plus confidences squashed into (-1/3, 1/3) (binary: -d, d), as classify predict's scores",
        "votes" => "float [N, classes]: the share of each class among the k most cosine-similar training rows, as classify predict's scores",
        _ => "float [N, machines]: each one-vs-one machine's decision value, pairs (i, j) i < j in order, class i positive",
    }
}

#[derive(Clone, Copy)]
enum Elem {
    Float,
    Int64,
}

/// A graph output the head adds.
struct Output {
    name: String,
    elem: Elem,
    /// Columns per row; `None`: one value per row.
    cols: Option<usize>,
}

impl Output {
    fn new(name: &str, elem: Elem, cols: Option<usize>) -> Self {
        Output { name: name.to_string(), elem, cols }
    }
}

fn output_info(
    name: &str,
    elem: Elem,
    batch: &tensor_shape_proto::dimension::Value,
    cols: Option<usize>,
) -> backbone::onnx::ValueInfoProto {
    let batch = match batch {
        tensor_shape_proto::dimension::Value::DimValue(v) => Dim::Fixed(*v),
        tensor_shape_proto::dimension::Value::DimParam(s) => Dim::Named(s.clone()),
    };
    let mut dims = vec![batch];
    dims.extend(cols.map(|c| Dim::Fixed(c as i64)));
    let elem = match elem {
        Elem::Float => tensor_proto::DataType::Float,
        Elem::Int64 => tensor_proto::DataType::Int64,
    };
    tensor_info(name, elem, dims)
}

/// The head's nodes and constants, named under `classify/`.
#[derive(Default)]
struct Head {
    g: Graph,
}

impl Head {
    /// Adds a node with one output named after `out` (under `classify/`
    /// unless it is a graph output) and returns that name.
    fn op(&mut self, op: &str, inputs: &[&str], out: &str, attrs: Vec<AttributeProto>) -> String {
        let output = if matches!(out, "label" | "probabilities" | "scores" | "votes" | "decision_values") {
            out.to_string()
        } else {
            format!("classify/{out}")
        };
        self.g.node(op, inputs, output, format!("classify/{out}/{op}"), attrs)
    }

    fn floats(&mut self, name: &str, dims: &[usize], values: Vec<f32>) -> String {
        self.g.floats(format!("classify/{name}"), dims, &values)
    }

    fn ints(&mut self, name: &str, values: &[i64]) -> String {
        self.g.ints(format!("classify/{name}"), values)
    }

    fn scalar(&mut self, name: &str, v: f32) -> String {
        self.floats(name, &[], vec![v])
    }

    /// A float64 scalar: image sizes computed as Python computes them.
    fn double(&mut self, name: &str, v: f64) -> String {
        let name = format!("classify/{name}");
        let t = backbone::builder::raw_tensor(&name, &[], tensor_proto::DataType::Double, v.to_le_bytes().to_vec());
        self.g.inits.push(t);
        name
    }

    /// `extract`'s preprocessing of a decoded image, in the graph: the
    /// shorter side to `resize` (the longer one `floor(resize * long /
    /// short)`, as torchvision computes it), antialiased bilinear
    /// (`Resize` linear, `antialias`, half-pixel centres: Pillow's filter),
    /// rounded to whole grey levels as Pillow's 8-bit result is, the centre
    /// `crop` (offsets rounded half to even, as Python rounds), then /255,
    /// mean and std per channel, into `out`: [1, 3, crop, crop].
    fn pixels(&mut self, input: &str, batch: bool, out: &str, p: &featurefile::Preprocess) {
        use tensor_proto::DataType::{Double, Float, Int64};
        let cast = |h: &mut Self, x: &str, name: &str, to: tensor_proto::DataType| {
            h.op("Cast", &[x], name, vec![attr_int("to", to as i64)])
        };
        let shape = self.op("Shape", &[input], "pixels/shape", vec![]);
        // [H, W, 3], or [N, H, W, 3] for a batch.
        let first = i64::from(batch);
        let hw_at = self.ints("pixels/hw_at", &[first, first + 1]);
        let hw = self.op("Gather", &[&shape, &hw_at], "pixels/hw", vec![attr_int("axis", 0)]);
        let hw = cast(self, &hw, "pixels/hw_f64", Double);
        let short = self.op("ReduceMin", &[&hw], "pixels/short", vec![attr_int("keepdims", 1)]);
        let resize = self.double("pixels/resize_f64", p.resize as f64);
        let scaled = self.op("Mul", &[&hw, &resize], "pixels/hw_times_resize", vec![]);
        let scaled = self.op("Div", &[&scaled, &short], "pixels/hw_over_short", vec![]);
        let new_hw = self.op("Floor", &[&scaled], "pixels/resized_hw_f64", vec![]);
        let new_hw_i = cast(self, &new_hw, "pixels/resized_hw", Int64);
        let n = if batch {
            let n_at = self.ints("pixels/n_at", &[0]);
            self.op("Gather", &[&shape, &n_at], "pixels/n", vec![attr_int("axis", 0)])
        } else {
            self.ints("pixels/one", &[1])
        };
        let c = self.ints("pixels/channels", &[3]);
        let sizes = self.op("Concat", &[&n, &c, &new_hw_i], "pixels/sizes", vec![attr_int("axis", 0)]);
        // uint8 [H, W, 3] or [N, H, W, 3] -> float [N, 3, H, W]
        let x = cast(self, input, "pixels/float", Float);
        let x = if batch {
            self.op("Transpose", &[&x], "pixels/nchw", vec![backbone::builder::attr_ints("perm", &[0, 3, 1, 2])])
        } else {
            let x = self.op("Transpose", &[&x], "pixels/chw", vec![backbone::builder::attr_ints("perm", &[2, 0, 1])]);
            let zero = self.ints("pixels/axis0", &[0]);
            self.op("Unsqueeze", &[&x, &zero], "pixels/nchw", vec![])
        };
        let x = self.g.node(
            "Resize",
            &[&x, "", "", &sizes],
            "classify/pixels/resized".into(),
            "classify/pixels/resized/Resize".into(),
            vec![
                attr_string("mode", "linear"),
                attr_int("antialias", 1),
                attr_string("coordinate_transformation_mode", "half_pixel"),
            ],
        );
        let x = self.op("Round", &[&x], "pixels/rounded", vec![]);
        let (lo, hi) = (self.scalar("pixels/black", 0.0), self.scalar("pixels/white", 255.0));
        let x = self.op("Clip", &[&x, &lo, &hi], "pixels/levels", vec![]);
        // The crop's offsets: round((resized - crop) / 2), half to even.
        let crop = self.double("pixels/crop_f64", p.crop as f64);
        let two = self.double("pixels/two_f64", 2.0);
        let margin = self.op("Sub", &[&new_hw, &crop], "pixels/margin", vec![]);
        let half = self.op("Div", &[&margin, &two], "pixels/half_margin", vec![]);
        let start = self.op("Round", &[&half], "pixels/crop_start_f64", vec![]);
        let start = cast(self, &start, "pixels/crop_start", Int64);
        let size = self.ints("pixels/crop_size", &[p.crop as i64, p.crop as i64]);
        let end = self.op("Add", &[&start, &size], "pixels/crop_end", vec![]);
        let axes = self.ints("pixels/crop_axes", &[2, 3]);
        let x = self.op("Slice", &[&x, &start, &end, &axes], "pixels/cropped", vec![]);
        // torchvision: /255, then (x - mean) / std, in float32.
        let scale = self.scalar("pixels/255", 255.0);
        let x = self.op("Div", &[&x, &scale], "pixels/unit", vec![]);
        let mean = self.floats("pixels/mean", &[1, 3, 1, 1], p.mean.iter().map(|&v| v as f32).collect());
        let std = self.floats("pixels/std", &[1, 3, 1, 1], p.std.iter().map(|&v| v as f32).collect());
        let x = self.op("Sub", &[&x, &mean], "pixels/centred", vec![]);
        let normalized = self.op("Div", &[&x, &std], "pixels/preprocessed", vec![]);
        debug_assert_eq!(normalized, PREPROCESSED);
        self.op("Identity", &[&normalized], "pixels/backbone_input", vec![]);
        let last = self.g.nodes.last_mut().expect("just added");
        last.output = vec![out.to_string()];
    }

    /// `extract`'s pooling of the layer's tensor, one vector per image.
    fn pool(&mut self, tensor: &str, pool: Pool) -> String {
        let flat = |h: &mut Self, x: &str, name: &str| h.op("Flatten", &[x], name, vec![attr_int("axis", 1)]);
        match pool {
            Pool::None => flat(self, tensor, "features"),
            Pool::Avg => {
                let p = self.op("GlobalAveragePool", &[tensor], "avg", vec![]);
                flat(self, &p, "features")
            }
            Pool::Max => {
                let p = self.op("GlobalMaxPool", &[tensor], "max", vec![]);
                flat(self, &p, "features")
            }
            Pool::AvgMax => {
                let a = self.op("GlobalAveragePool", &[tensor], "avg", vec![]);
                let a = flat(self, &a, "avg_flat");
                let m = self.op("GlobalMaxPool", &[tensor], "max", vec![]);
                let m = flat(self, &m, "max_flat");
                self.op("Concat", &[&a, &m], "features", vec![attr_int("axis", 1)])
            }
        }
    }

    /// The sum of squares of each row, kept as a column: [N, 1].
    fn row_sq(&mut self, x: &str, name: &str) -> String {
        let sq = self.op("Mul", &[x, x], &format!("{name}_sq"), vec![]);
        let axes = self.ints(&format!("{name}_axes"), &[1]);
        self.op("ReduceSum", &[&sq, &axes], name, vec![attr_int("keepdims", 1)])
    }

    fn scale(&mut self, x: &str, scaler: &Scaler) -> String {
        match scaler {
            Scaler::Standard { mean, std } => {
                let d = mean.len();
                let m = self.floats("mean", &[1, d], mean.iter().map(|&v| v as f32).collect());
                let s = self.floats("std", &[1, d], std.iter().map(|&v| v as f32).collect());
                let centred = self.op("Sub", &[x, &m], "centred", vec![]);
                self.op("Div", &[&centred, &s], "scaled", vec![])
            }
            Scaler::L2 => {
                // A zero row stays zero, as classify leaves it.
                let ss = self.row_sq(x, "norm_sq");
                let norm = self.op("Sqrt", &[&ss], "norm", vec![]);
                let tiny = self.scalar("tiny", f32::MIN_POSITIVE);
                let safe = self.op("Max", &[&norm, &tiny], "norm_safe", vec![]);
                self.op("Div", &[x, &safe], "scaled", vec![])
            }
            Scaler::None => x.to_string(),
        }
    }

    fn model(&mut self, x: &str, model: &Trained, n_classes: usize) -> Vec<Output> {
        let k = n_classes;
        let argmax =
            |h: &mut Self, s: &str| h.op("ArgMax", &[s], "label", vec![attr_int("axis", 1), attr_int("keepdims", 0)]);
        match model {
            Trained::Knn { k: neighbours, rows, labels } => {
                let s = self.knn(x, *neighbours, rows, labels, k);
                argmax(self, &s);
                vec![Output::new("label", Elem::Int64, None), Output::new(&s, Elem::Float, Some(k))]
            }
            Trained::Logistic { weights, intercepts, .. } => {
                let (rows, d) = (weights.len(), weights[0].len());
                let w = self.floats("weights", &[rows, d], weights.iter().flatten().map(|&v| v as f32).collect());
                let b = self.floats("intercepts", &[rows], intercepts.iter().map(|&v| v as f32).collect());
                let z = self.op("Gemm", &[x, &w, &b], "logits", vec![attr_int("transB", 1)]);
                let p = if k == 2 {
                    let p1 = self.op("Sigmoid", &[&z], "p1", vec![]);
                    let one = self.scalar("one", 1.0);
                    let p0 = self.op("Sub", &[&one, &p1], "p0", vec![]);
                    self.op("Concat", &[&p0, &p1], "probabilities", vec![attr_int("axis", 1)])
                } else {
                    self.op("Softmax", &[&z], "probabilities", vec![attr_int("axis", 1)])
                };
                argmax(self, &p);
                vec![Output::new("label", Elem::Int64, None), Output::new(&p, Elem::Float, Some(k))]
            }
            Trained::Svm { machines, .. } => {
                let d = match machines {
                    Machines::Linear(hs) => {
                        let dim = hs[0].w.len();
                        let w = self.floats(
                            "svm_w",
                            &[hs.len(), dim],
                            hs.iter().flat_map(|h| h.w.iter().map(|&v| v as f32)).collect(),
                        );
                        let b = self.floats("svm_b", &[hs.len()], hs.iter().map(|h| h.b as f32).collect());
                        self.op("Gemm", &[x, &w, &b], "decision_values", vec![attr_int("transB", 1)])
                    }
                    Machines::Kernel(ms) => self.rbf(x, ms),
                };
                let p = machines.len();
                let scores = if k == 2 {
                    let neg = self.op("Neg", &[&d], "neg_decision", vec![]);
                    let s = self.op("Concat", &[&neg, &d], "scores", vec![attr_int("axis", 1)]);
                    argmax(self, &s);
                    s
                } else {
                    // libsvm's vote: machine (i, j) votes i when its decision
                    // is positive, j otherwise; ties go to the lower index
                    // (ArgMax takes the first maximum).
                    let (mut to_i, mut to_j) = (vec![0f32; p * k], vec![0f32; p * k]);
                    for (m, (i, j)) in pairs(k).into_iter().enumerate() {
                        to_i[m * k + i] = 1.0;
                        to_j[m * k + j] = 1.0;
                    }
                    let diff: Vec<f32> = to_i.iter().zip(&to_j).map(|(a, b)| a - b).collect();
                    let (mi, mj, md) = (
                        self.floats("vote_i", &[p, k], to_i),
                        self.floats("vote_j", &[p, k], to_j),
                        self.floats("vote_diff", &[p, k], diff),
                    );
                    let zero = self.scalar("zero", 0.0);
                    let positive = self.op("Greater", &[&d, &zero], "positive", vec![]);
                    let pos = self.op(
                        "Cast",
                        &[&positive],
                        "positive_f",
                        vec![attr_int("to", tensor_proto::DataType::Float as i64)],
                    );
                    let one = self.scalar("one", 1.0);
                    let neg = self.op("Sub", &[&one, &pos], "negative_f", vec![]);
                    let vi = self.op("MatMul", &[&pos, &mi], "votes_i", vec![]);
                    let vj = self.op("MatMul", &[&neg, &mj], "votes_j", vec![]);
                    let votes = self.op("Add", &[&vi, &vj], "votes", vec![]);
                    let conf = self.op("MatMul", &[&d, &md], "confidence", vec![]);
                    let abs = self.op("Abs", &[&conf], "confidence_abs", vec![]);
                    let abs1 = self.op("Add", &[&abs, &one], "confidence_abs1", vec![]);
                    let three = self.scalar("three", 3.0);
                    let den = self.op("Mul", &[&abs1, &three], "squash_den", vec![]);
                    let squashed = self.op("Div", &[&conf, &den], "squashed", vec![]);
                    argmax(self, &votes);
                    self.op("Add", &[&votes, &squashed], "scores", vec![])
                };
                vec![
                    Output::new("label", Elem::Int64, None),
                    Output::new(&scores, Elem::Float, Some(k)),
                    Output::new(&d, Elem::Float, Some(p)),
                ]
            }
        }
    }

    /// Cosine kNN: the query rows to unit length, their similarity to every
    /// kept (unit) training row, TopK (ties to the lower row, as classify
    /// breaks them), and each neighbour's one-hot vote over k summed.
    fn knn(&mut self, x: &str, k: usize, rows: &crate::model::Rows, labels: &[usize], n_classes: usize) -> String {
        let n = labels.len();
        let ss = self.row_sq(x, "knn_norm_sq");
        let norm = self.op("Sqrt", &[&ss], "knn_norm", vec![]);
        let tiny = self.scalar("knn_tiny", f32::MIN_POSITIVE);
        let safe = self.op("Max", &[&norm, &tiny], "knn_norm_safe", vec![]);
        let unit = self.op("Div", &[x, &safe], "knn_unit", vec![]);
        let mut columns = vec![0f32; rows.dim * n]; // [dim, n]: the training rows as columns
        for (i, row) in rows.values.chunks_exact(rows.dim).enumerate() {
            for (d, &v) in row.iter().enumerate() {
                columns[d * n + i] = v;
            }
        }
        let train = self.floats("knn_rows", &[rows.dim, n], columns);
        let sims = self.op("MatMul", &[&unit, &train], "knn_similarity", vec![]);
        let kk = self.ints("knn_k", &[k as i64]);
        let values = self.op(
            "TopK",
            &[&sims, &kk],
            "knn_top_values",
            vec![attr_int("axis", 1), attr_int("largest", 1), attr_int("sorted", 1)],
        );
        // TopK's second output, the neighbours' rows.
        let indices = values.replace("knn_top_values", "knn_top_rows");
        self.g.nodes.last_mut().expect("TopK was just added").output.push(indices.clone());
        let mut votes = vec![0f32; n * n_classes];
        for (i, &c) in labels.iter().enumerate() {
            votes[i * n_classes + c] = 1.0 / k as f32;
        }
        let votes = self.floats("knn_votes", &[n, n_classes], votes);
        let gathered = self.op("Gather", &[&votes, &indices], "knn_neighbour_votes", vec![attr_int("axis", 0)]);
        let axes = self.ints("knn_sum_axes", &[1]);
        self.op("ReduceSum", &[&gathered, &axes], "votes", vec![attr_int("keepdims", 0)])
    }

    /// Every RBF machine's decision value, sum_k alpha_k exp(-|x - s_k|^2 / eps) - rho,
    /// at once: all machines' support vectors stacked, |x - s|^2 = |x|^2 + |s|^2 - 2 x.s.
    fn rbf(&mut self, x: &str, machines: &[linfa_svm::Svm<f64, bool>]) -> String {
        let parts: Vec<RbfMachine> =
            machines.iter().map(|m| RbfMachine::of(m).expect("checked when the classifier was loaded")).collect();
        let dim = parts[0].support.first().map_or(0, Vec::len);
        let total: usize = parts.iter().map(|m| m.support.len()).sum();
        let p = parts.len();
        let mut st = vec![0f32; dim * total]; // [dim, total]: the support vectors as columns
        let mut ss = vec![0f32; total];
        let mut alpha = vec![0f32; total * p];
        let mut col = 0;
        for (m, part) in parts.iter().enumerate() {
            for (sv, &a) in part.support.iter().zip(&part.alpha) {
                for (r, &v) in sv.iter().enumerate() {
                    st[r * total + col] = v as f32;
                }
                ss[col] = sv.iter().map(|v| v * v).sum::<f64>() as f32;
                alpha[col * p + m] = a as f32;
                col += 1;
            }
        }
        let eps = parts[0].eps;
        let st = self.floats("support_t", &[dim, total], st);
        let ss = self.floats("support_sq", &[1, total], ss);
        let alpha = self.floats("alpha", &[total, p], alpha);
        let rho = self.floats("rho", &[p], parts.iter().map(|m| m.rho as f32).collect());
        let xx = self.row_sq(x, "x_sq");
        let xs = self.op("MatMul", &[x, &st], "x_dot_support", vec![]);
        let two = self.scalar("two", 2.0);
        let xs2 = self.op("Mul", &[&xs, &two], "x_dot_support_2", vec![]);
        let sum = self.op("Add", &[&xx, &ss], "sq_sum", vec![]);
        let d2 = self.op("Sub", &[&sum, &xs2], "sq_dist_raw", vec![]);
        let zero = self.scalar("zero_dist", 0.0);
        let d2 = self.op("Max", &[&d2, &zero], "sq_dist", vec![]);
        let eps = self.scalar("kernel_eps", eps as f32);
        let scaled = self.op("Div", &[&d2, &eps], "sq_dist_eps", vec![]);
        let neg = self.op("Neg", &[&scaled], "kernel_exponent", vec![]);
        let kernel = self.op("Exp", &[&neg], "kernel", vec![]);
        let weighted = self.op("MatMul", &[&kernel, &alpha], "weighted_sum", vec![]);
        self.op("Sub", &[&weighted, &rho], "decision_values", vec![])
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use linfa::prelude::*;
    use ndarray::{array, Array1};

    #[test]
    fn an_rbf_machine_read_back_gives_linfas_decisions() {
        let x = array![[0.0, 0.0], [0.1, 0.3], [1.0, 1.0], [0.9, 1.2], [0.2, -0.1], [1.1, 0.8]];
        let y = Array1::from(vec![true, true, false, false, true, false]);
        let m = linfa_svm::Svm::<f64, bool>::params().gaussian_kernel(0.7).fit(&Dataset::new(x.clone(), y)).unwrap();
        let r = RbfMachine::of(&m).unwrap();
        for row in x.rows() {
            let ours: f64 = r
                .support
                .iter()
                .zip(&r.alpha)
                .map(|(s, a)| a * (-s.iter().zip(row).map(|(p, q)| (p - q) * (p - q)).sum::<f64>() / r.eps).exp())
                .sum::<f64>()
                - r.rho;
            let theirs = m.weighted_sum(&row) - m.rho;
            assert!((ours - theirs).abs() < 1e-12, "{ours} vs {theirs}");
        }
        assert_eq!(r.eps, 0.7);
    }
}
