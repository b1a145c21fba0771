//! Import kinds that the reference executor runs and the compiler must
//! compile too (issue 13): asymmetric padding (maps wider than the input),
//! ceil-mode average pooling (with and without the padding in the
//! divisor), and constants added or multiplied with ONNX broadcasting that
//! vary within a channel. Each is the case file of `nn/tests/cases` plus
//! other instances of the kind written with the repo's own ONNX export
//! (and a small protobuf edit where our export has no such attribute),
//! compiled, calibrated, and run on the simulator backend against the
//! reference executor.
//!
//! Bound: the simulator computes in `f64` on the slots, so its logits equal
//! the reference's to float rounding: we assert `1e-9` of the largest logit
//! (as `tests/simulate.rs`); a wrong weight, padding or divisor is off by
//! far more.

mod common;

use std::path::PathBuf;
use std::sync::Arc;

use common::{max_err, plan};
use compiler::plan::CompiledPlan;
use nn::graph::{AvgPool, Conv2d, Dense, Pads, PolyAct};
use nn::{Graph, Node, Op, Tensor};
use runtime::Prepared;

const SIM_TOL: f64 = 1e-9;

fn params() -> Arc<ckks::Params> {
    ckks::Params::named("insecure-boot-n12-l9").unwrap()
}

fn case(kind: &str, file: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../nn/tests/cases")
        .join(kind)
        .join(file)
}

fn case_input(kind: &str, g: &Graph) -> Vec<f64> {
    let b = std::fs::read(case(kind, "input.npy")).unwrap();
    nn::input::npy_tensor(&b, &g.input_shape).unwrap().data
}

/// A deterministic input of `g`'s shape in [0, 1].
fn input(g: &Graph, seed: usize) -> Vec<f64> {
    let n: usize = g.input_shape.iter().product();
    (0..n)
        .map(|i| ((i + 7 * seed) as f64 * 0.618_034 + 0.1 * seed as f64).fract())
        .collect()
}

fn reference(g: &Graph, x: &[f64]) -> Vec<f64> {
    let t = Tensor::new(g.input_shape.clone(), x.to_vec()).unwrap();
    nn::exec::run(g, &t).unwrap().data
}

/// Compiles `g` for the test set, calibrates it on `first` and two other
/// inputs, and checks the simulator's logits on them and two unseen ones
/// against the reference executor.
fn simulate_matches_reference(what: &str, g: &Graph, first: &[f64]) -> CompiledPlan {
    let p = params();
    let samples = vec![first.to_vec(), input(g, 1), input(g, 2)];
    let plan = plan(g, &p, &samples);
    let prep = Prepared::new(&plan, g, &p).unwrap();
    let mut xs = samples;
    xs.push(input(g, 11));
    xs.push(input(g, 12));
    for x in &xs {
        let want = reference(g, x);
        let (got, stats) = runtime::scaling::simulate(&prep, &p, x).unwrap();
        assert_eq!(got.len(), want.len(), "{what}");
        let scale = want.iter().fold(1e-9f64, |m, v| m.max(v.abs()));
        let err = max_err(&got, &want);
        assert!(
            err <= SIM_TOL * scale,
            "{what}: error {err} (scale {scale}): {got:?} vs {want:?}"
        );
        assert_eq!(stats.bootstraps, plan.bootstraps, "{what}");
    }
    plan
}

fn rand_tensor(shape: Vec<usize>, seed: u64) -> Tensor {
    let n: usize = shape.iter().product();
    let data = (0..n)
        .map(|i| ((i as f64 + 1.0) * 0.754_877 + seed as f64 * 0.569_840).fract() - 0.5)
        .collect();
    Tensor::new(shape, data).unwrap()
}

fn conv(co: usize, ci: usize, k: usize, stride: usize, pads: Pads, seed: u64) -> Op {
    Op::Conv2d(Conv2d {
        weight: rand_tensor(vec![co, ci, k, k], seed),
        bias: Some(rand_tensor(vec![co], seed + 100)),
        stride: [stride, stride],
        pads,
    })
}

fn square() -> Op {
    Op::PolyAct(PolyAct {
        coeffs: vec![0.1, 1.0, 0.5],
        range: [-4.0, 4.0],
    })
}

fn pads(top: usize, left: usize, bottom: usize, right: usize) -> Pads {
    Pads {
        top,
        left,
        bottom,
        right,
    }
}

