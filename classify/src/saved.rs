//! The saved classifier: one JSON file with everything needed to use it
//! and to check that a feature file fits it.

use std::path::Path;

use featurefile::{LayerInfo, Preprocess};
use ndarray::{Array2, ArrayView2};
use serde::{Deserialize, Serialize};

use crate::data::Allow;
use crate::model::{ClassWeight, Fitted, Kernel, Machines, Params, RbfMachine, SvmKernel, Trained};
use crate::scale::Scaler;
use crate::{Data, Error, Result};

const FORMAT: u32 = 1;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Backbone {
    pub file: String,
    pub sha256: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Classifier {
    pub format: u32,
    pub version: String,
    pub model: Trained,
    /// In the order of the model's outputs.
    pub classes: Vec<String>,
    pub feature_column: String,
    pub dim: usize,
    pub scaler: Scaler,
    pub backbone: Backbone,
    pub layer: LayerInfo,
    /// The training file's image transform (absent from files written
    /// before it was recorded; `classify export` needs it).
    #[serde(default)]
    pub preprocess: Option<Preprocess>,
    pub train_file: String,
    pub train_rows: usize,
    pub train_accuracy: f64,
    pub fit_seconds: f64,
    /// false: the solver stopped at its iteration limit, the model is an
    /// approximation (files written before this key existed converged or
    /// did not say).
    #[serde(default = "yes")]
    pub converged: bool,
    /// How the classes were weighed in the fit (`none` in files written
    /// before this key existed).
    #[serde(default)]
    pub class_weight: ClassWeight,
    /// How the model was chosen among candidates, when it was.
    #[serde(default)]
    pub selection: Option<Selection>,
}

/// A cross-validated choice: `validation` is `K-fold` or `holdout`, `score`
/// the chosen candidate's mean `metric`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Selection {
    pub validation: String,
    pub metric: String,
    pub candidates: usize,
    pub score: f64,
}

fn yes() -> bool {
    true
}

impl Classifier {
    pub(crate) fn new(
        fitted: Fitted,
        classes: Vec<String>,
        data: &Data,
        scaler: Scaler,
        train_accuracy: f64,
        fit_seconds: f64,
        train_rows: usize,
    ) -> Self {
        Classifier {
            format: FORMAT,
            version: env!("CARGO_PKG_VERSION").to_string(),
            model: fitted.model,
            converged: fitted.converged,
            classes,
            feature_column: data.column.clone(),
            dim: data.layer.dim,
            scaler,
            backbone: Backbone { file: data.backbone_file.clone(), sha256: data.backbone_sha256.clone() },
            layer: data.layer.clone(),
            preprocess: Some(data.preprocess.clone()),
            train_file: data.file.display().to_string(),
            train_rows,
            train_accuracy,
            fit_seconds,
            class_weight: ClassWeight::None,
            selection: None,
        }
    }

    pub fn params(&self) -> Params {
        match &self.model {
            Trained::Logistic { c, .. } => Params::Logistic { c: *c },
            Trained::Svm { kernel: Kernel::Linear, c, .. } => Params::Svm { kernel: SvmKernel::Linear, c: *c },
            Trained::Svm { kernel: Kernel::Rbf, c, gamma, .. } => {
                Params::Svm { kernel: SvmKernel::Rbf { gamma: gamma.unwrap_or(0.0) }, c: *c }
            }
            Trained::Knn { k, .. } => Params::Knn { k: *k },
        }
    }

    /// Writes the file whole or not at all.
    pub fn save(&self, path: &Path) -> Result<()> {
        atomic::write_atomically(path, |f| serde_json::to_writer(std::io::BufWriter::new(f), self))
            .map_err(|e| Error::write(path, e))?;
        Ok(())
    }

