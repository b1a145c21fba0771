//! `residue bench ckks`: median times of the engine's operations.

use anyhow::{Context, Result, bail};
use ckks::{
    Complex64, Decryptor, Encoder, Encryptor, EvaluationKeys, Evaluator, KeyGenerator, Params,
};
use indicatif::{ProgressBar, ProgressStyle};
use serde::Serialize;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

/// Arguments of `residue bench`.
#[derive(clap::Args)]
pub struct Args {
    /// What to benchmark.
    #[command(subcommand)]
    pub what: What,
}

/// Benchmark targets.
#[derive(clap::Subcommand)]
pub enum What {
    /// CKKS engine operations at the top level of a parameter set.
    Ckks(CkksArgs),
    /// A bounded load test of `residue serve` on loopback.
    Serve(super::bench_serve::Args),
}

/// Arguments of `residue bench ckks`.
#[derive(clap::Args)]
pub struct CkksArgs {
    /// Parameter set name (see `residue params`).
    #[arg(long)]
    pub params: String,
    /// Threads; default: 1 and then all cores.
    #[arg(long)]
    pub threads: Option<usize>,
    /// Repetitions per operation (the median is reported).
    #[arg(long, default_value_t = 7)]
    pub reps: usize,
    #[command(flatten)]
    pub out: super::json::JsonArgs,
    /// Also write a markdown table here.
    #[arg(long)]
    pub markdown: Option<PathBuf>,
    /// Only these operations (comma-separated; default: all, plus `bootstrap`
    /// for bootstrappable sets).
    #[arg(long, value_delimiter = ',')]
    pub ops: Option<Vec<String>>,
    /// Levels to measure the leveled operations at (comma-separated, each
    /// at least 1; default: the set's top level). An operation at level `l` works on
    /// `l + 1` limbs, and key switching on `ceil((l + 1) / |P|)` digits, so
    /// its cost falls faster than linearly with the level: the compiler
    /// interpolates between measured levels (`compiler::cost::CostTable::calibrate`).
    #[arg(long, value_delimiter = ',')]
    pub levels: Option<Vec<usize>>,
    /// Bootstrap: slots of the refreshed ciphertext (a power of two up to
    /// N/2; default N/2, full packing); sparse packing with at most N/4
    /// slots runs EvalMod once instead of twice. `encode_real`: slots of
    /// the encoded vector (a linear layer encodes its diagonals at its
    /// plan's slot count). Records say `"slots"`.
    #[arg(long)]
    pub slots: Option<usize>,
    /// Turn the engine's AVX-512 IFMA kernels off (its AVX2 path; the same
    /// as `RESIDUE_NO_AVX512=1`; `RESIDUE_NO_AVX2=1` selects the portable
    /// path). The NTTs come from tfhe-ntt, which still uses AVX-512 where
    /// the CPU has it: to time a CPU without AVX-512 on one that has it,
    /// build with `scripts/build-avx2-emulation.sh` (records say
    /// `"kernels"`: the engine's path only).
    #[arg(long)]
    pub no_avx512: bool,
    /// Bootstrap only: one more bootstrap with the engine's kernel profile
    /// on (`ckks::profile`): milliseconds and calls of ModUp, inner
    /// product, ModDown, automorphisms, NTTs, ... in each stage, as
    /// `profile` in the JSON record and a table in the markdown.
    #[arg(long)]
    pub profile: bool,
    /// Bootstrap only: hold the DFT diagonals as integer coefficients (what
    /// `residue infer` does by default) instead of the engine's NTT form:
    /// less memory, each diagonal expanded at every bootstrap.
    #[arg(long)]
    pub low_memory: bool,
    /// Bootstrap only: log2(q_0 / message scale) before ModRaise, in place
    /// of the parameter set's (8 at full slots; for sparse packing 8 from
    /// `BootstrapConfig::small_slots` up, 1024 at N = 2^16, and 10 below).
    /// Smaller keeps EvalMod's noise smaller against the message but
    /// shrinks the input bound (`"input_bound"` in the record: the slot
    /// magnitude every spectrum, constants included, keeps its precision
    /// within). The bench's message is random slots of magnitude up to 1,
    /// whose small coefficients favour small ratios: check a new ratio at
    /// its bound with `cargo run --release -p ckks --example bootprec`.
    /// Records say `"log_message_ratio"`.
    #[arg(long)]
    pub log_message_ratio: Option<u32>,
    /// Leveled operations only: run as many independent copies of each
    /// operation at once as there are threads (several per thread, on the
    /// rayon pool) and report wall time divided by the copies: the cost of
    /// one operation when the threads are shared *between* operations, as
    /// the runtime's linear layers share them (baby steps and giant-step
    /// groups in parallel), rather than *within* one as without this flag.
    /// Records say `"concurrent"`. Not for `encrypt`/`decrypt` (client
    /// operations, always one at a time).
    #[arg(long)]
    pub concurrent: bool,
}

