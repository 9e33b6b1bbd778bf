//! The life cycle's rows: business settings, each customer's stage record and stage
//! history, and the reports over them (counts, flows between stages, loss reasons, the
//! customers worth winning back, prospects).

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use sqlx::Row;
use sqlx::any::AnyRow;
use tenure_domain::catalog::OrderStatus;
use tenure_domain::customer::{Customer, Direction, InteractionKind};
use tenure_domain::ids::CustomerId;
use tenure_domain::lifecycle::{LossReason, LossReasonSource, Stage, TransitionReason};

use crate::decode::parsed;
use crate::time::{from_micros, opt_time, time};
use crate::{Page, Store, StoreError, StoreResult, WriteTx};

/// One customer's stage record.
#[derive(Debug, Clone, PartialEq)]
pub struct LifecycleRecord {
    pub customer: CustomerId,
    /// The stage that counts: the manual one when set, else the computed one.
    pub stage: Stage,
    pub computed_stage: Stage,
    pub stage_since: DateTime<Utc>,
    pub override_stage: Option<Stage>,
    pub override_note: Option<String>,
    pub loss_reason: Option<LossReason>,
    pub loss_reason_source: Option<LossReasonSource>,
    pub money: bool,
    pub authority: bool,
    pub need: bool,
    pub qualified_at: Option<DateTime<Utc>>,
    pub contact_attempts: i64,
    pub attempts_since_progress: i64,
    pub buying_signals: i64,
    pub parked: bool,
    pub updated_at: DateTime<Utc>,
}

impl LifecycleRecord {
    /// The record of a customer never placed: potential since `now`.
    pub fn new(customer: CustomerId, now: DateTime<Utc>) -> Self {
        LifecycleRecord {
            customer,
            stage: Stage::Potential,
            computed_stage: Stage::Potential,
            stage_since: now,
            override_stage: None,
            override_note: None,
            loss_reason: None,
            loss_reason_source: None,
            money: false,
            authority: false,
            need: false,
            qualified_at: None,
            contact_attempts: 0,
            attempts_since_progress: 0,
            buying_signals: 0,
            parked: false,
            updated_at: now,
        }
    }

    pub fn qualified(&self) -> bool {
        self.money && self.authority && self.need
    }
}

/// One move between stages.
#[derive(Debug, Clone, PartialEq)]
pub struct Transition {
    pub id: i64,
    pub customer: CustomerId,
    pub at: DateTime<Utc>,
    pub from: Option<Stage>,
    pub to: Stage,
    pub reason: TransitionReason,
    pub detail: String,
    pub loss_reason: Option<LossReason>,
    pub actor_name: String,
}

/// A move to record.
#[derive(Debug, Clone, PartialEq)]
pub struct NewTransition {
    pub customer: CustomerId,
    pub at: DateTime<Utc>,
    pub from: Option<Stage>,
    pub to: Stage,
    pub reason: TransitionReason,
    pub detail: String,
    pub loss_reason: Option<LossReason>,
    pub actor_name: String,
}

/// What the stage rule reads of one customer, as stored.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct StoredFacts {
    pub first_purchase: Option<DateTime<Utc>>,
    pub last_purchase: Option<DateTime<Utc>>,
    pub orders: i64,
    pub purchase_days: Vec<i64>,
    pub p_alive: Option<f64>,
}

/// What interactions say of a prospect.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ContactCounts {
    /// Outbound contacts of every kind that reaches the customer.
    pub attempts: i64,
    /// Of those, the ones after `since`.
    pub attempts_since: i64,
    /// Interactions marked as a buying signal.
    pub buying_signals: i64,
    pub last_signal_at: Option<DateTime<Utc>>,
}

/// The interaction kinds that count as a contact attempt.
const CONTACT_KINDS: [InteractionKind; 4] = [
    InteractionKind::Call,
    InteractionKind::Message,
    InteractionKind::Meeting,
    InteractionKind::Visit,
];

