#!/usr/bin/env bash
# Session 11: the leveled operations at the levels networks run at, so that
# the compiler prices a rotation at level 5 from a measurement there, not by
# scaling the top-level one by limb count (key switching at a low level also
# has fewer digits: the estimate was 1.64x the measured linear-layer time of
# Dirac + shared-source 20). One and two threads, everything else paused.
# Writes docs/data/ops-n16-boot-levels-s11-t{1,2}.json (embedded by
# crates/runtime/src/paramset.rs).
set -uo pipefail
cd "$(dirname "$0")/../.."
B=${B:-target-rt/release/residue}
trap 'scripts/measure/quiet.sh CONT' EXIT
scripts/measure/quiet.sh STOP
for t in 1 2; do
    echo "== $(date -u +%T) ops n16-boot at levels, $t thread(s)"
    /usr/bin/time -f %e_s_wall_%M_maxKB $B bench ckks --params n16-boot --threads $t --reps 7 \
        --levels 1,3,5,7,9,11,13,24 \
        --ops encode,add,mul_plain,mul_plain_acc,mul_relin,rescale,rotate,rotate_hoisted \
        --json-out docs/data/ops-n16-boot-levels-s11-t$t.json | tail -66
done
echo "== $(date -u +%T) done"
