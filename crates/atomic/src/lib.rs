//! Outputs appear whole or not at all: every file the tools write is filled
//! under a temporary name beside its destination and renamed into place in
//! one step, so a crash, Ctrl-C or SIGKILL leaves either the old file or the
//! new one, never half of one.
//!
//! And an output never destroys what is not an output: a destination that
//! exists and is not a regular file (a device node, a FIFO, a folder) is
//! refused before anything is written (a rename would replace the node
//! itself, as root even `/dev/null`), and so is a destination that is one of
//! the run's inputs, or inside an input folder ([`check_destination`]).

use std::fs::File;
use std::io;
use std::path::{Path, PathBuf};

/// Suffix of the temporary files, so leftovers of a killed run are easy to
/// recognise (and to clean up).
pub const PARTIAL_SUFFIX: &str = ".partial";

/// A temporary file beside `dest`, removed on drop unless committed.
pub struct Pending {
    dest: PathBuf,
    tmp: tempfile::TempPath,
}

impl Pending {
    /// Creates the destination's folder if needed and an empty temporary file
    /// (`.NAME.XXXXXX.partial`) in it, returned open for writing.
    /// A destination that exists and is not a regular file is refused
    /// ([`check_kind`]).
    pub fn create(dest: &Path) -> io::Result<(File, Pending)> {
        check_kind(dest)?;
        let dir = match dest.parent() {
            Some(d) if !d.as_os_str().is_empty() => d,
            _ => Path::new("."),
        };
        std::fs::create_dir_all(dir)?;
        let name = dest.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        let tmp = tempfile::Builder::new().prefix(&format!(".{name}.")).suffix(PARTIAL_SUFFIX).tempfile_in(dir)?;
        let (file, tmp) = tmp.into_parts();
        Ok((file, Pending { dest: dest.to_owned(), tmp }))
    }

    /// Syncs `file` (the one `create` returned, written and flushed), gives it
    /// an ordinary file's permissions and renames it to the destination.
    pub fn commit(self, file: File) -> io::Result<PathBuf> {
        file.sync_all()?;
        // Temporary files are private (0600); the result is an ordinary file.
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            file.set_permissions(std::fs::Permissions::from_mode(0o644))?;
        }
        drop(file);
        // Something else may have appeared there while the file was written.
        check_kind(&self.dest)?;
        self.tmp.persist(&self.dest).map_err(|e| e.error)?;
        Ok(self.dest)
    }
}

/// Refuses a destination that exists (after following links) and is not a
/// regular file: replacing it would destroy a device node, a FIFO or a
/// socket, and a folder is no file name. A dangling link is no file yet.
pub fn check_kind(dest: &Path) -> io::Result<()> {
    match std::fs::metadata(dest) {
        Ok(m) if !m.is_file() => Err(io::Error::new(
            io::ErrorKind::AlreadyExists,
            format!("exists and is {}, not a regular file; outputs replace only regular files", kind_of(&m)),
        )),
        _ => Ok(()),
    }
}

/// What a file system entry is, in words.
pub fn kind_of(meta: &std::fs::Metadata) -> &'static str {
    #[cfg(unix)]
    {
        use std::os::unix::fs::FileTypeExt;
        let t = meta.file_type();
        if t.is_fifo() {
            return "a FIFO";
        }
        if t.is_char_device() {
            return "a character device";
        }
        if t.is_block_device() {
            return "a block device";
        }
        if t.is_socket() {
            return "a socket";
        }
    }
    if meta.is_dir() {
        "a folder"
    } else if meta.is_file() {
        "a regular file"
    } else {
        "not a file"
    }
}

/// What a run reads, which none of its outputs may be.
#[derive(Debug, Clone, Copy)]
pub enum Input<'a> {
    /// A file (a feature file, a classifier, a model), or a folder read
    /// whole (a folder of parts): no output may be it or inside it.
    Path { what: &'a str, path: &'a Path },
    /// A folder whose files are the run's inputs (`--images`): no output
    /// may be inside it.
    Tree { what: &'a str, path: &'a Path },
}

/// Why an output was refused.
#[derive(Debug, thiserror::Error)]
pub enum Refused {
    #[error("{}: {source}", .dest.display())]
    Kind { dest: PathBuf, source: io::Error },
    #[error("{} is the {what} {} this run reads; writing it would destroy it: choose another output", .dest.display(), .input.display())]
    IsInput { dest: PathBuf, what: String, input: PathBuf },
    #[error("{} is inside the {what} {} this run reads; choose an output outside it", .dest.display(), .input.display())]
    InsideInput { dest: PathBuf, what: String, input: PathBuf },
}

