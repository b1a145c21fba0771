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

/// A model that needs bootstraps, at a set that cannot bootstrap: `analyze`
/// refuses as `compile` does (it printed an estimate with bootstraps that
/// no command could run), with one line and exit 1; a model that needs
/// none still analyzes there.
#[test]
fn analyze_refuses_bootstraps_at_a_set_without_them() {
    let root = format!("{}/../..", env!("CARGO_MANIFEST_DIR"));
    let model = format!("{root}/models/dirac-shared20.onnx");
    let plan = std::env::temp_dir().join(format!("residue-noboot-{}.json", std::process::id()));
    let plan = plan.to_str().unwrap();
    for set in ["n14-l7", "insecure-n12"] {
        for args in [
            vec!["analyze", &model, "--params", set],
            vec!["analyze", &model, "--params", set, "--json"],
            vec!["compile", &model, "--params", set, "--out", plan],
        ] {
            let o = common::residue(&args);
            let err = String::from_utf8_lossy(&o.stderr);
            assert_eq!(o.status.code(), Some(1), "{args:?}: {err}");
            assert_eq!(err.trim_end().lines().count(), 1, "{args:?}: {err}");
            assert!(
                err.starts_with(&format!("error: `{set}` does not bootstrap")),
                "{args:?}: {err}"
            );
            assert!(err.contains("--params n16-boot"), "{args:?}: {err}");
            assert!(o.stdout.is_empty(), "{args:?}: printed a report");
        }
    }
    assert!(!std::path::Path::new(plan).exists());
    let small = std::env::temp_dir().join(format!("residue-noboot-{}.onnx", std::process::id()));
    common::small_model(&small, 1, 8, 0.0);
    let out = ok(&[
        "analyze",
        small.to_str().unwrap(),
        "--params",
        "insecure-n12",
        "--json",
    ]);
    let _ = std::fs::remove_file(&small);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["bootstraps"], 0, "{out}");
}
