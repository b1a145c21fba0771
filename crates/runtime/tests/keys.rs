//! Plans compiled under a rotation-key mode other than per-step (a memory
//! budget, powers of two) run: a rotation without a key runs as its
//! decomposition, keygen makes exactly the plan's `galois_steps`, and a run
//! does exactly the rotations the plan estimates. Insecure test set only.

mod common;

use std::sync::Arc;

use common::*;
use compiler::plan::{KeyMode, Report};
use runtime::Prepared;
use runtime::client::{ClientKeys, decrypt, encrypt, key_needs};
use runtime::sim::Simulator;

fn params() -> Arc<ckks::Params> {
    ckks::Params::named("insecure-boot-n12-l9").unwrap()
}

fn samples() -> Vec<Vec<f64>> {
    (0..3).map(|s| input(8, s)).collect()
}

/// A budget a quarter of the way from the powers of two to per-step keys.
fn small_budget(g: &nn::Graph, p: &Arc<ckks::Params>) -> (u64, Report, Report) {
    let (_, per) = plan_with_keys(g, p, &samples(), KeyMode::PerStep);
    let (_, pow2) = plan_with_keys(g, p, &samples(), KeyMode::PowersOfTwo);
    let (lo, hi) = (pow2.network_key_bytes, per.network_key_bytes);
    assert!(lo < hi);
    (lo + (hi - lo) / 4, per, pow2)
}

#[test]
fn key_modes_run_as_planned_on_the_simulator() {
    let p = params();
    for name in ["dirac-shared8", "resnet8"] {
        let g = net(name, 8, 0.5, 5);
        let (budget, per, pow2) = small_budget(&g, &p);
        assert!(pow2.rotations > per.rotations, "{name}");
        let x = input(8, 1);
        let want = reference(&g, 8, &x);
        let mut rotations = Vec::new();
        for mode in [
            KeyMode::PerStep,
            KeyMode::Budget(budget),
            KeyMode::PowersOfTwo,
        ] {
            let (plan, report) = plan_with_keys(&g, &p, &samples(), mode);
            assert!(report.network_key_bytes <= budget || mode == KeyMode::PerStep);
            let prep = Prepared::new(&plan, &g, &p).unwrap();
            // Keygen makes exactly the plan's keys, at the levels it counted.
            let needs = key_needs(&prep, &p).unwrap();
            let made: Vec<i64> = needs.rotations.keys().copied().collect();
            assert_eq!(made, plan.galois_steps, "{name} {mode}");
            assert_eq!(needs.network_key_bytes(&p), report.network_key_bytes);
            // With only those keys, the run does the rotations estimated.
            let sim = Simulator::new(&p)
                .with_slots(plan.params.slots)
                .with_keys(needs.rotations.iter().map(|(&k, &l)| (k, l)));
            let (got, stats) = runtime::scaling::simulate_with(&sim, &prep, &x).unwrap();
            assert_eq!(stats.rotations, report.rotations, "{name} {mode}");
            let scale = want.iter().fold(1e-9f64, |m, v| m.max(v.abs()));
            assert!(max_err(&got, &want) <= 1e-6 * scale, "{name} {mode}");
            rotations.push(report.rotations);
        }
        assert!(
            rotations.windows(2).all(|w| w[0] <= w[1]),
            "{name}: {rotations:?}"
        );
    }
}

/// Batched plans: steps are multiples of the batch, and so are the terms
/// of their decompositions.
#[test]
fn batched_plans_decompose_too() {
    let p = params();
    let g = net("dirac-shared8", 8, 0.5, 5);
    let xs: Vec<Vec<f64>> = (0..4).map(|s| input(8, 30 + s)).collect();
    for mode in [KeyMode::PowersOfTwo, KeyMode::Budget(u64::MAX)] {
        let (plan, report) =
            plan_with_keys_batched(&g, &p, &samples(), mode, compiler::plan::Batch::Fixed(4));
        assert_eq!(plan.batch(), 4);
        assert!(plan.galois_steps.iter().all(|s| s % 4 == 0), "{mode}");
        let prep = Prepared::new(&plan, &g, &p).unwrap();
        let needs = key_needs(&prep, &p).unwrap();
        let made: Vec<i64> = needs.rotations.keys().copied().collect();
        assert_eq!(made, plan.galois_steps, "{mode}");
        let sim = Simulator::new(&p)
            .with_slots(plan.params.slots)
            .with_keys(needs.rotations.iter().map(|(&k, &l)| (k, l)));
        let (got, stats) = runtime::scaling::simulate_batch_with(&sim, &prep, &xs).unwrap();
        assert_eq!(stats.rotations, report.rotations, "{mode}");
        for (x, y) in xs.iter().zip(&got) {
            let want = reference(&g, 8, x);
            let scale = want.iter().fold(1e-9f64, |m, v| m.max(v.abs()));
            assert!(max_err(y, &want) <= 1e-6 * scale, "{mode}");
        }
    }
}

