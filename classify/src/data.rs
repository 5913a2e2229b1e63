//! A feature file as a training or scoring set: one feature column as a
//! matrix, labels by class name.

use std::path::{Path, PathBuf};

use featurefile::{LayerInfo, Preprocess, Source};
use ndarray::{Array2, Axis};

use crate::Error;

/// What a reader lets pass: features of another backbone or layer than a
/// classifier's (`--allow-mismatch`), a folder of parts with some missing
/// (`--allow-partial`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Allow {
    pub mismatch: bool,
    pub partial: bool,
}

/// Rows at or above this size are announced before they are read.
const ANNOUNCE_BYTES: usize = 256 << 20;

#[derive(Debug, Clone)]
pub struct Data {
    pub file: PathBuf,
    /// rows x dim, as stored: f32. Half the memory of f64, and the solvers'
    /// matrix products run twice as fast on it (see logistic.rs).
    pub x: Array2<f32>,
    /// Index into `classes` per row; `None` for unlabeled rows.
    pub y: Vec<Option<usize>>,
    pub classes: Vec<String>,
    pub paths: Vec<String>,
    pub column: String,
    pub layer: LayerInfo,
    pub backbone_file: String,
    pub backbone_sha256: String,
    /// `extract.root`: where the images were at extraction time.
    pub root: String,
    /// The transform the images went through before the backbone.
    pub preprocess: Preprocess,
    /// Rows per image: 1, or (`extract --views K`) K, an image's views in
    /// consecutive rows, view 0 first (the reader checked it).
    pub views: usize,
}

impl Data {
    /// Reads `file` (a feature file, or a folder of parts) and takes the
    /// feature column `layer`, which may be left out when the file has only
    /// one; only that column is read. A folder, or rows of 256 MiB or more,
    /// are announced to `notes` with the memory they take, before reading.
    pub fn load(
        file: &Path,
        layer: Option<&str>,
        allow_partial: bool,
        notes: &mut dyn FnMut(&str),
    ) -> Result<Self, Error> {
        // A file or a folder of parts in a bucket is copied here first, and
        // read as a local one (its rows end up in memory either way).
        let fetched = match file.to_str().filter(|s| store::is_url(s)) {
            Some(url) => Some(store::fetch(&store::Address::parse(url)?, |name| {
                featurefile::shards::parse_part_name(name).is_some()
            })?),
            None => None,
        };
        let source = Source::open(fetched.as_ref().map_or(file, |f| f.path.as_path()), allow_partial)?;
        let names: Vec<&str> = source.header.layers.iter().map(|(n, _)| n.as_str()).collect();
        let index = match (layer, names.as_slice()) {
            (Some(l), _) => names.iter().position(|n| *n == l).ok_or_else(|| Error::NoSuchColumn {
                file: file.to_owned(),
                column: l.to_string(),
                available: names.iter().map(|n| n.to_string()).collect(),
            })?,
            (None, [_]) => 0,
            (None, []) => return Err(Error::NoColumns(file.to_owned())),
            (None, _) => {
                return Err(Error::SeveralColumns {
                    file: file.to_owned(),
                    available: names.iter().map(|n| n.to_string()).collect(),
                })
            }
        };
        let (name, info) = &source.header.layers[index];
        let bytes = source.rows * info.dim * std::mem::size_of::<f32>();
        if source.parts.is_some() || bytes >= ANNOUNCE_BYTES {
            notes(&format!(
                "reading {} rows x {} of {name} from {}{}: {} as f32",
                source.rows,
                info.dim,
                file.display(),
                parts_note(&source),
                human_bytes(bytes)
            ));
        }
        let mut f = source.read(Some(&[name.as_str()]))?;
        let column = &mut f.columns[0];
        if let Some(i) = column.values.iter().position(|v| !v.is_finite()) {
            return Err(Error::NotFinite {
                file: file.to_owned(),
                column: column.name.clone(),
                row: f.paths[i / column.dim].clone(),
                value: column.values[i],
            });
        }
        let x = Array2::from_shape_vec((f.paths.len(), column.dim), std::mem::take(&mut column.values))
            .expect("rows x dim values");
        let column = &f.columns[0];
        Ok(Data {
            file: file.to_owned(),
            x,
            y: f.labels.iter().map(|l| l.map(|i| i as usize)).collect(),
            layer: f.header.layer(&column.name).expect("column comes from the header").clone(),
            column: column.name.clone(),
            classes: f.header.classes.clone(),
            paths: f.paths.clone(),
            backbone_file: f.header.model.file.clone(),
            backbone_sha256: f.header.model.sha256.clone(),
            root: f.header.root.clone(),
            preprocess: f.header.preprocess.clone(),
            views: f.header.preprocess.views_per_image(),
        })
    }

    pub fn len(&self) -> usize {
        self.paths.len()
    }

    pub fn is_empty(&self) -> bool {
        self.paths.is_empty()
    }

    /// Rows that have a label.
    pub fn labeled(&self) -> Vec<usize> {
        (0..self.len()).filter(|&i| self.y[i].is_some()).collect()
    }

    /// The first row (view 0) of each image.
    pub fn first_views(&self) -> Vec<usize> {
        (0..self.len()).step_by(self.views).collect()
    }

    /// This data with view 0 of each image alone: one row per image.
    pub fn view_zero(mut self) -> Self {
        if self.views > 1 {
            let rows = self.first_views();
            self.x = self.x.select(Axis(0), &rows);
            self.y = rows.iter().map(|&i| self.y[i]).collect();
            self.paths = rows.iter().map(|&i| std::mem::take(&mut self.paths[i])).collect();
            self.views = 1;
        }
        self
    }
}

/// What a folder held: " (4 parts)", or with parts missing " (--allow-partial:
/// 3 of 4 parts, 750 of 1000 images; missing part-00002-of-00004.parquet)".
fn parts_note(source: &Source) -> String {
    let Some(p) = &source.parts else { return String::new() };
    if p.missing == 0 {
        return format!(" ({} part{})", p.count, if p.count == 1 { "" } else { "s" });
    }
    let more = match p.missing - p.first_missing.len() {
        0 => String::new(),
        n => format!(" and {n} more"),
    };
    let images = match p.total_images {
        Some(total) => format!("{} of {total} images", p.images),
        None => format!("{} images", p.images),
    };
    format!(
        " (--allow-partial: {} of {} parts, {images}; missing {}{more})",
        p.count - p.missing,
        p.count,
        p.first_missing.join(", ")
    )
}

pub(crate) fn human_bytes(b: usize) -> String {
    let b = b as f64;
    match b {
        b if b >= (1u64 << 30) as f64 => format!("{:.1} GiB", b / (1u64 << 30) as f64),
        b if b >= (1u64 << 20) as f64 => format!("{:.1} MiB", b / (1u64 << 20) as f64),
        b => format!("{:.1} KiB", b / 1024.0),
    }
}
