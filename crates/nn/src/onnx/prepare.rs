//! Work on the raw ONNX protobuf before `onnx-ir` sees it.
//!
//! - degenerate files (empty, no graph, no nodes) get one-line errors;
//! - external tensor data (side files next to the model, what
//!   `torch.onnx.export` writes for large models) is read into the model,
//!   with every path checked to stay inside the model's folder;
//! - `Dropout` in training mode is refused (it is random at inference);
//! - every subgraph that depends only on initializers and constants is
//!   evaluated now ([`fold_constants`]): Dirac convolutions exported
//!   unfolded, PyTorch weight normalization, coefficients picked with
//!   `Gather`, ... become plain initializers before patterns are matched;
//! - the file's node names and operators are kept ([`FileNode`]) so that
//!   errors name nodes as the file does.

use std::collections::{HashMap, HashSet};
use std::path::Path;

use onnx_ir::{AttributeProto, GraphProto, ModelProto, NodeProto, TensorProto};

use super::OnnxError;

/// Largest constant (elements) the folder computes.
pub const MAX_FOLD_ELEMENTS: usize = 1 << 24;
/// Largest external data file read (bytes).
pub const MAX_EXTERNAL_BYTES: u64 = 512 << 20;

/// A node as the file names it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileNode {
    /// The node's name in the file (may be empty).
    pub name: String,
    /// Its operator (`op_type`).
    pub op: String,
    /// An `AveragePool` with `ceil_mode = 1`: the attribute is cleared
    /// before `onnx-ir` (which takes it only from opset 19, though it
    /// exists since opset 10) and applied by the importer.
    pub ceil_mode: bool,
}

fn unsupported(node: &NodeProto, msg: impl Into<String>) -> OnnxError {
    OnnxError::Unsupported {
        node: display_name(node),
        op: node.op_type.clone(),
        msg: msg.into(),
    }
}

/// How the file names a node: its name, else its first output.
fn display_name(n: &NodeProto) -> String {
    if !n.name.is_empty() {
        n.name.clone()
    } else if let Some(o) = n.output.first() {
        format!("(unnamed, output `{o}`)")
    } else {
        "(unnamed)".into()
    }
}

/// Checks the model's structure, inlines external data, refuses training
/// dropout and folds constants. `base` is the model's folder (`None` for
/// models given as bytes). Returns the file's nodes left after folding.
pub fn prepare(proto: &mut ModelProto, base: Option<&Path>) -> Result<Vec<FileNode>, OnnxError> {
    let Some(graph) = proto.graph.as_mut() else {
        return Err(OnnxError::Parse(
            "the file holds no graph (not an ONNX model, or a truncated one)".into(),
        ));
    };
    if graph.node.is_empty() {
        return Err(OnnxError::Parse(
            "the graph has no nodes: the model computes nothing".into(),
        ));
    }
    if graph.output.is_empty() {
        return Err(OnnxError::Output("the graph declares no output".into()));
    }
    for t in graph.initializer.iter_mut() {
        inline_external(t, base)?;
    }
    for n in graph.node.iter_mut() {
        for a in n.attribute.iter_mut() {
            if let Some(t) = a.t.as_mut() {
                inline_external(t, base)?;
            }
        }
    }
    check_dropout(graph)?;
    fold_constants(graph)?;
    let mut out = Vec::with_capacity(graph.node.len());
    for n in graph.node.iter_mut() {
        let mut ceil_mode = false;
        if n.op_type == "AveragePool" {
            for a in n.attribute.iter_mut() {
                if a.name == "ceil_mode" && a.i != 0 {
                    ceil_mode = true;
                    a.i = 0;
                }
            }
        }
        out.push(FileNode {
            name: display_name(n),
            op: n.op_type.clone(),
            ceil_mode,
        });
    }
    Ok(out)
}

