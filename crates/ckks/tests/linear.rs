//! Homomorphic linear transforms: the double-hoisted evaluation against the
//! single-hoisted one it replaced and against plain arithmetic.

mod common;

use ckks::linear::LinearTransform;
use ckks::*;
use common::*;

/// A map with diagonals at `offsets` (modulo `slots`), entries of magnitude
/// at most 1 / #offsets so that outputs stay near magnitude 1.
fn map(slots: usize, offsets: &[i64], seed: u64) -> LinearTransform {
    let mut t = LinearTransform {
        slots,
        diags: Default::default(),
    };
    let w = 1.0 / offsets.len() as f64;
    for (i, &r) in offsets.iter().enumerate() {
        let d = values(slots, seed + i as u64)
            .into_iter()
            .map(|x| x * w)
            .collect();
        t.add_diagonal(r, d);
    }
    t
}

/// Every step a map's evaluation rotates by.
fn ctx_for(maps: &[&LinearTransform]) -> Ctx {
    let mut rots: Vec<i64> = maps.iter().flat_map(|t| t.rotations()).collect();
    rots.sort_unstable();
    rots.dedup();
    Ctx::new("insecure-n12", &rots)
}

/// Encrypted application at the top level: both evaluations within 2^-20
/// of the plain map (measured: 29.8-35.0 bits), and within 2^-28 of each other
/// (measured: 32.4 bits and more).
fn check(c: &Ctx, t: &LinearTransform, seed: u64) {
    let slots = t.slots;
    let v = values(slots, seed);
    let level = c.params.max_level();
    let pt = c
        .enc
        .encode(&v, level, c.params.default_scale(), slots)
        .unwrap();
    let ct = Encryptor::new(c.params.clone())
        .encrypt_pk(&c.pk, &pt)
        .unwrap();
    let scale = c.params.default_scale();
    let e = t.encode(&c.enc, level, scale, scale).unwrap();
    let want = t.apply_plain(&v);
    let double = e.apply(&c.eval, &ct).unwrap();
    let single = e.apply_single_hoisted(&c.eval, &ct).unwrap();
    assert_eq!(double.level(), level - 1);
    assert_eq!(double.level(), single.level());
    assert_eq!(double.scale(), single.scale());
    let gd = c.decrypt(&double);
    let gs = c.decrypt(&single);
    let (bd, bs) = (
        precision_bits(&gd[..slots], &want),
        precision_bits(&gs[..slots], &want),
    );
    assert!(bd > 20.0, "double hoisting: {bd:.1} bits");
    assert!(bs > 20.0, "single hoisting: {bs:.1} bits");
    let agree = precision_bits(&gd[..slots], &gs[..slots]);
    assert!(agree > 28.0, "the two evaluations differ: {agree:.1} bits");
}

#[test]
fn double_hoisting_matches_single_hoisting_and_plain() {
    let slots = 2048;
    // Dense block of offsets: several babies and giants.
    let dense: Vec<i64> = (0..24).collect();
    // Scattered, with negatives and no zero diagonal.
    let scattered = [3i64, -5, 17, 64, -128, 333, 1000];
    // Butterfly-like: offsets 0 and +-h (the DFT stages' shape).
    let butterfly = [0i64, 16, -16];
    let only_zero = [0i64];
    let maps = [
        map(slots, &dense, 1),
        map(slots, &scattered, 2),
        map(slots, &butterfly, 3),
        map(slots, &only_zero, 4),
    ];
    let c = ctx_for(&maps.iter().collect::<Vec<_>>());
    for (i, t) in maps.iter().enumerate() {
        check(&c, t, 10 + i as u64);
    }
}

#[test]
fn double_hoisting_on_sparse_slots() {
    // 64 slots repeated across the ring: rotations act modulo 64.
    let t = map(64, &[0, 1, 2, 3, 8, 9, -7, 40], 5);
    let c = ctx_for(&[&t]);
    check(&c, &t, 6);
}

