//! Every homomorphic operation against plain complex arithmetic, with the
//! precision asserted in bits (inputs of magnitude <= 1).
//!
//! insecure-n12: N = 2^12, scale 2^45, 45-bit primes, two special primes.

mod common;
use ckks::*;
use common::*;
use proptest::prelude::*;
use std::sync::OnceLock;

fn ctx() -> &'static Ctx {
    static C: OnceLock<Ctx> = OnceLock::new();
    C.get_or_init(|| Ctx::new("insecure-n12", &[1, 2, 3, 5, 7, -1, -4, 100, 1000]))
}

/// Fresh public-key encryption keeps 26 bits at scale 2^45 (measured: 29).
const FRESH_BITS: f64 = 26.0;
/// After one multiply, relinearization and rescale at scale 2^45: at least 25 bits (measured: 29-33).
const MUL_BITS: f64 = 25.0;

#[test]
fn encode_decode_roundtrip() {
    let c = ctx();
    for slots in [1usize, 8, c.slots()] {
        let v = values(slots, 1);
        let pt = c
            .enc
            .encode(&v, 3, c.params.default_scale(), slots)
            .unwrap();
        let got = c.enc.decode(&pt);
        assert!(precision_bits(&got, &v) > 35.0);
    }
}

#[test]
fn sparse_slots_roundtrip_encrypted() {
    let c = ctx();
    let slots = 16;
    let v = values(slots, 2);
    let pt = c
        .enc
        .encode(&v, c.params.max_level(), c.params.default_scale(), slots)
        .unwrap();
    let ct = Encryptor::new(c.params.clone())
        .encrypt_sk(&c.sk, &pt)
        .unwrap();
    let rot = c.eval.rotate(&ct, 3).unwrap();
    let got = c.decrypt(&rot);
    let want: Vec<_> = (0..slots).map(|i| v[(i + 3) % slots]).collect();
    assert!(precision_bits(&got, &want) > FRESH_BITS);
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 4, .. ProptestConfig::default() })]

    #[test]
    fn add_sub_neg(seed in any::<u64>()) {
        let c = ctx();
        let (a, b) = (values(c.slots(), seed), values(c.slots(), seed ^ 1));
        let (ca, cb) = (c.encrypt(&a), c.encrypt(&b));
        let sum = c.decrypt(&c.eval.add(&ca, &cb).unwrap());
        let want: Vec<_> = a.iter().zip(&b).map(|(x, y)| x + y).collect();
        prop_assert!(precision_bits(&sum, &want) > FRESH_BITS - 1.0);
        let diff = c.decrypt(&c.eval.sub(&ca, &cb).unwrap());
        let want: Vec<_> = a.iter().zip(&b).map(|(x, y)| x - y).collect();
        prop_assert!(precision_bits(&diff, &want) > FRESH_BITS - 1.0);
        let neg = c.decrypt(&c.eval.neg(&ca).unwrap());
        let want: Vec<_> = a.iter().map(|x| -x).collect();
        prop_assert!(precision_bits(&neg, &want) > FRESH_BITS);
    }

    #[test]
    fn plaintext_ops(seed in any::<u64>()) {
        let c = ctx();
        let (a, b) = (values(c.slots(), seed), values(c.slots(), seed ^ 2));
        let ca = c.encrypt(&a);
        let lvl = ca.level();
        let pb = c.enc.encode(&b, lvl, c.params.default_scale(), c.slots()).unwrap();
        let got = c.decrypt(&c.eval.add_plain(&ca, &pb).unwrap());
        let want: Vec<_> = a.iter().zip(&b).map(|(x, y)| x + y).collect();
        prop_assert!(precision_bits(&got, &want) > FRESH_BITS);
        let got = c.decrypt(&c.eval.sub_plain(&ca, &pb).unwrap());
        let want: Vec<_> = a.iter().zip(&b).map(|(x, y)| x - y).collect();
        prop_assert!(precision_bits(&got, &want) > FRESH_BITS);
        // plaintext at scale q_l: the rescale restores the ciphertext's scale exactly
        let ql = c.params.q[lvl] as f64;
        let pb = c.enc.encode(&b, lvl, ql, c.slots()).unwrap();
        let prod = c.eval.rescale(&c.eval.mul_plain(&ca, &pb).unwrap()).unwrap();
        prop_assert_eq!(prod.scale(), ca.scale());
        prop_assert_eq!(prod.level(), lvl - 1);
        let want: Vec<_> = a.iter().zip(&b).map(|(x, y)| x * y).collect();
        prop_assert!(precision_bits(&c.decrypt(&prod), &want) > MUL_BITS);
    }

    #[test]
    fn mul_plain_acc_sums_products_in_place(seed in any::<u64>()) {
        let c = ctx();
        let (a, b) = (values(c.slots(), seed), values(c.slots(), seed ^ 3));
        let (w1, w2) = (values(c.slots(), seed ^ 4), values(c.slots(), seed ^ 5));
        let (ca, cb) = (c.encrypt(&a), c.encrypt(&b));
        // plaintexts one level below the ciphertexts: the products land there
        let lvl = ca.level() - 1;
        let ql = c.params.q[lvl] as f64;
        let p1 = c.enc.encode(&w1, lvl, ql, c.slots()).unwrap();
        let p2 = c.enc.encode(&w2, lvl, ql, c.slots()).unwrap();
        let mut acc = c.eval.mul_plain(&ca, &p1).unwrap();
        prop_assert_eq!(acc.level(), lvl);
        c.eval.mul_plain_acc(&mut acc, &cb, &p2).unwrap();
        let sum = c.eval.rescale(&acc).unwrap();
        prop_assert_eq!(sum.scale(), ca.scale());
        let want: Vec<_> = (0..c.slots()).map(|i| a[i] * w1[i] + b[i] * w2[i]).collect();
        prop_assert!(precision_bits(&c.decrypt(&sum), &want) > MUL_BITS - 1.0);
        // the same sum as mul_plain then add, to the last bit
        let two = c.eval.add(&c.eval.mul_plain(&ca, &p1).unwrap(), &c.eval.mul_plain(&cb, &p2).unwrap()).unwrap();
        prop_assert_eq!(c.decrypt(&c.eval.rescale(&two).unwrap()), c.decrypt(&sum));
        // refused: an accumulator at another level, or of another scale
        let mut high = c.encrypt(&a);
        prop_assert!(c.eval.mul_plain_acc(&mut high, &cb, &p2).is_err());
        let p3 = c.enc.encode(&w2, lvl, ql * 2.0, c.slots()).unwrap();
        prop_assert!(matches!(c.eval.mul_plain_acc(&mut acc, &cb, &p3), Err(CkksError::ScaleMismatch(..))));
    }

    #[test]
    fn constant_ops(seed in any::<u64>(), k in -1000.0f64..1000.0, m in -8i64..8) {
        let c = ctx();
        let a = values(c.slots(), seed);
        let ca = c.encrypt(&a);
        let got = c.decrypt(&c.eval.add_const(&ca, k).unwrap());
        let want: Vec<_> = a.iter().map(|x| x + k).collect();
        prop_assert!(precision_bits(&got, &want) > FRESH_BITS - 10.0);
        let ql = c.params.q[ca.level()] as f64;
        let prod = c.eval.rescale(&c.eval.mul_const(&ca, k / 1000.0, ql).unwrap()).unwrap();
        let want: Vec<_> = a.iter().map(|x| x * (k / 1000.0)).collect();
        prop_assert!(precision_bits(&c.decrypt(&prod), &want) > MUL_BITS);
        let got = c.decrypt(&c.eval.mul_int(&ca, m).unwrap());
        let want: Vec<_> = a.iter().map(|x| x * m as f64).collect();
        prop_assert!(precision_bits(&got, &want) > FRESH_BITS - 4.0);
        let got = c.decrypt(&c.eval.mul_by_i(&ca).unwrap());
        let want: Vec<_> = a.iter().map(|x| x * Complex64::new(0.0, 1.0)).collect();
        prop_assert!(precision_bits(&got, &want) > FRESH_BITS);
    }

    #[test]
    fn multiply_relinearize_rescale(seed in any::<u64>()) {
        let c = ctx();
        let (a, b) = (values(c.slots(), seed), values(c.slots(), seed ^ 3));
        let (ca, cb) = (c.encrypt(&a), c.encrypt(&b));
        let prod = c.eval.rescale(&c.eval.mul_relin(&ca, &cb).unwrap()).unwrap();
        prop_assert_eq!(prod.degree(), 1);
        let want: Vec<_> = a.iter().zip(&b).map(|(x, y)| x * y).collect();
        let bits = precision_bits(&c.decrypt(&prod), &want);
        prop_assert!(bits > MUL_BITS, "{bits} bits");
        // a depth-3 product chain stays precise
        let mut acc = prod;
        let mut want_acc = want;
        for _ in 0..3 {
            let cb2 = c.eval.drop_level(&cb, acc.level()).unwrap();
            let cb2 = c.eval.mul_const(&cb2, 1.0, acc.scale() / cb2.scale()).unwrap();
            acc = c.eval.rescale(&c.eval.mul_relin(&acc, &cb2).unwrap()).unwrap();
            want_acc = want_acc.iter().zip(&b).map(|(x, y)| x * y).collect();
        }
        let bits = precision_bits(&c.decrypt(&acc), &want_acc);
        prop_assert!(bits > MUL_BITS - 3.0, "{bits} bits after depth 4");
    }

    #[test]
    fn rotations_and_conjugation(seed in any::<u64>()) {
        let c = ctx();
        let n = c.slots();
        let a = values(n, seed);
        let ca = c.encrypt(&a);
        for k in [1i64, 5, -1, -4, 1000] {
            let got = c.decrypt(&c.eval.rotate(&ca, k).unwrap());
            let want: Vec<_> = (0..n).map(|i| a[(i as i64 + k).rem_euclid(n as i64) as usize]).collect();
            prop_assert!(precision_bits(&got, &want) > FRESH_BITS, "rotate {k}");
        }
        let got = c.decrypt(&c.eval.conjugate(&ca).unwrap());
        let want: Vec<_> = a.iter().map(|x| x.conj()).collect();
        prop_assert!(precision_bits(&got, &want) > FRESH_BITS);
        let steps = [1i64, 2, 3, 7, 100];
        let outs = c.eval.rotate_hoisted(&ca, &steps).unwrap();
        for (k, out) in steps.iter().zip(&outs) {
            let want: Vec<_> = (0..n).map(|i| a[(i + *k as usize) % n]).collect();
            prop_assert!(precision_bits(&c.decrypt(out), &want) > FRESH_BITS, "hoisted {k}");
        }
    }
}

