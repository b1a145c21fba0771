#!/usr/bin/env bash
# Encrypted accuracy at 128-bit security (n16-boot): the committed models on
# the first IMAGES Fashion-MNIST test images, encrypted inference beside the
# plaintext model. Resumable: each image's result is appended to
# runs/he/eval-<model>-<params>-t<threads>.jsonl and skipped when the script runs again.
# Needs about 15 GiB of free memory (stop training runs first).
#   IMAGES=20 THREADS=2 scripts/he-eval.sh
#   MODELS="resnet20" IMAGES=5 scripts/he-eval.sh
#   BIN=path/to/residue ...   # this binary instead of building one
#   TAG=s7 ...    # a separate log (runs/he/eval-<model>-<params>-t<threads>-s7.jsonl),
#                 # e.g. to measure a new engine without mixing it into an older log
set -euo pipefail
cd "$(dirname "$0")/.."
IMAGES=${IMAGES:-20}
THREADS=${THREADS:-2}
PARAMS=${PARAMS:-n16-boot}
MODELS=${MODELS:-"dirac-shared20 resnet20"}
DATA=${DATA:-fashion-mnist}
. scripts/common.sh
mkdir -p runs/he
BIN=${BIN:-$(residue_bin --release)}
for m in $MODELS; do
    base="runs/he/eval-$m-$PARAMS-t$THREADS${TAG:+-$TAG}"
    log="$base.jsonl"
    echo "== $(date -u +%FT%TZ) $m at $PARAMS, $IMAGES images, $THREADS threads (log $log)"
    "$BIN" eval --model "models/$m.onnx" --data $DATA --he --images "$IMAGES" \
        --params "$PARAMS" --threads "$THREADS" --log "$log"
    "$BIN" eval --model "models/$m.onnx" --data $DATA --he --images "$IMAGES" \
        --params "$PARAMS" --log "$log" --json > "$base.json"
done
