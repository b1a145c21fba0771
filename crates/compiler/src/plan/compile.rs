//! Compilation: parameter choice, bootstrap placement under the chosen
//! objective, and building the [`CompiledPlan`] and its [`Report`].

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};

use super::{
    Baseline, Candidate, CompiledPlan, KeyMode, LayerReport, PLAN_VERSION, PLAN_VERSION_UNBATCHED,
    PlanNode, PlanParams, Report, SkipReport, SkipsTotal, apply_keys, budget_keys,
    network_key_bytes, pow2_keys,
};
use crate::cost::{CkksOp, OpCounts};
use crate::error::CompileError;
use crate::level::{
    LevelBudget, LevelGraph, LevelOpKind, NodeId, Placement, SkipKind, lazy_levels,
};
use crate::lower::{LayerOp, Lowered, lower, lower_batched};
use crate::params::ParamSet;
use crate::placement::{Objective, Strategy, place};

/// What placement minimizes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Goal {
    /// Estimated time (bootstraps weighted by ciphertexts, operations by
    /// level).
    #[default]
    Time,
    /// Number of ciphertext bootstraps.
    Count,
}

/// How many images each ciphertext carries ([`crate::layout`], batching).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Batch {
    /// The largest power of two `B` with `B * P` at most the set's slots,
    /// `P` the slots one image needs (1 when one image needs them all).
    Auto,
    /// Exactly this many (a power of two; 1: unbatched). More images than
    /// [`Batch::Auto`] fits each get `slots / B` slots, and a tensor larger
    /// than that spills over several ciphertexts (each holding all `B`
    /// images): more bootstraps per inference, fewer per image.
    Fixed(usize),
}

impl Default for Batch {
    fn default() -> Self {
        Batch::Fixed(1)
    }
}

impl std::str::FromStr for Batch {
    type Err = CompileError;

    /// `auto` or a power of two.
    fn from_str(s: &str) -> Result<Self, CompileError> {
        if s == "auto" {
            return Ok(Batch::Auto);
        }
        match s.parse::<usize>() {
            Ok(b) if b >= 1 && b.is_power_of_two() => Ok(Batch::Fixed(b)),
            _ => Err(CompileError::Batch(format!(
                "`{}` is neither `auto` nor a power of two",
                s.escape_debug()
            ))),
        }
    }
}

/// How to compile.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CompileOptions {
    /// A parameter set name, or `None` for automatic choice (least
    /// estimated time).
    pub params: Option<String>,
    /// Placement algorithm.
    pub strategy: Strategy,
    /// Placement objective.
    pub goal: Goal,
    /// Attribute bootstraps and time to each skip connection (one extra
    /// placement per addition).
    pub attribute_skips: bool,
    /// Rotation keys to generate.
    pub keys: KeyMode,
    /// Images per ciphertext.
    #[serde(default)]
    pub batch: Batch,
    /// Quadratic activations after a linear layer at depth 1
    /// ([`crate::lower::fuse_squares`]); `false` evaluates every
    /// activation as a polynomial of depth `ceil(log2(degree + 1))`.
    #[serde(default = "yes")]
    pub fuse_squares: bool,
    /// Let the input be encrypted above `L_eff`, up to the set's
    /// `input_level`, where that saves a ciphertext bootstrap (see
    /// `effective_params`); `false` keeps it at `L_eff` (smaller rotation
    /// keys).
    #[serde(default = "yes")]
    pub fresh_levels: bool,
    /// With `fresh_levels`, encrypt above `L_eff` wherever the plan there
    /// is estimated faster, not only where it saves a bootstrap: at the
    /// same bootstraps the fresh levels can still place them where fewer
    /// ciphertexts pass, for rotation keys about 1.8x the bytes for the
    /// layers up there.
    #[serde(default)]
    pub fresh_when_faster: bool,
}

fn yes() -> bool {
    true
}

impl Default for CompileOptions {
    fn default() -> Self {
        Self {
            params: Some(ParamSet::default_name().to_string()),
            strategy: Strategy::Optimal,
            goal: Goal::Time,
            attribute_skips: true,
            keys: KeyMode::PerStep,
            batch: Batch::Fixed(1),
            fuse_squares: true,
            fresh_levels: true,
            fresh_when_faster: false,
        }
    }
}

