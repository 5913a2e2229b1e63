//! The classifiers, behind one fit / decision shape: logistic regression
//! (`logistic`, L-BFGS; binary, or multinomial for more than two classes) and the
//! C-SVM: linear by dual coordinate descent (`linear_svm`, LIBLINEAR's
//! algorithm), RBF with linfa-svm's binary machine; one-vs-one with voting
//! for more than two classes, as libsvm and so scikit-learn's SVC do. `C`
//! and `gamma` mean what they mean in scikit-learn.
//!
//! And cosine k-nearest neighbours (`knn`): the training rows kept,
//! scaled and of unit length, a row's class scores the shares of its `k`
//! most similar rows' votes (scikit-learn's `KNeighborsClassifier` with
//! `metric="cosine"` and uniform weights; DINOv2's baseline probe).
//!
//! One-vs-one rather than one-vs-rest: on the project's test tasks
//! one-vs-rest fell up to 4 points of accuracy below SVC, and with linfa's
//! dense kernel matrix K(K-1)/2 machines on two classes' rows each cost less
//! than K machines on all rows.

use linfa::prelude::*;
use linfa_svm::Svm;
use ndarray::{Array1, Array2, ArrayView2, Axis};
use serde::{Deserialize, Serialize};

use crate::linear_svm::{self, Hyperplane};
use crate::logistic;
use crate::Error;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Kernel {
    Linear,
    Rbf,
}

featurefile::named_choice!(Kernel { Linear => "linear", Rbf => "rbf" });

/// How much each class's rows count in the fit: all alike, or scikit-learn's
/// `class_weight="balanced"`, n / (k n_c) for class c of n_c rows (k
/// classes, n rows), so that a rare class weighs as much as a common one.
/// The logistic loss of a row is multiplied by its class's weight; an SVM's
/// C is, per class (libsvm's and LIBLINEAR's `-wi`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ClassWeight {
    #[default]
    None,
    Balanced,
}

featurefile::named_choice!(ClassWeight { None => "none", Balanced => "balanced" });

impl ClassWeight {
    /// One weight per class for the rows of classes `y` (each of the
    /// `n_classes` has rows), computed on these rows, as scikit-learn does on
    /// what it is fitted on (a cross-validation fold's training rows, say).
    pub fn of(self, y: &[usize], n_classes: usize) -> Vec<f64> {
        match self {
            ClassWeight::None => vec![1.0; n_classes],
            ClassWeight::Balanced => {
                let mut counts = vec![0usize; n_classes];
                y.iter().for_each(|&c| counts[c] += 1);
                counts.iter().map(|&n_c| y.len() as f64 / (n_classes as f64 * n_c.max(1) as f64)).collect()
            }
        }
    }
}

/// What to fit.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Params {
    /// `c`: inverse L2 strength, scikit-learn's C.
    Logistic {
        c: f64,
    },
    Svm {
        c: f64,
        kernel: SvmKernel,
    },
    Knn {
        k: usize,
    },
}

/// An SVM's kernel with what it takes: only the RBF kernel has a width.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum SvmKernel {
    Linear,
    /// exp(-gamma |x - x'|^2).
    Rbf {
        gamma: f64,
    },
}

/// scikit-learn's `gamma="scale"` on the (scaled) training rows `x`:
/// 1 / (n_features * x.var()).
pub fn scale_gamma(x: ArrayView2<f32>) -> f64 {
    let n = x.len().max(1) as f64;
    let mean = x.iter().map(|&v| f64::from(v)).sum::<f64>() / n;
    let var = x.iter().map(|&v| (f64::from(v) - mean).powi(2)).sum::<f64>() / n;
    if var > 0.0 {
        1.0 / (x.ncols() as f64 * var)
    } else {
        1.0
    }
}

/// linfa-svm's SMO holds the dense kernel matrix of a machine's rows, n x n
/// doubles: refused when it would take more than half of `available` bytes
/// (one-vs-one: `rows` is the largest pair of classes), before any work.
pub fn check_kernel_fits(rows: usize, available: Option<usize>) -> Result<(), Error> {
    let bytes = rows.saturating_mul(rows).saturating_mul(std::mem::size_of::<f64>());
    match available {
        Some(available) if bytes > available / 2 => Err(Error::KernelTooLarge { rows, bytes, available }),
        _ => Ok(()),
    }
}

