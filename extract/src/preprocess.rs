//! torchvision's eval transform, computed the way PIL computes it: decode to
//! RGB, resize the shorter side with PIL's antialiased bilinear filter,
//! center crop, scale to [0, 1], normalize with the ImageNet mean and std,
//! lay out as CHW float32.
//!
//! The resize is a port of Pillow's two-pass fixed-point resampler
//! (`libImaging/Resample.c`), so on the same decoded pixels the result is
//! bit-exact with PIL rather than merely close.

use std::path::Path;

use featurefile::{Decode, Views};
use image::{DynamicImage, RgbImage};

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
pub fn load_rgb(path: &Path, cfg: &Config) -> Result<RgbImage, String> {
    let img = match cfg.decode {
        Decode::Exact => images::open_oriented(path, cfg.limits)?,
        Decode::Scaled => images::open_oriented_scaled(path, cfg.limits, cfg.resize)?.0,
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
pub fn preprocess_file(path: &Path, cfg: &Config, out: &mut [f32]) -> Result<(), String> {
    let img = load_rgb(path, cfg)?;
    transform(&img, cfg, out);
    Ok(())
}

/// Decodes one image into its views (`cfg.views`, whose count of slots of
/// 3 x crop x crop `out` holds): view 0 as [`preprocess_file`] gives it,
/// then the augmented views of the image whose row path is `rel`
/// ([`views`]). A large JPEG is decoded a second time only where its views
/// need a finer scale than view 0's.
pub fn preprocess_views(path: &Path, rel: &str, cfg: &Config, out: &mut [f32]) -> Result<(), String> {
    let Some(v) = cfg.views else { return preprocess_file(path, cfg, out) };
    let per = cfg.values_per_image();
    let (first, rest) = out.split_at_mut(per);
    // The upright full size, read from the header (a JPEG) or the picture.
    let full = std::cell::Cell::new(None);
    let eval_scale = |w: u32, h: u32| {
        full.set(Some((w, h)));
        images::jpeg_scale(w, h, cfg.resize)
    };
    let (img0, d0) = match cfg.decode {
        Decode::Exact => (images::open_oriented(path, cfg.limits)?, 1),
        Decode::Scaled => images::open_oriented_at(path, cfg.limits, &eval_scale)?,
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
    let img = if again { rgb(images::open_oriented_at(path, cfg.limits, &|_, _| want)?.0) } else { img0 };
    let crop = cfg.crop as usize;
    for (b, slot) in boxes.iter().zip(rest.chunks_exact_mut(per)) {
        let region = views::cut(&img, views::on_decoded(b, w, h, img.width(), img.height()));
        let (rw, rh) = (region.width() as usize, region.height() as usize);
        let mut pixels = resize_window(region.as_raw(), rw, rh, crop, crop, 0, 0, crop, crop);
        if b.flip {
            views::flip_rows(&mut pixels, crop);
        }
        normalize(&pixels, cfg, slot);
    }
    Ok(())
}

/// Output size of torchvision's `Resize(size)` for a `w` x `h` image: the
/// shorter side becomes `size`, the longer keeps the aspect ratio, truncated.
pub fn resized_size(w: u32, h: u32, size: u32) -> (u32, u32) {
    let scaled = |long: u32, short: u32| (size as f64 * long as f64 / short as f64) as u32;
    if w <= h {
        (size, scaled(h, w))
    } else {
        (scaled(w, h), size)
    }
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
    let pixels = resize_window(img.as_raw(), w as usize, h as usize, nw as usize, nh as usize, left, top, crop, crop);
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

const PRECISION_BITS: u32 = 32 - 8 - 2;

/// Pillow's per-output-pixel filter taps for one axis, in fixed point.
struct Taps {
    /// (first input index, number of taps) per output index.
    bounds: Vec<(usize, usize)>,
    ksize: usize,
    weights: Vec<i32>,
}

impl Taps {
    fn new(in_size: usize, out_size: usize) -> Self {
        // Pillow's bilinear ("triangle") filter, support 1, widened by the
        // scale when downsampling: that widening is the antialiasing.
        let filter = |x: f64| {
            let x = x.abs();
            if x < 1.0 {
                1.0 - x
            } else {
                0.0
            }
        };
        let scale = in_size as f64 / out_size as f64;
        let filterscale = scale.max(1.0);
        let support = filterscale;
        let ksize = support.ceil() as usize * 2 + 1;
        let mut bounds = Vec::with_capacity(out_size);
        let mut weights = vec![0i32; out_size * ksize];
        let mut k = vec![0f64; ksize];
        for xx in 0..out_size {
            let center = (xx as f64 + 0.5) * scale;
            let ss = 1.0 / filterscale;
            // C's (int) cast truncates toward zero; negatives clamp to 0 either way.
            let xmin = ((center - support + 0.5) as i64).max(0) as usize;
            let xmax = ((center + support + 0.5) as i64).min(in_size as i64) as usize - xmin;
            let mut ww = 0.0;
            for (x, kx) in k.iter_mut().enumerate().take(xmax) {
                *kx = filter((x as f64 + xmin as f64 - center + 0.5) * ss);
                ww += *kx;
            }
            for (x, kx) in k.iter().enumerate().take(xmax) {
                let v = if ww != 0.0 { kx / ww } else { *kx };
                let fixed = v * (1u32 << PRECISION_BITS) as f64;
                weights[xx * ksize + x] = if v < 0.0 { (fixed - 0.5) as i32 } else { (fixed + 0.5) as i32 };
            }
            bounds.push((xmin, xmax));
        }
        Taps { bounds, ksize, weights }
    }

    fn taps(&self, out: usize) -> (usize, &[i32]) {
        let (start, n) = self.bounds[out];
        (start, &self.weights[out * self.ksize..out * self.ksize + n])
    }
}

#[inline]
fn clip8(v: i32) -> u8 {
    (v >> PRECISION_BITS).clamp(0, 255) as u8
}

/// Resizes an interleaved RGB image from `w` x `h` to `nw` x `nh` as Pillow
/// does, computing only the `cw` x `ch` window at (`left`, `top`) of the
/// result: every output pixel depends on its own taps alone, so the window
/// is bit-identical to cropping the full resize.
#[allow(clippy::too_many_arguments)]
fn resize_window(
    src: &[u8],
    w: usize,
    h: usize,
    nw: usize,
    nh: usize,
    left: usize,
    top: usize,
    cw: usize,
    ch: usize,
) -> Vec<u8> {
    let need_h = nw != w;
    let need_v = nh != h;
    let hx = need_h.then(|| Taps::new(w, nw));
    let vy = need_v.then(|| Taps::new(h, nh));
    // Input rows (columns) the window's output rows (columns) reach.
    let span = |t: &Option<Taps>, first: usize, n: usize| match t {
        Some(t) => {
            let a = t.bounds[first].0;
            let (s, c) = t.bounds[first + n - 1];
            (a, s + c)
        }
        None => (first, first + n),
    };
    // Pillow 13 runs the vertical pass first when it shrinks much more than
    // the horizontal one (growth counts as no shrinking); the intermediate
    // image is rounded to 8 bits, so the order shows in the result. The rule
    // was pinned down against PIL itself, enlargements and mixed cases included.
    let vertical_first = need_h && need_v && h.saturating_sub(nh) > 2 * w.saturating_sub(nw);
    if vertical_first {
        let (x0, x1) = span(&hx, left, cw);
        let tmp = vertical(src, w, x0, x1 - x0, 0, vy.as_ref().unwrap(), top, ch);
        horizontal(&tmp, x1 - x0, x0, hx.as_ref().unwrap(), left, cw, 0, ch)
    } else {
        let (y0, y1) = span(&vy, top, ch);
        let rows = match &hx {
            Some(hx) => horizontal(src, w, 0, hx, left, cw, y0, y1),
            // No horizontal resize: take the window's columns as they are.
            None => (y0..y1).flat_map(|y| &src[(y * w + left) * 3..(y * w + left + cw) * 3]).copied().collect(),
        };
        match &vy {
            Some(vy) => vertical(&rows, cw, 0, cw, y0, vy, top, ch),
            None => rows,
        }
    }
}

/// One output pixel: the taps `k` over the input pixels at byte offsets
/// `first`, `first + step`, ... of `src`.
#[inline]
fn convolve(src: &[u8], first: usize, step: usize, k: &[i32], px: &mut [u8]) {
    let mut acc = [1i32 << (PRECISION_BITS - 1); 3];
    for (i, &kv) in k.iter().enumerate() {
        let p = &src[first + i * step..first + i * step + 3];
        acc[0] += p[0] as i32 * kv;
        acc[1] += p[1] as i32 * kv;
        acc[2] += p[2] as i32 * kv;
    }
    px[0] = clip8(acc[0]);
    px[1] = clip8(acc[1]);
    px[2] = clip8(acc[2]);
}

/// Horizontal pass over rows `y0..y1` of `src` (row width `w`, whose column 0
/// is input column `x_off`), producing output columns `left..left+cw`.
#[allow(clippy::too_many_arguments)]
fn horizontal(
    src: &[u8],
    w: usize,
    x_off: usize,
    taps: &Taps,
    left: usize,
    cw: usize,
    y0: usize,
    y1: usize,
) -> Vec<u8> {
    let mut out = vec![0u8; (y1 - y0) * cw * 3];
    for (row_out, y) in out.chunks_exact_mut(cw * 3).zip(y0..y1) {
        for (xo, px) in row_out.chunks_exact_mut(3).enumerate() {
            let (start, k) = taps.taps(left + xo);
            convolve(src, (y * w + start - x_off) * 3, 3, k, px);
        }
    }
    out
}

/// Vertical pass over columns `x0..x0+width` of `src` (row width `w`, whose
/// row 0 is input row `y_off`), producing output rows `top..top+ch`.
#[allow(clippy::too_many_arguments)]
fn vertical(
    src: &[u8],
    w: usize,
    x0: usize,
    width: usize,
    y_off: usize,
    taps: &Taps,
    top: usize,
    ch: usize,
) -> Vec<u8> {
    let mut out = vec![0u8; ch * width * 3];
    for (yo, row_out) in out.chunks_exact_mut(width * 3).enumerate() {
        let (start, k) = taps.taps(top + yo);
        for (xi, px) in row_out.chunks_exact_mut(3).enumerate() {
            convolve(src, ((start - y_off) * w + x0 + xi) * 3, w * 3, k, px);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resized_size_matches_torchvision() {
        assert_eq!(resized_size(500, 375, 256), (341, 256));
        assert_eq!(resized_size(375, 500, 256), (256, 341));
        assert_eq!(resized_size(256, 256, 256), (256, 256));
        assert_eq!(resized_size(100, 50, 232), (464, 232));
    }

    #[test]
    fn crop_offset_rounds_half_to_even() {
        assert_eq!(crop_offset(341, 224), 58); // 58.5 -> 58
        assert_eq!(crop_offset(343, 224), 60); // 59.5 -> 60
        assert_eq!(crop_offset(256, 224), 16);
    }

    #[test]
    fn taps_sum_to_one_in_fixed_point() {
        for (a, b) in [(500, 341), (375, 256), (100, 256), (7, 3)] {
            let t = Taps::new(a, b);
            for o in 0..b {
                let s: i64 = t.taps(o).1.iter().map(|&v| v as i64).sum();
                assert!((s - (1 << PRECISION_BITS)).abs() <= t.ksize as i64, "{a}->{b} at {o}: {s}");
            }
        }
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

    #[test]
    fn window_equals_cropping_the_full_resize() {
        // A textured image, in both pass orders (wide and very tall).
        for (w, h) in [(97, 61), (40, 150), (64, 64)] {
            let img = RgbImage::from_fn(w, h, |x, y| image::Rgb([(x * 7 + y * 3) as u8, (x * y) as u8, (x ^ y) as u8]));
            let (nw, nh) = resized_size(w, h, 48);
            let full = resize_window(
                img.as_raw(),
                w as usize,
                h as usize,
                nw as usize,
                nh as usize,
                0,
                0,
                nw as usize,
                nh as usize,
            );
            let (l, t) = (crop_offset(nw, 40), crop_offset(nh, 40));
            let win = resize_window(img.as_raw(), w as usize, h as usize, nw as usize, nh as usize, l, t, 40, 40);
            for y in 0..40 {
                let a = &full[((t + y) * nw as usize + l) * 3..((t + y) * nw as usize + l + 40) * 3];
                assert_eq!(a, &win[y * 120..(y + 1) * 120], "{w}x{h} row {y}");
            }
        }
    }
}
