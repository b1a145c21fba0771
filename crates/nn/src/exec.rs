//! Plaintext reference executor in `f64`.
//!
//! The ground truth every encrypted result is compared with: it runs a
//! [`Graph`] on one image (`[C, H, W]`) exactly as the IR defines it, with
//! no layout tricks. Batches are run image by image ([`run_batch`] spreads
//! them over threads).

use std::collections::HashMap;

use thiserror::Error;

use crate::graph::{
    AvgPool, BatchNorm, Conv2d, Dense, DiracConv2d, Graph, GraphError, Op, Pads, PolyAct, Tensor,
};

/// Errors of the reference executor.
#[derive(Debug, Error, Clone, PartialEq)]
pub enum ExecError {
    /// The graph is invalid.
    #[error(transparent)]
    Graph(#[from] GraphError),
    /// The input does not have the graph's input shape.
    #[error("input has shape {got:?}, the graph expects {expected:?}")]
    InputShape {
        /// Expected per-image shape.
        expected: Vec<usize>,
        /// Given shape.
        got: Vec<usize>,
    },
}

/// All values computed by [`run_all`], by value name.
pub type Values = HashMap<String, Tensor>;

/// Runs `graph` on one input and returns the output value.
pub fn run(graph: &Graph, input: &Tensor) -> Result<Tensor, ExecError> {
    let mut vals = run_inner(graph, input, false)?;
    Ok(vals.remove(&graph.output).unwrap_or_else(|| input.clone()))
}

/// Runs `graph` on one input and returns every value (input included), for
/// debugging, per-layer comparisons and activation range statistics.
pub fn run_all(graph: &Graph, input: &Tensor) -> Result<Values, ExecError> {
    run_inner(graph, input, true)
}

/// Runs `graph` on many inputs, in parallel over the available threads.
pub fn run_batch(graph: &Graph, inputs: &[Tensor]) -> Result<Vec<Tensor>, ExecError> {
    graph.infer_shapes()?;
    let threads = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1)
        .min(inputs.len().max(1));
    let chunk = inputs.len().div_ceil(threads).max(1);
    std::thread::scope(|s| {
        let handles: Vec<_> = inputs
            .chunks(chunk)
            .map(|c| s.spawn(move || c.iter().map(|x| run(graph, x)).collect::<Vec<_>>()))
            .collect();
        let mut out = Vec::with_capacity(inputs.len());
        for h in handles {
            for r in h.join().expect("executor thread panicked") {
                out.push(r?);
            }
        }
        Ok(out)
    })
}

/// Largest im2col buffer (elements) [`conv2d`] allocates before falling
/// back to [`conv2d_direct`].
pub const MAX_IM2COL: usize = 1 << 24;

/// Observed input range `[min, max]` of every polynomial activation over
/// `inputs`, by node name: what a model should record as its activations'
/// ranges (with some margin) so that the HE compiler can scale into them.
pub fn activation_input_ranges(
    graph: &Graph,
    inputs: &[Tensor],
) -> Result<std::collections::BTreeMap<String, [f64; 2]>, ExecError> {
    let mut out = std::collections::BTreeMap::new();
    for x in inputs {
        let vals = run_all(graph, x)?;
        for n in &graph.nodes {
            if let Op::PolyAct(_) = n.op {
                let v = &vals[n.inputs[0].as_str()];
                let e = out
                    .entry(n.name.clone())
                    .or_insert([f64::INFINITY, f64::NEG_INFINITY]);
                for &t in &v.data {
                    e[0] = e[0].min(t);
                    e[1] = e[1].max(t);
                }
            }
        }
    }
    Ok(out)
}

/// Image `i` of a dataset as a model input: pixels / 255, `[C, H, W]`
/// (the convention every model trained here uses). Panics if `i` is out of
/// range.
pub fn image_input(set: &crate::data::ImageSet, i: usize) -> Tensor {
    Tensor {
        shape: vec![set.channels, set.height, set.width],
        data: set.image(i).iter().map(|&p| f64::from(p) / 255.0).collect(),
    }
}

/// Plaintext classification accuracy of a model on a labelled set.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Accuracy {
    /// Correctly classified images.
    pub correct: usize,
    /// Images evaluated.
    pub total: usize,
}