pub(crate) const LIFECYCLE_COLUMNS: &str = "customer_id, stage, computed_stage, stage_since, \
     override_stage, override_note, loss_reason, loss_reason_source, money, authority, need, \
     qualified_at, contact_attempts, attempts_since_progress, buying_signals, parked, updated_at";

fn opt_parsed<T: std::str::FromStr<Err = String>>(
    row: &AnyRow,
    column: &'static str,
) -> StoreResult<Option<T>> {
    let text: Option<String> = row.try_get(column)?;
    text.map(|t| {
        t.parse()
            .map_err(|e: String| StoreError::corrupt(column, e))
    })
    .transpose()
}

fn flag(row: &AnyRow, column: &'static str) -> StoreResult<bool> {
    Ok(row.try_get::<i64, _>(column)? != 0)
}

pub(crate) fn lifecycle_from_row(row: &AnyRow) -> StoreResult<LifecycleRecord> {
    Ok(LifecycleRecord {
        customer: CustomerId(row.try_get("customer_id")?),
        stage: parsed(row, "stage")?,
        computed_stage: parsed(row, "computed_stage")?,
        stage_since: time(row, "stage_since")?,
        override_stage: opt_parsed(row, "override_stage")?,
        override_note: row.try_get("override_note")?,
        loss_reason: opt_parsed(row, "loss_reason")?,
        loss_reason_source: opt_parsed(row, "loss_reason_source")?,
        money: flag(row, "money")?,
        authority: flag(row, "authority")?,
        need: flag(row, "need")?,
        qualified_at: opt_time(row, "qualified_at")?,
        contact_attempts: row.try_get("contact_attempts")?,
        attempts_since_progress: row.try_get("attempts_since_progress")?,
        buying_signals: row.try_get("buying_signals")?,
        parked: flag(row, "parked")?,
        updated_at: time(row, "updated_at")?,
    })
}

pub(crate) fn transition_from_row(row: &AnyRow) -> StoreResult<Transition> {
    Ok(Transition {
        id: row.try_get("id")?,
        customer: CustomerId(row.try_get("customer_id")?),
        at: time(row, "at")?,
        from: opt_parsed(row, "from_stage")?,
        to: parsed(row, "to_stage")?,
        reason: parsed(row, "reason")?,
        detail: row.try_get("detail")?,
        loss_reason: opt_parsed(row, "loss_reason")?,
        actor_name: row.try_get("actor_name")?,
    })
}

/// The upsert of one lifecycle row, binding its columns in [`LIFECYCLE_COLUMNS`] order.
const UPSERT_LIFECYCLE: &str = "INSERT INTO customer_lifecycle (customer_id, stage, computed_stage, \
     stage_since, override_stage, override_note, loss_reason, loss_reason_source, money, authority, \
     need, qualified_at, contact_attempts, attempts_since_progress, buying_signals, parked, updated_at) \
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17) \
     ON CONFLICT (customer_id) DO UPDATE SET stage = excluded.stage, \
     computed_stage = excluded.computed_stage, stage_since = excluded.stage_since, \
     override_stage = excluded.override_stage, override_note = excluded.override_note, \
     loss_reason = excluded.loss_reason, loss_reason_source = excluded.loss_reason_source, \
     money = excluded.money, authority = excluded.authority, need = excluded.need, \
     qualified_at = excluded.qualified_at, contact_attempts = excluded.contact_attempts, \
     attempts_since_progress = excluded.attempts_since_progress, \
     buying_signals = excluded.buying_signals, parked = excluded.parked, \
     updated_at = excluded.updated_at";

const INSERT_TRANSITION: &str = "INSERT INTO stage_transitions (customer_id, at, from_stage, \
     to_stage, reason, detail, loss_reason, actor_name) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)";

fn micros(t: DateTime<Utc>) -> i64 {
    t.timestamp_micros()
}

