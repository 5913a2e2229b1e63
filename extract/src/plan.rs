//! What a run will do, decided before any image is decoded: the model and
//! its tensors, the images (this task's share of them), the batch and the
//! eval transform's sizes.

use backbone::Opened;
use featurefile::shards::{self, Shard};

use crate::options::{Options, ValidOptions};
use crate::precision::{Calibrate, Numbers};
use crate::resume::{self, Resume};
use crate::runtime::{self, Device};
use crate::{dataset, open, preprocess, Error, Event, Result, Summary};
use featurefile::{Calibration, Decode, Precision, Views};

/// What a run will do, decided before any image is decoded: the model and
/// the tensors to take from it, the images, and the batch size.
pub(crate) struct Plan {
    /// The network, its identity and its weights.
    pub(crate) backbone: Opened,
    /// One per requested name, in the order asked.
    pub(crate) layers: Vec<backbone::Layer>,
    /// The distinct tensors behind them (two names may resolve to one).
    pub(crate) tensors: Vec<String>,
    /// The images this run reads: the whole list, or this task's range of it.
    pub(crate) data: dataset::Dataset,
    /// A sharded run's record, for the footer.
    pub(crate) shard: Option<Shard>,
    pub(crate) batch: usize,
    pub(crate) preprocess: preprocess::Config,
    /// Where the resize and crop came from, for the first line.
    pub(crate) sizes_from: String,
    /// The numbers the network computes in.
    pub(crate) numbers: Numbers,
}

impl Plan {
    pub(crate) fn new(opts: &ValidOptions, report: &mut dyn FnMut(Event)) -> Result<Self> {
        let crop_hint = opts.crop.unwrap_or(preprocess::Config::default().crop);
        let opened = open::open(&opts.model, crop_hint, &mut |e| report(Event::Download(e)))?;
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
        // A task lists only its own whole tar shards where it can: not for
        // int8 calibrated on its own images (each task would calibrate on
        // other ones; --calibrate-on gives them one folder).
        let split = opts
            .task()
            .filter(|_| opts.precision != Precision::Int8 || opts.calibrate_on.is_some())
            .map(|t| dataset::Split { index: t.index, count: t.count });
        let mut data = dataset::open(&opts.images, opts.labels(), split)?;
        let tensors = unique(layers.iter().map(|l| l.tensor.clone()));
        let numbers = match opts.precision {
            Precision::Fp32 => Numbers::Fp32,
            Precision::Fp16 => Numbers::fp16(&opened, &tensors, report)?,
            Precision::Int8 => {
                // Calibrated on the whole tree (or --calibrate-on's), before a shard takes its share.
                let other = opts.calibrate_on.as_deref().map(|c| dataset::open(c, opts.labels(), None)).transpose()?;
                let bits = opts.weight_bits.unwrap_or_else(backbone::quantize::WeightBits::for_this_cpu);
                let tree = other.as_ref().unwrap_or(&data);
                Numbers::int8(&opened, &tensors, Calibrate { tree, images: opts.calibrate, bits })?
            }
        };
        // Every task lists the whole tree (cheap), so all agree on the
        // classes and on the list they split; or, for tar shards whose
        // classes are known in advance, only its own whole shards.
        let shard = opts.task().map(|t| {
            let total_images = match &data.tar_split {
                Some(_) => None,
                None => {
                    let total = data.entries.len();
                    data.entries = data.entries.drain(shards::range(total, t.index, t.count)).collect();
                    Some(total)
                }
            };
            Shard {
                index: t.index,
                count: t.count,
                first: data.entries.first().map(|e| e.rel.clone()),
                last: data.entries.last().map(|e| e.rel.clone()),
                images: data.entries.len(),
                total_images,
                tar_shards: data.tar_split.clone(),
            }
        });
        // Batches are sized by the rows there are, not by the flag: two
        // images with --batch 100000 are one batch of two.
        let rows_there = data.entries.len().max(1).saturating_mul(preprocess.rows_per_image());
        let batch = model.fixed_batch().map_or(opts.batch.min(rows_there), |b| b as usize);
        if let (Some(b), Some(v)) = (model.fixed_batch(), preprocess.views) {
            if (b as usize) < v.count as usize {
                return Err(Error::ViewsAboveFixedBatch { batch: b as usize, views: v.count });
            }
        }
        check_batch_memory(batch, &preprocess, images::memory_available())?;
        Ok(Plan { backbone: opened, layers, tensors, data, shard, batch, preprocess, sizes_from, numbers })
    }

