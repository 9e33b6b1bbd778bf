#!/usr/bin/env bash
# Service under load and at scale.
#
# (1) Tickets through the API: one new ticket to three status changes (open ⇄ waiting for
#     the customer) on SEED_TICKETS open tickets, 64 connections, SQLite and PostgreSQL,
#     with p50 / p99 and the requests refused.
# (2) At scale (SQLite and PostgreSQL): TICKETS tickets (default 500,000; 2 % open, a tenth
#     of those overdue) and RESPONSES survey answers (default 1,000,000: NPS, CSAT and
#     SERVQUAL), seeded by SQL; then `tenure service scan` (the SLA breach scan) and
#     `tenure service report` (NPS / CSAT per month, SERVQUAL gaps, agents, breaches),
#     wall time and peak memory.
#
#   bench/service.sh
#   TICKETS=50000 RESPONSES=100000 DURATION=10s bench/service.sh
#   ONLY_SCALE=1 bench/service.sh     # the scale runs only
#
# Needs: wrk, sqlite3, psql, /usr/bin/time; PostgreSQL at $PG_ADMIN_URL.
set -euo pipefail
cd "$(dirname "$0")/.."

N=${N:-10000}
SEED_TICKETS=${SEED_TICKETS:-20000}
TICKETS=${TICKETS:-500000}
RESPONSES=${RESPONSES:-1000000}
DURATION=${DURATION:-20s}
CONNECTIONS=${CONNECTIONS:-64}
THREADS=2
PG_ADMIN_URL=${PG_ADMIN_URL:-postgres://postgres@127.0.0.1:5432/postgres}
PORT=18183

for tool in wrk sqlite3 psql /usr/bin/time; do
  command -v "$tool" >/dev/null || { echo "$tool is missing (apt-get install -y wrk sqlite3 postgresql-client time)" >&2; exit 1; }
done
if [ -n "${TENURE_BIN:-}" ]; then
  BIN=$TENURE_BIN
else
  cargo build --release -q -p tenure
  BIN=$PWD/target/release/tenure
fi
WORK=$(mktemp -d)
PGDB=tenure_service_$$
SERVER=
cleanup() {
  [ -n "$SERVER" ] && kill "$SERVER" 2>/dev/null || true
  psql "$PG_ADMIN_URL" -q -c "DROP DATABASE IF EXISTS $PGDB WITH (FORCE)" >/dev/null 2>&1 || true
  psql "$PG_ADMIN_URL" -q -c "DROP DATABASE IF EXISTS ${PGDB}_scale WITH (FORCE)" >/dev/null 2>&1 || true
  rm -rf "$WORK"
}
trap cleanup EXIT

to_ms() { awk '{ v=$1; if (v ~ /us$/) { sub(/us$/,"",v); v=v/1000 } else if (v ~ /ms$/) { sub(/ms$/,"",v) } else if (v ~ /s$/) { sub(/s$/,"",v); v=v*1000 } printf "%.2f", v }'; }

# Runs SQL on the database at $1 (sqlite:// or postgres://).
sql() {
  case $1 in
    sqlite://*) local f=${1#sqlite://}; sqlite3 "${f%%\?*}" ;;
    *) psql -q -v ON_ERROR_STOP=1 "$1" >/dev/null ;;
  esac
}

ROWS=()
load() {
  local label=$1 url=$2
  echo "== $label: $N customers, $SEED_TICKETS open tickets" >&2
  DATABASE_URL=$url "$BIN" seed-customers --count "$N" --seed 42 >/dev/null 2>"$WORK/seed.log"
  TOKEN=$(DATABASE_URL=$url "$BIN" token create --name bench --role admin | tail -n1)
  local now; now=$(date +%s)000000
  sql "$url" <<SQL
INSERT INTO tickets (id, customer_id, subject, category, priority, channel, status, opened_at,
  first_response_due, resolution_due, created_by, updated_at)
SELECT i, 1 + (i % $N), 'Seeded', 'other', 'normal', 'phone', 'open', $now, $now + 864000000000,
  $now + 8640000000000, 'bench', $now
FROM (WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < $SEED_TICKETS) SELECT i FROM n) s;
SQL
  case $url in postgres*) sql "$url" <<<"SELECT setval(pg_get_serial_sequence('tickets', 'id'), $SEED_TICKETS);" ;; esac
  export TOKEN N M=$SEED_TICKETS THREADS
  DATABASE_URL=$url TENURE_ADDR=127.0.0.1:$PORT RUST_LOG=warn "$BIN" serve >"$WORK/serve.log" 2>&1 &
  SERVER=$!
  for _ in $(seq 1 100); do curl -sf "http://127.0.0.1:$PORT/readyz" >/dev/null && break; sleep 0.1; done
  CREATE_ONLY=1 wrk -t$THREADS -c"$CONNECTIONS" -d3s -s bench/tickets.lua "http://127.0.0.1:$PORT" >/dev/null 2>&1
  echo "== $label: open and move tickets" >&2
  local out rps p50 p99 non2xx
  out=$(wrk -t$THREADS -c"$CONNECTIONS" -d"$DURATION" --latency -s bench/tickets.lua "http://127.0.0.1:$PORT" 2>&1)
  rps=$(echo "$out" | awk '/Requests\/sec/ {printf "%.0f", $2}')
  p50=$(echo "$out" | awk '$1=="50%" {print $2}' | to_ms)
  p99=$(echo "$out" | awk '$1=="99%" {print $2}' | to_ms)
  non2xx=$(echo "$out" | awk '/Non-2xx/ {print $5}')
  kill "$SERVER"; wait "$SERVER" 2>/dev/null || true; SERVER=
  ROWS+=("$label|$rps|$p50|$p99|${non2xx:-0}")
}

