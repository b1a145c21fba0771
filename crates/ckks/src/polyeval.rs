//! Polynomial evaluation on ciphertexts, at minimal depth and exact scale.
//!
//! Network activations and the EvalMod step of bootstrapping are polynomials
//! applied slot-wise. This module provides:
//!
//! - [`Chebyshev`]: interpolation of a function on an interval `[a, b]` at
//!   Chebyshev nodes, plaintext evaluation (Clenshaw) and error measurement;
//! - [`PowerSeries`]: plain power-basis polynomials `sum a_i x^i`, the form
//!   small trained activations come in;
//! - [`Evaluator::eval_chebyshev`] and [`Evaluator::eval_power`]: homomorphic
//!   evaluation by baby-step/giant-step (BSGS);
//! - [`depth`], [`Chebyshev::depth`], [`Chebyshev::plan`], [`PowerSeries::plan`]:
//!   the levels a polynomial costs and the ciphertext multiplications it
//!   takes, computed without ciphertexts so the compiler can plan levels.
//!
//! # Depth
//!
//! A polynomial of degree `d` on an input already in `[-1, 1]` costs exactly
//! `depth(d) = ceil(log2(d + 1))` levels, the minimum for any evaluation of a
//! degree-`d` polynomial; mapping `[a, b]` to `[-1, 1]` costs one more level
//! unless the caller says the input is normalized
//! ([`PolyEvalOptions::input_normalized`]: the compiler folds the affine map
//! into the previous linear layer). The output is always at exactly
//! `input_level - depth`.
//!
//! Why the minimum is reached. Write `T_i` for the Chebyshev polynomials (or
//! the powers `x^i`). `T_i` is computed as `2 T_a T_b - T_{a-b}` with
//! `a = 2^(ceil(log2 i) - 1)`, `b = i - a`, so it sits at depth
//! `ceil(log2 i)`. A polynomial `p` of degree `d < 2^j` evaluated within a
//! budget of `D >= j` levels is either
//!
//! - a *leaf*: `sum c_i T_i` with every `T_i` dropped to the leaf level,
//!   multiplied by its constant (whose rounding is absorbed by a rescale),
//!   summed and rescaled once; this needs `ceil(log2 i) + 1 <= D` for every
//!   nonzero `c_i`, or
//! - a *split* `p = low + T_k * high` with `k = 2^(j-1)`: `high` has degree
//!   `< 2^(j-1)` and gets budget `D - 1 >= j - 1` (the product with `T_k`, at
//!   depth `j - 1`, takes the last level), `low` has degree `< 2^(j-1)` and
//!   keeps budget `D >= j`: one level of slack.
//!
//! By induction every node keeps `D >= ceil(log2(deg + 1))`. A node with
//! slack (`D >= ceil(log2(deg + 1)) + 1`) and degree at most the baby-step
//! bound is always a feasible leaf, since `ceil(log2 i) + 1 <= D` for all
//! `i <= deg`. Only the nodes on the all-`high` chain from the root are
//! tight (`D = ceil(log2(deg + 1))`); the textbook BSGS makes that chain end
//! in a leaf of degree `bs - 1` that needs one level too many (the well-known
//! `+1`). Here a tight node that is not a feasible leaf keeps splitting with
//! baby-step powers of two `T_{bs/2}, T_{bs/4}, ...`, down to the degree-1
//! node `c_0 + c_1 T_1` with budget 1, which is a leaf (`T_1` is at depth 0).
//! The constant multiplication is thus pushed onto the lowest-depth factor of
//! each product, where a level is free. The price is at most `log2(bs)`
//! extra ciphertext multiplications on that one chain.
//!
//! # Cost
//!
//! Each product is a tensor product and, unless it joins a sum that is
//! relinearized once (lazy relinearization), a key switch, which costs an
//! order of magnitude more; [`PolyPlan`] reports both. Among the baby-step
//! bounds, with the classic split (at `k = 2^(j-1)`) everywhere or with
//! split points searched node by node (a node with slack may split at a
//! smaller power of two `k`, dividing by `T_k` in the Chebyshev basis, when
//! that needs fewer products: a degree-4 polynomial in 3 levels is
//! `low + T_2 * (degree 2)`, two products instead of three), the plan with
//! the fewest relinearizations, then products, is taken. Zero coefficients
//! are skipped, so an even or odd polynomial computes only the basis
//! elements of its parity: EvalMod's even cosine of degree 30 takes 9
//! products and 8 relinearizations where a full degree-31 polynomial takes
//! 13 and 10. Every product is relinearized and rescaled in one step
//! ([`Evaluator::relin_rescale`]). The baby-step/giant-step structure is
//! Paterson and Stockmeyer's ("On the number of nonscalar multiplications
//! necessary to evaluate polynomials", SIAM J. Comput. 1973) in the
//! Chebyshev basis, as in Bossuat et al., Eurocrypt 2021.
//!
//! # Scales
//!
//! Scales are chosen top-down so the result lands exactly at the requested
//! scale `t` (by default the input's): a product `T_k * high` formed at level
//! `m` and rescaled by `q_m` asks `high` for scale `t * q_m / scale(T_k)`; a
//! leaf multiplies each `T_i` by its coefficient with
//! `const_scale = t * q_m / scale(T_i)`, so all its terms share the scale
//! `t * q_m` before the rescale; `low` parts are evaluated directly at the
//! product's level and scale. Baby steps subtract `T_{a-b}` (always at a
//! level at or above the product's) from `2 T_a T_b` before its rescale,
//! multiplied by the integer ratio of the scales, so the one rescale of the
//! product serves both. Basis elements whose scale is far below the prime at
//! their level are multiplied by the integer `floor(q / scale)` (free, and
//! relative precision is unchanged), and the map to [-1, 1] lands at scale
//! `q_{L-1}`, so an input at a scale well below the primes (say 2^40 on
//! 60-bit EvalMod primes) does not make the powers' scales collapse; an
//! input scale well *above* its prime cannot be lowered for free and makes
//! the powers' scales grow, so keep input scales at or below the prime.
//! Every addition sees equal scales; the
//! recorded scale of the result is exactly `t`, and the true one differs
//! only by the rounding of the integer constants (below 2^-40 relative).
//!
//! # Domain
//!
//! The polynomial is applied to each complex slot. Chebyshev approximations
//! are only accurate for real slot values inside `[a, b]`; outside it the
//! Chebyshev polynomials grow like `(|u| + sqrt(u^2 - 1))^d` and the result
//! is meaningless, possibly overflowing the modulus.
//!
//! Each leaf sum and each product is formed at one level above its result,
//! at scale `t * q`; the values there (bounded by the sum of the absolute
//! coefficients involved) must fit in the modulus of that level. With 45-bit
//! primes and a 55-bit `q_0`, a result landing at level 0 leaves about 9 bits
//! of headroom: coefficient sums up to a few hundred.
//!
//! # Precision
//!
//! Measured on insecure-n12 (scale 2^45) against the same polynomial in f64
//! on the decrypted input: 1e-9 to 1e-8 for smooth-function approximations
//! of degree 7 to 63 (sigmoid, sine, exp, a smooth ReLU), and up to 1.4e-7
//! for degree-31 polynomials with non-decaying coefficients (rescaling noise
//! in `T_i` grows like `i^2`, the slope of `T_i` at ±1). The approximation
//! error of [`Chebyshev::interpolate`] adds to that; measure it with
//! [`Chebyshev::max_error`].

