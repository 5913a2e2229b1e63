//! Outputs appear whole or not at all: every file the tools write is filled
//! under a temporary name beside its destination and renamed into place in
//! one step, so a crash, Ctrl-C or SIGKILL leaves either the old file or the
//! new one, never half of one.

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
    pub fn create(dest: &Path) -> io::Result<(File, Pending)> {
        let dir = match dest.parent() {
            Some(d) if !d.as_os_str().is_empty() => d,
            _ => Path::new("."),
        };
        std::fs::create_dir_all(dir)?;
        let name = dest.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        let tmp = tempfile::Builder::new()
            .prefix(&format!(".{name}."))
            .suffix(PARTIAL_SUFFIX)
            .tempfile_in(dir)?;
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
        self.tmp.persist(&self.dest).map_err(|e| e.error)?;
        Ok(self.dest)
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
        let mut left: Vec<String> =
            std::fs::read_dir(dir.path()).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
        left.sort();
        assert_eq!(left.len(), 2, "{left:?}");
        assert!(left[0].starts_with(".part-00002-of-00004.parquet.") && left[1] == "part-00001-of-00004.parquet");
        assert_eq!(remove_stale(&dir.path().join("nowhere/x.parquet")).unwrap(), 0);
    }
}
