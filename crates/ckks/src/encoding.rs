//! The canonical embedding: complex slot vectors <-> plaintext polynomials.
//!
//! With n slots (a power of two, at most N/2) the message lives in the subring
//! `Z[Y]/(Y^{2n}+1)`, `Y = X^{N/2n}`. Slot j is the evaluation at xi^{5^j} with xi
//! a primitive 4n-th root of unity. Writing w_k = c_k + i*c_{k+n}, slot j equals
//! sum_k w_k xi^{k*5^j}, which is a length-n DFT after twisting w_k by xi^k and
//! reading the output at index (5^j - 1)/4; its inverse is the conjugate map / n.

use crate::error::{CkksError, Result};
use crate::params::Params;
use crate::ring::Poly;
use rayon::prelude::*;
use rustfft::num_complex::Complex64;
use rustfft::{Fft, FftPlanner};
use std::collections::BTreeMap;
use std::sync::{Arc, RwLock};

/// A plaintext: an RNS polynomial (NTT form) with its level, scale and slot count.
///
/// The metadata is read-only outside this crate, as for
/// [`Ciphertext`](crate::Ciphertext): read it with [`Plaintext::level`],
/// [`Plaintext::scale`] and [`Plaintext::slots`].
///
/// ```
/// let params = ckks::Params::named("insecure-n10").unwrap();
/// let pt = ckks::Encoder::new(params.clone())
///     .encode_real(&[1.0], 1, params.default_scale(), 4)
///     .unwrap();
/// assert_eq!((pt.level(), pt.scale(), pt.slots()), (1, params.default_scale(), 4));
/// ```
///
/// ```compile_fail,E0616
/// # let params = ckks::Params::named("insecure-n10").unwrap();
/// let mut pt = ckks::Encoder::new(params.clone())
///     .encode_real(&[1.0], 1, params.default_scale(), 4)
///     .unwrap();
/// pt.level = 0; // error[E0616]: field `level` of struct `Plaintext` is private
/// ```
#[derive(Clone, Debug)]
pub struct Plaintext {
    pub(crate) poly: Poly,
    /// Level (limbs q_0..q_level present).
    pub(crate) level: usize,
    /// Scale the message was multiplied by.
    pub(crate) scale: f64,
    /// Number of complex slots encoded.
    pub(crate) slots: usize,
    /// [`Params::id`] of the set the plaintext belongs to.
    pub(crate) params_id: u64,
}

impl Plaintext {
    /// Level: the plaintext lives modulo q_0 * ... * q_level (`level + 1`
    /// RNS limbs).
    pub fn level(&self) -> usize {
        self.level
    }

    /// Scale Δ the message was multiplied by before rounding (a plain
    /// factor, not log2).
    pub fn scale(&self) -> f64 {
        self.scale
    }

    /// Number of complex slots encoded (a power of two, at most N/2).
    pub fn slots(&self) -> usize {
        self.slots
    }

    /// Fails unless the metadata agrees with the polynomial for
    /// `params` (see [`Ciphertext::check_shape`](crate::Ciphertext)).
    pub(crate) fn check_shape(&self, params: &Params) -> Result<()> {
        params.check_level(self.level)?;
        let n = params.n;
        if self.poly.n != n || self.poly.data.len() != n * (self.level + 1) {
            return Err(CkksError::Malformed(format!(
                "plaintext at level {} does not hold {} limbs of degree {n}",
                self.level,
                self.level + 1
            )));
        }
        crate::ciphertext::check_slots(params, self.slots)
    }

    /// [`Params::id`] of the parameter set this plaintext belongs to.
    pub fn params_id(&self) -> u64 {
        self.params_id
    }
}

/// Index permutation of the special FFT for n slots: position of slot j in the DFT output.
fn slot_positions(n: usize) -> Vec<usize> {
    let m = 4 * n;
    let mut g = 1usize;
    (0..n)
        .map(|_| {
            let t = (g - 1) / 4;
            g = g * 5 % m;
            t
        })
        .collect()
}

/// What the special FFT of one slot count needs, computed once per encoder:
/// the slot permutation, rustfft's plans (their twiddles) and the twist
/// `xi^-k / n` (computing these per call cost more than the FFT itself at
/// 2^15 slots).
struct SlotTables {
    pos: Vec<usize>,
    forward: Arc<dyn Fft<f64>>,
    inverse: Arc<dyn Fft<f64>>,
    /// `xi^-k / n`, k < n; decoding twists by `conj * n` (= `xi^k`).
    twist: Vec<Complex64>,
}

