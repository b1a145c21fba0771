//! `residue-train`: the `residue train` subcommand as a standalone binary
//! (it builds without the rest of the CLI; `scripts/train-zoo.sh` uses it).

fn main() {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .init();
    let args = train::cli::TrainArgs::parse();
    if let Err(e) = train::cli::run(args) {
        eprintln!("error: {e:#}");
        std::process::exit(1);
    }
}
