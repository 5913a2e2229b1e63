//! End-to-end tests of the `extract` binary against the field's reference
//! (PIL + onnxruntime's Python API from the project's .venv) and the
//! feature-file contract as pyarrow reads it.
//!
//! They need what `scripts/setup.sh` installs: the .venv and the generated
//! models in models/ (`scripts/test.sh` runs it first).

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;
use testkit::{
    assert_no_partial_files, assert_one_line_failure, cosine, model, py, py_json, python, root, s, shared_data, stderr,
};

fn extract(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_extract")).args(args).output().expect("extract runs")
}

fn photos() -> Option<PathBuf> {
    shared_data("imagenet-samples")
}

/// The generated image set (every colour mode and format, a corrupt file, ...).
fn generated(dir: &Path) -> PathBuf {
    let images = dir.join("images");
    let o = py("extract/tests/py/make_images.py", &[images.to_str().unwrap()]);
    assert!(o.status.success(), "{}", stderr(&o));
    images
}

fn run_ok(args: &[&str]) -> String {
    let o = extract(args);
    assert!(o.status.success(), "extract {args:?} failed: {}", stderr(&o));
    stderr(&o)
}

#[test]
#[ignore = "needs scripts/setup.sh (.venv, models/): scripts/test.sh runs it"]
fn finds_the_layers_of_a_torchvision_export() {
    let o = extract(&["--model", s(&model("resnet50.onnx")), "--list-layers"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let table = String::from_utf8_lossy(&o.stdout);
    let rows: Vec<Vec<&str>> = table
        .lines()
        .skip(3)
        .take_while(|l| !l.starts_with("avgpool:"))
        .map(|l| l.split_whitespace().collect())
        .collect();
    let got: Vec<(&str, &str, &str, &str)> = rows.iter().map(|r| (r[0], r[1], r[2], r[4])).collect();
    // Shapes alone would pass with a stage's first block in place of its
    // last; the torchvision names say which block each layer is.
    assert_eq!(
        got,
        vec![
            ("stem", "Nx64x56x56", "64", "/maxpool/MaxPool_output_0"),
            ("layer1", "Nx256x56x56", "256", "/layer1.2/relu_2/Relu_output_0"),
            ("layer2", "Nx512x28x28", "512", "/layer2.3/relu_2/Relu_output_0"),
            ("layer3", "Nx1024x14x14", "1024", "/layer3.5/relu_2/Relu_output_0"),
            ("layer4", "Nx2048x7x7", "2048", "/layer4.2/relu_2/Relu_output_0"),
            ("avgpool", "Nx2048", "2048", "/flatten/Flatten_output_0"),
        ]
    );
    assert!(table.contains("16 residual blocks"), "{table}");
}

#[test]
#[ignore = "needs scripts/setup.sh (.venv, models/): scripts/test.sh runs it"]
fn any_resnet50_export_gives_the_same_features() {
    // The same seeded network under other node names, with a fixed batch of 1,
    // batch norm folded into the convolutions and a Reshape for Flatten.
    let dir = tempfile::tempdir().unwrap();
    let foreign = dir.path().join("foreign.onnx");
    let o = py("scripts/make-test-model.py", &["--variant", "foreign", "--width", "8", "--out", s(&foreign)]);
    assert!(o.status.success(), "{}", stderr(&o));
    let listed = extract(&["--model", s(&foreign), "--list-layers"]);
    let table = String::from_utf8_lossy(&listed.stdout);
    assert!(table.contains("input \"data\": 1x3x224x224"), "{table}");
    for (layer, shape) in [("stem", "1x8x56x56"), ("layer3", "1x128x14x14"), ("avgpool", "1x256")] {
        assert!(table.lines().any(|l| l.starts_with(layer) && l.contains(shape)), "{layer} {shape} in\n{table}");
    }

    let images = generated(dir.path());
    let a = dir.path().join("a.parquet");
    let b = dir.path().join("b.parquet");
    let narrow = model("resnet50-narrow.onnx");
    run_ok(&["--model", s(&narrow), "--images", s(&images), "--layer", "layer2,avgpool", "--out", s(&a)]);
    run_ok(&[
        "--model",
        s(&foreign),
        "--images",
        s(&images),
        "--layer",
        "layer2,avgpool",
        "--out",
        s(&b),
        "--batch",
        "8",
    ]);
    let fa = featurefile::FeatureFile::open(&a).unwrap();
    let fb = featurefile::FeatureFile::open(&b).unwrap();
    assert_eq!(fa.paths, fb.paths);
    for layer in ["layer2", "avgpool"] {
        let (ca, cb) = (fa.column(layer).unwrap(), fb.column(layer).unwrap());
        for i in 0..fa.len() {
            let cos = cosine(ca.row(i), cb.row(i));
            assert!(cos > 0.9999, "{layer} of {}: cosine {cos}", fa.paths[i]);
        }
    }
}

/// PIL + onnxruntime on the same model, the layer found by the reference
/// itself (not read from the file) and pooled as `pool` says: every row at
/// cosine >= 0.999.
fn assert_parity(features: &Path, model: &Path, layer: &str, pool: &str) -> Value {
    let o = py(
        "scripts/oracles/reference-features.py",
        &[s(features), "--model", s(model), "--layer", layer, "--pool", pool],
    );
    let report: Value = serde_json::from_slice(&o.stdout).unwrap_or_else(|_| panic!("{}", stderr(&o)));
    assert!(o.status.success(), "parity below 0.999 on {layer}: {report}");
    assert!(report["min_cosine"].as_f64().unwrap() >= 0.999, "{report}");
    assert_eq!(report["tensor"], report["recorded_tensor"], "{layer} is another tensor than the reference finds");
    report
}

#[test]
#[ignore = "needs scripts/setup.sh (.venv, models/): scripts/test.sh runs it"]
fn matches_pil_and_onnxruntime_on_generated_images() {
    let dir = tempfile::tempdir().unwrap();
    let images = generated(dir.path());
    let out = dir.path().join("gen.parquet");
    for m in ["resnet50-narrow.onnx", "resnet50.onnx"] {
        run_ok(&[
            "--model",
            s(&model(m)),
            "--images",
            s(&images),
            "--layer",
            "stem,layer2,avgpool",
            "--out",
            s(&out),
            "--overwrite",
        ]);
        for (layer, pool) in [("stem", "avg"), ("layer2", "avg"), ("avgpool", "none")] {
            let report = assert_parity(&out, &model(m), layer, pool);
            // Lossless files decode to the same pixels in PIL and here, and
            // the resize is a port of PIL's: the model input is bit-identical.
            for (path, v) in report["images"].as_object().unwrap() {
                if !path.ends_with(".jpg") {
                    assert_eq!(v[1].as_f64().unwrap(), 0.0, "{m} {layer} {path} differs from PIL: {v}");
                }
            }
        }
    }
}

#[test]
#[ignore = "needs scripts/setup.sh (.venv, models/): scripts/test.sh runs it"]
fn matches_pil_and_onnxruntime_on_real_photos() {
    let Some(photos) = photos() else {
        eprintln!("shared photos not present; skipped");
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("photos.parquet");
    let full = model("resnet50.onnx");
    run_ok(&["--model", s(&full), "--images", s(&photos), "--layer", "layer3,avgpool", "--out", s(&out)]);
    let report = assert_parity(&out, &full, "avgpool", "none");
    assert_eq!(report["rows"], 100);
    assert_parity(&out, &full, "layer3", "avg");
}

#[test]
#[ignore = "needs scripts/setup.sh (.venv, models/): scripts/test.sh runs it"]
fn every_pooling_and_the_v2_resize_match_the_reference() {
    let dir = tempfile::tempdir().unwrap();
    let images = generated(dir.path());
    let narrow = model("resnet50-narrow.onnx");
    for (pool, resize) in [("max", "256"), ("avgmax", "256"), ("avg", "232")] {
        let out = dir.path().join(format!("{pool}-{resize}.parquet"));
        run_ok(&[
            "--model",
            s(&narrow),
            "--images",
            s(&images),
            "--layer",
            "layer1,layer3",
            "--pool",
            pool,
            "--resize",
            resize,
            "--out",
            s(&out),
        ]);
        for layer in ["layer1", "layer3"] {
            let report = assert_parity(&out, &narrow, layer, pool);
            assert_eq!(report["rows"], 15);
        }
    }
}

/// JPEG decoders round differently: the most grey levels one value may
/// differ by from PIL's (4 measured on the generated JPEGs).
const JPEG_LEVELS: f32 = 5.0;

/// The preprocessed model input itself against PIL's, image by image: on
/// lossless files identical, on JPEGs within the decoders' rounding. Here a
/// missing EXIF turn, a wrong CMYK or greyscale conversion cannot hide
/// behind a network that averages it away.
#[test]
#[ignore = "needs scripts/setup.sh (.venv, models/): scripts/test.sh runs it"]
fn the_model_input_is_pils_for_every_kind_of_image() {
    use extract::preprocess::{preprocess_file, Config};
    let dir = tempfile::tempdir().unwrap();
    let images = generated(dir.path());
    let mut files: Vec<PathBuf> = Vec::new();
    let mut stack = vec![images.clone()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap().flatten() {
            let p = e.path();
            let name = e.file_name().to_string_lossy().into_owned();
            if p.is_dir() {
                stack.push(p);
            } else if extract::dataset::is_image(&p) && !name.starts_with('.') && name != "broken.jpg" {
                files.push(p);
            }
        }
    }
    files.sort();
    for resize in [256u32, 232] {
        let refs = dir.path().join(format!("ref-{resize}"));
        let mut args = vec![s(&refs).to_string(), "--resize".into(), resize.to_string()];
        args.extend(files.iter().map(|p| s(p).to_string()));
        let o = py("extract/tests/py/reference_tensors.py", &args.iter().map(String::as_str).collect::<Vec<_>>());
        assert!(o.status.success(), "{}", stderr(&o));
        let cfg = Config { resize, ..Default::default() };
        let read = |p: PathBuf| -> Vec<f32> {
            std::fs::read(p).unwrap().chunks_exact(4).map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])).collect()
        };
        let mean_abs =
            |a: &[f32], b: &[f32]| a.iter().zip(b).map(|(x, y)| (x - y).abs() as f64).sum::<f64>() / a.len() as f64;
        let mut turned = 0;
        for (i, f) in files.iter().enumerate() {
            let mut ours = vec![0f32; cfg.values_per_image()];
            preprocess_file(&images::Location::File(f.to_owned()), &cfg, &mut ours).unwrap();
            let theirs = read(refs.join(format!("{i}.f32")));
            let diff = mean_abs(&ours, &theirs);
            let worst = ours.iter().zip(&theirs).map(|(x, y)| (x - y).abs()).fold(0f32, f32::max);
            let name = s(f.strip_prefix(&images).unwrap()).to_string();
            eprintln!("{name} at resize {resize}: mean difference {diff:.5}, largest {worst:.4}");
            if name.ends_with(".jpg") {
                // One grey level is 1 / 255 / 0.225 = 0.017 here; JPEG
                // decoders differ by about a level on some pixels: on
                // average under 0.01, and nowhere by more than JPEG_LEVELS.
                assert!(diff < 0.01, "{name} at resize {resize}: mean difference {diff} from PIL's input");
                assert!(
                    worst <= JPEG_LEVELS * 0.0175,
                    "{name} at resize {resize}: a value differs by {worst} from PIL's input"
                );
            } else {
                assert_eq!(diff, 0.0, "{name} at resize {resize}: not PIL's input");
            }
            let unturned = refs.join(format!("{i}.unturned.f32"));
            if unturned.exists() {
                let wrong = mean_abs(&ours, &read(unturned));
                assert!(wrong > 30.0 * 0.01, "{name}: ignoring the EXIF turn would differ by only {wrong}");
                turned += 1;
            }
        }
        assert_eq!(turned, 1, "the generated set has one EXIF-turned JPEG");
        assert!(files.iter().any(|f| s(f).ends_with("cmyk.jpg")) && files.iter().any(|f| s(f).ends_with("grey.jpg")));
    }
}

