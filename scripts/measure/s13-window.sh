#!/usr/bin/env bash
# Session 13, issue 14: why the two-thread estimates run 1.28-1.31x above
# the measurements. In ONE quiet window: the leveled operations at n16-boot
# on two threads (as scripts/measure/s11-levels.sh), the full-slot and
# 8192-slot bootstraps on two threads, and Dirac + shared-source 20 end to
# end on two threads (2 images) and one thread (1 image), so that the
# estimate from this window's records can be compared with this window's
# inference. Start with `setsid nohup`.
set -uo pipefail
cd "$(dirname "$0")/../.."
B=${B:-runs/he/residue-s13a}
D=docs/data
L=runs/s13
trap 'scripts/measure/quiet.sh CONT' EXIT
scripts/measure/quiet.sh STOP
echo "== $(date -u +%T) ops n16-boot at levels, 2 threads"
$B bench ckks --params n16-boot --threads 2 --reps 7 --levels 1,3,5,7,9,11,13,24 \
    --ops encode,add,mul_plain,mul_plain_acc,mul_relin,rescale,rotate,rotate_hoisted \
    --json-out $D/ops-n16-boot-levels-s13w-t2.json > $L/w-levels.out 2>&1
for s in 8192 32768; do
    echo "== $(date -u +%T) bootstrap $s t2"
    $B bench ckks --params n16-boot --ops bootstrap --slots $s --threads 2 --reps 5 \
        --json-out $D/boot16-s13w-$s-t2.json > $L/w-boot-$s.out 2>&1
    grep -o '"median_ms": *[0-9.]*' $D/boot16-s13w-$s-t2.json
done
echo "== $(date -u +%T) eval dirac-shared20 t2"
rm -f $D/he-eval-dirac-shared20-n16-boot-t2-s13w.jsonl
$B eval --model models/dirac-shared20.onnx --data fashion-mnist --he --images 2 --params n16-boot --threads 2 \
    --log $D/he-eval-dirac-shared20-n16-boot-t2-s13w.jsonl > $L/w-eval-t2.out 2>&1; tail -1 $L/w-eval-t2.out
echo "== $(date -u +%T) eval dirac-shared20 t1"
rm -f $D/he-eval-dirac-shared20-n16-boot-t1-s13w.jsonl
$B eval --model models/dirac-shared20.onnx --data fashion-mnist --he --images 1 --params n16-boot --threads 1 \
    --log $D/he-eval-dirac-shared20-n16-boot-t1-s13w.jsonl > $L/w-eval-t1.out 2>&1; tail -1 $L/w-eval-t1.out
echo "== $(date -u +%T) done"
