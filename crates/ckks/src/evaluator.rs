//! Homomorphic operations on ciphertexts, level- and scale-checked.

use crate::ciphertext::Ciphertext;
use crate::encoding::Plaintext;
use crate::error::{CkksError, Result};
use crate::keys::{GaloisKeys, RelinKey, conjugation_element, rotation_element};
use crate::keyswitch::{self, Decomposed};
use crate::params::Params;
use crate::profile::{self, Kernel};
use crate::ring::Poly;
use rayon::prelude::*;
use std::sync::Arc;

/// Relative tolerance under which two scales count as equal for addition.
///
/// Scales are tracked exactly as f64; values computed along different paths
/// may differ in the last bits, far below CKKS noise.
pub const SCALE_TOLERANCE: f64 = 1e-9;

/// The server-side keys an evaluator may use.
#[derive(Clone, Default)]
pub struct EvaluationKeys {
    /// Relinearization key, needed by ciphertext multiplication.
    pub relin: Option<RelinKey>,
    /// Galois keys, needed by rotations and conjugation.
    pub galois: Option<GaloisKeys>,
}

/// Evaluates homomorphic operations for one parameter set and key set.
pub struct Evaluator {
    pub(crate) params: Arc<Params>,
    pub(crate) keys: Arc<EvaluationKeys>,
}

pub(crate) fn scales_match(a: f64, b: f64) -> bool {
    (a - b).abs() <= SCALE_TOLERANCE * a.abs().max(b.abs())
}

/// A rotation kept in the extended basis (see [`Evaluator::apply_galois_ext`]):
/// `a0`, `a1` over Q_l*P (NTT form, Q limbs then P limbs), `c0` over Q_l.
pub(crate) struct ExtRotation {
    pub(crate) a0: Poly,
    pub(crate) a1: Poly,
    pub(crate) c0: Poly,
}

impl Evaluator {
    /// An evaluator with the given keys.
    ///
    /// Fails with [`CkksError::ParamsMismatch`] if the relinearization or
    /// Galois keys belong to another parameter set than `params`.
    pub fn new(params: Arc<Params>, keys: Arc<EvaluationKeys>) -> Result<Self> {
        let relin = keys.relin.as_ref().map(|k| k.params.id);
        let galois = keys.galois.as_ref().map(|k| k.params.id);
        if relin.into_iter().chain(galois).any(|id| id != params.id) {
            return Err(CkksError::ParamsMismatch);
        }
        Ok(Self { params, keys })
    }

    /// The parameter set.
    pub fn params(&self) -> &Arc<Params> {
        &self.params
    }

    /// The evaluation keys.
    pub fn keys(&self) -> &Arc<EvaluationKeys> {
        &self.keys
    }

    /// The Galois keys, checked to be of this evaluator's set; `g` and
    /// `step` name what was asked for in the error when there are none.
    fn galois(&self, g: u64, step: Option<i64>) -> Result<&GaloisKeys> {
        let gk = self
            .keys
            .galois
            .as_ref()
            .ok_or(CkksError::MissingRotationKey {
                element: g,
                step,
                none_at_all: true,
            })?;
        if gk.params.id != self.params.id {
            return Err(CkksError::ParamsMismatch);
        }
        Ok(gk)
    }

    /// Fails unless `ct` belongs to this evaluator's parameter set and is
    /// well formed (at least one component, a level the set has).
    pub(crate) fn own(&self, ct: &Ciphertext) -> Result<()> {
        if ct.params_id != self.params.id {
            return Err(CkksError::ParamsMismatch);
        }
        if ct.c.is_empty() {
            return Err(CkksError::Degree(0, 1));
        }
        ct.check_shape(&self.params)
    }

    fn own_pt(&self, pt: &Plaintext) -> Result<()> {
        if pt.params_id != self.params.id {
            return Err(CkksError::ParamsMismatch);
        }
        pt.check_shape(&self.params)
    }

    /// Drops a ciphertext to a lower level (no rescale; scale unchanged).
    pub fn drop_level(&self, ct: &Ciphertext, level: usize) -> Result<Ciphertext> {
        self.own(ct)?;
        if level > ct.level {
            return Err(CkksError::NotEnoughLevels {
                needed: level,
                have: ct.level,
            });
        }
        // copy only the limbs kept (not the whole ciphertext, then truncate)
        Ok(Ciphertext {
            c: ct.c.iter().map(|c| c.prefix(level + 1)).collect(),
            level,
            scale: ct.scale,
            slots: ct.slots,
            params_id: ct.params_id,
        })
    }

