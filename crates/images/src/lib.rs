//! The images the rows point to (`extract.root` joined with `path`), read as
//! `extract` read them: decoded, then turned upright by their EXIF
//! orientation. `extract` preprocesses what this returns and `classify`'s
//! report shows it, so both see the same picture.
//!
//! Image files are untrusted input: only a regular file (after following
//! links) is read, at most its own size and never more than a byte limit
//! (a link to `/dev/zero` or a FIFO named `x.jpg` cannot hang a run or
//! fill its memory); a file that is cut short is refused
//! rather than completed with grey (as PIL refuses it), an image larger than
//! the pixel limit is refused before its pixels are allocated (a
//! decompression bomb), and a decoder that panics costs that file only.
//!
//! JPEGs are decoded by the decoder PIL uses (libjpeg-turbo), so their
//! pixels are PIL's, bit for bit; one far larger than the picture needs can
//! be decoded at its own reduced scale ([`open_oriented_scaled`]): PIL's
//! `draft`, so that a 12-megapixel photo costs what its thumbnail does.
//! [`resize`] is PIL's antialiased bilinear resize, bit for bit.

pub mod resize;
pub mod webdataset;

use std::cell::Cell;
use std::io::{Cursor, Read, Seek};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use image::{DynamicImage, ImageDecoder, ImageFormat, ImageReader};

/// PIL's default limit (`Image.MAX_IMAGE_PIXELS`): about 179 million pixels.
pub const DEFAULT_MAX_PIXELS: u64 = 178_956_970;
/// 1 GiB: far above any photo (a 12-Mpx JPEG is a few MB, an uncompressed
/// 100-Mpx TIFF 300 MB), far below what would hurt a node.
pub const DEFAULT_MAX_BYTES: u64 = 1 << 30;

/// File extensions read as images (compared without case).
pub const EXTENSIONS: [&str; 9] = ["jpg", "jpeg", "png", "bmp", "gif", "tif", "tiff", "webp", "jfif"];

/// Where an image's bytes are: a file, a member of a tar shard, or an
/// object in a bucket.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Location {
    File(PathBuf),
    Object {
        bucket: Arc<store::Bucket>,
        key: String,
    },
    /// `size` bytes at `offset` of the tar shard object `key`: a member's data.
    ObjectMember {
        bucket: Arc<store::Bucket>,
        key: String,
        offset: u64,
        size: u64,
    },
    /// `size` bytes at `offset` of the tar file `shard`: a member's data.
    Member {
        shard: Arc<PathBuf>,
        offset: u64,
        size: u64,
    },
}

impl Location {
    /// The image's bytes, refused above `max_bytes`; a file as
    /// [`read_file`] reads it, a member in place, never more than its size.
    pub fn read(&self, max_bytes: u64) -> Result<Vec<u8>, String> {
        match self {
            Location::File(path) => read_file(path, max_bytes),
            Location::Object { bucket, key } => bucket.read(key, max_bytes).map_err(|e| match e {
                store::Error::TooLarge { size, max, .. } => too_large("object", size, max),
                e => e.to_string(),
            }),
            Location::ObjectMember { bucket, key, offset, size } => {
                if *size > max_bytes {
                    return Err(too_large("member", *size, max_bytes));
                }
                bucket.read_range(key, *offset, *size).map_err(|e| e.to_string())
            }
            Location::Member { shard, offset, size } => {
                if *size > max_bytes {
                    return Err(too_large("member", *size, max_bytes));
                }
                // Still a regular file (a FIFO put in its place would block the open).
                let meta = std::fs::metadata(shard.as_path()).map_err(|e| e.to_string())?;
                if !meta.is_file() {
                    return Err(format!("the shard is no longer a regular file ({})", atomic::kind_of(&meta)));
                }
                let mut f = std::fs::File::open(shard.as_path()).map_err(|e| e.to_string())?;
                f.seek(std::io::SeekFrom::Start(*offset)).map_err(|e| e.to_string())?;
                let mut bytes = Vec::with_capacity(*size as usize);
                f.take(*size).read_to_end(&mut bytes).map_err(|e| e.to_string())?;
                if (bytes.len() as u64) < *size {
                    return Err(format!("the shard ends {} bytes into this {size}-byte member", bytes.len()));
                }
                Ok(bytes)
            }
        }
    }

