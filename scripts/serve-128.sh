#!/usr/bin/env bash
# One 128-bit round trip through the service (issue 12): `residue serve` on
# loopback with a plan compiled at n16-boot, `residue client` encrypting a
# bundled Fashion-MNIST test image, the decrypted class beside the plaintext
# model's. Records the client's JSON report, the server's peak RSS (VmHWM)
# and the plaintext class in OUT (default runs/serve128/report.json).
# Needs about 15 GiB of free memory and ~10 GiB of disk for the store.
#   scripts/serve-128.sh
#   MODEL=models/resnet20.onnx INPUT=data/samples/fashion-mnist-0.png scripts/serve-128.sh
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/common.sh
MODEL=${MODEL:-models/dirac-shared20.onnx}
INPUT=${INPUT:-data/samples/fashion-mnist-0.png}
PARAMS=${PARAMS:-n16-boot}
DIR=${DIR:-runs/serve128}
OUT=${OUT:-$DIR/report.json}
THREADS=${THREADS:-2}
BIN=${BIN:-$(residue_bin --release)}
mkdir -p "$DIR"
rm -rf "$DIR/store" "$DIR/keys"
name=$(basename "$MODEL" .onnx)

echo "== $(date -u +%FT%TZ) compile $MODEL at $PARAMS"
"$BIN" compile "$MODEL" --params "$PARAMS" --out "$DIR/plan.json"

echo "== serve"
"$BIN" serve --plan "$DIR/plan.json" --model "$MODEL" --store "$DIR/store" \
    --addr 127.0.0.1:0 --workers 1 --key-cache-mib 12288 --threads "$THREADS" \
    > "$DIR/serve.out" 2> "$DIR/serve.err" &
srv=$!
trap 'kill $srv 2>/dev/null || true' EXIT
for _ in $(seq 100); do
    grep -q "listening on" "$DIR/serve.out" 2>/dev/null && break
    sleep 0.2
done
url=$(sed -n 's/.*listening on \(http[^ ]*\).*/\1/p' "$DIR/serve.out" | head -1)
[ -n "$url" ] || { echo "server did not start: $(tail -1 "$DIR/serve.err")" >&2; exit 1; }
echo "server $url (pid $srv)"

echo "== client"
start=$(date +%s.%N)
"$BIN" client --server "$url" --plan-out "$DIR/client-plan.json" --keys "$DIR/keys" \
    --input "$INPUT" --json-out "$DIR/client.json"
end=$(date +%s.%N)
hwm_kib=$(awk '/VmHWM/ {print $2}' "/proc/$srv/status")
kill "$srv"
wait "$srv" 2>/dev/null || true
trap - EXIT

"$BIN" predict --model "$MODEL" --input "$INPUT" --json > "$DIR/plain.json"
python3 - "$DIR/client.json" "$DIR/plain.json" "$hwm_kib" "$start" "$end" "$PARAMS" \
    "$name" "$INPUT" "$THREADS" "$(du -sb "$DIR/store" | cut -f1)" > "$OUT" <<'PY'
import json, sys
c = json.load(open(sys.argv[1]))
p = json.load(open(sys.argv[2]))
err = max(abs(a - b) for a, b in zip(c["logits"], p["logits"]))
print(json.dumps({
    "params": sys.argv[6], "model": sys.argv[7], "input": sys.argv[8],
    "threads": int(sys.argv[9]),
    "class": c["class"], "plain_class": p["class"], "agree": c["class"] == p["class"],
    "max_logit_error": err,
    "wall_seconds": float(sys.argv[5]) - float(sys.argv[4]),
    "server_peak_rss_bytes": int(sys.argv[3]) * 1024,
    "store_bytes": int(sys.argv[10]),
    "client": c,
}, indent=1))
PY
cat "$OUT"