impl Params {
    /// The same params with another RBF gamma (others are unchanged).
    pub fn with_gamma(self, g: f64) -> Params {
        match self {
            Params::Svm { kernel: SvmKernel::Rbf { .. }, c } => Params::Svm { kernel: SvmKernel::Rbf { gamma: g }, c },
            other => other,
        }
    }
}

impl std::fmt::Display for Params {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Params::Logistic { c } => write!(f, "logistic C={c}"),
            Params::Svm { kernel: SvmKernel::Linear, c } => write!(f, "svm linear C={c}"),
            Params::Svm { kernel: SvmKernel::Rbf { gamma }, c } => write!(f, "svm rbf C={c} gamma={gamma:.6}"),
            Params::Knn { k } => write!(f, "knn k={k}"),
        }
    }
}

/// A fitted model. Scores are per class: probabilities for the logistic
/// regression, decision values for the SVM.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum Trained {
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
    Knn {
        k: usize,
        /// The training rows, scaled and of unit length (a zero row stays zero).
        rows: Rows,
        /// Each training row's class.
        labels: Vec<usize>,
    },
}

/// Row-major f32 rows, saved as base64 of their little-endian bytes (a
/// JSON number per value would take three times the space).
#[derive(Debug, Clone)]
pub struct Rows {
    pub dim: usize,
    pub values: Vec<f32>,
}

impl Serialize for Rows {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use base64::Engine;
        use serde::ser::SerializeStruct;
        let bytes: Vec<u8> = self.values.iter().flat_map(|v| v.to_le_bytes()).collect();
        let mut st = s.serialize_struct("Rows", 2)?;
        st.serialize_field("dim", &self.dim)?;
        st.serialize_field("f32le_base64", &base64::engine::general_purpose::STANDARD.encode(bytes))?;
        st.end()
    }
}

impl<'de> Deserialize<'de> for Rows {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        use base64::Engine;
        #[derive(Deserialize)]
        struct Raw {
            dim: usize,
            f32le_base64: String,
        }
        let raw = Raw::deserialize(d)?;
        let bytes =
            base64::engine::general_purpose::STANDARD.decode(raw.f32le_base64).map_err(serde::de::Error::custom)?;
        if raw.dim == 0 || bytes.len() % (4 * raw.dim) != 0 {
            return Err(serde::de::Error::custom("knn rows: not whole rows of dim floats"));
        }
        let values = bytes.chunks_exact(4).map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])).collect();
        Ok(Rows { dim: raw.dim, values })
    }
}

/// `x`'s rows scaled to unit length; a zero row stays zero.
fn unit_rows(x: ArrayView2<f64>) -> Array2<f64> {
    let mut u = x.to_owned();
    for mut r in u.rows_mut() {
        let n = r.dot(&r).sqrt();
        if n > 0.0 {
            r /= n;
        }
    }
    u
}

/// The SVM's binary machines: hyperplanes for the linear kernel, linfa's
/// support-vector machines for RBF.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Machines {
    Linear(Vec<Hyperplane>),
    Kernel(Vec<Svm<f64, bool>>),
}

/// An RBF machine's parts, read through its serialized form (linfa-svm
/// keeps the support vectors private): the support vectors with their
/// weights, paired as `Svm::weighted_sum` pairs them, rho and the kernel's eps.
pub(crate) struct RbfMachine {
    pub(crate) support: Vec<Vec<f64>>,
    pub(crate) alpha: Vec<f64>,
    pub(crate) rho: f64,
    pub(crate) eps: f64,
    /// The support vectors' length: the features'.
    pub(crate) dim: usize,
}

