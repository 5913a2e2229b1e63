//! The inference bound: images/s of ONNX Runtime alone on an already
//! preprocessed batch, through the same session set-up `extract` uses.
//!
//!     cargo run --release -p extract --example inference_bound -- MODEL IMAGES BATCH THREADS [DEVICE] [--bind off|input]
//!
//! DEVICE is cpu (the default) or cuda[:N]. On CUDA, `--bind` picks how data
//! moves (see `runtime::Binding`; extract's default is `input`), to measure
//! what each is worth.
//!
//! Prints one line: `inference_bound images=N seconds=S images_per_s=R device=D bind=B`.

use std::time::Instant;

use backbone::Model;
use extract::runtime::{Binding, Device, Engine};

fn fail(msg: impl std::fmt::Display) -> ! {
    eprintln!("inference_bound: {msg}");
    std::process::exit(1);
}

fn main() {
    let mut args: Vec<String> = std::env::args().collect();
    let mut bind = Binding::Input;
    if let Some(i) = args.iter().position(|a| a == "--bind") {
        bind = args
            .get(i + 1)
            .map(|b| b.parse().unwrap_or_else(|e| fail(e)))
            .unwrap_or_else(|| fail("--bind needs a value"));
        args.drain(i..i + 2);
    }
    let (model, images, batch, threads, device) = match args.as_slice() {
        [_, m, i, b, t] => (m, i, b, t, "cpu"),
        [_, m, i, b, t, d] => (m, i, b, t, d.as_str()),
        _ => fail("usage: inference_bound MODEL IMAGES BATCH THREADS [DEVICE] [--bind off|input]"),
    };
    let number = |s: &str| s.parse::<usize>().unwrap_or_else(|e| fail(format!("{s}: {e}")));
    let (images, mut batch, threads) = (number(images), number(batch), number(threads));
    let device: Device = device.parse().unwrap_or_else(|e| fail(e));
    let bytes = std::fs::read(model).unwrap_or_else(|e| fail(format!("{model}: {e}")));
    let m = Model::parse(&bytes).unwrap_or_else(|e| fail(e));
    if let Some(b) = m.fixed_batch() {
        batch = b as usize;
    }
    // The same outputs extract asks for by default: the pooled vector.
    let avgpool = m.resolve(&["avgpool".to_string()]).unwrap_or_else(|e| fail(e))[0].tensor.clone();
    let graph = m.with_outputs(&[avgpool.as_str()]);
    let mut engine = Engine::new(&graph, None, &m.input, vec![avgpool], device, threads).unwrap_or_else(|e| fail(e));
    #[cfg(feature = "cuda")]
    engine.bind(bind).unwrap_or_else(|e| fail(e));
    let mut buf = engine.buffers(1, batch, 224).unwrap_or_else(|e| fail(e)).pop().expect("one buffer");
    // A fixed pseudo-random input: the cost of a ResNet does not depend on the pixels.
    for (i, v) in buf.as_mut_slice().iter_mut().enumerate() {
        *v = ((i * 7919) % 255) as f32 / 128.0 - 1.0;
    }
    engine.run_buffer(&buf, batch, |_, _, _| {}).unwrap_or_else(|e| fail(e));
    let start = Instant::now();
    let mut done = 0;
    while done < images {
        let n = batch.min(images - done);
        engine.run_buffer(&buf, n, |_, _, _| {}).unwrap_or_else(|e| fail(e));
        done += n;
    }
    let s = start.elapsed().as_secs_f64();
    println!(
        "inference_bound images={done} seconds={s:.3} images_per_s={:.2} device={} bind={bind:?}",
        done as f64 / s,
        engine.device
    );
}
