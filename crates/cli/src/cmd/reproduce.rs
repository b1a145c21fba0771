//! `residue reproduce`: the skip-connection result, measured. For each
//! model variant (ResNet, Dirac, Dirac + shared-source), parameter set and
//! bootstrap placement: plaintext accuracy on the test set, encrypted
//! accuracy, bootstraps, rotations, latency, peak memory and key bytes on
//! the first N test images, the compiler's estimate beside each, and the
//! speed-up over the ResNet baseline; written to a directory as it
//! finishes (JSON, markdown, plots) and resumed from there.
//!
//! The encrypted runs are `residue eval --he` in a child process each (its
//! per-image JSONL log is what resumes a run, and a process of its own
//! gives each variant its own peak memory: the allocator keeps freed
//! memory for a while, so one process would carry one variant's peak into
//! the next).

pub mod plots;
mod report;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use anyhow::{Context, Result, bail};
use compiler::placement::Strategy;
use serde::{Deserialize, Serialize};

use super::analyze::{check_bootstraps, parse_placement, placement_name};
use super::eval_he::{LogKey, Summary, read_log};

/// The variants of the paper's comparison, as trained on Fashion-MNIST
/// and committed under `models/`.
const DEFAULT_MODELS: &str = "models/resnet20.onnx,models/dirac20.onnx,models/dirac-shared20.onnx";

/// Arguments of `residue reproduce`.
#[derive(clap::Args)]
pub struct Args {
    /// Encrypted test images per variant (the first N of the test set).
    #[arg(long, default_value_t = 20)]
    pub images: usize,
    /// Parameter set, a comma-separated list of them, or `auto` (per
    /// model, the bootstrappable set with the least estimated time).
    #[arg(long, default_value = "n16-boot")]
    pub params: String,
    /// Worker threads, plaintext and encrypted (default: all cores).
    #[arg(long)]
    pub threads: Option<usize>,
    /// Directory for the results, logs and plots; a rerun with the same
    /// directory skips what is done and continues a partial run.
    #[arg(long, default_value = "runs/reproduce")]
    pub out: PathBuf,
    /// Bootstrap placement: `optimal`, `greedy` or `both`.
    #[arg(long, default_value = "optimal")]
    pub placement: String,
    /// Quadratic activations as two-level polynomials (the paper's
    /// setting) instead of one-level completed squares. The logs tell the
    /// two apart (a resumed run reuses only its own setting's images);
    /// `results.json` holds the last run's.
    #[arg(long)]
    pub no_fused_squares: bool,
    /// Encrypt every input at L_eff, never on the fresh levels above it
    /// (as `residue analyze --no-fresh-levels`). The logs tell the plans
    /// apart: a resumed run reuses only its own plan's images.
    #[arg(long)]
    pub no_fresh_levels: bool,
    /// The models (ONNX), comma-separated.
    #[arg(long, value_delimiter = ',', default_value = DEFAULT_MODELS)]
    pub models: Vec<String>,
    /// The model every speed-up is measured against (its file stem;
    /// default: the first model with mid-term skips, else the first).
    #[arg(long)]
    pub baseline: Option<String>,
    /// `residue bench ckks` JSON to price the compiler's estimates with
    /// (as `residue analyze --calibrate`).
    #[arg(long, value_name = "FILE")]
    pub calibrate: Option<PathBuf>,
    /// Dataset name and, optionally, its directory (as `residue eval`).
    #[arg(long, num_args = 1..=2, value_names = ["NAME", "DIR"], default_value = "fashion-mnist")]
    pub data: Vec<String>,
    /// Plaintext accuracy on the first N test images only (default: the
    /// whole test set).
    #[arg(long, value_name = "N")]
    pub plain_limit: Option<usize>,
    /// Measure in K rounds: each round runs every variant on its share of
    /// the images before the next round starts, so that load from outside
    /// falls on all variants alike instead of on whichever ran at that
    /// time (each round pays a key generation per variant, not counted in
    /// the latencies). 1: each variant's images in one go.
    #[arg(long, value_name = "K", default_value_t = 1)]
    pub rounds: usize,
    /// Bootstrapping's diagonals in every encrypted run.
    #[command(flatten)]
    pub diagonals: super::he::DiagonalArgs,
    /// `--json`: print the results (what `DIR/results.json` holds) as JSON
    /// on stdout instead of the table; `--json-out FILE`: also write them
    /// to FILE.
    #[command(flatten)]
    pub report: super::json::JsonArgs,
}

