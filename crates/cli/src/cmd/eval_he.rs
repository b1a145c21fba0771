//! `residue eval --he`: encrypted accuracy over test images beside the
//! plaintext model on the same images.

use std::io::Write;
use std::time::Instant;

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};

use super::he::{StepProgress, compile_for_priced, peak_rss};

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
    /// Bootstrap placement of the plan (`optimal` or `greedy`; logs from
    /// before the field existed were all `optimal`).
    #[serde(default = "optimal")]
    pub placement: String,
    /// Whether the plan's quadratic activations were completed squares
    /// (one level; `--no-fused-squares` off). Logs from before session 17
    /// lack the field and were all two-level.
    #[serde(default)]
    pub fused_squares: bool,
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
    /// How bootstrapping's diagonals were held (`coefficients` or `ntt`;
    /// absent in logs from before the field existed, which were `ntt`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub diagonals: Option<String>,
    /// When the inference finished (seconds since the Unix epoch), to
    /// place a slow image beside whatever else ran then; absent in logs
    /// from before session 22.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub finished_unix_s: Option<f64>,
    /// The plan's shape hash ([`runtime::prepare::plan_shape_hash`]);
    /// absent in logs from before session 22.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub plan_shape: Option<String>,
    /// With `--profile`: kind of work -> engine kernel -> time and calls.
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub kernels_by_kind: std::collections::BTreeMap<String, runtime::exec::KernelTimes>,
}

fn one() -> usize {
    1
}

fn optimal() -> String {
    "optimal".into()
}

/// What identifies the runs whose records a `--log` may reuse: the
/// parameter set, placement and activation setting, and the plan itself
/// ([`runtime::prepare::plan_shape_hash`], which also binds the weights).
/// Records written before the plan's hash was logged carry none; they are
/// reused only when their bootstraps per inference and batch equal the
/// plan's (so a plan that bootstraps elsewhere, such as one computing on
/// the fresh levels above L_eff, never reuses them).
#[derive(Debug, Clone)]
pub struct LogKey {
    /// Parameter set name.
    pub params: String,
    /// Placement name (`optimal`, `greedy`).
    pub placement: String,
    /// One-level completed squares.
    pub fused_squares: bool,
    /// The plan's shape hash.
    pub plan_shape: String,
    /// The plan's bootstraps per inference.
    pub bootstraps: u64,
    /// The plan's images per ciphertext.
    pub batch: usize,
}

impl LogKey {
    /// The key of `plan` (for the model hashed `model_hash`) under
    /// `placement` and the activation setting `fused_squares`.
    pub fn of(
        plan: &compiler::CompiledPlan,
        model_hash: &str,
        placement: &str,
        fused_squares: bool,
    ) -> Self {
        LogKey {
            params: plan.params.name.clone(),
            placement: placement.to_string(),
            fused_squares,
            plan_shape: runtime::prepare::plan_shape_hash(plan, model_hash),
            bootstraps: plan.bootstraps,
            batch: plan.batch(),
        }
    }

    /// Whether `r` is a result of this key's plan.
    pub fn matches(&self, r: &ImageResult) -> bool {
        r.params == self.params
            && r.placement == self.placement
            && r.fused_squares == self.fused_squares
            && match &r.plan_shape {
                Some(s) => *s == self.plan_shape,
                None => r.bootstraps == self.bootstraps && r.batch == self.batch,
            }
    }
}

/// The results in the `--log` file `log` of the plan `key` names (first
/// record per image), and how many records belong to other plans (other
/// sets, placements, activations, bootstrap placements or weights: skipped,
/// never mixed in). A missing file is an empty log.
pub fn read_log(log: &std::path::Path, key: &LogKey) -> Result<(Vec<ImageResult>, usize)> {
    let mut done = Vec::new();
    let mut other = 0usize;
    if !log.exists() {
        return Ok((done, other));
    }
    let s = std::fs::read_to_string(log).with_context(|| format!("reading {}", log.display()))?;
    for (i, line) in s.lines().enumerate().filter(|(_, l)| !l.trim().is_empty()) {
        let r: ImageResult = serde_json::from_str(line)
            .with_context(|| format!("{} line {}", log.display(), i + 1))?;
        if !key.matches(&r) {
            other += 1;
        } else if !done.iter().any(|d: &ImageResult| d.index == r.index) {
            done.push(r);
        }
    }
    Ok((done, other))
}