/// The time objective of a lowered net under a parameter set.
pub fn time_objective(low: &Lowered, p: &ParamSet) -> Objective {
    let maxl = p.l_eff.max(p.input_level);
    let boot = p.bootstrap_seconds(low.slots());
    // Encodes at the plan's slot count.
    let costs = p.costs.for_slots(low.slots());
    Objective {
        op: low
            .layers
            .iter()
            .map(|l| {
                (0..=maxl)
                    .map(|lv| l.cost.counts.seconds(&costs, lv))
                    .collect()
            })
            .collect(),
        boot: low
            .level
            .nodes
            .iter()
            .map(|n| n.cts as f64 * boot)
            .collect(),
    }
}

fn objective(low: &Lowered, p: &ParamSet, goal: Goal) -> Objective {
    match goal {
        Goal::Time => time_objective(low, p),
        Goal::Count => Objective::count(&low.level),
    }
}

fn budget(p: &ParamSet) -> LevelBudget {
    LevelBudget {
        l_eff: p.l_eff,
        input_level: p.input_level,
    }
}

/// `p` as a plan uses it: the input encrypted above `L_eff` (up to
/// `p.input_level`, the levels right above `L_eff` whose primes match the
/// scale) only where that saves a ciphertext bootstrap (with
/// [`CompileOptions::fresh_when_faster`], also where it is estimated
/// faster at no more bootstraps). Those levels are
/// not free otherwise: every rotation key a layer up there uses is made at
/// that level (for `n16-boot`, 13 primes in 3 key-switching digits instead
/// of 10 in 2, about 1.8x the bytes), for a few percent of linear time at
/// most; where no bootstrap goes away the input stays at `L_eff` and the
/// keys stay as small as they were.
///
/// Errors: placement errors.
fn effective_params(
    low: &Lowered,
    p: &ParamSet,
    opts: &CompileOptions,
) -> Result<ParamSet, CompileError> {
    let (working, fresh) = input_levels(p, opts);
    let Some(fresh) = fresh else {
        return Ok(working);
    };
    let cost = |q: &ParamSet| -> Result<(u64, f64), CompileError> {
        let (kl, _) = keyed(low, q, opts)?;
        let (b, obj) = (budget(q), objective(&kl, q, opts.goal));
        let s = place(&kl.level, b, &obj, opts.strategy)?;
        let t = time_objective(&kl, q).evaluate(&kl.level, b, &s.placement)?;
        Ok((ct_boots(&kl.level, &s.placement), t))
    };
    Ok(if fresh_pays(cost(&fresh)?, cost(&working)?, opts) {
        fresh
    } else {
        working
    })
}

/// The input levels `p` offers: encrypted at L_eff (the working set), and,
/// where `opts.fresh_levels` is on and the set has levels above L_eff, on
/// those fresh levels (`p` itself).
fn input_levels(p: &ParamSet, opts: &CompileOptions) -> (ParamSet, Option<ParamSet>) {
    let working = ParamSet {
        input_level: p.l_eff.min(p.input_level),
        ..p.clone()
    };
    let fresh = (opts.fresh_levels && p.input_level > p.l_eff).then(|| p.clone());
    (working, fresh)
}

/// Whether a network encrypts its input on the fresh levels, given the
/// (ciphertext bootstraps, estimated seconds) of its plan there and at
/// `L_eff`: where that saves it a bootstrap (a rotation key used up there
/// is about 1.8x the bytes), or with [`CompileOptions::fresh_when_faster`]
/// wherever it is estimated faster.
fn fresh_pays(fresh: (u64, f64), working: (u64, f64), opts: &CompileOptions) -> bool {
    fresh.0 < working.0 || (opts.fresh_when_faster && fresh.0 <= working.0 && fresh.1 < working.1)
}

fn ct_boots(g: &LevelGraph, pl: &Placement) -> u64 {
    pl.sites().iter().map(|&v| g.nodes[v].cts as u64).sum()
}

fn restrict(obj: &Objective, map: &[NodeId]) -> Objective {
    Objective {
        op: map.iter().map(|&v| obj.op[v].clone()).collect(),
        boot: map.iter().map(|&v| obj.boot[v]).collect(),
    }
}

