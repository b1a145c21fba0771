//! Homomorphic linear maps on slot vectors, given by their nonzero diagonals,
//! evaluated by baby-step/giant-step with hoisted baby rotations.
//!
//! A matrix M acts on slots as M x = sum_r d_r (.) rot_r(x), where d_r is the
//! r-th diagonal and rot_r rotates left by r. Writing r = g + j (g a giant
//! step, j a baby step), M x = sum_g rot_g( sum_j rot_{-g}(d_{g+j}) (.) rot_j(x) ):
//! one decomposition serves every baby rotation, and only the giant steps
//! need their own key switch.

use crate::ciphertext::Ciphertext;
use crate::encoding::{Encoder, Plaintext, ntt_of_ints};
use crate::error::{CkksError, Result};
use crate::evaluator::{Evaluator, ExtRotation};
use crate::keyswitch;
use crate::params::Params;
use crate::profile::{self, Kernel};
use crate::ring::{Poly, Ring};
use rayon::prelude::*;
use rustfft::num_complex::Complex64;
use std::borrow::Cow;
use std::collections::BTreeMap;

/// A linear map on `slots` complex slots, stored by diagonals (offset in [0, slots)).
#[derive(Clone, Debug)]
pub struct LinearTransform {
    /// Number of slots the map acts on.
    pub slots: usize,
    /// Nonzero diagonals by rotation offset.
    pub diags: BTreeMap<usize, Vec<Complex64>>,
}

/// Giant step offset -> [(baby step offset, diagonal offset)].
pub type GiantSteps = BTreeMap<i64, Vec<(i64, usize)>>;

fn rot(v: &[Complex64], r: i64) -> Vec<Complex64> {
    let n = v.len() as i64;
    (0..n).map(|i| v[(i + r).rem_euclid(n) as usize]).collect()
}

impl LinearTransform {
    /// The identity scaled by `c`.
    pub fn scalar(slots: usize, c: Complex64) -> Self {
        let mut diags = BTreeMap::new();
        diags.insert(0, vec![c; slots]);
        Self { slots, diags }
    }

    /// Adds `d` (.) rot_r to the map (r modulo the slot count).
    ///
    /// A map on 0 slots holds no diagonal: [`Self::encode`] refuses it
    /// ([`CkksError::InvalidSlots`]).
    pub fn add_diagonal(&mut self, r: i64, d: Vec<Complex64>) {
        if self.slots == 0 {
            return;
        }
        let r = r.rem_euclid(self.slots as i64) as usize;
        let e = self
            .diags
            .entry(r)
            .or_insert_with(|| vec![Complex64::new(0.0, 0.0); d.len()]);
        for (a, b) in e.iter_mut().zip(d) {
            *a += b;
        }
    }

    /// self * other: apply `other` first, then `self`.
    pub fn compose(&self, other: &Self) -> Self {
        let mut out = Self {
            slots: self.slots,
            diags: BTreeMap::new(),
        };
        for (&a, da) in &self.diags {
            for (&b, db) in &other.diags {
                let rb = rot(db, a as i64);
                let d: Vec<Complex64> = da.iter().zip(&rb).map(|(x, y)| x * y).collect();
                out.add_diagonal((a + b) as i64, d);
            }
        }
        out.diags.retain(|_, d| d.iter().any(|x| x.norm() > 1e-300));
        out
    }

    /// Multiplies the whole map by a constant.
    pub fn scale(&mut self, c: Complex64) {
        for d in self.diags.values_mut() {
            d.iter_mut().for_each(|x| *x *= c);
        }
    }

    /// Applies the map to a plain vector (the reference for tests).
    pub fn apply_plain(&self, v: &[Complex64]) -> Vec<Complex64> {
        let mut out = vec![Complex64::new(0.0, 0.0); self.slots];
        for (&r, d) in &self.diags {
            let x = rot(v, r as i64);
            for i in 0..self.slots {
                out[i] += d[i] * x[i];
            }
        }
        out
    }