/// Binds a lifecycle row's values onto `q` in column order.
macro_rules! bind_lifecycle {
    ($q:expr, $r:expr) => {
        $q.bind($r.customer.0)
            .bind($r.stage.as_str())
            .bind($r.computed_stage.as_str())
            .bind(micros($r.stage_since))
            .bind($r.override_stage.map(|s| s.as_str()))
            .bind($r.override_note.clone())
            .bind($r.loss_reason.map(|s| s.as_str()))
            .bind($r.loss_reason_source.map(|s| s.as_str()))
            .bind(i64::from($r.money))
            .bind(i64::from($r.authority))
            .bind(i64::from($r.need))
            .bind($r.qualified_at.map(micros))
            .bind($r.contact_attempts)
            .bind($r.attempts_since_progress)
            .bind($r.buying_signals)
            .bind(i64::from($r.parked))
            .bind(micros($r.updated_at))
    };
}

macro_rules! bind_transition {
    ($q:expr, $t:expr) => {
        $q.bind($t.customer.0)
            .bind(micros($t.at))
            .bind($t.from.map(|s| s.as_str()))
            .bind($t.to.as_str())
            .bind($t.reason.as_str())
            .bind($t.detail.clone())
            .bind($t.loss_reason.map(|s| s.as_str()))
            .bind($t.actor_name.clone())
    };
}

impl Store {
    /// A setting's stored JSON document, `None` when the business never changed it.
    pub async fn setting(&self, name: &str) -> StoreResult<Option<serde_json::Value>> {
        let text: Option<String> = sqlx::query_scalar("SELECT value FROM settings WHERE name = $1")
            .bind(name.to_owned())
            .fetch_optional(self.pool())
            .await?;
        text.map(|t| {
            serde_json::from_str(&t).map_err(|e| StoreError::corrupt("settings", e.to_string()))
        })
        .transpose()
    }

