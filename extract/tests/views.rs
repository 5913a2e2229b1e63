//! Augmented views (`--views K --seed S`): each view's model input against
//! the contract's recipe computed by PIL (`scripts/lib/reference.py`,
//! written from FEATURE-FILE.md), view 0 against today's rows, and the same
//! seed's bytes, sharded or not.
//!
//! They need what `scripts/setup.sh` installs (`scripts/test.sh` runs it).

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use extract::preprocess::{preprocess_views, Config};
use featurefile::{Decode, FeatureFile, Views};
use testkit::{assert_no_partial_files, assert_one_line_failure, model, py, py_json, python_command, s, stderr};

const MODEL: &str = "resnet50-narrow.onnx";

fn read_f32(p: PathBuf) -> Vec<f32> {
    std::fs::read(p).unwrap().chunks_exact(4).map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])).collect()
}

fn largest(a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).map(|(x, y)| (x - y).abs()).fold(0f32, f32::max)
}

/// PNGs of several shapes (one far outside the crop's ratio range, so the
/// draw falls back to its centre crop), and the large JPEGs of the scaled
/// decode's tests (EXIF-turned, greyscale, CMYK among them).
fn images(dir: &Path) -> Vec<(PathBuf, String)> {
    let root = dir.join("images");
    let mut out = Vec::new();
    std::fs::create_dir_all(root.join("png")).unwrap();
    for (i, (w, h)) in [(500, 375), (240, 320), (97, 61), (40, 400)].into_iter().enumerate() {
        let rel = format!("png/{i}.png");
        image::RgbImage::from_fn(w, h, |x, y| {
            image::Rgb([(x * 5 + y) as u8, (y * 3) as u8, (x ^ y) as u8 ^ (i as u8 * 40)])
        })
        .save(root.join(&rel))
        .unwrap();
        out.push((root.join(&rel), rel));
    }
    let large = root.join("large");
    let scales = py_json("extract/tests/py/make_large_jpegs.py", &[s(&large)]);
    for name in scales.as_object().unwrap().keys() {
        out.push((large.join(name), format!("large/{name}")));
    }
    out
}

/// The contract's inputs for every view of `files`, computed by PIL.
fn pil_views(dir: &Path, files: &[(PathBuf, String)], cfg: &Config) -> Vec<Vec<Vec<f32>>> {
    let refs = dir.join("ref");
    let pre = serde_json::to_string(&cfg.record()).unwrap();
    let mut args: Vec<&str> = vec![s(&refs), &pre];
    for (f, rel) in files {
        args.push(s(f));
        args.push(rel);
    }
    let o = py("extract/tests/py/view_tensors.py", &args);
    assert!(o.status.success(), "{}", stderr(&o));
    let k = cfg.views.unwrap().count;
    (0..files.len()).map(|i| (0..k).map(|v| read_f32(refs.join(format!("{i}.{v}.f32")))).collect()).collect()
}

