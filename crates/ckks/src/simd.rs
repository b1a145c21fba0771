//! SIMD kernels for exact basis conversion and limb-wise modular arithmetic
//! (measured: the conversion dominates ModUp at N=2^15 with two-prime digits).
//!
//! Three paths, chosen at run time:
//! - `avx512-ifma`: 52-bit integer multiply-add (AVX-512 IFMA);
//! - `avx2`: double-precision FMA arithmetic (AVX2 + FMA), exact for moduli
//!   below 2^51 (an error-free product `hi + lo = y * c` via FMA, a rounded
//!   quotient, and an exact remainder; see [`lincomb_fp`]);
//! - `portable`: scalar code and tfhe-ntt's own vectorized multiply-accumulate.
//!
//! Every path gives the same results, exactly. The faster ones can be switched
//! off, so that each path is measured and tested on one host: set
//! `RESIDUE_NO_AVX512=1` (IFMA off: the AVX2 path, as on a CPU without
//! AVX-512) or `RESIDUE_NO_AVX2=1` (both off: the portable path) in the
//! environment (read once, at the first use), or call [`disable_avx512`] /
//! [`disable_avx2`]. tfhe-ntt chooses its NTT kernels from the CPU by itself;
//! `scripts/build-avx2-emulation.sh` builds it without its AVX-512 kernels.

use std::sync::OnceLock;
use std::sync::atomic::{AtomicBool, Ordering};

static DISABLED: AtomicBool = AtomicBool::new(false);
static AVX2_DISABLED: AtomicBool = AtomicBool::new(false);

fn env_set(name: &str) -> bool {
    std::env::var(name)
        .map(|v| !v.is_empty() && v != "0")
        .unwrap_or(false)
}

/// Turns the AVX-512 kernels off for the rest of the process (the AVX2 or
/// portable path gives the same results, exactly).
pub fn disable_avx512() {
    DISABLED.store(true, Ordering::Relaxed);
}

/// Turns the AVX2 and the AVX-512 kernels off for the rest of the process
/// (the portable path gives the same results, exactly).
pub fn disable_avx2() {
    AVX2_DISABLED.store(true, Ordering::Relaxed);
    DISABLED.store(true, Ordering::Relaxed);
}

/// Whether the AVX-512 IFMA kernels run: the CPU has avx512f and avx512ifma,
/// neither `RESIDUE_NO_AVX512` nor `RESIDUE_NO_AVX2` is set (to anything but
/// empty or `0`), and neither [`disable_avx512`] nor [`disable_avx2`] was
/// called.
pub fn avx512_enabled() -> bool {
    static DETECTED: OnceLock<bool> = OnceLock::new();
    let on = *DETECTED.get_or_init(|| {
        !env_set("RESIDUE_NO_AVX512") && !env_set("RESIDUE_NO_AVX2") && cpu_has_ifma()
    });
    on && !DISABLED.load(Ordering::Relaxed)
}

/// Whether the AVX2 (double-precision FMA) kernels run where the IFMA ones do
/// not: the CPU has avx2 and fma, `RESIDUE_NO_AVX2` is unset (or empty or
/// `0`), and [`disable_avx2`] was not called.
pub fn avx2_enabled() -> bool {
    static DETECTED: OnceLock<bool> = OnceLock::new();
    let on = *DETECTED.get_or_init(|| !env_set("RESIDUE_NO_AVX2") && cpu_has_avx2_fma());
    on && !AVX2_DISABLED.load(Ordering::Relaxed)
}

/// The kernel path in use, for benchmark records: `"avx512-ifma"`, `"avx2"`
/// or `"portable"` (tfhe-ntt picks its own NTT kernels from the CPU).
pub fn kernel_path() -> &'static str {
    if avx512_enabled() {
        "avx512-ifma"
    } else if avx2_enabled() {
        "avx2"
    } else {
        "portable"
    }
}

fn cpu_has_ifma() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        std::arch::is_x86_feature_detected!("avx512f")
            && std::arch::is_x86_feature_detected!("avx512ifma")
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        false
    }
}

pub(crate) fn cpu_has_avx2_fma() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma")
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        false
    }
}

/// Moduli the double-precision kernels handle exactly: t < 2^51.
pub(crate) const FP_MODULUS_BOUND: u64 = 1 << 51;

/// Inputs of [`lincomb_fp`] below this bound enter whole (exact as f64, and
/// small enough for the quotient step); wider ones enter as two 32-bit halves.
pub(crate) const FP_INPUT_BOUND: u64 = 1 << 51;

/// The bounds of the double-precision kernels are counted in units of
/// 2^-20 t, rounded up (integers: no rounding question in the schedule).
const FP_UNIT: u64 = 1 << 20;

/// Bound, in units of 2^-20 t and rounded up, of the residue r of one term
/// whose exact product P satisfies |P| < m t: |r| < t/2 + (2 + u) u m t,
/// u = 2^-53 (see [`lincomb_fp`]), and (2 + u) u m 2^20 = m 2^-32 (1 + u/2)
/// is at most floor(m / 2^32) + 2 after rounding up (m < 2^64).
fn fp_term_units(m: u64) -> u64 {
    FP_UNIT / 2 + (m >> 32) + 2
}

/// Bound of a fold's result, in units of 2^-20 t, for |acc| <= 8 t:
/// t/2 + 8 u t, rounded up.
const FP_FOLD_UNITS: u64 = FP_UNIT / 2 + 1;

/// Where the double-precision kernels fold their accumulator to a residue:
/// `fold[j]` = fold before term j, and `fold_tail` = fold before adding a last
/// operand bounded by `tail_units`. Greedy: a term is added while the bound
/// S of |acc| (in units of 2^-20 t) keeps S t <= 2^73, i.e. |acc| <= 2^53
/// (every partial sum an exactly representable integer), and S <= 8 2^20
/// (the fold's own bound, [`FP_FOLD_UNITS`], assumes |acc| <= 8 t).
/// None when not even one term fits after a fold (t too large).
struct FpFoldPlan {
    fold: Vec<bool>,
    fold_tail: bool,
}

fn fp_fold_plan(t: u64, m: u64, terms: usize, tail_units: u64) -> Option<FpFoldPlan> {
    let limit = ((1u128 << 73) / t.max(1) as u128).min(8 * FP_UNIT as u128) as u64;
    let beta = fp_term_units(m);
    if FP_FOLD_UNITS + beta.max(tail_units) > limit {
        return None;
    }
    let mut s = 0u64;
    let fold = (0..terms)
        .map(|_| {
            let f = s + beta > limit;
            if f {
                s = FP_FOLD_UNITS;
            }
            s += beta;
            f
        })
        .collect();
    let fold_tail = s + tail_units > limit;
    Some(FpFoldPlan { fold, fold_tail })
}

/// out[k] = (sum_i ys[i][k] * c_i) mod t, for every ys[i][k] < `y_bound`.
///
/// IFMA path (t < 2^51, at most 7 terms, lengths a multiple of 8): each
/// term is a 52-bit Shoup multiplication (result in [0, 2t)); inputs wider
/// than 52 bits (`y_bound` > 2^52) enter as two such terms, the low 52 bits
/// times c and the high bits times (2^52 c mod t); the sum stays below
/// 32t < 2^56 before the final reduction.
/// Wide IFMA path (odd t < 2^62 where the first does not apply, at most
/// [`WIDE_MAX_TERMS`] terms, any 64-bit inputs, lengths a multiple of 8):
/// see [`lincomb_ifma_wide`].
/// AVX2 path (t < 2^51, any `y_bound`, any number of terms, any length):
/// see [`lincomb_fp`].
/// Returns false (and writes nothing) when none applies, so the caller
/// uses the portable path.
pub(crate) fn lincomb_mod(
    out: &mut [u64],
    ys: &[&[u64]],
    y_bound: u64,
    cs: &[u64],
    t: u64,
) -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        let shapes_ok =
            !ys.is_empty() && ys.len() == cs.len() && ys.iter().all(|y| y.len() == out.len());
        if shapes_ok
            && t < (1 << 51)
            && ys.len() <= 7
            && out.len().is_multiple_of(8)
            && cs.iter().all(|&c| c < t)
            && avx512_enabled()
        {
            let shoup = |c: u64| (((c as u128) << 52) / t as u128) as u64;
            let sh: Vec<u64> = cs.iter().map(|&c| shoup(c)).collect();
            if y_bound <= (1 << 52) {
                // SAFETY: the CPU supports avx512f and avx512ifma (checked by
                // `avx512_enabled`, which requires `cpu_has_ifma`);
                // every slice has the length of `out`, a multiple of 8, so all
                // unaligned 8-lane loads and stores stay in bounds.
                unsafe { lincomb_ifma::<false>(out, ys, cs, &sh, &[], &[], t) };
            } else {
                // Wider inputs: y = lo + 2^52 hi, and hi's constant is c 2^52 mod t.
                let c_hi: Vec<u64> = cs
                    .iter()
                    .map(|&c| (((c as u128) << 52) % t as u128) as u64)
                    .collect();
                let sh_hi: Vec<u64> = c_hi.iter().map(|&c| shoup(c)).collect();
                // SAFETY: as above.
                unsafe { lincomb_ifma::<true>(out, ys, cs, &sh, &c_hi, &sh_hi, t) };
            }
            return true;
        }
        if shapes_ok
            && t < WIDE_MODULUS_BOUND
            && t % 2 == 1
            && ys.len() <= WIDE_MAX_TERMS
            && out.len().is_multiple_of(8)
            && cs.iter().all(|&c| c < t)
            && avx512_enabled()
        {
            let w = Montgomery104::new(t);
            let cs: Vec<u64> = cs.iter().map(|&c| w.to_montgomery(c)).collect();
            // SAFETY: the CPU supports avx512f and avx512ifma (checked by
            // `avx512_enabled`); every slice has the length of `out`, a
            // multiple of 8, so all 8-lane loads and stores stay in bounds.
            unsafe { lincomb_ifma_wide(out, ys, &cs, &w) };
            return true;
        }
        if shapes_ok && t > 1 && t < FP_MODULUS_BOUND && !avx512_enabled() && avx2_enabled() {
            // SAFETY: the CPU supports avx2 and fma (checked by `avx2_enabled`,
            // which requires `cpu_has_avx2_fma`); every slice in `ys` has the
            // length of `out` (checked above), and the kernel loads and stores
            // 4 lanes at k only for k + 4 <= out.len().
            unsafe { lincomb_fp(out, ys, y_bound, cs, t) };
            return true;
        }
    }
    let _ = (out, ys, y_bound, cs, t);
    false
}

