//! One versioned little-endian binary format for parameters, plaintexts,
//! ciphertexts and keys.
//!
//! Everything read is untrusted. A reader already knows its parameter set
//! (a server can pick it by name with [`peek_header`] first) and checks every
//! field against it: magic, version, object kind, parameter id and name,
//! levels, degrees, slot counts, scales, limb and digit counts, Galois
//! elements, and every coefficient against its prime. Sizes are computed from
//! the parameter set, never taken from the input, and when the input length is
//! known ([`Wire::from_bytes`]) it is checked before anything is allocated.
//! Reading from a stream ([`Wire::read_from`]) allocates at most one
//! polynomial (sized by the parameters) ahead of the data that fills it.
//! Malformed input gives [`CkksError::Malformed`], never a panic.
//!
//! # Layout
//!
//! Every object starts with a header:
//!
//! | bytes | field                                            |
//! |-------|--------------------------------------------------|
//! | 4     | magic `RSDU`                                     |
//! | 2     | format version (u16, currently 2)                |
//! | 1     | object kind (u8, see [`ObjectKind`])             |
//! | 8     | parameter set id ([`Params::id`], u64)           |
//! | 1     | length of the parameter set name (1..=64)        |
//! | len   | the name, UTF-8                                  |
//!
//! followed by the body of its kind. Integers are little-endian; a scale is
//! the f64's IEEE bits as a u64. A polynomial is its limbs one after the
//! other, each N coefficients as u64, limb k modulo the k-th prime of its
//! context (q_0..q_level for plaintexts and ciphertexts, all Q then all P for
//! public keys, q_0..q_level then all P for switching keys), in NTT form, each
//! below its prime.
//!
//! - params: log_n u8, log_scale u8, |Q| u8, |P| u8, the Q primes and the P
//!   primes (u64 each).
//! - plaintext: level u32, slots u32, scale, one polynomial of level+1 limbs.
//! - ciphertext: level u32, slots u32, scale, degree u8 (1 or 2), then
//!   degree+1 polynomials of level+1 limbs.
//! - secret key: limbs u32 (= |Q|+|P|), one polynomial (must be ternary and
//!   consistent across primes). Kept apart from the [`Wire`] trait: see
//!   [`SecretKey::to_secret_bytes`].
//! - public key: limbs u32 (= |Q|), b, a.
//! - switching key (inside relin, Galois and bootstrapping keys): digits u32
//!   (= dnum at the key's level), limbs u32 (= level + 1 + |P|, which gives
//!   the level: the key switches ciphertexts up to it), b_0..b_{dnum-1},
//!   a_0..a_{dnum-1}. Relinearization keys and the s' -> s bootstrapping key
//!   must be at the top level, the s -> s' key at level 0; a Galois key may
//!   be at any level. (Version 1 had no level: every key was at the top, and
//!   the s -> s' key carried zero limbs.)
//! - relin key: one switching key.
//! - Galois keys: count u32 (<= N), then per key, in strictly increasing
//!   element order: element u64 (odd, < 2N), switching key.
//! - evaluation keys: flags u8 (bit 0: relin key present, bit 1: Galois keys
//!   present, other bits zero), then the relin key body and/or the Galois
//!   keys body.
//! - compact public key, relin key, Galois keys, evaluation keys (kinds
//!   9..=12, see [`Compact`]): as the full forms, except that each public or
//!   switching key writes a 32-byte seed in place of its `a` polynomials:
//!   public key: limbs u32, seed, b; switching key: digits u32, limbs u32,
//!   seed, b_0..b_{dnum-1}. The `a`s are expanded from the seed as
//!   [`Compact`] documents (ChaCha20, rejection sampling per coefficient),
//!   which makes the keys about half the size.
//!
//! [`Wire::from_bytes`] rejects trailing bytes; [`Wire::read_from`] reads
//! exactly one object and leaves the stream after it.

use crate::bootstrap::BootstrapKeys;
use crate::ciphertext::Ciphertext;
use crate::encoding::Plaintext;
use crate::error::{CkksError, Result};
use crate::evaluator::EvaluationKeys;
use crate::keys::{GaloisKeys, PublicKey, RelinKey, SecretKey, SwitchingKey};
use crate::params::{self, Params};
use crate::ring::Poly;
use std::collections::BTreeMap;
use std::fmt;
use std::io::{self, Read, Write};
use std::sync::Arc;
use zeroize::{Zeroize, Zeroizing};

/// The four bytes every serialized object starts with.
pub const MAGIC: [u8; 4] = *b"RSDU";
/// The format version this build writes and reads.
pub const FORMAT_VERSION: u16 = 2;
/// Longest parameter set name the format accepts.
pub const MAX_NAME_LEN: usize = 64;

/// What a serialized object holds (the header's kind byte).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ObjectKind {
    /// A parameter set reference (name, id, primes).
    Params = 1,
    /// A [`Plaintext`].
    Plaintext = 2,
    /// A [`Ciphertext`].
    Ciphertext = 3,
    /// A [`SecretKey`] (client storage only).
    SecretKey = 4,
    /// A [`PublicKey`].
    PublicKey = 5,
    /// A [`RelinKey`].
    RelinKey = 6,
    /// A set of [`GaloisKeys`].
    GaloisKeys = 7,
    /// An [`EvaluationKeys`] bundle.
    EvaluationKeys = 8,
    /// A [`PublicKey`] with a seed for `a` ([`Compact`]).
    PublicKeyCompact = 9,
    /// A [`RelinKey`] with a seed for its `a`s ([`Compact`]).
    RelinKeyCompact = 10,
    /// [`GaloisKeys`] with seeds for their `a`s ([`Compact`]).
    GaloisKeysCompact = 11,
    /// An [`EvaluationKeys`] bundle with seeds for its `a`s ([`Compact`]).
    EvaluationKeysCompact = 12,
    /// The sparse-secret encapsulation keys of bootstrapping ([`BootstrapKeys`]).
    BootstrapKeys = 13,
}

impl ObjectKind {
    /// The kind with this tag byte, if any.
    pub fn from_u8(b: u8) -> Option<Self> {
        Some(match b {
            1 => Self::Params,
            2 => Self::Plaintext,
            3 => Self::Ciphertext,
            4 => Self::SecretKey,
            5 => Self::PublicKey,
            6 => Self::RelinKey,
            7 => Self::GaloisKeys,
            8 => Self::EvaluationKeys,
            9 => Self::PublicKeyCompact,
            10 => Self::RelinKeyCompact,
            11 => Self::GaloisKeysCompact,
            12 => Self::EvaluationKeysCompact,
            13 => Self::BootstrapKeys,
            _ => return None,
        })
    }

    /// Human-readable name.
    pub fn name(self) -> &'static str {
        match self {
            Self::Params => "parameter set",
            Self::Plaintext => "plaintext",
            Self::Ciphertext => "ciphertext",
            Self::SecretKey => "secret key",
            Self::PublicKey => "public key",
            Self::RelinKey => "relinearization key",
            Self::GaloisKeys => "Galois key set",
            Self::EvaluationKeys => "evaluation key bundle",
            Self::PublicKeyCompact => "compact public key",
            Self::RelinKeyCompact => "compact relinearization key",
            Self::GaloisKeysCompact => "compact Galois key set",
            Self::EvaluationKeysCompact => "compact evaluation key bundle",
            Self::BootstrapKeys => "bootstrapping key pair",
        }
    }
}

impl fmt::Display for ObjectKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The header of a serialized object, readable before choosing parameters.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Header {
    /// Format version.
    pub version: u16,
    /// What the object holds.
    pub kind: ObjectKind,
    /// Id of the parameter set the object was made with.
    pub params_id: u64,
    /// Name of that parameter set.
    pub params_name: String,
}

