//! The import and input cases (`tests/cases/<kind>/`, copied from the
//! project's shared case set): each folder is one kind of failure seen in
//! public bug reports, with PyTorch's own logits. Logits are compared with
//! a tolerance of 1e-4 relative to the largest logit (PyTorch computes in
//! `float32`, we in `f64`).

use std::path::{Path, PathBuf};

use nn::exec::run;
use nn::input::{load, npy_tensor};
use nn::onnx::{OnnxError, import, load as load_onnx};
use nn::{Graph, Op, Tensor};

const TOL: f64 = 1e-4;

fn case(kind: &str, file: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/cases")
        .join(kind)
        .join(file)
}

fn expected(kind: &str, name: &str) -> (usize, Vec<f64>) {
    let s = std::fs::read_to_string(case(kind, &format!("expected_{name}.json"))).unwrap();
    let v: serde_json::Value = serde_json::from_str(&s).unwrap();
    let class = v["class"].as_u64().unwrap() as usize;
    let logits = v["logits"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_f64().unwrap())
        .collect();
    (class, logits)
}

fn input(kind: &str, file: &str, g: &Graph) -> Tensor {
    let b = std::fs::read(case(kind, file)).unwrap();
    npy_tensor(&b, &g.input_shape).unwrap()
}

fn assert_logits(g: &Graph, x: &Tensor, kind: &str, name: &str) {
    let (class, want) = expected(kind, name);
    let got = run(g, x).unwrap().data;
    assert_eq!(got.len(), want.len(), "{kind}/{name}");
    let scale = want.iter().fold(1.0f64, |m, v| m.max(v.abs()));
    let d = nn::exec::max_abs_diff(&got, &want);
    assert!(
        d <= TOL * scale,
        "{kind}/{name}: max diff {d}\n got {got:?}\nwant {want:?}"
    );
    assert_eq!(nn::exec::argmax(&got), class, "{kind}/{name}");
}

fn one_line(e: &impl std::fmt::Display) -> String {
    let s = e.to_string();
    assert!(!s.contains('\n'), "not one line: {s}");
    s
}

#[test]
fn broadcast_constant_follows_numpy_rules() {
    // A `[C]` constant added to `[N, C, H, W]` broadcasts along W.
    let g = load_onnx(case("broadcast", "add_c.onnx")).unwrap();
    let x = input("broadcast", "input.npy", &g);
    assert_logits(&g, &x, "broadcast", "add_c");
}

#[test]
fn constant_subgraphs_are_folded_at_load() {
    let g = load_onnx(case("constant_subgraphs", "dirac_unfolded.onnx")).unwrap();
    let x = input("constant_subgraphs", "input.npy", &g);
    assert_logits(&g, &x, "constant_subgraphs", "dirac_unfolded");
    // The Dirac kernel is one plain conv; the activation a polynomial.
    assert_eq!(
        g.nodes
            .iter()
            .filter(|n| matches!(n.op, Op::Conv2d(_)))
            .count(),
        2
    );
    assert_eq!(g.activations().len(), 2);
    let g = load_onnx(case("constant_subgraphs", "weight_norm.onnx")).unwrap();
    let x = input("constant_subgraphs", "input.npy", &g);
    assert_logits(&g, &x, "constant_subgraphs", "weight_norm");
}

#[test]
fn dropout_in_training_mode_is_refused() {
    let e = load_onnx(case("dropout_training", "dropout_training_true.onnx")).unwrap_err();
    let s = one_line(&e);
    assert!(
        s.contains("Dropout_0") && s.contains("training_mode"),
        "{s}"
    );
}

#[test]
fn external_data_is_read_from_the_models_folder() {
    let g = load_onnx(case("external_data", "external.onnx")).unwrap();
    let x = input("external_data", "input.npy", &g);
    assert_logits(&g, &x, "external_data", "external");
    // A missing side file is named.
    let e = load_onnx(case("external_data", "external_missing.onnx")).unwrap_err();
    let s = one_line(&e);
    assert!(s.contains("missing.weights"), "{s}");
    // From bytes there is no folder: say so.
    let b = std::fs::read(case("external_data", "external.onnx")).unwrap();
    let s = one_line(&import(&b).unwrap_err());
    assert!(s.contains("external.weights") && s.contains("path"), "{s}");
}

