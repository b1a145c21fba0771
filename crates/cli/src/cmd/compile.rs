//! `residue compile`: writes the plan the runtime executes (layouts, levels,
//! bootstrap positions, Galois steps).

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use serde::Serialize;

use super::analyze::{ModelArgs, check_bootstraps, write_out};

/// Arguments of `residue compile`.
#[derive(clap::Args)]
pub struct Args {
    #[command(flatten)]
    pub model: ModelArgs,
    /// Where to write the plan (JSON; `-`: stdout).
    #[arg(long)]
    pub out: PathBuf,
    /// Print a summary as JSON on stdout instead of text: `model`,
    /// `params`, `slots`, `batch`, `bootstraps`, `rotations`,
    /// `galois_keys`, `estimated_seconds`, `out`, ... (named as in
    /// `analyze --json`).
    #[arg(long)]
    pub json: bool,
    /// Also write that JSON summary to FILE.
    #[arg(long, value_name = "FILE")]
    pub json_out: Option<PathBuf>,
}

/// What `compile --json` prints: the plan's figures, field names as in
/// `analyze --json`.
#[derive(Serialize)]
struct Summary<'a> {
    model: &'a str,
    structure: &'a str,
    params: &'a str,
    cost_source: &'a str,
    /// Slots per ciphertext the plan packs into.
    slots: usize,
    /// Images per inference.
    batch: usize,
    l_eff: u32,
    /// Plan steps (what infer's progress counts).
    steps: usize,
    bootstraps: u64,
    rotations: u64,
    /// Galois keys keygen makes, and their bytes (exact unless
    /// `galois_keys_exact` is false: then an upper bound).
    galois_keys: u64,
    galois_key_bytes: u64,
    galois_keys_exact: bool,
    /// The network's rotation keys (`--keys`, `--key-memory`), how many of
    /// them bootstrapping has too, and the bytes they add to
    /// bootstrapping's (what `--key-memory` bounds).
    network_galois_keys: u64,
    network_shared_keys: u64,
    network_key_bytes: u64,
    estimated_seconds: f64,
    estimated_seconds_per_image: f64,
    /// Where the plan was written (`-`: stdout).
    out: String,
    /// Seconds this compilation and calibration took.
    seconds: f64,
}

/// Runs `residue compile`: compiles, then binds the plan to the model
/// (hash) and calibrates its value scales on sample inputs (the bundled
/// Fashion-MNIST images for 1x28x28 models).
pub fn run(args: Args) -> Result<()> {
    if args.json && args.out == Path::new("-") {
        bail!("--json and --out - both write to stdout; give --out FILE");
    }
    let t = std::time::Instant::now();
    let graph = args.model.graph()?;
    let (sets, mut opts) = args.model.options()?;
    opts.attribute_skips = false;
    let (plan, report) = compiler::compile(&graph, &sets, &opts)?;
    check_bootstraps(&report)?;
    let params = ckks::Params::named(&plan.params.name)?;
    let folded = nn::transform::fold_all(&graph)?;
    let samples = super::he::calibration_samples(&graph, 8);
    let plan = runtime::scaling::calibrate(
        &plan,
        &folded,
        &params,
        &samples,
        runtime::scaling::DEFAULT_MARGIN,
    )
    .context("calibrating the plan's value scales")?;
    write_out(&args.out, &plan.to_json())?;
    if args.json || args.json_out.is_some() {
        let summary = Summary {
            model: &report.model,
            structure: &report.structure,
            params: &report.params,
            cost_source: &report.cost_source,
            slots: plan.params.slots,
            batch: report.batch,
            l_eff: report.l_eff,
            steps: plan.nodes.len(),
            bootstraps: report.bootstraps,
            rotations: report.rotations,
            galois_keys: report.galois_keys,
            galois_key_bytes: report.galois_key_bytes,
            galois_keys_exact: report.galois_keys_exact,
            network_galois_keys: report.network_galois_keys,
            network_shared_keys: report.network_shared_keys,
            network_key_bytes: report.network_key_bytes,
            estimated_seconds: report.estimated_seconds,
            estimated_seconds_per_image: report.estimated_seconds_per_image,
            out: args.out.display().to_string(),
            seconds: t.elapsed().as_secs_f64(),
        };
        super::json::emit(args.json, args.json_out.as_deref(), &summary)?;
    }
    if args.json {
        return Ok(());
    }
    let per_image = if report.batch > 1 {
        format!(
            "; a batch of {} images, ~{:.1} s per image",
            report.batch, report.estimated_seconds_per_image
        )
    } else {
        String::new()
    };
    eprintln!(
        "plan for {} at {}: {} bootstraps, {}{} Galois keys, ~{:.1} s estimated [{}]{per_image}",
        report.model,
        report.params,
        report.bootstraps,
        if report.galois_keys_exact {
            ""
        } else {
            "at most "
        },
        report.galois_keys,
        report.estimated_seconds,
        report.cost_source
    );
    Ok(())
}
