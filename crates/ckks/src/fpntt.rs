//! Negacyclic NTT in double-precision floating point (AVX2 + FMA) for primes
//! below 2^51: the NTT of the `avx2` kernel path (CPUs without AVX-512),
//! where tfhe-ntt's AVX2 kernel for 64-bit primes emulates every 64-bit
//! product with four 32-bit multiplies.
//!
//! # The transform
//!
//! The same map as tfhe-ntt's `prime64::Plan` (`fwd`, and `inv` followed by
//! `normalize`), value for value and position for position: an iterative
//! Cooley-Tukey forward transform with the powers of the 2N-th root psi in
//! bit-reversed order (position j holds the evaluation at psi^(2 rev(j) + 1)),
//! and the Gentleman-Sande inverse with the inverse powers, as in Longa and
//! Naehrig, "Speeding up the Number Theoretic Transform for Faster Ideal
//! Lattice-Based Cryptography" (CANS 2016), and SEAL. psi is tfhe-ntt's own:
//! [`FpNtt::new`] reads it from the plan's transform of X, and checks that
//! both transforms of X agree at every position (so both evaluate at the
//! same points in the same order) before it is used.
//!
//! The first stages run breadth-first over the whole buffer, the last ones
//! block by block ([`BLOCK`] coefficients, in L1); the two stages whose
//! butterflies are 1 and 2 apart work inside registers with per-stage
//! twiddle tables in lane order. Coefficients are converted from u64 to f64
//! in the first stage and back in the last, in place (the f64 bits live in
//! the caller's u64 buffer in between), so no scratch memory is used.
//!
//! # Modular multiplication and why it is exact
//!
//! Residues are held as signed integers in f64 (|x| <= B p during the
//! transform, B a per-stage bound), twiddles as signed residues
//! |w| <= (p - 1) / 2. The product y w mod p is computed as in van der
//! Hoeven, Lecerf and Quintin, "Modular SIMD arithmetic in Mathemagix"
//! (ACM TOMS 43(1), 2016), the floating-point analogue of Harvey's
//! "Faster arithmetic for number-theoretic transforms" (J. Symb. Comput. 60,
//! 2014) lazy butterflies, with u = 2^-53, c = p u (< 1/4 for p < 2^51):
//!
//! 1. h = fl(y w) and l = fma(y, w, -h): the error-free product, h + l = y w
//!    exactly, both integers (h is y w itself below 2^53, an integer-valued
//!    float above);
//! 2. q = fma(h, fl(1/p), 1.5 2^52) - 1.5 2^52: the fused product is exact,
//!    and while |h / p| < 2^51 the sum lies in [2^52, 2^53), where rounding
//!    is to the nearest integer. |h fl(1/p) - y w / p| <= |y w / p| (2u + u^2)
//!    < c B_y, so |y w - q p| <= (1/2 + c B_y) p;
//! 3. r = fma(-q, p, h) + l: h - q p is an integer below 2^53 in magnitude
//!    (|l| <= u |y w| <= c B_y p / 2), so the FMA computes it exactly, and
//!    the sum is the integer y w - q p, also exact.
//!
//! Everything holds while B_y p <= 2^52 (then |h / p| < 2^51 and every sum
//! of two operands stays below 2^53). Reduction of one value, x - q p with
//! q = round(x / p) the same way, gives |result| <= (1/2 + 2^-40) p.
//!
//! A forward butterfly (x, y) -> (x + r, x - r) with r = y w mod p grows the
//! bound from B to B + 1/2 + c B; when that would pass 2^52 / p the stage
//! first reduces x (bound 1 + c B). The inverse butterfly
//! (x, y) -> (x + y, (x - y) w) reduces x + y only when 2 B would pass
//! 2^51 / p. [`FpNtt::new`] fixes which stages reduce from these bounds, per
//! prime: below 2^50 (2^52 / p >= 4) about one forward stage in four and one
//! inverse stage in two reduce, just below 2^51 (2^52 / p >= 2) nearly all.
//! The inputs are canonical (|x| < p, B = 1); the last stage reduces every
//! output to (-p/2, p/2] and adds p to the negative ones: the canonical
//! residue in [0, p), as tfhe-ntt returns it. The inverse's scaling by
//! N^-1 is folded into its last stage's two multiplications.
//!
//! Memory: 1.25 N f64 twiddles per direction, 20 N bytes per prime
//! (640 KiB at N = 2^15), built on first use on the AVX2 path only.

