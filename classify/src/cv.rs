//! Stratified K-fold cross-validation to pick C (and gamma).

use ndarray::{Array2, ArrayView2, Axis};

use crate::metrics::Metric;
use crate::model::{ClassWeight, Params, Trained};
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

/// Fold of each row where rows come `views` to an image, consecutively: the
/// images are dealt out as [`stratified_folds`] deals rows, and each row
/// goes with its image, so no image is in a fold's training and test rows
/// at once.
pub fn grouped_folds(y: &[usize], n_classes: usize, k: usize, views: usize) -> Vec<usize> {
    let per_image: Vec<usize> = y.iter().step_by(views.max(1)).copied().collect();
    let folds = stratified_folds(&per_image, n_classes, k);
    (0..y.len()).map(|r| folds[r / views.max(1)]).collect()
}

/// The cross-validation table and the candidate it picks.
#[derive(Debug, Clone)]
pub struct Table {
    /// (candidate, mean of the metric over the folds), in the candidates' order.
    pub rows: Vec<(Params, f64)>,
    /// The best mean; ties go to the first (smallest C) candidate.
    pub best: Params,
}

/// How the candidates are scored: over all folds, or on one holdout.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Validation {
    /// Stratified K-fold.
    Folds(usize),
    /// Fold 0 of a stratified 5-fold split held out once (large files).
    Holdout,
}

impl std::fmt::Display for Validation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Validation::Folds(k) => write!(f, "{k}-fold"),
            Validation::Holdout => f.write_str("holdout"),
        }
    }
}

/// Everything but the data that decides a cross-validation table.
pub struct How {
    pub validation: Validation,
    pub scaling: scale::Kind,
    /// The RBF gamma is scikit-learn's `scale` of each fold's rows.
    pub gamma_scale: bool,
    pub weight: ClassWeight,
    pub metric: Metric,
    /// Rows per image, consecutive: an image's views share a fold.
    pub views: usize,
    /// A grid done within this time prints no progress lines (`--progress-after`).
    pub quiet_for: std::time::Duration,
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
fn fold_params(params: Params, x_train: ArrayView2<f32>, gamma_scale: bool) -> Params {
    if gamma_scale {
        params.with_gamma(crate::model::scale_gamma(x_train))
    } else {
        params
    }
}

/// Scores every candidate by stratified cross-validation on the raw
/// (unscaled) rows `x_raw`: each fold's scaling is fitted on its training
/// rows only, as a pipeline in scikit-learn would, and with `gamma_scale`
/// so is the RBF gamma (scikit-learn's `scale`), so the held-out fold never
/// shapes its own model; so are balanced class weights. Along the list of
/// candidates, a logistic regression on a fold starts from the previous
/// candidate's solution there (a warm start: the grid ascends in C, and
/// each optimum is near the last). `candidates` is not empty. `progress` hears
/// a line as each candidate is scored: a grid on many rows takes minutes.
pub fn cross_validate(
    candidates: &[Params],
    x_raw: ArrayView2<f32>,
    y: &[usize],
    n_classes: usize,
    how: &How,
    progress: &mut dyn FnMut(&str),
) -> Result<Table> {
    let start = std::time::Instant::now();
    let (k, rounds) = match how.validation {
        Validation::Folds(k) => (k, k),
        Validation::Holdout => (5, 1),
    };
    let folds = grouped_folds(y, n_classes, k, how.views);
    // Each fold scaled once, whatever the number of candidates.
    let splits: Vec<Split> = (0..rounds)
        .map(|f| {
            let train: Vec<usize> = (0..y.len()).filter(|&i| folds[i] != f).collect();
            let test: Vec<usize> = (0..y.len()).filter(|&i| folds[i] == f).collect();
            let mut x_train = x_raw.select(Axis(0), &train);
            let mut x_test = x_raw.select(Axis(0), &test);
            let sc = scale::Scaler::fit(how.scaling, x_train.view());
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
    let mut rows = Vec::with_capacity(candidates.len());
    let mut last: Vec<Option<Trained>> = vec![None; splits.len()];
    for &params in candidates {
        let mut sum = 0.0;
        for (s, last) in splits.iter().zip(&mut last) {
            let fold = fold_params(params, s.x_train.view(), how.gamma_scale);
            let m = Trained::fit_from(fold, s.x_train.view(), &s.y_train, n_classes, how.weight, last.as_ref())?.model;
            sum += how.metric.of(&s.y_test, &m.predict(s.x_test.view(), n_classes), n_classes);
            *last = Some(m);
        }
        rows.push((params, sum / splits.len() as f64));
        // A quick grid stays quiet; a slow one says where it is.
        if start.elapsed() < how.quiet_for {
            continue;
        }
        progress(&format!(
            "cross-validation {}/{}: {params} {} {:.4} ({:.1} s)",
            rows.len(),
            candidates.len(),
            how.metric,
            sum / splits.len() as f64,
            start.elapsed().as_secs_f64()
        ));
    }
    let best = rows.iter().fold(rows[0], |b, &c| if c.1 > b.1 { c } else { b }).0;
    Ok(Table { rows, best })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_images_views_share_a_fold() {
        // Three views per image: classes 0, 0, 1, 1, 0, 1 image by image.
        let y: Vec<usize> = [0, 0, 1, 1, 0, 1].iter().flat_map(|&c| [c; 3]).collect();
        let f = grouped_folds(&y, 2, 3, 3);
        for image in f.chunks(3) {
            assert!(image.iter().all(|&g| g == image[0]), "{f:?}");
        }
        let per_image: Vec<usize> = f.iter().step_by(3).copied().collect();
        assert_eq!(per_image, stratified_folds(&[0, 0, 1, 1, 0, 1], 2, 3));
    }

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