#[test]
#[ignore = "needs scripts/setup.sh (.venv, models/): scripts/test.sh runs it"]
fn the_test_model_is_smooth_and_its_features_are_varied() {
    let Some(photos) = photos() else {
        eprintln!("shared photos not present; skipped");
        return;
    };
    let mut files: Vec<PathBuf> = std::fs::read_dir(&photos)
        .unwrap()
        .flat_map(|d| std::fs::read_dir(d.unwrap().path()).unwrap())
        .map(|f| f.unwrap().path())
        .collect();
    files.sort();
    let picked: Vec<&str> = files.iter().step_by(5).map(|p| s(p)).collect();
    let full = model("resnet50.onnx");
    let mut args = vec![s(&full)];
    args.extend(&picked);
    let h = py_json("extract/tests/py/model_health.py", &args);
    assert_eq!(h["blocks"], 16, "{h}");
    assert!(h["noise_min_cosine"].as_f64().unwrap() >= 0.9995, "+-1 grey level moves features: {h}");
    assert!(h["pairwise_mean_cosine"].as_f64().unwrap() < 0.95, "photos too alike for a 0.999 bar: {h}");
    assert_eq!(h["blocks_finite"], true, "{h}");
    assert!(h["blocks_min_std"].as_f64().unwrap() > 0.01, "a block output is constant: {h}");
}

