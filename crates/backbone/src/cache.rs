//! The cache that keeps downloads and what was made of them, so a second
//! run is offline and instant.
//!
//! The cache is `$XDG_CACHE_HOME/resnet-features`, else
//! `~/.cache/resnet-features`: `checkpoints/` holds the downloaded files
//! (each with a `.sha256` beside it, written once the file was verified),
//! `converted/<sha256 of the checkpoint>-<converter>.onnx` their ONNX
//! models, `quantized/<key>.onnx` the int8 models `extract` made.

use std::path::PathBuf;

/// The cache folder.
#[derive(Debug, Clone)]
pub struct Cache(pub PathBuf);

impl Cache {
    /// `$XDG_CACHE_HOME/resnet-features`, else `~/.cache/resnet-features`.
    pub fn default_location() -> Option<Cache> {
        let base = match std::env::var_os("XDG_CACHE_HOME").filter(|v| !v.is_empty()) {
            Some(x) => PathBuf::from(x),
            None => PathBuf::from(std::env::var_os("HOME").filter(|v| !v.is_empty())?).join(".cache"),
        };
        Some(Cache(base.join("resnet-features")))
    }

    /// An int8 model (`extract --precision int8`), by the hash of what made it.
    pub fn quantized(&self, key: &str) -> PathBuf {
        self.0.join("quantized").join(format!("{key}.onnx"))
    }

    pub fn checkpoint(&self, file: &str) -> PathBuf {
        self.0.join("checkpoints").join(file)
    }

    /// The conversion of the checkpoint of this sha256, by this converter.
    pub fn converted(&self, sha256: &str) -> PathBuf {
        self.0.join("converted").join(format!("{sha256}-{}.onnx", CONVERTER))
    }
}

/// Changes whenever the conversion would write other bytes: a cached
/// conversion by another version is not reused.
pub const CONVERTER: &str = concat!("v", env!("CARGO_PKG_VERSION"), "-1");
