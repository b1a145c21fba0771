//! Per-operation cost tables: what one CKKS operation costs, by level.
//!
//! The compiler minimizes *estimated time*, so it needs the time of every
//! primitive at every level (an operation at level `l` works on `l + 1` RNS
//! limbs, so cheaper at low levels). A [`CostTable`] holds those times in
//! seconds, one vector per [`CkksOp`] indexed by level. The defaults are
//! placeholder **estimates** from a limbs-proportional model; the lead's
//! `residue bench ckks` JSON (records `{"op","threads","median_ms"}`, with an
//! optional `"level"`) calibrates them with [`CostTable::calibrate`].

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::error::CompileError;

/// A CKKS primitive whose time the cost model tracks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CkksOp {
    /// Encode a vector to a plaintext.
    Encode,
    /// Encrypt a plaintext.
    Encrypt,
    /// Decrypt a ciphertext.
    Decrypt,
    /// Ciphertext + ciphertext (or plaintext).
    Add,
    /// Ciphertext x plaintext.
    MulPlain,
    /// Ciphertext x ciphertext with relinearization (one key switch).
    MulRelin,
    /// Rescale by the last prime.
    Rescale,
    /// Rotation (one full key switch).
    Rotate,
    /// One rotation of a hoisted batch (shares the decomposition).
    RotateHoisted,
    /// Bootstrap of one ciphertext (level-independent: it starts from the
    /// bottom and ends at `L_eff`).
    Bootstrap,
}

impl CkksOp {
    /// All operations, in a fixed order.
    pub const ALL: [CkksOp; 10] = [
        CkksOp::Encode,
        CkksOp::Encrypt,
        CkksOp::Decrypt,
        CkksOp::Add,
        CkksOp::MulPlain,
        CkksOp::MulRelin,
        CkksOp::Rescale,
        CkksOp::Rotate,
        CkksOp::RotateHoisted,
        CkksOp::Bootstrap,
    ];

    /// The name used in `residue bench ckks` JSON.
    pub fn name(self) -> &'static str {
        match self {
            CkksOp::Encode => "encode",
            CkksOp::Encrypt => "encrypt",
            CkksOp::Decrypt => "decrypt",
            CkksOp::Add => "add",
            CkksOp::MulPlain => "mul_plain",
            CkksOp::MulRelin => "mul_relin",
            CkksOp::Rescale => "rescale",
            CkksOp::Rotate => "rotate",
            CkksOp::RotateHoisted => "rotate_hoisted",
            CkksOp::Bootstrap => "bootstrap",
        }
    }

    /// Parses a bench JSON op name.
    pub fn from_name(s: &str) -> Option<CkksOp> {
        CkksOp::ALL.into_iter().find(|o| o.name() == s)
    }

    /// The `residue bench ckks` record names that price this op, the most
    /// faithful first: the runtime's linear steps encode *real* diagonals
    /// at the plan's slot count (`encode_real`) and multiply-accumulate in
    /// place (`mul_plain_acc`); the plain names are the fallback for a
    /// calibration file without those.
    pub fn record_names(self) -> Vec<&'static str> {
        match self {
            CkksOp::Encode => vec!["encode_real", "encode"],
            CkksOp::MulPlain => vec!["mul_plain_acc", "mul_plain"],
            // Most full rotations are a linear step's giant steps, which the
            // runtime sums with one ModDown per output
            // (`ckks::Evaluator::rotate_sum`, priced per term); the few
            // others (pooling's rotate-and-sum, decomposed steps' leading
            // terms) are priced the same.
            CkksOp::Rotate => vec!["rotate_sum", "rotate"],
            op => vec![op.name()],
        }
    }
}

