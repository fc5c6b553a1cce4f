#!/usr/bin/env bash
# `make run`: set up, make the built-in data, select + evaluate + export a version, serve it
# and ask it once; then one line saying where the time went.
# Environment (the Makefile passes them): VENV, DATA, MAKE.
set -euo pipefail
VENV=${VENV:-.venv}
MAKE=${MAKE:-make}
PY=$VENV/bin/python
STAMPS=$(mktemp)
REPORT=$(mktemp)
trap 'rm -f "$STAMPS" "$REPORT"' EXIT

phase() {   # phase NAME COMMAND...: run it, note how long it took
    local name=$1 start
    shift
    start=$(date +%s)
    "$@"
    echo "$name $(( $(date +%s) - start ))" >>"$STAMPS"
}

phase setup $MAKE --no-print-directory setup
phase data $MAKE --no-print-directory data DATA="$DATA"
phase train bash -c "set -o pipefail; '$PY' -m santander train --data '$DATA' | tee '$REPORT'"
phase ask "$PY" -m santander serve-and-ask
# The train phase splits into selection (from the version's report) and the rest.
"$PY" - "$STAMPS" "$REPORT" <<'EOF'
import json, re, sys
from pathlib import Path
seconds = dict(line.split() for line in Path(sys.argv[1]).read_text().splitlines())
seconds = {name: int(value) for name, value in seconds.items()}
report = re.search(r"^report: (.+)$", Path(sys.argv[2]).read_text(), re.M)
selection = json.loads(Path(report.group(1)).read_text())["timings_seconds"]["selection"]
selection = min(int(round(selection)), seconds["train"])
parts = [("set-up", seconds["setup"]), ("data", seconds["data"]), ("selection", selection),
         ("refit, evaluation and export", seconds["train"] - selection),
         ("serve and ask", seconds["ask"])]
clock = lambda s: f"{s // 60}m{s % 60:02d}s"
print("time: " + ", ".join(f"{name} {clock(s)}" for name, s in parts)
      + f"; total {clock(sum(s for _, s in parts))}")
EOF
