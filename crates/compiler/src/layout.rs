//! Packing of tensors into CKKS slots and the cost of each layer on it.
//!
//! # Multiplexed packing
//!
//! A `[C, H, W]` feature map lives on a fixed *base grid* `Hb x Wb` (the
//! input image size, or larger when some map of the network needs more:
//! `Hb` is the largest `H * g` of any map, see [`crate::lower`]). At gap `g` (1 for the input, doubled by every stride-2
//! layer) pixel `(y, x)` of channel `c` sits at grid position
//! `(y*g + a, x*g + b)` where `(a, b)` enumerates the `g^2` channels that
//! share one grid ("multiplexed", as in Lee et al., ICML 2022), so a
//! downsampled map still fills the grid and never wastes slots. A ciphertext
//! holds `slots / (Hb*Wb)` grids ("planes"), so `planes * g^2` channels;
//! more channels spill to further ciphertexts:
//!
//! ```text
//! slot(c, y, x) = plane(c)*Hb*Wb + (y*g + a(c))*Wb + x*g + b(c)
//! plane(c) = (c / g^2) mod planes,  a(c) = (c mod g^2) / g,  b(c) = c mod g
//! ```
//!
//! # Linear layers
//!
//! Every linear layer (convolution of any kernel, stride and padding, 1x1
//! projections, average pooling, dense) is a slot-to-slot linear map. With
//! this packing and `g_out = g_in * stride`, the slot distance between an
//! input pixel and the output pixel it feeds does not depend on the pixel,
//! so the map is a sum of a few *diagonals* `diag_d * rot(x, d)`; padding is
//! a zero in the diagonal plaintexts. We enumerate the distinct `d` exactly,
//! then split them baby-step/giant-step (`d = giant + baby`): baby rotations
//! are hoisted (one decomposition per input ciphertext), giant rotations are
//! full key switches (one per output ciphertext). One plaintext multiply per
//! diagonal, one rescale per output ciphertext: one level per layer.
//!
//! Global average pooling is a level-free rotate-and-sum (its `1/(H*W)` is
//! folded into the next dense layer), leaving channel `c` at
//! `slot(c, 0, 0)`; the dense layer is then a linear map from those slots to
//! slots `0..n` of a vector layout.
//!
//! # Batching
//!
//! A layout of batch `B` holds `B` images in each ciphertext of `slots`
//! slots, *interleaved*: the single-image packing above is computed in a
//! block of `P = slots / B` slots, and slot `s` of image `b` sits at
//! `s * B + b`. A rotation by `k * B` then rotates every image's `P` slots
//! cyclically and on its own (`(s + k) mod P` stays in image `b`), so every
//! linear map, rotate-and-sum and polynomial of the single-image plan runs
//! unchanged on all `B` images at once: the same diagonals (each value
//! repeated `B` times), the same number of rotations with every step
//! multiplied by `B`, the same levels and bootstraps. No step ever reads
//! another image's slots. (Blocks at offsets `b * P` would not have this
//! property: a diagonal whose offset wraps around `P` in one image reads
//! the next image's block, so such layers need extra diagonals.)

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use crate::cost::OpCounts;
use crate::error::CompileError;

/// Why `batch` is no batch for `slots` slots (one line).
fn bad_batch(batch: usize, slots: usize) -> String {
    if batch.is_power_of_two() {
        format!("batch {batch} is more than the {slots} slots")
    } else {
        format!("batch {batch} is not a power of two (1 to {slots})")
    }
}

/// How one tensor sits in the slots of one or more ciphertexts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Layout {
    /// Channels (or vector length for a vector layout).
    pub channels: usize,
    /// Height in pixels (1 for vectors).
    pub height: usize,
    /// Width in pixels (1 for vectors).
    pub width: usize,
    /// Base grid height.
    pub base_h: usize,
    /// Base grid width.
    pub base_w: usize,
    /// Multiplexing gap.
    pub gap: usize,
    /// Slots per ciphertext.
    pub slots: usize,
    /// Images per ciphertext, interleaved (see the module docs); 1 when
    /// unbatched (then not written, so unbatched plans read as before).
    #[serde(default = "one", skip_serializing_if = "is_one")]
    pub batch: usize,
}

fn one() -> usize {
    1
}

fn is_one(b: &usize) -> bool {
    *b == 1
}

