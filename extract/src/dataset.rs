//! The images of a run: a folder, `<root>/<class>/<image>`, as
//! torchvision's ImageFolder reads it, plus unlabeled images directly under
//! the root; or webdataset tar shards (a `.tar`, a folder of them, a brace
//! range `shards/{00000..00099}.tar`), labelled by `--label-from`; or
//! either of these in a bucket (`s3://bucket/prefix/`).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use images::webdataset::{self, Sample};
use images::Location;

pub use images::EXTENSIONS;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("image folder {0} does not exist")]
    Missing(PathBuf),
    #[error("{0} is not a folder")]
    NotAFolder(PathBuf),
    #[error("{path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },
    #[error("no images found under {0} (expected <root>/<class>/<image> with extensions {exts})", exts = EXTENSIONS.join(", "))]
    Empty(PathBuf),
    #[error("{}: {why}", .path.display())]
    Shard { path: PathBuf, why: String },
    #[error("{range}: shard {} does not exist", .missing.display())]
    MissingShard { range: String, missing: PathBuf },
    #[error("{0}: a brace range must be {{FIRST..LAST}} of numbers or {{a,b,c}}, naming at most a million shards")]
    BadRange(String),
    #[error("{} and {} are in two folders: the shards of one run share a folder (rows name a shard by its file name)", .first.display(), .other.display())]
    ShardsApart { first: PathBuf, other: PathBuf },
    #[error("no sample of {0} has an image member (extensions {exts})", exts = EXTENSIONS.join(", "))]
    NoSamples(PathBuf),
    #[error("--label-from {from}: no sample has {what} (the first: {first})")]
    NoLabels { from: String, what: String, first: String },
    #[error(transparent)]
    Store(#[from] store::Error),
    #[error("{range}: shard {missing} does not exist")]
    MissingObject { range: String, missing: String },
    #[error("{0}: no images and no tar shards below it (expected <prefix>/<class>/<image> or <prefix>/<shard>.tar)")]
    EmptyPrefix(String),
    #[error("the tar shards to read take {need} bytes, more than the {free} free in {} (TMPDIR, where they are copied): point TMPDIR at a larger disk", .dir.display())]
    SpoolFull { need: u64, free: u64, dir: PathBuf },
    #[error("--class-map: sample {row} has the label {label:?}, which the class map does not list")]
    NotInClassMap { label: String, row: String },
    #[error("--class-map is for tar shards, whose labels come from their members; the classes of {0} are its folders")]
    ClassMapForFolder(String),
}

/// How tar samples are labelled: where from, and in which class list.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Labels {
    pub from: LabelFrom,
    /// `--class-map`: the classes in index order. Without it the classes
    /// are the labels the samples have, sorted.
    pub class_map: Option<Vec<String>>,
}

impl Labels {
    /// Whether a task's classes are known without listing the shards of
    /// the others: then a sharded run splits by whole tar shards.
    fn known_in_advance(&self) -> bool {
        self.class_map.is_some() || self.from == LabelFrom::None
    }
}

/// A task's share of a sharded run: task `index` of `count`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Split {
    pub index: usize,
    pub count: usize,
}

/// A task's whole tar shards, where `split` takes some: a contiguous range
/// of the shards in name order, and its record for the part's footer.
fn split_shards<T>(
    mut shards: Vec<T>,
    name: impl Fn(&T) -> String,
    labels: &Labels,
    split: Option<Split>,
) -> (Vec<T>, Option<featurefile::shards::TarShards>) {
    let Some(split) = split.filter(|_| labels.known_in_advance()) else { return (shards, None) };
    let total_shards = shards.len();
    let mine: Vec<T> = shards.drain(featurefile::shards::range(total_shards, split.index, split.count)).collect();
    let record = featurefile::shards::TarShards {
        first: mine.first().map(&name),
        last: mine.last().map(&name),
        shards: mine.len(),
        total_shards,
    };
    (mine, Some(record))
}

