//! The footer's records: what the file says of its model, layers,
//! preprocessing, classes and images, and their JSON under `keys`.

use std::path::Path;

use parquet::file::metadata::KeyValue;
use serde::{Deserialize, Serialize};

use crate::{columns, keys, shards, Error, Result, FORMAT};

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

    pub(crate) fn to_key_values(&self) -> Vec<KeyValue> {
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

    pub(crate) fn from_key_values(path: &Path, kvs: &[KeyValue]) -> Result<Self> {
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
