# Sourced by the scripts here. `residue_bin [CARGO BUILD ARGS]` builds the
# `residue` binary and prints the path cargo reports for it, so scripts
# work wherever the target directory is (CARGO_TARGET_DIR, build.target-dir
# in a cargo config, or ./target).
residue_bin() {
    local bin
    bin=$(cargo build "$@" -p residue-cli --bin residue --message-format=json-render-diagnostics |
        sed -n 's/.*"executable":"\([^"]*\)".*/\1/p' | tail -n 1)
    if [ -z "$bin" ] || [ ! -x "$bin" ]; then
        echo "residue_bin: cargo reported no residue binary" >&2
        return 1
    fi
    echo "$bin"
}
