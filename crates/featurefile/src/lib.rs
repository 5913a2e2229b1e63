//! The feature file, contract v1: the Parquet seam between `extract` and
//! `classify` (the contract is `FEATURE-FILE.md` beside this crate).
//!
//! This crate is the one owner of the schema: column names and types, the
//! footer's metadata keys and their JSON shapes. `extract` writes through
//! [`FeatureWriter`], `classify` reads through [`FeatureFile::open`], and
//! neither spells a key or a column name itself.
//! The file is written whole or not at all (the `atomic` crate).

/// A unit-only enum a user names (a flag's value, as the files record it):
/// its names (`NAMES`), `Display` and `FromStr` come from one table, the
/// one way every crate of the workspace spells a named choice. Variants
/// after `unlisted` print but are never a choice (`Pool::None`).
#[macro_export]
macro_rules! named_choice {
    ($t:ty { $($variant:ident => $name:literal),+ $(,)? } $(unlisted { $($uvariant:ident => $uname:literal),+ $(,)? })?) => {
        impl $t {
            pub const NAMES: &'static [&'static str] = &[$($name),+];
        }
        impl std::fmt::Display for $t {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(match self { $(Self::$variant => $name,)+ $($(Self::$uvariant => $uname,)+)? })
            }
        }
        impl std::str::FromStr for $t {
            type Err = String;
            fn from_str(s: &str) -> std::result::Result<Self, String> {
                match s {
                    $($name => Ok(Self::$variant),)+
                    _ => Err(format!("{s:?} is not one of {}", Self::NAMES.join(", "))),
                }
            }
        }
    };
}

pub mod paths;
pub mod shards;

use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow::array::{Array, ArrayRef, FixedSizeListArray, Float32Array, Int32Array, RecordBatch, StringArray};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use parquet::arrow::arrow_reader::{ArrowReaderMetadata, ArrowReaderOptions, ParquetRecordBatchReaderBuilder};
use parquet::arrow::arrow_writer::ArrowWriterOptions;
use parquet::arrow::ProjectionMask;
use parquet::arrow::{encode_arrow_schema, ArrowWriter, ARROW_SCHEMA_META_KEY};
use parquet::basic::Compression;
use parquet::file::metadata::KeyValue;
use parquet::file::properties::WriterProperties;
use serde::{Deserialize, Serialize};

/// The one `extract.format` this crate reads and writes.
pub const FORMAT: &str = "1";

/// Column names fixed by the contract; feature columns are named after their layer.
pub mod columns {
    pub const PATH: &str = "path";
    pub const LABEL: &str = "label";
    pub const LABEL_NAME: &str = "label_name";
    /// Only in a file of several views per image (`extract.preprocess`'s `views`).
    pub const VIEW: &str = "view";
    /// Every fixed column, in file order (feature columns follow them);
    /// `VIEW` only where there are views.
    pub const ALL: [&str; 4] = [PATH, LABEL, LABEL_NAME, VIEW];
}

/// Footer metadata keys.
pub mod keys {
    pub const FORMAT: &str = "extract.format";
    pub const VERSION: &str = "extract.version";
    pub const MODEL: &str = "extract.model";
    pub const CLASSES: &str = "extract.classes";
    pub const LAYERS: &str = "extract.layers";
    pub const PREPROCESS: &str = "extract.preprocess";
    pub const ROOT: &str = "extract.root";
    pub const SKIPPED: &str = "extract.skipped";
    /// Only when the model's weights are known (a checkpoint, named weights,
    /// a model that records them).
    pub const WEIGHTS: &str = "extract.weights";
    /// Only in a part of a sharded run (see [`crate::shards`]).
    pub const SHARD: &str = "extract.shard";
    /// What ran the network, at which precision (files written before the
    /// key existed ran fp32 on an unrecorded device).
    pub const INFERENCE: &str = "extract.inference";
    /// Every key the writer puts in the footer (`WEIGHTS` and `SHARD` only where they apply).
    pub const ALL: [&str; 11] =
        [FORMAT, VERSION, MODEL, CLASSES, LAYERS, PREPROCESS, ROOT, SKIPPED, WEIGHTS, SHARD, INFERENCE];
}

/// Rows buffered before a row group is flushed: bounds memory whatever the
/// number of images, while keeping row groups large enough to scan fast.
pub const ROWS_PER_GROUP: usize = 1024;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },
    #[error("{path}: not a Parquet file ({reason})")]
    NotParquet { path: PathBuf, reason: String },
    #[error("{path}: not a feature file: {reason}")]
    NotFeatureFile { path: PathBuf, reason: String },
    #[error("{path}: feature file format {found:?} is not supported (this tool reads format {FORMAT})")]
    UnknownFormat { path: PathBuf, found: String },
    #[error("writing {path}: {reason}")]
    Write { path: PathBuf, reason: String },
    #[error("{0}: no part-KKKKK-of-NNNNN.parquet files in this folder (extract --shard writes them)")]
    NoParts(PathBuf),
    #[error("{dir}: {missing} of {count} parts missing, first {first} (--allow-partial reads the others)")]
    MissingParts { dir: PathBuf, missing: usize, count: usize, first: String },
    #[error("{path}: {what} (parts of different runs in one folder?)")]
    DisagreeingPart { path: PathBuf, what: String },
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// A SHA-256's first 12 hex digits: enough to tell two models apart in a
/// one-line message.
pub fn short_hash(sha256: &str) -> &str {
    &sha256[..sha256.len().min(12)]
}

/// The pretrained weights behind the model: their name, the address they
/// come from (empty when not known) and the sha256 of the file as published
/// (the checkpoint, before conversion).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WeightsInfo {
    pub name: String,
    pub url: String,
    pub sha256: String,
}

/// The numbers the network computed in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Precision {
    #[default]
    Fp32,
    /// IEEE half precision, the input and outputs still float32.
    Fp16,
    Int8,
}

named_choice!(Precision { Fp32 => "fp32", Fp16 => "fp16", Int8 => "int8" });

/// How the network ran: the device that ran it (`cpu`, `cuda:N`,
/// `openvino`) and the precision it computed in; for int8, its calibration.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Inference {
    pub device: String,
    pub precision: Precision,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub calibration: Option<Calibration>,
}

