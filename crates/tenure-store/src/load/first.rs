//! First loads: a file loaded into (nearly) empty tables builds their secondary indexes and
//! the customers' aggregates once, after the rows are in, instead of row by row.
//!
//! [`Store::begin_first_load`] drops the tables' non-unique secondary indexes and records
//! them, with a row per table, in `first_loads` — in one transaction. Unique indexes stay:
//! they keep re-runs idempotent and concurrent writers correct. While any `first_loads` row
//! exists, import batches skip the per-batch aggregate refresh (each batch checks in its own
//! transaction, so a second import process agrees). [`Store::finish_first_load`] builds the
//! recorded indexes that are missing, rebuilds every customer's aggregates set-based and
//! removes the marker last, so an import interrupted in any phase — loading, indexing,
//! aggregating — finishes the job when it (or any import) is run again.

use sqlx::{AssertSqlSafe, Row};

use crate::time::now_micros;
use crate::{Backend, Store, StoreResult};

/// A table holding fewer rows than this is loaded as a first load: rebuilding its indexes
/// afterwards costs next to nothing.
pub const NEARLY_EMPTY: i64 = 1_000;

/// Whether a first load is under way, read inside a batch's transaction.
pub(crate) const PENDING: &str = "SELECT COUNT(*) FROM first_loads";

/// Whether new customers' search terms wait in `first_load_terms` (the term table is part
/// of a first load).
pub(crate) const TERMS_STAGED: &str =
    "SELECT COUNT(*) FROM first_loads WHERE name = 'customer_search_terms'";

/// Moves the staged search terms into their table, sorted (the `WHERE` keeps SQLite from
/// reading `ON CONFLICT` as a join's `ON`).
pub(crate) const MOVE_TERMS: &str = "INSERT INTO customer_search_terms (term, customer_id) \
     SELECT term, customer_id FROM first_load_terms WHERE 1 = 1 ORDER BY term, customer_id \
     ON CONFLICT DO NOTHING";

/// Drops the staged search terms of customers that also have terms in the term table: a
/// customer of the file edited (or one created) through the API during the load has its
/// current terms there, written after the file's, which are stale. Runs only when the term
/// table holds any term.
pub(crate) const HAS_TERMS: &str =
    "SELECT COUNT(*) FROM (SELECT 1 FROM customer_search_terms LIMIT 1) s";
pub(crate) const DROP_SUPERSEDED_TERMS: &str = "DELETE FROM first_load_terms \
     WHERE customer_id IN (SELECT DISTINCT customer_id FROM customer_search_terms)";

/// A table's secondary indexes that a first load may drop: not unique, not a key.
fn secondary_indexes_sql(backend: Backend) -> &'static str {
    match backend {
        Backend::Sqlite => {
            "SELECT name, sql AS definition FROM sqlite_master WHERE type = 'index' AND tbl_name = $1 \
             AND sql IS NOT NULL AND upper(sql) NOT LIKE 'CREATE UNIQUE%' ORDER BY name"
        }
        Backend::Postgres => {
            "SELECT CAST(c.relname AS TEXT) AS name, pg_get_indexdef(x.indexrelid) AS definition \
             FROM pg_index x JOIN pg_class c ON c.oid = x.indexrelid \
             WHERE x.indrelid = CAST($1 AS regclass) AND NOT x.indisunique AND NOT x.indisprimary \
             ORDER BY c.relname"
        }
    }
}

/// A PostgreSQL table's foreign keys to its parents, as `ALTER TABLE … ADD CONSTRAINT`
/// would name them.
const FOREIGN_KEYS: &str = "SELECT CAST(conname AS TEXT) AS name, pg_get_constraintdef(oid) AS definition \
     FROM pg_constraint WHERE conrelid = CAST($1 AS regclass) AND contype = 'f' ORDER BY conname";

