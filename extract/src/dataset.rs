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
    /// Class folder names, sorted: their positions are the class indices.
    pub classes: Vec<String>,
    /// Sorted by `rel`.
    pub entries: Vec<Entry>,
    /// Files that look like images but whose names are not UTF-8: (path, reason).
    pub unreadable: Vec<(String, String)>,
}

fn hidden(name: &std::ffi::OsStr) -> bool {
    name.to_string_lossy().starts_with('.')
}

pub fn is_image(path: &Path) -> bool {
    path.extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| EXTENSIONS.iter().any(|x| x.eq_ignore_ascii_case(e)))
}

/// Lists a folder's non-hidden entries, following symbolic links.
fn list(dir: &Path) -> Result<Vec<(PathBuf, bool)>, Error> {
    let io = |e| Error::Io { path: dir.to_owned(), source: e };
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(io)? {
        let entry = entry.map_err(io)?;
        if hidden(&entry.file_name()) {
            continue;
        }
        let path = entry.path();
        // A dangling link or one we may not follow is no image; skip it quietly.
        let Ok(meta) = std::fs::metadata(&path) else { continue };
        out.push((path, meta.is_dir()));
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
    let top = list(&root)?;
    let mut classes: Vec<String> = Vec::new();
    let mut unreadable = Vec::new();
    for (path, is_dir) in &top {
        if *is_dir {
            match path.file_name().and_then(|n| n.to_str()) {
                Some(n) => classes.push(n.to_string()),
                None => unreadable.push((path.to_string_lossy().into_owned(), "folder name is not UTF-8".into())),
            }
        }
    }
    classes.sort();

    let mut entries = Vec::new();
    let mut push = |path: PathBuf, label: Option<i32>, unreadable: &mut Vec<(String, String)>| {
        let rel = path.strip_prefix(&root).expect("under the root");
        match rel.to_str() {
            Some(r) => entries.push(Entry { rel: r.replace(std::path::MAIN_SEPARATOR, "/"), abs: path, label }),
            None => unreadable.push((rel.to_string_lossy().into_owned(), "file name is not UTF-8".into())),
        }
    };
    for (path, is_dir) in top {
        if !is_dir {
            if is_image(&path) {
                push(path, None, &mut unreadable);
            }
            continue;
        }
        let Some(label) = path.file_name().and_then(|n| n.to_str()).and_then(|n| classes.iter().position(|c| c == n)) else {
            continue;
        };
        // Nested folders inside a class count for that class.
        let mut stack = vec![path];
        while let Some(dir) = stack.pop() {
            for (p, d) in list(&dir)? {
                if d {
                    stack.push(p);
                } else if is_image(&p) {
                    push(p, Some(label as i32), &mut unreadable);
                }
            }
        }
    }
    if entries.is_empty() {
        return Err(Error::Empty(root));
    }
    entries.sort_by(|a, b| a.rel.cmp(&b.rel));
    unreadable.sort();
    Ok(Dataset { root, classes, entries, unreadable })
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
        for f in ["wolves/b.jpg", "wolves/a.JPG", "dogs/x/deep.png", "dogs/1.jpeg", "loose.jpg",
                  "dogs/notes.txt", ".hidden/h.jpg", "dogs/.h.jpg", "empty/readme.md"] {
            touch(r, f);
        }
        let d = scan(r).unwrap();
        assert_eq!(d.classes, vec!["dogs", "empty", "wolves"]);
        let got: Vec<(&str, Option<i32>)> = d.entries.iter().map(|e| (e.rel.as_str(), e.label)).collect();
        assert_eq!(got, vec![
            ("dogs/1.jpeg", Some(0)),
            ("dogs/x/deep.png", Some(0)),
            ("loose.jpg", None),
            ("wolves/a.JPG", Some(2)),
            ("wolves/b.jpg", Some(2)),
        ]);
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
