//! Named CKKS parameter sets, checked against the HE Standard 128-bit bounds.

use crate::error::{CkksError, Result};
use crate::modarith::{Modulus, ntt_primes};
use crate::ring::Ring;
use serde::Serialize;
use std::sync::Arc;

/// Largest log2(QP) giving 128-bit classical security for a uniform ternary
/// secret, for N = 2^10 .. 2^16 ("Security Guidelines for Implementing
/// Homomorphic Encryption", ePrint 2024/463).
pub const MAX_LOG_QP_128: [(u32, f64); 7] = [
    (10, 26.0),
    (11, 53.0),
    (12, 106.0),
    (13, 214.0),
    (14, 430.0),
    (15, 868.0),
    (16, 1747.0),
];

/// Prefix that marks a parameter set as insecure (tests only).
pub const INSECURE_PREFIX: &str = "insecure-";

/// The bound on log2(QP) for 128-bit security at ring degree 2^log_n, if tabulated.
pub fn max_log_qp(log_n: u32) -> Option<f64> {
    MAX_LOG_QP_128
        .iter()
        .find(|(l, _)| *l == log_n)
        .map(|(_, b)| *b)
}

/// A parameter set as written down: bit sizes, not yet primes.
#[derive(Clone, Debug, Serialize)]
pub struct ParamsLiteral {
    /// Stable name (`insecure-*` for test-only sets).
    pub name: &'static str,
    /// What the set is for.
    pub description: &'static str,
    /// log2 of the ring degree N.
    pub log_n: u32,
    /// Bit sizes of the Q chain, q_0 first.
    pub q_bits: &'static [u32],
    /// Bit sizes of the special primes P used by hybrid key switching.
    pub p_bits: &'static [u32],
    /// log2 of the default scale.
    pub log_scale: u32,
}

/// The named parameter sets this build knows.
pub const PARAM_SETS: &[ParamsLiteral] = &[
    ParamsLiteral {
        name: "insecure-n10",
        description: "tiny test set (N=2^10, 3 levels); NOT secure",
        log_n: 10,
        q_bits: &[50, 40, 40, 40],
        p_bits: &[50],
        log_scale: 40,
    },
    ParamsLiteral {
        name: "insecure-n12",
        description: "test set (N=2^12, 6 levels, 2-prime P); NOT secure",
        log_n: 12,
        q_bits: &[55, 45, 45, 45, 45, 45, 45],
        p_bits: &[55, 55],
        log_scale: 45,
    },
    ParamsLiteral {
        name: "n14-l7",
        description: "128-bit leveled set: N=2^14, 7 levels at scale 2^40",
        log_n: 14,
        q_bits: &[50, 40, 40, 40, 40, 40, 40, 40],
        p_bits: &[49, 49],
        log_scale: 40,
    },
    ParamsLiteral {
        name: "n15-q760",
        description: "128-bit leveled set: N=2^15, one 60-bit + fourteen 50-bit primes \
                      (SEAL-comparable chain; P = two 50-bit primes), 14 levels at scale 2^50",
        log_n: 15,
        q_bits: &[60, 50, 50, 50, 50, 50, 50, 50, 50, 50, 50, 50, 50, 50, 50],
        p_bits: &[50, 50],
        log_scale: 50,
    },
    ParamsLiteral {
        name: "insecure-boot-n12",
        description: "bootstrapping test set (N=2^12, 3 levels after bootstrapping); NOT secure",
        log_n: 12,
        q_bits: &[
            60, 40, 40, // q0 + 2 computation levels
            40, 40, // SlotsToCoeffs
            60, 60, 60, 60, 60, 60, 60, 60, 60, // EvalMod
            56, 56, 56, // CoeffsToSlots
        ],
        p_bits: &[61, 61, 61, 61],
        log_scale: 40,
    },
    ParamsLiteral {
        name: "insecure-boot-n12-l9",
        description: "bootstrapping test set for network inference (N=2^12, 9 levels after \
                      bootstrapping); NOT secure",
        log_n: 12,
        q_bits: &[
            60, 40, 40, 40, 40, 40, 40, 40, 40, // q0 + 8 computation levels
            40, 40, // SlotsToCoeffs
            60, 60, 60, 60, 60, 60, 60, 60, 60, // EvalMod
            56, 56, 56, // CoeffsToSlots
        ],
        p_bits: &[61, 61, 61, 61],
        log_scale: 40,
    },
    ParamsLiteral {
        name: "n16-boot",
        description: "128-bit bootstrappable set: N=2^16, 9 levels at scale 2^40 for \
                      computation, 15 more reserved for bootstrapping",
        log_n: 16,
        q_bits: &[
            60, 40, 40, 40, 40, 40, 40, 40, 40, 40, // q0 + 9 computation levels
            40, 40, 40, // SlotsToCoeffs
            60, 60, 60, 60, 60, 60, 60, 60, // EvalMod
            56, 56, 56, 56, // CoeffsToSlots
        ],
        p_bits: &[61, 61, 61, 61, 61],
        log_scale: 40,
    },
    ParamsLiteral {
        name: "n16-boot-l11",
        description: "128-bit bootstrappable set: N=2^16, 11 levels at scale 2^40 for \
                      computation, 15 more reserved for bootstrapping",
        log_n: 16,
        q_bits: &[
            60, 40, 40, 40, 40, 40, 40, 40, 40, 40, 40, 40, // q0 + 11 computation levels
            40, 40, 40, // SlotsToCoeffs
            60, 60, 60, 60, 60, 60, 60, 60, // EvalMod
            56, 56, 56, 56, // CoeffsToSlots
        ],
        p_bits: &[61, 61, 61, 61, 61],
        log_scale: 40,
    },
    ParamsLiteral {
        name: "n16-boot-l13",
        description: "128-bit bootstrappable set: N=2^16, 13 levels at scale 2^40 for \
                      computation, 15 more reserved for bootstrapping",
        log_n: 16,
        q_bits: &[
            60, 40, 40, 40, 40, 40, 40, 40, 40, 40, 40, 40, 40,
            40, // q0 + 13 computation levels
            40, 40, 40, // SlotsToCoeffs
            60, 60, 60, 60, 60, 60, 60, 60, // EvalMod
            56, 56, 56, 56, // CoeffsToSlots
        ],
        p_bits: &[61, 61, 61, 61, 61],
        log_scale: 40,
    },
];

