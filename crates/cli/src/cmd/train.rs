//! `residue train`: plaintext training of HE-friendly CNNs (the `train`
//! crate, behind the cli's `train` cargo feature because burn is heavy to
//! build).

pub use train::cli::TrainArgs as Args;

/// Runs `residue train`.
pub fn run(args: Args) -> anyhow::Result<()> {
    train::cli::run(args)
}