/// out[k] = round(sum_i ys[i][k] as f64 * inv_b[i]) (summed in order of i,
/// rounded half away from zero: the same value as the scalar expression)
/// when the sum is below 2^52. Returns false (and writes nothing) without
/// AVX2 (or with it switched off) or when the shapes do not hold.
pub(crate) fn round_sum_scaled(out: &mut [u64], ys: &[&[u64]], inv_b: &[f64]) -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        if !ys.is_empty()
            && ys.len() == inv_b.len()
            && ys.iter().all(|y| y.len() == out.len())
            && inv_b.iter().all(|&x| x >= 0.0 && x.is_finite())
            && avx2_enabled()
        {
            // SAFETY: the CPU supports avx2 and fma (`avx2_enabled`); every
            // slice has the length of `out`, and the kernel loads and stores 4
            // lanes at k only for k + 4 <= out.len().
            unsafe { round_sum_scaled_avx2(out, ys, inv_b) };
            return true;
        }
    }
    let _ = (out, ys, inv_b);
    false
}

/// The scalar value of [`round_sum_scaled`] at one position.
#[inline]
pub(crate) fn round_sum_scaled_scalar(ys: &[&[u64]], inv_b: &[f64], k: usize) -> u64 {
    let s: f64 = ys.iter().zip(inv_b).map(|(y, &ib)| y[k] as f64 * ib).sum();
    s.round() as u64
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn round_sum_scaled_avx2(out: &mut [u64], ys: &[&[u64]], inv_b: &[f64]) {
    use std::arch::x86_64::*;
    let n = out.len();
    let magic_bits = _mm256_set1_epi64x(0x4330_0000_0000_0000);
    let magic = _mm256_set1_pd(4503599627370496.0); // 2^52
    let half = _mm256_set1_pd(0.5);
    let one = _mm256_set1_pd(1.0);
    let low32 = _mm256_set1_epi64x(0xFFFF_FFFF);
    let two32 = _mm256_set1_pd(4294967296.0);
    let ibv: Vec<__m256d> = inv_b.iter().map(|&x| _mm256_set1_pd(x)).collect();
    let mut k = 0;
    while k + 4 <= n {
        // Products then sums, in order (no FMA): as the scalar code.
        let mut s = _mm256_setzero_pd();
        for (y, &ib) in ys.iter().zip(&ibv) {
            // SAFETY: k + 4 <= n = y.len() (checked by the caller).
            let yv = unsafe { _mm256_loadu_si256(y.as_ptr().add(k) as *const __m256i) };
            // y as f64 (rounded to nearest, as `as f64`): the 32-bit halves
            // convert exactly (OR-ed into the mantissa of 2^52), hi 2^32 is
            // exact, and the one addition rounds the exact sum.
            let lo = _mm256_sub_pd(
                _mm256_castsi256_pd(_mm256_or_si256(_mm256_and_si256(yv, low32), magic_bits)),
                magic,
            );
            let hi = _mm256_sub_pd(
                _mm256_castsi256_pd(_mm256_or_si256(_mm256_srli_epi64::<32>(yv), magic_bits)),
                magic,
            );
            let yf = _mm256_fmadd_pd(hi, two32, lo);
            s = _mm256_add_pd(s, _mm256_mul_pd(yf, ib));
        }
        // s >= 0: round half away from zero = floor(s) + (s - floor(s) >= 1/2),
        // with s - floor(s) exact.
        let f = _mm256_floor_pd(s);
        let up = _mm256_and_pd(_mm256_cmp_pd::<_CMP_GE_OQ>(_mm256_sub_pd(s, f), half), one);
        let r = _mm256_add_pd(f, up);
        let ri = _mm256_sub_epi64(_mm256_castpd_si256(_mm256_add_pd(r, magic)), magic_bits);
        // SAFETY: k + 4 <= n.
        unsafe { _mm256_storeu_si256(out.as_mut_ptr().add(k) as *mut __m256i, ri) };
        k += 4;
    }
    for (k, o) in out.iter_mut().enumerate().skip(k) {
        *o = round_sum_scaled_scalar(ys, inv_b, k);
    }
}

/// The AVX2 kernel of [`lincomb_mod`]: double-precision FMA arithmetic for
/// 1 < t < 2^51 and every y < `y_bound`.
///
/// # Why it is exact
///
/// Let u = 2^-53 and C = 1.5 2^52. Constants are held as signed residues
/// |c| <= t/2 (c - t when c > t/2). Inputs below [`FP_INPUT_BOUND`] = 2^51
/// enter whole (y < Y = `y_bound`, exact as f64); wider ones (`split`) as two
/// terms, the low 32 bits times c and the high 32 bits times
/// (2^32 c mod t), signed as well (Y = 2^32). Either way the exact product
/// P = y c satisfies |P| < m t with m = Y/2 <= 2^50. For one term:
///
/// 1. hi = fl(y c), lo = fma(y, c, -hi): the error-free product, hi + lo = P
///    exactly (both integers), |lo| <= u |P|, |hi| <= (1 + u) |P|;
/// 2. q = fma(hi, fl(1/t), C) - C: fl(1/t) = (1 + e)/t with |e| <= u, so
///    |hi fl(1/t)| < m (1 + u)^2 <= 2^51 (m <= 2^51 - 1), the exact fused
///    value lies in [2^52, 2^53], where the doubles are the integers, and q
///    is an integer nearest to hi fl(1/t): |q - hi/t| <= 1/2 + u |hi| / t;
/// 3. r = fma(-q, t, hi) + lo: hi - q t is an integer with
///    |hi - q t| <= t/2 + u |hi| < 2^53, which the FMA computes exactly, and
///    the sum is the integer P - q t, also exact:
///    |r| <= t/2 + (2 + u) u |P| < (1/2 + (2 + u) u m) t.
///
/// With m <= 2^50 that is |r| < 0.75 t (plus 2^-55 t), and for split
/// inputs (m = 2^31) barely above t/2. The terms are summed in f64: a
/// partial sum is exact while it is an integer of magnitude at most 2^53. A
/// fold reduces the accumulator the same way (q = fma(acc, fl(1/t), C) - C,
/// acc - q t by one FMA): for |acc| <= 8 t it leaves |acc| <= t/2 + 8 u t.
/// [`fp_fold_plan`] adds up these bounds (in units of 2^-20 t, rounded up)
/// and folds before a term that could take |acc| past min(2^53, 8 t). Below
/// 2^50 the 8 t cap rules (with Y = 2^51: 10 terms from zero, 9 after each
/// fold; more for smaller Y); just below 2^51 (2^53 / t just above 4),
/// 5 whole terms from zero and 4 after each fold (3.75 t and 3.5 t), or 7
/// split halves then 6. The final fold gives
/// |r| <= t/2 + 8 u t < t, and one conditional addition of t the residue
/// in [0, t).
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn lincomb_fp(out: &mut [u64], ys: &[&[u64]], y_bound: u64, cs: &[u64], t: u64) {
    use std::arch::x86_64::*;
    let n = out.len();
    let split = y_bound > FP_INPUT_BOUND;
    let width = if split { 2 } else { 1 };
    // |P| < m t: y < Y, |c| <= t/2.
    let m = if split { 1 << 31 } else { y_bound.div_ceil(2) };
    let cs: Vec<u64> = cs.iter().map(|&c| c % t).collect();
    let plan = match fp_fold_plan(t, m, width * ys.len(), 0) {
        Some(plan) if t > 1 && t < FP_MODULUS_BOUND => plan,
        _ => {
            for (k, o) in out.iter_mut().enumerate() {
                *o = lincomb_scalar(ys, &cs, t, k);
            }
            return;
        }
    };
    let magic_bits = _mm256_set1_epi64x(0x4330_0000_0000_0000);
    let magic = _mm256_set1_pd(4503599627370496.0); // 2^52
    let rc = _mm256_set1_pd(6755399441055744.0); // 1.5 2^52
    let low32 = _mm256_set1_epi64x(0xFFFF_FFFF);
    let tf = t as f64;
    let tv = _mm256_set1_pd(tf);
    let tinv = _mm256_set1_pd(1.0 / tf);
    let zero = _mm256_setzero_pd();
    let signed = |c: u64| {
        if c > t / 2 { c as f64 - tf } else { c as f64 }
    };
    let c_lo: Vec<__m256d> = cs.iter().map(|&c| _mm256_set1_pd(signed(c))).collect();
    let c_hi: Vec<__m256d> = cs
        .iter()
        .map(|&c| _mm256_set1_pd(signed((((c as u128) << 32) % t as u128) as u64)))
        .collect();
    // The nearest integer to x fl(1/t), for |x fl(1/t)| <= 2^51.
    let quot = |x: __m256d| _mm256_sub_pd(_mm256_fmadd_pd(x, tinv, rc), rc);
    // Residue of y * c with |r| < (1/2 + (2 + u) u m) t (see above).
    let term = |y: __m256d, c: __m256d| {
        let hi = _mm256_mul_pd(y, c);
        let lo = _mm256_fmsub_pd(y, c, hi);
        _mm256_add_pd(_mm256_fnmadd_pd(quot(hi), tv, hi), lo)
    };
    // |acc| <= 8 t -> |acc| <= t/2 + 8 u t, exactly.
    let fold = |acc: __m256d| _mm256_fnmadd_pd(quot(acc), tv, acc);
    // u64 below 2^52 to f64, exactly.
    let to_f64 =
        |x: __m256i| _mm256_sub_pd(_mm256_castsi256_pd(_mm256_or_si256(x, magic_bits)), magic);
    let mut k = 0;
    while k + 4 <= n {
        let mut acc = zero;
        for (i, y) in ys.iter().enumerate() {
            // SAFETY: k + 4 <= n = y.len() (checked by the caller).
            let yv = unsafe { _mm256_loadu_si256(y.as_ptr().add(k) as *const __m256i) };
            if split {
                if plan.fold[2 * i] {
                    acc = fold(acc);
                }
                acc = _mm256_add_pd(acc, term(to_f64(_mm256_and_si256(yv, low32)), c_lo[i]));
                if plan.fold[2 * i + 1] {
                    acc = fold(acc);
                }
                acc = _mm256_add_pd(acc, term(to_f64(_mm256_srli_epi64::<32>(yv)), c_hi[i]));
            } else {
                if plan.fold[i] {
                    acc = fold(acc);
                }
                acc = _mm256_add_pd(acc, term(to_f64(yv), c_lo[i]));
            }
        }
        let r = fold(acc);
        let r = _mm256_add_pd(r, _mm256_and_pd(_mm256_cmp_pd::<_CMP_LT_OQ>(r, zero), tv));
        let ri = _mm256_sub_epi64(_mm256_castpd_si256(_mm256_add_pd(r, magic)), magic_bits);
        // SAFETY: k + 4 <= n = out.len().
        unsafe { _mm256_storeu_si256(out.as_mut_ptr().add(k) as *mut __m256i, ri) };
        k += 4;
    }
    for (k, o) in out.iter_mut().enumerate().skip(k) {
        *o = lincomb_scalar(ys, &cs, t, k);
    }
}

/// outs[m][k] = (outs[m][k] + sum_j xs[j][k] * ks[m][j][k]) mod p, pointwise
/// (NTT domain), every input reduced mod p. `M` = 1 is tfhe-ntt's
/// `mul_accumulate`; `M` = 2 is the key-switching inner product (each digit
/// is loaded once for both outputs).
/// IFMA path (odd p < 2^62, at least [`WIDE_DOT_MIN_TERMS`] terms, lengths
/// a multiple of 8): see [`dot_acc_ifma`].
/// AVX2 path (1 < p < 2^51, IFMA off): the arithmetic of [`lincomb_fp`]
/// with per-coefficient factors.
/// Returns false (and writes nothing) when neither applies (tfhe-ntt's
/// `mul_accumulate` then runs), e.g. a single product with IFMA on, p too
/// large, or shapes that do not match.
pub(crate) fn dot_acc_mod<const M: usize>(
    outs: [&mut [u64]; M],
    xs: &[&[u64]],
    ks: [&[&[u64]]; M],
    p: u64,
) -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        let n = outs.first().map_or(0, |o| o.len());
        let shapes_ok = M > 0
            && outs.iter().all(|o| o.len() == n)
            && xs.iter().all(|x| x.len() == n)
            && ks
                .iter()
                .all(|k| k.len() == xs.len() && k.iter().all(|k| k.len() == n));
        if shapes_ok
            && p > 1
            && p < WIDE_MODULUS_BOUND
            && p % 2 == 1
            && xs.len() >= WIDE_DOT_MIN_TERMS
            && xs.len() <= WIDE_MAX_TERMS
            && n.is_multiple_of(8)
            && avx512_enabled()
        {
            let w = Montgomery104::new(p);
            // SAFETY: the CPU supports avx512f and avx512ifma
            // (`avx512_enabled`); every slice has length n, a multiple of 8
            // (checked above), so all 8-lane loads and stores stay in bounds.
            unsafe {
                if p < 1 << 52 {
                    dot_acc_ifma::<M, true>(outs, xs, ks, &w)
                } else {
                    dot_acc_ifma::<M, false>(outs, xs, ks, &w)
                }
            };
            return true;
        }
        if shapes_ok && p > 1 && p < FP_MODULUS_BOUND && !avx512_enabled() && avx2_enabled() {
            // SAFETY: the CPU supports avx2 and fma (`avx2_enabled`); every
            // slice has length n (checked above), and the kernel loads and
            // stores 4 lanes at k only for k + 4 <= n.
            unsafe { dot_acc_fp(outs, xs, ks, p) };
            return true;
        }
    }
    let _ = (outs, xs, ks, p);
    false
}

