//! The decoding stage: images decoded and preprocessed in parallel on a
//! rayon pool, one batch ahead of inference, through a bounded queue.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;

use rayon::prelude::*;

use crate::plan::Plan;
use crate::{preprocess, runtime};

/// One batch of preprocessed images on its way to inference.
pub(crate) struct DecodedBatch {
    /// Entry indices of the images that decoded, in order.
    pub(crate) ok: Vec<usize>,
    /// `ok.len()` images first (each its views' rows, in order), packed:
    /// the failures' slots are squeezed out.
    pub(crate) data: runtime::HostBuffer,
    pub(crate) failed: Vec<(usize, String)>,
}

/// The decoding stage: fills recycled buffers with the plan's batches,
/// decoding each batch's images in parallel on `pool`, and sends them on in
/// order. Stops at Ctrl-C, or when the consumer hangs up on an error.
pub(crate) fn decode(
    plan: &Plan,
    cfg: preprocess::Config,
    pool: &rayon::ThreadPool,
    cancel: &AtomicBool,
    recycled: mpsc::Receiver<runtime::HostBuffer>,
    tx: mpsc::SyncSender<DecodedBatch>,
) {
    let per_image = cfg.values_per_image() * cfg.rows_per_image();
    let images = plan.images_per_batch();
    for (ci, chunk) in plan.data.entries.chunks(images).enumerate() {
        if cancel.load(Ordering::Relaxed) {
            break;
        }
        let Ok(mut buf) = recycled.recv() else { break };
        let results: Vec<Result<(), String>> = pool.install(|| {
            buf.as_mut_slice()[..chunk.len() * per_image]
                .par_chunks_mut(per_image)
                .zip(chunk.par_iter())
                .map(|(slot, e)| preprocess::preprocess_views(&e.at, &e.rel, &cfg, slot))
                .collect()
        });
        let mut p = DecodedBatch { ok: Vec::new(), data: buf, failed: Vec::new() };
        for (i, r) in results.into_iter().enumerate() {
            let idx = ci * images + i;
            match r {
                Ok(()) => {
                    let dst = p.ok.len();
                    if dst != i {
                        p.data.as_mut_slice().copy_within(i * per_image..(i + 1) * per_image, dst * per_image);
                    }
                    p.ok.push(idx);
                }
                Err(e) => p.failed.push((idx, e)),
            }
        }
        if tx.send(p).is_err() {
            break;
        }
    }
}
