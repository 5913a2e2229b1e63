//! The quickstart's parts: the digits dataset, the HTML report, and the
//! offline path of scripts/quickstart.sh.
//!
//! They need what `scripts/setup.sh` installs (`scripts/test.sh` runs it).

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;

use serde_json::Value;

mod common;
use common::{extract_bin, py_ok, root, s, stderr};

fn run(cmd: &mut Command) -> String {
    let o = cmd.output().unwrap();
    assert!(o.status.success(), "{cmd:?}: {}", stderr(&o));
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn py(script: &str, args: &[&str]) -> String {
    String::from_utf8_lossy(&py_ok(script, args).stdout).into_owned()
}

fn classify() -> Command {
    Command::new(env!("CARGO_BIN_EXE_classify"))
}

/// Relative paths of the files under `dir`, sorted.
fn files(dir: &Path) -> Vec<String> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else {
                out.push(p.strip_prefix(dir).unwrap().to_string_lossy().into_owned());
            }
        }
    }
    out.sort();
    out
}

#[test]
#[ignore = "needs scripts/setup.sh (.venv, models/): scripts/test.sh runs it"]
fn digits_are_written_as_a_stratified_deterministic_split() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b, c) = (dir.path().join("a"), dir.path().join("b"), dir.path().join("c"));
    for (out, seed) in [(&a, "0"), (&b, "0"), (&c, "1")] {
        py(
            "scripts/make-digits.py",
            &["--out", s(out), "--train-per-class", "6", "--val-per-class", "3", "--seed", seed],
        );
    }
    let fa = files(&a);
    assert_eq!(fa, files(&b), "the same seed gives the same split");
    assert_ne!(fa, files(&c), "another seed gives another split");
    let mut counts: BTreeMap<(String, String), usize> = BTreeMap::new();
    for f in &fa {
        let parts: Vec<&str> = f.split('/').collect();
        assert_eq!(parts.len(), 3, "{f}");
        assert!(parts[2].ends_with(".png"));
        *counts.entry((parts[0].to_string(), parts[1].to_string())).or_default() += 1;
    }
    for d in 0..10 {
        assert_eq!(counts[&("train".to_string(), d.to_string())], 6, "train/{d}");
        assert_eq!(counts[&("val".to_string(), d.to_string())], 3, "val/{d}");
    }
    // No image is in both splits.
    let names = |split: &str| -> Vec<String> {
        fa.iter().filter(|f| f.starts_with(split)).map(|f| f.rsplit('/').next().unwrap().to_string()).collect()
    };
    let train = names("train/");
    assert!(names("val/").iter().all(|v| !train.contains(v)));
    let first = fa.iter().find(|f| f.starts_with("train/7/")).unwrap();
    let img = image::open(a.join(first)).unwrap();
    assert_eq!((img.width(), img.height()), (64, 64));
}

