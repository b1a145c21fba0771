//! `residue params`: the named parameter sets.

use anyhow::Result;

/// Arguments of `residue params`.
#[derive(clap::Args)]
pub struct Args {
    /// Print a JSON list instead of a table.
    #[arg(long)]
    pub json: bool,
}

/// Runs `residue params`.
pub fn run(_args: Args) -> Result<()> {
    Ok(())
}
