//! The classifiers, behind one fit / decision shape: logistic regression
//! (linfa-logistic; binary, or multinomial for more than two classes) and the
//! C-SVM: linear by dual coordinate descent (`linear_svm`, LIBLINEAR's
//! algorithm), RBF with linfa-svm's binary machine; one-vs-one with voting
//! for more than two classes, as libsvm and so scikit-learn's SVC do. `C`
//! and `gamma` mean what they mean in scikit-learn.
//!
//! One-vs-one rather than one-vs-rest: on the project's test tasks
//! one-vs-rest fell up to 4 points of accuracy below SVC, and with linfa's
//! dense kernel matrix K(K-1)/2 machines on two classes' rows each cost less
//! than K machines on all rows.

use linfa::prelude::*;
use linfa_logistic::{LogisticRegression, MultiLogisticRegression};
use linfa_svm::Svm;
use ndarray::{Array1, Array2, ArrayView2, Axis};
use serde::{Deserialize, Serialize};

use crate::linear_svm::{self, Hyperplane};
use crate::Error;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Kernel {
    Linear,
    Rbf,
}

/// What to fit.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Spec {
    /// `c`: inverse L2 strength, scikit-learn's C.
    Logistic { c: f64 },
    /// `gamma` for the RBF kernel: exp(-gamma |x - x'|^2).
    Svm { kernel: Kernel, c: f64, gamma: f64 },
}

/// scikit-learn's `gamma="scale"` on the (scaled) training rows `x`:
/// 1 / (n_features * x.var()).
pub fn scale_gamma(x: &Array2<f64>) -> f64 {
    let var = x.var(0.0);
    if var > 0.0 { 1.0 / (x.ncols() as f64 * var) } else { 1.0 }
}

impl Spec {
    /// The same spec with another RBF gamma (others are unchanged).
    pub fn with_gamma(self, g: f64) -> Spec {
        match self {
            Spec::Svm { kernel: Kernel::Rbf, c, .. } => Spec::Svm { kernel: Kernel::Rbf, c, gamma: g },
            other => other,
        }
    }
}

impl std::fmt::Display for Spec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Spec::Logistic { c } => write!(f, "logistic C={c}"),
            Spec::Svm { kernel: Kernel::Linear, c, .. } => write!(f, "svm linear C={c}"),
            Spec::Svm { kernel: Kernel::Rbf, c, gamma } => write!(f, "svm rbf C={c} gamma={gamma:.6}"),
        }
    }
}

/// A fitted model. Scores are per class: probabilities for the logistic
/// regression, decision values for the SVM.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum Model {
    Logistic {
        c: f64,
        /// Binary: one row (the weights of class 1); multinomial: one row per class.
        weights: Vec<Vec<f64>>,
        intercepts: Vec<f64>,
    },
    Svm {
        kernel: Kernel,
        c: f64,
        gamma: Option<f64>,
        /// Binary: one machine, class 1 positive. Else one per pair of
        /// classes i < j in order (0,1), (0,2), ..., (1,2), ...; class i positive.
        machines: Machines,
    },
}

/// The SVM's binary machines: hyperplanes for the linear kernel, linfa's
/// support-vector machines for RBF.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Machines {
    Linear(Vec<Hyperplane>),
    Kernel(Vec<Svm<f64, bool>>),
}

const LOGISTIC_MAX_ITERATIONS: u64 = 1000;
/// scikit-learn's `tol` for lbfgs: done when no component of the gradient of
/// the *mean* loss exceeds it.
const LOGISTIC_TOL: f64 = 1e-4;
const LOGISTIC_SLACK: f64 = 10.0;
/// Restarts of linfa's solver at most, and the relative fall in loss below
/// which another is not worth it.
const LOGISTIC_RESTARTS: usize = 50;
const LOGISTIC_LOSS_RTOL: f64 = 1e-9;

