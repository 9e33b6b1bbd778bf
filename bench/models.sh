#!/usr/bin/env bash
# Model-fitting benchmark: simulate a seeded N-customer summary (default 1,000,000) from the
# BG/NBD and Gamma-Gamma processes, then fit it with Python's lifetimes 0.11.3 and with
# `tenure analytics clv --from-summary` in the same run, printing seconds, log-likelihoods
# and the ratio. Installs lifetimes into a venv under $BENCH_DIR (default /tmp/tenure-bench).
#
# Pareto/NBD is compared on its own seeded N_PARETO-customer summary (default 100,000) drawn
# from the Pareto/NBD process.
#
#   bench/models.sh [N] [N_PARETO]
set -euo pipefail
. "$(dirname "$0")/lib.sh"

N=${1:-1000000}
N_PARETO=${2:-100000}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
BIN=${TENURE_BIN:-$ROOT/target/release/tenure}
WORK=${BENCH_DIR:-/tmp/tenure-bench}
VENV=${BENCH_VENV:-$WORK/venv}
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
OURS=$(DATABASE_URL="sqlite://$WORK/models.db?mode=rwc" /usr/bin/time -f "%M" -o "$WORK/clv.time" \
  "$BIN" analytics clv --from-summary "$SUMMARY" --out "$WORK/predictions-$N.csv" --format json)
END=$(date +%s.%N)
CLV_MIB=$(( $(cat "$WORK/clv.time") / 1024 ))

PARETO=$WORK/pareto-$N_PARETO.csv
[ -f "$PARETO" ] || "$VENV/bin/python" "$ROOT/bench/models.py" simulate-pareto "$N_PARETO" "$PARETO"
THEIRS_PARETO=$("$VENV/bin/python" "$ROOT/bench/models.py" lifetimes-pareto "$PARETO")
OURS_PARETO=$(DATABASE_URL="sqlite://$WORK/models.db?mode=rwc" "$BIN" analytics clv --model pareto-nbd \
  --from-summary "$PARETO" --out "$WORK/predictions-pareto-$N_PARETO.csv" --format json)

"$VENV/bin/python" - "$THEIRS" "$OURS" "$START" "$END" "$N" "$THEIRS_PARETO" "$OURS_PARETO" \
  "$WORK/predictions-pareto-$N_PARETO.csv" "$N_PARETO" <<'PY'
import csv, json, sys
theirs, ours = json.loads(sys.argv[1]), json.loads(sys.argv[2])
total = float(sys.argv[4]) - float(sys.argv[3])
n = int(sys.argv[5])
theirs_p, ours_p = json.loads(sys.argv[6]), json.loads(sys.argv[7])
with open(sys.argv[8]) as f:
    ours_alive = [float(row["p_alive"]) for _, row in zip(range(len(theirs_p["p_alive"])), csv.DictReader(f))]
n_pareto = int(sys.argv[9])
print(f"| model ({n:,} customers) | lifetimes s | Tenure fit s | ratio | lifetimes LL | Tenure LL | rel. diff |")
print("|---|---:|---:|---:|---:|---:|---:|")
# Tenure reports both fits in one number; the command as a whole (read, fit both, score every
# customer, write predictions) is the last row.
bg, gg = theirs["bgnbd"], theirs["gamma_gamma"]
fit = ours["fit_seconds"]
pn = ours_p["pareto_nbd"]
for name, t, o, ll_t, ll_o in [
    ("BG/NBD + Gamma-Gamma fits", bg["seconds"] + gg["seconds"], fit, None, None),
    ("BG/NBD", bg["seconds"], ours["bgnbd"]["fit_seconds"], bg["log_likelihood"], ours["bgnbd"]["log_likelihood"]),
    ("Gamma-Gamma", gg["seconds"], ours["gamma_gamma"]["fit_seconds"], gg["log_likelihood"],
     ours["gamma_gamma"]["log_likelihood"]),
    (f"Pareto/NBD ({n_pareto:,} customers)", theirs_p["seconds"], pn["fit_seconds"],
     theirs_p["log_likelihood"], pn["log_likelihood"]),
]:
    if ll_t is None:
        print(f"| {name} | {t:.2f} | {o:.3f} | {t / o:.0f}× | | | |")
    else:
        print(f"| {name} | {t:.2f} | {o:.3f} | {t / o:.0f}× | {ll_t:.4f} | {ll_o:.4f} | {(ll_o - ll_t) / abs(ll_t):+.1e} |")
print(f"| per-customer scoring of {n:,} customers (P(alive), expected purchases, value, 12-month CLV) | | {ours['score_seconds']:.3f} | | | | |")
print(f"| whole `tenure analytics clv --from-summary` (read, fit, score, write) | | {total:.2f} | | | | |")
gap = max(abs(a - b) for a, b in zip(theirs_p["p_alive"], ours_alive))
print(f"\nPareto/NBD fits: lifetimes r, alpha, s, beta = {', '.join(f'{v:.5f}' for v in theirs_p['params'])}; "
      f"Tenure = {pn['r']:.5f}, {pn['alpha']:.5f}, {pn['s']:.5f}, {pn['beta']:.5f}; "
      f"largest P(alive) difference over the first {len(ours_alive)} customers {gap:.1e} "
      "(each at its own fit; a positive LL difference means Tenure's maximum is higher).")
PY

# For bench/run: the fits and the whole command against lifetimes' fits.
"$VENV/bin/python" - "$THEIRS" "$OURS" "$START" "$END" <<'PY' | while IFS='|' read -r what ours theirs; do result "$what ($N customers)" "$ours" s "lifetimes 0.11.3" "$theirs" "${CLV_MIB}"; done
import json, sys
theirs, ours = json.loads(sys.argv[1]), json.loads(sys.argv[2])
fits = theirs["bgnbd"]["seconds"] + theirs["gamma_gamma"]["seconds"]
print(f"CLV fit, BG/NBD + Gamma-Gamma|{ours['fit_seconds']}|{fits}")
print(f"CLV, whole `analytics clv --from-summary` vs lifetimes' fits|{float(sys.argv[4]) - float(sys.argv[3])}|{fits}")
PY
