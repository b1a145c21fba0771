#!/usr/bin/env bash
# Trains the Fashion-MNIST zoo (ResNet-20, Dirac-20 without skips,
# Dirac + shared-source 20) one run at a time, round-robin one epoch each,
# so all three advance together. Resumable: re-run this script to continue
# from the checkpoints under $RUNS (default runs/, gitignored).
#
#   scripts/train-zoo.sh                 # build residue-train, train/continue all
#   EPOCHS=12 WIDTH=1 scripts/train-zoo.sh
#   nohup scripts/train-zoo.sh > runs/zoo.log 2>&1 &
#
# Each run writes runs/<arch>/model.ckpt/ (checkpoint), runs/<arch>/train.log
# (progress lines), runs/<arch>/model.ckpt/log.jsonl (metrics), and, when all
# epochs are done, runs/<arch>/model.onnx + model.train.json.
# --max-rollbacks 0: the zoo models predate the trainer's divergence guard
# (session 24); without it they replay exactly.
set -euo pipefail
cd "$(dirname "$0")/.."
# One thread per run (the runs go side by side; THREADS overrides).
export RAYON_NUM_THREADS=${THREADS:-1}

RUNS=${RUNS:-runs}
EPOCHS=${EPOCHS:-10}
WIDTH=${WIDTH:-0.5}
BATCH=${BATCH:-128}
LR=${LR:-0.02}
RANGE_PENALTY=${RANGE_PENALTY:-0.1}
# Activation init for runs started afresh (a resumed run keeps its own):
# ACT_NEAR_IDENTITY=Q starts every activation as x + Q x^2/R instead of a
# ReLU fit; Dirac chains need it (with the ReLU fit they do not learn).
# The first session started dirac20 and dirac-shared20 with Q = 0.1 and
# resnet20 with the ReLU fit.
ACT_NEAR_IDENTITY=${ACT_NEAR_IDENTITY:-}
ARCHS=${ARCHS:-"resnet20 dirac20 dirac-shared20"}
DATA=${DATA:-fashion-mnist}
# Steps per round-robin slice (469 = one Fashion-MNIST epoch at batch 128).
SLICE=${SLICE:-$((60000 / BATCH))}
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$PWD/target-train}

mkdir -p "$RUNS/bin"
if [ -z "${BIN:-}" ]; then
    cargo build -p train --bin residue-train
    # Run a private copy so later rebuilds do not replace the running binary.
    cp "$CARGO_TARGET_DIR/debug/residue-train" "$RUNS/bin/residue-train.new"
    mv -f "$RUNS/bin/residue-train.new" "$RUNS/bin/residue-train"
    BIN="$RUNS/bin/residue-train"
fi

finished() { grep -q '"finished": true' "$RUNS/$1/model.ckpt/ckpt/state.json" 2>/dev/null; }

while :; do
    pending=0
    for arch in $ARCHS; do
        mkdir -p "$RUNS/$arch"
        if [ -f "$RUNS/$arch/FAILED" ]; then
            echo "skipping $arch: $RUNS/$arch/FAILED exists (see train.log; delete it to retry)"
            continue
        fi
        if finished "$arch"; then
            [ -f "$RUNS/$arch/model.onnx" ] && continue
        fi
        pending=1
        echo "== $(date -u +%FT%TZ) $arch: next slice" | tee -a "$RUNS/$arch/train.log"
        "$BIN" --arch "$arch" --width "$WIDTH" --epochs "$EPOCHS" --batch-size "$BATCH" \
            --lr "$LR" --range-penalty "$RANGE_PENALTY" --data "$DATA" --out "$RUNS/$arch/model.onnx" --resume \
            --max-steps "$SLICE" --max-rollbacks 0 ${ACT_NEAR_IDENTITY:+--act-near-identity "$ACT_NEAR_IDENTITY"} \
            >> "$RUNS/$arch/train.log" 2>&1 ||
            { date -u +%FT%TZ > "$RUNS/$arch/FAILED"; echo "$arch failed, see $RUNS/$arch/train.log"; }
    done
    [ "$pending" = 0 ] && break
done
echo "zoo done: $ARCHS"
