//! The binary format: round trips of every object, and rejection of
//! truncated, tampered and absurd inputs without panics or large allocations.
//!
//! insecure-n10: N = 2^10, Q = 4 primes (levels 0..=3), P = 1 prime, dnum 4.

mod common;
use ckks::serialize::*;
use ckks::*;
use common::*;
use proptest::prelude::*;
use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::sync::{Arc, OnceLock};

// ---------------------------------------------------------------------------
// Largest single allocation made by the current thread, to show that absurd
// lengths never drive an allocation.
// ---------------------------------------------------------------------------

struct Tracking;

thread_local! {
    static LARGEST: Cell<usize> = const { Cell::new(0) };
}

fn note(size: usize) {
    let _ = LARGEST.try_with(|c| c.set(c.get().max(size)));
}

unsafe impl GlobalAlloc for Tracking {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        note(layout.size());
        unsafe { System.alloc(layout) }
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        note(layout.size());
        unsafe { System.alloc_zeroed(layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        note(new_size);
        unsafe { System.realloc(ptr, layout, new_size) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static GLOBAL: Tracking = Tracking;

/// Runs `f` and returns its result with the largest allocation it made.
fn largest_alloc<T>(f: impl FnOnce() -> T) -> (T, usize) {
    LARGEST.with(|c| c.set(0));
    let r = f();
    (r, LARGEST.with(|c| c.get()))
}

// ---------------------------------------------------------------------------
// Fixtures.
// ---------------------------------------------------------------------------

const ROTATIONS: [i64; 2] = [1, -3];

fn ctx() -> &'static Ctx {
    static C: OnceLock<Ctx> = OnceLock::new();
    C.get_or_init(|| Ctx::new("insecure-n10", &ROTATIONS))
}

fn params() -> &'static Arc<Params> {
    &ctx().params
}

fn keys() -> &'static EvaluationKeys {
    ctx().eval.keys()
}

/// A fresh ciphertext at the top level.
fn fresh(seed: u64) -> Ciphertext {
    ctx().encrypt(&values(ctx().slots(), seed))
}

/// Compact evaluation keys for the fixture's secret, generated as compact.
fn compact_keys_for(c: &Ctx, rotations: &[i64], seed: u8) -> Compact<EvaluationKeys> {
    let mut kg = KeyGenerator::with_seed(c.params.clone(), [seed; 32]);
    Compact::<EvaluationKeys>::from_parts(
        Some(kg.relin_key_compact(&c.sk)),
        Some(kg.galois_keys_compact(&c.sk, rotations, true)),
    )
    .unwrap()
}

fn compact_keys() -> &'static Compact<EvaluationKeys> {
    static K: OnceLock<Compact<EvaluationKeys>> = OnceLock::new();
    K.get_or_init(|| compact_keys_for(ctx(), &ROTATIONS, 3))
}

/// A small ciphertext at level 1 (two limbs).
fn small_ct() -> Ciphertext {
    ctx().eval.drop_level(&fresh(9), 1).unwrap()
}

fn is_malformed<T>(r: &Result<T>) -> bool {
    matches!(r, Err(CkksError::Malformed(_)))
}

fn err_msg<T>(r: Result<T>) -> String {
    match r {
        Err(CkksError::Malformed(m)) => m,
        Err(e) => panic!("expected a Malformed error, got {e:?}"),
        Ok(_) => panic!("expected a Malformed error, got Ok"),
    }
}

fn hs() -> usize {
    header_size(params())
}

fn put_u32(b: &mut [u8], at: usize, v: u32) {
    b[at..at + 4].copy_from_slice(&v.to_le_bytes());
}

fn put_u64(b: &mut [u8], at: usize, v: u64) {
    b[at..at + 8].copy_from_slice(&v.to_le_bytes());
}

/// Ring prime of every coefficient position of a key polynomial block.
fn key_prime(p: &Params, limb: usize) -> u64 {
    if limb < p.q.len() {
        p.q[limb]
    } else {
        p.p[limb - p.q.len()]
    }
}

// ---------------------------------------------------------------------------
// Round trips.
// ---------------------------------------------------------------------------

#[test]
fn ciphertext_round_trip() {
    let c = ctx();
    let p = params();
    let a = fresh(1);
    let b = fresh(2);
    let deg2 = c.eval.mul(&a, &b).unwrap();
    let low = c.eval.rescale(&c.eval.mul_relin(&a, &b).unwrap()).unwrap();
    for ct in [a, deg2, low] {
        let bytes = ct.to_bytes(p).unwrap();
        assert_eq!(bytes.len(), ct.serialized_size(p));
        assert_eq!(bytes.len(), ciphertext_size(p, ct.level(), ct.degree()));
        let back = Ciphertext::from_bytes(&bytes, p).unwrap();
        assert_eq!(
            (back.level(), back.slots(), back.degree()),
            (ct.level(), ct.slots(), ct.degree())
        );
        assert_eq!(back.scale().to_bits(), ct.scale().to_bits());
        assert_eq!(back.to_bytes(p).unwrap(), bytes);
        assert_eq!(c.decrypt(&back), c.decrypt(&ct));
        // The stream reader leaves what follows untouched.
        let mut stream = bytes.clone();
        stream.extend_from_slice(b"next");
        let mut r = &stream[..];
        let s = Ciphertext::read_from(&mut r, p).unwrap();
        assert_eq!(r, b"next");
        assert_eq!(s.to_bytes(p).unwrap(), bytes);
    }
}

