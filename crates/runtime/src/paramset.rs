//! The compiler's view of a parameter set, built from the engine's named set
//! (one source of truth: levels, `L_eff`, slots and key sizes come from
//! `ckks`, never from a hand-kept copy).

use std::collections::BTreeMap;
use std::sync::{Mutex, OnceLock};

use compiler::cost::CostTable;
use compiler::params::ParamSet;

/// The compiler's [`ParamSet`] for an engine set: `L_eff` is what a
/// bootstrap leaves (`ckks::bootstrap::levels_after`) or, for a set that
/// does not bootstrap, its top level; the input may be encrypted as high as
/// `ckks::bootstrap::fresh_level` (for `n16-boot`, 3 levels above `L_eff`).
/// Costs are the committed `residue bench ckks` measurements where the set
/// has them (`docs/data/`), else the compiler's per-limb estimate with the
/// bootstrap scaled from the measured `n16-boot` figure by ring degree and
/// limb count. Priced for one thread; [`param_set_threads`] for more.
pub fn param_set(params: &ckks::Params) -> ParamSet {
    param_set_threads(params, 1).expect("one-thread costs always exist")
}

/// [`param_set`] priced for `threads` worker threads: the committed
/// `residue bench ckks` records measured with that many threads. One thread
/// always has a table (measured, or the per-limb estimate); for more,
/// `None` unless both the operations and the bootstrap were measured at
/// that thread count for this set (see [`measured_threads`]).
pub fn param_set_threads(params: &ckks::Params, threads: u32) -> Option<ParamSet> {
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
    let records = records(params.name(), threads);
    if !records.is_empty() {
        costs.calibrate(&records, Some(threads));
        costs.source = format!(
            "measured ({}, {threads} thread{}, docs/data)",
            costs.source,
            if threads == 1 { "" } else { "s" }
        );
    } else if threads != 1 {
        return None;
    }
    // Layouts as the one-thread table chooses them: every command that
    // compiles a plan to run (`compile`, `eval --he`, `demo`, `reproduce`)
    // prices with one thread, so a T-thread estimate is of that plan.
    let layout_costs = if threads == 1 {
        None
    } else {
        let one = param_set_threads(params, 1).expect("one-thread costs always exist");
        let at = |op| one.costs.at(op, l_eff);
        Some((
            at(compiler::cost::CkksOp::RotateHoisted),
            at(compiler::cost::CkksOp::Rotate),
        ))
    };
    Some(ParamSet {
        bootstrap_galois: bootstrap_galois(params),
        name: params.name().to_string(),
        description: params.summary().description,
        log_n,
        l_eff,
        input_level: ckks::bootstrap::fresh_level(params) as u32,
        log_scale: params.default_scale().log2().round() as u32,
        q_primes: lit_q,
        p_primes,
        log_qp: params.log_qp().ceil() as u32,
        bootstrap_rotation_keys: boot_keys,
        in_ckks: true,
        min_sparse_slots,
        costs,
        layout_costs,
    })
}

/// Bootstrapping's own Galois keys for every slot count the set bootstraps
/// (`ckks::bootstrap::galois_levels`, what keygen makes), computed once per
/// set and process.
fn bootstrap_galois(params: &ckks::Params) -> BTreeMap<usize, BTreeMap<u64, u32>> {
    type Keys = BTreeMap<usize, BTreeMap<u64, u32>>;
    static CACHE: OnceLock<Mutex<BTreeMap<u64, Keys>>> = OnceLock::new();
    let cache = CACHE.get_or_init(Default::default);
    if let Some(k) = cache.lock().ok().and_then(|c| c.get(&params.id).cloned()) {
        return k;
    }
    let Some(cfg) = ckks::bootstrap::config_for(params) else {
        return BTreeMap::new();
    };
    let max = params.max_slots();
    let keys: Keys = std::iter::successors(Some(ckks::bootstrap::min_slots(&cfg)), |&s| {
        (2 * s <= max).then_some(2 * s)
    })
    .map(|s| {
        let levels = ckks::bootstrap::galois_levels(params, &cfg.clone().with_slots(s, max));
        (s, levels.into_iter().map(|(g, l)| (g, l as u32)).collect())
    })
    .collect();
    if let Ok(mut c) = cache.lock() {
        c.insert(params.id, keys.clone());
    }
    keys
}

/// Thread counts with committed measurements for the set named `name`
/// (always including 1: the estimate stands in where nothing is measured).
pub fn measured_threads(name: &str) -> Vec<u32> {
    let mut t = vec![1];
    t.extend((2..=64).filter(|&n| !records(name, n).is_empty()));
    t
}

/// The committed records for the set `name` at `threads` threads.
fn records(name: &str, threads: u32) -> Vec<compiler::cost::BenchRecord> {
    measured(name, threads)
        .into_iter()
        .filter_map(|json| CostTable::parse_bench(json).ok())
        .flatten()
        .filter(|r| r.threads == threads)
        .collect()
}