    /// A customer's stage record, `None` when they were never placed.
    pub async fn lifecycle(&self, customer: CustomerId) -> StoreResult<Option<LifecycleRecord>> {
        let row = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {LIFECYCLE_COLUMNS} FROM customer_lifecycle WHERE customer_id = $1"
        )))
        .bind(customer.0)
        .fetch_optional(self.pool())
        .await?;
        row.as_ref().map(lifecycle_from_row).transpose()
    }

    /// A customer's stage history, newest first, at most `limit` moves.
    pub async fn stage_history(
        &self,
        customer: CustomerId,
        limit: u32,
    ) -> StoreResult<Vec<Transition>> {
        let rows = sqlx::query(
            "SELECT id, customer_id, at, from_stage, to_stage, reason, detail, loss_reason, actor_name \
             FROM stage_transitions WHERE customer_id = $1 ORDER BY at DESC, id DESC LIMIT $2",
        )
        .bind(customer.0)
        .bind(i64::from(limit.clamp(1, 1000)))
        .fetch_all(self.pool())
        .await?;
        rows.iter().map(transition_from_row).collect()
    }

    /// How many customers stand in each stage now (customers never placed count as
    /// potential).
    pub async fn stage_counts(&self) -> StoreResult<Vec<(Stage, u64)>> {
        let rows = sqlx::query(
            "SELECT COALESCE(l.stage, 'potential') AS stage, COUNT(*) AS n FROM customers c \
             LEFT JOIN customer_lifecycle l ON l.customer_id = c.id GROUP BY COALESCE(l.stage, 'potential')",
        )
        .fetch_all(self.reader())
        .await?;
        let mut counts: HashMap<Stage, u64> = HashMap::new();
        for r in &rows {
            let stage: Stage = parsed(r, "stage")?;
            counts.insert(stage, u64::try_from(r.try_get::<i64, _>("n")?).unwrap_or(0));
        }
        Ok(Stage::ALL
            .iter()
            .map(|s| (*s, counts.get(s).copied().unwrap_or(0)))
            .collect())
    }

    /// The moves between stages in `[from, to)`: (from stage, to stage, moves). A
    /// customer's first placement has no "from".
    pub async fn stage_flows(
        &self,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> StoreResult<Vec<(Option<Stage>, Stage, u64)>> {
        let rows = sqlx::query(
            "SELECT from_stage, to_stage, COUNT(*) AS n FROM stage_transitions \
             WHERE at >= $1 AND at < $2 GROUP BY from_stage, to_stage",
        )
        .bind(micros(from))
        .bind(micros(to))
        .fetch_all(self.reader())
        .await?;
        let mut out = Vec::with_capacity(rows.len());
        for r in &rows {
            out.push((
                opt_parsed(r, "from_stage")?,
                parsed(r, "to_stage")?,
                u64::try_from(r.try_get::<i64, _>("n")?).unwrap_or(0),
            ));
        }
        out.sort_by_key(|(a, b, _)| (*a, *b));
        Ok(out)
    }

    /// Why the customers who churned in `[from, to)` were lost: (reason, customers); a
    /// churn with no reason yet counts under `None`.
    pub async fn loss_reasons(
        &self,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> StoreResult<Vec<(Option<LossReason>, u64)>> {
        let rows = sqlx::query(
            "SELECT loss_reason, COUNT(*) AS n FROM stage_transitions \
             WHERE to_stage = $1 AND at >= $2 AND at < $3 GROUP BY loss_reason",
        )
        .bind(Stage::Churned.as_str())
        .bind(micros(from))
        .bind(micros(to))
        .fetch_all(self.reader())
        .await?;
        let mut out = Vec::with_capacity(rows.len());
        for r in &rows {
            out.push((
                opt_parsed(r, "loss_reason")?,
                u64::try_from(r.try_get::<i64, _>("n")?).unwrap_or(0),
            ));
        }
        out.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
        Ok(out)
    }

    /// Customers standing in `stage`, with their record, by id, `limit` after `after`.
    pub async fn customers_in_stage(
        &self,
        stage: Stage,
        after: Option<CustomerId>,
        limit: u32,
    ) -> StoreResult<Page<(Customer, LifecycleRecord), CustomerId>> {
        let limit = i64::from(limit.clamp(1, 1000));
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {LIFECYCLE_COLUMNS} FROM customer_lifecycle WHERE stage = $1 AND customer_id > $2 \
             ORDER BY customer_id LIMIT $3"
        )))
        .bind(stage.as_str())
        .bind(after.map_or(i64::MIN, |c| c.0))
        .bind(limit + 1)
        .fetch_all(self.reader())
        .await?;
        let records: Vec<LifecycleRecord> = rows
            .iter()
            .map(lifecycle_from_row)
            .collect::<StoreResult<_>>()?;
        let items = self.with_customers(records, |r| r.customer).await?;
        Ok(Page::cut(items, limit, |(c, _)| c.id))
    }

    /// Churned customers whose predicted CLV is at least `min_clv`, most valuable first:
    /// (customer, CLV, record), `limit` after the position (CLV, id).
    pub async fn win_back(
        &self,
        min_clv: f64,
        after: Option<(f64, CustomerId)>,
        limit: u32,
    ) -> StoreResult<Page<(Customer, f64, LifecycleRecord), (f64, CustomerId)>> {
        let limit = i64::from(limit.clamp(1, 1000));
        let (value, id) = after.map_or((f64::MAX, i64::MAX), |(v, c)| (v, c.0));
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT p.clv AS ranked_clv, {} FROM customer_lifecycle l \
             JOIN customer_predictions p ON p.customer_id = l.customer_id \
             WHERE l.stage = $1 AND p.clv >= $2 AND (p.clv < $3 OR (p.clv = $3 AND l.customer_id < $4)) \
             ORDER BY p.clv DESC, l.customer_id DESC LIMIT $5",
            LIFECYCLE_COLUMNS
                .split(", ")
                .map(|c| format!("l.{c}"))
                .collect::<Vec<_>>()
                .join(", ")
        )))
        .bind(Stage::Churned.as_str())
        .bind(min_clv)
        .bind(value)
        .bind(id)
        .bind(limit + 1)
        .fetch_all(self.reader())
        .await?;
        let mut ranked = Vec::with_capacity(rows.len());
        for r in &rows {
            ranked.push((r.try_get::<f64, _>("ranked_clv")?, lifecycle_from_row(r)?));
        }
        let items = self.with_customers(ranked, |(_, r)| r.customer).await?;
        let items: Vec<_> = items.into_iter().map(|(c, (v, r))| (c, v, r)).collect();
        Ok(Page::cut(items, limit, |(c, v, _)| (*v, c.id)))
    }

    /// Pairs each item with its customer (items whose customer is gone are left out).
    async fn with_customers<T>(
        &self,
        items: Vec<T>,
        id: impl Fn(&T) -> CustomerId,
    ) -> StoreResult<Vec<(Customer, T)>> {
        let ids: Vec<i64> = items.iter().map(|t| id(t).0).collect();
        let mut customers: HashMap<i64, Customer> = self
            .customers_by_ids(&ids)
            .await?
            .into_iter()
            .map(|c| (c.id.0, c))
            .collect();
        Ok(items
            .into_iter()
            .filter_map(|t| Some((customers.remove(&id(&t).0)?, t)))
            .collect())
    }
}

