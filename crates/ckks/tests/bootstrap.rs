//! Bootstrapping on the insecure N = 2^12 test set: the homomorphic DFT
//! pieces against plain arithmetic, and full bootstraps restoring levels.

mod common;
use ckks::bootstrap::{self, BootstrapConfig, Bootstrapper};
use ckks::*;
use common::{precision_bits, values};
use std::sync::{Arc, OnceLock};

struct Boot {
    params: Arc<Params>,
    sk: SecretKey,
    pk: PublicKey,
    enc: Encoder,
    eval: Evaluator,
    boot: Bootstrapper,
    keys: bootstrap::BootstrapKeys,
}

fn boot() -> &'static Boot {
    static B: OnceLock<Boot> = OnceLock::new();
    B.get_or_init(|| {
        let params = Params::named("insecure-boot-n12").unwrap();
        let cfg = bootstrap::config_for(&params).unwrap();
        let mut kg = KeyGenerator::with_seed(params.clone(), [3u8; 32]);
        let sk = kg.secret_key();
        let pk = kg.public_key(&sk);
        let keys = kg.bootstrap_keys(&sk, &cfg, &[]);
        let boot = Bootstrapper::new(params.clone(), cfg, keys.boot.clone()).unwrap();
        Boot {
            enc: Encoder::new(params.clone()),
            eval: Evaluator::new(params.clone(), Arc::new(keys.eval)).unwrap(),
            params,
            sk,
            pk,
            boot,
            keys: keys.boot,
        }
    })
}

impl Boot {
    fn encrypt(&self, v: &[Complex64], level: usize, scale: f64) -> Ciphertext {
        let pt = self
            .enc
            .encode(v, level, scale, self.params.max_slots())
            .unwrap();
        Encryptor::new(self.params.clone())
            .encrypt_pk(&self.pk, &pt)
            .unwrap()
    }
    fn decrypt(&self, ct: &Ciphertext) -> Vec<Complex64> {
        self.enc
            .decode(&Decryptor::new(&self.sk).decrypt(ct).unwrap())
    }
}

/// CoeffsToSlots followed by SlotsToCoeffs is the identity (no EvalMod):
/// checks the homomorphic DFT factorization, BSGS transforms and the scale plan.
#[test]
fn coeffs_to_slots_then_back_is_identity() {
    let b = boot();
    let p = &b.params;
    let n = p.max_slots();
    let z = values(n, 42);
    let cfg = b.boot.config();
    let top = p.max_level();
    let sigma = p.q[top - cfg.c2s_levels] as f64;
    let ct = b.encrypt(&z, top, sigma);
    let (re, im) = b.boot.coeffs_to_slots(&b.eval, &ct).unwrap();
    assert_eq!(re.level(), top - cfg.c2s_levels);
    let delta = sigma / (2.0 * std::f64::consts::PI * cfg.k);
    // SlotsToCoeffs keys serve only the levels below EvalMod
    let low = bootstrap::s2c_level(p, cfg);
    assert!(matches!(
        b.boot
            .slots_to_coeffs(&b.eval, &re, &im, delta, p.default_scale()),
        Err(CkksError::KeyLevel { .. })
    ));
    let (re, im) = (
        b.eval.drop_level(&re, low).unwrap(),
        b.eval.drop_level(&im, low).unwrap(),
    );
    let out = b
        .boot
        .slots_to_coeffs(&b.eval, &re, &im, delta, p.default_scale())
        .unwrap();
    assert_eq!(out.level(), bootstrap::levels_after(p, cfg));
    assert_eq!(out.scale(), p.default_scale());
    let bits = precision_bits(&b.decrypt(&out), &z);
    assert!(bits > 20.0, "{bits} bits");
}

/// A full bootstrap restores levels and keeps the message.
#[test]
fn bootstrap_restores_levels_and_precision() {
    let b = boot();
    let p = &b.params;
    let n = p.max_slots();
    let z = values(n, 7);
    let ct = b.encrypt(&z, 0, p.default_scale());
    let out = b.boot.bootstrap(&b.eval, &ct).unwrap();
    assert_eq!(out.level(), b.boot.levels_after());
    assert!(out.level() >= 2);
    assert_eq!(out.scale(), p.default_scale());
    let got = b.decrypt(&out);
    let bits = precision_bits(&got, &z);
    eprintln!("bootstrap precision: {bits:.1} bits (min over slots)");
    assert!(bits > 19.0, "{bits} bits");
    // the refreshed ciphertext computes: square it
    let sq = b.eval.rescale(&b.eval.square(&out).unwrap()).unwrap();
    let want: Vec<_> = z.iter().map(|x| x * x).collect();
    assert!(precision_bits(&b.decrypt(&sq), &want) > 18.0);
}

