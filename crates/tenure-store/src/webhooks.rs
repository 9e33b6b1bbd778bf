//! Webhook endpoints and their deliveries: the outbox of outgoing webhooks. Deliveries are
//! written in the transaction of the write that caused them; a worker claims due ones
//! (`FOR UPDATE SKIP LOCKED` on PostgreSQL, the writer slot on SQLite) with a lease, so a
//! worker that dies mid-send leaves them to the next.

use chrono::{DateTime, Utc};
use sqlx::any::AnyRow;
use sqlx::{AssertSqlSafe, Row};
use tenure_domain::ids::{DeliveryId, WebhookId};
use tenure_domain::webhook::{DeliveryStatus, WebhookEvent};

use crate::decode::parsed;
use crate::time::{opt_time, time, to_micros};
use crate::{Backend, Page, Store, StoreError, StoreResult, WriteTx};

/// An endpoint as stored (the secret only where asked for).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    pub id: WebhookId,
    pub url: String,
    pub description: String,
    pub events: Vec<WebhookEvent>,
    pub enabled: bool,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// What an endpoint is set to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EndpointData {
    pub url: String,
    pub description: String,
    pub events: Vec<WebhookEvent>,
    pub enabled: bool,
}

/// One event on its way to one endpoint, with how its attempts went.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivery {
    pub id: DeliveryId,
    pub endpoint_id: WebhookId,
    pub event: WebhookEvent,
    pub payload: String,
    pub status: DeliveryStatus,
    pub attempts: i64,
    pub due_at: DateTime<Utc>,
    pub response_code: Option<i64>,
    pub last_error: Option<String>,
    pub created_at: DateTime<Utc>,
    pub delivered_at: Option<DateTime<Utc>>,
}

/// How an attempt ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Attempt {
    Delivered {
        code: i64,
    },
    Retry {
        at: DateTime<Utc>,
        code: Option<i64>,
        error: String,
    },
    Failed {
        code: Option<i64>,
        error: String,
    },
}

const DELIVERY_SELECT: &str = "SELECT id, endpoint_id, event, payload, status, attempts, due_at, \
     response_code, last_error, created_at, delivered_at FROM webhook_deliveries";
const ENDPOINT_COLUMNS: &str = "id, url, description, events, enabled, created_at, updated_at";
const DELIVERY_COLUMNS: &str = "id, endpoint_id, event, payload, status, attempts, due_at, \
     response_code, last_error, created_at, delivered_at";

fn endpoint_from_row(row: &AnyRow) -> StoreResult<Endpoint> {
    let events: Vec<WebhookEvent> = crate::decode::json(row, "events")?;
    Ok(Endpoint {
        id: WebhookId(row.try_get("id")?),
        url: row.try_get("url")?,
        description: row.try_get("description")?,
        events,
        enabled: row.try_get::<i64, _>("enabled")? == 1,
        created_at: time(row, "created_at")?,
        updated_at: time(row, "updated_at")?,
    })
}

fn delivery_from_row(row: &AnyRow) -> StoreResult<Delivery> {
    Ok(Delivery {
        id: DeliveryId(row.try_get("id")?),
        endpoint_id: WebhookId(row.try_get("endpoint_id")?),
        event: parsed(row, "event")?,
        payload: row.try_get("payload")?,
        status: parsed(row, "status")?,
        attempts: row.try_get("attempts")?,
        due_at: time(row, "due_at")?,
        response_code: row.try_get("response_code")?,
        last_error: row.try_get("last_error")?,
        created_at: time(row, "created_at")?,
        delivered_at: opt_time(row, "delivered_at")?,
    })
}

fn events_json(events: &[WebhookEvent]) -> String {
    serde_json::to_string(events).unwrap_or_else(|_| "[]".into())
}

