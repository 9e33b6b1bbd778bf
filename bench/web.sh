#!/usr/bin/env bash
# The web application under 16 signed-in sessions: server time p50 / p99 and throughput
# of the dashboard, the customer list, a search and the 360° page, on SQLite and on
# PostgreSQL holding a generated business of N customers (default 1,000,000, ~11M orders;
# order lines are left out to keep the load short), with the models fitted; and the weight
# of each page (HTML + CSS + JS, gzip, as a browser fetches it). Prints markdown tables.
#
#   bench/web.sh                      # 1,000,000 customers, 20 s per page
#   N=100000 DURATION=10s bench/web.sh sqlite
#   WORK=/tmp/w KEEP=1 bench/web.sh   # keeps the loaded databases in WORK for the next run
#
# Needs: wrk (apt-get install -y wrk), PostgreSQL at $PG_ADMIN_URL.
set -euo pipefail
cd "$(dirname "$0")/.."

N=${N:-1000000}
DURATION=${DURATION:-20s}
WHICH=${1:-both}
PG_ADMIN_URL=${PG_ADMIN_URL:-postgres://postgres@127.0.0.1:5432/postgres}
PORT=18182
export N

command -v wrk >/dev/null || { echo "wrk is missing: apt-get install -y wrk" >&2; exit 1; }
if [ -n "${TENURE_BIN:-}" ]; then
  BIN=$TENURE_BIN
else
  cargo build --release -q -p tenure
  BIN=$PWD/target/release/tenure
fi
WORK=${WORK:-$(mktemp -d)}
DATA=${DATA:-$WORK/data}
PGDB=tenure_web_bench
SERVER=
cleanup() {
  [ -n "$SERVER" ] && kill "$SERVER" 2>/dev/null || true
  [ -n "${KEEP:-}" ] || psql "$PG_ADMIN_URL" -q -c "DROP DATABASE IF EXISTS $PGDB WITH (FORCE)" >/dev/null 2>&1 || true
}
trap cleanup EXIT

if [ ! -f "$DATA/manifest.json" ]; then
  echo "== generating $N customers" >&2
  "$BIN" generate --customers "$N" --seed 42 --out "$DATA" >/dev/null
fi

to_ms() { awk '{ v=$1; if (v ~ /us$/) { sub(/us$/,"",v); v=v/1000 } else if (v ~ /ms$/) { sub(/ms$/,"",v) } else if (v ~ /s$/) { sub(/s$/,"",v); v=v*1000 } printf "%.1f", v }'; }

ROWS=()
WEIGHTS=()
measure() { # label url
  local label=$1 url=$2
  if [ ! -f "$WORK/$label.loaded" ]; then
    echo "== $label: importing" >&2
    for kind in customers products orders interactions; do
      DATABASE_URL=$url "$BIN" import "$kind" "$DATA/$kind.csv" --batch 20000 >/dev/null
    done
    # The worker runs what a new server would run first: today's model refresh.
    echo "== $label: fitting the models" >&2
    DATABASE_URL=$url "$BIN" worker --until-idle >/dev/null
    echo "bench-password-1" | DATABASE_URL=$url "$BIN" user create --email bench@shop.example --role manager --password-stdin >/dev/null
    touch "$WORK/$label.loaded"
  fi
  DATABASE_URL=$url RUST_LOG=warn "$BIN" serve --addr "127.0.0.1:$PORT" >"$WORK/serve.log" 2>&1 &
  SERVER=$!
  for _ in $(seq 1 300); do curl -sf "http://127.0.0.1:$PORT/readyz" >/dev/null && break; sleep 0.1; done
  local cookies=""
  for _ in $(seq 1 16); do
    local jar=$WORK/jar
    rm -f "$jar"
    local csrf
    csrf=$(curl -s -c "$jar" "http://127.0.0.1:$PORT/login" | grep -o 'name="_csrf" value="[^"]*"' | sed 's/.*value="//;s/"//')
    curl -s -b "$jar" -c "$jar" -o /dev/null --data-urlencode "_csrf=$csrf" --data-urlencode "email=bench@shop.example" \
      --data-urlencode "password=bench-password-1" --data-urlencode "next=/" "http://127.0.0.1:$PORT/login"
    cookies="$cookies $(awk '$6 == "tenure_session" {print $7}' "$jar")"
  done
  export COOKIES=$cookies
  for page in dashboard list search customer; do
    PAGE=$page wrk -t2 -c16 -d3s --timeout 30s -s bench/web.lua "http://127.0.0.1:$PORT" >/dev/null 2>&1
    local out rps p50 p99 bad
    out=$(PAGE=$page wrk -t2 -c16 -d"$DURATION" --timeout 30s --latency -s bench/web.lua "http://127.0.0.1:$PORT" 2>&1)
    rps=$(echo "$out" | awk '/Requests\/sec/ {printf "%.0f", $2}')
    p50=$(echo "$out" | awk '$1=="50%" {print $2}' | to_ms)
    p99=$(echo "$out" | awk '$1=="99%" {print $2}' | to_ms)
    bad=$(echo "$out" | awk '/Non-2xx/ {print $5}')
    ROWS+=("| $label | $page | $p50 | $p99 | $rps | ${bad:-0} |")
  done
  # The first dashboard after a minute computes the figures afresh (they are reused for a
  # minute): its time shows what the cache hides.
  local first
  first=$(awk '{print $1}' <<<"$cookies")
  sleep 61
  local cold
  local from to
  from=$(date -d '-3 years' +%F)
  to=$(date +%F)
  cold=$(curl -s -o /dev/null -w '%{http_code} %{time_total}' -H "Cookie: tenure_session=$first" "http://127.0.0.1:$PORT/?from=$from&to=$to")
  ROWS+=("| $label | dashboard, 3 years computed afresh (one request, HTTP ${cold% *}) | $(awk -v t="${cold#* }" 'BEGIN{printf "%.0f", t*1000}') | | | |")
  if [ ${#WEIGHTS[@]} -eq 0 ]; then
    local css js
    css=$(curl -s --compressed -o /dev/null -w '%{size_download}' -H 'Accept-Encoding: gzip' "http://127.0.0.1:$PORT/assets/app.css")
    js=$(curl -s -o /dev/null -w '%{size_download}' -H 'Accept-Encoding: gzip' "http://127.0.0.1:$PORT/assets/htmx.min.js")
    for p in "/" "/customers" "/customers?q=%E5%B0%8F%E6%98%8E" "/customers/1" "/duplicates" "/import" "/analytics" "/login"; do
      local html cookie="Cookie: tenure_session=$first"
      [ "$p" = /login ] && cookie="X-None: 1"
      html=$(curl -s -o /dev/null -w '%{size_download}' -H 'Accept-Encoding: gzip' -H "$cookie" "http://127.0.0.1:$PORT$p")
      WEIGHTS+=("| $p | $html | $css | $js | $((html + css + js)) |")
    done
  fi
  kill "$SERVER"; wait "$SERVER" 2>/dev/null || true; SERVER=
}

if [ "$WHICH" != postgres ]; then
  [ -f "$WORK/sqlite.loaded" ] || rm -f "$WORK/web.db"*
  measure sqlite "sqlite://$WORK/web.db?mode=rwc"
fi
if [ "$WHICH" != sqlite ]; then
  [ -f "$WORK/postgres.loaded" ] || psql "$PG_ADMIN_URL" -q -c "DROP DATABASE IF EXISTS $PGDB WITH (FORCE)" -c "CREATE DATABASE $PGDB" >/dev/null
  measure postgres "${PG_ADMIN_URL%/*}/$PGDB"
fi

echo
echo "$N customers, 16 sessions (wrk -t2 -c16), $DURATION per page, $(nproc) cores"
echo
echo "| database | page | p50 ms | p99 ms | req/s | non-2xx |"
echo "|---|---|---:|---:|---:|---:|"
printf '%s\n' "${ROWS[@]}"
echo
echo "Page weight, bytes as sent with gzip (CSS and JS are cached after the first page):"
echo
echo "| page | HTML | CSS | JS | total |"
echo "|---|---:|---:|---:|---:|"
printf '%s\n' "${WEIGHTS[@]}"
