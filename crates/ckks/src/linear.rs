//! Homomorphic linear maps on slot vectors, given by their nonzero diagonals,
//! evaluated by baby-step/giant-step with hoisted baby rotations.
//!
//! A matrix M acts on slots as M x = sum_r d_r (.) rot_r(x), where d_r is the
//! r-th diagonal and rot_r rotates left by r. Writing r = g + j (g a giant
//! step, j a baby step), M x = sum_g rot_g( sum_j rot_{-g}(d_{g+j}) (.) rot_j(x) ):
//! one decomposition serves every baby rotation, and only the giant steps
//! need their own key switch.

use crate::ciphertext::Ciphertext;
use crate::encoding::{Encoder, Plaintext};
use crate::error::{CkksError, Result};
use crate::evaluator::Evaluator;
use rayon::prelude::*;
use rustfft::num_complex::Complex64;
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
        // signed offsets in (-n/2, n/2]
        let signed: Vec<(i64, usize)> = self
            .diags
            .keys()
            .map(|&r| (signed_offset(r, self.slots), r))
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
        for &(s, r) in &signed {
            let m = s / unit;
            let j = m.rem_euclid(bs);
            let g = m - j;
            babies.push(j * unit);
            giants.entry(g * unit).or_default().push((j * unit, r));
        }
        babies.sort_unstable();
        babies.dedup();
        (babies, giants)
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
    pub fn encode(
        &self,
        enc: &Encoder,
        level: usize,
        in_scale: f64,
        out_scale: f64,
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
                enc_terms.push((j, enc.encode(&d, level, pt_scale, self.slots)?));
            }
            giants.push((g, enc_terms));
        }
        Ok(EncodedTransform {
            level,
            out_scale,
            babies,
            giants,
        })
    }
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

/// A linear transform ready for one level: pre-rotated, encoded diagonals.
pub struct EncodedTransform {
    /// Level the input must be at.
    pub level: usize,
    out_scale: f64,
    babies: Vec<i64>,
    giants: Vec<(i64, Vec<(i64, Plaintext)>)>,
}

impl EncodedTransform {
    /// Number of key switches one application costs (hoisted babies count once each).
    pub fn key_switches(&self) -> usize {
        self.babies.iter().filter(|&&b| b != 0).count()
            + self.giants.iter().filter(|(g, _)| *g != 0).count()
    }

    /// Applies the map: one level is consumed.
    pub fn apply(&self, eval: &Evaluator, ct: &Ciphertext) -> Result<Ciphertext> {
        if ct.level < self.level {
            return Err(CkksError::NotEnoughLevels {
                needed: self.level,
                have: ct.level,
            });
        }
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
                for (j, pt) in terms {
                    let t = eval.mul_plain(baby(*j), pt)?;
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
