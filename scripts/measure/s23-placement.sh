#!/usr/bin/env bash
# Session 23: what bootstrap placement does to the skip-connection gain, by
# the compiler's estimate (`residue analyze`, the binary's cost records, one
# thread): the three bundled models at the three bootstrappable 128-bit sets,
# optimal and greedy placement. 18 analyze runs, under a minute.
# Writes docs/data/placement-s23.json (one record per model, set, placement)
# and prints the table of docs/results.md, "Session 23: placement".
set -euo pipefail
cd "$(dirname "$0")/../.."
B=${B:-target-rt/release/residue}
out=docs/data/placement-s23.json
tmp=$(mktemp)
for m in resnet20 dirac20 dirac-shared20; do
    for p in n16-boot n16-boot-l11 n16-boot-l13; do
        for pl in optimal greedy; do
            "$B" analyze "models/$m.onnx" --params "$p" --placement "$pl" --threads 1 --json |
                python3 -c 'import json,sys; d=json.load(sys.stdin); print(json.dumps({"model":sys.argv[1],"params":sys.argv[2],"placement":sys.argv[3],"bootstraps":d["bootstraps"],"rotations":d["rotations"],"estimated_s":round(d["estimated_seconds"],2)}))' "$m" "$p" "$pl" >> "$tmp"
        done
    done
done
python3 - "$tmp" "$out" <<'PY'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
json.dump(rows, open(sys.argv[2], "w"), indent=1)
by = {(r["model"], r["params"], r["placement"]): r for r in rows}
print("| set | placement | ResNet-20: boots, est. s | Dirac-20: boots, est. s, speed-up | Dirac + shared-source 20: boots, est. s, speed-up |")
print("|---|---|---|---|---|")
for p in ["n16-boot", "n16-boot-l11", "n16-boot-l13"]:
    for pl in ["optimal", "greedy"]:
        r = by[("resnet20", p, pl)]
        cells = [f'{r["bootstraps"]}, {r["estimated_s"]:.1f}']
        for m in ["dirac20", "dirac-shared20"]:
            v = by[(m, p, pl)]
            cells.append(f'{v["bootstraps"]}, {v["estimated_s"]:.1f}, {r["estimated_s"] / v["estimated_s"]:.2f}x')
        print(f"| `{p}` | {pl} | " + " | ".join(cells) + " |")
PY
rm -f "$tmp"
