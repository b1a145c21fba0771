//! A plan bound to a model: validated, with weights and value scales ready
//! for execution.
//!
//! Plans are untrusted: [`Prepared::new`] checks every node index, layout,
//! level, depth and rotation step against the parameter set, the model's
//! hash against the plan's, and every weighted step against the model's
//! node of that name, before anything runs.
//!
//! # Value scales
//!
//! Slots hold `value / factor` with one factor per plan step
//! (`CompiledPlan::value_scales`), chosen by [`crate::scaling`] so that
//! every slot stays within [`bootstrap_input_bound`]. The factors
//! cost nothing: a linear step's weights are multiplied by
//! `f_in / f_out` and its bias divided by `f_out`; a polynomial's
//! coefficients become `c_k f_in^k / f_out`; additions and taps keep their
//! inputs' factor; rotate-and-sum pooling leaves the sum, which is the
//! mean at factor `f_in / (H W)` when the pool's `1/(H W)` is not folded
//! into the next layer ([`pool_divisor`]).

use compiler::LevelOpKind;
use compiler::layout::{Layout, Tap};
use compiler::lower::LayerOp;
use compiler::plan::{CompiledPlan, linear_weights};
use sha2::{Digest, Sha256};

use crate::error::{Result, RuntimeError};

/// Most ciphertexts one value of a plan may occupy.
pub const MAX_CTS: usize = 256;
/// Most steps a plan may have.
pub const MAX_STEPS: usize = 10_000;

/// The hash binding a plan to a model: hex SHA-256 of the model's inference
/// form (`nn::transform::fold_all`) as JSON.
pub fn model_hash(folded: &nn::Graph) -> String {
    hex(&Sha256::digest(folded.to_json().as_bytes()))
}

/// Hex SHA-256 of a plan's JSON (what encrypted inputs and outputs name).
pub fn plan_hash(plan: &CompiledPlan) -> String {
    hex(&Sha256::digest(plan.to_json().as_bytes()))
}

/// Hex SHA-256 of what an encrypted run of `plan` on the model hashed
/// `model_hash` ([`model_hash`]) computes: the parameter set (name, ring,
/// slots, L_eff, input level, scale, batch) and every step's name, kind,
/// levels, bootstrap and scale. Calibrated value scales, the placement
/// strategy's name and cost figures are left out, so a plan before and
/// after [`crate::scaling::calibrate`] hashes the same, and two placements
/// that bootstrap at the same steps are one plan. Measurement logs record
/// it so that a resumed run never mixes results of different plans or
/// weights.
pub fn plan_shape_hash(plan: &CompiledPlan, model_hash: &str) -> String {
    let p = &plan.params;
    let mut h = Sha256::new();
    h.update(
        format!(
            "model {model_hash}\nparams {} {} {} {} {} {} {}\n",
            p.name, p.log_n, p.slots, p.l_eff, p.input_level, p.log_scale, p.batch
        )
        .as_bytes(),
    );
    for n in &plan.nodes {
        h.update(
            format!(
                "{} {:?} {} {} {} {} {}\n",
                n.name, n.kind, n.level_in, n.level_out, n.bootstrap, n.level_after, n.log_scale
            )
            .as_bytes(),
        );
    }
    hex(&h.finalize())
}

/// Lowercase hex of bytes (hashes and ids).
pub(crate) fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// A weighted linear step (convolution, dense, pooling, affine).
#[derive(Debug, Clone)]
pub struct LinearStep {
    /// Taps with weights already multiplied by `f_in / f_out`.
    pub taps: Vec<(Tap, f64)>,
    /// Total stride.
    pub stride: usize,
    /// Bias divided by `f_out`: per output channel (`C` values) or per
    /// element (`C * H * W`), see [`compiler::plan::bias_slots`].
    pub bias: Option<Vec<f64>>,
    /// Per output element factors multiplying the taps' weights
    /// ([`compiler::plan::LinearWeights::out_scale`]).
    pub out_scale: Option<Vec<f64>>,
    /// Baby-step span.
    pub bsgs_baby: usize,
    /// Centred split.
    pub bsgs_centred: bool,
    /// Set when a fused quadratic ([`Step::Square`]) reads this step at
    /// that level: the output then lands at scale `sqrt(Delta q_level)`,
    /// whose square rescaled at `level` is `Delta`, and the taps and bias
    /// above already carry the square's multiplier `sqrt|a|`.
    pub square_level: Option<usize>,
}

