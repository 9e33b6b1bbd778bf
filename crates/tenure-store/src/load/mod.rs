//! Bulk imports in batches: each batch is one transaction, skips rows whose external id is
//! already stored (so a re-run, or a run after a crash, completes the job without
//! duplicates), recomputes the aggregates of the customers it touched, and appends its
//! change-log entry.
//!
//! The batches run on a connection of their own: prepared statements over `rusqlite` for a
//! SQLite file ([`sqlite`]), `COPY` for PostgreSQL ([`postgres`]) — the generic driver's
//! per-value cost made million-row imports several times slower than either. Both write
//! the same rows under the same rules; what they share is here: the row types, the batch
//! outcome, which customers a batch creates, the column lists, the aggregate rebuild's
//! chunks and the change-log entry. Products, a small table, go through the pool on
//! PostgreSQL.

pub mod first;
pub(crate) mod postgres;
pub(crate) mod sqlite;

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use sqlx::{AssertSqlSafe, Row};
use tenure_domain::catalog::{OrderStatus, SalesChannel};
use tenure_domain::changes::{Actor, Entity, import_change};
use tenure_domain::customer::CustomerData;
use tenure_domain::interaction::InteractionData;

use crate::sql::Bulk;
use crate::time::now_micros;
use crate::{Store, StoreError, StoreResult};

/// How many import batches are written into PostgreSQL at once, each on its own connection
/// (PostgreSQL runs a connection's statements on one core).
pub const PG_LOADERS: usize = 2;

/// How often a PostgreSQL import batch is tried before its error is reported.
const PG_ATTEMPTS: u32 = 4;

/// Whether a failed import batch may succeed when run again from the start: batches
/// written at once can meet on a row both create (a customer both name first: the second
/// waits for the first, then breaks the unique key) or deadlock on rows both write, and
/// the database can be briefly unreachable. The batch's transaction was undone, so a
/// retry writes exactly what the first try would have.
fn worth_retrying(e: &StoreError) -> bool {
    matches!(e, StoreError::Conflict { .. } | StoreError::Unavailable(_))
}

/// Runs one import batch on a PostgreSQL import connection, again on a fresh connection
/// when [`worth_retrying`] says so.
macro_rules! pg_batch {
    ($store:expr, |$conn:ident| $call:expr) => {{
        let mut attempt = 1;
        loop {
            let mut lent = $store.pg_loader().await?;
            let $conn = lent.get()?;
            match $call.await {
                Err(e) if attempt < PG_ATTEMPTS && worth_retrying(&e) => {
                    lent.discard();
                    tracing::debug!(error = %e, attempt, "retrying an import batch");
                    tokio::time::sleep(std::time::Duration::from_millis(
                        50 * u64::from(attempt),
                    ))
                    .await;
                    attempt += 1;
                }
                Err(e) => {
                    lent.discard();
                    break Err(e);
                }
                done => break done,
            }
        }
    }};
}

/// The columns a loaded customer row fills, in the order both loaders write them: the id,
/// the 16 writable columns of `customers::fields`, the consents and the two times.
pub(crate) const CUSTOMER_COLUMNS: &str = "id, external_id, kind, name, email, phone, birthday, locale, region, \
     acquisition_source, acquisition_channel, account_id, owner_id, tags, contact_points, preferences, \
     custom_fields, consents, created_at, updated_at";

/// The columns of a loaded order (the creation time is written twice, as `updated_at` too).
pub(crate) const ORDER_COLUMNS: &str = "external_id, customer_id, occurred_at, purchase_day, currency, total_minor, \
     channel, status";

/// The columns of a loaded interaction.
pub(crate) const INTERACTION_COLUMNS: &str = "external_id, customer_id, channel, direction, kind, subject, body, \
     staff_user_id, buying_signal, occurred_at";

/// The distinct external ids a batch names, sorted.
pub(crate) fn distinct<'k>(keys: impl Iterator<Item = &'k str>) -> Vec<&'k str> {
    let mut keys: Vec<&str> = keys.collect();
    keys.sort_unstable();
    keys.dedup();
    keys
}

/// Adds the placeholders just created to the ids found.
pub(crate) fn add_created(
    ids: &mut HashMap<String, i64>,
    created: &[CustomerData],
    new_ids: &[i64],
) {
    for (d, id) in created.iter().zip(new_ids) {
        if let Some(x) = &d.external_id {
            ids.insert(x.clone(), *id);
        }
    }
}

