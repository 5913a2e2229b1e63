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
//! A JPEG far larger than the picture needs can be decoded at its own
//! reduced scale ([`open_oriented_scaled`]): PIL's `draft`, by the decoder
//! PIL uses, so that a 12-megapixel photo costs what its thumbnail does.

use std::cell::Cell;
use std::io::Cursor;
use std::path::Path;

use image::{DynamicImage, ImageDecoder, ImageFormat, ImageReader};

/// PIL's default limit (`Image.MAX_IMAGE_PIXELS`): about 179 million pixels.
pub const DEFAULT_MAX_PIXELS: u64 = 178_956_970;
/// 1 GiB: far above any photo (a 12-Mpx JPEG is a few MB, an uncompressed
/// 100-Mpx TIFF 300 MB), far below what would hurt a node.
pub const DEFAULT_MAX_BYTES: u64 = 1 << 30;

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
        return Err(format!("not a regular file ({})", kind_of(&meta)));
    }
    let len = meta.len();
    if len > max_bytes {
        return Err(format!("file is {len} bytes, above the limit of {max_bytes} (--max-bytes)"));
    }
    let f = std::fs::File::open(path).map_err(|e| e.to_string())?;
    let mut bytes = Vec::with_capacity(len as usize);
    // Its own size, and no more: a file that grows while it is read is read as it was.
    std::io::Read::read_to_end(&mut std::io::Read::take(f, len), &mut bytes).map_err(|e| e.to_string())?;
    Ok(bytes)
}

fn kind_of(meta: &std::fs::Metadata) -> &'static str {
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
    if meta.is_dir() { "a folder" } else { "not a file" }
}

/// Decodes an image file (format guessed from its bytes) with its EXIF
/// orientation applied, refusing what [`read_file`] refuses, truncated
/// JPEGs and images of more than `limits.max_pixels` pixels.
pub fn open_oriented(path: &Path, limits: Limits) -> Result<DynamicImage, String> {
    decode_oriented(&read_file(path, limits.max_bytes)?, limits, None).map(|(img, _)| img)
}

/// As [`open_oriented`], but a JPEG with more pixels than a picture whose
/// shorter side is `min_side` needs is decoded at the largest of its own
/// reduced scales (1/2, 1/4, 1/8, in the DCT) that keeps the shorter side at
/// or above `min_side`: the choice of PIL's `draft(mode, (min_side,
/// min_side))`. Returns the image and the scale's denominator (1 where the
/// file was decoded at full size: not a JPEG, not large enough, or a kind
/// the scaled decoder does not take).
pub fn open_oriented_scaled(path: &Path, limits: Limits, min_side: u32) -> Result<(DynamicImage, u32), String> {
    open_oriented_at(path, limits, &|w, h| jpeg_scale(w, h, min_side))
}

/// As [`open_oriented_scaled`], with the denominator (1, 2, 4 or 8) chosen
/// by `choose` from the upright picture's full width and height, read from
/// the header before any pixel is decoded: a caller that cuts regions out
/// of the picture can keep each region's own resolution.
pub fn open_oriented_at(path: &Path, limits: Limits, choose: &dyn Fn(u32, u32) -> u32) -> Result<(DynamicImage, u32), String> {
    decode_oriented(&read_file(path, limits.max_bytes)?, limits, Some(choose))
}

fn decode_oriented(bytes: &[u8], limits: Limits, choose: Option<&dyn Fn(u32, u32) -> u32>) -> Result<(DynamicImage, u32), String> {
    let max_pixels = limits.max_pixels;
    let reader = ImageReader::new(Cursor::new(bytes)).with_guessed_format().map_err(|e| e.to_string())?;
    let jpeg = reader.format() == Some(ImageFormat::Jpeg);
    if jpeg && !jpeg_is_complete(bytes) {
        return Err("image file is truncated (no end-of-image marker)".into());
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
    let scaled = if matches!(denominator, 2 | 4 | 8) { decode_jpeg_scaled(bytes, denominator)? } else { None };
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

/// A JPEG decoded at 1 / `denominator` of its size, unturned, or `None`
/// where the file is CMYK or another kind PIL's draft would not turn into
/// RGB (or one libjpeg cannot read the header of), in which case the usual
/// decoder reads it.
///
/// The decoder is libjpeg-turbo's (as mozjpeg carries it, built without
/// its assembly so that no assembler is needed): the one PIL runs, so the
/// scaled pixels are PIL's `draft` pixels, bit for bit.
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

    #[test]
    fn a_jpeg_is_scaled_as_pils_draft_chooses() {
        // PIL: scale = min(w // R, h // R), then the first of 8, 4, 2, 1 it reaches.
        for (w, h, scale) in [(511, 4000, 1), (512, 512, 2), (1023, 2000, 2), (1024, 1024, 4), (4032, 3024, 8), (300, 200, 1)] {
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
        let err = open_oriented_scaled(&path, Limits::default(), 256).unwrap_err();
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