/// Lowers `g` for `p` (per-step rotation counts; the key mode is applied
/// by [`keyed`]).
fn lower_for(g: &nn::Graph, p: &ParamSet, opts: &CompileOptions) -> Result<Lowered, CompileError> {
    let mut low = lower_packed(g, p, opts.batch)?;
    if opts.fuse_squares {
        crate::lower::fuse_squares(g, &mut low);
    }
    Ok(low)
}

/// Lowers `g` for `p` at `batch` (the packing: slots per ciphertext and
/// images per block), before any fusion.
fn lower_packed(g: &nn::Graph, p: &ParamSet, batch: Batch) -> Result<Lowered, CompileError> {
    let top = p.l_eff;
    let w = p.layout_costs.unwrap_or((
        p.costs.at(CkksOp::RotateHoisted, top),
        p.costs.at(CkksOp::Rotate, top),
    ));
    let mut low = lower(g, p.slots(), w)?;
    // The slots one image needs (all of them if a tensor spills over
    // several ciphertexts).
    let need = low.slots_needed();
    let b = match batch {
        Batch::Auto => (p.slots() / need.max(1)).max(1),
        Batch::Fixed(b) => b,
    };
    if b == 0 || !b.is_power_of_two() {
        return Err(CompileError::Batch(format!("{b} is not a power of two")));
    }
    if b > 1 {
        if need.saturating_mul(b) > p.slots() {
            // Each image gets a block of `slots / b` slots and a tensor
            // larger than its block spills over several ciphertexts (every
            // ciphertext of the tensor holds all `b` images).
            return lower_batched(g, p.slots(), b, w).map_err(|e| {
                // The largest batch that lowers (spilled), for the message.
                let fit = (p.slots() / need.max(1)).max(1);
                let mut most = b / 2;
                while most > fit && lower_batched(g, p.slots(), most, w).is_err() {
                    most /= 2;
                }
                CompileError::Batch(format!(
                    "{b} images do not fit the {} slots of `{}` even spilled over several \
                     ciphertexts ({e}): at most {most} per inference ({fit} in one ciphertext)",
                    p.slots(),
                    p.name,
                ))
            });
        }
        // Interleaved images: each gets a block of at least `need` slots,
        // in ciphertexts the set can bootstrap.
        let floor = if p.min_sparse_slots > 0 {
            p.min_sparse_slots
        } else {
            p.slots()
        };
        let total = (need * b).max(floor).min(p.slots());
        low = lower_batched(g, total, b, w)?;
    } else if p.min_sparse_slots > 0 {
        // Sparse packing: the fewest slots that hold every tensor, where the
        // set bootstraps sparse-packed ciphertexts (cheaper bootstraps; the
        // linear layers cost the same).
        let n = need.max(p.min_sparse_slots);
        if n < p.slots() {
            low = lower(g, n, w)?;
        }
    }
    Ok(low)
}

/// `low` (as lowered: per-step counts) under `opts.keys`: the net with its
/// rotation counts and steps rewritten for the keys chosen
/// ([`apply_keys`]) and, for a budget, the placement the keys were chosen
/// at: that of the `±2^k` keys alone (what `--keys pow2` compiles to,
/// whatever the budget; the keys' levels, hence their bytes, follow from
/// it).
///
/// Errors: a budget below what the `±2^k` keys need; placement errors.
fn keyed(
    low: &Lowered,
    p: &ParamSet,
    opts: &CompileOptions,
) -> Result<(Lowered, Option<Placement>), CompileError> {
    let mut out = low.clone();
    match opts.keys {
        KeyMode::PerStep => Ok((out, None)),
        KeyMode::PowersOfTwo => {
            apply_keys(&mut out, &pow2_keys(low))?;
            Ok((out, None))
        }
        KeyMode::Budget(max) => {
            apply_keys(&mut out, &pow2_keys(low))?;
            let b = budget(p);
            let sol = place(&out.level, b, &objective(&out, p, opts.goal), opts.strategy)?;
            let levels: Vec<u32> = lazy_levels(&out.level, b, &sol.placement)?
                .iter()
                .map(|l| l.level_in)
                .collect();
            let boots = ct_boots(&out.level, &sol.placement) > 0;
            let keys = budget_keys(low, &levels, p, max, boots)?;
            let mut out = low.clone();
            apply_keys(&mut out, &keys)?;
            Ok((out, Some(sol.placement)))
        }
    }
}