impl Header {
    /// Instantiates the named parameter set and checks its id against the header.
    ///
    /// A server holding parameters already should look them up by
    /// `params_name` and compare `params_id` itself instead (instantiating a
    /// large set builds its NTT tables).
    pub fn params(&self) -> Result<Arc<Params>> {
        let p = Params::named(&self.params_name).map_err(|_| {
            malformed(format!(
                "unknown parameter set `{}`",
                self.params_name.escape_debug()
            ))
        })?;
        if p.id != self.params_id {
            return Err(id_mismatch(self.params_id, &p));
        }
        Ok(p)
    }

    /// Checks that this header is for `params` (name and id).
    pub fn check_params(&self, params: &Params) -> Result<()> {
        if self.params_name != params.name() {
            return Err(malformed(format!(
                "object is for parameter set `{}`, reader uses `{}`",
                self.params_name.escape_debug(),
                params.name()
            )));
        }
        if self.params_id != params.id {
            return Err(id_mismatch(self.params_id, params));
        }
        Ok(())
    }
}

/// Reads the header at the start of `bytes` without reading the body.
///
/// Checks magic, version, kind and the name's length and encoding; the
/// parameter id is only checked against a parameter set later.
pub fn peek_header(bytes: &[u8]) -> Result<Header> {
    let mut inp = Input::slice(bytes);
    read_header(&mut inp)
}

/// Bytes taken by the header for `params`.
pub fn header_size(params: &Params) -> usize {
    4 + 2 + 1 + 8 + 1 + params.name().len()
}

fn malformed(msg: impl Into<String>) -> CkksError {
    CkksError::Malformed(msg.into())
}

fn id_mismatch(found: u64, params: &Params) -> CkksError {
    malformed(format!(
        "parameter id mismatch: object has {found:#018x}, `{}` here is {:#018x} \
         (same name, different primes or build)",
        params.name(),
        params.id
    ))
}

fn to_io(e: CkksError) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidInput, e)
}

// ---------------------------------------------------------------------------
// Input: bounded, checked reading.
// ---------------------------------------------------------------------------

mod private {
    use super::*;

    /// A reader that knows, when it can, how many bytes are left.
    pub struct Input<R> {
        pub(super) r: R,
        /// Bytes left when the input is a slice; `None` for a stream.
        pub(super) remaining: Option<usize>,
    }

    /// The per-kind body codec behind [`Wire`](super::Wire).
    pub trait Body: Sized {
        /// Kind tag the object is written with.
        const KIND: ObjectKind;
        /// Kind tags the reader takes (a full key type also reads its compact form).
        fn accepts(kind: ObjectKind) -> bool {
            kind == Self::KIND
        }
        /// Checks that the object is consistent and made with `params`.
        fn check(&self, params: &Params) -> Result<()>;
        /// Bytes of the body (after the header).
        fn body_size(&self, params: &Params) -> usize;
        /// Writes the body.
        fn write_body<W: Write>(&self, params: &Params, w: &mut W) -> io::Result<()>;
        /// Reads and validates the body of an object of kind `kind`.
        fn read_body<R: Read>(
            inp: &mut Input<R>,
            kind: ObjectKind,
            params: &Arc<Params>,
        ) -> Result<Self>;
    }
}

use private::{Body, Input};

impl<'a> Input<&'a [u8]> {
    fn slice(bytes: &'a [u8]) -> Self {
        Self {
            r: bytes,
            remaining: Some(bytes.len()),
        }
    }

    /// Errors if any input is left.
    fn finish(&self) -> Result<()> {
        match self.remaining {
            Some(0) | None => Ok(()),
            Some(n) => Err(malformed(format!("{n} trailing bytes after the object"))),
        }
    }
}

impl<R: Read> Input<R> {
    fn stream(r: R) -> Self {
        Self { r, remaining: None }
    }

    /// Errors if fewer than `bytes` bytes are known to be left.
    fn need(&self, bytes: usize, what: &str) -> Result<()> {
        match self.remaining {
            Some(rem) if rem < bytes => Err(malformed(format!(
                "truncated input: {what} needs {bytes} bytes, only {rem} left"
            ))),
            _ => Ok(()),
        }
    }

    fn fill(&mut self, buf: &mut [u8], what: &str) -> Result<()> {
        self.need(buf.len(), what)?;
        self.r.read_exact(buf).map_err(|e| {
            if e.kind() == io::ErrorKind::UnexpectedEof {
                malformed(format!("truncated input: ends inside {what}"))
            } else {
                malformed(format!("read error in {what}: {e}"))
            }
        })?;
        if let Some(rem) = &mut self.remaining {
            *rem -= buf.len();
        }
        Ok(())
    }

    fn array<const K: usize>(&mut self, what: &str) -> Result<[u8; K]> {
        let mut b = [0u8; K];
        self.fill(&mut b, what)?;
        Ok(b)
    }

    fn u8(&mut self, what: &str) -> Result<u8> {
        Ok(self.array::<1>(what)?[0])
    }

    fn u16(&mut self, what: &str) -> Result<u16> {
        Ok(u16::from_le_bytes(self.array(what)?))
    }

    fn u32(&mut self, what: &str) -> Result<u32> {
        Ok(u32::from_le_bytes(self.array(what)?))
    }

    fn u64(&mut self, what: &str) -> Result<u64> {
        Ok(u64::from_le_bytes(self.array(what)?))
    }

    /// Reads a polynomial whose limb k lies modulo ring prime `idx[k]`,
    /// checking every coefficient. Temporary buffers are zeroized, so this
    /// is safe for secret material; on error the partial data is zeroized.
    fn poly(&mut self, params: &Params, idx: &[usize], what: &str) -> Result<Poly> {
        let n = params.n;
        let total = idx
            .len()
            .checked_mul(n)
            .ok_or_else(|| malformed("size overflow"))?;
        self.need(total.saturating_mul(8), what)?;
        let mut data: Zeroizing<Vec<u64>> = Zeroizing::new(Vec::with_capacity(total));
        let mut buf: Zeroizing<Vec<u8>> = Zeroizing::new(vec![0u8; n * 8]);
        for (k, &mi) in idx.iter().enumerate() {
            self.fill(&mut buf, what)?;
            let q = params.ring.moduli[mi].value;
            for (j, ch) in buf.chunks_exact(8).enumerate() {
                let mut b = [0u8; 8];
                b.copy_from_slice(ch);
                let x = u64::from_le_bytes(b);
                b.zeroize();
                if x >= q {
                    return Err(malformed(format!(
                        "{what}: coefficient {j} of limb {k} is not below its modulus {q}"
                    )));
                }
                data.push(x);
            }
        }
        Ok(Poly {
            n,
            data: std::mem::take(&mut *data),
        })
    }
}

fn read_header<R: Read>(inp: &mut Input<R>) -> Result<Header> {
    let magic: [u8; 4] = inp.array("magic bytes")?;
    if magic != MAGIC {
        return Err(malformed(format!(
            "bad magic bytes {magic:02x?}: not a Residue object (expected \"RSDU\")"
        )));
    }
    let version = inp.u16("format version")?;
    if version != FORMAT_VERSION {
        return Err(malformed(format!(
            "unsupported format version {version} (this build reads version {FORMAT_VERSION})"
        )));
    }
    let k = inp.u8("object kind")?;
    let kind =
        ObjectKind::from_u8(k).ok_or_else(|| malformed(format!("unknown object kind {k}")))?;
    let params_id = inp.u64("parameter id")?;
    let len = inp.u8("parameter name length")? as usize;
    if len == 0 || len > MAX_NAME_LEN {
        return Err(malformed(format!(
            "parameter name length {len} outside 1..={MAX_NAME_LEN}"
        )));
    }
    let mut name = [0u8; MAX_NAME_LEN];
    inp.fill(&mut name[..len], "parameter name")?;
    let params_name = std::str::from_utf8(&name[..len])
        .map_err(|_| malformed("parameter name is not UTF-8"))?
        .to_string();
    Ok(Header {
        version,
        kind,
        params_id,
        params_name,
    })
}

