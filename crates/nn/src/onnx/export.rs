//! ONNX export of our graphs, written with the protobuf bindings that
//! `onnx-ir` ships (so any ONNX tool, e.g. onnxruntime or Netron, reads
//! the file).
//!
//! Mapping: conv → `Conv` (Dirac convs are folded first), batch norm →
//! `BatchNormalization`, add → `Add`, polynomial activation → a chain of
//! `Mul`/`Add` (or `Pow`/`Mul`/`Add`) nodes on scalar constants, average
//! pooling → `AveragePool`, global average pooling → `GlobalAveragePool`
//! (or `ReduceMean`), flatten → `Flatten` (or `Reshape`), dense → `Gemm`
//! (or `MatMul` + `Add`), reshape → `Reshape`. Weights are `float32`
//! initializers named after our parameters (`stage1.block1.conv1.weight`).
//!
//! The model's `metadata_props` carry what ONNX cannot say: key
//! [`META_NODES`] holds a JSON list of our nodes (name, kind, output value,
//! and for activations the input range), so that [`super::import`] recovers
//! names and activation ranges exactly. The last node of each activation
//! chain also has a doc string `residue.poly_act range=[lo, hi]`.

use serde::{Deserialize, Serialize};

use super::OnnxError;
use crate::graph::{Graph, Op, Tensor};
use crate::transform::fold_dirac;
use onnx_ir::{
    AttributeProto, AttributeType, GraphProto, Message, ModelProto, NodeProto, TensorProto,
    ValueInfoProto,
};

/// Metadata key holding the JSON list of [`NodeMeta`].
pub const META_NODES: &str = "residue.nodes";
/// Metadata key holding the graph name.
pub const META_NAME: &str = "residue.name";
/// Metadata key holding the input value name.
pub const META_INPUT: &str = "residue.input";

/// What the export records about each of our nodes (in topological order).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NodeMeta {
    /// Our node name.
    pub name: String,
    /// Operator kind as exported (`Op::kind`; Dirac convs are `conv2d`).
    pub kind: String,
    /// Our output value name.
    pub output: String,
    /// Activation input range, for `poly_act` nodes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub range: Option<[f64; 2]>,
}

/// Which exporter's operator patterns to imitate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ExportStyle {
    /// `torch.onnx.export` (TorchScript): `GlobalAveragePool` + `Flatten`,
    /// `Gemm`; opset 13.
    #[default]
    TorchScript,
    /// `torch.onnx.export(dynamo=True)`: `ReduceMean` + `Reshape`,
    /// `MatMul` + `Add`; opset 18.
    Dynamo,
}

/// How polynomial activations are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum PolyStyle {
    /// Horner's scheme: `((c_d·x + c_{d-1})·x + ...)·x + c_0` (`Mul`, `Add`).
    #[default]
    Horner,
    /// A sum of powers `c_0 + c_1·x + c_2·Pow(x, 2) + ...` as PyTorch
    /// traces `a*x**2 + b*x + c`.
    PowerSum,
}

/// Export options.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ExportOptions {
    /// Operator patterns.
    pub style: ExportStyle,
    /// Activation patterns.
    pub poly: PolyStyle,
}

const FLOAT: i32 = 1;
const INT64: i32 = 7;

struct Writer {
    g: GraphProto,
    counter: usize,
}

impl Writer {
    fn fresh(&mut self, base: &str) -> String {
        self.counter += 1;
        format!("{base}/{}", self.counter)
    }

    fn init_f32(&mut self, name: &str, t: &Tensor) -> String {
        let mut p = TensorProto::new();
        p.name = name.to_string();
        p.data_type = FLOAT;
        p.dims = t.shape.iter().map(|&d| d as i64).collect();
        p.float_data = t.data.iter().map(|&v| v as f32).collect();
        self.g.initializer.push(p);
        name.to_string()
    }

    fn scalar(&mut self, name: &str, v: f64) -> String {
        let mut p = TensorProto::new();
        p.name = name.to_string();
        p.data_type = FLOAT;
        p.float_data = vec![v as f32];
        self.g.initializer.push(p);
        name.to_string()
    }

