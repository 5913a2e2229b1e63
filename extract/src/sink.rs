//! The inference and writing stage: each batch run, its outputs pooled,
//! its rows streamed to the feature file in row groups, so memory does not
//! grow with the number of images.

use std::path::PathBuf;
use std::sync::mpsc;

use featurefile::{Calibration, FeatureWriter, Header, Inference, LayerInfo, ModelInfo, Pool, Rows, Skipped};

use crate::options::Options;
use crate::pipeline::DecodedBatch;
use crate::plan::Plan;
use crate::{pool, runtime, Error, Event, Result};

/// The inference and writing stage: runs each batch, pools its outputs and
/// streams the rows to the feature file, which it creates on the first
/// batch (the columns' sizes come from the first outputs).
pub(crate) struct Sink<'p> {
    plan: &'p Plan,
    pool: Pool,
    /// What runs the network, and an int8 model's calibration (recorded in the footer).
    device: runtime::Placement,
    calibration: Option<Calibration>,
    out: PathBuf,
    pub(crate) writer: Option<(FeatureWriter, Vec<(String, LayerInfo)>)>,
    /// One pooled buffer per requested layer, reused across batches.
    features: Vec<Vec<f32>>,
    skipped: Vec<Skipped>,
    written: usize,
}

impl<'p> Sink<'p> {
    pub(crate) fn new(
        opts: &Options,
        plan: &'p Plan,
        device: runtime::Placement,
        calibration: Option<Calibration>,
    ) -> Self {
        // What the listing could not reach (a shard cut short) is named
        // with the images that fail to decode.
        let skipped = plan.data.broken.iter().map(|(path, error)| Skipped { path: path.clone(), error: error.clone() });
        Sink {
            plan,
            pool: opts.pool,
            device,
            calibration,
            out: opts.out.clone(),
            writer: None,
            features: vec![Vec::new(); plan.layers.len()],
            skipped: skipped.collect(),
            written: 0,
        }
    }

    /// Takes one batch: names its failures, runs the rest, writes their rows
    /// and hands the buffer back to the decoders.
    pub(crate) fn take(
        &mut self,
        engine: &mut runtime::Engine,
        p: DecodedBatch,
        report: &mut dyn FnMut(Event),
        recycle: &mpsc::Sender<runtime::HostBuffer>,
    ) -> Result<()> {
        let (entries, layers, tensors) = (&self.plan.data.entries, &self.plan.layers, &self.plan.tensors);
        for (idx, err) in &p.failed {
            let rel = &entries[*idx].rel;
            report(Event::Skipped { path: rel, error: err });
            self.skipped.push(Skipped { path: rel.clone(), error: err.clone() });
        }
        if p.ok.is_empty() {
            let _ = recycle.send(p.data);
            return Ok(());
        }
        let k = self.plan.preprocess.rows_per_image();
        let n = p.ok.len() * k;
        let mut shapes: Vec<Vec<i64>> = vec![Vec::new(); tensors.len()];
        for f in &mut self.features {
            f.clear();
        }
        let (pool, features) = (self.pool, &mut self.features);
        engine.run_buffer(&p.data, n, |i, shape, values| {
            shapes[i] = shape.to_vec();
            for (l, f) in layers.iter().zip(features.iter_mut()) {
                if l.tensor == tensors[i] {
                    pool::pool_into(pool::effective(pool, shape), shape, values, f);
                }
            }
        })?;
        let _ = recycle.send(p.data);
        if self.writer.is_none() {
            self.create_writer(&shapes)?;
        }
        let (w, infos) = self.writer.as_mut().expect("created above");
        // An image whose features are not finite (a model that overflows on
        // it, or one that outputs NaN) is skipped and named, as an unreadable
        // one is: a NaN row would poison every classifier fitted on the file.
        let mut ok = Vec::with_capacity(p.ok.len());
        for (j, &i) in p.ok.iter().enumerate() {
            let bad = self
                .features
                .iter()
                .zip(infos.iter())
                .find(|(f, (_, info))| f[j * k * info.dim..(j + 1) * k * info.dim].iter().any(|v| !v.is_finite()));
            match bad {
                None => ok.push(j),
                Some((_, (layer, _))) => {
                    let error = format!("the network's {layer} features are not finite (NaN or infinite)");
                    report(Event::Skipped { path: &entries[i].rel, error: &error });
                    self.skipped.push(Skipped { path: entries[i].rel.clone(), error });
                }
            }
        }
        if ok.len() < p.ok.len() {
            for (f, (_, info)) in self.features.iter_mut().zip(infos.iter()) {
                let row = k * info.dim;
                let kept: Vec<f32> = ok.iter().flat_map(|&j| f[j * row..(j + 1) * row].iter().copied()).collect();
                *f = kept;
            }
        }
        let ok: Vec<usize> = ok.iter().map(|&j| p.ok[j]).collect();
        let n = ok.len() * k;
        // Each image's views, in order, one row each.
        let rows = || ok.iter().flat_map(|&i| std::iter::repeat_n(&entries[i], k));
        let paths: Vec<String> = rows().map(|e| e.rel.clone()).collect();
        let labels: Vec<Option<i32>> = rows().map(|e| e.label).collect();
        let views: Vec<i32> = if k > 1 { (0..n).map(|r| (r % k) as i32).collect() } else { Vec::new() };
        let cols: Vec<&[f32]> = self.features.iter().map(Vec::as_slice).collect();
        w.write(Rows { paths: &paths, labels: &labels, features: &cols, views: &views })?;
        self.written += ok.len();
        Ok(())
    }

