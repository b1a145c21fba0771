//! `residue demo`: the main job on a bundled example. A client encrypts a
//! real Fashion-MNIST test image, a server runs the committed Dirac +
//! shared-source network on it at 128-bit security with real bootstrapping,
//! and the client decrypts; the plaintext model's class and logits beside
//! the decrypted ones, with the time and memory of each step.

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, Result, bail};
use serde::Serialize;

use super::he::{StepProgress, compile_for, load_input, load_model, peak_rss};

/// The committed model the demo runs by default (Dirac + shared-source
/// 20, `models/dirac-shared20.onnx`), embedded in the binary so that plain
/// `residue demo` runs wherever the binary does (after `cargo install`, in
/// a container), not only beside the source tree.
const BUNDLED_MODEL: &[u8] = include_bytes!("../../../../models/dirac-shared20.onnx");
/// Its training record (`models/dirac-shared20.train.json`): the data set,
/// for the class names.
const BUNDLED_RECORD: &[u8] = include_bytes!("../../../../models/dirac-shared20.train.json");
/// The bundled test image (Fashion-MNIST test image 0, an ankle boot;
/// `data/samples/fashion-mnist-0.png`), embedded likewise.
const BUNDLED_IMAGE: &[u8] = include_bytes!("../../../../data/samples/fashion-mnist-0.png");
/// How the demo names the embedded model.
const BUNDLED_MODEL_NAME: &str = "bundled dirac-shared20 (models/dirac-shared20.onnx)";
/// How the demo names the embedded image.
const BUNDLED_IMAGE_NAME: &str = "bundled fashion-mnist-0 (data/samples/fashion-mnist-0.png)";

/// The demo's model: the file given, or the embedded one; with its name
/// as printed and its training record, if any.
fn model(path: Option<&Path>) -> Result<(nn::Graph, String, Option<nn::data::TrainedOn>)> {
    Ok(match path {
        Some(p) => (
            load_model(p)?,
            p.display().to_string(),
            nn::data::TrainedOn::for_model(p),
        ),
        None => (
            nn::onnx::import(BUNDLED_MODEL).context("loading the bundled model")?,
            BUNDLED_MODEL_NAME.to_string(),
            nn::data::TrainedOn::from_json(
                BUNDLED_RECORD,
                PathBuf::from("models/dirac-shared20.train.json"),
            ),
        ),
    })
}

/// The demo's input: the file given, or the embedded image; with its name
/// as printed.
fn image(path: Option<&Path>, shape: &[usize]) -> Result<(Vec<f64>, String)> {
    Ok(match path {
        Some(p) => (load_input(p, shape)?, p.display().to_string()),
        None => (
            nn::input::png_tensor(BUNDLED_IMAGE, shape)
                .context("loading the bundled image")?
                .data,
            BUNDLED_IMAGE_NAME.to_string(),
        ),
    })
}

/// Arguments of `residue demo`.
#[derive(clap::Args)]
pub struct Args {
    /// The model (ONNX); default: the committed Dirac + shared-source 20
    /// (`models/dirac-shared20.onnx`, embedded in the binary).
    #[arg(long)]
    pub model: Option<PathBuf>,
    /// The input image (PNG) or `.npy`; default: a bundled test image
    /// (`data/samples/fashion-mnist-0.png`, embedded in the binary).
    #[arg(long)]
    pub image: Option<PathBuf>,
    /// Parameter set (default: the bootstrappable 128-bit `n16-boot`; with
    /// `--primitives`, `n14-l7`).
    #[arg(long)]
    pub params: Option<String>,
    /// Worker threads (default: all cores).
    #[arg(long)]
    pub threads: Option<usize>,
    /// Instead: the primitive check (encode, encrypt, rotate, multiply,
    /// rescale, add on one ciphertext at the set's working level, against
    /// plain arithmetic).
    #[arg(long)]
    pub primitives: bool,
    #[command(flatten)]
    pub diagonals: super::he::DiagonalArgs,
    /// Print JSON: `plain_class`, `he_class`, `max_logit_error`,
    /// `bootstraps`, `seconds` per step, `peak_rss_bytes`.
    #[arg(long)]
    pub json: bool,
    /// Also write the JSON report to FILE (what `--json` prints).
    #[arg(long, value_name = "FILE")]
    pub json_out: Option<PathBuf>,
}

#[derive(Serialize, Default)]
struct Seconds {
    compile: f64,
    keygen: f64,
    encrypt: f64,
    infer: f64,
    decrypt: f64,
}

