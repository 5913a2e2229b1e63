//! Named pretrained weights: where each comes from, how it is verified,
//! and the cache that keeps the downloads and their conversions, so a
//! second run is offline and instant.
//!
//! The cache is `$XDG_CACHE_HOME/resnet-features`, else
//! `~/.cache/resnet-features`: `checkpoints/` holds the downloaded files
//! (each with a `.sha256` beside it, written once the file was verified),
//! `converted/<sha256 of the checkpoint>-<converter>.onnx` their ONNX
//! models. `RESNET50_BASE_URL` replaces every address up to the file name
//! (a mirror, or a local server in the tests).

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

use sha2::{Digest, Sha256};

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

/// What a download reports while it runs.
#[derive(Debug)]
pub enum Event<'a> {
    Started {
        url: &'a str,
        total: Option<u64>,
    },
    Progress {
        done: u64,
    },
    Finished,
    /// Anything else worth a line: a file reused, entries ignored.
    Note(String),
}

#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    #[error("HTTP {code} from {url}")]
    Status { code: u16, url: String },
    #[error("cannot reach {url}: {why}")]
    Unreachable { url: String, why: String },
    #[error("download of {url} broke off after {done} of {} bytes ({why})", .total.map_or("?".to_string(), |t| t.to_string()))]
    BrokeOff { url: String, done: u64, total: Option<u64>, why: String },
    #[error("download of {url} is truncated: {done} of {total} bytes")]
    Truncated { url: String, done: u64, total: u64 },
    #[error("{url}: {why}")]
    Wrong { url: String, why: String },
    #[error("{}: {source}", .path.display())]
    Io { path: PathBuf, source: std::io::Error },
}

fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .timeout_resolve(Some(Duration::from_secs(20)))
        .timeout_connect(Some(Duration::from_secs(20)))
        .timeout_recv_response(Some(Duration::from_secs(60)))
        .user_agent(concat!("resnet-features/", env!("CARGO_PKG_VERSION")))
        .build()
        .into()
}

/// Streams `url` into a hidden temporary file beside `dest` (`atomic`),
/// checks it with `verify(sha256, bytes)`, and renames it into place: a
/// failure leaves nothing at `dest`. Returns the sha256.
pub fn download(
    url: &str,
    dest: &Path,
    verify: impl Fn(&str, u64) -> Result<(), String>,
    report: &mut dyn FnMut(Event),
) -> Result<String, FetchError> {
    let io = |path: &Path| {
        let path = path.to_owned();
        move |e| FetchError::Io { path, source: e }
    };
    let mut resp = agent().get(url).call().map_err(|e| match e {
        ureq::Error::StatusCode(code) => FetchError::Status { code, url: url.to_string() },
        other => FetchError::Unreachable { url: url.to_string(), why: other.to_string() },
    })?;
    let total: Option<u64> =
        resp.headers().get("content-length").and_then(|v| v.to_str().ok()).and_then(|v| v.parse().ok());
    report(Event::Started { url, total });
    let (mut tmp, pending) = atomic::Pending::create(dest).map_err(io(dest))?;
    let mut reader = resp.body_mut().as_reader();
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    let mut done = 0u64;
    loop {
        let n = match reader.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => {
                report(Event::Finished);
                return Err(FetchError::BrokeOff { url: url.to_string(), done, total, why: e.to_string() });
            }
        };
        tmp.write_all(&buf[..n]).map_err(io(dest))?;
        h.update(&buf[..n]);
        done += n as u64;
        report(Event::Progress { done });
    }
    report(Event::Finished);
    if let Some(total) = total.filter(|&t| t != done) {
        return Err(FetchError::Truncated { url: url.to_string(), done, total });
    }
    let sha256 = hex::encode(h.finalize());
    verify(&sha256, done).map_err(|why| FetchError::Wrong { url: url.to_string(), why })?;
    pending.commit(tmp).map_err(io(dest))?;
    Ok(sha256)
}

/// Writes `bytes` to `path` whole or not at all.
pub fn write_whole(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    atomic::write_atomically(path, |f| f.write_all(bytes)).map(|_| ()).map_err(|e| match e {
        atomic::WriteError::Io(e) | atomic::WriteError::Fill(e) => e,
    })
}

/// A reporter for a command-line tool: a progress bar on stderr while a
/// download runs, notes as lines. The library itself prints nothing; a
/// binary that wants this passes it to `source::open`.
#[cfg(feature = "progress")]
pub fn stderr_reporter(prog: &'static str) -> impl FnMut(Event) {
    use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
    let mut bar: Option<ProgressBar> = None;
    move |e| match e {
        Event::Started { url, total } => {
            // Drawn only on a terminal; a failure's one line is the error.
            let b = ProgressBar::with_draw_target(total, ProgressDrawTarget::stderr());
            b.set_style(
                ProgressStyle::with_template("{msg}\n{bar:40} {bytes}/{total_bytes}  {bytes_per_sec}  eta {eta}")
                    .expect("valid template"),
            );
            b.set_message(format!("{prog}: downloading {url}"));
            bar = Some(b);
        }
        Event::Progress { done } => {
            if let Some(b) = &bar {
                b.set_position(done);
            }
        }
        Event::Finished => {
            if let Some(b) = bar.take() {
                b.finish_and_clear();
            }
        }
        Event::Note(n) => eprintln!("{prog}: {n}"),
    }
}
