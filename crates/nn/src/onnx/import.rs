//! ONNX import through `onnx-ir` 0.22.
//!
//! `onnx-ir` parses the protobuf, lifts constants, infers shapes and turns
//! operators into typed nodes (`Conv2d`, `BatchNormalization`, `Linear`
//! for `Gemm` or `MatMul + Add`, ...). We walk its nodes in order and
//! build our [`Graph`]:
//!
//! - TorchScript exports: `Conv`, `BatchNormalization`, `Add`, `Mul`,
//!   `Pow`, `Sub`, `Div`, `Neg`, `AveragePool`, `GlobalAveragePool`,
//!   `Flatten`, `Gemm`/`MatMul` (+ bias `Add`), `Reshape`, `Identity`,
//!   `Dropout` (inference: identity).
//! - Dynamo exports: `ReduceMean` over the spatial axes (with or without
//!   `keepdims`) as global average pooling, `Reshape` as flatten.
//! - Polynomial activations: every element-wise expression built from one
//!   value `x` with `Mul`, `Add`, `Sub`, `Div` and `Neg` by scalar
//!   constants, `Pow` by small integer constants and products of such
//!   expressions is recognized symbolically, whatever the order of its
//!   nodes (Horner, sums of powers, `x*x`, ...), and becomes one
//!   [`PolyAct`]. A sum `p(x) + y` of two *different* values becomes an
//!   [`Op::Add`] (a skip connection).
//!
//! Names and ranges: models written by [`super::export`] carry our node
//! names and activation ranges in metadata and get them back exactly.
//! Other models get names from `onnx-ir` (`conv2d1`, `act3`, ...) and the
//! activation range [`ImportOptions::default_range`].

use std::collections::HashMap;
use std::panic::{AssertUnwindSafe, catch_unwind};

use onnx_ir::padding::PaddingConfig2d;
use onnx_ir::{
    ArgType, Argument, Message, ModelProto, Node as ONode, OnnxGraphBuilder, TensorDataExt,
};

use super::OnnxError;
use super::export::{META_INPUT, META_NAME, META_NODES, NodeMeta};
use crate::graph::{
    AvgPool, BatchNorm, Conv2d, Dense, Graph, Node, Op, Pads, PolyAct, Tensor, checked_numel,
};

/// Largest model file accepted (bytes).
pub const MAX_MODEL_BYTES: u64 = 512 << 20;
/// Largest per-image input (elements) a model may declare.
pub const MAX_INPUT_ELEMENTS: usize = 1 << 22;
/// Highest polynomial degree recognized.
pub const MAX_POLY_DEGREE: usize = 64;
/// Largest integer exponent accepted in `Pow`.
pub const MAX_POW_EXPONENT: usize = 32;

/// Import options.
#[derive(Debug, Clone, PartialEq)]
pub struct ImportOptions {
    /// Activation range used when the model does not record one.
    pub default_range: [f64; 2],
}

impl Default for ImportOptions {
    fn default() -> Self {
        Self {
            default_range: [-1.0, 1.0],
        }
    }
}

/// Reads and imports an ONNX file with default options.
pub fn load(path: impl AsRef<std::path::Path>) -> Result<Graph, OnnxError> {
    load_with(path, &ImportOptions::default())
}

