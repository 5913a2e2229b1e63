//! Turns a layer's activations into one vector per image.

use featurefile::Pool;

/// How the activations of one image are laid out: `channels` x `spatial`.
fn layout(shape: &[i64]) -> (usize, usize) {
    let channels = shape.get(1).copied().unwrap_or(1).max(1) as usize;
    let spatial = shape.iter().skip(2).fold(1i64, |a, &d| a.saturating_mul(d.max(1))) as usize;
    (channels, spatial)
}

/// The pooling actually applied to a tensor of this shape when `requested`
/// is asked for: a tensor that already is one vector per image is kept as is.
pub fn effective(requested: Pool, shape: &[i64]) -> Pool {
    if layout(shape).1 == 1 {
        Pool::None
    } else {
        requested
    }
}

/// Values per image after pooling.
pub fn dim(pool: Pool, shape: &[i64]) -> usize {
    let (c, s) = layout(shape);
    match pool {
        Pool::None => c * s,
        Pool::Avg | Pool::Max => c,
        Pool::AvgMax => 2 * c,
    }
}

/// Appends the pooled vector of every image in `values` (shape `shape`,
/// batch first) to `out`.
pub fn pool_into(pool: Pool, shape: &[i64], values: &[f32], out: &mut Vec<f32>) {
    let (c, s) = layout(shape);
    let per_image = c * s;
    for image in values.chunks_exact(per_image) {
        if pool == Pool::None {
            out.extend_from_slice(image);
            continue;
        }
        let start = out.len();
        if matches!(pool, Pool::Avg | Pool::AvgMax) {
            out.extend(image.chunks_exact(s).map(|ch| (ch.iter().map(|&v| v as f64).sum::<f64>() / s as f64) as f32));
        }
        if matches!(pool, Pool::Max | Pool::AvgMax) {
            out.extend(image.chunks_exact(s).map(|ch| ch.iter().copied().fold(f32::NEG_INFINITY, f32::max)));
        }
        debug_assert_eq!(out.len() - start, dim(pool, shape));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pools_each_channel_of_each_image() {
        // 2 images, 2 channels, 2x2 spatial.
        let shape = [2, 2, 2, 2];
        let v: Vec<f32> = vec![1., 2., 3., 6., 0., 0., 0., 4., 5., 5., 5., 5., -1., -2., -3., -4.];
        let mut out = Vec::new();
        pool_into(Pool::AvgMax, &shape, &v, &mut out);
        assert_eq!(out, vec![3., 1., 6., 4., 5., -2.5, 5., -1.]);
        assert_eq!(dim(Pool::AvgMax, &shape), 4);
    }

    #[test]
    fn vectors_are_kept_as_they_are() {
        for shape in [[3i64, 4, 1, 1].as_slice(), [3, 4].as_slice()] {
            assert_eq!(effective(Pool::Max, shape), Pool::None);
            assert_eq!(dim(Pool::None, shape), 4);
        }
        let mut out = Vec::new();
        pool_into(Pool::None, &[1, 3], &[1., 2., 3.], &mut out);
        assert_eq!(out, vec![1., 2., 3.]);
    }
}
