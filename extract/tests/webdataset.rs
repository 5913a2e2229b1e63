//! webdataset tar shards as `--images`: a `.tar`, a folder of them, a brace
//! range. The same photos as a folder and as shards (written by
//! webdataset's own TarWriter) give the same features, bit for bit, row for
//! row; each row's label is what webdataset's reader finds in the sample
//! (`.cls`, a folder inside the tar, `.json`'s field, `.txt`); a shard cut
//! short gives the samples before the cut and names the rest; what is not
//! a shard is one line.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use featurefile::FeatureFile;
use serde_json::Value;
use testkit::{assert_one_line_failure, model, py, py_json, s, shared_data, stderr};

const MODEL: &str = "resnet50-narrow.onnx";

fn extract(images: &str, out: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_extract"))
        .args(["--model", s(&model(MODEL)), "--images", images, "--layer", "layer2,avgpool", "--out", s(out)])
        .args(args)
        .output()
        .expect("extract runs")
}

fn extract_ok(images: &str, out: &Path, args: &[&str]) -> FeatureFile {
    let o = extract(images, out, args);
    assert!(o.status.success(), "extract {images} {args:?}: {}", stderr(&o));
    FeatureFile::open(out).unwrap()
}

/// The shared photos as `n` shards labelled by `label`, in `dir`.
fn shards(src: &Path, dir: &Path, n: usize, label: &str) -> Vec<PathBuf> {
    let o = py("scripts/make-shards.py", &[s(src), s(dir), "--shards", &n.to_string(), "--label", label]);
    assert!(o.status.success(), "{}", stderr(&o));
    (0..n).map(|k| dir.join(format!("shard-{k:05}.tar"))).collect()
}

/// What webdataset's reader finds in the shards.
fn oracle(shards: &[PathBuf]) -> Vec<Value> {
    let args: Vec<&str> = shards.iter().map(|p| s(p)).collect();
    py_json("extract/tests/py/read_shards.py", &args).as_array().unwrap().clone()
}

/// The row an oracle sample should be: `<shard>/<key>.<image extension>`.
fn row_path(t: &Value) -> String {
    format!("{}/{}.{}", t["shard"].as_str().unwrap(), t["key"].as_str().unwrap(), t["image"].as_str().unwrap())
}

/// A URL path with its `%XX` escapes decoded.
fn unquote(path: &str) -> String {
    let b = path.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match (b[i], path.get(i + 1..i + 3).and_then(|h| u8::from_str_radix(h, 16).ok())) {
            (b'%', Some(v)) => {
                out.push(v);
                i += 3;
            }
            (c, _) => {
                out.push(c);
                i += 1;
            }
        }
    }
    String::from_utf8(out).unwrap()
}

/// Each row's class name, by row.
fn label_names(f: &FeatureFile) -> Vec<Option<String>> {
    f.labels.iter().map(|l| l.map(|i| f.header.classes[i as usize].clone())).collect()
}

/// The photos as a folder and as three shards: the same rows, bit for bit,
/// in the same order; paths `<shard>/<key>.<ext>` as webdataset keys them.
#[test]
#[ignore = "needs scripts/setup.sh (.venv, models/) and ../shared: scripts/test.sh runs it"]
fn shards_give_the_folders_features_bit_for_bit_and_webdatasets_labels() {
    let Some(photos) = shared_data("imagenet-samples") else { return };
    let dir = tempfile::tempdir().unwrap();
    let folder = extract_ok(s(&photos), &dir.path().join("folder.parquet"), &[]);
    let tars = shards(&photos, &dir.path().join("cls"), 3, "cls");
    let truth = oracle(&tars);
    assert_eq!(truth.len(), folder.len(), "one sample per photo");

    let spellings = [
        dir.path().join("cls").to_string_lossy().into_owned(),
        dir.path().join("cls/shard-{00000..00002}.tar").to_string_lossy().into_owned(),
    ];
    for spelled in &spellings {
        let f = extract_ok(spelled, &dir.path().join("t.parquet"), &["--overwrite"]);
        assert_eq!(f.len(), folder.len(), "{spelled}");
        let want: Vec<String> = truth.iter().map(row_path).collect();
        assert_eq!(f.paths, want, "{spelled}: rows in webdataset's order, named as it keys them");
        // webdataset's .cls is the class index; the folder's classes, in order.
        let cls: Vec<Option<String>> = truth.iter().map(|t| t["cls"].as_str().map(str::to_string)).collect();
        assert_eq!(f.header.classes, ["0", "1", "2", "3"]);
        assert_eq!(label_names(&f), cls, "{spelled}");
        assert_eq!(f.columns.len(), 2);
        for (a, b) in f.columns.iter().zip(&folder.columns) {
            assert_eq!(a.values, b.values, "{spelled} {}: the folder's features, bit for bit", a.name);
        }
    }
    // One .tar alone: its own samples.
    let one = extract_ok(s(&tars[1]), &dir.path().join("one.parquet"), &[]);
    assert_eq!(one.len(), truth.iter().filter(|t| t["shard"] == "shard-00001.tar").count());
}

