#!/usr/bin/env bash
# Session 17, issue 14: one thread, this build's default plans (completed
# squares): Dirac + shared-source 20 and ResNet-20 one image each, and the
# CIFAR-shaped ResNet-20 from s17-fused2.sh's plan, keys and ciphertext.
# Training paused. Start with `setsid nohup`.
set -uo pipefail
cd "$(dirname "$0")/../.."
B=${B:-target-rt/release/residue}
D=docs/data
L=runs/s17
C=runs/cifar
W=$L/cifar2
for p in $(pgrep -f residue-train); do kill -STOP $p; done
trap 'for p in $(pgrep -f residue-train); do kill -CONT $p; done' EXIT
for m in dirac-shared20 resnet20; do
    f=$D/he-eval-$m-n16-boot-t1-b1-fused2-s17
    echo "== $(date -u +%T) eval $m t1"
    rm -f $f.jsonl
    $B eval --model models/$m.onnx --data fashion-mnist --he --images 1 --params n16-boot \
        --threads 1 --log $f.jsonl --json-out $f.json > $L/t1-$m.out 2>&1
    grep "^models/" $L/t1-$m.out
done
echo "== $(date -u +%T) infer cifar resnet20 t1"
$B infer --plan $W/plan.json --model $C/resnet20-cifar.onnx --eval-keys $W/keys/eval --input $W/in.ct \
    --out $W/out-t1.ct --threads 1 --json-out $D/infer-n16-resnet20-cifar-random-t1-s17b.json > $W/infer-t1.out 2>&1
tail -1 $W/infer-t1.out
echo "== $(date -u +%T) done"
