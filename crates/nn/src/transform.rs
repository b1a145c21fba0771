//! Graph transforms that prepare a trained network for HE inference.
//!
//! - [`fold_dirac`]: every [`Op::DiracConv2d`] becomes a plain
//!   [`Op::Conv2d`] with `W' = diag(a)·delta + diag(b)·W/||W||` (the
//!   short-term skip is free at inference).
//! - [`fold_batch_norm`]: a batch norm directly after a convolution or a
//!   dense layer (whose output nothing else reads) is folded into its
//!   weights and bias, so it costs no level.
//! - [`fold_affine_into_act`]: a batch norm with one scale for all
//!   channels directly before a polynomial activation folds into the
//!   activation's coefficients (`p(s·x + t)` is a polynomial of the same
//!   degree); a per-channel shift in it folds into the layer feeding it
//!   through an add (a post-add normalization, as `train --post-add-norm`
//!   trains it).
//! - [`fold_all`]: all three, in that order. This is what the compiler wants.
//!
//! None of these change the function the graph computes (up to rounding);
//! the tests check that to 1e-6.

use crate::graph::{Conv2d, Dense, DiracConv2d, Graph, GraphError, Op, Tensor};

/// The plain kernel equivalent to a Dirac-parameterized convolution.
///
/// Each output filter `W[o]` is divided by its L2 norm (a zero filter stays
/// zero), scaled by `beta[o]`, and `alpha[o]` is added at the centre tap of
/// input channel `o` (for `o < min(C_out, C_in)`).
pub fn dirac_to_conv(d: &DiracConv2d) -> Conv2d {
    let s = &d.weight.shape;
    let (co, ci, kh, kw) = (s[0], s[1], s[2], s[3]);
    let per = ci * kh * kw;
    let mut w = d.weight.data.clone();
    for o in 0..co {
        let f = &mut w[o * per..(o + 1) * per];
        let norm = f.iter().map(|v| v * v).sum::<f64>().sqrt();
        let scale = if norm > 0.0 {
            d.beta.data[o] / norm
        } else {
            0.0
        };
        f.iter_mut().for_each(|v| *v *= scale);
        if o < ci {
            f[(o * kh + kh / 2) * kw + kw / 2] += d.alpha.data[o];
        }
    }
    Conv2d {
        weight: Tensor {
            shape: s.clone(),
            data: w,
        },
        bias: d.bias.clone(),
        stride: d.stride,
        pads: d.pads,
    }
}

/// Replaces every Dirac-parameterized convolution by its plain kernel.
/// Node names, value names and parameter names are kept.
pub fn fold_dirac(graph: &Graph) -> Result<Graph, GraphError> {
    graph.infer_shapes()?;
    let mut g = graph.clone();
    for n in &mut g.nodes {
        if let Op::DiracConv2d(d) = &n.op {
            n.op = Op::Conv2d(dirac_to_conv(d));
        }
    }
    Ok(g)
}

/// Folds every batch norm that directly follows a [`Op::Conv2d`] or an
/// [`Op::Dense`] into that layer, when the layer's output is read by the
/// batch norm only. The layer keeps its node name and takes over the batch
/// norm's output value; the batch-norm node disappears. Batch norms that
/// cannot be folded (after an add, or after a Dirac conv: run
/// [`fold_dirac`] first) are left in place.
pub fn fold_batch_norm(graph: &Graph) -> Result<Graph, GraphError> {
    graph.infer_shapes()?;
    let mut g = graph.clone();
    loop {
        let mut folded = false;
        for bi in 0..g.nodes.len() {
            let Op::BatchNorm(bn) = &g.nodes[bi].op else {
                continue;
            };
            let src = g.nodes[bi].inputs[0].clone();
            if src == g.output || g.consumers(&src).len() != 1 {
                continue;
            }
            let Some(pi) = g.nodes.iter().position(|n| n.output == src) else {
                continue;
            };
            let (scale, shift) = bn.affine();
            let ok = match &mut g.nodes[pi].op {
                Op::Conv2d(c) => {
                    fold_affine_conv(c, &scale, &shift);
                    true
                }
                Op::Dense(d) => {
                    fold_affine_dense(d, &scale, &shift);
                    true
                }
                _ => false,
            };
            if ok {
                let bn_node = g.nodes.remove(bi);
                let pi = if pi > bi { pi - 1 } else { pi };
                g.nodes[pi].output = bn_node.output;
                folded = true;
                break;
            }
        }
        if !folded {
            break;
        }
    }
    g.infer_shapes()?;
    Ok(g)
}

