//! The image folder: `<root>/<class>/<image>`, as torchvision's ImageFolder
//! reads it, plus unlabeled images directly under the root.

use std::path::{Path, PathBuf};

/// File extensions read as images (compared without case).
pub const EXTENSIONS: [&str; 9] = ["jpg", "jpeg", "png", "bmp", "gif", "tif", "tiff", "webp", "jfif"];

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
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// Relative to the root, `/`-separated: the `path` column.
    pub rel: String,
    pub abs: PathBuf,
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
            Item::File(path) if is_image(&path) => entries.push(Entry { rel: spell(&path), abs: path, label: None }),
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
                    Item::File(p) if is_image(&p) => entries.push(Entry { rel: spell(&p), abs: p, label: Some(label) }),
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
    Ok(Dataset { root, classes, entries, notes })
}

#[cfg(test)]
mod tests {
    use super::*;

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
