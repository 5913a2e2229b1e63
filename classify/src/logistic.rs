//! L2-regularized logistic regression, binary or multinomial, by L-BFGS
//! with a strong-Wolfe line search: the objective scikit-learn's
//! `LogisticRegression(solver="lbfgs")` minimizes, stopped by its rule.
//!
//! Why not linfa-logistic: its L-BFGS (argmin's, with a More-Thuente line
//! search that gives up early) crawls where transfer learning lives, n near
//! d and the classes separable, where the regularized optimum has large
//! weights: 500 x 2,048 with 10 classes took 30 s against scikit-learn's
//! 0.04 s (scripts/bench-logistic.sh), and at 5,000 rows it stopped short
//! of the optimum. It also copied the data for every restart.
//!
//! The objective, over weights W (one row per class; one row for binary)
//! and intercepts b (not penalized), with alpha = 1 / C and s_c the weight
//! of class c (1, or scikit-learn's `class_weight`):
//!   sum_i s_{y_i} (-log p(y_i | x_i)) + alpha / 2 |W|^2
//! Done when no component of its gradient exceeds sum_i s_{y_i} x TOL
//! (scikit-learn's rule, `gtol` on the weighted mean loss), or when an
//! iteration no longer lowers it (SciPy's `ftol`, which scikit-learn sets
//! to 64 machine epsilons).
//!
//! The first step has unit length along the negative gradient, as SciPy's
//! L-BFGS-B takes it, and the line search extrapolates by 4, as SciPy's
//! does at most. That matters: on separable features the objective keeps
//! falling far along the first line, and a shorter first step (1 / the
//! gradient's largest component) met scikit-learn's stopping rule at twenty
//! times its loss (10.0 against 0.53 on 2,000 x 2,048, 10 classes). With
//! it, the iterates are scikit-learn's own: on scripts/bench-logistic.sh the
//! final losses agree to 1e-14.

use ndarray::{Array1, Array2, ArrayView1, ArrayView2, Axis, LinalgScalar};

/// The design matrix's element: f32 (what classify holds: half the memory,
/// and matrix products twice as fast, which is most of a fit's time at
/// 20,000 rows) or f64. Weights, scores, losses and the solver's state are
/// f64 either way; only the two products per iteration run in `T`.
pub trait Element: LinalgScalar + Into<f64> {
    fn from_f64(v: f64) -> Self;
}

impl Element for f32 {
    fn from_f64(v: f64) -> Self {
        v as f32
    }
}

impl Element for f64 {
    fn from_f64(v: f64) -> Self {
        v
    }
}

/// scikit-learn's `tol` default for lbfgs: done when no component of the
/// mean loss's gradient exceeds it.
pub const TOL: f64 = 1e-4;
/// Iterations at most (scikit-learn's default is 100; its users raise it).
pub const MAX_ITERATIONS: usize = 1000;
/// Corrections kept (SciPy's default).
const MEMORY: usize = 10;
const FTOL: f64 = 64.0 * f64::EPSILON;

/// A fitted model: weights (one row per class, or class 1's alone for two
/// classes), intercepts, and how the fit ended.
#[derive(Debug, Clone)]
pub struct Fit {
    pub weights: Array2<f64>,
    pub intercepts: Array1<f64>,
    pub loss: f64,
    pub iterations: usize,
    pub converged: bool,
}

/// The problem: rows `x`, classes `y` (below `n_classes`), `alpha` = 1 / C,
/// each row's loss weighed by its class's `class_weight`.
struct Problem<'x, 'y, T> {
    x: ArrayView2<'x, T>,
    y: &'y [usize],
    class_weight: &'y [f64],
    /// Weight rows: 1 for two classes, else one per class.
    rows: usize,
    alpha: f64,
}

impl<T: Element> Problem<'_, '_, T> {
    fn dims(&self) -> usize {
        self.rows * (self.x.ncols() + 1)
    }

