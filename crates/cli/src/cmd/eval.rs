//! `residue eval`: plaintext test accuracy of an ONNX model with the
//! reference executor.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use nn::data::{DatasetKind, ImageSet};

/// Arguments of `residue eval`.
#[derive(clap::Args)]
pub struct Args {
    /// The model (ONNX).
    #[arg(long)]
    pub model: PathBuf,
    /// Dataset name (`fashion-mnist`, `mnist`, `cifar10`) and, optionally,
    /// its directory (Fashion-MNIST defaults to the Debian package's).
    #[arg(long, num_args = 1..=2, value_names = ["NAME", "DIR"], required = true)]
    pub data: Vec<String>,
    /// Evaluate only the first N test images.
    #[arg(long)]
    pub limit: Option<usize>,
    /// Print JSON (`accuracy`, `correct`, `total`, ...) instead of text.
    #[arg(long)]
    pub json: bool,
    /// Also write the JSON report to FILE (what `--json` prints).
    #[arg(long, value_name = "FILE")]
    pub json_out: Option<PathBuf>,
    /// Encrypted evaluation: the client encrypts each test image, the
    /// server runs the model on it, the client decrypts; reported beside
    /// the plaintext model on the same images.
    #[arg(long)]
    pub he: bool,
    /// With `--he`: how many test images (from the first).
    #[arg(long, default_value_t = 20)]
    pub images: usize,
    /// With `--he`: the parameter set.
    #[arg(long, default_value = "n16-boot")]
    pub params: String,
    /// With `--he`: bootstrap placement, `optimal` (dynamic program) or
    /// `greedy` (as `residue compile --placement`).
    #[arg(long, default_value = "optimal")]
    pub placement: String,
    /// With `--he`: images per encrypted inference, a power of two or
    /// `auto` (as many as fit the set's slots in one ciphertext; more spill
    /// the larger maps over several); the images run that many at a time.
    #[arg(long, default_value = "1")]
    pub batch: String,
    /// With `--he`: quadratic activations as degree-2 polynomials (two
    /// levels), not completed squares folded into the linear layer before
    /// them (one level, the default).
    #[arg(long)]
    pub no_fused_squares: bool,
    /// With `--he`: encrypt the input at L_eff, never on the levels above
    /// it (smaller rotation keys; see `residue analyze --help`).
    #[arg(long)]
    pub no_fresh_levels: bool,
    /// With `--he`: encrypt the input above L_eff wherever the plan there
    /// is estimated faster, not only where it saves a bootstrap (see
    /// `residue analyze --help`).
    #[arg(long, conflicts_with = "no_fresh_levels")]
    pub fresh_when_faster: bool,
    /// With `--he`: `residue bench ckks` JSON to price the placement with
    /// (as `residue analyze --calibrate`; `residue reproduce --calibrate`
    /// passes it on).
    #[arg(long, value_name = "FILE")]
    pub calibrate: Option<std::path::PathBuf>,
    /// With `--he`: worker threads (default: all cores).
    #[arg(long)]
    pub threads: Option<usize>,
    /// With `--he`: a JSONL file of per-image results; images already in it
    /// (at the same parameter set and placement) are not run again (resume
    /// a long run).
    #[arg(long)]
    pub log: Option<PathBuf>,
    /// With `--he`: bootstrapping's diagonals.
    #[command(flatten)]
    pub diagonals: super::he::DiagonalArgs,
    /// With `--he`: turn the engine's kernel profile on and record each
    /// image's kernel times by kind of work (`kernels_by_kind` in the log).
    #[arg(long)]
    pub profile: bool,
}

/// Loads the test split of a dataset; the error says where it looked and
/// how to get the data.
pub fn load_test_set(kind: DatasetKind, dir: &Path) -> Result<ImageSet> {
    load_test_split(kind, dir).with_context(|| {
        format!(
            "loading the {} test set from {} (to get it: {})",
            kind.name(),
            dir.display(),
            kind.how_to_get()
        )
    })
}

fn load_test_split(kind: DatasetKind, dir: &Path) -> Result<ImageSet> {
    let set = match kind {
        DatasetKind::FashionMnist | DatasetKind::Mnist => nn::data::load_idx_split(dir, "t10k")?,
        DatasetKind::Cifar10 => {
            let p = dir.join("test_batch.bin");
            let limit = (nn::data::MAX_CIFAR_RECORDS * nn::data::CIFAR10_RECORD) as u64;
            let bytes = nn::data::read_maybe_gzip(&p, limit)?;
            nn::data::parse_cifar10(&bytes, &p.display().to_string())?
        }
    };
    Ok(set)
}

