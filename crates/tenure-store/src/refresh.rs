//! What the analytics refresh reads and writes: one row per customer with everything the
//! stage rule, RFM and the reports need, and the writes it makes back — changed stage
//! records, the moves between stages, changed RFM scores and the stored reports — in one
//! transaction.

use std::collections::HashMap;

use futures_util::TryStreamExt;
use sqlx::Row;
use tenure_domain::changes::{Actor, Change};
use tenure_domain::ids::CustomerId;

use crate::lifecycle::{LIFECYCLE_COLUMNS, LifecycleRecord, NewTransition, lifecycle_from_row};
use crate::sql::Bulk;
use crate::time::now_micros;
use crate::{Store, StoreResult};

/// One customer as the refresh reads them.
#[derive(Debug, Clone)]
pub struct CustomerFacts {
    pub id: CustomerId,
    pub external_id: Option<String>,
    pub acquisition_channel: Option<String>,
    pub first_purchase_at: Option<i64>,
    pub last_purchase_at: Option<i64>,
    pub orders: i64,
    pub purchase_days: i64,
    pub spend_minor: i64,
    pub p_alive: Option<f64>,
    pub clv: Option<f64>,
    pub lifecycle: Option<LifecycleRecord>,
}

/// A customer's stored RFM scores.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StoredRfm {
    pub r: u8,
    pub f: u8,
    pub m: u8,
    pub segment: tenure_analytics::rfm::RfmSegment,
}

/// What one refresh writes.
#[derive(Debug, Default)]
pub struct RefreshWrites {
    /// Stage records that changed (or are new), each with the `updated_at` the refresh
    /// read (`None`: there was no record) and the move it makes. A record that a write
    /// changed since is left alone: the write placed the customer on fresher facts.
    pub lifecycle: Vec<(LifecycleRecord, Option<i64>, Option<NewTransition>)>,
    /// RFM scores that changed (or are new).
    pub rfm: Vec<(CustomerId, StoredRfm)>,
    /// Customers who lost their RFM scores (no purchase left).
    pub rfm_removed: Vec<CustomerId>,
    /// Reports by name: (as-of day, JSON document).
    pub reports: Vec<(&'static str, String, serde_json::Value)>,
}

/// A stored report.
#[derive(Debug, Clone)]
pub struct StoredReport {
    pub as_of: String,
    pub body: serde_json::Value,
    pub computed_at: chrono::DateTime<chrono::Utc>,
}

fn segment_of(text: &str) -> StoreResult<tenure_analytics::rfm::RfmSegment> {
    text.parse()
        .map_err(|e: String| crate::StoreError::corrupt("customer_rfm.segment", e))
}

fn score(v: i64, column: &'static str) -> StoreResult<u8> {
    u8::try_from(v)
        .ok()
        .filter(|s| (1..=5).contains(s))
        .ok_or_else(|| crate::StoreError::corrupt(column, format!("{v} is not a score of 1 to 5")))
}

impl Store {
    /// Every customer with their aggregates, prediction and stage record, in id order.
    pub async fn customer_facts(&self) -> StoreResult<Vec<CustomerFacts>> {
        let lifecycle: Vec<String> = LIFECYCLE_COLUMNS
            .split(", ")
            .map(|c| format!("l.{c}"))
            .collect();
        let sql = format!(
            "SELECT c.id, c.external_id, c.acquisition_channel, s.first_purchase_at, s.last_purchase_at, \
             COALESCE(s.orders_count, 0) AS orders_count, COALESCE(s.purchase_days, 0) AS purchase_days, \
             COALESCE(s.total_spend_minor, 0) AS total_spend_minor, p.p_alive, p.clv, \
             l.customer_id IS NOT NULL AS placed, {} \
             FROM customers c \
             LEFT JOIN customer_stats s ON s.customer_id = c.id \
             LEFT JOIN customer_predictions p ON p.customer_id = c.id \
             LEFT JOIN customer_lifecycle l ON l.customer_id = c.id ORDER BY c.id",
            lifecycle.join(", ")
        );
        if let Some(read) = self
            .read_sqlite(|c| {
                let mut st = c.prepare(&sql)?;
                let mut rows = st.query([])?;
                let mut out = Vec::new();
                while let Some(r) = rows.next()? {
                    let placed: i64 = r.get(10)?;
                    out.push(CustomerFacts {
                        id: CustomerId(r.get(0)?),
                        external_id: r.get(1)?,
                        acquisition_channel: r.get(2)?,
                        first_purchase_at: r.get(3)?,
                        last_purchase_at: r.get(4)?,
                        orders: r.get(5)?,
                        purchase_days: r.get(6)?,
                        spend_minor: r.get(7)?,
                        p_alive: r.get(8)?,
                        clv: r.get(9)?,
                        lifecycle: if placed != 0 {
                            Some(lifecycle_from_sqlite(r, 11)?)
                        } else {
                            None
                        },
                    });
                }
                Ok(out)
            })
            .await
        {
            return read;
        }
        let mut rows = sqlx::query(sqlx::AssertSqlSafe(sql)).fetch(self.pool());
        let mut out = Vec::new();
        while let Some(r) = rows.try_next().await? {
            let placed: bool = match r.try_get::<bool, _>("placed") {
                Ok(b) => b,
                Err(_) => r.try_get::<i64, _>("placed")? != 0,
            };
            out.push(CustomerFacts {
                id: CustomerId(r.try_get("id")?),
                external_id: r.try_get("external_id")?,
                acquisition_channel: r.try_get("acquisition_channel")?,
                first_purchase_at: r.try_get("first_purchase_at")?,
                last_purchase_at: r.try_get("last_purchase_at")?,
                orders: r.try_get("orders_count")?,
                purchase_days: r.try_get("purchase_days")?,
                spend_minor: r.try_get("total_spend_minor")?,
                p_alive: r.try_get("p_alive")?,
                clv: r.try_get("clv")?,
                lifecycle: if placed {
                    Some(lifecycle_from_row(&r)?)
                } else {
                    None
                },
            });
        }
        Ok(out)
    }

