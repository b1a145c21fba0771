#!/usr/bin/env bash
# Session 17, issue 14: end to end with completed squares (the default):
# the CIFAR-shaped full-width ResNet-20 (random weights; compile, keygen,
# encrypt, then `residue infer`, as s16-e2e.sh), Dirac + shared-source 20 on
# 4 more images one at a time, and at batch 4. Two threads, training
# paused; nothing else may run. Start with `setsid nohup`.
set -uo pipefail
cd "$(dirname "$0")/../.."
B=${B:-target-rt/release/residue}
D=docs/data
L=runs/s17
C=runs/cifar
mkdir -p $L
[ -f $C/resnet20-cifar.onnx ] && [ -f $C/input.npy ] || { echo "run s16-e2e.sh first (CIFAR model, input)"; exit 1; }
W=$L/cifar
mkdir -p $W
$B analyze $C/resnet20-cifar.onnx --params n16-boot --threads 2 --json > $L/analyze-cifar.json 2>/dev/null
$B compile $C/resnet20-cifar.onnx --params n16-boot --out $W/plan.json --json > $W/compile.json 2> $W/compile.err || exit 1
$B keygen --plan $W/plan.json --model $C/resnet20-cifar.onnx --out $W/keys --json > $W/keygen.json 2> $W/keygen.err || exit 1
$B encrypt --keys $W/keys --plan $W/plan.json --input $C/input.npy --out $W/in.ct > $W/encrypt.out 2>&1 || exit 1
for p in $(pgrep -f residue-train); do kill -STOP $p; done
trap 'for p in $(pgrep -f residue-train); do kill -CONT $p; done' EXIT
echo "== $(date -u +%T) infer cifar resnet20 t2"
/usr/bin/time -v $B infer --plan $W/plan.json --model $C/resnet20-cifar.onnx --eval-keys $W/keys/eval --input $W/in.ct \
    --out $W/out.ct --threads 2 --json-out $D/infer-n16-resnet20-cifar-random-t2-s17.json > $W/infer.out 2>&1
grep -E "Maximum resident" $W/infer.out
ev() { # model images batch tag
    local f=$D/he-eval-$1-n16-boot-t2-b$3-$4-s17
    echo "== $(date -u +%T) eval $1 images $2 batch $3 $4"
    rm -f $f.jsonl
    $B eval --model models/$1.onnx --data fashion-mnist --he --images $2 --batch $3 --params n16-boot \
        --threads 2 --log $f.jsonl --json-out $f.json > $L/e2e-$1-b$3-$4.out 2>&1
    grep "^models/" $L/e2e-$1-b$3-$4.out
}
ev dirac-shared20 4 1 fusedb
ev dirac-shared20 8 4 fused
echo "== $(date -u +%T) done"