    /// Brings a ciphertext to exactly (`level`, `scale`) so it can be added to
    /// another value there.
    ///
    /// Same level: only succeeds if the scale already matches. Higher level:
    /// drops to `level + 1`, multiplies by the integer round(scale * q / s) and
    /// rescales by q = q_{level+1}: the operand was going to lose those levels
    /// anyway, so the exact scale costs nothing extra. The recorded scale is
    /// `scale`; the true one differs by the integer rounding, below 2^-40
    /// relative for scales near the primes.
    pub fn adjust(&self, ct: &Ciphertext, level: usize, scale: f64) -> Result<Ciphertext> {
        self.own(ct)?;
        self.params.check_scale(scale, level, 1.0, "adjust")?;
        if ct.level < level {
            return Err(CkksError::NotEnoughLevels {
                needed: level,
                have: ct.level,
            });
        }
        if ct.level == level {
            if scales_match(ct.scale, scale) {
                let mut out = ct.clone();
                out.scale = scale;
                return Ok(out);
            }
            return Err(CkksError::ScaleMismatch(ct.scale, scale));
        }
        let x = self.drop_level(ct, level + 1)?;
        let q = self.params.q[level + 1] as f64;
        let k = (scale * q / x.scale).round();
        if k < 1.0 {
            return Err(CkksError::Domain(format!(
                "cannot lower scale {} to {scale} by one rescale",
                x.scale
            )));
        }
        let mut out = self.rescale(&self.mul_const_raw(&x, 1.0, k)?)?;
        out.scale = scale;
        Ok(out)
    }

    /// Adds two ciphertexts whose levels or scales differ, adjusting the
    /// higher-level one to the other's level and scale first (see [`Self::adjust`]).
    pub fn add_adjusted(&self, a: &Ciphertext, b: &Ciphertext) -> Result<Ciphertext> {
        if a.level >= b.level {
            self.add(&self.adjust(a, b.level, b.scale)?, b)
        } else {
            self.add(a, &self.adjust(b, a.level, a.scale)?)
        }
    }

    fn aligned(&self, a: &Ciphertext, b: &Ciphertext) -> Result<(Ciphertext, Ciphertext)> {
        let l = a.level.min(b.level);
        Ok((self.drop_level(a, l)?, self.drop_level(b, l)?))
    }

    fn combine(
        &self,
        a: &Ciphertext,
        b: &Ciphertext,
        f: impl Fn(&mut Poly, &Poly, &[usize]) + Sync,
    ) -> Result<Ciphertext> {
        self.own(a)?;
        self.own(b)?;
        if !scales_match(a.scale, b.scale) {
            return Err(CkksError::ScaleMismatch(a.scale, b.scale));
        }
        let (mut x, y) = self.aligned(a, b)?;
        let idx = self.params.q_idx(x.level);
        while x.c.len() < y.c.len() {
            x.c.push(Poly::zero(self.params.n, x.level + 1));
        }
        for (i, yc) in y.c.iter().enumerate() {
            f(&mut x.c[i], yc, &idx);
        }
        x.slots = x.slots.max(y.slots);
        Ok(x)
    }

    /// a + b (the higher operand is dropped to the lower level; scales must match).
    pub fn add(&self, a: &Ciphertext, b: &Ciphertext) -> Result<Ciphertext> {
        let r = &self.params.ring;
        self.combine(a, b, |x, y, idx| r.add_assign(x, y, idx))
    }

    /// a - b.
    pub fn sub(&self, a: &Ciphertext, b: &Ciphertext) -> Result<Ciphertext> {
        let r = &self.params.ring;
        self.combine(a, b, |x, y, idx| r.sub_assign(x, y, idx))
    }

    /// -a.
    pub fn neg(&self, a: &Ciphertext) -> Result<Ciphertext> {
        self.own(a)?;
        let mut out = a.clone();
        let idx = self.params.q_idx(a.level);
        for c in &mut out.c {
            self.params.ring.neg_assign(c, &idx);
        }
        Ok(out)
    }

    fn plain_at(&self, pt: &Plaintext, level: usize) -> Result<Poly> {
        if pt.level < level {
            return Err(CkksError::NotEnoughLevels {
                needed: level,
                have: pt.level,
            });
        }
        Ok(pt.poly.prefix(level + 1))
    }

    fn plain_combine(
        &self,
        ct: &Ciphertext,
        pt: &Plaintext,
        f: impl Fn(&mut Poly, &Poly, &[usize]),
    ) -> Result<Ciphertext> {
        self.own(ct)?;
        self.own_pt(pt)?;
        if !scales_match(ct.scale, pt.scale) {
            return Err(CkksError::ScaleMismatch(ct.scale, pt.scale));
        }
        let l = ct.level.min(pt.level);
        let mut out = self.drop_level(ct, l)?;
        let m = self.plain_at(pt, l)?;
        f(&mut out.c[0], &m, &self.params.q_idx(l));
        Ok(out)
    }

