//! Bootstrappable parameter sets as the compiler sees them.
//!
//! The compiler does not build rings or keys; it needs, per set, the level
//! budget (`L_eff`, the fresh input level), the slot count, what rotation
//! keys cost in memory, and a [`CostTable`]. The built-in sets here
//! ([`ParamSet::defaults`]: `n16-boot` and hypothetical N = 2^16 sets with
//! `L_eff` 10..14 built the same way, for the compiler's own tests and
//! examples) carry the per-limb estimate of [`CostTable::estimate`].
//!
//! The `residue` commands do not use them: they build each set from the
//! engine's named set (`runtime::paramset::param_set`), whose costs are
//! calibrated from the committed single-thread `residue bench ckks`
//! measurements (`docs/data/`) for `n16-boot`, `n16-boot-l11` and
//! `n16-boot-l13`, and are the per-limb estimate (printed as `uncalibrated
//! estimate`) for the other sets; `--calibrate FILE` calibrates any set
//! from `residue bench ckks` JSON ([`CostTable::calibrate`]).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::cost::CostTable;
use crate::error::CompileError;

/// Cost of a packed sparse bootstrap (`slots <= N/4`) relative to a
/// full-slot one, where no record exists for that slot count: measured at
/// `n16-boot`, 8192 against 32768 slots, as process CPU time of one-thread
/// runs back to back (`docs/data/boot1-*.json`, docs/benchmarks.md).
pub const SPARSE_BOOTSTRAP_ESTIMATE: f64 = 0.8;

/// One bootstrappable parameter set.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ParamSet {
    /// Name (as `residue params` lists it when the CKKS crate has it).
    pub name: String,
    /// What it is.
    pub description: String,
    /// log2 of the ring degree.
    pub log_n: u32,
    /// Levels available for computation after a bootstrap.
    pub l_eff: u32,
    /// Level of a freshly encrypted input.
    pub input_level: u32,
    /// log2 of the scale.
    pub log_scale: u32,
    /// Primes in the ciphertext modulus chain Q (computation + bootstrap).
    pub q_primes: u32,
    /// Special primes P for key switching.
    pub p_primes: u32,
    /// log2(QP), for the security check.
    pub log_qp: u32,
    /// Rotation keys the bootstrapping circuit itself needs (estimate).
    pub bootstrap_rotation_keys: u32,
    /// Whether the set exists in the CKKS crate (else hypothetical).
    pub in_ckks: bool,
    /// The fewest slots this set bootstraps (sparse packing, as the
    /// engine's bootstrapping configuration allows); 0: full slots only.
    /// The compiler packs a net into the fewest slots that hold it (at least
    /// these), since a sparse bootstrap costs less.
    #[serde(default)]
    pub min_sparse_slots: usize,
    /// Per-operation costs, by level over the whole Q chain (computation
    /// runs at levels `0..=l_eff`; `residue bench ckks` measures at the top).
    pub costs: CostTable,
    /// Seconds of a hoisted and of a full rotation at `l_eff` that steer
    /// the choice of layouts (baby/giant splits), when they must come from
    /// another table than `costs`: a set priced for several threads keeps
    /// the layouts of its one-thread table, so that its estimate is of the
    /// plan the runtime commands compile. `None`: from `costs`.
    #[serde(default)]
    pub layout_costs: Option<(f64, f64)>,
    /// The Galois keys bootstrapping makes for itself, by the slot count it
    /// bootstraps: each key's Galois element with the highest level its key
    /// serves, as keygen makes them (the engine's CoeffsToSlots, trace and
    /// conjugation keys at the top level, SlotsToCoeffs' lower). Empty for
    /// hypothetical sets: their bootstrapping keys are then estimated as
    /// [`Self::bootstrap_rotation_keys`] keys at the top level. Not
    /// serialized (a set read back estimates).
    #[serde(skip)]
    pub bootstrap_galois: BTreeMap<usize, BTreeMap<u64, u32>>,
}

impl ParamSet {
    /// Slots per ciphertext (`N/2`).
    pub fn slots(&self) -> usize {
        1usize << (self.log_n - 1)
    }

    /// Seconds of one bootstrap of a ciphertext with `slots` slots: measured
    /// ([`CostTable::bootstrap_by_slots`]) where a record exists, else the
    /// full-slot cost times [`SPARSE_BOOTSTRAP_ESTIMATE`] for sparse packing
    /// with at most `N/4` slots (EvalMod runs once instead of twice).
    pub fn bootstrap_seconds(&self, slots: usize) -> f64 {
        let full = self.costs.at(crate::cost::CkksOp::Bootstrap, 0);
        if slots == 0 || slots >= self.slots() {
            return full;
        }
        if let Some(&s) = self.costs.bootstrap_by_slots.get(&slots) {
            return s;
        }
        if 2 * slots <= self.slots() {
            full * SPARSE_BOOTSTRAP_ESTIMATE
        } else {
            full
        }
    }

    /// Key-switching decomposition number at the top level:
    /// `ceil(q_primes / p_primes)`.
    pub fn dnum(&self) -> u32 {
        self.q_primes.div_ceil(self.p_primes.max(1))
    }

