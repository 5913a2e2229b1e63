//! Helpers for the workspace's integration tests (a dev-dependency only): where things are, running the project's Python
//! oracles, and the checks every binary's tests make of a failure.

pub mod hostile;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// Writes a feature file of generated rows, as given: `classes`, one
/// `avgpool` column of `dim` values per row (`values`, row-major), from a
/// made-up model and preprocessing.
pub fn write_generated(
    path: &Path,
    classes: &[String],
    dim: usize,
    paths: &[String],
    labels: &[Option<i32>],
    values: &[f32],
) {
    use featurefile::{Decode, FeatureWriter, Header, LayerInfo, ModelInfo, Pool, Preprocess, Rows};
    let mut w = FeatureWriter::create(path, classes, &[("avgpool".into(), dim)]).unwrap();
    w.write(Rows { paths, labels, features: &[values], views: &[] }).unwrap();
    w.finish(&Header {
        version: "test".into(),
        model: ModelInfo { file: "m.onnx".into(), sha256: "0".repeat(64), input: "input".into() },
        weights: None,
        classes: classes.to_vec(),
        layers: vec![("avgpool".into(), LayerInfo { tensor: "t".into(), pool: Pool::None, dim })],
        preprocess: Preprocess {
            resize: 256,
            crop: 224,
            mean: [0.485, 0.456, 0.406],
            std: [0.229, 0.224, 0.225],
            filter: "f".into(),
            decode: Decode::Exact,
            views: None,
        },
        root: "/nowhere".into(),
        skipped: vec![],
        shard: None,
        inference: None,
    })
    .unwrap();
}

/// The workspace root (this crate sits in `crates/`, directly below it).
pub fn root() -> PathBuf {
    Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../..")).canonicalize().expect("the workspace root exists")
}

/// The project's `.venv` Python, with the oracles `scripts/setup.sh` installs.
pub fn python() -> PathBuf {
    let p = root().join(".venv/bin/python");
    assert!(p.exists(), "{} is missing: run scripts/setup.sh first", p.display());
    p
}

/// A model in `models/` that `scripts/setup.sh` writes.
pub fn model(name: &str) -> PathBuf {
    let p = root().join("models").join(name);
    assert!(p.exists(), "{} is missing: run scripts/setup.sh first", p.display());
    p
}

/// `../shared/data/NAME`, the real photos beside the checkout (see `shared`).
pub fn shared_data(name: &str) -> Option<PathBuf> {
    shared(&format!("data/{name}"))
}

/// `../shared/fixtures/NAME`, checkpoints written by real PyTorch and MindSpore.
pub fn shared_fixtures(name: &str) -> Option<PathBuf> {
    shared(&format!("fixtures/{name}"))
}

/// Set to 1 to let the tests that need `../shared/` pass without it
/// (skipped, each saying so); never in CI.
pub const ALLOW_SKIP: &str = "RESNET_FEATURES_ALLOW_SKIP";

/// A folder of `../shared/` beside the checkout. Where it is missing the
/// test fails, unless [`ALLOW_SKIP`] is set to 1 outside CI: then it is
/// skipped and says so. "Passed" never means "did nothing" unless someone
/// asked for it by name.
fn shared(path: &str) -> Option<PathBuf> {
    let p = root().join("../shared").join(path);
    if p.is_dir() {
        return Some(p);
    }
    let set = |name: &str| std::env::var_os(name).is_some_and(|v| !v.is_empty() && v != "false" && v != "0");
    assert!(!set("CI"), "{} is missing; CI must run the tests that need it", p.display());
    assert!(set(ALLOW_SKIP), "{} is missing: this test needs it (set {ALLOW_SKIP}=1 to skip such tests)", p.display());
    eprintln!("SKIPPED ({ALLOW_SKIP}=1): {} is not there", p.display());
    None
}

/// Names of the checks that need hardware this machine lacks and may be
/// skipped here, comma-separated (`scripts/test.sh` sets it from the CPU
/// and says so).
pub const SKIP: &str = "RESNET_FEATURES_SKIP";

/// Whether the check `name`, which needs hardware (`why`), runs here: true
/// where the machine has it (`present`). Where it does not, the test fails
/// unless [`SKIP`] names the check: then it is skipped and says so, so
/// that a pass on a machine without the hardware was asked for by name.
pub fn hardware(name: &str, present: bool, why: &str) -> bool {
    if present {
        return true;
    }
    let allowed = std::env::var(SKIP).is_ok_and(|v| v.split(',').any(|n| n.trim() == name));
    assert!(allowed, "{name} cannot run here ({why}); set {SKIP}={name} to skip it on this machine");
    eprintln!("SKIPPED ({SKIP}={name}): {why}");
    false
}