/// What an int8 model's activation ranges were measured on.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Calibration {
    /// Images of the run's folder, preprocessed as the run's are.
    pub images: usize,
    /// SHA-256 of those images' preprocessed values (float32, little-endian, in order).
    pub sha256: String,
    /// How ranges were taken: `minmax`.
    pub method: String,
    /// The quantizer's version (a new one may quantize the same inputs otherwise).
    pub quantizer: u32,
    /// The weights' range: 8 (-127..127), or 7 (-64..64) where the CPU's
    /// u8 x s8 kernels would saturate. Files before the key: 8.
    #[serde(default = "eight_bits")]
    pub weight_bits: u8,
}

fn eight_bits() -> u8 {
    8
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelInfo {
    pub file: String,
    pub sha256: String,
    pub input: String,
}

/// What `extract` applied to a layer's activations to get one vector.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Pool {
    Avg,
    Max,
    #[serde(rename = "avgmax")]
    AvgMax,
    /// The tensor already is a vector (avgpool): never a choice to make.
    None,
}

// `None` is never asked for.
named_choice!(Pool { Avg => "avg", Max => "max", AvgMax => "avgmax" } unlisted { None => "none" });

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LayerInfo {
    pub tensor: String,
    pub pool: Pool,
    pub dim: usize,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Preprocess {
    pub resize: u32,
    pub crop: u32,
    pub mean: [f64; 3],
    pub std: [f64; 3],
    pub filter: String,
    /// Absent in files written before JPEGs were decoded at reduced scale:
    /// those decoded every image in full.
    #[serde(default)]
    pub decode: Decode,
    /// Only in a file of several rows per image (`extract --views`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub views: Option<Views>,
}

/// Several rows per image: view 0 is the eval transform above; views
/// 1..count-1 are random resized crops of the upright picture, each flipped
/// left-right or not, drawn from a generator seeded by `seed` and the row's
/// `path` (FEATURE-FILE.md spells the algorithm out).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Views {
    pub count: u32,
    pub seed: u64,
    /// The crop's share of the picture's area, drawn uniformly in this range.
    pub scale: [f64; 2],
    /// The crop's width / height, drawn log-uniformly in this range.
    pub ratio: [f64; 2],
    /// The chance of the left-right flip.
    pub flip: f64,
}

impl Views {
    /// torchvision's `RandomResizedCrop` and `RandomHorizontalFlip` defaults:
    /// the tutorial's training transform.
    pub fn tutorial(count: u32, seed: u64) -> Self {
        Views { count, seed, scale: [0.08, 1.0], ratio: [3.0 / 4.0, 4.0 / 3.0], flip: 0.5 }
    }

    /// Rows per image of a file with `views` (`None`: one row each).
    pub fn rows_per_image(views: Option<Views>) -> usize {
        views.map_or(1, |v| v.count as usize)
    }
}

impl std::fmt::Display for Views {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} views seed {}", self.count, self.seed)
    }
}

impl Preprocess {
    /// Rows per image: 1, or the views' count.
    pub fn views_per_image(&self) -> usize {
        Views::rows_per_image(self.views)
    }
}

/// How the images were decoded before the resize.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Decode {
    /// Every image at full size (PIL's `Image.open(...).convert("RGB")`).
    #[default]
    Exact,
    /// A JPEG whose shorter side is at least twice `resize` at the largest
    /// of its DCT scales 1/2, 1/4, 1/8 that keeps it at or above `resize`
    /// (PIL's `draft("RGB", (resize, resize))`); every other image in full.
    Scaled,
}

named_choice!(Decode { Exact => "exact", Scaled => "scaled" });

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Skipped {
    pub path: String,
    pub error: String,
}

/// Everything in the footer. `layers` keeps the order of the feature columns.
#[derive(Debug, Clone, PartialEq)]
pub struct Header {
    pub version: String,
    pub model: ModelInfo,
    pub weights: Option<WeightsInfo>,
    pub classes: Vec<String>,
    pub layers: Vec<(String, LayerInfo)>,
    pub preprocess: Preprocess,
    pub root: String,
    pub skipped: Vec<Skipped>,
    /// Only in a part of a sharded run.
    pub shard: Option<shards::Shard>,
    /// `None` only in files written before the key existed.
    pub inference: Option<Inference>,
}

impl Header {
    pub fn layer(&self, name: &str) -> Option<&LayerInfo> {
        self.layers.iter().find(|(n, _)| n == name).map(|(_, l)| l)
    }

    fn to_key_values(&self) -> Vec<KeyValue> {
        let json = |v: serde_json::Value| v.to_string();
        let layers: serde_json::Map<String, serde_json::Value> =
            self.layers.iter().map(|(n, l)| (n.clone(), serde_json::to_value(l).expect("plain struct"))).collect();
        // In the order of keys::ALL.
        let mut kvs = vec![
            KeyValue::new(keys::FORMAT.into(), FORMAT.to_string()),
            KeyValue::new(keys::VERSION.into(), self.version.clone()),
            KeyValue::new(keys::MODEL.into(), json(serde_json::to_value(&self.model).expect("plain struct"))),
            KeyValue::new(keys::CLASSES.into(), json(serde_json::to_value(&self.classes).expect("strings"))),
            KeyValue::new(keys::LAYERS.into(), json(serde_json::Value::Object(layers))),
            KeyValue::new(keys::PREPROCESS.into(), json(serde_json::to_value(&self.preprocess).expect("plain struct"))),
            KeyValue::new(keys::ROOT.into(), self.root.clone()),
            KeyValue::new(keys::SKIPPED.into(), json(serde_json::to_value(&self.skipped).expect("plain struct"))),
        ];
        if let Some(w) = &self.weights {
            kvs.push(KeyValue::new(keys::WEIGHTS.into(), json(serde_json::to_value(w).expect("plain struct"))));
        }
        if let Some(shard) = &self.shard {
            kvs.push(KeyValue::new(keys::SHARD.into(), json(serde_json::to_value(shard).expect("plain struct"))));
        }
        if let Some(inference) = &self.inference {
            kvs.push(KeyValue::new(
                keys::INFERENCE.into(),
                json(serde_json::to_value(inference).expect("plain struct")),
            ));
        }
        kvs
    }

