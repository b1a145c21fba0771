//! Ciphertexts, and encryption and decryption.

use crate::encoding::Plaintext;
use crate::error::{CkksError, Result};
use crate::keys::{PublicKey, SecretKey};
use crate::params::Params;
use crate::ring::Poly;
use crate::sampling;
use std::sync::Arc;
use zeroize::Zeroizing;

/// A CKKS ciphertext (c_0, c_1[, c_2]) in NTT form over q_0..q_level.
///
/// Decrypts to sum_i c_i s^i = scale * message + noise.
///
/// The metadata is read-only outside this crate: only operations of the
/// crate (and the checked [`Ciphertext::set_scale`]) change it, so that a
/// ciphertext's level, scale and slot count always describe its
/// polynomials. Read it with [`Ciphertext::level`], [`Ciphertext::scale`]
/// and [`Ciphertext::slots`]:
///
/// ```
/// let params = ckks::Params::named("insecure-n10").unwrap();
/// let sk = ckks::KeyGenerator::new(params.clone()).secret_key();
/// let pt = ckks::Encoder::new(params.clone())
///     .encode_real(&[1.0], 1, params.default_scale(), 4)
///     .unwrap();
/// let mut ct = ckks::Encryptor::new(params.clone()).encrypt_sk(&sk, &pt).unwrap();
/// assert_eq!((ct.level(), ct.scale(), ct.slots()), (1, params.default_scale(), 4));
/// ct.set_scale(&params, 2.0 * params.default_scale()).unwrap();
/// assert!(ct.set_scale(&params, 0.5).is_err());
/// ```
///
/// Writing a field does not compile outside the crate:
///
/// ```compile_fail,E0616
/// # let params = ckks::Params::named("insecure-n10").unwrap();
/// # let sk = ckks::KeyGenerator::new(params.clone()).secret_key();
/// # let pt = ckks::Encoder::new(params.clone())
/// #     .encode_real(&[1.0], 1, params.default_scale(), 4)
/// #     .unwrap();
/// let mut ct = ckks::Encryptor::new(params.clone()).encrypt_sk(&sk, &pt).unwrap();
/// ct.level = 3; // error[E0616]: field `level` of struct `Ciphertext` is private
/// ```
#[derive(Clone, Debug)]
pub struct Ciphertext {
    pub(crate) c: Vec<Poly>,
    /// Level: limbs q_0..q_level are present.
    pub(crate) level: usize,
    /// Scale of the encrypted message.
    pub(crate) scale: f64,
    /// Number of complex slots.
    pub(crate) slots: usize,
    /// [`Params::id`] of the set the ciphertext belongs to: every operation
    /// that combines it with a key, plaintext or ciphertext checks it.
    pub(crate) params_id: u64,
}

impl Ciphertext {
    /// [`Params::id`] of the parameter set this ciphertext belongs to.
    pub fn params_id(&self) -> u64 {
        self.params_id
    }

    /// Level: the ciphertext lives modulo q_0 * ... * q_level (`level + 1`
    /// RNS limbs); each rescale lowers it by one.
    pub fn level(&self) -> usize {
        self.level
    }

    /// Scale Δ of the encrypted message (a plain factor, not log2):
    /// decryption gives Δ · message + noise.
    pub fn scale(&self) -> f64 {
        self.scale
    }

    /// Number of complex slots the message occupies (a power of two, at
    /// most N/2).
    pub fn slots(&self) -> usize {
        self.slots
    }

    /// Reinterprets the ciphertext as encrypting its message at `scale`
    /// instead (the polynomials are unchanged: the message read back is
    /// multiplied by `self.scale() / scale`). Meant for snapping a scale
    /// that differs from the intended one by float rounding.
    ///
    /// `params` must be the ciphertext's set ([`CkksError::ParamsMismatch`]
    /// otherwise). The scale is checked as [`Encoder::encode`] checks one
    /// ([`Params::check_scale`]): finite, at least 1, and
    /// `log2(scale) < log2(Q_level) - 1` at the ciphertext's level; a bad
    /// one gives [`CkksError::ScaleOutOfBounds`] and leaves the ciphertext
    /// unchanged.
    ///
    /// [`Encoder::encode`]: crate::Encoder::encode
    pub fn set_scale(&mut self, params: &Params, scale: f64) -> Result<()> {
        if self.params_id != params.id {
            return Err(CkksError::ParamsMismatch);
        }
        params.check_scale(scale, self.level, 1.0, "set_scale")?;
        self.scale = scale;
        Ok(())
    }

    /// Fails unless the metadata agrees with the polynomials for `params`
    /// (a level the set has, `level + 1` limbs of degree N in every
    /// component, a valid slot count): a deserialized or crate-built
    /// object may disagree, and a mismatch would index out of range.
    pub(crate) fn check_shape(&self, params: &Params) -> Result<()> {
        params.check_level(self.level)?;
        let n = params.n;
        if self
            .c
            .iter()
            .any(|c| c.n != n || c.data.len() != n * (self.level + 1))
        {
            return Err(CkksError::Malformed(format!(
                "ciphertext at level {} does not hold {} limbs of degree {n}",
                self.level,
                self.level + 1
            )));
        }
        check_slots(params, self.slots)
    }