/// Reads an external tensor's bytes into `raw_data`.
fn inline_external(t: &mut TensorProto, base: Option<&Path>) -> Result<(), OnnxError> {
    if t.data_location.value() != 1 && t.external_data.is_empty() {
        return Ok(());
    }
    let bad = |m: String| OnnxError::Parse(format!("tensor `{}`: {m}", t.name));
    let mut location = None;
    let mut offset = 0u64;
    let mut length = None;
    for e in &t.external_data {
        match e.key.as_str() {
            "location" => location = Some(e.value.clone()),
            "offset" => {
                offset = e
                    .value
                    .parse()
                    .map_err(|_| bad(format!("external data offset `{}`", e.value)))?
            }
            "length" => {
                length = Some(
                    e.value
                        .parse::<u64>()
                        .map_err(|_| bad(format!("external data length `{}`", e.value)))?,
                )
            }
            _ => {}
        }
    }
    let location = location.ok_or_else(|| bad("external data without a location".into()))?;
    let Some(base) = base else {
        return Err(bad(format!(
            "its data is in the side file `{location}`; load the model from its path so that the file can be found"
        )));
    };
    let rel = Path::new(&location);
    if location.is_empty()
        || location.contains('\0')
        || rel.is_absolute()
        || rel
            .components()
            .any(|c| !matches!(c, std::path::Component::Normal(_)))
    {
        return Err(bad(format!(
            "external data location `{location}` must be a relative path inside the model's folder"
        )));
    }
    let path = base.join(rel);
    let missing = |e: std::io::Error| {
        bad(format!(
            "cannot read its side file `{}`: {e}",
            path.display()
        ))
    };
    // Symbolic links must not lead out of the model's folder either.
    let canon_base = base.canonicalize().map_err(missing)?;
    let canon = path.canonicalize().map_err(missing)?;
    if !canon.starts_with(&canon_base) {
        return Err(bad(format!(
            "external data `{location}` resolves outside the model's folder"
        )));
    }
    let elem = match t.data_type {
        1 | 6 => 4u64,
        7 | 11 => 8,
        10 | 5 | 4 => 2,
        2 | 3 | 9 => 1,
        d => return Err(bad(format!("external data of ONNX type {d}"))),
    };
    let numel = t
        .dims
        .iter()
        .try_fold(1u64, |a, &d| {
            u64::try_from(d).ok().and_then(|d| a.checked_mul(d))
        })
        .ok_or_else(|| bad(format!("invalid dims {:?}", t.dims)))?;
    let need = numel
        .checked_mul(elem)
        .filter(|&n| n <= MAX_EXTERNAL_BYTES)
        .ok_or_else(|| bad(format!("dims {:?} too large", t.dims)))?;
    if let Some(l) = length
        && l != need
    {
        return Err(bad(format!(
            "external data length {l} but dims {:?} need {need} bytes",
            t.dims
        )));
    }
    use std::io::{Read, Seek, SeekFrom};
    let mut f = std::fs::File::open(&canon).map_err(missing)?;
    let size = f.metadata().map_err(missing)?.len();
    if offset.checked_add(need).is_none_or(|e| e > size) {
        return Err(bad(format!(
            "side file `{location}` is {size} bytes, too short for {need} bytes at offset {offset}"
        )));
    }
    f.seek(SeekFrom::Start(offset)).map_err(missing)?;
    let mut buf = vec![0u8; need as usize];
    f.read_exact(&mut buf).map_err(missing)?;
    t.raw_data = buf.into();
    t.external_data.clear();
    t.data_location = Default::default();
    Ok(())
}

/// The constant value of an argument: an initializer or a folded value.
type Consts = HashMap<String, CT>;

fn check_dropout(g: &GraphProto) -> Result<(), OnnxError> {
    let inits: Consts = g
        .initializer
        .iter()
        .filter_map(|t| Some((t.name.clone(), CT::from_proto(t).ok()?)))
        .collect();
    let mut consts = inits;
    for n in &g.node {
        if n.op_type == "Constant"
            && let (Some(o), Ok(v)) = (n.output.first(), constant_node(n))
        {
            consts.insert(o.clone(), v);
        }
        if n.op_type != "Dropout" {
            continue;
        }
        let training = match n.input.get(2).filter(|s| !s.is_empty()) {
            None => false,
            Some(name) => match consts.get(name) {
                Some(v) => v.data.first().is_some_and(|&x| x != 0.0),
                None => {
                    return Err(unsupported(
                        n,
                        "training_mode is computed at run time; Residue runs inference only",
                    ));
                }
            },
        };
        // Opset < 7: an `is_test = 0` attribute means training.
        let is_test0 = n.attribute.iter().any(|a| a.name == "is_test" && a.i == 0);
        if training || is_test0 {
            return Err(unsupported(
                n,
                "training_mode = 1: random dropout at inference is not a function of the input; export the model in eval mode",
            ));
        }
    }
    Ok(())
}

/// A constant tensor while folding (values as `f64`; `int` remembers an
/// integer type).
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct CT {
    dims: Vec<usize>,
    data: Vec<f64>,
    int: bool,
}

fn numel(d: &[usize]) -> Option<usize> {
    d.iter().try_fold(1usize, |a, &x| a.checked_mul(x))
}

impl CT {
    fn new(dims: Vec<usize>, data: Vec<f64>, int: bool) -> Result<Self, String> {
        match numel(&dims) {
            Some(n) if n == data.len() && n <= MAX_FOLD_ELEMENTS => Ok(Self { dims, data, int }),
            _ => Err(format!(
                "constant of shape {dims:?} is invalid or too large"
            )),
        }
    }

    fn scalar(v: f64, int: bool) -> Self {
        Self {
            dims: vec![],
            data: vec![v],
            int,
        }
    }

