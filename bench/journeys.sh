#!/usr/bin/env bash
# Journeys: messages decided and delivered per second, and the daily evaluation at scale.
#
# (1) Delivery: MESSAGES customers (default 5,000) each get one transactional email from a
#     daily journey, sent to a local SMTP server (aiosmtpd's sink), then one SMS through the
#     signed HTTP gateway (a local sink answering 200). `tenure worker --until-idle` decides
#     every message (renders the template in the customer's language, checks consent, quiet
#     hours and the cap, writes the outbox) and delivers it; one worker, then two at once.
# (2) Evaluation: CUSTOMERS customers (default 1,000,000) with birthdays spread over the
#     year, a tenth in another time zone and one in fifty keeping a lunar birthday;
#     `tenure journeys evaluate` with the birthday journey on (today's birthdays in each
#     customer's zone), again (nothing new), then a holiday-sized run: a journey that admits
#     every customer today (the path a holiday takes: every customer's local date, one
#     enrolment each), and that again.
#
#   bench/journeys.sh
#   MESSAGES=2000 CUSTOMERS=100000 bench/journeys.sh
#
# Needs: python3 with aiosmtpd (Debian python3-aiosmtpd), sqlite3, psql, curl, /usr/bin/time;
# PostgreSQL at $PG_ADMIN_URL.
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/lib.sh

MESSAGES=${MESSAGES:-5000}
CUSTOMERS=${CUSTOMERS:-1000000}
PG_ADMIN_URL=${PG_ADMIN_URL:-postgres://postgres@127.0.0.1:5432/postgres}
PORT=18184
SMTP_PORT=18185
GATEWAY_PORT=18186

for tool in sqlite3 psql curl /usr/bin/time; do
  command -v "$tool" >/dev/null || { echo "$tool is missing (apt-get install -y sqlite3 postgresql-client curl time)" >&2; exit 1; }
done
/usr/bin/python3 -c "import aiosmtpd" 2>/dev/null || { echo "aiosmtpd is missing (apt-get install -y python3-aiosmtpd)" >&2; exit 1; }
if [ -n "${TENURE_BIN:-}" ]; then
  BIN=$TENURE_BIN
else
  cargo build --release -q -p tenure
  BIN=$PWD/target/release/tenure
fi
WORK=$(mktemp -d)
PGDB=tenure_journeys_$$
PIDS=()
SERVER=
cleanup() {
  [ -n "$SERVER" ] && kill "$SERVER" 2>/dev/null || true
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  psql "$PG_ADMIN_URL" -q -c "DROP DATABASE IF EXISTS ${PGDB}_send WITH (FORCE)" >/dev/null 2>&1 || true
  psql "$PG_ADMIN_URL" -q -c "DROP DATABASE IF EXISTS ${PGDB}_eval WITH (FORCE)" >/dev/null 2>&1 || true
  rm -rf "$WORK"
}
trap cleanup EXIT

wait_port() { for _ in $(seq 1 100); do (echo >/dev/tcp/127.0.0.1/"$1") 2>/dev/null && return 0; sleep 0.1; done; echo "nothing listens on $1" >&2; exit 1; }

# The sinks: an SMTP server that accepts and drops, an HTTP gateway that answers 200.
/usr/bin/python3 -m aiosmtpd -n -c aiosmtpd.handlers.Sink -l "127.0.0.1:$SMTP_PORT" >/dev/null 2>&1 &
PIDS+=($!)
/usr/bin/python3 - "$GATEWAY_PORT" >/dev/null 2>&1 <<'PY' &
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
class Sink(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def do_POST(self):
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"{}")
    def log_message(self, *args):
        pass
ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), Sink).serve_forever()
PY
PIDS+=($!)
wait_port "$SMTP_PORT"
wait_port "$GATEWAY_PORT"

# Runs SQL on the database at $1 (sqlite:// or postgres://).
sql() {
  case $1 in
    sqlite://*) local f=${1#sqlite://}; sqlite3 "${f%%\?*}" ;;
    *) psql -q -v ON_ERROR_STOP=1 "$1" >/dev/null ;;
  esac
}