#[test]
fn plaintext_round_trip() {
    let c = ctx();
    let p = params();
    let v = values(8, 3);
    let pt = c.enc.encode(&v, 2, p.default_scale(), 8).unwrap();
    let bytes = pt.to_bytes(p).unwrap();
    assert_eq!(bytes.len(), plaintext_size(p, 2));
    assert_eq!(bytes.len(), pt.serialized_size(p));
    let back = Plaintext::from_bytes(&bytes, p).unwrap();
    assert_eq!((back.level(), back.slots()), (2, 8));
    assert_eq!(c.enc.decode(&back), c.enc.decode(&pt));
    assert_eq!(back.to_bytes(p).unwrap(), bytes);
}

#[test]
fn public_key_round_trip() {
    let c = ctx();
    let p = params();
    let bytes = c.pk.to_bytes(p).unwrap();
    assert_eq!(bytes.len(), public_key_size(p, false));
    let pk = PublicKey::from_bytes(&bytes, p).unwrap();
    assert_eq!(pk.to_bytes(p).unwrap(), bytes);
    let v = values(c.slots(), 4);
    let pt = c
        .enc
        .encode(&v, p.max_level(), p.default_scale(), c.slots())
        .unwrap();
    let ct = Encryptor::new(p.clone()).encrypt_pk(&pk, &pt).unwrap();
    assert!(precision_bits(&c.decrypt(&ct), &v) > 20.0);
}

#[test]
fn secret_key_round_trip_and_checks() {
    let c = ctx();
    let p = params();
    let bytes = c.sk.to_secret_bytes().unwrap();
    assert_eq!(bytes.len(), secret_key_size(p));
    assert_eq!(bytes.len(), c.sk.secret_serialized_size());
    assert_eq!(peek_header(&bytes).unwrap().kind, ObjectKind::SecretKey);
    let sk = SecretKey::from_secret_bytes(&bytes, p).unwrap();
    assert_eq!(*sk.to_secret_bytes().unwrap(), *bytes);
    let ct = fresh(5);
    let dec = |k: &SecretKey| c.enc.decode(&Decryptor::new(k).decrypt(&ct).unwrap());
    assert_eq!(dec(&sk), dec(&c.sk));
    let mut r = &bytes[..];
    assert!(SecretKey::read_secret_from(&mut r, p).is_ok());

    // A secret key is not any other kind of object, and vice versa.
    assert!(is_malformed(&PublicKey::from_bytes(&bytes, p)));
    let pk_bytes = c.pk.to_bytes(p).unwrap();
    assert!(is_malformed(&SecretKey::from_secret_bytes(&pk_bytes, p)));

    // Valid residues that do not form a ternary polynomial are refused.
    let mut bad = bytes.to_vec();
    let at = hs() + 4;
    let x = u64::from_le_bytes(bad[at..at + 8].try_into().unwrap());
    put_u64(&mut bad, at, (x + 12345) % p.q[0]);
    let m = err_msg(SecretKey::from_secret_bytes(&bad, p));
    assert!(m.contains("ternary"), "{m}");
    // Limbs that disagree are refused: change one residue of the last limb.
    let mut bad = bytes.to_vec();
    let at = bad.len() - 8;
    let x = u64::from_le_bytes(bad[at..at + 8].try_into().unwrap());
    let last = *p.p.last().unwrap();
    put_u64(&mut bad, at, (x + 1) % last);
    let m = err_msg(SecretKey::from_secret_bytes(&bad, p));
    assert!(m.contains("disagrees"), "{m}");
}

#[test]
fn evaluation_keys_round_trip_and_still_work() {
    let c = ctx();
    let p = params();
    let keys = keys();
    let rlk = keys.relin.as_ref().unwrap();
    let gk = keys.galois.as_ref().unwrap();
    let (rb, gb, eb) = (
        rlk.to_bytes(p).unwrap(),
        gk.to_bytes(p).unwrap(),
        keys.to_bytes(p).unwrap(),
    );
    assert_eq!(rb.len(), relin_key_size(p, false));
    assert_eq!(gb.len(), galois_keys_size(gk, false));
    assert_eq!(eb.len(), keys.serialized_size(p));
    assert_eq!(eb.len(), rb.len() + gb.len() + 1 - hs());

    let rlk2 = RelinKey::from_bytes(&rb, p).unwrap();
    let gk2 = GaloisKeys::from_bytes(&gb, p).unwrap();
    assert_eq!(gk2.elements(), gk.elements());
    assert_eq!(rlk2.to_bytes(p).unwrap(), rb);
    assert_eq!(gk2.to_bytes(p).unwrap(), gb);
    let bundle = EvaluationKeys::from_bytes(&eb, p).unwrap();
    assert_eq!(bundle.to_bytes(p).unwrap(), eb);

    for ks in [
        bundle,
        EvaluationKeys {
            relin: Some(rlk2),
            galois: Some(gk2),
        },
    ] {
        let eval = Evaluator::new(p.clone(), Arc::new(ks)).unwrap();
        let (a, b) = (fresh(6), fresh(7));
        let want = c.eval.mul_relin(&a, &b).unwrap();
        let got = eval.mul_relin(&a, &b).unwrap();
        assert_eq!(got.to_bytes(p).unwrap(), want.to_bytes(p).unwrap());
        for k in ROTATIONS {
            let want = c.eval.rotate(&a, k).unwrap();
            let got = eval.rotate(&a, k).unwrap();
            assert_eq!(got.to_bytes(p).unwrap(), want.to_bytes(p).unwrap());
        }
        let got = eval.conjugate(&a).unwrap();
        assert_eq!(
            got.to_bytes(p).unwrap(),
            c.eval.conjugate(&a).unwrap().to_bytes(p).unwrap()
        );
    }

    // Partial bundles.
    for ks in [
        EvaluationKeys::default(),
        EvaluationKeys {
            relin: None,
            galois: Some(gk.clone()),
        },
        EvaluationKeys {
            relin: Some(rlk.clone()),
            galois: None,
        },
    ] {
        let bytes = ks.to_bytes(p).unwrap();
        assert_eq!(bytes.len(), ks.serialized_size(p));
        let back = EvaluationKeys::from_bytes(&bytes, p).unwrap();
        assert_eq!(back.relin.is_some(), ks.relin.is_some());
        assert_eq!(back.galois.is_some(), ks.galois.is_some());
        assert_eq!(back.to_bytes(p).unwrap(), bytes);
    }
}

