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
//!   (one bigger, strided kernel);
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

use nn::graph::{Graph, Op};
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

struct Builder {
    level: LevelGraph,
    layers: Vec<Layer>,
    weights: (f64, f64),
}

impl Builder {
    fn push(&mut self, node: NodeId, layer: Layer) -> NodeId {
        debug_assert_eq!(node, self.layers.len());
        self.layers.push(layer);
        node
    }
}

fn single_consumer<'g>(g: &'g Graph, value: &str) -> Option<&'g nn::Node> {
    let c = g.consumers(value);
    if c.len() == 1 && value != g.output {
        Some(c[0])
    } else {
        None
    }
}

fn unsupported(node: &str, msg: impl std::fmt::Display) -> CompileError {
    CompileError::Unsupported(format!("node `{node}`: {msg}"))
}

/// Lowers a graph for ciphertexts of `slots` slots. `weights` are the
/// relative costs of a hoisted and a full rotation (they steer the
/// baby-step/giant-step split).
pub fn lower(g: &Graph, slots: usize, weights: (f64, f64)) -> Result<Lowered, CompileError> {
    let shapes = g.infer_shapes()?;
    let order = g.topo_order()?;
    let [c, h, w] = match g.input_shape.as_slice() {
        &[c, h, w] => [c, h, w],
        s => return Err(CompileError::Unsupported(format!("input shape {s:?}"))),
    };
    let input_layout = Layout::image(c, h, w, slots)?;
    let mut b = Builder {
        level: LevelGraph::new(&g.input, input_layout.cts() as u32),
        layers: Vec::new(),
        weights,
    };
    b.push(
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
    // How many additions read each value as their skip (decided below with
    // the same rule as at the addition).
    let mut vals: HashMap<String, Val> = HashMap::new();
    vals.insert(
        g.input.clone(),
        Val {
            node: 0,
            layout: input_layout,
            path_depth: 0,
            flat_of: None,
            pool_scale: None,
            pending_pool: None,
            folded: vec![],
        },
    );
    // Skip-use counts need path depths; compute them in a first pass.
    let skip_uses = count_skip_uses(g, &order)?;
    let mut taps: HashMap<String, NodeId> = HashMap::new();

    for &i in &order {
        let n = &g.nodes[i];
        let get = |name: &str| -> Result<Val, CompileError> {
            vals.get(name)
                .cloned()
                .ok_or_else(|| unsupported(&n.name, format!("reads unknown value `{name}`")))
        };
        let out_shape = shapes.get(&n.output).cloned().unwrap_or_default();
        let new_val = match &n.op {
            Op::Conv2d(_) | Op::DiracConv2d(_) => {
                let x = get(&n.inputs[0])?;
                let (weight, stride, pads) = match &n.op {
                    Op::Conv2d(cv) => (&cv.weight, cv.stride, cv.pads),
                    Op::DiracConv2d(d) => (&d.weight, d.stride, d.pads),
                    _ => unreachable!(),
                };
                if stride[0] != stride[1] {
                    return Err(unsupported(&n.name, "non-square stride"));
                }
                let (co, ci, kh, kw) = match weight.shape.as_slice() {
                    &[a, b2, c2, d] => (a, b2, c2, d),
                    _ => return Err(unsupported(&n.name, "kernel must be 4-D")),
                };
                let dirac = matches!(n.op, Op::DiracConv2d(_));
                let nonzero = |o: usize, ii: usize, ky: usize, kx: usize| {
                    dirac
                        || weight
                            .data
                            .get(((o * ci + ii) * kh + ky) * kw + kx)
                            .is_some_and(|&v| v != 0.0)
                };
                let [_, ho, wo] = shape3(&n.name, &out_shape)?;
                let mut taps_v = layout::conv_taps(co, ci, kh, kw, pads.top, pads.left, nonzero);
                let mut stride_total = stride[0];
                let mut lin = x.layout;
                let mut pool = None;
                let mut nn_nodes = x.folded.clone();
                if let Some((pname, pk, ps, ptop, pleft, before)) = &x.pending_pool {
                    // Compose: conv tap (dy, dx) on the pooled map reads
                    // pool input pixels ps*dy + (py - ptop).
                    let mut comp = Vec::with_capacity(taps_v.len() * pk * pk);
                    for t in &taps_v {
                        for py in 0..*pk {
                            for px in 0..*pk {
                                comp.push(Tap {
                                    o: t.o,
                                    i: t.i,
                                    dy: *ps as i64 * t.dy + py as i64 - *ptop as i64,
                                    dx: *ps as i64 * t.dx + px as i64 - *pleft as i64,
                                });
                            }
                        }
                    }
                    comp.sort_by_key(|t| (t.o, t.i, t.dy, t.dx));
                    comp.dedup();
                    taps_v = comp;
                    stride_total *= ps;
                    lin = *before;
                    pool = Some([*pk, *ps, *ptop, *pleft]);
                    nn_nodes.push(pname.clone());
                }
                let lout = lin.strided(co, ho, wo, stride_total)?;
                let cost = layout::linear_map(&lin, &lout, taps_v, b.weights)?;
                nn_nodes.push(n.name.clone());
                let mut name = n.name.clone();
                let mut out_value = n.output.clone();
                if let Some(bn) = single_consumer(g, &n.output)
                    && matches!(bn.op, Op::BatchNorm(_))
                {
                    nn_nodes.push(bn.name.clone());
                    out_value = bn.output.clone();
                    name = n.name.clone();
                }
                let id = b
                    .level
                    .op(&name, LevelOpKind::Linear, 1, lout.cts() as u32, x.node);
                b.push(
                    id,
                    Layer {
                        name,
                        nn_nodes,
                        op: LayerOp::Conv {
                            kernel: [kh, kw],
                            stride: stride[0],
                            pads: pads.onnx(),
                            channels: [ci, co],
                            pool,
                        },
                        layout_in: lin,
                        layout_out: lout,
                        cost,
                    },
                );
                let v = Val {
                    node: id,
                    layout: lout,
                    path_depth: x.path_depth + 1,
                    flat_of: None,
                    pool_scale: None,
                    pending_pool: None,
                    folded: vec![],
                };
                if out_value != n.output {
                    vals.insert(n.output.clone(), v.clone());
                }
                Some((out_value, v))
            }
            Op::BatchNorm(_) => {
                if vals.contains_key(&n.output) {
                    // Fused into the producing conv/dense.
                    None
                } else {
                    let x = get(&n.inputs[0])?;
                    // Per-channel, so it cannot fold into a polynomial.
                    if false {
                        let mut v = x.clone();
                        v.folded.push(n.name.clone());
                        Some((n.output.clone(), v))
                    } else {
                        let cts = x.layout.cts();
                        let id = b
                            .level
                            .op(&n.name, LevelOpKind::Linear, 1, cts as u32, x.node);
                        let mut cost = layout::add(cts);
                        cost.depth = 1;
                        cost.counts.mul_plain = cts as u64;
                        cost.counts.rescales = cts as u64;
                        let mut nn_nodes = x.folded.clone();
                        nn_nodes.push(n.name.clone());
                        b.push(
                            id,
                            Layer {
                                name: n.name.clone(),
                                nn_nodes,
                                op: LayerOp::Affine,
                                layout_in: x.layout,
                                layout_out: x.layout,
                                cost,
                            },
                        );
                        Some((
                            n.output.clone(),
                            Val {
                                node: id,
                                path_depth: x.path_depth + 1,
                                folded: vec![],
                                ..x
                            },
                        ))
                    }
                }
            }
            Op::PolyAct(p) => {
                let x = get(&n.inputs[0])?;
                let deg = p.degree();
                let cts = x.layout.cts();
                let cost = layout::poly_act(deg, cts);
                let id = b.level.op(
                    &n.name,
                    LevelOpKind::Activation,
                    cost.depth,
                    cts as u32,
                    x.node,
                );
                let mut nn_nodes = x.folded.clone();
                nn_nodes.push(n.name.clone());
                let depth = cost.depth;
                b.push(
                    id,
                    Layer {
                        name: n.name.clone(),
                        nn_nodes,
                        op: LayerOp::PolyAct {
                            degree: deg,
                            range: p.range,
                        },
                        layout_in: x.layout,
                        layout_out: x.layout,
                        cost,
                    },
                );
                Some((
                    n.output.clone(),
                    Val {
                        node: id,
                        path_depth: x.path_depth + depth,
                        folded: vec![],
                        ..x
                    },
                ))
            }
            Op::AvgPool(ap) => {
                let x = get(&n.inputs[0])?;
                if ap.kernel[0] != ap.kernel[1] || ap.stride[0] != ap.stride[1] {
                    return Err(unsupported(&n.name, "non-square pooling"));
                }
                let [co, ho, wo] = shape3(&n.name, &out_shape)?;
                let to_conv = single_consumer(g, &n.output)
                    .is_some_and(|c| matches!(c.op, Op::Conv2d(_) | Op::DiracConv2d(_)));
                if to_conv && x.pending_pool.is_none() {
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
                    Some((n.output.clone(), v))
                } else {
                    let lout = x.layout.strided(co, ho, wo, ap.stride[0])?;
                    let taps_v = layout::pool_taps(
                        co,
                        ap.kernel[0],
                        ap.kernel[1],
                        ap.pads.top,
                        ap.pads.left,
                    );
                    let cost = layout::linear_map(&x.layout, &lout, taps_v, b.weights)?;
                    let id = b
                        .level
                        .op(&n.name, LevelOpKind::Linear, 1, lout.cts() as u32, x.node);
                    let mut nn_nodes = x.folded.clone();
                    nn_nodes.push(n.name.clone());
                    b.push(
                        id,
                        Layer {
                            name: n.name.clone(),
                            nn_nodes,
                            op: LayerOp::AvgPool {
                                kernel: ap.kernel,
                                stride: ap.stride[0],
                            },
                            layout_in: x.layout,
                            layout_out: lout,
                            cost,
                        },
                    );
                    Some((
                        n.output.clone(),
                        Val {
                            node: id,
                            layout: lout,
                            path_depth: x.path_depth + 1,
                            flat_of: None,
                            pool_scale: None,
                            pending_pool: None,
                            folded: vec![],
                        },
                    ))
                }
            }
            Op::GlobalAvgPool => {
                let x = get(&n.inputs[0])?;
                let (lout, mut cost) = layout::global_avg_pool(&x.layout)?;
                // Folded if a dense layer follows (through flatten/reshape).
                let mut next = single_consumer(g, &n.output);
                while let Some(c) = next {
                    if matches!(c.op, Op::Flatten | Op::Reshape { .. }) {
                        next = single_consumer(g, &c.output);
                    } else {
                        break;
                    }
                }
                let folded = next.is_some_and(|c| matches!(c.op, Op::Dense(_)));
                if !folded {
                    cost.depth = 1;
                    cost.counts.mul_plain += x.layout.cts() as u64;
                    cost.counts.rescales += x.layout.cts() as u64;
                }
                let kind = if folded {
                    LevelOpKind::Free
                } else {
                    LevelOpKind::Linear
                };
                let depth = cost.depth;
                let id = b.level.op(&n.name, kind, depth, lout.cts() as u32, x.node);
                let mut nn_nodes = x.folded.clone();
                nn_nodes.push(n.name.clone());
                b.push(
                    id,
                    Layer {
                        name: n.name.clone(),
                        nn_nodes,
                        op: LayerOp::GlobalAvgPool {
                            scale_folded: folded,
                        },
                        layout_in: x.layout,
                        layout_out: lout,
                        cost,
                    },
                );
                let hw = (x.layout.height * x.layout.width) as f64;
                Some((
                    n.output.clone(),
                    Val {
                        node: id,
                        layout: lout,
                        path_depth: x.path_depth + depth,
                        flat_of: None,
                        pool_scale: folded.then_some(1.0 / hw),
                        pending_pool: None,
                        folded: vec![],
                    },
                ))
            }
            Op::Flatten | Op::Reshape { .. } => {
                let x = get(&n.inputs[0])?;
                let in_shape = shapes.get(&n.inputs[0]).cloned().unwrap_or_default();
                let mut v = x.clone();
                if out_shape.len() == 1 {
                    if let &[c2, h2, w2] = in_shape.as_slice() {
                        v.flat_of = Some([c2, h2, w2]);
                    }
                } else if out_shape != in_shape {
                    return Err(unsupported(&n.name, "reshape to a non-vector shape"));
                }
                v.folded.push(n.name.clone());
                Some((n.output.clone(), v))
            }
            Op::Dense(d) => {
                let x = get(&n.inputs[0])?;
                let (out, inp) = match d.weight.shape.as_slice() {
                    &[o, i2] => (o, i2),
                    _ => return Err(unsupported(&n.name, "dense weight must be 2-D")),
                };
                let mut taps_v = Vec::new();
                for o in 0..out {
                    for j in 0..inp {
                        if d.weight.data[o * inp + j] == 0.0 {
                            continue;
                        }
                        let t = match x.flat_of {
                            Some([_, fh, fw]) => Tap {
                                o,
                                i: j / (fh * fw),
                                dy: ((j / fw) % fh) as i64,
                                dx: (j % fw) as i64,
                            },
                            None => Tap {
                                o,
                                i: j,
                                dy: 0,
                                dx: 0,
                            },
                        };
                        taps_v.push(t);
                    }
                }
                let lout = Layout::vector(out, slots);
                let cost = layout::linear_map(&x.layout, &lout, taps_v, b.weights)?;
                let mut nn_nodes = x.folded.clone();
                nn_nodes.push(n.name.clone());
                let mut out_value = n.output.clone();
                if let Some(bn) = single_consumer(g, &n.output)
                    && matches!(bn.op, Op::BatchNorm(_))
                {
                    nn_nodes.push(bn.name.clone());
                    out_value = bn.output.clone();
                }
                let id = b
                    .level
                    .op(&n.name, LevelOpKind::Linear, 1, lout.cts() as u32, x.node);
                b.push(
                    id,
                    Layer {
                        name: n.name.clone(),
                        nn_nodes,
                        op: LayerOp::Dense {
                            dims: [inp, out],
                            pool_scale: x.pool_scale,
                        },
                        layout_in: x.layout,
                        layout_out: lout,
                        cost,
                    },
                );
                let v = Val {
                    node: id,
                    layout: lout,
                    path_depth: x.path_depth + 1,
                    flat_of: None,
                    pool_scale: None,
                    pending_pool: None,
                    folded: vec![],
                };
                if out_value != n.output {
                    vals.insert(n.output.clone(), v.clone());
                }
                Some((out_value, v))
            }
            Op::Add => {
                let a = get(&n.inputs[0])?;
                let c2 = get(&n.inputs[1])?;
                let (main, skip, skip_name) = if c2.path_depth > a.path_depth {
                    (c2, a, n.inputs[0].clone())
                } else {
                    (a, c2, n.inputs[1].clone())
                };
                if main.layout != skip.layout {
                    return Err(unsupported(&n.name, "adds values packed differently"));
                }
                let uses = skip_uses.get(&skip_name).copied().unwrap_or(1);
                let other_readers = g.consumers(&skip_name).len() > 1;
                let skip_node = if other_readers {
                    match taps.get(&skip_name) {
                        Some(&t) => t,
                        None => {
                            let tname = format!("{skip_name}.tap");
                            let t = b.level.tap(&tname, skip.node);
                            b.push(
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
                            taps.insert(skip_name.clone(), t);
                            t
                        }
                    }
                } else {
                    skip.node
                };
                let kind = if uses > 1 {
                    SkipKind::SharedSource
                } else {
                    SkipKind::MidTerm
                };
                let id = b.level.add(&n.name, main.node, skip_node, kind);
                let mut nn_nodes = main.folded.clone();
                nn_nodes.extend(skip.folded.iter().cloned());
                nn_nodes.push(n.name.clone());
                b.push(
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
                Some((
                    n.output.clone(),
                    Val {
                        node: id,
                        path_depth: main.path_depth,
                        folded: vec![],
                        ..main
                    },
                ))
            }
        };
        if let Some((name, v)) = new_val {
            vals.insert(name, v);
        }
    }
    let out = vals
        .get(&g.output)
        .ok_or_else(|| CompileError::Unsupported(format!("output `{}` not produced", g.output)))?;
    if out.node != b.level.output() {
        return Err(CompileError::Unsupported(
            "the output must be the last operation".into(),
        ));
    }
    b.level.validate()?;
    Ok(Lowered {
        model: g.name.clone(),
        level: b.level,
        layers: b.layers,
    })
}

fn shape3(node: &str, s: &[usize]) -> Result<[usize; 3], CompileError> {
    match *s {
        [c, h, w] => Ok([c, h, w]),
        _ => Err(unsupported(
            node,
            format!("expected a [C, H, W] output, got {s:?}"),
        )),
    }
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
