//! Bootstrapping: refreshes a level-0 ciphertext to L_eff levels.
//!
//! Pipeline (Cheon et al.; Bossuat et al. for the structure and the sparse
//! encapsulation):
//! 1. switch the level-0 ciphertext to a sparse ephemeral secret s' (Hamming
//!    weight h), so that after ModRaise the overflow I(X) in t = m + q_0 I is
//!    bounded by a small K;
//! 2. ModRaise to the top level and switch back to the main secret s;
//! 3. CoeffsToSlots: V^{-1} (as a few sparse-diagonal transforms) puts the
//!    coefficients t_k / (q_0 K) into slots (bit-reversed order), split into
//!    real and imaginary parts with one conjugation;
//! 4. EvalMod: t/q_0 mod 1, as sin(2 pi x) / 2 pi, evaluated as a Chebyshev
//!    approximation of a scaled cosine followed by r double-angle steps;
//! 5. SlotsToCoeffs: V (sparse-diagonal transforms) back to the coefficient
//!    encoding, landing at the default scale.
//!
//! Security of the encapsulation: the only object under the sparse secret is
//! the switching key s -> s', and it lives modulo q_0 * P only (a few hundred
//! bits at N = 2^16), where a weight-h ternary secret is far inside the
//! secure region; the main secret stays uniform ternary, so the 128-bit bound
//! on log QP applies to every key under it.

use crate::ciphertext::Ciphertext;
use crate::dft;
use crate::encoding::Encoder;
use crate::error::{CkksError, Result};
use crate::evaluator::{EvaluationKeys, Evaluator};
use crate::keys::{
    GaloisKeys, KeyGenerator, RelinKey, SecretKey, SwitchingKey, conjugation_element,
    rotation_element,
};
use crate::keyswitch;
use crate::linear::{DiagonalStorage, EncodedTransform, LinearTransform, signed_offset};
use crate::params::Params;
use crate::ring::Poly;
use crate::sampling;
use rayon::prelude::*;
use rustfft::num_complex::Complex64;
use std::sync::Arc;
use zeroize::Zeroizing;

/// How a parameter set bootstraps.
#[derive(Clone, Debug, serde::Serialize)]
pub struct BootstrapConfig {
    /// Levels spent by CoeffsToSlots (merged butterfly groups).
    pub c2s_levels: usize,
    /// Levels spent by SlotsToCoeffs.
    pub s2c_levels: usize,
    /// Bound on |I| + 1 in t = m + q_0 I (sparse ephemeral secret).
    pub k: f64,
    /// Double-angle steps after the cosine approximation.
    pub double_angle: u32,
    /// Degree of the Chebyshev approximation of the scaled cosine.
    pub cheb_degree: usize,
    /// Hamming weight of the ephemeral sparse secret.
    pub h: usize,
    /// log2(q_0 / scaled message): before ModRaise the level-0 ciphertext is
    /// multiplied by an integer so that its scale is q_0 / 2^this. Smaller
    /// values make EvalMod's absolute error smaller relative to the message;
    /// larger ones keep sin(2 pi x) closer to 2 pi x.
    pub log_message_ratio: u32,
    /// Slots of the ciphertexts to refresh: N/2 (full) or a smaller power of
    /// two (sparse packing, period `slots`; a trace first projects the raised
    /// polynomial onto the subring the message lives in).
    pub slots: usize,
    /// The share of the [`PRECISION_BITS`] error budget left to the sine's
    /// departure from the identity, as bits: [`Self::input_bound`] is the
    /// slot magnitude at which that departure is 2^-this; EvalMod's noise
    /// takes the rest. Set per parameter set from its measured worst-slot
    /// noise (`docs/benchmarks.md`, the bootprec example): 21 at N = 2^12
    /// (noise about half the budget), 23.5 at N = 2^16 (noise 2^-20.1 to
    /// 2^-20.3 worst slot with 8192 sparse slots: nearly all of it).
    pub sine_error_bits: f64,
    /// Sparse packing with fewer slots than this keeps the message 2^2
    /// further below q_0 ([`Self::with_slots`]). Few slots mean large
    /// plaintext coefficients for a message of random slots (their RMS
    /// grows as 1/sqrt(slots)), so the sine's departure from the identity,
    /// not EvalMod's noise, then sets the precision. Measured with
    /// `residue bench ckks --ops bootstrap --slots S --log-message-ratio R`
    /// (`docs/benchmarks.md`, "Session 19"): at N = 2^16 ratio 8 beats 10
    /// from 1024 slots up (24.6 against 23.9 bits mean at 1024, 23.6
    /// against 21.6 at 16384) and loses at 256 (22.3 against 24.8), so
    /// 1024 there; at N = 2^12 ratio 10 wins at 64 slots (23.9 against
    /// 19.9), and every sparse count keeps 10 there.
    pub small_slots: usize,
}

impl BootstrapConfig {
    /// The same configuration for sparse packing with `slots` slots. Below
    /// [`Self::small_slots`] slots the message is kept 2^2 further below
    /// q_0 (`log_message_ratio` at least 10): the plaintext coefficients of
    /// a message with few slots are larger.
    pub fn with_slots(mut self, slots: usize, max_slots: usize) -> Self {
        if slots < max_slots && slots < self.small_slots {
            self.log_message_ratio = self.log_message_ratio.max(10);
        }
        self.slots = slots;
        self
    }

    /// Whether the real and imaginary halves of CoeffsToSlots' output share
    /// one ciphertext of `2 * slots` real values, so that EvalMod runs once
    /// instead of twice: possible when `2 * slots` fit (sparse packing with
    /// `slots <= N/4`; Bossuat et al., Eurocrypt 2021, section 5).
    pub fn packed(&self, max_slots: usize) -> bool {
        2 * self.slots <= max_slots
    }

    /// Fails with [`CkksError::InvalidSlots`] or
    /// [`CkksError::InvalidParams`] unless `params` can run this
    /// configuration and it can give the right result: a power-of-two slot
    /// count in `2..=N/2`; at least one CoeffsToSlots and one SlotsToCoeffs
    /// level; a finite K >= 1; a Chebyshev degree in `1..=1023`; at most 16
    /// double angles; a Hamming weight in `1..=N`; a message ratio that
    /// leaves a scale of at least 2^10 below q_0; and fewer levels than the
    /// set has. Too few slots for the transform levels ([`min_slots`]) are
    /// refused by [`Bootstrapper::new`].
    pub fn check(&self, params: &Params) -> Result<()> {
        if !self.slots.is_power_of_two() || self.slots > params.max_slots() || self.slots < 2 {
            return Err(CkksError::InvalidSlots(self.slots));
        }
        let bad = |what: String| Err(CkksError::InvalidParams(format!("bootstrapping: {what}")));
        if self.c2s_levels == 0 || self.s2c_levels == 0 {
            return bad("CoeffsToSlots and SlotsToCoeffs need at least one level each".into());
        }
        if !(self.k.is_finite() && self.k >= 1.0) {
            return bad(format!("K = {} is not a finite number >= 1", self.k));
        }
        if !(1..=1023).contains(&self.cheb_degree) {
            return bad(format!(
                "Chebyshev degree {} outside 1..=1023",
                self.cheb_degree
            ));
        }
        if self.double_angle > 16 {
            return bad(format!("{} double angles (at most 16)", self.double_angle));
        }
        if self.h == 0 || self.h > params.n {
            return bad(format!("Hamming weight {} outside 1..=N", self.h));
        }
        let log_q0 = (params.q[0] as f64).log2();
        if self.log_message_ratio as f64 > log_q0 - 10.0 {
            return bad(format!(
                "message ratio 2^{} leaves less than 2^10 of scale below q_0 = 2^{log_q0:.1}",
                self.log_message_ratio
            ));
        }
        if !(self.sine_error_bits.is_finite() && self.sine_error_bits > PRECISION_BITS) {
            return bad(format!(
                "sine error budget 2^-{} is not below the precision 2^-{PRECISION_BITS}",
                self.sine_error_bits
            ));
        }
        if self.depth() >= params.max_level() {
            return bad(format!(
                "{} levels needed, `{}` has {}",
                self.depth(),
                params.name(),
                params.max_level()
            ));
        }
        Ok(())
    }

