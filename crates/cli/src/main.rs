//! `residue`: one binary for every step of encrypted CNN inference.

mod alloc;
mod cmd;

use anyhow::Result;
use clap::{Parser, Subcommand};

/// Encrypted CNN inference with cheap skip connections: CKKS-encrypted
/// images through convolutional networks (start with `residue demo`).
#[derive(Parser)]
#[command(name = "residue", version)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// List the named CKKS parameter sets and their security.
    Params(cmd::params::Args),
    /// What a model costs encrypted: levels, bootstraps, rotations, keys, time.
    Analyze(cmd::analyze::Args),
    /// Compile a model to an executable plan.
    Compile(cmd::compile::Args),
    /// Benchmark the engine (`residue bench ckks --params NAME`).
    Bench(cmd::bench::Args),
    /// The main job on a bundled example: encrypted inference of a real
    /// image at 128-bit security, checked against the plaintext model.
    Demo(cmd::demo::Args),
    /// Client: keys for exactly what a plan needs (secret kept apart).
    Keygen(cmd::keygen::Args),
    /// Client: encrypt one input for a plan.
    Encrypt(cmd::encrypt::Args),
    /// Server: run a plan on an encrypted input with evaluation keys only.
    Infer(cmd::infer::Args),
    /// Client: decrypt a result into class and logits.
    Decrypt(cmd::decrypt::Args),
    /// Server: the HTTP service for a compiled model (keys and jobs in a store).
    Serve(cmd::serve::Args),
    /// Client: one encrypted inference through a `residue serve` server.
    Client(cmd::client::Args),
    /// Test accuracy of an ONNX model: plaintext (reference executor), or
    /// encrypted beside plaintext with `--he`.
    Eval(cmd::eval::Args),
    /// Classify one input (PNG or .npy) with an ONNX model.
    Predict(cmd::predict::Args),
    /// The skip-connection result, measured: ResNet against Dirac and
    /// Dirac + shared-source, plaintext and encrypted, with plots.
    Reproduce(cmd::reproduce::Args),
    /// Plaintext accuracy against estimated encrypted cost, a line per
    /// skip family, with a plot (no ciphertext).
    Tradeoff(cmd::tradeoff::Args),
    /// Train an HE-friendly CNN in plaintext (needs the `train` feature).
    #[cfg(feature = "train")]
    Train(cmd::train::Args),
}

fn main() {
    alloc::configure();
    // A reader that closes our stdout early (`residue params | head -1`) is
    // not an error: `println!` panics on EPIPE, so end quietly instead, with
    // the status a process killed by SIGPIPE has (128 + 13).
    let default_hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let msg = info.payload_as_str().unwrap_or("");
        if msg.starts_with("failed printing to stdout") && msg.contains("Broken pipe") {
            std::process::exit(141);
        }
        default_hook(info);
    }));
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    if let Err(e) = run(cli) {
        eprintln!("error: {}", one_line(&e));
        std::process::exit(1);
    }
}

/// The error and its causes on one line, `: `-separated, leaving out a
/// cause whose text the message before it already ends with (library
/// errors often print their source too: "cannot read `x`: No such file
/// (os error 2)" would otherwise repeat the OS error).
fn one_line(e: &anyhow::Error) -> String {
    let mut out = String::new();
    for cause in e.chain() {
        let c = cause.to_string();
        if out.ends_with(&c) {
            continue;
        }
        if !out.is_empty() {
            out.push_str(": ");
        }
        out.push_str(&c);
    }
    out.replace('\n', " ")
}

fn run(cli: Cli) -> Result<()> {
    match cli.command {
        Command::Params(a) => cmd::params::run(a),
        Command::Analyze(a) => cmd::analyze::run(a),
        Command::Compile(a) => cmd::compile::run(a),
        Command::Bench(a) => cmd::bench::run(a),
        Command::Demo(a) => cmd::demo::run(a),
        Command::Keygen(a) => cmd::keygen::run(a),
        Command::Encrypt(a) => cmd::encrypt::run(a),
        Command::Infer(a) => cmd::infer::run(a),
        Command::Decrypt(a) => cmd::decrypt::run(a),
        Command::Serve(a) => cmd::serve::run(a),
        Command::Client(a) => cmd::client::run(a),
        Command::Eval(a) => cmd::eval::run(a),
        Command::Predict(a) => cmd::predict::run(a),
        Command::Reproduce(a) => cmd::reproduce::run(a),
        Command::Tradeoff(a) => cmd::tradeoff::run(a),
        #[cfg(feature = "train")]
        Command::Train(a) => cmd::train::run(a),
    }
}
