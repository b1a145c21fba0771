//! Errors are one line and say each thing once.

use std::process::Command;

/// A missing file: exit 1, one line, the OS error once (library errors
/// carry their source's text, and the binary prints the cause chain).
#[test]
fn missing_files_give_one_line_without_repeats() {
    for args in [
        &[
            "eval",
            "--model",
            "/nonexistent.onnx",
            "--data",
            "fashion-mnist",
        ][..],
        &["analyze", "/nonexistent.onnx"][..],
        &[
            "predict",
            "--model",
            "/nonexistent.onnx",
            "--input",
            "/nonexistent.png",
        ][..],
    ] {
        let out = Command::new(env!("CARGO_BIN_EXE_residue"))
            .args(args)
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(1), "{args:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(err.trim_end().lines().count(), 1, "{args:?}: {err}");
        assert_eq!(err.matches("os error 2").count(), 1, "{args:?}: {err}");
    }
}

/// A reader that closes stdout early ends the command quietly (status 141,
/// as when killed by SIGPIPE), never a panic (101) with a backtrace.
#[test]
fn closed_stdout_is_not_a_panic() {
    use std::io::Read;
    for args in [&["params"][..], &["params", "--json"][..]] {
        let mut child = Command::new(env!("CARGO_BIN_EXE_residue"))
            .args(args)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        // close the read end at once: the first write fails with EPIPE
        drop(child.stdout.take());
        let status = child.wait().unwrap();
        let mut err = String::new();
        child
            .stderr
            .take()
            .unwrap()
            .read_to_string(&mut err)
            .unwrap();
        assert_ne!(status.code(), Some(101), "{args:?}: {err}");
        assert!(!err.contains("panicked"), "{args:?}: {err}");
    }
}

/// `bench ckks --ops` names operations the benchmark has; an unknown one,
/// or `bootstrap` on a set that does not bootstrap, is refused (it printed
/// an empty table and exited 0).
#[test]
fn bench_refuses_unknown_operations() {
    for (args, want) in [
        (
            &["bench", "ckks", "--params", "insecure-n12", "--ops", "frob"][..],
            "unknown operation",
        ),
        (
            &[
                "bench",
                "ckks",
                "--params",
                "insecure-n12",
                "--ops",
                "bootstrap",
            ][..],
            "does not bootstrap",
        ),
    ] {
        let out = Command::new(env!("CARGO_BIN_EXE_residue"))
            .args(args)
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(1), "{args:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(err.trim_end().lines().count(), 1, "{args:?}: {err}");
        assert!(err.contains(want), "{args:?}: {err}");
    }
}

/// `bench ckks --ops encode_real --slots S --concurrent`: the records say
/// the slots and how many copies ran at once; a `--slots` that is not a
/// power of two up to N/2 is refused with one line.
#[test]
fn bench_measures_real_encodes_and_concurrent_copies() {
    let run = |extra: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_residue"))
            .args([
                "bench",
                "ckks",
                "--params",
                "insecure-n12",
                "--threads",
                "2",
            ])
            .args([
                "--reps",
                "1",
                "--ops",
                "encode_real,mul_plain_acc",
                "--json",
            ])
            .args(extra)
            .output()
            .unwrap()
    };
    let out = run(&["--slots", "64", "--concurrent"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let recs: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let recs = recs.as_array().unwrap();
    assert_eq!(recs.len(), 2);
    for r in recs {
        assert_eq!(r["concurrent"], 8, "{r}");
        assert!(r["median_ms"].as_f64().unwrap() > 0.0, "{r}");
    }
    assert_eq!(recs[0]["op"], "encode_real");
    assert_eq!(recs[0]["slots"], 64);
    assert!(recs[1].get("slots").is_none(), "{}", recs[1]);
    for bad in ["48", "1048576"] {
        let out = run(&["--slots", bad]);
        assert_eq!(out.status.code(), Some(1), "--slots {bad}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(err.trim_end().lines().count(), 1, "{err}");
        assert!(err.contains("power of two"), "{err}");
    }
}

/// `eval --he --images 0` and `eval --limit 0` are refused with one line
/// (they printed "0/0", "-0.0 s per image", "accuracy 0.00%").
#[test]
fn eval_refuses_zero_images() {
    let root = format!("{}/../..", env!("CARGO_MANIFEST_DIR"));
    let model = format!("{root}/models/dirac-shared20.onnx");
    let sample = format!("{root}/data/fashion-mnist-sample");
    let eval = [
        "eval",
        "--model",
        &model,
        "--data",
        "fashion-mnist",
        &sample,
    ];
    for (extra, want) in [
        (
            &[
                "--he",
                "--images",
                "0",
                "--params",
                "insecure-boot-n12-l9",
                "--json",
            ][..],
            "error: --images 0",
        ),
        (&["--limit", "0"][..], "error: --limit 0"),
    ] {
        let out = Command::new(env!("CARGO_BIN_EXE_residue"))
            .args(eval)
            .args(extra)
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{extra:?}: {err}");
        assert_eq!(err.trim_end().lines().count(), 1, "{extra:?}: {err}");
        assert!(err.starts_with(want), "{extra:?}: {err}");
        assert!(out.stdout.is_empty(), "{extra:?}");
    }
}

/// `--low-memory` (the old spelling of `--diagonals coefficients`) together with `--diagonals ntt` is refused in one line by
/// every command that takes them, before any file is read.
#[test]
fn contradictory_diagonal_flags_are_refused() {
    let contradiction = ["--low-memory", "--diagonals", "ntt"];
    for cmd in [
        &[
            "infer",
            "--plan",
            "p",
            "--model",
            "m",
            "--eval-keys",
            "k",
            "--input",
            "i",
            "--out",
            "o",
        ][..],
        &["demo"][..],
        &["eval", "--model", "m", "--data", "fashion-mnist", "--he"][..],
        &["reproduce", "--out", "/nonexistent/residue-test"][..],
    ] {
        let out = Command::new(env!("CARGO_BIN_EXE_residue"))
            .args(cmd)
            .args(contradiction)
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{cmd:?}: {err}");
        assert!(
            err.contains("contradicts --diagonals ntt") && err.trim().lines().count() == 1,
            "{cmd:?}: {err}"
        );
    }
}
