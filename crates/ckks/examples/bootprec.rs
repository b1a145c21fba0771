//! Bootstrapping precision at the documented input bound, for inputs of
//! every spectrum: random slots, a constant vector (all the energy in one
//! coefficient) and a single spike.
//!
//! ```text
//! cargo run --release -p ckks --example bootprec [-- SET [SLOTS ...]]
//! ```
//!
//! SET defaults to `insecure-boot-n12-l9`, SLOTS to the full N/2. `RATIO=r`
//! overrides `log_message_ratio`, `BOUND=b` the slot magnitude (default:
//! the configuration's [`bootstrap::Bootstrapper::input_bound`]). Prints one
//! line per (slots, input): the bound, worst-slot and mean bits
//! (-log2 of the absolute error).
use ckks::bootstrap::{self, Bootstrapper};
use ckks::*;
use std::sync::Arc;

fn main() {
    let mut args = std::env::args().skip(1);
    let name = args
        .next()
        .unwrap_or_else(|| "insecure-boot-n12-l9".to_string());
    let params = Params::named(&name).expect("parameter set");
    let max = params.max_slots();
    let mut slot_counts: Vec<usize> = args.map(|a| a.parse().expect("slot count")).collect();
    if slot_counts.is_empty() {
        slot_counts.push(max);
    }
    let enc = Encoder::new(params.clone());
    for slots in slot_counts {
        let mut cfg = bootstrap::config_for(&params)
            .expect("a bootstrappable set")
            .with_slots(slots, max);
        if let Ok(r) = std::env::var("RATIO") {
            cfg.log_message_ratio = r.parse().expect("RATIO");
        }
        if let Ok(d) = std::env::var("DEG") {
            cfg.cheb_degree = d.parse().expect("DEG");
        }
        if let Ok(d) = std::env::var("DA") {
            cfg.double_angle = d.parse().expect("DA");
        }
        if let Ok(k) = std::env::var("K") {
            cfg.k = k.parse().expect("K");
        }
        let mut kg = KeyGenerator::with_seed(params.clone(), [5u8; 32]);
        let sk = kg.secret_key();
        let keys = kg.bootstrap_keys(&sk, &cfg, &[]);
        let boot = Bootstrapper::new(params.clone(), cfg.clone(), keys.boot).expect("bootstrapper");
        let eval = Evaluator::new(params.clone(), Arc::new(keys.eval)).expect("evaluator");
        let bound = match std::env::var("BOUND") {
            Ok(b) => b.parse().expect("BOUND"),
            Err(_) => boot.input_bound(),
        };
        let mut rng = 0x2545_f491_4f6c_dd1du64;
        let mut next = move || {
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            (rng >> 11) as f64 / (1u64 << 53) as f64 * 2.0 - 1.0
        };
        let c = |x: f64, y: f64| Complex64::new(x, y);
        let inputs: Vec<(&str, Vec<Complex64>)> = vec![
            (
                "random (|re|, |im| <= B)",
                (0..slots)
                    .map(|_| c(next() * bound, next() * bound))
                    .collect(),
            ),
            ("constant B", vec![c(bound, 0.0); slots]),
            ("constant -B", vec![c(-bound, 0.0); slots]),
            ("constant iB", vec![c(0.0, bound); slots]),
            (
                "spike B at slot 0",
                (0..slots)
                    .map(|j| if j == 0 { c(bound, 0.0) } else { c(0.0, 0.0) })
                    .collect(),
            ),
            (
                "values in [B/2, B]",
                (0..slots)
                    .map(|_| c(bound * (0.5 + 0.5 * next().abs()), 0.0))
                    .collect(),
            ),
        ];
        let t = std::time::Instant::now();
        for (label, z) in &inputs {
            let pt = enc
                .encode(z, 0, params.default_scale(), slots)
                .expect("encode");
            let ct = Encryptor::new(params.clone())
                .encrypt_sk(&sk, &pt)
                .expect("encrypt");
            let out = boot.bootstrap(&eval, &ct).expect("bootstrap");
            let got = enc.decode(&Decryptor::new(&sk).decrypt(&out).expect("decrypt"));
            let errs: Vec<f64> = got.iter().zip(z).map(|(a, b)| (a - b).norm()).collect();
            let worst = errs.iter().copied().fold(0.0f64, f64::max);
            let mean = errs.iter().sum::<f64>() / errs.len() as f64;
            println!(
                "{name} slots {slots:5} ratio {:2} bound {bound:.4}: {label:28} worst {:5.1} bits, mean {:5.1} bits",
                cfg.log_message_ratio,
                -worst.log2(),
                -mean.log2()
            );
        }
        eprintln!(
            "  ({} bootstraps in {:.1} s)",
            inputs.len(),
            t.elapsed().as_secs_f64()
        );
    }
}
