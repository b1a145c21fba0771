//! ONNX in and out.
//!
//! - [`import`]/[`load`]: ONNX → [`crate::Graph`] through `onnx-ir` 0.22
//!   (TorchScript and dynamo export patterns, polynomial activations
//!   recognized from `Mul`/`Add`/`Pow` expressions).
//! - [`export()`]/[`save`]: [`crate::Graph`] → ONNX, readable by any ONNX
//!   tool; names and activation ranges survive a round trip through the
//!   model metadata.

mod export;
mod import;
pub mod prepare;

pub use export::{
    ExportOptions, ExportStyle, META_INPUT, META_NAME, META_NODES, NodeMeta, PolyStyle, export,
    export_with, save,
};
pub use import::{
    ImportOptions, MAX_MODEL_BYTES, MAX_POLY_DEGREE, MAX_POW_EXPONENT, import, import_with, load,
    load_with,
};

use thiserror::Error;

use crate::graph::GraphError;

/// Errors of ONNX import and export.
#[derive(Debug, Error)]
pub enum OnnxError {
    /// The file could not be read or written.
    #[error("cannot access `{path}`: {source}")]
    Io {
        /// The path.
        path: String,
        /// The cause.
        source: std::io::Error,
    },
    /// The file is larger than accepted.
    #[error("model is {size} bytes, more than the {max} accepted")]
    TooLarge {
        /// File size.
        size: u64,
        /// Limit.
        max: u64,
    },
    /// Not a valid ONNX model.
    #[error("invalid ONNX model: {0}")]
    Parse(String),
    /// A node that Residue cannot represent.
    #[error("ONNX node `{node}` ({op}): {msg}")]
    Unsupported {
        /// Node name (as `onnx-ir` names it).
        node: String,
        /// Operator.
        op: String,
        /// Why.
        msg: String,
    },
    /// The model's input is not a single `[N, C, H, W]` tensor.
    #[error("model input: {0}")]
    Input(String),
    /// The model's output is unusable.
    #[error("model output: {0}")]
    Output(String),
    /// The imported (or exported) graph is invalid.
    #[error(transparent)]
    Graph(#[from] GraphError),
    /// Serialization failed.
    #[error("ONNX export failed: {0}")]
    Export(String),
}
