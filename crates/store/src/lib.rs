//! Object storage: `s3://BUCKET/KEY` addresses for the pipeline's inputs
//! (an image folder or tar shards in a bucket) and outputs (feature files
//! and parts), on the Arrow project's `object_store`.
//!
//! Credentials and the endpoint come from the environment as every S3 tool
//! takes them (`AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`, `AWS_REGION`,
//! `AWS_ENDPOINT_URL`; plain http only with `AWS_ALLOW_HTTP=true`).
//!
//! The async runtime stays in here: callers make blocking calls, from any
//! thread. Requests retry a bounded number of times within a bounded time,
//! so an endpoint that does not answer fails the call within seconds, never
//! hangs it. An object is written whole or not at all: one PUT (S3 stores
//! nothing of a PUT that did not complete), or above [`SINGLE_PUT_MAX`] a
//! multipart upload that is completed last and aborted on any error.

use std::collections::HashMap;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use futures::StreamExt;
use object_store::aws::{AmazonS3, AmazonS3Builder, AmazonS3ConfigKey};
use object_store::path::Path as Key;
use object_store::{ClientOptions, ObjectStore, ObjectStoreExt, PutPayload, RetryConfig, WriteMultipart};

/// The one scheme read and written.
pub const SCHEME: &str = "s3://";

/// Objects up to this size are written by one PUT (S3's limit is 5 GiB).
pub const SINGLE_PUT_MAX: u64 = 4 << 30;
/// Objects fetched at once by [`Bucket::download_all`].
pub const PARALLEL_DOWNLOADS: usize = 8;
/// Parts of a multipart upload above that.
const CHUNK: usize = 64 << 20;

/// How long one request may wait for a connection, and for its answer.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
const REQUEST_TIMEOUT: Duration = Duration::from_secs(300);
/// Retries of a failed request, and the time they may take in all.
const RETRIES: usize = 3;
const RETRY_TIME: Duration = Duration::from_secs(20);

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{0}: an object-store address is s3://BUCKET/KEY")]
    BadUrl(String),
    #[error("{url}: {why}")]
    Store { url: String, why: String },
    #[error("{url}: is {size} bytes, above the limit of {max}")]
    TooLarge { url: String, size: u64, max: u64 },
    #[error("{}: {source}", .path.display())]
    Local { path: std::path::PathBuf, source: std::io::Error },
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Whether a path as typed is an object-store address.
pub fn is_url(spelled: &str) -> bool {
    spelled.starts_with(SCHEME)
}

/// An object-store address: a bucket, and a key or key prefix in it
/// (a prefix keeps its trailing `/`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Address {
    pub bucket: String,
    pub key: String,
}

impl Address {
    pub fn parse(url: &str) -> Result<Address> {
        let rest = url.strip_prefix(SCHEME).ok_or_else(|| Error::BadUrl(url.to_string()))?;
        let (bucket, key) = rest.split_once('/').unwrap_or((rest, ""));
        if bucket.is_empty() || bucket.contains(['{', '}']) {
            return Err(Error::BadUrl(url.to_string()));
        }
        Ok(Address { bucket: bucket.to_string(), key: key.to_string() })
    }

    /// The key with `name` appended below it, as a folder.
    pub fn join(&self, name: &str) -> Address {
        let sep = if self.key.is_empty() || self.key.ends_with('/') { "" } else { "/" };
        Address { bucket: self.bucket.clone(), key: format!("{}{sep}{name}", self.key) }
    }

    /// Whether the address names a folder (a prefix ending in `/`, or the bucket).
    pub fn is_folder(&self) -> bool {
        self.key.is_empty() || self.key.ends_with('/')
    }
}

impl std::fmt::Display for Address {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{SCHEME}{}/{}", self.bucket, self.key)
    }
}

/// An object listed under a prefix.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Object {
    /// The whole key.
    pub key: String,
    pub size: u64,
}

/// One bucket, opened with the environment's credentials and endpoint.
/// Opened once per bucket per process (see [`Bucket::open`]).
pub struct Bucket {
    name: String,
    store: AmazonS3,
}

