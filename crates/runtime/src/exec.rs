//! The plan executor: walks a [`Prepared`] plan over any [`Backend`].
//!
//! For every step it drops each input to the step's `level_in` (levels are
//! lazy: each step runs at the lowest level that still reaches the next
//! bootstrap), runs the step, checks that the result sits at the plan's
//! `level_out`, and bootstraps it where the plan says so. Linear steps are
//! baby-step/giant-step diagonal maps (`compiler::layout::bsgs_split`):
//! `sum_g rot_g(sum_b rot_-g(diag_(g+b)) * rot_b(x))` with the baby
//! rotations of each input ciphertext hoisted, giant steps in parallel, one
//! rescale per output ciphertext, and plaintext diagonals encoded at the
//! step's level with scale `q_level * Delta / scale_in` so that every value
//! leaves the step at exactly the default scale `Delta`.
//!
//! Rotations run with the plan's keys ([`RotationKeys::of_plan`]): a step
//! without a key runs as its decomposition into steps with one
//! ([`rotate_keyed`], [`rotate_hoisted_keyed`]), exactly as the compiler
//! counted it, so [`RunStats::rotations`] equals the plan's rotations.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Instant;

use compiler::layout::{Layout, SumStep, bsgs_split, linear_diagonals_scaled, sum_schedule};
use compiler::plan::{MissingKey, RotationKeys};
use rayon::prelude::*;

use crate::backend::Backend;
use crate::error::{Result, RuntimeError};
use crate::prepare::{LinearStep, Prepared, Step};

/// Where a run is (passed to the progress callback before every step).
#[derive(Debug, Clone)]
pub struct Progress<'a> {
    /// Index of the step about to run.
    pub step: usize,
    /// Steps in the plan.
    pub steps: usize,
    /// Its name.
    pub name: &'a str,
    /// Ciphertext bootstraps done so far.
    pub bootstraps_done: u64,
    /// Ciphertext bootstraps the plan places.
    pub bootstraps_planned: u64,
    /// Seconds since the run started.
    pub elapsed: f64,
}

/// What one run did and where its time went.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct RunStats {
    /// Ciphertext bootstraps done.
    pub bootstraps: u64,
    /// Rotations (hoisted included; a rotation run as a decomposition
    /// counts each of its terms).
    pub rotations: u64,
    /// Plaintext multiplications.
    pub plaintext_multiplies: u64,
    /// Polynomial evaluations (per ciphertext).
    pub polynomials: u64,
    /// Seconds per kind of work: `linear`, `activation`, `pool`, `add`,
    /// `bootstrap`.
    pub seconds: BTreeMap<String, f64>,
    /// Total seconds.
    pub total_seconds: f64,
    /// Per step: the largest slot magnitude of its result (before its
    /// bootstrap), where the backend can see it (the simulator).
    pub max_abs: Vec<Option<f64>>,
    /// Per step: level and scale of its result (before its bootstrap).
    pub trace: Vec<(usize, f64)>,
    /// Kind of work (as in `seconds`) -> engine kernel
    /// ([`ckks::profile::Kernel::name`]) -> time and calls, when the
    /// engine's kernel profile is on ([`ckks::profile::set_enabled`]);
    /// empty otherwise. The profile is process-wide: runs in parallel in
    /// one process count in each other's.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub kernels: BTreeMap<String, KernelTimes>,
}

/// Time and calls of one engine kernel ([`ckks::profile`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct KernelTime {
    /// Milliseconds summed over threads (inclusive: NTTs inside ModUp count
    /// in both).
    pub ms: f64,
    /// Times the kernel ran.
    pub calls: u64,
}

/// Kernel name -> time and calls.
pub type KernelTimes = BTreeMap<String, KernelTime>;

/// Accumulates the engine's kernel profile by kind of work: each
/// [`Self::lap`] charges what ran since the previous one.
struct KernelLaps {
    last: Option<Vec<(ckks::profile::Kernel, f64, u64)>>,
}

impl KernelLaps {
    fn start() -> Self {
        Self {
            last: ckks::profile::enabled().then(ckks::profile::snapshot),
        }
    }

