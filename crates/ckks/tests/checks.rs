//! Issue 17: the engine refuses what it cannot compute. One test per kind of
//! silent wrong answer or panic, each failing on the engine before the fix.
//!
//! insecure-n12: N = 2^12, q_0 55 bits, then six 45-bit primes, scale 2^45.

mod common;
use ckks::linear::LinearTransform;
use ckks::*;
use common::*;
use std::sync::{Arc, OnceLock};

fn ctx() -> &'static Ctx {
    static C: OnceLock<Ctx> = OnceLock::new();
    C.get_or_init(|| Ctx::new("insecure-n12", &[1]))
}

/// The same ring degree, other primes: insecure-boot-n12.
fn other() -> &'static Ctx {
    static C: OnceLock<Ctx> = OnceLock::new();
    C.get_or_init(|| Ctx::new("insecure-boot-n12", &[1]))
}

fn at(c: &Ctx, level: usize, scale: f64, seed: u64) -> Ciphertext {
    let n = c.slots();
    let pt = c.enc.encode(&values(n, seed), level, scale, n).unwrap();
    Encryptor::new(c.params.clone())
        .encrypt_pk(&c.pk, &pt)
        .unwrap()
}

fn out_of_bounds<T: std::fmt::Debug>(r: Result<T>) -> bool {
    matches!(r, Err(CkksError::ScaleOutOfBounds(_)))
}

#[test]
fn products_beyond_the_modulus_are_refused() {
    let c = ctx();
    let s = c.params.default_scale();
    let y = at(c, 0, s, 1);
    // 2^90 on a 55-bit q_0: decrypted with error 0.49 before
    assert!(out_of_bounds(c.eval.mul_relin(&y, &y)));
    assert!(out_of_bounds(c.eval.mul(&y, &y)));
    assert!(out_of_bounds(c.eval.square(&y)));
    let pt = c.enc.encode(&values(4, 2), 0, s, c.slots()).unwrap();
    assert!(out_of_bounds(c.eval.mul_plain(&y, &pt)));
    assert!(out_of_bounds(c.eval.mul_const(&y, 1.0, s)));
    // a constant whose product with the message wraps, though the scales
    // fit: 2^45 * 1 * 1024 on a 55-bit q_0 decrypted to about 0 before
    assert!(out_of_bounds(c.eval.mul_const(&y, 1024.0, 1.0)));
    assert!(out_of_bounds(c.eval.mul_const(&y, -1e5, 1.0)));
    assert!(c.eval.mul_const(&y, 3.0, 1.0).is_ok());
    // the same products one level up fit
    let y1 = at(c, 1, s, 1);
    assert!(c.eval.mul_relin(&y1, &y1).is_ok());
}

/// An integer multiple of the message beyond the modulus would wrap.
#[test]
fn integer_multiples_beyond_the_modulus_are_refused() {
    let c = ctx();
    let y = at(c, 0, c.params.default_scale(), 1);
    // 2^45 * 2^10 on a 55-bit q_0: no room for the sign
    assert!(out_of_bounds(c.eval.mul_int(&y, 1 << 10)));
    assert!(out_of_bounds(c.eval.mul_int(&y, -(1 << 12))));
    assert!(out_of_bounds(c.eval.mul_int(&y, i64::MIN)));
    let got = c.decrypt(&c.eval.mul_int(&y, 3).unwrap());
    let want: Vec<_> = values(c.slots(), 1).iter().map(|v| v * 3.0).collect();
    assert!(precision_bits(&got, &want) > 20.0);
}

#[test]
fn rescaling_below_scale_one_is_refused() {
    let c = ctx();
    let ct = at(c, 2, 2f64.powi(30), 3);
    let sq = c.eval.rescale(&c.eval.square(&ct).unwrap()).unwrap(); // 2^15
    assert!(out_of_bounds(c.eval.rescale(&c.eval.square(&sq).unwrap())));
    assert!(out_of_bounds(c.eval.rescale(&ct)));
}

#[test]
fn constants_are_checked_as_encoded_values() {
    let c = ctx();
    let y = at(c, 0, c.params.default_scale(), 4);
    // 1e3 * 2^45 wraps mod q_0 (55 bits)
    assert!(matches!(
        c.eval.add_const(&y, 1e3),
        Err(CkksError::Encoding(_))
    ));
    assert!(c.eval.add_const(&y, 3.0).is_ok());
    assert!(c.eval.add_const(&y, f64::NAN).is_err());
    let top = at(c, 2, c.params.default_scale(), 4);
    for (k, cs) in [(2.0, 0.0), (2.0, -4.0), (2.0, f64::NAN), (1e-3, 10.0)] {
        assert!(
            matches!(
                c.eval.mul_const(&top, k, cs),
                Err(CkksError::Encoding(_) | CkksError::ScaleOutOfBounds(_))
            ),
            "mul_const({k}, {cs})"
        );
    }
    assert!(c.eval.mul_const(&top, 0.0, 16.0).is_ok());
}

