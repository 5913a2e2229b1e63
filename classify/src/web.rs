//! `classify export --web DIR`: a static page that classifies images in the
//! browser. DIR holds everything it needs and nothing else: the pixels
//! model (`model.onnx`), onnxruntime-web's WebAssembly runtime (copied from
//! the npm package `scripts/setup.sh --web` installs), and `index.html`
//! (canvas pixels into the model, each image's class and scores). No
//! server-side code and nothing fetched from elsewhere: any static server
//! serves it.
//!
//! DIR appears whole or not at all: the page is written into a temporary
//! folder beside it, then renamed into place. A DIR that holds anything
//! but a previous export is refused.

use std::path::{Path, PathBuf};

use crate::{Error, Result};

/// The file that marks a folder as a previous export (and lists its files).
pub const MARKER: &str = "classify-web.json";
/// Where onnxruntime-web's files are, below the repository (`scripts/setup.sh
/// --web` puts them there), unless `ORT_WEB_DIST` says.
pub const DEFAULT_DIST: &str = "web/node_modules/onnxruntime-web/dist";
/// The runtime the page loads: the WebAssembly build alone, its glue, its binary.
pub const RUNTIME_FILES: [&str; 3] = ["ort.wasm.min.js", "ort-wasm-simd-threaded.mjs", "ort-wasm-simd-threaded.wasm"];

const PAGE: &str = include_str!("web.html");

/// onnxruntime-web's `dist` folder: `ORT_WEB_DIST`, else [`DEFAULT_DIST`]
/// in the current folder or the nearest one above it that has it (as git
/// finds its repository from a subfolder).
pub fn runtime_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("ORT_WEB_DIST") {
        return PathBuf::from(dir);
    }
    let here = std::env::current_dir().unwrap_or_default();
    here.ancestors().map(|a| a.join(DEFAULT_DIST)).find(|d| d.is_dir()).unwrap_or_else(|| PathBuf::from(DEFAULT_DIST))
}

/// What the page shows besides the model's own answers.
pub struct Page<'a> {
    pub title: &'a str,
    pub info: &'a str,
    pub classes: &'a [String],
    /// The model's output of per-class scores (`probabilities`, `scores`, `votes`).
    pub scores: &'a str,
}

/// Refuses a destination the page may not be written to, before anything
/// is built: anything but a folder that is absent, empty, or a previous
/// export; and a runtime that is not installed.
pub fn check(dir: &Path, runtime: &Path) -> Result<()> {
    match std::fs::symlink_metadata(dir) {
        Err(_) => {}
        Ok(meta) if !meta.is_dir() => {
            return Err(Error::WebDir {
                dir: dir.to_owned(),
                why: format!("is {}, not a folder", atomic::kind_of(&meta)),
            })
        }
        Ok(_) => {
            let mut entries = std::fs::read_dir(dir).map_err(|e| Error::io(dir, e))?;
            if entries.next().is_some() && !dir.join(MARKER).is_file() {
                return Err(Error::WebDir {
                    dir: dir.to_owned(),
                    why: format!("holds files and is not a previous export (no {MARKER})"),
                });
            }
        }
    }
    if let Some(missing) = RUNTIME_FILES.iter().find(|f| !runtime.join(f).is_file()) {
        return Err(Error::NoWebRuntime { dir: runtime.to_owned(), missing: missing.to_string() });
    }
    Ok(())
}

/// Writes the page: `model` (a pixels model's bytes), the runtime's files,
/// `index.html` and the marker, whole or not at all.
pub fn write(dir: &Path, runtime: &Path, model: &[u8], page: &Page) -> Result<()> {
    check(dir, runtime)?;
    let parent = dir.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    let staged =
        tempfile::Builder::new().prefix(".classify-web-").tempdir_in(parent).map_err(|e| Error::io(parent, e))?;
    let put = |name: &str, bytes: &[u8]| std::fs::write(staged.path().join(name), bytes).map_err(|e| Error::io(dir, e));
    put("model.onnx", model)?;
    for f in RUNTIME_FILES {
        std::fs::copy(runtime.join(f), staged.path().join(f)).map_err(|e| Error::io(&runtime.join(f), e))?;
    }
    let html = PAGE
        .replace("__TITLE__", &crate::report::esc(page.title))
        .replace("__INFO__", &crate::report::esc(page.info))
        .replace("__CLASSES__", &serde_json::to_string(page.classes).expect("strings").replace("</", "<\\/"))
        .replace("__SCORES__", page.scores);
    put("index.html", html.as_bytes())?;
    let mut files = vec!["index.html", "model.onnx"];
    files.extend(RUNTIME_FILES);
    let marker = serde_json::json!({"written_by": "classify export --web", "version": env!("CARGO_PKG_VERSION"), "files": files});
    put(MARKER, marker.to_string().as_bytes())?;
    // A previous export moves aside, the new one takes its name, the old one goes.
    let old = if dir.exists() {
        let aside = tempfile::Builder::new()
            .prefix(".classify-web-old-")
            .tempdir_in(parent)
            .map_err(|e| Error::io(parent, e))?;
        let aside = aside.keep();
        std::fs::remove_dir(&aside).map_err(|e| Error::io(&aside, e))?;
        std::fs::rename(dir, &aside).map_err(|e| Error::io(dir, e))?;
        Some(aside)
    } else {
        None
    };
    let staged = staged.keep();
    if let Err(e) = std::fs::rename(&staged, dir) {
        if let Some(old) = &old {
            let _ = std::fs::rename(old, dir);
        }
        let _ = std::fs::remove_dir_all(&staged);
        return Err(Error::io(dir, e));
    }
    if let Some(old) = old {
        let _ = std::fs::remove_dir_all(old);
    }
    Ok(())
}
