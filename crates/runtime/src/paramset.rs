//! The compiler's view of a parameter set, built from the engine's named set
//! (one source of truth: levels, `L_eff`, slots and key sizes come from
//! `ckks`, never from a hand-kept copy).

use compiler::cost::CostTable;
use compiler::params::ParamSet;

/// The compiler's [`ParamSet`] for an engine set: `L_eff` is what a
/// bootstrap leaves (`ckks::bootstrap::levels_after`) or, for a set that
/// does not bootstrap, its top level; the input is encrypted at `L_eff`.
/// Costs are the committed `residue bench ckks` measurements where the set
/// has them (`docs/data/`), else the compiler's per-limb estimate with the
/// bootstrap scaled from the measured `n16-boot` figure by ring degree and
/// limb count.
pub fn param_set(params: &ckks::Params) -> ParamSet {
    let lit_q = params.q.len() as u32;
    let p_primes = params.p.len() as u32;
    let log_n = params.n.trailing_zeros();
    let (l_eff, boot_keys, min_sparse_slots) = match ckks::bootstrap::config_for(params) {
        Some(cfg) => (
            ckks::bootstrap::levels_after(params, &cfg) as u32,
            ckks::bootstrap::rotations(params, &cfg).len() as u32 + 1,
            ckks::bootstrap::min_slots(&cfg),
        ),
        None => (params.max_level() as u32, 0, 0),
    };
    // Measured: 12.0 s for 30 limbs at N = 2^16 on one core (docs/benchmarks.md).
    let boot_seconds = 12.0 / 30.0 * (lit_q + p_primes) as f64 * 2f64.powi(log_n as i32 - 16);
    let mut costs = CostTable::estimate(log_n, lit_q - 1, p_primes, boot_seconds);
    let records: Vec<_> = measured(params.name())
        .into_iter()
        .filter_map(|json| CostTable::parse_bench(json).ok())
        .flatten()
        .collect();
    if !records.is_empty() {
        costs.calibrate(&records, Some(1));
        costs.source = format!("measured ({}, 1 thread, docs/data)", costs.source);
    }
    ParamSet {
        name: params.name().to_string(),
        description: params.summary().description,
        log_n,
        l_eff,
        input_level: l_eff,
        log_scale: params.default_scale().log2().round() as u32,
        q_primes: lit_q,
        p_primes,
        log_qp: params.log_qp().ceil() as u32,
        bootstrap_rotation_keys: boot_keys,
        in_ckks: true,
        min_sparse_slots,
        costs,
    }
}

/// `residue bench ckks` records committed for a set (single-threaded), used
/// by default so that estimates are measured costs, not guesses.
fn measured(name: &str) -> Vec<&'static str> {
    // Session 9 engine (lazy basis conversion, SIMD rescale, mimalloc
    // arenas kept 100 s): operations and bootstraps, 1 thread, measured
    // with everything else paused (docs/benchmarks.md, "Bootstrapping in
    // 12 s"): n16-boot and n16-boot-l11 full-slot and 8192-slot
    // bootstraps, n16-boot-l13 full slots.
    const OPS_N16: &str = include_str!("../../../docs/data/ops-n16-boot-s9-t1.json");
    const BOOT_N16: &str = include_str!("../../../docs/data/boot16-s9-t1.json");
    const BOOT_N16_L11: &str = include_str!("../../../docs/data/boot16-l11-s9-t1.json");
    const BOOT_N16_L13: &str = include_str!("../../../docs/data/boot16-l13-s9-t1.json");
    match name {
        "n16-boot" => vec![OPS_N16, BOOT_N16],
        "n16-boot-l11" => vec![OPS_N16, BOOT_N16_L11],
        "n16-boot-l13" => vec![OPS_N16, BOOT_N16_L13],
        _ => Vec::new(),
    }
}

/// The compiler's view of every bootstrappable engine set that is secure
/// (the sets `--params auto` chooses among).
pub fn bootstrappable_sets() -> Vec<ParamSet> {
    ckks::PARAM_SETS
        .iter()
        .filter(|l| !l.name.starts_with(ckks::params::INSECURE_PREFIX))
        .filter_map(|l| ckks::Params::named(l.name).ok())
        .filter(|p| ckks::bootstrap::config_for(p).is_some())
        .map(|p| param_set(&p))
        .collect()
}
