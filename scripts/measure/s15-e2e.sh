#!/usr/bin/env bash
# Session 15, issue 14: the committed models end to end with this build's
# default plans (priced from s15-window.sh's records), two threads,
# training paused. Start with `setsid nohup` and return.
set -uo pipefail
cd "$(dirname "$0")/../.."
B=${B:-target-rt/release/residue}
D=docs/data
L=runs/s15
mkdir -p $L
for p in $(pgrep -f residue-train); do kill -STOP $p; done
trap 'for p in $(pgrep -f residue-train); do kill -CONT $p; done' EXIT
ev() { # model images batch suffix
    local f=$D/he-eval-$1-n16-boot-t2$4-s15b
    echo "== $(date -u +%T) eval $1 images $2 batch $3"
    rm -f $f.jsonl
    $B eval --model models/$1.onnx --data fashion-mnist --he --images $2 --batch $3 --params n16-boot \
        --threads 2 --log $f.jsonl --json-out $f.json > $L/e2e-$1$4.out 2>&1
    tail -1 $L/e2e-$1$4.out
}
ev dirac-shared20 1 1 ""
ev resnet20 1 1 ""
ev dirac-shared20 4 4 "-b4"
echo "== $(date -u +%T) done"
