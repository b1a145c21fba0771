//! Fuzz targets: every parser of input from outside, one function each,
//! taking arbitrary bytes. A target may return errors but must never
//! panic, hang or allocate without bound. The libFuzzer binaries in
//! `/fuzz` call these; `tests/replay.rs` replays the committed corpora
//! (`/fuzz/corpus/<target>/`) and every crash found (`/fuzz/regressions/`)
//! in CI, in seconds.

use std::sync::{Arc, OnceLock};

use ckks::Params;
use ckks::Wire;

/// A fuzz target.
pub type Target = fn(&[u8]);

/// Every target, by name (the corpus folder names).
pub const TARGETS: &[(&str, Target)] = &[
    ("onnx", onnx),
    ("npy", npy),
    ("png", png),
    ("plan", plan),
    ("ckks_serialize", ckks_serialize),
    ("encrypted_tensor", encrypted_tensor),
];

/// The insecure test parameter set the binary-format targets read against.
pub fn params() -> &'static Arc<Params> {
    static P: OnceLock<Arc<Params>> = OnceLock::new();
    P.get_or_init(|| Params::named("insecure-n10").expect("insecure-n10 exists"))
}

/// ONNX import (parse, prepare, fold constants, onnx-ir, our importer)
/// and, when it imports, the reference executor on a zero image.
pub fn onnx(data: &[u8]) {
    if let Ok(g) = nn::onnx::import(data) {
        let n: usize = g.input_shape.iter().product();
        if n <= 1 << 16 && g.num_params() <= 1 << 20 {
            let x = nn::Tensor::zeros(g.input_shape.clone());
            let _ = nn::exec::run(&g, &x);
        }
    }
}

/// `.npy` input files, against a few model shapes.
pub fn npy(data: &[u8]) {
    for shape in [[1usize, 8, 8], [3, 4, 4], [1, 1, 1]] {
        let _ = nn::input::npy_tensor(data, &shape);
    }
}

/// PNG input files (every bit depth and colour type), gray and colour
/// models.
pub fn png(data: &[u8]) {
    for shape in [[1usize, 8, 8], [3, 8, 8], [1, 20, 28]] {
        let _ = nn::input::png_tensor(data, &shape);
    }
}

/// Plan files: JSON, then validation against its parameter set and
/// binding to a small model (what `infer` and `keygen` do).
pub fn plan(data: &[u8]) {
    let Ok(s) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(plan) = compiler::CompiledPlan::from_json(s) else {
        return;
    };
    let Ok(p) = Params::named(&plan.params.name) else {
        return;
    };
    if runtime::prepare::check_plan(&plan, &p).is_err() {
        return;
    }
    let _ = runtime::prepare::Prepared::new(&plan, model(), &p);
}

fn model() -> &'static nn::Graph {
    static G: OnceLock<nn::Graph> = OnceLock::new();
    G.get_or_init(|| {
        let mut cfg = nn::zoo::ZooConfig::new(nn::zoo::Arch::Dirac, 8, 1, [8, 8], 10);
        cfg.width = 0.25;
        nn::zoo::build_random(&cfg, 1).expect("a small zoo model")
    })
}

/// The binary format, every object kind: the first byte picks the reader,
/// the rest is the file.
pub fn ckks_serialize(data: &[u8]) {
    let Some((&sel, rest)) = data.split_first() else {
        return;
    };
    let p = params();
    let _ = ckks::serialize::peek_header(rest);
    match sel % 14 {
        0 => drop(ckks::serialize::params_from_bytes(rest)),
        1 => drop(ckks::Plaintext::from_bytes(rest, p)),
        2 => drop(ckks::Ciphertext::from_bytes(rest, p)),
        3 => drop(ckks::SecretKey::from_secret_bytes(rest, p)),
        4 => drop(ckks::PublicKey::from_bytes(rest, p)),
        5 => drop(ckks::RelinKey::from_bytes(rest, p)),
        6 => drop(ckks::GaloisKeys::from_bytes(rest, p)),
        7 => drop(ckks::EvaluationKeys::from_bytes(rest, p)),
        8 => drop(ckks::serialize::Compact::<ckks::PublicKey>::from_bytes(
            rest, p,
        )),
        9 => drop(ckks::serialize::Compact::<ckks::RelinKey>::from_bytes(
            rest, p,
        )),
        10 => drop(ckks::serialize::Compact::<ckks::GaloisKeys>::from_bytes(
            rest, p,
        )),
        11 => drop(ckks::serialize::Compact::<ckks::EvaluationKeys>::from_bytes(rest, p)),
        12 => drop(ckks::bootstrap::BootstrapKeys::from_bytes(rest, p)),
        _ => drop(ckks::serialize::check_params_bytes(rest, p)),
    }
}

/// Encrypted tensor files (inputs and outputs of `encrypt` / `infer`).
pub fn encrypted_tensor(data: &[u8]) {
    let _ = runtime::files::EncryptedTensor::read_from(&mut &data[..], params());
}