/// Where a tar sample's label comes from (`--label-from`).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum LabelFrom {
    /// The `.cls` member where samples have one, else the first folder of
    /// the member path inside the tar, else none.
    #[default]
    Auto,
    /// webdataset's `.cls` member: a class index or a name.
    Cls,
    /// The `.txt` member.
    Txt,
    /// A field of the `.json` member (img2dataset's additional columns).
    Json(String),
    /// The first folder of the member path inside the tar (timm's ImageTar).
    Folder,
    None,
}

impl LabelFrom {
    pub const NAMES: &'static [&'static str] = &["auto", "cls", "txt", "json:FIELD", "folder", "none"];
}

impl std::str::FromStr for LabelFrom {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        Ok(match s {
            "auto" => LabelFrom::Auto,
            "cls" => LabelFrom::Cls,
            "txt" => LabelFrom::Txt,
            "folder" => LabelFrom::Folder,
            "none" => LabelFrom::None,
            _ => match s.strip_prefix("json:") {
                Some(field) if !field.is_empty() => LabelFrom::Json(field.to_string()),
                _ => return Err(format!("{s:?} is not one of {}", LabelFrom::NAMES.join(", "))),
            },
        })
    }
}

impl std::fmt::Display for LabelFrom {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            LabelFrom::Auto => f.write_str("auto"),
            LabelFrom::Cls => f.write_str("cls"),
            LabelFrom::Txt => f.write_str("txt"),
            LabelFrom::Json(field) => write!(f, "json:{field}"),
            LabelFrom::Folder => f.write_str("folder"),
            LabelFrom::None => f.write_str("none"),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// Relative to the root, `/`-separated: the `path` column. For a tar
    /// sample, `<shard file name>/<key>.<ext>`.
    pub rel: String,
    /// Where its bytes are.
    pub at: Location,
    /// Index into the class list; `None` for an image directly under the root.
    pub label: Option<i32>,
}

#[derive(Debug, Clone)]
pub struct Dataset {
    /// Absolute.
    pub root: PathBuf,
    /// Class folder names (spelled as `path` is: `featurefile::paths`),
    /// sorted: their positions are the class indices.
    pub classes: Vec<String>,
    /// Sorted by `rel`.
    pub entries: Vec<Entry>,
    /// What the walk met worth saying: a folder reached a second time (a
    /// link loop, two links to one folder), walked once.
    pub notes: Vec<String>,
    /// What could not be listed, by the name a row would have had: a tar
    /// shard cut short or damaged (its samples before the break are listed).
    pub broken: Vec<(String, String)>,
    /// Where tar shards from a bucket were copied, for as long as the run
    /// reads them.
    pub spool: Option<Arc<tempfile::TempDir>>,
    /// A task of a sharded run that listed only its own whole tar shards
    /// ([`open`] with a `Split`): which ones. `None`: the whole list.
    pub tar_split: Option<featurefile::shards::TarShards>,
}

fn hidden(name: &std::ffi::OsStr) -> bool {
    name.as_encoded_bytes().first() == Some(&b'.')
}

/// Whether a file's extension is an image's (the name need not be UTF-8).
pub fn is_image(path: &Path) -> bool {
    path.extension().is_some_and(|e| {
        let e = e.as_encoded_bytes();
        EXTENSIONS.iter().any(|x| x.as_bytes().eq_ignore_ascii_case(e))
    })
}

/// What tells a second visit of a folder: its device and inode; where
/// there are none, its path with every link resolved.
#[cfg(unix)]
type FolderId = (u64, u64);
#[cfg(not(unix))]
type FolderId = PathBuf;

/// What a folder holds, by what its entries are once links are followed.
enum Item {
    /// A folder, with the identity that tells a second visit.
    Folder(PathBuf, FolderId),
    /// Anything else, a dangling link included: whether it is an image the
    /// read decides, and names it when it is not a regular file.
    File(PathBuf),
}