    fn from_key_values(path: &Path, kvs: &[KeyValue]) -> Result<Self> {
        let bad = |reason: String| Error::NotFeatureFile { path: path.to_owned(), reason };
        let get = |key: &str| -> Result<&str> {
            kvs.iter()
                .find(|kv| kv.key == key)
                .and_then(|kv| kv.value.as_deref())
                .ok_or_else(|| bad(format!("footer has no {key} key")))
        };
        let format = get(keys::FORMAT)?;
        if format != FORMAT {
            return Err(Error::UnknownFormat { path: path.to_owned(), found: format.to_string() });
        }
        fn parse<T: serde::de::DeserializeOwned>(key: &str, v: &str) -> Result<T, String> {
            serde_json::from_str(v).map_err(|e| format!("{key} is not valid: {e}"))
        }
        let layers: serde_json::Map<String, serde_json::Value> =
            parse(keys::LAYERS, get(keys::LAYERS)?).map_err(bad)?;
        let layers = layers
            .into_iter()
            .map(|(n, v)| {
                serde_json::from_value(v)
                    .map(|l| (n.clone(), l))
                    .map_err(|e| bad(format!("{} entry {n:?} is not valid: {e}", keys::LAYERS)))
            })
            .collect::<Result<Vec<_>>>()?;
        if let Some((name, _)) = layers.iter().find(|(n, _)| columns::ALL.contains(&n.as_str())) {
            return Err(bad(format!("{} names a layer {name:?}, which is a fixed column's name", keys::LAYERS)));
        }
        let classes: Vec<String> = parse(keys::CLASSES, get(keys::CLASSES)?).map_err(bad)?;
        if let Some(twice) = classes.iter().enumerate().find(|(i, c)| classes[..*i].contains(c)).map(|(_, c)| c) {
            return Err(bad(format!("{} names the class {twice:?} twice", keys::CLASSES)));
        }
        Ok(Header {
            version: get(keys::VERSION)?.to_string(),
            model: parse(keys::MODEL, get(keys::MODEL)?).map_err(bad)?,
            weights: match get(keys::WEIGHTS) {
                Ok(v) => Some(parse(keys::WEIGHTS, v).map_err(bad)?),
                Err(_) => None,
            },
            classes,
            layers,
            preprocess: parse(keys::PREPROCESS, get(keys::PREPROCESS)?).map_err(bad)?,
            root: get(keys::ROOT)?.to_string(),
            skipped: parse(keys::SKIPPED, get(keys::SKIPPED)?).map_err(bad)?,
            shard: match get(keys::SHARD) {
                Ok(v) => Some(parse(keys::SHARD, v).map_err(bad)?),
                Err(_) => None,
            },
            inference: match get(keys::INFERENCE) {
                Ok(v) => Some(parse(keys::INFERENCE, v).map_err(bad)?),
                Err(_) => None,
            },
        })
    }
}

fn schema(layers: &[(String, usize)], views: bool) -> SchemaRef {
    let mut fields = vec![
        Field::new(columns::PATH, DataType::Utf8, false),
        Field::new(columns::LABEL, DataType::Int32, true),
        Field::new(columns::LABEL_NAME, DataType::Utf8, true),
    ];
    if views {
        fields.push(Field::new(columns::VIEW, DataType::Int32, false));
    }
    for (name, dim) in layers {
        fields.push(Field::new(name, feature_type(*dim), false));
    }
    Arc::new(Schema::new(fields))
}

fn feature_type(dim: usize) -> DataType {
    DataType::FixedSizeList(Arc::new(Field::new_list_field(DataType::Float32, false)), dim as i32)
}

/// One batch of rows on its way into the file.
pub struct Rows<'a> {
    pub paths: &'a [String],
    /// Class index per row; `None` for an image in no class folder.
    pub labels: &'a [Option<i32>],
    /// Per feature column, in the writer's layer order: rows x dim values, row-major.
    pub features: &'a [&'a [f32]],
    /// The view of each row, for a writer created with views; else empty.
    pub views: &'a [i32],
}

/// Streams rows into a temporary file beside the destination and renames it
/// into place on [`FeatureWriter::finish`]; dropped unfinished, it leaves
/// nothing behind at the destination.
pub struct FeatureWriter {
    dest: PathBuf,
    classes: Vec<String>,
    layers: Vec<(String, usize)>,
    views: bool,
    schema: SchemaRef,
    writer: ArrowWriter<File>,
    pending: atomic::Pending,
}

impl FeatureWriter {
    /// `layers` are (column name, dimension) in column order; `classes` the
    /// class names in index order.
    pub fn create(dest: &Path, classes: &[String], layers: &[(String, usize)]) -> Result<Self> {
        Self::create_with_views(dest, classes, layers, false)
    }

    /// As [`FeatureWriter::create`], with a `view` column when `views`
    /// (the header given to [`FeatureWriter::finish`] then records them).
    pub fn create_with_views(dest: &Path, classes: &[String], layers: &[(String, usize)], views: bool) -> Result<Self> {
        let werr = |reason: String| Error::Write { path: dest.to_owned(), reason };
        // Two columns of one name are a file pyarrow cannot read.
        if let Some((name, _)) = layers.iter().find(|(n, _)| columns::ALL.contains(&n.as_str())) {
            return Err(werr(format!("a feature column cannot be named {name:?}, a fixed column's name")));
        }
        let (file, pending) =
            atomic::Pending::create(dest).map_err(|e| Error::Io { path: dest.to_owned(), source: e })?;
        let schema = schema(layers, views);
        let props = WriterProperties::builder()
            .set_compression(Compression::SNAPPY)
            .set_max_row_group_row_count(Some(ROWS_PER_GROUP))
            .build();
        // The embedded Arrow schema is written at finish instead, carrying the
        // footer keys as schema metadata: pyarrow, pandas and polars show the
        // schema's metadata, not the Parquet footer's, once one is embedded.
        let options = ArrowWriterOptions::new().with_properties(props).with_skip_arrow_metadata(true);
        let writer =
            ArrowWriter::try_new_with_options(file, schema.clone(), options).map_err(|e| werr(e.to_string()))?;
        Ok(FeatureWriter {
            dest: dest.to_owned(),
            classes: classes.to_vec(),
            layers: layers.to_vec(),
            views,
            schema,
            writer,
            pending,
        })
    }

