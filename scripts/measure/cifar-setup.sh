#!/usr/bin/env bash
# cifar-setup.sh C W [compile flags...]: the CIFAR-shaped full-width
# ResNet-20 (random weights, exported by the zoo) in C/resnet20-cifar.onnx
# and a fixed pseudo-random input in [0, 1) of shape [1, 3, 32, 32] in
# C/input.npy (both made once), then compiled at n16-boot with the flags
# given, keys generated and the input encrypted under W (plan.json, keys/,
# in.ct) with $B (default target-rt/release/residue). Used by the
# end-to-end scripts that time `residue infer` on it.
set -uo pipefail
cd "$(dirname "$0")/../.."
B=${B:-target-rt/release/residue}
C=$1
W=$2
shift 2
mkdir -p "$C" "$W"
if [ ! -f "$C/resnet20-cifar.onnx" ]; then
    target-rt/release/examples/export_zoo resnet20 3 32 "$C/resnet20-cifar.onnx" 1.0 || exit 1
fi
python3 - "$C/input.npy" <<'PY'
import struct, sys
n = 3 * 32 * 32
hdr = "{'descr': '<f4', 'fortran_order': False, 'shape': (1, 3, 32, 32), }"
hdr += " " * (63 - (10 + len(hdr)) % 64) + "\n"
x, vals = 12345, []
for _ in range(n):
    x = (1103515245 * x + 12345) % 2**31
    vals.append(x / 2**31)
with open(sys.argv[1], "wb") as f:
    f.write(b"\x93NUMPY\x01\x00" + struct.pack("<H", len(hdr)) + hdr.encode())
    f.write(struct.pack("<%df" % n, *vals))
PY
M=$C/resnet20-cifar.onnx
$B compile "$M" --params n16-boot "$@" --out "$W/plan.json" --json > "$W/compile.json" 2> "$W/compile.err" || exit 1
$B keygen --plan "$W/plan.json" --model "$M" --out "$W/keys" --json > "$W/keygen.json" 2> "$W/keygen.err" || exit 1
$B encrypt --keys "$W/keys" --plan "$W/plan.json" --input "$C/input.npy" --out "$W/in.ct" > "$W/encrypt.out" 2>&1 || exit 1
