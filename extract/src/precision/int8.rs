//! `--precision int8`: the run's model quantized once (backbone's QDQ
//! quantizer), its activation ranges measured on images of the run's own
//! folder through the run's own preprocessing, and kept in the cache keyed
//! by everything that shapes it: the model, the tensors it gives, the
//! calibration images' values and the quantizer's version.

use std::collections::HashMap;
use std::path::PathBuf;

use backbone::quantize::{self, WeightBits};
use featurefile::Calibration;
use sha2::{Digest, Sha256};

use crate::dataset::{Dataset, Entry};
use crate::{preprocess, runtime, Error, Event, Result};

/// Calibration batches: every activation of the network is an output of
/// the calibration run, so a batch holds hundreds of megabytes.
const BATCH: usize = 4;

/// The order calibration images are taken in: `n` spread evenly over the
/// sorted list (every class gets its share), then the rest in order, to
/// stand in for any that cannot be read. The same for every task of a
/// sharded run, which all list the whole tree.
pub(crate) fn candidates(entries: &[Entry], n: usize) -> Vec<Entry> {
    let len = entries.len();
    let n = n.min(len);
    let mut picked = vec![false; len];
    let mut order = Vec::with_capacity(len);
    for k in 0..n {
        let i = k * len / n;
        picked[i] = true;
        order.push(entries[i].clone());
    }
    order.extend(entries.iter().enumerate().filter(|(i, _)| !picked[*i]).map(|(_, e)| e.clone()));
    order
}

/// The model as it will be quantized, decided before any image is read (a
/// model that cannot be quantized is refused up front): cut to the run's
/// tensors, weights inline, batch normalizations folded.
pub(crate) struct Quantizable {
    proto: backbone::onnx::ModelProto,
    quantization: quantize::Quantization,
    /// Images the ranges are measured on (`--calibrate`, else the default
    /// or all the tree has, when that is fewer).
    pub(crate) images: usize,
    /// Whether `images` was asked for: then fewer readable ones are an
    /// error, where the default takes what there is.
    given: bool,
    /// The weights' range (`--weight-bits`, else this CPU's).
    pub(crate) bits: WeightBits,
    /// The order to try the tree's images in (see [`candidates`]), and the
    /// tree's folder (for the error that says too few are readable).
    candidates: Vec<Entry>,
    root: PathBuf,
}

/// `--calibrate`'s default: ONNX Runtime's examples calibrate on tens to
/// hundreds of images; 64 keeps a run's start short.
pub const DEFAULT_CALIBRATE: usize = 64;

/// `tree`: the images to calibrate on (the whole tree, not a shard's share);
/// `images`: `--calibrate` as given (`None`: the default, or the whole tree
/// where it has fewer).
pub(crate) fn prepare(
    opened: &backbone::Opened,
    tensors: &[String],
    tree: &Dataset,
    images: Option<usize>,
    bits: WeightBits,
) -> Result<Quantizable> {
    let tensors: Vec<&str> = tensors.iter().map(String::as_str).collect();
    let proto = opened.folded(&tensors)?;
    let quantization = quantize::plan(&proto, &opened.model.input)?;
    let (given, images) = match images {
        Some(n) => (true, n),
        None => (false, DEFAULT_CALIBRATE.min(tree.entries.len())),
    };
    if tree.entries.len() < images || images == 0 {
        return Err(Error::TooFewCalibrationImages {
            want: images.max(1),
            readable: tree.entries.len(),
            root: tree.root.clone(),
        });
    }
    Ok(Quantizable {
        proto,
        quantization,
        images,
        given,
        bits,
        candidates: candidates(&tree.entries, images),
        root: tree.root.clone(),
    })
}

