//! Real weights without PyTorch: checkpoints written by real PyTorch and
//! MindSpore (../shared/fixtures/) read in Rust and taken where a model is
//! taken, named weights through a local HTTP mirror, untrusted pickles,
//! zip bombs, and what extract does without --model.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};

use featurefile::FeatureFile;
use testkit::{assert_one_line_failure, model, py, py_json, python, root, s, shared_fixtures as fixtures, stderr};

/// extract with its cache in `cache` and downloads pointed at `base`.
fn extract_in(args: &[&str], cwd: &Path, cache: &Path, base: &str) -> Output {
    Command::new(env!("CARGO_BIN_EXE_extract"))
        .args(args)
        .current_dir(cwd)
        .env("XDG_CACHE_HOME", cache)
        .env("RESNET50_BASE_URL", base)
        .output()
        .expect("extract runs")
}

/// A base address nothing listens on: a download there fails at once.
const DEAD: &str = "http://127.0.0.1:9";

/// Every file of the project's cache under `cache` (XDG_CACHE_HOME), as
/// paths relative to it, sorted. (ONNX Runtime keeps files of its own there.)
fn files(cache: &Path) -> Vec<String> {
    let dir = &cache.join("resnet-features");
    fn walk(root: &Path, dir: &Path, out: &mut Vec<String>) {
        for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
            let p = e.path();
            if p.is_dir() {
                walk(root, &p, out);
            } else {
                out.push(p.strip_prefix(root).unwrap().to_string_lossy().into_owned());
            }
        }
    }
    let mut v = Vec::new();
    walk(dir, dir, &mut v);
    v.sort();
    v
}

fn sha256_of(path: &Path) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(std::fs::read(path).unwrap()))
}

/// A few images in two class folders.
fn images(dir: &Path) -> PathBuf {
    let root = dir.join("images");
    for (i, class) in ["a", "b", "a"].iter().enumerate() {
        std::fs::create_dir_all(root.join(class)).unwrap();
        image::RgbImage::from_fn(260 + 10 * i as u32, 240, |x, y| {
            image::Rgb([(x * 3) as u8, (y + i as u32 * 40) as u8, (x ^ y) as u8])
        })
        .save(root.join(class).join(format!("{i}.png")))
        .unwrap();
    }
    root
}

