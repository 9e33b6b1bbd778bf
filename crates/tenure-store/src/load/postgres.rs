//! Bulk imports into PostgreSQL with `COPY`. During a first load a batch is copied
//! straight into its table; otherwise (or when a row of it is stored already) it is
//! streamed into a temporary table and moved with one `INSERT ... SELECT ... ON CONFLICT
//! DO NOTHING` — in one transaction either way. The same rows under the same rules as
//! [`super::sqlite`], at the speed of `COPY` instead of one bound value at a time.

use std::collections::HashMap;
use std::sync::Arc;

use sqlx::postgres::PgRow;
use sqlx::{Connection as _, PgConnection, Row};
use tenure_domain::catalog::{OrderStatus, purchase_day};
use tenure_domain::customer::{CustomerData, search_terms};

use tenure_domain::changes::{Actor, Change, Entity};

use super::{
    BatchOutcome, CUSTOMER_COLUMNS, INTERACTION_COLUMNS, InteractionRow, ORDER_COLUMNS,
    OrderLineRow, PurchaseRow, add_created, batch_change, distinct, fresh_customers, placeholders,
    rebuild_chunks,
};
use crate::customers::{Field, fields};
use crate::time::now_micros;
use crate::{StoreResult, dialect};

/// Appends a change-log entry inside the batch's transaction.
async fn append_change(conn: &mut PgConnection, actor: &Actor, change: &Change) -> StoreResult<()> {
    let v = crate::changes::entry_values(actor, change);
    sqlx::query(crate::changes::APPEND)
        .bind(v.at)
        .bind(v.actor_kind)
        .bind(v.actor_id)
        .bind(v.actor_name)
        .bind(v.source)
        .bind(v.entity)
        .bind(v.entity_id)
        .bind(v.operation)
        .bind(v.customer_id)
        .bind(v.detail)
        .bind(v.fields)
        .execute(&mut *conn)
        .await?;
    Ok(())
}

/// Rows in PostgreSQL's `COPY` text format.
#[derive(Default)]
struct CopyRows {
    buf: Vec<u8>,
    fresh_row: bool,
}

impl CopyRows {
    fn new() -> Self {
        CopyRows {
            buf: Vec::with_capacity(1 << 20),
            fresh_row: true,
        }
    }

    fn sep(&mut self) {
        if !self.fresh_row {
            self.buf.push(b'\t');
        }
        self.fresh_row = false;
    }

    fn text(&mut self, v: Option<&str>) {
        self.sep();
        let Some(v) = v else {
            self.buf.extend_from_slice(b"\\N");
            return;
        };
        for b in v.bytes() {
            match b {
                b'\\' => self.buf.extend_from_slice(b"\\\\"),
                b'\t' => self.buf.extend_from_slice(b"\\t"),
                b'\n' => self.buf.extend_from_slice(b"\\n"),
                b'\r' => self.buf.extend_from_slice(b"\\r"),
                b => self.buf.push(b),
            }
        }
    }

    fn int(&mut self, v: Option<i64>) {
        self.sep();
        match v {
            Some(v) => self
                .buf
                .extend_from_slice(itoa::Buffer::new().format(v).as_bytes()),
            None => self.buf.extend_from_slice(b"\\N"),
        }
    }

    fn end(&mut self) {
        self.buf.push(b'\n');
        self.fresh_row = true;
    }
}

async fn copy(conn: &mut PgConnection, statement: &str, rows: &CopyRows) -> StoreResult<u64> {
    if rows.buf.is_empty() {
        return Ok(0);
    }
    let mut c = conn.copy_in_raw(statement).await?;
    for chunk in rows.buf.chunks(1 << 20) {
        c.send(chunk).await?;
    }
    Ok(c.finish().await?)
}

/// An import connection lent by [`crate::Store::pg_loader`]; it goes back to the idle ones
/// when dropped, unless [`LoaderConn::discard`]ed.
pub(crate) struct LoaderConn {
    conn: Option<PgConnection>,
    home: Arc<crate::PgLoader>,
    _permit: tokio::sync::OwnedSemaphorePermit,
}

impl LoaderConn {
    pub(crate) fn new(
        conn: PgConnection,
        home: Arc<crate::PgLoader>,
        permit: tokio::sync::OwnedSemaphorePermit,
    ) -> Self {
        LoaderConn {
            conn: Some(conn),
            home,
            _permit: permit,
        }
    }

