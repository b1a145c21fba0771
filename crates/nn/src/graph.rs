//! Typed graph IR for HE-friendly CNNs.
//!
//! A [`Graph`] is a list of [`Node`]s connected by named values. Every value
//! is a per-image tensor: convolutional feature maps are `[C, H, W]`, the
//! output of [`Op::Flatten`] (and usually of [`Op::Dense`]) is `[N]`. The
//! batch dimension never appears in the IR; executors and importers add or
//! strip it.
//!
//! Weights live inline in the operators (a [`Tensor`] of `f64`). Their
//! stable names are derived from the node name: `{node}.weight`,
//! `{node}.bias`, `{node}.running_mean`, ... (see [`Graph::named_params`]),
//! so that trainers, importers and the zoo agree on them.
//!
//! The IR is deliberately small: only what an HE evaluator can run with
//! additions, plaintext multiplications, rotations and polynomials.
//! Everything is serde-serializable (JSON via [`Graph::to_json`]).

use std::collections::{HashMap, HashSet};

use serde::{Deserialize, Serialize};
use thiserror::Error;

/// Errors found while validating a graph or inferring its shapes.
///
/// Each variant names the offending node (or value) so that a user of an
/// imported model knows where to look.
#[derive(Debug, Error, Clone, PartialEq)]
pub enum GraphError {
    /// Two nodes (or a node and the graph input) define the same value.
    #[error("value `{value}` is defined twice (second time by node `{node}`)")]
    DuplicateValue {
        /// Node with the second definition.
        node: String,
        /// The value name.
        value: String,
    },
    /// Two nodes carry the same name.
    #[error("node name `{0}` is used twice")]
    DuplicateNode(String),
    /// A node reads a value that nothing defines.
    #[error("node `{node}` reads undefined value `{value}`")]
    UndefinedValue {
        /// The reading node.
        node: String,
        /// The missing value.
        value: String,
    },
    /// The graph output names a value that nothing defines.
    #[error("graph output `{0}` is not defined by any node or the input")]
    UndefinedOutput(String),
    /// The nodes contain a cycle.
    #[error("graph has a cycle through node `{0}`")]
    Cycle(String),
    /// A node has the wrong number of inputs for its operator.
    #[error("node `{node}` ({op}) takes {expected} input(s) but has {got}")]
    Arity {
        /// The node.
        node: String,
        /// Operator kind.
        op: &'static str,
        /// Expected number of inputs.
        expected: usize,
        /// Actual number.
        got: usize,
    },
    /// A node's input shape does not fit its operator or parameters.
    #[error("node `{node}` ({op}): {msg}")]
    Shape {
        /// The node.
        node: String,
        /// Operator kind.
        op: &'static str,
        /// What is wrong.
        msg: String,
    },
    /// A node's parameters are inconsistent (tensor sizes, zero strides, ...).
    #[error("node `{node}` ({op}) has invalid parameters: {msg}")]
    Param {
        /// The node.
        node: String,
        /// Operator kind.
        op: &'static str,
        /// What is wrong.
        msg: String,
    },
    /// The graph input shape is invalid.
    #[error("graph input `{name}` has invalid shape {shape:?}: {msg}")]
    Input {
        /// Input name.
        name: String,
        /// Its shape.
        shape: Vec<usize>,
        /// What is wrong.
        msg: String,
    },
}

/// A dense row-major tensor of `f64`.
///
/// Used for weights (conv kernels `[O, I, KH, KW]`, dense matrices
/// `[OUT, IN]`, vectors `[C]`) and for activations in the reference
/// executor (`[C, H, W]` or `[N]`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Tensor {
    /// Dimensions, outermost first.
    pub shape: Vec<usize>,
    /// Row-major elements; `data.len()` equals the product of `shape`.
    pub data: Vec<f64>,
}

impl Tensor {
    /// Builds a tensor, checking that `data` has as many elements as `shape`.
    pub fn new(shape: Vec<usize>, data: Vec<f64>) -> Result<Self, String> {
        let n = checked_numel(&shape).ok_or_else(|| format!("shape {shape:?} overflows"))?;
        if n != data.len() {
            return Err(format!(
                "shape {shape:?} needs {n} elements, got {}",
                data.len()
            ));
        }
        Ok(Self { shape, data })
    }

