//! The images the rows point to (`extract.root` joined with `path`), read as
//! `extract` read them: decoded, then turned upright by their EXIF
//! orientation. `extract` preprocesses what this returns and `classify`'s
//! report shows it, so both see the same picture.

use std::path::Path;

use image::{DynamicImage, ImageDecoder, ImageReader};

/// Decodes an image file (format guessed from its bytes) with its EXIF
/// orientation applied.
pub fn open_oriented(path: &Path) -> Result<DynamicImage, String> {
    let reader = ImageReader::open(path)
        .map_err(|e| e.to_string())?
        .with_guessed_format()
        .map_err(|e| e.to_string())?;
    let mut decoder = reader.into_decoder().map_err(|e| e.to_string())?;
    let orientation = decoder.orientation().map_err(|e| e.to_string())?;
    let mut img = DynamicImage::from_decoder(decoder).map_err(|e| e.to_string())?;
    img.apply_orientation(orientation);
    Ok(img)
}
