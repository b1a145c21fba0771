//! The multiplexed packing is exact: a convolution computed the HE way
//! (sum over diagonals of plaintext x rotated ciphertext, on slot vectors)
//! equals the direct convolution, for stride 1 and 2, 3x3 and 1x1 kernels,
//! channel growth, and several ciphertexts.

use std::collections::HashMap;

use compiler::layout::{
    Layout, SumStep, Tap, bsgs_split, conv_taps, diagonal_offsets, global_avg_pool,
    linear_diagonals, linear_map, sum_schedule,
};

struct Conv {
    co: usize,
    ci: usize,
    k: usize,
    stride: usize,
    pad: usize,
    w: Vec<f64>,
}

fn pseudo(i: usize) -> f64 {
    ((i as f64 * 0.618_033_988_7).fract() - 0.5) * 2.0
}

fn direct(c: &Conv, x: &[f64], h: usize, w: usize) -> (Vec<f64>, usize, usize) {
    let ho = (h + 2 * c.pad - c.k) / c.stride + 1;
    let wo = (w + 2 * c.pad - c.k) / c.stride + 1;
    let mut y = vec![0.0; c.co * ho * wo];
    for o in 0..c.co {
        for yy in 0..ho {
            for xx in 0..wo {
                let mut s = 0.0;
                for i in 0..c.ci {
                    for ky in 0..c.k {
                        for kx in 0..c.k {
                            let iy = (yy * c.stride + ky) as i64 - c.pad as i64;
                            let ix = (xx * c.stride + kx) as i64 - c.pad as i64;
                            if iy < 0 || ix < 0 || iy >= h as i64 || ix >= w as i64 {
                                continue;
                            }
                            s += c.w[((o * c.ci + i) * c.k + ky) * c.k + kx]
                                * x[(i * h + iy as usize) * w + ix as usize];
                        }
                    }
                }
                y[(o * ho + yy) * wo + xx] = s;
            }
        }
    }
    (y, ho, wo)
}

fn pack(l: &Layout, x: &[f64]) -> Vec<Vec<f64>> {
    let mut cts = vec![vec![0.0; l.slots]; l.cts()];
    for c in 0..l.channels {
        for y in 0..l.height {
            for xx in 0..l.width {
                let (ct, s) = l.slot(c, y as i64, xx as i64);
                cts[ct][s as usize] = x[(c * l.height + y) * l.width + xx];
            }
        }
    }
    cts
}

fn rot(v: &[f64], k: i64) -> Vec<f64> {
    let n = v.len() as i64;
    (0..n).map(|s| v[(s + k).rem_euclid(n) as usize]).collect()
}

/// The HE evaluation on slot vectors, exactly as the runtime does it:
/// plaintext diagonals from [`linear_diagonals`], split baby-step /
/// giant-step with the layer's span, `sum_g rot_g(sum_b rot_-g(diag) *
/// rot_b(x))`, every rotation among the layer's Galois steps.
fn he_conv(c: &Conv, lin: &Layout, lout: &Layout, xs: &[Vec<f64>]) -> Vec<Vec<f64>> {
    let slots = lin.slots;
    let nout = lout.cts();
    let taps = conv_taps(c.co, c.ci, c.k, c.k, c.pad, c.pad, |_, _, _, _| true);
    let weighted: Vec<(Tap, f64)> = taps
        .iter()
        .map(|t| {
            let ky = (t.dy + c.pad as i64) as usize;
            let kx = (t.dx + c.pad as i64) as usize;
            (*t, c.w[((t.o * c.ci + t.i) * c.k + ky) * c.k + kx])
        })
        .collect();
    let diags = linear_diagonals(lin, lout, c.stride, &weighted);
    let offsets = diagonal_offsets(lin, lout, taps.iter().copied());
    let cost = linear_map(lin, lout, taps.iter().copied(), (0.6, 1.0)).unwrap();
    let signed = |k: i64| compiler::layout::signed_step(k, slots);
    // inner[(co, giant)] accumulates rot_-g(diag) * rot_b(x).
    let mut inner: HashMap<(usize, i64), Vec<f64>> = HashMap::new();
    for d in &diags {
        // Pixel independence: the offset is one of the layer's.
        assert!(
            offsets[d.ct_in * nout + d.ct_out]
                .binary_search(&d.offset)
                .is_ok()
        );
        let (b, g) = bsgs_split(d.offset, cost.bsgs_baby, cost.bsgs_centred, slots);
        for k in [b, g] {
            assert!(k == 0 || cost.rotation_steps.contains(&signed(k)));
        }
        let pd = rot(&d.values, -g);
        let xb = rot(&xs[d.ct_in], b);
        let acc = inner
            .entry((d.ct_out, g))
            .or_insert_with(|| vec![0.0; slots]);
        for s in 0..slots {
            acc[s] += pd[s] * xb[s];
        }
    }
    let mut ys = vec![vec![0.0; slots]; nout];
    for ((co, g), v) in &inner {
        let r = rot(v, *g);
        for s in 0..slots {
            ys[*co][s] += r[s];
        }
    }
    ys
}