#[test]
#[ignore = "needs scripts/setup.sh (.venv, models/): scripts/test.sh runs it"]
fn writes_the_contract_as_pyarrow_reads_it() {
    let dir = tempfile::tempdir().unwrap();
    let images = generated(dir.path());
    let out = dir.path().join("f.parquet");
    let err = run_ok(&[
        "--model",
        s(&model("resnet50-narrow.onnx")),
        "--images",
        s(&images),
        "--layer",
        "layer3,avgpool",
        "--pool",
        "avgmax",
        "--batch",
        "4",
        "--out",
        s(&out),
    ]);
    // One summary line at the end; the corrupt file named on the way.
    assert!(err.contains("skipped alpha/broken.jpg: "), "{err}");
    let last = err.lines().last().unwrap();
    assert!(
        last.starts_with("wrote 15 images to ") && last.contains("(1 skipped)") && last.contains("images/s on cpu"),
        "{last}"
    );

    let c = py_json("extract/tests/py/check_contract.py", &[s(&out), s(&model("resnet50-narrow.onnx"))]);
    assert_eq!(
        c["schema"],
        serde_json::json!({
            "path": "string not null",
            "label": "int32",
            "label_name": "string",
            "layer3": "fixed_size_list<item: float not null>[256] not null",
            "avgpool": "fixed_size_list<item: float not null>[256] not null",
        })
    );
    assert_eq!(c["format"], "1");
    assert_eq!(c["classes"], serde_json::json!(["alpha", "beta"]));
    assert_eq!(c["layers"]["layer3"]["pool"], "avgmax");
    assert_eq!(c["layers"]["avgpool"]["pool"], "none");
    assert_eq!(
        c["preprocess"],
        serde_json::json!({
            "resize": 256, "crop": 224, "mean": [0.485, 0.456, 0.406], "std": [0.229, 0.224, 0.225],
            "filter": "pil-bilinear-antialias", "decode": "scaled"
        })
    );
    assert_eq!(c["model"]["file"], "resnet50-narrow.onnx");
    assert_eq!(c["model"]["sha256"], c["model_file_sha256"], "the recorded hash is the model file's");
    assert_eq!(c["root"], s(&images.canonicalize().unwrap()));
    assert_eq!(c["skipped"][0]["path"], "alpha/broken.jpg");
    assert_eq!(c["sorted"], true);
    assert_eq!(c["rows"], 15);
    assert_eq!(c["row_groups"], 1);
    // Labels index the sorted class folders; the root image has none.
    assert_eq!(c["labels"]["alpha/nested/deeper/wide.webp"], serde_json::json!([0, "alpha"]));
    assert_eq!(c["labels"]["beta/rotated.jpg"], serde_json::json!([1, "beta"]));
    assert_eq!(c["labels"]["loose.png"], serde_json::json!([null, null]));
    assert_eq!(c["polars_rows"], 15);
    assert_eq!(c["duckdb_rows"], 15);
    assert_eq!(c["pandas_rows"], 15);
}