    /// Images decoded per batch: `batch` rows hold `batch / views` images
    /// (at least one).
    pub(crate) fn images_per_batch(&self) -> usize {
        (self.batch / self.preprocess.rows_per_image()).max(1)
    }

    /// The model's rows per batch: the images' views.
    pub(crate) fn rows_per_batch(&self) -> usize {
        self.images_per_batch() * self.preprocess.rows_per_image()
    }

    pub(crate) fn precision(&self) -> Precision {
        self.numbers.precision()
    }

    /// For an output that exists (a part, or the single file): the summary
    /// of a run with nothing to do when it holds what this run would write,
    /// an error when it holds something else; `None` when this run is to
    /// write it (nothing there, or `--overwrite`).
    pub(crate) fn already_done(&self, opts: &ValidOptions) -> Result<Option<Summary>> {
        if opts.overwrite || !opts.out.exists() {
            return Ok(None);
        }
        let other = |what: String| Error::OtherRunsPart { path: opts.destination(), what };
        let found = featurefile::Source::open(&opts.out, false).map_err(|e| other(e.to_string()))?;
        let want = resume::Expected {
            model_sha256: &self.backbone.sha256,
            layers: &self.layers,
            pool: opts.pool,
            preprocess: &self.preprocess.record(),
            classes: &self.data.classes,
            shard: self.shard.as_ref(),
            images: self.data.entries.len(),
            precision: self.precision(),
            calibrate: self.numbers.calibrate(),
        };
        match resume::judge(Some((&found.header, found.rows)), &want) {
            Resume::Fresh => Ok(None),
            Resume::Conflict(what) => Err(other(what)),
            Resume::Done { rows, skipped } => Ok(Some(Summary {
                out: opts.out.clone(),
                written: rows / self.preprocess.rows_per_image(),
                skipped,
                seconds: 0.0,
                device: String::new(),
                already_done: true,
            })),
        }
    }

    /// The run's first line: which model, which weights, which eval sizes.
    pub(crate) fn describe(&self, opts: &Options) -> String {
        let weights = self.backbone.weights.as_ref().map(|w| format!(" ({})", w.name)).unwrap_or_default();
        let share = match &self.shard {
            Some(Shard { index, count, images, total_images: Some(total), .. }) => {
                format!("; shard {index}/{count}: {images} of {total} images")
            }
            Some(Shard { index, count, images, tar_shards: Some(t), .. }) => {
                format!("; shard {index}/{count}: {images} images in {} of {} tar shards", t.shards, t.total_shards)
            }
            Some(Shard { index, count, images, .. }) => format!("; shard {index}/{count}: {images} images"),
            None => String::new(),
        };
        let views = match self.preprocess.views {
            Some(v) => format!(
                "; {} views per image (seed {}): the eval crop, then random resized crops and flips",
                v.count, v.seed
            ),
            None => String::new(),
        };
        format!(
            "model: {}{weights}; resize {}, crop {} ({}){views}{share}",
            opts.model, self.preprocess.resize, self.preprocess.crop, self.sizes_from
        )
    }

