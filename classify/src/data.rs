//! A feature file as a training or scoring set: one feature column as a
//! matrix, labels by class name.

use std::path::{Path, PathBuf};

use featurefile::{FeatureFile, LayerInfo};
use ndarray::Array2;

use crate::Error;

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
}

impl Data {
    /// Reads `file` and takes the feature column `layer`, which may be left
    /// out when the file has only one.
    pub fn load(file: &Path, layer: Option<&str>) -> Result<Self, Error> {
        let mut f = FeatureFile::open(file)?;
        let names: Vec<&str> = f.columns.iter().map(|c| c.name.as_str()).collect();
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
        let column = &mut f.columns[index];
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
        let column = &f.columns[index];
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
}
