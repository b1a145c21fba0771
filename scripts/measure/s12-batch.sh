#!/usr/bin/env bash
# Session 12, issue 14: the amortized figures the benchmark table lacked:
# ResNet-20 and Dirac-20 (Fashion-MNIST, committed weights) at batch 4 on
# two threads, and Dirac + shared-source 20 at batch 4 on one thread, with
# this session's default (coefficient-held diagonals). Everything else
# paused while each runs (quiet.sh). Start with `setsid nohup`.
# JOBS="resnet20:1 dirac20:1" for the one-thread rows (run second).
set -uo pipefail
cd "$(dirname "$0")/../.."
B=${B:-target-rt/release/residue}
D=${D:-runs/s12}
mkdir -p "$D"
trap 'scripts/measure/quiet.sh CONT' EXIT
run() { # model threads
    local m=$1 t=$2 log="$D/eval-$1-n16-boot-t$2-b4.jsonl"
    rm -f "$log"
    echo "== $(date -u +%T) $m t$t batch 4"
    scripts/measure/quiet.sh STOP
    /usr/bin/time -f "%e s wall, %U user, %M maxKB" "$B" eval --model "models/$m.onnx" \
        --data fashion-mnist --he --images 4 --batch 4 --params n16-boot --threads "$t" \
        --log "$log" --json-out "$D/eval-$m-n16-boot-t$t-b4.json" > "$D/eval-$m-t$t-b4.out" 2>&1
    scripts/measure/quiet.sh CONT
    tail -2 "$D/eval-$m-t$t-b4.out"
}
for job in ${JOBS:-resnet20:2 dirac20:2 dirac-shared20:1}; do
    run "${job%%:*}" "${job##*:}"
done
echo "== $(date -u +%T) done"
