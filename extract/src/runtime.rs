//! ONNX Runtime: finding its shared library, one environment per process,
//! and a session on the device the user asked for.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use ort::session::Session;

#[derive(Debug, Clone, thiserror::Error)]
pub enum Error {
    #[error("ONNX Runtime not found ({0}); run scripts/setup.sh to install it into .venv, or set ORT_DYLIB_PATH to libonnxruntime.so")]
    NotFound(String),
    #[error("ONNX Runtime at {path} could not be loaded: {reason}")]
    Load { path: PathBuf, reason: String },
    #[error("--device {0}: the CUDA execution provider could not start ({1}); install the GPU runtime with scripts/setup.sh --gpu")]
    Cuda(String, String),
    #[error("this build has no CUDA support; rebuild extract with --features cuda")]
    NoCudaBuild,
    #[error("ONNX Runtime: {0}")]
    Ort(String),
}

fn ort_err(e: impl std::fmt::Display) -> Error {
    Error::Ort(e.to_string())
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Device {
    /// CUDA when its provider and a GPU are there, else the CPU.
    Auto,
    Cpu,
    Cuda(i32),
}

impl std::str::FromStr for Device {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "auto" => Ok(Device::Auto),
            "cpu" => Ok(Device::Cpu),
            "cuda" => Ok(Device::Cuda(0)),
            _ => s
                .strip_prefix("cuda:")
                .and_then(|n| n.parse().ok())
                .map(Device::Cuda)
                .ok_or_else(|| format!("{s:?} is not a device: use auto, cpu, cuda or cuda:N")),
        }
    }
}

/// Where libonnxruntime.so is: `ORT_DYLIB_PATH`, else the workspace's
/// `.venv` (as `scripts/setup.sh` makes it), else the system's library path.
pub fn locate() -> Result<PathBuf, Error> {
    if let Some(p) = std::env::var_os("ORT_DYLIB_PATH") {
        let p = PathBuf::from(p);
        return if p.is_file() { Ok(p) } else { Err(Error::NotFound(format!("ORT_DYLIB_PATH={} is not a file", p.display()))) };
    }
    let mut roots: Vec<PathBuf> = Vec::new();
    if let Ok(exe) = std::env::current_exe() {
        // target/{debug,release}/extract -> the workspace root
        roots.extend(exe.ancestors().skip(1).take(4).map(Path::to_path_buf));
    }
    if let Ok(cwd) = std::env::current_dir() {
        roots.extend(cwd.ancestors().map(Path::to_path_buf));
    }
    roots.push(PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(".."));
    for root in roots {
        if let Some(p) = venv_library(&root.join(".venv")) {
            return Ok(p);
        }
    }
    for dir in ["/usr/local/lib", "/usr/lib", "/usr/lib/x86_64-linux-gnu", "/usr/lib/aarch64-linux-gnu"] {
        let p = Path::new(dir).join("libonnxruntime.so");
        if p.is_file() {
            return Ok(p);
        }
    }
    Err(Error::NotFound("not in ORT_DYLIB_PATH, .venv or the system library path".into()))
}

fn venv_library(venv: &Path) -> Option<PathBuf> {
    let lib = venv.join("lib");
    for py in std::fs::read_dir(&lib).ok()?.flatten() {
        let capi = py.path().join("site-packages/onnxruntime/capi");
        let Ok(files) = std::fs::read_dir(&capi) else { continue };
        let mut found: Vec<PathBuf> = files
            .flatten()
            .map(|f| f.path())
            .filter(|p| p.file_name().and_then(|n| n.to_str()).is_some_and(|n| n.starts_with("libonnxruntime.so")))
            .collect();
        found.sort();
        if let Some(p) = found.into_iter().next() {
            return Some(p);
        }
    }
    None
}

/// Only one ONNX Runtime environment may exist per process, ever, so it is
/// made once and kept; later calls get the same outcome.
pub fn init() -> Result<&'static ort::environment::Environment, Error> {
    static ENV: OnceLock<Result<(PathBuf, ort::environment::Environment), Error>> = OnceLock::new();
    let env = ENV.get_or_init(|| {
        let path = locate()?;
        let load = |reason: String| Error::Load { path: path.clone(), reason };
        let env = ort::init_from(&path)
            .map_err(|e| load(e.to_string()))?
            .with_name("extract")
            .with_telemetry(false)
            .build()
            .map_err(|e| load(e.to_string()))?;
        Ok((path, env))
    });
    env.as_ref().map(|(_, env)| env).map_err(Clone::clone)
}

/// A session that runs the model with the chosen outputs.
pub struct Engine {
    session: Session,
    input: String,
    outputs: Vec<String>,
    /// What actually runs it: `cpu` or `cuda:N`.
    pub device: String,
}

impl Engine {
    /// `model` is the serialized model whose graph outputs are `outputs`.
    pub fn new(model: &[u8], input: &str, outputs: Vec<String>, device: Device, threads: usize) -> Result<Self, Error> {
        let env = init()?;
        let (session, used) = match device {
            Device::Cpu => (session(env, model, threads, None)?, "cpu".to_string()),
            Device::Cuda(n) => {
                let s = session(env, model, threads, Some(n)).map_err(|e| match e {
                    Error::NoCudaBuild => e,
                    other => Error::Cuda(format!("cuda:{n}"), other.to_string()),
                })?;
                (s, format!("cuda:{n}"))
            }
            Device::Auto => match session(env, model, threads, Some(0)) {
                Ok(s) => (s, "cuda:0".to_string()),
                Err(_) => (session(env, model, threads, None)?, "cpu".to_string()),
            },
        };
        Ok(Engine { session, input: input.to_string(), outputs, device: used })
    }

    /// Runs `n` images (`data` is n x 3 x size x size) and hands each output,
    /// in the order given at creation, to `f` with its shape.
    pub fn run(&mut self, data: &[f32], n: usize, size: usize, mut f: impl FnMut(usize, &[i64], &[f32])) -> Result<(), Error> {
        let shape = vec![n as i64, 3, size as i64, size as i64];
        let tensor = ort::value::TensorRef::from_array_view((shape, data)).map_err(ort_err)?;
        let outputs = self.session.run(ort::inputs![self.input.as_str() => tensor]).map_err(ort_err)?;
        for (i, name) in self.outputs.iter().enumerate() {
            let (shape, values) = outputs[name.as_str()].try_extract_tensor::<f32>().map_err(ort_err)?;
            f(i, shape, values);
        }
        Ok(())
    }
}

fn session(env: &ort::environment::Environment, model: &[u8], threads: usize, cuda: Option<i32>) -> Result<Session, Error> {
    let mut builder = Session::builder(env).map_err(ort_err)?.with_intra_threads(threads).map_err(ort_err)?;
    if let Some(n) = cuda {
        builder = with_cuda(builder, n)?;
    }
    builder.commit_from_memory(model).map_err(ort_err)
}

#[cfg(feature = "cuda")]
fn with_cuda(builder: ort::session::builder::SessionBuilder, device: i32) -> Result<ort::session::builder::SessionBuilder, Error> {
    // ort skips a provider that fails to register and runs on the CPU without
    // a word; error_on_failure turns that into an error we can report.
    let ep = ort::ep::CUDA::default().with_device_id(device).build().error_on_failure();
    builder.with_execution_providers([ep]).map_err(ort_err)
}

#[cfg(not(feature = "cuda"))]
fn with_cuda(_: ort::session::builder::SessionBuilder, _: i32) -> Result<ort::session::builder::SessionBuilder, Error> {
    Err(Error::NoCudaBuild)
}
