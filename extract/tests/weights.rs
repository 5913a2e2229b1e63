//! Real weights without PyTorch: scripts/fetch-resnet50.py on checkpoints
//! written by real PyTorch and MindSpore (../shared/fixtures/), downloads
//! from a local HTTP server, untrusted pickles, and what extract does with
//! the model it is given (or not given).

use std::path::Path;
use std::process::{Child, Command, Output, Stdio};

use featurefile::testing::{model, py, py_json, python, python_command, root, s, shared_fixtures as fixtures, stderr};

fn fetch(args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut cmd = python_command();
    cmd.arg(root().join("scripts/fetch-resnet50.py")).args(args);
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().expect("python runs")
}

fn extract(args: &[&str], cwd: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_extract")).args(args).current_dir(cwd).output().expect("extract runs")
}

/// Files in `dir` (names), sorted.
fn files(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .map(|d| d.flatten().map(|e| e.file_name().to_string_lossy().into_owned()).collect())
        .unwrap_or_default();
    v.sort();
    v
}

/// The converted model matches the framework's own outputs, and extract
/// finds every stage in it.
fn assert_matches_fixture(onnx: &Path, fixture: &Path) {
    let r = py_json("extract/tests/py/check_converted.py", &[s(onnx), s(fixture)]);
    for name in ["layer1", "layer2", "layer3", "layer4", "avgpool", "logits"] {
        let d = r[name].as_f64().unwrap();
        assert!(d <= 1e-4, "{name}: differs by {d:e} of its largest value: {r}");
    }
    let o = extract(&["--model", s(onnx), "--list-layers"], &root());
    assert!(o.status.success(), "{}", stderr(&o));
    let table = String::from_utf8_lossy(&o.stdout);
    let found: Vec<&str> = table.lines().skip(3).filter_map(|l| l.split_whitespace().next()).collect();
    assert_eq!(found, ["stem", "layer1", "layer2", "layer3", "layer4", "avgpool"], "{table}");
    assert!(table.contains("16 residual blocks"), "{table}");
}

#[test]
fn pytorch_checkpoints_convert_to_what_pytorch_computes() {
    let Some(fx) = fixtures("torchvision-pth") else { return };
    let dir = tempfile::tempdir().unwrap();
    for file in ["resnet50-w8.pth", "resnet50-w8-legacy.pth"] {
        let out = dir.path().join(format!("{file}.onnx"));
        let o = fetch(&["--from", s(&fx.join(file)), "--out", s(&out)], &[]);
        assert!(o.status.success(), "{file}: {}", stderr(&o));
        assert!(stderr(&o).contains("not a known release"), "{}", stderr(&o));
        assert_matches_fixture(&out, &fx);
    }
    // The recorded provenance: the source file's full sha256 and eval sizes.
    let meta = metadata(&dir.path().join("resnet50-w8.pth.onnx"));
    let sums = std::fs::read_to_string(fx.join("SHA256SUMS")).unwrap();
    let sha = sums.lines().find(|l| l.ends_with(" resnet50-w8.pth")).unwrap().split_whitespace().next().unwrap();
    assert_eq!(meta["source_sha256"], sha);
    assert_eq!(meta["eval_resize"], "256");
    assert_eq!(meta["eval_crop"], "224");
}

#[test]
fn mindspore_checkpoints_convert_to_what_mindspore_computes() {
    let Some(fx) = fixtures("mindspore-ckpt") else { return };
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("ms.onnx");
    let o = fetch(&["--from", s(&fx.join("resnet50-w8.ckpt")), "--out", s(&out)], &[]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_matches_fixture(&out, &fx);
}

fn metadata(onnx: &Path) -> serde_json::Value {
    let o = Command::new(python())
        .args([
            "-c",
            "import json, sys, onnx; m = onnx.load(sys.argv[1]); print(json.dumps({p.key: p.value for p in m.metadata_props}))",
            s(onnx),
        ])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    serde_json::from_slice(&o.stdout).unwrap()
}

#[test]
fn a_checkpoint_that_would_run_code_is_refused_and_runs_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let marker = dir.path().join("pwned");
    let o = py("extract/tests/py/evil_pickles.py", &[s(dir.path()), s(&marker)]);
    assert!(o.status.success(), "{}", stderr(&o));
    for evil in ["evil-zip.pth", "evil-legacy.pth"] {
        let out = dir.path().join("evil.onnx");
        let o = fetch(&["--from", s(&dir.path().join(evil)), "--out", s(&out)], &[]);
        let err = stderr(&o);
        assert!(!o.status.success(), "{evil} was accepted");
        assert_eq!(err.lines().filter(|l| l.starts_with("fetch-resnet50: ") && l.contains("refused")).count(), 1, "{evil}: {err}");
        assert!(err.contains("posix.system") || err.contains("os.system"), "{evil}: the refusal names what it asked for: {err}");
        assert!(!err.contains("Traceback"), "{err}");
        assert!(!marker.exists(), "{evil}: the payload ran");
        assert!(!out.exists());
    }
}