/// Sparse packing: 64 slots (period 64) are refreshed through the trace onto
/// their subring and 64-slot homomorphic DFTs.
#[test]
fn sparse_slot_bootstrap() {
    let b = boot();
    let p = &b.params;
    let slots = 64;
    let cfg = bootstrap::config_for(p)
        .unwrap()
        .with_slots(slots, p.max_slots());
    let mut kg = KeyGenerator::with_seed(p.clone(), [9u8; 32]);
    let sk = kg.secret_key();
    let keys = kg.bootstrap_keys(&sk, &cfg, &[]);
    let boot = Bootstrapper::new(p.clone(), cfg, keys.boot).unwrap();
    let eval = Evaluator::new(p.clone(), Arc::new(keys.eval)).unwrap();
    let z = values(slots, 5);
    let pt = b.enc.encode(&z, 0, p.default_scale(), slots).unwrap();
    let ct = Encryptor::new(p.clone()).encrypt_sk(&sk, &pt).unwrap();
    let out = boot.bootstrap(&eval, &ct).unwrap();
    assert_eq!(out.slots(), slots);
    assert_eq!(out.level(), boot.levels_after());
    let got = b.enc.decode(&Decryptor::new(&sk).decrypt(&out).unwrap());
    let bits = precision_bits(&got, &z);
    eprintln!("sparse bootstrap precision: {bits:.1} bits");
    assert!(bits > 19.0, "{bits} bits");
}

/// A bootstrapper holding its DFT diagonals as integer coefficients gives
/// the same ciphertext, bit for bit, as one holding them in NTT form, from
/// a fraction of the memory (SlotsToCoeffs encodings included once used).
#[test]
fn coefficient_storage_bootstraps_bit_identically() {
    use ckks::linear::DiagonalStorage;
    let b = boot();
    let p = &b.params;
    let cfg = bootstrap::config_for(p).unwrap();
    let compact = Bootstrapper::with_storage(
        p.clone(),
        cfg,
        b.keys.clone(),
        DiagonalStorage::Coefficients,
    )
    .unwrap();
    assert_eq!(compact.storage(), DiagonalStorage::Coefficients);
    let z = values(p.max_slots(), 31);
    let ct = b.encrypt(&z, 0, p.default_scale());
    let x = b.boot.bootstrap(&b.eval, &ct).unwrap();
    let y = compact.bootstrap(&b.eval, &ct).unwrap();
    assert!(x.to_bytes(p).unwrap() == y.to_bytes(p).unwrap());
    let (full, small) = (b.boot.transform_bytes(), compact.transform_bytes());
    eprintln!("transform bytes: NTT form {full}, coefficients {small}");
    assert!(small * 8 < full, "{small} vs {full}");
}

/// Sparse packing at 2^11 (full), 2^9 and 2^7 slots of the N = 2^12
/// set: slots <= N/4 pack both coefficient halves into one ciphertext
/// (one EvalMod), N/2 does not; all keep 19 bits (min over slots) and land
/// at `levels_after`.
#[test]
fn sparse_bootstrap_at_each_size() {
    let b = boot();
    let p = &b.params;
    let max = p.max_slots();
    let mut slots = max;
    while slots >= 128 {
        let cfg = bootstrap::config_for(p).unwrap().with_slots(slots, max);
        assert_eq!(cfg.packed(max), 2 * slots <= max);
        let mut kg = KeyGenerator::with_seed(p.clone(), [11u8; 32]);
        let sk = kg.secret_key();
        let keys = kg.bootstrap_keys(&sk, &cfg, &[]);
        let boot = Bootstrapper::new(p.clone(), cfg, keys.boot).unwrap();
        let eval = Evaluator::new(p.clone(), Arc::new(keys.eval)).unwrap();
        let z = values(slots, slots as u64);
        let pt = b.enc.encode(&z, 0, p.default_scale(), slots).unwrap();
        let ct = Encryptor::new(p.clone()).encrypt_sk(&sk, &pt).unwrap();
        let out = boot.bootstrap(&eval, &ct).unwrap();
        assert_eq!((out.slots(), out.level()), (slots, boot.levels_after()));
        let got = b.enc.decode(&Decryptor::new(&sk).decrypt(&out).unwrap());
        let bits = precision_bits(&got, &z);
        eprintln!(
            "{slots} slots (packed: {}): {bits:.1} bits",
            boot.is_packed()
        );
        assert!(bits > 19.0, "{slots} slots: {bits} bits");
        // the split and packed entry points refuse the other kind
        if boot.is_packed() {
            assert!(boot.coeffs_to_slots(&eval, &ct).is_err());
        } else {
            assert!(boot.coeffs_to_slots_packed(&eval, &ct).is_err());
        }
        slots /= 4;
    }
}

