//! Models and images from the wild: ResNet50 files other exporters write,
//! models that are not ResNets at all, external weights, fixed batches,
//! malformed models, truncated JPEGs and decompression bombs.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use featurefile::FeatureFile;
use testkit::{assert_one_line_failure, model, py, s, stderr};

fn extract(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_extract")).args(args).output().expect("extract runs")
}

fn run_ok(args: &[&str]) -> String {
    let o = extract(args);
    assert!(o.status.success(), "extract {args:?}: {}", stderr(&o));
    stderr(&o)
}

/// The models make_wild_models.py writes, in `dir`.
fn wild_models(dir: &Path) -> PathBuf {
    let out = dir.join("models");
    let o = py("extract/tests/py/make_wild_models.py", &[s(&out), s(&model("resnet50-narrow.onnx"))]);
    assert!(o.status.success(), "{}", stderr(&o));
    out
}

/// A few small images in two class folders.
fn images(dir: &Path, n: usize) -> PathBuf {
    let root = dir.join("images");
    for i in 0..n {
        let class = root.join(if i % 2 == 0 { "a" } else { "b" });
        std::fs::create_dir_all(&class).unwrap();
        image::RgbImage::from_fn(300 + i as u32, 240, |x, y| {
            image::Rgb([(x * 3 + i as u32) as u8, (y * 2) as u8, (x ^ y) as u8])
        })
        .save(class.join(format!("{i:02}.png")))
        .unwrap();
    }
    root
}

fn column(f: &Path, layer: &str) -> (Vec<String>, Vec<Vec<f32>>) {
    let f = FeatureFile::open(f).unwrap();
    let c = f.column(layer).unwrap();
    (f.paths.clone(), (0..f.len()).map(|i| c.row(i).to_vec()).collect())
}

fn max_diff(a: &[Vec<f32>], b: &[Vec<f32>]) -> f32 {
    a.iter().flatten().zip(b.iter().flatten()).map(|(x, y)| (x - y).abs()).fold(0.0, f32::max)
}

#[test]
#[ignore = "needs scripts/setup.sh (.venv, models/): scripts/test.sh runs it"]
fn caffe2_exports_with_sum_joins_and_unfused_batch_norm_work() {
    let dir = tempfile::tempdir().unwrap();
    let models = wild_models(dir.path());
    let imgs = images(dir.path(), 4);
    let (a, b) = (dir.path().join("a.parquet"), dir.path().join("b.parquet"));
    let layers = "stem,layer2,layer4,avgpool";
    run_ok(&["--model", s(&model("resnet50-narrow.onnx")), "--images", s(&imgs), "--layer", layers, "--out", s(&a)]);
    run_ok(&["--model", s(&models.join("caffe2.onnx")), "--images", s(&imgs), "--layer", layers, "--out", s(&b)]);
    for layer in ["stem", "layer2", "layer4", "avgpool"] {
        let (pa, fa) = column(&a, layer);
        let (pb, fb) = column(&b, layer);
        assert_eq!(pa, pb);
        assert!(max_diff(&fa, &fb) < 1e-5, "{layer} differs by {}", max_diff(&fa, &fb));
    }
}

/// The tensors make_wild_models.py planted (its planted.json).
fn planted(models: &Path) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(models.join("planted.json")).unwrap()).unwrap()
}

/// Each column of `features` against ONNX Runtime's own output of the
/// tensor extract recorded for it, on PIL's preprocessing of the same
/// images (scripts/oracles/reference-features.py): the same values.
fn assert_matches_onnx_runtime(model: &Path, features: &Path) {
    let f = FeatureFile::open(features).unwrap();
    for (layer, info) in &f.header.layers {
        let r = testkit::py_json(
            "scripts/oracles/reference-features.py",
            &[s(features), "--model", s(model), "--layer", layer, "--tensor", &info.tensor, "--min-cosine", "0.99999"],
        );
        let worst = r["images"].as_object().unwrap().values().map(|v| v[1].as_f64().unwrap()).fold(0.0, f64::max);
        assert!(r["below"].as_array().unwrap().is_empty() && worst < 1e-4, "{layer} ({}): {r}", info.tensor);
    }
}

