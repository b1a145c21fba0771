#!/usr/bin/env bash
# Session 19 (training and builds paused): the full-slot n16-boot bootstrap
# on 2 and 1 threads (5 repetitions; this window's baseline), then sparse
# bootstraps (16384, 8192, 4096 slots, one thread, 3 repetitions) at message
# ratios 8 and 9 (`--log-message-ratio`; the set's default for sparse
# packing is 10, measured in session 18: boot16-s18-<slots>-t1.json).
# Start with `setsid nohup`.
set -uo pipefail
cd "$(dirname "$0")/../.."
. scripts/measure/quiet-window.sh
L=runs/s19
mkdir -p $L
for t in ${THREADS:-2 1}; do
    f=$D/boot16-s19-32768-t$t.json
    echo "== $(date -u +%T) bootstrap 32768 t$t"
    $B bench ckks --params n16-boot --threads $t --reps 5 --ops bootstrap --json-out $f > $L/boot-t$t.out 2>&1
    show_boot $f
done
for s in ${SLOTS:-16384 8192 4096}; do
    for r in ${RATIOS:-8 9}; do
        f=$D/boot16-s19-$s-r$r-t1.json
        echo "== $(date -u +%T) bootstrap $s slots ratio $r t1"
        $B bench ckks --params n16-boot --threads 1 --reps 3 --ops bootstrap --slots $s \
            --log-message-ratio $r --json-out $f > $L/boot-$s-r$r.out 2>&1
        show_boot $f
    done
done
echo "== $(date -u +%T) done"
