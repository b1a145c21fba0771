//! The CKKS backend: plan steps on real ciphertexts (server side).

use std::sync::Arc;

use ckks::bootstrap::Bootstrapper;
use ckks::{
    Ciphertext, Encoder, Evaluator, Params, Plaintext, PolyEvalOptions, PowerSeries, Result,
};

use crate::backend::Backend;

/// Runs plan steps with `ckks::Evaluator` and, where the plan bootstraps,
/// `ckks::bootstrap::Bootstrapper`.
pub struct CkksBackend {
    params: Arc<Params>,
    eval: Evaluator,
    enc: Encoder,
    boot: Option<Bootstrapper>,
    slots: usize,
}

impl CkksBackend {
    /// A backend over `eval` (which holds the relinearization and Galois
    /// keys) and, if the plan bootstraps, a bootstrapper, for ciphertexts of
    /// `slots` slots (the plan's packing).
    pub fn new(eval: Evaluator, boot: Option<Bootstrapper>, slots: usize) -> Self {
        let params = eval.params().clone();
        Self {
            enc: Encoder::new(params.clone()),
            params,
            eval,
            boot,
            slots,
        }
    }

    /// The parameter set.
    pub fn params(&self) -> &Arc<Params> {
        &self.params
    }

    /// The bootstrapper, if the plan bootstraps.
    pub fn bootstrapper(&self) -> Option<&Bootstrapper> {
        self.boot.as_ref()
    }
}

impl Backend for CkksBackend {
    type Ct = Ciphertext;
    type Pt = Plaintext;

    fn slots(&self) -> usize {
        self.slots
    }
    fn level(&self, ct: &Ciphertext) -> usize {
        ct.level()
    }
    fn scale(&self, ct: &Ciphertext) -> f64 {
        ct.scale()
    }
    fn prime(&self, level: usize) -> f64 {
        self.params.q[level.min(self.params.q.len() - 1)] as f64
    }
    fn default_scale(&self) -> f64 {
        self.params.default_scale()
    }
    fn levels_after_bootstrap(&self) -> Option<usize> {
        self.boot.as_ref().map(|b| b.levels_after())
    }

    fn encode(&self, values: &[f64], level: usize, scale: f64) -> Result<Plaintext> {
        // Fewer values than slots are zero-padded by the encoder.
        self.enc.encode_real(values, level, scale, self.slots())
    }
    fn drop_level(&self, ct: &Ciphertext, level: usize) -> Result<Ciphertext> {
        self.eval.drop_level(ct, level)
    }
    fn add(&self, a: &Ciphertext, b: &Ciphertext) -> Result<Ciphertext> {
        self.eval.add(a, b)
    }
    fn adjust(&self, ct: &Ciphertext, level: usize, scale: f64) -> Result<Ciphertext> {
        self.eval.adjust(ct, level, scale)
    }
    fn add_plain(&self, ct: &Ciphertext, pt: &Plaintext) -> Result<Ciphertext> {
        self.eval.add_plain(ct, pt)
    }
    fn mul_plain(&self, ct: &Ciphertext, pt: &Plaintext) -> Result<Ciphertext> {
        self.eval.mul_plain(ct, pt)
    }
    fn mul_plain_acc(
        &self,
        acc: Option<Ciphertext>,
        ct: &Ciphertext,
        pt: &Plaintext,
    ) -> Result<Ciphertext> {
        match acc {
            None => self.eval.mul_plain(ct, pt),
            Some(mut a) if a.level() == ct.level().min(pt.level()) => {
                self.eval.mul_plain_acc(&mut a, ct, pt)?;
                Ok(a)
            }
            // Terms at different levels: aligned down by `add`.
            Some(a) => self.eval.add(&a, &self.eval.mul_plain(ct, pt)?),
        }
    }
    fn add_const(&self, ct: &Ciphertext, c: f64) -> Result<Ciphertext> {
        self.eval.add_const(ct, c)
    }
    fn mul_const(&self, ct: &Ciphertext, c: f64, const_scale: f64) -> Result<Ciphertext> {
        self.eval.mul_const(ct, c, const_scale)
    }
    fn rescale(&self, ct: &Ciphertext) -> Result<Ciphertext> {
        self.eval.rescale(ct)
    }
    fn square(&self, ct: &Ciphertext) -> Result<Ciphertext> {
        self.eval.mul_relin_rescale(ct, ct)
    }
    fn neg(&self, ct: &Ciphertext) -> Result<Ciphertext> {
        self.eval.neg(ct)
    }
    fn rotate(&self, ct: &Ciphertext, k: i64) -> Result<Ciphertext> {
        self.eval.rotate(ct, k)
    }
    fn rotate_hoisted(&self, ct: &Ciphertext, ks: &[i64]) -> Result<Vec<Ciphertext>> {
        // The engine's: one decomposition, the rotations in parallel.
        self.eval.rotate_hoisted(ct, ks)
    }
    fn rotate_sum(&self, terms: &[(&Ciphertext, i64)]) -> Result<Ciphertext> {
        self.eval.rotate_sum(terms)
    }
    fn poly(&self, ct: &Ciphertext, coeffs: &[f64], out_scale: f64) -> Result<Ciphertext> {
        let p = PowerSeries::new(coeffs.to_vec())?;
        let opts = PolyEvalOptions {
            output_scale: Some(out_scale),
            ..Default::default()
        };
        self.eval.eval_power(ct, &p, &opts)
    }
    fn bootstrap(&self, ct: &Ciphertext) -> Result<Ciphertext> {
        match &self.boot {
            Some(b) => {
                // Scales that differ from the default only by float rounding
                // (1e-16 relative, far below the noise) are snapped to it, so
                // that every bootstrap finds its SlotsToCoeffs encoding in the
                // bootstrapper's cache (keyed by the exact input scale).
                let d = self.params.default_scale();
                let s = ct.scale();
                if s != d && (s - d).abs() <= ckks::evaluator::SCALE_TOLERANCE * d {
                    let mut c = ct.clone();
                    c.set_scale(&self.params, d)?;
                    return b.bootstrap(&self.eval, &c);
                }
                b.bootstrap(&self.eval, ct)
            }
            None => Err(ckks::CkksError::InvalidParams(format!(
                "no bootstrapping keys for `{}`",
                self.params.name()
            ))),
        }
    }
}
