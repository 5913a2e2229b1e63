//! Large JPEGs decoded at their own reduced scale (the default) against
//! PIL's `draft`, and at full size with `--exact-decode` against PIL's
//! `Image.open`: the scale each file gets, the model input tensor for
//! tensor, and the features end to end with the decode the file records.
//!
//! They need what `scripts/setup.sh` installs (`scripts/test.sh` runs it).

use std::path::{Path, PathBuf};
use std::process::Command;

use extract::preprocess::{preprocess_file, Config};
use featurefile::Decode;
use serde_json::Value;
use testkit::{model, py, py_json, s, stderr};

/// The generated large JPEGs and PIL's scale for each (file name relative to
/// the folder, to the denominator).
fn large_jpegs(dir: &Path) -> (PathBuf, Vec<(String, u32)>) {
    let images = dir.join("large");
    let scales = py_json("extract/tests/py/make_large_jpegs.py", &[s(&images)]);
    let scales = scales.as_object().unwrap().iter().map(|(k, v)| (k.clone(), v.as_u64().unwrap() as u32)).collect();
    (images, scales)
}

fn read_f32(p: PathBuf) -> Vec<f32> {
    std::fs::read(p).unwrap().chunks_exact(4).map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])).collect()
}

/// PIL's model input for each file, decoded as `draft` says.
fn pil_inputs(dir: &Path, files: &[PathBuf], draft: bool) -> Vec<Vec<f32>> {
    let refs = dir.join(if draft { "ref-draft" } else { "ref-full" });
    let mut args: Vec<&str> = vec![s(&refs)];
    if draft {
        args.push("--draft");
    }
    args.extend(files.iter().map(|f| s(f)));
    let o = py("extract/tests/py/reference_tensors.py", &args);
    assert!(o.status.success(), "{}", stderr(&o));
    (0..files.len()).map(|i| read_f32(refs.join(format!("{i}.f32")))).collect()
}

#[test]
#[ignore = "needs scripts/setup.sh (.venv, models/): scripts/test.sh runs it"]
fn large_jpegs_decode_at_pils_draft_scale_bit_for_bit() {
    let dir = tempfile::tempdir().unwrap();
    let (images, scales) = large_jpegs(dir.path());
    let files: Vec<PathBuf> = scales.iter().map(|(name, _)| images.join(name)).collect();
    let draft = pil_inputs(dir.path(), &files, true);
    let full = pil_inputs(dir.path(), &files, false);
    let limits = images::Limits::default();
    let largest = |a: &[f32], b: &[f32]| a.iter().zip(b).map(|(x, y)| (x - y).abs()).fold(0f32, f32::max);
    for (((name, pil_scale), file), (draft, full)) in scales.iter().zip(&files).zip(draft.iter().zip(&full)) {
        let (_, ours) = images::open_oriented_scaled(&images::Location::File(file.to_owned()), limits, 256).unwrap();
        assert_eq!(ours, *pil_scale, "{name}: decoded at 1/{ours}, PIL's draft at 1/{pil_scale}");
        let scaled = Config { decode: Decode::Scaled, ..Default::default() };
        let mut input = vec![0f32; scaled.values_per_image()];
        preprocess_file(&images::Location::File(file.to_owned()), &scaled, &mut input).unwrap();
        // One grey level is 1 / 255 / 0.225 = 0.017 in the model input.
        let level = 0.0175;
        if ours > 1 {
            // libjpeg-turbo's scaled decoder, as PIL's: the same pixels.
            assert_eq!(largest(&input, draft), 0.0, "{name}: not PIL's draft input");
            assert!(largest(&input, full) > level, "{name}: the scaled decode is the full one");
        } else if name.contains("cmyk") {
            // CMYK is the image crate's (libjpeg-turbo's path is PIL's draft's): within a few levels.
            assert!(largest(&input, full) <= 5.0 * level, "{name}: decoded in full, yet not PIL's input");
        } else {
            assert_eq!(largest(&input, full), 0.0, "{name}: decoded in full, yet not PIL's input");
        }
        let exact = Config { decode: Decode::Exact, ..Default::default() };
        preprocess_file(&images::Location::File(file.to_owned()), &exact, &mut input).unwrap();
        // libjpeg-turbo at full scale, as PIL decodes: the same pixels (CMYK: within a few levels).
        let worst = largest(&input, full);
        let bar = if name.contains("cmyk") { 5.0 * level } else { 0.0 };
        assert!(worst <= bar, "{name}: --exact-decode differs from PIL's full decode by {worst}");
    }
    assert!(scales.iter().any(|(n, d)| n.contains("turned") && *d > 1), "an EXIF-turned file is decoded scaled");
}

#[test]
#[ignore = "needs scripts/setup.sh (.venv, models/): scripts/test.sh runs it"]
fn the_file_records_the_decode_and_matches_the_reference_either_way() {
    let dir = tempfile::tempdir().unwrap();
    let (images, _) = large_jpegs(dir.path());
    let narrow = model("resnet50-narrow.onnx");
    let mut features = Vec::new();
    for (decode, flag) in [("scaled", None), ("exact", Some("--exact-decode"))] {
        let out = dir.path().join(format!("{decode}.parquet"));
        let mut args = vec!["--model", s(&narrow), "--images", s(&images), "--out", s(&out)];
        args.extend(flag);
        let o = Command::new(env!("CARGO_BIN_EXE_extract")).args(&args).output().unwrap();
        assert!(o.status.success(), "{}", stderr(&o));
        let f = featurefile::FeatureFile::open(&out).unwrap();
        assert_eq!(f.header.preprocess.decode.to_string(), decode);
        // The reference decodes as the file's record says.
        let o =
            py("scripts/oracles/reference-features.py", &[s(&out), "--model", s(&narrow), "--min-cosine", "0.9999"]);
        let report: Value = serde_json::from_slice(&o.stdout).unwrap_or_else(|_| panic!("{}", stderr(&o)));
        assert!(o.status.success(), "{decode}: {report}");
        features.push(f);
    }
    // The parts of one folder cannot mix the two: a part decoded one way is
    // not taken as done by a run asked for the other.
    let out = format!("{}/", dir.path().join("parts").display());
    let out = Path::new(&out);
    let part = |flag: Option<&str>| {
        let mut args = vec!["--model", s(&narrow), "--images", s(&images), "--out", s(out), "--shard", "0/2"];
        args.extend(flag);
        Command::new(env!("CARGO_BIN_EXE_extract")).args(&args).output().unwrap()
    };
    let o = part(None);
    assert!(o.status.success(), "{}", stderr(&o));
    let o = part(Some("--exact-decode"));
    assert!(
        !o.status.success() && stderr(&o).contains("scaled decode, this run's 256 224 exact decode"),
        "{}",
        stderr(&o)
    );
    // Scaled and full decodes of the same photos give nearly the same features.
    let (a, b) = (&features[0], &features[1]);
    let dim = a.columns[0].dim;
    for (i, path) in a.paths.iter().enumerate() {
        let (x, y) = (&a.columns[0].values[i * dim..(i + 1) * dim], &b.columns[0].values[i * dim..(i + 1) * dim]);
        let cos = testkit::cosine(x, y);
        assert!(cos >= 0.995, "{path}: scaled and exact features at cosine {cos}");
    }
}
