//! Errors of plan loading, preparation and execution.

use thiserror::Error;

/// Everything the runtime can refuse or fail with.
#[derive(Debug, Error)]
pub enum RuntimeError {
    /// The plan is malformed, inconsistent or does not match the model or
    /// parameter set.
    #[error("invalid plan: {0}")]
    Plan(String),
    /// The model does not match the plan (hash, node names, shapes).
    #[error("model does not match the plan: {0}")]
    Model(String),
    /// An input (image, tensor) has the wrong shape or values.
    #[error("bad input: {0}")]
    Input(String),
    /// A key or ciphertext file is malformed or of the wrong kind.
    #[error("{0}")]
    Format(String),
    /// A step of the plan failed on the backend.
    #[error("step {index} `{name}` ({kind}): {source}")]
    Step {
        /// Index of the plan step.
        index: usize,
        /// Its name.
        name: String,
        /// Its kind.
        kind: String,
        /// What failed.
        #[source]
        source: ckks::CkksError,
    },
    /// An engine error outside a plan step (keys, encryption, decryption).
    #[error(transparent)]
    Ckks(#[from] ckks::CkksError),
    /// A compiler error (lowering, weights).
    #[error(transparent)]
    Compile(#[from] compiler::CompileError),
    /// I/O.
    #[error("{0}")]
    Io(#[from] std::io::Error),
}

/// Result with [`RuntimeError`].
pub type Result<T> = std::result::Result<T, RuntimeError>;
