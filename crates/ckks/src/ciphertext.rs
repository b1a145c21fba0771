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
#[derive(Clone, Debug)]
pub struct Ciphertext {
    pub(crate) c: Vec<Poly>,
    /// Level: limbs q_0..q_level are present.
    pub level: usize,
    /// Scale of the encrypted message.
    pub scale: f64,
    /// Number of complex slots.
    pub slots: usize,
    /// [`Params::id`] of the set the ciphertext belongs to: every operation
    /// that combines it with a key, plaintext or ciphertext checks it.
    pub(crate) params_id: u64,
}

impl Ciphertext {
    /// [`Params::id`] of the parameter set this ciphertext belongs to.
    pub fn params_id(&self) -> u64 {
        self.params_id
    }

    /// Fails unless the public fields agree with the polynomials for
    /// `params` (a level the set has, `level + 1` limbs of degree N in
    /// every component, a valid slot count): a caller may have edited them,
    /// and a mismatch would index out of range.
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