#[test]
#[ignore = "needs scripts/setup.sh (.venv, models/) and ../shared: scripts/test.sh runs it"]
fn labels_come_from_folders_inside_the_tar_json_fields_and_txt_as_asked() {
    let Some(photos) = shared_data("imagenet-samples") else { return };
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("f.parquet");
    let classes = ["food", "mammals", "objects", "scenery"];
    for (label, flag, pick) in
        [("folder", "auto", "folder"), ("json", "json:label", "json"), ("txt", "txt", "txt"), ("none", "auto", "none")]
    {
        let tars = shards(&photos, &dir.path().join(label), 2, label);
        let truth = oracle(&tars);
        let f = extract_ok(s(&dir.path().join(label)), &out, &["--label-from", flag, "--overwrite"]);
        let want: Vec<Option<String>> = truth
            .iter()
            .map(|t| match pick {
                "folder" => t["key"].as_str().unwrap().split_once('/').map(|(c, _)| c.to_string()),
                "json" => t["json"]["label"].as_str().map(str::to_string),
                "txt" => t["txt"].as_str().map(str::to_string),
                _ => None,
            })
            .collect();
        assert_eq!(label_names(&f), want, "{label} --label-from {flag}");
        if pick == "none" {
            assert!(f.header.classes.is_empty());
        } else {
            assert_eq!(f.header.classes, classes, "{label}");
        }
    }
    // A label asked for by name that no sample has: one line naming it.
    for (flag, expect) in
        [("json:nope", "no sample has a .json member with a field \"nope\""), ("txt", "no sample has a .txt member")]
    {
        let json = dir.path().join("json");
        let args = ["--images", s(&json), "--label-from", flag];
        let o = extract(s(&json), &out, &["--label-from", flag, "--overwrite"]);
        assert_one_line_failure("extract", &args, &o, &format!("--label-from {flag}: {expect}"));
    }
}

/// A shard cut short reads up to the cut and names the rest; a member named
/// `../../x.jpg` is a sample's name, never a path; what is no shard, or a
/// missing shard of a range, is one line and no file.
#[test]
#[ignore = "needs scripts/setup.sh (.venv, models/) and ../shared: scripts/test.sh runs it"]
fn broken_and_hostile_shards() {
    let Some(photos) = shared_data("imagenet-samples") else { return };
    let dir = tempfile::tempdir().unwrap();
    let tars = shards(&photos, &dir.path().join("s"), 1, "cls");
    let whole = std::fs::read(&tars[0]).unwrap();
    let truth = oracle(&tars);
    let out = dir.path().join("f.parquet");

    // Cut in the middle of a member: the samples before it are rows.
    let cut_dir = dir.path().join("cut");
    std::fs::create_dir_all(&cut_dir).unwrap();
    std::fs::write(cut_dir.join("a.tar"), &whole[..whole.len() / 2]).unwrap();
    let o = extract(s(&cut_dir), &out, &[]);
    assert!(o.status.success(), "{}", stderr(&o));
    let f = FeatureFile::open(&out).unwrap();
    assert!(f.len() > 10 && f.len() < truth.len(), "{} rows of {}", f.len(), truth.len());
    let keys: Vec<String> = truth.iter().take(f.len()).map(|t| t["key"].as_str().unwrap().to_string()).collect();
    assert!(
        f.paths.iter().zip(&keys).all(|(p, k)| p.starts_with(&format!("a.tar/{k}."))),
        "the first samples, in order"
    );
    assert!(
        f.header.skipped.iter().any(|sk| sk.path == "a.tar" && sk.error.contains("breaks off")),
        "{:?}",
        f.header.skipped
    );

    // Hostile member names are names: nothing is written outside.
    let hostile = dir.path().join("hostile");
    std::fs::create_dir_all(&hostile).unwrap();
    let jpeg = std::fs::read(photos.join("food").read_dir().unwrap().next().unwrap().unwrap().path()).unwrap();
    {
        let mut b = tar::Builder::new(std::fs::File::create(hostile.join("h.tar")).unwrap());
        let mut h = tar::Header::new_gnu();
        h.set_size(jpeg.len() as u64);
        h.set_mode(0o644);
        h.set_cksum();
        // Written raw: the tar crate's own checks refuse such a name.
        let name = b"../../x.jpg";
        h.as_old_mut().name[..name.len()].copy_from_slice(name);
        h.set_cksum();
        b.append(&h, jpeg.as_slice()).unwrap();
        b.finish().unwrap();
    }
    let f = extract_ok(s(&hostile), &out, &["--overwrite"]);
    assert_eq!(f.paths, ["h.tar/../../x.jpg"]);
    assert!(!dir.path().parent().unwrap().join("x.jpg").exists());

    // A member whose header claims a terabyte: never allocated, one line.
    {
        let mut b = tar::Builder::new(std::fs::File::create(dir.path().join("huge.tar")).unwrap());
        let mut h = tar::Header::new_gnu();
        h.set_path("x.jpg").unwrap();
        h.set_size(1 << 40);
        h.set_mode(0o644);
        h.set_cksum();
        b.append(&h, jpeg.as_slice()).unwrap();
        b.finish().unwrap();
    }
    // Not a tar; a missing shard of a range; an empty range: one line, no file.
    std::fs::write(dir.path().join("bad.tar"), b"this is not a tar file at all").unwrap();
    let missing = dir.path().join("s/shard-{00000..00001}.tar");
    for (images, expect) in [
        (dir.path().join("bad.tar"), "bad.tar: not a tar file"),
        (dir.path().join("huge.tar"), "member x.jpg claims 1099511627776 bytes, past the end of the file"),
        (missing.clone(), "shard-00001.tar does not exist"),
        (dir.path().join("s/shard-{00003..00001}.tar"), "a brace range must be"),
    ] {
        let out = dir.path().join("never.parquet");
        let args = ["--images", s(&images)];
        let o = extract(s(&images), &out, &[]);
        assert_one_line_failure("extract", &args, &o, expect);
        assert!(!out.exists());
    }
}