    fn from_proto(t: &TensorProto) -> Result<Self, String> {
        let dims: Vec<usize> = t
            .dims
            .iter()
            .map(|&d| usize::try_from(d).map_err(|_| format!("negative dim {d}")))
            .collect::<Result<_, _>>()?;
        let n = numel(&dims)
            .filter(|&n| n <= MAX_FOLD_ELEMENTS)
            .ok_or("too large")?;
        let raw = &t.raw_data;
        let from_raw = |sz: usize, f: &dyn Fn(&[u8]) -> f64| -> Result<Vec<f64>, String> {
            if raw.len() != n * sz {
                return Err("raw data length does not match the shape".into());
            }
            Ok(raw.chunks_exact(sz).map(f).collect())
        };
        let (data, int) = match t.data_type {
            1 if !raw.is_empty() => (
                from_raw(4, &|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]) as f64)?,
                false,
            ),
            1 => (t.float_data.iter().map(|&v| v as f64).collect(), false),
            11 if !raw.is_empty() => (
                from_raw(8, &|c| {
                    f64::from_le_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]])
                })?,
                false,
            ),
            11 => (t.double_data.clone(), false),
            7 if !raw.is_empty() => (
                from_raw(8, &|c| {
                    i64::from_le_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]]) as f64
                })?,
                true,
            ),
            7 => (t.int64_data.iter().map(|&v| v as f64).collect(), true),
            6 if !raw.is_empty() => (
                from_raw(4, &|c| i32::from_le_bytes([c[0], c[1], c[2], c[3]]) as f64)?,
                true,
            ),
            6 | 9 | 2 | 3 | 4 | 5 if raw.is_empty() => {
                (t.int32_data.iter().map(|&v| v as f64).collect(), true)
            }
            9 | 2 => (from_raw(1, &|c| c[0] as f64)?, true),
            3 => (from_raw(1, &|c| c[0] as i8 as f64)?, true),
            d => return Err(format!("ONNX type {d} is not folded")),
        };
        Self::new(dims, data, int)
    }

    fn to_proto(&self, name: &str) -> TensorProto {
        let mut t = TensorProto::new();
        t.name = name.to_string();
        t.dims = self.dims.iter().map(|&d| d as i64).collect();
        if self.int {
            t.data_type = 7;
            t.int64_data = self.data.iter().map(|&v| v as i64).collect();
        } else {
            t.data_type = 1;
            t.float_data = self.data.iter().map(|&v| v as f32).collect();
        }
        t
    }

    fn ints(&self) -> Vec<i64> {
        self.data.iter().map(|&v| v as i64).collect()
    }
}

fn attr<'a>(n: &'a NodeProto, name: &str) -> Option<&'a AttributeProto> {
    n.attribute.iter().find(|a| a.name == name)
}

fn constant_node(n: &NodeProto) -> Result<CT, String> {
    for a in &n.attribute {
        match a.name.as_str() {
            "value" => {
                return CT::from_proto(a.t.as_ref().ok_or("value without a tensor")?);
            }
            "value_float" => return Ok(CT::scalar(a.f as f64, false)),
            "value_int" => return Ok(CT::scalar(a.i as f64, true)),
            "value_floats" => {
                return CT::new(
                    vec![a.floats.len()],
                    a.floats.iter().map(|&v| v as f64).collect(),
                    false,
                );
            }
            "value_ints" => {
                return CT::new(
                    vec![a.ints.len()],
                    a.ints.iter().map(|&v| v as f64).collect(),
                    true,
                );
            }
            _ => {}
        }
    }
    Err("Constant without a supported value".into())
}

/// NumPy broadcast of two shapes.
pub(crate) fn broadcast_shape(a: &[usize], b: &[usize]) -> Option<Vec<usize>> {
    let r = a.len().max(b.len());
    let mut out = vec![0; r];
    for i in 0..r {
        let da = if i + a.len() >= r {
            a[i + a.len() - r]
        } else {
            1
        };
        let db = if i + b.len() >= r {
            b[i + b.len() - r]
        } else {
            1
        };
        out[i] = if da == db || db == 1 {
            da
        } else if da == 1 {
            db
        } else {
            return None;
        };
    }
    Some(out)
}

/// Element `idx` (multi-index of `out`) of `t` broadcast to `out`.
fn strides(d: &[usize]) -> Vec<usize> {
    let mut s = vec![1; d.len()];
    for i in (0..d.len().saturating_sub(1)).rev() {
        s[i] = s[i + 1] * d[i + 1];
    }
    s
}

