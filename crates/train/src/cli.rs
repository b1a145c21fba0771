//! `residue train`: arguments and driver, shared by the `residue` binary and
//! the standalone `residue-train` binary.

use std::path::{Path, PathBuf};

use ::nn::data::DatasetKind;
use anyhow::{Context, Result, bail};
use clap::Args;

use crate::model::{ArchConfig, OutlierPenalty};
use crate::trainer::{
    DistillConfig, OptimizerKind, TrainConfig, Trainer, calibrate_ranges, evaluate,
};

/// Train an HE-friendly CNN (plaintext) and write it for the compiler.
#[derive(Args, Debug, Clone)]
pub struct TrainArgs {
    /// Architecture: `resnet<D>`, `dirac<D>` or `dirac-shared<D>` with D = 6n+2
    /// (20, 32, 56; 8 for tiny nets).
    #[arg(long)]
    pub arch: String,
    /// Width multiplier (stage widths 16w, 32w, 64w).
    #[arg(long, default_value_t = 1.0)]
    pub width: f64,
    /// Epochs (the cosine learning-rate schedule spans them).
    #[arg(long, default_value_t = 10)]
    pub epochs: usize,
    /// Dataset and optional directory: `fashion-mnist [DIR]` (default DIR
    /// /usr/share/datasets/fashion-mnist), `mnist DIR`, `cifar10 DIR`.
    #[arg(long, num_args = 1..=2, value_names = ["NAME", "DIR"])]
    pub data: Vec<String>,
    /// Where to write the trained model (`.onnx`).
    #[arg(long)]
    pub out: PathBuf,
    /// Continue the run checkpointed in the checkpoint directory.
    #[arg(long)]
    pub resume: bool,
    /// Checkpoint directory (default: `<out without extension>.ckpt`).
    #[arg(long)]
    pub checkpoint_dir: Option<PathBuf>,
    /// Checkpoint every this many steps (and at every epoch end).
    #[arg(long, default_value_t = 200)]
    pub checkpoint_every: usize,
    /// How many times in a row the divergence guard may roll the run back
    /// to the start of one epoch, the learning rate halved each time
    /// (default 3; 0: no guard, as before session 24: only a non-finite
    /// loss stops the run). With --resume, when given, it replaces the
    /// run's setting.
    #[arg(long, value_name = "N")]
    pub max_rollbacks: Option<usize>,
    /// Images per step.
    #[arg(long, default_value_t = 128)]
    pub batch_size: usize,
    /// Peak learning rate.
    #[arg(long, default_value_t = 0.02)]
    pub lr: f64,
    /// Optimizer: sgd (Nesterov momentum 0.9) or adamw.
    #[arg(long, default_value = "sgd")]
    pub optimizer: String,
    /// Weight decay (not applied to Dirac a/b, polynomial coefficients, BN, biases).
    #[arg(long, default_value_t = 5e-4)]
    pub weight_decay: f64,
    /// Warmup steps.
    #[arg(long, default_value_t = 200)]
    pub warmup_steps: usize,
    /// Shared-source adds per stage (dirac-shared only; default: one per block).
    #[arg(long)]
    pub shared_adds: Option<usize>,
    /// Polynomial activation degree (2..=4).
    #[arg(long, default_value_t = 2)]
    pub act_degree: usize,
    /// Activation scaling range R (ReLU approximation on [-R, R] at init).
    #[arg(long, default_value_t = 4.0)]
    pub act_range: f64,
    /// Weight of the activation range penalty.
    #[arg(long, default_value_t = 0.1)]
    pub range_penalty: f64,
    /// Weight of the range penalty's per-image outlier term, relative to
    /// its mean term: `W · mean over images of max(max|x|/R - M, 0)^2` per
    /// activation, M the margin (default 0: off). With --resume, when
    /// given, it replaces the run's setting.
    #[arg(long, value_name = "W")]
    pub outlier_penalty: Option<f64>,
    /// Margin M of the outlier term, in multiples of the activation's
    /// range R (default 8: typical images reach 4-5 R).
    #[arg(long, value_name = "M")]
    pub outlier_margin: Option<f64>,
    /// Cap of the data-set activation ranges, in multiples of the input RMS
    /// (0: use the max |x| on the first batch).
    #[arg(long, default_value_t = 6.0)]
    pub act_init_rms_cap: f64,
    /// Start activations near identity, `x + Q·x²/R`, instead of as a ReLU fit.
    #[arg(long, value_name = "Q")]
    pub act_near_identity: Option<f64>,
    /// Exact ReLU activations instead of polynomials: the plaintext ceiling
    /// the HE-friendly networks are measured against (no HE export; the
    /// range penalty does not apply).
    #[arg(long)]
    pub relu: bool,
    /// Normalize right after each shared-source add (per-channel centring,
    /// one scale per tensor; folds away for HE inference).
    #[arg(long)]
    pub post_add_norm: bool,
    /// Knowledge distillation from this teacher checkpoint directory (the
    /// one holding `ckpt/`, e.g. `checkpoints/ext16/resnet20/model.ckpt`).
    /// With --resume it adds (or replaces) distillation in the resumed run.
    #[arg(long, value_name = "DIR")]
    pub distill_teacher: Option<PathBuf>,
    /// Weight of the distillation term (with --distill-teacher).
    #[arg(long, default_value_t = 0.7)]
    pub kd_alpha: f64,
    /// Distillation softmax temperature (with --distill-teacher).
    #[arg(long, default_value_t = 4.0)]
    pub kd_temperature: f64,
    /// Disable random crop and flip.
    #[arg(long)]
    pub no_augment: bool,
    /// Random seed.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Stop (after checkpointing) once this call has run this many steps.
    #[arg(long)]
    pub max_steps: Option<usize>,
    /// Train on at most this many images (0: all).
    #[arg(long, default_value_t = 0)]
    pub train_limit: usize,
    /// Evaluate on at most this many test images (0: all).
    #[arg(long, default_value_t = 0)]
    pub test_limit: usize,
    /// Log a progress line every this many steps.
    #[arg(long, default_value_t = 20)]
    pub log_every: usize,
    /// Start afresh even if the checkpoint directory holds a run.
    #[arg(long)]
    pub overwrite: bool,
    /// Export the model from the checkpoint even if training is unfinished.
    #[arg(long)]
    pub export_now: bool,
}

