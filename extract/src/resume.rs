//! Whether an output that already exists is this run's work: a sharded task
//! resubmitted after a kill finds its complete part, and a run repeated
//! finds its complete file, and has nothing to do; a file from another run
//! (other model, layers, sizes, classes, images or share of them) is never
//! taken for it, nor replaced without `--overwrite`.

use featurefile::shards::Shard;
use featurefile::{short_hash, Header, Pool, Precision, Preprocess, Views};

/// The answer for an existing part.
#[derive(Debug, Clone, PartialEq)]
pub enum Resume {
    /// Not this run's: write it.
    Fresh,
    /// Complete, and what this run would write: nothing to do.
    Done { rows: usize, skipped: usize },
    /// Another run's, and what differs, in words.
    Conflict(String),
}

/// What this run would write into the part.
pub struct Expected<'a> {
    pub model_sha256: &'a str,
    pub layers: &'a [backbone::Layer],
    pub pool: Pool,
    pub preprocess: &'a Preprocess,
    pub classes: &'a [String],
    /// A sharded run's share; `None` for a single file.
    pub shard: Option<&'a Shard>,
    /// The images the run reads (its share of them): a file holds a row
    /// (`views` rows) or a skipped entry for each.
    pub images: usize,
    /// int8 parts from other calibrations differ too: their count and the
    /// weights' bits are known before any image is read (the images
    /// themselves are the tree's).
    pub precision: Precision,
    pub calibrate: Option<(usize, u8)>,
}

/// Compares a part that exists (its footer and row count; `None`: there
/// is none) with what this run would write.
pub fn judge(found: Option<(&Header, usize)>, want: &Expected) -> Resume {
    let Some((found, rows)) = found else { return Resume::Fresh };
    let layers_match = found.layers.len() == want.layers.len()
        && found.layers.iter().zip(want.layers).all(|((name, info), l)| {
            *name == l.name && info.tensor == l.tensor && (info.pool == want.pool || info.pool == Pool::None)
        });
    let differs = if found.model.sha256 != want.model_sha256 {
        Some(format!("model sha256 {}, this run's {}", short_hash(&found.model.sha256), short_hash(want.model_sha256)))
    } else if !layers_match {
        let had: Vec<String> = found.layers.iter().map(|(n, l)| format!("{n} ({})", l.pool)).collect();
        let asked: Vec<&str> = want.layers.iter().map(|l| l.name.as_str()).collect();
        Some(format!("layers {}, this run's {} with --pool {}", had.join(","), asked.join(","), want.pool))
    } else if found.preprocess.views != want.preprocess.views {
        let says = |v: Option<Views>| v.map_or("1 view per image".to_string(), |v| v.to_string());
        Some(format!("{}, this run's {}", says(found.preprocess.views), says(want.preprocess.views)))
    } else if found.preprocess != *want.preprocess {
        let (f, w) = (&found.preprocess, want.preprocess);
        Some(format!(
            "resize {} crop {} {} decode, this run's {} {} {} decode",
            f.resize, f.crop, f.decode, w.resize, w.crop, w.decode
        ))
    } else if precision_of(found) != (want.precision, want.calibrate) {
        let (p, n) = precision_of(found);
        let cal = |n: Option<(usize, u8)>| {
            n.map(|(n, bits)| {
                format!(
                    " calibrated on {n} images{}",
                    if bits == 8 { String::new() } else { format!(", {bits}-bit weights") }
                )
            })
            .unwrap_or_default()
        };
        Some(format!("precision {p}{}, this run's {}{}", cal(n), want.precision, cal(want.calibrate)))
    } else if found.classes != want.classes {
        Some("other classes".to_string())
    } else if found.shard.as_ref() != want.shard {
        Some(match (&found.shard, want.shard) {
            (Some(f), Some(w)) => format!(
                "another share of the images: {} images from {:?}, this run's {} from {:?}{}",
                f.images,
                f.first,
                w.images,
                w.first,
                w.total_images.map(|n| format!(" of {n}")).unwrap_or_default()
            ),
            (Some(f), None) => format!("part {} of {} of a sharded run", f.index, f.count),
            (None, _) => "a single run's file, not a part".to_string(),
        })
    } else if rows / Views::rows_per_image(found.preprocess.views) + found.skipped.len() != want.images {
        let had = rows / Views::rows_per_image(found.preprocess.views) + found.skipped.len();
        Some(format!("{had} images, this run's {}: the image folder changed", want.images))
    } else {
        None
    };
    match differs {
        Some(what) => Resume::Conflict(what),
        None => Resume::Done { rows, skipped: found.skipped.len() },
    }
}