/// Compiles a model: returns the plan and its report. The model is first
/// put in inference form with `nn::transform::fold_all` (the runtime must
/// read weights from the same form; see [`linear_weights`](super::linear_weights)).
pub fn compile(
    g: &nn::Graph,
    sets: &[ParamSet],
    opts: &CompileOptions,
) -> Result<(CompiledPlan, Report), CompileError> {
    // The inference form: Dirac kernels and batch norms folded (what the
    // runtime runs too; node names are kept).
    let folded = nn::transform::fold_all(g)?;
    let g = &folded;
    let mut candidates = Vec::new();
    let chosen: (&ParamSet, Lowered) = match &opts.params {
        Some(name) => {
            let p = ParamSet::find(sets, name)?;
            (p, lower_for(g, p, opts)?)
        }
        None => {
            let mut best: Option<(f64, &ParamSet, Lowered)> = None;
            let mut last_err = None;
            for p in sets {
                let low = match lower_for(g, p, opts) {
                    Ok(l) => l,
                    Err(e) => {
                        last_err = Some(e);
                        continue;
                    }
                };
                // Priced under the key mode (the net as lowered is what
                // `compile_lowered` takes), at the input level it would use.
                let res = effective_params(&low, p, opts).and_then(|p| {
                    let p = &p;
                    let (kl, _) = keyed(&low, p, opts)?;
                    let obj = objective(&kl, p, opts.goal);
                    let s = place(&kl.level, budget(p), &obj, opts.strategy)?;
                    let t = time_objective(&kl, p).evaluate(&kl.level, budget(p), &s.placement)?;
                    Ok((t, ct_boots(&kl.level, &s.placement)))
                });
                match res {
                    Ok((t, nb)) => {
                        candidates.push(Candidate {
                            params: p.name.clone(),
                            l_eff: p.l_eff,
                            bootstraps: Some(nb),
                            estimated_seconds: Some(t),
                        });
                        // Per image, so that sets of different batches compare.
                        let per = low.batch() as f64;
                        let key = match opts.goal {
                            Goal::Time => t / per,
                            Goal::Count => (nb as f64 + t * 1e-9) / per,
                        };
                        if best.as_ref().is_none_or(|(bt, _, _)| key < *bt) {
                            best = Some((key, p, low));
                        }
                    }
                    Err(e) => {
                        candidates.push(Candidate {
                            params: p.name.clone(),
                            l_eff: p.l_eff,
                            bootstraps: None,
                            estimated_seconds: None,
                        });
                        last_err = Some(e);
                    }
                }
            }
            match best {
                Some((_, p, low)) => (p, low),
                None => {
                    return Err(last_err.unwrap_or(CompileError::UnknownParams(
                        "auto".into(),
                        "no parameter sets given".into(),
                    )));
                }
            }
        }
    };
    let (p, low) = chosen;
    compile_lowered(&low, p, opts, candidates)
}