/// Shards img2dataset itself wrote (from a local server over the photos,
/// the original bytes kept, the class in each sample's `.json`): the
/// folder's features, bit for bit, image for image, and the `.json`'s
/// label with `--label-from json:label`.
#[test]
#[ignore = "needs scripts/setup.sh (.venv, .venv/img2dataset, models/) and ../shared: scripts/test.sh runs it"]
fn img2dataset_shards_give_the_folders_features_and_their_json_labels() {
    let Some(photos) = shared_data("imagenet-samples") else { return };
    let dir = tempfile::tempdir().unwrap();
    let folder = extract_ok(s(&photos), &dir.path().join("folder.parquet"), &[]);
    let made = py_json("extract/tests/py/img2dataset_shards.py", &[s(&photos), s(&dir.path().join("i2d"))]);
    let tars: Vec<PathBuf> =
        made["shards"].as_array().unwrap().iter().map(|p| PathBuf::from(p.as_str().unwrap())).collect();
    assert!(tars.len() >= 3, "{made}");
    let truth = oracle(&tars);
    assert_eq!(truth.len(), folder.len(), "img2dataset downloaded every photo");

    let f =
        extract_ok(made["folder"].as_str().unwrap(), &dir.path().join("t.parquet"), &["--label-from", "json:label"]);
    assert_eq!(f.len(), folder.len());
    // Each row's image, by the URL img2dataset recorded: its place in the folder.
    let by_row: std::collections::HashMap<String, &Value> = truth.iter().map(|t| (row_path(t), t)).collect();
    let folder_row: std::collections::HashMap<&str, usize> =
        folder.paths.iter().enumerate().map(|(i, p)| (p.as_str(), i)).collect();
    let names = label_names(&f);
    for (i, path) in f.paths.iter().enumerate() {
        let t = by_row[path];
        let url = t["json"]["url"].as_str().unwrap();
        // http://127.0.0.1:PORT/<class>/<file>, the path quoted (a ' is %27).
        let rel = unquote(url.splitn(4, '/').nth(3).unwrap());
        let j = *folder_row
            .get(rel.as_str())
            .unwrap_or_else(|| panic!("{path}: {rel} is no photo of the folder ({:?}...)", &folder.paths[..2]));
        assert_eq!(names[i].as_deref(), t["json"]["label"].as_str(), "{path}");
        assert_eq!(names[i].as_deref(), Some(rel.split('/').next().unwrap()), "{path}: the class folder");
        for (a, b) in f.columns.iter().zip(&folder.columns) {
            assert_eq!(a.row(i), b.row(j), "{path} ({rel}): the folder's features, bit for bit");
        }
    }
}

