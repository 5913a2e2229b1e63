//! The inference bound: images/s of ONNX Runtime alone on an already
//! preprocessed batch, through the same session set-up `extract` uses.
//!
//!     cargo run --release -p extract --example inference_bound -- MODEL IMAGES BATCH THREADS
//!
//! Prints one line: `inference_bound images=N seconds=S images_per_s=R`.

use std::time::Instant;

use extract::layers::Model;
use extract::runtime::{Device, Engine};

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let [_, model, images, batch, threads] = args.as_slice() else {
        eprintln!("usage: inference_bound MODEL IMAGES BATCH THREADS");
        std::process::exit(2);
    };
    let (images, mut batch, threads): (usize, usize, usize) =
        (images.parse().unwrap(), batch.parse().unwrap(), threads.parse().unwrap());
    let bytes = std::fs::read(model).expect("model file");
    let m = Model::parse(&bytes).expect("ONNX model");
    if let Some(b) = m.fixed_batch() {
        batch = b as usize;
    }
    // The same outputs extract asks for by default: the pooled vector.
    let avgpool = m.resolve(&["avgpool".to_string()]).expect("avgpool")[0].tensor.clone();
    let graph = m.with_outputs(&[avgpool.as_str()]);
    let mut engine = Engine::new(&graph, &m.input, vec![avgpool], Device::Cpu, threads).expect("session");
    // A fixed pseudo-random input: the cost of a ResNet does not depend on the pixels.
    let data: Vec<f32> = (0..batch * 3 * 224 * 224).map(|i| ((i * 7919) % 255) as f32 / 128.0 - 1.0).collect();
    engine.run(&data, batch, 224, |_, _, _| {}).expect("warm-up run");
    let start = Instant::now();
    let mut done = 0;
    while done < images {
        let n = batch.min(images - done);
        engine.run(&data[..n * 3 * 224 * 224], n, 224, |_, _, _| {}).expect("run");
        done += n;
    }
    let s = start.elapsed().as_secs_f64();
    println!("inference_bound images={done} seconds={s:.3} images_per_s={:.2}", done as f64 / s);
}