/// One model variant at one parameter set and placement: a record of
/// `results.json`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Record {
    /// The model's file stem (`resnet20`).
    pub model: String,
    /// The model file.
    pub file: String,
    /// Its skip structure, as the compiler sees it: `resnet`, `chain`
    /// (no skip: Dirac), `shared-source` or `mixed`.
    pub structure: String,
    /// Parameter set.
    pub params: String,
    /// Bootstrap placement (`optimal` or `greedy`).
    pub placement: String,
    /// Whether quadratic activations were one-level completed squares
    /// (`false`: two-level polynomials, `--no-fused-squares`, and every
    /// record from before session 17).
    #[serde(default)]
    pub fused_squares: bool,
    /// Encrypted test images.
    pub images: usize,
    /// Plaintext accuracy (reference executor) on `plain_images` test
    /// images.
    pub accuracy_plain: f64,
    /// Test images of `accuracy_plain`.
    pub plain_images: usize,
    /// Encrypted accuracy on `images` test images.
    pub accuracy_he: f64,
    /// Plaintext accuracy on the same `images` test images.
    pub accuracy_plain_he_images: f64,
    /// Fraction of the `images` whose decrypted class is the plaintext
    /// model's.
    pub argmax_agreement: f64,
    /// Largest logit error over the images (null: not finite).
    pub max_logit_error: f64,
    /// Ciphertext bootstraps of one inference (measured).
    pub bootstraps: Option<u64>,
    /// Ciphertext bootstraps the plan places (the compiler's count).
    pub bootstraps_planned: u64,
    /// Plan steps whose result is bootstrapped (the count DESIGN.md's
    /// worked example gives: 8 for ResNet-20, 6 for the Dirac chain).
    pub bootstrap_sites: usize,
    /// Rotations of one inference (measured).
    pub rotations: Option<u64>,
    /// Key switches of one inference (the compiler's count; the runtime
    /// does not count them).
    pub key_switches_planned: u64,
    /// Measured mean server seconds per image.
    pub latency_s: f64,
    /// Measured mean server CPU seconds per image (all threads).
    pub cpu_s: Option<f64>,
    /// The fastest image's server seconds (every image does the same
    /// work: the least disturbed by other load).
    #[serde(default)]
    pub latency_min_s: Option<f64>,
    /// The compiler's estimate per image (`residue analyze`, same set and
    /// placement).
    pub estimated_s: f64,
    /// What the estimate is priced with (`uncalibrated estimate`, or
    /// `measured (...)`: the engine's timings it was calibrated with).
    pub estimate_source: String,
    /// Peak resident memory of the encrypted run (the `eval --he`
    /// processes).
    pub peak_mem_bytes: Option<u64>,
    /// Evaluation key bytes the server held.
    pub key_bytes: Option<u64>,
    /// Worker threads of the encrypted run.
    pub threads: Option<usize>,
    /// The baseline's measured latency over this one's (same parameter
    /// set and placement).
    pub speedup_vs_resnet: Option<f64>,
    /// The same from the measured CPU seconds (steadier than wall time on
    /// a busy machine).
    pub cpu_speedup_vs_resnet: Option<f64>,
    /// The same from the fastest images' latencies.
    #[serde(default)]
    pub min_speedup_vs_resnet: Option<f64>,
    /// The same from the compiler's estimates.
    pub estimated_speedup_vs_resnet: Option<f64>,
    /// The baseline model's stem.
    pub baseline: String,
    /// Set when this placement's plan bootstraps at exactly the steps of
    /// another placement's: its figures are that run's, not run twice.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub same_plan_as: Option<String>,
    /// The CPU kernel path of the engine (`avx512-ifma`, `avx2`,
    /// `portable`).
    pub kernels: String,
}

/// A model to reproduce: its file, stem, graph and weights hash.
struct Model {
    file: String,
    stem: String,
    graph: nn::Graph,
    hash: String,
}

/// What `DIR/<model>/model.json` holds: which weights the results in that
/// folder are of.
#[derive(Serialize, Deserialize)]
struct ModelStamp {
    file: String,
    model_hash: String,
}

/// What `DIR/<model>/plain.json` holds: the plaintext accuracy.
#[derive(Serialize, Deserialize)]
struct PlainResult {
    model_hash: String,
    dataset: String,
    images: usize,
    correct: usize,
    accuracy: f64,
    seconds: f64,
}

