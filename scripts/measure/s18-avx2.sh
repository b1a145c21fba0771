#!/usr/bin/env bash
# Session 18, issue 11's AVX2 path on the EPYC (Zen 4): the binary built by
# scripts/build-avx2-emulation.sh (tfhe-ntt without its avx512 feature) with
# RESIDUE_NO_AVX512=1, so that nothing in it runs AVX-512. n15-q760
# multiply+relinearize beside SEAL in the same window, and the full-slot
# n16-boot bootstrap on one and two threads with its stage profile.
# Training paused; nothing else may run. Start with `setsid nohup`.
set -uo pipefail
cd "$(dirname "$0")/../.."
E=${E:-target-avx2emu/residue}
SEAL=${SEAL:-/tmp/seal-bench-target/release/seal-bench}
D=docs/data
L=runs/s18
mkdir -p $L
# Training and any build (cargo, rustc) paused for the window.
pause() { for p in $(pgrep -f 'residue-train|cargo|rustc'); do kill -$1 $p 2>/dev/null; done; }
pause STOP
trap 'pause CONT' EXIT
echo "== $(date -u +%T) seal"
$SEAL 21 > $D/seal-s18-avx2.json 2> $L/seal-avx2.err; cat $D/seal-s18-avx2.json
echo "== $(date -u +%T) avx2 ops"
RESIDUE_NO_AVX512=1 $E bench ckks --params n15-q760 --ops mul_relin,rotate,rotate_hoisted \
    --threads 1 --reps 21 --json-out $D/ops-n15-q760-avx2emu-s18-t1.json > $L/avx2-ops.out 2>&1
grep -o '"op": *"[a-z_]*"\|"median_ms": *[0-9.]*\|"kernels": *"[a-z0-9-]*"' $D/ops-n15-q760-avx2emu-s18-t1.json | paste - - -
for t in 1 2; do
    echo "== $(date -u +%T) avx2 boot t$t"
    RESIDUE_NO_AVX512=1 $E bench ckks --params n16-boot --ops bootstrap --threads $t --reps 3 \
        --profile --json-out $D/boot16-avx2emu-s18-t$t.json > $L/avx2-boot-t$t.out 2>&1
    python3 -c "import json,sys;d=json.load(open(sys.argv[1]))[0];print(round(d['median_ms']/1e3,2),'s',d.get('kernels'),{k:round(v/1e3,2) for k,v in d.get('stages_ms',{}).items() if not k.endswith('cpu')},round(d['precision_bits_mean'],2),round(d['precision_bits_min'],2),d.get('levels_after'),d.get('key_bytes'))" $D/boot16-avx2emu-s18-t$t.json
done
echo "== $(date -u +%T) done"
