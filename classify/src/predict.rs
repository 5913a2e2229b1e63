//! `classify predict`: path, predicted class and a score per class for every
//! row, as CSV or Parquet.

use std::path::Path;
use std::sync::Arc;

use arrow::array::{ArrayRef, Float64Array, RecordBatch, StringArray};
use arrow::datatypes::{DataType, Field, Schema};
use parquet::arrow::ArrowWriter;

use crate::{Allow, Classifier, Error, Result};

/// Writes predictions for every image of `file` to `out` (by its extension:
/// .csv or .parquet), whole or not at all: one row each (a file of views:
/// the mean of each image's views' scores). Returns the number of images.
pub fn predict(
    classifier: &Classifier,
    file: &Path,
    out: &Path,
    allow: Allow,
    notes: &mut dyn FnMut(&str),
) -> Result<usize> {
    let ext = out.extension().and_then(|e| e.to_str()).map(str::to_ascii_lowercase);
    let parquet = match ext.as_deref() {
        Some("csv") => false,
        Some("parquet") => true,
        _ => return Err(Error::PredictFormat(out.to_owned())),
    };
    let data = classifier.load_compatible(file, allow, notes)?;
    let (scores, classes) = classifier.per_image(data.x.view(), data.views);
    let predicted: Vec<&str> = classes.into_iter().map(|k| classifier.classes[k].as_str()).collect();
    let paths: Vec<&str> = data.first_views().into_iter().map(|i| data.paths[i].as_str()).collect();
    let score_names: Vec<String> = classifier.classes.iter().map(|c| format!("score_{c}")).collect();

    atomic::write_atomically(out, |file| -> std::result::Result<(), Box<dyn std::error::Error + Send + Sync>> {
        if parquet {
            let mut fields =
                vec![Field::new("path", DataType::Utf8, false), Field::new("predicted", DataType::Utf8, false)];
            fields.extend(score_names.iter().map(|n| Field::new(n, DataType::Float64, false)));
            let schema = Arc::new(Schema::new(fields));
            let mut cols: Vec<ArrayRef> = vec![
                Arc::new(StringArray::from_iter_values(&paths)),
                Arc::new(StringArray::from_iter_values(&predicted)),
            ];
            cols.extend(scores.columns().into_iter().map(|c| Arc::new(Float64Array::from(c.to_vec())) as ArrayRef));
            let batch = RecordBatch::try_new(schema.clone(), cols).expect("columns match the schema");
            let mut w = ArrowWriter::try_new(file, schema, None)?;
            w.write(&batch)?;
            w.close()?;
        } else {
            let mut w = csv::Writer::from_writer(file);
            let mut header = vec!["path".to_string(), "predicted".to_string()];
            header.extend(score_names);
            w.write_record(&header)?;
            for (i, path) in paths.iter().enumerate() {
                let mut rec = vec![path.to_string(), predicted[i].to_string()];
                rec.extend(scores.row(i).iter().map(|v| v.to_string()));
                w.write_record(&rec)?;
            }
            w.flush()?;
        }
        Ok(())
    })
    .map_err(|e| Error::write(out, e))?;
    Ok(paths.len())
}