/// The checkpoint read in Rust, taken by `--model` directly: the ONNX it
/// became (the one conversion in the cache, the model the feature file
/// names by sha256) computes what the framework computed (the fixture's
/// expected outputs), extract finds every stage in it, and extract's
/// features are ONNX Runtime's for that model.
fn assert_checkpoint_gives_the_frameworks_outputs(checkpoint: &Path, fixture: &Path) -> FeatureFile {
    let work = tempfile::tempdir().unwrap();
    let cache = work.path().join("cache");
    let imgs = images(work.path());
    let out = work.path().join("f.parquet");
    let o = extract_in(&["--model", s(checkpoint), "--list-layers"], &root(), &cache, DEAD);
    assert!(o.status.success(), "{}", stderr(&o));
    let table = String::from_utf8_lossy(&o.stdout);
    let found: Vec<&str> = table
        .lines()
        .skip(3)
        .take_while(|l| !l.starts_with("avgpool:"))
        .filter_map(|l| l.split_whitespace().next())
        .collect();
    assert_eq!(found, ["stem", "layer1", "layer2", "layer3", "layer4", "avgpool"], "{table}");
    assert!(table.contains("16 residual blocks"), "{table}");

    let layers = "layer1,layer4,avgpool";
    let o = extract_in(
        &["--model", s(checkpoint), "--images", s(&imgs), "--layer", layers, "--out", s(&out)],
        &root(),
        &cache,
        DEAD,
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let converted = files(&cache);
    assert_eq!(converted.len(), 1, "one conversion cached: {converted:?}");
    let onnx = cache.join("resnet-features").join(&converted[0]);
    let f = FeatureFile::open(&out).unwrap();
    assert_eq!(f.header.model.sha256, sha256_of(&onnx), "the feature file names the converted model");
    assert_eq!(f.header.model.file, checkpoint.file_name().unwrap().to_string_lossy());

    let r = py_json("extract/tests/py/check_converted.py", &[s(&onnx), s(fixture)]);
    for name in ["layer1", "layer2", "layer3", "layer4", "avgpool", "logits"] {
        let d = r[name].as_f64().unwrap();
        assert!(d <= 1e-5, "{name}: differs from the framework's by {d:e} of its largest value: {r}");
    }
    for (layer, info) in &f.header.layers {
        let r = py_json(
            "scripts/oracles/reference-features.py",
            &[s(&out), "--model", s(&onnx), "--layer", layer, "--tensor", &info.tensor, "--min-cosine", "0.99999"],
        );
        assert!(r["below"].as_array().unwrap().is_empty(), "{layer}: {r}");
    }
    f
}

fn fixture_sha256(fixture: &Path, file: &str) -> String {
    let sums = std::fs::read_to_string(fixture.join("SHA256SUMS")).unwrap();
    sums.lines().find(|l| l.ends_with(&format!(" {file}"))).unwrap().split_whitespace().next().unwrap().to_string()
}

#[test]
#[ignore = "needs scripts/setup.sh (.venv, models/): scripts/test.sh runs it"]
fn pytorch_checkpoints_of_both_formats_are_read_in_rust() {
    let Some(fx) = fixtures("torchvision-pth") else { return };
    let mut models = Vec::new();
    for file in ["resnet50-w8.pth", "resnet50-w8-legacy.pth"] {
        let f = assert_checkpoint_gives_the_frameworks_outputs(&fx.join(file), &fx);
        // The weights record: named by content (not a known release), the source's full sha256.
        let w = f.header.weights.clone().expect("a weights record");
        assert_eq!(w.sha256, fixture_sha256(&fx, file), "{file}");
        assert!(
            w.name.starts_with(&format!("checkpoint sha256 {}", &w.sha256[..12]))
                && w.name.ends_with("(not a known release)"),
            "{w:?}"
        );
        assert_eq!(w.url, "");
        assert_eq!((f.header.preprocess.resize, f.header.preprocess.crop), (256, 224));
        models.push(f.header.model.sha256);
    }
    assert_ne!(models[0], models[1], "two files, two sources, two identities");
}

#[test]
#[ignore = "needs scripts/setup.sh (.venv, models/): scripts/test.sh runs it"]
fn mindspore_checkpoints_are_read_in_rust_with_same_padding() {
    let Some(fx) = fixtures("mindspore-ckpt") else { return };
    let f = assert_checkpoint_gives_the_frameworks_outputs(&fx.join("resnet50-w8.ckpt"), &fx);
    assert_eq!(f.header.weights.unwrap().sha256, fixture_sha256(&fx, "resnet50-w8.ckpt"));
}

#[test]
#[ignore = "needs scripts/setup.sh (.venv, models/): scripts/test.sh runs it"]
fn a_conversion_is_cached_by_the_checkpoints_sha256_and_reused() {
    let Some(fx) = fixtures("torchvision-pth") else { return };
    let work = tempfile::tempdir().unwrap();
    let cache = work.path().join("cache");
    // The same bytes under another name: the same cached model, the same identity.
    let copy = work.path().join("renamed.pth");
    std::fs::copy(fx.join("resnet50-w8.pth"), &copy).unwrap();
    let list = |m: &Path| extract_in(&["--model", s(m), "--list-layers"], &root(), &cache, DEAD);
    assert!(list(&fx.join("resnet50-w8.pth")).status.success());
    let first = files(&cache);
    assert_eq!(first.len(), 1, "{first:?}");
    assert!(first[0].starts_with(&format!("converted/{}", fixture_sha256(&fx, "resnet50-w8.pth"))), "{first:?}");
    // Put another model in that place: a run on the copy takes what the
    // cache holds, so the checkpoint was not converted again.
    let cached = cache.join("resnet-features").join(&first[0]);
    std::fs::copy(model("resnet50-narrow.onnx"), &cached).unwrap();
    let imgs = images(work.path());
    let out = work.path().join("f.parquet");
    let o = extract_in(&["--model", s(&copy), "--images", s(&imgs), "--out", s(&out)], &root(), &cache, DEAD);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(files(&cache), first);
    assert_eq!(FeatureFile::open(&out).unwrap().header.model.sha256, sha256_of(&model("resnet50-narrow.onnx")));
}

#[test]
#[ignore = "needs scripts/setup.sh (.venv, models/): scripts/test.sh runs it"]
fn checkpoints_that_would_run_code_or_explode_are_refused_and_nothing_runs() {
    let Some(fx) = fixtures("torchvision-pth") else { return };
    let dir = tempfile::tempdir().unwrap();
    let cache = dir.path().join("cache");
    let marker = dir.path().join("pwned");
    let o = py("extract/tests/py/evil_pickles.py", &[s(dir.path()), s(&marker), s(&fx.join("resnet50-w8.pth"))]);
    assert!(o.status.success(), "{}", stderr(&o));
    let imgs = images(dir.path());
    let out = dir.path().join("f.parquet");
    for (file, expect) in [("evil-zip.pth", "refused"), ("evil-legacy.pth", "refused"), ("bomb.pth", "zip bomb")] {
        let checkpoint = dir.path().join(file);
        let args = ["--model", s(&checkpoint), "--images", s(&imgs), "--out", s(&out)];
        let o = extract_in(&args, &root(), &cache, DEAD);
        assert_one_line_failure("extract", &args, &o, expect);
        if file.starts_with("evil") {
            let err = stderr(&o);
            assert!(
                err.contains("posix.system") || err.contains("os.system"),
                "the refusal names what it asked for: {err}"
            );
        }
        assert!(!marker.exists(), "{file}: the payload ran");
        assert!(!out.exists(), "{file}");
        assert!(files(&cache).is_empty(), "{file}: {:?}", files(&cache));
    }
    // Truncated: one line, nothing written.
    let full = std::fs::read(fx.join("resnet50-w8-legacy.pth")).unwrap();
    let cut = dir.path().join("cut.pth");
    std::fs::write(&cut, &full[..full.len() * 2 / 3]).unwrap();
    let args = ["--model", s(&cut), "--images", s(&imgs), "--out", s(&out)];
    assert_one_line_failure("extract", &args, &extract_in(&args, &root(), &cache, DEAD), "truncated");
    assert!(!out.exists() && files(&cache).is_empty());
}

#[test]
#[ignore = "needs scripts/setup.sh (.venv, models/): scripts/test.sh runs it"]
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
    let args = ["--model", s(&bad), "--list-layers"];
    let o = extract_in(&args, &root(), &dir.path().join("cache"), DEAD);
    assert_one_line_failure("extract", &args, &o, "missing 2 keys (layer4.2.bn3.running_var, fc.bias)");
    assert!(stderr(&o).contains("2 unexpected keys (fc.bies, layer4.2.bn3.running_vaz)"), "{}", stderr(&o));
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
#[ignore = "needs scripts/setup.sh (.venv, models/): scripts/test.sh runs it"]
fn named_weights_download_once_verified_and_are_used_offline_after() {
    let (Some(ms), Some(tv)) = (fixtures("mindspore-ckpt"), fixtures("torchvision-pth")) else { return };
    let served = tempfile::tempdir().unwrap();
    // Served under the release file names the named weights ask for.
    std::fs::copy(ms.join("resnet50-w8.ckpt"), served.path().join("resnet50_224_new.ckpt")).unwrap();
    std::fs::copy(tv.join("resnet50-w8.pth"), served.path().join("resnet50-0676ba61.pth")).unwrap();
    let server = Server::start(served.path());
    let work = tempfile::tempdir().unwrap();
    let cache = work.path().join("cache");
    let imgs = images(work.path());
    let out = work.path().join("f.parquet");
    let args = ["--model", "mindspore:resnet50_224_new", "--images", s(&imgs), "--out", s(&out)];
    let failing = |base: &str, expect: &str| {
        let o = extract_in(&args, &root(), &cache, base);
        assert_one_line_failure("extract", &args, &o, expect);
        assert!(stderr(&o).contains("give --model FILE"), "names the way out: {}", stderr(&o));
        assert!(files(&cache).is_empty(), "{base}: left {:?}", files(&cache));
        assert!(!out.exists());
    };
    failing(&server.url("/missing"), &format!("HTTP 404 from {}", server.url("/missing/resnet50_224_new.ckpt")));
    failing(&server.url("/truncated"), "broke off after");
    failing(DEAD, "cannot reach http://127.0.0.1:9/resnet50_224_new.ckpt");
    // Bytes that are not the release: torchvision's published size, then its hash prefix
    // (a file of the release's size whose sha256 is another).
    let v1 = ["--model", "torchvision:IMAGENET1K_V1", "--list-layers"];
    assert_one_line_failure(
        "extract",
        &v1,
        &extract_in(&v1, &root(), &cache, &server.url("")),
        "not the published 97.781 MiB",
    );
    assert!(files(&cache).is_empty(), "left {:?}", files(&cache));
    let v2 = ["--model", "torchvision:IMAGENET1K_V2", "--list-layers"];
    std::fs::File::create(served.path().join("resnet50-11ad3fa6.pth"))
        .unwrap()
        .set_len((97.79 * 1048576.0) as u64)
        .unwrap();
    assert_one_line_failure(
        "extract",
        &v2,
        &extract_in(&v2, &root(), &cache, &server.url("")),
        "does not start with 11ad3fa6, as the file name says",
    );
    assert!(files(&cache).is_empty(), "left {:?}", files(&cache));

    // Through a redirect, the right bytes land, are verified, cached and converted.
    let o = extract_in(&args, &root(), &cache, &server.url("/redirect"));
    assert!(o.status.success(), "{}", stderr(&o));
    let sha = fixture_sha256(&ms, "resnet50-w8.ckpt");
    assert!(
        stderr(&o).contains(&format!(
            "mindspore:resnet50_224_new: {} verified, sha256 {sha}",
            server.url("/redirect/resnet50_224_new.ckpt")
        )),
        "{}",
        stderr(&o)
    );
    let cached = files(&cache);
    assert_eq!(cached.len(), 3, "{cached:?}");
    assert_eq!(
        std::fs::read(cache.join("resnet-features/checkpoints/resnet50_224_new.ckpt")).unwrap(),
        std::fs::read(ms.join("resnet50-w8.ckpt")).unwrap()
    );
    let f = FeatureFile::open(&out).unwrap();
    let w = f.header.weights.clone().unwrap();
    assert_eq!(w.name, "MindSpore ResNet50 transfer learning tutorial, resnet50_224_new.ckpt");
    assert_eq!(
        w.url,
        "https://mindspore-website.obs.cn-north-4.myhuaweicloud.com/notebook/models/application/resnet50_224_new.ckpt",
        "the release's address, not the mirror's"
    );
    assert_eq!(w.sha256, sha);
    assert_eq!(f.header.model.file, "mindspore:resnet50_224_new");
    let first = f.header.model.sha256.clone();

    // Offline: the cache answers, nothing is downloaded, the same model.
    drop(server);
    std::fs::remove_file(&out).unwrap();
    let o = extract_in(&args, &root(), &cache, DEAD);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(!stderr(&o).contains("verified"), "{}", stderr(&o));
    assert_eq!(FeatureFile::open(&out).unwrap().header.model.sha256, first);
    assert_eq!(files(&cache), cached);
}

#[test]
#[ignore = "needs scripts/setup.sh (.venv, models/): scripts/test.sh runs it"]
fn without_model_the_imagenet_weights_are_taken_and_offline_the_way_out_is_named() {
    let Some(fx) = fixtures("torchvision-pth") else { return };
    let work = tempfile::tempdir().unwrap();
    let w = work.path();
    let cache = w.join("cache");
    std::fs::create_dir_all(w.join("data/train/cats")).unwrap();
    image::RgbImage::from_pixel(300, 260, image::Rgb([200, 40, 90])).save(w.join("data/train/cats/a.png")).unwrap();

    // Offline and uncached: one line naming the ways out, nothing written.
    let args = ["--out", "features/train.parquet"];
    let o = extract_in(&args, w, &cache, DEAD);
    assert_one_line_failure("extract", &args, &o, "torchvision:IMAGENET1K_V1: cannot reach");
    let err = stderr(&o);
    assert!(
        err.contains("give --model FILE")
            && err.contains("or use --model models/resnet50.onnx, the untrained test model"),
        "{err}"
    );
    assert!(!w.join("features/train.parquet").exists() && files(&cache).is_empty());

    // A V1 file placed in the cache by hand is checked like a download: this one is not V1.
    let by_hand = cache.join("resnet-features/checkpoints/resnet50-0676ba61.pth");
    std::fs::create_dir_all(by_hand.parent().unwrap()).unwrap();
    std::fs::copy(fx.join("resnet50-w8.pth"), &by_hand).unwrap();
    let o = extract_in(&args, w, &cache, DEAD);
    assert_one_line_failure("extract", &args, &o, "in the cache is not torchvision:IMAGENET1K_V1");

    // The untrained test model: used when named, and warned about.
    std::fs::create_dir_all(w.join("models")).unwrap();
    std::fs::copy(model("resnet50-narrow.onnx"), w.join("models/resnet50.onnx")).unwrap();
    let o = extract_in(&["--model", "models/resnet50.onnx", "--out", "features/train.parquet"], w, &cache, DEAD);
    let err = stderr(&o);
    assert!(o.status.success(), "{err}");
    let lines: Vec<&str> = err.lines().collect();
    assert_eq!(lines[0], "model: models/resnet50.onnx; resize 256, crop 224 (the default)", "{err}");
    assert!(lines[1].starts_with("extract: warning: models/resnet50.onnx is an untrained test model"), "{err}");
    assert!(lines[1].contains("--model torchvision:IMAGENET1K_V1 gets real weights"), "{err}");
}

#[test]
#[ignore = "needs scripts/setup.sh (.venv, models/): scripts/test.sh runs it"]
fn a_model_recording_its_eval_size_is_evaluated_there_unless_told_otherwise() {
    let dir = tempfile::tempdir().unwrap();
    let v2 = dir.path().join("v2.onnx");
    // The test model as the V2 weights record themselves: evaluated at 232.
    let script = r#"
import sys, onnx
m = onnx.load(sys.argv[1])
for k, v in (("weights", "torchvision ResNet50_Weights.IMAGENET1K_V2"), ("eval_resize", "232"), ("eval_crop", "224")):
    m.metadata_props.add(key=k, value=v)
onnx.save(m, sys.argv[2])
"#;
    let o = Command::new(python()).args(["-c", script, s(&model("resnet50-narrow.onnx")), s(&v2)]).output().unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    let imgs = images(dir.path());
    let out = dir.path().join("f.parquet");
    let cache = dir.path().join("cache");
    let o = extract_in(&["--model", s(&v2), "--images", s(&imgs), "--out", s(&out)], &root(), &cache, DEAD);
    let err = stderr(&o);
    assert!(o.status.success(), "{err}");
    assert!(
        err.starts_with(&format!(
            "model: {} (torchvision ResNet50_Weights.IMAGENET1K_V2); resize 232, crop 224 (the model's)\n",
            v2.display()
        )),
        "{err}"
    );
    let f = FeatureFile::open(&out).unwrap();
    assert_eq!((f.header.preprocess.resize, f.header.preprocess.crop), (232, 224));
    assert_eq!(f.header.weights.unwrap().name, "torchvision ResNet50_Weights.IMAGENET1K_V2");
    // An explicit size wins over the model's.
    let o = extract_in(
        &["--model", s(&v2), "--images", s(&imgs), "--out", s(&out), "--resize", "256", "--overwrite"],
        &root(),
        &cache,
        DEAD,
    );
    let err = stderr(&o);
    assert!(err.lines().next().unwrap().ends_with("resize 256, crop 224 (resize as given, crop the model's)"), "{err}");
    assert_eq!(FeatureFile::open(&out).unwrap().header.preprocess.resize, 256);
}
