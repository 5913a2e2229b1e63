//! The numbers the network computes in (`--precision`): the model as it
//! is, converted to float16, or quantized to int8 (the `int8` module), each
//! set up from the pieces it needs, before any image of the run is read.

mod int8;

use std::borrow::Cow;
use std::path::Path;

use backbone::quantize::WeightBits;
use backbone::Opened;
use featurefile::{Calibration, Precision};

use crate::dataset::Dataset;
use crate::{preprocess, Event, Result};

/// The numbers the network computes in, and what that takes.
pub(crate) enum Numbers {
    /// The model as it is.
    Fp32,
    /// The model converted to float16 (its bytes): converted up front,
    /// in well under a second, so a model that cannot be is refused before
    /// any image is read.
    Fp16(Vec<u8>),
    /// The model to quantize, once the calibration images are read.
    Int8(Box<int8::Quantizable>),
}

/// What int8 calibrates on.
pub(crate) struct Calibrate<'a> {
    /// The images to take them from: the whole tree, not a shard's share.
    pub(crate) tree: &'a Dataset,
    /// `--calibrate` as given (`None`: the default, or all the tree has
    /// where it has fewer).
    pub(crate) images: Option<usize>,
    pub(crate) bits: WeightBits,
}

/// The model a session runs, in the run's numbers.
pub(crate) struct RunModel<'a> {
    pub(crate) bytes: Cow<'a, [u8]>,
    /// Where its external data is: fp32's only (int8's and fp16's models
    /// are whole, their weights inline).
    pub(crate) weights_dir: Option<&'a Path>,
    /// int8's: what its ranges were measured on.
    pub(crate) calibration: Option<Calibration>,
}

impl Numbers {
    /// The model cut to `tensors`, its batch normalizations folded, in
    /// float16; says how much of it is.
    pub(crate) fn fp16(opened: &Opened, tensors: &[String], report: &mut dyn FnMut(Event)) -> Result<Self> {
        let proto = opened.folded(&tensors.iter().map(String::as_str).collect::<Vec<_>>())?;
        let operators = proto.graph.as_ref().map_or(0, |g| g.node.len());
        let (half, in_half) = backbone::fp16::convert(&proto)?;
        let rest = match operators.saturating_sub(in_half) {
            0 => String::new(),
            n => format!("; {n} keep float32 (operators without a float16 form, arithmetic on shapes and constants)"),
        };
        report(Event::Note(&format!("fp16: {in_half} of the model's {operators} operators compute in float16{rest}")));
        Ok(Numbers::Fp16(backbone::model::encode(&half)))
    }

    /// The model to quantize, checked now: a model that cannot be is
    /// refused before any image is read.
    pub(crate) fn int8(opened: &Opened, tensors: &[String], calibrate: Calibrate) -> Result<Self> {
        let prepared = int8::prepare(opened, tensors, calibrate.tree, calibrate.images, calibrate.bits)?;
        Ok(Numbers::Int8(Box::new(prepared)))
    }

    pub(crate) fn precision(&self) -> Precision {
        match self {
            Numbers::Fp32 => Precision::Fp32,
            Numbers::Fp16(_) => Precision::Fp16,
            Numbers::Int8(_) => Precision::Int8,
        }
    }

    /// int8's calibration images and weight bits, as an existing output
    /// must record them to be this run's.
    pub(crate) fn calibrate(&self) -> Option<(usize, u8)> {
        match self {
            Numbers::Int8(p) => Some((p.images, p.bits.bits())),
            _ => None,
        }
    }

    /// The model cut to `tensors` in these numbers; int8's is quantized now
    /// (or read from the cache), calibrated through the run's `preprocess`.
    pub(crate) fn model<'a>(
        &'a self,
        opened: &'a Opened,
        tensors: &[String],
        preprocess: &preprocess::Config,
        threads: usize,
        report: &mut dyn FnMut(Event),
    ) -> Result<RunModel<'a>> {
        Ok(match self {
            Numbers::Int8(prepared) => {
                let (bytes, calibration) = int8::quantized(opened, tensors, preprocess, prepared, threads, report)?;
                RunModel { bytes: Cow::Owned(bytes), weights_dir: None, calibration: Some(calibration) }
            }
            Numbers::Fp16(bytes) => RunModel { bytes: Cow::Borrowed(bytes), weights_dir: None, calibration: None },
            Numbers::Fp32 => {
                let cut = opened.model.with_outputs(&tensors.iter().map(String::as_str).collect::<Vec<_>>());
                RunModel { bytes: Cow::Owned(cut), weights_dir: opened.weights_dir.as_deref(), calibration: None }
            }
        })
    }
}