/// A binary that a workspace test run builds (`cargo test --workspace`),
/// looked up beside the running test's own binary `sibling`.
pub fn workspace_bin(sibling: &Path, name: &str) -> PathBuf {
    let bin = sibling.with_file_name(name);
    assert!(bin.exists(), "{} is missing: run the tests with cargo test --workspace (scripts/test.sh)", bin.display());
    bin
}

pub fn s(p: &Path) -> &str {
    p.to_str().expect("test paths are UTF-8")
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// The `.venv` Python with `scripts/lib` (the shared `reference`, `photos`,
/// ... modules) and `scripts/bench` (`bench_logistic`'s generators) on its
/// module path; the caller adds the script or `-c` and the arguments.
pub fn python_command() -> Command {
    let mut cmd = Command::new(python());
    let path = std::env::join_paths([root().join("scripts/lib"), root().join("scripts/bench")])
        .expect("no separator in the paths");
    cmd.env("PYTHONPATH", path);
    cmd
}

/// Runs a script of the repository (path from the root) with `python_command`.
pub fn py(script: &str, args: &[&str]) -> Output {
    python_command().arg(root().join(script)).args(args).output().expect("python runs")
}

/// Runs a script that prints one JSON value and returns it; panics with the
/// script's output when it does not.
pub fn py_json(script: &str, args: &[&str]) -> serde_json::Value {
    let o = py(script, args);
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(o.status.success(), "{script} {args:?} failed\nstdout: {out}\nstderr: {}", stderr(&o));
    serde_json::from_str(out.trim()).unwrap_or_else(|e| panic!("{script}: {e}\nstdout: {out}\nstderr: {}", stderr(&o)))
}

/// Asserts what every failed run of `PROG` must look like: a non-zero exit,
/// one line on stderr starting `PROG: ` and containing `expect`, no panic;
/// a usage error (exit 2) follows its line with clap's usage.
pub fn assert_one_line_failure(prog: &str, args: &[&str], o: &Output, expect: &str) {
    let err = stderr(o);
    assert!(!o.status.success(), "{prog} {args:?} succeeded");
    if o.status.code() == Some(2) {
        // clap's own lines follow: the usage, or where to find it.
        assert!(
            err.trim_end().ends_with("try '--help'."),
            "{prog} {args:?}: a usage error says where the usage is: {err}"
        );
    } else {
        assert_eq!(err.trim_end().lines().count(), 1, "{prog} {args:?}: one line, got: {err}");
    }
    assert!(err.starts_with(&format!("{prog}: ")) && err.contains(expect), "{expect:?} not in: {err}");
    assert!(!err.contains("panicked"), "{err}");
}

/// No `*.partial` file (what a killed or failed write leaves) in `dir`.
pub fn assert_no_partial_files(dir: &Path) {
    let left: Vec<String> = std::fs::read_dir(dir)
        .map(|d| d.flatten().map(|e| e.file_name().to_string_lossy().into_owned()).collect())
        .unwrap_or_default();
    let partial: Vec<&String> = left.iter().filter(|n| n.ends_with(atomic::PARTIAL_SUFFIX)).collect();
    assert!(partial.is_empty(), "partial files left in {}: {partial:?}", dir.display());
}

pub fn cosine(a: &[f32], b: &[f32]) -> f64 {
    let dot: f64 = a.iter().zip(b).map(|(x, y)| *x as f64 * *y as f64).sum();
    let n = |v: &[f32]| v.iter().map(|x| (*x as f64).powi(2)).sum::<f64>().sqrt();
    dot / (n(a) * n(b))
}

/// The documented option table of `command`: the table that follows the
/// line `<!-- options: COMMAND -->` in the README or a page of `docs/`, as
/// (flag, default) pairs; the default cell without its backquotes, empty
/// where the table leaves it empty.
pub fn readme_options(command: &str) -> Vec<(String, String)> {
    let marker = format!("<!-- options: {command} -->");
    let mut pages = vec![root().join("README.md")];
    let mut docs: Vec<PathBuf> =
        std::fs::read_dir(root().join("docs")).expect("docs/").flatten().map(|e| e.path()).collect();
    docs.sort();
    pages.extend(docs.into_iter().filter(|p| p.extension().is_some_and(|e| e == "md")));
    let readme = pages
        .iter()
        .filter_map(|p| std::fs::read_to_string(p).ok())
        .find(|text| text.contains(&marker))
        .unwrap_or_else(|| panic!("neither README.md nor docs/ has {marker:?}"));
    let start = readme.find(&marker).expect("found above");
    readme[start + marker.len()..]
        .lines()
        .skip_while(|l| !l.starts_with('|'))
        .take_while(|l| l.starts_with('|'))
        .skip(2) // header and rule
        .map(|row| {
            let cells = table_cells(row);
            let flag = cells[0].trim_matches('`').split([' ', '`']).next().unwrap_or_default().to_string();
            (flag, cells.get(1).cloned().unwrap_or_default().replace('`', ""))
        })
        .collect()
}

/// A Markdown table row's cells, trimmed; `\|` inside a cell is a `|`.
pub fn table_cells(row: &str) -> Vec<String> {
    let row = row.trim().trim_start_matches('|').trim_end_matches('|');
    row.replace("\\|", "\u{0}").split('|').map(|c| c.trim().replace('\u{0}', "|")).collect()
}

/// The options `--help` lists, as (flag, default) pairs, `--help` and
/// `--version` left out; the default is what clap prints in `[default: ...]`.
pub fn help_options(help: &str) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = Vec::new();
    for line in help.lines() {
        let t = line.trim_start();
        if t.starts_with('-') {
            let flag = t.split([' ', ',']).find(|w| w.starts_with("--")).unwrap_or_default().to_string();
            out.push((flag, String::new()));
        }
        if let (Some(last), Some(i)) = (out.last_mut(), line.find("[default: ")) {
            let rest = &line[i + "[default: ".len()..];
            last.1 = rest[..rest.find(']').unwrap_or(rest.len())].to_string();
        }
    }
    out.retain(|(f, _)| f != "--help" && f != "--version");
    out
}