    /// Where the image of a feature-file row is: `rel` (the `path` column,
    /// unspelled) under `root`; a path whose first part is a `.tar` file in
    /// `root` names a member of that shard.
    pub fn of_row(root: &Path, rel: &Path) -> Result<Location, String> {
        let spelled_root = root.to_string_lossy();
        if store::is_url(&spelled_root) {
            let at = store::Address::parse(&spelled_root).map_err(|e| e.to_string())?;
            let bucket = store::Bucket::open(&at).map_err(|e| e.to_string())?;
            let rel = rel.to_string_lossy();
            if let Some((first, name)) = rel.split_once('/').filter(|(f, _)| webdataset::is_shard_name(Path::new(f))) {
                return webdataset::object_member(&bucket, &at.join(first).key, name);
            }
            return Ok(Location::Object { bucket, key: at.join(&rel).key });
        }
        // Split as the row was written, not as a path is normalized: a
        // member `./a.jpg` keeps its `./`.
        let spelled = rel.to_string_lossy();
        if let Some((first, name)) = spelled.split_once('/') {
            let shard = root.join(first);
            if webdataset::is_shard_name(&shard) && shard.is_file() {
                return webdataset::member(&shard, name);
            }
        }
        Ok(Location::File(root.join(rel)))
    }
}

impl std::fmt::Display for Location {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Location::File(p) => write!(f, "{}", p.display()),
            Location::Object { bucket, key } => write!(f, "{}{}/{key}", store::SCHEME, bucket.name()),
            Location::ObjectMember { bucket, key, offset, .. } => {
                write!(f, "{}{}/{key} (the member at byte {offset})", store::SCHEME, bucket.name())
            }
            Location::Member { shard, offset, .. } => write!(f, "{} (the member at byte {offset})", shard.display()),
        }
    }
}

/// Why an image's bytes were not read: a file, an object or a member over `--max-bytes`.
fn too_large(what: &str, size: u64, max_bytes: u64) -> String {
    format!("{what} is {size} bytes, above the limit of {max_bytes} (--max-bytes)")
}

/// What one image file may cost before it is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    pub max_pixels: u64,
    pub max_bytes: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits { max_pixels: DEFAULT_MAX_PIXELS, max_bytes: DEFAULT_MAX_BYTES }
    }
}

/// The memory the system can give this process now: Linux's MemAvailable,
/// or less where a cgroup (a container, a Slurm job, a Kubernetes pod)
/// caps this process lower. Buffers whose size an input controls (a batch
/// of images, a kernel matrix) are checked against it before they are
/// allocated. `None` where neither can be read.
pub fn memory_available() -> Option<usize> {
    memory_available_from(Path::new("/proc/meminfo"), Path::new("/sys/fs/cgroup"))
}

/// [`memory_available`] from a `meminfo` file and a cgroup v2 folder.
fn memory_available_from(meminfo: &Path, cgroup: &Path) -> Option<usize> {
    let info = std::fs::read_to_string(meminfo).ok()?;
    let line = info.lines().find(|l| l.starts_with("MemAvailable:"))?;
    let kib: usize = line.split_whitespace().nth(1)?.parse().ok()?;
    let system = kib * 1024;
    let read = |name: &str| std::fs::read_to_string(cgroup.join(name)).ok()?.trim().parse::<usize>().ok();
    // cgroup v2 at the root of this process's namespace: "max" does not parse.
    let cgroup = read("memory.max").map(|max| max.saturating_sub(read("memory.current").unwrap_or(0)));
    Some(cgroup.map_or(system, |c| c.min(system)))
}

