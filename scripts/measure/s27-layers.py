#!/usr/bin/env python3
"""Session 27: each layer's measured seconds against `residue analyze`'s.

Reads the progress lines `residue eval --he` printed in session 27's window b
(docs/data/he-eval-MODEL-n16-boot-t2-s19-s27b.progress.txt, from
scripts/measure/s19-e2e.sh's stderr): a step's time is the next step's start
minus its own, averaged over images 2-4 (the first warms up). Beside it, the
layer's estimate from `residue analyze models/MODEL.onnx --params n16-boot
--threads 2 --json` (run here; B overrides the binary).

    python3 scripts/measure/s27-layers.py resnet14-w0625 dirac-shared14-w0625
"""
import collections
import json
import os
import re
import subprocess
import sys

B = os.environ.get("B", "target-rt/release/residue")
for model in sys.argv[1:]:
    path = f"docs/data/he-eval-{model}-n16-boot-t2-s19-s27b.progress.txt"
    images, cur = [], []
    for line in open(path):
        m = re.match(r"\s*([\d.]+) s\s+step (\d+)/\d+ (\S+)", line)
        if not m:
            continue
        if int(m.group(2)) == 0 and cur:
            images.append(cur)
            cur = []
        cur.append((float(m.group(1)), m.group(3)))
    images.append(cur)
    took = collections.defaultdict(list)
    for steps in images[1:]:
        for (t, name), (t2, _) in zip(steps, steps[1:]):
            took[name].append(t2 - t)
    report = json.loads(subprocess.run(
        [B, "analyze", f"models/{model}.onnx", "--params", "n16-boot", "--threads", "2", "--json"],
        check=True, capture_output=True, text=True).stdout)
    print(f"{model} ({len(images) - 1} images)")
    print("| layer | estimated s | measured s | measured / estimated |")
    print("|---|---:|---:|---:|")
    for layer in report["layers"]:
        if layer["kind"] != "linear" or layer["bootstraps_before"] or layer["name"] not in took:
            continue
        v = took[layer["name"]]
        mean = sum(v) / len(v)
        print(f"| {layer['name']} | {layer['seconds']:.2f} | {mean:.2f} | {mean / layer['seconds']:.2f} |")