/// `residue-train` as a top-level clap parser.
#[derive(clap::Parser, Debug)]
#[command(name = "residue-train", version, about)]
pub struct TrainCli {
    /// The arguments.
    #[command(flatten)]
    pub args: TrainArgs,
}

impl TrainArgs {
    /// Parses the process arguments (for the standalone binary).
    pub fn parse() -> Self {
        <TrainCli as clap::Parser>::parse().args
    }
}

/// The checkpoint directory for `args`.
pub fn checkpoint_dir(args: &TrainArgs) -> PathBuf {
    args.checkpoint_dir
        .clone()
        .unwrap_or_else(|| args.out.with_extension("ckpt"))
}

/// Runs `residue train`.
pub fn run(args: TrainArgs) -> Result<()> {
    let (kind, dir) = match args.data.as_slice() {
        [] => (DatasetKind::FashionMnist, None),
        [name] => (parse_kind(name)?, None),
        [name, dir] => (parse_kind(name)?, Some(PathBuf::from(dir))),
        _ => bail!("--data takes a name and an optional directory"),
    };
    let dir = match dir.or_else(|| kind.default_dir().map(Path::to_path_buf)) {
        Some(d) => d,
        None => bail!("--data {} needs a directory", kind.name()),
    };
    let ckdir = checkpoint_dir(&args);
    let distill = args.distill_teacher.as_ref().map(|t| DistillConfig {
        teacher: t.clone(),
        alpha: args.kd_alpha,
        temperature: args.kd_temperature,
    });
    if let Some(d) = &distill {
        d.validate()?;
    }
    let mut trainer = if args.resume && Trainer::has_checkpoint(&ckdir) {
        let mut t = Trainer::resume(&ckdir)?;
        if let Some(d) = distill {
            if t.state.config.distill.as_ref() != Some(&d) {
                eprintln!(
                    "resume: distillation from {} (alpha {}, T {}) from now on",
                    d.teacher.display(),
                    d.alpha,
                    d.temperature
                );
            }
            t.state.config.distill = Some(d);
        }
        if let Some(m) = args.max_rollbacks {
            t.state.config.max_rollbacks = m;
        }
        let o = outlier_penalty(&args, t.state.config.outlier_penalty)?;
        if o != t.state.config.outlier_penalty {
            eprintln!(
                "resume: range-penalty outlier term weight {} margin {} R from now on",
                o.weight, o.margin
            );
            t.state.config.outlier_penalty = o;
        }
        if args.post_add_norm && !t.state.config.arch.post_add_norm {
            bail!("--post-add-norm changes the network: it cannot be added to a resumed run");
        }
        if t.state.config.epochs != args.epochs {
            eprintln!(
                "resume: epochs {} -> {} (the cosine schedule stretches accordingly)",
                t.state.config.epochs, args.epochs
            );
            t.state.config.epochs = args.epochs;
            t.state.finished = t.state.epoch >= args.epochs;
        }
        t
    } else {
        if args.resume {
            eprintln!(
                "resume: no checkpoint in {}, starting afresh",
                ckdir.display()
            );
        }
        let mut arch = ArchConfig::from_name(&args.arch, kind.shape())?;
        arch.width = args.width;
        if let Some(m) = args.shared_adds {
            arch.shared_adds = m;
        }
        arch.act.degree = args.act_degree;
        arch.act.range = args.act_range;
        arch.act.near_identity = args.act_near_identity;
        arch.act.relu = args.relu;
        arch.post_add_norm = args.post_add_norm;
        arch.validate()?;
        let mut cfg = TrainConfig::new(arch, kind.name(), args.epochs);
        cfg.batch_size = args.batch_size;
        cfg.lr = args.lr;
        cfg.optimizer = match args.optimizer.as_str() {
            "sgd" => OptimizerKind::Sgd,
            "adamw" => OptimizerKind::Adamw,
            o => bail!("unknown optimizer {o:?} (sgd or adamw)"),
        };
        cfg.weight_decay = args.weight_decay;
        cfg.warmup_steps = args.warmup_steps;
        cfg.range_penalty = args.range_penalty;
        cfg.outlier_penalty = outlier_penalty(&args, cfg.outlier_penalty)?;
        cfg.act_init_rms_cap = args.act_init_rms_cap;
        if args.no_augment {
            cfg.crop_pad = 0;
            cfg.flip = false;
        }
        cfg.seed = args.seed;
        cfg.checkpoint_every = args.checkpoint_every;
        if let Some(m) = args.max_rollbacks {
            cfg.max_rollbacks = m;
        }
        cfg.train_limit = args.train_limit;
        cfg.test_limit = args.test_limit;
        cfg.log_every = args.log_every;
        cfg.distill = distill;
        Trainer::new(cfg, &ckdir, args.overwrite)?
    };
    let data = kind
        .load(&dir)
        .with_context(|| format!("loading {} from {}", kind.name(), dir.display()))?;
    if !trainer.state.finished && !args.export_now {
        trainer.run(&data.train, &data.test, args.max_steps)?;
    }
    if trainer.state.finished || args.export_now {
        write_model(&trainer, &data, &args.out)?;
    } else {
        eprintln!(
            "stopped at epoch {} step {}; continue with --resume",
            trainer.state.epoch + 1,
            trainer.state.step_in_epoch
        );
    }
    Ok(())
}