# Seeds the scale workload into the migrated database at $1.
seed_scale() {
  local url=$1 now day minute open overdue
  now=$(date +%s)000000
  day=86400000000
  minute="CAST(60000000 AS BIGINT)"
  open=$((TICKETS / 50))
  overdue=$((open / 10))
  DATABASE_URL=$url "$BIN" seed-customers --count 100000 --seed 7 >/dev/null 2>"$WORK/seed.log"
  sql "$url" <<SQL
INSERT INTO surveys (id, name, kind, definition, active, created_at, updated_at) VALUES
  (1, 'NPS', 'nps', '{"title":{},"questions":[]}', 1, $now, $now),
  (2, 'CSAT', 'csat', '{"title":{},"questions":[]}', 1, $now, $now),
  (3, 'SERVQUAL', 'servqual', '{"title":{},"questions":[]}', 1, $now, $now);
-- Tickets over two years; the last $open still open (opened in the last week), $overdue of
-- them past both due times.
INSERT INTO tickets (id, customer_id, subject, category, priority, channel, status, assignee_id, opened_at,
  first_response_at, first_response_due, resolution_due, resolved_at, closed_at, first_response_minutes,
  resolution_minutes, first_response_breached, resolution_breached, created_by, updated_at)
SELECT i, 1 + (i * 7) % 100000, 'Seeded',
  CASE i % 7 WHEN 0 THEN 'product_quality' WHEN 1 THEN 'late_delivery' WHEN 2 THEN 'wrong_specification'
    WHEN 3 THEN 'packaging' WHEN 4 THEN 'service_attitude' WHEN 5 THEN 'billing' ELSE 'other' END,
  CASE i % 4 WHEN 0 THEN 'urgent' WHEN 1 THEN 'high' WHEN 2 THEN 'normal' ELSE 'low' END,
  'phone', CASE WHEN i > $TICKETS - $open THEN 'open' ELSE 'closed' END, NULL,
  CASE WHEN i > $TICKETS - $open THEN $now - ($TICKETS - i) * $minute ELSE $now - ($TICKETS - i) * 120 * $minute END,
  CASE WHEN i > $TICKETS - $open THEN NULL ELSE $now - ($TICKETS - i) * 120 * $minute + 90 * $minute END,
  CASE WHEN i > $TICKETS - $overdue THEN $now - $minute WHEN i > $TICKETS - $open THEN $now + 30 * $day
    ELSE $now - ($TICKETS - i) * 120 * $minute + 480 * $minute END,
  CASE WHEN i > $TICKETS - $overdue THEN $now - $minute WHEN i > $TICKETS - $open THEN $now + 60 * $day
    ELSE $now - ($TICKETS - i) * 120 * $minute + 2400 * $minute END,
  CASE WHEN i > $TICKETS - $open THEN NULL ELSE $now - ($TICKETS - i) * 120 * $minute + 1000 * $minute END,
  CASE WHEN i > $TICKETS - $open THEN NULL ELSE $now - ($TICKETS - i) * 120 * $minute + 1000 * $minute END,
  CASE WHEN i > $TICKETS - $open THEN NULL ELSE 90 END,
  CASE WHEN i > $TICKETS - $open THEN NULL ELSE 1000 END, 0, 0, 'bench', $now
FROM (WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < $TICKETS) SELECT CAST(i AS BIGINT) AS i FROM n) s;
-- Answers over two years: 45 % NPS, 45 % CSAT, 10 % SERVQUAL.
INSERT INTO survey_responses (id, survey_id, kind, customer_id, channel, score, nps_group, answered_at, recorded_by,
  e_tangibles, p_tangibles, e_reliability, p_reliability, e_responsiveness, p_responsiveness,
  e_assurance, p_assurance, e_empathy, p_empathy, gap, weighted_gap)