    /// Number of components minus one (1 after relinearization).
    pub fn degree(&self) -> usize {
        self.c.len() - 1
    }

    /// Bytes held in memory.
    pub fn size_bytes(&self) -> usize {
        self.c.iter().map(|p| p.data.len() * 8).sum()
    }
}

/// Fails with [`CkksError::InvalidSlots`] unless `slots` is a power of two
/// in `1..=N/2`.
pub(crate) fn check_slots(params: &Params, slots: usize) -> Result<()> {
    if slots == 0 || !slots.is_power_of_two() || slots > params.max_slots() {
        return Err(CkksError::InvalidSlots(slots));
    }
    Ok(())
}

/// Encrypts plaintexts with a public or secret key.
pub struct Encryptor {
    params: Arc<Params>,
    rng: rand_chacha::ChaCha20Rng,
}

impl Encryptor {
    /// An encryptor with an OS-seeded generator.
    pub fn new(params: Arc<Params>) -> Self {
        Self {
            params,
            rng: sampling::secure_rng(),
        }
    }

    /// Public-key encryption: (v*b + e0 + m, v*a + e1) with v ternary.
    pub fn encrypt_pk(&mut self, pk: &PublicKey, pt: &Plaintext) -> Result<Ciphertext> {
        let p = self.params.clone();
        if pk.params.id != p.id || pt.params_id != p.id {
            return Err(CkksError::ParamsMismatch);
        }
        pt.check_shape(&p)?;
        let lvl = pt.level;
        let idx = p.q_idx(lvl);
        // v and the errors give the message away: zeroized on drop
        let v = Zeroizing::new(sampling::ternary(p.n, &mut self.rng));
        let v = Zeroizing::new(sampling::small_to_ntt(&p, &v, &idx));
        let mut c0 = p.ring.mul(&v, &pk.b.prefix(lvl + 1), &idx);
        let mut c1 = p.ring.mul(&v, &pk.a.prefix(lvl + 1), &idx);
        p.ring
            .add_assign(&mut c0, &sampling::error_ntt(&p, &idx, &mut self.rng), &idx);
        p.ring
            .add_assign(&mut c1, &sampling::error_ntt(&p, &idx, &mut self.rng), &idx);
        p.ring.add_assign(&mut c0, &pt.poly, &idx);
        Ok(Ciphertext {
            c: vec![c0, c1],
            level: lvl,
            scale: pt.scale,
            slots: pt.slots,
            params_id: p.id,
        })
    }

    /// Secret-key encryption: (-a*s + e + m, a).
    pub fn encrypt_sk(&mut self, sk: &SecretKey, pt: &Plaintext) -> Result<Ciphertext> {
        let p = self.params.clone();
        if sk.params.id != p.id || pt.params_id != p.id {
            return Err(CkksError::ParamsMismatch);
        }
        pt.check_shape(&p)?;
        let lvl = pt.level;
        let idx = p.q_idx(lvl);
        let a = sampling::uniform(&p, &idx, &mut self.rng);
        let s = Zeroizing::new(sk.poly.prefix(lvl + 1));
        let mut c0 = p.ring.mul(&a, &s, &idx);
        p.ring.neg_assign(&mut c0, &idx);
        p.ring
            .add_assign(&mut c0, &sampling::error_ntt(&p, &idx, &mut self.rng), &idx);
        p.ring.add_assign(&mut c0, &pt.poly, &idx);
        Ok(Ciphertext {
            c: vec![c0, a],
            level: lvl,
            scale: pt.scale,
            slots: pt.slots,
            params_id: p.id,
        })
    }
}

/// Decrypts ciphertexts with the secret key.
pub struct Decryptor<'a> {
    sk: &'a SecretKey,
}

impl<'a> Decryptor<'a> {
    /// A decryptor holding a borrow of the secret key.
    pub fn new(sk: &'a SecretKey) -> Self {
        Self { sk }
    }

    /// sum_i c_i s^i as a plaintext.
    pub fn decrypt(&self, ct: &Ciphertext) -> Result<Plaintext> {
        let p = &self.sk.params;
        if ct.params_id != p.id {
            return Err(CkksError::ParamsMismatch);
        }
        if ct.c.is_empty() {
            return Err(CkksError::Degree(0, 1));
        }
        ct.check_shape(p)?;
        let idx = p.q_idx(ct.level);
        let s = Zeroizing::new(self.sk.poly.prefix(ct.level + 1));
        // Horner: ((c_d s + c_{d-1}) s + ...) + c_0; every intermediate
        // depends on s and is zeroized when replaced
        let mut acc = Zeroizing::new(ct.c[ct.degree()].clone());
        for i in (0..ct.degree()).rev() {
            acc = Zeroizing::new(p.ring.mul(&acc, &s, &idx));
            p.ring.add_assign(&mut acc, &ct.c[i], &idx);
        }
        Ok(Plaintext {
            poly: std::mem::replace(&mut *acc, Poly::zero(0, 0)),
            level: ct.level,
            scale: ct.scale,
            slots: ct.slots,
            params_id: p.id,
        })
    }
}

