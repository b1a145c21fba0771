//! Layer weights: what a linear plan step multiplies by, read from the
//! model in inference form ([`linear_weights`]), and biases as slot
//! vectors ([`bias_slots`]).

use nn::Op;

use super::PlanNode;
use crate::error::CompileError;
use crate::layout::{self, Layout, Tap};
use crate::lower::LayerOp;

/// The weights of a linear plan step, as taps for
/// [`crate::layout::linear_diagonals`]: output pixel `(Y, X)` of channel
/// `o` reads input pixel `(Y*stride + dy, X*stride + dx)` of channel `i`.
#[derive(Debug, Clone, PartialEq)]
pub struct LinearWeights {
    /// Weighted taps (repeats add up).
    pub taps: Vec<(Tap, f64)>,
    /// Total stride.
    pub stride: usize,
    /// Per output channel bias (added at every pixel), if any.
    pub bias: Option<Vec<f64>>,
}

fn find<'g>(g: &'g nn::Graph, name: &str) -> Result<&'g nn::Node, CompileError> {
    g.node(name)
        .ok_or_else(|| CompileError::Plan(format!("model has no node `{name}`")))
}

/// The weights of plan step `node` (a convolution, dense, average pool or
/// affine step) read from `g`, the model in inference form
/// (`nn::transform::fold_all`). Together with the step's layouts this is
/// everything the runtime needs to build its plaintext diagonals.
pub fn linear_weights(g: &nn::Graph, node: &PlanNode) -> Result<LinearWeights, CompileError> {
    let bad = |m: &str| CompileError::Plan(format!("step `{}`: {m}", node.name));
    match &node.op {
        LayerOp::Conv { pool, .. } => {
            let n = find(g, &node.name)?;
            let Op::Conv2d(c) = &n.op else {
                return Err(bad("not a plain convolution (fold the model first)"));
            };
            let [co, ci, kh, kw] = match c.weight.shape.as_slice() {
                &[a, b2, c2, d] => [a, b2, c2, d],
                _ => return Err(bad("kernel must be 4-D")),
            };
            let mut taps = Vec::with_capacity(co * ci * kh * kw);
            for t in layout::conv_taps(co, ci, kh, kw, c.pads.top, c.pads.left, |_, _, _, _| true) {
                let ky = (t.dy + c.pads.top as i64) as usize;
                let kx = (t.dx + c.pads.left as i64) as usize;
                let w = c.weight.data[((t.o * ci + t.i) * kh + ky) * kw + kx];
                if w != 0.0 {
                    taps.push((t, w));
                }
            }
            let mut stride = c.stride[0];
            if let Some([pk, ps, ptop, pleft]) = *pool {
                let f = 1.0 / (pk * pk) as f64;
                let mut comp = Vec::with_capacity(taps.len() * pk * pk);
                for &(t, w) in &taps {
                    comp.extend(
                        layout::pool_composed_taps(t, pk, ps, ptop, pleft).map(|c| (c, w * f)),
                    );
                }
                taps = comp;
                stride *= ps;
            }
            Ok(LinearWeights {
                taps,
                stride,
                bias: c.bias.as_ref().map(|b| b.data.clone()),
            })
        }
        LayerOp::Dense { dims, pool_scale } => {
            let n = find(g, &node.name)?;
            let Op::Dense(d) = &n.op else {
                return Err(bad("not a dense layer"));
            };
            let [inp, out] = *dims;
            let (h, w) = (node.layout_in.height, node.layout_in.width);
            let f = pool_scale.unwrap_or(1.0);
            let mut taps = Vec::with_capacity(inp * out);
            for o in 0..out {
                for j in 0..inp {
                    let v = d.weight.data[o * inp + j];
                    if v != 0.0 {
                        taps.push((layout::flat_tap(o, j, h, w), v * f));
                    }
                }
            }
            Ok(LinearWeights {
                taps,
                stride: 1,
                bias: d.bias.as_ref().map(|b| b.data.clone()),
            })
        }
        LayerOp::AvgPool { kernel, stride } => {
            let c = node.layout_in.channels;
            let f = 1.0 / (kernel[0] * kernel[1]) as f64;
            let n = find(g, &node.name)?;
            let Op::AvgPool(ap) = &n.op else {
                return Err(bad("not an average pool"));
            };
            let taps = layout::pool_taps(c, kernel[0], kernel[1], ap.pads.top, ap.pads.left)
                .into_iter()
                .map(|t| (t, f))
                .collect();
            Ok(LinearWeights {
                taps,
                stride: *stride,
                bias: None,
            })
        }
        LayerOp::Affine => {
            let n = find(g, &node.name)?;
            let Op::BatchNorm(bn) = &n.op else {
                return Err(bad("not a batch norm"));
            };
            let (a, b) = bn.affine();
            let taps = a
                .iter()
                .enumerate()
                .map(|(c, &w)| {
                    (
                        Tap {
                            o: c,
                            i: c,
                            dy: 0,
                            dx: 0,
                        },
                        w,
                    )
                })
                .collect();
            Ok(LinearWeights {
                taps,
                stride: 1,
                bias: Some(b),
            })
        }
        _ => Err(bad("not a linear step")),
    }
}

/// A per-channel bias as slot vectors of layout `l` (one per ciphertext):
/// `bias[c]` at every pixel of channel `c` of every image of the batch,
/// zero elsewhere.
pub fn bias_slots(l: &Layout, bias: &[f64]) -> Vec<Vec<f64>> {
    let mut v = vec![vec![0.0; l.slots]; l.cts()];
    for (c, &b) in bias.iter().enumerate().take(l.channels) {
        for y in 0..l.height {
            for x in 0..l.width {
                let (ct, s) = l.slot(c, y as i64, x as i64);
                for img in 0..l.batch.max(1) {
                    v[ct][s as usize + img] = b;
                }
            }
        }
    }
    v
}