impl Accuracy {
    /// `correct / total` (0 for an empty set).
    pub fn fraction(&self) -> f64 {
        if self.total == 0 {
            0.0
        } else {
            self.correct as f64 / self.total as f64
        }
    }
}

/// Runs `graph` on every image of `set` (in parallel, in chunks to bound
/// memory) and counts argmax hits.
pub fn evaluate(graph: &Graph, set: &crate::data::ImageSet) -> Result<Accuracy, ExecError> {
    evaluate_with_progress(graph, set, &mut |_| {})
}

/// [`evaluate`], calling `done(n)` after each chunk of `n` images (for a
/// progress bar).
pub fn evaluate_with_progress(
    graph: &Graph,
    set: &crate::data::ImageSet,
    done: &mut dyn FnMut(usize),
) -> Result<Accuracy, ExecError> {
    let shape = vec![set.channels, set.height, set.width];
    if shape != graph.input_shape {
        return Err(ExecError::InputShape {
            expected: graph.input_shape.clone(),
            got: shape,
        });
    }
    let mut correct = 0;
    let idx: Vec<usize> = (0..set.len()).collect();
    for chunk in idx.chunks(512) {
        let inputs: Vec<Tensor> = chunk.iter().map(|&i| image_input(set, i)).collect();
        let outs = run_batch(graph, &inputs)?;
        correct += outs
            .iter()
            .zip(chunk)
            .filter(|(o, i)| argmax(&o.data) == usize::from(set.labels[**i]))
            .count();
        done(chunk.len());
    }
    Ok(Accuracy {
        correct,
        total: set.len(),
    })
}

/// Index of the largest element (first one on ties); 0 for empty input.
pub fn argmax(x: &[f64]) -> usize {
    let mut best = 0;
    for (i, &v) in x.iter().enumerate() {
        if v > x[best] {
            best = i;
        }
    }
    best
}

fn run_inner(graph: &Graph, input: &Tensor, keep_all: bool) -> Result<Values, ExecError> {
    graph.infer_shapes()?;
    if input.shape != graph.input_shape || !input.is_consistent() {
        return Err(ExecError::InputShape {
            expected: graph.input_shape.clone(),
            got: input.shape.clone(),
        });
    }
    let order = graph.topo_order()?;
    // Remaining reads per value, to free intermediates early.
    let mut reads: HashMap<&str, usize> = HashMap::new();
    for n in &graph.nodes {
        for i in &n.inputs {
            *reads.entry(i.as_str()).or_default() += 1;
        }
    }
    let mut vals: Values = HashMap::new();
    vals.insert(graph.input.clone(), input.clone());
    for i in order {
        let n = &graph.nodes[i];
        let x = &vals[n.inputs[0].as_str()];
        let y = match &n.op {
            Op::Conv2d(c) => conv2d(x, c),
            Op::DiracConv2d(d) => conv2d(x, &crate::transform::dirac_to_conv(d)),
            Op::BatchNorm(b) => batch_norm(x, b),
            Op::Add => {
                let z = &vals[n.inputs[1].as_str()];
                Tensor {
                    shape: x.shape.clone(),
                    data: x.data.iter().zip(&z.data).map(|(a, b)| a + b).collect(),
                }
            }
            Op::PolyAct(p) => poly(x, p),
            Op::AvgPool(a) => avg_pool(x, a),
            Op::GlobalAvgPool => global_avg_pool(x),
            Op::Dense(d) => dense(x, d),
            Op::Flatten => Tensor {
                shape: vec![x.numel()],
                data: x.data.clone(),
            },
            Op::Reshape { shape } => Tensor {
                shape: shape.clone(),
                data: x.data.clone(),
            },
        };
        if !keep_all {
            for v in &n.inputs {
                if let Some(r) = reads.get_mut(v.as_str()) {
                    *r -= 1;
                    if *r == 0 && *v != graph.output {
                        vals.remove(v.as_str());
                    }
                }
            }
        }
        vals.insert(n.output.clone(), y);
    }
    Ok(vals)
}