SELECT i, CASE WHEN i % 20 < 9 THEN 1 WHEN i % 20 < 18 THEN 2 ELSE 3 END,
  CASE WHEN i % 20 < 9 THEN 'nps' WHEN i % 20 < 18 THEN 'csat' ELSE 'servqual' END,
  1 + (i * 13) % 100000,
  CASE i % 3 WHEN 0 THEN 'phone' WHEN 1 THEN 'email' ELSE 'web' END,
  CASE WHEN i % 20 < 9 THEN (i * 7) % 11 WHEN i % 20 < 18 THEN 1 + (i * 3) % 5 ELSE NULL END,
  CASE WHEN i % 20 < 9 THEN CASE WHEN (i * 7) % 11 >= 9 THEN 'promoter' WHEN (i * 7) % 11 >= 7 THEN 'passive' ELSE 'detractor' END ELSE NULL END,
  $now - (i % 730) * $day - (i % 1000) * $minute, 'bench',
  CASE WHEN i % 20 >= 18 THEN 6.0 + (i % 2) * 0.5 END, CASE WHEN i % 20 >= 18 THEN 5.0 + (i % 3) * 0.5 END,
  CASE WHEN i % 20 >= 18 THEN 6.5 END, CASE WHEN i % 20 >= 18 THEN 5.5 + (i % 2) * 0.5 END,
  CASE WHEN i % 20 >= 18 THEN 6.2 END, CASE WHEN i % 20 >= 18 THEN 5.0 END,
  CASE WHEN i % 20 >= 18 THEN 6.0 END, CASE WHEN i % 20 >= 18 THEN 6.0 END,
  CASE WHEN i % 20 >= 18 THEN 5.8 END, CASE WHEN i % 20 >= 18 THEN 5.6 END,
  CASE WHEN i % 20 >= 18 THEN -0.8 END, CASE WHEN i % 20 >= 18 THEN -0.9 END
FROM (WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < $RESPONSES) SELECT CAST(i AS BIGINT) AS i FROM n) s;
SQL
}

SCALE=()
# Wall time and peak resident memory of one command (on SQLite it counts the database pages
# the store maps into memory), and its first output lines.
run() {
  local label=$1 url=$2 what=$3; shift 3
  /usr/bin/time -f "%e %M" -o "$WORK/time" env DATABASE_URL="$url" RUST_LOG=error "$BIN" "$@" >"$WORK/out" 2>"$WORK/err" || { cat "$WORK/err" >&2; exit 1; }
  local secs kb
  read -r secs kb <"$WORK/time"
  SCALE+=("$label|$what|$secs|$((kb / 1024))|$(head -n4 "$WORK/out" | tr '\n' ';' | sed 's/;$//; s/;/; /g')")
}

scale() {
  local label=$1 url=$2 t0 seed_s
  echo "== $label: $TICKETS tickets, $RESPONSES answers" >&2
  DATABASE_URL=$url "$BIN" migrate >/dev/null
  t0=$(date +%s.%N)
  seed_scale "$url"
  sql "$url" <<<"ANALYZE;"
  seed_s=$(echo "$(date +%s.%N) - $t0" | bc)
  echo "   seeded in ${seed_s}s" >&2
  run "$label" "$url" "SLA breach scan" service scan
  run "$label" "$url" "SLA scan again (nothing new)" service scan
  run "$label" "$url" "service report, 12 months" service report --months 12
  run "$label" "$url" "service report, 24 months" service report --months 24
}

if [ -z "${ONLY_SCALE:-}" ]; then
load SQLite "sqlite://$WORK/load.db?mode=rwc"
psql "$PG_ADMIN_URL" -q -c "CREATE DATABASE $PGDB" >/dev/null
load PostgreSQL "${PG_ADMIN_URL%/*}/$PGDB"
fi
scale SQLite "sqlite://$WORK/scale.db?mode=rwc"
psql "$PG_ADMIN_URL" -q -c "CREATE DATABASE ${PGDB}_scale" >/dev/null
scale PostgreSQL "${PG_ADMIN_URL%/*}/${PGDB}_scale"

echo
echo "Tickets: one opened to three status changes, $CONNECTIONS connections, $DURATION ($(nproc) cores)"
echo
echo "| database | requests/s | p50 ms | p99 ms | refused |"
echo "|---|---:|---:|---:|---:|"
for r in "${ROWS[@]}"; do IFS='|' read -r a b c d e <<<"$r"; echo "| $a | $b | $c | $d | $e |"; done
echo
echo "At scale: $TICKETS tickets ($((TICKETS / 50)) open, $((TICKETS / 500)) overdue), $RESPONSES survey answers"
echo
echo "| database | run | seconds | peak MB | output |"
echo "|---|---|---:|---:|---|"
for r in "${SCALE[@]}"; do IFS='|' read -r a b c d e <<<"$r"; echo "| $a | $b | $c | $d | $e |"; done
