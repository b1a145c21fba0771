//! Which rotation keys the client generates ([`KeyMode`]), and how a
//! lowered net's rotations change under each mode.

use serde::{Deserialize, Serialize};

use crate::lower::Lowered;

/// Which rotation keys the client generates.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum KeyMode {
    /// One Galois key per distinct rotation step: fewest rotations, most
    /// key memory.
    #[default]
    PerStep,
    /// Keys for `±2^k` only; every rotation runs as its non-adjacent-form
    /// decomposition (no hoisting). Far less key memory, more rotations
    /// (estimated from each layer's average decomposition length).
    PowersOfTwo,
}

/// Signed powers of two summing to `d` (non-adjacent form, fewest terms).
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

/// Rewrites a lowered net's rotation counts and steps for `mode`.
pub fn apply_key_mode(low: &mut Lowered, mode: KeyMode) {
    if mode == KeyMode::PerStep {
        return;
    }
    for l in &mut low.layers {
        let steps = std::mem::take(&mut l.cost.rotation_steps);
        if steps.is_empty() {
            continue;
        }
        let total: usize = steps.iter().map(|&s| naf(s).len()).sum();
        let avg = total as f64 / steps.len() as f64;
        let c = &mut l.cost.counts;
        c.rotations = ((c.rotations + c.rotations_hoisted) as f64 * avg).round() as u64;
        c.rotations_hoisted = 0;
        l.cost.rotation_steps = steps.iter().flat_map(|&s| naf(s)).collect();
    }
}
