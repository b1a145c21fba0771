//! `residue client`: one encrypted inference through a `residue serve`
//! server: fetch the plan, generate keys if the key directory has none,
//! upload the evaluation keys once (the key id is reused later), encrypt,
//! submit, follow progress, download, decrypt.
//!
//! Local files are read and checked as soon as the server's plan (their
//! parameter set and shapes) is known, before keys are uploaded or an
//! input is sent: the input, the client keys, the headers of the
//! evaluation key files and `server.json`. A bad one fails with one error
//! naming it.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow, bail};
use serde::{Deserialize, Serialize};

use super::he::{StepProgress, load_plan};

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
    /// the plan's input shape, or of shape `[B,C,H,W]` for several images.
    /// Repeat for several images: a server whose plan is batched (`residue
    /// compile --batch`) runs up to its batch in one request, in order.
    #[arg(long, required = true)]
    pub input: Vec<PathBuf>,
    /// Also write the encrypted result here.
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Seconds to wait for the result.
    #[arg(long, default_value_t = 3600.0)]
    pub timeout_secs: f64,
    /// Print JSON (`class`, `logits` of the first image, `results`: one
    /// `{ "class", "logits" }` per image, ids, seconds).
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

/// Writes `bytes` to `path` (mode 0600) through a temporary file renamed
/// over it, so that an interrupted write leaves the old file or none.
fn write_private(path: &Path, bytes: &[u8]) -> Result<()> {
    use std::io::Write;
    let tmp = path.with_extension("json.tmp");
    let mut o = std::fs::OpenOptions::new();
    o.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        o.mode(0o600);
    }
    o.open(&tmp)?.write_all(bytes)?;
    std::fs::rename(&tmp, path)?;
    Ok(())
}

/// Most bytes of a `server.json` (a few hundred in practice).
const MAX_REGISTRATION_BYTES: u64 = 64 << 10;

/// The registration kept in `path`, if there is one. A file that is there
/// but is not one (unreadable, oversized, not the JSON this command
/// writes, ids that are not the server's) is an error: it is not silently
/// replaced.
fn read_registration(path: &Path) -> Result<Option<Registration>> {
    let bad = |why: String| {
        anyhow!(
            "{}: {why}; delete it to upload the keys again",
            path.display()
        )
    };
    let len = match std::fs::metadata(path) {
        Ok(m) => m.len(),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(bad(e.to_string())),
    };
    if len > MAX_REGISTRATION_BYTES {
        return Err(bad(format!(
            "{len} bytes, not a registration (at most {MAX_REGISTRATION_BYTES})"
        )));
    }
    let b = std::fs::read(path).map_err(|e| bad(e.to_string()))?;
    let r: Registration =
        serde_json::from_slice(&b).map_err(|e| bad(format!("not a registration: {e}")))?;
    let hex = |s: &str, n: usize| {
        s.len() == n
            && s.bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    };
    if !serve::store::valid_id(&r.key_id) {
        return Err(bad(format!(
            "key id {:?} is not a server's key id",
            r.key_id
        )));
    }
    if !hex(&r.token, 64) {
        return Err(bad("the token is not 64 hex digits".into()));
    }
    if !hex(&r.plan_hash, 64) {
        return Err(bad("the plan hash is not 64 hex digits".into()));
    }
    Ok(Some(r))
}

/// Checks the header of the evaluation key files in `dir/eval` (those
/// present; `bootstrap.keys` must be when the plan bootstraps): the kind
/// each is named for, at `params`.
fn check_eval_key_files(params: &ckks::Params, dir: &Path, bootstraps: bool) -> Result<()> {
    use ckks::serialize::ObjectKind as K;
    let eval = dir.join("eval");
    for (file, kinds, needed) in [
        (
            "eval.keys",
            &[K::EvaluationKeys, K::EvaluationKeysCompact][..],
            false,
        ),
        ("bootstrap.keys", &[K::BootstrapKeys][..], bootstraps),
    ] {
        let path = eval.join(file);
        if !path.exists() {
            if needed {
                bail!(
                    "{}: missing, and the plan bootstraps (generate the keys again: remove {})",
                    path.display(),
                    dir.join("secret.key").display()
                );
            }
            continue;
        }
        let (_, h) = serve::client::open_key_file(&path, kinds)?;
        h.check_params(params)
            .map_err(|e| anyhow!("{}: {e}", path.display()))?;
    }
    Ok(())
}

