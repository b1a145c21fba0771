//! From an [`nn::Graph`] to layers on packed layouts and their level graph.
//!
//! Fusions (so that every linear layer costs exactly one level):
//! - convolution / Dirac convolution / dense + the batch norm that follows
//!   it (sole consumer): one linear layer;
//! - a batch norm that cannot fuse backwards (after an addition) is a
//!   per-channel affine layer of one level (it is per channel, so it cannot
//!   fold into the activation polynomial); the scaling of an activation's
//!   input range is uniform and folds into the polynomial's coefficients;
//! - average pooling whose sole consumer is a convolution: composed into it
//!   (one bigger, strided kernel) unless its divisor excludes padding;
//! - global average pooling: a level-free rotate-and-sum whose `1/(H W)`
//!   goes into the following dense layer; flatten/reshape are free.
//!
//! Polynomial activations of degree `k` cost `ceil(log2(k + 1))` levels.
//!
//! Skip connections: for an addition, the input on the longer path (in
//! levels) from the input is the main path; the other is the skip. A skip
//! source that is also read elsewhere is read through a [`LevelOpKind::Tap`]
//! (one per source), so that placement may bootstrap the skip alone; a tap
//! read by several additions is a shared source.

use std::collections::HashMap;

use nn::graph::{AvgPool, Dense, Graph, Node, Op, Pads, PolyAct, Shapes, Tensor};
use serde::{Deserialize, Serialize};

use crate::error::CompileError;
use crate::layout::{self, LayerCost, Layout, Tap};
use crate::level::{LevelGraph, LevelOpKind, NodeId, SkipKind};

/// What a layer does, with what the runtime needs to run it (weights stay
/// in the model; `nn_nodes` name them).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum LayerOp {
    /// The encrypted input.
    Input,
    /// Convolution (with BN folded; an average pool before it composed in
    /// when `pool` is set).
    Conv {
        /// Kernel `[KH, KW]`.
        kernel: [usize; 2],
        /// Stride.
        stride: usize,
        /// Padding `[top, left, bottom, right]`.
        pads: [usize; 4],
        /// Input and output channels.
        channels: [usize; 2],
        /// Composed average pool: `[kernel, stride, pad_top, pad_left]`.
        pool: Option<[usize; 4]>,
    },
    /// Dense layer (with BN folded; `1/(H W)` of a global pool folded when
    /// `pool_scale` is set).
    Dense {
        /// Input and output size.
        dims: [usize; 2],
        /// Factor folded from a global average pool.
        pool_scale: Option<f64>,
    },
    /// Stand-alone average pooling (a depthwise linear layer).
    AvgPool {
        /// Window.
        kernel: [usize; 2],
        /// Stride.
        stride: usize,
    },
    /// Rotate-and-sum global average pooling (level-free when its scale is
    /// folded into the next layer).
    GlobalAvgPool {
        /// Whether `1/(H W)` is folded into the next linear layer.
        scale_folded: bool,
    },
    /// Stand-alone per-channel affine map (a batch norm that could not be
    /// folded).
    Affine,
    /// Polynomial activation.
    PolyAct {
        /// Degree.
        degree: usize,
        /// Input range the polynomial is meant for (scaled into the
        /// Chebyshev interval by folded coefficients).
        range: [f64; 2],
        /// A quadratic `a x^2 + b x + c` at depth 1 instead of 2, by
        /// completing the square: `sign(a) (m (x + t))^2 + c - a t^2` with
        /// `m = sqrt|a|`, `t = b / 2a`. The linear layer before it (its sole
        /// producer and its value's only reader, never bootstrapped:
        /// [`crate::level::LevelNode::no_bootstrap`]) multiplies its weights
        /// by `m` and lands at the scale whose square is the default scale
        /// (through an addition that multiplies its skip by `m`); the
        /// activation adds `m t`, squares, and adds the constant (see
        /// [`fuse_squares`]).
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        fused: bool,
    },
    /// Skip addition.
    Add,
    /// Copy serving a skip path (bootstrap site only).
    Tap,
}

/// One layer: a node of the level graph with its layouts and costs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Layer {
    /// Name (the main nn node).
    pub name: String,
    /// The nn nodes fused into it.
    pub nn_nodes: Vec<String>,
    /// What it does.
    pub op: LayerOp,
    /// Packing of its (first) input.
    pub layout_in: Layout,
    /// Packing of its output.
    pub layout_out: Layout,
    /// Its primitive counts, depth and rotation keys.
    pub cost: LayerCost,
}