use crate::ciphertext::Ciphertext;
use crate::error::{CkksError, Result};
use crate::evaluator::Evaluator;
use std::rc::Rc;

/// Minimal multiplicative depth of a degree-`degree` polynomial,
/// `ceil(log2(degree + 1))` (0 for a constant).
///
/// This is what [`Evaluator::eval_chebyshev`] on a normalized input and
/// [`Evaluator::eval_power`] consume: their output is at exactly
/// `input_level - depth(degree)`.
pub fn depth(degree: usize) -> usize {
    (usize::BITS - degree.leading_zeros()) as usize
}

/// ceil(log2 i) for i >= 1: the depth at which `T_i` (or `x^i`) is computed.
fn power_depth(i: usize) -> usize {
    depth(i - 1)
}

/// The depth of the basis element T_k (or x^k) for k >= 1: 0 for the input.
fn power_depth_or_input(k: usize) -> usize {
    if k == 1 { 0 } else { power_depth(k) }
}

/// Which coefficients of a polynomial can be nonzero.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Parity {
    /// Only even-index coefficients (an even function, e.g. cosine).
    Even,
    /// Only odd-index coefficients (an odd function, e.g. sine).
    Odd,
    /// Both.
    Mixed,
}

/// On an interval symmetric about 0, interpolated coefficients of one parity
/// that are all below this fraction of the largest coefficient are set to
/// exactly zero, so odd and even functions skip those terms.
pub const PARITY_TOLERANCE: f64 = 1e-12;

fn check_coeffs(coeffs: &[f64]) -> Result<()> {
    if coeffs.is_empty() {
        return Err(CkksError::Domain("polynomial has no coefficients".into()));
    }
    if coeffs.iter().any(|c| !c.is_finite()) {
        return Err(CkksError::Domain(
            "non-finite polynomial coefficient".into(),
        ));
    }
    Ok(())
}

fn highest_nonzero(coeffs: &[f64]) -> usize {
    coeffs.iter().rposition(|&c| c != 0.0).unwrap_or(0)
}

fn parity_of(coeffs: &[f64]) -> Parity {
    let odd = coeffs.iter().skip(1).step_by(2).any(|&c| c != 0.0);
    let even = coeffs.iter().step_by(2).any(|&c| c != 0.0);
    match (even, odd) {
        (true, true) => Parity::Mixed,
        (_, false) => Parity::Even,
        (false, true) => Parity::Odd,
    }
}

/// A polynomial in the Chebyshev basis on an interval: p(x) = sum_i c_i
/// T_i(u), with u = (2x - a - b) / (b - a) mapping [a, b] onto [-1, 1].
///
/// The Chebyshev basis is the numerically stable one for approximating
/// functions: interpolation at Chebyshev nodes is near-minimax, and the
/// coefficients of smooth functions decay fast, so the evaluation is
/// well-conditioned even for degrees in the hundreds.
#[derive(Clone, Debug, PartialEq)]
pub struct Chebyshev {
    a: f64,
    b: f64,
    coeffs: Vec<f64>,
}