/// Reads a header, checks it is for `params` and that `accepts` takes its
/// kind (`kind` names what is expected), and returns the kind.
fn expect_header<R: Read>(
    inp: &mut Input<R>,
    kind: ObjectKind,
    accepts: fn(ObjectKind) -> bool,
    params: &Params,
) -> Result<ObjectKind> {
    let h = read_header(inp)?;
    if !accepts(h.kind) {
        return Err(malformed(format!("expected a {kind}, found a {}", h.kind)));
    }
    h.check_params(params)?;
    Ok(h.kind)
}

fn write_header<W: Write>(w: &mut W, kind: ObjectKind, params: &Params) -> io::Result<()> {
    let name = params.name().as_bytes();
    if name.is_empty() || name.len() > MAX_NAME_LEN {
        return Err(to_io(malformed(format!(
            "parameter name length {} outside 1..={MAX_NAME_LEN}",
            name.len()
        ))));
    }
    w.write_all(&MAGIC)?;
    w.write_all(&FORMAT_VERSION.to_le_bytes())?;
    w.write_all(&[kind as u8])?;
    w.write_all(&params.id.to_le_bytes())?;
    w.write_all(&[name.len() as u8])?;
    w.write_all(name)
}

/// Writes a polynomial limb by limb through a zeroized scratch buffer.
fn write_poly<W: Write>(w: &mut W, p: &Poly) -> io::Result<()> {
    let mut buf: Zeroizing<Vec<u8>> = Zeroizing::new(vec![0u8; p.n * 8]);
    for limb in p.data.chunks(p.n) {
        for (o, &x) in buf.chunks_exact_mut(8).zip(limb) {
            o.copy_from_slice(&x.to_le_bytes());
        }
        w.write_all(&buf[..limb.len() * 8])?;
    }
    Ok(())
}

fn check_poly(p: &Poly, params: &Params, limbs: usize, what: &str) -> Result<()> {
    if p.n != params.n || p.data.len() != limbs * params.n {
        return Err(malformed(format!(
            "{what}: holds {} coefficients of degree {}, expected {limbs} limbs of degree {}",
            p.data.len(),
            p.n,
            params.n
        )));
    }
    Ok(())
}

fn check_same_params(own: &Params, params: &Params) -> Result<()> {
    if own.id != params.id {
        return Err(CkksError::ParamsMismatch);
    }
    Ok(())
}

fn check_level(params: &Params, level: u64) -> Result<usize> {
    if level > params.max_level() as u64 {
        return Err(malformed(format!(
            "level {level} above the maximum {} of `{}`",
            params.max_level(),
            params.name()
        )));
    }
    Ok(level as usize)
}

fn check_slots(params: &Params, slots: u64) -> Result<usize> {
    if slots == 0 || !slots.is_power_of_two() || slots > params.max_slots() as u64 {
        return Err(malformed(format!(
            "slot count {slots} is not a power of two in 1..={}",
            params.max_slots()
        )));
    }
    Ok(slots as usize)
}

fn check_scale(scale: f64) -> Result<f64> {
    if !scale.is_finite() || scale < 1.0 {
        return Err(malformed(format!("scale {scale} is not finite and >= 1")));
    }
    Ok(scale)
}

fn qp_all(params: &Params) -> Vec<usize> {
    (0..params.q.len() + params.p.len()).collect()
}

// ---------------------------------------------------------------------------
// The public trait.
// ---------------------------------------------------------------------------

/// Binary serialization of engine objects in the Residue format (see the
/// module documentation for the layout).
///
/// Implemented for [`Plaintext`], [`Ciphertext`], [`PublicKey`],
/// [`RelinKey`], [`GaloisKeys`], [`EvaluationKeys`] (whose readers also take
/// the compact forms) and their [`Compact`] forms. The secret key has its
/// own, separate functions ([`SecretKey::to_secret_bytes`] and friends).
pub trait Wire: Body {
    /// The object kind written in the header.
    fn object_kind() -> ObjectKind {
        Self::KIND
    }

    /// Exact number of bytes [`Wire::to_bytes`] produces.
    fn serialized_size(&self, params: &Params) -> usize {
        header_size(params) + self.body_size(params)
    }

    /// Writes the object for `params` (which it must have been made with).
    ///
    /// An inconsistent object or a parameter mismatch gives an
    /// [`io::ErrorKind::InvalidInput`] error wrapping the [`CkksError`].
    fn write_to<W: Write>(&self, params: &Params, w: &mut W) -> io::Result<()> {
        self.check(params).map_err(to_io)?;
        write_header(w, Self::KIND, params)?;
        self.write_body(params, w)
    }

    /// The serialized object as bytes.
    fn to_bytes(&self, params: &Params) -> Result<Vec<u8>> {
        self.check(params)?;
        let mut out = Vec::with_capacity(self.serialized_size(params));
        write_header(&mut out, Self::KIND, params)
            .and_then(|_| self.write_body(params, &mut out))
            .map_err(|e| malformed(format!("write failed: {e}")))?;
        Ok(out)
    }

    /// Reads and validates one object from a stream, leaving the stream just
    /// after it.
    fn read_from<R: Read>(r: &mut R, params: &Arc<Params>) -> Result<Self> {
        let mut inp = Input::stream(r);
        let kind = expect_header(&mut inp, Self::KIND, Self::accepts, params)?;
        Self::read_body(&mut inp, kind, params)
    }

    /// Reads and validates an object that must fill `bytes` exactly.
    fn from_bytes(bytes: &[u8], params: &Arc<Params>) -> Result<Self> {
        let mut inp = Input::slice(bytes);
        let kind = expect_header(&mut inp, Self::KIND, Self::accepts, params)?;
        let v = Self::read_body(&mut inp, kind, params)?;
        inp.finish()?;
        Ok(v)
    }
}

impl Wire for Plaintext {}
impl Wire for Ciphertext {}
impl Wire for PublicKey {}
impl Wire for RelinKey {}
impl Wire for GaloisKeys {}
impl Wire for EvaluationKeys {}
impl Wire for Compact<PublicKey> {}
impl Wire for Compact<RelinKey> {}
impl Wire for Compact<GaloisKeys> {}
impl Wire for Compact<EvaluationKeys> {}
impl Wire for BootstrapKeys {}

// ---------------------------------------------------------------------------
// Sizes.
// ---------------------------------------------------------------------------

/// Bytes of a serialized ciphertext at `level` with `degree` (1 or 2).
pub fn ciphertext_size(params: &Params, level: usize, degree: usize) -> usize {
    header_size(params) + 17 + (degree + 1) * (level + 1) * params.n * 8
}

/// Bytes of a serialized plaintext at `level`.
pub fn plaintext_size(params: &Params, level: usize) -> usize {
    header_size(params) + 16 + (level + 1) * params.n * 8
}

/// Bytes of a serialized secret key.
pub fn secret_key_size(params: &Params) -> usize {
    header_size(params) + 4 + (params.q.len() + params.p.len()) * params.n * 8
}

// ---------------------------------------------------------------------------
// Plaintexts and ciphertexts.
// ---------------------------------------------------------------------------

impl Body for Plaintext {
    const KIND: ObjectKind = ObjectKind::Plaintext;

    fn check(&self, params: &Params) -> Result<()> {
        if self.params_id != params.id {
            return Err(CkksError::ParamsMismatch);
        }
        check_level(params, self.level as u64)?;
        check_slots(params, self.slots as u64)?;
        check_scale(self.scale)?;
        check_poly(&self.poly, params, self.level + 1, "plaintext")
    }

