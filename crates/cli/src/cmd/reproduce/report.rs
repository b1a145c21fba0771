//! `DIR/results.md` and the table `residue reproduce` prints.

use std::fmt::Write as _;
use std::path::Path;

use anyhow::{Context as _, Result};

use super::Record;

/// What the report says about the run besides the records.
pub struct Context {
    /// The command as run.
    pub command: String,
    /// CPU model name and cores.
    pub machine: (String, usize),
    /// The engine's CPU kernel path.
    pub kernels: String,
    /// Dataset name.
    pub dataset: String,
    /// Images in the full test set.
    pub test_images: usize,
    /// The baseline model.
    pub baseline: String,
}

fn opt<T: std::fmt::Display>(v: Option<T>) -> String {
    v.map_or_else(|| "-".into(), |v| v.to_string())
}

fn mib(b: Option<u64>) -> String {
    b.map_or_else(
        || "-".into(),
        |b| format!("{:.1}", b as f64 / (1u64 << 20) as f64),
    )
}

fn secs(x: Option<f64>) -> String {
    x.map_or_else(|| "-".into(), |x| format!("{x:.2}"))
}

fn ratio(x: Option<f64>) -> String {
    x.map_or_else(|| "-".into(), |x| format!("{x:.2}x"))
}

/// The results as a markdown table.
pub fn table(records: &[Record]) -> String {
    let mut s = String::new();
    s.push_str(
        "| model | structure | params | placement | plain acc. | HE acc. (images) | agreement | bootstraps (sites) | rotations | latency s | min s | CPU s | estimated s | peak MiB | key MiB | speed-up (CPU; min; est.) |\n",
    );
    s.push_str("|---|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n");
    for r in records {
        let same = r
            .same_plan_as
            .as_deref()
            .map(|o| format!(" (= {o})"))
            .unwrap_or_default();
        let _ = writeln!(
            s,
            "| {} | {} | {} | {}{same} | {:.2}% | {:.2}% ({}) | {:.0}% | {} ({}) | {} | {:.2} | {} | {} | {:.2} | {} | {} | {} ({}; {}; {}) |",
            r.model,
            r.structure,
            r.params,
            r.placement,
            100.0 * r.accuracy_plain,
            100.0 * r.accuracy_he,
            r.images,
            100.0 * r.argmax_agreement,
            opt(r.bootstraps),
            r.bootstrap_sites,
            opt(r.rotations),
            r.latency_s,
            secs(r.latency_min_s),
            secs(r.cpu_s),
            r.estimated_s,
            mib(r.peak_mem_bytes),
            mib(r.key_bytes),
            ratio(r.speedup_vs_resnet),
            ratio(r.cpu_speedup_vs_resnet),
            ratio(r.min_speedup_vs_resnet),
            ratio(r.estimated_speedup_vs_resnet),
        );
    }
    s
}

/// Writes `dir/results.md`.
pub fn write(
    dir: &Path,
    ctx: &Context,
    records: &[Record],
    notes: &[String],
    figures: &[String],
) -> Result<()> {
    let mut s = String::new();
    s.push_str("# Skip connections under CKKS: measured\n\n");
    s.push_str("Written by `residue reproduce`; every number below comes from this command:\n\n");
    let _ = writeln!(s, "```\n{}\n```\n", ctx.command);
    let (cpu, cores) = &ctx.machine;
    let threads: Vec<String> = {
        let mut t: Vec<String> = records
            .iter()
            .filter_map(|r| r.threads)
            .map(|t| t.to_string())
            .collect();
        t.dedup();
        t
    };
    let _ = writeln!(
        s,
        "Machine: {cpu}, {cores} cores; encrypted runs with {} thread(s); CPU kernel path `{}`; {}.\n",
        if threads.is_empty() {
            "-".into()
        } else {
            threads.join(", ")
        },
        ctx.kernels,
        if cfg!(debug_assertions) {
            "a debug build of `residue` (timings are not the release build's)"
        } else {
            "a release build of `residue`"
        }
    );
    if records.iter().any(|r| r.params.starts_with("insecure")) {
        s.push_str(
            "**Insecure parameter set**: these figures check the pipeline; they are not the result, which needs a 128-bit set (`residue params`).\n\n",
        );
    }
    let plain = records.first().map_or(0, |r| r.plain_images);
    let _ = writeln!(
        s,
        "Plaintext accuracy: the reference executor on {plain} of the {} {} test images{}. Encrypted: the first {} test images, each encrypted, run by the server with evaluation keys only, and decrypted (`residue eval --he`). Latency: mean server seconds per image (one image per inference); min: the fastest image's (every image does the same encrypted work, so the spread is the machine's other load, and the minimum is the least disturbed figure); CPU: the server's CPU seconds per image, all threads (on a busy machine a wall time stretches, CPU time much less). Estimated: the compiler's figure for the same plan (`residue analyze`). Bootstraps: ciphertext bootstraps per inference (measured), and in brackets the plan steps whose result is bootstrapped. Speed-up: {}'s measured latency over the model's, same parameter set and placement (in brackets: the same from CPU seconds, from the fastest images, and from the estimates).\n",
        ctx.test_images,
        ctx.dataset,
        if plain < ctx.test_images {
            " (`--plain-limit`)"
        } else {
            ""
        },
        records.iter().map(|r| r.images).min().unwrap_or(0),
        ctx.baseline,
    );
    s.push_str(&table(records));
    s.push('\n');
    let mut sources: Vec<&str> = records.iter().map(|r| r.estimate_source.as_str()).collect();
    sources.sort_unstable();
    sources.dedup();
    let _ = writeln!(s, "Estimates priced with: {}.\n", sources.join("; "));
    for n in notes {
        let _ = writeln!(s, "- {n}");
    }
    if !notes.is_empty() {
        s.push('\n');
    }
    s.push_str("## Figures\n\n");
    for f in figures.iter().filter(|f| f.ends_with(".svg")) {
        let png = f.trim_end_matches(".svg").to_string() + ".png";
        let what = if f.starts_with("accuracy") {
            "Encrypted accuracy against measured latency, one curve per family, the Pareto front dashed and ringed"
        } else if f.ends_with("-greedy.svg") {
            "Per-step levels and bootstraps of each model's plan, greedy placement"
        } else {
            "Per-step levels and bootstraps of each model's plan"
        };
        let _ = writeln!(s, "{what} ([SVG]({f}), [PNG]({png})):\n\n![{what}]({f})\n");
    }
    s.push_str("Per-image logs (`<model>/he-<params>-<placement>.jsonl`) and the plaintext accuracies (`<model>/plain.json`) are beside this file; rerunning the command continues from them.\n");
    let path = dir.join("results.md");
    std::fs::write(&path, s).with_context(|| format!("writing {}", path.display()))
}