/// What one step does, ready to run.
#[derive(Debug, Clone)]
pub enum Step {
    /// The encrypted input.
    Input,
    /// A linear map (one level).
    Linear(LinearStep),
    /// A polynomial activation with power-basis coefficients (value scales
    /// folded in).
    Poly(Vec<f64>),
    /// A quadratic at depth 1 (`LayerOp::PolyAct::fused`): the linear
    /// step before it left `m x` (`m = sqrt|a|`, value scales folded in);
    /// this adds `shift = m b / 2a`, squares, negates when `a < 0` and
    /// adds `constant = c - b^2 / 4a`, which is `a x^2 + b x + c`.
    Square {
        /// Added before the square.
        shift: f64,
        /// Whether the square is negated (`a < 0`).
        negate: bool,
        /// Added after.
        constant: f64,
    },
    /// Rotate-and-sum global average pooling.
    GlobalPool,
    /// Addition of two values; with `scaled_skip`, the skip is multiplied
    /// by a fused square's `sqrt|a|` first (one level of the skip path)
    /// and the sum lands at that square's input scale.
    Add {
        /// `(multiplier, the square's level)`.
        scaled_skip: Option<(f64, usize)>,
    },
    /// Identity (a bootstrap site).
    Tap,
}

/// A validated plan with its model's weights.
#[derive(Debug, Clone)]
pub struct Prepared {
    /// The plan.
    pub plan: CompiledPlan,
    /// One step per plan node.
    pub steps: Vec<Step>,
    /// Value scale per node.
    pub factors: Vec<f64>,
}

fn bad(m: impl Into<String>) -> RuntimeError {
    RuntimeError::Plan(m.into())
}

/// A fused quadratic (`LayerOp::PolyAct::fused`) at step `i`: degree 2,
/// reading a linear step that nothing else reads and that is not
/// bootstrapped (its output exists only for this square).
fn check_fused(plan: &CompiledPlan, i: usize) -> Result<()> {
    let node = &plan.nodes[i];
    let at = |m: &str| bad(format!("step {i} `{}`: {m}", node.name.escape_debug()));
    if !matches!(node.op, LayerOp::PolyAct { degree: 2, .. }) {
        return Err(at("a fused activation must be a quadratic"));
    }
    let Some(&u) = node.inputs.first().filter(|&&u| u < i) else {
        return Err(at("a fused activation reads an earlier step"));
    };
    // Through an addition whose skip is scaled: the linear step is its main
    // input.
    let (via_add, lin) = match plan.nodes[u].op {
        LayerOp::Add if plan.nodes[u].skip_depth == 1 => (Some(u), plan.nodes[u].inputs[0]),
        _ => (None, u),
    };
    let src = &plan.nodes[lin];
    let linear = matches!(
        src.op,
        LayerOp::Conv { .. } | LayerOp::Dense { .. } | LayerOp::AvgPool { .. } | LayerOp::Affine
    );
    let sole = |w: usize| {
        !plan.nodes[w].bootstrap && plan.nodes.iter().filter(|n| n.inputs.contains(&w)).count() == 1
    };
    if !linear || !sole(lin) || via_add.is_some_and(|a| !sole(a)) {
        return Err(at(
            "a fused activation must be the only reader of an unbootstrapped linear step \
             (or of an unbootstrapped addition of one)",
        ));
    }
    Ok(())
}

