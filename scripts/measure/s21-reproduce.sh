#!/usr/bin/env bash
# Session 21 (training and builds paused): the 20-image reproduction on the
# fresh-level plan (session 20: Dirac + shared-source 20 at n16-boot needs 4
# ciphertext bootstraps, not 5), ResNet-20 and Dirac + shared-source 20 in one
# quiet window, one thread, so the two are compared on the same machine state.
# Resumable: a rerun measures only the images missing from runs/reproduce-s21.
# MODELS overrides the model list.
set -uo pipefail
cd "$(dirname "$0")/../.."
. scripts/measure/quiet-window.sh
O=runs/reproduce-s21
mkdir -p $O
echo "== $(date -u +%T) reproduce ($B, checkout $(git rev-parse --short HEAD))"
$B reproduce --images 20 --params n16-boot --placement optimal --threads 1 --out $O \
    --models ${MODELS:-models/resnet20.onnx,models/dirac-shared20.onnx}
echo "== $(date -u +%T) done"
