//! Errors of the compiler.

use thiserror::Error;

/// Everything that can go wrong while compiling a network to an HE plan.
#[derive(Debug, Error, Clone, PartialEq)]
pub enum CompileError {
    /// A level graph breaks a structural rule.
    #[error("invalid level graph at node {node}: {msg}")]
    InvalidLevelGraph {
        /// The node index.
        node: usize,
        /// What is wrong.
        msg: String,
    },
    /// A placement does not have one flag per node.
    #[error("placement has {got} flags for {expected} nodes")]
    PlacementSize {
        /// Nodes in the graph.
        expected: usize,
        /// Flags given.
        got: usize,
    },
    /// A value reaches an operation with fewer levels than it consumes.
    #[error("node {node} (`{name}`) needs {depth} levels but its input is at level {level}")]
    LevelUnderflow {
        /// The node index.
        node: usize,
        /// Its name.
        name: String,
        /// The input level.
        level: u32,
        /// The operation's depth.
        depth: u32,
    },
    /// One operation is deeper than a freshly bootstrapped ciphertext.
    #[error("`{name}` has depth {depth}, more than L_eff = {l_eff}: no placement can run it")]
    DepthExceedsBudget {
        /// The operation.
        name: String,
        /// Its depth.
        depth: u32,
        /// Levels after a bootstrap.
        l_eff: u32,
    },
    /// No placement reaches this node.
    #[error("no bootstrap placement reaches node {node} (`{name}`)")]
    Infeasible {
        /// The node index.
        node: usize,
        /// Its name.
        name: String,
    },
    /// Levels beyond what the planner represents.
    #[error("level {0} is too high (at most 255)")]
    LevelTooHigh(u32),
    /// Too many values live at once for the dynamic program.
    #[error("placement search too wide: {0} states")]
    TooManyStates(usize),
    /// A node index that is not an addition.
    #[error("node {0} is not an addition")]
    NotAnAdd(usize),
    /// The network graph is invalid.
    #[error("model graph: {0}")]
    Graph(#[from] nn::GraphError),
    /// An operator or shape the compiler does not support.
    #[error("unsupported: {0}")]
    Unsupported(String),
    /// A layout that does not fit the slots.
    #[error("layout: {0}")]
    Layout(String),
    /// A parameter set name that is not known.
    #[error("unknown parameter set `{0}` (known: {1})")]
    UnknownParams(String, String),
    /// Calibration data that cannot be used.
    #[error("calibration: {0}")]
    Calibration(String),
    /// A batch that cannot be packed.
    #[error("batch: {0}")]
    Batch(String),
    /// Rotation keys that cannot be chosen: a key-memory budget below what
    /// the `±2^k` keys alone need, or a decomposition without its keys.
    #[error("rotation keys: {0}")]
    KeyBudget(String),
    /// A serialized plan that cannot be read.
    #[error("plan: {0}")]
    Plan(String),
}
