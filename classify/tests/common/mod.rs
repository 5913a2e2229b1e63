//! What classify's integration tests share beyond the workspace's helpers
//! (`testkit`): the two binaries and feature files to fit on.
#![allow(dead_code, unused_imports)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

pub use testkit::{model, py, py_json, python, root, s, shared_data, stderr};

/// The `extract` binary beside ours (a workspace test run builds it).
pub fn extract_bin() -> PathBuf {
    testkit::workspace_bin(Path::new(env!("CARGO_BIN_EXE_classify")), "extract")
}

/// `extract` over `images` with the named model from models/, into `out`.
pub fn extract(images: &Path, out: &Path, model_name: &str, extra: &[&str]) {
    let o = Command::new(extract_bin())
        .args(["--model", s(&model(model_name)), "--images", s(images), "--out", s(out)])
        .args(extra)
        .output()
        .unwrap();
    assert!(o.status.success(), "extract: {}", stderr(&o));
}

pub fn classify(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_classify")).args(args).output().unwrap()
}

/// Runs classify, which must succeed; returns its stdout.
pub fn ok(args: &[&str]) -> String {
    let o = classify(args);
    assert!(o.status.success(), "classify {args:?}: {}", stderr(&o));
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// Runs a repository script with the .venv Python, which must succeed.
pub fn py_ok(script: &str, args: &[&str]) -> Output {
    let o = py(script, args);
    assert!(o.status.success(), "{script}: {}", stderr(&o));
    o
}

/// classify's one-line failure, and no classifier written.
pub fn assert_fails(args: &[&str], expect: &str) {
    let o = classify(args);
    testkit::assert_one_line_failure("classify", args, &o, expect);
}