    pub fn write(&mut self, rows: Rows<'_>) -> Result<()> {
        let n = rows.paths.len();
        assert_eq!(rows.labels.len(), n, "one label per row");
        assert_eq!(rows.features.len(), self.layers.len(), "one buffer per feature column");
        let label_names: StringArray =
            rows.labels.iter().map(|l| l.map(|i| self.classes[i as usize].as_str())).collect();
        let mut cols: Vec<ArrayRef> = vec![
            Arc::new(StringArray::from_iter_values(rows.paths.iter())),
            Arc::new(Int32Array::from(rows.labels.to_vec())),
            Arc::new(label_names),
        ];
        if self.views {
            assert_eq!(rows.views.len(), n, "one view per row");
            cols.push(Arc::new(Int32Array::from(rows.views.to_vec())));
        }
        for ((_, dim), values) in self.layers.iter().zip(rows.features) {
            assert_eq!(values.len(), n * dim, "rows x dim values per feature column");
            let field = Arc::new(Field::new_list_field(DataType::Float32, false));
            let values = Arc::new(Float32Array::from(values.to_vec()));
            cols.push(Arc::new(FixedSizeListArray::new(field, *dim as i32, values, None)));
        }
        let batch = RecordBatch::try_new(self.schema.clone(), cols).expect("columns match the schema");
        self.writer.write(&batch).map_err(|e| Error::Write { path: self.dest.clone(), reason: e.to_string() })?;
        Ok(())
    }

    /// Writes the footer, then moves the file into place in one rename.
    pub fn finish(mut self, header: &Header) -> Result<PathBuf> {
        let werr = |reason: String| Error::Write { path: self.dest.clone(), reason };
        let names: Vec<_> = header.layers.iter().map(|(n, l)| (n.clone(), l.dim)).collect();
        assert_eq!(names, self.layers, "the header describes the columns written");
        assert_eq!(header.preprocess.views.is_some(), self.views, "the header records the views written");
        let kvs = header.to_key_values();
        let metadata: std::collections::HashMap<String, String> =
            kvs.iter().map(|kv| (kv.key.clone(), kv.value.clone().unwrap_or_default())).collect();
        let schema = self.schema.as_ref().clone().with_metadata(metadata);
        self.writer
            .append_key_value_metadata(KeyValue::new(ARROW_SCHEMA_META_KEY.into(), encode_arrow_schema(&schema)));
        for kv in kvs {
            self.writer.append_key_value_metadata(kv);
        }
        let file = self.writer.into_inner().map_err(|e| werr(e.to_string()))?;
        self.pending.commit(file).map_err(|e| werr(e.to_string()))
    }
}

/// One feature column, read whole: rows x dim values, row-major.
#[derive(Debug, Clone)]
pub struct FeatureColumn {
    pub name: String,
    pub dim: usize,
    pub values: Vec<f32>,
}

impl FeatureColumn {
    pub fn row(&self, i: usize) -> &[f32] {
        &self.values[i * self.dim..(i + 1) * self.dim]
    }
}

/// A feature file read into memory.
#[derive(Debug, Clone)]
pub struct FeatureFile {
    pub header: Header,
    pub paths: Vec<String>,
    pub labels: Vec<Option<i32>>,
    /// Each row's view, in a file of several views per image; else empty.
    pub views: Vec<i32>,
    pub columns: Vec<FeatureColumn>,
}

impl FeatureFile {
    /// Reads a feature file, or a folder of parts, whole: every part must be
    /// there.
    pub fn open(path: &Path) -> Result<Self> {
        Source::open(path, false)?.read(None)
    }

    pub fn len(&self) -> usize {
        self.paths.len()
    }

    pub fn is_empty(&self) -> bool {
        self.paths.is_empty()
    }

    pub fn column(&self, name: &str) -> Option<&FeatureColumn> {
        self.columns.iter().find(|c| c.name == name)
    }
}

impl Parts {
    /// Missing parts named in a message; the rest are counted.
    pub const NAMED_MISSING: usize = 5;
}

/// Where rows come from: one feature file, or a folder of parts (see
/// [`shards`]) read as one table. Opening reads the footers only, so a
/// caller can say how much memory the rows will take before reading them.
#[derive(Debug, Clone)]
pub struct Source {
    /// The file's header; for parts, the first part's, with every part's
    /// skipped images and no shard record.
    pub header: Header,
    /// Rows in all the files.
    pub rows: usize,
    /// For a folder: which parts were there.
    pub parts: Option<Parts>,
    /// Each file with its footer, read once by `open`, reused by `read`.
    files: Vec<(PathBuf, ArrowReaderMetadata)>,
}

/// The parts found in a folder.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Parts {
    pub count: usize,
    /// How many parts are missing (only with `allow_partial`).
    pub missing: usize,
    /// The first missing parts' names, at most [`Parts::NAMED_MISSING`].
    pub first_missing: Vec<String>,
    /// Images in the present parts' ranges, and in the whole list.
    pub images: usize,
    pub total_images: usize,
}

