//! `residue encrypt`: the client encrypts one input for a plan.

use std::path::PathBuf;

use anyhow::{Context, Result};

use super::he::{load_input, load_plan};

/// Arguments of `residue encrypt`.
#[derive(clap::Args)]
pub struct Args {
    /// Key directory (from `residue keygen`).
    #[arg(long)]
    pub keys: PathBuf,
    /// The plan.
    #[arg(long)]
    pub plan: PathBuf,
    /// A PNG image (pixels scaled to [0, 1]) or a `.npy` float32 array of
    /// the plan's input shape.
    #[arg(long)]
    pub input: PathBuf,
    /// The encrypted input to write.
    #[arg(long)]
    pub out: PathBuf,
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
    /// Also write the JSON report to FILE (what `--json` prints).
    #[arg(long, value_name = "FILE")]
    pub json_out: Option<PathBuf>,
}

/// Runs `residue encrypt`.
pub fn run(args: Args) -> Result<()> {
    let (plan, params) = load_plan(&args.plan)?;
    let l = plan.nodes[0].layout_out;
    let x = load_input(&args.input, &[l.channels, l.height, l.width])?;
    let (_, pk) = runtime::client::load_client_keys(&params, &args.keys)?;
    let t = std::time::Instant::now();
    let ct = runtime::client::encrypt(&plan, &params, &pk, &x)?;
    ct.save(&params, &args.out)
        .with_context(|| format!("writing {}", args.out.display()))?;
    let s = t.elapsed().as_secs_f64();
    if args.json || args.json_out.is_some() {
        let v = serde_json::json!({ "out": args.out.display().to_string(), "ciphertexts": ct.cts.len(), "seconds": s });
        super::json::emit(args.json, args.json_out.as_deref(), &v)?;
    }
    if !args.json {
        println!(
            "encrypted {} into {} ({} ciphertext(s), {s:.2} s)",
            args.input.display(),
            args.out.display(),
            ct.cts.len()
        );
    }
    Ok(())
}