/// The AVX2 kernel of [`dot_acc_mod`]. Both factors are canonical residues
/// (x, k < p, unsigned: signing x would cost more than the folds it saves),
/// so |P| < m p with m = p: a term's residue is below
/// (1/2 + (2 + u) u p) p, about 0.75 p below 2^50 and p just below 2^51,
/// and |hi fl(1/p)| < p (1 + u)^2 <= 2^51 as [`lincomb_fp`] requires. The
/// sum starts from zero and the accumulator's old value (< p) is added last;
/// [`fp_fold_plan`] places the folds: just below 2^51, 3 terms from zero
/// and 3 after each fold (3 p and 3.5 p, within 2^53 > 4 p), so the 8
/// digits of n15-q760's top level take 2 folds; below 2^50, 9 terms
/// between folds.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn dot_acc_fp<const M: usize>(
    outs: [&mut [u64]; M],
    xs: &[&[u64]],
    ks: [&[&[u64]]; M],
    p: u64,
) {
    use std::arch::x86_64::*;
    let n = outs[0].len();
    let plan = match fp_fold_plan(p, p, xs.len(), FP_UNIT) {
        Some(plan) if p > 1 && p < FP_MODULUS_BOUND => plan,
        _ => {
            dot_acc_scalar(outs, xs, ks, p, 0..n);
            return;
        }
    };
    let magic_bits = _mm256_set1_epi64x(0x4330_0000_0000_0000);
    let magic = _mm256_set1_pd(4503599627370496.0); // 2^52
    let rc = _mm256_set1_pd(6755399441055744.0); // 1.5 2^52
    let pf = p as f64;
    let pv = _mm256_set1_pd(pf);
    let pinv = _mm256_set1_pd(1.0 / pf);
    let zero = _mm256_setzero_pd();
    let quot = |x: __m256d| _mm256_sub_pd(_mm256_fmadd_pd(x, pinv, rc), rc);
    // Residue of x * k (x, k < p), exactly (see above and `lincomb_fp`).
    let term = |y: __m256d, c: __m256d| {
        let hi = _mm256_mul_pd(y, c);
        let lo = _mm256_fmsub_pd(y, c, hi);
        _mm256_add_pd(_mm256_fnmadd_pd(quot(hi), pv, hi), lo)
    };
    let fold = |acc: __m256d| _mm256_fnmadd_pd(quot(acc), pv, acc);
    let to_f64 =
        |x: __m256i| _mm256_sub_pd(_mm256_castsi256_pd(_mm256_or_si256(x, magic_bits)), magic);
    // SAFETY (all loads): k + 4 <= n4 <= n = len of every slice (checked by
    // the caller).
    let load = |s: &[u64], k: usize| unsafe {
        to_f64(_mm256_loadu_si256(s.as_ptr().add(k) as *const __m256i))
    };
    // Tiles of TILE coefficients: each digit's run over a tile is added to
    // accumulators that stay in L1 before the next digit's, so 1 + M input
    // streams are live at a time instead of (1 + M) * xs.len() (measured at
    // N = 2^15 with 8 digits and M = 2: the interleaved version reached only
    // a third of the bandwidth the single-digit calls get).
    const TILE: usize = 512;
    let n4 = n / 4 * 4;
    let mut accs = [[zero; TILE / 4]; M];
    let mut t0 = 0;
    while t0 < n4 {
        let len = (n4 - t0).min(TILE);
        for a in accs.iter_mut() {
            a[..len / 4].fill(zero);
        }
        for (j, x) in xs.iter().enumerate() {
            let f = plan.fold[j];
            for (i, k) in (t0..t0 + len).step_by(4).enumerate() {
                // The same digit's next tile, a tile ahead (a hint: the
                // address is never dereferenced, wrapping_add keeps it a
                // plain value past the end).
                _mm_prefetch::<_MM_HINT_T0>(x.as_ptr().wrapping_add(k + TILE) as *const i8);
                for kk in ks.iter() {
                    _mm_prefetch::<_MM_HINT_T0>(kk[j].as_ptr().wrapping_add(k + TILE) as *const i8);
                }
                let xv = load(x, k);
                for m in 0..M {
                    let a = if f { fold(accs[m][i]) } else { accs[m][i] };
                    accs[m][i] = _mm256_add_pd(a, term(xv, load(ks[m][j], k)));
                }
            }
        }
        for m in 0..M {
            for (i, k) in (t0..t0 + len).step_by(4).enumerate() {
                let a = if plan.fold_tail {
                    fold(accs[m][i])
                } else {
                    accs[m][i]
                };
                let r = fold(_mm256_add_pd(a, load(outs[m], k)));
                let r = _mm256_add_pd(r, _mm256_and_pd(_mm256_cmp_pd::<_CMP_LT_OQ>(r, zero), pv));
                let ri = _mm256_sub_epi64(_mm256_castpd_si256(_mm256_add_pd(r, magic)), magic_bits);
                // SAFETY: k + 4 <= n4 <= n = outs[m].len().
                unsafe { _mm256_storeu_si256(outs[m].as_mut_ptr().add(k) as *mut __m256i, ri) };
            }
        }
        t0 += len;
    }
    dot_acc_scalar(outs, xs, ks, p, n4..n);
}

