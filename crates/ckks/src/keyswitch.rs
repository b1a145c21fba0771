//! Hybrid key switching: digit decomposition with exact basis extension to
//! Q_l*P (ModUp), inner product with a switching key, and division by P (ModDown).
//!
//! Decomposition is separated from the inner product so that many rotations of
//! one ciphertext share it (hoisting).

use crate::keys::SwitchingKey;
use crate::params::Params;
use crate::profile::{self, Kernel};
use crate::ring::Poly;
use rayon::prelude::*;

/// A polynomial decomposed into digits, each extended to Q_l*P in NTT form.
pub struct Decomposed {
    pub(crate) level: usize,
    pub(crate) digits: Vec<Poly>,
}

/// ModUp: decomposes an NTT-form polynomial at `level` into extended digits.
pub(crate) fn decompose(p: &Params, c: &Poly, level: usize) -> Decomposed {
    let _span = profile::span(Kernel::ModUp);
    let n = p.n;
    let ring = &p.ring;
    let qidx = p.q_idx(level);
    let qp = p.qp_idx(level);
    let mut coeff = c.prefix(level + 1);
    ring.intt_poly(&mut coeff, &qidx);
    let digits = (0..p.dnum_at(level))
        .into_par_iter()
        .map(|j| {
            let lo = j * p.alpha;
            let hi = ((j + 1) * p.alpha).min(level + 1);
            let from: Vec<usize> = (lo..hi).collect();
            let to: Vec<usize> = qp.iter().copied().filter(|&i| i < lo || i >= hi).collect();
            let src = Poly {
                n,
                data: coeff.data[lo * n..hi * n].to_vec(),
            };
            let mut out = Poly::zero(n, qp.len());
            let mut targets: Vec<&mut [u64]> = Vec::with_capacity(to.len());
            for (k, limb) in out.data.chunks_mut(n).enumerate() {
                let mi = qp[k];
                if mi >= lo && mi < hi {
                    limb.copy_from_slice(c.limb(mi));
                } else {
                    targets.push(limb);
                }
            }
            ring.convert_exact_into(&src, &from, &to, &mut targets);
            targets
                .par_iter_mut()
                .zip(to.par_iter())
                .for_each(|(l, &mi)| ring.ntt(mi, l));
            out
        })
        .collect();
    Decomposed { level, digits }
}

/// Inner product of the digits with a switching key, over Q_l*P (NTT form).
pub(crate) fn inner_product(p: &Params, d: &Decomposed, key: &SwitchingKey) -> (Poly, Poly) {
    let _span = profile::span(Kernel::InnerProduct);
    let n = p.n;
    let qp = p.qp_idx(d.level);
    assert!(
        d.level <= key.level && d.digits.len() <= key.b.len(),
        "key level checked by the caller"
    );
    // A key at level L holds q_0..q_L then P: ring prime mi sits at limb mi
    // if it is a Q prime, at L + 1 + (mi - |Q|) if it is a P prime.
    let nq = p.q.len();
    let key_limb = |mi: usize| {
        if mi < nq {
            mi
        } else {
            key.level + 1 + (mi - nq)
        }
    };
    let mut a0 = Poly::zero(n, qp.len());
    let mut a1 = Poly::zero(n, qp.len());
    a0.data
        .par_chunks_mut(n)
        .zip(a1.data.par_chunks_mut(n))
        .zip(qp.par_iter().enumerate())
        .for_each(|((o0, o1), (k, &mi))| {
            let kl = key_limb(mi);
            let xs: Vec<&[u64]> = d.digits.iter().map(|dj| dj.limb(k)).collect();
            let kb: Vec<&[u64]> = (0..xs.len()).map(|j| key.b[j].limb(kl)).collect();
            let ka: Vec<&[u64]> = (0..xs.len()).map(|j| key.a[j].limb(kl)).collect();
            p.ring.dot2_acc_slice(mi, o0, o1, &xs, &kb, &ka);
        });
    (a0, a1)
}

