//! `residue analyze` explains its report: every column header and label it
//! prints is in the legend, printed once.

mod common;
use common::ok;

#[test]
fn the_report_explains_its_columns_once() {
    let model = format!("{}/../../models/resnet20.onnx", env!("CARGO_MANIFEST_DIR"));
    let out = ok(&["analyze", &model, "--params", "n16-boot"]);
    assert_eq!(out.matches("legend:").count(), 1, "{out}");
    let legend = &out[out.find("legend:").unwrap()..];
    let header = out
        .lines()
        .find(|l| l.starts_with("layer "))
        .expect("a table header");
    for col in header.split_whitespace().skip(1) {
        assert!(legend.contains(col), "column {col} unexplained: {legend}");
    }
    // The labels the table and the skip list use.
    for label in [
        "mid-term",
        "linear",
        "activation",
        "add",
        "L_eff",
        "Optimal",
    ] {
        assert!(
            out[..out.find("legend:").unwrap()].contains(label),
            "{label} not in the report"
        );
        assert!(legend.contains(label), "{label} unexplained: {legend}");
    }
}