    fn body_size(&self, params: &Params) -> usize {
        plaintext_size(params, self.level) - header_size(params)
    }

    fn write_body<W: Write>(&self, _params: &Params, w: &mut W) -> io::Result<()> {
        w.write_all(&(self.level as u32).to_le_bytes())?;
        w.write_all(&(self.slots as u32).to_le_bytes())?;
        w.write_all(&self.scale.to_bits().to_le_bytes())?;
        write_poly(w, &self.poly)
    }

    fn read_body<R: Read>(
        inp: &mut Input<R>,
        _kind: ObjectKind,
        params: &Arc<Params>,
    ) -> Result<Self> {
        let level = check_level(params, inp.u32("plaintext level")? as u64)?;
        let slots = check_slots(params, inp.u32("plaintext slots")? as u64)?;
        let scale = check_scale(f64::from_bits(inp.u64("plaintext scale")?))?;
        let poly = inp.poly(params, &params.q_idx(level), "plaintext polynomial")?;
        Ok(Plaintext {
            poly,
            level,
            scale,
            slots,
            params_id: params.id,
        })
    }
}

impl Body for Ciphertext {
    const KIND: ObjectKind = ObjectKind::Ciphertext;

    fn check(&self, params: &Params) -> Result<()> {
        if self.params_id != params.id {
            return Err(CkksError::ParamsMismatch);
        }
        check_level(params, self.level as u64)?;
        check_slots(params, self.slots as u64)?;
        check_scale(self.scale)?;
        if !(2..=3).contains(&self.c.len()) {
            return Err(malformed(format!(
                "ciphertext has {} components, expected 2 or 3",
                self.c.len()
            )));
        }
        self.c
            .iter()
            .try_for_each(|p| check_poly(p, params, self.level + 1, "ciphertext"))
    }

    fn body_size(&self, params: &Params) -> usize {
        ciphertext_size(params, self.level, self.c.len().saturating_sub(1)) - header_size(params)
    }

    fn write_body<W: Write>(&self, _params: &Params, w: &mut W) -> io::Result<()> {
        w.write_all(&(self.level as u32).to_le_bytes())?;
        w.write_all(&(self.slots as u32).to_le_bytes())?;
        w.write_all(&self.scale.to_bits().to_le_bytes())?;
        w.write_all(&[(self.c.len() - 1) as u8])?;
        self.c.iter().try_for_each(|p| write_poly(w, p))
    }

    fn read_body<R: Read>(
        inp: &mut Input<R>,
        _kind: ObjectKind,
        params: &Arc<Params>,
    ) -> Result<Self> {
        let level = check_level(params, inp.u32("ciphertext level")? as u64)?;
        let slots = check_slots(params, inp.u32("ciphertext slots")? as u64)?;
        let scale = check_scale(f64::from_bits(inp.u64("ciphertext scale")?))?;
        let degree = inp.u8("ciphertext degree")? as usize;
        if !(1..=2).contains(&degree) {
            return Err(malformed(format!(
                "ciphertext degree {degree}, expected 1 or 2"
            )));
        }
        let idx = params.q_idx(level);
        inp.need(
            (degree + 1) * idx.len() * params.n * 8,
            "ciphertext polynomials",
        )?;
        let c = (0..=degree)
            .map(|i| inp.poly(params, &idx, &format!("ciphertext component {i}")))
            .collect::<Result<Vec<_>>>()?;
        Ok(Ciphertext {
            c,
            level,
            scale,
            slots,
            params_id: params.id,
        })
    }
}

// ---------------------------------------------------------------------------
// Public and switching keys, full and compact.
// ---------------------------------------------------------------------------

/// Length of the seed that replaces the uniform `a` polynomials of a key in
/// the compact forms.
pub const SEED_LEN: usize = 32;

/// Expands a seed into uniform polynomials, the way the compact forms define
/// it: a ChaCha20 stream (`rand_chacha` 0.3, `ChaCha20Rng::from_seed`) read
/// as little-endian u64 words; for each polynomial in order, each limb k in
/// order (prime q = the ring prime `idx[k]`), each coefficient in order, the
/// first word below `2^64 - 1 - ((2^64 - 1) mod q)` gives the coefficient
/// `word mod q`. Fixed here, not borrowed from the sampler, so that it never
/// changes with the key generator.
pub(crate) fn expand_uniform(
    params: &Params,
    idx: &[usize],
    seed: &[u8; SEED_LEN],
    count: usize,
) -> Vec<Poly> {
    use rand::{RngCore, SeedableRng};
    let mut rng = rand_chacha::ChaCha20Rng::from_seed(*seed);
    let n = params.n;
    (0..count)
        .map(|_| {
            let mut out = Poly::zero(n, idx.len());
            for (k, &mi) in idx.iter().enumerate() {
                let q = params.ring.moduli[mi].value;
                let bound = u64::MAX - u64::MAX % q;
                for x in out.limb_mut(k) {
                    *x = loop {
                        let r = rng.next_u64();
                        if r < bound {
                            break r % q;
                        }
                    };
                }
            }
            out
        })
        .collect()
}

/// A key whose uniform `a` polynomials are expanded from seeds, so that its
/// serialized form carries 32-byte seeds instead of them: about half the
/// size of the full form.
///
/// Generated as such on the client by [`KeyGenerator`](crate::KeyGenerator)
/// (`public_key_compact`, `relin_key_compact`, `galois_keys_compact`,
/// `galois_keys_at_levels_compact`; [`Compact::<EvaluationKeys>::from_parts`]
/// bundles them): a fresh seed is drawn, the `a`s expanded from it, fresh
/// errors sampled and the `b`s computed. A compact key is never made from a
/// full key or the other way round: two forms of one key that share their
/// error but not their `a` give away the secret (`b' - b = (a - a')s`).
/// Expanding a compact key ([`Compact::key`], or reading it with the full
/// reader) gives the same key, not another one.
///
/// Expansion of a seed into the `a` polynomials of one public key or one
/// switching key (a_0, then a_1, ...): a ChaCha20 stream
/// (`rand_chacha::ChaCha20Rng::from_seed`) read as u64 words (`next_u64`);
/// for each polynomial, each limb in order (the key's Q primes q_0..q_level
/// then the P primes; for a public key the Q primes), each coefficient in order, the first word below
/// `2^64 - 1 - ((2^64 - 1) mod q)` gives the coefficient `word mod q`. Any reader of the
/// full key type also reads the compact form ([`Wire::from_bytes`] on
/// [`PublicKey`], [`RelinKey`], [`GaloisKeys`], [`EvaluationKeys`]),
/// expanding the seeds; `Compact<K>::from_bytes` reads only the compact form.
#[derive(Clone)]
pub struct Compact<K> {
    key: K,
    /// One seed per public key, relin key, or Galois element (increasing
    /// element order); for a bundle, the relin key's first.
    seeds: Vec<[u8; SEED_LEN]>,
}

impl<K> Compact<K> {
    /// The key (with its `a` polynomials expanded).
    pub fn key(&self) -> &K {
        &self.key
    }

    /// The key, dropping the seeds.
    pub fn into_key(self) -> K {
        self.key
    }
}

impl<K> Compact<K> {
    /// Wraps a key generated from `seeds` (one per public key, relin key or
    /// Galois element, in that order).
    pub(crate) fn new(key: K, seeds: Vec<[u8; SEED_LEN]>) -> Self {
        Self { key, seeds }
    }
}