    /// Each customer's latest complaint, for the loss reasons of those who churn.
    pub async fn last_complaints(&self) -> StoreResult<HashMap<CustomerId, i64>> {
        let mut rows = sqlx::query(
            "SELECT customer_id, MAX(occurred_at) AS at FROM interactions WHERE kind = $1 \
             GROUP BY customer_id",
        )
        .bind(tenure_domain::customer::InteractionKind::Complaint.as_str())
        .fetch(self.pool());
        let mut out = HashMap::new();
        while let Some(row) = rows.try_next().await? {
            out.insert(CustomerId(row.try_get("customer_id")?), row.try_get("at")?);
        }
        Ok(out)
    }

    /// Each customer's latest ticket: when it was opened and its category.
    pub async fn last_ticket_categories(
        &self,
    ) -> StoreResult<HashMap<CustomerId, (i64, tenure_domain::service::TicketCategory)>> {
        let mut rows = sqlx::query(
            "SELECT customer_id, last_ticket_at, last_category FROM customer_feedback \
             WHERE last_category IS NOT NULL",
        )
        .fetch(self.pool());
        let mut out = HashMap::new();
        while let Some(row) = rows.try_next().await? {
            out.insert(
                CustomerId(row.try_get("customer_id")?),
                (
                    row.try_get("last_ticket_at")?,
                    crate::decode::parsed(&row, "last_category")?,
                ),
            );
        }
        Ok(out)
    }

    /// Every customer's stored RFM scores.
    pub async fn stored_rfm(&self) -> StoreResult<HashMap<CustomerId, StoredRfm>> {
        if let Some(read) = self
            .read_sqlite(|c| {
                let mut st = c.prepare("SELECT customer_id, r, f, m, segment FROM customer_rfm")?;
                let mut rows = st.query([])?;
                let mut out = HashMap::new();
                while let Some(r) = rows.next()? {
                    let segment: String = r.get(4)?;
                    out.insert(
                        CustomerId(r.get(0)?),
                        StoredRfm {
                            r: score(r.get(1)?, "customer_rfm.r")?,
                            f: score(r.get(2)?, "customer_rfm.f")?,
                            m: score(r.get(3)?, "customer_rfm.m")?,
                            segment: segment_of(&segment)?,
                        },
                    );
                }
                Ok(out)
            })
            .await
        {
            return read;
        }
        let mut rows = sqlx::query("SELECT customer_id, r, f, m, segment FROM customer_rfm")
            .fetch(self.pool());
        let mut out = HashMap::new();
        while let Some(row) = rows.try_next().await? {
            let segment: String = row.try_get("segment")?;
            out.insert(
                CustomerId(row.try_get("customer_id")?),
                StoredRfm {
                    r: score(row.try_get("r")?, "customer_rfm.r")?,
                    f: score(row.try_get("f")?, "customer_rfm.f")?,
                    m: score(row.try_get("m")?, "customer_rfm.m")?,
                    segment: segment_of(&segment)?,
                },
            );
        }
        Ok(out)
    }

    /// One customer's RFM scores, when they have some.
    pub async fn rfm_of(&self, customer: CustomerId) -> StoreResult<Option<StoredRfm>> {
        let row = sqlx::query("SELECT r, f, m, segment FROM customer_rfm WHERE customer_id = $1")
            .bind(customer.0)
            .fetch_optional(self.pool())
            .await?;
        row.map(|row| {
            let segment: String = row.try_get("segment")?;
            Ok(StoredRfm {
                r: score(row.try_get("r")?, "customer_rfm.r")?,
                f: score(row.try_get("f")?, "customer_rfm.f")?,
                m: score(row.try_get("m")?, "customer_rfm.m")?,
                segment: segment_of(&segment)?,
            })
        })
        .transpose()
    }

