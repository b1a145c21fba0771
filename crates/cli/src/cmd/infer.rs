//! `residue infer`: the server runs a plan on an encrypted input with
//! evaluation keys only.

use std::path::PathBuf;

use anyhow::{Context, Result};

use super::he::{StepProgress, load_model, load_plan, peak_rss};

/// Arguments of `residue infer`.
#[derive(clap::Args)]
pub struct Args {
    /// The plan.
    #[arg(long)]
    pub plan: PathBuf,
    /// The model the plan was compiled for (ONNX).
    #[arg(long)]
    pub model: PathBuf,
    /// Directory of evaluation keys (`eval/` of `residue keygen`); a file
    /// there holding a secret key is refused.
    #[arg(long)]
    pub eval_keys: PathBuf,
    /// The encrypted input.
    #[arg(long)]
    pub input: PathBuf,
    /// The encrypted result to write.
    #[arg(long)]
    pub out: PathBuf,
    /// Worker threads (default: all cores).
    #[arg(long)]
    pub threads: Option<usize>,
    #[command(flatten)]
    pub diagonals: super::he::DiagonalArgs,
    /// Turn the engine's kernel profile on: time and calls of each kernel
    /// (ModUp, inner product, ModDown, NTTs, ...) by kind of work, as
    /// `kernels_by_kind` in the JSON report and as a table otherwise. The
    /// spans cost a little time themselves.
    #[arg(long)]
    pub profile: bool,
    /// Print JSON (seconds, bootstraps, rotations, peak memory,
    /// `diagonals` (`coefficients` or `ntt`), `low_memory` (true for
    /// coefficients) and `bootstrap_transform_bytes`: the encoded DFT
    /// diagonals held).
    #[arg(long)]
    pub json: bool,
    /// Also write the JSON report to FILE (what `--json` prints).
    #[arg(long, value_name = "FILE")]
    pub json_out: Option<PathBuf>,
}

/// Runs `residue infer`.
pub fn run(args: Args) -> Result<()> {
    super::he::set_threads(args.threads);
    args.diagonals.storage()?;
    let (plan, params) = load_plan(&args.plan)?;
    let model = load_model(&args.model)?;
    let prep = runtime::Prepared::new(&plan, &model, &params)?;
    let storage = args.diagonals.storage_for(&params, &prep)?;
    let t0 = std::time::Instant::now();
    // The small input first: a ciphertext of another key pair is refused
    // before gigabytes of keys are read.
    let input = runtime::files::EncryptedTensor::load(&params, &args.input)
        .with_context(|| format!("reading {}", args.input.display()))?;
    runtime::client::check_same_keys(&input, &args.eval_keys, "evaluation keys")
        .with_context(|| format!("{}", args.input.display()))?;
    let (eval, boot) = runtime::client::load_eval_keys(&params, &args.eval_keys)?;
    let backend = runtime::server::backend_with_storage(&params, &prep, eval, boot, storage)?;
    let load_s = t0.elapsed().as_secs_f64();
    let bar = StepProgress::new(plan.nodes.len(), args.json);
    ckks::profile::set_enabled(args.profile);
    let (out, stats) = runtime::server::infer(&backend, &prep, &input, &|p| bar.update(p))?;
    bar.finish();
    out.save(&params, &args.out)
        .with_context(|| format!("writing {}", args.out.display()))?;
    let rss = peak_rss();
    if args.json || args.json_out.is_some() {
        let v = serde_json::json!({
            "params": params.name(),
            "seconds": stats.total_seconds,
            "load_seconds": load_s,
            "bootstraps": stats.bootstraps,
            "bootstraps_planned": plan.bootstraps,
            "batch": plan.batch(),
            "images": input.meta.images,
            "seconds_per_image": stats.total_seconds / input.meta.images.max(1) as f64,
            "rotations": stats.rotations,
            "seconds_by_kind": stats.seconds,
            "peak_rss_bytes": rss,
            "diagonals": super::he::storage_name(storage),
            "low_memory": storage == runtime::server::DiagonalStorage::Coefficients,
            "bootstrap_transform_bytes": backend.bootstrapper().map(|b| b.transform_bytes()),
            "threads": rayon::current_num_threads(),
        });
        let mut v = v;
        if args.profile {
            v["kernels_by_kind"] = serde_json::to_value(&stats.kernels)?;
        }
        super::json::emit(args.json, args.json_out.as_deref(), &v)?;
    }
    if !args.json {
        println!(
            "inference in {:.1} s ({} bootstraps of {} planned, {} rotations; keys loaded in {load_s:.1} s), peak memory {:.2} GiB{}; result in {}",
            stats.total_seconds,
            stats.bootstraps,
            plan.bootstraps,
            stats.rotations,
            rss.unwrap_or(0) as f64 / (1u64 << 30) as f64,
            match backend.bootstrapper() {
                Some(b) => format!(
                    " (bootstrapping's diagonals {:.2} GiB, {})",
                    b.transform_bytes() as f64 / (1u64 << 30) as f64,
                    if storage == runtime::server::DiagonalStorage::Coefficients {
                        "as coefficients"
                    } else {
                        "NTT form: --diagonals ntt"
                    }
                ),
                None => String::new(),
            },
            args.out.display()
        );
        if args.profile {
            let kinds: Vec<&str> = stats.kernels.keys().map(String::as_str).collect();
            print!("{}", super::bench::profile_markdown(&stats.kernels, &kinds));
        }
    }
    Ok(())
}