    fn init_i64(&mut self, name: &str, v: &[i64]) -> String {
        let mut p = TensorProto::new();
        p.name = name.to_string();
        p.data_type = INT64;
        p.dims = vec![v.len() as i64];
        p.int64_data = v.to_vec();
        self.g.initializer.push(p);
        name.to_string()
    }

    fn node(
        &mut self,
        name: &str,
        op: &str,
        inputs: &[&str],
        output: &str,
        attrs: Vec<AttributeProto>,
    ) -> &mut NodeProto {
        let mut n = NodeProto::new();
        n.name = name.to_string();
        n.op_type = op.to_string();
        n.input = inputs.iter().map(|s| s.to_string()).collect();
        n.output = vec![output.to_string()];
        n.attribute = attrs;
        self.g.node.push(n);
        self.g.node.last_mut().expect("just pushed")
    }
}

fn attr_ints(name: &str, v: &[usize]) -> AttributeProto {
    let mut a = AttributeProto::new();
    a.name = name.into();
    a.type_ = AttributeType::INTS.into();
    a.ints = v.iter().map(|&x| x as i64).collect();
    a
}

fn attr_int(name: &str, v: i64) -> AttributeProto {
    let mut a = AttributeProto::new();
    a.name = name.into();
    a.type_ = AttributeType::INT.into();
    a.i = v;
    a
}

fn attr_float(name: &str, v: f64) -> AttributeProto {
    let mut a = AttributeProto::new();
    a.name = name.into();
    a.type_ = AttributeType::FLOAT.into();
    a.f = v as f32;
    a
}

fn value_info(name: &str, dims: &[usize]) -> ValueInfoProto {
    let mut v = ValueInfoProto::new();
    v.name = name.into();
    let tt = v.type_.mut_or_insert_default().mut_tensor_type();
    tt.elem_type = FLOAT;
    let shape = tt.shape.mut_or_insert_default();
    shape.dim.push(Default::default());
    shape.dim[0].set_dim_param("N".into());
    for &d in dims {
        shape.dim.push(Default::default());
        if let Some(last) = shape.dim.last_mut() {
            last.set_dim_value(d as i64);
        }
    }
    v
}

/// Exports `graph` as ONNX model bytes with default options (TorchScript
/// style, Horner activations).
pub fn export(graph: &Graph) -> Result<Vec<u8>, OnnxError> {
    export_with(graph, ExportOptions::default())
}

/// Exports `graph` to an ONNX file.
pub fn save(graph: &Graph, path: impl AsRef<std::path::Path>) -> Result<(), OnnxError> {
    let bytes = export(graph)?;
    let path = path.as_ref();
    std::fs::write(path, bytes).map_err(|source| OnnxError::Io {
        path: path.display().to_string(),
        source,
    })
}