#[cfg(unix)]
fn folder_id(_path: &Path, meta: &std::fs::Metadata) -> FolderId {
    use std::os::unix::fs::MetadataExt;
    (meta.dev(), meta.ino())
}

#[cfg(not(unix))]
fn folder_id(path: &Path, _meta: &std::fs::Metadata) -> FolderId {
    path.canonicalize().unwrap_or_else(|_| path.to_owned())
}

/// Lists a folder's non-hidden entries, following symbolic links. Nothing
/// is opened but folders: a FIFO or a device is only looked at.
fn list(dir: &Path) -> Result<Vec<Item>, Error> {
    let io = |e| Error::Io { path: dir.to_owned(), source: e };
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(io)? {
        let entry = entry.map_err(io)?;
        if hidden(&entry.file_name()) {
            continue;
        }
        let path = entry.path();
        match std::fs::metadata(&path) {
            Ok(meta) if meta.is_dir() => {
                let id = folder_id(&path, &meta);
                out.push(Item::Folder(path, id))
            }
            _ => out.push(Item::File(path)),
        }
    }
    Ok(out)
}

pub fn scan(root: &Path) -> Result<Dataset, Error> {
    if !root.exists() {
        return Err(Error::Missing(root.to_owned()));
    }
    if !root.is_dir() {
        return Err(Error::NotAFolder(root.to_owned()));
    }
    let root = root.canonicalize().map_err(|e| Error::Io { path: root.to_owned(), source: e })?;
    let root_meta = std::fs::metadata(&root).map_err(|e| Error::Io { path: root.clone(), source: e })?;
    let mut seen = std::collections::HashSet::from([folder_id(&root, &root_meta)]);
    let mut notes = Vec::new();
    let spell = |p: &Path| featurefile::paths::spell(p.strip_prefix(&root).expect("under the root"));
    let mut once = |path: &Path, id: FolderId, notes: &mut Vec<String>| {
        let first = seen.insert(id);
        if !first {
            notes.push(format!(
                "{} is a folder already walked (a link loop, or a second link to it): walked once",
                spell(path)
            ));
        }
        first
    };

    let top = list(&root)?;
    let mut classes: Vec<String> = Vec::new();
    let mut folders = Vec::new();
    let mut entries = Vec::new();
    for item in top {
        match item {
            Item::Folder(path, id) => {
                let name = spell(&path);
                if once(&path, id, &mut notes) {
                    folders.push((path, name.clone()));
                }
                classes.push(name);
            }
            Item::File(path) if is_image(&path) => {
                entries.push(Entry { rel: spell(&path), at: Location::File(path), label: None })
            }
            Item::File(_) => {}
        }
    }
    classes.sort();
    for (path, name) in folders {
        let label = classes.iter().position(|c| *c == name).expect("listed above") as i32;
        // Nested folders inside a class count for that class.
        let mut stack = vec![path];
        while let Some(dir) = stack.pop() {
            for item in list(&dir)? {
                match item {
                    Item::Folder(p, id) => {
                        if once(&p, id, &mut notes) {
                            stack.push(p);
                        }
                    }
                    Item::File(p) if is_image(&p) => {
                        entries.push(Entry { rel: spell(&p), at: Location::File(p), label: Some(label) })
                    }
                    Item::File(_) => {}
                }
            }
        }
    }
    if entries.is_empty() {
        return Err(Error::Empty(root));
    }
    entries.sort_by(|a, b| a.rel.cmp(&b.rel));
    notes.sort();
    Ok(Dataset { root, classes, entries, notes, broken: Vec::new(), spool: None, tar_split: None })
}

