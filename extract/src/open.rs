//! The model a run uses: what `--model` names, opened by `backbone`, with
//! the shapes static inference could not give measured by one ONNX Runtime
//! run on a zero batch, so no model is refused because an operator is
//! missing from a table.

use backbone::cache::Cache;
use backbone::download::DownloadEvent;
use backbone::{ModelSpec, Opened};

use crate::runtime::{Device, Engine};
use crate::Result;

/// Opens `spec` and completes its shapes. `size` is the side of the zero
/// images the measuring run takes when the model does not fix one.
pub fn open(spec: &ModelSpec, size: u32, report: &mut dyn FnMut(DownloadEvent)) -> Result<Opened> {
    let mut opened = backbone::source::open(spec, Cache::default_location().as_ref(), report)?;
    // Discovery may need more shapes once it has some (a stage's grouping
    // reveals the pool): a few rounds at most.
    for _ in 0..3 {
        let needed: Vec<String> = opened.model.shapes_needed().to_vec();
        if needed.is_empty() {
            break;
        }
        let measured = measure(&opened, &needed, size)?;
        opened.model.supply_shapes(measured);
    }
    Ok(opened)
}

fn measure(opened: &Opened, tensors: &[String], size: u32) -> Result<Vec<(String, Vec<i64>)>> {
    let m = &opened.model;
    let names: Vec<&str> = tensors.iter().map(String::as_str).collect();
    let graph = m.with_outputs(&names);
    let mut engine = Engine::new(&graph, opened.weights_dir.as_deref(), &m.input, tensors.to_vec(), Device::Cpu, 1)?;
    let side = m.fixed_size().map_or(size as usize, |(h, _)| h as usize);
    let rows = m.fixed_batch().unwrap_or(1) as usize;
    let zeros = vec![0f32; rows * 3 * side * side];
    let mut shapes = Vec::new();
    engine.run(&zeros, rows, side, |i, shape, _| shapes.push((tensors[i].clone(), shape.to_vec())))?;
    Ok(shapes)
}