/// The README's table for `command` lists exactly the flags `help` does,
/// each with a default cell that starts with the default `--help` prints.
pub fn assert_readme_matches_help(command: &str, help: &str) {
    let table = readme_options(command);
    let listed = help_options(help);
    let flags = |v: &[(String, String)]| -> Vec<String> {
        let mut f: Vec<String> = v.iter().map(|(f, _)| f.clone()).collect();
        f.sort();
        f
    };
    assert_eq!(flags(&table), flags(&listed), "README's {command} table vs --help:\n{help}");
    for (flag, default) in &listed {
        let (_, cell) = table.iter().find(|(f, _)| f == flag).expect("same flags");
        if default.is_empty() {
            assert!(
                cell.is_empty() || cell == "(required)",
                "{command} {flag}: README says {cell:?}, --help gives no default"
            );
        } else {
            assert!(
                cell.starts_with(default.as_str()),
                "{command} {flag}: README says {cell:?}, --help says {default:?}"
            );
        }
    }
}

/// A small deterministic generator for the tests' mutations of files
/// (Knuth's MMIX LCG): the same flips and cuts on every run.
pub struct Lcg(pub u64);

impl Lcg {
    /// The next number below `n`.
    pub fn below(&mut self, n: usize) -> usize {
        self.0 = self.0.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        ((self.0 >> 33) % n as u64) as usize
    }
}

/// Sends `signal` (a name `kill` knows: INT, KILL, STOP, CONT) to `child`.
pub fn signal(child: &std::process::Child, signal: &str) {
    let ok = Command::new("kill").args([&format!("-{signal}"), &child.id().to_string()]).status().unwrap().success();
    assert!(ok, "kill -{signal} {}", child.id());
}

