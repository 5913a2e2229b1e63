//! `--precision fp16`: the model converted to float16 by extract, checked
//! against ONNX Runtime's own converter (`convert_float_to_float16`,
//! `keep_io_types=True`) on the same images, against fp32, and on what it
//! must refuse (every wild model: `wild.rs`).

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use featurefile::{FeatureFile, Precision};
use serde_json::Value;
use testkit::{assert_no_partial_files, assert_one_line_failure, model, py, s, stderr, Lcg};

fn extract(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_extract"))
        .env_remove("ORT_OPENVINO_PLUGIN")
        .args(args)
        .output()
        .expect("extract runs")
}

fn run_ok(args: &[&str]) -> String {
    let o = extract(args);
    assert!(o.status.success(), "extract {args:?}: {}", stderr(&o));
    stderr(&o)
}

/// `n` textured PNGs in two classes.
fn images(dir: &Path, n: usize) -> PathBuf {
    let root = dir.join("images");
    let mut rng = Lcg(11);
    for i in 0..n {
        let class = root.join(["a", "b"][i % 2]);
        std::fs::create_dir_all(&class).unwrap();
        let (fx, fy, base) = (1 + rng.below(9) as u32, 1 + rng.below(7) as u32, rng.below(200) as u32);
        let img = image::RgbImage::from_fn(250, 230, |x, y| {
            let v = |k: u32| ((x * fx + y * fy * k + base * k) % 256) as u8;
            image::Rgb([v(1), v(2) / 2 + (i as u8) * 5, v(3)])
        });
        img.save(class.join(format!("{i:03}.png"))).unwrap();
    }
    root
}

fn column(f: &FeatureFile, name: &str) -> Vec<Vec<f32>> {
    let c = f.column(name).unwrap();
    (0..f.len()).map(|i| c.row(i).to_vec()).collect()
}

/// Whether every value is one float16 holds (what a Cast from float16 gives).
fn all_half(rows: &[Vec<f32>]) -> bool {
    rows.iter().flatten().all(|&v| half::f16::from_f32(v).to_f32() == v)
}

/// reference-features.py's report for one column, ONNX Runtime's own
/// float16 conversion (`fp16`) or the fp32 model.
fn reference(features: &Path, model: &Path, layer: &str, fp16: bool, min_cosine: &str) -> (bool, Value) {
    let mut args = vec![s(features), "--model", s(model), "--layer", layer, "--min-cosine", min_cosine];
    if fp16 {
        args.push("--fp16");
    }
    let o = py("scripts/oracles/reference-features.py", &args);
    let report: Value = serde_json::from_slice(&o.stdout).unwrap_or_else(|_| panic!("{}", stderr(&o)));
    (o.status.success(), report)
}

#[test]
#[ignore = "needs scripts/setup.sh (.venv, models/): scripts/test.sh runs it"]
fn fp16_features_are_onnx_runtimes_own_conversion_and_in_half() {
    let dir = tempfile::tempdir().unwrap();
    let imgs = images(dir.path(), 12);
    let (fp16, fp32) = (dir.path().join("fp16.parquet"), dir.path().join("fp32.parquet"));
    let m = model("resnet50.onnx");
    let args = |out: &Path, precision: &'static str| -> Vec<String> {
        [
            "--model",
            s(&m),
            "--images",
            s(&imgs),
            "--layer",
            "layer3,avgpool",
            "--batch",
            "4",
            "--device",
            "cpu",
            "--precision",
            precision,
            "--out",
            s(out),
        ]
        .map(String::from)
        .to_vec()
    };
    let (a16, a32) = (args(&fp16, "fp16"), args(&fp32, "fp32"));
    let err = run_ok(&a16.iter().map(String::as_str).collect::<Vec<_>>());
    assert!(err.contains("device: cpu"), "{err}");
    // ResNet50's operators all have a float16 form (batch norms folded first).
    let line = err.lines().find(|l| l.starts_with("fp16: ")).unwrap_or_else(|| panic!("no fp16 line: {err}"));
    let counts: Vec<&str> = line.split_whitespace().filter(|w| w.parse::<usize>().is_ok()).collect();
    assert!(counts.len() == 2 && counts[0] == counts[1] && line.ends_with("operators compute in float16"), "{line}");
    run_ok(&a32.iter().map(String::as_str).collect::<Vec<_>>());

    let (f, fp) = (FeatureFile::open(&fp16).unwrap(), FeatureFile::open(&fp32).unwrap());
    let inference = f.header.inference.clone().unwrap();
    assert_eq!((inference.precision, inference.calibration), (Precision::Fp16, None));
    assert_eq!(f.header.model.sha256, fp.header.model.sha256, "the model is still the fp32 one");
    assert_eq!(f.header.layers, fp.header.layers, "the same tensors");
    // avgpool is the network's own output (nothing pooled after it): every
    // value came out of float16; fp32's do not all fit in it.
    assert!(all_half(&column(&f, "avgpool")), "fp16's avgpool values are float16 values");
    assert!(!all_half(&column(&fp, "avgpool")), "fp32's are not");
    for layer in ["layer3", "avgpool"] {
        // ONNX Runtime's own converter on the same model and PIL's pixels.
        let (ok, report) = reference(&fp16, &m, layer, true, "0.9999");
        assert!(ok && report["fp16"] == true, "{layer}: below 0.9999 of ONNX Runtime's own float16: {report}");
        // And fp32's features, within float16's rounding.
        let (ok, report) = reference(&fp16, &m, layer, false, "0.999");
        assert!(ok, "{layer}: below 0.999 of fp32: {report}");
    }
}

#[test]
#[ignore = "needs scripts/setup.sh (.venv, models/): scripts/test.sh runs it"]
fn a_model_with_nothing_to_compute_in_half_is_one_line_and_no_file() {
    let dir = tempfile::tempdir().unwrap();
    let imgs = images(dir.path(), 2);
    let m = dir.path().join("floor.onnx");
    let o = py("extract/tests/py/make_wild_models.py", &["--no-half", s(&m)]);
    assert!(o.status.success(), "{}", stderr(&o));
    let out = dir.path().join("out/f.parquet");
    std::fs::create_dir_all(out.parent().unwrap()).unwrap();
    let args = ["--model", s(&m), "--images", s(&imgs), "--layer", "y", "--precision", "fp16", "--out", s(&out)];
    let o = extract(&args);
    assert_one_line_failure(
        "extract",
        &args,
        &o,
        "--precision fp16: the model has no operator that computes on the image in float16",
    );
    assert!(!out.exists());
    assert_no_partial_files(out.parent().unwrap());
    // The same model at fp32 runs: only the conversion is refused.
    run_ok(&["--model", s(&m), "--images", s(&imgs), "--layer", "y", "--out", s(&out)]);
}
