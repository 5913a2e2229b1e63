//! What a run is asked to do, checked in one step before the model or the
//! images are read.

use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use backbone::quantize::WeightBits;
use backbone::ModelSpec;
use featurefile::{shards, Pool, Precision};

use crate::runtime::{self, Device};
use crate::{shard, Error, Result};

#[derive(Debug, Clone)]
pub struct Options {
    /// An image folder, or tar shards: a `.tar`, a folder of them, a brace range.
    pub images: PathBuf,
    /// Where a tar sample's label comes from.
    pub label_from: crate::dataset::LabelFrom,
    /// `--class-map`: a file of class names, one per line, in index order.
    pub class_map: Option<PathBuf>,
    pub out: PathBuf,
    pub model: ModelSpec,
    pub layers: Vec<String>,
    pub pool: Pool,
    pub device: Device,
    /// fp32 as the model is; fp16 converts it to float16; int8 quantizes it
    /// (calibrated on `calibrate` images of the run's folder).
    pub precision: Precision,
    /// `--calibrate`; `None`: the default, or fewer where the folder has fewer.
    pub calibrate: Option<usize>,
    /// The folder int8 calibrates on; `None`: `images`. A validation run
    /// given its training folder gets the training run's quantized model.
    pub calibrate_on: Option<PathBuf>,
    /// int8's weight range; `None`: what this CPU needs ([`WeightBits::for_this_cpu`]).
    pub weight_bits: Option<WeightBits>,
    pub batch: usize,
    pub threads: usize,
    /// torchvision's eval sizes; `None`: the model's own (its metadata), else 256 / 224.
    pub resize: Option<u32>,
    pub crop: Option<u32>,
    /// Images with more pixels are skipped before they are decoded.
    pub max_pixels: u64,
    /// Image files larger than this are skipped before they are read.
    pub max_bytes: u64,
    /// Every JPEG at full size; otherwise a large one at a reduced DCT scale.
    pub exact_decode: bool,
    /// Rows per image: the eval transform, then `views - 1` augmented views.
    pub views: u32,
    /// Seeds the augmented views (with each image's path).
    pub seed: u64,
    /// This run's share of a cluster job; `--out` is then a folder.
    pub shard: Option<shard::ShardSpec>,
    /// Redo a part that exists complete (otherwise the task has nothing to do).
    pub overwrite: bool,
    /// Set from outside (Ctrl-C) to stop between batches, writing nothing.
    pub cancel: Arc<AtomicBool>,
}

/// Options that passed [`Options::check`]: what [`crate::run`] takes. For
/// a sharded run `out` is the part's file, and the task is known.
#[derive(Debug, Clone)]
pub struct ValidOptions {
    options: Options,
    task: Option<shard::Task>,
    notes: Vec<String>,
    publish: Option<Publish>,
    labels: crate::dataset::Labels,
}

/// An `s3://` output: the run writes a local file (`out`, in a staging
/// folder of its own), which is uploaded whole when complete; a part
/// already in the bucket is first copied there, so that resuming and
/// `--overwrite` judge it as they judge a local one.
#[derive(Debug, Clone)]
pub(crate) struct Publish {
    pub(crate) to: store::Address,
    pub(crate) bucket: Arc<store::Bucket>,
    _staging: Arc<tempfile::TempDir>,
}

impl ValidOptions {
    /// This run's task of a sharded job (a folder `--out` is task 0 of 1).
    pub fn task(&self) -> Option<shard::Task> {
        self.task
    }

    /// What the check changed, in words (a capped `--threads`).
    pub fn notes(&self) -> &[String] {
        &self.notes
    }

    /// Where the output goes, as the user named it (with a part's name for
    /// a sharded run): `out`, or its `s3://` address.
    pub fn destination(&self) -> PathBuf {
        match &self.publish {
            Some(p) => PathBuf::from(p.to.to_string()),
            None => self.out.clone(),
        }
    }

    /// How tar samples are labelled (`--label-from`, `--class-map` read).
    pub fn labels(&self) -> &crate::dataset::Labels {
        &self.labels
    }

    pub(crate) fn publish(&self) -> Option<&Publish> {
        self.publish.as_ref()
    }
}

/// Threads past this many per core only cost memory (each decoder holds
/// its image) and start-up time; 100,000 of them once took 7.7 GB.
pub const THREADS_PER_CORE: usize = 4;

impl std::ops::Deref for ValidOptions {
    type Target = Options;
    fn deref(&self) -> &Options {
        &self.options
    }
}

