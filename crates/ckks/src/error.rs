//! Typed errors of the CKKS engine.

use thiserror::Error;

/// Everything that can go wrong in the engine, named so callers can react.
#[derive(Debug, Error, Clone, PartialEq)]
pub enum CkksError {
    /// A parameter set is malformed or not secure enough for its name.
    #[error("invalid parameters: {0}")]
    InvalidParams(String),
    /// No parameter set has this name.
    #[error("unknown parameter set `{0}` (see `residue params`)")]
    UnknownParams(String),
    /// Two operands, or an operand and a key, belong to different parameter sets.
    #[error("operands use different parameter sets")]
    ParamsMismatch,
    /// Operands of an addition have different scales.
    #[error("scale mismatch: {0} vs {1} (rescale or adjust the scale first)")]
    ScaleMismatch(f64, f64),
    /// An operation needs more levels than the ciphertext has left.
    #[error("not enough levels: operation needs level >= {needed}, ciphertext is at {have}")]
    NotEnoughLevels {
        /// Level the operation needs.
        needed: usize,
        /// Level the operand has.
        have: usize,
    },
    /// A ciphertext has the wrong number of components for the operation.
    #[error("ciphertext has degree {0}; this operation needs degree {1}")]
    Degree(usize, usize),
    /// A rotation or conjugation key was not generated.
    #[error("no Galois key for element {0} (rotation keys must be requested at keygen)")]
    MissingGaloisKey(u64),
    /// A rotation by `step` (or a conjugation) needs the Galois key for
    /// `element`, and the evaluator has none, or none at all.
    #[error(
        "no Galois key for element {element} ({}){}; rotation keys must be requested at keygen",
        match step { Some(k) => format!("rotation by {k}"), None => "conjugation".to_string() },
        if *none_at_all { ": the evaluator holds no Galois keys at all" } else { "" }
    )]
    MissingRotationKey {
        /// The Galois element needed.
        element: u64,
        /// The rotation step asked for (`None`: conjugation).
        step: Option<i64>,
        /// The evaluator holds no Galois keys at all.
        none_at_all: bool,
    },
    /// A Galois element that is even, 1, or not below 2N was given to key generation.
    #[error(
        "invalid Galois element {element}: elements must be odd, not 1, and below 2N = {two_n}"
    )]
    InvalidGaloisElement {
        /// The element given.
        element: u64,
        /// 2N for the parameter set.
        two_n: u64,
    },
    /// A level above the parameter set's top level was asked for.
    #[error("level {level} does not exist: the parameter set's maximum level is {max}")]
    LevelAboveMax {
        /// Level asked for.
        level: usize,
        /// The set's maximum level.
        max: usize,
    },
    /// A scale is not usable: below 1, not finite, or (times the message)
    /// beyond the modulus at its level.
    #[error("scale out of bounds: {0}")]
    ScaleOutOfBounds(String),
    /// A switching key was made for lower levels than the ciphertext's.
    #[error("key switches ciphertexts up to level {key}; ciphertext is at level {ciphertext}")]
    KeyLevel {
        /// Highest level the key serves.
        key: usize,
        /// Level of the ciphertext.
        ciphertext: usize,
    },
    /// The relinearization key was not generated.
    #[error("no relinearization key")]
    MissingRelinKey,
    /// Too many values for the number of slots.
    #[error("{values} values do not fit in {slots} slots")]
    TooManyValues {
        /// Number of values given.
        values: usize,
        /// Slot capacity.
        slots: usize,
    },
    /// A slot count that is not a power of two or exceeds N/2.
    #[error("invalid slot count {0}")]
    InvalidSlots(usize),
    /// A value cannot be encoded at this scale (not finite, or too large).
    #[error("value not encodable: {0}")]
    Encoding(String),
    /// A serialized object is malformed, truncated or for other parameters.
    #[error("malformed input: {0}")]
    Malformed(String),
    /// A polynomial or bootstrapping operation is outside its domain.
    #[error("{0}")]
    Domain(String),
}

/// Result alias for the engine.
pub type Result<T> = std::result::Result<T, CkksError>;
