//! What `--model` names, turned into a model: an ONNX file, a PyTorch or
//! MindSpore checkpoint (converted once, the conversion cached by the
//! checkpoint's sha256), or named weights (downloaded once, verified,
//! then as a checkpoint).

use std::fmt;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use prost::Message;

use featurefile::WeightsInfo;

use crate::cache::Cache;
use crate::checkpoint::{self, Kind};
use crate::download::{self, DownloadEvent, FetchError};
use crate::model::{self, identity, sha256_file, IdentityError, Model};
use crate::releases::{self, Format, Named};
use crate::resnet::{self, Padding};

/// The model used when none is given.
pub const DEFAULT: &str = "torchvision:IMAGENET1K_V1";

/// A `--model` value.
#[derive(Debug, Clone, PartialEq)]
pub enum ModelSpec {
    File(PathBuf),
    Named(&'static Named),
}

impl FromStr for ModelSpec {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        if let Some(n) = Named::find(s) {
            return Ok(ModelSpec::Named(n));
        }
        let prefix = s.split_once(':').map(|(p, _)| p);
        if releases::NAMED.iter().any(|n| n.name.split_once(':').map(|(p, _)| p) == prefix) {
            let names: Vec<&str> = releases::NAMED.iter().map(|n| n.name).collect();
            return Err(format!("unknown weights {s:?}: named weights are {}", names.join(", ")));
        }
        Ok(ModelSpec::File(PathBuf::from(s)))
    }
}

impl fmt::Display for ModelSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ModelSpec::File(p) => write!(f, "{}", p.display()),
            ModelSpec::Named(n) => f.write_str(n.name),
        }
    }
}

impl Default for ModelSpec {
    fn default() -> Self {
        DEFAULT.parse().expect("the default is a named model")
    }
}

/// A model ready to run.
pub struct Opened {
    pub spec: ModelSpec,
    pub model: Model,
    /// The model's identity (FEATURE-FILE.md).
    pub sha256: String,
    /// Where its external data files are, if it has any.
    pub weights_dir: Option<PathBuf>,
    /// The weights it carries, as the feature file records them.
    pub weights: Option<WeightsInfo>,
    /// What the feature file's `extract.model.file` records: the name the
    /// user gave (the file's name, or the weights' name).
    pub file_name: String,
}

impl Opened {
    /// The model's ONNX bytes as a single file (external data read in).
    pub fn proto(&self, tensors: &[&str]) -> Result<crate::onnx::ModelProto, Error> {
        let mut p = self.model.cut(tensors);
        if let Some(dir) = &self.weights_dir {
            model::inline_external_data(&mut p, dir).map_err(|e| self.model_err(e))?;
        }
        Ok(p)
    }

    /// The model cut to `tensors`, its weights inline and its batch
    /// normalizations folded into their convolutions, in float32 before any
    /// rounding: where int8 and fp16 start.
    pub fn folded(&self, tensors: &[&str]) -> Result<crate::onnx::ModelProto, Error> {
        let mut p = self.proto(tensors)?;
        crate::fold::batch_norms(&mut p);
        Ok(p)
    }

