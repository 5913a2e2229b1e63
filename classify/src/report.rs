//! `classify score --report`: one self-contained HTML page (images inlined,
//! nothing fetched when it is viewed) with the metrics, the confusion matrix
//! as a colour-scaled grid, and a gallery of the scored images captioned with
//! their predicted class, blue when right and red when wrong, wrong ones first.

use std::fmt::Write as _;
use std::io::Cursor;
use std::path::{Path, PathBuf};

use base64::Engine as _;
use image::DynamicImage;

use crate::{Classifier, Error, Result, Scored};

/// Edge of the gallery thumbnails, in pixels.
const THUMB: u32 = 160;

/// What the report holds, for the caller to say.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Written {
    pub path: PathBuf,
    pub cards: usize,
    pub missing: usize,
}

pub(crate) fn esc(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;").replace('\'', "&#39;")
}

/// The image as a small inline JPEG, or why it could not be read.
/// The row's image (`rel` under `root`, the path column's spelling turned
/// back into the file, non-UTF-8 names included) as an inline thumbnail, or
/// a grey box saying why not; and whether it was found.
pub(crate) fn image_tag(root: &str, rel: &str) -> (String, bool) {
    let at = images::Location::of_row(Path::new(root), &featurefile::paths::unspell(rel));
    match at.and_then(|at| thumbnail(&at)) {
        Ok(uri) => (format!("<img src=\"{uri}\" alt=\"{}\"/>", esc(rel)), true),
        Err(e) => (format!("<div class=\"missing\" title=\"{}\">image not found</div>", esc(&e)), false),
    }
}

fn thumbnail(at: &images::Location) -> Result<String, String> {
    // A phone photo needs no 12 million pixels for a thumbnail.
    let (img, _) = images::open_oriented_scaled(at, images::Limits::default(), THUMB)?;
    // Tiny images (8x8 digits) are enlarged with visible pixels, not blurred.
    let thumb = if img.width().max(img.height()) < THUMB / 2 {
        let k = THUMB / img.width().max(img.height()).max(1);
        img.resize(img.width() * k, img.height() * k, image::imageops::FilterType::Nearest)
    } else {
        img.thumbnail(THUMB, THUMB)
    };
    let mut jpeg = Vec::new();
    DynamicImage::ImageRgb8(thumb.to_rgb8())
        .write_to(&mut Cursor::new(&mut jpeg), image::ImageFormat::Jpeg)
        .map_err(|e| e.to_string())?;
    Ok(format!("data:image/jpeg;base64,{}", base64::engine::general_purpose::STANDARD.encode(jpeg)))
}

