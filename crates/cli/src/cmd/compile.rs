//! `residue compile`: writes the plan the runtime executes (layouts, levels,
//! bootstrap positions, Galois steps).

use std::path::PathBuf;

use anyhow::{Context, Result};

use super::analyze::{ModelArgs, check_bootstraps, write_out};

/// Arguments of `residue compile`.
#[derive(clap::Args)]
pub struct Args {
    #[command(flatten)]
    pub model: ModelArgs,
    /// Where to write the plan (JSON).
    #[arg(long)]
    pub out: PathBuf,
}

/// Runs `residue compile`: compiles, then binds the plan to the model
/// (hash) and calibrates its value scales on sample inputs (the bundled
/// Fashion-MNIST images for 1x28x28 models).
pub fn run(args: Args) -> Result<()> {
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
    let per_image = if report.batch > 1 {
        format!(
            "; a batch of {} images, ~{:.1} s per image",
            report.batch, report.estimated_seconds_per_image
        )
    } else {
        String::new()
    };
    eprintln!(
        "plan for {} at {}: {} bootstraps, {} Galois keys, ~{:.1} s estimated [{}]{per_image}",
        report.model,
        report.params,
        report.bootstraps,
        report.galois_keys,
        report.estimated_seconds,
        report.cost_source
    );
    Ok(())
}