/// A lowered network: layers in level-graph order (`layers[v]` is node `v`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Lowered {
    /// Model name.
    pub model: String,
    /// The level graph.
    pub level: LevelGraph,
    /// One layer per level-graph node.
    pub layers: Vec<Layer>,
}

impl Lowered {
    /// Slots per ciphertext it was lowered for.
    pub fn slots(&self) -> usize {
        self.layers.first().map_or(0, |l| l.layout_in.slots)
    }

    /// Images per ciphertext it was lowered for.
    pub fn batch(&self) -> usize {
        self.layers.first().map_or(1, |l| l.layout_in.batch)
    }

    /// The fewest slots that hold every tensor of the net in as many
    /// ciphertexts as now ([`Layout::slots_needed`]).
    pub fn slots_needed(&self) -> usize {
        self.layers
            .iter()
            .flat_map(|l| [l.layout_in.slots_needed(), l.layout_out.slots_needed()])
            .max()
            .unwrap_or(0)
    }

    /// What kind of network this is, from its skips: `"resnet"` (mid-term
    /// skips), `"shared-source"`, `"mixed"`, or `"chain"` (no skip: a plain
    /// or Dirac network).
    pub fn structure(&self) -> &'static str {
        let kinds: Vec<SkipKind> = self.level.nodes.iter().filter_map(|n| n.skip).collect();
        let mid = kinds.contains(&SkipKind::MidTerm);
        let shared = kinds.contains(&SkipKind::SharedSource);
        match (mid, shared) {
            (false, false) => "chain",
            (true, false) => "resnet",
            (false, true) => "shared-source",
            (true, true) => "mixed",
        }
    }
}

#[derive(Clone)]
struct Val {
    node: NodeId,
    layout: Layout,
    /// Levels along the longest path from the input (main/skip choice).
    path_depth: u32,
    /// Set when the value is a flattened view of a `[C, H, W]` map.
    flat_of: Option<[usize; 3]>,
    /// A pooled value whose `1/(H W)` is still to be applied.
    pool_scale: Option<f64>,
    /// An average pool to compose into the consuming convolution:
    /// `(pool node name, kernel, stride, pad_top, pad_left, layout before)`.
    pending_pool: Option<(String, usize, usize, usize, usize, Layout)>,
    /// nn nodes to credit to the next layer (folded BN/pool/flatten).
    folded: Vec<String>,
}

impl Val {
    /// The output of a layer: a plain map (no pending view, pool or scale).
    fn fresh(node: NodeId, layout: Layout, path_depth: u32) -> Self {
        Self {
            node,
            layout,
            path_depth,
            flat_of: None,
            pool_scale: None,
            pending_pool: None,
            folded: vec![],
        }
    }

    /// The nn nodes credited to a layer of nn node `n` reading this value.
    fn credit(&self, n: &Node) -> Vec<String> {
        let mut v = self.folded.clone();
        v.push(n.name.clone());
        v
    }
}

/// A one-level linear layer (convolution, dense, average pool, affine)
/// about to be added by [`Lowering::linear`].
struct LinearStep {
    op: LayerOp,
    /// nn nodes credited before the layer's own (its input's folded nodes,
    /// a composed pool).
    nn_nodes: Vec<String>,
    layout_in: Layout,
    layout_out: Layout,
    cost: LayerCost,
}

/// What lowering one nn node gives: the tensor it defines and its value, or
/// `None` (a batch norm already fused into the layer before it).
type Lowers = Result<Option<(String, Val)>, CompileError>;

/// The state of a lowering: what is built so far and what each tensor is.
struct Lowering<'g> {
    g: &'g Graph,
    shapes: Shapes,
    slots: usize,
    /// Images per ciphertext.
    batch: usize,
    /// Relative costs of a hoisted and a full rotation.
    weights: (f64, f64),
    level: LevelGraph,
    layers: Vec<Layer>,
    vals: HashMap<String, Val>,
    /// How many additions read each value as their skip.
    skip_uses: HashMap<String, usize>,
    /// The tap reading each skip source that has other readers too.
    taps: HashMap<String, NodeId>,
}

fn single_consumer<'g>(g: &'g Graph, value: &str) -> Option<&'g nn::Node> {
    let c = g.consumers(value);
    if c.len() == 1 && value != g.output {
        Some(c[0])
    } else {
        None
    }
}

