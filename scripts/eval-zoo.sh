#!/usr/bin/env bash
# Reproduces the numbers of docs/results.md from the committed models:
# plaintext Fashion-MNIST test accuracy with the reference executor
# (`residue eval`), on all 10000 test images, on the first 2000 and on the
# first 500 (the bundled data/fashion-mnist-sample; the subsets the test
# `nn/tests/committed_models.rs` re-checks), and the
# encrypted cost the compiler predicts (`residue analyze`, n16-boot, two
# threads, the cost records the binary ships; calibrated with
# docs/data/bench-n16-boot.json until session 19).
#
#   scripts/eval-zoo.sh            # writes models/results.json and docs/data/analyze-*.json
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/common.sh
bin=$(residue_bin --release)
models=${MODELS:-"resnet20 dirac20 dirac-shared20"}
out=models/results.json
echo "[" > "$out.tmp"
for m in $models; do
    echo "== $m" >&2
    full=$("$bin" eval --model "models/$m.onnx" --data fashion-mnist --json)
    part=$("$bin" eval --model "models/$m.onnx" --data fashion-mnist --limit 2000 --json)
    sample=$("$bin" eval --model "models/$m.onnx" --data fashion-mnist data/fashion-mnist-sample --json)
    python3 - "$m" "$full" "$part" "$sample" >> "$out.tmp" <<'PY'
import json, sys
name, full, part, sample = sys.argv[1], *(json.loads(a) for a in sys.argv[2:5])
print(json.dumps({
    "model": name,
    "file": f"models/{name}.onnx",
    "accuracy": full["accuracy"],
    "correct": full["correct"],
    "total": full["total"],
    "first_2000_correct": part["correct"],
    "first_500_correct": sample["correct"],
}) + ",")
PY
    "$bin" analyze "models/$m.onnx" --params n16-boot \
        --threads 2 --json-out "docs/data/analyze-$m.json" > /dev/null
done
# drop the trailing comma of the last entry
sed -i '$ s/,$//' "$out.tmp"
echo "]" >> "$out.tmp"
mv "$out.tmp" "$out"
cat "$out"