#[test]
fn params_round_trip_and_header() {
    let p = params();
    let bytes = params_to_bytes(p).unwrap();
    assert_eq!(bytes.len(), params_size(p));
    let q = params_from_bytes(&bytes).unwrap();
    assert_eq!((q.id, q.name()), (p.id, p.name()));
    check_params_bytes(&bytes, p).unwrap();
    let mut r = &bytes[..];
    assert_eq!(read_params(&mut r).unwrap().id, p.id);

    let other = Params::named("insecure-n12").unwrap();
    assert!(is_malformed(&check_params_bytes(&bytes, &other)));
    // A changed prime is refused even though name and id are intact.
    let mut bad = bytes.clone();
    let at = bad.len() - 8;
    put_u64(&mut bad, at, p.p[0] + 2);
    assert!(is_malformed(&params_from_bytes(&bad)));
    assert!(is_malformed(&check_params_bytes(&bad, p)));
    // An unknown name is refused.
    let mut bad = bytes.clone();
    bad[hs() - 1] = b'9';
    assert!(is_malformed(&params_from_bytes(&bad)));

    // peek_header lets a server choose the parameters by name.
    let ct = fresh(8).to_bytes(p).unwrap();
    let h = peek_header(&ct).unwrap();
    assert_eq!(h.kind, ObjectKind::Ciphertext);
    assert_eq!(h.version, FORMAT_VERSION);
    assert_eq!(h.params_name, "insecure-n10");
    assert_eq!(h.params_id, p.id);
    assert_eq!(h.params().unwrap().id, p.id);
    h.check_params(p).unwrap();
    assert!(is_malformed(&h.check_params(&other)));
    assert_eq!(Ciphertext::object_kind(), ObjectKind::Ciphertext);
}

#[test]
fn compact_keys_are_half_the_size_and_still_work() {
    let c = ctx();
    let p = params();
    let keys = keys();
    let full = keys.to_bytes(p).unwrap();
    let compact = compact_keys();
    let bytes = compact.to_bytes(p).unwrap();
    assert_eq!(bytes.len(), compact.serialized_size(p));
    assert!(
        (bytes.len() as f64) < 0.51 * full.len() as f64,
        "{} vs {}",
        bytes.len(),
        full.len()
    );
    assert_eq!(
        peek_header(&bytes).unwrap().kind,
        ObjectKind::EvaluationKeysCompact
    );
    // The compact reader keeps the seeds: re-serializes identically.
    let back = Compact::<EvaluationKeys>::from_bytes(&bytes, p).unwrap();
    assert_eq!(back.to_bytes(p).unwrap(), bytes);
    // The full reader expands them; its full form equals the compact key's.
    let expanded = EvaluationKeys::from_bytes(&bytes, p).unwrap();
    assert_eq!(
        expanded.to_bytes(p).unwrap(),
        compact.key().to_bytes(p).unwrap()
    );
    // A full key is not a compact one.
    assert!(
        err_msg(Compact::<EvaluationKeys>::from_bytes(&full, p)).contains("expected a compact")
    );

    let eval = Evaluator::new(p.clone(), Arc::new(expanded)).unwrap();
    let (va, vb) = (values(c.slots(), 11), values(c.slots(), 12));
    let (a, b) = (c.encrypt(&va), c.encrypt(&vb));
    let prod = c.decrypt(&eval.rescale(&eval.mul_relin(&a, &b).unwrap()).unwrap());
    let want: Vec<_> = va.iter().zip(&vb).map(|(x, y)| x * y).collect();
    assert!(precision_bits(&prod, &want) > 15.0);
    let n = c.slots();
    for k in ROTATIONS {
        let got = c.decrypt(&eval.rotate(&a, k).unwrap());
        let want: Vec<_> = (0..n)
            .map(|i| va[(i as i64 + k).rem_euclid(n as i64) as usize])
            .collect();
        assert!(precision_bits(&got, &want) > 15.0, "rotate {k}");
    }
    let got = c.decrypt(&eval.conjugate(&a).unwrap());
    let want: Vec<_> = va.iter().map(|x| x.conj()).collect();
    assert!(precision_bits(&got, &want) > 15.0);

    // Each key type on its own.
    let mut kg = KeyGenerator::with_seed(p.clone(), [4; 32]);
    let rlk = kg.relin_key_compact(&c.sk);
    let rb = rlk.to_bytes(p).unwrap();
    assert_eq!(rb.len(), relin_key_size(p, true));
    assert_eq!(
        RelinKey::from_bytes(&rb, p).unwrap().to_bytes(p).unwrap(),
        rlk.key().to_bytes(p).unwrap()
    );
    let gk = kg.galois_keys_compact(&c.sk, &ROTATIONS, true);
    let gb = gk.to_bytes(p).unwrap();
    assert_eq!(gb.len(), galois_keys_size(gk.key(), true));
    assert_eq!(
        GaloisKeys::from_bytes(&gb, p).unwrap().to_bytes(p).unwrap(),
        gk.key().to_bytes(p).unwrap()
    );
    assert_eq!(
        Compact::<GaloisKeys>::from_bytes(&gb, p)
            .unwrap()
            .to_bytes(p)
            .unwrap(),
        gb
    );

    let pk = kg.public_key_compact(&c.sk);
    let pb = pk.to_bytes(p).unwrap();
    assert_eq!(pb.len(), public_key_size(p, true));
    let pk2 = PublicKey::from_bytes(&pb, p).unwrap();
    let pt = c
        .enc
        .encode(&va, p.max_level(), p.default_scale(), n)
        .unwrap();
    let ct = Encryptor::new(p.clone()).encrypt_pk(&pk2, &pt).unwrap();
    assert!(precision_bits(&c.decrypt(&ct), &va) > 20.0);

    // Parts of different parameter sets are refused.
    let other = Params::named("insecure-n12").unwrap();
    let mut kg12 = KeyGenerator::with_seed(other.clone(), [1; 32]);
    let sk12 = kg12.secret_key();
    assert!(matches!(
        Compact::<EvaluationKeys>::from_parts(
            Some(kg12.relin_key_compact(&sk12)),
            Some(kg.galois_keys_compact(&c.sk, &[1], false)),
        ),
        Err(CkksError::ParamsMismatch)
    ));

    // Truncations and coefficients are checked as in the full forms.
    for n in sampled_prefixes(bytes.len()) {
        assert!(
            is_malformed(&EvaluationKeys::from_bytes(&bytes[..n], p)),
            "prefix {n}"
        );
        assert!(is_malformed(&Compact::<EvaluationKeys>::from_bytes(
            &bytes[..n],
            p
        )));
    }
    for n in sampled_prefixes(pb.len()) {
        assert!(
            is_malformed(&PublicKey::from_bytes(&pb[..n], p)),
            "prefix {n}"
        );
    }
    let mut bad = rb.clone();
    let at = bad.len() - 8;
    put_u64(&mut bad, at, *p.p.last().unwrap());
    assert!(err_msg(RelinKey::from_bytes(&bad, p)).contains("not below its modulus"));
    let mut bad = pb.clone();
    put_u64(&mut bad, hs() + 4 + 32, p.q[0]);
    assert!(err_msg(PublicKey::from_bytes(&bad, p)).contains("not below its modulus"));
}