/// The touched customers of a batch in chunks, each with its two statements recomputing
/// their aggregates (see `stats::rebuild_some_sql`).
pub(crate) fn rebuild_chunks(mut touched: Vec<i64>) -> Vec<(Vec<i64>, String, String)> {
    touched.sort_unstable();
    touched.dedup();
    touched
        .chunks(500)
        .map(|chunk| {
            let (delete, insert) = crate::stats::rebuild_some_sql(chunk.len());
            (chunk.to_vec(), delete, insert)
        })
        .collect()
}

/// What a batch of `entity` rows records in the change log.
pub(crate) fn batch_change(
    entity: Entity,
    outcome: &BatchOutcome,
) -> tenure_domain::changes::Change {
    import_change(
        entity,
        outcome.inserted,
        outcome.skipped,
        outcome.customers_created,
    )
}

/// One purchase of the plain purchase log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PurchaseRow {
    pub customer_external_id: String,
    pub order_external_id: String,
    pub occurred_at: DateTime<Utc>,
    pub total_minor: i64,
    pub currency: String,
    pub channel: SalesChannel,
    /// `completed` for the purchase log; orders files may carry others.
    pub status: OrderStatus,
}

/// One interaction of an interactions file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InteractionRow {
    pub external_id: String,
    pub customer_external_id: String,
    pub data: InteractionData,
}

/// One line of an order, naming the order and the product by external id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OrderLineRow {
    pub order_external_id: String,
    pub line_no: i64,
    pub product_external_id: Option<String>,
    pub description: String,
    pub quantity: i64,
    pub unit_price_minor: i64,
    pub total_minor: i64,
}

/// One product of a products file; the category is named and created when new.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProductRow {
    pub external_id: String,
    pub name: String,
    pub category: Option<String>,
    pub price_minor: Option<i64>,
    pub currency: String,
}

/// What a batch did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BatchOutcome {
    /// Rows written.
    pub inserted: u64,
    /// Rows whose external id was already stored.
    pub skipped: u64,
    /// Customers (or products) created because a row named an unknown one.
    pub customers_created: u64,
    /// Positions in the batch of rows that name an order that does not exist.
    pub unknown_orders: Vec<usize>,
}

impl BatchOutcome {
    /// A batch of `len` rows that wrote `inserted` and created `created` referenced rows.
    pub(crate) fn of(len: usize, inserted: u64, created: u64) -> Self {
        BatchOutcome {
            inserted,
            skipped: len as u64 - inserted,
            customers_created: created,
            unknown_orders: Vec::new(),
        }
    }
}

/// The customers of a batch to insert: those whose external id is not stored yet and
/// not repeated earlier in the batch.
pub(crate) fn fresh_customers(
    batch: &[CustomerData],
    existing: &HashMap<String, i64>,
) -> Vec<CustomerData> {
    let mut seen = std::collections::HashSet::new();
    batch
        .iter()
        .filter(|c| match c.external_id.as_deref() {
            Some(x) => !existing.contains_key(x) && seen.insert(x),
            None => true,
        })
        .cloned()
        .collect()
}

/// Placeholder customers for the external ids rows named that are not stored; their name
/// says where they came from until a customers file fills them in.
pub(crate) fn placeholders<'k>(
    keys: impl Iterator<Item = &'k str>,
    ids: &HashMap<String, i64>,
) -> Vec<CustomerData> {
    keys.filter(|k| !ids.contains_key(*k))
        .map(|k| {
            let mut d = CustomerData::named(format!("Customer {k}"));
            d.external_id = Some(k.to_owned());
            d
        })
        .collect()
}

async fn lookup(
    tx: &mut sqlx::Transaction<'static, sqlx::Any>,
    head: &'static str,
    external_ids: &[&str],
    found: &mut HashMap<String, i64>,
) -> StoreResult<()> {
    for chunk in external_ids.chunks(500) {
        let list: Vec<String> = (0..chunk.len()).map(|k| format!("${}", k + 1)).collect();
        let mut q = sqlx::query(AssertSqlSafe(format!("{head} ({})", list.join(","))));
        for x in chunk {
            q = q.bind((*x).to_owned());
        }
        for row in q.fetch_all(&mut **tx).await? {
            found.insert(
                row.try_get::<String, _>("external_id")?,
                row.try_get::<i64, _>("id")?,
            );
        }
    }
    Ok(())
}