/// The node of the ONNX file an nn node came from: the importer names the
/// nodes it adds for one file node `N` as `N.flatten`, `N.reshape` (a
/// per-element affine) or `N#2` (a second node of the same name).
pub fn file_node_name(name: &str) -> &str {
    let base = name
        .strip_suffix(".flatten")
        .or_else(|| name.strip_suffix(".reshape"))
        .unwrap_or(name);
    match base.rsplit_once('#') {
        Some((b, k)) if !b.is_empty() && !k.is_empty() && k.bytes().all(|c| c.is_ascii_digit()) => {
            b
        }
        _ => base,
    }
}

/// A refusal of nn node `n`, named as the file names it, with its operator
/// (and the importer's node when that differs): one line.
fn unsupported(n: &Node, msg: impl std::fmt::Display) -> CompileError {
    let file = file_node_name(&n.name);
    let what = if file == n.name {
        n.op.kind().to_string()
    } else {
        format!("{} `{}`", n.op.kind(), n.name.escape_debug())
    };
    let msg = msg.to_string().replace('\n', " ");
    CompileError::Unsupported(format!("node `{}` ({what}): {msg}", file.escape_debug()))
}

/// Lowers a graph for ciphertexts of `slots` slots. `weights` are the
/// relative costs of a hoisted and a full rotation (they steer the
/// baby-step/giant-step split).
pub fn lower(g: &Graph, slots: usize, weights: (f64, f64)) -> Result<Lowered, CompileError> {
    lower_batched(g, slots, 1, weights)
}

/// As [`lower`], with `batch` images interleaved in every ciphertext of
/// `slots` slots ([`Layout::with_batch`]): each image gets `slots / batch`
/// slots, and every layer costs what it costs for one image in that many
/// slots (rotation steps times `batch`).
pub fn lower_batched(
    g: &Graph,
    slots: usize,
    batch: usize,
    weights: (f64, f64),
) -> Result<Lowered, CompileError> {
    let shapes = g.infer_shapes()?;
    let order = g.topo_order()?;
    let [c, h, w] = match g.input_shape.as_slice() {
        &[c, h, w] => [c, h, w],
        s => return Err(CompileError::Unsupported(format!("input shape {s:?}"))),
    };
    let grid = base_grid(g, &shapes, &order);
    let input_layout = Layout::image_on_grid(c, h, w, grid, slots)?.with_batch(batch)?;
    let mut s = Lowering {
        g,
        shapes,
        slots,
        batch,
        weights,
        level: LevelGraph::new(&g.input, input_layout.cts() as u32),
        layers: Vec::new(),
        vals: HashMap::new(),
        // Skip-use counts need path depths; compute them in a first pass.
        skip_uses: count_skip_uses(g, &order)?,
        taps: HashMap::new(),
    };
    s.push(
        0,
        Layer {
            name: g.input.clone(),
            nn_nodes: vec![],
            op: LayerOp::Input,
            layout_in: input_layout,
            layout_out: input_layout,
            cost: layout::add(0),
        },
    );
    s.vals
        .insert(g.input.clone(), Val::fresh(0, input_layout, 0));

    for &i in &order {
        if let Some((name, v)) = s.node(&g.nodes[i])? {
            s.vals.insert(name, v);
        }
    }
    let out = s
        .vals
        .get(&g.output)
        .ok_or_else(|| CompileError::Unsupported(format!("output `{}` not produced", g.output)))?;
    if out.node != s.level.output() {
        return Err(CompileError::Unsupported(
            "the output must be the last operation".into(),
        ));
    }
    s.level.validate()?;
    Ok(Lowered {
        model: g.name.clone(),
        level: s.level,
        layers: s.layers,
    })
}

/// The largest shift `|t| = |b / 2a|` of a completed square, in units of
/// the activation's input range: beyond it the square `a (x + t)^2` and
/// the constant `c - a t^2` nearly cancel and the encrypted result would
/// lose precision, so such a quadratic keeps its two levels.
pub const MAX_SQUARE_SHIFT: f64 = 8.0;

/// Whether `p` is a quadratic that completes to a square at depth 1:
/// degree 2 and a shift within [`MAX_SQUARE_SHIFT`] input ranges.
pub fn square_completes(p: &PolyAct) -> bool {
    let (a, b) = match p.coeffs.as_slice() {
        [_, b, a] => (*a, *b),
        _ => return false,
    };
    let r = p.range[0].abs().max(p.range[1].abs());
    a != 0.0
        && a.is_finite()
        && b.is_finite()
        && r.is_finite()
        && r > 0.0
        && (b / (2.0 * a)).abs() <= MAX_SQUARE_SHIFT * r
}

