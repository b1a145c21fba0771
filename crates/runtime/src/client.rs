//! The client's side: keys for exactly what a plan needs, encryption of an
//! input, decryption of a result; and the key files the server reads.
//!
//! Key directory (`residue keygen --out DIR`):
//! - `secret.key`: the secret key, for the client only (never sent);
//! - `public.key`: the public key (encryption);
//! - `eval/eval.keys`: relinearization and Galois keys (server);
//! - `eval/bootstrap.keys`: the sparse-secret encapsulation keys (server,
//!   only if the plan bootstraps);
//! - `key.id` and `eval/key.id`: the key pair's id ([`key_id`]), which every
//!   encrypted tensor made with the pair records, so that a ciphertext
//!   evaluated or decrypted with another pair's keys is refused rather than
//!   answered with noise.
//!
//! The server reads only `eval/`, and refuses any file there that holds a
//! secret key.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use ckks::bootstrap::BootstrapKeys;
use ckks::keys::rotation_element;
use ckks::{
    Decryptor, Encoder, Encryptor, EvaluationKeys, KeyGenerator, Params, PublicKey, SecretKey, Wire,
};

use crate::backend::Backend;
use crate::error::{Result, RuntimeError};
use crate::exec::execute;
use crate::files::{EncryptedTensor, TensorKind, TensorMeta};
use crate::packing::{pack_batch, unpack_batch};
use crate::prepare::{Prepared, plan_hash};
use crate::sim::Simulator;
use compiler::plan::CompiledPlan;
use rayon::prelude::*;

/// The evaluation keys a plan needs.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct KeyNeeds {
    /// Rotation steps with the highest level each is used at.
    pub rotations: BTreeMap<i64, usize>,
    /// Whether ciphertext multiplications occur (relinearization key).
    pub relin: bool,
    /// Whether the plan bootstraps.
    pub bootstrap: bool,
    /// Slots per ciphertext (the plan's packing; sparse below N/2).
    pub slots: usize,
}

impl KeyNeeds {
    /// Bytes the network's rotation keys add to bootstrapping's (each at
    /// the highest level it is used at, less what bootstrapping's key for
    /// the same Galois element holds): what [`ClientKeys::sizes`] reports as
    /// `galois_network` and the compiler as `network_key_bytes`.
    pub fn network_key_bytes(&self, params: &Params) -> u64 {
        let boot = self.bootstrap_galois(params);
        self.rotations
            .iter()
            .map(|(&k, &l)| added_key_bytes(params, l, boot.get(&rotation_element(params, k))))
            .sum()
    }

    /// Bootstrapping's own Galois keys (element -> level) for this plan's
    /// slots; empty if it does not bootstrap.
    fn bootstrap_galois(&self, params: &Params) -> BTreeMap<u64, usize> {
        if !self.bootstrap {
            return BTreeMap::new();
        }
        crate::prepare::bootstrap_config(params, self.slots)
            .map(|cfg| {
                ckks::bootstrap::galois_levels(params, &cfg)
                    .into_iter()
                    .collect()
            })
            .unwrap_or_default()
    }
}

/// Bytes a network key at `level` adds where bootstrapping holds a key for
/// the same element at `boot` (keygen keeps the higher of the two).
fn added_key_bytes(params: &Params, level: usize, boot: Option<&usize>) -> u64 {
    match boot {
        Some(&b) if b >= level => 0,
        Some(&b) => single_key_bytes(params, level) - single_key_bytes(params, b),
        None => single_key_bytes(params, level),
    }
}

