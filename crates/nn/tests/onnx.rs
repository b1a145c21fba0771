//! ONNX round trips and agreement with `tract-onnx`.

use nn::exec::{max_abs_diff, run};
use nn::onnx::{ExportOptions, ExportStyle, OnnxError, PolyStyle, export, export_with, import};
use nn::transform::fold_all;
use nn::zoo::{Arch, ZooConfig, build_random};
use nn::{Graph, Op, Tensor};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use tract_onnx::prelude::{
    Framework, InferenceFact, InferenceModelExt, Tensor as TTensor, tract_ndarray, tvec,
};

fn small(arch: Arch, in_ch: usize, size: usize) -> Graph {
    let mut cfg = ZooConfig::new(arch, 8, in_ch, [size, size], 10);
    cfg.width = 0.5;
    // Activations of the size a trained net would have, with a range.
    cfg.act.coeffs = vec![0.05, 0.5, 0.1];
    cfg.act.range = [-3.0, 3.0];
    build_random(&cfg, 11).unwrap()
}

fn input(g: &Graph, seed: u64) -> Tensor {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let n: usize = g.input_shape.iter().product();
    Tensor::new(
        g.input_shape.clone(),
        (0..n).map(|_| rng.gen_range(-1.0..1.0)).collect(),
    )
    .unwrap()
}

/// Runs an ONNX model with tract on one image.
fn tract_run(bytes: &[u8], x: &Tensor) -> Vec<f64> {
    let mut shape = vec![1usize];
    shape.extend(&x.shape);
    let model = tract_onnx::onnx()
        .model_for_read(&mut std::io::Cursor::new(bytes))
        .unwrap()
        .with_input_fact(0, InferenceFact::dt_shape(f32::datum_type(), shape.clone()))
        .unwrap()
        .into_optimized()
        .unwrap()
        .into_runnable()
        .unwrap();
    let data: Vec<f32> = x.data.iter().map(|&v| v as f32).collect();
    let arr = tract_ndarray::ArrayD::from_shape_vec(shape, data).unwrap();
    let t: TTensor = arr.into();
    let out = model.run(tvec!(t.into())).unwrap();
    let view = out[0].to_array_view::<f32>().unwrap();
    view.iter().map(|&v| v as f64).collect()
}

use tract_onnx::prelude::Datum;

fn assert_close(a: &[f64], b: &[f64], tol: f64, what: &str) {
    let scale = a.iter().fold(1.0f64, |m, v| m.max(v.abs()));
    let d = max_abs_diff(a, b);
    assert!(d <= tol * scale, "{what}: max diff {d} (scale {scale})");
}

#[test]
fn round_trip_restores_names_ranges_and_outputs() {
    for arch in [
        Arch::ResNet,
        Arch::Dirac,
        Arch::DiracShared { adds_per_stage: 1 },
    ] {
        let g = small(arch, 1, 12);
        let bytes = export(&g).unwrap();
        let h = import(&bytes).unwrap();
        // Dirac convs are exported folded; everything else keeps its name.
        let names = |g: &Graph| g.nodes.iter().map(|n| n.name.clone()).collect::<Vec<_>>();
        let mut gs = g.clone();
        gs.sort().unwrap();
        assert_eq!(names(&gs), names(&h), "{arch:?}");
        assert_eq!(h.input, g.input);
        assert_eq!(h.output, g.output);
        assert_eq!(h.name, g.name);
        for ((_, a), (_, b)) in g.activations().iter().zip(h.activations()) {
            assert_eq!(a.range, b.range);
            assert_eq!(a.coeffs.len(), b.coeffs.len());
        }
        for s in 0..2 {
            let x = input(&g, s);
            let a = run(&g, &x).unwrap();
            let b = run(&h, &x).unwrap();
            assert_close(&a.data, &b.data, 1e-5, &format!("{arch:?}"));
        }
        // A second round trip is exact (weights are already f32).
        let h2 = import(&export(&h).unwrap()).unwrap();
        assert_eq!(h, h2);
    }
}