impl std::fmt::Debug for Bucket {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{SCHEME}{}", self.name)
    }
}

impl PartialEq for Bucket {
    fn eq(&self, other: &Self) -> bool {
        self.name == other.name
    }
}
impl Eq for Bucket {}

fn runtime() -> &'static tokio::runtime::Runtime {
    static RUNTIME: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RUNTIME.get_or_init(|| {
        // TLS through rustls with ring, chosen once for the process.
        let _ = rustls::crypto::ring::default_provider().install_default();
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("object-store")
            .enable_all()
            .build()
            .expect("a tokio runtime starts")
    })
}

/// What the server or the connection said, on one line, and in the words
/// a person fixing it needs.
fn say(e: &object_store::Error, bucket: &str) -> String {
    let full = e.to_string();
    let has = |s: &str| full.contains(s);
    if has("NoSuchBucket") {
        return format!("bucket {bucket:?} does not exist");
    }
    // No key in the environment: object_store asked the EC2 instance
    // metadata service for a role's, and that failed (its 403 is no refusal
    // of credentials given).
    if has("169.254.169.254") || has("/latest/api/token") || has("meta-data/iam") {
        return "no credentials: AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY are not set, and no instance role answered"
            .to_string();
    }
    if has("SignatureDoesNotMatch") || has("InvalidAccessKeyId") || has("AccessDenied") || has("403 Forbidden") {
        return "access denied: the server refused these credentials (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY)"
            .to_string();
    }
    if let object_store::Error::NotFound { .. } = e {
        return "no such object".to_string();
    }
    if has("Missing bucket name") || has("Missing region") || has("Missing") && has("credentials") {
        return full;
    }
    let mut line: String = full.split_whitespace().collect::<Vec<_>>().join(" ");
    if line.len() > 400 {
        let cut = (0..=400).rev().find(|&i| line.is_char_boundary(i)).unwrap_or(0);
        line.truncate(cut);
        line.push_str("...");
    }
    if has("error sending request") || has("connect") || has("timed out") || has("Connection refused") {
        let endpoint = std::env::var("AWS_ENDPOINT_URL")
            .or_else(|_| std::env::var("AWS_ENDPOINT_URL_S3"))
            .or_else(|_| std::env::var("AWS_ENDPOINT"))
            .unwrap_or_else(|_| "AWS's".to_string());
        return format!("the endpoint ({endpoint}) cannot be reached, after {RETRIES} retries: {line}");
    }
    line
}

impl Bucket {
    /// The bucket an address names, opened once per process: later calls
    /// share its connections.
    pub fn open(address: &Address) -> Result<Arc<Bucket>> {
        static OPEN: OnceLock<Mutex<HashMap<String, Arc<Bucket>>>> = OnceLock::new();
        let mut open = OPEN.get_or_init(Default::default).lock().unwrap_or_else(|p| p.into_inner());
        if let Some(b) = open.get(&address.bucket) {
            return Ok(b.clone());
        }
        let retry = RetryConfig { max_retries: RETRIES, retry_timeout: RETRY_TIME, ..Default::default() };
        let client = ClientOptions::new().with_connect_timeout(CONNECT_TIMEOUT).with_timeout(REQUEST_TIMEOUT);
        // Timeouts first: the environment's client settings (AWS_ALLOW_HTTP)
        // go on top of them, as from_env would apply them.
        let mut builder = AmazonS3Builder::new().with_client_options(client);
        for (key, value) in std::env::vars() {
            if let Some(k) = key.strip_prefix("AWS_").and(key.to_ascii_lowercase().parse::<AmazonS3ConfigKey>().ok()) {
                builder = builder.with_config(k, value);
            }
        }
        let mut builder = builder.with_bucket_name(&address.bucket).with_retry(retry);
        // AWS's own default, where nothing names one (a local server ignores it).
        if std::env::var_os("AWS_REGION").is_none() && std::env::var_os("AWS_DEFAULT_REGION").is_none() {
            builder = builder.with_region("us-east-1");
        }
        let _ = runtime();
        let store = builder.build().map_err(|e| Error::Store {
            url: format!("{SCHEME}{}", address.bucket),
            why: e.to_string().split_whitespace().collect::<Vec<_>>().join(" "),
        })?;
        let bucket = Arc::new(Bucket { name: address.bucket.clone(), store });
        open.insert(address.bucket.clone(), bucket.clone());
        Ok(bucket)
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    fn fail(&self, key: &str) -> impl Fn(object_store::Error) -> Error + '_ {
        let url = format!("{SCHEME}{}/{key}", self.name);
        move |e| Error::Store { url: url.clone(), why: say(&e, &self.name) }
    }

