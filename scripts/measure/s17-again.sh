#!/usr/bin/env bash
# Session 17, issue 14: Dirac + shared-source 20 one image at a time again,
# 3 images, this build's default plan, two threads, training paused (a
# later window than s17-fused2.sh). Start with `setsid nohup`.
set -uo pipefail
cd "$(dirname "$0")/../.."
B=${B:-target-rt/release/residue}
f=docs/data/he-eval-dirac-shared20-n16-boot-t2-b1-again-s17
for p in $(pgrep -f residue-train); do kill -STOP $p; done
trap 'for p in $(pgrep -f residue-train); do kill -CONT $p; done' EXIT
rm -f $f.jsonl
echo "== $(date -u +%T) eval dirac-shared20 images 3"
$B eval --model models/dirac-shared20.onnx --data fashion-mnist --he --images 3 --params n16-boot \
    --threads 2 --log $f.jsonl --json-out $f.json > runs/s17/again.out 2>&1
grep -E "^image|^models/" runs/s17/again.out
echo "== $(date -u +%T) done"
