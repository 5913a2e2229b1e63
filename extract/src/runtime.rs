//! ONNX Runtime: finding its shared library, one environment per process,
//! and a session on the device the user asked for.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};

use ort::session::Session;

/// ONNX Runtime's library not found or not loaded: the outcome of the
/// process's one attempt, kept and given again to every later caller.
#[derive(Debug, Clone, thiserror::Error)]
pub enum InitError {
    #[error("ONNX Runtime not found ({0}); set ORT_DYLIB_PATH to libonnxruntime.so")]
    NotFound(String),
    #[error("ONNX Runtime at {} could not be loaded: {}", .path.display(), one_line(.source))]
    Load { path: PathBuf, source: Arc<dyn std::error::Error + Send + Sync> },
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Init(#[from] InitError),
    #[error("--device cuda:{device}: the CUDA execution provider could not start ({source})")]
    Cuda { device: i32, source: Box<Error> },
    #[error("this build has no CUDA support; rebuild extract with --features cuda")]
    NoCudaBuild,
    #[error("--device openvino: OpenVINO's plugin for ONNX Runtime is not installed ({0})")]
    NoOpenVino(String),
    #[error("--device openvino: the OpenVINO execution provider could not start ({0})")]
    OpenVino(String),
    /// The plugin offers Intel's devices alone (its factory passes over any
    /// other vendor's), though OpenVINO itself runs on other x86 CPUs.
    #[error("--device openvino: OpenVINO's plugin for ONNX Runtime offers only Intel devices, and this CPU is {0}'s; use --device cpu")]
    OpenVinoNotIntel(String),
    /// ONNX Runtime's own error, kept as the source; shown on one line
    /// (its messages can end in, or contain, newlines).
    #[error("ONNX Runtime: {}", one_line(.0))]
    Ort(#[source] ort::Error),
    #[error("{}: the folder of the model's external weights is not a UTF-8 path, which ONNX Runtime needs", .0.display())]
    NotUtf8(PathBuf),
}

fn one_line(e: &impl std::fmt::Display) -> String {
    e.to_string().split_whitespace().collect::<Vec<_>>().join(" ")
}

fn ort_err(e: impl Into<ort::Error>) -> Error {
    Error::Ort(e.into())
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Device {
    /// CUDA when its provider and a GPU are there, else OpenVINO where its
    /// plugin is installed, else the CPU provider.
    Auto,
    Cpu,
    Cuda(i32),
    /// OpenVINO's execution-provider plugin, on the CPU.
    OpenVino,
}

impl std::str::FromStr for Device {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "auto" => Ok(Device::Auto),
            "cpu" => Ok(Device::Cpu),
            "cuda" => Ok(Device::Cuda(0)),
            "openvino" => Ok(Device::OpenVino),
            _ => s
                .strip_prefix("cuda:")
                .and_then(|n| n.parse().ok())
                .map(Device::Cuda)
                .ok_or_else(|| format!("{s:?} is not a device: use auto, cpu, cuda, cuda:N or openvino")),
        }
    }
}

/// What actually runs a session: the CPU provider, CUDA on GPU N, or
/// OpenVINO's plugin on the CPU.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Placement {
    Cpu,
    Cuda(i32),
    OpenVino,
}

impl std::fmt::Display for Placement {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Placement::Cpu => f.write_str("cpu"),
            Placement::Cuda(n) => write!(f, "cuda:{n}"),
            Placement::OpenVino => f.write_str("openvino"),
        }
    }
}

