//! Plans, encrypted tensors and key directories are untrusted: malformed or
//! mismatched ones are refused with an error, never a panic.

mod common;

use std::sync::Arc;

use common::*;
use runtime::Prepared;
use runtime::client::{ClientKeys, encrypt, key_needs};
use runtime::files::EncryptedTensor;

fn params() -> Arc<ckks::Params> {
    ckks::Params::named("insecure-n12").unwrap()
}

/// A small net without bootstraps (fits insecure-n12's 6 levels): conv,
/// activation, pool, dense.
fn small() -> nn::Graph {
    use nn::graph::{Conv2d, Dense, Pads, PolyAct};
    use nn::{Graph, Node, Op, Tensor};
    let t = |shape: Vec<usize>, seed: usize| {
        let n: usize = shape.iter().product();
        Tensor::new(
            shape,
            (0..n)
                .map(|i| ((i + 31 * seed) as f64 * 0.618).fract() - 0.5)
                .collect(),
        )
        .unwrap()
    };
    let mut g = Graph::new("small", "x", vec![1, 8, 8]);
    g.push(Node::new(
        "conv",
        Op::Conv2d(Conv2d {
            weight: t(vec![4, 1, 3, 3], 1),
            bias: Some(t(vec![4], 2)),
            stride: [1, 1],
            pads: Pads::uniform(1),
        }),
        vec!["x".into()],
        "c",
    ));
    g.push(Node::new(
        "act",
        Op::PolyAct(PolyAct {
            coeffs: vec![0.1, 1.0, 0.5],
            range: [-3.0, 3.0],
        }),
        vec!["c".into()],
        "a",
    ));
    g.push(Node::new("pool", Op::GlobalAvgPool, vec!["a".into()], "p"));
    g.push(Node::new("flat", Op::Flatten, vec!["p".into()], "f"));
    g.push(Node::new(
        "fc",
        Op::Dense(Dense {
            weight: t(vec![10, 4], 3),
            bias: Some(t(vec![10], 4)),
        }),
        vec!["f".into()],
        "y",
    ));
    g.output = "y".into();
    g
}

fn setup() -> (Arc<ckks::Params>, nn::Graph, compiler::CompiledPlan) {
    let p = params();
    let g = small();
    let samples: Vec<Vec<f64>> = (0..2).map(|s| input(8, s)).collect();
    let plan = plan(&g, &p, &samples);
    (p, g, plan)
}

#[test]
fn leveled_encrypted_inference_matches_reference() {
    let (p, g, plan) = setup();
    assert_eq!(plan.bootstraps, 0);
    let prep = Prepared::new(&plan, &g, &p).unwrap();
    let needs = key_needs(&prep, &p).unwrap();
    let keys = ClientKeys::generate(&p, &needs).unwrap();
    let backend = runtime::server::backend(&p, &prep, keys.eval.clone(), None).unwrap();
    let x = input(8, 9);
    let ct = encrypt(&plan, &p, &keys.public, &x).unwrap();
    let (out, _) = runtime::server::infer(&backend, &prep, &ct, &|_| {}).unwrap();
    let got = runtime::client::decrypt(&p, &keys.secret, &out).unwrap();
    let want = reference(&g, 8, &x);
    let scale = want.iter().fold(1e-9f64, |m, v| m.max(v.abs()));
    assert!(max_err(&got, &want) <= 1e-4 * scale, "{got:?} vs {want:?}");
}

#[test]
fn plans_for_another_model_or_set_or_malformed_are_refused() {
    let (p, g, plan) = setup();
    // Another model (one weight changed): hash mismatch.
    let mut g2 = g.clone();
    if let nn::Op::Dense(d) = &mut g2.nodes.last_mut().unwrap().op {
        d.weight.data[0] += 1.0;
    }
    let e = Prepared::new(&plan, &g2, &p).unwrap_err().to_string();
    assert!(e.contains("model"), "{e}");
    // Another parameter set.
    let other = ckks::Params::named("insecure-n10").unwrap();
    assert!(Prepared::new(&plan, &g, &other).is_err());
    // Out-of-order input index, bad level, bad layout, bad depth, bad scales.
    type Edit = Box<dyn Fn(&mut compiler::CompiledPlan)>;
    let cases: Vec<Edit> = vec![
        Box::new(|pl| pl.nodes[1].inputs = vec![5]),
        Box::new(|pl| pl.nodes[1].level_in = 99),
        Box::new(|pl| pl.nodes[1].layout_out.slots = 3),
        Box::new(|pl| pl.nodes[1].layout_out.channels = usize::MAX),
        Box::new(|pl| pl.nodes[1].depth = 7),
        Box::new(|pl| pl.value_scales.pop().map(|_| ()).unwrap_or(())),
        Box::new(|pl| pl.value_scales[0] = f64::NAN),
        Box::new(|pl| pl.nodes.clear()),
        Box::new(|pl| pl.version = 1),
        Box::new(|pl| pl.galois_steps.push(i64::MIN)),
        Box::new(|pl| pl.nodes[2].bootstrap = true),
        // Slot counts: not a power of two, above N/2, or another count than
        // the layouts' (sparse packing is a plan-wide choice).
        Box::new(|pl| pl.params.slots = 3),
        Box::new(|pl| pl.params.slots = 1 << 40),
        Box::new(|pl| pl.params.slots *= 2),
    ];
    for (i, f) in cases.iter().enumerate() {
        let mut bad = plan.clone();
        f(&mut bad);
        assert!(Prepared::new(&bad, &g, &p).is_err(), "case {i} accepted");
    }
    // Truncated or garbled JSON.
    let json = plan.to_json();
    assert!(compiler::CompiledPlan::from_json(&json[..json.len() / 2]).is_err());
    assert!(compiler::CompiledPlan::from_json("").is_err());
}

