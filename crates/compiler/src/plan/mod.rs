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
//!   ([`crate::layout::Layout::slot`]) and encrypts at `level_in`;
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
//! A batched plan (`params.batch = B > 1`) runs exactly these steps on `B`
//! interleaved images at once ([`crate::layout`], batching): the client
//! packs image `b` at `slot + b`, and every rotation step is already a
//! multiple of `B`.
//!
//! `galois_steps` are exactly the rotation keys the steps use (bootstrapping
//! keys not included). Under a key mode other than per-step, a rotation by
//! a step that is not among them runs as its decomposition into steps that
//! are ([`RotationKeys`]; the plan's counts already are those of the
//! decompositions). The test `tests/simulate.rs` runs plans this way on
//! plaintext slot vectors and matches the reference executor.
//!
//! # Where things are
//!
//! - the plan format and reading it back: `format.rs` ([`CompiledPlan`],
//!   [`PlanNode`], [`PlanParams`], [`PLAN_VERSION`]);
//! - the report: `report.rs` ([`Report`] and its parts, [`Report::to_text`]);
//! - compilation: `compile.rs` ([`compile`], [`compile_lowered`],
//!   [`CompileOptions`], [`Goal`], the objectives);
//! - rotation keys: `keys.rs` ([`KeyMode`], [`naf`], [`RotationKeys`]: how
//!   a rotation runs with the keys that exist; [`apply_keys`],
//!   [`budget_keys`]);
//! - layer weights: `weights.rs` ([`linear_weights`], [`bias_slots`]).

mod compile;
mod format;
mod keys;
mod report;
mod weights;

pub use compile::{Batch, CompileOptions, Goal, compile, compile_lowered, time_objective};
pub use format::{CompiledPlan, PLAN_VERSION, PLAN_VERSION_UNBATCHED, PlanNode, PlanParams};
pub use keys::{
    HoistedRotations, KeyMode, MissingKey, RotationKeys, apply_keys, budget_keys, naf,
    network_key_bytes, pow2_keys,
};
pub use report::{Baseline, Candidate, LayerReport, Report, SkipReport, SkipsTotal};
pub use weights::{LinearWeights, bias_slots, linear_weights};