#[test]
fn rotation_at_lower_level() {
    let c = ctx();
    let n = c.slots();
    let a = values(n, 9);
    let ca = c.eval.drop_level(&c.encrypt(&a), 2).unwrap();
    let got = c.decrypt(&c.eval.rotate(&ca, 2).unwrap());
    let want: Vec<_> = (0..n).map(|i| a[(i + 2) % n]).collect();
    assert!(precision_bits(&got, &want) > FRESH_BITS);
}

/// A Galois key made for a lower level rotates ciphertexts at that level
/// and below as precisely as a full key, is smaller by the limbs it drops,
/// and refuses a ciphertext above its level with a typed error.
#[test]
fn level_restricted_galois_keys() {
    let c = ctx();
    let p = &c.params;
    let n = c.slots();
    let mut kg = KeyGenerator::with_seed(p.clone(), [7u8; 32]);
    let sk = kg.secret_key();
    let g1 = ckks::keys::rotation_element(p, 1);
    let g3 = ckks::keys::rotation_element(p, 3);
    let gk = kg
        .galois_keys_at_levels(&sk, &[(g1, 1), (g3, 2), (g1, 0)])
        .unwrap();
    let full = kg.galois_keys(&sk, &[1], false);
    // level 1 (the higher of the two asked for g1): 2 Q limbs + P, not all of Q
    let (low, top) = (gk.size_bytes(), full.size_bytes());
    let limbs = |l: usize| (l + 1 + p.p.len()) * p.dnum_at(l);
    let top_limbs = limbs(p.max_level());
    assert_eq!(
        low * top_limbs,
        top * (limbs(1) + limbs(2)),
        "sizes {low} vs {top}"
    );
    let keys = EvaluationKeys {
        relin: None,
        galois: Some(gk),
    };
    let eval = Evaluator::new(p.clone(), std::sync::Arc::new(keys)).unwrap();
    let a = values(n, 11);
    let pt = c
        .enc
        .encode(&a, p.max_level(), p.default_scale(), n)
        .unwrap();
    let top_ct = Encryptor::new(p.clone()).encrypt_sk(&sk, &pt).unwrap();
    let dec = Decryptor::new(&sk);
    for (k, key_level) in [(1i64, 1usize), (3, 2)] {
        for level in 0..=key_level {
            let ct = eval.drop_level(&top_ct, level).unwrap();
            let got = c
                .enc
                .decode(&dec.decrypt(&eval.rotate(&ct, k).unwrap()).unwrap());
            let want: Vec<_> = (0..n).map(|i| a[(i + k as usize) % n]).collect();
            assert!(
                precision_bits(&got, &want) > FRESH_BITS,
                "rotate {k} at level {level}"
            );
        }
        let above = eval.drop_level(&top_ct, key_level + 1).unwrap();
        assert_eq!(
            eval.rotate(&above, k).err(),
            Some(CkksError::KeyLevel {
                key: key_level,
                ciphertext: key_level + 1
            })
        );
    }
}

