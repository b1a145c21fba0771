//! Which test images drive a checkpointed network's activation inputs far
//! outside their ranges, and what that costs in accuracy (issue 10,
//! session 25). In inference mode after the precise-BN recalibration the
//! export uses (20 batches of the training set), each test image gets its
//! largest `max|x|/R` over all activations (`R` the activation's scaling
//! range); the images are binned by it, with the accuracy of each bin.
//!
//! A polynomial activation has no saturation: an input well outside `R`
//! comes out squared, and the next layers compound it. In training such an
//! image is what makes a whole batch's loss spike (`batch_losses`); here it
//! is counted where it matters for encrypted inference, on test images,
//! one at a time.
//!
//! ```sh
//! cargo run -p train --example test_outliers -- CKPT_DIR [DATA_DIR]
//! ```
//!
//! Prints one JSON object: the accuracy, the bins (`ratio_at_least`,
//! images, correct), the accuracy without the images at 10 R or more, the
//! 20 worst images (test index, ratio, label, prediction; a ratio of
//! `null` is an input that overflowed f32), and each activation's range
//! and power-basis coefficients.

use std::path::{Path, PathBuf};

use anyhow::{Result, bail};
use burn::prelude::*;
use train::model::Probe;
use train::trainer::{Trainer, plain_batch, recalibrate_bn};

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [dir, rest @ ..] = args.as_slice() else {
        bail!("usage: test_outliers CKPT_DIR [DATA_DIR]");
    };
    let t = Trainer::resume(&PathBuf::from(dir))?;
    let cfg = &t.state.config;
    let data = cfg.load_data(rest.first().map(Path::new))?;
    recalibrate_bn(&t.model, &data.train, 20, cfg.batch_size);
    let ranges: Vec<f64> = t.model.activations().iter().map(|a| a.range()).collect();
    // Each activation's range and power-basis coefficients (constant
    // first): how steeply it grows outside its range.
    let activations: Vec<serde_json::Value> = t
        .model
        .activations()
        .iter()
        .map(|a| serde_json::json!({ "range": a.range(), "coefficients": a.power_coefficients() }))
        .collect();
    let model = t.model.valid();
    let test = &data.test;
    let device = Device::flex();
    let mut rng = <rand_chacha::ChaCha8Rng as rand::SeedableRng>::seed_from_u64(0);
    let mut buf = Vec::new();
    // (test index, largest max|x|/R, label, prediction)
    let mut images: Vec<(usize, f64, u8, usize)> = Vec::with_capacity(test.len());
    for start in (0..test.len()).step_by(250) {
        let idx: Vec<usize> = (start..(start + 250).min(test.len())).collect();
        let x = plain_batch(test, &idx, &device, &mut rng, &mut buf);
        let mut probe = Probe {
            ranges: Some(Vec::new()),
            image_max: Some(Vec::new()),
            ..Probe::default()
        };
        let (logits, _) = model.forward_probe(x, &mut probe);
        let pred: Vec<i64> = logits
            .argmax(1)
            .reshape([idx.len()])
            .into_data()
            .convert::<i64>()
            .try_into_vec::<i64>()
            .map_err(|e| anyhow::anyhow!("predictions: {e:?}"))?;
        let worst = probe.image_range_ratios(&ranges);
        for (k, &i) in idx.iter().enumerate() {
            images.push((i, worst[k], test.labels[i], pred[k] as usize));
        }
        if (start / 250 + 1) % 10 == 0 {
            eprintln!("{}/{} test images", start + idx.len(), test.len());
        }
    }
    let ok = |v: &(usize, f64, u8, usize)| v.3 == usize::from(v.2);
    let correct = images.iter().filter(|v| ok(v)).count();
    let edges = [0.0, 2.0, 5.0, 10.0, 20.0, 50.0];
    let bins: Vec<serde_json::Value> = edges
        .iter()
        .enumerate()
        .map(|(k, &lo)| {
            let hi = edges.get(k + 1).copied().unwrap_or(f64::INFINITY);
            let v: Vec<_> = images
                .iter()
                .filter(|v| v.1 >= lo && (v.1 < hi || hi.is_infinite()))
                .collect();
            serde_json::json!({
                "ratio_at_least": lo,
                "below": if hi.is_finite() { Some(hi) } else { None },
                "images": v.len(),
                "correct": v.iter().filter(|v| ok(v)).count(),
            })
        })
        .collect();
    let inside: Vec<_> = images.iter().filter(|v| v.1 < 10.0).collect();
    let mut worst = images.clone();
    worst.sort_by(|a, b| b.1.total_cmp(&a.1));
    worst.truncate(20);
    let out = serde_json::json!({
        "checkpoint": dir,
        "test_images": images.len(),
        "correct": correct,
        "accuracy": correct as f64 / images.len().max(1) as f64,
        "bins": bins,
        "below_10r": { "images": inside.len(), "correct": inside.iter().filter(|v| ok(v)).count() },
        "worst": worst,
        "activations": activations,
    });
    println!("{out}");
    Ok(())
}
