//! Sharded extraction (`--shard K/N`, `--out DIR/`): the parts in order are
//! the single run, row for row and bit for bit; `--shard auto` reads the
//! schedulers' variables; a task whose part exists has nothing to do, and
//! one killed mid-run is redone cleanly. Any Parquet reader reads the
//! folder as one table.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use featurefile::shards::part_name;
use featurefile::FeatureFile;
use testkit::{assert_no_partial_files, assert_one_line_failure, model, py_json, s, stderr};

const MODEL: &str = "resnet50-narrow.onnx";
const SCHEDULER_VARS: [&str; 5] = [
    "SLURM_ARRAY_TASK_ID",
    "SLURM_ARRAY_TASK_MIN",
    "SLURM_ARRAY_TASK_COUNT",
    "SLURM_ARRAY_TASK_STEP",
    "JOB_COMPLETION_INDEX",
];

/// extract with the narrow model over `images`, outside any scheduler
/// unless `env` says otherwise.
fn extract(images: &Path, args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut c = Command::new(env!("CARGO_BIN_EXE_extract"));
    c.args(["--model", s(&model(MODEL)), "--images", s(images), "--layer", "layer2,avgpool"]).args(args);
    for v in SCHEDULER_VARS {
        c.env_remove(v);
    }
    c.envs(env.iter().copied());
    c.output().expect("extract runs")
}

fn run_ok(images: &Path, args: &[&str]) -> String {
    let o = extract(images, args, &[]);
    assert!(o.status.success(), "extract {args:?}: {}", stderr(&o));
    stderr(&o)
}

/// `n` images in three class folders, one unreadable file among them.
fn images(dir: &Path, n: usize) -> PathBuf {
    images_of_width(dir, n, 120)
}

fn images_of_width(dir: &Path, n: usize, width: u32) -> PathBuf {
    let root = dir.join("images");
    for i in 0..n {
        let class = root.join(["cats", "dogs", "wolves"][i % 3]);
        std::fs::create_dir_all(&class).unwrap();
        image::RgbImage::from_fn(width + i as u32, width * 4 / 5, |x, y| {
            image::Rgb([(x * 5 + i as u32) as u8, (y * 3) as u8, (x ^ y) as u8])
        })
        .save(class.join(format!("{i:03}.png")))
        .unwrap();
    }
    std::fs::write(root.join("dogs/004b-broken.jpg"), b"not a jpeg").unwrap();
    root
}

/// Everything a reader sees of a file's rows: path, label, feature bits.
type Rows = Vec<(String, Option<i32>, Vec<u32>, Vec<u32>)>;

fn rows(f: &FeatureFile) -> Rows {
    let (l2, ap) = (f.column("layer2").unwrap(), f.column("avgpool").unwrap());
    (0..f.len())
        .map(|i| {
            let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect();
            (f.paths[i].clone(), f.labels[i], bits(l2.row(i)), bits(ap.row(i)))
        })
        .collect()
}

fn parts(dir: &Path, n: usize) -> Vec<FeatureFile> {
    (0..n).map(|k| FeatureFile::open(&dir.join(part_name(k, n))).unwrap()).collect()
}

fn files_in(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = match std::fs::read_dir(dir) {
        Ok(rd) => rd.map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect(),
        Err(_) => vec![],
    };
    v.sort();
    v
}

