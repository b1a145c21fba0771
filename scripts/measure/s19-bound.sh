#!/usr/bin/env bash
# Session 19 (training and builds paused), after sparse packing at n16-boot
# moved to message ratio 8 from 1024 slots up (`BootstrapConfig::small_slots`):
# precision at the documented input bound for every spectrum
# (`bootprec`: random, constants, spike; worst slot and mean), then the
# sparse bootstraps at the new defaults on 1 and 2 threads.
# Start with `setsid nohup`.
set -uo pipefail
cd "$(dirname "$0")/../.."
. scripts/measure/quiet-window.sh
P=${P:-target-rt/release/examples/bootprec}
L=runs/s19
mkdir -p $L
echo "== $(date -u +%T) bootprec n16-boot ${PREC_SLOTS:-16384 8192 1024}"
/usr/bin/time -v $P n16-boot ${PREC_SLOTS:-16384 8192 1024} > $L/bootprec.out 2> $L/bootprec.err
cat $L/bootprec.out; grep -E "Maximum resident|Elapsed" $L/bootprec.err
for s in ${SLOTS:-16384 8192 4096}; do
    for t in 1 2; do
        f=$D/boot16-s19-$s-t$t.json
        echo "== $(date -u +%T) bootstrap $s slots t$t"
        $B bench ckks --params n16-boot --threads $t --reps 3 --ops bootstrap --slots $s \
            --json-out $f > $L/boot-$s-t$t.out 2>&1
        show_boot $f
    done
done
echo "== $(date -u +%T) done"
