//! Temporary bridge to the polynomial evaluator (being written in polyeval.rs).

use crate::ciphertext::Ciphertext;
use crate::error::{CkksError, Result};
use crate::evaluator::Evaluator;

/// Chebyshev coefficients of a function on [a, b].
pub struct Chebyshev {
    /// Coefficients c_0..c_d.
    pub coeffs: Vec<f64>,
}

impl Chebyshev {
    /// Interpolates f at the Chebyshev nodes.
    pub fn interpolate(f: impl Fn(f64) -> f64, a: f64, b: f64, degree: usize) -> Self {
        let n = degree + 1;
        let nodes: Vec<f64> = (0..n)
            .map(|k| (std::f64::consts::PI * (k as f64 + 0.5) / n as f64).cos())
            .collect();
        let fx: Vec<f64> = nodes
            .iter()
            .map(|&x| f((b - a) / 2.0 * x + (a + b) / 2.0))
            .collect();
        let coeffs = (0..n)
            .map(|j| {
                let s: f64 = (0..n)
                    .map(|k| {
                        fx[k]
                            * (std::f64::consts::PI * j as f64 * (k as f64 + 0.5) / n as f64).cos()
                    })
                    .sum();
                s * if j == 0 { 1.0 } else { 2.0 } / n as f64
            })
            .collect();
        Self { coeffs }
    }
}

/// Depth of evaluating a degree-d Chebyshev series.
pub fn chebyshev_depth(d: usize) -> usize {
    (usize::BITS - d.leading_zeros()) as usize + 1
}

/// Placeholder until polyeval lands.
pub fn eval_chebyshev(
    _e: &Evaluator,
    _c: &Ciphertext,
    _p: &Chebyshev,
    _s: f64,
) -> Result<Ciphertext> {
    Err(CkksError::Domain(
        "polynomial evaluation not wired yet".into(),
    ))
}
