#!/usr/bin/env bash
# Session 10: RSS timeline of the CIFAR-shaped ResNet-20 `residue infer` (memory breakdown for issue 14).
set -uo pipefail
cd /work/main
B=${B:-runs/he/residue-s9}
W=/work/cifar-s10
D=runs/s10
TAG=${TAG:-s9bin}
M=runs/cifar/resnet20-cifar.onnx
mkdir -p $W
if [ ! -f $W/in.ct ]; then
  $B compile $M --params n16-boot --out $W/plan.json --json > $D/cifar-compile.json 2>/dev/null
  $B keygen --plan $W/plan.json --model $M --out $W/keys --json > $D/cifar-keygen.json 2>/dev/null
  $B encrypt --keys $W/keys --plan $W/plan.json --input runs/cifar/input.npy --out $W/in.ct >/dev/null 2>&1
fi
echo "== $(date -u +%T) infer"
$B infer --plan $W/plan.json --model $M --eval-keys $W/keys/eval --input $W/in.ct --out $W/out.ct --threads 2 --json > $D/cifar-infer-$TAG.json 2> $D/cifar-infer-$TAG.err &
P=$!
t0=$(date +%s.%N)
: > $D/cifar-rss-$TAG.tsv
while kill -0 $P 2>/dev/null; do
  r=$(awk '/VmRSS|VmHWM/{printf "%s ", $2}' /proc/$P/status 2>/dev/null)
  echo "$(echo "$(date +%s.%N) - $t0" | bc) $r" >> $D/cifar-rss-$TAG.tsv
  sleep 0.5
done
wait $P
echo "== $(date -u +%T) done rc=$?"
