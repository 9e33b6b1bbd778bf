#!/usr/bin/env bash
# The API under mixed load with every trust layer on (tokens, roles, the audit log with
# its before/after values, idempotency keys, webhooks' outbox): four reads of a customer to
# one interaction recorded, at 64 and at 256 connections, SQLite and PostgreSQL; req/s,
# p50, p99 and the requests that failed.
#
#   bench/trust.sh
#   N=20000 DURATION=10s bench/trust.sh
#
# Needs: wrk, psql; PostgreSQL at $PG_ADMIN_URL.
set -euo pipefail
cd "$(dirname "$0")/.."

N=${N:-100000}
DURATION=${DURATION:-20s}
PG_ADMIN_URL=${PG_ADMIN_URL:-postgres://postgres@127.0.0.1:5432/postgres}
PORT=18187
export N

for tool in wrk psql curl; do
  command -v "$tool" >/dev/null || { echo "$tool is missing (apt-get install -y wrk postgresql-client curl)" >&2; exit 1; }
done
if [ -n "${TENURE_BIN:-}" ]; then
  BIN=$TENURE_BIN
else
  cargo build --release -q -p tenure
  BIN=$PWD/target/release/tenure
fi
WORK=$(mktemp -d)
PGDB=tenure_trust_$$
SERVER=
cleanup() {
  [ -n "$SERVER" ] && kill "$SERVER" 2>/dev/null || true
  psql "$PG_ADMIN_URL" -q -c "DROP DATABASE IF EXISTS $PGDB WITH (FORCE)" >/dev/null 2>&1 || true
  rm -rf "$WORK"
}
trap cleanup EXIT

to_ms() { awk '{ v=$1; if (v ~ /us$/) { sub(/us$/,"",v); v=v/1000 } else if (v ~ /ms$/) { sub(/ms$/,"",v) } else if (v ~ /s$/) { sub(/s$/,"",v); v=v*1000 } printf "%.2f", v }'; }

ROWS=()
measure() {
  local label=$1 url=$2
  echo "== $label: $N customers" >&2
  DATABASE_URL=$url "$BIN" seed-customers --count "$N" --seed 42 >/dev/null 2>"$WORK/seed.log"
  TOKEN=$(DATABASE_URL=$url "$BIN" token create --name bench --role agent | tail -n1)
  export TOKEN
  DATABASE_URL=$url TENURE_ADDR=127.0.0.1:$PORT RUST_LOG=warn "$BIN" serve >"$WORK/serve.log" 2>&1 &
  SERVER=$!
  for _ in $(seq 1 100); do curl -sf "http://127.0.0.1:$PORT/readyz" >/dev/null && break; sleep 0.1; done
  wrk -t2 -c64 -d5s -s bench/get_customer.lua "http://127.0.0.1:$PORT" >/dev/null 2>&1
  for c in 64 256; do
    echo "== $label: mixed, $c connections" >&2
    local out rps p50 p99 non2xx socket
    out=$(RUN="$label-$c" wrk -t2 -c"$c" -d"$DURATION" --latency -s bench/mixed.lua "http://127.0.0.1:$PORT" 2>&1)
    rps=$(echo "$out" | awk '/Requests\/sec/ {printf "%.0f", $2}')
    p50=$(echo "$out" | awk '$1=="50%" {print $2}' | to_ms)
    p99=$(echo "$out" | awk '$1=="99%" {print $2}' | to_ms)
    non2xx=$(echo "$out" | awk '/Non-2xx/ {print $5}')
    socket=$(echo "$out" | awk '/Socket errors/ {sub(/^ *Socket errors: */, ""); print}')
    ROWS+=("| $label | $c | $rps | $p50 | $p99 | ${non2xx:-0} | ${socket:-none} |")
  done
  kill "$SERVER"; wait "$SERVER" 2>/dev/null || true; SERVER=
}

measure SQLite "sqlite://$WORK/bench.db?mode=rwc"
psql "$PG_ADMIN_URL" -q -c "CREATE DATABASE $PGDB" >/dev/null
measure PostgreSQL "${PG_ADMIN_URL%/*}/$PGDB"

echo
echo "Mixed load: 4 GET /api/v1/customers/{id} to 1 POST /api/v1/interactions (with an Idempotency-Key), $N customers, $DURATION each (wrk, 2 threads, same 2-core machine):"
echo
echo "| database | connections | req/s | p50 ms | p99 ms | non-2xx | socket errors |"
echo "|---|---:|---:|---:|---:|---:|---|"
printf '%s\n' "${ROWS[@]}"