#[test]
#[ignore = "needs scripts/setup.sh (.venv, models/): scripts/test.sh runs it"]
fn every_view_is_the_contracts_crop_of_pils_pixels() {
    let dir = tempfile::tempdir().unwrap();
    let files = images(dir.path());
    // One grey level is 1 / 255 / 0.225 = 0.017 in the model input.
    let level = 0.0175;
    for decode in [Decode::Scaled, Decode::Exact] {
        let cfg = Config { decode, views: Some(Views::tutorial(5, 11)), ..Default::default() };
        let pil = pil_views(dir.path(), &files, &cfg);
        let per = cfg.values_per_image();
        let (mut exact, mut flipped_seen) = (0, false);
        for ((file, rel), pil) in files.iter().zip(&pil) {
            let mut ours = vec![0f32; per * 5];
            if let Err(e) = preprocess_views(&images::Location::File(file.to_owned()), rel, &cfg, &mut ours) {
                panic!("{rel}: {e}");
            }
            for (v, theirs) in pil.iter().enumerate() {
                let d = largest(&ours[v * per..(v + 1) * per], theirs);
                // PNGs and libjpeg's scaled pixels are PIL's; a JPEG decoded
                // in full comes from another decoder (a few grey levels).
                let tol = if rel.ends_with(".png") { 0.0 } else { 5.0 * level };
                assert!(d <= tol, "{decode:?} {rel} view {v}: {d} from the contract's input");
                exact += (d == 0.0) as usize;
            }
            // The views are crops of their own, not the eval crop again.
            assert!(largest(&ours[..per], &ours[per..2 * per]) > level, "{rel}: view 1 is view 0");
            if rel.ends_with(".png") {
                let (w, h) = image::image_dimensions(file).unwrap();
                flipped_seen |= extract::views::boxes(cfg.views.as_ref().unwrap(), rel, w, h).iter().any(|b| b.flip);
            }
        }
        assert!(flipped_seen, "some view of a PNG is flipped");
        if decode == Decode::Scaled {
            let jpeg_views = (files.len() - 4) * 5;
            assert!(exact > 4 * 5 + jpeg_views / 3, "{decode:?}: only {exact} views bit for bit");
        }
    }
    // The test tells a wrong draw from a right one: another seed's crops.
    let cfg = Config { views: Some(Views::tutorial(3, 11)), ..Default::default() };
    let other = Config { views: Some(Views::tutorial(3, 12)), ..cfg };
    let (file, rel) = &files[0];
    let pil = pil_views(dir.path(), &files[..1], &other);
    let mut ours = vec![0f32; cfg.values_per_image() * 3];
    preprocess_views(&images::Location::File(file.to_owned()), rel, &cfg, &mut ours).unwrap();
    assert!(largest(&ours[cfg.values_per_image()..], &pil[0][1]) > level, "seed 11's view 1 is seed 12's");
}

/// `n` PNGs in two class folders, and a file that is no image.
fn folder(dir: &Path, n: usize) -> PathBuf {
    let root = dir.join("imgs");
    for i in 0..n {
        let class = root.join(["cats", "dogs"][i % 2]);
        std::fs::create_dir_all(&class).unwrap();
        image::RgbImage::from_fn(150 + i as u32 * 7, 120, |x, y| {
            image::Rgb([(x * 3 + i as u32 * 9) as u8, (y * 2) as u8, (x * y) as u8])
        })
        .save(class.join(format!("{i:02}.png")))
        .unwrap();
    }
    std::fs::write(root.join("cats/zz-broken.jpg"), b"not a jpeg").unwrap();
    root
}

fn extract(images: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_extract"))
        .args(["--model", s(&model(MODEL)), "--images", s(images), "--layer", "layer3,avgpool"])
        .args(args)
        .env_remove("SLURM_ARRAY_TASK_ID")
        .env_remove("JOB_COMPLETION_INDEX")
        .output()
        .expect("extract runs")
}

fn run_ok(images: &Path, args: &[&str]) -> String {
    let o = extract(images, args);
    assert!(o.status.success(), "extract {args:?}: {}", stderr(&o));
    stderr(&o)
}

/// (path, label, view, feature bits of both columns) per row.
fn rows(f: &FeatureFile) -> Vec<(String, Option<i32>, i32, Vec<u32>)> {
    (0..f.len())
        .map(|i| {
            let bits = f.columns.iter().flat_map(|c| c.row(i).iter().map(|x| x.to_bits())).collect();
            (f.paths[i].clone(), f.labels[i], f.views.get(i).copied().unwrap_or(0), bits)
        })
        .collect()
}