/// Finds exactly the keys `prep` uses by running it once on the simulator
/// (zero input): every rotation step it performs, at the highest level it
/// performs it.
pub fn key_needs(prep: &Prepared, params: &Params) -> Result<KeyNeeds> {
    let sim = Simulator::new(params).with_slots(prep.plan.params.slots);
    let first = &prep.plan.nodes[0].layout_out;
    let level = prep.plan.nodes[0].level_in as usize;
    let cts = (0..first.cts())
        .map(|_| sim.encode(&[], level, sim.default_scale()))
        .collect::<ckks::Result<Vec<_>>>()?;
    execute(&sim, prep, cts, &|_| {})?;
    Ok(KeyNeeds {
        rotations: sim.rotations_used(),
        relin: prep
            .steps
            .iter()
            .zip(&prep.plan.nodes)
            .any(|(s, n)| matches!(s, crate::prepare::Step::Square { .. }) || n.depth >= 2),
        bootstrap: prep.plan.nodes.iter().any(|n| n.bootstrap),
        slots: prep.plan.params.slots,
    })
}

/// A client's keys for one plan.
pub struct ClientKeys {
    /// The secret key (zeroized on drop).
    pub secret: SecretKey,
    /// The public key.
    pub public: PublicKey,
    /// Relinearization and Galois keys.
    pub eval: EvaluationKeys,
    /// Bootstrapping encapsulation keys, if the plan bootstraps.
    pub boot: Option<BootstrapKeys>,
}

/// Sizes of the key groups in bytes (in memory, which is also their size on
/// disk up to headers).
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct KeySizes {
    /// Public key.
    pub public: u64,
    /// Relinearization key.
    pub relin: u64,
    /// What the network's rotation keys add to bootstrapping's Galois keys
    /// ([`KeyNeeds::network_key_bytes`]: a key bootstrapping also has
    /// counts only for the levels beyond bootstrapping's).
    pub galois_network: u64,
    /// Galois keys of bootstrapping (and conjugation), at bootstrapping's
    /// own levels.
    pub galois_bootstrap: u64,
    /// Encapsulation keys.
    pub bootstrap: u64,
    /// Galois keys in all.
    pub galois_keys: u64,
}

impl ClientKeys {
    /// Generates keys for `needs` under `params`: network rotation keys each
    /// restricted to the highest level they are used at; bootstrapping's own
    /// keys as `ckks::KeyGenerator::bootstrap_keys` makes them.
    pub fn generate(params: &Arc<Params>, needs: &KeyNeeds) -> Result<Self> {
        let mut kg = KeyGenerator::new(params.clone());
        let secret = kg.secret_key();
        let public = kg.public_key(&secret);
        let net: Vec<(u64, usize)> = needs
            .rotations
            .iter()
            .map(|(&k, &l)| (rotation_element(params, k), l))
            .filter(|&(g, _)| g != 1)
            .collect();
        let cfg = if needs.bootstrap {
            Some(crate::prepare::bootstrap_config(params, needs.slots)?)
        } else {
            None
        };
        // Independent keys, generated in parallel, each generator with its
        // own OS-seeded randomness: the network's rotation keys in chunks,
        // beside bootstrapping's keys.
        let chunk = net
            .len()
            .div_ceil(rayon::current_num_threads().max(1))
            .max(1);
        let (net_keys, boot_set) = rayon::join(
            || {
                net.par_chunks(chunk)
                    .map(|c| KeyGenerator::new(params.clone()).galois_keys_at_levels(&secret, c))
                    .collect::<ckks::Result<Vec<_>>>()
            },
            || match &cfg {
                Some(cfg) => (
                    None,
                    Some(KeyGenerator::new(params.clone()).bootstrap_keys(&secret, cfg, &[])),
                ),
                None if needs.relin => (
                    Some(KeyGenerator::new(params.clone()).relin_key(&secret)),
                    None,
                ),
                None => (None, None),
            },
        );
        let mut galois = kg.galois_keys_at_levels(&secret, &[])?;
        for g in net_keys? {
            galois.merge(g)?;
        }
        let (relin, boot) = match boot_set {
            (relin, None) => (relin, None),
            (_, Some(set)) => {
                if let Some(g) = set.eval.galois {
                    galois.merge(g)?;
                }
                (set.eval.relin, Some(set.boot))
            }
        };
        Ok(Self {
            secret,
            public,
            eval: EvaluationKeys {
                relin,
                galois: Some(galois),
            },
            boot,
        })
    }

