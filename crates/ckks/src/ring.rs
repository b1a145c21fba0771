//! The RNS polynomial ring `Z_Q[X]/(X^N + 1)`: NTTs, limb-wise arithmetic,
//! automorphisms, and exact basis conversion.

use crate::fpntt::FpNtt;
use crate::modarith::Modulus;
use crate::profile::{self, Kernel};
use rayon::prelude::*;
use tfhe_ntt::prime64::Plan;

/// A polynomial in RNS form: `limbs` residue vectors of length N stored
/// contiguously. Which primes the limbs belong to is fixed by context
/// (a ciphertext at level l holds q_0..q_l; extended polynomials append P).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Poly {
    pub(crate) n: usize,
    pub(crate) data: Vec<u64>,
}

/// Clears the coefficients (for secret-dependent polynomials held in
/// [`zeroize::Zeroizing`]).
impl zeroize::Zeroize for Poly {
    fn zeroize(&mut self) {
        self.data.zeroize();
    }
}

impl Poly {
    /// The zero polynomial with `limbs` residues of degree `n`.
    pub fn zero(n: usize, limbs: usize) -> Self {
        Self {
            n,
            data: vec![0; n * limbs],
        }
    }

    /// Number of RNS limbs.
    pub fn limbs(&self) -> usize {
        self.data.len() / self.n
    }

    /// Residues modulo the i-th limb's prime.
    pub fn limb(&self, i: usize) -> &[u64] {
        &self.data[i * self.n..(i + 1) * self.n]
    }

    /// Mutable residues modulo the i-th limb's prime.
    pub fn limb_mut(&mut self, i: usize) -> &mut [u64] {
        &mut self.data[i * self.n..(i + 1) * self.n]
    }

    /// Drops limbs beyond the first `limbs`.
    pub fn truncate(&mut self, limbs: usize) {
        self.data.truncate(limbs * self.n);
    }

    /// The limbs at positions `idx` (in that order), as a new polynomial.
    pub fn gather(&self, idx: &[usize]) -> Self {
        let mut out = Self::zero(self.n, idx.len());
        for (k, &i) in idx.iter().enumerate() {
            out.limb_mut(k).copy_from_slice(self.limb(i));
        }
        out
    }

    /// The first `limbs` limbs as a new polynomial.
    pub fn prefix(&self, limbs: usize) -> Self {
        Self {
            n: self.n,
            data: self.data[..limbs * self.n].to_vec(),
        }
    }
}

/// Precomputed tables of the ring for one chain of primes (Q then P).
pub struct Ring {
    /// Ring degree N.
    pub n: usize,
    /// All primes, Q chain first, then P.
    pub moduli: Vec<Modulus>,
    plans: Vec<Plan>,
    /// Floating-point NTT tables per prime ([`crate::fpntt`]), built on the
    /// first transform on the AVX2 path (20 N bytes per prime below 2^51;
    /// `None` for the others, which keep tfhe-ntt).
    fp_plans: Vec<std::sync::OnceLock<Option<FpNtt>>>,
    /// Exponent e_j (odd, < 2N) of the root at NTT position j.
    exps: Vec<u32>,
    /// Inverse of `exps`: NTT position of the root with a given exponent.
    pos_of_exp: Vec<u32>,
    /// Galois permutations already computed, by Galois element.
    perm_cache: std::sync::Mutex<std::collections::HashMap<u64, std::sync::Arc<Vec<u32>>>>,
    /// Strided NTTs ([`Self::ntt_strided`]) by log2(stride), built on first
    /// use.
    strided: Vec<std::sync::OnceLock<Option<StridedNtt>>>,
}

/// Smallest transform [`Ring::ntt_strided`] runs (tfhe-ntt needs 16).
const MIN_STRIDED_SIZE: usize = 32;

