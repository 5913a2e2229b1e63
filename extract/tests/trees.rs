//! Image trees as shared drives hold them: links to devices, FIFOs, link
//! loops, dangling links, names that are not UTF-8, files too large. Only
//! regular files are images; the rest is skipped and named, never read.

#![cfg(unix)]

use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use featurefile::FeatureFile;
use testkit::{model, py, s, stderr};

/// extract on `images` with the narrow test model; a run that has not
/// ended after two minutes is killed and fails the test (a tree must never
/// hang a run: this guards against the hang, it times nothing).
fn extract(images: &Path, out: &Path, extra: &[&str]) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_extract"))
        .args(["--model", s(&model("resnet50-narrow.onnx")), "--images", s(images), "--out", s(out)])
        .args(extra)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let start = Instant::now();
    while child.try_wait().unwrap().is_none() {
        if start.elapsed() > Duration::from_secs(120) {
            let _ = child.kill();
            panic!("extract on {} hangs", images.display());
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    child.wait_with_output().unwrap()
}

fn png(path: &Path, shade: u8) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    image::RgbImage::from_fn(280, 250, |x, y| image::Rgb([shade, (x % 251) as u8, (y % 241) as u8]))
        .save_with_format(path, image::ImageFormat::Png)
        .unwrap();
}

/// A class folder `a` with three images and one more thing `odd` makes.
fn tree(dir: &Path, odd: impl FnOnce(&Path)) -> PathBuf {
    let root = dir.join("images");
    for i in 0..3 {
        png(&root.join(format!("a/{i}.png")), 40 * i as u8);
    }
    odd(&root.join("a"));
    root
}

fn skipped(f: &FeatureFile) -> Vec<(String, String)> {
    f.header.skipped.iter().map(|s| (s.path.clone(), s.error.clone())).collect()
}

#[test]
#[ignore = "needs scripts/setup.sh (.venv, models/): scripts/test.sh runs it"]
fn a_link_to_dev_zero_is_skipped_and_named_not_read() {
    let dir = tempfile::tempdir().unwrap();
    let root = tree(dir.path(), |a| std::os::unix::fs::symlink("/dev/zero", a.join("zero.jpg")).unwrap());
    let out = dir.path().join("f.parquet");
    let o = extract(&root, &out, &[]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stderr(&o).contains("skipped a/zero.jpg: not a regular file (a character device)"), "{}", stderr(&o));
    let f = FeatureFile::open(&out).unwrap();
    assert_eq!(f.paths, ["a/0.png", "a/1.png", "a/2.png"]);
    assert_eq!(skipped(&f), [("a/zero.jpg".to_string(), "not a regular file (a character device)".to_string())]);
}

#[test]
#[ignore = "needs scripts/setup.sh (.venv, models/): scripts/test.sh runs it"]
fn a_fifo_is_skipped_and_named_not_opened() {
    let dir = tempfile::tempdir().unwrap();
    let root = tree(dir.path(), |a| {
        // mkfifo(1): no libc binding needed.
        assert!(Command::new("mkfifo").arg(a.join("fifo.jpg")).status().unwrap().success());
    });
    let out = dir.path().join("f.parquet");
    let o = extract(&root, &out, &[]);
    assert!(o.status.success(), "{}", stderr(&o));
    let f = FeatureFile::open(&out).unwrap();
    assert_eq!(f.paths.len(), 3);
    assert_eq!(skipped(&f), [("a/fifo.jpg".to_string(), "not a regular file (a FIFO)".to_string())]);
}

#[test]
#[ignore = "needs scripts/setup.sh (.venv, models/): scripts/test.sh runs it"]
fn a_link_loop_is_walked_once_and_said() {
    let dir = tempfile::tempdir().unwrap();
    let root = tree(dir.path(), |a| {
        std::os::unix::fs::symlink("../a", a.join("loop")).unwrap();
    });
    // A second link to the class folder from inside another class, too.
    png(&root.join("b/x.png"), 7);
    std::os::unix::fs::symlink("../a", root.join("b/again")).unwrap();
    let out = dir.path().join("f.parquet");
    let o = extract(&root, &out, &[]);
    let err = stderr(&o);
    assert!(o.status.success(), "{err}");
    let f = FeatureFile::open(&out).unwrap();
    assert_eq!(f.paths, ["a/0.png", "a/1.png", "a/2.png", "b/x.png"], "each image once");
    assert!(
        err.contains("a/loop is a folder already walked (a link loop, or a second link to it): walked once"),
        "{err}"
    );
    assert!(err.contains("b/again is a folder already walked"), "{err}");
}

