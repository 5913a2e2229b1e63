//! The linear C-SVM by dual coordinate descent (Hsieh, Chang, Lin, Keerthi
//! and Sundararajan, ICML 2008): LIBLINEAR's solver for the L2-regularized
//! hinge loss, shrinking included.
//!
//! Why not linfa-svm's SMO for the linear kernel: it fills a dense n x n
//! kernel matrix before it starts (n x n x D multiply-adds: 1,500 x 1,500 x
//! 2,048 for the benchmark's 10 classes), where coordinate descent touches
//! each row once per pass and keeps only the weight vector. linfa-svm still
//! serves the RBF kernel, whose matrix cannot be avoided.
//!
//! The bias is learned as the weight of a constant feature, as LIBLINEAR's
//! `-B` does, which keeps the dual free of libsvm's equality constraint but
//! puts the bias under the penalty too. With LIBLINEAR's usual `-B 1` on
//! standardized features (row norms near sqrt(D)) that penalty dominates and
//! the fit drifts from SVC's: 7.5 points of validation accuracy below it on
//! the shared photos' layer3. A constant as large as the rows' RMS norm
//! makes the bias as cheap as any direction of the data, and the accuracy
//! SVC's.

use ndarray::ArrayView2;
use serde::{Deserialize, Serialize};

/// w . x + b > 0 for the positive class.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Hyperplane {
    pub w: Vec<f64>,
    pub b: f64,
}

impl Hyperplane {
    pub fn decision(&self, x: &[f64]) -> f64 {
        dot(&self.w, x) + self.b
    }
}

/// Stop when the projected gradient's spread over a pass falls below this
/// (LIBLINEAR's default for its dual solvers is 0.1; tighter here, since
/// the passes are cheap at these sizes).
pub const EPS: f64 = 0.01;
/// Passes at most. Few rows in many dimensions (a pair of classes of a
/// small dataset on 2,048 features) are close to separable, and there dual
/// coordinate descent crawls: LIBLINEAR itself takes 4,000 to 19,000 passes
/// on pairs of 60 generated images x 256 features at this EPS. Stopped at
/// 1,000 (LIBLINEAR's and scikit-learn's default), 7% of the predictions
/// differed from the converged solution's.
pub const MAX_PASSES: usize = 100_000;

/// Fits rows `rows` of `x` (row-major, contiguous), `positive[k]` telling the
/// class of `rows[k]`, with penalty `c.0` on the positive rows' hinge losses
/// and `c.1` on the negative ones' (LIBLINEAR's `-w1`, `-w-1`: C times the
/// class weights). Also says whether it converged within MAX_PASSES.
pub fn fit(x: ArrayView2<f32>, rows: &[usize], positive: &[bool], c: (f64, f64)) -> (Hyperplane, bool) {
    fit_within(x, rows, positive, c, MAX_PASSES)
}

fn fit_within(
    x: ArrayView2<f32>,
    rows: &[usize],
    positive: &[bool],
    c: (f64, f64),
    max_passes: usize,
) -> (Hyperplane, bool) {
    let l = rows.len();
    let d = x.ncols();
    let row = |k: usize| x.row(rows[k]).to_slice().expect("rows are contiguous");
    let y: Vec<f64> = positive.iter().map(|&p| if p { 1.0 } else { -1.0 }).collect();
    // Each dual variable's upper bound: its class's C.
    let upper: Vec<f64> = positive.iter().map(|&p| if p { c.0 } else { c.1 }).collect();
    let norms: Vec<f64> = (0..l).map(|k| row(k).iter().map(|&v| f64::from(v) * f64::from(v)).sum()).collect();
    // The constant feature; `b` below is its weight.
    let bias = (norms.iter().sum::<f64>() / l as f64).sqrt().max(1.0);
    // The diagonal of Q = (y_i y_j x_i . x_j), the constant feature included.
    let qd: Vec<f64> = norms.iter().map(|n| n + bias * bias).collect();
    let mut alpha = vec![0.0; l];
    let mut w = vec![0.0; d];
    let mut b = 0.0;
    let mut index: Vec<usize> = (0..l).collect();
    let mut active = l;
    let (mut pg_max_old, mut pg_min_old) = (f64::INFINITY, f64::NEG_INFINITY);
    let mut rng = XorShift(0x9E37_79B9_7F4A_7C15);
    let mut converged = false;
    for _ in 0..max_passes {
        let (mut pg_max, mut pg_min) = (f64::NEG_INFINITY, f64::INFINITY);
        for s in 0..active {
            let j = s + rng.below(active - s);
            index.swap(s, j);
        }
        let mut s = 0;
        while s < active {
            let i = index[s];
            let xi = row(i);
            let g = y[i] * (dot(&w, xi) + b * bias) - 1.0;
            // The projected gradient; a variable stuck at a bound that the
            // last pass's spread says will stay there leaves the active set.
            let pg = if alpha[i] == 0.0 {
                if g > pg_max_old {
                    active -= 1;
                    index.swap(s, active);
                    continue;
                }
                g.min(0.0)
            } else if alpha[i] == upper[i] {
                if g < pg_min_old {
                    active -= 1;
                    index.swap(s, active);
                    continue;
                }
                g.max(0.0)
            } else {
                g
            };
            pg_max = pg_max.max(pg);
            pg_min = pg_min.min(pg);
            if pg.abs() > 1e-12 {
                let old = alpha[i];
                alpha[i] = (old - g / qd[i]).clamp(0.0, upper[i]);
                let step = (alpha[i] - old) * y[i];
                axpy(step, xi, &mut w);
                b += step * bias;
            }
            s += 1;
        }
        if pg_max - pg_min <= EPS {
            if active == l {
                converged = true;
                break;
            }
            // Converged on the shrunk set: check every variable once more.
            active = l;
            (pg_max_old, pg_min_old) = (f64::INFINITY, f64::NEG_INFINITY);
            continue;
        }
        pg_max_old = if pg_max <= 0.0 { f64::INFINITY } else { pg_max };
        pg_min_old = if pg_min >= 0.0 { f64::NEG_INFINITY } else { pg_min };
    }
    (Hyperplane { w, b: b * bias }, converged)
}

