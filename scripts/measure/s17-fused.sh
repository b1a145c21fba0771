#!/usr/bin/env bash
# Session 17, issue 14: quadratic activations at depth 1 (completed squares
# folded into the linear layer before them) against the two-level
# polynomial, alternated in one window, training paused: the three
# committed Fashion-MNIST models one image at a time (2 images each), then
# Dirac + shared-source 20 at batch 8.
set -uo pipefail
cd "$(dirname "$0")/../.."
B=${B:-target-rt/release/residue}
D=docs/data
L=runs/s17
mkdir -p $L
for p in $(pgrep -f residue-train); do kill -STOP $p; done
trap 'for p in $(pgrep -f residue-train); do kill -CONT $p; done' EXIT
ev() { # model images batch tag [flags]
    local m=$1 n=$2 b=$3 tag=$4; shift 4
    local f=$D/he-eval-$m-n16-boot-t2-b$b-$tag-s17
    echo "== $(date -u +%T) eval $m images $n batch $b $tag $*"
    rm -f $f.jsonl
    $B analyze models/$m.onnx --params n16-boot --threads 2 --batch $b "$@" --json > $L/analyze-$m-b$b-$tag.json
    /usr/bin/time -v $B eval --model models/$m.onnx --data fashion-mnist --he --images $n --batch $b --params n16-boot \
        --threads 2 "$@" --log $f.jsonl --json-out $f.json > $L/fused-$m-b$b-$tag.out 2>&1
    grep -E "Maximum resident" $L/fused-$m-b$b-$tag.out
    grep "^models/" $L/fused-$m-b$b-$tag.out
}
ev dirac-shared20 2 1 fused
ev dirac-shared20 2 1 plain --no-fused-squares
ev resnet20 2 1 fused
ev dirac20 2 1 fused
ev dirac-shared20 8 8 fused
echo "== $(date -u +%T) done"
