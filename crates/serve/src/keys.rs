//! Evaluation keys: validation of an upload as it streams in, and an
//! in-memory cache of ready backends with a byte budget (keys beyond it are
//! reloaded from the store when a job needs them).
//!
//! An upload's body is the client's `eval/eval.keys` followed by
//! `eval/bootstrap.keys` when the plan bootstraps (each a self-delimiting
//! object of the `ckks` format). Each object's header is checked before
//! its body is read: a secret key is refused by kind, before a byte of it
//! is parsed; then every key is checked against the parameter set, and the
//! set of keys against what the plan needs.

use std::collections::HashMap;
use std::io::Read;
use std::sync::{Arc, Mutex};

use bytes::{Buf, Bytes};
use ckks::bootstrap::BootstrapKeys;
use ckks::serialize::ObjectKind;
use ckks::{EvaluationKeys, Params, Wire};
use runtime::client::KeyNeeds;
use runtime::he::CkksBackend;
use tokio::sync::mpsc;

/// A blocking reader over chunks sent through a channel (the bridge from an
/// async body or store stream to the engine's `Read`-based parser). The
/// sender dropping is the end of the stream; a chunk-level error arrives as
/// `Err`.
pub struct ChanReader {
    rx: mpsc::Receiver<std::io::Result<Bytes>>,
    cur: Bytes,
    /// Bytes read so far.
    pub read: u64,
}

impl ChanReader {
    /// A reader and the sender that feeds it (`depth` chunks in flight).
    pub fn new(depth: usize) -> (mpsc::Sender<std::io::Result<Bytes>>, Self) {
        let (tx, rx) = mpsc::channel(depth);
        (
            tx,
            Self {
                rx,
                cur: Bytes::new(),
                read: 0,
            },
        )
    }
}

impl Read for ChanReader {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        while self.cur.is_empty() {
            match self.rx.blocking_recv() {
                Some(Ok(b)) => self.cur = b,
                Some(Err(e)) => return Err(e),
                None => return Ok(0),
            }
        }
        let n = buf.len().min(self.cur.len());
        buf[..n].copy_from_slice(&self.cur[..n]);
        self.cur.advance(n);
        self.read += n as u64;
        Ok(n)
    }
}

/// Reads exactly `buf.len()` bytes, or none at a clean end: `Ok(false)` if
/// the stream ended before the first byte.
fn read_exact_or_end(r: &mut impl Read, buf: &mut [u8]) -> Result<bool, String> {
    let mut got = 0;
    while got < buf.len() {
        match r.read(&mut buf[got..]) {
            Ok(0) if got == 0 => return Ok(false),
            Ok(0) => return Err("truncated: the body ends inside an object header".into()),
            Ok(k) => got += k,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(format!("reading the body: {e}")),
        }
    }
    Ok(true)
}