use tfhe_ntt::prime64::Plan;

/// Primes the floating-point transform handles exactly: p < 2^51.
pub(crate) const FP_NTT_BOUND: u64 = 1 << 51;

/// Coefficients per block of the depth-first stages (16 KiB of f64).
const BLOCK: usize = 1 << 11;

/// Tables of the floating-point NTT for one prime and ring degree.
pub(crate) struct FpNtt {
    n: usize,
    p: u64,
    /// Forward twiddles: psi^rev(k) (signed) at k < N/4, then the stage
    /// with butterflies 2 apart in lane order (N/2), then the stage with
    /// butterflies 1 apart in lane order (N/2).
    fwd: Box<[f64]>,
    /// Inverse twiddles, the same layout with psi^-rev(k).
    inv: Box<[f64]>,
    /// N^-1 and psi^-rev(1) N^-1 (signed): the inverse's last stage.
    n_inv: f64,
    inv_last: f64,
    /// Bit s set: the forward stage with 2^s butterfly groups reduces x first.
    fwd_reduce: u32,
    /// Bit s set: the inverse stage with 2^s groups reduces x + y.
    inv_reduce: u32,
}

fn bit_rev(bits: u32, i: usize) -> usize {
    i.reverse_bits() >> (usize::BITS - bits)
}

fn mul_mod(a: u64, b: u64, p: u64) -> u64 {
    ((a as u128 * b as u128) % p as u128) as u64
}

fn pow_mod(mut a: u64, mut e: u64, p: u64) -> u64 {
    let mut r = 1 % p;
    while e > 0 {
        if e & 1 == 1 {
            r = mul_mod(r, a, p);
        }
        a = mul_mod(a, a, p);
        e >>= 1;
    }
    r
}

/// The signed representative in [-(p - 1) / 2, (p - 1) / 2] (p odd), as f64.
fn signed(x: u64, p: u64) -> f64 {
    if x > p / 2 {
        -((p - x) as f64)
    } else {
        x as f64
    }
}

/// Which stages reduce, as bits by log2 of the stage's group count: the
/// bound analysis of the module documentation, for `n` = 2^log_n and p.
fn reduce_schedule(log_n: u32, p: u64) -> (u32, u32) {
    let pf = p as f64;
    let c = pf / 9007199254740992.0; // p 2^-53
    let lim = 4503599627370496.0 / pf; // 2^52 / p: bound of a product's input
    let red = 0.5 + 1.0 / (1u64 << 40) as f64;
    // Forward: stage s (2^s groups) has input bound b <= lim.
    let mut fwd = 0u32;
    let mut b = 1.0f64;
    for s in 0..log_n {
        let plain = b + 0.5 + c * b;
        b = if plain <= lim || s + 1 == log_n {
            plain
        } else {
            fwd |= 1 << s;
            red + 0.5 + c * b
        };
    }
    // Inverse: stages s = log_n - 1 down to 1 (stage 0 is the last one,
    // which multiplies both outputs); input bound b <= lim / 2.
    let mut inv = 0u32;
    let mut b = 1.0f64;
    for s in (1..log_n).rev() {
        let prod = 0.5 + c * 2.0 * b;
        b = if 2.0 * b <= lim / 2.0 {
            (2.0 * b).max(prod)
        } else {
            inv |= 1 << s;
            red.max(prod)
        };
    }
    (fwd, inv)
}

