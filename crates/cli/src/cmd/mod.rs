//! One module per `residue` subcommand.

pub mod analyze;
pub mod bench;
pub mod compile;
pub mod demo;
pub mod eval;
pub mod params;
pub mod predict;
#[cfg(feature = "train")]
pub mod train;