    pub(crate) fn get(&mut self) -> StoreResult<&mut PgConnection> {
        self.conn
            .as_mut()
            .ok_or_else(|| crate::StoreError::Config("the import connection is closed".into()))
    }

    /// Closes the connection instead of keeping it: after a failed batch its state is not
    /// worth trusting.
    pub(crate) fn discard(mut self) {
        self.conn = None;
    }
}

impl Drop for LoaderConn {
    fn drop(&mut self) {
        if let Some(conn) = self.conn.take() {
            self.home
                .idle
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .push(conn);
        }
    }
}

pub(crate) async fn connect(url: &str) -> StoreResult<PgConnection> {
    use sqlx::ConnectOptions;
    // A batch statement moving 20,000 rows takes about a second; that is the work, not a
    // slow query worth a warning on the terminal of whoever runs the import.
    let options: sqlx::postgres::PgConnectOptions = url.parse()?;
    let mut conn = options
        .log_slow_statements(log::LevelFilter::Debug, std::time::Duration::from_secs(30))
        .connect()
        .await?;
    // Loads commit once a batch; waiting for the disk on each adds nothing a crash could
    // not redo (a re-run skips what is stored).
    sqlx::query("SET synchronous_commit = off")
        .execute(&mut conn)
        .await?;
    Ok(conn)
}

/// External id → customer id for those that exist, merged-away customers' ids included.
async fn customer_ids(
    conn: &mut PgConnection,
    keys: &[String],
) -> StoreResult<HashMap<String, i64>> {
    let keys: Vec<&str> = keys.iter().map(String::as_str).collect();
    let id = |r: &PgRow| r.try_get("id");
    let mut out = by_external_id(
        conn,
        "SELECT id, external_id FROM customers WHERE external_id = ANY($1)",
        &keys,
        id,
    )
    .await?;
    let missing = not_in(&keys, &out);
    if !missing.is_empty() {
        let aliases = "SELECT customer_id AS id, external_id FROM customer_aliases WHERE external_id = ANY($1)";
        out.extend(by_external_id(conn, aliases, &missing, id).await?);
    }
    Ok(out)
}

/// External id → what `value` reads from its row, for those of `keys` that `sql` (selecting
/// `external_id` and more, `WHERE external_id = ANY($1)`) finds.
async fn by_external_id<T>(
    conn: &mut PgConnection,
    sql: &'static str,
    keys: &[&str],
    value: impl Fn(&PgRow) -> sqlx::Result<T>,
) -> StoreResult<HashMap<String, T>> {
    let rows = sqlx::query(sql).bind(keys).fetch_all(&mut *conn).await?;
    rows.iter()
        .map(|r| Ok((r.try_get("external_id")?, value(r)?)))
        .collect()
}

/// Those of `keys` that `found` lacks.
fn not_in<'k, T>(keys: &[&'k str], found: &HashMap<String, T>) -> Vec<&'k str> {
    keys.iter()
        .copied()
        .filter(|k| !found.contains_key(*k))
        .collect()
}