/// `t` broadcast to shape `out` (which must be a broadcast of `t`).
pub(crate) fn expand_to(dims: &[usize], data: &[f64], out: &[usize]) -> Option<Vec<f64>> {
    if broadcast_shape(dims, out)? != out {
        return None;
    }
    let n = numel(out).filter(|&n| n <= MAX_FOLD_ELEMENTS)?;
    let r = out.len();
    let pad = r - dims.len();
    let src_strides = strides(dims);
    let out_strides = strides(out);
    let mut v = Vec::with_capacity(n);
    for i in 0..n {
        let mut off = 0;
        for k in pad..r {
            let coord = (i / out_strides[k]) % out[k];
            let d = dims[k - pad];
            if d != 1 {
                off += coord * src_strides[k - pad];
            }
        }
        v.push(data[off]);
    }
    Some(v)
}

fn binary(a: &CT, b: &CT, f: impl Fn(f64, f64) -> f64) -> Result<CT, String> {
    let out = broadcast_shape(&a.dims, &b.dims)
        .ok_or_else(|| format!("shapes {:?} and {:?} do not broadcast", a.dims, b.dims))?;
    let x = expand_to(&a.dims, &a.data, &out).ok_or("too large")?;
    let y = expand_to(&b.dims, &b.data, &out).ok_or("too large")?;
    let int = a.int && b.int;
    let data = x
        .iter()
        .zip(&y)
        .map(|(&p, &q)| {
            let v = f(p, q);
            if int { v.trunc() } else { v }
        })
        .collect();
    CT::new(out, data, int)
}

fn norm_axis(a: i64, r: usize) -> Result<usize, String> {
    let v = if a < 0 { a + r as i64 } else { a };
    if v < 0 || v >= r as i64 {
        return Err(format!("axis {a} out of range for rank {r}"));
    }
    Ok(v as usize)
}

fn reduce(n: &NodeProto, x: &CT, axes_in: Option<&CT>, op: &str) -> Result<CT, String> {
    let r = x.dims.len();
    let mut axes: Vec<i64> = attr(n, "axes").map(|a| a.ints.clone()).unwrap_or_default();
    if let Some(a) = axes_in {
        axes = a.ints();
    }
    let keep = attr(n, "keepdims").is_none_or(|a| a.i != 0);
    let noop = attr(n, "noop_with_empty_axes").is_some_and(|a| a.i != 0);
    if axes.is_empty() {
        if noop {
            return Ok(x.clone());
        }
        axes = (0..r as i64).collect();
    }
    let mut red = vec![false; r];
    for a in axes {
        red[norm_axis(a, r)?] = true;
    }
    let out_keep: Vec<usize> = (0..r).map(|i| if red[i] { 1 } else { x.dims[i] }).collect();
    let on = numel(&out_keep).ok_or("too large")?;
    let init = match op {
        "max" => f64::NEG_INFINITY,
        "min" => f64::INFINITY,
        "prod" => 1.0,
        _ => 0.0,
    };
    let mut acc = vec![init; on];
    let mut count = vec![0usize; on];
    let xs = strides(&x.dims);
    let os = strides(&out_keep);
    for (i, &v) in x.data.iter().enumerate() {
        let mut o = 0;
        for k in 0..r {
            let c = (i / xs[k]) % x.dims[k];
            if !red[k] {
                o += c * os[k];
            }
        }
        count[o] += 1;
        acc[o] = match op {
            "l2" | "sumsquare" => acc[o] + v * v,
            "l1" => acc[o] + v.abs(),
            "max" => acc[o].max(v),
            "min" => acc[o].min(v),
            "prod" => acc[o] * v,
            _ => acc[o] + v,
        };
    }
    for (a, c) in acc.iter_mut().zip(&count) {
        match op {
            "l2" => *a = a.sqrt(),
            "mean" => *a /= (*c).max(1) as f64,
            _ => {}
        }
    }
    let dims = if keep {
        out_keep
    } else {
        (0..r).filter(|&i| !red[i]).map(|i| x.dims[i]).collect()
    };
    CT::new(dims, acc, x.int)
}

fn reshape_dims(x: &CT, shape: &[i64], allowzero: bool) -> Result<Vec<usize>, String> {
    let total = x.data.len();
    let mut out = Vec::with_capacity(shape.len());
    let mut infer = None;
    for (i, &d) in shape.iter().enumerate() {
        match d {
            -1 if infer.is_none() => {
                infer = Some(i);
                out.push(1);
            }
            0 if !allowzero => out.push(*x.dims.get(i).ok_or("reshape: 0 beyond the rank")?),
            d if d >= 0 => out.push(d as usize),
            _ => return Err(format!("reshape target {shape:?}")),
        }
    }
    let known = numel(&out).ok_or("too large")?;
    if let Some(i) = infer {
        if known == 0 || !total.is_multiple_of(known) {
            return Err(format!("cannot reshape {:?} to {shape:?}", x.dims));
        }
        out[i] = total / known;
    }
    if numel(&out) != Some(total) {
        return Err(format!("cannot reshape {:?} to {shape:?}", x.dims));
    }
    Ok(out)
}