    /// ct + pt (scales must match).
    pub fn add_plain(&self, ct: &Ciphertext, pt: &Plaintext) -> Result<Ciphertext> {
        let r = &self.params.ring;
        self.plain_combine(ct, pt, |x, y, idx| r.add_assign(x, y, idx))
    }

    /// ct - pt (scales must match).
    pub fn sub_plain(&self, ct: &Ciphertext, pt: &Plaintext) -> Result<Ciphertext> {
        let r = &self.params.ring;
        self.plain_combine(ct, pt, |x, y, idx| r.sub_assign(x, y, idx))
    }

    /// ct * pt; the result's scale is the product of scales.
    pub fn mul_plain(&self, ct: &Ciphertext, pt: &Plaintext) -> Result<Ciphertext> {
        self.own(ct)?;
        self.own_pt(pt)?;
        let l = ct.level.min(pt.level);
        self.params
            .check_scale(ct.scale * pt.scale, l, 1.0, "mul_plain")?;
        let _span = profile::span(Kernel::PlainMul);
        let n = self.params.n;
        let c =
            ct.c.iter()
                .map(|c| {
                    let mut out = Poly::zero(n, l + 1);
                    self.plain_mul_acc(&mut out, c, pt, l);
                    out
                })
                .collect();
        Ok(Ciphertext {
            c,
            level: l,
            scale: ct.scale * pt.scale,
            slots: ct.slots,
            params_id: ct.params_id,
        })
    }

    /// `acc += ct * pt` in place: the plaintext products of a linear
    /// transform summed without a new ciphertext (and its copies) per term,
    /// as [`Self::mul_plain`] then [`Self::add`] would make.
    ///
    /// `acc` must be at level `min(ct.level, pt.level)`, of `ct`'s degree,
    /// with scale `ct.scale * pt.scale` (to [`SCALE_TOLERANCE`]); its slot
    /// count becomes the larger of the two.
    ///
    /// # Errors
    /// Another parameter set, malformed operands, a level or degree that
    /// differs from the above ([`CkksError::Domain`]), a scale mismatch.
    pub fn mul_plain_acc(
        &self,
        acc: &mut Ciphertext,
        ct: &Ciphertext,
        pt: &Plaintext,
    ) -> Result<()> {
        self.own(acc)?;
        self.own(ct)?;
        self.own_pt(pt)?;
        let l = ct.level.min(pt.level);
        if acc.level != l || acc.c.len() != ct.c.len() {
            return Err(CkksError::Domain(format!(
                "mul_plain_acc: accumulator of degree {} at level {}, product of degree {} at level {l}",
                acc.c.len() - 1,
                acc.level,
                ct.c.len() - 1
            )));
        }
        if !scales_match(acc.scale, ct.scale * pt.scale) {
            return Err(CkksError::ScaleMismatch(acc.scale, ct.scale * pt.scale));
        }
        let _span = profile::span(Kernel::PlainMul);
        for (a, c) in acc.c.iter_mut().zip(&ct.c) {
            self.plain_mul_acc(a, c, pt, l);
        }
        acc.slots = acc.slots.max(ct.slots);
        Ok(())
    }

    /// `acc += c * pt` on limbs `0..=l` (shapes checked by the callers).
    fn plain_mul_acc(&self, acc: &mut Poly, c: &Poly, pt: &Plaintext, l: usize) {
        let n = self.params.n;
        let r = &self.params.ring;
        acc.data[..(l + 1) * n]
            .par_chunks_mut(n)
            .enumerate()
            .for_each(|(i, a)| r.mul_acc_slice(i, a, c.limb(i), pt.poly.limb(i)));
    }

    /// Residues of round(x) for the Q primes up to `level`.
    fn const_residues(&self, x: f64, level: usize) -> Result<Vec<u64>> {
        if !x.is_finite() {
            return Err(CkksError::Encoding("non-finite constant".into()));
        }
        Ok((0..=level)
            .map(|i| self.params.ring.moduli[i].from_f64(x))
            .collect())
    }

    /// ct + c for a real constant c added to every slot (no level used).
    ///
    /// `c * ct.scale` is checked as [`crate::Encoder::encode`] checks a
    /// value: finite, and below the modulus at the ciphertext's level.
    pub fn add_const(&self, ct: &Ciphertext, c: f64) -> Result<Ciphertext> {
        self.own(ct)?;
        if !c.is_finite() {
            return Err(CkksError::Encoding(format!("constant {c} is not finite")));
        }
        self.params
            .check_scale(ct.scale, ct.level, c.abs(), "add_const")
            .map_err(|_| {
                CkksError::Encoding(format!(
                    "constant {c} at scale 2^{:.1} reaches beyond the modulus 2^{:.1} at level {}",
                    ct.scale.log2(),
                    self.params.log_q_at(ct.level),
                    ct.level
                ))
            })?;
        let mut out = ct.clone();
        let r = self.const_residues(c * ct.scale, ct.level)?;
        self.params
            .ring
            .add_const_assign(&mut out.c[0], &r, &self.params.q_idx(ct.level));
        Ok(out)
    }

