//! Bulk imports in batches: each batch is one transaction, skips rows whose external id is
//! already stored (so a re-run, or a run after a crash, completes the job without
//! duplicates) and recomputes the aggregates of the customers it touched.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use sqlx::{AssertSqlSafe, Row};
use tenure_domain::catalog::{OrderStatus, SalesChannel, purchase_day};
use tenure_domain::customer::CustomerData;
use tenure_domain::interaction::InteractionData;

use crate::customers::insert_customers_tx;
use crate::sql::Bulk;
use crate::{pg_load, sqlite_load};
use crate::time::now_micros;
use crate::{Store, StoreResult, stats};

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

/// The ids of the customers with these external ids that exist, including the external ids
/// of customers merged into others (they name the survivor).
async fn customer_ids(
    tx: &mut sqlx::Transaction<'static, sqlx::Any>,
    external_ids: &[&str],
) -> StoreResult<HashMap<String, i64>> {
    let mut found = HashMap::with_capacity(external_ids.len());
    lookup(
        tx,
        "SELECT id, external_id FROM customers WHERE external_id IN",
        external_ids,
        &mut found,
    )
    .await?;
    if found.len() < external_ids.len() {
        let missing: Vec<&str> = external_ids
            .iter()
            .copied()
            .filter(|x| !found.contains_key(*x))
            .collect();
        lookup(
            tx,
            "SELECT customer_id AS id, external_id FROM customer_aliases WHERE external_id IN",
            &missing,
            &mut found,
        )
        .await?;
    }
    Ok(found)
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
    pub async fn import_customers(&self, batch: &[CustomerData]) -> StoreResult<BatchOutcome> {
        if let Some(mut slot) = self.pg_loader().await?
            && let Some(conn) = slot.as_mut()
        {
            return pg_load::import_customers(conn, batch).await;
        }
        if let Some(done) = self
            .load_sqlite(|c| sqlite_load::import_customers(c, batch))
            .await
        {
            return done;
        }
        let mut w = self.begin_write().await?;
        let keys: Vec<&str> = batch
            .iter()
            .filter_map(|c| c.external_id.as_deref())
            .collect();
        let existing = customer_ids(&mut w.tx, &keys).await?;
        let mut seen = std::collections::HashSet::new();
        let fresh: Vec<CustomerData> = batch
            .iter()
            .filter(|c| match c.external_id.as_deref() {
                Some(x) => !existing.contains_key(x) && seen.insert(x.to_owned()),
                None => true,
            })
            .cloned()
            .collect();
        insert_customers_tx(&mut w.tx, self.backend(), &fresh).await?;
        w.commit().await?;
        Ok(BatchOutcome {
            inserted: fresh.len() as u64,
            skipped: (batch.len() - fresh.len()) as u64,
            ..BatchOutcome::default()
        })
    }

    /// Imports purchases as completed orders, creating unknown customers; orders whose
    /// external id is stored already are skipped. The touched customers' aggregates are
    /// recomputed in the same transaction.
    pub async fn import_purchases(&self, batch: &[PurchaseRow]) -> StoreResult<BatchOutcome> {
        if let Some(mut slot) = self.pg_loader().await?
            && let Some(conn) = slot.as_mut()
        {
            return pg_load::import_purchases(conn, self.reporting_currency(), batch).await;
        }
        let currency = self.reporting_currency();
        if let Some(done) = self
            .load_sqlite(|c| sqlite_load::import_purchases(c, currency, batch))
            .await
        {
            return done;
        }
        let mut w = self.begin_write().await?;
        let keys = batch.iter().map(|p| p.customer_external_id.as_str());
        let (ids, created) = resolve_customers(&mut w.tx, self.backend(), keys).await?;
        let now = now_micros();
        let mut orders = Bulk::new(
            self.backend(),
            "INSERT INTO orders (external_id, customer_id, occurred_at, purchase_day, currency, total_minor, \
             channel, status, created_at, updated_at)",
            10,
        )
        .on_conflict_do_nothing("external_id");
        let mut touched = Vec::with_capacity(batch.len());
        for p in batch {
            let Some(&customer) = ids.get(&p.customer_external_id) else {
                continue;
            };
            touched.push(customer);
            orders
                .row(&mut w.tx, |r| {
                    r.add(p.order_external_id.clone())?;
                    r.add(customer)?;
                    r.add(p.occurred_at.timestamp_micros())?;
                    r.add(purchase_day(p.occurred_at))?;
                    r.add(p.currency.clone())?;
                    r.add(p.total_minor)?;
                    r.add(p.channel.as_str().to_owned())?;
                    r.add(p.status.as_str().to_owned())?;
                    r.add(now)?;
                    r.add(now)
                })
                .await?;
        }
        self.finish_import(w, orders, touched, batch.len(), created)
            .await
    }

    /// Imports interactions, creating unknown customers; interactions whose external id is
    /// stored already are skipped. The touched customers' aggregates are recomputed.
    pub async fn import_interactions(&self, batch: &[InteractionRow]) -> StoreResult<BatchOutcome> {
        if let Some(mut slot) = self.pg_loader().await?
            && let Some(conn) = slot.as_mut()
        {
            return pg_load::import_interactions(conn, self.reporting_currency(), batch).await;
        }
        let currency = self.reporting_currency();
        if let Some(done) = self
            .load_sqlite(|c| sqlite_load::import_interactions(c, currency, batch))
            .await
        {
            return done;
        }
        let mut w = self.begin_write().await?;
        let keys = batch.iter().map(|p| p.customer_external_id.as_str());
        let (ids, created) = resolve_customers(&mut w.tx, self.backend(), keys).await?;
        let now = now_micros();
        let mut rows = Bulk::new(
            self.backend(),
            "INSERT INTO interactions (external_id, customer_id, channel, direction, kind, subject, body, \
             staff_user_id, buying_signal, occurred_at, created_at)",
            11,
        )
        .on_conflict_do_nothing("external_id");
        let mut touched = Vec::with_capacity(batch.len());
        for i in batch {
            let Some(&customer) = ids.get(&i.customer_external_id) else {
                continue;
            };
            touched.push(customer);
            let d = &i.data;
            rows.row(&mut w.tx, |r| {
                r.add(i.external_id.clone())?;
                r.add(customer)?;
                r.add(d.channel.as_str().to_owned())?;
                r.add(d.direction.as_str().to_owned())?;
                r.add(d.kind.as_str().to_owned())?;
                r.add(d.subject.clone())?;
                r.add(d.body.clone())?;
                r.add(d.staff_user_id.map(|s| s.0))?;
                r.add(i64::from(d.buying_signal))?;
                r.add(d.occurred_at.timestamp_micros())?;
                r.add(now)
            })
            .await?;
        }
        self.finish_import(w, rows, touched, batch.len(), created)
            .await
    }
}

