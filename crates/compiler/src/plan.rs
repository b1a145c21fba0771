//! Compilation end to end: parameter choice, placement, the serializable
//! [`CompiledPlan`] the runtime executes, and the user-facing [`Report`].
//!
//! # Executing a plan
//!
//! The runtime reads the model, puts it in inference form with
//! `nn::transform::fold_all` (as [`compile`] does), and walks
//! [`CompiledPlan::nodes`] in order. For every step it first drops each
//! input to the step's `level_in` (levels are *lazy*: each step runs at
//! the lowest level that still reaches the next bootstrap, so drops are
//! frequent and cheap), then:
//! - `input`: the client packs the image with `layout_out`
//!   ([`Layout::slot`]) and encrypts at `level_in`;
//! - `conv`, `dense`, `avg_pool`, `affine`: [`linear_weights`] gives the
//!   weighted taps, [`crate::layout::linear_diagonals`] the plaintext
//!   diagonals from `layout_in` to `layout_out`; evaluate
//!   `sum_g rot_g(sum_b rot_-g(diag_(g+b)) * rot_b(x))` with
//!   [`crate::layout::bsgs_split`] (`bsgs_baby`, `bsgs_centred`), baby
//!   rotations hoisted per input ciphertext; add [`bias_slots`]; rescale;
//! - `global_avg_pool`: [`crate::layout::sum_schedule`] over the rows
//!   (stride `gap * base_w`), then the columns (stride `gap`); the `1/(H W)`
//!   is in the next dense layer's weights when `scale_folded`;
//! - `poly_act`: the model's polynomial (its `range` maps to the
//!   Chebyshev interval by a scalar folded into the coefficients);
//! - `add`: drop both inputs to `level_in`, add; `tap`: identity;
//! - then, if `bootstrap`, bootstrap the result (to `L_eff`).
//!
//! `galois_steps` are exactly the rotation keys the steps use (bootstrapping
//! keys not included). The test `tests/simulate.rs` runs plans this way on
//! plaintext slot vectors and matches the reference executor.

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};

use crate::cost::{CkksOp, OpCounts};
use crate::error::CompileError;
use crate::layout::{self, Layout, Tap};
use crate::level::{
    LevelBudget, LevelGraph, LevelOpKind, NodeId, Placement, SkipKind, lazy_levels,
};
use crate::lower::{LayerOp, Lowered, lower};
use crate::params::ParamSet;
use crate::placement::{Objective, Strategy, place};
use nn::Op;

/// Version of the plan format written by this build.
pub const PLAN_VERSION: u32 = 2;

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

/// Which rotation keys the client generates.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum KeyMode {
    /// One Galois key per distinct rotation step: fewest rotations, most
    /// key memory.
    #[default]
    PerStep,
    /// Keys for `±2^k` only; every rotation runs as its non-adjacent-form
    /// decomposition (no hoisting). Far less key memory, more rotations
    /// (estimated from each layer's average decomposition length).
    PowersOfTwo,
}

/// Signed powers of two summing to `d` (non-adjacent form, fewest terms).
pub fn naf(mut d: i64) -> Vec<i64> {
    let mut out = Vec::new();
    let mut bit = 1i64;
    while d != 0 {
        if d & 1 != 0 {
            let z = 2 - d.rem_euclid(4);
            out.push(z * bit);
            d -= z;
        }
        d /= 2;
        bit *= 2;
    }
    out
}