    pub fn load(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path).map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound => Error::NoClassifier(path.to_owned()),
            _ => Error::io(path, e),
        })?;
        let c: Classifier = serde_json::from_str(&text)
            .map_err(|e| Error::NotAClassifier { path: path.to_owned(), reason: e.to_string() })?;
        if c.format != FORMAT {
            return Err(Error::ClassifierFormat { path: path.to_owned(), found: c.format, supported: FORMAT });
        }
        c.check().map_err(|reason| Error::NotAClassifier { path: path.to_owned(), reason })?;
        Ok(c)
    }

    /// What a hand edit or a cut can leave inconsistent, checked once on
    /// load as a feature file's footer is: every shape against the classes
    /// and the dimension, every number finite, every std positive, every
    /// class name once. An edited file must not reach the scorer or the
    /// exporter as a panic, nor score as all-NaN without a word. The
    /// reason names the field.
    fn check(&self) -> std::result::Result<(), String> {
        let (k, dim) = (self.classes.len(), self.dim);
        if k < 2 {
            return Err(format!("classes: {k} class names; a classifier tells at least two apart"));
        }
        for (i, name) in self.classes.iter().enumerate() {
            if self.classes[..i].contains(name) {
                return Err(format!("classes: {name:?} appears twice"));
            }
        }
        if dim == 0 || dim != self.layer.dim {
            return Err(format!("dim: {dim}, where layer.dim is {}", self.layer.dim));
        }
        let finite = |field: &str, values: &[f64]| match values.iter().position(|v| !v.is_finite()) {
            Some(i) => Err(format!("{field}[{i}] is {}, not a finite number", values[i])),
            None => Ok(()),
        };
        let length = |field: &str, values: &[f64], want: usize, of: &str| {
            if values.len() != want {
                return Err(format!("{field} has {} values for {want} {of}", values.len()));
            }
            finite(field, values)
        };
        if let Scaler::Standard { mean, std } = &self.scaler {
            length("scaler.mean", mean, dim, "features")?;
            length("scaler.std", std, dim, "features")?;
            if let Some(i) = std.iter().position(|&s| s <= 0.0) {
                return Err(format!("scaler.std[{i}] is {}; a standard deviation is positive", std[i]));
            }
        }
        let positive = |field: &str, v: f64| {
            if v > 0.0 && v.is_finite() {
                Ok(())
            } else {
                Err(format!("{field} is {v}, not a positive number"))
            }
        };
        match &self.model {
            Trained::Logistic { c, weights, intercepts } => {
                positive("model.c", *c)?;
                // Binary: the weights of class 1; multinomial: one row a class.
                let rows = if k == 2 { 1 } else { k };
                if weights.len() != rows {
                    return Err(format!("model.weights has {} rows for {k} classes (want {rows})", weights.len()));
                }
                for (i, w) in weights.iter().enumerate() {
                    length(&format!("model.weights[{i}]"), w, dim, "features")?;
                }
                length("model.intercepts", intercepts, rows, "rows of weights")?;
            }
            Trained::Svm { kernel, c, gamma, machines } => {
                positive("model.c", *c)?;
                let want = if k == 2 { 1 } else { k * (k - 1) / 2 };
                if machines.len() != want {
                    return Err(format!(
                        "model.machines has {} machines for {k} classes (one per pair: {want})",
                        machines.len()
                    ));
                }
                match (kernel, machines) {
                    (Kernel::Linear, Machines::Linear(planes)) => {
                        for (i, p) in planes.iter().enumerate() {
                            length(&format!("model.machines[{i}].w"), &p.w, dim, "features")?;
                            finite(&format!("model.machines[{i}].b"), &[p.b])?;
                        }
                    }
                    (Kernel::Rbf, Machines::Kernel(svms)) => {
                        positive("model.gamma", gamma.unwrap_or(f64::NAN))?;
                        for (i, m) in svms.iter().enumerate() {
                            let r = RbfMachine::of(m).map_err(|e| format!("model.machines[{i}]: {e}"))?;
                            if r.dim != dim {
                                return Err(format!(
                                    "model.machines[{i}]: support vectors of {} values for {dim} features",
                                    r.dim
                                ));
                            }
                            positive(&format!("model.machines[{i}]'s kernel width"), r.eps)?;
                            finite(&format!("model.machines[{i}].rho"), &[r.rho])?;
                            finite(&format!("model.machines[{i}].alpha"), &r.alpha)?;
                            r.support
                                .iter()
                                .try_for_each(|s| finite(&format!("model.machines[{i}]'s support vectors"), s))?;
                        }
                    }
                    _ => return Err(format!("model.machines are not {kernel} machines")),
                }
            }
            Trained::Knn { k: neighbours, rows, labels } => {
                let whole = rows.dim == dim && rows.values.len() == labels.len() * rows.dim;
                if !whole || *neighbours == 0 || *neighbours > labels.len() || labels.iter().any(|&l| l >= k) {
                    return Err(format!(
                        "model: its knn rows, labels and k do not agree ({} values of dim {}, {} labels, k {neighbours})",
                        rows.values.len(),
                        rows.dim,
                        labels.len()
                    ));
                }
                if let Some(i) = rows.values.iter().position(|v| !v.is_finite()) {
                    return Err(format!("model.rows: value {i} is {}, not a finite number", rows.values[i]));
                }
            }
        }
        Ok(())
    }

    /// Reads the classifier's feature column from `file` and checks that it
    /// comes from the same backbone and layer: features of another model or
    /// layer would be scored without a word otherwise.
    pub fn load_compatible(&self, file: &Path, allow: Allow, notes: &mut dyn FnMut(&str)) -> Result<Data> {
        let data = Data::load(file, Some(&self.feature_column), allow.partial, notes)?;
        if data.x.ncols() != self.dim {
            return Err(Error::DimensionMismatch {
                file: file.to_owned(),
                column: self.feature_column.clone(),
                found: data.x.ncols(),
                fitted: self.dim,
            });
        }
        if !allow.mismatch {
            if data.backbone_sha256 != self.backbone.sha256 {
                return Err(Error::OtherBackbone {
                    file: file.to_owned(),
                    found_file: data.backbone_file.clone(),
                    found_sha256: data.backbone_sha256.clone(),
                    fitted_file: self.backbone.file.clone(),
                    fitted_sha256: self.backbone.sha256.clone(),
                });
            }
            if data.layer != self.layer {
                return Err(Error::OtherLayer {
                    file: file.to_owned(),
                    column: self.feature_column.clone(),
                    found: Box::new(data.layer.clone()),
                    fitted: Box::new(self.layer.clone()),
                });
            }
        }
        Ok(data)
    }

    /// Per-class scores of raw (unscaled) rows, scaled a block at a time:
    /// a large file is never held twice.
    pub fn scores(&self, x: ArrayView2<f32>) -> Array2<f64> {
        let k = self.classes.len();
        crate::model::by_blocks(x, k, |xb| self.model.scores(self.scaler.transform(xb).view(), k))
    }

    pub fn predict(&self, x: ArrayView2<f32>) -> Vec<usize> {
        self.model.classes_of(&self.scores(x))
    }

    /// The class of each image of raw rows that come `views` to an image,
    /// as [`Classifier::per_image`] gives it, computed a block of images at
    /// a time so that the scores held stay small (rows x classes doubles
    /// for the whole file is 800 MB at 10,000 rows and classes).
    pub fn classes_per_image(&self, x: ArrayView2<f32>, views: usize) -> Vec<usize> {
        const SCORES_HELD: usize = 1 << 21;
        let views = views.max(1);
        let block = (SCORES_HELD / self.classes.len().max(1) / views).max(1) * views;
        x.axis_chunks_iter(ndarray::Axis(0), block).flat_map(|xb| self.per_image(xb, views).1).collect()
    }

    /// Per-image class scores and classes of raw rows that come `views` to
    /// an image (consecutive): the mean of its views' scores, and the class
    /// of the highest mean. One view is [`Classifier::scores`] and
    /// [`Classifier::predict`].
    pub fn per_image(&self, x: ArrayView2<f32>, views: usize) -> (Array2<f64>, Vec<usize>) {
        let scores = self.scores(x);
        if views <= 1 {
            let classes = self.model.classes_of(&scores);
            return (scores, classes);
        }
        let images = scores.nrows() / views;
        let mean = Array2::from_shape_fn((images, scores.ncols()), |(i, c)| {
            (0..views).map(|v| scores[[i * views + v, c]]).sum::<f64>() / views as f64
        });
        // The mean of an SVM's votes is no vote: the highest mean wins,
        // its confidences breaking ties.
        let classes = crate::model::argmax_rows(&mean);
        (mean, classes)
    }
}
