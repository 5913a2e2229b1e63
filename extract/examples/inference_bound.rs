//! The inference bound: images/s of ONNX Runtime alone on an already
//! preprocessed batch, through the same session set-up `extract` uses.
//!
//!     cargo run --release -p extract --example inference_bound -- MODEL IMAGES BATCH THREADS [DEVICE] [--plain]
//!
//! DEVICE is cpu (the default) or cuda[:N]. `--plain` turns off what a GPU
//! run does by default (I/O binding, pinned memory, fixed-size batches), to
//! measure what those are worth.
//!
//! Prints one line: `inference_bound images=N seconds=S images_per_s=R device=D`.

use std::time::Instant;

use extract::layers::Model;
use extract::runtime::{Device, Engine};

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let plain = args.iter().any(|a| a == "--plain");
    let args: Vec<&String> = args.iter().filter(|a| *a != "--plain").collect();
    let (model, images, batch, threads, device) = match args.as_slice() {
        [_, m, i, b, t] => (m, i, b, t, "cpu"),
        [_, m, i, b, t, d] => (m, i, b, t, d.as_str()),
        _ => {
            eprintln!("usage: inference_bound MODEL IMAGES BATCH THREADS [DEVICE] [--plain]");
            std::process::exit(2);
        }
    };
    let (images, mut batch, threads): (usize, usize, usize) =
        (images.parse().unwrap(), batch.parse().unwrap(), threads.parse().unwrap());
    let device: Device = device.parse().unwrap_or_else(|e| panic!("{e}"));
    let bytes = std::fs::read(model).expect("model file");
    let m = Model::parse(&bytes).expect("ONNX model");
    if let Some(b) = m.fixed_batch() {
        batch = b as usize;
    }
    // The same outputs extract asks for by default: the pooled vector.
    let avgpool = m.resolve(&["avgpool".to_string()]).expect("avgpool")[0].tensor.clone();
    let graph = m.with_outputs(&[avgpool.as_str()]);
    let mut engine = Engine::new(&graph, &m.input, vec![avgpool], device, threads).unwrap_or_else(|e| panic!("{e}"));
    let per = 3 * 224 * 224;
    if plain {
        #[cfg(feature = "cuda")]
        engine.bind(false).expect("plain session");
    }
    let pads = engine.pads() && !plain;
    let mut heap: Vec<f32>;
    let mut pinned: Vec<extract::runtime::HostBuffer>;
    let data: &mut [f32] = if plain {
        heap = vec![0.0f32; batch * per];
        &mut heap
    } else {
        pinned = engine.buffers(1, batch * per).expect("buffer");
        pinned[0].as_mut_slice()
    };
    // A fixed pseudo-random input: the cost of a ResNet does not depend on the pixels.
    for (i, v) in data.iter_mut().enumerate() {
        *v = ((i * 7919) % 255) as f32 / 128.0 - 1.0;
    }
    engine.run(data, batch, 224, |_, _, _| {}).expect("warm-up run");
    let start = Instant::now();
    let mut done = 0;
    while done < images {
        let n = batch.min(images - done);
        let rows = if pads { batch } else { n };
        engine.run(&data[..rows * per], n, 224, |_, _, _| {}).expect("run");
        done += n;
    }
    let s = start.elapsed().as_secs_f64();
    println!(
        "inference_bound images={done} seconds={s:.3} images_per_s={:.2} device={}{}",
        done as f64 / s,
        engine.device,
        if plain { " plain" } else { "" }
    );
}