    /// The documented bound on the slot magnitudes of a bootstrap's input:
    /// within it, every input keeps [`PRECISION_BITS`] whatever its
    /// spectrum. The sine's departure from the identity gets 2^-`sine_error_bits`
    /// of that error budget (`input_bound(self, self.sine_error_bits)`),
    /// EvalMod's noise the rest. At N = 2^12: about 0.17 at full slots
    /// (`log_message_ratio` 8) and 0.42 for sparse packing (10); at
    /// N = 2^16: 0.094 (ratio 8, full slots and sparse packing from 1024
    /// slots) and 0.238 below 1024 slots (10). The compiler scales values into it; it
    /// cannot be checked on encrypted values.
    pub fn input_bound(&self) -> f64 {
        input_bound(self, self.sine_error_bits)
    }

    /// Levels consumed by EvalMod.
    pub fn evalmod_levels(&self) -> usize {
        crate::polyeval::depth(self.cheb_degree) + self.double_angle as usize
    }

    /// Total levels consumed by one bootstrap.
    pub fn depth(&self) -> usize {
        self.c2s_levels + self.evalmod_levels() + self.s2c_levels
    }
}

/// The bootstrapping configuration of a named parameter set, if it has one.
pub fn config_for(params: &Params) -> Option<BootstrapConfig> {
    let base = BootstrapConfig {
        c2s_levels: 4,
        s2c_levels: 3,
        k: 12.0,
        double_angle: 3,
        cheb_degree: 31,
        h: 32,
        log_message_ratio: 8,
        slots: params.max_slots(),
        sine_error_bits: 23.5,
        small_slots: 1024,
    };
    match params.name() {
        "n16-boot" | "n16-boot-l11" | "n16-boot-l13" => Some(base),
        "insecure-boot-n12" | "insecure-boot-n12-l9" => Some(BootstrapConfig {
            c2s_levels: 3,
            s2c_levels: 2,
            sine_error_bits: 21.0,
            small_slots: usize::MAX,
            ..base
        }),
        _ => None,
    }
    .filter(|c| c.depth() < params.max_level())
}

/// The precision bootstrapping is documented to keep for every input whose
/// slot magnitudes are within [`BootstrapConfig::input_bound`], whatever its
/// spectrum: the largest absolute slot error is at most 2^-`PRECISION_BITS`
/// (measured on the insecure N = 2^12 sets and on `n16-boot` at full and
/// 8192 slots: `docs/benchmarks.md`).
pub const PRECISION_BITS: f64 = 20.0;

/// The bound B on slot magnitudes under which bootstrapping's EvalMod
/// (sin(2 pi x) / (2 pi) in place of x) keeps its error below 2^-`bits` for
/// every input, constant vectors included: B^3 (2 pi)^2 / (6 * 2^(2r)) =
/// 2^-bits with r = `log_message_ratio` (see [`Bootstrapper::bootstrap`]).
/// The polynomial approximation and the noise add to this error.
pub fn input_bound(cfg: &BootstrapConfig, bits: f64) -> f64 {
    let two_pi = 2.0 * std::f64::consts::PI;
    let r = cfg.log_message_ratio as f64;
    (6.0 * 2f64.powf(2.0 * r - bits) / (two_pi * two_pi)).cbrt()
}

/// The fewest slots `cfg` bootstraps: its CoeffsToSlots and SlotsToCoeffs
/// levels each need a butterfly stage, `log2(slots)` of which exist.
pub fn min_slots(cfg: &BootstrapConfig) -> usize {
    1usize << cfg.c2s_levels.max(cfg.s2c_levels).max(1)
}

/// Levels left for computation after a bootstrap.
pub fn levels_after(params: &Params, cfg: &BootstrapConfig) -> usize {
    params.max_level() - cfg.depth()
}

/// The level computation starts at, where a fresh input is encrypted:
/// what a bootstrap leaves ([`levels_after`]) for a set that bootstraps,
/// the top level otherwise. Above it sit the bootstrapping primes (large,
/// 56-60 bits): rescaling by one of them against a 2^40 scale would
/// collapse the scale, so ordinary computation never runs there.
pub fn working_level(params: &Params) -> usize {
    config_for(params).map_or(params.max_level(), |c| levels_after(params, &c))
}

/// The highest level a fresh input can be encrypted at and computed on at
/// the set's scale: [`working_level`] plus the bootstrapping primes right
/// above it that are as large as the scale (within one bit), whose levels
/// ordinary computation can use before the first bootstrap. In the named
/// sets those are SlotsToCoeffs' primes (40 bits against a 2^40 scale; the
/// first bootstrap, like every later one, lands below them): `n16-boot`
/// encrypts at level 12 for 9 levels after each bootstrap. The larger
/// EvalMod and CoeffsToSlots primes above them stay reserved. For a set
/// that does not bootstrap this is its top level.
pub fn fresh_level(params: &Params) -> usize {
    let w = working_level(params);
    let log_scale = params.literal.log_scale;
    let bits = params.literal.q_bits;
    (w + 1..=params.max_level())
        .take_while(|&l| bits[l].abs_diff(log_scale) <= 1)
        .last()
        .unwrap_or(w)
}

/// w = 1 - 1/(4K): EvalMod's even polynomial is evaluated at
/// v = (y - 1/(4K)) / w, which lies in [-1, 1] for y K in
/// [-(K - 1/2), K]. That holds every input whose overflow |I| is at most
/// K - 1 (what K bounds; y K = I + m / q_0 with |m / q_0| far below 1/2),
/// with a margin of at least 1/2 on either side.
fn evalmod_half_width(cfg: &BootstrapConfig) -> f64 {
    1.0 - 0.25 / cfg.k
}

/// EvalMod's polynomial: the Chebyshev interpolant on [-1, 1], of degree at
/// most `cheb_degree`, of g(v) = cos(2 pi K w v / 2^r) with w
/// `evalmod_half_width` and r the double angles.
///
/// Why this form. The scaled sine is sin(2 pi K y) = cos(2 pi (K y - 1/4)),
/// computed as the cosine of 2^-r of that angle followed by r double angles
/// (Han and Ki, "Better bootstrapping for approximate homomorphic
/// encryption", CT-RSA 2020). cos(2 pi (K y - 1/4) / 2^r) is a cosine of
/// K (y - 1/(4K)), an even function of the shifted input u = y - 1/(4K).
/// Interpolating it in y gives a polynomial with all 32 coefficients
/// nonzero (degree 31); in v = u / w the interval is symmetric, the odd
/// coefficients vanish (exactly zero after
/// [`crate::polyeval::Chebyshev::interpolate`]'s parity test), and the
/// evaluation needs only even Chebyshev polynomials: 9 ciphertext
/// multiplications and 8 relinearizations instead of 13 and 10 at degree
/// 31, at the same depth (`depth(30) = depth(31) = 5`).
///
/// The interval. The unshifted polynomial covered y in [-1, 1]; centring
/// the cosine and keeping that whole interval would need w = 1 + 1/(4K),
/// which raises the cosine's frequency by 2% and (at degree 30) doubles
/// the approximation error. With w = 1 - 1/(4K) the interval still holds
/// every |I| <= K - 1, the frequency falls by 2%, and the error after the
/// double angles at the inputs EvalMod sees (y K within 2^-10 of an
/// integer) is below the unshifted degree-31 polynomial's: 3.2e-13 largest
/// and 1.1e-13 RMS, against 6.5e-13 and 1.6e-13 (K = 12, r = 3, f64).
pub fn evalmod_polynomial(cfg: &BootstrapConfig) -> Result<crate::polyeval::Chebyshev> {
    let r = cfg.double_angle;
    let kw = cfg.k * evalmod_half_width(cfg);
    let p = crate::polyeval::Chebyshev::interpolate(
        move |v: f64| (2.0 * std::f64::consts::PI * kw * v / 2f64.powi(r as i32)).cos(),
        -1.0,
        1.0,
        cfg.cheb_degree,
    )?;
    Ok(p.with_parity(crate::polyeval::Parity::Even))
}

/// Switching keys of the sparse-secret encapsulation.
#[derive(Clone)]
pub struct BootstrapKeys {
    /// Encrypts s under the sparse s', modulo q_0 * P only.
    pub(crate) to_sparse: SwitchingKey,
    /// Encrypts s' under s.
    pub(crate) from_sparse: SwitchingKey,
    /// [`Params::id`] of the set the keys were made (or read) for.
    pub(crate) params_id: u64,
}

impl BootstrapKeys {
    /// [`Params::id`] of the parameter set these keys belong to.
    pub fn params_id(&self) -> u64 {
        self.params_id
    }

