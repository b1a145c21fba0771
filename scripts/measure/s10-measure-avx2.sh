#!/usr/bin/env bash
# Session 10: issue 11 on an emulated AVX2 host (tfhe-ntt without its avx512
# feature + RESIDUE_NO_AVX512=1): full-slot n16-boot bootstrap at 1 and 2
# threads, and n15-q760 mul_relin beside SEAL in the same run; quiet.
set -uo pipefail
cd /work/main
trap 'scripts/measure/quiet.sh CONT' EXIT
scripts/measure/quiet.sh STOP
B=target-avx2emu/residue
D=runs/s10
T="/usr/bin/time -f %e_s_wall_%U_user_%S_sys_%R_minflt_%M_maxKB"
echo "== $(date -u +%T) seal"
/tmp/seal-bench-target/release/seal-bench 21 > $D/seal-s10.json 2>/dev/null; cat $D/seal-s10.json
echo "== $(date -u +%T) ops avx2"
RESIDUE_NO_AVX512=1 $B bench ckks --params n15-q760 --ops mul_relin,rotate,rotate_hoisted --threads 1 --reps 21 --json-out $D/ops-n15-avx2emu-s10.json > /dev/null 2>&1
grep -o '"op": *"[a-z_]*"\|"median_ms": *[0-9.]*\|"kernels": *"[a-z0-9-]*"' $D/ops-n15-avx2emu-s10.json | paste - - - 
for t in 1 2; do
  echo "== $(date -u +%T) boot avx2 t$t"
  RESIDUE_NO_AVX512=1 $T $B bench ckks --params n16-boot --ops bootstrap --threads $t --reps 2 --profile --json-out $D/boot16-avx2emu-t$t-s10.json 2>&1 | tail -1
  grep -o '"median_ms": *[0-9.]*\|"kernels": *"[a-z0-9-]*"\|"precision_bits_mean": *[0-9.]*' $D/boot16-avx2emu-t$t-s10.json | head -3
done
echo "== $(date -u +%T) done"