/// 2-D convolution of a `[C, H, W]` tensor (cross-correlation, zero
/// padding). Shapes must already be validated.
///
/// Lowered to a matrix product: the input patches are gathered once into a
/// `[C_in·KH·KW, OH·OW]` matrix (im2col), then each output channel is a
/// weighted sum of its rows, four output channels per pass so that every
/// patch row is read once per block. Plain `f64` arithmetic in a fixed
/// order, so results are deterministic.
pub fn conv2d(x: &Tensor, c: &Conv2d) -> Tensor {
    let (ci, h, w) = (x.shape[0], x.shape[1], x.shape[2]);
    let (co, kh, kw) = (c.weight.shape[0], c.weight.shape[2], c.weight.shape[3]);
    let [sh, sw] = c.stride;
    let p: &Pads = &c.pads;
    let oh = (h + p.top + p.bottom - kh) / sh + 1;
    let ow = (w + p.left + p.right - kw) / sw + 1;
    let npix = oh * ow;
    let k = ci * kh * kw;
    if k.saturating_mul(npix) > MAX_IM2COL {
        return conv2d_direct(x, c);
    }
    // im2col: row (i, ky, kx) holds x[i, oy*sh + ky - top, ox*sw + kx - left].
    let mut cols = vec![0.0; k * npix];
    for i in 0..ci {
        let xin = &x.data[i * h * w..(i + 1) * h * w];
        for ky in 0..kh {
            for kx in 0..kw {
                let row = &mut cols[((i * kh + ky) * kw + kx) * npix..][..npix];
                for oy in 0..oh {
                    let iy = (oy * sh + ky) as isize - p.top as isize;
                    if iy < 0 || iy >= h as isize {
                        continue;
                    }
                    let src = &xin[iy as usize * w..(iy as usize + 1) * w];
                    let dst = &mut row[oy * ow..(oy + 1) * ow];
                    for (ox, d) in dst.iter_mut().enumerate() {
                        let ix = (ox * sw + kx) as isize - p.left as isize;
                        if ix >= 0 && ix < w as isize {
                            *d = src[ix as usize];
                        }
                    }
                }
            }
        }
    }
    let mut out = vec![0.0; co * npix];
    let wd = &c.weight.data;
    for (blk, outs) in out.chunks_mut(4 * npix).enumerate() {
        let o0 = blk * 4;
        let nb = outs.len() / npix;
        for (j, plane) in outs.chunks_mut(npix).enumerate() {
            let b = c.bias.as_ref().map_or(0.0, |b| b.data[o0 + j]);
            plane.iter_mut().for_each(|v| *v = b);
        }
        if nb == 4 {
            let (p0, rest) = outs.split_at_mut(npix);
            let (p1, rest) = rest.split_at_mut(npix);
            let (p2, p3) = rest.split_at_mut(npix);
            for r in 0..k {
                let ws = [
                    wd[o0 * k + r],
                    wd[(o0 + 1) * k + r],
                    wd[(o0 + 2) * k + r],
                    wd[(o0 + 3) * k + r],
                ];
                if ws == [0.0; 4] {
                    continue;
                }
                let row = &cols[r * npix..(r + 1) * npix];
                for (t, &v) in row.iter().enumerate() {
                    p0[t] += ws[0] * v;
                    p1[t] += ws[1] * v;
                    p2[t] += ws[2] * v;
                    p3[t] += ws[3] * v;
                }
            }
        } else {
            for (j, plane) in outs.chunks_mut(npix).enumerate() {
                let o = o0 + j;
                for r in 0..k {
                    let wv = wd[o * k + r];
                    if wv == 0.0 {
                        continue;
                    }
                    let row = &cols[r * npix..(r + 1) * npix];
                    for (d, &v) in plane.iter_mut().zip(row) {
                        *d += wv * v;
                    }
                }
            }
        }
    }
    Tensor {
        shape: vec![co, oh, ow],
        data: out,
    }
}