    /// Opens the output; the columns' sizes come from the tensors' `shapes`.
    fn create_writer(&mut self, shapes: &[Vec<i64>]) -> Result<()> {
        let (layers, tensors) = (&self.plan.layers, &self.plan.tensors);
        let infos: Vec<(String, LayerInfo)> = layers
            .iter()
            .map(|l| {
                let shape = &shapes[tensors.iter().position(|t| *t == l.tensor).expect("requested")];
                let pool = pool::effective(self.pool, shape);
                (l.name.clone(), LayerInfo { tensor: l.tensor.clone(), pool, dim: pool::dim(pool, shape) })
            })
            .collect();
        let cols: Vec<(String, usize)> = infos.iter().map(|(n, l)| (n.clone(), l.dim)).collect();
        let views = self.plan.preprocess.views.is_some();
        self.writer =
            Some((FeatureWriter::create_with_views(&self.out, &self.plan.data.classes, &cols, views)?, infos));
        Ok(())
    }

    /// Opens an output that will get no rows: one blank image through the
    /// model gives the columns' sizes.
    pub(crate) fn create_empty(&mut self, engine: &mut runtime::Engine) -> Result<()> {
        let crop = self.plan.preprocess.crop as usize;
        let buf = engine.buffers(1, self.plan.rows_per_batch(), crop)?.pop().expect("one buffer");
        let mut shapes: Vec<Vec<i64>> = vec![Vec::new(); self.plan.tensors.len()];
        engine.run_buffer(&buf, 1, |i, shape, _| shapes[i] = shape.to_vec())?;
        self.create_writer(&shapes)
    }

    /// Writes the footer and moves the file into place: (path, rows, skipped).
    pub(crate) fn finish(self) -> Result<(PathBuf, usize, usize)> {
        let plan = self.plan;
        let Some((w, infos)) = self.writer else {
            return Err(Error::NothingRead(plan.data.entries.len()));
        };
        // A single file of no rows is no result; a part may be empty.
        if self.written == 0 && plan.shard.is_none() {
            return Err(Error::NothingRead(plan.data.entries.len()));
        }
        let mut skipped = self.skipped;
        skipped.sort_by(|a, b| a.path.cmp(&b.path));
        let header = Header {
            version: env!("CARGO_PKG_VERSION").to_string(),
            model: ModelInfo {
                file: plan.backbone.file_name.clone(),
                sha256: plan.backbone.sha256.clone(),
                input: plan.backbone.model.input.clone(),
            },
            weights: plan.backbone.weights.clone(),
            classes: plan.data.classes.clone(),
            layers: infos,
            preprocess: plan.preprocess.record(),
            root: plan.data.root.to_string_lossy().into_owned(),
            skipped,
            shard: plan.shard.clone(),
            inference: Some(Inference {
                device: self.device.to_string(),
                precision: plan.precision(),
                calibration: self.calibration.clone(),
            }),
        };
        let n_skipped = header.skipped.len();
        Ok((w.finish(&header)?, self.written, n_skipped))
    }
}