#[test]
fn reference_matches_tract_in_all_styles() {
    let styles = [
        (ExportStyle::TorchScript, PolyStyle::Horner),
        (ExportStyle::TorchScript, PolyStyle::PowerSum),
        (ExportStyle::Dynamo, PolyStyle::Horner),
        (ExportStyle::Dynamo, PolyStyle::PowerSum),
    ];
    for (i, arch) in [Arch::ResNet, Arch::DiracShared { adds_per_stage: 1 }]
        .into_iter()
        .enumerate()
    {
        let g = small(arch, 3, 10);
        for (style, poly) in styles {
            for folded in [false, true] {
                let src = if folded {
                    fold_all(&g).unwrap()
                } else {
                    g.clone()
                };
                let bytes = export_with(&src, ExportOptions { style, poly }).unwrap();
                let h = import(&bytes).unwrap();
                let what = format!("{arch:?} {style:?} {poly:?} folded={folded}");
                if folded {
                    assert!(h.nodes.iter().all(|n| !matches!(n.op, Op::BatchNorm(_))));
                }
                assert_eq!(h.activations().len(), g.activations().len(), "{what}");
                let x = input(&g, 100 + i as u64);
                let ours = run(&h, &x).unwrap();
                let theirs = tract_run(&bytes, &x);
                assert_close(&ours.data, &theirs, 1e-5, &what);
            }
        }
    }
}

#[test]
fn imports_reject_bad_files_without_panicking() {
    // Not protobuf at all: the error says what the file is not.
    let e = import(b"not an onnx file").unwrap_err();
    assert!(matches!(e, OnnxError::Parse(_)), "{e}");
    assert!(e.to_string().contains("not an ONNX file"), "{e}");
    let g = small(Arch::Dirac, 1, 8);
    let bytes = export(&g).unwrap();
    for cut in [1, 10, bytes.len() / 2, bytes.len() - 3] {
        assert!(import(&bytes[..cut]).is_err(), "truncated at {cut}");
    }
    // An operator we do not support is named in the error.
    let mut proto = <onnx_ir::ModelProto as onnx_ir::Message>::parse_from_bytes(&bytes).unwrap();
    for n in proto.graph.mut_or_insert_default().node.iter_mut() {
        if n.op_type == "GlobalAveragePool" {
            n.op_type = "GlobalMaxPool".into();
        }
    }
    let bad = onnx_ir::Message::write_to_bytes(&proto).unwrap();
    let e = import(&bad).unwrap_err();
    assert!(matches!(e, OnnxError::Unsupported { .. }), "{e}");
    assert!(e.to_string().contains("GlobalMaxPool"), "{e}");
}

/// A hand-built graph with the operators the zoo does not use: average
/// pooling (both divisor rules, asymmetric padding), reshape, a batch norm
/// after a dense layer, a cubic activation and a conv with a bias.
fn odd_graph() -> Graph {
    use nn::Node;
    use nn::graph::{AvgPool, BatchNorm, Conv2d, Dense, Pads, PolyAct};
    let mut rng = ChaCha8Rng::seed_from_u64(5);
    let mut r = |shape: Vec<usize>, lo: f64, hi: f64| {
        let n = shape.iter().product();
        Tensor::new(shape, (0..n).map(|_| rng.gen_range(lo..hi)).collect()).unwrap()
    };
    let mut g = Graph::new("odd", "x", vec![2, 9, 9]);
    let conv = Op::Conv2d(Conv2d {
        weight: r(vec![4, 2, 3, 3], -0.5, 0.5),
        bias: Some(r(vec![4], -0.1, 0.1)),
        stride: [2, 1],
        pads: Pads::from_onnx([1, 0, 1, 2]),
    });
    g.push(Node::new("conv", conv, vec!["x".into()], "a"));
    let act = Op::PolyAct(PolyAct {
        coeffs: vec![0.1, 0.9, -0.05, 0.02],
        range: [-2.0, 2.0],
    });
    g.push(Node::new("act", act, vec!["a".into()], "b"));
    let pool = Op::AvgPool(AvgPool {
        kernel: [3, 3],
        stride: [2, 2],
        pads: Pads::uniform(1),
        count_include_pad: false,
    });
    g.push(Node::new("pool1", pool, vec!["b".into()], "c"));
    let pool = Op::AvgPool(AvgPool {
        kernel: [2, 2],
        stride: [1, 1],
        pads: Pads::from_onnx([0, 1, 1, 0]),
        count_include_pad: true,
    });
    g.push(Node::new("pool2", pool, vec!["c".into()], "d"));
    g.push(Node::new("add", Op::Add, vec!["d".into(), "d".into()], "e"));
    let s = g.infer_shapes().unwrap()["e"].clone();
    let n: usize = s.iter().product();
    g.push(Node::new(
        "reshape",
        Op::Reshape {
            shape: vec![s[0], s[1] * s[2]],
        },
        vec!["e".into()],
        "f",
    ));
    g.push(Node::new("flat", Op::Flatten, vec!["f".into()], "h"));
    let fc = Op::Dense(Dense {
        weight: r(vec![6, n], -0.3, 0.3),
        bias: None,
    });
    g.push(Node::new("fc", fc, vec!["h".into()], "i"));
    let bn = Op::BatchNorm(BatchNorm {
        gamma: r(vec![6], 0.5, 1.5),
        beta: r(vec![6], -0.5, 0.5),
        mean: r(vec![6], -0.2, 0.2),
        var: r(vec![6], 0.5, 1.5),
        eps: 1e-3,
    });
    g.push(Node::new("bn", bn, vec!["i".into()], "y"));
    g.output = "y".into();
    g.infer_shapes().unwrap();
    g
}

