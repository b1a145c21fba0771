//! Which rotation keys the client generates ([`KeyMode`]), how a rotation
//! runs with the keys that exist ([`RotationKeys`]), and how a lowered
//! net's rotations change under each mode.
//!
//! # Rotations without a key
//!
//! A rotation by a step that has no Galois key runs as the composition of
//! rotations by the terms of the step's non-adjacent form ([`naf`], signed
//! powers of two), each of which must have a key ([`RotationKeys::terms`]).
//! In a hoisted batch (the baby steps of one ciphertext), the steps with a
//! key and the *first* term of every step without one are rotated off the
//! shared decomposition; the remaining terms follow as full rotations
//! ([`RotationKeys::hoisted`]). The runtime executes exactly this, and the
//! compiler counts exactly this ([`RotationKeys::counts`]), so a plan's
//! estimated rotations are those a run performs.
//!
//! # Choosing keys under a memory budget
//!
//! [`KeyMode::Budget`]: every `±2^k` key that some decomposition needs is
//! kept (a budget below their bytes is an error); on top of them, per-step
//! keys for the steps that save the most estimated rotation time per key
//! byte. A step used `u` times (at level `l` each) whose NAF has `t` terms
//! saves about `u (t - 1)` full rotations at `l`; its key costs what it
//! adds to the Galois keys, [`ParamSet::network_key_bytes_at`]: the key at
//! the highest level it is used at, less what bootstrapping's key for the
//! same Galois element already holds when the plan bootstraps (many `±2^k`
//! keys are also CoeffsToSlots' and SlotsToCoeffs' keys; keygen keeps one
//! key per element, at the higher level).
//! Steps are taken in that order while the total stays within the budget,
//! stopping at the first that does not fit (so a larger budget keys a
//! superset of steps and never gives more rotations). A `±2^k` key that no
//! remaining decomposition needs any more is dropped: a plan's
//! `galois_steps` are exactly the keys its rotations use.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use super::CompiledPlan;
use crate::cost::CkksOp;
use crate::error::CompileError;
use crate::layout::RotationUses;
use crate::lower::Lowered;
use crate::params::ParamSet;

/// Which rotation keys the client generates.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum KeyMode {
    /// One Galois key per distinct rotation step: fewest rotations, most
    /// key memory.
    #[default]
    PerStep,
    /// Keys for `±2^k` only; every other rotation runs as its
    /// non-adjacent-form decomposition (module docs). Least key memory,
    /// most rotations.
    PowersOfTwo,
    /// At most this many bytes of Galois keys added by the network's
    /// rotations, each key counted at the highest level it is used at (as
    /// keygen makes them) and less what bootstrapping's own key for the same
    /// element holds (the report's `network_key_bytes`, and keygen's
    /// `galois_network`, are what the budget bounds; `galois_key_bytes`
    /// adds bootstrapping's). The `±2^k` keys the decompositions need, then
    /// per-step keys by time saved per byte (module docs). Compiling fails
    /// ([`CompileError::KeyBudget`]) if the budget is below what
    /// [`KeyMode::PowersOfTwo`] needs.
    Budget(u64),
}

impl std::fmt::Display for KeyMode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            KeyMode::PerStep => write!(f, "per-step"),
            KeyMode::PowersOfTwo => write!(f, "pow2"),
            KeyMode::Budget(b) => write!(f, "budget {b} bytes"),
        }
    }
}

/// Signed powers of two summing to `d` (non-adjacent form, fewest terms),
/// lowest first.
pub fn naf(mut d: i64) -> Vec<i64> {
    let mut out = Vec::new();
    let mut bit = 1i64;
    while d != 0 {
        if d & 1 != 0 {
            let z = 2 - d.rem_euclid(4);
            out.push(z * bit);
            d -= z;
        }
        d /= 2;
        bit *= 2;
    }
    out
}

/// A rotation that cannot run: its step has no key, and neither has one of
/// the terms of its decomposition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MissingKey {
    /// The rotation step asked for (signed, normalized).
    pub step: i64,
    /// Its decomposition.
    pub terms: Vec<i64>,
    /// The first term without a key.
    pub term: i64,
}

impl std::fmt::Display for MissingKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "rotation by {} has no Galois key, and its decomposition {:?} needs one for {}, \
             which the plan's keys (`galois_steps`) lack",
            self.step, self.terms, self.term
        )
    }
}