#[cfg(test)]
mod tests {
    //! Objects whose metadata disagrees with their polynomials. Code outside
    //! the crate can no longer write the fields, and the readers of the
    //! binary format check them (`tests/serialize.rs`), but every operation
    //! still checks the shape ([`Ciphertext::check_shape`]) so that such an
    //! object gives a typed error, never an index panic.

    use super::*;
    use crate::{Encoder, EvaluationKeys, Evaluator, KeyGenerator};

    /// insecure-n10: levels 0..=3.
    #[test]
    fn edited_metadata_is_refused_not_a_panic() {
        let params = Params::named("insecure-n10").unwrap();
        let mut kg = KeyGenerator::with_seed(params.clone(), [7u8; 32]);
        let sk = kg.secret_key();
        let pk = kg.public_key(&sk);
        let keys = EvaluationKeys {
            relin: Some(kg.relin_key(&sk)),
            galois: Some(kg.galois_keys(&sk, &[1], true)),
        };
        let eval = Evaluator::new(params.clone(), Arc::new(keys)).unwrap();
        let enc = Encoder::new(params.clone());
        let scale = params.default_scale();
        let pt = enc.encode_real(&[0.5, -0.25], 1, scale, 4).unwrap();
        let a = Encryptor::new(params.clone()).encrypt_pk(&pk, &pt).unwrap();

        // a level the set has, but not the polynomials' level
        let mut up = a.clone();
        up.level = 3;
        assert!(matches!(eval.rescale(&up), Err(CkksError::Malformed(_))));
        assert!(matches!(eval.neg(&up), Err(CkksError::Malformed(_))));
        assert!(matches!(eval.add(&a, &up), Err(CkksError::Malformed(_))));
        assert!(matches!(
            Decryptor::new(&sk).decrypt(&up),
            Err(CkksError::Malformed(_))
        ));
        // a level the set does not have
        let mut above = a.clone();
        above.level = 4;
        assert!(matches!(
            eval.neg(&above),
            Err(CkksError::LevelAboveMax { level: 4, max: 3 })
        ));
        // a slot count that is not a power of two
        let mut odd = a.clone();
        odd.slots = 3;
        assert!(matches!(
            eval.rotate(&odd, 1),
            Err(CkksError::InvalidSlots(3))
        ));

        let mut bad = enc.encode_real(&[0.5], 1, scale, 4).unwrap();
        bad.level = 2;
        assert!(matches!(
            eval.add_plain(&a, &bad),
            Err(CkksError::Malformed(_))
        ));
        assert!(enc.try_decode(&bad).is_err());
        assert!(
            Encryptor::new(params.clone())
                .encrypt_sk(&sk, &bad)
                .is_err()
        );
    }

    #[test]
    fn set_scale_checks_as_encode_does() {
        let params = Params::named("insecure-n10").unwrap();
        let sk = KeyGenerator::with_seed(params.clone(), [3u8; 32]).secret_key();
        let scale = params.default_scale();
        let pt = Encoder::new(params.clone())
            .encode_real(&[0.5], 0, scale, 4)
            .unwrap();
        let mut ct = Encryptor::new(params.clone()).encrypt_sk(&sk, &pt).unwrap();
        ct.set_scale(&params, scale * (1.0 + 1e-15)).unwrap();
        assert_eq!(ct.scale(), scale * (1.0 + 1e-15));
        // refused as encode refuses a coefficient of magnitude 1 at level 0
        let log_q0 = params.log_q_at(0);
        for bad in [
            0.0,
            0.5,
            -scale,
            f64::NAN,
            f64::INFINITY,
            2f64.powf(log_q0 - 0.5),
        ] {
            assert!(
                matches!(
                    ct.set_scale(&params, bad),
                    Err(CkksError::ScaleOutOfBounds(_))
                ),
                "{bad}"
            );
            assert!(
                Encoder::new(params.clone())
                    .encode_coeffs(&[1.0], 0, bad, 4)
                    .is_err(),
                "{bad}"
            );
            assert_eq!(ct.scale(), scale * (1.0 + 1e-15), "unchanged after {bad}");
        }
        ct.set_scale(&params, 1.0).unwrap();
        // another set's parameters
        let other = Params::named("insecure-n12").unwrap();
        assert!(matches!(
            ct.set_scale(&other, scale),
            Err(CkksError::ParamsMismatch)
        ));
    }
}
