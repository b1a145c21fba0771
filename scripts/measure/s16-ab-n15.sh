#!/usr/bin/env bash
# Session 16, issue 11: no regression in the leveled operations at
# n15-q760 (its q0 is 60 bits, the rest at most 51: only q0 takes the new
# wide kernels), OLD and NEW alternated, one thread, training paused.
set -uo pipefail
cd "$(dirname "$0")/../.."
OLD=${OLD:-runs/s16/residue.old} NEW=${NEW:-target-rt/release/residue}
L=docs/data/s16-ab
mkdir -p $L
for p in $(pgrep -f residue-train); do kill -STOP $p; done
trap 'for p in $(pgrep -f residue-train); do kill -CONT $p; done' EXIT
for r in 1 2; do
    for v in old new; do
        B=$OLD; [ $v = new ] && B=$NEW
        $B bench ckks --params n15-q760 --threads 1 --reps 21 --json-out $L/ops-n15-q760-t1-$v-r$r.json > /dev/null 2>&1
        python3 -c "import json,sys;print(sys.argv[2], {d['op']:round(d['median_ms'],2) for d in json.load(open(sys.argv[1]))})" $L/ops-n15-q760-t1-$v-r$r.json "$v r$r"
    done
done