/// Looks up a named parameter set.
pub fn literal(name: &str) -> Result<&'static ParamsLiteral> {
    PARAM_SETS
        .iter()
        .find(|p| p.name == name)
        .ok_or_else(|| CkksError::UnknownParams(name.to_string()))
}

/// Instantiated parameters: primes, NTT tables and key-switching constants.
///
/// Shared by every key, plaintext and ciphertext made from it (`Arc`).
#[derive(Debug)]
pub struct Params {
    /// The literal this was built from.
    pub literal: ParamsLiteral,
    /// Ring degree N.
    pub n: usize,
    /// The Q chain primes.
    pub q: Vec<u64>,
    /// The special primes P.
    pub p: Vec<u64>,
    /// Stable identifier of the set (hash of name and primes), written in
    /// every serialized object.
    pub id: u64,
    /// NTT and arithmetic tables over Q followed by P.
    pub ring: Ring,
    /// Number of Q limbs per key-switching digit (= |P|).
    pub alpha: usize,
    /// q_j^{-1} mod q_i, indexed [j][i] for i < j (rescale by q_j).
    pub(crate) q_inv: Vec<Vec<u64>>,
    /// P mod q_i.
    pub(crate) p_mod_q: Vec<u64>,
    /// P^{-1} mod q_i.
    pub(crate) p_inv_mod_q: Vec<u64>,
    /// log2(q_0 ... q_l) for each level l.
    log_q_prefix: Vec<f64>,
}

impl Params {
    /// Instantiates a named set.
    pub fn named(name: &str) -> Result<Arc<Self>> {
        Self::from_literal(literal(name)?.clone())
    }

