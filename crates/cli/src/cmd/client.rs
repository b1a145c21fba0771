//! `residue client`: one encrypted inference through a `residue serve`
//! server: fetch the plan, generate keys if the key directory has none,
//! upload the evaluation keys once (the key id is reused later), encrypt,
//! submit, follow progress, download, decrypt.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use serde::{Deserialize, Serialize};

use super::he::{StepProgress, load_input, load_plan};

/// Arguments of `residue client`.
#[derive(clap::Args)]
pub struct Args {
    /// The server (`http://host:port`).
    #[arg(long)]
    pub server: String,
    /// The model to use, by its name on the server (needed when it serves
    /// several; `GET /v1/models` lists them).
    #[arg(long)]
    pub model_name: Option<String>,
    /// Where to write the server's plan (read by `residue encrypt` too).
    #[arg(long)]
    pub plan_out: PathBuf,
    /// Key directory: used if it holds keys, else generated there; the
    /// key id and token the server gave are kept in `server.json` there.
    #[arg(long)]
    pub keys: PathBuf,
    /// A PNG image (pixels scaled to [0, 1]) or a `.npy` float32 array of
    /// the plan's input shape.
    #[arg(long)]
    pub input: PathBuf,
    /// Also write the encrypted result here.
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Seconds to wait for the result.
    #[arg(long, default_value_t = 3600.0)]
    pub timeout_secs: f64,
    /// Print JSON (`class`, `logits`, ids, seconds).
    #[arg(long)]
    pub json: bool,
    /// Also write the JSON report to FILE (what `--json` prints).
    #[arg(long, value_name = "FILE")]
    pub json_out: Option<PathBuf>,
}

/// What the client keeps about its upload (`KEYS/server.json`, mode 0600:
/// the token is a secret).
#[derive(Serialize, Deserialize)]
struct Registration {
    server: String,
    plan_hash: String,
    key_id: String,
    token: String,
}

fn write_private(path: &Path, bytes: &[u8]) -> Result<()> {
    use std::io::Write;
    let mut o = std::fs::OpenOptions::new();
    o.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        o.mode(0o600);
    }
    o.open(path)?.write_all(bytes)?;
    Ok(())
}

