//! Stratified K-fold cross-validation to pick C (and gamma).

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