/// The bytes of an image file: a regular file (after following links),
/// read up to its own size and refused above `max_bytes`. Anything else
/// (a FIFO, a device, a socket, a dangling link) is refused by name,
/// without being opened.
pub fn read_file(path: &Path, max_bytes: u64) -> Result<Vec<u8>, String> {
    let meta = match std::fs::metadata(path) {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound && std::fs::symlink_metadata(path).is_ok() => {
            let to = std::fs::read_link(path).map(|t| t.display().to_string()).unwrap_or_default();
            return Err(format!("a dangling link (to {to})"));
        }
        Err(e) => return Err(e.to_string()),
    };
    if !meta.is_file() {
        return Err(format!("not a regular file ({})", atomic::kind_of(&meta)));
    }
    let len = meta.len();
    if len > max_bytes {
        return Err(too_large("file", len, max_bytes));
    }
    let f = std::fs::File::open(path).map_err(|e| e.to_string())?;
    let mut bytes = Vec::with_capacity(len as usize);
    // Its own size, and no more: a file that grows while it is read is read as it was.
    std::io::Read::read_to_end(&mut std::io::Read::take(f, len), &mut bytes).map_err(|e| e.to_string())?;
    Ok(bytes)
}

/// Decodes an image file (format guessed from its bytes) with its EXIF
/// orientation applied, refusing what [`read_file`] refuses, truncated
/// JPEGs and images of more than `limits.max_pixels` pixels.
pub fn open_oriented(at: &Location, limits: Limits) -> Result<DynamicImage, String> {
    decode_oriented(&at.read(limits.max_bytes)?, limits, None).map(|(img, _)| img)
}

/// As [`open_oriented`], but a JPEG with more pixels than a picture whose
/// shorter side is `min_side` needs is decoded at the largest of its own
/// reduced scales (1/2, 1/4, 1/8, in the DCT) that keeps the shorter side at
/// or above `min_side`: the choice of PIL's `draft(mode, (min_side,
/// min_side))`. Returns the image and the scale's denominator (1 where the
/// file was decoded at full size: not a JPEG, not large enough, or a kind
/// the scaled decoder does not take).
pub fn open_oriented_scaled(at: &Location, limits: Limits, min_side: u32) -> Result<(DynamicImage, u32), String> {
    open_oriented_at(at, limits, &|w, h| jpeg_scale(w, h, min_side))
}

/// As [`open_oriented_scaled`], with the denominator (1, 2, 4 or 8) chosen
/// by `choose` from the upright picture's full width and height, read from
/// the header before any pixel is decoded: a caller that cuts regions out
/// of the picture can keep each region's own resolution.
pub fn open_oriented_at(
    at: &Location,
    limits: Limits,
    choose: &dyn Fn(u32, u32) -> u32,
) -> Result<(DynamicImage, u32), String> {
    decode_oriented(&at.read(limits.max_bytes)?, limits, Some(choose))
}

fn decode_oriented(
    bytes: &[u8],
    limits: Limits,
    choose: Option<&dyn Fn(u32, u32) -> u32>,
) -> Result<(DynamicImage, u32), String> {
    let max_pixels = limits.max_pixels;
    let reader = ImageReader::new(Cursor::new(bytes)).with_guessed_format().map_err(|e| e.to_string())?;
    let jpeg = reader.format() == Some(ImageFormat::Jpeg);
    if jpeg && !jpeg_is_complete(bytes) {
        return Err("image file is truncated (no end-of-image marker)".into());
    }
    if reader.format() == Some(ImageFormat::Png) {
        check_png_chunks(bytes)?;
    }
    let mut alloc = image::Limits::default();
    // Room for the decoded pixels at up to 16 bytes each, and no more.
    alloc.max_alloc = Some(max_pixels.saturating_mul(16).max(1 << 20));
    let mut reader = reader;
    reader.limits(alloc);
    let mut decoder = reader.into_decoder().map_err(|e| e.to_string())?;
    let (w, h) = decoder.dimensions();
    check_pixels(w, h, max_pixels)?;
    let orientation = decoder.orientation().map_err(|e| e.to_string())?;
    // The header read above says whether a reduced scale is due; only then
    // does the scaled decoder read the file.
    let denominator = match choose {
        Some(choose) if jpeg => {
            let (uw, uh) = if turns_sideways(orientation) { (h, w) } else { (w, h) };
            choose(uw, uh)
        }
        _ => 1,
    };
    let scaled =
        if jpeg && matches!(denominator, 1 | 2 | 4 | 8) { decode_jpeg_scaled(bytes, denominator)? } else { None };
    let (mut img, denominator) = match scaled {
        Some(img) => (img, denominator),
        None => (guarded(|| DynamicImage::from_decoder(decoder))?.map_err(|e| e.to_string())?, 1),
    };
    img.apply_orientation(orientation);
    Ok((img, denominator))
}

