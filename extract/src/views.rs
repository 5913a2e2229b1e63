//! Augmented views (`--views K --seed S`): the tutorial's training
//! transform, `RandomResizedCrop(crop)` then `RandomHorizontalFlip()`, as
//! torchvision draws them, from a generator of our own whose every step
//! FEATURE-FILE.md spells out, so that any reader can redraw a row's crop.
//!
//! A file is reproducible bit for bit: each image's generator is seeded by
//! the run's seed and the image's `path` alone, so a shard draws the same
//! views as the single run, whatever else is in the folder.

use image::RgbImage;
use sha2::{Digest, Sha256};

use featurefile::Views;

/// One augmented view: a region of the upright picture at full size, and
/// whether the crop is flipped left-right.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ViewBox {
    pub left: u32,
    pub top: u32,
    pub width: u32,
    pub height: u32,
    pub flip: bool,
}

/// SplitMix64 (Steele, Lea, Flood 2014): tiny, and the same in any language.
struct SplitMix64(u64);

impl SplitMix64 {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in [0, 1): the top 53 bits.
    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }

    fn uniform(&mut self, lo: f64, hi: f64) -> f64 {
        lo + (hi - lo) * self.unit()
    }

    /// An integer in [0, n) (`n` > 0); the modulo's bias is below 2^-40 for any picture.
    fn below(&mut self, n: u32) -> u32 {
        (self.next() % u64::from(n)) as u32
    }
}

/// The generator of one image: seeded by the first 8 bytes (little-endian)
/// of SHA-256 of `"{seed}:{path}"`.
fn generator(seed: u64, path: &str) -> SplitMix64 {
    let digest = Sha256::digest(format!("{seed}:{path}").as_bytes());
    SplitMix64(u64::from_le_bytes(digest[..8].try_into().expect("8 bytes")))
}

/// The boxes of views 1..count-1 of the image at `path`, whose upright
/// picture is `width` x `height` at full size: torchvision's
/// `RandomResizedCrop.get_params` (ten tries, then the centre crop of the
/// clamped ratio), then the flip's draw, in that order per view.
pub fn boxes(v: &Views, path: &str, width: u32, height: u32) -> Vec<ViewBox> {
    let mut rng = generator(v.seed, path);
    (1..v.count).map(|_| draw(&mut rng, v, width, height)).collect()
}

fn draw(rng: &mut SplitMix64, v: &Views, width: u32, height: u32) -> ViewBox {
    let area = f64::from(width) * f64::from(height);
    let (log_lo, log_hi) = (v.ratio[0].ln(), v.ratio[1].ln());
    let mut found = None;
    for _ in 0..10 {
        let target = area * rng.uniform(v.scale[0], v.scale[1]);
        let aspect = rng.uniform(log_lo, log_hi).exp();
        // Python's round: half to even.
        let w = (target * aspect).sqrt().round_ties_even();
        let h = (target / aspect).sqrt().round_ties_even();
        if w > 0.0 && w <= f64::from(width) && h > 0.0 && h <= f64::from(height) {
            let (w, h) = (w as u32, h as u32);
            let top = rng.below(height - h + 1);
            let left = rng.below(width - w + 1);
            found = Some((left, top, w, h));
            break;
        }
    }
    let (left, top, w, h) = found.unwrap_or_else(|| {
        let in_ratio = f64::from(width) / f64::from(height);
        let (w, h) = if in_ratio < v.ratio[0] {
            (width, (f64::from(width) / v.ratio[0]).round_ties_even() as u32)
        } else if in_ratio > v.ratio[1] {
            ((f64::from(height) * v.ratio[1]).round_ties_even() as u32, height)
        } else {
            (width, height)
        };
        ((width - w) / 2, (height - h) / 2, w, h)
    });
    let flip = rng.unit() < v.flip;
    ViewBox { left, top, width: w, height: h, flip }
}

/// The DCT scale (1, 2, 4 or 8) at which every box keeps its shorter side
/// at or above `crop` pixels: the views are never cut from pixels coarser
/// than the crop they are resized to.
pub fn scale_for(boxes: &[ViewBox], crop: u32) -> u32 {
    let shortest = boxes.iter().map(|b| b.width.min(b.height)).min().unwrap_or(0);
    // The eval decode's rule (PIL's draft), applied to the smallest crop.
    images::jpeg_scale(shortest, shortest, crop)
}

