#!/usr/bin/env bash
# Session 11: issue 15's measurement on 20 test images per model at
# n16-boot, optimal placement, one thread (beside the training run, which
# takes the other core), resumable: rerun to continue. Also issue 14's
# correctness check on the runtime issue's 20 images.
set -uo pipefail
cd "$(dirname "$0")/../.."
B=${B:-target-rt/release/residue}
OUT=${OUT:-runs/reproduce-s11}
exec $B reproduce --images 20 --params n16-boot --placement optimal --threads 1 --out "$OUT" \
    --models models/resnet20.onnx,models/dirac-shared20.onnx,models/dirac20.onnx
