//! Word-sized modular arithmetic for NTT-friendly primes below 2^62.

/// A prime modulus with precomputed constants for fast reduction.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Modulus {
    /// The prime itself.
    pub value: u64,
    /// floor(2^128 / value), low word.
    ratio_lo: u64,
    /// floor(2^128 / value), high word.
    ratio_hi: u64,
}

impl Modulus {
    /// Precomputes reduction constants; `q` must be odd and below 2^62.
    pub fn new(q: u64) -> Self {
        assert!(q > 2 && q < (1 << 62) && !q.is_multiple_of(2));
        let r = u128::MAX / q as u128;
        Self {
            value: q,
            ratio_lo: r as u64,
            ratio_hi: (r >> 64) as u64,
        }
    }

    /// Reduces any 128-bit value modulo q (Barrett with a 128-bit ratio).
    #[inline(always)]
    pub fn reduce_u128(&self, x: u128) -> u64 {
        let lo = x as u64;
        let hi = (x >> 64) as u64;
        let a = (lo as u128 * self.ratio_lo as u128) >> 64;
        let b = lo as u128 * self.ratio_hi as u128;
        let c = hi as u128 * self.ratio_lo as u128;
        let mid = a + (b as u64 as u128) + (c as u64 as u128);
        let q_est = (hi as u128 * self.ratio_hi as u128) + (b >> 64) + (c >> 64) + (mid >> 64);
        let mut r = (x.wrapping_sub(q_est.wrapping_mul(self.value as u128))) as u64;
        while r >= self.value {
            r -= self.value;
        }
        r
    }

    /// Reduces a 64-bit value.
    #[inline(always)]
    pub fn reduce(&self, x: u64) -> u64 {
        // ratio_hi = floor(2^64 / q) up to one unit, so the estimate is off by at most 2.
        let q_est = ((x as u128 * self.ratio_hi as u128) >> 64) as u64;
        let mut r = x.wrapping_sub(q_est.wrapping_mul(self.value));
        while r >= self.value {
            r -= self.value;
        }
        r
    }

    /// (a * w) mod q up to one extra q: the result is in [0, 2q). Any 64-bit `a`.
    #[inline(always)]
    pub fn mul_shoup_lazy(&self, a: u64, w: u64, ws: u64) -> u64 {
        let qhat = ((a as u128 * ws as u128) >> 64) as u64;
        a.wrapping_mul(w)
            .wrapping_sub(qhat.wrapping_mul(self.value))
    }

    /// (a * b) mod q.
    #[inline(always)]
    pub fn mul(&self, a: u64, b: u64) -> u64 {
        self.reduce_u128(a as u128 * b as u128)
    }

    /// (a + b) mod q for reduced inputs.
    #[inline(always)]
    pub fn add(&self, a: u64, b: u64) -> u64 {
        let s = a + b;
        if s >= self.value { s - self.value } else { s }
    }

    /// (a - b) mod q for reduced inputs.
    #[inline(always)]
    pub fn sub(&self, a: u64, b: u64) -> u64 {
        if a >= b { a - b } else { a + self.value - b }
    }

    /// -a mod q for a reduced input.
    #[inline(always)]
    pub fn neg(&self, a: u64) -> u64 {
        if a == 0 { 0 } else { self.value - a }
    }

    /// a^e mod q.
    pub fn pow(&self, mut a: u64, mut e: u64) -> u64 {
        let mut r = 1u64;
        a = self.reduce(a);
        while e > 0 {
            if e & 1 == 1 {
                r = self.mul(r, a);
            }
            a = self.mul(a, a);
            e >>= 1;
        }
        r
    }

    /// Multiplicative inverse of a nonzero a (q prime).
    pub fn inv(&self, a: u64) -> u64 {
        self.pow(a, self.value - 2)
    }

    /// Shoup companion of a constant w: floor(w * 2^64 / q).
    #[inline(always)]
    pub fn shoup(&self, w: u64) -> u64 {
        (((w as u128) << 64) / self.value as u128) as u64
    }

    /// (a * w) mod q with the Shoup companion `ws` of w.
    #[inline(always)]
    pub fn mul_shoup(&self, a: u64, w: u64, ws: u64) -> u64 {
        let qhat = ((a as u128 * ws as u128) >> 64) as u64;
        let r = a
            .wrapping_mul(w)
            .wrapping_sub(qhat.wrapping_mul(self.value));
        if r >= self.value { r - self.value } else { r }
    }

    /// Maps a signed integer into [0, q).
    #[inline(always)]
    pub fn from_i64(&self, x: i64) -> u64 {
        if x >= 0 {
            self.reduce(x as u64)
        } else {
            self.neg(self.reduce(x.unsigned_abs()))
        }
    }

