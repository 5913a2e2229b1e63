//! `--device openvino`: OpenVINO's execution-provider plugin registered with
//! the ONNX Runtime extract loads, checked against ONNX Runtime's Python API
//! on its CPU provider; `auto` takes it where it is installed; without it,
//! one line that names the set-up step.

use std::path::Path;
use std::process::{Command, Output};

use featurefile::FeatureFile;
use serde_json::Value;
use testkit::{assert_one_line_failure, model, openvino_plugin, py, s, stderr};

/// extract with the tests' OpenVINO plugin installed (or `plugin` instead).
fn extract(args: &[&str], plugin: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_extract"))
        .env("ORT_OPENVINO_PLUGIN", plugin)
        .args(args)
        .output()
        .expect("extract runs")
}

fn images(dir: &Path) -> std::path::PathBuf {
    let images = dir.join("images");
    let o = py("extract/tests/py/make_images.py", &[s(&images)]);
    assert!(o.status.success(), "{}", stderr(&o));
    images
}

/// Whether this machine's CPU is Intel's, as the kernel reports it.
fn intel_cpu() -> bool {
    std::fs::read_to_string("/proc/cpuinfo")
        .is_ok_and(|c| c.lines().any(|l| l.starts_with("vendor_id") && l.ends_with("GenuineIntel")))
}

#[test]
#[ignore = "needs scripts/test.sh's set-up (.venv, models/, the OpenVINO plugin)"]
fn openvino_on_a_cpu_not_intels_is_one_line_and_auto_takes_the_cpu() {
    if !testkit::hardware("openvino-not-intel", !intel_cpu(), "an Intel CPU runs the plugin: no refusal to see") {
        return;
    }
    assert!(openvino_plugin().is_file(), "{} is missing: scripts/test.sh installs it", openvino_plugin().display());
    let dir = tempfile::tempdir().unwrap();
    let imgs = images(dir.path());
    let out = dir.path().join("ov.parquet");
    let m = model("resnet50.onnx");
    // The plugin's factory offers Intel devices alone: on this CPU an
    // explicit openvino is one line, and auto takes the CPU provider.
    let args = ["--model", s(&m), "--images", s(&imgs), "--device", "openvino", "--out", s(&out)];
    let o = extract(&args, &openvino_plugin());
    assert_one_line_failure(
        "extract",
        &args,
        &o,
        "OpenVINO's plugin for ONNX Runtime offers only Intel devices, and this CPU is",
    );
    assert!(!out.exists());
    let o = extract(&["--model", s(&m), "--images", s(&imgs), "--out", s(&out)], &openvino_plugin());
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        stderr(&o)
            .contains("device: cpu (auto: no usable CUDA provider or GPU, OpenVINO's plugin offers only Intel devices"),
        "{}",
        stderr(&o)
    );
}

#[test]
#[ignore = "needs scripts/test.sh's set-up (.venv, models/, the OpenVINO plugin)"]
fn openvino_gives_onnx_runtimes_features_and_says_it_ran() {
    if !testkit::hardware("openvino-parity", intel_cpu(), "OpenVINO's plugin offers Intel CPUs only") {
        return;
    }
    assert!(openvino_plugin().is_file(), "{} is missing: scripts/test.sh installs it", openvino_plugin().display());
    let dir = tempfile::tempdir().unwrap();
    let imgs = images(dir.path());
    let out = dir.path().join("ov.parquet");
    let m = model("resnet50.onnx");
    for device in ["openvino", "auto"] {
        let o = extract(
            &[
                "--model",
                s(&m),
                "--images",
                s(&imgs),
                "--layer",
                "layer3,avgpool",
                "--batch",
                "4",
                "--device",
                device,
                "--out",
                s(&out),
                "--overwrite",
            ],
            &openvino_plugin(),
        );
        assert!(o.status.success(), "{}", stderr(&o));
        let err = stderr(&o);
        assert!(err.contains("device: openvino"), "{device}: {err}");
        if device == "auto" {
            assert!(err.contains("(auto: no usable CUDA provider or GPU; OpenVINO's plugin is installed)"), "{err}");
        }
        let f = FeatureFile::open(&out).unwrap();
        let inference = f.header.inference.as_ref().expect("the file records how the network ran");
        assert_eq!((inference.device.as_str(), inference.precision), ("openvino", featurefile::Precision::Fp32));
        // PIL + ONNX Runtime's CPU provider on the same model: OpenVINO may
        // compute in bf16 on an AMX CPU, which keeps cosine well above 0.999.
        for (layer, pool) in [("layer3", "avg"), ("avgpool", "none")] {
            let o = py(
                "scripts/oracles/reference-features.py",
                &[s(&out), "--model", s(&m), "--layer", layer, "--pool", pool, "--min-cosine", "0.999"],
            );
            let report: Value = serde_json::from_slice(&o.stdout).unwrap_or_else(|_| panic!("{}", stderr(&o)));
            assert!(o.status.success(), "{device} {layer}: {report}");
        }
    }
}

#[test]
#[ignore = "needs scripts/setup.sh (.venv, models/): scripts/test.sh runs it"]
fn openvino_without_its_plugin_is_one_line_naming_the_setup_step() {
    let dir = tempfile::tempdir().unwrap();
    let imgs = dir.path().join("images/x");
    std::fs::create_dir_all(&imgs).unwrap();
    image::RgbImage::from_pixel(64, 64, image::Rgb([1, 2, 3])).save(imgs.join("a.png")).unwrap();
    let out = dir.path().join("f.parquet");
    let (m, root) = (model("resnet50-narrow.onnx"), dir.path().join("images"));
    let args = ["--model", s(&m), "--images", s(&root), "--device", "openvino", "--out", s(&out)];
    // Named but not there.
    let o = extract(&args, &dir.path().join("nowhere/libplugin.so"));
    assert_one_line_failure("extract", &args, &o, "OpenVINO's plugin for ONNX Runtime is not installed");
    assert!(stderr(&o).contains("run scripts/setup.sh --openvino"), "{}", stderr(&o));
    assert!(!out.exists());
    // Not installed beside the ONNX Runtime that is loaded (a copy of the
    // library alone in a folder), and not named.
    let lib = dir.path().join("site/onnxruntime/capi/libonnxruntime.so");
    std::fs::create_dir_all(lib.parent().unwrap()).unwrap();
    std::fs::copy(extract::runtime::locate().unwrap(), &lib).unwrap();
    let o = Command::new(env!("CARGO_BIN_EXE_extract"))
        .env_remove("ORT_OPENVINO_PLUGIN")
        .env("ORT_DYLIB_PATH", &lib)
        .args(args)
        .output()
        .unwrap();
    assert_one_line_failure("extract", &args, &o, "OpenVINO's plugin for ONNX Runtime is not installed");
    assert!(!out.exists());
    // auto without the plugin: the CPU provider, and it says why.
    let auto = ["--model", s(&m), "--images", s(&root), "--out", s(&out)];
    let o = Command::new(env!("CARGO_BIN_EXE_extract"))
        .env_remove("ORT_OPENVINO_PLUGIN")
        .env("ORT_DYLIB_PATH", &lib)
        .args(auto)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("device: cpu (auto: no usable CUDA provider or GPU, no OpenVINO plugin)"),
        "{}",
        stderr(&o)
    );
}
