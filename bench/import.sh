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

# The floor of a file on each database: its own bulk load of the file into a table of the
# file's columns, typed (times, amounts and counts parsed as the database's own types), plus
# the indexes the file's Tenure table keeps unique or looks rows up by.
# Customers' floor has no search terms: Tenure also builds some 17 per customer.
#   floor FILE "COLUMN TYPE, ..." "INDEX COLUMNS; ..."   → sets FLOOR_sqlite, FLOOR_postgres
floor() {
  local file=$DATA/$1 columns=$2 indexes=$3 i=0 sqls=() pgs=()
  local names
  names=$(sed -E 's/ [A-Z]+(,|$)/\1/g' <<<"$columns")
  IFS=';' read -ra list <<<"$indexes"
  for ix in "${list[@]}"; do
    i=$((i + 1))
    sqls+=("CREATE $ix;")
    pgs+=(-c "CREATE $ix")
  done
  rm -f "$WORK/floor.db"
  read -r s1 _ < <(measure sqlite3 "$WORK/floor.db" "CREATE TABLE t ($columns);" ".mode csv" ".import --skip 1 $file t")
  read -r s2 _ < <(measure sqlite3 "$WORK/floor.db" "${sqls[@]}")
  psql "$PG/postgres" -qc "DROP DATABASE IF EXISTS tenure_floor" -c "CREATE DATABASE tenure_floor" >/dev/null
  psql "$PG/tenure_floor" -qc "CREATE TABLE t ($columns)"
  read -r p1 _ < <(measure psql "$PG/tenure_floor" -qc "\\copy t ($names) FROM '$file' CSV HEADER")
  read -r p2 _ < <(measure psql "$PG/tenure_floor" -q "${pgs[@]}")
  FLOOR_sqlite=$(awk -v a="$s1" -v b="$s2" 'BEGIN { print a + b }')
  FLOOR_postgres=$(awk -v a="$p1" -v b="$p2" 'BEGIN { print a + b }')
  echo "| $1 | $(rows "$file") | sqlite3 .import $s1 s + indexes $s2 s | COPY $p1 s + indexes $p2 s |"
}

echo
echo "Floors on this machine (the database's own bulk load plus the same indexes):"
echo
echo "| file | rows | SQLite | PostgreSQL |"
echo "|---|---:|---:|---:|"
report() { # kind file
  local kind=$1 v
  for db in sqlite postgres; do
    v=IMPORT_${db}_${kind}
    [ -n "${!v:-}" ] || continue
    read -r s m <<<"${!v}"
    f=FLOOR_$db
    if [ "$db" = sqlite ]; then peer="sqlite3 .import + the same indexes"; else peer="COPY + the same indexes"; fi
    result "import: $2 ($(rows "$DATA/$2") rows) into $db" "$s" s "$peer" "${!f}" "$m"
  done
}
floor customers.csv "external_id TEXT, kind TEXT, name TEXT, email TEXT, phone TEXT, birthday DATE, locale TEXT, region TEXT, acquisition_source TEXT, acquisition_channel TEXT, tags TEXT, created_at TIMESTAMPTZ" \
  "UNIQUE INDEX c_ext ON t (external_id)"
report customers customers.csv
floor orders.csv "external_id TEXT, customer_external_id TEXT, occurred_at TIMESTAMPTZ, currency TEXT, total NUMERIC, channel TEXT, status TEXT" \
  "UNIQUE INDEX o_ext ON t (external_id); INDEX o_cust ON t (customer_external_id, occurred_at)"
report orders orders.csv
floor order_lines.csv "order_external_id TEXT, line_no BIGINT, product_external_id TEXT, description TEXT, quantity BIGINT, unit_price NUMERIC, total NUMERIC" \
  "UNIQUE INDEX l_key ON t (order_external_id, line_no); INDEX l_product ON t (product_external_id)"
report order_lines order_lines.csv
floor interactions.csv "external_id TEXT, customer_external_id TEXT, occurred_at TIMESTAMPTZ, channel TEXT, direction TEXT, kind TEXT, subject TEXT, buying_signal BOOLEAN" \
  "UNIQUE INDEX i_ext ON t (external_id); INDEX i_cust ON t (customer_external_id, occurred_at)"
report interactions interactions.csv
psql "$PG/postgres" -qc "DROP DATABASE IF EXISTS tenure_floor" >/dev/null
