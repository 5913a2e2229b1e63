//! Checkpoints read in Rust, without PyTorch or MindSpore: a PyTorch
//! `torch.save` state dict (zip format, and the older pickle-stream one)
//! and a MindSpore `.ckpt` (protobuf). Both give a [`StateDict`].

pub mod mindspore;
pub mod pickle;
pub mod torch;

use std::path::{Path, PathBuf};

/// One tensor of a checkpoint, as f32 (whatever it was stored as).
#[derive(Debug, Clone, PartialEq)]
pub struct Tensor {
    pub dims: Vec<usize>,
    pub values: Vec<f32>,
}

/// Named tensors in the checkpoint's order.
#[derive(Debug, Clone, Default)]
pub struct StateDict(pub Vec<(String, Tensor)>);

impl StateDict {
    pub fn get(&self, name: &str) -> Option<&Tensor> {
        self.0.iter().find(|(n, _)| n == name).map(|(_, t)| t)
    }
    pub fn contains(&self, name: &str) -> bool {
        self.get(name).is_some()
    }
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{}: {source}", .path.display())]
    Io { path: PathBuf, source: std::io::Error },
    #[error("{}: {why}", .path.display())]
    Format { path: PathBuf, why: String },
}

/// Which reader a file needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Torch,
    MindSpore,
}

impl Kind {
    /// By the file's first bytes (a zip, or a pickle's PROTO), else by its extension.
    pub fn of(path: &Path, head: &[u8]) -> Option<Kind> {
        if head.starts_with(b"PK\x03\x04") || head.first() == Some(&0x80) {
            return Some(Kind::Torch);
        }
        match path.extension().and_then(|e| e.to_str()) {
            Some("pth" | "pt" | "bin" | "tar") => Some(Kind::Torch),
            Some("ckpt") => Some(Kind::MindSpore),
            _ => None,
        }
    }
}

pub fn read(path: &Path, kind: Kind) -> Result<StateDict, Error> {
    match kind {
        Kind::Torch => torch::read(path),
        Kind::MindSpore => mindspore::read(path),
    }
}