#[test]
#[ignore = "needs scripts/setup.sh (.venv, models/): scripts/test.sh runs it"]
fn parts_in_order_are_the_single_run_bit_for_bit() {
    let dir = tempfile::tempdir().unwrap();
    let imgs = images(dir.path(), 13);
    let single = dir.path().join("single.parquet");
    run_ok(&imgs, &["--out", s(&single)]);
    let whole = FeatureFile::open(&single).unwrap();
    assert_eq!(whole.len(), 13);
    for n in [1, 3, 7] {
        let out = dir.path().join(format!("n{n}"));
        for k in 0..n {
            let err = run_ok(&imgs, &["--shard", &format!("{k}/{n}"), "--out", &format!("{}/", out.display())]);
            assert!(err.contains(&format!("shard {k}/{n}: ")), "{err}");
        }
        assert_eq!(
            files_in(&out),
            (0..n).map(|k| part_name(k, n)).collect::<Vec<_>>(),
            "one file per task, nothing else"
        );
        let ps = parts(&out, n);
        let union: Rows = ps.iter().flat_map(rows).collect();
        assert_eq!(union, rows(&whole), "N={n}: the parts in order are the single run");
        // Each part is a whole feature file with the run's header and its shard record.
        let mut skipped = Vec::new();
        for (k, p) in ps.iter().enumerate() {
            let shard = p.header.shard.as_ref().expect("a part has a shard record");
            assert_eq!((shard.index, shard.count, shard.total_images), (k, n, Some(14)), "N={n} part {k}");
            assert_eq!(
                (
                    p.header.model.clone(),
                    p.header.classes.clone(),
                    p.header.layers.clone(),
                    p.header.preprocess.clone()
                ),
                (
                    whole.header.model.clone(),
                    whole.header.classes.clone(),
                    whole.header.layers.clone(),
                    whole.header.preprocess.clone()
                )
            );
            assert_eq!(shard.images, p.len() + p.header.skipped.len(), "images in the range, read or skipped");
            if let Some(first) = &shard.first {
                assert!(
                    p.paths.first().is_none_or(|f| f >= first)
                        && p.paths.last().is_none_or(|l| Some(l) <= shard.last.as_ref())
                );
            }
            skipped.extend(p.header.skipped.clone());
        }
        assert_eq!(skipped, whole.header.skipped, "N={n}: the unreadable file is named in exactly one part");
        assert!(whole.header.shard.is_none(), "a single run has no shard record");
        // Read back as a folder: the single run again.
        let folder = FeatureFile::open(&out).unwrap();
        assert_eq!(rows(&folder), rows(&whole));
        assert_eq!(folder.header.skipped, whole.header.skipped);
    }
}

#[test]
#[ignore = "needs scripts/setup.sh (.venv, models/): scripts/test.sh runs it"]
fn more_tasks_than_images_leave_empty_parts_not_holes() {
    let dir = tempfile::tempdir().unwrap();
    let imgs = images(dir.path(), 2);
    let out = format!("{}/", dir.path().join("parts").display());
    // Three entries (two images, one broken) over four tasks: task 0 gets nothing.
    for k in 0..4 {
        run_ok(&imgs, &["--shard", &format!("{k}/4"), "--out", &out]);
    }
    let ps = parts(Path::new(&out), 4);
    assert_eq!(ps.iter().map(|p| p.len()).collect::<Vec<_>>(), [0, 1, 1, 0]);
    assert_eq!(ps[0].header.shard.as_ref().unwrap().first, None);
    assert_eq!(ps[3].header.skipped.len(), 1, "the broken file's part has no rows but names it");
    assert_eq!(ps[0].header.layers, ps[1].header.layers, "an empty part still has the columns");
    assert_eq!(FeatureFile::open(Path::new(&out)).unwrap().len(), 2);
}