fn check(c: Conv, lin: Layout) {
    let (h, w) = (lin.height, lin.width);
    let x: Vec<f64> = (0..c.ci * h * w).map(pseudo).collect();
    let (want, ho, wo) = direct(&c, &x, h, w);
    let lout = lin.strided(c.co, ho, wo, c.stride).unwrap();
    let ys = he_conv(&c, &lin, &lout, &pack(&lin, &x));
    for o in 0..c.co {
        for yy in 0..ho {
            for xx in 0..wo {
                let (ct, s) = lout.slot(o, yy as i64, xx as i64);
                let got = ys[ct][s as usize];
                let exp = want[(o * ho + yy) * wo + xx];
                assert!((got - exp).abs() < 1e-9, "o{o} y{yy} x{xx}: {got} vs {exp}");
            }
        }
    }
    // And the cost model sees the same diagonals.
    let taps = conv_taps(c.co, c.ci, c.k, c.k, c.pad, c.pad, |_, _, _, _| true);
    let cost = linear_map(&lin, &lout, taps, (0.6, 1.0)).unwrap();
    let nd: usize = diagonal_offsets(
        &lin,
        &lout,
        conv_taps(c.co, c.ci, c.k, c.k, c.pad, c.pad, |_, _, _, _| true),
    )
    .iter()
    .map(|d| d.len())
    .sum();
    assert_eq!(cost.counts.mul_plain as usize, nd);
    assert_eq!(cost.depth, 1);
    assert_eq!(cost.counts.rescales as usize, lout.cts());
}

fn conv(co: usize, ci: usize, k: usize, stride: usize, pad: usize) -> Conv {
    let w = (0..co * ci * k * k).map(|i| pseudo(i + 7)).collect();
    Conv {
        co,
        ci,
        k,
        stride,
        pad,
        w,
    }
}

#[test]
fn conv3x3_stride1() {
    check(conv(4, 3, 3, 1, 1), Layout::image(3, 8, 8, 512).unwrap());
}

#[test]
fn conv3x3_stride2_channel_growth_multiplexed() {
    // 4 -> 8 channels at stride 2: output gap 2 packs 4 channels per grid.
    let lin = Layout::image(4, 8, 8, 256).unwrap();
    check(conv(8, 4, 3, 2, 1), lin);
    // Then a stride-1 conv on the multiplexed (gap 2) layout.
    let l2 = lin.strided(8, 4, 4, 2).unwrap();
    check(conv(8, 8, 3, 1, 1), l2);
    // And another stride 2 (gap 4).
    check(conv(16, 8, 3, 2, 1), l2);
}

#[test]
fn conv1x1_projection_stride2() {
    check(conv(8, 4, 1, 2, 0), Layout::image(4, 8, 8, 256).unwrap());
}

#[test]
fn several_ciphertexts() {
    // 64 slots hold one 8x8 grid: every channel is its own ciphertext.
    check(conv(3, 2, 3, 1, 1), Layout::image(2, 8, 8, 64).unwrap());
    check(conv(4, 2, 3, 2, 1), Layout::image(2, 8, 8, 64).unwrap());
}

