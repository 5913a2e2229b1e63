//! The hostile-input suite for `extract`: outputs that would destroy
//! something, sizes that would exhaust the machine, names and models that
//! would corrupt the file. Every refusal is one line and a non-zero exit,
//! with no panic, under 1 GB, nothing half-written and every input as it
//! was (hashed before and after); every run that goes on stays under 1 GB.
//!
//! Needs what `scripts/setup.sh` installs (`scripts/test.sh` runs it).

use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use testkit::hostile::{assert_calm, assert_refused, device_node, run_measured, snapshot, Measured};
use testkit::{assert_no_partial_files, py_json, s};

fn extract(args: &[&str]) -> Measured {
    run_measured(Command::new(env!("CARGO_BIN_EXE_extract")).args(args), Duration::from_secs(300))
}

/// The suite's inputs (`make_hostile.py`) and a copy of the narrow test model.
struct Inputs {
    dir: tempfile::TempDir,
    images: PathBuf,
    model: PathBuf,
}

impl Inputs {
    fn new() -> (Inputs, serde_json::Value) {
        let dir = tempfile::tempdir().unwrap();
        let made = py_json("extract/tests/py/make_hostile.py", &[s(dir.path())]);
        let model = dir.path().join("m.onnx");
        std::fs::copy(testkit::model("resnet50-narrow.onnx"), &model).unwrap();
        let images = dir.path().join("images");
        (Inputs { dir, images, model }, made)
    }

    fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    fn snapshot(&self) -> std::collections::BTreeMap<PathBuf, String> {
        snapshot(&[&self.images, &self.model])
    }
}

fn ok(case: &str, m: &Measured) {
    assert!(m.status.success(), "{case}: {}", m.stderr);
    assert_calm(case, m);
}

#[test]
#[ignore = "needs scripts/setup.sh (.venv, models/): scripts/test.sh runs it"]
fn an_output_never_destroys_a_device_node_an_input_or_another_runs_file() {
    let (inp, _) = Inputs::new();
    let m = s(&inp.model);
    let before = inp.snapshot();
    let null = device_node(inp.dir.path(), "null");
    let cases: Vec<(&str, Vec<String>, &str)> = vec![
        ("a device node", vec![s(&null).into()], "not a regular file"),
        ("the model", vec![m.into()], "is the model"),
        ("an image", vec![s(&inp.images.join("dark/0.png")).into()], "inside the image folder"),
        ("a new file in the image tree", vec![s(&inp.images.join("f.parquet")).into()], "inside the image folder"),
        (
            "a folder of parts in the image tree",
            vec![format!("{}/", s(&inp.images.join("parts")))],
            "inside the image folder",
        ),
    ];
    for (case, out, expect) in &cases {
        let r = extract(&["--model", m, "--images", s(&inp.images), "--out", &out[0]]);
        assert_refused("extract", case, &r, expect);
    }
    let t = std::fs::symlink_metadata(&null).unwrap().file_type();
    use std::os::unix::fs::FileTypeExt;
    assert!(t.is_char_device() || t.is_fifo(), "the node was replaced: {t:?}");
    assert_eq!(inp.snapshot(), before, "an input changed");
    assert!(!inp.images.join("parts").exists() && !inp.images.join("f.parquet").exists());

    // An existing file: this run's is nothing to do, another run's (or
    // any other file) is refused unless --overwrite.
    let out = inp.path("f.parquet");
    let run = |extra: &[&str]| {
        let mut a = vec!["--model", m, "--images", s(&inp.images), "--out", s(&out)];
        a.extend_from_slice(extra);
        extract(&a)
    };
    ok("first run", &run(&[]));
    let written = snapshot(&[&out]);
    let again = run(&[]);
    ok("the same run again", &again);
    assert!(again.stderr.contains("nothing to do"), "{}", again.stderr);
    assert_refused(
        "extract",
        "another run's file",
        &run(&["--layer", "stem"]),
        "exists from another run (layers avgpool (none), this run's stem",
    );
    assert_eq!(snapshot(&[&out]), written, "the file was touched");
    let notes = inp.path("notes.txt");
    std::fs::write(&notes, "not features").unwrap();
    let r = extract(&["--model", m, "--images", s(&inp.images), "--out", s(&notes)]);
    assert_refused("extract", "a file that is no feature file", &r, "exists from another run (");
    assert_eq!(std::fs::read_to_string(&notes).unwrap(), "not features");
    ok("--overwrite", &run(&["--layer", "stem", "--overwrite"]));
    assert_ne!(snapshot(&[&out]), written);
    assert_no_partial_files(inp.dir.path());
    assert_eq!(inp.snapshot(), before, "an input changed");
}