/// Quadratic activations at depth 1: every degree-2 activation
/// ([`square_completes`]) whose input is a linear layer read by nothing
/// else gets `fused` and depth 1, and that linear layer `no_bootstrap`
/// (the multiplier `sqrt|a|` and the output scale go into its plaintexts,
/// so its value exists only for the square). An activation that reads an
/// addition (read by nothing else) whose main input is such a linear layer
/// is fused the same way: the addition is `no_bootstrap` and multiplies its
/// skip by `sqrt|a|` first (`skip_depth` 1: the skip must arrive one level
/// above the sum, which a skip from a bootstrapped or shallower source
/// does for free). One level per such
/// activation instead of two: the completed square (e.g. the quadratic
/// activations of CryptoNets, Gilad-Bachrach et al., ICML 2016, cost one
/// multiplication) with its leading coefficient folded into the linear map
/// before it.
pub fn fuse_squares(g: &Graph, low: &mut Lowered) {
    let n = low.level.nodes.len();
    let mut readers = vec![0usize; n];
    for node in &low.level.nodes {
        for &u in &node.inputs {
            readers[u] += 1;
        }
    }
    for v in 0..n {
        let LayerOp::PolyAct {
            degree: 2,
            range,
            fused: false,
        } = low.layers[v].op
        else {
            continue;
        };
        let u = low.level.nodes[v].inputs[0];
        let sole_linear = |w: NodeId| {
            low.level.nodes[w].kind == LevelOpKind::Linear
                && readers[w] == 1
                && !low.level.nodes[w].no_bootstrap
        };
        // The square reads a linear layer, or an addition (read by nothing
        // else) of a linear layer and a skip: the skip is then multiplied
        // by sqrt|a| on its way (one level of the skip path).
        let add = low.level.nodes[u].kind == LevelOpKind::Add;
        let ok = if add {
            readers[u] == 1
                && low.level.nodes[u].skip_depth == 0
                && sole_linear(low.level.nodes[u].inputs[0])
        } else {
            sole_linear(u)
        };
        if !ok {
            continue;
        }
        let Some(Op::PolyAct(p)) = g.node(&low.layers[v].name).map(|x| &x.op) else {
            continue;
        };
        if !square_completes(p) {
            continue;
        }
        if add {
            let main = low.level.nodes[u].inputs[0];
            low.level.nodes[main].no_bootstrap = true;
            low.level.nodes[u].skip_depth = 1;
            let cts = low.layers[u].layout_out.cts() as u64;
            let c = &mut low.layers[u].cost.counts;
            c.mul_plain += cts;
            c.encodes += cts;
            c.rescales += cts;
        }
        let cts = low.layers[v].layout_out.cts();
        low.layers[v].op = LayerOp::PolyAct {
            degree: 2,
            range,
            fused: true,
        };
        low.layers[v].cost = layout::square_act(cts);
        low.level.nodes[v].depth = 1;
        low.level.nodes[u].no_bootstrap = true;
    }
}