#[test]
fn external_data_paths_stay_in_the_models_folder() {
    let dir = std::env::temp_dir().join(format!("residue-ext-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let b = std::fs::read(case("external_data", "external.onnx")).unwrap();
    let mut proto = <onnx_ir::ModelProto as onnx_ir::Message>::parse_from_bytes(&b).unwrap();
    for (i, loc) in ["../external.weights", "/etc/passwd", "a/../../x"]
        .iter()
        .enumerate()
    {
        for t in proto.graph.mut_or_insert_default().initializer.iter_mut() {
            for e in t.external_data.iter_mut() {
                if e.key == "location" {
                    e.value = loc.to_string();
                }
            }
        }
        let p = dir.join(format!("m{i}.onnx"));
        std::fs::write(&p, onnx_ir::Message::write_to_bytes(&proto).unwrap()).unwrap();
        let s = one_line(&load_onnx(&p).unwrap_err());
        assert!(s.contains("inside the model's folder"), "{loc}: {s}");
    }
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn avgpool_ceil_mode_is_supported() {
    let g = load_onnx(case("avgpool_ceil", "ceil_pad_incl.onnx")).unwrap();
    let x = input("avgpool_ceil", "input.npy", &g);
    assert_logits(&g, &x, "avgpool_ceil", "ceil_pad_incl");
    // The divisor correction of the edge windows folds into the dense
    // layer after the pool: no level of its own.
    let f = nn::transform::fold_all(&g).unwrap();
    assert!(
        !f.nodes.iter().any(|n| matches!(n.op, Op::BatchNorm(_))),
        "{f:?}"
    );
    assert_logits(&f, &x, "avgpool_ceil", "ceil_pad_incl");
}

#[test]
fn errors_name_nodes_as_the_file_does() {
    let e = load_onnx(case("node_names", "relu.onnx")).unwrap_err();
    let s = one_line(&e);
    assert!(s.contains("`/Relu`") && s.contains("Relu"), "{s}");
    assert!(!s.contains("relu1"), "{s}");
    // Imported nodes carry the file's names too.
    let g = load_onnx(case("broadcast", "add_c.onnx")).unwrap();
    assert!(g.nodes.iter().any(|n| n.name == "/conv/Conv"), "{g:?}");
}

#[test]
fn asymmetric_padding_imports_and_runs() {
    let g = load_onnx(case("asym_padding", "conv_pad_1x2.onnx")).unwrap();
    let x = input("asym_padding", "input.npy", &g);
    assert_logits(&g, &x, "asym_padding", "conv_pad_1x2");
}

#[test]
fn reshape_with_dynamic_batch() {
    let g = load_onnx(case("reshape", "reshape3d_then_flatten.onnx")).unwrap();
    let x = input("reshape", "input.npy", &g);
    assert_logits(&g, &x, "reshape", "reshape3d_then_flatten");
    // `reshape(N, C, -1)` then flatten is one flatten.
    assert!(!g.nodes.iter().any(|n| matches!(n.op, Op::Reshape { .. })));
}

#[test]
fn malformed_files_get_one_line_errors() {
    for (file, want) in [
        ("empty.onnx", "empty"),
        ("no_graph.onnx", "no graph"),
        ("output_is_input.onnx", "model input itself"),
    ] {
        let e = load_onnx(case("malformed", file)).unwrap_err();
        let s = one_line(&e);
        assert!(s.contains(want), "{file}: {s}");
        assert!(!s.contains("runtime input"), "{file}: {s}");
    }
    assert!(matches!(import(b""), Err(OnnxError::Parse(_))));
}

#[test]
fn input_normalization_is_linear_not_an_activation() {
    let g = load_onnx(case("input_normalization", "scalar.onnx")).unwrap();
    let x = input("input_normalization", "input_scalar.npy", &g);
    assert_logits(&g, &x, "input_normalization", "scalar");
    // Only the square is an activation; the normalization is affine.
    assert_eq!(g.activations().len(), 1);
    let f = nn::transform::fold_all(&g).unwrap();
    assert_logits(&f, &x, "input_normalization", "scalar");
}

#[test]
fn png_sixteen_bit_at_full_precision() {
    let g = load_onnx(case("png16", "nonsquare.onnx")).unwrap();
    let x = load(case("png16", "gray16_20x28.png"), &g.input_shape).unwrap();
    assert_logits(&g, &x, "png16", "gray16_20x28");
    // The transposed image: the error says expected vs got as CxHxW.
    let e = load(case("png16", "gray_28x20_transposed.png"), &g.input_shape).unwrap_err();
    let s = one_line(&e);
    let want = format!(
        "{}x{}x{}",
        g.input_shape[0], g.input_shape[1], g.input_shape[2]
    );
    assert!(s.contains(&want), "{s}");
    assert!(!s.contains("[0,"), "{s}");
}

#[test]
fn activation_ranges_are_measured_not_assumed() {
    let g = load_onnx(case("activation_range", "big_range.onnx")).unwrap();
    let x = input("activation_range", "input.npy", &g);
    assert_logits(&g, &x, "activation_range", "big_range");
    let (h, changes) = nn::transform::calibrate_ranges(&g, std::slice::from_ref(&x)).unwrap();
    assert_eq!(changes.len(), 1, "{changes:?}");
    let obs = nn::exec::activation_input_ranges(&g, std::slice::from_ref(&x)).unwrap();
    for (name, p) in h.activations() {
        let o = obs[name];
        assert!(o[0] < -10.0 || o[1] > 10.0, "{o:?}");
        assert!(
            p.range[0] <= o[0] && p.range[1] >= o[1],
            "{name}: {:?} vs {o:?}",
            p.range
        );
    }
    // Same function.
    assert_logits(&h, &x, "activation_range", "big_range");
}

#[test]
fn affine_maps_fold_forward_into_unpadded_convs_and_dense_layers() {
    // `(x - 0.5) / 0.25` before an unpadded conv, and a per-element scale
    // before a dense layer: both fold (zero levels). With the case's
    // padded conv the normalization must stay (the shift would reach the
    // border).
    use nn::Node;
    use nn::graph::{BatchNorm, Conv2d, Dense, Pads};
    let t = |shape: Vec<usize>, k: f64| {
        let n: usize = shape.iter().product();
        Tensor::new(
            shape,
            (0..n).map(|i| ((i as f64 + k) * 0.37).sin()).collect(),
        )
        .unwrap()
    };
    let bn = |c: usize, s: f64, sh: f64| {
        Op::BatchNorm(BatchNorm {
            gamma: Tensor::vector(vec![s; c]),
            beta: Tensor::vector(vec![sh; c]),
            mean: Tensor::zeros(vec![c]),
            var: Tensor::vector(vec![1.0; c]),
            eps: 0.0,
        })
    };
    let mut g = Graph::new("t", "x", vec![2, 5, 5]);
    g.push(Node::new("norm", bn(2, 4.0, -2.0), vec!["x".into()], "a"));
    let conv = Op::Conv2d(Conv2d {
        weight: t(vec![3, 2, 3, 3], 1.0),
        bias: Some(t(vec![3], 2.0)),
        stride: [1, 1],
        pads: Pads::default(),
    });
    g.push(Node::new("conv", conv, vec!["a".into()], "b"));
    g.push(Node::new("flat", Op::Flatten, vec!["b".into()], "c"));
    g.push(Node::new("scale", bn(27, 0.5, 0.1), vec!["c".into()], "d"));
    let fc = Op::Dense(Dense {
        weight: t(vec![4, 27], 3.0),
        bias: None,
    });
    g.push(Node::new("fc", fc, vec!["d".into()], "y"));
    g.output = "y".into();
    let x = t(vec![2, 5, 5], 4.0);
    let f = nn::transform::fold_all(&g).unwrap();
    assert!(
        !f.nodes.iter().any(|n| matches!(n.op, Op::BatchNorm(_))),
        "{f:?}"
    );
    let d = nn::exec::max_abs_diff(&run(&g, &x).unwrap().data, &run(&f, &x).unwrap().data);
    assert!(d < 1e-9, "{d}");
    let g = load_onnx(case("input_normalization", "scalar.onnx")).unwrap();
    let f = nn::transform::fold_all(&g).unwrap();
    assert!(f.nodes.iter().any(|n| matches!(n.op, Op::BatchNorm(_))));
}