/// Places bootstraps on an already lowered net (as [`crate::lower::lower`]
/// gives it: per-step rotation counts), applies `opts.keys` and builds plan
/// and report.
///
/// Under [`KeyMode::Budget`] the keys are chosen at the levels of the
/// placement for the `±2^k` keys alone (so that the budget's floor is what
/// `--keys pow2` reports); bootstraps are then placed again for the
/// rotations the chosen keys give, and that placement is kept unless it
/// moves keys to levels where they no longer fit the budget.
///
/// Errors: a key budget below what the `±2^k` keys need
/// ([`CompileError::KeyBudget`]); placement errors.
pub fn compile_lowered(
    low: &Lowered,
    p: &ParamSet,
    opts: &CompileOptions,
    candidates: Vec<Candidate>,
) -> Result<(CompiledPlan, Report), CompileError> {
    let given = p;
    let p = &effective_params(low, given, opts)?;
    let (keyed_low, chosen_at) = keyed(low, p, opts)?;
    let low = &keyed_low;
    let g = &low.level;
    let b = budget(p);
    let obj = objective(low, p, opts.goal);
    let tobj = time_objective(low, p);
    let mut sol = place(g, b, &obj, opts.strategy)?;
    let mut lv = lazy_levels(g, b, &sol.placement)?;
    if let (KeyMode::Budget(max), Some(at)) = (opts.keys, chosen_at) {
        let levels: Vec<u32> = lv.iter().map(|l| l.level_in).collect();
        if network_key_bytes(low, &levels, p, ct_boots(g, &sol.placement) > 0) > max {
            lv = lazy_levels(g, b, &at)?;
            sol.placement = at;
        }
    }
    let est = tobj.evaluate(g, b, &sol.placement)?;
    let boots = ct_boots(g, &sol.placement);
    let boot_s = p.bootstrap_seconds(low.slots());
    let costs = p.costs.for_slots(low.slots());

    let mut steps = BTreeSet::new();
    // Highest level each network rotation step is used at.
    let mut step_level: std::collections::BTreeMap<i64, u32> = Default::default();
    let mut nodes = Vec::with_capacity(g.len());
    let mut totals = OpCounts::default();
    let last = g.last_use();
    // First consumer of each value, to report a bootstrap "before" it.
    let mut first_use: Vec<Option<NodeId>> = vec![None; g.len()];
    for (v, n) in g.nodes.iter().enumerate() {
        for &u in &n.inputs {
            if first_use[u].is_none() {
                first_use[u] = Some(v);
            }
        }
    }
    let mut layers = Vec::new();
    for (v, (n, l)) in g.nodes.iter().zip(&low.layers).enumerate() {
        steps.extend(l.cost.rotation_steps.iter().copied());
        for &s in &l.cost.rotation_steps {
            let e = step_level.entry(s).or_insert(0);
            *e = (*e).max(lv[v].level_in);
        }
        totals += l.cost.counts;
        nodes.push(PlanNode {
            name: n.name.clone(),
            kind: n.kind,
            op: l.op.clone(),
            nn_nodes: l.nn_nodes.clone(),
            inputs: n.inputs.clone(),
            layout_in: l.layout_in,
            layout_out: l.layout_out,
            depth: n.depth,
            level_in: lv[v].level_in,
            level_out: lv[v].level_out,
            bootstrap: sol.placement.boot[v] && last[v].is_some(),
            level_after: lv[v].level_after,
            log_scale: p.log_scale,
            counts: l.cost.counts,
            rotation_steps: l.cost.rotation_steps.iter().copied().collect(),
            bsgs_baby: l.cost.bsgs_baby,
            bsgs_centred: l.cost.bsgs_centred,
            skip: n.skip,
            skip_depth: n.skip_depth,
        });
        let before: u64 = n
            .inputs
            .iter()
            .filter(|&&u| sol.placement.boot[u] && first_use[u] == Some(v))
            .map(|&u| g.nodes[u].cts as u64)
            .sum();
        if n.kind != LevelOpKind::Input {
            layers.push(LayerReport {
                name: n.name.clone(),
                kind: n.kind,
                level_in: lv[v].level_in,
                level_out: lv[v].level_out,
                rotations: l.cost.counts.all_rotations(),
                key_switches: l.cost.counts.key_switches(),
                bootstraps_before: before,
                cts: n.cts,
                seconds: l.cost.counts.seconds(&costs, lv[v].level_in),
            });
        }
    }
    let galois_steps: Vec<i64> = steps.into_iter().collect();
    let boot_slots = (boots > 0).then(|| low.slots());
    let network_bytes: u64 = step_level
        .iter()
        .map(|(&k, &l)| p.network_key_bytes_at(k, l, boot_slots))
        .sum();
    let network_keys = galois_steps.len() as u64;
    let galois = galois_key_totals(p, &step_level, boot_slots);

    let (skips, skips_total) = if opts.attribute_skips {
        let chosen = InputLevelCase {
            g,
            b,
            obj: &obj,
            tobj: &tobj,
            fresh: p.input_level > p.l_eff,
        };
        // The network without its skips may choose the other input level
        // (fresh levels save it a bootstrap where they did not save the
        // network one, or the other way round): price it as the compiler
        // would compile it.
        let (working, fresh) = input_levels(given, opts);
        let q = if chosen.fresh { Some(working) } else { fresh };
        let other = match q {
            Some(q) => {
                let (kl, _) = keyed(low, &q, opts)?;
                let (o, t) = (objective(&kl, &q, opts.goal), time_objective(&kl, &q));
                Some((kl, budget(&q), o, t))
            }
            None => None,
        };
        let other = other
            .as_ref()
            .map(|(kl, b, o, t)| InputLevelCase {
                g: &kl.level,
                b: *b,
                obj: o,
                tobj: t,
                fresh: !chosen.fresh,
            })
            .filter(|o| o.g.len() == g.len() && o.g.adds() == g.adds());
        skip_costs(&chosen, other.as_ref(), opts, (boots, est))?
    } else {
        (Vec::new(), None)
    };

    let greedy_baseline = if opts.strategy == Strategy::Optimal {
        let gs = place(g, b, &obj, Strategy::Greedy)?;
        Some(Baseline {
            bootstraps: ct_boots(g, &gs.placement),
            estimated_seconds: tobj.evaluate(g, b, &gs.placement)?,
        })
    } else {
        None
    };

    let batch = low.batch();
    let plan = CompiledPlan {
        format: "residue-plan".into(),
        // Unbatched plans keep the version-2 format byte for byte.
        version: if batch > 1 {
            PLAN_VERSION
        } else {
            PLAN_VERSION_UNBATCHED
        },
        model: low.model.clone(),
        structure: low.structure().into(),
        params: PlanParams {
            name: p.name.clone(),
            log_n: p.log_n,
            slots: low.slots(),
            l_eff: p.l_eff,
            input_level: p.input_level,
            log_scale: p.log_scale,
            batch,
        },
        strategy: opts.strategy,
        goal: opts.goal,
        keys: opts.keys,
        nodes,
        galois_steps,
        bootstraps: boots,
        model_hash: String::new(),
        value_scales: Vec::new(),
    };
    let report = Report {
        model: low.model.clone(),
        structure: low.structure().into(),
        params: p.name.clone(),
        params_description: p.description.clone(),
        l_eff: p.l_eff,
        cost_source: p.costs.source.clone(),
        placement: opts.strategy,
        goal: opts.goal,
        layers,
        bootstraps: boots,
        rotations: totals.all_rotations(),
        rotations_hoisted: totals.rotations_hoisted,
        key_switches: totals.key_switches(),
        rescales: totals.rescales,
        plaintext_multiplies: totals.mul_plain,
        ciphertext_multiplies: totals.mul_relin,
        completed_squares: low
            .layers
            .iter()
            .filter(|l| matches!(l.op, LayerOp::PolyAct { fused: true, .. }))
            .count() as u64,
        activations: low
            .layers
            .iter()
            .filter(|l| matches!(l.op, LayerOp::PolyAct { .. }))
            .count() as u64,
        galois_keys: galois.keys,
        galois_keys_exact: galois.exact,
        keys: opts.keys,
        network_galois_keys: network_keys,
        network_shared_keys: galois.shared,
        network_key_bytes: network_bytes,
        galois_key_bytes: galois.bytes,
        estimated_seconds: est,
        batch,
        estimated_seconds_per_image: est / batch as f64,
        bootstrap_seconds: boots as f64 * boot_s,
        skips,
        candidates,
        greedy_baseline,
        skips_total,
    };
    Ok((plan, report))
}

