//! The hostile-input suite for `classify`: outputs that would destroy an
//! input or a device node, hand-edited classifier files, feature files
//! that contradict themselves, 10,000 classes, options that do not apply,
//! command lines that do not parse. Every refusal is one line (a usage
//! error: one prefixed line, then clap's usage) and a non-zero exit, with
//! no panic, under 1 GB, nothing half-written and every input as it was.
//!
//! Needs what `scripts/setup.sh` installs (`scripts/test.sh` runs it).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use serde_json::{json, Value};
use testkit::hostile::{assert_calm, assert_refused, device_node, run_measured, snapshot, Measured};
use testkit::{assert_no_partial_files, py, s, stderr, write_generated};

fn classify(args: &[&str]) -> Measured {
    run_measured(Command::new(env!("CARGO_BIN_EXE_classify")).args(args), Duration::from_secs(300))
}

fn ok(case: &str, m: &Measured) {
    assert!(m.status.success(), "{case}: {}", m.stderr);
    assert_calm(case, m);
}

/// `n` rows per class of `classes`, `dim` values each: class c's rows sit
/// around the unit vector of feature c mod dim, so every model separates them.
fn features(path: &Path, classes: &[&str], n: usize, dim: usize, seed: u64) {
    let mut state = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut noise = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        (state % 1000) as f32 / 1000.0 - 0.5
    };
    let names: Vec<String> = classes.iter().map(|c| c.to_string()).collect();
    let (mut paths, mut labels, mut values) = (Vec::new(), Vec::new(), Vec::new());
    for (c, name) in classes.iter().enumerate() {
        for i in 0..n {
            paths.push(format!("{name}/{i}.png"));
            labels.push(Some(c as i32));
            values.extend((0..dim).map(|d| if d == c % dim { 3.0 } else { 0.0 } + noise()));
        }
    }
    write_generated(path, &names, dim, &paths, &labels, &values);
}

const TEN: [&str; 10] = ["c0", "c1", "c2", "c3", "c4", "c5", "c6", "c7", "c8", "c9"];

#[test]
#[ignore = "needs scripts/setup.sh (.venv, models/): scripts/test.sh runs it"]
fn an_output_is_never_an_input_or_a_device_node() {
    let dir = tempfile::tempdir().unwrap();
    let (v, c) = (dir.path().join("v.parquet"), dir.path().join("c.json"));
    features(&v, &TEN[..3], 10, 8, 1);
    ok("fit", &classify(&["fit", "--train", s(&v), "--out", s(&c), "--C", "1"]));
    let model = dir.path().join("m.onnx");
    std::fs::copy(testkit::model("resnet50-narrow.onnx"), &model).unwrap();
    let before = snapshot(&[&v, &c, &model]);
    let null = device_node(dir.path(), "null");
    // Other names of the inputs: a hard link to the features, a symbolic
    // link to the classifier.
    let (hard, soft) = (dir.path().join("hard.csv"), dir.path().join("soft.html"));
    std::fs::hard_link(&v, &hard).unwrap();
    std::os::unix::fs::symlink(&c, &soft).unwrap();
    let (hard, soft) = (s(&hard).to_string(), s(&soft).to_string());
    let (v, c, m, n) = (s(&v), s(&c), s(&model), s(&null));
    let cases: Vec<(&str, Vec<&str>, &str)> = vec![
        ("predict over its input", vec!["predict", v, "--classifier", c, "--out", v], "is the feature file"),
        ("predict over the classifier", vec!["predict", v, "--classifier", c, "--out", c], "is the classifier"),
        ("fit over its training file", vec!["fit", "--train", v, "--out", v, "--C", "1"], "is the training features"),
        ("a report over the classifier", vec!["score", v, "--classifier", c, "--report", c], "is the classifier"),
        ("an inspect report over its input", vec!["inspect", v, "--report", v], "is the feature file"),
        ("export over the model", vec!["export", "--classifier", c, "--model", m, "--out", m], "is the model"),
        (
            "export over the classifier",
            vec!["export", "--classifier", c, "--model", m, "--out", c],
            "is the classifier",
        ),
        ("fit into a device node", vec!["fit", "--train", v, "--out", n, "--C", "1"], "not a regular file"),
        ("predict into a device node", vec!["predict", v, "--classifier", c, "--out", n], "not a regular file"),
        ("a report into a device node", vec!["score", v, "--classifier", c, "--report", n], "not a regular file"),
        ("an inspect report into a device node", vec!["inspect", v, "--report", n], "not a regular file"),
        (
            "export into a device node",
            vec!["export", "--classifier", c, "--model", m, "--out", n],
            "not a regular file",
        ),
        (
            "predict into a hard link to its input",
            vec!["predict", v, "--classifier", c, "--out", &hard],
            "is the feature file",
        ),
        (
            "a report into a link to the classifier",
            vec!["score", v, "--classifier", c, "--report", &soft],
            "is the classifier",
        ),
    ];
    for (case, args, expect) in &cases {
        assert_refused("classify", case, &classify(args), expect);
    }
    use std::os::unix::fs::FileTypeExt;
    let t = std::fs::symlink_metadata(&null).unwrap().file_type();
    assert!(t.is_char_device() || t.is_fifo(), "the node was replaced: {t:?}");
    assert_eq!(snapshot(&[Path::new(v), Path::new(c), &model]), before, "an input changed");
    assert_no_partial_files(dir.path());
}

