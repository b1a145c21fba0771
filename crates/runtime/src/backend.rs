//! The operations a plan is executed with, over ciphertexts or simulated
//! slot vectors.
//!
//! Both backends take the same calls from [`crate::exec`], so a plan that
//! runs out of levels, mismatches scales, lacks a rotation key or feeds a
//! bootstrap values outside its range fails on the simulator exactly where
//! it would fail on ciphertexts, with the same [`ckks::CkksError`].

use ckks::Result;

/// A CKKS-like evaluator over values of type [`Backend::Ct`].
///
/// Scales are exact `f64` bookkeeping as in `ckks::Evaluator`: `mul_plain`
/// multiplies them, `rescale` divides by the prime `q_level`, `add` needs
/// matching scales (up to the engine's tolerance).
pub trait Backend: Sync {
    /// An encrypted (or simulated) vector of `slots()` real values.
    type Ct: Clone + Send + Sync;
    /// An encoded plaintext vector.
    type Pt: Send + Sync;

    /// Slots per ciphertext.
    fn slots(&self) -> usize;
    /// Level of a value.
    fn level(&self, ct: &Self::Ct) -> usize;
    /// Scale of a value.
    fn scale(&self, ct: &Self::Ct) -> f64;
    /// The prime `q_level` as a float (a rescale at `level` divides by it).
    fn prime(&self, level: usize) -> f64;
    /// The scale values are kept at between layers (2^log_scale).
    fn default_scale(&self) -> f64;
    /// Levels after a bootstrap, if this backend bootstraps.
    fn levels_after_bootstrap(&self) -> Option<usize>;

    /// Encodes real `values` (at most `slots()`; the rest zero) at `level`
    /// and `scale`.
    fn encode(&self, values: &[f64], level: usize, scale: f64) -> Result<Self::Pt>;
    /// Drops to a lower level (scale unchanged).
    fn drop_level(&self, ct: &Self::Ct, level: usize) -> Result<Self::Ct>;
    /// `a + b` (levels aligned down, scales must match).
    fn add(&self, a: &Self::Ct, b: &Self::Ct) -> Result<Self::Ct>;
    /// Brings `ct` to exactly `level` and `scale` (one rescale if it is
    /// higher, as `ckks::Evaluator::adjust`).
    fn adjust(&self, ct: &Self::Ct, level: usize, scale: f64) -> Result<Self::Ct>;
    /// `ct + pt` (scales must match).
    fn add_plain(&self, ct: &Self::Ct, pt: &Self::Pt) -> Result<Self::Ct>;
    /// `ct * pt` (scales multiply).
    fn mul_plain(&self, ct: &Self::Ct, pt: &Self::Pt) -> Result<Self::Ct>;
    /// `acc + ct * pt`, `ct * pt` when there is no `acc` yet: one term of a
    /// linear step's sum. The encrypted backend adds in place (no new
    /// ciphertext per term); the default is [`Backend::mul_plain`] then
    /// [`Backend::add`].
    fn mul_plain_acc(
        &self,
        acc: Option<Self::Ct>,
        ct: &Self::Ct,
        pt: &Self::Pt,
    ) -> Result<Self::Ct> {
        let t = self.mul_plain(ct, pt)?;
        match acc {
            None => Ok(t),
            Some(a) => self.add(&a, &t),
        }
    }
    /// `ct + c` in every slot (level and scale unchanged). The encrypted
    /// backend adds the constant to the coefficients directly
    /// (`ckks::Evaluator::add_const`); this default encodes the constant
    /// vector at the ciphertext's level and scale and adds it.
    fn add_const(&self, ct: &Self::Ct, c: f64) -> Result<Self::Ct> {
        let pt = self.encode(&vec![c; self.slots()], self.level(ct), self.scale(ct))?;
        self.add_plain(ct, &pt)
    }
    /// `ct * c` with the constant taken at `const_scale` (the result's scale
    /// is `scale(ct) * const_scale`; no level used until a rescale). The
    /// encrypted backend multiplies by the integer `round(c * const_scale)`
    /// (`ckks::Evaluator::mul_const`); this default encodes the constant
    /// vector and multiplies.
    fn mul_const(&self, ct: &Self::Ct, c: f64, const_scale: f64) -> Result<Self::Ct> {
        let pt = self.encode(&vec![c; self.slots()], self.level(ct), const_scale)?;
        self.mul_plain(ct, &pt)
    }
    /// Divides by `q_level`: one level down.
    fn rescale(&self, ct: &Self::Ct) -> Result<Self::Ct>;
    /// `ct * ct`, relinearized and rescaled: one level down, scale
    /// `scale^2 / q_level`.
    fn square(&self, ct: &Self::Ct) -> Result<Self::Ct>;
    /// `-ct` (level and scale unchanged).
    fn neg(&self, ct: &Self::Ct) -> Result<Self::Ct>;
    /// Rotates slots left by `k` (slot `s` receives slot `s + k`).
    fn rotate(&self, ct: &Self::Ct, k: i64) -> Result<Self::Ct>;
    /// Several rotations of one value sharing one key-switching
    /// decomposition (hoisting, Halevi & Shoup).
    fn rotate_hoisted(&self, ct: &Self::Ct, ks: &[i64]) -> Result<Vec<Self::Ct>>;
    /// The sum of `terms`' values, each rotated left by its step (0: as
    /// is), all at one level and scale. The encrypted backend divides the
    /// key-switched parts by P once for the whole sum
    /// (`ckks::Evaluator::rotate_sum`); this default rotates and adds.
    fn rotate_sum(&self, terms: &[(&Self::Ct, i64)]) -> Result<Self::Ct> {
        let mut acc: Option<Self::Ct> = None;
        for &(c, k) in terms {
            let r = if k == 0 {
                c.clone()
            } else {
                self.rotate(c, k)?
            };
            acc = Some(match acc {
                None => r,
                Some(a) => self.add(&a, &r)?,
            });
        }
        acc.ok_or_else(|| ckks::CkksError::Domain("rotate_sum of no terms".into()))
    }
    /// Evaluates a power-basis polynomial slot-wise at minimal depth
    /// `ceil(log2(degree + 1))`, landing at `out_scale`.
    fn poly(&self, ct: &Self::Ct, coeffs: &[f64], out_scale: f64) -> Result<Self::Ct>;
    /// Refreshes a value to [`Backend::levels_after_bootstrap`] levels at the
    /// default scale.
    fn bootstrap(&self, ct: &Self::Ct) -> Result<Self::Ct>;
    /// The largest slot magnitude, where the backend can see it (the
    /// simulator; never the encrypted backend).
    fn max_abs(&self, _ct: &Self::Ct) -> Option<f64> {
        None
    }
}
