#!/usr/bin/env bash
# Session 19 (training and builds paused): the committed models end to end at
# n16-boot after the sparse message-ratio change (their 8192-slot plans now
# scale bootstrap inputs into 0.094 instead of 0.238): encrypted against the
# plaintext model, per image. MODELS, IMAGES, THREADS, TAG override.
set -uo pipefail
cd "$(dirname "$0")/../.."
. scripts/measure/quiet-window.sh
L=runs/s19
mkdir -p $L
for m in ${MODELS:-dirac-shared20}; do
    for t in ${THREADS:-2}; do
        f=$D/he-eval-$m-n16-boot-t$t-s19${TAG:-}
        echo "== $(date -u +%T) eval --he $m t$t"
        /usr/bin/time -v $B eval --model models/$m.onnx --data fashion-mnist --he --images ${IMAGES:-2} \
            --params n16-boot --threads $t --json-out $f.json --log $f.jsonl > $L/e2e-$m-t$t.out 2> $L/e2e-$m-t$t.err
        python3 -c "
import json,sys
d=json.load(open(sys.argv[1]))
print({k:d.get(k) for k in ['accuracy_plain','accuracy_he','agreement','max_logit_error','bootstraps_per_image','seconds_per_image','cpu_seconds_per_image']})" $f.json
        grep -E "Maximum resident|Elapsed" $L/e2e-$m-t$t.err
    done
done
echo "== $(date -u +%T) done"
