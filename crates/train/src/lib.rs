//! Plaintext training of HE-friendly CNNs with burn on its pure-Rust `flex`
//! CPU backend.
//!
//! - [`model`]: ResNet, Dirac and Dirac + shared-source networks with
//!   learned polynomial activations that record their input ranges.
//! - [`trainer`]: SGD/AdamW with warmup + cosine schedule, augmentation,
//!   exact checkpoint/resume, progress lines and a JSONL log.
//! - [`export`]: the trained network as plain weights (Dirac and optionally
//!   BN folded) for the nn crate's graph and ONNX export.
//! - [`cli`]: the `residue train` arguments and driver.
//!
//! Input convention of every model trained here: pixels divided by 255, no
//! mean/std normalization (the stem's batch norm absorbs it).

pub mod cli;
pub mod export;
pub mod model;
pub mod trainer;

pub use model::{ArchConfig, Family, Net};
pub use trainer::{TrainConfig, Trainer};