/// Bootstrapping keys survive serialization, and the reader refuses a
/// to-sparse key above level 0 (a sparse-secret sample at a large modulus).
#[test]
fn bootstrap_keys_round_trip() {
    use ckks::bootstrap::BootstrapKeys;
    let b = boot();
    let p = &b.params;
    let cfg = bootstrap::config_for(p).unwrap();
    let mut kg = KeyGenerator::with_seed(p.clone(), [4u8; 32]);
    let sk = kg.secret_key();
    let keys = kg.bootstrap_keys(&sk, &cfg, &[]);
    let bytes = keys.boot.to_bytes(p).unwrap();
    let back = BootstrapKeys::from_bytes(&bytes, p).unwrap();
    assert_eq!(back.to_bytes(p).unwrap(), bytes);
    for cut in [0, 10, bytes.len() / 2, bytes.len() - 1] {
        assert!(BootstrapKeys::from_bytes(&bytes[..cut], p).is_err());
    }
    // a to-sparse key whose limb count claims level 1 (a sparse-secret
    // sample modulo q_0 q_1 P) is refused
    let header = ckks::serialize::header_size(p);
    let mut bad = bytes.clone();
    let at = header + 4; // digits u32, then limbs u32
    let limbs = u32::from_le_bytes(bad[at..at + 4].try_into().unwrap());
    bad[at..at + 4].copy_from_slice(&(limbs + 1).to_le_bytes());
    let err = BootstrapKeys::from_bytes(&bad, p).err().unwrap();
    assert!(err.to_string().contains("to-sparse key"), "{err}");
    // the deserialized keys bootstrap
    let boot = Bootstrapper::new(p.clone(), cfg, back).unwrap();
    let eval = Evaluator::new(p.clone(), Arc::new(keys.eval)).unwrap();
    let z = values(p.max_slots(), 3);
    let pt = b
        .enc
        .encode(&z, 0, p.default_scale(), p.max_slots())
        .unwrap();
    let ct = Encryptor::new(p.clone()).encrypt_sk(&sk, &pt).unwrap();
    let out = boot.bootstrap(&eval, &ct).unwrap();
    let got = b.enc.decode(&Decryptor::new(&sk).decrypt(&out).unwrap());
    assert!(precision_bits(&got, &z) > 19.0);
}

/// Issue 17: sparse packing with fewer slots than the DFT grouping needs
/// (log2(slots) below the configured transform levels) is refused at
/// construction instead of refreshing to the wrong level with error ~0.5.
#[test]
fn too_few_sparse_slots_are_refused_at_construction() {
    let b = boot();
    let cfg = b.boot.config().clone();
    let max = b.params.max_slots();
    for slots in [2usize, 4] {
        let r = Bootstrapper::new(
            b.params.clone(),
            cfg.clone().with_slots(slots, max),
            b.keys.clone(),
        );
        assert!(
            matches!(r, Err(CkksError::InvalidParams(ref m)) if m.contains("slots give")),
            "{slots} slots accepted"
        );
    }
    assert!(Bootstrapper::new(b.params.clone(), cfg.with_slots(8, max), b.keys.clone()).is_ok());
}

/// Issue 17: a level-0 input above q_0 / 2^message_ratio is refused; one
/// with a level to spare is lowered first and comes back right.
#[test]
fn bootstrap_input_scale_is_checked() {
    let b = boot();
    let n = b.params.max_slots();
    let v: Vec<Complex64> = values(n, 8).iter().map(|x| x * 0.5).collect();
    let high = 2f64.powi(58);
    let ct0 = b.encrypt(&v, 0, high);
    assert!(matches!(
        b.boot.bootstrap(&b.eval, &ct0),
        Err(CkksError::ScaleOutOfBounds(_))
    ));
    let ct1 = b.encrypt(&v, 1, high);
    let out = b.boot.bootstrap(&b.eval, &ct1).unwrap();
    assert_eq!(out.level(), b.boot.levels_after());
    let bits = precision_bits(&b.decrypt(&out), &v);
    assert!(bits > 15.0, "{bits:.1} bits");
    // the documented bound on slot magnitudes
    let cfg = b.boot.config();
    let bound = bootstrap::input_bound(cfg, 20.0);
    assert!(bound > 0.1 && bound < 1.0, "{bound}");
}