    /// The baby-step/giant-step split: (baby offsets, giant offset -> [(baby, diagonal offset)]).
    pub fn bsgs_plan(&self) -> (Vec<i64>, GiantSteps) {
        bsgs_plan(self.diags.keys().copied(), self.slots)
    }

    /// Rotation offsets the evaluation needs keys for.
    pub fn rotations(&self) -> Vec<i64> {
        let (babies, giants) = self.bsgs_plan();
        let mut r: Vec<i64> = babies
            .into_iter()
            .chain(giants.keys().copied())
            .filter(|&x| x != 0)
            .collect();
        r.sort_unstable();
        r.dedup();
        r
    }

    /// Encodes the pre-rotated diagonals at `level`, so that applying the map
    /// and rescaling multiplies the ciphertext's scale by `out_scale / in_scale`.
    ///
    /// The diagonals are held in NTT form ([`DiagonalStorage::Ntt`]); see
    /// [`Self::encode_with`].
    pub fn encode(
        &self,
        enc: &Encoder,
        level: usize,
        in_scale: f64,
        out_scale: f64,
    ) -> Result<EncodedTransform> {
        self.encode_with(enc, level, in_scale, out_scale, DiagonalStorage::Ntt)
    }

    /// [`Self::encode`], holding the diagonals as `storage` says. Both
    /// storages give bit-identical results: a diagonal kept as integer
    /// coefficients is the same plaintext, reduced and transformed when it
    /// is used. A diagonal whose scaled coefficients reach 2^62 is kept in
    /// NTT form either way.
    ///
    /// Errors: a diagonal of another length than the map's slots
    /// ([`CkksError::Domain`]), an input scale below 1
    /// ([`CkksError::ScaleOutOfBounds`]), a level the set does not have, and
    /// scaled coefficients beyond the modulus at `level`
    /// ([`CkksError::Encoding`]).
    pub fn encode_with(
        &self,
        enc: &Encoder,
        level: usize,
        in_scale: f64,
        out_scale: f64,
        storage: DiagonalStorage,
    ) -> Result<EncodedTransform> {
        let params = enc.params();
        enc.check_slots(self.slots)?;
        params.check_level(level)?;
        if let Some((r, d)) = self.diags.iter().find(|(_, d)| d.len() != self.slots) {
            return Err(CkksError::Domain(format!(
                "diagonal {r} has {} values, the map acts on {} slots",
                d.len(),
                self.slots
            )));
        }
        if !(in_scale.is_finite() && in_scale >= 1.0) {
            return Err(CkksError::ScaleOutOfBounds(format!(
                "linear transform input scale {in_scale}"
            )));
        }
        let pt_scale = params.q[level] as f64 * out_scale / in_scale;
        let (babies, plan) = self.bsgs_plan();
        let mut giants = Vec::new();
        for (g, terms) in plan {
            let mut enc_terms = Vec::new();
            for (j, r) in terms {
                let d = rot(&self.diags[&r], -g);
                let ints = match storage {
                    DiagonalStorage::Ntt => None,
                    DiagonalStorage::Coefficients => {
                        enc.integer_coeffs(&d, level, pt_scale, self.slots)?
                    }
                };
                let diag = match ints {
                    Some(c) => {
                        let (ints, stride) = crate::encoding::compact(&c);
                        Diagonal::Coeffs { ints, stride }
                    }
                    // Terms on a rotated baby also need the P residues: they
                    // multiply the baby while it is still in Q_l*P.
                    None if j == 0 => Diagonal::Ntt {
                        pt: enc.encode(&d, level, pt_scale, self.slots)?,
                        ext: None,
                    },
                    None => {
                        let (pt, ext) = enc.encode_ext(&d, level, pt_scale, self.slots)?;
                        Diagonal::Ntt { pt, ext: Some(ext) }
                    }
                };
                enc_terms.push((j, diag));
            }
            giants.push((g, enc_terms));
        }
        Ok(EncodedTransform {
            level,
            out_scale,
            pt_scale,
            slots: self.slots,
            babies,
            giants,
            params_id: params.id,
        })
    }
}