/// A part's precision, calibration size and weight bits (files from before the key: fp32).
fn precision_of(h: &Header) -> (Precision, Option<(usize, u8)>) {
    h.inference
        .as_ref()
        .map_or((Precision::Fp32, None), |i| (i.precision, i.calibration.as_ref().map(|c| (c.images, c.weight_bits))))
}

#[cfg(test)]
mod tests {
    use super::*;
    use featurefile::{Decode, LayerInfo, ModelInfo, Skipped};

    fn shard() -> Shard {
        Shard {
            index: 1,
            count: 4,
            first: Some("a/1.png".into()),
            last: Some("a/3.png".into()),
            images: 3,
            total_images: Some(12),
            tar_shards: None,
        }
    }

    fn layers() -> Vec<backbone::Layer> {
        vec![backbone::Layer { name: "avgpool".into(), tensor: "/flatten".into(), shape: None }]
    }

    fn header() -> Header {
        Header {
            version: "t".into(),
            model: ModelInfo { file: "m.onnx".into(), sha256: "ab".repeat(32), input: "input".into() },
            weights: None,
            classes: vec!["a".into(), "b".into()],
            layers: vec![("avgpool".into(), LayerInfo { tensor: "/flatten".into(), pool: Pool::None, dim: 8 })],
            preprocess: Preprocess {
                resize: 256,
                crop: 224,
                mean: [0.485, 0.456, 0.406],
                std: [0.229, 0.224, 0.225],
                filter: "f".into(),
                decode: Decode::Exact,
                views: None,
            },
            root: "/r".into(),
            skipped: vec![Skipped { path: "a/2.png".into(), error: "truncated".into() }],
            shard: Some(shard()),
            inference: None,
        }
    }

    fn judge_with(
        h: &Header,
        edit: impl FnOnce(&mut Vec<backbone::Layer>, &mut Preprocess, &mut Vec<String>, &mut Shard, &mut String, &mut Pool),
    ) -> Resume {
        let (mut l, mut p, mut c, mut s, mut sha, mut pool) =
            (layers(), h.preprocess.clone(), h.classes.clone(), shard(), h.model.sha256.clone(), Pool::Avg);
        edit(&mut l, &mut p, &mut c, &mut s, &mut sha, &mut pool);
        judge(
            Some((h, 2)),
            &Expected {
                model_sha256: &sha,
                layers: &l,
                pool,
                preprocess: &p,
                classes: &c,
                shard: Some(&s),
                images: 3,
                precision: Precision::Fp32,
                calibrate: None,
            },
        )
    }

    #[test]
    fn the_same_run_is_done_and_says_its_rows() {
        let h = header();
        let s = shard();
        let want = Expected {
            model_sha256: &h.model.sha256,
            layers: &layers(),
            pool: Pool::Avg,
            preprocess: &h.preprocess,
            classes: &h.classes,
            shard: Some(&s),
            images: 3,
            precision: Precision::Fp32,
            calibrate: None,
        };
        assert_eq!(judge(None, &want), Resume::Fresh, "no part yet");
        assert_eq!(judge_with(&h, |_, _, _, _, _, _| {}), Resume::Done { rows: 2, skipped: 1 });
        // A vector layer was written with pool none whatever --pool asked.
        assert_eq!(judge_with(&h, |_, _, _, _, _, p| *p = Pool::Max), Resume::Done { rows: 2, skipped: 1 });
    }

