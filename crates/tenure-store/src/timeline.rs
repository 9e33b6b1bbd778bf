//! A customer's timeline: every source read newest first from its own index and merged,
//! so paging stays cheap however long the history.

use sqlx::{AssertSqlSafe, Row};
use tenure_domain::catalog::Order;
use tenure_domain::ids::CustomerId;
use tenure_domain::interaction::Interaction;
use tenure_domain::timeline::{TimelineKind, TimelinePosition};

use crate::Page;
use crate::analytics::Prediction;
use crate::{Store, StoreResult};

/// One entry of a timeline.
#[derive(Debug, Clone)]
pub enum TimelineEntry {
    Order(Order),
    Interaction(Interaction),
    /// The customer's current prediction, at the time it was computed.
    Prediction(CustomerId, Prediction),
    /// A move between life-cycle stages.
    Stage(crate::lifecycle::Transition),
    /// Points earned, spent, expired, adjusted or taken back.
    Loyalty(crate::loyalty::LedgerEntry),
    /// A change of loyalty tier.
    Tier(crate::loyalty::TierChange),
    /// A ticket the customer opened (or that was opened for them).
    Ticket(crate::service::Ticket),
    /// A follow-up task about the customer.
    Task(crate::service::Task),
    /// A survey answer.
    Survey(crate::service::Response),
    /// A message decided by a journey: sent, queued or not sent and why.
    Message(crate::journeys::Message),
}

impl TimelineEntry {
    pub fn position(&self) -> TimelinePosition {
        match self {
            TimelineEntry::Order(o) => TimelinePosition {
                at_micros: o.data.occurred_at.timestamp_micros(),
                kind: TimelineKind::Order,
                id: o.id.0,
            },
            TimelineEntry::Interaction(i) => TimelinePosition {
                at_micros: i.data.occurred_at.timestamp_micros(),
                kind: TimelineKind::Interaction,
                id: i.id.0,
            },
            TimelineEntry::Prediction(customer, p) => TimelinePosition {
                at_micros: p.computed_at.timestamp_micros(),
                kind: TimelineKind::Prediction,
                id: customer.0,
            },
            TimelineEntry::Stage(t) => TimelinePosition {
                at_micros: t.at.timestamp_micros(),
                kind: TimelineKind::Stage,
                id: t.id,
            },
            TimelineEntry::Loyalty(e) => TimelinePosition {
                at_micros: e.at.timestamp_micros(),
                kind: TimelineKind::Loyalty,
                id: e.id.0,
            },
            TimelineEntry::Tier(t) => TimelinePosition {
                at_micros: t.at.timestamp_micros(),
                kind: TimelineKind::Tier,
                id: t.id,
            },
            TimelineEntry::Ticket(t) => TimelinePosition {
                at_micros: t.opened_at.timestamp_micros(),
                kind: TimelineKind::Ticket,
                id: t.id.0,
            },
            TimelineEntry::Task(t) => TimelinePosition {
                at_micros: t.created_at.timestamp_micros(),
                kind: TimelineKind::Task,
                id: t.id.0,
            },
            TimelineEntry::Survey(r) => TimelinePosition {
                at_micros: r.answered_at.timestamp_micros(),
                kind: TimelineKind::Survey,
                id: r.id.0,
            },
            TimelineEntry::Message(m) => TimelinePosition {
                at_micros: m.created_at.timestamp_micros(),
                kind: TimelineKind::Message,
                id: m.id.0,
            },
        }
    }
}

/// The bound on `(occurred_at, id)` for a source of kind `kind` strictly after `before`
/// in newest-first order: rows with `occurred_at < at OR (occurred_at = at AND id < id)`.
fn bound(kind: TimelineKind, before: Option<TimelinePosition>) -> (i64, i64) {
    match before {
        None => (i64::MAX, i64::MAX),
        Some(p) if kind < p.kind => (p.at_micros, i64::MAX),
        Some(p) if kind == p.kind => (p.at_micros, p.id),
        Some(p) => (p.at_micros, i64::MIN),
    }
}

