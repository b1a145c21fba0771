#!/usr/bin/env bash
# Session 17, issue 14: with completed squares after skip additions too
# (the addition scales its skip), in one window, training paused:
# Dirac + shared-source 20 and ResNet-20 with and without completed
# squares (alternated), then the CIFAR-shaped ResNet-20 (compile, keygen,
# encrypt, `residue infer`). Nothing else may run. Start with `setsid nohup`.
set -uo pipefail
cd "$(dirname "$0")/../.."
B=${B:-target-rt/release/residue}
D=docs/data
L=runs/s17
C=runs/cifar
mkdir -p $L
W=$L/cifar2
mkdir -p $W
$B analyze $C/resnet20-cifar.onnx --params n16-boot --threads 2 --json > $L/analyze-cifar2.json 2>/dev/null
$B compile $C/resnet20-cifar.onnx --params n16-boot --out $W/plan.json --json > $W/compile.json 2> $W/compile.err || exit 1
$B keygen --plan $W/plan.json --model $C/resnet20-cifar.onnx --out $W/keys --json > $W/keygen.json 2> $W/keygen.err || exit 1
$B encrypt --keys $W/keys --plan $W/plan.json --input $C/input.npy --out $W/in.ct > $W/encrypt.out 2>&1 || exit 1
for p in $(pgrep -f residue-train); do kill -STOP $p; done
trap 'for p in $(pgrep -f residue-train); do kill -CONT $p; done' EXIT
ev() { # model images batch tag [flags]
    local m=$1 n=$2 b=$3 tag=$4; shift 4
    local f=$D/he-eval-$m-n16-boot-t2-b$b-$tag-s17
    echo "== $(date -u +%T) eval $m images $n batch $b $tag $*"
    rm -f $f.jsonl
    $B analyze models/$m.onnx --params n16-boot --threads 2 --batch $b "$@" --json > $L/analyze-$m-b$b-$tag.json
    $B eval --model models/$m.onnx --data fashion-mnist --he --images $n --batch $b --params n16-boot \
        --threads 2 "$@" --log $f.jsonl --json-out $f.json > $L/fused2-$m-b$b-$tag.out 2>&1
    grep "^models/" $L/fused2-$m-b$b-$tag.out
}
ev dirac-shared20 2 1 fused2
ev dirac-shared20 1 1 plain2 --no-fused-squares
ev resnet20 2 1 fused2
ev resnet20 1 1 plain2 --no-fused-squares
echo "== $(date -u +%T) infer cifar resnet20 t2"
$B infer --plan $W/plan.json --model $C/resnet20-cifar.onnx --eval-keys $W/keys/eval --input $W/in.ct \
    --out $W/out.ct --threads 2 --json-out $D/infer-n16-resnet20-cifar-random-t2-s17b.json > $W/infer.out 2>&1
tail -1 $W/infer.out
echo "== $(date -u +%T) done"