    /// ct * round(c * const_scale); the result's scale is ct.scale * const_scale.
    ///
    /// With const_scale = q_level, a following rescale restores the input scale exactly.
    ///
    /// The constant is checked as [`crate::Encoder::encode`] checks a value:
    /// `const_scale` finite and at least 1, `c * const_scale` finite, below
    /// the modulus and not rounded to 0 (unless c is 0); the result's scale
    /// times `|c|` (a message of magnitude 1 multiplied by c) must stay below
    /// the modulus, as [`Self::mul_int`] checks `|k|`.
    pub fn mul_const(&self, ct: &Ciphertext, c: f64, const_scale: f64) -> Result<Ciphertext> {
        self.own(ct)?;
        if !c.is_finite() {
            return Err(CkksError::Encoding(format!("constant {c} is not finite")));
        }
        if !(const_scale.is_finite() && const_scale >= 1.0) {
            return Err(CkksError::Encoding(format!(
                "bad constant scale {const_scale}"
            )));
        }
        self.params
            .check_scale(const_scale, ct.level, c.abs(), "mul_const (constant)")?;
        if c != 0.0 && (c * const_scale).round() == 0.0 {
            return Err(CkksError::Encoding(format!(
                "constant {c} rounds to 0 at scale {const_scale}"
            )));
        }
        // A message of magnitude 1 times c at the product's scale must stay
        // below the modulus, as mul_int checks |k| (the product would wrap).
        self.params.check_scale(
            ct.scale * const_scale,
            ct.level,
            c.abs(),
            "mul_const (product)",
        )?;
        self.mul_const_raw(ct, c, const_scale)
    }

    /// [`Self::mul_const`] for the engine's own constants (polynomial
    /// evaluation, scale adjustment), where a coefficient rounding to 0 is
    /// meant: checks the parameter set and the result's scale only.
    pub(crate) fn mul_const_raw(
        &self,
        ct: &Ciphertext,
        c: f64,
        const_scale: f64,
    ) -> Result<Ciphertext> {
        self.own(ct)?;
        self.params
            .check_scale(ct.scale * const_scale, ct.level, 1.0, "mul_const")?;
        let mut out = ct.clone();
        let r = self.const_residues(c * const_scale, ct.level)?;
        let idx = self.params.q_idx(ct.level);
        for p in &mut out.c {
            self.params.ring.mul_const_assign(p, &r, &idx);
        }
        out.scale *= const_scale;
        Ok(out)
    }

    /// sum_i round(w_i) * ct_i at `level` (every ct_i at or above it),
    /// recorded at `scale`: what [`Self::drop_level`], [`Self::mul_const_raw`]
    /// (with `c * const_scale = w_i`) and [`Self::add`] give term by term,
    /// bit for bit, in one pass over each limb of each term and without
    /// copying any of them. For the leaves of polynomial evaluation, whose
    /// terms are the basis elements times their coefficients.
    pub(crate) fn lincomb_raw(
        &self,
        terms: &[(&Ciphertext, f64)],
        level: usize,
        scale: f64,
    ) -> Result<Ciphertext> {
        if terms.is_empty() {
            return Err(CkksError::Domain("empty linear combination".into()));
        }
        for (ct, _) in terms {
            self.own(ct)?;
            if ct.level < level {
                return Err(CkksError::NotEnoughLevels {
                    needed: level,
                    have: ct.level,
                });
            }
        }
        self.params
            .check_scale(scale, level, 1.0, "linear combination")?;
        let ws: Vec<Vec<u64>> = terms
            .iter()
            .map(|(_, w)| self.const_residues(*w, level))
            .collect::<Result<_>>()?;
        let p = &self.params;
        let n = p.n;
        let degree = terms.iter().map(|(ct, _)| ct.c.len()).max().unwrap_or(2);
        let c = (0..degree)
            .map(|j| {
                let mut out = Poly::zero(n, level + 1);
                out.data.par_chunks_mut(n).enumerate().for_each(|(i, o)| {
                    let m = p.ring.moduli[i];
                    let (xs, cs): (Vec<&[u64]>, Vec<u64>) = terms
                        .iter()
                        .zip(&ws)
                        .filter_map(|((ct, _), w)| ct.c.get(j).map(|c| (c.limb(i), w[i])))
                        .unzip();
                    if xs.len() <= 7
                        && !xs.is_empty()
                        && crate::simd::lincomb_mod(o, &xs, m.value, &cs, m.value)
                    {
                        return;
                    }
                    for (x, &w) in xs.iter().zip(&cs) {
                        let ws = m.shoup(w);
                        o.iter_mut()
                            .zip(x.iter())
                            .for_each(|(o, &x)| *o = m.add(*o, m.mul_shoup(x, w, ws)));
                    }
                });
                out
            })
            .collect();
        Ok(Ciphertext {
            c,
            level,
            scale,
            slots: terms.iter().map(|(ct, _)| ct.slots).max().unwrap_or(1),
            params_id: p.id,
        })
    }

