//! `/api/v1/interactions`: contacts with customers on every channel.

use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use tenure_domain::customer::{Channel, Direction, InteractionKind};
use tenure_domain::ids::{CustomerId, InteractionId};
use tenure_domain::interaction::{Interaction, InteractionInput, InteractionPatch};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::{ListResponse, double_option, page};
use crate::auth::{self, Authorized};
use crate::extract::{Id, Json, Query};
use crate::{ApiError, AppState};

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_interactions, create_interaction))
        .routes(routes!(
            get_interaction,
            update_interaction,
            delete_interaction
        ))
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

impl From<CreateInteraction> for InteractionInput {
    fn from(i: CreateInteraction) -> Self {
        InteractionInput {
            external_id: i.external_id,
            channel: i.channel,
            direction: i.direction,
            kind: i.kind,
            subject: i.subject,
            body: i.body,
            staff_user_id: i.staff_user_id,
            buying_signal: i.buying_signal,
            occurred_at: i.occurred_at,
        }
    }
}

/// The body of `PATCH /api/v1/interactions/{id}`: fields left out stay.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateInteraction {
    pub channel: Option<Channel>,
    pub direction: Option<Direction>,
    pub kind: Option<InteractionKind>,
    pub subject: Option<String>,
    pub body: Option<String>,
    #[serde(default, deserialize_with = "double_option")]
    #[schema(value_type = Option<i64>)]
    pub staff_user_id: Option<Option<i64>>,
    pub buying_signal: Option<bool>,
    pub occurred_at: Option<DateTime<Utc>>,
}

impl From<UpdateInteraction> for InteractionPatch {
    fn from(u: UpdateInteraction) -> Self {
        InteractionPatch {
            channel: u.channel,
            direction: u.direction,
            kind: u.kind,
            subject: u.subject,
            body: u.body,
            staff_user_id: u.staff_user_id,
            buying_signal: u.buying_signal,
            occurred_at: u.occurred_at,
        }
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
    caller: Authorized<auth::ReadCustomers>,
    State(state): State<AppState>,
    Query(p): Query<InteractionListParams>,
) -> Result<axum::Json<ListResponse<InteractionDto>>, ApiError> {
    let found = state
        .app
        .list_interactions(
            &caller.actor,
            p.customer_id.map(CustomerId),
            &page(p.limit, &p.cursor),
        )
        .await?;
    Ok(axum::Json(ListResponse::of(found, InteractionDto::from)))
}

/// Record an interaction; the customer's last contact updates in the same transaction.
#[utoipa::path(post, path = "/api/v1/interactions", tag = "interactions", request_body = CreateInteraction,
    security(("bearer" = [])),
    responses((status = 201, body = InteractionDto), (status = 422, body = crate::problem::Problem)))]
async fn create_interaction(
    caller: Authorized<auth::WriteCustomers>,
    State(state): State<AppState>,
    Json(body): Json<CreateInteraction>,
) -> Result<impl IntoResponse, ApiError> {
    let customer = body.customer_id;
    let i = state
        .app
        .record_interaction(&caller.actor, customer, body.into())
        .await?;
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
    caller: Authorized<auth::ReadCustomers>,
    State(state): State<AppState>,
    Id(id): Id,
) -> Result<axum::Json<InteractionDto>, ApiError> {
    Ok(axum::Json(InteractionDto::from(
        state
            .app
            .get_interaction(&caller.actor, InteractionId(id))
            .await?,
    )))
}

/// Change an interaction (its customer stays); the customer's last contact follows.
#[utoipa::path(patch, path = "/api/v1/interactions/{id}", tag = "interactions", params(("id" = i64, Path)),
    request_body = UpdateInteraction, security(("bearer" = [])),
    responses((status = 200, body = InteractionDto), (status = 404, body = crate::problem::Problem),
              (status = 422, body = crate::problem::Problem)))]
async fn update_interaction(
    caller: Authorized<auth::WriteCustomers>,
    State(state): State<AppState>,
    Id(id): Id,
    Json(body): Json<UpdateInteraction>,
) -> Result<axum::Json<InteractionDto>, ApiError> {
    Ok(axum::Json(InteractionDto::from(
        state
            .app
            .update_interaction(&caller.actor, InteractionId(id), body.into())
            .await?,
    )))
}

#[utoipa::path(delete, path = "/api/v1/interactions/{id}", tag = "interactions", params(("id" = i64, Path)),
    security(("bearer" = [])),
    responses((status = 204), (status = 404, body = crate::problem::Problem)))]
async fn delete_interaction(
    caller: Authorized<auth::DeleteCustomers>,
    State(state): State<AppState>,
    Id(id): Id,
) -> Result<StatusCode, ApiError> {
    state
        .app
        .delete_interaction(&caller.actor, InteractionId(id))
        .await?;
    Ok(StatusCode::NO_CONTENT)
}