    /// Key sizes by group.
    pub fn sizes(&self, params: &Params, needs: &KeyNeeds) -> KeySizes {
        let g = self.eval.galois.as_ref();
        let boot = needs.bootstrap_galois(params);
        let net: BTreeMap<u64, usize> = needs
            .rotations
            .iter()
            .map(|(&k, &l)| (rotation_element(params, k), l))
            .collect();
        let mut s = KeySizes {
            public: (2 * (params.max_level() + 1) * params.n * 8) as u64,
            relin: self
                .eval
                .relin
                .as_ref()
                .map(|r| r.size_bytes() as u64)
                .unwrap_or(0),
            bootstrap: self
                .boot
                .as_ref()
                .map(|b| b.size_bytes() as u64)
                .unwrap_or(0),
            ..Default::default()
        };
        if let Some(g) = g {
            s.galois_keys = g.elements().len() as u64;
            for e in g.elements() {
                let one = single_key_bytes(params, g.level_of(e).unwrap_or(0));
                let b = boot.get(&e).copied();
                if net.contains_key(&e) {
                    // What bootstrapping's key for `e` would hold; the rest
                    // is the network's.
                    let theirs = b.map_or(0, |b| single_key_bytes(params, b).min(one));
                    s.galois_bootstrap += theirs;
                    s.galois_network += one - theirs;
                } else {
                    s.galois_bootstrap += one;
                }
            }
        }
        s
    }

    /// Writes the key directory (see the module docs).
    pub fn save(&self, params: &Params, dir: &Path) -> Result<()> {
        use std::io::Write;
        std::fs::create_dir_all(dir.join("eval"))?;
        let sk = self.secret.to_secret_bytes()?;
        write_private(&dir.join("secret.key"), &sk)?;
        let mut pk = Vec::new();
        self.public.write_to(params, &mut pk)?;
        write_file(&dir.join("public.key"), |w| w.write_all(&pk))?;
        let id = key_id(&pk);
        for d in [dir.to_path_buf(), dir.join("eval")] {
            write_file(&d.join(KEY_ID_FILE), |w| writeln!(w, "{id}"))?;
        }
        write_file(&dir.join("eval").join("eval.keys"), |w| {
            self.eval.write_to(params, w)
        })?;
        if let Some(b) = &self.boot {
            write_file(&dir.join("eval").join("bootstrap.keys"), |w| {
                b.write_to(params, w)
            })?;
        } else {
            let _ = std::fs::remove_file(dir.join("eval").join("bootstrap.keys"));
        }
        Ok(())
    }
}

fn single_key_bytes(params: &Params, level: usize) -> u64 {
    let dnum = params.dnum_at(level);
    (dnum * 2 * (level + 1 + params.p.len()) * params.n * 8) as u64
}

fn write_file(
    path: &Path,
    f: impl FnOnce(&mut std::io::BufWriter<std::fs::File>) -> std::io::Result<()>,
) -> Result<()> {
    use std::io::Write;
    let tmp = path.with_extension("tmp");
    let mut w = std::io::BufWriter::new(std::fs::File::create(&tmp)?);
    f(&mut w)?;
    w.flush()?;
    drop(w);
    std::fs::rename(&tmp, path)?;
    Ok(())
}

fn write_private(path: &Path, bytes: &[u8]) -> Result<()> {
    use std::io::Write;
    let mut o = std::fs::OpenOptions::new();
    o.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        o.mode(0o600);
    }
    let mut f = o.open(path)?;
    f.write_all(bytes)?;
    Ok(())
}

/// Name of the key-id file in a key directory and in its `eval/`.
pub const KEY_ID_FILE: &str = "key.id";

/// A key pair's id: the first 16 bytes of the SHA-256 of its `public.key`
/// file, in hex (32 characters). Public: it identifies the pair, and says
/// nothing of the secret that the public key does not.
pub fn key_id(public_key_file: &[u8]) -> String {
    use sha2::{Digest, Sha256};
    crate::prepare::hex(&Sha256::digest(public_key_file)[..16])
}

