use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};
use classify::{scale, Classifier, FitOptions, Kernel, ModelKind};

/// Fit a logistic regression or an SVM on a feature file written by extract,
/// and score or predict other feature files with it.
#[derive(Parser)]
#[command(version)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Fit a classifier on a feature file and save it
    Fit {
        /// Training feature file
        #[arg(long, default_value = "features/train.parquet")]
        train: PathBuf,
        /// Where to save the classifier
        #[arg(long, default_value = "models/classifier.json")]
        out: PathBuf,
        #[arg(long, value_enum, default_value_t = ModelArg::Logistic)]
        model: ModelArg,
        /// SVM kernel
        #[arg(long, value_enum, default_value_t = KernelArg::Linear)]
        kernel: KernelArg,
        /// Inverse regularization strength, as scikit-learn's C; a comma list with --cv
        #[arg(long = "C", value_delimiter = ',', default_value = "1.0")]
        c: Vec<f64>,
        /// RBF kernel width [default: scale, 1 / (D * var(X))]; a comma list with --cv
        #[arg(long, value_delimiter = ',')]
        gamma: Vec<f64>,
        /// Feature column (may be left out when the file has only one)
        #[arg(long)]
        layer: Option<String>,
        /// Feature scaling, fitted on the training file and saved with the classifier
        #[arg(long, value_enum, default_value_t = ScaleArg::Standard)]
        scale: ScaleArg,
        /// Pick C (and gamma) by stratified K-fold cross-validation
        #[arg(long)]
        cv: Option<usize>,
    },
    /// Accuracy, per-class precision/recall/F1 and the confusion matrix on a labeled feature file
    Score {
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
    },
    /// Predicted class and per-class scores for every row of a feature file
    Predict {
        file: PathBuf,
        /// OUT.csv or OUT.parquet
        #[arg(long)]
        out: PathBuf,
        #[arg(long, default_value = "models/classifier.json")]
        classifier: PathBuf,
        #[arg(long)]
        allow_mismatch: bool,
    },
}

#[derive(Clone, Copy, ValueEnum)]
enum ModelArg {
    Logistic,
    Svm,
}

#[derive(Clone, Copy, ValueEnum)]
enum KernelArg {
    Linear,
    Rbf,
}

#[derive(Clone, Copy, ValueEnum)]
enum ScaleArg {
    Standard,
    L2,
    None,
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) if !e.use_stderr() => e.exit(), // --help, --version
        Err(e) => {
            // clap's first line says what is wrong; keep the error to that line.
            let msg = e.to_string();
            let line = msg.lines().next().unwrap_or_default().trim_start_matches("error: ");
            eprintln!("classify: {line}");
            return ExitCode::from(2);
        }
    };
    match run(cli.command) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("classify: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run(command: Command) -> classify::Result<()> {
    match command {
        Command::Fit { train, out, model, kernel, c, gamma, layer, scale, cv } => {
            let opts = FitOptions {
                train,
                out,
                model: match model {
                    ModelArg::Logistic => ModelKind::Logistic,
                    ModelArg::Svm => ModelKind::Svm,
                },
                kernel: match kernel {
                    KernelArg::Linear => Kernel::Linear,
                    KernelArg::Rbf => Kernel::Rbf,
                },
                c,
                gamma,
                layer,
                scale: match scale {
                    ScaleArg::Standard => scale::Kind::Standard,
                    ScaleArg::L2 => scale::Kind::L2,
                    ScaleArg::None => scale::Kind::None,
                },
                cv,
            };
            let report = classify::fit(&opts)?;
            if report.ignored_unlabeled > 0 {
                eprintln!("classify: warning: {} unlabeled rows ignored", report.ignored_unlabeled);
            }
            emit(&report.to_text());
        }
        Command::Score { file, classifier, json, allow_mismatch, report, report_limit } => {
            let c = Classifier::load(&classifier)?;
            let scored = classify::score(&c, &file, allow_mismatch)?;
            if let Some(out) = report {
                let w = classify::report::write(&scored, &c, &file, &out, report_limit)?;
                let missing = if w.missing > 0 { format!(", {} images not found", w.missing) } else { String::new() };
                eprintln!("wrote report {} ({} images{missing})", w.path.display(), w.cards);
            }
            if json {
                emit(&format!("{}\n", scored.report.to_json()));
            } else {
                emit(&scored.report.to_table());
            }
        }
        Command::Predict { file, out, classifier, allow_mismatch } => {
            let c = Classifier::load(&classifier)?;
            let n = classify::predict::predict(&c, &file, &out, allow_mismatch)?;
            eprintln!("wrote {n} predictions to {}", out.display());
        }
    }
    Ok(())
}

/// Results go to stdout; a reader that stops early (`| head`) ends the run
/// quietly, as it does for any Unix filter.
fn emit(text: &str) {
    use std::io::Write;
    match std::io::stdout().lock().write_all(text.as_bytes()) {
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => std::process::exit(0),
        Err(e) => eprintln!("classify: stdout: {e}"),
        Ok(()) => {}
    }
}