#[test]
fn odd_operators_round_trip_and_match_tract() {
    let g = odd_graph();
    for style in [ExportStyle::TorchScript, ExportStyle::Dynamo] {
        let bytes = export_with(
            &g,
            ExportOptions {
                style,
                poly: PolyStyle::Horner,
            },
        )
        .unwrap();
        let h = import(&bytes).unwrap();
        let x = input(&g, 3);
        let a = run(&g, &x).unwrap();
        let b = run(&h, &x).unwrap();
        assert_close(&a.data, &b.data, 1e-5, &format!("{style:?} round trip"));
        assert_close(
            &b.data,
            &tract_run(&bytes, &x),
            1e-5,
            &format!("{style:?} tract"),
        );
        assert_eq!(h.activations()[0].1.range, [-2.0, 2.0]);
    }
}

#[test]
fn scalars_as_constant_nodes_and_foreign_names() {
    // Older exporters write scalars as `Constant` nodes, and foreign models
    // carry no Residue metadata: names come from onnx-ir and ranges from
    // the import options.
    let g = small(Arch::ResNet, 1, 8);
    let bytes = export(&g).unwrap();
    let mut proto = <onnx_ir::ModelProto as onnx_ir::Message>::parse_from_bytes(&bytes).unwrap();
    proto.metadata_props.clear();
    let graph = proto.graph.mut_or_insert_default();
    let (scalars, keep): (Vec<_>, Vec<_>) =
        graph.initializer.drain(..).partition(|t| t.dims.is_empty());
    graph.initializer = keep;
    let mut consts = Vec::new();
    for t in scalars {
        let mut n = onnx_ir::NodeProto::new();
        n.op_type = "Constant".into();
        n.name = format!("const_{}", t.name);
        n.output = vec![t.name.clone()];
        let mut a = onnx_ir::AttributeProto::new();
        a.name = "value".into();
        a.type_ = onnx_ir::AttributeType::TENSOR.into();
        *a.t.mut_or_insert_default() = t;
        n.attribute.push(a);
        consts.push(n);
    }
    consts.append(&mut graph.node);
    graph.node = consts;
    let bytes = onnx_ir::Message::write_to_bytes(&proto).unwrap();
    let opts = nn::onnx::ImportOptions {
        default_range: [-5.0, 5.0],
    };
    let h = nn::onnx::import_with(&bytes, &opts).unwrap();
    assert_eq!(h.activations().len(), g.activations().len());
    assert!(h.activations().iter().all(|(_, p)| p.range == [-5.0, 5.0]));
    let x = input(&g, 8);
    assert_close(
        &run(&g, &x).unwrap().data,
        &run(&h, &x).unwrap().data,
        1e-5,
        "constant nodes",
    );
}

