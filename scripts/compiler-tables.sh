#!/usr/bin/env bash
# Regenerates the tables of docs/compiler.md from what `residue analyze`
# reports today: the zoo networks (CIFAR-shaped, random weights) at the
# default set with the default (measured, docs/data) costs, and the same
# calibrated with docs/data/bench-n16-boot.json. Prints markdown; paste it
# over the tables there.
#
#   scripts/compiler-tables.sh [--debug]
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/common.sh
if [ "${1:-}" = "--debug" ]; then bin=$(residue_bin); else bin=$(residue_bin --release); fi
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
nets="resnet20 dirac20 dirac-shared20"
for m in $nets; do
    "$bin" analyze --zoo "$m" --json > "$tmp/$m.json" 2>/dev/null
    "$bin" analyze --zoo "$m" --calibrate docs/data/bench-n16-boot.json --json > "$tmp/$m-cal.json" 2>/dev/null
done
python3 - "$tmp" $nets <<'PY'
import json, sys
tmp, nets = sys.argv[1], sys.argv[2:]
load = lambda n: json.load(open(f"{tmp}/{n}.json"))
r = load(nets[0])
print(f"Zoo at `{r['params']}` (L_eff {r['l_eff']}), costs: {r['cost_source']}\n")
print("| model | bootstraps | rotations | key switches | Galois keys (as keygen makes them) | est. s |")
print("|---|---:|---:|---:|---:|---:|")
for n in nets:
    r = load(n)
    gib = r["galois_key_bytes"] / 2**30
    print(f"| {n} | {r['bootstraps']} | {r['rotations']} | {r['key_switches']} | "
          f"{r['galois_keys']} ({gib:.0f} GiB) | {r['estimated_seconds']:.0f} |")
r = load(nets[0] + "-cal")
print(f"\nCalibrated with docs/data/bench-n16-boot.json, costs: {r['cost_source']}\n")
print("| model | bootstraps | rotations | estimated s |")
print("|---|---:|---:|---:|")
for n in nets:
    r = load(n + "-cal")
    print(f"| {n} | {r['bootstraps']} | {r['rotations']} | {r['estimated_seconds']:.1f} |")
PY