    /// Every object under a prefix (a folder: `a/` lists `a/x`, not `ab`),
    /// sorted by key.
    pub fn list(&self, prefix: &str) -> Result<Vec<Object>> {
        let key = Key::from(prefix);
        let fail = self.fail(prefix);
        let mut objects = runtime()
            .block_on(async {
                let mut out = Vec::new();
                let mut stream = self.store.list(if prefix.is_empty() { None } else { Some(&key) });
                while let Some(meta) = stream.next().await {
                    let meta = meta?;
                    out.push(Object { key: meta.location.to_string(), size: meta.size });
                }
                Ok::<_, object_store::Error>(out)
            })
            .map_err(fail)?;
        objects.sort_by(|a, b| a.key.cmp(&b.key));
        Ok(objects)
    }

    /// Checks that the bucket exists and these credentials may list the
    /// folder `prefix` (one level of it): a write's check before any work,
    /// as a PUT into a missing bucket may create it where it should fail.
    pub fn check_folder(&self, prefix: &str) -> Result<()> {
        let key = Key::from(prefix);
        runtime()
            .block_on(self.store.list_with_delimiter(if prefix.is_empty() { None } else { Some(&key) }))
            .map(|_| ())
            .map_err(self.fail(prefix))
    }

    /// The object's size, or `None` where there is no such object.
    pub fn size(&self, key: &str) -> Result<Option<u64>> {
        match runtime().block_on(self.store.head(&Key::from(key))) {
            Ok(meta) => Ok(Some(meta.size)),
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(e) => Err(self.fail(key)(e)),
        }
    }

    /// The object's bytes, refused above `max_bytes` before they are read.
    pub fn read(&self, key: &str, max_bytes: u64) -> Result<Vec<u8>> {
        let fail = self.fail(key);
        runtime().block_on(async {
            let got = self.store.get(&Key::from(key)).await.map_err(&fail)?;
            let size = got.meta.size;
            if size > max_bytes {
                return Err(Error::TooLarge { url: format!("{SCHEME}{}/{key}", self.name), size, max: max_bytes });
            }
            let mut bytes = Vec::with_capacity(size as usize);
            let mut stream = got.into_stream();
            while let Some(chunk) = stream.next().await {
                let chunk = chunk.map_err(&fail)?;
                if (bytes.len() + chunk.len()) as u64 > size {
                    return Err(fail(object_store::Error::Generic {
                        store: "S3",
                        source: "the object changed while it was read".into(),
                    }));
                }
                bytes.extend_from_slice(&chunk);
            }
            Ok(bytes)
        })
    }

    /// `size` bytes of the object from `offset` (a member of a tar shard).
    pub fn read_range(&self, key: &str, offset: u64, size: u64) -> Result<Vec<u8>> {
        let bytes =
            runtime().block_on(self.store.get_range(&Key::from(key), offset..offset + size)).map_err(self.fail(key))?;
        Ok(bytes.to_vec())
    }

    /// The object as a reader that fetches it chunk by chunk as it is read:
    /// what a tar reader walks without the object ever whole in memory.
    pub fn reader(&self, key: &str) -> Result<ObjectReader> {
        let got = runtime().block_on(self.store.get(&Key::from(key))).map_err(self.fail(key))?;
        Ok(ObjectReader {
            stream: got.into_stream(),
            chunk: bytes::Bytes::new(),
            url: format!("{SCHEME}{}/{key}", self.name),
        })
    }

