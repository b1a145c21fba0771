//! Shared pieces of the encrypted-inference commands: loading plans and
//! models, calibration samples, progress, memory.

use std::path::Path;
use std::sync::Arc;

use anyhow::{Context, Result, bail};
use compiler::plan::CompiledPlan;
use indicatif::{ProgressBar, ProgressStyle};
use runtime::Progress;

/// Most bytes of a plan file.
const MAX_PLAN_BYTES: u64 = 64 << 20;

/// Reads a plan and the parameter set it names.
pub fn load_plan(path: &Path) -> Result<(CompiledPlan, Arc<ckks::Params>)> {
    let len = std::fs::metadata(path)
        .with_context(|| format!("reading plan {}", path.display()))?
        .len();
    if len > MAX_PLAN_BYTES {
        bail!(
            "plan {} is {len} bytes, more than any plan ({MAX_PLAN_BYTES})",
            path.display()
        );
    }
    let s = std::fs::read_to_string(path)
        .with_context(|| format!("reading plan {}", path.display()))?;
    let plan = CompiledPlan::from_json(&s).with_context(|| format!("plan {}", path.display()))?;
    let params = ckks::Params::named(&plan.params.name).with_context(|| {
        format!(
            "plan {} names parameter set `{}`",
            path.display(),
            plan.params.name
        )
    })?;
    runtime::prepare::check_plan(&plan, &params)
        .with_context(|| format!("plan {}", path.display()))?;
    if plan.model_hash.is_empty() || plan.value_scales.is_empty() {
        bail!(
            "plan {} is not calibrated for a model (compile it with `residue compile`)",
            path.display()
        );
    }
    Ok((plan, params))
}

/// Loads an ONNX model.
pub fn load_model(path: &Path) -> Result<nn::Graph> {
    nn::onnx::load(path).with_context(|| format!("loading model {}", path.display()))
}

/// The bundled sample's test images (the first 500 of Fashion-MNIST,
/// `data/fashion-mnist-sample`), embedded in the binary so that calibration
/// uses real images wherever the binary runs (after `cargo install`, in a
/// container), not only beside the source tree.
const SAMPLE_IMAGES_GZ: &[u8] =
    include_bytes!("../../../../data/fashion-mnist-sample/t10k-images-idx3-ubyte.gz");

/// The first `n` embedded sample images as `[1, 28, 28]` inputs in [0, 1]
/// (pixel / 255, as `nn::exec::image_input`).
fn embedded_samples(n: usize) -> Result<Vec<Vec<f64>>> {
    use std::io::Read;
    let mut raw = Vec::new();
    flate2::read::GzDecoder::new(SAMPLE_IMAGES_GZ)
        .read_to_end(&mut raw)
        .context("the embedded sample images")?;
    let (count, rows, cols, pixels) = nn::data::parse_idx_images(&raw, "the embedded sample")?;
    let len = rows * cols;
    Ok(pixels
        .chunks_exact(len)
        .take(n.min(count))
        .map(|img| img.iter().map(|&p| f64::from(p) / 255.0).collect())
        .collect())
}

/// Calibration inputs: the first `n` images of the bundled Fashion-MNIST
/// sample (embedded) when the model takes 1x28x28, else deterministic
/// inputs in [0, 1].
pub fn calibration_samples(model: &nn::Graph, n: usize) -> Vec<Vec<f64>> {
    if model.input_shape == [1, 28, 28] {
        match embedded_samples(n) {
            Ok(s) if !s.is_empty() => return s,
            Ok(_) => eprintln!("warning: the embedded calibration sample is empty"),
            Err(e) => eprintln!("warning: calibration images: {e:#}; using synthetic inputs"),
        }
    }
    let len: usize = model.input_shape.iter().product();
    (0..n)
        .map(|s| {
            (0..len)
                .map(|i| ((i * 7 + s * 131) as f64 * 0.618_034).fract())
                .collect()
        })
        .collect()
}

/// The compiler's view of `params` (`runtime::paramset::param_set`) with
/// its cost source worded as every command prints it: `uncalibrated
/// estimate` (the per-limb model) or `measured (...)`.
pub fn param_set(params: &ckks::Params) -> compiler::params::ParamSet {
    param_set_threads(params, 1).expect("one-thread costs always exist")
}