/// The OpenVINO plugin's shared library, as `onnxruntime-ep-openvino`
/// installs it beside the ONNX Runtime we load (or `ORT_OPENVINO_PLUGIN`).
pub fn locate_openvino() -> Result<PathBuf, Error> {
    const PLUGIN: &str = "onnxruntime_ep_openvino/libonnxruntime_providers_openvino_plugin.so";
    if let Some(p) = std::env::var_os("ORT_OPENVINO_PLUGIN") {
        let p = PathBuf::from(p);
        if !p.is_file() {
            return Err(Error::NoOpenVino(format!("ORT_OPENVINO_PLUGIN={} is not a file", p.display())));
        }
        // ONNX Runtime would look for a relative path beside itself.
        return std::path::absolute(&p)
            .map_err(|e| Error::NoOpenVino(format!("ORT_OPENVINO_PLUGIN={}: {e}", p.display())));
    }
    let ort = locate()?;
    // site-packages/onnxruntime/capi/libonnxruntime.so.X
    let plugin = ort.ancestors().nth(3).map(|site| site.join(PLUGIN));
    match plugin {
        Some(p) if p.is_file() => Ok(p),
        _ => Err(Error::NoOpenVino(format!("no {PLUGIN} beside {}", ort.display()))),
    }
}

/// The OpenVINO plugin registered with the process's environment, once; later
/// calls get the same outcome.
fn register_openvino(env: &ort::environment::Environment) -> Result<(), Error> {
    enum Failed {
        Missing(String),
        Refused(String),
    }
    static DONE: OnceLock<Result<(), Failed>> = OnceLock::new();
    let outcome = DONE.get_or_init(|| {
        let path = locate_openvino().map_err(|e| match e {
            Error::NoOpenVino(why) => Failed::Missing(why),
            other => Failed::Refused(other.to_string()),
        })?;
        env.register_ep_library("OpenVINO", &path).map_err(|e| Failed::Refused(one_line(&e)))
    });
    match outcome {
        Ok(()) => Ok(()),
        Err(Failed::Missing(why)) => Err(Error::NoOpenVino(why.clone())),
        Err(Failed::Refused(why)) => Err(Error::OpenVino(why.clone())),
    }
}

/// Where libonnxruntime.so is: `ORT_DYLIB_PATH`, else the workspace's
/// `.venv` (as `scripts/setup.sh` makes it), else the system's library path.
pub fn locate() -> Result<PathBuf, InitError> {
    if let Some(p) = std::env::var_os("ORT_DYLIB_PATH") {
        let p = PathBuf::from(p);
        return if p.is_file() {
            Ok(p)
        } else {
            Err(InitError::NotFound(format!("ORT_DYLIB_PATH={} is not a file", p.display())))
        };
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
    Err(InitError::NotFound("not in ORT_DYLIB_PATH, .venv or the system library path".into()))
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
    static ENV: OnceLock<Result<ort::environment::Environment, InitError>> = OnceLock::new();
    let env = ENV.get_or_init(|| {
        let path = locate()?;
        let load =
            |e: Box<dyn std::error::Error + Send + Sync>| InitError::Load { path: path.clone(), source: e.into() };
        let env = ort::init_from(&path)
            .map_err(|e| load(e.into()))?
            .with_name("extract")
            .with_telemetry(false)
            .with_logger(Arc::new(log))
            .build()
            .map_err(|e| load(e.into()))?;
        Ok(env)
    });
    // The first outcome again: init itself fails only by finding or loading the library.
    env.as_ref().map_err(|e| Error::Init(e.clone()))
}

/// Host memory for a batch of preprocessed images (`rows` x 3 x size x size).
/// On CUDA it is page-locked (pinned): the copy to the GPU is then one DMA
/// at bus speed rather than a copy staged through a driver buffer.
pub struct HostBuffer {
    memory: Memory,
    rows: usize,
    size: usize,
}

enum Memory {
    Heap(Vec<f32>),
    #[cfg(feature = "cuda")]
    Pinned(Pinned),
}

/// Page-locked host memory owned by an ONNX Runtime tensor (which keeps its
/// allocator alive); ort's values are `Send`, so buffers move between the
/// decoding and inference threads as they are.
#[cfg(feature = "cuda")]
struct Pinned(ort::value::Tensor<f32>);

impl HostBuffer {
    pub fn as_slice(&self) -> &[f32] {
        match &self.memory {
            Memory::Heap(v) => v,
            #[cfg(feature = "cuda")]
            Memory::Pinned(t) => t.0.extract_tensor().1,
        }
    }

    pub fn as_mut_slice(&mut self) -> &mut [f32] {
        match &mut self.memory {
            Memory::Heap(v) => v,
            #[cfg(feature = "cuda")]
            Memory::Pinned(t) => t.0.extract_tensor_mut().1,
        }
    }
}

/// How a CUDA run moves its data.
///
/// Outputs bound to pinned memory would be the next step, but ONNX Runtime
/// 1.31.1 fails those runs (`GPUDataTransfer::CopyTensorAsync dst_data !=
/// src_data`, seen on an H200); the pooled outputs are small anyway.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Binding {
    /// `Session::run`: ONNX Runtime copies the input in and the outputs out.
    Off,
    /// I/O binding: the pinned input buffer is bound (and so copied to the
    /// GPU) as it is; the outputs come back into ordinary memory.
    Input,
}