/// One input level a network can be compiled at (encrypted at L_eff, or on
/// the fresh levels above it): its level graph, budget and objectives.
struct InputLevelCase<'a> {
    g: &'a LevelGraph,
    b: LevelBudget,
    obj: &'a Objective,
    tobj: &'a Objective,
    fresh: bool,
}

impl InputLevelCase<'_> {
    /// Ciphertext bootstraps and estimated seconds of the network without
    /// the additions `adds` (node ids of `self.g`).
    fn without(&self, adds: &[NodeId], strategy: Strategy) -> Result<(u64, f64), CompileError> {
        let mut h = self.g.clone();
        let mut map: Vec<NodeId> = (0..self.g.len()).collect();
        for &a in adds {
            // `a`'s id in `h`: ids shift as nodes are removed.
            let at = map.iter().position(|&v| v == a).ok_or_else(|| {
                CompileError::Plan(format!("skip attribution: node {a} is not in the graph"))
            })?;
            let (h2, m2) = h.without_add(at)?;
            map = m2.iter().map(|&v| map[v]).collect();
            h = h2;
        }
        let s = place(&h, self.b, &restrict(self.obj, &map), strategy)?;
        let t = restrict(self.tobj, &map).evaluate(&h, self.b, &s.placement)?;
        Ok((ct_boots(&h, &s.placement), t))
    }
}