/// The forward NTT of a polynomial whose only nonzero coefficients sit at
/// multiples of a stride s, p(X) = q(X^s): its value at a primitive 2N-th
/// root r is q(r^s), and r^s is one of the N/s primitive 2(N/s)-th roots
/// at which an (N/s)-point negacyclic NTT evaluates q. So one small NTT
/// and a gather give all N values (s times less transform work). This is
/// what sparse-slot plaintexts are: a vector of n slots encodes to a
/// polynomial in X^(N/2n).
struct StridedNtt {
    /// Per ring prime: the (N/s)-point plan, `None` where it is unavailable
    /// or its check against the full transform failed (full NTT then).
    plans: Vec<Option<Plan>>,
    /// NTT position j of the full transform -> position of the small one
    /// holding its value.
    map: Vec<u32>,
}

impl std::fmt::Debug for Ring {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ring")
            .field("n", &self.n)
            .field("moduli", &self.moduli.len())
            .finish()
    }
}

impl Ring {
    /// Builds NTT plans for every prime; `None` if a prime is not NTT-friendly.
    pub fn new(n: usize, primes: &[u64]) -> Option<Self> {
        let plans: Option<Vec<Plan>> = primes.iter().map(|&q| Plan::try_new(n, q)).collect();
        let plans = plans?;
        let moduli: Vec<Modulus> = primes.iter().map(|&q| Modulus::new(q)).collect();
        // Learn the evaluation order: NTT(X) lists the roots themselves.
        let m0 = moduli[0];
        let mut x = vec![0u64; n];
        x[1] = 1;
        plans[0].fwd(&mut x);
        let psi = x[0];
        let mut exp_of = std::collections::HashMap::with_capacity(n);
        let psi2 = m0.mul(psi, psi);
        let mut p = psi;
        for e in (1..2 * n as u32).step_by(2) {
            exp_of.insert(p, e);
            p = m0.mul(p, psi2);
        }
        let exps: Vec<u32> = x.iter().map(|v| exp_of[v]).collect();
        let mut pos_of_exp = vec![u32::MAX; 2 * n];
        for (j, &e) in exps.iter().enumerate() {
            pos_of_exp[e as usize] = j as u32;
        }
        Some(Self {
            n,
            moduli,
            fp_plans: (0..primes.len()).map(|_| Default::default()).collect(),
            plans,
            exps,
            pos_of_exp,
            perm_cache: Default::default(),
            strided: (0..=n.trailing_zeros())
                .map(|_| Default::default())
                .collect(),
        })
    }

    /// Builds the strided transform of stride `s` (a power of two with
    /// N/s >= 32): the small plans, the position map learned from prime 0
    /// (the small transform of X lists its evaluation points; the full
    /// one's points raised to the s-th power are looked up among them), and
    /// every prime checked against the full transform on a test polynomial.
    fn build_strided(&self, s: usize) -> Option<StridedNtt> {
        let n = self.n;
        let m = n / s;
        let small0 = Plan::try_new(m, self.moduli[0].value)?;
        let m0 = self.moduli[0];
        let mut x = vec![0u64; m];
        x[1] = 1;
        small0.fwd(&mut x);
        let pos: std::collections::HashMap<u64, u32> =
            x.iter().enumerate().map(|(i, &v)| (v, i as u32)).collect();
        let mut big = vec![0u64; n];
        big[1] = 1;
        self.plans[0].fwd(&mut big);
        let map = big
            .iter()
            .map(|&r| pos.get(&m0.pow(r, s as u64)).copied())
            .collect::<Option<Vec<u32>>>()?;
        let plans = self
            .moduli
            .iter()
            .enumerate()
            .map(|(mi, md)| {
                let plan = Plan::try_new(m, md.value)?;
                // A test polynomial with every coefficient on the stride set.
                let compact: Vec<u64> = (0..m as u64)
                    .map(|k| md.reduce(k.wrapping_mul(0x9e37_79b9_7f4a_7c15) >> 3))
                    .collect();
                let mut full = vec![0u64; n];
                for (k, &c) in compact.iter().enumerate() {
                    full[k * s] = c;
                }
                self.ntt(mi, &mut full);
                let mut small = compact;
                plan.fwd(&mut small);
                full.iter()
                    .zip(&map)
                    .all(|(&f, &j)| f == small[j as usize])
                    .then_some(plan)
            })
            .collect();
        Some(StridedNtt { plans, map })
    }