#[test]
fn a_state_dict_that_is_not_a_resnet50_is_named_wrong() {
    let Some(fx) = fixtures("torchvision-pth") else { return };
    let dir = tempfile::tempdir().unwrap();
    // The fixture with one key renamed and one dropped, saved as the zip format torch writes.
    let bad = dir.path().join("bad.pth");
    let script = r#"
import sys, zipfile
src, dst = sys.argv[1], sys.argv[2]
with zipfile.ZipFile(src) as z, zipfile.ZipFile(dst, "w") as out:
    for n in z.namelist():
        data = z.read(n)
        if n.endswith("data.pkl"):
            data = data.replace(b"fc.bias", b"fc.bies").replace(b"layer4.2.bn3.running_var", b"layer4.2.bn3.running_vaz")
        out.writestr(n, data)
"#;
    let o = Command::new(python()).args(["-c", script, s(&fx.join("resnet50-w8.pth")), s(&bad)]).output().unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    let out = dir.path().join("bad.onnx");
    let o = fetch(&["--from", s(&bad), "--out", s(&out)], &[]);
    let err = stderr(&o);
    assert!(!o.status.success());
    assert!(err.contains("missing 2 keys (layer4.2.bn3.running_var, fc.bias)"), "{err}");
    assert!(err.contains("2 unexpected keys (fc.bies, layer4.2.bn3.running_vaz)"), "{err}");
    assert!(!out.exists());
}

/// A local server on 127.0.0.1 over `dir`; killed (by its pid) on drop.
struct Server {
    child: Child,
    port: u16,
}

impl Server {
    fn start(dir: &Path) -> Server {
        let mut child = Command::new(python())
            .arg(root().join("extract/tests/py/serve.py"))
            .arg(dir)
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let mut line = String::new();
        std::io::BufRead::read_line(&mut std::io::BufReader::new(child.stdout.as_mut().unwrap()), &mut line).unwrap();
        let port = line.trim().parse().unwrap_or_else(|_| panic!("serve.py said {line:?}"));
        Server { child, port }
    }

