//! The slot simulator: plan execution on plain `f64` slot vectors that
//! tracks level and scale exactly as the CKKS backend does and refuses what
//! CKKS would get wrong, in milliseconds.
//!
//! Checks (all with the engine's own error variants, so a failing plan names
//! the same problem on both backends):
//! - levels: `rescale` at level 0, `drop_level` upwards, a polynomial of
//!   depth `d` below level `d`, a bootstrap on a backend without one;
//! - scales: additions of mismatched scales, and any value whose scaled
//!   magnitude reaches the modulus at its level (it would wrap around);
//! - rotation keys: a rotation whose step has no key, or a key used above
//!   the level it was generated for;
//! - the bootstrap's input range: slot magnitudes above
//!   [`Simulator::with_bootstrap_bound`].
//!
//! Optionally ([`Simulator::with_noise`]) it adds Gaussian noise of the
//! engine's measured magnitude ([`crate::noise::measure`]) to the encrypted
//! input and after every rescale and bootstrap, so that the logit error it
//! reports predicts the encrypted one (`tests/noise.rs`: the measured RMS
//! logit error 0.24x-0.74x of the prediction on the small test nets: the
//! model errs high).

use std::collections::BTreeMap;
use std::sync::Mutex;

use ckks::{CkksError, Result};
use rand::SeedableRng;
use rand_distr::{Distribution, Normal};

use crate::backend::Backend;

use ckks::evaluator::SCALE_TOLERANCE;

/// A simulated ciphertext: slot values (the message, not scaled), level and
/// exact scale.
#[derive(Clone, Debug)]
pub struct SimCt {
    /// Slot values.
    pub values: Vec<f64>,
    /// Level.
    pub level: usize,
    /// Scale.
    pub scale: f64,
}

/// Noise magnitudes (standard deviations of the slot error, absolute) the
/// simulator injects.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct NoiseModel {
    /// Added to a freshly encrypted input ([`Simulator::encrypt`]), in units
    /// of `1 / scale`.
    pub fresh_units: f64,
    /// Added after each rescale, in units of `1 / scale` (the rounding of a
    /// rescale and of the plaintexts multiplied before it).
    pub rescale_units: f64,
    /// Added after each bootstrap (absolute slot error).
    pub bootstrap_abs: f64,
}

/// The slot simulator backend.
pub struct Simulator {
    slots: usize,
    /// 2N: Galois elements live modulo it.
    two_n: u64,
    primes: Vec<f64>,
    log_q: Vec<f64>,
    default_scale: f64,
    levels_after: Option<usize>,
    /// Rotation keys: normalized step -> highest level; `None`: every step.
    keys: Option<BTreeMap<i64, usize>>,
    bootstrap_bound: f64,
    /// The set's bootstrapping configuration and its slots, to restate the
    /// input bound for a plan's slot count.
    boot_cfg: Option<(ckks::bootstrap::BootstrapConfig, usize)>,
    checks: bool,
    noise: Option<(NoiseModel, Mutex<rand_chacha::ChaCha8Rng>)>,
    used: Mutex<BTreeMap<i64, usize>>,
}

impl Simulator {
    /// A simulator of parameter set `params` (its primes, scale and, if it
    /// bootstraps, the levels a bootstrap leaves), with every rotation key
    /// available and bootstrap inputs bounded by 1.
    pub fn new(params: &ckks::Params) -> Self {
        let primes: Vec<f64> = params.q.iter().map(|&q| q as f64).collect();
        let mut log_q = Vec::with_capacity(primes.len());
        let mut acc = 0.0;
        for q in &primes {
            acc += q.log2();
            log_q.push(acc);
        }
        let cfg = ckks::bootstrap::config_for(params);
        let levels_after = cfg
            .as_ref()
            .map(|c| ckks::bootstrap::levels_after(params, c));
        let bootstrap_bound = cfg
            .as_ref()
            .map_or(crate::BOOTSTRAP_INPUT_BOUND, |c| c.input_bound());
        Self {
            slots: params.max_slots(),
            two_n: 2 * params.n as u64,
            primes,
            log_q,
            default_scale: params.default_scale(),
            levels_after,
            keys: None,
            bootstrap_bound,
            boot_cfg: cfg.map(|c| (c, params.max_slots())),
            checks: true,
            noise: None,
            used: Mutex::new(BTreeMap::new()),
        }
    }

