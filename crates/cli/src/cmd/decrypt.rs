//! `residue decrypt`: the client decrypts a result into logits.

use std::path::PathBuf;

use anyhow::{Context, Result, bail};

/// Arguments of `residue decrypt`.
#[derive(clap::Args)]
pub struct Args {
    /// Key directory (from `residue keygen`).
    #[arg(long)]
    pub keys: PathBuf,
    /// The encrypted result.
    #[arg(long)]
    pub input: PathBuf,
    /// Parameter set of the keys (default: read from the result's header).
    #[arg(long)]
    pub params: Option<String>,
    /// Print JSON: `class` and `logits` of the first image, and `results`,
    /// one `{ "class", "logits" }` per image (in the order encrypted; one
    /// entry for an unbatched result).
    #[arg(long)]
    pub json: bool,
    /// Also write the JSON report to FILE (what `--json` prints).
    #[arg(long, value_name = "FILE")]
    pub json_out: Option<PathBuf>,
}

/// Runs `residue decrypt`.
pub fn run(args: Args) -> Result<()> {
    let name = match &args.params {
        Some(n) => n.clone(),
        None => {
            let mut head = [0u8; 4096];
            use std::io::Read;
            let mut f = std::fs::File::open(&args.input)
                .with_context(|| format!("reading {}", args.input.display()))?;
            let n = f.read(&mut head)?;
            let meta = peek_params(&head[..n]);
            match meta {
                Some(m) => m,
                None => bail!("{} is not an encrypted result", args.input.display()),
            }
        }
    };
    let params = ckks::Params::named(&name)?;
    let t = runtime::files::EncryptedTensor::load(&params, &args.input)
        .with_context(|| format!("reading {}", args.input.display()))?;
    runtime::client::check_same_keys(&t, &args.keys, "keys")
        .with_context(|| format!("{}", args.input.display()))?;
    // With the public key beside it, the secret key is checked to be its
    // pair (a damaged secret key decrypts to noise).
    let sk = if args.keys.join("public.key").is_file() {
        runtime::client::load_client_keys(&params, &args.keys)?.0
    } else {
        runtime::client::load_secret_key(&params, &args.keys)?
    };
    let all = runtime::client::decrypt_batch(&params, &sk, &t)?;
    let results = super::he::results_json(&all);
    if args.json || args.json_out.is_some() {
        let first = &all[0];
        let v = serde_json::json!({
            "class": nn::exec::argmax(first),
            "logits": first,
            "results": results,
        });
        super::json::emit(args.json, args.json_out.as_deref(), &v)?;
    }
    if !args.json {
        super::he::print_results(&all);
    }
    Ok(())
}

/// The parameter-set name in an encrypted tensor's metadata.
fn peek_params(b: &[u8]) -> Option<String> {
    if b.len() < 11 || b[..4] != runtime::files::MAGIC {
        return None;
    }
    let len = u32::from_le_bytes([b[7], b[8], b[9], b[10]]) as usize;
    let meta = b.get(11..11 + len)?;
    let v: serde_json::Value = serde_json::from_slice(meta).ok()?;
    v.get("params")?.as_str().map(str::to_string)
}