    /// A tensor of zeros.
    pub fn zeros(shape: Vec<usize>) -> Self {
        let n = shape.iter().product();
        Self {
            shape,
            data: vec![0.0; n],
        }
    }

    /// A 1-D tensor.
    pub fn vector(data: Vec<f64>) -> Self {
        Self {
            shape: vec![data.len()],
            data,
        }
    }

    /// Number of elements.
    pub fn numel(&self) -> usize {
        self.data.len()
    }

    /// Whether `data.len()` matches `shape`.
    pub fn is_consistent(&self) -> bool {
        checked_numel(&self.shape) == Some(self.data.len())
    }
}

/// Product of dimensions, `None` on overflow.
pub fn checked_numel(shape: &[usize]) -> Option<usize> {
    shape.iter().try_fold(1usize, |a, &d| a.checked_mul(d))
}

/// Zero padding of a 2-D window operator, in pixels.
///
/// ONNX orders these `[top, left, bottom, right]` (`x1_begin, x2_begin,
/// x1_end, x2_end`); [`Pads::onnx`] and [`Pads::from_onnx`] convert.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Pads {
    /// Rows added above.
    pub top: usize,
    /// Columns added on the left.
    pub left: usize,
    /// Rows added below.
    pub bottom: usize,
    /// Columns added on the right.
    pub right: usize,
}

impl Pads {
    /// The same padding `p` on all four sides.
    pub fn uniform(p: usize) -> Self {
        Self {
            top: p,
            left: p,
            bottom: p,
            right: p,
        }
    }

    /// ONNX order `[top, left, bottom, right]`.
    pub fn onnx(&self) -> [usize; 4] {
        [self.top, self.left, self.bottom, self.right]
    }

    /// From ONNX order `[top, left, bottom, right]`.
    pub fn from_onnx(p: [usize; 4]) -> Self {
        Self {
            top: p[0],
            left: p[1],
            bottom: p[2],
            right: p[3],
        }
    }
}

/// 2-D convolution (cross-correlation, as in PyTorch/ONNX), groups = 1,
/// dilation = 1.
///
/// `weight` is `[C_out, C_in, KH, KW]`, `bias` (if any) is `[C_out]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Conv2d {
    /// Kernel `[C_out, C_in, KH, KW]`.
    pub weight: Tensor,
    /// Optional bias `[C_out]`.
    pub bias: Option<Tensor>,
    /// Stride `[SH, SW]`, both >= 1.
    pub stride: [usize; 2],
    /// Zero padding.
    pub pads: Pads,
}

impl Conv2d {
    /// Output channels.
    pub fn c_out(&self) -> usize {
        self.weight.shape.first().copied().unwrap_or(0)
    }
    /// Input channels.
    pub fn c_in(&self) -> usize {
        self.weight.shape.get(1).copied().unwrap_or(0)
    }
    /// Kernel size `[KH, KW]`.
    pub fn kernel(&self) -> [usize; 2] {
        [
            self.weight.shape.get(2).copied().unwrap_or(0),
            self.weight.shape.get(3).copied().unwrap_or(0),
        ]
    }
}

/// A Dirac-parameterized convolution, as trained (DiracNets):
/// `W' = diag(a)·delta + diag(b)·W/||W||`, where `||W||` is the L2 norm of
/// each output filter `W[o]` and `delta` is the identity kernel
/// (`delta[o, o, KH/2, KW/2] = 1` for `o < min(C_out, C_in)`, the
/// convention of PyTorch's `nn.init.dirac_`).
///
/// It is a short-term skip connection folded into the kernel: at inference
/// it is a plain [`Conv2d`] (see `transform::fold_dirac`). Kernel sizes must
/// be odd so that the centre tap exists.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DiracConv2d {
    /// Raw (unnormalized) kernel `[C_out, C_in, KH, KW]`.
    pub weight: Tensor,
    /// Per-output-channel identity scale `a`, `[C_out]`.
    pub alpha: Tensor,
    /// Per-output-channel scale `b` of the normalized kernel, `[C_out]`.
    pub beta: Tensor,
    /// Optional bias `[C_out]`.
    pub bias: Option<Tensor>,
    /// Stride `[SH, SW]`.
    pub stride: [usize; 2],
    /// Zero padding.
    pub pads: Pads,
}