#[test]
#[ignore = "needs scripts/setup.sh (.venv, models/): scripts/test.sh runs it"]
fn view_zero_is_todays_row_and_a_seed_gives_the_same_file_sharded_or_not() {
    let dir = tempfile::tempdir().unwrap();
    let imgs = folder(dir.path(), 9);
    let out = |name: &str| dir.path().join(name);
    let plain = out("plain.parquet");
    run_ok(&imgs, &["--out", s(&plain)]);
    let (a, b) = (out("a.parquet"), out("b.parquet"));
    // Batches of 7 rows: one image (4 rows) at a time.
    let said = run_ok(&imgs, &["--views", "4", "--seed", "5", "--out", s(&a), "--batch", "7"]);
    assert!(said.contains("4 views per image (seed 5)") && said.contains("wrote 9 images"), "{said}");
    assert!(said.contains("zz-broken.jpg"), "the unreadable file is named: {said}");
    run_ok(&imgs, &["--views", "4", "--seed", "5", "--out", s(&b), "--batch", "7"]);
    assert_eq!(std::fs::read(&a).unwrap(), std::fs::read(&b).unwrap(), "the same seed gives the same bytes");

    let (plain, views) = (FeatureFile::open(&plain).unwrap(), FeatureFile::open(&a).unwrap());
    assert_eq!(views.len(), 4 * plain.len());
    assert_eq!(views.header.preprocess.views, Some(Views::tutorial(4, 5)));
    assert_eq!(views.header.skipped, plain.header.skipped);
    let (plain_rows, view_rows) = (rows(&plain), rows(&views));
    let zero: Vec<_> = view_rows.iter().filter(|r| r.2 == 0).cloned().collect();
    assert_eq!(zero, plain_rows, "view 0 is the eval transform's row, bit for bit");
    for (img, chunk) in view_rows.chunks(4).enumerate() {
        assert_eq!(chunk.iter().map(|r| r.2).collect::<Vec<_>>(), [0, 1, 2, 3], "image {img}: its views in order");
        assert!(chunk.iter().all(|r| r.0 == chunk[0].0 && r.1 == chunk[0].1));
        assert!(chunk[1..].iter().all(|r| r.3 != chunk[0].3), "image {img}: an augmented view equals view 0");
    }

    // Three tasks and another batch size (four images a batch): the single run's rows again.
    let parts = format!("{}/", out("parts").display());
    for k in 0..3 {
        run_ok(&imgs, &["--views", "4", "--seed", "5", "--shard", &format!("{k}/3"), "--out", &parts, "--batch", "16"]);
    }
    assert_eq!(
        rows(&FeatureFile::open(Path::new(&parts)).unwrap()),
        view_rows,
        "the parts hold the single run's views"
    );
    // Resubmitted with another seed: another run's part, said by name.
    let o = extract(&imgs, &["--views", "4", "--seed", "6", "--shard", "0/3", "--out", &parts]);
    assert_one_line_failure("extract", &[], &o, "4 views seed 5, this run's 4 views seed 6");

    // Another seed: the same view 0, other crops.
    let c = out("c.parquet");
    run_ok(&imgs, &["--views", "4", "--seed", "6", "--out", s(&c)]);
    let other = rows(&FeatureFile::open(&c).unwrap());
    for (x, y) in other.iter().zip(&view_rows) {
        assert_eq!(x.2 == 0, x.3 == y.3, "{} view {}: seed 5 and 6", x.0, x.2);
    }

    // Every row's features are ONNX Runtime's own for the view the contract draws.
    let r = py_json(
        "scripts/oracles/reference-features.py",
        &[s(&a), "--model", s(&model(MODEL)), "--layer", "avgpool", "--min-cosine", "0.99999"],
    );
    assert_eq!(r["rows"], 36, "{r}");
    assert!(r["below"].as_array().unwrap().is_empty(), "rows off ONNX Runtime's features: {r}");

    // pandas reads the view column as the contract says.
    let o = python_command()
        .arg("-c")
        .arg(format!(
            "import pandas as pd; d = pd.read_parquet({:?}); print(d['view'].dtype, list(d['view'][:5]), d.groupby('path')['view'].count().unique().tolist())",
            s(&a)
        ))
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&o.stdout).trim(), "int32 [0, 1, 2, 3, 0] [4]", "{}", stderr(&o));
}

#[test]
#[ignore = "needs scripts/setup.sh (.venv, models/): scripts/test.sh runs it"]
fn zero_views_is_one_line_and_nothing_written() {
    let dir = tempfile::tempdir().unwrap();
    let imgs = folder(dir.path(), 2);
    let f = dir.path().join("out.parquet");
    let o = extract(&imgs, &["--views", "0", "--out", s(&f)]);
    assert_one_line_failure("extract", &[], &o, "--views must be at least 1");
    assert!(!f.exists());
    assert_no_partial_files(dir.path());
}