/// insecure-n12 has two special primes (two Q primes per digit, the last
/// digit partial): full and compact keys still round-trip and work.
#[test]
fn two_prime_digits_round_trip() {
    let c = Ctx::new("insecure-n12", &[2]);
    let p = &c.params;
    let keys = c.eval.keys();
    let full = keys.to_bytes(p).unwrap();
    let back = EvaluationKeys::from_bytes(&full, p).unwrap();
    assert_eq!(back.to_bytes(p).unwrap(), full);
    let compact = compact_keys_for(&c, &[2], 5);
    let cb = compact.to_bytes(p).unwrap();
    assert!((cb.len() as f64) < 0.51 * full.len() as f64);
    let eval = Evaluator::new(
        p.clone(),
        Arc::new(EvaluationKeys::from_bytes(&cb, p).unwrap()),
    )
    .unwrap();
    let n = c.slots();
    let va = values(n, 21);
    let a = c.encrypt(&va);
    let got = c.decrypt(&eval.rotate(&a, 2).unwrap());
    let want: Vec<_> = (0..n).map(|i| va[(i + 2) % n]).collect();
    assert!(precision_bits(&got, &want) > 20.0);
    let sq = c.decrypt(&eval.rescale(&eval.square(&a).unwrap()).unwrap());
    let want: Vec<_> = va.iter().map(|x| x * x).collect();
    assert!(precision_bits(&sq, &want) > 20.0);
    // Keys for one set are refused by another.
    assert!(is_malformed(&EvaluationKeys::from_bytes(&full, params())));
    let ct = a.to_bytes(p).unwrap();
    assert_eq!(ct.len(), ciphertext_size(p, p.max_level(), 1));
    assert!(is_malformed(&Ciphertext::from_bytes(&ct, params())));
}

// ---------------------------------------------------------------------------
// Truncation.
// ---------------------------------------------------------------------------

#[test]
fn every_prefix_of_a_ciphertext_is_rejected() {
    let p = params();
    let bytes = small_ct().to_bytes(p).unwrap();
    for k in 0..bytes.len() {
        let r = Ciphertext::from_bytes(&bytes[..k], p);
        assert!(is_malformed(&r), "prefix {k} of {}", bytes.len());
    }
    // The stream reader, on sampled prefixes (it reads to the end each time).
    for k in (0..bytes.len()).step_by(97).chain([bytes.len() - 1]) {
        let mut r = &bytes[..k];
        assert!(
            is_malformed(&Ciphertext::read_from(&mut r, p)),
            "prefix {k}"
        );
    }
    // And every header prefix is rejected by peek_header.
    for k in 0..hs() {
        assert!(is_malformed(&peek_header(&bytes[..k])));
    }
    assert!(Ciphertext::from_bytes(&bytes, p).is_ok());
}

fn sampled_prefixes(len: usize) -> impl Iterator<Item = usize> {
    (0..64.min(len))
        .chain((64..len).step_by(4099))
        .chain([len - 8, len - 1])
}

