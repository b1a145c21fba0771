//! Debugging aid: precision at each bootstrapping stage on the N=2^12 test set;
//! `BUDGET=n16-boot` prints rotation counts and key sizes instead.
use ckks::bootstrap::{self, Bootstrapper};
use ckks::*;
use std::sync::Arc;
fn main() {
    if let Ok(name) = std::env::var("BUDGET") {
        return key_budget(&name);
    }
    let params = Params::named("insecure-boot-n12").unwrap();
    let mut cfg = bootstrap::config_for(&params).unwrap();
    if let Ok(d) = std::env::var("SINE_DEGREE") {
        // direct sine series instead of cosine + double angles
        cfg.double_angle = 0;
        cfg.cheb_degree = d.parse().unwrap();
    }
    println!(
        "EvalMod: degree {} + {} double angles = {} levels",
        cfg.cheb_degree,
        cfg.double_angle,
        cfg.evalmod_levels()
    );
    let mut kg = KeyGenerator::with_seed(params.clone(), [3u8; 32]);
    let sk = kg.secret_key();
    let keys = kg.bootstrap_keys(&sk, &cfg, &[]);
    let boot = Bootstrapper::new(params.clone(), cfg.clone(), keys.boot).unwrap();
    let eval = Evaluator::new(params.clone(), Arc::new(keys.eval)).expect("evaluator");
    let enc = Encoder::new(params.clone());
    let n = params.max_slots();
    let z: Vec<Complex64> = (0..n)
        .map(|i| Complex64::new((i as f64 * 0.1).sin() * 0.5, (i as f64 * 0.37).cos() * 0.5))
        .collect();
    let pt = enc.encode(&z, 0, params.default_scale(), n).unwrap();
    let ct = Encryptor::new(params.clone()).encrypt_sk(&sk, &pt).unwrap();
    let dec = Decryptor::new(&sk);
    let show = |label: &str, c: &Ciphertext| {
        let v = enc.decode(&dec.decrypt(c).unwrap());
        let mx = v
            .iter()
            .map(|x| x.re.abs().max(x.im.abs()))
            .fold(0.0, f64::max);
        println!(
            "{label}: level {} scale 2^{:.2} max|.| {mx:.4} first {:.6}",
            c.level(),
            c.scale().log2(),
            v[0]
        );
        v
    };
    show("input", &ct);
    let ctp = boot.prescale(&eval, &ct).unwrap();
    let raised = boot.raise(&eval, &ctp).unwrap();
    let (re, _im) = boot.coeffs_to_slots(&eval, &raised).unwrap();
    let vre = show("c2s re", &re);
    // fractional parts check: y*K should be near integers + small
    let k = cfg.k;
    let frac: f64 = vre
        .iter()
        .map(|y| {
            let t = y.re * k;
            (t - t.round()).abs()
        })
        .fold(0.0, f64::max);
    let imag: f64 = vre.iter().map(|y| y.im.abs()).fold(0.0, f64::max);
    println!("  max |frac(K y)| = {frac:e}, max |imag| = {imag:e}");
    let em = boot.eval_mod(&eval, &re).unwrap();
    let vem = show("evalmod re", &em);
    let err: f64 = vre
        .iter()
        .zip(&vem)
        .map(|(y, s)| (s.re - (2.0 * std::f64::consts::PI * k * y.re).sin()).abs())
        .fold(0.0, f64::max);
    println!("  max |evalmod - sin(2 pi K y)| = {err:e}");
    let t = std::time::Instant::now();
    let em2 = boot.eval_mod(&eval, &re).unwrap();
    println!(
        "  one EvalMod: {:.0} ms (level {} -> {})",
        t.elapsed().as_secs_f64() * 1e3,
        re.level(),
        em2.level()
    );
    let out = boot.bootstrap(&eval, &ct).unwrap();
    let v = show("out", &out);
    let e: f64 = v
        .iter()
        .zip(&z)
        .map(|(a, b)| (a - b).norm())
        .fold(0.0, f64::max);
    println!("final max err {e:e} = 2^{:.1}", e.log2());
}

/// Rotation counts and key sizes of a bootstrappable set (no keys generated).
#[allow(dead_code)]
pub fn key_budget(name: &str) {
    let params = Params::named(name).unwrap();
    let cfg = bootstrap::config_for(&params).unwrap();
    let rots = bootstrap::rotations(&params, &cfg);
    let l = params.max_level();
    let key = params.dnum_at(l) * 2 * (l + 1 + params.p.len()) * params.n * 8;
    println!(
        "{name}: {} rotations (+conj), {} levels after, one key {:.1} MB, all {:.2} GB",
        rots.len(),
        bootstrap::levels_after(&params, &cfg),
        key as f64 / 1e6,
        (rots.len() + 2) as f64 * key as f64 / 1e9
    );
}