/// Whether an EXIF orientation swaps width and height (a quarter turn, with
/// or without a mirror).
fn turns_sideways(o: image::metadata::Orientation) -> bool {
    use image::metadata::Orientation::*;
    matches!(o, Rotate90 | Rotate270 | Rotate90FlipH | Rotate270FlipH)
}

fn check_pixels(w: u32, h: u32, max_pixels: u64) -> Result<(), String> {
    let pixels = w as u64 * h as u64;
    if pixels > max_pixels {
        return Err(format!("image is {w}x{h} = {pixels} pixels, above the limit of {max_pixels} (--max-pixels)"));
    }
    Ok(())
}

/// The denominator of PIL's `draft` for a `w` x `h` JPEG asked for at
/// least `min_side` on each side: the largest of 8, 4, 2 that both sides
/// hold that many times over, or 1.
pub fn jpeg_scale(w: u32, h: u32, min_side: u32) -> u32 {
    let fits = w.min(h) / min_side.max(1);
    [8, 4, 2].into_iter().find(|&d| fits >= d).unwrap_or(1)
}

/// A JPEG decoded at 1 / `denominator` of its size (1: in full), unturned,
/// or `None` where the file is CMYK or another kind PIL's draft would not
/// turn into RGB (or one libjpeg cannot read the header of), in which case
/// the usual decoder reads it.
///
/// The decoder is libjpeg-turbo's (as mozjpeg carries it, built without
/// its assembly so that no assembler is needed): the one PIL runs, so the
/// pixels are PIL's, bit for bit, in full and at PIL's `draft` scales. (The
/// `image` crate's own JPEG decoder differed from PIL's by up to 4 grey
/// levels on the shared photos; libjpeg-turbo without its assembly costs
/// about 8% of the decode-bound rate.)
fn decode_jpeg_scaled(bytes: &[u8], denominator: u32) -> Result<Option<DynamicImage>, String> {
    use mozjpeg::ColorSpace;
    let Ok(Ok(mut decoder)) = guarded(|| mozjpeg::Decompress::new_mem(bytes)) else {
        return Ok(None); // the usual decoder names what is wrong
    };
    let grey = match decoder.color_space() {
        ColorSpace::JCS_GRAYSCALE => true,
        ColorSpace::JCS_YCbCr | ColorSpace::JCS_RGB => false,
        _ => return Ok(None),
    };
    decoder.scale((8 / denominator) as u8);
    let decoded = guarded(move || -> std::io::Result<(u32, u32, Vec<u8>)> {
        let mut started = if grey { decoder.grayscale()? } else { decoder.rgb()? };
        let (sw, sh) = (started.width() as u32, started.height() as u32);
        let pixels = started.read_scanlines::<u8>()?;
        started.finish()?;
        Ok((sw, sh, pixels))
    })?;
    let (sw, sh, pixels) = decoded.map_err(|e| e.to_string())?;
    let img = if grey {
        image::GrayImage::from_raw(sw, sh, pixels).map(DynamicImage::ImageLuma8)
    } else {
        image::RgbImage::from_raw(sw, sh, pixels).map(DynamicImage::ImageRgb8)
    };
    Ok(Some(img.ok_or("the scaled JPEG decoder returned fewer pixels than its size")?))
}

/// PIL's cap on one decompressed PNG text or ICC chunk
/// (`PngImagePlugin.MAX_TEXT_CHUNK`, `ImageFile.SAFEBLOCK`): 1 MiB.
pub const MAX_PNG_CHUNK: u64 = 1 << 20;