pub(crate) const STYLE: &str = r#"
body { font-family: system-ui, -apple-system, "Segoe UI", sans-serif; margin: 2rem auto; max-width: 1100px; color: #222; padding: 0 1rem; }
h1 { font-size: 1.5rem; margin-bottom: .2rem; } h2 { font-size: 1.15rem; margin-top: 2rem; }
.sub { color: #666; margin-top: 0; font-size: .9rem; }
.kpis { display: flex; gap: 1rem; flex-wrap: wrap; }
.kpi { border: 1px solid #ddd; border-radius: 8px; padding: .6rem 1rem; min-width: 8rem; }
.kpi b { display: block; font-size: 1.5rem; }
table { border-collapse: collapse; font-size: .9rem; }
th, td { padding: .3rem .6rem; text-align: right; }
th { font-weight: 600; } td.name, th.name { text-align: left; }
table.stats tr:nth-child(even) { background: #f6f6f6; }
table.confusion td.cell { width: 3.2rem; height: 2.4rem; text-align: center; border: 1px solid #fff; font-variant-numeric: tabular-nums; }
.axis { color: #666; font-size: .8rem; }
.note { background: #fff4e5; border: 1px solid #f0c36d; border-radius: 6px; padding: .5rem .8rem; }
.gallery { display: grid; grid-template-columns: repeat(auto-fill, minmax(170px, 1fr)); gap: .8rem; }
figure.card { margin: 0; border: 1px solid #ddd; border-radius: 8px; padding: .4rem; text-align: center; background: #fff; }
figure.card img { max-width: 160px; max-height: 160px; image-rendering: auto; }
figure.card .missing { height: 120px; display: flex; align-items: center; justify-content: center; color: #999; font-size: .8rem; background: #f3f3f3; }
figcaption { font-size: .85rem; margin-top: .3rem; word-break: break-all; }
figcaption .pred { font-weight: 700; font-size: 1rem; }
figure.right .pred { color: #1a56db; } figure.wrong .pred { color: #d62828; }
figure.wrong { border-color: #d62828; }
figcaption .path { color: #888; font-size: .7rem; }
"#;

/// Writes the report for `scored` (the feature file `source`) to `out`,
/// whole or not at all. At most `limit` cards, wrong predictions first.
pub fn write(scored: &Scored, classifier: &Classifier, source: &Path, out: &Path, limit: usize) -> Result<Written> {
    let r = &scored.report;
    let mut h = String::new();
    let title = format!("classify report: {}", source.file_name().map(|n| n.to_string_lossy()).unwrap_or_default());
    write!(
        h,
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\"/>\n<title>{}</title>\n<style>{STYLE}</style>\n</head>\n<body>\n<h1>{}</h1>\n<p class=\"sub\">{} &middot; {} on <code>{}</code> from {} &middot; images under <code>{}</code></p>\n",
        esc(&title),
        esc(&title),
        esc(&source.display().to_string()),
        esc(&classifier.params().to_string()),
        esc(&classifier.feature_column),
        esc(&classifier.backbone.file),
        esc(&scored.data.root),
    )
    .unwrap();

    // Gallery first, so the banner about missing images can sit at the top.
    let mut order: Vec<&(usize, usize, usize)> = scored.rows.iter().collect();
    order.sort_by_key(|(i, t, p)| (t == p, scored.data.paths[*i].as_str()));
    let shown = order.len().min(limit);
    let mut missing = 0;
    let mut cards = String::new();
    for &&(i, t, p) in &order[..shown] {
        let rel = &scored.data.paths[i];
        let (right, tname, pname) = (t == p, &scored.classes[t], &scored.classes[p]);
        let (img, found) = image_tag(&scored.data.root, rel);
        missing += usize::from(!found);
        let truth = if right { String::new() } else { format!("<br/>true: {}", esc(tname)) };
        writeln!(
            cards,
            "<figure class=\"card {}\" data-path=\"{}\" data-true=\"{}\" data-predicted=\"{}\">{img}<figcaption><span class=\"pred\">{}</span>{truth}<br/><span class=\"path\">{}</span></figcaption></figure>",
            if right { "right" } else { "wrong" },
            esc(rel),
            esc(tname),
            esc(pname),
            esc(pname),
            esc(rel)
        )
        .unwrap();
    }
    if missing > 0 {
        writeln!(
            h,
            "<p class=\"note\">{missing} of {shown} images could not be read under <code>{}</code> (moved or deleted since extraction); the numbers below are complete.</p>",
            esc(&scored.data.root)
        )
        .unwrap();
    }

    writeln!(h, "<div class=\"kpis\">").unwrap();
    for (label, value) in [
        ("accuracy", format!("{:.4}", r.accuracy)),
        ("balanced accuracy", format!("{:.4}", r.balanced_accuracy)),
        ("macro F1", format!("{:.4}", r.macro_f1)),
        ("scored rows", r.rows.to_string()),
        ("unlabeled", r.unlabeled.to_string()),
    ] {
        writeln!(h, "<div class=\"kpi\">{label}<b>{value}</b></div>").unwrap();
    }
    writeln!(h, "</div>").unwrap();

    writeln!(h, "<h2>Per class</h2>\n<table class=\"stats\">\n<tr><th class=\"name\">class</th><th>precision</th><th>recall</th><th>F1</th><th>support</th></tr>").unwrap();
    for (c, s) in r.classes.iter().zip(&r.per_class) {
        writeln!(
            h,
            "<tr><td class=\"name\">{}</td><td>{:.4}</td><td>{:.4}</td><td>{:.4}</td><td>{}</td></tr>",
            esc(c),
            s.precision,
            s.recall,
            s.f1,
            s.support
        )
        .unwrap();
    }
    writeln!(h, "</table>").unwrap();

    match r.matrix() {
        Some(matrix) => confusion_grid(&mut h, &r.classes, &matrix),
        None => {
            let top = r.top_confusions(crate::metrics::TOP_CONFUSIONS);
            writeln!(
                h,
                "<h2>Top confusions</h2>\n<p class=\"sub\">{} classes: the {} largest off-diagonal cells of the confusion matrix</p>\n<table class=\"stats\">\n<tr><th class=\"name\">true</th><th class=\"name\">predicted</th><th>rows</th></tr>",
                r.classes.len(),
                top.len()
            )
            .unwrap();
            for (t, p, n) in top {
                writeln!(
                    h,
                    "<tr><td class=\"name\">{}</td><td class=\"name\">{}</td><td>{n}</td></tr>",
                    esc(&r.classes[t]),
                    esc(&r.classes[p])
                )
                .unwrap();
            }
            writeln!(h, "</table>").unwrap();
        }
    }

    let wrong = order.iter().filter(|(_, t, p)| t != p).count();
    writeln!(
        h,
        "<h2>Images</h2>\n<p class=\"sub\">{wrong} wrong, {} right{}; caption: predicted class, <span style=\"color:#1a56db\">blue</span> when right, <span style=\"color:#d62828\">red</span> when wrong</p>\n<div class=\"gallery\">\n{cards}</div>\n</body>\n</html>",
        order.len() - wrong,
        if shown < order.len() { format!(" (showing the first {shown} of {})", order.len()) } else { String::new() }
    )
    .unwrap();

    atomic::write_bytes(out, h.as_bytes()).map_err(|e| Error::io(out, e))?;
    Ok(Written { path: out.to_owned(), cards: shown, missing })
}

/// The confusion matrix as a colour-scaled grid.
fn confusion_grid(h: &mut String, classes: &[String], matrix: &[Vec<usize>]) {
    writeln!(
        h,
        "<h2>Confusion matrix</h2>\n<table class=\"confusion\">\n<tr><th class=\"axis name\">true \\ predicted</th>"
    )
    .unwrap();
    for c in classes {
        write!(h, "<th>{}</th>", esc(c)).unwrap();
    }
    writeln!(h, "</tr>").unwrap();
    for (ti, row) in matrix.iter().enumerate() {
        let total = row.iter().sum::<usize>().max(1) as f64;
        write!(h, "<tr><th class=\"name\">{}</th>", esc(&classes[ti])).unwrap();
        for (pi, &n) in row.iter().enumerate() {
            // Shade by the share of the true class's rows: blue on the diagonal,
            // red off it, where the square root keeps a single mistake visible.
            let share = n as f64 / total;
            let a = if ti == pi { share } else { share.sqrt() * 0.8 };
            let (rgb, ink) = if ti == pi { ("26,86,219", a > 0.55) } else { ("214,40,40", a > 0.55) };
            write!(
                h,
                "<td class=\"cell\" data-true=\"{}\" data-predicted=\"{}\" data-count=\"{n}\" style=\"background: rgba({rgb},{a:.3}); color: {}\">{n}</td>",
                esc(&classes[ti]),
                esc(&classes[pi]),
                if ink { "#fff" } else { "#222" }
            )
            .unwrap();
        }
        writeln!(h, "</tr>").unwrap();
    }
    writeln!(h, "</table>").unwrap();
}
