//! Rotation keys: per-step, powers of two, and a memory budget between
//! them (`KeyMode::Budget`), and how a rotation runs with the keys that
//! exist (`RotationKeys`).

use std::collections::BTreeSet;

use compiler::CompileError;
use compiler::params::ParamSet;
use compiler::plan::{
    CompileOptions, CompiledPlan, KeyMode, Report, RotationKeys, apply_keys, compile, naf,
};
use nn::zoo::{ZooConfig, build_random};

fn zoo(name: &str) -> nn::Graph {
    let cfg = ZooConfig::from_name(name, 3, [32, 32], 10).unwrap();
    build_random(&cfg, 3).unwrap()
}

fn with_keys(g: &nn::Graph, keys: KeyMode) -> Result<(CompiledPlan, Report), CompileError> {
    let opts = CompileOptions {
        keys,
        attribute_skips: false,
        ..CompileOptions::default()
    };
    compile(g, &ParamSet::defaults(), &opts)
}

/// The plan's keys are exactly those its steps use, and the report counts
/// them.
fn consistent(plan: &CompiledPlan, r: &Report) {
    let used: BTreeSet<i64> = plan
        .nodes
        .iter()
        .flat_map(|n| n.rotation_steps.iter().copied())
        .collect();
    assert_eq!(used.into_iter().collect::<Vec<_>>(), plan.galois_steps);
    assert_eq!(r.network_galois_keys, plan.galois_steps.len() as u64);
    let rot: u64 = plan.nodes.iter().map(|n| n.counts.all_rotations()).sum();
    assert_eq!(rot, r.rotations);
}

#[test]
fn rotations_without_a_key_run_as_their_decomposition() {
    for d in [-33i64, -1, 0, 1, 7, 31, 1000, 32767] {
        assert_eq!(naf(d).iter().sum::<i64>(), d);
        assert!(naf(d).iter().all(|p| p.unsigned_abs().is_power_of_two()));
    }
    let k = RotationKeys::only(512, [1, -1, 4, 8, 256, 3]);
    assert_eq!(k.terms(3).unwrap(), vec![3]);
    assert_eq!(k.terms(0).unwrap(), Vec::<i64>::new());
    assert_eq!(k.terms(512).unwrap(), Vec::<i64>::new());
    assert_eq!(k.terms(7).unwrap(), vec![-1, 8]);
    // Steps and terms modulo the slots: 255 = 256 - 1, -256 is 256.
    assert_eq!(k.terms(255 - 512).unwrap(), vec![-1, 256]);
    assert_eq!(k.terms(-256).unwrap(), vec![256]);
    // 6 = 8 - 2, and there is no key for -2.
    let e = k.terms(6).unwrap_err();
    assert_eq!((e.step, e.term), (6, -2));
    assert!(e.to_string().contains("rotation by 6"), "{e}");
    // Hoisted: keyed steps and first terms share the decomposition.
    let h = k.hoisted(&[0, 3, 7, 9, 4]).unwrap();
    assert_eq!(h.hoisted, vec![-1, 1, 3, 4]);
    assert_eq!(
        h.chains,
        vec![
            (0, vec![]),
            (3, vec![]),
            (-1, vec![8]),
            (1, vec![8]),
            (4, vec![])
        ]
    );
    // Every step keyed: nothing decomposed.
    let all = RotationKeys::all(512);
    assert_eq!(all.terms(7).unwrap(), vec![7]);
}

#[test]
fn per_step_counts_are_those_of_the_lowering() {
    let g = nn::transform::fold_all(&zoo("dirac-shared20")).unwrap();
    let low = compiler::lower::lower(&g, 1 << 15, (0.2, 1.0)).unwrap();
    let mut again = low.clone();
    apply_keys(&mut again, &RotationKeys::all(low.slots())).unwrap();
    assert_eq!(again, low);
}

