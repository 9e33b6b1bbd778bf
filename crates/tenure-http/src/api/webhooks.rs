//! `/api/v1/webhooks`: endpoints told of customer, stage, ticket and loyalty events, and
//! their delivery log (admins only).

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use tenure_app::model::{WebhookDelivery as Delivery, WebhookEndpoint as Endpoint};
use tenure_app::webhooks::EndpointInput;
use tenure_domain::ids::WebhookId;
use tenure_domain::webhook::{DeliveryStatus, WebhookEvent};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::{ListResponse, page};
use crate::auth::{self, Authorized};
use crate::extract::{Id, Json, Query};
use crate::{ApiError, AppState};

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_webhooks, create_webhook))
        .routes(routes!(get_webhook, update_webhook, delete_webhook))
        .routes(routes!(list_deliveries))
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct WebhookDto {
    pub id: i64,
    pub url: String,
    pub description: String,
    pub events: Vec<WebhookEvent>,
    pub enabled: bool,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl From<Endpoint> for WebhookDto {
    fn from(e: Endpoint) -> Self {
        WebhookDto {
            id: e.id.0,
            url: e.url,
            description: e.description,
            events: e.events,
            enabled: e.enabled,
            created_at: e.created_at,
            updated_at: e.updated_at,
        }
    }
}

/// A new endpoint, with the secret its calls are signed with — shown only this once.
#[derive(Serialize, utoipa::ToSchema)]
pub struct CreatedWebhookDto {
    #[serde(flatten)]
    pub webhook: WebhookDto,
    /// Verify each call: HMAC-SHA256 with this secret over `{X-Tenure-Timestamp}.{body}`,
    /// hex, equals `X-Tenure-Signature` after `sha256=`; refuse timestamps more than five
    /// minutes old.
    pub secret: String,
}

/// The body of `POST /api/v1/webhooks` and `PUT /api/v1/webhooks/{id}`.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct WebhookBody {
    /// Where events are posted: https://… (or http:// inside a private network).
    pub url: String,
    #[serde(default)]
    pub description: String,
    /// The events it is told of.
    pub events: Vec<WebhookEvent>,
    #[serde(default = "yes")]
    pub enabled: bool,
}

fn yes() -> bool {
    true
}

impl From<WebhookBody> for EndpointInput {
    fn from(b: WebhookBody) -> Self {
        EndpointInput {
            url: b.url,
            description: b.description,
            events: b.events,
            enabled: b.enabled,
        }
    }
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct DeliveryDto {
    pub id: i64,
    pub webhook_id: i64,
    pub event: WebhookEvent,
    /// The body that is posted (ids only; read the records through the API).
    #[schema(value_type = Object)]
    pub payload: serde_json::Value,
    pub status: DeliveryStatus,
    pub attempts: i64,
    /// When it is (or was) due next.
    pub due_at: DateTime<Utc>,
    /// The last answer's HTTP status.
    pub response_code: Option<i64>,
    pub last_error: Option<String>,
    pub created_at: DateTime<Utc>,
    pub delivered_at: Option<DateTime<Utc>>,
}

impl From<Delivery> for DeliveryDto {
    fn from(d: Delivery) -> Self {
        DeliveryDto {
            id: d.id.0,
            webhook_id: d.endpoint_id.0,
            event: d.event,
            payload: serde_json::from_str(&d.payload).unwrap_or(serde_json::Value::Null),
            status: d.status,
            attempts: d.attempts,
            due_at: d.due_at,
            response_code: d.response_code,
            last_error: d.last_error,
            created_at: d.created_at,
            delivered_at: d.delivered_at,
        }
    }
}

#[utoipa::path(get, path = "/api/v1/webhooks", tag = "webhooks", security(("bearer" = [])),
    responses((status = 200, body = ListResponse<WebhookDto>), (status = 403, body = crate::problem::Problem)))]
async fn list_webhooks(
    caller: Authorized<auth::ManageUsers>,
    State(state): State<AppState>,
) -> Result<axum::Json<ListResponse<WebhookDto>>, ApiError> {
    let all = state.app.webhooks(&caller.actor).await?;
    Ok(axum::Json(ListResponse::all(
        all.into_iter().map(WebhookDto::from).collect(),
    )))
}