#[test]
#[ignore = "needs scripts/setup.sh (.venv, models/): scripts/test.sh runs it"]
fn streams_many_rows_in_row_groups() {
    // More images than one row group holds, each written once, in order.
    let dir = tempfile::tempdir().unwrap();
    let images = dir.path().join("many");
    let o = Command::new(python())
        .args(["-c", "import sys, os\nfrom PIL import Image\nfor i in range(1100):\n    d=os.path.join(sys.argv[1], 'c%d' % (i % 3)); os.makedirs(d, exist_ok=True)\n    Image.new('RGB', (24 + i % 7, 16), (i % 256, (i * 7) % 256, 90)).save(os.path.join(d, '%04d.png' % i))", s(&images)])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    let out = dir.path().join("many.parquet");
    run_ok(&[
        "--model",
        s(&model("resnet50-narrow.onnx")),
        "--images",
        s(&images),
        "--layer",
        "stem",
        "--out",
        s(&out),
    ]);
    let c = py_json("extract/tests/py/check_contract.py", &[s(&out)]);
    assert_eq!(c["rows"], 1100);
    assert_eq!(c["row_groups"], 2);
    assert_eq!(c["sorted"], true);
}

/// `dir/imgs/<class>/a.png`, one small image; returns `dir/imgs`.
fn one_image_folder(dir: &Path, class: &str) -> PathBuf {
    let images = dir.join("imgs").join(class);
    std::fs::create_dir_all(&images).unwrap();
    image::RgbImage::from_pixel(40, 30, image::Rgb([1, 2, 3])).save(images.join("a.png")).unwrap();
    dir.join("imgs")
}