/// Inference-mode batch normalization over channels of a `[C, H, W]` or
/// `[C]` value: `y = gamma (x - mean) / sqrt(var + eps) + beta`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BatchNorm {
    /// Scale `[C]`.
    pub gamma: Tensor,
    /// Shift `[C]`.
    pub beta: Tensor,
    /// Running mean `[C]`.
    pub mean: Tensor,
    /// Running variance `[C]`.
    pub var: Tensor,
    /// Added to the variance.
    pub eps: f64,
}

impl BatchNorm {
    /// Per-channel `(scale, shift)` with `y = scale * x + shift`.
    pub fn affine(&self) -> (Vec<f64>, Vec<f64>) {
        let c = self.gamma.numel();
        let mut s = Vec::with_capacity(c);
        let mut t = Vec::with_capacity(c);
        for i in 0..c {
            let sc = self.gamma.data[i] / (self.var.data[i] + self.eps).sqrt();
            s.push(sc);
            t.push(self.beta.data[i] - sc * self.mean.data[i]);
        }
        (s, t)
    }
}

/// Element-wise polynomial activation `y = sum_i coeffs[i] * x^i`
/// (power basis, constant term first), applied to every element.
///
/// `range` is the input interval `[lo, hi]` the activation was trained for
/// (or observed on): the HE compiler scales inputs into it before
/// evaluating in the Chebyshev basis. Outside it, the polynomial is not
/// meant to approximate anything.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PolyAct {
    /// Power-basis coefficients, constant term first; length = degree + 1.
    pub coeffs: Vec<f64>,
    /// Input range `[lo, hi]`, `lo < hi`.
    pub range: [f64; 2],
}

impl PolyAct {
    /// Degree (index of the last nonzero coefficient; 0 for constants).
    pub fn degree(&self) -> usize {
        self.coeffs.iter().rposition(|&c| c != 0.0).unwrap_or(0)
    }

    /// Evaluates the polynomial at `x` (Horner).
    pub fn eval(&self, x: f64) -> f64 {
        self.coeffs.iter().rev().fold(0.0, |acc, &c| acc * x + c)
    }
}

/// Average pooling over 2-D windows of a `[C, H, W]` value.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AvgPool {
    /// Window `[KH, KW]`.
    pub kernel: [usize; 2],
    /// Stride `[SH, SW]`.
    pub stride: [usize; 2],
    /// Zero padding.
    pub pads: Pads,
    /// Whether padded zeros count in the divisor (ONNX `count_include_pad`).
    /// `true` makes the pool a single plaintext-constant linear map, which
    /// is what HE wants.
    pub count_include_pad: bool,
}

/// Fully connected layer `y = W x + b` on a `[IN]` value.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Dense {
    /// Matrix `[OUT, IN]`.
    pub weight: Tensor,
    /// Optional bias `[OUT]`.
    pub bias: Option<Tensor>,
}

/// The operator of a node.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum Op {
    /// 2-D convolution; one input `[C_in, H, W]`.
    Conv2d(Conv2d),
    /// Dirac-parameterized convolution (training form); one input.
    DiracConv2d(DiracConv2d),
    /// Batch normalization; one input.
    BatchNorm(BatchNorm),
    /// Element-wise sum of two values of equal shape (a skip connection).
    Add,
    /// Element-wise polynomial activation; one input.
    PolyAct(PolyAct),
    /// Average pooling; one input `[C, H, W]`.
    AvgPool(AvgPool),
    /// Global average pooling `[C, H, W] -> [C, 1, 1]` (as ONNX).
    GlobalAvgPool,
    /// Fully connected layer; one input `[IN]`.
    Dense(Dense),
    /// Flattens any value to `[N]` (row-major, as ONNX Flatten(axis=1)).
    Flatten,
    /// Reshapes to the given per-image shape (same element count,
    /// row-major order preserved).
    Reshape {
        /// Target per-image shape.
        shape: Vec<usize>,
    },
}

