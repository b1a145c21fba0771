#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;
use ckks::*;
use std::time::Instant;
fn main() {
    let name = std::env::args().nth(1).unwrap_or("n15-q760".into());
    let params = Params::named(&name).unwrap();
    let pool = rayon::ThreadPoolBuilder::new().num_threads(1).build().unwrap();
    pool.install(|| {
        let n = params.n;
        let mut buf: Vec<u64> = (0..n as u64).map(|i| i * 12345 % params.q[1]).collect();
        let t = Instant::now();
        for _ in 0..200 { params.ring.ntt(1, &mut buf); }
        println!("ntt 50-bit: {:.1} us", t.elapsed().as_secs_f64() * 1e6 / 200.0);
        let t = Instant::now();
        for _ in 0..200 { params.ring.intt(1, &mut buf); }
        println!("intt 50-bit: {:.1} us", t.elapsed().as_secs_f64() * 1e6 / 200.0);
        let mut buf0: Vec<u64> = (0..n as u64).map(|i| i * 12345 % params.q[0]).collect();
        let t = Instant::now();
        for _ in 0..200 { params.ring.ntt(0, &mut buf0); }
        println!("ntt q0: {:.1} us", t.elapsed().as_secs_f64() * 1e6 / 200.0);
        let lvl = params.max_level();
        let mut kg = KeyGenerator::new(params.clone());
        let sk = kg.secret_key();
        let rlk = kg.relin_key(&sk);
        let ev = Evaluator::new(params.clone(), std::sync::Arc::new(EvaluationKeys { relin: Some(rlk), galois: None }));
        let enc = Encoder::new(params.clone());
        let pt = enc.encode_real(&[1.0, 2.0], lvl, params.default_scale(), 4).unwrap();
        let ct = Encryptor::new(params.clone()).encrypt_sk(&sk, &pt).unwrap();
        let t = Instant::now();
        for _ in 0..5 { ev.decompose(&ct).unwrap(); }
        println!("decompose: {:.1} ms", t.elapsed().as_secs_f64() * 1e3 / 5.0);
        let t = Instant::now();
        for _ in 0..5 { ev.mul_relin(&ct, &ct).unwrap(); }
        println!("mul_relin: {:.1} ms", t.elapsed().as_secs_f64() * 1e3 / 5.0);
        let t = Instant::now();
        for _ in 0..5 { ev.mul(&ct, &ct).unwrap(); }
        println!("mul (tensor): {:.1} ms", t.elapsed().as_secs_f64() * 1e3 / 5.0);
    });
}