/// How a recorded foreign key's statement begins (an index's is `CREATE INDEX`).
const ADD_KEY_PREFIX: &str = "ALTER TABLE ";

pub(crate) fn index_exists_sql(backend: Backend) -> &'static str {
    match backend {
        Backend::Sqlite => "SELECT COUNT(*) FROM sqlite_master WHERE type = 'index' AND name = $1",
        Backend::Postgres => {
            "SELECT COUNT(*) FROM pg_indexes WHERE schemaname = current_schema() AND indexname = $1"
        }
    }
}

/// Records in the marker what a first load dropped from `table` and how to build it again.
async fn record(
    tx: &mut sqlx::Transaction<'static, sqlx::Any>,
    name: &str,
    table: &str,
    definition: String,
    now: i64,
) -> StoreResult<()> {
    sqlx::query(
        "INSERT INTO first_loads (name, table_name, definition, started_at) VALUES ($1, $2, $3, $4)",
    )
    .bind(name.to_owned())
    .bind(table.to_owned())
    .bind(definition)
    .bind(now)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// An index name from the database's own catalogue, quoted as an identifier.
fn quoted(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// What finishing a first load did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FirstLoadFinished {
    /// The indexes built again.
    pub indexes: Vec<String>,
    /// The customers whose aggregates were rebuilt.
    pub customers: u64,
}

impl Store {
    /// Starts a first load of those of `tables` that are nearly empty (see
    /// [`NEARLY_EMPTY`]), or joins one already under way. Returns whether imports now run
    /// as a first load (their aggregates deferred to [`Store::finish_first_load`]).
    ///
    /// `tables` are names from the import code, never from input.
    pub async fn begin_first_load(&self, tables: &[&'static str]) -> StoreResult<bool> {
        let mut w = self.begin_write().await?;
        let pending: i64 = sqlx::query_scalar(PENDING).fetch_one(&mut *w.tx).await?;
        let mut under_way = pending > 0;
        let now = now_micros();
        for &table in tables {
            let marked: i64 =
                sqlx::query_scalar("SELECT COUNT(*) FROM first_loads WHERE name = $1")
                    .bind(table)
                    .fetch_one(&mut *w.tx)
                    .await?;
            if marked > 0 {
                continue;
            }
            let rows: i64 = sqlx::query_scalar(AssertSqlSafe(format!(
                "SELECT COUNT(*) FROM (SELECT 1 FROM {table} LIMIT {NEARLY_EMPTY}) s"
            )))
            .fetch_one(&mut *w.tx)
            .await?;
            if rows >= NEARLY_EMPTY {
                continue;
            }
            let indexes = sqlx::query(secondary_indexes_sql(self.backend()))
                .bind(table)
                .fetch_all(&mut *w.tx)
                .await?;
            for row in &indexes {
                let name: String = row.try_get("name")?;
                let definition: String = row.try_get("definition")?;
                record(&mut w.tx, &name, table, definition, now).await?;
                sqlx::query(AssertSqlSafe(format!("DROP INDEX {}", quoted(&name))))
                    .execute(&mut *w.tx)
                    .await?;
            }
            if self.backend() == Backend::Postgres {
                // A foreign key costs PostgreSQL a lookup per inserted row (a third of a
                // batch's time); the import resolves every row's parent itself, and deletes
                // walk the registry instead of cascading, so the keys are added back once,
                // checked in one pass, at the end.
                let keys = sqlx::query(FOREIGN_KEYS)
                    .bind(table)
                    .fetch_all(&mut *w.tx)
                    .await?;
                for row in &keys {
                    let name: String = row.try_get("name")?;
                    let definition: String = row.try_get("definition")?;
                    let add = format!(
                        "{ADD_KEY_PREFIX}{table} ADD CONSTRAINT {} {definition} NOT VALID",
                        quoted(&name)
                    );
                    record(&mut w.tx, &name, table, add, now).await?;
                    sqlx::query(AssertSqlSafe(format!(
                        "ALTER TABLE {table} DROP CONSTRAINT {}",
                        quoted(&name)
                    )))
                    .execute(&mut *w.tx)
                    .await?;
                }
            }
            sqlx::query(
                "INSERT INTO first_loads (name, table_name, definition, started_at) \
                 VALUES ($1, $1, NULL, $2)",
            )
            .bind(table)
            .bind(now)
            .execute(&mut *w.tx)
            .await?;
            under_way = true;
        }
        w.commit().await?;
        Ok(under_way)
    }

    /// Whether a first load is under way (an import started one and has not finished it).
    pub async fn first_load_pending(&self) -> StoreResult<bool> {
        let n: i64 = sqlx::query_scalar(PENDING).fetch_one(self.pool()).await?;
        Ok(n > 0)
    }

    /// Finishes a first load: builds the recorded indexes that are missing (each in a
    /// transaction of its own), then rebuilds every customer's aggregates and removes the
    /// marker in one. Does nothing when no first load is under way.
    pub async fn finish_first_load(&self) -> StoreResult<Option<FirstLoadFinished>> {
        let rows = sqlx::query(
            "SELECT name, definition FROM first_loads WHERE definition IS NOT NULL ORDER BY name",
        )
        .fetch_all(self.pool())
        .await?;
        if !self.first_load_pending().await? {
            return Ok(None);
        }
        let mut done = FirstLoadFinished::default();
        let currency = self.reporting_currency();
        if self.backend() == Backend::Sqlite {
            // A SQLite file finishes on the import connection, with its larger cache.
            let Some(moved) = self.load_sqlite(super::sqlite::move_staged_terms).await else {
                return Err(crate::StoreError::Config(
                    "imports need a SQLite file or PostgreSQL".into(),
                ));
            };
            moved?;
            for row in &rows {
                let name: String = row.try_get("name")?;
                let definition: String = row.try_get("definition")?;
                let built = self
                    .load_sqlite(|c| super::sqlite::build_recorded_index(c, &name, &definition))
                    .await;
                if built.transpose()? == Some(true) {
                    done.indexes.push(name);
                }
            }
            if let Some(customers) = self
                .load_sqlite(|c| super::sqlite::end_first_load(c, currency))
                .await
            {
                done.customers = customers?;
            }
            return Ok(Some(done));
        }
        // PostgreSQL finishes on the import connection too: its statements take seconds by
        // nature, not worth a slow-statement warning.
        let mut conn = self.pg_loader().await?;
        let conn = conn.get()?;
        // The staged search terms first, so that the term table's own index is then built
        // over all of them.
        let has_terms: i64 = sqlx::query_scalar(HAS_TERMS).fetch_one(&mut *conn).await?;
        if has_terms > 0 {
            sqlx::query(DROP_SUPERSEDED_TERMS)
                .execute(&mut *conn)
                .await?;
        }
        if let Err(e) = swap_in_terms(conn).await {
            tracing::warn!(error = %e, "the staged search terms overlap the term table's; merging them");
            if let Err(e) = bulk_move_terms(conn).await {
                tracing::warn!(error = %e, "moving the search terms in bulk failed; moving them row by row");
                let mut tx = sqlx::Connection::begin(&mut *conn).await?;
                sqlx::query(MOVE_TERMS).execute(&mut *tx).await?;
                sqlx::query("DELETE FROM first_load_terms")
                    .execute(&mut *tx)
                    .await?;
                tx.commit().await?;
            }
        }
        for row in &rows {
            let name: String = row.try_get("name")?;
            let definition: String = row.try_get("definition")?;
            if let Some(rest) = definition.strip_prefix(ADD_KEY_PREFIX) {
                let table = rest.split(' ').next().unwrap_or_default().to_owned();
                add_key_back(conn, &table, &name, &definition).await?;
                continue;
            }
            let mut tx = sqlx::Connection::begin(&mut *conn).await?;
            let exists: i64 = sqlx::query_scalar(index_exists_sql(Backend::Postgres))
                .bind(name.clone())
                .fetch_one(&mut *tx)
                .await?;
            if exists == 0 {
                // The definition was read from the database's own catalogue.
                sqlx::query(AssertSqlSafe(definition))
                    .execute(&mut *tx)
                    .await?;
                done.indexes.push(name);
            }
            tx.commit().await?;
        }
        // The planner's statistics first: taken while the tables were (nearly) empty, they
        // make the rebuild's plan several times slower than it need be.
        sqlx::query("ANALYZE customers, orders, interactions")
            .execute(&mut *conn)
            .await?;
        let mut tx = sqlx::Connection::begin(&mut *conn).await?;
        sqlx::query("DELETE FROM customer_stats")
            .execute(&mut *tx)
            .await?;
        done.customers = sqlx::query(AssertSqlSafe(crate::stats::rebuild_all_sql()))
            .bind(tenure_domain::catalog::OrderStatus::Completed.as_str())
            .bind(currency)
            .execute(&mut *tx)
            .await?
            .rows_affected();
        sqlx::query("DELETE FROM first_loads")
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(Some(done))
    }
}

/// The column, parent table and parent column of a single-column key that clears its
/// column when the parent goes, from its definition as PostgreSQL prints it
/// (`FOREIGN KEY (product_id) REFERENCES products(id) ON DELETE SET NULL`).
fn set_null_key(definition: &str) -> Option<(&str, &str, &str)> {
    let rest = definition.split("FOREIGN KEY (").nth(1)?;
    if !rest.contains("ON DELETE SET NULL") {
        return None;
    }
    let (column, rest) = rest.split_once(") REFERENCES ")?;
    let (parent, rest) = rest.split_once('(')?;
    let (parent_column, _) = rest.split_once(')')?;
    let plain =
        |n: &str| !n.is_empty() && n.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_');
    (plain(column) && plain(parent) && plain(parent_column)).then_some((
        column,
        parent,
        parent_column,
    ))
}

/// Adds a foreign key a first load dropped back, unless it is there, and checks the rows
/// against it in one pass (`VALIDATE`, which lets other writers go on). A row left pointing
/// at a parent deleted while the key was off is cleared, as the key would have done, when
/// the key clears its column (`ON DELETE SET NULL`); otherwise such a row leaves the key
/// enforced for every new row but not yet validated, with a warning, rather than keeping
/// the load from finishing.
async fn add_key_back(
    conn: &mut sqlx::PgConnection,
    table: &str,
    name: &str,
    definition: &str,
) -> StoreResult<()> {
    let exists: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM pg_constraint WHERE conrelid = CAST($1 AS regclass) AND conname = $2",
    )
    .bind(table)
    .bind(name)
    .fetch_one(&mut *conn)
    .await?;
    if exists == 0 {
        // The statement was made from the database's own catalogue.
        sqlx::query(AssertSqlSafe(definition.to_owned()))
            .execute(&mut *conn)
            .await?;
    }
    let validate = format!("ALTER TABLE {table} VALIDATE CONSTRAINT {}", quoted(name));
    let mut validated = sqlx::query(AssertSqlSafe(validate.clone()))
        .execute(&mut *conn)
        .await;
    if let (Err(_), Some((column, parent, parent_column))) = (&validated, set_null_key(definition))
    {
        // The names were read from the database's own catalogue.
        let cleared = sqlx::query(AssertSqlSafe(format!(
            "UPDATE {table} SET {column} = NULL WHERE {column} IS NOT NULL AND NOT EXISTS \
             (SELECT 1 FROM {parent} p WHERE p.{parent_column} = {table}.{column})"
        )))
        .execute(&mut *conn)
        .await?
        .rows_affected();
        tracing::info!(
            table,
            column,
            cleared,
            "cleared references to rows deleted during the first load"
        );
        validated = sqlx::query(AssertSqlSafe(validate))
            .execute(&mut *conn)
            .await;
    }
    if let Err(e) = validated {
        tracing::warn!(
            table,
            constraint = name,
            error = %e,
            "rows written during the first load break a foreign key; it holds for new rows"
        );
    }
    Ok(())
}

/// Makes the staged search terms the term table on PostgreSQL: the few terms already in
/// the table (customers written through the API during the load, or there before it) are
/// added to the staged ones, the staging table takes the term table's place and its key is
/// built in one sorted pass, and an empty staging table is made for the next load — in one
/// transaction, which holds the table against searches and writes meanwhile (seconds, once,
/// at the end of a first load). The staged terms that an edit during the load superseded
/// are gone by then ([`DROP_SUPERSEDED_TERMS`]); should the key still not build, the
/// transaction is undone and the caller merges the two instead. The term table's second
/// index is among those the load recorded, built next.
async fn swap_in_terms(conn: &mut sqlx::PgConnection) -> StoreResult<()> {
    let mut tx = sqlx::Connection::begin(&mut *conn).await?;
    let staged: i64 = sqlx::query_scalar(TERMS_STAGED).fetch_one(&mut *tx).await?;
    if staged == 0 {
        return Ok(());
    }
    for sql in [
        "LOCK TABLE customer_search_terms IN ACCESS EXCLUSIVE MODE",
        "INSERT INTO first_load_terms (term, customer_id) SELECT term, customer_id FROM customer_search_terms",
        "DROP TABLE customer_search_terms",
        "ALTER TABLE first_load_terms RENAME TO customer_search_terms",
        "ALTER TABLE customer_search_terms ADD CONSTRAINT customer_search_terms_pkey \
         PRIMARY KEY (term, customer_id)",
        "CREATE TABLE first_load_terms (term TEXT COLLATE \"C\" NOT NULL, customer_id BIGINT NOT NULL)",
    ] {
        sqlx::query(sql).execute(&mut *tx).await?;
    }
    tx.commit().await?;
    Ok(())
}

/// Moves the staged search terms into their table on PostgreSQL without inserting them one
/// by one into its primary key: the key is dropped, the terms appended, the key built again
/// in one sorted pass, in one transaction (which holds the table against searches and
/// writes meanwhile: seconds, once, at the end of a first load). Terms already in the table
/// (a customer written through the API during the load) are not added twice; should the key
/// still not build, the transaction is undone and the caller moves the terms row by row.
async fn bulk_move_terms(conn: &mut sqlx::PgConnection) -> StoreResult<()> {
    let mut tx = sqlx::Connection::begin(&mut *conn).await?;
    let staged: i64 = sqlx::query_scalar(TERMS_STAGED).fetch_one(&mut *tx).await?;
    if staged > 0 {
        sqlx::query("LOCK TABLE customer_search_terms IN ACCESS EXCLUSIVE MODE")
            .execute(&mut *tx)
            .await?;
        sqlx::query("ALTER TABLE customer_search_terms DROP CONSTRAINT customer_search_terms_pkey")
            .execute(&mut *tx)
            .await?;
        sqlx::query(
            "INSERT INTO customer_search_terms (term, customer_id) SELECT s.term, s.customer_id \
             FROM first_load_terms s WHERE NOT EXISTS (SELECT 1 FROM customer_search_terms c \
             WHERE c.term = s.term AND c.customer_id = s.customer_id)",
        )
        .execute(&mut *tx)
        .await?;
        sqlx::query(
            "ALTER TABLE customer_search_terms ADD CONSTRAINT customer_search_terms_pkey \
             PRIMARY KEY (term, customer_id)",
        )
        .execute(&mut *tx)
        .await?;
    }
    sqlx::query("TRUNCATE first_load_terms")
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(())
}