#[derive(Serialize)]
struct Report {
    model: String,
    image: String,
    params: String,
    security_bits: Option<u32>,
    plain_class: usize,
    he_class: usize,
    plain_logits: Vec<f64>,
    he_logits: Vec<f64>,
    max_logit_error: f64,
    bootstraps: u64,
    bootstraps_planned: u64,
    rotations: u64,
    galois_keys: u64,
    key_bytes: u64,
    seconds: Seconds,
    infer_seconds_by_kind: std::collections::BTreeMap<String, f64>,
    peak_rss_bytes: Option<u64>,
    threads: usize,
    diagonals: &'static str,
}

/// Runs `residue demo`.
pub fn run(args: Args) -> Result<()> {
    args.diagonals.storage()?;
    if args.primitives {
        return super::primitives::run(super::primitives::Args {
            params: args.params.unwrap_or_else(|| "n14-l7".into()),
            json: args.json,
            json_out: args.json_out,
        });
    }
    super::he::set_threads(args.threads);
    let (model, model_name, trained) = model(args.model.as_deref())?;
    let (x, image_name) = image(args.image.as_deref(), &model.input_shape)?;
    let params = ckks::Params::named(args.params.as_deref().unwrap_or("n16-boot"))?;
    // Step messages and progress on stderr, also with `--json` at a
    // terminal (the JSON report alone goes to stdout).
    let quiet = super::he::quiet_progress(args.json);
    let say = |s: String| {
        if !quiet {
            eprintln!("{s}");
        }
    };
    let gib = |b: u64| b as f64 / (1u64 << 30) as f64;
    let mut sec = Seconds::default();

    say(format!(
        "[server] compiling {model_name} for {} ...",
        params.name()
    ));
    let t = Instant::now();
    let spin = super::he::spinner("compiling and calibrating", args.json);
    let (plan, report) = compile_for(&model, &params, &Default::default())?;
    let prep = runtime::Prepared::new(&plan, &model, &params)?;
    spin.finish_and_clear();
    sec.compile = t.elapsed().as_secs_f64();
    say(format!(
        "         {} steps, {} bootstraps planned; inference estimated at {:.0} s [{}]; compiled and calibrated in {:.1} s",
        plan.nodes.len(),
        plan.bootstraps,
        report.estimated_seconds,
        report.cost_source,
        sec.compile
    ));

    say("[client] generating keys for exactly this plan ...".into());
    let t = Instant::now();
    let needs = runtime::client::key_needs(&prep, &params)?;
    say(format!(
        "         {} network rotation keys (adding {:.2} GiB at their levels){}",
        needs.rotations.len(),
        gib(needs.network_key_bytes(&params)),
        if needs.bootstrap {
            " plus bootstrapping's"
        } else {
            ""
        }
    ));
    let spin = super::he::spinner("generating keys", args.json);
    let keys = runtime::client::ClientKeys::generate(&params, &needs)?;
    spin.finish_and_clear();
    sec.keygen = t.elapsed().as_secs_f64();
    let sizes = keys.sizes(&params, &needs);
    // The evaluation keys move to the server's side (no copy held).
    let runtime::client::ClientKeys {
        secret,
        public,
        eval,
        boot,
    } = keys;
    let key_bytes = sizes.relin + sizes.galois_network + sizes.galois_bootstrap + sizes.bootstrap;
    say(format!(
        "         {} Galois keys, {:.2} GiB of evaluation keys ({:.1} s)",
        sizes.galois_keys,
        gib(key_bytes),
        sec.keygen
    ));

    say(format!("[client] encrypting {image_name} ..."));
    let t = Instant::now();
    let ct = runtime::client::encrypt(&plan, &params, &public, &x)?;
    sec.encrypt = t.elapsed().as_secs_f64();

    say("[server] inference on the ciphertext (evaluation keys only) ...".into());
    let storage = args.diagonals.storage_for(&params, &prep)?;
    let backend = runtime::server::backend_with_storage(&params, &prep, eval, boot, storage)?;
    let bar = StepProgress::new(plan.nodes.len(), args.json);
    let t = Instant::now();
    let (out, stats) = runtime::server::infer(&backend, &prep, &ct, &|p| bar.update(p))?;
    sec.infer = t.elapsed().as_secs_f64();
    bar.finish();
    drop(backend);

    let t = Instant::now();
    let he = runtime::client::decrypt(&params, &secret, &out)?;
    sec.decrypt = t.elapsed().as_secs_f64();

    let plain = nn::exec::run(
        &model,
        &nn::Tensor::new(model.input_shape.clone(), x.clone()).map_err(anyhow::Error::msg)?,
    )?
    .data;
    // NaN (never 0) when either side's logits are not finite.
    let err = super::logit_error::max_abs_diff(&plain, &he);
    let warnings = super::logit_error::warnings(&plain, &he);
    let (pc, hc) = (nn::exec::argmax(&plain), nn::exec::argmax(&he));
    let r = Report {
        model: model_name,
        image: image_name,
        params: params.name().to_string(),
        security_bits: params.security_bits(),
        plain_class: pc,
        he_class: hc,
        plain_logits: plain.clone(),
        he_logits: he.clone(),
        max_logit_error: err,
        bootstraps: stats.bootstraps,
        bootstraps_planned: plan.bootstraps,
        rotations: stats.rotations,
        galois_keys: sizes.galois_keys,
        key_bytes,
        seconds: sec,
        infer_seconds_by_kind: stats.seconds.clone(),
        peak_rss_bytes: peak_rss(),
        threads: rayon::current_num_threads(),
        diagonals: super::he::storage_name(storage),
    };
    if args.json || args.json_out.is_some() {
        super::json::emit(args.json, args.json_out.as_deref(), &r)?;
    }
    if !args.json {
        let f = |v: &[f64]| {
            v.iter()
                .map(|x| format!("{x:7.3}"))
                .collect::<Vec<_>>()
                .join(" ")
        };
        // Class names of the data set the model's training record names.
        let kind = trained.as_ref().and_then(|t| t.kind());
        let named = |c: usize| match kind.and_then(|k| k.class_names().get(c).copied()) {
            Some(n) => format!("{c} ({n})"),
            None => c.to_string(),
        };
        println!(
            "plaintext model: class {}  logits [{}]",
            named(pc),
            f(&plain)
        );
        println!("encrypted:       class {}  logits [{}]", named(hc), f(&he));
        println!(
            "max logit error {:.2e}; {} bootstraps ({} planned), {} rotations; security: {} ({})",
            err,
            stats.bootstraps,
            plan.bootstraps,
            stats.rotations,
            params
                .security_bits()
                .map(|b| format!("{b}-bit"))
                .unwrap_or_else(|| "INSECURE, tests only".into()),
            params.name()
        );
        println!(
            "seconds: compile {:.1}, keygen {:.1}, encrypt {:.2}, infer {:.1}, decrypt {:.2}; peak memory {:.2} GiB, {} threads",
            r.seconds.compile,
            r.seconds.keygen,
            r.seconds.encrypt,
            r.seconds.infer,
            r.seconds.decrypt,
            gib(r.peak_rss_bytes.unwrap_or(0)),
            r.threads
        );
    }
    for w in &warnings {
        eprintln!("{w}");
    }
    if super::logit_error::all_finite(&plain) && !super::logit_error::all_finite(&he) {
        bail!("the encrypted logits are not finite where the plaintext model's are");
    }
    if pc != hc {
        bail!("the encrypted class {hc} differs from the plaintext class {pc}");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    /// The embedded model, training record and image are the committed
    /// files, byte for byte.
    #[test]
    fn bundled_files_equal_the_committed_ones() {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
        for (rel, bytes) in [
            ("models/dirac-shared20.onnx", super::BUNDLED_MODEL),
            ("models/dirac-shared20.train.json", super::BUNDLED_RECORD),
            ("data/samples/fashion-mnist-0.png", super::BUNDLED_IMAGE),
        ] {
            assert!(
                std::fs::read(root.join(rel)).unwrap() == bytes,
                "{rel} differs"
            );
        }
        let (g, name, trained) = super::model(None).unwrap();
        assert_eq!(g.input_shape, [1, 28, 28]);
        assert_eq!(name, "bundled dirac-shared20 (models/dirac-shared20.onnx)");
        assert_eq!(
            trained.and_then(|t| t.kind()),
            Some(nn::data::DatasetKind::FashionMnist)
        );
        let (x, _) = super::image(None, &g.input_shape).unwrap();
        let file = crate::cmd::he::load_input(
            &root.join("data/samples/fashion-mnist-0.png"),
            &g.input_shape,
        )
        .unwrap();
        assert_eq!(x, file);
    }
}
