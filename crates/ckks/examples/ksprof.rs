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

/// The stages of one key switch at `level` on synthetic data, with the
/// shapes of `keyswitch.rs` (ModUp: INTT, conversion, NTT per digit; inner
/// product; ModDown of one polynomial: INTT, conversion, NTT, final scaling):
/// where the time of mul+relinearize goes.
fn stages(params: &Params, level: usize) {
    let n = params.n;
    let ring = &params.ring;
    let qidx = params.q_idx(level);
    let qp = params.qp_idx(level);
    let pidx = params.p_idx();
    let alpha = params.alpha;
    let dnum = params.dnum_at(level);
    let fill = |idx: &[usize]| {
        let mut p = ckks::ring::Poly::zero(n, idx.len());
        for (k, &mi) in idx.iter().enumerate() {
            let q = ring.moduli[mi].value;
            for (j, x) in p.limb_mut(k).iter_mut().enumerate() {
                *x = (j as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15) % q;
            }
        }
        p
    };
    let mut c = fill(&qidx);
    time("stage modup.intt", 5, || ring.intt_poly(&mut c, &qidx));
    let digits: Vec<(Vec<usize>, Vec<usize>)> = (0..dnum)
        .map(|j| {
            let lo = j * alpha;
            let hi = ((j + 1) * alpha).min(level + 1);
            let from: Vec<usize> = (lo..hi).collect();
            let to: Vec<usize> = qp.iter().copied().filter(|&i| i < lo || i >= hi).collect();
            (from, to)
        })
        .collect();
    let srcs: Vec<ckks::ring::Poly> = digits.iter().map(|(f, _)| fill(f)).collect();
    let mut exts: Vec<ckks::ring::Poly> = Vec::new();
    time("stage modup.conversion", 5, || {
        exts = digits
            .iter()
            .zip(&srcs)
            .map(|((f, t), s)| ring.convert_exact(s, f, t))
            .collect();
    });
    time("stage modup.ntt", 5, || {
        for (e, (_, t)) in exts.iter_mut().zip(&digits) {
            ring.ntt_poly(e, t);
        }
    });
    let ds: Vec<ckks::ring::Poly> = (0..dnum).map(|_| fill(&qp)).collect();
    let kb: Vec<ckks::ring::Poly> = (0..dnum).map(|_| fill(&qp)).collect();
    let ka: Vec<ckks::ring::Poly> = (0..dnum).map(|_| fill(&qp)).collect();
    // As `keyswitch::inner_product`: per limb, both outputs in one pass.
    time("stage inner_product", 5, || {
        let mut a0 = ckks::ring::Poly::zero(n, qp.len());
        let mut a1 = ckks::ring::Poly::zero(n, qp.len());
        for (k, &mi) in qp.iter().enumerate() {
            let xs: Vec<&[u64]> = ds.iter().map(|d| d.limb(k)).collect();
            let k0: Vec<&[u64]> = kb.iter().map(|d| d.limb(k)).collect();
            let k1: Vec<&[u64]> = ka.iter().map(|d| d.limb(k)).collect();
            ring.dot2_acc_slice(mi, a0.limb_mut(k), a1.limb_mut(k), &xs, &k0, &k1);
        }
    });
    let mut pl = fill(&pidx);
    time("stage moddown.intt (x2)", 5, || {
        ring.intt_poly(&mut pl, &pidx);
        ring.intt_poly(&mut pl, &pidx);
    });
    let mut ext = ckks::ring::Poly::zero(n, 1);
    time("stage moddown.conversion (x2)", 5, || {
        ext = ring.convert_exact(&pl, &pidx, &qidx);
        ext = ring.convert_exact(&pl, &pidx, &qidx);
    });
    time("stage moddown.ntt (x2)", 5, || {
        ring.ntt_poly(&mut ext, &qidx);
        ring.ntt_poly(&mut ext, &qidx);
    });
}

fn main() {
    let name = std::env::args().nth(1).unwrap_or("n15-q760".into());
    let params = Params::named(&name).unwrap();
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(1)
        .build()
        .unwrap();
    println!("kernels: {}", kernel_path());
    pool.install(|| {
        let n = params.n;
        let mut buf: Vec<u64> = (0..n as u64).map(|i| i * 12345 % params.q[1]).collect();
        time("ntt (q1)", 100, || params.ring.ntt(1, &mut buf));
        time("intt (q1)", 100, || params.ring.intt(1, &mut buf));
        let mut buf0: Vec<u64> = (0..n as u64).map(|i| i * 12345 % params.q[0]).collect();
        time("ntt (q0)", 100, || params.ring.ntt(0, &mut buf0));
        let lvl = params.max_level();
        stages(&params, lvl);
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
