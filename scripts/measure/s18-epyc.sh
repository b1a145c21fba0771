#!/usr/bin/env bash
# Session 18: back on the 2-core AMD EPYC (Zen 4, AVX-512 IFMA) of sessions
# 1-13, after sessions 14-17's engine and compiler changes made on an Intel
# host. In one window, training paused (start with `setsid nohup`):
#  1. issue 11: the n16-boot bootstrap, full-slot and sparse, 1 and 2
#     threads, with its stage profile; n15-q760 leveled operations beside
#     SEAL (`$SEAL 21`) on the same machine;
#  2. the compiler's records for this host (leveled operations at the levels
#     plans use, encodes, bootstraps as `residue infer` holds their
#     diagonals), as scripts/measure/s16-window.sh took them.
# Part 3 (end to end) is s18-e2e.sh; the AVX2 path is s18-avx2.sh.
set -uo pipefail
cd "$(dirname "$0")/../.."
B=${B:-target-rt/release/residue}
SEAL=${SEAL:-/tmp/seal-bench-target/release/seal-bench}
D=docs/data
L=runs/s18
mkdir -p $L
for p in $(pgrep -f residue-train); do kill -STOP $p; done
trap 'for p in $(pgrep -f residue-train); do kill -CONT $p; done' EXIT
summ() {
    python3 -c "import json,sys;d=json.load(open(sys.argv[1]))[0];print(round(d['median_ms']/1e3,2),'s',{k:round(v/1e3,2) for k,v in d.get('stages_ms',{}).items() if not k.endswith('cpu')},round(d['precision_bits_mean'],2),round(d['precision_bits_min'],2),d.get('levels_after'),d.get('key_bytes'))" $1
}
boot() { # slots threads reps suffix [flags]
    local f=$D/boot16-s18-$1-t$2$4.json
    echo "== $(date -u +%T) bootstrap $1 t$2 $4"
    $B bench ckks --params n16-boot --threads $2 --reps $3 --ops bootstrap --slots $1 ${5:-} \
        --json-out $f > $L/boot-$1-t$2$4.out 2>&1
    summ $f
}
for t in 1 2; do boot 32768 $t 5 "" --profile; done
for t in 1 2; do for s in 16384 8192 4096; do boot $s $t 3 ""; done; done
echo "== $(date -u +%T) n15-q760 ops t1"
$B bench ckks --params n15-q760 --threads 1 --reps 21 --json-out $D/ops-n15-q760-s18-t1.json > $L/n15.out 2>&1
grep -o '"op": *"[a-z_]*"\|"median_ms": *[0-9.]*' $D/ops-n15-q760-s18-t1.json | paste - - | head -20
if [ -x "$SEAL" ]; then
    echo "== $(date -u +%T) seal"
    $SEAL 21 > $D/seal-s18.json 2> $L/seal.err; cat $D/seal-s18.json
fi
LV=1,3,5,7,9,11,13,24
OPS=encode_real,add,mul_plain,mul_plain_acc,mul_relin,rescale,rotate,rotate_hoisted,rotate_sum
for t in 1 2; do
    echo "== $(date -u +%T) ops t$t"
    $B bench ckks --params n16-boot --threads $t --reps 7 --levels $LV --ops $OPS --slots 8192 \
        --json-out $D/ops-n16-boot-levels-s18-t$t.json > $L/ops-t$t.out 2>&1
    for s in 16384 32768; do
        $B bench ckks --params n16-boot --threads $t --reps 7 --levels $LV --ops encode_real --slots $s \
            --json-out $D/ops-n16-boot-encode-$s-s18-t$t.json > $L/enc-$s-t$t.out 2>&1
    done
done
for t in 1 2; do
    boot 16384 $t 3 -lowmem --low-memory
    boot 32768 $t 3 -lowmem --low-memory
done
echo "== $(date -u +%T) done"