impl Compact<EvaluationKeys> {
    /// A bundle of compact keys generated by
    /// [`KeyGenerator`](crate::KeyGenerator) (`relin_key_compact`,
    /// `galois_keys_compact`, `galois_keys_at_levels_compact`); both must
    /// belong to one parameter set.
    pub fn from_parts(
        relin: Option<Compact<RelinKey>>,
        galois: Option<Compact<GaloisKeys>>,
    ) -> Result<Self> {
        if let (Some(r), Some(g)) = (&relin, &galois) {
            check_same_params(&r.key.params, &g.key.params)?;
        }
        let mut seeds = Vec::new();
        let relin = relin.map(|c| {
            seeds.extend(c.seeds);
            c.key
        });
        let galois = galois.map(|c| {
            seeds.extend(c.seeds);
            c.key
        });
        Ok(Self {
            key: EvaluationKeys { relin, galois },
            seeds,
        })
    }
}

fn check_seed_count<K>(c: &Compact<K>, want: usize) -> Result<()> {
    if c.seeds.len() != want {
        return Err(malformed(format!(
            "compact key holds {} seeds, expected {want}",
            c.seeds.len()
        )));
    }
    Ok(())
}

/// Bytes of a serialized public key (`compact`: with a seed for `a`).
pub fn public_key_size(params: &Params, compact: bool) -> usize {
    let poly = params.q.len() * params.n * 8;
    header_size(params) + 4 + if compact { SEED_LEN + poly } else { 2 * poly }
}

/// Bytes of a switching key at `level` inside a body.
fn switching_key_body_size(params: &Params, level: usize, compact: bool) -> usize {
    let limbs = level + 1 + params.p.len();
    let half = params.dnum_at(level) * limbs * params.n * 8;
    8 + if compact { SEED_LEN + half } else { 2 * half }
}

/// Bytes of a serialized relinearization key (`compact`: with a seed for the `a`s).
pub fn relin_key_size(params: &Params, compact: bool) -> usize {
    header_size(params) + switching_key_body_size(params, params.max_level(), compact)
}

/// Bytes of serialized Galois keys (`compact`: with seeds for the `a`s);
/// each key's size follows from its level.
pub fn galois_keys_size(gk: &GaloisKeys, compact: bool) -> usize {
    header_size(&gk.params) + galois_keys_body_size(gk, compact)
}

fn galois_keys_body_size(gk: &GaloisKeys, compact: bool) -> usize {
    4 + gk
        .keys
        .values()
        .map(|k| 8 + switching_key_body_size(&gk.params, k.level, compact))
        .sum::<usize>()
}

fn write_public_key<W: Write>(
    pk: &PublicKey,
    seed: Option<&[u8; SEED_LEN]>,
    params: &Params,
    w: &mut W,
) -> io::Result<()> {
    w.write_all(&(params.q.len() as u32).to_le_bytes())?;
    match seed {
        Some(s) => {
            w.write_all(s)?;
            write_poly(w, &pk.b)
        }
        None => {
            write_poly(w, &pk.b)?;
            write_poly(w, &pk.a)
        }
    }
}

fn read_public_key<R: Read>(
    inp: &mut Input<R>,
    params: &Arc<Params>,
    compact: bool,
) -> Result<(PublicKey, Option<[u8; SEED_LEN]>)> {
    let limbs = inp.u32("public key limb count")? as usize;
    if limbs != params.q.len() {
        return Err(malformed(format!(
            "public key has {limbs} limbs, `{}` needs {}",
            params.name(),
            params.q.len()
        )));
    }
    let idx = params.q_idx(params.max_level());
    let poly = limbs * params.n * 8;
    let (b, a, seed) = if compact {
        inp.need(SEED_LEN + poly, "compact public key")?;
        let seed: [u8; SEED_LEN] = inp.array("public key seed")?;
        let b = inp.poly(params, &idx, "public key b")?;
        let a = expand_uniform(params, &idx, &seed, 1).pop();
        (b, a, Some(seed))
    } else {
        inp.need(2 * poly, "public key polynomials")?;
        let b = inp.poly(params, &idx, "public key b")?;
        let a = inp.poly(params, &idx, "public key a")?;
        (b, Some(a), None)
    };
    let a = a.ok_or_else(|| malformed("public key seed expansion failed"))?;
    Ok((
        PublicKey {
            params: params.clone(),
            b,
            a,
        },
        seed,
    ))
}

/// Checks a key's shape: a level within the chain, `dnum_at(level)` digits,
/// `level + 1 + |P|` limbs each.
fn check_switching_key(k: &SwitchingKey, params: &Params, what: &str) -> Result<()> {
    if k.level > params.max_level() {
        return Err(malformed(format!(
            "{what}: level {} above the top {}",
            k.level,
            params.max_level()
        )));
    }
    let dnum = params.dnum_at(k.level);
    if k.b.len() != dnum || k.a.len() != dnum {
        return Err(malformed(format!(
            "{what}: {} and {} digits, expected {dnum}",
            k.b.len(),
            k.a.len()
        )));
    }
    let limbs = k.level + 1 + params.p.len();
    k.b.iter()
        .chain(&k.a)
        .try_for_each(|p| check_poly(p, params, limbs, what))
}

/// Checks a key's shape and that it is at exactly `level`.
fn check_switching_key_at(
    k: &SwitchingKey,
    params: &Params,
    level: usize,
    what: &str,
) -> Result<()> {
    if k.level != level {
        return Err(malformed(format!(
            "{what}: at level {}, must be at level {level}",
            k.level
        )));
    }
    check_switching_key(k, params, what)
}

fn check_top_switching_key(k: &SwitchingKey, params: &Params, what: &str) -> Result<()> {
    check_switching_key_at(k, params, params.max_level(), what)
}

fn write_switching_key<W: Write>(
    k: &SwitchingKey,
    seed: Option<&[u8; SEED_LEN]>,
    params: &Params,
    w: &mut W,
) -> io::Result<()> {
    w.write_all(&(k.b.len() as u32).to_le_bytes())?;
    w.write_all(&((k.level + 1 + params.p.len()) as u32).to_le_bytes())?;
    match seed {
        Some(s) => {
            w.write_all(s)?;
            k.b.iter().try_for_each(|p| write_poly(w, p))
        }
        None => k.b.iter().chain(&k.a).try_for_each(|p| write_poly(w, p)),
    }
}

/// Reads a switching key at whatever level its limb count gives; callers
/// that need a particular level check it.
fn read_switching_key<R: Read>(
    inp: &mut Input<R>,
    params: &Params,
    compact: bool,
    what: &str,
) -> Result<(SwitchingKey, Option<[u8; SEED_LEN]>)> {
    let digits = inp.u32("switching key digit count")? as usize;
    let limbs = inp.u32("switching key limb count")? as usize;
    let (np, nq) = (params.p.len(), params.q.len());
    if limbs <= np || limbs > nq + np {
        return Err(malformed(format!(
            "{what}: {limbs} limbs, `{}` keys have {} to {}",
            params.name(),
            np + 1,
            nq + np
        )));
    }
    let level = limbs - np - 1;
    let dnum = params.dnum_at(level);
    if digits != dnum {
        return Err(malformed(format!(
            "{what}: {digits} digits for {limbs} limbs (level {level}), `{}` needs {dnum}",
            params.name()
        )));
    }
    let half = dnum * limbs * params.n * 8;
    inp.need(if compact { SEED_LEN + half } else { 2 * half }, what)?;
    let seed = if compact {
        Some(inp.array::<SEED_LEN>("switching key seed")?)
    } else {
        None
    };
    let idx = params.qp_idx(level);
    let mut b = Vec::with_capacity(dnum);
    for j in 0..dnum {
        b.push(inp.poly(params, &idx, &format!("{what} b_{j}"))?);
    }
    let a = match &seed {
        Some(s) => expand_uniform(params, &idx, s, dnum),
        None => {
            let mut a = Vec::with_capacity(dnum);
            for j in 0..dnum {
                a.push(inp.poly(params, &idx, &format!("{what} a_{j}"))?);
            }
            a
        }
    };
    Ok((SwitchingKey { level, b, a }, seed))
}