    /// Bytes of key material.
    pub fn size_bytes(&self) -> usize {
        self.to_sparse.size_bytes() + self.from_sparse.size_bytes()
    }
}

/// Every way to cut `total` stages into `parts` nonempty consecutive groups.
fn compositions(total: usize, parts: usize) -> Vec<Vec<usize>> {
    if parts == 0 || total < parts {
        return Vec::new();
    }
    if parts == 1 {
        return vec![vec![total]];
    }
    (1..=total - parts + 1)
        .flat_map(|first| {
            compositions(total - first, parts - 1)
                .into_iter()
                .map(move |mut rest| {
                    rest.insert(0, first);
                    rest
                })
        })
        .collect()
}

/// A map's cost from its diagonal offsets alone (the same
/// baby-step/giant-step plan [`LinearTransform::bsgs_plan`] makes), in
/// units of one diagonal product, each term weighted by the limbs of
/// Q_l * P it runs on: a giant step 29 (its own ModUp, inner product and
/// two ModDowns), a baby step 6 (inner product and automorphism on the
/// shared ModUp), a diagonal 1. The ratios are the n16-boot kernel profile
/// of a full-slot CoeffsToSlots (docs/data/boot16-s12-t1.json: 83 ms a
/// ModUp, 18 an inner product, 20 a ModDown, 4.5 an automorphism, 5.4 a
/// diagonal product). Returns [that cost, key switches times the limbs of
/// Q_l they run on, plaintext limbs held].
fn planned_cost(params: &Params, offsets: Vec<usize>, slots: usize, level: usize) -> [usize; 3] {
    let (babies, giants) = crate::linear::bsgs_plan(offsets, slots);
    let nonzero = |r: i64| r.rem_euclid(slots as i64) != 0;
    let b = babies.iter().filter(|&&j| nonzero(j)).count();
    let g = giants.keys().filter(|&&g| nonzero(g)).count();
    let d: usize = giants.values().map(|t| t.len()).sum();
    let limbs = giants
        .values()
        .flatten()
        .map(|&(j, _)| level + 1 + if j == 0 { 0 } else { params.p.len() })
        .sum();
    [
        (29 * g + 6 * b + d) * (level + 1 + params.p.len()),
        (g + b) * (level + 1),
        limbs,
    ]
}

/// Offsets of [`first_half`] of a map on `n` slots with offsets `offs`.
fn first_half_offsets(offs: &[usize], n: usize) -> Vec<usize> {
    let mut v: Vec<usize> = offs
        .iter()
        .map(|&r| signed_offset(r, n).rem_euclid(2 * n as i64) as usize)
        .collect();
    v.sort_unstable();
    v.dedup();
    v
}

/// Offsets of [`unpack_halves`] of a map on `n` slots with offsets `offs`.
fn unpack_halves_offsets(offs: &[usize], n: usize) -> Vec<usize> {
    let m = 2 * n as i64;
    let mut v: Vec<usize> = offs
        .iter()
        .flat_map(|&r| {
            let s = signed_offset(r, n);
            [
                s.rem_euclid(m) as usize,
                (s + n as i64).rem_euclid(m) as usize,
            ]
        })
        .collect();
    v.sort_unstable();
    v.dedup();
    v
}

/// [`planned_cost`] summed over the CoeffsToSlots (`c2s`) or
/// SlotsToCoeffs maps of `cfg` cut into groups of `sizes` stages.
fn stage_cost(params: &Params, cfg: &BootstrapConfig, c2s: bool, sizes: &[usize]) -> [usize; 3] {
    let n = cfg.slots;
    let packed = cfg.packed(params.max_slots());
    let lenhs = if c2s {
        dft::c2s_half_lengths(n)
    } else {
        dft::s2c_half_lengths(n)
    };
    let mut it = lenhs.into_iter();
    let last = sizes.len().saturating_sub(1);
    let mut total = [0; 3];
    for (i, &k) in sizes.iter().enumerate() {
        let offs = dft::merged_offsets(n, &it.by_ref().take(k).collect::<Vec<_>>());
        let (offs, slots, level) = match (c2s, packed) {
            (true, true) if i == last => {
                (first_half_offsets(&offs, n), 2 * n, params.max_level() - i)
            }
            (true, _) => (offs, n, params.max_level() - i),
            (false, true) if i == 0 => (
                unpack_halves_offsets(&offs, n),
                2 * n,
                s2c_level(params, cfg),
            ),
            (false, _) => (offs, n, s2c_level(params, cfg) - i),
        };
        let c = planned_cost(params, offs, slots, level);
        for (t, x) in total.iter_mut().zip(c) {
            *t += x;
        }
    }
    total
}

/// How many butterfly stages each CoeffsToSlots and each SlotsToCoeffs
/// map merges, in application order.
///
/// Full-slot: nearly equal groups, longer first for CoeffsToSlots (its
/// first map holds the half-length n/2 stage, whose offsets +n/2 and -n/2
/// coincide) and shorter first for SlotsToCoeffs (its last map holds that
/// stage; Lattigo orders its merges the same way).
///
/// Packed sparse ([`BootstrapConfig::packed`]): among the cuts of the
/// log2(slots) stages into `c2s_levels` (`s2c_levels`) groups whose maps
/// make no more key switches weighted by level than the full-slot maps of
/// that stage and hold no more plaintext limbs than they do or than the
/// nearly equal cut (longer groups first, as Lattigo) does, the one that costs least by
/// a model of the kernels (`planned_cost`); if none is, the one with the
/// fewest weighted key switches, then limbs. Costed from the diagonal
/// offsets, before any diagonal is computed. Why packing needs its own
/// cut: it doubles every diagonal of the first SlotsToCoeffs map (each also
/// reads the other half of the slots, `unpack_halves`), which runs at the
/// highest SlotsToCoeffs level, so that map wants few stages. A group of k
/// stages of half-lengths below n/2 has 2^(k+1) - 1 diagonals, one holding
/// the n/2 stage 2^k. Before this choice (equal groups, longer first) the
/// 16384-slot bootstrap of n16-boot merged 5, 5, 4 stages in
/// SlotsToCoeffs: 126 + 63 + 16 diagonals and 44 key switches, against
/// 63 + 63 + 32 and 39 at full slots.
pub fn dft_groups(params: &Params, cfg: &BootstrapConfig) -> (Vec<usize>, Vec<usize>) {
    let stages = cfg.slots.trailing_zeros() as usize;
    let default = |c: &BootstrapConfig| {
        let st = c.slots.trailing_zeros() as usize;
        let mut s2c = dft::split(st, c.s2c_levels);
        s2c.reverse();
        (dft::split(st, c.c2s_levels), s2c)
    };
    if !cfg.packed(params.max_slots()) || stages < cfg.c2s_levels.max(cfg.s2c_levels) {
        // (too few stages: the caller refuses the configuration)
        return default(cfg);
    }
    let mut full = cfg.clone();
    full.slots = params.max_slots();
    let (full_c2s, full_s2c) = default(&full);
    let (eq_c2s, eq_s2c) = default(cfg);
    let best = |c2s: bool, levels: usize, full_sizes: &[usize], equal: &[usize]| {
        let bound = stage_cost(params, &full, c2s, full_sizes);
        // no more diagonal bytes than the nearly equal cut either
        let limbs = stage_cost(params, cfg, c2s, equal)[2].min(bound[2]);
        let mut pick: Option<(bool, [usize; 3], Vec<usize>)> = None;
        for sizes in compositions(stages, levels) {
            let c = stage_cost(params, cfg, c2s, &sizes);
            let fits = c[1] <= bound[1] && c[2] <= limbs;
            let better = match &pick {
                None => true,
                Some((f, b, _)) => match (fits, *f) {
                    (true, false) => true,
                    (false, true) => false,
                    (true, true) => (c[0], c[2]) < (b[0], b[2]),
                    (false, false) => (c[1], c[2]) < (b[1], b[2]),
                },
            };
            if better {
                pick = Some((fits, c, sizes));
            }
        }
        pick.map(|p| p.2).expect("stages >= levels")
    };
    (
        best(true, cfg.c2s_levels, &full_c2s, &eq_c2s),
        best(false, cfg.s2c_levels, &full_s2c, &eq_s2c),
    )
}

