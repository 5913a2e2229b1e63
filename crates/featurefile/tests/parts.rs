//! A folder of parts is read only when its parts agree: each way a part
//! can disagree with its siblings is refused, naming the part and what
//! differs.

use std::path::Path;

use featurefile::shards::{part_name, Shard};
use featurefile::{
    Calibration, Decode, FeatureWriter, Header, Inference, LayerInfo, ModelInfo, Pool, Precision, Preprocess, Rows,
    Source,
};

fn header(index: usize, count: usize) -> Header {
    Header {
        version: "t".into(),
        model: ModelInfo { file: "m.onnx".into(), sha256: "ab".repeat(32), input: "input".into() },
        weights: None,
        classes: vec!["cats".into(), "dogs".into()],
        layers: vec![("avgpool".into(), LayerInfo { tensor: "/flatten".into(), pool: Pool::None, dim: 2 })],
        preprocess: Preprocess {
            resize: 256,
            crop: 224,
            mean: [0.485, 0.456, 0.406],
            std: [0.229, 0.224, 0.225],
            filter: "f".into(),
            decode: Decode::Exact,
            views: None,
        },
        root: "/r".into(),
        skipped: vec![],
        shard: Some(Shard {
            index,
            count,
            first: Some(format!("cats/{index}.png")),
            last: Some(format!("cats/{index}.png")),
            images: 1,
            total_images: Some(count),
            tar_shards: None,
        }),
        inference: None,
    }
}

fn write(path: &Path, h: &Header) {
    let mut w = FeatureWriter::create(path, &h.classes, &[("avgpool".into(), 2)]).unwrap();
    let p = h.shard.as_ref().and_then(|s| s.first.clone()).unwrap_or_else(|| "cats/x.png".into());
    w.write(Rows { paths: &[p], labels: &[Some(0)], features: &[&[0.5, 1.5]], views: &[] }).unwrap();
    w.finish(h).unwrap();
}

/// Three parts of 3, the last one as `edit` makes it (and named `name`).
fn folder(edit: impl FnOnce(&mut Header), name: Option<String>) -> (tempfile::TempDir, String) {
    let dir = tempfile::tempdir().unwrap();
    for k in 0..2 {
        write(&dir.path().join(part_name(k, 3)), &header(k, 3));
    }
    let mut last = header(2, 3);
    edit(&mut last);
    write(&dir.path().join(name.unwrap_or_else(|| part_name(2, 3))), &last);
    let err = Source::open(dir.path(), false).err().map(|e| e.to_string()).unwrap_or_default();
    (dir, err)
}

#[test]
fn agreeing_parts_read_as_one_table() {
    let (dir, err) = folder(|_| {}, None);
    assert_eq!(err, "");
    let s = Source::open(dir.path(), false).unwrap();
    assert_eq!(s.rows, 3);
    assert_eq!(s.read(None).unwrap().paths, ["cats/0.png", "cats/1.png", "cats/2.png"]);
}

/// A change to the last part's footer, the name it is written under (its own when `None`), the words expected.
type Case = (Box<dyn FnOnce(&mut Header)>, Option<String>, &'static str);

#[test]
fn each_disagreement_is_refused_naming_the_part_and_what_differs() {
    let cases: Vec<Case> = vec![
        (Box::new(|h| h.model.sha256 = "cd".repeat(32)), None, "another model (sha256 cdcd"),
        (Box::new(|h| h.layers[0].1.tensor = "/other".into()), None, "other layers than part-00000-of-00003.parquet"),
        (
            Box::new(|h| h.classes = vec!["cats".into(), "wolves".into()]),
            None,
            "other classes than part-00000-of-00003.parquet",
        ),
        (Box::new(|h| h.preprocess.resize = 232), None, "other preprocessing than part-00000-of-00003.parquet"),
        (
            Box::new(|h| h.inference = Some(int8(7))),
            None,
            "another precision or int8 calibration than part-00000-of-00003.parquet",
        ),
        (
            Box::new(|h| h.shard.as_mut().unwrap().total_images = Some(4)),
            None,
            "a list of 4 images where part-00000-of-00003.parquet has a list of 3 images: the images changed between tasks",
        ),
        (Box::new(|h| h.shard = None), None, "no extract.shard record in its footer"),
        (Box::new(|h| h.shard.as_mut().unwrap().index = 1), None, "its footer says part 1 of 3"),
        (
            Box::new(|h| *h = header(2, 4)),
            Some(part_name(2, 4)),
            "a part of 4, beside part-00000-of-00003.parquet of 3",
        ),
    ];
    for (edit, name, expect) in cases {
        let (_dir, err) = folder(edit, name);
        assert!(err.contains(expect), "{expect:?} not in {err:?}");
        assert!(err.contains("part-0000"), "the part is named: {err}");
    }
}

fn int8(weight_bits: u8) -> Inference {
    Inference {
        device: "cpu".into(),
        precision: Precision::Int8,
        calibration: Some(Calibration {
            images: 8,
            sha256: "ab".repeat(32),
            method: "minmax".into(),
            quantizer: 1,
            weight_bits,
        }),
    }
}

#[test]
fn parts_from_other_devices_read_as_one_but_not_from_other_weight_ranges() {
    let on = |device: &str| Inference { device: device.into(), ..int8(8) };
    let dir = tempfile::tempdir().unwrap();
    for (k, device) in [(0, "cpu"), (1, "openvino"), (2, "cuda:0")] {
        let mut h = header(k, 3);
        h.inference = Some(on(device));
        write(&dir.path().join(part_name(k, 3)), &h);
    }
    assert_eq!(Source::open(dir.path(), false).unwrap().rows, 3);
    let mut h = header(2, 3);
    h.inference = Some(int8(7));
    write(&dir.path().join(part_name(2, 3)), &h);
    let err = Source::open(dir.path(), false).err().unwrap().to_string();
    assert!(err.contains("another precision or int8 calibration"), "{err}");
}

#[test]
fn a_missing_part_is_named_unless_partial_reads_are_allowed() {
    let dir = tempfile::tempdir().unwrap();
    for k in [0, 2] {
        write(&dir.path().join(part_name(k, 3)), &header(k, 3));
    }
    let err = Source::open(dir.path(), false).err().unwrap().to_string();
    assert!(err.contains("part-00001-of-00003.parquet"), "{err}");
    let s = Source::open(dir.path(), true).unwrap();
    assert_eq!(s.rows, 2);
    let parts = s.parts.unwrap();
    assert_eq!((parts.missing, parts.first_missing), (1, vec![part_name(1, 3)]));
}
