//! Accuracy, balanced accuracy, per-class precision / recall / F1, macro F1
//! and the confusion matrix, as a table for people and as JSON for
//! programs; and the metric cross-validation picks a model by.

use std::fmt::Write as _;

use std::collections::BTreeMap;

use serde_json::{json, Map, Value};

/// Up to this many classes, the confusion matrix is shown whole (a grid in
/// the table, the report and `--json`); above it, its largest off-diagonal
/// cells ([`Report::top_confusions`]): a grid of 10,000 classes is 10^8
/// cells nobody reads, and once took a 13.6 GB report.
pub const DENSE_CLASSES: usize = 100;

/// The cells named where the matrix is summarised.
pub const TOP_CONFUSIONS: usize = 100;

#[derive(Debug, Clone, PartialEq)]
pub struct ClassStats {
    pub precision: f64,
    pub recall: f64,
    pub f1: f64,
    pub support: usize,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Report {
    /// Confusion classes: the classifier's, then any class only the scored file has.
    pub classes: Vec<String>,
    /// The confusion matrix's nonzero cells: (true class, predicted class)
    /// -> rows, so that 10,000 classes cost their rows, not 10^8 cells.
    pub confusion: BTreeMap<(usize, usize), usize>,
    pub accuracy: f64,
    /// The mean of the recalls of the classes the truth holds
    /// (scikit-learn's `balanced_accuracy_score`): a model that always says
    /// the common class scores 1 / classes, whatever the imbalance.
    pub balanced_accuracy: f64,
    pub macro_f1: f64,
    pub per_class: Vec<ClassStats>,
    /// Labeled rows scored.
    pub rows: usize,
    /// Unlabeled rows in the file (not scored).
    pub unlabeled: usize,
}

impl Report {
    /// `truth` and `predicted` index into `classes`.
    pub fn new(classes: Vec<String>, truth: &[usize], predicted: &[usize], unlabeled: usize) -> Self {
        let k = classes.len();
        let mut confusion = BTreeMap::new();
        let (mut support, mut said, mut hits) = (vec![0usize; k], vec![0usize; k], vec![0usize; k]);
        for (&t, &p) in truth.iter().zip(predicted) {
            *confusion.entry((t, p)).or_insert(0) += 1;
            support[t] += 1;
            said[p] += 1;
            hits[t] += usize::from(t == p);
        }
        let correct: usize = hits.iter().sum();
        let ratio = |a: usize, b: usize| if b == 0 { 0.0 } else { a as f64 / b as f64 };
        let per_class: Vec<ClassStats> = (0..k)
            .map(|i| {
                let support = support[i];
                let precision = ratio(hits[i], said[i]);
                let recall = ratio(hits[i], support);
                let f1 = if precision + recall == 0.0 { 0.0 } else { 2.0 * precision * recall / (precision + recall) };
                ClassStats { precision, recall, f1, support }
            })
            .collect();
        // Macro F1 over the classes present in the truth or the predictions,
        // as scikit-learn averages over the labels it sees.
        let seen: Vec<&ClassStats> =
            per_class.iter().enumerate().filter(|(i, s)| s.support > 0 || said[*i] > 0).map(|(_, s)| s).collect();
        let macro_f1 = seen.iter().map(|s| s.f1).sum::<f64>() / seen.len().max(1) as f64;
        let true_classes: Vec<&ClassStats> = per_class.iter().filter(|s| s.support > 0).collect();
        let balanced_accuracy = true_classes.iter().map(|s| s.recall).sum::<f64>() / true_classes.len().max(1) as f64;
        Report {
            accuracy: ratio(correct, truth.len()),
            balanced_accuracy,
            macro_f1,
            per_class,
            confusion,
            classes,
            rows: truth.len(),
            unlabeled,
        }
    }

    /// The whole matrix (rows: true class, columns: predicted), where there
    /// are at most [`DENSE_CLASSES`] classes.
    pub fn matrix(&self) -> Option<Vec<Vec<usize>>> {
        let k = self.classes.len();
        (k <= DENSE_CLASSES).then(|| {
            let mut m = vec![vec![0; k]; k];
            self.confusion.iter().for_each(|(&(t, p), &n)| m[t][p] = n);
            m
        })
    }