/// The output rule, checked before a run starts: `dest` is no existing
/// non-regular file ([`check_kind`]), not the same file as any input (by
/// device and inode, so links and other spellings count), and not inside
/// an input folder (by canonical path: `dest` need not exist yet).
pub fn check_destination(dest: &Path, inputs: &[Input]) -> Result<(), Refused> {
    check_kind(dest).map_err(|source| Refused::Kind { dest: dest.to_owned(), source })?;
    let dest_meta = std::fs::metadata(dest).ok();
    // Where dest would be: its folder's canonical path (the nearest one
    // that exists), with the rest of the name appended.
    let dest_abs = canonical_of_maybe_missing(dest);
    for input in inputs {
        let (what, path, tree) = match *input {
            Input::Path { what, path } => (what, path, false),
            Input::Tree { what, path } => (what, path, true),
        };
        let Ok(in_meta) = std::fs::metadata(path) else { continue };
        if let Some(d) = &dest_meta {
            if same_file(d, &in_meta) {
                return Err(Refused::IsInput { dest: dest.to_owned(), what: what.to_owned(), input: path.to_owned() });
            }
        }
        if in_meta.is_dir() || tree {
            if let (Some(dest_abs), Ok(in_abs)) = (&dest_abs, path.canonicalize()) {
                if dest_abs.starts_with(&in_abs) && *dest_abs != in_abs {
                    return Err(Refused::InsideInput {
                        dest: dest.to_owned(),
                        what: what.to_owned(),
                        input: path.to_owned(),
                    });
                }
            }
        }
    }
    Ok(())
}

#[cfg(unix)]
fn same_file(a: &std::fs::Metadata, b: &std::fs::Metadata) -> bool {
    use std::os::unix::fs::MetadataExt;
    a.dev() == b.dev() && a.ino() == b.ino()
}

#[cfg(not(unix))]
fn same_file(_: &std::fs::Metadata, _: &std::fs::Metadata) -> bool {
    false
}

/// `path` made absolute through its nearest existing ancestor's canonical
/// path; `None` where not even the current folder can be found.
fn canonical_of_maybe_missing(path: &Path) -> Option<PathBuf> {
    let abs = if path.is_absolute() { path.to_owned() } else { std::env::current_dir().ok()?.join(path) };
    let mut rest = Vec::new();
    let mut at = abs.as_path();
    loop {
        if let Ok(c) = at.canonicalize() {
            return Some(rest.iter().rev().fold(c, |p: PathBuf, n| p.join(n)));
        }
        rest.push(at.file_name()?.to_owned());
        at = at.parent()?;
    }
}

/// Removes the temporary files a killed writer (SIGKILL, a pre-empted node:
/// nothing ran to clean up) left for `dest`; returns how many. Only for a
/// destination that this process is about to write, so no live writer
/// owns them.
pub fn remove_stale(dest: &Path) -> io::Result<usize> {
    let dir = match dest.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    let Some(name) = dest.file_name().map(|n| n.to_string_lossy().into_owned()) else { return Ok(0) };
    let prefix = format!(".{name}.");
    let mut removed = 0;
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(0),
        Err(e) => return Err(e),
    };
    for entry in entries {
        let entry = entry?;
        let n = entry.file_name().to_string_lossy().into_owned();
        if n.starts_with(&prefix) && n.ends_with(PARTIAL_SUFFIX) {
            std::fs::remove_file(entry.path())?;
            removed += 1;
        }
    }
    Ok(removed)
}

/// Why an atomic write failed: the filesystem, or the caller's `fill`.
#[derive(Debug, thiserror::Error)]
pub enum WriteError<E> {
    #[error("{0}")]
    Io(#[from] io::Error),
    #[error("{0}")]
    Fill(E),
}

/// Writes `dest` whole or not at all: `fill` writes the temporary file,
/// which is committed only when it succeeds.
pub fn write_atomically<E>(
    dest: &Path,
    fill: impl FnOnce(&mut File) -> Result<(), E>,
) -> Result<PathBuf, WriteError<E>> {
    let (mut file, pending) = Pending::create(dest)?;
    fill(&mut file).map_err(WriteError::Fill)?;
    Ok(pending.commit(file)?)
}

/// Writes `bytes` to `dest` whole or not at all.
pub fn write_bytes(dest: &Path, bytes: &[u8]) -> io::Result<PathBuf> {
    let (mut file, pending) = Pending::create(dest)?;
    std::io::Write::write_all(&mut file, bytes)?;
    pending.commit(file)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn a_failed_fill_leaves_nothing_and_a_good_one_a_readable_file() {
        let dir = tempfile::tempdir().unwrap();
        let dest = dir.path().join("sub/out.json");
        let r = write_atomically(&dest, |f| {
            f.write_all(b"half").unwrap();
            Err("disk on fire")
        });
        assert!(matches!(r, Err(WriteError::Fill("disk on fire"))));
        assert!(!dest.exists());
        assert_eq!(std::fs::read_dir(dest.parent().unwrap()).unwrap().count(), 0, "no partial file left");

        write_atomically(&dest, |f| f.write_all(b"whole").map_err(|e| e.to_string())).unwrap();
        assert_eq!(std::fs::read(&dest).unwrap(), b"whole");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            assert_eq!(std::fs::metadata(&dest).unwrap().permissions().mode() & 0o777, 0o644);
        }
        assert_eq!(std::fs::read_dir(dest.parent().unwrap()).unwrap().count(), 1);
    }