use runtime::exec::KernelTime;

/// Stage -> kernel -> time (`--profile`).
pub type Profile = std::collections::BTreeMap<String, runtime::exec::KernelTimes>;

/// One measurement.
#[derive(Serialize, Clone, Debug)]
pub struct Record {
    /// Operation name.
    pub op: String,
    /// Worker threads used.
    pub threads: usize,
    /// Median wall time in milliseconds.
    pub median_ms: f64,
    /// Level the operation ran at (`--levels`; absent: the top level).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub level: Option<usize>,
    /// The engine's kernel path: `avx512-ifma`, `avx2` or `portable`
    /// (`ckks::kernel_path`).
    pub kernels: &'static str,
    /// Bootstrap only: levels left for computation afterwards.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub levels_after: Option<usize>,
    /// Bootstrap only: mean over slots of -log2 |error| (message magnitude <= 1).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub precision_bits_mean: Option<f64>,
    /// Bootstrap only: minimum over slots of -log2 |error|.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub precision_bits_min: Option<f64>,
    /// Bootstrap only: bytes of evaluation keys (relinearization, Galois, encapsulation).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub key_bytes: Option<usize>,
    /// Bootstrap only: seconds of key generation.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub keygen_s: Option<f64>,
    /// Bootstrap only: slots of the refreshed ciphertext.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub slots: Option<usize>,
    /// Bootstrap only: median CPU milliseconds of the process per bootstrap
    /// (all threads; with one thread, what the wall time would be on a
    /// quiet machine).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cpu_ms: Option<f64>,
    /// Bootstrap only: milliseconds of each stage in one more run
    /// (`raise`: prescale, ModRaise and the sparse-secret switches;
    /// `coeffs_to_slots`; `eval_mod`; `slots_to_coeffs`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stages_ms: Option<std::collections::BTreeMap<String, f64>>,
    /// Bootstrap with `--profile` only: stage (`raise`, `coeffs_to_slots`,
    /// `eval_mod`, `slots_to_coeffs`) -> kernel (`ckks::profile::Kernel`
    /// names) -> milliseconds and calls.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub profile: Option<Profile>,
    /// Bootstrap only: bytes of the encoded CoeffsToSlots and
    /// SlotsToCoeffs diagonals after the runs.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub transform_bytes: Option<usize>,
    /// Bootstrap only: whether the diagonals were held as coefficients
    /// (`--low-memory`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub low_memory: Option<bool>,
    /// Bootstrap only: the message ratio it ran with (log2(q_0 / scale)).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub log_message_ratio: Option<u32>,
    /// Bootstrap only: the documented input bound at that ratio
    /// (`BootstrapConfig::input_bound`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub input_bound: Option<f64>,
    /// `--concurrent` only: copies of the operation that ran at once;
    /// `median_ms` is the wall time per copy.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub concurrent: Option<usize>,
}

impl Record {
    fn plain(op: &str, threads: usize, median_ms: f64) -> Self {
        Self {
            op: op.to_string(),
            threads,
            median_ms,
            level: None,
            kernels: ckks::kernel_path(),
            levels_after: None,
            precision_bits_mean: None,
            precision_bits_min: None,
            key_bytes: None,
            keygen_s: None,
            slots: None,
            cpu_ms: None,
            stages_ms: None,
            profile: None,
            transform_bytes: None,
            low_memory: None,
            log_message_ratio: None,
            input_bound: None,
            concurrent: None,
        }
    }
}