    fn model_err(&self, e: model::Error) -> Error {
        Error::Model { what: self.spec.to_string(), source: e }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("model file {} does not exist (named weights: {})", .0.display(), named_list())]
    Missing(PathBuf),
    #[error("{}: {source}", .path.display())]
    Io { path: PathBuf, source: std::io::Error },
    #[error("{what}: {source}")]
    Model { what: String, source: model::Error },
    #[error(transparent)]
    Checkpoint(#[from] checkpoint::Error),
    #[error("{}: {source}", .path.display())]
    Weights { path: PathBuf, source: resnet::WeightsError },
    #[error("{name}: {source}; download {url} elsewhere and give --model FILE")]
    Fetch { name: &'static str, url: &'static str, source: FetchError },
    #[error("{name}: no cache folder (neither XDG_CACHE_HOME nor HOME is set); download {url} elsewhere and give --model FILE")]
    NoCache { name: &'static str, url: &'static str },
    #[error("{} in the cache is not {name}: {why}; remove it to download it again", .path.display())]
    CachedWrong { name: &'static str, path: PathBuf, why: String },
}

fn named_list() -> String {
    releases::NAMED.iter().map(|n| n.name).collect::<Vec<_>>().join(", ")
}

/// Opens what `spec` names. `cache` keeps downloads and conversions;
/// `report` hears of downloads and notes.
pub fn open(spec: &ModelSpec, cache: Option<&Cache>, report: &mut dyn FnMut(DownloadEvent)) -> Result<Opened, Error> {
    match spec {
        ModelSpec::File(path) => open_file(spec, path, cache, report),
        ModelSpec::Named(n) => open_named(spec, n, cache, report),
    }
}

fn io(path: &Path) -> impl Fn(std::io::Error) -> Error + '_ {
    move |e| match e.kind() {
        std::io::ErrorKind::NotFound => Error::Missing(path.to_owned()),
        _ => Error::Io { path: path.to_owned(), source: e },
    }
}

fn open_file(
    spec: &ModelSpec,
    path: &Path,
    cache: Option<&Cache>,
    report: &mut dyn FnMut(DownloadEvent),
) -> Result<Opened, Error> {
    let mut head = [0u8; 8];
    let n = std::fs::File::open(path).and_then(|mut f| f.read(&mut head)).map_err(io(path))?;
    let is_onnx = path.extension().is_some_and(|e| e == "onnx");
    let kind = (!is_onnx).then(|| Kind::of(path, &head[..n])).flatten();
    let file_name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    match kind {
        None => open_onnx(spec, path, file_name, None),
        Some(kind) => {
            let sha256 = sha256_file(path).map_err(io(path))?;
            let recipe = match Named::by_sha256(&sha256) {
                Some(n) => Recipe::of(n, kind, sha256),
                None => Recipe {
                    kind,
                    padding: if kind == Kind::MindSpore { Padding::Same } else { Padding::Symmetric },
                    resize: 256,
                    crop: 224,
                    license: None,
                    // Named by content, not by file name: the conversion (and
                    // so the model's identity) depends on the weights alone.
                    record: WeightsInfo {
                        name: format!("checkpoint sha256 {} (not a known release)", &sha256[..12]),
                        url: String::new(),
                        sha256,
                    },
                },
            };
            converted(spec, path, recipe, file_name, cache, report)
        }
    }
}

fn open_onnx(spec: &ModelSpec, path: &Path, file_name: String, weights: Option<WeightsInfo>) -> Result<Opened, Error> {
    let bytes = std::fs::read(path).map_err(io(path))?;
    let model = Model::parse(&bytes).map_err(|e| Error::Model { what: path.display().to_string(), source: e })?;
    let (sha256, weights_dir) = identity(path, &bytes, &model).map_err(|e| match e {
        IdentityError::Model(e) => Error::Model { what: path.display().to_string(), source: e },
        IdentityError::Io { path, source } => Error::Io { path, source },
    })?;
    let weights = weights.or_else(|| {
        Some(WeightsInfo {
            name: model.metadata("weights")?.to_string(),
            url: model.metadata("source_url").unwrap_or_default().to_string(),
            sha256: model.metadata("source_sha256").unwrap_or_default().to_string(),
        })
    });
    Ok(Opened { spec: spec.clone(), model, sha256, weights_dir, weights, file_name })
}

/// How a checkpoint becomes a model, and what the model records.
struct Recipe {
    kind: Kind,
    padding: Padding,
    resize: u32,
    crop: u32,
    license: Option<&'static str>,
    record: WeightsInfo,
}

impl Recipe {
    /// A release's: its padding, eval sizes, licence, name and address.
    fn of(n: &'static Named, kind: Kind, sha256: String) -> Self {
        Recipe {
            kind,
            padding: n.padding,
            resize: n.resize,
            crop: n.crop,
            license: Some(n.license),
            record: release_record(n, sha256),
        }
    }
}

/// A release's weights record: the release's own address, not a mirror's,
/// so the model's identity depends on the weights alone.
fn release_record(n: &Named, sha256: String) -> WeightsInfo {
    WeightsInfo { name: n.weights.to_string(), url: n.url.to_string(), sha256 }
}

/// A checkpoint's model: its cached conversion, else converted now (and
/// cached where the cache can be written).
fn converted(
    spec: &ModelSpec,
    path: &Path,
    recipe: Recipe,
    file_name: String,
    cache: Option<&Cache>,
    report: &mut dyn FnMut(DownloadEvent),
) -> Result<Opened, Error> {
    let Recipe { kind, padding, resize, crop, license, record } = recipe;
    let cached = cache.map(|c| c.converted(&record.sha256));
    if let Some(c) = cached.as_ref().filter(|c| c.is_file()) {
        if let Ok(o) = open_onnx(spec, c, file_name.clone(), Some(record.clone())) {
            return Ok(o);
        }
        // A damaged conversion is made again below.
    }
    let mut params = checkpoint::read(path, kind)?;
    if kind == Kind::MindSpore {
        let (renamed, ignored) = resnet::from_mindspore(params);
        if !ignored.is_empty() {
            let shown: Vec<&str> = ignored.iter().take(3).map(String::as_str).collect();
            report(DownloadEvent::Note(format!(
                "ignoring {} entries of {} that are not weights (optimizer state, counters: {}{})",
                ignored.len(),
                path.display(),
                shown.join(", "),
                if ignored.len() > 3 { ", ..." } else { "" }
            )));
        }
        params = renamed;
    }
    resnet::check(&params).map_err(|e| Error::Weights { path: path.to_owned(), source: e })?;
    let mut meta = vec![
        ("weights".to_string(), record.name.clone()),
        ("source_url".to_string(), record.url.clone()),
        ("source_sha256".to_string(), record.sha256.clone()),
        ("eval_resize".to_string(), resize.to_string()),
        ("eval_crop".to_string(), crop.to_string()),
    ];
    if let Some(l) = license {
        meta.push(("license".to_string(), l.to_string()));
    }
    let proto = resnet::build(&params, padding, crop as i64, &format!("ResNet50, {}", record.name), &meta);
    drop(params);
    let bytes = proto.encode_to_vec();
    if let Some(c) = &cached {
        if let Err(e) = atomic::write_bytes(c, &bytes) {
            report(DownloadEvent::Note(format!(
                "cannot cache the conversion at {}: {e}; converting again next time",
                c.display()
            )));
        }
    }
    let model = Model::from_proto(proto).map_err(|e| Error::Model { what: path.display().to_string(), source: e })?;
    let sha256 = hex::encode(<sha2::Sha256 as sha2::Digest>::digest(&bytes));
    Ok(Opened { spec: spec.clone(), model, sha256, weights_dir: None, weights: Some(record), file_name })
}

fn open_named(
    spec: &ModelSpec,
    n: &'static Named,
    cache: Option<&Cache>,
    report: &mut dyn FnMut(DownloadEvent),
) -> Result<Opened, Error> {
    let cache = cache.ok_or(Error::NoCache { name: n.name, url: n.url })?;
    let file = cache.checkpoint(n.file_name());
    let sidecar = file.with_file_name(format!("{}.sha256", n.file_name()));
    let url = n.url();
    let sha256 = match std::fs::read_to_string(&sidecar).ok().map(|s| s.trim().to_string()).filter(|_| file.is_file()) {
        Some(sha) => sha,
        None if file.is_file() => {
            // Put there by hand: it must be the release.
            let sha = sha256_file(&file).map_err(io(&file))?;
            let size = std::fs::metadata(&file).map_err(io(&file))?.len();
            n.verify(&sha, size).map_err(|why| Error::CachedWrong { name: n.name, path: file.clone(), why })?;
            let _ = atomic::write_bytes(&sidecar, format!("{sha}\n").as_bytes());
            sha
        }
        None => {
            let fetch = |source| Error::Fetch { name: n.name, url: n.url, source };
            let sha = download::download(&url, &file, |sha, size| n.verify(sha, size), report).map_err(fetch)?;
            atomic::write_bytes(&sidecar, format!("{sha}\n").as_bytes()).map_err(io(&sidecar))?;
            report(DownloadEvent::Note(format!(
                "{}: {} verified, sha256 {sha}, cached at {}",
                n.name,
                url,
                file.display()
            )));
            sha
        }
    };
    match n.format {
        Format::Onnx => open_onnx(spec, &file, n.name.to_string(), Some(release_record(n, sha256))),
        Format::Checkpoint(kind) => {
            converted(spec, &file, Recipe::of(n, kind, sha256), n.name.to_string(), Some(cache), report)
        }
    }
}
