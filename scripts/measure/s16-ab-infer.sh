#!/usr/bin/env bash
# Session 16, issues 11/14: A/B of the wide-modulus IFMA kernels (OLD: the
# build before them, runs/s16/residue.old; NEW: this build) on the same
# keys and ciphertext as s15-ab.sh (runs/s15/ab), alternating, twice each,
# training paused; then both results decrypted and compared with the
# plaintext model. Start with `setsid nohup` and return.
cd "$(dirname "$0")/../.."
NEW=${NEW:-target-rt/release/residue}
OLD=${OLD:-runs/s16/residue.old}
D=runs/s15/ab
for p in $(pgrep -f residue-train); do kill -STOP $p; done
trap 'for p in $(pgrep -f residue-train); do kill -CONT $p; done' EXIT
for i in 1 2; do
  for b in OLD NEW; do
    bin=${!b}
    echo "== $(date -u +%T) $b $i"
    $bin infer --plan $D/plan.json --model models/dirac-shared20.onnx --eval-keys $D/keys/eval --input $D/x.ct --out $D/y-s16-$b.ct --threads 2 --json > $D/infer-s16-$b-$i.json 2> $D/infer-s16-$b-$i.err
    python3 -c "
import json; r=json.load(open('$D/infer-s16-$b-$i.json')); print(round(r['seconds'],1), {k:round(v,1) for k,v in r['seconds_by_kind'].items()})"
  done
done
for b in OLD NEW; do
  $NEW decrypt --keys $D/keys --input $D/y-s16-$b.ct --json > $D/logits-s16-$b.json
done
$NEW predict --model models/dirac-shared20.onnx --input data/samples/fashion-mnist-0.png --json > $D/logits-plain.json
python3 -c "
import json
p=json.load(open('$D/logits-plain.json'))['logits']
for b in ('OLD','NEW'):
    l=json.load(open('$D/logits-s16-'+b+'.json'))
    print(b, 'class', l['class'], 'max logit error', max(abs(x-y) for x,y in zip(l['logits'],p)))"
echo "== $(date -u +%T) done"
