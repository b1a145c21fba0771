#!/usr/bin/env bash
# Session 23: the three bundled 40-epoch models at batch 8 (8 images per
# encrypted inference), 16 images each, n16-boot, two threads, in one quiet
# window (training and builds paused): round 1 runs images 0-7 of every
# model, round 2 images 8-15, so other load falls on all three alike.
# Resumable (each model's --log). Writes docs/data/he-eval-<model>-n16-boot-t2-b8-s23.json{,l}.
set -uo pipefail
cd "$(dirname "$0")/../.."
. scripts/measure/quiet-window.sh
L=runs/s23-batch
mkdir -p $L
echo "== $(date -u +%T) batch 8 ($B, checkout $(git rev-parse --short HEAD))"
for n in 8 16; do
    for m in ${MODELS:-resnet20 dirac20 dirac-shared20}; do
        f=$D/he-eval-$m-n16-boot-t2-b8-s23
        echo "== $(date -u +%T) eval $m images $n batch 8 threads 2"
        $B eval --model models/$m.onnx --data fashion-mnist --he --images $n --batch 8 --params n16-boot \
            --threads 2 --log $f.jsonl --json-out $f.json > $L/$m-$n.out 2>&1
        grep "^models/" $L/$m-$n.out
    done
done
echo "== $(date -u +%T) done"