/// The error of a submitted job whose result this run could not get (the
/// server went away, the wait timed out): it names the job and its key and
/// says how to get the result later, step by step. The token is not
/// printed: it is in `KEYS/server.json`.
fn fetch_later(
    args: &Args,
    c: &serve::client::Client,
    job: &str,
    key_id: &str,
    e: serve::client::ClientError,
) -> anyhow::Error {
    let keys = args.keys.display();
    let s = c.base();
    anyhow!(
        "{e}; job {job} (key {key_id}) was submitted and stays in the server's store: \
         fetch its result later, TOKEN being the token in {keys}/server.json, with \
         `curl -s -H \"Authorization: Bearer $TOKEN\" {s}/v1/jobs/{job}` (until its state is done), \
         `curl -sf -H \"Authorization: Bearer $TOKEN\" {s}/v1/jobs/{job}/result > y.ct` and \
         `residue decrypt --keys {keys} --input y.ct` (docs/deploy.md: the same steps one by one)"
    )
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
    let batch = plan.batch();
    let xs = super::he::load_images(
        &args.input,
        &[l.channels, l.height, l.width],
        batch,
        &format!(
            "the server's plan takes at most {batch} per request: send them in groups of {batch}"
        ),
    )?;

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
    check_eval_key_files(&params, &args.keys, info.key_needs.bootstrap)?;

    // Upload once per server and plan; reuse the key id while the server
    // still has it.
    let reg_path = args.keys.join("server.json");
    let known = read_registration(&reg_path)?
        .filter(|r| r.server == c.base() && r.plan_hash == info.plan_hash);
    let t = Instant::now();
    let (reg, reused) = match known {
        Some(r) if c.key(&r.key_id, &r.token).is_ok() => (r, true),
        _ => {
            if !args.json {
                eprintln!("uploading evaluation keys ...");
            }
            let spin = super::he::spinner("uploading evaluation keys", args.json);
            let k = c.upload_keys_for(model, &args.keys).with_context(|| {
                format!(
                    "uploading the evaluation keys in {}",
                    args.keys.join("eval").display()
                )
            })?;
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
    let ct = runtime::client::encrypt_batch(&plan, &params, &pk, &xs)?;
    let mut buf = Vec::new();
    ct.write_to(&params, &mut buf)?;
    let encrypt_s = t.elapsed().as_secs_f64();

    let t = Instant::now();
    let job = c.submit_patiently(&reg.key_id, &reg.token, &buf, Duration::from_secs(600))?;
    // From here on the job is the server's: whatever goes wrong on this
    // side, say which job it is and how to fetch its result later.
    let later = |e: serve::client::ClientError| fetch_later(&args, &c, &job, &reg.key_id, e);
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
    );
    bar.finish();
    let status = status.map_err(later)?;
    if status.state != serve::jobs::JobState::Done {
        bail!(
            "job {job} failed on the server: {}",
            status.error.unwrap_or_default()
        );
    }
    let out = c.result(&job, &reg.token).map_err(later)?;
    let server_s = t.elapsed().as_secs_f64();
    let result = runtime::files::EncryptedTensor::read_from(&mut out.as_slice(), &params)
        .context("the server's result")?;
    if result.meta.plan_hash != info.plan_hash {
        bail!("the server's result is for another plan");
    }
    if let Some(p) = &args.out {
        std::fs::write(p, &out).with_context(|| format!("writing {}", p.display()))?;
    }
    let all = runtime::client::decrypt_batch(&params, &sk, &result)?;
    let logits = &all[0];
    let class = nn::exec::argmax(logits);
    if args.json || args.json_out.is_some() {
        let results = super::he::results_json(&all);
        let v = serde_json::json!({
            "class": class,
            "logits": logits,
            "results": results,
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
        super::he::print_results(&all);
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
