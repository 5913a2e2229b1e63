use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::Parser;
use extract::{Device, Event, Options};
use featurefile::{Pool, Precision};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

const PROG: &str = "extract";

/// Run a ResNet50 ONNX model over an image folder (<root>/<class>/<image>)
/// and write the activations of the chosen layers to a Parquet feature file.
#[derive(Parser)]
#[command(version)]
struct Cli {
    /// Output feature file; a folder (ending in /) for a part per --shard task; or either in a bucket (s3://bucket/features/train/)
    #[arg(long, required_unless_present = "list_layers")]
    out: Option<PathBuf>,
    /// Image folder, or webdataset tar shards: a .tar, a folder of them, or a brace range (shards/{00000..00099}.tar); or either in a bucket (s3://bucket/prefix/) [default: data/<stem of --out>]
    #[arg(long)]
    images: Option<PathBuf>,
    /// Labels of tar samples: auto (the .cls member, else the first folder inside the tar, else none), cls, txt, json:FIELD, folder or none
    #[arg(long, default_value = "auto")]
    label_from: extract::dataset::LabelFrom,
    /// Tar samples' classes, one name per line in index order (timm's class_map); with it a --shard task reads only its own whole shards
    #[arg(long, value_name = "FILE")]
    class_map: Option<PathBuf>,
    /// ONNX file, PyTorch .pth or MindSpore .ckpt checkpoint, or named weights (torchvision:IMAGENET1K_V1, torchvision:IMAGENET1K_V2, mindspore:resnet50_224_new, onnx-zoo:resnet50-v1-12)
    #[arg(long, default_value = backbone::source::DEFAULT)]
    model: backbone::ModelSpec,
    /// Comma list of stem, layer1..layer4, avgpool, or raw ONNX tensor names
    #[arg(long, value_delimiter = ',', default_value = "avgpool")]
    layer: Vec<String>,
    /// Pooling of 4-D activations
    #[arg(long, value_parser = cli::choice::<Pool>(Pool::NAMES), default_value_t = Pool::Avg)]
    pool: Pool,
    /// auto, cpu, cuda, cuda:N or openvino; auto takes CUDA, else OpenVINO where its plugin is installed, else the CPU
    #[arg(long, default_value = "auto")]
    device: Device,
    /// Numbers the network computes in: fp16 converts it to float16 first (for GPUs' tensor cores; the input and the features stay float32), int8 quantizes it first (static QDQ, calibrated on --calibrate images of the folder)
    #[arg(long, value_parser = cli::choice::<Precision>(Precision::NAMES), default_value_t = Precision::Fp32)]
    precision: Precision,
    /// Images of the folder that int8's activation ranges are measured on [default: 64, or all the folder's where it has fewer]
    #[arg(long)]
    calibrate: Option<usize>,
    /// Folder int8 calibrates on: give the training folder when extracting its validation set, for one quantized model [default: --images]
    #[arg(long)]
    calibrate_on: Option<PathBuf>,
    /// int8's weight range: 7 (-64..64) keeps x86's u8 x s8 kernels without VNNI from saturating; auto: 7 on such a CPU, else 8
    #[arg(long, value_parser = ["auto", "7", "8"], default_value = "auto")]
    weight_bits: String,
    /// Rows per inference batch: images, or with --views K, K rows for each of batch/K images
    #[arg(long, default_value_t = 32)]
    batch: usize,
    /// Threads for decoding and for inference [default: all cores]
    #[arg(long)]
    threads: Option<usize>,
    /// Shorter side after resizing (torchvision V1 weights: 256, V2: 232) [default: the model's eval size, else 256]
    #[arg(long)]
    resize: Option<u32>,
    /// Center crop size [default: the model's eval size, else 224]
    #[arg(long)]
    crop: Option<u32>,
    /// Skip images of more pixels than this, before decoding them (PIL's limit)
    #[arg(long, default_value_t = images::DEFAULT_MAX_PIXELS)]
    max_pixels: u64,
    /// Skip image files of more bytes than this, before reading them
    #[arg(long, default_value_t = images::DEFAULT_MAX_BYTES)]
    max_bytes: u64,
    /// Decode every JPEG at full size (PIL's Image.open path); by default a JPEG of at least twice --resize on its shorter side is decoded at its 1/2, 1/4 or 1/8 scale, as PIL's draft does
    #[arg(long)]
    exact_decode: bool,
    /// Rows per image: view 0 is the eval transform, views 1..K-1 the tutorial's training transform (RandomResizedCrop, scale 0.08-1, ratio 3/4-4/3, then a left-right flip with p 0.5), in a view column
    #[arg(long, default_value_t = 1)]
    views: u32,
    /// Seeds the augmented views, with each image's path: the same seed gives the same file, sharded or not
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// This task's share of a cluster job: K/N (task K of N, 0-based), auto (Slurm array), auto/N (Kubernetes Indexed Job)
    #[arg(long)]
    shard: Option<extract::shard::ShardSpec>,
    /// Redo a part that already exists complete
    #[arg(long)]
    overwrite: bool,
    /// Print the layers found in --model, with shapes, and exit
    #[arg(long)]
    list_layers: bool,
    /// Seconds between progress lines when stderr is not a terminal (a Slurm log, nohup, CI); a terminal gets a bar
    #[arg(long, default_value_t = 10.0)]
    progress_every: f64,
}

