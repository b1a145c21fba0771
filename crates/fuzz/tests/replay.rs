//! Replays every committed fuzz corpus (`/fuzz/corpus/<target>/`) and every
//! crash found so far (`/fuzz/regressions/<target>/`) through its target:
//! none may panic, and each input must finish in well under a second.
//!
//! `cargo test -p fuzz-targets --test replay -- --ignored write_seeds`
//! (re)writes the seed inputs the corpora started from.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz")
}

fn files(dir: &Path) -> Vec<PathBuf> {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return vec![];
    };
    let mut v: Vec<PathBuf> = rd
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_file())
        .collect();
    v.sort();
    v
}

#[test]
fn corpora_and_regressions_replay_without_panics() {
    let mut total = 0;
    let mut slowest = (Duration::ZERO, PathBuf::new());
    for (name, target) in fuzz_targets::TARGETS {
        let mut n = 0;
        for sub in ["corpus", "regressions"] {
            for f in files(&root().join(sub).join(name)) {
                let data = std::fs::read(&f).unwrap();
                let t = Instant::now();
                let r = std::panic::catch_unwind(|| target(&data));
                assert!(r.is_ok(), "{name}: {} panics", f.display());
                let el = t.elapsed();
                if el > slowest.0 {
                    slowest = (el, f.clone());
                }
                n += 1;
            }
        }
        assert!(n > 0, "no corpus for target {name}");
        total += n;
    }
    eprintln!(
        "replayed {total} inputs; slowest {:?} ({})",
        slowest.0,
        slowest.1.display()
    );
    // Generous for a loaded CI machine in the dev profile; libFuzzer runs
    // flag anything over 1 s in release.
    assert!(
        slowest.0 < Duration::from_secs(5),
        "{} took {:?}",
        slowest.1.display(),
        slowest.0
    );
}