impl Options {
    /// Checks what can be checked before the model or the images are read,
    /// in one step: a run never starts on options it would refuse later.
    pub fn check(mut self) -> Result<ValidOptions> {
        if self.batch == 0 || self.threads == 0 {
            return Err(Error::ZeroBatchOrThreads);
        }
        if self.views == 0 {
            return Err(Error::ZeroViews);
        }
        // Each layer is a column beside the fixed ones: two of one name is a
        // file pyarrow cannot read.
        if let Some(name) = self.layers.iter().find(|l| featurefile::columns::ALL.contains(&l.as_str())) {
            return Err(Error::ReservedLayerName(name.clone()));
        }
        let mut notes = Vec::new();
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        let most = cores * THREADS_PER_CORE;
        if self.threads > most {
            notes.push(format!(
                "--threads {}: capped at {most} ({THREADS_PER_CORE} per core, {cores} cores)",
                self.threads
            ));
            self.threads = most;
        }
        if self.precision == Precision::Int8 && self.calibrate == Some(0) {
            return Err(Error::ZeroCalibrate);
        }
        if let (Some(crop), Some(resize)) = (self.crop, self.resize) {
            if crop > resize {
                return Err(Error::CropLargerThanResize { crop, resize });
            }
        }
        // A plugin asked for by name must be there, and offer this CPU,
        // before any work starts.
        if self.device == runtime::Device::OpenVino {
            runtime::check_openvino()?;
        }
        let labels = crate::dataset::Labels {
            from: self.label_from.clone(),
            class_map: self.class_map.as_deref().map(read_class_map).transpose()?,
        };
        let spelled = self.out.to_string_lossy().into_owned();
        let remote = if store::is_url(&spelled) { Some(store::Address::parse(&spelled)?) } else { None };
        // A folder: an existing one, or a path written with a trailing slash.
        let folder = match &remote {
            Some(at) => at.is_folder(),
            None => self.out.is_dir() || spelled.ends_with(std::path::MAIN_SEPARATOR),
        };
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
        let publish = match remote {
            None => {
                self.check_output()?;
                None
            }
            Some(at) => {
                let to = match task {
                    Some(t) => at.join(&shards::part_name(t.index, t.count)),
                    None => at,
                };
                Some(self.stage(to)?)
            }
        };
        Ok(ValidOptions { options: self, task, notes, publish, labels })
    }
}

impl Options {
    /// An `s3://` output, reached now (credentials, endpoint, bucket), so
    /// that a run that could not upload never starts; what the bucket holds
    /// there already is copied beside the staged file for resuming.
    fn stage(&mut self, to: store::Address) -> Result<Publish> {
        let bucket = store::Bucket::open(&to)?;
        bucket.check_folder(to.key.rsplit_once('/').map_or("", |(folder, _)| folder))?;
        let exists = bucket.size(&to.key)?.is_some();
        let io = |e| store::Error::Local { path: std::env::temp_dir(), source: e };
        let staging = tempfile::Builder::new().prefix("extract-out-").tempdir().map_err(io)?;
        let name = to.key.rsplit('/').next().filter(|n| !n.is_empty()).unwrap_or("features.parquet");
        self.out = staging.path().join(name);
        if exists && !self.overwrite {
            bucket.download(&to.key, &self.out)?;
        }
        Ok(Publish { to, bucket, _staging: Arc::new(staging) })
    }

    /// The output rule: `--out` (the part, for a sharded run) is no device
    /// node, not the model, and not inside the image folders the run reads.
    fn check_output(&self) -> Result<()> {
        use atomic::Input;
        // A brace range of shards: the folder they are in.
        let spelled = self.images.to_string_lossy();
        let images = match spelled.find('{') {
            Some(i) => Path::new(&spelled[..i]).parent().unwrap_or(Path::new(".")).to_owned(),
            None => self.images.clone(),
        };
        let mut inputs = Vec::new();
        // Images in a bucket are no local tree an output could land in.
        if !store::is_url(&spelled) {
            inputs.push(Input::Tree { what: "image folder", path: &images });
        }
        if let Some(dir) = &self.calibrate_on {
            inputs.push(Input::Tree { what: "calibration folder", path: dir });
        }
        if let ModelSpec::File(model) = &self.model {
            inputs.push(Input::Path { what: "model", path: model });
        }
        Ok(atomic::check_destination(&self.out, &inputs)?)
    }
}

/// The most classes a class map may list (ImageNet-21k has 21,841).
const MAX_CLASSES: usize = 1_000_000;

/// A class map: one class name per line, in index order (timm's
/// `class_map` file); blank lines and surrounding spaces do not count.
fn read_class_map(path: &Path) -> Result<Vec<String>> {
    let bad = |why: String| Error::ClassMap { path: path.to_owned(), why };
    let meta = std::fs::metadata(path).map_err(|e| bad(e.to_string()))?;
    if !meta.is_file() {
        return Err(bad(format!("not a regular file ({})", atomic::kind_of(&meta))));
    }
    if meta.len() > 64 << 20 {
        return Err(bad(format!("{} bytes is no class list", meta.len())));
    }
    let text = std::fs::read_to_string(path).map_err(|e| bad(e.to_string()))?;
    let classes: Vec<String> = text.lines().map(str::trim).filter(|l| !l.is_empty()).map(str::to_string).collect();
    if classes.is_empty() || classes.len() > MAX_CLASSES {
        return Err(bad(format!("{} classes listed (1 to {MAX_CLASSES})", classes.len())));
    }
    let mut seen = std::collections::HashSet::new();
    if let Some(twice) = classes.iter().find(|c| !seen.insert(c.as_str())) {
        return Err(bad(format!("{twice:?} is listed twice")));
    }
    Ok(classes)
}
