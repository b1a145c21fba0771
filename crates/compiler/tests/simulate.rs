//! Runs compiled plans on plaintext slot vectors, step by step as the
//! runtime will on ciphertexts (packing, diagonals from the model's
//! weights, rotate-and-sum, polynomials, additions), and compares the
//! logits with the reference executor. This checks lowering, layouts,
//! weights and plan together.

use compiler::layout::{SumStep, linear_diagonals, sum_schedule};
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
                let diags = linear_diagonals(&lin, &lout, lw.stride, &lw.taps);
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
