//! `residue analyze`: what a model will cost encrypted, before anything
//! runs (the compiler's report).

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use compiler::params::ParamSet;
use compiler::placement::Strategy;
use compiler::plan::{CompileOptions, Goal, KeyMode};

/// Options shared by `analyze` and `compile`.
#[derive(clap::Args)]
pub struct ModelArgs {
    /// The model (ONNX). Omit when using `--zoo`.
    pub model: Option<PathBuf>,
    /// A zoo network instead of a file (`resnet20`, `dirac20`,
    /// `dirac-shared20`, other depths too), CIFAR-10 shaped, random weights.
    #[arg(long, conflicts_with = "model")]
    pub zoo: Option<String>,
    /// Parameter set name, or `auto` for the one with the least estimated
    /// time.
    #[arg(long, default_value = ParamSet::default_name())]
    pub params: String,
    /// Bootstrap placement: `optimal` (dynamic program) or `greedy`.
    #[arg(long, default_value = "optimal")]
    pub placement: String,
    /// What placement minimizes: `time` (estimated) or `count` (bootstraps).
    #[arg(long, default_value = "time")]
    pub goal: String,
    /// Rotation keys: `per-step` (one per rotation step used) or `pow2`
    /// (only ±2^k; fewer keys, more rotations: each other step runs as a
    /// sum of ±2^k rotations).
    #[arg(long, default_value = "per-step")]
    pub keys: String,
    /// Rotation keys within a memory budget: at most BYTES of the network's
    /// Galois keys (bootstrapping's own not counted), e.g. `2GiB`, `500MB`
    /// or plain bytes. Keeps the ±2^k keys, then per-step keys for the
    /// steps that save the most time per byte; other rotations run as sums
    /// of ±2^k steps. An error if below what `--keys pow2` needs.
    #[arg(long, value_name = "BYTES", conflicts_with = "keys")]
    pub key_memory: Option<String>,
    /// Images per ciphertext: a power of two, or `auto` for as many as
    /// fit the set's slots (one inference then serves that many images).
    /// More than `auto` spill the larger maps over several ciphertexts.
    #[arg(long, default_value = "1")]
    pub batch: String,
    /// Evaluate every quadratic activation as a degree-2 polynomial (two
    /// levels) instead of a completed square whose leading coefficient
    /// folds into the linear layer before it (one level; the default where
    /// that layer feeds only the activation).
    #[arg(long)]
    pub no_fused_squares: bool,
    /// Encrypt the input at L_eff, never above it. By default a plan may
    /// encrypt it higher, on the bootstrapping primes as large as the
    /// scale (`residue params`, column `fresh`), where that saves a
    /// bootstrap; the rotation keys used up there then cost more memory.
    #[arg(long)]
    pub no_fresh_levels: bool,
    /// Encrypt the input above L_eff wherever the plan there is estimated
    /// faster, not only where it saves a bootstrap (faster plans, larger
    /// rotation keys for the layers up there).
    #[arg(long, conflicts_with = "no_fresh_levels")]
    pub fresh_when_faster: bool,
    /// `residue bench ckks` JSON to calibrate the per-operation costs.
    #[arg(long)]
    pub calibrate: Option<PathBuf>,
    /// Price the estimate for this many worker threads: the committed
    /// `residue bench ckks` measurements at that count (1 and 2 for the
    /// `n16-boot` sets), or with `--calibrate`, that file's records at that
    /// count. Default: 1 (with `--calibrate`: the file's most threads).
    #[arg(long)]
    pub threads: Option<u32>,
    /// When an activation's inputs leave the range the model states (on
    /// the calibration inputs), write the model with measured ranges here
    /// (ONNX) and use it; keygen, encrypt and infer then take this model.
    #[arg(long)]
    pub ranges_out: Option<PathBuf>,
}

impl ModelArgs {
    /// Loads the model graph and checks its activation ranges against the
    /// calibration inputs (see [`check_ranges`]).
    pub fn graph(&self) -> Result<nn::Graph> {
        let g = self.load()?;
        check_ranges(g, self.ranges_out.as_deref())
    }

    fn load(&self) -> Result<nn::Graph> {
        match (&self.model, &self.zoo) {
            (Some(p), None) => {
                nn::onnx::load(p).with_context(|| format!("loading model {}", p.display()))
            }
            (None, Some(z)) => {
                let cfg = nn::zoo::ZooConfig::from_name(z, 3, [32, 32], 10)?;
                Ok(nn::zoo::build_random(&cfg, 0)?)
            }
            _ => bail!("give a model file or --zoo NAME"),
        }
    }