impl Chebyshev {
    /// Interpolates `f` on `[a, b]` at the `degree + 1` Chebyshev nodes
    /// (first kind), coefficients by a direct O(degree^2) cosine transform.
    ///
    /// On an interval symmetric about 0, coefficients of the parity an odd
    /// or even `f` does not have are set to exactly zero (see
    /// [`PARITY_TOLERANCE`]), so the homomorphic evaluation skips them.
    pub fn interpolate(f: impl Fn(f64) -> f64, a: f64, b: f64, degree: usize) -> Result<Self> {
        check_interval(a, b)?;
        let n = degree + 1;
        let half = (b - a) / 2.0;
        let mid = (a + b) / 2.0;
        let theta: Vec<f64> = (0..n)
            .map(|k| std::f64::consts::PI * (k as f64 + 0.5) / n as f64)
            .collect();
        let values: Vec<f64> = theta.iter().map(|&t| f(half * t.cos() + mid)).collect();
        if values.iter().any(|v| !v.is_finite()) {
            return Err(CkksError::Domain(
                "function is not finite at an interpolation node".into(),
            ));
        }
        let mut coeffs: Vec<f64> = (0..n)
            .map(|j| {
                let s: f64 = values
                    .iter()
                    .zip(&theta)
                    .map(|(v, &t)| v * (j as f64 * t).cos())
                    .sum();
                2.0 * s / n as f64
            })
            .collect();
        coeffs[0] /= 2.0;
        if (a + b).abs() <= 1e-12 * (b - a) {
            let max = coeffs.iter().fold(0.0f64, |m, c| m.max(c.abs()));
            let tol = PARITY_TOLERANCE * max;
            for start in [0usize, 1] {
                if coeffs.iter().skip(start).step_by(2).all(|c| c.abs() <= tol) {
                    coeffs
                        .iter_mut()
                        .skip(start)
                        .step_by(2)
                        .for_each(|c| *c = 0.0);
                    break;
                }
            }
        }
        Ok(Self { a, b, coeffs })
    }

    /// A polynomial from its Chebyshev coefficients `c_0, c_1, ...` on `[a, b]`.
    pub fn from_coeffs(a: f64, b: f64, coeffs: Vec<f64>) -> Result<Self> {
        check_interval(a, b)?;
        check_coeffs(&coeffs)?;
        Ok(Self { a, b, coeffs })
    }

    /// The coefficients c_0, c_1, ... in the Chebyshev basis.
    pub fn coeffs(&self) -> &[f64] {
        &self.coeffs
    }

    /// The interval `(a, b)`.
    pub fn interval(&self) -> (f64, f64) {
        (self.a, self.b)
    }

    /// Degree: index of the highest nonzero coefficient (0 for a constant).
    pub fn degree(&self) -> usize {
        highest_nonzero(&self.coeffs)
    }

    /// Which coefficients are nonzero.
    pub fn parity(&self) -> Parity {
        parity_of(&self.coeffs)
    }

    /// Sets the coefficients of the other parity to zero (for an odd or even
    /// function on a symmetric interval whose interpolation left them at
    /// rounding-noise size); `Parity::Mixed` keeps everything.
    pub fn with_parity(mut self, parity: Parity) -> Self {
        let start = match parity {
            Parity::Even => 1,
            Parity::Odd => 0,
            Parity::Mixed => return self,
        };
        self.coeffs
            .iter_mut()
            .skip(start)
            .step_by(2)
            .for_each(|c| *c = 0.0);
        self
    }

    /// Sets coefficients with |c| <= `tol` to zero: they cost multiplications
    /// but change the value by at most |c| each.
    pub fn truncated(mut self, tol: f64) -> Self {
        self.coeffs
            .iter_mut()
            .filter(|c| c.abs() <= tol)
            .for_each(|c| *c = 0.0);
        self
    }

    /// The affine map x -> alpha x + beta taking [a, b] onto [-1, 1].
    pub fn normalization(&self) -> (f64, f64) {
        let alpha = 2.0 / (self.b - self.a);
        (alpha, -(self.a + self.b) / (self.b - self.a))
    }

    /// Whether evaluation must map the input to [-1, 1] first (costing one
    /// level): false if the interval is already [-1, 1] or the caller
    /// normalized the input.
    pub fn needs_map(&self, input_normalized: bool) -> bool {
        !(input_normalized || (self.a == -1.0 && self.b == 1.0))
    }

    /// Levels consumed by [`Evaluator::eval_chebyshev`]: [`depth`]`(degree)`
    /// plus one if the input must be mapped to [-1, 1].
    pub fn depth(&self, input_normalized: bool) -> usize {
        depth(self.degree()) + usize::from(self.needs_map(input_normalized))
    }

    /// Evaluates at a real point by Clenshaw's recurrence.
    pub fn eval(&self, x: f64) -> f64 {
        let (alpha, beta) = self.normalization();
        let u = alpha * x + beta;
        let (mut b1, mut b2) = (0.0, 0.0);
        for &c in self.coeffs[1..].iter().rev() {
            let t = 2.0 * u * b1 - b2 + c;
            b2 = b1;
            b1 = t;
        }
        self.coeffs[0] + u * b1 - b2
    }

    /// Largest |p(x) - f(x)| over `samples` evenly spaced points of [a, b]
    /// (both ends included).
    pub fn max_error(&self, f: impl Fn(f64) -> f64, samples: usize) -> f64 {
        let n = samples.max(2);
        (0..n)
            .map(|i| {
                let x = self.a + (self.b - self.a) * i as f64 / (n - 1) as f64;
                (self.eval(x) - f(x)).abs()
            })
            .fold(0.0, f64::max)
    }

