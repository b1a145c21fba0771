//! One module per `residue` subcommand.

pub mod bench;
pub mod demo;
pub mod params;
