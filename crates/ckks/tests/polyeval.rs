//! Polynomial evaluation: Chebyshev interpolation in plaintext, and
//! homomorphic Chebyshev and power-basis evaluation against plain
//! arithmetic, with levels and scales checked exactly.
//!
//! insecure-n12: N = 2^12, 6 levels at scale 2^45. Homomorphic error is
//! measured against the same polynomial evaluated in f64 on the same inputs
//! (the approximation error is asserted separately, in plaintext).

mod common;
use ckks::polyeval::{PolyPlan, depth};
use ckks::*;
use common::*;
use proptest::prelude::*;
use std::f64::consts::PI;
use std::sync::OnceLock;

fn ctx() -> &'static Ctx {
    static C: OnceLock<Ctx> = OnceLock::new();
    C.get_or_init(|| Ctx::new("insecure-n12", &[]))
}

/// Homomorphic minus plain evaluation of the same polynomial on the
/// decrypted input (so that the input's own encryption noise, which the
/// polynomial's slope amplifies, is not counted), for inputs in its interval
/// and coefficient sums of a few units, at scale 2^45
/// (measured: 1e-9 to 1.1e-8, i.e. 2^-30 to 2^-26.5; see each test's output
/// with `--nocapture`).
const HE_ERR: f64 = 1.0 / (1u64 << 22) as f64;

fn sigmoid(x: f64) -> f64 {
    1.0 / (1.0 + (-x).exp())
}

/// A smooth ReLU: (x + sqrt(x^2 + eps)) / 2.
fn smooth_relu(x: f64) -> f64 {
    (x + (x * x + 0.01).sqrt()) / 2.0
}

/// Deterministic real points spread over [a, b] (ends included).
fn points(n: usize, a: f64, b: f64, seed: u64) -> Vec<f64> {
    values(n, seed)
        .iter()
        .enumerate()
        .map(|(i, v)| match i {
            0 => a,
            1 => b,
            _ => a + (b - a) * (v.re * std::f64::consts::SQRT_2 + 1.0) / 2.0,
        })
        .map(|x| x.clamp(a, b))
        .collect()
}

/// A polynomial evaluated in plain complex arithmetic, so that the
/// reference sees the input's imaginary noise as the ciphertext does: a
/// polynomial of slope |p'| turns input noise iε into output error |p'|ε,
/// which is encryption noise, not evaluation error, and with non-decaying
/// coefficients (|p'(±1)| ~ 10^3) it made a comparison on the real parts
/// alone fail at random (2^-20.8 at degree 30 in one CI run).
trait PlainAt {
    fn at(&self, z: Complex64) -> Complex64;
}

impl PlainAt for Chebyshev {
    /// Clenshaw's recurrence on u = (2z - a - b) / (b - a).
    fn at(&self, z: Complex64) -> Complex64 {
        let (a, b) = self.interval();
        let u = (2.0 * z - (a + b)) / (b - a);
        let (mut b1, mut b2) = (Complex64::new(0.0, 0.0), Complex64::new(0.0, 0.0));
        for &ck in self.coeffs().iter().skip(1).rev() {
            let b0 = 2.0 * u * b1 - b2 + ck;
            b2 = b1;
            b1 = b0;
        }
        u * b1 - b2 + self.coeffs()[0]
    }
}

impl PlainAt for PowerSeries {
    /// Horner's rule.
    fn at(&self, z: Complex64) -> Complex64 {
        self.coeffs()
            .iter()
            .rev()
            .fold(Complex64::new(0.0, 0.0), |acc, &ck| acc * z + ck)
    }
}

/// `p` on what the ciphertext really holds (its decrypted slots, complex).
fn plain_on(c: &Ctx, ct: &Ciphertext, p: &impl PlainAt) -> Vec<Complex64> {
    c.decrypt(ct).iter().map(|&z| p.at(z)).collect()
}

/// max |got - want| over complex slots.
fn max_dev(got: &[Complex64], want: &[Complex64]) -> f64 {
    got.iter()
        .zip(want)
        .map(|(g, w)| (g - w).norm())
        .fold(0.0, f64::max)
}

