//! Every parameter set that `residue params` lists computes correctly at the
//! level it encrypts to: `residue demo --primitives --params NAME` encodes
//! and encrypts a vector at the set's working level (below the
//! bootstrapping primes of a bootstrappable set), rotates, multiplies with
//! relinearization, rescales, adds, decrypts, and is compared with plain
//! arithmetic.

mod common;
use common::ok;

/// The error accepted against plain arithmetic, per slot. The encoding and
/// key-switching noise of every set is at or below 2^-21 at its working
/// level; a collapsed scale (rescaling by a 56-60-bit bootstrapping prime
/// against a 2^40 scale) gives 2^-7 .. 2^-11.
const BOUND: f64 = 1e-5;

/// `(name, log_n)` of every set `residue params --json` lists.
fn listed_sets() -> Vec<(String, u64)> {
    let v: serde_json::Value = serde_json::from_str(&ok(&["params", "--json"])).unwrap();
    let sets: Vec<(String, u64)> = v
        .as_array()
        .expect("a JSON array")
        .iter()
        .map(|s| {
            (
                {
                    let name = s["name"].as_str().unwrap().to_string();
                    let p = ckks::Params::named(&name).unwrap();
                    let w = ckks::bootstrap::working_level(&p) as u64;
                    assert_eq!(s["working_level"].as_u64(), Some(w), "{name}");
                    let f = s["fresh_level"].as_u64().unwrap();
                    assert_eq!(f, ckks::bootstrap::fresh_level(&p) as u64, "{name}");
                    assert!(f >= w, "{name}");
                    name
                },
                s["log_n"].as_u64().unwrap(),
            )
        })
        .collect();
    assert!(sets.len() >= 8, "{sets:?}");
    sets
}

/// Runs the primitive round trip on `name` and checks its report.
fn round_trip(name: &str) {
    let out = ok(&["demo", "--primitives", "--params", name, "--json"]);
    let r: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(r["params"], name);
    let err = r["max_abs_error"].as_f64().unwrap();
    assert!(err < BOUND, "{name}: max error {err:e} >= {BOUND:e}: {out}");
    // One multiplication: one level consumed.
    let (lin, lout) = (
        r["level_in"].as_u64().unwrap(),
        r["level_out"].as_u64().unwrap(),
    );
    assert_eq!(lout + 1, lin, "{name}: {out}");
    let params = ckks::Params::named(name).unwrap();
    assert_eq!(
        lin as usize,
        ckks::bootstrap::working_level(&params),
        "{name}"
    );
}

/// Every listed set below N = 2^16 (seconds each).
#[test]
fn every_listed_set_below_n16_round_trips() {
    let small: Vec<String> = listed_sets()
        .into_iter()
        .filter(|(_, log_n)| *log_n < 16)
        .map(|(n, _)| n)
        .collect();
    assert!(small.iter().any(|n| n.contains("boot")), "{small:?}");
    for name in small {
        round_trip(&name);
    }
}

/// The N = 2^16 sets (`n16-boot`, `n16-boot-l11`, `n16-boot-l13`).
#[test]
#[ignore = "N=2^16: about 4 s and 0.6-0.75 GB per set, not run by CI; run with `cargo test -p residue-cli --test params_roundtrip -- --ignored`"]
fn every_listed_n16_set_round_trips() {
    for (name, log_n) in listed_sets() {
        if log_n >= 16 {
            round_trip(&name);
        }
    }
}