/// Diagonals held as integer coefficients ([`DiagonalStorage::Coefficients`])
/// give bit-identical ciphertexts to the NTT form, through both the
/// double-hoisted and the single-hoisted evaluation, in far less memory.
#[test]
fn coefficient_storage_is_bit_identical() {
    use ckks::linear::DiagonalStorage;
    let slots = 2048;
    let dense: Vec<i64> = (0..24).collect();
    let maps = [map(slots, &dense, 7), map(slots, &[3, -5, 17, 64], 8)];
    let c = ctx_for(&maps.iter().collect::<Vec<_>>());
    let level = c.params.max_level();
    let scale = c.params.default_scale();
    for (i, t) in maps.iter().enumerate() {
        let v = values(slots, 20 + i as u64);
        let pt = c.enc.encode(&v, level, scale, slots).unwrap();
        let ct = Encryptor::new(c.params.clone())
            .encrypt_pk(&c.pk, &pt)
            .unwrap();
        let ntt = t
            .encode_with(&c.enc, level, scale, scale, DiagonalStorage::Ntt)
            .unwrap();
        let coef = t
            .encode_with(&c.enc, level, scale, scale, DiagonalStorage::Coefficients)
            .unwrap();
        assert!(
            coef.size_bytes() * (level + 1) <= ntt.size_bytes(),
            "coefficients {} B, NTT form {} B",
            coef.size_bytes(),
            ntt.size_bytes()
        );
        let bytes = |x: &Ciphertext| x.to_bytes(&c.params).unwrap();
        let a = ntt.apply(&c.eval, &ct).unwrap();
        let b = coef.apply(&c.eval, &ct).unwrap();
        assert_eq!(a.scale(), b.scale());
        assert!(bytes(&a) == bytes(&b), "double hoisting differs");
        let a = ntt.apply_single_hoisted(&c.eval, &ct).unwrap();
        let b = coef.apply_single_hoisted(&c.eval, &ct).unwrap();
        assert!(bytes(&a) == bytes(&b), "single hoisting differs");
    }
}

/// `rotate_sum`: several ciphertexts, each rotated by its own step (0 and a
/// repeated step among them), summed with one ModDown: within 2^-25 of the
/// plain sum of rotations (six fresh encryptions' noise; measured 27.9-28.3
/// bits over 7 runs) and within 2^-29 of rotating each and adding
/// (measured 31.2-31.8 bits); bad terms refused.
#[test]
fn rotate_sum_matches_rotating_and_adding() {
    let steps = [0i64, 1, -3, 5, 1, 17];
    let c = Ctx::new("insecure-n12", &steps);
    let n = c.slots();
    let vs: Vec<Vec<Complex64>> = (0..steps.len()).map(|i| values(n, 40 + i as u64)).collect();
    let cts: Vec<Ciphertext> = vs.iter().map(|v| c.encrypt(v)).collect();
    let terms: Vec<(&Ciphertext, i64)> = cts.iter().zip(steps).collect();
    let got = c.eval.rotate_sum(&terms).unwrap();
    assert_eq!(got.level(), cts[0].level());
    assert_eq!(got.scale(), cts[0].scale());
    let mut want = vec![Complex64::new(0.0, 0.0); n];
    for (v, &k) in vs.iter().zip(&steps) {
        for (s, w) in want.iter_mut().enumerate() {
            *w += v[(s as i64 + k).rem_euclid(n as i64) as usize];
        }
    }
    let bits = precision_bits(&c.decrypt(&got), &want);
    let mut each: Option<Ciphertext> = None;
    for (ct, &k) in cts.iter().zip(&steps) {
        let r = if k == 0 {
            ct.clone()
        } else {
            c.eval.rotate(ct, k).unwrap()
        };
        each = Some(match each {
            None => r,
            Some(a) => c.eval.add(&a, &r).unwrap(),
        });
    }
    let each = c.decrypt(&each.unwrap());
    let agree = precision_bits(&c.decrypt(&got), &each);
    eprintln!(
        "rotate_sum: {bits:.1} bits against the plain sum, {agree:.1} against rotate-and-add"
    );
    assert!(bits > 25.0, "{bits}");
    assert!(agree > 29.0, "{agree}");

    // One term: the rotation itself.
    let one = c.eval.rotate_sum(&[(&cts[1], 1)]).unwrap();
    let r = c.eval.rotate(&cts[1], 1).unwrap();
    assert!(precision_bits(&c.decrypt(&one), &c.decrypt(&r)) > 29.0);

    // Refused: no terms, another level, another scale, a step without a key.
    assert!(matches!(c.eval.rotate_sum(&[]), Err(CkksError::Domain(_))));
    let low = c.eval.drop_level(&cts[0], cts[0].level() - 1).unwrap();
    assert!(matches!(
        c.eval.rotate_sum(&[(&cts[1], 1), (&low, 1)]),
        Err(CkksError::Domain(_))
    ));
    let mut scaled = cts[0].clone();
    scaled.set_scale(&c.params, cts[0].scale() * 3.0).unwrap();
    assert!(matches!(
        c.eval.rotate_sum(&[(&cts[1], 1), (&scaled, 1)]),
        Err(CkksError::ScaleMismatch(..))
    ));
    assert!(c.eval.rotate_sum(&[(&cts[1], 2)]).is_err());
}
