#!/usr/bin/env bash
# Session 27: the trainer's throughput on 1 and 2 threads (burn-flex's rayon
# feature, RAYON_NUM_THREADS), on the kdr14w05 recipe (ResNet-14 w0.5,
# distilled from the 40-epoch ResNet-20, so the teacher's forward pass is
# included), resumed from a copy of its checkpoint, STEPS steps each. Run it
# with the cores otherwise idle (it pauses every running residue-train).
#   scripts/measure/s27-threads.sh     # STEPS=80 by default, as measured
set -euo pipefail
cd "$(dirname "$0")/../.."
BIN=${BIN:-target/debug/residue-train}
STEPS=${STEPS:-80}
SRC=${SRC:-checkpoints/issue10/kdr14w05/model.ckpt}
OUT=${OUT:-docs/data/s27-trainer-threads.txt}
. scripts/measure/quiet-window.sh
scratch=$(mktemp -d)
trap 'pause CONT; rm -rf "$scratch"' EXIT
: > "$OUT"
for t in 1 2; do
    rm -rf "$scratch/ckpt"; cp -r "$SRC" "$scratch/ckpt"; rm -f "$scratch"/ckpt/*.tmp
    start=$(date +%s.%N)
    RAYON_NUM_THREADS=$t /usr/bin/time -f "%M KiB peak, %e s wall, %U s user" "$BIN" \
        --arch resnet14 --epochs 40 --distill-teacher checkpoints/ext40/resnet20/model.ckpt \
        --kd-alpha 0.7 --kd-temperature 4 --lr 0.01 --warmup-steps 1000 --width 0.5 \
        --batch-size 128 --range-penalty 0.1 --act-near-identity 0.1 --data fashion-mnist \
        --out "$scratch/model.onnx" --checkpoint-dir "$scratch/ckpt" --resume \
        --max-steps "$STEPS" > "$scratch/log.$t" 2>&1
    end=$(date +%s.%N)
    rate=$(grep -o '[0-9.]* img/s' "$scratch/log.$t" | tail -n +2 | awk '{s+=$1; n++} END {if (n) printf "%.1f", s/n}')
    echo "threads $t: $STEPS steps, mean of the logged img/s after the first report: $rate img/s; $(tail -1 "$scratch/log.$t"); wall incl. load $(echo "$end - $start" | bc) s" | tee -a "$OUT"
done