async fn insert_customers(
    conn: &mut PgConnection,
    batch: &[CustomerData],
) -> StoreResult<Vec<i64>> {
    if batch.is_empty() {
        return Ok(Vec::new());
    }
    let ids: Vec<i64> = sqlx::query_scalar(dialect::POSTGRES_NEXT_IDS)
        .bind("customers")
        .bind(batch.len() as i64)
        .fetch_all(&mut *conn)
        .await?;
    let now = now_micros();
    let mut customers = CopyRows::new();
    let mut stats_rows = CopyRows::new();
    let mut tags: Vec<(&str, i64)> = Vec::new();
    let mut terms: Vec<(String, i64)> = Vec::with_capacity(batch.len() * 12);
    for (d, &id) in batch.iter().zip(&ids) {
        customers.int(Some(id));
        for f in fields(d) {
            match f {
                Field::Text(t) => customers.text(t.as_deref()),
                Field::Int(i) => customers.int(i),
            }
        }
        customers.text(Some("[]"));
        customers.int(Some(now));
        customers.int(Some(now));
        customers.end();
        stats_rows.int(Some(id));
        stats_rows.end();
        tags.extend(d.tags.iter().map(|t| (t.as_str(), id)));
        terms.extend(search_terms(d).into_iter().map(|t| (t, id)));
    }
    copy(
        conn,
        &format!("COPY customers ({CUSTOMER_COLUMNS}) FROM STDIN"),
        &customers,
    )
    .await?;
    copy(
        conn,
        "COPY customer_stats (customer_id) FROM STDIN",
        &stats_rows,
    )
    .await?;
    tags.sort_unstable();
    let mut rows = CopyRows::new();
    for (t, id) in tags {
        rows.text(Some(t));
        rows.int(Some(id));
        rows.end();
    }
    copy(
        conn,
        "COPY customer_tags (tag, customer_id) FROM STDIN",
        &rows,
    )
    .await?;
    let staged: i64 = sqlx::query_scalar(super::first::TERMS_STAGED)
        .fetch_one(&mut *conn)
        .await?;
    terms.sort_unstable();
    let mut rows = CopyRows::new();
    for (t, id) in &terms {
        rows.text(Some(t));
        rows.int(Some(*id));
        rows.end();
    }
    copy(
        conn,
        if staged > 0 {
            "COPY first_load_terms (term, customer_id) FROM STDIN"
        } else {
            "COPY customer_search_terms (term, customer_id) FROM STDIN"
        },
        &rows,
    )
    .await?;
    Ok(ids)
}

/// The ids of the customers these external ids name, creating placeholders for the unknown.
async fn resolve_customers<'k>(
    conn: &mut PgConnection,
    keys: impl Iterator<Item = &'k str>,
) -> StoreResult<(HashMap<String, i64>, u64)> {
    let keys: Vec<String> = distinct(keys).into_iter().map(str::to_owned).collect();
    let mut ids = customer_ids(conn, &keys).await?;
    let missing = placeholders(keys.iter().map(String::as_str), &ids);
    let created = insert_customers(conn, &missing).await?;
    add_created(&mut ids, &missing, &created);
    Ok((ids, created.len() as u64))
}

/// Whether a first load is under way, read inside the batch's transaction.
async fn first_load(conn: &mut PgConnection) -> StoreResult<bool> {
    let n: i64 = sqlx::query_scalar(super::first::PENDING)
        .fetch_one(&mut *conn)
        .await?;
    Ok(n > 0)
}

/// In a first load, copies a batch's rows straight into their table, under a savepoint:
/// `None` when one of them is already stored (a re-run of an interrupted load, a duplicate
/// in the file, another writer), which undoes the copy and leaves the batch to the careful
/// way.
async fn copy_new(
    conn: &mut PgConnection,
    statement: &str,
    rows: &CopyRows,
) -> StoreResult<Option<u64>> {
    let mut sp = conn.begin().await?;
    match copy(&mut sp, statement, rows).await {
        Ok(n) => {
            sp.commit().await?;
            Ok(Some(n))
        }
        Err(crate::StoreError::Conflict { .. }) => {
            sp.rollback().await?;
            Ok(None)
        }
        Err(e) => Err(e),
    }
}

/// The advisory lock import batches hold while they recompute aggregates.
const AGGREGATES_LOCK: i64 = 0x7465_6e75_7265_0001;

/// Recomputes the aggregates of the touched customers, unless a first load is under way
/// (it rebuilds everyone's once at its end).
async fn rebuild_stats(
    conn: &mut PgConnection,
    first_load: bool,
    currency: &str,
    touched: Vec<i64>,
) -> StoreResult<()> {
    if first_load {
        return Ok(());
    }
    // Batches written at once that touch the same customer take turns here, until commit:
    // each one's rebuild then reads the other's committed rows, not a state without them.
    sqlx::query("SELECT pg_advisory_xact_lock($1)")
        .bind(AGGREGATES_LOCK)
        .execute(&mut *conn)
        .await?;
    for (chunk, delete, insert) in rebuild_chunks(touched) {
        let mut q = sqlx::query(sqlx::AssertSqlSafe(delete));
        for id in &chunk {
            q = q.bind(*id);
        }
        q.execute(&mut *conn).await?;
        let mut q = sqlx::query(sqlx::AssertSqlSafe(insert))
            .bind(OrderStatus::Completed.as_str())
            .bind(currency);
        for id in &chunk {
            q = q.bind(*id);
        }
        q.execute(&mut *conn).await?;
    }
    Ok(())
}

