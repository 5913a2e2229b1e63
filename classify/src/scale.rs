//! Feature scaling, fitted on the training file and saved with the classifier.

use ndarray::{Array1, Array2, Axis};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum Scaler {
    /// (x - mean) / std per feature, as scikit-learn's StandardScaler
    /// (population std; a constant feature is only centred).
    Standard { mean: Vec<f64>, std: Vec<f64> },
    /// Each row to unit Euclidean length.
    L2,
    None,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Kind {
    Standard,
    L2,
    None,
}

impl Scaler {
    pub fn fit(kind: Kind, x: &Array2<f64>) -> Self {
        match kind {
            Kind::Standard => {
                let mean = x.mean_axis(Axis(0)).unwrap_or_else(|| Array1::zeros(x.ncols()));
                let std = x.std_axis(Axis(0), 0.0).mapv(|s| if s > 1e-12 { s } else { 1.0 });
                Scaler::Standard { mean: mean.to_vec(), std: std.to_vec() }
            }
            Kind::L2 => Scaler::L2,
            Kind::None => Scaler::None,
        }
    }

    pub fn transform(&self, x: &Array2<f64>) -> Array2<f64> {
        let mut out = x.clone();
        match self {
            Scaler::Standard { mean, std } => {
                for mut row in out.rows_mut() {
                    for ((v, m), s) in row.iter_mut().zip(mean).zip(std) {
                        *v = (*v - m) / s;
                    }
                }
            }
            Scaler::L2 => {
                for mut row in out.rows_mut() {
                    let n = row.dot(&row).sqrt();
                    if n > 0.0 {
                        row /= n;
                    }
                }
            }
            Scaler::None => {}
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::array;

    #[test]
    fn standard_scaling_matches_scikit_learn() {
        let x = array![[1.0, 5.0], [3.0, 5.0], [5.0, 5.0]];
        let s = Scaler::fit(Kind::Standard, &x);
        let t = s.transform(&x);
        let sd = (8.0f64 / 3.0).sqrt();
        assert_eq!(t.column(0).to_vec(), vec![-2.0 / sd, 0.0, 2.0 / sd]);
        assert_eq!(t.column(1).to_vec(), vec![0.0, 0.0, 0.0]);
    }

    #[test]
    fn l2_scaling_gives_unit_rows() {
        let t = Scaler::L2.transform(&array![[3.0, 4.0], [0.0, 0.0]]);
        assert_eq!(t, array![[0.6, 0.8], [0.0, 0.0]]);
    }
}
