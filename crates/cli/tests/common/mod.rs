//! Running the `residue` binary from the CLI tests, and the small model
//! they share.
// Each test file uses part of this module.
#![allow(dead_code)]

use std::path::Path;
use std::process::{Command, Output};

/// Runs `residue` with `args`.
pub fn residue(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_residue"))
        .args(args)
        .output()
        .expect("runs")
}

/// Runs `residue` with `args`, asserts success, returns stdout.
pub fn ok(args: &[&str]) -> String {
    let o = residue(args);
    assert!(
        o.status.success(),
        "{args:?} failed: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// A small model written to `path`: conv (4 channels, 3x3, pad 1),
/// polynomial activation, global average pool, dense to 10 logits, on a
/// `c` x `hw` x `hw` input; fits `insecure-n12` without bootstraps.
/// Weights are deterministic; `bias_shift` moves the first logit's bias (a
/// different model of the same shape).
pub fn small_model(path: &Path, c: usize, hw: usize, bias_shift: f64) {
    use nn::graph::{Conv2d, Dense, Pads, PolyAct};
    use nn::{Graph, Node, Op, Tensor};
    let t = |shape: Vec<usize>, seed: usize| {
        let n: usize = shape.iter().product();
        Tensor::new(
            shape,
            (0..n)
                .map(|i| ((i + 31 * seed) as f64 * 0.618).fract() - 0.5)
                .collect(),
        )
        .unwrap()
    };
    let mut g = Graph::new("small", "x", vec![c, hw, hw]);
    g.push(Node::new(
        "conv",
        Op::Conv2d(Conv2d {
            weight: t(vec![4, c, 3, 3], 1),
            bias: Some(t(vec![4], 2)),
            stride: [1, 1],
            pads: Pads::uniform(1),
        }),
        vec!["x".into()],
        "c",
    ));
    g.push(Node::new(
        "act",
        Op::PolyAct(PolyAct {
            coeffs: vec![0.1, 1.0, 0.5],
            range: [-3.0, 3.0],
        }),
        vec!["c".into()],
        "a",
    ));
    g.push(Node::new("pool", Op::GlobalAvgPool, vec!["a".into()], "p"));
    g.push(Node::new("flat", Op::Flatten, vec!["p".into()], "f"));
    let mut b = t(vec![10], 4);
    b.data[0] += bias_shift;
    g.push(Node::new(
        "fc",
        Op::Dense(Dense {
            weight: t(vec![10, 4], 3),
            bias: Some(b),
        }),
        vec!["f".into()],
        "y",
    ));
    g.output = "y".into();
    nn::onnx::save(&g, path).unwrap();
}

/// `residue infer` arguments (all paths).
pub fn infer_args<'a>(
    plan: &'a str,
    model: &'a str,
    keys: &'a str,
    input: &'a str,
    out: &'a str,
) -> [&'a str; 11] {
    [
        "infer",
        "--plan",
        plan,
        "--model",
        model,
        "--eval-keys",
        keys,
        "--input",
        input,
        "--out",
        out,
    ]
}

/// `residue keygen` arguments for a plan and model, keys written to `out`.
pub fn keygen_args<'a>(plan: &'a str, model: &'a str, out: &'a str) -> [&'a str; 7] {
    ["keygen", "--plan", plan, "--model", model, "--out", out]
}

/// `residue encrypt` arguments: `inputs` (one or several images) under the
/// keys in `keys` for `plan`, written to `out`.
pub fn encrypt_args<'a>(
    keys: &'a str,
    plan: &'a str,
    out: &'a str,
    inputs: &[&'a str],
) -> Vec<&'a str> {
    let mut a = vec!["encrypt", "--keys", keys, "--plan", plan, "--out", out];
    for i in inputs {
        a.push("--input");
        a.push(i);
    }
    a
}

/// Asserts `path` is a PNG of a readable size.
pub fn check_png(path: &Path) {
    let b = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    assert!(
        b.starts_with(b"\x89PNG\r\n\x1a\n"),
        "{}: not a PNG",
        path.display()
    );
    let d = png::Decoder::new(std::io::Cursor::new(b));
    let r = d.read_info().unwrap();
    assert!(r.info().width >= 600 && r.info().height >= 300);
}

/// Asserts `path` is an SVG with text in it.
pub fn check_svg(path: &Path) {
    let s = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    assert!(
        s.contains("<svg") && s.trim_end().ends_with("</svg>"),
        "{}",
        path.display()
    );
    assert!(s.contains("<text"), "{}: no text", path.display());
}