impl WriteTx<'_> {
    /// Stores a setting's JSON document.
    pub async fn put_setting(&mut self, name: &str, value: &serde_json::Value) -> StoreResult<()> {
        sqlx::query(
            "INSERT INTO settings (name, value, updated_at) VALUES ($1, $2, $3) \
             ON CONFLICT (name) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at",
        )
        .bind(name.to_owned())
        .bind(value.to_string())
        .bind(crate::time::now_micros())
        .execute(&mut *self.tx)
        .await?;
        Ok(())
    }

    /// A setting's document as this transaction sees it.
    pub async fn setting(&mut self, name: &str) -> StoreResult<Option<serde_json::Value>> {
        let text: Option<String> = sqlx::query_scalar("SELECT value FROM settings WHERE name = $1")
            .bind(name.to_owned())
            .fetch_optional(&mut *self.tx)
            .await?;
        text.map(|t| {
            serde_json::from_str(&t).map_err(|e| StoreError::corrupt("settings", e.to_string()))
        })
        .transpose()
    }

    /// A customer's stage record, locked on PostgreSQL until the transaction ends.
    pub async fn lifecycle_for_update(
        &mut self,
        customer: CustomerId,
    ) -> StoreResult<Option<LifecycleRecord>> {
        let lock = if self.backend() == crate::Backend::Postgres {
            " FOR UPDATE"
        } else {
            ""
        };
        let row = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {LIFECYCLE_COLUMNS} FROM customer_lifecycle WHERE customer_id = $1{lock}"
        )))
        .bind(customer.0)
        .fetch_optional(&mut *self.tx)
        .await?;
        row.as_ref().map(lifecycle_from_row).transpose()
    }

    /// Writes a customer's stage record.
    pub async fn save_lifecycle(&mut self, r: &LifecycleRecord) -> StoreResult<()> {
        bind_lifecycle!(sqlx::query(UPSERT_LIFECYCLE), r)
            .execute(&mut *self.tx)
            .await?;
        Ok(())
    }

    /// Records a move between stages.
    pub async fn record_transition(&mut self, t: &NewTransition) -> StoreResult<()> {
        bind_transition!(sqlx::query(INSERT_TRANSITION), t)
            .execute(&mut *self.tx)
            .await?;
        Ok(())
    }

    /// Sets the loss reason of a customer's latest move to "churned".
    pub async fn set_latest_loss_reason(
        &mut self,
        customer: CustomerId,
        reason: LossReason,
    ) -> StoreResult<()> {
        sqlx::query(
            "UPDATE stage_transitions SET loss_reason = $1 WHERE id = \
             (SELECT MAX(id) FROM stage_transitions WHERE customer_id = $2 AND to_stage = $3)",
        )
        .bind(reason.as_str())
        .bind(customer.0)
        .bind(Stage::Churned.as_str())
        .execute(&mut *self.tx)
        .await?;
        Ok(())
    }

    /// What the stage rule reads of one customer: their aggregates, purchase days and
    /// latest P(alive).
    pub async fn stage_facts(&mut self, customer: CustomerId) -> StoreResult<StoredFacts> {
        let row = sqlx::query(
            "SELECT s.first_purchase_at, s.last_purchase_at, s.orders_count, p.p_alive \
             FROM customer_stats s LEFT JOIN customer_predictions p ON p.customer_id = s.customer_id \
             WHERE s.customer_id = $1",
        )
        .bind(customer.0)
        .fetch_optional(&mut *self.tx)
        .await?;
        let Some(row) = row else {
            return Ok(StoredFacts::default());
        };
        let days: Vec<i64> = sqlx::query_scalar(
            "SELECT DISTINCT purchase_day FROM orders WHERE customer_id = $1 AND status = $2 \
             ORDER BY purchase_day",
        )
        .bind(customer.0)
        .bind(OrderStatus::Completed.as_str())
        .fetch_all(&mut *self.tx)
        .await?;
        Ok(StoredFacts {
            first_purchase: opt_time(&row, "first_purchase_at")?,
            last_purchase: opt_time(&row, "last_purchase_at")?,
            orders: row.try_get("orders_count")?,
            purchase_days: days,
            p_alive: row.try_get("p_alive")?,
        })
    }

    /// What a customer's interactions say of them as a prospect; `since` is their last
    /// progress.
    pub async fn contact_counts(
        &mut self,
        customer: CustomerId,
        since: Option<DateTime<Utc>>,
    ) -> StoreResult<ContactCounts> {
        let row = sqlx::query(
            "SELECT \
               COUNT(CASE WHEN direction = $2 AND kind IN ($3, $4, $5, $6) THEN 1 END) AS attempts, \
               COUNT(CASE WHEN direction = $2 AND kind IN ($3, $4, $5, $6) AND occurred_at > $7 THEN 1 END) AS since, \
               COUNT(CASE WHEN buying_signal = 1 THEN 1 END) AS signals, \
               MAX(CASE WHEN buying_signal = 1 THEN occurred_at END) AS last_signal \
             FROM interactions WHERE customer_id = $1",
        )
        .bind(customer.0)
        .bind(Direction::Outbound.as_str())
        .bind(CONTACT_KINDS[0].as_str())
        .bind(CONTACT_KINDS[1].as_str())
        .bind(CONTACT_KINDS[2].as_str())
        .bind(CONTACT_KINDS[3].as_str())
        .bind(since.map_or(i64::MIN, micros))
        .fetch_one(&mut *self.tx)
        .await?;
        Ok(ContactCounts {
            attempts: row.try_get("attempts")?,
            attempts_since: row.try_get("since")?,
            buying_signals: row.try_get("signals")?,
            last_signal_at: opt_time(&row, "last_signal")?,
        })
    }

    /// Whether the customer complained within `[from, to]`.
    pub async fn complained_between(
        &mut self,
        customer: CustomerId,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> StoreResult<bool> {
        let n: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM interactions WHERE customer_id = $1 AND kind = $2 \
             AND occurred_at >= $3 AND occurred_at <= $4",
        )
        .bind(customer.0)
        .bind(InteractionKind::Complaint.as_str())
        .bind(micros(from))
        .bind(micros(to))
        .fetch_one(&mut *self.tx)
        .await?;
        Ok(n > 0)
    }
}

/// A time from a stored number, for callers holding raw micros.
pub fn time_of(m: i64) -> StoreResult<DateTime<Utc>> {
    from_micros(m)
}

impl WriteTx<'_> {
    /// `NotFound` unless the customer exists (locked on PostgreSQL).
    pub async fn require_customer(&mut self, id: CustomerId) -> StoreResult<()> {
        if self.lock(crate::sql::Table::Customers, id.0).await?
            && self.backend() == crate::Backend::Postgres
        {
            return Ok(());
        }
        let exists: Option<i64> = sqlx::query_scalar("SELECT id FROM customers WHERE id = $1")
            .bind(id.0)
            .fetch_optional(&mut *self.tx)
            .await?;
        exists
            .map(|_| ())
            .ok_or(StoreError::NotFound { what: "customer" })
    }
}
