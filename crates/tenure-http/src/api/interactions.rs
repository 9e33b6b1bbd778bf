//! `/api/v1/interactions`: contacts with customers on every channel.

use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use tenure_domain::customer::{Channel, Direction, InteractionKind};
use tenure_domain::ids::{CustomerId, InteractionId, StaffUserId};
use tenure_domain::interaction::{BODY_MAX, Interaction, InteractionData, SUBJECT_MAX};
use tenure_domain::validation::{self, Collector};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::{ListResponse, decode_id_cursor, encode_cursor, limit};
use crate::auth::{self, Authorized};
use crate::extract::{Id, Json, Query};
use crate::{ApiError, AppState};

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_interactions, create_interaction))
        .routes(routes!(get_interaction, delete_interaction))
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct InteractionDto {
    pub id: i64,
    pub external_id: Option<String>,
    pub customer_id: i64,
    pub channel: Channel,
    pub direction: Direction,
    pub kind: InteractionKind,
    pub subject: String,
    pub body: String,
    pub staff_user_id: Option<i64>,
    pub buying_signal: bool,
    pub occurred_at: DateTime<Utc>,
    pub created_at: DateTime<Utc>,
}

impl From<Interaction> for InteractionDto {
    fn from(i: Interaction) -> Self {
        let d = i.data;
        InteractionDto {
            id: i.id.0,
            external_id: d.external_id,
            customer_id: d.customer_id.0,
            channel: d.channel,
            direction: d.direction,
            kind: d.kind,
            subject: d.subject,
            body: d.body,
            staff_user_id: d.staff_user_id.map(|s| s.0),
            buying_signal: d.buying_signal,
            occurred_at: d.occurred_at,
            created_at: i.created_at,
        }
    }
}

/// The body of `POST /api/v1/interactions`.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateInteraction {
    pub customer_id: i64,
    pub channel: Channel,
    pub direction: Direction,
    /// Defaults to `note`.
    pub kind: Option<InteractionKind>,
    pub external_id: Option<String>,
    #[serde(default)]
    pub subject: String,
    #[serde(default)]
    pub body: String,
    pub staff_user_id: Option<i64>,
    /// The customer showed intent to buy.
    #[serde(default)]
    pub buying_signal: bool,
    /// Defaults to now.
    pub occurred_at: Option<DateTime<Utc>>,
}

impl CreateInteraction {
    fn validate(self) -> Result<InteractionData, ApiError> {
        let mut c = Collector::new();
        if self.customer_id <= 0 {
            c.push("customer_id", "must be a positive id");
        }
        if self.staff_user_id.is_some_and(|s| s <= 0) {
            c.push("staff_user_id", "must be a positive id");
        }
        let external_id = c.check_opt("external_id", self.external_id, |s| {
            validation::external_id(&s)
        });
        let subject = c.check(
            "subject",
            validation::text(&self.subject, SUBJECT_MAX, false),
        );
        let body = c.check("body", validation::text(&self.body, BODY_MAX, true));
        let now = Utc::now();
        let occurred_at = self.occurred_at.unwrap_or(now);
        if occurred_at > now + chrono::Duration::days(1) {
            c.push("occurred_at", "must not be in the future");
        }
        c.finish()?;
        Ok(InteractionData {
            external_id,
            customer_id: CustomerId(self.customer_id),
            channel: self.channel,
            direction: self.direction,
            kind: self.kind.unwrap_or(InteractionKind::Note),
            subject: subject.unwrap_or_default(),
            body: body.unwrap_or_default(),
            staff_user_id: self.staff_user_id.map(StaffUserId),
            buying_signal: self.buying_signal,
            occurred_at,
        })
    }
}

#[derive(Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct InteractionListParams {
    pub customer_id: Option<i64>,
    pub limit: Option<u32>,
    pub cursor: Option<String>,
}

#[utoipa::path(get, path = "/api/v1/interactions", tag = "interactions", params(InteractionListParams),
    security(("bearer" = [])), responses((status = 200, body = ListResponse<InteractionDto>)))]
async fn list_interactions(
    _caller: Authorized<auth::ReadCustomers>,
    State(state): State<AppState>,
    Query(p): Query<InteractionListParams>,
) -> Result<axum::Json<ListResponse<InteractionDto>>, ApiError> {
    let after = decode_id_cursor(p.cursor.as_deref())?.map(InteractionId);
    let page = state
        .store
        .list_interactions(p.customer_id.map(CustomerId), after, limit(p.limit)?)
        .await?;
    Ok(axum::Json(ListResponse {
        items: page.items.into_iter().map(InteractionDto::from).collect(),
        next_cursor: page.next.map(|id| encode_cursor(&id.0.to_string())),
    }))
}

/// Record an interaction; the customer's last contact updates in the same transaction.
#[utoipa::path(post, path = "/api/v1/interactions", tag = "interactions", request_body = CreateInteraction,
    security(("bearer" = [])),
    responses((status = 201, body = InteractionDto), (status = 422, body = crate::problem::Problem)))]
async fn create_interaction(
    _caller: Authorized<auth::WriteCustomers>,
    State(state): State<AppState>,
    Json(body): Json<CreateInteraction>,
) -> Result<impl IntoResponse, ApiError> {
    let data = body.validate()?;
    let i = state.store.create_interaction(&data).await?;
    let location = format!("/api/v1/interactions/{}", i.id);
    Ok((
        StatusCode::CREATED,
        [(header::LOCATION, location)],
        axum::Json(InteractionDto::from(i)),
    ))
}

#[utoipa::path(get, path = "/api/v1/interactions/{id}", tag = "interactions", params(("id" = i64, Path)),
    security(("bearer" = [])),
    responses((status = 200, body = InteractionDto), (status = 404, body = crate::problem::Problem)))]
async fn get_interaction(
    _caller: Authorized<auth::ReadCustomers>,
    State(state): State<AppState>,
    Id(id): Id,
) -> Result<axum::Json<InteractionDto>, ApiError> {
    Ok(axum::Json(InteractionDto::from(
        state.store.get_interaction(InteractionId(id)).await?,
    )))
}

#[utoipa::path(delete, path = "/api/v1/interactions/{id}", tag = "interactions", params(("id" = i64, Path)),
    security(("bearer" = [])),
    responses((status = 204), (status = 404, body = crate::problem::Problem)))]
async fn delete_interaction(
    _caller: Authorized<auth::DeleteCustomers>,
    State(state): State<AppState>,
    Id(id): Id,
) -> Result<StatusCode, ApiError> {
    state.store.delete_interaction(InteractionId(id)).await?;
    Ok(StatusCode::NO_CONTENT)
}
