//! Public, relinearization, Galois and evaluation keys in their full form
//! (and the key bodies their compact forms share, with a seed in place of
//! the `a` polynomials): switching keys, their levels, digit and limb
//! counts, Galois elements and evaluation key flags, with their sizes and
//! checks.

use super::compact::{SEED_LEN, expand_uniform};
use super::poly::{check_poly, write_poly};
use super::{Body, Input, ObjectKind, check_same_params, header_size, malformed};
use crate::error::Result;
use crate::evaluator::EvaluationKeys;
use crate::keys::{GaloisKeys, PublicKey, RelinKey, SwitchingKey};
use crate::params::Params;
use std::collections::BTreeMap;
use std::io::{self, Read, Write};
use std::sync::Arc;

/// Bytes of a serialized public key (`compact`: with a seed for `a`).
pub fn public_key_size(params: &Params, compact: bool) -> usize {
    let poly = params.q.len() * params.n * 8;
    header_size(params) + 4 + if compact { SEED_LEN + poly } else { 2 * poly }
}

/// Bytes of a switching key at `level` inside a body.
pub(super) fn switching_key_body_size(params: &Params, level: usize, compact: bool) -> usize {
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

pub(super) fn galois_keys_body_size(gk: &GaloisKeys, compact: bool) -> usize {
    4 + gk
        .keys
        .values()
        .map(|k| 8 + switching_key_body_size(&gk.params, k.level, compact))
        .sum::<usize>()
}

pub(super) fn write_public_key<W: Write>(
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

pub(super) fn read_public_key<R: Read>(
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
pub(super) fn check_switching_key_at(
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

pub(super) fn check_top_switching_key(k: &SwitchingKey, params: &Params, what: &str) -> Result<()> {
    check_switching_key_at(k, params, params.max_level(), what)
}

pub(super) fn write_switching_key<W: Write>(
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
pub(super) fn read_switching_key<R: Read>(
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
pub(super) fn read_top_switching_key<R: Read>(
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

pub(super) fn check_galois_keys(gk: &GaloisKeys, params: &Params) -> Result<()> {
    check_same_params(&gk.params, params)?;
    for (&g, k) in &gk.keys {
        check_galois_element(params, g)?;
        check_switching_key(k, params, "Galois key")?;
    }
    Ok(())
}

pub(super) fn write_galois_keys<W: Write>(
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

pub(super) fn read_galois_keys<R: Read>(
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

pub(super) fn check_evaluation_keys(k: &EvaluationKeys, params: &Params) -> Result<()> {
    if let Some(r) = &k.relin {
        check_same_params(&r.params, params)?;
        check_top_switching_key(&r.key, params, "relinearization key")?;
    }
    if let Some(g) = &k.galois {
        check_galois_keys(g, params)?;
    }
    Ok(())
}

pub(super) fn evaluation_keys_body_size(
    k: &EvaluationKeys,
    params: &Params,
    compact: bool,
) -> usize {
    1 + k.relin.as_ref().map_or(0, |_| {
        switching_key_body_size(params, params.max_level(), compact)
    }) + k
        .galois
        .as_ref()
        .map_or(0, |g| galois_keys_body_size(g, compact))
}

pub(super) fn write_evaluation_keys<W: Write>(
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

pub(super) fn read_evaluation_keys<R: Read>(
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
