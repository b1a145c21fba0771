//! `residue analyze` explains its report: every column header and label it
//! prints is in the legend, printed once.

mod common;
use common::ok;

#[test]
fn the_report_explains_its_columns_once() {
    let model = format!("{}/../../models/resnet20.onnx", env!("CARGO_MANIFEST_DIR"));
    let out = ok(&["analyze", &model, "--params", "n16-boot"]);
    assert_eq!(out.matches("legend:").count(), 1, "{out}");
    let legend = &out[out.find("legend:").unwrap()..];
    let header = out
        .lines()
        .find(|l| l.starts_with("layer "))
        .expect("a table header");
    for col in header.split_whitespace().skip(1) {
        assert!(legend.contains(col), "column {col} unexplained: {legend}");
    }
    // The labels the table and the skip list use.
    for label in [
        "mid-term",
        "linear",
        "activation",
        "add",
        "L_eff",
        "Optimal",
    ] {
        assert!(
            out[..out.find("legend:").unwrap()].contains(label),
            "{label} not in the report"
        );
        assert!(legend.contains(label), "{label} unexplained: {legend}");
    }
}

/// Where the cost figures come from, worded alike by `analyze` and
/// `compile`: the committed measurements, a `--calibrate` file, or the
/// per-limb model (`uncalibrated estimate`, not a bare `estimate`).
#[test]
fn cost_sources_are_worded_alike() {
    let root = format!("{}/../..", env!("CARGO_MANIFEST_DIR"));
    let model = format!("{root}/models/dirac-shared20.onnx");
    let bench = format!("{root}/docs/data/bench-n16-boot.json");
    let out = ok(&["analyze", &model, "--params", "n16-boot"]);
    assert!(
        out.contains("[measured (calibrated, 1 thread, docs/data)]"),
        "{out}"
    );
    let set = "insecure-boot-n12-l9";
    let out = ok(&["analyze", &model, "--params", set]);
    assert!(out.contains("[uncalibrated estimate]"), "{out}");
    let out = ok(&["analyze", &model, "--params", set, "--calibrate", &bench]);
    assert!(
        out.contains("[measured (calibrated, ") && out.contains("bench-n16-boot.json)]"),
        "{out}"
    );
    let plan = std::env::temp_dir().join(format!("residue-cost-src-{}.json", std::process::id()));
    let o = common::residue(&[
        "compile",
        &model,
        "--params",
        set,
        "--out",
        plan.to_str().unwrap(),
    ]);
    let _ = std::fs::remove_file(&plan);
    assert!(o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("s estimated [uncalibrated estimate]"), "{err}");
}
