//! `residue tradeoff`: its accuracies are `residue eval`'s, its costs
//! `residue analyze`'s, its files are written and reused, and bad input
//! gets a one-line error.

mod common;

use std::path::Path;

use common::{check_png, check_svg, ok, residue};

fn repo(p: &str) -> String {
    format!("{}/../../{p}", env!("CARGO_MANIFEST_DIR"))
}

fn json(s: &str) -> serde_json::Value {
    serde_json::from_str(s).unwrap_or_else(|e| panic!("not JSON ({e}): {s}"))
}

/// Two bundled models on the first 100 sample test images: every figure
/// matches the command that owns it, and a rerun reuses the accuracies.
#[test]
fn tradeoff_agrees_with_eval_and_analyze() {
    let out = std::env::temp_dir().join(format!("residue-tradeoff-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&out);
    let out_s = out.to_str().unwrap();
    let sample = repo("data/fashion-mnist-sample");
    let (resnet, ds) = (
        repo("models/resnet20.onnx"),
        repo("models/dirac-shared20.onnx"),
    );
    let models = format!("{resnet},{ds}");
    let args = [
        "tradeoff",
        "--models",
        &models,
        "--data",
        "fashion-mnist",
        &sample,
        "--limit",
        "100",
        "--out",
        out_s,
        "--json",
    ];
    let o = residue(&args);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let printed = json(&String::from_utf8_lossy(&o.stdout));
    let written = json(&std::fs::read_to_string(out.join("tradeoff.json")).unwrap());
    assert_eq!(printed, written);
    let recs = written.as_array().unwrap();
    assert_eq!(recs.len(), 2);
    for (r, file, structure) in [
        (&recs[0], &resnet, "resnet"),
        (&recs[1], &ds, "shared-source"),
    ] {
        assert_eq!(r["structure"], structure, "{r}");
        assert_eq!(r["family"], structure, "{r}");
        assert_eq!(r["images"], 100);
        let eval = json(&ok(&[
            "eval",
            "--model",
            file,
            "--data",
            "fashion-mnist",
            &sample,
            "--limit",
            "100",
            "--json",
        ]));
        assert_eq!(r["correct"], eval["correct"], "{r} vs {eval}");
        let analyze = json(&ok(&["analyze", file, "--params", "n16-boot", "--json"]));
        assert_eq!(r["bootstraps"], analyze["bootstraps"]);
        let (a, b) = (
            r["estimated_s"].as_f64().unwrap(),
            analyze["estimated_seconds_per_image"].as_f64().unwrap(),
        );
        assert!((a - b).abs() < 1e-9, "{a} vs {b}");
    }
    assert_eq!(recs[0]["speedup_vs_baseline"], 1.0);
    assert_eq!(recs[0]["model"], "resnet20");
    assert_eq!(recs[1]["baseline"], "resnet20");
    check_png(&out.join("accuracy-cost.png"));
    check_svg(&out.join("accuracy-cost.svg"));

    // The rerun evaluates nothing: it reports the cached accuracies, as a
    // tampered cache entry shows.
    let cache: Vec<_> = std::fs::read_dir(out.join("plain"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(cache.len(), 2, "{cache:?}");
    let resnet_correct = recs[0]["correct"].as_u64().unwrap();
    let mut tampered = false;
    for f in &cache {
        let mut v = json(&std::fs::read_to_string(f).unwrap());
        if v["correct"] == resnet_correct && !tampered {
            v["correct"] = (resnet_correct - 1).into();
            std::fs::write(f, v.to_string()).unwrap();
            tampered = true;
        }
    }
    assert!(tampered);
    let o = residue(&args);
    assert!(o.status.success());
    let again = json(&String::from_utf8_lossy(&o.stdout));
    let got: Vec<u64> = again
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["correct"].as_u64().unwrap())
        .collect();
    assert!(got.contains(&(resnet_correct - 1)), "{got:?}");
    std::fs::remove_dir_all(&out).unwrap();
}

#[test]
fn tradeoff_refuses_bad_input_in_one_line() {
    let sample = repo("data/fashion-mnist-sample");
    let model = repo("models/dirac20.onnx");
    let twice = format!("{model},{model}");
    let missing = Path::new(&sample).join("none.onnx");
    for (args, says) in [
        (vec!["--models", missing.to_str().unwrap()], "not found"),
        (vec!["--models", &twice], "given twice"),
        (vec!["--models", &model, "--limit", "0"], "--limit 0"),
        (vec!["--models", &model, "--params", "n99"], "--params n99"),
        (vec!["--models", &model, "--placement", "best"], "placement"),
    ] {
        let mut a = vec!["tradeoff", "--data", "fashion-mnist", &sample, "--out"];
        let out = std::env::temp_dir().join(format!("residue-tradeoff-bad-{}", std::process::id()));
        a.push(out.to_str().unwrap());
        a.extend(args.iter().copied());
        let o = residue(&a);
        assert!(!o.status.success(), "{a:?} succeeded");
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(err.trim().lines().count(), 1, "{a:?}: {err}");
        assert!(err.contains(says), "{a:?}: {err}");
        let _ = std::fs::remove_dir_all(&out);
    }
}