    /// Ciphertexts of `slots` slots (sparse packing, a power of two up to
    /// N/2; a plan's `params.slots`). The bootstrap input bound becomes the
    /// engine's for that slot count ([`crate::prepare::bootstrap_input_bound`]).
    pub fn with_slots(mut self, slots: usize) -> Self {
        self.slots = slots;
        if let Some((c, max)) = &self.boot_cfg
            && slots.is_power_of_two()
            && slots <= *max
        {
            self.bootstrap_bound = c.clone().with_slots(slots, *max).input_bound();
        }
        self
    }

    /// Only these rotation keys exist: `(step, highest level)`.
    pub fn with_keys(mut self, keys: impl IntoIterator<Item = (i64, usize)>) -> Self {
        let mut m = BTreeMap::new();
        for (k, l) in keys {
            let k = self.norm(k);
            let e = m.entry(k).or_insert(l);
            *e = (*e).max(l);
        }
        self.keys = Some(m);
        self
    }

    /// Bootstrap inputs must have slot magnitudes at most `bound`.
    pub fn with_bootstrap_bound(mut self, bound: f64) -> Self {
        self.bootstrap_bound = bound;
        self
    }

    /// Injects noise (seeded, reproducible).
    pub fn with_noise(mut self, model: NoiseModel, seed: u64) -> Self {
        self.noise = Some((
            model,
            Mutex::new(rand_chacha::ChaCha8Rng::seed_from_u64(seed)),
        ));
        self
    }

    /// A freshly encrypted input: [`Backend::encode`] plus, with a noise
    /// model, its `fresh_units` of encryption noise.
    pub fn encrypt(&self, values: &[f64], level: usize, scale: f64) -> Result<SimCt> {
        let mut ct = self.encode(values, level, scale)?;
        if let Some((m, _)) = &self.noise {
            let sd = m.fresh_units / scale;
            self.noise(&mut ct, sd);
        }
        Ok(ct)
    }

    /// Turns every check off: plain arithmetic on slots (calibration runs
    /// of unscaled plans, whose values may lie anywhere).
    pub fn unchecked(mut self) -> Self {
        self.checks = false;
        self
    }

