//! Micro-benchmark of one negacyclic NTT and inverse NTT: tfhe-ntt's plan
//! (whatever kernel it picks on this CPU and build) against `Ring::ntt` /
//! `Ring::intt` (the floating-point kernel on the AVX2 path for primes below
//! 2^51, tfhe-ntt otherwise), for primes of `n15-q760` (N = 2^15).
//! `RESIDUE_NO_AVX512=1 cargo run --release -p ckks --example nttbench`
//! (build tfhe-ntt without its `avx512` feature to compare with its AVX2
//! kernel on an AVX-512 host: `scripts/build-avx2-emulation.sh`).
use ckks::*;

fn cpu_us() -> f64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes into the timespec we own.
    unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    ts.tv_sec as f64 * 1e6 + ts.tv_nsec as f64 / 1e3
}

/// Min and median over `rounds` rounds of the mean of `reps` calls.
fn time(mut f: impl FnMut()) -> (f64, f64) {
    let (rounds, reps) = (31, 20);
    f();
    let mut ts: Vec<f64> = (0..rounds)
        .map(|_| {
            let t = cpu_us();
            for _ in 0..reps {
                f();
            }
            (cpu_us() - t) / reps as f64
        })
        .collect();
    ts.sort_by(f64::total_cmp);
    (ts[0], ts[rounds / 2])
}

fn main() {
    let name = std::env::args().nth(1).unwrap_or("n15-q760".into());
    let params = Params::named(&name).unwrap();
    let n = params.n;
    let ring = &params.ring;
    println!("kernels: {} (N = {n})", kernel_path());
    let mut seen = Vec::new();
    for (mi, m) in ring.moduli.iter().enumerate() {
        let p = m.value;
        let class = if p < 1 << 50 {
            "<2^50"
        } else if p < 1 << 51 {
            "<2^51"
        } else {
            "wide"
        };
        if seen.contains(&class) {
            continue;
        }
        seen.push(class);
        let plan = tfhe_ntt::prime64::Plan::try_new(n, p).unwrap();
        let x: Vec<u64> = (0..n as u64)
            .map(|i| i.wrapping_mul(0x9E37_79B9_7F4A_7C15) % p)
            .collect();
        let mut a = x.clone();
        let mut b = x.clone();
        plan.fwd(&mut a);
        ring.ntt(mi, &mut b);
        assert_eq!(a, b, "forward transforms differ");
        plan.inv(&mut a);
        plan.normalize(&mut a);
        ring.intt(mi, &mut b);
        assert_eq!(a, x);
        assert_eq!(b, x);
        let (tf_min, tf_med) = time(|| plan.fwd(&mut a));
        let (rf_min, rf_med) = time(|| ring.ntt(mi, &mut b));
        let (ti_min, ti_med) = time(|| {
            plan.inv(&mut a);
            plan.normalize(&mut a);
        });
        let (ri_min, ri_med) = time(|| ring.intt(mi, &mut b));
        println!(
            "prime {mi} ({p}, {class}): ntt tfhe-ntt min {tf_min:.1} med {tf_med:.1} us | \
             Ring::ntt min {rf_min:.1} med {rf_med:.1} us; intt tfhe-ntt min {ti_min:.1} \
             med {ti_med:.1} us | Ring::intt min {ri_min:.1} med {ri_med:.1} us"
        );
    }
}
