//! The simulator with the engine's measured noise predicts the logit error
//! of a real encrypted inference (small insecure bootstrappable set).
//!
//! Bound: the measured root-mean-square logit error is between 1/8 and 4
//! times the predicted one. The model errs high (Gaussian noise at the
//! measured magnitudes after every rescale and bootstrap), and one key
//! set's errors scatter: one inference's logit errors are strongly
//! correlated (one noise vector summed into all ten logits), so a single
//! encryption's error scatters by more than 10x from run to run (CI once
//! measured 10.8x below the prediction with the max over one inference);
//! the RMS over six encryptions, and over eight noise seeds for the
//! prediction, measured 0.24x to 0.74x of the prediction for
//! `dirac-shared8` over eight key sets in session 15 (one run's 0.24x failed
//! the earlier 1/4 bound). A model off by the noise of a whole bootstrap or
//! a missing rescale term is off by far more.

mod common;

use common::*;
use runtime::Prepared;
use runtime::client::{ClientKeys, decrypt, encrypt, key_needs};
use runtime::sim::Simulator;

fn check(name: &str) {
    let p = ckks::Params::named("insecure-boot-n12-l9").unwrap();
    let g = net(name, 8, 0.5, 5);
    let samples: Vec<Vec<f64>> = (0..3).map(|s| input(8, s)).collect();
    let plan = plan(&g, &p, &samples);
    let prep = Prepared::new(&plan, &g, &p).unwrap();
    let needs = key_needs(&prep, &p).unwrap();
    let keys = ClientKeys::generate(&p, &needs).unwrap();
    let backend =
        runtime::server::backend(&p, &prep, keys.eval.clone(), keys.boot.clone()).unwrap();
    let model = runtime::noise::measure(&backend, &keys.public, &keys.secret, 1).unwrap();
    // Loose sanity bounds (the prediction below is the real check): a
    // fresh encryption is some hundreds to thousands of units of 1/scale at
    // N = 2^12, a rescale's rounding less; a bootstrap's error lies between
    // 2^-40 and 2^-7.
    assert!(
        model.fresh_units > 1.0 && model.fresh_units < 1e5,
        "{model:?}"
    );
    assert!(model.rescale_units < model.fresh_units, "{model:?}");
    assert!(
        model.bootstrap_abs > 1e-12 && model.bootstrap_abs < 1e-2,
        "{model:?}"
    );
    let x = input(8, 31);
    let want = reference(&g, 8, &x);
    // The noiseless simulator is exact (to float rounding) ...
    let (exact, _) = runtime::scaling::simulate(&prep, &p, &x).unwrap();
    assert!(max_err(&exact, &want) < 1e-9, "{name}");
    // ... so its error with injected noise is the prediction.
    let predicted = rms((0..8).map(|seed| {
        let sim = Simulator::new(&p)
            .with_slots(plan.params.slots)
            .with_noise(model, seed);
        let (got, _) = runtime::scaling::simulate_with(&sim, &prep, &x).unwrap();
        sq_err(&got, &want)
    }));
    let measured = rms((0..6).map(|_| {
        let ct = encrypt(&plan, &p, &keys.public, &x).unwrap();
        let (out, _) = runtime::server::infer(&backend, &prep, &ct, &|_| {}).unwrap();
        sq_err(&decrypt(&p, &keys.secret, &out).unwrap(), &want)
    }));
    let ratio = measured / predicted;
    eprintln!(
        "{name}: {model:?}, RMS logit error measured {measured:.3e}, predicted {predicted:.3e}"
    );
    assert!(
        (1.0 / 8.0..=4.0).contains(&ratio),
        "{name}: RMS logit error measured {measured:.3e}, predicted {predicted:.3e} ({model:?})"
    );
}

/// Sum of squared errors and their count, for an RMS over runs.
fn sq_err(got: &[f64], want: &[f64]) -> (f64, usize) {
    assert_eq!(got.len(), want.len());
    let s = got.iter().zip(want).map(|(g, w)| (g - w).powi(2)).sum();
    (s, want.len())
}

fn rms(parts: impl Iterator<Item = (f64, usize)>) -> f64 {
    let (s, n) = parts.fold((0.0, 0), |(s, n), (a, b)| (s + a, n + b));
    (s / n as f64).sqrt()
}

#[test]
fn noise_model_predicts_resnet8_logit_error() {
    check("resnet8");
}

#[test]
fn noise_model_predicts_dirac_shared8_logit_error() {
    check("dirac-shared8");
}
