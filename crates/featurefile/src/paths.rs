//! The `path` column's spelling of a file's path relative to the image
//! root, lossless for any name a filesystem holds: the components joined
//! by `/`, with every byte that is not part of valid UTF-8, and `%`
//! itself, written `%XX` (two upper-case hex digits). A UTF-8 name without
//! `%` is spelled as it is. (FEATURE-FILE.md, `path`.)

use std::path::{Component, Path, PathBuf};

/// The spelling of one name or a relative path (`/` between components).
pub fn spell(rel: &Path) -> String {
    let mut out = String::new();
    for (i, c) in rel.components().enumerate() {
        if i > 0 {
            out.push('/');
        }
        let Component::Normal(name) = c else { continue };
        spell_into(name.as_encoded_bytes(), &mut out);
    }
    out
}

/// The spelling of one name's bytes.
pub fn spell_name(name: &std::ffi::OsStr) -> String {
    let mut out = String::new();
    spell_into(name.as_encoded_bytes(), &mut out);
    out
}

fn spell_into(bytes: &[u8], out: &mut String) {
    for chunk in bytes.utf8_chunks() {
        for ch in chunk.valid().chars() {
            if ch == '%' {
                out.push_str("%25");
            } else {
                out.push(ch);
            }
        }
        for b in chunk.invalid() {
            out.push_str(&format!("%{b:02X}"));
        }
    }
}

/// The path a spelling names, relative to the image root. A `%` not
/// followed by two hex digits is taken as it stands (files written before
/// the spelling escaped `%`).
pub fn unspell(spelled: &str) -> PathBuf {
    let b = spelled.as_bytes();
    let mut out: Vec<u8> = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let hex = |c: u8| (c as char).to_digit(16);
        if b[i] == b'%' {
            if let (Some(h), Some(l)) = (b.get(i + 1).and_then(|&c| hex(c)), b.get(i + 2).and_then(|&c| hex(c))) {
                out.push((h * 16 + l) as u8);
                i += 3;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    bytes_to_path(out)
}

#[cfg(unix)]
fn bytes_to_path(b: Vec<u8>) -> PathBuf {
    use std::os::unix::ffi::OsStringExt;
    PathBuf::from(std::ffi::OsString::from_vec(b))
}

#[cfg(not(unix))]
fn bytes_to_path(b: Vec<u8>) -> PathBuf {
    PathBuf::from(String::from_utf8_lossy(&b).into_owned())
}

#[cfg(all(test, unix))]
mod tests {
    use super::*;
    use std::os::unix::ffi::OsStrExt;

    #[test]
    fn utf8_names_stay_as_they_are_and_the_rest_round_trips() {
        assert_eq!(spell(Path::new("wolves/a b/é.jpg")), "wolves/a b/é.jpg");
        // Latin-1 "café.jpg" from an old archive: é is the single byte E9.
        let latin1 = Path::new(std::ffi::OsStr::from_bytes(b"dogs/caf\xe9.jpg"));
        assert_eq!(spell(latin1), "dogs/caf%E9.jpg");
        assert_eq!(unspell("dogs/caf%E9.jpg"), latin1);
        let percent = Path::new("x/100%.jpg");
        assert_eq!(spell(percent), "x/100%25.jpg");
        assert_eq!(unspell(&spell(percent)), percent);
        let mixed = Path::new(std::ffi::OsStr::from_bytes(b"%E9\xff\xfe.png"));
        assert_eq!(unspell(&spell(mixed)), mixed);
        assert_eq!(unspell("old/100%.jpg"), Path::new("old/100%.jpg"), "a bare % stands");
    }
}
