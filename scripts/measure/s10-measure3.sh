#!/usr/bin/env bash
# Session 10: CIFAR-shaped ResNet-20 at the batch the compiler chooses (auto), 2 threads, --low-memory; quiet.
set -uo pipefail
cd /work/main
B=runs/he/residue-s10
D=runs/s10
W=/work/cifar-s10b
M=runs/cifar/resnet20-cifar.onnx
T="/usr/bin/time -f %e_s_wall_%U_user_%S_sys_%R_minflt_%M_maxKB"
mkdir -p $W
$B compile $M --params n16-boot --batch auto --out $W/plan.json --json > $D/cifar-b-compile.json 2>$D/cifar-b-compile.err || exit 1
$B keygen --plan $W/plan.json --model $M --out $W/keys --json > $D/cifar-b-keygen.json 2>/dev/null || exit 1
$B encrypt --keys $W/keys --plan $W/plan.json --input runs/cifar/input-b2.npy --out $W/in.ct > $D/cifar-b-encrypt.out 2>&1 || { cat $D/cifar-b-encrypt.out; exit 1; }
trap 'scripts/measure/quiet.sh CONT' EXIT
scripts/measure/quiet.sh STOP
echo "== $(date -u +%T) infer batch"
$T $B infer --plan $W/plan.json --model $M --eval-keys $W/keys/eval --input $W/in.ct --out $W/out.ct --threads 2 --low-memory --json > $D/cifar-infer-s10-batch-low.json 2> $D/cifar-infer-s10-batch-low.err; tail -1 $D/cifar-infer-s10-batch-low.err
echo "== $(date -u +%T) done"