    /// Forward NTT, into `out` (N values), of the polynomial whose
    /// coefficient `k * stride` is `coeff(k)` (reduced mod ring prime `mi`)
    /// for k < N / `stride`, all others zero. For a stride s > 1 this runs
    /// one (N/s)-point transform (see [`StridedNtt`]); the result is the
    /// same, bit for bit, as [`Self::ntt`] of the scattered polynomial
    /// (checked per prime when the transform is built; a prime that fails,
    /// or a stride leaving fewer than 32 points, takes the full NTT).
    pub(crate) fn ntt_strided(
        &self,
        mi: usize,
        stride: usize,
        coeff: impl Fn(usize) -> u64,
        out: &mut [u64],
    ) {
        let n = self.n;
        debug_assert!(stride.is_power_of_two() && out.len() == n);
        if stride > 1 && n / stride >= MIN_STRIDED_SIZE {
            let t = self.strided[stride.trailing_zeros() as usize]
                .get_or_init(|| self.build_strided(stride));
            if let Some(t) = t
                && let Some(plan) = &t.plans[mi]
            {
                let _span = profile::span(Kernel::Ntt);
                let mut small: Vec<u64> = (0..n / stride).map(&coeff).collect();
                plan.fwd(&mut small);
                out.iter_mut()
                    .zip(&t.map)
                    .for_each(|(o, &j)| *o = small[j as usize]);
                return;
            }
        }
        out.fill(0);
        for k in 0..n / stride {
            out[k * stride] = coeff(k);
        }
        self.ntt(mi, out);
    }

    /// The floating-point NTT of ring prime `mi` where it runs: on the AVX2
    /// kernel path (AVX2 and FMA, IFMA off or absent) for primes below 2^51.
    /// tfhe-ntt's IFMA kernels, and its own kernels for wider primes and on
    /// the portable path, run elsewhere.
    #[inline]
    fn fp_plan(&self, mi: usize) -> Option<&FpNtt> {
        if self.moduli[mi].value >= crate::fpntt::FP_NTT_BOUND
            || crate::simd::avx512_enabled()
            || !crate::simd::avx2_enabled()
        {
            return None;
        }
        self.fp_plans[mi]
            .get_or_init(|| FpNtt::new(&self.plans[mi]))
            .as_ref()
    }

    /// Forward NTT of limb `i` of ring prime `mi` (inputs reduced mod the prime).
    #[inline]
    pub fn ntt(&self, mi: usize, buf: &mut [u64]) {
        let _span = profile::span(Kernel::Ntt);
        if let Some(fp) = self.fp_plan(mi)
            && fp.fwd(buf)
        {
            return;
        }
        self.plans[mi].fwd(buf);
    }

    /// Inverse NTT (normalized) with ring prime `mi` (inputs reduced mod the prime).
    #[inline]
    pub fn intt(&self, mi: usize, buf: &mut [u64]) {
        let _span = profile::span(Kernel::Intt);
        if let Some(fp) = self.fp_plan(mi)
            && fp.inv(buf)
        {
            return;
        }
        self.plans[mi].inv(buf);
        self.plans[mi].normalize(buf);
    }

    /// NTT of every limb; limb k uses ring prime `idx[k]`.
    pub fn ntt_poly(&self, p: &mut Poly, idx: &[usize]) {
        let n = self.n;
        p.data
            .par_chunks_mut(n)
            .zip(idx.par_iter())
            .for_each(|(l, &mi)| self.ntt(mi, l));
    }