/// Penalized log loss: sum of -log p(true class) + alpha/2 |W|^2 (intercepts free),
/// the objective both linfa-logistic and scikit-learn minimize (alpha = 1/C).
fn logistic_loss(x: &Array2<f64>, y: &[usize], weights: &[Vec<f64>], intercepts: &[f64], alpha: f64) -> f64 {
    let model = Model::Logistic { c: 1.0 / alpha, weights: weights.to_vec(), intercepts: intercepts.to_vec() };
    let n_classes = if weights.len() == 1 { 2 } else { weights.len() };
    let p = model.scores(x.view(), n_classes);
    let nll: f64 = y.iter().enumerate().map(|(i, &k)| -p[[i, k]].max(f64::MIN_POSITIVE).ln()).sum();
    nll + 0.5 * alpha * weights.iter().flatten().map(|w| w * w).sum::<f64>()
}

/// The largest component of the loss's gradient (weights and intercepts).
fn logistic_gradient_max(x: &Array2<f64>, y: &[usize], weights: &[Vec<f64>], intercepts: &[f64], alpha: f64) -> f64 {
    let model = Model::Logistic { c: 1.0 / alpha, weights: weights.to_vec(), intercepts: intercepts.to_vec() };
    let n_classes = if weights.len() == 1 { 2 } else { weights.len() };
    let mut residual = model.scores(x.view(), n_classes);
    for (i, &k) in y.iter().enumerate() {
        residual[[i, k]] -= 1.0;
    }
    // Binary: the one weight row is class 1's.
    let residual = if weights.len() == 1 { residual.slice(ndarray::s![.., 1..]).to_owned() } else { residual };
    let w = Array2::from_shape_fn((weights.len(), weights[0].len()), |(k, d)| weights[k][d]);
    let grad_w = residual.t().dot(x) + &w * alpha;
    let grad_b = residual.sum_axis(Axis(0));
    grad_w.iter().chain(grad_b.iter()).fold(0.0, |m, g| m.max(g.abs()))
}

