//! The Residue HE compiler: from a network graph to an executable plan.
//!
//! Pure logic, no ciphertexts. It decides how tensors sit in CKKS slots
//! ([`layout`]), where every value's level goes and where bootstraps are
//! placed so that skip connections cost as little as possible
//! ([`level`], [`placement`]), which parameter set to use ([`params`],
//! [`cost`]), and writes the result as a serializable [`plan`] plus a report
//! of what the model will cost encrypted.

pub mod error;
pub mod level;
pub mod nets;
pub mod placement;

pub use error::CompileError;
pub use level::{LevelBudget, LevelGraph, LevelNode, LevelOpKind, NodeId, Placement, SkipKind};
pub use placement::{Objective, Solution, Strategy};
