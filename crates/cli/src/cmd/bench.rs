//! `residue bench ckks`: median times of the engine's operations.

use anyhow::{Context, Result, bail};
use ckks::{
    Complex64, Decryptor, Encoder, Encryptor, EvaluationKeys, Evaluator, KeyGenerator, Params,
};
use indicatif::{ProgressBar, ProgressStyle};
use serde::Serialize;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

/// Arguments of `residue bench`.
#[derive(clap::Args)]
pub struct Args {
    /// What to benchmark.
    #[command(subcommand)]
    pub what: What,
}

/// Benchmark targets.
#[derive(clap::Subcommand)]
pub enum What {
    /// CKKS engine operations at the top level of a parameter set.
    Ckks(CkksArgs),
}

/// Arguments of `residue bench ckks`.
#[derive(clap::Args)]
pub struct CkksArgs {
    /// Parameter set name (see `residue params`).
    #[arg(long)]
    pub params: String,
    /// Threads; default: 1 and then all cores.
    #[arg(long)]
    pub threads: Option<usize>,
    /// Repetitions per operation (the median is reported).
    #[arg(long, default_value_t = 7)]
    pub reps: usize,
    /// Write the JSON records here (`-` for stdout).
    #[arg(long)]
    pub json: Option<PathBuf>,
    /// Also write a markdown table here.
    #[arg(long)]
    pub markdown: Option<PathBuf>,
}

/// One measurement.
#[derive(Serialize, Clone, Debug)]
pub struct Record {
    /// Operation name.
    pub op: String,
    /// Worker threads used.
    pub threads: usize,
    /// Median wall time in milliseconds.
    pub median_ms: f64,
}

fn median_ms(reps: usize, mut f: impl FnMut()) -> f64 {
    f(); // warm-up
    let mut t: Vec<f64> = (0..reps)
        .map(|_| {
            let s = Instant::now();
            f();
            s.elapsed().as_secs_f64() * 1e3
        })
        .collect();
    t.sort_by(f64::total_cmp);
    t[t.len() / 2]
}

const OPS: [&str; 9] = [
    "encode",
    "encrypt",
    "decrypt",
    "add",
    "mul_plain",
    "mul_relin",
    "rescale",
    "rotate",
    "rotate_hoisted",
];

fn bench_ckks(a: &CkksArgs, threads: usize, bar: &ProgressBar) -> Result<Vec<Record>> {
    let params = Params::named(&a.params)?;
    let n = params.max_slots();
    let lvl = params.max_level();
    let scale = params.default_scale();
    let enc = Encoder::new(params.clone());
    let mut kg = KeyGenerator::new(params.clone());
    let sk = kg.secret_key();
    let pk = kg.public_key(&sk);
    let steps: Vec<i64> = (1..=8).collect();
    let keys = EvaluationKeys {
        relin: Some(kg.relin_key(&sk)),
        galois: Some(kg.galois_keys(&sk, &steps, false)),
    };
    let eval = Evaluator::new(params.clone(), Arc::new(keys));
    let vals: Vec<Complex64> = (0..n)
        .map(|i| Complex64::new((i as f64 * 0.01).sin(), 0.0))
        .collect();
    let pt = enc.encode(&vals, lvl, scale, n)?;
    let mut encryptor = Encryptor::new(params.clone());
    let ct = encryptor.encrypt_pk(&pk, &pt)?;
    let ct2 = encryptor.encrypt_pk(&pk, &pt)?;
    let prod = eval.mul_relin(&ct, &ct2)?;
    let dec = Decryptor::new(&sk);
    let mut out = Vec::new();
    for op in OPS {
        bar.set_message(format!("{op} ({threads} threads)"));
        let r = a.reps;
        let ms = match op {
            "encode" => median_ms(r, || {
                enc.encode(&vals, lvl, scale, n).unwrap();
            }),
            "encrypt" => median_ms(r, || {
                encryptor.encrypt_pk(&pk, &pt).unwrap();
            }),
            "decrypt" => median_ms(r, || {
                enc.decode(&dec.decrypt(&ct).unwrap());
            }),
            "add" => median_ms(r, || {
                eval.add(&ct, &ct2).unwrap();
            }),
            "mul_plain" => median_ms(r, || {
                eval.mul_plain(&ct, &pt).unwrap();
            }),
            "mul_relin" => median_ms(r, || {
                eval.mul_relin(&ct, &ct2).unwrap();
            }),
            "rescale" => median_ms(r, || {
                eval.rescale(&prod).unwrap();
            }),
            "rotate" => median_ms(r, || {
                eval.rotate(&ct, 1).unwrap();
            }),
            "rotate_hoisted" => {
                median_ms(r, || {
                    eval.rotate_hoisted(&ct, &steps).unwrap();
                }) / steps.len() as f64
            }
            _ => unreachable!(),
        };
        out.push(Record {
            op: op.to_string(),
            threads,
            median_ms: ms,
        });
        bar.inc(1);
    }
    Ok(out)
}

/// Markdown table of records: one row per op, one column per thread count.
pub fn markdown(title: &str, recs: &[Record]) -> String {
    let mut threads: Vec<usize> = recs.iter().map(|r| r.threads).collect();
    threads.sort_unstable();
    threads.dedup();
    let mut ops: Vec<&str> = Vec::new();
    for r in recs {
        if !ops.contains(&r.op.as_str()) {
            ops.push(&r.op);
        }
    }
    let mut s = format!("### {title}\n\n| op |");
    for t in &threads {
        s += &format!(" {t} thread{} (ms) |", if *t == 1 { "" } else { "s" });
    }
    s += "\n|---|";
    s += &"---:|".repeat(threads.len());
    s += "\n";
    for op in ops {
        s += &format!("| {op} |");
        for t in &threads {
            match recs.iter().find(|r| r.op == op && r.threads == *t) {
                Some(r) => s += &format!(" {:.3} |", r.median_ms),
                None => s += " |",
            }
        }
        s += "\n";
    }
    s
}

/// Runs `residue bench`.
pub fn run(args: Args) -> Result<()> {
    let What::Ckks(a) = args.what;
    if a.reps == 0 {
        bail!("--reps must be at least 1");
    }
    let all = std::thread::available_parallelism().map_or(1, |n| n.get());
    let thread_counts = match a.threads {
        Some(0) => bail!("--threads must be at least 1"),
        Some(t) => vec![t],
        None if all > 1 => vec![1, all],
        None => vec![1],
    };
    let bar = ProgressBar::new((OPS.len() * thread_counts.len()) as u64);
    bar.set_style(
        ProgressStyle::with_template("{bar:30} {pos}/{len} {msg} [{elapsed}]")
            .expect("valid template"),
    );
    let mut recs = Vec::new();
    for &t in &thread_counts {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(t)
            .build()
            .context("building thread pool")?;
        recs.extend(pool.install(|| bench_ckks(&a, t, &bar))?);
    }
    bar.finish_and_clear();
    let table = markdown(&format!("`{}`", a.params), &recs);
    match &a.json {
        Some(p) if p.as_os_str() == "-" => println!("{}", serde_json::to_string_pretty(&recs)?),
        Some(p) => {
            std::fs::write(p, serde_json::to_string_pretty(&recs)?)
                .with_context(|| format!("writing {}", p.display()))?;
            println!("{table}");
        }
        None => println!("{table}"),
    }
    if let Some(p) = &a.markdown {
        std::fs::write(p, &table).with_context(|| format!("writing {}", p.display()))?;
    }
    Ok(())
}