/// Direct 2-D convolution without the im2col buffer: slower, but uses no
/// memory beyond its output; [`conv2d`] falls back to it for huge layers.
pub fn conv2d_direct(x: &Tensor, c: &Conv2d) -> Tensor {
    let (ci, h, w) = (x.shape[0], x.shape[1], x.shape[2]);
    let (co, kh, kw) = (c.weight.shape[0], c.weight.shape[2], c.weight.shape[3]);
    let [sh, sw] = c.stride;
    let p: &Pads = &c.pads;
    let oh = (h + p.top + p.bottom - kh) / sh + 1;
    let ow = (w + p.left + p.right - kw) / sw + 1;
    let mut out = vec![0.0; co * oh * ow];
    for o in 0..co {
        let plane = &mut out[o * oh * ow..(o + 1) * oh * ow];
        if let Some(b) = &c.bias {
            plane.iter_mut().for_each(|v| *v = b.data[o]);
        }
        for i in 0..ci {
            let xin = &x.data[i * h * w..(i + 1) * h * w];
            for ky in 0..kh {
                for kx in 0..kw {
                    let wv = c.weight.data[((o * ci + i) * kh + ky) * kw + kx];
                    if wv == 0.0 {
                        continue;
                    }
                    for oy in 0..oh {
                        let iy = (oy * sh + ky) as isize - p.top as isize;
                        if iy < 0 || iy >= h as isize {
                            continue;
                        }
                        let row = &xin[iy as usize * w..(iy as usize + 1) * w];
                        let orow = &mut plane[oy * ow..(oy + 1) * ow];
                        // Valid ox range: 0 <= ox*sw + kx - left < w.
                        let off = kx as isize - p.left as isize;
                        let lo = if off >= 0 {
                            0
                        } else {
                            ((-off) as usize).div_ceil(sw)
                        };
                        let hi_excl = {
                            // ox*sw + off <= w-1  =>  ox <= (w-1-off)/sw
                            let lim = w as isize - 1 - off;
                            if lim < 0 {
                                0
                            } else {
                                (lim as usize / sw + 1).min(ow)
                            }
                        };
                        if sw == 1 {
                            let start = (lo as isize + off) as usize;
                            for (ov, xv) in orow[lo..hi_excl.max(lo)].iter_mut().zip(&row[start..])
                            {
                                *ov += wv * xv;
                            }
                        } else {
                            for (ox, ov) in orow.iter_mut().enumerate().take(hi_excl).skip(lo) {
                                let ix = (ox * sw) as isize + off;
                                *ov += wv * row[ix as usize];
                            }
                        }
                    }
                }
            }
        }
    }
    Tensor {
        shape: vec![co, oh, ow],
        data: out,
    }
}

/// Convolution with a Dirac-parameterized kernel (folded on the fly).
pub fn dirac_conv2d(x: &Tensor, d: &DiracConv2d) -> Tensor {
    conv2d(x, &crate::transform::dirac_to_conv(d))
}

/// Inference batch normalization over the first axis.
pub fn batch_norm(x: &Tensor, b: &BatchNorm) -> Tensor {
    let (s, t) = b.affine();
    let c = x.shape[0];
    let per = x.numel() / c.max(1);
    let mut data = x.data.clone();
    for ch in 0..c {
        for v in &mut data[ch * per..(ch + 1) * per] {
            *v = s[ch] * *v + t[ch];
        }
    }
    Tensor {
        shape: x.shape.clone(),
        data,
    }
}

/// Element-wise polynomial.
pub fn poly(x: &Tensor, p: &PolyAct) -> Tensor {
    Tensor {
        shape: x.shape.clone(),
        data: x.data.iter().map(|&v| p.eval(v)).collect(),
    }
}

/// Average pooling (zero padding; divisor per `count_include_pad`).
pub fn avg_pool(x: &Tensor, a: &AvgPool) -> Tensor {
    let (c, h, w) = (x.shape[0], x.shape[1], x.shape[2]);
    let [kh, kw] = a.kernel;
    let [sh, sw] = a.stride;
    let p = &a.pads;
    let oh = (h + p.top + p.bottom - kh) / sh + 1;
    let ow = (w + p.left + p.right - kw) / sw + 1;
    let mut out = Vec::with_capacity(c * oh * ow);
    for ch in 0..c {
        let xin = &x.data[ch * h * w..(ch + 1) * h * w];
        for oy in 0..oh {
            for ox in 0..ow {
                let mut sum = 0.0;
                let mut cnt = 0usize;
                for ky in 0..kh {
                    let iy = (oy * sh + ky) as isize - p.top as isize;
                    if iy < 0 || iy >= h as isize {
                        continue;
                    }
                    for kx in 0..kw {
                        let ix = (ox * sw + kx) as isize - p.left as isize;
                        if ix < 0 || ix >= w as isize {
                            continue;
                        }
                        sum += xin[iy as usize * w + ix as usize];
                        cnt += 1;
                    }
                }
                let div = if a.count_include_pad {
                    (kh * kw) as f64
                } else {
                    cnt.max(1) as f64
                };
                out.push(sum / div);
            }
        }
    }
    Tensor {
        shape: vec![c, oh, ow],
        data: out,
    }
}

