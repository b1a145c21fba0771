//! The Residue HE compiler: from a network graph to an executable plan.
//!
//! Pure logic, no ciphertexts. It decides how tensors sit in CKKS slots
//! ([`layout`]: multiplexed packing, one level per linear layer, exact
//! diagonal counts with baby-step/giant-step), lowers an [`nn::Graph`] to
//! packed layers and a level graph ([`lower`]), places bootstraps so that
//! skip connections cost as little as possible ([`level`], [`placement`]:
//! an exact dynamic program over levels, plus a greedy baseline), picks the
//! parameter set ([`params`], [`cost`]), and writes a serializable
//! [`plan::CompiledPlan`] plus a [`plan::Report`] of what the model will
//! cost encrypted (per layer, per skip connection, keys, time).
//!
//! ```no_run
//! # fn main() -> Result<(), compiler::CompileError> {
//! # let graph: nn::Graph = unimplemented!();
//! let sets = compiler::params::ParamSet::defaults();
//! let (plan, report) = compiler::compile(&graph, &sets, &Default::default())?;
//! println!("{}", report.to_text());
//! std::fs::write("plan.json", plan.to_json()).unwrap();
//! # Ok(()) }
//! ```
//!
//! docs/design.md's worked example (fresh input at `L_eff`, ResNet-20, depth-3
//! activations, `L_eff = 12`) comes out as 8 bootstraps for ResNet-20, 6
//! for the Dirac chain, 6 or 7 for Dirac + shared sources ([`nets`],
//! `tests/worked_example.rs`).

#![warn(missing_docs)]

pub mod cost;
pub mod error;
pub mod layout;
pub mod level;
pub mod lower;
pub mod nets;
pub mod params;
pub mod placement;
pub mod plan;

pub use error::CompileError;
pub use level::{LevelBudget, LevelGraph, LevelNode, LevelOpKind, NodeId, Placement, SkipKind};
pub use placement::{Objective, Solution, Strategy};
pub use plan::{CompileOptions, CompiledPlan, Goal, Report, compile};
