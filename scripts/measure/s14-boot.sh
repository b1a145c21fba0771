#!/usr/bin/env bash
# Session 14, issues 11 and 14: the bootstraps of every bootstrappable set on
# this session's host (Intel Xeon with AVX-512 IFMA), after the sparse
# transforms' new stage cuts (branch `sparse`), one and two threads,
# everything else paused. The compiler prices bootstraps from these records:
# NTT-form diagonals up to N/8 slots and `--low-memory` (coefficients)
# above, as `residue infer` holds them by default
# (`runtime::server::default_storage`); the NTT-form 16384- and 32768-slot
# records are issue 11's sparse-vs-full comparison. Start with
# `setsid nohup` and return at once: the pause stops every other process.
set -uo pipefail
cd "$(dirname "$0")/../.."
B=${B:-target-rt/release/residue}
D=docs/data
L=runs/s14
mkdir -p $L
trap 'scripts/measure/quiet.sh CONT' EXIT
scripts/measure/quiet.sh STOP; sleep 1; scripts/measure/quiet.sh STOP
b() { # set-suffix params slots threads [--low-memory]
    local f=$D/boot16$1-s14-$3-t$4${5:+-lowmem}.json
    echo "== $(date -u +%T) $2 $3 t$4 ${5:-}"
    $B bench ckks --params $2 --ops bootstrap --slots $3 --threads $4 --reps 3 ${5:-} \
        --json-out $f > $L/boot$1-$3-t$4${5:-}.out 2>&1
    grep -o '"median_ms": *[0-9.]*\|"precision_bits_m[a-z]*": *[0-9.]*\|"levels_after": *[0-9]*' $f | paste -s -d' '
}
for t in 1 2; do
    for s in 4096 8192 16384 32768; do b "" n16-boot $s $t; done
    for s in 16384 32768; do b "" n16-boot $s $t --low-memory; done
    for set in l11 l13; do
        b -$set n16-boot-$set 8192 $t
        b -$set n16-boot-$set 32768 $t --low-memory
    done
done
echo "== $(date -u +%T) done"