    /// The evaluation plan (depth, ciphertext multiplications, baby steps)
    /// that [`Evaluator::eval_chebyshev`] would follow, without ciphertexts
    /// (a dry run of the same code).
    pub fn plan(&self, opts: &PolyEvalOptions) -> Result<PolyPlan> {
        let map = self.needs_map(opts.input_normalized);
        plan(Basis::Chebyshev, &self.coeffs, opts.log_baby_steps, map)
    }
}

fn check_interval(a: f64, b: f64) -> Result<()> {
    if !(a.is_finite() && b.is_finite() && a < b) {
        return Err(CkksError::Domain(format!("invalid interval [{a}, {b}]")));
    }
    Ok(())
}

/// A polynomial in the power basis, p(x) = sum_i a_i x^i.
///
/// For small trained activations (degree 2 to 4, e.g. `a + b x + c x^2`);
/// for higher degrees or approximations of functions prefer [`Chebyshev`],
/// which is better conditioned.
#[derive(Clone, Debug, PartialEq)]
pub struct PowerSeries {
    coeffs: Vec<f64>,
}

impl PowerSeries {
    /// A polynomial from its coefficients a_0, a_1, ... (lowest degree first).
    pub fn new(coeffs: Vec<f64>) -> Result<Self> {
        check_coeffs(&coeffs)?;
        Ok(Self { coeffs })
    }

    /// The coefficients a_0, a_1, ...
    pub fn coeffs(&self) -> &[f64] {
        &self.coeffs
    }

    /// Degree: index of the highest nonzero coefficient (0 for a constant).
    pub fn degree(&self) -> usize {
        highest_nonzero(&self.coeffs)
    }

    /// Which coefficients are nonzero.
    pub fn parity(&self) -> Parity {
        parity_of(&self.coeffs)
    }

    /// Levels consumed by [`Evaluator::eval_power`]: [`depth`]`(degree)`.
    pub fn depth(&self) -> usize {
        depth(self.degree())
    }

    /// Evaluates at a real point by Horner's rule.
    pub fn eval(&self, x: f64) -> f64 {
        self.coeffs.iter().rev().fold(0.0, |acc, &c| acc * x + c)
    }

    /// The evaluation plan [`Evaluator::eval_power`] would follow (a dry
    /// run of the same code).
    pub fn plan(&self, opts: &PolyEvalOptions) -> Result<PolyPlan> {
        plan(Basis::Monomial, &self.coeffs, opts.log_baby_steps, false)
    }
}

/// Options of homomorphic polynomial evaluation.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct PolyEvalOptions {
    /// The input slots already lie in [-1, 1] (the map from [a, b] was folded
    /// into the previous layer): skip the map and the level it costs.
    /// Ignored by power-basis evaluation, which never maps.
    pub input_normalized: bool,
    /// Scale of the result; `None` keeps the input's scale.
    pub output_scale: Option<f64>,
    /// log2 of the baby-step bound (leaves have degree at most 2^this);
    /// `None` picks the value with the fewest ciphertext multiplications.
    /// Depth does not depend on it.
    pub log_baby_steps: Option<u32>,
}

/// What an evaluation costs, computed without ciphertexts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PolyPlan {
    /// Levels consumed (including the map to [-1, 1] if any).
    pub depth: usize,
    /// Ciphertext-ciphertext multiplications. Products that meet at one
    /// level share a relinearization (lazy relinearization), so there are
    /// at most this many relinearizations.
    pub ct_mults: usize,
    /// Relinearizations (key switches, the dear part of a multiplication):
    /// one per basis element computed, and one per sum of products that is
    /// finished (multiplied further, or the result).
    pub relins: usize,
    /// log2 of the baby-step bound used.
    pub log_baby_steps: u32,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Basis {
    Chebyshev,
    Monomial,
}

/// A basis element or intermediate value: the ciphertext (absent in a dry
/// run), its level and its scale.
#[derive(Clone)]
struct Val {
    /// Shared: basis elements are read many times and never changed.
    ct: Option<Rc<Ciphertext>>,
    level: usize,
    scale: f64,
}

/// A sum not yet relinearized nor rescaled (lazy relinearization): `ct`
/// (degree 1 or 2; absent in a dry run) at level `level + 1` with scale
/// `scale * q_{level+1}`, plus the constant `c0`. Products and leaves that
/// meet at the same level are summed in this form, so they share one
/// relinearization and one rescale; [`Engine::finish`] turns it into the
/// value at (`level`, `scale`).
struct Pending {
    ct: Option<Ciphertext>,
    c0: f64,
    level: usize,
    scale: f64,
    /// Holds a product (degree 2): finishing it relinearizes.
    product: bool,
}

enum Node {
    Const(f64),
    Sum(Pending),
}

/// One evaluation (or dry run, with `ev` absent) of a polynomial.
struct Engine<'a> {
    ev: Option<&'a Evaluator>,
    basis: Basis,
    /// Level of T_1 (the input after the map).
    top: usize,
    bs: usize,
    powers: Vec<Option<Val>>,
    mults: usize,
    /// Relinearizations (key switches): products used as factors, and
    /// finished sums that hold a product.
    relins: usize,
    /// Choose each split point by a dry run of the candidates
    /// ([`Engine::split_point`]) instead of always the largest power of two.
    search: bool,
}