/// An addition at step `i` that multiplies its skip first
/// (`skip_depth` 1): read only by a fused quadratic, which supplies the
/// multiplier.
fn check_scaled_skip(plan: &CompiledPlan, i: usize) -> Result<()> {
    let node = &plan.nodes[i];
    let readers: Vec<&compiler::plan::PlanNode> = plan
        .nodes
        .iter()
        .filter(|n| n.inputs.contains(&i))
        .collect();
    let ok = matches!(node.op, LayerOp::Add)
        && node.skip_depth == 1
        && matches!(
            readers.as_slice(),
            [r] if matches!(r.op, LayerOp::PolyAct { fused: true, .. })
        );
    if !ok {
        return Err(bad(format!(
            "step {i} `{}`: only an addition read by a fused activation alone scales its skip (by one level)",
            node.name.escape_debug()
        )));
    }
    Ok(())
}

/// Checks a plan's structure against its parameter set (no model needed):
/// format, version, indices, layouts, levels, depths, rotation steps.
pub fn check_plan(plan: &CompiledPlan, params: &ckks::Params) -> Result<()> {
    plan.check_version().map_err(|e| bad(e.to_string()))?;
    let pp = &plan.params;
    if pp.batch == 0 || !pp.batch.is_power_of_two() || pp.batch > pp.slots {
        return Err(bad(format!(
            "batch {} is not a power of two up to {} slots",
            pp.batch, pp.slots
        )));
    }
    if pp.name != params.name() {
        return Err(bad(format!(
            "compiled for parameter set `{}`, not `{}`",
            pp.name.escape_debug(),
            params.name()
        )));
    }
    if pp.log_n as usize != params.n.trailing_zeros() as usize
        || !pp.slots.is_power_of_two()
        || pp.slots > params.max_slots()
    {
        return Err(bad(format!(
            "ring degree 2^{} / {} slots do not match `{}` (N = {}: a power of two up to N/2 slots)",
            pp.log_n,
            pp.slots,
            params.name(),
            params.n
        )));
    }
    let max = params.max_level();
    let boot_after =
        ckks::bootstrap::config_for(params).map(|c| ckks::bootstrap::levels_after(params, &c));
    if pp.input_level as usize > max || pp.l_eff as usize > max {
        return Err(bad(format!(
            "levels (input {}, L_eff {}) above the set's maximum {max}",
            pp.input_level, pp.l_eff
        )));
    }
    if plan.bootstraps > 0 || plan.nodes.iter().any(|n| n.bootstrap) {
        match boot_after {
            Some(l) if l == pp.l_eff as usize => {}
            Some(l) => {
                return Err(bad(format!(
                    "plan assumes L_eff {} but `{}` leaves {l} levels after a bootstrap",
                    pp.l_eff,
                    params.name()
                )));
            }
            None => return Err(bad(format!("`{}` does not bootstrap", params.name()))),
        }
        bootstrap_config(params, pp.slots).map_err(|e| bad(e.to_string()))?;
    }
    let n = plan.nodes.len();
    if n == 0 || n > MAX_STEPS {
        return Err(bad(format!("{n} steps (1 to {MAX_STEPS} allowed)")));
    }
    if !plan.value_scales.is_empty() && plan.value_scales.len() != n {
        return Err(bad(format!(
            "{} value scales for {n} steps",
            plan.value_scales.len()
        )));
    }
    if let Some(f) = plan
        .value_scales
        .iter()
        .find(|f| !(f.is_finite() && **f > 0.0 && **f < 1e30 && **f > 1e-30))
    {
        return Err(bad(format!(
            "value scale {f} is not a positive finite number"
        )));
    }
    let slots = pp.slots;
    for (i, node) in plan.nodes.iter().enumerate() {
        let at = |m: String| bad(format!("step {i} `{}`: {m}", node.name.escape_debug()));
        for l in [&node.layout_in, &node.layout_out] {
            check_layout(l, slots, pp.batch).map_err(at)?;
        }
        let want_inputs = match node.op {
            LayerOp::Input => 0,
            LayerOp::Add => 2,
            _ => 1,
        };
        if node.inputs.len() != want_inputs {
            return Err(at(format!(
                "{} inputs, expected {want_inputs}",
                node.inputs.len()
            )));
        }
        if (i == 0) != matches!(node.op, LayerOp::Input) {
            return Err(at("the input must be step 0 and only step 0".into()));
        }
        for &u in &node.inputs {
            if u >= i {
                return Err(at(format!("reads step {u}, which does not come before it")));
            }
            if plan.nodes[u].layout_out != node.layout_in {
                return Err(at(format!(
                    "its input layout differs from step {u}'s output"
                )));
            }
        }
        let depth = match &node.op {
            LayerOp::Conv { .. }
            | LayerOp::Dense { .. }
            | LayerOp::AvgPool { .. }
            | LayerOp::Affine => 1,
            LayerOp::PolyAct { degree, fused, .. } => {
                if *degree == 0 || *degree > 64 {
                    return Err(at(format!("polynomial degree {degree} (1 to 64 allowed)")));
                }
                if *fused {
                    check_fused(plan, i)?;
                    1
                } else {
                    ckks::polyeval::depth(*degree) as u32
                }
            }
            _ => 0,
        };
        if node.depth != depth {
            return Err(at(format!(
                "depth {} but the operation takes {depth}",
                node.depth
            )));
        }
        let top = pp.l_eff.max(pp.input_level);
        if node.level_in > top || node.level_out + node.depth != node.level_in {
            return Err(at(format!(
                "levels {} -> {} inconsistent with depth {} (top {top})",
                node.level_in, node.level_out, node.depth
            )));
        }
        let after = if node.bootstrap {
            pp.l_eff
        } else {
            node.level_out
        };
        if node.level_after != after {
            return Err(at(format!(
                "level after is {}, expected {after}",
                node.level_after
            )));
        }
        if node.skip_depth != 0 {
            check_scaled_skip(plan, i)?;
        }
        for (k, &u) in node.inputs.iter().enumerate() {
            let extra = if k == 1 { node.skip_depth } else { 0 };
            if plan.nodes[u].level_after < node.level_in + extra {
                return Err(at(format!(
                    "runs at level {} but step {u} delivers level {}",
                    node.level_in, plan.nodes[u].level_after
                )));
            }
        }
        if matches!(node.op, LayerOp::Input) && node.level_in > pp.input_level {
            return Err(at(format!(
                "input at level {}, above the fresh level {}",
                node.level_in, pp.input_level
            )));
        }
        if matches!(node.kind, LevelOpKind::Input) != matches!(node.op, LayerOp::Input) {
            return Err(at("kind and operation disagree".into()));
        }
        if node.bsgs_baby > slots {
            return Err(at(format!(
                "baby-step span {} above {slots} slots",
                node.bsgs_baby
            )));
        }
    }
    for &k in &plan.galois_steps {
        if k.unsigned_abs() as usize >= slots {
            return Err(bad(format!("rotation step {k} outside ±{slots}")));
        }
    }
    Ok(())
}