impl FpNtt {
    /// Tables for `plan`'s prime and degree, or `None` if p >= 2^51, N < 16,
    /// or the plan's evaluation order is not the one this transform
    /// computes (checked on X).
    pub(crate) fn new(plan: &Plan) -> Option<Self> {
        let n = plan.ntt_size();
        let p = plan.modulus();
        if p >= FP_NTT_BOUND || n < 16 || !n.is_power_of_two() || p % (2 * n as u64) != 1 {
            return None;
        }
        let log_n = n.trailing_zeros();
        // tfhe-ntt's root: position 0 of the transform of X holds psi.
        let mut x = vec![0u64; n];
        x[1] = 1;
        plan.fwd(&mut x);
        let psi = x[0];
        if pow_mod(psi, n as u64, p) != p - 1 {
            return None;
        }
        let psi_inv = pow_mod(psi, p - 2, p);
        let table = |root: u64| {
            let mut full = vec![0u64; n];
            let mut wk = 1u64;
            for k in 0..n {
                full[bit_rev(log_n, k)] = wk;
                wk = mul_mod(wk, root, p);
            }
            let mut t = Vec::with_capacity(n + n / 4);
            t.extend(full[..n / 4].iter().map(|&w| signed(w, p)));
            // Butterflies 2 apart: groups g, g + 1 per vector pair.
            let m = n / 4;
            for g in (0..m).step_by(2) {
                for w in [full[m + g], full[m + g], full[m + g + 1], full[m + g + 1]] {
                    t.push(signed(w, p));
                }
            }
            // Butterflies 1 apart: lanes hold groups g, g + 2, g + 1, g + 3.
            let m = n / 2;
            for g in (0..m).step_by(4) {
                for w in [
                    full[m + g],
                    full[m + g + 2],
                    full[m + g + 1],
                    full[m + g + 3],
                ] {
                    t.push(signed(w, p));
                }
            }
            (t.into_boxed_slice(), full[1])
        };
        let (fwd, _) = table(psi);
        let (inv, inv1) = table(psi_inv);
        let n_inv = pow_mod(n as u64 % p, p - 2, p);
        let (fwd_reduce, inv_reduce) = reduce_schedule(log_n, p);
        let plan_fp = Self {
            n,
            p,
            fwd,
            inv,
            n_inv: signed(n_inv, p),
            inv_last: signed(mul_mod(inv1, n_inv, p), p),
            fwd_reduce,
            inv_reduce,
        };
        // The same evaluation points in the same positions as the plan.
        let mut y = vec![0u64; n];
        y[1] = 1;
        if !plan_fp.fwd(&mut y) || y != x {
            return None;
        }
        Some(plan_fp)
    }

    /// Forward transform in place (inputs below p); false (and `buf` left
    /// as it was) without AVX2 and FMA on this CPU or for a wrong length.
    pub(crate) fn fwd(&self, buf: &mut [u64]) -> bool {
        debug_assert!(buf.iter().all(|&x| x < self.p), "NTT input not reduced");
        #[cfg(target_arch = "x86_64")]
        {
            if buf.len() == self.n && crate::simd::cpu_has_avx2_fma() {
                // SAFETY: the CPU supports avx2 and fma (checked just above);
                // buf.len() == self.n, the length every index of the kernel
                // stays below, and the tables were built for self.n.
                unsafe { fwd_avx2(self, buf) };
                return true;
            }
        }
        let _ = buf;
        false
    }

    /// Inverse transform, normalized (times N^-1), in place (inputs below p);
    /// false (and `buf` left as it was) as for [`Self::fwd`].
    pub(crate) fn inv(&self, buf: &mut [u64]) -> bool {
        debug_assert!(buf.iter().all(|&x| x < self.p), "NTT input not reduced");
        #[cfg(target_arch = "x86_64")]
        {
            if buf.len() == self.n && crate::simd::cpu_has_avx2_fma() {
                // SAFETY: as in `fwd`.
                unsafe { inv_avx2(self, buf) };
                return true;
            }
        }
        let _ = buf;
        false
    }
}