/// The images `--images` names: tar shards where it names them (a `.tar`
/// file, a brace range, a folder holding `.tar` files and no folder or image),
/// labelled as `labels` says; else an image folder ([`scan`]). A task of a
/// sharded run (`split`) whose classes are known in advance (a class map,
/// or no labels) lists only its own whole tar shards.
pub fn open(images: &Path, labels: &Labels, split: Option<Split>) -> Result<Dataset, Error> {
    let spelled = images.to_string_lossy();
    if store::is_url(&spelled) {
        return open_bucket(&spelled, labels, split);
    }
    // A path that exists is itself, braces in its name or not.
    let shards = if spelled.contains('{') && !images.exists() {
        expand_braces(&spelled)?
    } else if images.is_file() {
        vec![images.to_owned()]
    } else if let Some(shards) = shard_folder(images)? {
        shards
    } else {
        if labels.class_map.is_some() {
            return Err(Error::ClassMapForFolder(spelled.into_owned()));
        }
        return scan(images);
    };
    // Rows name a shard by its file name under one root: the shards share a folder.
    let folder = |p: &PathBuf| p.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new(".")).to_owned();
    if let Some(other) = shards.iter().find(|p| folder(p) != folder(&shards[0])) {
        return Err(Error::ShardsApart { first: shards[0].clone(), other: other.clone() });
    }
    let root = folder(&shards[0]);
    let root = root.canonicalize().map_err(|e| Error::Io { path: root.clone(), source: e })?;
    let file_name = |p: &PathBuf| p.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let (mine, tar_split) = split_shards(shards, file_name, labels, split);
    scan_shards(&mine, root, images, labels, tar_split)
}

/// A folder's `.tar` files, sorted, where it holds some, and no folder and
/// no image.
fn shard_folder(dir: &Path) -> Result<Option<Vec<PathBuf>>, Error> {
    if !dir.is_dir() {
        return Ok(None);
    }
    let items = list(dir)?;
    // Images beside the tars, or class folders: an image folder, whose tars are no images.
    if items.iter().any(|i| matches!(i, Item::Folder(..)) || matches!(i, Item::File(p) if is_image(p))) {
        return Ok(None);
    }
    let mut tars: Vec<PathBuf> = items
        .into_iter()
        .filter_map(|i| match i {
            Item::File(p) if webdataset::is_shard_name(&p) => Some(p),
            _ => None,
        })
        .collect();
    tars.sort();
    Ok((!tars.is_empty()).then_some(tars))
}