/// Runs `residue client`.
pub fn run(args: Args) -> Result<()> {
    let t_all = Instant::now();
    let c = serve::client::Client::new(&args.server);
    let model = args.model_name.as_deref();
    let info = c.info_of(model)?;
    let plan_json = c.plan_of(model)?;
    if let Some(dir) = args.plan_out.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)?;
    }
    std::fs::write(&args.plan_out, &plan_json)
        .with_context(|| format!("writing {}", args.plan_out.display()))?;
    let (plan, params) = load_plan(&args.plan_out)?;
    let hash = runtime::prepare::plan_hash(&plan);
    if hash != info.plan_hash {
        bail!(
            "the server's plan does not hash to what it announces ({hash} vs {})",
            info.plan_hash
        );
    }
    if info.insecure && !args.json {
        eprintln!(
            "note: the server uses `{}`, an insecure test parameter set",
            info.params
        );
    }
    let l = plan.nodes[0].layout_out;
    let x = load_input(&args.input, &[l.channels, l.height, l.width])?;

    // Keys: generated once per key directory.
    let t = Instant::now();
    let mut keygen_s = None;
    if !args.keys.join("secret.key").exists() {
        if !args.json {
            eprintln!("generating keys in {} ...", args.keys.display());
        }
        let needs = runtime::client::KeyNeeds::from(&info.key_needs);
        let spin = super::he::spinner("generating keys", args.json);
        let keys = runtime::client::ClientKeys::generate(&params, &needs)?;
        keys.save(&params, &args.keys)
            .with_context(|| format!("writing keys to {}", args.keys.display()))?;
        spin.finish_and_clear();
        keygen_s = Some(t.elapsed().as_secs_f64());
    }
    let (sk, pk) = runtime::client::load_client_keys(&params, &args.keys)
        .with_context(|| format!("keys in {}", args.keys.display()))?;

    // Upload once per server and plan; reuse the key id while the server
    // still has it.
    let reg_path = args.keys.join("server.json");
    let known: Option<Registration> = std::fs::read(&reg_path)
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .filter(|r: &Registration| r.server == c.base() && r.plan_hash == info.plan_hash);
    let t = Instant::now();
    let (reg, reused) = match known {
        Some(r) if c.key(&r.key_id, &r.token).is_ok() => (r, true),
        _ => {
            if !args.json {
                eprintln!("uploading evaluation keys ...");
            }
            let spin = super::he::spinner("uploading evaluation keys", args.json);
            let k = c
                .upload_keys_for(model, &args.keys)
                .context("uploading the evaluation keys")?;
            spin.finish_and_clear();
            let r = Registration {
                server: c.base().to_string(),
                plan_hash: info.plan_hash.clone(),
                key_id: k.key_id,
                token: k.token,
            };
            write_private(&reg_path, &serde_json::to_vec_pretty(&r)?)?;
            (r, false)
        }
    };
    let upload_s = t.elapsed().as_secs_f64();

    let t = Instant::now();
    let ct = runtime::client::encrypt(&plan, &params, &pk, &x)?;
    let mut buf = Vec::new();
    ct.write_to(&params, &mut buf)?;
    let encrypt_s = t.elapsed().as_secs_f64();

    let t = Instant::now();
    let job = c.submit_patiently(&reg.key_id, &reg.token, &buf, Duration::from_secs(600))?;
    let bar = StepProgress::new(info.steps, args.json);
    let mut last = None;
    let status = c.wait(
        &job,
        &reg.token,
        Duration::from_millis(200),
        Duration::try_from_secs_f64(args.timeout_secs).unwrap_or(Duration::from_secs(3600)),
        |s| {
            // One line (or bar move) per change, not per poll.
            let now = (s.state, s.progress.step, s.progress.bootstraps_done);
            if last.replace(now) == Some(now) {
                return;
            }
            bar.update(&runtime::Progress {
                step: s.progress.step,
                steps: s.progress.steps,
                name: &s.progress.step_name,
                bootstraps_done: s.progress.bootstraps_done,
                bootstraps_planned: s.progress.bootstraps_planned,
                elapsed: s.progress.elapsed_seconds,
            })
        },
    )?;
    bar.finish();
    if status.state != serve::jobs::JobState::Done {
        bail!(
            "job {job} failed on the server: {}",
            status.error.unwrap_or_default()
        );
    }
    let out = c.result(&job, &reg.token)?;
    let server_s = t.elapsed().as_secs_f64();
    let result = runtime::files::EncryptedTensor::read_from(&mut out.as_slice(), &params)
        .context("the server's result")?;
    if result.meta.plan_hash != info.plan_hash {
        bail!("the server's result is for another plan");
    }
    if let Some(p) = &args.out {
        std::fs::write(p, &out).with_context(|| format!("writing {}", p.display()))?;
    }
    let logits = runtime::client::decrypt(&params, &sk, &result)?;
    let class = nn::exec::argmax(&logits);
    if args.json || args.json_out.is_some() {
        let v = serde_json::json!({
            "class": class,
            "logits": logits,
            "job_id": job,
            "key_id": reg.key_id,
            "key_reused": reused,
            "model": info.model,
            "params": info.params,
            "server_stats": status.stats,
            "attempts": status.attempts,
            "seconds": {
                "keygen": keygen_s,
                "upload": upload_s,
                "encrypt": encrypt_s,
                "job": server_s,
                "total": t_all.elapsed().as_secs_f64(),
            },
        });
        super::json::emit(args.json, args.json_out.as_deref(), &v)?;
    }
    if !args.json {
        let l: Vec<String> = logits.iter().map(|v| format!("{v:.4}")).collect();
        println!("class {class}  logits [{}]", l.join(", "));
        eprintln!(
            "job {job} on key {}{}: {:.2} s on the server, {:.2} s in all",
            reg.key_id,
            if reused { " (reused)" } else { "" },
            status.stats.as_ref().map(|s| s.seconds).unwrap_or(0.0),
            t_all.elapsed().as_secs_f64()
        );
    }
    Ok(())
}
