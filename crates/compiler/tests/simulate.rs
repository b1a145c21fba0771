//! Runs compiled plans on plaintext slot vectors, step by step as the
//! runtime will on ciphertexts (packing, diagonals from the model's
//! weights, rotate-and-sum, polynomials, additions), and compares the
//! logits with the reference executor. This checks lowering, layouts,
//! weights and plan together.

use compiler::layout::{SumStep, sum_schedule};
use compiler::lower::LayerOp;
use compiler::params::ParamSet;
use compiler::plan::{CompileOptions, CompiledPlan, bias_slots, compile, linear_weights};
use nn::{Op, Tensor};

fn rot(v: &[f64], k: i64) -> Vec<f64> {
    let n = v.len() as i64;
    (0..n).map(|s| v[(s + k).rem_euclid(n) as usize]).collect()
}

fn run_plan(plan: &CompiledPlan, g: &nn::Graph, x: &Tensor) -> Vec<f64> {
    let mut vals: Vec<Vec<Vec<f64>>> = Vec::with_capacity(plan.nodes.len());
    for n in &plan.nodes {
        let lin = n.layout_in;
        let lout = n.layout_out;
        let out = match &n.op {
            LayerOp::Input => {
                let mut cts = vec![vec![0.0; lin.slots]; lin.cts()];
                for c in 0..lin.channels {
                    for y in 0..lin.height {
                        for xx in 0..lin.width {
                            let (ct, s) = lin.slot(c, y as i64, xx as i64);
                            cts[ct][s as usize] = x.data[(c * lin.height + y) * lin.width + xx];
                        }
                    }
                }
                cts
            }
            LayerOp::Tap => vals[n.inputs[0]].clone(),
            LayerOp::Add => {
                let (a, b) = (&vals[n.inputs[0]], &vals[n.inputs[1]]);
                a.iter()
                    .zip(b)
                    .map(|(u, v)| u.iter().zip(v).map(|(p, q)| p + q).collect())
                    .collect()
            }
            LayerOp::PolyAct { .. } => {
                let Op::PolyAct(p) = &g.node(&n.name).unwrap().op else {
                    panic!("{} is not a polynomial", n.name)
                };
                vals[n.inputs[0]]
                    .iter()
                    .map(|ct| ct.iter().map(|&v| p.eval(v)).collect())
                    .collect()
            }
            LayerOp::GlobalAvgPool { scale_folded } => {
                let mut cts = vals[n.inputs[0]].clone();
                for ct in &mut cts {
                    for (count, stride) in [
                        (lin.height, (lin.gap * lin.base_w) as i64),
                        (lin.width, lin.gap as i64),
                    ] {
                        let x0 = ct.clone();
                        for st in sum_schedule(count) {
                            match st {
                                SumStep::Double(m) => {
                                    let r = rot(ct, m as i64 * stride);
                                    ct.iter_mut().zip(&r).for_each(|(a, b)| *a += b);
                                }
                                SumStep::AddOne => {
                                    let r = rot(ct, stride);
                                    *ct = x0.iter().zip(&r).map(|(a, b)| a + b).collect();
                                }
                            }
                        }
                    }
                    if !scale_folded {
                        let f = 1.0 / (lin.height * lin.width) as f64;
                        ct.iter_mut().for_each(|v| *v *= f);
                    }
                }
                cts
            }
            _ => {
                let lw = linear_weights(g, n).unwrap();
                let diags = lw.diagonals(&lin, &lout);
                let xs = &vals[n.inputs[0]];
                let mut ys = match &lw.bias {
                    Some(b) => bias_slots(&lout, b),
                    None => vec![vec![0.0; lout.slots]; lout.cts()],
                };
                for d in &diags {
                    let r = rot(&xs[d.ct_in], d.offset);
                    for (y, (p, q)) in ys[d.ct_out].iter_mut().zip(d.values.iter().zip(&r)) {
                        *y += p * q;
                    }
                }
                ys
            }
        };
        vals.push(out);
    }
    let last = plan.nodes.last().unwrap();
    let l = last.layout_out;
    (0..l.channels)
        .map(|o| {
            let (ct, s) = l.slot(o, 0, 0);
            vals.last().unwrap()[ct][s as usize]
        })
        .collect()
}

fn check(name: &str) {
    let mut cfg = nn::zoo::ZooConfig::from_name(name, 3, [32, 32], 10).unwrap();
    // Half width keeps the slot simulation fast; the structure is the same.
    cfg.width = 0.5;
    let g = nn::zoo::build_random(&cfg, 5).unwrap();
    let (plan, _) = compile(&g, &ParamSet::defaults(), &CompileOptions::default()).unwrap();
    let folded = nn::transform::fold_all(&g).unwrap();
    let x = Tensor::new(
        vec![3, 32, 32],
        (0..3 * 32 * 32)
            .map(|i| ((i as f64 * 0.377).sin()) * 0.5)
            .collect(),
    )
    .unwrap();
    let want = nn::exec::run(&g, &x).unwrap();
    let got = run_plan(&plan, &folded, &x);
    let scale = want.data.iter().fold(1e-9f64, |m, v| m.max(v.abs()));
    for (a, b) in got.iter().zip(&want.data) {
        assert!((a - b).abs() <= 1e-6 * scale, "{name}: {a} vs {b}");
    }
    assert_eq!(got.len(), want.data.len());
}

