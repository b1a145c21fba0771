//! Shared helpers of the runtime tests: small random residual and
//! Dirac + shared-source nets whose values exceed 1, compiled and
//! calibrated for a parameter set.
#![allow(dead_code)]

use std::sync::Arc;

use compiler::plan::{Batch, CompileOptions, CompiledPlan, KeyMode, Report, compile};
use nn::Tensor;

/// A zoo net of `name` on a 1x`size`x`size` input at width `width`, random
/// weights (seeded), activations that amplify (so values exceed 1).
pub fn net(name: &str, size: usize, width: f64, seed: u64) -> nn::Graph {
    let mut cfg = nn::zoo::ZooConfig::from_name(name, 1, [size, size], 10).unwrap();
    cfg.width = width;
    cfg.act = nn::graph::PolyAct {
        coeffs: vec![0.05, 1.2, 0.1],
        range: [-4.0, 4.0],
    };
    nn::zoo::build_random(&cfg, seed).unwrap()
}

/// A deterministic input in [0, 1].
pub fn input(size: usize, seed: usize) -> Vec<f64> {
    (0..size * size)
        .map(|i| ((i + 7 * seed) as f64 * 0.618_034).fract())
        .collect()
}

/// Compiles `g` for `params` and calibrates its value scales on `samples`.
pub fn plan(g: &nn::Graph, params: &Arc<ckks::Params>, samples: &[Vec<f64>]) -> CompiledPlan {
    plan_batched(g, params, samples, Batch::Fixed(1))
}

/// As [`plan`], with `batch` images per ciphertext.
pub fn plan_batched(
    g: &nn::Graph,
    params: &Arc<ckks::Params>,
    samples: &[Vec<f64>],
    batch: Batch,
) -> CompiledPlan {
    let set = runtime::paramset::param_set(params);
    let opts = CompileOptions {
        params: Some(set.name.clone()),
        batch,
        ..Default::default()
    };
    let (plan, _) = compile(g, &[set], &opts).unwrap();
    let folded = nn::transform::fold_all(g).unwrap();
    runtime::scaling::calibrate(&plan, &folded, params, samples, 2.0).unwrap()
}

/// As [`plan`], with rotation keys `keys`; also returns the compiler's
/// report.
pub fn plan_with_keys(
    g: &nn::Graph,
    params: &Arc<ckks::Params>,
    samples: &[Vec<f64>],
    keys: KeyMode,
) -> (CompiledPlan, Report) {
    plan_with_keys_batched(g, params, samples, keys, Batch::Fixed(1))
}

/// As [`plan_with_keys`], with `batch` images per ciphertext.
pub fn plan_with_keys_batched(
    g: &nn::Graph,
    params: &Arc<ckks::Params>,
    samples: &[Vec<f64>],
    keys: KeyMode,
    batch: Batch,
) -> (CompiledPlan, Report) {
    let set = runtime::paramset::param_set(params);
    let opts = CompileOptions {
        params: Some(set.name.clone()),
        keys,
        batch,
        ..Default::default()
    };
    let (plan, report) = compile(g, &[set], &opts).unwrap();
    let folded = nn::transform::fold_all(g).unwrap();
    let plan = runtime::scaling::calibrate(&plan, &folded, params, samples, 2.0).unwrap();
    (plan, report)
}

/// The reference logits.
pub fn reference(g: &nn::Graph, size: usize, x: &[f64]) -> Vec<f64> {
    let t = Tensor::new(vec![1, size, size], x.to_vec()).unwrap();
    nn::exec::run(g, &t).unwrap().data
}

/// max |a - b|.
pub fn max_err(a: &[f64], b: &[f64]) -> f64 {
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f64::max)
}
