use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use clap::{Parser, ValueEnum};
use extract::{preprocess, Device, Options};
use featurefile::Pool;

/// Run a ResNet50 ONNX model over an image folder (<root>/<class>/<image>)
/// and write the activations of the chosen layers to a Parquet feature file.
#[derive(Parser)]
#[command(version)]
struct Cli {
    /// Output feature file
    #[arg(long, required_unless_present = "list_layers")]
    out: Option<PathBuf>,
    /// Image folder [default: data/<stem of --out>]
    #[arg(long)]
    images: Option<PathBuf>,
    /// ONNX model
    #[arg(long, default_value = "models/resnet50.onnx")]
    model: PathBuf,
    /// Comma list of stem, layer1..layer4, avgpool, or raw ONNX tensor names
    #[arg(long, value_delimiter = ',', default_value = "avgpool")]
    layer: Vec<String>,
    /// Pooling of 4-D activations
    #[arg(long, value_enum, default_value_t = PoolArg::Avg)]
    pool: PoolArg,
    /// auto, cpu, cuda or cuda:N
    #[arg(long, default_value = "auto")]
    device: Device,
    /// Images per inference batch
    #[arg(long, default_value_t = 32)]
    batch: usize,
    /// Threads for decoding and for inference [default: all cores]
    #[arg(long)]
    threads: Option<usize>,
    /// Shorter side after resizing (torchvision V1 weights: 256, V2: 232)
    #[arg(long, default_value_t = 256)]
    resize: u32,
    /// Center crop size
    #[arg(long, default_value_t = 224)]
    crop: u32,
    /// Print the layers found in --model, with shapes, and exit
    #[arg(long)]
    list_layers: bool,
}

#[derive(Clone, Copy, ValueEnum)]
enum PoolArg {
    Avg,
    Max,
    Avgmax,
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) if !e.use_stderr() => e.exit(), // --help, --version
        Err(e) => {
            // clap's first line says what is wrong; keep the error to that line.
            let msg = e.to_string();
            let line = msg.lines().next().unwrap_or_default().trim_start_matches("error: ");
            eprintln!("extract: {line}");
            return ExitCode::from(2);
        }
    };
    if cli.list_layers {
        return match extract::list_layers(&cli.model) {
            Ok(table) => {
                emit(&table);
                ExitCode::SUCCESS
            }
            Err(e) => fail(e),
        };
    }
    let out = cli.out.expect("clap requires --out");
    let cancel = Arc::new(AtomicBool::new(false));
    let flag = cancel.clone();
    // A second Ctrl-C while the current batch finishes kills the process as usual.
    let _ = ctrlc::set_handler(move || {
        if flag.swap(true, Ordering::SeqCst) {
            std::process::exit(130);
        }
    });
    let opts = Options {
        images: cli.images.unwrap_or_else(|| extract::default_images(&out)),
        out,
        model: cli.model,
        layers: cli.layer,
        pool: match cli.pool {
            PoolArg::Avg => Pool::Avg,
            PoolArg::Max => Pool::Max,
            PoolArg::Avgmax => Pool::AvgMax,
        },
        device: cli.device,
        batch: cli.batch,
        threads: cli.threads.unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get())),
        preprocess: preprocess::Config { resize: cli.resize, crop: cli.crop, ..Default::default() },
        cancel,
    };
    match extract::run(&opts) {
        Ok(summary) => {
            eprintln!("{summary}");
            ExitCode::SUCCESS
        }
        Err(extract::Error::Interrupted) => {
            eprintln!("extract: interrupted; nothing written");
            ExitCode::from(130)
        }
        Err(e) => fail(e),
    }
}

fn fail(e: extract::Error) -> ExitCode {
    eprintln!("extract: {e}");
    ExitCode::FAILURE
}

/// Results go to stdout; a reader that stops early (`| head`) ends the run
/// quietly, as it does for any Unix filter.
fn emit(text: &str) {
    use std::io::Write;
    match std::io::stdout().lock().write_all(text.as_bytes()) {
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => std::process::exit(0),
        Err(e) => eprintln!("extract: stdout: {e}"),
        Ok(()) => {}
    }
}