/// `residue bench ckks` records committed for a set at a thread count, used
/// by default so that estimates are measured costs, not guesses.
fn measured(name: &str, threads: u32) -> Vec<&'static str> {
    // Records of the host they were taken on, everything else paused: the
    // 2-core AMD EPYC (Zen 4, AVX-512 IFMA) of sessions 1-13 and 18-27;
    // sessions 14-17 ran on an Intel Xeon with IFMA whose speed drifted by
    // up to a third between windows (docs/benchmarks.md, "Session 18").
    // - n16-boot, session 27 (scripts/measure/s27-records.sh): leveled
    //   operations at levels 1 to 13 and 24, 1 and 2 threads, including what
    //   a linear step really runs: `encode_real` at 8192 slots (Fashion
    //   plans), 16384 and 32768, `mul_plain_acc` and `rotate_sum` (giant
    //   steps summed with one ModDown); bootstraps at the slot counts plans
    //   use, with the diagonals held as `residue infer` holds them by
    //   default: NTT form up to N/8 slots, coefficients (`--low-memory`)
    //   above. They replace session 18's (scripts/measure/s18-epyc.sh),
    //   which priced a 4096-slot bootstrap at 4.47 s on 2 threads where
    //   the same bench took 2.23-2.94 s in session 27 (docs/benchmarks.md,
    //   "Session 27: the host runs about 2x faster ...").
    // - the -l11 and -l13 sets: bootstraps from session 14 on the Intel host
    //   (scripts/measure/s14-boot.sh: before the wide kernels and on the
    //   slower host, so their estimates run high against n16-boot's).
    // A later file's record of the same op, level and slots wins.
    // `encrypt` and `decrypt` (client side: in no plan's estimate) are still
    // the top-level records of sessions 9 and 11 (EPYC): the files listed
    // first.
    const OPS_N16: &str = include_str!("../../../docs/data/ops-n16-boot-s9-t1.json");
    const OPS_N16_T2: &str = include_str!("../../../docs/data/ops-n16-boot-s11-t2.json");
    const LEVELS_T1: &str = include_str!("../../../docs/data/ops-n16-boot-levels-s27-t1.json");
    const LEVELS_T2: &str = include_str!("../../../docs/data/ops-n16-boot-levels-s27-t2.json");
    const ENC_T1: [&str; 2] = [
        include_str!("../../../docs/data/ops-n16-boot-encode-16384-s27-t1.json"),
        include_str!("../../../docs/data/ops-n16-boot-encode-32768-s27-t1.json"),
    ];
    const ENC_T2: [&str; 2] = [
        include_str!("../../../docs/data/ops-n16-boot-encode-16384-s27-t2.json"),
        include_str!("../../../docs/data/ops-n16-boot-encode-32768-s27-t2.json"),
    ];
    // `boot!(set, slots, threads, storage)`: storage "" for NTT-form
    // diagonals, "-lowmem" for coefficients.
    macro_rules! boot {
        ($set:literal, $slots:literal, $t:literal, $storage:literal) => {
            include_str!(concat!(
                "../../../docs/data/boot16",
                $set,
                "-s14-",
                $slots,
                "-t",
                $t,
                $storage,
                ".json"
            ))
        };
    }
    let ops = |t: u32| -> Vec<&'static str> {
        let mut v = if t == 1 {
            vec![OPS_N16, LEVELS_T1]
        } else {
            vec![OPS_N16_T2, LEVELS_T2]
        };
        v.extend(if t == 1 { ENC_T1 } else { ENC_T2 });
        v
    };
    // Each set's records at one thread count (a literal, for include_str!).
    macro_rules! boots {
        ($t:literal) => {
            match name {
                "n16-boot" => vec![
                    // Session 27's window, with the leveled records.
                    include_str!(concat!(
                        "../../../docs/data/boot16-s27-32768-t",
                        $t,
                        "-lowmem.json"
                    )),
                    include_str!(concat!(
                        "../../../docs/data/boot16-s27-16384-t",
                        $t,
                        "-lowmem.json"
                    )),
                    include_str!(concat!("../../../docs/data/boot16-s27-8192-t", $t, ".json")),
                    include_str!(concat!("../../../docs/data/boot16-s27-4096-t", $t, ".json")),
                ],
                "n16-boot-l11" => vec![
                    boot!("-l11", "32768", $t, "-lowmem"),
                    boot!("-l11", "8192", $t, ""),
                ],
                "n16-boot-l13" => vec![
                    boot!("-l13", "32768", $t, "-lowmem"),
                    boot!("-l13", "8192", $t, ""),
                ],
                _ => return Vec::new(),
            }
        };
    }
    let boots: Vec<&'static str> = match threads {
        1 => boots!("1"),
        2 => boots!("2"),
        _ => return Vec::new(),
    };
    let mut v = ops(threads);
    v.extend(boots);
    v
}

/// The compiler's view of every bootstrappable engine set that is secure
/// (the sets `--params auto` chooses among).
pub fn bootstrappable_sets() -> Vec<ParamSet> {
    bootstrappable_sets_threads(1)
}

/// [`bootstrappable_sets`] priced for `threads` threads: the sets measured
/// at that thread count (all of them for one thread).
pub fn bootstrappable_sets_threads(threads: u32) -> Vec<ParamSet> {
    ckks::PARAM_SETS
        .iter()
        .filter(|l| !l.name.starts_with(ckks::params::INSECURE_PREFIX))
        .filter_map(|l| ckks::Params::named(l.name).ok())
        .filter(|p| ckks::bootstrap::config_for(p).is_some())
        .filter_map(|p| param_set_threads(&p, threads))
        .collect()
}