/// Evaluates one node on constants; `Ok(None)` for operators the folder
/// does not know (the node is left to the importer).
fn eval(n: &NodeProto, ins: &[Option<&CT>]) -> Result<Option<Vec<CT>>, String> {
    let get = |i: usize| -> Result<&CT, String> {
        ins.get(i)
            .copied()
            .flatten()
            .ok_or_else(|| format!("missing input {i}"))
    };
    let un = |f: &dyn Fn(f64) -> f64| -> Result<Option<Vec<CT>>, String> {
        let x = get(0)?;
        let data = x.data.iter().map(|&v| f(v)).collect();
        Ok(Some(vec![CT::new(x.dims.clone(), data, x.int)?]))
    };
    let one = |c: CT| Ok(Some(vec![c]));
    match n.op_type.as_str() {
        "Constant" => one(constant_node(n)?),
        "Identity" => one(get(0)?.clone()),
        "Add" => one(binary(get(0)?, get(1)?, |a, b| a + b)?),
        "Sub" => one(binary(get(0)?, get(1)?, |a, b| a - b)?),
        "Mul" => one(binary(get(0)?, get(1)?, |a, b| a * b)?),
        "Div" => one(binary(get(0)?, get(1)?, |a, b| a / b)?),
        "Pow" => one(binary(get(0)?, get(1)?, f64::powf)?),
        "Max" | "Min" | "Sum" | "Mean" => {
            let mut acc = get(0)?.clone();
            let k = ins.len();
            for i in 1..k {
                acc = match n.op_type.as_str() {
                    "Max" => binary(&acc, get(i)?, f64::max)?,
                    "Min" => binary(&acc, get(i)?, f64::min)?,
                    _ => binary(&acc, get(i)?, |a, b| a + b)?,
                };
            }
            if n.op_type == "Mean" {
                acc.data.iter_mut().for_each(|v| *v /= k as f64);
            }
            one(acc)
        }
        "Neg" => un(&|v| -v),
        "Abs" => un(&f64::abs),
        "Exp" => un(&f64::exp),
        "Log" => un(&f64::ln),
        "Sqrt" => un(&f64::sqrt),
        "Reciprocal" => un(&|v| 1.0 / v),
        "Tanh" => un(&f64::tanh),
        "Sigmoid" => un(&|v| 1.0 / (1.0 + (-v).exp())),
        "Relu" => un(&|v| v.max(0.0)),
        "Floor" => un(&f64::floor),
        "Ceil" => un(&f64::ceil),
        "Sign" => un(&|v| if v == 0.0 { 0.0 } else { v.signum() }),
        "Clip" => {
            let lo = ins
                .get(1)
                .copied()
                .flatten()
                .map_or(f64::NEG_INFINITY, |c| c.data[0]);
            let hi = ins
                .get(2)
                .copied()
                .flatten()
                .map_or(f64::INFINITY, |c| c.data[0]);
            let lo = attr(n, "min").map_or(lo, |a| a.f as f64);
            let hi = attr(n, "max").map_or(hi, |a| a.f as f64);
            un(&|v| v.max(lo).min(hi))
        }
        "Cast" => {
            let x = get(0)?;
            let to = attr(n, "to").map_or(1, |a| a.i);
            let int = !matches!(to, 1 | 10 | 11 | 16);
            let data = if int {
                x.data.iter().map(|v| v.trunc()).collect()
            } else {
                x.data.clone()
            };
            one(CT::new(x.dims.clone(), data, int)?)
        }
        "ReduceL2" | "ReduceL1" | "ReduceSum" | "ReduceMean" | "ReduceMax" | "ReduceMin"
        | "ReduceProd" | "ReduceSumSquare" => {
            let op = match n.op_type.as_str() {
                "ReduceL2" => "l2",
                "ReduceL1" => "l1",
                "ReduceMean" => "mean",
                "ReduceMax" => "max",
                "ReduceMin" => "min",
                "ReduceProd" => "prod",
                "ReduceSumSquare" => "sumsquare",
                _ => "sum",
            };
            one(reduce(n, get(0)?, ins.get(1).copied().flatten(), op)?)
        }
        "Reshape" => {
            let x = get(0)?;
            let allowzero = attr(n, "allowzero").is_some_and(|a| a.i != 0);
            let dims = reshape_dims(x, &get(1)?.ints(), allowzero)?;
            one(CT::new(dims, x.data.clone(), x.int)?)
        }
        "Flatten" => {
            let x = get(0)?;
            let r = x.dims.len();
            let ax = attr(n, "axis").map_or(1, |a| a.i);
            let ax = if ax < 0 { ax + r as i64 } else { ax };
            if ax < 0 || ax > r as i64 {
                return Err(format!("axis {ax} out of range"));
            }
            let a: usize = x.dims[..ax as usize].iter().product();
            let b: usize = x.dims[ax as usize..].iter().product();
            one(CT::new(vec![a, b], x.data.clone(), x.int)?)
        }
        "Unsqueeze" => {
            let x = get(0)?;
            let axes = match ins.get(1).copied().flatten() {
                Some(a) => a.ints(),
                None => attr(n, "axes").map(|a| a.ints.clone()).unwrap_or_default(),
            };
            let r = x.dims.len() + axes.len();
            let mut ax: Vec<usize> = axes
                .iter()
                .map(|&a| norm_axis(a, r))
                .collect::<Result<_, _>>()?;
            ax.sort_unstable();
            let mut dims = x.dims.clone();
            for a in ax {
                if a > dims.len() {
                    return Err("unsqueeze axis out of range".into());
                }
                dims.insert(a, 1);
            }
            one(CT::new(dims, x.data.clone(), x.int)?)
        }
        "Squeeze" => {
            let x = get(0)?;
            let axes = match ins.get(1).copied().flatten() {
                Some(a) => a.ints(),
                None => attr(n, "axes").map(|a| a.ints.clone()).unwrap_or_default(),
            };
            let r = x.dims.len();
            let ax: Vec<usize> = axes
                .iter()
                .map(|&a| norm_axis(a, r))
                .collect::<Result<_, _>>()?;
            let dims = (0..r)
                .filter(|i| {
                    if ax.is_empty() {
                        x.dims[*i] != 1
                    } else {
                        !ax.contains(i)
                    }
                })
                .map(|i| x.dims[i])
                .collect();
            one(CT::new(dims, x.data.clone(), x.int)?)
        }
        "Transpose" => {
            let x = get(0)?;
            let r = x.dims.len();
            let perm: Vec<usize> = match attr(n, "perm") {
                Some(a) => a
                    .ints
                    .iter()
                    .map(|&p| norm_axis(p, r))
                    .collect::<Result<_, _>>()?,
                None => (0..r).rev().collect(),
            };
            let mut seen = perm.clone();
            seen.sort_unstable();
            if seen != (0..r).collect::<Vec<_>>() {
                return Err(format!("invalid perm {perm:?}"));
            }
            let dims: Vec<usize> = perm.iter().map(|&p| x.dims[p]).collect();
            let xs = strides(&x.dims);
            let os = strides(&dims);
            let data = (0..x.data.len())
                .map(|i| {
                    let mut off = 0;
                    for k in 0..r {
                        off += ((i / os[k]) % dims[k]) * xs[perm[k]];
                    }
                    x.data[off]
                })
                .collect();
            one(CT::new(dims, data, x.int)?)
        }
        "Concat" => {
            let parts: Vec<&CT> = (0..ins.len()).map(get).collect::<Result<_, _>>()?;
            let first = parts.first().ok_or("no inputs")?;
            let r = first.dims.len();
            let ax = norm_axis(attr(n, "axis").map_or(0, |a| a.i), r)?;
            let mut dims = first.dims.clone();
            dims[ax] = 0;
            for p in &parts {
                if p.dims.len() != r || (0..r).any(|k| k != ax && p.dims[k] != first.dims[k]) {
                    return Err("concat of mismatched shapes".into());
                }
                dims[ax] += p.dims[ax];
            }
            let outer: usize = dims[..ax].iter().product();
            let mut data = Vec::new();
            for o in 0..outer {
                for p in &parts {
                    let inner: usize = p.dims[ax..].iter().product();
                    data.extend_from_slice(&p.data[o * inner..(o + 1) * inner]);
                }
            }
            one(CT::new(dims, data, parts.iter().all(|p| p.int))?)
        }
        "Gather" => {
            let x = get(0)?;
            let idx = get(1)?;
            let r = x.dims.len();
            let ax = norm_axis(attr(n, "axis").map_or(0, |a| a.i), r)?;
            let d = x.dims[ax] as i64;
            let outer: usize = x.dims[..ax].iter().product();
            let inner: usize = x.dims[ax + 1..].iter().product();
            let mut data = Vec::new();
            for o in 0..outer {
                for &i in &idx.data {
                    let i = i as i64;
                    let i = if i < 0 { i + d } else { i };
                    if i < 0 || i >= d {
                        return Err(format!("gather index out of range 0..{d}"));
                    }
                    let base = (o * x.dims[ax] + i as usize) * inner;
                    data.extend_from_slice(&x.data[base..base + inner]);
                    if data.len() > MAX_FOLD_ELEMENTS {
                        return Err("too large".into());
                    }
                }
            }
            let mut dims = x.dims[..ax].to_vec();
            dims.extend(&idx.dims);
            dims.extend(&x.dims[ax + 1..]);
            one(CT::new(dims, data, x.int)?)
        }
        "Expand" => {
            let x = get(0)?;
            let shape: Vec<usize> = get(1)?
                .ints()
                .iter()
                .map(|&v| usize::try_from(v).map_err(|_| "negative dim".to_string()))
                .collect::<Result<_, _>>()?;
            let out = broadcast_shape(&x.dims, &shape).ok_or("expand: shapes do not broadcast")?;
            let data = expand_to(&x.dims, &x.data, &out).ok_or("too large")?;
            one(CT::new(out, data, x.int)?)
        }
        "Shape" => {
            let x = get(0)?;
            let d = x.dims.iter().map(|&v| v as f64).collect::<Vec<_>>();
            one(CT::new(vec![d.len()], d, true)?)
        }
        "ConstantOfShape" => {
            let shape: Vec<usize> = get(0)?
                .ints()
                .iter()
                .map(|&v| usize::try_from(v).map_err(|_| "negative dim".to_string()))
                .collect::<Result<_, _>>()?;
            let (v, int) = match attr(n, "value").and_then(|a| a.t.as_ref()) {
                Some(t) => {
                    let c = CT::from_proto(t)?;
                    (c.data.first().copied().unwrap_or(0.0), c.int)
                }
                None => (0.0, false),
            };
            let k = numel(&shape)
                .filter(|&k| k <= MAX_FOLD_ELEMENTS)
                .ok_or("too large")?;
            one(CT::new(shape, vec![v; k], int)?)
        }
        "MatMul" => {
            let a = get(0)?;
            let b = get(1)?;
            let (&[m, k], &[k2, nn]) = (a.dims.as_slice(), b.dims.as_slice()) else {
                return Ok(None);
            };
            if k != k2 {
                return Err("matmul of mismatched shapes".into());
            }
            if m.checked_mul(nn).is_none_or(|v| v > MAX_FOLD_ELEMENTS)
                || m.saturating_mul(k).saturating_mul(nn) > (1 << 26)
            {
                return Err("too large".into());
            }
            let mut d = vec![0.0; m * nn];
            for i in 0..m {
                for j in 0..nn {
                    d[i * nn + j] = (0..k).map(|t| a.data[i * k + t] * b.data[t * nn + j]).sum();
                }
            }
            one(CT::new(vec![m, nn], d, false)?)
        }
        _ => Ok(None),
    }
}