/// How an [`EncodedTransform`] holds its diagonals between applications.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum DiagonalStorage {
    /// NTT form on every limb a product needs (Q_l, plus P for rotated
    /// babies): `(level + 1)` or `(level + 1 + K)` words per coefficient,
    /// nothing to compute at application.
    #[default]
    Ntt,
    /// The plaintext's integer coefficients, one `i64` each: 1/(level + 1 + K)
    /// of the memory; each application reduces every diagonal modulo each
    /// limb's prime and transforms it (one NTT per limb and diagonal).
    Coefficients,
}

/// One encoded diagonal (see [`DiagonalStorage`]).
enum Diagonal {
    /// NTT form over Q_l, with the P residues for a rotated baby.
    Ntt { pt: Plaintext, ext: Option<Poly> },
    /// Rounded scaled coefficients (|c| < 2^62), those at multiples of
    /// the stride (the others are zero: [`crate::encoding::compact`]).
    Coeffs { ints: Vec<i64>, stride: usize },
}

/// The NTT form of integer coefficients modulo ring prime `mi`.
fn expand_limb(ring: &Ring, mi: usize, ints: &[i64], stride: usize) -> Vec<u64> {
    let mut v = vec![0u64; ring.n];
    ntt_of_ints(ring, mi, ints, stride, &mut v);
    v
}

impl Diagonal {
    /// Bytes held.
    fn size_bytes(&self) -> usize {
        match self {
            Diagonal::Ntt { pt, ext } => {
                8 * (pt.poly.data.len() + ext.as_ref().map_or(0, |e| e.data.len()))
            }
            Diagonal::Coeffs { ints, .. } => 8 * ints.len(),
        }
    }

    /// NTT values on the `k`-th Q limb (ring prime `mi`), `n` coefficients.
    fn q_limb(&self, ring: &Ring, k: usize, mi: usize, n: usize) -> Cow<'_, [u64]> {
        match self {
            Diagonal::Ntt { pt, .. } => Cow::Borrowed(&pt.poly.data[k * n..(k + 1) * n]),
            Diagonal::Coeffs { ints, stride } => Cow::Owned(expand_limb(ring, mi, ints, *stride)),
        }
    }

    /// NTT values on the `j`-th P limb (ring prime `mi`).
    fn p_limb(&self, ring: &Ring, j: usize, mi: usize, n: usize) -> Cow<'_, [u64]> {
        match self {
            Diagonal::Ntt { ext, .. } => {
                let ext = ext
                    .as_ref()
                    .expect("P residues encoded for every rotated baby");
                Cow::Borrowed(&ext.data[j * n..(j + 1) * n])
            }
            Diagonal::Coeffs { ints, stride } => Cow::Owned(expand_limb(ring, mi, ints, *stride)),
        }
    }

    /// The diagonal as a plaintext at `level` (the single-hoisted
    /// reference path).
    fn plaintext(&self, p: &Params, level: usize, scale: f64, slots: usize) -> Cow<'_, Plaintext> {
        match self {
            Diagonal::Ntt { pt, .. } => Cow::Borrowed(pt),
            Diagonal::Coeffs { ints, stride } => {
                let n = p.n;
                let mut poly = Poly::zero(n, level + 1);
                poly.data
                    .par_chunks_mut(n)
                    .enumerate()
                    .for_each(|(k, limb)| ntt_of_ints(&p.ring, k, ints, *stride, limb));
                Cow::Owned(Plaintext {
                    poly,
                    level,
                    scale,
                    slots,
                    params_id: p.id,
                })
            }
        }
    }
}