impl std::error::Error for MissingKey {}

/// How a hoisted batch of rotations of one ciphertext runs
/// ([`RotationKeys::hoisted`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HoistedRotations {
    /// The distinct nonzero steps rotated off the shared decomposition
    /// (signed, normalized, ascending).
    pub hoisted: Vec<i64>,
    /// Per step asked for, in order: the hoisted rotation it starts from
    /// (0: the ciphertext itself) and the steps then applied one by one as
    /// full rotations.
    pub chains: Vec<(i64, Vec<i64>)>,
}

/// Which rotation steps have a Galois key, for ciphertexts of `slots`
/// slots; how a rotation by any step runs with them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RotationKeys {
    slots: i64,
    /// `None`: every step.
    keyed: Option<BTreeSet<i64>>,
}

impl RotationKeys {
    /// Every step has a key (per-step keys).
    pub fn all(slots: usize) -> Self {
        Self {
            slots: slots.max(1) as i64,
            keyed: None,
        }
    }

    /// Only `steps` (any representatives modulo `slots`) have keys.
    pub fn only(slots: usize, steps: impl IntoIterator<Item = i64>) -> Self {
        let mut k = Self {
            slots: slots.max(1) as i64,
            keyed: Some(BTreeSet::new()),
        };
        let set: BTreeSet<i64> = steps.into_iter().map(|s| k.normalize(s)).collect();
        k.keyed = Some(set);
        k
    }

    /// The keys a plan's rotations run with: every step for a per-step
    /// plan (as before key modes existed), else exactly `galois_steps`.
    pub fn of_plan(plan: &CompiledPlan) -> Self {
        match plan.keys {
            KeyMode::PerStep => Self::all(plan.params.slots),
            _ => Self::only(plan.params.slots, plan.galois_steps.iter().copied()),
        }
    }

    /// The keyed steps (`None`: every step).
    pub fn steps(&self) -> Option<&BTreeSet<i64>> {
        self.keyed.as_ref()
    }

    /// `k` modulo the slots, in `(-slots/2, slots/2]`.
    pub fn normalize(&self, k: i64) -> i64 {
        let s = self.slots;
        let k = k.rem_euclid(s);
        if k > s / 2 { k - s } else { k }
    }

    /// Whether a rotation by `k` has its own key (0 needs none).
    pub fn has(&self, k: i64) -> bool {
        let k = self.normalize(k);
        k == 0 || self.keyed.as_ref().is_none_or(|s| s.contains(&k))
    }

    /// The rotations a rotation by `k` runs as, in order: none for 0, `[k]`
    /// (normalized) when it has a key, else its [`naf`] terms (normalized).
    ///
    /// Errors: a term without a key ([`MissingKey`]).
    pub fn terms(&self, k: i64) -> Result<Vec<i64>, MissingKey> {
        let k = self.normalize(k);
        if k == 0 {
            return Ok(Vec::new());
        }
        if self.has(k) {
            return Ok(vec![k]);
        }
        let terms: Vec<i64> = naf(k).into_iter().map(|t| self.normalize(t)).collect();
        match terms.iter().find(|&&t| !self.has(t)) {
            Some(&term) => Err(MissingKey {
                step: k,
                terms,
                term,
            }),
            None => Ok(terms),
        }
    }

    /// How rotations of one ciphertext by `steps` (hoisted together) run:
    /// steps with a key and the first term of each other step off the
    /// shared decomposition, the other terms as full rotations.
    ///
    /// Errors: a term without a key ([`MissingKey`]).
    pub fn hoisted(&self, steps: &[i64]) -> Result<HoistedRotations, MissingKey> {
        let mut hoisted = BTreeSet::new();
        let mut chains = Vec::with_capacity(steps.len());
        for &k in steps {
            let t = self.terms(k)?;
            match t.split_first() {
                None => chains.push((0, Vec::new())),
                Some((&first, rest)) => {
                    hoisted.insert(first);
                    chains.push((first, rest.to_vec()));
                }
            }
        }
        Ok(HoistedRotations {
            hoisted: hoisted.into_iter().collect(),
            chains,
        })
    }