/// Global average pooling `[C, H, W] -> [C, 1, 1]`.
pub fn global_avg_pool(x: &Tensor) -> Tensor {
    let c = x.shape[0];
    let per = x.numel() / c.max(1);
    let data = (0..c)
        .map(|ch| x.data[ch * per..(ch + 1) * per].iter().sum::<f64>() / per as f64)
        .collect();
    Tensor {
        shape: vec![c, 1, 1],
        data,
    }
}

/// Fully connected layer on a flat input.
pub fn dense(x: &Tensor, d: &Dense) -> Tensor {
    let (o, i) = (d.weight.shape[0], d.weight.shape[1]);
    let data = (0..o)
        .map(|r| {
            let row = &d.weight.data[r * i..(r + 1) * i];
            let s: f64 = row.iter().zip(&x.data).map(|(a, b)| a * b).sum();
            s + d.bias.as_ref().map_or(0.0, |b| b.data[r])
        })
        .collect();
    Tensor {
        shape: vec![o],
        data,
    }
}

/// Maximum absolute difference between two equally long slices
/// (infinite if the lengths differ).
pub fn max_abs_diff(a: &[f64], b: &[f64]) -> f64 {
    if a.len() != b.len() {
        return f64::INFINITY;
    }
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f64::max)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::graph::Pads;

    /// Naive convolution straight from the definition.
    fn conv_naive(x: &Tensor, c: &Conv2d) -> Tensor {
        let (ci, h, w) = (x.shape[0], x.shape[1], x.shape[2]);
        let (co, kh, kw) = (c.weight.shape[0], c.weight.shape[2], c.weight.shape[3]);
        let p = c.pads;
        let oh = (h + p.top + p.bottom - kh) / c.stride[0] + 1;
        let ow = (w + p.left + p.right - kw) / c.stride[1] + 1;
        let mut out = vec![0.0; co * oh * ow];
        for o in 0..co {
            for oy in 0..oh {
                for ox in 0..ow {
                    let mut s = c.bias.as_ref().map_or(0.0, |b| b.data[o]);
                    for i in 0..ci {
                        for ky in 0..kh {
                            for kx in 0..kw {
                                let iy = (oy * c.stride[0] + ky) as isize - p.top as isize;
                                let ix = (ox * c.stride[1] + kx) as isize - p.left as isize;
                                if iy >= 0 && ix >= 0 && (iy as usize) < h && (ix as usize) < w {
                                    s += c.weight.data[((o * ci + i) * kh + ky) * kw + kx]
                                        * x.data[(i * h + iy as usize) * w + ix as usize];
                                }
                            }
                        }
                    }
                    out[(o * oh + oy) * ow + ox] = s;
                }
            }
        }
        Tensor {
            shape: vec![co, oh, ow],
            data: out,
        }
    }

    fn pseudo(n: usize, seed: u64) -> Vec<f64> {
        let mut s = seed.wrapping_mul(6364136223846793005).wrapping_add(1);
        (0..n)
            .map(|_| {
                s = s
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                ((s >> 11) as f64 / (1u64 << 53) as f64) * 2.0 - 1.0
            })
            .collect()
    }

    #[test]
    fn conv_matches_naive() {
        let cases = [
            (3, 5, 7, 6, 3, 3, 1, 1, Pads::uniform(1)),
            (2, 4, 9, 8, 3, 3, 2, 2, Pads::uniform(1)),
            (2, 3, 6, 7, 1, 1, 2, 2, Pads::default()),
            (1, 2, 7, 7, 5, 3, 2, 1, Pads::from_onnx([2, 0, 1, 2])),
            (2, 2, 5, 5, 3, 3, 3, 2, Pads::from_onnx([0, 2, 2, 1])),
        ];
        for (k, &(ci, co, h, w, kh, kw, sh, sw, pads)) in cases.iter().enumerate() {
            let x = Tensor::new(vec![ci, h, w], pseudo(ci * h * w, k as u64)).unwrap();
            let c = Conv2d {
                weight: Tensor::new(vec![co, ci, kh, kw], pseudo(co * ci * kh * kw, 99)).unwrap(),
                bias: Some(Tensor::vector(pseudo(co, 5))),
                stride: [sh, sw],
                pads,
            };
            let a = conv2d(&x, &c);
            let b = conv_naive(&x, &c);
            let d = conv2d_direct(&x, &c);
            assert_eq!(a.shape, b.shape, "case {k}");
            assert!(max_abs_diff(&a.data, &b.data) < 1e-12, "case {k}");
            assert!(max_abs_diff(&d.data, &b.data) < 1e-12, "case {k}");
        }
    }

    #[test]
    fn activation_ranges_are_observed() {
        use crate::graph::{Graph, Node};
        let mut g = Graph::new("t", "x", vec![1, 1, 2]);
        let act = Op::PolyAct(PolyAct {
            coeffs: vec![0.0, 1.0, 1.0],
            range: [-1.0, 1.0],
        });
        g.push(Node::new("a1", act.clone(), vec!["x".into()], "y"));
        g.push(Node::new("a2", act, vec!["y".into()], "z"));
        g.output = "z".into();
        let xs = [
            Tensor::new(vec![1, 1, 2], vec![-0.5, 2.0]).unwrap(),
            Tensor::new(vec![1, 1, 2], vec![1.0, -3.0]).unwrap(),
        ];
        let r = activation_input_ranges(&g, &xs).unwrap();
        assert_eq!(r["a1"], [-3.0, 2.0]);
        // a2 sees x + x^2: -0.25, 6, 2, 6.
        assert_eq!(r["a2"], [-0.25, 6.0]);
    }

    #[test]
    fn evaluate_reads_an_idx_split() {
        use crate::data::{ImageSet, encode_idx, load_idx_split};
        use crate::graph::{Dense, Graph, Node};
        // Images whose class is the brightest of the first 3 pixels, and a
        // model that reads exactly that: dense picks pixels 0..3.
        let mut pixels = Vec::new();
        let mut labels = Vec::new();
        for i in 0..30u8 {
            let mut img = vec![10u8; 4];
            img[(i % 3) as usize] = 200;
            pixels.extend(img);
            labels.push(if i % 5 == 0 { (i + 1) % 3 } else { i % 3 });
        }
        let set = ImageSet {
            channels: 1,
            height: 2,
            width: 2,
            classes: 10,
            pixels,
            labels,
        };
        let dir = std::env::temp_dir().join(format!("nn-eval-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let (img, lbl) = encode_idx(&set);
        std::fs::write(dir.join("t10k-images-idx3-ubyte"), img).unwrap();
        std::fs::write(dir.join("t10k-labels-idx1-ubyte"), lbl).unwrap();
        let loaded = load_idx_split(&dir, "t10k").unwrap();
        std::fs::remove_dir_all(&dir).unwrap();
        let mut w = vec![0.0; 12];
        for k in 0..3 {
            w[k * 4 + k] = 1.0;
        }
        let mut g = Graph::new("pick", "x", vec![1, 2, 2]);
        g.push(Node::new("flat", Op::Flatten, vec!["x".into()], "f"));
        g.push(Node::new(
            "fc",
            Op::Dense(Dense {
                weight: Tensor::new(vec![3, 4], w).unwrap(),
                bias: None,
            }),
            vec!["f".into()],
            "y",
        ));
        g.output = "y".into();
        let acc = evaluate(&g, &loaded).unwrap();
        // Every fifth label (6 of 30) was made wrong on purpose.
        assert_eq!((acc.correct, acc.total), (24, 30));
        assert!((acc.fraction() - 0.8).abs() < 1e-12);
        let wrong = Graph::new("w", "x", vec![1, 3, 3]);
        assert!(evaluate(&wrong, &loaded).is_err());
    }

    #[test]
    fn pools() {
        let x = Tensor::new(vec![1, 3, 3], (1..=9).map(f64::from).collect()).unwrap();
        let g = global_avg_pool(&x);
        assert_eq!(g.data, vec![5.0]);
        let a = AvgPool {
            kernel: [2, 2],
            stride: [1, 1],
            pads: Pads::default(),
            count_include_pad: true,
        };
        assert_eq!(avg_pool(&x, &a).data, vec![3.0, 4.0, 6.0, 7.0]);
        let a = AvgPool {
            kernel: [3, 3],
            stride: [3, 3],
            pads: Pads::uniform(1),
            count_include_pad: false,
        };
        // Window at (0,0) covers x[0..2][0..2] = 1,2,4,5.
        assert_eq!(avg_pool(&x, &a).data[0], 3.0);
    }
}