/// Appends `op` reading `x`, defining value `name`.
fn push(g: &mut Graph, name: &str, op: Op, x: &str) -> String {
    g.push(Node::new(name, op, vec![x.into()], name))
}

/// Ends `g` at value `x` (`[C, H, W]`) with flatten and a 10-way dense.
fn head(g: &mut Graph, x: &str, n: usize, seed: u64) {
    let f = push(g, "flat", Op::Flatten, x);
    let fc = Op::Dense(Dense {
        weight: rand_tensor(vec![10, n], seed),
        bias: Some(rand_tensor(vec![10], seed + 1)),
    });
    let y = push(g, "fc", fc, &f);
    g.output = y;
}

/// `g` through ONNX: exported with our writer, `edit` applied to the
/// protobuf, imported again.
fn via_onnx(g: &Graph, edit: impl FnOnce(&mut onnx_ir::GraphProto)) -> Graph {
    let bytes = nn::onnx::export(g).unwrap();
    let mut proto = <onnx_ir::ModelProto as onnx_ir::Message>::parse_from_bytes(&bytes).unwrap();
    // Our names and ranges would be restored from the metadata only when
    // the structure is unchanged; edits change it.
    proto.metadata_props.clear();
    edit(proto.graph.mut_or_insert_default());
    let bytes = onnx_ir::Message::write_to_bytes(&proto).unwrap();
    nn::onnx::import(&bytes).unwrap()
}

// ---- asymmetric padding -------------------------------------------------

#[test]
fn asymmetric_padding_case_compiles_and_matches_reference() {
    let g = nn::onnx::load(case("asym_padding", "conv_pad_1x2.onnx")).unwrap();
    let x = case_input("asym_padding", &g);
    let plan = simulate_matches_reference("conv_pad_1x2", &g, &x);
    // The conv's 8x10 output does not fit the 8x8 input's grid: the grid
    // is the largest map's.
    let input = plan.nodes[0].layout_in;
    assert_eq!([input.height, input.width], [8, 8]);
    assert_eq!([input.base_h, input.base_w], [8, 10]);
}

#[test]
fn other_asymmetric_paddings_and_maps_larger_than_the_input_compile() {
    // 1x8x8 -> conv k3 pads (t0 l2 b2 r1): 4x8x9 -> square -> conv k3
    // pads 2 (a map larger than its input: 4x10x11) -> stride-2 conv k3
    // pads (t2 l0 b1 r2): 4x6x6 at gap 2 (12x12 on the grid) -> square.
    let mut g = Graph::new("asym", "x", vec![1, 8, 8]);
    let a = push(&mut g, "c1", conv(4, 1, 3, 1, pads(0, 2, 2, 1), 1), "x");
    let a = push(&mut g, "s1", square(), &a);
    let a = push(&mut g, "c2", conv(4, 4, 3, 1, Pads::uniform(2), 2), &a);
    let a = push(&mut g, "c3", conv(4, 4, 3, 2, pads(2, 0, 1, 2), 3), &a);
    let a = push(&mut g, "s2", square(), &a);
    head(&mut g, &a, 4 * 6 * 6, 4);
    let h = via_onnx(&g, |_| {});
    let shapes = h.infer_shapes().unwrap();
    let c2 = h.nodes.iter().find(|n| n.name.ends_with("c2")).unwrap();
    assert_eq!(shapes[&c2.output], vec![4, 10, 11]);
    let x = input(&h, 0);
    let plan = simulate_matches_reference("asym", &h, &x);
    let l = plan.nodes[0].layout_in;
    assert_eq!([l.base_h, l.base_w], [12, 12]);
    // The same net with a global pool (rotate-and-sum on the larger grid).
    let mut g2 = Graph::new("asym_gap", "x", vec![1, 8, 8]);
    let a = push(&mut g2, "c1", conv(4, 1, 3, 1, pads(2, 1, 0, 2), 5), "x");
    let a = push(&mut g2, "s1", square(), &a);
    let a = push(&mut g2, "c2", conv(8, 4, 3, 2, pads(1, 2, 2, 1), 6), &a);
    let a = push(&mut g2, "s2", square(), &a);
    let a = push(&mut g2, "gap", Op::GlobalAvgPool, &a);
    head(&mut g2, &a, 8, 7);
    let h2 = via_onnx(&g2, |_| {});
    let x = input(&h2, 3);
    simulate_matches_reference("asym_gap", &h2, &x);
}

// ---- ceil-mode average pooling ------------------------------------------

