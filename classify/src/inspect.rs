//! `classify inspect TRAIN [VAL]`: what is wrong with the data before a
//! model is fitted on it. Near-duplicate pairs inside TRAIN and between
//! TRAIN and VAL (leakage), rows whose nearest neighbours mostly carry
//! another label (likely wrong labels, most suspect first), and the pairs
//! of classes whose rows most often have their nearest neighbour in the
//! other (hard to tell apart).
//!
//! Similarity is the cosine of the features standardized by TRAIN's
//! statistics: an untrained or generic backbone's raw features share one
//! large common direction (cosine near 1 between any two images), which
//! centring removes; an image and its copy stay at cosine 1.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use ndarray::{s, Array2, ArrayView2};
use serde_json::{json, Value};

use crate::data::Data;
use crate::{scale, Error, Result};

#[derive(Debug, Clone)]
pub struct InspectOptions {
    pub train: PathBuf,
    pub val: Option<PathBuf>,
    pub layer: Option<String>,
    /// Pairs at or above this cosine are near-duplicates.
    pub threshold: f64,
    /// Neighbours that judge a row's label.
    pub k: usize,
}

impl InspectOptions {
    pub fn check(&self) -> Result<()> {
        if !(self.threshold > -1.0 && self.threshold <= 1.0) {
            return Err(Error::Threshold(self.threshold));
        }
        if self.k == 0 {
            return Err(Error::ZeroK);
        }
        Ok(())
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Duplicate {
    /// A TRAIN row's path; `b` is TRAIN's too, or VAL's when `across`.
    pub a: String,
    pub b: String,
    pub cos: f64,
    pub across: bool,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Suspect {
    pub path: String,
    pub label: String,
    pub suggested: String,
    /// The share of the row's neighbours that carry `suggested`.
    pub share: f64,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Confusable {
    pub a: String,
    pub b: String,
    /// The share of class `a`'s rows whose nearest neighbour is of class `b`.
    pub share: f64,
}

pub struct Findings {
    pub train: Data,
    pub val: Option<Data>,
    pub duplicates: Vec<Duplicate>,
    pub suspects: Vec<Suspect>,
    pub confusable: Vec<Confusable>,
    pub threshold: f64,
    pub k: usize,
}

/// Rows standardized by `scaler` and scaled to unit length.
fn unit(x: ArrayView2<f32>, scaler: &scale::Scaler) -> Array2<f32> {
    let mut u = scaler.transform(x);
    scale::Scaler::L2.transform_in_place(u.view_mut());
    u
}

/// Rows of `a` a block at a time against all of `b`: `visit(i, sims of row i)`.
fn similarities(a: ArrayView2<f32>, b: ArrayView2<f32>, mut visit: impl FnMut(usize, ndarray::ArrayView1<f32>)) {
    const BLOCK: usize = 512;
    for start in (0..a.nrows()).step_by(BLOCK) {
        let end = (start + BLOCK).min(a.nrows());
        let sims = a.slice(s![start..end, ..]).dot(&b.t());
        for (i, row) in sims.rows().into_iter().enumerate() {
            visit(start + i, row);
        }
    }
}

pub fn inspect(opts: &InspectOptions, notes: &mut dyn FnMut(&str)) -> Result<Findings> {
    opts.check()?;
    // View 0 alone: an image's augmented views are near-duplicates of it by design.
    let train = Data::load(&opts.train, opts.layer.as_deref(), false, notes)?.view_zero();
    let val = match &opts.val {
        Some(v) => {
            let d = Data::load(v, Some(&train.column), false, notes)?.view_zero();
            if d.backbone_sha256 != train.backbone_sha256 || d.layer != train.layer {
                return Err(Error::InspectOtherFeatures {
                    val: v.clone(),
                    train: opts.train.clone(),
                    found: format!(
                        "{} {} {}",
                        d.backbone_file,
                        featurefile::short_hash(&d.backbone_sha256),
                        d.layer.tensor
                    ),
                    want: format!(
                        "{} {} {}",
                        train.backbone_file,
                        featurefile::short_hash(&train.backbone_sha256),
                        train.layer.tensor
                    ),
                });
            }
            Some(d)
        }
        None => None,
    };
    let scaler = scale::Scaler::fit(scale::Kind::Standard, train.x.view());
    let ut = unit(train.x.view(), &scaler);
    let n = ut.nrows();
    let k = opts.k.min(n.saturating_sub(1));

    let mut duplicates = Vec::new();
    let mut suspects = Vec::new();
    let nc = train.classes.len();
    let mut nearest = vec![vec![0usize; nc]; nc];
    let mut order: Vec<usize> = Vec::with_capacity(n);
    similarities(ut.view(), ut.view(), |i, sims| {
        for j in i + 1..n {
            if f64::from(sims[j]) >= opts.threshold {
                duplicates.push(Duplicate {
                    a: train.paths[i].clone(),
                    b: train.paths[j].clone(),
                    cos: f64::from(sims[j]),
                    across: false,
                });
            }
        }
        let Some(own) = train.y[i] else { return };
        if k == 0 {
            return;
        }
        // The k most similar labeled other rows (ties to the earlier row).
        order.clear();
        order.extend((0..n).filter(|&j| j != i && train.y[j].is_some()));
        if order.is_empty() {
            return;
        }
        let kk = k.min(order.len());
        order.select_nth_unstable_by(kk - 1, |&a, &b| sims[b].total_cmp(&sims[a]).then(a.cmp(&b)));
        order[..kk].sort_by(|&a, &b| sims[b].total_cmp(&sims[a]).then(a.cmp(&b)));
        let mut votes = vec![0usize; nc];
        for &j in &order[..kk] {
            votes[train.y[j].expect("labeled")] += 1;
        }
        nearest[own][train.y[order[0]].expect("labeled")] += 1;
        let (best, &count) = votes.iter().enumerate().max_by(|a, b| a.1.cmp(b.1).then(b.0.cmp(&a.0))).expect("classes");
        // "Mostly another label": more than half the neighbours agree on one.
        if best != own && 2 * count > kk {
            suspects.push(Suspect {
                path: train.paths[i].clone(),
                label: train.classes[own].clone(),
                suggested: train.classes[best].clone(),
                share: count as f64 / kk as f64,
            });
        }
    });
    if let Some(v) = &val {
        let uv = unit(v.x.view(), &scaler);
        similarities(ut.view(), uv.view(), |i, sims| {
            for (j, &c) in sims.iter().enumerate() {
                if f64::from(c) >= opts.threshold {
                    duplicates.push(Duplicate {
                        a: train.paths[i].clone(),
                        b: v.paths[j].clone(),
                        cos: f64::from(c),
                        across: true,
                    });
                }
            }
        });
    }
    duplicates.sort_by(|a, b| b.cos.total_cmp(&a.cos).then_with(|| (&a.a, &a.b).cmp(&(&b.a, &b.b))));
    suspects.sort_by(|a, b| b.share.total_cmp(&a.share).then_with(|| a.path.cmp(&b.path)));
    let mut confusable = Vec::new();
    for (a, to) in nearest.iter().enumerate() {
        let rows: usize = to.iter().sum();
        for (b, &n_ab) in to.iter().enumerate().filter(|&(b, &n)| b != a && n > 0) {
            confusable.push(Confusable {
                a: train.classes[a].clone(),
                b: train.classes[b].clone(),
                share: n_ab as f64 / rows as f64,
            });
        }
    }
    confusable.sort_by(|x, y| y.share.total_cmp(&x.share).then_with(|| (&x.a, &x.b).cmp(&(&y.a, &y.b))));
    Ok(Findings { train, val, duplicates, suspects, confusable, threshold: opts.threshold, k })
}

impl Findings {
    pub fn to_json(&self) -> Value {
        json!({
            "threshold": self.threshold,
            "k": self.k,
            "duplicates": self.duplicates.iter().map(|d| json!({"a": d.a, "b": d.b, "cos": d.cos, "across": d.across})).collect::<Vec<_>>(),
            "suspect_labels": self.suspects.iter().map(|s| json!({"path": s.path, "label": s.label, "suggested": s.suggested, "share": s.share})).collect::<Vec<_>>(),
            "confusable_classes": self.confusable.iter().map(|c| json!({"a": c.a, "b": c.b, "share": c.share})).collect::<Vec<_>>(),
        })
    }

    pub fn to_text(&self) -> String {
        let mut s = String::new();
        let (within, across) =
            (self.duplicates.iter().filter(|d| !d.across).count(), self.duplicates.iter().filter(|d| d.across).count());
        writeln!(s, "near-duplicates (cosine >= {}): {within} pairs inside the training file, {across} between it and the other", self.threshold).unwrap();
        for d in &self.duplicates {
            writeln!(s, "  {:.4}  {}  {}{}", d.cos, d.a, d.b, if d.across { "  (leak: in both files)" } else { "" })
                .unwrap();
        }
        writeln!(
            s,
            "likely wrong labels (most of the {} nearest neighbours carry another): {}",
            self.k,
            self.suspects.len()
        )
        .unwrap();
        for x in &self.suspects {
            writeln!(s, "  {}  labeled {}, neighbours say {} ({:.0}%)", x.path, x.label, x.suggested, 100.0 * x.share)
                .unwrap();
        }
        writeln!(s, "classes hard to tell apart (share of a class's rows whose nearest neighbour is of the other)")
            .unwrap();
        for c in self.confusable.iter().take(10) {
            writeln!(s, "  {} -> {}  {:.3}", c.a, c.b, c.share).unwrap();
        }
        s
    }
}

/// The findings as an HTML page with thumbnails, whole or not at all.
pub fn write_report(f: &Findings, out: &Path) -> Result<crate::report::Written> {
    use crate::report::{esc, image_tag, STYLE};
    let mut missing = 0;
    let mut cards = 0;
    let mut card = |root: &str, rel: &str, caption: &str| -> String {
        let (img, found) = image_tag(root, rel);
        cards += 1;
        missing += usize::from(!found);
        format!("<figure class=\"card\" data-path=\"{}\">{img}<figcaption>{caption}<br/><span class=\"path\">{}</span></figcaption></figure>", esc(rel), esc(rel))
    };
    let mut h = String::new();
    let title = format!("classify inspect: {}", f.train.file.display());
    write!(h, "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\"/>\n<title>{}</title>\n<style>{STYLE}</style>\n</head>\n<body>\n<h1>{}</h1>\n", esc(&title), esc(&title)).unwrap();
    writeln!(h, "<h2 id=\"duplicates\">Near-duplicates (cosine &ge; {})</h2>", f.threshold).unwrap();
    let val_root = f.val.as_ref().map_or(f.train.root.as_str(), |v| v.root.as_str());
    for d in &f.duplicates {
        let what = if d.across { "leak: in both files" } else { "inside the training file" };
        writeln!(
            h,
            "<div class=\"gallery duplicate\" data-a=\"{}\" data-b=\"{}\" data-cos=\"{:.6}\">{}{}</div><p class=\"sub\">cosine {:.4}, {what}</p>",
            esc(&d.a),
            esc(&d.b),
            d.cos,
            card(&f.train.root, &d.a, "a"),
            card(if d.across { val_root } else { &f.train.root }, &d.b, "b"),
            d.cos
        )
        .unwrap();
    }
    writeln!(h, "<h2 id=\"suspect-labels\">Likely wrong labels</h2>\n<div class=\"gallery\">").unwrap();
    for x in &f.suspects {
        let caption = format!(
            "<span class=\"pred\">{}?</span><br/>labeled {} ({:.0}% of neighbours say otherwise)",
            esc(&x.suggested),
            esc(&x.label),
            100.0 * x.share
        );
        let c = card(&f.train.root, &x.path, &caption);
        writeln!(
            h,
            "<div class=\"suspect\" data-path=\"{}\" data-label=\"{}\" data-suggested=\"{}\">{c}</div>",
            esc(&x.path),
            esc(&x.label),
            esc(&x.suggested)
        )
        .unwrap();
    }
    writeln!(h, "</div>\n<h2 id=\"confusable\">Classes hard to tell apart</h2>\n<table class=\"stats\"><tr><th class=\"name\">class</th><th class=\"name\">nearest neighbour of class</th><th>share</th></tr>").unwrap();
    for c in f.confusable.iter().take(20) {
        writeln!(
            h,
            "<tr><td class=\"name\">{}</td><td class=\"name\">{}</td><td>{:.3}</td></tr>",
            esc(&c.a),
            esc(&c.b),
            c.share
        )
        .unwrap();
    }
    writeln!(h, "</table>\n</body>\n</html>").unwrap();
    atomic::write_bytes(out, h.as_bytes()).map_err(|e| Error::io(out, e))?;
    Ok(crate::report::Written { path: out.to_owned(), cards, missing })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unit_rows_are_standardized_then_of_length_one() {
        let x = ndarray::array![[1.0f32, 10.0], [3.0, 10.0], [5.0, 10.0]];
        let sc = scale::Scaler::fit(scale::Kind::Standard, x.view());
        let u = unit(x.view(), &sc);
        // The constant column carries nothing once centred.
        assert!((u[[0, 0]] + 1.0).abs() < 1e-6 && u[[1, 0]].abs() < 1e-6 && (u[[2, 0]] - 1.0).abs() < 1e-6, "{u:?}");
    }
}
