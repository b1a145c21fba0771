#!/usr/bin/env bash
# Session 24: the input on the fresh levels above L_eff only where that saves
# a bootstrap (the default) or wherever the plan is estimated faster
# (`--fresh-when-faster`), by the compiler's estimate (`residue analyze`, the
# binary's cost records, two threads as in the session-23 measurements): the
# three bundled models at the three bootstrappable 128-bit sets, with each
# skip's cost. 18 analyze runs, under a minute.
# Writes docs/data/fresh-s24.json and prints the table of docs/results.md,
# "Session 24: the fresh levels wherever faster".
set -euo pipefail
cd "$(dirname "$0")/../.."
B=${B:-target-rt/release/residue}
out=docs/data/fresh-s24.json
tmp=$(mktemp)
for m in resnet20 dirac20 dirac-shared20; do
    for p in n16-boot n16-boot-l11 n16-boot-l13; do
        for f in default --fresh-when-faster; do
            flag=()
            [ "$f" = default ] || flag=("$f")
            "$B" analyze "models/$m.onnx" --params "$p" --threads 2 --json "${flag[@]}" |
                python3 -c 'import json,sys; d=json.load(sys.stdin); print(json.dumps({"model":sys.argv[1],"params":sys.argv[2],"fresh":sys.argv[3],"bootstraps":d["bootstraps"],"estimated_s":round(d["estimated_seconds"],2),"network_key_gib":round(d["network_key_bytes"]/2**30,2),"skips_total_s":d["skips_total"] and round(d["skips_total"]["seconds"],2),"skips":[{"name":s["name"],"bootstraps":s["bootstraps"],"seconds":round(s["seconds"],3)} for s in d["skips"]]}))' "$m" "$p" "$f" >> "$tmp"
        done
    done
done
python3 - "$tmp" "$out" <<'PY'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
json.dump(rows, open(sys.argv[2], "w"), indent=1)
by = {(r["model"], r["params"], r["fresh"]): r for r in rows}
print("| set | fresh levels | ResNet-20: boots, est. s, keys GiB | Dirac-20: boots, est. s, keys GiB, speed-up | Dirac + shared-source 20: boots, est. s, keys GiB, speed-up | most negative skip cost (s) |")
print("|---|---|---|---|---|---:|")
for p in ["n16-boot", "n16-boot-l11", "n16-boot-l13"]:
    for f in ["default", "--fresh-when-faster"]:
        r = by[("resnet20", p, f)]
        cells = [f'{r["bootstraps"]}, {r["estimated_s"]:.2f}, {r["network_key_gib"]:.2f}']
        for m in ["dirac20", "dirac-shared20"]:
            v = by[(m, p, f)]
            cells.append(f'{v["bootstraps"]}, {v["estimated_s"]:.2f}, {v["network_key_gib"]:.2f}, {r["estimated_s"] / v["estimated_s"]:.2f}x')
        worst = min(s["seconds"] for m in ["resnet20", "dirac-shared20"] for s in by[(m, p, f)]["skips"])
        label = "where a bootstrap is saved" if f == "default" else "wherever faster"
        print(f"| `{p}` | {label} | " + " | ".join(cells) + f" | {worst:.2f} |")
PY
rm -f "$tmp"