/// Parses and validates an upload: one evaluation-keys object and, if
/// `needs.bootstrap`, one bootstrapping-keys object, nothing else.
pub fn parse_keys(
    r: &mut impl Read,
    params: &Arc<Params>,
    needs: &KeyNeeds,
) -> Result<(EvaluationKeys, Option<BootstrapKeys>), String> {
    let hsize = ckks::serialize::header_size(params);
    let mut eval = None;
    let mut boot = None;
    for index in 0.. {
        let mut head = vec![0u8; hsize];
        if !read_exact_or_end(r, &mut head)? {
            if index == 0 {
                return Err("empty body: expected evaluation keys".into());
            }
            break;
        }
        let h = ckks::serialize::peek_header(&head).map_err(|e| format!("object {index}: {e}"))?;
        if h.kind == ObjectKind::SecretKey {
            return Err("a secret key: the server never takes one (send only eval/)".into());
        }
        h.check_params(params)
            .map_err(|e| format!("object {index}: {e}"))?;
        let mut chained = Read::chain(std::io::Cursor::new(head), &mut *r);
        match h.kind {
            ObjectKind::EvaluationKeys | ObjectKind::EvaluationKeysCompact if eval.is_none() => {
                eval = Some(
                    EvaluationKeys::read_from(&mut chained, params)
                        .map_err(|e| format!("evaluation keys: {e}"))?,
                );
            }
            ObjectKind::BootstrapKeys if boot.is_none() => {
                boot = Some(
                    BootstrapKeys::read_from(&mut chained, params)
                        .map_err(|e| format!("bootstrapping keys: {e}"))?,
                );
            }
            k => return Err(format!("object {index}: unexpected {k}")),
        }
    }
    let eval = eval.ok_or("no evaluation keys in the body")?;
    if needs.bootstrap && boot.is_none() {
        return Err(
            "the plan bootstraps: bootstrapping keys must follow the evaluation keys".into(),
        );
    }
    if !needs.bootstrap {
        boot = None;
    }
    if needs.relin && eval.relin.is_none() {
        return Err("the plan multiplies ciphertexts: a relinearization key is needed".into());
    }
    // The network's rotations and, if it bootstraps, bootstrapping's own
    // (for the plan's slot count) at the levels they are used at.
    let mut wanted: Vec<(i64, usize)> = needs.rotations.iter().map(|(&k, &l)| (k, l)).collect();
    if needs.bootstrap {
        let cfg =
            runtime::prepare::bootstrap_config(params, needs.slots).map_err(|e| e.to_string())?;
        wanted.extend(ckks::bootstrap::rotation_levels(params, &cfg));
        let conj = ckks::keys::conjugation_element(params);
        if eval
            .galois
            .as_ref()
            .and_then(|gk| gk.level_of(conj))
            .is_none()
        {
            return Err("the plan bootstraps: the conjugation key is missing".into());
        }
    }
    let missing: Vec<i64> = wanted
        .iter()
        .filter(|&&(k, l)| {
            let g = ckks::keys::rotation_element(params, k);
            g != 1
                && eval
                    .galois
                    .as_ref()
                    .and_then(|gk| gk.level_of(g))
                    .is_none_or(|have| have < l)
        })
        .map(|&(k, _)| k)
        .collect();
    if !missing.is_empty() {
        return Err(format!(
            "{} rotation key(s) the plan needs are missing or below the level it uses them at (steps {:?}{})",
            missing.len(),
            &missing[..missing.len().min(8)],
            if missing.len() > 8 { ", ..." } else { "" }
        ));
    }
    Ok((eval, boot))
}

/// A backend ready to run jobs for one key id, with its size in bytes.
pub struct Loaded {
    /// The backend (evaluator and bootstrapper over the client's keys).
    pub backend: CkksBackend,
    /// Bytes of the uploaded keys (what it holds in memory, roughly).
    pub bytes: u64,
}

/// Backends of recently used keys, up to a byte budget (least recently used
/// evicted first; a key larger than the budget is used and not kept).
pub struct KeyCache {
    budget: u64,
    inner: Mutex<CacheInner>,
}

#[derive(Default)]
struct CacheInner {
    map: HashMap<String, (Arc<Loaded>, u64)>,
    held: u64,
    tick: u64,
}