/// Fails unless `id` is a key id as [`key_id`] writes it.
pub fn check_key_id(id: &str) -> Result<()> {
    if id.len() == 32 && id.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
        Ok(())
    } else {
        Err(RuntimeError::Format(
            "a key id is 32 lowercase hex characters".into(),
        ))
    }
}

/// The key id of a key directory (a client's, or its `eval/`): its
/// `key.id`, else computed from its `public.key`; `None` when it has
/// neither (keys made before key ids).
///
/// # Errors
/// A `key.id` that is not one, or an unreadable file.
pub fn load_key_id(dir: &Path) -> Result<Option<String>> {
    if let Some(id) = read_key_id_file(dir)? {
        return Ok(Some(id));
    }
    let p = dir.join("public.key");
    if p.is_file() {
        return Ok(Some(key_id(&std::fs::read(&p)?)));
    }
    Ok(None)
}

/// The id in `dir`'s `key.id` (checked to be one), `None` without the file.
fn read_key_id_file(dir: &Path) -> Result<Option<String>> {
    let f = dir.join(KEY_ID_FILE);
    if !f.is_file() {
        return Ok(None);
    }
    let b = read_bounded(&f, 64, "a key id")?;
    let id = String::from_utf8_lossy(&b).trim_end().to_string();
    check_key_id(&id).map_err(|e| RuntimeError::Format(format!("{}: {e}", f.display())))?;
    Ok(Some(id))
}

/// Refuses a tensor whose recorded key pair is not the one of `dir`'s keys
/// (`what`: what `dir` holds, for the message). Passes when either side
/// has no id (files from before key ids).
///
/// # Errors
/// [`RuntimeError::Format`] naming both ids.
pub fn check_same_keys(t: &EncryptedTensor, dir: &Path, what: &str) -> Result<()> {
    if let (Some(a), Some(b)) = (&t.meta.key_id, load_key_id(dir)?)
        && *a != b
    {
        return Err(RuntimeError::Format(format!(
            "the ciphertext was encrypted under key pair {a}, the {what} in {} are of key pair {b}: use the keys of the keygen whose public key encrypted it",
            dir.display()
        )));
    }
    Ok(())
}

/// Loads the client's secret and public keys from a key directory and
/// checks that they are a pair ([`check_key_pair`]).
pub fn load_client_keys(params: &Arc<Params>, dir: &Path) -> Result<(SecretKey, PublicKey)> {
    let (sk, pk) = (load_secret_key(params, dir)?, load_public_key(params, dir)?);
    check_key_pair(params, &sk, &pk).map_err(|e| {
        RuntimeError::Format(format!(
            "{} and {}: {e}",
            dir.join("secret.key").display(),
            dir.join("public.key").display()
        ))
    })?;
    Ok((sk, pk))
}

/// Loads the secret key (`secret.key`) of a key directory: what decryption
/// needs.
pub fn load_secret_key(params: &Arc<Params>, dir: &Path) -> Result<SecretKey> {
    let skb = zeroize::Zeroizing::new(read_bounded(
        &dir.join("secret.key"),
        ckks::serialize::secret_key_size(params) as u64 + 4096,
        KEY_OF_THIS_SET,
    )?);
    SecretKey::from_secret_bytes(&skb, params)
        .map_err(|e| RuntimeError::Format(format!("{}: {e}", dir.join("secret.key").display())))
}

/// Loads the public key (`public.key`) of a key directory: what
/// encryption needs. Where the directory has a `key.id`, the file must
/// hash to it ([`key_id`]): a public key changed after keygen (a flipped
/// coefficient still below its prime reads as a valid key, and would
/// encrypt what the secret key cannot decrypt) is refused.
pub fn load_public_key(params: &Arc<Params>, dir: &Path) -> Result<PublicKey> {
    let pkb = read_bounded(
        &dir.join("public.key"),
        ckks::serialize::public_key_size(params, false) as u64 + 4096,
        KEY_OF_THIS_SET,
    )?;
    if let Some(id) = read_key_id_file(dir)?
        && key_id(&pkb) != id
    {
        return Err(RuntimeError::Format(format!(
            "{}: not the public key of key pair {id} ({}): damaged or from another key directory",
            dir.join("public.key").display(),
            dir.join(KEY_ID_FILE).display()
        )));
    }
    PublicKey::from_bytes(&pkb, params)
        .map_err(|e| RuntimeError::Format(format!("{}: {e}", dir.join("public.key").display())))
}