/// Reads a switching key that must be at the top level.
fn read_top_switching_key<R: Read>(
    inp: &mut Input<R>,
    params: &Params,
    compact: bool,
    what: &str,
) -> Result<(SwitchingKey, Option<[u8; SEED_LEN]>)> {
    let (k, seed) = read_switching_key(inp, params, compact, what)?;
    check_top_switching_key(&k, params, what)?;
    Ok((k, seed))
}

fn check_galois_element(params: &Params, g: u64) -> Result<()> {
    let two_n = 2 * params.n as u64;
    if g & 1 == 0 || g >= two_n {
        return Err(malformed(format!(
            "Galois element {g} is not odd and below 2N = {two_n}"
        )));
    }
    Ok(())
}

fn check_galois_keys(gk: &GaloisKeys, params: &Params) -> Result<()> {
    check_same_params(&gk.params, params)?;
    for (&g, k) in &gk.keys {
        check_galois_element(params, g)?;
        check_switching_key(k, params, "Galois key")?;
    }
    Ok(())
}

fn write_galois_keys<W: Write>(
    gk: &GaloisKeys,
    seeds: Option<&[[u8; SEED_LEN]]>,
    params: &Params,
    w: &mut W,
) -> io::Result<()> {
    w.write_all(&(gk.keys.len() as u32).to_le_bytes())?;
    for (i, (&g, k)) in gk.keys.iter().enumerate() {
        w.write_all(&g.to_le_bytes())?;
        write_switching_key(k, seeds.and_then(|s| s.get(i)), params, w)?;
    }
    Ok(())
}

fn read_galois_keys<R: Read>(
    inp: &mut Input<R>,
    params: &Arc<Params>,
    compact: bool,
) -> Result<(GaloisKeys, Vec<[u8; SEED_LEN]>)> {
    let count = inp.u32("Galois key count")? as usize;
    if count > params.n {
        return Err(malformed(format!(
            "{count} Galois keys, more than the N = {} distinct elements",
            params.n
        )));
    }
    // the smallest key is at level 0; each key's full size is checked as read
    let per_key = 8 + switching_key_body_size(params, 0, compact);
    inp.need(count.saturating_mul(per_key), "Galois keys")?;
    let mut keys = BTreeMap::new();
    let mut seeds = Vec::new();
    let mut prev: Option<u64> = None;
    for i in 0..count {
        let g = inp.u64("Galois element")?;
        check_galois_element(params, g)?;
        if prev.is_some_and(|p| g <= p) {
            return Err(malformed(format!(
                "Galois element {g} (key {i}) repeated or out of increasing order"
            )));
        }
        prev = Some(g);
        let (k, seed) = read_switching_key(inp, params, compact, &format!("Galois key {g}"))?;
        keys.insert(g, k);
        seeds.extend(seed);
    }
    Ok((
        GaloisKeys {
            params: params.clone(),
            keys,
        },
        seeds,
    ))
}

const FLAG_RELIN: u8 = 1;
const FLAG_GALOIS: u8 = 2;

fn check_evaluation_keys(k: &EvaluationKeys, params: &Params) -> Result<()> {
    if let Some(r) = &k.relin {
        check_same_params(&r.params, params)?;
        check_top_switching_key(&r.key, params, "relinearization key")?;
    }
    if let Some(g) = &k.galois {
        check_galois_keys(g, params)?;
    }
    Ok(())
}

fn evaluation_keys_body_size(k: &EvaluationKeys, params: &Params, compact: bool) -> usize {
    1 + k.relin.as_ref().map_or(0, |_| {
        switching_key_body_size(params, params.max_level(), compact)
    }) + k
        .galois
        .as_ref()
        .map_or(0, |g| galois_keys_body_size(g, compact))
}

fn write_evaluation_keys<W: Write>(
    k: &EvaluationKeys,
    seeds: Option<&[[u8; SEED_LEN]]>,
    params: &Params,
    w: &mut W,
) -> io::Result<()> {
    let flags = if k.relin.is_some() { FLAG_RELIN } else { 0 }
        | if k.galois.is_some() { FLAG_GALOIS } else { 0 };
    w.write_all(&[flags])?;
    let mut seeds = seeds;
    if let Some(r) = &k.relin {
        write_switching_key(&r.key, seeds.and_then(|s| s.first()), params, w)?;
        seeds = seeds.map(|s| s.get(1..).unwrap_or_default());
    }
    if let Some(g) = &k.galois {
        write_galois_keys(g, seeds, params, w)?;
    }
    Ok(())
}

fn read_evaluation_keys<R: Read>(
    inp: &mut Input<R>,
    params: &Arc<Params>,
    compact: bool,
) -> Result<(EvaluationKeys, Vec<[u8; SEED_LEN]>)> {
    let flags = inp.u8("evaluation key flags")?;
    if flags & !(FLAG_RELIN | FLAG_GALOIS) != 0 {
        return Err(malformed(format!(
            "unknown evaluation key flags {flags:#04x}"
        )));
    }
    let mut seeds = Vec::new();
    let relin = if flags & FLAG_RELIN != 0 {
        let (key, seed) = read_top_switching_key(inp, params, compact, "relinearization key")?;
        seeds.extend(seed);
        Some(RelinKey {
            params: params.clone(),
            key,
        })
    } else {
        None
    };
    let galois = if flags & FLAG_GALOIS != 0 {
        let (g, s) = read_galois_keys(inp, params, compact)?;
        seeds.extend(s);
        Some(g)
    } else {
        None
    };
    Ok((EvaluationKeys { relin, galois }, seeds))
}

fn is_kind(kind: ObjectKind, full: ObjectKind, compact: ObjectKind) -> Result<bool> {
    if kind == compact {
        Ok(true)
    } else if kind == full {
        Ok(false)
    } else {
        Err(malformed(format!("expected a {full}, found a {kind}")))
    }
}

impl Body for PublicKey {
    const KIND: ObjectKind = ObjectKind::PublicKey;

    fn accepts(kind: ObjectKind) -> bool {
        matches!(kind, ObjectKind::PublicKey | ObjectKind::PublicKeyCompact)
    }

    fn check(&self, params: &Params) -> Result<()> {
        check_same_params(&self.params, params)?;
        check_poly(&self.b, params, params.q.len(), "public key b")?;
        check_poly(&self.a, params, params.q.len(), "public key a")
    }

    fn body_size(&self, params: &Params) -> usize {
        public_key_size(params, false) - header_size(params)
    }

    fn write_body<W: Write>(&self, params: &Params, w: &mut W) -> io::Result<()> {
        write_public_key(self, None, params, w)
    }

    fn read_body<R: Read>(
        inp: &mut Input<R>,
        kind: ObjectKind,
        params: &Arc<Params>,
    ) -> Result<Self> {
        let compact = is_kind(kind, Self::KIND, ObjectKind::PublicKeyCompact)?;
        Ok(read_public_key(inp, params, compact)?.0)
    }
}

impl Body for Compact<PublicKey> {
    const KIND: ObjectKind = ObjectKind::PublicKeyCompact;

    fn check(&self, params: &Params) -> Result<()> {
        check_seed_count(self, 1)?;
        self.key.check(params)
    }

    fn body_size(&self, params: &Params) -> usize {
        public_key_size(params, true) - header_size(params)
    }

    fn write_body<W: Write>(&self, params: &Params, w: &mut W) -> io::Result<()> {
        write_public_key(&self.key, self.seeds.first(), params, w)
    }

    fn read_body<R: Read>(
        inp: &mut Input<R>,
        _kind: ObjectKind,
        params: &Arc<Params>,
    ) -> Result<Self> {
        let (key, seed) = read_public_key(inp, params, true)?;
        Ok(Self {
            key,
            seeds: seed.into_iter().collect(),
        })
    }
}

