//! Per-batch cross-entropy of a checkpointed network over one epoch of
//! training batches: the trainer's shuffle and augmentation for that epoch,
//! forward only in training mode (batch statistics), no update. It counts
//! how often the network meets an outlier batch, one the divergence guard
//! would call a spike ([`train::trainer::is_spike`] against the
//! checkpoint's lowest epoch mean). Issue 10, session 24: the collapses began
//! at such batches. Session 25: per batch, also how far the activation
//! inputs leave their ranges `R` (largest `max|x|/R`, which activation, and
//! the images that reach it).
//!
//! ```sh
//! cargo run -p train --example batch_losses -- CKPT_DIR EPOCH [STEPS] [DATA_DIR]
//! ```
//!
//! `CKPT_DIR` holds `ckpt/` (e.g. `checkpoints/ext40/resnet20/model.ckpt`);
//! `EPOCH` is 1-based, as the logs print it. Prints one JSON object: the
//! losses, their mean and median, and the spikes.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use burn::nn::loss::CrossEntropyLossConfig;
use burn::prelude::*;
use train::model::{Probe, free_graph};
use train::trainer::{Trainer, epoch_order, is_spike, make_batch, step_rng, train_device};

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [dir, epoch, rest @ ..] = args.as_slice() else {
        bail!("usage: batch_losses CKPT_DIR EPOCH [STEPS] [DATA_DIR]");
    };
    let epoch: usize = epoch.parse().context("EPOCH: a number from 1")?;
    if epoch == 0 {
        bail!("EPOCH is 1-based");
    }
    let t = Trainer::resume(&PathBuf::from(dir))?;
    let cfg = &t.state.config;
    let data = cfg.load_data(rest.get(1).map(Path::new))?;
    let train = &data.train;
    let n_train = cfg.train_images(train.len());
    let bs = cfg.batch_size.max(1);
    let steps_per_epoch = n_train / bs;
    let steps: usize = match rest.first() {
        Some(s) => s.parse().context("STEPS: a number")?,
        None => steps_per_epoch,
    }
    .min(steps_per_epoch);
    let baseline = t
        .state
        .guard_baseline()
        .context("the checkpoint has no finished epoch to compare with")?;

    let device = train_device();
    let loss_fn = CrossEntropyLossConfig::new().init(&device);
    let order = epoch_order(cfg, n_train, epoch - 1);
    let mut buf = Vec::new();
    let mut losses = Vec::with_capacity(steps);
    let mut range_ratio = Vec::with_capacity(steps);
    let ranges: Vec<f64> = t.model.activations().iter().map(|a| a.range()).collect();
    for s in 0..steps {
        let idx = &order[s * bs..(s + 1) * bs];
        let mut rng = step_rng(cfg, (epoch - 1) * steps_per_epoch + s);
        make_batch(train, idx, cfg.crop_pad, cfg.flip, &mut rng, &mut buf);
        let x = Tensor::<4>::from_data(
            TensorData::new(
                std::mem::take(&mut buf),
                [bs, train.channels, train.height, train.width],
            ),
            &device,
        );
        let labels: Vec<i64> = idx.iter().map(|&i| i64::from(train.labels[i])).collect();
        let y = Tensor::<1, Int>::from_data(TensorData::new(labels, [bs]), &device);
        let mut probe = Probe {
            ranges: Some(Vec::new()),
            image_max: Some(Vec::new()),
            ..Probe::default()
        };
        let (logits, _) = t.model.forward_probe(x.detach(), &mut probe);
        let loss = loss_fn.forward(logits, y);
        losses.push(f64::from(loss.clone().into_scalar::<f32>()));
        // How far the batch's activation inputs leave their ranges: the
        // largest max|x|/R over the activations, which one, and the images
        // whose own max|x|/R (over all activations) is largest.
        let (worst, worst_act) = probe.worst_range_ratio(&ranges);
        let per_image = probe.image_range_ratios(&ranges);
        let mut top: Vec<(usize, f64)> = idx.iter().copied().zip(per_image).collect();
        top.sort_by(|a, b| b.1.total_cmp(&a.1));
        top.truncate(3);
        range_ratio.push((worst, worst_act + 1, top));
        // Without this the probe grew to 15 GiB in 50 batches.
        free_graph(loss);
        if (s + 1) % 50 == 0 {
            eprintln!("{}/{steps} batches", s + 1);
        }
    }
    let mut sorted = losses.clone();
    sorted.sort_by(f64::total_cmp);
    let spikes: Vec<(usize, f64)> = losses
        .iter()
        .enumerate()
        .filter(|(_, l)| is_spike(**l, baseline))
        .map(|(i, l)| (i + 1, *l))
        .collect();
    let out = serde_json::json!({
        "checkpoint": dir,
        "epoch": epoch,
        "batches": steps,
        "baseline_epoch_loss": baseline,
        "mean": losses.iter().sum::<f64>() / losses.len().max(1) as f64,
        "median": sorted.get(sorted.len() / 2),
        "max": sorted.last(),
        "spikes": spikes.len(),
        "spike_steps": spikes,
        "losses": losses,
        // Per batch: [max over activations of max|x|/R, that activation
        // (1-based, forward order), the three training images (indices)
        // with the largest max|x|/R and theirs].
        "range_ratio": range_ratio,
    });
    println!("{out}");
    Ok(())
}
