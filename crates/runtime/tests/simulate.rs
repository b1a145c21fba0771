//! The simulator runs calibrated plans exactly (to float rounding) like the
//! reference executor, and fails, naming the step, where CKKS would.

mod common;

use common::*;
use runtime::Prepared;
use runtime::sim::Simulator;

fn params() -> std::sync::Arc<ckks::Params> {
    ckks::Params::named("insecure-boot-n12-l9").unwrap()
}

fn check(name: &str) {
    let p = params();
    let g = net(name, 8, 0.5, 3);
    let samples: Vec<Vec<f64>> = (0..3).map(|s| input(8, s)).collect();
    let plan = plan(&g, &p, &samples);
    assert!(plan.bootstraps > 0, "{name}: the test wants bootstraps");
    let prep = Prepared::new(&plan, &g, &p).unwrap();
    for s in 0..4 {
        let x = input(8, 10 + s);
        let want = reference(&g, 8, &x);
        let (got, stats) = runtime::scaling::simulate(&prep, &p, &x).unwrap();
        let scale = want.iter().fold(1e-9f64, |m, v| m.max(v.abs()));
        assert!(
            max_err(&got, &want) <= 1e-9 * scale,
            "{name}: {got:?} vs {want:?}"
        );
        // Values beyond 1 really occur (what the scaling exists for).
        let unscaled_max = stats
            .max_abs
            .iter()
            .zip(&prep.factors)
            .filter_map(|(m, f)| m.map(|m| m * f))
            .fold(0.0, f64::max);
        assert!(
            unscaled_max > 2.0,
            "{name}: values stay below 2 ({unscaled_max})"
        );
        assert_eq!(stats.bootstraps, plan.bootstraps);
    }
}

#[test]
fn resnet8_simulation_matches_reference() {
    check("resnet8");
}

#[test]
fn dirac_shared8_simulation_matches_reference() {
    check("dirac-shared8");
}

#[test]
fn unscaled_plan_fails_at_a_named_bootstrap() {
    let p = params();
    let g = net("resnet8", 8, 0.5, 3);
    let samples: Vec<Vec<f64>> = (0..3).map(|s| input(8, s)).collect();
    let mut plan = plan(&g, &p, &samples);
    // Without the value scales, some bootstrap input exceeds the bound.
    plan.value_scales.clear();
    let prep = Prepared::new(&plan, &g, &p).unwrap();
    let err = runtime::scaling::simulate(&prep, &p, &input(8, 1))
        .unwrap_err()
        .to_string();
    assert!(err.contains("bootstrap input magnitude"), "{err}");
    assert!(err.starts_with("step "), "{err}");
}

#[test]
fn missing_rotation_key_and_too_few_levels_fail_like_ckks() {
    let p = params();
    let g = net("dirac-shared8", 8, 0.5, 3);
    let samples: Vec<Vec<f64>> = (0..2).map(|s| input(8, s)).collect();
    let plan = plan(&g, &p, &samples);
    let prep = Prepared::new(&plan, &g, &p).unwrap();
    let needs = runtime::client::key_needs(&prep, &p).unwrap();
    assert!(!needs.rotations.is_empty());
    // Drop one key: the run fails at the step that needs it.
    let mut keys: Vec<(i64, usize)> = needs.rotations.iter().map(|(&k, &l)| (k, l)).collect();
    let (gone, _) = keys.remove(keys.len() / 2);
    let sim = Simulator::new(&p)
        .with_slots(plan.params.slots)
        .with_keys(keys.clone());
    let err = runtime::scaling::simulate_with(&sim, &prep, &input(8, 0))
        .unwrap_err()
        .to_string();
    // Named like the engine names it: the step of the plan, the rotation.
    assert!(
        err.starts_with("step ") && err.contains(&format!("rotation by {gone})")),
        "{err}"
    );
    // A key one level too low is refused like the engine's KeyLevel.
    let mut low: Vec<(i64, usize)> = needs.rotations.iter().map(|(&k, &l)| (k, l)).collect();
    low[0].1 = low[0].1.saturating_sub(1);
    if needs.rotations.values().next() != Some(&0) {
        let sim = Simulator::new(&p)
            .with_slots(plan.params.slots)
            .with_keys(low);
        assert!(runtime::scaling::simulate_with(&sim, &prep, &input(8, 0)).is_err());
    }
    // With every key the same plan runs.
    let sim = Simulator::new(&p)
        .with_slots(plan.params.slots)
        .with_keys(needs.rotations.iter().map(|(&k, &l)| (k, l)));
    runtime::scaling::simulate_with(&sim, &prep, &input(8, 0)).unwrap();
}
