#!/usr/bin/env bash
# Session 10: issue 14's missing rows (Dirac-20 at 1 and 2 threads, CIFAR-shaped
# ResNet-20 at 1 thread with --low-memory) and issue 11's bootstrap with the
# fused plaintext products; everything else paused.
set -uo pipefail
cd /work/main
trap 'scripts/measure/quiet.sh CONT' EXIT
scripts/measure/quiet.sh STOP
B=runs/he/residue-s10
D=runs/s10
W=/work/cifar-s10
T="/usr/bin/time -f %e_s_wall_%U_user_%S_sys_%R_minflt_%M_maxKB"
echo "== $(date -u +%T) dirac20 t2"
$T $B eval --model models/dirac20.onnx --data fashion-mnist --he --images 2 --params n16-boot --threads 2 --log $D/eval-dirac20-n16-boot-t2-s10.jsonl --json > $D/eval-dirac20-t2.json 2> $D/eval-dirac20-t2.err; tail -1 $D/eval-dirac20-t2.err
echo "== $(date -u +%T) dirac20 t1"
$T $B eval --model models/dirac20.onnx --data fashion-mnist --he --images 1 --params n16-boot --threads 1 --log $D/eval-dirac20-n16-boot-t1-s10.jsonl --json > $D/eval-dirac20-t1.json 2> $D/eval-dirac20-t1.err; tail -1 $D/eval-dirac20-t1.err
echo "== $(date -u +%T) cifar t1 low"
$T $B infer --plan $W/plan.json --model runs/cifar/resnet20-cifar.onnx --eval-keys $W/keys/eval --input $W/in.ct --out $W/out-t1.ct --threads 1 --low-memory --json > $D/cifar-infer-s10-low-t1.json 2> $D/cifar-infer-s10-low-t1.err; tail -1 $D/cifar-infer-s10-low-t1.err
cmp $W/out-t1.ct $W/out-full.ct && echo "t1 result identical to t2"
for t in 1 2; do
  echo "== $(date -u +%T) boot t$t"
  $T $B bench ckks --params n16-boot --ops bootstrap --threads $t --reps 2 --profile --json-out $D/q-boot-t$t-s10.json 2>&1 | tail -1
done
echo "== $(date -u +%T) done"