impl SlotTables {
    fn new(n: usize) -> Self {
        let mut planner = FftPlanner::new();
        Self {
            pos: slot_positions(n),
            forward: planner.plan_fft_forward(n),
            inverse: planner.plan_fft_inverse(n),
            twist: (0..n)
                .map(|k| {
                    let ang = -std::f64::consts::PI * k as f64 / (2 * n) as f64;
                    Complex64::from_polar(1.0 / n as f64, ang)
                })
                .collect(),
        }
    }
}

/// Encodes and decodes slot vectors for one parameter set.
pub struct Encoder {
    params: Arc<Params>,
    /// Per slot count (a valid one: at most log2(N/2) + 1 entries).
    tables: RwLock<BTreeMap<usize, Arc<SlotTables>>>,
}

/// `out` (N coefficients) = the NTT form modulo ring prime `mi` of the
/// integer polynomial whose coefficient `k * stride` is `compact[k]` (all
/// others zero; see [`compact`]): one limb of an encoded plaintext.
pub(crate) fn ntt_of_ints(
    ring: &crate::ring::Ring,
    mi: usize,
    compact: &[i64],
    stride: usize,
    out: &mut [u64],
) {
    let m = ring.moduli[mi];
    ring.ntt_strided(
        mi,
        stride,
        |k| compact.get(k).map_or(0, |&c| m.from_i64(c)),
        out,
    );
}

/// The coarsest stride (a power of two, at most len / 32) at which the
/// nonzero entries of `c` sit: a vector of n slots encodes to a
/// polynomial in X^(N/2n), so a sparse-slot plaintext's NTT is a smaller
/// one ([`crate::ring::Ring::ntt_strided`]).
pub(crate) fn stride_of<T: PartialEq + Default>(c: &[T]) -> usize {
    let zero = T::default();
    let mask = c
        .iter()
        .enumerate()
        .filter(|(_, x)| **x != zero)
        .fold(0usize, |m, (i, _)| m | i);
    let cap = (c.len() / 32).max(1);
    if mask == 0 {
        cap
    } else {
        (1usize << mask.trailing_zeros()).min(cap)
    }
}

/// `c` (N coefficients) as (its entries at multiples of the stride, the
/// stride) ([`stride_of`]).
pub(crate) fn compact<T: PartialEq + Default + Copy>(c: &[T]) -> (Vec<T>, usize) {
    let s = stride_of(c);
    (c.iter().step_by(s).copied().collect(), s)
}

impl Encoder {
    /// An encoder for `params`.
    pub fn new(params: Arc<Params>) -> Self {
        Self {
            params,
            tables: RwLock::new(BTreeMap::new()),
        }
    }

    /// The FFT tables of `slots` slots (already checked), made on first use.
    fn tables(&self, slots: usize) -> Arc<SlotTables> {
        if let Some(t) = self.tables.read().ok().and_then(|m| m.get(&slots).cloned()) {
            return t;
        }
        let t = Arc::new(SlotTables::new(slots));
        if let Ok(mut m) = self.tables.write() {
            m.entry(slots).or_insert_with(|| t.clone());
        }
        t
    }

    /// The parameter set.
    pub fn params(&self) -> &Arc<Params> {
        &self.params
    }

    /// Checks a slot count.
    pub fn check_slots(&self, slots: usize) -> Result<()> {
        if slots == 0 || !slots.is_power_of_two() || slots > self.params.max_slots() {
            return Err(CkksError::InvalidSlots(slots));
        }
        Ok(())
    }

    /// Slot values -> real coefficients of the degree-N polynomial (unscaled).
    pub fn slots_to_coeffs(&self, values: &[Complex64], slots: usize) -> Result<Vec<f64>> {
        self.check_slots(slots)?;
        if values.len() > slots {
            return Err(CkksError::TooManyValues {
                values: values.len(),
                slots,
            });
        }
        let n = slots;
        let t = self.tables(n);
        let mut u = vec![Complex64::new(0.0, 0.0); n];
        for (j, v) in values.iter().enumerate() {
            if !v.re.is_finite() || !v.im.is_finite() {
                return Err(CkksError::Encoding("non-finite value".into()));
            }
            u[t.pos[j]] = *v;
        }
        // w_k = (1/n) xi^{-k} sum_t u_t omega^{-kt}
        t.forward.process(&mut u);
        let big_n = self.params.n;
        let gap = big_n / (2 * n);
        let mut coeffs = vec![0.0; big_n];
        for (k, (w, tw)) in u.iter().zip(&t.twist).enumerate() {
            let w = w * tw;
            coeffs[k * gap] = w.re;
            coeffs[(k + n) * gap] = w.im;
        }
        Ok(coeffs)
    }