#[test]
fn global_pool_is_level_free() {
    let l = Layout::image(16, 32, 32, 32768)
        .unwrap()
        .strided(64, 8, 8, 4)
        .unwrap();
    let (out, cost) = global_avg_pool(&l).unwrap();
    assert_eq!(cost.depth, 0);
    assert_eq!(cost.counts.rotations, 6);
    assert_eq!(out.height, 1);
    let _ = Tap {
        o: 0,
        i: 0,
        dy: 0,
        dx: 0,
    };
}

fn pool_then_dense(lin: Layout) {
    let (c, hw) = (lin.channels, lin.height * lin.width);
    let slots = lin.slots;
    let x: Vec<f64> = (0..c * hw).map(pseudo).collect();
    let x0 = pack(&lin, &x).remove(0);
    // Rotate-and-sum, following the schedule exactly.
    let (pooled, cost) = global_avg_pool(&lin).unwrap();
    let mut ct = x0.clone();
    let run = |ct: &mut Vec<f64>, n: usize, stride: i64| {
        let x = ct.clone();
        for s in sum_schedule(n) {
            match s {
                SumStep::Double(m) => {
                    let r = rot(ct, m as i64 * stride);
                    ct.iter_mut().zip(&r).for_each(|(a, b)| *a += b);
                }
                SumStep::AddOne => {
                    let r = rot(ct, stride);
                    *ct = x.iter().zip(&r).map(|(a, b)| a + b).collect();
                }
            }
        }
    };
    run(&mut ct, lin.height, (lin.gap * lin.base_w) as i64);
    run(&mut ct, lin.width, lin.gap as i64);
    let nrot = sum_schedule(lin.height).len() + sum_schedule(lin.width).len();
    assert_eq!(cost.counts.rotations as usize, nrot);
    // Dense c -> 3 with 1/(H W) folded in.
    let out = Layout::vector(3, slots);
    let w: Vec<f64> = (0..3 * c).map(|i| pseudo(i + 100)).collect();
    let taps: Vec<(Tap, f64)> = (0..3)
        .flat_map(|o| {
            let w = &w;
            (0..c).map(move |i| (Tap { o, i, dy: 0, dx: 0 }, w[o * c + i] / hw as f64))
        })
        .collect();
    let diags = linear_diagonals(&pooled, &out, 1, &taps);
    let mut y = vec![0.0; slots];
    for d in &diags {
        let r = rot(&ct, d.offset);
        for s in 0..slots {
            y[s] += d.values[s] * r[s];
        }
    }
    for o in 0..3 {
        let mean = |ch: usize| x[ch * hw..(ch + 1) * hw].iter().sum::<f64>() / hw as f64;
        let want: f64 = (0..c).map(|ch| w[o * c + ch] * mean(ch)).sum();
        assert!((y[o] - want).abs() < 1e-9, "logit {o}: {} vs {want}", y[o]);
    }
}

#[test]
fn global_pool_then_dense_on_multiplexed_layout() {
    // 8 channels of 4x4 at gap 2 on an 8x8 grid, 256 slots (4 planes).
    pool_then_dense(
        Layout::image(2, 8, 8, 256)
            .unwrap()
            .strided(8, 4, 4, 2)
            .unwrap(),
    );
    // MNIST-like: 7x7 at gap 4 on a 28x28 grid (not powers of two), all
    // planes full.
    pool_then_dense(
        Layout::image(1, 28, 28, 2048)
            .unwrap()
            .strided(32, 7, 7, 4)
            .unwrap(),
    );
}

#[test]
fn sum_schedule_counts() {
    for n in 1..40usize {
        let s = sum_schedule(n);
        let expect = if n == 1 {
            0
        } else {
            (usize::BITS - 1 - n.leading_zeros()) as usize + n.count_ones() as usize - 1
        };
        assert_eq!(s.len(), expect, "n = {n}");
    }
}