    /// Instantiates a literal, refusing any non-`insecure-` set above the 128-bit bound.
    pub fn from_literal(lit: ParamsLiteral) -> Result<Arc<Self>> {
        if !(10..=17).contains(&lit.log_n) {
            return Err(CkksError::InvalidParams(format!(
                "log_n {} outside 10..=17",
                lit.log_n
            )));
        }
        if lit.q_bits.is_empty() || lit.p_bits.is_empty() {
            return Err(CkksError::InvalidParams("empty Q or P chain".into()));
        }
        if lit
            .q_bits
            .iter()
            .chain(lit.p_bits)
            .any(|&b| !(20..=61).contains(&b))
        {
            return Err(CkksError::InvalidParams(
                "prime sizes must be 20..=61 bits".into(),
            ));
        }
        let n = 1usize << lit.log_n;
        let q = ntt_primes(lit.q_bits, 2 * n as u64, &[]);
        let p = ntt_primes(lit.p_bits, 2 * n as u64, &q);
        let log_qp: f64 = q.iter().chain(&p).map(|&x| (x as f64).log2()).sum();
        let insecure = lit.name.starts_with(INSECURE_PREFIX);
        if !insecure {
            match max_log_qp(lit.log_n) {
                Some(bound) if log_qp <= bound => {}
                Some(bound) => {
                    return Err(CkksError::InvalidParams(format!(
                        "`{}`: log2(QP) = {log_qp:.1} exceeds the 128-bit bound {bound} for N=2^{}; \
                         name it `insecure-...` to use it in tests",
                        lit.name, lit.log_n
                    )));
                }
                None => {
                    return Err(CkksError::InvalidParams(format!(
                        "no 128-bit bound tabulated for N=2^{}",
                        lit.log_n
                    )));
                }
            }
        }
        let primes: Vec<u64> = q.iter().chain(&p).copied().collect();
        let ring = Ring::new(n, &primes)
            .ok_or_else(|| CkksError::InvalidParams("prime not NTT-friendly".into()))?;
        let mq: Vec<Modulus> = q.iter().map(|&x| Modulus::new(x)).collect();
        let q_inv = (0..q.len())
            .map(|j| (0..j).map(|i| mq[i].inv(mq[i].reduce(q[j]))).collect())
            .collect();
        let p_mod_q: Vec<u64> = mq
            .iter()
            .map(|m| p.iter().fold(1u64, |acc, &pk| m.mul(acc, m.reduce(pk))))
            .collect();
        let p_inv_mod_q = mq.iter().zip(&p_mod_q).map(|(m, &x)| m.inv(x)).collect();
        let mut id: u64 = 0xcbf29ce484222325;
        let mut feed = |x: u64| {
            for b in x.to_le_bytes() {
                id ^= b as u64;
                id = id.wrapping_mul(0x100000001b3);
            }
        };
        for b in lit.name.bytes() {
            feed(b as u64);
        }
        feed(lit.log_n as u64);
        feed(lit.log_scale as u64);
        primes.iter().for_each(|&x| feed(x));
        let log_q_prefix = q
            .iter()
            .scan(0.0, |acc, &x| {
                *acc += (x as f64).log2();
                Some(*acc)
            })
            .collect();
        Ok(Arc::new(Self {
            log_q_prefix,
            alpha: p.len(),
            literal: lit,
            n,
            q,
            p,
            id,
            ring,
            q_inv,
            p_mod_q,
            p_inv_mod_q,
        }))
    }

    /// Name of the set.
    pub fn name(&self) -> &str {
        self.literal.name
    }

    /// Highest level (number of Q primes minus one).
    pub fn max_level(&self) -> usize {
        self.q.len() - 1
    }

    /// log2 of the modulus q_0 * ... * q_level at `level` (levels above the
    /// top give the whole chain).
    pub fn log_q_at(&self, level: usize) -> f64 {
        self.log_q_prefix[level.min(self.q.len() - 1)]
    }

    /// Fails with [`CkksError::LevelAboveMax`] for a level the set does not have.
    pub fn check_level(&self, level: usize) -> Result<()> {
        if level > self.max_level() {
            return Err(CkksError::LevelAboveMax {
                level,
                max: self.max_level(),
            });
        }
        Ok(())
    }

    /// Fails unless `scale` is finite, at least 1, and leaves room below the
    /// modulus at `level` for a message of magnitude `bound`:
    /// `log2(scale * bound) < log2(Q_level) - 1` (the sign takes a bit), the
    /// rule [`Encoder::encode`](crate::Encoder::encode) applies to values.
    /// `what` names the operation in the error.
    pub fn check_scale(&self, scale: f64, level: usize, bound: f64, what: &str) -> Result<()> {
        if !(scale.is_finite() && scale >= 1.0) {
            return Err(CkksError::ScaleOutOfBounds(format!(
                "{what}: scale {scale:e} (2^{:.1}) is not a finite number >= 1",
                scale.log2()
            )));
        }
        let log_q = self.log_q_at(level);
        let bits = (scale * bound.max(1.0)).log2();
        if !bits.is_finite() || bits >= log_q - 1.0 {
            return Err(CkksError::ScaleOutOfBounds(format!(
                "{what}: scale 2^{:.1} leaves no room for the message below the modulus \
                 2^{log_q:.1} at level {level} (rescale first, or use a smaller scale)",
                scale.log2()
            )));
        }
        Ok(())
    }