/// Refuses a PNG whose compressed metadata (an `iCCP` profile, `zTXt` or
/// `iTXt` text) inflates past [`MAX_PNG_CHUNK`], as PIL refuses it
/// ("Decompressed data too large"): a few kilobytes of such a chunk can
/// inflate to gigabytes, which the pixel limit never sees (a 32x32 image
/// cost 2.85 GB). Each chunk is inflated up to the cap and no further;
/// the pixels are the decoder's business.
pub fn check_png_chunks(b: &[u8]) -> Result<(), String> {
    let mut i = 8; // the signature
    while let Some(head) = b.get(i..i + 8) {
        let len = u32::from_be_bytes([head[0], head[1], head[2], head[3]]) as usize;
        let kind = &head[4..8];
        // A cut chunk: the decoder names it.
        let Some(data) = b.get(i + 8..(i + 8).saturating_add(len)) else { break };
        // Where the zlib stream starts: after the keyword's NUL and the
        // compression method (iCCP, zTXt); iTXt has a flag, a method, then
        // a language tag and a translated keyword, each NUL-ended.
        let nul = |from: usize| data.get(from..).and_then(|d| d.iter().position(|&c| c == 0)).map(|p| from + p + 1);
        let stream = match kind {
            b"iCCP" | b"zTXt" => nul(0).map(|k| k + 1),
            b"iTXt" => nul(0).filter(|&k| data.get(k) == Some(&1)).and_then(|k| nul(k + 2)).and_then(nul),
            b"IEND" => break,
            _ => None,
        };
        if let Some(at) = stream.filter(|&at| at <= data.len()) {
            let mut inflated = std::io::Read::take(flate2::read::ZlibDecoder::new(&data[at..]), MAX_PNG_CHUNK + 1);
            let n = std::io::copy(&mut inflated, &mut std::io::sink()).unwrap_or(0);
            if n > MAX_PNG_CHUNK {
                let name = String::from_utf8_lossy(kind);
                return Err(format!("PNG {name} chunk decompresses to more than {MAX_PNG_CHUNK} bytes (PIL's limit): a decompression bomb"));
            }
        }
        i = i.saturating_add(12).saturating_add(len);
    }
    Ok(())
}

/// Whether a JPEG stream reaches its end-of-image marker: the segments are
/// walked by their lengths (an EXIF thumbnail's own markers are skipped with
/// its segment), and each scan's entropy-coded data up to the next marker.
/// Data after the end marker does not matter, as in PIL.
pub fn jpeg_is_complete(b: &[u8]) -> bool {
    if b.len() < 2 || b[0] != 0xFF || b[1] != 0xD8 {
        return true; // not a JPEG stream: the decoder judges it
    }
    let mut i = 2;
    loop {
        while i < b.len() && b[i] != 0xFF {
            i += 1;
        }
        while i < b.len() && b[i] == 0xFF {
            i += 1; // fill bytes
        }
        let Some(&marker) = b.get(i) else { return false };
        i += 1;
        match marker {
            0xD9 => return true,
            0xD0..=0xD7 | 0x01 => continue, // restart markers and TEM carry no length
            _ => {
                let Some(len) = b.get(i..i + 2).map(|l| u16::from_be_bytes([l[0], l[1]]) as usize) else {
                    return false;
                };
                if len < 2 || i + len > b.len() {
                    return false;
                }
                i += len;
                if marker == 0xDA {
                    // Entropy-coded data: FF00 is a stuffed byte, FFD0..FFD7 restarts.
                    loop {
                        let (Some(&x), Some(&y)) = (b.get(i), b.get(i + 1)) else { return false };
                        if x == 0xFF && y != 0x00 && y != 0xFF && !(0xD0..=0xD7).contains(&y) {
                            break;
                        }
                        i += 1;
                    }
                }
            }
        }
    }
}

thread_local! {
    /// Set while a decoder runs on this thread, so the panic hook keeps quiet
    /// about a panic the caller turns into one "skipped" line.
    static DECODING: Cell<bool> = const { Cell::new(false) };
}

