//! Keys: the secret key, public key, and switching keys for relinearization and
//! Galois automorphisms (hybrid key switching with special primes P).

use crate::error::{CkksError, Result};
use crate::params::Params;
use crate::ring::Poly;
use crate::sampling;
use crate::serialize::{Compact, SEED_LEN, expand_uniform};
use std::collections::BTreeMap;
use std::sync::Arc;
use zeroize::Zeroizing;

/// The secret key s (uniform ternary), held in NTT form over Q and P.
///
/// Zeroized on drop; never serialized into anything sent to a server.
pub struct SecretKey {
    pub(crate) params: Arc<Params>,
    /// s in NTT form over all Q then P primes.
    pub(crate) poly: Zeroizing<Poly>,
}

/// Public encryption key (b, a) = (-a*s + e, a) at the top level.
#[derive(Clone)]
pub struct PublicKey {
    pub(crate) params: Arc<Params>,
    pub(crate) b: Poly,
    pub(crate) a: Poly,
}

/// A hybrid key-switching key: for each digit j, (b_j, a_j) over Q_level and
/// P with b_j = -a_j*s + e_j + P*[s' on digit j's primes].
///
/// A key made for `level` switches ciphertexts at that level or below: it
/// holds only the limbs q_0..q_level then the P limbs (`level + 1 + |P|`
/// limbs, `dnum_at(level)` digits). Keys used only low in the modulus chain
/// (the SlotsToCoeffs rotations of bootstrapping) are smaller that way.
#[derive(Clone)]
pub struct SwitchingKey {
    pub(crate) level: usize,
    pub(crate) b: Vec<Poly>,
    pub(crate) a: Vec<Poly>,
}

impl SwitchingKey {
    /// Bytes of key material held in memory.
    pub fn size_bytes(&self) -> usize {
        self.b.iter().chain(&self.a).map(|p| p.data.len() * 8).sum()
    }

    /// The highest ciphertext level this key can switch.
    pub fn level(&self) -> usize {
        self.level
    }

    /// Fails unless this key can switch a ciphertext at `level`.
    pub(crate) fn check_level(&self, level: usize) -> Result<()> {
        if level > self.level {
            return Err(CkksError::KeyLevel {
                key: self.level,
                ciphertext: level,
            });
        }
        Ok(())
    }
}

/// Relinearization key: switches s^2 to s.
#[derive(Clone)]
pub struct RelinKey {
    pub(crate) params: Arc<Params>,
    pub(crate) key: SwitchingKey,
}

/// Galois keys, one switching key per Galois element.
///
/// The key for element g encrypts s under sigma_g^{-1}(s): a rotation takes
/// the inner product of the unpermuted digits with it and applies sigma_g
/// afterwards, to two polynomials instead of every digit (hoisting).
#[derive(Clone)]
pub struct GaloisKeys {
    pub(crate) params: Arc<Params>,
    pub(crate) keys: BTreeMap<u64, SwitchingKey>,
}

impl GaloisKeys {
    /// Galois elements with a key.
    pub fn elements(&self) -> Vec<u64> {
        self.keys.keys().copied().collect()
    }

    /// Bytes of key material held in memory.
    pub fn size_bytes(&self) -> usize {
        self.keys.values().map(|k| k.size_bytes()).sum()
    }

    /// Adds the keys of `other` (same parameter set); where both hold a key
    /// for one element, the one usable at the higher level is kept.
    pub fn merge(&mut self, other: GaloisKeys) -> Result<()> {
        if !Arc::ptr_eq(&self.params, &other.params) && self.params.id != other.params.id {
            return Err(CkksError::ParamsMismatch);
        }
        for (g, k) in other.keys {
            match self.keys.get(&g) {
                Some(old) if old.level >= k.level => {}
                _ => {
                    self.keys.insert(g, k);
                }
            }
        }
        Ok(())
    }

    /// The highest level the key for element `g` serves, if there is one.
    pub fn level_of(&self, g: u64) -> Option<usize> {
        self.keys.get(&g).map(|k| k.level)
    }

    pub(crate) fn get(&self, g: u64) -> Result<&SwitchingKey> {
        self.keys.get(&g).ok_or(CkksError::MissingGaloisKey(g))
    }
}

impl RelinKey {
    /// Bytes of key material held in memory.
    pub fn size_bytes(&self) -> usize {
        self.key.size_bytes()
    }
}

/// Galois element rotating slots left by `k` (negative: right) with `slots` slots.
pub fn rotation_element(params: &Params, k: i64) -> u64 {
    let two_n = 2 * params.n as u64;
    let order = params.n as i64 / 2; // 5 has order N/2 mod 2N
    let e = k.rem_euclid(order) as u64;
    let mut r = 1u64;
    let mut b = 5u64;
    let mut e2 = e;
    while e2 > 0 {
        if e2 & 1 == 1 {
            r = r * b % two_n;
        }
        b = b * b % two_n;
        e2 >>= 1;
    }
    r
}

