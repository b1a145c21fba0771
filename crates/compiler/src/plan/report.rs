//! The user-facing cost report of a compiled model ([`Report`]): per
//! layer, per skip connection, keys and time, and its text table.

use serde::{Deserialize, Serialize};

use super::{Goal, KeyMode};
use crate::level::{LevelOpKind, SkipKind};
use crate::placement::Strategy;

fn one() -> usize {
    1
}

/// One line of the per-layer report.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LayerReport {
    /// Layer name.
    pub name: String,
    /// Kind.
    pub kind: LevelOpKind,
    /// Level in.
    pub level_in: u32,
    /// Level out.
    pub level_out: u32,
    /// Rotations (hoisted included).
    pub rotations: u64,
    /// Key switches.
    pub key_switches: u64,
    /// Ciphertext bootstraps right before it (on its inputs).
    pub bootstraps_before: u64,
    /// Ciphertexts of its output.
    pub cts: u32,
    /// Estimated seconds of the layer itself.
    pub seconds: f64,
}

/// What one skip connection costs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SkipReport {
    /// The addition.
    pub name: String,
    /// Mid-term or shared-source.
    pub kind: SkipKind,
    /// Extra ciphertext bootstraps versus the same graph without it.
    pub bootstraps: i64,
    /// Extra estimated seconds versus the same graph without it.
    pub seconds: f64,
}

/// One parameter set considered by automatic choice.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Candidate {
    /// Set name.
    pub params: String,
    /// `L_eff`.
    pub l_eff: u32,
    /// Ciphertext bootstraps (`None` if infeasible).
    pub bootstraps: Option<u64>,
    /// Estimated seconds.
    pub estimated_seconds: Option<f64>,
}

/// The user-facing cost report of a compiled model.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Report {
    /// Model name.
    pub model: String,
    /// Network structure.
    pub structure: String,
    /// Chosen parameter set.
    pub params: String,
    /// What the set is.
    pub params_description: String,
    /// `L_eff` of the set.
    pub l_eff: u32,
    /// Where per-op costs come from (`estimate` or `calibrated`).
    pub cost_source: String,
    /// Placement algorithm.
    pub placement: Strategy,
    /// Placement objective.
    pub goal: Goal,
    /// Per layer.
    pub layers: Vec<LayerReport>,
    /// Ciphertext bootstraps.
    pub bootstraps: u64,
    /// Rotations (hoisted included).
    pub rotations: u64,
    /// Of which hoisted.
    pub rotations_hoisted: u64,
    /// Key switches (rotations and relinearizations).
    pub key_switches: u64,
    /// Rescales.
    pub rescales: u64,
    /// Plaintext multiplications.
    pub plaintext_multiplies: u64,
    /// Ciphertext multiplications.
    pub ciphertext_multiplies: u64,
    /// Activations evaluated as one-level completed squares
    /// ([`crate::lower::fuse_squares`]), of `activations`.
    #[serde(default)]
    pub completed_squares: u64,
    /// Polynomial activations.
    #[serde(default)]
    pub activations: u64,
    /// Galois keys keygen makes (layer rotations, plus the bootstrapping's
    /// own if any bootstrap runs; one key per Galois element).
    pub galois_keys: u64,
    /// Their memory in bytes, each key restricted to the highest level it
    /// is used at (as keygen makes them).
    pub galois_key_bytes: u64,
    /// Whether `galois_keys` and `galois_key_bytes` are exact (the set
    /// knows bootstrapping's keys); else an upper bound, bootstrapping's
    /// keys estimated at the top level.
    #[serde(default)]
    pub galois_keys_exact: bool,
    /// Which rotation keys the network uses (`--keys`, `--key-memory`).
    #[serde(default)]
    pub keys: KeyMode,
    /// The network's Galois keys (the plan's `galois_steps`; bootstrapping's
    /// own not included).
    #[serde(default)]
    pub network_galois_keys: u64,
    /// How many of them bootstrapping holds too (one key serves both).
    #[serde(default)]
    pub network_shared_keys: u64,
    /// Bytes the network's keys add to bootstrapping's: each at the
    /// highest level it is used at, less what bootstrapping's key for the
    /// same element holds (what keygen reports as `galois_network`, and
    /// what [`KeyMode::Budget`] bounds).
    #[serde(default)]
    pub network_key_bytes: u64,
    /// Estimated server time in seconds (of one inference, which serves
    /// `batch` images).
    pub estimated_seconds: f64,
    /// Images per inference (interleaved in each ciphertext).
    #[serde(default = "one")]
    pub batch: usize,
    /// `estimated_seconds / batch`: the amortized time per image.
    #[serde(default)]
    pub estimated_seconds_per_image: f64,
    /// Of which bootstrapping.
    pub bootstrap_seconds: f64,
    /// Per skip connection.
    pub skips: Vec<SkipReport>,
    /// Parameter sets considered (automatic choice).
    pub candidates: Vec<Candidate>,
    /// The greedy baseline on the same parameters (what optimal placement
    /// gains), when placement was optimal.
    pub greedy_baseline: Option<Baseline>,
    /// What all skip connections cost together: this plan minus the same
    /// graph with every addition removed (per-skip costs do not add up).
    pub skips_total: Option<SkipsTotal>,
}