fn internal(what: &str) -> CkksError {
    CkksError::Domain(format!(
        "polynomial evaluation: internal invariant broken ({what})"
    ))
}

impl<'a> Engine<'a> {
    /// An engine whose T_1 is `x` (at the top level).
    fn new(ev: Option<&'a Evaluator>, basis: Basis, strategy: Strategy, x: Val) -> Self {
        Engine {
            ev,
            basis,
            top: x.level,
            bs: 1usize << strategy.log_bs,
            powers: vec![None, Some(x)],
            mults: 0,
            relins: 0,
            search: strategy.search,
        }
    }

    /// What a strategy minimizes: relinearizations first (each a key
    /// switch, an order of magnitude dearer than the tensor product), then
    /// products.
    fn cost(&self) -> (usize, usize) {
        (self.relins, self.mults)
    }

    fn q(&self, level: usize) -> f64 {
        self.ev.map_or(1.0, |e| e.params.q[level] as f64)
    }

    fn ct(v: &Val) -> Result<&Ciphertext> {
        v.ct.as_deref()
            .ok_or_else(|| internal("missing ciphertext"))
    }

    /// rescale(a * b), relinearized.
    fn mul_rescale(&mut self, a: &Val, b: &Val) -> Result<Val> {
        self.mults += 1;
        self.relins += 1;
        let l = a.level.min(b.level);
        if l == 0 {
            return Err(internal("product at level 0"));
        }
        let ct = match self.ev {
            Some(ev) => Some(Rc::new(ev.mul_relin_rescale(Self::ct(a)?, Self::ct(b)?)?)),
            None => None,
        };
        Ok(Val {
            ct,
            level: l - 1,
            scale: a.scale * b.scale / self.q(l),
        })
    }

    /// 2 T_a T_b - T_d (d = a - b > 0), rescaled: T_d, at a higher level
    /// than the product, is dropped to the product's level and multiplied
    /// by the integer round(scale(T_a T_b) / scale(T_d)) (about a prime),
    /// so it joins the product before the one relinearization and rescale
    /// (the subtraction after the rescale would need a rescale of its own
    /// to align T_d: [`Evaluator::adjust`]). Falls back to that alignment
    /// when the ratio of scales is too small to round to an integer
    /// precisely (never with scales near the primes).
    fn chebyshev_step(&mut self, ta: &Val, tb: &Val, d: &Val) -> Result<Val> {
        let Some(ev) = self.ev else {
            return self.mul_rescale(ta, tb);
        };
        let l = ta.level.min(tb.level);
        if l == 0 || d.level < l {
            return Err(internal("Chebyshev step off its levels"));
        }
        let ratio = ta.scale * tb.scale / d.scale;
        if ratio < (1u64 << 40) as f64 {
            let mut v = self.mul_rescale(ta, tb)?;
            let ct = ev.mul_int_raw(Self::ct(&v)?, 2);
            v.ct = Some(Rc::new(
                ev.sub(&ct, &ev.adjust(Self::ct(d)?, v.level, v.scale)?)?,
            ));
            return Ok(v);
        }
        self.mults += 1;
        self.relins += 1;
        let p = ev.mul_int_raw(&ev.mul(Self::ct(ta)?, Self::ct(tb)?)?, 2);
        let x = ev.drop_level(Self::ct(d)?, l)?;
        let mut y = ev.mul_const_raw(&x, 1.0, ratio)?;
        y.scale = p.scale;
        let ct = ev.relin_rescale(&ev.sub(&p, &y)?)?;
        Ok(Val {
            level: l - 1,
            scale: ct.scale,
            ct: Some(Rc::new(ct)),
        })
    }

    /// The basis element T_i (or x^i), computed on first use.
    fn power(&mut self, i: usize) -> Result<Val> {
        if let Some(Some(v)) = self.powers.get(i) {
            return Ok(v.clone());
        }
        if i < 2 {
            return Err(internal("T_0 or T_1 requested"));
        }
        let a = 1usize << (power_depth(i) - 1);
        let b = i - a;
        let ta = self.power(a)?;
        let tb = self.power(b)?;
        let v = if self.basis == Basis::Chebyshev && a != b {
            // T_{a+b} = 2 T_a T_b - T_{a-b}
            let d = self.power(a - b)?;
            self.chebyshev_step(&ta, &tb, &d)?
        } else {
            let mut v = self.mul_rescale(&ta, &tb)?;
            if self.basis == Basis::Chebyshev {
                // T_{2a} = 2 T_a^2 - 1
                if let Some(ev) = self.ev {
                    let ct = ev.mul_int_raw(Self::ct(&v)?, 2);
                    v.ct = Some(Rc::new(ev.add_const(&ct, -1.0)?));
                }
            }
            v
        };
        let v = self.raise(v)?;
        if self.powers.len() <= i {
            self.powers.resize(i + 1, None);
        }
        self.powers[i] = Some(v.clone());
        Ok(v)
    }

