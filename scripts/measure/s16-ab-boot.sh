#!/usr/bin/env bash
# Session 16, issue 11: the wide-modulus IFMA kernels (basis conversion and
# inner product for 56-61-bit primes), bootstrap A/B in one window
# (training paused): OLD and NEW `residue` binaries alternated, 8192 and
# 32768 slots, one and two threads. Start with `setsid nohup` and return.
set -uo pipefail
cd "$(dirname "$0")/../.."
OLD=${OLD:?OLD=<residue before>} NEW=${NEW:-target-rt/release/residue}
L=runs/s16/ab-boot
mkdir -p $L
for p in $(pgrep -f residue-train); do kill -STOP $p; done
trap 'for p in $(pgrep -f residue-train); do kill -CONT $p; done' EXIT
for round in 1 2; do
    for s in 8192 32768; do
        for t in 1 2; do
            for v in old new; do
                B=$OLD; [ $v = new ] && B=$NEW
                echo "== $(date -u +%T) round $round $v slots $s t$t"
                $B bench ckks --params n16-boot --threads $t --reps 3 --ops bootstrap --slots $s \
                    --json-out $L/boot-$s-t$t-$v-r$round.json > $L/boot-$s-t$t-$v-r$round.out 2>&1
                python3 -c "import json,sys;d=json.load(open(sys.argv[1]))[0];print(round(d['median_ms']/1e3,2),'s',{k:round(v/1e3,2) for k,v in d['stages_ms'].items() if not k.endswith('cpu')},round(d['precision_bits_mean'],2),round(d['precision_bits_min'],2))" $L/boot-$s-t$t-$v-r$round.json
            done
        done
    done
done
echo "== $(date -u +%T) done"