/// Bootstrapping keys: the s -> s' key (level 0: it lives modulo q_0 * P
/// only, which the reader enforces) and the s' -> s key (top level).
impl Body for BootstrapKeys {
    const KIND: ObjectKind = ObjectKind::BootstrapKeys;

    fn check(&self, params: &Params) -> Result<()> {
        if self.params_id != params.id {
            return Err(CkksError::ParamsMismatch);
        }
        check_switching_key_at(&self.to_sparse, params, 0, "to-sparse key")?;
        check_top_switching_key(&self.from_sparse, params, "from-sparse key")
    }

    fn body_size(&self, params: &Params) -> usize {
        switching_key_body_size(params, 0, false)
            + switching_key_body_size(params, params.max_level(), false)
    }

    fn write_body<W: Write>(&self, params: &Params, w: &mut W) -> io::Result<()> {
        write_switching_key(&self.to_sparse, None, params, w)?;
        write_switching_key(&self.from_sparse, None, params, w)
    }

    fn read_body<R: Read>(
        inp: &mut Input<R>,
        _kind: ObjectKind,
        params: &Arc<Params>,
    ) -> Result<Self> {
        // the sparse secret may only be used modulo q_0 * P
        let (to_sparse, _) = read_switching_key(inp, params, false, "to-sparse key")?;
        check_switching_key_at(&to_sparse, params, 0, "to-sparse key")?;
        let (from_sparse, _) = read_top_switching_key(inp, params, false, "from-sparse key")?;
        // both keys' shapes and levels were checked as they were read
        Ok(BootstrapKeys {
            to_sparse,
            from_sparse,
            params_id: params.id,
        })
    }
}

impl Body for RelinKey {
    const KIND: ObjectKind = ObjectKind::RelinKey;

    fn accepts(kind: ObjectKind) -> bool {
        matches!(kind, ObjectKind::RelinKey | ObjectKind::RelinKeyCompact)
    }

    fn check(&self, params: &Params) -> Result<()> {
        check_same_params(&self.params, params)?;
        check_top_switching_key(&self.key, params, "relinearization key")
    }

    fn body_size(&self, params: &Params) -> usize {
        switching_key_body_size(params, params.max_level(), false)
    }

    fn write_body<W: Write>(&self, params: &Params, w: &mut W) -> io::Result<()> {
        write_switching_key(&self.key, None, params, w)
    }

    fn read_body<R: Read>(
        inp: &mut Input<R>,
        kind: ObjectKind,
        params: &Arc<Params>,
    ) -> Result<Self> {
        let compact = is_kind(kind, Self::KIND, ObjectKind::RelinKeyCompact)?;
        let (key, _) = read_top_switching_key(inp, params, compact, "relinearization key")?;
        Ok(RelinKey {
            params: params.clone(),
            key,
        })
    }
}

impl Body for Compact<RelinKey> {
    const KIND: ObjectKind = ObjectKind::RelinKeyCompact;

    fn check(&self, params: &Params) -> Result<()> {
        check_seed_count(self, 1)?;
        self.key.check(params)
    }

    fn body_size(&self, params: &Params) -> usize {
        switching_key_body_size(params, params.max_level(), true)
    }

    fn write_body<W: Write>(&self, params: &Params, w: &mut W) -> io::Result<()> {
        write_switching_key(&self.key.key, self.seeds.first(), params, w)
    }

    fn read_body<R: Read>(
        inp: &mut Input<R>,
        _kind: ObjectKind,
        params: &Arc<Params>,
    ) -> Result<Self> {
        let (key, seed) = read_top_switching_key(inp, params, true, "relinearization key")?;
        Ok(Self {
            key: RelinKey {
                params: params.clone(),
                key,
            },
            seeds: seed.into_iter().collect(),
        })
    }
}

impl Body for GaloisKeys {
    const KIND: ObjectKind = ObjectKind::GaloisKeys;

    fn accepts(kind: ObjectKind) -> bool {
        matches!(kind, ObjectKind::GaloisKeys | ObjectKind::GaloisKeysCompact)
    }

    fn check(&self, params: &Params) -> Result<()> {
        check_galois_keys(self, params)
    }

    fn body_size(&self, _params: &Params) -> usize {
        galois_keys_body_size(self, false)
    }

    fn write_body<W: Write>(&self, params: &Params, w: &mut W) -> io::Result<()> {
        write_galois_keys(self, None, params, w)
    }

    fn read_body<R: Read>(
        inp: &mut Input<R>,
        kind: ObjectKind,
        params: &Arc<Params>,
    ) -> Result<Self> {
        let compact = is_kind(kind, Self::KIND, ObjectKind::GaloisKeysCompact)?;
        Ok(read_galois_keys(inp, params, compact)?.0)
    }
}

impl Body for Compact<GaloisKeys> {
    const KIND: ObjectKind = ObjectKind::GaloisKeysCompact;

    fn check(&self, params: &Params) -> Result<()> {
        check_seed_count(self, self.key.keys.len())?;
        check_galois_keys(&self.key, params)
    }

    fn body_size(&self, _params: &Params) -> usize {
        galois_keys_body_size(&self.key, true)
    }

    fn write_body<W: Write>(&self, params: &Params, w: &mut W) -> io::Result<()> {
        write_galois_keys(&self.key, Some(&self.seeds), params, w)
    }

    fn read_body<R: Read>(
        inp: &mut Input<R>,
        _kind: ObjectKind,
        params: &Arc<Params>,
    ) -> Result<Self> {
        let (key, seeds) = read_galois_keys(inp, params, true)?;
        Ok(Self { key, seeds })
    }
}

impl Body for EvaluationKeys {
    const KIND: ObjectKind = ObjectKind::EvaluationKeys;

    fn accepts(kind: ObjectKind) -> bool {
        matches!(
            kind,
            ObjectKind::EvaluationKeys | ObjectKind::EvaluationKeysCompact
        )
    }

    fn check(&self, params: &Params) -> Result<()> {
        check_evaluation_keys(self, params)
    }

    fn body_size(&self, params: &Params) -> usize {
        evaluation_keys_body_size(self, params, false)
    }

    fn write_body<W: Write>(&self, params: &Params, w: &mut W) -> io::Result<()> {
        write_evaluation_keys(self, None, params, w)
    }

    fn read_body<R: Read>(
        inp: &mut Input<R>,
        kind: ObjectKind,
        params: &Arc<Params>,
    ) -> Result<Self> {
        let compact = is_kind(kind, Self::KIND, ObjectKind::EvaluationKeysCompact)?;
        Ok(read_evaluation_keys(inp, params, compact)?.0)
    }
}

impl Body for Compact<EvaluationKeys> {
    const KIND: ObjectKind = ObjectKind::EvaluationKeysCompact;

    fn check(&self, params: &Params) -> Result<()> {
        let want = usize::from(self.key.relin.is_some())
            + self.key.galois.as_ref().map_or(0, |g| g.keys.len());
        check_seed_count(self, want)?;
        check_evaluation_keys(&self.key, params)
    }

    fn body_size(&self, params: &Params) -> usize {
        evaluation_keys_body_size(&self.key, params, true)
    }

    fn write_body<W: Write>(&self, params: &Params, w: &mut W) -> io::Result<()> {
        write_evaluation_keys(&self.key, Some(&self.seeds), params, w)
    }

    fn read_body<R: Read>(
        inp: &mut Input<R>,
        _kind: ObjectKind,
        params: &Arc<Params>,
    ) -> Result<Self> {
        let (key, seeds) = read_evaluation_keys(inp, params, true)?;
        Ok(Self { key, seeds })
    }
}

