//! `residue predict`: the reference executor on one input.

use std::path::PathBuf;

use anyhow::{Context, Result};

/// Arguments of `residue predict`.
#[derive(clap::Args)]
pub struct Args {
    /// The model (ONNX).
    #[arg(long)]
    pub model: PathBuf,
    /// A PNG image (pixels scaled to [0, 1]) or a `.npy` float32 array of
    /// shape [C, H, W] or [1, C, H, W].
    #[arg(long)]
    pub input: PathBuf,
    /// Print JSON (`class`, `logits`) instead of text.
    #[arg(long)]
    pub json: bool,
}

/// Runs `residue predict`.
pub fn run(args: Args) -> Result<()> {
    let graph = nn::onnx::load(&args.model)
        .with_context(|| format!("loading model {}", args.model.display()))?;
    let x = nn::input::load(&args.input, &graph.input_shape)
        .with_context(|| format!("loading input {}", args.input.display()))?;
    let y = nn::exec::run(&graph, &x)?;
    let class = nn::exec::argmax(&y.data);
    if args.json {
        let v = serde_json::json!({ "class": class, "logits": y.data });
        println!("{}", serde_json::to_string_pretty(&v)?);
    } else {
        let logits: Vec<String> = y.data.iter().map(|v| format!("{v:.4}")).collect();
        println!("class {class}  logits [{}]", logits.join(", "));
    }
    Ok(())
}