/// Galois element of complex conjugation.
pub fn conjugation_element(params: &Params) -> u64 {
    2 * params.n as u64 - 1
}

/// Generates keys from a secure random source.
pub struct KeyGenerator {
    params: Arc<Params>,
    rng: rand_chacha::ChaCha20Rng,
}

impl KeyGenerator {
    /// A key generator seeded from the operating system.
    pub fn new(params: Arc<Params>) -> Self {
        Self {
            params,
            rng: sampling::secure_rng(),
        }
    }

    /// A deterministic key generator (tests and reproducible benchmarks only).
    pub fn with_seed(params: Arc<Params>, seed: [u8; 32]) -> Self {
        Self {
            params,
            rng: sampling::seeded_rng(seed),
        }
    }

    /// A fresh uniform ternary secret key.
    pub fn secret_key(&mut self) -> SecretKey {
        let p = &self.params;
        let s = Zeroizing::new(sampling::ternary(p.n, &mut self.rng));
        let idx: Vec<usize> = (0..p.q.len() + p.p.len()).collect();
        SecretKey {
            params: p.clone(),
            poly: Zeroizing::new(sampling::small_to_ntt(p, &s, &idx)),
        }
    }

    /// Keys are made for the parameter set of the secret key they belong to:
    /// a generator given another set's secret key switches to that set
    /// (the keys then carry it, and every operation that meets them with
    /// objects of another set refuses with [`CkksError::ParamsMismatch`]).
    pub(crate) fn follow(&mut self, sk: &SecretKey) {
        if self.params.id != sk.params.id {
            self.params = sk.params.clone();
        }
    }

    /// The generator's random source (bootstrapping key generation samples from it too).
    pub(crate) fn rng(&mut self) -> &mut rand_chacha::ChaCha20Rng {
        &mut self.rng
    }

    /// Public key at the top level.
    pub fn public_key(&mut self, sk: &SecretKey) -> PublicKey {
        self.follow(sk);
        self.public_key_from(sk, None)
    }

    /// A public key whose `a` is the expansion of a fresh seed, generated as
    /// such: the seed is drawn, `a` expanded from it, a fresh error sampled
    /// and `b = -a*s + e` computed (see [`Compact`] for the expansion).
    ///
    /// Its serialized form carries the seed instead of `a`. It is a key of its
    /// own, unrelated to any other public key of `sk`.
    pub fn public_key_compact(&mut self, sk: &SecretKey) -> Compact<PublicKey> {
        self.follow(sk);
        let seed = sampling::fresh_seed(&mut self.rng);
        let key = self.public_key_from(sk, Some(&seed));
        Compact::new(key, vec![seed])
    }

    fn public_key_from(&mut self, sk: &SecretKey, seed: Option<&[u8; SEED_LEN]>) -> PublicKey {
        let p = self.params.clone();
        let idx = p.q_idx(p.max_level());
        let a = match seed {
            Some(seed) => expand_uniform(&p, &idx, seed, 1).remove(0),
            None => sampling::uniform(&p, &idx, &mut self.rng),
        };
        let mut b = sampling::error_ntt(&p, &idx, &mut self.rng);
        let s = Zeroizing::new(sk.poly.prefix(idx.len()));
        let mut as_ = Zeroizing::new(p.ring.mul(&a, &s, &idx));
        p.ring.neg_assign(&mut as_, &idx);
        p.ring.add_assign(&mut b, &as_, &idx);
        PublicKey { params: p, b, a }
    }

    /// Switching key encrypting P*g_j*`s_from` under `s_under` (both NTT over Q and P).
    pub(crate) fn switching_key(&mut self, s_from: &Poly, s_under: &Poly) -> SwitchingKey {
        let top = self.params.max_level();
        self.switching_key_to_level(s_from, s_under, top)
    }

    /// Like [`Self::switching_key`], but only for ciphertexts up to `lvl`: the
    /// key lives modulo q_0..q_lvl and P.
    ///
    /// Bootstrapping needs this for the switch to a sparse ephemeral secret
    /// (an RLWE sample under a sparse secret is only secure for a small
    /// modulus), and uses it to keep rotation keys no larger than the levels
    /// they are used at.
    pub(crate) fn switching_key_to_level(
        &mut self,
        s_from: &Poly,
        s_under: &Poly,
        lvl: usize,
    ) -> SwitchingKey {
        self.switching_key_seeded(s_from, s_under, lvl, None)
    }

