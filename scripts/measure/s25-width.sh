#!/usr/bin/env bash
# Session 25: the compiler's estimate for the three families at depths 14 and
# 20 and widths 0.5-1.0 (1x28x28 input, random weights: bootstraps and
# rotations depend on the structure only), to find the variants of the
# Dirac + shared-source family under issue 10's 0.77x of ResNet-20's
# estimated time. `residue analyze --params n16-boot --threads 2` (the
# tradeoff figure's setting), the committed cost records; writes
# docs/data/width-s25.json (OUT overrides; session 27 re-ran it on its
# re-taken cost records: OUT=docs/data/width-s27.json) and prints a
# markdown table. B overrides the residue binary. Under a minute.
set -euo pipefail
cd "$(dirname "$0")/../.."
B=${B:-target-rt/release/residue}
[ -x "$B" ] || CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-target-rt} cargo build -q --release -p residue-cli
W=runs/width
mkdir -p $W
: > $W/warnings.txt
nets="resnet14 dirac14 dirac-shared14 resnet20 dirac20 dirac-shared20"
widths="0.5 0.625 0.75 1.0"
for a in $nets; do
    for w in $widths; do
        [ -f $W/$a-w$w.onnx ] || CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-target-rt} cargo run -q --release \
            -p nn --example export_zoo -- $a 1 28 $W/$a-w$w.onnx $w >/dev/null
        $B analyze $W/$a-w$w.onnx --params n16-boot --threads 2 --json > $W/$a-w$w.json \
            2>> $W/warnings.txt
    done
done
python3 - "$W" "$widths" "${OUT:-docs/data/width-s25.json}" $nets <<'PY'
import json, sys
w, widths, out, nets = sys.argv[1], sys.argv[2].split(), sys.argv[3], sys.argv[4:]
recs = []
for a in nets:
    for wd in widths:
        d = json.load(open(f"{w}/{a}-w{wd}.json"))
        recs.append(dict(model=a, width=float(wd), bootstraps=d["bootstraps"],
                         rotations=d["rotations"], estimated_s=round(d["estimated_seconds"], 2)))
base = next(r for r in recs if r["model"] == "resnet20" and r["width"] == 0.5)["estimated_s"]
for r in recs:
    r["cost_vs_resnet20_w05"] = round(r["estimated_s"] / base, 3)
json.dump(recs, open(out, "w"), indent=1)
print("| network | " + " | ".join(f"width {wd}" for wd in widths) + " |")
print("|---|" + "---:|" * len(widths))
for a in nets:
    cells = []
    for wd in widths:
        r = next(r for r in recs if r["model"] == a and r["width"] == float(wd))
        cells.append(f"{r['bootstraps']} / {r['estimated_s']:.1f} s / {r['cost_vs_resnet20_w05']:.2f}x")
    print(f"| {a} | " + " | ".join(cells) + " |")
PY