/// Issue 17: within the documented input bound every input keeps
/// `PRECISION_BITS` (20), whatever its spectrum: random slots, a constant
/// vector (all its energy in one coefficient, where the sine departs most
/// from the identity: 13 bits at magnitude 1 before the bound was stated)
/// and a single spike; at full slots and at the fewest slots the
/// constructor accepts (`min_slots`).
#[test]
fn precision_at_the_input_bound_for_every_spectrum() {
    let b = boot();
    let p = &b.params;
    let max = p.max_slots();
    let base = b.boot.config().clone();
    let mut kg = KeyGenerator::with_seed(p.clone(), [12u8; 32]);
    let sk = kg.secret_key();
    for slots in [max, bootstrap::min_slots(&base)] {
        let cfg = base.clone().with_slots(slots, max);
        let keys = kg.bootstrap_keys(&sk, &cfg, &[]);
        let boot = Bootstrapper::new(p.clone(), cfg, keys.boot).unwrap();
        let eval = Evaluator::new(p.clone(), Arc::new(keys.eval)).unwrap();
        let bound = boot.input_bound();
        assert!(bound > 0.1 && bound < 1.0, "{bound}");
        let c = |x: f64, y: f64| Complex64::new(x, y);
        let random: Vec<_> = values(slots, 21)
            .iter()
            .map(|z| z * (bound / z.norm().max(1.0)))
            .collect();
        let inputs = [
            ("random", random),
            ("constant", vec![c(bound, 0.0); slots]),
            ("constant -i", vec![c(0.0, -bound); slots]),
            (
                "spike",
                (0..slots)
                    .map(|j| c(if j == 1 { bound } else { 0.0 }, 0.0))
                    .collect(),
            ),
        ];
        for (what, z) in inputs {
            let pt = b.enc.encode(&z, 0, p.default_scale(), slots).unwrap();
            let ct = Encryptor::new(p.clone()).encrypt_sk(&sk, &pt).unwrap();
            let out = boot.bootstrap(&eval, &ct).unwrap();
            assert_eq!((out.level(), out.slots()), (boot.levels_after(), slots));
            let got = b.enc.decode(&Decryptor::new(&sk).decrypt(&out).unwrap());
            let bits = precision_bits(&got, &z);
            eprintln!("{slots} slots, {what} at the bound {bound:.3}: {bits:.1} bits");
            assert!(
                bits >= bootstrap::PRECISION_BITS,
                "{slots} slots, {what}: {bits:.1} bits"
            );
        }
    }
}