#[test]
fn sampled_prefixes_of_keys_are_rejected() {
    let c = ctx();
    let p = params();
    let k = keys();
    let objects: Vec<(&str, Vec<u8>)> = vec![
        ("pk", c.pk.to_bytes(p).unwrap()),
        ("rlk", k.relin.as_ref().unwrap().to_bytes(p).unwrap()),
        ("gk", k.galois.as_ref().unwrap().to_bytes(p).unwrap()),
        ("evk", k.to_bytes(p).unwrap()),
        ("sk", c.sk.to_secret_bytes().unwrap().to_vec()),
        ("params", params_to_bytes(p).unwrap()),
        (
            "pt",
            c.enc
                .encode(&values(4, 1), 0, p.default_scale(), 4)
                .unwrap()
                .to_bytes(p)
                .unwrap(),
        ),
    ];
    for (name, bytes) in &objects {
        for n in sampled_prefixes(bytes.len()) {
            let b = &bytes[..n];
            let r = match *name {
                "pk" => PublicKey::from_bytes(b, p).map(|_| ()),
                "rlk" => RelinKey::from_bytes(b, p).map(|_| ()),
                "gk" => GaloisKeys::from_bytes(b, p).map(|_| ()),
                "evk" => EvaluationKeys::from_bytes(b, p).map(|_| ()),
                "sk" => SecretKey::from_secret_bytes(b, p).map(|_| ()),
                "params" => params_from_bytes(b).map(|_| ()),
                _ => Plaintext::from_bytes(b, p).map(|_| ()),
            };
            assert!(is_malformed(&r), "{name}: prefix {n} of {}", bytes.len());
        }
        // One extra byte is rejected as well.
        let mut long = bytes.clone();
        long.push(0);
        let r = match *name {
            "pk" => PublicKey::from_bytes(&long, p).map(|_| ()),
            "rlk" => RelinKey::from_bytes(&long, p).map(|_| ()),
            "gk" => GaloisKeys::from_bytes(&long, p).map(|_| ()),
            "evk" => EvaluationKeys::from_bytes(&long, p).map(|_| ()),
            "sk" => SecretKey::from_secret_bytes(&long, p).map(|_| ()),
            "params" => params_from_bytes(&long).map(|_| ()),
            _ => Plaintext::from_bytes(&long, p).map(|_| ()),
        };
        assert!(err_msg(r).contains("trailing"), "{name}");
    }
}

// ---------------------------------------------------------------------------
// Tampered headers and fields.
// ---------------------------------------------------------------------------

#[test]
fn tampered_headers_are_rejected() {
    let p = params();
    let bytes = small_ct().to_bytes(p).unwrap();
    let expect = |b: &[u8], needle: &str| {
        let m = err_msg(Ciphertext::from_bytes(b, p));
        assert!(m.contains(needle), "`{m}` lacks `{needle}`");
    };
    for i in 0..4 {
        let mut b = bytes.clone();
        b[i] ^= 0x20;
        expect(&b, "magic");
    }
    for i in 4..6 {
        let mut b = bytes.clone();
        b[i] ^= 1;
        expect(&b, "version");
    }
    for kind in [0u8, 14, 255] {
        let mut b = bytes.clone();
        b[6] = kind;
        expect(&b, "unknown object kind");
    }
    for kind in [1u8, 2, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13] {
        let mut b = bytes.clone();
        b[6] = kind;
        expect(&b, "expected a ciphertext");
    }
    for i in 7..15 {
        let mut b = bytes.clone();
        b[i] ^= 0x80;
        expect(&b, "parameter id mismatch");
    }
    // Name length 0 and too long.
    for len in [0u8, 65, 255] {
        let mut b = bytes.clone();
        b[15] = len;
        expect(&b, "name length");
    }
    // Another set's name (same length): refused by name.
    let mut b = bytes.clone();
    b[hs() - 1] = b'2';
    expect(&b, "insecure-n12");
    // Invalid UTF-8 in the name.
    let mut b = bytes.clone();
    b[16] = 0xff;
    expect(&b, "UTF-8");
    // Reading with another parameter set.
    let other = Params::named("insecure-n12").unwrap();
    assert!(is_malformed(&Ciphertext::from_bytes(&bytes, &other)));
    // Writing with another parameter set refuses keys made elsewhere.
    assert!(ctx().pk.to_bytes(&other).is_err());
}

#[test]
fn coefficients_at_or_above_their_modulus_are_rejected() {
    let p = params();
    let ct = small_ct();
    let bytes = ct.to_bytes(p).unwrap();
    let polys = hs() + 17;
    let n = p.n;
    // First coefficient of limb 0, first of limb 1, last of the last limb.
    for (at, q) in [
        (polys, p.q[0]),
        (polys + n * 8, p.q[1]),
        (bytes.len() - 8, p.q[1]),
    ] {
        for v in [q, q + 1, u64::MAX] {
            let mut b = bytes.clone();
            put_u64(&mut b, at, v);
            let m = err_msg(Ciphertext::from_bytes(&b, p));
            assert!(m.contains("not below its modulus"), "{m}");
        }
        let mut b = bytes.clone();
        put_u64(&mut b, at, q - 1);
        assert!(Ciphertext::from_bytes(&b, p).is_ok());
    }
    // Keys: the last limb is modulo the special prime.
    let rb = keys().relin.as_ref().unwrap().to_bytes(p).unwrap();
    let limbs = p.q.len() + p.p.len();
    let last = key_prime(p, limbs - 1);
    let mut b = rb.clone();
    let at = b.len() - 8;
    put_u64(&mut b, at, last);
    assert!(is_malformed(&RelinKey::from_bytes(&b, p)));
    put_u64(&mut b, at, last - 1);
    assert!(RelinKey::from_bytes(&b, p).is_ok());
    let mut b = ctx().pk.to_bytes(p).unwrap();
    let at = hs() + 4;
    put_u64(&mut b, at, p.q[0]);
    assert!(is_malformed(&PublicKey::from_bytes(&b, p)));
}

/// An in-place change to serialized bytes.
type Edit = Box<dyn Fn(&mut [u8])>;