impl Source {
    /// A file, or a folder of `part-KKKKK-of-NNNNN.parquet` files: all N
    /// must be there (unless `allow_partial`) and agree on the model,
    /// layers, classes, preprocessing and image list.
    pub fn open(path: &Path, allow_partial: bool) -> Result<Self> {
        if !path.is_dir() {
            let (header, rows, meta) = footer(path)?;
            return Ok(Source { header, rows, parts: None, files: vec![(path.to_owned(), meta)] });
        }
        let io = |e| Error::Io { path: path.to_owned(), source: e };
        let mut found: Vec<(usize, usize, PathBuf)> = Vec::new();
        for entry in std::fs::read_dir(path).map_err(io)? {
            let entry = entry.map_err(io)?;
            if let Some((k, n)) = entry.file_name().to_str().and_then(shards::parse_part_name) {
                found.push((k, n, entry.path()));
            }
        }
        found.sort();
        let Some(&(_, count, ref first_path)) = found.first() else {
            return Err(Error::NoParts(path.to_owned()));
        };
        if let Some((_, n, p)) = found.iter().find(|(_, n, _)| *n != count) {
            return Err(Error::DisagreeingPart {
                path: p.clone(),
                what: format!("a part of {n}, beside {} of {count}", name_of(first_path)),
            });
        }
        // Counted from the parts found, never by walking 0..count: the
        // count is read from a file name.
        let missing = count - found.len();
        let first_missing: Vec<String> = (0..count)
            .filter(|k| found.binary_search_by_key(k, |(i, _, _)| *i).is_err())
            .take(Parts::NAMED_MISSING)
            .map(|k| shards::part_name(k, count))
            .collect();
        if missing > 0 && !allow_partial {
            return Err(Error::MissingParts { dir: path.to_owned(), missing, count, first: first_missing[0].clone() });
        }
        let mut merged: Option<Header> = None;
        let (mut rows, mut images) = (0, 0);
        let mut files = Vec::with_capacity(found.len());
        for (k, _, p) in &found {
            let (h, n, meta) = footer(p)?;
            files.push((p.clone(), meta));
            let disagree = |what: String| Error::DisagreeingPart { path: p.clone(), what };
            let numbers = |h: &Header| {
                h.inference.as_ref().map_or((Precision::Fp32, None), |i| (i.precision, i.calibration.clone()))
            };
            let Some(shard) = h.shard.clone() else {
                return Err(disagree(format!("no {} record in its footer", keys::SHARD)));
            };
            if (shard.index, shard.count) != (*k, count) {
                return Err(disagree(format!("its footer says part {} of {}", shard.index, shard.count)));
            }
            images += shard.images;
            rows += n;
            match &mut merged {
                None => merged = Some(h),
                Some(m) => {
                    let first = m.shard.as_ref().expect("checked above");
                    let than = format!("than {}", name_of(first_path));
                    if h.model.sha256 != m.model.sha256 {
                        return Err(disagree(format!("another model (sha256 {}) {than}", h.model.sha256)));
                    }
                    if h.layers != m.layers {
                        return Err(disagree(format!("other layers {than}")));
                    }
                    if h.classes != m.classes {
                        return Err(disagree(format!("other classes {than}")));
                    }
                    if h.preprocess != m.preprocess {
                        return Err(disagree(format!("other preprocessing {than}")));
                    }
                    // Devices may differ between parts; what the numbers were computed in may not.
                    if numbers(&h) != numbers(m) {
                        return Err(disagree(format!("another precision or int8 calibration {than}")));
                    }
                    if shard.total_images != first.total_images {
                        return Err(disagree(format!(
                            "a list of {} images where {} has {}: the image folder changed between tasks",
                            shard.total_images,
                            name_of(first_path),
                            first.total_images
                        )));
                    }
                    m.skipped.extend(h.skipped);
                }
            }
        }
        let mut header = merged.expect("at least one part");
        let total_images = header.shard.take().expect("checked above").total_images;
        header.skipped.sort_by(|a, b| a.path.cmp(&b.path));
        Ok(Source { header, rows, parts: Some(Parts { count, missing, first_missing, images, total_images }), files })
    }

    /// Reads the rows, with the feature columns named in `columns` only
    /// (all when `None`), in file (part) order.
    pub fn read(&self, columns: Option<&[&str]>) -> Result<FeatureFile> {
        let wanted: Vec<&(String, LayerInfo)> =
            self.header.layers.iter().filter(|(n, _)| columns.is_none_or(|c| c.contains(&n.as_str()))).collect();
        let mut out = FeatureFile {
            columns: wanted
                .iter()
                .map(|(n, l)| FeatureColumn {
                    name: n.clone(),
                    dim: l.dim,
                    values: Vec::with_capacity(self.rows * l.dim),
                })
                .collect(),
            header: self.header.clone(),
            paths: Vec::with_capacity(self.rows),
            labels: Vec::with_capacity(self.rows),
            views: Vec::new(),
        };
        for (path, meta) in &self.files {
            read_rows(path, meta, &mut out)?;
        }
        // What the whole read names: the file, or the folder of parts.
        let contradiction = |reason: String| {
            let first = &self.files[0].0;
            let path = match self.parts {
                Some(_) => first.parent().unwrap_or(first),
                None => first,
            };
            Error::NotFeatureFile { path: path.to_owned(), reason }
        };
        check_unique_paths(&out).map_err(contradiction)?;
        if let Some(v) = self.header.preprocess.views {
            check_views(&out, v.count).map_err(contradiction)?;
        }
        Ok(out)
    }
}

/// A path is one image: its row (or, in a file of views, its consecutive
/// rows) appears once. Two rows of one path would be scored twice and
/// split across cross-validation folds.
fn check_unique_paths(f: &FeatureFile) -> Result<(), String> {
    let mut seen = std::collections::HashSet::with_capacity(f.paths.len());
    for (i, p) in f.paths.iter().enumerate() {
        // A file of views repeats a path on consecutive rows (check_views
        // checks their order); anything else is a second image of one path.
        if i > 0 && !f.views.is_empty() && f.paths[i - 1] == *p {
            continue;
        }
        if !seen.insert(p.as_str()) {
            return Err(format!("path {p:?} appears on two rows: each image is one row"));
        }
    }
    Ok(())
}

/// An image's rows are consecutive and are its views 0..count-1 in order:
/// what `classify` averages per image and keeps together in its folds.
fn check_views(f: &FeatureFile, count: u32) -> Result<(), String> {
    if count < 2 {
        return Err(format!("{} records {count} views; a file of views has at least 2", keys::PREPROCESS));
    }
    let mut i = 0;
    while i < f.paths.len() {
        for v in 0..count as usize {
            let row = i + v;
            let found = f.views.get(row).filter(|_| row < f.paths.len() && f.paths[row] == f.paths[i]);
            if found != Some(&(v as i32)) {
                let what = match found {
                    Some(other) => format!("view {other}"),
                    None => "no more rows".to_string(),
                };
                return Err(format!(
                    "image {} has {what} where view {v} of its {count} was due (column {:?}: every image has views 0..{} in order)",
                    f.paths[i],
                    columns::VIEW,
                    count - 1
                ));
            }
        }
        i += count as usize;
    }
    Ok(())
}