    fn lap(&mut self, kind: &str, into: &mut BTreeMap<String, KernelTimes>) {
        let Some(last) = &self.last else { return };
        let now = ckks::profile::snapshot();
        let by_kind = into.entry(kind.to_string()).or_default();
        for ((k, ms, calls), (_, ms0, calls0)) in now.iter().zip(last) {
            if calls > calls0 {
                let t = by_kind.entry(k.name().to_string()).or_default();
                t.ms += ms - ms0;
                t.calls += calls - calls0;
            }
        }
        self.last = Some(now);
    }
}

fn step_err(prep: &Prepared, i: usize, e: ckks::CkksError) -> RuntimeError {
    let n = &prep.plan.nodes[i];
    RuntimeError::Step {
        index: i,
        name: n.name.clone(),
        kind: format!("{:?}", n.op)
            .split([' ', '{', '('])
            .next()
            .unwrap_or("")
            .to_lowercase(),
        source: e,
    }
}

/// Runs `prep` on the encrypted (or simulated) input `input` (the
/// ciphertexts of step 0, at the plan's input level) and returns the
/// ciphertexts of the last step.
pub fn execute<B: Backend>(
    b: &B,
    prep: &Prepared,
    input: Vec<B::Ct>,
    progress: &(dyn Fn(&Progress) + Sync),
) -> Result<(Vec<B::Ct>, RunStats)> {
    let plan = &prep.plan;
    let n = plan.nodes.len();
    if let Some(l) = b.levels_after_bootstrap()
        && plan.nodes.iter().any(|x| x.bootstrap)
        && l != plan.params.l_eff as usize
    {
        return Err(RuntimeError::Plan(format!(
            "plan assumes L_eff {}, the backend's bootstrap leaves {l}",
            plan.params.l_eff
        )));
    }
    if input.len() != plan.nodes[0].layout_out.cts() {
        return Err(RuntimeError::Input(format!(
            "the plan's input is {} ciphertext(s), got {}",
            plan.nodes[0].layout_out.cts(),
            input.len()
        )));
    }
    // Remaining reads of each value, to free it after its last consumer.
    let mut uses = vec![0usize; n];
    for node in &plan.nodes {
        for &u in &node.inputs {
            uses[u] += 1;
        }
    }
    let keys = RotationKeys::of_plan(plan);
    let start = Instant::now();
    let mut stats = RunStats {
        max_abs: vec![None; n],
        ..Default::default()
    };
    let mut vals: Vec<Option<Vec<B::Ct>>> = vec![None; n];
    let mut laps = KernelLaps::start();
    for (i, node) in plan.nodes.iter().enumerate() {
        progress(&Progress {
            step: i,
            steps: n,
            name: &node.name,
            bootstraps_done: stats.bootstraps,
            bootstraps_planned: plan.bootstraps,
            elapsed: start.elapsed().as_secs_f64(),
        });
        let t0 = Instant::now();
        let lv = node.level_in as usize;
        // Step `u`'s value dropped to `level`.
        let fetch_at = |u: usize, level: usize| -> Result<Vec<B::Ct>> {
            let v = vals[u].as_ref().ok_or_else(|| {
                RuntimeError::Plan(format!("step {i} reads step {u}, already freed"))
            })?;
            v.iter()
                .map(|c| dropped_to(b, c, level))
                .collect::<ckks::Result<Vec<_>>>()
                .map_err(|e| step_err(prep, i, e))
        };
        let fetch = |u: usize| fetch_at(u, lv);
        let (out, kind) = match &prep.steps[i] {
            Step::Input => {
                let v = input
                    .iter()
                    .map(|c| {
                        if b.level(c) < lv {
                            Err(ckks::CkksError::NotEnoughLevels {
                                needed: lv,
                                have: b.level(c),
                            })
                        } else {
                            dropped_to(b, c, lv)
                        }
                    })
                    .collect::<ckks::Result<Vec<_>>>()
                    .map_err(|e| step_err(prep, i, e))?;
                (v, "input")
            }
            Step::Tap => (fetch(node.inputs[0])?, "add"),
            &Step::Add { scaled_skip } => {
                // A scaled skip is read one level higher.
                let skip_level = lv + usize::from(scaled_skip.is_some());
                let (x, y) = (
                    fetch(node.inputs[0])?,
                    fetch_at(node.inputs[1], skip_level)?,
                );
                let v = x
                    .iter()
                    .zip(&y)
                    .map(|(p, q)| match scaled_skip {
                        None => add_aligned(b, p, q, lv),
                        Some((m, level)) => add_scaled(b, p, q, lv, m, level),
                    })
                    .collect::<ckks::Result<Vec<_>>>()
                    .map_err(|e| step_err(prep, i, e))?;
                (v, "add")
            }
            Step::Poly(coeffs) => {
                let x = fetch(node.inputs[0])?;
                let v = x
                    .par_iter()
                    .map(|c| b.poly(c, coeffs, b.default_scale()))
                    .collect::<ckks::Result<Vec<_>>>()
                    .map_err(|e| step_err(prep, i, e))?;
                stats.polynomials += v.len() as u64;
                (v, "activation")
            }
            &Step::Square {
                shift,
                negate,
                constant,
            } => {
                let x = fetch(node.inputs[0])?;
                let v = x
                    .par_iter()
                    .map(|c| square_step(b, c, shift, negate, constant))
                    .collect::<ckks::Result<Vec<_>>>()
                    .map_err(|e| step_err(prep, i, e))?;
                stats.polynomials += v.len() as u64;
                (v, "activation")
            }
            Step::GlobalPool => {
                let x = fetch(node.inputs[0])?;
                let l = &node.layout_in;
                let mut rots = 0u64;
                let v = x
                    .iter()
                    .map(|c| {
                        let (r, k) = global_pool(b, c, l, &keys)?;
                        rots += k;
                        Ok(r)
                    })
                    .collect::<ckks::Result<Vec<_>>>()
                    .map_err(|e| step_err(prep, i, e))?;
                stats.rotations += rots;
                (v, "pool")
            }
            Step::Linear(step) => {
                let x = fetch(node.inputs[0])?;
                let (v, rots, pm) =
                    linear(b, &x, &node.layout_in, &node.layout_out, step, lv, &keys)
                        .map_err(|e| step_err(prep, i, e))?;
                stats.rotations += rots;
                stats.plaintext_multiplies += pm;
                (v, "linear")
            }
        };
        for c in &out {
            if b.level(c) != node.level_out as usize {
                return Err(RuntimeError::Plan(format!(
                    "step {i} `{}`: result at level {}, the plan says {}",
                    node.name,
                    b.level(c),
                    node.level_out
                )));
            }
        }
        stats.max_abs[i] = out.iter().filter_map(|c| b.max_abs(c)).reduce(f64::max);
        if let Some(c) = out.first() {
            stats.trace.push((b.level(c), b.scale(c)));
        }
        *stats.seconds.entry(kind.to_string()).or_default() += t0.elapsed().as_secs_f64();
        laps.lap(kind, &mut stats.kernels);
        for &u in &node.inputs {
            uses[u] -= 1;
            if uses[u] == 0 {
                vals[u] = None;
            }
        }
        let out = if node.bootstrap {
            let t1 = Instant::now();
            let mut r = Vec::with_capacity(out.len());
            for c in &out {
                r.push(b.bootstrap(c).map_err(|e| step_err(prep, i, e))?);
                stats.bootstraps += 1;
                progress(&Progress {
                    step: i,
                    steps: n,
                    name: &node.name,
                    bootstraps_done: stats.bootstraps,
                    bootstraps_planned: plan.bootstraps,
                    elapsed: start.elapsed().as_secs_f64(),
                });
            }
            *stats.seconds.entry("bootstrap".into()).or_default() += t1.elapsed().as_secs_f64();
            laps.lap("bootstrap", &mut stats.kernels);
            r
        } else {
            out
        };
        vals[i] = Some(out);
    }
    stats.total_seconds = start.elapsed().as_secs_f64();
    let last = vals[n - 1]
        .take()
        .ok_or_else(|| RuntimeError::Plan("no output".into()))?;
    Ok((last, stats))
}