#[test]
fn avgpool_ceil_case_compiles_and_matches_reference() {
    let g = nn::onnx::load(case("avgpool_ceil", "ceil_pad_incl.onnx")).unwrap();
    let x = case_input("avgpool_ceil", &g);
    let plan = simulate_matches_reference("ceil_pad_incl", &g, &x);
    let l = plan.nodes[0].layout_in;
    assert_eq!([l.base_h, l.base_w], [10, 10]);
}

/// conv k3 pads 1 -> square -> AveragePool (kernel `k`, stride `s`, pads
/// `p`, `ceil_mode = 1`, `count_include_pad = incl`) -> `tail`, on a
/// 1x`n`x`n` input.
fn ceil_pool_net(n: usize, k: usize, s: usize, p: usize, incl: bool, conv_after: bool) -> Graph {
    let mut g = Graph::new("ceil", "x", vec![1, n, n]);
    let a = push(&mut g, "c1", conv(4, 1, 3, 1, Pads::uniform(1), 11), "x");
    let a = push(&mut g, "s1", square(), &a);
    let pool = Op::AvgPool(AvgPool {
        kernel: [k, k],
        stride: [s, s],
        pads: Pads::uniform(p),
        count_include_pad: incl,
    });
    let a = push(&mut g, "pool", pool, &a);
    // Floor-mode output size (what the export's shapes say); ceil mode
    // is set in the file below.
    let o = (n + 2 * p - k) / s + 1;
    let oc = (n + 2 * p - k).div_ceil(s) + 1;
    let oc = if (oc - 1) * s >= n + p { oc - 1 } else { oc };
    let a = if conv_after {
        let a = push(&mut g, "c2", conv(4, 4, 3, 1, Pads::uniform(1), 12), &a);
        push(&mut g, "s2", square(), &a)
    } else {
        a
    };
    head(&mut g, &a, 4 * o * o, 13);
    let h = via_onnx(&g, |gp| {
        for nd in gp.node.iter_mut().filter(|nd| nd.op_type == "AveragePool") {
            let mut at = onnx_ir::AttributeProto::new();
            at.name = "ceil_mode".into();
            at.type_ = onnx_ir::AttributeType::INT.into();
            at.i = 1;
            nd.attribute.push(at);
        }
        // The dense reads the larger ceil-mode map.
        let w = gp
            .initializer
            .iter_mut()
            .find(|t| t.dims == [10, 4 * (o * o) as i64])
            .expect("dense weight");
        w.dims = vec![10, 4 * (oc * oc) as i64];
        w.float_data = (0..10 * 4 * oc * oc)
            .map(|i| ((i as f32 + 1.0) * 0.754_877).fract() - 0.5)
            .collect();
        w.raw_data.clear();
    });
    let shapes = h.infer_shapes().unwrap();
    let pooled = h
        .nodes
        .iter()
        .find(|nd| matches!(nd.op, Op::AvgPool(_)))
        .unwrap();
    assert_eq!(shapes[&pooled.output], vec![4, oc, oc], "ceil mode applied");
    assert!(oc > o, "the instance must have ceil-mode windows");
    h
}

#[test]
fn other_ceil_mode_pools_compile_with_and_without_padding_in_the_divisor() {
    for (n, k, s, p) in [(7, 2, 2, 0), (8, 3, 2, 1), (9, 3, 3, 1)] {
        for incl in [true, false] {
            for conv_after in [false, true] {
                let what = format!("n{n} k{k} s{s} p{p} incl={incl} conv_after={conv_after}");
                let g = ceil_pool_net(n, k, s, p, incl, conv_after);
                let x = input(&g, 5);
                simulate_matches_reference(&what, &g, &x);
            }
        }
    }
}

// ---- constants broadcast within a channel --------------------------------

#[test]
fn broadcast_case_compiles_and_matches_reference() {
    let g = nn::onnx::load(case("broadcast", "add_c.onnx")).unwrap();
    let x = case_input("broadcast", &g);
    let plan = simulate_matches_reference("add_c", &g, &x);
    // The per-element add is one element-wise layer named as the file
    // names it.
    assert!(
        plan.nodes.iter().any(|n| n.name == "/Add"),
        "{:?}",
        plan.nodes
    );
}

