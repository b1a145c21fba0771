#!/usr/bin/env python3
"""Markdown table of the encrypted-accuracy logs written by
`residue eval --he --log FILE` (scripts/he-eval.sh): one row per log.

    scripts/he-table.py docs/data/he-eval-*.jsonl

Columns: wall seconds per image (latency of the inference that computed it,
divided by the images it held when batched) and process CPU seconds per
image (all threads; for a one-thread run on a busy machine, what the wall
time would be on a quiet one).
"""
import json
import sys

print("| log (model-run) | params | threads | batch | images | plaintext correct | encrypted correct "
      "| argmax agreement | max logit error | wall s/image | CPU s/image | bootstraps | rotations "
      "| s bootstrapping / linear | eval keys | peak RSS |")
print("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
for path in sys.argv[1:]:
    rows = [json.loads(l) for l in open(path) if l.strip()]
    if not rows:
        continue
    # the log's name less its prefix and the set: model and run tag
    name = path.rsplit("/", 1)[-1].replace(".jsonl", "")
    name = name.split("eval-", 1)[-1]
    model = name.replace("-" + rows[0]["params"], "")
    n = len(rows)
    per = lambda r: max(r.get("batch_images") or 1, 1)
    mean = lambda k: sum(r["seconds_by_kind"].get(k, 0.0) / per(r) for r in rows) / n
    cpu = [r["cpu_seconds"] / per(r) for r in rows if r.get("cpu_seconds") is not None]
    keys = next((r["eval_key_bytes"] for r in rows if r.get("eval_key_bytes")), None)
    print(f"| {model} | {rows[0]['params']} | {rows[0].get('threads', '')} | {rows[0].get('batch', 1)} | {n} | "
          f"{sum(r['plain_class'] == r['label'] for r in rows)}/{n} | "
          f"{sum(r['he_class'] == r['label'] for r in rows)}/{n} | "
          f"{sum(r['he_class'] == r['plain_class'] for r in rows)}/{n} | "
          f"{max(r['max_logit_error'] for r in rows):.1e} | "
          f"{sum(r['seconds'] / per(r) for r in rows) / n:.0f} | "
          f"{(f'{sum(cpu) / len(cpu):.0f}') if cpu else ''} | "
          f"{rows[0]['bootstraps']} | {rows[0]['rotations']} | "
          f"{mean('bootstrap'):.0f} / {mean('linear'):.0f} | "
          f"{(f'{keys / 1e9:.2f} GB') if keys else ''} | "
          f"{max(r.get('peak_rss_bytes') or 0 for r in rows) / 2**30:.1f} GiB |")