/// `s3://bucket/prefix/` as [`open`] reads a folder: tar shards where the
/// address is a `.tar` object, a brace range of them, or a prefix whose
/// objects are all `.tar`; else `<prefix>/<class>/<image>` objects, read
/// where they are. Shards are copied to a local spool (streamed, never
/// whole in memory) and read as local shards; rows and labels are theirs.
fn open_bucket(url: &str, labels: &Labels, split: Option<Split>) -> Result<Dataset, Error> {
    let at = store::Address::parse(url)?;
    let bucket = store::Bucket::open(&at)?;
    let (folder, shards): (String, Vec<store::Object>) = if at.key.contains('{') {
        let names = brace_names(&at.key)?;
        let folder = names[0].rsplit_once('/').map_or("", |(f, _)| f).to_string();
        let listed = bucket.list(&folder)?;
        let mut found = Vec::with_capacity(names.len());
        for name in &names {
            match listed.binary_search_by(|o| o.key.as_str().cmp(name)) {
                Ok(i) => found.push(listed[i].clone()),
                Err(_) => {
                    return Err(Error::MissingObject {
                        range: url.to_string(),
                        missing: format!("{}{}/{name}", store::SCHEME, at.bucket),
                    })
                }
            }
        }
        (folder, found)
    } else if !at.is_folder() && webdataset::is_shard_name(Path::new(&at.key)) {
        let Some(size) = bucket.size(&at.key)? else {
            return Err(Error::MissingObject { range: url.to_string(), missing: url.to_string() });
        };
        let folder = at.key.rsplit_once('/').map_or("", |(f, _)| f).to_string();
        (folder, vec![store::Object { key: at.key.clone(), size }])
    } else {
        let prefix = at.key.trim_end_matches('/').to_string();
        let listed = bucket.list(&prefix)?;
        let below = |key: &str| key.strip_prefix(&prefix).map(|r| r.trim_start_matches('/').to_string());
        let visible: Vec<(String, &store::Object)> = listed
            .iter()
            .filter_map(|o| below(&o.key).map(|r| (r, o)))
            .filter(|(r, _)| !r.split('/').any(|part| part.starts_with('.')))
            .collect();
        let all_shards = !visible.is_empty()
            && visible.iter().all(|(r, _)| !r.contains('/') && webdataset::is_shard_name(Path::new(r)));
        if all_shards {
            (prefix, visible.iter().map(|(_, o)| (*o).clone()).collect())
        } else if labels.class_map.is_some() {
            return Err(Error::ClassMapForFolder(url.to_string()));
        } else {
            return bucket_folder(url, &bucket, visible);
        }
    };
    let key_name = |o: &store::Object| o.key.rsplit('/').next().unwrap_or(&o.key).to_string();
    let (shards, tar_split) = split_shards(shards, key_name, labels, split);
    let spool = Arc::new(
        tempfile::Builder::new()
            .prefix("extract-shards-")
            .tempdir()
            .map_err(|e| Error::Io { path: std::env::temp_dir(), source: e })?,
    );
    // A disk the shards do not fit on fails now, not half-way through a download.
    let need: u64 = shards.iter().map(|o| o.size).sum();
    if let Ok(fs) = rustix::fs::statvfs(spool.path()) {
        let free = fs.f_bavail.saturating_mul(fs.f_frsize);
        if need > free {
            return Err(Error::SpoolFull { need, free, dir: spool.path().parent().unwrap_or(spool.path()).to_owned() });
        }
    }
    let local: Vec<PathBuf> = shards.iter().map(|o| spool.path().join(key_name(o))).collect();
    let pairs: Vec<(&str, &Path)> = shards.iter().zip(&local).map(|(o, p)| (o.key.as_str(), p.as_path())).collect();
    bucket.download_all(&pairs)?;
    // The spool's paths mean nothing to the user: errors name the objects.
    let root = spool.path().to_owned();
    let mut data = scan_shards(&local, root, Path::new(url), labels, tar_split).map_err(|e| match e {
        Error::Shard { path, why } => {
            let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
            let shard = shards.iter().find(|o| key_name(o) == name).map(|o| o.key.clone()).unwrap_or(name);
            Error::Shard { path: PathBuf::from(format!("{}{}/{shard}", store::SCHEME, at.bucket)), why }
        }
        e => e,
    })?;
    let folder = if folder.is_empty() { String::new() } else { format!("{folder}/") };
    data.root = PathBuf::from(format!("{}{}/{folder}", store::SCHEME, at.bucket));
    data.spool = Some(spool);
    Ok(data)
}

/// Objects below a prefix as an image folder: the first part of the key
/// below the prefix is the class, an image directly below is unlabeled.
fn bucket_folder(
    url: &str,
    bucket: &Arc<store::Bucket>,
    objects: Vec<(String, &store::Object)>,
) -> Result<Dataset, Error> {
    let images: Vec<(String, &store::Object)> =
        objects.into_iter().filter(|(r, _)| is_image(Path::new(r.as_str()))).collect();
    if images.is_empty() {
        return Err(Error::EmptyPrefix(url.to_string()));
    }
    let mut classes: Vec<String> =
        images.iter().filter_map(|(r, _)| r.split_once('/').map(|(c, _)| c.to_string())).collect();
    classes.sort();
    classes.dedup();
    let mut entries: Vec<Entry> = images
        .into_iter()
        .map(|(rel, o)| {
            let label = rel
                .split_once('/')
                .map(|(c, _)| classes.binary_search_by(|x| x.as_str().cmp(c)).expect("listed") as i32);
            Entry { at: Location::Object { bucket: bucket.clone(), key: o.key.clone() }, label, rel }
        })
        .collect();
    entries.sort_by(|a, b| a.rel.cmp(&b.rel));
    let root = if url.ends_with('/') { url.to_string() } else { format!("{url}/") };
    Ok(Dataset {
        root: PathBuf::from(root),
        classes,
        entries,
        notes: vec![format!("objects in a bucket, read where they are: {url}")],
        broken: Vec::new(),
        spool: None,
        tar_split: None,
    })
}

