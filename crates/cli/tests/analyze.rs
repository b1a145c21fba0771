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

/// `compile --json` prints the plan's figures as JSON on stdout, named and
/// valued as `analyze --json` names them, plus the slots and where the
/// plan went; `--json` with `--out -` (both on stdout) is refused.
#[test]
fn compile_json_matches_analyze() {
    let root = format!("{}/../..", env!("CARGO_MANIFEST_DIR"));
    let model = format!("{root}/models/dirac-shared20.onnx");
    let set = "insecure-boot-n12-l9";
    let plan =
        std::env::temp_dir().join(format!("residue-compile-json-{}.json", std::process::id()));
    let plan = plan.to_str().unwrap();
    let out = ok(&["compile", &model, "--params", set, "--out", plan, "--json"]);
    let c: serde_json::Value = serde_json::from_str(&out)
        .unwrap_or_else(|e| panic!("stdout is not only JSON ({e}): {out}"));
    let written: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(plan).unwrap()).unwrap();
    let _ = std::fs::remove_file(plan);
    let a: serde_json::Value =
        serde_json::from_str(&ok(&["analyze", &model, "--params", set, "--json"])).unwrap();
    for key in [
        "model",
        "structure",
        "params",
        "cost_source",
        "batch",
        "l_eff",
        "bootstraps",
        "rotations",
        "galois_keys",
        "galois_key_bytes",
        "estimated_seconds",
        "estimated_seconds_per_image",
    ] {
        assert!(!c[key].is_null(), "compile --json lacks {key}: {out}");
        assert_eq!(c[key], a[key], "{key}");
    }
    assert_eq!(c["params"], set);
    assert!(c["bootstraps"].as_u64().unwrap() > 0, "{out}");
    assert_eq!(c["slots"], written["params"]["slots"], "{out}");
    assert_eq!(
        c["steps"].as_u64().unwrap() as usize,
        written["nodes"].as_array().unwrap().len()
    );
    assert_eq!(c["out"], plan);
    assert!(c["seconds"].as_f64().unwrap() > 0.0);

    let o = common::residue(&["compile", &model, "--params", set, "--out", "-", "--json"]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(
        err.contains("--json and --out - both write to stdout"),
        "{err}"
    );
    assert!(o.stdout.is_empty());
}

/// `--threads T` prices the estimate from the committed measurements at T
/// threads: two threads cost less than one (both measured at `n16-boot`)
/// for the same plan,
/// the source says so, and a count with no measurements is a one-line
/// error naming the counts that exist.
#[test]
fn threads_price_the_estimate() {
    let root = format!("{}/../..", env!("CARGO_MANIFEST_DIR"));
    let model = format!("{root}/models/dirac-shared20.onnx");
    let est = |t: &str| -> (f64, u64) {
        let out = ok(&[
            "analyze",
            &model,
            "--params",
            "n16-boot",
            "--threads",
            t,
            "--json",
        ]);
        let v: serde_json::Value = serde_json::from_str(&out).unwrap();
        let src = v["cost_source"].as_str().unwrap_or_default().to_string();
        let want = if t == "1" { "1 thread," } else { "2 threads," };
        assert!(src.contains(want), "{src}");
        (
            v["estimated_seconds_per_image"].as_f64().unwrap(),
            v["rotations"].as_u64().unwrap(),
        )
    };
    let ((one, r1), (two, r2)) = (est("1"), est("2"));
    // The plan priced is the one the runtime commands compile (one-thread
    // layouts), whatever the thread count priced.
    assert_eq!(r1, r2, "rotations at 1 and 2 threads");
    assert!(
        two < one && two > one / 2.5,
        "1 thread {one} s, 2 threads {two} s"
    );
    let o = common::residue(&["analyze", &model, "--params", "n16-boot", "--threads", "3"]);
    assert!(!o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("no 3-thread measurements") && err.contains("[1, 2]"),
        "{err}"
    );
    assert_eq!(err.trim().lines().count(), 1, "{err}");
}