#[test]
#[ignore = "needs scripts/setup.sh (.venv, models/): scripts/test.sh runs it"]
fn shard_auto_reads_slurm_and_kubernetes_variables() {
    let dir = tempfile::tempdir().unwrap();
    let imgs = images(dir.path(), 5);
    let fixed = dir.path().join("fixed");
    run_ok(&imgs, &["--shard", "1/3", "--out", &format!("{}/", fixed.display())]);
    let expect = rows(&FeatureFile::open(&fixed.join(part_name(1, 3))).unwrap());

    // A Slurm array --array=4-6: task id 5 is the second of three.
    let slurm = dir.path().join("slurm");
    let vars = [
        ("SLURM_ARRAY_TASK_ID", "5"),
        ("SLURM_ARRAY_TASK_MIN", "4"),
        ("SLURM_ARRAY_TASK_COUNT", "3"),
        ("SLURM_ARRAY_TASK_STEP", "1"),
    ];
    let o = extract(&imgs, &["--shard", "auto", "--out", &format!("{}/", slurm.display())], &vars);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(files_in(&slurm), [part_name(1, 3)]);
    assert_eq!(rows(&FeatureFile::open(&slurm.join(part_name(1, 3))).unwrap()), expect);

    // Shard 1 of 3 rerun alone on Slurm (--array=1 with --shard auto/3).
    let rerun = dir.path().join("rerun");
    let one = [("SLURM_ARRAY_TASK_ID", "1"), ("SLURM_ARRAY_TASK_MIN", "1"), ("SLURM_ARRAY_TASK_COUNT", "1")];
    let o = extract(&imgs, &["--shard", "auto/3", "--out", &format!("{}/", rerun.display())], &one);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(rows(&FeatureFile::open(&rerun.join(part_name(1, 3))).unwrap()), expect);

    // A Kubernetes Indexed Job of 3 completions, index 1.
    let k8s = dir.path().join("k8s");
    let o = extract(
        &imgs,
        &["--shard", "auto/3", "--out", &format!("{}/", k8s.display())],
        &[("JOB_COMPLETION_INDEX", "1")],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(rows(&FeatureFile::open(&k8s.join(part_name(1, 3))).unwrap()), expect);

    // Every bad combination: one line, no file.
    let bad = dir.path().join("bad");
    let out = format!("{}/", bad.display());
    // (arguments, scheduler variables, the error's words)
    type Case<'a> = (Vec<&'a str>, Vec<(&'a str, &'a str)>, &'a str);
    let cases: Vec<Case> = vec![
        (vec!["--shard", "3/3"], vec![], "--shard 3/3: the task index must be below the count"),
        (vec!["--shard", "0/0"], vec![], "--shard: the count must be at least 1"),
        (vec!["--shard", "two/3"], vec![], "expected K/N"),
        (vec!["--shard", "auto"], vec![], "neither SLURM_ARRAY_TASK_ID"),
        (vec!["--shard", "auto"], vec![("JOB_COMPLETION_INDEX", "1")], "write --shard auto/N"),
        (vec!["--shard", "auto/3"], vec![("JOB_COMPLETION_INDEX", "3")], "--shard 3/3: the task index must be below"),
        (
            vec!["--shard", "auto"],
            vec![("SLURM_ARRAY_TASK_ID", "1"), ("SLURM_ARRAY_TASK_MIN", "0")],
            "SLURM_ARRAY_TASK_COUNT is not set",
        ),
        (vec!["--shard", "auto/4"], vars.to_vec(), "--shard auto/4: SLURM_ARRAY_TASK_ID is 5, not below 4"),
        (vec!["--shard", "auto"], vec![("SLURM_ARRAY_TASK_ID", "1"), ("JOB_COMPLETION_INDEX", "1")], "both"),
    ];
    for (args, env, expect) in cases {
        let all: Vec<&str> = args.iter().copied().chain(["--out", &out]).collect();
        let o = extract(&imgs, &all, &env);
        assert_one_line_failure("extract", &all, &o, expect);
    }
    let file = dir.path().join("bad.parquet");
    let o = extract(&imgs, &["--shard", "0/2", "--out", s(&file)], &[]);
    assert_one_line_failure("extract", &["--shard", "0/2"], &o, "give --out a folder, ending in /");
    assert!(!bad.exists() && !file.exists(), "no file from a refused shard");
}

#[test]
#[ignore = "needs scripts/setup.sh (.venv, models/): scripts/test.sh runs it"]
fn a_done_part_is_skipped_another_runs_refused_a_killed_one_redone() {
    let dir = tempfile::tempdir().unwrap();
    let imgs = images(dir.path(), 5);
    let out_dir = dir.path().join("parts");
    let out = format!("{}/", out_dir.display());
    let part = out_dir.join(part_name(1, 2));
    run_ok(&imgs, &["--shard", "1/2", "--out", &out]);
    // A rewrite renames a new file into place: a new inode.
    use std::os::unix::fs::MetadataExt;
    let written = std::fs::metadata(&part).unwrap().ino();

    let again = run_ok(&imgs, &["--shard", "1/2", "--out", &out]);
    assert!(again.contains("is complete") && again.contains("nothing to do"), "{again}");
    assert_eq!(again.lines().count(), 1, "{again}");
    assert_eq!(std::fs::metadata(&part).unwrap().ino(), written, "not rewritten");

    let args = ["--shard", "1/2", "--out", &out, "--resize", "240"];
    let o = extract(&imgs, &args, &[]);
    assert_one_line_failure(
        "extract",
        &args,
        &o,
        "exists from another run (resize 256 crop 224 scaled decode, this run's 240 224 scaled decode)",
    );
    let args = ["--shard", "1/2", "--out", &out, "--pool", "max"];
    let o = extract(&imgs, &args, &[]);
    assert_one_line_failure(
        "extract",
        &args,
        &o,
        "(layers layer2 (avg),avgpool (none), this run's layer2,avgpool with --pool max)",
    );
    std::fs::create_dir_all(imgs.join("cats/more")).unwrap();
    std::fs::copy(imgs.join("cats/000.png"), imgs.join("cats/more/x.png")).unwrap();
    let o = extract(&imgs, &["--shard", "1/2", "--out", &out], &[]);
    assert_one_line_failure("extract", &["--shard", "1/2"], &o, "another share of the images");
    std::fs::remove_dir_all(imgs.join("cats/more")).unwrap();

    let redo = run_ok(&imgs, &["--shard", "1/2", "--out", &out, "--overwrite"]);
    assert!(redo.contains("wrote"), "{redo}");
    assert_no_partial_files(&out_dir);
}

#[test]
#[ignore = "needs scripts/setup.sh (.venv, models/): scripts/test.sh runs it"]
fn a_part_killed_mid_run_is_redone_and_its_partial_file_removed() {
    let dir = tempfile::tempdir().unwrap();
    // Large enough that the run lasts well beyond the first row group.
    let imgs = images_of_width(dir.path(), 40, 1600);
    let single = dir.path().join("single.parquet");
    let out_dir = dir.path().join("parts");
    let out = format!("{}/", out_dir.display());
    let m = model(MODEL);
    let args = ["--model", s(&m), "--images", s(&imgs), "--layer", "layer2,avgpool", "--batch", "1", "--threads", "1"];
    let mut child = Command::new(env!("CARGO_BIN_EXE_extract"))
        .args(args)
        .args(["--shard", "0/1", "--out", &out])
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // Killed (SIGKILL: nothing runs to clean up) once rows are being
    // written, held still until then so that it cannot finish first.
    let partial = || files_in(&out_dir).into_iter().find(|n| n.ends_with(".partial"));
    testkit::stop_when(&mut child, || partial().is_some());
    let partial = partial().unwrap();
    child.kill().unwrap();
    child.wait().unwrap();
    assert_eq!(files_in(&out_dir), [partial], "a killed run leaves its partial file, no part");

    let err = run_ok(&imgs, &["--shard", "0/1", "--out", &out]);
    assert!(err.contains("removed 1 partial file"), "{err}");
    assert_eq!(files_in(&out_dir), [part_name(0, 1)]);
    run_ok(&imgs, &["--out", s(&single)]);
    assert_eq!(
        rows(&FeatureFile::open(&out_dir.join(part_name(0, 1))).unwrap()),
        rows(&FeatureFile::open(&single).unwrap())
    );
}

#[test]
#[ignore = "needs scripts/setup.sh (.venv, models/): scripts/test.sh runs it"]
fn duckdb_polars_and_pyarrow_read_the_folder_as_one_table() {
    let dir = tempfile::tempdir().unwrap();
    let imgs = images(dir.path(), 7);
    let out = dir.path().join("parts");
    for k in 0..3 {
        run_ok(&imgs, &["--shard", &format!("{k}/3"), "--out", &format!("{}/", out.display())]);
    }
    let single = dir.path().join("single.parquet");
    run_ok(&imgs, &["--out", s(&single)]);
    let whole = FeatureFile::open(&single).unwrap();
    let got = py_json("extract/tests/py/read_parts.py", &[s(&out)]);
    let paths: Vec<&str> = whole.paths.iter().map(String::as_str).collect();
    let values: Vec<u8> = whole.column("avgpool").unwrap().values.iter().flat_map(|v| v.to_le_bytes()).collect();
    let want = {
        use sha2::Digest;
        hex::encode(sha2::Sha256::digest(&values))
    };
    for reader in ["pyarrow", "polars", "duckdb"] {
        let r = &got[reader];
        assert_eq!(r["rows"], paths.len(), "{reader}: {r}");
        let read: Vec<&str> = r["paths"].as_array().unwrap().iter().map(|p| p.as_str().unwrap()).collect();
        assert_eq!(read, paths, "{reader} reads the parts in order");
        assert_eq!(r["avgpool_sha256"], want.as_str(), "{reader}: the single run's values, bit for bit");
    }
}

#[test]
#[ignore = "needs scripts/setup.sh (.venv, models/): scripts/test.sh runs it"]
fn the_sbatch_script_runs_as_an_array_task_would() {
    // Slurm's own run is scripts/slurm-check.sh; here the script alone, with
    // the variables Slurm sets for task 4 of --array=3-5.
    let dir = tempfile::tempdir().unwrap();
    let imgs = images(dir.path(), 5);
    let out = dir.path().join("parts");
    let fixed = dir.path().join("fixed");
    run_ok(&imgs, &["--shard", "1/3", "--out", &format!("{}/", fixed.display())]);
    let run = |vars: &[(&str, &str)]| {
        let mut c = Command::new("bash");
        c.arg(testkit::root().join("scripts/slurm/extract.sbatch"))
            .current_dir(testkit::root())
            .env("IMAGES", &imgs)
            .env("OUT", &out) // no trailing slash: the script adds it
            .env("MODEL", model(MODEL))
            .env("LAYER", "layer2,avgpool")
            .env("EXTRACT", env!("CARGO_BIN_EXE_extract"))
            .env_remove("SHARDS");
        for v in SCHEDULER_VARS {
            c.env_remove(v);
        }
        c.envs(vars.iter().copied()).output().unwrap()
    };
    let o = run(&[
        ("SLURM_ARRAY_TASK_ID", "4"),
        ("SLURM_ARRAY_TASK_MIN", "3"),
        ("SLURM_ARRAY_TASK_COUNT", "3"),
        ("SLURM_ARRAY_TASK_STEP", "1"),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let part = out.join(part_name(1, 3));
    assert_eq!(
        rows(&FeatureFile::open(&part).unwrap()),
        rows(&FeatureFile::open(&fixed.join(part_name(1, 3))).unwrap())
    );
    // Resubmitted: nothing to do.
    let o = run(&[("SLURM_ARRAY_TASK_ID", "4"), ("SLURM_ARRAY_TASK_MIN", "3"), ("SLURM_ARRAY_TASK_COUNT", "3")]);
    assert!(o.status.success() && stderr(&o).contains("nothing to do"), "{}", stderr(&o));
    assert_eq!(files_in(&out), [part_name(1, 3)]);
}

#[test]
#[ignore = "needs scripts/setup.sh (.venv, models/): scripts/test.sh runs it"]
fn the_kubernetes_manifest_is_an_indexed_job_whose_command_runs() {
    let (completions, command) = testkit::indexed_job("deploy/kubernetes/extract-job.yaml");
    assert_eq!(command[0], "extract");
    let shard = command.iter().position(|a| a == "--shard").expect("--shard");
    assert_eq!(command[shard + 1], format!("auto/{completions}"), "N in --shard auto/N is the Job's completions");
    // Run as pod 3 would, with the test's paths in place of the volumes'.
    let dir = tempfile::tempdir().unwrap();
    let imgs = images(dir.path(), 5);
    let out = format!("{}/", dir.path().join("features").display());
    let m = model(MODEL);
    let local: Vec<String> = command[1..]
        .iter()
        .map(|a| match a.as_str() {
            "/data/train" => s(&imgs).to_string(),
            "/features/train/" => out.clone(),
            "/models/resnet50-imagenet.onnx" => s(&m).to_string(),
            other => other.to_string(),
        })
        .collect();
    let mut c = Command::new(env!("CARGO_BIN_EXE_extract"));
    c.args(&local).env("JOB_COMPLETION_INDEX", "3");
    for v in SCHEDULER_VARS.iter().filter(|v| **v != "JOB_COMPLETION_INDEX") {
        c.env_remove(v);
    }
    let o = c.output().unwrap();
    assert!(o.status.success(), "{local:?}: {}", stderr(&o));
    assert_eq!(files_in(Path::new(&out)), [part_name(3, completions)]);
}