/// Evaluates, in node order, every node whose inputs are all constant
/// (initializers, `Constant` nodes, or results of such nodes), replacing
/// it by initializers. Nodes the folder does not know stay. The folded
/// values keep the file's names.
pub fn fold_constants(g: &mut GraphProto) -> Result<(), OnnxError> {
    let runtime_inputs: HashSet<String> = {
        let inits: HashSet<&str> = g.initializer.iter().map(|t| t.name.as_str()).collect();
        g.input
            .iter()
            .filter(|i| !inits.contains(i.name.as_str()))
            .map(|i| i.name.clone())
            .collect()
    };
    let mut consts: Consts = HashMap::new();
    for t in &g.initializer {
        if runtime_inputs.contains(&t.name) {
            continue;
        }
        if let Ok(c) = CT::from_proto(t) {
            consts.insert(t.name.clone(), c);
        }
    }
    let mut total = 0usize;
    let mut keep = Vec::with_capacity(g.node.len());
    let mut folded_any = false;
    for n in std::mem::take(&mut g.node) {
        let all_const = n
            .input
            .iter()
            .all(|i| i.is_empty() || consts.contains_key(i))
            && (!n.input.is_empty() || n.op_type == "Constant")
            && n.domain.is_empty();
        if !all_const || n.output.iter().any(|o| runtime_inputs.contains(o)) {
            keep.push(n);
            continue;
        }
        let ins: Vec<Option<&CT>> = n
            .input
            .iter()
            .map(|i| if i.is_empty() { None } else { consts.get(i) })
            .collect();
        match eval(&n, &ins) {
            Ok(Some(outs)) => {
                for (name, v) in n.output.iter().zip(outs) {
                    total = total.saturating_add(v.data.len());
                    if total > 4 * MAX_FOLD_ELEMENTS {
                        return Err(unsupported(&n, "constant subgraph too large to evaluate"));
                    }
                    consts.insert(name.clone(), v);
                }
                folded_any = true;
            }
            Ok(None) => keep.push(n),
            Err(e) => {
                return Err(unsupported(
                    &n,
                    format!("evaluating this initializer-only node at load time: {e}"),
                ));
            }
        }
    }
    g.node = keep;
    check_shape_inputs(g, &consts)?;
    if !folded_any {
        return Ok(());
    }
    // Initializers for every constant a remaining node or the graph output
    // reads; drop the ones nothing reads any more.
    let mut used: HashSet<String> = g.node.iter().flat_map(|n| n.input.clone()).collect();
    used.extend(g.output.iter().map(|o| o.name.clone()));
    let had: HashSet<String> = g.initializer.iter().map(|t| t.name.clone()).collect();
    g.initializer.retain(|t| used.contains(&t.name));
    let present: HashSet<String> = g.initializer.iter().map(|t| t.name.clone()).collect();
    let mut names: Vec<&String> = consts.keys().collect();
    names.sort();
    for name in names {
        if used.contains(name) && !present.contains(name) {
            g.initializer.push(consts[name].to_proto(name));
        }
    }
    // Old-style graphs list initializers as inputs too.
    g.input
        .retain(|i| !had.contains(&i.name) || used.contains(&i.name));
    Ok(())
}