impl RbfMachine {
    /// The parts, or what is wrong with a machine a hand or a cut left
    /// inconsistent (linfa would panic on it when scoring).
    pub(crate) fn of(m: &Svm<f64, bool>) -> Result<Self, String> {
        let v = serde_json::to_value(m).map_err(|e| e.to_string())?;
        let eps = v["kernel_method"]["Gaussian"].as_f64().ok_or("not an RBF machine (no Gaussian kernel_method)")?;
        let sv = &v["sep_hyperplane"]["WeightedCombination"];
        let numbers = |v: &serde_json::Value, what: &str| -> Result<Vec<f64>, String> {
            v.as_array()
                .ok_or(format!("no {what}"))?
                .iter()
                .map(|x| x.as_f64().ok_or(format!("{what} holds a non-number")))
                .collect()
        };
        let shape = numbers(&sv["dim"], "support vector shape")?;
        let data = numbers(&sv["data"], "support vectors")?;
        let [n, dim] = shape[..] else { return Err("support vectors are not a matrix".into()) };
        let (n, dim) = (n as usize, dim as usize);
        if dim == 0 || n.checked_mul(dim) != Some(data.len()) {
            return Err(format!("{} support vector values for a {n} x {dim} matrix", data.len()));
        }
        let mut support: Vec<Vec<f64>> = data.chunks(dim).map(<[f64]>::to_vec).collect();
        // weighted_sum zips the support vectors with the weights above 100 epsilons.
        let alpha: Vec<f64> =
            m.alpha.iter().copied().filter(|a| a.abs() > 100.0 * f64::EPSILON).take(support.len()).collect();
        support.truncate(alpha.len());
        Ok(RbfMachine { support, alpha, rho: m.rho, eps, dim })
    }
}

/// A fitted model, and whether its solver met its stopping rule: one that
/// ran out of iterations returns an approximate model, which the caller
/// must say.
#[derive(Debug, Clone)]
pub struct Fitted {
    pub model: Trained,
    pub converged: bool,
}

/// libsvm's (and so SVC's) stopping tolerance, not linfa's far tighter 1e-7:
/// the same problem solved to the same precision.
const SMO_TOLERANCE: f64 = 1e-3;

/// One RBF machine per pair of classes by linfa-svm's SMO, stopped at
/// `tolerance`; also says whether every machine met it before linfa's
/// iteration limit.
fn fit_rbf(
    x: ArrayView2<f32>,
    y: &[usize],
    weights: &[f64],
    c: f64,
    gamma: f64,
    tolerance: f64,
) -> Result<(Vec<Svm<f64, bool>>, bool), String> {
    let machines = pairs(weights.len())
        .into_iter()
        .map(|(i, j)| {
            // linfa's Gaussian kernel is exp(-|x - x'|^2 / eps); class i is positive.
            let params = Svm::<f64, bool>::params()
                .pos_neg_weights(c * weights[i], c * weights[j])
                .eps(tolerance)
                .gaussian_kernel(1.0 / gamma);
            let rows: Vec<usize> = (0..y.len()).filter(|&r| y[r] == i || y[r] == j).collect();
            let target = Array1::from_iter(rows.iter().map(|&r| y[r] == i));
            // linfa-svm works in f64: the pair's rows alone are converted.
            let ds = Dataset::new(x.select(Axis(0), &rows).mapv(f64::from), target);
            params.fit(&ds).map_err(|e| e.to_string())
        })
        .collect::<Result<Vec<_>, _>>()?;
    // linfa-svm keeps its exit reason private but prints it.
    let converged = machines.iter().all(|m| !m.to_string().starts_with("Reached maximal iterations"));
    Ok((machines, converged))
}

impl Trained {
    /// `y` holds class indices below `n_classes`; every class has examples.
    pub fn fit(
        params: Params,
        x: ArrayView2<f32>,
        y: &[usize],
        n_classes: usize,
        weight: ClassWeight,
    ) -> Result<Fitted, Error> {
        Trained::fit_from(params, x, y, n_classes, weight, None)
    }

