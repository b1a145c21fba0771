#!/usr/bin/env bash
# kernel profile: inference's bootstraps vs the bootstrap bench (training paused)
cd "$(dirname "$0")/../.."
mkdir -p runs/s15
B=target-rt/release/residue
for p in $(pgrep -f residue-train); do kill -STOP $p; done
trap 'for p in $(pgrep -f residue-train); do kill -CONT $p; done' EXIT
echo "== $(date -u +%T) bench 8192 t2"
$B bench ckks --params n16-boot --threads 2 --reps 3 --ops bootstrap --slots 8192 --profile --json-out docs/data/boot16-s15-8192-t2-prof.json > runs/s15/bench2.out 2>&1
echo "== $(date -u +%T) eval t2"
rm -f docs/data/he-eval-dirac-shared20-n16-boot-t2-prof-s15.jsonl
$B eval --model models/dirac-shared20.onnx --data fashion-mnist --he --images 1 --batch 1 --params n16-boot --threads 2 --profile --log docs/data/he-eval-dirac-shared20-n16-boot-t2-prof-s15.jsonl > runs/s15/eval2.out 2>&1
echo "== $(date -u +%T) bench 8192 t2 again"
$B bench ckks --params n16-boot --threads 2 --reps 3 --ops bootstrap --slots 8192 --json-out docs/data/boot16-s15-8192-t2-b.json > runs/s15/bench3.out 2>&1
echo "== $(date -u +%T) done"