fn median_ms(reps: usize, mut f: impl FnMut()) -> f64 {
    f(); // warm-up
    let mut t: Vec<f64> = (0..reps)
        .map(|_| {
            let s = Instant::now();
            f();
            s.elapsed().as_secs_f64() * 1e3
        })
        .collect();
    t.sort_by(f64::total_cmp);
    t[t.len() / 2]
}

/// Copies per thread of one operation in a `--concurrent` measurement:
/// enough that one copy finishing late does not leave a thread idle for
/// long.
const COPIES_PER_THREAD: usize = 4;

/// The median over `reps` of the wall milliseconds per call of `f` when
/// `copies` calls run at once on the current rayon pool (`f` gets the
/// copy's index); `copies <= 1`: one call at a time, as [`median_ms`].
fn median_ms_concurrent(reps: usize, copies: usize, f: impl Fn(usize) + Sync) -> f64 {
    use rayon::prelude::*;
    if copies <= 1 {
        return median_ms(reps, || f(0));
    }
    median_ms(reps, || (0..copies).into_par_iter().for_each(&f)) / copies as f64
}

const OPS: [&str; 12] = [
    "encode",
    "encode_real",
    "encrypt",
    "decrypt",
    "add",
    "mul_plain",
    "mul_plain_acc",
    "mul_relin",
    "rescale",
    "rotate",
    "rotate_hoisted",
    "rotate_sum",
];

/// Terms of the `rotate_sum` benchmark (a linear layer's output sums tens
/// of giant steps; its two ModDowns are spread over these).
const ROTATE_SUM_TERMS: usize = 8;

fn bench_ckks(a: &CkksArgs, threads: usize, bar: &ProgressBar) -> Result<Vec<Record>> {
    let params = Params::named(&a.params)?;
    let top = params.max_level();
    // One key set for every level.
    let mut kg = KeyGenerator::new(params.clone());
    let sk = kg.secret_key();
    let pk = kg.public_key(&sk);
    let steps: Vec<i64> = (1..=8).collect();
    let keys = EvaluationKeys {
        relin: Some(kg.relin_key(&sk)),
        galois: Some(kg.galois_keys(&sk, &steps, false)),
    };
    let k = BenchKeys {
        eval: Evaluator::new(params.clone(), Arc::new(keys))?,
        sk,
        pk,
        steps,
    };
    match &a.levels {
        None => bench_ckks_at(a, &params, &k, top, None, threads, bar),
        Some(levels) => {
            let mut out = Vec::new();
            for &l in levels {
                out.extend(bench_ckks_at(a, &params, &k, l, Some(l), threads, bar)?);
            }
            Ok(out)
        }
    }
}

/// The keys and evaluator every level's measurements share.
struct BenchKeys {
    sk: ckks::SecretKey,
    pk: ckks::PublicKey,
    eval: Evaluator,
    steps: Vec<i64>,
}

