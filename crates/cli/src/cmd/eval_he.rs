//! `residue eval --he`: encrypted accuracy over test images beside the
//! plaintext model on the same images.

use std::io::Write;
use std::time::Instant;

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};

use super::he::{StepProgress, compile_for, peak_rss};

/// One image's result (a line of the `--log` file).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ImageResult {
    /// Test image index.
    pub index: usize,
    /// True label.
    pub label: usize,
    /// Plaintext model's class.
    pub plain_class: usize,
    /// Decrypted class.
    pub he_class: usize,
    /// max |logit difference|; NaN (`null` in the log) when either side's
    /// logits are not finite.
    #[serde(deserialize_with = "super::logit_error::de_nan")]
    pub max_logit_error: f64,
    /// Server seconds of the inference that computed it (the whole batch:
    /// the image's latency).
    pub seconds: f64,
    /// Bootstraps done.
    pub bootstraps: u64,
    /// Rotations done.
    pub rotations: u64,
    /// Parameter set.
    pub params: String,
    /// Threads.
    pub threads: usize,
    /// Server seconds by kind of work (linear, activation, bootstrap, ...).
    #[serde(default)]
    pub seconds_by_kind: std::collections::BTreeMap<String, f64>,
    /// Peak resident memory of the process so far.
    #[serde(default)]
    pub peak_rss_bytes: Option<u64>,
    /// Server CPU seconds (user + system, all threads) of the inference: on
    /// a busy machine, a one-thread run's CPU time stands for its wall time
    /// on a quiet one.
    #[serde(default)]
    pub cpu_seconds: Option<f64>,
    /// Evaluation key bytes the server held (relinearization, rotation and
    /// bootstrapping keys).
    #[serde(default)]
    pub eval_key_bytes: Option<u64>,
    /// Images per ciphertext of the plan (1: unbatched).
    #[serde(default = "one")]
    pub batch: usize,
    /// Images the inference that computed it actually carried (at most
    /// `batch`; fewer for the last, partial batch): `seconds /
    /// batch_images` is its amortized time.
    #[serde(default = "one")]
    pub batch_images: usize,
}

fn one() -> usize {
    1
}

