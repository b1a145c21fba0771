#!/usr/bin/env bash
# Session 21: the compiler's estimate of the skip-connection gain against
# depth (20, 32, 56), activation depth (one-level completed squares, the
# default, and two-level degree-2 polynomials, the paper's setting) and L_eff
# (the three n16-boot sets), for the three families at the bundled models'
# shape (1x28x28, width 0.5, random weights: bootstraps and rotations depend
# on the structure only). Estimates only (`residue analyze`, one thread, the
# committed cost records); writes docs/data/depth-s21.json and prints a
# markdown table. B overrides the residue binary. The random weights push
# activation inputs out of their stated ranges (warnings in runs/depth/
# warnings.txt): that changes no level, bootstrap or rotation.
set -euo pipefail
cd "$(dirname "$0")/../.."
B=${B:-target-rt/release/residue}
W=runs/depth
mkdir -p $W
: > $W/warnings.txt
nets="resnet20 dirac20 dirac-shared20 resnet32 dirac32 dirac-shared32 resnet56 dirac56 dirac-shared56"
for a in $nets; do
    [ -f $W/$a.onnx ] || CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-target-rt} cargo run -q --release -p nn \
        --example export_zoo -- $a 1 28 $W/$a.onnx 0.5 >/dev/null
done
for acts in one two; do
    flag=; [ $acts = two ] && flag=--no-fused-squares
    for p in n16-boot n16-boot-l11 n16-boot-l13; do
        for a in $nets; do
            $B analyze $W/$a.onnx --params $p $flag --json > $W/$a-$p-$acts.json 2>> $W/warnings.txt
        done
    done
done
python3 - "$W" $nets <<'PY'
import json, sys
w, nets = sys.argv[1], sys.argv[2:]
recs = {}
for acts in (1, 2):
    for p in ("n16-boot", "n16-boot-l11", "n16-boot-l13"):
        for a in nets:
            d = json.load(open(f"{w}/{a}-{p}-{'one' if acts == 1 else 'two'}.json"))
            recs[a, p, acts] = dict(model=a, params=p, activation_levels=acts,
                                    bootstraps=d["bootstraps"], rotations=d["rotations"],
                                    estimated_s=round(d["estimated_seconds"], 2))
for (a, p, acts), r in recs.items():
    base = recs["resnet" + a[-2:], p, acts]
    r["estimated_speedup_vs_resnet"] = round(base["estimated_s"] / r["estimated_s"], 3)
json.dump(list(recs.values()), open("docs/data/depth-s21.json", "w"), indent=1)
print("| activation levels | set | depth | ResNet: boots, est. s | Dirac: boots, est. s, speed-up | Dirac + shared-source: boots, est. s, speed-up |")
print("|---:|---|---:|---|---|---|")
for acts in (1, 2):
    for p in ("n16-boot", "n16-boot-l11", "n16-boot-l13"):
        for depth in ("20", "32", "56"):
            rn, d, ds = (recs[f + depth, p, acts] for f in ("resnet", "dirac", "dirac-shared"))
            print(f"| {acts} | `{p}` | {depth} | {rn['bootstraps']}, {rn['estimated_s']:.1f} | "
                  f"{d['bootstraps']}, {d['estimated_s']:.1f}, {d['estimated_speedup_vs_resnet']:.2f}x | "
                  f"{ds['bootstraps']}, {ds['estimated_s']:.1f}, {ds['estimated_speedup_vs_resnet']:.2f}x |")
PY
