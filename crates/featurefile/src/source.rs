//! Where rows come from: one file, or a folder of parts read as one table.

use std::path::{Path, PathBuf};

use parquet::arrow::arrow_reader::ArrowReaderMetadata;

use crate::reader::{check_unique_paths, check_views, footer, name_of, read_rows};
use crate::{keys, shards, Error, FeatureColumn, FeatureFile, Header, LayerInfo, Precision, Result};

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
    /// `None` for a split by whole tar shards (no task listed them all).
    pub total_images: Option<usize>,
}

impl Parts {
    /// Missing parts named in a message; the rest are counted.
    pub const NAMED_MISSING: usize = 5;
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
                    let of_shards = |s: &shards::Shard| s.tar_shards.as_ref().map(|t| t.total_shards);
                    if (shard.total_images, of_shards(&shard)) != (first.total_images, of_shards(first)) {
                        let list = |s: &shards::Shard| match (s.total_images, of_shards(s)) {
                            (Some(n), _) => format!("a list of {n} images"),
                            (None, Some(n)) => format!("a split of {n} tar shards"),
                            (None, None) => "no list".to_string(),
                        };
                        return Err(disagree(format!(
                            "{} where {} has {}: the images changed between tasks",
                            list(&shard),
                            name_of(first_path),
                            list(first)
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