fn transforms(
    params: &Params,
    cfg: &BootstrapConfig,
    sigma: f64,
) -> (Vec<LinearTransform>, Vec<LinearTransform>) {
    let n = cfg.slots;
    let gap = (params.max_slots() / n) as f64;
    let q0 = params.q[0] as f64;
    let (c2s_sizes, s2c_sizes) = dft_groups(params, cfg);
    // the trace multiplies the coefficients by the gap; divide it out here
    let mut c2s = dft::coeffs_to_slots_grouped(
        n,
        &c2s_sizes,
        Complex64::new(sigma / (2.0 * q0 * cfg.k * gap), 0.0),
    );
    // factor q0 / (2 pi Delta_in) is applied at run time via the scale
    let mut s2c = dft::slots_to_coeffs_grouped(n, &s2c_sizes, Complex64::new(1.0, 0.0));
    if cfg.packed(params.max_slots()) {
        if let Some(last) = c2s.last_mut() {
            *last = first_half(last);
        }
        if let Some(first) = s2c.first_mut() {
            *first = unpack_halves(first);
        }
    }
    (c2s, s2c)
}

/// (u + conj u, -i (u - conj u)): twice the real and imaginary parts of
/// CoeffsToSlots' output, one conjugation.
fn split_halves(eval: &Evaluator, u: &Ciphertext) -> Result<(Ciphertext, Ciphertext)> {
    let cj = eval.conjugate(u)?;
    let re = eval.add(u, &cj)?;
    let im = eval.neg(&eval.mul_by_i(&eval.sub(u, &cj)?)?)?;
    Ok((re, im))
}

/// The `n`-slot map `t` as a `2n`-slot map on `n`-periodic input whose
/// output is `t`'s in slots `0..n` and zero in `n..2n` (the mask costs no
/// level: it is folded into the diagonals).
fn first_half(t: &LinearTransform) -> LinearTransform {
    let n = t.slots;
    let mut out = LinearTransform {
        slots: 2 * n,
        diags: Default::default(),
    };
    let zero = Complex64::new(0.0, 0.0);
    for (&r, d) in &t.diags {
        let masked = (0..2 * n)
            .map(|j| if j < n { d[j] } else { zero })
            .collect();
        out.add_diagonal(signed_offset(r, n), masked);
    }
    out
}

/// The `n`-slot map `t` applied to `u = v[0..n) + i v[n..2n)`, as a
/// `2n`-slot map on the real vector `v`; its output is `t u`, `n`-periodic.
///
/// For output slot j and offset s, `u[(j+s) mod n]` reads `v[j+s] + i
/// v[j+s+n]` when `(j+s) mod 2n < n`, else `i v[j+s] + v[j+s+n]`: every
/// diagonal of `t` becomes two, at offsets s and s + n.
fn unpack_halves(t: &LinearTransform) -> LinearTransform {
    let n = t.slots;
    let m = 2 * n;
    let mut out = LinearTransform {
        slots: m,
        diags: Default::default(),
    };
    let one = Complex64::new(1.0, 0.0);
    let i = Complex64::new(0.0, 1.0);
    for (&r, d) in &t.diags {
        let s = signed_offset(r, n);
        let (mut a, mut b) = (Vec::with_capacity(m), Vec::with_capacity(m));
        for j in 0..m {
            let low = (j as i64 + s).rem_euclid(m as i64) < n as i64;
            let (alpha, beta) = if low { (one, i) } else { (i, one) };
            a.push(d[j % n] * alpha);
            b.push(d[j % n] * beta);
        }
        out.add_diagonal(s, a);
        out.add_diagonal(s + n as i64, b);
    }
    out
}

/// Rotations of the trace onto the sparse subring: n, 2n, ..., N/4.
fn trace_rotations(params: &Params, cfg: &BootstrapConfig) -> Vec<i64> {
    let mut r = Vec::new();
    let mut k = cfg.slots;
    while k < params.max_slots() {
        r.push(k as i64);
        k *= 2;
    }
    r
}

/// What one CoeffsToSlots or SlotsToCoeffs transform costs, read off its
/// baby-step/giant-step plan: no keys and no encoding needed.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct TransformCost {
    /// `"c2s"` or `"s2c"`.
    pub stage: &'static str,
    /// Level the transform runs at (its key switches are at this level).
    pub level: usize,
    /// Slots the map acts on (`2 * slots` for a packed bootstrap's last
    /// CoeffsToSlots and first SlotsToCoeffs map).
    pub slots: usize,
    /// Butterfly stages merged into the map ([`dft_groups`]).
    pub stages: usize,
    /// Nonzero diagonals (one encoded plaintext each).
    pub diagonals: usize,
    /// Nonzero baby rotations (hoisted: they share one ModUp).
    pub babies: usize,
    /// Nonzero giant rotations.
    pub giants: usize,
    /// Bytes of the encoded diagonals in NTT form
    /// ([`DiagonalStorage::Ntt`], as [`EncodedTransform::size_bytes`]).
    pub bytes: usize,
}

impl TransformCost {
    /// Key switches (baby plus giant rotations), as
    /// [`EncodedTransform::key_switches`].
    pub fn key_switches(&self) -> usize {
        self.babies + self.giants
    }
}

fn transform_cost(
    params: &Params,
    stage: &'static str,
    level: usize,
    stages: usize,
    t: &LinearTransform,
) -> TransformCost {
    let (babies, giants) = t.bsgs_plan();
    let limbs_q = level + 1;
    let limbs_p = params.p.len();
    let bytes = giants
        .values()
        .flatten()
        .map(|&(j, _)| {
            let limbs = if j == 0 { limbs_q } else { limbs_q + limbs_p };
            8 * params.n * limbs
        })
        .sum();
    let nonzero = |r: i64| r.rem_euclid(t.slots as i64) != 0;
    TransformCost {
        stage,
        level,
        slots: t.slots,
        stages,
        diagonals: t.diags.len(),
        babies: babies.iter().filter(|&&j| nonzero(j)).count(),
        giants: giants.keys().filter(|&&g| nonzero(g)).count(),
        bytes,
    }
}

/// The cost of every CoeffsToSlots and SlotsToCoeffs transform of `cfg`, in
/// application order, planned without keys (the maps only).
pub fn transform_costs(params: &Params, cfg: &BootstrapConfig) -> Vec<TransformCost> {
    let (c2s, s2c) = transforms(params, cfg, 1.0);
    let (c2s_sizes, s2c_sizes) = dft_groups(params, cfg);
    let top = params.max_level();
    let low = s2c_level(params, cfg);
    c2s.iter()
        .zip(&c2s_sizes)
        .enumerate()
        .map(|(i, (t, &k))| transform_cost(params, "c2s", top - i, k, t))
        .chain(
            s2c.iter()
                .zip(&s2c_sizes)
                .enumerate()
                .map(|(i, (t, &k))| transform_cost(params, "s2c", low - i, k, t)),
        )
        .collect()
}

