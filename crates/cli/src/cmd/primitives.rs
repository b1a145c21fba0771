//! `residue demo --primitives`: a small encrypted computation checked against
//! plain arithmetic.

use anyhow::Result;
use ckks::{
    Complex64, Decryptor, Encoder, Encryptor, EvaluationKeys, Evaluator, KeyGenerator, Params,
};
use serde::Serialize;
use std::sync::Arc;

/// The largest slot error accepted against plain arithmetic: 2^-13.3, far
/// above the encoding and key-switching noise of every listed set at its
/// working level (measured 2^-21 .. 2^-29) and far below a collapsed scale
/// (2^-7 .. 2^-11 when rescaling by a bootstrapping prime).
pub const MAX_ERROR: f64 = 1e-4;

/// Arguments of the primitive check.
pub struct Args {
    /// Parameter set name.
    pub params: String,
    /// Print JSON.
    pub json: bool,
    /// Also write the JSON report here.
    pub json_out: Option<std::path::PathBuf>,
}

#[derive(Serialize)]
struct Report {
    params: String,
    security_bits: Option<u32>,
    slots: usize,
    computation: &'static str,
    level_in: usize,
    level_out: usize,
    precision_bits: f64,
    max_abs_error: f64,
    bound: f64,
}

/// Runs the primitive check: y = rotate(x, 1) * x + 0.5 * x on encrypted x.
pub fn run(args: Args) -> Result<()> {
    let params = Params::named(&args.params)?;
    let n = params.max_slots();
    let enc = Encoder::new(params.clone());
    let mut kg = KeyGenerator::new(params.clone());
    let sk = kg.secret_key();
    let pk = kg.public_key(&sk);
    let keys = EvaluationKeys {
        relin: Some(kg.relin_key(&sk)),
        galois: Some(kg.galois_keys(&sk, &[1], false)),
    };
    let eval = Evaluator::new(params.clone(), Arc::new(keys))?;
    let x: Vec<Complex64> = (0..n)
        .map(|i| Complex64::new((i as f64 * 0.001).sin(), 0.0))
        .collect();
    // Where computation happens: below the bootstrapping primes of a
    // bootstrappable set (rescaling by one of those collapses the scale).
    let lvl = ckks::bootstrap::working_level(&params);
    let pt = enc.encode(&x, lvl, params.default_scale(), n)?;
    let ct = Encryptor::new(params.clone()).encrypt_pk(&pk, &pt)?;
    // rotate(x,1) * x, rescaled
    let r = eval.rotate(&ct, 1)?;
    let prod = eval.rescale(&eval.mul_relin(&r, &ct)?)?;
    // 0.5 * x at the product's scale: multiply by 0.5 with a scale factor
    // chosen so that after the rescale both terms carry the same scale.
    let ql = params.q[lvl] as f64;
    let half = eval.rescale(&eval.mul_const(&ct, 0.5, prod.scale() * ql / ct.scale())?)?;
    let y = eval.add(&prod, &half)?;
    let got = enc.decode(&Decryptor::new(&sk).decrypt(&y)?);
    let want: Vec<Complex64> = (0..n).map(|i| x[(i + 1) % n] * x[i] + x[i] * 0.5).collect();
    // NaN-aware: a NaN slot makes the error NaN (and the check below fail).
    let err = super::logit_error::nan_max(got.iter().zip(&want).map(|(a, b)| (a - b).norm()));
    let rep = Report {
        params: params.name().to_string(),
        security_bits: params.security_bits(),
        slots: n,
        computation: "y = rotate(x, 1) * x + 0.5 * x",
        level_in: lvl,
        level_out: y.level(),
        precision_bits: -err.log2(),
        max_abs_error: err,
        bound: MAX_ERROR,
    };
    super::json::emit(args.json, args.json_out.as_deref(), &rep)?;
    if !args.json {
        println!(
            "{} on {} slots with `{}` ({}): max error {:.2e} ({:.1} bits), level {} -> {}",
            rep.computation,
            rep.slots,
            rep.params,
            rep.security_bits
                .map_or("INSECURE".to_string(), |b| format!("{b}-bit")),
            rep.max_abs_error,
            rep.precision_bits,
            rep.level_in,
            rep.level_out
        );
    }
    anyhow::ensure!(
        err < MAX_ERROR,
        "encrypted result differs from plain arithmetic: max error {err:.2e} > {MAX_ERROR:.0e}"
    );
    Ok(())
}
