//! `residue params`: the named parameter sets and their security.

use std::path::PathBuf;

use anyhow::Result;
use ckks::params::{PARAM_SETS, Params};

/// Arguments of `residue params`.
#[derive(clap::Args)]
pub struct Args {
    /// Print a JSON list instead of a table.
    #[arg(long)]
    pub json: bool,
    /// Also write the JSON report to FILE (what `--json` prints).
    #[arg(long, value_name = "FILE")]
    pub json_out: Option<PathBuf>,
}

/// Runs `residue params`.
pub fn run(args: Args) -> Result<()> {
    let mut rows = Vec::new();
    for lit in PARAM_SETS {
        let p = Params::from_literal(lit.clone())?;
        rows.push((
            p.summary(),
            ckks::bootstrap::working_level(&p),
            ckks::bootstrap::fresh_level(&p),
        ));
    }
    if args.json || args.json_out.is_some() {
        let list = rows
            .iter()
            .map(|(s, w, f)| {
                let mut v = serde_json::to_value(s)?;
                v["working_level"] = (*w).into();
                v["fresh_level"] = (*f).into();
                Ok(v)
            })
            .collect::<Result<Vec<_>>>()?;
        super::json::emit(args.json, args.json_out.as_deref(), &list)?;
        if args.json {
            return Ok(());
        }
    }
    println!(
        "{:<20} {:>5} {:>7} {:>9} {:>6} {:>7} {:>5} {:>6} {:>5}  description",
        "name", "log_n", "log_qp", "security", "levels", "working", "fresh", "slots", "dnum"
    );
    for (s, w, f) in &rows {
        let sec = s
            .security_bits
            .map(|b| format!("{b}-bit"))
            .unwrap_or_else(|| "INSECURE".into());
        println!(
            "{:<20} {:>5} {:>7.1} {:>9} {:>6} {:>7} {:>5} {:>6} {:>5}  {}",
            s.name, s.log_n, s.log_qp, sec, s.levels, w, f, s.slots, s.dnum, s.description
        );
    }
    println!(
        "levels: the top level (primes - 1); working: where computation runs after a \
         bootstrap (L_eff; below the bootstrapping primes, for a set that bootstraps); \
         fresh: the highest level an input can be encrypted at (working plus the \
         bootstrapping primes as large as the scale; plans go above working only where \
         that saves a bootstrap)"
    );
    Ok(())
}
