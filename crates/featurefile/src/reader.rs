//! One file read: its footer checked against its columns, its rows into
//! memory, and what a read must not contradict (one row per image, views
//! in order).

use std::fs::File;
use std::path::Path;

use arrow::array::{Array, FixedSizeListArray, Float32Array, Int32Array, StringArray};
use arrow::datatypes::DataType;
use parquet::arrow::arrow_reader::{ArrowReaderMetadata, ArrowReaderOptions, ParquetRecordBatchReaderBuilder};
use parquet::arrow::ProjectionMask;

use crate::{columns, keys, Error, Header, Result, Source};

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

/// A path is one image: its row (or, in a file of views, its consecutive
/// rows) appears once. Two rows of one path would be scored twice and
/// split across cross-validation folds.
pub(crate) fn check_unique_paths(f: &FeatureFile) -> Result<(), String> {
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
pub(crate) fn check_views(f: &FeatureFile, count: u32) -> Result<(), String> {
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

pub(crate) fn name_of(p: &Path) -> String {
    p.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default()
}

pub(crate) fn open_file(path: &Path) -> Result<File> {
    File::open(path).map_err(|e| Error::Io { path: path.to_owned(), source: e })
}

/// A file's header, row count and Parquet footer, its columns checked
/// against the header.
pub(crate) fn footer(path: &Path) -> Result<(Header, usize, ArrowReaderMetadata)> {
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
pub(crate) fn read_rows(path: &Path, meta: &ArrowReaderMetadata, out: &mut FeatureFile) -> Result<()> {
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