#[test]
#[ignore = "writes the seed corpora; run by hand"]
fn write_seeds() {
    use ckks::{Encoder, Encryptor, KeyGenerator, Wire};
    let put = |target: &str, name: &str, data: &[u8]| {
        let d = root().join("corpus").join(target);
        std::fs::create_dir_all(&d).unwrap();
        std::fs::write(d.join(format!("seed-{name}")), data).unwrap();
    };
    // ONNX: the import cases and a small exported zoo model.
    let cases = Path::new(env!("CARGO_MANIFEST_DIR")).join("../nn/tests/cases");
    for f in walk(&cases) {
        let name = f
            .strip_prefix(&cases)
            .unwrap()
            .display()
            .to_string()
            .replace('/', "-");
        let data = std::fs::read(&f).unwrap();
        if name.ends_with(".onnx") {
            put("onnx", &name, &data);
        } else if name.ends_with(".npy") {
            put("npy", &name, &data);
        } else if name.ends_with(".png") {
            put("png", &name, &data);
        }
    }
    let mut cfg = nn::zoo::ZooConfig::new(
        nn::zoo::Arch::DiracShared { adds_per_stage: 1 },
        8,
        1,
        [8, 8],
        10,
    );
    cfg.width = 0.25;
    let g = nn::zoo::build_random(&cfg, 1).unwrap();
    put("onnx", "zoo-dirac-shared8", &nn::onnx::export(&g).unwrap());
    put(
        "npy",
        "f32-3x4x4",
        &nn::input::encode_npy_f32(&[3, 4, 4], &[0.5; 48]),
    );
    put(
        "npy",
        "f32-1x1x8x8",
        &nn::input::encode_npy_f32(&[1, 1, 8, 8], &[0.25; 64]),
    );
    for (name, color, depth, ch) in [
        ("gray1", png::ColorType::Grayscale, png::BitDepth::One, 1),
        ("gray4", png::ColorType::Grayscale, png::BitDepth::Four, 1),
        ("gray8", png::ColorType::Grayscale, png::BitDepth::Eight, 1),
        (
            "gray16",
            png::ColorType::Grayscale,
            png::BitDepth::Sixteen,
            1,
        ),
        (
            "graya8",
            png::ColorType::GrayscaleAlpha,
            png::BitDepth::Eight,
            2,
        ),
        ("rgb8", png::ColorType::Rgb, png::BitDepth::Eight, 3),
        ("rgb16", png::ColorType::Rgb, png::BitDepth::Sixteen, 3),
        ("rgba8", png::ColorType::Rgba, png::BitDepth::Eight, 4),
    ] {
        let bits = depth as usize;
        let row = (8 * ch * bits).div_ceil(8);
        let px: Vec<u8> = (0..8 * row).map(|i| (i * 37 % 251) as u8).collect();
        let mut out = Vec::new();
        {
            let mut e = png::Encoder::new(&mut out, 8, 8);
            e.set_color(color);
            e.set_depth(depth);
            let mut w = e.write_header().unwrap();
            w.write_image_data(&px).unwrap();
        }
        put("png", name, &out);
    }
    // Plan: an uncalibrated plan for the target's model.
    let p = fuzz_targets::params();
    let set = runtime::paramset::param_set(p);
    let opts = |name: &str| compiler::CompileOptions {
        params: Some(name.to_string()),
        ..Default::default()
    };
    let mut cfg = nn::zoo::ZooConfig::new(nn::zoo::Arch::Dirac, 8, 1, [8, 8], 10);
    cfg.width = 0.25;
    let g = nn::zoo::build_random(&cfg, 1).unwrap();
    match compiler::compile(&g, &[set], &opts(p.name())) {
        Ok((plan, _)) => put("plan", "dirac8-insecure-n10", plan.to_json().as_bytes()),
        Err(e) => eprintln!("insecure-n10 plan: {e}"),
    }
    let boot = ckks::Params::named("insecure-boot-n12").unwrap();
    let set = runtime::paramset::param_set(&boot);
    if let Ok((plan, _)) = compiler::compile(&g, &[set], &Default::default()) {
        put(
            "plan",
            "dirac8-insecure-boot-n12",
            plan.to_json().as_bytes(),
        );
    }
    put("plan", "empty-object", b"{}");
    // The binary format: every object kind at insecure-n10, prefixed with
    // the selector byte of its reader.
    let mut kg = KeyGenerator::new(p.clone());
    let sk = kg.secret_key();
    let pk = kg.public_key(&sk);
    let sel = |k: u8, b: &[u8]| {
        let mut v = vec![k];
        v.extend_from_slice(b);
        v
    };
    let enc = Encoder::new(p.clone());
    let pt = enc
        .encode_real(&[0.5, -0.25], p.max_level(), p.default_scale(), 4)
        .unwrap();
    let ct = Encryptor::new(p.clone()).encrypt_pk(&pk, &pt).unwrap();
    let rk = kg.relin_key(&sk);
    let gk = kg.galois_keys(&sk, &[1], false);
    let ek = ckks::EvaluationKeys {
        relin: Some(rk.clone()),
        galois: None,
    };
    let _ = gk;
    put(
        "ckks_serialize",
        "params",
        &sel(0, &ckks::serialize::params_to_bytes(p).unwrap()),
    );
    put(
        "ckks_serialize",
        "plaintext",
        &sel(1, &pt.to_bytes(p).unwrap()),
    );
    put(
        "ckks_serialize",
        "ciphertext",
        &sel(2, &ct.to_bytes(p).unwrap()),
    );
    put(
        "ckks_serialize",
        "secret",
        &sel(3, &sk.to_secret_bytes().unwrap()),
    );
    put(
        "ckks_serialize",
        "public",
        &sel(4, &pk.to_bytes(p).unwrap()),
    );
    put("ckks_serialize", "relin", &sel(5, &rk.to_bytes(p).unwrap()));
    put(
        "ckks_serialize",
        "galois",
        &sel(6, &gk.to_bytes(p).unwrap()),
    );
    put(
        "ckks_serialize",
        "evaluation",
        &sel(7, &ek.to_bytes(p).unwrap()),
    );
    put(
        "ckks_serialize",
        "public-compact",
        &sel(8, &kg.public_key_compact(&sk).to_bytes(p).unwrap()),
    );
    put(
        "ckks_serialize",
        "relin-compact",
        &sel(9, &kg.relin_key_compact(&sk).to_bytes(p).unwrap()),
    );
    put(
        "ckks_serialize",
        "galois-compact",
        &sel(
            10,
            &kg.galois_keys_compact(&sk, &[1], false)
                .to_bytes(p)
                .unwrap(),
        ),
    );
    put(
        "ckks_serialize",
        "params-check",
        &sel(13, &ckks::serialize::params_to_bytes(p).unwrap()),
    );
    // Encrypted tensors: a ciphertext in the tensor envelope.
    let t = runtime::files::EncryptedTensor {
        meta: runtime::files::TensorMeta {
            key_id: None,
            kind: runtime::files::TensorKind::Input,
            plan_hash: "00".repeat(32),
            params: p.name().to_string(),
            layout: compiler::layout::Layout::image(1, 8, 8, p.max_slots()).unwrap(),
            factor: 1.0,
            images: 1,
        },
        cts: vec![ct],
    };
    let mut out = Vec::new();
    t.write_to(p, &mut out).unwrap();
    put("encrypted_tensor", "one-ct", &out);
}

fn walk(d: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(d).unwrap().flatten() {
        let p = e.path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else {
            out.push(p);
        }
    }
    out.sort();
    out
}
