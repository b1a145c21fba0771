#!/usr/bin/env python3
"""Side-by-side table of `residue bench ckks --ops bootstrap` records.

    python3 scripts/boot-table.py NAME=FILE.json [NAME=FILE.json ...]

Rows: wall and CPU seconds of the bootstrap (median), CPU seconds per stage
(one more run), key-switching kernels summed over the stages when the record
has a `--profile`, precision, levels left, key bytes. Columns: the records.
"""
import json
import sys

cols = []
for arg in sys.argv[1:]:
    name, path = arg.split("=", 1)
    recs = [r for r in json.load(open(path)) if r["op"] == "bootstrap"]
    if not recs:
        sys.exit(f"{path}: no bootstrap record")
    cols.append((name, recs[0]))

STAGES = ["raise", "coeffs_to_slots", "eval_mod", "slots_to_coeffs"]
KERNELS = ["mod_up", "inner_product", "mod_down", "automorphism", "plain_mul",
           "rescale", "tensor", "ntt", "intt", "basis_conversion"]


def prof(r, k):
    p = r.get("profile") or {}
    ms = sum(p.get(s, {}).get(k, {}).get("ms", 0.0) for s in STAGES)
    calls = sum(p.get(s, {}).get(k, {}).get("calls", 0) for s in STAGES)
    return f"{ms / 1e3:.2f} ({calls})" if p else ""


rows = [
    ("slots, threads", lambda r: f"{r['slots']}, {r['threads']}"),
    ("bootstrap, wall s", lambda r: f"{r['median_ms'] / 1e3:.2f}"),
    ("bootstrap, CPU s", lambda r: f"{(r.get('cpu_ms') or float('nan')) / 1e3:.2f}"),
]
rows += [(f"{s}, CPU s", (lambda s: lambda r: f"{r['stages_ms'].get(s + '_cpu', float('nan')) / 1e3:.2f}")(s))
         for s in STAGES]
rows += [(f"{k}, s (calls)", (lambda k: lambda r: prof(r, k))(k)) for k in KERNELS]
rows += [
    ("precision mean / worst, bits",
     lambda r: f"{r['precision_bits_mean']:.1f} / {r['precision_bits_min']:.1f}"),
    ("levels left", lambda r: str(r["levels_after"])),
    ("keys, GB", lambda r: f"{r['key_bytes'] / 1e9:.2f}"),
    ("kernel path", lambda r: r.get("kernels", "")),
]
print("| | " + " | ".join(n for n, _ in cols) + " |")
print("|---|" + "---:|" * len(cols))
for label, f in rows:
    print(f"| {label} | " + " | ".join(f(r) for _, r in cols) + " |")