/// Largest coefficient (in units of the scale) a zero encrypted with the
/// public key may decrypt to: fresh encryption noise is below 1e-8 at
/// every set; a changed key coefficient of any consequence is far above.
const KEY_PAIR_TOLERANCE: f64 = 1.0 / (1u64 << 20) as f64;

/// Checks that `pk` is `sk`'s public key: a zero encrypted with it at the
/// top level decrypts to (nearly) zero. A key file with a changed
/// coefficient that still lies below its prime reads as a valid key, but
/// the pair would encrypt what it cannot decrypt (or decrypt garbage);
/// this refuses such a pair, and keys from two different key directories.
pub fn check_key_pair(params: &Arc<Params>, sk: &SecretKey, pk: &PublicKey) -> Result<()> {
    let enc = Encoder::new(params.clone());
    let zero = enc.encode_real(
        &[0.0],
        params.max_level(),
        params.default_scale(),
        params.n / 2,
    )?;
    let ct = Encryptor::new(params.clone()).encrypt_pk(pk, &zero)?;
    let back = enc.decode_coeffs(&Decryptor::new(sk).decrypt(&ct)?)?;
    let worst = back.iter().fold(0.0f64, |m, c| m.max(c.abs()));
    // NaN compares false: refused too
    if worst.is_nan() || worst > KEY_PAIR_TOLERANCE {
        return Err(RuntimeError::Format(format!(
            "not a key pair: a zero encrypted with the public key decrypts to values up to {worst:.3e} (at most {KEY_PAIR_TOLERANCE:.1e}); a key file is damaged or from another key directory"
        )));
    }
    Ok(())
}

/// How [`read_bounded`] names a key file's limit in its message.
const KEY_OF_THIS_SET: &str = "a key of this parameter set (keys made for another set?)";

/// Reads `path`, refusing a file over `max` bytes (`what`: what the file
/// should hold, for the message).
fn read_bounded(path: &Path, max: u64, what: &str) -> Result<Vec<u8>> {
    let len = std::fs::metadata(path)
        .map_err(|e| RuntimeError::Format(format!("{}: {e}", path.display())))?
        .len();
    if len > max {
        return Err(RuntimeError::Format(format!(
            "{}: {len} bytes, more than {what}, {max}",
            path.display()
        )));
    }
    Ok(std::fs::read(path)?)
}