    /// As [`Trained::fit`]; a logistic regression starts from `warm`'s
    /// weights where that is one of the same shape (the other solvers
    /// start from zero either way).
    pub fn fit_from(
        params: Params,
        x: ArrayView2<f32>,
        y: &[usize],
        n_classes: usize,
        weight: ClassWeight,
        warm: Option<&Trained>,
    ) -> Result<Fitted, Error> {
        let fit_err = |reason: String| Error::Fit { params, reason };
        let weights = weight.of(y, n_classes);
        match params {
            Params::Knn { k } => {
                if k > y.len() {
                    return Err(Error::KLargerThanRows { k, rows: y.len() });
                }
                let u = crate::scale::Scaler::L2.transform(x);
                let rows = Rows { dim: x.ncols(), values: u.into_raw_vec_and_offset().0 };
                Ok(Fitted { model: Trained::Knn { k, rows, labels: y.to_vec() }, converged: true })
            }
            Params::Logistic { c } => {
                let start: Option<Vec<f64>> = match warm {
                    Some(Trained::Logistic { weights, intercepts, .. }) => {
                        Some(weights.iter().flatten().chain(intercepts).copied().collect())
                    }
                    _ => None,
                };
                let f = logistic::fit_from(x, y, n_classes, c, &weights, start.as_deref());
                let weights = f.weights.rows().into_iter().map(|r| r.to_vec()).collect();
                Ok(Fitted {
                    model: Trained::Logistic { c, weights, intercepts: f.intercepts.to_vec() },
                    converged: f.converged,
                })
            }
            Params::Svm { kernel: SvmKernel::Linear, c } => {
                let x = x.as_standard_layout();
                let (machines, converged): (Vec<Hyperplane>, Vec<bool>) = pairs(n_classes)
                    .into_iter()
                    .map(|(i, j)| {
                        let rows: Vec<usize> = (0..y.len()).filter(|&r| y[r] == i || y[r] == j).collect();
                        let positive: Vec<bool> = rows.iter().map(|&r| y[r] == i).collect();
                        linear_svm::fit(x.view(), &rows, &positive, (c * weights[i], c * weights[j]))
                    })
                    .unzip();
                Ok(Fitted {
                    model: Trained::Svm {
                        kernel: Kernel::Linear,
                        c,
                        gamma: None,
                        machines: Machines::Linear(machines),
                    },
                    converged: converged.iter().all(|&c| c),
                })
            }
            Params::Svm { kernel: SvmKernel::Rbf { gamma }, c } => {
                let (machines, converged) = fit_rbf(x, y, &weights, c, gamma, SMO_TOLERANCE).map_err(fit_err)?;
                Ok(Fitted {
                    model: Trained::Svm {
                        kernel: Kernel::Rbf,
                        c,
                        gamma: Some(gamma),
                        machines: Machines::Kernel(machines),
                    },
                    converged,
                })
            }
        }
    }

    /// rows x classes scores; the predicted class is the largest.
    /// Scores in f64 over f32 rows, a block of rows at a time, so a large
    /// file is never held twice.
    pub fn scores(&self, x: ArrayView2<f32>, n_classes: usize) -> Array2<f64> {
        by_blocks(x, n_classes, |xb| self.block_scores(xb.mapv(f64::from).view(), n_classes))
    }