    /// ct * k for an integer k (no level used, scale unchanged).
    ///
    /// Fails with [`CkksError::ScaleOutOfBounds`] if `|k|` times the scale
    /// leaves no room below the modulus for a message of magnitude 1 (the
    /// product would wrap), as [`Params::check_scale`] with bound `|k|`.
    pub fn mul_int(&self, ct: &Ciphertext, k: i64) -> Result<Ciphertext> {
        self.own(ct)?;
        self.params
            .check_scale(ct.scale, ct.level, k.unsigned_abs() as f64, "mul_int")?;
        Ok(self.mul_int_raw(ct, k))
    }

    /// [`Self::mul_int`] for the engine's own integers (polynomial
    /// evaluation, bootstrapping), whose operands it has checked.
    pub(crate) fn mul_int_raw(&self, ct: &Ciphertext, k: i64) -> Ciphertext {
        let mut out = ct.clone();
        let r: Vec<u64> = (0..=ct.level)
            .map(|i| self.params.ring.moduli[i].from_i64(k))
            .collect();
        let idx = self.params.q_idx(ct.level);
        for p in &mut out.c {
            self.params.ring.mul_const_assign(p, &r, &idx);
        }
        out
    }

    /// Multiplies every slot by i (multiplication by the monomial X^{N/2}; no level used).
    pub fn mul_by_i(&self, ct: &Ciphertext) -> Result<Ciphertext> {
        self.own(ct)?;
        let p = &self.params;
        let n = p.n;
        // NTT of X^{N/2}, once per limb (shared by every component).
        let monos: Vec<Vec<u64>> = (0..=ct.level)
            .into_par_iter()
            .map(|i| {
                let mut mono = vec![0u64; n];
                mono[n / 2] = 1;
                p.ring.ntt(i, &mut mono);
                mono
            })
            .collect();
        let mut out = ct.clone();
        for c in &mut out.c {
            c.data
                .par_chunks_mut(n)
                .zip(monos.par_iter())
                .enumerate()
                .for_each(|(i, (limb, mono))| {
                    let m = p.ring.moduli[i];
                    limb.iter_mut()
                        .zip(mono)
                        .for_each(|(x, &y)| *x = m.mul(*x, y));
                });
        }
        Ok(out)
    }

    /// a * b without relinearization (degree 2 result).
    ///
    /// Fails with [`CkksError::ScaleOutOfBounds`] if the product of the
    /// scales leaves no room below the modulus at the common level.
    pub fn mul(&self, a: &Ciphertext, b: &Ciphertext) -> Result<Ciphertext> {
        self.own(a)?;
        self.own(b)?;
        if a.degree() != 1 || b.degree() != 1 {
            return Err(CkksError::Degree(a.degree().max(b.degree()), 1));
        }
        self.params
            .check_scale(a.scale * b.scale, a.level.min(b.level), 1.0, "mul")?;
        let (x, y) = self.aligned(a, b)?;
        let idx = self.params.q_idx(x.level);
        let r = &self.params.ring;
        let _span = profile::span(Kernel::Tensor);
        let d0 = r.mul(&x.c[0], &y.c[0], &idx);
        let mut d1 = r.mul(&x.c[0], &y.c[1], &idx);
        r.mul_acc(&mut d1, &x.c[1], &y.c[0], &idx);
        let d2 = r.mul(&x.c[1], &y.c[1], &idx);
        Ok(Ciphertext {
            c: vec![d0, d1, d2],
            level: x.level,
            scale: x.scale * y.scale,
            slots: x.slots.max(y.slots),
            params_id: self.params.id,
        })
    }

    /// Relinearizes a degree-2 ciphertext back to degree 1.
    pub fn relinearize(&self, ct: &Ciphertext) -> Result<Ciphertext> {
        self.own(ct)?;
        if ct.degree() == 1 {
            return Ok(ct.clone());
        }
        if ct.degree() != 2 {
            return Err(CkksError::Degree(ct.degree(), 2));
        }
        let rlk = self.keys.relin.as_ref().ok_or(CkksError::MissingRelinKey)?;
        if rlk.params.id != self.params.id {
            return Err(CkksError::ParamsMismatch);
        }
        rlk.key.check_level(ct.level)?;
        let (mut a0, a1) = keyswitch::key_switch(&self.params, &ct.c[2], ct.level, &rlk.key);
        let idx = self.params.q_idx(ct.level);
        let r = &self.params.ring;
        r.add_assign(&mut a0, &ct.c[0], &idx);
        let mut c1 = a1;
        r.add_assign(&mut c1, &ct.c[1], &idx);
        Ok(Ciphertext {
            c: vec![a0, c1],
            level: ct.level,
            scale: ct.scale,
            slots: ct.slots,
            params_id: self.params.id,
        })
    }