    /// Centered lift of a reduced value into (-q/2, q/2].
    #[inline(always)]
    pub fn centered(&self, x: u64) -> i64 {
        if x > self.value / 2 {
            x as i64 - self.value as i64
        } else {
            x as i64
        }
    }

    /// Exact residue of round(x) for any finite f64 (however large).
    pub fn from_f64(&self, x: f64) -> u64 {
        let r = x.round();
        if r.abs() < 9.0e18 {
            return self.from_i64(r as i64);
        }
        // r = m * 2^e exactly, with |m| < 2^53.
        let bits = r.abs().to_bits();
        let exp = ((bits >> 52) & 0x7ff) as i64 - 1075;
        let mant = (bits & ((1u64 << 52) - 1)) | (1u64 << 52);
        let v = self.mul(self.reduce(mant), self.pow(2, exp as u64));
        if r < 0.0 { self.neg(v) } else { v }
    }
}

/// Deterministic Miller-Rabin for 64-bit integers.
pub fn is_prime(n: u64) -> bool {
    if n < 2 {
        return false;
    }
    for p in [2u64, 3, 5, 7, 11, 13, 17, 19, 23, 29, 31, 37] {
        if n.is_multiple_of(p) {
            return n == p;
        }
    }
    let mul = |a: u64, b: u64| ((a as u128 * b as u128) % n as u128) as u64;
    let pow = |mut a: u64, mut e: u64| {
        let mut r = 1u64;
        while e > 0 {
            if e & 1 == 1 {
                r = mul(r, a);
            }
            a = mul(a, a);
            e >>= 1;
        }
        r
    };
    let d0 = n - 1;
    let s = d0.trailing_zeros();
    let d = d0 >> s;
    'witness: for a in [2u64, 3, 5, 7, 11, 13, 17, 19, 23, 29, 31, 37] {
        let mut x = pow(a, d);
        if x == 1 || x == n - 1 {
            continue;
        }
        for _ in 1..s {
            x = mul(x, x);
            if x == n - 1 {
                continue 'witness;
            }
        }
        return false;
    }
    true
}

/// Distinct primes p = 1 mod 2n of the given bit sizes, each as close to
/// 2^bits as possible (alternating above and below), avoiding `taken`.
///
/// Closeness to a power of two keeps CKKS scales stable across rescales.
pub fn ntt_primes(bits: &[u32], two_n: u64, taken: &[u64]) -> Vec<u64> {
    let mut out: Vec<u64> = Vec::with_capacity(bits.len());
    for &b in bits {
        let center = 1u64 << b;
        let mut k = 1u64;
        let p = loop {
            // candidates center + k*2n + 1 and center - k*2n + 1, nearest first
            let up = center + (k - 1) * two_n + 1;
            let down = center - k * two_n + 1;
            let mut found = None;
            for c in [up, down] {
                if c < (1u64 << 62) && is_prime(c) && !taken.contains(&c) && !out.contains(&c) {
                    found = Some(c);
                    break;
                }
            }
            if let Some(c) = found {
                break c;
            }
            k += 1;
        };
        out.push(p);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn mul_matches_u128(a in any::<u64>(), b in any::<u64>(), qi in 0usize..3) {
            let q = [1125899906826241u64, (1u64 << 61) - 1, 65537][qi];
            let m = Modulus::new(q);
            let (a, b) = (a % q, b % q);
            prop_assert_eq!(m.mul(a, b), ((a as u128 * b as u128) % q as u128) as u64);
            prop_assert_eq!(m.mul_shoup(a, b, m.shoup(b)), m.mul(a, b));
        }

        #[test]
        fn reduce_any_u128(x in any::<u128>()) {
            let q = 1152921504606748673u64;
            prop_assert_eq!(Modulus::new(q).reduce_u128(x), (x % q as u128) as u64);
        }

        #[test]
        fn from_f64_exact(m in -(1i64 << 52)..(1i64 << 52), e in 0u32..70) {
            let q = 1125899906826241u64;
            let md = Modulus::new(q);
            let x = (m as f64) * 2f64.powi(e as i32);
            let want = md.mul(md.from_i64(m), md.pow(2, e as u64));
            prop_assert_eq!(md.from_f64(x), want);
        }
    }

    #[test]
    fn primes_are_ntt_friendly() {
        let ps = ntt_primes(&[50, 50, 60], 1 << 16, &[]);
        for (p, b) in ps.iter().zip([50, 50, 60]) {
            assert!(is_prime(*p));
            assert_eq!(p % (1 << 16), 1);
            assert!(((*p as f64).log2() - b as f64).abs() < 0.01);
        }
        assert_ne!(ps[0], ps[1]);
    }
}