#[test]
fn resnet8_plan_matches_reference() {
    check("resnet8");
}

#[test]
fn dirac_shared14_plan_matches_reference() {
    check("dirac-shared14");
}

fn t(shape: Vec<usize>, seed: usize) -> Tensor {
    let n: usize = shape.iter().product();
    Tensor::new(
        shape,
        (0..n)
            .map(|i| ((i + 31 * seed) as f64 * 0.618).fract() - 0.5)
            .collect(),
    )
    .unwrap()
}

/// A small MNIST-like net exercising what the zoo does not: an average pool
/// composed into the next convolution, a batch norm after an addition (a
/// stand-alone affine step), flatten of a full feature map into dense.
#[test]
fn pool_fold_affine_and_flatten_paths_match_reference() {
    use nn::graph::{AvgPool, BatchNorm, Conv2d, Dense, Pads, PolyAct};
    use nn::{Graph, Node};
    let mut g = Graph::new("small", "x", vec![1, 12, 12]);
    let conv = |w: Tensor, stride: usize, pad: usize, seed: usize| {
        let co = w.shape[0];
        Op::Conv2d(Conv2d {
            weight: w,
            bias: Some(t(vec![co], seed)),
            stride: [stride, stride],
            pads: Pads::uniform(pad),
        })
    };
    let act = || {
        Op::PolyAct(PolyAct {
            coeffs: vec![0.1, 0.5, 0.25],
            range: [-4.0, 4.0],
        })
    };
    let bn = |c: usize, seed: usize| {
        let mut var = t(vec![c], seed);
        var.data.iter_mut().for_each(|v| *v = v.abs() + 0.5);
        Op::BatchNorm(BatchNorm {
            gamma: t(vec![c], seed + 1),
            beta: t(vec![c], seed + 2),
            mean: t(vec![c], seed + 3),
            var,
            eps: 1e-5,
        })
    };
    let s = |v: &str| vec![v.to_string()];
    g.push(Node::new(
        "conv1",
        conv(t(vec![4, 1, 3, 3], 1), 1, 1, 2),
        s("x"),
        "c1",
    ));
    g.push(Node::new("bn1", bn(4, 3), s("c1"), "b1"));
    g.push(Node::new("act1", act(), s("b1"), "a1"));
    g.push(Node::new(
        "pool",
        Op::AvgPool(AvgPool {
            kernel: [2, 2],
            stride: [2, 2],
            pads: Pads::default(),
            count_include_pad: true,
        }),
        s("a1"),
        "p",
    ));
    g.push(Node::new(
        "conv2",
        conv(t(vec![8, 4, 3, 3], 4), 1, 1, 5),
        s("p"),
        "c2",
    ));
    g.push(Node::new("act2", act(), s("c2"), "a2"));
    g.push(Node::new(
        "conv3",
        conv(t(vec![8, 8, 1, 1], 6), 1, 0, 7),
        s("a2"),
        "c3",
    ));
    g.push(Node::new(
        "add",
        Op::Add,
        vec!["c3".into(), "a2".into()],
        "s",
    ));
    g.push(Node::new("bn2", bn(8, 8), s("s"), "b2"));
    g.push(Node::new("act3", act(), s("b2"), "a3"));
    g.push(Node::new("flat", Op::Flatten, s("a3"), "f"));
    g.push(Node::new(
        "fc",
        Op::Dense(Dense {
            weight: t(vec![5, 8 * 6 * 6], 9),
            bias: Some(t(vec![5], 10)),
        }),
        s("f"),
        "y",
    ));
    g.output = "y".into();
    let (plan, report) = compile(&g, &ParamSet::defaults(), &CompileOptions::default()).unwrap();
    // The pool went into conv2 (stride 2 overall), bn2 is its own level.
    let conv2 = plan.nodes.iter().find(|n| n.name == "conv2").unwrap();
    assert_eq!(conv2.layout_out.gap, 2);
    assert!(plan.nodes.iter().all(|n| n.name != "pool"));
    let bn2 = plan.nodes.iter().find(|n| n.name == "bn2").unwrap();
    assert_eq!(bn2.depth, 1);
    assert_eq!(report.skips.len(), 1);
    let folded = nn::transform::fold_all(&g).unwrap();
    let x = t(vec![1, 12, 12], 11);
    let want = nn::exec::run(&g, &x).unwrap();
    let got = run_plan(&plan, &folded, &x);
    let scale = want.data.iter().fold(1e-9f64, |m, v| m.max(v.abs()));
    for (a, b) in got.iter().zip(&want.data) {
        assert!((a - b).abs() <= 1e-6 * scale, "{a} vs {b}");
    }
}