/// What each skip addition costs (the plan against the same network
/// without that addition) and what all of them cost together (without
/// any). Each variant is priced at the input level the compiler would give
/// it: where `other` (the other input level) is given, the fresh levels are
/// used by the same rule as in [`effective_params`] ([`fresh_pays`]).
fn skip_costs(
    chosen: &InputLevelCase<'_>,
    other: Option<&InputLevelCase<'_>>,
    opts: &CompileOptions,
    base: (u64, f64),
) -> Result<(Vec<SkipReport>, Option<SkipsTotal>), CompileError> {
    let (boots, est) = base;
    let variant = |adds: &[NodeId]| -> Result<(u64, f64), CompileError> {
        let strategy = opts.strategy;
        let a = chosen.without(adds, strategy)?;
        let Some(o) = other else {
            return Ok(a);
        };
        let b = o.without(adds, strategy)?;
        let (fresh, working) = if chosen.fresh { (a, b) } else { (b, a) };
        Ok(if fresh_pays(fresh, working, opts) {
            fresh
        } else {
            working
        })
    };
    let adds = chosen.g.adds();
    // All additions removed together (per-skip costs do not add up).
    let skips_total = if adds.is_empty() {
        None
    } else {
        let (bo, t) = variant(&adds)?;
        Some(SkipsTotal {
            bootstraps: boots as i64 - bo as i64,
            seconds: est - t,
        })
    };
    let mut skips = Vec::new();
    for &a in &adds {
        let (bo, t) = variant(&[a])?;
        skips.push(SkipReport {
            name: chosen.g.nodes[a].name.clone(),
            kind: chosen.g.nodes[a].skip.unwrap_or(SkipKind::MidTerm),
            bootstraps: boots as i64 - bo as i64,
            seconds: est - t,
        });
    }
    Ok((skips, skips_total))
}

/// Galois keys of a plan in all: [`Report::galois_keys`] and its bytes.
struct GaloisTotals {
    keys: u64,
    bytes: u64,
    /// Whether bootstrapping's keys are known (else estimated).
    exact: bool,
    /// Network keys bootstrapping already holds.
    shared: u64,
}

/// The Galois keys keygen makes for a plan whose network rotation steps are
/// `step_level` (step -> highest level used) and which bootstraps
/// `boot_slots` slots (`None`: no bootstrap): one key per Galois element at
/// the highest level either needs. Exact where the set knows
/// bootstrapping's keys ([`ParamSet::bootstrap_keys`]); else bootstrapping's
/// are estimated as [`ParamSet::bootstrap_rotation_keys`] keys at the top
/// level, none shared (an upper bound).
fn galois_key_totals(
    p: &ParamSet,
    step_level: &std::collections::BTreeMap<i64, u32>,
    boot_slots: Option<usize>,
) -> GaloisTotals {
    let net_bytes = |l: u32| p.galois_key_bytes_at(l);
    match boot_slots.map(|s| p.bootstrap_keys(s)) {
        None => GaloisTotals {
            keys: step_level.len() as u64,
            bytes: step_level.values().map(|&l| net_bytes(l)).sum(),
            exact: true,
            shared: 0,
        },
        Some(Some(boot)) => {
            let mut all = boot.clone();
            let mut shared = 0;
            for (&k, &l) in step_level {
                let g = p.rotation_element(k);
                shared += u64::from(all.contains_key(&g));
                let e = all.entry(g).or_insert(l);
                *e = (*e).max(l);
            }
            GaloisTotals {
                keys: all.len() as u64,
                bytes: all.values().map(|&l| net_bytes(l)).sum(),
                exact: true,
                shared,
            }
        }
        Some(None) => GaloisTotals {
            keys: step_level.len() as u64 + p.bootstrap_rotation_keys as u64,
            bytes: step_level.values().map(|&l| net_bytes(l)).sum::<u64>()
                + p.bootstrap_rotation_keys as u64 * p.galois_key_bytes(),
            exact: false,
            shared: 0,
        },
    }
}
