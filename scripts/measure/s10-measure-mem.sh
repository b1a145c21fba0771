#!/usr/bin/env bash
# Session 10: CIFAR-shaped ResNet-20 `residue infer` with and without --low-memory,
# and one n16-boot bootstrap both ways; everything else paused (scripts/measure/quiet.sh).
set -uo pipefail
cd /work/main
B=runs/he/residue-s10
W=/work/cifar-s10
D=runs/s10
M=runs/cifar/resnet20-cifar.onnx
trap 'scripts/measure/quiet.sh CONT' EXIT
scripts/measure/quiet.sh STOP
for mode in low full; do
  flag=""; [ $mode = low ] && flag=--low-memory
  echo "== $(date -u +%T) infer $mode"
  $B infer --plan $W/plan.json --model $M --eval-keys $W/keys/eval --input $W/in.ct --out $W/out-$mode.ct --threads 2 $flag --json > $D/cifar-infer-s10-$mode.json 2> $D/cifar-infer-s10-$mode.err &
  P=$!; t0=$(date +%s.%N); : > $D/cifar-rss-s10-$mode.tsv
  while kill -0 $P 2>/dev/null; do
    r=$(awk '/VmRSS|VmHWM/{printf "%s ", $2}' /proc/$P/status 2>/dev/null)
    echo "$(echo "$(date +%s.%N) - $t0" | bc) $r" >> $D/cifar-rss-s10-$mode.tsv
    sleep 0.5
  done
  wait $P; echo "rc=$?"
done
cmp $W/out-low.ct $W/out-full.ct && echo "results identical"
for mode in low full; do
  flag=""; [ $mode = low ] && flag=--low-memory
  echo "== $(date -u +%T) bench $mode"
  /usr/bin/time -f "%e s wall %M maxKB" $B bench ckks --params n16-boot --ops bootstrap --threads 1 --reps 1 $flag --json-out $D/boot16-s10-$mode-t1.json > /dev/null 2> $D/boot16-s10-$mode-t1.err
  tail -1 $D/boot16-s10-$mode-t1.err
done
echo "== $(date -u +%T) done"