    /// A character device made in a temporary folder (never the machine's
    /// own `/dev` nodes): the kind of node `--out /dev/null` names.
    #[cfg(unix)]
    fn device_node(dir: &Path) -> Option<PathBuf> {
        let node = dir.join("null");
        let ok =
            std::process::Command::new("mknod").arg(&node).args(["c", "1", "3"]).status().is_ok_and(|s| s.success());
        ok.then_some(node)
    }

    #[test]
    #[cfg(unix)]
    fn a_device_node_or_fifo_is_never_replaced() {
        use std::os::unix::fs::FileTypeExt;
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("fifo");
        assert!(std::process::Command::new("mkfifo").arg(&fifo).status().unwrap().success());
        let mut nodes = vec![fifo];
        nodes.extend(device_node(dir.path()));
        for node in &nodes {
            let e = write_atomically(node, |f| f.write_all(b"x")).unwrap_err();
            assert!(e.to_string().contains("not a regular file"), "{e}");
            let t = std::fs::symlink_metadata(node).unwrap().file_type();
            assert!(t.is_fifo() || t.is_char_device(), "{} was replaced", node.display());
            // A link to it is refused too.
            let link = dir.path().join("link");
            let _ = std::fs::remove_file(&link);
            std::os::unix::fs::symlink(node, &link).unwrap();
            assert!(matches!(check_destination(&link, &[]), Err(Refused::Kind { .. })));
        }
        assert!(write_atomically(dir.path(), |f| f.write_all(b"x")).unwrap_err().to_string().contains("a folder"));
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), nodes.len() + 1, "no partial file left");
    }

    #[test]
    fn an_input_is_never_an_output() {
        let dir = tempfile::tempdir().unwrap();
        let feats = dir.path().join("v.parquet");
        std::fs::write(&feats, b"rows").unwrap();
        let input = [Input::Path { what: "feature file", path: &feats }];
        let e = check_destination(&feats, &input).unwrap_err();
        assert!(matches!(e, Refused::IsInput { .. }), "{e}");
        assert!(e.to_string().contains("v.parquet is the feature file"), "{e}");
        // Another spelling of it, and a hard link to it, are it.
        let other = dir.path().join("sub/../v.parquet");
        std::fs::create_dir(dir.path().join("sub")).unwrap();
        assert!(matches!(check_destination(&other, &input), Err(Refused::IsInput { .. })));
        let hard = dir.path().join("hard.parquet");
        std::fs::hard_link(&feats, &hard).unwrap();
        assert!(matches!(check_destination(&hard, &input), Err(Refused::IsInput { .. })));
        // A new file beside it is fine.
        check_destination(&dir.path().join("p.csv"), &input).unwrap();
        // Inside an image tree, even where nothing is yet.
        let images = dir.path().join("images");
        std::fs::create_dir_all(images.join("dogs")).unwrap();
        let tree = [Input::Tree { what: "image folder", path: &images }];
        for inside in ["dogs/a.jpg", "dogs/new/f.parquet", "f.parquet"] {
            assert!(
                matches!(check_destination(&images.join(inside), &tree), Err(Refused::InsideInput { .. })),
                "{inside}"
            );
        }
        check_destination(&dir.path().join("features/f.parquet"), &tree).unwrap();
        assert_eq!(std::fs::read(&feats).unwrap(), b"rows");
    }

    #[test]
    fn stale_partials_of_one_destination_go_and_nothing_else() {
        let dir = tempfile::tempdir().unwrap();
        let dest = dir.path().join("part-00001-of-00004.parquet");
        let (_, a) = Pending::create(&dest).unwrap();
        let (_, b) = Pending::create(&dest).unwrap();
        let (_, other) = Pending::create(&dir.path().join("part-00002-of-00004.parquet")).unwrap();
        // As a SIGKILL leaves them: no drop ran.
        std::mem::forget((a, b, other));
        std::fs::write(&dest, b"done").unwrap();
        assert_eq!(remove_stale(&dest).unwrap(), 2);
        let mut left: Vec<String> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        left.sort();
        assert_eq!(left.len(), 2, "{left:?}");
        assert!(left[0].starts_with(".part-00002-of-00004.parquet.") && left[1] == "part-00001-of-00004.parquet");
        assert_eq!(remove_stale(&dir.path().join("nowhere/x.parquet")).unwrap(), 0);
    }
}