/// Fits a binary or multinomial logistic regression with linfa-logistic.
///
/// Its stopping rule is the gradient's L2 norm on the *summed* loss, at
/// 1e-4: thousands of times stricter than scikit-learn's (1e-4 on the
/// largest component, for the mean loss), so on 1,500 x 2,048 features with
/// 10 classes it ran its 1,000 iterations out, ten times scikit-learn's fit
/// time. Here the rule is scikit-learn's: the largest component of the
/// summed loss's gradient at most n x 1e-4. linfa is asked for an L2 norm
/// LOGISTIC_SLACK times that (the norm of P components can be up to sqrt(P)
/// times the largest), and asked again, ten times tighter, only while the
/// largest component is still above it.
///
/// linfa's L-BFGS (argmin) also stops when one step barely lowers the loss,
/// which on wide features can be far from the optimum: on 60 photos x 1024
/// layer3 features it stopped at twice scikit-learn's loss and lost a point
/// of validation accuracy. So where it stops short of the tolerance, it is
/// restarted from where it stopped, until the loss stops falling.
/// Returns the weights, the intercepts and whether a stopping rule was met
/// before the restarts ran out.
#[allow(clippy::type_complexity)]
fn fit_logistic(
    x: &Array2<f64>,
    y: &[usize],
    n_classes: usize,
    alpha: f64,
) -> Result<(Vec<Vec<f64>>, Vec<f64>, bool), String> {
    let ds = Dataset::new(x.clone(), Array1::from(y.to_vec()));
    let d = x.ncols();
    let tolerance = LOGISTIC_TOL * y.len() as f64;
    let mut slack = LOGISTIC_SLACK;
    let mut best: Option<(f64, Vec<Vec<f64>>, Vec<f64>)> = None;
    let mut init1: Option<Array1<f64>> = None;
    let mut init2: Option<Array2<f64>> = None;
    let mut converged = false;
    for _ in 0..LOGISTIC_RESTARTS {
        let (weights, intercepts) = if n_classes == 2 {
            let mut params = LogisticRegression::default()
                .alpha(alpha)
                .max_iterations(LOGISTIC_MAX_ITERATIONS)
                .gradient_tolerance(tolerance * slack);
            if let Some(p) = init1.take() {
                params = params.initial_params(p);
            }
            let fitted = params.fit(&ds).map_err(|e| e.to_string())?;
            let mut p = fitted.params().to_vec();
            p.push(fitted.intercept());
            init1 = Some(Array1::from(p));
            // linfa takes the first class it meets as the positive one.
            let sign = if fitted.labels().pos.class == 1 { 1.0 } else { -1.0 };
            (vec![fitted.params().iter().map(|w| w * sign).collect()], vec![fitted.intercept() * sign])
        } else {
            let mut params = MultiLogisticRegression::default()
                .alpha(alpha)
                .max_iterations(LOGISTIC_MAX_ITERATIONS)
                .gradient_tolerance(tolerance * slack);
            if let Some(p) = init2.take() {
                params = params.initial_params(p);
            }
            let fitted = params.fit(&ds).map_err(|e| e.to_string())?;
            let (w, b) = (fitted.params(), fitted.intercept());
            let mut p = Array2::zeros((d + 1, w.ncols()));
            p.slice_mut(ndarray::s![..d, ..]).assign(w);
            p.row_mut(d).assign(b);
            init2 = Some(p);
            // Columns follow the sorted class labels, which are 0..n_classes here.
            let mut weights = vec![Vec::new(); n_classes];
            let mut intercepts = vec![0.0; n_classes];
            for (col, &class) in fitted.classes().iter().enumerate() {
                weights[class] = w.column(col).to_vec();
                intercepts[class] = b[col];
            }
            (weights, intercepts)
        };
        let loss = logistic_loss(x, y, &weights, &intercepts, alpha);
        let done = best.as_ref().is_some_and(|(prev, _, _)| prev - loss <= LOGISTIC_LOSS_RTOL * prev.abs())
            || logistic_gradient_max(x, y, &weights, &intercepts, alpha) <= tolerance;
        if best.as_ref().is_none_or(|(prev, _, _)| loss < *prev) {
            best = Some((loss, weights, intercepts));
        }
        if done {
            converged = true;
            break;
        }
        slack = (slack / 10.0).max(1.0);
    }
    let (_, w, b) = best.expect("at least one fit");
    Ok((w, b, converged))
}

/// A fitted model, and whether its solver met its stopping rule: one that
/// ran out of iterations returns an approximate model, which the caller
/// must say.
#[derive(Debug, Clone)]
pub struct Fitted {
    pub model: Model,
    pub converged: bool,
}