/// The baby-step/giant-step split of a map on `slots` slots whose nonzero
/// diagonals sit at `offsets` (each in `[0, slots)`): (baby offsets, giant
/// offset -> [(baby, diagonal offset)]). Depends on the offsets only, so a
/// plan can be costed before any diagonal is computed.
pub fn bsgs_plan(offsets: impl IntoIterator<Item = usize>, slots: usize) -> (Vec<i64>, GiantSteps) {
    // signed offsets in (-n/2, n/2]
    let signed: Vec<(i64, usize)> = offsets
        .into_iter()
        .map(|r| (signed_offset(r, slots), r))
        .collect();
    let unit = signed
        .iter()
        .map(|(s, _)| s.unsigned_abs())
        .filter(|&s| s != 0)
        .fold(0u64, gcd)
        .max(1) as i64;
    // Baby span: about the square root of the number of diagonals (for
    // contiguous offsets, of their span). Counting diagonals rather than
    // the span keeps clustered offsets cheap: a packed bootstrap's first
    // SlotsToCoeffs map has offsets s and s + n for small s, and needs
    // only twice the giant steps, not babies across the whole gap.
    let count = signed.len() as i64;
    let mut bs = 1i64;
    while bs * bs < count {
        bs *= 2;
    }
    let mut babies = Vec::new();
    let mut giants: GiantSteps = BTreeMap::new();
    let n = slots.max(1);
    for &(s, r) in &signed {
        let m = s / unit;
        let j = m.rem_euclid(bs);
        // Giant steps that differ by a multiple of the slot count are
        // one rotation: keep one, in (-n/2, n/2]. (Offsets near +-n/2,
        // as in a packed bootstrap's first SlotsToCoeffs map or a
        // merged group holding the half-length n/2 stage, would give
        // both -n/2 and +n/2.)
        let g = signed_offset(((m - j) * unit).rem_euclid(n as i64) as usize, n);
        babies.push(j * unit);
        giants.entry(g).or_default().push((j * unit, r));
    }
    babies.sort_unstable();
    babies.dedup();
    (babies, giants)
}

/// Offset `r` of a map on `n` slots as a signed rotation in (-n/2, n/2].
pub(crate) fn signed_offset(r: usize, n: usize) -> i64 {
    if r > n / 2 {
        r as i64 - n as i64
    } else {
        r as i64
    }
}

fn gcd(a: u64, b: u64) -> u64 {
    if b == 0 { a } else { gcd(b, a % b) }
}

/// A linear transform ready for one level: pre-rotated, encoded diagonals
/// (those applied to a rotated baby step also with their P residues, for
/// double hoisting).
pub struct EncodedTransform {
    /// Level the input must be at.
    pub level: usize,
    out_scale: f64,
    /// Scale every diagonal was encoded at.
    pt_scale: f64,
    /// Slots the map acts on.
    slots: usize,
    babies: Vec<i64>,
    giants: Vec<GiantTerms>,
    /// [`Params::id`](crate::params::Params::id) of the set the diagonals
    /// were encoded for: applying them with another set's evaluator is refused.
    params_id: u64,
}

/// One giant step: its offset and its (baby offset, diagonal) terms.
type GiantTerms = (i64, Vec<(i64, Diagonal)>);

/// A baby step of the double-hoisted evaluation.
enum Baby {
    /// No rotation: the input itself.
    Input,
    /// Rotated, kept in Q_l*P (no ModDown yet).
    Ext(ExtRotation),
}

/// Sums of ciphertext parts with a Q_l part and a Q_l*P part still to be
/// divided by P: the value is (q0 + ModDown(e0), q1 + ModDown(e1)).
struct SplitSum {
    q0: Poly,
    q1: Poly,
    e0: Option<Poly>,
    e1: Option<Poly>,
}

impl SplitSum {
    fn new(n: usize, level: usize) -> Self {
        Self {
            q0: Poly::zero(n, level + 1),
            q1: Poly::zero(n, level + 1),
            e0: None,
            e1: None,
        }
    }