/// The helpers both kernels use, bound to the names the caller gives (in a
/// `#[target_feature(enable = "avx2,fma")]` function, after
/// `use std::arch::x86_64::*`): `red(x)` = x - round(x / p) p; `mulmod(y, w)`
/// = y w - round(y w / p) p, exactly; `ld`/`st` load and store 4 f64 at k of
/// the buffer `a`; `ldu` loads 4 u64 below 2^52 as f64, exactly; `stu`
/// stores the canonical residues in [0, p) as u64; `wload(i)` loads 4
/// twiddles of `tw` at i.
#[cfg(target_arch = "x86_64")]
macro_rules! fp_helpers {
    ($plan:ident, $a:ident, $tw:ident; $red:ident, $mulmod:ident, $ld:ident, $st:ident,
     $ldu:ident, $stu:ident, $wload:ident) => {
        let pf = $plan.p as f64;
        let pv = _mm256_set1_pd(pf);
        let pinv = _mm256_set1_pd(1.0 / pf);
        let rnd = _mm256_set1_pd(6755399441055744.0); // 1.5 2^52
        let magic_bits = _mm256_set1_epi64x(0x4330_0000_0000_0000);
        let magic = _mm256_set1_pd(4503599627370496.0); // 2^52
        let zero = _mm256_setzero_pd();
        // x - round(x / p) p.
        let $red = move |x: __m256d| {
            let q = _mm256_sub_pd(_mm256_fmadd_pd(x, pinv, rnd), rnd);
            _mm256_fnmadd_pd(q, pv, x)
        };
        // y w - round(y w / p) p, exactly.
        let $mulmod = move |y: __m256d, w: __m256d| {
            let h = _mm256_mul_pd(y, w);
            let l = _mm256_fmsub_pd(y, w, h);
            let q = _mm256_sub_pd(_mm256_fmadd_pd(h, pinv, rnd), rnd);
            _mm256_add_pd(_mm256_fnmadd_pd(q, pv, h), l)
        };
        // SAFETY (ld, st, ldu, stu): every caller passes k + 4 <= n = buf.len().
        let $ld = move |k: usize| unsafe { _mm256_loadu_pd($a.add(k)) };
        let $st = move |k: usize, v: __m256d| unsafe { _mm256_storeu_pd($a.add(k), v) };
        // u64 below 2^52 to f64, exactly.
        let $ldu = move |k: usize| {
            // SAFETY: as above.
            let x = unsafe { _mm256_loadu_si256($a.add(k) as *const __m256i) };
            _mm256_sub_pd(_mm256_castsi256_pd(_mm256_or_si256(x, magic_bits)), magic)
        };
        // The canonical residue in [0, p), as u64.
        let $stu = move |k: usize, x: __m256d| {
            let r = $red(x);
            let r = _mm256_add_pd(r, _mm256_and_pd(_mm256_cmp_pd::<_CMP_LT_OQ>(r, zero), pv));
            let ri = _mm256_sub_epi64(_mm256_castpd_si256(_mm256_add_pd(r, magic)), magic_bits);
            // SAFETY: as above.
            unsafe { _mm256_storeu_si256($a.add(k) as *mut __m256i, ri) };
        };
        // SAFETY: the slice is 4 long (checked by the indexing).
        let $wload = move |i: usize| unsafe { _mm256_loadu_pd($tw[i..i + 4].as_ptr()) };
    };
}

