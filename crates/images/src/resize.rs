//! Pillow's antialiased bilinear resize, ported from its two-pass
//! fixed-point resampler (`libImaging/Resample.c`): on the same decoded
//! pixels the result is bit-exact with PIL rather than merely close, which
//! is what lets `extract`'s features equal PIL + ONNX Runtime's.

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

/// A rectangle of a resized image: the part of it that is computed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Window {
    pub left: usize,
    pub top: usize,
    pub width: usize,
    pub height: usize,
}

impl Window {
    /// The whole of a `width` x `height` image.
    pub fn whole(width: usize, height: usize) -> Self {
        Window { left: 0, top: 0, width, height }
    }
}

/// Resizes an interleaved RGB image of `w` x `h` pixels to `nw` x `nh` as
/// Pillow's `resize(..., BILINEAR)` does, computing only `window` of the
/// result: every output pixel depends on its own taps alone, so the window
/// is bit-identical to cropping the full resize.
pub fn resize_window(src: &[u8], (w, h): (usize, usize), (nw, nh): (usize, usize), window: Window) -> Vec<u8> {
    assert_eq!(src.len(), w * h * 3, "interleaved RGB of {w} x {h}");
    let Window { left, top, width: cw, height: ch } = window;
    assert!(left + cw <= nw && top + ch <= nh, "the window lies inside the resized image");
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
    use image::RgbImage;

    #[test]
    fn resized_size_matches_torchvision() {
        assert_eq!(resized_size(500, 375, 256), (341, 256));
        assert_eq!(resized_size(375, 500, 256), (256, 341));
        assert_eq!(resized_size(256, 256, 256), (256, 256));
        assert_eq!(resized_size(100, 50, 232), (464, 232));
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
    fn window_equals_cropping_the_full_resize() {
        // A textured image, in both pass orders (wide and very tall).
        for (w, h) in [(97, 61), (40, 150), (64, 64)] {
            let img = RgbImage::from_fn(w, h, |x, y| image::Rgb([(x * 7 + y * 3) as u8, (x * y) as u8, (x ^ y) as u8]));
            let (nw, nh) = resized_size(w, h, 48);
            let (size, to) = ((w as usize, h as usize), (nw as usize, nh as usize));
            let full = resize_window(img.as_raw(), size, to, Window::whole(to.0, to.1));
            let (l, t) = ((to.0 - 40) / 2, (to.1 - 40) / 2);
            let win = resize_window(img.as_raw(), size, to, Window { left: l, top: t, width: 40, height: 40 });
            for y in 0..40 {
                let a = &full[((t + y) * nw as usize + l) * 3..((t + y) * nw as usize + l + 40) * 3];
                assert_eq!(a, &win[y * 120..(y + 1) * 120], "{w}x{h} row {y}");
            }
        }
    }
}
