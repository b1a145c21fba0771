//! The Residue runtime: executes a compiled plan on CKKS ciphertexts (or on
//! a level- and scale-exact slot simulator), with the client's steps (key
//! generation for exactly what a plan needs, encryption, decryption) and
//! the server's (inference from evaluation keys only).
//!
//! ```text
//! plan (compiler) + model ──► scaling::calibrate ──► Prepared (validated, weights bound)
//! client: key_needs ─► ClientKeys::generate ─► encrypt ─► EncryptedTensor
//! server: load_eval_keys ─► CkksBackend ─► exec::execute ─► EncryptedTensor
//! client: decrypt ─► logits
//! ```
//!
//! - [`backend::Backend`]: the operations a plan is executed with;
//!   [`he::CkksBackend`] on `ckks`, [`sim::Simulator`] on plain slots.
//! - [`exec::execute`]: one executor for both backends.
//! - [`packing`]: input packing and output read-out, shared by client and
//!   backends.
//! - [`scaling`]: value scales that keep every bootstrap input within
//!   [`prepare::bootstrap_input_bound`].
//! - [`prepare`]: plan validation (untrusted input) and binding to a model.
//! - [`client`], [`files`]: keys, encryption, decryption, file formats.

#![warn(missing_docs)]

pub mod backend;
pub mod client;
pub mod error;
pub mod exec;
pub mod files;
pub mod he;
pub mod noise;
pub mod packing;
pub mod paramset;
pub mod prepare;
pub mod scaling;
pub mod server;
pub mod sim;

pub use error::{Result, RuntimeError};
pub use exec::{Progress, RunStats, execute};
pub use prepare::Prepared;

/// Fallback bound on bootstrap inputs, for a simulator of a set that does
/// not bootstrap. Plans of bootstrappable sets use the engine's documented
/// bound instead ([`prepare::bootstrap_input_bound`]): the engine's EvalMod
/// approximates `t mod q_0` through `sin`, whose error grows with the
/// message's share of `q_0`; at magnitude 1 a constant vector (all its
/// energy in one coefficient, the worst case) keeps only about 13 bits,
/// within the engine's bound every input keeps 20 (`docs/benchmarks.md`).
pub const BOOTSTRAP_INPUT_BOUND: f64 = 1.0;
