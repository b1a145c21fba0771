#!/usr/bin/env bash
# Session 13, issues 11 and 14: the engine after session 12's EvalMod
# changes, measured with everything else paused (start with `setsid nohup`):
#  1. bootstrap records for the compiler: n16-boot at 4096, 8192, 16384 and
#     32768 slots, n16-boot-l11 and n16-boot-l13 at 8192 and 32768 slots,
#     1 and 2 threads, 5 repetitions each (the median is a steady-state
#     bootstrap: the first of a process pays one-time SlotsToCoeffs
#     encodings), NTT-form diagonals (the engine's default);
#  2. the leveled operations at n15-q760 (IFMA) beside SEAL in the same
#     quiet window (issue 11: no regression);
#  3. the emulated AVX2 host (scripts/build-avx2-emulation.sh): n15-q760
#     mul_relin and the full-slot bootstrap, 1 and 2 threads.
# Resumable: a record that exists is not measured again.
set -uo pipefail
cd "$(dirname "$0")/../.."
B=${B:-runs/he/residue-s13a}
E=${E:-target-avx2emu/residue}
SEAL=${SEAL:-/tmp/seal-bench-target/release/seal-bench}
D=docs/data
L=runs/s13
mkdir -p $L
trap 'scripts/measure/quiet.sh CONT' EXIT
run() { # out-file command...
    local out=$1; shift
    if [ -s "$out" ]; then echo "== have $out"; return; fi
    echo "== $(date -u +%T) $out"
    scripts/measure/quiet.sh STOP
    "$@" --json-out "$out.tmp" > "$L/$(basename "$out" .json).out" 2>&1 && mv "$out.tmp" "$out"
    scripts/measure/quiet.sh CONT
    grep -o '"median_ms": *[0-9.]*\|"precision_bits_min": *[0-9.]*\|"slots": *[0-9]*' "$out" 2>/dev/null | paste - - - | head -3
}
for t in 1 2; do
    for s in 32768 16384 8192 4096; do
        run $D/boot16-s13-$s-t$t.json $B bench ckks --params n16-boot --ops bootstrap --slots $s --threads $t --reps 5
    done
    for p in l11 l13; do
        for s in 32768 8192; do
            run $D/boot16-$p-s13-$s-t$t.json $B bench ckks --params n16-boot-$p --ops bootstrap --slots $s --threads $t --reps 5
        done
    done
done
if [ ! -s $D/seal-s13.json ]; then
    echo "== $(date -u +%T) seal"
    scripts/measure/quiet.sh STOP
    $SEAL 21 > $D/seal-s13.json 2> $L/seal.err
    scripts/measure/quiet.sh CONT
    cat $D/seal-s13.json
fi
run $D/ops-n15-q760-s13-t1.json $B bench ckks --params n15-q760 --threads 1 --reps 21
if [ -x "$E" ]; then
    run $D/ops-n15-q760-avx2emu-s13-t1.json env RESIDUE_NO_AVX512=1 $E bench ckks --params n15-q760 \
        --ops mul_relin,rotate,rotate_hoisted --threads 1 --reps 21
    for t in 1 2; do
        run $D/boot16-avx2emu-s13-t$t.json env RESIDUE_NO_AVX512=1 $E bench ckks --params n16-boot \
            --ops bootstrap --threads $t --reps 3 --profile
    done
fi
echo "== $(date -u +%T) done"
