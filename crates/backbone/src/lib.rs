//! The network, with one owner: everything the project knows about a
//! ResNet50 (or any CNN) file.
//!
//! - [`model`]: an ONNX model parsed with its external data, its identity
//!   (the sha256 the feature file records), cut down to chosen outputs;
//! - [`shapes`]: static shape inference where it is certain; a caller with
//!   a runtime supplies the rest ([`Model::shapes_needed`]);
//! - [`layers`]: the named layers, found from the graph's structure;
//! - [`builder`]: the one ONNX graph builder (checkpoint conversion in
//!   [`resnet`], the classifier head in `classify export`);
//! - [`checkpoint`]: PyTorch and MindSpore checkpoints read in Rust;
//! - [`releases`]: the named pretrained weights `--model` takes, and how a
//!   download is known to be the release;
//! - [`download`]: a download that appears whole and verified, or not at all;
//! - [`cache`]: where downloads, conversions and int8 models are kept;
//! - [`source`]: what `--model` names, turned into a model;
//! - [`fold`], [`quantize`], [`fp16`]: the model in other numbers (int8
//!   QDQ, float16), for `extract --precision`.
//!
//! Every file here is untrusted input: whatever it holds, reading it ends
//! in a value or an error, never a panic.

pub mod builder;
pub mod cache;
pub mod checkpoint;
pub mod download;
pub mod fold;
pub mod fp16;
pub mod layers;
pub mod model;
pub mod quantize;
pub mod releases;
pub mod resnet;
pub mod shapes;
pub mod source;

/// The ONNX protobuf types (generated from the vendored onnx.proto).
pub mod onnx {
    #![allow(clippy::all, missing_docs)]
    include!(concat!(env!("OUT_DIR"), "/onnx.rs"));
}

pub use layers::{Layer, NAMED};
pub use model::{Error, Model};
pub use shapes::Shape;
pub use source::{ModelSpec, Opened};
