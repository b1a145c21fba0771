//! `residue tradeoff`: plaintext accuracy against encrypted cost, one point
//! per model, a line per skip family (ResNet, Dirac, Dirac +
//! shared-source), so that a reader sees where one family dominates the
//! other (issue 10). No ciphertext: the accuracy is the reference
//! executor's on the whole test set, the cost the compiler's estimate
//! (`residue analyze`, same set, placement and pricing for every model).
//! Writes `DIR/tradeoff.json`, `DIR/accuracy-cost.{svg,png}` and prints a
//! markdown table.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use serde::{Deserialize, Serialize};

use super::reproduce::plots;

/// Every bundled model: the three 40-epoch ones, then the 16- and 8-epoch
/// ones they replaced.
const DEFAULT_MODELS: &str = "models/resnet20.onnx,models/dirac20.onnx,models/dirac-shared20.onnx,\
models/ext16/resnet20.onnx,models/ext16/dirac-shared20.onnx,\
models/e8/resnet20.onnx,models/e8/dirac20.onnx,models/e8/dirac-shared20.onnx";

/// Arguments of `residue tradeoff`.
#[derive(clap::Args)]
pub struct Args {
    /// The models (ONNX), comma-separated. Each is labelled by its path
    /// after `models/`, without `.onnx` (`e8/resnet20`), else by its file
    /// stem.
    #[arg(long, value_delimiter = ',', default_value = DEFAULT_MODELS)]
    pub models: Vec<String>,
    /// Dataset name and, optionally, its directory (as `residue eval`).
    #[arg(long, num_args = 1..=2, value_names = ["NAME", "DIR"], default_value = "fashion-mnist")]
    pub data: Vec<String>,
    /// Plaintext accuracy on the first N test images only (default: the
    /// whole test set).
    #[arg(long, value_name = "N")]
    pub limit: Option<usize>,
    /// Parameter set the cost is estimated at.
    #[arg(long, default_value = "n16-boot")]
    pub params: String,
    /// Bootstrap placement: `optimal` or `greedy`.
    #[arg(long, default_value = "optimal")]
    pub placement: String,
    /// Price the estimate for this many worker threads (as `residue
    /// analyze --threads`; default 1).
    #[arg(long)]
    pub threads: Option<u32>,
    /// Directory for `tradeoff.json` and the figure; the plaintext
    /// accuracies are kept there per model and reused while the weights
    /// are the same.
    #[arg(long, default_value = "runs/tradeoff")]
    pub out: PathBuf,
    /// `--json`: print the records as JSON instead of the table.
    #[command(flatten)]
    pub report: super::json::JsonArgs,
}

/// One model: its accuracy and its encrypted cost.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Point {
    /// The label (`e8/resnet20`).
    pub model: String,
    /// The file.
    pub file: String,
    /// Skip structure as the compiler sees it (`resnet`, `chain`,
    /// `shared-source`, `mixed`).
    pub structure: String,
    /// The family the figure groups the model in: the architecture family
    /// of its training record (`MODEL.train.json`, `arch.family`: `resnet`
    /// -> `resnet`, `dirac` -> `chain`, `dirac-shared` ->
    /// `shared-source`), else `structure`. They differ for a shallow
    /// shared-source network with stages of one add (Dirac + shared-source
    /// 14 in stages 2-3: a source read once looks like a ResNet skip to
    /// the compiler, so it compiles as `mixed`).
    pub family: String,
    /// Plaintext test accuracy (reference executor), a fraction.
    pub accuracy: f64,
    /// Correct test images.
    pub correct: usize,
    /// Test images evaluated.
    pub images: usize,
    /// Parameter set of the estimate.
    pub params: String,
    /// Placement of the estimate.
    pub placement: String,
    /// Ciphertext bootstraps per inference (planned).
    pub bootstraps: u64,
    /// Estimated seconds per image.
    pub estimated_s: f64,
    /// What the estimate is priced with.
    pub cost_source: String,
    /// The baseline's estimated seconds over this one's.
    pub speedup_vs_baseline: f64,
    /// The first ResNet model given (else the first model).
    pub baseline: String,
}

/// A model given, compiled.
struct Model {
    name: String,
    canonical: Option<PathBuf>,
    file: String,
    graph: nn::Graph,
    report: compiler::Report,
    hash: String,
    /// [`Point::family`].
    family: String,
}

/// A cached plaintext accuracy (`DIR/plain/<model hash>.json`).
#[derive(Serialize, Deserialize)]
struct Plain {
    model_hash: String,
    dataset: String,
    data_dir: String,
    images: usize,
    correct: usize,
}