/// `path`'s JSON with `edit` applied, written to `out`.
fn edited(path: &Path, out: &Path, edit: impl FnOnce(&mut Value)) {
    let mut j: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    edit(&mut j);
    std::fs::write(out, serde_json::to_string(&j).unwrap()).unwrap();
}

#[test]
#[ignore = "needs scripts/setup.sh (.venv, models/): scripts/test.sh runs it"]
fn a_classifier_file_is_checked_once_on_load_naming_the_field() {
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("f.parquet");
    features(&f, &TEN, 6, 16, 2);
    let fit = |name: &str, extra: &[&str]| {
        let out = dir.path().join(name);
        let mut a = vec!["fit", "--train", s(&f), "--out", s(&out), "--C", "1"];
        a.extend_from_slice(extra);
        ok(name, &classify(&a));
        out
    };
    let logistic = fit("logistic.json", &[]);
    let svm = fit("svm.json", &["--model", "svm"]);
    let rbf = fit("rbf.json", &["--model", "svm", "--kernel", "rbf"]);
    let before = snapshot(&[&f]);
    type Edit = Box<dyn Fn(&mut Value)>;
    let cases: Vec<(&str, &PathBuf, Edit, &str)> = vec![
        (
            "5 class names for 10 classes",
            &logistic,
            Box::new(|j| j["classes"] = json!(TEN[..5])),
            "model.weights has 10 rows for 5 classes",
        ),
        (
            "short intercepts",
            &logistic,
            Box::new(|j| _ = j["model"]["intercepts"].as_array_mut().unwrap().pop()),
            "model.intercepts has 9 values for 10 rows of weights",
        ),
        (
            "fewer weight rows",
            &logistic,
            Box::new(|j| _ = j["model"]["weights"].as_array_mut().unwrap().pop()),
            "model.weights has 9 rows for 10 classes",
        ),
        (
            "a short weight row",
            &logistic,
            Box::new(|j| _ = j["model"]["weights"][3].as_array_mut().unwrap().pop()),
            "model.weights[3] has 15 values for 16 features",
        ),
        (
            "a scaler of 10 values for 16",
            &logistic,
            Box::new(|j| j["scaler"]["std"].as_array_mut().unwrap().truncate(10)),
            "scaler.std has 10 values for 16 features",
        ),
        ("std 0", &logistic, Box::new(|j| j["scaler"]["std"][4] = json!(0.0)), "scaler.std[4] is 0"),
        (
            "ten classes named a",
            &logistic,
            Box::new(|j| j["classes"] = json!(vec!["a"; 10])),
            "classes: \"a\" appears twice",
        ),
        ("C = 0", &logistic, Box::new(|j| j["model"]["c"] = json!(0.0)), "model.c is 0, not a positive number"),
        (
            "an SVM's gamma of 0",
            &rbf,
            Box::new(|j| j["model"]["gamma"] = json!(0.0)),
            "model.gamma is 0, not a positive number",
        ),
        (
            "3 of 45 machines",
            &svm,
            Box::new(|j| j["model"]["machines"].as_array_mut().unwrap().truncate(3)),
            "model.machines has 3 machines for 10 classes (one per pair: 45)",
        ),
        (
            "a short hyperplane",
            &svm,
            Box::new(|j| _ = j["model"]["machines"][7]["w"].as_array_mut().unwrap().pop()),
            "model.machines[7].w has 15 values for 16 features",
        ),
        (
            "cut support vectors",
            &rbf,
            Box::new(|j| {
                _ = j["model"]["machines"][2]["sep_hyperplane"]["WeightedCombination"]["data"]
                    .as_array_mut()
                    .unwrap()
                    .pop()
            }),
            "data did not match any variant of untagged enum Machines",
        ),
        (
            "support vectors of another dim",
            &rbf,
            Box::new(|j| {
                let sv = &mut j["model"]["machines"][0]["sep_hyperplane"]["WeightedCombination"];
                let n = sv["dim"][0].as_u64().unwrap();
                sv["dim"] = json!([n * 2, 8]);
            }),
            "model.machines[0]: support vectors of 8 values for 16 features",
        ),
    ];
    let m = testkit::model("resnet50-narrow.onnx");
    for (case, from, edit, expect) in &cases {
        let bad = dir.path().join("bad.json");
        edited(from, &bad, edit);
        let b = s(&bad);
        let out = dir.path().join("out.csv");
        let onnx = dir.path().join("out.onnx");
        for (what, args) in [
            ("score", vec!["score", s(&f), "--classifier", b]),
            ("predict", vec!["predict", s(&f), "--classifier", b, "--out", s(&out)]),
            ("export", vec!["export", "--classifier", b, "--model", s(&m), "--out", s(&onnx)]),
        ] {
            assert_refused(
                "classify",
                &format!("{case} ({what})"),
                &classify(&args),
                &format!("{b}: not a classifier file ({expect}"),
            );
            assert!(!out.exists() && !onnx.exists(), "{case} ({what}) wrote its output");
        }
    }
    assert_eq!(snapshot(&[&f]), before);
    assert_no_partial_files(dir.path());
}

