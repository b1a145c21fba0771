#!/usr/bin/env bash
# Session 14, issue 14: the estimate against the measurement in ONE quiet
# window on this machine (session 13's window found the linear layers priced
# 1.36x (one thread) and 1.42x (two threads) above what they measured).
# Records what a linear layer really runs: `encode_real` (a real diagonal at
# the plan's slot count) and `mul_plain_acc`, and on two threads also with
# `--concurrent` (threads shared between operations, as the runtime's
# linear layers share them). Then the bootstraps Fashion plans use (8192
# slots) and batched plans use (32768), and Dirac + shared-source 20 and
# ResNet-20 end to end. Everything else paused; start with `setsid nohup`.
# Outputs: docs/data/ops-n16-boot-levels-s14-t{1,2}[-concurrent].json,
# boot16-s14-<slots>-t<T>.json, he-eval-<model>-n16-boot-t<T>[-b4]-s14.json{,l}.
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
        --json-out $D/ops-n16-boot-levels-s14-t$t.json > $L/ops-t$t.out 2>&1
done
echo "== $(date -u +%T) ops t2 concurrent"
$B bench ckks --params n16-boot --threads 2 --reps 7 --levels $LV --ops $OPS --slots 8192 --concurrent \
    --json-out $D/ops-n16-boot-levels-s14-t2-concurrent.json > $L/ops-t2c.out 2>&1
for s in 16384 32768; do
    echo "== $(date -u +%T) encode_real $s"
    $B bench ckks --params n16-boot --threads 1 --reps 7 --levels $LV --ops encode_real --slots $s \
        --json-out $D/ops-n16-boot-encode-$s-s14-t1.json > $L/enc-$s-t1.out 2>&1
    $B bench ckks --params n16-boot --threads 2 --reps 7 --levels $LV --ops encode_real --slots $s --concurrent \
        --json-out $D/ops-n16-boot-encode-$s-s14-t2-concurrent.json > $L/enc-$s-t2c.out 2>&1
done
for t in 1 2; do for s in 8192 32768; do
    echo "== $(date -u +%T) bootstrap $s t$t"
    $B bench ckks --params n16-boot --ops bootstrap --slots $s --threads $t --reps 3 \
        --json-out $D/boot16-s14-$s-t$t.json > $L/boot-$s-t$t.out 2>&1
    grep -o '"median_ms": *[0-9.]*' $D/boot16-s14-$s-t$t.json
done; done
ev() { # model threads images batch suffix
    local f=$D/he-eval-$1-n16-boot-t$2$5-s14
    echo "== $(date -u +%T) eval $1 t$2 images $3 batch $4"
    rm -f $f.jsonl
    /usr/bin/time -f %e_s_wall_%M_maxKB $B eval --model models/$1.onnx --data fashion-mnist --he \
        --images $3 --batch $4 --params n16-boot --threads $2 --log $f.jsonl --json-out $f.json \
        > $L/eval-$1-t$2$5.out 2>&1
    tail -1 $L/eval-$1-t$2$5.out
}
ev dirac-shared20 2 2 1 ""
ev dirac-shared20 1 1 1 ""
ev resnet20 2 1 1 ""
ev dirac-shared20 2 4 4 "-b4"
echo "== $(date -u +%T) done"