fn main() -> ExitCode {
    images::install_panic_hook();
    let args: Cli = match cli::parse(PROG) {
        Ok(args) => args,
        Err(code) => return code,
    };
    let every = Duration::from_secs_f64(if args.progress_every.is_finite() {
        args.progress_every.clamp(0.0, 1e6)
    } else {
        10.0
    });
    if args.list_layers {
        let mut term = Terminal::new(every);
        return match extract::list_layers(&args.model, &mut |e| term.report(e)) {
            Ok(table) => {
                cli::emit(PROG, &table);
                ExitCode::SUCCESS
            }
            Err(e) => fail(e),
        };
    }
    let out = args.out.expect("clap requires --out");
    let cancel = Arc::new(AtomicBool::new(false));
    let flag = cancel.clone();
    // The first Ctrl-C lets the batch in flight finish (nothing is written);
    // a second one ends the process at once, as Ctrl-C usually does.
    let _ = ctrlc::set_handler(move || {
        if flag.swap(true, Ordering::SeqCst) {
            std::process::exit(130);
        }
        eprintln!("{PROG}: stopping after this batch (Ctrl-C again stops now)");
    });
    let opts = Options {
        images: args.images.unwrap_or_else(|| extract::default_images(&out)),
        label_from: args.label_from,
        class_map: args.class_map,
        out,
        model: args.model,
        layers: args.layer,
        pool: args.pool,
        device: args.device,
        precision: args.precision,
        calibrate: args.calibrate,
        calibrate_on: args.calibrate_on,
        weight_bits: match args.weight_bits.as_str() {
            "7" => Some(backbone::quantize::WeightBits::Seven),
            "8" => Some(backbone::quantize::WeightBits::Eight),
            _ => None, // auto: the CPU's
        },
        batch: args.batch,
        threads: args.threads.unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get())),
        resize: args.resize,
        crop: args.crop,
        max_pixels: args.max_pixels,
        max_bytes: args.max_bytes,
        exact_decode: args.exact_decode,
        views: args.views,
        seed: args.seed,
        shard: args.shard,
        overwrite: args.overwrite,
        cancel,
    };
    let mut term = Terminal::new(every);
    match opts.check().and_then(|opts| extract::run(&opts, &mut |e| term.report(e))) {
        Ok(summary) => {
            eprintln!("{summary}");
            ExitCode::SUCCESS
        }
        Err(extract::Error::Interrupted) => {
            eprintln!("{PROG}: interrupted; nothing written");
            ExitCode::from(130)
        }
        Err(e) => fail(e),
    }
}

