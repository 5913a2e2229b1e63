use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use classify::{scale, Allow, ClassWeight, Classifier, FitOptions, Kernel, Metric, ModelKind, Penalty};

const PROG: &str = "classify";

/// Fit a logistic regression or an SVM on a feature file written by extract,
/// and score or predict other feature files with it.
#[derive(Parser)]
#[command(version, arg_required_else_help = true)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Fit a classifier on a feature file and save it
    Fit {
        /// Training feature file, or a folder of parts (extract --shard), local or s3://
        #[arg(long, default_value = "features/train.parquet")]
        train: PathBuf,
        /// Where to save the classifier
        #[arg(long, default_value = "models/classifier.json")]
        out: PathBuf,
        #[arg(long, value_parser = cli::choice::<ModelKind>(ModelKind::NAMES), default_value_t = ModelKind::Logistic)]
        model: ModelKind,
        /// SVM kernel [default: linear]
        #[arg(long, value_parser = cli::choice::<Kernel>(Kernel::NAMES))]
        kernel: Option<Kernel>,
        /// Inverse regularization strength, as scikit-learn's C: auto (17 values 1e-4..1e4 chosen by cross-validation, --cv K or 5 folds), a value, or a comma list with --cv
        #[arg(long = "C", default_value = "auto")]
        c: Penalty,
        /// RBF kernel width, as scikit-learn's gamma; a comma list with --cv; scale is 1 / (D * var(X)) [default: scale]
        #[arg(long, value_delimiter = ',')]
        gamma: Vec<f64>,
        /// Neighbours of --model knn (cosine similarity on the scaled features); a comma list with --cv [default: 5]
        #[arg(long, value_delimiter = ',')]
        k: Vec<usize>,
        /// Feature column; may be left out when the file has only one [default: the only column]
        #[arg(long)]
        layer: Option<String>,
        /// Feature scaling, fitted on the training file and saved with the classifier
        #[arg(long, value_parser = cli::choice::<scale::Kind>(scale::Kind::NAMES), default_value_t = scale::Kind::Standard)]
        scale: scale::Kind,
        /// Weigh each class by n / (classes x its rows), as scikit-learn's class_weight="balanced", or all alike
        #[arg(long, value_parser = cli::choice::<ClassWeight>(ClassWeight::NAMES), default_value_t = ClassWeight::None)]
        class_weight: ClassWeight,
        /// Pick C (and gamma) by stratified K-fold cross-validation
        #[arg(long)]
        cv: Option<usize>,
        /// What --cv maximizes
        #[arg(long, value_parser = cli::choice::<Metric>(Metric::NAMES), default_value_t = Metric::Accuracy)]
        cv_metric: Metric,
        /// Read a folder of parts with some missing
        #[arg(long)]
        allow_partial: bool,
        /// Cross-validation prints a line per candidate once it has run this many seconds (0: from the first)
        #[arg(long, default_value_t = 2.0)]
        progress_after: f64,
    },
    /// Accuracy, per-class precision/recall/F1 and the confusion matrix on a labeled feature file
    Score {
        /// Feature file, or a folder of parts
        file: PathBuf,
        #[arg(long, default_value = "models/classifier.json")]
        classifier: PathBuf,
        /// Print one JSON object instead of tables
        #[arg(long)]
        json: bool,
        /// Score features from another backbone or layer than the classifier's
        #[arg(long)]
        allow_mismatch: bool,
        /// Also write a self-contained HTML report (metrics, confusion grid, image gallery)
        #[arg(long)]
        report: Option<PathBuf>,
        /// Most images in the report's gallery (wrong ones first)
        #[arg(long, default_value_t = 500)]
        report_limit: usize,
        /// Read a folder of parts with some missing
        #[arg(long)]
        allow_partial: bool,
    },
    /// Predicted class and per-class scores for every row of a feature file
    Predict {
        /// Feature file, or a folder of parts
        file: PathBuf,
        /// OUT.csv or OUT.parquet
        #[arg(long)]
        out: PathBuf,
        #[arg(long, default_value = "models/classifier.json")]
        classifier: PathBuf,
        #[arg(long)]
        allow_mismatch: bool,
        /// Read a folder of parts with some missing
        #[arg(long)]
        allow_partial: bool,
    },
    /// Near-duplicates inside TRAIN and between TRAIN and VAL, likely wrong labels, classes hard to tell apart
    Inspect {
        /// Training feature file, or a folder of parts
        train: PathBuf,
        /// A second file (validation, test) searched for copies of training images
        val: Option<PathBuf>,
        /// Feature column; may be left out when the file has only one [default: the only column]
        #[arg(long)]
        layer: Option<String>,
        /// Pairs at or above this cosine (of the standardized features) are near-duplicates
        #[arg(long, default_value_t = 0.98)]
        threshold: f64,
        /// Nearest neighbours that judge each row's label
        #[arg(long, default_value_t = 10)]
        k: usize,
        /// Print one JSON object (duplicates, suspect_labels, confusable_classes) instead of text
        #[arg(long)]
        json: bool,
        /// Also write a self-contained HTML page of the findings with thumbnails
        #[arg(long)]
        report: Option<PathBuf>,
    },
    /// Write the backbone and the classifier as one ONNX model (image batch in; label and scores out)
    Export {
        /// The saved classifier
        #[arg(long, default_value = "models/classifier.json")]
        classifier: PathBuf,
        /// The backbone the classifier's features came from, as extract --model took it (checked by sha256)
        #[arg(long)]
        model: backbone::ModelSpec,
        /// The ONNX file to write
        #[arg(long, required_unless_present = "web")]
        out: Option<PathBuf>,
        /// What the model takes: tensor (the preprocessed float batch), pixels (one uint8 [height, width, 3] RGB image of any size, preprocessed inside the graph) or pixel-batch (uint8 [N, height, width, 3]) [default: tensor; pixels with --web]
        #[arg(long, value_parser = cli::choice::<classify::export::Input>(classify::export::Input::NAMES))]
        input: Option<classify::export::Input>,
        /// Also write a static web page into this folder that classifies images in the browser (the pixels model, onnxruntime-web, index.html)
        #[arg(long, value_name = "DIR")]
        web: Option<PathBuf>,
    },
}