/// Largest dimension a constant shape may name.
pub const MAX_DIM: i64 = 1 << 31;

/// Constant shapes, axes and pads read by the nodes left are sane before
/// `onnx-ir` computes with them (its shape inference multiplies them
/// unchecked): every value within `[-MAX_DIM, MAX_DIM]`, and the product
/// of a shape's dimensions at most `2^40`.
fn check_shape_inputs(g: &GraphProto, consts: &Consts) -> Result<(), OnnxError> {
    for n in &g.node {
        let shape_inputs: &[usize] = match n.op_type.as_str() {
            "Reshape" | "Expand" | "Tile" => &[1],
            "ConstantOfShape" => &[0],
            "Unsqueeze" | "Squeeze" | "ReduceMean" | "ReduceSum" | "ReduceL2" => &[1],
            "Pad" => &[1, 3],
            _ => &[],
        };
        for &i in shape_inputs {
            let Some(c) = n.input.get(i).and_then(|v| consts.get(v)) else {
                continue;
            };
            let bad = c
                .data
                .iter()
                .any(|v| !v.is_finite() || v.abs() > MAX_DIM as f64 * 4.0);
            let product = c.data.iter().filter(|v| **v > 0.0).try_fold(1f64, |a, v| {
                Some(a * v).filter(|p| *p <= (1u64 << 40) as f64)
            });
            let is_shape = matches!(
                n.op_type.as_str(),
                "Reshape" | "Expand" | "Tile" | "ConstantOfShape"
            );
            if bad || (is_shape && product.is_none()) {
                return Err(unsupported(
                    n,
                    format!(
                        "input {i} holds an impossible shape {:?}",
                        &c.data[..c.data.len().min(8)]
                    ),
                ));
            }
        }
    }
    // Declared value shapes (the input's above all).
    for v in g.input.iter().chain(&g.output).chain(&g.value_info) {
        if let Some(t) = v.type_.as_ref()
            && t.has_tensor_type()
        {
            let dims: Vec<i64> = t
                .tensor_type()
                .shape
                .dim
                .iter()
                .filter(|d| d.has_dim_value())
                .map(|d| d.dim_value())
                .collect();
            if dims.iter().any(|&d| !(0..=MAX_DIM).contains(&d))
                || dims
                    .iter()
                    .try_fold(1i64, |a, &d| a.checked_mul(d))
                    .is_none_or(|p| p > 1 << 40)
            {
                return Err(OnnxError::Parse(format!(
                    "value `{}` declares impossible dims {dims:?}",
                    v.name
                )));
            }
        }
    }
    // Shapes of initializers too.
    for t in &g.initializer {
        if t.dims.iter().any(|&d| !(0..=MAX_DIM).contains(&d))
            || t.dims
                .iter()
                .try_fold(1i64, |a, &d| a.checked_mul(d))
                .is_none_or(|p| p > 1 << 40)
        {
            return Err(OnnxError::Parse(format!(
                "initializer `{}` has impossible dims {:?}",
                t.name, t.dims
            )));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn broadcasting() {
        assert_eq!(broadcast_shape(&[4], &[1, 4, 4, 4]), Some(vec![1, 4, 4, 4]));
        assert_eq!(
            broadcast_shape(&[4, 1, 1], &[1, 4, 2, 2]),
            Some(vec![1, 4, 2, 2])
        );
        assert_eq!(broadcast_shape(&[3], &[1, 4, 4, 4]), None);
        let v = expand_to(&[2], &[1.0, 2.0], &[2, 2]).unwrap();
        assert_eq!(v, vec![1.0, 2.0, 1.0, 2.0]);
        let v = expand_to(&[2, 1], &[1.0, 2.0], &[2, 2]).unwrap();
        assert_eq!(v, vec![1.0, 1.0, 2.0, 2.0]);
    }
}