/// Runs a decoder: a panic in it becomes an error naming what it said, not
/// the end of the run.
fn guarded<T>(decode: impl FnOnce() -> T) -> Result<T, String> {
    DECODING.with(|d| d.set(true));
    let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(decode));
    DECODING.with(|d| d.set(false));
    r.map_err(|p| {
        let msg = p.downcast_ref::<&str>().map(|s| s.to_string()).or_else(|| p.downcast_ref::<String>().cloned());
        format!("the decoder failed on this file ({})", msg.unwrap_or_else(|| "panic".into()).replace('\n', " "))
    })
}

/// Installs a panic hook that is silent for panics inside a decoder (they
/// are reported as a skipped file, on one line) and Rust's usual report for
/// any other, which is a bug of ours and must show.
pub fn install_panic_hook() {
    let usual = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        if !DECODING.with(|d| d.get()) {
            usual(info);
        }
    }));
}

#[cfg(test)]
mod tests {
    use super::*;

    fn jpeg() -> Vec<u8> {
        let img = image::RgbImage::from_fn(64, 48, |x, y| image::Rgb([(x * 4) as u8, (y * 5) as u8, 90]));
        let mut out = Vec::new();
        DynamicImage::ImageRgb8(img).write_to(&mut Cursor::new(&mut out), ImageFormat::Jpeg).unwrap();
        out
    }

    #[test]
    fn a_jpeg_is_complete_up_to_its_end_marker_and_not_before() {
        let j = jpeg();
        assert!(jpeg_is_complete(&j));
        for cut in [j.len() * 4 / 10, j.len() - 2, j.len() - 1] {
            assert!(!jpeg_is_complete(&j[..cut]), "cut at {cut} of {}", j.len());
        }
        let mut trailing = j.clone();
        trailing.extend_from_slice(b"\xff\xd8 trailing garbage");
        assert!(jpeg_is_complete(&trailing));
        assert!(jpeg_is_complete(b"\x89PNG not a jpeg"));
    }