fn name_of(p: &Path) -> String {
    p.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default()
}

fn open_file(path: &Path) -> Result<File> {
    File::open(path).map_err(|e| Error::Io { path: path.to_owned(), source: e })
}

/// A file's header, row count and Parquet footer, its columns checked
/// against the header.
fn footer(path: &Path) -> Result<(Header, usize, ArrowReaderMetadata)> {
    let meta = ArrowReaderMetadata::load(&open_file(path)?, ArrowReaderOptions::new())
        .map_err(|e| Error::NotParquet { path: path.to_owned(), reason: e.to_string() })?;
    let bad = |reason: String| Error::NotFeatureFile { path: path.to_owned(), reason };
    let kvs = meta.metadata().file_metadata().key_value_metadata().cloned().unwrap_or_default();
    let header = Header::from_key_values(path, &kvs)?;
    let schema = meta.schema();
    let view = header.preprocess.views.is_some().then_some((columns::VIEW, DataType::Int32));
    for (name, ty) in [(columns::PATH, DataType::Utf8), (columns::LABEL, DataType::Int32)].into_iter().chain(view) {
        match schema.field_with_name(name) {
            Ok(f) if *f.data_type() == ty => {}
            Ok(f) => return Err(bad(format!("column {name:?} is {} instead of {ty}", f.data_type()))),
            Err(_) => return Err(bad(format!("no {name:?} column"))),
        }
    }
    for (name, layer) in &header.layers {
        match schema.field_with_name(name).map(|f| f.data_type().clone()) {
            Ok(DataType::FixedSizeList(f, d)) if *f.data_type() == DataType::Float32 && d as usize == layer.dim => {}
            Ok(ty) => return Err(bad(format!("column {name:?} is {ty}, not {} floats", layer.dim))),
            Err(_) => return Err(bad(format!("footer names layer {name:?} but the file has no such column"))),
        }
    }
    let rows = meta.metadata().file_metadata().num_rows().max(0) as usize;
    Ok((header, rows, meta))
}