#[test]
#[ignore = "needs scripts/setup.sh (.venv, models/): scripts/test.sh runs it"]
fn sizes_an_input_controls_are_bounded_before_anything_is_allocated() {
    let (inp, made) = Inputs::new();
    let m = s(&inp.model);
    let images = s(&inp.images);
    let before = inp.snapshot();
    let out = inp.path("out.parquet");
    let o = s(&out);
    let refusals: Vec<(&str, Vec<&str>, &str)> = vec![
        ("--views 100000 on 4 images", vec!["--views", "100000"], "--views: batches of 100000 rows"),
        ("--shard with 10^11 tasks", vec!["--shard", "0/100000000000"], "100000000000 tasks is more than the 100000"),
        (
            "--layer label",
            vec!["--layer", "label"],
            "--layer label: a feature column cannot take the name of the fixed column",
        ),
        ("--layer view", vec!["--layer", "avgpool,view"], "--layer view"),
        (
            "--calibrate above the folder",
            vec!["--precision", "int8", "--calibrate", "10"],
            "--calibrate 10 needs 10 readable images",
        ),
        ("a usage error", vec!["--batch", "lots"], "invalid value 'lots' for '--batch <BATCH>'"),
    ];
    for (case, extra, expect) in &refusals {
        let mut a = vec!["--model", m, "--images", images, "--out", o];
        a.extend_from_slice(extra);
        let r = extract(&a);
        assert_refused("extract", case, &r, expect);
        assert!(!out.exists(), "{case}: wrote {o}");
    }

    // Runs that go on, sized by what there is.
    for (case, extra, says) in [
        ("--batch 100000 on 4 images", vec!["--batch", "100000"], ""),
        ("--threads 100000", vec!["--threads", "100000"], "--threads 100000: capped at"),
        // The default --calibrate (64) takes the 4 images there are, and says so.
        ("int8 on 4 images", vec!["--precision", "int8"], "int8: calibrating on the 4 readable images"),
    ] {
        let mut a = vec!["--model", m, "--images", images, "--out", o, "--overwrite"];
        a.extend_from_slice(&extra);
        let r = extract(&a);
        ok(case, &r);
        assert!(r.stderr.contains(says), "{case}: {says:?} not said: {}", r.stderr);
        assert_eq!(featurefile::FeatureFile::open(&out).unwrap().len(), 4, "{case}");
    }

    // A PNG whose ICC profile inflates to 64 MB: skipped and named, as PIL
    // refuses it, at any number of threads.
    assert!(made["pil_bomb"].as_str().unwrap().contains("Decompressed data too large"), "PIL read the bomb: {made}");
    for threads in ["1", "4"] {
        let bombs = inp.path("bombs");
        let r = extract(&["--model", m, "--images", s(&bombs), "--out", o, "--overwrite", "--threads", threads]);
        ok("the ICC bomb", &r);
        assert!(
            r.stderr.contains("skipped icc/bomb.png: PNG iCCP chunk decompresses to more than 1048576 bytes"),
            "{}",
            r.stderr
        );
        let f = featurefile::FeatureFile::open(&out).unwrap();
        assert_eq!((f.paths.as_slice(), f.header.skipped.len()), (&["icc/fine.png".to_string()][..], 1));
    }
    assert_no_partial_files(inp.dir.path());
    assert_eq!(inp.snapshot(), before, "an input changed");
}

#[test]
#[ignore = "needs scripts/setup.sh (.venv, models/): scripts/test.sh runs it"]
fn rows_whose_features_are_not_finite_are_skipped_and_named() {
    let (inp, _) = Inputs::new();
    let nan = inp.path("nan.onnx");
    let out = inp.path("f.parquet");
    // log(mean) of a normalized dark image is NaN, of a bright one a number.
    let r = extract(&["--model", s(&nan), "--layer", "logmean", "--images", s(&inp.images), "--out", s(&out)]);
    ok("a model that outputs NaN on some images", &r);
    let f = featurefile::FeatureFile::open(&out).unwrap();
    assert_eq!(f.paths, ["bright/0.png", "bright/1.png"]);
    assert!(f.columns[0].values.iter().all(|v| v.is_finite()));
    let skipped: Vec<(&str, &str)> = f.header.skipped.iter().map(|s| (s.path.as_str(), s.error.as_str())).collect();
    let why = "the network's logmean features are not finite (NaN or infinite)";
    assert_eq!(skipped, [("dark/0.png", why), ("dark/1.png", why)]);
    assert!(r.stderr.contains(&format!("skipped dark/0.png: {why}")), "{}", r.stderr);
    // Nothing finite at all: no file.
    let none = inp.path("none.parquet");
    let r = extract(&[
        "--model",
        s(&nan),
        "--layer",
        "logmean",
        "--images",
        s(&inp.images.join("dark")),
        "--out",
        s(&none),
    ]);
    assert!(r.stderr.contains("none of the 2 images could be read; nothing written"), "{}", r.stderr);
    assert!(!r.status.success() && !none.exists());
    assert_calm("all NaN", &r);
    assert_no_partial_files(inp.dir.path());
}

#[test]
#[ignore = "needs scripts/setup.sh (.venv, models/): scripts/test.sh runs it"]
fn a_log_gets_progress_lines_where_a_terminal_gets_a_bar() {
    let (inp, _) = Inputs::new();
    let out = inp.path("f.parquet");
    // stderr is a pipe here, as in a Slurm log.
    let r = extract(&[
        "--model",
        s(&inp.model),
        "--images",
        s(&inp.images),
        "--out",
        s(&out),
        "--batch",
        "1",
        "--progress-every",
        "0",
    ]);
    ok("progress in a log", &r);
    for done in 1..4 {
        let line = format!("extract: {done}/4 images ({:.1}%), ", done as f64 * 25.0);
        assert!(
            r.stderr.lines().any(|l| l.starts_with(&line) && l.contains(" images/s, eta ")),
            "{line:?} not in {}",
            r.stderr
        );
    }
    let quiet = extract(&["--model", s(&inp.model), "--images", s(&inp.images), "--out", s(&out), "--overwrite"]);
    assert!(
        !quiet.stderr.contains("images ("),
        "a short run prints no progress lines at the default 10 s: {}",
        quiet.stderr
    );
}
