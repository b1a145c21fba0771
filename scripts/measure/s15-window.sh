#!/usr/bin/env bash
# Session 15, issue 14: after the strided NTT and rotate_sum, in one window
# (training paused): the leveled-operation records the compiler prices
# from (now with `rotate_sum`), the bootstraps the committed plans use
# (8192 slots NTT form, 16384 coefficients), then Dirac + shared-source 20
# on the keys and ciphertext of s15-ab.sh and ResNet-20 end to end, two
# threads. Start with `setsid nohup` and return.
set -uo pipefail
cd "$(dirname "$0")/../.."
B=${B:-target-rt/release/residue}
D=docs/data
L=runs/s15
mkdir -p $L
for p in $(pgrep -f residue-train); do kill -STOP $p; done
trap 'for p in $(pgrep -f residue-train); do kill -CONT $p; done' EXIT
LV=1,3,5,7,9,11,13,24
OPS=encode_real,add,mul_plain,mul_plain_acc,mul_relin,rescale,rotate,rotate_hoisted,rotate_sum
for t in 1 2; do
    echo "== $(date -u +%T) ops t$t"
    $B bench ckks --params n16-boot --threads $t --reps 7 --levels $LV --ops $OPS --slots 8192 \
        --json-out $D/ops-n16-boot-levels-s15-t$t.json > $L/ops-t$t.out 2>&1
    for s in 16384 32768; do
        $B bench ckks --params n16-boot --threads $t --reps 7 --levels $LV --ops encode_real --slots $s \
            --json-out $D/ops-n16-boot-encode-$s-s15-t$t.json > $L/enc-$s-t$t.out 2>&1
    done
done
for t in 1 2; do
    echo "== $(date -u +%T) bootstrap 8192 t$t"
    $B bench ckks --params n16-boot --threads $t --reps 3 --ops bootstrap --slots 8192 \
        --json-out $D/boot16-s15-8192-t$t.json > $L/boot-8192-t$t.out 2>&1
    echo "== $(date -u +%T) bootstrap 16384 lowmem t$t"
    $B bench ckks --params n16-boot --threads $t --reps 3 --ops bootstrap --slots 16384 --low-memory \
        --json-out $D/boot16-s15-16384-t$t-lowmem.json > $L/boot-16384-t$t.out 2>&1
done
A=runs/s15/ab
echo "== $(date -u +%T) infer dirac-shared20 t2"
$B infer --plan $A/plan.json --model models/dirac-shared20.onnx --eval-keys $A/keys/eval --input $A/x.ct \
    --out $A/y3.ct --threads 2 --json-out $D/infer-dirac-shared20-n16-boot-t2-s15.json > $L/infer3.out 2>&1
tail -1 $L/infer3.out
f=$D/he-eval-resnet20-n16-boot-t2-s15
echo "== $(date -u +%T) eval resnet20 t2"
rm -f $f.jsonl
$B eval --model models/resnet20.onnx --data fashion-mnist --he --images 1 --batch 1 --params n16-boot \
    --threads 2 --log $f.jsonl --json-out $f.json > $L/eval-resnet20.out 2>&1
tail -1 $L/eval-resnet20.out
echo "== $(date -u +%T) done"