/// A sharded run over tar shards: the parts together are the single run,
/// bit for bit, row for row; with `--class-map` each task reads only its
/// own whole shards (its footer says which), and the parts are the same.
#[test]
#[ignore = "needs scripts/setup.sh (.venv, models/) and ../shared: scripts/test.sh runs it"]
fn parts_over_tar_shards_are_the_single_run() {
    let Some(photos) = shared_data("imagenet-samples") else { return };
    let dir = tempfile::tempdir().unwrap();
    shards(&photos, &dir.path().join("s"), 4, "cls");
    let images = dir.path().join("s/shard-{00000..00003}.tar").to_string_lossy().into_owned();
    let single = extract_ok(&images, &dir.path().join("single.parquet"), &[]);
    let map = dir.path().join("classes.txt");
    std::fs::write(&map, "0\n1\n2\n3\n").unwrap();
    for (how, extra) in [("listing every shard", vec![]), ("by whole shards", vec!["--class-map", s(&map)])] {
        for n in [1, 3, 7] {
            let parts = dir.path().join(format!("parts-{n}-{}/", extra.len()));
            for k in 0..n {
                let shard = format!("{k}/{n}");
                let o = extract(&images, &parts, &[&["--shard", shard.as_str()], extra.as_slice()].concat());
                assert!(o.status.success(), "{how} {k}/{n}: {}", stderr(&o));
            }
            let whole = FeatureFile::open(&parts).unwrap();
            assert_eq!(whole.paths, single.paths, "{how} N={n}");
            assert_eq!(whole.labels, single.labels, "{how} N={n}");
            assert_eq!(whole.header.classes, single.header.classes, "{how} N={n}");
            for (a, b) in whole.columns.iter().zip(&single.columns) {
                assert_eq!(a.values, b.values, "{how} N={n} {}", a.name);
            }
            // Which shards each part read: whole ones, in order, each once.
            let mut read = Vec::new();
            for k in 0..n {
                let part = FeatureFile::open(&parts.join(featurefile::shards::part_name(k, n))).unwrap();
                let record = part.header.shard.unwrap();
                match (extra.is_empty(), record.tar_shards) {
                    (true, None) => assert_eq!(record.total_images, Some(single.len()), "{how}"),
                    (false, Some(t)) => {
                        assert_eq!((record.total_images, t.total_shards), (None, 4), "{how}");
                        read.push(t.shards);
                        let prefixes: std::collections::BTreeSet<&str> =
                            part.paths.iter().map(|p| p.split('/').next().unwrap()).collect();
                        assert!(prefixes.len() <= t.shards, "{how} part {k}: rows from {prefixes:?}, not only {t:?}");
                    }
                    (_, t) => panic!("{how} part {k}: tar_shards {t:?}"),
                }
            }
            if !extra.is_empty() {
                assert_eq!(read.iter().sum::<usize>(), 4, "{how} N={n}: every shard read once: {read:?}");
            }
        }
    }
}

/// `--class-map` fixes the classes' order for tar samples; a label it does
/// not list, a map given for a folder, and a map that is no class list are
/// one line each, and nothing is written.
#[test]
#[ignore = "needs scripts/setup.sh (.venv, models/) and ../shared: scripts/test.sh runs it"]
fn a_class_map_orders_the_classes_and_refuses_labels_it_does_not_list() {
    let Some(photos) = shared_data("imagenet-samples") else { return };
    let dir = tempfile::tempdir().unwrap();
    let tars = shards(&photos, &dir.path().join("s"), 2, "txt");
    let truth = oracle(&tars);
    let images = s(&dir.path().join("s")).to_string();
    let out = dir.path().join("f.parquet");
    let map = dir.path().join("classes.txt");
    // Reversed, with a class no sample has: the map's order, all of it.
    std::fs::write(&map, "unseen\nscenery\nobjects\nmammals\nfood\n").unwrap();
    let f = extract_ok(&images, &out, &["--label-from", "txt", "--class-map", s(&map)]);
    assert_eq!(f.header.classes, ["unseen", "scenery", "objects", "mammals", "food"]);
    let txt: Vec<Option<String>> = truth.iter().map(|t| t["txt"].as_str().map(str::to_string)).collect();
    assert_eq!(label_names(&f), txt, "each row's label is its .txt, by the map's index");
    std::fs::remove_file(&out).unwrap();

    let short = dir.path().join("short.txt");
    std::fs::write(&short, "food\nmammals\n").unwrap();
    let twice = dir.path().join("twice.txt");
    std::fs::write(&twice, "food\nfood\n").unwrap();
    let empty = dir.path().join("empty.txt");
    std::fs::write(&empty, "\n\n").unwrap();
    let cases = [
        (images.as_str(), s(&short), "which the class map does not list"),
        (s(&photos), s(&map), "--class-map is for tar shards"),
        (images.as_str(), s(&twice), "\"food\" is listed twice"),
        (images.as_str(), s(&empty), "0 classes listed"),
        (images.as_str(), s(dir.path()), "not a regular file"),
    ];
    for (images, map, expect) in cases {
        let o = extract(images, &out, &["--label-from", "txt", "--class-map", map]);
        assert_one_line_failure("extract", &["--class-map", map], &o, expect);
        assert!(!out.exists(), "{map}: nothing written");
    }
}