    fn url(&self, prefix: &str) -> String {
        format!("http://127.0.0.1:{}{prefix}", self.port)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn downloads_land_whole_or_not_at_all() {
    let (Some(ms), Some(tv)) = (fixtures("mindspore-ckpt"), fixtures("torchvision-pth")) else { return };
    let served = tempfile::tempdir().unwrap();
    // Served under the release file names fetch-resnet50.py asks for.
    std::fs::copy(ms.join("resnet50-w8.ckpt"), served.path().join("resnet50_224_new.ckpt")).unwrap();
    std::fs::copy(tv.join("resnet50-w8.pth"), served.path().join("resnet50-0676ba61.pth")).unwrap();
    let server = Server::start(served.path());

    let work = tempfile::tempdir().unwrap();
    let models = work.path().join("models");
    let out = models.join("resnet50-imagenet.onnx");
    let run = |weights: &str, base: &str| fetch(&["--weights", weights, "--out", s(&out)], &[("RESNET50_BASE_URL", base)]);

    // 404: the status and the address, and how to finish by hand.
    let o = run("mindspore", &server.url("/missing"));
    let err = stderr(&o);
    assert!(!o.status.success());
    assert!(err.contains("HTTP 404") && err.contains(&server.url("/missing/resnet50_224_new.ckpt")), "{err}");
    assert!(err.contains("--from FILE"), "{err}");
    assert!(files(&models).is_empty(), "left {:?}", files(&models));

    // A body cut short of its Content-Length.
    let o = run("mindspore", &server.url("/truncated"));
    let err = stderr(&o);
    assert!(!o.status.success());
    assert!(err.contains("truncated") || err.contains("broke off"), "{err}");
    assert!(files(&models).is_empty(), "left {:?}", files(&models));

    // A file whose sha256 is not the release's.
    let o = run("V1", &server.url(""));
    let err = stderr(&o);
    assert!(!o.status.success());
    assert!(err.contains("does not start with 0676ba61"), "{err}");
    assert!(files(&models).is_empty(), "left {:?}", files(&models));

    // Through a redirect, the good file lands, converts, and is kept.
    let o = run("mindspore", &server.url("/redirect"));
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(files(&models), ["resnet50-imagenet.onnx", "resnet50_224_new.ckpt"]);
    let stdout = String::from_utf8_lossy(&o.stdout);
    assert!(stdout.starts_with(&format!("wrote {}", out.display())), "{stdout}");
    let meta = metadata(&out);
    assert_eq!(meta["source_url"], server.url("/redirect/resnet50_224_new.ckpt"));
    assert!(meta["weights"].as_str().unwrap().contains("MindSpore"), "{meta}");
    assert_matches_fixture(&out, &ms);

    // A second run needs no network: the kept checkpoint is used.
    drop(server);
    std::fs::remove_file(&out).unwrap();
    let o = run("mindspore", "http://127.0.0.1:9/nowhere");
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stderr(&o).contains("already here"), "{}", stderr(&o));
}

#[test]
fn extract_takes_the_real_weights_when_there_and_warns_on_the_test_model() {
    let Some(fx) = fixtures("torchvision-pth") else { return };
    let work = tempfile::tempdir().unwrap();
    let w = work.path();
    std::fs::create_dir_all(w.join("models")).unwrap();
    std::fs::copy(model("resnet50-narrow.onnx"), w.join("models/resnet50.onnx")).unwrap();
    let images = w.join("data/train/cats");
    std::fs::create_dir_all(&images).unwrap();
    image::RgbImage::from_pixel(300, 260, image::Rgb([200, 40, 90])).save(images.join("a.png")).unwrap();

    // Only the test model: it is used, named first, and warned about.
    let o = extract(&["--out", "features/train.parquet"], w);
    let err = stderr(&o);
    assert!(o.status.success(), "{err}");
    let lines: Vec<&str> = err.lines().collect();
    assert_eq!(lines[0], "model: models/resnet50.onnx; resize 256, crop 224 (the default)", "{err}");
    assert!(lines[1].starts_with("extract: warning: models/resnet50.onnx is an untrained test model"), "{err}");
    assert!(lines[1].contains("scripts/fetch-resnet50.py"), "{err}");

    // Real weights in models/ (here the PyTorch fixture, recorded as evaluated at 232): they are taken.
    let real = w.join("models/resnet50-imagenet.onnx");
    let o = fetch(&["--from", s(&fx.join("resnet50-w8.pth")), "--out", s(&real), "--resize", "232"], &[]);
    assert!(o.status.success(), "{}", stderr(&o));
    let o = extract(&["--out", "features/train.parquet"], w);
    let err = stderr(&o);
    assert!(o.status.success(), "{err}");
    assert!(err.starts_with("model: models/resnet50-imagenet.onnx (resnet50-w8.pth (not a known release)); resize 232, crop 224 (the model's)\n"), "{err}");
    assert!(!err.contains("warning"), "{err}");
    let f = featurefile::FeatureFile::open(&w.join("features/train.parquet")).unwrap();
    assert_eq!((f.header.preprocess.resize, f.header.preprocess.crop), (232, 224));
    assert_eq!(f.header.model.file, "resnet50-imagenet.onnx");

    // An explicit size wins over the model's.
    let o = extract(&["--out", "features/train.parquet", "--resize", "256"], w);
    let err = stderr(&o);
    assert!(err.lines().next().unwrap().ends_with("resize 256, crop 224 (resize as given, crop the model's)"), "{err}");
    let f = featurefile::FeatureFile::open(&w.join("features/train.parquet")).unwrap();
    assert_eq!(f.header.preprocess.resize, 256);
}

#[test]
fn the_script_runs_as_users_type_it() {
    // `scripts/fetch-resnet50.py ...` starts whatever python3 is on PATH;
    // the script moves itself into the project's .venv, which has onnx.
    let Some(fx) = fixtures("torchvision-pth") else { return };
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("m.onnx");
    let o = Command::new(root().join("scripts/fetch-resnet50.py"))
        .args(["--from", s(&fx.join("resnet50-w8.pth")), "--out", s(&out)])
        .env_remove("PYTHONPATH")
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(out.exists());
}
