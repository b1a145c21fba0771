//! The multiplication counts of polynomial evaluation: what
//! [`Chebyshev::plan`] and [`PowerSeries::plan`] say is what
//! `eval_chebyshev` and `eval_power` do, counted by the kernel profile
//! (one `tensor` call per ciphertext-ciphertext product). The profile is
//! process-wide, so this file holds a single test (its own process).

mod common;
use ckks::bootstrap;
use ckks::polyeval::depth;
use ckks::profile::{self, Kernel};
use ckks::*;
use common::*;

/// Ciphertext products and relinearizations (key switches) made by `f`.
fn counted(f: impl FnOnce()) -> (u64, u64) {
    profile::reset();
    profile::set_enabled(true);
    f();
    profile::set_enabled(false);
    let snap = profile::snapshot();
    let calls = |k: Kernel| snap.iter().find(|s| s.0 == k).map_or(0, |s| s.2);
    (calls(Kernel::Tensor), calls(Kernel::ModUp))
}

#[test]
fn plans_count_the_multiplications_evaluation_makes() {
    let c = Ctx::new("insecure-n12", &[]);
    let xs: Vec<Complex64> = values(c.slots(), 3)
        .iter()
        .map(|z| Complex64::new(z.re.clamp(-1.0, 1.0), 0.0))
        .collect();
    let ct = c.encrypt(&xs);
    let normalized = PolyEvalOptions {
        input_normalized: true,
        ..Default::default()
    };
    let slow = |i: usize| 1.0 / (i as f64 + 1.5);
    let mixed = |d: usize| Chebyshev::from_coeffs(-1.0, 1.0, (0..=d).map(slow).collect()).unwrap();
    // (name, polynomial, products, relinearizations). Before this change
    // (largest-power-of-two splits only, products minimized, EvalMod's
    // cosine interpolated unshifted): mixed degree 31 and the EvalMod
    // polynomial 13 products and 10 relinearizations (the n16-boot profile
    // in docs/data/boot16-s10-t1.json: 26 relinearizations in two EvalMods,
    // 3 each for the double angles), odd degree 31 12 and 11, mixed degree
    // 16 8, even 16 6, mixed 8 5, mixed 4 3.
    let evalmod = bootstrap::evalmod_polynomial(
        &bootstrap::config_for(&Params::named("n16-boot").unwrap()).unwrap(),
    )
    .unwrap();
    assert_eq!(evalmod.parity(), Parity::Even);
    assert_eq!(evalmod.degree(), 30);
    assert_eq!(depth(evalmod.degree()), depth(31));
    let cheb: Vec<(&str, Chebyshev, usize, usize)> = vec![
        ("mixed degree 31", mixed(31), 13, 10),
        ("EvalMod (even degree 30)", evalmod, 9, 8),
        ("even degree 30", mixed(30).with_parity(Parity::Even), 9, 8),
        ("odd degree 31", mixed(31).with_parity(Parity::Odd), 13, 10),
        ("mixed degree 16", mixed(16), 7, 6),
        ("even degree 16", mixed(16).with_parity(Parity::Even), 5, 5),
        ("mixed degree 8", mixed(8), 4, 4),
        ("mixed degree 4", mixed(4), 2, 2),
        ("mixed degree 3", mixed(3), 2, 2),
        ("mixed degree 2", mixed(2), 1, 1),
    ];
    for (name, p, products, relinearizations) in cheb {
        let plan = p.plan(&normalized).unwrap();
        let (mults, relins) = counted(|| {
            let out = c.eval.eval_chebyshev(&ct, &p, &normalized).unwrap();
            assert_eq!(out.level(), ct.level() - plan.depth, "{name}");
        });
        eprintln!("{name}: {plan:?}, {mults} products, {relins} relinearizations");
        assert_eq!(mults as usize, plan.ct_mults, "{name}: plan {plan:?}");
        assert_eq!(relins as usize, plan.relins, "{name}: plan {plan:?}");
        assert_eq!(
            (plan.ct_mults, plan.relins),
            (products, relinearizations),
            "{name}"
        );
    }
    // Trained activations: power series of degree 2 to 4 (products before
    // this change, now); degree 4 is low + x^2 (a + b x + c x^2) now.
    let power: [(&[f64], usize, usize); 4] = [
        (&[0.125, 0.5, 0.25], 1, 1),
        (&[0.1, 0.5, 0.25, -0.05], 2, 2),
        (&[0.05, 0.5, 0.4, -0.1, 0.03], 3, 2),
        (&[0.0, 0.0, 0.0, 0.0, 1.0], 2, 2),
    ];
    for (coeffs, before, now) in power {
        let p = PowerSeries::new(coeffs.to_vec()).unwrap();
        let plan = p.plan(&PolyEvalOptions::default()).unwrap();
        let (mults, relins) = counted(|| {
            c.eval
                .eval_power(&ct, &p, &PolyEvalOptions::default())
                .unwrap();
        });
        eprintln!("power {coeffs:?}: {plan:?}, {mults} products (was {before})");
        assert_eq!(mults as usize, plan.ct_mults, "{coeffs:?}");
        assert_eq!(relins as usize, plan.relins, "{coeffs:?}");
        assert_eq!(plan.ct_mults, now, "{coeffs:?}");
        assert_eq!(plan.relins, now, "{coeffs:?}");
        assert_eq!(plan.depth, depth(p.degree()));
    }
}
