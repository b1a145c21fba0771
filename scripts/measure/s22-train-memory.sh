#!/usr/bin/env bash
# Session 22 (issue 10): where the trainer's memory goes. Peak resident
# memory (`/usr/bin/time` %M) of 6 training steps of Dirac + shared-source 20
# (width 0.5, Fashion-MNIST) by batch size, with and without a teacher, and
# at batch 128 with each HE-friendly piece switched off in turn; then the
# same under glibc malloc settings that return freed memory, to separate
# what is live from what the allocator keeps. BIN overrides the trainer.
set -euo pipefail
cd "$(dirname "$0")/../.."
BIN=${BIN:-runs/issue10/bin/residue-train}
W=$(mktemp -d)
trap 'rm -rf "$W"' EXIT
run() { # label, env, args...
    local label=$1 envs=$2
    shift 2
    rm -rf "$W/m"
    env $envs /usr/bin/time -f "%M" -o "$W/t" "$BIN" --arch dirac-shared20 --epochs 40 \
        --width 0.5 --act-near-identity 0.1 --data fashion-mnist --out "$W/m/model.onnx" \
        --checkpoint-dir "$W/m/ck" --max-steps 6 "$@" > "$W/log" 2>&1
    awk -v l="$label" -v k="$(cat "$W/t")" 'BEGIN { printf "| %s | %.2f |\n", l, k / 1048576 }'
}
echo "| run (6 steps) | peak GiB |"
echo "|---|---:|"
T=checkpoints/ext40/resnet20/model.ckpt
for bs in 32 128 256; do
    run "batch $bs, post-add norm, penalty 0.1" "" --batch-size $bs --post-add-norm --range-penalty 0.1
    run "batch $bs, the same with a teacher" "" --batch-size $bs --post-add-norm --range-penalty 0.1 \
        --distill-teacher $T
done
run "batch 128, no post-add norm, penalty 0.1" "" --batch-size 128 --range-penalty 0.1
run "batch 128, no post-add norm, no penalty" "" --batch-size 128 --range-penalty 0
run "batch 128, exact ReLUs (--relu)" "" --batch-size 128 --relu
for e in MALLOC_MMAP_THRESHOLD_=131072 MALLOC_TRIM_THRESHOLD_=0 MALLOC_ARENA_MAX=1; do
    run "batch 128, post-add norm, penalty 0.1, $e" "$e" --batch-size 128 --post-add-norm \
        --range-penalty 0.1
done
