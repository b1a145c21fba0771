#!/usr/bin/env bash
# Session 17, issue 14: batches beyond one ciphertext. Dirac + shared-source
# 20 at batch 4 (four 8192-slot images fill the 32768 slots), 8 and 16 (each
# image gets 4096 or 2048 slots; the 8-channel maps spill over two or four
# ciphertexts), in one window, training paused.
set -uo pipefail
cd "$(dirname "$0")/../.."
B=${B:-target-rt/release/residue}
D=docs/data
L=runs/s17
mkdir -p $L
for p in $(pgrep -f residue-train); do kill -STOP $p; done
trap 'for p in $(pgrep -f residue-train); do kill -CONT $p; done' EXIT
ev() { # model images batch
    local f=$D/he-eval-$1-n16-boot-t2-b$3-s17
    echo "== $(date -u +%T) eval $1 images $2 batch $3"
    rm -f $f.jsonl
    $B analyze models/$1.onnx --params n16-boot --threads 2 --batch $3 --json > $L/analyze-$1-b$3.json
    /usr/bin/time -v $B eval --model models/$1.onnx --data fashion-mnist --he --images $2 --batch $3 --params n16-boot \
        --threads 2 --log $f.jsonl --json-out $f.json > $L/batch-$1-b$3.out 2>&1
    grep -E "Maximum resident" $L/batch-$1-b$3.out
    tail -3 $L/batch-$1-b$3.out
}
ev dirac-shared20 8 8
ev dirac-shared20 16 16
ev dirac-shared20 8 4
echo "== $(date -u +%T) done"
