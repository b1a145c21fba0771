//! Encrypted inference end to end on a small insecure bootstrappable set:
//! keys for exactly the plan, encryption, server inference with real
//! bootstrapping, decryption; checked against the reference executor and
//! the simulator (level and scale at every step).
//!
//! Precision bound: the simulator with the engine's measured noise
//! (`tests/noise.rs`) predicts max logit errors of 5e-6 to 4e-5 on these
//! nets (measured 3e-6 to 1e-5); we assert 1e-2 of the largest logit (a
//! margin of more than 100x) and argmax agreement.

mod common;

use std::sync::Arc;

use common::*;
use runtime::Prepared;
use runtime::client::{ClientKeys, decrypt, encrypt, key_needs};
use runtime::files::EncryptedTensor;

fn params() -> Arc<ckks::Params> {
    ckks::Params::named("insecure-boot-n12-l9").unwrap()
}

fn round_trip(name: &str) {
    let p = params();
    let g = net(name, 8, 0.5, 5);
    let samples: Vec<Vec<f64>> = (0..3).map(|s| input(8, s)).collect();
    let plan = plan(&g, &p, &samples);
    // 8 channels of 8x8 fill 512 of the 2048 slots: the compiler packs
    // sparsely, and bootstraps run packed (one EvalMod).
    assert_eq!(plan.params.slots, 512, "{name}");
    // Activations are completed squares (one level), those after a skip
    // addition too (the addition scales its skip a level higher).
    assert!(
        plan.nodes
            .iter()
            .any(|n| matches!(n.op, compiler::lower::LayerOp::PolyAct { fused: true, .. })),
        "{name}"
    );
    assert!(plan.nodes.iter().any(|n| n.skip_depth == 1), "{name}");
    let prep = Prepared::new(&plan, &g, &p).unwrap();
    let needs = key_needs(&prep, &p).unwrap();
    let keys = ClientKeys::generate(&p, &needs).unwrap();
    let backend =
        runtime::server::backend(&p, &prep, keys.eval.clone(), keys.boot.clone()).unwrap();
    for s in 0..2 {
        let x = input(8, 20 + s);
        let want = reference(&g, 8, &x);
        let ct = encrypt(&plan, &p, &keys.public, &x).unwrap();
        // Through the file format, as client and server exchange it.
        let mut buf = Vec::new();
        ct.write_to(&p, &mut buf).unwrap();
        let ct = EncryptedTensor::read_from(&mut buf.as_slice(), &p).unwrap();
        let (out, stats) = runtime::server::infer(&backend, &prep, &ct, &|_| {}).unwrap();
        assert_eq!(stats.bootstraps, plan.bootstraps);
        // Every bootstrap of the plan takes its input at one level and
        // scale: one SlotsToCoeffs encoding, made once, for every image.
        assert_eq!(backend.bootstrapper().unwrap().s2c_encodings(), 1, "{name}");
        if s == 0 {
            // The default is per plan: NTT form for a bootstrap of at most
            // N/8 slots (this one: 512 of 2048), coefficients above; the
            // two give the same result, bit for bit.
            use runtime::server::{DiagonalStorage, default_storage};
            assert_eq!(default_storage(&p, 512), DiagonalStorage::Ntt);
            assert_eq!(default_storage(&p, 1024), DiagonalStorage::Coefficients);
            assert_eq!(default_storage(&p, 2048), DiagonalStorage::Coefficients);
            let coeffs = runtime::server::backend_with_storage(
                &p,
                &prep,
                keys.eval.clone(),
                keys.boot.clone(),
                DiagonalStorage::Coefficients,
            )
            .unwrap();
            let (o2, _) = runtime::server::infer(&coeffs, &prep, &ct, &|_| {}).unwrap();
            let bytes = |t: &EncryptedTensor| {
                let mut b = Vec::new();
                t.write_to(&p, &mut b).unwrap();
                b
            };
            assert!(
                bytes(&out) == bytes(&o2),
                "{name}: coefficient-form result differs"
            );
            let (a, b) = (
                backend.bootstrapper().unwrap().transform_bytes(),
                coeffs.bootstrapper().unwrap().transform_bytes(),
            );
            assert!(b * 4 < a, "{name}: transform bytes {b} vs {a}");
        }
        let got = decrypt(&p, &keys.secret, &out).unwrap();
        let scale = want.iter().fold(1e-9f64, |m, v| m.max(v.abs()));
        let err = max_err(&got, &want);
        assert!(
            err <= 1e-2 * scale,
            "{name}: error {err} (scale {scale}): {got:?} vs {want:?}"
        );
        assert_eq!(nn::exec::argmax(&got), nn::exec::argmax(&want), "{name}");
        // The simulator walked the same levels and scales.
        let (_, sim) = runtime::scaling::simulate(&prep, &p, &x).unwrap();
        assert_eq!(sim.trace.len(), stats.trace.len());
        for (i, (a, b)) in sim.trace.iter().zip(&stats.trace).enumerate() {
            assert_eq!(a.0, b.0, "{name}: level differs at step {i}");
            assert!(
                (a.1 - b.1).abs() <= 1e-9 * a.1,
                "{name}: scale differs at step {i}"
            );
        }
    }
}