impl Layout {
    /// The layout of an input image `[C, H, W]`: gap 1, base grid `H x W`.
    ///
    /// Errors: an empty grid, a slot count that is not a power of two, or a
    /// grid larger than `slots`.
    pub fn image(
        channels: usize,
        height: usize,
        width: usize,
        slots: usize,
    ) -> Result<Self, CompileError> {
        Self::image_on_grid(channels, height, width, [height, width], slots)
    }

    /// The layout of an input image `[C, H, W]` at gap 1 on a base grid of
    /// `grid = [Hb, Wb]` pixels (at least `H x W`): a grid larger than the
    /// image leaves room for later maps that are larger than the input
    /// (padding wider than the kernel, ceil-mode pooling).
    ///
    /// Errors: as [`Layout::image`], or an image larger than the grid.
    pub fn image_on_grid(
        channels: usize,
        height: usize,
        width: usize,
        grid: [usize; 2],
        slots: usize,
    ) -> Result<Self, CompileError> {
        let l = Self {
            channels,
            height,
            width,
            base_h: grid[0],
            base_w: grid[1],
            gap: 1,
            slots,
            batch: 1,
        };
        l.check()?;
        Ok(l)
    }

    /// A vector of `n` values in slots `0..n` (spilling to more ciphertexts).
    pub fn vector(n: usize, slots: usize) -> Self {
        Self {
            channels: n,
            height: 1,
            width: 1,
            base_h: 1,
            base_w: 1,
            gap: 1,
            slots,
            batch: 1,
        }
    }

    /// The same packing with `batch` images interleaved in each ciphertext
    /// (see the module docs): every image gets a block of
    /// `slots / batch` slots.
    ///
    /// Errors: a batch that is not a power of two, or blocks too small for
    /// the grid.
    pub fn with_batch(self, batch: usize) -> Result<Self, CompileError> {
        if batch == 0 || !batch.is_power_of_two() || batch > self.slots {
            return Err(CompileError::Layout(bad_batch(batch, self.slots)));
        }
        let l = Self { batch, ..self };
        l.check()?;
        Ok(l)
    }

    /// Slots of one image: `slots / batch`.
    pub fn block(&self) -> usize {
        self.slots / self.batch.max(1)
    }

    fn check(&self) -> Result<(), CompileError> {
        let plane = self.base_h * self.base_w;
        if plane == 0 || self.slots == 0 || !self.slots.is_power_of_two() {
            return Err(CompileError::Layout("empty grid or bad slot count".into()));
        }
        if self.batch == 0 || !self.batch.is_power_of_two() || self.batch > self.slots {
            return Err(CompileError::Layout(bad_batch(self.batch, self.slots)));
        }
        if plane > self.block() {
            return Err(CompileError::Layout(format!(
                "a {}x{} grid does not fit {} slots",
                self.base_h,
                self.base_w,
                self.block()
            )));
        }
        if self.height * self.gap > self.base_h || self.width * self.gap > self.base_w {
            return Err(CompileError::Layout(format!(
                "{}x{} at gap {} exceeds the {}x{} grid",
                self.height, self.width, self.gap, self.base_h, self.base_w
            )));
        }
        Ok(())
    }

    /// Grids per ciphertext (per image when batched).
    pub fn planes(&self) -> usize {
        (self.block() / (self.base_h * self.base_w).max(1)).max(1)
    }

    /// Channels per ciphertext.
    pub fn channels_per_ct(&self) -> usize {
        self.planes() * self.gap * self.gap
    }

    /// The fewest slots (a power of two) that hold this tensor in the same
    /// single ciphertext and planes: the planes its channels occupy times
    /// the grid, or a vector's length, times the batch. A tensor that
    /// spills over several ciphertexts needs all of `slots`.
    pub fn slots_needed(&self) -> usize {
        if self.cts() > 1 {
            return self.slots;
        }
        let planes = self.channels.div_ceil(self.gap * self.gap).max(1);
        ((planes * self.base_h * self.base_w)
            .next_power_of_two()
            .min(self.block()))
            * self.batch.max(1)
    }

    /// Ciphertexts needed.
    pub fn cts(&self) -> usize {
        self.channels.div_ceil(self.channels_per_ct()).max(1)
    }

