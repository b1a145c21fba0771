#!/usr/bin/env bash
# Session 23 (training and builds paused): the three bundled 40-epoch models
# (ResNet-20, Dirac-20 without skips, Dirac + shared-source 20) in one quiet
# window, 20 images each at n16-boot, optimal placement, fresh-level plan, two
# threads. --rounds 4: every model runs 5 images, then the next 5, ..., so the
# machine's other load falls on all three alike (a key generation per round).
# Resumable: a rerun measures only the images missing from runs/reproduce-s23.
# MODELS, ROUNDS and THREADS override the defaults.
set -uo pipefail
cd "$(dirname "$0")/../.."
. scripts/measure/quiet-window.sh
O=runs/reproduce-s23
mkdir -p $O
echo "== $(date -u +%T) reproduce ($B, checkout $(git rev-parse --short HEAD))"
$B reproduce --images 20 --rounds "${ROUNDS:-4}" --params n16-boot --placement optimal \
    --threads "${THREADS:-2}" --out $O \
    --models "${MODELS:-models/resnet20.onnx,models/dirac20.onnx,models/dirac-shared20.onnx}"
echo "== $(date -u +%T) done"
