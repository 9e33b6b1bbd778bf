//! Bulk imports into PostgreSQL with `COPY`: each batch is streamed into a temporary table
//! and moved with one `INSERT ... SELECT ... ON CONFLICT DO NOTHING`, in one transaction.
//! The same rows under the same rules as [`super::sqlite`], at the speed of `COPY` instead
//! of one bound value at a time.

use std::collections::HashMap;

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

async fn copy(conn: &mut PgConnection, statement: &str, rows: CopyRows) -> StoreResult<u64> {
    if rows.buf.is_empty() {
        return Ok(0);
    }
    let mut c = conn.copy_in_raw(statement).await?;
    for chunk in rows.buf.chunks(1 << 20) {
        c.send(chunk).await?;
    }
    Ok(c.finish().await?)
}

/// The connection in a slot that [`crate::Store::pg_loader`] filled.
pub(crate) fn conn(slot: &mut Option<PgConnection>) -> StoreResult<&mut PgConnection> {
    slot.as_mut()
        .ok_or_else(|| crate::StoreError::Config("the import connection is not open".into()))
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
    let mut out = HashMap::with_capacity(keys.len());
    for sql in [
        "SELECT id, external_id FROM customers WHERE external_id = ANY($1)",
        "SELECT customer_id AS id, external_id FROM customer_aliases WHERE external_id = ANY($1)",
    ] {
        let missing: Vec<String> = keys
            .iter()
            .filter(|k| !out.contains_key(*k))
            .cloned()
            .collect();
        if missing.is_empty() {
            break;
        }
        let rows = sqlx::query(sql)
            .bind(&missing)
            .fetch_all(&mut *conn)
            .await?;
        for r in rows {
            out.insert(r.try_get("external_id")?, r.try_get("id")?);
        }
    }
    Ok(out)
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
        customers,
    )
    .await?;
    copy(
        conn,
        "COPY customer_stats (customer_id) FROM STDIN",
        stats_rows,
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
        rows,
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
        rows,
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

/// Moves a batch's staged rows into their table and returns the customer of each row
/// written: `insert` is an `INSERT … SELECT` ending before its `ON CONFLICT`, `$1` (if any)
/// the time.
///
/// `ON CONFLICT DO NOTHING` inserts each row speculatively, which costs PostgreSQL twice a
/// plain insert. In a first load the rows are new, so the batch tries the plain `INSERT`
/// under a savepoint first; a row already there (a re-run of an interrupted load, a
/// duplicate in the file, a concurrent writer) undoes it, and the batch goes the careful way.
async fn move_staged(
    conn: &mut PgConnection,
    first_load: bool,
    (insert, on_conflict): (&str, &str),
    now: Option<i64>,
) -> StoreResult<Vec<i64>> {
    async fn run(conn: &mut PgConnection, sql: String, now: Option<i64>) -> sqlx::Result<Vec<i64>> {
        let q = sqlx::query_scalar(sqlx::AssertSqlSafe(sql));
        match now {
            Some(now) => q.bind(now).fetch_all(conn).await,
            None => q.fetch_all(conn).await,
        }
    }
    if first_load {
        let mut sp = conn.begin().await?;
        match run(&mut sp, format!("{insert} RETURNING customer_id"), now).await {
            Ok(touched) => {
                sp.commit().await?;
                return Ok(touched);
            }
            Err(e) if is_unique_violation(&e) => sp.rollback().await?,
            Err(e) => return Err(e.into()),
        }
    }
    Ok(run(
        conn,
        format!("{insert} {on_conflict} RETURNING customer_id"),
        now,
    )
    .await?)
}

fn is_unique_violation(e: &sqlx::Error) -> bool {
    e.as_database_error()
        .and_then(|d| d.code())
        .is_some_and(|c| c == "23505")
}

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
async fn analyze_if_grown(conn: &mut PgConnection, table: &str) -> StoreResult<()> {
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

/// How rows of one kind reach their table: copied into a temporary table, then moved.
struct Staging {
    /// The table the rows end in.
    table: &'static str,
    /// Creates the temporary table (if missing).
    create: &'static str,
    /// The temporary table's name.
    stage: &'static str,
    /// Moves the rows; binds the time as `$1`. Ends before its `ON CONFLICT`.
    insert: String,
    /// The key a row already stored conflicts on.
    key: &'static str,
}

/// A batch of rows that belong to customers named by external id (orders, interactions):
/// unknown customers are created, the rows are staged and moved (see [`Staging`]), and the
/// touched customers' aggregates are recomputed, all in one transaction.
async fn import_for_customers<R>(
    conn: &mut PgConnection,
    currency: &str,
    batch: &[R],
    (entity, by): (Entity, &Actor),
    customer: impl Fn(&R) -> &str,
    staging: Staging,
    mut write: impl FnMut(&mut CopyRows, &R, i64),
) -> StoreResult<BatchOutcome> {
    let Staging {
        table,
        create,
        stage,
        insert,
        key,
    } = staging;
    analyze_if_grown(conn, table).await?;
    let mut tx = conn.begin().await?;
    let (ids, created) = resolve_customers(&mut tx, batch.iter().map(&customer)).await?;
    sqlx::query(create).execute(&mut *tx).await?;
    let mut rows = CopyRows::new();
    for r in batch {
        if let Some(&id) = ids.get(customer(r)) {
            write(&mut rows, r, id);
            rows.end();
        }
    }
    copy(&mut tx, &format!("COPY {stage} FROM STDIN"), rows).await?;
    let first_load = first_load(&mut tx).await?;
    let on_conflict = format!("ON CONFLICT ({key}) DO NOTHING");
    let touched = move_staged(
        &mut tx,
        first_load,
        (&insert, &on_conflict),
        Some(now_micros()),
    )
    .await?;
    let inserted = touched.len() as u64;
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
            create: "CREATE TEMP TABLE IF NOT EXISTS load_orders (external_id TEXT, customer_id BIGINT, \
         occurred_at BIGINT, purchase_day BIGINT, currency TEXT, total_minor BIGINT, channel TEXT, \
         status TEXT) ON COMMIT DELETE ROWS",
            stage: "load_orders",
            insert: format!(
                "INSERT INTO orders ({ORDER_COLUMNS}, created_at, updated_at) \
                 SELECT {ORDER_COLUMNS}, $1, $1 FROM load_orders"
            ),
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
            create: "CREATE TEMP TABLE IF NOT EXISTS load_interactions (external_id TEXT, customer_id BIGINT, \
         channel TEXT, direction TEXT, kind TEXT, subject TEXT, body TEXT, staff_user_id BIGINT, \
         buying_signal BIGINT, occurred_at BIGINT) ON COMMIT DELETE ROWS",
            stage: "load_interactions",
            insert: format!(
                "INSERT INTO interactions ({INTERACTION_COLUMNS}, created_at) \
                 SELECT {INTERACTION_COLUMNS}, $1 FROM load_interactions"
            ),
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

pub(crate) async fn import_order_lines(
    conn: &mut PgConnection,
    currency: &str,
    batch: &[OrderLineRow],
    by: &Actor,
) -> StoreResult<BatchOutcome> {
    analyze_if_grown(conn, "order_lines").await?;
    let mut tx = conn.begin().await?;
    sqlx::query(
        "CREATE TEMP TABLE IF NOT EXISTS load_lines (pos BIGINT, order_external_id TEXT, line_no BIGINT, \
         product_external_id TEXT, description TEXT, quantity BIGINT, unit_price_minor BIGINT, \
         total_minor BIGINT, order_id BIGINT, customer_id BIGINT) ON COMMIT DELETE ROWS",
    )
    .execute(&mut *tx)
    .await?;
    let mut rows = CopyRows::new();
    for (pos, l) in batch.iter().enumerate() {
        rows.int(Some(pos as i64));
        rows.text(Some(&l.order_external_id));
        rows.int(Some(l.line_no));
        rows.text(l.product_external_id.as_deref());
        rows.text(Some(&l.description));
        rows.int(Some(l.quantity));
        rows.int(Some(l.unit_price_minor));
        rows.int(Some(l.total_minor));
        rows.end();
    }
    copy(
        &mut tx,
        "COPY load_lines (pos, order_external_id, line_no, product_external_id, description, quantity, \
         unit_price_minor, total_minor) FROM STDIN",
        rows,
    )
    .await?;
    // Each line's order is looked up once; the statements below read what was found.
    sqlx::query(
        "UPDATE load_lines s SET order_id = o.id, customer_id = o.customer_id \
         FROM orders o WHERE o.external_id = s.order_external_id",
    )
    .execute(&mut *tx)
    .await?;
    let unknown: Vec<i64> =
        sqlx::query_scalar("SELECT pos FROM load_lines WHERE order_id IS NULL ORDER BY pos")
            .fetch_all(&mut *tx)
            .await?;
    let now = now_micros();
    let created = sqlx::query(
        "INSERT INTO products (external_id, name, currency, active, created_at, updated_at) \
         SELECT DISTINCT s.product_external_id, 'Product ' || s.product_external_id, $1, 1, $2, $2 \
         FROM load_lines s WHERE s.order_id IS NOT NULL AND s.product_external_id IS NOT NULL \
         AND NOT EXISTS (SELECT 1 FROM products p WHERE p.external_id = s.product_external_id) \
         ON CONFLICT (external_id) DO NOTHING",
    )
    .bind(currency)
    .bind(now)
    .execute(&mut *tx)
    .await?
    .rows_affected();
    let first_load = first_load(&mut tx).await?;
    let inserted = move_staged(
        &mut tx,
        first_load,
        (
            "INSERT INTO order_lines (order_id, customer_id, line_no, product_id, description, quantity, \
             unit_price_minor, total_minor) \
             SELECT s.order_id, s.customer_id, s.line_no, p.id, s.description, s.quantity, s.unit_price_minor, \
             s.total_minor FROM load_lines s LEFT JOIN products p ON p.external_id = s.product_external_id \
             WHERE s.order_id IS NOT NULL ORDER BY s.pos",
            "ON CONFLICT (order_id, line_no) DO NOTHING",
        ),
        None,
    )
    .await?
    .len() as u64;
    let unknown_orders: Vec<usize> = unknown.into_iter().map(|p| p as usize).collect();
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
