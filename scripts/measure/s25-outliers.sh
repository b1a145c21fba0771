#!/usr/bin/env bash
# Session 25 (issue 10): how far activation inputs leave their ranges R.
# 1. test_outliers: per test image, the largest max|x|/R over all
#    activations, in inference mode after the export's precise-BN
#    recalibration, binned with each bin's accuracy, for the two bundled
#    40-epoch models and kdpan40r at the end of its epoch 22 (the checkpoint
#    committed in 06702d0, extracted from git).
# 2. batch_losses: the first 80 training batches of epoch 23 for that
#    kdpan40r checkpoint, in training mode, with each batch's largest
#    max|x|/R and the images that reach it.
# About 1 min per model on one core. Writes docs/data/outliers-s25-*.json.
set -euo pipefail
cd "$(dirname "$0")/../.."
cargo build -q -p train --example test_outliers --example batch_losses
EX=${CARGO_TARGET_DIR:-target}/debug/examples
W=runs/outliers-s25
rm -rf $W && mkdir -p $W
git archive 06702d0 checkpoints/issue10/kdpan40r/model.ckpt | tar -x -C $W
R=$W/checkpoints/issue10/kdpan40r/model.ckpt
$EX/test_outliers checkpoints/ext40/resnet20/model.ckpt > docs/data/outliers-s25-resnet20.json
$EX/test_outliers checkpoints/issue10/kdpan40t/model.ckpt > docs/data/outliers-s25-dirac-shared20.json
$EX/test_outliers $R > docs/data/outliers-s25-kdpan40r-e22.json
$EX/batch_losses $R 23 80 > docs/data/outliers-s25-kdpan40r-e23-batches.json
python3 - <<'PY'
import json
for n in ("resnet20", "dirac-shared20", "kdpan40r-e22"):
    d = json.load(open(f"docs/data/outliers-s25-{n}.json"))
    bins = ", ".join(f">={b['ratio_at_least']:g}R: {b['images']} ({b['correct']} right)"
                     for b in d["bins"] if b["images"])
    print(f"{n}: {d['correct']}/{d['test_images']}; {bins}")
d = json.load(open("docs/data/outliers-s25-kdpan40r-e23-batches.json"))
sp = {s for s, _ in d["spike_steps"]}
for i, (l, rr) in enumerate(zip(d["losses"], d["range_ratio"])):
    tag = "spike" if i + 1 in sp else "     "
    print(f"batch {i + 1:3} {tag} loss {l:7.3f} max|x|/R {rr[0]:8.2f} at act {rr[1]:2}, images {rr[2]}")
PY