/// Register an endpoint. Each event is posted as JSON with `X-Tenure-Event`,
/// `X-Tenure-Delivery` (the same on every retry), `X-Tenure-Timestamp` and
/// `X-Tenure-Signature`; a 2xx answer ends it, anything else is retried with backoff (30 s
/// doubling to an hour) for about eight hours; 410 ends it at once.
#[utoipa::path(post, path = "/api/v1/webhooks", tag = "webhooks", request_body = WebhookBody, security(("bearer" = [])),
    responses((status = 201, body = CreatedWebhookDto), (status = 403, body = crate::problem::Problem),
              (status = 422, body = crate::problem::Problem)))]
async fn create_webhook(
    caller: Authorized<auth::ManageUsers>,
    State(state): State<AppState>,
    Json(body): Json<WebhookBody>,
) -> Result<impl IntoResponse, ApiError> {
    let (e, secret) = state.app.create_webhook(&caller.actor, body.into()).await?;
    Ok((
        StatusCode::CREATED,
        axum::Json(CreatedWebhookDto {
            webhook: e.into(),
            secret,
        }),
    ))
}

#[utoipa::path(get, path = "/api/v1/webhooks/{id}", tag = "webhooks", params(("id" = i64, Path)),
    security(("bearer" = [])),
    responses((status = 200, body = WebhookDto), (status = 404, body = crate::problem::Problem)))]
async fn get_webhook(
    caller: Authorized<auth::ManageUsers>,
    State(state): State<AppState>,
    Id(id): Id,
) -> Result<axum::Json<WebhookDto>, ApiError> {
    let e = state.app.webhook(&caller.actor, WebhookId(id)).await?;
    Ok(axum::Json(e.into()))
}

/// Change an endpoint: its address, events, description, or switch it off.
#[utoipa::path(put, path = "/api/v1/webhooks/{id}", tag = "webhooks", params(("id" = i64, Path)),
    request_body = WebhookBody, security(("bearer" = [])),
    responses((status = 200, body = WebhookDto), (status = 404, body = crate::problem::Problem),
              (status = 422, body = crate::problem::Problem)))]
async fn update_webhook(
    caller: Authorized<auth::ManageUsers>,
    State(state): State<AppState>,
    Id(id): Id,
    Json(body): Json<WebhookBody>,
) -> Result<axum::Json<WebhookDto>, ApiError> {
    let e = state
        .app
        .update_webhook(&caller.actor, WebhookId(id), body.into())
        .await?;
    Ok(axum::Json(e.into()))
}

/// Remove an endpoint with its delivery log.
#[utoipa::path(delete, path = "/api/v1/webhooks/{id}", tag = "webhooks", params(("id" = i64, Path)),
    security(("bearer" = [])),
    responses((status = 204), (status = 404, body = crate::problem::Problem)))]
async fn delete_webhook(
    caller: Authorized<auth::ManageUsers>,
    State(state): State<AppState>,
    Id(id): Id,
) -> Result<StatusCode, ApiError> {
    state
        .app
        .delete_webhook(&caller.actor, WebhookId(id))
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct DeliveryParams {
    pub limit: Option<u32>,
    pub cursor: Option<String>,
}

/// The delivery log of an endpoint, newest first: each event with its attempts, the last
/// answer and when it is due again.
#[utoipa::path(get, path = "/api/v1/webhooks/{id}/deliveries", tag = "webhooks",
    params(("id" = i64, Path), DeliveryParams), security(("bearer" = [])),
    responses((status = 200, body = ListResponse<DeliveryDto>), (status = 404, body = crate::problem::Problem)))]
async fn list_deliveries(
    caller: Authorized<auth::ManageUsers>,
    State(state): State<AppState>,
    Id(id): Id,
    Query(p): Query<DeliveryParams>,
) -> Result<axum::Json<ListResponse<DeliveryDto>>, ApiError> {
    let found = state
        .app
        .webhook_deliveries(
            &caller.actor,
            Some(WebhookId(id)),
            &page(p.limit, &p.cursor),
        )
        .await?;
    Ok(axum::Json(ListResponse::of(found, DeliveryDto::from)))
}
