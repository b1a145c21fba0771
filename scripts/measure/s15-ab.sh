#!/usr/bin/env bash
# A/B: the same keys and ciphertext, `residue infer` alternating the build
# before the strided NTT (OLD) and after (NEW), twice each, training paused.
cd "$(dirname "$0")/../.."
NEW=target-rt/release/residue
OLD=/tmp/residue-old
D=runs/s15/ab
mkdir -p $D
for p in $(pgrep -f residue-train); do kill -STOP $p; done
trap 'for p in $(pgrep -f residue-train); do kill -CONT $p; done' EXIT
$NEW compile models/dirac-shared20.onnx --params n16-boot --out $D/plan.json > $D/compile.out 2>&1
$NEW keygen --plan $D/plan.json --model models/dirac-shared20.onnx --out $D/keys > $D/keygen.out 2>&1
$NEW encrypt --keys $D/keys --plan $D/plan.json --out $D/x.ct --input data/samples/fashion-mnist-0.png > $D/enc.out 2>&1
for i in 1 2; do
  for b in OLD NEW; do
    bin=${!b}
    echo "== $(date -u +%T) $b $i"
    $bin infer --plan $D/plan.json --model models/dirac-shared20.onnx --eval-keys $D/keys/eval --input $D/x.ct --out $D/y-$b.ct --threads 2 --json > $D/infer-$b-$i.json 2> $D/infer-$b-$i.err
    python3 -c "
import json; r=json.load(open('$D/infer-$b-$i.json')); print(round(r['seconds'],1), {k:round(v,1) for k,v in r['seconds_by_kind'].items()})"
  done
done
cmp $D/y-OLD.ct $D/y-NEW.ct && echo "results identical"
echo "== $(date -u +%T) done"
