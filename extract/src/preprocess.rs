//! torchvision's eval transform, computed the way PIL computes it: decode to
//! RGB, resize the shorter side with PIL's antialiased bilinear filter,
//! center crop, scale to [0, 1], normalize with the ImageNet mean and std,
//! lay out as CHW float32.
//!
//! The resize is `images::resize`, Pillow's own resampler ported, so on the
//! same decoded pixels the result is bit-exact with PIL.

use featurefile::{Decode, Views};
use image::{DynamicImage, RgbImage};
use images::resize::{resize_window, resized_size, Window};
use images::Location;

use crate::views;

pub const IMAGENET_MEAN: [f32; 3] = [0.485, 0.456, 0.406];
pub const IMAGENET_STD: [f32; 3] = [0.229, 0.224, 0.225];
/// The name recorded in the feature file for the resize filter.
pub const FILTER: &str = "pil-bilinear-antialias";

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Config {
    pub resize: u32,
    pub crop: u32,
    pub mean: [f32; 3],
    pub std: [f32; 3],
    /// What a file may cost before it is refused (pixels, bytes), checked before decoding.
    pub limits: images::Limits,
    /// Whether a large JPEG is decoded at a reduced scale.
    pub decode: Decode,
    /// Augmented views after the eval transform's (`--views`); `None`: one row per image.
    pub views: Option<Views>,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            resize: 256,
            crop: 224,
            mean: IMAGENET_MEAN,
            std: IMAGENET_STD,
            limits: images::Limits::default(),
            decode: Decode::Scaled,
            views: None,
        }
    }
}

impl Config {
    /// Values per row of the model's input: 3 x crop x crop.
    pub fn values_per_image(&self) -> usize {
        3 * (self.crop as usize).pow(2)
    }

    /// Rows per image: 1, or the number of views.
    pub fn rows_per_image(&self) -> usize {
        featurefile::Views::rows_per_image(self.views)
    }

    /// The metadata record of this transform.
    pub fn record(&self) -> featurefile::Preprocess {
        featurefile::Preprocess {
            resize: self.resize,
            crop: self.crop,
            mean: self.mean.map(shortest),
            std: self.std.map(shortest),
            filter: FILTER.to_string(),
            decode: self.decode,
            views: self.views,
        }
    }
}

/// The f64 that prints as the f32 does (0.485, not 0.48500001430511475).
fn shortest(v: f32) -> f64 {
    v.to_string().parse().expect("a float prints as a float")
}

/// Decodes an image file to 8-bit RGB with its EXIF orientation applied.
/// Greyscale, palette, CMYK and alpha images are converted as PIL's
/// `convert("RGB")` does (alpha dropped); 16-bit samples are scaled to 8 bits
/// (PIL would clip them).
///
/// With [`Decode::Scaled`], a JPEG whose shorter side is at least twice
/// `resize` comes at a reduced scale that keeps it at or above `resize`.
pub fn load_rgb(at: &Location, cfg: &Config) -> Result<RgbImage, String> {
    let img = match cfg.decode {
        Decode::Exact => images::open_oriented(at, cfg.limits)?,
        Decode::Scaled => images::open_oriented_scaled(at, cfg.limits, cfg.resize)?.0,
    };
    Ok(rgb(img))
}

fn rgb(img: DynamicImage) -> RgbImage {
    match img {
        DynamicImage::ImageRgb8(rgb) => rgb,
        other => other.to_rgb8(),
    }
}

/// Decodes and transforms one image into `out` (3 x crop x crop, CHW). A
/// decoder's panic costs this file only (`images`); a panic in
/// the transform is a bug of ours and ends the run.
pub fn preprocess_file(at: &Location, cfg: &Config, out: &mut [f32]) -> Result<(), String> {
    let img = load_rgb(at, cfg)?;
    transform(&img, cfg, out);
    Ok(())
}

