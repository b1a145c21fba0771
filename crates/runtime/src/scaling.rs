//! Value scales: how far each step's values are divided down in the slots.
//!
//! CKKS bootstrapping refreshes only slot values of bounded magnitude
//! ([`crate::prepare::bootstrap_input_bound`], the engine's documented
//! bound), while a trained network's values
//! reach tens (the shared-source adds' calibrated ranges reach ±52). Every
//! step `v` therefore holds `value / f_v` in its slots, with `f_v` a power
//! of two chosen here and folded into weights and coefficients at no level
//! cost ([`crate::prepare`]).
//!
//! Choice: run the plan with all factors 1 on sample inputs with the
//! unchecked simulator and record each step's largest magnitude; a step's
//! need is that times `margin`, and at least the input range of any
//! activation it feeds (the model's recorded ranges, which cover the
//! training data). Steps joined by additions and taps share one factor;
//! a rotate-and-sum pool's factor is its input's divided by `H W`. Each
//! group's factor is the smallest power of two that brings every member's
//! need within its target: [`crate::prepare::bootstrap_input_bound`] for
//! values that are bootstrapped, [`OTHER_TARGET`] for the rest (which only need to stay
//! far below the modulus).

use compiler::lower::LayerOp;
use compiler::plan::CompiledPlan;
use rayon::prelude::*;

use crate::backend::Backend;
use crate::error::{Result, RuntimeError};
use crate::exec::execute;
use crate::packing::pack_batch;
use crate::prepare::{Prepared, model_hash};
use crate::sim::Simulator;

/// Target slot magnitude of values that are not bootstrapped.
pub const OTHER_TARGET: f64 = 64.0;

/// Default safety factor over the calibrated magnitudes.
pub const DEFAULT_MARGIN: f64 = 2.0;

fn find(p: &mut [usize], mut x: usize) -> usize {
    while p[x] != x {
        p[x] = p[p[x]];
        x = p[x];
    }
    x
}

/// Returns `plan` bound to `folded` (its hash) with value scales
/// calibrated on `samples` (each a `[C, H, W]` input, row-major; a batched
/// plan runs them a batch at a time).
///
/// Errors: no samples, a sample of the wrong size, a plan that does not
/// match the model, or a plan that still fails on the checked simulator
/// with the chosen scales (named step).
pub fn calibrate(
    plan: &CompiledPlan,
    folded: &nn::Graph,
    params: &ckks::Params,
    samples: &[Vec<f64>],
    margin: f64,
) -> Result<CompiledPlan> {
    if samples.is_empty() {
        return Err(RuntimeError::Input(
            "calibration needs at least one sample input".into(),
        ));
    }
    let mut unscaled = plan.clone();
    unscaled.value_scales.clear();
    unscaled.model_hash = model_hash(folded);
    let prep = Prepared::from_folded(&unscaled, folded, params)?;
    let n = plan.nodes.len();
    let mut need = vec![0.0f64; n];
    let sim = Simulator::new(params)
        .with_slots(plan.params.slots)
        .unchecked();
    // A batched plan runs its samples a batch at a time (every image is
    // on its own slots, so the magnitudes are the same as one by one).
    let batch = plan.batch().max(1);
    let runs = samples
        .par_chunks(batch)
        .map(|s| run_sim(&sim, &prep, s))
        .collect::<Result<Vec<_>>>()?;
    for out in runs {
        for ((m, v), f) in need.iter_mut().zip(out.max_abs).zip(&prep.factors) {
            *m = m.max(v.unwrap_or(0.0) * f * margin);
        }
    }
    // Activation ranges as floors on what feeds them.
    for node in &plan.nodes {
        if let LayerOp::PolyAct { range, .. } = node.op {
            let r = range[0].abs().max(range[1].abs());
            if r.is_finite() {
                let u = node.inputs[0];
                need[u] = need[u].max(r);
            }
        }
    }
    // Groups: additions and taps share their inputs' factor.
    let mut parent: Vec<usize> = (0..n).collect();
    for (v, node) in plan.nodes.iter().enumerate() {
        if matches!(node.op, LayerOp::Add | LayerOp::Tap) {
            for &u in &node.inputs {
                let (a, b) = (find(&mut parent, u), find(&mut parent, v));
                parent[a] = b;
            }
        }
    }
    // Pools: f_v = f_in / (H W); their need moves to the input's group.
    // `mult[v]`: f_v = f_root(v) / mult[v].
    let mut mult = vec![1.0f64; n];
    let mut anchor: Vec<usize> = (0..n).collect();
    for (v, node) in plan.nodes.iter().enumerate() {
        if let LayerOp::GlobalAvgPool { .. } = node.op {
            let u = node.inputs[0];
            if find(&mut parent, v) != v
                || plan
                    .nodes
                    .iter()
                    .any(|x| matches!(x.op, LayerOp::Add | LayerOp::Tap) && x.inputs.contains(&v))
            {
                return Err(RuntimeError::Plan(format!(
                    "step {v}: a pooled value joined to an addition is not supported"
                )));
            }
            mult[v] = mult[u] * crate::prepare::pool_divisor(node);
            anchor[v] = anchor[u];
        }
    }
    let mut group_factor = vec![0.0f64; n];
    let boot_bound = crate::prepare::bootstrap_input_bound(params, plan.params.slots);
    for v in 0..n {
        let root = find(&mut parent, anchor[v]);
        let target = if plan.nodes[v].bootstrap {
            boot_bound
        } else {
            OTHER_TARGET
        };
        // slot_v = value_v / f_v = value_v * mult / f_root <= target
        let req = need[v] * mult[v] / target;
        group_factor[root] = group_factor[root].max(req);
    }
    let mut scales = vec![1.0; n];
    for v in 0..n {
        let root = find(&mut parent, anchor[v]);
        let f = group_factor[root].max(1e-6);
        let f = 2f64.powi(f.log2().ceil() as i32);
        scales[v] = f / mult[v];
    }
    let mut out = unscaled;
    out.value_scales = scales;
    // The scaled plan must now pass the checked simulator.
    let prep = Prepared::from_folded(&out, folded, params)?;
    let sim = Simulator::new(params).with_slots(out.params.slots);
    samples
        .par_chunks(batch)
        .map(|s| run_sim(&sim, &prep, s).map(|_| ()))
        .collect::<Result<Vec<()>>>()?;
    Ok(out)
}

