#!/usr/bin/env bash
# The duplicate candidates at scale: imports N generated customers (default 1,000,000; the
# generator's small name pool gives many same-name and same-name-and-birthday pairs) into a
# fresh SQLite file (and PostgreSQL with `both`), then measures GET /api/v1/duplicates —
# the first page and pages further down, through their cursors — under CONNECTIONS
# connections with wrk, sampling the server's private memory meanwhile. Prints a table.
#
#   bench/duplicates.sh [CUSTOMERS] [sqlite|both]
#   CONNECTIONS=4 DURATION=30s TENURE_BIN=/path/to/old/tenure bench/duplicates.sh
#
# Needs wrk (apt-get install -y wrk), python3 and, for `both`, PostgreSQL at $PG_ADMIN_URL.
set -euo pipefail
cd "$(dirname "$0")/.."

N=${1:-1000000}
WHICH=${2:-sqlite}
DURATION=${DURATION:-20s}
CONNECTIONS=${CONNECTIONS:-64}
PG_ADMIN_URL=${PG_ADMIN_URL:-postgres://postgres@127.0.0.1:5432/postgres}
WORK=${BENCH_DIR:-/tmp/tenure-bench}
DATA=$WORK/data-$N
PORT=18182
mkdir -p "$WORK"

command -v wrk >/dev/null || { apt-get update -q && apt-get install -y -q wrk; }
if [ -n "${TENURE_BIN:-}" ]; then
  BIN=$TENURE_BIN
else
  cargo build --release -q -p tenure
  BIN=$PWD/target/release/tenure
fi
if [ ! -f "$DATA/manifest.json" ]; then
  "$BIN" generate --customers "$N" --seed 42 --out "$DATA" >/dev/null
fi

RUN=$(mktemp -d)
SERVER=
PGDB=tenure_dup_bench_$$
cleanup() {
  [ -n "$SERVER" ] && kill "$SERVER" 2>/dev/null || true
  psql "$PG_ADMIN_URL" -q -c "DROP DATABASE IF EXISTS $PGDB WITH (FORCE)" >/dev/null 2>&1 || true
  rm -rf "$RUN"
}
trap cleanup EXIT

to_ms() { awk '{ v=$1; if (v ~ /us$/) { sub(/us$/,"",v); v=v/1000 } else if (v ~ /ms$/) { sub(/ms$/,"",v) } else if (v ~ /s$/) { sub(/s$/,"",v); v=v*1000 } printf "%.1f", v }'; }

ROWS=()
measure() {
  local label=$1 url=$2
  echo "== $label: importing $N customers" >&2
  local t0 t1
  t0=$(date +%s.%N)
  DATABASE_URL=$url RUST_LOG=warn "$BIN" import customers "$DATA/customers.csv" --batch 20000 >/dev/null
  t1=$(date +%s.%N)
  local token
  token=$(DATABASE_URL=$url "$BIN" token create --name bench --role admin | tail -n1)
  DATABASE_URL=$url TENURE_ADDR=127.0.0.1:$PORT RUST_LOG=warn "$BIN" serve >"$RUN/serve.log" 2>&1 &
  SERVER=$!
  for _ in $(seq 1 300); do curl -sf "http://127.0.0.1:$PORT/readyz" >/dev/null && break; sleep 0.2; done
  # The first page and nine further pages, by following the cursors.
  TOKEN=$token PORT=$PORT python3 - >"$RUN/paths.txt" <<'PY'
import json, os, urllib.request
path = "/api/v1/duplicates?limit=50"
for _ in range(10):
    print(path)
    req = urllib.request.Request("http://127.0.0.1:%s%s" % (os.environ["PORT"], path),
                                 headers={"Authorization": "Bearer " + os.environ["TOKEN"]})
    page = json.load(urllib.request.urlopen(req, timeout=600))
    if not page.get("next_cursor"):
        break
    path = "/api/v1/duplicates?limit=50&cursor=" + page["next_cursor"]
PY
  cat >"$RUN/pages.lua" <<'LUA'
local paths = {}
for line in io.lines(os.getenv("PATHS")) do paths[#paths + 1] = line end
local auth = "Bearer " .. os.getenv("TOKEN")
request = function()
  return wrk.format("GET", paths[math.random(1, #paths)], { ["Authorization"] = auth })
end
LUA
  # Sample the server's private memory while wrk runs.
  local peak=0
  (while kill -0 "$SERVER" 2>/dev/null; do awk '/RssAnon/ {print $2}' "/proc/$SERVER/status"; sleep 0.25; done) >"$RUN/rss.txt" &
  local sampler=$!
  local out
  out=$(PATHS=$RUN/paths.txt TOKEN=$token wrk -t2 -c"$CONNECTIONS" -d"$DURATION" --timeout 120s --latency \
    -s "$RUN/pages.lua" "http://127.0.0.1:$PORT" 2>&1)
  kill "$sampler" 2>/dev/null || true
  echo "$out" >&2
  peak=$(sort -n "$RUN/rss.txt" | tail -n1)
  local rps p50 p99 errors
  rps=$(echo "$out" | awk '/Requests\/sec/ {printf "%.0f", $2}')
  p50=$(echo "$out" | awk '$1=="50%" {print $2}' | to_ms)
  p99=$(echo "$out" | awk '$1=="99%" {print $2}' | to_ms)
  errors=$(echo "$out" | awk '/Non-2xx|Socket errors/ {print}' | tr '\n' ' ')
  kill "$SERVER"; wait "$SERVER" 2>/dev/null || true; SERVER=
  ROWS+=("| $label | $(printf %.0f "$(echo "$t1 - $t0" | bc)") | $CONNECTIONS | $rps | $p50 | $p99 | $((peak / 1024)) | ${errors:-none} |")
}

measure SQLite "sqlite://$RUN/bench.db?mode=rwc"
if [ "$WHICH" = both ]; then
  psql "$PG_ADMIN_URL" -q -c "CREATE DATABASE $PGDB" >/dev/null
  measure PostgreSQL "${PG_ADMIN_URL%/*}/$PGDB"
fi

echo
echo "GET /api/v1/duplicates (first page and 9 further pages, limit 50), $N generated customers, $DURATION:"
echo
echo "| database | import s | connections | req/s | p50 ms | p99 ms | server peak private MiB | errors |"
echo "|---|---:|---:|---:|---:|---:|---:|---|"
printf '%s\n' "${ROWS[@]}"
