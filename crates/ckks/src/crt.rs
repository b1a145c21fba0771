//! CRT reconstruction of RNS coefficients into centered real numbers.

use crate::params::Params;
use crate::ring::Poly;
use num_bigint::{BigInt, BigUint};
use rayon::prelude::*;

/// Centered integer value of each coefficient of a coefficient-form
/// polynomial at `level`, as f64.
pub(crate) fn centered_to_f64(p: &Params, poly: &Poly, level: usize) -> Vec<f64> {
    let n = p.n;
    let m0 = p.ring.moduli[0];
    if level == 0 {
        return poly
            .limb(0)
            .iter()
            .map(|&x| m0.centered(x) as f64)
            .collect();
    }
    let qs = &p.q[..=level];
    let big_q: BigUint = qs.iter().map(|&q| BigUint::from(q)).product();
    let half = &big_q >> 1;
    // x = sum_i [x_i * (Q/q_i)^{-1}]_{q_i} * (Q/q_i) mod Q
    let terms: Vec<(u64, u64, BigUint)> = qs
        .iter()
        .enumerate()
        .map(|(i, &q)| {
            let m = p.ring.moduli[i];
            let punct = &big_q / q;
            let r = (&punct % q).to_u64_digits().first().copied().unwrap_or(0);
            let inv = m.inv(r);
            (inv, m.shoup(inv), punct)
        })
        .collect();
    (0..n)
        .into_par_iter()
        .map(|k| {
            let mut acc = BigUint::default();
            for (i, (inv, invs, punct)) in terms.iter().enumerate() {
                let m = p.ring.moduli[i];
                let y = m.mul_shoup(poly.data[i * n + k], *inv, *invs);
                acc += punct * y;
            }
            acc %= &big_q;
            let v = if acc > half {
                -BigInt::from(&big_q - &acc)
            } else {
                BigInt::from(acc)
            };
            bigint_to_f64(&v)
        })
        .collect()
}

fn bigint_to_f64(v: &BigInt) -> f64 {
    let (sign, digits) = v.to_u64_digits();
    let mut x = 0.0f64;
    for d in digits.iter().rev() {
        x = x * 18446744073709551616.0 + *d as f64;
    }
    if sign == num_bigint::Sign::Minus {
        -x
    } else {
        x
    }
}