/// The server's keys, read from a directory that must hold only evaluation
/// keys: every file's header is checked, a secret key is refused, and so
/// is a second file of evaluation or bootstrapping keys.
pub fn load_eval_keys(
    params: &Arc<Params>,
    dir: &Path,
) -> Result<(EvaluationKeys, Option<BootstrapKeys>)> {
    // Each with the file it was read from: a second file of a kind is
    // refused (which one was used would depend on the directory's order).
    let mut eval: Option<(EvaluationKeys, std::path::PathBuf)> = None;
    let mut boot: Option<(BootstrapKeys, std::path::PathBuf)> = None;
    fn once<T>(first: &Option<(T, std::path::PathBuf)>, path: &Path) -> Result<()> {
        match first {
            Some((_, f)) => Err(RuntimeError::Format(format!(
                "{}: holds the same kind of keys as {}: one file of each kind",
                path.display(),
                f.display()
            ))),
            None => Ok(()),
        }
    }
    // `keygen`'s whole key directory (secret, public and `eval/`) given
    // where its `eval/` is meant: name the right path instead of refusing
    // whichever client key the scan meets first.
    let sub = dir.join("eval");
    if sub.is_dir() && (dir.join("public.key").is_file() || dir.join("secret.key").is_file()) {
        return Err(RuntimeError::Format(format!(
            "{}: a client key directory (public and secret keys); the server reads only its evaluation keys: pass {}",
            dir.display(),
            sub.display()
        )));
    }
    let entries = std::fs::read_dir(dir)
        .map_err(|e| RuntimeError::Format(format!("{}: {e}", dir.display())))?;
    for ent in entries {
        let path = ent?.path();
        if !path.is_file() {
            continue;
        }
        if path.file_name() == Some(std::ffi::OsStr::new(KEY_ID_FILE)) {
            // Not a key: checked to be exactly an id (it cannot hold one).
            read_key_id_file(dir)?;
            continue;
        }
        let mut head = vec![0u8; 256];
        let n = {
            use std::io::Read;
            let mut f = std::fs::File::open(&path)?;
            let mut got = 0;
            while got < head.len() {
                let k = f.read(&mut head[got..])?;
                if k == 0 {
                    break;
                }
                got += k;
            }
            got
        };
        let h = match ckks::serialize::peek_header(&head[..n]) {
            Ok(h) => h,
            Err(e) => {
                return Err(RuntimeError::Format(format!("{}: {e}", path.display())));
            }
        };
        h.check_params(params)
            .map_err(|e| RuntimeError::Format(format!("{}: {e}", path.display())))?;
        let open = || -> Result<std::io::BufReader<std::fs::File>> {
            Ok(std::io::BufReader::new(std::fs::File::open(&path)?))
        };
        use ckks::serialize::ObjectKind as K;
        match h.kind {
            K::SecretKey => {
                return Err(RuntimeError::Format(format!(
                    "{} holds a secret key: the server never reads one",
                    path.display()
                )));
            }
            K::EvaluationKeys | K::EvaluationKeysCompact => {
                once(&eval, &path)?;
                let mut r = open()?;
                let k = EvaluationKeys::read_from(&mut r, params)
                    .map_err(|e| RuntimeError::Format(format!("{}: {e}", path.display())))?;
                at_end(&mut r, &path)?;
                eval = Some((k, path.clone()));
            }
            K::BootstrapKeys => {
                once(&boot, &path)?;
                let mut r = open()?;
                let k = BootstrapKeys::read_from(&mut r, params)
                    .map_err(|e| RuntimeError::Format(format!("{}: {e}", path.display())))?;
                at_end(&mut r, &path)?;
                boot = Some((k, path.clone()));
            }
            other => {
                return Err(RuntimeError::Format(format!(
                    "{}: a {other}, not an evaluation key",
                    path.display()
                )));
            }
        }
    }
    let (eval, _) =
        eval.ok_or_else(|| RuntimeError::Format(format!("{}: no evaluation keys", dir.display())))?;
    Ok((eval, boot.map(|(b, _)| b)))
}

/// Refuses bytes after the one object a key file holds (a file with
/// something appended is not the file keygen wrote).
fn at_end(r: &mut impl std::io::Read, path: &Path) -> Result<()> {
    let mut extra = [0u8; 1];
    if r.read(&mut extra)? != 0 {
        return Err(RuntimeError::Format(format!(
            "{}: trailing bytes after the keys",
            path.display()
        )));
    }
    Ok(())
}

/// Encrypts a `[C, H, W]` input for `plan` with the public key (the plan's
/// input layout, value scale and level). For a batched plan this is a
/// batch of one image ([`encrypt_batch`]).
pub fn encrypt(
    plan: &CompiledPlan,
    params: &Arc<Params>,
    pk: &PublicKey,
    x: &[f64],
) -> Result<EncryptedTensor> {
    encrypt_batch(plan, params, pk, &[x])
}