/// The forward transform (see the module documentation). Caller: the CPU
/// has avx2 and fma, and `buf.len() == plan.n`.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn fwd_avx2(plan: &FpNtt, buf: &mut [u64]) {
    use std::arch::x86_64::*;
    let n = plan.n;
    let log_n = n.trailing_zeros();
    assert!(buf.len() == n && n >= 16 && plan.fwd.len() == n + n / 4);
    let a = buf.as_mut_ptr() as *mut f64;
    let tw = &plan.fwd[..];
    fp_helpers!(plan, a, tw; red, mulmod, ld, st, ldu, stu, wload);
    // Stage with m groups (butterflies n / 2m >= 4 apart), groups g0..g1.
    macro_rules! wide {
        ($m:expr, $g0:expr, $g1:expr, $red:expr, $conv:expr) => {{
            let m: usize = $m;
            let t = n / (2 * m);
            for i in $g0..$g1 {
                let w = _mm256_set1_pd(tw[m + i]);
                let base = 2 * i * t;
                for j in (base..base + t).step_by(4) {
                    let (x, y) = if $conv {
                        (ldu(j), ldu(j + t))
                    } else {
                        (ld(j), ld(j + t))
                    };
                    let x = if $red { red(x) } else { x };
                    let r = mulmod(y, w);
                    st(j, _mm256_add_pd(x, r));
                    st(j + t, _mm256_sub_pd(x, r));
                }
            }
        }};
    }
    let stage = move |m: usize, g0: usize, g1: usize| {
        let red_x = (plan.fwd_reduce >> m.trailing_zeros()) & 1 == 1;
        match (red_x, m == 1) {
            (false, false) => wide!(m, g0, g1, false, false),
            (true, false) => wide!(m, g0, g1, true, false),
            (false, true) => wide!(m, g0, g1, false, true),
            (true, true) => wide!(m, g0, g1, true, true),
        }
    };
    // Butterflies 2 apart, then 1 apart (the last stage: canonical u64 out),
    // on the coefficients e0..e1 (multiples of 8).
    macro_rules! narrow2 {
        ($e0:expr, $e1:expr, $red:expr) => {{
            let off = n / 4;
            for k in ($e0..$e1).step_by(8) {
                let (u, v) = (ld(k), ld(k + 4));
                let x = _mm256_permute2f128_pd::<0x20>(u, v);
                let y = _mm256_permute2f128_pd::<0x31>(u, v);
                let x = if $red { red(x) } else { x };
                let r = mulmod(y, wload(off + k / 2));
                let (x, y) = (_mm256_add_pd(x, r), _mm256_sub_pd(x, r));
                st(k, _mm256_permute2f128_pd::<0x20>(x, y));
                st(k + 4, _mm256_permute2f128_pd::<0x31>(x, y));
            }
        }};
    }
    let narrow = move |e0: usize, e1: usize| {
        if (plan.fwd_reduce >> (log_n - 2)) & 1 == 1 {
            narrow2!(e0, e1, true)
        } else {
            narrow2!(e0, e1, false)
        }
        let off = n / 4 + n / 2;
        let red_x = (plan.fwd_reduce >> (log_n - 1)) & 1 == 1;
        for k in (e0..e1).step_by(8) {
            let (u, v) = (ld(k), ld(k + 4));
            let x = _mm256_unpacklo_pd(u, v);
            let y = _mm256_unpackhi_pd(u, v);
            let x = if red_x { red(x) } else { x };
            let r = mulmod(y, wload(off + k / 2));
            let (x, y) = (_mm256_add_pd(x, r), _mm256_sub_pd(x, r));
            stu(k, _mm256_unpacklo_pd(x, y));
            stu(k + 4, _mm256_unpackhi_pd(x, y));
        }
    };
    // Breadth-first while a group is larger than a block.
    let block = BLOCK.min(n);
    let mut m = 1;
    while n / m > block && m < n / 4 {
        stage(m, 0, m);
        m *= 2;
    }
    // Then block by block: groups of the stages m.. inside each block.
    for b in 0..n / block {
        let mut mm = m;
        while mm < n / 4 {
            let per = mm * block / n;
            stage(mm, b * per, (b + 1) * per);
            mm *= 2;
        }
        narrow(b * block, (b + 1) * block);
    }
}

