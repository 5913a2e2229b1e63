//! A saved classifier, loaded again, predicts exactly what the fitted one did.

use std::path::Path;

use classify::{scale, Classifier, FitOptions, Kernel, ModelKind};
use featurefile::{FeatureWriter, Header, LayerInfo, ModelInfo, Pool, Preprocess, Rows};

/// Three noisy Gaussian blobs in 6 dimensions, as a feature file.
fn write_features(path: &Path, seed: u64, n: usize) {
    let classes: Vec<String> = ["a", "b", "c"].map(String::from).to_vec();
    let mut state = seed;
    let mut noise = move || {
        // xorshift: reproducible without a dependency
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        (state % 10_000) as f32 / 10_000.0 - 0.5
    };
    let mut paths = Vec::new();
    let mut labels = Vec::new();
    let mut values = Vec::new();
    for i in 0..n {
        let k = i % 3;
        paths.push(format!("{}/{i:04}.png", classes[k]));
        labels.push(Some(k as i32));
        for d in 0..6 {
            values.push(if d == k { 1.0 } else { 0.0 } + 1.5 * noise());
        }
    }
    let layer = LayerInfo { tensor: "t".into(), pool: Pool::None, dim: 6 };
    let mut w = FeatureWriter::create(path, &classes, &[("avgpool".into(), 6)]).unwrap();
    w.write(Rows { paths: &paths, labels: &labels, features: &[&values] }).unwrap();
    w.finish(&Header {
        version: "test".into(),
        model: ModelInfo { file: "m.onnx".into(), sha256: "00".into(), input: "input".into() },
        classes,
        layers: vec![("avgpool".into(), layer)],
        preprocess: Preprocess { resize: 256, crop: 224, mean: [0.0; 3], std: [1.0; 3], filter: "x".into() },
        root: "/nowhere".into(),
        skipped: vec![],
    })
    .unwrap();
}

#[test]
fn saved_classifiers_predict_as_fitted() {
    let dir = tempfile::tempdir().unwrap();
    let train = dir.path().join("train.parquet");
    let val = dir.path().join("val.parquet");
    write_features(&train, 1, 90);
    write_features(&val, 2, 60);
    let cases = [
        (ModelKind::Logistic, Kernel::Linear, scale::Kind::Standard),
        (ModelKind::Svm, Kernel::Linear, scale::Kind::L2),
        (ModelKind::Svm, Kernel::Rbf, scale::Kind::None),
    ];
    for (model, kernel, sc) in cases {
        let out = dir.path().join("c.json");
        let opts = FitOptions {
            train: train.clone(),
            out: out.clone(),
            model,
            kernel,
            c: vec![1.0],
            gamma: vec![],
            layer: None,
            scale: sc,
            cv: None,
        };
        let fitted = classify::fit(&opts).unwrap().classifier;
        let loaded = Classifier::load(&out).unwrap();
        let data = loaded.load_compatible(&val, false).unwrap();
        assert_eq!(loaded.predict(&data.x), fitted.predict(&data.x), "{model:?} {kernel:?}");
        assert_eq!(loaded.scores(&data.x), fitted.scores(&data.x), "{model:?} {kernel:?}");
        let scored = classify::score(&loaded, &val, false).unwrap();
        assert!(scored.report.accuracy > 0.6, "{model:?} {kernel:?}: {}", scored.report.accuracy);
    }
}
