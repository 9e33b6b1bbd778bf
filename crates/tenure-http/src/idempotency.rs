//! `Idempotency-Key` on every POST of the API. The first write the request commits records
//! the key (with a digest of the request) in its own transaction; the answer is stored
//! when the request is answered. A retry with the same key gets the stored answer and
//! changes nothing; the same key with another request is refused; a retry of a request
//! whose write committed but whose answer was lost is refused (409) rather than written
//! twice.

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use sha2::Digest;
use tenure_app::unit::{RequestKey, with_request_key};

use crate::{ApiError, AppState};

/// The largest body a keyed request may have (the API's own limit).
const BODY_MAX: usize = 1024 * 1024;

/// A stored answer is kept for a day: longer than any client retries.
const KEPT_HOURS: i64 = 24;

#[derive(Serialize, Deserialize)]
struct StoredAnswer {
    status: u16,
    content_type: Option<String>,
    location: Option<String>,
    body: String,
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

pub async fn guard(State(state): State<AppState>, req: Request, next: Next) -> Response {
    if req.method() != Method::POST {
        return next.run(req).await;
    }
    let Some(raw) = req.headers().get("idempotency-key") else {
        return next.run(req).await;
    };
    let key = match raw.to_str() {
        Ok(k)
            if !k.is_empty() && k.len() <= 200 && k.bytes().all(|b| (0x21..0x7f).contains(&b)) =>
        {
            k.to_owned()
        }
        _ => {
            return ApiError::field(
                "Idempotency-Key",
                "must be 1–200 printable characters without spaces",
            )
            .into_response();
        }
    };
    // The caller's credential names the scope; without one, the request is refused
    // further in and nothing is stored.
    let Some(auth) = req.headers().get(header::AUTHORIZATION) else {
        return next.run(req).await;
    };
    let scope = format!(
        "http:{}",
        &hex(&sha2::Sha256::digest(auth.as_bytes()))[..32]
    );
    let (parts, body) = req.into_parts();
    let bytes = match axum::body::to_bytes(body, BODY_MAX).await {
        Ok(b) => b,
        Err(_) => return ApiError::PayloadTooLarge.into_response(),
    };
    let mut digest = sha2::Sha256::new();
    digest.update(parts.method.as_str().as_bytes());
    digest.update(b" ");
    digest.update(parts.uri.to_string().as_bytes());
    digest.update(b"\n");
    digest.update(&bytes);
    let fingerprint = hex(&digest.finalize());

    let app = &state.app;
    match app.request_key(&scope, &key).await {
        Err(e) => return ApiError::from(e).into_response(),
        Ok(Some(stored)) if stored.fingerprint != fingerprint => {
            return ApiError::Invalid(vec![tenure_domain::FieldError::new(
                "Idempotency-Key",
                "this key was used for a different request; use a new key for a new request",
            )])
            .into_response();
        }
        Ok(Some(stored)) if stored.response.is_empty() => {
            return ApiError::Conflict(
                "a request with this Idempotency-Key was carried out already or is being carried \
                 out, and its answer is not stored; look the record up before sending it again \
                 with a new key"
                    .into(),
            )
            .into_response();
        }
        Ok(Some(stored)) => {
            if let Ok(answer) = serde_json::from_str::<StoredAnswer>(&stored.response) {
                return replay(answer);
            }
        }
        Ok(None) => {}
    }
    if fingerprint.ends_with("00") {
        let before = chrono::Utc::now() - chrono::Duration::hours(KEPT_HOURS);
        if let Err(e) = app.forget_request_keys(before).await {
            tracing::warn!(error = %e, "could not forget old idempotency keys");
        }
    }

    let req = Request::from_parts(parts, Body::from(bytes));
    let request_key = RequestKey {
        scope: scope.clone(),
        key: key.clone(),
        fingerprint,
    };
    let (res, recorded) = with_request_key(request_key, next.run(req)).await;
    if !recorded {
        return res;
    }
    // The write committed with the key: store its answer for a retry.
    let (parts, body) = res.into_parts();
    let bytes = match axum::body::to_bytes(body, usize::MAX).await {
        Ok(b) => b,
        Err(_) => return StatusCode::INTERNAL_SERVER_ERROR.into_response(),
    };
    if let Ok(text) = std::str::from_utf8(&bytes) {
        let answer = StoredAnswer {
            status: parts.status.as_u16(),
            content_type: header_text(&parts.headers, header::CONTENT_TYPE),
            location: header_text(&parts.headers, header::LOCATION),
            body: text.to_owned(),
        };
        let stored = serde_json::to_string(&answer).unwrap_or_default();
        if let Err(e) = app.answer_request_key(&scope, &key, &stored).await {
            tracing::warn!(error = %e, "could not store the answer to a keyed request");
        }
    }
    Response::from_parts(parts, Body::from(bytes))
}

fn header_text(h: &axum::http::HeaderMap, name: header::HeaderName) -> Option<String> {
    h.get(name).and_then(|v| v.to_str().ok()).map(str::to_owned)
}

fn replay(answer: StoredAnswer) -> Response {
    let status = StatusCode::from_u16(answer.status).unwrap_or(StatusCode::OK);
    let mut res = (status, answer.body).into_response();
    let h = res.headers_mut();
    if let Some(v) = answer
        .content_type
        .and_then(|c| HeaderValue::from_str(&c).ok())
    {
        h.insert(header::CONTENT_TYPE, v);
    }
    if let Some(v) = answer.location.and_then(|c| HeaderValue::from_str(&c).ok()) {
        h.insert(header::LOCATION, v);
    }
    h.insert("idempotent-replayed", HeaderValue::from_static("true"));
    res
}