featurefile::named_choice!(Binding { Off => "off", Input => "input" });

/// ONNX Runtime's own messages, held until the caller takes them
/// ([`take_log`]) and reports them as it reports everything else: its
/// logger is the process's, called from its own threads, and the library
/// prints nothing. At most [`LOG_LINES`] are held; the rest are counted.
static LOG: Mutex<(Vec<String>, usize)> = Mutex::new((Vec::new(), 0));

/// Messages held between two [`take_log`]s: a model that warns once per
/// node cannot fill memory.
pub const LOG_LINES: usize = 100;

/// The logger given to ONNX Runtime. Every failure also comes back to us
/// as an error, so this is for warnings (a node the GPU cannot run, say);
/// cuDNN's rejected candidates during the convolution algorithm search ("No
/// execution plans support the graph") are routine and dropped.
fn log(level: ort::logging::LogLevel, _category: &str, _id: &str, location: &str, message: &str) {
    use ort::logging::LogLevel;
    if matches!(level, LogLevel::Verbose | LogLevel::Info) || location.contains("cudnn_fe_call") {
        return;
    }
    let mut held = LOG.lock().unwrap_or_else(|p| p.into_inner());
    if held.0.len() < LOG_LINES {
        held.0.push(message.split_whitespace().collect::<Vec<_>>().join(" "));
    } else {
        held.1 += 1;
    }
}

/// ONNX Runtime's messages since the last call, one line each; a last line
/// counts those beyond [`LOG_LINES`].
pub fn take_log() -> Vec<String> {
    let (mut lines, dropped) = std::mem::take(&mut *LOG.lock().unwrap_or_else(|p| p.into_inner()));
    if dropped > 0 {
        lines.push(format!("{dropped} more messages not shown"));
    }
    lines
}

/// A session that runs the model with the chosen outputs.
pub struct Engine {
    session: Session,
    input: String,
    outputs: Vec<String>,
    /// What actually runs it: `cpu` or `cuda:N`.
    pub device: Placement,
    /// The model takes batches of exactly one size.
    fixed_batch: bool,
    /// Why `--device auto` took the CPU provider (the second choice, OpenVINO, failing).
    pub auto_cpu_because: Option<String>,
    #[cfg(feature = "cuda")]
    binding: Option<ort::session::IoBinding>,
}

