//! The plan format: what the compiler writes and the runtime executes
//! ([`CompiledPlan`], one [`PlanNode`] per step), and reading it back with
//! its format and version checked.

use serde::{Deserialize, Serialize};

use super::{Goal, KeyMode};
use crate::cost::OpCounts;
use crate::error::CompileError;
use crate::layout::Layout;
use crate::level::{LevelOpKind, NodeId, Placement, SkipKind};
use crate::lower::LayerOp;
use crate::placement::Strategy;

/// Version of the plan format written by this build for batched plans
/// (`params.batch > 1`, layouts with a `batch` field). Older builds refuse
/// such plans instead of misreading them.
pub const PLAN_VERSION: u32 = 3;

/// Version written for unbatched plans (no `batch` field anywhere; the
/// same bytes, hence the same plan hash, as before batching existed).
/// Both versions are read.
pub const PLAN_VERSION_UNBATCHED: u32 = 2;

fn one() -> usize {
    1
}

fn is_one(b: &usize) -> bool {
    *b == 1
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
    /// Images per ciphertext (interleaved; [`crate::layout`]). Not written
    /// when 1.
    #[serde(default = "one", skip_serializing_if = "is_one")]
    pub batch: usize,
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
    /// For additions: levels the skip is read at above the sum (1: it is
    /// multiplied by the completed square's `sqrt|a|` first;
    /// [`crate::level::LevelNode::skip_depth`]).
    #[serde(default, skip_serializing_if = "crate::level::is_zero")]
    pub skip_depth: u32,
}

/// A compiled plan: what the runtime executes and what the client needs to
/// generate exactly the right keys.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CompiledPlan {
    /// Always `"residue-plan"`.
    pub format: String,
    /// [`PLAN_VERSION`] (batched) or [`PLAN_VERSION_UNBATCHED`].
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

    /// Reads a plan, checking format and version ([`CompiledPlan::check_version`]).
    pub fn from_json(s: &str) -> Result<Self, CompileError> {
        let p: CompiledPlan =
            serde_json::from_str(s).map_err(|e| CompileError::Plan(e.to_string()))?;
        p.check_version()?;
        Ok(p)
    }

    /// Checks format and version: version [`PLAN_VERSION_UNBATCHED`] for
    /// unbatched plans, [`PLAN_VERSION`] (batched or not).
    pub fn check_version(&self) -> Result<(), CompileError> {
        let ok = self.format == "residue-plan"
            && (self.version == PLAN_VERSION
                || (self.version == PLAN_VERSION_UNBATCHED && self.params.batch == 1));
        if !ok {
            return Err(CompileError::Plan(format!(
                "not a residue plan of version {PLAN_VERSION_UNBATCHED} (unbatched) or \
                 {PLAN_VERSION} (format `{}`, version {}, batch {})",
                self.format.escape_debug(),
                self.version,
                self.params.batch
            )));
        }
        Ok(())
    }

    /// Images per ciphertext.
    pub fn batch(&self) -> usize {
        self.params.batch
    }

    /// The placement it encodes.
    pub fn placement(&self) -> Placement {
        Placement {
            boot: self.nodes.iter().map(|n| n.bootstrap).collect(),
        }
    }
}
