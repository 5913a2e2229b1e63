//! `extract`: runs a ResNet50 ONNX model over an image folder and writes the
//! activations of the chosen layers to a feature file (see the `featurefile`
//! crate for the contract).
//!
//! Decoding and preprocessing run in parallel on a rayon pool, one batch ahead
//! of inference, through a bounded queue; rows stream to Parquet in row
//! groups, so memory does not grow with the number of images.

pub mod dataset;
pub mod open;
pub(crate) mod pool;
pub mod preprocess;
pub mod runtime;
pub mod shard;

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc};
use std::time::Instant;

use featurefile::shards::{self, Shard};
use backbone::weights::Event;
use backbone::{Opened, Spec};
use featurefile::{short_hash, FeatureWriter, Header, LayerInfo, ModelInfo, Pool, Rows, Skipped, WeightsInfo};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use rayon::prelude::*;

pub use runtime::Device;

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
    #[error("--crop {crop} is larger than --resize {resize}")]
    CropLargerThanResize { crop: u32, resize: u32 },
    #[error(transparent)]
    Shard(#[from] shard::Error),
    #[error("--shard writes one part per task into a folder: give --out a folder, ending in / (not {})", .0.display())]
    ShardNeedsFolder(PathBuf),
    #[error("{} exists from another run ({what}); --overwrite replaces it", .path.display())]
    OtherRunsPart { path: PathBuf, what: String },
    #[error("the model takes {w}x{h} images; use --crop {w}")]
    FixedInputSize { w: i64, h: i64 },
    #[error("cannot start {threads} threads: {reason}")]
    Threads { threads: usize, reason: String },
    #[error("none of the {0} images could be read; nothing written")]
    NothingRead(usize),
    #[error("interrupted; nothing written")]
    Interrupted,
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

#[derive(Debug, Clone)]
pub struct Options {
    pub images: PathBuf,
    pub out: PathBuf,
    pub model: Spec,
    pub layers: Vec<String>,
    pub pool: Pool,
    pub device: Device,
    pub batch: usize,
    pub threads: usize,
    /// torchvision's eval sizes; `None`: the model's own (its metadata), else 256 / 224.
    pub resize: Option<u32>,
    pub crop: Option<u32>,
    /// Images with more pixels are skipped before they are decoded.
    pub max_pixels: u64,
    /// Image files larger than this are skipped before they are read.
    pub max_bytes: u64,
    /// This run's share of a cluster job; `--out` is then a folder.
    pub shard: Option<shard::Spec>,
    /// Redo a part that exists complete (otherwise the task has nothing to do).
    pub overwrite: bool,
    /// Set from outside (Ctrl-C) to stop between batches, writing nothing.
    pub cancel: Arc<AtomicBool>,
}

/// Options that passed [`Options::check`]: what [`run`] takes. For a
/// sharded run `out` is the part's file, and the task is known.
#[derive(Debug, Clone)]
pub struct ValidOptions(Options, Option<shard::Task>);

impl ValidOptions {
    pub fn task(&self) -> Option<shard::Task> {
        self.1
    }
}

impl std::ops::Deref for ValidOptions {
    type Target = Options;
    fn deref(&self) -> &Options {
        &self.0
    }
}

impl Options {
    /// Checks what can be checked before the model or the images are read,
    /// in one step: a run never starts on options it would refuse later.
    pub fn check(mut self) -> Result<ValidOptions> {
        if self.batch == 0 || self.threads == 0 {
            return Err(Error::ZeroBatchOrThreads);
        }
        if let (Some(crop), Some(resize)) = (self.crop, self.resize) {
            if crop > resize {
                return Err(Error::CropLargerThanResize { crop, resize });
            }
        }
        // A folder: an existing one, or a path written with a trailing slash.
        let folder = self.out.is_dir() || self.out.as_os_str().to_string_lossy().ends_with(std::path::MAIN_SEPARATOR);
        let task = match self.shard {
            Some(spec) => Some(spec.resolve(|name| std::env::var(name).ok())?),
            None => folder.then_some(shard::Task { index: 0, count: 1 }),
        };
        if let Some(t) = task {
            if !folder {
                return Err(Error::ShardNeedsFolder(self.out));
            }
            self.out = self.out.join(shards::part_name(t.index, t.count));
        }
        Ok(ValidOptions(self, task))
    }
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
pub fn list_layers(spec: &Spec, report: &mut dyn FnMut(Event)) -> Result<String> {
    let opened = open::open(spec, preprocess::Config::default().crop, report)?;
    layer_table(&opened.model).map_err(|e| Error::Layers { what: spec.to_string(), source: e })
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
    let plan = Plan::new(opts, report)?;
    if let Some(done) = plan.already_done(opts)? {
        return Ok(done);
    }
    eprintln!("{}", plan.describe(opts));
    for note in &plan.data.notes {
        eprintln!("{note}");
    }
    // Temporary files of killed runs at this destination: this run redoes them.
    if let Ok(n @ 1..) = atomic::remove_stale(&opts.out) {
        eprintln!("removed {n} partial file{} a killed run left beside {}", if n == 1 { "" } else { "s" }, opts.out.display());
    }
    if plan.model.model.metadata("untrained") == Some("true") {
        eprintln!(
            "extract: warning: {} is an untrained test model (seeded weights): its features carry no ImageNet knowledge; --model {} gets real weights",
            opts.model,
            backbone::source::DEFAULT
        );
    }
    let mut engine = plan.start_engine(opts)?;
    let mut sink = Sink::new(opts, &plan);
    let bar = progress_bar(plan.data.entries.len() as u64);
    std::thread::scope(|scope| -> Result<()> {
        // Three buffers go round: one being decoded, one waiting, one that
        // inference reads.
        let (tx, rx) = mpsc::sync_channel::<Prepared>(1);
        let (recycle_tx, recycle_rx) = mpsc::channel::<runtime::HostBuffer>();
        for b in engine.buffers(3, plan.batch, plan.preprocess.crop as usize)? {
            let _ = recycle_tx.send(b);
        }
        let decoders = rayon::ThreadPoolBuilder::new()
            .num_threads(opts.threads)
            .build()
            .map_err(|e| Error::Threads { threads: opts.threads, reason: e.to_string() })?;
        let (plan, cancel, cfg) = (&plan, &opts.cancel, plan.preprocess);
        scope.spawn(move || decode(plan, cfg, &decoders, cancel, recycle_rx, tx));
        for prepared in rx {
            if opts.cancel.load(Ordering::Relaxed) {
                return Err(Error::Interrupted);
            }
            let done = prepared.ok.len() + prepared.failed.len();
            sink.take(&mut engine, prepared, &bar, &recycle_tx)?;
            bar.inc(done as u64);
        }
        if opts.cancel.load(Ordering::Relaxed) {
            return Err(Error::Interrupted);
        }
        Ok(())
    })?;
    bar.finish_and_clear();
    if sink.writer.is_none() && plan.shard.is_some() {
        // A part with no rows (more tasks than images, or none readable)
        // still appears, so the folder is complete.
        sink.create_empty(&mut engine)?;
    }
    let (out, written, skipped) = sink.finish()?;
    Ok(Summary {
        out,
        written,
        skipped,
        seconds: start.elapsed().as_secs_f64(),
        device: engine.device,
        already_done: false,
    })
}

/// What a run will do, decided before any image is decoded: the model and
/// the tensors to take from it, the images, and the batch size.
struct Plan {
    /// The model, its identity and its weights.
    model: Opened,
    /// One per requested name, in the order asked.
    layers: Vec<backbone::Layer>,
    /// The distinct tensors behind them (two names may resolve to one).
    tensors: Vec<String>,
    /// The images this run reads: the whole list, or this task's range of it.
    data: dataset::Dataset,
    /// A sharded run's record, for the footer.
    shard: Option<Shard>,
    batch: usize,
    preprocess: preprocess::Config,
    /// Where the resize and crop came from, for the first line.
    sizes_from: String,
}

impl Plan {
    fn new(opts: &ValidOptions, report: &mut dyn FnMut(Event)) -> Result<Self> {
        let crop_hint = opts.crop.unwrap_or(preprocess::Config::default().crop);
        let opened = open::open(&opts.model, crop_hint, report)?;
        let model = &opened.model;
        let (preprocess, sizes_from) = eval_sizes(opts, model)?;
        let crop = preprocess.crop as i64;
        if let Some((h, w)) = model.fixed_size() {
            if (h, w) != (crop, crop) {
                return Err(Error::FixedInputSize { w, h });
            }
        }
        let names = unique(opts.layers.iter().cloned());
        let layers = model.resolve(&names).map_err(|e| Error::Layers { what: opts.model.to_string(), source: e })?;
        let mut data = dataset::scan(&opts.images)?;
        // Every task lists the whole tree (cheap), so all agree on the
        // classes and on the list they split.
        let shard = opts.task().map(|t| {
            let total_images = data.entries.len();
            data.entries = data.entries.drain(shards::range(total_images, t.index, t.count)).collect();
            Shard {
                index: t.index,
                count: t.count,
                first: data.entries.first().map(|e| e.rel.clone()),
                last: data.entries.last().map(|e| e.rel.clone()),
                images: data.entries.len(),
                total_images,
            }
        });
        let tensors = unique(layers.iter().map(|l| l.tensor.clone()));
        let batch = model.fixed_batch().map_or(opts.batch, |b| b as usize);
        Ok(Plan {
            model: opened,
            layers,
            tensors,
            data,
            shard,
            batch,
            preprocess,
            sizes_from,
        })
    }

    /// For a part that exists: the summary of a task with nothing to do
    /// when it holds what this run would write (same model, layers,
    /// preprocessing, classes and share of the same list), an error when it
    /// holds something else; `None` when this run is to write it.
    fn already_done(&self, opts: &ValidOptions) -> Result<Option<Summary>> {
        let Some(shard) = &self.shard else { return Ok(None) };
        if opts.overwrite || !opts.out.exists() {
            return Ok(None);
        }
        let other = |what: String| Error::OtherRunsPart { path: opts.out.clone(), what };
        let found = featurefile::Source::open(&opts.out, false).map_err(|e| other(e.to_string()))?;
        let h = &found.header;
        let layers_match = h.layers.len() == self.layers.len()
            && h.layers.iter().zip(&self.layers).all(|((name, info), l)| {
                *name == l.name && info.tensor == l.tensor && (info.pool == opts.pool || info.pool == Pool::None)
            });
        let differs = if h.model.sha256 != self.model.sha256 {
            Some(format!("model sha256 {}, this run's {}", short_hash(&h.model.sha256), short_hash(&self.model.sha256)))
        } else if !layers_match {
            let found: Vec<String> = h.layers.iter().map(|(n, l)| format!("{n} ({})", l.pool)).collect();
            let asked: Vec<&str> = self.layers.iter().map(|l| l.name.as_str()).collect();
            Some(format!("layers {}, this run's {} with --pool {}", found.join(","), asked.join(","), opts.pool))
        } else if h.preprocess != self.preprocess.record() {
            Some(format!("resize {} crop {}, this run's {} {}", h.preprocess.resize, h.preprocess.crop,
                         self.preprocess.resize, self.preprocess.crop))
        } else if h.classes != self.data.classes {
            Some("other classes".to_string())
        } else if h.shard.as_ref() != Some(shard) {
            Some(format!(
                "another share of the images: {} images from {:?}, this run's {} from {:?} of {}",
                h.shard.as_ref().map_or(0, |s| s.images),
                h.shard.as_ref().and_then(|s| s.first.clone()),
                shard.images,
                shard.first,
                shard.total_images
            ))
        } else {
            None
        };
        if let Some(what) = differs {
            return Err(other(what));
        }
        Ok(Some(Summary {
            out: opts.out.clone(),
            written: found.rows,
            skipped: h.skipped.len(),
            seconds: 0.0,
            device: String::new(),
            already_done: true,
        }))
    }

    /// The run's first line: which model, which weights, which eval sizes.
    fn describe(&self, opts: &Options) -> String {
        let weights = self.model.weights.as_ref().map(|w| format!(" ({})", w.name)).unwrap_or_default();
        let share = match &self.shard {
            Some(s) => format!("; shard {}/{}: {} of {} images", s.index, s.count, s.images, s.total_images),
            None => String::new(),
        };
        format!(
            "model: {}{weights}; resize {}, crop {} ({}){share}",
            opts.model,
            self.preprocess.resize,
            self.preprocess.crop,
            self.sizes_from
        )
    }

    /// A session on the model cut down to the requested tensors; says on
    /// stderr which device runs it.
    fn start_engine(&self, opts: &Options) -> Result<runtime::Engine> {
        let model = &self.model.model;
        let graph = model.with_outputs(&self.tensors.iter().map(String::as_str).collect::<Vec<_>>());
        let mut engine = runtime::Engine::new(
            &graph,
            self.model.weights_dir.as_deref(),
            &model.input,
            self.tensors.clone(),
            opts.device,
            opts.threads,
        )?;
        if model.fixed_batch().is_some() {
            engine.set_fixed_batch();
        }
        let note = match (opts.device, engine.device.as_str()) {
            (Device::Auto, "cpu") => " (auto: no usable CUDA provider or GPU)",
            _ => "",
        };
        eprintln!("device: {}{note}", engine.device);
        Ok(engine)
    }
}

/// The eval transform's sizes: given on the command line, else the ones the
/// model records (`eval_resize`, `eval_crop`: IMAGENET1K_V2 is evaluated at
/// 232), else torchvision's usual 256 / 224.
fn eval_sizes(opts: &Options, model: &backbone::Model) -> Result<(preprocess::Config, String)> {
    let recorded = |key: &str| model.metadata(key).and_then(|v| v.parse::<u32>().ok()).filter(|&v| v > 0);
    let defaults = preprocess::Config::default();
    let (resize, crop) = (recorded("eval_resize"), recorded("eval_crop"));
    let source = |given: Option<u32>, recorded: Option<u32>| match (given, recorded) {
        (Some(_), _) => "as given",
        (None, Some(_)) => "the model's",
        (None, None) => "the default",
    };
    let (rs, cs) = (source(opts.resize, resize), source(opts.crop, crop));
    let from = if rs == cs { rs.to_string() } else { format!("resize {rs}, crop {cs}") };
    let resize = opts.resize.or(resize).unwrap_or(defaults.resize);
    let crop = opts.crop.or(crop).unwrap_or(defaults.crop);
    if crop > resize {
        return Err(Error::CropLargerThanResize { crop, resize });
    }
    Ok((preprocess::Config { resize, crop, limits: images::Limits { max_pixels: opts.max_pixels, max_bytes: opts.max_bytes }, ..defaults }, from))
}

/// One batch of preprocessed images on its way to inference.
struct Prepared {
    /// Entry indices of the images that decoded, in order.
    ok: Vec<usize>,
    /// `ok.len()` images first, packed: the failures' slots are squeezed out.
    data: runtime::HostBuffer,
    failed: Vec<(usize, String)>,
}

/// The decoding stage: fills recycled buffers with the plan's batches,
/// decoding each batch's images in parallel on `pool`, and sends them on in
/// order. Stops at Ctrl-C, or when the consumer hangs up on an error.
fn decode(
    plan: &Plan,
    cfg: preprocess::Config,
    pool: &rayon::ThreadPool,
    cancel: &AtomicBool,
    recycled: mpsc::Receiver<runtime::HostBuffer>,
    tx: mpsc::SyncSender<Prepared>,
) {
    let per_image = cfg.values_per_image();
    for (ci, chunk) in plan.data.entries.chunks(plan.batch).enumerate() {
        if cancel.load(Ordering::Relaxed) {
            break;
        }
        let Ok(mut buf) = recycled.recv() else { break };
        let results: Vec<Result<(), String>> = pool.install(|| {
            buf.as_mut_slice()[..chunk.len() * per_image]
                .par_chunks_mut(per_image)
                .zip(chunk.par_iter())
                .map(|(slot, e)| preprocess::preprocess_file(&e.abs, &cfg, slot))
                .collect()
        });
        let mut p = Prepared { ok: Vec::new(), data: buf, failed: Vec::new() };
        for (i, r) in results.into_iter().enumerate() {
            let idx = ci * plan.batch + i;
            match r {
                Ok(()) => {
                    let dst = p.ok.len();
                    if dst != i {
                        p.data.as_mut_slice().copy_within(i * per_image..(i + 1) * per_image, dst * per_image);
                    }
                    p.ok.push(idx);
                }
                Err(e) => p.failed.push((idx, e)),
            }
        }
        if tx.send(p).is_err() {
            break;
        }
    }
}

/// The inference and writing stage: runs each batch, pools its outputs and
/// streams the rows to the feature file, which it creates on the first
/// batch (the columns' sizes come from the first outputs).
struct Sink<'p> {
    plan: &'p Plan,
    pool: Pool,
    out: PathBuf,
    writer: Option<(FeatureWriter, Vec<(String, LayerInfo)>)>,
    /// One pooled buffer per requested layer, reused across batches.
    features: Vec<Vec<f32>>,
    skipped: Vec<Skipped>,
    written: usize,
}

impl<'p> Sink<'p> {
    fn new(opts: &Options, plan: &'p Plan) -> Self {
        Sink {
            plan,
            pool: opts.pool,
            out: opts.out.clone(),
            writer: None,
            features: vec![Vec::new(); plan.layers.len()],
            skipped: Vec::new(),
            written: 0,
        }
    }

    /// Takes one batch: names its failures, runs the rest, writes their rows
    /// and hands the buffer back to the decoders.
    fn take(
        &mut self,
        engine: &mut runtime::Engine,
        p: Prepared,
        bar: &ProgressBar,
        recycle: &mpsc::Sender<runtime::HostBuffer>,
    ) -> Result<()> {
        let (entries, layers, tensors) = (&self.plan.data.entries, &self.plan.layers, &self.plan.tensors);
        for (idx, err) in &p.failed {
            let rel = &entries[*idx].rel;
            bar.suspend(|| eprintln!("skipped {rel}: {err}"));
            self.skipped.push(Skipped { path: rel.clone(), error: err.clone() });
        }
        if p.ok.is_empty() {
            let _ = recycle.send(p.data);
            return Ok(());
        }
        let n = p.ok.len();
        let mut shapes: Vec<Vec<i64>> = vec![Vec::new(); tensors.len()];
        for f in &mut self.features {
            f.clear();
        }
        let (pool, features) = (self.pool, &mut self.features);
        engine.run_buffer(&p.data, n, |i, shape, values| {
            shapes[i] = shape.to_vec();
            for (l, f) in layers.iter().zip(features.iter_mut()) {
                if l.tensor == tensors[i] {
                    pool::pool_into(pool::effective(pool, shape), shape, values, f);
                }
            }
        })?;
        let _ = recycle.send(p.data);
        if self.writer.is_none() {
            self.create_writer(&shapes)?;
        }
        let (w, _) = self.writer.as_mut().expect("created above");
        let paths: Vec<String> = p.ok.iter().map(|&i| entries[i].rel.clone()).collect();
        let labels: Vec<Option<i32>> = p.ok.iter().map(|&i| entries[i].label).collect();
        let cols: Vec<&[f32]> = self.features.iter().map(Vec::as_slice).collect();
        w.write(Rows { paths: &paths, labels: &labels, features: &cols })?;
        self.written += n;
        Ok(())
    }

    /// Opens the output; the columns' sizes come from the tensors' `shapes`.
    fn create_writer(&mut self, shapes: &[Vec<i64>]) -> Result<()> {
        let (layers, tensors) = (&self.plan.layers, &self.plan.tensors);
        let infos: Vec<(String, LayerInfo)> = layers
            .iter()
            .map(|l| {
                let shape = &shapes[tensors.iter().position(|t| *t == l.tensor).expect("requested")];
                let pool = pool::effective(self.pool, shape);
                (l.name.clone(), LayerInfo { tensor: l.tensor.clone(), pool, dim: pool::dim(pool, shape) })
            })
            .collect();
        let cols: Vec<(String, usize)> = infos.iter().map(|(n, l)| (n.clone(), l.dim)).collect();
        self.writer = Some((FeatureWriter::create(&self.out, &self.plan.data.classes, &cols)?, infos));
        Ok(())
    }

    /// Opens an output that will get no rows: one blank image through the
    /// model gives the columns' sizes.
    fn create_empty(&mut self, engine: &mut runtime::Engine) -> Result<()> {
        let crop = self.plan.preprocess.crop as usize;
        let buf = engine.buffers(1, self.plan.batch, crop)?.pop().expect("one buffer");
        let mut shapes: Vec<Vec<i64>> = vec![Vec::new(); self.plan.tensors.len()];
        engine.run_buffer(&buf, 1, |i, shape, _| shapes[i] = shape.to_vec())?;
        self.create_writer(&shapes)
    }

    /// Writes the footer and moves the file into place: (path, rows, skipped).
    fn finish(self) -> Result<(PathBuf, usize, usize)> {
        let plan = self.plan;
        let Some((w, infos)) = self.writer else {
            return Err(Error::NothingRead(plan.data.entries.len()));
        };
        let mut skipped = self.skipped;
        skipped.sort_by(|a, b| a.path.cmp(&b.path));
        let header = Header {
            version: env!("CARGO_PKG_VERSION").to_string(),
            model: ModelInfo { file: plan.model.file_name.clone(), sha256: plan.model.sha256.clone(), input: plan.model.model.input.clone() },
            weights: plan.model.weights.as_ref().map(|w| WeightsInfo { name: w.name.clone(), url: w.url.clone(), sha256: w.sha256.clone() }),
            classes: plan.data.classes.clone(),
            layers: infos,
            preprocess: plan.preprocess.record(),
            root: plan.data.root.to_string_lossy().into_owned(),
            skipped,
            shard: plan.shard.clone(),
        };
        let n_skipped = header.skipped.len();
        Ok((w.finish(&header)?, self.written, n_skipped))
    }
}

/// The items in first-seen order, each once.
fn unique(items: impl Iterator<Item = String>) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for i in items {
        if !out.contains(&i) {
            out.push(i);
        }
    }
    out
}

fn progress_bar(len: u64) -> ProgressBar {
    let bar = ProgressBar::with_draw_target(Some(len), ProgressDrawTarget::stderr());
    bar.set_style(
        ProgressStyle::with_template("{bar:40} {pos}/{len} images  {per_sec}  eta {eta}")
            .expect("valid template"),
    );
    bar
}