/// Runs a prepared plan on the simulator for up to a batch of `[C, H, W]`
/// inputs; the logits are in the returned stats' last step (see
/// [`simulate`]).
fn run_sim(sim: &Simulator, prep: &Prepared, xs: &[Vec<f64>]) -> Result<crate::exec::RunStats> {
    let (_, stats) = simulate_batch_with(sim, prep, xs)?;
    Ok(stats)
}

/// Runs a prepared plan on a simulator for one `[C, H, W]` input and reads
/// out the logits (a batch of one for a batched plan).
pub fn simulate_with(
    sim: &Simulator,
    prep: &Prepared,
    x: &[f64],
) -> Result<(Vec<f64>, crate::exec::RunStats)> {
    let (mut logits, stats) = simulate_batch_with(sim, prep, &[x])?;
    Ok((logits.remove(0), stats))
}

/// Runs a prepared plan on a simulator for 1 to `plan.batch()` `[C, H, W]`
/// inputs at once and reads out each one's logits.
pub fn simulate_batch_with<T: AsRef<[f64]>>(
    sim: &Simulator,
    prep: &Prepared,
    xs: &[T],
) -> Result<(Vec<Vec<f64>>, crate::exec::RunStats)> {
    let plan = &prep.plan;
    let first = &plan.nodes[0];
    let packed = pack_batch(&first.layout_out, xs, prep.factors[0])?;
    let level = first.level_in as usize;
    let cts = packed
        .into_iter()
        .map(|v| sim.encrypt(&v, level, sim.default_scale()))
        .collect::<ckks::Result<Vec<_>>>()?;
    let (out, stats) = execute(sim, prep, cts, &|_| {})?;
    let last = plan.nodes.last().expect("non-empty plan");
    let slots: Vec<Vec<f64>> = out.into_iter().map(|c| c.values).collect();
    let logits = crate::packing::unpack_batch(
        &last.layout_out,
        &slots,
        *prep.factors.last().expect("factors"),
        xs.len(),
    )?;
    Ok((logits, stats))
}

/// Runs a prepared plan on the checked simulator of `params`.
pub fn simulate(
    prep: &Prepared,
    params: &ckks::Params,
    x: &[f64],
) -> Result<(Vec<f64>, crate::exec::RunStats)> {
    simulate_with(
        &Simulator::new(params).with_slots(prep.plan.params.slots),
        prep,
        x,
    )
}
