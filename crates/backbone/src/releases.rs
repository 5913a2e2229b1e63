//! Named pretrained weights: the releases `--model` can name, where each
//! comes from, and how a download is known to be the release.
//! `RESNET50_BASE_URL` replaces every address up to the file name (a
//! mirror, or a local server in the tests).

use crate::checkpoint::Kind;
use crate::resnet::Padding;

/// What a file is, to be turned into a model.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Checkpoint(Kind),
    Onnx,
}

/// How a download is known to be the release.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Check {
    /// torchvision publishes the first 8 hex digits of the sha256 (in the
    /// file's name) and the size in MiB to three decimals.
    PrefixAndMib { sha256_prefix: &'static str, mib: f64 },
    /// The full sha256 and the exact size.
    Exact { sha256: &'static str, bytes: u64 },
    /// Nothing is published: the sha256 is recorded on the first download.
    Unpublished,
}

/// One set of named weights.
#[derive(Debug, PartialEq)]
pub struct Named {
    /// What `--model` takes: `torchvision:IMAGENET1K_V1`.
    pub name: &'static str,
    pub url: &'static str,
    pub format: Format,
    pub check: Check,
    /// In words, recorded in the model and the feature file.
    pub weights: &'static str,
    pub padding: Padding,
    pub resize: u32,
    pub crop: u32,
    pub license: &'static str,
}

pub const NAMED: [Named; 4] = [
    Named {
        name: "torchvision:IMAGENET1K_V1",
        url: "https://download.pytorch.org/models/resnet50-0676ba61.pth",
        format: Format::Checkpoint(Kind::Torch),
        check: Check::PrefixAndMib { sha256_prefix: "0676ba61", mib: 97.781 },
        weights: "torchvision ResNet50_Weights.IMAGENET1K_V1",
        padding: Padding::Symmetric,
        resize: 256,
        crop: 224,
        license: "BSD-3-Clause",
    },
    Named {
        name: "torchvision:IMAGENET1K_V2",
        url: "https://download.pytorch.org/models/resnet50-11ad3fa6.pth",
        format: Format::Checkpoint(Kind::Torch),
        check: Check::PrefixAndMib { sha256_prefix: "11ad3fa6", mib: 97.79 },
        weights: "torchvision ResNet50_Weights.IMAGENET1K_V2",
        padding: Padding::Symmetric,
        resize: 232,
        crop: 224,
        license: "BSD-3-Clause",
    },
    Named {
        name: "mindspore:resnet50_224_new",
        url: "https://mindspore-website.obs.cn-north-4.myhuaweicloud.com/notebook/models/application/resnet50_224_new.ckpt",
        format: Format::Checkpoint(Kind::MindSpore),
        check: Check::Unpublished,
        weights: "MindSpore ResNet50 transfer learning tutorial, resnet50_224_new.ckpt",
        padding: Padding::Same,
        resize: 256,
        crop: 224,
        license: "Apache-2.0",
    },
    Named {
        name: "onnx-zoo:resnet50-v1-12",
        url: "https://huggingface.co/onnxmodelzoo/resnet50-v1-12/resolve/1f95315d8bd3b3ca2ceabe54d274e0cdf5a83bbe/resnet50-v1-12.onnx",
        format: Format::Onnx,
        check: Check::Exact { sha256: "3f03fdef724b22947eed826f1eef1dc5c34151bb4c37d634f1db89dfa2dd1526", bytes: 102_576_593 },
        weights: "ONNX model zoo resnet50-v1-12 (MXNet Gluon ResNet v1)",
        padding: Padding::Symmetric,
        resize: 256,
        crop: 224,
        license: "Apache-2.0",
    },
];

impl Named {
    pub fn find(name: &str) -> Option<&'static Named> {
        NAMED.iter().find(|n| n.name == name)
    }

    /// The release's file name (the last part of its address).
    pub fn file_name(&self) -> &'static str {
        self.url.rsplit('/').next().expect("an address has a last part")
    }

    /// Where it is fetched from: its address, or the mirror's.
    pub fn url(&self) -> String {
        match std::env::var("RESNET50_BASE_URL") {
            Ok(base) if !base.is_empty() => format!("{}/{}", base.trim_end_matches('/'), self.file_name()),
            _ => self.url.to_string(),
        }
    }

    /// Whether a file of this sha256 and size is this release.
    pub fn verify(&self, sha256: &str, bytes: u64) -> Result<(), String> {
        match self.check {
            Check::PrefixAndMib { sha256_prefix, mib } => {
                let got = bytes as f64 / (1u64 << 20) as f64;
                if (got - mib).abs() > 0.001 {
                    return Err(format!("{bytes} bytes ({got:.3} MiB), not the published {mib} MiB"));
                }
                if !sha256.starts_with(sha256_prefix) {
                    return Err(format!("sha256 {sha256} does not start with {sha256_prefix}, as the file name says"));
                }
            }
            Check::Exact { sha256: want, bytes: size } => {
                if bytes != size {
                    return Err(format!("{bytes} bytes, not the published {size}"));
                }
                if sha256 != want {
                    return Err(format!("sha256 {sha256} is not the published {want}"));
                }
            }
            Check::Unpublished => {}
        }
        Ok(())
    }

    /// The release a file of this sha256 is, by its published hash.
    pub fn by_sha256(sha256: &str) -> Option<&'static Named> {
        NAMED.iter().find(|n| match n.check {
            Check::PrefixAndMib { sha256_prefix, .. } => sha256.starts_with(sha256_prefix),
            Check::Exact { sha256: s, .. } => s == sha256,
            Check::Unpublished => false,
        })
    }
}
