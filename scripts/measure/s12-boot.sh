#!/usr/bin/env bash
# Session 12, issue 11: the full-slot n16-boot bootstrap after the EvalMod
# changes (even cosine polynomial, fused relinearize + rescale), 1 and 2
# threads, everything else paused; the same command as session 10/11's
# records (NTT-form diagonals, the engine's default). Start with `setsid nohup`.
set -uo pipefail
cd "$(dirname "$0")/../.."
B=${B:-target-rt/release/residue}
trap 'scripts/measure/quiet.sh CONT' EXIT
for t in 1 2; do
    echo "== $(date -u +%T) bootstrap t$t"
    scripts/measure/quiet.sh STOP
    "$B" bench ckks --params n16-boot --ops bootstrap --threads $t --reps 2 --profile \
        --json-out docs/data/boot16-s12-t$t.json > runs/logs/boot16-s12-t$t.out 2>&1
    scripts/measure/quiet.sh CONT
    grep -i "bootstrap of" runs/logs/boot16-s12-t$t.out
done
echo "== $(date -u +%T) done"