/// The scalar form of [`dot_acc_fp`] over the coefficients `range`: its
/// fallback when the modulus is out of its bounds, and its tail after the
/// last 4 lanes.
fn dot_acc_scalar<const M: usize>(
    outs: [&mut [u64]; M],
    xs: &[&[u64]],
    ks: [&[&[u64]]; M],
    p: u64,
    range: std::ops::Range<usize>,
) {
    let pw = p as u128;
    for (out, k) in outs.into_iter().zip(ks) {
        for kk in range.clone() {
            let s = xs.iter().zip(k).fold(out[kk] as u128 % pw, |a, (x, c)| {
                (a + (x[kk] as u128 % pw) * (c[kk] as u128 % pw)) % pw
            });
            out[kk] = s as u64;
        }
    }
}

/// Portable lazy kernel of [`lincomb_mod`] for any modulus below 2^62:
/// out[k] = sum_i ys[i][k] * cs[i] mod t, every `ys[i][k] < y_bound`.
///
/// Products are summed as 128-bit integers and reduced once per output
/// (Barrett with a 128-bit ratio, [`Modulus::reduce_u128`]), not once per
/// term: a sum of products below `y_bound * t` fits in 128 bits for up to
/// `u128::MAX / (y_bound * t)` terms (at least 31 for 61-bit inputs and
/// constants); longer sums are folded to a residue at that interval. This
/// is the path for targets or inputs too wide for the IFMA (t < 2^51) and
/// AVX2 (t < 2^51) kernels, e.g. the 56-61-bit primes of the bootstrapping
/// sets.
pub(crate) fn lincomb_lazy(
    out: &mut [u64],
    ys: &[&[u64]],
    y_bound: u64,
    cs: &[u64],
    t: &crate::modarith::Modulus,
) {
    debug_assert_eq!(ys.len(), cs.len());
    let tv = t.value;
    let cs: Vec<u64> = cs.iter().map(|&c| c % tv).collect();
    let prod = (y_bound.max(1) as u128) * (tv as u128);
    // Terms that may be added to a residue (< t) without overflow.
    let cap = ((u128::MAX - tv as u128) / prod).max(1) as usize;
    // Four outputs at a time (four independent 128-bit chains) when the
    // whole sum fits without a fold; the rest one at a time.
    let n4 = if ys.len() <= cap {
        out.len() / 4 * 4
    } else {
        0
    };
    for (b, o) in out[..n4].chunks_exact_mut(4).enumerate() {
        let k = 4 * b;
        let mut acc = [0u128; 4];
        for (y, &c) in ys.iter().zip(&cs) {
            let y = &y[k..k + 4];
            let c = c as u128;
            acc[0] += y[0] as u128 * c;
            acc[1] += y[1] as u128 * c;
            acc[2] += y[2] as u128 * c;
            acc[3] += y[3] as u128 * c;
        }
        for (o, a) in o.iter_mut().zip(acc) {
            *o = t.reduce_u128(a);
        }
    }
    for (k, o) in out.iter_mut().enumerate().skip(n4) {
        let mut acc = 0u128;
        for (chunk_y, chunk_c) in ys.chunks(cap).zip(cs.chunks(cap)) {
            for (y, &c) in chunk_y.iter().zip(chunk_c) {
                acc += y[k] as u128 * c as u128;
            }
            acc = t.reduce_u128(acc) as u128;
        }
        *o = acc as u64;
    }
}