    /// Adds `diag` (.) part, limb by limb (a diagonal held as coefficients
    /// is expanded one limb at a time, each limb used for every product on
    /// it), where a rotated part's Q_l*P halves take the diagonal with its
    /// P residues.
    fn add_product(&mut self, ring: &Ring, p: &Params, level: usize, part: Part, diag: &Diagonal) {
        let n = p.n;
        let q = level + 1;
        let qidx = p.q_idx(level);
        let _span = profile::span(Kernel::PlainMul);
        match part {
            Part::Input(ct) => {
                self.q0
                    .data
                    .par_chunks_mut(n)
                    .zip(self.q1.data.par_chunks_mut(n))
                    .zip(ct.c[0].data[..q * n].par_chunks(n))
                    .zip(ct.c[1].data[..q * n].par_chunks(n))
                    .enumerate()
                    .for_each(|(k, (((s0, s1), x0), x1))| {
                        let mi = qidx[k];
                        let d = diag.q_limb(ring, k, mi, n);
                        ring.mul_acc_slice(mi, s0, x0, &d);
                        ring.mul_acc_slice(mi, s1, x1, &d);
                    });
            }
            Part::Ext(r) => {
                let pidx = p.p_idx();
                let limbs = q + pidx.len();
                let e0 = self.e0.get_or_insert_with(|| Poly::zero(n, limbs));
                let e1 = self.e1.get_or_insert_with(|| Poly::zero(n, limbs));
                let (e0q, e0p) = e0.data.split_at_mut(q * n);
                let (e1q, e1p) = e1.data.split_at_mut(q * n);
                let (a0q, a0p) = r.a0.data.split_at(q * n);
                let (a1q, a1p) = r.a1.data.split_at(q * n);
                self.q0
                    .data
                    .par_chunks_mut(n)
                    .zip(e0q.par_chunks_mut(n))
                    .zip(e1q.par_chunks_mut(n))
                    .zip(r.c0.data[..q * n].par_chunks(n))
                    .zip(a0q.par_chunks(n))
                    .zip(a1q.par_chunks(n))
                    .enumerate()
                    .for_each(|(k, (((((s0, s1), s2), x0), x1), x2))| {
                        let mi = qidx[k];
                        let d = diag.q_limb(ring, k, mi, n);
                        ring.mul_acc_slice(mi, s0, x0, &d);
                        ring.mul_acc_slice(mi, s1, x1, &d);
                        ring.mul_acc_slice(mi, s2, x2, &d);
                    });
                e0p.par_chunks_mut(n)
                    .zip(e1p.par_chunks_mut(n))
                    .zip(a0p.par_chunks(n))
                    .zip(a1p.par_chunks(n))
                    .enumerate()
                    .for_each(|(j, (((s1, s2), x1), x2))| {
                        let mi = pidx[j];
                        let d = diag.p_limb(ring, j, mi, n);
                        ring.mul_acc_slice(mi, s1, x1, &d);
                        ring.mul_acc_slice(mi, s2, x2, &d);
                    });
            }
        }
    }

    /// Adds a ciphertext over Q_l unmultiplied.
    fn add(&mut self, ring: &Ring, p: &Params, level: usize, ct: &Ciphertext) {
        let qidx = p.q_idx(level);
        ring.add_assign(&mut self.q0, &ct.c[0], &qidx);
        ring.add_assign(&mut self.q1, &ct.c[1], &qidx);
    }

    /// Adds another sum over the same level into this one.
    fn merge(mut self, other: SplitSum, ring: &Ring, p: &Params, level: usize) -> SplitSum {
        let qidx = p.q_idx(level);
        let qpidx = p.qp_idx(level);
        ring.add_assign(&mut self.q0, &other.q0, &qidx);
        ring.add_assign(&mut self.q1, &other.q1, &qidx);
        for (mine, theirs) in [(&mut self.e0, other.e0), (&mut self.e1, other.e1)] {
            match (mine.as_mut(), theirs) {
                (Some(a), Some(b)) => ring.add_assign(a, &b, &qpidx),
                (None, Some(b)) => *mine = Some(b),
                (_, None) => {}
            }
        }
        self
    }