#[test]
fn view_with_dynamic_batch_is_a_flatten() {
    // `x.view(x.size(0), -1)` exports as Shape -> Gather -> Unsqueeze ->
    // Concat -> Reshape; build that in place of our Flatten.
    let g = small(Arch::Dirac, 1, 8);
    let bytes = export(&g).unwrap();
    let mut proto = <onnx_ir::ModelProto as onnx_ir::Message>::parse_from_bytes(&bytes).unwrap();
    let graph = proto.graph.mut_or_insert_default();
    let at = graph
        .node
        .iter()
        .position(|n| n.op_type == "Flatten")
        .unwrap();
    let flat = graph.node.remove(at);
    let (x, y) = (flat.input[0].clone(), flat.output[0].clone());
    let int_init = |name: &str, dims: Vec<i64>, v: Vec<i64>| {
        let mut t = onnx_ir::TensorProto::new();
        t.name = name.into();
        t.data_type = 7;
        t.dims = dims;
        t.int64_data = v;
        t
    };
    graph.initializer.push(int_init("idx0", vec![], vec![0]));
    graph.initializer.push(int_init("axes0", vec![1], vec![0]));
    graph
        .initializer
        .push(int_init("minus1", vec![1], vec![-1]));
    let node = |op: &str, ins: &[&str], out: &str, attrs: Vec<onnx_ir::AttributeProto>| {
        let mut n = onnx_ir::NodeProto::new();
        n.op_type = op.into();
        n.name = format!("view_{out}");
        n.input = ins.iter().map(|s| s.to_string()).collect();
        n.output = vec![out.into()];
        n.attribute = attrs;
        n
    };
    let axis0 = || {
        let mut a = onnx_ir::AttributeProto::new();
        a.name = "axis".into();
        a.type_ = onnx_ir::AttributeType::INT.into();
        a.i = 0;
        a
    };
    let new = vec![
        node("Shape", &[&x], "s", vec![]),
        node("Gather", &["s", "idx0"], "n", vec![axis0()]),
        node("Unsqueeze", &["n", "axes0"], "n1", vec![]),
        node("Concat", &["n1", "minus1"], "shp", vec![axis0()]),
        node("Reshape", &[&x, "shp"], &y, vec![]),
    ];
    for (i, n) in new.into_iter().enumerate() {
        graph.node.insert(at + i, n);
    }
    let bytes = onnx_ir::Message::write_to_bytes(&proto).unwrap();
    let h = import(&bytes).unwrap();
    assert!(h.nodes.iter().any(|n| matches!(n.op, Op::Flatten)));
    let x = input(&g, 21);
    let ours = run(&h, &x).unwrap();
    assert_close(&run(&g, &x).unwrap().data, &ours.data, 1e-5, "view");
    assert_close(&ours.data, &tract_run(&bytes, &x), 1e-5, "view vs tract");
}

#[test]
fn full_size_resnet20_and_dirac_shared20_match_tract() {
    for arch in [Arch::ResNet, Arch::DiracShared { adds_per_stage: 2 }] {
        let mut cfg = ZooConfig::cifar10(arch, 20);
        cfg.act.coeffs = vec![0.0, 0.5, 0.03];
        let g = build_random(&cfg, 3).unwrap();
        let bytes = export(&fold_all(&g).unwrap()).unwrap();
        let h = import(&bytes).unwrap();
        let x = input(&g, 1);
        let ours = run(&h, &x).unwrap();
        assert_close(&run(&g, &x).unwrap().data, &ours.data, 1e-5, "fold+export");
        assert_close(
            &ours.data,
            &tract_run(&bytes, &x),
            1e-5,
            &format!("{arch:?} vs tract"),
        );
    }
}