    /// Parameter sets (calibrated if asked) and compile options.
    pub fn options(&self) -> Result<(Vec<ParamSet>, CompileOptions)> {
        // The engine's named sets are the only source of parameter facts.
        if self.threads == Some(0) {
            bail!("--threads 0: give at least one thread");
        }
        let sets = if let Some(path) = &self.calibrate {
            let mut sets = if self.params == "auto" {
                super::he::bootstrappable_sets(1)?
            } else {
                vec![super::he::param_set(&*ckks::Params::named(&self.params)?)]
            };
            calibrate_sets(&mut sets, path, self.threads)?;
            sets
        } else {
            let t = self.threads.unwrap_or(1);
            if self.params == "auto" {
                super::he::bootstrappable_sets(t)?
            } else {
                vec![super::he::param_set_threads(
                    &*ckks::Params::named(&self.params)?,
                    t,
                )?]
            }
        };

        let strategy = parse_placement(&self.placement)?;
        let goal = match self.goal.as_str() {
            "time" => Goal::Time,
            "count" => Goal::Count,
            other => bail!("unknown goal `{other}` (time, count)"),
        };
        let keys = match (&self.key_memory, self.keys.as_str()) {
            (Some(m), _) => KeyMode::Budget(parse_bytes(m)?),
            (None, "per-step") => KeyMode::PerStep,
            (None, "pow2") => KeyMode::PowersOfTwo,
            (None, other) => bail!("unknown key mode `{other}` (per-step, pow2)"),
        };
        let batch: compiler::plan::Batch = self.batch.parse().map_err(|_| {
            anyhow::anyhow!(
                "--batch `{}`: neither `auto` nor a power of two",
                self.batch.escape_debug()
            )
        })?;
        let params = (self.params != "auto").then(|| self.params.clone());
        Ok((
            sets,
            CompileOptions {
                params,
                strategy,
                goal,
                attribute_skips: true,
                keys,
                batch,
                fuse_squares: !self.no_fused_squares,
                fresh_levels: !self.no_fresh_levels,
                fresh_when_faster: self.fresh_when_faster,
            },
        ))
    }
}

/// Prices `sets` with the `residue bench ckks` records in `path`
/// (`--calibrate`): those measured with `threads` threads, or (`None`) the
/// most threads each operation was measured with.
pub fn calibrate_sets(sets: &mut [ParamSet], path: &Path, threads: Option<u32>) -> Result<()> {
    let json =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let records = compiler::cost::CostTable::parse_bench(&json)?;
    if let Some(t) = threads
        && !records.iter().any(|r| r.threads == t)
    {
        bail!(
            "{} has no record measured with {t} thread(s)",
            path.display()
        );
    }
    for s in sets {
        if s.costs.calibrate(&records, threads) > 0 {
            // Worded like the committed measurements' source
            // (`measured (calibrated, 1 thread, docs/data)`).
            let t = s.costs.threads;
            s.costs.source = format!(
                "measured ({}, {t} thread{}, {})",
                s.costs.source,
                if t == 1 { "" } else { "s" },
                path.display()
            );
        }
    }
    Ok(())
}

/// Parses a byte count (`--key-memory`): plain bytes, or a number (decimals
/// allowed) with a suffix `B`, `KB`/`MB`/`GB`/`TB` (powers of 1000) or
/// `KiB`/`MiB`/`GiB`/`TiB` (powers of 1024), case-insensitive.
///
/// Errors: anything else, or more than `u64::MAX` bytes.
pub fn parse_bytes(s: &str) -> Result<u64> {
    let t = s.trim();
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let mult: u64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "kb" => 1_000,
        "mb" => 1_000_000,
        "gb" => 1_000_000_000,
        "tb" => 1_000_000_000_000,
        "kib" => 1 << 10,
        "mib" => 1 << 20,
        "gib" => 1 << 30,
        "tib" => 1 << 40,
        _ => bail!("`{s}`: not a byte count (e.g. 2GiB, 500MB, 1048576)"),
    };
    if let Ok(n) = num.parse::<u64>() {
        return n
            .checked_mul(mult)
            .with_context(|| format!("`{s}`: more than {} bytes", u64::MAX));
    }
    match num.parse::<f64>() {
        Ok(x) if x.is_finite() && x >= 0.0 && x * (mult as f64) < u64::MAX as f64 => {
            Ok((x * mult as f64).round() as u64)
        }
        _ => bail!("`{s}`: not a byte count (e.g. 2GiB, 500MB, 1048576)"),
    }
}

/// Parses `--placement`: `optimal` or `greedy`.
pub fn parse_placement(s: &str) -> Result<Strategy> {
    match s {
        "optimal" => Ok(Strategy::Optimal),
        "greedy" => Ok(Strategy::Greedy),
        other => bail!("unknown placement `{other}` (optimal, greedy)"),
    }
}