/// One compiled plan's figures (the compiler's, no ciphertext).
#[derive(Clone)]
pub struct Compiled {
    /// Parameter set the plan is for.
    pub params: String,
    /// Skip structure.
    pub structure: String,
    /// Estimated seconds per image.
    pub estimated_s: f64,
    /// What the estimate is priced with.
    pub cost_source: String,
    /// Ciphertext bootstraps planned.
    pub bootstraps: u64,
    /// Key switches planned.
    pub key_switches: u64,
    /// Levels after a bootstrap.
    pub l_eff: u32,
    /// Per step: (level in, level out, bootstrapped, level after, a skip
    /// addition).
    pub steps: Vec<plots::Step>,
    /// What the encrypted run's log records must match.
    pub key: LogKey,
}

impl Compiled {
    fn sites(&self) -> Vec<usize> {
        (0..self.steps.len())
            .filter(|&i| self.steps[i].bootstrap)
            .collect()
    }
}

/// The parsed `--placement`.
fn placements(s: &str) -> Result<Vec<Strategy>> {
    if s == "both" {
        return Ok(vec![Strategy::Optimal, Strategy::Greedy]);
    }
    parse_placement(s)
        .map(|p| vec![p])
        .map_err(|_| anyhow::anyhow!("unknown placement `{s}` (optimal, greedy, both)"))
}

/// The parsed `--params`: set names (checked) or `auto`.
fn params_list(s: &str) -> Result<Vec<String>> {
    let mut out: Vec<String> = Vec::new();
    for p in s.split(',').map(str::trim) {
        if p.is_empty() {
            bail!("--params `{s}`: an empty set name");
        }
        if p != "auto" {
            ckks::Params::named(p).with_context(|| format!("--params {p}"))?;
        }
        if !out.iter().any(|q| q == p) {
            out.push(p.to_string());
        }
    }
    Ok(out)
}

/// Compiles `graph` for `params` (a name or `auto`) with `strategy`, as
/// `residue analyze` does, priced for `threads` threads where the
/// committed measurements have that count (else for one thread; the
/// record's `estimate_source` says which).
fn compile(
    m: &Model,
    params: &str,
    strategy: Strategy,
    calibrate: Option<&Path>,
    threads: u32,
    (fuse_squares, fresh_levels): (bool, bool),
) -> Result<Compiled> {
    let graph = &m.graph;
    let (sets, name) = if params == "auto" {
        let sets = super::he::bootstrappable_sets(threads)
            .or_else(|_| super::he::bootstrappable_sets(1))?;
        (sets, None)
    } else {
        let p = ckks::Params::named(params)?;
        let set =
            super::he::param_set_threads(&p, threads).unwrap_or_else(|_| super::he::param_set(&p));
        (vec![set], Some(params.to_string()))
    };
    let mut sets = sets;
    if let Some(path) = calibrate {
        super::analyze::calibrate_sets(&mut sets, path, None)?;
    }
    let opts = compiler::CompileOptions {
        params: name,
        strategy,
        fuse_squares,
        fresh_levels,
        ..Default::default()
    };
    let (plan, report) = compiler::compile(graph, &sets, &opts)?;
    check_bootstraps(&report)?;
    let key = LogKey::of(&plan, &m.hash, placement_name(strategy), fuse_squares);
    Ok(Compiled {
        key,
        params: report.params.clone(),
        structure: report.structure.clone(),
        estimated_s: report.estimated_seconds_per_image,
        cost_source: report.cost_source.clone(),
        bootstraps: report.bootstraps,
        key_switches: report.key_switches,
        l_eff: report.l_eff,
        steps: plan
            .nodes
            .iter()
            .map(|n| plots::Step {
                level_in: n.level_in,
                level_out: n.level_out,
                bootstrap: n.bootstrap,
                level_after: n.level_after,
                skip: n.skip.is_some(),
            })
            .collect(),
    })
}

fn write_json(path: &Path, v: &impl Serialize) -> Result<()> {
    let s = serde_json::to_string_pretty(v)?;
    // Written whole, then renamed: an interrupted run leaves the old file
    // or the new one, never half of one.
    let tmp = path.with_extension("json.tmp");
    std::fs::write(&tmp, format!("{s}\n")).with_context(|| format!("writing {}", tmp.display()))?;
    std::fs::rename(&tmp, path).with_context(|| format!("writing {}", path.display()))
}