/// One line, non-zero exit, and nothing at `out` nor beside it.
fn assert_fails(args: &[&str], out: &Path, expect: &str) {
    let o = extract(args);
    assert_one_line_failure("extract", args, &o, expect);
    assert!(!out.exists(), "{} was written", out.display());
    assert_no_partial_files(out.parent().unwrap());
}

#[test]
#[ignore = "needs scripts/setup.sh (.venv, models/): scripts/test.sh runs it"]
fn bad_input_is_one_clear_line_and_no_file() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let out = d.join("out/f.parquet");
    std::fs::create_dir_all(out.parent().unwrap()).unwrap();
    let narrow = model("resnet50-narrow.onnx");
    let imgs = one_image_folder(d, "cats");
    let (o, m, i) = (s(&out), s(&narrow), s(&imgs));

    assert_fails(&["--model", m, "--images", s(&d.join("nope")), "--out", o], &out, "image folder");
    let empty = d.join("empty/cats");
    std::fs::create_dir_all(&empty).unwrap();
    std::fs::write(empty.join("notes.txt"), "x").unwrap();
    assert_fails(&["--model", m, "--images", s(&d.join("empty")), "--out", o], &out, "no images found under");
    assert_fails(&["--model", s(&d.join("missing.onnx")), "--images", i, "--out", o], &out, "model file");
    let not_onnx = d.join("model.onnx");
    std::fs::write(&not_onnx, "this is not a protobuf").unwrap();
    assert_fails(&["--model", s(&not_onnx), "--images", i, "--out", o], &out, "not an ONNX model");
    assert_fails(&["--model", m, "--images", i, "--layer", "layer9", "--out", o], &out, "unknown layer \"layer9\"");
    assert_fails(
        &["--model", m, "--images", i, "--crop", "300", "--out", o],
        &out,
        "--crop 300 is larger than --resize 256",
    );
    assert_fails(&["--model", m, "--images", i, "--device", "tpu", "--out", o], &out, "is not a device");

    // Every image unreadable: nothing to write.
    let bad = d.join("bad/cats");
    std::fs::create_dir_all(&bad).unwrap();
    std::fs::write(bad.join("a.jpg"), "not a jpeg").unwrap();
    let o2 = extract(&["--model", m, "--images", s(&d.join("bad")), "--out", o]);
    assert!(!o2.status.success());
    assert!(stderr(&o2).contains("none of the 1 images could be read"), "{}", stderr(&o2));
    assert!(!out.exists());
}

