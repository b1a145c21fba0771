//! The decoding matrix V (slot j = sum_k w_k xi^{k 5^j}) factored into
//! log2(n) butterfly stages, each with three nonzero diagonals, so that
//! CoeffsToSlots (V^{-1}) and SlotsToCoeffs (V) become a few sparse-diagonal
//! homomorphic linear transforms.
//!
//! V = S_n ... S_4 S_2 B, with B the bit-reversal permutation. Bootstrapping
//! never applies B: CoeffsToSlots leaves the coefficients in bit-reversed
//! slot order, EvalMod acts slot-wise, and SlotsToCoeffs expects that order.

use crate::linear::LinearTransform;
use rustfft::num_complex::Complex64;

fn rot_group(n: usize) -> Vec<usize> {
    let m = 4 * n;
    let mut g = 1usize;
    (0..n)
        .map(|_| {
            let r = g;
            g = g * 5 % m;
            r
        })
        .collect()
}

fn root(m: usize, k: usize) -> Complex64 {
    Complex64::from_polar(1.0, 2.0 * std::f64::consts::PI * k as f64 / m as f64)
}

/// Bit-reversal permutation of a power-of-two-length vector.
pub fn bit_reverse<T: Copy>(v: &mut [T]) {
    let n = v.len();
    let bits = n.trailing_zeros();
    if bits == 0 {
        return;
    }
    for i in 0..n {
        let j = i.reverse_bits() >> (usize::BITS - bits);
        if i < j {
            v.swap(i, j);
        }
    }
}

/// The butterfly stage of half-length `lenh` (1, 2, 4, ... n/2) as a linear map.
pub fn stage(n: usize, lenh: usize, inverse: bool) -> LinearTransform {
    let len = 2 * lenh;
    let lenq = 4 * len;
    let m = 4 * n;
    let g = rot_group(n);
    let zero = Complex64::new(0.0, 0.0);
    let mut d0 = vec![zero; n];
    let mut dp = vec![zero; n]; // offset +lenh
    let mut dm = vec![zero; n]; // offset -lenh
    for i in (0..n).step_by(len) {
        for (j, &gj) in g.iter().enumerate().take(lenh) {
            let z = root(m, (gj % lenq) * (m / lenq));
            let (a, b) = (i + j, i + j + lenh);
            if !inverse {
                // out[a] = in[a] + z in[b]; out[b] = in[a] - z in[b]
                d0[a] = Complex64::new(1.0, 0.0);
                dp[a] = z;
                d0[b] = -z;
                dm[b] = Complex64::new(1.0, 0.0);
            } else {
                // u = (x[a] + x[b]) / 2; v = (x[a] - x[b]) / (2z)
                d0[a] = Complex64::new(0.5, 0.0);
                dp[a] = Complex64::new(0.5, 0.0);
                d0[b] = -0.5 / z;
                dm[b] = 0.5 / z;
            }
        }
    }
    let mut t = LinearTransform {
        slots: n,
        diags: Default::default(),
    };
    t.add_diagonal(0, d0);
    t.add_diagonal(lenh as i64, dp);
    t.add_diagonal(-(lenh as i64), dm);
    t
}

/// Splits `count` items into `groups` nearly equal consecutive runs, the
/// longer runs first.
pub fn split(count: usize, groups: usize) -> Vec<usize> {
    let groups = groups.clamp(1, count.max(1));
    (0..groups)
        .map(|i| count / groups + usize::from(i < count % groups))
        .collect()
}

/// Half-lengths of V's butterfly stages in application order: 1, 2, ..., n/2.
pub fn s2c_half_lengths(n: usize) -> Vec<usize> {
    (0..n.trailing_zeros()).map(|k| 1usize << k).collect()
}

/// Half-lengths of V^{-1}'s butterfly stages in application order: n/2, ..., 1.
pub fn c2s_half_lengths(n: usize) -> Vec<usize> {
    let mut v = s2c_half_lengths(n);
    v.reverse();
    v
}

/// The diagonal offsets (in `[0, n)`) of the stages of half-lengths `lenhs`
/// merged into one map: sums of 0 or +-lenh per stage, modulo n. Known
/// from the structure alone (no values are computed); a diagonal whose
/// values cancel exactly would be dropped by [`LinearTransform::compose`].
pub fn merged_offsets(n: usize, lenhs: &[usize]) -> Vec<usize> {
    let mut set = std::collections::BTreeSet::from([0usize]);
    for &h in lenhs {
        let h = h % n;
        set = set
            .iter()
            .flat_map(|&o| [o, (o + h) % n, (o + n - h) % n])
            .collect();
    }
    set.into_iter().collect()
}

/// Merges consecutive butterfly stages (half-lengths `lenhs`, in application
/// order) into maps of `sizes` stages each; the first is multiplied by
/// `factor`.
///
/// Panics unless `sizes` add up to the number of stages.
fn grouped(
    n: usize,
    lenhs: Vec<usize>,
    inverse: bool,
    sizes: &[usize],
    factor: Complex64,
) -> Vec<LinearTransform> {
    assert!(
        sizes.iter().sum::<usize>() == lenhs.len(),
        "{sizes:?} does not split {} stages",
        lenhs.len()
    );
    let mut out = Vec::new();
    let mut it = lenhs.into_iter();
    for &size in sizes {
        let mut t = LinearTransform::scalar(n, Complex64::new(1.0, 0.0));
        for lenh in it.by_ref().take(size) {
            t = stage(n, lenh, inverse).compose(&t);
        }
        out.push(t);
    }
    out[0].scale(factor);
    out
}