    /// Inverse NTT of every limb; limb k uses ring prime `idx[k]`.
    pub fn intt_poly(&self, p: &mut Poly, idx: &[usize]) {
        let n = self.n;
        p.data
            .par_chunks_mut(n)
            .zip(idx.par_iter())
            .for_each(|(l, &mi)| self.intt(mi, l));
    }

    /// a += b limb-wise.
    pub fn add_assign(&self, a: &mut Poly, b: &Poly, idx: &[usize]) {
        let n = self.n;
        a.data
            .par_chunks_mut(n)
            .zip(b.data.par_chunks(n))
            .zip(idx.par_iter())
            .for_each(|((x, y), &mi)| {
                let m = self.moduli[mi];
                x.iter_mut().zip(y).for_each(|(x, &y)| *x = m.add(*x, y));
            });
    }

    /// a -= b limb-wise.
    pub fn sub_assign(&self, a: &mut Poly, b: &Poly, idx: &[usize]) {
        let n = self.n;
        a.data
            .par_chunks_mut(n)
            .zip(b.data.par_chunks(n))
            .zip(idx.par_iter())
            .for_each(|((x, y), &mi)| {
                let m = self.moduli[mi];
                x.iter_mut().zip(y).for_each(|(x, &y)| *x = m.sub(*x, y));
            });
    }

    /// a = -a limb-wise.
    pub fn neg_assign(&self, a: &mut Poly, idx: &[usize]) {
        let n = self.n;
        a.data
            .par_chunks_mut(n)
            .zip(idx.par_iter())
            .for_each(|(x, &mi)| {
                let m = self.moduli[mi];
                x.iter_mut().for_each(|x| *x = m.neg(*x));
            });
    }

    /// acc += a * b pointwise (NTT domain).
    pub fn mul_acc(&self, acc: &mut Poly, a: &Poly, b: &Poly, idx: &[usize]) {
        let n = self.n;
        acc.data
            .par_chunks_mut(n)
            .zip(a.data.par_chunks(n))
            .zip(b.data.par_chunks(n))
            .zip(idx.par_iter())
            .for_each(|(((c, x), y), &mi)| self.mul_acc_slice(mi, c, x, y));
    }

    /// acc += a * b on single limbs of ring prime `mi` (NTT domain).
    #[inline]
    pub fn mul_acc_slice(&self, mi: usize, acc: &mut [u64], a: &[u64], b: &[u64]) {
        if !crate::simd::dot_acc_mod([acc], &[a], [&[b]], self.moduli[mi].value) {
            self.plans[mi].mul_accumulate(acc, a, b);
        }
    }

    /// `acc0 += sum_j xs[j] * k0[j]` and `acc1 += sum_j xs[j] * k1[j]` on single
    /// limbs of ring prime `mi` (NTT domain; the key-switching inner product).
    pub fn dot2_acc_slice(
        &self,
        mi: usize,
        acc0: &mut [u64],
        acc1: &mut [u64],
        xs: &[&[u64]],
        k0: &[&[u64]],
        k1: &[&[u64]],
    ) {
        if crate::simd::dot_acc_mod(
            [&mut *acc0, &mut *acc1],
            xs,
            [k0, k1],
            self.moduli[mi].value,
        ) {
            return;
        }
        for ((x, a), b) in xs.iter().zip(k0).zip(k1) {
            self.plans[mi].mul_accumulate(acc0, x, a);
            self.plans[mi].mul_accumulate(acc1, x, b);
        }
    }

    /// a * b pointwise (NTT domain).
    pub fn mul(&self, a: &Poly, b: &Poly, idx: &[usize]) -> Poly {
        let mut c = Poly::zero(self.n, idx.len());
        self.mul_acc(&mut c, a, b, idx);
        c
    }