/// The quantized model's bytes and what its calibration was.
pub(crate) fn quantized(
    opened: &backbone::Opened,
    run_tensors: &[String],
    cfg: &preprocess::Config,
    prepared: &Quantizable,
    threads: usize,
    report: &mut dyn FnMut(Event),
) -> Result<(Vec<u8>, Calibration)> {
    let input = opened.model.input.clone();
    let tensors: Vec<&str> = run_tensors.iter().map(String::as_str).collect();
    let (proto, quantization) = (&prepared.proto, &prepared.quantization);

    // The calibration images, as the run will see them: the first `want`
    // of the candidates that read. Hashed as they come, one at a time, so a
    // large --calibrate is never held in memory.
    let per_image = cfg.values_per_image();
    let want = prepared.images;
    let mut slot = vec![0f32; per_image];
    let mut chosen: Vec<&Entry> = Vec::with_capacity(want);
    let mut h = Sha256::new();
    for e in &prepared.candidates {
        if chosen.len() == want {
            break;
        }
        if preprocess::preprocess_file(&e.at, cfg, &mut slot).is_ok() {
            slot.iter().for_each(|v| h.update(v.to_le_bytes()));
            chosen.push(e);
        }
    }
    if chosen.len() < want && (prepared.given || chosen.is_empty()) {
        return Err(Error::TooFewCalibrationImages { want, readable: chosen.len(), root: prepared.root.clone() });
    }
    let want = chosen.len();
    if !prepared.given && want < DEFAULT_CALIBRATE {
        let root = prepared.root.display();
        report(Event::Note(&format!("int8: calibrating on the {want} readable images of {root}, fewer than --calibrate's default {DEFAULT_CALIBRATE}")));
    }
    let calibration = Calibration {
        images: want,
        sha256: hex::encode(h.finalize()),
        method: "minmax".into(),
        quantizer: quantize::VERSION,
        weight_bits: prepared.bits.bits(),
    };

    let key = {
        let mut h = Sha256::new();
        h.update(format!("{}\n{}\n{}\n{}\n", opened.sha256, tensors.join("\n"), calibration.sha256, quantize::VERSION));
        // Keys of 8-bit models stay what they were before 7-bit ones existed.
        if prepared.bits != WeightBits::Eight {
            h.update(format!("weight bits {}\n", prepared.bits.bits()));
        }
        hex::encode(h.finalize())
    };
    let cached = cache_path(&key);
    if let Some(path) = &cached {
        if let Ok(bytes) = std::fs::read(path) {
            report(Event::Note(&format!("int8: quantized model from the cache ({})", path.display())));
            return Ok((bytes, calibration));
        }
    }

    // Ranges: one CPU run over the images with every activation an output.
    let mut outputs = tensors.iter().map(|t| t.to_string()).collect::<Vec<_>>();
    outputs.extend(quantization.calibrate.iter().filter(|t| !run_tensors.contains(t)).cloned());
    let cal = quantize::calibration_model(proto, &outputs.iter().map(String::as_str).collect::<Vec<_>>());
    let bytes = backbone::model::encode(&cal);
    let mut engine = runtime::Engine::new(&bytes, None, &input, outputs.clone(), runtime::Device::Cpu, threads)?;
    let mut ranges: HashMap<String, (f32, f32)> = HashMap::new();
    let widen = |r: &mut (f32, f32), v: &[f32]| {
        for &x in v {
            r.0 = r.0.min(x);
            r.1 = r.1.max(x);
        }
    };
    let size = cfg.crop as usize;
    let mut batch = vec![0f32; BATCH * per_image];
    for group in chosen.chunks(BATCH) {
        let data = &mut batch[..group.len() * per_image];
        for (e, slot) in group.iter().zip(data.chunks_mut(per_image)) {
            // Read once already: a file that fails now changed under the run.
            preprocess::preprocess_file(&e.at, cfg, slot)
                .map_err(|why| Error::CalibrationImageChanged { image: e.at.to_string(), why })?;
        }
        widen(ranges.entry(input.clone()).or_insert((f32::INFINITY, f32::NEG_INFINITY)), data);
        engine.run(data, group.len(), size, |i, _, values| {
            widen(ranges.entry(outputs[i].clone()).or_insert((f32::INFINITY, f32::NEG_INFINITY)), values)
        })?;
    }
    drop(engine);
    let q = quantize::apply(proto, quantization, &ranges, prepared.bits)?;
    let bytes = backbone::model::encode(&q);
    if let Some(path) = &cached {
        // A cache that cannot be written costs the next run a calibration, nothing more.
        let _ = path.parent().map(std::fs::create_dir_all);
        if atomic::write_bytes(path, &bytes).is_ok() {
            report(Event::Note(&format!(
                "int8: calibrated on {want} images, {}-bit weights; quantized model cached ({})",
                prepared.bits.bits(),
                path.display()
            )));
        }
    }
    Ok((bytes, calibration))
}

fn cache_path(key: &str) -> Option<PathBuf> {
    backbone::cache::Cache::default_location().map(|c| c.quantized(key))
}