/// Encrypts 1 to `plan.batch()` `[C, H, W]` inputs into one tensor, image
/// `b` interleaved at `slot + b` ([`crate::packing::pack_batch`]); fewer
/// images than the batch leave the other places zero, and the tensor
/// records how many are real.
///
/// Errors: no image or more than the batch, a wrong size or a non-finite
/// value (naming the image).
pub fn encrypt_batch<T: AsRef<[f64]>>(
    plan: &CompiledPlan,
    params: &Arc<Params>,
    pk: &PublicKey,
    xs: &[T],
) -> Result<EncryptedTensor> {
    let first = plan
        .nodes
        .first()
        .ok_or_else(|| RuntimeError::Plan("a plan without steps".into()))?;
    let factor = plan.value_scales.first().copied().unwrap_or(1.0);
    let packed = pack_batch(&first.layout_out, xs, factor)?;
    let enc = Encoder::new(params.clone());
    let mut encryptor = Encryptor::new(params.clone());
    // Lazy levels: the input is encrypted at the lowest level it needs.
    let level = first.level_in as usize;
    let slots = plan.params.slots;
    let cts = packed
        .iter()
        .map(|v| {
            let pt = enc.encode_real(v, level, params.default_scale(), slots)?;
            encryptor.encrypt_pk(pk, &pt)
        })
        .collect::<ckks::Result<Vec<_>>>()?;
    Ok(EncryptedTensor {
        meta: TensorMeta {
            kind: TensorKind::Input,
            plan_hash: plan_hash(plan),
            params: params.name().to_string(),
            layout: first.layout_out,
            factor,
            images: xs.len(),
            key_id: None,
        },
        cts,
    })
}

/// Decrypts a result tensor of one image into logits.
///
/// Errors: a result of several images (use [`decrypt_batch`]), or what
/// [`decrypt_batch`] refuses.
pub fn decrypt(params: &Arc<Params>, sk: &SecretKey, t: &EncryptedTensor) -> Result<Vec<f64>> {
    if t.meta.images != 1 {
        return Err(RuntimeError::Input(format!(
            "the result holds {} images: decrypt it as a batch",
            t.meta.images
        )));
    }
    Ok(decrypt_batch(params, sk, t)?.remove(0))
}

/// Decrypts a result tensor into one logit vector per image it holds
/// (`meta.images`, in the order they were encrypted).
pub fn decrypt_batch(
    params: &Arc<Params>,
    sk: &SecretKey,
    t: &EncryptedTensor,
) -> Result<Vec<Vec<f64>>> {
    if t.meta.kind != TensorKind::Output {
        return Err(RuntimeError::Format(
            "this is an encrypted input, not a result".into(),
        ));
    }
    let enc = Encoder::new(params.clone());
    let dec = Decryptor::new(sk);
    let slots = t
        .cts
        .iter()
        .map(|c| {
            let pt = dec.decrypt(c)?;
            let v: Vec<f64> = enc.decode(&pt).into_iter().map(|z| z.re).collect();
            check_not_noise(params, c, &v)?;
            Ok(v)
        })
        .collect::<Result<Vec<Vec<f64>>>>()?;
    unpack_batch(&t.meta.layout, &slots, t.meta.factor, t.meta.images)
}

/// Refuses a decryption that is noise: a ciphertext decrypted with the
/// wrong secret key (or with a corrupted coefficient) gives slot values
/// spread over the whole modulus, `q_0 / (2 * scale)` in magnitude, where
/// a correct one stays far below (the runtime scales every value to about
/// 1, and no value above `q_0 / (2 * scale)` can be decrypted at all). The
/// bound is a sixteenth of that; the key-pair id catches mismatched keys
/// first where the files carry one ([`check_same_keys`]), this catches
/// them where they do not.
fn check_not_noise(params: &Params, c: &ckks::Ciphertext, slots: &[f64]) -> Result<()> {
    let bound = params.q[0] as f64 / (2.0 * c.scale()) / 16.0;
    let worst = slots.iter().fold(0.0f64, |m, v| m.max(v.abs()));
    if worst.is_nan() || worst > bound {
        return Err(RuntimeError::Format(format!(
            "the result decrypts to noise (slot values up to {worst:.3e}, at most {bound:.1e} for a valid result): the secret key is not the one whose public key encrypted the input, or the ciphertext is corrupted"
        )));
    }
    Ok(())
}