    /// Like [`Self::switching_key_to_level`]; with a seed, the `a`s are its
    /// expansion ([`Compact`]) instead of draws from the generator. The
    /// errors are always fresh draws.
    fn switching_key_seeded(
        &mut self,
        s_from: &Poly,
        s_under: &Poly,
        lvl: usize,
        seed: Option<&[u8; SEED_LEN]>,
    ) -> SwitchingKey {
        let p = self.params.clone();
        let idx = p.qp_idx(lvl);
        let s_under = Zeroizing::new(s_under.gather(&idx));
        let dnum = p.dnum_at(lvl);
        let mut seeded = seed
            .map(|seed| expand_uniform(&p, &idx, seed, dnum))
            .unwrap_or_default()
            .into_iter();
        let mut bs = Vec::with_capacity(dnum);
        let mut as_ = Vec::with_capacity(dnum);
        for j in 0..dnum {
            let a = match seeded.next() {
                Some(a) => a,
                None => sampling::uniform(&p, &idx, &mut self.rng),
            };
            let mut b = sampling::error_ntt(&p, &idx, &mut self.rng);
            let mut t = Zeroizing::new(p.ring.mul(&a, &s_under, &idx));
            p.ring.neg_assign(&mut t, &idx);
            p.ring.add_assign(&mut b, &t, &idx);
            drop(t);
            // + P * s_from on digit j's primes (Q primes sit at the same limb
            // index in the key as in the full basis)
            let lo = j * p.alpha;
            let hi = ((j + 1) * p.alpha).min(lvl + 1);
            for i in lo..hi {
                let m = p.ring.moduli[i];
                let pm = p.p_mod_q[i];
                let pms = m.shoup(pm);
                let src = s_from.limb(i);
                for (o, &x) in b.limb_mut(i).iter_mut().zip(src) {
                    *o = m.add(*o, m.mul_shoup(x, pm, pms));
                }
            }
            bs.push(b);
            as_.push(a);
        }
        SwitchingKey {
            level: lvl,
            b: bs,
            a: as_,
        }
    }

    /// Relinearization key (switches s^2 -> s).
    pub fn relin_key(&mut self, sk: &SecretKey) -> RelinKey {
        self.follow(sk);
        self.relin_key_from(sk, None)
    }

    /// A relinearization key whose `a`s are the expansion of a fresh seed,
    /// generated as such (seed drawn, `a`s expanded, fresh errors, `b`s
    /// computed): its serialized form carries the seed instead of the `a`s.
    pub fn relin_key_compact(&mut self, sk: &SecretKey) -> Compact<RelinKey> {
        self.follow(sk);
        let seed = sampling::fresh_seed(&mut self.rng);
        let key = self.relin_key_from(sk, Some(&seed));
        Compact::new(key, vec![seed])
    }

    fn relin_key_from(&mut self, sk: &SecretKey, seed: Option<&[u8; SEED_LEN]>) -> RelinKey {
        let p = self.params.clone();
        let idx: Vec<usize> = (0..p.q.len() + p.p.len()).collect();
        let s2 = Zeroizing::new(p.ring.mul(&sk.poly, &sk.poly, &idx));
        let key = self.switching_key_seeded(&s2, &sk.poly, p.max_level(), seed);
        RelinKey { params: p, key }
    }

    /// Galois keys for slot rotations `steps` (left by k) and, if asked, conjugation.
    pub fn galois_keys(&mut self, sk: &SecretKey, steps: &[i64], conjugate: bool) -> GaloisKeys {
        self.follow(sk);
        let top = self.params.max_level();
        let at: Vec<(u64, usize)> = galois_elements(&self.params, steps, conjugate)
            .into_iter()
            .map(|g| (g, top))
            .collect();
        self.galois_keys_from(sk, &at, false).0
    }

    /// Galois keys for explicit Galois elements, usable at every level.
    ///
    /// Fails with [`CkksError::InvalidGaloisElement`] unless every element
    /// is odd, below 2N and not 1 (the identity needs no key).
    pub fn galois_keys_for_elements(
        &mut self,
        sk: &SecretKey,
        elems: &[u64],
    ) -> Result<GaloisKeys> {
        self.follow(sk);
        let top = self.params.max_level();
        let at: Vec<(u64, usize)> = elems.iter().map(|&g| (g, top)).collect();
        self.galois_keys_at_levels(sk, &at)
    }

    /// Galois keys for (element, level) pairs: each key switches ciphertexts
    /// at its level or below and holds only the limbs that needs (see
    /// [`SwitchingKey`]). A repeated element gets one key at the highest of
    /// its levels; levels above the top are clamped to it.
    ///
    /// Fails with [`CkksError::InvalidGaloisElement`] unless every element
    /// is odd, below 2N and not 1 (the identity needs no key).
    pub fn galois_keys_at_levels(
        &mut self,
        sk: &SecretKey,
        elems: &[(u64, usize)],
    ) -> Result<GaloisKeys> {
        self.follow(sk);
        check_galois_elements(&self.params, elems)?;
        Ok(self.galois_keys_from(sk, elems, false).0)
    }