    fn split<'t>(&self, theta: &'t [f64]) -> (ArrayView2<'t, f64>, ArrayView1<'t, f64>) {
        let d = self.x.ncols();
        let w = ArrayView2::from_shape((self.rows, d), &theta[..self.rows * d]).expect("sized");
        (w, ArrayView1::from(&theta[self.rows * d..]))
    }

    /// The scores X W^T + b at `theta`.
    fn scores(&self, theta: &[f64]) -> Array2<f64> {
        let (w, b) = self.split(theta);
        let w = w.mapv(T::from_f64);
        let mut z = self.x.dot(&w.t()).mapv(Into::into);
        z += &b;
        z
    }

    /// The objective at `theta`, its gradient written to `grad` (the
    /// solver gets both along its line; the tests check them here).
    fn value_grad(&self, theta: &[f64], grad: &mut [f64]) -> f64 {
        let mut z = self.scores(theta);
        let data = self.data_loss(&mut z);
        self.gradient(theta, &z, grad);
        let (w, _) = self.split(theta);
        data + 0.5 * self.alpha * w.iter().map(|v| v * v).sum::<f64>()
    }

    /// The gradient at `theta` from the residual `r` = dLoss/dz there.
    fn gradient(&self, theta: &[f64], r: &Array2<f64>, grad: &mut [f64]) {
        let (w, _) = self.split(theta);
        let gw = r.mapv(T::from_f64).t().dot(&self.x).mapv(Into::into) + &w * self.alpha;
        let gb = r.sum_axis(Axis(0));
        let d = self.x.ncols();
        grad[..self.rows * d].copy_from_slice(gw.as_slice().expect("standard layout"));
        grad[self.rows * d..].copy_from_slice(gb.as_slice().expect("standard layout"));
    }

    /// The unpenalized loss of scores `z`, which become dLoss/dz:
    /// p - onehot(y).
    fn data_loss(&self, z: &mut Array2<f64>) -> f64 {
        let mut loss = 0.0;
        if self.rows == 1 {
            for (zi, &yi) in z.column_mut(0).iter_mut().zip(self.y) {
                let (t, s) = (if yi == 1 { 1.0 } else { -1.0 }, self.class_weight[yi]);
                let m = -t * *zi; // loss = log(1 + exp(m))
                loss += s * if m > 0.0 { m + (-m).exp().ln_1p() } else { m.exp().ln_1p() };
                *zi = -s * t / (1.0 + (-m).exp());
            }
        } else {
            for (mut row, &yi) in z.rows_mut().into_iter().zip(self.y) {
                let max = row.fold(f64::NEG_INFINITY, |a, &v| a.max(v));
                let sum: f64 = row.iter().map(|&v| (v - max).exp()).sum();
                let (lse, s) = (max + sum.ln(), self.class_weight[yi]);
                loss += s * (lse - row[yi]);
                row.mapv_inplace(|v| s * (v - lse).exp());
                row[yi] -= s;
            }
        }
        loss
    }
}

/// The objective along the line theta + t dir. The scores there are
/// z(t) = z0 + t zd, so once zd is known (one matrix product) each trial
/// step costs O(n K), not two products; the gradient is computed for the
/// accepted step only.
struct Line<'p, 'x, 'y, T> {
    p: &'p Problem<'x, 'y, T>,
    z0: &'p Array2<f64>,
    zd: Array2<f64>,
    /// W . D, |D|^2 and |W|^2 over the weights (the penalty along the line).
    wd: f64,
    dd: f64,
    ww: f64,
    /// The last step tried and the residual there.
    last: Option<(f64, Array2<f64>)>,
}

impl<'p, 'x, 'y, T: Element> Line<'p, 'x, 'y, T> {
    fn new(p: &'p Problem<'x, 'y, T>, theta: &[f64], dir: &[f64], z0: &'p Array2<f64>) -> Self {
        let zd = p.scores(dir);
        let (w, _) = p.split(theta);
        let (dw, _) = p.split(dir);
        let wd = w.iter().zip(dw.iter()).map(|(a, b)| a * b).sum();
        let dd = dw.iter().map(|v| v * v).sum();
        let ww = w.iter().map(|v| v * v).sum();
        Line { p, z0, zd, wd, dd, ww, last: None }
    }

