//! One module per `residue` subcommand.

pub mod analyze;
pub mod bench;
pub mod bench_serve;
pub mod client;
pub mod compile;
pub mod decrypt;
pub mod demo;
pub mod encrypt;
pub mod eval;
pub mod eval_he;
pub mod he;
pub mod infer;
pub mod json;
pub mod keygen;
pub mod logit_error;
pub mod params;
pub mod predict;
pub mod primitives;
pub mod reproduce;
pub mod serve;
pub mod tradeoff;
#[cfg(feature = "train")]
pub mod train;
