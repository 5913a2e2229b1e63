//! `extract`: runs a ResNet50 ONNX model over an image folder and writes the
//! activations of the chosen layers to a feature file (see the `featurefile`
//! crate for the contract).
//!
//! A run is planned ([`plan`]: model, layers, images), resumed or not
//! ([`resume`]), then decoded ([`pipeline`]) one batch ahead of inference
//! and writing ([`sink`]).

pub mod dataset;
pub mod open;
mod options;
mod pipeline;
mod plan;
pub(crate) mod pool;
mod precision;
pub mod preprocess;
pub mod resume;
pub mod runtime;
pub mod shard;
mod sink;
pub mod views;

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::sync::mpsc;
use std::time::Instant;

use backbone::ModelSpec;
use featurefile::Pool;

pub use options::{Options, ValidOptions};
pub use runtime::Device;

use pipeline::{decode, DecodedBatch};
use plan::Plan;
use sink::Sink;

/// What a run reports while it works: the library prints nothing, `main`
/// decides what reaches the terminal.
#[derive(Debug)]
pub enum Event<'a> {
    /// A line about the run: the model and its sizes, the device, a folder
    /// walked once, partial files a killed run left.
    Note(&'a str),
    /// Something the person running it should know is wrong.
    Warning(&'a str),
    /// Decoding begins, over this many images.
    Started { images: u64 },
    /// This many more images were handled (read or skipped).
    Progress { done: u64 },
    /// An image that could not be read, and why; the run goes on.
    Skipped { path: &'a str, error: &'a str },
    /// The last image was handled.
    Finished,
    /// The named weights' download.
    Download(backbone::download::DownloadEvent<'a>),
    /// A message of ONNX Runtime's own (a warning: a node the GPU cannot
    /// run, say).
    Runtime(&'a str),
}

/// Reports what ONNX Runtime said since the last call.
fn report_runtime_log(report: &mut dyn FnMut(Event)) {
    for line in runtime::take_log() {
        report(Event::Runtime(&line));
    }
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Model(#[from] backbone::source::Error),
    #[error("{what}: {source}")]
    Layers { what: String, source: backbone::Error },
    #[error(transparent)]
    Dataset(#[from] dataset::Error),
    #[error(transparent)]
    Runtime(#[from] runtime::Error),
    #[error(transparent)]
    FeatureFile(#[from] featurefile::Error),
    #[error("--batch and --threads must be at least 1")]
    ZeroBatchOrThreads,
    #[error("--layer {0}: a feature column cannot take the name of the fixed column {0:?} (the fixed ones are {fixed})", fixed = featurefile::columns::ALL.join(", "))]
    ReservedLayerName(String),
    #[error("--views must be at least 1 (1: the eval transform alone)")]
    ZeroViews,
    #[error("the model takes batches of exactly {batch} rows, fewer than --views {views}")]
    ViewsAboveFixedBatch { batch: usize, views: u32 },
    #[error("--calibrate must be at least 1 image")]
    ZeroCalibrate,
    #[error("--precision int8: {0}")]
    Quantize(#[from] backbone::quantize::Error),
    #[error("--precision fp16: {0}")]
    Half(#[from] backbone::fp16::Error),
    #[error("--precision int8: --calibrate {want} needs {want} readable images under {root}, which has {readable}; give --calibrate {readable} or fewer", root = .root.display())]
    TooFewCalibrationImages { want: usize, readable: usize, root: std::path::PathBuf },
    #[error("--precision int8: calibration image {image} could not be read a second time: {why}")]
    CalibrationImageChanged { image: String, why: String },
    #[error("--crop {crop} is larger than --resize {resize}")]
    CropLargerThanResize { crop: u32, resize: u32 },
    #[error(transparent)]
    Shard(#[from] shard::Error),
    #[error("--shard writes one part per task into a folder: give --out a folder, ending in / (not {})", .0.display())]
    ShardNeedsFolder(PathBuf),
    #[error(transparent)]
    Output(#[from] atomic::Refused),
    #[error("{} exists from another run ({what}); --overwrite replaces it", .path.display())]
    OtherRunsPart { path: PathBuf, what: String },
    #[error("the model takes {w}x{h} images; use --crop {w}")]
    FixedInputSize { w: i64, h: i64 },
    #[error("{flag}: batches of {rows} rows of {crop}x{crop} images take about {} (input buffers and the network's activations), more than the {} of memory available; give a smaller {flag}", gib(*.bytes), gib(*.available))]
    BatchTooLarge { flag: &'static str, rows: usize, crop: u32, bytes: usize, available: usize },
    #[error("cannot start {threads} threads: {reason}")]
    Threads { threads: usize, reason: String },
    #[error("none of the {0} images could be read; nothing written")]
    NothingRead(usize),
    #[error("interrupted; nothing written")]
    Interrupted,
    #[error(transparent)]
    Store(#[from] store::Error),
    #[error("--class-map {}: {why}", .path.display())]
    ClassMap { path: PathBuf, why: String },
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

fn gib(bytes: usize) -> String {
    format!("{:.1} GiB", bytes as f64 / (1u64 << 30) as f64)
}

/// What a finished run reports on its last line.
#[derive(Debug, Clone)]
pub struct Summary {
    pub out: PathBuf,
    pub written: usize,
    pub skipped: usize,
    pub seconds: f64,
    pub device: String,
    /// A part that existed complete: nothing was run.
    pub already_done: bool,
}

impl std::fmt::Display for Summary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.already_done {
            return write!(
                f,
                "{} is complete ({} images, same model, layers, preprocessing and images): nothing to do (--overwrite redoes it)",
                self.out.display(),
                self.written
            );
        }
        write!(
            f,
            "wrote {} images to {} ({} skipped) in {:.1} s, {:.1} images/s on {}",
            self.written,
            self.out.display(),
            self.skipped,
            self.seconds,
            self.written as f64 / self.seconds.max(1e-9),
            self.device
        )
    }
}

/// The default image folder for an output file: `data/<stem of --out>`.
pub fn default_images(out: &Path) -> PathBuf {
    let stem = out.file_stem().map(|s| s.to_os_string()).unwrap_or_default();
    Path::new("data").join(stem)
}

/// The `--list-layers` table: what layer discovery found in a model.
pub fn list_layers(spec: &ModelSpec, report: &mut dyn FnMut(Event)) -> Result<String> {
    let opened = open::open(spec, preprocess::Config::default().crop, &mut |e| report(Event::Download(e)));
    report_runtime_log(report);
    layer_table(&opened?.model).map_err(|e| Error::Layers { what: spec.to_string(), source: e })
}

/// The table `--list-layers` prints for a parsed model, and the rule that
/// found `avgpool` under it.
pub fn layer_table(model: &backbone::Model) -> Result<String, backbone::Error> {
    let mut s = String::new();
    writeln!(s, "input {:?}: {}", model.input, model.input_shape).unwrap();
    if model.blocks().is_empty() {
        writeln!(s, "no residual blocks (Add or Sum joins): no named stages; raw tensor names work").unwrap();
    } else {
        writeln!(s, "{} residual blocks", model.blocks().len()).unwrap();
    }
    writeln!(s, "{:<8}  {:<16}  {:>8}  {:>8}  tensor", "layer", "shape", "avg/max", "avgmax").unwrap();
    for l in model.layers()? {
        let shape = l.shape.as_ref().expect("named layers have shapes");
        let dims: Vec<i64> = shape.0.iter().map(|d| d.unwrap_or(1)).collect();
        let p = pool::effective(Pool::Avg, &dims);
        let (single, both) = match p {
            Pool::None => (pool::dim(p, &dims).to_string(), "-".to_string()),
            _ => (pool::dim(Pool::Avg, &dims).to_string(), pool::dim(Pool::AvgMax, &dims).to_string()),
        };
        writeln!(s, "{:<8}  {:<16}  {:>8}  {:>8}  {}", l.name, shape.to_string(), single, both, l.tensor).unwrap();
    }
    if let Some(rule) = model.avgpool_rule() {
        writeln!(s, "avgpool: {rule}").unwrap();
    }
    Ok(s)
}

/// Runs the stages in turn: plan (model, layers, images), start the
/// engine, decode batches on one thread while inference and writing run on
/// this one, then seal the file with its footer.
pub fn run(opts: &ValidOptions, report: &mut dyn FnMut(Event)) -> Result<Summary> {
    let start = Instant::now();
    for note in opts.notes() {
        report(Event::Note(note));
    }
    let plan = Plan::new(opts, report);
    report_runtime_log(report);
    let plan = plan?;
    if let Some(mut done) = plan.already_done(opts)? {
        done.out = opts.destination();
        return Ok(done);
    }
    report(Event::Note(&plan.describe(opts)));
    for note in &plan.data.notes {
        report(Event::Note(note));
    }
    // Temporary files of killed runs at this destination: this run redoes them.
    if let Ok(n @ 1..) = atomic::remove_stale(&opts.out) {
        let s = if n == 1 { "" } else { "s" };
        report(Event::Note(&format!("removed {n} partial file{s} a killed run left beside {}", opts.out.display())));
    }
    if plan.backbone.model.metadata("untrained") == Some("true") {
        report(Event::Warning(&format!(
            "{} is an untrained test model (seeded weights): its features carry no ImageNet knowledge; --model {} gets real weights",
            opts.model,
            backbone::source::DEFAULT
        )));
    }
    let started = plan.start_engine(opts, report);
    report_runtime_log(report);
    let (mut engine, calibration) = started?;
    let mut sink = Sink::new(opts, &plan, engine.device, calibration);
    for (path, error) in &plan.data.broken {
        report(Event::Skipped { path, error });
    }
    report(Event::Started { images: plan.data.entries.len() as u64 });
    std::thread::scope(|scope| -> Result<()> {
        // Three buffers go round: one being decoded, one waiting, one that
        // inference reads.
        let (tx, rx) = mpsc::sync_channel::<DecodedBatch>(1);
        let (recycle_tx, recycle_rx) = mpsc::channel::<runtime::HostBuffer>();
        for b in engine.buffers(3, plan.rows_per_batch(), plan.preprocess.crop as usize)? {
            let _ = recycle_tx.send(b);
        }
        let decoders = rayon::ThreadPoolBuilder::new()
            .num_threads(opts.threads)
            .build()
            .map_err(|e| Error::Threads { threads: opts.threads, reason: e.to_string() })?;
        let (plan, cancel, cfg) = (&plan, &opts.cancel, plan.preprocess);
        scope.spawn(move || decode(plan, cfg, &decoders, cancel, recycle_rx, tx));
        for batch in rx {
            if opts.cancel.load(Ordering::Relaxed) {
                return Err(Error::Interrupted);
            }
            let done = batch.ok.len() + batch.failed.len();
            let taken = sink.take(&mut engine, batch, report, &recycle_tx);
            report_runtime_log(report);
            taken?;
            report(Event::Progress { done: done as u64 });
        }
        if opts.cancel.load(Ordering::Relaxed) {
            return Err(Error::Interrupted);
        }
        Ok(())
    })?;
    report(Event::Finished);
    if sink.writer.is_none() && plan.shard.is_some() {
        // A part with no rows (more tasks than images, or none readable)
        // still appears, so the folder is complete.
        sink.create_empty(&mut engine)?;
    }
    let (mut out, written, skipped) = sink.finish()?;
    // Complete here first; then in the bucket, whole or not at all.
    if let Some(p) = opts.publish() {
        p.bucket.upload(&out, &p.to.key)?;
        out = opts.destination();
    }
    Ok(Summary {
        out,
        written,
        skipped,
        seconds: start.elapsed().as_secs_f64(),
        device: engine.device.to_string(),
        already_done: false,
    })
}