/// What a set of per-image results adds up to (the `--json` report of
/// `eval --he`, and what `residue reproduce` reads back from a log).
#[derive(Debug, Clone, Serialize)]
pub struct Summary {
    /// Images.
    pub images: usize,
    /// Plaintext model correct.
    pub correct_plain: usize,
    /// Decrypted class correct.
    pub correct_he: usize,
    /// Decrypted class equal to the plaintext model's.
    pub agreement: usize,
    /// Largest logit error (NaN when any image's logits were not finite).
    pub max_logit_error: f64,
    /// Mean server seconds per image (each image's inference).
    pub seconds_per_image: f64,
    /// Mean amortized seconds per image (each inference shared by the
    /// images it carried).
    pub amortized_seconds_per_image: f64,
    /// The fastest image's server seconds. Every image does the same
    /// encrypted work, so the spread is the machine's interference and the
    /// minimum is the least disturbed figure (none: no images).
    pub min_seconds_per_image: Option<f64>,
    /// Mean server CPU seconds per image.
    pub cpu_seconds_per_image: Option<f64>,
    /// Mean amortized CPU seconds per image.
    pub amortized_cpu_seconds_per_image: Option<f64>,
    /// Images per ciphertext.
    pub batch: usize,
    /// Threads.
    pub threads: Option<usize>,
    /// Evaluation key bytes.
    pub eval_key_bytes: Option<u64>,
    /// Ciphertext bootstraps of one inference.
    pub bootstraps_per_image: Option<u64>,
    /// Rotations of one inference.
    pub rotations_per_image: Option<u64>,
    /// Peak resident memory of the processes that ran them.
    pub peak_rss_bytes: Option<u64>,
}

impl Summary {
    /// Adds up `done`; `extra_rss` (this process's peak, when it ran some
    /// of them) joins the peak memory.
    pub fn of(done: &[ImageResult], extra_rss: Option<u64>) -> Self {
        let total = done.len();
        let mean = |x: f64| x / total.max(1) as f64;
        let cpus: Vec<f64> = done.iter().filter_map(|r| r.cpu_seconds).collect();
        let cpus_amortized: Vec<f64> = done
            .iter()
            .filter_map(|r| r.cpu_seconds.map(|c| c / r.batch_images.max(1) as f64))
            .collect();
        let avg = |v: &[f64]| (!v.is_empty()).then(|| v.iter().sum::<f64>() / v.len() as f64);
        Self {
            images: total,
            correct_plain: done.iter().filter(|r| r.plain_class == r.label).count(),
            correct_he: done.iter().filter(|r| r.he_class == r.label).count(),
            agreement: done.iter().filter(|r| r.he_class == r.plain_class).count(),
            // NaN when any image's logits were not finite (a plain fold
            // with f64::max would drop it).
            max_logit_error: super::logit_error::nan_max(done.iter().map(|r| r.max_logit_error)),
            seconds_per_image: mean(done.iter().map(|r| r.seconds).sum::<f64>()),
            amortized_seconds_per_image: mean(
                done.iter()
                    .map(|r| r.seconds / r.batch_images.max(1) as f64)
                    .sum::<f64>(),
            ),
            min_seconds_per_image: done.iter().map(|r| r.seconds).reduce(f64::min),
            cpu_seconds_per_image: avg(&cpus),
            amortized_cpu_seconds_per_image: avg(&cpus_amortized),
            batch: done.iter().map(|r| r.batch).max().unwrap_or(1),
            threads: done.first().map(|r| r.threads),
            eval_key_bytes: done.iter().find_map(|r| r.eval_key_bytes),
            bootstraps_per_image: done.first().map(|r| r.bootstraps),
            rotations_per_image: done.first().map(|r| r.rotations),
            peak_rss_bytes: done
                .iter()
                .filter_map(|r| r.peak_rss_bytes)
                .chain(extra_rss)
                .max(),
        }
    }
}

