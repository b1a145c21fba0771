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
    /// Bias, if any: per output channel (`C` values, added at every pixel)
    /// or per element (`C * H * W` values of the output map, row-major);
    /// see [`bias_slots`].
    pub bias: Option<Vec<f64>>,
    /// Per output element factors (`C * H * W` values of the output map,
    /// row-major) multiplying every weight that reaches that element, if
    /// any: an average pool whose divisor excludes the padding, or an
    /// element-wise affine (a constant multiplied or added with
    /// broadcasting that varies within a channel; identity taps). See
    /// [`crate::layout::linear_diagonals_scaled`].
    pub out_scale: Option<Vec<f64>>,
}

impl LinearWeights {
    /// The plaintext diagonals of this step from layout `lin` to `lout`
    /// ([`crate::layout::linear_diagonals_scaled`]).
    pub fn diagonals(&self, lin: &Layout, lout: &Layout) -> Vec<layout::Diagonal> {
        layout::linear_diagonals_scaled(
            lin,
            lout,
            self.stride,
            &self.taps,
            self.out_scale.as_deref(),
        )
    }
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
                out_scale: None,
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
                out_scale: None,
            })
        }
        LayerOp::AvgPool { kernel, stride } => {
            let c = node.layout_in.channels;
            let f = 1.0 / (kernel[0] * kernel[1]) as f64;
            let n = find(g, &node.name)?;
            let Op::AvgPool(ap) = &n.op else {
                return Err(bad("not an average pool"));
            };
            let p = &ap.pads;
            let padded = p.top + p.left + p.bottom + p.right > 0;
            let exclude = !ap.count_include_pad && padded;
            let f = if exclude { 1.0 } else { f };
            let taps = layout::pool_taps(c, kernel[0], kernel[1], p.top, p.left)
                .into_iter()
                .map(|t| (t, f))
                .collect();
            // Excluding the padding from the divisor: 1 / (window pixels
            // inside the input), per output pixel.
            let out_scale = exclude.then(|| {
                let (lin, lout) = (&node.layout_in, &node.layout_out);
                let inside = |o: usize, k: usize, before: usize, n: usize| {
                    (0..k)
                        .filter(|&j| {
                            let i = (o * stride + j) as i64 - before as i64;
                            i >= 0 && i < n as i64
                        })
                        .count()
                };
                let mut v = Vec::with_capacity(lout.channels * lout.height * lout.width);
                for _ in 0..lout.channels {
                    for y in 0..lout.height {
                        let ny = inside(y, kernel[0], p.top, lin.height);
                        for x in 0..lout.width {
                            let nx = inside(x, kernel[1], p.left, lin.width);
                            v.push(1.0 / (ny * nx).max(1) as f64);
                        }
                    }
                }
                v
            });
            Ok(LinearWeights {
                taps,
                stride: *stride,
                bias: None,
                out_scale,
            })
        }
        LayerOp::Affine => {
            let n = find(g, &node.name)?;
            let Op::BatchNorm(bn) = &n.op else {
                return Err(bad("not a batch norm"));
            };
            let (a, b) = bn.affine();
            let l = &node.layout_in;
            let (c, hw) = (l.channels, l.height * l.width);
            if hw > 1 && a.len() == c * hw && b.len() == c * hw {
                // Per element of the map (a flattened view of it).
                let taps = (0..c)
                    .map(|ch| {
                        let t = Tap {
                            o: ch,
                            i: ch,
                            dy: 0,
                            dx: 0,
                        };
                        (t, 1.0)
                    })
                    .collect();
                return Ok(LinearWeights {
                    taps,
                    stride: 1,
                    bias: Some(b),
                    out_scale: Some(a),
                });
            }
            if a.len() != c {
                return Err(bad(&format!(
                    "{} factors for a {c}x{}x{} map",
                    a.len(),
                    l.height,
                    l.width
                )));
            }
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
                out_scale: None,
            })
        }
        _ => Err(bad("not a linear step")),
    }
}

/// A bias as slot vectors of layout `l` (one per ciphertext), zero
/// outside the map: a per-channel bias (`C` values) puts `bias[c]` at every
/// pixel of channel `c`; a per-element bias (`C * H * W` values, row-major,
/// when `H * W > 1`) puts `bias[(c*H + y)*W + x]` at pixel `(y, x)` of
/// channel `c`; either for every image of the batch. Values beyond the
/// map's channels are ignored.
pub fn bias_slots(l: &Layout, bias: &[f64]) -> Vec<Vec<f64>> {
    let (h, w) = (l.height, l.width);
    let per_element = h * w > 1 && bias.len() == l.channels * h * w;
    let mut v = vec![vec![0.0; l.slots]; l.cts()];
    for c in 0..l
        .channels
        .min(if per_element { l.channels } else { bias.len() })
    {
        for y in 0..h {
            for x in 0..w {
                let b = if per_element {
                    bias[(c * h + y) * w + x]
                } else {
                    bias[c]
                };
                let (ct, s) = l.slot(c, y as i64, x as i64);
                for img in 0..l.batch.max(1) {
                    v[ct][s as usize + img] = b;
                }
            }
        }
    }
    v
}