#[test]
fn errors_are_typed() {
    let c = ctx();
    let a = c.encrypt(&values(4, 1));
    let b = c.eval.mul_const(&a, 1.0, 3.0).unwrap();
    assert!(matches!(
        c.eval.add(&a, &b),
        Err(CkksError::ScaleMismatch(..))
    ));
    let low = c.eval.drop_level(&a, 0).unwrap();
    assert!(matches!(
        c.eval.rescale(&low),
        Err(CkksError::NotEnoughLevels { .. })
    ));
    assert!(matches!(
        c.eval.rotate(&a, 9),
        Err(CkksError::MissingRotationKey {
            step: Some(9),
            none_at_all: false,
            ..
        })
    ));
    let deg2 = c.eval.mul(&a, &a).unwrap();
    assert!(matches!(
        c.eval.rotate(&deg2, 1),
        Err(CkksError::Degree(2, 1))
    ));
    assert!(matches!(
        c.enc.encode(&values(5, 1), 0, 1e10, 4),
        Err(CkksError::TooManyValues { .. })
    ));
    assert!(matches!(
        c.enc.encode(&values(2, 1), 0, 1e10, 3),
        Err(CkksError::InvalidSlots(3))
    ));
    assert!(matches!(
        c.enc.encode_real(&[1e30], 0, 2f64.powi(45), 4),
        Err(CkksError::Encoding(_))
    ));
}