impl Lowering<'_> {
    /// Lowers one nn node (its inputs already lowered).
    fn node(&mut self, n: &Node) -> Lowers {
        match &n.op {
            Op::Conv2d(c) => self.conv(n, &c.weight, c.stride, c.pads),
            Op::DiracConv2d(d) => self.conv(n, &d.weight, d.stride, d.pads),
            Op::BatchNorm(_) => self.batch_norm(n),
            Op::PolyAct(p) => self.poly_act(n, p),
            Op::AvgPool(ap) => self.avg_pool(n, ap),
            Op::GlobalAvgPool => self.global_avg_pool(n),
            Op::Flatten | Op::Reshape { .. } => self.reshape(n),
            Op::Dense(d) => self.dense(n, d),
            Op::Add => self.add(n),
        }
    }

    /// The value of input `k` of `n`.
    fn input(&self, n: &Node, k: usize) -> Result<Val, CompileError> {
        let name = &n.inputs[k];
        self.vals
            .get(name)
            .cloned()
            .ok_or_else(|| unsupported(n, format!("reads unknown value `{name}`")))
    }

    fn shape(&self, value: &str) -> Vec<usize> {
        self.shapes.get(value).cloned().unwrap_or_default()
    }

    fn push(&mut self, node: NodeId, layer: Layer) -> NodeId {
        debug_assert_eq!(node, self.layers.len());
        self.layers.push(layer);
        node
    }

    /// Adds a one-input layer of `kind` and `depth` reading node `input`.
    fn layer(&mut self, kind: LevelOpKind, depth: u32, input: NodeId, layer: Layer) -> NodeId {
        let cts = layer.layout_out.cts() as u32;
        let id = self.level.op(&layer.name, kind, depth, cts, input);
        self.push(id, layer)
    }

    /// Adds the one-level linear layer of nn node `n` reading `x`, crediting
    /// `n` after `step.nn_nodes` and, with `fuse_bn`, the batch norm that is
    /// `n`'s sole consumer. Returns the tensor it defines (the batch norm's
    /// output when fused; `n`'s output then names the same value) and its
    /// value.
    fn linear(&mut self, n: &Node, x: &Val, step: LinearStep, fuse_bn: bool) -> (String, Val) {
        let mut nn_nodes = step.nn_nodes;
        nn_nodes.push(n.name.clone());
        let mut out_value = n.output.clone();
        if fuse_bn
            && let Some(bn) = single_consumer(self.g, &n.output)
            && matches!(bn.op, Op::BatchNorm(_))
        {
            nn_nodes.push(bn.name.clone());
            out_value = bn.output.clone();
        }
        let layer = Layer {
            name: n.name.clone(),
            nn_nodes,
            op: step.op,
            layout_in: step.layout_in,
            layout_out: step.layout_out,
            cost: step.cost,
        };
        let id = self.layer(LevelOpKind::Linear, 1, x.node, layer);
        let v = Val::fresh(id, step.layout_out, x.path_depth + 1);
        if out_value != n.output {
            self.vals.insert(n.output.clone(), v.clone());
        }
        (out_value, v)
    }

    /// Convolution or Dirac convolution (with a pending average pool
    /// composed in and the batch norm after it fused).
    fn conv(&mut self, n: &Node, weight: &Tensor, stride: [usize; 2], pads: Pads) -> Lowers {
        let x = self.input(n, 0)?;
        if stride[0] != stride[1] {
            return Err(unsupported(n, "non-square stride"));
        }
        let (co, ci, kh, kw) = match weight.shape.as_slice() {
            &[a, b2, c2, d] => (a, b2, c2, d),
            _ => return Err(unsupported(n, "kernel must be 4-D")),
        };
        let dirac = matches!(n.op, Op::DiracConv2d(_));
        let nonzero = |o: usize, ii: usize, ky: usize, kx: usize| {
            dirac
                || weight
                    .data
                    .get(((o * ci + ii) * kh + ky) * kw + kx)
                    .is_some_and(|&v| v != 0.0)
        };
        let [_, ho, wo] = shape3(n, &self.shape(&n.output))?;
        let mut taps = layout::conv_taps(co, ci, kh, kw, pads.top, pads.left, nonzero);
        let mut stride_total = stride[0];
        let mut lin = x.layout;
        let mut pool = None;
        let mut nn_nodes = x.folded.clone();
        if let Some((pname, pk, ps, ptop, pleft, before)) = &x.pending_pool {
            // Compose: conv tap (dy, dx) on the pooled map reads pool input
            // pixels ps*dy + (py - ptop).
            let mut comp: Vec<Tap> = taps
                .iter()
                .flat_map(|&t| layout::pool_composed_taps(t, *pk, *ps, *ptop, *pleft))
                .collect();
            comp.sort_by_key(|t| (t.o, t.i, t.dy, t.dx));
            comp.dedup();
            taps = comp;
            stride_total *= ps;
            lin = *before;
            pool = Some([*pk, *ps, *ptop, *pleft]);
            nn_nodes.push(pname.clone());
        }
        let lout = lin
            .strided(co, ho, wo, stride_total)
            .map_err(|e| unsupported(n, format!("output {co}x{ho}x{wo}: {e}")))?;
        let cost = layout::linear_map(&lin, &lout, taps, self.weights)?;
        let op = LayerOp::Conv {
            kernel: [kh, kw],
            stride: stride[0],
            pads: pads.onnx(),
            channels: [ci, co],
            pool,
        };
        let step = LinearStep {
            op,
            nn_nodes,
            layout_in: lin,
            layout_out: lout,
            cost,
        };
        Ok(Some(self.linear(n, &x, step, true)))
    }

    /// Batch norm: fused into the layer before it if that took it, else a
    /// per-channel affine layer (per channel, so it cannot fold into a
    /// polynomial).
    fn batch_norm(&mut self, n: &Node) -> Lowers {
        if self.vals.contains_key(&n.output) {
            // Fused into the producing conv/dense.
            return Ok(None);
        }
        let x = self.input(n, 0)?;
        let cts = x.layout.cts();
        let mut cost = layout::add(cts);
        cost.depth = 1;
        cost.counts.mul_plain = cts as u64;
        cost.counts.encodes = cts as u64;
        cost.counts.rescales = cts as u64;
        let step = LinearStep {
            op: LayerOp::Affine,
            nn_nodes: x.folded.clone(),
            layout_in: x.layout,
            layout_out: x.layout,
            cost,
        };
        let (out, v) = self.linear(n, &x, step, false);
        // A per-channel map keeps what its input is a view of.
        let v = Val {
            flat_of: x.flat_of,
            pool_scale: x.pool_scale,
            pending_pool: x.pending_pool,
            ..v
        };
        Ok(Some((out, v)))
    }

    /// Polynomial activation.
    fn poly_act(&mut self, n: &Node, p: &PolyAct) -> Lowers {
        let x = self.input(n, 0)?;
        let deg = p.degree();
        let cost = layout::poly_act(deg, x.layout.cts());
        let depth = cost.depth;
        let layer = Layer {
            name: n.name.clone(),
            nn_nodes: x.credit(n),
            op: LayerOp::PolyAct {
                degree: deg,
                range: p.range,
                fused: false,
            },
            layout_in: x.layout,
            layout_out: x.layout,
            cost,
        };
        let id = self.layer(LevelOpKind::Activation, depth, x.node, layer);
        let v = Val {
            node: id,
            path_depth: x.path_depth + depth,
            folded: vec![],
            ..x
        };
        Ok(Some((n.output.clone(), v)))
    }

    /// Average pooling: left pending if a convolution alone reads it (it is
    /// composed into that), else a depthwise linear layer.
    fn avg_pool(&mut self, n: &Node, ap: &AvgPool) -> Lowers {
        let x = self.input(n, 0)?;
        if ap.kernel[0] != ap.kernel[1] || ap.stride[0] != ap.stride[1] {
            return Err(unsupported(n, "non-square pooling"));
        }
        let [co, ho, wo] = shape3(n, &self.shape(&n.output))?;
        let to_conv = single_consumer(self.g, &n.output)
            .is_some_and(|c| matches!(c.op, Op::Conv2d(_) | Op::DiracConv2d(_)));
        // A divisor that excludes the padding varies over the pooled map,
        // which a composed kernel cannot express: such a pool is its own
        // layer (per-output-pixel weights).
        let p = &ap.pads;
        let uniform = ap.count_include_pad || p.top + p.left + p.bottom + p.right == 0;
        if to_conv && uniform && x.pending_pool.is_none() {
            // The pooled layout is only virtual (never materialized).
            let virt = Layout {
                channels: co,
                height: ho,
                width: wo,
                gap: x.layout.gap * ap.stride[0],
                ..x.layout
            };
            let mut v = x.clone();
            v.layout = virt;
            v.pending_pool = Some((
                n.name.clone(),
                ap.kernel[0],
                ap.stride[0],
                ap.pads.top,
                ap.pads.left,
                x.layout,
            ));
            return Ok(Some((n.output.clone(), v)));
        }
        let lout = x
            .layout
            .strided(co, ho, wo, ap.stride[0])
            .map_err(|e| unsupported(n, format!("output {co}x{ho}x{wo}: {e}")))?;
        let taps = layout::pool_taps(co, ap.kernel[0], ap.kernel[1], ap.pads.top, ap.pads.left);
        let cost = layout::linear_map(&x.layout, &lout, taps, self.weights)?;
        let step = LinearStep {
            op: LayerOp::AvgPool {
                kernel: ap.kernel,
                stride: ap.stride[0],
            },
            nn_nodes: x.folded.clone(),
            layout_in: x.layout,
            layout_out: lout,
            cost,
        };
        Ok(Some(self.linear(n, &x, step, false)))
    }

    /// Global average pooling: a rotate-and-sum, level-free when a dense
    /// layer follows (through flatten/reshape) and takes its `1/(H W)`.
    fn global_avg_pool(&mut self, n: &Node) -> Lowers {
        let x = self.input(n, 0)?;
        let (lout, mut cost) = layout::global_avg_pool(&x.layout)?;
        let mut next = single_consumer(self.g, &n.output);
        while let Some(c) = next {
            if matches!(c.op, Op::Flatten | Op::Reshape { .. }) {
                next = single_consumer(self.g, &c.output);
            } else {
                break;
            }
        }
        let folded = next.is_some_and(|c| matches!(c.op, Op::Dense(_)));
        if !folded {
            cost.depth = 1;
            cost.counts.mul_plain += x.layout.cts() as u64;
            cost.counts.encodes += x.layout.cts() as u64;
            cost.counts.rescales += x.layout.cts() as u64;
        }
        let kind = if folded {
            LevelOpKind::Free
        } else {
            LevelOpKind::Linear
        };
        let depth = cost.depth;
        let layer = Layer {
            name: n.name.clone(),
            nn_nodes: x.credit(n),
            op: LayerOp::GlobalAvgPool {
                scale_folded: folded,
            },
            layout_in: x.layout,
            layout_out: lout,
            cost,
        };
        let id = self.layer(kind, depth, x.node, layer);
        let hw = (x.layout.height * x.layout.width) as f64;
        let v = Val {
            pool_scale: folded.then_some(1.0 / hw),
            ..Val::fresh(id, lout, x.path_depth + depth)
        };
        Ok(Some((n.output.clone(), v)))
    }

    /// Flatten or reshape: free; a flattened `[C, H, W]` map is remembered
    /// for the dense layer that reads it.
    fn reshape(&mut self, n: &Node) -> Lowers {
        let x = self.input(n, 0)?;
        let in_shape = self.shape(&n.inputs[0]);
        let out_shape = self.shape(&n.output);
        let mut v = x.clone();
        if out_shape.len() == 1 {
            if let &[c2, h2, w2] = in_shape.as_slice() {
                v.flat_of = Some([c2, h2, w2]);
            }
        } else if let (&[c2, h2, w2], Some(of)) = (out_shape.as_slice(), x.flat_of) {
            // Back to the map the vector is a flattened view of (a
            // per-element affine between them): the slots never moved.
            if of != [c2, h2, w2] {
                return Err(unsupported(
                    n,
                    format!("reshape of a flattened {of:?} map to {out_shape:?}"),
                ));
            }
            v.flat_of = None;
        } else if out_shape != in_shape {
            return Err(unsupported(
                n,
                format!("reshape of {in_shape:?} to the non-vector shape {out_shape:?}"),
            ));
        }
        v.folded.push(n.name.clone());
        Ok(Some((n.output.clone(), v)))
    }

    /// Dense layer (with the batch norm after it fused).
    fn dense(&mut self, n: &Node, d: &Dense) -> Lowers {
        let x = self.input(n, 0)?;
        let (out, inp) = match d.weight.shape.as_slice() {
            &[o, i2] => (o, i2),
            _ => return Err(unsupported(n, "dense weight must be 2-D")),
        };
        // A plain vector is a 1x1 map of `inp` channels.
        let [h, w] = match x.flat_of {
            Some([_, fh, fw]) => [fh, fw],
            None => [1, 1],
        };
        let mut taps = Vec::new();
        for o in 0..out {
            for j in 0..inp {
                if d.weight.data[o * inp + j] != 0.0 {
                    taps.push(layout::flat_tap(o, j, h, w));
                }
            }
        }
        let lout = Layout::vector(out, self.slots).with_batch(self.batch)?;
        let cost = layout::linear_map(&x.layout, &lout, taps, self.weights)?;
        let step = LinearStep {
            op: LayerOp::Dense {
                dims: [inp, out],
                pool_scale: x.pool_scale,
            },
            nn_nodes: x.folded.clone(),
            layout_in: x.layout,
            layout_out: lout,
            cost,
        };
        Ok(Some(self.linear(n, &x, step, true)))
    }

    /// Skip addition: the input on the longer path is the main one; a skip
    /// source with other readers is read through its tap.
    fn add(&mut self, n: &Node) -> Lowers {
        let a = self.input(n, 0)?;
        let c2 = self.input(n, 1)?;
        let (main, skip, skip_name) = if c2.path_depth > a.path_depth {
            (c2, a, n.inputs[0].clone())
        } else {
            (a, c2, n.inputs[1].clone())
        };
        if main.layout != skip.layout {
            return Err(unsupported(n, "adds values packed differently"));
        }
        let uses = self.skip_uses.get(&skip_name).copied().unwrap_or(1);
        let other_readers = self.g.consumers(&skip_name).len() > 1;
        let skip_node = if other_readers {
            self.tap(&skip_name, &skip)
        } else {
            skip.node
        };
        let kind = if uses > 1 {
            SkipKind::SharedSource
        } else {
            SkipKind::MidTerm
        };
        let id = self.level.add(&n.name, main.node, skip_node, kind);
        let mut nn_nodes = main.folded.clone();
        nn_nodes.extend(skip.folded.iter().cloned());
        nn_nodes.push(n.name.clone());
        self.push(
            id,
            Layer {
                name: n.name.clone(),
                nn_nodes,
                op: LayerOp::Add,
                layout_in: main.layout,
                layout_out: main.layout,
                cost: layout::add(main.layout.cts()),
            },
        );
        let v = Val {
            node: id,
            path_depth: main.path_depth,
            folded: vec![],
            ..main
        };
        Ok(Some((n.output.clone(), v)))
    }

    /// The tap reading skip source `name` (value `skip`), added on first use.
    fn tap(&mut self, name: &str, skip: &Val) -> NodeId {
        if let Some(&t) = self.taps.get(name) {
            return t;
        }
        let tname = format!("{name}.tap");
        let t = self.level.tap(&tname, skip.node);
        self.push(
            t,
            Layer {
                name: tname,
                nn_nodes: vec![],
                op: LayerOp::Tap,
                layout_in: skip.layout,
                layout_out: skip.layout,
                cost: layout::add(0),
            },
        );
        self.taps.insert(name.to_string(), t);
        t
    }
}