/// What all skip connections of a model cost together.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SkipsTotal {
    /// Extra ciphertext bootstraps.
    pub bootstraps: i64,
    /// Extra estimated seconds.
    pub seconds: f64,
}

/// Bootstraps and time of another placement, for comparison.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Baseline {
    /// Ciphertext bootstraps.
    pub bootstraps: u64,
    /// Estimated seconds.
    pub estimated_seconds: f64,
}

impl Report {
    /// A human-readable table.
    pub fn to_text(&self) -> String {
        use std::fmt::Write;
        let mut s = String::new();
        let _ = writeln!(
            s,
            "model {} ({}), params {} (L_eff {}), placement {:?}/{:?}, costs: {}",
            self.model,
            self.structure,
            self.params,
            self.l_eff,
            self.placement,
            self.goal,
            self.cost_source
        );
        let _ = writeln!(
            s,
            "{:<32} {:>9} {:>6} {:>7} {:>5} {:>5} {:>9}",
            "layer", "kind", "lv", "boot<-", "rot", "ksw", "sec"
        );
        for l in &self.layers {
            let kind = format!("{:?}", l.kind).to_lowercase();
            let _ = writeln!(
                s,
                "{:<32} {:>9} {:>3}>{:<2} {:>7} {:>5} {:>5} {:>9.3}",
                l.name,
                kind,
                l.level_in,
                l.level_out,
                if l.bootstraps_before > 0 {
                    l.bootstraps_before.to_string()
                } else {
                    String::new()
                },
                l.rotations,
                l.key_switches,
                l.seconds
            );
        }
        let _ = writeln!(
            s,
            "totals: bootstraps {}, rotations {} ({} hoisted), key switches {}, rescales {}, \
             plaintext mults {}, ciphertext mults {}",
            self.bootstraps,
            self.rotations,
            self.rotations_hoisted,
            self.key_switches,
            self.rescales,
            self.plaintext_multiplies,
            self.ciphertext_multiplies
        );
        if self.activations > 0 {
            let _ = writeln!(
                s,
                "activations: {} of {} as one-level completed squares{}",
                self.completed_squares,
                self.activations,
                if self.completed_squares == 0 {
                    " (two-level polynomials: --no-fused-squares, or none qualifies)"
                } else {
                    ""
                }
            );
        }
        if self.galois_keys_exact {
            let _ = writeln!(
                s,
                "galois keys: {} and {:.2} GiB (each at the highest level it is used at, as keygen makes them)",
                self.galois_keys,
                self.galois_key_bytes as f64 / (1u64 << 30) as f64
            );
        } else {
            let _ = writeln!(
                s,
                "galois keys: at most {} and {:.2} GiB (an upper bound: bootstrapping's keys estimated at the top level)",
                self.galois_keys,
                self.galois_key_bytes as f64 / (1u64 << 30) as f64
            );
        }
        let _ = writeln!(
            s,
            "rotation keys ({}): {} network keys ({} shared with bootstrapping), adding {:.1} MiB to bootstrapping's",
            self.keys,
            self.network_galois_keys,
            self.network_shared_keys,
            self.network_key_bytes as f64 / (1u64 << 20) as f64
        );
        let _ = writeln!(
            s,
            "estimated time: {:.1} s ({:.1} s bootstrapping) [{}]",
            self.estimated_seconds, self.bootstrap_seconds, self.cost_source
        );
        if self.batch > 1 {
            let _ = writeln!(
                s,
                "batch: {} images per inference, {:.1} s per image amortized",
                self.batch, self.estimated_seconds_per_image
            );
        }
        if let Some(b) = &self.greedy_baseline {
            let _ = writeln!(
                s,
                "greedy placement would need {} bootstraps, {:.1} s",
                b.bootstraps, b.estimated_seconds
            );
        }
        if let Some(t) = &self.skips_total {
            let _ = writeln!(
                s,
                "all skip connections together: {:+} bootstraps, {:+.2} s",
                t.bootstraps, t.seconds
            );
        }
        if !self.skips.is_empty() {
            let _ = writeln!(s, "skip connections (cost versus removing that add):");
            for k in &self.skips {
                let kind = match k.kind {
                    SkipKind::MidTerm => "mid-term",
                    SkipKind::SharedSource => "shared-source",
                };
                let _ = writeln!(
                    s,
                    "  {:<30} {:>13} {:>+3} bootstraps {:>+8.2} s",
                    k.name, kind, k.bootstraps, k.seconds
                );
            }
        }
        if !self.candidates.is_empty() {
            let _ = writeln!(s, "parameter sets considered:");
            for c in &self.candidates {
                match (c.bootstraps, c.estimated_seconds) {
                    (Some(b), Some(t)) => {
                        let _ = writeln!(
                            s,
                            "  {:<12} L_eff {:>2}: {b:>3} bootstraps, {t:>8.1} s",
                            c.params, c.l_eff
                        );
                    }
                    _ => {
                        let _ = writeln!(s, "  {:<12} L_eff {:>2}: infeasible", c.params, c.l_eff);
                    }
                }
            }
        }
        s.push_str(LEGEND);
        s
    }
}

