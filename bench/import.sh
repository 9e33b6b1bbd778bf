#!/usr/bin/env bash
# Import benchmark: generate a business of N customers (default 1,000,000, ~11M orders) and
# import it file by file into a fresh SQLite file and a fresh PostgreSQL database, printing
# seconds, rows/s and peak memory per file; then the floors the same machine reaches with
# `sqlite3 .import` and PostgreSQL `COPY` for the orders file plus its two indexes.
#
#   bench/import.sh [CUSTOMERS] [sqlite|postgres|both]
#
# Needs a release build (cargo build --release), sqlite3 and psql. PostgreSQL is reached at
# $BENCH_POSTGRES (default postgres://postgres@127.0.0.1:5432); a database `tenure_bench`
# is dropped and recreated there.
set -euo pipefail
. "$(dirname "$0")/lib.sh"

N=${1:-1000000}
WHICH=${2:-both}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
# TENURE_BIN runs another build of tenure (an earlier commit's, to compare).
BIN=${TENURE_BIN:-$ROOT/target/release/tenure}
WORK=${BENCH_DIR:-/tmp/tenure-bench}
DATA=$WORK/data-$N
PG=${BENCH_POSTGRES:-postgres://postgres@127.0.0.1:5432}
mkdir -p "$WORK"

[ -x "$BIN" ] || (cd "$ROOT" && cargo build --release -p tenure)
for tool in sqlite3 psql; do
  command -v "$tool" >/dev/null || { apt-get update -q && apt-get install -y -q sqlite3 postgresql-client; }
done

# Runs a command under /usr/bin/time; prints "seconds peak_mib".
measure() {
  local log=$WORK/time.log
  /usr/bin/time -f "%e %M" -o "$log" "$@" > "$WORK/out.log" 2>&1 || {
    cat "$WORK/out.log" >&2
    return 1
  }
  awk '{ printf "%s %.0f\n", $1, $2 / 1024 }' "$log"
}

rows() { echo $(( $(wc -l < "$1") - 1 )); }

row() { # label file seconds mib
  local n
  n=$(rows "$2")
  awk -v l="$1" -v f="$(basename "$2")" -v n="$n" -v s="$3" -v m="$4" \
    'BEGIN { printf "| %-10s | %-17s | %11d | %8.1f | %9.0f | %8d |\n", l, f, n, s, n / s, m }'
}

if [ ! -f "$DATA/manifest.json" ]; then
  read -r s m < <(measure "$BIN" generate --customers "$N" --seed 42 --out "$DATA")
  echo "generated $N customers in $s s (peak $m MiB)"
fi

FILES="customers products orders order-lines interactions"
file_of() { case $1 in order-lines) echo order_lines.csv ;; *) echo "$1.csv" ;; esac; }

echo
echo "| database   | file              |        rows |  seconds |    rows/s | peak MiB |"
echo "|------------|-------------------|------------:|---------:|----------:|---------:|"

run_all() { # label url
  local total=0
  for kind in $FILES; do
    local f
    f=$DATA/$(file_of "$kind")
    read -r s m < <(DATABASE_URL=$2 measure "$BIN" import "$kind" "$f" --batch 20000)
    row "$1" "$f" "$s" "$m"
    eval "IMPORT_${1}_${kind//-/_}='$s $m'"
    total=$(awk -v a="$total" -v b="$s" 'BEGIN { print a + b }')
  done
  echo "| $1 | all files | | $total | | |"
  result "import: the whole business ($N customers) into $1" "$total" s
}

if [ "$WHICH" != postgres ]; then
  rm -f "$WORK/bench.db" "$WORK/bench.db-wal" "$WORK/bench.db-shm"
  run_all sqlite "sqlite://$WORK/bench.db?mode=rwc"
fi
if [ "$WHICH" != sqlite ]; then
  psql "$PG/postgres" -qc "DROP DATABASE IF EXISTS tenure_bench" -c "CREATE DATABASE tenure_bench" >/dev/null
  run_all postgres "$PG/tenure_bench"
fi

echo
echo "Floors for orders.csv ($(rows "$DATA/orders.csv") rows) on this machine:"
rm -f "$WORK/floor.db"
read -r s1 _ < <(measure sqlite3 "$WORK/floor.db" \
  "CREATE TABLE orders (external_id TEXT, customer_external_id TEXT, occurred_at TEXT, currency TEXT, total TEXT, channel TEXT, status TEXT);" \
  ".mode csv" ".import --skip 1 $DATA/orders.csv orders")
read -r s2 _ < <(measure sqlite3 "$WORK/floor.db" \
  "CREATE UNIQUE INDEX o_ext ON orders (external_id);" "CREATE INDEX o_cust ON orders (customer_external_id, occurred_at);")
echo "sqlite3 .import: $s1 s + $s2 s for two indexes"
psql "$PG/postgres" -qc "DROP DATABASE IF EXISTS tenure_floor" -c "CREATE DATABASE tenure_floor" >/dev/null
psql "$PG/tenure_floor" -qc "CREATE TABLE orders (external_id TEXT, customer_external_id TEXT, occurred_at TIMESTAMPTZ, currency TEXT, total NUMERIC, channel TEXT, status TEXT)"
read -r p1 _ < <(measure psql "$PG/tenure_floor" -qc "\\copy orders FROM '$DATA/orders.csv' CSV HEADER")
read -r p2 _ < <(measure psql "$PG/tenure_floor" -qc "CREATE UNIQUE INDEX o_ext ON orders (external_id)" -c "CREATE INDEX o_cust ON orders (customer_external_id, occurred_at)")
echo "PostgreSQL COPY: $p1 s + $p2 s for two indexes"
floor_sqlite=$(awk -v a="$s1" -v b="$s2" 'BEGIN { print a + b }')
floor_pg=$(awk -v a="$p1" -v b="$p2" 'BEGIN { print a + b }')
for db in sqlite postgres; do
  v=IMPORT_${db}_orders
  [ -n "${!v:-}" ] || continue
  read -r s m <<<"${!v}"
  if [ "$db" = sqlite ]; then peer="sqlite3 .import + 2 indexes"; f=$floor_sqlite; else peer="COPY + 2 indexes"; f=$floor_pg; fi
  result "import: orders.csv ($(rows "$DATA/orders.csv") rows) into $db" "$s" s "$peer" "$f" "$m"
done
for db in sqlite postgres; do
  for kind in customers order_lines interactions; do
    v=IMPORT_${db}_${kind}
    [ -n "${!v:-}" ] || continue
    read -r s m <<<"${!v}"
    result "import: ${kind}.csv into $db" "$s" s "" "" "$m"
  done
done
psql "$PG/postgres" -qc "DROP DATABASE IF EXISTS tenure_floor" >/dev/null