#[test]
#[ignore = "needs scripts/setup.sh (.venv, models/): scripts/test.sh runs it"]
fn cuda_that_cannot_start_is_an_error_not_a_fallback() {
    // This machine's ONNX Runtime is the CPU build (or there is no GPU).
    let dir = tempfile::tempdir().unwrap();
    let imgs = one_image_folder(dir.path(), "x");
    let out = dir.path().join("f.parquet");
    let m = model("resnet50-narrow.onnx");
    let o = extract(&["--model", s(&m), "--images", s(&imgs), "--device", "cuda", "--out", s(&out)]);
    if o.status.success() {
        // A machine with a working CUDA provider: it must say so.
        assert!(stderr(&o).contains("device: cuda:0"), "{}", stderr(&o));
        return;
    }
    assert!(stderr(&o).contains("--device cuda:0: the CUDA execution provider could not start"), "{}", stderr(&o));
    assert!(!out.exists());
    // auto falls back and says which it used.
    let err = run_ok(&["--model", s(&m), "--images", s(&imgs), "--out", s(&out)]);
    assert!(err.contains("device: cpu (auto:"), "{err}");
}

#[test]
#[ignore = "needs scripts/setup.sh (.venv, models/): scripts/test.sh runs it"]
fn missing_onnx_runtime_says_how_to_install_it() {
    let dir = tempfile::tempdir().unwrap();
    let imgs = one_image_folder(dir.path(), "x");
    let out = dir.path().join("f.parquet");
    let o = Command::new(env!("CARGO_BIN_EXE_extract"))
        .env("ORT_DYLIB_PATH", dir.path().join("nowhere/libonnxruntime.so"))
        .args(["--model", s(&model("resnet50-narrow.onnx")), "--images", s(&imgs), "--out", s(&out)])
        .output()
        .unwrap();
    assert!(!o.status.success());
    let err = stderr(&o);
    assert!(err.contains("ONNX Runtime not found") && err.contains("scripts/setup.sh"), "{err}");
    assert!(!out.exists());
}

/// A run long enough to be stopped while it writes: 400 images through the
/// full model, 4 at a time, into `dir/out/f.parquet`. Returns (images, out).
fn a_long_run(dir: &Path) -> (PathBuf, PathBuf) {
    let images = dir.join("imgs/x");
    std::fs::create_dir_all(&images).unwrap();
    for i in 0..400 {
        image::RgbImage::from_pixel(300, 200, image::Rgb([i as u8, 2, 3]))
            .save(images.join(format!("{i:03}.png")))
            .unwrap();
    }
    (dir.join("imgs"), dir.join("out/f.parquet"))
}

#[test]
#[ignore = "needs scripts/setup.sh (.venv, models/): scripts/test.sh runs it"]
fn an_interrupted_run_leaves_no_file() {
    let dir = tempfile::tempdir().unwrap();
    let (imgs, out) = a_long_run(dir.path());
    let full = model("resnet50.onnx");
    let args = ["--model", s(&full), "--images", s(&imgs), "--batch", "4", "--out", s(&out)];
    let writing = || out.parent().unwrap().read_dir().map(|mut d| d.next().is_some()).unwrap_or(false);
    for signal in ["INT", "KILL"] {
        let mut child = Command::new(env!("CARGO_BIN_EXE_extract"))
            .args(args)
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        // Held still once it is writing (its partial file exists): the
        // signal reaches a run in progress.
        testkit::stop_when(&mut child, writing);
        testkit::signal(&child, signal);
        testkit::signal(&child, "CONT");
        let o = child.wait_with_output().unwrap();
        assert!(!o.status.success(), "{signal}: still succeeded");
        assert!(!out.exists(), "{signal}: {} was written", out.display());
        if signal == "INT" {
            let err = stderr(&o);
            assert!(err.contains("stopping after this batch") && err.contains("interrupted; nothing written"), "{err}");
            let left: Vec<_> = out.parent().unwrap().read_dir().unwrap().collect();
            assert!(left.is_empty(), "Ctrl-C left {left:?}");
        }
    }
}