#[test]
fn polynomial_output_scales_and_coefficients_are_checked() {
    let c = ctx();
    let x = at(c, 2, c.params.default_scale(), 5);
    let p = PowerSeries::new(vec![0.5, 1.0, 0.25]).unwrap();
    for bad in [0.0, 1.0 - 1e-9, -5.0, f64::NAN, f64::INFINITY] {
        let opts = PolyEvalOptions {
            output_scale: Some(bad),
            ..Default::default()
        };
        assert!(out_of_bounds(c.eval.eval_power(&x, &p, &opts)), "{bad}");
    }
    assert!(c.eval.eval_power(&x, &p, &Default::default()).is_ok());
    // sum of |coefficients| 2^43 at scale 2^45 cannot fit at level 0 (55 bits)
    let x1 = at(c, 1, c.params.default_scale(), 5);
    let big = PowerSeries::new(vec![0.0, 1.1e13]).unwrap();
    assert!(out_of_bounds(c.eval.eval_power(
        &x1,
        &big,
        &Default::default()
    )));
    // exp on [20, 30], degree 31 (sum 1.1e13) from the top lands at level 0
    let top = at(c, c.params.max_level(), c.params.default_scale(), 5);
    let cheb = Chebyshev::interpolate(|t| t.exp(), 20.0, 30.0, 31).unwrap();
    let r = c.eval.eval_chebyshev(&top, &cheb, &Default::default());
    assert!(out_of_bounds(r));
}

#[test]
fn encode_coeffs_refuses_nan_and_excess_coefficients() {
    let c = ctx();
    let n = c.params.n;
    let s = c.params.default_scale();
    let mut v = vec![0.1; n];
    v[7] = f64::NAN;
    assert!(matches!(
        c.enc.encode_coeffs(&v, 1, s, c.slots()),
        Err(CkksError::Encoding(_))
    ));
    assert!(matches!(
        c.enc.encode_coeffs(&vec![0.1; n + 1], 1, s, c.slots()),
        Err(CkksError::Encoding(_))
    ));
    assert!(c.enc.encode_coeffs(&vec![0.1; n], 1, s, c.slots()).is_ok());
    // and no division by zero for 0 slots
    assert!(c.enc.coeffs_to_slots(&vec![0.0; n], 0).is_err());
}

#[test]
fn objects_of_another_parameter_set_are_refused() {
    let (c, o) = (ctx(), other());
    assert_eq!(c.params.n, o.params.n);
    let s = c.params.default_scale();
    let a = at(c, 2, s, 6);
    let b = at(o, 2, s, 6);
    let mm = |r: Result<Ciphertext>| matches!(r, Err(CkksError::ParamsMismatch));
    assert!(mm(c.eval.add(&a, &b)));
    assert!(mm(c.eval.sub(&b, &a)));
    assert!(mm(c.eval.mul_relin(&a, &b)));
    assert!(mm(c.eval.rotate(&b, 1)));
    assert!(mm(c.eval.conjugate(&b)));
    assert!(mm(c.eval.rescale(&b)));
    assert!(mm(c.eval.drop_level(&b, 1)));
    assert!(mm(c.eval.add_const(&b, 1.0)));
    let pt_o = o.enc.encode(&values(4, 1), 2, s, o.slots()).unwrap();
    assert!(mm(c.eval.add_plain(&a, &pt_o)));
    assert!(mm(c.eval.mul_plain(&a, &pt_o)));
    assert!(mm(Encryptor::new(c.params.clone()).encrypt_pk(&c.pk, &pt_o)));
    assert!(mm(Encryptor::new(c.params.clone()).encrypt_sk(&c.sk, &pt_o)));
    assert!(matches!(
        Decryptor::new(&c.sk).decrypt(&b),
        Err(CkksError::ParamsMismatch)
    ));
    assert!(matches!(
        c.enc.try_decode(&pt_o),
        Err(CkksError::ParamsMismatch)
    ));
    assert!(matches!(
        b.to_bytes(&c.params),
        Err(CkksError::ParamsMismatch)
    ));
    assert!(matches!(
        pt_o.to_bytes(&c.params),
        Err(CkksError::ParamsMismatch)
    ));
    // another ring degree: refused, not a panic
    let small = Ctx::new("insecure-n10", &[1]);
    let d = at(&small, 2, small.params.default_scale(), 7);
    assert!(mm(c.eval.rotate(&d, 1)));
    assert!(mm(c.eval.rescale(&d)));
    assert!(mm(c.eval.add(&a, &d)));
    // an evaluator with another set's keys is refused at construction
    assert!(matches!(
        Evaluator::new(c.params.clone(), o.eval.keys().clone()),
        Err(CkksError::ParamsMismatch)
    ));
    let relin_only = EvaluationKeys {
        relin: o.eval.keys().relin.clone(),
        galois: c.eval.keys().galois.clone(),
    };
    assert!(Evaluator::new(c.params.clone(), Arc::new(relin_only)).is_err());
    // operations that return no other value check the set too
    assert!(mm(c.eval.neg(&b)));
    assert!(mm(c.eval.mul_int(&b, 3)));
    assert!(mm(c.eval.mul_by_i(&b)));
    assert!(mm(c.eval.neg(&d)));
    assert!(mm(c.eval.mul_by_i(&d)));
    // encoded linear transforms carry their set too: another set of the same
    // ring degree decrypted to about 1e17, another degree panicked
    let transform = |slots: usize| {
        let mut t = LinearTransform::scalar(slots, Complex64::new(1.0, 0.0));
        t.add_diagonal(1, vec![Complex64::new(0.5, 0.0); slots]);
        t
    };
    for x in [o, &small] {
        let et = transform(x.slots()).encode(&x.enc, 2, s, s).unwrap();
        assert!(mm(et.apply(&c.eval, &a)));
        assert!(mm(et.apply_single_hoisted(&c.eval, &a)));
    }
    let own = transform(c.slots()).encode(&c.enc, 2, s, s).unwrap();
    assert!(own.apply(&c.eval, &a).is_ok());
    assert!(matches!(
        c.enc.decode_coeffs(&pt_o),
        Err(CkksError::ParamsMismatch)
    ));
}