    /// a *= c limb-wise for per-limb constants `c[k]` (already reduced).
    pub fn mul_const_assign(&self, a: &mut Poly, c: &[u64], idx: &[usize]) {
        let n = self.n;
        a.data
            .par_chunks_mut(n)
            .zip(idx.par_iter().zip(c.par_iter()))
            .for_each(|(x, (&mi, &w))| {
                let m = self.moduli[mi];
                let ws = m.shoup(w);
                x.iter_mut().for_each(|x| *x = m.mul_shoup(*x, w, ws));
            });
    }

    /// a += c limb-wise for per-limb constants `c[k]` (NTT domain: adds c to every coefficient's
    /// evaluation, i.e. adds the constant polynomial c).
    pub fn add_const_assign(&self, a: &mut Poly, c: &[u64], idx: &[usize]) {
        let n = self.n;
        a.data
            .par_chunks_mut(n)
            .zip(idx.par_iter().zip(c.par_iter()))
            .for_each(|(x, (&mi, &w))| {
                let m = self.moduli[mi];
                x.iter_mut().for_each(|x| *x = m.add(*x, w));
            });
    }

    /// out = (x - e) * w mod q on single limbs of ring prime `mi`, for a
    /// reduced constant w: one SIMD pass (x w + e (q - w)) where a kernel
    /// applies. The last step of ModDown (w = P^-1) and of rescaling
    /// (w = q_l^-1).
    pub fn sub_mul_const_slice(&self, mi: usize, out: &mut [u64], x: &[u64], e: &[u64], w: u64) {
        let m = self.moduli[mi];
        if crate::simd::lincomb_mod(out, &[x, e], m.value, &[w, m.neg(w)], m.value) {
            return;
        }
        let ws = m.shoup(w);
        out.iter_mut()
            .zip(x.iter().zip(e))
            .for_each(|(o, (&x, &e))| *o = m.mul_shoup(m.sub(x, e), w, ws));
    }

    /// NTT-domain permutation realizing `X -> X^g` (g odd): `out[j] = in[perm[j]]`.
    pub fn galois_perm(&self, g: u64) -> Vec<u32> {
        let two_n = 2 * self.n as u64;
        self.exps
            .iter()
            .map(|&e| self.pos_of_exp[((e as u64 * g) % two_n) as usize])
            .collect()
    }

    /// Cached NTT-domain permutation for Galois element g.
    pub fn galois_perm_cached(&self, g: u64) -> std::sync::Arc<Vec<u32>> {
        let mut cache = self.perm_cache.lock().unwrap_or_else(|e| e.into_inner());
        cache
            .entry(g)
            .or_insert_with(|| std::sync::Arc::new(self.galois_perm(g)))
            .clone()
    }

    /// Applies an NTT-domain permutation to every limb.
    pub fn permute(&self, p: &Poly, perm: &[u32]) -> Poly {
        let _span = profile::span(Kernel::Automorphism);
        let n = self.n;
        let mut out = Poly::zero(n, p.limbs());
        out.data
            .par_chunks_mut(n)
            .zip(p.data.par_chunks(n))
            .for_each(|(o, i)| {
                o.iter_mut()
                    .zip(perm)
                    .for_each(|(o, &j)| *o = i[j as usize]);
            });
        out
    }

    /// Exact conversion of coefficient-form residues from the primes `from` to
    /// the primes `to`, producing the centered representative's residues.
    ///
    /// `src` holds |from| limbs in coefficient form; the result holds |to|
    /// limbs in coefficient form.
    pub fn convert_exact(&self, src: &Poly, from: &[usize], to: &[usize]) -> Poly {
        let mut out = Poly::zero(self.n, to.len());
        let mut outs: Vec<&mut [u64]> = out.data.chunks_mut(self.n).collect();
        self.convert_exact_into(src, from, to, &mut outs);
        out
    }