/// V without the bit reversal, as `levels` merged transforms in application
/// order, the first multiplied by `factor`: nearly equal groups, the
/// shorter ones first (the last map holds the half-length n/2 stage, whose
/// offsets +n/2 and -n/2 coincide, so a stage more costs it least; Lattigo
/// orders its decoding merges the same way). Bootstrapping picks its
/// groups by cost ([`slots_to_coeffs_grouped`]).
pub fn slots_to_coeffs(n: usize, levels: usize, factor: Complex64) -> Vec<LinearTransform> {
    let mut sizes = split(n.trailing_zeros() as usize, levels);
    sizes.reverse();
    slots_to_coeffs_grouped(n, &sizes, factor)
}

/// V without the bit reversal as merged transforms of `sizes` stages each
/// (in application order, from half-length 1 up), the first multiplied by
/// `factor`. Panics unless `sizes` add up to log2(n).
pub fn slots_to_coeffs_grouped(
    n: usize,
    sizes: &[usize],
    factor: Complex64,
) -> Vec<LinearTransform> {
    grouped(n, s2c_half_lengths(n), false, sizes, factor)
}

/// V^{-1} without the bit reversal, as `levels` merged transforms in
/// application order, the first multiplied by `factor`: nearly equal
/// groups, the longer ones first (the first map holds the half-length n/2
/// stage).
pub fn coeffs_to_slots(n: usize, levels: usize, factor: Complex64) -> Vec<LinearTransform> {
    let sizes = split(n.trailing_zeros() as usize, levels);
    coeffs_to_slots_grouped(n, &sizes, factor)
}

/// V^{-1} without the bit reversal as merged transforms of `sizes` stages
/// each (in application order, from half-length n/2 down), the first
/// multiplied by `factor`. Panics unless `sizes` add up to log2(n).
pub fn coeffs_to_slots_grouped(
    n: usize,
    sizes: &[usize],
    factor: Complex64,
) -> Vec<LinearTransform> {
    grouped(n, c2s_half_lengths(n), true, sizes, factor)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decode_direct(w: &[Complex64]) -> Vec<Complex64> {
        let n = w.len();
        let m = 4 * n;
        rot_group(n)
            .iter()
            .map(|&g| {
                w.iter()
                    .enumerate()
                    .map(|(k, wk)| wk * root(m, k * g % m))
                    .sum()
            })
            .collect()
    }

    /// The structural offsets are those of the merged maps.
    #[test]
    fn merged_offsets_match_the_maps() {
        let n = 64;
        for sizes in [[2usize, 4], [3, 3], [5, 1], [1, 5]] {
            let one = Complex64::new(1.0, 0.0);
            let s2c = slots_to_coeffs_grouped(n, &sizes, one);
            let c2s = coeffs_to_slots_grouped(n, &sizes, one);
            let h = s2c_half_lengths(n);
            let (lo, hi) = h.split_at(sizes[0]);
            assert_eq!(
                s2c[0].diags.keys().copied().collect::<Vec<_>>(),
                merged_offsets(n, lo)
            );
            assert_eq!(
                s2c[1].diags.keys().copied().collect::<Vec<_>>(),
                merged_offsets(n, hi)
            );
            let h = c2s_half_lengths(n);
            let (lo, hi) = h.split_at(sizes[0]);
            assert_eq!(
                c2s[0].diags.keys().copied().collect::<Vec<_>>(),
                merged_offsets(n, lo)
            );
            assert_eq!(
                c2s[1].diags.keys().copied().collect::<Vec<_>>(),
                merged_offsets(n, hi)
            );
        }
    }

    #[test]
    fn stages_factor_the_decoding_matrix() {
        for n in [4usize, 16, 64] {
            let w: Vec<Complex64> = (0..n)
                .map(|i| Complex64::new((i as f64 * 0.7).sin(), (i as f64 * 0.3).cos()))
                .collect();
            let want = decode_direct(&w);
            let mut br = w.clone();
            bit_reverse(&mut br);
            for levels in [1usize, 2, 3] {
                let mut x = br.clone();
                for t in slots_to_coeffs(n, levels, Complex64::new(1.0, 0.0)) {
                    x = t.apply_plain(&x);
                }
                let err = x
                    .iter()
                    .zip(&want)
                    .map(|(a, b)| (a - b).norm())
                    .fold(0.0, f64::max);
                assert!(err < 1e-9, "n={n} levels={levels} err={err}");
                let mut y = want.clone();
                for t in coeffs_to_slots(n, levels, Complex64::new(1.0, 0.0)) {
                    y = t.apply_plain(&y);
                }
                let err = y
                    .iter()
                    .zip(&br)
                    .map(|(a, b)| (a - b).norm())
                    .fold(0.0, f64::max);
                assert!(err < 1e-9, "inverse n={n} levels={levels} err={err}");
            }
        }
    }
}