impl Engine {
    /// `model` is the serialized model whose graph outputs are `outputs`;
    /// `weights_dir` the folder its external data files are in, if it has
    /// any (a model read from memory has no folder of its own).
    /// `Auto` takes CUDA when a session starts there and its input binds,
    /// else the CPU; an explicit `Cuda` that cannot do both is an error.
    pub fn new(
        model: &[u8],
        weights_dir: Option<&Path>,
        input: &str,
        outputs: Vec<String>,
        device: Device,
        threads: usize,
    ) -> Result<Self, Error> {
        let env = init()?;
        let cuda_error = |n: i32| {
            move |e: Error| match e {
                Error::NoCudaBuild => e,
                other => Error::Cuda { device: n, source: Box::new(other) },
            }
        };
        let on = |placement: Placement| Self::on(env, (model, weights_dir), input, outputs.clone(), threads, placement);
        let openvino = || {
            on(Placement::OpenVino).map_err(|e| match e {
                Error::NoOpenVino(_) | Error::OpenVino(_) | Error::OpenVinoNotIntel(_) => e,
                other => Error::OpenVino(other.to_string()),
            })
        };
        match device {
            Device::Cpu => on(Placement::Cpu),
            Device::Cuda(n) => on(Placement::Cuda(n)).map_err(cuda_error(n)),
            Device::OpenVino => openvino(),
            Device::Auto => on(Placement::Cuda(0)).or_else(|_| openvino()).or_else(|e| {
                let because = match e {
                    Error::NoOpenVino(_) => "no OpenVINO plugin".to_string(),
                    Error::OpenVinoNotIntel(vendor) => {
                        format!("OpenVINO's plugin offers only Intel devices, this CPU is {vendor}'s")
                    }
                    other => format!("OpenVINO's plugin did not start: {other}"),
                };
                let mut engine = on(Placement::Cpu)?;
                engine.auto_cpu_because = Some(because);
                Ok(engine)
            }),
        }
    }

    fn on(
        env: &ort::environment::Environment,
        model: (&[u8], Option<&Path>),
        input: &str,
        outputs: Vec<String>,
        threads: usize,
        placement: Placement,
    ) -> Result<Self, Error> {
        #[allow(unused_mut)]
        let mut engine = Engine {
            session: session(env, model, threads, placement)?,
            input: input.to_string(),
            outputs,
            device: placement,
            fixed_batch: false,
            auto_cpu_because: None,
            #[cfg(feature = "cuda")]
            binding: None,
        };
        #[cfg(feature = "cuda")]
        if let Placement::Cuda(_) = placement {
            engine.bind(Binding::Input)?;
        }
        Ok(engine)
    }

    /// Sets how CUDA runs move their data (`Binding::Input` unless set); the
    /// benchmarks compare the choices. No effect on the CPU.
    #[cfg(feature = "cuda")]
    pub fn bind(&mut self, how: Binding) -> Result<(), Error> {
        use ort::memory::{AllocationDevice, AllocatorType, MemoryInfo, MemoryType};
        self.binding = None;
        if how == Binding::Off || !matches!(self.device, Placement::Cuda(_)) {
            return Ok(());
        }
        let mut binding = self.session.create_binding().map_err(ort_err)?;
        let output =
            MemoryInfo::new(AllocationDevice::CPU, 0, AllocatorType::Device, MemoryType::Default).map_err(ort_err)?;
        for name in &self.outputs {
            binding.bind_output_to_device(name.as_str(), &output).map_err(ort_err)?;
        }
        self.binding = Some(binding);
        Ok(())
    }

    /// On a GPU or OpenVINO, every batch runs at full size, the rows past
    /// the real images being left-over padding: a new batch shape would
    /// start cuDNN's convolution search, or OpenVINO's compilation, over
    /// again (a partial last batch, or a batch with an unreadable image
    /// squeezed out).
    pub fn pads(&self) -> bool {
        self.fixed_batch || self.device != Placement::Cpu
    }

    /// For a model whose batch size is fixed: every batch runs at full
    /// size, on any device (a short last batch, or one with an unreadable
    /// image squeezed out, is padded).
    pub fn set_fixed_batch(&mut self) {
        self.fixed_batch = true;
    }

