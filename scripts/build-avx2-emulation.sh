#!/usr/bin/env bash
# Builds `residue` (release) as it runs on a CPU without AVX-512, on a host
# that has AVX-512: tfhe-ntt picks its NTT kernels from the CPU at run time
# and has no switch of its own, so this builds it with its default `avx512`
# cargo feature off (a patched copy of the registry source whose default
# features are ["std"]); RESIDUE_NO_AVX512=1 then turns the engine's own
# IFMA kernels off too. The workspace's Cargo.lock is left as it was.
#
#   scripts/build-avx2-emulation.sh            # -> $OUT (default target-avx2emu/residue)
#   RESIDUE_NO_AVX512=1 target-avx2emu/residue bench ckks ...
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
target=${CARGO_TARGET_DIR:-$root/target}
out=${OUT:-$root/target-avx2emu}
ver=$(grep -A1 '^name = "tfhe-ntt"' Cargo.lock | sed -n 's/^version = "\(.*\)"/\1/p')
src=$(ls -d "${CARGO_HOME:-$HOME/.cargo}"/registry/src/*/tfhe-ntt-"$ver" | head -1)
patched=$target/tfhe-ntt-noavx512
rm -rf "$patched" && cp -r "$src" "$patched"
# default = ["std", "avx512"] -> ["std"]
python3 - "$patched/Cargo.toml" <<'PY'
import re, sys
p = sys.argv[1]
s = open(p).read()
s2 = re.sub(r'default = \[\s*"std",\s*"avx512",?\s*\]', 'default = ["std"]', s)
assert s2 != s, "tfhe-ntt default features not found"
open(p, "w").write(s2)
PY
cp Cargo.lock "$target/Cargo.lock.saved"
trap 'cp "$target/Cargo.lock.saved" Cargo.lock' EXIT
# Same target directory: only tfhe-ntt and its dependents are built again
# (under other hashes), and the next ordinary build relinks `residue`.
CARGO_TARGET_DIR=$target cargo build --release -p residue-cli \
  --config "patch.crates-io.tfhe-ntt.path=\"$patched\""
mkdir -p "$out"
cp "$target/release/residue" "$out/residue"
echo "built $out/residue (tfhe-ntt without avx512)"