/// Reads and imports an ONNX file (at most [`MAX_MODEL_BYTES`]).
pub fn load_with(
    path: impl AsRef<std::path::Path>,
    opts: &ImportOptions,
) -> Result<Graph, OnnxError> {
    use std::io::Read;
    let path = path.as_ref();
    let io = |source| OnnxError::Io {
        path: path.display().to_string(),
        source,
    };
    let f = std::fs::File::open(path).map_err(io)?;
    let size = f.metadata().map_err(io)?.len();
    if size > MAX_MODEL_BYTES {
        return Err(OnnxError::TooLarge {
            size,
            max: MAX_MODEL_BYTES,
        });
    }
    let mut bytes = Vec::with_capacity(size as usize);
    f.take(MAX_MODEL_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(io)?;
    // Side files (external data) are looked up next to the model.
    let base = path
        .parent()
        .map(|p| {
            if p.as_os_str().is_empty() {
                std::path::Path::new(".")
            } else {
                p
            }
        })
        .unwrap_or(std::path::Path::new("."));
    import_inner(&bytes, Some(base), opts)
}

/// Imports ONNX model bytes with default options.
pub fn import(bytes: &[u8]) -> Result<Graph, OnnxError> {
    import_with(bytes, &ImportOptions::default())
}

/// Imports ONNX model bytes (a model whose weights sit in side files
/// must be loaded from its path with [`load_with`]).
pub fn import_with(bytes: &[u8], opts: &ImportOptions) -> Result<Graph, OnnxError> {
    import_inner(bytes, None, opts)
}

fn import_inner(
    bytes: &[u8],
    base: Option<&std::path::Path>,
    opts: &ImportOptions,
) -> Result<Graph, OnnxError> {
    if bytes.len() as u64 > MAX_MODEL_BYTES {
        return Err(OnnxError::TooLarge {
            size: bytes.len() as u64,
            max: MAX_MODEL_BYTES,
        });
    }
    if bytes.is_empty() {
        return Err(OnnxError::Parse("the file is empty (0 bytes)".into()));
    }
    let mut proto = ModelProto::parse_from_bytes(bytes).map_err(|e| {
        OnnxError::Parse(format!(
            "not an ONNX file: its bytes do not decode as an ONNX ModelProto (protobuf: {})",
            one_line(&e.to_string())
        ))
    })?;
    let meta: HashMap<String, String> = proto
        .metadata_props
        .iter()
        .map(|e| (e.key.clone(), e.value.clone()))
        .collect();
    let file_nodes = super::prepare::prepare(&mut proto, base)?;
    let bytes = proto
        .write_to_bytes()
        .map_err(|e| OnnxError::Parse(one_line(&e.to_string())))?;
    // onnx-ir is not hardened against every malformed file: contain panics.
    let parsed = catch_unwind(AssertUnwindSafe(|| {
        OnnxGraphBuilder::new().parse_bytes(&bytes)
    }))
    .map_err(|_| OnnxError::Parse("the ONNX parser panicked on this file".into()))?
    .map_err(|e| OnnxError::Parse(one_line(&e.to_string())))?;
    let names = align_names(&parsed, &file_nodes);
    let mut g = Importer::new(opts, names).run(&parsed)?;
    collapse_reshape_flatten(&mut g);
    g.sort()?;
    apply_meta(&mut g, &meta);
    g.infer_shapes()?;
    Ok(g)
}

/// Errors are printed on one line.
fn one_line(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Whether an `onnx-ir` node type (`Conv2d`, `Linear`, ...) can come from
/// a file operator (`Conv`, `MatMul`, ...).
fn op_matches(ir: &str, file: &str) -> bool {
    let ir = ir
        .strip_suffix("1d")
        .or_else(|| ir.strip_suffix("2d"))
        .or_else(|| ir.strip_suffix("3d"))
        .unwrap_or(ir);
    ir.eq_ignore_ascii_case(file)
        || (ir == "Linear" && matches!(file, "MatMul" | "Gemm"))
        || file.starts_with(ir)
        || ir.starts_with(file)
}

/// Maps `onnx-ir`'s node names (`conv2d1`, `relu1`) to the file's
/// (`/conv/Conv`, `/Relu`) by walking both node lists in order
/// (`onnx-ir` keeps the order and only drops or fuses nodes).
fn align_names(
    og: &onnx_ir::OnnxGraph,
    file: &[super::prepare::FileNode],
) -> HashMap<String, super::prepare::FileNode> {
    let mut out = HashMap::new();
    let mut j = 0;
    for n in &og.nodes {
        let ty = format!("{:?}", n.node_type());
        if let Some(k) = (j..file.len()).find(|&k| op_matches(&ty, &file[k].op)) {
            out.insert(n.name().to_string(), file[k].clone());
            j = k + 1;
        }
    }
    out
}

/// A reshape read only by flattens is the flatten itself.
fn collapse_reshape_flatten(g: &mut Graph) {
    loop {
        let Some(i) = g.nodes.iter().position(|n| {
            matches!(n.op, Op::Reshape { .. })
                && n.output != g.output
                && g.nodes
                    .iter()
                    .filter(|m| m.inputs.contains(&n.output))
                    .all(|m| matches!(m.op, Op::Flatten))
        }) else {
            return;
        };
        let r = g.nodes.remove(i);
        for m in g.nodes.iter_mut() {
            for v in m.inputs.iter_mut() {
                if *v == r.output {
                    *v = r.inputs[0].clone();
                }
            }
        }
    }
}

/// A symbolic value during import.
#[derive(Debug, Clone)]
enum Sym {
    /// A value of our graph.
    Real(String),
    /// A polynomial (power basis) of one value of our graph, not yet
    /// materialized.
    Poly { src: String, coeffs: Vec<f64> },
    /// A constant tensor (ONNX shape, f64 data).
    Const { shape: Vec<usize>, data: Vec<f64> },
}

struct Importer<'a> {
    opts: &'a ImportOptions,
    /// `onnx-ir` node name -> the file's node.
    names: HashMap<String, super::prepare::FileNode>,
    /// Node names given so far.
    used_names: std::collections::HashSet<String>,
    g: Graph,
    syms: HashMap<String, Sym>,
    shapes: HashMap<String, Vec<usize>>,
    /// How many ONNX nodes read each ONNX value.
    uses: HashMap<String, usize>,
    /// The file's name of the node defining each ONNX value.
    producers: HashMap<String, String>,
    /// Whether every ONNX node reading a value is a `Flatten` (axis 1).
    flatten_only: HashMap<String, bool>,
    acts: usize,
}

type R<T> = Result<T, OnnxError>;

fn unsupported(node: &str, op: &str, msg: impl Into<String>) -> OnnxError {
    OnnxError::Unsupported {
        node: node.to_string(),
        op: op.to_string(),
        msg: msg.into(),
    }
}

fn poly_mul(a: &[f64], b: &[f64]) -> Vec<f64> {
    let mut out = vec![0.0; a.len() + b.len() - 1];
    for (i, x) in a.iter().enumerate() {
        for (j, y) in b.iter().enumerate() {
            out[i + j] += x * y;
        }
    }
    trim(out)
}

fn poly_add(a: &[f64], b: &[f64], sign: f64) -> Vec<f64> {
    let mut out = vec![0.0; a.len().max(b.len())];
    for (i, x) in a.iter().enumerate() {
        out[i] += x;
    }
    for (i, y) in b.iter().enumerate() {
        out[i] += sign * y;
    }
    trim(out)
}

fn trim(mut c: Vec<f64>) -> Vec<f64> {
    while c.len() > 1 && c.last() == Some(&0.0) {
        c.pop();
    }
    c
}

impl<'a> Importer<'a> {
    fn new(opts: &'a ImportOptions, names: HashMap<String, super::prepare::FileNode>) -> Self {
        Self {
            opts,
            names,
            used_names: std::collections::HashSet::new(),
            g: Graph::new("imported", "input", vec![]),
            syms: HashMap::new(),
            shapes: HashMap::new(),
            uses: HashMap::new(),
            flatten_only: HashMap::new(),
            producers: HashMap::new(),
            acts: 0,
        }
    }

    fn run(mut self, og: &onnx_ir::OnnxGraph) -> R<Graph> {
        let inputs: Vec<&Argument> = og.inputs.iter().filter(|a| a.is_dynamic()).collect();
        if inputs.len() != 1 {
            return Err(OnnxError::Input(format!(
                "expected exactly one runtime input, found {}",
                inputs.len()
            )));
        }
        let inp = inputs[0];
        let shape = match &inp.ty {
            ArgType::Tensor(t) => t.static_shape.clone(),
            other => {
                return Err(OnnxError::Input(format!(
                    "`{}` is {other}, expected a [N, C, H, W] tensor",
                    inp.name
                )));
            }
        };
        let dims: Vec<usize> = match shape {
            Some(s) if s.len() == 4 && s[1..].iter().all(|d| d.is_some()) => {
                s[1..].iter().map(|d| d.unwrap_or(0)).collect()
            }
            s => {
                return Err(OnnxError::Input(format!(
                    "`{}` has shape {s:?}, expected [N, C, H, W] with known C, H, W",
                    inp.name
                )));
            }
        };
        if dims.contains(&0) || checked_numel(&dims).is_none_or(|n| n > MAX_INPUT_ELEMENTS) {
            return Err(OnnxError::Input(format!("unusable input shape {dims:?}")));
        }
        self.g.input = sanitize(&inp.name);
        self.g.input_shape = dims.clone();
        self.shapes.insert(self.g.input.clone(), dims);
        self.syms
            .insert(inp.name.clone(), Sym::Real(self.g.input.clone()));

        for n in &og.nodes {
            let is_flatten = matches!(n, ONode::Flatten(f) if f.config.axis == 1);
            for a in n.inputs() {
                if !a.name.is_empty() {
                    *self.uses.entry(a.name.clone()).or_default() += 1;
                    *self.flatten_only.entry(a.name.clone()).or_insert(true) &= is_flatten;
                }
            }
        }
        for o in &og.outputs {
            *self.uses.entry(o.name.clone()).or_default() += 1;
        }
        for n in &og.nodes {
            self.node(n)?;
        }
        if og.outputs.len() != 1 {
            return Err(OnnxError::Output(format!(
                "expected exactly one output, found {}",
                og.outputs.len()
            )));
        }
        let out = &og.outputs[0];
        let s = self
            .syms
            .get(&out.name)
            .cloned()
            .ok_or_else(|| OnnxError::Output(format!("`{}` is never computed", out.name)))?;
        let label = self.producers.get(&out.name).cloned();
        let v = self.materialize_as("output", s, label.as_deref())?;
        if v == self.g.input {
            return Err(OnnxError::Output(format!(
                "`{}` is the model input itself: the model computes nothing",
                out.name
            )));
        }
        self.g.output = v;
        Ok(self.g)
    }

    /// The symbol of an ONNX argument (constant or computed).
    fn sym(&self, node: &str, a: &Argument) -> R<Sym> {
        if !a.is_dynamic()
            && let Some(d) = a.value()
        {
            let data = d
                .to_f64_vec()
                .map_err(|e| unsupported(node, "constant", format!("{e:?}")))?;
            return Ok(Sym::Const {
                shape: d.shape().to_vec(),
                data,
            });
        }
        self.syms
            .get(&a.name)
            .cloned()
            .ok_or_else(|| OnnxError::Unsupported {
                node: node.to_string(),
                op: "input".into(),
                msg: format!(
                    "reads `{}`, which is not computed by a supported node",
                    a.name
                ),
            })
    }

    /// A constant input (weights).
    fn konst(&self, node: &str, op: &str, a: Option<&Argument>, what: &str) -> R<Tensor> {
        let a = a.ok_or_else(|| unsupported(node, op, format!("missing {what}")))?;
        match self.sym(node, a)? {
            Sym::Const { shape, data } => Ok(Tensor { shape, data }),
            _ => Err(unsupported(node, op, format!("{what} must be a constant"))),
        }
    }

    fn opt_konst(
        &self,
        node: &str,
        op: &str,
        a: Option<&Argument>,
        what: &str,
    ) -> R<Option<Tensor>> {
        match a {
            Some(a) if !a.is_optional() => Ok(Some(self.konst(node, op, Some(a), what)?)),
            _ => Ok(None),
        }
    }

    /// Turns a symbol into a value of our graph, adding an activation node
    /// for a pending polynomial.
    /// Turns a symbol into a value of our graph (a pending polynomial
    /// becomes a node, named `label` when given).
    fn materialize_as(&mut self, node: &str, s: Sym, label: Option<&str>) -> R<String> {
        match s {
            Sym::Real(v) => Ok(v),
            Sym::Poly { src, coeffs } => {
                if coeffs == [0.0, 1.0] {
                    return Ok(src);
                }
                if coeffs.len() == 2 {
                    // `a x + b` is linear, not an activation: a uniform
                    // per-channel affine (foldable into a neighbouring
                    // linear layer).
                    let shape = self.shapes[&src].clone();
                    let c = shape.first().copied().unwrap_or(1);
                    let name = match label {
                        Some(l) => self.unique_name(l),
                        None => self.unique_name(&format!("{}.affine", sanitize(node))),
                    };
                    let op = affine_bn(vec![coeffs[1]; c], vec![coeffs[0]; c]);
                    self.used_names.remove(&name);
                    return self.push_raw(&name, op, vec![src], &name);
                }
                self.acts += 1;
                let name = match label {
                    Some(l) => self.unique_name(l),
                    None => self.unique_name(&format!("act{}", self.acts)),
                };
                let shape = self.shapes[&src].clone();
                self.g.push(Node::new(
                    name.clone(),
                    Op::PolyAct(PolyAct {
                        coeffs,
                        range: self.opts.default_range,
                    }),
                    vec![src],
                    name.clone(),
                ));
                self.shapes.insert(name.clone(), shape);
                Ok(name)
            }
            Sym::Const { .. } => Err(unsupported(
                node,
                "constant",
                "a constant is used where a computed value is needed",
            )),
        }
    }

    /// Reads a computed (non-constant) input as a value of our graph.
    fn real_input(&mut self, node: &str, a: &Argument) -> R<String> {
        let s = self.sym(node, a)?;
        // A pending polynomial is named after the node that completed it.
        let label = self.producers.get(&a.name).cloned();
        let v = self.materialize_as(node, s.clone(), label.as_deref())?;
        if matches!(s, Sym::Poly { .. }) {
            self.syms.insert(a.name.clone(), Sym::Real(v.clone()));
        }
        Ok(v)
    }

    fn push(&mut self, name: &str, op: Op, inputs: Vec<String>, out_arg: &Argument) -> R<String> {
        let value = self.push_raw(name, op, inputs, &sanitize(&out_arg.name))?;
        self.syms
            .insert(out_arg.name.clone(), Sym::Real(value.clone()));
        Ok(value)
    }

    /// `name`, made unique among our nodes.
    fn unique_name(&mut self, name: &str) -> String {
        let base = sanitize(name);
        let mut v = base.clone();
        let mut k = 1;
        while !self.used_names.insert(v.clone()) {
            k += 1;
            v = format!("{base}#{k}");
        }
        v
    }

    fn alias(&mut self, node: &str, from: &Argument, to: &Argument) -> R<()> {
        let s = self.sym(node, from)?;
        self.syms.insert(to.name.clone(), s);
        Ok(())
    }

    fn out<'n>(node: &str, op: &str, outs: &'n [Argument]) -> R<&'n Argument> {
        outs.first()
            .ok_or_else(|| unsupported(node, op, "node has no output"))
    }

    fn node(&mut self, n: &ONode) -> R<()> {
        // Errors and our node names use the file's names.
        let (name, file_op, file_ceil) = match self.names.get(n.name()) {
            Some(f) => (f.name.clone(), Some(f.op.clone()), f.ceil_mode),
            None => (n.name().to_string(), None, false),
        };
        let ins = n.inputs();
        let out = Self::out(&name, "node", n.outputs())?;
        for o in n.outputs() {
            self.producers.insert(o.name.clone(), name.clone());
        }
        // Shape arithmetic (`Shape`, `Gather`, `Concat` ... feeding a
        // `Reshape`, as `x.view(x.size(0), -1)` exports) computes no image
        // data: skip it. Anything that later reads its result as data fails
        // with "not computed by a supported node".
        if n.outputs().iter().all(is_shape_like) && !matches!(n, ONode::Constant(_)) {
            return Ok(());
        }
        let in0 = |op: &str| {
            ins.first()
                .ok_or_else(|| unsupported(&name, op, "node has no input"))
        };
        match n {
            ONode::Conv2d(c) => {
                let cfg = &c.config;
                if cfg.groups != 1 {
                    return Err(unsupported(
                        &name,
                        "Conv",
                        format!("groups = {}", cfg.groups),
                    ));
                }
                if cfg.dilation != [1, 1] {
                    return Err(unsupported(&name, "Conv", "dilation other than 1"));
                }
                if !matches!(
                    cfg.auto_pad,
                    onnx_ir::padding::AutoPad::NotSet | onnx_ir::padding::AutoPad::Valid
                ) {
                    return Err(unsupported(&name, "Conv", "auto_pad SAME_*"));
                }
                let pads = pads_of(&cfg.padding);
                let x = self.real_input(&name, in0("Conv")?)?;
                let weight = self.konst(&name, "Conv", ins.get(1), "weight")?;
                let bias = self.opt_konst(&name, "Conv", ins.get(2), "bias")?;
                let bias = bias.map(|b| Tensor::vector(b.data));
                let op = Op::Conv2d(Conv2d {
                    weight,
                    bias,
                    stride: cfg.stride,
                    pads,
                });
                self.push(&name, op, vec![x], out)?;
            }
            ONode::BatchNormalization(b) => {
                let eps = match &b.config {
                    onnx_ir::batch_norm::BatchNormConfig::Static(c) => c.epsilon,
                    onnx_ir::batch_norm::BatchNormConfig::Runtime(c) => c.epsilon,
                };
                let x = self.real_input(&name, in0("BatchNormalization")?)?;
                let mut t = Vec::new();
                for (i, what) in ["scale", "bias", "mean", "var"].iter().enumerate() {
                    let v = self.konst(&name, "BatchNormalization", ins.get(i + 1), what)?;
                    t.push(Tensor::vector(v.data));
                }
                let var = t.pop().unwrap_or_else(|| Tensor::vector(vec![]));
                let mean = t.pop().unwrap_or_else(|| Tensor::vector(vec![]));
                let beta = t.pop().unwrap_or_else(|| Tensor::vector(vec![]));
                let gamma = t.pop().unwrap_or_else(|| Tensor::vector(vec![]));
                let op = Op::BatchNorm(BatchNorm {
                    gamma,
                    beta,
                    mean,
                    var,
                    eps,
                });
                self.push(&name, op, vec![x], out)?;
            }
            ONode::Add(_) | ONode::Sub(_) | ONode::Mul(_) | ONode::Div(_) => {
                let op = match n {
                    ONode::Add(_) => "Add",
                    ONode::Sub(_) => "Sub",
                    ONode::Mul(_) => "Mul",
                    _ => "Div",
                };
                if ins.len() != 2 {
                    return Err(unsupported(&name, op, "expected two inputs"));
                }
                let a = self.sym(&name, &ins[0])?;
                let b = self.sym(&name, &ins[1])?;
                self.binary(&name, op, a, b, &ins[0], &ins[1], out)?;
            }
            ONode::Neg(_) => {
                let a = self.sym(&name, in0("Neg")?)?;
                let r = self.scale(&name, "Neg", a, -1.0)?;
                self.syms.insert(out.name.clone(), r);
            }
            ONode::Pow(_) => {
                let a = self.sym(&name, in0("Pow")?)?;
                let e = match ins.get(1).map(|e| self.sym(&name, e)).transpose()? {
                    Some(Sym::Const { data, .. }) if data.len() == 1 => data[0],
                    _ => {
                        return Err(unsupported(
                            &name,
                            "Pow",
                            "exponent must be a scalar constant",
                        ));
                    }
                };
                if e.fract() != 0.0 || !(0.0..=MAX_POW_EXPONENT as f64).contains(&e) {
                    return Err(unsupported(
                        &name,
                        "Pow",
                        format!("exponent {e} is not an integer in 0..={MAX_POW_EXPONENT}"),
                    ));
                }
                let (src, c) = self.as_poly(&name, "Pow", a)?;
                let mut acc = vec![1.0];
                for _ in 0..e as usize {
                    acc = poly_mul(&acc, &c);
                }
                self.check_degree(&name, "Pow", &acc)?;
                self.syms
                    .insert(out.name.clone(), Sym::Poly { src, coeffs: acc });
            }
            ONode::Identity(_) | ONode::Dropout(_) => {
                let from = in0("Identity")?;
                self.alias(&name, from, out)?;
            }
            ONode::Constant(_) => {
                if let Some(d) = out.value().or_else(|| ins.first().and_then(|a| a.value())) {
                    let data = d
                        .to_f64_vec()
                        .map_err(|e| unsupported(&name, "Constant", format!("{e:?}")))?;
                    self.syms.insert(
                        out.name.clone(),
                        Sym::Const {
                            shape: d.shape().to_vec(),
                            data,
                        },
                    );
                }
            }
            ONode::AveragePool2d(p) => {
                let cfg = &p.config;
                if cfg.dilation != [1, 1] {
                    return Err(unsupported(&name, "AveragePool", "dilation other than 1"));
                }
                if !matches!(
                    cfg.auto_pad,
                    onnx_ir::padding::AutoPad::NotSet | onnx_ir::padding::AutoPad::Valid
                ) {
                    return Err(unsupported(&name, "AveragePool", "auto_pad SAME_*"));
                }
                let x = self.real_input(&name, in0("AveragePool")?)?;
                let mut pads = pads_of(&cfg.padding);
                let xs = self.shapes[&x].clone();
                if xs.len() != 3 {
                    return Err(unsupported(
                        &name,
                        "AveragePool",
                        "expects an [N, C, H, W] input",
                    ));
                }
                // ceil_mode: extra windows over the bottom/right edge, each
                // starting inside the input or its leading padding; they
                // are windows over extra bottom/right padding. Their
                // divisor counts the declared padding but not the extra
                // (PyTorch and ONNX), fixed by a per-position scale.
                let mut extra = [0usize; 2];
                if cfg.ceil_mode || file_ceil {
                    for (ax, (p0, p1)) in [(pads.top, pads.bottom), (pads.left, pads.right)]
                        .into_iter()
                        .enumerate()
                    {
                        let (inp, k, st) = (xs[ax + 1], cfg.kernel_size[ax], cfg.strides[ax]);
                        let padded = inp + p0 + p1;
                        if st == 0 || k == 0 || padded < k {
                            break;
                        }
                        let mut o = (padded - k).div_ceil(st) + 1;
                        if (o - 1) * st >= inp + p0 {
                            o -= 1;
                        }
                        extra[ax] = ((o - 1) * st + k).saturating_sub(padded);
                    }
                }
                let declared = pads;
                pads.bottom += extra[0];
                pads.right += extra[1];
                let op = Op::AvgPool(AvgPool {
                    kernel: cfg.kernel_size,
                    stride: cfg.strides,
                    pads,
                    count_include_pad: cfg.count_include_pad,
                });
                if extra == [0, 0] || !cfg.count_include_pad {
                    self.push(&name, op, vec![x], out)?;
                } else {
                    let v = format!("{}.pool", sanitize(&out.name));
                    let y = self.push_raw(&name, op, vec![x], &v)?;
                    let ys = self.shapes[&y].clone();
                    let [kh, kw] = cfg.kernel_size;
                    let count = |o: usize, ax: usize, k: usize| {
                        let start = o * cfg.strides[ax];
                        let end = (start + k).min(
                            xs[ax + 1]
                                + if ax == 0 {
                                    declared.top + declared.bottom
                                } else {
                                    declared.left + declared.right
                                },
                        );
                        end.saturating_sub(start).max(1)
                    };
                    let mut scale = Vec::with_capacity(ys.iter().product());
                    for _ in 0..ys[0] {
                        for oy in 0..ys[1] {
                            for ox in 0..ys[2] {
                                scale.push(
                                    (kh * kw) as f64 / (count(oy, 0, kh) * count(ox, 1, kw)) as f64,
                                );
                            }
                        }
                    }
                    let mut dims = vec![1usize];
                    dims.extend(&ys);
                    let r = self.affine(
                        &name,
                        "AveragePool",
                        Sym::Real(y),
                        out,
                        Some((dims, scale)),
                        None,
                        out,
                    )?;
                    self.syms.insert(out.name.clone(), r);
                }
            }
            ONode::Slice(sl) => {
                // `x[:, :, a::s, b::s]` (the ResNet "option A" shortcut's
                // subsampling): a one-tap strided convolution.
                let x = self.real_input(&name, in0("Slice")?)?;
                let xs = self.shapes[&x].clone();
                let stat = |v: &onnx_ir::slice::SliceInput, what: &str| match v {
                    onnx_ir::slice::SliceInput::Static(v) => Ok(v.clone()),
                    onnx_ir::slice::SliceInput::Runtime(_) => Err(unsupported(
                        &name,
                        "Slice",
                        format!("{what} must be constant"),
                    )),
                };
                let cfg = &sl.config;
                let starts = stat(&cfg.starts, "starts")?;
                let ends = stat(&cfg.ends, "ends")?;
                let rank = xs.len() as i64 + 1;
                let axes = match &cfg.axes {
                    Some(a) => stat(a, "axes")?,
                    None => (0..starts.len() as i64).collect(),
                };
                let steps = match &cfg.steps {
                    Some(a) => stat(a, "steps")?,
                    None => vec![1; starts.len()],
                };
                if xs.len() != 3
                    || axes.len() != starts.len()
                    || ends.len() != starts.len()
                    || steps.len() != starts.len()
                {
                    return Err(unsupported(
                        &name,
                        "Slice",
                        "only slicing an [N, C, H, W] value",
                    ));
                }
                let mut start = [0usize; 2];
                let mut step = [1usize; 2];
                for i in 0..axes.len() {
                    let ax = if axes[i] < 0 { axes[i] + rank } else { axes[i] };
                    let dim = if ax >= 1 && ax < rank {
                        xs[ax as usize - 1] as i64
                    } else {
                        0
                    };
                    let st = if starts[i] < 0 {
                        starts[i] + dim
                    } else {
                        starts[i]
                    };
                    let keeps_all = steps[i] == 1 && st <= 0 && ends[i] >= dim;
                    if ax == 2 || ax == 3 {
                        if !(0..dim).contains(&st)
                            || steps[i] < 1
                            || st >= steps[i]
                            || ends[i] < dim
                        {
                            return Err(unsupported(
                                &name,
                                "Slice",
                                "only `start::step` subsampling (start < step) of H and W to their end",
                            ));
                        }
                        start[ax as usize - 2] = st as usize;
                        step[ax as usize - 2] = steps[i] as usize;
                    } else if !keeps_all {
                        return Err(unsupported(
                            &name,
                            "Slice",
                            "slicing the batch or channel axis",
                        ));
                    }
                }
                let c = xs[0];
                let [kh, kw] = [start[0] + 1, start[1] + 1];
                let mut w = Tensor::zeros(vec![c, c, kh, kw]);
                for o in 0..c {
                    w.data[((o * c + o) * kh + start[0]) * kw + start[1]] = 1.0;
                }
                let op = Op::Conv2d(Conv2d {
                    weight: w,
                    bias: None,
                    stride: step,
                    pads: Pads::default(),
                });
                self.push(&name, op, vec![x], out)?;
            }
            ONode::Pad(pd) => {
                // Zero channels added (the ResNet "option A" shortcut): an
                // embedding of the channels, folded into the convolution
                // before it when that is its only reader.
                let cfg = &pd.config;
                let pads = match &cfg.pads {
                    onnx_ir::pad::PadInput::Static(p) => p.clone(),
                    _ => return Err(unsupported(&name, "Pad", "pads must be constant")),
                };
                let zero = matches!(cfg.constant_value, onnx_ir::pad::ConstantValueInput::Static(v) if v == 0.0);
                if cfg.mode != onnx_ir::pad::PadMode::Constant || !zero {
                    return Err(unsupported(&name, "Pad", "only zero (constant) padding"));
                }
                let from = in0("Pad")?;
                let x = self.real_input(&name, from)?;
                let xs = self.shapes[&x].clone();
                if pads.len() != xs.len() + 1
                    || pads[0] != (0, 0)
                    || pads[2..].iter().any(|p| *p != (0, 0))
                    || xs.len() != 3
                {
                    return Err(unsupported(
                        &name,
                        "Pad",
                        "only zero channels added to an [N, C, H, W] value (pad H and W in the convolution)",
                    ));
                }
                let (p0, p1) = pads[1];
                let c = xs[0];
                let co = c.saturating_add(p0).saturating_add(p1);
                if co > 1 << 16 {
                    return Err(unsupported(&name, "Pad", format!("{co} channels")));
                }
                let embed = |w: &Tensor| {
                    // Rows o of the new kernel: zero, then the old rows.
                    let per = w.numel() / w.shape[0].max(1);
                    let mut shape = w.shape.clone();
                    shape[0] = co;
                    let mut d = vec![0.0; co * per];
                    d[p0 * per..(p0 + w.shape[0]) * per].copy_from_slice(&w.data);
                    Tensor { shape, data: d }
                };
                let sole = self.uses.get(&from.name).copied().unwrap_or(0) == 1;
                let prod = self.g.nodes.iter().position(|nd| nd.output == x);
                if let (true, Some(pi)) = (sole, prod)
                    && let Op::Conv2d(cv) = &mut self.g.nodes[pi].op
                    && cv.weight.shape[0] == c
                    && (cv.weight.numel() / c.max(1)).saturating_mul(co) <= 1 << 26
                {
                    cv.weight = embed(&cv.weight);
                    if let Some(b) = &cv.bias {
                        let mut nb = vec![0.0; co];
                        nb[p0..p0 + c].copy_from_slice(&b.data);
                        cv.bias = Some(Tensor::vector(nb));
                    }
                    let mut s = self.shapes[&x].clone();
                    s[0] = co;
                    self.shapes.insert(x.clone(), s);
                    self.syms.insert(out.name.clone(), Sym::Real(x));
                } else {
                    if c.saturating_mul(co) > 1 << 26 {
                        return Err(unsupported(&name, "Pad", format!("{c} -> {co} channels")));
                    }
                    let mut id = Tensor::zeros(vec![c, c, 1, 1]);
                    for o in 0..c {
                        id.data[o * c + o] = 1.0;
                    }
                    let op = Op::Conv2d(Conv2d {
                        weight: embed(&id),
                        bias: None,
                        stride: [1, 1],
                        pads: Pads::default(),
                    });
                    self.push(&name, op, vec![x], out)?;
                }
            }
            ONode::GlobalAveragePool(_) => {
                let x = self.real_input(&name, in0("GlobalAveragePool")?)?;
                self.push(&name, Op::GlobalAvgPool, vec![x], out)?;
            }
            ONode::ReduceMean(r) => {
                let x = self.real_input(&name, in0("ReduceMean")?)?;
                let rank = self.shapes[&x].len() + 1;
                let axes = match &r.config.axes {
                    onnx_ir::reduce::ReduceAxes::Static(a) => a.clone(),
                    onnx_ir::reduce::ReduceAxes::Runtime(_) => {
                        return Err(unsupported(&name, "ReduceMean", "axes must be constant"));
                    }
                };
                let mut sorted = axes.clone();
                sorted.sort_unstable();
                if rank != 4 || sorted != [2, 3] {
                    return Err(unsupported(
                        &name,
                        "ReduceMean",
                        format!("only the spatial mean of a [N, C, H, W] value (axes {axes:?})"),
                    ));
                }
                if r.config.keepdims {
                    self.push(&name, Op::GlobalAvgPool, vec![x], out)?;
                } else {
                    let v = format!("{}.pool", sanitize(&name));
                    let node = Node::new(v.clone(), Op::GlobalAvgPool, vec![x], v.clone());
                    let c = self.shapes[&node.inputs[0]][0];
                    self.g.push(node);
                    self.shapes.insert(v.clone(), vec![c, 1, 1]);
                    self.push(&name, Op::Flatten, vec![v], out)?;
                }
            }
            ONode::Flatten(f) => {
                if f.config.axis != 1 {
                    return Err(unsupported(
                        &name,
                        "Flatten",
                        format!("axis {} (only 1 keeps the batch)", f.config.axis),
                    ));
                }
                let x = self.real_input(&name, in0("Flatten")?)?;
                self.push(&name, Op::Flatten, vec![x], out)?;
            }
            ONode::Reshape(r) => {
                let x = self.real_input(&name, in0("Reshape")?)?;
                let target = match &r.config.shape {
                    onnx_ir::reshape::ReshapeInput::Static(s) => s.clone(),
                    onnx_ir::reshape::ReshapeInput::Runtime(_) => {
                        match ins.get(1).map(|a| self.sym(&name, a)) {
                            Some(Ok(Sym::Const { data, .. })) => {
                                data.iter().map(|&v| v as i64).collect()
                            }
                            // A shape computed from the input's shape: use
                            // the per-image shape onnx-ir inferred.
                            // Read only by flattens (`x.view(N, C, -1)`
                            // then `flatten`): with the batch first, the
                            // result is the flatten's, whatever the rest.
                            _ => match inferred_target(out) {
                                Some(t) => t,
                                None if self.flatten_only.get(&out.name) == Some(&true) => {
                                    vec![0, -1]
                                }
                                None => {
                                    return Err(unsupported(
                                        &name,
                                        "Reshape",
                                        "target shape is neither constant nor inferable from the input's shape",
                                    ));
                                }
                            },
                        }
                    }
                };
                let shape = per_image_shape(&self.shapes[&x], &target)
                    .ok_or_else(|| unsupported(&name, "Reshape", format!("cannot map target {target:?} of a [N, {:?}] value to a per-image shape", self.shapes[&x])))?;
                let op = if shape.len() == 1 {
                    Op::Flatten
                } else {
                    Op::Reshape { shape }
                };
                self.push(&name, op, vec![x], out)?;
            }
            ONode::Gemm(gm) => {
                let cfg = &gm.config;
                if cfg.trans_a != 0 {
                    return Err(unsupported(&name, "Gemm", "transA = 1"));
                }
                let x = self.real_input(&name, in0("Gemm")?)?;
                let b = self.konst(&name, "Gemm", ins.get(1), "B")?;
                let mut w = matrix(&name, "Gemm", b, cfg.trans_b == 0)?;
                w.data.iter_mut().for_each(|v| *v *= cfg.alpha as f64);
                let bias = self.opt_konst(&name, "Gemm", ins.get(2), "C")?;
                let bias = bias_vector(&name, "Gemm", bias, w.shape[0], cfg.beta as f64)?;
                self.push(&name, Op::Dense(Dense { weight: w, bias }), vec![x], out)?;
            }
            ONode::Linear(l) => {
                let x = self.real_input(&name, in0("Linear")?)?;
                let b = self.konst(&name, "Linear", ins.get(1), "weight")?;
                let w = matrix(&name, "Linear", b, !l.config.transpose_weight)?;
                let bias = self.opt_konst(&name, "Linear", ins.get(2), "bias")?;
                let bias = bias_vector(&name, "Linear", bias, w.shape[0], 1.0)?;
                self.push(&name, Op::Dense(Dense { weight: w, bias }), vec![x], out)?;
            }
            ONode::MatMul(_) => {
                let x = self.real_input(&name, in0("MatMul")?)?;
                let b = self.konst(&name, "MatMul", ins.get(1), "B")?;
                let w = matrix(&name, "MatMul", b, true)?;
                self.push(
                    &name,
                    Op::Dense(Dense {
                        weight: w,
                        bias: None,
                    }),
                    vec![x],
                    out,
                )?;
            }
            other => {
                return Err(unsupported(
                    &name,
                    &file_op.unwrap_or_else(|| format!("{:?}", other.node_type())),
                    "operator not supported by Residue (not HE-friendly or not implemented)",
                ));
            }
        }
        Ok(())
    }

    /// `(src, coeffs)` of a non-constant symbol.
    fn as_poly(&self, node: &str, op: &str, s: Sym) -> R<(String, Vec<f64>)> {
        match s {
            Sym::Real(v) => Ok((v, vec![0.0, 1.0])),
            Sym::Poly { src, coeffs } => Ok((src, coeffs)),
            Sym::Const { .. } => Err(unsupported(node, op, "operation on constants only")),
        }
    }

    fn check_degree(&self, node: &str, op: &str, c: &[f64]) -> R<()> {
        if c.len() > MAX_POLY_DEGREE + 1 {
            return Err(unsupported(
                node,
                op,
                format!("polynomial degree above {MAX_POLY_DEGREE}"),
            ));
        }
        Ok(())
    }

    fn scale(&self, node: &str, op: &str, s: Sym, k: f64) -> R<Sym> {
        match s {
            Sym::Const { shape, data } => Ok(Sym::Const {
                shape,
                data: data.into_iter().map(|v| v * k).collect(),
            }),
            s => {
                let (src, c) = self.as_poly(node, op, s)?;
                Ok(Sym::Poly {
                    src,
                    coeffs: trim(c.into_iter().map(|v| v * k).collect()),
                })
            }
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn binary(
        &mut self,
        node: &str,
        op: &str,
        a: Sym,
        b: Sym,
        a_arg: &Argument,
        b_arg: &Argument,
        out: &Argument,
    ) -> R<()> {
        let scalar = |s: &Sym| match s {
            Sym::Const { data, .. } if data.len() == 1 => Some(data[0]),
            _ => None,
        };
        let result: Sym = match op {
            "Div" => {
                if let Some(k) = scalar(&b).filter(|k| *k != 0.0) {
                    self.scale(node, op, a, 1.0 / k)?
                } else if let (Sym::Const { shape, data }, false) =
                    (&b, matches!(a, Sym::Const { .. }))
                {
                    if data.iter().any(|v| *v == 0.0 || !v.is_finite()) {
                        return Err(unsupported(node, op, "division by a constant with zeros"));
                    }
                    let inv = data.iter().map(|v| 1.0 / v).collect();
                    self.affine(node, op, a, a_arg, Some((shape.clone(), inv)), None, out)?
                } else {
                    return Err(unsupported(node, op, "only division by a nonzero constant"));
                }
            }
            "Mul" => {
                if let Some(k) = scalar(&b) {
                    self.scale(node, op, a, k)?
                } else if let Some(k) = scalar(&a) {
                    self.scale(node, op, b, k)?
                } else {
                    match (&a, &b) {
                        (Sym::Const { .. }, Sym::Const { .. }) => {
                            return Err(unsupported(node, op, "operation on constants only"));
                        }
                        (_, Sym::Const { shape, data }) => {
                            let k = Some((shape.clone(), data.clone()));
                            let r = self.affine(node, op, a, a_arg, k, None, out)?;
                            self.syms.insert(out.name.clone(), r);
                            return Ok(());
                        }
                        (Sym::Const { shape, data }, _) => {
                            let k = Some((shape.clone(), data.clone()));
                            let r = self.affine(node, op, b, b_arg, k, None, out)?;
                            self.syms.insert(out.name.clone(), r);
                            return Ok(());
                        }
                        _ => {}
                    }
                    let (sa, ca) = self.as_poly(node, op, a)?;
                    let (sb, cb) = self.as_poly(node, op, b)?;
                    if sa != sb {
                        return Err(unsupported(
                            node,
                            op,
                            format!("product of two different values `{sa}` and `{sb}`"),
                        ));
                    }
                    let c = poly_mul(&ca, &cb);
                    self.check_degree(node, op, &c)?;
                    Sym::Poly { src: sa, coeffs: c }
                }
            }
            _ => {
                // Add or Sub.
                let sign = if op == "Sub" { -1.0 } else { 1.0 };
                match (&a, &b) {
                    (Sym::Const { .. }, Sym::Const { .. }) => {
                        return Err(unsupported(node, op, "operation on constants only"));
                    }
                    (_, Sym::Const { .. }) | (Sym::Const { .. }, _) => {
                        let (x, k, x_arg, k_first) = match (&a, &b) {
                            (_, Sym::Const { .. }) => (a.clone(), b.clone(), a_arg, false),
                            _ => (b.clone(), a.clone(), b_arg, true),
                        };
                        if let Some(v) = scalar(&k) {
                            let (src, c) = self.as_poly(node, op, x)?;
                            let (c, kk) = if k_first && sign < 0.0 {
                                (c.iter().map(|v| -v).collect::<Vec<_>>(), v)
                            } else {
                                (c, sign * v)
                            };
                            Sym::Poly {
                                src,
                                coeffs: poly_add(&c, &[kk], 1.0),
                            }
                        } else {
                            let Sym::Const { shape, data } = k else {
                                unreachable!()
                            };
                            if k_first && sign < 0.0 {
                                // k - x
                                let minus = Some((vec![], vec![-1.0]));
                                self.affine(node, op, x, x_arg, minus, Some((shape, data)), out)?
                            } else {
                                let data: Vec<f64> = data.into_iter().map(|v| v * sign).collect();
                                self.affine(node, op, x, x_arg, None, Some((shape, data)), out)?
                            }
                        }
                    }
                    _ => {
                        let both_plain = matches!((&a, &b), (Sym::Real(_), Sym::Real(_)));
                        let (sa, ca) = self.as_poly(node, op, a.clone())?;
                        let (sb, cb) = self.as_poly(node, op, b.clone())?;
                        // `x + p(x)` is one polynomial; `x + x` stays an add
                        // (a structural node, e.g. a skip from a value to itself).
                        if sa == sb && !(both_plain && sign > 0.0) {
                            Sym::Poly {
                                src: sa,
                                coeffs: poly_add(&ca, &cb, sign),
                            }
                        } else {
                            if sign < 0.0 {
                                return Err(unsupported(
                                    node,
                                    op,
                                    "difference of two different values",
                                ));
                            }
                            let la = self.producers.get(&a_arg.name).cloned();
                            let lb = self.producers.get(&b_arg.name).cloned();
                            let va = self.materialize_as(node, a, la.as_deref())?;
                            let vb = self.materialize_as(node, b, lb.as_deref())?;
                            self.push(node, Op::Add, vec![va, vb], out)?;
                            return Ok(());
                        }
                    }
                }
            }
        };
        self.syms.insert(out.name.clone(), result);
        Ok(())
    }

    /// `scale * x + shift` with constants of any shape that broadcast to
    /// `x`'s (NumPy rules, batch axis included). A per-channel map folds
    /// into the producing conv or dense layer when nothing else reads its
    /// output, else becomes a batch norm (per-channel affine); a map that
    /// varies within a channel is a per-element affine on the flattened
    /// value. A constant that would change `x`'s shape is refused.
    #[allow(clippy::too_many_arguments)]
    fn affine(
        &mut self,
        node: &str,
        op: &str,
        x: Sym,
        x_arg: &Argument,
        scale: Option<(Vec<usize>, Vec<f64>)>,
        shift: Option<(Vec<usize>, Vec<f64>)>,
        out: &Argument,
    ) -> R<Sym> {
        let was_real = matches!(x, Sym::Real(_));
        let label = self.producers.get(&x_arg.name).cloned();
        let v = self.materialize_as(node, x, label.as_deref())?;
        let s = self.shapes[&v].clone();
        let mut onnx_shape = vec![1usize];
        onnx_shape.extend(&s);
        let n: usize = s.iter().product();
        let full = |k: Option<(Vec<usize>, Vec<f64>)>, dflt: f64| -> R<Vec<f64>> {
            let Some((kd, kv)) = k else {
                return Ok(vec![dflt; n]);
            };
            if kv.iter().any(|v| !v.is_finite()) {
                return Err(unsupported(node, op, "constant with non-finite values"));
            }
            super::prepare::expand_to(&kd, &kv, &onnx_shape).ok_or_else(|| {
                unsupported(
                    node,
                    op,
                    format!(
                        "a constant of shape {kd:?} broadcast with a value of shape [N, {}] does not keep that shape",
                        s.iter().map(|d| d.to_string()).collect::<Vec<_>>().join(", ")
                    ),
                )
            })
        };
        let sc = full(scale, 1.0)?;
        let sh = full(shift, 0.0)?;
        // Per channel: constant over each channel's H x W.
        let per = if s.len() == 3 { s[1] * s[2] } else { 1 };
        let c = n / per.max(1);
        let uniform = |t: &[f64]| {
            (0..c).all(|ch| {
                t[ch * per..(ch + 1) * per]
                    .iter()
                    .all(|&v| v == t[ch * per])
            })
        };
        if (s.len() == 3 && !(uniform(&sc) && uniform(&sh))) || s.len() == 2 {
            // Per element: flatten, per-element affine, reshape back.
            let base = sanitize(node);
            let flat = self.push_raw(
                &format!("{base}.flatten"),
                Op::Flatten,
                vec![v],
                &format!("{}.flat", sanitize(&out.name)),
            )?;
            let bn = affine_bn(sc, sh);
            let y = self.push_raw(
                &base,
                bn,
                vec![flat],
                &format!("{}.affine", sanitize(&out.name)),
            )?;
            let r = self.push(
                &format!("{base}.reshape"),
                Op::Reshape { shape: s },
                vec![y],
                out,
            )?;
            return Ok(Sym::Real(r));
        }
        let scv: Vec<f64> = (0..c).map(|ch| sc[ch * per]).collect();
        let shv: Vec<f64> = (0..c).map(|ch| sh[ch * per]).collect();
        // Fold into the producing conv / dense layer.
        let sole = was_real && self.uses.get(&x_arg.name).copied().unwrap_or(0) == 1;
        if sole && let Some(p) = self.g.nodes.iter_mut().find(|nd| nd.output == v) {
            let target = match &mut p.op {
                Op::Conv2d(cv) if cv.weight.shape.first() == Some(&c) => {
                    Some((&mut cv.weight, &mut cv.bias))
                }
                Op::Dense(d) if d.weight.shape.first() == Some(&c) => {
                    Some((&mut d.weight, &mut d.bias))
                }
                _ => None,
            };
            if let Some((w, b)) = target {
                let per_out = w.numel() / c;
                for (o, k) in scv.iter().enumerate() {
                    w.data[o * per_out..(o + 1) * per_out]
                        .iter_mut()
                        .for_each(|x| *x *= k);
                }
                let b = b.get_or_insert_with(|| Tensor::zeros(vec![c]));
                for o in 0..c {
                    b.data[o] = b.data[o] * scv[o] + shv[o];
                }
                return Ok(Sym::Real(v));
            }
        }
        let r = self.push(node, affine_bn(scv, shv), vec![v], out)?;
        Ok(Sym::Real(r))
    }

    /// Pushes a node defining our value `value` (no ONNX argument).
    fn push_raw(&mut self, name: &str, op: Op, inputs: Vec<String>, value: &str) -> R<String> {
        let node = Node::new(self.unique_name(name), op, inputs, value.to_string());
        let ins: Vec<&[usize]> = node
            .inputs
            .iter()
            .map(|i| self.shapes[i].as_slice())
            .collect();
        let shape = crate::graph::infer_node(&node, &ins)?;
        self.g.push(node);
        self.shapes.insert(value.to_string(), shape);
        Ok(value.to_string())
    }
}

/// `y = scale * x + shift` as an inference batch norm.
fn affine_bn(scale: Vec<f64>, shift: Vec<f64>) -> Op {
    let c = scale.len();
    Op::BatchNorm(BatchNorm {
        gamma: Tensor::vector(scale),
        beta: Tensor::vector(shift),
        mean: Tensor::zeros(vec![c]),
        var: Tensor::vector(vec![1.0; c]),
        eps: 0.0,
    })
}

/// Whether an ONNX value is shape arithmetic rather than image data.
fn is_shape_like(a: &Argument) -> bool {
    match &a.ty {
        ArgType::Shape(_) => true,
        ArgType::ScalarNative(d) | ArgType::ScalarTensor(d) => !d.is_float(),
        ArgType::Tensor(t) => !t.dtype.is_float(),
    }
}

/// A reshape target `[-1, d1, d2, ...]` from the statically inferred shape
/// of the reshape's output, when all non-batch dimensions are known; a
/// rank-2 output (`[N, K]`, the batch kept) is a flatten.
fn inferred_target(out: &Argument) -> Option<Vec<i64>> {
    let ArgType::Tensor(t) = &out.ty else {
        return None;
    };
    if t.rank == 2 {
        // `[N, -1]`: with the batch kept, a rank-2 result is a flatten.
        return Some(vec![0, -1]);
    }
    // The batch copied, known dimensions as inferred, at most one unknown
    // one (`reshape(N, C, -1)`) left to infer from the element count.
    let dims = t.static_shape.clone().unwrap_or_else(|| vec![None; t.rank]);
    if dims.len() != t.rank || t.rank < 2 {
        return None;
    }
    let mut v = vec![0i64];
    let mut unknown = 0;
    for d in &dims[1..] {
        match d {
            Some(d) => v.push(i64::try_from(*d).ok()?),
            None => {
                unknown += 1;
                v.push(-1);
            }
        }
    }
    (unknown <= 1).then_some(v)
}

fn pads_of(p: &PaddingConfig2d) -> Pads {
    match p {
        PaddingConfig2d::Valid => Pads::default(),
        PaddingConfig2d::Explicit(t, l, b, r) => Pads::from_onnx([*t, *l, *b, *r]),
    }
}

/// A 2-D constant as our `[OUT, IN]` matrix (`transpose`: it is `[IN, OUT]`).
fn matrix(node: &str, op: &str, t: Tensor, transpose: bool) -> R<Tensor> {
    if t.shape.len() != 2 || !t.is_consistent() {
        return Err(unsupported(
            node,
            op,
            format!("weight of shape {:?} is not a matrix", t.shape),
        ));
    }
    if !transpose {
        return Ok(t);
    }
    let (r, c) = (t.shape[0], t.shape[1]);
    let mut d = vec![0.0; r * c];
    for i in 0..r {
        for j in 0..c {
            d[j * r + i] = t.data[i * c + j];
        }
    }
    Ok(Tensor {
        shape: vec![c, r],
        data: d,
    })
}

fn bias_vector(node: &str, op: &str, b: Option<Tensor>, n: usize, beta: f64) -> R<Option<Tensor>> {
    let Some(b) = b else { return Ok(None) };
    let data = if b.data.len() == n {
        b.data
    } else if b.data.len() == 1 {
        vec![b.data[0]; n]
    } else {
        return Err(unsupported(
            node,
            op,
            format!("bias of shape {:?} for {n} outputs", b.shape),
        ));
    };
    Ok(Some(Tensor::vector(
        data.into_iter().map(|v| v * beta).collect(),
    )))
}

/// Maps an ONNX reshape target (with batch dim) to a per-image shape.
fn per_image_shape(input: &[usize], target: &[i64]) -> Option<Vec<usize>> {
    let numel: usize = input.iter().product();
    let (first, rest) = target.split_first()?;
    if !(-1..=1).contains(first) {
        return None;
    }
    let mut out = Vec::with_capacity(rest.len());
    let mut infer = None;
    for (i, &d) in rest.iter().enumerate() {
        match d {
            -1 if infer.is_none() => {
                infer = Some(i);
                out.push(1);
            }
            0 => out.push(*input.get(i)?),
            d if d > 0 => out.push(d as usize),
            _ => return None,
        }
    }
    let known = checked_numel(&out)?;
    if let Some(i) = infer {
        if known == 0 || !numel.is_multiple_of(known) {
            return None;
        }
        out[i] = numel / known;
    }
    if *first == -1 && infer.is_some() {
        return None;
    }
    (checked_numel(&out)? == numel && !out.is_empty()).then_some(out)
}

/// ONNX names may contain anything; ours avoid only the empty name.
fn sanitize(s: &str) -> String {
    if s.is_empty() {
        "unnamed".into()
    } else {
        s.to_string()
    }
}

/// Restores our node names, value names and activation ranges from the
/// export metadata when the imported structure matches it; otherwise
/// applies the recorded ranges by activation order when their count
/// matches.
fn apply_meta(g: &mut Graph, meta: &HashMap<String, String>) {
    let Some(nodes) = meta
        .get(META_NODES)
        .and_then(|s| serde_json::from_str::<Vec<NodeMeta>>(s).ok())
    else {
        return;
    };
    let kinds_match = nodes.len() == g.nodes.len()
        && nodes
            .iter()
            .zip(&g.nodes)
            .all(|(m, n)| m.kind == n.op.kind());
    let valid_range = |r: &[f64; 2]| r[0].is_finite() && r[1].is_finite() && r[0] < r[1];
    if kinds_match {
        let mut rename: HashMap<String, String> = HashMap::new();
        if let Some(inp) = meta.get(META_INPUT) {
            rename.insert(g.input.clone(), inp.clone());
        }
        for (m, n) in nodes.iter().zip(&g.nodes) {
            rename.insert(n.output.clone(), m.output.clone());
        }
        // Only rename when the new names are unique.
        let mut seen = std::collections::HashSet::new();
        let unique = rename.values().all(|v| seen.insert(v.clone()))
            && nodes
                .iter()
                .map(|m| &m.name)
                .collect::<std::collections::HashSet<_>>()
                .len()
                == nodes.len();
        if unique {
            let r = |v: &String| rename.get(v).cloned().unwrap_or_else(|| v.clone());
            g.input = r(&g.input);
            g.output = r(&g.output);
            for (m, n) in nodes.iter().zip(g.nodes.iter_mut()) {
                n.name = m.name.clone();
                n.output = r(&n.output);
                n.inputs = n.inputs.iter().map(r).collect();
            }
            if let Some(name) = meta.get(META_NAME) {
                g.name = name.clone();
            }
        }
        for (m, n) in nodes.iter().zip(g.nodes.iter_mut()) {
            if let (Some(r), Op::PolyAct(p)) = (m.range, &mut n.op)
                && valid_range(&r)
            {
                p.range = r;
            }
        }
    } else {
        let ranges: Vec<[f64; 2]> = nodes.iter().filter_map(|m| m.range).collect();
        let acts = g
            .nodes
            .iter()
            .filter(|n| matches!(n.op, Op::PolyAct(_)))
            .count();
        if ranges.len() == acts {
            let mut it = ranges.into_iter();
            for n in &mut g.nodes {
                if let Op::PolyAct(p) = &mut n.op
                    && let Some(r) = it.next()
                    && valid_range(&r)
                {
                    p.range = r;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reshape_targets() {
        assert_eq!(per_image_shape(&[64, 1, 1], &[-1, 64]), Some(vec![64]));
        assert_eq!(per_image_shape(&[64, 1, 1], &[1, -1]), Some(vec![64]));
        assert_eq!(per_image_shape(&[4, 2, 2], &[0, 4, 4]), Some(vec![4, 4]));
        assert_eq!(per_image_shape(&[4, 2, 2], &[-1, -1]), None);
        assert_eq!(per_image_shape(&[4, 2, 2], &[2, 16]), None);
        assert_eq!(per_image_shape(&[4, 2, 2], &[-1, 15]), None);
    }

    #[test]
    fn poly_algebra() {
        assert_eq!(poly_mul(&[1.0, 1.0], &[1.0, 1.0]), vec![1.0, 2.0, 1.0]);
        assert_eq!(poly_add(&[0.0, 1.0], &[0.0, 1.0], -1.0), vec![0.0]);
    }
}