/// The outlier term from `--outlier-penalty` and `--outlier-margin`, each
/// replacing `current`'s value when given; both must be finite, the weight
/// at least 0 and the margin at least 1.
fn outlier_penalty(args: &TrainArgs, current: OutlierPenalty) -> Result<OutlierPenalty> {
    let o = OutlierPenalty {
        weight: args.outlier_penalty.unwrap_or(current.weight),
        margin: args.outlier_margin.unwrap_or(current.margin),
    };
    if !(o.weight.is_finite() && o.weight >= 0.0) {
        bail!(
            "--outlier-penalty must be a finite number >= 0, got {}",
            o.weight
        );
    }
    if !(o.margin.is_finite() && o.margin >= 1.0) {
        bail!(
            "--outlier-margin must be a finite number >= 1 (in multiples of R), got {}",
            o.margin
        );
    }
    Ok(o)
}

fn parse_kind(name: &str) -> Result<DatasetKind> {
    DatasetKind::parse(name)
        .with_context(|| format!("unknown dataset {name:?} (fashion-mnist, mnist, cifar10)"))
}

/// Calibrates activation ranges, converts to the nn graph and writes:
/// - `out`: the model as ONNX (nn's exporter: Dirac folded, BN kept,
///   activation ranges in the metadata), what `residue eval` and the
///   compiler read;
/// - `out` with extension `.train.json`: config, history, calibrated
///   ranges and final test accuracy (burn, f32).
pub fn write_model(trainer: &Trainer, data: &::nn::data::Dataset, out: &Path) -> Result<()> {
    let cfg = &trainer.state.config;
    let acc_ema = evaluate(&trainer.model, &data.test, 0);
    crate::trainer::recalibrate_bn(&trainer.model, &data.train, 20, cfg.batch_size);
    let ranges = calibrate_ranges(&trainer.model, &data.train, 2000);
    // A ReLU ceiling has no HE export: only its summary is written.
    let graph = if cfg.arch.act.relu {
        None
    } else {
        Some(crate::export::to_graph(&trainer.model, &cfg.arch, &ranges)?)
    };
    let acc = evaluate(&trainer.model, &data.test, 0);
    if let Some(parent) = out.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent)?;
    }
    if let Some(graph) = &graph {
        ::nn::onnx::save(graph, out).with_context(|| format!("writing {}", out.display()))?;
    }
    let summary = serde_json::json!({
        "arch": cfg.arch,
        "config": cfg,
        "test_accuracy": acc,
        "test_accuracy_before_bn_recalibration": acc_ema,
        "epochs_done": trainer.state.epoch,
        "history": trainer.state.history,
        "calibrated_ranges": ranges,
        "input": "pixels / 255, CHW",
    });
    let spath = out.with_extension("train.json");
    std::fs::write(&spath, serde_json::to_string_pretty(&summary)?)?;
    if graph.is_some() {
        eprintln!(
            "test accuracy {acc:.4} ({acc_ema:.4} before BN recalibration); wrote {} and {}",
            out.display(),
            spath.display()
        );
    } else {
        eprintln!(
            "test accuracy {acc:.4} ({acc_ema:.4} before BN recalibration); a ReLU network has no HE export, wrote {}",
            spath.display()
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    /// The shape `residue`'s command enum embeds these arguments in.
    #[derive(Parser)]
    struct Top {
        #[command(subcommand)]
        cmd: Cmd,
    }

    #[derive(clap::Subcommand)]
    enum Cmd {
        Train(TrainArgs),
    }

    fn parse(args: &[&str]) -> TrainArgs {
        let Cmd::Train(a) = Top::try_parse_from(args).unwrap().cmd;
        a
    }

    #[test]
    fn parses_as_a_subcommand() {
        let a = parse(&[
            "residue",
            "train",
            "--arch",
            "dirac-shared20",
            "--width",
            "0.5",
            "--epochs",
            "3",
            "--data",
            "cifar10",
            "/data/cifar",
            "--out",
            "m.onnx",
            "--resume",
        ]);
        assert_eq!(a.arch, "dirac-shared20");
        assert_eq!(a.data, vec!["cifar10", "/data/cifar"]);
        assert!(a.resume && a.width == 0.5 && a.epochs == 3);
        assert_eq!(checkpoint_dir(&a), PathBuf::from("m.ckpt"));
        let b = parse(&[
            "residue",
            "train",
            "--arch",
            "resnet20",
            "--data",
            "fashion-mnist",
            "--out",
            "x/r.onnx",
        ]);
        assert_eq!(b.data, vec!["fashion-mnist"]);
        assert!(!b.resume);
        assert_eq!(checkpoint_dir(&b), PathBuf::from("x/r.ckpt"));
        assert!(b.distill_teacher.is_none() && !b.post_add_norm);
        let c = parse(&[
            "residue",
            "train",
            "--arch",
            "dirac-shared20",
            "--out",
            "m.onnx",
            "--post-add-norm",
            "--distill-teacher",
            "checkpoints/ext16/resnet20/model.ckpt",
            "--kd-alpha",
            "0.5",
        ]);
        assert!(c.post_add_norm);
        assert_eq!(
            c.distill_teacher,
            Some(PathBuf::from("checkpoints/ext16/resnet20/model.ckpt"))
        );
        assert_eq!((c.kd_alpha, c.kd_temperature), (0.5, 4.0));
    }
}