/// The most shards a brace pattern may name: a million shards is a typo,
/// not a dataset (img2dataset's largest runs write tens of thousands).
const MAX_SHARDS: usize = 1_000_000;

/// The shard names a brace pattern spells (`s/{000..003}.tar`,
/// `s/{a,b}.tar`), each of which must exist.
fn expand_braces(pattern: &str) -> Result<Vec<PathBuf>, Error> {
    let paths: Vec<PathBuf> = brace_names(pattern)?.into_iter().map(PathBuf::from).collect();
    if let Some(missing) = paths.iter().find(|p| !p.is_file()) {
        return Err(Error::MissingShard { range: pattern.to_string(), missing: missing.clone() });
    }
    Ok(paths)
}

/// The names a brace pattern spells, in its order.
fn brace_names(pattern: &str) -> Result<Vec<String>, Error> {
    let bad = || Error::BadRange(pattern.to_string());
    let mut names = vec![String::new()];
    let mut rest = pattern;
    while let Some(open) = rest.find('{') {
        let close = rest[open..].find('}').ok_or_else(bad)? + open;
        let (head, body) = (&rest[..open], &rest[open + 1..close]);
        let choices: Vec<String> = match body.split_once("..") {
            Some((a, b)) => {
                let (x, y) = (a.parse::<u64>().map_err(|_| bad())?, b.parse::<u64>().map_err(|_| bad())?);
                if y < x || y - x >= MAX_SHARDS as u64 {
                    return Err(bad());
                }
                (x..=y).map(|v| format!("{v:0width$}", width = a.len())).collect()
            }
            None if body.contains(',') => body.split(',').map(str::to_string).collect(),
            None => return Err(bad()),
        };
        // Ranges multiply: a product past what one range may hold is a typo too.
        if names.len().saturating_mul(choices.len()) > MAX_SHARDS {
            return Err(bad());
        }
        names = names.iter().flat_map(|n| choices.iter().map(move |c| format!("{n}{head}{c}"))).collect();
        rest = &rest[close + 1..];
    }
    Ok(names.into_iter().map(|n| n + rest).collect())
}