/// The leveled operations on ciphertexts at level `lvl` (`level`: what the
/// records say, `None` for the top level by default).
fn bench_ckks_at(
    a: &CkksArgs,
    params: &Arc<Params>,
    k: &BenchKeys,
    lvl: usize,
    level: Option<usize>,
    threads: usize,
    bar: &ProgressBar,
) -> Result<Vec<Record>> {
    let params = params.clone();
    let n = params.max_slots();
    let scale = params.default_scale();
    let enc = Encoder::new(params.clone());
    let BenchKeys {
        sk,
        pk,
        eval,
        steps,
    } = k;
    let vals: Vec<Complex64> = (0..n)
        .map(|i| Complex64::new((i as f64 * 0.01).sin(), 0.0))
        .collect();
    let pt = enc.encode(&vals, lvl, scale, n)?;
    // `encode_real`: what a linear layer encodes (a real diagonal) at the
    // plan's slot count (`--slots`, default full).
    let real_slots = a.slots.unwrap_or(n);
    let real: Vec<f64> = vals.iter().take(real_slots).map(|v| v.re).collect();
    let mut encryptor = Encryptor::new(params.clone());
    let ct = encryptor.encrypt_pk(pk, &pt)?;
    let ct2 = encryptor.encrypt_pk(pk, &pt)?;
    let prod = eval.mul_relin(&ct, &ct2)?;
    let at = level.map_or(String::new(), |l| format!(" at level {l}"));
    let dec = Decryptor::new(sk);
    let mut out = Vec::new();
    for op in OPS {
        if !wanted(a, op) {
            bar.inc(1);
            continue;
        }
        bar.set_message(format!("{op}{at} ({threads} threads)"));
        let r = a.reps;
        // `--concurrent`: this many independent copies at once (client
        // operations always one at a time).
        let copies = if a.concurrent && !matches!(op, "encrypt" | "decrypt") {
            threads * COPIES_PER_THREAD
        } else {
            1
        };
        let timed = |f: &(dyn Fn(usize) + Sync)| median_ms_concurrent(r, copies, f);
        let ms = match op {
            "encode" => timed(&|_| {
                enc.encode(&vals, lvl, scale, n).unwrap();
            }),
            "encode_real" => timed(&|_| {
                enc.encode_real(&real, lvl, scale, real_slots).unwrap();
            }),
            "encrypt" => median_ms(r, || {
                encryptor.encrypt_pk(pk, &pt).unwrap();
            }),
            "decrypt" => median_ms(r, || {
                enc.decode(&dec.decrypt(&ct).unwrap());
            }),
            "add" => timed(&|_| {
                eval.add(&ct, &ct2).unwrap();
            }),
            "mul_plain" => timed(&|_| {
                eval.mul_plain(&ct, &pt).unwrap();
            }),
            "mul_plain_acc" => {
                // One accumulator per copy, so that copies never wait on
                // each other's (uncontended) lock.
                let first = eval.mul_plain(&ct, &pt)?;
                let accs: Vec<std::sync::Mutex<ckks::Ciphertext>> = (0..copies)
                    .map(|_| std::sync::Mutex::new(first.clone()))
                    .collect();
                timed(&|i| {
                    let mut acc = accs[i]
                        .lock()
                        .expect("never poisoned: the bench panics instead");
                    eval.mul_plain_acc(&mut acc, &ct2, &pt).unwrap();
                })
            }
            "mul_relin" => timed(&|_| {
                eval.mul_relin(&ct, &ct2).unwrap();
            }),
            "rescale" => timed(&|_| {
                eval.rescale(&prod).unwrap();
            }),
            "rotate" => timed(&|_| {
                eval.rotate(&ct, 1).unwrap();
            }),
            "rotate_hoisted" => {
                timed(&|_| {
                    eval.rotate_hoisted(&ct, steps).unwrap();
                }) / steps.len() as f64
            }
            "rotate_sum" => {
                // Per term: a giant step of a linear layer (its own ModUp and
                // inner product; the sum's one ModDown shared).
                let terms: Vec<(&ckks::Ciphertext, i64)> = (0..ROTATE_SUM_TERMS)
                    .map(|i| (if i % 2 == 0 { &ct } else { &ct2 }, steps[i % steps.len()]))
                    .collect();
                timed(&|_| {
                    eval.rotate_sum(&terms).unwrap();
                }) / ROTATE_SUM_TERMS as f64
            }
            _ => unreachable!(),
        };
        let mut rec = Record::plain(op, threads, ms);
        rec.level = level;
        rec.concurrent = (copies > 1).then_some(copies);
        if op == "encode_real" {
            rec.slots = Some(real_slots);
        }
        out.push(rec);
        bar.inc(1);
    }
    Ok(out)
}

fn wanted(a: &CkksArgs, op: &str) -> bool {
    a.ops.as_ref().is_none_or(|v| v.iter().any(|o| o == op))
}