    /// Galois keys for slot rotations `steps` and, if asked, conjugation,
    /// each generated from a fresh seed for its `a`s (see
    /// [`Self::galois_keys_at_levels_compact`]).
    pub fn galois_keys_compact(
        &mut self,
        sk: &SecretKey,
        steps: &[i64],
        conjugate: bool,
    ) -> Compact<GaloisKeys> {
        self.follow(sk);
        let top = self.params.max_level();
        let at: Vec<(u64, usize)> = galois_elements(&self.params, steps, conjugate)
            .into_iter()
            .map(|g| (g, top))
            .collect();
        let (key, seeds) = self.galois_keys_from(sk, &at, true);
        Compact::new(key, seeds)
    }

    /// Like [`Self::galois_keys_at_levels`], but each key's `a`s are the
    /// expansion of a fresh seed, generated as such (seed drawn, `a`s
    /// expanded, fresh errors, `b`s computed): the serialized form carries
    /// one seed per element instead of the `a`s.
    pub fn galois_keys_at_levels_compact(
        &mut self,
        sk: &SecretKey,
        elems: &[(u64, usize)],
    ) -> Result<Compact<GaloisKeys>> {
        self.follow(sk);
        check_galois_elements(&self.params, elems)?;
        let (key, seeds) = self.galois_keys_from(sk, elems, true);
        Ok(Compact::new(key, seeds))
    }

    /// Galois keys for elements known to be valid.
    pub(crate) fn galois_keys_from(
        &mut self,
        sk: &SecretKey,
        elems: &[(u64, usize)],
        compact: bool,
    ) -> (GaloisKeys, Vec<[u8; SEED_LEN]>) {
        let p = self.params.clone();
        let two_n = 2 * p.n as u64;
        let mut levels: BTreeMap<u64, usize> = BTreeMap::new();
        for &(g, l) in elems {
            let l = l.min(p.max_level());
            let e = levels.entry(g).or_insert(l);
            *e = (*e).max(l);
        }
        let mut keys = BTreeMap::new();
        let mut seeds = Vec::new();
        // increasing element order: the order of the seeds in `Compact`
        for (g, lvl) in levels {
            // sigma_g^{-1}(s): permutation for g^{-1} mod 2N
            let ginv = inverse_mod_pow2(g, two_n);
            let perm = p.ring.galois_perm(ginv);
            let s_rot = Zeroizing::new(p.ring.permute(&sk.poly, &perm));
            let seed = compact.then(|| sampling::fresh_seed(&mut self.rng));
            let key = self.switching_key_seeded(&sk.poly, &s_rot, lvl, seed.as_ref());
            keys.insert(g, key);
            seeds.extend(seed);
        }
        (GaloisKeys { params: p, keys }, seeds)
    }
}

/// The Galois elements of rotations `steps` and, if asked, conjugation:
/// sorted, deduplicated, without the identity.
fn galois_elements(params: &Params, steps: &[i64], conjugate: bool) -> Vec<u64> {
    let mut elems: Vec<u64> = steps.iter().map(|&k| rotation_element(params, k)).collect();
    if conjugate {
        elems.push(conjugation_element(params));
    }
    elems.sort_unstable();
    elems.dedup();
    elems.retain(|&g| g != 1);
    elems
}

/// Checks Galois elements as the key reader does: odd, below 2N, not 1.
fn check_galois_elements(params: &Params, elems: &[(u64, usize)]) -> Result<()> {
    let two_n = 2 * params.n as u64;
    for &(g, _) in elems {
        if g & 1 == 0 || g >= two_n || g == 1 {
            return Err(CkksError::InvalidGaloisElement { element: g, two_n });
        }
    }
    Ok(())
}

/// Inverse of an odd g modulo a power of two m.
pub(crate) fn inverse_mod_pow2(g: u64, m: u64) -> u64 {
    // Newton iteration for 2-adic inverse.
    let mut x: u64 = 1;
    for _ in 0..7 {
        x = x.wrapping_mul(2u64.wrapping_sub(g.wrapping_mul(x)));
    }
    x & (m - 1)
}

impl SecretKey {
    /// The parameter set of this key.
    pub fn params(&self) -> &Arc<Params> {
        &self.params
    }
}

impl PublicKey {
    /// The parameter set of this key.
    pub fn params(&self) -> &Arc<Params> {
        &self.params
    }
}