#[test]
fn resnet_option_a_shortcut_slice_and_pad() {
    // The shortcut of the common public CIFAR ResNet-20 checkpoints:
    // `F.pad(x[:, :, ::2, ::2], (0, 0, 0, 0, p, p))`: stride-2
    // subsampling plus zero channels, a linear map (one 1x1 strided conv).
    use nn::Node;
    use nn::graph::{Conv2d, Dense, Pads};
    let mut rng = ChaCha8Rng::seed_from_u64(9);
    let mut r = |shape: Vec<usize>| {
        let n = shape.iter().product();
        Tensor::new(shape, (0..n).map(|_| rng.gen_range(-0.5..0.5)).collect()).unwrap()
    };
    let mut g = Graph::new("optA", "x", vec![4, 8, 8]);
    let conv = |w: Tensor, s: usize, p: usize| {
        Op::Conv2d(Conv2d {
            weight: w,
            bias: None,
            stride: [s, s],
            pads: Pads::uniform(p),
        })
    };
    g.push(Node::new(
        "main",
        conv(r(vec![8, 4, 3, 3]), 2, 1),
        vec!["x".into()],
        "a",
    ));
    g.push(Node::new(
        "proj",
        conv(r(vec![8, 4, 1, 1]), 2, 0),
        vec!["x".into()],
        "p",
    ));
    g.push(Node::new("add", Op::Add, vec!["a".into(), "p".into()], "s"));
    g.push(Node::new("gap", Op::GlobalAvgPool, vec!["s".into()], "q"));
    g.push(Node::new("flat", Op::Flatten, vec!["q".into()], "f"));
    let fc = Op::Dense(Dense {
        weight: r(vec![10, 8]),
        bias: None,
    });
    g.push(Node::new("fc", fc, vec!["f".into()], "y"));
    g.output = "y".into();
    let bytes = export(&g).unwrap();
    let mut proto = <onnx_ir::ModelProto as onnx_ir::Message>::parse_from_bytes(&bytes).unwrap();
    proto.metadata_props.clear();
    let graph = proto.graph.mut_or_insert_default();
    let at = graph
        .node
        .iter()
        .position(|n| {
            n.op_type == "Conv"
                && n.attribute
                    .iter()
                    .any(|a| a.name == "kernel_shape" && a.ints == [1, 1])
        })
        .unwrap();
    let proj = graph.node.remove(at);
    let (x, y) = (proj.input[0].clone(), proj.output[0].clone());
    let int_init = |name: &str, v: Vec<i64>| {
        let mut t = onnx_ir::TensorProto::new();
        t.name = name.into();
        t.data_type = 7;
        t.dims = vec![v.len() as i64];
        t.int64_data = v;
        t
    };
    graph.initializer.push(int_init("sl_starts", vec![0, 0]));
    graph
        .initializer
        .push(int_init("sl_ends", vec![i64::MAX, i64::MAX]));
    graph.initializer.push(int_init("sl_axes", vec![2, 3]));
    graph.initializer.push(int_init("sl_steps", vec![2, 2]));
    graph
        .initializer
        .push(int_init("pad_pads", vec![0, 2, 0, 0, 0, 2, 0, 0]));
    let node = |op: &str, name: &str, ins: &[&str], out: &str| {
        let mut n = onnx_ir::NodeProto::new();
        n.op_type = op.into();
        n.name = name.into();
        n.input = ins.iter().map(|s| s.to_string()).collect();
        n.output = vec![out.into()];
        n
    };
    graph.node.insert(
        at,
        node(
            "Slice",
            "/shortcut/Slice",
            &[&x, "sl_starts", "sl_ends", "sl_axes", "sl_steps"],
            "sub",
        ),
    );
    graph.node.insert(
        at + 1,
        node("Pad", "/shortcut/Pad", &["sub", "pad_pads"], &y),
    );
    let bytes = onnx_ir::Message::write_to_bytes(&proto).unwrap();
    let h = import(&bytes).unwrap();
    // One strided 1x1-like conv for the whole shortcut.
    let convs = h
        .nodes
        .iter()
        .filter(|n| matches!(n.op, Op::Conv2d(_)))
        .count();
    assert_eq!(convs, 2, "{h:?}");
    let x = input(&g, 4);
    let ours = run(&h, &x).unwrap();
    assert_close(
        &ours.data,
        &tract_run(&bytes, &x),
        1e-5,
        "option A vs tract",
    );
}

