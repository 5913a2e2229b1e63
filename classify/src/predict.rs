//! `classify predict`: path, predicted class and a score per class for every
//! row, as CSV or Parquet.

use std::path::Path;
use std::sync::Arc;

use arrow::array::{ArrayRef, Float64Array, RecordBatch, StringArray};
use arrow::datatypes::{DataType, Field, Schema};
use parquet::arrow::ArrowWriter;

use crate::{Classifier, Error, Result};

/// Writes predictions for every row of `file` to `out` (by its extension:
/// .csv or .parquet), whole or not at all. Returns the number of rows.
pub fn predict(classifier: &Classifier, file: &Path, out: &Path, allow_mismatch: bool) -> Result<usize> {
    let ext = out.extension().and_then(|e| e.to_str()).map(str::to_ascii_lowercase);
    let parquet = match ext.as_deref() {
        Some("csv") => false,
        Some("parquet") => true,
        _ => return Err(Error::Input(format!("--out {}: use a .csv or .parquet file name", out.display()))),
    };
    let data = classifier.load_compatible(file, allow_mismatch)?;
    let scores = classifier.scores(&data.x);
    let predicted: Vec<&str> =
        classifier.model.classes_of(&scores).into_iter().map(|k| classifier.classes[k].as_str()).collect();
    let score_names: Vec<String> = classifier.classes.iter().map(|c| format!("score_{c}")).collect();

    let io = |reason: String| Error::Io { path: out.to_owned(), reason };
    let dir = match out.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    std::fs::create_dir_all(dir).map_err(|e| io(e.to_string()))?;
    let tmp = tempfile::Builder::new().suffix(".partial").tempfile_in(dir).map_err(|e| io(e.to_string()))?;
    if parquet {
        let mut fields = vec![Field::new("path", DataType::Utf8, false), Field::new("predicted", DataType::Utf8, false)];
        fields.extend(score_names.iter().map(|n| Field::new(n, DataType::Float64, false)));
        let schema = Arc::new(Schema::new(fields));
        let mut cols: Vec<ArrayRef> = vec![
            Arc::new(StringArray::from_iter_values(&data.paths)),
            Arc::new(StringArray::from_iter_values(&predicted)),
        ];
        cols.extend(scores.columns().into_iter().map(|c| Arc::new(Float64Array::from(c.to_vec())) as ArrayRef));
        let batch = RecordBatch::try_new(schema.clone(), cols).expect("columns match the schema");
        let mut w = ArrowWriter::try_new(tmp.as_file().try_clone().map_err(|e| io(e.to_string()))?, schema, None)
            .map_err(|e| io(e.to_string()))?;
        w.write(&batch).map_err(|e| io(e.to_string()))?;
        w.close().map_err(|e| io(e.to_string()))?;
    } else {
        let mut w = csv::Writer::from_writer(tmp.as_file());
        let mut header = vec!["path".to_string(), "predicted".to_string()];
        header.extend(score_names);
        w.write_record(&header).map_err(|e| io(e.to_string()))?;
        for (i, path) in data.paths.iter().enumerate() {
            let mut rec = vec![path.clone(), predicted[i].to_string()];
            rec.extend(scores.row(i).iter().map(|v| v.to_string()));
            w.write_record(&rec).map_err(|e| io(e.to_string()))?;
        }
        w.flush().map_err(|e| io(e.to_string()))?;
    }
    tmp.as_file().sync_all().map_err(|e| io(e.to_string()))?;
    tmp.persist(out).map_err(|e| io(e.error.to_string()))?;
    Ok(data.len())
}
