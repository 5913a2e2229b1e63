//! Feature scaling, fitted on the training file and saved with the classifier.

use ndarray::{Array2, ArrayView2, ArrayViewMut2};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum Scaler {
    /// (x - mean) / std per feature, as scikit-learn's StandardScaler
    /// (population std; a constant feature is only centred).
    Standard {
        mean: Vec<f64>,
        std: Vec<f64>,
    },
    /// Each row to unit Euclidean length.
    L2,
    None,
}

/// The scaling a user asks for; [`Scaler`] is it fitted (with the
/// training file's statistics where it has any), as a model's parameters
/// and the fitted model are two types.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Standard,
    L2,
    None,
}

featurefile::named_choice!(Kind { Standard => "standard", L2 => "l2", None => "none" });

impl Scaler {
    /// What was asked for.
    pub fn kind(&self) -> Kind {
        match self {
            Scaler::Standard { .. } => Kind::Standard,
            Scaler::L2 => Kind::L2,
            Scaler::None => Kind::None,
        }
    }

    /// Statistics summed in f64 over the f32 rows, as scikit-learn's
    /// StandardScaler does for float32 input.
    pub fn fit(kind: Kind, x: ArrayView2<f32>) -> Self {
        match kind {
            Kind::Standard => {
                let n = x.nrows().max(1) as f64;
                let mut mean = vec![0.0f64; x.ncols()];
                for row in x.rows() {
                    mean.iter_mut().zip(row).for_each(|(m, &v)| *m += f64::from(v));
                }
                mean.iter_mut().for_each(|m| *m /= n);
                let mut var = vec![0.0f64; x.ncols()];
                for row in x.rows() {
                    var.iter_mut().zip(row).zip(&mean).for_each(|((s, &v), m)| *s += (f64::from(v) - m).powi(2));
                }
                let std = var.iter().map(|s| (s / n).sqrt()).map(|s| if s > 1e-12 { s } else { 1.0 }).collect();
                Scaler::Standard { mean, std }
            }
            Kind::L2 => Scaler::L2,
            Kind::None => Scaler::None,
        }
    }

    /// Scales rows where they are: the training matrix is never copied.
    pub fn transform_in_place(&self, mut x: ArrayViewMut2<f32>) {
        match self {
            Scaler::Standard { mean, std } => {
                for mut row in x.rows_mut() {
                    for ((v, m), s) in row.iter_mut().zip(mean).zip(std) {
                        *v = ((f64::from(*v) - m) / s) as f32;
                    }
                }
            }
            Scaler::L2 => {
                for mut row in x.rows_mut() {
                    let n = row.iter().map(|&v| f64::from(v) * f64::from(v)).sum::<f64>().sqrt();
                    if n > 0.0 {
                        row.mapv_inplace(|v| (f64::from(v) / n) as f32);
                    }
                }
            }
            Scaler::None => {}
        }
    }

    pub fn transform(&self, x: ArrayView2<f32>) -> Array2<f32> {
        let mut out = x.to_owned();
        self.transform_in_place(out.view_mut());
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::array;

    #[test]
    fn standard_scaling_matches_scikit_learn() {
        let x = array![[1.0f32, 5.0], [3.0, 5.0], [5.0, 5.0]];
        let s = Scaler::fit(Kind::Standard, x.view());
        let t = s.transform(x.view());
        let sd = (8.0f64 / 3.0).sqrt();
        assert_eq!(t.column(0).to_vec(), vec![(-2.0 / sd) as f32, 0.0, (2.0 / sd) as f32]);
        assert_eq!(t.column(1).to_vec(), vec![0.0, 0.0, 0.0]);
    }

    #[test]
    fn l2_scaling_gives_unit_rows() {
        let t = Scaler::L2.transform(array![[3.0f32, 4.0], [0.0, 0.0]].view());
        assert_eq!(t, array![[0.6, 0.8], [0.0, 0.0]]);
    }
}