    /// `(full, hoisted)` rotations a layer's rotations run as.
    ///
    /// Errors: a term without a key ([`MissingKey`]).
    pub fn counts(&self, uses: &RotationUses) -> Result<(u64, u64), MissingKey> {
        let (mut full, mut hoisted) = (0u64, 0u64);
        for (&k, &n) in &uses.full {
            full += n * self.terms(k)?.len() as u64;
        }
        for batch in &uses.hoisted {
            let h = self.hoisted(batch)?;
            hoisted += h.hoisted.len() as u64;
            full += h.chains.iter().map(|(_, r)| r.len() as u64).sum::<u64>();
        }
        Ok((full, hoisted))
    }

    /// The keys a layer's rotations use.
    ///
    /// Errors: a term without a key ([`MissingKey`]).
    pub fn used(&self, uses: &RotationUses) -> Result<BTreeSet<i64>, MissingKey> {
        let mut out = BTreeSet::new();
        for &k in uses.full.keys().chain(uses.hoisted.iter().flatten()) {
            out.extend(self.terms(k)?);
        }
        Ok(out)
    }
}

/// Rewrites a lowered net's rotation counts and steps for the keys `keys`
/// (exactly what the runtime will run; [`RotationKeys::counts`]). Layers
/// keep their [`RotationUses`], so a net can be rewritten again from them.
///
/// Errors: a decomposition term without a key ([`CompileError::KeyBudget`]).
pub fn apply_keys(low: &mut Lowered, keys: &RotationKeys) -> Result<(), CompileError> {
    for l in &mut low.layers {
        let uses = &l.cost.rotation_uses;
        if uses.is_empty() {
            continue;
        }
        let err = |e: MissingKey| CompileError::KeyBudget(format!("layer `{}`: {e}", l.name));
        let (full, hoisted) = keys.counts(uses).map_err(err)?;
        let steps = keys.used(uses).map_err(err)?;
        let c = &mut l.cost.counts;
        c.rotations = full;
        c.rotations_hoisted = hoisted;
        l.cost.rotation_steps = steps;
    }
    Ok(())
}

/// Every distinct rotation step of a net, with the layers using it and how
/// often each does.
fn step_uses(low: &Lowered) -> BTreeMap<i64, Vec<(usize, u64)>> {
    let mut m: BTreeMap<i64, Vec<(usize, u64)>> = BTreeMap::new();
    for (v, l) in low.layers.iter().enumerate() {
        let u = &l.cost.rotation_uses;
        let mut here: BTreeMap<i64, u64> = u.full.clone();
        for &k in u.hoisted.iter().flatten() {
            *here.entry(k).or_default() += 1;
        }
        for (k, n) in here {
            m.entry(k).or_default().push((v, n));
        }
    }
    m
}

/// The keys of [`KeyMode::PowersOfTwo`]: every term of every step's
/// decomposition.
pub fn pow2_keys(low: &Lowered) -> RotationKeys {
    let none = RotationKeys::only(low.slots(), []);
    let terms = step_uses(low)
        .into_keys()
        .flat_map(|k| naf(none.normalize(k)))
        .collect::<Vec<_>>();
    RotationKeys::only(low.slots(), terms)
}

/// Bytes the network's Galois keys add for a net rewritten by
/// [`apply_keys`] when layer `v` runs at `levels[v]`: each key of a layer's
/// `rotation_steps` counted once, at the highest level it is used at, less
/// what bootstrapping's own keys already hold when the plan bootstraps
/// (`bootstraps`; [`ParamSet::network_key_bytes_at`]).
pub fn network_key_bytes(low: &Lowered, levels: &[u32], p: &ParamSet, bootstraps: bool) -> u64 {
    let mut at: BTreeMap<i64, u32> = BTreeMap::new();
    for (l, &lv) in low.layers.iter().zip(levels) {
        for &s in &l.cost.rotation_steps {
            let e = at.entry(s).or_insert(0);
            *e = (*e).max(lv);
        }
    }
    let boot = bootstraps.then(|| low.slots());
    at.iter()
        .map(|(&k, &l)| p.network_key_bytes_at(k, l, boot))
        .sum()
}