#[test]
#[ignore = "needs scripts/setup.sh (.venv, models/): scripts/test.sh runs it"]
fn the_report_shows_every_scored_image_as_scored() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    py("classify/tests/py/make_dataset.py", &[s(&d.join("images")), "--classes", "3", "--train", "12", "--val", "8"]);
    for split in ["train", "val"] {
        run(Command::new(extract_bin()).args([
            "--model",
            s(&root().join("models/resnet50-narrow.onnx")),
            "--images",
            s(&d.join("images").join(split)),
            "--out",
            s(&d.join(format!("{split}.parquet"))),
        ]));
    }
    let clf = d.join("c.json");
    run(classify().args(["fit", "--train", s(&d.join("train.parquet")), "--out", s(&clf), "--model", "svm"]));
    let html = d.join("out/report.html");
    let out = run(classify().args([
        "score",
        s(&d.join("val.parquet")),
        "--classifier",
        s(&clf),
        "--json",
        "--report",
        s(&html),
    ]));
    let score: Value = serde_json::from_str(&out).unwrap();
    let csv = d.join("p.csv");
    run(classify().args(["predict", s(&d.join("val.parquet")), "--classifier", s(&clf), "--out", s(&csv)]));
    let predicted: BTreeMap<String, String> = std::fs::read_to_string(&csv)
        .unwrap()
        .lines()
        .skip(1)
        .map(|l| {
            let f: Vec<&str> = l.split(',').collect();
            (f[0].to_string(), f[1].to_string())
        })
        .collect();

    let r: Value = serde_json::from_str(&py("classify/tests/py/check_report.py", &[s(&html)])).unwrap();
    assert_eq!(r["doctype"], true);
    assert_eq!(r["balanced"], true);
    assert_eq!(r["external"], serde_json::json!([]), "the report must not need the network");
    let cards = r["cards"].as_array().unwrap();
    assert_eq!(cards.len(), 24, "one card per scored image");
    let mut seen_right = false;
    for c in cards {
        let path = c["path"].as_str().unwrap();
        assert_eq!(c["predicted"].as_str().unwrap(), predicted[path], "{path}");
        assert_eq!(c["true"].as_str().unwrap(), path.split('/').next().unwrap(), "{path}");
        let right = c["true"] == c["predicted"];
        assert_eq!(c["class"], if right { "right" } else { "wrong" }, "{c}");
        assert!(!seen_right || right, "wrong cards come first");
        seen_right |= right;
        assert_eq!(c["image"], true, "{c}");
    }
    // The grid's counts are score --json's confusion matrix.
    let classes: Vec<&str> =
        score["confusion"]["classes"].as_array().unwrap().iter().map(|v| v.as_str().unwrap()).collect();
    let cells = r["cells"].as_array().unwrap();
    assert_eq!(cells.len(), classes.len() * classes.len());
    for cell in cells {
        let t = classes.iter().position(|c| *c == cell[0]).unwrap();
        let p = classes.iter().position(|c| *c == cell[1]).unwrap();
        assert_eq!(cell[2], score["confusion"]["matrix"][t][p], "{cell}");
    }

    // Images gone since extraction: the report says so and keeps the numbers.
    std::fs::rename(d.join("images"), d.join("moved")).unwrap();
    let o = classify()
        .args(["score", s(&d.join("val.parquet")), "--classifier", s(&clf), "--report", s(&html)])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stderr(&o).contains("24 images not found"), "{}", stderr(&o));
    let r: Value = serde_json::from_str(&py("classify/tests/py/check_report.py", &[s(&html)])).unwrap();
    assert!(r["notes"][0].as_str().unwrap().contains("24 of 24 images could not be read"), "{}", r["notes"]);
    assert!(r["cards"].as_array().unwrap().iter().all(|c| c["missing"] == true && c["image"] == false));
    assert_eq!(r["cells"].as_array().unwrap().len(), 9);
}