/// Issue 17: bootstrapping keys, evaluators and ciphertexts of another
/// parameter set are refused by the bootstrapper and each of its stages;
/// configurations that cannot be right are refused at construction.
#[test]
fn bootstrapper_refuses_other_sets_and_bad_configurations() {
    let b = boot();
    let p = &b.params;
    let cfg = b.boot.config().clone();
    // keys made for a set of the same ring degree
    let other = Params::named("insecure-boot-n12-l9").unwrap();
    let mut kg = KeyGenerator::with_seed(other.clone(), [13u8; 32]);
    let sk_o = kg.secret_key();
    let ocfg = bootstrap::config_for(&other).unwrap();
    let okeys = kg.bootstrap_keys(&sk_o, &ocfg, &[]);
    assert!(matches!(
        Bootstrapper::new(p.clone(), cfg.clone(), okeys.boot.clone()),
        Err(CkksError::ParamsMismatch)
    ));
    assert!(matches!(
        okeys.boot.to_bytes(p),
        Err(CkksError::ParamsMismatch)
    ));
    // an evaluator of another set at every stage
    let oeval = Evaluator::new(other.clone(), Arc::new(okeys.eval)).unwrap();
    let ct = b.encrypt(&values(p.max_slots(), 2), 0, p.default_scale());
    let mm = |r: Result<Ciphertext>| matches!(r, Err(CkksError::ParamsMismatch));
    assert!(mm(b.boot.bootstrap(&oeval, &ct)));
    assert!(mm(b.boot.prescale(&oeval, &ct)));
    assert!(mm(b.boot.raise(&oeval, &ct)));
    assert!(mm(b.boot.eval_mod(&oeval, &ct)));
    assert!(matches!(
        b.boot.coeffs_to_slots(&oeval, &ct),
        Err(CkksError::ParamsMismatch)
    ));
    assert!(mm(b.boot.slots_to_coeffs(&oeval, &ct, &ct, 1e10, 1e12)));
    // configurations that cannot be right
    let bad = [
        BootstrapConfig {
            c2s_levels: 0,
            ..cfg.clone()
        },
        BootstrapConfig {
            s2c_levels: 0,
            ..cfg.clone()
        },
        BootstrapConfig {
            k: f64::NAN,
            ..cfg.clone()
        },
        BootstrapConfig {
            k: 0.0,
            ..cfg.clone()
        },
        BootstrapConfig {
            cheb_degree: 0,
            ..cfg.clone()
        },
        BootstrapConfig {
            h: 0,
            ..cfg.clone()
        },
        BootstrapConfig {
            h: p.n + 1,
            ..cfg.clone()
        },
        BootstrapConfig {
            log_message_ratio: 55,
            ..cfg.clone()
        },
        BootstrapConfig {
            double_angle: 40,
            ..cfg.clone()
        },
        BootstrapConfig {
            cheb_degree: 1 << 20,
            ..cfg.clone()
        },
        BootstrapConfig {
            sine_error_bits: f64::NAN,
            ..cfg.clone()
        },
        BootstrapConfig {
            sine_error_bits: bootstrap::PRECISION_BITS,
            ..cfg.clone()
        },
    ];
    for c in bad {
        assert!(
            matches!(
                Bootstrapper::new(p.clone(), c.clone(), b.keys.clone()),
                Err(CkksError::InvalidParams(_))
            ),
            "{c:?} accepted"
        );
    }
    for slots in [0usize, 3, 2 * p.max_slots()] {
        let c = BootstrapConfig {
            slots,
            ..cfg.clone()
        };
        assert!(matches!(
            Bootstrapper::new(p.clone(), c, b.keys.clone()),
            Err(CkksError::InvalidSlots(_))
        ));
    }
}

/// EvalMod alone: sin(2 pi K y) for y K anywhere in [-(K - 1/2), K] (the
/// even cosine of the shifted input, then the double angles; every
/// overflow |I| <= K - 1 with a margin), at exactly `evalmod_levels` below
/// its input.
#[test]
fn eval_mod_is_the_scaled_sine_on_its_whole_interval() {
    let b = boot();
    let p = &b.params;
    let cfg = b.boot.config();
    let n = p.max_slots();
    let lo = -(cfg.k - 0.5) / cfg.k;
    let ys: Vec<f64> = values(n, 17)
        .iter()
        .enumerate()
        .map(|(i, z)| match i {
            0 => lo,
            1 => 1.0,
            _ => lo + (1.0 - lo) * (z.re * std::f64::consts::SQRT_2 + 1.0).clamp(0.0, 2.0) / 2.0,
        })
        .collect();
    let level = p.max_level() - cfg.c2s_levels;
    let sigma = p.q[level] as f64;
    let input: Vec<Complex64> = ys.iter().map(|&y| Complex64::new(y, 0.0)).collect();
    let ct = b.encrypt(&input, level, sigma);
    let held: Vec<f64> = b.decrypt(&ct).iter().map(|z| z.re).collect();
    let out = b.boot.eval_mod(&b.eval, &ct).unwrap();
    assert_eq!(out.level(), level - cfg.evalmod_levels());
    let got = b.decrypt(&out);
    let err = got
        .iter()
        .zip(&held)
        .map(|(g, &y)| (g.re - (2.0 * std::f64::consts::PI * cfg.k * y).sin()).abs())
        .fold(0.0, f64::max);
    eprintln!("EvalMod on its interval: max error {err:.3e}");
    // measured 6.4e-12 (input noise at scale 2^60 times the slope 2 pi K,
    // plus the evaluation's rounding)
    assert!(err < 1e-9, "{err:e}");
    // too few levels are refused
    let low = b.eval.drop_level(&ct, cfg.evalmod_levels() - 1).unwrap();
    assert!(matches!(
        b.boot.eval_mod(&b.eval, &low),
        Err(CkksError::NotEnoughLevels { .. })
    ));
}