fn fold_affine_conv(c: &mut Conv2d, scale: &[f64], shift: &[f64]) {
    let co = c.weight.shape[0];
    let per = c.weight.numel() / co;
    for (o, f) in c.weight.data.chunks_mut(per).enumerate() {
        f.iter_mut().for_each(|v| *v *= scale[o]);
    }
    let b: Vec<f64> = (0..co)
        .map(|o| scale[o] * c.bias.as_ref().map_or(0.0, |b| b.data[o]) + shift[o])
        .collect();
    c.bias = Some(Tensor::vector(b));
}

fn fold_affine_dense(d: &mut Dense, scale: &[f64], shift: &[f64]) {
    let (o_n, i_n) = (d.weight.shape[0], d.weight.shape[1]);
    for (o, row) in d.weight.data.chunks_mut(i_n).enumerate() {
        row.iter_mut().for_each(|v| *v *= scale[o]);
    }
    let b: Vec<f64> = (0..o_n)
        .map(|o| scale[o] * d.bias.as_ref().map_or(0.0, |b| b.data[o]) + shift[o])
        .collect();
    d.bias = Some(Tensor::vector(b));
}

/// Relative tolerance under which a batch norm's per-channel scales count
/// as one scale.
const UNIFORM_TOL: f64 = 1e-12;

fn uniform(v: &[f64]) -> Option<f64> {
    let first = *v.first()?;
    v.iter()
        .all(|&x| (x - first).abs() <= UNIFORM_TOL * first.abs().max(f64::MIN_POSITIVE))
        .then_some(first)
}

/// The polynomial `q(x) = p(s·x + t)` (power basis, constant first).
pub fn compose_affine(coeffs: &[f64], s: f64, t: f64) -> Vec<f64> {
    // Horner on polynomials: q = (...(c_n·L + c_{n-1})·L + ...) with L = s x + t.
    let mut q: Vec<f64> = Vec::with_capacity(coeffs.len());
    for &c in coeffs.iter().rev() {
        // q <- q·(s x + t) + c
        let mut next = vec![0.0; q.len() + 1];
        for (k, &qk) in q.iter().enumerate() {
            next[k] += qk * t;
            next[k + 1] += qk * s;
        }
        next[0] += c;
        q = next;
    }
    q.truncate(coeffs.len());
    q
}

