//! A saved classifier, loaded again, predicts exactly what the fitted one did.

use std::path::Path;

use classify::{scale, Classifier, FitOptions, Kernel, ModelKind};

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
    testkit::write_generated(path, &classes, 6, &paths, &labels, &values);
}

/// `classify fit` with penalty `c` and the feature file's only column.
fn fit(train: &Path, out: &Path, model: ModelKind, kernel: Kernel, scale: scale::Kind, c: f64) -> classify::FitReport {
    let opts = FitOptions {
        train: train.to_owned(),
        out: out.to_owned(),
        model,
        kernel: (model == ModelKind::Svm).then_some(kernel),
        c: classify::Penalty::Given(vec![c]),
        gamma: vec![],
        k: vec![],
        layer: None,
        scale,
        class_weight: classify::ClassWeight::None,
        cv: None,
        cv_metric: classify::Metric::Accuracy,
        allow_partial: false,
        quiet_for: std::time::Duration::from_secs(2),
    };
    classify::fit(&opts.check().unwrap(), &mut |_| {}).unwrap()
}

#[test]
#[ignore = "needs scripts/setup.sh (.venv, models/): scripts/test.sh runs it"]
fn saved_classifiers_predict_as_fitted() {
    let dir = tempfile::tempdir().unwrap();
    let train = dir.path().join("train.parquet");
    let val = dir.path().join("val.parquet");
    write_features(&train, 1, 90);
    write_features(&val, 2, 60);
    let cases = [
        (
            ModelKind::Logistic,
            Kernel::Linear,
            scale::Kind::Standard,
            ["--model", "logistic", "--kernel", "linear", "--scale", "standard"],
        ),
        (ModelKind::Svm, Kernel::Linear, scale::Kind::L2, ["--model", "svm", "--kernel", "linear", "--scale", "l2"]),
        (ModelKind::Svm, Kernel::Rbf, scale::Kind::None, ["--model", "svm", "--kernel", "rbf", "--scale", "none"]),
    ];
    for (model, kernel, sc, sklearn) in cases {
        let out = dir.path().join("c.json");
        let fitted = fit(&train, &out, model, kernel, sc, 1.0).classifier;
        let loaded = Classifier::load(&out).unwrap();
        let data = loaded.load_compatible(&val, classify::Allow::default(), &mut |_| {}).unwrap();
        assert_eq!(loaded.predict(data.x.view()), fitted.predict(data.x.view()), "{model:?} {kernel:?}");
        assert_eq!(loaded.scores(data.x.view()), fitted.scores(data.x.view()), "{model:?} {kernel:?}");
        let scored = classify::score(&loaded, &val, classify::Allow::default(), &mut |_| {}).unwrap();
        // The loaded classifier scores as scikit-learn's of the same objective does.
        let r = testkit::py_json(
            "classify/tests/py/sklearn_reference.py",
            &[&[testkit::s(&train), testkit::s(&val), "--layer", "avgpool"][..], &sklearn].concat(),
        );
        let theirs = r["val_accuracy"].as_f64().unwrap();
        assert!(
            (scored.report.accuracy - theirs).abs() <= 0.02,
            "{model:?} {kernel:?}: {} vs scikit-learn {theirs}",
            scored.report.accuracy
        );
    }
}

#[test]
#[ignore = "needs scripts/setup.sh (.venv, models/): scripts/test.sh runs it"]
fn a_fit_that_did_not_converge_says_so_and_is_saved_so() {
    use testkit::{py_json, s};
    let dir = tempfile::tempdir().unwrap();
    let train = dir.path().join("train.parquet");
    write_features(&train, 3, 60);
    let out = dir.path().join("c.json");
    // Whether LIBLINEAR converges on the same problem at its own defaults
    // (`train -s 3`: eps 0.1, 1,000 passes), not at classify's settings:
    // an oracle that moved with the code would agree with any change to it.
    let liblinear = |c: &str| {
        let args = [s(&train), "--layer", "avgpool", "--C", c, "--tol", "0.1", "--max-passes", "1000"];
        py_json("classify/tests/py/liblinear_converges.py", &args)["converged"].as_bool().unwrap()
    };

    let report = fit(&train, &out, ModelKind::Svm, Kernel::Linear, scale::Kind::Standard, 1.0);
    assert!(liblinear("1"), "the oracle: LIBLINEAR converges at C=1");
    assert!(report.classifier.converged, "and so does classify");
    assert!(report.warnings().is_empty(), "{:?}", report.warnings());
    let saved: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&out).unwrap()).unwrap();
    assert_eq!(saved["converged"], true);

    // Overlapping blobs with almost no penalty on the margin: dual
    // coordinate descent crawls, LIBLINEAR's as ours.
    let report = fit(&train, &out, ModelKind::Svm, Kernel::Linear, scale::Kind::Standard, 1e6);
    assert!(!liblinear("1e6"), "the oracle: LIBLINEAR stops at its pass limit at C=1e6");
    assert!(!report.classifier.converged, "classify must say it stopped there too");
    let w = report.warnings();
    assert_eq!(w.len(), 1, "{w:?}");
    assert!(w[0].contains("svm linear C=1000000 stopped at its iteration limit"), "{w:?}");
    assert!(!Classifier::load(&out).unwrap().converged, "saved as not converged");

    // A classifier saved before the key existed loads as converged.
    let mut old: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&out).unwrap()).unwrap();
    old.as_object_mut().unwrap().remove("converged");
    std::fs::write(&out, old.to_string()).unwrap();
    assert!(Classifier::load(&out).unwrap().converged);
}

