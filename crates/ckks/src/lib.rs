//! Full-RNS CKKS homomorphic encryption.
//!
//! Leveled engine: named parameter sets checked against the HE Standard
//! 128-bit table, RNS arithmetic on `tfhe-ntt`, canonical-embedding encoding,
//! ternary-secret keys with hybrid key switching, and an evaluator with
//! exact level and scale tracking.

pub mod bootstrap;
pub mod ciphertext;
mod crt;
pub mod dft;
pub mod encoding;
pub mod error;
pub mod evaluator;
pub mod keys;
pub mod keyswitch;
pub mod linear;
pub mod modarith;
pub mod params;
pub mod polyeval;
pub mod ring;
pub mod sampling;
pub mod serialize;
mod simd;

pub use ciphertext::{Ciphertext, Decryptor, Encryptor};
pub use encoding::{Encoder, Plaintext};
pub use error::{CkksError, Result};
pub use evaluator::{EvaluationKeys, Evaluator};
pub use keys::{GaloisKeys, KeyGenerator, PublicKey, RelinKey, SecretKey};
pub use params::{PARAM_SETS, Params, ParamsLiteral};
pub use polyeval::{Chebyshev, Parity, PolyEvalOptions, PolyPlan, PowerSeries};
pub use rustfft::num_complex::Complex64;
pub use serialize::Wire;