impl WriteTx<'_> {
    pub async fn create_endpoint(
        &mut self,
        data: &EndpointData,
        secret: &str,
        now: DateTime<Utc>,
    ) -> StoreResult<Endpoint> {
        let row = sqlx::query(AssertSqlSafe(format!(
            "INSERT INTO webhook_endpoints (url, description, secret, events, enabled, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $6) RETURNING {ENDPOINT_COLUMNS}"
        )))
        .bind(data.url.clone())
        .bind(data.description.clone())
        .bind(secret.to_owned())
        .bind(events_json(&data.events))
        .bind(i64::from(data.enabled))
        .bind(to_micros(now))
        .fetch_one(&mut *self.tx)
        .await?;
        endpoint_from_row(&row)
    }

    pub async fn update_endpoint(
        &mut self,
        id: WebhookId,
        data: &EndpointData,
        now: DateTime<Utc>,
    ) -> StoreResult<Endpoint> {
        let row = sqlx::query(AssertSqlSafe(format!(
            "UPDATE webhook_endpoints SET url = $2, description = $3, events = $4, enabled = $5, \
             updated_at = $6 WHERE id = $1 RETURNING {ENDPOINT_COLUMNS}"
        )))
        .bind(id.0)
        .bind(data.url.clone())
        .bind(data.description.clone())
        .bind(events_json(&data.events))
        .bind(i64::from(data.enabled))
        .bind(to_micros(now))
        .fetch_optional(&mut *self.tx)
        .await?
        .ok_or(StoreError::NotFound { what: "webhook" })?;
        endpoint_from_row(&row)
    }

    /// Deletes an endpoint with its delivery log.
    pub async fn delete_endpoint(&mut self, id: WebhookId) -> StoreResult<()> {
        sqlx::query("DELETE FROM webhook_deliveries WHERE endpoint_id = $1")
            .bind(id.0)
            .execute(&mut *self.tx)
            .await?;
        let n = sqlx::query("DELETE FROM webhook_endpoints WHERE id = $1")
            .bind(id.0)
            .execute(&mut *self.tx)
            .await?
            .rows_affected();
        if n == 0 {
            return Err(StoreError::NotFound { what: "webhook" });
        }
        Ok(())
    }

    /// Queues `event` for every enabled endpoint that listens for it; how many were queued.
    pub async fn queue_webhooks(
        &mut self,
        event: WebhookEvent,
        payload: &str,
        now: DateTime<Utc>,
    ) -> StoreResult<u64> {
        let pattern = format!("%\"{}\"%", event.as_str());
        let n = sqlx::query(
            "INSERT INTO webhook_deliveries (endpoint_id, event, payload, status, attempts, due_at, created_at, updated_at) \
             SELECT id, $1, $2, 'queued', 0, $3, $3, $3 FROM webhook_endpoints WHERE enabled = 1 AND events LIKE $4",
        )
        .bind(event.as_str())
        .bind(payload.to_owned())
        .bind(to_micros(now))
        .bind(pattern)
        .execute(&mut *self.tx)
        .await?
        .rows_affected();
        Ok(n)
    }
}

impl Store {
    /// Whether any enabled endpoint exists (writes skip the webhook outbox otherwise).
    pub async fn endpoints(&self) -> StoreResult<Vec<Endpoint>> {
        let rows = sqlx::query(AssertSqlSafe(format!(
            "SELECT {ENDPOINT_COLUMNS} FROM webhook_endpoints ORDER BY id"
        )))
        .fetch_all(self.pool())
        .await?;
        rows.iter().map(endpoint_from_row).collect()
    }

    pub async fn endpoint(&self, id: WebhookId) -> StoreResult<(Endpoint, String)> {
        let row = sqlx::query(AssertSqlSafe(format!(
            "SELECT {ENDPOINT_COLUMNS}, secret FROM webhook_endpoints WHERE id = $1"
        )))
        .bind(id.0)
        .fetch_optional(self.pool())
        .await?
        .ok_or(StoreError::NotFound { what: "webhook" })?;
        Ok((endpoint_from_row(&row)?, row.try_get("secret")?))
    }

