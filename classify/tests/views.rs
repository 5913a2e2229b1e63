//! `classify` on feature files of several views per image (`extract --views`):
//! cross-validation keeps an image's views in one fold, `score` and
//! `predict` give one verdict per image (the mean of its views' scores),
//! against scikit-learn; a `view` column with a gap is refused.
//!
//! They need what `scripts/setup.sh` installs (`scripts/test.sh` runs it).

use std::path::{Path, PathBuf};

mod common;
use common::{assert_fails, extract, ok, py_json, py_ok as py, s};

fn make(dir: &Path, name: &str, args: &[&str]) -> PathBuf {
    let f = dir.join(name);
    let mut all = vec!["make", s(&f)];
    all.extend_from_slice(args);
    py("classify/tests/py/views_reference.py", &all);
    f
}

/// The accuracies of `fit`'s cross-validation table, in its order.
fn table(out: &str, model: &str) -> Vec<f64> {
    out.lines()
        .filter(|l| l.trim_start().starts_with(model))
        .map(|l| l.split_whitespace().nth(if model == "svm" { 4 } else { 2 }).unwrap().parse().unwrap())
        .collect()
}

#[test]
#[ignore = "needs scripts/setup.sh (.venv, models/): scripts/test.sh runs it"]
fn cross_validation_never_splits_an_images_views() {
    // Each image's views are near-copies of it: folds that split them score
    // the copies, not the task.
    let dir = tempfile::tempdir().unwrap();
    let train = make(dir.path(), "train.parquet", &["--images", "60", "--views", "4"]);
    let clf = dir.path().join("c.json");
    let out = ok(&[
        "fit",
        "--train",
        s(&train),
        "--out",
        s(&clf),
        "--model",
        "svm",
        "--kernel",
        "rbf",
        "--C",
        "0.1,1,10",
        "--cv",
        "3",
    ]);
    let ours = table(&out, "svm");
    let r = py_json(
        "classify/tests/py/views_reference.py",
        &["cv", s(&train), "--layer", "avgpool", "--C", "0.1,1,10", "--cv", "3"],
    );
    let column = |k: &str| -> Vec<f64> { r[k].as_array().unwrap().iter().map(|v| v.as_f64().unwrap()).collect() };
    let (grouped, leaky) = (column("grouped"), column("leaky"));
    assert!(leaky.iter().zip(&grouped).all(|(l, g)| l - g > 0.15), "the data must tell a leak: {r}");
    assert_eq!(ours.len(), 3, "{out}");
    for (i, (a, b)) in ours.iter().zip(&grouped).enumerate() {
        assert!((a - b).abs() < 1e-3, "C #{i}: {a} vs scikit-learn's {b} on folds of whole images\n{out}");
    }
    // Folds are counted in images: 20 a class, so 21 folds are too many.
    assert_fails(
        &["fit", "--train", s(&train), "--out", s(&clf), "--C", "1", "--cv", "21"],
        "has 20 images, fewer than the 21 folds",
    );
    // kNN: an image's own views are never its neighbours in a fold.
    let out = ok(&["fit", "--train", s(&train), "--out", s(&clf), "--model", "knn", "--k", "1,3", "--cv", "3"]);
    let knn = table(&out, "knn");
    assert!(knn.iter().all(|&a| a < 0.9), "kNN's folds hold an image's views on both sides: {out}");
}

#[test]
#[ignore = "needs scripts/setup.sh (.venv, models/): scripts/test.sh runs it"]
fn score_and_predict_give_one_verdict_per_image_as_the_mean_of_its_views() {
    // Real views: generated images through extract with --views.
    let dir = tempfile::tempdir().unwrap();
    let images = dir.path().join("images");
    py("classify/tests/py/make_dataset.py", &[s(&images), "--classes", "3", "--train", "12", "--val", "8"]);
    let (train, val) = (dir.path().join("train.parquet"), dir.path().join("val.parquet"));
    let views = ["--views", "5", "--seed", "3", "--layer", "avgpool"];
    extract(&images.join("train"), &train, "resnet50-narrow.onnx", &views);
    extract(&images.join("val"), &val, "resnet50-narrow.onnx", &views);
    let clf = dir.path().join("c.json");
    let pred = dir.path().join("p.csv");
    // kNN's scores are shares of k, exact; the logistic regression's are
    // within its solver's agreement with scikit-learn's (0.02, as elsewhere).
    for (model, tol) in [(&["--model", "knn", "--k", "5"][..], 1e-9), (&["--model", "logistic", "--C", "1"], 0.02)] {
        let mut fit = vec!["fit", "--train", s(&train), "--out", s(&clf)];
        fit.extend(model);
        let fitted = ok(&fit);
        assert!(fitted.contains("on 180 rows"), "every view of the 36 images is a training row: {fitted}");
        let o = common::classify(&["predict", s(&val), "--classifier", s(&clf), "--out", s(&pred)]);
        assert!(o.status.success() && common::stderr(&o).contains("wrote 24 predictions"), "{}", common::stderr(&o));
        let mut args = vec!["score", s(&train), s(&val), "--layer", "avgpool", "--predictions", s(&pred)];
        args.extend(model);
        let r = py_json("classify/tests/py/views_reference.py", &args);
        assert_eq!(r["images"], 24, "{r}");
        assert_eq!(r["agreement"], 1.0, "{model:?}: each image's class is that of the highest mean score: {r}");
        let diff = r["score_max_diff"].as_f64().unwrap();
        assert!(diff <= tol, "{model:?}: scores are the mean of the views' scores: {r}");
        assert!(r["view0_score_diff"].as_f64().unwrap() > 3.0 * tol.max(0.01), "the views must move the mean: {r}");
        let scored: serde_json::Value =
            serde_json::from_str(&ok(&["score", s(&val), "--classifier", s(&clf), "--json"])).unwrap();
        assert!(
            (scored["accuracy"].as_f64().unwrap() - r["accuracy"].as_f64().unwrap()).abs() < 1e-9,
            "{scored} vs {r}"
        );
        assert_eq!(scored["rows"], 24, "one scored row per image: {scored}");
    }
}

#[test]
#[ignore = "needs scripts/setup.sh (.venv, models/): scripts/test.sh runs it"]
fn a_view_column_with_a_gap_is_one_line() {
    let dir = tempfile::tempdir().unwrap();
    let whole = make(dir.path(), "whole.parquet", &["--images", "9", "--views", "3"]);
    let gap = make(dir.path(), "gap.parquet", &["--images", "9", "--views", "3", "--drop-row", "7"]);
    let clf = dir.path().join("c.json");
    assert_fails(
        &["fit", "--train", s(&gap), "--out", s(&clf), "--C", "1"],
        "image c2/0002.jpg has view 2 where view 1 of its 3 was due",
    );
    assert!(!clf.exists());
    ok(&["fit", "--train", s(&whole), "--out", s(&clf), "--C", "1"]);
    assert_fails(&["score", s(&gap), "--classifier", s(&clf)], "image c2/0002.jpg has view 2");
    assert_fails(&["inspect", s(&gap)], "image c2/0002.jpg has view 2");
}
