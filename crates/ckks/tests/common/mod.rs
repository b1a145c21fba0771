//! Shared helpers for the engine's integration tests.
#![allow(dead_code)]

use ckks::*;
use std::sync::Arc;

/// Everything a test needs for one parameter set.
pub struct Ctx {
    pub params: Arc<Params>,
    pub sk: SecretKey,
    pub pk: PublicKey,
    pub enc: Encoder,
    pub eval: Evaluator,
}

impl Ctx {
    pub fn new(name: &str, rotations: &[i64]) -> Self {
        let params = Params::named(name).unwrap();
        let mut kg = KeyGenerator::with_seed(params.clone(), [7u8; 32]);
        let sk = kg.secret_key();
        let pk = kg.public_key(&sk);
        let keys = EvaluationKeys {
            relin: Some(kg.relin_key(&sk)),
            galois: Some(kg.galois_keys(&sk, rotations, true)),
        };
        Self {
            enc: Encoder::new(params.clone()),
            eval: Evaluator::new(params.clone(), Arc::new(keys)).unwrap(),
            params,
            sk,
            pk,
        }
    }

    pub fn slots(&self) -> usize {
        self.params.max_slots()
    }

    pub fn encrypt(&self, v: &[Complex64]) -> Ciphertext {
        let pt = self
            .enc
            .encode(
                v,
                self.params.max_level(),
                self.params.default_scale(),
                self.slots(),
            )
            .unwrap();
        Encryptor::new(self.params.clone())
            .encrypt_pk(&self.pk, &pt)
            .unwrap()
    }

    pub fn decrypt(&self, ct: &Ciphertext) -> Vec<Complex64> {
        let pt = Decryptor::new(&self.sk).decrypt(ct).unwrap();
        self.enc.decode(&pt)
    }
}

/// Deterministic pseudo-random complex values of magnitude <= 1.
pub fn values(n: usize, seed: u64) -> Vec<Complex64> {
    let mut x = seed
        .wrapping_mul(6364136223846793005)
        .wrapping_add(1442695040888963407);
    let mut next = || {
        x = x
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        ((x >> 11) as f64 / (1u64 << 53) as f64) * 2.0 - 1.0
    };
    (0..n)
        .map(|_| Complex64::new(next(), next()) * std::f64::consts::FRAC_1_SQRT_2)
        .collect()
}

/// Bits of precision: -log2(max |got - want|), for values of magnitude about 1.
pub fn precision_bits(got: &[Complex64], want: &[Complex64]) -> f64 {
    let err = got
        .iter()
        .zip(want)
        .map(|(a, b)| (a - b).norm())
        .fold(0.0f64, f64::max);
    -err.max(1e-300).log2()
}