/// The box on a picture decoded at `img_w` x `img_h` from a full-size
/// `width` x `height`: each edge mapped and rounded to the nearest pixel
/// (halves up), at least one pixel wide and high. At full size it is the box.
pub fn on_decoded(b: &ViewBox, width: u32, height: u32, img_w: u32, img_h: u32) -> (u32, u32, u32, u32) {
    let map =
        |v: u32, full: u32, dec: u32| ((u64::from(v) * u64::from(dec) + u64::from(full) / 2) / u64::from(full)) as u32;
    let (x0, y0) = (map(b.left, width, img_w).min(img_w - 1), map(b.top, height, img_h).min(img_h - 1));
    let x1 = map(b.left + b.width, width, img_w).clamp(x0 + 1, img_w);
    let y1 = map(b.top + b.height, height, img_h).clamp(y0 + 1, img_h);
    (x0, y0, x1 - x0, y1 - y0)
}

/// Mirrors an interleaved RGB image of width `w` left-right, in place.
pub fn flip_rows(pixels: &mut [u8], w: usize) {
    for row in pixels.chunks_exact_mut(w * 3) {
        for x in 0..w / 2 {
            for c in 0..3 {
                row.swap(x * 3 + c, (w - 1 - x) * 3 + c);
            }
        }
    }
}

/// The region `(x, y, w, h)` of `img`, as its own image.
pub fn cut(img: &RgbImage, (x, y, w, h): (u32, u32, u32, u32)) -> RgbImage {
    image::imageops::crop_imm(img, x, y, w, h).to_image()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splitmix64_is_the_contracts_sequence() {
        // The algorithm as FEATURE-FILE.md spells it, run in Python's
        // arbitrary-precision integers (masked to 64 bits) for seed 1234567.
        let mut r = SplitMix64(1234567);
        let got: Vec<u64> = (0..3).map(|_| r.next()).collect();
        assert_eq!(got, [6457827717110365317, 3203168211198807973, 9817491932198370423]);
    }

    #[test]
    fn boxes_lie_inside_the_picture_within_the_ranges() {
        let v = Views::tutorial(200, 3);
        for (w, h) in [(500, 375), (375, 500), (64, 64), (4032, 3024), (3, 1000)] {
            let boxes = boxes(&v, "cats/a.jpg", w, h);
            assert_eq!(boxes.len(), 199);
            let flips = boxes.iter().filter(|b| b.flip).count();
            assert!((60..140).contains(&flips), "{w}x{h}: {flips} of 199 flipped");
            for b in &boxes {
                assert!(
                    b.width >= 1 && b.height >= 1 && b.left + b.width <= w && b.top + b.height <= h,
                    "{b:?} in {w}x{h}"
                );
                if (w, h) != (3, 1000) {
                    let share = f64::from(b.width * b.height) / f64::from(w * h);
                    assert!((0.07..=1.0).contains(&share), "{b:?}: {share} of {w}x{h}");
                }
            }
        }
        // A picture far from the ratio range falls back to its centre crop.
        assert!(boxes(&v, "x", 3, 1000).iter().any(|b| (b.left, b.top, b.width, b.height) == (0, 498, 3, 4)));
    }

    #[test]
    fn the_seed_and_the_path_alone_decide_the_boxes() {
        let v = Views::tutorial(4, 1);
        assert_eq!(boxes(&v, "cats/a.jpg", 640, 480), boxes(&v, "cats/a.jpg", 640, 480));
        assert_ne!(boxes(&v, "cats/a.jpg", 640, 480), boxes(&v, "cats/b.jpg", 640, 480));
        assert_ne!(boxes(&v, "cats/a.jpg", 640, 480), boxes(&Views::tutorial(4, 2), "cats/a.jpg", 640, 480));
    }

    #[test]
    fn a_box_maps_onto_a_scaled_decode() {
        let b = ViewBox { left: 1001, top: 7, width: 850, height: 3017, flip: false };
        assert_eq!(on_decoded(&b, 4032, 3024, 4032, 3024), (1001, 7, 850, 3017));
        // At 1/2 (libjpeg's ceil(4032/2) = 2016): halves round up.
        assert_eq!(on_decoded(&b, 4032, 3024, 2016, 1512), (501, 4, 425, 1508));
        assert_eq!(scale_for(&[b], 224), 2);
        assert_eq!(scale_for(&[b, ViewBox { width: 223, ..b }], 224), 1);
    }

    #[test]
    fn a_flip_mirrors_each_row() {
        let mut px = vec![1, 1, 1, 2, 2, 2, 3, 3, 3, 4, 4, 4, 5, 5, 5, 6, 6, 6];
        flip_rows(&mut px, 3);
        assert_eq!(px, [3, 3, 3, 2, 2, 2, 1, 1, 1, 6, 6, 6, 5, 5, 5, 4, 4, 4]);
    }
}