    /// Multiplies a basis element by the integer k = floor(q_level / scale)
    /// when k >= 2 and records the scale k times larger: the value and its
    /// relative precision are unchanged and no level is used, but products
    /// formed from it keep their scale near the primes instead of shrinking
    /// geometrically (s -> s^2 / q) when the input's scale is well below
    /// the prime at its level.
    fn raise(&self, mut v: Val) -> Result<Val> {
        let Some(ev) = self.ev else { return Ok(v) };
        if v.level == 0 {
            return Ok(v);
        }
        let k = (self.q(v.level) / v.scale).floor();
        if k >= 2.0 && k < i64::MAX as f64 {
            let mut ct = ev.mul_int_raw(Self::ct(&v)?, k as i64);
            v.scale *= k;
            ct.scale = v.scale;
            v.ct = Some(Rc::new(ct));
        }
        Ok(v)
    }

    /// sum c_i T_i + c0 for (`level`, `scale`), pending: each T_i dropped to
    /// level + 1, multiplied by c_i with a constant scale that brings it to
    /// scale * q_{level+1}, summed (the one rescale comes in [`Self::finish`]).
    fn leaf(
        &mut self,
        terms: &[(usize, f64)],
        c0: f64,
        level: usize,
        scale: f64,
    ) -> Result<Pending> {
        let m = level + 1;
        let common = scale * self.q(m);
        let mut basis = Vec::with_capacity(terms.len());
        for &(i, _) in terms {
            let t = self.power(i)?;
            if t.level < m {
                return Err(internal("leaf term below its level"));
            }
            basis.push(t);
        }
        if terms.is_empty() {
            return Err(internal("empty leaf"));
        }
        // One pass over the terms' limbs up to m (no copies of them).
        let acc = match self.ev {
            Some(ev) => {
                let items = terms
                    .iter()
                    .zip(&basis)
                    .map(|(&(_, c), t)| Ok((Self::ct(t)?, c * (common / t.scale))))
                    .collect::<Result<Vec<_>>>()?;
                Some(ev.lincomb_raw(&items, m, common)?)
            }
            None => None,
        };
        Ok(Pending {
            ct: acc,
            c0,
            level,
            scale,
            product: false,
        })
    }

    /// T * h (h at level + 1) for (`level`, `scale`), pending: not
    /// relinearized, not rescaled, its scale recorded as scale * q_{level+1}.
    fn mul_pending(&mut self, t: &Val, h: &Val, level: usize, scale: f64) -> Result<Pending> {
        self.mults += 1;
        if t.level.min(h.level) != level + 1 {
            return Err(internal("product off its level"));
        }
        let ct = match self.ev {
            Some(ev) => {
                let mut p = ev.mul(Self::ct(t)?, Self::ct(h)?)?;
                p.scale = scale * self.q(level + 1);
                Some(p)
            }
            None => None,
        };
        Ok(Pending {
            ct,
            c0: 0.0,
            level,
            scale,
            product: true,
        })
    }

    /// Relinearizes, rescales and adds the constant: the value at
    /// (`p.level`, `p.scale`).
    fn finish(&mut self, p: Pending) -> Result<Val> {
        self.relins += usize::from(p.product);
        let ct = match self.ev {
            Some(ev) => {
                let s = p.ct.as_ref().ok_or_else(|| internal("missing sum"))?;
                let mut r = ev.relin_rescale(s)?;
                r.scale = p.scale;
                Some(Rc::new(ev.add_const(&r, p.c0)?))
            }
            None => None,
        };
        Ok(Val {
            ct,
            level: p.level,
            scale: p.scale,
        })
    }

    /// Evaluates sum_i coeffs[i] T_i at exactly (`level`, `scale`).
    fn node(&mut self, coeffs: &[f64], level: usize, scale: f64) -> Result<Node> {
        let deg = highest_nonzero(coeffs);
        if deg == 0 {
            return Ok(Node::Const(coeffs[0]));
        }
        let budget = self.top - level;
        if budget < depth(deg) {
            return Err(internal("budget below depth"));
        }
        let terms: Vec<(usize, f64)> = coeffs
            .iter()
            .enumerate()
            .skip(1)
            .filter(|&(_, &c)| c != 0.0)
            .map(|(i, &c)| (i, c))
            .collect();
        let leaf_ok = terms
            .iter()
            .all(|&(i, _)| (i <= self.bs || i.is_power_of_two()) && power_depth(i) < budget);
        if leaf_ok {
            return Ok(Node::Sum(self.leaf(&terms, coeffs[0], level, scale)?));
        }
        let k = self.split_point(coeffs, deg, level)?;
        self.split_at(coeffs, k, level, scale)
    }

    /// p = T_k * high + low with deg(low) < k (for the monomial basis the
    /// plain split of the coefficients; for Chebyshev the division by T_k,
    /// using T_i = 2 T_k T_{i-k} - T_{|2k - i|} from the top coefficient
    /// down).
    fn divide(&self, coeffs: &[f64], k: usize) -> (Vec<f64>, Vec<f64>) {
        let deg = highest_nonzero(coeffs);
        match self.basis {
            Basis::Chebyshev => {
                let mut low = coeffs[..=deg].to_vec();
                let mut high = vec![0.0; deg - k + 1];
                for i in (k..=deg).rev() {
                    let c = std::mem::take(&mut low[i]);
                    if c == 0.0 {
                        continue;
                    }
                    if i == k {
                        high[0] += c;
                    } else {
                        high[i - k] += 2.0 * c;
                        low[i.abs_diff(2 * k)] -= c;
                    }
                }
                low.truncate(k);
                (low, high)
            }
            Basis::Monomial => (coeffs[..k].to_vec(), coeffs[k..=deg].to_vec()),
        }
    }

