#!/usr/bin/env bash
# Reads under load: GET /api/v1/customers/{id} and customer search under 64 connections,
# on SQLite and on PostgreSQL, each holding N synthetic customers (default 1,000,000).
# Bare PostgreSQL primary-key selects (pgbench -S, same connections) are measured in the
# same run as the reference. Prints a markdown table.
#
#   bench/api.sh                 # 1,000,000 customers, 20 s per measurement
#   N=100000 DURATION=10s bench/api.sh
#   LOG=info bench/api.sh        # with the request log on, as `tenure serve` runs by default
#
# Needs: wrk and pgbench (apt-get install -y wrk postgresql-contrib), PostgreSQL at
# $PG_ADMIN_URL.
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/lib.sh

N=${N:-1000000}
DURATION=${DURATION:-20s}
CONNECTIONS=${CONNECTIONS:-64}
PG_ADMIN_URL=${PG_ADMIN_URL:-postgres://postgres@127.0.0.1:5432/postgres}
LOAD_SEED=42
PORT=18181
export N LOAD_SEED

command -v wrk >/dev/null || { echo "wrk is missing: apt-get install -y wrk" >&2; exit 1; }
# TENURE_BIN runs another build of tenure (an earlier commit's, to compare).
if [ -n "${TENURE_BIN:-}" ]; then
  BIN=$TENURE_BIN
else
  cargo build --release -q -p tenure
  BIN=$PWD/target/release/tenure
fi
WORK=$(mktemp -d)
PGDB=tenure_bench_$$
SERVER=
cleanup() {
  [ -n "$SERVER" ] && kill "$SERVER" 2>/dev/null || true
  psql "$PG_ADMIN_URL" -q -c "DROP DATABASE IF EXISTS $PGDB WITH (FORCE)" >/dev/null 2>&1 || true
  psql "$PG_ADMIN_URL" -q -c "DROP DATABASE IF EXISTS ${PGDB}_pgbench WITH (FORCE)" >/dev/null 2>&1 || true
  rm -rf "$WORK"
}
trap cleanup EXIT

# wrk prints "Requests/sec: X" and, with --latency, "50% 1.23ms" ... ; normalise to ms.
to_ms() { awk '{ v=$1; if (v ~ /us$/) { sub(/us$/,"",v); v=v/1000 } else if (v ~ /ms$/) { sub(/ms$/,"",v) } else if (v ~ /s$/) { sub(/s$/,"",v); v=v*1000 } printf "%.2f", v }'; }
run_wrk() {
  local script=$1 out
  out=$(wrk -t2 -c"$CONNECTIONS" -d"$DURATION" --latency -s "bench/$script" "http://127.0.0.1:$PORT" 2>&1)
  local rps p50 p99 errors
  rps=$(echo "$out" | awk '/Requests\/sec/ {printf "%.0f", $2}')
  p50=$(echo "$out" | awk '$1=="50%" {print $2}' | to_ms)
  p99=$(echo "$out" | awk '$1=="99%" {print $2}' | to_ms)
  errors=$(echo "$out" | awk '/Non-2xx/ {print $5} /Socket errors/ {print}' | tr '\n' ' ')
  echo "$rps|$p50|$p99|${errors:-0}"
}

ROWS=()
measure() {
  local label=$1 url=$2
  echo "== $label: loading $N customers" >&2
  local t0=$(date +%s.%N)
  DATABASE_URL=$url "$BIN" seed-customers --count "$N" --seed "$LOAD_SEED" >/dev/null 2>"$WORK/seed.log"
  local load_s=$(echo "$(date +%s.%N) - $t0" | bc)
  TOKEN=$(DATABASE_URL=$url "$BIN" token create --name bench --role read_only | tail -n1)
  export TOKEN
  DATABASE_URL=$url TENURE_ADDR=127.0.0.1:$PORT RUST_LOG=${LOG:-warn} "$BIN" serve >"$WORK/serve.log" 2>&1 &
  SERVER=$!
  for _ in $(seq 1 100); do curl -sf "http://127.0.0.1:$PORT/readyz" >/dev/null && break; sleep 0.1; done
  # Warm up caches, then measure.
  wrk -t2 -c"$CONNECTIONS" -d5s -s bench/get_customer.lua "http://127.0.0.1:$PORT" >/dev/null 2>&1
  echo "== $label: GET customer" >&2
  ROWS+=("$label|GET /api/v1/customers/{id}|$(run_wrk get_customer.lua)")
  echo "== $label: search" >&2
  ROWS+=("$label|GET /api/v1/customers?q=…|$(run_wrk search.lua)")
  # Private memory: SQLite reads through a shared memory map of the file, whose pages
  # the kernel may drop at will and which VmHWM would count too.
  local rss=$(awk '/RssAnon/ {printf "%.0f", $2/1024}' "/proc/$SERVER/status")
  kill "$SERVER"; wait "$SERVER" 2>/dev/null || true; SERVER=
  echo "$label load: $(printf %.1f "$load_s") s for $N customers; server private RSS ${rss} MiB" >&2
  LOADS+=("| $label | $(printf %.1f "$load_s") | $(echo "$N / $load_s" | bc) | $rss |")
}

LOADS=()
measure SQLite "sqlite://$WORK/bench.db?mode=rwc"
psql "$PG_ADMIN_URL" -q -c "CREATE DATABASE $PGDB" >/dev/null
PG_URL=${PG_ADMIN_URL%/*}/$PGDB
measure PostgreSQL "$PG_URL"

echo "== bare PostgreSQL: pgbench -S" >&2
psql "$PG_ADMIN_URL" -q -c "CREATE DATABASE ${PGDB}_pgbench" >/dev/null
PGB_URL=${PG_ADMIN_URL%/*}/${PGDB}_pgbench
pgbench -q -i -s 10 "$PGB_URL" >/dev/null 2>&1
secs=${DURATION%s}
PGB_TPS=$(pgbench -S -n -c "$CONNECTIONS" -j 2 -T "$secs" "$PGB_URL" 2>/dev/null | awk '/^tps/ {printf "%.0f", $3}')

echo
echo "Reads under $CONNECTIONS connections, $N customers, $DURATION each (wrk, 2 threads, same machine):"
echo
echo "| database | request | req/s | p50 ms | p99 ms | vs bare PostgreSQL PK select | errors |"
echo "|---|---|---:|---:|---:|---:|---|"
for r in "${ROWS[@]}"; do
  IFS='|' read -r db req rps p50 p99 errors <<<"$r"
  ratio=$(echo "scale=2; $rps / $PGB_TPS" | bc)
  echo "| $db | $req | $rps | $p50 | $p99 | ${ratio}× | $errors |"
  result "API reads: $req, $CONNECTIONS connections, $db (p99 $p99 ms)" "$rps" req/s "bare PostgreSQL PK select (pgbench -S)" "$PGB_TPS"
done
echo "| PostgreSQL (bare) | pgbench -S (primary-key select) | $PGB_TPS | | | 1.00× | |"
echo
echo "| database | load s | customers/s | server private memory MiB (after the runs) |"
echo "|---|---:|---:|---:|"
printf '%s\n' "${LOADS[@]}"
