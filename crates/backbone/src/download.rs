//! A download streamed to a file that appears whole and verified, or not
//! at all; it reports through events and prints nothing.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

use sha2::{Digest, Sha256};

/// What a download reports while it runs.
#[derive(Debug)]
pub enum DownloadEvent<'a> {
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
    report: &mut dyn FnMut(DownloadEvent),
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
    report(DownloadEvent::Started { url, total });
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
                report(DownloadEvent::Finished);
                return Err(FetchError::BrokeOff { url: url.to_string(), done, total, why: e.to_string() });
            }
        };
        tmp.write_all(&buf[..n]).map_err(io(dest))?;
        h.update(&buf[..n]);
        done += n as u64;
        report(DownloadEvent::Progress { done });
    }
    report(DownloadEvent::Finished);
    if let Some(total) = total.filter(|&t| t != done) {
        return Err(FetchError::Truncated { url: url.to_string(), done, total });
    }
    let sha256 = hex::encode(h.finalize());
    verify(&sha256, done).map_err(|why| FetchError::Wrong { url: url.to_string(), why })?;
    pending.commit(tmp).map_err(io(dest))?;
    Ok(sha256)
}
