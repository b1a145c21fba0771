//! `residue serve`: the HTTP service for compiled models.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, Result, bail};

use super::he::{load_model, load_plan};

/// Arguments of `residue serve`.
#[derive(clap::Args)]
pub struct Args {
    /// The plan (from `residue compile`). Repeat `--plan` and `--model`
    /// (in pairs, in the same order) to serve several models.
    #[arg(long, required = true)]
    pub plan: Vec<PathBuf>,
    /// The model the plan was compiled for (ONNX); its file name without
    /// the extension is its name on the server (`?model=NAME`).
    #[arg(long, required = true)]
    pub model: Vec<PathBuf>,
    /// Key and job store: a directory (created if missing). Servers on one
    /// store share keys and jobs.
    #[arg(long)]
    pub store: String,
    /// Address to listen on (port 0: any free port; the chosen address is
    /// printed as `listening on http://ADDR`).
    #[arg(long, default_value = "127.0.0.1:8080")]
    pub addr: String,
    /// Inferences run at once (each uses all cores and the memory of one
    /// inference); 0 accepts jobs for other servers on the store to run.
    #[arg(long, default_value_t = 1)]
    pub workers: usize,
    /// Jobs waiting at most; beyond, submissions get 429 with Retry-After.
    #[arg(long, default_value_t = 16)]
    pub queue: usize,
    /// Evaluation keys kept in memory, in MiB (beyond, reloaded from the
    /// store when used).
    #[arg(long, default_value_t = 4096)]
    pub key_cache_mib: u64,
    /// (One copy of the diagonals per served model, shared by every
    /// client's keys.)
    #[command(flatten)]
    pub diagonals: super::he::DiagonalArgs,
    /// Largest key upload, in MiB.
    #[arg(long, default_value_t = 65536)]
    pub max_key_mib: u64,
    /// This worker's id, stable across restarts (default: host name and
    /// port; in a container, set `RESIDUE_WORKER_ID`): a restarted worker
    /// takes its unfinished jobs back at once.
    #[arg(long, env = "RESIDUE_WORKER_ID")]
    pub worker_id: Option<String>,
    /// Seconds after which a silent worker's jobs are taken over.
    #[arg(long, default_value_t = 15.0)]
    pub lease_secs: f64,
    /// Seconds between heartbeats and store scans.
    #[arg(long, default_value_t = 1.0)]
    pub poll_secs: f64,
    /// Attempts at a job (after its worker stopped) before it is failed.
    #[arg(long, default_value_t = 3)]
    pub max_attempts: u32,
    /// Time limit of a request (key uploads: --upload-timeout-secs).
    #[arg(long, default_value_t = 60.0)]
    pub request_timeout_secs: f64,
    /// Time limit of a key upload.
    #[arg(long, default_value_t = 3600.0)]
    pub upload_timeout_secs: f64,
    /// Compute threads of an inference (default: all cores).
    #[arg(long)]
    pub threads: Option<usize>,
}

fn secs(what: &str, s: f64) -> Result<Duration> {
    Duration::try_from_secs_f64(s)
        .ok()
        .filter(|d| !d.is_zero())
        .with_context(|| format!("--{what} must be a positive number of seconds, not {s}"))
}

/// Runs `residue serve`.
pub fn run(args: Args) -> Result<()> {
    super::he::set_threads(args.threads);
    if args.plan.len() != args.model.len() {
        bail!(
            "{} --plan and {} --model: give them in pairs",
            args.plan.len(),
            args.model.len()
        );
    }
    let mut served = Vec::new();
    for (plan_path, model_path) in args.plan.iter().zip(&args.model) {
        let (plan, params) = load_plan(plan_path)?;
        let model = load_model(model_path)?;
        let name = model_path
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_else(|| "model".into());
        served.push(
            serve::ServedModel::new(&name, plan, params, &model).with_context(|| {
                format!(
                    "binding {} to {}",
                    plan_path.display(),
                    model_path.display()
                )
            })?,
        );
    }
    let store = serve::Store::open(&args.store)?;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let r = rt.block_on(async move {
        let listener = tokio::net::TcpListener::bind(&args.addr)
            .await
            .with_context(|| format!("listening on {}", args.addr))?;
        let addr = listener.local_addr()?;
        let given = args.worker_id.clone().filter(|s| !s.trim().is_empty());
        let defaulted = given.is_none();
        let worker_id = given.unwrap_or_else(|| {
            let host = std::fs::read_to_string("/etc/hostname")
                .map(|s| s.trim().to_string())
                .unwrap_or_else(|_| "host".into());
            format!("{host}-{}", addr.port())
        });
        let cfg = serve::Config {
            workers: args.workers,
            queue: args.queue.max(1),
            key_cache_bytes: args.key_cache_mib << 20,
            max_key_bytes: args.max_key_mib << 20,
            worker_id,
            lease: secs("lease-secs", args.lease_secs)?,
            poll: secs("poll-secs", args.poll_secs)?,
            max_attempts: args.max_attempts.max(1),
            request_timeout: secs("request-timeout-secs", args.request_timeout_secs)?,
            upload_timeout: secs("upload-timeout-secs", args.upload_timeout_secs)?,
            storage: args.diagonals.storage()?,
        };
        let desc = store.describe().to_string();
        let app = serve::App::new(served, store, cfg).map_err(anyhow::Error::msg)?;
        for m in &app.models {
            eprintln!(
                "serving `{}`: plan {}… ({}, {} steps, {} bootstraps)",
                m.name,
                &m.plan_hash[..12],
                m.params.name(),
                m.plan.nodes.len(),
                m.plan.bootstraps,
            );
        }
        eprintln!(
            "worker `{}` with {} worker(s), store {desc}, bootstrapping's diagonals {}{}",
            app.cfg.worker_id,
            app.cfg.workers,
            match app.cfg.storage {
                Some(runtime::server::DiagonalStorage::Coefficients) => "as coefficients",
                Some(runtime::server::DiagonalStorage::Ntt) => "in NTT form",
                None => "chosen per model (NTT form up to N/8 slots, else coefficients)",
            },
            if defaulted {
                " (worker id from the host name: give a stable one with --worker-id or \
                 RESIDUE_WORKER_ID so that a restart takes its jobs back at once)"
            } else {
                ""
            },
        );
        println!("listening on http://{addr}");
        use std::io::Write;
        std::io::stdout().flush()?;
        let shutdown = async {
            let ctrl_c = tokio::signal::ctrl_c();
            #[cfg(unix)]
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(mut term) => tokio::select! { _ = ctrl_c => {}, _ = term.recv() => {} },
                Err(_) => {
                    let _ = ctrl_c.await;
                }
            }
            #[cfg(not(unix))]
            let _ = ctrl_c.await;
            eprintln!("shutting down (unfinished jobs resume on restart)");
        };
        serve::serve(app, listener, shutdown).await?;
        Ok(())
    });
    // An inference still running is not waited for: its job is in the
    // store and resumes when this worker starts again.
    rt.shutdown_timeout(Duration::from_millis(500));
    r
}