    /// `(ciphertext, slot)` of channel `c` at pixel `(y, x)` of image 0;
    /// `y`, `x` may be outside the map (for padding offsets), the formula
    /// extends linearly. Image `b` of a batch is at `slot + b`
    /// ([`Layout::slot_of`]).
    pub fn slot(&self, c: usize, y: i64, x: i64) -> (usize, i64) {
        let (ct, s) = self.block_slot(c, y, x);
        (ct, s * self.batch.max(1) as i64)
    }

    /// `(ciphertext, slot)` of channel `c` at pixel `(y, x)` of image `b`.
    pub fn slot_of(&self, b: usize, c: usize, y: i64, x: i64) -> (usize, i64) {
        let (ct, s) = self.slot(c, y, x);
        (ct, s + b as i64)
    }

    /// The slot distance between vertically adjacent pixels.
    pub fn row_stride(&self) -> i64 {
        (self.gap * self.base_w * self.batch.max(1)) as i64
    }

    /// The slot distance between horizontally adjacent pixels.
    pub fn col_stride(&self) -> i64 {
        (self.gap * self.batch.max(1)) as i64
    }

    /// The position within one image's block (the unbatched formula).
    fn block_slot(&self, c: usize, y: i64, x: i64) -> (usize, i64) {
        let g = self.gap as i64;
        let per = self.channels_per_ct();
        let ct = c / per;
        let local = c % per;
        let gg = self.gap * self.gap;
        let plane = (local / gg) as i64;
        let sub = local % gg;
        let a = (sub / self.gap) as i64;
        let b = (sub % self.gap) as i64;
        let plane_size = (self.base_h * self.base_w) as i64;
        let s = plane * plane_size + (y * g + a) * self.base_w as i64 + x * g + b;
        (ct, s)
    }

    /// The layout after a window op of this stride producing `channels` x
    /// `height` x `width`: same grid, gap times the stride.
    pub fn strided(
        &self,
        channels: usize,
        height: usize,
        width: usize,
        stride: usize,
    ) -> Result<Self, CompileError> {
        let l = Self {
            channels,
            height,
            width,
            gap: self.gap * stride,
            ..*self
        };
        l.check()?;
        Ok(l)
    }
}

/// One nonzero block of a linear map: output channel `o` at pixel `(Y, X)`
/// reads input channel `i` at pixel `(Y*stride + dy, X*stride + dx)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Tap {
    /// Output channel.
    pub o: usize,
    /// Input channel.
    pub i: usize,
    /// Row offset (in input pixels, padding already subtracted).
    pub dy: i64,
    /// Column offset.
    pub dx: i64,
}

/// The cost and keys of one layer on its layouts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LayerCost {
    /// Primitive counts (for all ciphertexts of the layer).
    pub counts: OpCounts,
    /// Levels consumed.
    pub depth: u32,
    /// Galois rotation steps needed (signed, in `(-slots/2, slots/2]`).
    pub rotation_steps: BTreeSet<i64>,
    /// Baby-step span chosen for the BSGS split (0 if not a linear map).
    pub bsgs_baby: usize,
    /// Whether the split is centred (see [`bsgs_split`]).
    pub bsgs_centred: bool,
    /// Every rotation the runtime performs for the layer, grouped as it
    /// performs them (per-step keys; `crate::plan::RotationKeys::counts`
    /// gives the counts under another key set).
    #[serde(default, skip_serializing_if = "RotationUses::is_empty")]
    pub rotation_uses: RotationUses,
}

/// The rotations of one layer as the runtime groups them: what the counts
/// of a layer under any set of rotation keys follow from.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RotationUses {
    /// Hoisted batches: per input ciphertext of a linear map, its distinct
    /// nonzero baby steps (signed, in `(-slots/2, slots/2]`), rotated off
    /// one shared decomposition.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub hoisted: Vec<Vec<i64>>,
    /// Full rotations (giant steps, rotate-and-sum): signed step -> how
    /// many times.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub full: BTreeMap<i64, u64>,
}

impl RotationUses {
    /// No rotation at all.
    pub fn is_empty(&self) -> bool {
        self.hoisted.is_empty() && self.full.is_empty()
    }
}

