//! Rows streamed into a file that appears whole at the end, or not at all.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow::array::{ArrayRef, FixedSizeListArray, Float32Array, Int32Array, RecordBatch, StringArray};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use parquet::arrow::arrow_writer::ArrowWriterOptions;
use parquet::arrow::{encode_arrow_schema, ArrowWriter, ARROW_SCHEMA_META_KEY};
use parquet::basic::Compression;
use parquet::file::metadata::KeyValue;
use parquet::file::properties::WriterProperties;

use crate::{columns, Error, Header, Result, ROWS_PER_GROUP};

pub(crate) fn schema(layers: &[(String, usize)], views: bool) -> SchemaRef {
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

pub(crate) fn feature_type(dim: usize) -> DataType {
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