/// Exports `graph` as ONNX model bytes.
pub fn export_with(graph: &Graph, opts: ExportOptions) -> Result<Vec<u8>, OnnxError> {
    let mut graph = fold_dirac(graph)?;
    graph.sort()?;
    let shapes = graph.infer_shapes()?;
    let dynamo = opts.style == ExportStyle::Dynamo;
    let mut w = Writer {
        g: GraphProto::new(),
        counter: 0,
    };
    w.g.name = graph.name.clone();
    w.g.input.push(value_info(&graph.input, &graph.input_shape));
    let mut meta = Vec::new();
    for n in &graph.nodes {
        let x = n.inputs[0].as_str();
        let out = n.output.as_str();
        let pname = |s: &str| format!("{}.{s}", n.name);
        let mut range = None;
        match &n.op {
            Op::Conv2d(c) => {
                let wn = w.init_f32(&pname("weight"), &c.weight);
                let mut ins = vec![x.to_string(), wn];
                if let Some(b) = &c.bias {
                    ins.push(w.init_f32(&pname("bias"), b));
                }
                let ins: Vec<&str> = ins.iter().map(|s| s.as_str()).collect();
                let k = [c.weight.shape[2], c.weight.shape[3]];
                w.node(
                    &n.name,
                    "Conv",
                    &ins,
                    out,
                    vec![
                        attr_ints("kernel_shape", &k),
                        attr_ints("strides", &c.stride),
                        attr_ints("pads", &c.pads.onnx()),
                        attr_ints("dilations", &[1, 1]),
                        attr_int("group", 1),
                    ],
                );
            }
            Op::DiracConv2d(_) => unreachable!("folded above"),
            Op::BatchNorm(b) => {
                let s = w.init_f32(&pname("weight"), &b.gamma);
                let t = w.init_f32(&pname("bias"), &b.beta);
                let m = w.init_f32(&pname("running_mean"), &b.mean);
                let v = w.init_f32(&pname("running_var"), &b.var);
                w.node(
                    &n.name,
                    "BatchNormalization",
                    &[x, &s, &t, &m, &v],
                    out,
                    vec![attr_float("epsilon", b.eps)],
                );
            }
            Op::Add => {
                w.node(&n.name, "Add", &[x, &n.inputs[1]], out, vec![]);
            }
            Op::PolyAct(p) => {
                range = Some(p.range);
                let deg = p.degree();
                let c = &p.coeffs;
                let mut cur: String;
                match opts.poly {
                    PolyStyle::Horner => {
                        if deg == 0 {
                            let z = w.scalar(&pname("c1"), 0.0);
                            cur = w.fresh(&n.name);
                            w.node(&format!("{}/mul0", n.name), "Mul", &[x, &z], &cur, vec![]);
                        } else {
                            let cd = w.scalar(&pname(&format!("c{deg}")), c[deg]);
                            cur = w.fresh(&n.name);
                            w.node(
                                &format!("{}/mul{deg}", n.name),
                                "Mul",
                                &[x, &cd],
                                &cur,
                                vec![],
                            );
                            for i in (1..deg).rev() {
                                let ci = w.scalar(&pname(&format!("c{i}")), c[i]);
                                let t = w.fresh(&n.name);
                                w.node(
                                    &format!("{}/add{i}", n.name),
                                    "Add",
                                    &[&cur, &ci],
                                    &t,
                                    vec![],
                                );
                                cur = w.fresh(&n.name);
                                w.node(
                                    &format!("{}/mul{i}", n.name),
                                    "Mul",
                                    &[&t, x],
                                    &cur,
                                    vec![],
                                );
                            }
                        }
                    }
                    PolyStyle::PowerSum => {
                        let c1 = w.scalar(&pname("c1"), c.get(1).copied().unwrap_or(0.0));
                        cur = w.fresh(&n.name);
                        w.node(&format!("{}/mul1", n.name), "Mul", &[x, &c1], &cur, vec![]);
                        for (i, &ci) in c.iter().enumerate().take(deg + 1).skip(2) {
                            let e = w.scalar(&pname(&format!("e{i}")), i as f64);
                            let pw = w.fresh(&n.name);
                            w.node(&format!("{}/pow{i}", n.name), "Pow", &[x, &e], &pw, vec![]);
                            let cn = w.scalar(&pname(&format!("c{i}")), ci);
                            let term = w.fresh(&n.name);
                            w.node(
                                &format!("{}/mul{i}", n.name),
                                "Mul",
                                &[&pw, &cn],
                                &term,
                                vec![],
                            );
                            let s = w.fresh(&n.name);
                            w.node(
                                &format!("{}/add{i}", n.name),
                                "Add",
                                &[&cur, &term],
                                &s,
                                vec![],
                            );
                            cur = s;
                        }
                    }
                }
                let c0 = w.scalar(&pname("c0"), c[0]);
                let last = w.node(
                    &format!("{}/add0", n.name),
                    "Add",
                    &[&cur, &c0],
                    out,
                    vec![],
                );
                last.doc_string =
                    format!("residue.poly_act range=[{}, {}]", p.range[0], p.range[1]);
            }
            Op::AvgPool(a) => {
                w.node(
                    &n.name,
                    "AveragePool",
                    &[x],
                    out,
                    vec![
                        attr_ints("kernel_shape", &a.kernel),
                        attr_ints("strides", &a.stride),
                        attr_ints("pads", &a.pads.onnx()),
                        attr_int("count_include_pad", a.count_include_pad as i64),
                    ],
                );
            }
            Op::GlobalAvgPool => {
                if dynamo {
                    let axes = w.init_i64(&pname("axes"), &[2, 3]);
                    w.node(
                        &n.name,
                        "ReduceMean",
                        &[x, &axes],
                        out,
                        vec![attr_int("keepdims", 1)],
                    );
                } else {
                    w.node(&n.name, "GlobalAveragePool", &[x], out, vec![]);
                }
            }
            Op::Flatten => {
                if dynamo {
                    let numel: usize = shapes[x].iter().product();
                    let s = w.init_i64(&pname("shape"), &[-1, numel as i64]);
                    w.node(&n.name, "Reshape", &[x, &s], out, vec![]);
                } else {
                    w.node(&n.name, "Flatten", &[x], out, vec![attr_int("axis", 1)]);
                }
            }
            Op::Reshape { shape } => {
                let mut s = vec![-1i64];
                s.extend(shape.iter().map(|&d| d as i64));
                let s = w.init_i64(&pname("shape"), &s);
                w.node(&n.name, "Reshape", &[x, &s], out, vec![]);
            }
            Op::Dense(d) => {
                if dynamo {
                    let (o, i) = (d.weight.shape[0], d.weight.shape[1]);
                    let mut tdata = vec![0.0; o * i];
                    for r in 0..o {
                        for c in 0..i {
                            tdata[c * o + r] = d.weight.data[r * i + c];
                        }
                    }
                    let wt = Tensor {
                        shape: vec![i, o],
                        data: tdata,
                    };
                    let wn = w.init_f32(&pname("weight_t"), &wt);
                    match &d.bias {
                        Some(b) => {
                            let mm = w.fresh(&n.name);
                            w.node(
                                &format!("{}/matmul", n.name),
                                "MatMul",
                                &[x, &wn],
                                &mm,
                                vec![],
                            );
                            let bn = w.init_f32(&pname("bias"), b);
                            w.node(&n.name, "Add", &[&mm, &bn], out, vec![]);
                        }
                        None => {
                            w.node(&n.name, "MatMul", &[x, &wn], out, vec![]);
                        }
                    }
                } else {
                    let wn = w.init_f32(&pname("weight"), &d.weight);
                    let mut ins = vec![x.to_string(), wn];
                    if let Some(b) = &d.bias {
                        ins.push(w.init_f32(&pname("bias"), b));
                    }
                    let ins: Vec<&str> = ins.iter().map(|s| s.as_str()).collect();
                    w.node(&n.name, "Gemm", &ins, out, vec![attr_int("transB", 1)]);
                }
            }
        }
        meta.push(NodeMeta {
            name: n.name.clone(),
            kind: n.op.kind().to_string(),
            output: n.output.clone(),
            range,
        });
    }
    let out_shape = &shapes[graph.output.as_str()];
    w.g.output.push(value_info(&graph.output, out_shape));

    let mut m = ModelProto::new();
    m.ir_version = 8;
    m.producer_name = "residue".into();
    m.producer_version = env!("CARGO_PKG_VERSION").into();
    m.opset_import.push(Default::default());
    m.opset_import[0].domain = String::new();
    m.opset_import[0].version = if dynamo { 18 } else { 13 };
    let props = [
        (META_NODES, serde_json::to_string(&meta).unwrap_or_default()),
        (META_NAME, graph.name.clone()),
        (META_INPUT, graph.input.clone()),
    ];
    for (k, v) in props {
        m.metadata_props.push(Default::default());
        if let Some(e) = m.metadata_props.last_mut() {
            e.key = k.to_string();
            e.value = v;
        }
    }
    *m.graph.mut_or_insert_default() = w.g;
    m.write_to_bytes()
        .map_err(|e| OnnxError::Export(e.to_string()))
}