/// Folds every batch norm whose per-channel scales are all equal (`s`) and
/// whose output only a polynomial activation reads into that activation:
///
/// - a shift `t` equal on all channels: the activation becomes
///   `p(s·x + t)`, same degree, its input range mapped back through the
///   affine map;
/// - a per-channel shift, when the batch norm reads an [`Op::Add`] (that
///   nothing else reads): `t/s` goes into the bias of a layer feeding the add
///   (a [`Op::Conv2d`], [`Op::Dense`] or [`Op::BatchNorm`] that only the add
///   reads), then the activation becomes `p(s·x)`.
///
/// The batch-norm node disappears; its output value is the activation's
/// input no more. Under HE a per-tensor scale costs nothing once folded,
/// which a per-channel scale cannot claim: [`Op::PolyAct`] is one
/// polynomial per tensor, so batch norms with per-channel scales stay (see
/// `train --post-add-norm`, which trains the foldable form). Anything else
/// is left in place.
pub fn fold_affine_into_act(graph: &Graph) -> Result<Graph, GraphError> {
    graph.infer_shapes()?;
    let mut g = graph.clone();
    loop {
        let mut folded = false;
        for bi in 0..g.nodes.len() {
            let Op::BatchNorm(bn) = &g.nodes[bi].op else {
                continue;
            };
            let out = g.nodes[bi].output.clone();
            let src = g.nodes[bi].inputs[0].clone();
            if out == g.output {
                continue;
            }
            let cons: Vec<usize> = (0..g.nodes.len())
                .filter(|&i| g.nodes[i].inputs.contains(&out))
                .collect();
            let [ai] = cons[..] else {
                continue;
            };
            if !matches!(g.nodes[ai].op, Op::PolyAct(_)) {
                continue;
            }
            let (scale, shift) = bn.affine();
            let Some(s) = uniform(&scale) else {
                continue;
            };
            if s == 0.0 || !s.is_finite() {
                continue;
            }
            let t = if let Some(t) = uniform(&shift) {
                t
            } else {
                // Per-channel shift: into a linear producer of the add.
                let Some(add_i) = g.nodes.iter().position(|n| n.output == src) else {
                    continue;
                };
                if !matches!(g.nodes[add_i].op, Op::Add)
                    || src == g.output
                    || g.consumers(&src).len() != 1
                {
                    continue;
                }
                let producer = g.nodes[add_i].inputs.iter().find_map(|v| {
                    if *v == g.output || g.consumers(v).len() != 1 {
                        return None;
                    }
                    g.nodes.iter().position(|n| {
                        n.output == *v
                            && matches!(n.op, Op::Conv2d(_) | Op::Dense(_) | Op::BatchNorm(_))
                    })
                });
                let Some(pi) = producer else {
                    continue;
                };
                let add: Vec<f64> = shift.iter().map(|v| v / s).collect();
                match &mut g.nodes[pi].op {
                    Op::Conv2d(c) => {
                        fold_affine_conv(c, &vec![1.0; add.len()], &add);
                    }
                    Op::Dense(d) => {
                        fold_affine_dense(d, &vec![1.0; add.len()], &add);
                    }
                    Op::BatchNorm(b) => {
                        for (v, a) in b.beta.data.iter_mut().zip(&add) {
                            *v += a;
                        }
                    }
                    _ => unreachable!("checked above"),
                }
                0.0
            };
            let Op::PolyAct(p) = &mut g.nodes[ai].op else {
                unreachable!("checked above");
            };
            p.coeffs = compose_affine(&p.coeffs, s, t);
            let (lo, hi) = ((p.range[0] - t) / s, (p.range[1] - t) / s);
            p.range = [lo.min(hi), lo.max(hi)];
            for v in g.nodes[ai].inputs.iter_mut() {
                if *v == out {
                    *v = src.clone();
                }
            }
            g.nodes.remove(bi);
            folded = true;
            break;
        }
        if !folded {
            break;
        }
    }
    g.infer_shapes()?;
    Ok(g)
}

/// [`fold_dirac`], [`fold_batch_norm`], [`fold_affine_into_act`], then
/// [`fold_affine_forward`]: the inference form of a trained network.
pub fn fold_all(graph: &Graph) -> Result<Graph, GraphError> {
    fold_affine_forward(&fold_affine_into_act(&fold_batch_norm(&fold_dirac(
        graph,
    )?)?)?)
}

/// A batch norm (an affine map: an input normalization, a per-element
/// scale) whose only reader is a dense layer (through flattens) or a
/// convolution without padding folds into that layer's weights and bias:
/// `W (s x + t) + b = (W s) x + (W t + b)`, exact. (With zero padding the
/// shift would reach the padded border, so a padded convolution keeps it.)
#[allow(clippy::needless_range_loop)]
pub fn fold_affine_forward(graph: &Graph) -> Result<Graph, GraphError> {
    let shapes = graph.infer_shapes()?;
    let mut g = graph.clone();
    'outer: loop {
        for bi in 0..g.nodes.len() {
            let Op::BatchNorm(bn) = &g.nodes[bi].op else {
                continue;
            };
            let out = g.nodes[bi].output.clone();
            if out == g.output {
                continue;
            }
            // Follow flattens to the one reader.
            let mut chain = vec![];
            let mut v = out.clone();
            let reader = loop {
                let cs = g.consumers(&v);
                if cs.len() != 1 || v == g.output {
                    break None;
                }
                let c = cs[0];
                if matches!(c.op, Op::Flatten) {
                    chain.push(c.name.clone());
                    v = c.output.clone();
                    continue;
                }
                break Some(c.name.clone());
            };
            let Some(reader) = reader else { continue };
            let in_shape = &shapes[&g.nodes[bi].inputs[0]];
            let (scale, shift) = bn.affine();
            let c = scale.len();
            let per = in_shape.iter().product::<usize>() / c.max(1);
            let ri = g.nodes.iter().position(|n| n.name == reader).unwrap_or(0);
            let ok = match &mut g.nodes[ri].op {
                Op::Dense(d) => {
                    let (o_n, i_n) = (d.weight.shape[0], d.weight.shape[1]);
                    if i_n != c * per {
                        false
                    } else {
                        let mut b = d.bias.clone().map_or(vec![0.0; o_n], |b| b.data);
                        for o in 0..o_n {
                            for j in 0..i_n {
                                let w = &mut d.weight.data[o * i_n + j];
                                b[o] += *w * shift[j / per];
                                *w *= scale[j / per];
                            }
                        }
                        d.bias = Some(Tensor::vector(b));
                        true
                    }
                }
                Op::Conv2d(cv)
                    if chain.is_empty()
                        && cv.pads == crate::graph::Pads::default()
                        && in_shape.len() == 3
                        && cv.weight.shape[1] == c =>
                {
                    let [co, ci, kh, kw] = [
                        cv.weight.shape[0],
                        c,
                        cv.weight.shape[2],
                        cv.weight.shape[3],
                    ];
                    let mut b = cv.bias.clone().map_or(vec![0.0; co], |b| b.data);
                    for o in 0..co {
                        for i in 0..ci {
                            for k in 0..kh * kw {
                                let w = &mut cv.weight.data[(o * ci + i) * kh * kw + k];
                                b[o] += *w * shift[i];
                                *w *= scale[i];
                            }
                        }
                    }
                    cv.bias = Some(Tensor::vector(b));
                    true
                }
                _ => false,
            };
            if ok {
                // The reader now reads what the batch norm read.
                let src = g.nodes[bi].inputs[0].clone();
                g.nodes.remove(bi);
                for n in g.nodes.iter_mut() {
                    for i in n.inputs.iter_mut() {
                        if *i == out {
                            *i = src.clone();
                        }
                    }
                }
                continue 'outer;
            }
        }
        break;
    }
    g.infer_shapes()?;
    Ok(g)
}

