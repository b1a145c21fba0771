#!/usr/bin/env bash
# Session 18, issue 14: amortized latency of ResNet-20 and Dirac-20 at
# batch 8 (8 images, one inference each), two threads, training paused, as
# s18-e2e.sh ran Dirac + shared-source 20. Start with `setsid nohup`.
# Run again as `MODELS=resnet20 TAG=-t2plan` after `eval --he` priced its
# plan for the threads it runs on (7 -> 6 bootstraps at batch 8).
set -uo pipefail
cd "$(dirname "$0")/../.."
B=${B:-target-rt/release/residue}
D=docs/data
L=runs/s18
mkdir -p $L
# Training, builds and test binaries paused for the window.
pause() { for p in $(pgrep -f 'residue-train|cargo|rustc|target/debug/deps'); do kill -$1 $p 2>/dev/null; done; }
pause STOP
trap 'pause CONT' EXIT
for m in ${MODELS:-resnet20 dirac20}; do
    f=$D/he-eval-$m-n16-boot-t2-b8-s18${TAG:-}
    echo "== $(date -u +%T) eval $m images 8 batch 8 threads 2"
    rm -f $f.jsonl
    $B eval --model models/$m.onnx --data fashion-mnist --he --images 8 --batch 8 --params n16-boot \
        --threads 2 --log $f.jsonl --json-out $f.json > $L/e2e-$m-b8-t2.out 2>&1
    grep "^models/" $L/e2e-$m-b8-t2.out
done
echo "== $(date -u +%T) done"