/// The distinct diagonal offsets `d` (in `0..slots`) of the linear map
/// given by `taps`, per `(input ciphertext, output ciphertext)` pair at
/// index `ci * out_cts + co`: output slot `s` reads input slot `s + d`.
/// Because `g_out = g_in * stride`, `d` does not depend on the pixel.
pub fn diagonal_offsets(
    lin: &Layout,
    lout: &Layout,
    taps: impl IntoIterator<Item = Tap>,
) -> Vec<Vec<i64>> {
    let slots = lin.slots as i64;
    let (nin, nout) = (lin.cts(), lout.cts());
    let mut diag: Vec<Vec<i64>> = vec![Vec::new(); nin * nout];
    for t in taps {
        let (ci, si) = lin.slot(t.i, t.dy, t.dx);
        let (co, so) = lout.slot(t.o, 0, 0);
        diag[ci * nout + co].push((si - so).rem_euclid(slots));
    }
    for d in &mut diag {
        d.sort_unstable();
        d.dedup();
    }
    diag
}

/// Signed representative of a rotation amount.
pub fn signed_step(d: i64, slots: usize) -> i64 {
    let s = slots as i64;
    let d = d.rem_euclid(s);
    if d > s / 2 { d - s } else { d }
}

/// Cost of a linear map given by `taps` from layout `lin` to `lout`
/// (output pixel `(Y, X)` reads `(Y*stride + dy, X*stride + dx)`).
///
/// Relative hoisted/full rotation weights `w_hoisted`/`w_full` drive the
/// baby-step span choice.
pub fn linear_map(
    lin: &Layout,
    lout: &Layout,
    taps: impl IntoIterator<Item = Tap>,
    weights: (f64, f64),
) -> Result<LayerCost, CompileError> {
    let slots = lin.slots;
    if lout.slots != slots {
        return Err(CompileError::Layout("slot counts differ".into()));
    }
    let (nin, nout) = (lin.cts(), lout.cts());
    let diag = diagonal_offsets(lin, lout, taps);
    let (wh, wf) = weights;
    // Choose the baby span (power of two; floor or centred split).
    let mut best: Option<(f64, usize, bool)> = None;
    let mut n1 = 1usize;
    while n1 <= slots {
        for centred in [false, true] {
            let (babies, giants) = split(&diag, nin, nout, n1, centred, slots);
            let c = wh * babies.iter().map(nonzero).sum::<usize>() as f64
                + wf * giants.iter().map(nonzero).sum::<usize>() as f64;
            if best.is_none_or(|(bc, _, _)| c < bc) {
                best = Some((c, n1, centred));
            }
        }
        n1 *= 2;
    }
    let (_, n1, centred) = best.expect("at least one split");
    let (babies, giants) = split(&diag, nin, nout, n1, centred, slots);
    let mut steps = BTreeSet::new();
    for set in babies.iter().chain(giants.iter()) {
        for &d in set {
            if d != 0 {
                steps.insert(signed_step(d, slots));
            }
        }
    }
    let mut uses = RotationUses::default();
    for set in &babies {
        let b: Vec<i64> = set
            .iter()
            .filter(|&&d| d != 0)
            .map(|&d| signed_step(d, slots))
            .collect();
        if !b.is_empty() {
            uses.hoisted.push(b);
        }
    }
    for set in &giants {
        for &d in set.iter().filter(|&&d| d != 0) {
            *uses.full.entry(signed_step(d, slots)).or_default() += 1;
        }
    }
    let pm: usize = diag.iter().map(|d| d.len()).sum();
    let counts = OpCounts {
        rotations: giants.iter().map(|g| nonzero(g) as u64).sum(),
        rotations_hoisted: babies.iter().map(|b| nonzero(b) as u64).sum(),
        mul_relin: 0,
        mul_plain: pm as u64,
        // Each term encoded where it is used; terms accumulate in place
        // (priced in `mul_plain`), giant-step groups are then added.
        encodes: pm as u64,
        adds: giants.iter().map(|g| nonzero(g) as u64).sum::<u64>(),
        rescales: nout as u64,
    };
    Ok(LayerCost {
        counts,
        depth: 1,
        rotation_steps: steps,
        bsgs_baby: n1,
        bsgs_centred: centred,
        rotation_uses: uses,
    })
}

fn nonzero(s: &BTreeSet<i64>) -> usize {
    s.iter().filter(|&&d| d != 0).count()
}

