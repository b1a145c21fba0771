//! The engine's kernel profile, by kind of work, in `RunStats::kernels`
//! (`residue infer --profile`). Its own test binary: the profile counters
//! are process-wide, and other tests running beside this one would count
//! in it.

mod common;

use common::*;
use runtime::Prepared;
use runtime::client::{ClientKeys, encrypt, key_needs};

#[test]
fn kernel_profile_by_kind_counts_every_key_switch() {
    let p = ckks::Params::named("insecure-boot-n12-l9").unwrap();
    let g = net("dirac-shared8", 8, 0.5, 5);
    let samples: Vec<Vec<f64>> = (0..3).map(|s| input(8, s)).collect();
    let plan = plan(&g, &p, &samples);
    let prep = Prepared::new(&plan, &g, &p).unwrap();
    let needs = key_needs(&prep, &p).unwrap();
    let keys = ClientKeys::generate(&p, &needs).unwrap();
    let backend = runtime::server::backend(&p, &prep, keys.eval, keys.boot).unwrap();
    let ct = encrypt(&plan, &p, &keys.public, &input(8, 20)).unwrap();

    // Off (the default): nothing recorded.
    let (_, off) = runtime::server::infer(&backend, &prep, &ct, &|_| {}).unwrap();
    assert!(off.kernels.is_empty());

    ckks::profile::set_enabled(true);
    let (_, on) = runtime::server::infer(&backend, &prep, &ct, &|_| {}).unwrap();
    ckks::profile::set_enabled(false);
    assert!(on.bootstraps > 0);
    let calls = |kind: &str, kernel: &str| {
        on.kernels
            .get(kind)
            .and_then(|k| k.get(kernel))
            .map_or(0, |t| t.calls)
    };
    // Every rotation of the linear layers and the pooling is one key
    // switch (one inner product with its key); activations relinearize.
    assert_eq!(
        calls("linear", "inner_product") + calls("pool", "inner_product"),
        on.rotations,
        "{:?}",
        on.kernels
    );
    assert!(calls("activation", "inner_product") > 0);
    // Bootstraps key-switch, transform and rescale; each kind's time is
    // positive where it ran.
    for k in ["inner_product", "mod_up", "mod_down", "rescale", "ntt"] {
        assert!(calls("bootstrap", k) > 0, "bootstrap {k}: {:?}", on.kernels);
    }
    for (kind, ks) in &on.kernels {
        for (k, t) in ks {
            assert!(t.ms >= 0.0 && t.calls > 0, "{kind} {k}: {t:?}");
        }
    }
    // Kinds the profile names are the kinds timed.
    for kind in on.kernels.keys() {
        assert!(on.seconds.contains_key(kind), "{kind}");
    }
}
