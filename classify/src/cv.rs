//! Stratified K-fold cross-validation to pick C (and gamma).

use ndarray::{Array2, ArrayView2, Axis};

use crate::metrics::Metric;
use crate::model::{ClassWeight, Model, Spec};
use crate::{scale, Result};

/// Fold of each row: within each class, rows are dealt to the folds in turn,
/// in file order (which is sorted by path), so every fold gets its share of
/// every class and the split is the same on every run.
pub fn stratified_folds(y: &[usize], n_classes: usize, k: usize) -> Vec<usize> {
    let mut next = vec![0usize; n_classes];
    y.iter()
        .map(|&c| {
            let f = next[c] % k;
            next[c] += 1;
            f
        })
        .collect()
}

/// The cross-validation table and the candidate it picks.
#[derive(Debug, Clone)]
pub struct Table {
    /// (candidate, mean of the metric over the folds), in the candidates' order.
    pub rows: Vec<(Spec, f64)>,
    /// The best mean; ties go to the first (smallest C) candidate.
    pub best: Spec,
}

/// One fold held out: the other folds scaled by their own statistics, and
/// the held-out fold scaled the same way.
struct Split {
    x_train: Array2<f32>,
    y_train: Vec<usize>,
    x_test: Array2<f32>,
    y_test: Vec<usize>,
}

/// The candidate as fitted on one fold's (scaled) training rows: with
/// `gamma_scale`, its RBF gamma is scikit-learn's `scale` of those rows.
fn fold_spec(spec: Spec, x_train: ArrayView2<f32>, gamma_scale: bool) -> Spec {
    if gamma_scale {
        spec.with_gamma(crate::model::scale_gamma(x_train))
    } else {
        spec
    }
}

/// Scores every candidate by stratified `k`-fold cross-validation on the raw
/// (unscaled) rows `x_raw`: each fold's scaling is fitted on its training
/// rows only, as a pipeline in scikit-learn would, and with `gamma_scale`
/// so is the RBF gamma (scikit-learn's `scale`), so the held-out fold never
/// shapes its own model; so are balanced class weights. `specs` is not empty.
#[allow(clippy::too_many_arguments)]
pub fn cross_validate(
    specs: &[Spec],
    x_raw: ArrayView2<f32>,
    y: &[usize],
    n_classes: usize,
    k: usize,
    scaling: scale::Kind,
    gamma_scale: bool,
    weight: ClassWeight,
    metric: Metric,
) -> Result<Table> {
    let folds = stratified_folds(y, n_classes, k);
    // Each fold scaled once, whatever the number of candidates.
    let splits: Vec<Split> = (0..k)
        .map(|f| {
            let train: Vec<usize> = (0..y.len()).filter(|&i| folds[i] != f).collect();
            let test: Vec<usize> = (0..y.len()).filter(|&i| folds[i] == f).collect();
            let mut x_train = x_raw.select(Axis(0), &train);
            let mut x_test = x_raw.select(Axis(0), &test);
            let sc = scale::Scaler::fit(scaling, x_train.view());
            sc.transform_in_place(x_train.view_mut());
            sc.transform_in_place(x_test.view_mut());
            Split {
                x_train,
                y_train: train.iter().map(|&i| y[i]).collect(),
                x_test,
                y_test: test.iter().map(|&i| y[i]).collect(),
            }
        })
        .collect();
    let mut rows = Vec::with_capacity(specs.len());
    for &spec in specs {
        let mut sum = 0.0;
        for s in &splits {
            let fold = fold_spec(spec, s.x_train.view(), gamma_scale);
            let m = Model::fit(fold, s.x_train.view(), &s.y_train, n_classes, weight)?.model;
            sum += metric.of(&s.y_test, &m.predict(s.x_test.view(), n_classes), n_classes);
        }
        rows.push((spec, sum / k as f64));
    }
    let best = rows.iter().fold(rows[0], |b, &c| if c.1 > b.1 { c } else { b }).0;
    Ok(Table { rows, best })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn folds_are_stratified() {
        let y = [0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 0, 0];
        let f = stratified_folds(&y, 2, 3);
        for fold in 0..3 {
            for class in 0..2 {
                let n = y.iter().zip(&f).filter(|(c, g)| **c == class && **g == fold).count();
                assert_eq!(n, 2, "fold {fold} class {class}");
            }
        }
    }
}