impl Op {
    /// Short name of the operator kind, used in errors.
    pub fn kind(&self) -> &'static str {
        match self {
            Op::Conv2d(_) => "conv2d",
            Op::DiracConv2d(_) => "dirac_conv2d",
            Op::BatchNorm(_) => "batch_norm",
            Op::Add => "add",
            Op::PolyAct(_) => "poly_act",
            Op::AvgPool(_) => "avg_pool",
            Op::GlobalAvgPool => "global_avg_pool",
            Op::Dense(_) => "dense",
            Op::Flatten => "flatten",
            Op::Reshape { .. } => "reshape",
        }
    }

    /// Number of input values the operator takes.
    pub fn arity(&self) -> usize {
        match self {
            Op::Add => 2,
            _ => 1,
        }
    }

    /// Whether the operator is linear in its input(s) up to a constant
    /// (convolutions, BN, pooling, dense, reshapes, add).
    pub fn is_linear(&self) -> bool {
        !matches!(self, Op::PolyAct(_))
    }
}

/// One operation: reads `inputs`, defines `output`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Node {
    /// Unique node name, e.g. `stage2.block1.conv1`. Parameter names derive
    /// from it.
    pub name: String,
    /// The operator and its parameters.
    #[serde(flatten)]
    pub op: Op,
    /// Names of the values read, in operator order.
    pub inputs: Vec<String>,
    /// Name of the value defined.
    pub output: String,
}

impl Node {
    /// Convenience constructor.
    pub fn new(
        name: impl Into<String>,
        op: Op,
        inputs: Vec<String>,
        output: impl Into<String>,
    ) -> Self {
        Self {
            name: name.into(),
            op,
            inputs,
            output: output.into(),
        }
    }
}

/// A whole network: one input value, nodes, one output value.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Graph {
    /// Model name (e.g. `resnet20`).
    pub name: String,
    /// Name of the input value.
    pub input: String,
    /// Per-image input shape, `[C, H, W]`.
    pub input_shape: Vec<usize>,
    /// Nodes. Any order is accepted; [`Graph::topo_order`] sorts them.
    pub nodes: Vec<Node>,
    /// Name of the output value (the logits).
    pub output: String,
}

/// Shapes of every value of a graph, by value name.
pub type Shapes = HashMap<String, Vec<usize>>;

impl Graph {
    /// An empty graph with the given input.
    pub fn new(name: impl Into<String>, input: impl Into<String>, input_shape: Vec<usize>) -> Self {
        let input = input.into();
        Self {
            name: name.into(),
            output: input.clone(),
            input,
            input_shape,
            nodes: Vec::new(),
        }
    }

    /// Appends a node and returns the name of the value it defines.
    pub fn push(&mut self, node: Node) -> String {
        let out = node.output.clone();
        self.nodes.push(node);
        out
    }

    /// Looks a node up by name.
    pub fn node(&self, name: &str) -> Option<&Node> {
        self.nodes.iter().find(|n| n.name == name)
    }

    /// The node defining `value`, if any (the graph input has none).
    pub fn producer(&self, value: &str) -> Option<&Node> {
        self.nodes.iter().find(|n| n.output == value)
    }

    /// Nodes reading `value`.
    pub fn consumers(&self, value: &str) -> Vec<&Node> {
        self.nodes
            .iter()
            .filter(|n| n.inputs.iter().any(|i| i == value))
            .collect()
    }

