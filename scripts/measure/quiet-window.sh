# Sourced by the measurement scripts (session 19 on): pauses the training
# runs and builds (SIGSTOP; by process name, so a shell whose command line
# only mentions them keeps running) until the sourcing script exits, and prints a
# bootstrap record of `residue bench ckks` on one line (`show_boot FILE`).
# Sets the defaults the scripts share: B (the residue binary), D (where
# records go).
B=${B:-target-rt/release/residue}
D=docs/data
pause() { for p in $(pgrep -x 'residue-train|cargo|rustc'); do kill -"$1" "$p" 2>/dev/null; done; }
pause STOP
trap 'pause CONT' EXIT
show_boot() {
    python3 -c "import json,sys;d=json.load(open(sys.argv[1]))[0];print(round(d['median_ms']/1e3,2),'s',{k:round(v/1e3,2) for k,v in d.get('stages_ms',{}).items() if not k.endswith('cpu')},round(d['precision_bits_mean'],2),round(d['precision_bits_min'],2),d.get('levels_after'),d.get('key_bytes'),'ratio',d.get('log_message_ratio'))" "$1"
}
