#!/usr/bin/env bash
# Session 10: issue 15's quick check, `residue reproduce --images 2` at n16-boot, timed, everything else paused.
set -uo pipefail
cd /work/main
trap 'scripts/measure/quiet.sh CONT' EXIT
scripts/measure/quiet.sh STOP
echo "== $(date -u +%T) reproduce"
/usr/bin/time -f "%e_s_wall_%U_user_%S_sys_%M_maxKB" runs/he/residue-s10b reproduce --images 2 --out runs/reproduce-s10 > runs/s10/reproduce.out 2> runs/s10/reproduce.err
echo "rc=$?"; tail -2 runs/s10/reproduce.err
echo "== $(date -u +%T) done"