/// The name `--placement` takes for `s`.
pub fn placement_name(s: Strategy) -> &'static str {
    match s {
        Strategy::Optimal => "optimal",
        Strategy::Greedy => "greedy",
    }
}

/// Runs the calibration inputs through the model: an activation whose
/// inputs leave the range the model states gets a one-line warning (a
/// model without recorded ranges is given `[-1, 1]` on import), and with
/// `ranges_out` the model is written there with measured ranges and used,
/// so that the plan never states a range the model does not keep.
pub fn check_ranges(g: nn::Graph, ranges_out: Option<&Path>) -> Result<nn::Graph> {
    let samples: Vec<nn::Tensor> = super::he::calibration_samples(&g, 8)
        .into_iter()
        .map(|d| nn::Tensor {
            shape: g.input_shape.clone(),
            data: d,
        })
        .collect();
    let (fixed, changes) = nn::transform::calibrate_ranges(&g, &samples)
        .context("running the calibration inputs through the model")?;
    if changes.is_empty() {
        return Ok(g);
    }
    for c in &changes {
        eprintln!(
            "warning: activation `{}`: inputs reach [{}, {}] on the calibration inputs, outside its stated range [{}, {}]",
            c.node,
            bound(c.observed[0]),
            bound(c.observed[1]),
            c.stated[0],
            c.stated[1]
        );
    }
    match ranges_out {
        Some(p) => {
            nn::onnx::save(&fixed, p).with_context(|| {
                format!("writing the model with measured ranges to {}", p.display())
            })?;
            eprintln!(
                "wrote the model with measured activation ranges to {} (use it for keygen, encrypt and infer)",
                p.display()
            );
            Ok(fixed)
        }
        None => {
            eprintln!(
                "warning: the plan keeps the stated ranges; pass --ranges-out MODEL.onnx to record measured ones"
            );
            Ok(g)
        }
    }
}

/// Refuses a plan that bootstraps at a parameter set that cannot (a leveled
/// set such as `n14-l7` or `insecure-n12`): the compiler places the
/// bootstraps a model needs whatever the set, and `compile`, `demo` and
/// `eval --he` could not run them.
pub fn check_bootstraps(report: &compiler::Report) -> Result<()> {
    if report.bootstraps == 0 {
        return Ok(());
    }
    let params = ckks::Params::named(&report.params)?;
    if ckks::bootstrap::config_for(&params).is_none() {
        bail!(
            "`{}` does not bootstrap, and {} would need {} bootstraps at its {} levels; choose a set that bootstraps, e.g. --params n16-boot (`residue params` lists them)",
            report.params,
            report.model,
            report.bootstraps,
            report.l_eff
        );
    }
    Ok(())
}

/// Arguments of `residue analyze`.
#[derive(clap::Args)]
pub struct Args {
    #[command(flatten)]
    pub model: ModelArgs,
    #[command(flatten)]
    pub out: super::json::JsonArgs,
}

/// Writes `s` to `path`, or stdout for `-`.
pub fn write_out(path: &Path, s: &str) -> Result<()> {
    if path == Path::new("-") {
        println!("{s}");
        Ok(())
    } else {
        std::fs::write(path, s).with_context(|| format!("writing {}", path.display()))
    }
}

/// Runs `residue analyze`.
pub fn run(args: Args) -> Result<()> {
    let graph = args.model.graph()?;
    let (sets, opts) = args.model.options()?;
    let t = std::time::Instant::now();
    let (_plan, report) = compiler::compile(&graph, &sets, &opts)?;
    let took = t.elapsed();
    check_bootstraps(&report)?;
    if !args.out.json {
        print!("{}", report.to_text());
        println!("compiled in {:.1} ms", took.as_secs_f64() * 1e3);
    }
    args.out.emit(&report)?;
    Ok(())
}

/// A range bound as printed: three decimals, or scientific notation when
/// large (random-weight zoo nets reach 1e300 and beyond).
fn bound(v: f64) -> String {
    if v.abs() >= 1e6 {
        format!("{v:.3e}")
    } else {
        format!("{v:.3}")
    }
}

#[cfg(test)]
mod tests {
    use super::parse_bytes;

    #[test]
    fn byte_counts_parse_with_suffixes() {
        assert_eq!(parse_bytes("1048576").unwrap(), 1 << 20);
        assert_eq!(parse_bytes("2GiB").unwrap(), 2 << 30);
        assert_eq!(parse_bytes("500MB").unwrap(), 500_000_000);
        assert_eq!(parse_bytes("1.5 kib").unwrap(), 1536);
        assert_eq!(parse_bytes("7b").unwrap(), 7);
        for bad in ["", "GiB", "1.2.3", "-1", "5 XB", "99999999999TiB"] {
            assert!(parse_bytes(bad).is_err(), "{bad}");
        }
    }
}