/// conv (4x6x5) -> `op` with a constant of shape `dims` (first operand when
/// `const_first`) -> square -> flatten -> dense, through ONNX.
fn const_net(op: &str, dims: &[i64], const_first: bool) -> Graph {
    let mut g = Graph::new("bc", "x", vec![1, 6, 5]);
    let a = push(&mut g, "c1", conv(4, 1, 3, 1, Pads::uniform(1), 21), "x");
    let a = push(&mut g, "s1", square(), &a);
    head(&mut g, &a, 4 * 6 * 5, 22);
    via_onnx(&g, |graph| {
        let at = graph.node.iter().position(|n| n.op_type == "Conv").unwrap();
        let conv_out = graph.node[at].output[0].clone();
        let n: i64 = dims.iter().product();
        let mut t = onnx_ir::TensorProto::new();
        t.name = "k".into();
        t.data_type = 1;
        t.dims = dims.to_vec();
        t.float_data = (0..n)
            .map(|i| 0.75 + 0.5 * (i as f32 * 0.7).sin())
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
    })
}

#[test]
fn constants_of_other_shapes_compile_for_add_sub_and_mul() {
    for (op, dims, first) in [
        ("Add", vec![6, 5], false),
        ("Add", vec![5], true),
        ("Sub", vec![4, 1, 5], false),
        ("Sub", vec![6, 5], true),
        ("Mul", vec![6, 5], false),
        ("Mul", vec![4, 1, 5], true),
        ("Mul", vec![1, 4, 6, 5], false),
        ("Add", vec![1, 4, 6, 5], true),
        ("Div", vec![4, 6, 1], false),
    ] {
        let what = format!("{op} {dims:?} const_first={first}");
        let g = const_net(op, &dims, first);
        let x = input(&g, 4);
        let plan = simulate_matches_reference(&what, &g, &x);
        // One element-wise layer for the constant op, named `/Op`.
        assert!(
            plan.nodes.iter().any(|n| n.name == format!("/{op}")),
            "{what}: {:?}",
            plan.nodes.iter().map(|n| &n.name).collect::<Vec<_>>()
        );
    }
}

// ---- through CKKS ----------------------------------------------------------

/// Keys for exactly the plan, encryption, server inference, decryption on
/// the small insecure set; the bound is that of `tests/encrypted.rs` (1e-2
/// of the largest logit, its measured errors being below 1e-4 of it) and
/// argmax agreement.
fn encrypted_matches_reference(what: &str, g: &Graph, x: &[f64]) {
    use runtime::client::{ClientKeys, decrypt, encrypt, key_needs};
    let p = params();
    let samples = vec![x.to_vec(), input(g, 1), input(g, 2)];
    let plan = plan(g, &p, &samples);
    let prep = Prepared::new(&plan, g, &p).unwrap();
    let needs = key_needs(&prep, &p).unwrap();
    let keys = ClientKeys::generate(&p, &needs).unwrap();
    let backend =
        runtime::server::backend(&p, &prep, keys.eval.clone(), keys.boot.clone()).unwrap();
    let want = reference(g, x);
    let ct = encrypt(&plan, &p, &keys.public, x).unwrap();
    let (out, stats) = runtime::server::infer(&backend, &prep, &ct, &|_| {}).unwrap();
    assert_eq!(stats.bootstraps, plan.bootstraps, "{what}");
    let got = decrypt(&p, &keys.secret, &out).unwrap();
    let scale = want.iter().fold(1e-9f64, |m, v| m.max(v.abs()));
    let err = max_err(&got, &want);
    assert!(
        err <= 1e-2 * scale,
        "{what}: error {err} (scale {scale}): {got:?} vs {want:?}"
    );
    assert_eq!(nn::exec::argmax(&got), nn::exec::argmax(&want), "{what}");
}

#[test]
fn the_three_cases_and_an_excluding_ceil_pool_run_encrypted() {
    for (kind, file) in [
        ("asym_padding", "conv_pad_1x2.onnx"),
        ("avgpool_ceil", "ceil_pad_incl.onnx"),
        ("broadcast", "add_c.onnx"),
    ] {
        let g = nn::onnx::load(case(kind, file)).unwrap();
        let x = case_input(kind, &g);
        encrypted_matches_reference(file, &g, &x);
    }
    let g = ceil_pool_net(8, 3, 2, 1, false, true);
    encrypted_matches_reference("ceil pool excluding padding", &g, &input(&g, 6));
    let g = const_net("Mul", &[6, 5], false);
    encrypted_matches_reference("Mul [6, 5]", &g, &input(&g, 7));
}