/// Lists each shard's samples (the shards are in `root`), in shard order
/// and in each shard's order. A task's share of whole shards (`tar_split`)
/// may hold none.
fn scan_shards(
    shards: &[PathBuf],
    root: PathBuf,
    spec: &Path,
    labels: &Labels,
    tar_split: Option<featurefile::shards::TarShards>,
) -> Result<Dataset, Error> {
    let label_from = &labels.from;
    let mut samples: Vec<(String, Sample)> = Vec::new();
    let mut broken = Vec::new();
    let mut without_image = 0;
    for shard in shards {
        let name = shard.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        let listing = webdataset::list(shard).map_err(|why| Error::Shard { path: shard.clone(), why })?;
        if let Some(why) = listing.cut {
            if listing.samples.is_empty() {
                return Err(Error::Shard { path: shard.clone(), why });
            }
            broken.push((name.clone(), format!("the shard breaks off after {} samples: {why}", listing.samples.len())));
        }
        for s in listing.samples {
            if s.image.is_some() {
                samples.push((name.clone(), s));
            } else {
                without_image += 1;
            }
        }
    }
    if samples.is_empty() && tar_split.is_none() {
        return Err(Error::NoSamples(spec.to_owned()));
    }
    let from = match label_from {
        LabelFrom::Auto if samples.iter().any(|(_, s)| s.cls.is_some()) => LabelFrom::Cls,
        LabelFrom::Auto if samples.iter().any(|(_, s)| s.folder().is_some()) => LabelFrom::Folder,
        LabelFrom::Auto => LabelFrom::None,
        other => other.clone(),
    };
    let mut names: Vec<Option<String>> = Vec::with_capacity(samples.len());
    for (_, s) in &samples {
        names.push(
            match &from {
                LabelFrom::Cls => s.cls.clone(),
                LabelFrom::Txt => s.txt.clone(),
                LabelFrom::Folder => s.folder().map(str::to_string),
                LabelFrom::Json(field) => {
                    let value: Option<serde_json::Value> =
                        s.json.as_deref().and_then(|j| serde_json::from_slice(j).ok());
                    match value.as_ref().and_then(|v| v.get(field)) {
                        Some(serde_json::Value::String(v)) => Some(v.clone()),
                        Some(serde_json::Value::Null) | None => None,
                        Some(v) => Some(v.to_string()),
                    }
                }
                LabelFrom::None | LabelFrom::Auto => None,
            }
            .filter(|n| !n.is_empty()),
        );
    }
    // A label some samples lack leaves those unlabeled; one that none has,
    // asked for by name, is a misspelt flag or the wrong shards.
    if label_from != &LabelFrom::Auto
        && from != LabelFrom::None
        && !samples.is_empty()
        && names.iter().all(Option::is_none)
    {
        let (shard, first) = &samples[0];
        let what = match &from {
            LabelFrom::Cls => "a .cls member".to_string(),
            LabelFrom::Txt => "a .txt member".to_string(),
            LabelFrom::Json(field) => format!("a .json member with a field {field:?}"),
            _ => "a folder inside the tar".to_string(),
        };
        return Err(Error::NoLabels { from: from.to_string(), what, first: format!("{shard}/{}", first.key) });
    }
    let classes = match &labels.class_map {
        Some(map) => {
            if let Some(((shard, s), label)) =
                samples.iter().zip(&names).find_map(|(s, n)| n.as_ref().filter(|n| !map.contains(n)).map(|n| (s, n)))
            {
                return Err(Error::NotInClassMap { label: label.clone(), row: format!("{shard}/{}", s.key) });
            }
            map.clone()
        }
        None => {
            let mut classes: Vec<String> = names.iter().flatten().cloned().collect();
            classes.sort();
            classes.dedup();
            // Class indices (webdataset's usual .cls) sort as numbers: class 10 after 9.
            if classes.iter().all(|c| c.parse::<u64>().is_ok()) {
                classes.sort_by_key(|c| c.parse::<u64>().expect("checked"));
            }
            classes
        }
    };
    let entries = samples
        .into_iter()
        .zip(names)
        .map(|((shard, s), name)| {
            let (ext, at) = s.image.expect("kept above");
            let label = name.map(|n| classes.iter().position(|c| *c == n).expect("collected above") as i32);
            Entry { rel: format!("{shard}/{}.{ext}", s.key), at, label }
        })
        .collect();
    let mut notes = vec![match &tar_split {
        Some(t) => format!("{} of {} tar shard(s) (this task's), labels from {from}", t.shards, t.total_shards),
        None => format!("{} tar shard(s), labels from {from}", shards.len()),
    }];
    if without_image > 0 {
        notes.push(format!("{without_image} samples have no image member and are not rows"));
    }
    Ok(Dataset { root, classes, entries, notes, broken, spool: None, tar_split })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn brace_ranges_expand_as_webdataset_spells_them_and_every_shard_must_exist() {
        let dir = tempfile::tempdir().unwrap();
        for name in ["s-0008.tar", "s-0009.tar", "s-0010.tar", "a-x.tar", "a-y.tar", "a-z.tar"] {
            std::fs::write(dir.path().join(name), b"").unwrap();
        }
        let d = dir.path().to_string_lossy();
        let names = |pattern: &str| -> Vec<String> {
            expand_braces(&format!("{d}/{pattern}"))
                .unwrap()
                .iter()
                .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
                .collect()
        };
        // Zero-padded to the first bound's width, across a change of digits.
        assert_eq!(names("s-{0008..0010}.tar"), ["s-0008.tar", "s-0009.tar", "s-0010.tar"]);
        assert_eq!(names("a-{x,z}.tar"), ["a-x.tar", "a-z.tar"]);
        assert_eq!(names("{s-0009,a-y}.tar"), ["s-0009.tar", "a-y.tar"]);
        let missing = expand_braces(&format!("{d}/s-{{0008..0011}}.tar")).unwrap_err().to_string();
        assert!(missing.ends_with("s-0011.tar does not exist"), "{missing}");
        for bad in
            ["s-{0010..0008}.tar", "s-{8..x}.tar", "s-{0008}.tar", "s-{0008..0010.tar", "{0..99999}{0..99999}.tar"]
        {
            assert!(matches!(expand_braces(&format!("{d}/{bad}")), Err(Error::BadRange(_))), "{bad}");
        }
    }

    #[test]
    fn shards_of_one_run_share_a_folder() {
        let dir = tempfile::tempdir().unwrap();
        for sub in ["a", "b"] {
            std::fs::create_dir(dir.path().join(sub)).unwrap();
            std::fs::write(dir.path().join(sub).join("s.tar"), b"").unwrap();
        }
        let d = dir.path().to_string_lossy();
        let e = open(Path::new(&format!("{d}/{{a,b}}/s.tar")), &Labels::default(), None).unwrap_err();
        assert!(matches!(e, Error::ShardsApart { .. }), "{e}");
    }

    #[test]
    fn label_from_parses_its_names_and_json_fields() {
        assert_eq!("json:label".parse::<LabelFrom>(), Ok(LabelFrom::Json("label".into())));
        assert_eq!("cls".parse::<LabelFrom>(), Ok(LabelFrom::Cls));
        assert!("json:".parse::<LabelFrom>().is_err() && "class".parse::<LabelFrom>().is_err());
        assert_eq!(LabelFrom::Json("a.b".into()).to_string(), "json:a.b");
    }

    fn touch(root: &Path, rel: &str) {
        let p = root.join(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, b"x").unwrap();
    }

    #[test]
    fn classes_labels_and_order() {
        let dir = tempfile::tempdir().unwrap();
        let r = dir.path();
        for f in [
            "wolves/b.jpg",
            "wolves/a.JPG",
            "dogs/x/deep.png",
            "dogs/1.jpeg",
            "loose.jpg",
            "dogs/notes.txt",
            ".hidden/h.jpg",
            "dogs/.h.jpg",
            "empty/readme.md",
        ] {
            touch(r, f);
        }
        let d = scan(r).unwrap();
        assert_eq!(d.classes, vec!["dogs", "empty", "wolves"]);
        let got: Vec<(&str, Option<i32>)> = d.entries.iter().map(|e| (e.rel.as_str(), e.label)).collect();
        assert_eq!(
            got,
            vec![
                ("dogs/1.jpeg", Some(0)),
                ("dogs/x/deep.png", Some(0)),
                ("loose.jpg", None),
                ("wolves/a.JPG", Some(2)),
                ("wolves/b.jpg", Some(2)),
            ]
        );
        assert!(d.root.is_absolute());
    }

    #[test]
    fn missing_and_empty_folders_are_errors() {
        let dir = tempfile::tempdir().unwrap();
        assert!(matches!(scan(&dir.path().join("nope")), Err(Error::Missing(_))));
        touch(dir.path(), "cats/readme.txt");
        let err = scan(dir.path()).unwrap_err();
        assert!(err.to_string().starts_with("no images found under"), "{err}");
    }
}