/// Splits a diagonal offset `d` into `(baby, giant)` rotation amounts (both
/// in `0..slots`, `baby + giant = d` mod slots) for baby span `n1`: the
/// remainder of `d` modulo `n1`, taken in `[-n1/2, n1/2)` if `centred`.
/// The runtime evaluates `sum_g rot_g(sum_b rot_{-g}(diag_{g+b}) * rot_b(x))`.
pub fn bsgs_split(d: i64, n1: usize, centred: bool, slots: usize) -> (i64, i64) {
    let n = n1.max(1) as i64;
    let s = slots as i64;
    let b = if centred {
        (d + n / 2).rem_euclid(n) - n / 2
    } else {
        d.rem_euclid(n)
    };
    (b.rem_euclid(s), (d - b).rem_euclid(s))
}

/// One plaintext diagonal of a linear layer: output ciphertext `ct_out`
/// gets `values * rot(input ciphertext ct_in, offset)`.
#[derive(Debug, Clone, PartialEq)]
pub struct Diagonal {
    /// Input ciphertext.
    pub ct_in: usize,
    /// Output ciphertext.
    pub ct_out: usize,
    /// Rotation amount, in `0..slots`.
    pub offset: i64,
    /// One value per slot (zero where the layer has no connection, which
    /// includes padding).
    pub values: Vec<f64>,
}

/// The plaintext diagonals of the linear map given by weighted taps (what
/// the runtime encodes): output pixel `(Y, X)` of channel `o` reads input
/// pixel `(Y*stride + dy, X*stride + dx)` of channel `i` with weight `w`;
/// reads outside the input are zero padding. Repeated taps add up (a
/// composed pool and convolution).
pub fn linear_diagonals(
    lin: &Layout,
    lout: &Layout,
    stride: usize,
    taps: &[(Tap, f64)],
) -> Vec<Diagonal> {
    linear_diagonals_scaled(lin, lout, stride, taps, None)
}

/// As [`linear_diagonals`], every weight that reaches output element
/// `(o, Y, X)` multiplied by `out_scale[(o*H + Y)*W + X]` (`H x W` the
/// output map; `None`: 1): a linear map whose weights vary with the output
/// pixel, such as an average pool whose divisor excludes the padding or an
/// element-wise scale (identity taps).
///
/// Panics if `out_scale` has fewer than `C * H * W` values of `lout`
/// (checked by the callers).
pub fn linear_diagonals_scaled(
    lin: &Layout,
    lout: &Layout,
    stride: usize,
    taps: &[(Tap, f64)],
    out_scale: Option<&[f64]>,
) -> Vec<Diagonal> {
    if let Some(f) = out_scale {
        assert!(
            f.len() >= lout.channels * lout.height * lout.width,
            "one output factor per element"
        );
    }
    let slots = lin.slots as i64;
    let mut index: std::collections::HashMap<(usize, usize, i64), usize> =
        std::collections::HashMap::new();
    let mut out: Vec<Diagonal> = Vec::new();
    for &(t, w) in taps {
        if w == 0.0 {
            continue;
        }
        for yy in 0..lout.height {
            for xx in 0..lout.width {
                let iy = (yy * stride) as i64 + t.dy;
                let ix = (xx * stride) as i64 + t.dx;
                if iy < 0 || ix < 0 || iy >= lin.height as i64 || ix >= lin.width as i64 {
                    continue;
                }
                let (ci, si) = lin.slot(t.i, iy, ix);
                let (co, so) = lout.slot(t.o, yy as i64, xx as i64);
                let d = (si - so).rem_euclid(slots);
                let k = *index.entry((ci, co, d)).or_insert_with(|| {
                    out.push(Diagonal {
                        ct_in: ci,
                        ct_out: co,
                        offset: d,
                        values: vec![0.0; lin.slots],
                    });
                    out.len() - 1
                });
                let f = out_scale.map_or(1.0, |f| f[(t.o * lout.height + yy) * lout.width + xx]);
                for b in 0..lout.batch.max(1) {
                    out[k].values[so as usize + b] += w * f;
                }
            }
        }
    }
    out.sort_by_key(|d| (d.ct_out, d.ct_in, d.offset));
    out
}

