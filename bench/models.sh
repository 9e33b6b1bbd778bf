#!/usr/bin/env bash
# Model-fitting benchmark: simulate a seeded N-customer summary (default 1,000,000) from the
# BG/NBD and Gamma-Gamma processes, then fit it with Python's lifetimes 0.11.3 and with
# `tenure analytics clv --from-summary` in the same run, printing seconds, log-likelihoods
# and the ratio. Installs lifetimes into a venv under $BENCH_DIR (default /tmp/tenure-bench).
#
#   bench/models.sh [N]
set -euo pipefail

N=${1:-1000000}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
BIN=$ROOT/target/release/tenure
WORK=${BENCH_DIR:-/tmp/tenure-bench}
VENV=$WORK/venv
mkdir -p "$WORK"
[ -x "$BIN" ] || (cd "$ROOT" && cargo build --release -p tenure)
if ! "$VENV/bin/python" -c "import lifetimes" 2>/dev/null; then
  python3 -m venv --help >/dev/null 2>&1 && python3 -c "import ensurepip" 2>/dev/null \
    || { apt-get update -q && apt-get install -y -q python3-venv; }
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install -q lifetimes==0.11.3
fi

SUMMARY=$WORK/summary-$N.csv
[ -f "$SUMMARY" ] || "$VENV/bin/python" "$ROOT/bench/models.py" simulate "$N" "$SUMMARY"

THEIRS=$("$VENV/bin/python" "$ROOT/bench/models.py" lifetimes "$SUMMARY")
START=$(date +%s.%N)
OURS=$(DATABASE_URL="sqlite://$WORK/models.db?mode=rwc" "$BIN" analytics clv --from-summary "$SUMMARY" \
  --out "$WORK/predictions-$N.csv" --format json)
END=$(date +%s.%N)

"$VENV/bin/python" - "$THEIRS" "$OURS" "$START" "$END" "$N" <<'PY'
import json, sys
theirs, ours = json.loads(sys.argv[1]), json.loads(sys.argv[2])
total = float(sys.argv[4]) - float(sys.argv[3])
n = int(sys.argv[5])
print(f"| model ({n:,} customers) | lifetimes s | Tenure fit s | ratio | lifetimes LL | Tenure LL | rel. diff |")
print("|---|---:|---:|---:|---:|---:|---:|")
# Tenure reports both fits in one number; the command as a whole (read, fit both, score every
# customer, write predictions) is the last row.
bg, gg = theirs["bgnbd"], theirs["gamma_gamma"]
fit = ours["fit_seconds"]
for name, t, ll_t, ll_o in [
    ("BG/NBD + Gamma-Gamma fits", bg["seconds"] + gg["seconds"], None, None),
    ("BG/NBD", bg["seconds"], bg["log_likelihood"], ours["bgnbd"]["log_likelihood"]),
    ("Gamma-Gamma", gg["seconds"], gg["log_likelihood"], ours["gamma_gamma"]["log_likelihood"]),
]:
    if ll_t is None:
        print(f"| {name} | {t:.2f} | {fit:.3f} | {t / fit:.0f}× | | | |")
    else:
        print(f"| {name} | {t:.2f} | | | {ll_t:.4f} | {ll_o:.4f} | {abs(ll_o - ll_t) / abs(ll_t):.1e} |")
print(f"| whole `tenure analytics clv --from-summary` (read, fit, score, write) | | {total:.2f} | | | | |")
PY