/// ModDown: divides a Q_l*P polynomial (NTT form) by P with rounding, giving Q_l.
pub(crate) fn mod_down(p: &Params, a: &Poly, level: usize) -> Poly {
    let _span = profile::span(Kernel::ModDown);
    let n = p.n;
    let ring = &p.ring;
    let qidx = p.q_idx(level);
    let pidx = p.p_idx();
    let mut pl = Poly {
        n,
        data: a.data[(level + 1) * n..].to_vec(),
    };
    ring.intt_poly(&mut pl, &pidx);
    let mut ext = ring.convert_exact(&pl, &pidx, &qidx);
    ring.ntt_poly(&mut ext, &qidx);
    let mut out = Poly::zero(n, level + 1);
    out.data
        .par_chunks_mut(n)
        .zip(ext.data.par_chunks(n))
        .enumerate()
        .for_each(|(i, (o, e))| ring.sub_mul_const_slice(i, o, a.limb(i), e, p.p_inv_mod_q[i]));
    out
}

/// ModDown fused with a rescale: for `a` over Q_l*P (NTT form, from
/// [`inner_product`]) and `c` over Q_l (NTT form, at least `level + 1`
/// limbs), the rounded quotient (a + P c) / (P q_l) over Q_{l-1}.
///
/// The same polynomial as [`mod_down`] of `a`, plus `c`, then a rescale by
/// q_l: with a = P a' + r, |r| < P/2, (a + P c) / (P q_l) is
/// (a' + c) / q_l + r / (P q_l), and the second term (below 1 / (2 q_l))
/// cannot move an integer over q_l (q_l odd) across a half-integer, so both
/// round alike. Here the q_l limb joins the P limbs and their centered
/// value modulo P q_l is converted to q_0..q_{l-1} in one basis
/// conversion: the separate rescale's inverse NTT, basis conversion and `l`
/// forward NTTs per polynomial disappear. Fusing ModDown with the
/// following rescale is one of the kernel fusions of Jung et al., "Over
/// 100x faster bootstrapping in fully homomorphic encryption through
/// memory-centric optimization with GPUs" (TCHES 2021).
pub(crate) fn mod_down_rescale(p: &Params, a: &Poly, c: &Poly, level: usize) -> Poly {
    let _span = profile::span(Kernel::ModDown);
    let n = p.n;
    let ring = &p.ring;
    let l = level;
    assert!(l >= 1, "rescale at level 0 refused by the caller");
    // The primes divided out, in limb order: q_l, then P.
    let from: Vec<usize> = std::iter::once(l).chain(p.p_idx()).collect();
    let lower: Vec<usize> = (0..l).collect();
    let mut top = Poly {
        n,
        data: Vec::with_capacity(from.len() * n),
    };
    // (a + P c) mod q_l; modulo the P primes, P c vanishes.
    let ml = ring.moduli[l];
    let pl = p.p_mod_q[l];
    let pls = ml.shoup(pl);
    top.data.extend(
        a.limb(l)
            .iter()
            .zip(c.limb(l))
            .map(|(&x, &y)| ml.add(x, ml.mul_shoup(y, pl, pls))),
    );
    top.data.extend_from_slice(&a.data[(l + 1) * n..]);
    ring.intt_poly(&mut top, &from);
    let mut ext = ring.convert_exact(&top, &from, &lower);
    ring.ntt_poly(&mut ext, &lower);
    let mut out = Poly::zero(n, l);
    out.data
        .par_chunks_mut(n)
        .zip(ext.data.par_chunks(n))
        .enumerate()
        .for_each(|(i, (o, e))| {
            let m = ring.moduli[i];
            // (a + P c - e) / (P q_l) = (a - e) w + c q_l^-1, w = (P q_l)^-1
            let ql_inv = p.q_inv[l][i];
            let w = m.mul(p.p_inv_mod_q[i], ql_inv);
            let (x, y) = (a.limb(i), c.limb(i));
            if crate::simd::lincomb_mod(o, &[x, y, e], m.value, &[w, ql_inv, m.neg(w)], m.value) {
                return;
            }
            let (ws, qs) = (m.shoup(w), m.shoup(ql_inv));
            o.iter_mut()
                .zip(x.iter().zip(y).zip(e))
                .for_each(|(o, ((&x, &y), &e))| {
                    *o = m.add(m.mul_shoup(m.sub(x, e), w, ws), m.mul_shoup(y, ql_inv, qs));
                });
        });
    out
}

/// Full key switch of one polynomial: returns (a0, a1) over Q_l with
/// a0 + a1*s ~ c*s' where the key switches s' to s.
pub(crate) fn key_switch(p: &Params, c: &Poly, level: usize, key: &SwitchingKey) -> (Poly, Poly) {
    let d = decompose(p, c, level);
    let (a0, a1) = inner_product(p, &d, key);
    (mod_down(p, &a0, level), mod_down(p, &a1, level))
}