# Starts `tenure serve` on the database at $1, with an admin token in $TOKEN.
serve() {
  TOKEN=$(DATABASE_URL=$1 "$BIN" token create --name "bench-$RANDOM" --role admin | tail -n1)
  DATABASE_URL=$1 TENURE_ADDR=127.0.0.1:$PORT RUST_LOG=warn "$BIN" serve >"$WORK/serve.log" 2>&1 &
  SERVER=$!
  for _ in $(seq 1 100); do curl -sf "http://127.0.0.1:$PORT/readyz" >/dev/null && break; sleep 0.1; done
}
unserve() { kill "$SERVER"; wait "$SERVER" 2>/dev/null || true; SERVER=; }
api() {
  local method=$1 path=$2 body=$3
  curl -sf -X "$method" -H "Authorization: Bearer $TOKEN" -H 'Content-Type: application/json' \
    -d "$body" "http://127.0.0.1:$PORT$path" >/dev/null || { echo "$method $path failed" >&2; cat "$WORK/serve.log" >&2; exit 1; }
}
journey_id() { curl -sf -H "Authorization: Bearer $TOKEN" "http://127.0.0.1:$PORT/api/v1/journeys" | python3 -c "import json,sys; print(next(j['id'] for j in json.load(sys.stdin) if j['name'] == sys.argv[1]))" "$1"; }
# Makes the journey $1 a daily one for everyone, sending template $3 on channel $2.
daily() {
  local id; id=$(journey_id "$1")
  api PATCH "/api/v1/journeys/$id" "{\"enabled\": false, \"definition\": {\"trigger\": {\"type\": \"daily\"}, \"entry\": \"\", \"steps\": [{\"type\": \"send\", \"channel\": \"$2\", \"template\": \"$3\", \"class\": \"transactional\", \"priority\": 5}], \"reentry\": \"never\", \"control_percent\": 0, \"conversion\": {\"kind\": \"purchase\", \"window_days\": 30}, \"late_window_hours\": 12}}"
}

ROWS=()
# Times `tenure worker --until-idle` ($2 of them at once) and records messages per second.
deliver() {
  local label=$1 url=$2 workers=$3 what=$4 t0 t1 sent=0
  t0=$(date +%s.%N)
  for i in $(seq 1 "$workers"); do
    env DATABASE_URL="$url" RUST_LOG=error TENURE_SMTP_URL="smtp://127.0.0.1:$SMTP_PORT" \
      TENURE_SMTP_FROM="Tea House <hello@tea.example.com>" \
      TENURE_SMS_WEBHOOK_URL="http://127.0.0.1:$GATEWAY_PORT/send" TENURE_SMS_WEBHOOK_SECRET=bench \
      "$BIN" worker --until-idle >"$WORK/worker$i.out" 2>"$WORK/worker$i.err" &
    eval "W$i=$!"
  done
  for i in $(seq 1 "$workers"); do
    eval "wait \$W$i" || { cat "$WORK/worker$i.err" >&2; exit 1; }
    sent=$((sent + $(sed -n 's/.* sent \([0-9]*\) messages.*/\1/p' "$WORK/worker$i.out")))
  done
  t1=$(date +%s.%N)
  local secs; secs=$(echo "$t1 - $t0" | bc)
  ROWS+=("$label|$what|$workers|$sent|$(printf '%.2f' "$secs")|$(echo "$sent / $secs" | bc)")
  result "messages decided and delivered: $what, $workers worker(s), $label" "$(echo "$sent / $secs" | bc -l)" msg/s
}

delivery() {
  local label=$1 url=$2
  echo "== $label: $MESSAGES customers, an email and an SMS each" >&2
  DATABASE_URL=$url "$BIN" migrate >/dev/null
  DATABASE_URL=$url "$BIN" seed-customers --count "$MESSAGES" --seed 42 >/dev/null 2>"$WORK/seed.log"
  # Drain the scheduled jobs first, so the runs below time messages only.
  DATABASE_URL=$url RUST_LOG=error "$BIN" worker --until-idle >/dev/null
  serve "$url"
  api POST /api/v1/templates '{"name": "bench.sms", "channel": "sms", "locale": "en", "body": "{{ customer.first_name }}, thank you for shopping with {{ business.name }}."}'
  api POST /api/v1/templates '{"name": "bench.sms", "channel": "sms", "locale": "zh-CN", "body": "{{ customer.name }}，感谢您在{{ business.name }}购物。"}'
  api POST /api/v1/templates '{"name": "bench.sms", "channel": "sms", "locale": "zh-TW", "body": "{{ customer.name }}，感謝您在{{ business.name }}購物。"}'
  daily re_engagement email welcome.thanks
  daily win_back sms bench.sms
  daily birthday email welcome.thanks
  daily holidays sms bench.sms
  unserve
  for phase in "re_engagement|email|1" "win_back|sms|1" "birthday|email|2" "holidays|sms|2"; do
    IFS='|' read -r name channel workers <<<"$phase"
    DATABASE_URL=$url "$BIN" journeys enable "$name" >/dev/null
    DATABASE_URL=$url "$BIN" journeys evaluate >/dev/null
    deliver "$label" "$url" "$workers" "$channel"
    DATABASE_URL=$url "$BIN" journeys disable "$name" >/dev/null
  done
}