/// Decodes one image into its views (`cfg.views`, whose count of slots of
/// 3 x crop x crop `out` holds): view 0 as [`preprocess_file`] gives it,
/// then the augmented views of the image whose row path is `rel`
/// ([`views`]). A large JPEG is decoded a second time only where its views
/// need a finer scale than view 0's.
pub fn preprocess_views(at: &Location, rel: &str, cfg: &Config, out: &mut [f32]) -> Result<(), String> {
    let Some(v) = cfg.views else { return preprocess_file(at, cfg, out) };
    let per = cfg.values_per_image();
    let (first, rest) = out.split_at_mut(per);
    // The upright full size, read from the header (a JPEG) or the picture.
    let full = std::cell::Cell::new(None);
    let eval_scale = |w: u32, h: u32| {
        full.set(Some((w, h)));
        images::jpeg_scale(w, h, cfg.resize)
    };
    let (img0, d0) = match cfg.decode {
        Decode::Exact => (images::open_oriented(at, cfg.limits)?, 1),
        Decode::Scaled => images::open_oriented_at(at, cfg.limits, &eval_scale)?,
    };
    let img0 = rgb(img0);
    transform(&img0, cfg, first);
    let (w, h) = full.get().unwrap_or(img0.dimensions());
    let boxes = views::boxes(&v, rel, w, h);
    let want = match cfg.decode {
        Decode::Scaled if full.get().is_some() => views::scale_for(&boxes, cfg.crop),
        _ => 1,
    };
    // A JPEG the scaled decoder declined (CMYK) came at full size: so do its views.
    let again = want != d0 && !(d0 == 1 && images::jpeg_scale(w, h, cfg.resize) > 1);
    let img = if again { rgb(images::open_oriented_at(at, cfg.limits, &|_, _| want)?.0) } else { img0 };
    let crop = cfg.crop as usize;
    for (b, slot) in boxes.iter().zip(rest.chunks_exact_mut(per)) {
        let region = views::cut(&img, views::on_decoded(b, w, h, img.width(), img.height()));
        let (rw, rh) = (region.width() as usize, region.height() as usize);
        let mut pixels = resize_window(region.as_raw(), (rw, rh), (crop, crop), Window::whole(crop, crop));
        if b.flip {
            views::flip_rows(&mut pixels, crop);
        }
        normalize(&pixels, cfg, slot);
    }
    Ok(())
}

/// torchvision's `CenterCrop` offset, rounded half to even as Python does.
fn crop_offset(size: u32, crop: u32) -> usize {
    ((size as f64 - crop as f64) / 2.0).round_ties_even() as usize
}

pub fn transform(img: &RgbImage, cfg: &Config, out: &mut [f32]) {
    assert_eq!(out.len(), cfg.values_per_image());
    assert!(cfg.crop <= cfg.resize, "crop is validated against resize by the caller");
    let (w, h) = img.dimensions();
    let (nw, nh) = resized_size(w, h, cfg.resize);
    let crop = cfg.crop as usize;
    let (left, top) = (crop_offset(nw, cfg.crop), crop_offset(nh, cfg.crop));
    let window = Window { left, top, width: crop, height: crop };
    let pixels = resize_window(img.as_raw(), (w as usize, h as usize), (nw as usize, nh as usize), window);
    normalize(&pixels, cfg, out);
}

/// Interleaved RGB crop x crop pixels to the model's normalized CHW floats.
fn normalize(pixels: &[u8], cfg: &Config, out: &mut [f32]) {
    let plane = (cfg.crop as usize).pow(2);
    for c in 0..3 {
        // torchvision divides by 255 then normalizes, both in float32; a table
        // per channel gives the same values at a fraction of the cost.
        let lut: [f32; 256] = std::array::from_fn(|v| (v as f32 / 255.0 - cfg.mean[c]) / cfg.std[c]);
        let dst = &mut out[c * plane..(c + 1) * plane];
        for (d, px) in dst.iter_mut().zip(pixels.chunks_exact(3)) {
            *d = lut[px[c] as usize];
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crop_offset_rounds_half_to_even() {
        assert_eq!(crop_offset(341, 224), 58); // 58.5 -> 58
        assert_eq!(crop_offset(343, 224), 60); // 59.5 -> 60
        assert_eq!(crop_offset(256, 224), 16);
    }

    #[test]
    fn a_flat_image_stays_flat() {
        let img = RgbImage::from_pixel(300, 200, image::Rgb([10, 128, 250]));
        let cfg = Config::default();
        let mut out = vec![0f32; cfg.values_per_image()];
        transform(&img, &cfg, &mut out);
        // torchvision's ToTensor then Normalize with ImageNet's statistics,
        // in float32 (numpy: (np.float32([10, 128, 250]) / 255 - mean) / std).
        let want = [-1.946_656_5_f32, 0.205_182_2, 2.552_854_3];
        let plane = 224 * 224;
        for c in 0..3 {
            assert!(
                out[c * plane..(c + 1) * plane].iter().all(|&x| x == want[c]),
                "channel {c}: {} vs {}",
                out[c * plane],
                want[c]
            );
        }
    }
}