#[test]
#[ignore = "needs scripts/setup.sh (.venv, models/): scripts/test.sh runs it"]
fn a_feature_file_that_contradicts_itself_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("f.parquet");
    features(&f, &TEN[..3], 6, 8, 3);
    // Each contradiction written by pyarrow, as a hand or another tool would.
    for (case, expect) in [
        ("duplicate_path", "path \"c0/1.png\" appears on two rows"),
        ("label_name", "row \"c1/0.png\" has label Some(1) but label_name Some(\"c2\")"),
        ("duplicate_class", "extract.classes names the class \"c0\" twice"),
        ("reserved_layer", "extract.layers names a layer \"label\", which is a fixed column's name"),
    ] {
        let bad = dir.path().join(format!("{case}.parquet"));
        let o = py("classify/tests/py/contradict.py", &[s(&f), s(&bad), case]);
        assert!(o.status.success(), "{}", stderr(&o));
        let c = dir.path().join("c.json");
        let r = classify(&["fit", "--train", s(&bad), "--out", s(&c), "--C", "1"]);
        assert_refused("classify", case, &r, &format!("{}: not a feature file: {expect}", s(&bad)));
        assert!(!c.exists());
    }
}

#[test]
#[ignore = "needs scripts/setup.sh (.venv, models/): scripts/test.sh runs it"]
fn ten_thousand_classes_score_in_bounded_memory_with_a_summarised_confusion() {
    let dir = tempfile::tempdir().unwrap();
    let (small, c) = (dir.path().join("small.parquet"), dir.path().join("c.json"));
    features(&small, &TEN[..3], 6, 8, 4);
    ok("fit", &classify(&["fit", "--train", s(&small), "--out", s(&c), "--C", "1"]));
    // The same classifier, widened to 10,000 classes: class k's weights
    // point along feature k mod 8, scaled by k, so predictions spread.
    let k = 10_000;
    let names: Vec<String> = (0..k).map(|i| format!("class{i:05}")).collect();
    let big = dir.path().join("big.json");
    edited(&c, &big, |j| {
        j["classes"] = json!(names);
        let w: Vec<Vec<f64>> =
            (0..k).map(|i| (0..8).map(|d| if d == i % 8 { 1.0 + i as f64 * 1e-4 } else { 0.0 }).collect()).collect();
        j["model"]["weights"] = json!(w);
        j["model"]["intercepts"] = json!(vec![0.0; k]);
    });
    let f = dir.path().join("f.parquet");
    let paths: Vec<String> = (0..k).map(|i| format!("{}/{i}.png", names[i])).collect();
    let labels: Vec<Option<i32>> = (0..k as i32).map(Some).collect();
    let values: Vec<f32> = (0..k).flat_map(|i| (0..8).map(move |d| if d == i % 8 { 2.0 } else { 0.0 })).collect();
    write_generated(&f, &names, 8, &paths, &labels, &values);
    let report = dir.path().join("r.html");
    let r = classify(&["score", s(&f), "--classifier", s(&big), "--json", "--report", s(&report)]);
    ok("10,000 classes", &r);
    let j: Value = serde_json::from_str(&r.stdout).unwrap();
    assert!(
        j["confusion"].get("matrix").is_none() && j["confusion"]["top"].as_array().unwrap().len() == 100,
        "{}",
        j["confusion"]
    );
    assert!(r.stdout.len() < 8 << 20, "--json is {} bytes", r.stdout.len());
    let html = std::fs::read_to_string(&report).unwrap();
    assert!(html.contains("<h2>Top confusions</h2>") && !html.contains("class=\"confusion\""), "no grid of 10^8 cells");
    assert!(html.len() < 16 << 20, "the report is {} bytes", html.len());
    let table = classify(&["score", s(&f), "--classifier", s(&big)]);
    ok("10,000 classes, table", &table);
    assert!(table.stdout.contains("top confusions (10000 classes: the largest 100 off-diagonal cells)"));
}