/// Baby sets per input ciphertext and giant sets per output ciphertext.
fn split(
    diag: &[Vec<i64>],
    nin: usize,
    nout: usize,
    n1: usize,
    centred: bool,
    slots: usize,
) -> (Vec<BTreeSet<i64>>, Vec<BTreeSet<i64>>) {
    let mut babies = vec![BTreeSet::new(); nin];
    let mut giants = vec![BTreeSet::new(); nout];
    for ci in 0..nin {
        for co in 0..nout {
            for &d in &diag[ci * nout + co] {
                let (b, g) = bsgs_split(d, n1, centred, slots);
                babies[ci].insert(b);
                giants[co].insert(g);
            }
        }
    }
    (babies, giants)
}

/// Taps of a 2-D convolution (`groups = 1`) with `c_out x c_in` kernel of
/// size `kh x kw`, padding `top`/`left`, skipping all-zero kernel slices if
/// `nonzero` says so.
pub fn conv_taps(
    c_out: usize,
    c_in: usize,
    kh: usize,
    kw: usize,
    pad_top: usize,
    pad_left: usize,
    nonzero: impl Fn(usize, usize, usize, usize) -> bool,
) -> Vec<Tap> {
    let mut v = Vec::with_capacity(c_out * c_in * kh * kw);
    for o in 0..c_out {
        for i in 0..c_in {
            for ky in 0..kh {
                for kx in 0..kw {
                    if nonzero(o, i, ky, kx) {
                        v.push(Tap {
                            o,
                            i,
                            dy: ky as i64 - pad_top as i64,
                            dx: kx as i64 - pad_left as i64,
                        });
                    }
                }
            }
        }
    }
    v
}

/// Taps of a depthwise average pool (channel `c` to channel `c`).
pub fn pool_taps(c: usize, kh: usize, kw: usize, pad_top: usize, pad_left: usize) -> Vec<Tap> {
    conv_taps(c, c, kh, kw, pad_top, pad_left, |o, i, _, _| o == i)
}

/// Tap `t` of a convolution composed with the average pool before it
/// (window `k x k`, stride `s`, padding `top`/`left`): one tap on the
/// pool's input per window position (rows, then columns), reading pixel
/// `(s*dy + py - top, s*dx + px - left)`.
pub fn pool_composed_taps(
    t: Tap,
    k: usize,
    s: usize,
    top: usize,
    left: usize,
) -> impl Iterator<Item = Tap> {
    (0..k).flat_map(move |py| {
        (0..k).map(move |px| Tap {
            o: t.o,
            i: t.i,
            dy: s as i64 * t.dy + py as i64 - top as i64,
            dx: s as i64 * t.dx + px as i64 - left as i64,
        })
    })
}

/// Tap of weight `j` of dense output `o` whose input is a `[C, h, w]` map
/// flattened (a plain vector is `h = w = 1`).
pub fn flat_tap(o: usize, j: usize, h: usize, w: usize) -> Tap {
    Tap {
        o,
        i: j / (h * w),
        dy: ((j / w) % h) as i64,
        dx: (j % w) as i64,
    }
}

/// One step of a rotate-and-sum schedule (see [`sum_schedule`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum SumStep {
    /// `T <- T + rot(T, m * stride)`: the window doubles from `m` to `2m`.
    Double(usize),
    /// `T <- x + rot(T, stride)`: the window grows by one (`x` the input).
    AddOne,
}

/// How to compute `T = sum_{j < n} rot(x, j * stride)` with
/// `floor(log2 n) + popcount(n) - 1` rotations: read the bits of `n` from
/// the top, doubling the window for every bit and adding one element for
/// every set bit. Works for any `n`, not only powers of two.
pub fn sum_schedule(n: usize) -> Vec<SumStep> {
    let mut out = Vec::new();
    if n <= 1 {
        return out;
    }
    let top = usize::BITS - 1 - n.leading_zeros();
    let mut m = 1usize;
    for bit in (0..top).rev() {
        out.push(SumStep::Double(m));
        m *= 2;
        if n >> bit & 1 == 1 {
            out.push(SumStep::AddOne);
            m += 1;
        }
    }
    debug_assert_eq!(m, n);
    out
}

/// Rotation steps of a [`sum_schedule`] with the given stride.
pub fn sum_schedule_steps(n: usize, stride: i64, slots: usize) -> Vec<i64> {
    sum_schedule(n)
        .iter()
        .map(|s| match s {
            SumStep::Double(m) => signed_step(*m as i64 * stride, slots),
            SumStep::AddOne => signed_step(stride, slots),
        })
        .collect()
}

