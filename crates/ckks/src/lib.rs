//! Full-RNS CKKS homomorphic encryption.
//!
//! Leveled engine: named parameter sets checked against the HE Standard
//! 128-bit table, RNS arithmetic on `tfhe-ntt`, canonical-embedding encoding,
//! ternary-secret keys with hybrid key switching, and an evaluator with
//! exact level and scale tracking.
//!
//! # Preconditions
//!
//! What each operation checks, so that callers (the runtime, a server) can
//! rely on a typed error instead of a wrong value. Every check is a constant
//! amount of work per call, never per coefficient (except where the values
//! themselves are being encoded).
//!
//! - **Parameter identity.** Every [`Ciphertext`] and [`Plaintext`] carries
//!   its set's [`Params::id`]. Every [`Evaluator`] operation refuses an
//!   operand, plaintext or key (relinearization, Galois) of another set
//!   with [`CkksError::ParamsMismatch`], and an operand whose level or
//!   slot count disagrees with its polynomials
//!   ([`CkksError::Malformed`], [`CkksError::InvalidSlots`]); [`Evaluator::new`] refuses relinearization or
//!   Galois keys of another set; so do [`Encryptor`] (key and plaintext),
//!   [`Decryptor`], [`Encoder::try_decode`], [`Encoder::decode_coeffs`] and
//!   [`Wire::to_bytes`] (bootstrapping keys included). Readers tag what they
//!   read with the reader's set. ([`Encoder::decode`] returns an empty
//!   vector for another set's plaintext.) [`KeyGenerator`] makes keys for
//!   the set of the secret key it is given. A ciphertext of another ring
//!   degree is refused the same way, never a panic.
//! - **Metadata.** A ciphertext's or plaintext's level, scale and slot
//!   count are read-only outside this crate ([`Ciphertext::level`],
//!   [`Ciphertext::scale`], [`Ciphertext::slots`], and the same on
//!   [`Plaintext`]): only the crate's operations set them, and the one
//!   public way to change a scale, [`Ciphertext::set_scale`], checks the new
//!   scale as `encode` does (see **Scales**) against the ciphertext's own
//!   parameter set.
//! - **Levels.** An operand below the level an operation needs gives
//!   [`CkksError::NotEnoughLevels`]; a level the set does not have (encode
//!   above the top) gives [`CkksError::LevelAboveMax`] naming the maximum.
//! - **Scales.** Every operation that produces a scale checks it as
//!   `encode` checks one ([`Params::check_scale`]): finite, at least 1, and
//!   `log2(scale) < log2(Q_level) - 1` at the result's level (room for a
//!   message of magnitude 1 and its sign): `mul`, `mul_relin`, `square`,
//!   `mul_plain`, `mul_const`, `mul_int` (the scale times |k|), `adjust`
//!   and polynomial evaluation refuse a
//!   product beyond the modulus, `rescale` a result below 1, all with
//!   [`CkksError::ScaleOutOfBounds`]. Additions need equal scales
//!   ([`CkksError::ScaleMismatch`]). The magnitude of encrypted values
//!   cannot be checked: keeping |value| * scale below the modulus beyond
//!   magnitude 1 is the caller's part.
//! - **Constants and encoded values.** `encode`, `encode_real` and
//!   `encode_coeffs` refuse non-finite values, more values than slots or
//!   coefficients than N, a scale below 1, and scaled values beyond the
//!   modulus ([`CkksError::Encoding`]). `add_const` checks `c * scale` the
//!   same way; `mul_const` checks `c` and `const_scale` (finite, at least 1,
//!   `c * const_scale` in range and not rounded to 0 unless `c` is 0) and
//!   the product's scale times `|c|` below the modulus, as `mul_int` does
//!   with `|k|`.
//! - **Polynomials.** `eval_chebyshev` and `eval_power` check the output
//!   scale as above, with the sum of the coefficients' magnitudes (a bound on
//!   the output) as the message bound, and the levels they need.
//! - **Rotations.** Steps are reduced modulo the ciphertext's slot count;
//!   a missing key gives [`CkksError::MissingRotationKey`] naming the Galois
//!   element, the step (or conjugation) and whether there are no Galois keys
//!   at all; a key made for lower levels gives [`CkksError::KeyLevel`].
//!   Key generation refuses Galois elements that are even, 1 or >= 2N
//!   ([`CkksError::InvalidGaloisElement`]).
//! - **Linear transforms.** Encoding refuses 0 or invalid slot counts and
//!   diagonals of the wrong length; an encoded transform carries its set's
//!   id, and applying it with another set's evaluator is
//!   [`CkksError::ParamsMismatch`].
//! - **Bootstrapping.** [`bootstrap::Bootstrapper::new`] refuses keys of
//!   another set ([`CkksError::ParamsMismatch`]) and configurations that
//!   cannot be right ([`bootstrap::BootstrapConfig::check`]: slot counts,
//!   zero transform levels, K, degree, Hamming weight, message ratio, levels)
//!   including slot counts too small for the configured transform levels
//!   ([`bootstrap::min_slots`]); every slot count it accepts comes back
//!   right. `bootstrap` and each of its stages (`prescale`, `raise`,
//!   `coeffs_to_slots`, `eval_mod`, `slots_to_coeffs`) refuse another set's
//!   ciphertext or evaluator; `bootstrap` refuses another slot count, and a
//!   level-0 input whose scale is above q_0 / 2^`log_message_ratio` (an
//!   input with a level to spare is lowered first). The bound on slot
//!   magnitudes within which every input keeps
//!   [`bootstrap::PRECISION_BITS`] is
//!   [`bootstrap::Bootstrapper::input_bound`] (documented on
//!   [`bootstrap::Bootstrapper::bootstrap`]); it cannot be checked on
//!   encrypted values.
//! - **Serialized input** is checked field by field ([`serialize`]).

pub mod bootstrap;
pub mod ciphertext;
mod crt;
pub mod dft;
pub mod encoding;
pub mod error;
pub mod evaluator;
pub(crate) mod fpntt;
pub mod keys;
pub mod keyswitch;
pub mod linear;
pub mod modarith;
pub mod params;
pub mod polyeval;
pub mod profile;
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
pub use simd::{avx2_enabled, avx512_enabled, disable_avx2, disable_avx512, kernel_path};