fn encrypt_real(c: &Ctx, xs: &[f64], level: usize) -> Ciphertext {
    let v: Vec<Complex64> = xs.iter().map(|&x| Complex64::new(x, 0.0)).collect();
    let ct = c.encrypt(&v);
    c.eval.drop_level(&ct, level).unwrap()
}

/// max |got - want| over the real parts, and the largest imaginary part.
fn max_err(got: &[Complex64], want: &[f64]) -> f64 {
    got.iter()
        .zip(want)
        .map(|(g, w)| (g.re - w).abs().max(g.im.abs()))
        .fold(0.0, f64::max)
}

struct Outcome {
    /// Homomorphic vs plain evaluation of the polynomial.
    he_err: f64,
    /// Homomorphic vs the function.
    total_err: f64,
}

/// Evaluates `p` homomorphically on points of [a, b] (given to the
/// ciphertext as u in [-1, 1] if `normalized`), checking level and scale.
fn run_cheb(
    p: &Chebyshev,
    f: impl Fn(f64) -> f64,
    opts: &PolyEvalOptions,
    level: usize,
    seed: u64,
) -> Outcome {
    let c = ctx();
    let (a, b) = p.interval();
    let xs = points(c.slots(), a, b, seed);
    let input: Vec<f64> = if opts.input_normalized {
        let (alpha, beta) = p.normalization();
        xs.iter().map(|x| alpha * x + beta).collect()
    } else {
        xs.clone()
    };
    let ct = encrypt_real(c, &input, level);
    let out = c.eval.eval_chebyshev(&ct, p, opts).unwrap();
    let d = p.depth(opts.input_normalized);
    assert_eq!(out.level(), level - d, "output level");
    assert_eq!(
        out.scale(),
        opts.output_scale.unwrap_or(ct.scale()),
        "scale"
    );
    let plan = p.plan(opts).unwrap();
    assert_eq!(plan.depth, d);
    let got = c.decrypt(&out);
    let (alpha, beta) = p.normalization();
    let plain: Vec<Complex64> = c
        .decrypt(&ct)
        .iter()
        .map(|&u| {
            p.at(if opts.input_normalized {
                (u - beta) / alpha
            } else {
                u
            })
        })
        .collect();
    let truth: Vec<f64> = xs.iter().map(|&x| f(x)).collect();
    Outcome {
        he_err: max_dev(&got, &plain),
        total_err: max_err(&got, &truth),
    }
}

#[test]
fn depth_is_ceil_log2_degree_plus_one() {
    let want = [
        (0, 0),
        (1, 1),
        (2, 2),
        (3, 2),
        (4, 3),
        (7, 3),
        (8, 4),
        (31, 5),
        (32, 6),
        (63, 6),
    ];
    for (d, l) in want {
        assert_eq!(depth(d), l, "degree {d}");
    }
}

#[test]
fn interpolation_reproduces_polynomials() {
    // T_5 - 0.5 T_2 + 0.25 on [-1, 1] is its own interpolant.
    let t =
        |x: f64| 16.0 * x.powi(5) - 20.0 * x.powi(3) + 5.0 * x - 0.5 * (2.0 * x * x - 1.0) + 0.25;
    let p = Chebyshev::interpolate(t, -1.0, 1.0, 5).unwrap();
    let want = [0.25, 0.0, -0.5, 0.0, 0.0, 1.0];
    for (c, w) in p.coeffs().iter().zip(want) {
        assert!((c - w).abs() < 1e-13, "{:?}", p.coeffs());
    }
    assert!(p.max_error(t, 1001) < 1e-13);
    // On another interval, through the affine map.
    let q = |x: f64| 3.0 * x * x - x + 2.0;
    let p = Chebyshev::interpolate(q, 2.0, 7.0, 4).unwrap();
    assert_eq!(p.clone().truncated(1e-12).degree(), 2);
    assert!(p.max_error(q, 1001) < 1e-12);
}