#[test]
#[ignore = "needs scripts/setup.sh (.venv, models/): scripts/test.sh runs it"]
fn quickstart_falls_back_to_offline_and_reuses_its_work() {
    let dir = tempfile::tempdir().unwrap();
    let work = dir.path().join("work");
    let quickstart = || {
        let o = Command::new(root().join("scripts/quickstart.sh"))
            // --pretrained: the weights' download fails offline, so this
            // is the "a download failed" path.
            .args(["--pretrained", "--train-per-class", "12", "--val-per-class", "4"])
            .env("QUICKSTART_DIR", &work)
            // An empty cache and a mirror nowhere: offline, whatever this machine can reach.
            .env("XDG_CACHE_HOME", dir.path().join("cache"))
            .env("RESNET50_BASE_URL", "http://127.0.0.1:9")
            .env("EXTRACT", extract_bin())
            .env("CLASSIFY", env!("CARGO_BIN_EXE_classify"))
            .output()
            .unwrap();
        assert!(o.status.success(), "quickstart: {}", stderr(&o));
        (String::from_utf8_lossy(&o.stdout).into_owned(), stderr(&o))
    };
    let (out, err) = quickstart();
    let offline: Vec<&str> = err.lines().filter(|l| l.starts_with("quickstart: offline: ")).collect();
    assert!(offline.first().is_some_and(|l| l.contains("fetching the pretrained ResNet50 failed")), "{err}");
    assert!(out.contains("ResNet50 transfer learning on digits (offline)"), "{out}");
    let rows: Vec<&str> = out
        .lines()
        .filter(|l| l.starts_with("fixed feature extractor") || l.starts_with("small, different dataset"))
        .collect();
    assert_eq!(rows.len(), 2, "{out}");
    // Each row's validation accuracy is scikit-learn's on the same features
    // with the same classifier (the quickstart's fits: logistic C=1 on
    // avgpool, linear SVM C=1 on layer3, standard scaling).
    let features = |split: &str| work.join(format!("features/digits-{split}.parquet"));
    for (row, (layer, sklearn)) in
        rows.iter().zip([("avgpool", ["--model", "logistic"]), ("layer3", ["--model", "svm"])])
    {
        let cols: Vec<&str> = row.split_whitespace().collect();
        let val: f64 = cols[cols.len() - 2].parse().unwrap();
        let (train, valf) = (features("train"), features("val"));
        let r = testkit::py_json(
            "classify/tests/py/sklearn_reference.py",
            &[&[s(&train), s(&valf), "--layer", layer][..], &sklearn].concat(),
        );
        let theirs = r["val_accuracy"].as_f64().unwrap();
        // One row of the 40 validation images either way (the table rounds to 3 digits).
        assert!((val - theirs).abs() <= 0.026, "{row}: scikit-learn gets {theirs}");
    }
    assert!(rows[0].contains("avgpool") && rows[0].contains("logistic"), "{}", rows[0]);
    assert!(rows[1].contains("layer3") && rows[1].contains("svm"), "{}", rows[1]);
    let reports: Vec<&str> = out.lines().filter_map(|l| l.strip_prefix("report: ")).collect();
    assert_eq!(reports.len(), 2);
    assert!(reports.iter().all(|r| Path::new(r).is_file()));

    // A second run reuses the data and the features.
    let (out2, err2) = quickstart();
    assert_eq!(err2.matches("quickstart: reusing ").count(), 2, "{err2}");
    assert!(!err2.contains(" images to "), "extracted again: {err2}");
    assert_eq!(out2.lines().filter(|l| l.starts_with("fixed") || l.starts_with("small")).count(), 2);
}

/// Rows of webdataset tar shards: the report finds each image inside its
/// shard, as extract read it.
#[test]
#[ignore = "needs scripts/setup.sh (.venv, models/): scripts/test.sh runs it"]
fn the_report_shows_images_read_from_tar_shards() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    py("classify/tests/py/make_dataset.py", &[s(&d.join("images")), "--classes", "3", "--train", "6", "--val", "4"]);
    for split in ["train", "val"] {
        let tars = d.join(format!("{split}-shards"));
        py("scripts/make-shards.py", &[s(&d.join("images").join(split)), s(&tars), "--shards", "2"]);
        run(Command::new(extract_bin()).args([
            "--model",
            s(&root().join("models/resnet50-narrow.onnx")),
            "--images",
            s(&tars),
            "--out",
            s(&d.join(format!("{split}.parquet"))),
        ]));
    }
    let clf = d.join("c.json");
    run(classify().args(["fit", "--train", s(&d.join("train.parquet")), "--out", s(&clf), "--C", "1"]));
    let html = d.join("report.html");
    run(classify().args(["score", s(&d.join("val.parquet")), "--classifier", s(&clf), "--report", s(&html)]));
    let r: Value = serde_json::from_str(&py("classify/tests/py/check_report.py", &[s(&html)])).unwrap();
    let cards = r["cards"].as_array().unwrap();
    assert_eq!(cards.len(), 12, "one card per scored image");
    for c in cards {
        assert!(c["path"].as_str().unwrap().starts_with("shard-0000"), "{c}");
        assert_eq!((c["image"].as_bool(), c["missing"].as_bool()), (Some(true), Some(false)), "{c}");
    }
}