#[test]
fn bad_ciphertext_fields_are_rejected() {
    let p = params();
    let bytes = small_ct().to_bytes(p).unwrap();
    let (lv, sl, sc, dg) = (hs(), hs() + 4, hs() + 8, hs() + 16);
    let cases: Vec<(&str, Edit)> = vec![
        ("level", Box::new(move |b| put_u32(b, lv, 4))),
        ("level", Box::new(move |b| put_u32(b, lv, u32::MAX))),
        ("slot count", Box::new(move |b| put_u32(b, sl, 0))),
        ("slot count", Box::new(move |b| put_u32(b, sl, 3))),
        ("slot count", Box::new(move |b| put_u32(b, sl, 1024))),
        ("slot count", Box::new(move |b| put_u32(b, sl, 1 << 31))),
        (
            "scale",
            Box::new(move |b| put_u64(b, sc, f64::NAN.to_bits())),
        ),
        (
            "scale",
            Box::new(move |b| put_u64(b, sc, f64::INFINITY.to_bits())),
        ),
        ("scale", Box::new(move |b| put_u64(b, sc, 0.5f64.to_bits()))),
        (
            "scale",
            Box::new(move |b| put_u64(b, sc, (-1e10f64).to_bits())),
        ),
        ("degree", Box::new(move |b| b[dg] = 0)),
        ("degree", Box::new(move |b| b[dg] = 3)),
        ("degree", Box::new(move |b| b[dg] = 255)),
        // A lower level than written leaves trailing bytes.
        ("trailing", Box::new(move |b| put_u32(b, lv, 0))),
        // A higher level or degree than written runs out of input.
        ("truncated", Box::new(move |b| put_u32(b, lv, 2))),
        ("truncated", Box::new(move |b| b[dg] = 2)),
    ];
    for (needle, f) in cases {
        let mut b = bytes.clone();
        f(&mut b);
        let (r, big) = largest_alloc(|| Ciphertext::from_bytes(&b, p));
        let m = err_msg(r);
        assert!(m.contains(needle), "`{m}` lacks `{needle}`");
        if needle != "trailing" {
            assert!(big < 4096, "allocated {big} bytes before refusing ({m})");
        }
    }
}

#[test]
fn absurd_key_lengths_are_rejected_without_allocation() {
    let p = params();
    let k = keys();
    let rb = k.relin.as_ref().unwrap().to_bytes(p).unwrap();
    let gb = k.galois.as_ref().unwrap().to_bytes(p).unwrap();
    let eb = k.to_bytes(p).unwrap();
    let h = hs();
    let check = |r: Result<()>, needle: &str, big: usize| {
        let m = err_msg(r);
        assert!(m.contains(needle), "`{m}` lacks `{needle}`");
        assert!(big < 4096, "allocated {big} bytes before refusing ({m})");
    };

    // Relin key: digits and limbs.
    for (at, v, needle) in [
        (h, 0u32, "digits"),
        (h, 3, "digits"),
        (h, u32::MAX, "digits"),
        (h + 4, 4, "limbs"),
        (h + 4, u32::MAX, "limbs"),
    ] {
        let mut b = rb.clone();
        put_u32(&mut b, at, v);
        let (r, big) = largest_alloc(|| RelinKey::from_bytes(&b, p).map(|_| ()));
        check(r, needle, big);
    }
    // Public key limbs.
    let mut b = ctx().pk.to_bytes(p).unwrap();
    put_u32(&mut b, h, 5);
    let (r, big) = largest_alloc(|| PublicKey::from_bytes(&b, p).map(|_| ()));
    check(r, "limbs", big);

    // Galois keys: count, elements.
    let elems = k.galois.as_ref().unwrap().elements();
    assert!(elems.len() >= 2);
    let first = h + 4;
    let second = first + (gb.len() - h - 4) / elems.len();
    for (at, v, needle) in [
        (h, u64::from(u32::MAX), "Galois keys"),
        (h, 1025, "Galois keys"),
        // Believable count, but far more than the input holds.
        (h, 1024, "truncated"),
        (first, 4, "not odd"),
        (first, 2048, "not odd and below"),
        (first, u64::MAX, "not odd and below"),
        (second, elems[0], "repeated"),
        (second, 1, "out of increasing order"),
    ] {
        let mut b = gb.clone();
        if at == h {
            put_u32(&mut b, at, v as u32);
        } else {
            put_u64(&mut b, at, v);
        }
        let (r, big) = largest_alloc(|| GaloisKeys::from_bytes(&b, p).map(|_| ()));
        if at == second {
            // The first key was read (one polynomial at a time) before the
            // second element was seen.
            let m = err_msg(r);
            assert!(m.contains(needle), "`{m}` lacks `{needle}`");
            assert!(big <= (p.q.len() + p.p.len()) * p.n * 8);
        } else {
            check(r, needle, big);
        }
    }
    // Stream reader with a believable count and nothing behind it: allocates
    // at most one polynomial's worth (sized by the parameters), then stops.
    let mut b = gb[..h + 4].to_vec();
    put_u32(&mut b, h, 1024);
    let one_poly = (p.q.len() + p.p.len()) * p.n * 8;
    let (r, big) = largest_alloc(|| GaloisKeys::read_from(&mut &b[..], p).map(|_| ()));
    assert!(err_msg(r).contains("truncated"));
    assert!(big <= one_poly, "allocated {big} bytes");

    // Evaluation key flags.
    for flags in [4u8, 0x80, 0xff] {
        let mut b = eb.clone();
        b[h] = flags;
        let (r, big) = largest_alloc(|| EvaluationKeys::from_bytes(&b, p).map(|_| ()));
        check(r, "flags", big);
    }
    // Flags claiming less than is there, or more.
    let mut b = eb.clone();
    b[h] = 1;
    assert!(err_msg(EvaluationKeys::from_bytes(&b, p)).contains("trailing"));
    let mut b = k.to_bytes(p).unwrap();
    b.truncate(h + 1 + rb.len() - h);
    b[h] = 3;
    assert!(err_msg(EvaluationKeys::from_bytes(&b, p)).contains("truncated"));

    // Secret key limbs.
    let mut b = ctx().sk.to_secret_bytes().unwrap().to_vec();
    put_u32(&mut b, h, u32::MAX);
    let (r, big) = largest_alloc(|| SecretKey::from_secret_bytes(&b, p).map(|_| ()));
    check(r, "limbs", big);
}

