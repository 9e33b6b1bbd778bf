//! Outgoing webhooks: endpoints an admin registers for customer, stage, ticket and loyalty
//! events. The handler writes a delivery per listening endpoint in the transaction of the
//! write that caused the event; the worker posts it, signed with the endpoint's secret
//! (HMAC-SHA256 over `{timestamp}.{body}`), and retries with backoff until it is answered
//! 2xx, or gives up after [`MAX_ATTEMPTS`]. Every attempt's answer stays in the delivery
//! log.

use futures_util::StreamExt;
use tenure_domain::access::Permission;
use tenure_domain::changes::{Actor, Event};
use tenure_domain::ids::{DeliveryId, WebhookId};
use tenure_domain::validation::Collector;
use tenure_domain::webhook::{MAX_ATTEMPTS, WebhookEvent, parse_url, signature, webhook_event};
use tenure_store::webhooks::{Attempt, Delivery, Endpoint, EndpointData};

use crate::unit::{Context, Handler, HandlerFuture};
use crate::{App, AppError, AppResult, Listed, PageRequest, require};

/// Deliveries a worker claims at once, and posts at once.
const BATCH: u32 = 50;
const AT_ONCE: usize = 8;

/// What a client asks an endpoint to be.
#[derive(Debug, Clone)]
pub struct EndpointInput {
    pub url: String,
    pub description: String,
    pub events: Vec<WebhookEvent>,
    pub enabled: bool,
}

impl EndpointInput {
    fn parse(self) -> AppResult<EndpointData> {
        let mut c = Collector::new();
        let url = c.check("url", parse_url(&self.url)).unwrap_or_default();
        if self.events.is_empty() {
            c.push("events", "name at least one event");
        }
        if self.description.chars().count() > 500 {
            c.push("description", "at most 500 characters");
        }
        c.finish()?;
        let mut events = self.events;
        events.sort();
        events.dedup();
        Ok(EndpointData {
            url,
            description: self.description.trim().to_owned(),
            events,
            enabled: self.enabled,
        })
    }
}

/// Writes the deliveries of each event that has a webhook, in the event's transaction.
pub struct Webhooks {
    pub clock: crate::Clock,
}

impl Handler for Webhooks {
    fn name(&self) -> &'static str {
        "webhooks"
    }

    fn handle<'a>(&'a self, ctx: &'a mut Context<'_, '_>, event: &'a Event) -> HandlerFuture<'a> {
        Box::pin(async move {
            let Some((kind, data)) = webhook_event(event) else {
                return Ok(());
            };
            let now = self.clock.now();
            let payload = serde_json::json!({
                "event": kind,
                "occurred_at": now.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
                "data": data,
            })
            .to_string();
            ctx.tx.queue_webhooks(kind, &payload, now).await?;
            Ok(())
        })
    }
}

/// What a worker's pass over the webhook outbox did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct WebhookReport {
    pub claimed: u64,
    pub delivered: u64,
    pub retried: u64,
    pub failed: u64,
}

impl App {
    pub async fn webhooks(&self, actor: &Actor) -> AppResult<Vec<Endpoint>> {
        require(actor, Permission::ManageUsers)?;
        Ok(self.store().endpoints().await?)
    }

    pub async fn webhook(&self, actor: &Actor, id: WebhookId) -> AppResult<Endpoint> {
        require(actor, Permission::ManageUsers)?;
        Ok(self.store().endpoint(id).await?.0)
    }

    /// Registers an endpoint; returns it with the secret its calls are signed with (shown
    /// this once).
    pub async fn create_webhook(
        &self,
        actor: &Actor,
        input: EndpointInput,
    ) -> AppResult<(Endpoint, String)> {
        require(actor, Permission::ManageUsers)?;
        let data = input.parse()?;
        let secret = format!("whsec_{}", crate::random_hex(24));
        let mut uow = self.begin(actor).await?;
        let e = uow.tx.create_endpoint(&data, &secret, self.now()).await?;
        uow.emit(Event::WebhookCreated { webhook: e.id });
        uow.commit().await?;
        Ok((e, secret))
    }

    pub async fn update_webhook(
        &self,
        actor: &Actor,
        id: WebhookId,
        input: EndpointInput,
    ) -> AppResult<Endpoint> {
        require(actor, Permission::ManageUsers)?;
        let data = input.parse()?;
        let mut uow = self.begin(actor).await?;
        let e = uow.tx.update_endpoint(id, &data, self.now()).await?;
        uow.emit(Event::WebhookUpdated { webhook: id });
        uow.commit().await?;
        Ok(e)
    }

