#!/usr/bin/env bash
# A newcomer's first hour, automated: clones the repository into a temporary
# directory and runs the commands of the README's "Start here" section in
# order, as written (the demo on the insecure test set
# `insecure-boot-n12-l9`, to keep it short; `residue ARGS` as
# `cargo run --release -p residue-cli -- ARGS`). Each `# ...` line right
# under a command that starts with a word of its output is checked against
# what the command printed. `cargo test` runs with `--show-output`, and the
# check fails if any test said it skipped, or was ignored without a reason.
#
#   scripts/clean-clone-check.sh [--dry-run] [--steps LIST] [--debug] [REPO [REV]]
#
#   --dry-run     print the commands, run nothing
#   --steps LIST  run only these commands (1-based, comma-separated: 1,3,4)
#   --debug     drop `--release` (quicker where a debug build is warm)
#   REPO, REV   what to clone (default: this checkout, its HEAD)
#
# A fresh clone gets a fresh target directory inside the temporary one,
# unless CARGO_TARGET_DIR is set (then that one is reused: faster, less fresh;
# afterwards cargo may take its artifacts, which name the deleted temporary
# clone's paths, as fresh for another checkout: `cargo clean -p` the crates
# whose tests read fixtures, or use a target directory only for this check).
set -euo pipefail
here="$(cd "$(dirname "$0")/.." && pwd)"
dry=0 steps="" debug=0
while [ $# -gt 0 ]; do
    case "$1" in
        --dry-run) dry=1 ;;
        --steps) steps=",$2,"; shift ;;
        --debug) debug=1 ;;
        -h|--help) sed -n '2,20p' "$0"; exit 0 ;;
        -*) echo "unknown option $1" >&2; exit 2 ;;
        *) break ;;
    esac
    shift
done
repo="${1:-$here}"
rev="${2:-$(git -C "$here" rev-parse HEAD)}"

tmp=$(mktemp -d "${TMPDIR:-/tmp}/residue-clean-clone.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
git clone --quiet "$repo" "$tmp/residue"
git -C "$tmp/residue" checkout --quiet "$rev"
cd "$tmp/residue"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$tmp/target}"
echo "== clean clone of $repo at $(git rev-parse --short HEAD) in $PWD (target $CARGO_TARGET_DIR)"

# The README's "Start here" section: its shell commands in order, each with
# the `# ` lines that follow it (expected output).
python3 - "$debug" > "$tmp/steps" <<'PY'
import re, sys
debug = sys.argv[1] == "1"
text = open("README.md").read()
start = text.index("## Start here")
end = text.find("\n## ", start + 1)
section = text[start:end if end > 0 else len(text)]
steps = []
for block in re.findall(r"```sh\n(.*?)```", section, re.S):
    for line in block.splitlines():
        line = line.strip()
        if not line:
            continue
        if line.startswith("#"):
            if steps:
                steps[-1][1].append(line[1:].strip())
            continue
        if line.startswith("residue "):
            line = "cargo run --release -p residue-cli -- " + line[len("residue "):]
        if " -- demo" in line and "--params" not in line:
            line += " --params insecure-boot-n12-l9"
        if line.startswith("cargo test"):
            line += " -- --show-output"
        if debug:
            line = line.replace(" --release", "")
        steps.append([line, []])
for cmd, expect in steps:
    # expected output: only comments that quote output (not prose about the
    # command before it, which starts lowercase and reads as a sentence)
    quoted = [e for e in expect if e[:1].isupper() or e[:1].isdigit() or e.startswith(("class ", "models/"))]
    print(cmd + "\t" + (quoted[0] if quoted else ""))
PY

n=0 ran=0 fail=0
while IFS=$'\t' read -r cmd expect; do
    n=$((n + 1))
    if [ -n "$steps" ] && [[ "$steps" != *",$n,"* ]]; then
        echo "== [$n] (not run) $cmd"
        continue
    fi
    echo "== [$n] $cmd"
    [ -n "$expect" ] && echo "   expecting a line starting: ${expect%%[*}"
    [ "$dry" = 1 ] && continue
    ran=$((ran + 1))
    log="$tmp/step$n.log"
    if ! bash -c "$cmd" < /dev/null > "$log" 2>&1; then
        tail -n 30 "$log"
        echo "FAIL [$n]: exit status non-zero" >&2
        fail=1
        break
    fi
    tail -n 5 "$log"
    # expected output: the part before any `[...]` placeholder
    if [ -n "$expect" ] && ! grep -qF -- "${expect%%[*}" "$log"; then
        echo "FAIL [$n]: no line like '$expect'" >&2
        fail=1
    fi
    case "$cmd" in
        "cargo test"*)
            if grep -inE '^(skipping|skipped)|: skipping|not installed; skip' "$log"; then
                echo "FAIL [$n]: a test skipped and reported ok (above)" >&2
                fail=1
            fi
            if grep -E '^test .* \.\.\. ignored$' "$log"; then
                echo "FAIL [$n]: ignored without a reason (above)" >&2
                fail=1
            fi
            grep -E '^test .* \.\.\. ignored, ' "$log" | sed 's/^/   /' || true
            ;;
    esac
done < "$tmp/steps"
if [ "$fail" = 0 ] && [ "$dry" = 0 ]; then
    echo "== clean-clone check passed: $ran of $n commands run"
fi
exit "$fail"