fn shape3(node: &Node, s: &[usize]) -> Result<[usize; 3], CompileError> {
    match *s {
        [c, h, w] => Ok([c, h, w]),
        _ => Err(unsupported(
            node,
            format!("expected a [C, H, W] output, got {s:?}"),
        )),
    }
}

/// The base grid `[Hb, Wb]` every map of `g` fits on: the largest
/// `H * gap` and `W * gap` over the input and every `[C, H, W]` value, the
/// gap of a value being the product of the strides of the convolutions and
/// pools on its path (as [`Layout::strided`] sets it; the input's grid for a
/// net whose maps never outgrow it). A map larger than the input (padding
/// wider than the kernel needs, a ceil-mode pool's extra windows) then
/// still fits.
fn base_grid(g: &Graph, shapes: &Shapes, order: &[usize]) -> [usize; 2] {
    let mut gap: HashMap<&str, usize> = HashMap::new();
    gap.insert(g.input.as_str(), 1);
    let mut grid = match g.input_shape.as_slice() {
        &[_, h, w] => [h, w],
        _ => [1, 1],
    };
    for &i in order {
        let n = &g.nodes[i];
        let g_in = n
            .inputs
            .iter()
            .filter_map(|v| gap.get(v.as_str()).copied())
            .max()
            .unwrap_or(1);
        let g_out = match &n.op {
            Op::Conv2d(c) => g_in.saturating_mul(c.stride[0].max(c.stride[1]).max(1)),
            Op::DiracConv2d(d) => g_in.saturating_mul(d.stride[0].max(d.stride[1]).max(1)),
            Op::AvgPool(ap) => g_in.saturating_mul(ap.stride[0].max(ap.stride[1]).max(1)),
            Op::Dense(_) => 1,
            _ => g_in,
        };
        if let Some(&[_, h, w]) = shapes.get(&n.output).map(Vec::as_slice) {
            grid[0] = grid[0].max(h.saturating_mul(g_out));
            grid[1] = grid[1].max(w.saturating_mul(g_out));
        }
        gap.insert(n.output.as_str(), g_out);
    }
    grid
}

/// For every value, how many additions read it as their skip input.
fn count_skip_uses(g: &Graph, order: &[usize]) -> Result<HashMap<String, usize>, CompileError> {
    let mut depth: HashMap<&str, u32> = HashMap::new();
    depth.insert(g.input.as_str(), 0);
    let mut uses: HashMap<String, usize> = HashMap::new();
    for &i in order {
        let n = &g.nodes[i];
        let d_in = |k: usize| depth.get(n.inputs[k].as_str()).copied().unwrap_or(0);
        let d = match &n.op {
            Op::Add => {
                let (a, b) = (d_in(0), d_in(1));
                let skip = if b > a { &n.inputs[0] } else { &n.inputs[1] };
                *uses.entry(skip.clone()).or_default() += 1;
                a.max(b)
            }
            Op::Conv2d(_) | Op::DiracConv2d(_) | Op::Dense(_) => d_in(0) + 1,
            Op::PolyAct(p) => d_in(0) + layout::poly_depth(p.degree()),
            _ => d_in(0),
        };
        depth.insert(n.output.as_str(), d);
    }
    Ok(uses)
}