    /// A PNG with a chunk of `kind` inserted after IHDR: `keyword`, NUL,
    /// `prefix`, then `inflated` zlib-compressed.
    pub(crate) fn png_with_chunk(kind: &[u8; 4], prefix: &[u8], inflated: &[u8]) -> Vec<u8> {
        let img = image::RgbImage::from_fn(32, 32, |x, y| image::Rgb([(x * 8) as u8, (y * 8) as u8, 90]));
        let mut png = Vec::new();
        DynamicImage::ImageRgb8(img).write_to(&mut Cursor::new(&mut png), ImageFormat::Png).unwrap();
        let mut z = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::best());
        std::io::Write::write_all(&mut z, inflated).unwrap();
        let mut data = b"icc\0".to_vec();
        data.extend_from_slice(prefix);
        data.extend(z.finish().unwrap());
        let mut chunk = (data.len() as u32).to_be_bytes().to_vec();
        chunk.extend_from_slice(kind);
        chunk.extend_from_slice(&data);
        let mut crc = flate2::Crc::new();
        crc.update(kind);
        crc.update(&data);
        chunk.extend_from_slice(&crc.sum().to_be_bytes());
        let at = 8 + 25; // the signature, then IHDR
        png.splice(at..at, chunk);
        png
    }

    #[test]
    fn a_png_whose_metadata_inflates_past_pils_cap_is_refused_before_decoding() {
        let dir = tempfile::tempdir().unwrap();
        let open = |name: &str, png: &[u8]| {
            let path = dir.path().join(name);
            std::fs::write(&path, png).unwrap();
            open_oriented(&Location::File(path.clone()), Limits::default())
        };
        // 64 MB of zeros in 64 KB: the decoder would hold all of it.
        let bomb = vec![0u8; 64 << 20];
        for (kind, prefix) in [(b"iCCP", &b"\0"[..]), (b"zTXt", b"\0"), (b"iTXt", b"\x01\0en\0\0")] {
            let png = png_with_chunk(kind, prefix, &bomb);
            assert!(png.len() < 1 << 20, "{}", png.len());
            let e = open("bomb.png", &png).unwrap_err();
            assert!(e.contains(std::str::from_utf8(kind).unwrap()) && e.contains("decompression bomb"), "{e}");
        }
        // Under the cap the image reads as usual.
        let img = open("fine.png", &png_with_chunk(b"iCCP", b"\0", &vec![7u8; 900 << 10])).unwrap();
        assert_eq!((img.width(), img.height()), (32, 32));
    }

    #[test]
    fn memory_available_is_the_systems_or_a_lower_cgroup_limit_less_its_use() {
        let dir = tempfile::tempdir().unwrap();
        let (meminfo, cgroup) = (dir.path().join("meminfo"), dir.path().join("cgroup"));
        std::fs::create_dir(&cgroup).unwrap();
        let gib = 1usize << 30;
        std::fs::write(&meminfo, "MemTotal:       16777216 kB\nMemFree:  100 kB\nMemAvailable:    8388608 kB\n")
            .unwrap();
        // No cgroup files (a bare machine), or no limit ("max"): the system's MemAvailable.
        assert_eq!(memory_available_from(&meminfo, &cgroup), Some(8 * gib));
        std::fs::write(cgroup.join("memory.max"), "max\n").unwrap();
        std::fs::write(cgroup.join("memory.current"), format!("{}\n", gib / 2)).unwrap();
        assert_eq!(memory_available_from(&meminfo, &cgroup), Some(8 * gib));
        // A Slurm job or a pod limited to 2 GiB that uses half a GiB has 1.5 left.
        std::fs::write(cgroup.join("memory.max"), format!("{}\n", 2 * gib)).unwrap();
        assert_eq!(memory_available_from(&meminfo, &cgroup), Some(3 * gib / 2));
        // A limit above what the system has left: the system's.
        std::fs::write(cgroup.join("memory.max"), format!("{}\n", 64 * gib)).unwrap();
        assert_eq!(memory_available_from(&meminfo, &cgroup), Some(8 * gib));
        // Over its limit (the kernel reclaiming): nothing, not a wrapped huge number.
        std::fs::write(cgroup.join("memory.max"), format!("{}\n", gib / 4)).unwrap();
        assert_eq!(memory_available_from(&meminfo, &cgroup), Some(0));
        // No MemAvailable (a kernel before 3.14): not known.
        std::fs::write(&meminfo, "MemTotal: 16777216 kB\n").unwrap();
        assert_eq!(memory_available_from(&meminfo, &cgroup), None);
    }

    #[test]
    fn a_jpeg_is_scaled_as_pils_draft_chooses() {
        // PIL: scale = min(w // R, h // R), then the first of 8, 4, 2, 1 it reaches.
        for (w, h, scale) in
            [(511, 4000, 1), (512, 512, 2), (1023, 2000, 2), (1024, 1024, 4), (4032, 3024, 8), (300, 200, 1)]
        {
            assert_eq!(jpeg_scale(w, h, 256), scale, "{w}x{h}");
        }
    }

    #[test]
    fn a_large_jpeg_the_scaled_decoder_refuses_is_an_error_not_a_crash() {
        let img = image::RgbImage::from_fn(1024, 768, |x, y| image::Rgb([(x % 251) as u8, (y % 241) as u8, 90]));
        let mut j = Vec::new();
        DynamicImage::ImageRgb8(img).write_to(&mut Cursor::new(&mut j), ImageFormat::Jpeg).unwrap();
        // Every quantization table renamed to 3: the frame's components
        // name tables that were never defined.
        let mut i = 2;
        while j[i + 1] != 0xDA {
            let len = u16::from_be_bytes([j[i + 2], j[i + 3]]) as usize;
            if j[i + 1] == 0xDB {
                j[i + 4] = 3;
            }
            i += 2 + len;
        }
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("big.jpg");
        std::fs::write(&path, &j).unwrap();
        install_panic_hook();
        let err = open_oriented_scaled(&Location::File(path.clone()), Limits::default(), 256).unwrap_err();
        // libjpeg's own error, unwound out of its C and caught: one line.
        assert!(err.contains("Quantization table 0x00 was not defined") && !err.contains('\n'), "{err}");
    }

    #[test]
    fn a_panicking_decoder_is_an_error() {
        install_panic_hook();
        let r: Result<(), String> = guarded(|| panic!("bad huffman table"));
        assert_eq!(r.unwrap_err(), "the decoder failed on this file (bad huffman table)");
    }
}
