//! The import cases (fixtures in `crates/nn/tests/cases`) through the
//! compiler: what compiles, and what is refused naming the file's node.

use compiler::params::ParamSet;
use compiler::plan::{CompileOptions, compile};

fn load(kind: &str, file: &str) -> nn::Graph {
    let p = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../nn/tests/cases")
        .join(kind)
        .join(file);
    nn::onnx::load(p).unwrap()
}

fn report(kind: &str, file: &str) -> Result<compiler::Report, String> {
    let g = load(kind, file);
    compile(&g, &ParamSet::defaults(), &CompileOptions::default())
        .map(|(_, r)| r)
        .map_err(|e| e.to_string())
}

#[test]
fn maps_larger_than_the_input_get_a_larger_grid() {
    // The conv's output is 8x10 on an 8x8 input (pads 1 and 2).
    let g = load("asym_padding", "conv_pad_1x2.onnx");
    let (plan, r) = compile(&g, &ParamSet::defaults(), &CompileOptions::default()).unwrap();
    assert!(r.layers.iter().any(|l| l.name == "/conv/Conv"), "{r:?}");
    let l = plan.nodes[0].layout_in;
    assert_eq!([l.height, l.width, l.base_h, l.base_w], [8, 8, 8, 10]);
    // A ceil-mode pool's 5x5 output at gap 2 needs a 10x10 grid.
    let g = load("avgpool_ceil", "ceil_pad_incl.onnx");
    let (plan, _) = compile(&g, &ParamSet::defaults(), &CompileOptions::default()).unwrap();
    let l = plan.nodes[0].layout_in;
    assert_eq!([l.base_h, l.base_w], [10, 10]);
}

#[test]
fn what_cannot_be_expressed_is_refused_naming_the_file_node() {
    use nn::{Graph, Node, Op};
    // A flattened map reshaped to another 3-D shape moves values between
    // slots: refused, naming the node and its operator on one line.
    let mut g = Graph::new("r", "x", vec![1, 4, 4]);
    g.push(Node::new("/Flatten", Op::Flatten, vec!["x".into()], "f"));
    g.push(Node::new(
        "/Reshape",
        Op::Reshape {
            shape: vec![2, 2, 4],
        },
        vec!["f".into()],
        "r",
    ));
    g.push(Node::new("/Flatten_1", Op::Flatten, vec!["r".into()], "y"));
    g.output = "y".into();
    let e = compile(&g, &ParamSet::defaults(), &CompileOptions::default())
        .unwrap_err()
        .to_string();
    assert!(e.contains("node `/Reshape` (reshape)"), "{e}");
    assert!(!e.contains('\n'), "{e}");
    // Nodes the importer adds for one file node are named as the file
    // names it.
    assert_eq!(compiler::lower::file_node_name("/Add.reshape"), "/Add");
    assert_eq!(compiler::lower::file_node_name("/Add.flatten"), "/Add");
    assert_eq!(
        compiler::lower::file_node_name("/pool/AveragePool#2"),
        "/pool/AveragePool"
    );
    assert_eq!(compiler::lower::file_node_name("/conv/Conv"), "/conv/Conv");
    assert_eq!(compiler::lower::file_node_name("#3"), "#3");
}

#[test]
fn import_cases_compile_or_are_refused_naming_the_node() {
    for (kind, file) in [
        ("constant_subgraphs", "dirac_unfolded.onnx"),
        ("constant_subgraphs", "weight_norm.onnx"),
        ("external_data", "external.onnx"),
        ("reshape", "reshape3d_then_flatten.onnx"),
        ("activation_range", "big_range.onnx"),
    ] {
        let r = report(kind, file).unwrap();
        // The square is the only activation; no layer is named by onnx-ir.
        assert!(
            r.layers.iter().all(|l| l.name.starts_with('/')),
            "{kind}: {:?}",
            r.layers
        );
    }
    // The input normalization is a linear layer, not an activation.
    let r = report("input_normalization", "scalar.onnx").unwrap();
    let div = r.layers.iter().find(|l| l.name == "/Div").unwrap();
    assert_eq!(div.kind, compiler::LevelOpKind::Linear);
    // Ceil-mode pooling and a constant broadcast along W compile (their
    // results are checked on the simulator in runtime/tests/import_kinds.rs);
    // the per-element add is one linear layer named as the file names it.
    report("avgpool_ceil", "ceil_pad_incl.onnx").unwrap();
    let r = report("broadcast", "add_c.onnx").unwrap();
    let add = r.layers.iter().find(|l| l.name == "/Add").unwrap();
    assert_eq!(add.kind, compiler::LevelOpKind::Linear);
}
