//! Every request gets an id, one log line and its metrics. The id comes back in the
//! `x-request-id` header and in every problem+json body, so a user's report can be matched
//! to the log; the log names the route template, never the path, query or headers, so it
//! carries no personal data and no token.

use std::hash::{BuildHasher, Hasher};
use std::sync::LazyLock;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::http::HeaderValue;
use axum::middleware::Next;
use axum::response::Response;

use crate::AppState;

/// The header that carries the request id both ways.
pub const REQUEST_ID: &str = "x-request-id";

tokio::task_local! {
    static CURRENT: String;
}

/// The id of the request being answered, inside a request.
pub fn current_id() -> Option<String> {
    CURRENT.try_with(Clone::clone).ok()
}

/// A new id: this process's random prefix and a counter, 16 hex digits each.
fn new_id() -> String {
    static PREFIX: LazyLock<u64> = LazyLock::new(|| {
        std::collections::hash_map::RandomState::new()
            .build_hasher()
            .finish()
    });
    static NEXT: AtomicU64 = AtomicU64::new(1);
    format!(
        "{:016x}{:016x}",
        *PREFIX,
        NEXT.fetch_add(1, Ordering::Relaxed)
    )
}

/// A caller's own id is kept when it is short and plain (a proxy's or a client's trace id).
fn given_id(req: &Request) -> Option<String> {
    let v = req.headers().get(REQUEST_ID)?.to_str().ok()?;
    let plain = !v.is_empty()
        && v.len() <= 64
        && v.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'));
    plain.then(|| v.to_owned())
}

/// Names the request, logs it when answered and counts it under its route template.
pub async fn observe(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let start = Instant::now();
    let id = given_id(&req).unwrap_or_else(new_id);
    let method = req.method().to_string();
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_owned(), |p| p.as_str().to_owned());
    let mut res = CURRENT.scope(id.clone(), next.run(req)).await;
    let elapsed = start.elapsed();
    let status = res.status().as_u16();
    if let Ok(v) = HeaderValue::from_str(&id) {
        res.headers_mut().insert(REQUEST_ID, v);
    }
    tracing::info!(
        target: "tenure::request",
        request_id = %id,
        method = %method,
        route = %route,
        status,
        duration_ms = (elapsed.as_secs_f64() * 100_000.0).round() / 100.0,
        "{method} {route} {status}"
    );
    state.metrics.record(method, route, status, elapsed);
    res
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_unique_and_plain() {
        let a = new_id();
        let b = new_id();
        assert_ne!(a, b);
        assert_eq!(a.len(), 32);
        assert!(a.bytes().all(|c| c.is_ascii_hexdigit()));
    }

    #[test]
    fn only_plain_given_ids_are_kept() {
        let req = |v: &str| {
            axum::http::Request::builder()
                .header(REQUEST_ID, v)
                .body(axum::body::Body::empty())
                .unwrap()
        };
        assert_eq!(
            given_id(&req("abc-123_x.y")).as_deref(),
            Some("abc-123_x.y")
        );
        assert_eq!(given_id(&req("has space")), None);
        assert_eq!(given_id(&req(&"a".repeat(65))), None);
        assert_eq!(given_id(&req("")), None);
    }
}