#[test]
#[ignore = "needs scripts/setup.sh (.venv, models/): scripts/test.sh runs it"]
fn a_dangling_link_is_skipped_and_named() {
    let dir = tempfile::tempdir().unwrap();
    let root = tree(dir.path(), |a| std::os::unix::fs::symlink("/nowhere/gone.jpg", a.join("gone.jpg")).unwrap());
    let out = dir.path().join("f.parquet");
    let o = extract(&root, &out, &[]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stderr(&o).contains("skipped a/gone.jpg: a dangling link (to /nowhere/gone.jpg)"), "{}", stderr(&o));
    assert_eq!(skipped(&FeatureFile::open(&out).unwrap()).len(), 1);
}

#[test]
#[ignore = "needs scripts/setup.sh (.venv, models/): scripts/test.sh runs it"]
fn a_file_above_the_byte_limit_is_skipped_before_it_is_read() {
    let dir = tempfile::tempdir().unwrap();
    let root = tree(dir.path(), |_| {});
    let size = std::fs::metadata(root.join("a/0.png")).unwrap().len();
    let out = dir.path().join("f.parquet");
    let limit = (size - 1).to_string();
    let o = extract(&root, &out, &["--max-bytes", &limit]);
    let err = stderr(&o);
    assert!(
        err.contains(&format!("skipped a/0.png: file is {size} bytes, above the limit of {limit} (--max-bytes)")),
        "{err}"
    );
}

#[test]
#[ignore = "needs scripts/setup.sh (.venv, models/): scripts/test.sh runs it"]
fn a_name_that_is_not_utf8_is_read_and_spelled_losslessly() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("images");
    png(&root.join("dogs/plain.png"), 90);
    // Latin-1 "café.png" from an old archive (é is the byte E9), and a name with a literal %.
    let latin1 = root.join(std::ffi::OsStr::from_bytes(b"dogs/caf\xe9.png"));
    std::fs::copy(root.join("dogs/plain.png"), &latin1).unwrap();
    std::fs::copy(root.join("dogs/plain.png"), root.join("dogs/100%.png")).unwrap();
    png(&root.join("wolves/w.png"), 200);
    let out = dir.path().join("f.parquet");
    let o = extract(&root, &out, &[]);
    assert!(o.status.success(), "{}", stderr(&o));
    let f = FeatureFile::open(&out).unwrap();
    assert_eq!(f.paths, ["dogs/100%25.png", "dogs/caf%E9.png", "dogs/plain.png", "wolves/w.png"]);
    assert!(f.header.skipped.is_empty());
    let c = f.column("avgpool").unwrap();
    assert_eq!(c.row(1), c.row(2), "the same image under either name");
    // The spelling names the file again.
    for p in &f.paths {
        assert!(Path::new(&f.header.root).join(featurefile::paths::unspell(p)).is_file(), "{p}");
    }
    // And classify's report finds it: every card has its picture.
    let classifier = dir.path().join("c.json");
    let classify = testkit::workspace_bin(Path::new(env!("CARGO_BIN_EXE_extract")), "classify");
    let run = |args: &[&str]| {
        let o = Command::new(&classify).args(args).output().unwrap();
        assert!(o.status.success(), "classify {args:?}: {}", stderr(&o));
    };
    run(&["fit", "--train", s(&out), "--out", s(&classifier)]);
    let html = dir.path().join("r.html");
    run(&["score", s(&out), "--classifier", s(&classifier), "--report", s(&html)]);
    let o = py("classify/tests/py/check_report.py", &[s(&html)]);
    assert!(o.status.success(), "{}", stderr(&o));
    let r: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let cards = r["cards"].as_array().unwrap();
    assert_eq!(cards.len(), 4);
    assert!(cards.iter().all(|c| c["image"] == true), "{r}");
}
