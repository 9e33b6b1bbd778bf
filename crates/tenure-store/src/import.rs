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

/// What a batch did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct BatchOutcome {
    /// Rows written.
    pub inserted: u64,
    /// Rows whose external id was already stored.
    pub skipped: u64,
    /// Customers created because a purchase named an unknown one.
    pub customers_created: u64,
}

/// The ids of the customers with these external ids that exist.
async fn customer_ids(
    tx: &mut sqlx::Transaction<'static, sqlx::Any>,
    external_ids: &[&str],
) -> StoreResult<HashMap<String, i64>> {
    let mut found = HashMap::with_capacity(external_ids.len());
    for chunk in external_ids.chunks(500) {
        let list: Vec<String> = (0..chunk.len()).map(|k| format!("${}", k + 1)).collect();
        let mut q = sqlx::query(AssertSqlSafe(format!(
            "SELECT id, external_id FROM customers WHERE external_id IN ({})",
            list.join(",")
        )));
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
    Ok(found)
}

impl Store {
    /// Imports customers; those whose external id is stored already (or repeats within the
    /// batch) are skipped.
    pub async fn import_customers(&self, batch: &[CustomerData]) -> StoreResult<BatchOutcome> {
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
            customers_created: 0,
        })
    }

    /// Imports purchases as completed orders, creating unknown customers; orders whose
    /// external id is stored already are skipped. The touched customers' aggregates are
    /// recomputed in the same transaction.
    pub async fn import_purchases(&self, batch: &[PurchaseRow]) -> StoreResult<BatchOutcome> {
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