/// Waits until `ready()` says `child` is where the test wants it, then stops
/// it (SIGSTOP) and waits until it is stopped, so that what the test sends
/// next finds the run in progress however fast this machine runs it. No
/// clock decides anything: the run ending first fails the test.
#[cfg(target_os = "linux")]
pub fn stop_when(child: &mut std::process::Child, ready: impl Fn() -> bool) {
    while !ready() {
        assert!(child.try_wait().unwrap().is_none(), "the run ended before the test could stop it");
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    signal(child, "STOP");
    // The state is the third field of /proc/PID/stat, after "(command)".
    let stat = format!("/proc/{}/stat", child.id());
    let state =
        || std::fs::read_to_string(&stat).ok().and_then(|s| s.rsplit(") ").next().and_then(|r| r.chars().next()));
    while state() != Some('T') {
        assert!(child.try_wait().unwrap().is_none(), "the run ended before the test could stop it");
        std::thread::sleep(std::time::Duration::from_millis(1));
    }
}

/// The OpenVINO plugin the tests use (`scripts/test.sh` installs it outside
/// site-packages, so that only a test that names it gets it).
pub fn openvino_plugin() -> PathBuf {
    root().join(".venv/test-openvino/onnxruntime_ep_openvino/libonnxruntime_providers_openvino_plugin.so")
}

/// A real S3-compatible server (SeaweedFS, `scripts/s3-server.sh`) on
/// 127.0.0.1 for one test, stopped by its pid when dropped.
pub struct S3Server {
    dir: tempfile::TempDir,
    /// The `AWS_*` variables that reach it.
    pub env: Vec<(String, String)>,
}

impl S3Server {
    pub fn start() -> S3Server {
        let dir = tempfile::tempdir().unwrap();
        let o = Command::new(root().join("scripts/s3-server.sh"))
            .args(["start", s(dir.path())])
            .output()
            .expect("scripts/s3-server.sh runs");
        assert!(o.status.success(), "the S3 server did not start: {}", stderr(&o));
        let env = std::fs::read_to_string(dir.path().join("env"))
            .unwrap()
            .lines()
            .filter_map(|l| l.strip_prefix("export ")?.split_once('='))
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        S3Server { dir, env }
    }

    pub fn var(&self, name: &str) -> &str {
        &self.env.iter().find(|(k, _)| k == name).expect("set by s3-server.sh").1
    }

    /// `program` with this server's variables (and no others of AWS's).
    pub fn command(&self, program: impl AsRef<std::ffi::OsStr>) -> Command {
        let mut cmd = Command::new(program);
        for (k, _) in std::env::vars().filter(|(k, _)| k.starts_with("AWS_")) {
            cmd.env_remove(k);
        }
        cmd.envs(self.env.iter().map(|(k, v)| (k, v)));
        cmd
    }

    /// Runs `extract/tests/py/s3.py` (pyarrow's S3 client) against it.
    pub fn py(&self, args: &[&str]) -> Output {
        let mut cmd = python_command();
        cmd.arg(root().join("extract/tests/py/s3.py")).args(args);
        cmd.envs(self.env.iter().map(|(k, v)| (k, v)));
        cmd.output().expect("python runs")
    }

    pub fn py_json(&self, args: &[&str]) -> serde_json::Value {
        let o = self.py(args);
        let out = String::from_utf8_lossy(&o.stdout);
        assert!(o.status.success(), "s3.py {args:?} failed\nstdout: {out}\nstderr: {}", stderr(&o));
        serde_json::from_str(out.trim()).unwrap()
    }

    /// Stops it now (a test of a server that goes away).
    pub fn stop(&self) {
        let _ = Command::new(root().join("scripts/s3-server.sh")).args(["stop", s(self.dir.path())]).status();
    }
}

impl Drop for S3Server {
    fn drop(&mut self) {
        self.stop();
    }
}

/// A Kubernetes Indexed Job manifest of the repository (path from the
/// root): its `completions` and its container's command, one list item per
/// line under `command:`. Panics unless it is an Indexed Job.
pub fn indexed_job(path: &str) -> (usize, Vec<String>) {
    let text = std::fs::read_to_string(root().join(path)).unwrap();
    let value = |key: &str| -> String {
        let line =
            text.lines().find(|l| l.trim_start().starts_with(&format!("{key}:"))).unwrap_or_else(|| panic!("no {key}"));
        line.split_once(':').unwrap().1.trim().to_string()
    };
    assert_eq!(value("kind"), "Job", "{path}");
    assert_eq!(value("completionMode"), "Indexed", "{path}: JOB_COMPLETION_INDEX is set for Indexed Jobs only");
    let command = text
        .lines()
        .skip_while(|l| l.trim() != "command:")
        .skip(1)
        .take_while(|l| l.trim_start().starts_with("- "))
        .map(|l| l.trim_start()[2..].trim().trim_matches('"').to_string())
        .collect();
    (value("completions").parse().unwrap(), command)
}
