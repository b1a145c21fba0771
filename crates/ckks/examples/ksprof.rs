//! Profiling aid: per-stage CPU time of key switching on one thread.
//! `cargo run --release -p ckks --example ksprof -- n15-q760`
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

use ckks::*;
use std::sync::Arc;

fn cpu_ms() -> f64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes into the timespec we own.
    unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    ts.tv_sec as f64 * 1e3 + ts.tv_nsec as f64 / 1e6
}

fn time(label: &str, reps: usize, mut f: impl FnMut()) {
    f();
    let mut ts: Vec<f64> = (0..reps.max(3))
        .map(|_| {
            let t = cpu_ms();
            f();
            cpu_ms() - t
        })
        .collect();
    ts.sort_by(f64::total_cmp);
    println!(
        "{label}: min {:.2} ms, median {:.2} ms cpu",
        ts[0],
        ts[ts.len() / 2]
    );
}

fn main() {
    let name = std::env::args().nth(1).unwrap_or("n15-q760".into());
    let params = Params::named(&name).unwrap();
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(1)
        .build()
        .unwrap();
    pool.install(|| {
        let n = params.n;
        let mut buf: Vec<u64> = (0..n as u64).map(|i| i * 12345 % params.q[1]).collect();
        time("ntt (q1)", 100, || params.ring.ntt(1, &mut buf));
        time("intt (q1)", 100, || params.ring.intt(1, &mut buf));
        let mut buf0: Vec<u64> = (0..n as u64).map(|i| i * 12345 % params.q[0]).collect();
        time("ntt (q0)", 100, || params.ring.ntt(0, &mut buf0));
        let lvl = params.max_level();
        let mut kg = KeyGenerator::new(params.clone());
        let sk = kg.secret_key();
        let keys = EvaluationKeys {
            relin: Some(kg.relin_key(&sk)),
            galois: Some(kg.galois_keys(&sk, &[1], false)),
        };
        let ev = Evaluator::new(params.clone(), Arc::new(keys)).expect("evaluator");
        let enc = Encoder::new(params.clone());
        let pt = enc
            .encode_real(&[1.0, 2.0], lvl, params.default_scale(), 4)
            .unwrap();
        let ct = Encryptor::new(params.clone()).encrypt_sk(&sk, &pt).unwrap();
        if std::env::var("ONLY_MUL").is_ok() {
            for _ in 0..100 {
                ev.mul_relin(&ct, &ct).unwrap();
            }
            return;
        }
        time("decompose", 5, || {
            ev.decompose(&ct).unwrap();
        });
        time("mul (tensor only)", 5, || {
            ev.mul(&ct, &ct).unwrap();
        });
        time("mul_relin", 21, || {
            ev.mul_relin(&ct, &ct).unwrap();
        });
        time("rotate", 5, || {
            ev.rotate(&ct, 1).unwrap();
        });
    });
}
