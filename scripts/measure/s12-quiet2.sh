#!/usr/bin/env bash
# Session 12, issue 14: what the fresh-user check found unmeasured, each run
# with everything else paused: Dirac + shared-source 20 on two threads with
# today's default (coefficient-held diagonals), alone (2 images) and at
# batch 4; and the 16384-slot bootstrap (the CIFAR shape's size) on one
# and two threads, which the compiler priced by a constant. Start with
# `setsid nohup` while nothing is timing images.
set -uo pipefail
cd "$(dirname "$0")/../.."
B=${B:-target-rt/release/residue}
D=${D:-runs/s12}
mkdir -p "$D"
trap 'scripts/measure/quiet.sh CONT' EXIT
q() { scripts/measure/quiet.sh STOP; "$@"; scripts/measure/quiet.sh CONT; }
echo "== $(date -u +%T) dirac-shared20 t2 alone"
rm -f $D/eval-dirac-shared20-n16-boot-t2.jsonl
q "$B" eval --model models/dirac-shared20.onnx --data fashion-mnist --he --images 2 --params n16-boot \
    --threads 2 --log $D/eval-dirac-shared20-n16-boot-t2.jsonl \
    --json-out $D/eval-dirac-shared20-n16-boot-t2.json > $D/eval-ds-t2.out 2>&1; tail -1 $D/eval-ds-t2.out
echo "== $(date -u +%T) dirac-shared20 t2 batch 4"
rm -f $D/eval-dirac-shared20-n16-boot-t2-b4.jsonl
q "$B" eval --model models/dirac-shared20.onnx --data fashion-mnist --he --images 4 --batch 4 --params n16-boot \
    --threads 2 --log $D/eval-dirac-shared20-n16-boot-t2-b4.jsonl \
    --json-out $D/eval-dirac-shared20-n16-boot-t2-b4.json > $D/eval-ds-t2-b4.out 2>&1; tail -1 $D/eval-ds-t2-b4.out
for t in 1 2; do
    echo "== $(date -u +%T) bootstrap 16384 slots t$t"
    q "$B" bench ckks --params n16-boot --ops bootstrap --slots 16384 --threads $t --reps 2 \
        --json-out docs/data/boot16-16384-s12-t$t.json > $D/boot16384-t$t.out 2>&1; tail -3 $D/boot16384-t$t.out
done
echo "== $(date -u +%T) done"