    /// Indices of `nodes` in a topological order (stable: among ready nodes,
    /// the one listed first goes first). Checks that names are unique and
    /// that every read value is defined.
    pub fn topo_order(&self) -> Result<Vec<usize>, GraphError> {
        let mut defined_by: HashMap<&str, Option<usize>> = HashMap::new();
        defined_by.insert(self.input.as_str(), None);
        let mut names = HashSet::new();
        for (i, n) in self.nodes.iter().enumerate() {
            if !names.insert(n.name.as_str()) {
                return Err(GraphError::DuplicateNode(n.name.clone()));
            }
            if defined_by.insert(n.output.as_str(), Some(i)).is_some() {
                return Err(GraphError::DuplicateValue {
                    node: n.name.clone(),
                    value: n.output.clone(),
                });
            }
        }
        let mut indeg = vec![0usize; self.nodes.len()];
        let mut users: Vec<Vec<usize>> = vec![Vec::new(); self.nodes.len()];
        for (i, n) in self.nodes.iter().enumerate() {
            for v in &n.inputs {
                match defined_by.get(v.as_str()) {
                    None => {
                        return Err(GraphError::UndefinedValue {
                            node: n.name.clone(),
                            value: v.clone(),
                        });
                    }
                    Some(None) => {}
                    Some(Some(p)) => {
                        indeg[i] += 1;
                        users[*p].push(i);
                    }
                }
            }
        }
        if !defined_by.contains_key(self.output.as_str()) {
            return Err(GraphError::UndefinedOutput(self.output.clone()));
        }
        // Kahn's algorithm with a min-heap on the original index for stability.
        let mut ready: std::collections::BinaryHeap<std::cmp::Reverse<usize>> = indeg
            .iter()
            .enumerate()
            .filter(|(_, d)| **d == 0)
            .map(|(i, _)| std::cmp::Reverse(i))
            .collect();
        let mut order = Vec::with_capacity(self.nodes.len());
        while let Some(std::cmp::Reverse(i)) = ready.pop() {
            order.push(i);
            for &u in &users[i] {
                indeg[u] -= 1;
                if indeg[u] == 0 {
                    ready.push(std::cmp::Reverse(u));
                }
            }
        }
        if order.len() != self.nodes.len() {
            let stuck = indeg.iter().position(|&d| d > 0).unwrap_or(0);
            return Err(GraphError::Cycle(self.nodes[stuck].name.clone()));
        }
        Ok(order)
    }

    /// Reorders `nodes` topologically (see [`Graph::topo_order`]).
    pub fn sort(&mut self) -> Result<(), GraphError> {
        let order = self.topo_order()?;
        let mut old: Vec<Option<Node>> = std::mem::take(&mut self.nodes)
            .into_iter()
            .map(Some)
            .collect();
        self.nodes = order.into_iter().filter_map(|i| old[i].take()).collect();
        Ok(())
    }

    /// Infers the shape of every value, validating parameters on the way.
    /// This is the full validation of a graph: a graph that passes it can
    /// be executed by the reference executor.
    pub fn infer_shapes(&self) -> Result<Shapes, GraphError> {
        if self.input_shape.len() != 3 {
            return Err(GraphError::Input {
                name: self.input.clone(),
                shape: self.input_shape.clone(),
                msg: "expected [C, H, W]".into(),
            });
        }
        if self.input_shape.contains(&0) || checked_numel(&self.input_shape).is_none() {
            return Err(GraphError::Input {
                name: self.input.clone(),
                shape: self.input_shape.clone(),
                msg: "dimensions must be nonzero and not overflow".into(),
            });
        }
        let order = self.topo_order()?;
        let mut shapes: Shapes = HashMap::new();
        shapes.insert(self.input.clone(), self.input_shape.clone());
        for i in order {
            let n = &self.nodes[i];
            let ins: Vec<&[usize]> = n
                .inputs
                .iter()
                .map(|v| shapes[v.as_str()].as_slice())
                .collect();
            let s = infer_node(n, &ins)?;
            shapes.insert(n.output.clone(), s);
        }
        Ok(shapes)
    }

    /// Shape of the output value (validates the graph).
    pub fn output_shape(&self) -> Result<Vec<usize>, GraphError> {
        let mut s = self.infer_shapes()?;
        Ok(s.remove(&self.output).unwrap_or_default())
    }

    /// All parameters with their stable names, in node order (copies):
    /// conv/dense `{node}.weight`, `{node}.bias`; Dirac conv additionally
    /// `{node}.alpha`, `{node}.beta`; batch norm `{node}.weight` (gamma),
    /// `{node}.bias` (beta), `{node}.running_mean`, `{node}.running_var`
    /// (PyTorch's names); polynomial activation `{node}.coeffs` (`[deg+1]`)
    /// and `{node}.range` (`[2]`). These are the names `zoo::build` takes.
    pub fn named_params(&self) -> Vec<(String, Tensor)> {
        let mut out = Vec::new();
        for n in &self.nodes {
            let mut put = |s: &str, t: &Tensor| out.push((format!("{}.{s}", n.name), t.clone()));
            match &n.op {
                Op::Conv2d(c) => {
                    put("weight", &c.weight);
                    if let Some(b) = &c.bias {
                        put("bias", b);
                    }
                }
                Op::DiracConv2d(c) => {
                    put("weight", &c.weight);
                    put("alpha", &c.alpha);
                    put("beta", &c.beta);
                    if let Some(b) = &c.bias {
                        put("bias", b);
                    }
                }
                Op::BatchNorm(b) => {
                    put("weight", &b.gamma);
                    put("bias", &b.beta);
                    put("running_mean", &b.mean);
                    put("running_var", &b.var);
                }
                Op::Dense(d) => {
                    put("weight", &d.weight);
                    if let Some(b) = &d.bias {
                        put("bias", b);
                    }
                }
                Op::PolyAct(p) => {
                    put("coeffs", &Tensor::vector(p.coeffs.clone()));
                    put("range", &Tensor::vector(p.range.to_vec()));
                }
                _ => {}
            }
        }
        out
    }