/// Appends `path`'s rows to `out`, reading only the columns `out` holds;
/// `meta` is its footer as [`footer`] read it.
fn read_rows(path: &Path, meta: &ArrowReaderMetadata, out: &mut FeatureFile) -> Result<()> {
    let bad = |reason: String| Error::NotFeatureFile { path: path.to_owned(), reason };
    let schema = meta.schema();
    let views = out.header.preprocess.views.is_some();
    // label_name is checked against the classes, where the file has it.
    let label_name = schema.index_of(columns::LABEL_NAME).is_ok().then_some(columns::LABEL_NAME);
    let mut roots: Vec<usize> = [columns::PATH, columns::LABEL]
        .into_iter()
        .chain(label_name)
        .chain(views.then_some(columns::VIEW))
        .chain(out.columns.iter().map(|c| c.name.as_str()))
        .map(|n| schema.index_of(n).map_err(|_| bad(format!("no {n:?} column"))))
        .collect::<Result<_>>()?;
    roots.sort_unstable();
    let mask = ProjectionMask::roots(meta.metadata().file_metadata().schema_descr(), roots);
    let reader = ParquetRecordBatchReaderBuilder::new_with_metadata(open_file(path)?, meta.clone())
        .with_projection(mask)
        .build()
        .map_err(|e| Error::NotParquet { path: path.to_owned(), reason: e.to_string() })?;
    let n_classes = out.header.classes.len();
    for batch in reader {
        let batch = batch.map_err(|e| bad(e.to_string()))?;
        let paths = batch
            .column_by_name(columns::PATH)
            .and_then(|c| c.as_any().downcast_ref::<StringArray>())
            .ok_or_else(|| bad(format!("column {:?} is not text", columns::PATH)))?;
        out.paths.extend(paths.iter().map(|p| p.unwrap_or_default().to_string()));
        let labels = batch
            .column_by_name(columns::LABEL)
            .and_then(|c| c.as_any().downcast_ref::<Int32Array>())
            .ok_or_else(|| bad(format!("column {:?} is not Int32", columns::LABEL)))?;
        let names = match label_name {
            Some(n) => Some(
                batch
                    .column_by_name(n)
                    .and_then(|c| c.as_any().downcast_ref::<StringArray>())
                    .ok_or_else(|| bad(format!("column {n:?} is not text")))?,
            ),
            None => None,
        };
        for (r, l) in labels.iter().enumerate() {
            if let Some(i) = l {
                if i < 0 || i as usize >= n_classes {
                    return Err(bad(format!("label {i} is outside the {n_classes} classes")));
                }
            }
            if let Some(names) = names {
                let want = l.map(|i| out.header.classes[i as usize].as_str());
                let found = names.is_valid(r).then(|| names.value(r));
                if found != want {
                    let path = paths.value(r);
                    return Err(bad(format!(
                        "row {path:?} has label {l:?} but {} {found:?}; {} names class {l:?} {want:?}",
                        columns::LABEL_NAME,
                        keys::CLASSES
                    )));
                }
            }
            out.labels.push(l);
        }
        if views {
            let v = batch
                .column_by_name(columns::VIEW)
                .and_then(|c| c.as_any().downcast_ref::<Int32Array>())
                .ok_or_else(|| bad(format!("column {:?} is not Int32", columns::VIEW)))?;
            if v.null_count() > 0 {
                return Err(bad(format!("column {:?} has null rows", columns::VIEW)));
            }
            out.views.extend(v.values().iter());
        }
        for col in &mut out.columns {
            let list = batch
                .column_by_name(&col.name)
                .and_then(|c| c.as_any().downcast_ref::<FixedSizeListArray>())
                .ok_or_else(|| bad(format!("column {:?} is not a list of floats", col.name)))?;
            if list.null_count() > 0 {
                return Err(bad(format!("column {:?} has null rows", col.name)));
            }
            let values = list
                .values()
                .as_any()
                .downcast_ref::<Float32Array>()
                .ok_or_else(|| bad(format!("column {:?} is not a list of floats", col.name)))?;
            let start = list.offset() * col.dim;
            col.values.extend_from_slice(&values.values()[start..start + list.len() * col.dim]);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A flag's value and the footer's spelling of it are one spelling.
    #[test]
    fn named_choices_are_spelled_as_the_footer_records_them_and_parse_back() {
        fn check<T>(all: &[T], unlisted: &[T])
        where
            T: Serialize + std::fmt::Display + std::str::FromStr + PartialEq + std::fmt::Debug,
        {
            for v in all.iter().chain(unlisted) {
                assert_eq!(serde_json::to_value(v).unwrap(), v.to_string().as_str(), "{v:?}");
            }
            for v in all {
                assert_eq!(v.to_string().parse::<T>().ok().as_ref(), Some(v), "{v} parses back");
            }
            for v in unlisted {
                assert!(v.to_string().parse::<T>().is_err(), "{v} is never a choice");
            }
        }
        check(&[Precision::Fp32, Precision::Fp16, Precision::Int8], &[]);
        check(&[Pool::Avg, Pool::Max, Pool::AvgMax], &[Pool::None]);
        check(&[Decode::Exact, Decode::Scaled], &[]);
        assert_eq!("mean".parse::<Pool>().unwrap_err(), "\"mean\" is not one of avg, max, avgmax");
    }

    fn header(layers: &[(&str, usize)]) -> Header {
        Header {
            version: "0.1.0".into(),
            model: ModelInfo { file: "m.onnx".into(), sha256: "ab".into(), input: "input".into() },
            weights: Some(WeightsInfo { name: "w".into(), url: String::new(), sha256: "cd".into() }),
            classes: vec!["cats".into(), "dogs".into()],
            layers: layers
                .iter()
                .map(|(n, d)| (n.to_string(), LayerInfo { tensor: format!("/{n}"), pool: Pool::Avg, dim: *d }))
                .collect(),
            preprocess: Preprocess {
                resize: 256,
                crop: 224,
                mean: [0.485, 0.456, 0.406],
                std: [0.229, 0.224, 0.225],
                filter: "bilinear".into(),
                decode: Decode::Scaled,
                views: None,
            },
            root: "/data/train".into(),
            skipped: vec![Skipped { path: "cats/bad.jpg".into(), error: "truncated".into() }],
            shard: None,
            inference: None,
        }
    }

    #[test]
    fn round_trip_keeps_rows_columns_and_footer() {
        let dir = tempfile::tempdir().unwrap();
        let dest = dir.path().join("f.parquet");
        let h = header(&[("layer3", 3), ("avgpool", 2)]);
        let layers = vec![("layer3".to_string(), 3), ("avgpool".to_string(), 2)];
        let mut w = FeatureWriter::create(&dest, &h.classes, &layers).unwrap();
        let paths = vec!["a.jpg".to_string(), "cats/1.jpg".to_string(), "dogs/2.jpg".to_string()];
        let l3: Vec<f32> = (0..9).map(|v| v as f32).collect();
        let ap: Vec<f32> = (0..6).map(|v| -(v as f32)).collect();
        w.write(Rows { paths: &paths, labels: &[None, Some(0), Some(1)], features: &[&l3, &ap], views: &[] }).unwrap();
        assert!(!dest.exists(), "nothing appears before finish");
        w.finish(&h).unwrap();

        let f = FeatureFile::open(&dest).unwrap();
        assert_eq!(f.header, h);
        assert_eq!(f.paths, paths);
        assert_eq!(f.labels, vec![None, Some(0), Some(1)]);
        assert_eq!(f.column("layer3").unwrap().row(2), &[6.0, 7.0, 8.0]);
        assert_eq!(f.column("avgpool").unwrap().row(1), &[-2.0, -3.0]);
        let leftovers: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
        assert_eq!(leftovers.len(), 1, "only the finished file remains");
    }

    /// A file of `paths` labelled 0, 1, 0, ..., its label names from
    /// `names` (the writer's classes) and its footer from `h`.
    fn contradicting(dir: &Path, h: &Header, names: &[String], paths: &[&str]) -> Result<FeatureFile> {
        let dest = dir.join("c.parquet");
        let paths: Vec<String> = paths.iter().map(|p| p.to_string()).collect();
        let labels: Vec<Option<i32>> = (0..paths.len()).map(|i| Some(i as i32 % 2)).collect();
        let values: Vec<f32> = (0..paths.len()).map(|v| v as f32).collect();
        let mut w = FeatureWriter::create(&dest, names, &[("avgpool".into(), 1)]).unwrap();
        w.write(Rows { paths: &paths, labels: &labels, features: &[&values], views: &[] }).unwrap();
        w.finish(h).unwrap();
        FeatureFile::open(&dest)
    }

    #[test]
    fn a_file_that_contradicts_itself_is_refused_naming_the_contradiction() {
        let dir = tempfile::tempdir().unwrap();
        let h = header(&[("avgpool", 1)]);
        let reason = |r: Result<FeatureFile>| match r {
            Err(Error::NotFeatureFile { reason, .. }) => reason,
            other => panic!("{other:?}"),
        };
        assert_eq!(contradicting(dir.path(), &h, &h.classes, &["cats/1.jpg", "dogs/2.jpg"]).unwrap().len(), 2);
        let twice = reason(contradicting(dir.path(), &h, &h.classes, &["cats/1.jpg", "dogs/2.jpg", "cats/1.jpg"]));
        assert_eq!(twice, "path \"cats/1.jpg\" appears on two rows: each image is one row");
        // label_name written from other classes than the footer's.
        let swapped = vec!["dogs".to_string(), "cats".to_string()];
        let names = reason(contradicting(dir.path(), &h, &swapped, &["cats/1.jpg", "dogs/2.jpg"]));
        assert!(names.starts_with("row \"cats/1.jpg\" has label Some(0) but label_name Some(\"dogs\")"), "{names}");
        let mut same = h.clone();
        same.classes = vec!["cats".into(), "cats".into()];
        let classes = reason(contradicting(dir.path(), &same, &same.classes, &["cats/1.jpg"]));
        assert_eq!(classes, "extract.classes names the class \"cats\" twice");
        // A layer named like a fixed column: the writer refuses to write it.
        for fixed in columns::ALL {
            let e =
                FeatureWriter::create(&dir.path().join("r.parquet"), &h.classes, &[(fixed.into(), 1)]).err().unwrap();
            assert!(e.to_string().contains("a fixed column's name"), "{e}");
        }
    }

    /// A views file of two images, three views each, whose `view` column is `views`.
    fn views_file(dir: &Path, views: &[i32]) -> PathBuf {
        let dest = dir.join("v.parquet");
        let mut h = header(&[("avgpool", 1)]);
        h.preprocess.views = Some(Views::tutorial(3, 9));
        let mut w = FeatureWriter::create_with_views(&dest, &h.classes, &[("avgpool".into(), 1)], true).unwrap();
        let paths: Vec<String> = ["cats/1.jpg", "cats/1.jpg", "cats/1.jpg", "dogs/2.jpg", "dogs/2.jpg", "dogs/2.jpg"]
            .iter()
            .take(views.len())
            .map(|p| p.to_string())
            .collect();
        let labels: Vec<Option<i32>> = paths.iter().map(|p| Some(p.starts_with("dogs") as i32)).collect();
        let values: Vec<f32> = (0..paths.len()).map(|v| v as f32).collect();
        w.write(Rows { paths: &paths, labels: &labels, features: &[&values], views }).unwrap();
        w.finish(&h).unwrap()
    }

    #[test]
    fn views_are_read_back_and_a_gap_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let f = FeatureFile::open(&views_file(dir.path(), &[0, 1, 2, 0, 1, 2])).unwrap();
        assert_eq!(f.views, [0, 1, 2, 0, 1, 2]);
        assert_eq!(f.header.preprocess.views_per_image(), 3);
        for (views, due) in [
            (&[0, 1, 2, 0, 2, 1][..], "has view 2 where view 1 of its 3 was due"),
            (&[0, 1, 2, 0, 1], "has no more rows where view 2"),
        ] {
            let err = FeatureFile::open(&views_file(dir.path(), views)).unwrap_err().to_string();
            assert!(err.contains("dogs/2.jpg") && err.contains(due), "{views:?}: {err}");
        }
    }

    #[test]
    fn unfinished_writer_leaves_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let dest = dir.path().join("f.parquet");
        let mut w = FeatureWriter::create(&dest, &[], &[("avgpool".into(), 1)]).unwrap();
        w.write(Rows { paths: &["x.png".into()], labels: &[None], features: &[&[1.0]], views: &[] }).unwrap();
        drop(w);
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
    }

    #[test]
    fn rejects_what_is_not_a_feature_file() {
        let dir = tempfile::tempdir().unwrap();
        let text = dir.path().join("notes.parquet");
        std::fs::write(&text, "hello").unwrap();
        assert!(matches!(FeatureFile::open(&text), Err(Error::NotParquet { .. })));
        assert!(matches!(FeatureFile::open(&dir.path().join("missing")), Err(Error::Io { .. })));

        // A Parquet file without our footer.
        let plain = dir.path().join("plain.parquet");
        let schema = schema(&[], false);
        let mut w = ArrowWriter::try_new(File::create(&plain).unwrap(), schema, None).unwrap();
        w.flush().unwrap();
        w.close().unwrap();
        let err = FeatureFile::open(&plain).unwrap_err();
        assert!(err.to_string().contains("not a feature file"), "{err}");
    }

    #[test]
    fn the_footer_holds_exactly_the_contracts_keys() {
        let mut h = header(&[("avgpool", 1)]);
        let names = |h: &Header| h.to_key_values().into_iter().map(|kv| kv.key).collect::<Vec<_>>();
        let without =
            |skip: &[&str]| keys::ALL.iter().filter(|k| !skip.contains(k)).map(|k| k.to_string()).collect::<Vec<_>>();
        assert_eq!(names(&h), without(&[keys::SHARD, keys::INFERENCE]), "a whole file has no shard record");
        h.shard = Some(shards::Shard {
            index: 1,
            count: 3,
            first: Some("a.jpg".into()),
            last: Some("b.jpg".into()),
            images: 2,
            total_images: 6,
        });
        assert_eq!(names(&h), without(&[keys::INFERENCE]));
        h.inference = Some(Inference {
            device: "openvino".into(),
            precision: Precision::Int8,
            calibration: Some(Calibration {
                images: 8,
                sha256: "ab".repeat(32),
                method: "minmax".into(),
                quantizer: 1,
                weight_bits: 8,
            }),
        });
        assert_eq!(names(&h), keys::ALL);
        let back = Header::from_key_values(Path::new("p.parquet"), &h.to_key_values()).unwrap();
        assert_eq!(back, h);
        let fields: Vec<String> =
            schema(&[("avgpool".into(), 1)], true).fields().iter().map(|f| f.name().clone()).collect();
        assert_eq!(fields, [&columns::ALL[..], &["avgpool"]].concat());
    }

    #[test]
    fn a_preprocess_record_without_decode_was_a_full_decode() {
        let old = r#"{"resize": 256, "crop": 224, "mean": [0.485, 0.456, 0.406], "std": [0.229, 0.224, 0.225], "filter": "pil-bilinear-antialias"}"#;
        assert_eq!(serde_json::from_str::<Preprocess>(old).unwrap().decode, Decode::Exact);
        let new =
            serde_json::to_value(Preprocess { decode: Decode::Scaled, ..serde_json::from_str(old).unwrap() }).unwrap();
        assert_eq!(new["decode"], "scaled");
        assert!(new.get("views").is_none(), "one view per image: no record, as before views existed");
    }

    #[test]
    fn rejects_an_unknown_format() {
        let mut kvs = header(&[("avgpool", 1)]).to_key_values();
        kvs[0] = KeyValue::new(keys::FORMAT.into(), "2".to_string());
        let err = Header::from_key_values(Path::new("f.parquet"), &kvs).unwrap_err();
        assert!(matches!(err, Error::UnknownFormat { .. }));
        assert!(err.to_string().contains("format \"2\" is not supported"), "{err}");
    }
}
