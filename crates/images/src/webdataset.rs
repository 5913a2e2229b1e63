//! webdataset tar shards, as img2dataset and clip-retrieval write them and
//! timm, DALI and Ray read them: a tar whose members group into samples by
//! their key, the member path up to the first dot of its file name
//! (`dogs/0001.jpg` and `dogs/0001.cls` are sample `dogs/0001`). Samples
//! are consecutive members of one key, as webdataset groups them.
//!
//! A shard is untrusted input. Its members are listed from their headers
//! (the data is skipped, never read whole), their names are only strings
//! (`../../x.jpg` is a sample's name, never a path on disk), and a member's
//! bytes are read in place, bounded, when the image is decoded. A shard cut
//! short lists the samples before the cut and says where it broke.

use std::fs::File;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::Location;

/// A label member (`.cls`, `.txt`, `.json`) larger than this is not a label.
pub const MAX_LABEL_BYTES: u64 = 64 << 10;

/// One sample: its key, its image (the first member with an image
/// extension) and the members a label may come from.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    /// `dogs/0001`: the member path up to the first dot of its file name.
    pub key: String,
    /// The image member's extension (`jpg`, `seg.png`) and where its bytes are.
    pub image: Option<(String, Location)>,
    /// The `.cls` member's text, trimmed (webdataset's class: an index or a name).
    pub cls: Option<String>,
    /// The `.txt` member's text, trimmed.
    pub txt: Option<String>,
    /// The `.json` member's bytes.
    pub json: Option<Vec<u8>>,
}

impl Sample {
    /// The first folder of the sample's path inside the tar (timm's
    /// ImageTar label), if it is in one.
    pub fn folder(&self) -> Option<&str> {
        self.key.split_once('/').map(|(f, _)| f).filter(|f| !f.is_empty())
    }
}

/// What a shard holds.
#[derive(Debug, Clone, PartialEq)]
pub struct Listing {
    pub samples: Vec<Sample>,
    /// Where the shard broke off (cut short, or a damaged header), if it did:
    /// the samples before it are listed.
    pub cut: Option<String>,
}

/// webdataset's split of a member path into key and extension: the key is
/// the path up to the first dot of the file name, the extension the rest;
/// a file name without a dot (or starting with one) belongs to no sample.
pub fn key_and_extension(member: &str) -> Option<(&str, &str)> {
    let name_at = member.rfind('/').map_or(0, |i| i + 1);
    let dot = member[name_at..].find('.')? + name_at;
    (dot > name_at).then(|| (&member[..dot], &member[dot + 1..]))
}

/// Whether a file is named as a shard: a `.tar`, without case.
pub fn is_shard_name(path: &Path) -> bool {
    path.extension().is_some_and(|e| e.eq_ignore_ascii_case("tar"))
}

/// Whether a member's extension is an image's: its last part, without case
/// (`jpg`, `seg.PNG`).
pub fn is_image_extension(ext: &str) -> bool {
    let last = ext.rsplit('.').next().unwrap_or(ext);
    crate::EXTENSIONS.iter().any(|x| x.eq_ignore_ascii_case(last))
}

/// Lists a shard's samples from its member headers. Only the label members
/// (at most [`MAX_LABEL_BYTES`] each) are read; an image member's bytes stay
/// in the file, at the [`Location`] the sample holds.
pub fn list(shard: &Path) -> Result<Listing, String> {
    let file = File::open(shard).map_err(|e| e.to_string())?;
    let meta = file.metadata().map_err(|e| e.to_string())?;
    if !meta.is_file() {
        return Err(format!("not a regular file ({})", atomic::kind_of(&meta)));
    }
    let len = meta.len();
    let shared: Arc<PathBuf> = Arc::new(shard.to_owned());
    let mut archive = tar::Archive::new(file);
    let entries = archive.entries_with_seek().map_err(|e| e.to_string())?;
    let mut samples: Vec<Sample> = Vec::new();
    let mut cut = None;
    let mut members = 0usize;
    for entry in entries {
        let mut entry = match entry {
            Ok(e) => e,
            Err(e) => {
                cut = Some(if members == 0 { format!("not a tar file ({e})") } else { e.to_string() });
                break;
            }
        };
        members += 1;
        if !entry.header().entry_type().is_file() {
            continue;
        }
        let name = String::from_utf8_lossy(&entry.path_bytes()).into_owned();
        let Some((key, ext)) = key_and_extension(&name) else { continue };
        let (key, ext) = (key.to_string(), ext.to_string());
        let (offset, size) = (entry.raw_file_position(), entry.size());
        if offset.saturating_add(size) > len {
            cut = Some(format!("member {name} claims {size} bytes, past the end of the file ({len} bytes)"));
            break;
        }
        if samples.last().is_none_or(|s| s.key != key) {
            samples.push(Sample { key, image: None, cls: None, txt: None, json: None });
        }
        let sample = samples.last_mut().expect("pushed above");
        let mut small = || -> Option<Vec<u8>> {
            if size > MAX_LABEL_BYTES {
                return None;
            }
            let mut bytes = Vec::with_capacity(size as usize);
            entry.by_ref().take(size).read_to_end(&mut bytes).ok()?;
            Some(bytes)
        };
        let text = |b: Vec<u8>| String::from_utf8_lossy(&b).trim().to_string();
        match ext.to_ascii_lowercase().as_str() {
            "cls" if sample.cls.is_none() => sample.cls = small().map(text),
            "txt" if sample.txt.is_none() => sample.txt = small().map(text),
            "json" if sample.json.is_none() => sample.json = small(),
            _ if sample.image.is_none() && is_image_extension(&ext) => {
                sample.image = Some((ext, Location::Member { shard: shared.clone(), offset, size }));
            }
            _ => {}
        }
    }
    if members == 0 && cut.is_none() {
        cut = Some("an empty tar file".into());
    }
    Ok(Listing { samples, cut })
}