#[test]
#[ignore = "needs scripts/setup.sh (.venv, models/): scripts/test.sh runs it"]
fn what_does_not_apply_is_refused_and_what_looks_wrong_is_said() {
    let dir = tempfile::tempdir().unwrap();
    let (f, c) = (dir.path().join("f.parquet"), dir.path().join("c.json"));
    features(&f, &TEN[..3], 10, 8, 5);
    let fv = s(&f);
    for (case, extra, expect) in [
        ("--kernel with logistic", vec!["--kernel", "rbf"], "--kernel applies to --model svm, not to --model logistic"),
        (
            "--gamma with a linear svm",
            vec!["--model", "svm", "--gamma", "0.1"],
            "--gamma applies to --model svm --kernel rbf, not to --model svm",
        ),
        ("--k with svm", vec!["--model", "svm", "--k", "3"], "--k applies to --model knn, not to --model svm"),
        (
            "--kernel with knn",
            vec!["--model", "knn", "--kernel", "linear"],
            "--kernel applies to --model svm, not to --model knn",
        ),
    ] {
        let mut a = vec!["fit", "--train", fv, "--out", s(&c)];
        a.extend_from_slice(&extra);
        assert_refused("classify", case, &classify(&a), expect);
        assert!(!c.exists(), "{case}");
    }
    ok("fit", &classify(&["fit", "--train", fv, "--out", s(&c), "--C", "1"]));
    // A file of none of the classifier's classes: scored, and said.
    let other = dir.path().join("other.parquet");
    features(&other, &["wolf", "fox"], 3, 8, 6);
    let r = classify(&["score", s(&other), "--classifier", s(&c)]);
    ok("no class in common", &r);
    assert!(
        r.stderr.contains(&format!(
            "classify: warning: none of {}'s classes (fox, wolf) is one the classifier tells apart (c0, c1, c2)",
            s(&other)
        )),
        "{}",
        r.stderr
    );
    let quiet = classify(&["score", fv, "--classifier", s(&c)]);
    assert!(!quiet.stderr.contains("warning"), "{}", quiet.stderr);
}

