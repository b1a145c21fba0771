//! Networks: model graph, ONNX, reference executor, transforms, zoo, datasets.
//!
//! - [`graph`]: the typed graph IR every other crate walks.
//! - [`exec`]: the plaintext `f64` reference executor.
//! - [`transform`]: batch-norm and Dirac folding.
//! - [`input`]: one model input from a PNG or `.npy` file.
//! - [`onnx`]: ONNX import (onnx-ir) and export.
//! - [`zoo`]: ResNet / Dirac / Dirac + shared-source builders.
//! - [`data`]: datasets (Fashion-MNIST/MNIST IDX, CIFAR-10 binary).

pub mod data;
pub mod exec;
pub mod graph;
pub mod input;
pub mod onnx;
pub mod transform;
pub mod zoo;

pub use graph::{Graph, GraphError, Node, Op, Tensor};
