#!/usr/bin/env bash
# Issue 10: installs a finished issue-10 run as a bundled model and
# re-measures everything that quotes the bundled models.
#
#   scripts/install-variant.sh RUN NAME    # e.g. kdpan40t-ds14w625 dirac-shared14-w0625
#
# 1. refuses a run whose checkpoint has not finished its epochs;
# 2. copies runs/issue10/RUN/model.onnx and model.train.json to
#    models/NAME.onnx and models/NAME.train.json;
# 3. scripts/eval-zoo.sh over the three bundled models and every other
#    models/*.onnx at the top level (models/results.json, the CI test
#    committed_models re-checks it), docs/data/analyze-NAME.json;
# 4. residue tradeoff over the eight default models and every other
#    top-level models/*.onnx (NAME included), into docs/data/tradeoff-NAME/;
# 5. two encrypted test images at n16-boot (128-bit), into
#    docs/data/he-eval-NAME-n16-boot.json.
# About 15 minutes on 2 cores after the release build; needs ~17 GB for 5.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/common.sh
[ $# -eq 2 ] || { echo "usage: scripts/install-variant.sh RUN NAME" >&2; exit 2; }
run=$1 name=$2
dir=runs/issue10/$run
python3 - "$dir/model.ckpt/ckpt/state.json" <<'PY'
import json, sys
s = json.load(open(sys.argv[1]))
if not s["finished"]:
    sys.exit(f"{sys.argv[1]}: the run is at epoch {s['epoch']} of {s['config']['epochs']}, not finished")
PY
cp "$dir/model.onnx" "models/$name.onnx"
cp "$dir/model.train.json" "models/$name.train.json"
bin=$(residue_bin --release)
others=$(cd models && ls *.onnx | sed 's/\.onnx$//' | { grep -vxE 'resnet20|dirac20|dirac-shared20' || true; } | tr '\n' ' ')
MODELS="resnet20 dirac20 dirac-shared20 $others" scripts/eval-zoo.sh
defaults="models/resnet20.onnx,models/dirac20.onnx,models/dirac-shared20.onnx,models/ext16/resnet20.onnx,models/ext16/dirac-shared20.onnx,models/e8/resnet20.onnx,models/e8/dirac20.onnx,models/e8/dirac-shared20.onnx"
extra=$(for m in $others; do printf ',models/%s.onnx' "$m"; done)
"$bin" tradeoff --threads 2 --models "$defaults$extra" --out "docs/data/tradeoff-$name"
"$bin" eval --model "models/$name.onnx" --data fashion-mnist --he --images 2 --params n16-boot \
    --json-out "docs/data/he-eval-$name-n16-boot.json"
