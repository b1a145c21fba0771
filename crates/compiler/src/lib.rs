//! The Residue HE compiler: from a network graph to an executable plan.
//!
//! Pure logic, no ciphertexts. It decides how tensors sit in CKKS slots
//! ([`layout`]), lowers an [`nn::Graph`] to packed layers and a level graph
//! ([`lower`]), places bootstraps so that skip connections cost as little as
//! possible ([`level`], [`placement`]), picks the parameter set
//! ([`params`], [`cost`]), and writes a serializable [`plan`] plus a report
//! of what the model will cost encrypted.

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