impl Store {
    /// Everything about a customer, newest first, `limit` entries after `before`.
    pub async fn timeline(
        &self,
        customer: CustomerId,
        before: Option<TimelinePosition>,
        limit: u32,
    ) -> StoreResult<Page<TimelineEntry, TimelinePosition>> {
        self.require_customer(customer).await?;
        let limit = i64::from(limit.clamp(1, 500));
        let mut entries = Vec::new();

        let (at, id) = bound(TimelineKind::Order, before);
        let rows = sqlx::query(AssertSqlSafe(format!(
            "{} WHERE customer_id = $1 AND (occurred_at < $2 OR (occurred_at = $2 AND id < $3)) \
             ORDER BY occurred_at DESC, id DESC LIMIT $4",
            crate::orders::ORDER_SELECT
        )))
        .bind(customer.0)
        .bind(at)
        .bind(id)
        .bind(limit + 1)
        .fetch_all(self.pool())
        .await?;
        let ids: Vec<i64> = rows
            .iter()
            .map(|r| r.try_get("id"))
            .collect::<Result<_, _>>()?;
        let mut lines = crate::orders::lines_of(self.pool(), &ids).await?;
        for (r, oid) in rows.iter().zip(ids) {
            let order = crate::orders::order_from_row(r, lines.remove(&oid).unwrap_or_default())?;
            entries.push(TimelineEntry::Order(order));
        }

        let (at, id) = bound(TimelineKind::Interaction, before);
        let rows = sqlx::query(AssertSqlSafe(format!(
            "{} WHERE customer_id = $1 AND (occurred_at < $2 OR (occurred_at = $2 AND id < $3)) \
             ORDER BY occurred_at DESC, id DESC LIMIT $4",
            crate::interactions::INTERACTION_SELECT
        )))
        .bind(customer.0)
        .bind(at)
        .bind(id)
        .bind(limit + 1)
        .fetch_all(self.pool())
        .await?;
        for r in &rows {
            entries.push(TimelineEntry::Interaction(
                crate::interactions::interaction_from_row(r)?,
            ));
        }

        let (at, id) = bound(TimelineKind::Prediction, before);
        let row = sqlx::query(
            "SELECT p_alive, expected_purchases, expected_value, clv, horizon_days, computed_at \
             FROM customer_predictions WHERE customer_id = $1 \
             AND (computed_at < $2 OR (computed_at = $2 AND customer_id < $3))",
        )
        .bind(customer.0)
        .bind(at)
        .bind(id)
        .fetch_optional(self.pool())
        .await?;
        if let Some(r) = row {
            entries.push(TimelineEntry::Prediction(
                customer,
                crate::analytics::prediction_from_row(&r)?,
            ));
        }

        let (at, id) = bound(TimelineKind::Stage, before);
        let rows = sqlx::query(
            "SELECT id, customer_id, at, from_stage, to_stage, reason, detail, loss_reason, actor_name \
             FROM stage_transitions WHERE customer_id = $1 AND (at < $2 OR (at = $2 AND id < $3)) \
             ORDER BY at DESC, id DESC LIMIT $4",
        )
        .bind(customer.0)
        .bind(at)
        .bind(id)
        .bind(limit + 1)
        .fetch_all(self.pool())
        .await?;
        for r in &rows {
            entries.push(TimelineEntry::Stage(crate::lifecycle::transition_from_row(
                r,
            )?));
        }

        let (at, id) = bound(TimelineKind::Loyalty, before);
        let rows = sqlx::query(
            "SELECT id, customer_id, at, kind, bucket, points, deferred, order_id, reward_id, bonus, reason, actor_name \
             FROM loyalty_entries WHERE customer_id = $1 AND (at < $2 OR (at = $2 AND id < $3)) \
             AND kind <> 'release' ORDER BY at DESC, id DESC LIMIT $4",
        )
        .bind(customer.0)
        .bind(at)
        .bind(id)
        .bind(limit + 1)
        .fetch_all(self.pool())
        .await?;
        for r in &rows {
            entries.push(TimelineEntry::Loyalty(crate::loyalty::entry_from_row(r)?));
        }

        let (at, id) = bound(TimelineKind::Tier, before);
        let rows = sqlx::query(AssertSqlSafe(format!(
            "{} WHERE customer_id = $1 AND (at < $2 OR (at = $2 AND id < $3)) \
             ORDER BY at DESC, id DESC LIMIT $4",
            crate::loyalty::TIER_CHANGE_SELECT
        )))
        .bind(customer.0)
        .bind(at)
        .bind(id)
        .bind(limit + 1)
        .fetch_all(self.pool())
        .await?;
        for r in &rows {
            entries.push(TimelineEntry::Tier(crate::loyalty::tier_change_from_row(
                r,
            )?));
        }

        for (kind, select, at_col) in [
            (
                TimelineKind::Ticket,
                crate::service::TICKET_SELECT,
                "opened_at",
            ),
            (
                TimelineKind::Task,
                crate::service::TASK_SELECT,
                "created_at",
            ),
            (
                TimelineKind::Survey,
                crate::service::RESPONSE_SELECT,
                "answered_at",
            ),
            (
                TimelineKind::Message,
                crate::journeys::MESSAGE_SELECT,
                "created_at",
            ),
        ] {
            let (at, id) = bound(kind, before);
            let rows = sqlx::query(AssertSqlSafe(format!(
                "{select} WHERE customer_id = $1 AND ({at_col} < $2 OR ({at_col} = $2 AND id < $3)) \
                 ORDER BY {at_col} DESC, id DESC LIMIT $4"
            )))
            .bind(customer.0)
            .bind(at)
            .bind(id)
            .bind(limit + 1)
            .fetch_all(self.pool())
            .await?;
            for r in &rows {
                entries.push(match kind {
                    TimelineKind::Ticket => {
                        TimelineEntry::Ticket(crate::service::ticket_from_row(r)?)
                    }
                    TimelineKind::Task => TimelineEntry::Task(crate::service::task_from_row(r)?),
                    TimelineKind::Message => {
                        TimelineEntry::Message(crate::journeys::message_from_row(r)?)
                    }
                    _ => TimelineEntry::Survey(crate::service::response_from_row(r)?),
                });
            }
        }

        entries.sort_by_key(|e| std::cmp::Reverse(e.position()));
        Ok(Page::cut(entries, limit, TimelineEntry::position))
    }
}