fn read_json<T: for<'de> Deserialize<'de>>(path: &Path) -> Result<Option<T>> {
    if !path.exists() {
        return Ok(None);
    }
    let s = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    Ok(Some(
        serde_json::from_str(&s).with_context(|| format!("reading {}", path.display()))?,
    ))
}

/// The hash of `graph`'s inference form (what the runtime checks a plan
/// and keys against): the key under which results of these weights are
/// kept. `file` names the model in the error.
pub(super) fn weights_hash(graph: &nn::Graph, file: &str) -> Result<String> {
    let folded = nn::transform::fold_all(graph)
        .with_context(|| format!("model {file}: folding to its inference form"))?;
    Ok(runtime::prepare::model_hash(&folded))
}

/// Loads the models and checks that `out` holds no results of other
/// weights under their names.
fn load_models(args: &Args) -> Result<Vec<Model>> {
    let mut models: Vec<Model> = Vec::new();
    for file in &args.models {
        let path = Path::new(file);
        if !path.is_file() {
            bail!(
                "model {file} not found{}",
                if DEFAULT_MODELS.split(',').any(|m| m == file) {
                    " (run from the repository root, or name models with --models)"
                } else {
                    ""
                }
            );
        }
        let graph = super::he::load_model(path)?;
        let stem = path
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default();
        if let Some(m) = models.iter().find(|m| m.stem == stem) {
            bail!(
                "models {} and {file} have the same name `{stem}`; results are kept by name",
                m.file
            );
        }
        let hash = weights_hash(&graph, file)?;
        models.push(Model {
            file: file.clone(),
            stem,
            graph,
            hash,
        });
    }
    if models.is_empty() {
        bail!("--models: no model given");
    }
    Ok(models)
}

/// `DIR/<stem>`, created, stamped with the model's hash; refused when it
/// holds another model's results.
fn model_dir(out: &Path, m: &Model) -> Result<PathBuf> {
    let dir = out.join(&m.stem);
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let stamp_path = dir.join("model.json");
    match read_json::<ModelStamp>(&stamp_path)? {
        Some(s) if s.model_hash != m.hash => bail!(
            "{} holds results of other `{}` weights (from {}); remove it or choose another --out",
            dir.display(),
            m.stem,
            s.file
        ),
        Some(_) => {}
        None => write_json(
            &stamp_path,
            &ModelStamp {
                file: m.file.clone(),
                model_hash: m.hash.clone(),
            },
        )?,
    }
    Ok(dir)
}

/// Plaintext accuracy of `m` on `set`, from `dir/plain.json` when done.
fn plain_accuracy(
    dir: &Path,
    m: &Model,
    set: &nn::data::ImageSet,
    kind: nn::data::DatasetKind,
    quiet: bool,
) -> Result<PlainResult> {
    let path = dir.join("plain.json");
    if let Some(p) = read_json::<PlainResult>(&path)?
        && p.model_hash == m.hash
        && p.images == set.len()
        && p.dataset == kind.name()
    {
        if !quiet {
            eprintln!(
                "{}: plaintext accuracy {:.2}% on {} images (from {})",
                m.stem,
                100.0 * p.accuracy,
                p.images,
                path.display()
            );
        }
        return Ok(p);
    }
    if !quiet {
        eprintln!(
            "{}: plaintext accuracy on {} {} test images ...",
            m.stem,
            set.len(),
            kind.name()
        );
    }
    let t = std::time::Instant::now();
    let bar = if quiet {
        indicatif::ProgressBar::hidden()
    } else {
        super::he::count_bar(set.len(), "images")
    };
    let acc = nn::exec::evaluate_with_progress(&m.graph, set, &mut |k| bar.inc(k as u64))
        .with_context(|| format!("{}: evaluating on the {} test set", m.file, kind.name()))?;
    bar.finish_and_clear();
    let p = PlainResult {
        model_hash: m.hash.clone(),
        dataset: kind.name().to_string(),
        images: acc.total,
        correct: acc.correct,
        accuracy: acc.fraction(),
        seconds: t.elapsed().as_secs_f64(),
    };
    write_json(&path, &p)?;
    if !quiet {
        eprintln!(
            "{}: plaintext accuracy {:.2}% ({}/{}) in {:.1} s",
            m.stem,
            100.0 * p.accuracy,
            p.correct,
            p.images,
            p.seconds
        );
    }
    Ok(p)
}