    /// An endpoint's deliveries (or every endpoint's), newest first; `before` is the cursor.
    pub async fn deliveries(
        &self,
        endpoint: Option<WebhookId>,
        before: Option<DeliveryId>,
        limit: u32,
    ) -> StoreResult<Page<Delivery, DeliveryId>> {
        let limit = i64::from(limit.clamp(1, 1000));
        let mut s = crate::sql::Select::new(DELIVERY_SELECT);
        if let Some(e) = endpoint {
            s.filter("endpoint_id = {}", e.0)?;
        }
        if let Some(b) = before {
            s.filter("id < {}", b.0)?;
        }
        let (sql, args) = s.finish("ORDER BY id DESC", limit + 1)?;
        let rows = sqlx::query_with(AssertSqlSafe(sql), args)
            .fetch_all(self.pool())
            .await?;
        let items = rows
            .iter()
            .map(delivery_from_row)
            .collect::<StoreResult<Vec<_>>>()?;
        Ok(Page::cut(items, limit, |d| d.id))
    }

    /// Claims up to `limit` due deliveries for `worker` until `lease_until`, each with its
    /// endpoint's address and secret; each claim counts an attempt.
    pub async fn claim_deliveries(
        &self,
        worker: &str,
        now: DateTime<Utc>,
        lease_until: DateTime<Utc>,
        limit: u32,
    ) -> StoreResult<Vec<(Delivery, String, String)>> {
        let mut w = self.begin_write().await?;
        let mut sql = String::from(
            "SELECT id FROM webhook_deliveries WHERE (status = 'queued' AND due_at <= $1) \
             OR (status = 'sending' AND locked_until < $1) ORDER BY due_at, id LIMIT $2",
        );
        if self.backend() == Backend::Postgres {
            sql.push_str(" FOR UPDATE SKIP LOCKED");
        }
        let ids: Vec<i64> = sqlx::query_scalar(AssertSqlSafe(sql))
            .bind(to_micros(now))
            .bind(i64::from(limit))
            .fetch_all(&mut *w.tx)
            .await?;
        let mut out = Vec::with_capacity(ids.len());
        for id in ids {
            let row = sqlx::query(AssertSqlSafe(format!(
                "UPDATE webhook_deliveries SET status = 'sending', locked_by = $2, locked_until = $3, \
                 attempts = attempts + 1, updated_at = $4 WHERE id = $1 RETURNING {DELIVERY_COLUMNS}"
            )))
            .bind(id)
            .bind(worker.to_owned())
            .bind(to_micros(lease_until))
            .bind(to_micros(now))
            .fetch_one(&mut *w.tx)
            .await?;
            let d = delivery_from_row(&row)?;
            let (url, secret): (String, String) =
                sqlx::query_as("SELECT url, secret FROM webhook_endpoints WHERE id = $1")
                    .bind(d.endpoint_id.0)
                    .fetch_one(&mut *w.tx)
                    .await?;
            out.push((d, url, secret));
        }
        w.commit().await?;
        Ok(out)
    }

    /// Records how an attempt ended; false when `worker` no longer held the delivery.
    pub async fn finish_delivery(
        &self,
        id: DeliveryId,
        worker: &str,
        end: &Attempt,
        now: DateTime<Utc>,
    ) -> StoreResult<bool> {
        let (status, due, code, error, delivered) = match end {
            Attempt::Delivered { code } => (
                DeliveryStatus::Delivered,
                None,
                Some(*code),
                None,
                Some(now),
            ),
            Attempt::Retry { at, code, error } => (
                DeliveryStatus::Queued,
                Some(*at),
                *code,
                Some(error.clone()),
                None,
            ),
            Attempt::Failed { code, error } => (
                DeliveryStatus::Failed,
                None,
                *code,
                Some(error.clone()),
                None,
            ),
        };
        let mut w = self.begin_write().await?;
        let n = sqlx::query(
            "UPDATE webhook_deliveries SET status = $3, due_at = COALESCE($4, due_at), response_code = $5, \
             last_error = $6, delivered_at = $7, locked_by = NULL, locked_until = NULL, updated_at = $8 \
             WHERE id = $1 AND status = 'sending' AND locked_by = $2",
        )
        .bind(id.0)
        .bind(worker.to_owned())
        .bind(status.as_str())
        .bind(due.map(to_micros))
        .bind(code)
        .bind(error)
        .bind(delivered.map(to_micros))
        .bind(to_micros(now))
        .execute(&mut *w.tx)
        .await?
        .rows_affected();
        w.commit().await?;
        Ok(n == 1)
    }
}