/// Parses `--data NAME [DIR]`.
pub fn dataset_arg(data: &[String]) -> Result<(DatasetKind, PathBuf)> {
    let name = data.first().map(String::as_str).unwrap_or_default();
    let kind = DatasetKind::parse(name)
        .with_context(|| format!("unknown dataset `{name}` (fashion-mnist, mnist, cifar10)"))?;
    let dir = match data.get(1) {
        Some(d) => PathBuf::from(d),
        None => match kind.default_dir() {
            Some(d) => d.to_path_buf(),
            None => bail!(
                "dataset `{name}` needs a directory: --data {name} DIR (to get it: {})",
                kind.how_to_get()
            ),
        },
    };
    Ok((kind, dir))
}

/// Warns on stderr when the model's training record (`MODEL.train.json`)
/// names another data set, input shape or normalization than `kind`: the
/// accuracy of a Fashion-MNIST model on MNIST means nothing.
pub fn warn_if_not_trained_on(model: &Path, kind: DatasetKind) {
    warn_if_record_mismatch(model, nn::data::TrainedOn::for_model(model).as_ref(), kind);
}

/// [`warn_if_not_trained_on`] with the model's training record already read.
pub fn warn_if_record_mismatch(
    model: &Path,
    record: Option<&nn::data::TrainedOn>,
    kind: DatasetKind,
) {
    if let Some(t) = record
        && let Some(why) = t.mismatch(kind)
    {
        eprintln!(
            "warning: {} does not match the {} data ({why}; from {})",
            model.display(),
            kind.name(),
            t.source.display()
        );
    }
}

/// Runs `residue eval`.
pub fn run(args: Args) -> Result<()> {
    if args.he && args.images == 0 {
        bail!("--images 0: give at least one test image to evaluate encrypted");
    }
    if args.he {
        super::analyze::parse_placement(&args.placement)?;
        args.diagonals.storage()?;
    }
    if args.limit == Some(0) {
        bail!("--limit 0: give at least one test image to evaluate");
    }
    let (kind, dir) = dataset_arg(&args.data)?;
    let graph = nn::onnx::load(&args.model)
        .with_context(|| format!("loading model {}", args.model.display()))?;
    warn_if_not_trained_on(&args.model, kind);
    let mut set = load_test_set(kind, &dir)?;
    if let Some(n) = args.limit {
        set = set.take(n);
    }
    if args.he {
        return super::eval_he::run(&args, &graph, &set);
    }
    let start = std::time::Instant::now();
    let bar = super::he::count_bar(set.len(), "images");
    // Not a terminal (the bar is not drawn): a line at the start, one about
    // every 10 s and one at the end, so a log shows the run is alive.
    use std::io::IsTerminal;
    let lines = !args.json && !std::io::stderr().is_terminal();
    let n = set.len();
    if lines {
        eprintln!(
            "evaluating {} on {n} {} test images ...",
            args.model.display(),
            kind.name()
        );
    }
    let (mut done, mut last) = (0usize, start);
    let acc = nn::exec::evaluate_with_progress(&graph, &set, &mut |k| {
        bar.inc(k as u64);
        done += k;
        if lines && last.elapsed().as_secs_f64() >= 10.0 && done < n {
            last = std::time::Instant::now();
            eprintln!(
                "  {done}/{n} images, {:.0} s",
                start.elapsed().as_secs_f64()
            );
        }
    })
    .with_context(|| format!("evaluating on the {} test set", kind.name()))?;
    bar.finish_and_clear();
    if lines {
        eprintln!(
            "evaluated {n} images in {:.1} s",
            start.elapsed().as_secs_f64()
        );
    }
    let (correct, total, accuracy) = (acc.correct, acc.total, acc.fraction());
    if args.json || args.json_out.is_some() {
        let v = serde_json::json!({
            "model": args.model.display().to_string(),
            "dataset": kind.name(),
            "accuracy": accuracy,
            "correct": correct,
            "total": total,
            "seconds": start.elapsed().as_secs_f64(),
        });
        super::json::emit(args.json, args.json_out.as_deref(), &v)?;
    }
    if !args.json {
        println!(
            "{}: {correct}/{total} correct, accuracy {:.2}% on the {} test set",
            args.model.display(),
            100.0 * accuracy,
            kind.name()
        );
    }
    Ok(())
}