impl KeyCache {
    /// A cache holding at most `budget` bytes of keys.
    pub fn new(budget: u64) -> Self {
        Self {
            budget,
            inner: Mutex::new(CacheInner::default()),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, CacheInner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The backend for `id`, if cached.
    pub fn get(&self, id: &str) -> Option<Arc<Loaded>> {
        let mut g = self.lock();
        g.tick += 1;
        let t = g.tick;
        g.map.get_mut(id).map(|e| {
            e.1 = t;
            e.0.clone()
        })
    }

    /// Caches `loaded` for `id`, evicting the least recently used beyond
    /// the budget.
    pub fn insert(&self, id: &str, loaded: Arc<Loaded>) {
        if loaded.bytes > self.budget {
            return;
        }
        let mut g = self.lock();
        g.tick += 1;
        let t = g.tick;
        if let Some((old, _)) = g.map.insert(id.to_string(), (loaded.clone(), t)) {
            g.held -= old.bytes;
        }
        g.held += loaded.bytes;
        while g.held > self.budget {
            let Some(victim) = g
                .map
                .iter()
                .filter(|(k, _)| k.as_str() != id)
                .min_by_key(|(_, (_, t))| *t)
                .map(|(k, _)| k.clone())
            else {
                break;
            };
            if let Some((v, _)) = g.map.remove(&victim) {
                g.held -= v.bytes;
            }
        }
    }

    /// Drops `id`'s backend, if held.
    pub fn remove(&self, id: &str) {
        let mut g = self.lock();
        if let Some((v, _)) = g.map.remove(id) {
            g.held -= v.bytes;
        }
    }

    /// Bytes of keys held.
    pub fn held(&self) -> u64 {
        self.lock().held
    }

    /// Keys held.
    pub fn len(&self) -> usize {
        self.lock().map.len()
    }

    /// Whether no key is held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn needs() -> KeyNeeds {
        KeyNeeds {
            rotations: [(1, 0)].into_iter().collect(),
            relin: false,
            bootstrap: false,
            slots: 512,
        }
    }

    fn err(r: Result<(EvaluationKeys, Option<BootstrapKeys>), String>) -> String {
        match r {
            Ok(_) => panic!("accepted"),
            Err(e) => e,
        }
    }

    fn matches_err(r: Result<(EvaluationKeys, Option<BootstrapKeys>), String>) -> bool {
        r.is_err()
    }

    #[test]
    fn refuses_secret_empty_garbage_and_missing_rotations() {
        let p = ckks::Params::named("insecure-n10").unwrap();
        let mut kg = ckks::KeyGenerator::new(p.clone());
        let sk = kg.secret_key();
        let skb = sk.to_secret_bytes().unwrap();
        let e = err(parse_keys(&mut &skb[..], &p, &needs()));
        assert!(e.contains("secret key"), "{e}");
        assert!(matches_err(parse_keys(&mut &b""[..], &p, &needs())));
        assert!(matches_err(parse_keys(
            &mut &b"garbage garbage garbage garbage"[..],
            &p,
            &needs()
        )));
        let gk = kg.galois_keys_at_levels(&sk, &[]).unwrap();
        let ek = EvaluationKeys {
            relin: None,
            galois: Some(gk),
        };
        let b = ek.to_bytes(&p).unwrap();
        let e = err(parse_keys(&mut &b[..], &p, &needs()));
        assert!(e.contains("rotation key"), "{e}");
        let g = ckks::keys::rotation_element(&p, 1);
        let gk = kg.galois_keys_at_levels(&sk, &[(g, 0)]).unwrap();
        let ek = EvaluationKeys {
            relin: None,
            galois: Some(gk),
        };
        let b = ek.to_bytes(&p).unwrap();
        parse_keys(&mut &b[..], &p, &needs()).unwrap();
        // Truncated, and followed by junk.
        assert!(matches_err(parse_keys(
            &mut &b[..b.len() - 10],
            &p,
            &needs()
        )));
        let mut junk = b.clone();
        junk.extend_from_slice(&[0u8; 100]);
        assert!(matches_err(parse_keys(&mut &junk[..], &p, &needs())));
    }

    #[test]
    fn cache_evicts_least_recently_used() {
        // The cache logic is independent of what it holds: exercise it with
        // empty evaluation keys.
        let p = ckks::Params::named("insecure-n10").unwrap();
        let mk = |bytes| {
            let ev = ckks::Evaluator::new(
                p.clone(),
                Arc::new(EvaluationKeys {
                    relin: None,
                    galois: None,
                }),
            )
            .unwrap();
            Arc::new(Loaded {
                backend: CkksBackend::new(ev, None, p.max_slots()),
                bytes,
            })
        };
        let c = KeyCache::new(100);
        c.insert("a", mk(40));
        c.insert("b", mk(40));
        assert!(c.get("a").is_some());
        c.insert("c", mk(40));
        assert!(c.get("b").is_none(), "b was least recently used");
        assert!(c.get("a").is_some() && c.get("c").is_some());
        assert_eq!(c.held(), 80);
        c.insert("huge", mk(1000));
        assert!(c.get("huge").is_none());
        assert_eq!(c.len(), 2);
    }
}
