#!/usr/bin/env bash
# Session 14, issue 14: the leveled-operation records and the end-to-end
# runs the estimate is checked against, in one window right after
# s14-boot.sh's bootstraps (this host's speed drifted by up to a third
# between windows: the full-slot bootstrap took 15.6 s in s14-window.sh's
# window and 12.0 s in s14-boot.sh's). Everything else paused; start with
# `setsid nohup` and return at once (the pause stops every other process,
# the shell that started it included).
set -uo pipefail
cd "$(dirname "$0")/../.."
B=${B:-target-rt/release/residue}
D=docs/data
L=runs/s14
mkdir -p $L
trap 'scripts/measure/quiet.sh CONT' EXIT
scripts/measure/quiet.sh STOP; sleep 1; scripts/measure/quiet.sh STOP
LV=1,3,5,7,9,11,13,24
OPS=encode_real,add,mul_plain,mul_plain_acc,mul_relin,rescale,rotate,rotate_hoisted
for t in 1 2; do
    echo "== $(date -u +%T) ops t$t"
    $B bench ckks --params n16-boot --threads $t --reps 7 --levels $LV --ops $OPS --slots 8192 \
        --json-out $D/ops-n16-boot-levels-s14b-t$t.json > $L/ops3-t$t.out 2>&1
    for s in 16384 32768; do
        $B bench ckks --params n16-boot --threads $t --reps 7 --levels $LV --ops encode_real --slots $s \
            --json-out $D/ops-n16-boot-encode-$s-s14b-t$t.json > $L/enc3-$s-t$t.out 2>&1
    done
done
ev() { # model threads images batch suffix
    local f=$D/he-eval-$1-n16-boot-t$2$5-s14b
    echo "== $(date -u +%T) eval $1 t$2 images $3 batch $4"
    rm -f $f.jsonl
    /usr/bin/time -f %e_s_wall_%M_maxKB $B eval --model models/$1.onnx --data fashion-mnist --he \
        --images $3 --batch $4 --params n16-boot --threads $2 --log $f.jsonl --json-out $f.json \
        > $L/eval3-$1-t$2$5.out 2>&1
    tail -1 $L/eval3-$1-t$2$5.out
}
ev dirac-shared20 2 2 1 ""
ev dirac-shared20 2 4 4 "-b4"
ev resnet20 2 1 1 ""
echo "== $(date -u +%T) done"