pub(crate) async fn import_customers(
    conn: &mut PgConnection,
    batch: &[CustomerData],
    by: &Actor,
) -> StoreResult<BatchOutcome> {
    let mut tx = conn.begin().await?;
    let keys: Vec<String> = distinct(batch.iter().filter_map(|c| c.external_id.as_deref()))
        .into_iter()
        .map(str::to_owned)
        .collect();
    let fresh = fresh_customers(batch, &customer_ids(&mut tx, &keys).await?);
    insert_customers(&mut tx, &fresh).await?;
    let outcome = BatchOutcome::of(batch.len(), fresh.len() as u64, 0);
    append_change(&mut tx, by, &batch_change(Entity::Customer, &outcome)).await?;
    tx.commit().await?;
    Ok(outcome)
}

/// Refreshes the planner's statistics of `table` once it has changed by half since they
/// were taken. A table loaded from empty otherwise keeps the statistics of its first rows,
/// and the per-batch aggregate query turns into a scan of the whole table.
/// (A first load skips it: its batches read no statistics of the tables they fill.)
async fn analyze_if_grown(conn: &mut PgConnection, table: &str) -> StoreResult<()> {
    if first_load(conn).await? {
        return Ok(());
    }
    let row = sqlx::query(
        "SELECT COALESCE(s.n_mod_since_analyze, 0) AS changed, GREATEST(c.reltuples, 0)::float8 AS rows \
         FROM pg_class c LEFT JOIN pg_stat_user_tables s ON s.relid = c.oid WHERE c.oid = $1::regclass",
    )
    .bind(table)
    .fetch_one(&mut *conn)
    .await?;
    let changed: i64 = row.try_get("changed")?;
    let rows: f64 = row.try_get("rows")?;
    if changed > 50_000 && changed as f64 > rows / 2.0 {
        sqlx::query(sqlx::AssertSqlSafe(format!("ANALYZE {table}")))
            .execute(&mut *conn)
            .await?;
    }
    Ok(())
}

/// How rows of one kind reach their table. In a first load they are copied straight in
/// ([`copy_new`]); otherwise, or when one is already stored, they are copied into a
/// temporary table and moved with `INSERT … SELECT … ON CONFLICT DO NOTHING`.
struct Staging {
    /// The table the rows end in.
    table: &'static str,
    /// The columns the rows fill, in the order they are written; the table's time columns
    /// (`stamps` of them) follow.
    columns: &'static str,
    stamps: &'static str,
    /// Creates the temporary table (if missing), with `columns` in that order.
    create: &'static str,
    /// The temporary table's name.
    stage: &'static str,
    /// The key a row already stored conflicts on.
    key: &'static str,
}

/// A batch of rows that belong to customers named by external id (orders, interactions):
/// unknown customers are created, the rows are written (see [`Staging`]), and the touched
/// customers' aggregates are recomputed, all in one transaction.
async fn import_for_customers<R>(
    conn: &mut PgConnection,
    currency: &str,
    batch: &[R],
    (entity, by): (Entity, &Actor),
    customer: impl Fn(&R) -> &str,
    staging: Staging,
    write: impl Fn(&mut CopyRows, &R, i64),
) -> StoreResult<BatchOutcome> {
    let Staging {
        table,
        columns,
        stamps,
        create,
        stage,
        key,
    } = staging;
    analyze_if_grown(conn, table).await?;
    let mut tx = conn.begin().await?;
    let (ids, created) = resolve_customers(&mut tx, batch.iter().map(&customer)).await?;
    let now = now_micros();
    let stamp_count = stamps.split(',').count();
    let rows = |stamped: bool| {
        let mut rows = CopyRows::new();
        for r in batch {
            if let Some(&id) = ids.get(customer(r)) {
                write(&mut rows, r, id);
                if stamped {
                    for _ in 0..stamp_count {
                        rows.int(Some(now));
                    }
                }
                rows.end();
            }
        }
        rows
    };
    let first_load = first_load(&mut tx).await?;
    let copied = if first_load {
        let statement = format!("COPY {table} ({columns}, {stamps}) FROM STDIN");
        copy_new(&mut tx, &statement, &rows(true)).await?
    } else {
        None
    };
    let (inserted, touched) = match copied {
        Some(n) => (n, Vec::new()),
        None => {
            sqlx::query(create).execute(&mut *tx).await?;
            copy(&mut tx, &format!("COPY {stage} FROM STDIN"), &rows(false)).await?;
            let stamp_values = vec!["$1"; stamp_count].join(", ");
            let touched: Vec<i64> = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
                "INSERT INTO {table} ({columns}, {stamps}) SELECT {columns}, {stamp_values} FROM {stage} \
                 ON CONFLICT ({key}) DO NOTHING RETURNING customer_id"
            )))
            .bind(now)
            .fetch_all(&mut *tx)
            .await?;
            (touched.len() as u64, touched)
        }
    };
    rebuild_stats(&mut tx, first_load, currency, touched).await?;
    let outcome = BatchOutcome::of(batch.len(), inserted, created);
    append_change(&mut tx, by, &batch_change(entity, &outcome)).await?;
    tx.commit().await?;
    Ok(outcome)
}

