//! `residue encrypt`: the client encrypts one input, or a batch of inputs
//! for a batched plan, for a plan.

use std::path::PathBuf;

use anyhow::{Context, Result};

use super::he::load_plan;

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
    /// the plan's input shape `[C, H, W]`, or a `.npy` stack `[B, C, H, W]`.
    /// Repeat for several images: a batched plan (`residue compile
    /// --batch`) takes up to its batch in one encrypted tensor, in order.
    #[arg(long, required = true)]
    pub input: Vec<PathBuf>,
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
    let batch = plan.batch();
    let xs = super::he::load_images(
        &args.input,
        &[l.channels, l.height, l.width],
        batch,
        &format!(
            "the plan takes at most {batch} at once: encrypt them in groups of {batch}, or \
             compile with a larger --batch (`--batch auto` packs the most that fit one \
             ciphertext; more spill over several)"
        ),
    )?;
    let pk = runtime::client::load_public_key(&params, &args.keys)?;
    let t = std::time::Instant::now();
    let mut ct = runtime::client::encrypt_batch(&plan, &params, &pk, &xs)?;
    ct.meta.key_id = runtime::client::load_key_id(&args.keys)?;
    ct.save(&params, &args.out)
        .with_context(|| format!("writing {}", args.out.display()))?;
    let s = t.elapsed().as_secs_f64();
    if args.json || args.json_out.is_some() {
        let v = serde_json::json!({
            "out": args.out.display().to_string(),
            "ciphertexts": ct.cts.len(),
            "images": xs.len(),
            "batch": batch,
            "seconds": s,
        });
        super::json::emit(args.json, args.json_out.as_deref(), &v)?;
    }
    if !args.json {
        let what = match args.input.as_slice() {
            [one] if xs.len() == 1 => one.display().to_string(),
            _ => format!("{} images", xs.len()),
        };
        println!(
            "encrypted {what} into {} ({} ciphertext(s), batch {batch}, {s:.2} s)",
            args.out.display(),
            ct.cts.len()
        );
    }
    Ok(())
}