    /// A stored report of the latest refresh.
    pub async fn report(&self, name: &str) -> StoreResult<Option<StoredReport>> {
        let row =
            sqlx::query("SELECT as_of, body, computed_at FROM analytics_reports WHERE name = $1")
                .bind(name.to_owned())
                .fetch_optional(self.reader())
                .await?;
        row.map(|r| {
            let body: String = r.try_get("body")?;
            Ok(StoredReport {
                as_of: r.try_get("as_of")?,
                body: serde_json::from_str(&body)
                    .map_err(|e| crate::StoreError::corrupt("analytics_reports", e.to_string()))?,
                computed_at: crate::time::time(&r, "computed_at")?,
            })
        })
        .transpose()
    }

    /// Writes what a refresh computed, with its change-log entry, in one transaction.
    pub async fn apply_refresh(
        &self,
        w: &RefreshWrites,
        by: &Actor,
        change: &Change,
    ) -> StoreResult<()> {
        let mut tx = self.begin_write().await?;
        let ids: Vec<i64> = w.lifecycle.iter().map(|(r, _, _)| r.customer.0).collect();
        let current = updated_at_of(&mut tx.tx, self.backend(), &ids).await?;
        let fresh: Vec<&(LifecycleRecord, Option<i64>, Option<NewTransition>)> = w
            .lifecycle
            .iter()
            .filter(|(r, seen, _)| current.get(&r.customer.0).copied() == *seen)
            .collect();
        let ids: Vec<i64> = fresh.iter().map(|(r, _, _)| r.customer.0).collect();
        delete_ids(
            &mut tx.tx,
            "DELETE FROM customer_lifecycle WHERE customer_id IN ",
            &ids,
        )
        .await?;
        let mut rows = Bulk::new(
            self.backend(),
            "INSERT INTO customer_lifecycle (customer_id, stage, computed_stage, stage_since, \
             override_stage, override_note, loss_reason, loss_reason_source, money, authority, need, \
             qualified_at, contact_attempts, attempts_since_progress, buying_signals, parked, updated_at)",
            17,
        );
        for (r, _, _) in &fresh {
            rows.row(&mut tx.tx, |a| {
                a.add(r.customer.0)?;
                a.add(r.stage.as_str().to_owned())?;
                a.add(r.computed_stage.as_str().to_owned())?;
                a.add(r.stage_since.timestamp_micros())?;
                a.add(r.override_stage.map(|s| s.as_str().to_owned()))?;
                a.add(r.override_note.clone())?;
                a.add(r.loss_reason.map(|s| s.as_str().to_owned()))?;
                a.add(r.loss_reason_source.map(|s| s.as_str().to_owned()))?;
                a.add(i64::from(r.money))?;
                a.add(i64::from(r.authority))?;
                a.add(i64::from(r.need))?;
                a.add(r.qualified_at.map(|t| t.timestamp_micros()))?;
                a.add(r.contact_attempts)?;
                a.add(r.attempts_since_progress)?;
                a.add(r.buying_signals)?;
                a.add(i64::from(r.parked))?;
                a.add(r.updated_at.timestamp_micros())
            })
            .await?;
        }
        rows.flush(&mut tx.tx).await?;

        let mut rows = Bulk::new(
            self.backend(),
            "INSERT INTO stage_transitions (customer_id, at, from_stage, to_stage, reason, detail, \
             loss_reason, actor_name)",
            8,
        );
        for t in fresh.iter().filter_map(|(_, _, t)| t.as_ref()) {
            rows.row(&mut tx.tx, |a| {
                a.add(t.customer.0)?;
                a.add(t.at.timestamp_micros())?;
                a.add(t.from.map(|s| s.as_str().to_owned()))?;
                a.add(t.to.as_str().to_owned())?;
                a.add(t.reason.as_str().to_owned())?;
                a.add(t.detail.clone())?;
                a.add(t.loss_reason.map(|s| s.as_str().to_owned()))?;
                a.add(t.actor_name.clone())
            })
            .await?;
        }
        rows.flush(&mut tx.tx).await?;

        let mut ids: Vec<i64> = w.rfm.iter().map(|(c, _)| c.0).collect();
        ids.extend(w.rfm_removed.iter().map(|c| c.0));
        delete_ids(
            &mut tx.tx,
            "DELETE FROM customer_rfm WHERE customer_id IN ",
            &ids,
        )
        .await?;
        let mut rows = Bulk::new(
            self.backend(),
            "INSERT INTO customer_rfm (customer_id, r, f, m, segment)",
            5,
        );
        for (c, s) in &w.rfm {
            rows.row(&mut tx.tx, |a| {
                a.add(c.0)?;
                a.add(i64::from(s.r))?;
                a.add(i64::from(s.f))?;
                a.add(i64::from(s.m))?;
                a.add(s.segment.as_str().to_owned())
            })
            .await?;
        }
        rows.flush(&mut tx.tx).await?;

        for (name, as_of, body) in &w.reports {
            sqlx::query(
                "INSERT INTO analytics_reports (name, as_of, body, computed_at) VALUES ($1, $2, $3, $4) \
                 ON CONFLICT (name) DO UPDATE SET as_of = excluded.as_of, body = excluded.body, \
                 computed_at = excluded.computed_at",
            )
            .bind((*name).to_owned())
            .bind(as_of.clone())
            .bind(body.to_string())
            .bind(now_micros())
            .execute(&mut *tx.tx)
            .await?;
        }
        tx.append_change(by, change).await?;
        tx.commit().await
    }
}

/// The `updated_at` of the stage records of `ids` that exist, locked on PostgreSQL until
/// the transaction ends.
async fn updated_at_of(
    tx: &mut sqlx::Transaction<'static, sqlx::Any>,
    backend: crate::Backend,
    ids: &[i64],
) -> StoreResult<HashMap<i64, i64>> {
    let lock = if backend == crate::Backend::Postgres {
        " FOR UPDATE"
    } else {
        ""
    };
    let mut out = HashMap::new();
    for chunk in ids.chunks(500) {
        let list: Vec<String> = (1..=chunk.len()).map(|k| format!("${k}")).collect();
        let sql = format!(
            "SELECT customer_id, updated_at FROM customer_lifecycle WHERE customer_id IN ({}){lock}",
            list.join(",")
        );
        let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
        for id in chunk {
            q = q.bind(*id);
        }
        for row in q.fetch_all(&mut **tx).await? {
            out.insert(row.try_get("customer_id")?, row.try_get("updated_at")?);
        }
    }
    Ok(out)
}

fn text_enum<T: std::str::FromStr<Err = String>>(
    r: &rusqlite::Row<'_>,
    i: usize,
    column: &'static str,
) -> StoreResult<Option<T>> {
    let text: Option<String> = r.get(i)?;
    text.map(|t| {
        t.parse()
            .map_err(|e: String| crate::StoreError::corrupt(column, e))
    })
    .transpose()
}

fn required<T>(v: Option<T>, column: &'static str) -> StoreResult<T> {
    v.ok_or_else(|| crate::StoreError::corrupt(column, "missing"))
}

fn micros_at(m: Option<i64>) -> StoreResult<Option<chrono::DateTime<chrono::Utc>>> {
    m.map(crate::time::from_micros).transpose()
}

/// A stage record from the columns of [`LIFECYCLE_COLUMNS`] starting at `at`, read by the
/// plain SQLite connection.
fn lifecycle_from_sqlite(r: &rusqlite::Row<'_>, at: usize) -> StoreResult<LifecycleRecord> {
    let flag = |i: usize| -> StoreResult<bool> { Ok(r.get::<_, i64>(at + i)? != 0) };
    Ok(LifecycleRecord {
        customer: CustomerId(r.get(at)?),
        stage: required(text_enum(r, at + 1, "stage")?, "stage")?,
        computed_stage: required(text_enum(r, at + 2, "computed_stage")?, "computed_stage")?,
        stage_since: crate::time::from_micros(r.get(at + 3)?)?,
        override_stage: text_enum(r, at + 4, "override_stage")?,
        override_note: r.get(at + 5)?,
        loss_reason: text_enum(r, at + 6, "loss_reason")?,
        loss_reason_source: text_enum(r, at + 7, "loss_reason_source")?,
        money: flag(8)?,
        authority: flag(9)?,
        need: flag(10)?,
        qualified_at: micros_at(r.get(at + 11)?)?,
        contact_attempts: r.get(at + 12)?,
        attempts_since_progress: r.get(at + 13)?,
        buying_signals: r.get(at + 14)?,
        parked: flag(15)?,
        updated_at: crate::time::from_micros(r.get(at + 16)?)?,
    })
}

/// Runs `head (ids…)` for the ids in chunks.
async fn delete_ids(
    tx: &mut sqlx::Transaction<'static, sqlx::Any>,
    head: &'static str,
    ids: &[i64],
) -> StoreResult<()> {
    for chunk in ids.chunks(500) {
        let list: Vec<String> = (1..=chunk.len()).map(|k| format!("${k}")).collect();
        let sql = format!("{head}({})", list.join(","));
        let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
        for id in chunk {
            q = q.bind(*id);
        }
        q.execute(&mut **tx).await?;
    }
    Ok(())
}
