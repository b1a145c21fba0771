#!/usr/bin/env bash
# Session 16, issue 14: the latency goals again, on more images, right after
# s16-e2e.sh (same build and records, training paused): Dirac + shared-source
# 20 on 3 images one at a time, and on 8 images in batches of 4.
set -uo pipefail
cd "$(dirname "$0")/../.."
B=${B:-target-rt/release/residue}
D=docs/data
L=runs/s16
for p in $(pgrep -f residue-train); do kill -STOP $p; done
trap 'for p in $(pgrep -f residue-train); do kill -CONT $p; done' EXIT
ev() { # model images batch suffix
    local f=$D/he-eval-$1-n16-boot-t2$4-s16b
    echo "== $(date -u +%T) eval $1 images $2 batch $3"
    rm -f $f.jsonl
    $B eval --model models/$1.onnx --data fashion-mnist --he --images $2 --batch $3 --params n16-boot \
        --threads 2 --log $f.jsonl --json-out $f.json > $L/e2e2-$1$4.out 2>&1
    tail -1 $L/e2e2-$1$4.out
}
ev dirac-shared20 3 1 ""
ev dirac-shared20 8 4 "-b4"
echo "== $(date -u +%T) done"
