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
if [ ! -f $C/resnet20-cifar.onnx ]; then
    target-rt/release/examples/export_zoo resnet20 3 32 $C/resnet20-cifar.onnx 1.0 || exit 1
fi
# A fixed pseudo-random input in [0, 1), shape [1, 3, 32, 32], as .npy
# (the same as scripts/measure/s16-e2e.sh).
python3 - $C/input.npy <<'PY'
import struct, sys
n = 3 * 32 * 32
hdr = "{'descr': '<f4', 'fortran_order': False, 'shape': (1, 3, 32, 32), }"
hdr += " " * (63 - (10 + len(hdr)) % 64) + "\n"
x, vals = 12345, []
for _ in range(n):
    x = (1103515245 * x + 12345) % 2**31
    vals.append(x / 2**31)
with open(sys.argv[1], "wb") as f:
    f.write(b"\x93NUMPY\x01\x00" + struct.pack("<H", len(hdr)) + hdr.encode())
    f.write(struct.pack("<%df" % n, *vals))
PY
W=$L/cifar
mkdir -p $W
$B compile $C/resnet20-cifar.onnx --params n16-boot --out $W/plan.json --json > $W/compile.json 2> $W/compile.err || exit 1
$B keygen --plan $W/plan.json --model $C/resnet20-cifar.onnx --out $W/keys --json > $W/keygen.json 2> $W/keygen.err || exit 1
$B encrypt --keys $W/keys --plan $W/plan.json --input $C/input.npy --out $W/in.ct > $W/encrypt.out 2>&1 || exit 1
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