#[test]
#[ignore = "needs scripts/setup.sh (.venv, models/): scripts/test.sh runs it"]
fn a_second_ctrl_c_ends_the_run_at_once_and_the_next_run_cleans_up() {
    use std::io::{BufRead, Read};
    let dir = tempfile::tempdir().unwrap();
    let (imgs, out) = a_long_run(dir.path());
    let full = model("resnet50.onnx");
    // Batches of 100: the first Ctrl-C lands at the start of the second
    // batch (just after the first was written), which then takes seconds to
    // finish, far longer than the test takes to answer the run's line.
    let long = ["--model", s(&full), "--images", s(&imgs), "--batch", "100", "--out", s(&out)];
    let mut child =
        Command::new(env!("CARGO_BIN_EXE_extract")).args(long).stderr(std::process::Stdio::piped()).spawn().unwrap();
    testkit::stop_when(&mut child, || {
        out.parent().unwrap().read_dir().map(|mut d| d.next().is_some()).unwrap_or(false)
    });
    testkit::signal(&child, "CONT");
    testkit::signal(&child, "INT");
    // The second Ctrl-C only once the run has taken the first (two sent
    // together can merge into one signal).
    let mut err = std::io::BufReader::new(child.stderr.take().unwrap());
    let mut seen = String::new();
    while !seen.contains("Ctrl-C again stops now") {
        let mut line = String::new();
        assert!(err.read_line(&mut line).unwrap() > 0, "the run did not say it is stopping: {seen}");
        seen += &line;
    }
    testkit::signal(&child, "INT");
    err.read_to_string(&mut seen).unwrap();
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(130), "{seen}");
    assert!(!seen.contains("interrupted; nothing written"), "the run ended after its batch, not at once: {seen}");
    assert!(!out.exists(), "no feature file");
    // What the second Ctrl-C left (a hidden partial file) the next run removes.
    let args = ["--model", s(&full), "--images", s(&imgs), "--batch", "4", "--out", s(&out)];
    let o = Command::new(env!("CARGO_BIN_EXE_extract")).args(args).output().unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    let left: Vec<String> = out
        .parent()
        .unwrap()
        .read_dir()
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(left, ["f.parquet"], "{}", stderr(&o));
}

/// scripts/gpu-check.sh with this build's binaries and runtime, nothing
/// installed or built; `exe` stands in for extract.
fn gpu_check(dir: &Path, exe: &Path, args: &[&str]) -> Output {
    let bound = Path::new(env!("CARGO_BIN_EXE_extract")).parent().unwrap().join("examples/inference_bound");
    assert!(bound.exists(), "{} is missing: cargo test builds the examples", bound.display());
    let runtime = extract::runtime::locate().expect("ONNX Runtime in .venv");
    Command::new("bash")
        .arg(root().join("scripts/gpu-check.sh"))
        .args(args)
        .env("EXTRACT", exe)
        .env("INFERENCE_BOUND", &bound)
        .env("ORT_DYLIB_PATH", runtime)
        .env("PYTHON", python())
        .env("TMPDIR", dir)
        .output()
        .unwrap()
}

/// A stand-in for extract that runs the real one after `rewrite` (a bash
/// `case` body over "$a", one argument) has had its say on each argument.
fn wrapped_extract(dir: &Path, name: &str, rewrite: &str) -> PathBuf {
    let path = dir.join(name);
    let real = env!("CARGO_BIN_EXE_extract");
    std::fs::write(
        &path,
        format!("#!/usr/bin/env bash\nargs=()\nfor a in \"$@\"; do\n  case \"$a\" in\n{rewrite}\n    *) args+=(\"$a\") ;;\n  esac\ndone\nexec \"{real}\" \"${{args[@]}}\"\n"),
    )
    .unwrap();
    let mut perms = std::fs::metadata(&path).unwrap().permissions();
    std::os::unix::fs::PermissionsExt::set_mode(&mut perms, 0o755);
    std::fs::set_permissions(&path, perms).unwrap();
    path
}

