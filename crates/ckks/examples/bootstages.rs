//! One bootstrap's time by stage, with the kernel profile of each stage and
//! the precision, built from the engine alone (the same procedure as
//! `residue bench ckks --ops bootstrap --profile`, without the CLI's
//! dependencies), for quick before/after comparisons of the engine.
//!
//! ```text
//! cargo run --release -p ckks --example bootstages [-- SET [THREADS [REPS]]]
//! ```
//!
//! SET defaults to `insecure-boot-n12`, THREADS to 1, REPS to 3 (the
//! median is printed). `LOW_MEMORY=1` keeps the DFT diagonals in
//! coefficient form (bit-identical results, far less memory at N = 2^16;
//! EvalMod does not use them). Keys come from a fixed seed, so two builds
//! see the same keys and inputs. Prints one JSON object.
use ckks::bootstrap::{self, Bootstrapper};
use ckks::linear::DiagonalStorage;
use ckks::profile;
use ckks::*;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Instant;

/// Process CPU seconds (user + system, Linux); NaN elsewhere.
fn cpu_seconds() -> f64 {
    let read = || -> Option<f64> {
        let s = std::fs::read_to_string("/proc/self/stat").ok()?;
        let rest = &s[s.rfind(')')? + 2..];
        let f: Vec<&str> = rest.split_whitespace().collect();
        Some((f.get(11)?.parse::<f64>().ok()? + f.get(12)?.parse::<f64>().ok()?) / 100.0)
    };
    read().unwrap_or(f64::NAN)
}

fn main() {
    let mut args = std::env::args().skip(1);
    let name = args
        .next()
        .unwrap_or_else(|| "insecure-boot-n12".to_string());
    let threads: usize = args.next().map_or(1, |t| t.parse().expect("THREADS"));
    let reps: usize = args.next().map_or(3, |t| t.parse().expect("REPS"));
    rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build_global()
        .expect("thread pool");
    let params = Params::named(&name).expect("parameter set");
    let cfg = bootstrap::config_for(&params).expect("a bootstrappable set");
    let n = params.max_slots();
    let storage = if std::env::var("LOW_MEMORY").is_ok_and(|v| v == "1") {
        DiagonalStorage::Coefficients
    } else {
        DiagonalStorage::Ntt
    };
    let t = Instant::now();
    let mut kg = KeyGenerator::with_seed(params.clone(), [9u8; 32]);
    let sk = kg.secret_key();
    let keys = kg.bootstrap_keys(&sk, &cfg, &[]);
    let boot =
        Bootstrapper::with_storage(params.clone(), cfg, keys.boot, storage).expect("bootstrapper");
    let eval = Evaluator::new(params.clone(), Arc::new(keys.eval)).expect("evaluator");
    let keygen_s = t.elapsed().as_secs_f64();
    let enc = Encoder::new(params.clone());
    let z: Vec<Complex64> = (0..n)
        .map(|i| {
            let x = (i as f64 * 0.618_033_988_7).fract() * 2.0 - 1.0;
            let y = (i as f64 * 0.414_213_562_3).fract() * 2.0 - 1.0;
            Complex64::new(x, y) * std::f64::consts::FRAC_1_SQRT_2
        })
        .collect();
    let pt = enc
        .encode(&z, 0, params.default_scale(), n)
        .expect("encode");
    let ct = Encryptor::new(params.clone())
        .encrypt_sk(&sk, &pt)
        .expect("encrypt");
    let mut out = boot.bootstrap(&eval, &ct).expect("warm-up");
    let mut wall = Vec::new();
    let mut cpu = Vec::new();
    for _ in 0..reps {
        let (s, c) = (Instant::now(), cpu_seconds());
        out = boot.bootstrap(&eval, &ct).expect("bootstrap");
        wall.push(s.elapsed().as_secs_f64() * 1e3);
        cpu.push((cpu_seconds() - c) * 1e3);
    }
    wall.sort_by(f64::total_cmp);
    cpu.sort_by(f64::total_cmp);
    // The stages, profiled: wall and CPU ms, and per kernel (ms, calls).
    let mut stages: BTreeMap<String, (f64, f64)> = BTreeMap::new();
    let mut kernels: BTreeMap<String, BTreeMap<String, (f64, u64)>> = BTreeMap::new();
    profile::reset();
    profile::set_enabled(true);
    let mut t = (Instant::now(), cpu_seconds());
    let mut lap = |stage: &str| {
        stages.insert(
            stage.to_string(),
            (
                t.0.elapsed().as_secs_f64() * 1e3,
                (cpu_seconds() - t.1) * 1e3,
            ),
        );
        let k = profile::snapshot()
            .into_iter()
            .filter(|s| s.2 > 0)
            .map(|(k, ms, calls)| (k.name().to_string(), (ms, calls)))
            .collect();
        kernels.insert(stage.to_string(), k);
        profile::reset();
        t = (Instant::now(), cpu_seconds());
    };
    let pre = boot.prescale(&eval, &ct).expect("prescale");
    let raised = boot.raise(&eval, &pre).expect("raise");
    lap("raise");
    let default = params.default_scale();
    if boot.is_packed() {
        let v = boot
            .coeffs_to_slots_packed(&eval, &raised)
            .expect("coeffs_to_slots");
        lap("coeffs_to_slots");
        let v = boot.eval_mod(&eval, &v).expect("eval_mod");
        lap("eval_mod");
        boot.slots_to_coeffs_packed(&eval, &v, pre.scale(), default)
            .expect("slots_to_coeffs");
    } else {
        let (re, im) = boot
            .coeffs_to_slots(&eval, &raised)
            .expect("coeffs_to_slots");
        lap("coeffs_to_slots");
        let re = boot.eval_mod(&eval, &re).expect("eval_mod");
        let im = boot.eval_mod(&eval, &im).expect("eval_mod");
        lap("eval_mod");
        boot.slots_to_coeffs(&eval, &re, &im, pre.scale(), default)
            .expect("slots_to_coeffs");
    }
    lap("slots_to_coeffs");
    profile::set_enabled(false);
    let got = enc.decode(&Decryptor::new(&sk).decrypt(&out).expect("decrypt"));
    let bits: Vec<f64> = got
        .iter()
        .zip(&z)
        .map(|(g, w)| -((g - w).norm().max(1e-30)).log2())
        .collect();
    let mean = bits.iter().sum::<f64>() / bits.len() as f64;
    let min = bits.iter().copied().fold(f64::INFINITY, f64::min);
    let json_stages: Vec<String> = stages
        .iter()
        .map(|(s, (w, c))| {
            let ks: Vec<String> = kernels[s]
                .iter()
                .map(|(k, (ms, calls))| format!("\"{k}\": [{ms:.1}, {calls}]"))
                .collect();
            format!(
                "\"{s}\": {{\"ms\": {w:.1}, \"cpu_ms\": {c:.0}, \"kernels\": {{{}}}}}",
                ks.join(", ")
            )
        })
        .collect();
    println!(
        "{{\"set\": \"{name}\", \"threads\": {threads}, \"reps\": {reps}, \"keygen_s\": {keygen_s:.1}, \
         \"median_ms\": {:.1}, \"cpu_ms\": {:.0}, \"levels_after\": {}, \
         \"precision_bits_mean\": {mean:.2}, \"precision_bits_min\": {min:.2}, \"stages\": {{{}}}}}",
        wall[wall.len() / 2],
        cpu[cpu.len() / 2],
        out.level(),
        json_stages.join(", ")
    );
}