    /// Adds a rotation still in Q_l*P, taking its parts (no copy when the
    /// sum holds no extended part yet).
    fn add_ext(&mut self, ring: &Ring, p: &Params, level: usize, r: ExtRotation) {
        ring.add_assign(&mut self.q0, &r.c0, &p.q_idx(level));
        let qpidx = p.qp_idx(level);
        for (mine, theirs) in [(&mut self.e0, r.a0), (&mut self.e1, r.a1)] {
            match mine {
                Some(a) => ring.add_assign(a, &theirs, &qpidx),
                None => *mine = Some(theirs),
            }
        }
    }

    /// (q0 + ModDown(e0), q1 + ModDown(e1)) over Q_l.
    fn finish(self, p: &Params, level: usize) -> (Poly, Poly) {
        let qidx = p.q_idx(level);
        let (mut c0, mut c1) = (self.q0, self.q1);
        if let Some(e) = self.e0 {
            p.ring
                .add_assign(&mut c0, &keyswitch::mod_down(p, &e, level), &qidx);
        }
        if let Some(e) = self.e1 {
            p.ring
                .add_assign(&mut c1, &keyswitch::mod_down(p, &e, level), &qidx);
        }
        (c0, c1)
    }
}

impl Evaluator {
    /// The sum of rotations `sum_i rot_{k_i}(ct_i)` (slots rotated left by
    /// k_i; a step of 0 adds the ciphertext as it is), with one ModDown for
    /// the whole sum: each rotated term is key-switched (its own ModUp and
    /// inner product) and kept in the extended basis Q_l*P, the sum is
    /// divided by P once. This is the giant-step half of double hoisting
    /// (Bossuat, Mouchet, Troncoso-Pastoriza, Hubaux, EUROCRYPT 2021,
    /// sec. 6; [`EncodedTransform::apply`] sums its giant steps this way):
    /// 2 ModDowns in all against 2 per rotated term for rotating each and
    /// adding, with one ModDown's rounding instead of one per term.
    ///
    /// Errors: no terms ([`CkksError::Domain`]); terms of another
    /// parameter set, of degree other than 1, at different levels
    /// ([`CkksError::Domain`]), slot counts ([`CkksError::Domain`]) or
    /// scales ([`CkksError::ScaleMismatch`]); a missing rotation key.
    pub fn rotate_sum(&self, terms: &[(&Ciphertext, i64)]) -> Result<Ciphertext> {
        let (first, _) = *terms
            .first()
            .ok_or_else(|| CkksError::Domain("rotate_sum of no terms".into()))?;
        for &(c, _) in terms {
            self.own(c)?;
            if c.degree() != 1 {
                return Err(CkksError::Degree(c.degree(), 1));
            }
            if c.level != first.level || c.slots != first.slots {
                return Err(CkksError::Domain(format!(
                    "rotate_sum terms at level {} with {} slots and at level {} with {} slots",
                    first.level, first.slots, c.level, c.slots
                )));
            }
            if !crate::evaluator::scales_match(c.scale, first.scale) {
                return Err(CkksError::ScaleMismatch(first.scale, c.scale));
            }
        }
        let p = &self.params;
        let ring = &p.ring;
        let level = first.level;
        let elems = terms
            .iter()
            .map(|&(c, k)| self.rotation_for(c, k))
            .collect::<Result<Vec<u64>>>()?;
        let sum = terms
            .par_iter()
            .zip(elems.par_iter())
            .try_fold(
                || SplitSum::new(p.n, level),
                |mut s, (&(c, _), &g)| -> Result<SplitSum> {
                    if g == 1 {
                        s.add(ring, p, level, c);
                    } else {
                        let d = self.decompose(c)?;
                        s.add_ext(ring, p, level, self.apply_galois_ext(c, &d, g)?);
                    }
                    Ok(s)
                },
            )
            .try_reduce(
                || SplitSum::new(p.n, level),
                |a, b| Ok(a.merge(b, ring, p, level)),
            )?;
        let (c0, c1) = sum.finish(p, level);
        Ok(Ciphertext {
            c: vec![c0, c1],
            level,
            scale: first.scale,
            slots: first.slots,
            params_id: p.id,
        })
    }
}

