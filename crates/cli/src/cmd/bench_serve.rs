//! `residue bench serve`: a bounded load test of `residue serve` on
//! loopback: N concurrent clients, each with its own keys, M encrypted
//! inferences each; throughput, latency percentiles, the server's peak
//! memory, and every answer checked against the plaintext model (zero lost
//! or wrong answers, or the command fails).

use std::io::BufRead;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use serde::Serialize;

use super::he::{load_model, load_plan};

/// Arguments of `residue bench serve`.
#[derive(clap::Args)]
pub struct Args {
    /// The plan (from `residue compile`).
    #[arg(long)]
    pub plan: PathBuf,
    /// The model the plan was compiled for (ONNX).
    #[arg(long)]
    pub model: PathBuf,
    /// Concurrent clients (each generates and uploads its own keys).
    #[arg(long, default_value_t = 4)]
    pub clients: usize,
    /// Inferences per client.
    #[arg(long, default_value_t = 4)]
    pub requests: usize,
    /// The server's `--workers` (inferences at once).
    #[arg(long, default_value_t = 1)]
    pub workers: usize,
    /// The server's `--threads` (default: all cores).
    #[arg(long)]
    pub threads: Option<usize>,
    /// Stop submitting after this many seconds (what was submitted is still
    /// awaited; what was not is reported as not run).
    #[arg(long, default_value_t = 600.0)]
    pub max_seconds: f64,
    /// Store directory for the server (default: a fresh temporary one).
    #[arg(long)]
    pub store: Option<PathBuf>,
    #[command(flatten)]
    pub out: super::json::JsonArgs,
    /// Write a markdown table here.
    #[arg(long)]
    pub markdown: Option<PathBuf>,
}

/// Latency percentiles in milliseconds.
#[derive(Serialize, Debug, Default)]
pub struct Latency {
    /// Median.
    pub p50: f64,
    /// 95th percentile.
    pub p95: f64,
    /// 99th percentile.
    pub p99: f64,
    /// Largest.
    pub max: f64,
    /// Mean.
    pub mean: f64,
}

/// The report.
#[derive(Serialize, Debug)]
pub struct Report {
    /// Parameter set.
    pub params: String,
    /// Whether it is an insecure test set.
    pub insecure: bool,
    /// Concurrent clients.
    pub clients: usize,
    /// Inferences per client asked for.
    pub requests_per_client: usize,
    /// Server workers.
    pub workers: usize,
    /// Inferences submitted.
    pub submitted: usize,
    /// Answers that decrypted to the plaintext model's class (logits within
    /// 1e-2 of the largest).
    pub correct: usize,
    /// Answers that did not.
    pub wrong: usize,
    /// Submitted inferences with no answer (failed jobs, errors).
    pub lost: usize,
    /// Inferences not submitted within `--max-seconds`.
    pub not_run: usize,
    /// Submissions refused with 429 and retried.
    pub retried_429: u64,
    /// Seconds from the first submission to the last answer.
    pub wall_seconds: f64,
    /// Answers per second over `wall_seconds`.
    pub throughput_per_second: f64,
    /// Submit-to-decrypted latency.
    pub latency_ms: Latency,
    /// Server-side seconds of encrypted compute per inference (mean).
    pub server_inference_seconds_mean: f64,
    /// Key generation per client (mean seconds).
    pub keygen_seconds_mean: f64,
    /// Key upload per client (mean seconds).
    pub upload_seconds_mean: f64,
    /// Bytes of evaluation keys per client.
    pub key_bytes: u64,
    /// The server process's peak resident memory (VmHWM).
    pub server_peak_rss_bytes: Option<u64>,
    /// Errors seen (first few).
    pub errors: Vec<String>,
}

fn pct(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let i = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[i.clamp(1, sorted.len()) - 1]
}

fn peak_rss_of(pid: u32) -> Option<u64> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = s.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}

