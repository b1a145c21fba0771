//! `residue keygen`: the client's keys for exactly what a plan needs.

use std::path::PathBuf;

use anyhow::{Context, Result};

use super::he::load_plan;

/// Arguments of `residue keygen`.
#[derive(clap::Args)]
pub struct Args {
    /// The plan (from `residue compile`).
    #[arg(long)]
    pub plan: PathBuf,
    /// The model the plan was compiled for (ONNX): the rotation keys are
    /// derived from its weights.
    #[arg(long)]
    pub model: PathBuf,
    /// Key directory to write: `secret.key` and `public.key` (client),
    /// `eval/` (evaluation keys, for the server).
    #[arg(long)]
    pub out: PathBuf,
    /// Print JSON (key group sizes in bytes, seconds).
    #[arg(long)]
    pub json: bool,
    /// Also write the JSON report to FILE (what `--json` prints).
    #[arg(long, value_name = "FILE")]
    pub json_out: Option<PathBuf>,
}

/// Runs `residue keygen`.
pub fn run(args: Args) -> Result<()> {
    let (plan, params) = load_plan(&args.plan)?;
    let model = super::he::load_model(&args.model)?;
    let prep = runtime::Prepared::new(&plan, &model, &params)?;
    let t = std::time::Instant::now();
    let needs = runtime::client::key_needs(&prep, &params)?;
    if !args.json {
        eprintln!(
            "generating keys for {} rotation steps{} at {} ...",
            needs.rotations.len(),
            if needs.bootstrap {
                " and bootstrapping"
            } else {
                ""
            },
            params.name()
        );
    }
    let spin = super::he::spinner("generating keys", args.json);
    let keys = runtime::client::ClientKeys::generate(&params, &needs)?;
    let gen_s = t.elapsed().as_secs_f64();
    spin.set_message("writing keys");
    keys.save(&params, &args.out)
        .with_context(|| format!("writing keys to {}", args.out.display()))?;
    spin.finish_and_clear();
    let sizes = keys.sizes(&params, &needs);
    let total_s = t.elapsed().as_secs_f64();
    if args.json || args.json_out.is_some() {
        let v = serde_json::json!({
            "params": params.name(),
            "out": args.out.display().to_string(),
            "sizes": sizes,
            "rotation_steps": needs.rotations.len(),
            "keygen_seconds": gen_s,
            "seconds": total_s,
        });
        super::json::emit(args.json, args.json_out.as_deref(), &v)?;
    }
    if !args.json {
        let gib = |b: u64| b as f64 / (1u64 << 30) as f64;
        println!(
            "keys in {}: public {:.2} GiB, relin {:.2} GiB, {} Galois keys {:.2} GiB (network {:.2}, bootstrapping {:.2}), encapsulation {:.2} GiB; {:.1} s",
            args.out.display(),
            gib(sizes.public),
            gib(sizes.relin),
            sizes.galois_keys,
            gib(sizes.galois_network + sizes.galois_bootstrap),
            gib(sizes.galois_network),
            gib(sizes.galois_bootstrap),
            gib(sizes.bootstrap),
            total_s
        );
        println!("give the server only {}", args.out.join("eval").display());
    }
    Ok(())
}