/// What the text report's columns and labels mean, printed once under it.
pub const LEGEND: &str = "\
legend:
  lv A>B      ciphertext level before and after the layer (levels = rescales left;
              a bootstrap refreshes to L_eff, the first line's set's working level)
  boot<-      ciphertext bootstraps right before the layer, on its input
  rot, ksw    rotations (hoisted included) and key switches (rotations + relinearizations)
  sec         estimated seconds of the layer alone, from the costs the first line names
  kinds       linear: convolution or dense, 1 level; activation: polynomial, its depth;
              add: a skip connection's sum; tap: a copy of a value that only serves as a
              bootstrap site for some of its consumers; free: pooling by rotate-and-sum or
              a reshape, no level
  placement   Optimal (exact search) or Greedy, minimising Time or bootstrap Count
  skip kinds  mid-term: a residual block's own skip (ResNet); shared-source: one of
              several additions that reuse one source (Dirac + shared-source nets)
  skip cost   the plan's bootstraps and estimated time with the add, minus the same
              network compiled without it (the addition itself costs ~0.01 s). Negative
              when the network without the add compiles to a slower plan: the add made
              the fresh levels above L_eff save a bootstrap, so the plan with it encrypts
              there, while without it the input stays at L_eff (see --no-fresh-levels),
              where the same number of bootstraps falls on costlier places; with
              --fresh-when-faster both are priced on the faster levels
";
