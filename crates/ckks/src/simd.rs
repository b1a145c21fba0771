//! AVX-512 IFMA kernel for exact basis conversion (measured: the conversion
//! dominates ModUp at N=2^15 with two-prime digits).
//!
//! The kernel can be switched off, so that the portable path is measured and
//! tested on an IFMA host too: set `RESIDUE_NO_AVX512=1` in the environment
//! (read once, at the first use) or call [`disable_avx512`].

use std::sync::OnceLock;
use std::sync::atomic::{AtomicBool, Ordering};

static DISABLED: AtomicBool = AtomicBool::new(false);

/// Turns the AVX-512 kernels off for the rest of the process (the portable
/// path gives the same results, exactly).
pub fn disable_avx512() {
    DISABLED.store(true, Ordering::Relaxed);
}

/// Whether the AVX-512 IFMA kernels run: the CPU has avx512f and avx512ifma,
/// `RESIDUE_NO_AVX512` is unset (or empty or `0`), and [`disable_avx512`]
/// was not called.
pub fn avx512_enabled() -> bool {
    static DETECTED: OnceLock<bool> = OnceLock::new();
    let on = *DETECTED.get_or_init(|| {
        let env_off = std::env::var("RESIDUE_NO_AVX512")
            .map(|v| !v.is_empty() && v != "0")
            .unwrap_or(false);
        !env_off && cpu_has_ifma()
    });
    on && !DISABLED.load(Ordering::Relaxed)
}

/// The kernel path in use, for benchmark records: `"avx512-ifma"` or
/// `"portable"` (tfhe-ntt picks its own NTT kernels from the CPU).
pub fn kernel_path() -> &'static str {
    if avx512_enabled() {
        "avx512-ifma"
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

/// out[k] = (sum_i ys[i][k] * c_i) mod t for t < 2^51 and every ys[i][k] < `y_bound` <= 2^52.
///
/// Each term is a 52-bit Shoup multiplication (result in [0, 2t)); the sum of
/// at most 7 such terms stays below 2^53 before the final reduction.
/// Returns false (and writes nothing) when the CPU lacks AVX-512 IFMA or the
/// bounds do not hold, so the caller uses the portable path.
pub(crate) fn lincomb_mod(
    out: &mut [u64],
    ys: &[&[u64]],
    y_bound: u64,
    cs: &[u64],
    t: u64,
) -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        if t < (1 << 51)
            && y_bound <= (1 << 52)
            && !ys.is_empty()
            && ys.len() <= 7
            && out.len().is_multiple_of(8)
            && ys.iter().all(|y| y.len() == out.len())
            && avx512_enabled()
        {
            let shoup: Vec<u64> = cs
                .iter()
                .map(|&c| (((c as u128) << 52) / t as u128) as u64)
                .collect();
            // SAFETY: the CPU supports avx512f and avx512ifma (checked by
            // `avx512_enabled`, which requires `cpu_has_ifma`);
            // every slice has the length of `out`, a multiple of 8, so all
            // unaligned 8-lane loads and stores stay in bounds.
            unsafe { lincomb_ifma(out, ys, cs, &shoup, t) };
            return true;
        }
    }
    let _ = (out, ys, y_bound, cs, t);
    false
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx512ifma")]
unsafe fn lincomb_ifma(out: &mut [u64], ys: &[&[u64]], cs: &[u64], shoup: &[u64], t: u64) {
    use std::arch::x86_64::*;
    let mask52 = _mm512_set1_epi64(((1u64 << 52) - 1) as i64);
    let tv = _mm512_set1_epi64(t as i64);
    let zero = _mm512_setzero_si512();
    let cv: Vec<__m512i> = cs.iter().map(|&c| _mm512_set1_epi64(c as i64)).collect();
    let sv: Vec<__m512i> = shoup.iter().map(|&c| _mm512_set1_epi64(c as i64)).collect();
    for k in (0..out.len()).step_by(8) {
        let mut acc = zero;
        for (i, y) in ys.iter().enumerate() {
            // SAFETY: k + 8 <= len for every slice (checked by the caller).
            let yv = unsafe { _mm512_loadu_si512(y.as_ptr().add(k) as *const _) };
            let qhat = _mm512_madd52hi_epu64(zero, yv, sv[i]);
            let lo1 = _mm512_madd52lo_epu64(zero, yv, cv[i]);
            let lo2 = _mm512_madd52lo_epu64(zero, qhat, tv);
            let r = _mm512_and_si512(_mm512_sub_epi64(lo1, lo2), mask52);
            acc = _mm512_add_epi64(acc, r);
        }
        // acc < 2 t * terms < 8 * 2^51: subtract t up to 15 times would be too
        // many; reduce by 8t, 4t, 2t, t (each: min(x, x - m) in unsigned).
        for m in [8u64, 4, 2, 1] {
            let mv = _mm512_set1_epi64((m * t) as i64);
            acc = _mm512_min_epu64(acc, _mm512_sub_epi64(acc, mv));
        }
        // SAFETY: as above.
        unsafe { _mm512_storeu_si512(out.as_mut_ptr().add(k) as *mut _, acc) };
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::modarith::{Modulus, ntt_primes};

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