/// The JSONL log of one encrypted variant.
fn log_path(dir: &Path, params: &str, placement: &str) -> PathBuf {
    dir.join(format!("he-{params}-{placement}.jsonl"))
}

/// Runs what is missing of `m`'s encrypted evaluation of the plan `key`
/// names (`residue eval --he` in a child process, logging to `log`),
/// then reads the log back. Returns the summary and how many images ran.
fn encrypted(
    args: &Args,
    m: &Model,
    key: &LogKey,
    log: &Path,
    n: usize,
    quiet: bool,
    label: &str,
) -> Result<(Summary, usize)> {
    let have = |log: &Path| -> Result<Vec<super::eval_he::ImageResult>> {
        let (mut done, _) = read_log(log, key)?;
        done.retain(|r| r.index < n);
        Ok(done)
    };
    let before = have(log)?.len();
    if before < n {
        if !quiet {
            eprintln!(
                "{label}: encrypted, {} of {n} images to run ({before} in {})",
                n - before,
                log.display()
            );
        }
        let exe = std::env::current_exe().context("finding the residue binary")?;
        let mut cmd = Command::new(exe);
        cmd.arg("eval")
            .arg("--model")
            .arg(&m.file)
            .arg("--data")
            .args(&args.data)
            .arg("--he")
            .args(["--images", &n.to_string()])
            .args(["--params", &key.params])
            .args(["--placement", &key.placement])
            .args(["--batch", "1"])
            .args(args.no_fused_squares.then_some("--no-fused-squares"))
            .args(args.no_fresh_levels.then_some("--no-fresh-levels"))
            .args(args.diagonals.child_args())
            .arg("--log")
            .arg(log);
        if let Some(c) = &args.calibrate {
            cmd.arg("--calibrate").arg(c);
        }
        if let Some(t) = args.threads {
            cmd.args(["--threads", &t.to_string()]);
        }
        if quiet {
            cmd.arg("--json");
        }
        let out = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .output()
            .context("starting `residue eval --he`")?;
        if !quiet {
            eprint!("{}", String::from_utf8_lossy(&out.stdout));
        }
        if !out.status.success() {
            bail!(
                "{label}: the encrypted evaluation failed ({}; its error is above); rerun to continue from {}",
                out.status,
                log.display()
            );
        }
    } else if !quiet {
        eprintln!(
            "{label}: encrypted, all {n} images in {} (0 to run)",
            log.display()
        );
    }
    let done = have(log)?;
    if done.len() < n {
        bail!(
            "{label}: {} holds {} of {n} images of the plan estimated here after the run \
             (the encrypted run compiled another plan)",
            log.display(),
            done.len()
        );
    }
    Ok((Summary::of(&done, None), done.len() - before))
}

/// The CPU's model name (`lscpu`'s) and the cores this process may use.
pub fn machine() -> (String, usize) {
    let name = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split_once(':'))
                .map(|(_, v)| v.trim().to_string())
        })
        .unwrap_or_else(|| "unknown CPU".into());
    let cores = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1);
    (name, cores)
}

/// The command line as run, `residue` first, arguments quoted where needed.
fn command_line() -> String {
    let mut parts = vec!["residue".to_string()];
    for a in std::env::args().skip(1) {
        if a.is_empty() || a.contains(|c: char| c.is_whitespace() || "'\"$`\\|&;<>()*?".contains(c))
        {
            parts.push(format!("'{}'", a.replace('\'', r"'\''")));
        } else {
            parts.push(a);
        }
    }
    parts.join(" ")
}

/// Fills in the speed-ups over the baseline (same parameter set as asked
/// and placement).
fn speedups(records: &mut [Record], requested: &[String]) {
    type Base = (f64, Option<f64>, f64, Option<f64>);
    let base: Vec<Option<Base>> = (0..records.len())
        .map(|i| {
            let r = &records[i];
            records
                .iter()
                .zip(requested)
                .find(|(b, q)| {
                    b.model == r.baseline && **q == requested[i] && b.placement == r.placement
                })
                .map(|(b, _)| (b.latency_s, b.cpu_s, b.estimated_s, b.latency_min_s))
        })
        .collect();
    for (r, b) in records.iter_mut().zip(base) {
        r.speedup_vs_resnet = b.map(|(l, _, _, _)| l / r.latency_s);
        r.cpu_speedup_vs_resnet = b.and_then(|(_, c, _, _)| Some(c? / r.cpu_s?));
        r.min_speedup_vs_resnet = b.and_then(|(_, _, _, m)| Some(m? / r.latency_min_s?));
        r.estimated_speedup_vs_resnet = b.map(|(_, _, e, _)| e / r.estimated_s);
    }
}

