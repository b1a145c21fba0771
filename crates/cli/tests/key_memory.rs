//! `--key-memory BYTES`: rotation keys chosen against a memory budget, the
//! trade-off visible in `analyze --json`; and `--keys pow2` at its floor.

mod common;
use common::{ok, residue};

fn analyze(extra: &[&str]) -> serde_json::Value {
    let model = format!(
        "{}/../../models/dirac-shared20.onnx",
        env!("CARGO_MANIFEST_DIR")
    );
    let mut a = vec![
        "analyze",
        &model,
        "--params",
        "insecure-boot-n12-l9",
        "--json",
    ];
    a.extend_from_slice(extra);
    serde_json::from_str(&ok(&a)).unwrap()
}

fn field(r: &serde_json::Value, k: &str) -> u64 {
    r[k].as_u64().unwrap_or_else(|| panic!("no `{k}` in {r}"))
}

#[test]
fn key_memory_trades_key_bytes_for_rotations() {
    let per = analyze(&[]);
    let pow2 = analyze(&["--keys", "pow2"]);
    let (lo, hi) = (
        field(&pow2, "network_key_bytes"),
        field(&per, "network_key_bytes"),
    );
    assert!(lo < hi);
    let mid = (lo + hi) / 2;
    let r = analyze(&["--key-memory", &mid.to_string()]);
    assert_eq!(r["keys"]["budget"].as_u64(), Some(mid));
    assert!(field(&r, "network_key_bytes") <= mid);
    let rot = field(&r, "rotations");
    assert!(field(&per, "rotations") < rot && rot < field(&pow2, "rotations"));
    // Suffixes: 1 GiB is more than every key; the per-step plan.
    let all = analyze(&["--key-memory", "1GiB"]);
    assert_eq!(field(&all, "rotations"), field(&per, "rotations"));
    assert_eq!(
        field(&all, "network_galois_keys"),
        field(&per, "network_galois_keys")
    );
    // Below the ±2^k keys: one line naming what they need.
    let model = format!(
        "{}/../../models/dirac-shared20.onnx",
        env!("CARGO_MANIFEST_DIR")
    );
    let below = (lo - 1).to_string();
    let o = residue(&[
        "analyze",
        &model,
        "--params",
        "insecure-boot-n12-l9",
        "--key-memory",
        &below,
    ]);
    assert!(!o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    assert!(
        err.contains(&lo.to_string()) && err.contains("--keys pow2"),
        "{err}"
    );
    for bad in ["lots", "12XB", "-5"] {
        let o = residue(&["analyze", &model, "--key-memory", bad]);
        assert!(!o.status.success(), "{bad}");
    }
}

/// What keygen makes for a budgeted plan is within the budget and is what
/// `compile` reported (session 11's keygen made 259 MB for a 100 MB plan:
/// keys bootstrapping also holds were counted differently).
#[test]
fn keygen_makes_what_the_budget_allowed() {
    let dir = std::env::temp_dir().join(format!("residue-keymem-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let model = format!(
        "{}/../../models/dirac-shared20.onnx",
        env!("CARGO_MANIFEST_DIR")
    );
    let plan = dir.join("plan.json");
    let keys = dir.join("keys");
    let budget = 100_000_000u64;
    let c: serde_json::Value = serde_json::from_str(&ok(&[
        "compile",
        &model,
        "--params",
        "insecure-boot-n12-l9",
        "--key-memory",
        "100MB",
        "--out",
        plan.to_str().unwrap(),
        "--json",
    ]))
    .unwrap();
    assert_eq!(c["galois_keys_exact"], true);
    let k: serde_json::Value = serde_json::from_str(&ok(&[
        "keygen",
        "--plan",
        plan.to_str().unwrap(),
        "--model",
        &model,
        "--out",
        keys.to_str().unwrap(),
        "--json",
    ]))
    .unwrap();
    let sizes = &k["sizes"];
    assert!(field(sizes, "galois_network") <= budget, "{sizes}");
    assert_eq!(
        field(sizes, "galois_network"),
        field(&c, "network_key_bytes")
    );
    assert_eq!(field(sizes, "galois_keys"), field(&c, "galois_keys"));
    assert_eq!(
        field(sizes, "galois_network") + field(sizes, "galois_bootstrap"),
        field(&c, "galois_key_bytes")
    );
    let _ = std::fs::remove_dir_all(&dir);
}