/// Four running sums, so the compiler can keep them in vector registers.
/// The rows are f32 (as stored), the weights and sums f64.
fn dot<T: Copy + Into<f64>>(a: &[f64], b: &[T]) -> f64 {
    let mut s = [0.0; 4];
    let (ca, cb) = (a.chunks_exact(4), b.chunks_exact(4));
    let tail: f64 = ca.remainder().iter().zip(cb.remainder()).map(|(x, &y)| x * y.into()).sum();
    for (x, y) in ca.zip(cb) {
        for k in 0..4 {
            s[k] += x[k] * y[k].into();
        }
    }
    s[0] + s[1] + s[2] + s[3] + tail
}

fn axpy(a: f64, x: &[f32], y: &mut [f64]) {
    for (yi, &xi) in y.iter_mut().zip(x) {
        *yi += a * f64::from(xi);
    }
}

/// A fixed-seed generator for the visiting order: the same data give the
/// same classifier.
struct XorShift(u64);

impl XorShift {
    fn below(&mut self, n: usize) -> usize {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 % n as u64) as usize
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::Array2;

    #[test]
    fn finds_the_separating_direction() {
        // Two noisy clouds in 5 dimensions, class by the sign of a fixed direction.
        let mut rng = XorShift(7);
        let mut uniform = || rng.below(1 << 20) as f32 / (1 << 20) as f32 - 0.5;
        let x = Array2::from_shape_fn((200, 5), |_| uniform());
        let truth = [1.0, -2.0, 0.5, 0.0, 1.5];
        let positive: Vec<bool> = x.rows().into_iter().map(|r| dot(&truth, r.as_slice().unwrap()) > 0.0).collect();
        let rows: Vec<usize> = (0..200).collect();
        let (h, converged) = fit(x.view(), &rows, &positive, (100.0, 100.0));
        assert!(converged);
        let wrong =
            rows.iter().filter(|&&r| (h.decision(&x.row(r).mapv(f64::from).to_vec()) > 0.0) != positive[r]).count();
        assert!(wrong <= 4, "{wrong} of 200 on the wrong side of a linearly separable split");
        // The direction found is the true one.
        let cos = dot(&h.w, &truth) / (dot(&h.w, &h.w).sqrt() * dot(&truth, &truth).sqrt());
        assert!(cos > 0.95, "cosine to the true normal {cos}");
    }

    #[test]
    fn a_solver_stopped_at_its_limit_says_so() {
        let mut rng = XorShift(11);
        let x = Array2::from_shape_fn((60, 40), |_| rng.below(1000) as f32 / 500.0 - 1.0);
        let positive: Vec<bool> = (0..60).map(|i| i % 2 == 0).collect();
        let rows: Vec<usize> = (0..60).collect();
        assert!(!fit_within(x.view(), &rows, &positive, (10.0, 10.0), 2).1, "two passes cannot converge here");
        assert!(fit(x.view(), &rows, &positive, (10.0, 10.0)).1);
    }

    #[test]
    fn a_subset_of_rows_is_fitted_alone() {
        // Rows outside `rows` must not matter, even absurd ones.
        let x = Array2::from_shape_vec((4, 2), vec![1.0f32, 0.0, -1.0, 0.0, 1e9, 1e9, 0.5, 0.1]).unwrap();
        let (h, _) = fit(x.view(), &[0, 1, 3], &[true, false, true], (1.0, 1.0));
        assert!(h.decision(&[1.0, 0.0]) > 0.0 && h.decision(&[-1.0, 0.0]) < 0.0, "{h:?}");
        assert!(h.w.iter().all(|w| w.abs() < 10.0), "{h:?}");
    }
}