/// Rewrites a lowered net's rotation counts and steps for `mode`.
pub fn apply_key_mode(low: &mut Lowered, mode: KeyMode) {
    if mode == KeyMode::PerStep {
        return;
    }
    for l in &mut low.layers {
        let steps = std::mem::take(&mut l.cost.rotation_steps);
        if steps.is_empty() {
            continue;
        }
        let total: usize = steps.iter().map(|&s| naf(s).len()).sum();
        let avg = total as f64 / steps.len() as f64;
        let c = &mut l.cost.counts;
        c.rotations = ((c.rotations + c.rotations_hoisted) as f64 * avg).round() as u64;
        c.rotations_hoisted = 0;
        l.cost.rotation_steps = steps.iter().flat_map(|&s| naf(s)).collect();
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
}

impl Default for CompileOptions {
    fn default() -> Self {
        Self {
            params: Some(ParamSet::default_name().to_string()),
            strategy: Strategy::Optimal,
            goal: Goal::Time,
            attribute_skips: true,
            keys: KeyMode::PerStep,
        }
    }
}

/// The parameters a plan was compiled for (enough for the runtime and the
/// client to check they use the same set).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PlanParams {
    /// Name of the set.
    pub name: String,
    /// log2 of the ring degree.
    pub log_n: u32,
    /// Slots per ciphertext.
    pub slots: usize,
    /// Levels after a bootstrap.
    pub l_eff: u32,
    /// Level of the fresh input.
    pub input_level: u32,
    /// log2 of the scale every value is kept at after rescaling.
    pub log_scale: u32,
}

/// One step of a plan.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PlanNode {
    /// Name.
    pub name: String,
    /// Kind of step.
    pub kind: LevelOpKind,
    /// Operation and its shape parameters.
    pub op: LayerOp,
    /// Model nodes whose weights it uses (fused).
    pub nn_nodes: Vec<String>,
    /// Input steps (for an addition: `[main, skip]`).
    pub inputs: Vec<NodeId>,
    /// Packing of the input.
    pub layout_in: Layout,
    /// Packing of the output.
    pub layout_out: Layout,
    /// Levels consumed.
    pub depth: u32,
    /// Level it runs at.
    pub level_in: u32,
    /// Level of its result.
    pub level_out: u32,
    /// Whether the result is bootstrapped before anything reads it.
    pub bootstrap: bool,
    /// Level its consumers see.
    pub level_after: u32,
    /// log2 of the output scale (nominal; exact scales are tracked at run
    /// time).
    pub log_scale: u32,
    /// Primitive counts.
    pub counts: OpCounts,
    /// Rotation steps it uses.
    pub rotation_steps: Vec<i64>,
    /// Baby-step span of its BSGS split (0 if none).
    pub bsgs_baby: usize,
    /// Whether the BSGS split is centred ([`crate::layout::bsgs_split`]).
    pub bsgs_centred: bool,
    /// For additions: the kind of skip.
    pub skip: Option<SkipKind>,
}

/// A compiled plan: what the runtime executes and what the client needs to
/// generate exactly the right keys.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CompiledPlan {
    /// Always `"residue-plan"`.
    pub format: String,
    /// [`PLAN_VERSION`].
    pub version: u32,
    /// Model name.
    pub model: String,
    /// Network structure (`resnet`, `chain`, `shared-source`, `mixed`).
    pub structure: String,
    /// Parameter set.
    pub params: PlanParams,
    /// Placement algorithm used.
    pub strategy: Strategy,
    /// Placement objective.
    pub goal: Goal,
    /// Which rotation keys `galois_steps` lists.
    pub keys: KeyMode,
    /// Steps in execution order (step 0 is the input).
    pub nodes: Vec<PlanNode>,
    /// All Galois rotation steps the layers need (bootstrapping keys not
    /// included).
    pub galois_steps: Vec<i64>,
    /// Ciphertext bootstraps.
    pub bootstraps: u64,
    /// Hex SHA-256 of the model's inference form the plan is bound to (set
    /// by the runtime when it calibrates the plan; empty if unbound).
    #[serde(default)]
    pub model_hash: String,
    /// Per step, the factor its values are divided by in the slots (set by
    /// the runtime's calibration so that every slot stays within the
    /// bootstrap's input range; empty: all 1).
    #[serde(default)]
    pub value_scales: Vec<f64>,
}