/// Completed squares (`LayerOp::PolyAct::fused`) are checked: the flag
/// and the depth agree, the square reads an unbootstrapped linear step
/// nothing else reads, only an addition a square reads scales its skip,
/// and the model's activation is a quadratic.
#[test]
fn fused_squares_that_do_not_hold_together_are_refused() {
    use compiler::lower::LayerOp;
    let (p, g, plan) = setup();
    let act = plan
        .nodes
        .iter()
        .position(|n| matches!(n.op, LayerOp::PolyAct { fused: true, .. }))
        .expect("the conv -> quadratic pair is fused");
    assert_eq!(plan.nodes[act].depth, 1);
    let conv = plan.nodes[act].inputs[0];
    let unfuse = move |pl: &mut compiler::CompiledPlan| {
        if let LayerOp::PolyAct { fused, .. } = &mut pl.nodes[act].op {
            *fused = false;
        }
    };
    type Edit = Box<dyn Fn(&mut compiler::CompiledPlan)>;
    let cases: Vec<Edit> = vec![
        // Unfused at depth 1, fused at depth 2.
        Box::new(unfuse),
        Box::new(move |pl| pl.nodes[act].depth = 2),
        // The linear step's value bootstrapped, or read by another step.
        Box::new(move |pl| pl.nodes[conv].bootstrap = true),
        Box::new(move |pl| {
            let mut extra = pl.nodes[act].clone();
            extra.name = "second".into();
            pl.nodes.insert(act + 1, extra);
        }),
        // A skip scaled where nothing supplies the multiplier.
        Box::new(move |pl| pl.nodes[conv].skip_depth = 1),
        // A fused step that is not a quadratic.
        Box::new(move |pl| {
            if let LayerOp::PolyAct { degree, .. } = &mut pl.nodes[act].op {
                *degree = 3;
            }
        }),
    ];
    for (i, f) in cases.iter().enumerate() {
        let mut bad = plan.clone();
        f(&mut bad);
        let e = Prepared::new(&bad, &g, &p)
            .err()
            .unwrap_or_else(|| panic!("case {i} accepted"))
            .to_string();
        assert!(!e.contains('\n'), "case {i}: {e}");
    }
    // A model whose activation no longer completes to a square (no x^2
    // term), the plan's model binding removed so that only the square's
    // check stands between them.
    let mut flat = g.clone();
    for n in &mut flat.nodes {
        if let nn::Op::PolyAct(a) = &mut n.op {
            a.coeffs[2] = 0.0;
        }
    }
    let mut unbound = plan.clone();
    unbound.model_hash.clear();
    let e = Prepared::new(&unbound, &flat, &p).unwrap_err().to_string();
    assert!(e.contains("square") && !e.contains('\n'), "{e}");
}

#[test]
fn encrypted_tensors_truncated_flipped_or_mismatched_are_refused() {
    let (p, g, plan) = setup();
    let prep = Prepared::new(&plan, &g, &p).unwrap();
    let needs = key_needs(&prep, &p).unwrap();
    let keys = ClientKeys::generate(&p, &needs).unwrap();
    let ct = encrypt(&plan, &p, &keys.public, &input(8, 1)).unwrap();
    let mut buf = Vec::new();
    ct.write_to(&p, &mut buf).unwrap();
    assert!(EncryptedTensor::read_from(&mut buf.as_slice(), &p).is_ok());
    for cut in [0, 3, 11, 40, buf.len() / 2, buf.len() - 1] {
        assert!(
            EncryptedTensor::read_from(&mut &buf[..cut], &p).is_err(),
            "cut {cut}"
        );
    }
    let mut extra = buf.clone();
    extra.push(0);
    assert!(EncryptedTensor::read_from(&mut extra.as_slice(), &p).is_err());
    // Flipped bytes in the header, metadata and ciphertext bodies: refused
    // or, where the flip lands in a coefficient, a valid ciphertext.
    for pos in (0..buf.len()).step_by(buf.len() / 97 + 1) {
        let mut b = buf.clone();
        b[pos] ^= 0x5a;
        let _ = EncryptedTensor::read_from(&mut b.as_slice(), &p);
    }
    // Another set's reader refuses it.
    let other = ckks::Params::named("insecure-n10").unwrap();
    assert!(EncryptedTensor::read_from(&mut buf.as_slice(), &other).is_err());
    // An input made for another plan is refused by the server.
    let backend = runtime::server::backend(&p, &prep, keys.eval.clone(), None).unwrap();
    let mut wrong = EncryptedTensor::read_from(&mut buf.as_slice(), &p).unwrap();
    wrong.meta.plan_hash = "00".repeat(32);
    assert!(runtime::server::infer(&backend, &prep, &wrong, &|_| {}).is_err());
}