    fn block_scores(&self, x: ArrayView2<f64>, n_classes: usize) -> Array2<f64> {
        match self {
            Trained::Knn { k, rows, labels } => {
                let train = ArrayView2::from_shape((labels.len(), rows.dim), &rows.values).expect("whole rows");
                let sims = unit_rows(x).dot(&train.mapv(f64::from).t());
                let mut scores = Array2::<f64>::zeros((x.nrows(), n_classes));
                let mut order: Vec<usize> = (0..labels.len()).collect();
                for (r, sim) in sims.rows().into_iter().enumerate() {
                    // The k most similar, ties to the lower row (ONNX's TopK's rule).
                    order.select_nth_unstable_by(*k - 1, |&a, &b| sim[b].total_cmp(&sim[a]).then(a.cmp(&b)));
                    for &i in &order[..*k] {
                        scores[[r, labels[i]]] += 1.0 / *k as f64;
                    }
                }
                scores
            }
            Trained::Logistic { weights, intercepts, .. } => {
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
            Trained::Svm { machines: Machines::Kernel(machines), .. } => one_vs_one(
                machines.iter().map(|m| x.rows().into_iter().map(|r| m.weighted_sum(&r) - m.rho).collect()),
                x.nrows(),
                n_classes,
            ),
            Trained::Svm { machines: Machines::Linear(machines), .. } => {
                let x = x.as_standard_layout();
                let decision = |h: &Hyperplane| -> Array1<f64> {
                    x.rows().into_iter().map(|r| h.decision(r.as_slice().expect("standard layout"))).collect()
                };
                one_vs_one(machines.iter().map(decision), x.nrows(), n_classes)
            }
        }
    }

    pub fn predict(&self, x: ArrayView2<f32>, n_classes: usize) -> Vec<usize> {
        self.classes_of(&self.scores(x, n_classes))
    }

    /// The predicted class of each row of `scores`.
    pub fn classes_of(&self, scores: &Array2<f64>) -> Vec<usize> {
        match self {
            // libsvm's rule, and so SVC's predict: most votes, ties to the
            // lower class index (the confidences in the scores would break them otherwise).
            Trained::Svm { machines, .. } if machines.len() > 1 => argmax_rows(&scores.mapv(f64::round)),
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

/// `f` over the rows of `x` a block at a time, its `cols` outputs per row
/// gathered: what a block needs beside the rows (a scaled or f64 copy)
/// stays a block's size.
pub(crate) fn by_blocks(x: ArrayView2<f32>, cols: usize, f: impl Fn(ArrayView2<f32>) -> Array2<f64>) -> Array2<f64> {
    const BLOCK: usize = 4096;
    let mut out = Array2::zeros((x.nrows(), cols));
    for (xb, mut ob) in x.axis_chunks_iter(Axis(0), BLOCK).zip(out.axis_chunks_iter_mut(Axis(0), BLOCK)) {
        ob.assign(&f(xb));
    }
    out
}

/// The one-vs-one pairs (i, j), i < j, in libsvm's order.
pub(crate) fn pairs(n_classes: usize) -> Vec<(usize, usize)> {
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

    fn blobs(n_classes: usize) -> (Array2<f32>, Vec<usize>) {
        let mut rows = Vec::new();
        let mut y = Vec::new();
        for k in 0..n_classes {
            for i in 0..20 {
                let t = i as f64 / 20.0;
                rows.push([k as f64 * 3.0 + t.sin(), (k % 2) as f64 * 2.0 + t.cos(), t]);
                y.push(k);
            }
        }
        let x = Array2::from_shape_fn((rows.len(), 3), |(i, j)| rows[i][j] as f32);
        (x, y)
    }

    #[test]
    fn every_model_separates_separable_classes() {
        for n in [2, 3] {
            let (x, y) = blobs(n);
            for params in [
                Params::Logistic { c: 1.0 },
                Params::Svm { kernel: SvmKernel::Linear, c: 1.0 },
                Params::Svm { kernel: SvmKernel::Rbf { gamma: 0.3 }, c: 1.0 },
            ] {
                let m = Trained::fit(params, x.view(), &y, n, ClassWeight::None).unwrap().model;
                assert_eq!(m.predict(x.view(), n), y, "{params} on {n} classes");
            }
        }
    }

    #[test]
    fn an_rbf_fit_stopped_at_linfas_iteration_limit_says_so() {
        let (x, y) = blobs(2);
        let (_, converged) = fit_rbf(x.view(), &y, &[1.0; 2], 1.0, 0.3, SMO_TOLERANCE).unwrap();
        assert!(converged, "separable blobs meet libsvm's tolerance");
        // A tolerance no gap in floating point meets: the real solver runs to linfa's own
        // limit (10 million steps), and the fit must say so.
        let (x, y) = (x.slice(ndarray::s![18..22, ..]).to_owned(), &y[18..22]);
        let (machines, converged) = fit_rbf(x.view(), y, &[1.0; 2], 1.0, 0.3, f64::MIN_POSITIVE).unwrap();
        assert!(!converged, "{}", machines[0]);
    }

    #[test]
    fn a_kernel_matrix_too_large_is_refused_with_its_size() {
        assert!(check_kernel_fits(1000, Some(16 << 20)).is_ok(), "8 MB in 16 MB");
        let e = check_kernel_fits(100_000, Some(24 << 30)).unwrap_err();
        assert!(matches!(e, Error::KernelTooLarge { rows: 100_000, bytes: 80_000_000_000, .. }), "{e}");
        assert!(e.to_string().contains("74.5 GiB, over half the 24.0 GiB"), "{e}");
        assert!(check_kernel_fits(100_000, None).is_ok(), "no reading, no refusal");
    }

    #[test]
    fn logistic_probabilities_sum_to_one() {
        let (x, y) = blobs(3);
        let m = Trained::fit(Params::Logistic { c: 1.0 }, x.view(), &y, 3, ClassWeight::None).unwrap().model;
        for row in m.scores(x.view(), 3).rows() {
            assert!((row.sum() - 1.0).abs() < 1e-9);
        }
        let b =
            Trained::fit(Params::Logistic { c: 1.0 }, x.slice(ndarray::s![..40, ..]), &y[..40], 2, ClassWeight::None)
                .unwrap()
                .model;
        let s = b.scores(array![[0.0f32, 0.0, 0.5]].view(), 2);
        assert!((s.row(0).sum() - 1.0).abs() < 1e-12 && s[[0, 0]] > 0.5, "{s}");
    }
}
