//! Randomness: uniform ring elements, ternary secrets, discrete Gaussian errors.

use crate::params::Params;
use crate::ring::Poly;
use rand::{Rng, RngCore, SeedableRng};
use rand_chacha::ChaCha20Rng;
use rand_distr::{Distribution, Normal};
use zeroize::Zeroizing;

/// Standard deviation of the error distribution (HE Standard).
pub const SIGMA: f64 = 3.19;
/// Errors are cut at this many standard deviations.
pub const SIGMA_BOUND: f64 = 6.0;

/// A cryptographically secure generator seeded from the OS.
pub fn secure_rng() -> ChaCha20Rng {
    ChaCha20Rng::from_entropy()
}

/// Uniform polynomial over the ring primes `idx` (any domain: uniform is uniform).
pub fn uniform(p: &Params, idx: &[usize], rng: &mut impl RngCore) -> Poly {
    let n = p.n;
    let mut out = Poly::zero(n, idx.len());
    for (k, &mi) in idx.iter().enumerate() {
        let q = p.ring.moduli[mi].value;
        let bound = u64::MAX - u64::MAX % q;
        for x in out.limb_mut(k) {
            *x = loop {
                let r = rng.next_u64();
                if r < bound {
                    break r % q;
                }
            };
        }
    }
    out
}

/// Uniform ternary coefficients in {-1, 0, 1}.
pub fn ternary(n: usize, rng: &mut impl RngCore) -> Vec<i64> {
    (0..n)
        .map(|_| {
            loop {
                let r = rng.next_u32() & 3;
                if r < 3 {
                    break r as i64 - 1;
                }
            }
        })
        .collect()
}

/// Ternary coefficients with exactly `h` nonzero entries (sparse secrets).
pub fn sparse_ternary(n: usize, h: usize, rng: &mut impl RngCore) -> Vec<i64> {
    let mut v = vec![0i64; n];
    let mut placed = 0;
    while placed < h.min(n) {
        let i = rng.gen_range(0..n);
        if v[i] == 0 {
            v[i] = if rng.next_u32() & 1 == 0 { 1 } else { -1 };
            placed += 1;
        }
    }
    v
}

/// Rounded Gaussian coefficients of standard deviation SIGMA, cut at 6 sigma.
pub fn gaussian(n: usize, rng: &mut impl RngCore) -> Vec<i64> {
    let d = Normal::new(0.0, SIGMA).expect("valid sigma");
    (0..n)
        .map(|_| {
            loop {
                let x: f64 = d.sample(rng);
                if x.abs() <= SIGMA_BOUND * SIGMA {
                    break x.round() as i64;
                }
            }
        })
        .collect()
}

/// Small signed coefficients into RNS residues over `idx`, then NTT.
pub fn small_to_ntt(p: &Params, coeffs: &[i64], idx: &[usize]) -> Poly {
    let n = p.n;
    let mut out = Poly::zero(n, idx.len());
    for (k, &mi) in idx.iter().enumerate() {
        let m = p.ring.moduli[mi];
        let limb = out.limb_mut(k);
        for (o, &c) in limb.iter_mut().zip(coeffs) {
            *o = m.from_i64(c);
        }
    }
    p.ring.ntt_poly(&mut out, idx);
    out
}

/// A fresh error polynomial over `idx` in NTT form.
///
/// The coefficients drawn are zeroized once transformed: an error next to
/// its key or ciphertext gives the secret or the message away.
pub fn error_ntt(p: &Params, idx: &[usize], rng: &mut impl RngCore) -> Poly {
    let e = Zeroizing::new(gaussian(p.n, rng));
    small_to_ntt(p, &e, idx)
}

/// A deterministic generator from a 32-byte seed (for expandable public randomness).
pub fn seeded_rng(seed: [u8; 32]) -> ChaCha20Rng {
    ChaCha20Rng::from_seed(seed)
}

/// A random 32-byte seed.
pub fn fresh_seed(rng: &mut impl RngCore) -> [u8; 32] {
    let mut s = [0u8; 32];
    rng.fill_bytes(&mut s);
    s
}