/// Checks one layout of a plan packing `slots` slots with `batch` images
/// per ciphertext.
pub fn check_layout(l: &Layout, slots: usize, batch: usize) -> std::result::Result<(), String> {
    let plane = l.base_h.checked_mul(l.base_w).unwrap_or(0);
    if l.slots != slots {
        return Err(format!(
            "layout for {} slots, the plan packs {slots}",
            l.slots
        ));
    }
    if l.batch != batch {
        return Err(format!(
            "layout for a batch of {}, the plan packs {batch}",
            l.batch
        ));
    }
    if batch == 0 || !batch.is_power_of_two() || batch > slots {
        return Err(format!("batch {batch} is not a power of two up to {slots}"));
    }
    if plane == 0
        || plane > slots / batch
        || l.gap == 0
        || l.channels == 0
        || l.height == 0
        || l.width == 0
    {
        return Err("empty or oversized layout".into());
    }
    if l.height.saturating_mul(l.gap) > l.base_h || l.width.saturating_mul(l.gap) > l.base_w {
        return Err(format!(
            "{}x{} at gap {} exceeds the {}x{} grid",
            l.height, l.width, l.gap, l.base_h, l.base_w
        ));
    }
    let per = l.planes().saturating_mul(l.gap.saturating_mul(l.gap));
    if per == 0 || l.channels.div_ceil(per) > MAX_CTS {
        return Err(format!(
            "{} channels need more than {MAX_CTS} ciphertexts",
            l.channels
        ));
    }
    Ok(())
}