    /// The objective and its derivative along the line at step `t`.
    fn eval(&mut self, t: f64) -> (f64, f64) {
        let mut z = self.z0.clone();
        z.scaled_add(t, &self.zd);
        let data = self.p.data_loss(&mut z);
        let a = self.p.alpha;
        let f = data + 0.5 * a * (self.ww + 2.0 * t * self.wd + t * t * self.dd);
        let d = (&z * &self.zd).sum() + a * (self.wd + t * self.dd);
        self.last = Some((t, z));
        (f, d)
    }

    /// Moves to step `t`: the new point and gradient into `theta_new` and
    /// `grad_new`; returns the scores there.
    fn accept(
        mut self,
        t: f64,
        theta: &[f64],
        dir: &[f64],
        theta_new: &mut [f64],
        grad_new: &mut [f64],
    ) -> Array2<f64> {
        theta_new.iter_mut().zip(theta.iter().zip(dir)).for_each(|(n, (x, d))| *n = x + t * d);
        let residual = match self.last.take() {
            Some((lt, r)) if lt == t => r,
            _ => {
                self.eval(t);
                self.last.take().expect("just evaluated").1
            }
        };
        self.p.gradient(theta_new, &residual, grad_new);
        let mut z = self.z0.clone();
        z.scaled_add(t, &self.zd);
        z
    }
}