SCALE=()
# Wall time and peak resident memory of one command, and its output on one line.
run() {
  local label=$1 url=$2 what=$3; shift 3
  /usr/bin/time -f "%e %M" -o "$WORK/time" env DATABASE_URL="$url" RUST_LOG=error "$BIN" "$@" >"$WORK/out" 2>"$WORK/err" || { cat "$WORK/err" >&2; exit 1; }
  local secs kb
  read -r secs kb <"$WORK/time"
  result "journeys: $what, $CUSTOMERS customers, $label" "$secs" s "" "" "$((kb / 1024))"
  SCALE+=("$label|$what|$secs|$((kb / 1024))|$(tr '\n' ';' <"$WORK/out" | sed 's/;$//; s/;/; /g')")
}

evaluation() {
  local label=$1 url=$2 t0
  echo "== $label: $CUSTOMERS customers" >&2
  DATABASE_URL=$url "$BIN" migrate >/dev/null
  t0=$(date +%s)
  DATABASE_URL=$url "$BIN" seed-customers --count "$CUSTOMERS" --seed 7 >/dev/null 2>"$WORK/seed.log"
  case $url in
    sqlite://*) sql "$url" <<'SQL'
UPDATE customers SET birthday = date('1950-01-01', '+' || ((id * 7919) % 20000) || ' days');
UPDATE customers SET preferences = '{"time_zone":"America/New_York"}' WHERE id % 10 = 3;
UPDATE customers SET preferences = '{"birthday_calendar":"lunar"}' WHERE id % 50 = 7;
SQL
    ;;
    *) sql "$url" <<'SQL'
UPDATE customers SET birthday = to_char(DATE '1950-01-01' + ((id * 7919) % 20000)::int, 'YYYY-MM-DD');
UPDATE customers SET preferences = '{"time_zone":"America/New_York"}' WHERE id % 10 = 3;
UPDATE customers SET preferences = '{"birthday_calendar":"lunar"}' WHERE id % 50 = 7;
VACUUM ANALYZE customers;
SQL
    ;;
  esac
  echo "   seeded in $(($(date +%s) - t0)) s" >&2
  DATABASE_URL=$url "$BIN" journeys enable birthday >/dev/null
  run "$label" "$url" "birthday evaluation" journeys evaluate
  run "$label" "$url" "the same again (nothing new)" journeys evaluate
  DATABASE_URL=$url "$BIN" journeys disable birthday >/dev/null
  serve "$url"
  daily re_engagement email welcome.thanks
  unserve
  DATABASE_URL=$url "$BIN" journeys enable re_engagement >/dev/null
  run "$label" "$url" "holiday-sized: every customer enrolled" journeys evaluate
  run "$label" "$url" "the same again (nothing new)" journeys evaluate
}

delivery SQLite "sqlite://$WORK/send.db?mode=rwc"
psql "$PG_ADMIN_URL" -q -c "CREATE DATABASE ${PGDB}_send" >/dev/null
delivery PostgreSQL "${PG_ADMIN_URL%/*}/${PGDB}_send"
evaluation SQLite "sqlite://$WORK/eval.db?mode=rwc"
psql "$PG_ADMIN_URL" -q -c "CREATE DATABASE ${PGDB}_eval" >/dev/null
evaluation PostgreSQL "${PG_ADMIN_URL%/*}/${PGDB}_eval"

echo
echo "Messages decided and delivered: $MESSAGES customers, one message each per run ($(nproc) cores)"
echo
echo "| database | channel | workers | messages | seconds | messages/s |"
echo "|---|---|---:|---:|---:|---:|"
for r in "${ROWS[@]}"; do IFS='|' read -r a b c d e f <<<"$r"; echo "| $a | $b | $c | $d | $e | $f |"; done
echo
echo "Daily evaluation over $CUSTOMERS customers"
echo
echo "| database | run | seconds | peak MB | output |"
echo "|---|---|---:|---:|---|"
for r in "${SCALE[@]}"; do IFS='|' read -r a b c d e <<<"$r"; echo "| $a | $b | $c | $d | $e |"; done
