#!/usr/bin/env bash
# Session 11: two-thread costs, so that `residue analyze --threads 2` (and
# `residue reproduce`, which prices its estimates for the threads it runs
# with) is priced from measurements: the leveled operations at n16-boot and
# each n16-boot set's full-slot and 8192-slot bootstrap, 2 threads, NTT-form
# diagonals (the engine's default, as the one-thread calibration), everything
# else on the machine paused. Writes docs/data/{ops-n16-boot,boot16,
# boot16-l11,boot16-l13}-s11-t2.json (the files crates/runtime/src/paramset.rs
# embeds).
set -uo pipefail
cd "$(dirname "$0")/../.."
B=${B:-target-rt/release/residue}
D=docs/data
TMP=$(mktemp -d)
trap 'scripts/measure/quiet.sh CONT; rm -rf "$TMP"' EXIT
scripts/measure/quiet.sh STOP
T="/usr/bin/time -f %e_s_wall_%M_maxKB"
echo "== $(date -u +%T) ops n16-boot"
$T $B bench ckks --params n16-boot --threads 2 --reps 7 \
    --ops encode,encrypt,decrypt,add,mul_plain,mul_plain_acc,mul_relin,rescale,rotate,rotate_hoisted \
    --json-out $D/ops-n16-boot-s11-t2.json | tail -12
for p in n16-boot n16-boot-l11 n16-boot-l13; do
    for s in 32768 8192; do
        echo "== $(date -u +%T) bootstrap $p $s slots"
        $T $B bench ckks --params $p --threads 2 --ops bootstrap --slots $s --reps 3 \
            --json-out "$TMP/$p-$s.json" | tail -3
    done
    out=$D/${p/n16-boot/boot16}-s11-t2.json
    python3 - "$TMP/$p-32768.json" "$TMP/$p-8192.json" "$out" <<'PY'
import json, sys
*ins, out = sys.argv[1:]
docs = [json.load(open(f)) for f in ins]
recs = lambda d: d["records"] if isinstance(d, dict) else d
merged = [r for d in docs for r in recs(d)]
if isinstance(docs[0], dict):
    merged = dict(docs[0], records=merged)
json.dump(merged, open(out, "w"), indent=2)
print("wrote", out, [(r.get("slots"), round(r["median_ms"])) for r in recs(merged)])
PY
done
echo "== $(date -u +%T) done"