    /// Every rotation step used so far with the highest level it was used
    /// at: exactly the Galois keys a run of the same plan needs.
    pub fn rotations_used(&self) -> BTreeMap<i64, usize> {
        self.used.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// The Galois element of a rotation by `k` (5^k mod 2N), as the engine
    /// names it in errors.
    fn element(&self, k: i64) -> u64 {
        let two_n = self.two_n;
        let mut e = k.rem_euclid(self.slots as i64) as u64;
        let (mut r, mut b) = (1u64, 5u64);
        while e > 0 {
            if e & 1 == 1 {
                r = r * b % two_n;
            }
            b = b * b % two_n;
            e >>= 1;
        }
        r
    }

    fn norm(&self, k: i64) -> i64 {
        let s = self.slots as i64;
        let k = k.rem_euclid(s);
        if k > s / 2 { k - s } else { k }
    }

    fn scales_match(a: f64, b: f64) -> bool {
        (a - b).abs() <= SCALE_TOLERANCE * a.abs().max(b.abs())
    }

    /// A value must stay below half the modulus at its level.
    fn check_range(&self, ct: &SimCt) -> Result<()> {
        if !self.checks {
            return Ok(());
        }
        if !(ct.scale.is_finite() && ct.scale >= 1.0) {
            return Err(CkksError::Domain(format!(
                "scale {:.3e} out of range at level {}",
                ct.scale, ct.level
            )));
        }
        let m = ct.values.iter().fold(0.0f64, |m, v| m.max(v.abs()));
        if !m.is_finite() {
            return Err(CkksError::Domain("non-finite slot value".into()));
        }
        let bits = (m * ct.scale).max(1.0).log2();
        // Slot magnitudes bound the coefficients' up to a factor below
        // sqrt(slots); one bit of margin for the sign.
        let coeff_bits = bits + 1.0;
        if coeff_bits >= self.log_q[ct.level] {
            return Err(CkksError::Domain(format!(
                "value {m:.3e} at scale 2^{:.1} reaches the modulus 2^{:.1} at level {}",
                ct.scale.log2(),
                self.log_q[ct.level],
                ct.level
            )));
        }
        Ok(())
    }

    fn noise(&self, ct: &mut SimCt, sd: f64) {
        if sd <= 0.0 {
            return;
        }
        if let Some((_, rng)) = &self.noise {
            let mut r = rng.lock().unwrap_or_else(|e| e.into_inner());
            if let Ok(n) = Normal::new(0.0, sd) {
                ct.values.iter_mut().for_each(|v| *v += n.sample(&mut *r));
            }
        }
    }

    fn rot(&self, ct: &SimCt, k: i64) -> Result<SimCt> {
        let k = self.norm(k);
        if k != 0 {
            if self.checks
                && let Some(keys) = &self.keys
            {
                match keys.get(&k) {
                    None => {
                        return Err(CkksError::MissingRotationKey {
                            element: self.element(k),
                            step: Some(k),
                            none_at_all: keys.is_empty(),
                        });
                    }
                    Some(&l) if l < ct.level => {
                        return Err(CkksError::KeyLevel {
                            key: l,
                            ciphertext: ct.level,
                        });
                    }
                    _ => {}
                }
            }
            let mut u = self.used.lock().unwrap_or_else(|e| e.into_inner());
            let e = u.entry(k).or_insert(ct.level);
            *e = (*e).max(ct.level);
        }
        let n = ct.values.len() as i64;
        Ok(SimCt {
            values: (0..n)
                .map(|s| ct.values[(s + k).rem_euclid(n) as usize])
                .collect(),
            level: ct.level,
            scale: ct.scale,
        })
    }
}

impl Backend for Simulator {
    type Ct = SimCt;
    type Pt = SimCt;

    fn slots(&self) -> usize {
        self.slots
    }
    fn level(&self, ct: &SimCt) -> usize {
        ct.level
    }
    fn scale(&self, ct: &SimCt) -> f64 {
        ct.scale
    }
    fn prime(&self, level: usize) -> f64 {
        self.primes[level.min(self.primes.len() - 1)]
    }
    fn default_scale(&self) -> f64 {
        self.default_scale
    }
    fn levels_after_bootstrap(&self) -> Option<usize> {
        self.levels_after
    }

    fn encode(&self, values: &[f64], level: usize, scale: f64) -> Result<SimCt> {
        if values.len() > self.slots {
            return Err(CkksError::Encoding(format!(
                "{} values do not fit {} slots",
                values.len(),
                self.slots
            )));
        }
        if self.checks && level >= self.primes.len() {
            return Err(CkksError::NotEnoughLevels {
                needed: level,
                have: self.primes.len() - 1,
            });
        }
        let mut v = values.to_vec();
        v.resize(self.slots, 0.0);
        let pt = SimCt {
            values: v,
            level,
            scale,
        };
        self.check_range(&pt)?;
        Ok(pt)
    }

    fn drop_level(&self, ct: &SimCt, level: usize) -> Result<SimCt> {
        if self.checks && level > ct.level {
            return Err(CkksError::NotEnoughLevels {
                needed: level,
                have: ct.level,
            });
        }
        let mut out = ct.clone();
        out.level = level;
        Ok(out)
    }

    fn add(&self, a: &SimCt, b: &SimCt) -> Result<SimCt> {
        if self.checks && !Self::scales_match(a.scale, b.scale) {
            return Err(CkksError::ScaleMismatch(a.scale, b.scale));
        }
        let out = SimCt {
            values: a.values.iter().zip(&b.values).map(|(x, y)| x + y).collect(),
            level: a.level.min(b.level),
            scale: a.scale,
        };
        self.check_range(&out)?;
        Ok(out)
    }

    fn adjust(&self, ct: &SimCt, level: usize, scale: f64) -> Result<SimCt> {
        if self.checks {
            if ct.level < level {
                return Err(CkksError::NotEnoughLevels {
                    needed: level,
                    have: ct.level,
                });
            }
            if ct.level == level && !Self::scales_match(ct.scale, scale) {
                return Err(CkksError::ScaleMismatch(ct.scale, scale));
            }
        }
        let mut out = ct.clone();
        out.level = level;
        out.scale = scale;
        Ok(out)
    }