    /// `count` buffers of `rows` images each, in the memory this engine
    /// copies from fastest.
    pub fn buffers(&self, count: usize, rows: usize, size: usize) -> Result<Vec<HostBuffer>, Error> {
        #[cfg(feature = "cuda")]
        if self.binding.is_some() {
            use ort::memory::{AllocationDevice, Allocator, AllocatorType, MemoryInfo, MemoryType};
            let info = MemoryInfo::new(AllocationDevice::CUDA_PINNED, 0, AllocatorType::Device, MemoryType::CPUInput)
                .map_err(ort_err)?;
            let pinned = Allocator::new(&self.session, info).map_err(ort_err)?;
            return (0..count)
                .map(|_| {
                    let t = ort::value::Tensor::<f32>::new(&pinned, [rows, 3, size, size]).map_err(ort_err)?;
                    Ok(HostBuffer { memory: Memory::Pinned(Pinned(t)), rows, size })
                })
                .collect();
        }
        Ok((0..count)
            .map(|_| HostBuffer { memory: Memory::Heap(vec![0.0; rows * 3 * size * size]), rows, size })
            .collect())
    }

    /// Runs the first `n` images of `buf` (all of it where the engine pads)
    /// and hands each output, in the order given at creation, to `f` with
    /// its shape, `n` rows of it.
    pub fn run_buffer(
        &mut self,
        buf: &HostBuffer,
        n: usize,
        f: impl FnMut(usize, &[i64], &[f32]),
    ) -> Result<(), Error> {
        #[cfg(feature = "cuda")]
        if let (Some(binding), Memory::Pinned(tensor)) = (&mut self.binding, &buf.memory) {
            // An owned tensor is bound as it is (ort would copy a borrowed
            // one through a CPU identity session first); binding copies it to
            // the GPU, and the run is synchronous, so the caller may refill
            // the buffer once this returns.
            binding.bind_input(self.input.as_str(), &tensor.0).map_err(ort_err)?;
            let result = self
                .session
                .run_binding(binding)
                .map_err(ort_err)
                .and_then(|outputs| hand_over(&self.outputs, &outputs, buf.rows, n, f));
            binding.clear_inputs();
            return result;
        }
        let rows = if self.pads() { buf.rows } else { n };
        self.run(&buf.as_slice()[..rows * 3 * buf.size * buf.size], n, buf.size, f)
    }

    /// Runs the images in `data` (each 3 x size x size) with `Session::run`,
    /// keeping the first `n` rows of each output.
    pub fn run(
        &mut self,
        data: &[f32],
        n: usize,
        size: usize,
        f: impl FnMut(usize, &[i64], &[f32]),
    ) -> Result<(), Error> {
        let rows = data.len() / (3 * size * size);
        assert!(n <= rows && rows * 3 * size * size == data.len(), "run: {n} images in a buffer of {rows}");
        let shape = vec![rows as i64, 3, size as i64, size as i64];
        let tensor = ort::value::TensorRef::from_array_view((shape, data)).map_err(ort_err)?;
        let outputs = self.session.run(ort::inputs![self.input.as_str() => tensor]).map_err(ort_err)?;
        hand_over(&self.outputs, &outputs, rows, n, f)
    }
}

/// Each output's first `n` of `rows` rows, in the engine's output order.
fn hand_over(
    names: &[String],
    outputs: &ort::session::SessionOutputs,
    rows: usize,
    n: usize,
    mut f: impl FnMut(usize, &[i64], &[f32]),
) -> Result<(), Error> {
    for (i, name) in names.iter().enumerate() {
        let (shape, values) = outputs[name.as_str()].try_extract_tensor::<f32>().map_err(ort_err)?;
        let mut shape = shape.to_vec();
        shape[0] = n as i64;
        f(i, &shape, &values[..n * (values.len() / rows)]);
    }
    Ok(())
}