impl Prepared {
    /// Validates `plan` against `params` and binds it to `model` (the
    /// model as loaded; it is folded here, as the compiler folded it).
    /// A plan without value scales runs with all factors 1 (calibration).
    pub fn new(plan: &CompiledPlan, model: &nn::Graph, params: &ckks::Params) -> Result<Self> {
        let folded =
            nn::transform::fold_all(model).map_err(|e| RuntimeError::Model(e.to_string()))?;
        Self::from_folded(plan, &folded, params)
    }

    /// As [`Prepared::new`] for a model already in inference form.
    pub fn from_folded(
        plan: &CompiledPlan,
        folded: &nn::Graph,
        params: &ckks::Params,
    ) -> Result<Self> {
        check_plan(plan, params)?;
        if !plan.model_hash.is_empty() {
            let h = model_hash(folded);
            if h != plan.model_hash {
                return Err(RuntimeError::Model(format!(
                    "the plan was compiled for model {}…, this model is {}…",
                    &plan.model_hash.get(..12).unwrap_or(&plan.model_hash),
                    &h[..12]
                )));
            }
        }
        let n = plan.nodes.len();
        let factors = if plan.value_scales.is_empty() {
            natural_factors(plan)
        } else {
            plan.value_scales.clone()
        };
        let mut steps = Vec::with_capacity(n);
        for (i, node) in plan.nodes.iter().enumerate() {
            let f_out = factors[i];
            let f_in = node.inputs.first().map(|&u| factors[u]).unwrap_or(1.0);
            let step = match &node.op {
                LayerOp::Input => Step::Input,
                LayerOp::Add => {
                    let (a, b) = (factors[node.inputs[0]], factors[node.inputs[1]]);
                    if a != b || a != f_out {
                        return Err(bad(format!(
                            "step {i}: addition of values at scales {a} and {b} into {f_out}"
                        )));
                    }
                    Step::Add { scaled_skip: None }
                }
                LayerOp::Tap => {
                    if f_in != f_out {
                        return Err(bad(format!(
                            "step {i}: a tap cannot change the value scale"
                        )));
                    }
                    Step::Tap
                }
                LayerOp::GlobalAvgPool { .. } => {
                    let want = f_in / pool_divisor(node);
                    if (f_out - want).abs() > 1e-12 * want {
                        return Err(bad(format!(
                            "step {i}: a pool of factor {f_in} gives {want}, plan says {f_out}"
                        )));
                    }
                    Step::GlobalPool
                }
                LayerOp::PolyAct { .. } => {
                    let nnode = folded.node(&node.name).ok_or_else(|| {
                        RuntimeError::Model(format!("no node `{}`", node.name.escape_debug()))
                    })?;
                    let nn::Op::PolyAct(p) = &nnode.op else {
                        return Err(RuntimeError::Model(format!(
                            "node `{}` is not a polynomial activation",
                            node.name.escape_debug()
                        )));
                    };
                    if p.degree() > 64 {
                        return Err(RuntimeError::Model("polynomial degree above 64".into()));
                    }
                    let d = match node.op {
                        LayerOp::PolyAct { degree, .. } => degree,
                        _ => unreachable!(),
                    };
                    if p.degree() > d {
                        return Err(RuntimeError::Model(format!(
                            "`{}` has degree {}, the plan {d}",
                            node.name.escape_debug(),
                            p.degree()
                        )));
                    }
                    let mut pw = 1.0;
                    let coeffs: Vec<f64> = p
                        .coeffs
                        .iter()
                        .map(|&c| {
                            let v = c * pw / f_out;
                            pw *= f_in;
                            v
                        })
                        .collect();
                    if matches!(node.op, LayerOp::PolyAct { fused: true, .. }) {
                        let add_inputs = &plan.nodes[node.inputs[0]].inputs;
                        fused_square(&mut steps, node, add_inputs, &coeffs, p)?
                    } else {
                        Step::Poly(coeffs)
                    }
                }
                _ => {
                    let lw = linear_weights(folded, node)?;
                    check_taps(&lw.taps, node, i)?;
                    check_elementwise(&lw, node, i)?;
                    let r = f_in / f_out;
                    Step::Linear(LinearStep {
                        taps: lw.taps.into_iter().map(|(t, w)| (t, w * r)).collect(),
                        stride: lw.stride,
                        bias: lw.bias.map(|b| b.into_iter().map(|v| v / f_out).collect()),
                        out_scale: lw.out_scale,
                        bsgs_baby: node.bsgs_baby.max(1),
                        bsgs_centred: node.bsgs_centred,
                        square_level: None,
                    })
                }
            };
            steps.push(step);
        }
        Ok(Self {
            plan: plan.clone(),
            steps,
            factors,
        })
    }
}