    /// [`Self::relinearize`] then [`Self::rescale`] of a degree-2 (or
    /// degree-1: rescale only) ciphertext, with the key switch's division
    /// by P and the rescale's division by q_level done as one division by
    /// P q_level (`keyswitch::mod_down_rescale`): the bit-identical result,
    /// without the rescale's NTTs. Same errors as the two calls.
    pub fn relin_rescale(&self, ct: &Ciphertext) -> Result<Ciphertext> {
        self.own(ct)?;
        if ct.degree() == 1 {
            return self.rescale(ct);
        }
        if ct.degree() != 2 {
            return Err(CkksError::Degree(ct.degree(), 2));
        }
        let p = &self.params;
        let l = ct.level;
        if l == 0 {
            return Err(CkksError::NotEnoughLevels { needed: 1, have: 0 });
        }
        let new_scale = self.rescaled_scale(ct)?;
        let rlk = self.keys.relin.as_ref().ok_or(CkksError::MissingRelinKey)?;
        if rlk.params.id != p.id {
            return Err(CkksError::ParamsMismatch);
        }
        rlk.key.check_level(l)?;
        let d = keyswitch::decompose(p, &ct.c[2], l);
        let (a0, a1) = keyswitch::inner_product(p, &d, &rlk.key);
        let c0 = keyswitch::mod_down_rescale(p, &a0, &ct.c[0], l);
        let c1 = keyswitch::mod_down_rescale(p, &a1, &ct.c[1], l);
        Ok(Ciphertext {
            c: vec![c0, c1],
            level: l - 1,
            scale: new_scale,
            slots: ct.slots,
            params_id: p.id,
        })
    }

    /// rescale(relinearize(a * b)), fused as in [`Self::relin_rescale`].
    pub fn mul_relin_rescale(&self, a: &Ciphertext, b: &Ciphertext) -> Result<Ciphertext> {
        self.relin_rescale(&self.mul(a, b)?)
    }

    /// a * b with relinearization.
    pub fn mul_relin(&self, a: &Ciphertext, b: &Ciphertext) -> Result<Ciphertext> {
        self.relinearize(&self.mul(a, b)?)
    }

    /// a^2 with relinearization.
    pub fn square(&self, a: &Ciphertext) -> Result<Ciphertext> {
        self.mul_relin(a, a)
    }

    /// The scale `ct` has after dividing by its last prime `q_level`.
    ///
    /// Fails with [`CkksError::ScaleOutOfBounds`] if it would drop below 1.
    fn rescaled_scale(&self, ct: &Ciphertext) -> Result<f64> {
        let (p, l) = (&self.params, ct.level);
        let new_scale = ct.scale / p.q[l] as f64;
        if !(new_scale.is_finite() && new_scale >= 1.0) {
            return Err(CkksError::ScaleOutOfBounds(format!(
                "rescale: scale 2^{:.1} divided by the prime q_{l} (2^{:.1}) falls below 1",
                ct.scale.log2(),
                (p.q[l] as f64).log2()
            )));
        }
        Ok(new_scale)
    }

    /// Divides by the last prime q_level: level - 1, scale / q_level.
    ///
    /// Fails with [`CkksError::ScaleOutOfBounds`] if the scale would drop
    /// below 1 (the message would be lost in the noise).
    pub fn rescale(&self, ct: &Ciphertext) -> Result<Ciphertext> {
        self.own(ct)?;
        if ct.level == 0 {
            return Err(CkksError::NotEnoughLevels { needed: 1, have: 0 });
        }
        let p = &self.params;
        let l = ct.level;
        let new_scale = self.rescaled_scale(ct)?;
        let n = p.n;
        let _span = profile::span(Kernel::Rescale);
        let lower: Vec<usize> = (0..l).collect();
        let c =
            ct.c.iter()
                .map(|poly| {
                    // The top limb's centered value, lifted to q_0..q_{l-1}
                    // (one SIMD pass per limb where a kernel applies).
                    let mut last = Poly {
                        n,
                        data: poly.limb(l).to_vec(),
                    };
                    p.ring.intt(l, &mut last.data);
                    let mut lifted = p.ring.convert_exact(&last, &[l], &lower);
                    p.ring.ntt_poly(&mut lifted, &lower);
                    let mut out = Poly::zero(n, l);
                    out.data
                        .par_chunks_mut(n)
                        .zip(lifted.data.par_chunks(n))
                        .enumerate()
                        .for_each(|(i, (o, t))| {
                            p.ring
                                .sub_mul_const_slice(i, o, poly.limb(i), t, p.q_inv[l][i])
                        });
                    out
                })
                .collect();
        Ok(Ciphertext {
            c,
            level: l - 1,
            scale: new_scale,
            slots: ct.slots,
            params_id: p.id,
        })
    }