    /// The `n` largest off-diagonal cells, (true, predicted, rows), most
    /// rows first (ties in class order).
    pub fn top_confusions(&self, n: usize) -> Vec<(usize, usize, usize)> {
        let mut cells: Vec<(usize, usize, usize)> =
            self.confusion.iter().filter(|((t, p), _)| t != p).map(|(&(t, p), &c)| (t, p, c)).collect();
        cells.sort_by(|a, b| b.2.cmp(&a.2).then((a.0, a.1).cmp(&(b.0, b.1))));
        cells.truncate(n);
        cells
    }

    /// `--json`'s confusion: the matrix, or above [`DENSE_CLASSES`] classes
    /// the top confusions and how many wrong rows they leave out.
    fn confusion_json(&self) -> Value {
        match self.matrix() {
            Some(matrix) => json!({"classes": self.classes, "matrix": matrix}),
            None => {
                let top = self.top_confusions(TOP_CONFUSIONS);
                let wrong: usize = self.confusion.iter().filter(|((t, p), _)| t != p).map(|(_, n)| n).sum();
                let shown: usize = top.iter().map(|c| c.2).sum();
                let cells: Vec<Value> = top
                    .iter()
                    .map(|&(t, p, n)| json!({"true": self.classes[t], "predicted": self.classes[p], "count": n}))
                    .collect();
                json!({"classes": self.classes, "top": cells, "other_wrong_rows": wrong - shown})
            }
        }
    }

    pub fn to_json(&self) -> Value {
        let per_class: Map<String, Value> = self
            .classes
            .iter()
            .zip(&self.per_class)
            .map(|(c, s)| {
                (c.clone(), json!({"precision": s.precision, "recall": s.recall, "f1": s.f1, "support": s.support}))
            })
            .collect();
        json!({
            "accuracy": self.accuracy,
            "balanced_accuracy": self.balanced_accuracy,
            "macro_f1": self.macro_f1,
            "per_class": per_class,
            "confusion": self.confusion_json(),
            "rows": self.rows,
            "unlabeled": self.unlabeled,
        })
    }

    pub fn to_table(&self) -> String {
        let mut s = String::new();
        let w = self.classes.iter().map(|c| c.len()).max().unwrap_or(0).max(9);
        writeln!(
            s,
            "accuracy  {:.4}  ({} rows{})",
            self.accuracy,
            self.rows,
            if self.unlabeled > 0 { format!(", {} unlabeled not scored", self.unlabeled) } else { String::new() }
        )
        .unwrap();
        writeln!(s, "balanced accuracy  {:.4}", self.balanced_accuracy).unwrap();
        writeln!(s, "macro F1  {:.4}", self.macro_f1).unwrap();
        writeln!(s).unwrap();
        writeln!(s, "{:<w$}  {:>9}  {:>9}  {:>9}  {:>7}", "class", "precision", "recall", "f1", "support").unwrap();
        for (c, st) in self.classes.iter().zip(&self.per_class) {
            writeln!(s, "{c:<w$}  {:>9.4}  {:>9.4}  {:>9.4}  {:>7}", st.precision, st.recall, st.f1, st.support)
                .unwrap();
        }
        writeln!(s).unwrap();
        let Some(matrix) = self.matrix() else {
            let top = self.top_confusions(TOP_CONFUSIONS);
            writeln!(
                s,
                "top confusions ({} classes: the largest {} off-diagonal cells)",
                self.classes.len(),
                top.len()
            )
            .unwrap();
            writeln!(s, "{:<w$}  {:<w$}  {:>7}", "true", "predicted", "rows").unwrap();
            for (t, p, n) in top {
                writeln!(s, "{:<w$}  {:<w$}  {n:>7}", self.classes[t], self.classes[p]).unwrap();
            }
            return s;
        };
        writeln!(s, "confusion (rows: true class, columns: predicted)").unwrap();
        let cw = self
            .classes
            .iter()
            .map(|c| c.len())
            .chain(matrix.iter().flatten().map(|n| n.to_string().len()))
            .max()
            .unwrap_or(1);
        write!(s, "{:<w$}", "").unwrap();
        for c in &self.classes {
            write!(s, "  {c:>cw$}").unwrap();
        }
        writeln!(s).unwrap();
        for (c, row) in self.classes.iter().zip(&matrix) {
            write!(s, "{c:<w$}").unwrap();
            for n in row {
                write!(s, "  {n:>cw$}").unwrap();
            }
            writeln!(s).unwrap();
        }
        s
    }
}

/// What cross-validation maximizes to choose a model (`--cv-metric`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Metric {
    #[default]
    Accuracy,
    BalancedAccuracy,
    MacroF1,
}