impl Store {
    /// Imports customers; those whose external id is stored already (or repeats within the
    /// batch) are skipped.
    pub async fn import_customers(
        &self,
        batch: &[CustomerData],
        by: &Actor,
    ) -> StoreResult<BatchOutcome> {
        if let Some(done) = self
            .load_sqlite(|c| sqlite::import_customers(c, batch, by))
            .await
        {
            return done;
        }
        pg_batch!(self, |conn| postgres::import_customers(conn, batch, by))
    }

    /// Imports purchases as orders, creating unknown customers; orders whose external id is
    /// stored already are skipped. The touched customers' aggregates are recomputed in the
    /// same transaction.
    pub async fn import_purchases(
        &self,
        batch: &[PurchaseRow],
        by: &Actor,
    ) -> StoreResult<BatchOutcome> {
        let currency = self.reporting_currency();
        if let Some(done) = self
            .load_sqlite(|c| sqlite::import_purchases(c, currency, batch, by))
            .await
        {
            return done;
        }
        pg_batch!(self, |conn| postgres::import_purchases(
            conn, currency, batch, by
        ))
    }

    /// Imports interactions, creating unknown customers; interactions whose external id is
    /// stored already are skipped. The touched customers' aggregates are recomputed.
    pub async fn import_interactions(
        &self,
        batch: &[InteractionRow],
        by: &Actor,
    ) -> StoreResult<BatchOutcome> {
        let currency = self.reporting_currency();
        if let Some(done) = self
            .load_sqlite(|c| sqlite::import_interactions(c, currency, batch, by))
            .await
        {
            return done;
        }
        pg_batch!(self, |conn| postgres::import_interactions(
            conn, currency, batch, by
        ))
    }

    /// Imports products, creating categories named for the first time; products whose
    /// external id is stored already are skipped.
    pub async fn import_products(
        &self,
        batch: &[ProductRow],
        by: &Actor,
    ) -> StoreResult<BatchOutcome> {
        if let Some(done) = self
            .load_sqlite(|c| sqlite::import_products(c, batch, by))
            .await
        {
            return done;
        }
        let mut w = self.begin_write().await?;
        let mut names: Vec<&str> = batch.iter().filter_map(|p| p.category.as_deref()).collect();
        names.sort_unstable();
        names.dedup();
        let mut categories = HashMap::new();
        lookup(
            &mut w.tx,
            "SELECT id, name AS external_id FROM product_categories WHERE name IN",
            &names,
            &mut categories,
        )
        .await?;
        for name in names {
            if !categories.contains_key(name) {
                let id: i64 = sqlx::query_scalar(
                    "INSERT INTO product_categories (name) VALUES ($1) RETURNING id",
                )
                .bind(name.to_owned())
                .fetch_one(&mut *w.tx)
                .await?;
                categories.insert(name.to_owned(), id);
            }
        }
        let now = now_micros();
        let mut rows = Bulk::new(
            self.backend(),
            "INSERT INTO products (external_id, name, category_id, price_minor, currency, active, created_at, updated_at)",
            8,
        )
        .on_conflict_do_nothing("external_id");
        for p in batch {
            rows.row(&mut w.tx, |r| {
                r.add(p.external_id.clone())?;
                r.add(p.name.clone())?;
                r.add(p.category.as_ref().and_then(|c| categories.get(c)).copied())?;
                r.add(p.price_minor)?;
                r.add(p.currency.clone())?;
                r.add(1_i64)?;
                r.add(now)?;
                r.add(now)
            })
            .await?;
        }
        rows.flush(&mut w.tx).await?;
        let outcome = BatchOutcome::of(batch.len(), rows.rows_affected(), 0);
        w.append_change(by, &batch_change(Entity::Product, &outcome))
            .await?;
        w.commit().await?;
        Ok(outcome)
    }

    /// Imports order lines into existing orders (rows naming an unknown order are reported,
    /// not written), creating products named for the first time with a placeholder name.
    /// A line whose order already has a line with its number is skipped.
    pub async fn import_order_lines(
        &self,
        batch: &[OrderLineRow],
        by: &Actor,
    ) -> StoreResult<BatchOutcome> {
        let currency = self.reporting_currency();
        if let Some(done) = self
            .load_sqlite(|c| sqlite::import_order_lines(c, currency, batch, by))
            .await
        {
            return done;
        }
        pg_batch!(self, |conn| postgres::import_order_lines(
            conn, currency, batch, by
        ))
    }
}