fn dot(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

fn max_abs(v: &[f64]) -> f64 {
    v.iter().fold(0.0, |m, g| m.max(g.abs()))
}

/// The objective the fit minimizes, and its gradient, at `theta` (the
/// weight rows, row-major, then the intercepts; one row for two classes):
/// the class-weighted sum of the rows' log losses plus ||W||^2 / (2 C).
/// Public for the test that holds it to scikit-learn's own.
#[doc(hidden)]
pub fn objective(
    x: ArrayView2<f64>,
    y: &[usize],
    n_classes: usize,
    c: f64,
    class_weight: &[f64],
    theta: &[f64],
) -> (f64, Vec<f64>) {
    let p = Problem { x, y, class_weight, rows: if n_classes == 2 { 1 } else { n_classes }, alpha: 1.0 / c };
    assert_eq!(theta.len(), p.dims(), "theta holds every weight and intercept");
    let mut grad = vec![0.0; p.dims()];
    let value = p.value_grad(theta, &mut grad);
    (value, grad)
}

/// Fits the model; `y` holds class indices below `n_classes` (at least 2),
/// `class_weight` one weight per class (all 1: unweighted).
pub fn fit<T: Element>(x: ArrayView2<T>, y: &[usize], n_classes: usize, c: f64, class_weight: &[f64]) -> Fit {
    fit_within(x, y, n_classes, c, class_weight, None, MAX_ITERATIONS)
}

/// As [`fit`], starting from `start` (weights row by row, then intercepts,
/// as a [`Fit`] holds them) where it has the problem's size: a warm start
/// from the solution at a nearby C.
pub fn fit_from<T: Element>(
    x: ArrayView2<T>,
    y: &[usize],
    n_classes: usize,
    c: f64,
    class_weight: &[f64],
    start: Option<&[f64]>,
) -> Fit {
    fit_within(x, y, n_classes, c, class_weight, start, MAX_ITERATIONS)
}

pub(crate) fn fit_within<T: Element>(
    x: ArrayView2<T>,
    y: &[usize],
    n_classes: usize,
    c: f64,
    class_weight: &[f64],
    start: Option<&[f64]>,
    max_iterations: usize,
) -> Fit {
    assert_eq!(class_weight.len(), n_classes, "one weight per class");
    let p = Problem { x, y, class_weight, rows: if n_classes == 2 { 1 } else { n_classes }, alpha: 1.0 / c };
    let n = p.dims();
    let gtol = TOL * y.iter().map(|&c| class_weight[c]).sum::<f64>();
    let mut theta = start.filter(|s| s.len() == n).map_or_else(|| vec![0.0; n], <[f64]>::to_vec);
    let mut grad = vec![0.0; n];
    // At zeros (a cold start) the scores are zeros: no product needed.
    let mut z = if start.is_some_and(|s| s.len() == n) { p.scores(&theta) } else { Array2::zeros((y.len(), p.rows)) };
    let mut residual = z.clone();
    let (w0, _) = p.split(&theta);
    let mut f = p.data_loss(&mut residual) + 0.5 * p.alpha * w0.iter().map(|v| v * v).sum::<f64>();
    p.gradient(&theta, &residual, &mut grad);
    let (mut s_hist, mut y_hist, mut rho): (Vec<Vec<f64>>, Vec<Vec<f64>>, Vec<f64>) = (vec![], vec![], vec![]);
    let mut iterations = 0;
    let mut converged = max_abs(&grad) <= gtol;
    let mut new_theta = vec![0.0; n];
    let mut new_grad = vec![0.0; n];
    while !converged && iterations < max_iterations {
        iterations += 1;
        // Two-loop recursion: direction = -H grad.
        let mut q = grad.clone();
        let mut a = vec![0.0; s_hist.len()];
        for i in (0..s_hist.len()).rev() {
            a[i] = rho[i] * dot(&s_hist[i], &q);
            q.iter_mut().zip(&y_hist[i]).for_each(|(qj, yj)| *qj -= a[i] * yj);
        }
        let gamma = match (s_hist.last(), y_hist.last()) {
            (Some(s), Some(yv)) => dot(s, yv) / dot(yv, yv),
            // The first step: unit length (SciPy's; see the module's doc).
            _ => 1.0 / dot(&grad, &grad).sqrt().max(f64::MIN_POSITIVE),
        };
        q.iter_mut().for_each(|v| *v *= gamma);
        for i in 0..s_hist.len() {
            let bta = rho[i] * dot(&y_hist[i], &q);
            q.iter_mut().zip(&s_hist[i]).for_each(|(qj, sj)| *qj += (a[i] - bta) * sj);
        }
        let mut dir: Vec<f64> = q.iter().map(|v| -v).collect();
        let mut slope = dot(&grad, &dir);
        if slope >= 0.0 {
            // Not a descent direction (curvature lost): restart from the gradient.
            s_hist.clear();
            y_hist.clear();
            rho.clear();
            dir = grad.iter().map(|g| -g / max_abs(&grad).max(1.0)).collect();
            slope = dot(&grad, &dir);
        }
        let mut line = Line::new(&p, &theta, &dir, &z);
        let Some((step, f_new)) = line_search(&mut |t| line.eval(t), f, slope) else {
            // No step lowers the objective along this direction: as far as
            // double precision goes, this is the optimum when the gradient
            // is small, and a stall otherwise.
            converged = max_abs(&grad) <= gtol;
            break;
        };
        z = line.accept(step, &theta, &dir, &mut new_theta, &mut new_grad);
        let s: Vec<f64> = dir.iter().map(|d| d * step).collect();
        let yv: Vec<f64> = new_grad.iter().zip(&grad).map(|(a, b)| a - b).collect();
        let sy = dot(&s, &yv);
        if sy > 1e-10 * dot(&yv, &yv) {
            if s_hist.len() == MEMORY {
                s_hist.remove(0);
                y_hist.remove(0);
                rho.remove(0);
            }
            s_hist.push(s);
            y_hist.push(yv);
            rho.push(1.0 / sy);
        }
        let reduction = (f - f_new) / f.abs().max(f_new.abs()).max(1.0);
        std::mem::swap(&mut theta, &mut new_theta);
        std::mem::swap(&mut grad, &mut new_grad);
        f = f_new;
        converged = max_abs(&grad) <= gtol || reduction <= FTOL;
    }
    let d = x.ncols();
    let rows = p.rows;
    Fit {
        weights: Array2::from_shape_vec((rows, d), theta[..rows * d].to_vec()).expect("sized"),
        intercepts: Array1::from(theta[rows * d..].to_vec()),
        loss: f,
        iterations,
        converged,
    }
}

/// A step along the line meeting the strong Wolfe conditions (sufficient
/// decrease c1 = 1e-4, curvature c2 = 0.9), by bracketing (extrapolating by
/// 4, as SciPy's search does at most) and zooming with cubic interpolation
/// (Nocedal and Wright, algorithms 3.5 and 3.6). `phi(t)` is the objective
/// and its derivative at step t.
fn line_search(phi: &mut impl FnMut(f64) -> (f64, f64), f0: f64, slope0: f64) -> Option<(f64, f64)> {
    const C1: f64 = 1e-4;
    const C2: f64 = 0.9;
    const MAX_EVALS: usize = 50;
    let (mut t_prev, mut f_prev, mut d_prev) = (0.0, f0, slope0);
    let mut t = 1.0;
    let mut evals = 0;
    loop {
        let (f, d) = phi(t);
        evals += 1;
        if !f.is_finite() {
            t = 0.5 * (t_prev + t);
        } else if f > f0 + C1 * t * slope0 || (evals > 1 && f >= f_prev) {
            return zoom(phi, (t_prev, f_prev, d_prev), (t, f, d), f0, slope0, MAX_EVALS - evals);
        } else if d.abs() <= -C2 * slope0 {
            return Some((t, f));
        } else if d >= 0.0 {
            return zoom(phi, (t, f, d), (t_prev, f_prev, d_prev), f0, slope0, MAX_EVALS - evals);
        } else {
            (t_prev, f_prev, d_prev) = (t, f, d);
            t *= 4.0;
        }
        if evals >= MAX_EVALS {
            return None;
        }
    }
}

fn zoom(
    phi: &mut impl FnMut(f64) -> (f64, f64),
    mut lo: (f64, f64, f64),
    mut hi: (f64, f64, f64),
    f0: f64,
    slope0: f64,
    budget: usize,
) -> Option<(f64, f64)> {
    const C1: f64 = 1e-4;
    const C2: f64 = 0.9;
    for _ in 0..budget {
        let t = cubic_min(lo, hi);
        let (f, d) = phi(t);
        if f > f0 + C1 * t * slope0 || f >= lo.1 {
            hi = (t, f, d);
        } else {
            if d.abs() <= -C2 * slope0 {
                return Some((t, f));
            }
            if d * (hi.0 - lo.0) >= 0.0 {
                hi = lo;
            }
            lo = (t, f, d);
        }
        if (hi.0 - lo.0).abs() <= 1e-16 * lo.0.abs().max(1e-16) {
            break;
        }
    }
    // The best point found, if it lowered the objective at all.
    (lo.0 > 0.0 && lo.1 < f0).then_some((lo.0, lo.1))
}

/// The minimizer of the cubic through two points with their slopes, kept
/// inside the interval (bisection where the cubic gives nothing usable).
fn cubic_min((a, fa, da): (f64, f64, f64), (b, fb, db): (f64, f64, f64)) -> f64 {
    let d1 = da + db - 3.0 * (fa - fb) / (a - b);
    let disc = d1 * d1 - da * db;
    let (lo, hi) = if a < b { (a, b) } else { (b, a) };
    let mid = 0.5 * (a + b);
    if disc < 0.0 || !disc.is_finite() {
        return mid;
    }
    let d2 = (b - a).signum() * disc.sqrt();
    let t = b - (b - a) * (db + d2 - d1) / (db - da + 2.0 * d2);
    let margin = 0.1 * (hi - lo);
    if t.is_finite() && t > lo + margin && t < hi - margin {
        t
    } else {
        mid
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn blobs(n: usize, k: usize, d: usize, spread: f64, seed: u64) -> (Array2<f64>, Vec<usize>) {
        let mut s = seed;
        let mut next = move || {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            (s % 10_000) as f64 / 10_000.0 - 0.5
        };
        let y: Vec<usize> = (0..n).map(|i| i % k).collect();
        let x = Array2::from_shape_fn((n, d), |(i, j)| if j % k == y[i] { 1.0 } else { 0.0 } + spread * next());
        (x, y)
    }

    #[test]
    fn the_gradient_is_the_objectives() {
        for k in [2, 3] {
            let (x, y) = blobs(30, k, 4, 1.0, 3);
            let w: Vec<f64> = (0..k).map(|c| 0.5 + c as f64).collect();
            let p = Problem { x: x.view(), y: &y, class_weight: &w, rows: if k == 2 { 1 } else { k }, alpha: 0.7 };
            let theta: Vec<f64> = (0..p.dims()).map(|i| (i as f64 * 0.37).sin()).collect();
            let mut g = vec![0.0; p.dims()];
            p.value_grad(&theta, &mut g);
            for i in 0..p.dims() {
                let h = 1e-6;
                let (mut a, mut b) = (theta.clone(), theta.clone());
                a[i] += h;
                b[i] -= h;
                let mut scratch = vec![0.0; p.dims()];
                let numeric = (p.value_grad(&a, &mut scratch) - p.value_grad(&b, &mut scratch)) / (2.0 * h);
                assert!(
                    (numeric - g[i]).abs() < 1e-5 * (1.0 + g[i].abs()),
                    "k={k} component {i}: {numeric} vs {}",
                    g[i]
                );
            }
        }
    }

    #[test]
    fn an_iteration_limit_is_reported() {
        let (x, y) = blobs(200, 3, 20, 0.3, 5);
        let short = fit_within(x.view(), &y, 3, 1.0, &[1.0; 3], None, 2);
        assert!(!short.converged && short.iterations == 2);
        let full = fit(x.view(), &y, 3, 1.0, &[1.0; 3]);
        assert!(full.converged && full.loss < short.loss);
    }

    #[test]
    fn a_warm_start_from_a_nearby_c_reaches_the_same_optimum_sooner() {
        let (x, y) = blobs(300, 3, 40, 1.0, 4);
        let ones = [1.0; 3];
        let near = fit(x.view(), &y, 3, 0.316, &ones);
        let start: Vec<f64> = near.weights.iter().chain(near.intercepts.iter()).copied().collect();
        let cold = fit(x.view(), &y, 3, 1.0, &ones);
        let warm = fit_from(x.view(), &y, 3, 1.0, &ones, Some(&start));
        assert!(
            cold.converged && warm.converged,
            "cold {} {} warm {} {}",
            cold.converged,
            cold.iterations,
            warm.converged,
            warm.iterations
        );
        // Both stop at the gradient tolerance, not at the exact optimum.
        assert!((warm.loss - cold.loss).abs() <= 1e-4 * cold.loss, "warm {} vs cold {}", warm.loss, cold.loss);
        assert!(warm.iterations < cold.iterations, "warm {} iterations, cold {}", warm.iterations, cold.iterations);
    }

    #[test]
    fn f32_rows_reach_the_f64_optimum() {
        for (k, spread) in [(2, 0.3), (4, 0.3), (4, 3.0)] {
            let (x, y) = blobs(300, k, 50, spread, 9);
            let wide = fit(x.view(), &y, k, 1.0, &vec![1.0; k]);
            let narrow = fit(x.mapv(|v| v as f32).view(), &y, k, 1.0, &vec![1.0; k]);
            assert!(wide.converged && narrow.converged);
            // Both losses at the f64 rows, from each model's weights.
            let p = Problem {
                x: x.view(),
                y: &y,
                class_weight: &vec![1.0; k],
                rows: if k == 2 { 1 } else { k },
                alpha: 1.0,
            };
            let at = |f: &Fit| {
                let theta: Vec<f64> = f.weights.iter().chain(f.intercepts.iter()).copied().collect();
                p.value_grad(&theta, &mut vec![0.0; theta.len()])
            };
            let (lw, ln) = (at(&wide), at(&narrow));
            assert!((ln - lw).abs() <= 1e-6 * lw, "k={k} spread={spread}: f32 rows {ln}, f64 rows {lw}");
        }
    }
}
