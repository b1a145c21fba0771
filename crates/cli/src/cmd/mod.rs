//! One module per `residue` subcommand.

pub mod params;