    /// Real coefficients of the degree-N polynomial -> slot values.
    ///
    /// Fails on an invalid slot count or fewer than N coefficients.
    pub fn coeffs_to_slots(&self, coeffs: &[f64], slots: usize) -> Result<Vec<Complex64>> {
        self.check_slots(slots)?;
        if coeffs.len() < self.params.n {
            return Err(CkksError::Encoding(format!(
                "{} coefficients, the ring has degree {}",
                coeffs.len(),
                self.params.n
            )));
        }
        let n = slots;
        let t = self.tables(n);
        let gap = self.params.n / (2 * n);
        let nf = n as f64;
        let mut w: Vec<Complex64> = t
            .twist
            .iter()
            .enumerate()
            .map(|(k, tw)| {
                Complex64::new(coeffs[k * gap], coeffs[(k + n) * gap]) * (tw.conj() * nf)
            })
            .collect();
        t.inverse.process(&mut w);
        Ok(t.pos.iter().map(|&p| w[p]).collect())
    }

    /// Encodes complex values at `level` and `scale` into `slots` slots.
    pub fn encode(
        &self,
        values: &[Complex64],
        level: usize,
        scale: f64,
        slots: usize,
    ) -> Result<Plaintext> {
        let coeffs = self.slots_to_coeffs(values, slots)?;
        self.encode_coeffs(&coeffs, level, scale, slots)
    }

    /// [`Self::encode`], plus the same integer polynomial's residues for the
    /// P primes (NTT form, one limb per P prime): a plaintext that can
    /// multiply ciphertext parts kept in the extended basis Q_l*P (double
    /// hoisting in [`crate::linear`]).
    pub(crate) fn encode_ext(
        &self,
        values: &[Complex64],
        level: usize,
        scale: f64,
        slots: usize,
    ) -> Result<(Plaintext, Poly)> {
        let coeffs = self.slots_to_coeffs(values, slots)?;
        let pt = self.encode_coeffs(&coeffs, level, scale, slots)?;
        let p = &self.params;
        let n = p.n;
        let pidx = p.p_idx();
        let (sparse, stride) = compact(&coeffs);
        let mut ext = Poly::zero(n, pidx.len());
        ext.data
            .par_chunks_mut(n)
            .zip(pidx.par_iter())
            .for_each(|(limb, &mi)| {
                let m = p.ring.moduli[mi];
                p.ring
                    .ntt_strided(mi, stride, |k| m.from_f64(sparse[k] * scale), limb);
            });
        Ok((pt, ext))
    }

    /// Encodes real values (imaginary parts zero).
    pub fn encode_real(
        &self,
        values: &[f64],
        level: usize,
        scale: f64,
        slots: usize,
    ) -> Result<Plaintext> {
        let v: Vec<Complex64> = values.iter().map(|&x| Complex64::new(x, 0.0)).collect();
        self.encode(&v, level, scale, slots)
    }

    /// Scales and rounds real polynomial coefficients into a plaintext.
    pub fn encode_coeffs(
        &self,
        coeffs: &[f64],
        level: usize,
        scale: f64,
        slots: usize,
    ) -> Result<Plaintext> {
        let p = &self.params;
        let ints = self
            .rounded(coeffs, level, scale, slots)?
            .map(|i| compact(&i));
        let n = p.n;
        let mut poly = Poly::zero(n, level + 1);
        poly.data
            .par_chunks_mut(n)
            .enumerate()
            .for_each(|(i, limb)| {
                let m = p.ring.moduli[i];
                match &ints {
                    Some((ints, stride)) => ntt_of_ints(&p.ring, i, ints, *stride, limb),
                    None => {
                        limb.iter_mut()
                            .zip(coeffs)
                            .for_each(|(o, &c)| *o = m.from_f64(c * scale));
                        p.ring.ntt(i, limb);
                    }
                }
            });
        Ok(Plaintext {
            poly,
            level,
            scale,
            slots,
            params_id: p.id,
        })
    }

