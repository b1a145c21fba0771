#!/usr/bin/env bash
# Session 15, issue 14: strided NTTs for sparse-slot plaintexts. One window
# (training paused): Dirac + shared-source 20 on two threads with this
# build and with the build before (OLD, default /tmp/residue-old), then the
# leveled-operation records the compiler prices from (encode_real at 8192,
# 16384 and 32768 slots among them). Start with `setsid nohup` and return.
set -uo pipefail
cd "$(dirname "$0")/../.."
B=${B:-target-rt/release/residue}
OLD=${OLD:-/tmp/residue-old}
D=docs/data
L=runs/s15
mkdir -p $L
for p in $(pgrep -f residue-train); do kill -STOP $p; done
trap 'for p in $(pgrep -f residue-train); do kill -CONT $p; done' EXIT
ev() { # binary suffix
    local f=$D/he-eval-dirac-shared20-n16-boot-t2$2-s15
    echo "== $(date -u +%T) eval $1"
    rm -f $f.jsonl
    /usr/bin/time -f %e_s_wall_%M_maxKB $1 eval --model models/dirac-shared20.onnx --data fashion-mnist --he \
        --images 1 --batch 1 --params n16-boot --threads 2 --log $f.jsonl --json-out $f.json \
        > $L/eval$2.out 2>&1
    tail -1 $L/eval$2.out
}
ev $B ""
ev $OLD "-before"
LV=1,3,5,7,9,11,13,24
OPS=encode_real,add,mul_plain,mul_plain_acc,mul_relin,rescale,rotate,rotate_hoisted
for t in 1 2; do
    echo "== $(date -u +%T) ops t$t"
    $B bench ckks --params n16-boot --threads $t --reps 7 --levels $LV --ops $OPS --slots 8192 \
        --json-out $D/ops-n16-boot-levels-s15-t$t.json > $L/ops-t$t.out 2>&1
    for s in 16384 32768; do
        $B bench ckks --params n16-boot --threads $t --reps 7 --levels $LV --ops encode_real --slots $s \
            --json-out $D/ops-n16-boot-encode-$s-s15-t$t.json > $L/enc-$s-t$t.out 2>&1
    done
done
echo "== $(date -u +%T) done"