fn main() -> ExitCode {
    let args: Cli = match cli::parse(PROG) {
        Ok(args) => args,
        Err(code) => return code,
    };
    match run(args.command) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            let hint = match &e {
                classify::Error::Backbone(e) => cli::model_hint(e),
                _ => None,
            };
            cli::fail(PROG, &e, hint)
        }
    }
}

fn run(command: Command) -> classify::Result<()> {
    // The library's notes are lines on stderr; results go to stdout.
    let mut note = |line: &str| eprintln!("{line}");
    match command {
        Command::Fit {
            train,
            out,
            model,
            kernel,
            c,
            gamma,
            k,
            layer,
            scale,
            class_weight,
            cv,
            cv_metric,
            allow_partial,
            progress_after,
        } => {
            let quiet = if progress_after.is_finite() { progress_after.clamp(0.0, 1e6) } else { 1e6 };
            let opts = FitOptions {
                train,
                out,
                model,
                kernel,
                c,
                gamma,
                k,
                layer,
                scale,
                class_weight,
                cv,
                cv_metric,
                allow_partial,
                quiet_for: std::time::Duration::from_secs_f64(quiet),
            }
            .check()?;
            let report = classify::fit(&opts, &mut note)?;
            for w in report.warnings() {
                eprintln!("{PROG}: warning: {w}");
            }
            cli::emit(PROG, &report.to_text());
        }
        Command::Score { file, classifier, json, allow_mismatch, report, report_limit, allow_partial } => {
            if let Some(out) = &report {
                atomic::check_destination(out, &[features_in(&file), classifier_in(&classifier)])?;
            }
            let c = Classifier::load(&classifier)?;
            let scored =
                classify::score(&c, &file, Allow { mismatch: allow_mismatch, partial: allow_partial }, &mut note)?;
            for w in &scored.warnings {
                eprintln!("{PROG}: warning: {w}");
            }
            if let Some(out) = report {
                let w = classify::report::write(&scored, &c, &file, &out, report_limit)?;
                let missing = if w.missing > 0 { format!(", {} images not found", w.missing) } else { String::new() };
                eprintln!("wrote report {} ({} images{missing})", w.path.display(), w.cards);
            }
            if json {
                cli::emit(PROG, &format!("{}\n", scored.report.to_json()));
            } else {
                cli::emit(PROG, &scored.report.to_table());
            }
        }
        Command::Predict { file, out, classifier, allow_mismatch, allow_partial } => {
            atomic::check_destination(&out, &[features_in(&file), classifier_in(&classifier)])?;
            let c = Classifier::load(&classifier)?;
            let n = classify::predict::predict(
                &c,
                &file,
                &out,
                Allow { mismatch: allow_mismatch, partial: allow_partial },
                &mut note,
            )?;
            eprintln!("wrote {n} predictions to {}", out.display());
        }
        Command::Inspect { train, val, layer, threshold, k, json, report } => {
            if let Some(out) = &report {
                let val_in = val.as_deref().map(features_in);
                atomic::check_destination(
                    out,
                    &[Some(features_in(&train)), val_in].into_iter().flatten().collect::<Vec<_>>(),
                )?;
            }
            let opts = classify::inspect::InspectOptions { train, val, layer, threshold, k };
            let found = classify::inspect::inspect(&opts, &mut note)?;
            if let Some(out) = report {
                let w = classify::inspect::write_report(&found, &out)?;
                let missing = if w.missing > 0 { format!(", {} images not found", w.missing) } else { String::new() };
                eprintln!("wrote report {} ({} images{missing})", w.path.display(), w.cards);
            }
            if json {
                cli::emit(PROG, &format!("{}\n", found.to_json()));
            } else {
                cli::emit(PROG, &found.to_text());
            }
        }
        Command::Export { classifier, model, out, input, web } => {
            let mut report = cli::download::reporter(PROG);
            let opts = classify::export::ExportOptions { classifier, model, out, input, web };
            let e = classify::export::export(&opts, &mut report)?;
            if let Some(out) = &e.out {
                eprintln!("wrote {} ({:.1} MB): outputs {}", out.display(), e.bytes as f64 / 1e6, e.outputs.join(", "));
            }
            if let Some(dir) = &e.web {
                eprintln!(
                    "wrote the page {}/index.html with its model and onnxruntime-web: serve the folder (python3 -m http.server -d {}) and open it",
                    dir.display(),
                    dir.display()
                );
            }
        }
    }
    Ok(())
}

/// The run's inputs, which no output may be (`atomic::check_destination`).
fn features_in(path: &std::path::Path) -> atomic::Input<'_> {
    atomic::Input::Path { what: "feature file", path }
}

fn classifier_in(path: &std::path::Path) -> atomic::Input<'_> {
    atomic::Input::Path { what: "classifier", path }
}