#[test]
fn interpolation_accuracy() {
    // (function, interval, degree, bound on the max error over a dense grid; measured)
    type Case = (&'static str, fn(f64) -> f64, f64, f64, usize, f64);
    let cases: [Case; 6] = [
        ("sin", f64::sin, -PI, PI, 15, 1e-10),             // 2.1e-11
        ("exp", f64::exp, -1.0, 1.0, 7, 1e-6),             // 2.2e-7
        ("exp", f64::exp, -1.0, 1.0, 15, 1e-14),           // 3.8e-15
        ("sigmoid", sigmoid, -8.0, 8.0, 31, 5e-6),         // 3.0e-6
        ("smooth relu", smooth_relu, -1.0, 1.0, 31, 1e-3), // 4.5e-4
        ("sin 2 pi x", |x| (2.0 * PI * x).sin(), -6.0, 6.0, 63, 1e-9), // 1.2e-10
    ];
    for (name, f, a, b, d, bound) in cases {
        let p = Chebyshev::interpolate(f, a, b, d).unwrap();
        let err = p.max_error(f, 10_001);
        eprintln!("{name} on [{a}, {b}], degree {d}: max error {err:.3e}");
        assert!(err < bound, "{name}: {err:e} >= {bound:e}");
    }
}

#[test]
fn parity_is_detected() {
    let s = Chebyshev::interpolate(f64::sin, -PI, PI, 16).unwrap();
    assert_eq!(s.parity(), Parity::Odd);
    assert_eq!(s.degree(), 15);
    let c = Chebyshev::interpolate(f64::cos, -2.0, 2.0, 13).unwrap();
    assert_eq!(c.parity(), Parity::Even);
    assert_eq!(c.degree(), 12);
    let e = Chebyshev::interpolate(f64::exp, -1.0, 1.0, 7).unwrap();
    assert_eq!(e.parity(), Parity::Mixed);
    // Not on a symmetric interval: nothing is zeroed.
    let s = Chebyshev::interpolate(f64::sin, -PI, 3.0, 16).unwrap();
    assert_eq!(s.parity(), Parity::Mixed);
    assert_eq!(s.clone().with_parity(Parity::Odd).parity(), Parity::Odd);
}

#[test]
fn invalid_inputs_are_refused() {
    assert!(Chebyshev::interpolate(f64::sin, 1.0, 1.0, 3).is_err());
    assert!(Chebyshev::interpolate(f64::ln, -1.0, 1.0, 3).is_err());
    assert!(Chebyshev::from_coeffs(-1.0, 1.0, vec![]).is_err());
    assert!(PowerSeries::new(vec![1.0, f64::NAN]).is_err());
}

#[test]
fn plans_have_minimal_depth_and_skip_zero_terms() {
    let opts = PolyEvalOptions {
        input_normalized: true,
        ..Default::default()
    };
    let coeffs = |n: usize| -> Vec<f64> { (0..n).map(|i| 1.0 / (i as f64 + 1.5)).collect() };
    for d in 1..=64 {
        let p = Chebyshev::from_coeffs(-1.0, 1.0, coeffs(d + 1)).unwrap();
        let plan = p.plan(&opts).unwrap();
        assert_eq!(plan.depth, depth(d));
        // Baby steps + giant steps + splits: well under the degree.
        assert!(plan.ct_mults <= d.max(2), "degree {d}: {plan:?}");
    }
    let mixed = Chebyshev::from_coeffs(-1.0, 1.0, coeffs(64)).unwrap();
    let odd = mixed.clone().with_parity(Parity::Odd);
    let (pm, po) = (mixed.plan(&opts).unwrap(), odd.plan(&opts).unwrap());
    eprintln!("degree 63: mixed {pm:?}, odd {po:?}");
    assert!(po.ct_mults < pm.ct_mults);
    // The map from [a, b] costs one level.
    let p = Chebyshev::from_coeffs(0.0, 2.0, vec![0.5; 8]).unwrap();
    assert_eq!(p.plan(&PolyEvalOptions::default()).unwrap().depth, 4);
    let _: PolyPlan = p.plan(&opts).unwrap();
}

#[test]
fn sin_with_input_map() {
    let p = Chebyshev::interpolate(f64::sin, -PI, PI, 15).unwrap();
    let approx = p.max_error(f64::sin, 10_001);
    assert_eq!(p.depth(false), 5);
    let o = run_cheb(&p, f64::sin, &PolyEvalOptions::default(), 6, 1);
    eprintln!(
        "sin deg 15 + map: he {:.3e} total {:.3e}",
        o.he_err, o.total_err
    );
    assert!(o.he_err < HE_ERR);
    assert!(o.total_err < approx + HE_ERR);
}

#[test]
fn exp_on_unit_interval_needs_no_map() {
    let p = Chebyshev::interpolate(f64::exp, -1.0, 1.0, 7).unwrap();
    let approx = p.max_error(f64::exp, 10_001);
    assert_eq!(p.depth(false), 3);
    let o = run_cheb(&p, f64::exp, &PolyEvalOptions::default(), 6, 2);
    eprintln!("exp deg 7: he {:.3e} total {:.3e}", o.he_err, o.total_err);
    assert!(o.he_err < HE_ERR);
    assert!(o.total_err < approx + HE_ERR);
}

#[test]
fn sigmoid_degree_31_normalized() {
    let p = Chebyshev::interpolate(sigmoid, -8.0, 8.0, 31).unwrap();
    let approx = p.max_error(sigmoid, 10_001);
    let opts = PolyEvalOptions {
        input_normalized: true,
        ..Default::default()
    };
    assert_eq!(p.depth(true), 5);
    let o = run_cheb(&p, sigmoid, &opts, 6, 3);
    eprintln!(
        "sigmoid deg 31: he {:.3e} total {:.3e}",
        o.he_err, o.total_err
    );
    assert!(o.he_err < HE_ERR);
    assert!(o.total_err < approx + HE_ERR);
}

#[test]
fn smooth_relu_degree_31_uses_all_six_levels() {
    let p = Chebyshev::interpolate(smooth_relu, -4.0, 4.0, 31).unwrap();
    let approx = p.max_error(smooth_relu, 10_001);
    assert_eq!(p.depth(false), 6);
    let o = run_cheb(&p, smooth_relu, &PolyEvalOptions::default(), 6, 4);
    eprintln!(
        "smooth relu deg 31 + map: approx {approx:.3e} he {:.3e} total {:.3e}",
        o.he_err, o.total_err
    );
    assert!(o.he_err < HE_ERR);
    assert!(o.total_err < approx + HE_ERR);
    // Not enough levels for the map plus degree 31 from level 5.
    let c = ctx();
    let ct = encrypt_real(c, &[0.5], 5);
    assert_eq!(
        c.eval
            .eval_chebyshev(&ct, &p, &PolyEvalOptions::default())
            .unwrap_err(),
        CkksError::NotEnoughLevels { needed: 6, have: 5 }
    );
}

#[test]
fn evalmod_like_sine_degree_63() {
    // sin(2 pi x) / (2 pi) on [-6, 6]: the shape of EvalMod's sine.
    let f = |x: f64| (2.0 * PI * x).sin() / (2.0 * PI);
    let p = Chebyshev::interpolate(f, -6.0, 6.0, 64).unwrap();
    assert_eq!(p.degree(), 63);
    let approx = p.max_error(f, 10_001);
    let opts = PolyEvalOptions {
        input_normalized: true,
        ..Default::default()
    };
    let o = run_cheb(&p, f, &opts, 6, 5);
    eprintln!(
        "sine deg 63 ({:?}): approx {approx:.3e} he {:.3e} total {:.3e}",
        p.plan(&opts).unwrap(),
        o.he_err,
        o.total_err
    );
    assert!(o.he_err < HE_ERR);
    assert!(o.total_err < approx + HE_ERR);
}

#[test]
fn lower_input_level_and_other_output_scale() {
    let p = Chebyshev::interpolate(f64::tanh, -3.0, 3.0, 9).unwrap();
    let opts = PolyEvalOptions {
        output_scale: Some(2f64.powi(38) * 1.2345),
        ..Default::default()
    };
    // degree 9: depth 4, plus the map: from level 5 to level 0.
    let o = run_cheb(&p, f64::tanh, &opts, 5, 6);
    eprintln!("tanh deg 9 at level 5 -> 0: he {:.3e}", o.he_err);
    assert!(o.he_err < HE_ERR * 4.0);
}

#[test]
fn input_scale_far_below_the_primes() {
    // Input at scale 2^30 on 45-bit primes: without raising the powers'
    // scales (s -> s^2 / q) T_16 would have scale 2^-195. Output at 2^45.
    let c = ctx();
    let p = Chebyshev::interpolate(sigmoid, -8.0, 8.0, 31).unwrap();
    let xs = points(c.slots(), -8.0, 8.0, 12);
    let v: Vec<Complex64> = xs.iter().map(|&x| Complex64::new(x, 0.0)).collect();
    let pt = c.enc.encode(&v, 6, 2f64.powi(30), c.slots()).unwrap();
    let ct = Encryptor::new(c.params.clone())
        .encrypt_sk(&c.sk, &pt)
        .unwrap();
    for normalized in [false, true] {
        let ct = if normalized {
            let (alpha, beta) = p.normalization();
            let u: Vec<Complex64> = xs
                .iter()
                .map(|&x| Complex64::new(alpha * x + beta, 0.0))
                .collect();
            let pt = c.enc.encode(&u, 5, 2f64.powi(30), c.slots()).unwrap();
            Encryptor::new(c.params.clone())
                .encrypt_sk(&c.sk, &pt)
                .unwrap()
        } else {
            ct.clone()
        };
        let opts = PolyEvalOptions {
            input_normalized: normalized,
            output_scale: Some(2f64.powi(45)),
            ..Default::default()
        };
        let out = c.eval.eval_chebyshev(&ct, &p, &opts).unwrap();
        assert_eq!(out.level(), 0);
        assert_eq!(out.scale(), 2f64.powi(45));
        let want: Vec<f64> = xs.iter().map(|&x| sigmoid(x)).collect();
        let err = max_err(&c.decrypt(&out), &want);
        eprintln!("sigmoid deg 31 from scale 2^30 (normalized: {normalized}): total err {err:.3e}");
        // Fresh noise at scale 2^30 is about 2^-14 of the input; sigmoid's
        // slope is at most 1/4 (times 8 for the normalized input).
        assert!(err < 2e-3, "{err:e}");
    }
}

#[test]
fn every_baby_step_bound_gives_the_same_result() {
    let c = ctx();
    let p = Chebyshev::interpolate(|x| (3.0 * x).cos() + x, -1.0, 1.0, 23).unwrap();
    let xs = points(c.slots(), -1.0, 1.0, 7);
    let ct = encrypt_real(c, &xs, 6);
    let plain = plain_on(c, &ct, &p);
    for l in 0..=5 {
        let opts = PolyEvalOptions {
            log_baby_steps: Some(l),
            ..Default::default()
        };
        let out = c.eval.eval_chebyshev(&ct, &p, &opts).unwrap();
        assert_eq!(out.level(), 1);
        assert_eq!(out.scale(), ct.scale());
        let err = max_dev(&c.decrypt(&out), &plain);
        eprintln!("log bs {l}: {:?} err {err:.3e}", p.plan(&opts).unwrap());
        assert!(err < HE_ERR);
    }
}

#[test]
fn constant_polynomial() {
    let c = ctx();
    let p = Chebyshev::from_coeffs(-1.0, 1.0, vec![0.75, 0.0]).unwrap();
    let ct = encrypt_real(c, &[0.5, -0.5], 4);
    let out = c
        .eval
        .eval_chebyshev(&ct, &p, &PolyEvalOptions::default())
        .unwrap();
    assert_eq!(out.level(), 4);
    assert!(max_err(&c.decrypt(&out), &vec![0.75; c.slots()]) < 1e-9);
}

#[test]
fn power_basis_small_activations() {
    let c = ctx();
    let xs = points(c.slots(), -1.0, 1.0, 8);
    // (coefficients, expected depth)
    let cases: [(&[f64], usize); 6] = [
        (&[0.1, 0.5, 0.25], 2),             // a + b x + c x^2
        (&[0.0, 0.0, 1.0], 2),              // x^2
        (&[0.2, -0.3, 0.0, 0.7], 2),        // degree 3 in depth 2
        (&[0.0, 1.5, 0.0, -0.5], 2),        // odd
        (&[0.05, 0.5, 0.4, -0.1, 0.03], 3), // degree 4
        (&[0.1, 0.9, -0.8, 0.7, -0.6, 0.5, -0.4, 0.3], 3),
    ];
    for (coeffs, d) in cases {
        let p = PowerSeries::new(coeffs.to_vec()).unwrap();
        assert_eq!(p.depth(), d);
        assert_eq!(p.plan(&PolyEvalOptions::default()).unwrap().depth, d);
        let ct = encrypt_real(c, &xs, 6);
        let out = c
            .eval
            .eval_power(&ct, &p, &PolyEvalOptions::default())
            .unwrap();
        assert_eq!(out.level(), 6 - d);
        assert_eq!(out.scale(), ct.scale());
        let plain = plain_on(c, &ct, &p);
        let err = max_dev(&c.decrypt(&out), &plain);
        eprintln!(
            "power {coeffs:?}: {:?} err {err:.3e}",
            p.plan(&PolyEvalOptions::default()).unwrap()
        );
        assert!(err < HE_ERR);
    }
}

#[test]
fn power_basis_at_level_two_and_complex_slots() {
    // A degree-3 polynomial from level 2 lands at level 0; polynomials with
    // real coefficients act on complex slots as well.
    let c = ctx();
    let p = PowerSeries::new(vec![0.25, -0.5, 0.75, 0.5]).unwrap();
    let v = values(c.slots(), 9);
    let ct = c.eval.drop_level(&c.encrypt(&v), 2).unwrap();
    let out = c
        .eval
        .eval_power(&ct, &p, &PolyEvalOptions::default())
        .unwrap();
    assert_eq!(out.level(), 0);
    let want: Vec<Complex64> = v
        .iter()
        .map(|z| 0.25 - 0.5 * z + 0.75 * z * z + 0.5 * z * z * z)
        .collect();
    let bits = precision_bits(&c.decrypt(&out), &want);
    eprintln!("complex degree 3 at level 0: {bits:.1} bits");
    assert!(bits > 20.0);
}

#[test]
fn every_degree_lands_at_its_level() {
    // Degrees 1..=31 from level 5 with one coefficient vector, truncated:
    // the output is at exactly 5 - ceil(log2(d + 1)) with the input's scale.
    let c = ctx();
    let xs = points(c.slots(), -1.0, 1.0, 11);
    let ct = encrypt_real(c, &xs, 5);
    let held = c.decrypt(&ct);
    // Not decaying: a worst case for conditioning (|p'(1)| reaches ~10^3).
    let all: Vec<f64> = (0..=32)
        .map(|i| (-1f64).powi(i / 3) / (1.0 + i as f64 / 3.0))
        .collect();
    let mut worst = 0.0f64;
    for d in 1..=31 {
        let p = Chebyshev::from_coeffs(-1.0, 1.0, all[..=d].to_vec()).unwrap();
        let out = c
            .eval
            .eval_chebyshev(&ct, &p, &PolyEvalOptions::default())
            .unwrap();
        assert_eq!(out.level(), 5 - depth(d), "degree {d}");
        assert_eq!(out.scale(), ct.scale());
        let plain: Vec<Complex64> = held.iter().map(|&z| p.at(z)).collect();
        let err = max_dev(&c.decrypt(&out), &plain);
        eprintln!("degree {d}: {err:.3e}");
        worst = worst.max(err);
        // Rescaling noise in T_i grows like i^2 (|T_i'(1)| = i^2), weighted
        // by |c_i|: measured worst 7e-9 to 1.4e-8 (2^-27 to 2^-26) at
        // degree 30, on all three kernel paths, against the complex
        // reference (against the real parts alone it was 1.3e-7 to 5.4e-7:
        // the input's imaginary noise times p').
        assert!(err < HE_ERR, "degree {d}: {err:e}");
    }
    eprintln!("degrees 1..=31: worst error {worst:.3e}");
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 6, .. ProptestConfig::default() })]

    /// Random coefficients (decaying geometrically like smooth functions'),
    /// random degree and parity: exact level, exact scale, error < 2^-20.
    #[test]
    fn random_chebyshev(seed in any::<u64>(), d in 1usize..=31, parity in 0u8..3) {
        let c = ctx();
        let r = values(d + 1, seed);
        let coeffs: Vec<f64> = r.iter().enumerate().map(|(i, z)| z.re * 0.85f64.powi(i as i32)).collect();
        let p = Chebyshev::from_coeffs(-1.0, 1.0, coeffs).unwrap().with_parity(match parity {
            0 => Parity::Even,
            1 => Parity::Odd,
            _ => Parity::Mixed,
        });
        let xs = points(c.slots(), -1.0, 1.0, seed ^ 5);
        let ct = encrypt_real(c, &xs, 6);
        let out = c.eval.eval_chebyshev(&ct, &p, &PolyEvalOptions::default()).unwrap();
        prop_assert_eq!(out.level(), 6 - depth(p.degree()));
        prop_assert_eq!(out.scale(), ct.scale());
        let plain = plain_on(c, &ct, &p);
        let err = max_dev(&c.decrypt(&out), &plain);
        eprintln!("random degree {} parity {:?}: err {err:.3e}", p.degree(), p.parity());
        prop_assert!(err < HE_ERR, "degree {} err {:e}", p.degree(), err);
    }
}