// ---------------------------------------------------------------------------
// Random mutations: never a panic; anything accepted re-serializes exactly.
// ---------------------------------------------------------------------------

fn ct_bytes() -> &'static Vec<u8> {
    static B: OnceLock<Vec<u8>> = OnceLock::new();
    B.get_or_init(|| small_ct().to_bytes(params()).unwrap())
}

fn compact_evk_bytes() -> &'static Vec<u8> {
    static B: OnceLock<Vec<u8>> = OnceLock::new();
    B.get_or_init(|| compact_keys().to_bytes(params()).unwrap())
}

fn evk_bytes() -> &'static Vec<u8> {
    static B: OnceLock<Vec<u8>> = OnceLock::new();
    B.get_or_init(|| keys().to_bytes(params()).unwrap())
}

fn mutate(bytes: &[u8], edits: &[(usize, u8, bool)]) -> Vec<u8> {
    let mut b = bytes.to_vec();
    for &(pos, val, head) in edits {
        // Half the edits land in the first 64 bytes, where the fields are.
        let i = if head { pos % 64 } else { pos % b.len() };
        b[i] = val;
    }
    b
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, .. ProptestConfig::default() })]

    #[test]
    fn mutated_ciphertexts_never_panic(
        edits in prop::collection::vec((any::<usize>(), any::<u8>(), any::<bool>()), 1..6),
        cut in prop::option::of(any::<usize>()),
    ) {
        let p = params();
        let mut b = mutate(ct_bytes(), &edits);
        if let Some(c) = cut {
            b.truncate(c % (b.len() + 1));
        }
        if let Ok(ct) = Ciphertext::from_bytes(&b, p) {
            prop_assert_eq!(ct.to_bytes(p).unwrap(), b.clone());
        }
        let _ = Ciphertext::read_from(&mut &b[..], p);
        let _ = peek_header(&b);
        let _ = Plaintext::from_bytes(&b, p);
        let _ = SecretKey::from_secret_bytes(&b, p);
        let _ = params_from_bytes(&b);
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, .. ProptestConfig::default() })]

    #[test]
    fn mutated_keys_never_panic(
        edits in prop::collection::vec((any::<usize>(), any::<u8>(), any::<bool>()), 1..6),
    ) {
        let p = params();
        let b = mutate(evk_bytes(), &edits);
        if let Ok(k) = EvaluationKeys::from_bytes(&b, p) {
            prop_assert_eq!(k.to_bytes(p).unwrap(), b.clone());
        }
        let _ = GaloisKeys::from_bytes(&b, p);
        let _ = RelinKey::from_bytes(&b, p);
    }

    #[test]
    fn mutated_compact_keys_never_panic(
        edits in prop::collection::vec((any::<usize>(), any::<u8>(), any::<bool>()), 1..6),
    ) {
        let p = params();
        let b = mutate(compact_evk_bytes(), &edits);
        if let Ok(k) = Compact::<EvaluationKeys>::from_bytes(&b, p) {
            prop_assert_eq!(k.to_bytes(p).unwrap(), b.clone());
        }
        let _ = EvaluationKeys::from_bytes(&b, p);
        let _ = EvaluationKeys::read_from(&mut &b[..], p);
    }
}

/// Galois keys at several levels round-trip in full and compact form, keep
/// their levels, still rotate, and a limb count that names a level above
/// the top (or no Q limb at all) is refused.
#[test]
fn level_restricted_galois_keys_round_trip() {
    let c = ctx();
    let p = params();
    let mut kg = KeyGenerator::with_seed(p.clone(), [7u8; 32]);
    let sk = kg.secret_key();
    let (g1, g3) = (
        ckks::keys::rotation_element(p, 1),
        ckks::keys::rotation_element(p, 3),
    );
    let gk = kg.galois_keys_at_levels(&sk, &[(g1, 0), (g3, 2)]).unwrap();
    let bytes = gk.to_bytes(p).unwrap();
    assert_eq!(bytes.len(), galois_keys_size(&gk, false));
    let back = GaloisKeys::from_bytes(&bytes, p).unwrap();
    assert_eq!(back.to_bytes(p).unwrap(), bytes);
    let compact = kg
        .galois_keys_at_levels_compact(&sk, &[(g1, 0), (g3, 2)])
        .unwrap();
    let cb = compact.to_bytes(p).unwrap();
    assert_eq!(cb.len(), galois_keys_size(compact.key(), true));
    let expanded = GaloisKeys::from_bytes(&cb, p).unwrap();
    assert_eq!(
        expanded.to_bytes(p).unwrap(),
        compact.key().to_bytes(p).unwrap()
    );
    // the compact keys rotate at their levels
    let keys = EvaluationKeys {
        relin: None,
        galois: Some(expanded),
    };
    let eval = Evaluator::new(p.clone(), Arc::new(keys)).unwrap();
    let n = c.slots();
    let a = values(n, 5);
    let pt = c.enc.encode(&a, 2, p.default_scale(), n).unwrap();
    let ct = Encryptor::new(p.clone()).encrypt_sk(&sk, &pt).unwrap();
    let got = c.enc.decode(
        &Decryptor::new(&sk)
            .decrypt(&eval.rotate(&ct, 3).unwrap())
            .unwrap(),
    );
    let want: Vec<_> = (0..n).map(|i| a[(i + 3) % n]).collect();
    assert!(precision_bits(&got, &want) > 20.0);
    assert!(matches!(
        eval.rotate(&ct, 1),
        Err(CkksError::KeyLevel {
            key: 0,
            ciphertext: 2
        })
    ));
    // first key's limb count: after count u32, element u64, digits u32
    let at = hs() + 4 + 8 + 4;
    for limbs in [p.p.len() as u32, (p.q.len() + p.p.len() + 1) as u32] {
        let mut bad = bytes.clone();
        put_u32(&mut bad, at, limbs);
        assert!(
            is_malformed(&GaloisKeys::from_bytes(&bad, p)),
            "{limbs} limbs"
        );
    }
    // a relinearization key must be at the top level
    let low = RelinKey::from_bytes(&bytes, p);
    assert!(low.is_err());
}