    /// Total number of scalar parameters (weights, biases, BN statistics).
    pub fn num_params(&self) -> usize {
        self.named_params().iter().map(|(_, t)| t.numel()).sum()
    }

    /// Polynomial activations with their node names, in node order.
    pub fn activations(&self) -> Vec<(&str, &PolyAct)> {
        self.nodes
            .iter()
            .filter_map(|n| match &n.op {
                Op::PolyAct(p) => Some((n.name.as_str(), p)),
                _ => None,
            })
            .collect()
    }

    /// Serializes to (compact) JSON; [`Graph::from_json`] reads it back.
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }

    /// Parses JSON produced by [`Graph::to_json`] and validates it.
    pub fn from_json(s: &str) -> Result<Self, GraphJsonError> {
        let g: Graph = serde_json::from_str(s)?;
        g.infer_shapes()?;
        Ok(g)
    }
}

/// Errors of [`Graph::from_json`].
#[derive(Debug, Error)]
pub enum GraphJsonError {
    /// Not valid JSON for a graph.
    #[error("invalid graph JSON: {0}")]
    Json(#[from] serde_json::Error),
    /// Parsed, but the graph is invalid.
    #[error(transparent)]
    Graph(#[from] GraphError),
}

fn check_vec(node: &Node, what: &str, t: &Tensor, c: usize) -> Result<(), GraphError> {
    if t.shape != [c] || t.data.len() != c {
        return Err(GraphError::Param {
            node: node.name.clone(),
            op: node.op.kind(),
            msg: format!("{what} must have shape [{c}], has {:?}", t.shape),
        });
    }
    Ok(())
}

/// Output size of a window op along one axis, `None` if it does not fit.
pub fn window_out(input: usize, k: usize, s: usize, p0: usize, p1: usize) -> Option<usize> {
    let padded = input.checked_add(p0)?.checked_add(p1)?;
    if s == 0 || k == 0 || padded < k {
        return None;
    }
    Some((padded - k) / s + 1)
}

fn infer_window(
    n: &Node,
    x: &[usize],
    k: [usize; 2],
    stride: [usize; 2],
    pads: &Pads,
) -> Result<[usize; 2], GraphError> {
    let err = |msg: String| GraphError::Shape {
        node: n.name.clone(),
        op: n.op.kind(),
        msg,
    };
    if stride.contains(&0) {
        return Err(GraphError::Param {
            node: n.name.clone(),
            op: n.op.kind(),
            msg: "stride must be >= 1".into(),
        });
    }
    if pads.top >= k[0] || pads.bottom >= k[0] || pads.left >= k[1] || pads.right >= k[1] {
        return Err(GraphError::Param {
            node: n.name.clone(),
            op: n.op.kind(),
            msg: format!("padding {pads:?} must be smaller than the window {k:?}"),
        });
    }
    let h = window_out(x[1], k[0], stride[0], pads.top, pads.bottom)
        .ok_or_else(|| err(format!("window {k:?} does not fit input {x:?}")))?;
    let w = window_out(x[2], k[1], stride[1], pads.left, pads.right)
        .ok_or_else(|| err(format!("window {k:?} does not fit input {x:?}")))?;
    Ok([h, w])
}

fn need_rank3<'a>(n: &Node, x: &'a [usize]) -> Result<&'a [usize], GraphError> {
    if x.len() != 3 {
        return Err(GraphError::Shape {
            node: n.name.clone(),
            op: n.op.kind(),
            msg: format!("expects a [C, H, W] input, got {x:?}"),
        });
    }
    Ok(x)
}

