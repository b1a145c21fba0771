#!/usr/bin/env bash
# Session 13: after s13-quiet.sh's IFMA part, everything else paused (start
# with `setsid nohup`):
#  1. the emulated AVX2 host with the floating-point NTT and kernels to 2^51
#     (target-avx2emu/residue from scripts/build-avx2-emulation.sh, HEAD):
#     n15-q760 mul_relin beside SEAL, the full-slot bootstrap at 1 and 2 threads;
#  2. the full-slot n16-boot bootstrap again, 9 repetitions, one thread;
#  3. issue 14 end to end at HEAD's engine (the session-12 figures predate the
#     EvalMod change): the three committed models, 2 images, 2 threads, and
#     Dirac + shared-source 20 at batch 4, default diagonal storage.
set -uo pipefail
cd "$(dirname "$0")/../.."
B=${B:-runs/he/residue-s13a}
E=${E:-target-avx2emu/residue}
SEAL=${SEAL:-/tmp/seal-bench-target/release/seal-bench}
D=docs/data
L=runs/s13
mkdir -p $L
trap 'scripts/measure/quiet.sh CONT' EXIT
q() { scripts/measure/quiet.sh STOP; "$@"; local rc=$?; scripts/measure/quiet.sh CONT; return $rc; }
echo "== $(date -u +%T) seal"
q sh -c "$SEAL 21 > $D/seal-s13b.json 2> $L/seal-b.err"; cat $D/seal-s13b.json
echo "== $(date -u +%T) avx2 ops"
q env RESIDUE_NO_AVX512=1 $E bench ckks --params n15-q760 --ops mul_relin,rotate,rotate_hoisted \
    --threads 1 --reps 21 --json-out $D/ops-n15-q760-avx2emu-s13-t1.json > $L/avx2-ops.out 2>&1
grep -o '"op": *"[a-z_]*"\|"median_ms": *[0-9.]*\|"kernels": *"[a-z0-9-]*"' $D/ops-n15-q760-avx2emu-s13-t1.json | paste - - -
for t in 1 2; do
    echo "== $(date -u +%T) avx2 boot t$t"
    q env RESIDUE_NO_AVX512=1 $E bench ckks --params n16-boot --ops bootstrap --threads $t --reps 3 \
        --profile --json-out $D/boot16-avx2emu-s13-t$t.json > $L/avx2-boot-t$t.out 2>&1
    grep -o '"median_ms": *[0-9.]*\|"kernels": *"[a-z0-9-]*"\|"precision_bits_m[a-z]*": *[0-9.]*' $D/boot16-avx2emu-s13-t$t.json | head -4
done
echo "== $(date -u +%T) boot t1 reps 9"
q $B bench ckks --params n16-boot --ops bootstrap --threads 1 --reps 9 \
    --json-out $D/boot16-s13-32768-reps9-t1.json > $L/boot-reps9.out 2>&1
grep -o '"median_ms": *[0-9.]*' $D/boot16-s13-32768-reps9-t1.json
T="/usr/bin/time -f %e_s_wall_%M_maxKB"
for m in dirac-shared20 dirac20 resnet20; do
    echo "== $(date -u +%T) eval $m t2"
    rm -f $D/he-eval-$m-n16-boot-t2-s13.jsonl
    q $T $B eval --model models/$m.onnx --data fashion-mnist --he --images 2 --params n16-boot --threads 2 \
        --log $D/he-eval-$m-n16-boot-t2-s13.jsonl --json-out $D/he-eval-$m-n16-boot-t2-s13.json \
        > $L/eval-$m-t2.out 2>&1; tail -2 $L/eval-$m-t2.out
done
echo "== $(date -u +%T) eval dirac-shared20 t2 batch 4"
rm -f $D/he-eval-dirac-shared20-n16-boot-t2-b4-s13.jsonl
q $T $B eval --model models/dirac-shared20.onnx --data fashion-mnist --he --images 4 --batch 4 --params n16-boot \
    --threads 2 --log $D/he-eval-dirac-shared20-n16-boot-t2-b4-s13.jsonl \
    --json-out $D/he-eval-dirac-shared20-n16-boot-t2-b4-s13.json > $L/eval-ds-b4.out 2>&1; tail -2 $L/eval-ds-b4.out
echo "== $(date -u +%T) done"