/// Runs the encrypted evaluation.
pub fn run(args: &super::eval::Args, model: &nn::Graph, set: &nn::data::ImageSet) -> Result<()> {
    super::he::set_threads(args.threads);
    let params = ckks::Params::named(&args.params)?;
    let n = args.images.min(set.len());
    let mut done: Vec<ImageResult> = Vec::new();
    if let Some(log) = &args.log
        && log.exists()
    {
        let s =
            std::fs::read_to_string(log).with_context(|| format!("reading {}", log.display()))?;
        for (i, line) in s.lines().enumerate().filter(|(_, l)| !l.trim().is_empty()) {
            let r: ImageResult = serde_json::from_str(line)
                .with_context(|| format!("{} line {}", log.display(), i + 1))?;
            if r.params == params.name() {
                done.push(r);
            }
        }
    }
    let todo: Vec<usize> = (0..n)
        .filter(|i| !done.iter().any(|r| r.index == *i))
        .collect();
    // Progress and per-image lines on stderr, also with `--json` at a
    // terminal (the JSON report alone goes to stdout).
    let quiet = super::he::quiet_progress(args.json);
    let batch: compiler::plan::Batch = args
        .batch
        .parse()
        .with_context(|| format!("--batch {}", args.batch))?;
    if !todo.is_empty() {
        let t = Instant::now();
        let opts = compiler::CompileOptions {
            batch,
            ..Default::default()
        };
        if !quiet {
            eprintln!(
                "compiling, calibrating and generating keys at {} ...",
                params.name()
            );
        }
        let spin = super::he::spinner("compiling and calibrating", args.json);
        let (plan, _) = compile_for(model, &params, &opts)?;
        let b = plan.batch();
        let prep = runtime::Prepared::new(&plan, model, &params)?;
        let needs = runtime::client::key_needs(&prep, &params)?;
        spin.set_message("generating keys");
        let keys = runtime::client::ClientKeys::generate(&params, &needs)?;
        spin.finish_and_clear();
        let sizes = keys.sizes(&params, &needs);
        let eval_key_bytes =
            sizes.relin + sizes.galois_network + sizes.galois_bootstrap + sizes.bootstrap;
        let runtime::client::ClientKeys {
            secret,
            public,
            eval,
            boot,
        } = keys;
        let backend = runtime::server::backend(&params, &prep, eval, boot)?;
        if !quiet {
            eprintln!(
                "compiled, calibrated and keyed in {:.1} s; {} images to run ({} already in the log), {b} per inference",
                t.elapsed().as_secs_f64(),
                todo.len(),
                done.len()
            );
        }
        let mut logf = match &args.log {
            Some(p) => Some(
                std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(p)
                    .with_context(|| format!("opening {}", p.display()))?,
            ),
            None => None,
        };
        let mut k = 0usize;
        for chunk in todo.chunks(b) {
            let xs: Vec<nn::Tensor> = chunk
                .iter()
                .map(|&i| nn::exec::image_input(set, i))
                .collect();
            let plains = xs
                .iter()
                .map(|x| Ok(nn::exec::run(model, x)?.data))
                .collect::<Result<Vec<_>>>()?;
            let data: Vec<&[f64]> = xs.iter().map(|x| x.data.as_slice()).collect();
            let ct = runtime::client::encrypt_batch(&plan, &params, &public, &data)?;
            let bar = StepProgress::new(plan.nodes.len(), args.json);
            let t = Instant::now();
            let cpu_clock = super::he::CpuClock::start();
            let (out, stats) = runtime::server::infer(&backend, &prep, &ct, &|p| bar.update(p))?;
            let secs = t.elapsed().as_secs_f64();
            let cpu = cpu_clock.seconds();
            bar.finish();
            let hes = runtime::client::decrypt_batch(&params, &secret, &out)?;
            for ((&i, plain), he) in chunk.iter().zip(&plains).zip(&hes) {
                k += 1;
                let (plain, he) = (plain.as_slice(), he.as_slice());
                let r = ImageResult {
                    index: i,
                    label: set.labels[i] as usize,
                    plain_class: nn::exec::argmax(plain),
                    he_class: nn::exec::argmax(he),
                    max_logit_error: super::logit_error::max_abs_diff(plain, he),
                    seconds: secs,
                    bootstraps: stats.bootstraps,
                    rotations: stats.rotations,
                    params: params.name().to_string(),
                    threads: rayon::current_num_threads(),
                    seconds_by_kind: stats.seconds.clone(),
                    peak_rss_bytes: peak_rss(),
                    cpu_seconds: cpu,
                    eval_key_bytes: Some(eval_key_bytes),
                    batch: b,
                    batch_images: chunk.len(),
                };
                for w in super::logit_error::warnings(plain, he) {
                    eprintln!("image {i}: {w}");
                }
                if !quiet {
                    eprintln!(
                        "image {i} ({}/{}): label {}, plain {}, encrypted {}, logit error {:.2e}, {:.1} s ({:.1} s CPU)",
                        k,
                        todo.len(),
                        r.label,
                        r.plain_class,
                        r.he_class,
                        r.max_logit_error,
                        r.seconds,
                        r.cpu_seconds.unwrap_or(f64::NAN)
                    );
                }
                if let Some(f) = &mut logf {
                    writeln!(f, "{}", serde_json::to_string(&r)?)?;
                    f.flush()?;
                }
                done.push(r);
            }
        }
    }
    done.retain(|r| r.index < n);
    let total = done.len();
    let correct_plain = done.iter().filter(|r| r.plain_class == r.label).count();
    let correct_he = done.iter().filter(|r| r.he_class == r.label).count();
    let agree = done.iter().filter(|r| r.he_class == r.plain_class).count();
    // NaN when any image's logits were not finite (a plain fold with
    // f64::max would drop it).
    let max_err = super::logit_error::nan_max(done.iter().map(|r| r.max_logit_error));
    let mean_s = done.iter().map(|r| r.seconds).sum::<f64>() / total.max(1) as f64;
    // Amortized: each inference's time shared by the images it carried.
    let amortized_s = done
        .iter()
        .map(|r| r.seconds / r.batch_images.max(1) as f64)
        .sum::<f64>()
        / total.max(1) as f64;
    let cpus: Vec<f64> = done.iter().filter_map(|r| r.cpu_seconds).collect();
    let mean_cpu = (!cpus.is_empty()).then(|| cpus.iter().sum::<f64>() / cpus.len() as f64);
    let cpus_amortized: Vec<f64> = done
        .iter()
        .filter_map(|r| r.cpu_seconds.map(|c| c / r.batch_images.max(1) as f64))
        .collect();
    let mean_cpu_amortized = (!cpus_amortized.is_empty())
        .then(|| cpus_amortized.iter().sum::<f64>() / cpus_amortized.len() as f64);
    let batch_used = done.iter().map(|r| r.batch).max().unwrap_or(1);
    let rss = done
        .iter()
        .filter_map(|r| r.peak_rss_bytes)
        .chain(peak_rss())
        .max();
    if args.json || args.json_out.is_some() {
        let v = serde_json::json!({
            "model": args.model.display().to_string(),
            "params": params.name(),
            "images": total,
            "accuracy_plain": correct_plain as f64 / total.max(1) as f64,
            "accuracy_he": correct_he as f64 / total.max(1) as f64,
            "agreement": agree,
            "max_logit_error": max_err,
            "seconds_per_image": mean_s,
            "amortized_seconds_per_image": amortized_s,
            "cpu_seconds_per_image": mean_cpu,
            "amortized_cpu_seconds_per_image": mean_cpu_amortized,
            "batch": batch_used,
            "threads": done.first().map(|r| r.threads),
            "eval_key_bytes": done.iter().find_map(|r| r.eval_key_bytes),
            "bootstraps_per_image": done.first().map(|r| r.bootstraps),
            "rotations_per_image": done.first().map(|r| r.rotations),
            "peak_rss_bytes": rss,
        });
        super::json::emit(args.json, args.json_out.as_deref(), &v)?;
    }
    if !args.json {
        let amortized = if batch_used > 1 {
            format!(" ({amortized_s:.1} s amortized, batch {batch_used})")
        } else {
            String::new()
        };
        println!(
            "{}: {total} images at {}: plaintext {correct_plain}/{total}, encrypted {correct_he}/{total}, \
             argmax agreement {agree}/{total}, max logit error {max_err:.2e}, {mean_s:.1} s per image{amortized}",
            args.model.display(),
            params.name()
        );
    }
    Ok(())
}
