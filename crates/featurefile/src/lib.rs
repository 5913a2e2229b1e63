//! The feature file, contract v1: the Parquet seam between `extract` and
//! `classify` (the contract is `FEATURE-FILE.md` beside this crate).
//!
//! This crate is the one owner of the schema: column names and types, the
//! footer's metadata keys and their JSON shapes. `extract` writes through
//! [`FeatureWriter`], `classify` reads through [`FeatureFile::open`], and
//! neither spells a key or a column name itself.
//! The file is written whole or not at all (the `atomic` crate).
//!
//! Modules: `header` (the footer's records), `writer`, `reader` (one file,
//! checked), `source` (a file or a folder of parts as one table),
//! [`paths`] (the `path` column's spelling), [`shards`] (a part's name and
//! range).

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

mod header;
pub mod paths;
mod reader;
pub mod shards;
mod source;
mod writer;

pub use header::{
    Calibration, Decode, Header, Inference, LayerInfo, ModelInfo, Pool, Precision, Preprocess, Skipped, Views,
    WeightsInfo,
};
pub use reader::{FeatureColumn, FeatureFile};
pub use source::{Parts, Source};
pub use writer::{FeatureWriter, Rows};

use std::path::PathBuf;

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

#[cfg(test)]
mod tests {
    use std::fs::File;
    use std::path::Path;

    use parquet::arrow::ArrowWriter;
    use parquet::file::metadata::KeyValue;
    use serde::Serialize;

    use super::*;
    use crate::writer::schema;

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
            total_images: Some(6),
            tar_shards: None,
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
