#!/usr/bin/env bash
# Session 18, a second window (training and builds paused): the full-slot
# n16-boot bootstrap again with EvalMod's two halves side by side (IFMA, 1
# and 2 threads, 5 repetitions); n15-q760 multiply+relinearize on the
# emulated AVX2 host (target-avx2emu/residue, RESIDUE_NO_AVX512=1) and on
# IFMA, alternated with SEAL three times (the host's speed moves by 20%
# within an hour); the CIFAR-shaped ResNet-20 compiled for one thread with
# this build's cost records, run on one thread. Start with `setsid nohup`.
set -uo pipefail
cd "$(dirname "$0")/../.."
B=${B:-target-rt/release/residue}
E=${E:-target-avx2emu/residue}
SEAL=${SEAL:-/tmp/seal-bench-target/release/seal-bench}
D=docs/data
L=runs/s18
C=runs/cifar
W=$L/cifar1
mkdir -p $L $W
B=$B scripts/measure/cifar-setup.sh $C $W --threads 1 || exit 1
pause() { for p in $(pgrep -f 'residue-train|cargo|rustc'); do kill -$1 $p 2>/dev/null; done; }
pause STOP
trap 'pause CONT' EXIT
for t in 1 2; do
    f=$D/boot16-s18b-32768-t$t.json
    echo "== $(date -u +%T) bootstrap 32768 t$t"
    $B bench ckks --params n16-boot --threads $t --reps 5 --ops bootstrap --json-out $f > $L/b-boot-t$t.out 2>&1
    python3 -c "import json,sys;d=json.load(open(sys.argv[1]))[0];print(round(d['median_ms']/1e3,2),'s',{k:round(v/1e3,2) for k,v in d.get('stages_ms',{}).items() if not k.endswith('cpu')},round(d['precision_bits_mean'],2),round(d['precision_bits_min'],2),d.get('levels_after'),d.get('key_bytes'))" $f
done
for r in 1 2 3; do
    echo "== $(date -u +%T) round $r: seal, avx2, ifma"
    $SEAL 21 > $D/seal-s18-r$r.json 2> $L/seal-r$r.err; grep -o '"mul_relin":[0-9.]*' $D/seal-s18-r$r.json
    RESIDUE_NO_AVX512=1 $E bench ckks --params n15-q760 --ops mul_relin,rotate --threads 1 --reps 21 \
        --json-out $D/ops-n15-q760-avx2emu-s18-r$r-t1.json > $L/avx2-r$r.out 2>&1
    grep -o '"op": *"[a-z_]*"\|"median_ms": *[0-9.]*' $D/ops-n15-q760-avx2emu-s18-r$r-t1.json | paste - - | sed 's/^/avx2 /'
    $B bench ckks --params n15-q760 --ops mul_relin,rotate --threads 1 --reps 21 \
        --json-out $D/ops-n15-q760-s18-r$r-t1.json > $L/ifma-r$r.out 2>&1
    grep -o '"op": *"[a-z_]*"\|"median_ms": *[0-9.]*' $D/ops-n15-q760-s18-r$r-t1.json | paste - - | sed 's/^/ifma /'
done
echo "== $(date -u +%T) infer cifar resnet20 t1 (plan for one thread)"
/usr/bin/time -v $B infer --plan $W/plan.json --model $C/resnet20-cifar.onnx --eval-keys $W/keys/eval --input $W/in.ct \
    --out $W/out.ct --threads 1 --json-out $D/infer-n16-resnet20-cifar-random-t1-plan1-s18.json > $W/infer.out 2>&1
grep -E "Maximum resident|Elapsed" $W/infer.out
echo "== $(date -u +%T) done"