/// The key switches a bootstrap makes outside the transforms and EvalMod,
/// with their levels: the trace's rotations (top level), the conjugation
/// that separates the real and imaginary halves, and for a packed bootstrap
/// the rotation that packs them (both after CoeffsToSlots).
pub fn other_key_switches(params: &Params, cfg: &BootstrapConfig) -> Vec<(&'static str, usize)> {
    let top = params.max_level();
    let after = top - cfg.c2s_levels;
    let mut out: Vec<(&'static str, usize)> = trace_rotations(params, cfg)
        .into_iter()
        .map(|_| ("trace", top))
        .collect();
    out.push(("conjugation", after));
    if cfg.packed(params.max_slots()) {
        out.push(("pack", after));
    }
    out
}

/// Every rotation offset bootstrapping needs a Galois key for (plus conjugation).
pub fn rotations(params: &Params, cfg: &BootstrapConfig) -> Vec<i64> {
    let mut r: Vec<i64> = rotation_levels(params, cfg)
        .into_iter()
        .map(|(k, _)| k)
        .collect();
    r.sort_unstable();
    r.dedup();
    r
}

/// Level at which SlotsToCoeffs starts (its first rotations run there).
pub fn s2c_level(params: &Params, cfg: &BootstrapConfig) -> usize {
    levels_after(params, cfg) + cfg.s2c_levels
}

/// Each rotation offset bootstrapping needs, with the highest level it is
/// used at: the trace and CoeffsToSlots run at the top level, SlotsToCoeffs
/// at [`s2c_level`] and below, so its keys can be that much smaller.
pub fn rotation_levels(params: &Params, cfg: &BootstrapConfig) -> Vec<(i64, usize)> {
    let (c2s, s2c) = transforms(params, cfg, 1.0);
    let top = params.max_level();
    let low = s2c_level(params, cfg);
    let mut r: Vec<(i64, usize)> = c2s
        .iter()
        .flat_map(|t| t.rotations())
        .chain(trace_rotations(params, cfg))
        .map(|k| (k, top))
        .collect();
    r.extend(s2c.iter().flat_map(|t| t.rotations()).map(|k| (k, low)));
    r
}

/// The Galois keys [`KeyGenerator::bootstrap_keys`] makes for `cfg` (no
/// extra rotations): each element once, with the highest level its key
/// serves ([`rotation_levels`], and conjugation, which follows
/// CoeffsToSlots, at the top level), sorted by element.
pub fn galois_levels(params: &Params, cfg: &BootstrapConfig) -> Vec<(u64, usize)> {
    let mut at: std::collections::BTreeMap<u64, usize> = Default::default();
    let top = params.max_level();
    for (g, l) in rotation_levels(params, cfg)
        .into_iter()
        .map(|(k, l)| (rotation_element(params, k), l))
        .chain(std::iter::once((conjugation_element(params), top)))
        .filter(|&(g, _)| g != 1)
    {
        let e = at.entry(g).or_insert(l);
        *e = (*e).max(l);
    }
    at.into_iter().collect()
}

/// Everything the server needs to bootstrap, generated by the client.
pub struct BootstrapKeySet {
    /// Relinearization and Galois keys (rotations of C2S/S2C plus `extra_rotations`, conjugation).
    pub eval: EvaluationKeys,
    /// The encapsulation keys.
    pub boot: BootstrapKeys,
}

impl KeyGenerator {
    /// Generates relinearization, Galois and encapsulation keys for bootstrapping,
    /// plus Galois keys for `extra_rotations` the computation itself needs.
    pub fn bootstrap_keys(
        &mut self,
        sk: &SecretKey,
        cfg: &BootstrapConfig,
        extra_rotations: &[i64],
    ) -> BootstrapKeySet {
        self.follow(sk);
        let p = sk.params().clone();
        let top = p.max_level();
        // The extra rotations may be used anywhere.
        let mut at = galois_levels(&p, cfg);
        at.extend(
            extra_rotations
                .iter()
                .map(|&k| (rotation_element(&p, k), top))
                .filter(|&(g, _)| g != 1),
        );
        let relin: RelinKey = self.relin_key(sk);
        let galois: GaloisKeys = self.galois_keys_from(sk, &at, false).0;
        let all: Vec<usize> = (0..p.q.len() + p.p.len()).collect();
        let sparse = Zeroizing::new(sampling::sparse_ternary(p.n, cfg.h, self.rng()));
        let sp = Zeroizing::new(sampling::small_to_ntt(&p, &sparse, &all));
        let to_sparse = self.switching_key_to_level(&sk.poly, &sp, 0);
        let from_sparse = self.switching_key(&sp, &sk.poly);
        BootstrapKeySet {
            eval: EvaluationKeys {
                relin: Some(relin),
                galois: Some(galois),
            },
            boot: BootstrapKeys {
                to_sparse,
                from_sparse,
                params_id: p.id,
            },
        }
    }
}

/// (input level, input scale, delta_in, output scale; scales as bit patterns).
type S2cKey = (usize, u64, u64, u64);

/// Bootstraps ciphertexts of one parameter set (server side).
pub struct Bootstrapper {
    keys: BootstrapKeys,
    /// Everything else: shareable with bootstrappers of other keys.
    t: BootstrapTransforms,
}

impl BootstrapTransforms {
    /// How the diagonals are held.
    pub fn storage(&self) -> DiagonalStorage {
        self.storage
    }

    /// The slots the bootstrapper refreshes.
    pub fn slots(&self) -> usize {
        self.cfg.slots
    }

    /// [`Params::id`] of the set they were encoded for.
    pub fn params_id(&self) -> u64 {
        self.params.id
    }

    /// Bytes of the encoded diagonals (as [`Bootstrapper::transform_bytes`]).
    pub fn size_bytes(&self) -> usize {
        let c2s: usize = self.c2s.iter().map(|t| t.size_bytes()).sum();
        let s2c: usize = self
            .s2c_cache
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .values()
            .flat_map(|v| v.iter())
            .map(|t| t.size_bytes())
            .sum();
        c2s + s2c
    }
}

type S2cCache = std::sync::Mutex<std::collections::HashMap<S2cKey, Arc<Vec<EncodedTransform>>>>;

/// What a [`Bootstrapper`] holds besides its keys: the encoded DFT
/// diagonals (CoeffsToSlots, and the SlotsToCoeffs encodings made so far)
/// and the EvalMod polynomial. They depend on the parameter set, the
/// configuration and the [`DiagonalStorage`] only, so bootstrappers of
/// several clients' keys can share one copy
/// ([`Bootstrapper::transforms`], [`Bootstrapper::from_transforms`]):
/// gigabytes per client at N = 2^16 in NTT form.
#[derive(Clone)]
pub struct BootstrapTransforms {
    params: Arc<Params>,
    cfg: BootstrapConfig,
    sigma: f64,
    c2s: Arc<Vec<EncodedTransform>>,
    s2c: Arc<Vec<LinearTransform>>,
    /// SlotsToCoeffs encodings by (input level, input scale, delta_in, output
    /// scale): deterministic for a given input, so encoded once.
    s2c_cache: Arc<S2cCache>,
    cheb: crate::polyeval::Chebyshev,
    storage: DiagonalStorage,
}

impl Bootstrapper {
    /// Prepares the encoded transforms and the EvalMod polynomial.
    ///
    /// Errors: keys of another parameter set ([`CkksError::ParamsMismatch`]),
    /// a slot count that is not a power of two in `2..=N/2`
    /// ([`CkksError::InvalidSlots`]), and a configuration the set cannot
    /// run or that cannot be right ([`CkksError::InvalidParams`]; see
    /// [`BootstrapConfig::check`]), including fewer slots than
    /// [`min_slots`].
    pub fn new(params: Arc<Params>, cfg: BootstrapConfig, keys: BootstrapKeys) -> Result<Self> {
        Self::with_storage(params, cfg, keys, DiagonalStorage::Ntt)
    }

    /// [`Self::new`], holding the CoeffsToSlots and SlotsToCoeffs diagonals
    /// as `storage` says: [`DiagonalStorage::Coefficients`] keeps about
    /// 1/25 of their memory at `n16-boot` (gigabytes at N = 2^16) and
    /// expands each diagonal at every bootstrap (one NTT per limb and
    /// diagonal); the results are bit-identical. Same errors as
    /// [`Self::new`].
    pub fn with_storage(
        params: Arc<Params>,
        cfg: BootstrapConfig,
        keys: BootstrapKeys,
        storage: DiagonalStorage,
    ) -> Result<Self> {
        if keys.params_id != params.id {
            return Err(CkksError::ParamsMismatch);
        }
        cfg.check(&params)?;
        let top = params.max_level();
        let sigma = params.q[top - cfg.c2s_levels] as f64;
        let (c2s_t, s2c) = transforms(&params, &cfg, sigma);
        // log2(slots) butterfly stages cannot fill more levels than that:
        // fewer transforms than configured would leave the output at another
        // level than `levels_after` says (and wrong)
        if c2s_t.len() != cfg.c2s_levels || s2c.len() != cfg.s2c_levels {
            return Err(CkksError::InvalidParams(format!(
                "{} slots give {} CoeffsToSlots and {} SlotsToCoeffs transforms, the \
                 configuration spends {} and {} levels: use at least 2^{} slots",
                cfg.slots,
                c2s_t.len(),
                s2c.len(),
                cfg.c2s_levels,
                cfg.s2c_levels,
                cfg.c2s_levels.max(cfg.s2c_levels)
            )));
        }
        let enc = Encoder::new(params.clone());
        let c2s = c2s_t
            .iter()
            .enumerate()
            .map(|(i, t)| t.encode_with(&enc, top - i, sigma, sigma, storage))
            .collect::<Result<Vec<_>>>()?;
        let cheb = evalmod_polynomial(&cfg)?;
        Ok(Self {
            keys,
            t: BootstrapTransforms {
                params,
                cfg,
                sigma,
                c2s: Arc::new(c2s),
                s2c: Arc::new(s2c),
                s2c_cache: Default::default(),
                cheb,
                storage,
            },
        })
    }

    /// Whether this bootstrapper and `other` hold the same encoded
    /// diagonals (one copy, [`Self::from_transforms`]).
    pub fn shares_transforms_with(&self, other: &Bootstrapper) -> bool {
        Arc::ptr_eq(&self.t.c2s, &other.t.c2s) && Arc::ptr_eq(&self.t.s2c_cache, &other.t.s2c_cache)
    }

    /// The key-independent part of this bootstrapper, to share with
    /// bootstrappers of other keys ([`Self::from_transforms`]).
    pub fn transforms(&self) -> BootstrapTransforms {
        self.t.clone()
    }

    /// A bootstrapper for `keys` that shares `t`'s encoded diagonals (and
    /// SlotsToCoeffs cache) instead of encoding its own; the same results
    /// as [`Self::with_storage`] with `t`'s set, configuration and storage.
    ///
    /// Errors: keys of another parameter set ([`CkksError::ParamsMismatch`]).
    pub fn from_transforms(t: &BootstrapTransforms, keys: BootstrapKeys) -> Result<Self> {
        if keys.params_id != t.params.id {
            return Err(CkksError::ParamsMismatch);
        }
        Ok(Self { keys, t: t.clone() })
    }

    /// Fails with [`CkksError::ParamsMismatch`] unless `eval` and `ct`
    /// belong to this bootstrapper's parameter set.
    fn same_set(&self, eval: &Evaluator, ct: &Ciphertext) -> Result<()> {
        if eval.params().id != self.t.params.id || ct.params_id != self.t.params.id {
            return Err(CkksError::ParamsMismatch);
        }
        Ok(())
    }

    /// Bytes held by the encoded CoeffsToSlots diagonals and by the
    /// SlotsToCoeffs encodings cached so far (one per input level and scale
    /// seen).
    pub fn transform_bytes(&self) -> usize {
        self.t.size_bytes()
    }

    /// The diagonal storage in use.
    pub fn storage(&self) -> DiagonalStorage {
        self.t.storage
    }

    /// How many SlotsToCoeffs encodings are cached (one per distinct input
    /// level and scale seen so far; each costs an encoding of every
    /// SlotsToCoeffs diagonal on first use).
    pub fn s2c_encodings(&self) -> usize {
        self.t
            .s2c_cache
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .len()
    }

    /// The configuration.
    pub fn config(&self) -> &BootstrapConfig {
        &self.t.cfg
    }

    /// The documented bound on input slot magnitudes
    /// ([`BootstrapConfig::input_bound`]).
    pub fn input_bound(&self) -> f64 {
        self.t.cfg.input_bound()
    }

    /// Levels left after a bootstrap.
    pub fn levels_after(&self) -> usize {
        levels_after(&self.t.params, &self.t.cfg)
    }

    fn mod_raise(&self, c: &Poly) -> Poly {
        let p = &self.t.params;
        let n = p.n;
        let mut c0 = c.limb(0).to_vec();
        p.ring.intt(0, &mut c0);
        let m0 = p.ring.moduli[0];
        let centered: Vec<i64> = c0.iter().map(|&x| m0.centered(x)).collect();
        let top = p.max_level();
        let mut out = Poly::zero(n, top + 1);
        out.data
            .par_chunks_mut(n)
            .enumerate()
            .for_each(|(i, limb)| {
                let m = p.ring.moduli[i];
                limb.iter_mut()
                    .zip(&centered)
                    .for_each(|(o, &x)| *o = m.from_i64(x));
                p.ring.ntt(i, limb);
            });
        out
    }

    /// ModRaise under the sparse secret and switch back: top-level ciphertext
    /// of t = Delta m + e + q_0 I with declared scale sigma.
    pub fn raise(&self, eval: &Evaluator, ct: &Ciphertext) -> Result<Ciphertext> {
        self.same_set(eval, ct)?;
        let p = &self.t.params;
        if ct.degree() != 1 {
            return Err(CkksError::Degree(ct.degree(), 1));
        }
        let ct = eval.drop_level(ct, 0)?;
        let (a0, a1) = keyswitch::key_switch(p, &ct.c[1], 0, &self.keys.to_sparse);
        let mut c0 = ct.c[0].clone();
        p.ring.add_assign(&mut c0, &a0, &[0]);
        let top = p.max_level();
        let idx = p.q_idx(top);
        let r0 = self.mod_raise(&c0);
        let r1 = self.mod_raise(&a1);
        let (b0, b1) = keyswitch::key_switch(p, &r1, top, &self.keys.from_sparse);
        let mut c0 = r0;
        p.ring.add_assign(&mut c0, &b0, &idx);
        Ok(Ciphertext {
            c: vec![c0, b1],
            level: top,
            scale: self.t.sigma,
            slots: self.t.cfg.slots,
            params_id: p.id,
        })
    }

    /// Projects a raised sparse-packed ciphertext onto the subring of its
    /// slots (sum of the automorphisms fixing it); multiplies coefficients by N/(2 slots).
    fn trace(&self, eval: &Evaluator, ct: &Ciphertext) -> Result<Ciphertext> {
        let mut x = ct.clone();
        for r in trace_rotations(&self.t.params, &self.t.cfg) {
            // by a multiple of the slot count: not reduced modulo it, as
            // `rotate` would (the raised polynomial is not yet periodic)
            let g = rotation_element(&self.t.params, r);
            x = eval.add(&x, &eval.apply_galois(&x, g)?)?;
        }
        Ok(x)
    }

    /// Whether this bootstrapper packs both coefficient halves into one
    /// ciphertext for EvalMod ([`BootstrapConfig::packed`]).
    pub fn is_packed(&self) -> bool {
        self.t.cfg.packed(self.t.params.max_slots())
    }

    /// The trace and the CoeffsToSlots transforms, before the real and
    /// imaginary parts are separated.
    fn c2s_transforms(&self, eval: &Evaluator, ct: &Ciphertext) -> Result<Ciphertext> {
        self.same_set(eval, ct)?;
        let mut u = self.trace(eval, ct)?;
        for t in self.t.c2s.iter() {
            u = t.apply(eval, &u)?;
        }
        Ok(u)
    }

    /// CoeffsToSlots: returns the real and imaginary coefficient halves,
    /// t_k / (q_0 K), in bit-reversed slot order.
    ///
    /// Errors: a packed bootstrapper ([`Self::is_packed`]) gives
    /// [`CkksError::Domain`]; use [`Self::coeffs_to_slots_packed`].
    pub fn coeffs_to_slots(
        &self,
        eval: &Evaluator,
        ct: &Ciphertext,
    ) -> Result<(Ciphertext, Ciphertext)> {
        if self.is_packed() {
            return Err(CkksError::Domain(
                "this bootstrapper packs both halves: use coeffs_to_slots_packed".into(),
            ));
        }
        let u = self.c2s_transforms(eval, ct)?;
        split_halves(eval, &u)
    }

    /// CoeffsToSlots for sparse packing with `slots <= N/4`: one ciphertext
    /// of `2 * slots` real slots, the real halves of the coefficients in
    /// slots `0..slots` and the imaginary halves in `slots..2 slots` (the
    /// last transform leaves `slots..2 slots` empty; one conjugation and one
    /// rotation by `slots` fill it). EvalMod then runs once.
    ///
    /// Errors: a bootstrapper that does not pack ([`CkksError::Domain`]).
    pub fn coeffs_to_slots_packed(&self, eval: &Evaluator, ct: &Ciphertext) -> Result<Ciphertext> {
        if !self.is_packed() {
            return Err(CkksError::Domain(
                "this bootstrapper does not pack: use coeffs_to_slots".into(),
            ));
        }
        let n = self.t.cfg.slots;
        let mut u = self.c2s_transforms(eval, ct)?;
        u.slots = 2 * n;
        let (re, im) = split_halves(eval, &u)?;
        eval.add(&re, &eval.rotate(&im, n as i64)?)
    }

    /// EvalMod: sin(2 pi K y) for y = t / (q_0 K), i.e. 2 pi (t / q_0 mod 1) for small remainders.
    ///
    /// Computed as cos(2 pi K (y - 1/(4K)) / 2^r) (an even polynomial in
    /// v = (y - 1/(4K)) / w, see [`evalmod_polynomial`]) followed by r
    /// double angles cos(2a) = 2 cos(a)^2 - 1. The shift is a constant
    /// addition and the division by w only changes the recorded scale, so
    /// neither costs a level; the polynomial is even, which saves about a
    /// third of its ciphertext multiplications. Consumes exactly
    /// [`BootstrapConfig::evalmod_levels`] levels. Accurate for y K in
    /// [-(K - 1/2), K] (every overflow |I| <= K - 1, the bound K stands
    /// for); outside the result is meaningless.
    pub fn eval_mod(&self, eval: &Evaluator, ct: &Ciphertext) -> Result<Ciphertext> {
        self.same_set(eval, ct)?;
        let cfg = &self.t.cfg;
        let need = cfg.evalmod_levels();
        if ct.level < need {
            return Err(CkksError::NotEnoughLevels {
                needed: need,
                have: ct.level,
            });
        }
        let opts = crate::polyeval::PolyEvalOptions {
            input_normalized: true,
            output_scale: Some(ct.scale),
            ..Default::default()
        };
        // v = (y - 1/(4K)) / w: the constant at the input's scale, then the
        // same ciphertext read at a scale w times the input's (exact, no
        // level).
        let mut v = eval.add_const(ct, -0.25 / cfg.k)?;
        v.scale = ct.scale * evalmod_half_width(cfg);
        let mut c = eval.eval_chebyshev(&v, &self.t.cheb, &opts)?;
        // The even interpolant has degree cheb_degree or cheb_degree - 1,
        // the same depth except at cheb_degree = 1 (a constant): land where
        // `evalmod_levels` says in every case.
        let poly_level = ct.level - crate::polyeval::depth(cfg.cheb_degree);
        if c.level > poly_level {
            c = eval.drop_level(&c, poly_level)?;
        }
        for _ in 0..self.t.cfg.double_angle {
            let sq = eval.mul_relin_rescale(&c, &c)?;
            c = eval.add_const(&eval.mul_int_raw(&sq, 2), -1.0)?;
        }
        Ok(c)
    }

    /// SlotsToCoeffs on re + i im, scaled back to the message and landing at `out_scale`.
    ///
    /// Errors: a packed bootstrapper ([`CkksError::Domain`]; use
    /// [`Self::slots_to_coeffs_packed`]).
    pub fn slots_to_coeffs(
        &self,
        eval: &Evaluator,
        re: &Ciphertext,
        im: &Ciphertext,
        delta_in: f64,
        out_scale: f64,
    ) -> Result<Ciphertext> {
        if self.is_packed() {
            return Err(CkksError::Domain(
                "this bootstrapper packs both halves: use slots_to_coeffs_packed".into(),
            ));
        }
        let w = eval.add(re, &eval.mul_by_i(im)?)?;
        self.s2c_transforms(eval, w, delta_in, out_scale)
    }

    /// SlotsToCoeffs on the output of [`Self::coeffs_to_slots_packed`]
    /// after EvalMod (`2 * slots` real values): the first transform reads
    /// both halves, the result has `slots` slots.
    ///
    /// Errors: a bootstrapper that does not pack ([`CkksError::Domain`]).
    pub fn slots_to_coeffs_packed(
        &self,
        eval: &Evaluator,
        v: &Ciphertext,
        delta_in: f64,
        out_scale: f64,
    ) -> Result<Ciphertext> {
        if !self.is_packed() {
            return Err(CkksError::Domain(
                "this bootstrapper does not pack: use slots_to_coeffs".into(),
            ));
        }
        let mut w = v.clone();
        w.slots = 2 * self.t.cfg.slots;
        self.s2c_transforms(eval, w, delta_in, out_scale)
    }

    fn s2c_transforms(
        &self,
        eval: &Evaluator,
        w: Ciphertext,
        delta_in: f64,
        out_scale: f64,
    ) -> Result<Ciphertext> {
        self.same_set(eval, &w)?;
        let key = (
            w.level,
            w.scale.to_bits(),
            delta_in.to_bits(),
            out_scale.to_bits(),
        );
        let cached = self
            .t
            .s2c_cache
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(&key)
            .cloned();
        let encoded = match cached {
            Some(e) => e,
            None => {
                let e = Arc::new(self.encode_s2c(w.level, w.scale, delta_in, out_scale)?);
                self.t
                    .s2c_cache
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .insert(key, e.clone());
                e
            }
        };
        let mut x = w;
        for t in encoded.iter() {
            x = t.apply(eval, &x)?;
            // after a packed bootstrap's first transform the message is
            // `slots`-periodic again
            x.slots = self.t.cfg.slots;
        }
        Ok(x)
    }

    fn encode_s2c(
        &self,
        level: usize,
        in_scale: f64,
        delta_in: f64,
        out_scale: f64,
    ) -> Result<Vec<EncodedTransform>> {
        let enc = Encoder::new(self.t.params.clone());
        let factor = self.t.params.q[0] as f64 / (2.0 * std::f64::consts::PI * delta_in);
        // Spread the scale change evenly over the transforms, so that no
        // diagonal is encoded at a tiny plaintext scale (precision).
        let steps = self.t.s2c.len();
        let ratio = (out_scale / in_scale).powf(1.0 / steps as f64);
        let mut scale = in_scale;
        let mut out = Vec::with_capacity(steps);
        for (i, t) in self.t.s2c.iter().enumerate() {
            let mut t = t.clone();
            if i == 0 {
                t.scale(Complex64::new(factor, 0.0));
            }
            let next = if i + 1 == steps {
                out_scale
            } else {
                scale * ratio
            };
            out.push(t.encode_with(&enc, level - i, scale, next, self.t.storage)?);
            scale = next;
        }
        Ok(out)
    }

    /// Multiplies a ciphertext by an integer (no level used) so that its scale
    /// is about q_0 / 2^log_message_ratio, drops it to level 0.
    ///
    /// An input whose scale is above that target is lowered to it first by
    /// [`Evaluator::adjust`] (one level) when it has a level to spare; at
    /// level 0 it is refused ([`CkksError::ScaleOutOfBounds`]): EvalMod
    /// would lose most of its precision on it.
    pub fn prescale(&self, eval: &Evaluator, ct: &Ciphertext) -> Result<Ciphertext> {
        self.same_set(eval, ct)?;
        let target = self.t.params.q[0] as f64 / 2f64.powi(self.t.cfg.log_message_ratio as i32);
        let ct = if ct.scale > target * (1.0 + crate::evaluator::SCALE_TOLERANCE) {
            if ct.level == 0 {
                return Err(CkksError::ScaleOutOfBounds(format!(
                    "bootstrap: level-0 input at scale 2^{:.1}, above q_0 / 2^{} = 2^{:.1}; \
                     bootstrap it at level >= 1 (its scale is lowered first) or at a lower scale",
                    ct.scale.log2(),
                    self.t.cfg.log_message_ratio,
                    target.log2()
                )));
            }
            eval.adjust(ct, 0, target)?
        } else {
            eval.drop_level(ct, 0)?
        };
        let k = (target / ct.scale).floor();
        if k < 2.0 {
            return Ok(ct);
        }
        let mut out = eval.mul_int_raw(&ct, k as i64);
        out.scale = ct.scale * k;
        Ok(out)
    }

    /// Refreshes a ciphertext: returns it at `levels_after()` levels and the
    /// default scale, with the same slot values.
    ///
    /// # Input domain
    ///
    /// Slot magnitudes must stay within [`Self::input_bound`] (at N = 2^12
    /// about 0.17 at full slots, 0.42 for sparse packing; at N = 2^16 0.094
    /// from 1024 slots up and 0.238 below); within it the largest
    /// absolute slot error is at most 2^-[`PRECISION_BITS`] for every input,
    /// whatever its spectrum (measured on the N = 2^12 sets with random,
    /// constant and single-spike inputs: `docs/benchmarks.md`,
    /// `cargo run --release -p ckks --example bootprec`).
    ///
    /// Why a bound, and why this one: EvalMod computes sin(2 pi x) / (2 pi)
    /// for x = m_k / 2^r (r = `log_message_ratio`, m_k a coefficient of the
    /// message; |m_k| <= B whatever the spectrum, with equality for a
    /// constant vector, which puts all its energy in one coefficient), whose
    /// relative error is about (2 pi m_k / 2^r)^2 / 6. At magnitude 1 a
    /// constant keeps 13 bits at r = 8; random vectors, whose coefficients
    /// are about B / sqrt(slots), keep far more. Beyond 2^r / 4 the sine is
    /// no longer monotone and the result is meaningless. Scaling the input
    /// by 2^-s is the same as raising r by s: the sine's error falls by
    /// 2^-2s relative to the message, and EvalMod's noise, fixed in units
    /// of q_0, grows by 2^s relative to it. The bound puts the sine's error
    /// at 2^-21 for a constant vector, half the 20-bit budget, and leaves the
    /// other half to the noise. Relative to the bound itself (what a caller
    /// that scales its values into it sees) that is about 18.5 bits for a
    /// constant vector at full slots.
    ///
    /// Encrypted values cannot be checked: the bound is the caller's (the
    /// compiler knows the ranges and folds a factor into the previous
    /// layer). What is checked: the parameter set of `eval` and `ct`, the
    /// slot count, and the input scale ([`Self::prescale`]).
    pub fn bootstrap(&self, eval: &Evaluator, ct: &Ciphertext) -> Result<Ciphertext> {
        self.same_set(eval, ct)?;
        if ct.slots != self.t.cfg.slots {
            return Err(CkksError::Domain(format!(
                "this bootstrapper refreshes {}-slot ciphertexts; ciphertext has {}",
                self.t.cfg.slots, ct.slots
            )));
        }
        let ct = self.prescale(eval, ct)?;
        let raised = self.raise(eval, &ct)?;
        if self.is_packed() {
            let v = self.coeffs_to_slots_packed(eval, &raised)?;
            let v = self.eval_mod(eval, &v)?;
            return self.slots_to_coeffs_packed(eval, &v, ct.scale, self.t.params.default_scale());
        }
        let (re, im) = self.coeffs_to_slots(eval, &raised)?;
        // The two real halves are independent: evaluated side by side, so
        // that a second thread has work beside each half's key switches.
        let (re, im) = rayon::join(|| self.eval_mod(eval, &re), || self.eval_mod(eval, &im));
        let (re, im) = (re?, im?);
        self.slots_to_coeffs(eval, &re, &im, ct.scale, self.t.params.default_scale())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every named set rescales by primes of about its scale at and below its
    /// working level, so the scale stays put there (the bootstrapping
    /// primes, 56-60 bits, sit above it).
    #[test]
    fn working_level_primes_match_the_scale() {
        for lit in crate::PARAM_SETS {
            let p = Params::named(lit.name).unwrap();
            let w = working_level(&p);
            assert!(w >= 1 && w <= p.max_level(), "{}", lit.name);
            for l in 1..=w {
                let bits = lit.q_bits[l];
                assert!(
                    bits.abs_diff(lit.log_scale) <= 1,
                    "{}: q_{l} has {bits} bits, scale 2^{}",
                    lit.name,
                    lit.log_scale
                );
            }
        }
    }

    /// The fresh level reaches through SlotsToCoeffs' scale-sized primes and
    /// stops below the first large one; every prime up to it matches the
    /// scale.
    #[test]
    fn fresh_level_uses_the_scale_sized_bootstrapping_primes() {
        for (name, want) in [
            ("n16-boot", 12),
            ("n16-boot-l11", 14),
            ("n16-boot-l13", 16),
            ("insecure-boot-n12-l9", 10),
            ("insecure-boot-n12", 4),
            ("n15-q760", 14),
        ] {
            let p = Params::named(name).unwrap();
            let f = fresh_level(&p);
            assert_eq!(f, want, "{name}");
            assert!(f >= working_level(&p));
            for l in 1..=f {
                assert!(
                    p.literal.q_bits[l].abs_diff(p.literal.log_scale) <= 1,
                    "{name} q_{l}"
                );
            }
            if f < p.max_level() {
                assert!(
                    p.literal.q_bits[f + 1].abs_diff(p.literal.log_scale) > 1,
                    "{name}"
                );
            }
        }
    }

    /// Sparse packing keeps the full-slot message ratio at N = 2^16 from
    /// `small_slots` up and 10 below it; at N = 2^12 every sparse count
    /// keeps 10 (session 19's measurements, `docs/benchmarks.md`).
    #[test]
    fn sparse_message_ratio_by_slot_count() {
        let p = Params::named("n16-boot").unwrap();
        let (cfg, max) = (config_for(&p).unwrap(), p.max_slots());
        let ratio = |s: usize| cfg.clone().with_slots(s, max).log_message_ratio;
        assert_eq!(ratio(max), 8);
        assert_eq!(ratio(16384), 8);
        assert_eq!(ratio(1024), 8);
        assert_eq!(ratio(512), 10);
        assert_eq!(ratio(16), 10);
        let b = |s: usize| cfg.clone().with_slots(s, max).input_bound();
        assert!((b(8192) - 0.0943).abs() < 1e-3 && (b(512) - 0.2377).abs() < 1e-3);
        let p = Params::named("insecure-boot-n12-l9").unwrap();
        let (cfg, max) = (config_for(&p).unwrap(), p.max_slots());
        assert_eq!(cfg.clone().with_slots(max, max).log_message_ratio, 8);
        assert_eq!(cfg.clone().with_slots(max / 2, max).log_message_ratio, 10);
    }

    fn vec_c(n: usize, seed: u64) -> Vec<Complex64> {
        (0..n)
            .map(|i| {
                let x = ((i as u64 * 7919 + seed * 104_729) % 1000) as f64 / 500.0 - 1.0;
                let y = ((i as u64 * 6271 + seed * 15_485_863) % 1000) as f64 / 500.0 - 1.0;
                Complex64::new(x, y)
            })
            .collect()
    }

    /// The masked last CoeffsToSlots map gives the n-slot map's output in
    /// slots 0..n and zeros after, on n-periodic input (plain arithmetic,
    /// error bound 1e-12).
    #[test]
    fn first_half_masks_the_second_half() {
        let n = 32;
        for t in dft::coeffs_to_slots(n, 2, Complex64::new(0.7, 0.0)) {
            let x = vec_c(n, 3);
            let want = t.apply_plain(&x);
            let x2: Vec<_> = x.iter().chain(&x).copied().collect();
            let got = first_half(&t).apply_plain(&x2);
            for j in 0..2 * n {
                let w = if j < n {
                    want[j]
                } else {
                    Complex64::new(0.0, 0.0)
                };
                assert!((got[j] - w).norm() < 1e-12, "slot {j}");
            }
        }
    }

    /// The repacking first SlotsToCoeffs map on v = [re | im] equals the
    /// n-slot map on re + i im, repeated with period n (plain arithmetic,
    /// error bound 1e-12).
    #[test]
    fn unpack_halves_reads_both_halves() {
        let n = 32;
        for t in dft::slots_to_coeffs(n, 3, Complex64::new(1.3, 0.0)) {
            let re: Vec<f64> = vec_c(n, 5).iter().map(|c| c.re).collect();
            let im: Vec<f64> = vec_c(n, 6).iter().map(|c| c.re).collect();
            let u: Vec<_> = re
                .iter()
                .zip(&im)
                .map(|(&a, &b)| Complex64::new(a, b))
                .collect();
            let want = t.apply_plain(&u);
            let v: Vec<_> = re
                .iter()
                .chain(&im)
                .map(|&a| Complex64::new(a, 0.0))
                .collect();
            let got = unpack_halves(&t).apply_plain(&v);
            for j in 0..2 * n {
                assert!((got[j] - want[j % n]).norm() < 1e-12, "slot {j}");
            }
        }
    }

    /// A packed sparse bootstrap needs about as many rotation keys as a
    /// full-slot one (its first SlotsToCoeffs map has twice the diagonals,
    /// clustered at s and s + n, which cost extra giant steps only), and
    /// more of them live at the low SlotsToCoeffs level.
    #[test]
    fn packed_bootstrap_key_count_stays_near_full() {
        let p = Params::named("n16-boot").unwrap();
        let full = config_for(&p).unwrap();
        let count = |c: &BootstrapConfig| {
            let mut r = rotation_levels(&p, c);
            r.sort_unstable();
            r.dedup_by_key(|x| x.0);
            (r.len(), r.iter().filter(|x| x.1 == p.max_level()).count())
        };
        let (nf, top_f) = count(&full);
        for slots in [16384, 8192, 4096, 2048] {
            let (ns, top_s) = count(&full.clone().with_slots(slots, p.max_slots()));
            eprintln!("{slots} slots: {ns} keys ({top_s} at the top) vs full {nf} ({top_f})");
            assert!(ns <= nf + 12 && top_s <= top_f + 2, "{slots}: {ns} vs {nf}");
        }
    }
}