/// The [`Step::Square`] of fused activation `node` with coefficients
/// `coeffs` (value scales folded in), folding `sqrt|a|` into the linear
/// step it reads (`steps[node.inputs[0]]`, already built), or, when that is
/// an addition (of inputs `add_inputs`), into the addition's skip and its
/// main input's linear step ([`check_fused`] has checked the structure).
///
/// Errors: a model activation that is not a quadratic completing to a
/// square ([`compiler::lower::square_completes`]).
fn fused_square(
    steps: &mut [Step],
    node: &compiler::plan::PlanNode,
    add_inputs: &[usize],
    coeffs: &[f64],
    p: &nn::graph::PolyAct,
) -> Result<Step> {
    let (c, b, a) = match coeffs {
        [c, b, a] if compiler::lower::square_completes(p) => (*c, *b, *a),
        _ => {
            return Err(RuntimeError::Model(format!(
                "`{}` is fused into a square but is not a quadratic that completes to one",
                node.name.escape_debug()
            )));
        }
    };
    let m = a.abs().sqrt();
    let level = node.level_in as usize;
    let mut u = node.inputs[0];
    if let Some(Step::Add { scaled_skip }) = steps.get_mut(u) {
        *scaled_skip = Some((m, level));
        u = add_inputs[0];
    }
    let Some(Step::Linear(lin)) = steps.get_mut(u) else {
        return Err(bad(format!(
            "`{}`: a fused activation must read a linear step",
            node.name.escape_debug()
        )));
    };
    for (_, w) in &mut lin.taps {
        *w *= m;
    }
    if let Some(bias) = &mut lin.bias {
        for v in bias.iter_mut() {
            *v *= m;
        }
    }
    lin.square_level = Some(level);
    Ok(Step::Square {
        shift: m * b / (2.0 * a),
        negate: a < 0.0,
        constant: c - b * b / (4.0 * a),
    })
}

/// What a rotate-and-sum pool's factor divides its input's by: `H W` when
/// its `1/(H W)` is not folded into the next layer (the sum then stands for
/// the mean at a smaller factor, free), else 1 (the next layer expects the
/// sum).
pub fn pool_divisor(node: &compiler::plan::PlanNode) -> f64 {
    match node.op {
        LayerOp::GlobalAvgPool {
            scale_folded: false,
        } => (node.layout_in.height * node.layout_in.width) as f64,
        _ => 1.0,
    }
}

/// The value scales of an uncalibrated plan: 1 everywhere, except that a
/// rotate-and-sum pool divides its input's by `H W` and additions and taps
/// keep their first input's.
pub fn natural_factors(plan: &CompiledPlan) -> Vec<f64> {
    let mut f = Vec::with_capacity(plan.nodes.len());
    for node in &plan.nodes {
        let fin = node.inputs.first().map(|&u| f[u]).unwrap_or(1.0);
        f.push(match node.op {
            LayerOp::GlobalAvgPool { .. } => fin / pool_divisor(node),
            LayerOp::Add | LayerOp::Tap => fin,
            _ => 1.0,
        });
    }
    f
}

