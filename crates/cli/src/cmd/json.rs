//! The `--json` convention of every subcommand that reports numbers:
//! `--json` prints the report as JSON on stdout instead of text, and
//! `--json-out FILE` writes the same JSON to FILE (the text still goes to
//! stdout); both may be given.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use serde::Serialize;

/// The two flags, for subcommands that flatten them into their arguments.
#[derive(clap::Args, Clone, Debug, Default)]
pub struct JsonArgs {
    /// Print the report as JSON on stdout instead of text.
    #[arg(long)]
    pub json: bool,
    /// Also write the report as JSON to FILE.
    #[arg(long, value_name = "FILE")]
    pub json_out: Option<PathBuf>,
}

impl JsonArgs {
    /// Writes `value` as pretty JSON: on stdout with `--json`, to the file
    /// of `--json-out`.
    pub fn emit(&self, value: &impl Serialize) -> Result<()> {
        emit(self.json, self.json_out.as_deref(), value)
    }
}

/// Writes `value` as pretty JSON: on stdout when `json`, to `out` when given.
pub fn emit(json: bool, out: Option<&Path>, value: &impl Serialize) -> Result<()> {
    let s = serde_json::to_string_pretty(value)?;
    if json {
        println!("{s}");
    }
    if let Some(p) = out {
        std::fs::write(p, format!("{s}\n")).with_context(|| format!("writing {}", p.display()))?;
    }
    Ok(())
}