fn check_conv(
    n: &Node,
    x: &[usize],
    weight: &Tensor,
    bias: Option<&Tensor>,
    stride: [usize; 2],
    pads: &Pads,
) -> Result<Vec<usize>, GraphError> {
    let x = need_rank3(n, x)?;
    let perr = |msg: String| GraphError::Param {
        node: n.name.clone(),
        op: n.op.kind(),
        msg,
    };
    if weight.shape.len() != 4 || !weight.is_consistent() || weight.shape.contains(&0) {
        return Err(perr(format!(
            "weight must be a consistent nonzero [C_out, C_in, KH, KW], has shape {:?}",
            weight.shape
        )));
    }
    let (co, ci) = (weight.shape[0], weight.shape[1]);
    if ci != x[0] {
        return Err(GraphError::Shape {
            node: n.name.clone(),
            op: n.op.kind(),
            msg: format!("weight expects {ci} input channels, input is {x:?}"),
        });
    }
    if let Some(b) = bias {
        check_vec(n, "bias", b, co)?;
    }
    let [h, w] = infer_window(n, x, [weight.shape[2], weight.shape[3]], stride, pads)?;
    Ok(vec![co, h, w])
}

/// Infers one node's output shape from its input shapes (validating its
/// parameters).
pub(crate) fn infer_node(n: &Node, ins: &[&[usize]]) -> Result<Vec<usize>, GraphError> {
    if ins.len() != n.op.arity() {
        return Err(GraphError::Arity {
            node: n.name.clone(),
            op: n.op.kind(),
            expected: n.op.arity(),
            got: ins.len(),
        });
    }
    let shape_err = |msg: String| GraphError::Shape {
        node: n.name.clone(),
        op: n.op.kind(),
        msg,
    };
    let param_err = |msg: String| GraphError::Param {
        node: n.name.clone(),
        op: n.op.kind(),
        msg,
    };
    let x = ins[0];
    match &n.op {
        Op::Conv2d(c) => check_conv(n, x, &c.weight, c.bias.as_ref(), c.stride, &c.pads),
        Op::DiracConv2d(c) => {
            let s = check_conv(n, x, &c.weight, c.bias.as_ref(), c.stride, &c.pads)?;
            check_vec(n, "alpha", &c.alpha, s[0])?;
            check_vec(n, "beta", &c.beta, s[0])?;
            if c.weight.shape[2] % 2 == 0 || c.weight.shape[3] % 2 == 0 {
                return Err(param_err(format!(
                    "Dirac kernel must have odd size, has {:?}",
                    &c.weight.shape[2..]
                )));
            }
            Ok(s)
        }
        Op::BatchNorm(b) => {
            if x.is_empty() {
                return Err(shape_err("expects a [C, ...] input".into()));
            }
            let c = x[0];
            check_vec(n, "gamma", &b.gamma, c)?;
            check_vec(n, "beta", &b.beta, c)?;
            check_vec(n, "mean", &b.mean, c)?;
            check_vec(n, "var", &b.var, c)?;
            if b.eps.is_nan()
                || b.eps < 0.0
                || b.var
                    .data
                    .iter()
                    .any(|v| (v + b.eps).is_nan() || v + b.eps <= 0.0)
            {
                return Err(param_err("var + eps must be positive".into()));
            }
            Ok(x.to_vec())
        }
        Op::Add => {
            if ins[0] != ins[1] {
                return Err(shape_err(format!(
                    "inputs `{}` {:?} and `{}` {:?} differ in shape",
                    n.inputs[0], ins[0], n.inputs[1], ins[1]
                )));
            }
            Ok(x.to_vec())
        }
        Op::PolyAct(p) => {
            if p.coeffs.is_empty() {
                return Err(param_err("no coefficients".into()));
            }
            if p.coeffs.iter().any(|c| !c.is_finite()) {
                return Err(param_err("coefficients must be finite".into()));
            }
            if !p.range.iter().all(|r| r.is_finite()) || p.range[0] >= p.range[1] {
                return Err(param_err(format!(
                    "range {:?} must be finite with lo < hi",
                    p.range
                )));
            }
            Ok(x.to_vec())
        }
        Op::AvgPool(a) => {
            let x = need_rank3(n, x)?;
            let [h, w] = infer_window(n, x, a.kernel, a.stride, &a.pads)?;
            Ok(vec![x[0], h, w])
        }
        Op::GlobalAvgPool => {
            let x = need_rank3(n, x)?;
            Ok(vec![x[0], 1, 1])
        }
        Op::Dense(d) => {
            if x.len() != 1 {
                return Err(shape_err(format!(
                    "expects a flat [N] input (insert a flatten), got {x:?}"
                )));
            }
            if d.weight.shape.len() != 2 || !d.weight.is_consistent() || d.weight.shape.contains(&0)
            {
                return Err(param_err(format!(
                    "weight must be a consistent nonzero [OUT, IN], has shape {:?}",
                    d.weight.shape
                )));
            }
            if d.weight.shape[1] != x[0] {
                return Err(shape_err(format!(
                    "weight expects {} inputs, input is {x:?}",
                    d.weight.shape[1]
                )));
            }
            if let Some(b) = &d.bias {
                check_vec(n, "bias", b, d.weight.shape[0])?;
            }
            Ok(vec![d.weight.shape[0]])
        }
        Op::Flatten => Ok(vec![x.iter().product()]),
        Op::Reshape { shape } => {
            let a = checked_numel(shape);
            if shape.is_empty() || a != Some(x.iter().product()) {
                return Err(shape_err(format!("cannot reshape {x:?} to {shape:?}")));
            }
            Ok(shape.clone())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn conv(co: usize, ci: usize, k: usize, s: usize, p: usize) -> Op {
        Op::Conv2d(Conv2d {
            weight: Tensor::zeros(vec![co, ci, k, k]),
            bias: None,
            stride: [s, s],
            pads: Pads::uniform(p),
        })
    }

    fn small() -> Graph {
        let mut g = Graph::new("t", "x", vec![3, 8, 8]);
        g.push(Node::new("c1", conv(4, 3, 3, 1, 1), vec!["x".into()], "a"));
        g.push(Node::new("c2", conv(4, 4, 3, 2, 1), vec!["a".into()], "b"));
        g.push(Node::new("gap", Op::GlobalAvgPool, vec!["b".into()], "c"));
        g.push(Node::new("fl", Op::Flatten, vec!["c".into()], "d"));
        g.push(Node::new(
            "fc",
            Op::Dense(Dense {
                weight: Tensor::zeros(vec![10, 4]),
                bias: Some(Tensor::zeros(vec![10])),
            }),
            vec!["d".into()],
            "y",
        ));
        g.output = "y".into();
        g
    }

    #[test]
    fn shapes() {
        let g = small();
        let s = g.infer_shapes().unwrap();
        assert_eq!(s["a"], vec![4, 8, 8]);
        assert_eq!(s["b"], vec![4, 4, 4]);
        assert_eq!(s["c"], vec![4, 1, 1]);
        assert_eq!(s["y"], vec![10]);
    }

    #[test]
    fn errors_name_the_node() {
        let mut g = small();
        g.nodes[1].op = conv(4, 5, 3, 1, 1);
        let e = g.infer_shapes().unwrap_err();
        assert!(e.to_string().contains("`c2`"), "{e}");
        let mut g = small();
        g.nodes[4].inputs = vec!["c".into()];
        let e = g.infer_shapes().unwrap_err();
        assert!(e.to_string().contains("`fc`") && e.to_string().contains("flatten"));
        let mut g = small();
        g.nodes[2].inputs = vec!["zz".into()];
        assert!(matches!(
            g.infer_shapes(),
            Err(GraphError::UndefinedValue { .. })
        ));
    }

    #[test]
    fn topo_sorts_and_finds_cycles() {
        let mut g = small();
        g.nodes.reverse();
        g.sort().unwrap();
        assert_eq!(g.nodes[0].name, "c1");
        assert_eq!(g.nodes[4].name, "fc");
        g.nodes[0].inputs = vec!["y".into()];
        assert!(matches!(g.topo_order(), Err(GraphError::Cycle(_))));
    }

    #[test]
    fn json_round_trip() {
        let g = small();
        let j = g.to_json();
        let h = Graph::from_json(&j).unwrap();
        assert_eq!(g, h);
    }
}