impl CompiledPlan {
    /// Serializes to JSON.
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).expect("plans serialize")
    }

    /// Reads a plan, checking format and version.
    pub fn from_json(s: &str) -> Result<Self, CompileError> {
        let p: CompiledPlan =
            serde_json::from_str(s).map_err(|e| CompileError::Plan(e.to_string()))?;
        if p.format != "residue-plan" || p.version != PLAN_VERSION {
            return Err(CompileError::Plan(format!(
                "not a version-{PLAN_VERSION} residue plan (format `{}`, version {})",
                p.format, p.version
            )));
        }
        Ok(p)
    }

    /// The placement it encodes.
    pub fn placement(&self) -> Placement {
        Placement {
            boot: self.nodes.iter().map(|n| n.bootstrap).collect(),
        }
    }
}

/// One line of the per-layer report.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LayerReport {
    /// Layer name.
    pub name: String,
    /// Kind.
    pub kind: LevelOpKind,
    /// Level in.
    pub level_in: u32,
    /// Level out.
    pub level_out: u32,
    /// Rotations (hoisted included).
    pub rotations: u64,
    /// Key switches.
    pub key_switches: u64,
    /// Ciphertext bootstraps right before it (on its inputs).
    pub bootstraps_before: u64,
    /// Ciphertexts of its output.
    pub cts: u32,
    /// Estimated seconds of the layer itself.
    pub seconds: f64,
}

/// What one skip connection costs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SkipReport {
    /// The addition.
    pub name: String,
    /// Mid-term or shared-source.
    pub kind: SkipKind,
    /// Extra ciphertext bootstraps versus the same graph without it.
    pub bootstraps: i64,
    /// Extra estimated seconds versus the same graph without it.
    pub seconds: f64,
}

/// One parameter set considered by automatic choice.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Candidate {
    /// Set name.
    pub params: String,
    /// `L_eff`.
    pub l_eff: u32,
    /// Ciphertext bootstraps (`None` if infeasible).
    pub bootstraps: Option<u64>,
    /// Estimated seconds.
    pub estimated_seconds: Option<f64>,
}

/// The user-facing cost report of a compiled model.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Report {
    /// Model name.
    pub model: String,
    /// Network structure.
    pub structure: String,
    /// Chosen parameter set.
    pub params: String,
    /// What the set is.
    pub params_description: String,
    /// `L_eff` of the set.
    pub l_eff: u32,
    /// Where per-op costs come from (`estimate` or `calibrated`).
    pub cost_source: String,
    /// Placement algorithm.
    pub placement: Strategy,
    /// Placement objective.
    pub goal: Goal,
    /// Per layer.
    pub layers: Vec<LayerReport>,
    /// Ciphertext bootstraps.
    pub bootstraps: u64,
    /// Rotations (hoisted included).
    pub rotations: u64,
    /// Of which hoisted.
    pub rotations_hoisted: u64,
    /// Key switches (rotations and relinearizations).
    pub key_switches: u64,
    /// Rescales.
    pub rescales: u64,
    /// Plaintext multiplications.
    pub plaintext_multiplies: u64,
    /// Ciphertext multiplications.
    pub ciphertext_multiplies: u64,
    /// Galois keys (layer rotations, plus the bootstrapping's own if any
    /// bootstrap runs).
    pub galois_keys: u64,
    /// Their memory in bytes.
    pub galois_key_bytes: u64,
    /// Estimated server time in seconds.
    pub estimated_seconds: f64,
    /// Of which bootstrapping.
    pub bootstrap_seconds: f64,
    /// Per skip connection.
    pub skips: Vec<SkipReport>,
    /// Parameter sets considered (automatic choice).
    pub candidates: Vec<Candidate>,
    /// The greedy baseline on the same parameters (what optimal placement
    /// gains), when placement was optimal.
    pub greedy_baseline: Option<Baseline>,
    /// What all skip connections cost together: this plan minus the same
    /// graph with every addition removed (per-skip costs do not add up).
    pub skips_total: Option<SkipsTotal>,
}

