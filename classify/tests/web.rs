//! `classify export --web DIR`: a static page that classifies images in the
//! browser. Served by a plain static server on 127.0.0.1 and driven by a
//! real headless Chromium (Debian's, through playwright-core), the images
//! chosen in it get the labels and scores that onnxruntime-Python gives the
//! same model on the same pixels; a file that is no image says so and the
//! page goes on; a folder that is not a previous export is refused.

mod common;

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command};

use common::*;
use serde_json::Value;

const MODEL: &str = "resnet50-narrow.onnx";

/// A static file server (Python's http.server) over `dir`, stopped when dropped.
struct Served {
    child: Child,
    url: String,
}

impl Served {
    fn start(dir: &Path) -> Served {
        let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let child = Command::new(python())
            .args(["-m", "http.server", "--bind", "127.0.0.1", &port.to_string(), "--directory", s(dir)])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        for _ in 0..100 {
            if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
        Served { child, url: format!("http://127.0.0.1:{port}/index.html") }
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// What the page shows for `files`, by file name; its screenshot at `shot`.
fn drive(url: &str, shot: &Path, files: &[PathBuf]) -> Vec<Value> {
    let o = Command::new("node")
        .arg(root().join("classify/tests/js/drive_page.mjs"))
        .args([url, s(shot)])
        .args(files)
        .output()
        .expect("node runs (scripts/setup.sh --web installs the page's test tools)");
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(o.status.success(), "drive_page.mjs: {}\n{out}", stderr(&o));
    serde_json::from_str::<Value>(out.trim()).unwrap().as_array().unwrap().clone()
}

fn files_in(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir).unwrap().flatten().map(|e| e.path()).collect();
    v.sort();
    v
}

#[test]
#[ignore = "needs scripts/setup.sh --web (.venv, models/, web/node_modules, chromium): scripts/test.sh runs it"]
fn the_page_classifies_images_in_the_browser_as_onnxruntime_does() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    py_ok("classify/tests/py/make_dataset.py", &[s(&d.join("images")), "--classes", "3", "--train", "8", "--val", "3"]);
    let f = d.join("f.parquet");
    extract(&d.join("images/train"), &f, MODEL, &[]);
    let c = d.join("c.json");
    ok(&["fit", "--train", s(&f), "--out", s(&c), "--C", "1"]);
    let page = d.join("page");
    let o = classify(&["export", "--classifier", s(&c), "--model", s(&model(MODEL)), "--web", s(&page)]);
    assert!(o.status.success(), "{}", stderr(&o));
    let mut written: Vec<String> =
        files_in(&page).iter().map(|p| p.file_name().unwrap().to_string_lossy().into()).collect();
    written.sort();
    assert_eq!(
        written,
        [
            "classify-web.json",
            "index.html",
            "model.onnx",
            "ort-wasm-simd-threaded.mjs",
            "ort-wasm-simd-threaded.wasm",
            "ort.wasm.min.js"
        ]
    );
    let html = std::fs::read_to_string(page.join("index.html")).unwrap();
    assert!(!html.contains("http://") && !html.contains("https://"), "nothing fetched from elsewhere");

    // The validation images (PNG: every decoder gives the same pixels), the
    // shared photos (JPEG, EXIF turns among them), and a file that is no image.
    // Copied into one folder under names unique across classes (cards are named by file).
    let flat = d.join("given");
    std::fs::create_dir(&flat).unwrap();
    let mut images: Vec<PathBuf> = Vec::new();
    let mut take = |class: &Path, files: Vec<PathBuf>| {
        for f in files {
            let name = format!(
                "{}-{}",
                class.file_name().unwrap().to_string_lossy(),
                f.file_name().unwrap().to_string_lossy()
            );
            std::fs::copy(&f, flat.join(&name)).unwrap();
            images.push(flat.join(name));
        }
    };
    for class in files_in(&d.join("images/val")) {
        take(&class, files_in(&class));
    }
    let photos = shared_data("imagenet-samples");
    for class in photos.iter().flat_map(|p| files_in(p)) {
        take(&class, files_in(&class).into_iter().take(4).collect());
    }
    let pngs = images.iter().filter(|p| p.extension().is_some_and(|e| e == "png")).count();
    images.sort_by_key(|p| p.extension().is_none_or(|e| e != "png"));
    assert!(images.len() > pngs || photos.is_none(), "JPEG photos among the images");
    let broken = d.join("not-an-image.jpg");
    std::fs::write(&broken, "a text file named as a photo").unwrap();
    let mut given = images.clone();
    given.insert(1, broken.clone());

    let served = Served::start(&page);
    let shot = d.join("page.png");
    let shown = drive(&served.url, &shot, &given);
    assert!(std::fs::metadata(&shot).is_ok_and(|m| m.len() > 10_000), "a screenshot of the page");
    if let Some(keep) = std::env::var_os("WEB_SCREENSHOT") {
        std::fs::copy(&shot, keep).unwrap();
    }
    assert_eq!(shown.len(), given.len(), "one card per file");
    let broken_card = shown.iter().find(|c| c["file"] == "not-an-image.jpg").unwrap();
    assert!(broken_card["error"].as_str().is_some_and(|e| e.contains("not an image")), "{broken_card}");

    // onnxruntime-Python on PIL's pixels of the same files, the same model.
    let pixels_model = d.join("pixels.onnx");
    ok(&["export", "--classifier", s(&c), "--model", s(&model(MODEL)), "--out", s(&pixels_model), "--input", "pixels"]);
    let mut args = vec![s(&pixels_model)];
    args.extend(images.iter().map(|p| s(p)));
    let python = py_json("classify/tests/py/pixels_predict.py", &args);
    let (mut worst_png, mut worst_jpeg) = (0f64, 0f64);
    for (i, image) in images.iter().enumerate() {
        let name = image.file_name().unwrap().to_string_lossy().into_owned();
        let card = shown.iter().find(|c| c["file"] == name.as_str()).unwrap_or_else(|| panic!("no card for {name}"));
        let want = &python[&name];
        assert_eq!(card["label"], want["label"], "{name}: the page's label is onnxruntime-Python's");
        let diff = card["scores"]
            .as_array()
            .unwrap()
            .iter()
            .zip(want["scores"].as_array().unwrap())
            .map(|(a, b)| (a.as_f64().unwrap() - b.as_f64().unwrap()).abs())
            .fold(0f64, f64::max);
        if i < pngs {
            worst_png = worst_png.max(diff);
        } else {
            worst_jpeg = worst_jpeg.max(diff);
        }
    }
    eprintln!("page vs onnxruntime-Python: scores within {worst_png:.2e} (PNG), {worst_jpeg:.2e} (JPEG)");
    // Chromium decodes JPEGs as PIL does (libjpeg-turbo): the same pixels.
    assert!(worst_png.max(worst_jpeg) <= 1e-4, "scores differ by {worst_png} (PNG), {worst_jpeg} (JPEG)");

    // Again into the previous export: replaced whole.
    let o = classify(&["export", "--classifier", s(&c), "--model", s(&model(MODEL)), "--web", s(&page)]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(files_in(&page).len(), 6);
}

#[test]
#[ignore = "needs scripts/setup.sh --web (.venv, models/, web/node_modules): scripts/test.sh runs it"]
fn a_folder_that_is_not_a_previous_export_is_refused_and_nothing_written() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    py_ok("classify/tests/py/make_dataset.py", &[s(&d.join("images")), "--classes", "2", "--train", "4", "--val", "1"]);
    let f = d.join("f.parquet");
    extract(&d.join("images/train"), &f, MODEL, &[]);
    let c = d.join("c.json");
    ok(&["fit", "--train", s(&f), "--out", s(&c), "--C", "1"]);
    let taken = d.join("photos");
    std::fs::create_dir(&taken).unwrap();
    std::fs::write(taken.join("holiday.jpg"), b"mine").unwrap();
    let m = model(MODEL);
    let new = d.join("new");
    let before: Vec<PathBuf> = files_in(d);
    let cases: [(&[&str], &str); 3] = [
        (&["--web", s(&taken)], "holds files and is not a previous export"),
        (&["--web", s(&f)], "is a regular file, not a folder"),
        (&["--web", s(&new), "--input", "tensor"], "--web needs --input pixels"),
    ];
    for (extra, expect) in cases {
        let args = [&["export", "--classifier", s(&c), "--model", s(&m)][..], extra].concat();
        let o = classify(&args);
        testkit::assert_one_line_failure("classify", &args, &o, expect);
        assert_eq!(files_in(d), before, "{extra:?}: nothing written");
        assert_eq!(std::fs::read(taken.join("holiday.jpg")).unwrap(), b"mine");
    }
    // Where onnxruntime-web is not installed: one line saying how to install it.
    let args = ["export", "--classifier", s(&c), "--model", s(&m), "--web", s(&new)];
    let o = Command::new(env!("CARGO_BIN_EXE_classify"))
        .args(args)
        .env("ORT_WEB_DIST", d.join("nowhere"))
        .output()
        .unwrap();
    testkit::assert_one_line_failure("classify", &args, &o, "scripts/setup.sh --web");
    assert_eq!(files_in(d), before);
}
