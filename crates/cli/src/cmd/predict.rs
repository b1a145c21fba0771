//! `residue predict`: the reference executor on one input; the class is
//! named after the data set the model was trained on.

use std::path::PathBuf;

use anyhow::{Context, Result};
use nn::data::DatasetKind;

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
    /// The data set whose class names to print (`fashion-mnist`, `mnist`,
    /// `cifar10`); default: the one the model's training record
    /// (`MODEL.train.json`) names.
    #[arg(long)]
    pub data: Option<String>,
    /// Print JSON (`class`, `class_name`, `dataset`, `logits`) instead of text.
    #[arg(long)]
    pub json: bool,
    /// Also write the JSON report to FILE (what `--json` prints).
    #[arg(long, value_name = "FILE")]
    pub json_out: Option<PathBuf>,
}

/// Runs `residue predict`.
pub fn run(args: Args) -> Result<()> {
    let graph = nn::onnx::load(&args.model)
        .with_context(|| format!("loading model {}", args.model.display()))?;
    let x = nn::input::load(&args.input, &graph.input_shape)
        .with_context(|| format!("loading input {}", args.input.display()))?;
    let y = nn::exec::run(&graph, &x)?;
    let class = nn::exec::argmax(&y.data);
    let trained = nn::data::TrainedOn::for_model(&args.model);
    let kind = match &args.data {
        Some(name) => Some(DatasetKind::parse(name).with_context(|| {
            format!("unknown dataset `{name}` (fashion-mnist, mnist, cifar10)")
        })?),
        None => trained.as_ref().and_then(|t| t.kind()),
    };
    if let Some(k) = args.data.as_ref().and(kind) {
        super::eval::warn_if_not_trained_on(&args.model, k);
    }
    let name = kind.and_then(|k| k.class_names().get(class).copied());
    if args.json || args.json_out.is_some() {
        let v = serde_json::json!({
            "class": class,
            "class_name": name,
            "dataset": kind.map(|k| k.name()),
            "logits": y.data,
        });
        super::json::emit(args.json, args.json_out.as_deref(), &v)?;
    }
    if !args.json {
        let logits: Vec<String> = y.data.iter().map(|v| format!("{v:.4}")).collect();
        let label = match (name, kind) {
            (Some(n), Some(k)) => format!(" ({n}, {})", k.name()),
            _ => " (class names unknown: no training record beside the model; say --data NAME)"
                .to_string(),
        };
        println!("class {class}{label}  logits [{}]", logits.join(", "));
    }
    Ok(())
}