/// The image member `name` (`<key>.<ext>`) of `shard`, as a row of a tar
/// shard names it after the shard's file name. The last few shards'
/// listings are kept, so a report of many rows lists each shard once.
pub fn member(shard: &Path, name: &str) -> Result<Location, String> {
    thread_local! {
        static LISTED: std::cell::RefCell<Vec<(PathBuf, Listing)>> = const { std::cell::RefCell::new(Vec::new()) };
    }
    const KEPT: usize = 4;
    let (key, ext) = key_and_extension(name).ok_or_else(|| format!("{name} names no sample of a shard"))?;
    LISTED.with(|listed| {
        let mut listed = listed.borrow_mut();
        let at = match listed.iter().position(|(p, _)| p == shard) {
            Some(i) => i,
            None => {
                if listed.len() == KEPT {
                    listed.remove(0);
                }
                listed.push((shard.to_owned(), list(shard)?));
                listed.len() - 1
            }
        };
        listed[at]
            .1
            .samples
            .iter()
            .find(|s| s.key == key)
            .and_then(|s| s.image.as_ref().filter(|(e, _)| e == ext))
            .map(|(_, at)| at.clone())
            .ok_or_else(|| format!("{} holds no image member {name}", shard.display()))
    })
}

/// The image member `name` of the tar shard object `key` in a bucket, as
/// [`member`] finds it in a file: the shard is read once as a stream (its
/// members' headers; the data passes by) and its index of image members
/// kept, so a report of many rows reads each shard once; the member's bytes
/// are then fetched alone.
pub fn object_member(bucket: &Arc<store::Bucket>, key: &str, name: &str) -> Result<Location, String> {
    type Index = std::collections::HashMap<String, (u64, u64)>;
    thread_local! {
        static INDEXED: std::cell::RefCell<std::collections::HashMap<String, Arc<Index>>> = Default::default();
    }
    let url = format!("{}{}/{key}", store::SCHEME, bucket.name());
    let index = match INDEXED.with(|i| i.borrow().get(&url).cloned()) {
        Some(index) => index,
        None => {
            let reader = bucket.reader(key).map_err(|e| e.to_string())?;
            let mut archive = tar::Archive::new(reader);
            let mut index = Index::new();
            for entry in archive.entries().map_err(|e| format!("{url}: {e}"))? {
                // A shard cut short: the members before the cut are indexed.
                let Ok(entry) = entry else { break };
                let member = String::from_utf8_lossy(&entry.path_bytes()).into_owned();
                let image = key_and_extension(&member).is_some_and(|(_, ext)| is_image_extension(ext));
                if entry.header().entry_type().is_file() && image {
                    index.entry(member).or_insert((entry.raw_file_position(), entry.size()));
                }
            }
            let index = Arc::new(index);
            INDEXED.with(|i| i.borrow_mut().insert(url.clone(), index.clone()));
            index
        }
    };
    let &(offset, size) = index.get(name).ok_or_else(|| format!("{url} holds no image member {name}"))?;
    Ok(Location::ObjectMember { bucket: bucket.clone(), key: key.to_string(), offset, size })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_split_as_webdataset_splits_them() {
        assert_eq!(key_and_extension("dogs/0001.jpg"), Some(("dogs/0001", "jpg")));
        assert_eq!(key_and_extension("a.b/c.seg.png"), Some(("a.b/c", "seg.png")));
        assert_eq!(key_and_extension("0001.cls"), Some(("0001", "cls")));
        assert_eq!(key_and_extension("README"), None);
        assert_eq!(key_and_extension("dir/.hidden"), None);
        assert!(is_image_extension("seg.PNG") && is_image_extension("jpg") && !is_image_extension("cls"));
    }
}