/// Rotate-and-sum global average pool over `l` (level-free: the `1/(H*W)`
/// factor goes into the next linear layer): a [`sum_schedule`] over the
/// rows (stride [`Layout::row_stride`]), then over the columns (stride
/// [`Layout::col_stride`]). Leaves channel `c` at `slot(c, 0, 0)` of the
/// returned layout.
pub fn global_avg_pool(l: &Layout) -> Result<(Layout, LayerCost), CompileError> {
    let rows = sum_schedule_steps(l.height, l.row_stride(), l.slots);
    let cols = sum_schedule_steps(l.width, l.col_stride(), l.slots);
    let per_ct = (rows.len() + cols.len()) as u64;
    let cts = l.cts() as u64;
    let mut full = BTreeMap::new();
    for &k in rows.iter().chain(&cols) {
        *full.entry(k).or_insert(0u64) += cts;
    }
    let steps: BTreeSet<i64> = rows.into_iter().chain(cols).collect();
    let out = Layout {
        height: 1,
        width: 1,
        ..*l
    };
    Ok((
        out,
        LayerCost {
            counts: OpCounts {
                rotations: per_ct * cts,
                adds: per_ct * cts,
                ..Default::default()
            },
            depth: 0,
            rotation_steps: steps,
            bsgs_baby: 0,
            bsgs_centred: false,
            rotation_uses: RotationUses {
                hoisted: Vec::new(),
                full,
            },
        },
    ))
}

/// Levels of a polynomial of degree `k` evaluated at minimal depth
/// (Chebyshev basis, baby-step/giant-step): `ceil(log2(k + 1))`.
pub fn poly_depth(k: usize) -> u32 {
    let mut d = 0u32;
    while (1usize << d) < k + 1 {
        d += 1;
    }
    d
}

/// Cost of a polynomial activation of degree `k` on `cts` ciphertexts
/// (input scaling folded into the previous linear layer). Non-scalar
/// multiplications follow baby-step/giant-step Chebyshev evaluation:
/// `2^m - 1` baby powers (`m = ceil(depth / 2)`), `depth - m` giant powers,
/// and one product per giant block; small degrees are evaluated directly.
pub fn poly_act(k: usize, cts: usize) -> LayerCost {
    let depth = poly_depth(k);
    let relin = if k <= 1 {
        0
    } else if k <= 3 {
        k - 1
    } else {
        let m = depth.div_ceil(2);
        let babies = (1usize << m) - 1;
        let giants = (depth - m) as usize;
        let blocks = (k + 1).div_ceil(1 << m);
        babies + giants + blocks.saturating_sub(1)
    };
    let cts = cts as u64;
    LayerCost {
        counts: OpCounts {
            rotations: 0,
            rotations_hoisted: 0,
            mul_relin: relin as u64 * cts,
            mul_plain: (k as u64 + 1) * cts,
            encodes: 0,
            adds: k as u64 * cts,
            rescales: (relin as u64 + 1) * cts,
        },
        depth,
        rotation_steps: BTreeSet::new(),
        bsgs_baby: 0,
        bsgs_centred: false,
        rotation_uses: RotationUses::default(),
    }
}

/// Cost of a completed-square quadratic activation on `cts` ciphertexts
/// (`crate::lower::fuse_squares`): a constant added, one square with
/// relinearization and rescale, a constant added; depth 1.
pub fn square_act(cts: usize) -> LayerCost {
    let cts = cts as u64;
    LayerCost {
        counts: OpCounts {
            mul_relin: cts,
            adds: 2 * cts,
            rescales: cts,
            ..Default::default()
        },
        depth: 1,
        rotation_steps: BTreeSet::new(),
        bsgs_baby: 0,
        bsgs_centred: false,
        rotation_uses: RotationUses::default(),
    }
}

/// Cost of an element-wise addition of `cts` ciphertexts.
pub fn add(cts: usize) -> LayerCost {
    LayerCost {
        counts: OpCounts {
            adds: cts as u64,
            ..Default::default()
        },
        depth: 0,
        rotation_steps: BTreeSet::new(),
        bsgs_baby: 0,
        bsgs_centred: false,
        rotation_uses: RotationUses::default(),
    }
}