    /// Applies the automorphism for Galois element g (rotation or conjugation).
    pub fn apply_galois(&self, ct: &Ciphertext, g: u64) -> Result<Ciphertext> {
        self.own(ct)?;
        self.galois(g, None)?.get(g)?;
        if ct.degree() != 1 {
            return Err(CkksError::Degree(ct.degree(), 1));
        }
        let d = keyswitch::decompose(&self.params, &ct.c[1], ct.level);
        self.apply_galois_hoisted(ct, &d, g)
    }

    /// Decomposes c_1 once so that many rotations can share it.
    pub fn decompose(&self, ct: &Ciphertext) -> Result<Decomposed> {
        self.own(ct)?;
        if ct.degree() != 1 {
            return Err(CkksError::Degree(ct.degree(), 1));
        }
        Ok(keyswitch::decompose(&self.params, &ct.c[1], ct.level))
    }

    /// Applies Galois element g to a ciphertext whose c_1 is already decomposed.
    pub fn apply_galois_hoisted(
        &self,
        ct: &Ciphertext,
        d: &Decomposed,
        g: u64,
    ) -> Result<Ciphertext> {
        let p = &self.params;
        let ext = self.apply_galois_ext(ct, d, g)?;
        let mut c0 = keyswitch::mod_down(p, &ext.a0, ct.level);
        let c1 = keyswitch::mod_down(p, &ext.a1, ct.level);
        let idx = p.q_idx(ct.level);
        p.ring.add_assign(&mut c0, &ext.c0, &idx);
        Ok(Ciphertext {
            c: vec![c0, c1],
            level: ct.level,
            scale: ct.scale,
            slots: ct.slots,
            params_id: self.params.id,
        })
    }

    /// Galois element g applied to a ciphertext whose c_1 is decomposed, left
    /// in the extended basis Q_l*P without the ModDown ("double hoisting",
    /// Bossuat, Mouchet, Troncoso-Pastoriza, Hubaux, EUROCRYPT 2021, sec. 6):
    /// the rotation is (ModDown(a0) + c0, ModDown(a1)), and since ModDown is
    /// linear up to rounding, sums of plaintext multiples of such parts can
    /// share one ModDown.
    pub(crate) fn apply_galois_ext(
        &self,
        ct: &Ciphertext,
        d: &Decomposed,
        g: u64,
    ) -> Result<ExtRotation> {
        self.own(ct)?;
        if ct.degree() != 1 {
            return Err(CkksError::Degree(ct.degree(), 1));
        }
        let p = &self.params;
        let key = self.galois(g, None)?.get(g)?;
        key.check_level(d.level)?;
        if d.level != ct.level {
            return Err(CkksError::Domain(format!(
                "decomposition at level {} applied to a ciphertext at level {}",
                d.level, ct.level
            )));
        }
        let (a0, a1) = keyswitch::inner_product(p, d, key);
        let perm = p.ring.galois_perm_cached(g);
        Ok(ExtRotation {
            a0: p.ring.permute(&a0, &perm),
            a1: p.ring.permute(&a1, &perm),
            c0: p.ring.permute(&ct.c[0], &perm),
        })
    }

    /// The Galois element rotating `ct`'s slots left by `k`. The ciphertext's
    /// slots repeat with period `ct.slots`, so any step congruent to `k`
    /// modulo it does: `k` itself, `k mod slots` and `k mod slots - slots`
    /// are tried in that order, and the first with a key is used (1, the
    /// identity, for a multiple of the slot count).
    /// The Galois element that rotates `ct` left by `k` slots (modulo its
    /// slot count) with a key this evaluator holds: of the equivalent steps
    /// `k`, `k mod slots` and `k mod slots - slots` (the same rotation of a
    /// sparse-packed ciphertext, different elements), the first with a key;
    /// 1 for no rotation.
    ///
    /// Errors: another set's ciphertext, or no key for any of them
    /// ([`CkksError::MissingRotationKey`]).
    pub fn rotation_for(&self, ct: &Ciphertext, k: i64) -> Result<u64> {
        self.own(ct)?;
        let slots = ct.slots.max(1) as i64;
        let r = k.rem_euclid(slots);
        if r == 0 {
            return Ok(1);
        }
        let want = rotation_element(&self.params, r);
        let gk = self.galois(want, Some(r))?;
        for step in [k, r, r - slots] {
            let g = rotation_element(&self.params, step);
            if g == 1 || gk.keys.contains_key(&g) {
                return Ok(g);
            }
        }
        Err(CkksError::MissingRotationKey {
            element: want,
            step: Some(r),
            none_at_all: gk.keys.is_empty(),
        })
    }