featurefile::named_choice!(Metric { Accuracy => "accuracy", BalancedAccuracy => "balanced-accuracy", MacroF1 => "macro-f1" });

impl Metric {
    /// The metric of predictions `predicted` against `truth` (class indices
    /// below `n_classes`).
    pub fn of(self, truth: &[usize], predicted: &[usize], n_classes: usize) -> f64 {
        let r = Report::new((0..n_classes).map(|c| c.to_string()).collect(), truth, predicted, 0);
        match self {
            Metric::Accuracy => r.accuracy,
            Metric::BalancedAccuracy => r.balanced_accuracy,
            Metric::MacroF1 => r.macro_f1,
        }
    }

    /// As the cross-validation table's heading says it.
    pub fn words(self) -> &'static str {
        match self {
            Metric::Accuracy => "accuracy",
            Metric::BalancedAccuracy => "balanced accuracy",
            Metric::MacroF1 => "macro F1",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metrics_match_scikit_learn_by_hand() {
        let classes = vec!["cat".to_string(), "dog".to_string(), "owl".to_string()];
        // truth:     cat cat cat dog dog owl
        // predicted: cat cat dog dog cat owl
        let r = Report::new(classes, &[0, 0, 0, 1, 1, 2], &[0, 0, 1, 1, 0, 2], 2);
        assert_eq!(r.matrix().unwrap(), vec![vec![2, 1, 0], vec![1, 1, 0], vec![0, 0, 1]]);
        assert!((r.accuracy - 4.0 / 6.0).abs() < 1e-12);
        let cat = &r.per_class[0];
        assert!((cat.precision - 2.0 / 3.0).abs() < 1e-12 && (cat.recall - 2.0 / 3.0).abs() < 1e-12);
        assert!((r.macro_f1 - (2.0 / 3.0 + 0.5 + 1.0) / 3.0).abs() < 1e-12);
        // sklearn.metrics.balanced_accuracy_score: mean recall, (2/3 + 1/2 + 1) / 3.
        assert!((r.balanced_accuracy - (2.0 / 3.0 + 0.5 + 1.0) / 3.0).abs() < 1e-12);
        // A class only predicted (never true) does not count.
        let only_predicted = Report::new(vec!["a".into(), "b".into(), "c".into()], &[0, 0, 0, 1], &[0, 0, 2, 1], 0);
        assert!((only_predicted.balanced_accuracy - (2.0 / 3.0 + 1.0) / 2.0).abs() < 1e-12);
        let j = r.to_json();
        assert_eq!(j["per_class"]["dog"]["support"], 2);
        assert_eq!(j["unlabeled"], 2);
        let table = r.to_table();
        let confusion = table.split("columns: predicted)\n").nth(1).unwrap();
        assert_eq!(
            confusion,
            concat!(
                "           cat  dog  owl\n",
                "cat          2    1    0\n",
                "dog          1    1    0\n",
                "owl          0    0    1\n"
            )
        );
    }

    #[test]
    fn many_classes_summarise_the_confusion_instead_of_every_cell() {
        // 10,000 classes, each row predicted as the next class but class 7's
        // three rows, predicted as class 9.
        let k = 10_000;
        let classes: Vec<String> = (0..k).map(|c| format!("c{c}")).collect();
        let mut truth: Vec<usize> = (0..k).collect();
        let mut predicted: Vec<usize> = (0..k).map(|c| (c + 1) % k).collect();
        truth.extend([7, 7]);
        predicted.extend([9, 9]);
        predicted[7] = 9;
        let r = Report::new(classes, &truth, &predicted, 0);
        assert!(r.matrix().is_none());
        assert_eq!(r.top_confusions(2), vec![(7, 9, 3), (0, 1, 1)]);
        let j = r.to_json();
        assert_eq!(j["confusion"]["top"][0], json!({"true": "c7", "predicted": "c9", "count": 3}));
        assert_eq!(j["confusion"]["top"].as_array().unwrap().len(), TOP_CONFUSIONS);
        assert_eq!(j["confusion"]["other_wrong_rows"], k + 2 - 3 - (TOP_CONFUSIONS - 1));
        assert!(j.to_string().len() < 2 << 20, "{} bytes", j.to_string().len());
        let table = r.to_table();
        assert!(table.contains("top confusions (10000 classes: the largest 100 off-diagonal cells)\n"), "{table}");
        assert!(table.lines().count() < k + 120, "one line per class and per confusion shown");
    }
}