#[test]
#[ignore = "needs scripts/setup.sh (.venv, models/): scripts/test.sh runs it"]
fn a_command_line_that_does_not_parse_gets_clap_whole_message() {
    let alone = classify(&[]);
    assert_eq!(alone.status.code(), Some(2));
    for part in ["Commands:", "fit", "score", "predict", "inspect", "export"] {
        assert!(alone.stderr.contains(part), "classify alone: {part:?} not in {}", alone.stderr);
    }
    assert_calm("classify alone", &alone);
    for (case, args, expect) in [
        (
            "a missing argument",
            vec!["predict", "f.parquet"],
            "classify: the following required arguments were not provided:\n  --out <OUT>\n",
        ),
        ("an unknown model", vec!["fit", "--model", "foo"], "[possible values: logistic, svm, knn]"),
        ("a misspelt command", vec!["fitt"], "a similar subcommand exists: 'fit'"),
        ("a misspelt flag", vec!["fit", "--layr", "x"], "a similar argument exists: '--layer'"),
    ] {
        let r = classify(&args);
        assert_refused("classify", case, &r, expect);
        assert_eq!(r.status.code(), Some(2), "{case}");
        assert!(r.stderr.trim_end().ends_with("For more information, try '--help'."), "{case}: {}", r.stderr);
    }
}

#[test]
#[ignore = "needs scripts/setup.sh (.venv, models/): scripts/test.sh runs it"]
fn a_long_c_auto_grid_reports_as_it_goes() {
    let dir = tempfile::tempdir().unwrap();
    let (f, c) = (dir.path().join("f.parquet"), dir.path().join("c.json"));
    features(&f, &TEN[..6], 1000, 256, 7);
    // Quiet for the default 2 s (whether it runs past them depends on the
    // machine); from the first candidate with --progress-after 0.
    let r = classify(&["fit", "--train", s(&f), "--out", s(&c), "--progress-after", "0"]);
    ok("--C auto", &r);
    let lines: Vec<&str> = r.stderr.lines().filter(|l| l.starts_with("cross-validation ")).collect();
    assert!(
        lines.last().is_some_and(|l| l.starts_with("cross-validation 17/17: logistic C=10000 accuracy ")),
        "{}",
        r.stderr
    );
}

#[test]
#[ignore = "needs scripts/setup.sh (.venv, models/): scripts/test.sh runs it"]
fn the_docs_inspect_examples_run_on_the_files_the_readme_commands_write() {
    // The README's commands extract layer3 and avgpool into one file.
    let readme = std::fs::read_to_string(testkit::root().join("README.md")).unwrap();
    assert!(readme.contains("extract --layer layer3,avgpool --images data/Canidae/train --out features/train.parquet"));
    let dir = tempfile::tempdir().unwrap();
    let made = testkit::py_json("extract/tests/py/make_hostile.py", &[s(dir.path())]);
    assert!(made.is_object());
    let extract = testkit::workspace_bin(Path::new(env!("CARGO_BIN_EXE_classify")), "extract");
    let (train, val) = (dir.path().join("train.parquet"), dir.path().join("val.parquet"));
    for out in [&train, &val] {
        let o = Command::new(&extract)
            .args(["--model", s(&testkit::model("resnet50-narrow.onnx")), "--images", s(&dir.path().join("images"))])
            .args(["--layer", "layer3,avgpool", "--out", s(out)])
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", stderr(&o));
    }
    let docs = std::fs::read_to_string(testkit::root().join("docs/classify.md")).unwrap();
    let examples: Vec<&str> = docs.lines().filter(|l| l.starts_with("classify inspect ")).collect();
    assert!(!examples.is_empty());
    for line in examples {
        let command = line.split('#').next().unwrap();
        let args: Vec<String> = command
            .split_whitespace()
            .skip(1)
            .map(|a| match a {
                "features/train.parquet" => s(&train).to_string(),
                "features/val.parquet" => s(&val).to_string(),
                "reports/inspect.html" => s(&dir.path().join("inspect.html")).to_string(),
                other => other.to_string(),
            })
            .collect();
        let r = classify(&args.iter().map(String::as_str).collect::<Vec<_>>());
        ok(line, &r);
    }
}
