//! `residue params`: the named parameter sets and their security.

use anyhow::Result;
use ckks::params::{PARAM_SETS, Params};

/// Arguments of `residue params`.
#[derive(clap::Args)]
pub struct Args {
    /// Print a JSON list instead of a table.
    #[arg(long)]
    pub json: bool,
}

/// Runs `residue params`.
pub fn run(args: Args) -> Result<()> {
    let mut sums = Vec::new();
    for lit in PARAM_SETS {
        let p = Params::from_literal(lit.clone())?;
        sums.push(p.summary());
    }
    if args.json {
        println!("{}", serde_json::to_string_pretty(&sums)?);
        return Ok(());
    }
    println!(
        "{:<14} {:>5} {:>7} {:>9} {:>6} {:>6} {:>5}  description",
        "name", "log_n", "log_qp", "security", "levels", "slots", "dnum"
    );
    for s in &sums {
        let sec = s
            .security_bits
            .map(|b| format!("{b}-bit"))
            .unwrap_or_else(|| "INSECURE".into());
        println!(
            "{:<14} {:>5} {:>7.1} {:>9} {:>6} {:>6} {:>5}  {}",
            s.name, s.log_n, s.log_qp, sec, s.levels, s.slots, s.dnum, s.description
        );
    }
    Ok(())
}