/// Runs the encrypted evaluation.
pub fn run(args: &super::eval::Args, model: &nn::Graph, set: &nn::data::ImageSet) -> Result<()> {
    super::he::set_threads(args.threads);
    ckks::profile::set_enabled(args.profile);
    args.diagonals.storage()?;
    let params = ckks::Params::named(&args.params)?;
    let strategy = super::analyze::parse_placement(&args.placement)?;
    let placement = super::analyze::placement_name(strategy);
    let n = args.images.min(set.len());
    // Progress and per-image lines on stderr, also with `--json` at a
    // terminal (the JSON report alone goes to stdout).
    let quiet = super::he::quiet_progress(args.json);
    let batch: compiler::plan::Batch = args.batch.parse().map_err(|_| {
        anyhow::anyhow!(
            "--batch `{}`: neither `auto` nor a power of two",
            args.batch.escape_debug()
        )
    })?;
    let t = Instant::now();
    let opts = compiler::CompileOptions {
        batch,
        strategy,
        fuse_squares: !args.no_fused_squares,
        fresh_levels: !args.no_fresh_levels,
        fresh_when_faster: args.fresh_when_faster,
        ..Default::default()
    };
    if !quiet {
        eprintln!(
            "compiling ({placement} placement) and calibrating at {} ...",
            params.name()
        );
    }
    // The plan comes first: a log's records are reused only when they are
    // this plan's (same bootstrap placement, levels and weights).
    let spin = super::he::spinner("compiling and calibrating", args.json);
    let (plan, _) = compile_for_priced(model, &params, &opts, args.calibrate.as_deref())?;
    spin.finish_and_clear();
    let key = LogKey::of(&plan, &plan.model_hash, placement, !args.no_fused_squares);
    let mut done: Vec<ImageResult> = match &args.log {
        Some(log) => {
            let (done, other) = read_log(log, &key)?;
            if other > 0 && !quiet {
                eprintln!(
                    "{}: {other} records of other runs (another set, placement, activation \
                     setting, plan or weights) are not reused",
                    log.display()
                );
            }
            done
        }
        None => Vec::new(),
    };
    let todo: Vec<usize> = (0..n)
        .filter(|i| !done.iter().any(|r| r.index == *i))
        .collect();
    if !todo.is_empty() {
        let b = plan.batch();
        let spin = super::he::spinner("preparing", args.json);
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
        let storage = args.diagonals.storage_for(&params, &prep)?;
        let backend = runtime::server::backend_with_storage(&params, &prep, eval, boot, storage)?;
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
                    placement: placement.to_string(),
                    fused_squares: !args.no_fused_squares,
                    threads: rayon::current_num_threads(),
                    seconds_by_kind: stats.seconds.clone(),
                    peak_rss_bytes: peak_rss(),
                    cpu_seconds: cpu,
                    eval_key_bytes: Some(eval_key_bytes),
                    batch: b,
                    batch_images: chunk.len(),
                    diagonals: Some(super::he::storage_name(storage).to_string()),
                    finished_unix_s: std::time::SystemTime::now()
                        .duration_since(std::time::UNIX_EPOCH)
                        .ok()
                        .map(|d| d.as_secs_f64()),
                    plan_shape: Some(key.plan_shape.clone()),
                    kernels_by_kind: stats.kernels.clone(),
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
    let sum = Summary::of(&done, peak_rss());
    let total = sum.images;
    let (correct_plain, correct_he, agree) = (sum.correct_plain, sum.correct_he, sum.agreement);
    let (max_err, mean_s, amortized_s) = (
        sum.max_logit_error,
        sum.seconds_per_image,
        sum.amortized_seconds_per_image,
    );
    let batch_used = sum.batch;
    if args.json || args.json_out.is_some() {
        let v = serde_json::json!({
            "model": args.model.display().to_string(),
            "params": params.name(),
            "placement": placement,
            "images": total,
            "accuracy_plain": correct_plain as f64 / total.max(1) as f64,
            "accuracy_he": correct_he as f64 / total.max(1) as f64,
            "agreement": agree,
            "max_logit_error": max_err,
            "seconds_per_image": mean_s,
            "amortized_seconds_per_image": amortized_s,
            "min_seconds_per_image": sum.min_seconds_per_image,
            "cpu_seconds_per_image": sum.cpu_seconds_per_image,
            "amortized_cpu_seconds_per_image": sum.amortized_cpu_seconds_per_image,
            "batch": batch_used,
            "threads": sum.threads,
            "eval_key_bytes": sum.eval_key_bytes,
            "bootstraps_per_image": sum.bootstraps_per_image,
            "rotations_per_image": sum.rotations_per_image,
            "peak_rss_bytes": sum.peak_rss_bytes,
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
            "{}: {total} images at {}{}: plaintext {correct_plain}/{total}, encrypted {correct_he}/{total}, \
             argmax agreement {agree}/{total}, max logit error {max_err:.2e}, {mean_s:.1} s per image{amortized}",
            args.model.display(),
            params.name(),
            if strategy == compiler::placement::Strategy::Greedy {
                " (greedy placement)"
            } else {
                ""
            }
        );
    }
    Ok(())
}