/// `c` dropped to `level` if it sits higher (a copy otherwise).
fn dropped_to<B: Backend>(b: &B, c: &B::Ct, level: usize) -> ckks::Result<B::Ct> {
    if b.level(c) > level {
        b.drop_level(c, level)
    } else {
        Ok(c.clone())
    }
}

/// `p + q` at `level`: both dropped there; if their scales differ, the one
/// that arrived from a higher level is brought to the other's scale by the
/// exact adjustment of the engine (one rescale it would have lost anyway).
fn add_aligned<B: Backend>(b: &B, p: &B::Ct, q: &B::Ct, level: usize) -> ckks::Result<B::Ct> {
    let x = if b.level(p) > level {
        b.drop_level(p, level)?
    } else {
        p.clone()
    };
    let y = if b.level(q) > level {
        b.drop_level(q, level)?
    } else {
        q.clone()
    };
    let (sx, sy) = (b.scale(&x), b.scale(&y));
    if (sx - sy).abs() <= ckks::evaluator::SCALE_TOLERANCE * sx.abs().max(sy.abs()) {
        return b.add(&x, &y);
    }
    if b.level(p) > level {
        b.add(&b.adjust(p, level, sy)?, &y)
    } else if b.level(q) > level {
        b.add(&x, &b.adjust(q, level, sx)?)
    } else {
        Err(ckks::CkksError::ScaleMismatch(sx, sy))
    }
}

