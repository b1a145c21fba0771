//! Running the `residue` binary from the CLI tests.

use std::process::{Command, Output};

/// Runs `residue` with `args`.
pub fn residue(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_residue"))
        .args(args)
        .output()
        .expect("runs")
}

/// Runs `residue` with `args`, asserts success, returns stdout.
pub fn ok(args: &[&str]) -> String {
    let o = residue(args);
    assert!(
        o.status.success(),
        "{args:?} failed: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8_lossy(&o.stdout).into_owned()
}