    /// Streams the object into a new file at `dest` (never whole in
    /// memory); returns its size.
    pub fn download(&self, key: &str, dest: &Path) -> Result<u64> {
        runtime().block_on(self.fetch_to(key, dest))
    }

    /// [`Bucket::download`] of many objects, [`PARALLEL_DOWNLOADS`] at a
    /// time: one stream seldom fills the link.
    pub fn download_all(&self, objects: &[(&str, &Path)]) -> Result<()> {
        runtime().block_on(async {
            let mut running = futures::stream::iter(objects.iter().map(|(key, dest)| self.fetch_to(key, dest)))
                .buffer_unordered(PARALLEL_DOWNLOADS);
            while let Some(done) = running.next().await {
                done?;
            }
            Ok(())
        })
    }

    async fn fetch_to(&self, key: &str, dest: &Path) -> Result<u64> {
        let fail = self.fail(key);
        let local = |e| Error::Local { path: dest.to_owned(), source: e };
        let mut file = std::fs::File::create(dest).map_err(local)?;
        let got = self.store.get(&Key::from(key)).await.map_err(&fail)?;
        let mut stream = got.into_stream();
        let mut written = 0u64;
        while let Some(chunk) = stream.next().await {
            let chunk = chunk.map_err(&fail)?;
            file.write_all(&chunk).map_err(local)?;
            written += chunk.len() as u64;
        }
        file.sync_all().map_err(local)?;
        Ok(written)
    }

    /// Writes the file at `src` to `key`, whole or not at all: the object
    /// appears only once every byte is stored, and a failed upload leaves
    /// nothing (a multipart one is aborted).
    pub fn upload(&self, src: &Path, key: &str) -> Result<()> {
        let fail = self.fail(key);
        let local = |e| Error::Local { path: src.to_owned(), source: e };
        let file = std::fs::File::open(src).map_err(local)?;
        let size = file.metadata().map_err(local)?.len();
        let key = Key::from(key);
        if size <= SINGLE_PUT_MAX {
            // Mapped, not read: a PUT's retries send the same pages again.
            let payload = if size == 0 {
                PutPayload::new()
            } else {
                // SAFETY: the file is this process's own finished output;
                // nothing writes to it while it is mapped.
                let map = unsafe { memmap2::Mmap::map(&file) }.map_err(local)?;
                PutPayload::from(bytes::Bytes::from_owner(map))
            };
            runtime().block_on(self.store.put(&key, payload)).map_err(fail)?;
            return Ok(());
        }
        runtime().block_on(async {
            let upload = self.store.put_multipart(&key).await.map_err(&fail)?;
            let mut writer = WriteMultipart::new_with_chunk_size(upload, CHUNK);
            let sent = async {
                let mut file = tokio::fs::File::from_std(file);
                let mut buf = vec![0u8; CHUNK];
                loop {
                    use tokio::io::AsyncReadExt;
                    let n = file.read(&mut buf).await.map_err(local)?;
                    if n == 0 {
                        break;
                    }
                    writer.wait_for_capacity(2).await.map_err(&fail)?;
                    writer.write(&buf[..n]);
                }
                Ok::<_, Error>(())
            };
            match sent.await {
                Ok(()) => writer.finish().await.map(|_| ()).map_err(&fail),
                Err(e) => {
                    let _ = writer.abort().await;
                    Err(e)
                }
            }
        })
    }

    /// Removes the object (no error where there is none).
    pub fn delete(&self, key: &str) -> Result<()> {
        match runtime().block_on(self.store.delete(&Key::from(key))) {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(e) => Err(self.fail(key)(e)),
        }
    }
}

/// An object read as a stream (see [`Bucket::reader`]).
pub struct ObjectReader {
    stream: futures::stream::BoxStream<'static, object_store::Result<bytes::Bytes>>,
    chunk: bytes::Bytes,
    url: String,
}