    /// Where a node that is not a leaf splits. By default at the largest
    /// power of two below its degree (the classic BSGS split, and the only
    /// one a node without slack can take). With [`Self::search`], every
    /// power of two k that keeps the depth (T_k and the quotient one level
    /// above the node's result) is tried in a dry run that continues with
    /// the default split, and the one with the least [`Self::cost`] wins
    /// (ties: the larger k). A node with slack can then take a smaller
    /// giant step whose T_k is already computed: a degree-4 polynomial in
    /// 3 levels becomes low + T_2 * (degree 2) in 2 multiplications instead
    /// of 3 (x^2, x^3, x^4). A greedy choice, node by node: the caller
    /// compares it with the default ([`choose_strategy`]).
    fn split_point(&self, coeffs: &[f64], deg: usize, level: usize) -> Result<usize> {
        let largest = 1usize << (depth(deg) - 1);
        if !self.search {
            return Ok(largest);
        }
        let budget = self.top - level;
        let mut best = ((usize::MAX, usize::MAX), largest);
        let mut k = largest;
        while k >= 1 {
            let feasible = power_depth_or_input(k) < budget && depth(deg - k) < budget;
            if feasible {
                let mut dry = self.dry();
                if let Node::Sum(p) = dry.split_at(coeffs, k, level, 1.0)? {
                    // the node's own sum is finished by its parent (or is the
                    // result): count its relinearization here
                    dry.finish(p)?;
                }
                if dry.cost() < best.0 {
                    best = (dry.cost(), k);
                }
            }
            k /= 2;
        }
        Ok(best.1)
    }

    /// A dry-run copy (no ciphertexts, the default split) of this engine
    /// with the basis elements computed so far.
    fn dry(&self) -> Engine<'a> {
        Engine {
            ev: None,
            basis: self.basis,
            top: self.top,
            bs: self.bs,
            powers: self
                .powers
                .iter()
                .map(|p| {
                    p.as_ref().map(|v| Val {
                        ct: None,
                        level: v.level,
                        scale: v.scale,
                    })
                })
                .collect(),
            mults: 0,
            relins: 0,
            search: false,
        }
    }

    /// Evaluates the node as T_k * high + low at (`level`, `scale`).
    fn split_at(&mut self, coeffs: &[f64], k: usize, level: usize, scale: f64) -> Result<Node> {
        let (low, high) = self.divide(coeffs, k);
        let tk = self.power_or_input(k)?;
        let high_scale = scale * self.q(level + 1) / tk.scale;
        let mut sum = match self.node(&high, level + 1, high_scale)? {
            Node::Const(h) => self.leaf(&[(k, h)], 0.0, level, scale)?,
            Node::Sum(h) => {
                let h = self.finish(h)?;
                self.mul_pending(&tk, &h, level, scale)?
            }
        };
        // `low` lands at the same level: its products and leaves join this
        // sum before the one relinearization and rescale.
        match self.node(&low, level, scale)? {
            Node::Const(c) => sum.c0 += c,
            Node::Sum(v) => {
                if let Some(ev) = self.ev {
                    let a = sum.ct.as_ref().ok_or_else(|| internal("missing sum"))?;
                    let b = v.ct.as_ref().ok_or_else(|| internal("missing sum"))?;
                    sum.ct = Some(ev.add(a, b)?);
                }
                sum.c0 += v.c0;
                sum.product |= v.product;
            }
        }
        Ok(Node::Sum(sum))
    }

    fn power_or_input(&mut self, i: usize) -> Result<Val> {
        if i == 1 {
            self.powers
                .get(1)
                .cloned()
                .flatten()
                .ok_or_else(|| internal("missing input"))
        } else {
            self.power(i)
        }
    }

    /// The whole polynomial at exactly (top - depth(deg), scale).
    fn run(&mut self, coeffs: &[f64], scale: f64) -> Result<Val> {
        let level = self.top - depth(highest_nonzero(coeffs));
        match self.node(coeffs, level, scale)? {
            Node::Sum(p) => self.finish(p),
            Node::Const(c) => {
                // A constant polynomial: a trivial encryption of c at the
                // input's level and the requested scale.
                let x = self.power_or_input(1)?;
                let ct = match self.ev {
                    Some(ev) => {
                        let mut z = ev.mul_int_raw(Self::ct(&x)?, 0);
                        z.scale = scale;
                        Some(Rc::new(ev.add_const(&z, c)?))
                    }
                    None => None,
                };
                Ok(Val { ct, level, scale })
            }
        }
    }
}

/// How an evaluation proceeds: the baby-step bound and whether split
/// points are searched ([`Engine::split_point`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Strategy {
    log_bs: u32,
    search: bool,
}

/// Picks the strategy with the least [`Engine::cost`] (relinearizations,
/// then products) in a dry run: every baby-step bound (or the given one),
/// with the default splits and with searched ones (ties: the default
/// splits, then the smaller bound, which keeps fewer ciphertexts alive).
/// Returns it with its (relinearizations, products).
fn choose_strategy(
    basis: Basis,
    coeffs: &[f64],
    given: Option<u32>,
) -> Result<(Strategy, (usize, usize))> {
    let deg = highest_nonzero(coeffs);
    let bounds: Vec<u32> = match given {
        Some(l) => vec![l.min(20)],
        None => (0..=depth(deg).max(1) as u32).collect(),
    };
    let mut best: Option<(Strategy, (usize, usize))> = None;
    for search in [false, true] {
        for &log_bs in &bounds {
            let strategy = Strategy { log_bs, search };
            let mut e = Engine::new(
                None,
                basis,
                strategy,
                Val {
                    ct: None,
                    level: depth(deg),
                    scale: 1.0,
                },
            );
            e.run(coeffs, 1.0)?;
            if best.is_none_or(|(_, c)| e.cost() < c) {
                best = Some((strategy, e.cost()));
            }
        }
    }
    best.ok_or_else(|| internal("no baby-step candidate"))
}