/// [`param_set`] priced for `threads` threads from the committed
/// measurements at that count; an error names the counts that exist.
pub fn param_set_threads(
    params: &ckks::Params,
    threads: u32,
) -> Result<compiler::params::ParamSet> {
    let mut set = runtime::paramset::param_set_threads(params, threads).with_context(|| {
        let one = runtime::paramset::param_set(params);
        if one.costs.source.starts_with("measured") {
            format!(
                "no {threads}-thread measurements are committed for `{}` (measured: {:?} threads); \
                 price it with --calibrate FILE from `residue bench ckks --threads {threads}`",
                params.name(),
                runtime::paramset::measured_threads(params.name())
            )
        } else {
            format!(
                "`{}` has no committed measurements at all: its estimate is the uncalibrated \
                 per-limb one, for one thread (drop --threads); or price it with --calibrate FILE \
                 from `residue bench ckks --params {} --threads {threads}`",
                params.name(),
                params.name()
            )
        }
    })?;
    set.costs.source = cost_label(&set.costs.source);
    Ok(set)
}

/// Every secure bootstrappable set priced for `threads` threads (those
/// measured at that count); an error if none is.
pub fn bootstrappable_sets(threads: u32) -> Result<Vec<compiler::params::ParamSet>> {
    let mut sets = runtime::paramset::bootstrappable_sets_threads(threads);
    if sets.is_empty() {
        bail!(
            "no bootstrappable set has {threads}-thread measurements committed; \
             price one with --params NAME --calibrate FILE"
        );
    }
    for s in &mut sets {
        s.costs.source = cost_label(&s.costs.source);
    }
    Ok(sets)
}

/// The printed name of a cost table's source: the compiler's bare
/// `estimate` is `uncalibrated estimate`; measured sources keep their
/// wording.
pub fn cost_label(source: &str) -> String {
    if source == "estimate" {
        "uncalibrated estimate".into()
    } else {
        source.to_string()
    }
}

/// Compiles and calibrates a plan for `model` at parameter set `params`,
/// priced for the size of rayon's pool (set by `set_threads` before this
/// is called) where records at that thread count are committed, for one
/// thread otherwise.
pub fn compile_for(
    model: &nn::Graph,
    params: &Arc<ckks::Params>,
    opts: &compiler::CompileOptions,
) -> Result<(CompiledPlan, compiler::Report)> {
    compile_for_priced(model, params, opts, None)
}

/// [`compile_for`], with the costs priced by the `residue bench ckks`
/// records in `calibrate` where given (as `residue analyze --calibrate`):
/// the placement follows the prices, so the plan can differ.
pub fn compile_for_priced(
    model: &nn::Graph,
    params: &Arc<ckks::Params>,
    opts: &compiler::CompileOptions,
    calibrate: Option<&std::path::Path>,
) -> Result<(CompiledPlan, compiler::Report)> {
    let threads = u32::try_from(rayon::current_num_threads()).unwrap_or(1);
    let set = param_set_threads(params, threads).unwrap_or_else(|_| param_set(params));
    let mut sets = [set];
    if let Some(path) = calibrate {
        super::analyze::calibrate_sets(&mut sets, path, None)?;
    }
    let [set] = sets;
    let mut opts = opts.clone();
    opts.params = Some(set.name.clone());
    opts.attribute_skips = false;
    let (plan, report) = compiler::compile(model, &[set], &opts)?;
    super::analyze::check_bootstraps(&report)?;
    let folded = nn::transform::fold_all(model)?;
    let samples = calibration_samples(model, 8);
    let plan = runtime::scaling::calibrate(
        &plan,
        &folded,
        params,
        &samples,
        runtime::scaling::DEFAULT_MARGIN,
    )
    .context("calibrating the plan's value scales")?;
    Ok((plan, report))
}

/// Sizes rayon's global pool to `threads` (all cores when `None`); called
/// once, before any parallel work (a second call is ignored).
pub fn set_threads(threads: Option<usize>) {
    if let Some(t) = threads {
        rayon::ThreadPoolBuilder::new()
            .num_threads(t)
            .build_global()
            .ok();
    }
}