#[test]
#[ignore = "needs scripts/setup.sh (.venv, models/): scripts/test.sh runs it"]
fn the_logistic_regression_reaches_scikit_learns_optimum() {
    use testkit::{py_json, s, stderr};
    let dir = tempfile::tempdir().unwrap();
    // Separable and noisy, binary and multinomial, n near d, as transfer
    // learning's features are.
    for (classes, separable) in [(2, true), (2, false), (5, true), (5, false)] {
        let train = dir.path().join(format!("t{classes}{separable}.parquet"));
        let script = format!(
            "import sys; from bench_logistic import features, write; x, y = features(300, 256, {classes}, {}, 7); write(sys.argv[1], x, y, {classes})",
            if separable { "True" } else { "False" }
        );
        let o = testkit::python_command().args(["-c", &script, s(&train)]).output().unwrap();
        assert!(o.status.success(), "{}", stderr(&o));
        let out = dir.path().join("c.json");
        fit(&train, &out, ModelKind::Logistic, Kernel::Linear, scale::Kind::Standard, 1.0);
        let r = py_json("classify/tests/py/logistic_loss.py", &[s(&train), s(&out)]);
        let (ours, theirs) = (r["classify"].as_f64().unwrap(), r["sklearn"].as_f64().unwrap());
        assert!(
            ours <= theirs * (1.0 + 1e-4),
            "{classes} classes, separable {separable}: loss {ours} vs scikit-learn's {theirs}"
        );
        assert_eq!(r["converged"], true);
    }
}

#[test]
#[ignore = "needs scripts/setup.sh (.venv, models/): scripts/test.sh runs it"]
fn the_logistic_objective_and_its_gradient_are_scikit_learns() {
    let dir = tempfile::tempdir().unwrap();
    let mut state = 7u64;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        (state % 10_000) as f64 / 5_000.0 - 1.0
    };
    // Binary (one weight row) and multinomial, with unequal class weights,
    // at a point far from the optimum, where every term of the gradient counts.
    for k in [2usize, 4] {
        let (n, d, c) = (40, 5, 0.3);
        let y: Vec<usize> = (0..n).map(|i| (i * 7 + i / 3) % k).collect();
        let x = ndarray::Array2::from_shape_fn((n, d), |(i, j)| if j % k == y[i] { 1.0 } else { 0.0 } + next());
        let class_weight: Vec<f64> = (0..k).map(|c| 0.5 + c as f64 * 0.75).collect();
        let rows = if k == 2 { 1 } else { k };
        let theta: Vec<f64> = (0..rows * (d + 1)).map(|_| 2.0 * next()).collect();
        let (value, grad) = classify::logistic::objective(x.view(), &y, k, c, &class_weight, &theta);

        let problem = dir.path().join(format!("p{k}.json"));
        let rows_json: Vec<Vec<f64>> = x.rows().into_iter().map(|r| r.to_vec()).collect();
        let json =
            serde_json::json!({"x": rows_json, "y": y, "k": k, "c": c, "class_weight": class_weight, "theta": theta});
        std::fs::write(&problem, json.to_string()).unwrap();
        let r = testkit::py_json("classify/tests/py/logistic_objective.py", &[testkit::s(&problem)]);
        let want = r["value"].as_f64().unwrap();
        assert!((value - want).abs() <= 1e-9 * want.abs(), "k={k}: objective {value}, scikit-learn's {want}");
        let want: Vec<f64> = r["gradient"].as_array().unwrap().iter().map(|v| v.as_f64().unwrap()).collect();
        assert_eq!(grad.len(), want.len());
        for (i, (g, w)) in grad.iter().zip(&want).enumerate() {
            assert!((g - w).abs() <= 1e-9 * (1.0 + w.abs()), "k={k} component {i}: {g}, scikit-learn's {w}");
        }
    }
}
