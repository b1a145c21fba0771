#!/usr/bin/env bash
# Session 18, issue 14 on the EPYC (Zen 4, IFMA): end to end at today's
# defaults (one-level activations), two threads unless said, training
# paused; nothing else may run. Start with `setsid nohup`.
#   Dirac + shared-source 20: 3 images one at a time; 8 at batch 8; one
#   image on one thread. ResNet-20 and Dirac-20: 2 images; one on one
#   thread. The CIFAR-shaped
#   full-width ResNet-20 (random weights): compile, keygen, encrypt, infer
#   on two threads, then on one.
set -uo pipefail
cd "$(dirname "$0")/../.."
B=${B:-target-rt/release/residue}
D=docs/data
L=runs/s18
C=runs/cifar
mkdir -p $L $C
W=$L/cifar
B=$B scripts/measure/cifar-setup.sh $C $W || exit 1
for p in $(pgrep -f residue-train); do kill -STOP $p; done
trap 'for p in $(pgrep -f residue-train); do kill -CONT $p; done' EXIT
echo "== $(date -u +%T) infer cifar resnet20 t2"
/usr/bin/time -v $B infer --plan $W/plan.json --model $C/resnet20-cifar.onnx --eval-keys $W/keys/eval --input $W/in.ct \
    --out $W/out.ct --threads 2 --json-out $D/infer-n16-resnet20-cifar-random-t2-s18.json > $W/infer.out 2>&1
grep -E "Maximum resident|Elapsed" $W/infer.out
ev() { # model images batch threads
    local f=$D/he-eval-$1-n16-boot-t$4-b$3-s18
    echo "== $(date -u +%T) eval $1 images $2 batch $3 threads $4"
    rm -f $f.jsonl
    $B eval --model models/$1.onnx --data fashion-mnist --he --images $2 --batch $3 --params n16-boot \
        --threads $4 --log $f.jsonl --json-out $f.json > $L/e2e-$1-b$3-t$4.out 2>&1
    grep "^models/" $L/e2e-$1-b$3-t$4.out
}
ev dirac-shared20 3 1 2
ev dirac-shared20 8 8 2
ev resnet20 2 1 2
ev dirac20 2 1 2
ev dirac-shared20 1 1 1
ev resnet20 1 1 1
ev dirac20 1 1 1
echo "== $(date -u +%T) infer cifar resnet20 t1"
/usr/bin/time -v $B infer --plan $W/plan.json --model $C/resnet20-cifar.onnx --eval-keys $W/keys/eval --input $W/in.ct \
    --out $W/out1.ct --threads 1 --json-out $D/infer-n16-resnet20-cifar-random-t1-s18.json > $W/infer1.out 2>&1
grep -E "Maximum resident|Elapsed" $W/infer1.out
echo "== $(date -u +%T) done"