impl Store {
    /// Imports products, creating categories named for the first time; products whose
    /// external id is stored already are skipped.
    pub async fn import_products(&self, batch: &[ProductRow]) -> StoreResult<BatchOutcome> {
        if let Some(done) = self
            .load_sqlite(|c| sqlite_load::import_products(c, batch))
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
        w.commit().await?;
        let inserted = rows.rows_affected();
        Ok(BatchOutcome {
            inserted,
            skipped: batch.len() as u64 - inserted,
            ..BatchOutcome::default()
        })
    }

    /// Imports order lines into existing orders (rows naming an unknown order are reported,
    /// not written), creating products named for the first time with a placeholder name.
    /// A line whose order already has a line with its number is skipped.
    pub async fn import_order_lines(&self, batch: &[OrderLineRow]) -> StoreResult<BatchOutcome> {
        if let Some(mut slot) = self.pg_loader().await?
            && let Some(conn) = slot.as_mut()
        {
            return pg_load::import_order_lines(conn, self.reporting_currency(), batch).await;
        }
        let currency = self.reporting_currency();
        if let Some(done) = self
            .load_sqlite(|c| sqlite_load::import_order_lines(c, currency, batch))
            .await
        {
            return done;
        }
        let mut w = self.begin_write().await?;
        let mut order_keys: Vec<&str> =
            batch.iter().map(|l| l.order_external_id.as_str()).collect();
        order_keys.sort_unstable();
        order_keys.dedup();
        let mut orders: HashMap<String, (i64, i64)> = HashMap::with_capacity(order_keys.len());
        for chunk in order_keys.chunks(500) {
            let list: Vec<String> = (0..chunk.len()).map(|k| format!("${}", k + 1)).collect();
            let mut q = sqlx::query(AssertSqlSafe(format!(
                "SELECT id, external_id, customer_id FROM orders WHERE external_id IN ({})",
                list.join(",")
            )));
            for x in chunk {
                q = q.bind((*x).to_owned());
            }
            for row in q.fetch_all(&mut *w.tx).await? {
                orders.insert(
                    row.try_get("external_id")?,
                    (row.try_get("id")?, row.try_get("customer_id")?),
                );
            }
        }
        let mut product_keys: Vec<&str> = batch
            .iter()
            .filter_map(|l| l.product_external_id.as_deref())
            .collect();
        product_keys.sort_unstable();
        product_keys.dedup();
        let mut products = HashMap::with_capacity(product_keys.len());
        lookup(
            &mut w.tx,
            "SELECT id, external_id FROM products WHERE external_id IN",
            &product_keys,
            &mut products,
        )
        .await?;
        let now = now_micros();
        let mut created = 0;
        for key in product_keys {
            if !products.contains_key(key) {
                let id: i64 = sqlx::query_scalar(
                    "INSERT INTO products (external_id, name, currency, active, created_at, updated_at) \
                     VALUES ($1, $2, $3, 1, $4, $4) RETURNING id",
                )
                .bind(key.to_owned())
                .bind(format!("Product {key}"))
                .bind(self.reporting_currency().to_owned())
                .bind(now)
                .fetch_one(&mut *w.tx)
                .await?;
                products.insert(key.to_owned(), id);
                created += 1;
            }
        }
        let mut rows = Bulk::new(
            self.backend(),
            "INSERT INTO order_lines (order_id, customer_id, line_no, product_id, description, quantity, \
             unit_price_minor, total_minor)",
            8,
        )
        .on_conflict_do_nothing("order_id, line_no");
        let mut unknown_orders = Vec::new();
        for (i, l) in batch.iter().enumerate() {
            let Some(&(order, customer)) = orders.get(&l.order_external_id) else {
                unknown_orders.push(i);
                continue;
            };
            rows.row(&mut w.tx, |r| {
                r.add(order)?;
                r.add(customer)?;
                r.add(l.line_no)?;
                r.add(
                    l.product_external_id
                        .as_ref()
                        .and_then(|p| products.get(p))
                        .copied(),
                )?;
                r.add(l.description.clone())?;
                r.add(l.quantity)?;
                r.add(l.unit_price_minor)?;
                r.add(l.total_minor)
            })
            .await?;
        }
        rows.flush(&mut w.tx).await?;
        w.commit().await?;
        let inserted = rows.rows_affected();
        Ok(BatchOutcome {
            inserted,
            skipped: (batch.len() - unknown_orders.len()) as u64 - inserted,
            customers_created: created,
            unknown_orders,
        })
    }