    /// Rotates slots left by k (negative k: right), modulo the ciphertext's
    /// slot count.
    pub fn rotate(&self, ct: &Ciphertext, k: i64) -> Result<Ciphertext> {
        let g = self.rotation_for(ct, k)?;
        if g == 1 {
            return Ok(ct.clone());
        }
        self.apply_galois(ct, g)
    }

    /// Complex conjugation of every slot.
    pub fn conjugate(&self, ct: &Ciphertext) -> Result<Ciphertext> {
        self.own(ct)?;
        let g = conjugation_element(&self.params);
        let gk = self.galois(g, None)?;
        if !gk.keys.contains_key(&g) {
            return Err(CkksError::MissingRotationKey {
                element: g,
                step: None,
                none_at_all: gk.keys.is_empty(),
            });
        }
        self.apply_galois(ct, g)
    }

    /// Several rotations of one ciphertext sharing one decomposition (steps
    /// modulo the ciphertext's slot count, as [`Self::rotate`]); the
    /// rotations run in parallel on the current rayon pool (each also
    /// splits its limbs), which is how a linear layer's baby steps use
    /// several cores.
    pub fn rotate_hoisted(&self, ct: &Ciphertext, steps: &[i64]) -> Result<Vec<Ciphertext>> {
        let elems = steps
            .iter()
            .map(|&k| self.rotation_for(ct, k))
            .collect::<Result<Vec<_>>>()?;
        let d = self.decompose(ct)?;
        elems
            .into_par_iter()
            .map(|g| {
                if g == 1 {
                    Ok(ct.clone())
                } else {
                    self.apply_galois_hoisted(ct, &d, g)
                }
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ciphertext::{Decryptor, Encryptor};
    use crate::encoding::Encoder;
    use crate::keys::KeyGenerator;
    use rustfft::num_complex::Complex64;

    /// `lincomb_raw` is the term-by-term drop, constant multiplication and
    /// addition, bit for bit (compared through decryption), on 45-bit
    /// primes (the SIMD path, up to 7 terms) and with more terms (the
    /// portable one).
    #[test]
    fn lincomb_raw_matches_term_by_term() {
        let params = Params::named("insecure-n12").unwrap();
        let mut kg = KeyGenerator::with_seed(params.clone(), [1u8; 32]);
        let sk = kg.secret_key();
        let ev = Evaluator::new(params.clone(), Arc::new(EvaluationKeys::default())).unwrap();
        let enc = Encoder::new(params.clone());
        let n = params.max_slots();
        let top = params.max_level();
        let cts: Vec<Ciphertext> = (0..9)
            .map(|j| {
                let v: Vec<Complex64> = (0..n)
                    .map(|i| Complex64::new(((i * (j + 3)) % 17) as f64 / 17.0 - 0.5, 0.0))
                    .collect();
                let pt = enc
                    .encode(&v, top - j % 3, params.default_scale(), n)
                    .unwrap();
                Encryptor::new(params.clone()).encrypt_sk(&sk, &pt).unwrap()
            })
            .collect();
        let level = top - 3;
        let common = params.default_scale() * params.q[level] as f64;
        for count in [1usize, 5, 9] {
            let ws: Vec<f64> = (0..count)
                .map(|j| (j as f64 - 3.7) * 0.31 * common / cts[j].scale)
                .collect();
            let terms: Vec<(&Ciphertext, f64)> =
                cts.iter().zip(&ws).map(|(c, &w)| (c, w)).collect();
            let fused = ev.lincomb_raw(&terms, level, common).unwrap();
            let mut acc: Option<Ciphertext> = None;
            for &(c, w) in &terms {
                let x = ev.drop_level(c, level).unwrap();
                let mut y = ev.mul_const_raw(&x, w.signum(), w.abs()).unwrap();
                y.scale = common;
                acc = Some(match acc {
                    None => y,
                    Some(s) => ev.add(&s, &y).unwrap(),
                });
            }
            let acc = acc.unwrap();
            assert_eq!(fused.level, acc.level);
            assert_eq!(fused.scale, acc.scale);
            assert_eq!(fused.c, acc.c, "{count} terms");
            let d = Decryptor::new(&sk);
            assert_eq!(
                enc.decode(&d.decrypt(&fused).unwrap()),
                enc.decode(&d.decrypt(&acc).unwrap())
            );
        }
        assert!(ev.lincomb_raw(&[(&cts[0], 1.0)], top + 1, common).is_err());
    }
}