#[test]
fn key_directories_with_a_secret_or_garbage_are_refused() {
    let (p, g, plan) = setup();
    let prep = Prepared::new(&plan, &g, &p).unwrap();
    let needs = key_needs(&prep, &p).unwrap();
    let keys = ClientKeys::generate(&p, &needs).unwrap();
    let dir = std::env::temp_dir().join(format!("residue-keys-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    keys.save(&p, &dir).unwrap();
    let eval = dir.join("eval");
    assert!(runtime::client::load_eval_keys(&p, &eval).is_ok());
    assert!(runtime::client::load_client_keys(&p, &dir).is_ok());
    // The whole key directory where `eval/` is meant: the error names it.
    let e = match runtime::client::load_eval_keys(&p, &dir) {
        Ok(_) => panic!("a client key directory was read as evaluation keys"),
        Err(e) => e.to_string(),
    };
    assert!(e.contains(&format!("pass {}", eval.display())), "{e}");
    // A secret key in the server's directory is refused.
    std::fs::copy(dir.join("secret.key"), eval.join("oops.key")).unwrap();
    let e = match runtime::client::load_eval_keys(&p, &eval) {
        Ok(_) => panic!("a secret key was accepted"),
        Err(e) => e.to_string(),
    };
    assert!(e.contains("secret key"), "{e}");
    std::fs::remove_file(eval.join("oops.key")).unwrap();
    // A second file of evaluation keys: which one would be used depends on
    // the directory's order, so both are refused.
    std::fs::copy(eval.join("eval.keys"), eval.join("copy.keys")).unwrap();
    let e = match runtime::client::load_eval_keys(&p, &eval) {
        Ok(_) => panic!("two evaluation key files were accepted"),
        Err(e) => e.to_string(),
    };
    assert!(e.contains("same kind of keys"), "{e}");
    std::fs::remove_file(eval.join("copy.keys")).unwrap();
    // Truncated and garbage key files.
    let ek = std::fs::read(eval.join("eval.keys")).unwrap();
    std::fs::write(eval.join("eval.keys"), &ek[..ek.len() / 3]).unwrap();
    assert!(runtime::client::load_eval_keys(&p, &eval).is_err());
    // Bytes appended after the keys.
    let mut long = ek.clone();
    long.extend_from_slice(&[7; 100]);
    std::fs::write(eval.join("eval.keys"), &long).unwrap();
    let e = match runtime::client::load_eval_keys(&p, &eval) {
        Ok(_) => panic!("keys with trailing bytes were accepted"),
        Err(e) => e.to_string(),
    };
    assert!(e.contains("trailing bytes"), "{e}");
    std::fs::write(eval.join("eval.keys"), b"not a key").unwrap();
    assert!(runtime::client::load_eval_keys(&p, &eval).is_err());
    // A public key with two coefficients swapped (each still below its
    // prime: a well-formed key) is not the secret key's.
    let pk = std::fs::read(dir.join("public.key")).unwrap();
    let body = 16 + pk[15] as usize + 4;
    let mut swapped = pk.clone();
    swapped[body..body + 8].copy_from_slice(&pk[body + 8..body + 16]);
    swapped[body + 8..body + 16].copy_from_slice(&pk[body..body + 8]);
    assert_ne!(swapped, pk);
    std::fs::write(dir.join("public.key"), &swapped).unwrap();
    // ... refused by the key id keygen wrote, and without it by the pair
    // check (keys made before key ids).
    let e = match runtime::client::load_client_keys(&p, &dir) {
        Ok(_) => panic!("a public key not hashing to key.id was accepted"),
        Err(e) => e.to_string(),
    };
    assert!(e.contains("not the public key of key pair"), "{e}");
    let id = std::fs::read(dir.join("key.id")).unwrap();
    std::fs::remove_file(dir.join("key.id")).unwrap();
    let e = match runtime::client::load_client_keys(&p, &dir) {
        Ok(_) => panic!("a public key of another secret was accepted"),
        Err(e) => e.to_string(),
    };
    assert!(e.contains("not a key pair"), "{e}");
    std::fs::write(dir.join("key.id"), &id).unwrap();
    std::fs::write(dir.join("public.key"), &pk).unwrap();
    assert!(runtime::client::load_client_keys(&p, &dir).is_ok());
    std::fs::write(dir.join("secret.key"), b"").unwrap();
    assert!(runtime::client::load_client_keys(&p, &dir).is_err());
    let _ = std::fs::remove_dir_all(&dir);
}
