#!/usr/bin/env bash
# Session 16, issues 11/14: after the wide-modulus IFMA kernels, in one
# window (training paused): the leveled-operation records the compiler
# prices from, and the n16-boot bootstraps at every slot count plans use
# (8192 and 4096 NTT-form diagonals, 16384 and 32768 coefficients, as
# `residue infer` holds them by default), one and two threads.
# Start with `setsid nohup` and return.
set -uo pipefail
cd "$(dirname "$0")/../.."
B=${B:-target-rt/release/residue}
D=docs/data
L=runs/s16
mkdir -p $L
for p in $(pgrep -f residue-train); do kill -STOP $p; done
trap 'for p in $(pgrep -f residue-train); do kill -CONT $p; done' EXIT
LV=1,3,5,7,9,11,13,24
OPS=encode_real,add,mul_plain,mul_plain_acc,mul_relin,rescale,rotate,rotate_hoisted,rotate_sum
for t in 1 2; do
    echo "== $(date -u +%T) ops t$t"
    $B bench ckks --params n16-boot --threads $t --reps 7 --levels $LV --ops $OPS --slots 8192 \
        --json-out $D/ops-n16-boot-levels-s16-t$t.json > $L/ops-t$t.out 2>&1
    for s in 16384 32768; do
        $B bench ckks --params n16-boot --threads $t --reps 7 --levels $LV --ops encode_real --slots $s \
            --json-out $D/ops-n16-boot-encode-$s-s16-t$t.json > $L/enc-$s-t$t.out 2>&1
    done
done
boot() { # slots threads suffix [flags]
    echo "== $(date -u +%T) bootstrap $1 t$2 $3"
    $B bench ckks --params n16-boot --threads $2 --reps 3 --ops bootstrap --slots $1 ${4:-} \
        --json-out $D/boot16-s16-$1-t$2$3.json > $L/boot-$1-t$2$3.out 2>&1
    python3 -c "import json,sys;d=json.load(open(sys.argv[1]))[0];print(round(d['median_ms']/1e3,2),'s',{k:round(v/1e3,2) for k,v in d['stages_ms'].items() if not k.endswith('cpu')},round(d['precision_bits_mean'],2),round(d['precision_bits_min'],2))" $D/boot16-s16-$1-t$2$3.json
}
for t in 1 2; do
    boot 8192 $t ""
    boot 4096 $t ""
    boot 16384 $t -lowmem --low-memory
    boot 32768 $t -lowmem --low-memory
done
echo "== $(date -u +%T) done"