#[test]
fn resnet8_encrypted_matches_reference() {
    round_trip("resnet8");
}

#[test]
fn dirac_shared8_encrypted_matches_reference() {
    round_trip("dirac-shared8");
}

/// A server's clients share one copy of bootstrapping's diagonals
/// (`runtime::server::SharedTransforms`): the second client's backend
/// encodes nothing, and its results (under its own keys) still match the
/// reference; the first client's result equals the unshared backend's bit
/// for bit.
#[test]
fn clients_share_bootstrapping_diagonals() {
    let p = params();
    let g = net("dirac-shared8", 8, 0.5, 5);
    let samples: Vec<Vec<f64>> = (0..3).map(|s| input(8, s)).collect();
    let plan = plan(&g, &p, &samples);
    let prep = Prepared::new(&plan, &g, &p).unwrap();
    let needs = key_needs(&prep, &p).unwrap();
    let shared = runtime::server::SharedTransforms::default();
    let storage = runtime::server::DEFAULT_STORAGE;
    let bytes = |t: &EncryptedTensor| {
        let mut b = Vec::new();
        t.write_to(&p, &mut b).unwrap();
        b
    };
    let mut backends = Vec::new();
    for client in 0..2 {
        let keys = ClientKeys::generate(&p, &needs).unwrap();
        let b = runtime::server::backend_shared(
            &p,
            &prep,
            keys.eval.clone(),
            keys.boot.clone(),
            storage,
            &shared,
        )
        .unwrap();
        let x = input(8, 40 + client);
        let want = reference(&g, 8, &x);
        let ct = encrypt(&plan, &p, &keys.public, &x).unwrap();
        let (out, _) = runtime::server::infer(&b, &prep, &ct, &|_| {}).unwrap();
        let got = decrypt(&p, &keys.secret, &out).unwrap();
        let scale = want.iter().fold(1e-9f64, |m, v| m.max(v.abs()));
        assert!(max_err(&got, &want) <= 1e-2 * scale, "client {client}");
        assert_eq!(nn::exec::argmax(&got), nn::exec::argmax(&want));
        if client == 0 {
            let own =
                runtime::server::backend(&p, &prep, keys.eval.clone(), keys.boot.clone()).unwrap();
            let (o2, _) = runtime::server::infer(&own, &prep, &ct, &|_| {}).unwrap();
            assert!(
                bytes(&out) == bytes(&o2),
                "shared diagonals changed the result"
            );
        }
        backends.push(b);
    }
    let (a, b) = (
        backends[0].bootstrapper().unwrap(),
        backends[1].bootstrapper().unwrap(),
    );
    assert!(a.shares_transforms_with(b));
    assert_eq!(shared.bytes(), a.transform_bytes());
}