pub(crate) async fn import_purchases(
    conn: &mut PgConnection,
    currency: &str,
    batch: &[PurchaseRow],
    by: &Actor,
) -> StoreResult<BatchOutcome> {
    import_for_customers(
        conn,
        currency,
        batch,
        (Entity::Order, by),
        |p| p.customer_external_id.as_str(),
        Staging {
            table: "orders",
            columns: ORDER_COLUMNS,
            stamps: "created_at, updated_at",
            create: "CREATE TEMP TABLE IF NOT EXISTS load_orders (external_id TEXT, customer_id BIGINT, \
         occurred_at BIGINT, purchase_day BIGINT, currency TEXT, total_minor BIGINT, channel TEXT, \
         status TEXT) ON COMMIT DELETE ROWS",
            stage: "load_orders",
            key: "external_id",
        },
        |rows, p, customer| {
            rows.text(Some(&p.order_external_id));
            rows.int(Some(customer));
            rows.int(Some(p.occurred_at.timestamp_micros()));
            rows.int(Some(purchase_day(p.occurred_at)));
            rows.text(Some(&p.currency));
            rows.int(Some(p.total_minor));
            rows.text(Some(p.channel.as_str()));
            rows.text(Some(p.status.as_str()));
        },
    )
    .await
}

pub(crate) async fn import_interactions(
    conn: &mut PgConnection,
    currency: &str,
    batch: &[InteractionRow],
    by: &Actor,
) -> StoreResult<BatchOutcome> {
    import_for_customers(
        conn,
        currency,
        batch,
        (Entity::Interaction, by),
        |i| i.customer_external_id.as_str(),
        Staging {
            table: "interactions",
            columns: INTERACTION_COLUMNS,
            stamps: "created_at",
            create: "CREATE TEMP TABLE IF NOT EXISTS load_interactions (external_id TEXT, customer_id BIGINT, \
         channel TEXT, direction TEXT, kind TEXT, subject TEXT, body TEXT, staff_user_id BIGINT, \
         buying_signal BIGINT, occurred_at BIGINT) ON COMMIT DELETE ROWS",
            stage: "load_interactions",
            key: "external_id",
        },
        |rows, i, customer| {
            let d = &i.data;
            rows.text(Some(&i.external_id));
            rows.int(Some(customer));
            rows.text(Some(d.channel.as_str()));
            rows.text(Some(d.direction.as_str()));
            rows.text(Some(d.kind.as_str()));
            rows.text(Some(&d.subject));
            rows.text(Some(&d.body));
            rows.int(d.staff_user_id.map(|s| s.0));
            rows.int(Some(i64::from(d.buying_signal)));
            rows.int(Some(d.occurred_at.timestamp_micros()));
        },
    )
    .await
}

/// The columns of a stored order line, in the order a batch writes them.
const LINE_COLUMNS: &str = "order_id, customer_id, line_no, product_id, description, quantity, unit_price_minor, total_minor";

/// External id → (order id, customer id) of the stored orders among `keys`.
async fn order_ids(
    conn: &mut PgConnection,
    keys: &[&str],
) -> StoreResult<HashMap<String, (i64, i64)>> {
    let sql = "SELECT external_id, id, customer_id FROM orders WHERE external_id = ANY($1)";
    by_external_id(conn, sql, keys, |r| {
        Ok((r.try_get("id")?, r.try_get("customer_id")?))
    })
    .await
}

