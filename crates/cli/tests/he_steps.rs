//! The client and server steps as a user runs them (`residue compile`,
//! `keygen`, `encrypt`, `infer`, `decrypt`) on a small model at an insecure
//! leveled set, and every step fed truncated, bit-flipped, empty, secret or
//! mismatched inputs: a non-zero exit with a one-line error, never a panic
//! (exit 101).

use std::path::PathBuf;

mod common;
use common::{ok, residue};

/// Fails cleanly: exit 1 (not 101), and the error is one line.
fn refused(args: &[&str]) -> String {
    let o = residue(args);
    let err = String::from_utf8_lossy(&o.stderr).into_owned();
    assert_eq!(o.status.code(), Some(1), "{args:?}: {err}");
    let lines: Vec<&str> = err.lines().filter(|l| !l.trim().is_empty()).collect();
    assert_eq!(lines.len(), 1, "{args:?}: not one line: {err}");
    assert!(lines[0].starts_with("error: "), "{err}");
    err
}

fn tmp() -> PathBuf {
    let d = std::env::temp_dir().join(format!("residue-cli-he-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

#[test]
fn client_and_server_steps_round_trip_and_refuse_bad_inputs() {
    let d = tmp();
    let p = |s: &str| d.join(s).display().to_string();
    common::small_model(&d.join("m.onnx"), 1, 8, 0.0);
    common::small_model(&d.join("other.onnx"), 1, 8, 1.0);
    let x: Vec<f32> = (0..64).map(|i| (i as f32 * 0.37).sin().abs()).collect();
    std::fs::write(d.join("x.npy"), nn::input::encode_npy_f32(&[1, 8, 8], &x)).unwrap();

    ok(&[
        "compile",
        &p("m.onnx"),
        "--params",
        "insecure-n12",
        "--out",
        &p("plan.json"),
    ]);
    ok(&common::keygen_args(
        &p("plan.json"),
        &p("m.onnx"),
        &p("keys"),
    ));
    ok(&common::encrypt_args(
        &p("keys"),
        &p("plan.json"),
        &p("x.ct"),
        &[&p("x.npy")],
    ));
    ok(&common::infer_args(
        &p("plan.json"),
        &p("m.onnx"),
        &p("keys/eval"),
        &p("x.ct"),
        &p("y.ct"),
    ));
    let out = ok(&[
        "decrypt",
        "--keys",
        &p("keys"),
        "--input",
        &p("y.ct"),
        "--json",
    ]);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    let he: Vec<f64> = v["logits"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_f64().unwrap())
        .collect();
    let plain = ok(&[
        "predict",
        "--model",
        &p("m.onnx"),
        "--input",
        &p("x.npy"),
        "--json",
    ]);
    let pv: serde_json::Value = serde_json::from_str(&plain).unwrap();
    assert_eq!(v["class"], pv["class"]);

    // `--profile`: the engine's kernels by kind of work; every rotation of
    // the linear layers and the pooling is one key switch.
    let (plan, model, keys, x, y2) = (
        p("plan.json"),
        p("m.onnx"),
        p("keys/eval"),
        p("x.ct"),
        p("y2.ct"),
    );
    let mut a = common::infer_args(&plan, &model, &keys, &x, &y2).to_vec();
    a.extend(["--profile", "--json"]);
    let prof: serde_json::Value = serde_json::from_str(&ok(&a)).unwrap();
    let calls = |kind: &str| prof["kernels_by_kind"][kind]["inner_product"]["calls"].as_u64();
    assert!(calls("linear").unwrap() > 0, "{prof}");
    assert_eq!(
        calls("linear").unwrap() + calls("pool").unwrap_or(0),
        prof["rotations"].as_u64().unwrap(),
        "{prof}"
    );
    for (a, b) in he.iter().zip(pv["logits"].as_array().unwrap()) {
        assert!((a - b.as_f64().unwrap()).abs() < 1e-3, "{he:?} vs {pv}");
    }

    // Keys of another keygen: refused by key pair, not answered with noise
    // (found by a fresh user: both exited 0 with logits around 1e7).
    ok(&common::keygen_args(
        &p("plan.json"),
        &p("m.onnx"),
        &p("keys2"),
    ));
    let id = std::fs::read_to_string(d.join("keys/key.id")).unwrap();
    assert_eq!(id.trim().len(), 32, "{id}");
    assert_eq!(
        id,
        std::fs::read_to_string(d.join("keys/eval/key.id")).unwrap()
    );
    assert_ne!(id, std::fs::read_to_string(d.join("keys2/key.id")).unwrap());
    let e = refused(&common::infer_args(
        &p("plan.json"),
        &p("m.onnx"),
        &p("keys2/eval"),
        &p("x.ct"),
        &p("z.ct"),
    ));
    assert!(e.contains("key pair") && e.contains(id.trim()), "{e}");
    let e = refused(&["decrypt", "--keys", &p("keys2"), "--input", &p("y.ct")]);
    assert!(e.contains("key pair") && e.contains(id.trim()), "{e}");
    // Without ids (a secret key copied alone, eval keys without key.id):
    // the decryption is recognized as noise instead of printed.
    std::fs::create_dir_all(d.join("sk2")).unwrap();
    std::fs::copy(d.join("keys2/secret.key"), d.join("sk2/secret.key")).unwrap();
    let e = refused(&["decrypt", "--keys", &p("sk2"), "--input", &p("y.ct")]);
    assert!(e.contains("decrypts to noise"), "{e}");
    std::fs::rename(d.join("keys2/eval/key.id"), d.join("keys2.id")).unwrap();
    ok(&common::infer_args(
        &p("plan.json"),
        &p("m.onnx"),
        &p("keys2/eval"),
        &p("x.ct"),
        &p("y2.ct"),
    ));
    let e = refused(&["decrypt", "--keys", &p("keys"), "--input", &p("y2.ct")]);
    assert!(e.contains("decrypts to noise"), "{e}");
    std::fs::rename(d.join("keys2.id"), d.join("keys2/eval/key.id")).unwrap();
    // A key id that is not one.
    std::fs::write(d.join("keys2/eval/key.id"), "not an id\n").unwrap();
    let e = refused(&common::infer_args(
        &p("plan.json"),
        &p("m.onnx"),
        &p("keys2/eval"),
        &p("x.ct"),
        &p("z.ct"),
    ));
    assert!(e.contains("key.id"), "{e}");

    // A plan for another model.
    refused(&common::infer_args(
        &p("plan.json"),
        &p("other.onnx"),
        &p("keys/eval"),
        &p("x.ct"),
        &p("z.ct"),
    ));
    // A secret key in the server's directory.
    std::fs::copy(d.join("keys/secret.key"), d.join("keys/eval/secret.key")).unwrap();
    let e = refused(&common::infer_args(
        &p("plan.json"),
        &p("m.onnx"),
        &p("keys/eval"),
        &p("x.ct"),
        &p("z.ct"),
    ));
    assert!(e.contains("secret key"), "{e}");
    std::fs::remove_file(d.join("keys/eval/secret.key")).unwrap();
    // Truncated, flipped, empty and oversized ciphertexts, plans and keys.
    let ct = std::fs::read(d.join("x.ct")).unwrap();
    let plan = std::fs::read(d.join("plan.json")).unwrap();
    let mut flipped_plan = plan.clone();
    let pos = flipped_plan.len() / 3;
    flipped_plan[pos] ^= 0x21;
    let mut big = ct.clone();
    big.extend(std::iter::repeat_n(7u8, 1 << 20));
    let mut flipped_ct = ct.clone();
    flipped_ct[8] ^= 0xff;
    let bad_cts: Vec<(&str, Vec<u8>)> = vec![
        ("trunc.ct", ct[..ct.len() / 2].to_vec()),
        ("empty.ct", Vec::new()),
        ("big.ct", big),
        ("flip.ct", flipped_ct),
    ];
    for (name, bytes) in &bad_cts {
        std::fs::write(d.join(name), bytes).unwrap();
        refused(&common::infer_args(
            &p("plan.json"),
            &p("m.onnx"),
            &p("keys/eval"),
            &p(name),
            &p("z.ct"),
        ));
        refused(&["decrypt", "--keys", &p("keys"), "--input", &p(name)]);
    }
    for (name, bytes) in [
        ("trunc.json", plan[..plan.len() / 2].to_vec()),
        ("empty.json", Vec::new()),
        ("flip.json", flipped_plan),
    ] {
        std::fs::write(d.join(name), &bytes).unwrap();
        let o = residue(&common::infer_args(
            &p(name),
            &p("m.onnx"),
            &p("keys/eval"),
            &p("x.ct"),
            &p("z.ct"),
        ));
        // A flip may leave valid JSON that still matches; it must never panic.
        assert_ne!(
            o.status.code(),
            Some(101),
            "{}",
            String::from_utf8_lossy(&o.stderr)
        );
        if name != "flip.json" {
            assert_eq!(o.status.code(), Some(1));
        }
    }
    let ek = std::fs::read(d.join("keys/eval/eval.keys")).unwrap();
    std::fs::write(d.join("keys/eval/eval.keys"), &ek[..ek.len() / 2]).unwrap();
    refused(&common::infer_args(
        &p("plan.json"),
        &p("m.onnx"),
        &p("keys/eval"),
        &p("x.ct"),
        &p("z.ct"),
    ));
    std::fs::write(d.join("keys/secret.key"), b"garbage").unwrap();
    refused(&["decrypt", "--keys", &p("keys"), "--input", &p("y.ct")]);
    // Encryption reads only the public key.
    std::fs::write(d.join("keys/public.key"), b"garbage").unwrap();
    refused(&common::encrypt_args(
        &p("keys"),
        &p("plan.json"),
        &p("w.ct"),
        &[&p("x.npy")],
    ));
    let _ = std::fs::remove_dir_all(&d);
}

/// The logits of a `decrypt --json` result or `predict --json` output.
fn logits(v: &serde_json::Value) -> Vec<f64> {
    v["logits"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_f64().unwrap())
        .collect()
}

#[test]
fn batched_round_trip_of_two_images() {
    let d = std::env::temp_dir().join(format!("residue-cli-batch-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    let p = |s: &str| d.join(s).display().to_string();
    common::small_model(&d.join("m.onnx"), 1, 8, 0.0);
    let xa: Vec<f32> = (0..64).map(|i| (i as f32 * 0.37).sin().abs()).collect();
    let xb: Vec<f32> = (0..64).map(|i| (i as f32 * 0.11).cos().abs()).collect();
    std::fs::write(d.join("a.npy"), nn::input::encode_npy_f32(&[1, 8, 8], &xa)).unwrap();
    std::fs::write(d.join("b.npy"), nn::input::encode_npy_f32(&[1, 8, 8], &xb)).unwrap();
    let both: Vec<f32> = xa.iter().chain(&xb).copied().collect();
    std::fs::write(
        d.join("ab.npy"),
        nn::input::encode_npy_f32(&[2, 1, 8, 8], &both),
    )
    .unwrap();
    let compile = |batch: &str, out: &str| {
        ok(&[
            "compile",
            &p("m.onnx"),
            "--params",
            "insecure-n12",
            "--batch",
            batch,
            "--out",
            &p(out),
        ])
    };
    compile("2", "plan.json");
    compile("1", "plan1.json");
    let plan: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(d.join("plan.json")).unwrap()).unwrap();
    assert_eq!(plan["params"]["batch"], 2);
    ok(&common::keygen_args(
        &p("plan.json"),
        &p("m.onnx"),
        &p("keys"),
    ));
    let keys = p("keys");
    let (pa, pb, pab, plan2) = (p("a.npy"), p("b.npy"), p("ab.npy"), p("plan.json"));
    let (x2, xs) = (p("x2.ct"), p("xs.ct"));
    // Two files, and one [2, 1, 8, 8] stack.
    ok(&common::encrypt_args(&keys, &plan2, &x2, &[&pa, &pb]));
    ok(&common::encrypt_args(&keys, &plan2, &xs, &[&pab]));
    let want: Vec<serde_json::Value> = [&pa, &pb]
        .iter()
        .map(|x| {
            serde_json::from_str(&ok(&[
                "predict",
                "--model",
                &p("m.onnx"),
                "--input",
                x,
                "--json",
            ]))
            .unwrap()
        })
        .collect();
    for (ct, out) in [(&x2, "y2.ct"), (&xs, "ys.ct")] {
        ok(&common::infer_args(
            &plan2,
            &p("m.onnx"),
            &p("keys/eval"),
            ct,
            &p(out),
        ));
        let v: serde_json::Value = serde_json::from_str(&ok(&[
            "decrypt",
            "--keys",
            &keys,
            "--input",
            &p(out),
            "--json",
        ]))
        .unwrap();
        let results = v["results"].as_array().unwrap();
        assert_eq!(results.len(), 2);
        assert_eq!(v["class"], results[0]["class"]);
        for (r, w) in results.iter().zip(&want) {
            assert_eq!(r["class"], w["class"]);
            for (a, b) in logits(r).iter().zip(logits(w)) {
                assert!((a - b).abs() < 1e-3, "{r} vs {w}");
            }
        }
    }
    // More images than the batch, and an input of another batch.
    let e = refused(&common::encrypt_args(
        &keys,
        &plan2,
        &p("z.ct"),
        &[&pa, &pb, &pa],
    ));
    assert!(e.contains("at most 2"), "{e}");
    let plan1 = p("plan1.json");
    let x1 = p("x1.ct");
    ok(&common::encrypt_args(&keys, &plan1, &x1, &[&pa]));
    let e = refused(&common::infer_args(
        &plan2,
        &p("m.onnx"),
        &p("keys/eval"),
        &x1,
        &p("z.ct"),
    ));
    assert!(e.contains("batch"), "{e}");
    let _ = std::fs::remove_dir_all(&d);
}