#[test]
fn galois_elements_are_checked_at_generation() {
    let c = ctx();
    let mut kg = KeyGenerator::with_seed(c.params.clone(), [9; 32]);
    let two_n = 2 * c.params.n as u64;
    for g in [2, 1, two_n + 1, two_n + 5, 0] {
        assert!(
            matches!(
                kg.galois_keys_for_elements(&c.sk, &[g]),
                Err(CkksError::InvalidGaloisElement { .. })
            ),
            "element {g}"
        );
        assert!(kg.galois_keys_at_levels(&c.sk, &[(g, 1)]).is_err());
        assert!(kg.galois_keys_at_levels_compact(&c.sk, &[(g, 1)]).is_err());
    }
    assert!(kg.galois_keys_for_elements(&c.sk, &[5, two_n - 1]).is_ok());
}

#[test]
fn rotation_steps_are_reduced_modulo_the_slot_count() {
    let c = ctx();
    let v = values(8, 10);
    let pt = c.enc.encode(&v, 2, c.params.default_scale(), 8).unwrap();
    let ct = Encryptor::new(c.params.clone())
        .encrypt_pk(&c.pk, &pt)
        .unwrap();
    for k in [9i64, 1, -7, 17] {
        let got = c.decrypt(&c.eval.rotate(&ct, k).unwrap());
        let want: Vec<_> = (0..8).map(|i| v[(i + 1) % 8]).collect();
        assert!(precision_bits(&got[..8], &want) > 20.0, "rotate({k})");
    }
    let hoisted = c.eval.rotate_hoisted(&ct, &[9, 8]).unwrap();
    assert!(precision_bits(&c.decrypt(&hoisted[1])[..8], &v) > 20.0);
}

#[test]
fn linear_transform_with_zero_slots_is_refused_not_a_panic() {
    let c = ctx();
    let mut t = LinearTransform::scalar(0, Complex64::new(1.0, 0.0));
    t.add_diagonal(3, vec![]);
    assert!(matches!(
        t.encode(&c.enc, 1, 1e10, 1e10),
        Err(CkksError::InvalidSlots(0))
    ));
    let mut t = LinearTransform::scalar(8, Complex64::new(1.0, 0.0));
    t.add_diagonal(1, vec![Complex64::new(1.0, 0.0); 3]);
    assert!(t.encode(&c.enc, 1, 1e10, 1e10).is_err());
}

#[test]
fn messages_say_what_is_missing() {
    let c = ctx();
    let eval = Evaluator::new(c.params.clone(), Arc::new(EvaluationKeys::default())).unwrap();
    let a = at(c, 2, c.params.default_scale(), 11);
    let e = eval.rotate(&a, 3).unwrap_err();
    let g = ckks::keys::rotation_element(&c.params, 3);
    let m = e.to_string();
    assert!(
        m.contains(&format!("element {g}")) && m.contains("rotation by 3") && m.contains("at all"),
        "{m}"
    );
    let m = eval.conjugate(&a).unwrap_err().to_string();
    assert!(m.contains("conjugation") && m.contains("at all"), "{m}");
    assert!(
        !m.contains("element 0"),
        "names element 0 instead of the conjugation element: {m}"
    );
    // a missing step among keys that exist
    let m = c.eval.rotate(&a, 5).unwrap_err().to_string();
    assert!(m.contains("rotation by 5") && !m.contains("at all"), "{m}");
    // a level the set does not have
    let e = c
        .enc
        .encode(&values(4, 1), 7, c.params.default_scale(), 4)
        .unwrap_err();
    assert_eq!(e, CkksError::LevelAboveMax { level: 7, max: 6 });
    assert!(e.to_string().contains("maximum level is 6"), "{e}");
    assert!(!e.to_string().contains("ciphertext"), "{e}");
}

// A ciphertext or plaintext whose `level` or `slots` disagrees with its
// polynomials: code outside the crate cannot write the fields (a doc-test on
// `Ciphertext` shows it does not compile), and the readers refuse such bytes
// (`tests/serialize.rs`, `bad_ciphertext_fields_are_rejected`); that every
// operation still refuses such an object with a typed error is tested inside
// the crate (`ciphertext::tests::edited_metadata_is_refused_not_a_panic`).