/// CPU seconds this process has used (user + system, all threads), from
/// `/proc/self/stat` (10 ms resolution). On a busy machine a one-thread
/// run's CPU time is close to what its wall time would be on a quiet one.
pub fn cpu_seconds() -> Option<f64> {
    let s = std::fs::read_to_string("/proc/self/stat").ok()?;
    // fields after the parenthesised command name; utime and stime are the
    // 14th and 15th fields of the whole line
    let rest = &s[s.rfind(')')? + 2..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks = f.get(11)?.parse::<f64>().ok()? + f.get(12)?.parse::<f64>().ok()?;
    Some(ticks / 100.0)
}

/// A stopwatch of process CPU time ([`cpu_seconds`]): `None` where
/// `/proc/self/stat` cannot be read.
pub struct CpuClock(Option<f64>);

impl CpuClock {
    /// Starts counting now.
    pub fn start() -> Self {
        Self(cpu_seconds())
    }

    /// CPU seconds since [`CpuClock::start`].
    pub fn seconds(&self) -> Option<f64> {
        Some(cpu_seconds()? - self.0?)
    }
}

/// Peak resident memory of this process so far, in bytes (Linux).
pub fn peak_rss() -> Option<u64> {
    let s = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = s.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}

/// A progress bar on stderr counting `len` items of `what` (images,
/// requests), with elapsed time and an estimate of the time left; drawn
/// only on a terminal, so logs and `--json` output stay clean.
pub fn count_bar(len: usize, what: &str) -> ProgressBar {
    let bar = ProgressBar::new(len as u64);
    bar.set_style(
        ProgressStyle::with_template("{elapsed_precise} [{bar:30}] {pos}/{len} {msg} (eta {eta})")
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> "),
    );
    bar.set_message(what.to_string());
    bar
}

/// Whether a command's progress on stderr is silenced: with `--json`
/// (`json`) when stderr is not a terminal (a script capturing the run),
/// never on a terminal. Progress and messages go to stderr, the JSON report
/// to stdout, so a `--json` run at a terminal still shows where it is.
pub fn quiet_progress(json: bool) -> bool {
    use std::io::IsTerminal;
    json && !std::io::stderr().is_terminal()
}

/// A spinner on stderr with the elapsed time, for a long step that reports
/// no progress of its own (key generation, upload, compilation); drawn only
/// on a terminal (with or without `--json`: `json`). Clear it with
/// `finish_and_clear` when the step ends.
pub fn spinner(msg: &str, json: bool) -> ProgressBar {
    if quiet_progress(json) {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new_spinner();
    bar.set_style(
        ProgressStyle::with_template("{spinner} {msg} {elapsed}")
            .unwrap_or_else(|_| ProgressStyle::default_spinner()),
    );
    bar.set_message(msg.to_string());
    bar.enable_steady_tick(std::time::Duration::from_millis(200));
    bar
}

/// A progress bar over plan steps showing the layer, the bootstraps done
/// of planned, the elapsed time and an estimate of the time left.
pub struct StepProgress {
    bar: ProgressBar,
    /// Not a terminal: one line per step instead of a bar (logs of long
    /// runs still show where they are).
    lines: bool,
}

impl StepProgress {
    /// A bar for `steps` plan steps: on a terminal a bar (with or without
    /// `--json`: `json`), elsewhere a line per step, or nothing with
    /// `--json` ([`quiet_progress`]).
    pub fn new(steps: usize, json: bool) -> Self {
        let quiet = quiet_progress(json);
        let bar = if quiet {
            ProgressBar::hidden()
        } else {
            ProgressBar::new(steps as u64)
        };
        bar.set_style(
            ProgressStyle::with_template(
                "{elapsed_precise} [{bar:30}] step {pos}/{len} {msg} (eta {eta})",
            )
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> "),
        );
        use std::io::IsTerminal;
        let lines = !quiet && !std::io::stderr().is_terminal();
        Self { bar, lines }
    }

    /// The callback for `runtime::execute`.
    pub fn update(&self, p: &Progress) {
        if self.lines {
            let left = if p.step > 0 {
                format!(
                    ", ~{:.0} s left",
                    p.elapsed / p.step as f64 * (p.steps - p.step) as f64
                )
            } else {
                String::new()
            };
            eprintln!(
                "  {:7.1} s  step {}/{} {}  bootstraps {}/{}{left}",
                p.elapsed, p.step, p.steps, p.name, p.bootstraps_done, p.bootstraps_planned
            );
            return;
        }
        self.bar.set_position(p.step as u64);
        self.bar.set_message(format!(
            "{} | bootstraps {}/{}",
            p.name, p.bootstraps_done, p.bootstraps_planned
        ));
    }

    /// Removes the bar.
    pub fn finish(&self) {
        self.bar.finish_and_clear();
    }
}

/// Loads an input image or array for `model`'s input shape.
pub fn load_input(path: &Path, shape: &[usize]) -> Result<Vec<f64>> {
    Ok(nn::input::load(path, shape)
        .with_context(|| format!("loading input {}", path.display()))?
        .data)
}

/// Loads every image of `inputs` (each a PNG, a `.npy` of `shape`, or a
/// `.npy` of shape [B, ..shape]) for a plan taking `batch` images at once.
/// Errors: an unreadable input, or more images than `batch` (`hint` says
/// what to do instead).
pub fn load_images(
    inputs: &[std::path::PathBuf],
    shape: &[usize],
    batch: usize,
    hint: &str,
) -> Result<Vec<Vec<f64>>> {
    let mut xs = Vec::new();
    for p in inputs {
        let ts = nn::input::load_batch(p, shape)
            .with_context(|| format!("loading input {}", p.display()))?;
        xs.extend(ts.into_iter().map(|t| t.data));
    }
    if xs.len() > batch {
        bail!("{} images given, {hint}", xs.len());
    }
    Ok(xs)
}

/// One `{ "class", "logits" }` per decrypted image (what `decrypt --json`
/// and `client --json` report as `results`).
pub fn results_json(all: &[Vec<f64>]) -> Vec<serde_json::Value> {
    all.iter()
        .map(|l| serde_json::json!({ "class": nn::exec::argmax(l), "logits": l }))
        .collect()
}

/// Prints each decrypted image's class and logits, one line each (with
/// its index when there are several).
pub fn print_results(all: &[Vec<f64>]) {
    for (b, logits) in all.iter().enumerate() {
        let l: Vec<String> = logits.iter().map(|v| format!("{v:.4}")).collect();
        let which = if all.len() > 1 {
            format!("image {b}: ")
        } else {
            String::new()
        };
        println!(
            "{which}class {}  logits [{}]",
            nn::exec::argmax(logits),
            l.join(", ")
        );
    }
}

#[cfg(test)]
mod tests {
    /// The embedded calibration images are the bundled sample's, pixel for
    /// pixel, as `image_input` reads them from `data/`.
    #[test]
    fn embedded_samples_equal_the_bundled_files() {
        let got = super::embedded_samples(5).unwrap();
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../data/fashion-mnist-sample");
        let set = nn::data::load_idx_split(&dir, "t10k").unwrap();
        assert_eq!(got.len(), 5);
        for (i, g) in got.iter().enumerate() {
            assert_eq!(g, &nn::exec::image_input(&set, i).data, "image {i}");
        }
        assert_eq!(super::embedded_samples(10_000).unwrap().len(), set.len());
    }
}

/// How bootstrapping's DFT diagonals are held (`--diagonals`).
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum Diagonals {
    /// Integer coefficients, expanded to each limb's NTT at every use:
    /// about 2.2-2.4 GiB less at N = 2^16; a CIFAR-shaped ResNet-20 (16384
    /// slots) measured no slower, Dirac + shared-source 20 (8192 slots)
    /// 10% slower (docs/benchmarks.md).
    Coefficients,
    /// NTT form: the fastest bootstrap, the most memory.
    Ntt,
}

/// `--diagonals` of the commands that run an encrypted inference (`infer`,
/// `demo`, `eval --he`, `reproduce`, `serve`); `--low-memory` is the old
/// spelling of `--diagonals coefficients`, kept for scripts.
#[derive(clap::Args, Debug, Clone, Copy)]
pub struct DiagonalArgs {
    /// How bootstrapping's DFT diagonals are held: `coefficients` (the
    /// least memory) or `ntt` (the fastest). Default: per plan
    /// (`runtime::server::default_storage`): NTT form when bootstrapping
    /// refreshes at most N/8 slots (where coefficients cost 10% of the
    /// inference), coefficients above (where they cost nothing measurable
    /// and save 2.4 GiB). Results are bit-identical.
    #[arg(long, value_enum)]
    pub diagonals: Option<Diagonals>,
    /// The same as `--diagonals coefficients` (session 10's spelling, kept
    /// for scripts).
    #[arg(long)]
    pub low_memory: bool,
}

impl DiagonalArgs {
    /// The storage asked for (`None`: the per-plan default);
    /// `--low-memory` together with `--diagonals ntt` is refused.
    pub fn storage(&self) -> Result<Option<ckks::linear::DiagonalStorage>> {
        use ckks::linear::DiagonalStorage as S;
        match (self.diagonals, self.low_memory) {
            (Some(Diagonals::Ntt), true) => {
                bail!("--low-memory (coefficients) contradicts --diagonals ntt")
            }
            (Some(Diagonals::Ntt), false) => Ok(Some(S::Ntt)),
            (Some(Diagonals::Coefficients), _) | (None, true) => Ok(Some(S::Coefficients)),
            (None, false) => Ok(None),
        }
    }

    /// The storage for `prep`'s plan: as asked, else the per-plan default.
    pub fn storage_for(
        &self,
        params: &ckks::Params,
        prep: &runtime::Prepared,
    ) -> Result<ckks::linear::DiagonalStorage> {
        Ok(self
            .storage()?
            .unwrap_or_else(|| runtime::server::default_storage(params, prep.plan.params.slots)))
    }

    /// The flags that ask a child command for the same storage (none for
    /// the per-plan default).
    pub fn child_args(&self) -> Vec<&'static str> {
        match self.storage() {
            Ok(Some(s)) => vec!["--diagonals", storage_name(s)],
            _ => Vec::new(),
        }
    }
}

/// The name `--json` reports for a storage (`diagonals`).
pub fn storage_name(s: ckks::linear::DiagonalStorage) -> &'static str {
    match s {
        ckks::linear::DiagonalStorage::Coefficients => "coefficients",
        ckks::linear::DiagonalStorage::Ntt => "ntt",
    }
}