/// One product of a giant-step group: (input ciphertext, baby step,
/// diagonal pre-rotated by minus the giant step). Groups are keyed by
/// (output ciphertext, giant step).
type Term = (usize, i64, Vec<f64>);

fn rotated(v: &[f64], r: i64) -> Vec<f64> {
    let n = v.len() as i64;
    (0..n).map(|s| v[(s + r).rem_euclid(n) as usize]).collect()
}

/// The scale a fused square's input lands at so that its square, rescaled
/// at `level`, is exactly the default scale: `sqrt(Delta q_level)`.
fn square_input_scale<B: Backend>(b: &B, level: usize) -> f64 {
    (b.default_scale() * b.prime(level)).sqrt()
}

/// `p + m q` for a fused square at `square_level`, `p` at `level` and `q`
/// at `level + 1` (as the executor fetched them): `q` multiplied by the
/// constant `m` at the plaintext scale that lands it at `p`'s scale (the
/// square's input scale) after one rescale, then added.
fn add_scaled<B: Backend>(
    b: &B,
    p: &B::Ct,
    q: &B::Ct,
    level: usize,
    m: f64,
    square_level: usize,
) -> ckks::Result<B::Ct> {
    let pt_scale = b.prime(level + 1) * square_input_scale(b, square_level) / b.scale(q);
    let mq = b.rescale(&b.mul_const(q, m, pt_scale)?)?;
    b.add(p, &mq)
}

/// A fused quadratic ([`Step::Square`]) on one ciphertext: `x + shift`,
/// squared (one level; the linear step before it landed `x` at the scale
/// whose square rescales to the default), negated when `negate`, plus
/// `constant`; the output is at the default scale.
fn square_step<B: Backend>(
    b: &B,
    x: &B::Ct,
    shift: f64,
    negate: bool,
    constant: f64,
) -> ckks::Result<B::Ct> {
    let mut y = b.square(&b.add_const(x, shift)?)?;
    if negate {
        y = b.neg(&y)?;
    }
    b.add_const(&y, constant)
}