/// A model's label: its path after the last `models/`, without `.onnx`
/// (`models/e8/resnet20.onnx` -> `e8/resnet20`), else its file stem.
fn label(file: &str) -> String {
    let no_ext = Path::new(file).with_extension("");
    let s = no_ext.to_string_lossy();
    match s.rfind("models/") {
        Some(i) => s[i + "models/".len()..].to_string(),
        None => no_ext
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| s.to_string()),
    }
}

/// The figure's family of a model with training record `record` and
/// compiled skip structure `structure` (see [`Point::family`]).
fn family(record: Option<&nn::data::TrainedOn>, structure: &str) -> String {
    match record.and_then(|t| t.family.as_deref()) {
        Some("resnet") => "resnet",
        Some("dirac") => "chain",
        Some("dirac-shared") => "shared-source",
        _ => structure,
    }
    .to_string()
}

/// Runs `residue tradeoff`.
pub fn run(args: Args) -> Result<()> {
    if args.limit == Some(0) {
        bail!("--limit 0: give at least one test image");
    }
    if args.threads == Some(0) {
        bail!("--threads 0: give at least one thread");
    }
    if args.models.is_empty() {
        bail!("--models: no model given");
    }
    let strategy = super::analyze::parse_placement(&args.placement)?;
    let params =
        ckks::Params::named(&args.params).with_context(|| format!("--params {}", args.params))?;
    let threads = args.threads.unwrap_or(1);
    let set = super::he::param_set_threads(&params, threads)?;
    let (kind, data_dir) = super::eval::dataset_arg(&args.data)?;
    let quiet = super::he::quiet_progress(args.report.json);

    // Everything the compiler says first: a model that cannot compile
    // fails before any evaluation.
    let mut models = Vec::new();
    for file in &args.models {
        let path = Path::new(file);
        if !path.is_file() {
            bail!(
                "model {file} not found (run from the repository root, or name models with --models)"
            );
        }
        let graph = super::he::load_model(path)?;
        let canonical = path.canonicalize().ok();
        if let Some(m) = models
            .iter()
            .find(|m: &&Model| m.canonical.is_some() && m.canonical == canonical)
        {
            bail!("model {file} is given twice (also as {})", m.file);
        }
        // Two files with the same label (`runs/a/model.onnx`,
        // `runs/b/model.onnx`) are labelled by their paths instead.
        let mut name = label(file);
        if models.iter().any(|m: &Model| m.name == name) {
            name = Path::new(file)
                .with_extension("")
                .to_string_lossy()
                .into_owned();
        }
        let opts = compiler::CompileOptions {
            params: Some(args.params.clone()),
            strategy,
            attribute_skips: false,
            ..Default::default()
        };
        let (_, report) = compiler::compile(&graph, std::slice::from_ref(&set), &opts)
            .with_context(|| format!("compiling {file} for {}", args.params))?;
        super::analyze::check_bootstraps(&report)?;
        let hash = super::reproduce::weights_hash(&graph, file)?;
        let record = nn::data::TrainedOn::for_model(path);
        super::eval::warn_if_record_mismatch(path, record.as_ref(), kind);
        let family = family(record.as_ref(), &report.structure);
        models.push(Model {
            name,
            canonical,
            file: file.clone(),
            graph,
            report,
            hash,
            family,
        });
    }

    let mut test = super::eval::load_test_set(kind, &data_dir)?;
    if let Some(l) = args.limit {
        test = test.take(l);
    }
    let cache = args.out.join("plain");
    std::fs::create_dir_all(&cache).with_context(|| format!("creating {}", cache.display()))?;

    let baseline = models
        .iter()
        .find(|m| m.report.structure == "resnet")
        .unwrap_or(&models[0]);
    let (baseline_name, baseline_s) = (
        baseline.name.clone(),
        baseline.report.estimated_seconds_per_image,
    );
    let mut points = Vec::new();
    for Model {
        name,
        file,
        graph,
        report,
        hash,
        family,
        ..
    } in &models
    {
        // Kept by the weights' hash: a label can name other weights later.
        let path = cache.join(format!("{hash}.json"));
        let data_dir_s = data_dir.display().to_string();
        let cached = std::fs::read_to_string(&path)
            .ok()
            .and_then(|s| serde_json::from_str::<Plain>(&s).ok())
            .filter(|p| {
                p.model_hash == *hash
                    && p.dataset == kind.name()
                    && p.data_dir == data_dir_s
                    && p.images == test.len()
            });
        let plain = match cached {
            Some(p) => p,
            None => {
                if !quiet {
                    eprintln!(
                        "{name}: plaintext accuracy on {} test images ...",
                        test.len()
                    );
                }
                let bar = if quiet {
                    indicatif::ProgressBar::hidden()
                } else {
                    super::he::count_bar(test.len(), "images")
                };
                let acc =
                    nn::exec::evaluate_with_progress(graph, &test, &mut |k| bar.inc(k as u64))
                        .with_context(|| {
                            format!("{file}: evaluating on the {} test set", kind.name())
                        })?;
                bar.finish_and_clear();
                let p = Plain {
                    model_hash: hash.clone(),
                    dataset: kind.name().to_string(),
                    data_dir: data_dir_s.clone(),
                    images: acc.total,
                    correct: acc.correct,
                };
                std::fs::write(&path, serde_json::to_string_pretty(&p)?)
                    .with_context(|| format!("writing {}", path.display()))?;
                p
            }
        };
        points.push(Point {
            model: name.clone(),
            file: file.clone(),
            structure: report.structure.clone(),
            family: family.clone(),
            accuracy: plain.correct as f64 / plain.images.max(1) as f64,
            correct: plain.correct,
            images: plain.images,
            params: report.params.clone(),
            placement: super::analyze::placement_name(strategy).to_string(),
            bootstraps: report.bootstraps,
            estimated_s: report.estimated_seconds_per_image,
            cost_source: report.cost_source.clone(),
            speedup_vs_baseline: baseline_s / report.estimated_seconds_per_image,
            baseline: baseline_name.clone(),
        });
    }

    let json_path = args.out.join("tradeoff.json");
    std::fs::write(&json_path, serde_json::to_string_pretty(&points)? + "\n")
        .with_context(|| format!("writing {}", json_path.display()))?;
    plots::register_font()?;
    let title = format!(
        "Plaintext accuracy ({} test images) against estimated encrypted cost ({}, {})",
        test.len(),
        args.params,
        super::analyze::placement_name(strategy)
    );
    let figure: Vec<plots::Point> = points
        .iter()
        .map(|p| plots::Point {
            x: p.estimated_s,
            y: 100.0 * p.accuracy,
            structure: p.family.clone(),
            label: p.model.clone(),
            triangle: false,
        })
        .collect();
    let files = plots::write_scatter(
        &args.out,
        "accuracy-cost",
        &figure,
        &plots::Axes {
            title: &title,
            x_desc: "estimated encrypted seconds per image (residue analyze)",
            y_desc: "plaintext test accuracy (%)",
            x_from_zero: false,
            family_front_only: true,
        },
    )?;
    args.report.emit(&points)?;
    if !args.report.json {
        println!("{}", table(&points));
        println!(
            "wrote {} and {}",
            json_path.display(),
            files
                .iter()
                .map(|f| args.out.join(f).display().to_string())
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
    Ok(())
}

/// The markdown table of `points`.
pub fn table(points: &[Point]) -> String {
    let mut s = String::from(
        "| model | family | accuracy | bootstraps | est. s / image | speed-up |\n|---|---|---:|---:|---:|---:|\n",
    );
    for p in points {
        let family = if p.family == p.structure {
            p.family.clone()
        } else {
            format!("{} (compiled: {})", p.family, p.structure)
        };
        s.push_str(&format!(
            "| {} | {} | {:.2}% ({}/{}) | {} | {:.2} | {:.2}x |\n",
            p.model,
            family,
            100.0 * p.accuracy,
            p.correct,
            p.images,
            p.bootstraps,
            p.estimated_s,
            p.speedup_vs_baseline
        ));
    }
    s
}

#[cfg(test)]
mod tests {
    use super::{family, label};

    /// The figure's family comes from the training record when there is
    /// one (a depth-14 shared-source net compiles as `mixed`), else from
    /// the compiler.
    #[test]
    fn family_follows_the_training_record() {
        assert_eq!(family(None, "mixed"), "mixed", "no record: the compiler's");
        let record = |arch_family: &str| {
            let rec = format!(
                r#"{{"config": {{"dataset": "fashion-mnist"}}, "arch": {{"family": "{arch_family}"}}}}"#
            );
            nn::data::TrainedOn::from_json(rec.as_bytes(), "r.train.json".into()).unwrap()
        };
        for (arch, want) in [
            ("dirac-shared", "shared-source"),
            ("dirac", "chain"),
            ("resnet", "resnet"),
            ("something-else", "mixed"),
        ] {
            assert_eq!(family(Some(&record(arch)), "mixed"), want, "{arch}");
        }
        let no_family = nn::data::TrainedOn::from_json(
            br#"{"config": {"dataset": "fashion-mnist"}}"#,
            "r.train.json".into(),
        )
        .unwrap();
        assert_eq!(family(Some(&no_family), "mixed"), "mixed", "no arch.family");
    }

    #[test]
    fn labels_keep_the_folder() {
        assert_eq!(label("models/e8/resnet20.onnx"), "e8/resnet20");
        assert_eq!(label("models/resnet20.onnx"), "resnet20");
        assert_eq!(label("/a/../models/ext16/dirac20.onnx"), "ext16/dirac20");
        assert_eq!(label("/tmp/x/net.onnx"), "net");
    }
}