    #[test]
    fn each_difference_is_a_conflict_that_names_it() {
        let h = header();
        let conflict = |r: Resume| match r {
            Resume::Conflict(what) => what,
            other => panic!("{other:?}"),
        };
        assert!(conflict(judge_with(&h, |_, _, _, _, sha, _| *sha = "cd".repeat(32)))
            .starts_with("model sha256 abababababab, this run's cdcdcdcdcdcd"));
        assert!(conflict(judge_with(&h, |l, _, _, _, _, _| l[0].name = "layer3".into()))
            .starts_with("layers avgpool (none), this run's layer3"));
        assert!(conflict(judge_with(&h, |l, _, _, _, _, _| l[0].tensor = "/other".into()))
            .starts_with("layers avgpool (none)"));
        assert_eq!(
            conflict(judge_with(&h, |_, p, _, _, _, _| p.resize = 232)),
            "resize 256 crop 224 exact decode, this run's 232 224 exact decode"
        );
        assert_eq!(
            conflict(judge_with(&h, |_, p, _, _, _, _| p.decode = Decode::Scaled)),
            "resize 256 crop 224 exact decode, this run's 256 224 scaled decode"
        );
        assert_eq!(
            conflict(judge_with(&h, |_, p, _, _, _, _| p.views = Some(Views::tutorial(4, 7)))),
            "1 view per image, this run's 4 views seed 7"
        );
        let mut views = h.clone();
        views.preprocess.views = Some(Views::tutorial(4, 7));
        assert_eq!(
            conflict(judge_with(&views, |_, p, _, _, _, _| p.views = Some(Views::tutorial(4, 8)))),
            "4 views seed 7, this run's 4 views seed 8"
        );
        assert_eq!(conflict(judge_with(&h, |_, _, c, _, _, _| c.push("c".into()))), "other classes");
        assert!(conflict(judge_with(&h, |_, _, _, s, _, _| s.first = Some("a/0.png".into()))).starts_with(
            "another share of the images: 3 images from Some(\"a/1.png\"), this run's 3 from Some(\"a/0.png\") of 12"
        ));
        assert!(conflict(judge_with(&h, |_, _, _, s, _, _| s.total_images = Some(13))).starts_with("another share"));
        // A part quantized to int8, where this run is fp32 (and the other way round).
        let mut int8 = h.clone();
        int8.inference = Some(featurefile::Inference {
            device: "cpu".into(),
            precision: Precision::Int8,
            calibration: Some(featurefile::Calibration {
                images: 64,
                sha256: "ef".repeat(32),
                method: "minmax".into(),
                quantizer: 1,
                weight_bits: 8,
            }),
        });
        assert_eq!(
            conflict(judge_with(&int8, |_, _, _, _, _, _| {})),
            "precision int8 calibrated on 64 images, this run's fp32"
        );
        let s = shard();
        let want = Expected {
            model_sha256: &h.model.sha256,
            layers: &layers(),
            pool: Pool::Avg,
            preprocess: &h.preprocess,
            classes: &h.classes,
            shard: Some(&s),
            images: 3,
            precision: Precision::Int8,
            calibrate: Some((16, 8)),
        };
        assert_eq!(conflict(judge(Some((&h, 2)), &want)), "precision fp32, this run's int8 calibrated on 16 images");
        assert_eq!(
            conflict(judge(Some((&int8, 2)), &want)),
            "precision int8 calibrated on 64 images, this run's int8 calibrated on 16 images"
        );
        let want = Expected { calibrate: Some((64, 8)), ..want };
        assert_eq!(judge(Some((&int8, 2)), &want), Resume::Done { rows: 2, skipped: 1 });
        // Another CPU's weight range is another model.
        let seven = Expected { calibrate: Some((64, 7)), ..want };
        assert_eq!(
            conflict(judge(Some((&int8, 2)), &seven)),
            "precision int8 calibrated on 64 images, this run's int8 calibrated on 64 images, 7-bit weights"
        );
        // fp16 is its own precision, either way round.
        let fp16 = Expected { precision: Precision::Fp16, calibrate: None, ..want };
        assert_eq!(conflict(judge(Some((&h, 2)), &fp16)), "precision fp32, this run's fp16");
        let mut half = h.clone();
        half.inference =
            Some(featurefile::Inference { device: "cuda:0".into(), precision: Precision::Fp16, calibration: None });
        assert_eq!(conflict(judge_with(&half, |_, _, _, _, _, _| {})), "precision fp16, this run's fp32");
        assert_eq!(judge(Some((&half, 2)), &fp16), Resume::Done { rows: 2, skipped: 1 });
        // A single file where this run writes a part, and the other way round.
        let mut single8 = int8.clone();
        single8.shard = None;
        assert_eq!(conflict(judge(Some((&single8, 2)), &want)), "a single run's file, not a part");
        let one = Expected { shard: None, ..want };
        assert_eq!(conflict(judge(Some((&int8, 2)), &one)), "part 1 of 4 of a sharded run");
        assert_eq!(judge(Some((&single8, 2)), &one), Resume::Done { rows: 2, skipped: 1 });
        // The folder gained an image since: the file is not this run's.
        assert_eq!(
            conflict(judge(Some((&single8, 2)), &Expected { images: 4, ..one })),
            "3 images, this run's 4: the image folder changed"
        );
        // A device is not a difference: parts may come from several.
        let mut gpu = int8.clone();
        gpu.inference.as_mut().unwrap().device = "cuda:0".into();
        assert_eq!(judge(Some((&gpu, 2)), &want), Resume::Done { rows: 2, skipped: 1 });
    }
}