impl Model {
    /// `y` holds class indices below `n_classes`; every class has examples.
    pub fn fit(spec: Spec, x: &Array2<f64>, y: &[usize], n_classes: usize) -> Result<Fitted, Error> {
        let fit_err = |reason: String| Error::Fit { spec, reason };
        match spec {
            Spec::Logistic { c } => {
                let (weights, intercepts, converged) = fit_logistic(x, y, n_classes, 1.0 / c).map_err(fit_err)?;
                Ok(Fitted { model: Model::Logistic { c, weights, intercepts }, converged })
            }
            Spec::Svm { kernel: Kernel::Linear, c, .. } => {
                let x = x.as_standard_layout();
                let (machines, converged): (Vec<Hyperplane>, Vec<bool>) = pairs(n_classes)
                    .into_iter()
                    .map(|(i, j)| {
                        let rows: Vec<usize> = (0..y.len()).filter(|&r| y[r] == i || y[r] == j).collect();
                        let positive: Vec<bool> = rows.iter().map(|&r| y[r] == i).collect();
                        linear_svm::fit(x.view(), &rows, &positive, c)
                    })
                    .unzip();
                Ok(Fitted {
                    model: Model::Svm { kernel: Kernel::Linear, c, gamma: None, machines: Machines::Linear(machines) },
                    converged: converged.iter().all(|&c| c),
                })
            }
            Spec::Svm { kernel, c, gamma } => {
                // libsvm's (and so SVC's) stopping tolerance, not linfa's far tighter 1e-7:
                // the same problem solved to the same precision.
                let params = Svm::<f64, bool>::params().pos_neg_weights(c, c).eps(1e-3);
                let params = match kernel {
                    Kernel::Linear => params.linear_kernel(),
                    // linfa's Gaussian kernel is exp(-|x - x'|^2 / eps).
                    Kernel::Rbf => params.gaussian_kernel(1.0 / gamma),
                };
                let machines = pairs(n_classes)
                    .into_iter()
                    .map(|(i, j)| {
                        let rows: Vec<usize> = (0..y.len()).filter(|&r| y[r] == i || y[r] == j).collect();
                        let target = Array1::from_iter(rows.iter().map(|&r| y[r] == i));
                        let ds = Dataset::new(x.select(Axis(0), &rows), target);
                        params.fit(&ds).map_err(|e| fit_err(e.to_string()))
                    })
                    .collect::<Result<Vec<_>, _>>()?;
                // linfa-svm keeps its exit reason private but prints it.
                let converged = machines.iter().all(|m| !m.to_string().starts_with("Reached maximal iterations"));
                Ok(Fitted {
                    model: Model::Svm {
                        kernel,
                        c,
                        gamma: (kernel == Kernel::Rbf).then_some(gamma),
                        machines: Machines::Kernel(machines),
                    },
                    converged,
                })
            }
        }
    }

    /// rows x classes scores; the predicted class is the largest.
    pub fn scores(&self, x: ArrayView2<f64>, n_classes: usize) -> Array2<f64> {
        match self {
            Model::Logistic { weights, intercepts, .. } => {
                let w = Array2::from_shape_fn((weights.len(), weights[0].len()), |(k, d)| weights[k][d]);
                let z = x.dot(&w.t()) + Array1::from(intercepts.clone());
                if n_classes == 2 {
                    let p = z.column(0).mapv(|v| 1.0 / (1.0 + (-v).exp()));
                    ndarray::stack(Axis(1), &[p.mapv(|v| 1.0 - v).view(), p.view()]).expect("same length")
                } else {
                    let mut z = z;
                    for mut row in z.rows_mut() {
                        let m = row.fold(f64::NEG_INFINITY, |a, &b| a.max(b));
                        row.mapv_inplace(|v| (v - m).exp());
                        let s = row.sum();
                        row /= s;
                    }
                    z
                }
            }
            Model::Svm { machines: Machines::Kernel(machines), .. } => one_vs_one(
                machines.iter().map(|m| x.rows().into_iter().map(|r| m.weighted_sum(&r) - m.rho).collect()),
                x.nrows(),
                n_classes,
            ),
            Model::Svm { machines: Machines::Linear(machines), .. } => {
                let x = x.as_standard_layout();
                let decision = |h: &Hyperplane| -> Array1<f64> {
                    x.rows().into_iter().map(|r| h.decision(r.as_slice().expect("standard layout"))).collect()
                };
                one_vs_one(machines.iter().map(decision), x.nrows(), n_classes)
            }
        }
    }

    pub fn predict(&self, x: ArrayView2<f64>, n_classes: usize) -> Vec<usize> {
        self.classes_of(&self.scores(x, n_classes))
    }

    /// The predicted class of each row of `scores`.
    pub fn classes_of(&self, scores: &Array2<f64>) -> Vec<usize> {
        match self {
            // libsvm's rule, and so SVC's predict: most votes, ties to the
            // lower class index (the confidences in the scores would break them otherwise).
            Model::Svm { machines, .. } if machines.len() > 1 => argmax_rows(&scores.mapv(f64::round)),
            _ => argmax_rows(scores),
        }
    }
}