/// Runs `residue reproduce`.
pub fn run(args: Args) -> Result<()> {
    args.diagonals.storage()?;
    if args.images == 0 {
        bail!("--images 0: give at least one test image to evaluate encrypted");
    }
    if args.plain_limit == Some(0) {
        bail!("--plain-limit 0: give at least one test image for the plaintext accuracy");
    }
    if args.threads == Some(0) {
        bail!("--threads 0: give at least one thread");
    }
    if args.rounds == 0 {
        bail!("--rounds 0: give at least one round");
    }
    let strategies = placements(&args.placement)?;
    let params = params_list(&args.params)?;
    // The plaintext evaluation's threads; each encrypted run gets
    // `--threads` of its own.
    super::he::set_threads(args.threads);
    let (kind, data_dir) = super::eval::dataset_arg(&args.data)?;
    let models = load_models(&args)?;
    // Everything the compiler can say, before any long run: a model or set
    // that cannot work fails now, not after an hour.
    let quiet = super::he::quiet_progress(args.report.json);
    // The estimates are priced for the threads the encrypted runs use.
    let threads = args
        .threads
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
        as u32;
    let mut compiled: Vec<Vec<Vec<Compiled>>> = Vec::new();
    for m in &models {
        let mut per_params = Vec::new();
        for p in &params {
            let mut per_strategy = Vec::new();
            for &s in &strategies {
                per_strategy.push(
                    compile(
                        m,
                        p,
                        s,
                        args.calibrate.as_deref(),
                        threads,
                        (!args.no_fused_squares, !args.no_fresh_levels),
                    )
                    .with_context(|| {
                        format!("compiling {} for {p} ({})", m.file, placement_name(s))
                    })?,
                );
            }
            per_params.push(per_strategy);
        }
        compiled.push(per_params);
    }
    let baseline = match &args.baseline {
        Some(b) => {
            if !models.iter().any(|m| &m.stem == b) {
                bail!("--baseline {b}: not one of the models (their file stems)");
            }
            b.clone()
        }
        None => models
            .iter()
            .zip(&compiled)
            .find(|(_, c)| c[0][0].structure == "resnet")
            .map_or(&models[0], |(m, _)| m)
            .stem
            .clone(),
    };
    for m in &models {
        super::eval::warn_if_not_trained_on(Path::new(&m.file), kind);
    }
    let mut set = super::eval::load_test_set(kind, &data_dir)?;
    let n = args.images.min(set.len());
    std::fs::create_dir_all(&args.out)
        .with_context(|| format!("creating {}", args.out.display()))?;
    plots::register_font()?;
    let dirs: Vec<PathBuf> = models
        .iter()
        .map(|m| model_dir(&args.out, m))
        .collect::<Result<_>>()?;
    let full = set.len();
    if let Some(l) = args.plain_limit {
        set = set.take(l);
    }
    let mut plain = Vec::new();
    for (m, dir) in models.iter().zip(&dirs) {
        plain.push(plain_accuracy(dir, m, &set, kind, quiet)?);
    }

    let ctx = report::Context {
        command: command_line(),
        machine: machine(),
        kernels: ckks::kernel_path().to_string(),
        dataset: kind.name().to_string(),
        test_images: full,
        baseline: baseline.clone(),
    };
    let mut records: Vec<Record> = Vec::new();
    let mut requested: Vec<String> = Vec::new();
    let mut notes: Vec<String> = Vec::new();
    let mut ran = 0usize;
    // Each (set, model, placement) in report order, with the earlier
    // placement whose plan bootstraps at the same steps, if any: the same
    // plan, whose figures are that run's.
    let (n_models, n_strategies) = (models.len(), strategies.len());
    let variants: Vec<(usize, usize, usize, Option<usize>)> = (0..params.len())
        .flat_map(|pi| {
            (0..n_models).flat_map(move |mi| (0..n_strategies).map(move |si| (pi, mi, si)))
        })
        .map(|(pi, mi, si)| {
            let sites = compiled[mi][pi][si].sites();
            (
                pi,
                mi,
                si,
                (0..si).find(|&o| compiled[mi][pi][o].sites() == sites),
            )
        })
        .collect();
    let total = variants.len();
    // Every round but the last runs the variants on the first n·r/K
    // images; the last (below) completes each and reads it back.
    let rounds = args.rounds.min(n);
    for r in 1..rounds {
        let nr = n * r / rounds;
        for (k, &(pi, mi, si, twin)) in variants.iter().enumerate() {
            let c = &compiled[mi][pi][si];
            if nr == 0 || twin.is_some() {
                continue;
            }
            let (m, placement) = (&models[mi], placement_name(strategies[si]));
            let label = format!(
                "[round {r}/{rounds}, {}/{total}] {} at {} ({placement})",
                k + 1,
                m.stem,
                c.params
            );
            let log = log_path(&dirs[mi], &c.params, placement);
            ran += encrypted(&args, m, &c.key, &log, nr, quiet, &label)?.1;
        }
    }
    for (k, &(pi, mi, si, twin)) in variants.iter().enumerate() {
        let (p, m) = (&params[pi], &models[mi]);
        let c = &compiled[mi][pi][si];
        let placement = placement_name(strategies[si]);
        let label = format!(
            "[{}/{total}] {} at {} ({placement})",
            k + 1,
            m.stem,
            c.params
        );
        let (sum, same_plan_as) = match twin {
            Some(o) => {
                let other = placement_name(strategies[o]);
                if !quiet {
                    eprintln!("{label}: the same bootstrap placement as {other}; not run twice");
                }
                notes.push(format!(
                    "{} at {}: greedy placement bootstraps at the same {} steps as optimal \
                     (one plan; measured once)",
                    m.stem,
                    c.params,
                    c.sites().len()
                ));
                let log = log_path(&dirs[mi], &c.params, other);
                let (mut done, _) = read_log(&log, &compiled[mi][pi][o].key)?;
                done.retain(|r| r.index < n);
                (Summary::of(&done, None), Some(other.to_string()))
            }
            None => {
                let log = log_path(&dirs[mi], &c.params, placement);
                let (sum, r) = encrypted(&args, m, &c.key, &log, n, quiet, &label)?;
                ran += r;
                (sum, None)
            }
        };
        let frac = |x: usize| x as f64 / sum.images.max(1) as f64;
        records.push(Record {
            model: m.stem.clone(),
            file: m.file.clone(),
            structure: c.structure.clone(),
            params: c.params.clone(),
            placement: placement.to_string(),
            fused_squares: !args.no_fused_squares,
            images: sum.images,
            accuracy_plain: plain[mi].accuracy,
            plain_images: plain[mi].images,
            accuracy_he: frac(sum.correct_he),
            accuracy_plain_he_images: frac(sum.correct_plain),
            argmax_agreement: frac(sum.agreement),
            max_logit_error: sum.max_logit_error,
            bootstraps: sum.bootstraps_per_image,
            bootstraps_planned: c.bootstraps,
            bootstrap_sites: c.sites().len(),
            rotations: sum.rotations_per_image,
            key_switches_planned: c.key_switches,
            latency_s: sum.seconds_per_image,
            cpu_s: sum.cpu_seconds_per_image,
            latency_min_s: sum.min_seconds_per_image,
            estimated_s: c.estimated_s,
            estimate_source: c.cost_source.clone(),
            peak_mem_bytes: sum.peak_rss_bytes,
            key_bytes: sum.eval_key_bytes,
            threads: sum.threads,
            speedup_vs_resnet: None,
            cpu_speedup_vs_resnet: None,
            min_speedup_vs_resnet: None,
            estimated_speedup_vs_resnet: None,
            baseline: baseline.clone(),
            same_plan_as,
            kernels: ctx.kernels.clone(),
        });
        requested.push(p.clone());
        speedups(&mut records, &requested);
        // What is done so far, written as it finishes.
        write_json(&args.out.join("results.json"), &records)?;
    }
    // The timelines: each parameter set's plans at the first placement
    // (`timeline-<params>`), and at a second one where any model's plan
    // differs from the first's (`timeline-<params>-<placement>`).
    let mut timelines: Vec<(String, Vec<plots::Timeline>)> = Vec::new();
    for (pi, p) in params.iter().enumerate() {
        for (si, &s) in strategies.iter().enumerate() {
            if si > 0
                && (0..models.len())
                    .all(|mi| compiled[mi][pi][si].sites() == compiled[mi][pi][0].sites())
            {
                continue;
            }
            let t = models
                .iter()
                .enumerate()
                .map(|(mi, m)| {
                    let c = &compiled[mi][pi][si];
                    plots::Timeline {
                        model: m.stem.clone(),
                        structure: c.structure.clone(),
                        params: c.params.clone(),
                        placement: placement_name(s).to_string(),
                        l_eff: c.l_eff,
                        steps: c.steps.clone(),
                    }
                })
                .collect();
            let name = if si == 0 {
                p.clone()
            } else {
                format!("{p}-{}", placement_name(s))
            };
            timelines.push((name, t));
        }
    }
    let figures = plots::write_all(&args.out, &records, &timelines)?;
    report::write(&args.out, &ctx, &records, &notes, &figures)?;
    if !quiet {
        eprintln!(
            "{ran} encrypted images run; results in {} (results.json, results.md, {})",
            args.out.display(),
            figures.join(", ")
        );
    }
    args.report.emit(&records)?;
    if !args.report.json {
        print!("{}", report::table(&records));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        args: Args,
    }

    #[test]
    fn default_models_are_the_three_bundled_ones() {
        let cli = Cli::try_parse_from(["reproduce"]).unwrap();
        assert_eq!(
            cli.args.models,
            [
                "models/resnet20.onnx",
                "models/dirac20.onnx",
                "models/dirac-shared20.onnx"
            ]
        );
        let cli = Cli::try_parse_from(["reproduce", "--models", "a.onnx,b.onnx"]).unwrap();
        assert_eq!(cli.args.models, ["a.onnx", "b.onnx"]);
    }

    #[test]
    fn placements_parse() {
        assert_eq!(
            placements("both").unwrap(),
            vec![Strategy::Optimal, Strategy::Greedy]
        );
        assert_eq!(placements("greedy").unwrap(), vec![Strategy::Greedy]);
        let e = placements("fast").unwrap_err().to_string();
        assert!(e.contains("optimal, greedy, both"), "{e}");
    }

    #[test]
    fn params_list_checks_names() {
        assert_eq!(
            params_list("insecure-boot-n12-l9, auto,insecure-boot-n12-l9").unwrap(),
            vec!["insecure-boot-n12-l9", "auto"]
        );
        assert!(params_list("no-such-set").is_err());
        assert!(params_list("insecure-boot-n12-l9,").is_err());
    }

    fn rec(model: &str, placement: &str, latency: f64, est: f64) -> Record {
        Record {
            model: model.into(),
            file: String::new(),
            structure: String::new(),
            params: "p".into(),
            placement: placement.into(),
            fused_squares: true,
            images: 1,
            accuracy_plain: 0.9,
            plain_images: 1,
            accuracy_he: 1.0,
            accuracy_plain_he_images: 1.0,
            argmax_agreement: 1.0,
            max_logit_error: 0.0,
            bootstraps: None,
            bootstraps_planned: 0,
            bootstrap_sites: 0,
            rotations: None,
            key_switches_planned: 0,
            latency_s: latency,
            cpu_s: None,
            latency_min_s: Some(latency),
            estimated_s: est,
            estimate_source: String::new(),
            peak_mem_bytes: None,
            key_bytes: None,
            threads: None,
            speedup_vs_resnet: None,
            cpu_speedup_vs_resnet: None,
            min_speedup_vs_resnet: None,
            estimated_speedup_vs_resnet: None,
            baseline: "resnet20".into(),
            same_plan_as: None,
            kernels: String::new(),
        }
    }

    /// Speed-ups compare like with like: same placement, same set.
    #[test]
    fn speedups_match_placement() {
        let mut r = vec![
            rec("resnet20", "optimal", 10.0, 8.0),
            rec("dirac20", "optimal", 5.0, 6.0),
            rec("dirac20", "greedy", 4.0, 6.0),
        ];
        let q = vec!["p".to_string(); 3];
        speedups(&mut r, &q);
        assert_eq!(r[0].speedup_vs_resnet, Some(1.0));
        assert_eq!(r[1].speedup_vs_resnet, Some(2.0));
        assert!((r[1].estimated_speedup_vs_resnet.unwrap() - 8.0 / 6.0).abs() < 1e-12);
        assert_eq!(r[1].min_speedup_vs_resnet, Some(2.0));
        assert_eq!(r[2].speedup_vs_resnet, None);
    }
}