struct Child(std::process::Child);
impl Drop for Child {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[derive(Default)]
struct ClientOutcome {
    latencies_ms: Vec<f64>,
    server_s: Vec<f64>,
    correct: usize,
    wrong: usize,
    lost: usize,
    submitted: usize,
    not_run: usize,
    retried: u64,
    keygen_s: f64,
    upload_s: f64,
    key_bytes: u64,
    errors: Vec<String>,
}

/// Runs `residue bench serve`.
pub fn run(args: Args) -> Result<()> {
    if args.clients == 0 || args.requests == 0 {
        bail!("--clients and --requests must be at least 1");
    }
    let (plan, params) = load_plan(&args.plan)?;
    let model = Arc::new(load_model(&args.model)?);
    let tmp = std::env::temp_dir().join(format!("residue-bench-serve-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&tmp);
    std::fs::create_dir_all(&tmp)?;
    let store = args.store.clone().unwrap_or_else(|| tmp.join("store"));
    let exe = std::env::current_exe()?;
    let mut cmd = Command::new(exe);
    cmd.args(["serve", "--plan"])
        .arg(&args.plan)
        .arg("--model")
        .arg(&args.model)
        .arg("--store")
        .arg(&store)
        .args(["--addr", "127.0.0.1:0", "--worker-id", "bench"])
        .args(["--workers", &args.workers.to_string()])
        .args(["--queue", &(args.clients * 2).max(16).to_string()])
        .stdout(Stdio::piped())
        .stderr(Stdio::null());
    if let Some(t) = args.threads {
        cmd.args(["--threads", &t.to_string()]);
    }
    let mut server = Child(cmd.spawn().context("starting the server")?);
    let mut line = String::new();
    std::io::BufReader::new(server.0.stdout.take().context("server stdout")?)
        .read_line(&mut line)?;
    let url = line
        .trim()
        .strip_prefix("listening on ")
        .with_context(|| format!("the server did not start: {line:?}"))?
        .to_string();
    let pid = server.0.id();
    let c = serve::client::Client::new(&url);
    let info = c.info()?;
    let needs = runtime::client::KeyNeeds::from(&info.key_needs);
    let plan = Arc::new(plan);
    let deadline = Instant::now() + Duration::try_from_secs_f64(args.max_seconds.max(1.0))?;
    eprintln!(
        "{} clients x {} inferences at {} against {url} ({} worker(s)) ...",
        args.clients,
        args.requests,
        params.name(),
        args.workers
    );
    let bar = super::he::count_bar(args.clients * args.requests, "inferences");
    let start = Arc::new(std::sync::Barrier::new(args.clients));
    let t_first = Arc::new(std::sync::Mutex::new(None::<Instant>));
    let handles: Vec<_> = (0..args.clients)
        .map(|ci| {
            let bar = bar.clone();
            let (c, params, plan, model, needs, start, t_first) = (
                c.clone(),
                params.clone(),
                plan.clone(),
                model.clone(),
                needs.clone(),
                start.clone(),
                t_first.clone(),
            );
            let dir = tmp.join(format!("client{ci}"));
            let requests = args.requests;
            std::thread::spawn(move || -> ClientOutcome {
                let mut o = ClientOutcome::default();
                let fail = |o: &mut ClientOutcome, e: String| {
                    if o.errors.len() < 3 {
                        o.errors.push(format!("client {ci}: {e}"));
                    }
                };
                let t = Instant::now();
                let keys = match runtime::client::ClientKeys::generate(&params, &needs)
                    .and_then(|k| k.save(&params, &dir).map(|_| k))
                {
                    Ok(k) => k,
                    Err(e) => {
                        fail(&mut o, e.to_string());
                        start.wait();
                        o.not_run = requests;
                        return o;
                    }
                };
                o.keygen_s = t.elapsed().as_secs_f64();
                let t = Instant::now();
                let reg = c.upload_keys(&dir);
                o.upload_s = t.elapsed().as_secs_f64();
                start.wait();
                let reg = match reg {
                    Ok(r) => r,
                    Err(e) => {
                        fail(&mut o, e.to_string());
                        o.not_run = requests;
                        return o;
                    }
                };
                o.key_bytes = reg.bytes;
                t_first
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .get_or_insert_with(Instant::now);
                let l = plan.nodes[0].layout_out;
                let len = l.channels * l.height * l.width;
                for r in 0..requests {
                    if Instant::now() > deadline {
                        o.not_run = requests - r;
                        break;
                    }
                    let x: Vec<f64> = (0..len)
                        .map(|i| ((i * 7 + 131 * (ci * requests + r)) as f64 * 0.618_034).fract())
                        .collect();
                    let want = match nn::Tensor::new(vec![l.channels, l.height, l.width], x.clone())
                        .map_err(|e| e.to_string())
                        .and_then(|t| nn::exec::run(&model, &t).map_err(|e| e.to_string()))
                    {
                        Ok(t) => t.data,
                        Err(e) => {
                            fail(&mut o, e);
                            o.not_run += 1;
                            continue;
                        }
                    };
                    let t0 = Instant::now();
                    let res = (|| -> Result<(Vec<f64>, f64)> {
                        let ct = runtime::client::encrypt(&plan, &params, &keys.public, &x)?;
                        let mut buf = Vec::new();
                        ct.write_to(&params, &mut buf)?;
                        let job = loop {
                            match c.submit(&reg.key_id, &reg.token, &buf) {
                                Err(e) if e.status() == Some(429) => {
                                    o.retried += 1;
                                    std::thread::sleep(Duration::from_millis(500));
                                }
                                r => break r?,
                            }
                        };
                        o.submitted += 1;
                        let st = c.wait(
                            &job,
                            &reg.token,
                            Duration::from_millis(50),
                            Duration::from_secs(3600),
                            |_| {},
                        )?;
                        if st.state != serve::jobs::JobState::Done {
                            bail!("job {job}: {}", st.error.unwrap_or_default());
                        }
                        let out = c.result(&job, &reg.token)?;
                        let t = runtime::files::EncryptedTensor::read_from(
                            &mut out.as_slice(),
                            &params,
                        )?;
                        let got = runtime::client::decrypt(&params, &keys.secret, &t)?;
                        Ok((got, st.stats.map(|s| s.seconds).unwrap_or(0.0)))
                    })();
                    match res {
                        Ok((got, server_s)) => {
                            o.latencies_ms.push(t0.elapsed().as_secs_f64() * 1e3);
                            o.server_s.push(server_s);
                            let scale = want.iter().fold(1e-9f64, |m, v| m.max(v.abs()));
                            let close = got.len() == want.len()
                                && got
                                    .iter()
                                    .zip(&want)
                                    .all(|(a, b)| (a - b).abs() <= 1e-2 * scale);
                            if close && nn::exec::argmax(&got) == nn::exec::argmax(&want) {
                                o.correct += 1;
                            } else {
                                o.wrong += 1;
                                fail(&mut o, format!("request {r}: {got:?} vs {want:?}"));
                            }
                        }
                        Err(e) => {
                            o.lost += 1;
                            fail(&mut o, format!("request {r}: {e:#}"));
                        }
                    }
                    bar.inc(1);
                }
                o
            })
        })
        .collect();
    let mut all = ClientOutcome::default();
    for h in handles {
        let o = h
            .join()
            .map_err(|_| anyhow::anyhow!("a client thread panicked"))?;
        all.latencies_ms.extend(o.latencies_ms);
        all.server_s.extend(o.server_s);
        all.correct += o.correct;
        all.wrong += o.wrong;
        all.lost += o.lost;
        all.submitted += o.submitted;
        all.not_run += o.not_run;
        all.retried += o.retried;
        all.keygen_s += o.keygen_s / args.clients as f64;
        all.upload_s += o.upload_s / args.clients as f64;
        all.key_bytes = all.key_bytes.max(o.key_bytes);
        all.errors.extend(o.errors);
    }
    bar.finish_and_clear();
    let wall = t_first
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .map(|t| t.elapsed().as_secs_f64())
        .unwrap_or(0.0);
    let rss = peak_rss_of(pid);
    drop(server);
    let _ = std::fs::remove_dir_all(&tmp);
    let mut lat = all.latencies_ms.clone();
    lat.sort_by(f64::total_cmp);
    let n = lat.len().max(1) as f64;
    let report = Report {
        params: params.name().to_string(),
        insecure: info.insecure,
        clients: args.clients,
        requests_per_client: args.requests,
        workers: args.workers,
        submitted: all.submitted,
        correct: all.correct,
        wrong: all.wrong,
        lost: all.lost,
        not_run: all.not_run,
        retried_429: all.retried,
        wall_seconds: wall,
        throughput_per_second: if wall > 0.0 {
            all.correct as f64 / wall
        } else {
            0.0
        },
        latency_ms: Latency {
            p50: pct(&lat, 50.0),
            p95: pct(&lat, 95.0),
            p99: pct(&lat, 99.0),
            max: lat.last().copied().unwrap_or(0.0),
            mean: lat.iter().sum::<f64>() / n,
        },
        server_inference_seconds_mean: all.server_s.iter().sum::<f64>()
            / all.server_s.len().max(1) as f64,
        keygen_seconds_mean: all.keygen_s,
        upload_seconds_mean: all.upload_s,
        key_bytes: all.key_bytes,
        server_peak_rss_bytes: rss,
        errors: all.errors,
    };
    args.out.emit(&report)?;
    let md = markdown(&report);
    if let Some(p) = &args.markdown {
        std::fs::write(p, &md).with_context(|| format!("writing {}", p.display()))?;
    }
    if !args.out.json {
        print!("{md}");
    }
    if report.wrong > 0 || report.lost > 0 {
        bail!(
            "{} wrong and {} lost answers of {} submitted: {}",
            report.wrong,
            report.lost,
            report.submitted,
            report.errors.join("; ")
        );
    }
    Ok(())
}

fn markdown(r: &Report) -> String {
    let mib = |b: u64| b as f64 / (1u64 << 20) as f64;
    format!(
        "| params | clients x requests | workers | correct / submitted | wrong | lost | not run | wall s | inferences/s | p50 ms | p95 ms | p99 ms | server s/inference | keys MiB/client | server peak RSS MiB |\n\
         |---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|\n\
         | {} | {} x {} | {} | {} / {} | {} | {} | {} | {:.1} | {:.3} | {:.0} | {:.0} | {:.0} | {:.2} | {:.1} | {} |\n",
        r.params,
        r.clients,
        r.requests_per_client,
        r.workers,
        r.correct,
        r.submitted,
        r.wrong,
        r.lost,
        r.not_run,
        r.wall_seconds,
        r.throughput_per_second,
        r.latency_ms.p50,
        r.latency_ms.p95,
        r.latency_ms.p99,
        r.server_inference_seconds_mean,
        mib(r.key_bytes),
        r.server_peak_rss_bytes
            .map(|b| format!("{:.0}", mib(b)))
            .unwrap_or_else(|| "n/a".into()),
    )
}