/// A giant step's result: unrotated (over Q_l), or rotated and still in Q_l*P.
enum GiantPart {
    Plain(Ciphertext),
    Ext(ExtRotation),
}

/// A summand of [`SplitSum`].
#[derive(Clone, Copy)]
enum Part<'a> {
    Input(&'a Ciphertext),
    Ext(&'a ExtRotation),
}

impl EncodedTransform {
    /// Bytes held by the encoded diagonals.
    pub fn size_bytes(&self) -> usize {
        self.giants
            .iter()
            .flat_map(|(_, t)| t.iter())
            .map(|(_, d)| d.size_bytes())
            .sum()
    }

    /// Number of key switches one application costs (hoisted babies count once each).
    pub fn key_switches(&self) -> usize {
        self.babies.iter().filter(|&&b| b != 0).count()
            + self.giants.iter().filter(|(g, _)| *g != 0).count()
    }

    /// Fails with [`CkksError::ParamsMismatch`] unless the diagonals were
    /// encoded for the evaluator's parameter set (another set's plaintexts
    /// would index limbs that do not exist, or decrypt to noise), and with
    /// `NotEnoughLevels` if the input is below the transform's level.
    fn check_for(&self, eval: &Evaluator, ct: &Ciphertext) -> Result<()> {
        if self.params_id != eval.params().id {
            return Err(CkksError::ParamsMismatch);
        }
        if ct.level < self.level {
            return Err(CkksError::NotEnoughLevels {
                needed: self.level,
                have: ct.level,
            });
        }
        Ok(())
    }

    /// Applies the map: one level is consumed.
    ///
    /// Double hoisting (Bossuat, Mouchet, Troncoso-Pastoriza, Hubaux,
    /// EUROCRYPT 2021, sec. 6; Lattigo's `lintrans` evaluates this way): the
    /// input's c_1 is decomposed once (ModUp) for every baby step; the baby
    /// rotations stay in the extended basis Q_l*P, where each giant step's
    /// sum of diagonal products is formed and divided by P once; each giant
    /// rotation's key-switched part is likewise summed over all giant steps
    /// in Q_l*P and divided by P once at the end. Per application this
    /// costs one ModUp for the babies, one per nonzero giant step, and
    /// 2 (giant steps + 1) ModDowns, against 2 (babies + giant steps) for
    /// [`Self::apply_single_hoisted`], which computes the same map.
    ///
    /// Errors: the input below [`Self::level`], a missing rotation key, or
    /// scales out of bounds.
    pub fn apply(&self, eval: &Evaluator, ct: &Ciphertext) -> Result<Ciphertext> {
        self.check_for(eval, ct)?;
        let ct = eval.drop_level(ct, self.level)?;
        if ct.degree() != 1 {
            return Err(CkksError::Degree(ct.degree(), 1));
        }
        let p = eval.params();
        let ring = &p.ring;
        let level = self.level;
        if self.giants.is_empty() {
            return Err(CkksError::Domain("empty linear transform".into()));
        }
        let pt_scale = self.pt_scale;
        p.check_scale(ct.scale * pt_scale, level, 1.0, "linear transform")?;
        // Baby steps: one ModUp, no ModDown.
        let elems = self
            .babies
            .iter()
            .map(|&j| eval.rotation_for(&ct, j))
            .collect::<Result<Vec<u64>>>()?;
        let decomposed = if elems.iter().any(|&g| g != 1) {
            Some(eval.decompose(&ct)?)
        } else {
            None
        };
        let babies = elems
            .par_iter()
            .map(|&g| match &decomposed {
                Some(d) if g != 1 => Ok(Baby::Ext(eval.apply_galois_ext(&ct, d, g)?)),
                _ => Ok(Baby::Input),
            })
            .collect::<Result<Vec<Baby>>>()?;
        let baby = |j: i64| -> Part<'_> {
            let i = self.babies.binary_search(&j).expect("baby step planned");
            match &babies[i] {
                Baby::Input => Part::Input(&ct),
                Baby::Ext(r) => Part::Ext(r),
            }
        };
        // Giant steps: each inner sum is divided by P once, then rotated
        // with its own ModUp; the rotated parts stay in Q_l*P.
        let scale = ct.scale * pt_scale;
        let at_level = |c0: Poly, c1: Poly| Ciphertext {
            c: vec![c0, c1],
            level,
            scale,
            slots: ct.slots,
            params_id: p.id,
        };
        let parts = self
            .giants
            .par_iter()
            .map(|(g, terms)| -> Result<GiantPart> {
                let mut sum = SplitSum::new(p.n, level);
                for (j, diag) in terms {
                    sum.add_product(ring, p, level, baby(*j), diag);
                }
                let (c0, c1) = sum.finish(p, level);
                let inner = at_level(c0, c1);
                let ge = if *g != 0 {
                    eval.rotation_for(&inner, *g)?
                } else {
                    1
                };
                if ge == 1 {
                    return Ok(GiantPart::Plain(inner));
                }
                let d = eval.decompose(&inner)?;
                Ok(GiantPart::Ext(eval.apply_galois_ext(&inner, &d, ge)?))
            })
            .collect::<Result<Vec<_>>>()?;
        // The rotated parts move into the sum (no copy of their Q_l*P halves).
        let mut total = SplitSum::new(p.n, level);
        for part in parts {
            match part {
                GiantPart::Ext(r) => total.add_ext(ring, p, level, r),
                GiantPart::Plain(c) => total.add(ring, p, level, &c),
            }
        }
        let (c0, c1) = total.finish(p, level);
        let mut out = eval.rescale(&at_level(c0, c1))?;
        out.scale = self.out_scale;
        Ok(out)
    }

    /// Applies the map with single hoisting: one ModUp shared by the baby
    /// rotations, but each rotation divided by P on its own. The reference
    /// [`Self::apply`] is tested and measured against.
    pub fn apply_single_hoisted(&self, eval: &Evaluator, ct: &Ciphertext) -> Result<Ciphertext> {
        self.check_for(eval, ct)?;
        let ct = eval.drop_level(ct, self.level)?;
        let rotated = eval.rotate_hoisted(&ct, &self.babies)?;
        let baby = |j: i64| {
            let i = self.babies.binary_search(&j).expect("baby step planned");
            &rotated[i]
        };
        // Giant steps are independent: run them in parallel (each one's key
        // switch parallelizes over limbs too), then sum.
        let parts = self
            .giants
            .par_iter()
            .map(|(g, terms)| {
                let mut inner: Option<Ciphertext> = None;
                for (j, diag) in terms {
                    let pt = diag.plaintext(eval.params(), self.level, self.pt_scale, self.slots);
                    let t = eval.mul_plain(baby(*j), &pt)?;
                    inner = Some(match inner {
                        None => t,
                        Some(x) => eval.add(&x, &t)?,
                    });
                }
                let inner = inner.expect("nonempty giant step");
                if *g != 0 {
                    eval.rotate(&inner, *g)
                } else {
                    Ok(inner)
                }
            })
            .collect::<Result<Vec<Ciphertext>>>()?;
        let mut acc: Option<Ciphertext> = None;
        for p in parts {
            acc = Some(match acc {
                None => p,
                Some(x) => eval.add(&x, &p)?,
            });
        }
        let acc = acc.ok_or_else(|| CkksError::Domain("empty linear transform".into()))?;
        let mut out = eval.rescale(&acc)?;
        out.scale = self.out_scale;
        Ok(out)
    }
}