    /// A session on the model cut down to the requested tensors; says on
    /// stderr which device runs it.
    pub(crate) fn start_engine(
        &self,
        opts: &Options,
        report: &mut dyn FnMut(Event),
    ) -> Result<(runtime::Engine, Option<Calibration>)> {
        let model = &self.backbone.model;
        let m = self.numbers.model(&self.backbone, &self.tensors, &self.preprocess, opts.threads, report)?;
        let mut engine = runtime::Engine::new(
            &m.bytes,
            m.weights_dir,
            &model.input,
            self.tensors.clone(),
            opts.device,
            opts.threads,
        )?;
        if model.fixed_batch().is_some() {
            engine.set_fixed_batch();
        }
        let note = match (opts.device, engine.device) {
            (Device::Auto, runtime::Placement::Cpu) => {
                format!(
                    " (auto: no usable CUDA provider or GPU, {})",
                    engine.auto_cpu_because.as_deref().unwrap_or("no OpenVINO plugin")
                )
            }
            (Device::Auto, runtime::Placement::OpenVino) => {
                " (auto: no usable CUDA provider or GPU; OpenVINO's plugin is installed)".to_string()
            }
            _ => String::new(),
        };
        report(Event::Note(&format!("device: {}{note}", engine.device)));
        Ok((engine, m.calibration))
    }
}

/// What a batch row costs, in bytes of its input image: the decoder's three
/// buffers, and the network's activations, which ONNX Runtime holds a few
/// of at once (ResNet50's stem output alone is 5.3 times the input).
/// Measured on the seeded ResNet50 at crop 224 (peak resident memory, batch
/// 8 against 64): 6.5 MiB a row (11 times the input) for avgpool alone,
/// 10 MiB (17 times) for stem, layer1, layer3 and avgpool at once; 20
/// leaves room for wider models.
const BYTES_PER_INPUT_BYTE: usize = 20;

/// Refuses a batch whose rows (images x views) would not fit in memory,
/// before anything is allocated: `--views 100000` is one line, not an
/// abort. A model with a fixed batch is what it is.
fn check_batch_memory(batch: usize, cfg: &preprocess::Config, available: Option<usize>) -> Result<()> {
    let per_row = cfg.values_per_image() * std::mem::size_of::<f32>() * BYTES_PER_INPUT_BYTE;
    let rows = (batch / cfg.rows_per_image()).max(1) * cfg.rows_per_image();
    let bytes = rows.saturating_mul(per_row);
    match available {
        Some(available) if bytes > available => {
            let flag = if rows > batch { "--views" } else { "--batch" };
            Err(Error::BatchTooLarge { flag, rows, crop: cfg.crop, bytes, available })
        }
        _ => Ok(()),
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
    let limits = images::Limits { max_pixels: opts.max_pixels, max_bytes: opts.max_bytes };
    let decode = if opts.exact_decode { Decode::Exact } else { Decode::Scaled };
    let views = (opts.views > 1).then(|| Views::tutorial(opts.views, opts.seed));
    Ok((preprocess::Config { resize, crop, limits, decode, views, ..defaults }, from))
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_batch_that_cannot_fit_is_refused_naming_the_flag_that_made_it() {
        let gib = 1usize << 30;
        let one = preprocess::Config::default();
        // The default batch fits in far less than a node has.
        check_batch_memory(32, &one, Some(gib)).unwrap();
        check_batch_memory(usize::MAX, &one, None).unwrap();
        let e = check_batch_memory(100_000, &one, Some(16 * gib)).unwrap_err();
        assert!(matches!(e, Error::BatchTooLarge { flag: "--batch", rows: 100_000, .. }), "{e}");
        // One image's views are one batch at least, whatever --batch says.
        let views = preprocess::Config { views: Some(Views::tutorial(100_000, 0)), ..one };
        let e = check_batch_memory(32, &views, Some(16 * gib)).unwrap_err();
        assert!(
            e.to_string().starts_with("--views: batches of 100000 rows of 224x224 images take about 1121.5 GiB"),
            "{e}"
        );
        assert!(e.to_string().ends_with("more than the 16.0 GiB of memory available; give a smaller --views"), "{e}");
    }
}