fn fail(e: extract::Error) -> ExitCode {
    cli::fail(PROG, &e, hint(&e))
}

/// What in this repository mends an error (the library names no script).
fn hint(e: &extract::Error) -> Option<&'static str> {
    use extract::runtime::{Error as Runtime, InitError};
    match e {
        extract::Error::Runtime(Runtime::Init(InitError::NotFound(_))) => {
            Some("or run scripts/setup.sh, which installs it into .venv")
        }
        extract::Error::Runtime(Runtime::Cuda { .. }) => Some("scripts/setup.sh --gpu installs the GPU runtime"),
        extract::Error::Runtime(Runtime::NoOpenVino(_)) => Some("run scripts/setup.sh --openvino"),
        extract::Error::Model(e) => cli::model_hint(e),
        _ => None,
    }
}

/// What reaches the terminal of a run's events: lines on stderr, and while
/// images are decoded (and while weights download) a progress bar where
/// stderr is a terminal, else a line every `every` (a log is read later,
/// and a bar draws nothing there).
struct Terminal {
    bar: Option<ProgressBar>,
    log: Option<LogLines>,
    every: Duration,
    download: Box<dyn FnMut(backbone::download::DownloadEvent)>,
}

/// Progress as lines in a log: images done of the total, rate, time left.
struct LogLines {
    total: u64,
    done: u64,
    start: Instant,
    last: Instant,
}

impl LogLines {
    fn line(&self) -> String {
        let secs = self.start.elapsed().as_secs_f64();
        let rate = self.done as f64 / secs.max(1e-9);
        let left = if rate > 0.0 { (self.total - self.done.min(self.total)) as f64 / rate } else { f64::INFINITY };
        let eta = if left.is_finite() { format!("{:.0} s", left) } else { "unknown".to_string() };
        let pct = 100.0 * self.done as f64 / self.total.max(1) as f64;
        format!("{PROG}: {}/{} images ({pct:.1}%), {rate:.1} images/s, eta {eta}", self.done, self.total)
    }
}

impl Terminal {
    fn new(every: Duration) -> Self {
        Terminal { bar: None, log: None, every, download: Box::new(cli::download::reporter(PROG)) }
    }

    fn report(&mut self, e: Event) {
        match e {
            Event::Note(line) => self.line(line),
            Event::Warning(w) => self.line(&format!("{PROG}: warning: {w}")),
            Event::Skipped { path, error } => self.line(&format!("skipped {path}: {error}")),
            Event::Started { images } if !std::io::stderr().is_terminal() => {
                self.log = Some(LogLines { total: images, done: 0, start: Instant::now(), last: Instant::now() });
            }
            Event::Started { images } => {
                let bar = ProgressBar::with_draw_target(Some(images), ProgressDrawTarget::stderr());
                bar.set_style(
                    ProgressStyle::with_template("{bar:40} {pos}/{len} images  {per_sec}  eta {eta}")
                        .expect("valid template"),
                );
                self.bar = Some(bar);
            }
            Event::Progress { done } => {
                if let Some(b) = &self.bar {
                    b.inc(done);
                }
                if let Some(log) = &mut self.log {
                    log.done += done;
                    if log.last.elapsed() >= self.every && log.done < log.total {
                        log.last = Instant::now();
                        eprintln!("{}", log.line());
                    }
                }
            }
            Event::Finished => {
                if let Some(b) = self.bar.take() {
                    b.finish_and_clear();
                }
                self.log = None;
            }
            Event::Download(d) => (self.download)(d),
            Event::Runtime(message) => self.line(&format!("onnxruntime: {message}")),
        }
    }

    /// A line above the bar, which is drawn again below it.
    fn line(&self, text: &str) {
        match &self.bar {
            Some(b) => b.suspend(|| eprintln!("{text}")),
            None => eprintln!("{text}"),
        }
    }
}