impl std::io::Read for ObjectReader {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        while self.chunk.is_empty() {
            match runtime().block_on(self.stream.next()) {
                None => return Ok(0),
                Some(Ok(chunk)) => self.chunk = chunk,
                Some(Err(e)) => return Err(std::io::Error::other(format!("{}: {}", self.url, say(&e, "")))),
            }
        }
        let n = buf.len().min(self.chunk.len());
        buf[..n].copy_from_slice(&self.chunk.split_to(n));
        Ok(n)
    }
}

/// A local copy of an object or of the objects under a prefix (a folder of
/// feature-file parts), in a temporary folder removed when this is dropped:
/// what reads local files reads it unchanged.
pub struct Fetched {
    _dir: tempfile::TempDir,
    /// The copy: a file, or a folder holding the objects' file names.
    pub path: std::path::PathBuf,
}

/// Copies `address` here: the object it names, or, for a folder (a key
/// ending in `/`, or one with no object of its own), every object directly
/// below it whose name `wanted` accepts.
pub fn fetch(address: &Address, wanted: impl Fn(&str) -> bool) -> Result<Fetched> {
    let bucket = Bucket::open(address)?;
    let dir = tempfile::tempdir().map_err(|e| Error::Local { path: std::env::temp_dir(), source: e })?;
    let name = |key: &str| key.rsplit('/').next().unwrap_or(key).to_string();
    if !address.is_folder() && bucket.size(&address.key)?.is_some() {
        let path = dir.path().join(name(&address.key));
        bucket.download(&address.key, &path)?;
        return Ok(Fetched { _dir: dir, path });
    }
    let folder = address.join("");
    let prefix = folder.key.trim_end_matches('/');
    let objects = bucket.list(prefix)?;
    let below: Vec<&Object> = objects
        .iter()
        .filter(|o| o.key.strip_prefix(prefix).map(|r| r.trim_start_matches('/')).is_some_and(|r| !r.contains('/')))
        .filter(|o| wanted(&name(&o.key)))
        .collect();
    if below.is_empty() {
        return Err(Error::Store { url: address.to_string(), why: "no such object, nor objects below it".into() });
    }
    let path = dir.path().join("objects");
    std::fs::create_dir(&path).map_err(|e| Error::Local { path: path.clone(), source: e })?;
    let dests: Vec<PathBuf> = below.iter().map(|o| path.join(name(&o.key))).collect();
    let pairs: Vec<(&str, &Path)> = below.iter().zip(&dests).map(|(o, d)| (o.key.as_str(), d.as_path())).collect();
    bucket.download_all(&pairs)?;
    Ok(Fetched { _dir: dir, path })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failed_instance_role_lookup_says_there_are_no_credentials() {
        let e = object_store::Error::Generic {
            store: "S3",
            source: "Error performing PUT http://169.254.169.254/latest/api/token in 1s - Client error with status 403 Forbidden".into(),
        };
        assert!(say(&e, "b").starts_with("no credentials: AWS_ACCESS_KEY_ID"), "{}", say(&e, "b"));
        let refused = object_store::Error::Generic {
            store: "S3",
            source: "Client error with status 403 Forbidden: <Code>SignatureDoesNotMatch</Code>".into(),
        };
        assert!(say(&refused, "b").starts_with("access denied"), "{}", say(&refused, "b"));
    }

    #[test]
    fn addresses_parse_into_bucket_and_key() {
        let a = Address::parse("s3://b/features/train/").unwrap();
        assert_eq!((a.bucket.as_str(), a.key.as_str(), a.is_folder()), ("b", "features/train/", true));
        assert_eq!(
            a.join("part-00000-of-00001.parquet").to_string(),
            "s3://b/features/train/part-00000-of-00001.parquet"
        );
        let f = Address::parse("s3://b/x.parquet").unwrap();
        assert!(!f.is_folder());
        assert_eq!(f.join("y").key, "x.parquet/y");
        assert!(Address::parse("s3://b").unwrap().is_folder());
        for bad in ["s3:///k", "b/k", "s3://{a,b}/k", "s3://"] {
            assert!(matches!(Address::parse(bad), Err(Error::BadUrl(_))), "{bad}");
        }
    }
}