/// The keys of [`KeyMode::Budget`] for a net (as lowered: per-step counts)
/// whose layer `v` runs at `levels[v]` (module docs); with `bootstraps`,
/// keys bootstrapping already holds cost nothing (or their difference,
/// [`ParamSet::network_key_bytes_at`]).
///
/// Errors: `max_bytes` below what the `±2^k` keys alone need
/// ([`CompileError::KeyBudget`]).
pub fn budget_keys(
    low: &Lowered,
    levels: &[u32],
    p: &ParamSet,
    max_bytes: u64,
    bootstraps: bool,
) -> Result<RotationKeys, CompileError> {
    let boot = bootstraps.then(|| low.slots());
    let slots = low.slots();
    let norm = RotationKeys::only(slots, []);
    let uses = step_uses(low);
    // Each key's levels of use (level -> uses), to know its bytes as uses
    // come and go.
    let mut key_levels: BTreeMap<i64, BTreeMap<u32, u64>> = BTreeMap::new();
    struct Cand {
        step: i64,
        level: u32,
        ratio: f64,
        /// (term, level) uses it adds to the term keys while not keyed.
        terms: Vec<(i64, u32)>,
    }
    let mut cands = Vec::new();
    for (&k, at) in &uses {
        let terms: Vec<i64> = naf(k).into_iter().map(|t| norm.normalize(t)).collect();
        let mut added = Vec::new();
        for &(v, _) in at {
            let lv = levels.get(v).copied().unwrap_or(0);
            for &t in &terms {
                *key_levels.entry(t).or_default().entry(lv).or_default() += 1;
                added.push((t, lv));
            }
        }
        if terms.len() < 2 {
            continue;
        }
        let level = at
            .iter()
            .map(|&(v, _)| levels.get(v).copied().unwrap_or(0))
            .max()
            .unwrap_or(0);
        let saved: f64 = at
            .iter()
            .map(|&(v, n)| {
                let lv = levels.get(v).copied().unwrap_or(0);
                n as f64 * (terms.len() - 1) as f64 * p.costs.at(CkksOp::Rotate, lv)
            })
            .sum();
        let bytes = p.network_key_bytes_at(k, level, boot).max(1) as f64;
        cands.push(Cand {
            step: k,
            level,
            ratio: saved / bytes,
            terms: added,
        });
    }
    let key_bytes = |t: i64, m: &BTreeMap<u32, u64>| {
        m.keys()
            .next_back()
            .map_or(0, |&l| p.network_key_bytes_at(t, l, boot))
    };
    let mut total: u64 = key_levels.iter().map(|(&t, m)| key_bytes(t, m)).sum();
    if total > max_bytes {
        return Err(CompileError::KeyBudget(format!(
            "{max_bytes} bytes of rotation keys is below the {total} bytes ({:.1} MiB) the ±2^k keys \
             alone need for `{}` at `{}` (`--keys pow2`); give at least that",
            total as f64 / (1u64 << 20) as f64,
            low.model,
            p.name
        )));
    }
    cands.sort_by(|a, b| {
        b.ratio
            .total_cmp(&a.ratio)
            .then(a.step.unsigned_abs().cmp(&b.step.unsigned_abs()))
            .then(a.step.cmp(&b.step))
    });
    let mut keyed = Vec::new();
    for c in cands {
        // Its own key, minus what its decomposition no longer needs.
        let mut next = key_levels.clone();
        for &(t, lv) in &c.terms {
            if let Some(m) = next.get_mut(&t) {
                if let Some(n) = m.get_mut(&lv) {
                    *n -= 1;
                    if *n == 0 {
                        m.remove(&lv);
                    }
                }
                if m.is_empty() {
                    next.remove(&t);
                }
            }
        }
        let touched: BTreeSet<i64> = c.terms.iter().map(|&(t, _)| t).collect();
        let before: u64 = touched
            .iter()
            .map(|&t| key_levels.get(&t).map_or(0, |m| key_bytes(t, m)))
            .sum();
        let after: u64 = touched
            .iter()
            .map(|&t| next.get(&t).map_or(0, |m| key_bytes(t, m)))
            .sum();
        let t = total - before + after + p.network_key_bytes_at(c.step, c.level, boot);
        if t > max_bytes {
            break;
        }
        total = t;
        key_levels = next;
        keyed.push(c.step);
    }
    Ok(RotationKeys::only(
        slots,
        key_levels.into_keys().chain(keyed),
    ))
}