/// One linear step with the rotation keys `keys`; returns the output
/// ciphertexts, rotations and plaintext multiplications done.
///
/// Errors: the backend's, and a rotation that `keys` cannot run
/// ([`rotate_keyed`]).
pub fn linear<B: Backend>(
    b: &B,
    xs: &[B::Ct],
    lin: &Layout,
    lout: &Layout,
    step: &LinearStep,
    level: usize,
    keys: &RotationKeys,
) -> ckks::Result<(Vec<B::Ct>, u64, u64)> {
    let slots = lin.slots;
    let diags = linear_diagonals_scaled(
        lin,
        lout,
        step.stride,
        &step.taps,
        step.out_scale.as_deref(),
    );
    let nout = lout.cts();
    let mut babies: Vec<BTreeSet<i64>> = vec![BTreeSet::new(); xs.len()];
    let mut groups: BTreeMap<(usize, i64), Vec<Term>> = BTreeMap::new();
    for d in diags {
        if d.ct_in >= xs.len() || d.ct_out >= nout {
            return Err(ckks::CkksError::Domain(format!(
                "diagonal between ciphertexts {} -> {} outside the layouts",
                d.ct_in, d.ct_out
            )));
        }
        let (bb, g) = bsgs_split(d.offset, step.bsgs_baby, step.bsgs_centred, slots);
        babies[d.ct_in].insert(bb);
        let vals = if g == 0 {
            d.values
        } else {
            rotated(&d.values, -g)
        };
        groups
            .entry((d.ct_out, g))
            .or_default()
            .push((d.ct_in, bb, vals));
    }
    let in_scale = xs.first().map(|c| b.scale(c)).unwrap_or(1.0);
    // The output scale: Delta, or for a fused square at level `l` the
    // scale whose square divided by q_l is Delta.
    let out_scale = match step.square_level {
        Some(l) => square_input_scale(b, l),
        None => b.default_scale(),
    };
    let pt_scale = b.prime(level) * out_scale / in_scale;
    let mut rots = 0u64;
    let rotated_in: Vec<BTreeMap<i64, B::Ct>> = xs
        .iter()
        .zip(&babies)
        .map(|(x, set)| {
            let ks: Vec<i64> = set.iter().copied().collect();
            let (r, n) = rotate_hoisted_keyed(b, keys, x, &ks)?;
            rots += n;
            Ok(ks.into_iter().zip(r).collect())
        })
        .collect::<ckks::Result<_>>()?;
    let pm: u64 = groups.values().map(|t| t.len() as u64).sum();
    for (_, g) in groups.keys() {
        rots += keys.terms(*g).map_err(missing)?.len() as u64;
    }
    // Each giant step's sum of products, rotated by all but the last term
    // of its step's decomposition (a step with a key: none); the last terms
    // run in one `rotate_sum` per output ciphertext, which divides every
    // giant rotation's key-switched part by P once for the whole output.
    let parts: Vec<(usize, B::Ct, i64)> = groups
        .into_par_iter()
        .map(|((co, g), terms)| {
            let mut acc: Option<B::Ct> = None;
            for (ci, bb, vals) in terms {
                let pt = b.encode(&vals, level, pt_scale)?;
                acc = Some(b.mul_plain_acc(acc, &rotated_in[ci][&bb], &pt)?);
            }
            let acc = acc.expect("groups are never empty");
            if g == 0 {
                return Ok((co, acc, 0));
            }
            let t = keys.terms(g).map_err(missing)?;
            let (&last, before) = t.split_last().expect("a nonzero step has terms");
            Ok((co, chain(b, acc, g, before, t.len() > 1)?, last))
        })
        .collect::<ckks::Result<_>>()?;
    let mut by_out: Vec<Vec<(&B::Ct, i64)>> = vec![Vec::new(); nout];
    for (co, c, k) in &parts {
        by_out[*co].push((c, *k));
    }
    let sums: Vec<Option<B::Ct>> = by_out
        .iter()
        .map(|t| (!t.is_empty()).then(|| b.rotate_sum(t)).transpose())
        .collect::<ckks::Result<_>>()?;
    let bias = step
        .bias
        .as_ref()
        .map(|bv| compiler::plan::bias_slots(lout, bv));
    sums.into_iter()
        .enumerate()
        .map(|(co, s)| {
            let s = match s {
                Some(s) => s,
                // No weight reaches this output ciphertext: zero times an input.
                None => b.mul_plain(&xs[0], &b.encode(&[], level, pt_scale)?)?,
            };
            let mut out = b.rescale(&s)?;
            if let Some(bias) = &bias {
                let pt = b.encode(&bias[co], b.level(&out), b.scale(&out))?;
                out = b.add_plain(&out, &pt)?;
            }
            Ok(out)
        })
        .collect::<ckks::Result<Vec<_>>>()
        .map(|v| (v, rots, pm))
}