/// Times of every [`CkksOp`] in seconds, by level (`0..=max_level`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CostTable {
    /// Where the numbers come from (`"estimate"`, or a calibration file).
    pub source: String,
    /// Threads the numbers were measured with.
    pub threads: u32,
    /// Highest level in the table.
    pub max_level: u32,
    /// `seconds[op][level]`.
    pub seconds: BTreeMap<CkksOp, Vec<f64>>,
    /// Measured bootstraps by slot count (sparse packing), seconds; the
    /// full-slot figure is `seconds[Bootstrap]`.
    #[serde(default)]
    pub bootstrap_by_slots: BTreeMap<usize, f64>,
    /// Encodes by slot count, seconds by level (`encode_real` records with
    /// fewer slots than the largest measured; a sparse plan's diagonals
    /// are shorter vectors and cheaper to encode): see [`Self::for_slots`].
    #[serde(default)]
    pub encode_by_slots: BTreeMap<usize, Vec<f64>>,
}

/// One record of `residue bench ckks` JSON.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BenchRecord {
    /// Operation name (see [`CkksOp::name`]).
    pub op: String,
    /// Threads used.
    pub threads: u32,
    /// Median time in milliseconds.
    pub median_ms: f64,
    /// Level it was measured at (default: the table's top level).
    #[serde(default)]
    pub level: Option<u32>,
    /// Parameter set it was measured with, if recorded.
    #[serde(default)]
    pub params: Option<String>,
    /// Bootstrap only: slots of the refreshed ciphertext (default: full).
    #[serde(default)]
    pub slots: Option<usize>,
}

impl CostTable {
    /// Placeholder estimates for ring degree `2^log_n` with `special` special
    /// primes, levels `0..=max_level`, `boot_seconds` per ciphertext
    /// bootstrap. Limb-proportional: an operation at level `l` costs
    /// `per_limb * (l + 1)` (+ the special-prime part for key switches).
    /// These are **estimates**, to be replaced by calibration.
    pub fn estimate(log_n: u32, max_level: u32, special: u32, boot_seconds: f64) -> Self {
        // Milliseconds per RNS limb at N = 2^16, single thread (rough).
        let scale = 2f64.powi(log_n as i32 - 16);
        let per_limb_ms = |op: CkksOp| -> f64 {
            match op {
                CkksOp::Encode => 0.55,
                CkksOp::Encrypt => 3.0,
                CkksOp::Decrypt => 0.8,
                CkksOp::Add => 0.1,
                CkksOp::MulPlain => 0.15,
                CkksOp::MulRelin => 9.0,
                CkksOp::Rescale => 1.2,
                CkksOp::Rotate => 8.0,
                CkksOp::RotateHoisted => 4.5,
                CkksOp::Bootstrap => 0.0,
            }
        };
        let mut seconds = BTreeMap::new();
        for op in CkksOp::ALL {
            let v: Vec<f64> = (0..=max_level)
                .map(|l| {
                    if op == CkksOp::Bootstrap {
                        return boot_seconds;
                    }
                    let mut limbs = (l + 1) as f64;
                    if matches!(
                        op,
                        CkksOp::MulRelin | CkksOp::Rotate | CkksOp::RotateHoisted
                    ) {
                        limbs += special as f64;
                    }
                    per_limb_ms(op) * limbs * scale / 1000.0
                })
                .collect();
            seconds.insert(op, v);
        }
        Self {
            source: "estimate".into(),
            threads: 1,
            max_level,
            seconds,
            bootstrap_by_slots: BTreeMap::new(),
            encode_by_slots: BTreeMap::new(),
        }
    }

    /// Seconds of `op` at `level` (clamped to the table).
    pub fn at(&self, op: CkksOp, level: u32) -> f64 {
        self.seconds
            .get(&op)
            .and_then(|v| v.get(level.min(self.max_level) as usize).or(v.last()))
            .copied()
            .unwrap_or(0.0)
    }