/// Key generation, then `reps` bootstraps of a random message of
/// `--slots` slots (full by default).
fn bench_bootstrap(a: &CkksArgs, threads: usize, bar: &ProgressBar) -> Result<Option<Record>> {
    let params = Params::named(&a.params)?;
    let Some(cfg) = ckks::bootstrap::config_for(&params) else {
        return Ok(None);
    };
    if !wanted(a, "bootstrap") {
        return Ok(None);
    }
    let max = params.max_slots();
    let n = a.slots.unwrap_or(max);
    if !n.is_power_of_two() || n > max {
        bail!("--slots {n}: a power of two up to {max} for `{}`", a.params);
    }
    let mut cfg = cfg.with_slots(n, max);
    if let Some(r) = a.log_message_ratio {
        cfg.log_message_ratio = r;
    }
    cfg.check(&params)
        .with_context(|| format!("--log-message-ratio {}", cfg.log_message_ratio))?;
    let (ratio, bound) = (cfg.log_message_ratio, cfg.input_bound());
    bar.set_message(format!("bootstrap keygen ({threads} threads)"));
    let t = Instant::now();
    let mut kg = KeyGenerator::new(params.clone());
    let sk = kg.secret_key();
    let keys = kg.bootstrap_keys(&sk, &cfg, &[]);
    let key_bytes = keys.eval.relin.as_ref().map_or(0, |k| k.size_bytes())
        + keys.eval.galois.as_ref().map_or(0, |k| k.size_bytes())
        + keys.boot.size_bytes();
    let boot = ckks::bootstrap::Bootstrapper::with_storage(
        params.clone(),
        cfg,
        keys.boot,
        if a.low_memory {
            runtime::server::DiagonalStorage::Coefficients
        } else {
            runtime::server::DiagonalStorage::Ntt
        },
    )?;
    let keygen_s = t.elapsed().as_secs_f64();
    let eval = Evaluator::new(params.clone(), Arc::new(keys.eval))?;
    let enc = Encoder::new(params.clone());
    let z: Vec<Complex64> = (0..n)
        .map(|i| {
            let x = (i as f64 * 0.618_033_988_7).fract() * 2.0 - 1.0;
            let y = (i as f64 * 0.414_213_562_3).fract() * 2.0 - 1.0;
            Complex64::new(x, y) * std::f64::consts::FRAC_1_SQRT_2
        })
        .collect();
    let pt = enc.encode(&z, 0, params.default_scale(), n)?;
    let ct = Encryptor::new(params.clone()).encrypt_sk(&sk, &pt)?;
    bar.set_message(format!("bootstrap ({threads} threads)"));
    let mut out = boot.bootstrap(&eval, &ct)?; // warm-up (encodes SlotsToCoeffs once)
    let reps = a.reps.min(3);
    let mut times: Vec<f64> = Vec::with_capacity(reps);
    let mut cpu: Vec<f64> = Vec::with_capacity(reps);
    for _ in 0..reps {
        let s = Instant::now();
        let c = super::he::CpuClock::start();
        out = boot.bootstrap(&eval, &ct)?;
        times.push(s.elapsed().as_secs_f64() * 1e3);
        if let Some(secs) = c.seconds() {
            cpu.push(secs * 1e3);
        }
    }
    times.sort_by(f64::total_cmp);
    cpu.sort_by(f64::total_cmp);
    let stages = bootstrap_stages(&boot, &eval, &ct, None)?;
    let profile = if a.profile {
        let mut prof = Profile::new();
        ckks::profile::set_enabled(true);
        let r = bootstrap_stages(&boot, &eval, &ct, Some(&mut prof));
        ckks::profile::set_enabled(false);
        r?;
        Some(prof)
    } else {
        None
    };
    let got = enc.decode(&Decryptor::new(&sk).decrypt(&out)?);
    let bits: Vec<f64> = got
        .iter()
        .zip(&z)
        .map(|(g, w)| {
            // A NaN slot stays NaN (`NaN.max(1e-30)` would claim ~100 bits).
            let e = (g - w).norm();
            if e.is_nan() {
                f64::NAN
            } else {
                -(e.max(1e-30)).log2()
            }
        })
        .collect();
    let mean = bits.iter().sum::<f64>() / bits.len() as f64;
    let min = bits.iter().copied().fold(f64::INFINITY, |m, b| {
        if m.is_nan() || b.is_nan() {
            f64::NAN
        } else {
            m.min(b)
        }
    });
    bar.inc(1);
    Ok(Some(Record {
        levels_after: Some(out.level()),
        precision_bits_mean: Some(mean),
        precision_bits_min: Some(min),
        key_bytes: Some(key_bytes),
        keygen_s: Some(keygen_s),
        slots: Some(n),
        stages_ms: Some(stages),
        profile,
        cpu_ms: cpu.get(cpu.len() / 2).copied(),
        transform_bytes: Some(boot.transform_bytes()),
        low_memory: Some(a.low_memory),
        log_message_ratio: Some(ratio),
        input_bound: Some(bound),
        ..Record::plain("bootstrap", threads, times[times.len() / 2])
    }))
}