/// External id → product id for `keys`, creating the products named for the first time
/// (with a placeholder name); returns how many were created.
async fn product_ids(
    conn: &mut PgConnection,
    currency: &str,
    keys: &[&str],
) -> StoreResult<(HashMap<String, i64>, u64)> {
    const KNOWN: &str = "SELECT external_id, id FROM products WHERE external_id = ANY($1)";
    let id = |r: &PgRow| r.try_get("id");
    let mut ids = by_external_id(conn, KNOWN, keys, id).await?;
    let missing = not_in(keys, &ids);
    if missing.is_empty() {
        return Ok((ids, 0));
    }
    let created = sqlx::query(
        "INSERT INTO products (external_id, name, currency, active, created_at, updated_at) \
         SELECT k, 'Product ' || k, $2, 1, $3, $3 FROM UNNEST($1::text[]) AS k \
         ON CONFLICT (external_id) DO NOTHING",
    )
    .bind(&missing)
    .bind(currency)
    .bind(now_micros())
    .execute(&mut *conn)
    .await?
    .rows_affected();
    ids.extend(by_external_id(conn, KNOWN, &missing, id).await?);
    Ok((ids, created))
}

pub(crate) async fn import_order_lines(
    conn: &mut PgConnection,
    currency: &str,
    batch: &[OrderLineRow],
    by: &Actor,
) -> StoreResult<BatchOutcome> {
    analyze_if_grown(conn, "order_lines").await?;
    let mut tx = conn.begin().await?;
    // Each distinct order and product is looked up once; lines naming no stored order are
    // reported, not written.
    let orders = order_ids(
        &mut tx,
        &distinct(batch.iter().map(|l| l.order_external_id.as_str())),
    )
    .await?;
    let unknown_orders: Vec<usize> = (0..batch.len())
        .filter(|&i| !orders.contains_key(&batch[i].order_external_id))
        .collect();
    let products = distinct(
        batch
            .iter()
            .filter(|l| orders.contains_key(&l.order_external_id))
            .filter_map(|l| l.product_external_id.as_deref()),
    );
    let (products, created) = product_ids(&mut tx, currency, &products).await?;
    let mut rows = CopyRows::new();
    for l in batch {
        let Some(&(order, customer)) = orders.get(&l.order_external_id) else {
            continue;
        };
        rows.int(Some(order));
        rows.int(Some(customer));
        rows.int(Some(l.line_no));
        rows.int(
            l.product_external_id
                .as_ref()
                .and_then(|p| products.get(p))
                .copied(),
        );
        rows.text(Some(&l.description));
        rows.int(Some(l.quantity));
        rows.int(Some(l.unit_price_minor));
        rows.int(Some(l.total_minor));
        rows.end();
    }
    let copied = if first_load(&mut tx).await? {
        let statement = format!("COPY order_lines ({LINE_COLUMNS}) FROM STDIN");
        copy_new(&mut tx, &statement, &rows).await?
    } else {
        None
    };
    let inserted = match copied {
        Some(n) => n,
        None => {
            sqlx::query(
                "CREATE TEMP TABLE IF NOT EXISTS staged_lines (pos BIGSERIAL, order_id BIGINT, \
                 customer_id BIGINT, line_no BIGINT, product_id BIGINT, description TEXT, \
                 quantity BIGINT, unit_price_minor BIGINT, total_minor BIGINT) ON COMMIT DELETE ROWS",
            )
            .execute(&mut *tx)
            .await?;
            copy(
                &mut tx,
                &format!("COPY staged_lines ({LINE_COLUMNS}) FROM STDIN"),
                &rows,
            )
            .await?;
            sqlx::query(sqlx::AssertSqlSafe(format!(
                "INSERT INTO order_lines ({LINE_COLUMNS}) SELECT {LINE_COLUMNS} FROM staged_lines \
                 ORDER BY pos ON CONFLICT (order_id, line_no) DO NOTHING"
            )))
            .execute(&mut *tx)
            .await?
            .rows_affected()
        }
    };
    let outcome = BatchOutcome {
        inserted,
        skipped: (batch.len() - unknown_orders.len()) as u64 - inserted,
        customers_created: created,
        unknown_orders,
    };
    append_change(&mut tx, by, &batch_change(Entity::Order, &outcome)).await?;
    tx.commit().await?;
    Ok(outcome)
}
