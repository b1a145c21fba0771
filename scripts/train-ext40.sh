#!/usr/bin/env bash
# Continues the 16-epoch Fashion-MNIST runs (checkpoints/ext16) to 40 epochs
# (the cosine schedule stretches to 40), ResNet-20 and Dirac + shared-source
# 20 side by side, each single-threaded under `nice -n 19` so that it takes
# only idle CPU. Resumable: re-run to continue from runs/ext40/<arch>/; a
# later session first restores the committed snapshot:
#   mkdir -p runs/ext40 && cp -rn checkpoints/ext40/* runs/ext40/
# ARCHS="resnet20" runs only that one. Progress: tail -f runs/ext40/<arch>/train.log
# --max-rollbacks 0: these runs predate the trainer's divergence guard
# (session 24); without it they replay exactly.
set -euo pipefail
cd "$(dirname "$0")/.."
# One thread per run (the runs go side by side; THREADS overrides).
export RAYON_NUM_THREADS=${THREADS:-1}
RUNS=${RUNS:-runs/ext40}
EPOCHS=${EPOCHS:-40}
BIN=${BIN:-}
if [ -z "$BIN" ]; then
    cargo build -p train --bin residue-train
    mkdir -p "$RUNS/bin"
    cp "${CARGO_TARGET_DIR:-target}/debug/residue-train" "$RUNS/bin/residue-train.new"
    mv -f "$RUNS/bin/residue-train.new" "$RUNS/bin/residue-train"
    BIN="$RUNS/bin/residue-train"
fi
for arch in ${ARCHS:-resnet20 dirac-shared20}; do
    mkdir -p "$RUNS/$arch"
    if [ ! -d "$RUNS/$arch/model.ckpt" ]; then
        src=checkpoints/ext40/$arch
        [ -d "$src/model.ckpt" ] || src=checkpoints/ext16/$arch
        cp -r "$src/model.ckpt" "$RUNS/$arch/"
    fi
    nohup nice -n 19 "$BIN" --arch "$arch" --width 0.5 --epochs "$EPOCHS" --batch-size 128 --lr 0.02 \
        --range-penalty 0.1 --act-near-identity 0.1 --data fashion-mnist --max-rollbacks 0 \
        --out "$RUNS/$arch/model.onnx" --checkpoint-dir "$RUNS/$arch/model.ckpt" --resume \
        >> "$RUNS/$arch/train.log" 2>&1 &
    echo "$arch: pid $! (log $RUNS/$arch/train.log)"
done
