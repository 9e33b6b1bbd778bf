#!/usr/bin/env bash
# The analytics refresh (stages + RFM + segments + cohorts + retention + concentration) on
# a generated business in SQLite, against DuckDB and polars answering (a) R, F, M with
# quintile scores (Tenure's tie rule: equal values share the lower score) and (b) the
# monthly cohort table from the same orders as Parquet.
# Prints a markdown table with wall times, peak memory and ratios.
#
#   bench/analytics.sh                 # 1,000,000 customers (~11M orders)
#   N=100000 bench/analytics.sh
#   WORK=/tmp/a KEEP=1 bench/analytics.sh   # keeps the data and database for the next run
#
# Installs duckdb, polars and pyarrow with pip into a venv under $WORK.
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/lib.sh

N=${N:-1000000}
WORK=${WORK:-$(mktemp -d)}
if [ -n "${TENURE_BIN:-}" ]; then BIN=$TENURE_BIN; else
  cargo build --release -q -p tenure
  BIN=$PWD/target/release/tenure
fi
VENV=${BENCH_VENV:-$WORK/venv}
if ! "$VENV/bin/python" -c "import duckdb, polars, pyarrow" 2>/dev/null; then
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install -q duckdb polars pyarrow
fi
DATA=$WORK/data
[ -f "$DATA/manifest.json" ] || "$BIN" generate --customers "$N" --seed 42 --out "$DATA" >/dev/null
DB=$WORK/tenure.db
export DATABASE_URL="sqlite://$DB?mode=rwc" RUST_LOG=warn
if [ ! -f "$DB" ]; then
  "$BIN" import customers "$DATA/customers.csv" >/dev/null
  "$BIN" import orders "$DATA/orders.csv" >/dev/null
fi
AS_OF=${AS_OF:-$(date -u +%F)}
PARQUET=$WORK/orders.parquet
[ -f "$PARQUET" ] || "$VENV/bin/python" - "$DATA/orders.csv" "$PARQUET" <<'PY'
import sys, duckdb
duckdb.sql(f"COPY (SELECT customer_external_id, CAST(occurred_at AS TIMESTAMP) AS occurred_at, total, status FROM read_csv_auto('{sys.argv[1]}')) TO '{sys.argv[2]}' (FORMAT parquet)")
PY

# Wall seconds and peak RSS (MiB) of a command.
measure() {
  /usr/bin/time -f "%e %M" -o "$WORK/time" "$@" >/dev/null
  read -r secs kib < "$WORK/time"
  echo "$secs $((kib / 1024))"
}

read -r first first_mem < <(measure "$BIN" analytics refresh --as-of "$AS_OF")
read -r again again_mem < <(measure "$BIN" analytics refresh --as-of "$AS_OF")

cat > "$WORK/duck_bench.py" <<PY
import duckdb
con = duckdb.connect()
con.sql("""
WITH c AS (SELECT customer_external_id AS id, DATE '$AS_OF' - MAX(occurred_at)::DATE AS recency,
                  COUNT(*) AS frequency, SUM(total) AS monetary
           FROM '$PARQUET' WHERE status = 'completed' GROUP BY 1)
SELECT id, recency, frequency, monetary,
       1 + floor(5 * (rank() OVER (ORDER BY recency DESC) - 1) / count(*) OVER ()) AS r,
       1 + floor(5 * (rank() OVER (ORDER BY frequency) - 1) / count(*) OVER ()) AS f,
       1 + floor(5 * (rank() OVER (ORDER BY monetary) - 1) / count(*) OVER ()) AS m FROM c""").fetchall()
con.sql("""
WITH o AS (SELECT customer_external_id AS id, date_trunc('month', occurred_at) AS month
           FROM '$PARQUET' WHERE status = 'completed'),
     f AS (SELECT id, MIN(month) AS cohort FROM o GROUP BY id),
     a AS (SELECT DISTINCT o.id, f.cohort, datediff('month', f.cohort, o.month) AS period FROM o JOIN f USING (id))
SELECT cohort, period, COUNT(*) AS active FROM a GROUP BY 1, 2 ORDER BY 1, 2""").fetchall()
PY
cat > "$WORK/polars_bench.py" <<PY
import polars as pl
from datetime import date
o = pl.scan_parquet('$PARQUET').filter(pl.col('status') == 'completed')
c = o.group_by('customer_external_id').agg(
    (pl.lit(date.fromisoformat('$AS_OF')) - pl.col('occurred_at').max().dt.date()).dt.total_days().alias('recency'),
    pl.len().alias('frequency'), pl.col('total').sum().alias('monetary')).collect()
q = lambda s: ((s.rank('min') - 1) * 5 / pl.len()).floor().cast(pl.Int8) + 1
c = c.with_columns(q(-pl.col('recency')).alias('r'), q(pl.col('frequency')).alias('f'), q(pl.col('monetary')).alias('m'))
m = o.with_columns(pl.col('occurred_at').dt.truncate('1mo').alias('month')).select('customer_external_id', 'month')
f = m.group_by('customer_external_id').agg(pl.col('month').min().alias('cohort'))
a = m.join(f, on='customer_external_id').unique(['customer_external_id', 'month'])
a.group_by('cohort', 'month').agg(pl.len()).sort('cohort', 'month').collect()
PY
read -r duck duck_mem < <(measure "$VENV/bin/python" "$WORK/duck_bench.py")
read -r polars polars_mem < <(measure "$VENV/bin/python" "$WORK/polars_bench.py")

orders=$(($(wc -l < "$DATA/orders.csv") - 1))
ratio() { python3 -c "print(f'{$1 / $2:.2f}')"; }
echo "| what | seconds | peak MiB | DuckDB (a)+(b) ÷ this |"
echo "|---|---:|---:|---:|"
echo "| Tenure refresh, first (places and scores everyone) | $first | $first_mem | $(ratio "$duck" "$first") |"
echo "| Tenure refresh, again (writes what changed) | $again | $again_mem | $(ratio "$duck" "$again") |"
echo "| DuckDB (a) RFM + (b) cohorts from Parquet | $duck | $duck_mem | 1.00 |"
echo "| polars (a) RFM + (b) cohorts from Parquet | $polars | $polars_mem | $(ratio "$duck" "$polars") |"
echo
echo "$N customers, $orders orders, as of $AS_OF, $(nproc) cores"
result "analytics refresh, first ($N customers)" "$first" s "DuckDB: RFM + cohorts" "$duck" "$first_mem"
result "analytics refresh, first ($N customers)" "$first" s "polars: RFM + cohorts" "$polars" "$first_mem"
result "analytics refresh, again ($N customers)" "$again" s "" "" "$again_mem"
[ -n "${KEEP:-}" ] || rm -rf "$WORK"