#[test]
#[ignore = "needs scripts/setup.sh (.venv, models/): scripts/test.sh runs it"]
fn model_zoo_caffe2_files_weights_from_constant_of_shape_and_inputs_with_initializers() {
    let dir = tempfile::tempdir().unwrap();
    let models = wild_models(dir.path());
    let imgs = images(dir.path(), 3);
    let zoo = models.join("zoo-caffe2.onnx");
    let o = extract(&["--model", s(&zoo), "--list-layers"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let table = String::from_utf8_lossy(&o.stdout);
    let found: Vec<&str> = table
        .lines()
        .skip(3)
        .take_while(|l| !l.starts_with("avgpool:"))
        .filter_map(|l| l.split_whitespace().next())
        .collect();
    assert_eq!(found, ["stem", "layer1", "layer2", "layer3", "layer4", "avgpool"], "{table}");
    let out = dir.path().join("zoo.parquet");
    run_ok(&["--model", s(&zoo), "--images", s(&imgs), "--layer", "stem,layer1,layer3,avgpool", "--out", s(&out)]);
    assert_matches_onnx_runtime(&zoo, &out);
    // The stages are the narrow model's own tensors (the file only renames operators).
    let narrow = dir.path().join("narrow.parquet");
    run_ok(&[
        "--model",
        s(&model("resnet50-narrow.onnx")),
        "--images",
        s(&imgs),
        "--layer",
        "stem,layer1,layer3,avgpool",
        "--out",
        s(&narrow),
    ]);
    let tensors = |f: &Path| {
        FeatureFile::open(f).unwrap().header.layers.iter().map(|(_, l)| l.tensor.clone()).collect::<Vec<_>>()
    };
    assert_eq!(tensors(&out), tensors(&narrow));
}

#[test]
#[ignore = "needs scripts/setup.sh (.venv, models/): scripts/test.sh runs it"]
fn shapes_outside_the_table_come_from_the_runtime_and_raw_names_work_on_an_efficientnet() {
    let dir = tempfile::tempdir().unwrap();
    let models = wild_models(dir.path());
    let planted = planted(&models);
    let eff = models.join("effnet.onnx");
    // A Pad hides every shape after it from static inference; the
    // AveragePool is global only by the map's measured size.
    let o = extract(&["--model", s(&eff), "--list-layers"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let table = String::from_utf8_lossy(&o.stdout);
    let pool = planted["effnet"]["avgpool"].as_str().unwrap();
    assert!(table.lines().any(|l| l.starts_with("avgpool ") && l.contains("Nx32") && l.ends_with(pool)), "{table}");
    assert!(table.contains("avgpool: the AveragePool the Gemm head takes"), "{table}");
    let imgs = images(dir.path(), 3);
    let out = dir.path().join("eff.parquet");
    let projection = planted["effnet"]["projection"].as_str().unwrap();
    run_ok(&["--model", s(&eff), "--images", s(&imgs), "--layer", &format!("{projection},avgpool"), "--out", s(&out)]);
    let f = FeatureFile::open(&out).unwrap();
    assert_eq!(f.header.layer(projection).unwrap().dim, 16);
    assert_eq!(f.header.layer("avgpool").unwrap().tensor, pool);
    assert_matches_onnx_runtime(&eff, &out);
}

#[test]
#[ignore = "needs scripts/setup.sh (.venv, models/): scripts/test.sh runs it"]
fn avgpool_is_found_under_a_one_by_one_conv_head_and_on_a_headless_model() {
    let dir = tempfile::tempdir().unwrap();
    let models = wild_models(dir.path());
    let planted = planted(&models);
    let imgs = images(dir.path(), 3);
    for (name, rule, dim) in [
        ("convhead", "the GlobalAveragePool the 1x1 Conv head takes", 16),
        ("headless", "the last GlobalAveragePool (no classifier head)", 256),
    ] {
        let m = models.join(format!("{name}.onnx"));
        let o = extract(&["--model", s(&m), "--list-layers"]);
        let table = String::from_utf8_lossy(&o.stdout);
        assert!(o.status.success() && table.contains(&format!("avgpool: {rule}")), "{name}: {table}{}", stderr(&o));
        let out = dir.path().join(format!("{name}.parquet"));
        run_ok(&["--model", s(&m), "--images", s(&imgs), "--layer", "avgpool", "--out", s(&out)]);
        let f = FeatureFile::open(&out).unwrap();
        let info = f.header.layer("avgpool").unwrap();
        assert_eq!((info.tensor.as_str(), info.dim), (planted[name]["avgpool"].as_str().unwrap(), dim), "{name}");
        assert_matches_onnx_runtime(&m, &out);
    }
}

#[test]
#[ignore = "needs scripts/setup.sh (.venv, models/): scripts/test.sh runs it"]
fn pre_activation_resnets_end_their_blocks_at_the_join() {
    let dir = tempfile::tempdir().unwrap();
    let models = wild_models(dir.path());
    let o = extract(&["--model", s(&models.join("preact.onnx")), "--list-layers"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let table = String::from_utf8_lossy(&o.stdout);
    let rows: Vec<Vec<&str>> = table
        .lines()
        .skip(3)
        .take_while(|l| !l.starts_with("avgpool:"))
        .map(|l| l.split_whitespace().collect())
        .collect();
    let got: Vec<(&str, &str)> = rows.iter().map(|r| (r[0], r[1])).collect();
    assert_eq!(
        got,
        [("stem", "Nx8x56x56"), ("layer1", "Nx8x56x56"), ("layer2", "Nx16x28x28"), ("avgpool", "Nx16")],
        "{table}"
    );
    assert!(table.contains("4 residual blocks"), "{table}");
    for r in &rows[1..3] {
        assert!(r[4].ends_with("/Add_output_0"), "a v2 block ends at its join, not a ReLU: {table}");
    }
    let imgs = images(dir.path(), 3);
    let out = dir.path().join("f.parquet");
    run_ok(&[
        "--model",
        s(&models.join("preact.onnx")),
        "--images",
        s(&imgs),
        "--layer",
        "layer1,layer2,avgpool",
        "--out",
        s(&out),
    ]);
    assert_eq!(column(&out, "layer2").1[0].len(), 16);
}

#[test]
#[ignore = "needs scripts/setup.sh (.venv, models/): scripts/test.sh runs it"]
fn any_model_takes_raw_tensor_names_and_its_head_gives_avgpool() {
    let dir = tempfile::tempdir().unwrap();
    let models = wild_models(dir.path());
    let plain = models.join("plain.onnx");
    let o = extract(&["--model", s(&plain), "--list-layers"]);
    let table = String::from_utf8_lossy(&o.stdout);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        table.contains("no residual blocks") && table.lines().any(|l| l.starts_with("avgpool ") && l.contains("Nx16")),
        "{table}"
    );
    assert!(table.contains("avgpool: the GlobalAveragePool the Gemm head takes"), "{table}");

    let imgs = images(dir.path(), 3);
    let out = dir.path().join("f.parquet");
    let raw = "/conv2/Conv_output_0";
    run_ok(&["--model", s(&plain), "--images", s(&imgs), "--layer", &format!("{raw},avgpool"), "--out", s(&out)]);
    assert_eq!(column(&out, raw).1[0].len(), 8);
    assert_eq!(column(&out, "avgpool").1[0].len(), 16);

    let bad = dir.path().join("bad.parquet");
    let args = ["--model", s(&plain), "--images", s(&imgs), "--layer", "layer2", "--out", s(&bad)];
    let o = extract(&args);
    assert_one_line_failure(
        "extract",
        &args,
        &o,
        "\"layer2\" needs a ResNet-style model; raw tensor names work on any model",
    );
    assert!(!bad.exists());
}

#[test]
#[ignore = "needs scripts/setup.sh (.venv, models/): scripts/test.sh runs it"]
fn external_weights_are_found_beside_the_model_from_any_directory() {
    let dir = tempfile::tempdir().unwrap();
    let models = wild_models(dir.path());
    let imgs = images(dir.path(), 3);
    let elsewhere = tempfile::tempdir().unwrap();
    let (a, b) = (dir.path().join("a.parquet"), dir.path().join("b.parquet"));
    run_ok(&[
        "--model",
        s(&model("resnet50-narrow.onnx")),
        "--images",
        s(&imgs),
        "--layer",
        "layer3,avgpool",
        "--out",
        s(&a),
    ]);
    let ext = models.join("external.onnx");
    let o = Command::new(env!("CARGO_BIN_EXE_extract"))
        .args(["--model", s(&ext), "--images", s(&imgs), "--layer", "layer3,avgpool", "--out", s(&b)])
        .current_dir(elsewhere.path())
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    for layer in ["layer3", "avgpool"] {
        assert_eq!(max_diff(&column(&a, layer).1, &column(&b, layer).1), 0.0, "{layer}");
    }
    // The recorded hash covers the weights: the model file, then its data file.
    use sha2::Digest;
    let mut h = sha2::Sha256::new();
    h.update(std::fs::read(&ext).unwrap());
    h.update(std::fs::read(models.join("external.onnx.data")).unwrap());
    assert_eq!(FeatureFile::open(&b).unwrap().header.model.sha256, hex::encode(h.finalize()));

    // Weights that are not there: one line naming the file.
    std::fs::rename(models.join("external.onnx.data"), models.join("moved.data")).unwrap();
    let out = dir.path().join("c.parquet");
    let args = ["--model", s(&ext), "--images", s(&imgs), "--out", s(&out)];
    assert_one_line_failure("extract", &args, &extract(&args), "external.onnx.data: No such file");
}

#[test]
#[ignore = "needs scripts/setup.sh (.venv, models/): scripts/test.sh runs it"]
fn a_fixed_batch_of_four_pads_every_short_batch() {
    let dir = tempfile::tempdir().unwrap();
    let fixed = dir.path().join("fixed4.onnx");
    let o = py("scripts/make-test-model.py", &["--width", "8", "--fixed-batch", "4", "--out", s(&fixed)]);
    assert!(o.status.success(), "{}", stderr(&o));
    let imgs = images(dir.path(), 9);
    std::fs::write(imgs.join("a/05-broken.jpg"), b"\xff\xd8\xff not really").unwrap();
    let (a, b) = (dir.path().join("a.parquet"), dir.path().join("b.parquet"));
    let err = run_ok(&[
        "--model",
        s(&fixed),
        "--images",
        s(&imgs),
        "--layer",
        "layer2,avgpool",
        "--batch",
        "32",
        "--out",
        s(&a),
    ]);
    assert!(err.lines().last().unwrap().starts_with("wrote 9 images") && err.contains("(1 skipped)"), "{err}");
    run_ok(&[
        "--model",
        s(&model("resnet50-narrow.onnx")),
        "--images",
        s(&imgs),
        "--layer",
        "layer2,avgpool",
        "--out",
        s(&b),
    ]);
    for layer in ["layer2", "avgpool"] {
        let (pa, fa) = column(&a, layer);
        let (pb, fb) = column(&b, layer);
        assert_eq!(pa, pb);
        assert!(max_diff(&fa, &fb) < 1e-5, "{layer}: {}", max_diff(&fa, &fb));
    }
}

#[test]
#[ignore = "needs scripts/setup.sh (.venv, models/): scripts/test.sh runs it"]
fn malformed_models_are_an_error_never_a_panic() {
    let dir = tempfile::tempdir().unwrap();
    let models = wild_models(dir.path());
    let good = std::fs::read(models.join("preact.onnx")).unwrap();
    let mut rng = testkit::Lcg(0x5EED);
    let mut mutants: Vec<Vec<u8>> = Vec::new();
    for k in 0..150 {
        mutants.push(good[..good.len() * k / 150].to_vec());
    }
    for _ in 0..250 {
        let mut m = good.clone();
        for _ in 0..1 + rng.below(4) {
            let at = rng.below(m.len());
            m[at] ^= 1 << rng.below(8);
        }
        mutants.push(m);
    }
    // Everything --list-layers and a run do with a model before inference.
    let mut parsed = 0;
    for m in &mutants {
        if let Ok(model) = backbone::Model::parse(m) {
            parsed += 1;
            let _ = extract::layer_table(&model);
            let _ = model.shapes_needed();
            let _ = model.external_files();
            if let Ok(layers) = model.resolve(&["stem".into(), "layer1".into(), "avgpool".into()]) {
                let tensors: Vec<&str> = layers.iter().map(|l| l.tensor.as_str()).collect();
                let _ = model.with_outputs(&tensors);
            }
        }
    }
    assert!(parsed > 50, "only {parsed} of {} mutants parse: the flips barely test the analysis", mutants.len());
    // And through the binary, a sample: one line, exit 1.
    for (i, m) in mutants.iter().enumerate().step_by(20) {
        let p = dir.path().join(format!("m{i}.onnx"));
        std::fs::write(&p, m).unwrap();
        let o = extract(&["--model", s(&p), "--list-layers"]);
        let err = stderr(&o);
        assert!(!err.contains("panicked") && err.lines().count() <= 1, "mutant {i}: {err}");
        assert!(o.status.code() == Some(0) || o.status.code() == Some(1), "mutant {i}: {:?}", o.status);
    }
}

#[test]
#[ignore = "needs scripts/setup.sh (.venv, models/): scripts/test.sh runs it"]
fn truncated_jpegs_are_skipped_and_trailing_bytes_are_not_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("images/x");
    std::fs::create_dir_all(&root).unwrap();
    let img =
        image::RgbImage::from_fn(320, 240, |x, y| image::Rgb([(x / 2) as u8, (y / 2) as u8, ((x + y) / 3) as u8]));
    img.save(root.join("whole.jpg")).unwrap();
    let bytes = std::fs::read(root.join("whole.jpg")).unwrap();
    std::fs::write(root.join("cut.jpg"), &bytes[..bytes.len() * 4 / 10]).unwrap();
    let mut trailing = bytes.clone();
    trailing.extend_from_slice(b"some bytes a camera left after the end marker");
    std::fs::write(root.join("trailing.jpg"), &trailing).unwrap();
    let out = dir.path().join("f.parquet");
    let err = run_ok(&[
        "--model",
        s(&model("resnet50-narrow.onnx")),
        "--images",
        s(&dir.path().join("images")),
        "--out",
        s(&out),
    ]);
    assert!(err.contains("skipped x/cut.jpg: image file is truncated"), "{err}");
    let f = FeatureFile::open(&out).unwrap();
    assert_eq!(f.paths, ["x/trailing.jpg", "x/whole.jpg"]);
    assert_eq!(f.header.skipped.len(), 1);
    assert!(f.header.skipped[0].error.contains("truncated"));
    let c = f.column("avgpool").unwrap();
    assert_eq!(c.row(0), c.row(1), "trailing bytes change nothing");
}

#[test]
#[ignore = "needs scripts/setup.sh (.venv, models/): scripts/test.sh runs it"]
fn images_above_the_pixel_limit_are_skipped_before_decoding() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("images/x");
    std::fs::create_dir_all(&root).unwrap();
    // A decompression bomb: 14,000 x 14,000 grey pixels (196 million, above
    // PIL's limit) in a PNG of a few hundred kilobytes.
    let script = r#"
import struct, sys, zlib
w = h = 14000
def chunk(t, d): return struct.pack(">I", len(d)) + t + d + struct.pack(">I", zlib.crc32(t + d))
z = zlib.compressobj(9); row = b"\x00" + b"\x00" * w; data = b"".join(z.compress(row) for _ in range(h)) + z.flush()
open(sys.argv[1], "wb").write(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 0, 0, 0, 0)) + chunk(b"IDAT", data) + chunk(b"IEND", b""))
"#;
    let o = Command::new(testkit::python()).args(["-c", script, s(&root.join("bomb.png"))]).output().unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(std::fs::metadata(root.join("bomb.png")).unwrap().len() < 2_000_000);
    image::RgbImage::from_pixel(64, 48, image::Rgb([9, 9, 9])).save(root.join("small.png")).unwrap();
    let out = dir.path().join("f.parquet");
    let m = model("resnet50-narrow.onnx");
    let imgs = dir.path().join("images");
    let err = run_ok(&["--model", s(&m), "--images", s(&imgs), "--out", s(&out)]);
    assert!(
        err.contains("skipped x/bomb.png: image is 14000x14000 = 196000000 pixels, above the limit of 178956970"),
        "{err}"
    );
    assert_eq!(FeatureFile::open(&out).unwrap().paths, ["x/small.png"]);
    // The limit is the user's to set.
    let o = extract(&["--model", s(&m), "--images", s(&imgs), "--out", s(&out), "--max-pixels", "3000", "--overwrite"]);
    let err = stderr(&o);
    assert!(err.contains("skipped x/small.png: image is 64x48 = 3072 pixels, above the limit of 3000"), "{err}");
    assert!(!o.status.success() && err.contains("none of the 2 images could be read"), "{err}");
}

#[test]
#[ignore = "needs scripts/setup.sh (.venv, models/): scripts/test.sh runs it"]
fn int8_quantizes_every_wild_model_and_keeps_its_requested_tensors() {
    // Weights as inputs and from ConstantOfShape, unfused batch norms, an
    // EfficientNet (swish, depthwise, squeeze-excite) read by raw tensor
    // name, a 1x1-conv head, external weights, pre-activation blocks.
    let dir = tempfile::tempdir().unwrap();
    let models = wild_models(dir.path());
    let imgs = images(dir.path(), 8);
    let planted = planted(&models);
    for name in ["caffe2", "zoo-caffe2", "effnet", "convhead", "headless", "external", "preact", "plain"] {
        let m = models.join(format!("{name}.onnx"));
        let layers = match planted[name]["projection"].as_str() {
            Some(raw) => format!("avgpool,{raw}"),
            None => "avgpool".to_string(),
        };
        let (fp32, int8) =
            (dir.path().join(format!("{name}-fp32.parquet")), dir.path().join(format!("{name}-int8.parquet")));
        run_ok(&["--model", s(&m), "--images", s(&imgs), "--layer", &layers, "--out", s(&fp32)]);
        let o = Command::new(env!("CARGO_BIN_EXE_extract"))
            .env("XDG_CACHE_HOME", dir.path().join("cache"))
            .args([
                "--model",
                s(&m),
                "--images",
                s(&imgs),
                "--layer",
                &layers,
                "--precision",
                "int8",
                "--calibrate",
                "8",
                "--out",
                s(&int8),
            ])
            .output()
            .unwrap();
        assert!(o.status.success(), "{name}: {}", stderr(&o));
        assert_eq!(
            FeatureFile::open(&int8).unwrap().header.layers,
            FeatureFile::open(&fp32).unwrap().header.layers,
            "{name}: the same tensors"
        );
        for layer in layers.split(',') {
            let ((pa, fa), (pb, fb)) = (column(&fp32, layer), column(&int8, layer));
            assert_eq!(pa, pb);
            let mut cos: Vec<f64> = fa.iter().zip(&fb).map(|(a, b)| testkit::cosine(a, b)).collect();
            cos.sort_by(f64::total_cmp);
            assert!(cos[cos.len() / 2] > 0.99, "{name} {layer}: median cosine to fp32 {}", cos[cos.len() / 2]);
        }
    }
}

#[test]
#[ignore = "needs scripts/setup.sh (.venv, models/): scripts/test.sh runs it"]
fn fp16_converts_every_wild_model_as_onnx_runtimes_own_converter_does() {
    // The models of the int8 test above, Sum joins among them, each column
    // against ONNX Runtime's convert_float_to_float16 (keep_io_types) of the
    // tensor extract recorded for it.
    let dir = tempfile::tempdir().unwrap();
    let models = wild_models(dir.path());
    let imgs = images(dir.path(), 6);
    let planted = planted(&models);
    for name in ["caffe2", "zoo-caffe2", "effnet", "convhead", "headless", "external", "preact", "plain"] {
        let m = models.join(format!("{name}.onnx"));
        let layers = match planted[name]["projection"].as_str() {
            Some(raw) => format!("avgpool,{raw}"),
            None => "avgpool".to_string(),
        };
        let (fp32, fp16) =
            (dir.path().join(format!("{name}-fp32.parquet")), dir.path().join(format!("{name}-fp16.parquet")));
        run_ok(&["--model", s(&m), "--images", s(&imgs), "--layer", &layers, "--device", "cpu", "--out", s(&fp32)]);
        run_ok(&[
            "--model",
            s(&m),
            "--images",
            s(&imgs),
            "--layer",
            &layers,
            "--device",
            "cpu",
            "--precision",
            "fp16",
            "--out",
            s(&fp16),
        ]);
        let f = FeatureFile::open(&fp16).unwrap();
        assert_eq!(f.header.layers, FeatureFile::open(&fp32).unwrap().header.layers, "{name}: the same tensors");
        for (layer, info) in &f.header.layers {
            let args = [
                s(&fp16),
                "--model",
                s(&m),
                "--layer",
                layer,
                "--tensor",
                &info.tensor,
                "--fp16",
                "--min-cosine",
                "0.999",
            ];
            let o = py("scripts/oracles/reference-features.py", &args);
            assert!(
                o.status.success(),
                "{name} {layer}: below 0.999 of ONNX Runtime's own float16: {}{}",
                String::from_utf8_lossy(&o.stdout),
                stderr(&o)
            );
        }
    }
}