    pub async fn delete_webhook(&self, actor: &Actor, id: WebhookId) -> AppResult<()> {
        require(actor, Permission::ManageUsers)?;
        let mut uow = self.begin(actor).await?;
        uow.tx.delete_endpoint(id).await?;
        uow.emit(Event::WebhookDeleted { webhook: id });
        uow.commit().await?;
        Ok(())
    }

    /// The delivery log, newest first: of one endpoint, or of all.
    pub async fn webhook_deliveries(
        &self,
        actor: &Actor,
        endpoint: Option<WebhookId>,
        page: &PageRequest,
    ) -> AppResult<Listed<Delivery>> {
        require(actor, Permission::ManageUsers)?;
        if let Some(e) = endpoint {
            self.store().endpoint(e).await?;
        }
        let (limit, before) = (page.limit()?, page.after::<DeliveryCursor>()?);
        let p = self
            .store()
            .deliveries(endpoint, before.map(|c| c.0), limit)
            .await?;
        Ok(Listed {
            items: p.items,
            next_cursor: p
                .next
                .map(|id| tenure_domain::cursor::encode(&DeliveryCursor(id))),
        })
    }

    /// Posts a batch of due deliveries.
    pub async fn deliver_webhooks(&self, worker: &str) -> AppResult<WebhookReport> {
        let now = self.now();
        let lease = now + chrono::Duration::seconds(60);
        let batch = self
            .store()
            .claim_deliveries(worker, now, lease, BATCH)
            .await?;
        let mut report = WebhookReport {
            claimed: batch.len() as u64,
            ..WebhookReport::default()
        };
        let mut ends = futures_util::stream::iter(batch)
            .map(|(d, url, secret)| async move {
                let end = self.post_webhook(&d, &url, &secret).await;
                self.store()
                    .finish_delivery(d.id, worker, &end, self.now())
                    .await?;
                Ok::<_, AppError>(end)
            })
            .buffer_unordered(AT_ONCE);
        while let Some(end) = ends.next().await {
            match end? {
                Attempt::Delivered { .. } => report.delivered += 1,
                Attempt::Retry { .. } => report.retried += 1,
                Attempt::Failed { .. } => report.failed += 1,
            }
        }
        Ok(report)
    }

    async fn post_webhook(&self, d: &Delivery, url: &str, secret: &str) -> Attempt {
        let ts = chrono::Utc::now().timestamp();
        let sig = format!("sha256={}", signature(secret.as_bytes(), ts, &d.payload));
        let sent = self
            .http_client()
            .post(url)
            .header("content-type", "application/json")
            .header("user-agent", "Tenure-Webhooks/1")
            .header("x-tenure-event", d.event.as_str())
            .header("x-tenure-delivery", d.id.0.to_string())
            .header("x-tenure-timestamp", ts.to_string())
            .header("x-tenure-signature", sig)
            .header("idempotency-key", format!("webhook-{}", d.id))
            .body(d.payload.clone())
            .send()
            .await;
        let (code, error) = match sent {
            Ok(r) if r.status().is_success() => {
                return Attempt::Delivered {
                    code: i64::from(r.status().as_u16()),
                };
            }
            Ok(r) => {
                let code = r.status().as_u16();
                let text = r.text().await.unwrap_or_default();
                let error = format!(
                    "answered {code}: {}",
                    text.chars().take(200).collect::<String>()
                );
                // 410 Gone: the receiver says this endpoint is no more.
                if code == 410 {
                    return Attempt::Failed {
                        code: Some(i64::from(code)),
                        error,
                    };
                }
                (Some(i64::from(code)), error)
            }
            Err(e) => (None, format!("could not be reached: {e}")),
        };
        if d.attempts >= MAX_ATTEMPTS {
            Attempt::Failed { code, error }
        } else {
            Attempt::Retry {
                at: self.now()
                    + tenure_domain::jobs::backoff(u32::try_from(d.attempts).unwrap_or(u32::MAX)),
                code,
                error,
            }
        }
    }
}

/// Where a page of the delivery log ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DeliveryCursor(pub DeliveryId);

impl tenure_domain::cursor::CursorKey for DeliveryCursor {
    const TAG: &'static str = "deliveries";
    type Parts = (i64,);
    fn to_parts(&self) -> Self::Parts {
        (self.0.0,)
    }
    fn from_parts((id,): Self::Parts) -> Option<Self> {
        (id > 0).then_some(DeliveryCursor(DeliveryId(id)))
    }
}
