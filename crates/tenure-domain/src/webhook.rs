//! Outgoing webhooks: which events an endpoint hears of, what a delivery carries (ids,
//! never personal data: the receiver reads what it needs through the API), and how a
//! delivery is signed.

use crate::changes::Event;
use crate::text_enum;

text_enum! {
    schema = WebhookEvent;
    /// What an endpoint can be told of.
    pub enum WebhookEvent {
        CustomerCreated => "customer.created",
        CustomerUpdated => "customer.updated",
        CustomerDeleted => "customer.deleted",
        CustomerErased => "customer.erased",
        CustomersMerged => "customer.merged",
        StageChanged => "stage.changed",
        TicketCreated => "ticket.created",
        TicketUpdated => "ticket.updated",
        PointsChanged => "loyalty.points_changed",
        TierChanged => "loyalty.tier_changed",
    }
}

text_enum! {
    schema = DeliveryStatus;
    /// Where a delivery stands.
    pub enum DeliveryStatus {
        Queued => "queued",
        Sending => "sending",
        Delivered => "delivered",
        Failed => "failed",
    }
}

/// Attempts before a delivery is given up (with backoff from 30 s to an hour, about eight
/// hours in all).
pub const MAX_ATTEMPTS: i64 = 12;

/// The webhook event a domain event is, with its data (ids only).
pub fn webhook_event(e: &Event) -> Option<(WebhookEvent, serde_json::Value)> {
    use serde_json::json;
    Some(match e {
        Event::CustomerCreated { customer } => (
            WebhookEvent::CustomerCreated,
            json!({ "customer_id": customer.0 }),
        ),
        Event::CustomerUpdated { customer } | Event::LifecycleEdited { customer } => (
            WebhookEvent::CustomerUpdated,
            json!({ "customer_id": customer.0 }),
        ),
        Event::CustomerDeleted { customer } => (
            WebhookEvent::CustomerDeleted,
            json!({ "customer_id": customer.0 }),
        ),
        Event::CustomerErased { customer } => (
            WebhookEvent::CustomerErased,
            json!({ "customer_id": customer.0 }),
        ),
        Event::CustomersMerged {
            merge,
            survivor,
            merged,
        } => (
            WebhookEvent::CustomersMerged,
            json!({ "merge_id": merge.0, "customer_id": survivor.0, "merged_customer_id": merged.0 }),
        ),
        Event::StageChanged { customer } => (
            WebhookEvent::StageChanged,
            json!({ "customer_id": customer.0 }),
        ),
        Event::TicketCreated { ticket, customer } => (
            WebhookEvent::TicketCreated,
            json!({ "ticket_id": ticket.0, "customer_id": customer.0 }),
        ),
        Event::TicketUpdated { ticket, customer } => (
            WebhookEvent::TicketUpdated,
            json!({ "ticket_id": ticket.0, "customer_id": customer.0 }),
        ),
        Event::PointsChanged { customer } => (
            WebhookEvent::PointsChanged,
            json!({ "customer_id": customer.0 }),
        ),
        Event::TierChanged { customer } => (
            WebhookEvent::TierChanged,
            json!({ "customer_id": customer.0 }),
        ),
        _ => return None,
    })
}

/// The signature of a body sent at `timestamp` (Unix seconds): HMAC-SHA256 over
/// `{timestamp}.{body}`, hex. A receiver recomputes it, compares in constant time, and
/// refuses a timestamp more than a few minutes old (a replay).
pub fn signature(secret: &[u8], timestamp: i64, body: &str) -> String {
    use hmac::{KeyInit, Mac};
    let mut mac = match hmac::Hmac::<sha2::Sha256>::new_from_slice(secret) {
        Ok(m) => m,
        // HMAC takes a key of any length.
        Err(_) => return String::new(),
    };
    mac.update(format!("{timestamp}.{body}").as_bytes());
    mac.finalize()
        .into_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// An endpoint's address: http(s), with a host.
pub fn parse_url(raw: &str) -> Result<String, String> {
    let url = raw.trim();
    let rest = url
        .strip_prefix("https://")
        .or_else(|| url.strip_prefix("http://"))
        .ok_or_else(|| "must start with https:// (or http://)".to_owned())?;
    let host = rest.split(['/', '?', '#']).next().unwrap_or_default();
    if host.is_empty() || host.contains(char::is_whitespace) || url.len() > 2000 {
        return Err("must name a host, as https://example.com/hooks".into());
    }
    Ok(url.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_signature_covers_the_time_and_the_body() {
        let a = signature(b"secret", 1_700_000_000, "{\"a\":1}");
        assert_eq!(a.len(), 64);
        assert_ne!(a, signature(b"secret", 1_700_000_001, "{\"a\":1}"));
        assert_ne!(a, signature(b"secret", 1_700_000_000, "{\"a\":2}"));
        assert_ne!(a, signature(b"other", 1_700_000_000, "{\"a\":1}"));
    }

    #[test]
    fn endpoint_addresses_are_web_addresses() {
        assert!(parse_url("https://hooks.example.com/tenure").is_ok());
        assert!(parse_url("http://127.0.0.1:9000/x").is_ok());
        assert!(parse_url("ftp://example.com").is_err());
        assert!(parse_url("https:///path").is_err());
        assert!(parse_url("hooks.example.com").is_err());
    }
}
