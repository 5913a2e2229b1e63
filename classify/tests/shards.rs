//! classify on a folder of parts (`extract --shard`): the same classifier
//! as on the single-run file; a missing or disagreeing part refused by
//! name unless `--allow-partial`; an RBF kernel too large to hold refused
//! before any work.

mod common;

use std::path::Path;

use common::*;
use featurefile::shards::part_name;
use serde_json::Value;

const MODEL: &str = "resnet50-narrow.onnx";

/// The classifier's JSON without what names the run (its input path, its time).
fn classifier_json(path: &Path) -> Value {
    let mut v: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let o = v.as_object_mut().unwrap();
    o.remove("train_file");
    o.remove("fit_seconds");
    v
}

fn parts(images: &Path, dir: &Path, n: usize, extra: &[&str]) {
    let out = format!("{}/", dir.display());
    for k in 0..n {
        let shard = format!("{k}/{n}");
        let args: Vec<&str> = ["--shard", shard.as_str()].into_iter().chain(extra.iter().copied()).collect();
        extract(images, Path::new(&out), MODEL, &args);
    }
}

#[test]
#[ignore = "needs scripts/setup.sh (.venv, models/): scripts/test.sh runs it"]
fn a_folder_of_parts_fits_and_scores_as_the_single_file() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    py_ok(
        "classify/tests/py/make_dataset.py",
        &[s(&d.join("images")), "--classes", "3", "--train", "12", "--val", "6"],
    );
    let (train, val) = (d.join("images/train"), d.join("images/val"));
    let single = d.join("train.parquet");
    extract(&train, &single, MODEL, &[]);
    let folder = d.join("train");
    parts(&train, &folder, 4, &[]);
    let val_parts = d.join("val");
    parts(&val, &val_parts, 2, &[]);

    for model in [["--model", "logistic"], ["--model", "svm"]] {
        let (a, b) = (d.join("a.json"), d.join("b.json"));
        ok(&[&["fit", "--train", s(&single), "--out", s(&a)][..], &model[..]].concat());
        let o = classify(&[&["fit", "--train", s(&folder), "--out", s(&b)][..], &model[..]].concat());
        assert!(o.status.success(), "{}", stderr(&o));
        let err = stderr(&o);
        assert!(
            err.starts_with(&format!(
                "reading 36 rows x 256 of avgpool from {} (4 parts): 36.0 KiB as f32",
                folder.display()
            )),
            "{err}"
        );
        assert_eq!(classifier_json(&a), classifier_json(&b), "{model:?}: the same classifier from the folder");
    }
    // Scoring and predicting a folder: the single file's answers.
    let val_single = d.join("val.parquet");
    extract(&val, &val_single, MODEL, &[]);
    let c = d.join("a.json");
    assert_eq!(
        ok(&["score", s(&val_parts), "--classifier", s(&c), "--json"]),
        ok(&["score", s(&val_single), "--classifier", s(&c), "--json"])
    );
    let (p1, p2) = (d.join("p1.csv"), d.join("p2.csv"));
    ok(&["predict", s(&val_parts), "--classifier", s(&c), "--out", s(&p1)]);
    ok(&["predict", s(&val_single), "--classifier", s(&c), "--out", s(&p2)]);
    assert_eq!(std::fs::read_to_string(&p1).unwrap(), std::fs::read_to_string(&p2).unwrap());

    // A missing part: refused by name, unless --allow-partial, which says how much it read.
    std::fs::remove_file(folder.join(part_name(2, 4))).unwrap();
    let out = d.join("c.json");
    assert_fails(
        &["fit", "--train", s(&folder), "--out", s(&out)],
        "1 of 4 parts missing, first part-00002-of-00004.parquet (--allow-partial reads the others)",
    );
    let o = classify(&["fit", "--train", s(&folder), "--out", s(&out), "--allow-partial"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("(--allow-partial: 3 of 4 parts, 27 of 36 images; missing part-00002-of-00004.parquet)"),
        "{}",
        stderr(&o)
    );
    let fitted: Value = serde_json::from_str(&std::fs::read_to_string(&out).unwrap()).unwrap();
    assert_eq!(fitted["train_rows"], 27);

    // A part of another configuration in its place: refused by name.
    let other = d.join("other");
    parts(&train, &other, 4, &["--resize", "240"]);
    std::fs::copy(other.join(part_name(2, 4)), folder.join(part_name(2, 4))).unwrap();
    assert_fails(
        &["fit", "--train", s(&folder), "--out", s(&out)],
        "part-00002-of-00004.parquet: other preprocessing than part-00000-of-00004.parquet",
    );
    // A part of a run of another N.
    std::fs::copy(other.join(part_name(1, 4)), folder.join(part_name(2, 4))).unwrap();
    std::fs::rename(folder.join(part_name(2, 4)), folder.join(part_name(1, 3))).unwrap();
    assert_fails(
        &["fit", "--train", s(&folder), "--out", s(&out)],
        "a part of 3, beside part-00000-of-00004.parquet of 4",
    );
    let empty = d.join("empty");
    std::fs::create_dir_all(&empty).unwrap();
    assert_fails(
        &["fit", "--train", s(&empty), "--out", s(&out)],
        "no part-KKKKK-of-NNNNN.parquet files in this folder",
    );
}

/// 2 classes x `n` rows of 2 features.
fn big_two_feature_file(path: &Path, n: usize) {
    let classes = vec!["a".to_string(), "b".to_string()];
    let paths: Vec<String> = (0..2 * n).map(|i| format!("{}/{i:07}.jpg", classes[i % 2])).collect();
    let mut order: Vec<usize> = (0..2 * n).collect();
    order.sort_by(|&a, &b| paths[a].cmp(&paths[b]));
    let paths: Vec<String> = order.iter().map(|&i| paths[i].clone()).collect();
    let labels: Vec<Option<i32>> = order.iter().map(|&i| Some((i % 2) as i32)).collect();
    let x: Vec<f32> = order.iter().flat_map(|&i| [(i % 2) as f32 + (i % 7) as f32 * 0.1, (i % 5) as f32]).collect();
    testkit::write_generated(path, &classes, 2, &paths, &labels, &x);
}

#[test]
#[ignore = "needs scripts/setup.sh (.venv, models/): scripts/test.sh runs it"]
fn an_rbf_kernel_too_large_to_hold_is_refused_with_its_size() {
    let tmp = tempfile::tempdir().unwrap();
    let f = tmp.path().join("big.parquet");
    // 400,000 rows: a 1.2 TiB kernel matrix, too large on any machine.
    big_two_feature_file(&f, 200_000);
    let out = tmp.path().join("c.json");
    assert_fails(
        &["fit", "--train", s(&f), "--out", s(&out), "--model", "svm", "--kernel", "rbf"],
        "the RBF SVM's kernel matrix for its largest pair of classes (400000 rows) is 400000 x 400000 doubles, 1192.1 GiB",
    );
    // The linear models take it.
    ok(&["fit", "--train", s(&f), "--out", s(&out), "--model", "logistic"]);
}
