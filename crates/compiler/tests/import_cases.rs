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
fn asymmetric_padding_wider_than_the_grid_is_refused_naming_the_node() {
    let e = report("asym_padding", "conv_pad_1x2.onnx").unwrap_err();
    assert!(e.contains("`/conv/Conv`") && e.contains("8x10"), "{e}");
    assert!(!e.contains('\n'), "{e}");
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
    // What the packed layouts cannot hold is refused, naming the node.
    let e = report("avgpool_ceil", "ceil_pad_incl.onnx").unwrap_err();
    assert!(e.contains("`/pool/AveragePool`"), "{e}");
    let e = report("broadcast", "add_c.onnx").unwrap_err();
    assert!(e.contains("`/Add"), "{e}");
}
