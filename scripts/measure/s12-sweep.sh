#!/usr/bin/env bash
# Session 12: issue 15's sweep over placements and sets: the three committed
# models at n16-boot, n16-boot-l11 and n16-boot-l13, greedy and optimal
# placement, 2 encrypted images each, one thread (beside a training run).
# The n16-boot optimal records reuse the first 2 images of the 20-image
# run's logs (copied in). Resumable: rerun to continue.
set -uo pipefail
cd "$(dirname "$0")/../.."
B=${B:-target-rt/release/residue}
OUT=${OUT:-runs/reproduce-s12-sweep}
mkdir -p "$OUT"
# The 20-image run's logs (docs/data/reproduce-s11) and this sweep's
# committed progress (docs/data/reproduce-s12-sweep) seed the directory.
for m in resnet20 dirac-shared20 dirac20; do
    mkdir -p "$OUT/$m"
    for f in docs/data/reproduce-s11/$m/* docs/data/reproduce-s12-sweep/$m/*; do
        [ -f "$f" ] && cp -n "$f" "$OUT/$m/"
    done
done
exec $B reproduce --images 2 --params n16-boot,n16-boot-l11,n16-boot-l13 --placement both \
    --threads 1 --out "$OUT" \
    --models models/resnet20.onnx,models/dirac-shared20.onnx,models/dirac20.onnx
