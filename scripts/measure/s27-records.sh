#!/usr/bin/env bash
# Session 27: the compiler's n16-boot cost records re-taken on this host
# (the 2-core AMD EPYC, AVX-512 IFMA), the same operations, levels and slot
# counts as session 18's window (scripts/measure/s18-epyc.sh, part 2): the
# session-18 records priced a 4096-slot bootstrap at 4.47 s on 2 threads,
# where `residue bench ckks` now takes 2.94 s and `residue eval --he` 2.2-3.0 s.
# Pauses every residue-train while it runs (about 6 minutes).
#   setsid nohup scripts/measure/s27-records.sh > runs/s27/records.log 2>&1 &
set -uo pipefail
cd "$(dirname "$0")/../.."
. scripts/common.sh
B=${B:-$(CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-target-rt} residue_bin --release)}
. scripts/measure/quiet-window.sh
L=runs/s27
mkdir -p $L
LV=1,3,5,7,9,11,13,24
OPS=encode_real,add,mul_plain,mul_plain_acc,mul_relin,rescale,rotate,rotate_hoisted,rotate_sum
for t in 1 2; do
    echo "== $(date -u +%T) ops t$t"
    $B bench ckks --params n16-boot --threads $t --reps 7 --levels $LV --ops $OPS --slots 8192 \
        --json-out $D/ops-n16-boot-levels-s27-t$t.json > $L/ops-t$t.out 2>&1 || echo "FAILED ops t$t"
    for s in 16384 32768; do
        $B bench ckks --params n16-boot --threads $t --reps 7 --levels $LV --ops encode_real --slots $s \
            --json-out $D/ops-n16-boot-encode-$s-s27-t$t.json > $L/enc-$s-t$t.out 2>&1 || echo "FAILED enc $s t$t"
    done
done
boot() { # slots threads suffix [flags]
    echo "== $(date -u +%T) bootstrap $1 t$2 $3"
    $B bench ckks --params n16-boot --threads $2 --reps 3 --ops bootstrap --slots $1 ${4:-} \
        --json-out $D/boot16-s27-$1-t$2$3.json > $L/boot-$1-t$2$3.out 2>&1 || echo "FAILED boot $1 t$2"
    show_boot $D/boot16-s27-$1-t$2$3.json
}
for t in 1 2; do
    boot 4096 $t ""
    boot 8192 $t ""
    boot 16384 $t -lowmem --low-memory
    boot 32768 $t -lowmem --low-memory
done
echo "== $(date -u +%T) done"