fn session(
    env: &ort::environment::Environment,
    (model, weights_dir): (&[u8], Option<&Path>),
    threads: usize,
    placement: Placement,
) -> Result<Session, Error> {
    // On a GPU the CPU threads belong to decoding; ONNX Runtime needs few.
    let intra = if let Placement::Cuda(_) = placement { 1 } else { threads };
    let mut builder = Session::builder(env)
        .map_err(ort_err)?
        .with_intra_threads(intra)
        .map_err(ort_err)?
        // ONNX Runtime's threads spin between operators by default, taking
        // the cores that decode the next batch meanwhile.
        .with_intra_op_spinning(false)
        .map_err(ort_err)?;
    if let Some(dir) = weights_dir {
        // External data is looked up beside the model file, whatever the
        // working directory (ONNX Runtime's default for a model in memory).
        let dir = dir.to_str().ok_or_else(|| Error::NotUtf8(dir.to_owned()))?;
        builder =
            builder.with_config_entry("session.model_external_initializers_file_folder_path", dir).map_err(ort_err)?;
    }
    match placement {
        Placement::Cpu => {}
        Placement::Cuda(n) => builder = with_cuda(builder, n)?,
        Placement::OpenVino => builder = with_openvino(env, builder, threads)?,
    }
    builder.commit_from_memory(model).map_err(ort_err)
}

/// Whether OpenVINO's plugin is installed and offers this machine's CPU:
/// checked before a run that names it starts any work.
pub fn check_openvino() -> Result<(), Error> {
    locate_openvino()?;
    openvino_cpus(init()?).map(drop)
}

/// The CPU devices OpenVINO's plugin offers (it registered once).
fn openvino_cpus(env: &ort::environment::Environment) -> Result<Vec<ort::device::Device<'_>>, Error> {
    register_openvino(env)?;
    let cpus: Vec<_> = env
        .devices()
        .filter(|d| {
            d.ep().is_ok_and(|ep| ep == "OpenVINOExecutionProvider")
                && d.hardware_device().ty() == ort::memory::DeviceType::CPU
        })
        .collect();
    if cpus.is_empty() {
        // ONNX Runtime's own CPU provider lists the CPU with its vendor.
        let vendor = env
            .devices()
            .map(|d| d.hardware_device())
            .find(|h| h.ty() == ort::memory::DeviceType::CPU)
            .and_then(|h| h.vendor().ok().map(str::to_string));
        return Err(match vendor {
            Some(v) if !v.eq_ignore_ascii_case("intel") => Error::OpenVinoNotIntel(v),
            _ => Error::OpenVino("the plugin offers no CPU device".into()),
        });
    }
    Ok(cpus)
}