    /// Bytes of one Galois (rotation) key, full (not seeded): `dnum` digits,
    /// each two polynomials over `QP` with 8-byte coefficients.
    pub fn galois_key_bytes(&self) -> u64 {
        self.galois_key_bytes_at(self.q_primes.saturating_sub(1))
    }

    /// Bytes of one Galois key restricted to `level` (what the runtime
    /// generates for a rotation used at most there): `ceil((level + 1) /
    /// p_primes)` digits, each two polynomials over the primes `q_0..q_level`
    /// and `P`, 8 bytes a coefficient.
    pub fn galois_key_bytes_at(&self, level: u32) -> u64 {
        let n = 1u64 << self.log_n;
        let level = level.min(self.q_primes.saturating_sub(1));
        let digits = (level + 1).div_ceil(self.p_primes.max(1)) as u64;
        digits * 2 * (level + 1 + self.p_primes) as u64 * n * 8
    }

    /// The Galois element of a rotation by `step` slots: `5^step mod 2N`,
    /// `step` taken modulo `N/2` (the order of 5), as the engine's keys are
    /// indexed.
    pub fn rotation_element(&self, step: i64) -> u64 {
        let two_n = 2u64 << self.log_n;
        let mut e = step.rem_euclid(1i64 << (self.log_n - 1)) as u64;
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

    /// Bootstrapping's own Galois keys (element -> highest level) when it
    /// bootstraps `slots` slots, if this set knows them.
    pub fn bootstrap_keys(&self, slots: usize) -> Option<&BTreeMap<u64, u32>> {
        self.bootstrap_galois.get(&slots.min(self.slots()))
    }

    /// Bytes a network rotation key for `step`, used at levels up to
    /// `level`, adds to the Galois keys when bootstrapping of `boot_slots`
    /// slots also runs (`None`: the plan does not bootstrap): nothing when
    /// bootstrapping has a key for the same element at `level` or above
    /// (keygen keeps one key per element, the higher), the difference when
    /// its key is lower, the whole key otherwise. This is what keygen's
    /// network key bytes count and what a key budget bounds.
    pub fn network_key_bytes_at(&self, step: i64, level: u32, boot_slots: Option<usize>) -> u64 {
        let own = self.galois_key_bytes_at(level);
        match boot_slots
            .and_then(|s| self.bootstrap_keys(s))
            .and_then(|k| k.get(&self.rotation_element(step)))
        {
            Some(&b) if b >= level => 0,
            Some(&b) => own - self.galois_key_bytes_at(b),
            None => own,
        }
    }

    /// A hypothetical N = 2^16 set with `l_eff` computation levels at scale
    /// 2^40, laid out like `n16-boot` (60-bit q0, 15 bootstrapping primes).
    pub fn n16_estimate(l_eff: u32) -> Self {
        let boot_bits = 3 * 40 + 8 * 60 + 4 * 56;
        let q_primes = 1 + l_eff + 15;
        let mut p_primes = 5;
        let log_q = 60 + 40 * l_eff + boot_bits;
        while p_primes > 1 && log_q + 61 * p_primes > 1747 {
            p_primes -= 1;
        }
        let log_qp = log_q + 61 * p_primes;
        let name = if l_eff == 9 {
            "n16-boot".to_string()
        } else {
            format!("n16-leff{l_eff}")
        };
        // Bootstrap time grows with the limbs it works on (estimate: 0.8 s
        // per limb of QP, single thread).
        let boot_seconds = 0.8 * (q_primes + p_primes) as f64;
        Self {
            description: format!(
                "N=2^16, L_eff={l_eff} at scale 2^40, {q_primes} Q primes + {p_primes} P \
                 (log QP = {log_qp}); timings are placeholder estimates"
            ),
            name,
            log_n: 16,
            l_eff,
            input_level: l_eff,
            log_scale: 40,
            q_primes,
            p_primes,
            log_qp,
            bootstrap_rotation_keys: 48,
            in_ckks: l_eff == 9,
            min_sparse_slots: 0,
            costs: CostTable::estimate(16, q_primes - 1, p_primes, boot_seconds),
            layout_costs: None,
            bootstrap_galois: BTreeMap::new(),
        }
    }

    /// The built-in list: N = 2^16 with `L_eff` 9 (`n16-boot`) to 14.
    pub fn defaults() -> Vec<ParamSet> {
        (9..=14).map(ParamSet::n16_estimate).collect()
    }

    /// The default set: the CKKS crate's bootstrappable `n16-boot`.
    pub fn default_name() -> &'static str {
        "n16-boot"
    }

    /// Looks a set up by name in `sets`.
    pub fn find<'a>(sets: &'a [ParamSet], name: &str) -> Result<&'a ParamSet, CompileError> {
        sets.iter().find(|p| p.name == name).ok_or_else(|| {
            CompileError::UnknownParams(
                name.to_string(),
                sets.iter()
                    .map(|p| p.name.as_str())
                    .collect::<Vec<_>>()
                    .join(", "),
            )
        })
    }
}