/// Output factors and a per-element bias must cover the output map
/// exactly (one per element of `[C, H, W]`) and be finite.
fn check_elementwise(
    lw: &compiler::plan::LinearWeights,
    node: &compiler::plan::PlanNode,
    i: usize,
) -> Result<()> {
    let l = &node.layout_out;
    let n = l.channels * l.height * l.width;
    let bad =
        |m: String| RuntimeError::Model(format!("step {i} `{}`: {m}", node.name.escape_debug()));
    if let Some(a) = &lw.out_scale {
        if a.len() != n {
            return Err(bad(format!(
                "{} output factors for a {}x{}x{} map",
                a.len(),
                l.channels,
                l.height,
                l.width
            )));
        }
        if a.iter().any(|v| !v.is_finite()) {
            return Err(bad("non-finite output factor".into()));
        }
    }
    if let Some(b) = &lw.bias
        && b.iter().any(|v| !v.is_finite())
    {
        return Err(bad("non-finite bias".into()));
    }
    Ok(())
}

fn check_taps(taps: &[(Tap, f64)], node: &compiler::plan::PlanNode, i: usize) -> Result<()> {
    let (ci, co) = (node.layout_in.channels, node.layout_out.channels);
    for (t, w) in taps {
        if t.i >= ci || t.o >= co || !w.is_finite() {
            return Err(RuntimeError::Model(format!(
                "step {i} `{}`: weights for channels {}->{} do not fit the plan's {ci}->{co}",
                node.name.escape_debug(),
                t.i,
                t.o
            )));
        }
        if t.dy.unsigned_abs() as usize > node.layout_in.base_h
            || t.dx.unsigned_abs() as usize > node.layout_in.base_w
        {
            return Err(RuntimeError::Model(format!(
                "step {i} `{}`: kernel offset outside the image",
                node.name.escape_debug()
            )));
        }
    }
    Ok(())
}

/// The largest slot magnitude the runtime lets reach a bootstrap of a
/// `slots`-slot ciphertext under `params`: the engine's documented input
/// bound ([`ckks::bootstrap::BootstrapConfig::input_bound`]: every input
/// within it keeps [`ckks::bootstrap::PRECISION_BITS`] whatever its
/// spectrum, constant vectors included; at N = 2^16 0.094 from 1024 slots
/// up, 0.238 below; at N = 2^12 0.17 at full slots, 0.42 sparse), or
/// [`crate::BOOTSTRAP_INPUT_BOUND`] for a set that does
/// not bootstrap or a slot count it does not bootstrap.
pub fn bootstrap_input_bound(params: &ckks::Params, slots: usize) -> f64 {
    bootstrap_config(params, slots).map_or(crate::BOOTSTRAP_INPUT_BOUND, |c| c.input_bound())
}

/// The bootstrapping configuration of `params` for ciphertexts of `slots`
/// slots (sparse packing below N/2).
///
/// Errors: a set that does not bootstrap, or a slot count it cannot
/// bootstrap (not a power of two, above N/2, or below
/// [`ckks::bootstrap::min_slots`]).
pub fn bootstrap_config(
    params: &ckks::Params,
    slots: usize,
) -> Result<ckks::bootstrap::BootstrapConfig> {
    let cfg = ckks::bootstrap::config_for(params)
        .ok_or_else(|| RuntimeError::Plan(format!("`{}` does not bootstrap", params.name())))?;
    let min = ckks::bootstrap::min_slots(&cfg);
    let max = params.max_slots();
    if !slots.is_power_of_two() || slots > max || slots < min {
        return Err(RuntimeError::Plan(format!(
            "`{}` bootstraps {min} to {max} slots (a power of two), not {slots}",
            params.name()
        )));
    }
    Ok(cfg.with_slots(slots, max))
}