#[test]
fn a_key_budget_is_respected_and_monotone() {
    let g = zoo("dirac-shared20");
    let (ps, all) = with_keys(&g, KeyMode::PerStep).unwrap();
    let (p2, pow2) = with_keys(&g, KeyMode::PowersOfTwo).unwrap();
    consistent(&ps, &all);
    consistent(&p2, &pow2);
    assert!(
        p2.galois_steps
            .iter()
            .all(|s| s.unsigned_abs().is_power_of_two())
    );
    assert!(pow2.network_key_bytes * 3 < all.network_key_bytes);
    assert!(pow2.rotations > all.rotations);
    assert_eq!(pow2.bootstraps, all.bootstraps);
    // Unlimited: the per-step plan.
    let (pu, unl) = with_keys(&g, KeyMode::Budget(u64::MAX)).unwrap();
    assert_eq!(pu.galois_steps, ps.galois_steps);
    assert_eq!(unl.rotations, all.rotations);
    assert_eq!(unl.network_key_bytes, all.network_key_bytes);
    // Exactly pow2's bytes: pow2's keys and rotations.
    let (pp, at) = with_keys(&g, KeyMode::Budget(pow2.network_key_bytes)).unwrap();
    assert_eq!(pp.galois_steps, p2.galois_steps);
    assert_eq!(at.rotations, pow2.rotations);
    // In between: within budget, never more rotations for more bytes.
    let (lo, hi) = (pow2.network_key_bytes, all.network_key_bytes);
    let mut last = u64::MAX;
    let mut seen = BTreeSet::new();
    for i in 0..=8 {
        let budget = lo + (hi - lo) * i / 8;
        let (plan, r) = with_keys(&g, KeyMode::Budget(budget)).unwrap();
        consistent(&plan, &r);
        assert!(
            r.network_key_bytes <= budget,
            "{} > {budget}",
            r.network_key_bytes
        );
        assert!(
            r.rotations <= last,
            "budget {budget}: {} > {last}",
            r.rotations
        );
        assert!(r.rotations >= all.rotations && r.rotations <= pow2.rotations);
        assert_eq!(r.keys, KeyMode::Budget(budget));
        assert_eq!(plan.keys, KeyMode::Budget(budget));
        // Every key is a step's own or a ±2^k term of pow2's.
        assert!(
            plan.galois_steps
                .iter()
                .all(|s| ps.galois_steps.contains(s) || p2.galois_steps.contains(s))
        );
        if i <= 4 {
            // Below half the way, every ±2^k key is still needed.
            assert!(
                p2.galois_steps
                    .iter()
                    .all(|s| plan.galois_steps.contains(s)),
                "budget {budget}"
            );
        }
        last = r.rotations;
        seen.insert(r.rotations);
    }
    assert_eq!(last, all.rotations);
    assert!(seen.len() >= 4, "{seen:?}");
    // The plan format reads back, the budget included.
    let (plan, _) = with_keys(&g, KeyMode::Budget((lo + hi) / 2)).unwrap();
    assert_eq!(CompiledPlan::from_json(&plan.to_json()).unwrap(), plan);
    assert!(plan.to_json().contains("\"budget\""));
}

#[test]
fn a_budget_below_the_powers_of_two_is_a_one_line_error() {
    let g = zoo("resnet20");
    let (_, pow2) = with_keys(&g, KeyMode::PowersOfTwo).unwrap();
    let e = with_keys(&g, KeyMode::Budget(pow2.network_key_bytes - 1)).unwrap_err();
    assert!(matches!(e, CompileError::KeyBudget(_)), "{e}");
    let m = e.to_string();
    assert!(!m.contains('\n'), "{m}");
    assert!(m.contains(&pow2.network_key_bytes.to_string()), "{m}");
    assert!(with_keys(&g, KeyMode::Budget(pow2.network_key_bytes)).is_ok());
}

#[test]
fn auto_choice_prices_the_key_mode() {
    let g = zoo("dirac-shared20");
    let auto = |keys| {
        let opts = CompileOptions {
            params: None,
            keys,
            attribute_skips: false,
            ..CompileOptions::default()
        };
        compile(&g, &ParamSet::defaults(), &opts).unwrap().1
    };
    let (a, b) = (auto(KeyMode::PerStep), auto(KeyMode::PowersOfTwo));
    assert!(b.rotations > a.rotations);
    assert!(b.candidates.iter().all(|c| c.estimated_seconds.is_some()));
}