/// The inverse transform, normalized (see the module documentation). Caller:
/// the CPU has avx2 and fma, and `buf.len() == plan.n`.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn inv_avx2(plan: &FpNtt, buf: &mut [u64]) {
    use std::arch::x86_64::*;
    let n = plan.n;
    let log_n = n.trailing_zeros();
    assert!(buf.len() == n && n >= 16 && plan.inv.len() == n + n / 4);
    let a = buf.as_mut_ptr() as *mut f64;
    let tw = &plan.inv[..];
    fp_helpers!(plan, a, tw; red, mulmod, ld, st, ldu, stu, wload);
    let red_at = move |s: u32| (plan.inv_reduce >> s) & 1 == 1;
    // Stage with m >= 2 groups (butterflies n / 2m >= 4 apart), groups g0..g1.
    macro_rules! wide {
        ($m:expr, $g0:expr, $g1:expr, $red:expr) => {{
            let m: usize = $m;
            let t = n / (2 * m);
            for i in $g0..$g1 {
                let w = _mm256_set1_pd(tw[m + i]);
                let base = 2 * i * t;
                for j in (base..base + t).step_by(4) {
                    let (x, y) = (ld(j), ld(j + t));
                    let s = _mm256_add_pd(x, y);
                    let d = _mm256_sub_pd(x, y);
                    st(j, if $red { red(s) } else { s });
                    st(j + t, mulmod(d, w));
                }
            }
        }};
    }
    let stage = move |m: usize, g0: usize, g1: usize| {
        if red_at(m.trailing_zeros()) {
            wide!(m, g0, g1, true)
        } else {
            wide!(m, g0, g1, false)
        }
    };
    // Butterflies 1 apart (the first stage: u64 in), then 2 apart.
    macro_rules! narrow1 {
        ($e0:expr, $e1:expr, $red:expr) => {{
            let off = n / 4 + n / 2;
            for k in ($e0..$e1).step_by(8) {
                let (u, v) = (ldu(k), ldu(k + 4));
                let x = _mm256_unpacklo_pd(u, v);
                let y = _mm256_unpackhi_pd(u, v);
                let s = _mm256_add_pd(x, y);
                let s = if $red { red(s) } else { s };
                let r = mulmod(_mm256_sub_pd(x, y), wload(off + k / 2));
                st(k, _mm256_unpacklo_pd(s, r));
                st(k + 4, _mm256_unpackhi_pd(s, r));
            }
        }};
    }
    macro_rules! narrow2 {
        ($e0:expr, $e1:expr, $red:expr) => {{
            let off = n / 4;
            for k in ($e0..$e1).step_by(8) {
                let (u, v) = (ld(k), ld(k + 4));
                let x = _mm256_permute2f128_pd::<0x20>(u, v);
                let y = _mm256_permute2f128_pd::<0x31>(u, v);
                let s = _mm256_add_pd(x, y);
                let s = if $red { red(s) } else { s };
                let r = mulmod(_mm256_sub_pd(x, y), wload(off + k / 2));
                st(k, _mm256_permute2f128_pd::<0x20>(s, r));
                st(k + 4, _mm256_permute2f128_pd::<0x31>(s, r));
            }
        }};
    }
    let narrow = move |e0: usize, e1: usize| {
        if red_at(log_n - 1) {
            narrow1!(e0, e1, true)
        } else {
            narrow1!(e0, e1, false)
        }
        if red_at(log_n - 2) {
            narrow2!(e0, e1, true)
        } else {
            narrow2!(e0, e1, false)
        }
    };
    // Block by block while a group fits in a block (m >= n / block), then
    // breadth-first down to m = 2, then the last stage (m = 1).
    let block = BLOCK.min(n);
    let m_min = (n / block).max(2);
    for b in 0..n / block {
        narrow(b * block, (b + 1) * block);
        let mut m = n / 8;
        while m >= m_min {
            let per = m * block / n;
            stage(m, b * per, (b + 1) * per);
            m /= 2;
        }
    }
    let mut m = m_min / 2;
    while m >= 2 {
        stage(m, 0, m);
        m /= 2;
    }
    // Last stage: (x + y) N^-1 and (x - y) psi^-rev(1) N^-1, canonical u64 out.
    let t = n / 2;
    let ninv = _mm256_set1_pd(plan.n_inv);
    let wl = _mm256_set1_pd(plan.inv_last);
    for j in (0..t).step_by(4) {
        let (x, y) = (ld(j), ld(j + t));
        stu(j, mulmod(_mm256_add_pd(x, y), ninv));
        stu(j + t, mulmod(_mm256_sub_pd(x, y), wl));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::modarith::is_prime;
    use proptest::prelude::*;
    use rand::{Rng, SeedableRng};
    use rand_chacha::ChaCha8Rng;

    /// NTT-friendly primes for every N <= 2^16 (p = 1 mod 2^17): the
    /// largest below 2^40, 2^45, 2^49, 2^50 and 2^51, and the smallest
    /// above 2^50 (the "50-bit" primes of the chains lie on both sides).
    fn primes() -> Vec<u64> {
        let step = 1u64 << 17;
        let below = |b: u32| {
            let mut p = (1u64 << b) - step + 1;
            while !is_prime(p) {
                p -= step;
            }
            p
        };
        let mut above = (1u64 << 50) + 1;
        while !is_prime(above) {
            above += step;
        }
        vec![below(40), below(45), below(49), below(50), above, below(51)]
    }

    fn avx2() -> bool {
        crate::simd::cpu_has_avx2_fma()
    }

    /// Random residues with the edge values 0, 1, p - 1 and (p +- 1) / 2 mixed in.
    fn values(rng: &mut ChaCha8Rng, n: usize, p: u64) -> Vec<u64> {
        (0..n)
            .map(|_| match rng.gen_range(0..8) {
                0 => 0,
                1 => 1,
                2 => p - 1,
                3 => p / 2,
                4 => p / 2 + 1,
                _ => rng.gen_range(0..p),
            })
            .collect()
    }

    fn check(plan: &Plan, fp: &FpNtt, x: &[u64], what: &str) {
        let (n, p) = (plan.ntt_size(), plan.modulus());
        let mut want = x.to_vec();
        plan.fwd(&mut want);
        let mut got = x.to_vec();
        assert!(fp.fwd(&mut got));
        assert_eq!(got, want, "fwd n={n} p={p} {what}");
        let mut want_inv = x.to_vec();
        plan.inv(&mut want_inv);
        plan.normalize(&mut want_inv);
        let mut got_inv = x.to_vec();
        assert!(fp.inv(&mut got_inv));
        assert_eq!(got_inv, want_inv, "inv n={n} p={p} {what}");
        assert!(fp.inv(&mut got));
        assert_eq!(got, x, "roundtrip n={n} p={p} {what}");
    }

    /// Every prime width and N = 2^4 .. 2^16 against tfhe-ntt: forward,
    /// normalized inverse and the round trip, on random residues, all 0,
    /// all p - 1, all (p - 1) / 2, and alternating 0 / p - 1.
    #[test]
    fn matches_tfhe_ntt() {
        if !avx2() {
            return; // no AVX2 and FMA on this CPU: nothing to compare
        }
        let mut rng = ChaCha8Rng::seed_from_u64(21);
        for p in primes() {
            for log_n in 4..=16 {
                let n = 1usize << log_n;
                let plan = Plan::try_new(n, p).unwrap();
                let fp = FpNtt::new(&plan).expect("fp plan");
                for _ in 0..2 {
                    check(&plan, &fp, &values(&mut rng, n, p), "random");
                }
                check(&plan, &fp, &vec![0; n], "zero");
                check(&plan, &fp, &vec![p - 1; n], "p-1");
                check(&plan, &fp, &vec![p / 2; n], "(p-1)/2");
                let alt: Vec<u64> = (0..n).map(|i| if i % 2 == 0 { 0 } else { p - 1 }).collect();
                check(&plan, &fp, &alt, "alternating");
            }
        }
    }

    #[test]
    fn refuses_wide_primes_and_small_degrees() {
        let p60 = crate::modarith::ntt_primes(&[60], 1 << 12, &[])[0];
        assert!(FpNtt::new(&Plan::try_new(1 << 11, p60).unwrap()).is_none());
        let mut p = (1u64 << 51) + 1;
        while !is_prime(p) {
            p += 1 << 12;
        }
        assert!(FpNtt::new(&Plan::try_new(1 << 11, p).unwrap()).is_none());
    }

    /// The stage schedule keeps every bound of the module documentation.
    #[test]
    fn schedule_reduces_as_documented() {
        let ps = primes();
        let (f50, i50) = reduce_schedule(15, ps[3]); // below 2^50
        let (f51, i51) = reduce_schedule(15, ps[5]); // below 2^51
        assert!(
            f50.count_ones() <= 4 && i50.count_ones() <= 7,
            "{f50:b} {i50:b}"
        );
        assert!(
            f51.count_ones() <= 14 && i51.count_ones() <= 14,
            "{f51:b} {i51:b}"
        );
        assert_eq!(f50 & 1, 0); // canonical inputs: no reduction first
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]
        #[test]
        fn prop_matches_tfhe_ntt(
            pi in 0usize..6,
            log_n in 4u32..=11,
            seed in any::<u64>(),
            edge in prop::collection::vec((any::<prop::sample::Index>(), 0u64..3), 0..8),
        ) {
            if !avx2() {
                return Ok(());
            }
            let p = primes()[pi];
            let n = 1usize << log_n;
            let plan = Plan::try_new(n, p).unwrap();
            let fp = FpNtt::new(&plan).unwrap();
            let mut rng = ChaCha8Rng::seed_from_u64(seed);
            let mut x: Vec<u64> = (0..n).map(|_| rng.gen_range(0..p)).collect();
            for (i, e) in edge {
                x[i.index(n)] = [0, p - 1, p / 2][e as usize];
            }
            check(&plan, &fp, &x, "proptest");
        }
    }
}