    /// Maximum number of complex slots, N/2.
    pub fn max_slots(&self) -> usize {
        self.n / 2
    }

    /// Default encoding scale, 2^log_scale.
    pub fn default_scale(&self) -> f64 {
        2f64.powi(self.literal.log_scale as i32)
    }

    /// log2 of Q*P.
    pub fn log_qp(&self) -> f64 {
        self.q
            .iter()
            .chain(&self.p)
            .map(|&x| (x as f64).log2())
            .sum()
    }

    /// Claimed classical security in bits: `Some(128)` for checked sets, `None` for insecure ones.
    pub fn security_bits(&self) -> Option<u32> {
        if self.literal.name.starts_with(INSECURE_PREFIX) {
            None
        } else {
            Some(128)
        }
    }

    /// Number of key-switching digits at level `level`.
    pub fn dnum_at(&self, level: usize) -> usize {
        (level + 1).div_ceil(self.alpha)
    }

    /// Ring indices of the Q primes up to `level`.
    pub fn q_idx(&self, level: usize) -> Vec<usize> {
        (0..=level).collect()
    }

    /// Ring indices of Q primes up to `level` followed by all P primes.
    pub fn qp_idx(&self, level: usize) -> Vec<usize> {
        (0..=level)
            .chain(self.q.len()..self.q.len() + self.p.len())
            .collect()
    }

    /// Ring indices of the P primes.
    pub fn p_idx(&self) -> Vec<usize> {
        (self.q.len()..self.q.len() + self.p.len()).collect()
    }
}

/// A summary of a parameter set, as `residue params --json` prints it.
#[derive(Clone, Debug, Serialize)]
pub struct ParamsSummary {
    /// Name.
    pub name: String,
    /// log2 N.
    pub log_n: u32,
    /// Bit sizes of the Q primes, in chain order.
    pub q_bits: Vec<u32>,
    /// Bit sizes of the P primes.
    pub p_bits: Vec<u32>,
    /// log2(QP), rounded to 0.1.
    pub log_qp: f64,
    /// 128 for checked sets, null for insecure ones.
    pub security_bits: Option<u32>,
    /// Multiplicative levels (Q primes minus one).
    pub levels: usize,
    /// Complex slots N/2.
    pub slots: usize,
    /// log2 of the default scale.
    pub log_scale: u32,
    /// Key-switching digits at the top level.
    pub dnum: usize,
    /// What the set is for.
    pub description: String,
}

impl Params {
    /// The summary `residue params` shows.
    pub fn summary(&self) -> ParamsSummary {
        let bits = |v: &[u64]| {
            v.iter()
                .map(|&x| (x as f64).log2().round() as u32)
                .collect()
        };
        ParamsSummary {
            name: self.name().to_string(),
            log_n: self.literal.log_n,
            q_bits: bits(&self.q),
            p_bits: bits(&self.p),
            log_qp: (self.log_qp() * 10.0).round() / 10.0,
            security_bits: self.security_bits(),
            levels: self.max_level(),
            slots: self.max_slots(),
            log_scale: self.literal.log_scale,
            dnum: self.dnum_at(self.max_level()),
            description: self.literal.description.to_string(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secure_sets_respect_the_bound() {
        for lit in PARAM_SETS {
            if lit.log_n >= 15 {
                continue; // instantiating big rings is slow in debug tests; checked below by bits
            }
            let p = Params::from_literal(lit.clone()).unwrap();
            if let Some(b) = max_log_qp(lit.log_n)
                && p.security_bits().is_some()
            {
                assert!(p.log_qp() <= b);
            }
        }
        for lit in PARAM_SETS
            .iter()
            .filter(|l| !l.name.starts_with(INSECURE_PREFIX))
        {
            let bits: u32 = lit.q_bits.iter().chain(lit.p_bits).sum();
            assert!(
                bits as f64 <= max_log_qp(lit.log_n).unwrap(),
                "{}",
                lit.name
            );
        }
    }

    #[test]
    fn oversized_secure_set_is_refused() {
        let lit = ParamsLiteral {
            name: "too-big",
            description: "",
            log_n: 10,
            q_bits: &[30],
            p_bits: &[30],
            log_scale: 20,
        };
        assert!(matches!(
            Params::from_literal(lit.clone()),
            Err(CkksError::InvalidParams(_))
        ));
        let ok = Params::from_literal(ParamsLiteral {
            name: "insecure-too-big",
            ..lit
        })
        .unwrap();
        assert_eq!(ok.security_bits(), None);
    }
}