/// One bootstrap through the public stages, timed (wall and, as
/// `<stage>_cpu`, process CPU milliseconds); with `profile`, the kernel
/// profile of each stage too (the caller turns the profile on).
fn bootstrap_stages(
    boot: &ckks::bootstrap::Bootstrapper,
    eval: &Evaluator,
    ct: &ckks::Ciphertext,
    mut profile: Option<&mut Profile>,
) -> Result<std::collections::BTreeMap<String, f64>> {
    ckks::profile::reset();
    let mut t = Instant::now();
    let mut c = super::he::CpuClock::start();
    let mut stages = std::collections::BTreeMap::new();
    let mut lap = |name: &str, stages: &mut std::collections::BTreeMap<String, f64>| {
        stages.insert(name.to_string(), t.elapsed().as_secs_f64() * 1e3);
        stages.insert(format!("{name}_cpu"), c.seconds().unwrap_or(f64::NAN) * 1e3);
        if let Some(p) = profile.as_deref_mut() {
            let kernels = ckks::profile::snapshot()
                .into_iter()
                .filter(|(_, _, calls)| *calls > 0)
                .map(|(k, ms, calls)| (k.name().to_string(), KernelTime { ms, calls }))
                .collect();
            p.insert(name.to_string(), kernels);
        }
        ckks::profile::reset();
        t = Instant::now();
        c = super::he::CpuClock::start();
    };
    let pre = boot.prescale(eval, ct)?;
    let raised = boot.raise(eval, &pre)?;
    lap("raise", &mut stages);
    let default = eval.params().default_scale();
    if boot.is_packed() {
        let v = boot.coeffs_to_slots_packed(eval, &raised)?;
        lap("coeffs_to_slots", &mut stages);
        let v = boot.eval_mod(eval, &v)?;
        lap("eval_mod", &mut stages);
        boot.slots_to_coeffs_packed(eval, &v, pre.scale(), default)?;
    } else {
        let (re, im) = boot.coeffs_to_slots(eval, &raised)?;
        lap("coeffs_to_slots", &mut stages);
        let (re, im) = (boot.eval_mod(eval, &re)?, boot.eval_mod(eval, &im)?);
        lap("eval_mod", &mut stages);
        boot.slots_to_coeffs(eval, &re, &im, pre.scale(), default)?;
    }
    lap("slots_to_coeffs", &mut stages);
    Ok(stages)
}

/// Markdown table of records: one row per op, one column per thread count.
pub fn markdown(title: &str, recs: &[Record]) -> String {
    let mut threads: Vec<usize> = recs.iter().map(|r| r.threads).collect();
    threads.sort_unstable();
    threads.dedup();
    let mut ops: Vec<(&str, Option<usize>)> = Vec::new();
    for r in recs {
        if !ops.contains(&(r.op.as_str(), r.level)) {
            ops.push((&r.op, r.level));
        }
    }
    let mut s = format!("### {title}\n\n| op |");
    for t in &threads {
        s += &format!(" {t} thread{} (ms) |", if *t == 1 { "" } else { "s" });
    }
    s += "\n|---|";
    s += &"---:|".repeat(threads.len());
    s += "\n";
    for (op, level) in ops {
        match level {
            Some(l) => s += &format!("| {op} (level {l}) |"),
            None => s += &format!("| {op} |"),
        }
        for t in &threads {
            match recs
                .iter()
                .find(|r| r.op == op && r.level == level && r.threads == *t)
            {
                Some(r) => s += &format!(" {:.3} |", r.median_ms),
                None => s += " |",
            }
        }
        s += "\n";
    }
    for r in recs.iter().filter(|r| r.op == "bootstrap") {
        s += &format!(
            "\nbootstrap of {} slots, {} thread(s): {:.2} s ({:.2} s CPU), {} levels after, precision {:.1} bits mean / {:.1} min, \
             keys {:.2} GB (generated in {:.1} s); stages (ms): {}\n",
            r.slots.unwrap_or(0),
            r.threads,
            r.median_ms / 1e3,
            r.cpu_ms.unwrap_or(f64::NAN) / 1e3,
            r.levels_after.unwrap_or(0),
            r.precision_bits_mean.unwrap_or(0.0),
            r.precision_bits_min.unwrap_or(0.0),
            r.key_bytes.unwrap_or(0) as f64 / 1e9,
            r.keygen_s.unwrap_or(0.0),
            r.stages_ms
                .iter()
                .flatten()
                .map(|(k, v)| format!("{k} {v:.0}"))
                .collect::<Vec<_>>()
                .join(", ")
        );
        if let Some(p) = &r.profile {
            s += &profile_markdown(p, &BOOTSTRAP_STAGES);
        }
    }
    s
}

