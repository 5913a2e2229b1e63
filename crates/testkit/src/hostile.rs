//! The hostile-input suite's checks: a tool run on input made to break it
//! refuses it the way every failure must look, within a memory bound,
//! leaving its inputs as they were and nothing half-written.

use std::collections::BTreeMap;
use std::hash::{Hash, Hasher};
use std::io::Read;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// What no run may take, whatever it is given.
pub const PEAK_BYTES: u64 = 1 << 30;

/// A run, measured: its exit, its streams, its own peak resident memory
/// (the kernel's count for that process, from `wait4`).
#[derive(Debug)]
pub struct Measured {
    pub status: ExitStatus,
    pub stdout: String,
    pub stderr: String,
    pub peak_bytes: u64,
    pub seconds: f64,
}

/// Runs `cmd` (no stdin) to its end, killed past `limit` (a hang fails the
/// test rather than the suite).
pub fn run_measured(cmd: &mut Command, limit: Duration) -> Measured {
    let start = Instant::now();
    let mut child =
        cmd.stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().expect("the tool starts");
    let drain = |mut r: Box<dyn Read + Send>| {
        std::thread::spawn(move || {
            let mut v = Vec::new();
            let _ = r.read_to_end(&mut v);
            String::from_utf8_lossy(&v).into_owned()
        })
    };
    let out = drain(Box::new(child.stdout.take().expect("piped")));
    let err = drain(Box::new(child.stderr.take().expect("piped")));
    let pid = child.id() as libc::pid_t;
    let done = Arc::new(AtomicBool::new(false));
    let watchdog = {
        let done = done.clone();
        std::thread::spawn(move || {
            while start.elapsed() < limit {
                if done.load(Ordering::SeqCst) {
                    return false;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            // Not yet reaped, so the pid is still the child's.
            unsafe { libc::kill(pid, libc::SIGKILL) };
            true
        })
    };
    let mut status = 0;
    // SAFETY: rusage is plain data, filled by the kernel.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    let reaped = unsafe { libc::wait4(pid, &mut status, 0, &mut usage) };
    done.store(true, Ordering::SeqCst);
    assert_eq!(reaped, pid, "wait4: {}", std::io::Error::last_os_error());
    let killed = watchdog.join().expect("watchdog");
    // std's handle is never waited on: the child is reaped above.
    std::mem::forget(child);
    let m = Measured {
        status: ExitStatus::from_raw(status),
        stdout: out.join().expect("stdout"),
        stderr: err.join().expect("stderr"),
        peak_bytes: usage.ru_maxrss as u64 * 1024,
        seconds: start.elapsed().as_secs_f64(),
    };
    assert!(!killed, "{cmd:?} ran past {limit:?}: a hang\nstderr: {}", m.stderr);
    m
}

/// Every regular file under `paths` (a file, or a folder walked), by path,
/// with a hash of its bytes; other entries (device nodes, FIFOs) by kind,
/// never opened.
pub fn snapshot(paths: &[&Path]) -> BTreeMap<PathBuf, String> {
    let mut out = BTreeMap::new();
    fn walk(p: &Path, out: &mut BTreeMap<PathBuf, String>) {
        let Ok(meta) = std::fs::symlink_metadata(p) else { return };
        if meta.is_dir() {
            let mut entries: Vec<PathBuf> =
                std::fs::read_dir(p).map(|d| d.flatten().map(|e| e.path()).collect()).unwrap_or_default();
            entries.sort();
            entries.iter().for_each(|e| walk(e, out));
        } else if meta.is_file() {
            let mut h = std::collections::hash_map::DefaultHasher::new();
            std::fs::read(p).expect("readable").hash(&mut h);
            out.insert(p.to_owned(), format!("{} bytes, hash {:x}", meta.len(), h.finish()));
        } else {
            out.insert(p.to_owned(), format!("{:?}", meta.file_type()));
        }
    }
    paths.iter().for_each(|p| walk(p, &mut out));
    out
}

/// A hostile case refused as every failure must be: a non-zero exit of
/// the tool's own (no signal, no abort), stderr's first line `PROG: ` and
/// containing `expect`, one line only unless it is a usage error (exit 2:
/// clap's usage follows), no panic or backtrace, under [`PEAK_BYTES`].
pub fn assert_refused(prog: &str, case: &str, m: &Measured, expect: &str) {
    let ctx = || format!("{case}: exit {:?}\nstderr: {}", m.status, m.stderr);
    let code = m.status.code().unwrap_or_else(|| panic!("killed by a signal: {}", ctx()));
    assert_ne!(code, 0, "{}", ctx());
    let first = m.stderr.lines().next().unwrap_or_default();
    assert!(first.starts_with(&format!("{prog}: ")) && m.stderr.contains(expect), "{expect:?} not said: {}", ctx());
    if code != 2 {
        assert_eq!(m.stderr.trim_end().lines().count(), 1, "one line: {}", ctx());
    }
    assert_calm(case, m);
}

/// No panic, no backtrace, no abort, under [`PEAK_BYTES`]: what any run,
/// refused or not, must keep to.
pub fn assert_calm(case: &str, m: &Measured) {
    for sign in ["panicked", "backtrace", "memory allocation of"] {
        assert!(!m.stderr.contains(sign), "{case}: {sign:?} in stderr: {}", m.stderr);
    }
    assert!(m.status.code().is_some(), "{case}: killed by a signal ({:?}): {}", m.status, m.stderr);
    assert!(m.peak_bytes < PEAK_BYTES, "{case}: peak memory {} MB, over {} MB", m.peak_bytes >> 20, PEAK_BYTES >> 20);
}

/// A character device node made in `dir` (never the machine's own `/dev`:
/// the same major and minor as /dev/null), or, where this user may not
/// make one, a FIFO: both are what `--out /dev/null` names, a file that is
/// not a regular one.
pub fn device_node(dir: &Path, name: &str) -> PathBuf {
    let node = dir.join(name);
    let made = Command::new("mknod")
        .arg(&node)
        .args(["c", "1", "3"])
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !made {
        eprintln!("mknod not allowed here: a FIFO stands in for the device node");
        assert!(Command::new("mkfifo").arg(&node).status().expect("mkfifo runs").success());
    }
    node
}