    /// The table for a plan of `slots` slots: encodes priced from the
    /// records of the fewest measured slots that are at least `slots`
    /// ([`Self::encode_by_slots`]), else as in the table (the most slots
    /// measured).
    pub fn for_slots(&self, slots: usize) -> std::borrow::Cow<'_, Self> {
        match self.encode_by_slots.range(slots..).next() {
            Some((_, curve)) => {
                let mut t = self.clone();
                t.seconds.insert(CkksOp::Encode, curve.clone());
                std::borrow::Cow::Owned(t)
            }
            None => std::borrow::Cow::Borrowed(self),
        }
    }

    /// Rescales the table to measured numbers: for every op with a record
    /// (with `threads` threads, or the most threads recorded if `None`), the
    /// level curve passes through the measurements (each at its `level`,
    /// default the table's top level, where `residue bench ckks` measures
    /// without `--levels`). With one measured level the estimate's level
    /// shape is kept (the whole curve multiplied); with several, the curve
    /// is linear in the level between them (key switching's cost falls
    /// faster than the limb count: fewer digits at low levels), and keeps
    /// the estimate's shape beyond them. Returns how many ops were
    /// calibrated.
    pub fn calibrate(&mut self, records: &[BenchRecord], threads: Option<u32>) -> usize {
        let mut used = 0;
        let ok = |r: &&BenchRecord| {
            threads.is_none_or(|t| r.threads == t) && r.median_ms.is_finite() && r.median_ms >= 0.0
        };
        // Bootstraps by slot count (sparse packing). The full-slot one
        // calibrates the table: a record that names no slot count, else the
        // one with the most slots.
        let boots: Vec<&BenchRecord> = records
            .iter()
            .filter(ok)
            .filter(|r| CkksOp::from_name(&r.op) == Some(CkksOp::Bootstrap))
            .collect();
        let full_slots = if boots.iter().any(|r| r.slots.is_none()) {
            None
        } else {
            boots.iter().filter_map(|r| r.slots).max()
        };
        for r in &boots {
            if let Some(s) = r.slots {
                self.bootstrap_by_slots.insert(s, r.median_ms / 1000.0);
            }
        }
        for op in CkksOp::ALL {
            // The first of the op's record names that has records.
            let Some(recs) = op
                .record_names()
                .into_iter()
                .map(|name| {
                    records
                        .iter()
                        .filter(ok)
                        .filter(|r| {
                            r.op == name
                                && (op != CkksOp::Bootstrap
                                    || r.slots.is_none()
                                    || r.slots == full_slots)
                        })
                        .collect::<Vec<&BenchRecord>>()
                })
                .find(|v| !v.is_empty())
            else {
                continue;
            };
            let Some(shape) = self.seconds.get(&op).cloned() else {
                continue;
            };
            let t = recs.iter().map(|r| r.threads).max().unwrap_or(1);
            let recs: Vec<&BenchRecord> = recs.into_iter().filter(|r| r.threads == t).collect();
            if op == CkksOp::Encode {
                // Encodes by slot count: the most slots (or unstated)
                // make the table's row, fewer go to `encode_by_slots`.
                let most = recs.iter().map(|r| r.slots.unwrap_or(usize::MAX)).max();
                let mut by: BTreeMap<usize, Vec<&BenchRecord>> = BTreeMap::new();
                for r in &recs {
                    by.entry(r.slots.unwrap_or(usize::MAX)).or_default().push(r);
                }
                for (slots, rs) in by {
                    let curve = self.curve(&shape, &rs, false);
                    if Some(slots) == most {
                        self.seconds.insert(op, curve);
                    } else {
                        self.encode_by_slots.insert(slots, curve);
                    }
                }
            } else {
                let curve = self.curve(&shape, &recs, op == CkksOp::Bootstrap);
                self.seconds.insert(op, curve);
            }
            used += 1;
            self.threads = t;
        }
        if used > 0 {
            self.source = if used == CkksOp::ALL.len() {
                "calibrated".into()
            } else {
                format!(
                    "calibrated ({used} of {} ops; others estimated)",
                    CkksOp::ALL.len()
                )
            };
        }
        used
    }

    /// The level curve through measured records (one thread count): each
    /// at its `level` (default the table's top), the last record of a
    /// level winning. With one level (or `flat`, for bootstraps) the
    /// estimate's shape is kept, the whole curve multiplied; with several,
    /// linear in the level between them and the shape's beyond them.
    fn curve(&self, shape: &[f64], recs: &[&BenchRecord], flat: bool) -> Vec<f64> {
        let mut pts: Vec<(u32, f64)> = Vec::new();
        for r in recs {
            let level = r.level.unwrap_or(self.max_level).min(self.max_level);
            pts.retain(|p| p.0 != level);
            pts.push((level, r.median_ms / 1000.0));
        }
        pts.sort_by_key(|p| p.0);
        let scaled = |l: usize, (pl, ps): (u32, f64)| {
            let cur = shape.get(pl as usize).copied().unwrap_or(0.0);
            if cur > 0.0 { shape[l] * ps / cur } else { ps }
        };
        (0..shape.len())
            .map(|l| {
                let (first, last) = (pts[0], pts[pts.len() - 1]);
                if flat || pts.len() == 1 || l as u32 <= first.0 {
                    scaled(l, first)
                } else if l as u32 >= last.0 {
                    scaled(l, last)
                } else {
                    // Between two measured levels: linear in the level.
                    let i = pts.iter().rposition(|p| p.0 <= l as u32).unwrap_or(0);
                    let ((l0, s0), (l1, s1)) = (pts[i], pts[i + 1]);
                    let f = (l as f64 - l0 as f64) / (l1 as f64 - l0 as f64);
                    s0 + f * (s1 - s0)
                }
            })
            .collect()
    }

    /// Parses bench JSON: either a list of records or an object with a
    /// `"records"` (or `"results"`) list.
    pub fn parse_bench(json: &str) -> Result<Vec<BenchRecord>, CompileError> {
        let v: serde_json::Value =
            serde_json::from_str(json).map_err(|e| CompileError::Calibration(e.to_string()))?;
        let list = match &v {
            serde_json::Value::Array(_) => v.clone(),
            serde_json::Value::Object(m) => m
                .get("records")
                .or_else(|| m.get("results"))
                .cloned()
                .ok_or_else(|| CompileError::Calibration("no `records` list".into()))?,
            _ => return Err(CompileError::Calibration("expected a list".into())),
        };
        serde_json::from_value(list).map_err(|e| CompileError::Calibration(e.to_string()))
    }
}