/// OpenVINO's plugin on the CPU it finds. Through the device API (a plugin
/// EP is not one of ort's built-in providers); a device that cannot take
/// the session fails the commit rather than falling back.
fn with_openvino(
    env: &ort::environment::Environment,
    builder: ort::session::builder::SessionBuilder,
    threads: usize,
) -> Result<ort::session::builder::SessionBuilder, Error> {
    let cpus = openvino_cpus(env)?;
    // OpenVINO compiles and optimizes the graph itself. ONNX Runtime's own
    // rewrites before it (even level 1) cost it up to half its fp32 rate
    // here (49 to 74 images/s end to end against 105 to 148 with them off)
    // and some of its int8 rate, at the same features (cosine >= 0.99993 to
    // the CPU provider).
    let builder =
        builder.with_optimization_level(ort::session::builder::GraphOptimizationLevel::Disable).map_err(ort_err)?;
    // The plugin's own thread pool, sized as ONNX Runtime's would be (it
    // takes the count through OpenVINO's own configuration, not an option).
    let config = format!(r#"{{"CPU":{{"INFERENCE_NUM_THREADS":"{threads}"}}}}"#);
    let options = [("OpenVINOExecutionProvider.load_config".to_string(), config)];
    builder.with_devices(cpus, Some(&options)).map_err(|e| Error::OpenVino(one_line(&ort::Error::<()>::from(e))))
}

#[cfg(feature = "cuda")]
fn with_cuda(
    builder: ort::session::builder::SessionBuilder,
    device: i32,
) -> Result<ort::session::builder::SessionBuilder, Error> {
    use ort::ep::cuda::ConvAlgorithmSearch;
    preload_cuda_libraries();
    // ort skips a provider that fails to register and runs on the CPU without
    // a word; error_on_failure turns that into an error we can report.
    let ep = ort::ep::CUDA::default()
        .with_device_id(device)
        // One search per batch shape, kept for the run: with fixed-size
        // batches (see Engine::pads) it is paid once.
        .with_conv_algorithm_search(ConvAlgorithmSearch::Exhaustive)
        .with_conv_max_workspace(true)
        // TF32 would trade the CPU parity (cosine >= 0.999) for speed that
        // decoding, not the GPU, limits.
        .with_tf32(false)
        .build()
        .error_on_failure();
    builder.with_execution_providers([ep]).map_err(ort_err)
}

#[cfg(not(feature = "cuda"))]
fn with_cuda(_: ort::session::builder::SessionBuilder, _: i32) -> Result<ort::session::builder::SessionBuilder, Error> {
    Err(Error::NoCudaBuild)
}

/// onnxruntime-gpu's CUDA provider links against the CUDA and cuDNN
/// libraries that pip puts beside it (site-packages/nvidia/*/lib), which the
/// dynamic loader does not search. Python's onnxruntime preloads them; so do
/// we, from the site-packages that holds the ONNX Runtime we loaded. Where
/// they are not there, the system's library path has to provide them, and
/// ONNX Runtime's error names the one it missed.
#[cfg(feature = "cuda")]
fn preload_cuda_libraries() {
    static DONE: OnceLock<()> = OnceLock::new();
    DONE.get_or_init(|| {
        let Ok(ort_lib) = locate() else { return };
        // site-packages/onnxruntime/capi/libonnxruntime.so.X
        let Some(site) = ort_lib.ancestors().nth(3) else { return };
        let Ok(packages) = std::fs::read_dir(site.join("nvidia")) else { return };
        let mut dirs: Vec<PathBuf> = packages.flatten().map(|p| p.path().join("lib")).filter(|d| d.is_dir()).collect();
        dirs.sort();
        // Dependencies first: the runtime and cuBLAS before cuDNN. A second
        // round picks up any library whose dependencies were not loaded yet.
        let order = [
            "libcudart.so",
            "libcublasLt.so",
            "libcublas.so",
            "libnvrtc.so",
            "libcurand.so",
            "libcufft.so",
            "libcudnn",
        ];
        for prefix in order.iter().chain(order.iter()) {
            for dir in &dirs {
                let Ok(files) = std::fs::read_dir(dir) else { continue };
                let mut libs: Vec<PathBuf> = files
                    .flatten()
                    .map(|f| f.path())
                    .filter(|p| {
                        p.file_name()
                            .and_then(|n| n.to_str())
                            .is_some_and(|n| n.starts_with(prefix) && n.contains(".so."))
                    })
                    .collect();
                libs.sort();
                for lib in libs {
                    // Kept loaded for the life of the process; a library that
                    // fails here is reported by ONNX Runtime when it needs it.
                    if let Ok(l) = unsafe { libloading::Library::new(&lib) } {
                        std::mem::forget(l);
                    }
                }
            }
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn runtime_messages_are_held_for_the_caller_bounded_and_counted() {
        use ort::logging::LogLevel;
        log(LogLevel::Info, "", "", "x.cc", "routine");
        log(LogLevel::Warning, "", "", "cudnn_fe_call.cc", "No execution plans support the graph");
        log(LogLevel::Warning, "", "", "x.cc", "a node\n  falls back to the CPU");
        assert_eq!(take_log(), ["a node falls back to the CPU"], "warnings alone, one line each");
        assert!(take_log().is_empty(), "taken once");
        for i in 0..LOG_LINES + 7 {
            log(LogLevel::Error, "", "", "x.cc", &format!("m{i}"));
        }
        let lines = take_log();
        assert_eq!(lines.len(), LOG_LINES + 1);
        assert_eq!(lines[LOG_LINES], "7 more messages not shown");
    }
}