#[test]
fn constants_of_every_shape_broadcast_as_numpy_does() {
    use nn::Node;
    use nn::graph::{Conv2d, Dense, Pads, PolyAct};
    let mut rng = ChaCha8Rng::seed_from_u64(13);
    let mut r = |shape: Vec<usize>| {
        let n = shape.iter().product();
        Tensor::new(shape, (0..n).map(|_| rng.gen_range(-0.5..0.5)).collect()).unwrap()
    };
    // conv [4, 6, 5] -> square -> flatten -> dense; a constant op is
    // inserted after the conv (W = 5 != C = 4 != H = 6).
    let mut g = Graph::new("bc", "x", vec![1, 6, 5]);
    let conv = Op::Conv2d(Conv2d {
        weight: r(vec![4, 1, 3, 3]),
        bias: Some(r(vec![4])),
        stride: [1, 1],
        pads: Pads::uniform(1),
    });
    g.push(Node::new("conv", conv, vec!["x".into()], "a"));
    let sq = Op::PolyAct(PolyAct {
        coeffs: vec![0.0, 0.0, 1.0],
        range: [-4.0, 4.0],
    });
    g.push(Node::new("sq", sq, vec!["a".into()], "b"));
    g.push(Node::new("flat", Op::Flatten, vec!["b".into()], "c"));
    let fc = Op::Dense(Dense {
        weight: r(vec![10, 120]),
        bias: None,
    });
    g.push(Node::new("fc", fc, vec!["c".into()], "y"));
    g.output = "y".into();
    let base = export(&g).unwrap();
    let with_const = |op: &str, dims: &[i64], const_first: bool| {
        let mut proto = <onnx_ir::ModelProto as onnx_ir::Message>::parse_from_bytes(&base).unwrap();
        proto.metadata_props.clear();
        let graph = proto.graph.mut_or_insert_default();
        let at = graph.node.iter().position(|n| n.op_type == "Conv").unwrap();
        let conv_out = graph.node[at].output[0].clone();
        let n: i64 = dims.iter().product();
        let mut t = onnx_ir::TensorProto::new();
        t.name = "k".into();
        t.data_type = 1;
        t.dims = dims.to_vec();
        t.float_data = (0..n)
            .map(|i| 0.5 + 0.25 * (i as f32 * 0.7).sin())
            .collect();
        graph.initializer.push(t);
        for m in graph.node.iter_mut() {
            for i in m.input.iter_mut() {
                if *i == conv_out {
                    *i = "kout".into();
                }
            }
        }
        let mut m = onnx_ir::NodeProto::new();
        m.op_type = op.into();
        m.name = format!("/{op}");
        m.input = if const_first {
            vec!["k".into(), conv_out.clone()]
        } else {
            vec![conv_out.clone(), "k".into()]
        };
        m.output = vec!["kout".into()];
        graph.node.insert(at + 1, m);
        onnx_ir::Message::write_to_bytes(&proto).unwrap()
    };
    let x = input(&g, 2);
    for (op, dims, first) in [
        ("Add", vec![4, 1, 1], false),
        ("Add", vec![5], false),
        ("Add", vec![6, 1], true),
        ("Add", vec![1, 4, 6, 5], false),
        ("Sub", vec![5], false),
        ("Sub", vec![5], true),
        ("Sub", vec![4, 1, 1], true),
        ("Mul", vec![4, 1, 1], false),
        ("Mul", vec![1, 1, 1, 5], true),
        ("Mul", vec![6, 5], false),
        ("Div", vec![4, 6, 1], false),
        ("Add", vec![1], false),
        ("Mul", vec![], false),
    ] {
        let bytes = with_const(op, &dims, first);
        let h = import(&bytes).unwrap_or_else(|e| panic!("{op} {dims:?}: {e}"));
        let ours = run(&h, &x).unwrap();
        if op == "Sub" && first && dims == [4, 1, 1] {
            // tract-onnx 0.22 answers `k - conv(x)` with a per-channel `k`
            // as if it were `conv(x) - k` (its conv/bias fusion); check
            // against the explicit graph `k - conv(x)` instead.
            let k: Vec<f64> = (0..4)
                .map(|i| (0.5 + 0.25 * (i as f32 * 0.7).sin()) as f64)
                .collect();
            let mut g2 = g.clone();
            g2.nodes[1].inputs = vec!["a2".into()];
            let neg = Op::BatchNorm(nn::graph::BatchNorm {
                gamma: Tensor::vector(vec![-1.0; 4]),
                beta: Tensor::vector(k),
                mean: Tensor::zeros(vec![4]),
                var: Tensor::vector(vec![1.0; 4]),
                eps: 0.0,
            });
            g2.push(Node::new("neg", neg, vec!["a".into()], "a2"));
            g2.sort().unwrap();
            assert_close(&ours.data, &run(&g2, &x).unwrap().data, 1e-5, "k - x");
            continue;
        }
        assert_close(
            &ours.data,
            &tract_run(&bytes, &x),
            1e-5,
            &format!("{op} {dims:?} const_first={first}"),
        );
    }
    // What cannot be expressed is refused, naming the node.
    for dims in [vec![3], vec![2, 4, 6, 5], vec![4, 6, 5, 1]] {
        let e = import(&with_const("Add", &dims, false)).unwrap_err();
        let s = e.to_string();
        assert!(s.contains("`/Add`"), "{dims:?}: {s}");
    }
}
