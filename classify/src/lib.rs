//! `classify`: fits a logistic regression or an SVM on a feature file written
//! by `extract`, saves it, and scores or predicts other feature files.

pub(crate) mod cv;
pub mod data;
pub mod export;
pub mod inspect;
pub(crate) mod linear_svm;
pub mod logistic;
pub mod metrics;
pub mod model;
pub mod predict;
pub mod report;
pub mod saved;
pub mod scale;
pub mod web;

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::time::Instant;

use featurefile::short_hash;
use ndarray::{ArrayView2, Axis};

pub use data::{Allow, Data};
/// The linear SVM's stopping rule (projected-gradient spread) and pass limit,
/// for comparison with LIBLINEAR's.
pub use metrics::{Metric, Report};
pub use model::{ClassWeight, Kernel, Params, SvmKernel, Trained};
pub use saved::Classifier;

/// Everything `classify` can refuse; each message is the one line a user sees.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    FeatureFile(#[from] featurefile::Error),
    #[error(transparent)]
    Store(#[from] store::Error),
    #[error("{}: {source}", .path.display())]
    Io { path: PathBuf, source: std::io::Error },
    /// A write that failed: the filesystem's error, or the encoder's
    /// (Parquet, CSV, JSON), kept as the source.
    #[error("{}: {source}", .path.display())]
    Write { path: PathBuf, source: Box<dyn std::error::Error + Send + Sync> },
    #[error("{}: no such classifier file (classify fit writes one)", .0.display())]
    NoClassifier(PathBuf),
    #[error(transparent)]
    Output(#[from] atomic::Refused),

    // Options, checked once before anything is read.
    #[error("--C needs at least one value")]
    NoC,
    #[error("--C values must be positive")]
    NonPositiveC,
    #[error("--gamma values must be positive")]
    NonPositiveGamma,
    #[error("--threshold {0} is not a cosine in (-1, 1]")]
    Threshold(f64),
    #[error("{}: features of another backbone or layer ({found}) than {}'s ({want}): inspect compares features of one model", .val.display(), .train.display())]
    InspectOtherFeatures { val: PathBuf, train: PathBuf, found: String, want: String },
    #[error("--k must be at least 1")]
    ZeroK,
    #[error("--model knn has no C: leave --C out (it picks --k by --cv when given several)")]
    CWithKnn,
    #[error("{option} applies to {applies}, not to --model {model}; leave it out")]
    NotForModel { option: &'static str, applies: &'static str, model: ModelKind },
    #[error("--class-weight balanced applies to logistic and svm; knn's neighbours vote alike")]
    ClassWeightWithKnn,
    #[error("--k {k} is larger than the {rows} training rows")]
    KLargerThanRows { k: usize, rows: usize },
    #[error("--cv needs at least 2 folds")]
    TooFewFolds,
    #[error("several --C/--gamma values need --cv K to choose between them")]
    SeveralWithoutCv,
    #[error("--out {}: use a .csv or .parquet file name", .0.display())]
    PredictFormat(PathBuf),

    // What the data allows.
    #[error("{}: no feature column {column:?} (it has {})", .file.display(), .available.join(", "))]
    NoSuchColumn { file: PathBuf, column: String, available: Vec<String> },
    #[error("{}: no feature columns", .0.display())]
    NoColumns(PathBuf),
    #[error("{}: several feature columns ({}); choose one with --layer", .file.display(), .available.join(", "))]
    SeveralColumns { file: PathBuf, available: Vec<String> },
    #[error("{}: {column} of {row} is not finite ({value})", .file.display())]
    NotFinite { file: PathBuf, column: String, row: String, value: f32 },
    #[error("{}: {present} labeled class{} in the file; fitting needs at least two", .file.display(), if *.present == 1 { "" } else { "es" })]
    TooFewClasses { file: PathBuf, present: usize },
    #[error("class {class:?} has {n} {unit}, fewer than the {k} folds of --cv {k}")]
    ClassSmallerThanFolds { class: String, n: usize, k: usize, unit: &'static str },
    #[error("{}: no labeled rows to score", .0.display())]
    NothingToScore(PathBuf),

    // A saved classifier, and whether a feature file fits it.
    #[error("{}: not a classifier file ({reason})", .path.display())]
    NotAClassifier { path: PathBuf, reason: String },
    #[error("{}: classifier format {found} is not supported (this tool reads format {supported})", .path.display())]
    ClassifierFormat { path: PathBuf, found: u32, supported: u32 },
    #[error("{}: {column} has {found} values per row; the classifier was fitted on {fitted}", .file.display())]
    DimensionMismatch { file: PathBuf, column: String, found: usize, fitted: usize },
    #[error("{}: features come from another model ({found_file} sha256 {}..) than the classifier's ({fitted_file} sha256 {}..); --allow-mismatch to score anyway", .file.display(), short_hash(.found_sha256), short_hash(.fitted_sha256))]
    OtherBackbone {
        file: PathBuf,
        found_file: String,
        found_sha256: String,
        fitted_file: String,
        fitted_sha256: String,
    },
    #[error("{}: column {column} is tensor {:?} pooled {}; the classifier was fitted on {:?} pooled {}; --allow-mismatch to score anyway", .file.display(), .found.tensor, .found.pool, .fitted.tensor, .fitted.pool)]
    OtherLayer {
        file: PathBuf,
        column: String,
        found: Box<featurefile::LayerInfo>,
        fitted: Box<featurefile::LayerInfo>,
    },

    #[error("fitting {params}: {reason}")]
    Fit { params: Params, reason: String },

    // Export.
    #[error("{}: the classifier does not record its images' preprocessing (fitted before classify recorded it); fit it again to export it", .0.display())]
    NoPreprocess(PathBuf),
    #[error("backbone: {0}")]
    Backbone(#[from] backbone::source::Error),
    #[error("backbone: {model} is {source}; export it again at opset {} or later", .source.to)]
    BackboneOpset { model: String, source: backbone::builder::OpsetChanged },
    #[error("{model} (sha256 {}..) is not the backbone the classifier was fitted with ({fitted_file} sha256 {}..)", short_hash(.sha256), short_hash(.fitted_sha256))]
    ExportOtherBackbone { model: String, sha256: String, fitted_file: String, fitted_sha256: String },
    #[error("the RBF SVM's kernel matrix for its largest pair of classes ({rows} rows) is {rows} x {rows} doubles, {}, over half the {} of memory available; --kernel linear or --model logistic grow with the rows, not their square", data::human_bytes(*.bytes), data::human_bytes(*.available))]
    KernelTooLarge { rows: usize, bytes: usize, available: usize },
    #[error("--web {}: {why}", .dir.display())]
    WebDir { dir: PathBuf, why: String },
    #[error("onnxruntime-web's {missing} is not in {}: run scripts/setup.sh --web (or set ORT_WEB_DIST to its dist folder)", .dir.display())]
    NoWebRuntime { dir: PathBuf, missing: String },
    #[error("--web needs --input pixels (the page feeds the model an image's pixels)")]
    WebNeedsPixels,
    #[error("export needs --out FILE, --web DIR, or both")]
    NoExportDestination,
}

impl Error {
    /// A failed read or write of `path`.
    pub(crate) fn io(path: &Path, source: std::io::Error) -> Self {
        Error::Io { path: path.to_owned(), source }
    }

    /// A whole-or-nothing write of `path` that failed.
    pub(crate) fn write<E>(path: &Path, e: atomic::WriteError<E>) -> Self
    where
        E: Into<Box<dyn std::error::Error + Send + Sync>>,
    {
        let source = match e {
            atomic::WriteError::Io(e) => e.into(),
            atomic::WriteError::Fill(e) => e.into(),
        };
        Error::Write { path: path.to_owned(), source }
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ModelKind {
    Logistic,
    Svm,
    Knn,
}

featurefile::named_choice!(ModelKind { Logistic => "logistic", Svm => "svm", Knn => "knn" });

/// `--C`: the values to fit (several need `--cv`), or `auto`: the
/// [`auto_grid`], chosen by cross-validation.
#[derive(Debug, Clone, PartialEq)]
pub enum Penalty {
    Auto,
    Given(Vec<f64>),
}

impl std::str::FromStr for Penalty {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        if s == "auto" {
            return Ok(Penalty::Auto);
        }
        s.split(',')
            .map(|v| v.trim().parse::<f64>())
            .collect::<std::result::Result<Vec<f64>, _>>()
            .map(Penalty::Given)
            .map_err(|_| format!("{s:?} is neither auto nor a comma list of numbers"))
    }
}

/// `--C auto`'s grid: 1e-4 to 1e4, two values a decade (17), to four
/// significant digits so that the table reads as the values are.
pub fn auto_grid() -> Vec<f64> {
    (0..=16).map(|k| format!("{:.3e}", 10f64.powf(-4.0 + k as f64 / 2.0)).parse().expect("a float")).collect()
}

/// `--C auto`'s folds when `--cv` is not given.
pub const AUTO_FOLDS: usize = 5;
/// Above this many labeled rows, `--C auto` without `--cv` scores the grid
/// on one stratified holdout (a fifth of the rows) rather than 5 folds.
pub const HOLDOUT_ROWS: usize = 20_000;

#[derive(Debug, Clone)]
pub struct FitOptions {
    pub train: PathBuf,
    pub out: PathBuf,
    pub model: ModelKind,
    /// The SVM's kernel; `None`: not given (linear). Refused with other models.
    pub kernel: Option<Kernel>,
    /// One value, several with `cv`, or the automatic grid.
    pub c: Penalty,
    /// RBF gamma; empty means scikit-learn's `scale`, 1 / (D * var(X)).
    pub gamma: Vec<f64>,
    /// kNN's neighbours: one value, or several with `cv`; empty: not given
    /// ([`DEFAULT_K`]). Refused with other models.
    pub k: Vec<usize>,
    pub layer: Option<String>,
    pub scale: scale::Kind,
    pub class_weight: ClassWeight,
    pub cv: Option<usize>,
    /// What cross-validation picks the best candidate by.
    pub cv_metric: Metric,
    /// Fit on the parts there are when some of a folder's are missing.
    pub allow_partial: bool,
    /// A cross-validation grid done within this time prints no progress lines.
    pub quiet_for: std::time::Duration,
}

/// kNN's neighbours when `--k` is not given.
pub const DEFAULT_K: usize = 5;

impl FitOptions {
    /// The SVM's kernel (linear unless given).
    pub fn kernel(&self) -> Kernel {
        self.kernel.unwrap_or(Kernel::Linear)
    }

    /// kNN's candidate k values ([`DEFAULT_K`] unless given).
    pub fn ks(&self) -> Vec<usize> {
        if self.k.is_empty() {
            vec![DEFAULT_K]
        } else {
            self.k.clone()
        }
    }
}

/// Fit options that passed [`FitOptions::check`]: what `fit` takes.
#[derive(Debug, Clone)]
pub struct ValidFitOptions(FitOptions);

impl std::ops::Deref for ValidFitOptions {
    type Target = FitOptions;
    fn deref(&self) -> &FitOptions {
        &self.0
    }
}

impl FitOptions {
    /// Checks what can be checked without reading the data, in one step, as
    /// linfa's `ParamGuard` does: a fit never starts on options it would
    /// refuse later.
    pub fn check(self) -> Result<ValidFitOptions> {
        atomic::check_destination(&self.out, &[atomic::Input::Path { what: "training features", path: &self.train }])?;
        if let Penalty::Given(c) = &self.c {
            if c.is_empty() {
                return Err(Error::NoC);
            }
            if c.iter().any(|&c| !(c > 0.0 && c.is_finite())) {
                return Err(Error::NonPositiveC);
            }
        }
        if self.gamma.iter().any(|&g| !(g > 0.0 && g.is_finite())) {
            return Err(Error::NonPositiveGamma);
        }
        if self.cv.is_some_and(|k| k < 2) {
            return Err(Error::TooFewFolds);
        }
        // An option of another model is a mistake, not a no-op: --kernel rbf
        // with logistic would fit a linear model without a word.
        let rbf = self.model == ModelKind::Svm && self.kernel() == Kernel::Rbf;
        if self.kernel.is_some() && self.model != ModelKind::Svm {
            return Err(Error::NotForModel { option: "--kernel", applies: "--model svm", model: self.model });
        }
        if !self.gamma.is_empty() && !rbf {
            return Err(Error::NotForModel {
                option: "--gamma",
                applies: "--model svm --kernel rbf",
                model: self.model,
            });
        }
        if !self.k.is_empty() && self.model != ModelKind::Knn {
            return Err(Error::NotForModel { option: "--k", applies: "--model knn", model: self.model });
        }
        let n_gamma = if rbf { self.gamma.len().max(1) } else { 1 };
        if self.model == ModelKind::Knn {
            if self.ks().contains(&0) {
                return Err(Error::ZeroK);
            }
            if matches!(self.c, Penalty::Given(_)) {
                return Err(Error::CWithKnn);
            }
            if self.class_weight == ClassWeight::Balanced {
                return Err(Error::ClassWeightWithKnn);
            }
        }
        let n_c = match (&self.c, self.model) {
            (_, ModelKind::Knn) => self.ks().len(),
            (Penalty::Given(c), _) => c.len(),
            (Penalty::Auto, _) => 1, // the grid brings its own validation
        };
        if n_c * n_gamma > 1 && self.cv.is_none() {
            return Err(Error::SeveralWithoutCv);
        }
        Ok(ValidFitOptions(self))
    }
}

/// What `fit` reports: the cross-validation table, if any, and the summary.
#[derive(Debug, Clone)]
pub struct FitReport {
    pub classifier: Classifier,
    pub out: PathBuf,
    /// (params, mean of the metric over the folds) per candidate, when cross-validating.
    pub cv: Vec<(Params, f64)>,
    pub cv_metric: Metric,
    pub ignored_unlabeled: usize,
}

impl FitReport {
    /// What the user must know about the fit, one line each (stderr).
    pub fn warnings(&self) -> Vec<String> {
        let mut w = Vec::new();
        if self.ignored_unlabeled > 0 {
            w.push(format!("{} unlabeled rows ignored", self.ignored_unlabeled));
        }
        if !self.classifier.converged {
            w.push(format!(
                "{} stopped at its iteration limit before converging; the saved classifier is an approximation (\"converged\": false)",
                self.classifier.params()
            ));
        }
        w
    }

    pub fn to_text(&self) -> String {
        let mut s = String::new();
        if !self.cv.is_empty() {
            let how = self.classifier.selection.as_ref().map_or("folds", |s| {
                if s.validation == "holdout" {
                    "a holdout of a fifth of the rows"
                } else {
                    "folds"
                }
            });
            writeln!(s, "cross-validation (mean {} over {how})", self.cv_metric.words()).unwrap();
            // The candidate that was fitted: ties go to the first, and only it is marked.
            let used = self.cv.iter().position(|(params, _)| *params == self.classifier.params());
            for (i, (params, acc)) in self.cv.iter().enumerate() {
                let mark = if Some(i) == used { "  <- best" } else { "" };
                writeln!(s, "  {:<40} {acc:.4}{mark}", params.to_string()).unwrap();
            }
        }
        let c = &self.classifier;
        let weighted = if c.class_weight == ClassWeight::Balanced { " with balanced class weights" } else { "" };
        writeln!(
            s,
            "fitted {}{weighted} on {} rows x {} ({}), {} classes: train accuracy {:.4} in {:.2} s -> {}",
            c.params(),
            c.train_rows,
            c.dim,
            c.feature_column,
            c.classes.len(),
            c.train_accuracy,
            c.fit_seconds,
            self.out.display()
        )
        .unwrap();
        s
    }
}

/// The models to fit: one, or the grid `--cv` chooses from, for each of the
/// `c_values`. `x` is the scaled training matrix (scikit-learn's
/// `gamma="scale"` is computed on it).
fn candidates(opts: &FitOptions, c_values: &[f64], x: ArrayView2<f32>) -> Vec<Params> {
    let gammas = if opts.gamma.is_empty() { vec![model::scale_gamma(x)] } else { opts.gamma.clone() };
    if opts.model == ModelKind::Knn {
        return opts.ks().into_iter().map(|k| Params::Knn { k }).collect();
    }
    let mut candidates = Vec::new();
    for &c in c_values {
        match (opts.model, opts.kernel()) {
            (ModelKind::Logistic, _) => candidates.push(Params::Logistic { c }),
            (ModelKind::Knn, _) => unreachable!("knn's candidates are its k values, returned above"),
            (ModelKind::Svm, Kernel::Linear) => candidates.push(Params::Svm { kernel: SvmKernel::Linear, c }),
            (ModelKind::Svm, Kernel::Rbf) => {
                candidates.extend(gammas.iter().map(|&gamma| Params::Svm { kernel: SvmKernel::Rbf { gamma }, c }))
            }
        }
    }
    candidates
}

/// `notes` hears what is worth a line before a long read (see [`Data::load`]).
pub fn fit(opts: &ValidFitOptions, notes: &mut dyn FnMut(&str)) -> Result<FitReport> {
    let mut data = Data::load(&opts.train, opts.layer.as_deref(), opts.allow_partial, notes)?;
    let rows = data.labeled();
    let ignored_unlabeled = data.len() - rows.len();
    let y: Vec<usize> = rows.iter().map(|&i| data.y[i].expect("labeled")).collect();
    let mut counts = vec![0usize; data.classes.len()];
    for &c in &y {
        counts[c] += 1;
    }
    let present = counts.iter().filter(|&&n| n > 0).count();
    if present < 2 {
        return Err(Error::TooFewClasses { file: opts.train.clone(), present });
    }
    // Folds deal out images (an image's views stay together): they count.
    let views = data.views;
    let images: Vec<usize> = counts.iter().map(|&n| n / views).collect();
    let unit = if views > 1 { "images" } else { "examples" };
    if let Some(k) = opts.cv {
        if let Some((i, &n)) = images.iter().enumerate().find(|(_, &n)| n > 0 && n < k) {
            return Err(Error::ClassSmallerThanFolds { class: data.classes[i].clone(), n, k, unit });
        }
    }
    let smallest = images.iter().copied().filter(|&n| n > 0).min().expect("two classes present");
    let (c_values, validation) = match &opts.c {
        _ if opts.model == ModelKind::Knn => (Vec::new(), opts.cv.map(cv::Validation::Folds)),
        Penalty::Given(c) => (c.clone(), opts.cv.map(cv::Validation::Folds)),
        Penalty::Auto => match opts.cv {
            Some(k) => (auto_grid(), Some(cv::Validation::Folds(k))),
            // The holdout is fold 0 of 5: every class must have a row in each fold.
            None if y.len() > HOLDOUT_ROWS && smallest >= AUTO_FOLDS => (auto_grid(), Some(cv::Validation::Holdout)),
            None if smallest >= 2 => {
                let k = AUTO_FOLDS.min(smallest);
                if k < AUTO_FOLDS {
                    notes(&format!(
                        "--C auto: {k} folds, as the smallest class has {smallest} {}",
                        if views > 1 { "images" } else { "rows" }
                    ));
                }
                (auto_grid(), Some(cv::Validation::Folds(k)))
            }
            None => {
                notes(&format!(
                    "--C auto: a class has {smallest} {}, too few to cross-validate; fitting C=1",
                    if views > 1 { "image" } else { "row" }
                ));
                (vec![1.0], None)
            }
        },
    };
    // Classes with no example in the file cannot be learnt; the model is fitted
    // on the ones present and maps back to the file's class indices.
    let kept: Vec<usize> = (0..counts.len()).filter(|&c| counts[c] > 0).collect();
    let classes: Vec<String> = kept.iter().map(|&c| data.classes[c].clone()).collect();
    let y: Vec<usize> = y.iter().map(|c| kept.iter().position(|k| k == c).expect("present")).collect();
    if opts.model == ModelKind::Svm && opts.kernel() == Kernel::Rbf {
        let mut sizes: Vec<usize> = kept.iter().map(|&c| counts[c]).collect();
        sizes.sort_unstable_by(|a, b| b.cmp(a));
        model::check_kernel_fits(sizes[0] + sizes[1], images::memory_available())?;
    }
    // The training matrix, held once: the file's rows when all are labeled,
    // scaled where they are.
    let mut x = if rows.len() == data.len() { std::mem::take(&mut data.x) } else { data.x.select(Axis(0), &rows) };
    let scaler = scale::Scaler::fit(opts.scale, x.view());
    // Cross-validation scales each fold by its own statistics, from raw rows.
    let x_raw = validation.map(|_| x.clone());
    scaler.transform_in_place(x.view_mut());
    let candidates = candidates(opts, &c_values, x.view());
    let n_classes = classes.len();

    let (params, cv, selection) = match (validation, x_raw) {
        (Some(validation), Some(x_raw)) => {
            let how = cv::How {
                validation,
                scaling: opts.scale,
                gamma_scale: opts.gamma.is_empty(),
                weight: opts.class_weight,
                metric: opts.cv_metric,
                views,
                quiet_for: opts.quiet_for,
            };
            let table = cv::cross_validate(&candidates, x_raw.view(), &y, n_classes, &how, notes)?;
            let best = table.rows.iter().find(|(s, _)| *s == table.best).expect("the best is a row").1;
            let selection = saved::Selection {
                validation: validation.to_string(),
                metric: opts.cv_metric.to_string(),
                candidates: candidates.len(),
                score: best,
            };
            (table.best, table.rows, Some(selection))
        }
        _ => (candidates[0], Vec::new(), None),
    };

    let start = Instant::now();
    let fitted = Trained::fit(params, x.view(), &y, n_classes, opts.class_weight)?;
    let fit_seconds = start.elapsed().as_secs_f64();
    let pred = fitted.model.predict(x.view(), n_classes);
    let train_accuracy = pred.iter().zip(&y).filter(|(p, t)| p == t).count() as f64 / y.len() as f64;
    let mut classifier = Classifier::new(fitted, classes, &data, scaler, train_accuracy, fit_seconds, y.len());
    classifier.class_weight = opts.class_weight;
    classifier.selection = selection;
    classifier.save(&opts.out)?;
    Ok(FitReport { classifier, out: opts.out.clone(), cv, cv_metric: opts.cv_metric, ignored_unlabeled })
}

/// A scored file: the rows' true and predicted classes, by name.
pub struct Scored {
    pub data: Data,
    /// Classifier's classes, then any the file has that the classifier does not.
    pub classes: Vec<String>,
    /// Per labeled image: (its first row, true class, predicted class), into `classes`.
    pub rows: Vec<(usize, usize, usize)>,
    pub report: Report,
    /// What the person scoring must know, one line each.
    pub warnings: Vec<String>,
}

/// Scores every labeled image of `file` (a file of views: the mean of each
/// image's views' scores). Classes are matched by name, so the file's class
/// indices may be ordered differently from the training file's.
pub fn score(classifier: &Classifier, file: &Path, allow: Allow, notes: &mut dyn FnMut(&str)) -> Result<Scored> {
    let data = classifier.load_compatible(file, allow, notes)?;
    let mut classes = classifier.classes.clone();
    for c in &data.classes {
        if !classes.contains(c) {
            classes.push(c.clone());
        }
    }
    // One verdict per image: the mean of its views' scores (one view: its own).
    let k = data.views;
    let labeled: Vec<usize> = data.first_views().into_iter().filter(|&i| data.y[i].is_some()).collect();
    if labeled.is_empty() {
        return Err(Error::NothingToScore(file.to_owned()));
    }
    let pred = if labeled.len() * k == data.len() {
        classifier.classes_per_image(data.x.view(), k)
    } else {
        let rows: Vec<usize> = labeled.iter().flat_map(|&i| i..i + k).collect();
        classifier.classes_per_image(data.x.select(Axis(0), &rows).view(), k)
    };
    let rows: Vec<(usize, usize, usize)> = labeled
        .iter()
        .zip(pred)
        .map(|(&i, p)| {
            let name = &data.classes[data.y[i].expect("labeled")];
            (i, classes.iter().position(|c| c == name).expect("added above"), p)
        })
        .collect();
    let truth: Vec<usize> = rows.iter().map(|r| r.1).collect();
    let predicted: Vec<usize> = rows.iter().map(|r| r.2).collect();
    let report = Report::new(classes.clone(), &truth, &predicted, data.len() / k - labeled.len());
    let mut warnings = Vec::new();
    let known = classifier.classes.len();
    if truth.iter().all(|&t| t >= known) {
        let mut theirs: Vec<&str> = truth.iter().map(|&t| classes[t].as_str()).collect();
        theirs.sort_unstable();
        theirs.dedup();
        warnings.push(format!(
            "none of {}'s classes ({}) is one the classifier tells apart ({}): every row counts as wrong; is it the right file?",
            file.display(),
            list_some(&theirs),
            list_some(&classifier.classes.iter().map(String::as_str).collect::<Vec<_>>())
        ));
    }
    Ok(Scored { data, classes, rows, report, warnings })
}

/// Names for a message: the first few, then how many more.
fn list_some(names: &[&str]) -> String {
    const SHOWN: usize = 5;
    match names.len().checked_sub(SHOWN) {
        Some(more @ 1..) => format!("{}, and {more} more", names[..SHOWN].join(", ")),
        _ => names.join(", "),
    }
}