    /// [`Self::convert_exact`] writing target limb k into `outs[k]`, which must be zero.
    pub fn convert_exact_into(
        &self,
        src: &Poly,
        from: &[usize],
        to: &[usize],
        outs: &mut [&mut [u64]],
    ) {
        let _span = profile::span(Kernel::BasisConversion);
        let n = self.n;
        if let [single] = from {
            // One source prime: the centered lift is the conversion.
            let b = self.moduli[*single];
            let half = b.value / 2;
            let x = src.limb(0);
            // For the SIMD kernels: o = x * 1 + [x > b/2] * (-b) mod t.
            let above: Vec<u64> = x.iter().map(|&x| (x > half) as u64).collect();
            outs.par_iter_mut().zip(to.par_iter()).for_each(|(o, &ti)| {
                let t = self.moduli[ti];
                let b_mod = t.reduce(b.value);
                let cs = [1 % t.value, t.neg(b_mod)];
                if crate::simd::lincomb_mod(o, &[x, &above], b.value, &cs, t.value) {
                    return;
                }
                for (o, &x) in o.iter_mut().zip(src.limb(0)) {
                    let r = t.reduce(x);
                    // x > b/2 stands for x - b
                    *o = if x > half { t.sub(r, b_mod) } else { r };
                }
            });
            return;
        }
        let fm: Vec<Modulus> = from.iter().map(|&i| self.moduli[i]).collect();
        // (B/b_i)^{-1} mod b_i
        let inv_punct: Vec<u64> = fm
            .iter()
            .enumerate()
            .map(|(i, mi)| {
                let mut p = 1u64;
                for (j, mj) in fm.iter().enumerate() {
                    if j != i {
                        p = mi.mul(p, mi.reduce(mj.value));
                    }
                }
                mi.inv(p)
            })
            .collect();
        // y_i = x_i * (B/b_i)^{-1} mod b_i, and v = round(sum y_i / b_i)
        let mut y = Poly::zero(n, from.len());
        y.data
            .par_chunks_mut(n)
            .zip(src.data.par_chunks(n))
            .enumerate()
            .for_each(|(i, (yo, xi))| {
                let m = fm[i];
                let w = inv_punct[i];
                if crate::simd::lincomb_mod(yo, &[xi], m.value, &[w], m.value) {
                    return;
                }
                let ws = m.shoup(w);
                yo.iter_mut()
                    .zip(xi)
                    .for_each(|(yo, &x)| *yo = m.mul_shoup(x, w, ws));
            });
        let inv_b: Vec<f64> = fm.iter().map(|m| 1.0 / m.value as f64).collect();
        let y_bound = fm.iter().map(|m| m.value).max().unwrap_or(0);
        let mut v = vec![0u64; n];
        {
            let ys: Vec<&[u64]> = y.data.chunks(n).collect();
            if !crate::simd::round_sum_scaled(&mut v, &ys, &inv_b) {
                v.par_iter_mut().enumerate().for_each(|(k, v)| {
                    *v = crate::simd::round_sum_scaled_scalar(&ys, &inv_b, k);
                });
            }
        }
        outs.par_iter_mut().zip(to.par_iter()).for_each(|(o, &ti)| {
            let o: &mut [u64] = o;
            let t = self.moduli[ti];
            // (B/b_i) mod t and B mod t
            let punct: Vec<u64> = (0..fm.len())
                .map(|i| {
                    let mut p = 1u64;
                    for (j, mj) in fm.iter().enumerate() {
                        if j != i {
                            p = t.mul(p, t.reduce(mj.value));
                        }
                    }
                    p
                })
                .collect();
            let b_mod = fm.iter().fold(1u64, |p, m| t.mul(p, t.reduce(m.value)));
            let nb = t.neg(b_mod);
            // One pass for sum_i y_i c_i + v (-B): fused SIMD kernel (IFMA or
            // AVX2) where it applies.
            let mut ys: Vec<&[u64]> = (0..fm.len()).map(|i| &y.data[i * n..(i + 1) * n]).collect();
            ys.push(&v);
            let mut cs = punct;
            cs.push(nb);
            if crate::simd::lincomb_mod(o, &ys, y_bound, &cs, t.value) {
                return;
            }
            // Portable path: 128-bit lazy accumulation, one reduction per output.
            crate::simd::lincomb_lazy(o, &ys, y_bound.max(fm.len() as u64 + 1), &cs, &t);
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::modarith::ntt_primes;

    /// The strided NTT equals the full NTT of the scattered polynomial, bit
    /// for bit, for every prime of a bootstrappable 128-bit set (Q and P,
    /// 36 to 61 bits) and every stride down to 32 points, and the small
    /// transforms are really in use (none fell back to the full NTT).
    #[test]
    fn strided_ntt_equals_the_full_ntt() {
        for name in ["insecure-boot-n12", "n16-boot"] {
            let p = crate::Params::named(name).unwrap();
            let ring = &p.ring;
            let n = ring.n;
            let mut stride = 2;
            while n / stride >= MIN_STRIDED_SIZE {
                for (mi, m) in ring.moduli.iter().enumerate() {
                    let c: Vec<u64> = (0..(n / stride) as u64)
                        .map(|k| m.reduce((k + 7 * mi as u64).wrapping_mul(0xd1b5_4a32_d192_ed03)))
                        .collect();
                    let mut full = vec![0u64; n];
                    for (k, &v) in c.iter().enumerate() {
                        full[k * stride] = v;
                    }
                    ring.ntt(mi, &mut full);
                    let mut got = vec![1u64; n];
                    ring.ntt_strided(mi, stride, |k| c[k], &mut got);
                    assert!(got == full, "{name}: prime {mi}, stride {stride}");
                }
                let t = ring.strided[stride.trailing_zeros() as usize]
                    .get()
                    .unwrap();
                let t = t.as_ref().expect("strided transform built");
                assert!(
                    t.plans.iter().all(Option::is_some),
                    "{name}: stride {stride}"
                );
                stride *= 2;
            }
        }
    }

    #[test]
    fn zeroizing_poly_clears_its_coefficients() {
        use zeroize::Zeroize;
        let mut p = Poly {
            n: 4,
            data: vec![1, 2, 3, 4, 5, 6, 7, 8],
        };
        p.zeroize();
        assert!(p.data.iter().all(|&x| x == 0));
    }

    fn negacyclic(a: &[u64], b: &[u64], m: &Modulus) -> Vec<u64> {
        let n = a.len();
        let mut c = vec![0u64; n];
        for i in 0..n {
            for j in 0..n {
                let p = m.mul(a[i], b[j]);
                if i + j < n {
                    c[i + j] = m.add(c[i + j], p);
                } else {
                    c[i + j - n] = m.sub(c[i + j - n], p);
                }
            }
        }
        c
    }

    #[test]
    fn ntt_mul_is_negacyclic() {
        let n = 64;
        let ps = ntt_primes(&[50, 60], 2 * n as u64, &[]);
        let r = Ring::new(n, &ps).unwrap();
        for (mi, m) in r.moduli.iter().enumerate() {
            let a: Vec<u64> = (0..n as u64).map(|i| (i * 7919 + 3) % m.value).collect();
            let b: Vec<u64> = (0..n as u64).map(|i| (i * i * 31 + 11) % m.value).collect();
            let want = negacyclic(&a, &b, m);
            let (mut fa, mut fb) = (a.clone(), b.clone());
            r.ntt(mi, &mut fa);
            r.ntt(mi, &mut fb);
            let mut c = vec![0u64; n];
            r.plans[mi].mul_accumulate(&mut c, &fa, &fb);
            r.intt(mi, &mut c);
            assert_eq!(c, want);
        }
    }

    #[test]
    fn galois_perm_is_automorphism_on_every_prime() {
        let n = 32;
        let ps = ntt_primes(&[40, 50, 60], 2 * n as u64, &[]);
        let r = Ring::new(n, &ps).unwrap();
        for g in [5u64, 25, 2 * n as u64 - 1] {
            let perm = r.galois_perm(g);
            for (mi, m) in r.moduli.iter().enumerate() {
                let a: Vec<u64> = (0..n as u64).map(|i| (i * 12345 + 678) % m.value).collect();
                // coefficient-domain automorphism
                let mut want = vec![0u64; n];
                for (i, &c) in a.iter().enumerate() {
                    let j = (i as u64 * g) % (2 * n as u64);
                    if j < n as u64 {
                        want[j as usize] = c;
                    } else {
                        want[j as usize - n] = m.neg(c);
                    }
                }
                let mut fa = Poly { n, data: a.clone() };
                r.ntt(mi, &mut fa.data);
                let mut out = r.permute(&fa, &perm);
                r.intt(mi, &mut out.data);
                assert_eq!(out.data, want, "g={g} prime {mi}");
            }
        }
    }

    /// Every source/target shape key switching uses (one- and two-prime
    /// digits, 60-bit sources that the AVX2 kernel splits, 60-bit targets it
    /// leaves to the portable path) and edge values: the result is exact
    /// whichever kernel path runs.
    #[test]
    fn exact_conversion_every_shape() {
        use rand::{Rng, SeedableRng};
        let n = 64;
        let ps = ntt_primes(&[60, 50, 50, 45, 60, 30], 2 * n as u64, &[]);
        let r = Ring::new(n, &ps).unwrap();
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(5);
        for from in [vec![0usize, 1], vec![1, 2], vec![1, 3, 5], vec![0], vec![2]] {
            let to: Vec<usize> = (0..ps.len()).filter(|i| !from.contains(i)).collect();
            let b: i128 = from.iter().map(|&i| ps[i] as i128).product();
            // Floating-point rounding makes the conversion exact for |v| up
            // to B/2 less a relative margin (about 2^-50 B), not at +-B/2 itself.
            let lim = b / 2 - (b >> 20);
            let vals: Vec<i128> = (0..n)
                .map(|k| match k % 6 {
                    0 => -lim,
                    1 => lim,
                    2 => 0,
                    3 => -1,
                    _ => rng.gen_range(-lim..=lim),
                })
                .collect();
            let mut src = Poly::zero(n, from.len());
            for (k, &v) in vals.iter().enumerate() {
                for (j, &i) in from.iter().enumerate() {
                    src.data[j * n + k] = v.rem_euclid(ps[i] as i128) as u64;
                }
            }
            let out = r.convert_exact(&src, &from, &to);
            for (k, &v) in vals.iter().enumerate() {
                for (t, &ti) in to.iter().enumerate() {
                    let want = v.rem_euclid(ps[ti] as i128) as u64;
                    assert_eq!(out.data[t * n + k], want, "from {from:?} to {ti} k={k}");
                }
            }
        }
    }

    #[test]
    fn exact_conversion_is_centered() {
        let n = 16;
        let ps = ntt_primes(&[50, 50, 60, 45], 2 * n as u64, &[]);
        let r = Ring::new(n, &ps).unwrap();
        let b: u128 = ps[0] as u128 * ps[1] as u128;
        let vals: Vec<i128> = (0..n as i128)
            .map(|k| (k - 8) * (b as i128 / 17) + k * 12345)
            .collect();
        let mut src = Poly::zero(n, 2);
        for (k, &v) in vals.iter().enumerate() {
            for (i, &q) in ps.iter().take(2).enumerate() {
                src.data[i * n + k] = v.rem_euclid(q as i128) as u64;
            }
        }
        let out = r.convert_exact(&src, &[0, 1], &[2, 3]);
        for (k, &v) in vals.iter().enumerate() {
            for (t, &ti) in [2usize, 3].iter().enumerate() {
                assert_eq!(out.data[t * n + k], v.rem_euclid(ps[ti] as i128) as u64);
            }
        }
    }
}