    /// Ends an import batch: sends its last rows, recomputes the aggregates of the customers
    /// it touched, and commits.
    async fn finish_import(
        &self,
        mut w: crate::WriteTx<'_>,
        mut rows: Bulk,
        mut touched: Vec<i64>,
        batch_len: usize,
        customers_created: u64,
    ) -> StoreResult<BatchOutcome> {
        rows.flush(&mut w.tx).await?;
        let inserted = rows.rows_affected();
        touched.sort_unstable();
        touched.dedup();
        stats::rebuild(&mut w.tx, self.reporting_currency(), Some(&touched)).await?;
        w.commit().await?;
        Ok(BatchOutcome {
            inserted,
            skipped: batch_len as u64 - inserted,
            customers_created,
            unknown_orders: Vec::new(),
        })
    }
}

/// The ids of the customers these external ids name, creating (with a placeholder name)
/// those that do not exist yet; also how many were created.
async fn resolve_customers<'k>(
    tx: &mut sqlx::Transaction<'static, sqlx::Any>,
    backend: crate::Backend,
    keys: impl Iterator<Item = &'k str>,
) -> StoreResult<(HashMap<String, i64>, u64)> {
    let mut keys: Vec<&str> = keys.collect();
    keys.sort_unstable();
    keys.dedup();
    let mut ids = customer_ids(tx, &keys).await?;
    let missing: Vec<CustomerData> = keys
        .iter()
        .filter(|k| !ids.contains_key(**k))
        .map(|k| {
            let mut d = CustomerData::named(format!("Customer {k}"));
            d.external_id = Some((*k).to_owned());
            d
        })
        .collect();
    let created = insert_customers_tx(tx, backend, &missing).await?;
    for (d, id) in missing.iter().zip(&created) {
        if let Some(x) = &d.external_id {
            ids.insert(x.clone(), id.0);
        }
    }
    Ok((ids, created.len() as u64))
}