/// Counts of CKKS primitives for one layer (or a whole plan).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct OpCounts {
    /// Rotations with a full key switch (giant steps, rotate-and-sum).
    pub rotations: u64,
    /// Hoisted rotations (baby steps sharing one decomposition).
    pub rotations_hoisted: u64,
    /// Ciphertext x ciphertext multiplications (with relinearization).
    pub mul_relin: u64,
    /// Plaintext (or scalar) multiplications; in a linear step each also
    /// accumulates into its sum in place (`ckks::Evaluator::mul_plain_acc`).
    pub mul_plain: u64,
    /// Plaintexts encoded at run time (a linear step's diagonals, each
    /// encoded where it is used: caching them all would not fit in memory).
    #[serde(default)]
    pub encodes: u64,
    /// Additions.
    pub adds: u64,
    /// Rescales.
    pub rescales: u64,
}

impl OpCounts {
    /// All rotations, hoisted or not.
    pub fn all_rotations(&self) -> u64 {
        self.rotations + self.rotations_hoisted
    }

    /// Key switches: every rotation and every relinearization.
    pub fn key_switches(&self) -> u64 {
        self.rotations + self.rotations_hoisted + self.mul_relin
    }

    /// Estimated seconds at input level `level`.
    pub fn seconds(&self, t: &CostTable, level: u32) -> f64 {
        self.rotations as f64 * t.at(CkksOp::Rotate, level)
            + self.rotations_hoisted as f64 * t.at(CkksOp::RotateHoisted, level)
            + self.mul_relin as f64 * t.at(CkksOp::MulRelin, level)
            + self.mul_plain as f64 * t.at(CkksOp::MulPlain, level)
            + self.encodes as f64 * t.at(CkksOp::Encode, level)
            + self.adds as f64 * t.at(CkksOp::Add, level)
            + self.rescales as f64 * t.at(CkksOp::Rescale, level)
    }
}

impl std::ops::AddAssign for OpCounts {
    fn add_assign(&mut self, o: Self) {
        self.rotations += o.rotations;
        self.rotations_hoisted += o.rotations_hoisted;
        self.mul_relin += o.mul_relin;
        self.mul_plain += o.mul_plain;
        self.encodes += o.encodes;
        self.adds += o.adds;
        self.rescales += o.rescales;
    }
}