// ---------------------------------------------------------------------------
// Issue 13: compact keys are generated as compact, never derived from a full
// key (the old `Compact::from_key` set b' = b + (a - a')s with the same
// error, which gives s = (b' - b) / (a - a') to anyone holding both forms).
// ---------------------------------------------------------------------------

fn u64s(b: &[u8], at: usize, count: usize) -> Vec<u64> {
    b[at..at + 8 * count]
        .chunks_exact(8)
        .map(|c| u64::from_le_bytes(c.try_into().unwrap()))
        .collect()
}

fn mul_mod(a: u64, b: u64, q: u64) -> u64 {
    (a as u128 * b as u128 % q as u128) as u64
}

fn inv_mod(a: u64, q: u64) -> u64 {
    let (mut r, mut b, mut e) = (1u64, a, q - 2);
    while e > 0 {
        if e & 1 == 1 {
            r = mul_mod(r, b, q);
        }
        b = mul_mod(b, b, q);
        e >>= 1;
    }
    r
}

/// (b, a) of one RLWE pair, limb by limb (NTT form), with the ring prime of each limb.
struct Pair {
    b: Vec<u64>,
    a: Vec<u64>,
    primes: Vec<u64>,
}

/// The pair of a full public key's bytes.
fn pk_pair(bytes: &[u8], p: &Params) -> Pair {
    let len = p.q.len() * p.n;
    let at = hs() + 4;
    Pair {
        b: u64s(bytes, at, len),
        a: u64s(bytes, at + 8 * len, len),
        primes: p.q.clone(),
    }
}

/// The first digit's pair of a full relinearization key's bytes.
fn rlk_pair(bytes: &[u8], p: &Params) -> Pair {
    let limbs = p.q.len() + p.p.len();
    let dnum = p.dnum_at(p.max_level());
    let len = limbs * p.n;
    let at = hs() + 8;
    Pair {
        b: u64s(bytes, at, len),
        a: u64s(bytes, at + 8 * dnum * len, len),
        primes: (0..limbs).map(|l| key_prime(p, l)).collect(),
    }
}

/// Coefficients at which the attack s = (b' - b) / (a - a') gives the secret.
fn recovered(x: &Pair, y: &Pair, s: &[u64], n: usize) -> usize {
    let mut hits = 0;
    let primes = x.primes.iter().flat_map(|q| std::iter::repeat_n(q, n));
    let pairs = x.b.iter().zip(&x.a).zip(y.b.iter().zip(&y.a));
    for (&s, (&q, ((&b1, &a1), (&b2, &a2)))) in s.iter().zip(primes.zip(pairs)) {
        let da = (a1 + q - a2) % q;
        if da == 0 {
            continue;
        }
        let db = (b2 + q - b1) % q;
        if mul_mod(db, inv_mod(da, q), q) == s {
            hits += 1;
        }
    }
    hits
}

#[test]
fn two_forms_of_a_key_do_not_give_away_the_secret() {
    let p = params();
    let n = p.n;
    let mut kg = KeyGenerator::with_seed(p.clone(), [21; 32]);
    let sk = kg.secret_key();
    let sb = sk.to_secret_bytes().unwrap();
    let s = u64s(&sb, hs() + 4, (p.q.len() + p.p.len()) * n);
    let expanded = |b: Vec<u8>| PublicKey::from_bytes(&b, p).unwrap().to_bytes(p).unwrap();

    let full = pk_pair(&kg.public_key(&sk).to_bytes(p).unwrap(), p);
    let c1 = kg.public_key_compact(&sk);
    let c2 = kg.public_key_compact(&sk);
    let c1 = pk_pair(&expanded(c1.to_bytes(p).unwrap()), p);
    let c2 = pk_pair(&expanded(c2.to_bytes(p).unwrap()), p);
    let q_len = p.q.len() * n;

    // The attack works on the old construction: a compact form derived from
    // the full key keeps its error and gives s at every coefficient.
    let mut old = Pair {
        b: full.b.clone(),
        a: c1.a.clone(),
        primes: p.q.clone(),
    };
    let primes = p.q.iter().flat_map(|&q| std::iter::repeat_n(q, n));
    for (((b, &a_new), (&a, &s)), q) in old
        .b
        .iter_mut()
        .zip(&old.a)
        .zip(full.a.iter().zip(&s))
        .zip(primes)
    {
        *b = (*b + mul_mod((a + q - a_new) % q, s, q)) % q;
    }
    assert_eq!(recovered(&full, &old, &s[..q_len], n), q_len);

    // Keys made by the generator: full vs compact, compact vs compact.
    assert_eq!(recovered(&full, &c1, &s[..q_len], n), 0);
    assert_eq!(recovered(&c1, &c2, &s[..q_len], n), 0);

    // Relinearization keys: full vs compact.
    let rfull = rlk_pair(&kg.relin_key(&sk).to_bytes(p).unwrap(), p);
    let rc = kg.relin_key_compact(&sk).to_bytes(p).unwrap();
    let rc = rlk_pair(
        &RelinKey::from_bytes(&rc, p).unwrap().to_bytes(p).unwrap(),
        p,
    );
    assert_eq!(recovered(&rfull, &rc, &s, n), 0);
}
