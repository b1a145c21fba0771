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
//!   [`SecretKey::to_secret_bytes`](crate::SecretKey::to_secret_bytes).
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
//
// One file per object family, each with its format and its checks:
// `poly` (polynomials), `ciphertext` (plaintexts and ciphertexts), `keys`
// (public, relinearization, Galois and evaluation keys), `compact` (their
// seeded forms), `bootstrap` (bootstrapping keys), `secret` (the secret
// key) and `params` (parameter set references). This file holds the header,
// the bounded reader and the `Wire` trait.

use crate::bootstrap::BootstrapKeys;
use crate::ciphertext::Ciphertext;
use crate::encoding::Plaintext;
use crate::error::{CkksError, Result};
use crate::evaluator::EvaluationKeys;
use crate::keys::{GaloisKeys, PublicKey, RelinKey};
use crate::params::Params;
use std::fmt;
use std::io::{self, Read, Write};
use std::sync::Arc;

mod bootstrap;
mod ciphertext;
mod compact;
mod keys;
mod params;
mod poly;
mod secret;

pub use ciphertext::{ciphertext_size, plaintext_size};
pub(crate) use compact::expand_uniform;
pub use compact::{Compact, SEED_LEN};
pub use keys::{galois_keys_size, public_key_size, relin_key_size};
pub use params::{
    check_params_bytes, params_from_bytes, params_size, params_to_bytes, read_params, write_params,
};
pub use secret::secret_key_size;

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
    /// A [`SecretKey`](crate::SecretKey) (client storage only).
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

fn check_same_params(own: &Params, params: &Params) -> Result<()> {
    if own.id != params.id {
        return Err(CkksError::ParamsMismatch);
    }
    Ok(())
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
/// own, separate functions ([`SecretKey::to_secret_bytes`](crate::SecretKey::to_secret_bytes) and friends).
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
