//! One module per `residue` subcommand.

pub mod analyze;
pub mod bench;
pub mod compile;
pub mod demo;
pub mod params;