#[test]
#[ignore = "needs scripts/setup.sh (.venv, models/): scripts/test.sh runs it"]
fn the_gpu_check_runs_its_steps_and_catches_what_it_guards() {
    // What a GPU session runs, checked here on the CPU: parity read from
    // extract's own report, and the speed table for each batch size.
    let dir = tempfile::tempdir().unwrap();
    let images = generated(dir.path());
    let narrow = model("resnet50-narrow.onnx");
    let exe = Path::new(env!("CARGO_BIN_EXE_extract"));
    let common = ["--images", s(&images), "--model", s(&narrow), "--batches", "4,8", "--copies", "2"];
    let o = gpu_check(dir.path(), exe, &[&["--device", "cpu"], &common[..]].concat());
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(o.status.success(), "{out}\n{}", stderr(&o));
    assert!(
        out.contains("fp32: device asked cpu, extract ran on cpu")
            && out.contains("fp16: device asked cpu, extract ran on cpu"),
        "{out}"
    );
    for precision in ["fp32", "fp16"] {
        assert!(
            out.contains(&format!("parity {precision} avgpool")) && out.contains(&format!("parity {precision} layer2")),
            "{out}"
        );
    }
    let rows: Vec<&str> =
        out.lines().filter(|l| l.trim_start().starts_with('4') || l.trim_start().starts_with('8')).collect();
    assert_eq!(rows.len(), 2, "one speed row per batch size:\n{out}");
    assert!(out.trim_end().ends_with("parity: ok"), "{out}");

    // On the CPU the parity step compares two CPU runs; that it compares at
    // all shows when the second run's features differ (another resize).
    let drifting = wrapped_extract(dir.path(), "drifting", r#"    */dev.parquet) args+=("$a" --resize 232) ;;"#);
    let o = gpu_check(
        dir.path(),
        &drifting,
        &[&["--device", "cpu", "--copies", "2", "--batches", "4"], &common[..4]].concat(),
    );
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(
        !o.status.success() && out.contains("parity: FAILED"),
        "features that differ passed:\n{out}\n{}",
        stderr(&o)
    );

    // A device run that silently falls back to the CPU fails the check.
    let falling_back = wrapped_extract(dir.path(), "falling-back", r#"    cuda*) args+=(cpu) ;;"#);
    let o = gpu_check(
        dir.path(),
        &falling_back,
        &[&["--device", "cuda", "--copies", "2", "--batches", "4"], &common[..4]].concat(),
    );
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(!o.status.success() && out.contains("<- WRONG DEVICE"), "a fall-back to the CPU passed:\n{out}");

    // And this machine's CPU-only ONNX Runtime cannot run CUDA: the real
    // extract says so and the check fails.
    let runtime = extract::runtime::locate().unwrap();
    let has_cuda = runtime.parent().unwrap().join("libonnxruntime_providers_cuda.so").exists();
    let o = gpu_check(dir.path(), exe, &[&["--device", "cuda"], &common[..]].concat());
    if has_cuda {
        assert!(o.status.success(), "{}", stderr(&o));
    } else {
        assert!(!o.status.success(), "--device cuda passed on a CPU-only ONNX Runtime");
        assert!(stderr(&o).contains("the CUDA execution provider could not start"), "{}", stderr(&o));
    }
}

#[test]
#[ignore = "needs scripts/setup.sh (.venv, models/): scripts/test.sh runs it"]
fn the_readme_lists_exactly_the_options_help_prints() {
    let o = extract(&["--help"]);
    assert!(o.status.success());
    testkit::assert_readme_matches_help("extract", &String::from_utf8_lossy(&o.stdout));
}
