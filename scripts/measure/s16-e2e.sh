#!/usr/bin/env bash
# Session 16, issues 11/14: after the wide-modulus IFMA kernels, end to end
# with this build's default plans (priced from s16-window.sh's records),
# two threads, training paused: the three committed Fashion-MNIST models,
# Dirac + shared-source 20 batched by 4, and the CIFAR-shaped full-width
# ResNet-20 (random weights; compile, keygen and encrypt first, then
# `residue infer`, as sessions 9-10 measured it). Start with `setsid nohup`.
set -uo pipefail
cd "$(dirname "$0")/../.."
B=${B:-target-rt/release/residue}
D=docs/data
L=runs/s16
C=runs/cifar
mkdir -p $L $C
W=$L/cifar
B=$B scripts/measure/cifar-setup.sh $C $W || exit 1
for p in $(pgrep -f residue-train); do kill -STOP $p; done
trap 'for p in $(pgrep -f residue-train); do kill -CONT $p; done' EXIT
ev() { # model images batch suffix
    local f=$D/he-eval-$1-n16-boot-t2$4-s16
    echo "== $(date -u +%T) eval $1 images $2 batch $3"
    rm -f $f.jsonl
    $B eval --model models/$1.onnx --data fashion-mnist --he --images $2 --batch $3 --params n16-boot \
        --threads 2 --log $f.jsonl --json-out $f.json > $L/e2e-$1$4.out 2>&1
    tail -1 $L/e2e-$1$4.out
}
an() { # model-path out-name batch
    $B analyze $1 --params n16-boot --threads 2 --batch $3 --json-out $L/analyze-$2.json > /dev/null 2>&1
    python3 -c "import json,sys;d=json.load(open(sys.argv[1]));print('estimate', sys.argv[2], d['estimated_seconds'], d['estimated_seconds_per_image'])" $L/analyze-$2.json $2
}
for m in dirac-shared20 resnet20 dirac20; do an models/$m.onnx $m 1; done
an models/dirac-shared20.onnx dirac-shared20-b4 4
an $C/resnet20-cifar.onnx cifar 1
ev dirac-shared20 1 1 ""
ev resnet20 1 1 ""
ev dirac20 1 1 ""
ev dirac-shared20 4 4 "-b4"
echo "== $(date -u +%T) infer cifar resnet20 t2"
$B infer --plan $W/plan.json --model $C/resnet20-cifar.onnx --eval-keys $W/keys/eval --input $W/in.ct \
    --out $W/out.ct --threads 2 --json-out $D/infer-n16-resnet20-cifar-random-t2-s16.json > $W/infer.out 2>&1
tail -1 $W/infer.out
echo "== $(date -u +%T) done"