/// Rotate-and-sum over the rows (stride [`Layout::row_stride`]), then the
/// columns (stride [`Layout::col_stride`]) of one ciphertext
/// ([`compiler::layout::sum_schedule`]); per image when batched.
fn global_pool<B: Backend>(
    b: &B,
    c: &B::Ct,
    l: &Layout,
    keys: &RotationKeys,
) -> ckks::Result<(B::Ct, u64)> {
    let mut ct = c.clone();
    let mut rots = 0u64;
    for (count, stride) in [(l.height, l.row_stride()), (l.width, l.col_stride())] {
        let x0 = ct.clone();
        for st in sum_schedule(count) {
            match st {
                SumStep::Double(m) => {
                    let (r, n) = rotate_keyed(b, keys, &ct, m as i64 * stride)?;
                    ct = b.add(&ct, &r)?;
                    rots += n;
                }
                SumStep::AddOne => {
                    let (r, n) = rotate_keyed(b, keys, &ct, stride)?;
                    ct = b.add(&x0, &r)?;
                    rots += n;
                }
            }
        }
    }
    Ok((ct, rots))
}

/// A rotation the keys cannot run, as the engine's error type (the step
/// wraps it with its name).
fn missing(e: MissingKey) -> ckks::CkksError {
    ckks::CkksError::Domain(e.to_string())
}

/// Applies `terms` (the decomposition of a rotation by `k`) to `ct` one by
/// one; a backend error of a decomposed rotation names `k` too.
fn chain<B: Backend>(
    b: &B,
    mut ct: B::Ct,
    k: i64,
    terms: &[i64],
    composed: bool,
) -> ckks::Result<B::Ct> {
    for &t in terms {
        ct = b.rotate(&ct, t).map_err(|e| {
            if composed {
                ckks::CkksError::Domain(format!("rotation by {k} (run as {terms:?}): {e}"))
            } else {
                e
            }
        })?;
    }
    Ok(ct)
}

/// Rotates `ct` left by `k` with the keys `keys`: one rotation when `k`
/// has a key, else one per term of its decomposition
/// ([`RotationKeys::terms`]). Returns the result and the rotations done.
///
/// Errors: a term without a key in `keys` (`CkksError::Domain` naming the
/// step and the term), and the backend's (a missing key among the
/// backend's own keys: `MissingRotationKey`, or `Domain` naming the
/// decomposed step).
pub fn rotate_keyed<B: Backend>(
    b: &B,
    keys: &RotationKeys,
    ct: &B::Ct,
    k: i64,
) -> ckks::Result<(B::Ct, u64)> {
    let terms = keys.terms(k).map_err(missing)?;
    let n = terms.len() as u64;
    Ok((chain(b, ct.clone(), k, &terms, n > 1)?, n))
}

/// Rotations of `ct` by every step of `ks` (one result per step, 0
/// included) with the keys `keys`: the steps with a key and the first term
/// of the others' decompositions hoisted ([`Backend::rotate_hoisted`]), the
/// remaining terms as full rotations ([`RotationKeys::hoisted`]). Returns
/// the results and the rotations done.
///
/// Errors: as [`rotate_keyed`].
pub fn rotate_hoisted_keyed<B: Backend>(
    b: &B,
    keys: &RotationKeys,
    ct: &B::Ct,
    ks: &[i64],
) -> ckks::Result<(Vec<B::Ct>, u64)> {
    let h = keys.hoisted(ks).map_err(missing)?;
    let mut n = h.hoisted.len() as u64;
    let mut base: BTreeMap<i64, B::Ct> = h
        .hoisted
        .iter()
        .copied()
        .zip(b.rotate_hoisted(ct, &h.hoisted)?)
        .collect();
    // How many results start from each hoisted rotation: the last one takes
    // it instead of a copy.
    let mut left: BTreeMap<i64, usize> = BTreeMap::new();
    for (first, _) in &h.chains {
        *left.entry(*first).or_default() += 1;
    }
    let mut starts = Vec::with_capacity(ks.len());
    for (first, rest) in &h.chains {
        n += rest.len() as u64;
        let c = left.get_mut(first).expect("counted above");
        *c -= 1;
        let start = match (*first, *c) {
            (0, _) => ct.clone(),
            (f, 0) => base.remove(&f).expect("hoisted above"),
            (f, _) => base[&f].clone(),
        };
        starts.push(start);
    }
    let out = starts
        .into_par_iter()
        .zip(ks.par_iter().zip(&h.chains))
        .map(|(start, (&k, (_, rest)))| chain(b, start, k, rest, !rest.is_empty()))
        .collect::<ckks::Result<Vec<_>>>()?;
    Ok((out, n))
}