#[test]
fn add_aligns_levels() {
    let c = ctx();
    let (a, b) = (values(c.slots(), 11), values(c.slots(), 12));
    let ca = c.encrypt(&a);
    let cb = c.eval.drop_level(&c.encrypt(&b), 1).unwrap();
    let s = c.eval.add(&ca, &cb).unwrap();
    assert_eq!(s.level(), 1);
    let want: Vec<_> = a.iter().zip(&b).map(|(x, y)| x + y).collect();
    assert!(precision_bits(&c.decrypt(&s), &want) > FRESH_BITS - 1.0);
}

#[test]
fn single_prime_digits_key_switch() {
    // insecure-n10 has one special prime: every digit is one limb.
    let c = Ctx::new("insecure-n10", &[1]);
    let n = c.slots();
    let (a, b) = (values(n, 5), values(n, 6));
    let prod = c
        .eval
        .rescale(&c.eval.mul_relin(&c.encrypt(&a), &c.encrypt(&b)).unwrap())
        .unwrap();
    let want: Vec<_> = a.iter().zip(&b).map(|(x, y)| x * y).collect();
    assert!(precision_bits(&c.decrypt(&prod), &want) > 20.0);
    let got = c.decrypt(&c.eval.rotate(&c.encrypt(&a), 1).unwrap());
    let want: Vec<_> = (0..n).map(|i| a[(i + 1) % n]).collect();
    assert!(precision_bits(&got, &want) > 20.0);
}

/// The fused relinearize + rescale (one division by P q_l) gives exactly
/// the two separate steps' result (round((a + P c) / (P q)) equals
/// round((round(a / P) + c) / q) for odd P and q), at every level and on
/// sets with one and several special primes; degree-1 input is only
/// rescaled, and level 0 is refused like the separate calls.
#[test]
fn fused_relin_rescale_matches_the_two_steps() {
    for (name, rot) in [("insecure-n12", &[1i64][..]), ("insecure-n10", &[1][..])] {
        let c = Ctx::new(name, rot);
        let n = c.slots();
        let (a, b) = (values(n, 21), values(n, 22));
        let want: Vec<_> = a.iter().zip(&b).map(|(x, y)| x * y).collect();
        let (ca, cb) = (c.encrypt(&a), c.encrypt(&b));
        for level in (1..=ca.level()).rev() {
            let x = c.eval.drop_level(&ca, level).unwrap();
            let y = c.eval.drop_level(&cb, level).unwrap();
            let t = c.eval.mul(&x, &y).unwrap();
            let two = c.eval.rescale(&c.eval.relinearize(&t).unwrap()).unwrap();
            let one = c.eval.relin_rescale(&t).unwrap();
            assert_eq!(one.degree(), 1);
            assert_eq!(one.level(), two.level());
            assert_eq!(one.scale(), two.scale());
            // bit-identical ciphertexts decrypt to identical values
            let got = c.decrypt(&one);
            assert_eq!(got, c.decrypt(&two), "{name} level {level}");
            let bits = precision_bits(&got, &want);
            assert!(bits > 20.0, "{name} level {level}: {bits} bits");
            assert_eq!(c.decrypt(&c.eval.mul_relin_rescale(&x, &y).unwrap()), got);
            // degree 1: a plain rescale
            let r1 = c.eval.relinearize(&t).unwrap();
            assert_eq!(c.decrypt(&c.eval.relin_rescale(&r1).unwrap()), got);
        }
        let t0 = c
            .eval
            .drop_level(&c.eval.mul(&ca, &cb).unwrap(), 0)
            .unwrap();
        assert!(matches!(
            c.eval.relin_rescale(&t0),
            Err(CkksError::NotEnoughLevels { .. })
        ));
    }
}