impl Machines {
    pub fn len(&self) -> usize {
        match self {
            Machines::Linear(m) => m.len(),
            Machines::Kernel(m) => m.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Class scores from the machines' decision values (machine by machine, row
/// by row, in `pairs` order). Binary: -d and d. Else votes, plus the summed
/// confidences squashed into (-1/3, 1/3) so they only break ties:
/// scikit-learn's decision_function.
fn one_vs_one(decisions: impl Iterator<Item = Array1<f64>>, rows: usize, n_classes: usize) -> Array2<f64> {
    let mut votes = Array2::<f64>::zeros((rows, n_classes));
    let mut conf = Array2::<f64>::zeros((rows, n_classes));
    for (d, (i, j)) in decisions.zip(pairs(n_classes)) {
        if n_classes == 2 {
            return ndarray::stack(Axis(1), &[d.mapv(|v| -v).view(), d.view()]).expect("same length");
        }
        for (r, d) in d.into_iter().enumerate() {
            votes[[r, if d > 0.0 { i } else { j }]] += 1.0;
            conf[[r, i]] += d;
            conf[[r, j]] -= d;
        }
    }
    votes + conf.mapv(|c| c / (3.0 * (c.abs() + 1.0)))
}

/// The one-vs-one pairs (i, j), i < j, in libsvm's order.
fn pairs(n_classes: usize) -> Vec<(usize, usize)> {
    if n_classes == 2 {
        return vec![(1, 0)];
    }
    (0..n_classes).flat_map(|i| (i + 1..n_classes).map(move |j| (i, j))).collect()
}

pub fn argmax_rows(s: &Array2<f64>) -> Vec<usize> {
    s.rows()
        .into_iter()
        .map(|r| r.iter().enumerate().fold((0, f64::NEG_INFINITY), |b, (i, &v)| if v > b.1 { (i, v) } else { b }).0)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::array;

    fn blobs(n_classes: usize) -> (Array2<f64>, Vec<usize>) {
        let mut rows = Vec::new();
        let mut y = Vec::new();
        for k in 0..n_classes {
            for i in 0..20 {
                let t = i as f64 / 20.0;
                rows.push([k as f64 * 3.0 + t.sin(), (k % 2) as f64 * 2.0 + t.cos(), t]);
                y.push(k);
            }
        }
        let x = Array2::from_shape_fn((rows.len(), 3), |(i, j)| rows[i][j]);
        (x, y)
    }

    #[test]
    fn every_model_separates_separable_classes() {
        for n in [2, 3] {
            let (x, y) = blobs(n);
            for spec in [
                Spec::Logistic { c: 1.0 },
                Spec::Svm { kernel: Kernel::Linear, c: 1.0, gamma: 0.0 },
                Spec::Svm { kernel: Kernel::Rbf, c: 1.0, gamma: 0.3 },
            ] {
                let m = Model::fit(spec, &x, &y, n).unwrap().model;
                assert_eq!(m.predict(x.view(), n), y, "{spec} on {n} classes");
            }
        }
    }

    #[test]
    fn logistic_probabilities_sum_to_one() {
        let (x, y) = blobs(3);
        let m = Model::fit(Spec::Logistic { c: 1.0 }, &x, &y, 3).unwrap().model;
        for row in m.scores(x.view(), 3).rows() {
            assert!((row.sum() - 1.0).abs() < 1e-9);
        }
        let b = Model::fit(Spec::Logistic { c: 1.0 }, &x.slice(ndarray::s![..40, ..]).to_owned(), &y[..40], 2)
            .unwrap()
            .model;
        let s = b.scores(array![[0.0, 0.0, 0.5]].view(), 2);
        assert!((s.row(0).sum() - 1.0).abs() < 1e-12 && s[[0, 0]] > 0.5, "{s}");
    }
}