/// An activation range widened by [`calibrate_ranges`].
#[derive(Debug, Clone, PartialEq)]
pub struct RangeChange {
    /// The activation node.
    pub node: String,
    /// The range the model stated.
    pub stated: [f64; 2],
    /// What its input reached on the calibration inputs.
    pub observed: [f64; 2],
    /// The range now recorded.
    pub new: [f64; 2],
}

/// Relative margin added around an observed activation range.
pub const RANGE_MARGIN: f64 = 0.1;

/// Runs `inputs` through the model and widens every activation range that
/// its inputs leave, to the union of the stated and observed ranges plus
/// [`RANGE_MARGIN`] of the observed width on each side, so that a plan
/// never states a range the model does not keep on these inputs. Ranges
/// already covering what is observed are kept as they are. Returns the new
/// graph and what changed (for a warning).
pub fn calibrate_ranges(
    graph: &Graph,
    inputs: &[Tensor],
) -> Result<(Graph, Vec<RangeChange>), crate::exec::ExecError> {
    let obs = crate::exec::activation_input_ranges(graph, inputs)?;
    let mut g = graph.clone();
    let mut changes = Vec::new();
    for n in g.nodes.iter_mut() {
        let Op::PolyAct(p) = &mut n.op else { continue };
        let Some(&o) = obs.get(&n.name) else { continue };
        if !(o[0].is_finite() && o[1].is_finite()) {
            continue;
        }
        if o[0] >= p.range[0] && o[1] <= p.range[1] {
            continue;
        }
        let m = RANGE_MARGIN * (o[1] - o[0]).max(1e-6);
        let new = [p.range[0].min(o[0] - m), p.range[1].max(o[1] + m)];
        changes.push(RangeChange {
            node: n.name.clone(),
            stated: p.range,
            observed: o,
            new,
        });
        p.range = new;
    }
    Ok((g, changes))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::exec::{max_abs_diff, run};
    use crate::graph::{BatchNorm, Node, Pads, PolyAct};
    use rand::{Rng, SeedableRng};
    use rand_chacha::ChaCha8Rng;

    fn rt(rng: &mut ChaCha8Rng, shape: Vec<usize>, lo: f64, hi: f64) -> Tensor {
        let n = shape.iter().product();
        Tensor {
            shape,
            data: (0..n).map(|_| rng.gen_range(lo..hi)).collect(),
        }
    }

    fn bn(rng: &mut ChaCha8Rng, c: usize) -> Op {
        Op::BatchNorm(BatchNorm {
            gamma: rt(rng, vec![c], 0.5, 1.5),
            beta: rt(rng, vec![c], -0.5, 0.5),
            mean: rt(rng, vec![c], -0.3, 0.3),
            var: rt(rng, vec![c], 0.5, 2.0),
            eps: 1e-5,
        })
    }

    #[test]
    fn folding_preserves_outputs() {
        let mut rng = ChaCha8Rng::seed_from_u64(7);
        let mut g = Graph::new("t", "x", vec![4, 6, 6]);
        let d = DiracConv2d {
            weight: rt(&mut rng, vec![4, 4, 3, 3], -1.0, 1.0),
            alpha: rt(&mut rng, vec![4], 0.5, 1.5),
            beta: rt(&mut rng, vec![4], 0.1, 0.5),
            bias: None,
            stride: [1, 1],
            pads: Pads::uniform(1),
        };
        g.push(Node::new("c1", Op::DiracConv2d(d), vec!["x".into()], "a"));
        let b1 = bn(&mut rng, 4);
        g.push(Node::new("bn1", b1, vec!["a".into()], "b"));
        g.push(Node::new(
            "act",
            Op::PolyAct(PolyAct {
                coeffs: vec![0.1, 0.5, 0.2],
                range: [-4.0, 4.0],
            }),
            vec!["b".into()],
            "c",
        ));
        let d2 = DiracConv2d {
            weight: rt(&mut rng, vec![6, 4, 3, 3], -1.0, 1.0),
            alpha: rt(&mut rng, vec![6], 0.5, 1.5),
            beta: rt(&mut rng, vec![6], 0.1, 0.5),
            bias: Some(rt(&mut rng, vec![6], -0.1, 0.1)),
            stride: [2, 2],
            pads: Pads::uniform(1),
        };
        g.push(Node::new("c2", Op::DiracConv2d(d2), vec!["c".into()], "d"));
        let b2 = bn(&mut rng, 6);
        g.push(Node::new("bn2", b2, vec!["d".into()], "e"));
        g.push(Node::new("gap", Op::GlobalAvgPool, vec!["e".into()], "f"));
        g.push(Node::new("fl", Op::Flatten, vec!["f".into()], "h"));
        g.push(Node::new(
            "fc",
            Op::Dense(Dense {
                weight: rt(&mut rng, vec![3, 6], -1.0, 1.0),
                bias: None,
            }),
            vec!["h".into()],
            "i",
        ));
        let b3 = bn(&mut rng, 3);
        g.push(Node::new("bn3", b3, vec!["i".into()], "y"));
        g.output = "y".into();

        let f = fold_all(&g).unwrap();
        assert_eq!(f.nodes.len(), g.nodes.len() - 3);
        assert!(
            f.nodes
                .iter()
                .all(|n| !matches!(n.op, Op::BatchNorm(_) | Op::DiracConv2d(_)))
        );
        for s in 0..3 {
            let x = rt(&mut ChaCha8Rng::seed_from_u64(s), vec![4, 6, 6], -1.0, 1.0);
            let a = run(&g, &x).unwrap();
            let b = run(&f, &x).unwrap();
            assert!(max_abs_diff(&a.data, &b.data) < 1e-6);
        }
    }

    /// conv -> bn -> add(·, source) -> bn with one scale -> act, where the
    /// source is an activation output that two layers read.
    fn post_add_norm_graph(seed: u64, per_channel_shift: bool) -> Graph {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let mut g = Graph::new("t", "x", vec![3, 5, 5]);
        let conv = |rng: &mut ChaCha8Rng, bias: bool| {
            Op::Conv2d(Conv2d {
                weight: rt(rng, vec![3, 3, 3, 3], -0.5, 0.5),
                bias: bias.then(|| rt(rng, vec![3], -0.1, 0.1)),
                stride: [1, 1],
                pads: Pads::uniform(1),
            })
        };
        let act = PolyAct {
            coeffs: vec![0.1, 0.9, 0.15],
            range: [-3.0, 4.0],
        };
        g.push(Node::new("c0", conv(&mut rng, true), vec!["x".into()], "a"));
        g.push(Node::new(
            "src",
            Op::PolyAct(act.clone()),
            vec!["a".into()],
            "s",
        ));
        g.push(Node::new(
            "c1",
            conv(&mut rng, false),
            vec!["s".into()],
            "b",
        ));
        let b1 = bn(&mut rng, 3);
        g.push(Node::new("bn1", b1, vec!["b".into()], "c"));
        g.push(Node::new("add", Op::Add, vec!["c".into(), "s".into()], "d"));
        let gamma = rng.gen_range(0.5..1.5);
        let var = rng.gen_range(0.5..2.0);
        let beta = if per_channel_shift {
            rt(&mut rng, vec![3], -0.5, 0.5)
        } else {
            Tensor::vector(vec![0.2; 3])
        };
        g.push(Node::new(
            "add_norm",
            Op::BatchNorm(BatchNorm {
                gamma: Tensor::vector(vec![gamma; 3]),
                beta,
                mean: if per_channel_shift {
                    rt(&mut rng, vec![3], -0.3, 0.3)
                } else {
                    Tensor::vector(vec![0.1; 3])
                },
                var: Tensor::vector(vec![var; 3]),
                eps: 1e-5,
            }),
            vec!["d".into()],
            "e",
        ));
        g.push(Node::new("act", Op::PolyAct(act), vec!["e".into()], "f"));
        g.push(Node::new(
            "c2",
            conv(&mut rng, false),
            vec!["f".into()],
            "h",
        ));
        g.push(Node::new(
            "add2",
            Op::Add,
            vec!["h".into(), "s".into()],
            "y",
        ));
        g.output = "y".into();
        g
    }

    #[test]
    fn post_add_norm_folds_into_act_and_conv() {
        for per_channel_shift in [false, true] {
            for seed in 0..3 {
                let g = post_add_norm_graph(seed, per_channel_shift);
                let once = fold_affine_into_act(&g).unwrap();
                assert!(once.node("add_norm").is_none(), "{per_channel_shift}");
                let f = fold_all(&g).unwrap();
                assert!(
                    f.nodes.iter().all(|n| !matches!(n.op, Op::BatchNorm(_))),
                    "fold_all leaves a batch norm"
                );
                assert_eq!(f.nodes.len(), g.nodes.len() - 2);
                // Same degree and a range that maps onto the old one.
                let Op::PolyAct(p) = &f.node("act").unwrap().op else {
                    panic!()
                };
                assert_eq!(p.degree(), 2);
                for s in 0..3 {
                    let x = rt(
                        &mut ChaCha8Rng::seed_from_u64(100 + s),
                        vec![3, 5, 5],
                        -1.0,
                        1.0,
                    );
                    let a = run(&g, &x).unwrap();
                    for h in [&once, &f] {
                        let b = run(h, &x).unwrap();
                        assert!(max_abs_diff(&a.data, &b.data) < 1e-6);
                    }
                }
            }
        }
    }

    #[test]
    fn per_channel_scale_does_not_fold_into_act() {
        let mut g = post_add_norm_graph(1, true);
        let i = g.nodes.iter().position(|n| n.name == "add_norm").unwrap();
        if let Op::BatchNorm(b) = &mut g.nodes[i].op {
            b.gamma.data[1] *= 1.5;
        }
        let f = fold_all(&g).unwrap();
        assert!(f.node("add_norm").is_some());
        let x = rt(&mut ChaCha8Rng::seed_from_u64(9), vec![3, 5, 5], -1.0, 1.0);
        let (a, b) = (run(&g, &x).unwrap(), run(&f, &x).unwrap());
        assert!(max_abs_diff(&a.data, &b.data) < 1e-6);
    }

    #[test]
    fn compose_affine_is_p_of_affine() {
        let c = [0.3, -1.2, 0.7, 0.05];
        let q = compose_affine(&c, -1.7, 0.4);
        let p = PolyAct {
            coeffs: c.to_vec(),
            range: [-1.0, 1.0],
        };
        let pq = PolyAct {
            coeffs: q,
            range: [-1.0, 1.0],
        };
        for x in [-2.0, -0.3, 0.0, 0.9, 3.0] {
            assert!((pq.eval(x) - p.eval(-1.7 * x + 0.4)).abs() < 1e-12);
        }
    }

    #[test]
    fn dirac_identity() {
        // alpha = 1, beta = 0: the conv is the identity on the first channels.
        let d = DiracConv2d {
            weight: Tensor::zeros(vec![3, 2, 3, 3]),
            alpha: Tensor::vector(vec![1.0; 3]),
            beta: Tensor::vector(vec![0.0; 3]),
            bias: None,
            stride: [1, 1],
            pads: Pads::uniform(1),
        };
        let x = Tensor::new(vec![2, 2, 2], vec![1., 2., 3., 4., 5., 6., 7., 8.]).unwrap();
        let y = crate::exec::conv2d(&x, &dirac_to_conv(&d));
        assert_eq!(&y.data[..8], &x.data[..]);
        assert_eq!(&y.data[8..], &[0.0; 4]);
    }
}