#[test]
fn a_plan_within_a_small_key_budget_runs_encrypted() {
    let p = params();
    let g = net("dirac-shared8", 8, 0.5, 5);
    let (budget, per, _) = small_budget(&g, &p);
    let (plan, report) = plan_with_keys(&g, &p, &samples(), KeyMode::Budget(budget));
    assert!(report.network_key_bytes <= budget);
    // Some rotations run as decompositions.
    assert!(report.rotations > per.rotations);
    let prep = Prepared::new(&plan, &g, &p).unwrap();
    let needs = key_needs(&prep, &p).unwrap();
    assert_eq!(needs.network_key_bytes(&p), report.network_key_bytes);
    let keys = ClientKeys::generate(&p, &needs).unwrap();
    // What keygen made is what the budget bounded and the report counted
    // (session 11 counted network keys bootstrapping also holds at the
    // network's levels: the plan for 100 MB made 259 MB of keys).
    assert!(plan.bootstraps > 0);
    let sizes = keys.sizes(&p, &needs);
    assert_eq!(sizes.galois_network, report.network_key_bytes);
    assert!(sizes.galois_network <= budget);
    assert!(report.galois_keys_exact);
    assert!(report.network_shared_keys > 0);
    assert_eq!(sizes.galois_keys, report.galois_keys);
    assert_eq!(
        sizes.galois_network + sizes.galois_bootstrap,
        report.galois_key_bytes
    );
    let backend =
        runtime::server::backend(&p, &prep, keys.eval.clone(), keys.boot.clone()).unwrap();
    let x = input(8, 20);
    let want = reference(&g, 8, &x);
    let ct = encrypt(&plan, &p, &keys.public, &x).unwrap();
    let (out, stats) = runtime::server::infer(&backend, &prep, &ct, &|_| {}).unwrap();
    assert_eq!(stats.bootstraps, plan.bootstraps);
    assert_eq!(stats.rotations, report.rotations);
    let got = decrypt(&p, &keys.secret, &out).unwrap();
    // The bound of `tests/encrypted.rs`.
    let scale = want.iter().fold(1e-9f64, |m, v| m.max(v.abs()));
    let err = max_err(&got, &want);
    assert!(err <= 1e-2 * scale, "error {err} (scale {scale})");
    assert_eq!(nn::exec::argmax(&got), nn::exec::argmax(&want));
}

#[test]
fn a_missing_decomposition_key_is_a_clear_error() {
    let p = params();
    let g = net("dirac-shared8", 8, 0.5, 5);
    let (plan, _) = plan_with_keys(&g, &p, &samples(), KeyMode::PowersOfTwo);
    let prep = Prepared::new(&plan, &g, &p).unwrap();
    let needs = key_needs(&prep, &p).unwrap();
    // A key every decomposition of an odd step starts from.
    let gone = *plan
        .galois_steps
        .iter()
        .find(|s| s.abs() == 1)
        .expect("a ±1 key");
    // The plan lacks it: keygen (which runs the plan on the simulator)
    // names the step, the rotation and the missing term.
    let mut bad = plan.clone();
    bad.galois_steps.retain(|&s| s != gone);
    let prep_bad = Prepared::new(&bad, &g, &p).unwrap();
    let err = key_needs(&prep_bad, &p).unwrap_err().to_string();
    assert!(
        err.starts_with("step ")
            && err.contains("has no Galois key")
            && err.contains(&format!("needs one for {gone}"))
            && err.contains("galois_steps"),
        "{err}"
    );
    assert!(!err.contains('\n'), "{err}");
    // The server's keys lack it: the run fails at the step that needs it,
    // naming the rotation.
    let sim = Simulator::new(&p).with_slots(plan.params.slots).with_keys(
        needs
            .rotations
            .iter()
            .filter(|&(&k, _)| k != gone)
            .map(|(&k, &l)| (k, l)),
    );
    let err = runtime::scaling::simulate_with(&sim, &prep, &input(8, 0))
        .unwrap_err()
        .to_string();
    assert!(
        err.starts_with("step ") && err.contains(&format!("rotation by {gone}")),
        "{err}"
    );
}

/// At the 128-bit set, without generating keys (gigabytes): the report's
/// Galois key count and bytes are those of the keys keygen would make, the
/// network's keys plus bootstrapping's for the plan's slots, one per Galois
/// element at the higher level (`ClientKeys::generate` merges them so).
#[test]
fn n16_boot_key_totals_are_what_keygen_makes() {
    let p = ckks::Params::named("n16-boot").unwrap();
    let set = runtime::paramset::param_set(&p);
    // A damped activation: twenty layers of the amplifying test nets
    // overflow.
    let mut cfg = nn::zoo::ZooConfig::from_name("dirac-shared20", 1, [28, 28], 10).unwrap();
    cfg.width = 0.5;
    cfg.act = nn::graph::PolyAct {
        coeffs: vec![0.0, 0.5, 0.05],
        range: [-4.0, 4.0],
    };
    let g = nn::zoo::build_random(&cfg, 5).unwrap();
    for mode in [KeyMode::PerStep, KeyMode::PowersOfTwo] {
        let (plan, report) = plan_with_keys(&g, &p, &[input(28, 1)], mode);
        assert!(plan.bootstraps > 0 && report.galois_keys_exact);
        let prep = Prepared::new(&plan, &g, &p).unwrap();
        let needs = key_needs(&prep, &p).unwrap();
        assert_eq!(needs.network_key_bytes(&p), report.network_key_bytes);
        let cfg = runtime::prepare::bootstrap_config(&p, needs.slots).unwrap();
        let mut all: std::collections::BTreeMap<u64, usize> =
            ckks::bootstrap::galois_levels(&p, &cfg)
                .into_iter()
                .collect();
        let boot_keys = all.len();
        for (&k, &l) in &needs.rotations {
            let e = all.entry(ckks::keys::rotation_element(&p, k)).or_insert(l);
            *e = (*e).max(l);
        }
        let shared = boot_keys + needs.rotations.len() - all.len();
        assert_eq!(shared as u64, report.network_shared_keys, "{mode}");
        assert_eq!(all.len() as u64, report.galois_keys, "{mode}");
        let bytes: u64 = all
            .values()
            .map(|&l| set.galois_key_bytes_at(l as u32))
            .sum();
        assert_eq!(bytes, report.galois_key_bytes, "{mode}");
    }
}
