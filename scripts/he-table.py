#!/usr/bin/env python3
"""Markdown table of the encrypted-accuracy logs written by
`residue eval --he --log FILE` (scripts/he-eval.sh): one row per model.

    scripts/he-table.py docs/data/he-eval-*.jsonl
"""
import json
import sys

print("| model | params | images | plaintext correct | encrypted correct | argmax agreement "
      "| max logit error | s/image (mean) | bootstraps | rotations | s bootstrapping / linear (mean) | peak RSS |")
print("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
for path in sys.argv[1:]:
    rows = [json.loads(l) for l in open(path) if l.strip()]
    if not rows:
        continue
    model = path.split("he-eval-")[-1].rsplit("-n16", 1)[0].replace(".jsonl", "")
    n = len(rows)
    mean = lambda k: sum(r["seconds_by_kind"].get(k, 0.0) for r in rows) / n
    print(f"| {model} | {rows[0]['params']} | {n} | "
          f"{sum(r['plain_class'] == r['label'] for r in rows)}/{n} | "
          f"{sum(r['he_class'] == r['label'] for r in rows)}/{n} | "
          f"{sum(r['he_class'] == r['plain_class'] for r in rows)}/{n} | "
          f"{max(r['max_logit_error'] for r in rows):.1e} | "
          f"{sum(r['seconds'] for r in rows) / n:.0f} | {rows[0]['bootstraps']} | {rows[0]['rotations']} | "
          f"{mean('bootstrap'):.0f} / {mean('linear'):.0f} | "
          f"{max(r.get('peak_rss_bytes') or 0 for r in rows) / 2**30:.1f} GiB |")
