//! Calibration of the simulator's noise model on the engine.
//!
//! [`measure`] runs the two kinds of step after which the simulator adds
//! noise ([`crate::sim::NoiseModel`]) on real ciphertexts under the caller's
//! keys, and reports the standard deviation of the slot error each leaves:
//!
//! - a fresh public-key encryption of uniform values in `[-1, 1]` at the
//!   highest level computation starts from: its error in units of
//!   `1 / scale` is `fresh_units`;
//! - a linear step: that ciphertext times a plaintext of uniform values in
//!   `[-1, 1]`, rescaled. The error the rescale adds, measured directly
//!   (the decrypted product after the rescale against the same product
//!   decrypted before it), is `rescale_units`;
//! - a bootstrap of uniform values in `[-B, B]`, B the largest magnitude
//!   the value scaling lets reach a bootstrap
//!   ([`crate::prepare::bootstrap_input_bound`]), at the backend's slot
//!   count: `bootstrap_abs`.
//!
//! With these, [`crate::sim::Simulator::with_noise`] predicts the logit
//! error of an encrypted inference (tested in `tests/noise.rs` against real
//! encrypted runs). Needs the secret key: a client-side (or test) tool.

use ckks::{Decryptor, Encoder, Encryptor, PublicKey, SecretKey};
use rand::{Rng, SeedableRng};

use crate::backend::Backend;
use crate::error::Result;
use crate::he::CkksBackend;
use crate::sim::NoiseModel;

/// Standard deviation of `got - want` over the slots.
fn error_sd(got: &[f64], want: &[f64]) -> f64 {
    let n = want.len().max(1) as f64;
    let mean = got.iter().zip(want).map(|(g, w)| g - w).sum::<f64>() / n;
    let var = got
        .iter()
        .zip(want)
        .map(|(g, w)| (g - w - mean).powi(2))
        .sum::<f64>()
        / n;
    var.sqrt()
}

/// Measures the noise model of `backend` (its parameter set, slot count and
/// bootstrapper) with the client's keys; `seed` fixes the test values.
/// `bootstrap_abs` is 0 when the backend does not bootstrap.
///
/// Cost: two encryptions, one plaintext multiplication and rescale, and one
/// bootstrap (tens of seconds at `n16-boot`).
///
/// # Errors
/// Any engine error of those steps (e.g. keys of another parameter set).
pub fn measure(
    backend: &CkksBackend,
    public: &PublicKey,
    secret: &SecretKey,
    seed: u64,
) -> Result<NoiseModel> {
    let params = backend.params().clone();
    let slots = backend.slots();
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
    let mut uniform = |n: usize| -> Vec<f64> { (0..n).map(|_| rng.gen_range(-1.0..1.0)).collect() };
    let x = uniform(slots);
    let w = uniform(slots);
    let enc = Encoder::new(params.clone());
    let mut encryptor = Encryptor::new(params.clone());
    let dec = Decryptor::new(secret);
    let decode = |ct: &ckks::Ciphertext| -> Result<Vec<f64>> {
        let pt = dec.decrypt(ct)?;
        Ok(enc
            .decode(&pt)
            .into_iter()
            .take(slots)
            .map(|z| z.re)
            .collect())
    };
    let top = backend
        .levels_after_bootstrap()
        .unwrap_or(params.max_level())
        .max(1);
    let scale = backend.default_scale();
    let ct = encryptor.encrypt_pk(public, &enc.encode_real(&x, top, scale, slots)?)?;
    let fresh_units = error_sd(&decode(&ct)?, &x) * scale;
    // The plaintext at the prime it is rescaled by, so the scale returns to
    // the default, as the runtime's linear steps do.
    let pt = backend.encode(&w, top, backend.prime(top))?;
    let prod = backend.mul_plain(&ct, &pt)?;
    let before = decode(&prod)?;
    let rescaled = backend.rescale(&prod)?;
    let rescale_units = error_sd(&decode(&rescaled)?, &before) * backend.scale(&rescaled);
    let bootstrap_abs = if backend.levels_after_bootstrap().is_some() {
        let b = crate::prepare::bootstrap_input_bound(&params, slots);
        let xb: Vec<f64> = x.iter().map(|v| v * b).collect();
        let low = encryptor.encrypt_pk(public, &enc.encode_real(&xb, 0, scale, slots)?)?;
        let out = backend.bootstrap(&low)?;
        error_sd(&decode(&out)?, &xb)
    } else {
        0.0
    };
    Ok(NoiseModel {
        fresh_units,
        rescale_units,
        bootstrap_abs,
    })
}