/// What all skip connections of a model cost together.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SkipsTotal {
    /// Extra ciphertext bootstraps.
    pub bootstraps: i64,
    /// Extra estimated seconds.
    pub seconds: f64,
}

/// Bootstraps and time of another placement, for comparison.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Baseline {
    /// Ciphertext bootstraps.
    pub bootstraps: u64,
    /// Estimated seconds.
    pub estimated_seconds: f64,
}

/// The time objective of a lowered net under a parameter set.
pub fn time_objective(low: &Lowered, p: &ParamSet) -> Objective {
    let maxl = p.l_eff.max(p.input_level);
    let boot = p.costs.at(CkksOp::Bootstrap, 0);
    Objective {
        op: low
            .layers
            .iter()
            .map(|l| {
                (0..=maxl)
                    .map(|lv| l.cost.counts.seconds(&p.costs, lv))
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

fn ct_boots(g: &LevelGraph, pl: &Placement) -> u64 {
    pl.sites().iter().map(|&v| g.nodes[v].cts as u64).sum()
}

fn restrict(obj: &Objective, map: &[NodeId]) -> Objective {
    Objective {
        op: map.iter().map(|&v| obj.op[v].clone()).collect(),
        boot: map.iter().map(|&v| obj.boot[v]).collect(),
    }
}

fn lower_for(g: &nn::Graph, p: &ParamSet, keys: KeyMode) -> Result<Lowered, CompileError> {
    let top = p.l_eff;
    let w = (
        p.costs.at(CkksOp::RotateHoisted, top),
        p.costs.at(CkksOp::Rotate, top),
    );
    let mut low = lower(g, p.slots(), w)?;
    apply_key_mode(&mut low, keys);
    Ok(low)
}

/// Compiles a model: returns the plan and its report. The model is first
/// put in inference form with `nn::transform::fold_all` (the runtime must
/// read weights from the same form; see [`linear_weights`]).
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
            (p, lower_for(g, p, opts.keys)?)
        }
        None => {
            let mut best: Option<(f64, &ParamSet, Lowered)> = None;
            let mut last_err = None;
            for p in sets {
                let low = match lower_for(g, p, opts.keys) {
                    Ok(l) => l,
                    Err(e) => {
                        last_err = Some(e);
                        continue;
                    }
                };
                let obj = objective(&low, p, opts.goal);
                let res = place(&low.level, budget(p), &obj, opts.strategy).and_then(|s| {
                    let t =
                        time_objective(&low, p).evaluate(&low.level, budget(p), &s.placement)?;
                    Ok((t, ct_boots(&low.level, &s.placement)))
                });
                match res {
                    Ok((t, nb)) => {
                        candidates.push(Candidate {
                            params: p.name.clone(),
                            l_eff: p.l_eff,
                            bootstraps: Some(nb),
                            estimated_seconds: Some(t),
                        });
                        let key = match opts.goal {
                            Goal::Time => t,
                            Goal::Count => nb as f64 + t * 1e-9,
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

/// Places bootstraps on an already lowered net and builds plan and report.
pub fn compile_lowered(
    low: &Lowered,
    p: &ParamSet,
    opts: &CompileOptions,
    candidates: Vec<Candidate>,
) -> Result<(CompiledPlan, Report), CompileError> {
    let g = &low.level;
    let b = budget(p);
    let obj = objective(low, p, opts.goal);
    let tobj = time_objective(low, p);
    let sol = place(g, b, &obj, opts.strategy)?;
    let lv = lazy_levels(g, b, &sol.placement)?;
    let est = tobj.evaluate(g, b, &sol.placement)?;
    let boots = ct_boots(g, &sol.placement);
    let boot_s = p.costs.at(CkksOp::Bootstrap, 0);

    let mut steps = BTreeSet::new();
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
                seconds: l.cost.counts.seconds(&p.costs, lv[v].level_in),
            });
        }
    }
    let galois_steps: Vec<i64> = steps.into_iter().collect();
    let galois_keys = galois_steps.len() as u64
        + if boots > 0 {
            p.bootstrap_rotation_keys as u64
        } else {
            0
        };

    let mut skips = Vec::new();
    let mut skips_total = None;
    if opts.attribute_skips && !g.adds().is_empty() {
        let mut h = g.clone();
        let mut map: Vec<NodeId> = (0..g.len()).collect();
        while let Some(&a) = h.adds().first() {
            let (h2, m2) = h.without_add(a)?;
            map = m2.iter().map(|&v| map[v]).collect();
            h = h2;
        }
        let s = place(&h, b, &restrict(&obj, &map), opts.strategy)?;
        let t = restrict(&tobj, &map).evaluate(&h, b, &s.placement)?;
        skips_total = Some(SkipsTotal {
            bootstraps: boots as i64 - ct_boots(&h, &s.placement) as i64,
            seconds: est - t,
        });
    }
    if opts.attribute_skips {
        for a in g.adds() {
            let (h, map) = g.without_add(a)?;
            let obj_h = restrict(&obj, &map);
            let tobj_h = restrict(&tobj, &map);
            let s = place(&h, b, &obj_h, opts.strategy)?;
            let t = tobj_h.evaluate(&h, b, &s.placement)?;
            skips.push(SkipReport {
                name: g.nodes[a].name.clone(),
                kind: g.nodes[a].skip.unwrap_or(SkipKind::MidTerm),
                bootstraps: boots as i64 - ct_boots(&h, &s.placement) as i64,
                seconds: est - t,
            });
        }
    }

    let greedy_baseline = if opts.strategy == Strategy::Optimal {
        let gs = place(g, b, &obj, Strategy::Greedy)?;
        Some(Baseline {
            bootstraps: ct_boots(g, &gs.placement),
            estimated_seconds: tobj.evaluate(g, b, &gs.placement)?,
        })
    } else {
        None
    };

    let plan = CompiledPlan {
        format: "residue-plan".into(),
        version: PLAN_VERSION,
        model: low.model.clone(),
        structure: low.structure().into(),
        params: PlanParams {
            name: p.name.clone(),
            log_n: p.log_n,
            slots: p.slots(),
            l_eff: p.l_eff,
            input_level: p.input_level,
            log_scale: p.log_scale,
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
        galois_keys,
        galois_key_bytes: galois_keys * p.galois_key_bytes(),
        estimated_seconds: est,
        bootstrap_seconds: boots as f64 * boot_s,
        skips,
        candidates,
        greedy_baseline,
        skips_total,
    };
    Ok((plan, report))
}

impl Report {
    /// A human-readable table.
    pub fn to_text(&self) -> String {
        use std::fmt::Write;
        let mut s = String::new();
        let _ = writeln!(
            s,
            "model {} ({}), params {} (L_eff {}), placement {:?}/{:?}, costs: {}",
            self.model,
            self.structure,
            self.params,
            self.l_eff,
            self.placement,
            self.goal,
            self.cost_source
        );
        let _ = writeln!(
            s,
            "{:<32} {:>9} {:>6} {:>7} {:>5} {:>5} {:>9}",
            "layer", "kind", "lv", "boot<-", "rot", "ksw", "sec"
        );
        for l in &self.layers {
            let kind = format!("{:?}", l.kind).to_lowercase();
            let _ = writeln!(
                s,
                "{:<32} {:>9} {:>3}>{:<2} {:>7} {:>5} {:>5} {:>9.3}",
                l.name,
                kind,
                l.level_in,
                l.level_out,
                if l.bootstraps_before > 0 {
                    l.bootstraps_before.to_string()
                } else {
                    String::new()
                },
                l.rotations,
                l.key_switches,
                l.seconds
            );
        }
        let _ = writeln!(
            s,
            "totals: bootstraps {}, rotations {} ({} hoisted), key switches {}, rescales {}, \
             plaintext mults {}, ciphertext mults {}",
            self.bootstraps,
            self.rotations,
            self.rotations_hoisted,
            self.key_switches,
            self.rescales,
            self.plaintext_multiplies,
            self.ciphertext_multiplies
        );
        let _ = writeln!(
            s,
            "galois keys: {} ({:.2} GiB)",
            self.galois_keys,
            self.galois_key_bytes as f64 / (1u64 << 30) as f64
        );
        let _ = writeln!(
            s,
            "estimated time: {:.1} s ({:.1} s bootstrapping) [{}]",
            self.estimated_seconds, self.bootstrap_seconds, self.cost_source
        );
        if let Some(b) = &self.greedy_baseline {
            let _ = writeln!(
                s,
                "greedy placement would need {} bootstraps, {:.1} s",
                b.bootstraps, b.estimated_seconds
            );
        }
        if let Some(t) = &self.skips_total {
            let _ = writeln!(
                s,
                "all skip connections together: {:+} bootstraps, {:+.2} s",
                t.bootstraps, t.seconds
            );
        }
        if !self.skips.is_empty() {
            let _ = writeln!(s, "skip connections (cost versus removing that add):");
            for k in &self.skips {
                let kind = match k.kind {
                    SkipKind::MidTerm => "mid-term",
                    SkipKind::SharedSource => "shared-source",
                };
                let _ = writeln!(
                    s,
                    "  {:<30} {:>13} {:>+3} bootstraps {:>+8.2} s",
                    k.name, kind, k.bootstraps, k.seconds
                );
            }
        }
        if !self.candidates.is_empty() {
            let _ = writeln!(s, "parameter sets considered:");
            for c in &self.candidates {
                match (c.bootstraps, c.estimated_seconds) {
                    (Some(b), Some(t)) => {
                        let _ = writeln!(
                            s,
                            "  {:<12} L_eff {:>2}: {b:>3} bootstraps, {t:>8.1} s",
                            c.params, c.l_eff
                        );
                    }
                    _ => {
                        let _ = writeln!(s, "  {:<12} L_eff {:>2}: infeasible", c.params, c.l_eff);
                    }
                }
            }
        }
        s
    }
}

/// The weights of a linear plan step, as taps for
/// [`crate::layout::linear_diagonals`]: output pixel `(Y, X)` of channel
/// `o` reads input pixel `(Y*stride + dy, X*stride + dx)` of channel `i`.
#[derive(Debug, Clone, PartialEq)]
pub struct LinearWeights {
    /// Weighted taps (repeats add up).
    pub taps: Vec<(Tap, f64)>,
    /// Total stride.
    pub stride: usize,
    /// Per output channel bias (added at every pixel), if any.
    pub bias: Option<Vec<f64>>,
}

fn find<'g>(g: &'g nn::Graph, name: &str) -> Result<&'g nn::Node, CompileError> {
    g.node(name)
        .ok_or_else(|| CompileError::Plan(format!("model has no node `{name}`")))
}

/// The weights of plan step `node` (a convolution, dense, average pool or
/// affine step) read from `g`, the model in inference form
/// (`nn::transform::fold_all`). Together with the step's layouts this is
/// everything the runtime needs to build its plaintext diagonals.
pub fn linear_weights(g: &nn::Graph, node: &PlanNode) -> Result<LinearWeights, CompileError> {
    let bad = |m: &str| CompileError::Plan(format!("step `{}`: {m}", node.name));
    match &node.op {
        LayerOp::Conv { pool, .. } => {
            let n = find(g, &node.name)?;
            let Op::Conv2d(c) = &n.op else {
                return Err(bad("not a plain convolution (fold the model first)"));
            };
            let [co, ci, kh, kw] = match c.weight.shape.as_slice() {
                &[a, b2, c2, d] => [a, b2, c2, d],
                _ => return Err(bad("kernel must be 4-D")),
            };
            let mut taps = Vec::with_capacity(co * ci * kh * kw);
            for t in layout::conv_taps(co, ci, kh, kw, c.pads.top, c.pads.left, |_, _, _, _| true) {
                let ky = (t.dy + c.pads.top as i64) as usize;
                let kx = (t.dx + c.pads.left as i64) as usize;
                let w = c.weight.data[((t.o * ci + t.i) * kh + ky) * kw + kx];
                if w != 0.0 {
                    taps.push((t, w));
                }
            }
            let mut stride = c.stride[0];
            if let Some([pk, ps, ptop, pleft]) = *pool {
                let f = 1.0 / (pk * pk) as f64;
                let mut comp = Vec::with_capacity(taps.len() * pk * pk);
                for (t, w) in &taps {
                    for py in 0..pk {
                        for px in 0..pk {
                            comp.push((
                                Tap {
                                    o: t.o,
                                    i: t.i,
                                    dy: ps as i64 * t.dy + py as i64 - ptop as i64,
                                    dx: ps as i64 * t.dx + px as i64 - pleft as i64,
                                },
                                w * f,
                            ));
                        }
                    }
                }
                taps = comp;
                stride *= ps;
            }
            Ok(LinearWeights {
                taps,
                stride,
                bias: c.bias.as_ref().map(|b| b.data.clone()),
            })
        }
        LayerOp::Dense { dims, pool_scale } => {
            let n = find(g, &node.name)?;
            let Op::Dense(d) = &n.op else {
                return Err(bad("not a dense layer"));
            };
            let [inp, out] = *dims;
            let (h, w) = (node.layout_in.height, node.layout_in.width);
            let f = pool_scale.unwrap_or(1.0);
            let mut taps = Vec::with_capacity(inp * out);
            for o in 0..out {
                for j in 0..inp {
                    let v = d.weight.data[o * inp + j];
                    if v != 0.0 {
                        let t = Tap {
                            o,
                            i: j / (h * w),
                            dy: ((j / w) % h) as i64,
                            dx: (j % w) as i64,
                        };
                        taps.push((t, v * f));
                    }
                }
            }
            Ok(LinearWeights {
                taps,
                stride: 1,
                bias: d.bias.as_ref().map(|b| b.data.clone()),
            })
        }
        LayerOp::AvgPool { kernel, stride } => {
            let c = node.layout_in.channels;
            let f = 1.0 / (kernel[0] * kernel[1]) as f64;
            let n = find(g, &node.name)?;
            let Op::AvgPool(ap) = &n.op else {
                return Err(bad("not an average pool"));
            };
            let taps = layout::pool_taps(c, kernel[0], kernel[1], ap.pads.top, ap.pads.left)
                .into_iter()
                .map(|t| (t, f))
                .collect();
            Ok(LinearWeights {
                taps,
                stride: *stride,
                bias: None,
            })
        }
        LayerOp::Affine => {
            let n = find(g, &node.name)?;
            let Op::BatchNorm(bn) = &n.op else {
                return Err(bad("not a batch norm"));
            };
            let (a, b) = bn.affine();
            let taps = a
                .iter()
                .enumerate()
                .map(|(c, &w)| {
                    (
                        Tap {
                            o: c,
                            i: c,
                            dy: 0,
                            dx: 0,
                        },
                        w,
                    )
                })
                .collect();
            Ok(LinearWeights {
                taps,
                stride: 1,
                bias: Some(b),
            })
        }
        _ => Err(bad("not a linear step")),
    }
}

/// A per-channel bias as slot vectors of layout `l` (one per ciphertext):
/// `bias[c]` at every pixel of channel `c`, zero elsewhere.
pub fn bias_slots(l: &Layout, bias: &[f64]) -> Vec<Vec<f64>> {
    let mut v = vec![vec![0.0; l.slots]; l.cts()];
    for (c, &b) in bias.iter().enumerate().take(l.channels) {
        for y in 0..l.height {
            for x in 0..l.width {
                let (ct, s) = l.slot(c, y as i64, x as i64);
                v[ct][s as usize] = b;
            }
        }
    }
    v
}
