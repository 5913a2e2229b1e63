//! `classify`: fits a logistic regression or an SVM on a feature file written
//! by `extract`, saves it, and scores or predicts other feature files.

pub mod cv;
pub mod data;
pub mod linear_svm;
pub mod metrics;
pub mod model;
pub mod predict;
pub mod report;
pub mod saved;
pub mod scale;

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::time::Instant;

use ndarray::{Array2, Axis};

pub use data::Data;
pub use metrics::Report;
pub use model::{Kernel, Model, Spec};
pub use saved::Classifier;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    FeatureFile(#[from] featurefile::Error),
    #[error("{0}")]
    Input(String),
    #[error("fitting {0}")]
    Fit(String),
    #[error("{path}: {reason}")]
    Io { path: PathBuf, reason: String },
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Writes `out` whole or not at all: `fill` writes a temporary file beside
/// it, which is synced and renamed into place only when `fill` succeeds.
pub(crate) fn write_atomically(
    out: &Path,
    fill: impl FnOnce(&mut std::fs::File) -> std::result::Result<(), String>,
) -> Result<()> {
    let io = |reason: String| Error::Io { path: out.to_owned(), reason };
    let dir = match out.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    std::fs::create_dir_all(dir).map_err(|e| io(e.to_string()))?;
    let mut tmp = tempfile::Builder::new().suffix(".partial").tempfile_in(dir).map_err(|e| io(e.to_string()))?;
    fill(tmp.as_file_mut()).map_err(io)?;
    tmp.as_file().sync_all().map_err(|e| io(e.to_string()))?;
    // Temporary files are private (0600); the result is an ordinary file.
    featurefile::make_readable(tmp.as_file()).map_err(|e| io(e.to_string()))?;
    tmp.persist(out).map_err(|e| io(e.error.to_string()))?;
    Ok(())
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ModelKind {
    Logistic,
    Svm,
}

#[derive(Debug, Clone)]
pub struct FitOptions {
    pub train: PathBuf,
    pub out: PathBuf,
    pub model: ModelKind,
    pub kernel: Kernel,
    /// One value, or several with `cv`.
    pub c: Vec<f64>,
    /// RBF gamma; empty means scikit-learn's `scale`, 1 / (D * var(X)).
    pub gamma: Vec<f64>,
    pub layer: Option<String>,
    pub scale: scale::Kind,
    pub cv: Option<usize>,
}

/// What `fit` reports: the cross-validation table, if any, and the summary.
#[derive(Debug, Clone)]
pub struct FitReport {
    pub classifier: Classifier,
    pub out: PathBuf,
    /// (spec, mean accuracy) per candidate, when cross-validating.
    pub cv: Vec<(Spec, f64)>,
    pub ignored_unlabeled: usize,
}

impl FitReport {
    pub fn to_text(&self) -> String {
        let mut s = String::new();
        if !self.cv.is_empty() {
            writeln!(s, "cross-validation (mean accuracy over folds)").unwrap();
            let best = self.cv.iter().map(|(_, a)| *a).fold(f64::NEG_INFINITY, f64::max);
            for (spec, acc) in &self.cv {
                let mark = if *acc == best { "  <- best" } else { "" };
                writeln!(s, "  {:<40} {acc:.4}{mark}", spec.to_string()).unwrap();
            }
        }
        let c = &self.classifier;
        writeln!(
            s,
            "fitted {} on {} rows x {} ({}), {} classes: train accuracy {:.4} in {:.2} s -> {}",
            c.spec(),
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

fn candidates(opts: &FitOptions, x: &Array2<f64>) -> Result<Vec<Spec>> {
    if opts.c.iter().any(|&c| !(c > 0.0 && c.is_finite())) {
        return Err(Error::Input("--C values must be positive".into()));
    }
    if opts.gamma.iter().any(|&g| !(g > 0.0 && g.is_finite())) {
        return Err(Error::Input("--gamma values must be positive".into()));
    }
    let gammas = if opts.gamma.is_empty() {
        // scikit-learn's gamma="scale": 1 / (n_features * X.var()).
        let var = x.var(0.0);
        vec![if var > 0.0 { 1.0 / (x.ncols() as f64 * var) } else { 1.0 }]
    } else {
        opts.gamma.clone()
    };
    let mut specs = Vec::new();
    for &c in &opts.c {
        match (opts.model, opts.kernel) {
            (ModelKind::Logistic, _) => specs.push(Spec::Logistic { c }),
            (ModelKind::Svm, Kernel::Linear) => specs.push(Spec::Svm { kernel: Kernel::Linear, c, gamma: 0.0 }),
            (ModelKind::Svm, Kernel::Rbf) => {
                specs.extend(gammas.iter().map(|&gamma| Spec::Svm { kernel: Kernel::Rbf, c, gamma }))
            }
        }
    }
    if specs.len() > 1 && opts.cv.is_none() {
        return Err(Error::Input("several --C/--gamma values need --cv K to choose between them".into()));
    }
    Ok(specs)
}

pub fn fit(opts: &FitOptions) -> Result<FitReport> {
    let data = Data::load(&opts.train, opts.layer.as_deref())?;
    let rows = data.labeled();
    let ignored_unlabeled = data.len() - rows.len();
    let y: Vec<usize> = rows.iter().map(|&i| data.y[i].expect("labeled")).collect();
    let mut counts = vec![0usize; data.classes.len()];
    for &c in &y {
        counts[c] += 1;
    }
    let present = counts.iter().filter(|&&n| n > 0).count();
    if present < 2 {
        return Err(Error::Input(format!(
            "{}: {} labeled class{} in the file; fitting needs at least two",
            opts.train.display(),
            present,
            if present == 1 { "" } else { "es" }
        )));
    }
    if let Some(k) = opts.cv {
        if k < 2 {
            return Err(Error::Input("--cv needs at least 2 folds".into()));
        }
        if let Some((i, n)) = counts.iter().enumerate().find(|(_, &n)| n > 0 && n < k) {
            return Err(Error::Input(format!(
                "class {:?} has {n} examples, fewer than the {k} folds of --cv {k}",
                data.classes[i]
            )));
        }
    }
    // Classes with no example in the file cannot be learnt; the model is fitted
    // on the ones present and maps back to the file's class indices.
    let kept: Vec<usize> = (0..counts.len()).filter(|&c| counts[c] > 0).collect();
    let classes: Vec<String> = kept.iter().map(|&c| data.classes[c].clone()).collect();
    let y: Vec<usize> = y.iter().map(|c| kept.iter().position(|k| k == c).expect("present")).collect();
    let x_raw = data.x.select(Axis(0), &rows);
    let scaler = scale::Scaler::fit(opts.scale, &x_raw);
    let x = scaler.transform(&x_raw);
    let specs = candidates(opts, &x)?;
    let n_classes = classes.len();

    let mut cv = Vec::new();
    let spec = if let Some(k) = opts.cv {
        let folds = cv::stratified_folds(&y, n_classes, k);
        for &spec in &specs {
            let mut acc = 0.0;
            for f in 0..k {
                let train: Vec<usize> = (0..y.len()).filter(|&i| folds[i] != f).collect();
                let test: Vec<usize> = (0..y.len()).filter(|&i| folds[i] == f).collect();
                // Scaling statistics come from the training folds only.
                let sc = scale::Scaler::fit(opts.scale, &x_raw.select(Axis(0), &train));
                let xt = sc.transform(&x_raw.select(Axis(0), &train));
                let yt: Vec<usize> = train.iter().map(|&i| y[i]).collect();
                let m = Model::fit(spec, &xt, &yt, n_classes)?;
                let pred = m.predict(sc.transform(&x_raw.select(Axis(0), &test)).view(), n_classes);
                acc += test.iter().zip(&pred).filter(|(&i, &p)| y[i] == p).count() as f64 / test.len() as f64;
            }
            cv.push((spec, acc / k as f64));
        }
        // The best mean accuracy; ties go to the first (smallest C) candidate.
        cv.iter().fold(cv[0], |b, &c| if c.1 > b.1 { c } else { b }).0
    } else {
        specs[0]
    };

    let start = Instant::now();
    let model = Model::fit(spec, &x, &y, n_classes)?;
    let fit_seconds = start.elapsed().as_secs_f64();
    let pred = model.predict(x.view(), n_classes);
    let train_accuracy = pred.iter().zip(&y).filter(|(p, t)| p == t).count() as f64 / y.len() as f64;
    let classifier = Classifier::new(model, classes, &data, scaler, train_accuracy, fit_seconds, y.len());
    classifier.save(&opts.out)?;
    Ok(FitReport { classifier, out: opts.out.clone(), cv, ignored_unlabeled })
}

/// A scored file: the rows' true and predicted classes, by name.
pub struct Scored {
    pub data: Data,
    /// Classifier's classes, then any the file has that the classifier does not.
    pub classes: Vec<String>,
    /// Per labeled row: (row index, true class, predicted class), into `classes`.
    pub rows: Vec<(usize, usize, usize)>,
    pub report: Report,
}

/// Scores every labeled row of `file`. Classes are matched by name, so the
/// file's class indices may be ordered differently from the training file's.
pub fn score(classifier: &Classifier, file: &Path, allow_mismatch: bool) -> Result<Scored> {
    let data = classifier.load_compatible(file, allow_mismatch)?;
    let mut classes = classifier.classes.clone();
    for c in &data.classes {
        if !classes.contains(c) {
            classes.push(c.clone());
        }
    }
    let labeled = data.labeled();
    if labeled.is_empty() {
        return Err(Error::Input(format!("{}: no labeled rows to score", file.display())));
    }
    let pred = classifier.predict(&data.x.select(Axis(0), &labeled));
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
    let report = Report::new(classes.clone(), &truth, &predicted, data.len() - labeled.len());
    Ok(Scored { data, classes, rows, report })
}