    /// Checks `coeffs` for [`Self::encode_coeffs`] at `level` and `scale`
    /// and rounds them once for all limbs (rounding is a libm call per
    /// coefficient on a baseline x86-64 build): `None` for magnitudes from
    /// 2^62, which take the exact wide path of `Modulus::from_f64` per limb.
    fn rounded(
        &self,
        coeffs: &[f64],
        level: usize,
        scale: f64,
        slots: usize,
    ) -> Result<Option<Vec<i64>>> {
        let p = &self.params;
        if level > p.max_level() {
            return Err(CkksError::LevelAboveMax {
                level,
                max: p.max_level(),
            });
        }
        self.check_slots(slots)?;
        if !(scale.is_finite() && scale >= 1.0) {
            return Err(CkksError::Encoding(format!("bad scale {scale}")));
        }
        if coeffs.len() > p.n {
            return Err(CkksError::Encoding(format!(
                "{} coefficients for a ring of degree {}",
                coeffs.len(),
                p.n
            )));
        }
        if let Some(i) = coeffs.iter().position(|c| !c.is_finite()) {
            return Err(CkksError::Encoding(format!(
                "coefficient {i} is not finite"
            )));
        }
        let log_q = p.log_q_at(level);
        let max = coeffs.iter().fold(0.0f64, |m, c| m.max(c.abs())) * scale;
        if !max.is_finite() || max.log2() >= log_q - 1.0 {
            return Err(CkksError::Encoding(format!(
                "scaled coefficients reach 2^{:.1}, beyond the modulus 2^{log_q:.1} at level {level}",
                max.log2()
            )));
        }
        Ok((max < 4.0e18).then(|| coeffs.iter().map(|&c| (c * scale).round() as i64).collect()))
    }

    /// The integer polynomial [`Self::encode`] would reduce into limbs:
    /// `round(scale * coefficient)`, `None` where a magnitude reaches 2^62.
    /// Same errors as [`Self::encode`].
    pub(crate) fn integer_coeffs(
        &self,
        values: &[Complex64],
        level: usize,
        scale: f64,
        slots: usize,
    ) -> Result<Option<Vec<i64>>> {
        let coeffs = self.slots_to_coeffs(values, slots)?;
        self.rounded(&coeffs, level, scale, slots)
    }

    /// Decodes a plaintext into its slot values (divided by its scale).
    ///
    /// A plaintext of another parameter set, or with a slot count this set
    /// cannot have, decodes to an empty vector (see [`Self::try_decode`]).
    pub fn decode(&self, pt: &Plaintext) -> Vec<Complex64> {
        self.try_decode(pt).unwrap_or_default()
    }

    /// Decodes a plaintext, refusing one of another parameter set
    /// ([`CkksError::ParamsMismatch`]) or with an invalid slot count.
    pub fn try_decode(&self, pt: &Plaintext) -> Result<Vec<Complex64>> {
        if pt.params_id != self.params.id {
            return Err(CkksError::ParamsMismatch);
        }
        let coeffs = self.decode_coeffs(pt)?;
        self.coeffs_to_slots(&coeffs, pt.slots)
    }

    /// Decodes a plaintext into its real polynomial coefficients (divided by
    /// its scale), refusing one of another parameter set
    /// ([`CkksError::ParamsMismatch`]) or at a level the set does not have.
    pub fn decode_coeffs(&self, pt: &Plaintext) -> Result<Vec<f64>> {
        let p = &self.params;
        if pt.params_id != p.id {
            return Err(CkksError::ParamsMismatch);
        }
        pt.check_shape(p)?;
        let mut poly = pt.poly.clone();
        let idx = p.q_idx(pt.level);
        p.ring.intt_poly(&mut poly, &idx);
        Ok(crate::crt::centered_to_f64(p, &poly, pt.level)
            .into_iter()
            .map(|c| c / pt.scale)
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn special_fft_matches_direct_evaluation() {
        let params = Params::named("insecure-n10").unwrap();
        let enc = Encoder::new(params.clone());
        for slots in [4usize, 64, 512] {
            let vals: Vec<Complex64> = (0..slots)
                .map(|i| Complex64::new((i as f64 * 0.37).sin(), (i as f64 * 0.11).cos()))
                .collect();
            let c = enc.slots_to_coeffs(&vals, slots).unwrap();
            // direct evaluation of the degree-N polynomial at zeta^{5^j}
            let big_n = params.n;
            let mut g = 1u64;
            for (j, v) in vals.iter().enumerate() {
                let mut s = Complex64::new(0.0, 0.0);
                for (k, &ck) in c.iter().enumerate() {
                    let ang = std::f64::consts::PI * (k as u64 * g % (2 * big_n as u64)) as f64
                        / big_n as f64;
                    s += Complex64::from_polar(ck, ang);
                }
                assert!((s - v).norm() < 1e-9, "slot {j}: {s} vs {v}");
                g = g * 5 % (2 * big_n as u64);
            }
            let back = enc.coeffs_to_slots(&c, slots).unwrap();
            for (a, b) in back.iter().zip(&vals) {
                assert!((a - b).norm() < 1e-12);
            }
        }
    }
}