/// The scalar value of [`lincomb_mod`] at one position.
pub(crate) fn lincomb_scalar(ys: &[&[u64]], cs: &[u64], t: u64, k: usize) -> u64 {
    let t = t as u128;
    let s = ys.iter().zip(cs).fold(0u128, |a, (y, &c)| {
        (a + (y[k] as u128 % t) * (c as u128 % t)) % t
    });
    s as u64
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx512ifma")]
unsafe fn lincomb_ifma<const SPLIT: bool>(
    out: &mut [u64],
    ys: &[&[u64]],
    cs: &[u64],
    shoup: &[u64],
    cs_hi: &[u64],
    shoup_hi: &[u64],
    t: u64,
) {
    use std::arch::x86_64::*;
    let mask52 = _mm512_set1_epi64(((1u64 << 52) - 1) as i64);
    let tv = _mm512_set1_epi64(t as i64);
    let zero = _mm512_setzero_si512();
    let splat =
        |v: &[u64]| -> Vec<__m512i> { v.iter().map(|&c| _mm512_set1_epi64(c as i64)).collect() };
    let (cv, sv, chv, shv) = (splat(cs), splat(shoup), splat(cs_hi), splat(shoup_hi));
    // One 52-bit Shoup product y c mod t, in [0, 2t), for y < 2^52.
    let term = |y: __m512i, c: __m512i, s: __m512i| {
        let qhat = _mm512_madd52hi_epu64(zero, y, s);
        let lo1 = _mm512_madd52lo_epu64(zero, y, c);
        let lo2 = _mm512_madd52lo_epu64(zero, qhat, tv);
        _mm512_and_si512(_mm512_sub_epi64(lo1, lo2), mask52)
    };
    for k in (0..out.len()).step_by(8) {
        let mut acc = zero;
        for (i, y) in ys.iter().enumerate() {
            // SAFETY: k + 8 <= len for every slice (checked by the caller).
            let yv = unsafe { _mm512_loadu_si512(y.as_ptr().add(k) as *const _) };
            if SPLIT {
                // madd52 reads only the low 52 bits of y: the high bits enter
                // as their own term.
                let hi = _mm512_srli_epi64::<52>(yv);
                acc = _mm512_add_epi64(acc, term(yv, cv[i], sv[i]));
                acc = _mm512_add_epi64(acc, term(hi, chv[i], shv[i]));
            } else {
                acc = _mm512_add_epi64(acc, term(yv, cv[i], sv[i]));
            }
        }
        // acc < 2t per term: at most 14 terms (7 split inputs), below 32t <
        // 2^56. Reduce by 16t, 8t, 4t, 2t, t (each: min(x, x - m) unsigned).
        for m in [16u64, 8, 4, 2, 1] {
            let mv = _mm512_set1_epi64((m * t) as i64);
            acc = _mm512_min_epu64(acc, _mm512_sub_epi64(acc, mv));
        }
        // SAFETY: as above.
        unsafe { _mm512_storeu_si512(out.as_mut_ptr().add(k) as *mut _, acc) };
    }
}

/// Moduli the wide IFMA kernels handle: odd t below 2^62.
const WIDE_MODULUS_BOUND: u64 = 1 << 62;

/// Terms summed by one call of the wide IFMA kernels (their 64-bit column
/// accumulators hold at least 2^10 terms; this leaves a wide margin).
const WIDE_MAX_TERMS: usize = 64;

/// Fewest products per output for which [`dot_acc_ifma`] replaces
/// tfhe-ntt's `mul_accumulate`: its per-output Montgomery reductions cost
/// about as much as two of tfhe-ntt's modular products.
const WIDE_DOT_MIN_TERMS: usize = 2;

/// Constants of Montgomery reduction with R = 2^104 in radix 2^52, for an
/// odd modulus t < 2^62 held as two 52-bit digits t = t0 + 2^52 t1
/// (t1 < 2^10). Montgomery, "Modular multiplication without trial
/// division", Math. Comp. 44 (1985); here each digit step is two IFMA
/// products (`vpmadd52luq` / `vpmadd52huq`).
pub(crate) struct Montgomery104 {
    t: u64,
    /// -t^-1 mod 2^52.
    neg_inv: u64,
    /// 2^104 mod t (R).
    r: u64,
    /// 2^208 mod t (R^2).
    r2: u64,
}

impl Montgomery104 {
    pub(crate) fn new(t: u64) -> Self {
        debug_assert!(t % 2 == 1 && t < WIDE_MODULUS_BOUND);
        // Newton's iteration for t^-1 mod 2^64: x = t is right to 3 bits
        // (t^2 = 1 mod 8 for odd t), each step doubles them.
        let mut x = t;
        for _ in 0..5 {
            x = x.wrapping_mul(2u64.wrapping_sub(t.wrapping_mul(x)));
        }
        let r = ((1u128 << 104) % t as u128) as u64;
        let r2 = ((r as u128 * r as u128) % t as u128) as u64;
        Self {
            t,
            neg_inv: x.wrapping_neg() & ((1 << 52) - 1),
            r,
            r2,
        }
    }

    /// c R mod t, the form a constant takes so that the kernel's reduction
    /// (which divides by R) returns sum y c mod t.
    pub(crate) fn to_montgomery(&self, c: u64) -> u64 {
        ((c as u128 * self.r as u128) % self.t as u128) as u64
    }
}

/// out[k] = sum_i ys[i][k] cs[i] R^-1 mod t (canonical), for odd t < 2^62,
/// any 64-bit inputs, constants below t (callers pass c R mod t, see
/// [`Montgomery104::to_montgomery`]) and at most [`WIDE_MAX_TERMS`] terms:
/// the IFMA path of [`lincomb_mod`] for moduli too wide for the 52-bit
/// Shoup kernel (the 56-61-bit primes of the bootstrapping sets).
///
/// Each product y c is accumulated exactly in three 52-bit columns
/// (y = y0 + 2^52 y1 with y1 < 2^12, c = c0 + 2^52 c1 with c1 < 2^10:
/// seven IFMA products, no carries until the end); the sum V < terms 2^64 t
/// is then reduced by two Montgomery digit steps to (V + M t) / 2^104 <
/// t (1 + terms 2^-40) < 2t, and once conditionally by t.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx512ifma")]
unsafe fn lincomb_ifma_wide(out: &mut [u64], ys: &[&[u64]], cs: &[u64], w: &Montgomery104) {
    use std::arch::x86_64::*;
    let zero = _mm512_setzero_si512();
    let c0: Vec<__m512i> = cs.iter().map(|&c| _mm512_set1_epi64(c as i64)).collect();
    let c1: Vec<__m512i> = cs
        .iter()
        .map(|&c| _mm512_set1_epi64((c >> 52) as i64))
        .collect();
    for k in (0..out.len()).step_by(8) {
        let (mut a0, mut a1, mut a2) = (zero, zero, zero);
        for (i, y) in ys.iter().enumerate() {
            // SAFETY: k + 8 <= len for every slice (checked by the caller).
            let y = unsafe { _mm512_loadu_si512(y.as_ptr().add(k) as *const _) };
            // SAFETY: IFMA is available (the caller's contract).
            (a0, a1, a2) = unsafe { mac_wide(a0, a1, a2, y, c0[i], c1[i]) };
        }
        // SAFETY: as above.
        let r = unsafe { redc_wide(a0, a1, a2, w) };
        // SAFETY: as above.
        unsafe { _mm512_storeu_si512(out.as_mut_ptr().add(k) as *mut _, r) };
    }
}

/// outs[m][k] = (outs[m][k] + sum_j xs[j][k] ks[m][j][k]) mod p for odd
/// p < 2^62, inputs and accumulators below p: the IFMA path of
/// [`dot_acc_mod`]. The products are summed exactly in 52-bit columns and
/// reduced once per output (as [`lincomb_ifma_wide`]), which leaves a
/// factor R^-1; one more Montgomery product by R^2 mod p removes it.
/// `NARROW` (p < 2^52, so every input is one 52-bit digit): each product
/// is two IFMA operations into the two low columns instead of seven.
/// Against tfhe-ntt's `mul_accumulate` per term, the accumulators are
/// read and written once per call instead of once per term.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx512ifma")]
unsafe fn dot_acc_ifma<const M: usize, const NARROW: bool>(
    outs: [&mut [u64]; M],
    xs: &[&[u64]],
    ks: [&[&[u64]]; M],
    w: &Montgomery104,
) {
    use std::arch::x86_64::*;
    let zero = _mm512_setzero_si512();
    let tv = _mm512_set1_epi64(w.t as i64);
    let r2_0 = _mm512_set1_epi64(w.r2 as i64);
    let r2_1 = _mm512_set1_epi64((w.r2 >> 52) as i64);
    let n = outs.first().map_or(0, |o| o.len());
    let mut outs = outs;
    for k in (0..n).step_by(8) {
        let mut acc = [(zero, zero, zero); M];
        for (j, x) in xs.iter().enumerate() {
            // SAFETY: k + 8 <= n for every slice (checked by the caller).
            let x = unsafe { _mm512_loadu_si512(x.as_ptr().add(k) as *const _) };
            for (a, km) in acc.iter_mut().zip(&ks) {
                // SAFETY: as above.
                let c = unsafe { _mm512_loadu_si512(km[j].as_ptr().add(k) as *const _) };
                if NARROW {
                    a.0 = _mm512_madd52lo_epu64(a.0, x, c);
                    a.1 = _mm512_madd52hi_epu64(a.1, x, c);
                } else {
                    let c1 = _mm512_srli_epi64::<52>(c);
                    // SAFETY: IFMA is available (the caller's contract).
                    *a = unsafe { mac_wide(a.0, a.1, a.2, x, c, c1) };
                }
            }
        }
        for (o, a) in outs.iter_mut().zip(acc) {
            // SAFETY: as above.
            unsafe {
                // s = sum R^-1 (< 2t), then s R^2 R^-1 = sum (< 2t).
                let s = redc_wide(a.0, a.1, a.2, w);
                let (b0, b1, b2) = mac_wide(zero, zero, zero, s, r2_0, r2_1);
                let r = redc_wide(b0, b1, b2, w);
                let old = _mm512_loadu_si512(o.as_ptr().add(k) as *const _);
                let sum = _mm512_add_epi64(r, old);
                let sum = _mm512_min_epu64(sum, _mm512_sub_epi64(sum, tv));
                _mm512_storeu_si512(o.as_mut_ptr().add(k) as *mut _, sum);
            }
        }
    }
}

/// (a0, a1, a2) += y c in 52-bit columns (value a0 + 2^52 a1 + 2^104 a2),
/// c = c0 + 2^52 c1 with c1 < 2^10 (the IFMA products read only the low
/// 52 bits of y and c0); y is any 64-bit value.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx512ifma")]
#[inline]
unsafe fn mac_wide(
    a0: std::arch::x86_64::__m512i,
    a1: std::arch::x86_64::__m512i,
    a2: std::arch::x86_64::__m512i,
    y: std::arch::x86_64::__m512i,
    c0: std::arch::x86_64::__m512i,
    c1: std::arch::x86_64::__m512i,
) -> (
    std::arch::x86_64::__m512i,
    std::arch::x86_64::__m512i,
    std::arch::x86_64::__m512i,
) {
    use std::arch::x86_64::*;
    let y1 = _mm512_srli_epi64::<52>(y);
    let a0 = _mm512_madd52lo_epu64(a0, y, c0);
    let a1 = _mm512_madd52hi_epu64(a1, y, c0);
    let a1 = _mm512_madd52lo_epu64(a1, y, c1);
    let a1 = _mm512_madd52lo_epu64(a1, y1, c0);
    let a2 = _mm512_madd52hi_epu64(a2, y, c1);
    let a2 = _mm512_madd52hi_epu64(a2, y1, c0);
    let a2 = _mm512_madd52lo_epu64(a2, y1, c1);
    (a0, a1, a2)
}

/// (a0 + 2^52 a1 + 2^104 a2) 2^-104 mod t, canonical, for column sums
/// below 2^63 whose value V satisfies V < 2^104 t: two Montgomery digit
/// steps (each: m = a0 (-t^-1) mod 2^52, then (a + m t) / 2^52, exact),
/// giving (V + M t) / 2^104 < V / 2^104 + t < 2t, then one conditional
/// subtraction.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx512ifma")]
#[inline]
unsafe fn redc_wide(
    a0: std::arch::x86_64::__m512i,
    a1: std::arch::x86_64::__m512i,
    a2: std::arch::x86_64::__m512i,
    w: &Montgomery104,
) -> std::arch::x86_64::__m512i {
    use std::arch::x86_64::*;
    let zero = _mm512_setzero_si512();
    let ninv = _mm512_set1_epi64(w.neg_inv as i64);
    let t0 = _mm512_set1_epi64(w.t as i64);
    let t1 = _mm512_set1_epi64((w.t >> 52) as i64);
    // Step 1: the low column becomes a multiple of 2^52 and is shifted out.
    let m = _mm512_madd52lo_epu64(zero, a0, ninv);
    let carry = _mm512_srli_epi64::<52>(_mm512_madd52lo_epu64(a0, m, t0));
    let d0 = _mm512_madd52hi_epu64(a1, m, t0);
    let d0 = _mm512_add_epi64(_mm512_madd52lo_epu64(d0, m, t1), carry);
    let d1 = _mm512_madd52hi_epu64(a2, m, t1);
    // Step 2, the same on (d0, d1).
    let m = _mm512_madd52lo_epu64(zero, d0, ninv);
    let carry = _mm512_srli_epi64::<52>(_mm512_madd52lo_epu64(d0, m, t0));
    let e0 = _mm512_madd52hi_epu64(d1, m, t0);
    let e0 = _mm512_add_epi64(_mm512_madd52lo_epu64(e0, m, t1), carry);
    let e1 = _mm512_madd52hi_epu64(zero, m, t1);
    let r = _mm512_add_epi64(e0, _mm512_slli_epi64::<52>(e1));
    _mm512_min_epu64(r, _mm512_sub_epi64(r, t0))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::modarith::{Modulus, ntt_primes};

    use rand::{Rng, SeedableRng};
    use rand_chacha::ChaCha8Rng;

    /// Random values below `bound` with the edge values 0, bound - 1 and
    /// bound / 2 mixed in.
    fn values(rng: &mut ChaCha8Rng, n: usize, bound: u64) -> Vec<u64> {
        (0..n)
            .map(|_| match rng.gen_range(0..6) {
                0 => 0,
                1 => bound - 1,
                2 => bound / 2,
                _ => rng.gen_range(0..bound),
            })
            .collect()
    }

    /// NTT-friendly primes (p = 1 mod 2^16) nearest below `bound`, up to `count`.
    fn primes_below(bound: u64, count: usize) -> Vec<u64> {
        let step = 1u64 << 16;
        (1..)
            .map(|k| bound - k * step + 1)
            .filter(|&p| crate::modarith::is_prime(p))
            .take(count)
            .collect()
    }

    /// Moduli for the double-precision kernels: small ones, both sides of
    /// 2^50 (the "50-bit" primes of the chains lie on both), and the largest
    /// ones below 2^51 (prime or not).
    fn moduli() -> Vec<u64> {
        let mut ts = vec![
            2,
            3,
            17,
            (1 << 20) + 7,
            (1 << 49) + 1,
            (1 << 50) - 1,
            (1 << 50) + 1,
            (1 << 51) - 1,
            (1 << 51) - 3,
        ];
        ts.extend(ntt_primes(&[30, 40, 49, 50, 50, 50, 50], 1 << 16, &[]));
        ts.extend(primes_below(1 << 51, 2));
        ts
    }

    /// Constants with the edge values of the signed representation: t - 1
    /// (-1), t/2 (the largest positive), t/2 + 1 (the most negative), 0.
    fn constants(rng: &mut ChaCha8Rng, terms: usize, t: u64) -> Vec<u64> {
        let mut cs = values(rng, terms, t);
        for (c, e) in cs.iter_mut().zip([t - 1, t / 2, t / 2 + 1, 0]) {
            *c = e % t;
        }
        cs
    }

    #[test]
    fn fp_fold_plans() {
        let below51 = (1u64 << 51) - 1;
        // Whole inputs below 2^51 just below 2^51: 5 terms from zero
        // (3.75 t), then 4 after each fold (3.5 t).
        let plan = fp_fold_plan(below51, 1 << 50, 14, 0).unwrap();
        let at: Vec<usize> = (0..14).filter(|&j| plan.fold[j]).collect();
        assert_eq!(at, vec![5, 9, 13]);
        // Split halves: 7 from zero, 6 after each fold.
        let plan = fp_fold_plan(below51, 1 << 31, 14, 0).unwrap();
        let at: Vec<usize> = (0..14).filter(|&j| plan.fold[j]).collect();
        assert_eq!(at, vec![7, 13]);
        // The inner product just below 2^51: 3 and 3, then the old value
        // (8 digits: 2 folds and none before the tail).
        let plan = fp_fold_plan(below51, below51, 8, FP_UNIT).unwrap();
        let at: Vec<usize> = (0..8).filter(|&j| plan.fold[j]).collect();
        assert_eq!((at, plan.fold_tail), (vec![3, 6], false));
        // Below 2^50 the 8 t cap rules: 10 terms of 0.75 t, 9 after a fold.
        let t50 = (1u64 << 50) - 1;
        let plan = fp_fold_plan(t50, t50, 30, FP_UNIT).unwrap();
        let at: Vec<usize> = (0..30).filter(|&j| plan.fold[j]).collect();
        assert_eq!(at, vec![10, 19, 28]);
        // Nothing fits once 2^53 / t < 1.25 (a fold and one term).
        assert!(fp_fold_plan((1 << 53) - 1, 1 << 50, 1, 0).is_none());
        // Every plan keeps the bound S with S t <= 2^73 and S <= 8 2^20.
        for t in moduli() {
            for m in [1u64 << 31, 1 << 49, 1 << 50, t] {
                let beta = fp_term_units(m);
                let plan = fp_fold_plan(t, m, 40, FP_UNIT).unwrap();
                let mut s = 0u64;
                for &f in &plan.fold {
                    if f {
                        s = FP_FOLD_UNITS;
                    }
                    s += beta;
                    assert!(s <= 8 * FP_UNIT && s as u128 * t as u128 <= 1 << 73);
                }
            }
        }
    }

    #[test]
    fn fp_lincomb_matches_scalar() {
        if !cpu_has_avx2_fma() {
            return; // no AVX2 on this CPU: nothing to compare
        }
        let mut rng = ChaCha8Rng::seed_from_u64(11);
        for t in moduli() {
            let y_bounds = [
                t,
                1 << 50,
                (1 << 50) + 1,
                (1 << 51) - 1,
                1 << 51,
                (1 << 51) + 1,
                1 << 60,
                u64::MAX,
            ];
            for y_bound in y_bounds {
                for terms in [1, 2, 3, 4, 5, 6, 7, 8, 9, 11, 13, 15, 31] {
                    for n in [0, 1, 3, 4, 5, 8, 13, 67] {
                        let mut ys: Vec<Vec<u64>> =
                            (0..terms).map(|_| values(&mut rng, n, y_bound)).collect();
                        let cs = constants(&mut rng, terms, t);
                        // One position with every input at its largest.
                        if n > 4 {
                            ys.iter_mut().for_each(|y| y[4] = y_bound - 1);
                        }
                        let refs: Vec<&[u64]> = ys.iter().map(|v| v.as_slice()).collect();
                        let mut out = vec![u64::MAX; n];
                        // SAFETY: the CPU has avx2 and fma (checked above);
                        // every slice has length n.
                        unsafe { lincomb_fp(&mut out, &refs, y_bound, &cs, t) };
                        for (k, &o) in out.iter().enumerate() {
                            assert_eq!(
                                o,
                                lincomb_scalar(&refs, &cs, t, k),
                                "t={t} y_bound={y_bound} terms={terms} n={n} k={k}"
                            );
                        }
                    }
                }
            }
        }
    }

    /// Sums of many residues near t/2, all of one sign, with odd totals:
    /// past 2^53 (t near 2^51, about 8 terms) such a sum would round, so
    /// this fails if the kernel folds too late.
    #[test]
    fn fp_lincomb_long_one_signed_sums() {
        if !cpu_has_avx2_fma() {
            return;
        }
        for t in moduli() {
            for y_bound in [t, 1 << 51] {
                for terms in 1..=33 {
                    let n = 8;
                    // Residue (t - 1)/2 or (t - 3)/2 per term, below y_bound.
                    let ys: Vec<Vec<u64>> = (0..terms)
                        .map(|i| {
                            let y = (t - 1) / 2 - (i as u64 % 2).min((t - 1) / 2);
                            let lift = if y + t < y_bound { t } else { 0 };
                            (0..n as u64).map(|k| y + (k % 2) * lift).collect()
                        })
                        .collect();
                    let refs: Vec<&[u64]> = ys.iter().map(|v| v.as_slice()).collect();
                    for c in [1 % t, t - 1] {
                        let cs = vec![c; terms];
                        let mut out = vec![u64::MAX; n];
                        // SAFETY: the CPU has avx2 and fma; every slice has length n.
                        unsafe { lincomb_fp(&mut out, &refs, y_bound, &cs, t) };
                        for (k, &o) in out.iter().enumerate() {
                            assert_eq!(o, lincomb_scalar(&refs, &cs, t, k), "t={t} terms={terms}");
                        }
                    }
                }
            }
        }
    }

    /// The portable lazy kernel, including sums long enough to be folded
    /// part-way (61-bit inputs and constants: 31 terms per fold) and the
    /// largest values every operand can take.
    #[test]
    fn lazy_lincomb_matches_scalar() {
        let mut rng = ChaCha8Rng::seed_from_u64(12);
        let mut ts = moduli();
        ts.retain(|&t| t > 2 && t % 2 == 1); // `Modulus` takes odd t > 2
        ts.extend(ntt_primes(&[56, 60, 61, 61], 1 << 12, &[]));
        ts.push((1 << 62) - 57);
        for t in ts {
            let m = crate::modarith::Modulus::new(t);
            for y_bound in [t, 1 << 52, 1 << 61, 1 << 62] {
                for terms in [1, 2, 6, 31, 32, 33, 70] {
                    let n = 9;
                    let ys: Vec<Vec<u64>> =
                        (0..terms).map(|_| values(&mut rng, n, y_bound)).collect();
                    let mut cs = values(&mut rng, terms, t);
                    cs[0] = t - 1;
                    let refs: Vec<&[u64]> = ys.iter().map(|v| v.as_slice()).collect();
                    let mut out = vec![u64::MAX; n];
                    lincomb_lazy(&mut out, &refs, y_bound, &cs, &m);
                    for (k, &o) in out.iter().enumerate() {
                        assert_eq!(
                            o,
                            lincomb_scalar(&refs, &cs, t, k),
                            "t={t} y_bound={y_bound} terms={terms} k={k}"
                        );
                    }
                }
            }
        }
    }

    /// The IFMA kernel through its dispatcher, for inputs below 2^52 and
    /// wider ones (split into two terms each), up to 7 terms of the
    /// largest values.
    #[test]
    fn ifma_lincomb_matches_scalar() {
        if !avx512_enabled() {
            return; // no IFMA on this CPU (or turned off): nothing to compare
        }
        let mut rng = ChaCha8Rng::seed_from_u64(12);
        let mut ts = moduli();
        ts.push((1 << 51) - 1);
        for t in ts {
            for y_bound in [t, 1 << 50, 1 << 52, (1 << 52) + 1, 1 << 61, u64::MAX] {
                for terms in [1, 2, 3, 7] {
                    for n in [0, 8, 64] {
                        let ys: Vec<Vec<u64>> =
                            (0..terms).map(|_| values(&mut rng, n, y_bound)).collect();
                        let mut cs = values(&mut rng, terms, t);
                        cs[0] = t - 1;
                        let refs: Vec<&[u64]> = ys.iter().map(|v| v.as_slice()).collect();
                        let mut out = vec![u64::MAX; n];
                        assert!(lincomb_mod(&mut out, &refs, y_bound, &cs, t));
                        assert_scalar(&out, &refs, &cs, t, &format!("y_bound={y_bound}"));
                    }
                }
            }
        }
    }

    /// Odd moduli for the wide IFMA kernels: NTT primes of the
    /// bootstrapping sets' sizes (40, 50, 56, 60, 61 bits), the largest odd
    /// values below 2^51, 2^52 and 2^62, and small odd ones.
    fn wide_moduli() -> Vec<u64> {
        let mut ts = vec![
            3,
            17,
            (1 << 20) + 7,
            (1 << 51) - 1,
            (1 << 52) - 1,
            (1 << 62) - 1,
        ];
        ts.extend(ntt_primes(&[40, 50, 56, 60, 61, 61], 1 << 16, &[]));
        ts.extend(primes_below(1 << 62, 2));
        ts
    }

    /// The wide IFMA linear combination (odd t < 2^62) against the scalar
    /// value, through its dispatcher: 64-bit inputs of every size (edge
    /// values mixed in), constants with the signed edge values, 1 to 64 terms.
    #[test]
    fn ifma_wide_lincomb_matches_scalar() {
        if !avx512_enabled() {
            return; // no IFMA on this CPU (or turned off): nothing to compare
        }
        let mut rng = ChaCha8Rng::seed_from_u64(21);
        for t in wide_moduli() {
            for y_bound in [t, 1 << 52, 1 << 61, u64::MAX] {
                for terms in [1, 2, 5, 6, 8, 31, 64] {
                    let n = 64;
                    let ys: Vec<Vec<u64>> =
                        (0..terms).map(|_| values(&mut rng, n, y_bound)).collect();
                    let cs = constants(&mut rng, terms, t);
                    let refs: Vec<&[u64]> = ys.iter().map(|v| v.as_slice()).collect();
                    let mut out = vec![u64::MAX; n];
                    assert!(lincomb_mod(&mut out, &refs, y_bound, &cs, t));
                    assert_scalar(&out, &refs, &cs, t, &format!("y_bound={y_bound}"));
                }
            }
        }
    }

    /// Every output of a linear combination equals [`lincomb_scalar`]'s value.
    fn assert_scalar(out: &[u64], ys: &[&[u64]], cs: &[u64], t: u64, what: &str) {
        for (k, &o) in out.iter().enumerate() {
            let terms = ys.len();
            assert_eq!(
                o,
                lincomb_scalar(ys, cs, t, k),
                "t={t} {what} terms={terms} k={k}"
            );
        }
    }

    /// The IFMA dot product (odd 3 <= p < 2^62, both kernels: below and
    /// above 2^52; M = 1 and 2 outputs)
    /// against the scalar sum, accumulators at their edge values too.
    #[test]
    fn ifma_wide_dot_acc_matches_scalar() {
        if !avx512_enabled() {
            return;
        }
        let mut rng = ChaCha8Rng::seed_from_u64(22);
        let ps: Vec<u64> = wide_moduli().into_iter().filter(|&p| p > 1).collect();
        assert!(ps.len() >= 6);
        for p in ps {
            for terms in [2, 3, 5, 8, 64] {
                let n = 32;
                let xs: Vec<Vec<u64>> = (0..terms).map(|_| values(&mut rng, n, p)).collect();
                let ka: Vec<Vec<u64>> = (0..terms).map(|_| values(&mut rng, n, p)).collect();
                let kb: Vec<Vec<u64>> = (0..terms).map(|_| values(&mut rng, n, p)).collect();
                let acc0 = values(&mut rng, n, p);
                let acc1 = values(&mut rng, n, p);
                let xr: Vec<&[u64]> = xs.iter().map(|v| v.as_slice()).collect();
                let kar: Vec<&[u64]> = ka.iter().map(|v| v.as_slice()).collect();
                let kbr: Vec<&[u64]> = kb.iter().map(|v| v.as_slice()).collect();
                let expect = |acc: &[u64], k: &[&[u64]], i: usize| {
                    let s = xr.iter().zip(k).fold(acc[i] as u128, |s, (x, k)| {
                        (s + x[i] as u128 * k[i] as u128) % p as u128
                    });
                    s as u64
                };
                let (mut o0, mut o1) = (acc0.clone(), acc1.clone());
                assert!(dot_acc_mod(
                    [&mut o0[..], &mut o1[..]],
                    &xr,
                    [&kar, &kbr],
                    p
                ));
                let mut o2 = acc0.clone();
                assert!(dot_acc_mod([&mut o2[..]], &xr, [&kar], p));
                for i in 0..n {
                    assert_eq!(o0[i], expect(&acc0, &kar, i), "p={p} terms={terms} i={i}");
                    assert_eq!(o1[i], expect(&acc1, &kbr, i), "p={p} terms={terms} i={i}");
                    assert_eq!(o2[i], o0[i]);
                }
            }
        }
    }

    #[test]
    fn round_sum_scaled_matches_scalar() {
        if !cpu_has_avx2_fma() {
            return;
        }
        let mut rng = ChaCha8Rng::seed_from_u64(13);
        let bs = ntt_primes(&[60, 50, 49, 40], 1 << 12, &[]);
        for terms in 1..=4 {
            for n in [0, 1, 4, 7, 67] {
                let ys: Vec<Vec<u64>> = bs[..terms]
                    .iter()
                    .map(|&b| values(&mut rng, n, b))
                    .collect();
                let inv_b: Vec<f64> = bs[..terms].iter().map(|&b| 1.0 / b as f64).collect();
                let refs: Vec<&[u64]> = ys.iter().map(|v| v.as_slice()).collect();
                let mut out = vec![u64::MAX; n];
                // SAFETY: the CPU has avx2 and fma; every slice has length n.
                unsafe { round_sum_scaled_avx2(&mut out, &refs, &inv_b) };
                for (k, &o) in out.iter().enumerate() {
                    assert_eq!(o, round_sum_scaled_scalar(&refs, &inv_b, k), "k={k}");
                }
            }
        }
        // Exact halves round away from zero, as f64::round.
        let ys = [vec![1u64, 3, 5, 2, 0, 7, 9]];
        let refs: Vec<&[u64]> = ys.iter().map(|v| v.as_slice()).collect();
        let mut out = vec![0u64; 7];
        // SAFETY: as above.
        unsafe { round_sum_scaled_avx2(&mut out, &refs, &[0.5]) };
        assert_eq!(out, vec![1, 2, 3, 1, 0, 4, 5]);
    }

    #[test]
    fn fp_dot_acc_matches_scalar() {
        if !cpu_has_avx2_fma() {
            return;
        }
        let mut rng = ChaCha8Rng::seed_from_u64(14);
        for p in moduli() {
            for terms in [0, 1, 2, 3, 4, 6, 7, 8, 9, 10, 11, 15, 31] {
                // 1029: two whole tiles of the kernel, a part one and a tail.
                for n in [0, 1, 3, 4, 5, 67, 1029] {
                    let mut xs: Vec<Vec<u64>> =
                        (0..terms).map(|_| values(&mut rng, n, p)).collect();
                    let mut k0: Vec<Vec<u64>> =
                        (0..terms).map(|_| values(&mut rng, n, p)).collect();
                    let k1: Vec<Vec<u64>> = (0..terms).map(|_| values(&mut rng, n, p)).collect();
                    let mut a0 = values(&mut rng, n, p);
                    let a1 = values(&mut rng, n, p);
                    // One position with every operand at its largest.
                    if n > 4 {
                        xs.iter_mut().for_each(|x| x[4] = p - 1);
                        k0.iter_mut().for_each(|k| k[4] = p - 1);
                        a0[4] = p - 1;
                    }
                    let xr: Vec<&[u64]> = xs.iter().map(|v| v.as_slice()).collect();
                    let k0r: Vec<&[u64]> = k0.iter().map(|v| v.as_slice()).collect();
                    let k1r: Vec<&[u64]> = k1.iter().map(|v| v.as_slice()).collect();
                    let (mut o0, mut o1) = (a0.clone(), a1.clone());
                    // SAFETY: the CPU has avx2 and fma; every slice has length n.
                    unsafe { dot_acc_fp([&mut o0, &mut o1], &xr, [&k0r, &k1r], p) };
                    let mut o2 = a0.clone();
                    // SAFETY: as above.
                    unsafe { dot_acc_fp([&mut o2], &xr, [&k0r], p) };
                    for k in 0..n {
                        let pw = p as u128;
                        let want = |a: u64, ks: &[&[u64]]| {
                            (0..terms).fold(a as u128, |s, j| {
                                (s + xr[j][k] as u128 * ks[j][k] as u128) % pw
                            }) as u64
                        };
                        assert_eq!(o0[k], want(a0[k], &k0r), "p={p} terms={terms} k={k}");
                        assert_eq!(o1[k], want(a1[k], &k1r), "p={p} terms={terms} k={k}");
                        assert_eq!(o2[k], o0[k]);
                    }
                }
            }
        }
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(256))]

        /// Random moduli between 2^50 and 2^51 (prime or not), inputs
        /// below a random bound on either side of the split at 2^51.
        #[test]
        fn fp_lincomb_wide_moduli(
            t in (1u64 << 50)..(1u64 << 51),
            y_shift in 0u32..14,
            terms in 1usize..20,
            seed in proptest::prelude::any::<u64>(),
        ) {
            if !cpu_has_avx2_fma() {
                return Ok(());
            }
            let mut rng = ChaCha8Rng::seed_from_u64(seed);
            // 2^s - 1, 2^s or 2^s + 1 for s in 51..=63, or the largest u64.
            let y_bound = if y_shift == 13 {
                u64::MAX
            } else {
                ((1u64 << (51 + y_shift)) - 1) + rng.gen_range(0..3u64)
            };
            let n = 9;
            let ys: Vec<Vec<u64>> = (0..terms).map(|_| values(&mut rng, n, y_bound)).collect();
            let cs = constants(&mut rng, terms, t);
            let refs: Vec<&[u64]> = ys.iter().map(|v| v.as_slice()).collect();
            let mut out = vec![u64::MAX; n];
            // SAFETY: the CPU has avx2 and fma; every slice has length n.
            unsafe { lincomb_fp(&mut out, &refs, y_bound, &cs, t) };
            for (k, &o) in out.iter().enumerate() {
                proptest::prop_assert_eq!(o, lincomb_scalar(&refs, &cs, t, k));
            }
        }

        #[test]
        fn fp_dot_acc_wide_moduli(
            p in (1u64 << 50)..(1u64 << 51),
            terms in 0usize..20,
            seed in proptest::prelude::any::<u64>(),
        ) {
            if !cpu_has_avx2_fma() {
                return Ok(());
            }
            let mut rng = ChaCha8Rng::seed_from_u64(seed);
            let n = 9;
            let xs: Vec<Vec<u64>> = (0..terms).map(|_| values(&mut rng, n, p)).collect();
            let ks: Vec<Vec<u64>> = (0..terms).map(|_| values(&mut rng, n, p)).collect();
            let a = values(&mut rng, n, p);
            let xr: Vec<&[u64]> = xs.iter().map(|v| v.as_slice()).collect();
            let kr: Vec<&[u64]> = ks.iter().map(|v| v.as_slice()).collect();
            let mut o = a.clone();
            // SAFETY: the CPU has avx2 and fma; every slice has length n.
            unsafe { dot_acc_fp([&mut o], &xr, [&kr], p) };
            for k in 0..n {
                let want = (0..terms).fold(a[k] as u128, |s, j| {
                    (s + xr[j][k] as u128 * kr[j][k] as u128) % p as u128
                }) as u64;
                proptest::prop_assert_eq!(o[k], want);
            }
        }
    }

    #[test]
    fn kernel_path_names_a_path() {
        assert!(["avx512-ifma", "avx2", "portable"].contains(&kernel_path()));
    }

    #[test]
    fn matches_scalar() {
        let ps = ntt_primes(&[50, 50, 50, 49], 1 << 12, &[]);
        let t = ps[3];
        let m = Modulus::new(t);
        let n = 64;
        let ys: Vec<Vec<u64>> = (0..3)
            .map(|i| {
                (0..n as u64)
                    .map(|k| k.wrapping_mul(0x9E3779B97F4A7C15).wrapping_add(i) % ps[i as usize])
                    .collect()
            })
            .collect();
        let cs = [t - 1, 12345, t / 3];
        let refs: Vec<&[u64]> = ys.iter().map(|v| v.as_slice()).collect();
        let mut out = vec![0u64; n];
        if !lincomb_mod(&mut out, &refs, 1 << 51, &cs, t) {
            return; // no IFMA on this CPU: nothing to compare
        }
        for k in 0..n {
            let want = (0..3).fold(0u64, |a, i| m.add(a, m.mul(m.reduce(ys[i][k]), cs[i])));
            assert_eq!(out[k], want, "k={k}");
        }
    }
}
