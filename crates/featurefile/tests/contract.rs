//! The contract document and the crate must agree: the columns and footer
//! keys `FEATURE-FILE.md` lists are exactly the ones a written file holds,
//! read back from the file by the parquet reader (not from the crate's
//! constants).

use featurefile::shards::Shard;
use featurefile::{
    Decode, FeatureWriter, Header, LayerInfo, ModelInfo, Pool, Preprocess, Rows, Views, WeightsInfo, FORMAT,
    ROWS_PER_GROUP,
};
use parquet::file::reader::{FileReader, SerializedFileReader};

/// A file with every key and column the contract lists (weights, a shard
/// record and views included), written through the crate: its footer keys and its Arrow
/// schema's field names, as the parquet reader finds them.
fn written() -> (Vec<String>, Vec<String>) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("f.parquet");
    let classes = vec!["cats".to_string(), "dogs".to_string()];
    let mut w = FeatureWriter::create_with_views(&path, &classes, &[("avgpool".into(), 2)], true).unwrap();
    let paths = ["cats/a.png".to_string(), "cats/a.png".to_string()];
    w.write(Rows { paths: &paths, labels: &[Some(0), Some(0)], features: &[&[0.5, 1.5, 0.25, 1.0]], views: &[0, 1] })
        .unwrap();
    w.finish(&Header {
        version: "t".into(),
        model: ModelInfo { file: "m.onnx".into(), sha256: "ab".repeat(32), input: "input".into() },
        weights: Some(WeightsInfo { name: "w".into(), url: String::new(), sha256: "cd".repeat(32) }),
        classes,
        layers: vec![("avgpool".into(), LayerInfo { tensor: "/flatten".into(), pool: Pool::None, dim: 2 })],
        preprocess: Preprocess {
            resize: 256,
            crop: 224,
            mean: [0.485, 0.456, 0.406],
            std: [0.229, 0.224, 0.225],
            filter: "f".into(),
            decode: Decode::Exact,
            views: Some(Views::tutorial(2, 7)),
        },
        root: "/r".into(),
        skipped: vec![],
        shard: Some(Shard {
            index: 0,
            count: 1,
            first: Some("cats/a.png".into()),
            last: Some("cats/a.png".into()),
            images: 1,
            total_images: Some(1),
            tar_shards: None,
        }),
        inference: Some(featurefile::Inference {
            device: "cpu".into(),
            precision: featurefile::Precision::Fp32,
            calibration: None,
        }),
    })
    .unwrap();
    let reader = SerializedFileReader::new(std::fs::File::open(&path).unwrap()).unwrap();
    let meta = reader.metadata().file_metadata();
    let keys: Vec<String> = meta
        .key_value_metadata()
        .unwrap()
        .iter()
        .map(|kv| kv.key.clone())
        .filter(|k| k != parquet::arrow::ARROW_SCHEMA_META_KEY)
        .collect();
    let columns: Vec<String> =
        meta.schema_descr().root_schema().get_fields().iter().map(|f| f.name().to_string()).collect();
    (keys, columns)
}

fn document() -> String {
    let p = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("FEATURE-FILE.md");
    std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

/// The section of the document under the `## ` heading that starts with `title`.
fn section<'a>(doc: &'a str, title: &str) -> &'a str {
    let start = doc.find(&format!("\n## {title}")).unwrap_or_else(|| panic!("no section {title:?}"));
    let rest = &doc[start + 1..];
    let end = rest[3..].find("\n## ").map_or(rest.len(), |e| e + 3);
    &rest[..end]
}

/// The first cell of each table row (backquotes removed), header and rule left out.
fn first_cells(section: &str) -> Vec<(String, Vec<String>)> {
    section
        .lines()
        .filter(|l| l.starts_with("| `"))
        .map(|l| {
            let cells: Vec<String> = l.trim_matches('|').split(" | ").map(|c| c.trim().to_string()).collect();
            (cells[0].trim_matches('`').to_string(), cells[1..].to_vec())
        })
        .collect()
}

#[test]
fn the_documented_columns_are_the_crates() {
    let doc = document();
    let rows = first_cells(section(&doc, "Shape"));
    let names: Vec<&str> = rows.iter().map(|(n, _)| n.as_str()).collect();
    let (_, written) = written();
    assert_eq!(names, written[..4], "FEATURE-FILE.md's column table and a written file's columns differ");
    assert_eq!(written[4], "avgpool", "then one column per layer");
    let types: Vec<&str> = rows.iter().map(|(_, c)| c[0].as_str()).collect();
    assert_eq!(types, ["Utf8", "Int32", "Utf8", "Int32"]);
    assert!(doc.contains(&format!("row groups of at most {ROWS_PER_GROUP} rows")), "row group size");
}

#[test]
fn the_documented_footer_keys_are_the_crates() {
    let doc = document();
    let rows = first_cells(section(&doc, "Key-value metadata"));
    let names: Vec<&str> = rows.iter().map(|(n, _)| n.as_str()).collect();
    let (mut written, _) = written();
    let mut documented: Vec<String> = names.iter().map(|n| n.to_string()).collect();
    written.sort();
    documented.sort();
    assert_eq!(documented, written, "FEATURE-FILE.md's key table and a written file's footer differ");
    assert_eq!(rows[0].1[0], format!("`{FORMAT}`"), "the documented format is the one the crate writes");
    assert!(doc.starts_with(&format!("# The feature file (contract v{FORMAT})")));
}