fn plan(basis: Basis, coeffs: &[f64], given: Option<u32>, map: bool) -> Result<PolyPlan> {
    check_coeffs(coeffs)?;
    let (strategy, (relins, ct_mults)) = choose_strategy(basis, coeffs, given)?;
    Ok(PolyPlan {
        depth: depth(highest_nonzero(coeffs)) + usize::from(map),
        ct_mults,
        relins,
        log_baby_steps: strategy.log_bs,
    })
}

impl Evaluator {
    /// Evaluates a Chebyshev polynomial slot-wise on `ct` (slot values in
    /// the polynomial's interval).
    ///
    /// Consumes exactly [`Chebyshev::depth`]`(opts.input_normalized)` levels:
    /// the output is at `ct.level - depth` with scale `opts.output_scale`
    /// (default `ct.scale`), recorded exactly. Fails with
    /// [`CkksError::NotEnoughLevels`] if `ct` has too few levels.
    pub fn eval_chebyshev(
        &self,
        ct: &Ciphertext,
        poly: &Chebyshev,
        opts: &PolyEvalOptions,
    ) -> Result<Ciphertext> {
        check_coeffs(&poly.coeffs)?;
        let need = poly.depth(opts.input_normalized);
        if ct.level < need {
            return Err(CkksError::NotEnoughLevels {
                needed: need,
                have: ct.level,
            });
        }
        self.own(ct)?;
        let scale = opts.output_scale.unwrap_or(ct.scale);
        self.check_output(&poly.coeffs, ct.level - need, scale)?;
        let x = if poly.needs_map(opts.input_normalized) {
            let (alpha, beta) = poly.normalization();
            // Land the mapped input at scale q_{L-1}: its first product
            // rescales by that prime, so the powers keep their scale.
            let (l, q) = (ct.level, &self.params.q);
            let y_scale = q[l - 1] as f64;
            let mut y =
                self.rescale(&self.mul_const_raw(ct, alpha, q[l] as f64 * y_scale / ct.scale)?)?;
            y.scale = y_scale;
            self.add_const(&y, beta)?
        } else {
            ct.clone()
        };
        self.eval_basis(
            Basis::Chebyshev,
            x,
            &poly.coeffs,
            scale,
            opts.log_baby_steps,
        )
    }

    /// Evaluates a power-basis polynomial slot-wise on `ct`.
    ///
    /// Consumes exactly [`PowerSeries::depth`] = `ceil(log2(degree + 1))`
    /// levels (x^3 in a degree-3 polynomial is formed as x^2 * (a_3 x), so
    /// its constant costs no extra level); the output scale is
    /// `opts.output_scale` (default `ct.scale`), recorded exactly.
    pub fn eval_power(
        &self,
        ct: &Ciphertext,
        poly: &PowerSeries,
        opts: &PolyEvalOptions,
    ) -> Result<Ciphertext> {
        check_coeffs(&poly.coeffs)?;
        let need = poly.depth();
        if ct.level < need {
            return Err(CkksError::NotEnoughLevels {
                needed: need,
                have: ct.level,
            });
        }
        self.own(ct)?;
        let scale = opts.output_scale.unwrap_or(ct.scale);
        self.check_output(&poly.coeffs, ct.level - need, scale)?;
        self.eval_basis(
            Basis::Monomial,
            ct.clone(),
            &poly.coeffs,
            scale,
            opts.log_baby_steps,
        )
    }

    /// The output scale is checked as `encode` checks a scale, and the sum
    /// of the coefficients' magnitudes (a bound on the output for inputs in
    /// the interval) must fit below the modulus at the output level.
    fn check_output(&self, coeffs: &[f64], level: usize, scale: f64) -> Result<()> {
        let sum: f64 = coeffs.iter().map(|c| c.abs()).sum();
        self.params
            .check_scale(scale, level, sum, "polynomial output")
    }

    fn eval_basis(
        &self,
        basis: Basis,
        x: Ciphertext,
        coeffs: &[f64],
        scale: f64,
        log_bs: Option<u32>,
    ) -> Result<Ciphertext> {
        if x.degree() != 1 {
            return Err(CkksError::Degree(x.degree(), 1));
        }
        let (strategy, _) = choose_strategy(basis, coeffs, log_bs)?;
        let mut e = Engine::new(
            Some(self),
            basis,
            strategy,
            Val {
                level: x.level,
                scale: x.scale,
                ct: Some(Rc::new(x)),
            },
        );
        if let Some(Some(x)) = e.powers.get(1).cloned() {
            e.powers[1] = Some(e.raise(x)?);
        }
        let v = e.run(coeffs, scale)?;
        let out = v.ct.ok_or_else(|| internal("missing result"))?;
        let mut out = Rc::try_unwrap(out).unwrap_or_else(|shared| (*shared).clone());
        out.scale = scale;
        Ok(out)
    }
}