    fn add_plain(&self, ct: &SimCt, pt: &SimCt) -> Result<SimCt> {
        self.add(ct, pt).map(|mut o| {
            o.level = ct.level;
            o
        })
    }

    fn mul_plain(&self, ct: &SimCt, pt: &SimCt) -> Result<SimCt> {
        let out = SimCt {
            values: ct
                .values
                .iter()
                .zip(&pt.values)
                .map(|(x, y)| x * y)
                .collect(),
            level: ct.level.min(pt.level),
            scale: ct.scale * pt.scale,
        };
        self.check_range(&out)?;
        Ok(out)
    }

    fn rescale(&self, ct: &SimCt) -> Result<SimCt> {
        if ct.level == 0 {
            if self.checks {
                return Err(CkksError::NotEnoughLevels { needed: 1, have: 0 });
            }
            return Ok(ct.clone());
        }
        let mut out = SimCt {
            values: ct.values.clone(),
            level: ct.level - 1,
            scale: ct.scale / self.primes[ct.level],
        };
        if let Some((m, _)) = &self.noise {
            let sd = m.rescale_units / out.scale;
            self.noise(&mut out, sd);
        }
        self.check_range(&out)?;
        Ok(out)
    }

    fn square(&self, ct: &SimCt) -> Result<SimCt> {
        let sq = SimCt {
            values: ct.values.iter().map(|x| x * x).collect(),
            level: ct.level,
            scale: ct.scale * ct.scale,
        };
        self.check_range(&sq)?;
        self.rescale(&sq)
    }

    fn neg(&self, ct: &SimCt) -> Result<SimCt> {
        Ok(SimCt {
            values: ct.values.iter().map(|x| -x).collect(),
            ..ct.clone()
        })
    }

    fn rotate(&self, ct: &SimCt, k: i64) -> Result<SimCt> {
        self.rot(ct, k)
    }

    fn rotate_hoisted(&self, ct: &SimCt, ks: &[i64]) -> Result<Vec<SimCt>> {
        ks.iter().map(|&k| self.rot(ct, k)).collect()
    }

    fn poly(&self, ct: &SimCt, coeffs: &[f64], out_scale: f64) -> Result<SimCt> {
        let deg = coeffs.iter().rposition(|&c| c != 0.0).unwrap_or(0);
        let depth = ckks::polyeval::depth(deg.max(1));
        if self.checks && ct.level < depth {
            return Err(CkksError::NotEnoughLevels {
                needed: depth,
                have: ct.level,
            });
        }
        let mut out = SimCt {
            values: ct
                .values
                .iter()
                .map(|&x| coeffs.iter().rev().fold(0.0, |a, &c| a * x + c))
                .collect(),
            level: ct.level.saturating_sub(depth),
            scale: out_scale,
        };
        if let Some((m, _)) = &self.noise {
            let sd = m.rescale_units / out.scale;
            self.noise(&mut out, sd);
        }
        self.check_range(&out)?;
        Ok(out)
    }

    fn bootstrap(&self, ct: &SimCt) -> Result<SimCt> {
        let Some(l) = self.levels_after else {
            return Err(CkksError::InvalidParams(
                "this parameter set does not bootstrap".into(),
            ));
        };
        let m = ct.values.iter().fold(0.0f64, |m, v| m.max(v.abs()));
        if self.checks && m > self.bootstrap_bound {
            return Err(CkksError::Domain(format!(
                "bootstrap input magnitude {m:.3} exceeds the supported bound {}",
                self.bootstrap_bound
            )));
        }
        let mut out = SimCt {
            values: ct.values.clone(),
            level: l,
            scale: self.default_scale,
        };
        if let Some((m, _)) = &self.noise {
            let sd = m.bootstrap_abs;
            self.noise(&mut out, sd);
        }
        Ok(out)
    }

    fn max_abs(&self, ct: &SimCt) -> Option<f64> {
        Some(ct.values.iter().fold(0.0f64, |m, v| m.max(v.abs())))
    }
}