// ---------------------------------------------------------------------------
// The secret key: client storage only.
// ---------------------------------------------------------------------------

impl SecretKey {
    /// Bytes of the serialized secret key.
    pub fn secret_serialized_size(&self) -> usize {
        secret_key_size(&self.params)
    }

    /// Writes the secret key, for the client's own storage only: never send
    /// it anywhere. Scratch buffers are zeroized.
    pub fn write_secret_to<W: Write>(&self, w: &mut W) -> io::Result<()> {
        let p = &self.params;
        let limbs = p.q.len() + p.p.len();
        check_poly(&self.poly, p, limbs, "secret key").map_err(to_io)?;
        write_header(w, ObjectKind::SecretKey, p)?;
        w.write_all(&(limbs as u32).to_le_bytes())?;
        write_poly(w, &self.poly)
    }

    /// The serialized secret key in a buffer that is zeroized on drop.
    pub fn to_secret_bytes(&self) -> Result<Zeroizing<Vec<u8>>> {
        // Full capacity up front: no reallocation leaves copies behind.
        let mut out = Zeroizing::new(Vec::with_capacity(self.secret_serialized_size()));
        self.write_secret_to(&mut *out)
            .map_err(|e| malformed(format!("write failed: {e}")))?;
        Ok(out)
    }

    /// Reads a secret key from a stream and checks it is a ternary
    /// polynomial, the same one modulo every prime.
    pub fn read_secret_from<R: Read>(r: &mut R, params: &Arc<Params>) -> Result<SecretKey> {
        let mut inp = Input::stream(r);
        read_secret(&mut inp, params)
    }

    /// Reads a secret key that must fill `bytes` exactly.
    pub fn from_secret_bytes(bytes: &[u8], params: &Arc<Params>) -> Result<SecretKey> {
        let mut inp = Input::slice(bytes);
        let sk = read_secret(&mut inp, params)?;
        inp.finish()?;
        Ok(sk)
    }
}

fn read_secret<R: Read>(inp: &mut Input<R>, params: &Arc<Params>) -> Result<SecretKey> {
    expect_header(
        inp,
        ObjectKind::SecretKey,
        |k| k == ObjectKind::SecretKey,
        params,
    )?;
    let limbs = inp.u32("secret key limb count")? as usize;
    let want = params.q.len() + params.p.len();
    if limbs != want {
        return Err(malformed(format!(
            "secret key has {limbs} limbs, `{}` needs {want}",
            params.name()
        )));
    }
    // Wrap at once so that the key is zeroized on any error below.
    let sk = SecretKey {
        params: params.clone(),
        poly: Zeroizing::new(inp.poly(params, &qp_all(params), "secret key")?),
    };
    check_ternary(&sk)?;
    Ok(sk)
}

/// Checks that the secret key is one ternary polynomial modulo every prime.
/// Error messages name positions only, never values.
fn check_ternary(sk: &SecretKey) -> Result<()> {
    let p = &sk.params;
    let n = p.n;
    let mut first: Zeroizing<Vec<i64>> = Zeroizing::new(vec![0; n]);
    let mut tmp: Zeroizing<Vec<u64>> = Zeroizing::new(vec![0; n]);
    for k in 0..sk.poly.limbs() {
        tmp.copy_from_slice(sk.poly.limb(k));
        p.ring.intt(k, &mut tmp);
        let m = p.ring.moduli[k];
        for (j, &x) in tmp.iter().enumerate() {
            let c = m.centered(x);
            if k == 0 {
                if !(-1..=1).contains(&c) {
                    return Err(malformed(format!(
                        "secret key coefficient {j} is not ternary"
                    )));
                }
                first[j] = c;
            } else if c != first[j] {
                return Err(malformed(format!(
                    "secret key limb {k} disagrees with limb 0 at coefficient {j}"
                )));
            }
        }
    }
    Ok(())
}

// ---------------------------------------------------------------------------
// Parameter set references.
// ---------------------------------------------------------------------------

/// Bytes of a serialized parameter set reference.
pub fn params_size(params: &Params) -> usize {
    header_size(params) + 4 + (params.q.len() + params.p.len()) * 8
}

/// Writes a reference to `params`: its name, id and primes.
pub fn write_params<W: Write>(params: &Params, w: &mut W) -> io::Result<()> {
    let (nq, np) = (params.q.len(), params.p.len());
    if nq > u8::MAX as usize || np > u8::MAX as usize {
        return Err(to_io(malformed("too many primes for the format")));
    }
    write_header(w, ObjectKind::Params, params)?;
    w.write_all(&[
        params.literal.log_n as u8,
        params.literal.log_scale as u8,
        nq as u8,
        np as u8,
    ])?;
    for &x in params.q.iter().chain(&params.p) {
        w.write_all(&x.to_le_bytes())?;
    }
    Ok(())
}

/// The serialized reference to `params`.
pub fn params_to_bytes(params: &Params) -> Result<Vec<u8>> {
    let mut out = Vec::with_capacity(params_size(params));
    write_params(params, &mut out).map_err(|e| malformed(format!("write failed: {e}")))?;
    Ok(out)
}

/// Reads a parameter set reference from a stream and instantiates the named
/// set, checking that its id and every field match.
pub fn read_params<R: Read>(r: &mut R) -> Result<Arc<Params>> {
    let mut inp = Input::stream(r);
    read_params_inner(&mut inp, None)
}

/// Reads a parameter set reference that must fill `bytes` exactly and
/// instantiates the named set, checking that its id and every field match.
pub fn params_from_bytes(bytes: &[u8]) -> Result<Arc<Params>> {
    let mut inp = Input::slice(bytes);
    let p = read_params_inner(&mut inp, None)?;
    inp.finish()?;
    Ok(p)
}

/// Checks that `bytes` is a reference to exactly `params` (no instantiation).
pub fn check_params_bytes(bytes: &[u8], params: &Arc<Params>) -> Result<()> {
    let mut inp = Input::slice(bytes);
    read_params_inner(&mut inp, Some(params))?;
    inp.finish()
}

fn read_params_inner<R: Read>(
    inp: &mut Input<R>,
    expected: Option<&Arc<Params>>,
) -> Result<Arc<Params>> {
    let h = read_header(inp)?;
    if h.kind != ObjectKind::Params {
        return Err(malformed(format!(
            "expected a {}, found a {}",
            ObjectKind::Params,
            h.kind
        )));
    }
    let [log_n, log_scale, nq, np] = inp.array::<4>("parameter fields")?;
    let (nq, np) = (nq as usize, np as usize);
    inp.need((nq + np) * 8, "parameter primes")?;
    let mut primes = Vec::with_capacity(nq + np);
    for _ in 0..nq + np {
        primes.push(inp.u64("parameter prime")?);
    }
    // Compare against the literal before instantiating anything.
    let lit = match expected {
        Some(p) => &p.literal,
        None => params::literal(&h.params_name).map_err(|_| {
            malformed(format!(
                "unknown parameter set `{}`",
                h.params_name.escape_debug()
            ))
        })?,
    };
    if lit.name != h.params_name
        || lit.log_n != log_n as u32
        || lit.log_scale != log_scale as u32
        || lit.q_bits.len() != nq
        || lit.p_bits.len() != np
    {
        return Err(malformed(format!(
            "parameter reference does not match the set `{}` this build knows",
            lit.name
        )));
    }
    let p = match expected {
        Some(p) => p.clone(),
        None => Params::named(lit.name)?,
    };
    if p.id != h.params_id {
        return Err(id_mismatch(h.params_id, &p));
    }
    if p.q[..] != primes[..nq] || p.p[..] != primes[nq..] {
        return Err(malformed(format!(
            "parameter reference lists different primes from the set `{}`",
            p.name()
        )));
    }
    Ok(p)
}