/// The bootstrap stages of `bench ckks --ops bootstrap --profile`, in order.
pub const BOOTSTRAP_STAGES: [&str; 4] = ["raise", "coeffs_to_slots", "eval_mod", "slots_to_coeffs"];

/// A `--profile` table: one row per kernel, one column per stage or kind
/// of work in `columns` (milliseconds summed over threads; inclusive, so
/// rows overlap).
pub fn profile_markdown(p: &Profile, columns: &[&str]) -> String {
    let mut s = format!(
        "\n| kernel (ms, calls) | {} |\n|---|{}\n",
        columns.join(" | "),
        "---:|".repeat(columns.len())
    );
    for k in ckks::profile::Kernel::ALL {
        let cells: Vec<String> = columns
            .iter()
            .map(|st| match p.get(*st).and_then(|m| m.get(k.name())) {
                Some(t) => format!("{:.0} ({})", t.ms, t.calls),
                None => String::new(),
            })
            .collect();
        if cells.iter().all(String::is_empty) {
            continue;
        }
        s += &format!("| {} | {} |\n", k.name(), cells.join(" | "));
    }
    s
}

/// Runs `residue bench`.
pub fn run(args: Args) -> Result<()> {
    let a = match args.what {
        What::Ckks(a) => a,
        What::Serve(a) => return super::bench_serve::run(a),
    };
    if a.reps == 0 {
        bail!("--reps must be at least 1");
    }
    if let Some(ops) = &a.ops {
        for op in ops {
            if op == "bootstrap" {
                let params = Params::named(&a.params)?;
                if ckks::bootstrap::config_for(&params).is_none() {
                    bail!("--ops bootstrap: `{}` does not bootstrap", a.params);
                }
            } else if !OPS.contains(&op.as_str()) {
                bail!(
                    "--ops {op}: unknown operation (known: {}, bootstrap)",
                    OPS.join(", ")
                );
            }
        }
    }
    if a.no_avx512 {
        ckks::disable_avx512();
    }
    let all = std::thread::available_parallelism().map_or(1, |n| n.get());
    let thread_counts = match a.threads {
        Some(0) => bail!("--threads must be at least 1"),
        Some(t) => vec![t],
        None if all > 1 => vec![1, all],
        None => vec![1],
    };
    let top = Params::named(&a.params)?.max_level();
    let max_slots = Params::named(&a.params)?.max_slots();
    if let Some(n) = a.slots
        && (!n.is_power_of_two() || n > max_slots)
    {
        bail!(
            "--slots {n}: a power of two up to {max_slots} for `{}`",
            a.params
        );
    }
    if let Some(l) = a.levels.iter().flatten().find(|&&l| l > top || l == 0) {
        bail!(
            "--levels {l}: give levels 1 to {top} of `{}` (a product needs a level below it to rescale into)",
            a.params
        );
    }
    let per_threads = OPS.len() * a.levels.as_ref().map_or(1, |v| v.len().max(1)) + 1;
    let bar = ProgressBar::new((per_threads * thread_counts.len()) as u64);
    bar.set_style(
        ProgressStyle::with_template("{bar:30} {pos}/{len} {msg} [{elapsed}]")
            .expect("valid template"),
    );
    let mut recs = Vec::new();
    for &t in &thread_counts {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(t)
            .build()
            .context("building thread pool")?;
        recs.extend(pool.install(|| bench_ckks(&a, t, &bar))?);
        recs.extend(pool.install(|| bench_bootstrap(&a, t, &bar))?);
    }
    bar.finish_and_clear();
    let table = markdown(
        &format!("`{}`, kernels {}", a.params, ckks::kernel_path()),
        &recs,
    );
    a.out.emit(&recs)?;
    if !a.out.json {
        println!("{table}");
    }
    if let Some(p) = &a.markdown {
        std::fs::write(p, &table).with_context(|| format!("writing {}", p.display()))?;
    }
    Ok(())
}