/// Even and odd polynomials (only one parity of Chebyshev terms computed)
/// and polynomials whose nodes take searched split points (smaller giant
/// steps where a level is spare) against the plain polynomial: exact level
/// and scale, error at the level of the other tests.
#[test]
fn parity_and_searched_splits_match_the_plain_polynomial() {
    let opts = PolyEvalOptions {
        input_normalized: true,
        ..Default::default()
    };
    // EvalMod's even cosine (n16-boot's configuration, degree 30 in 5 levels)
    let cfg = ckks::bootstrap::config_for(&Params::named("n16-boot").unwrap()).unwrap();
    let kw = cfg.k - 0.25;
    let r = cfg.double_angle as i32;
    let cosine = move |v: f64| (2.0 * PI * kw * v / 2f64.powi(r)).cos();
    let evalmod = ckks::bootstrap::evalmod_polynomial(&cfg).unwrap();
    assert_eq!(evalmod.parity(), Parity::Even);
    let approx = evalmod.max_error(cosine, 10_001);
    let o = run_cheb(&evalmod, cosine, &opts, 6, 21);
    eprintln!(
        "EvalMod cosine ({:?}): approx {approx:.3e} he {:.3e} total {:.3e}",
        evalmod.plan(&opts).unwrap(),
        o.he_err,
        o.total_err
    );
    assert!(approx < 1e-12, "{approx:e}");
    assert!(o.he_err < HE_ERR, "{:e}", o.he_err);
    assert!(o.total_err < approx + HE_ERR);
    // An odd function: sin(3x) at degree 31 (odd: 16 terms).
    let sin3 = |x: f64| (3.0 * x).sin();
    let odd = Chebyshev::interpolate(sin3, -1.0, 1.0, 31).unwrap();
    assert_eq!(odd.parity(), Parity::Odd);
    let o = run_cheb(&odd, sin3, &opts, 6, 22);
    eprintln!("odd sin(3x) deg 31: he {:.3e}", o.he_err);
    assert!(o.he_err < HE_ERR);
    // Degrees whose plans use searched splits, each parity, from level 6
    // (one level to spare for degree 4, 8 and 16).
    for (d, parity) in [
        (4, Parity::Mixed),
        (8, Parity::Mixed),
        (8, Parity::Even),
        (16, Parity::Mixed),
        (16, Parity::Even),
        (15, Parity::Odd),
        (30, Parity::Even),
    ] {
        let f = |x: f64| (2.0 * x).cos() + 0.5 * (3.0 * x).sin() + x * x * x;
        let p = Chebyshev::interpolate(f, -1.0, 1.0, d)
            .unwrap()
            .with_parity(parity);
        let o = run_cheb(&p, |x| p.eval(x), &opts, 6, d as u64);
        eprintln!(
            "degree {d} {parity:?} ({:?}): he {:.3e}",
            p.plan(&opts).unwrap(),
            o.he_err
        );
        assert!(o.he_err < HE_ERR, "degree {d} {parity:?}: {:e}", o.he_err);
    }
}
