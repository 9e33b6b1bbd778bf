//! `/api/v1/orders`: orders with line items, in integer minor units with their currency.

use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use tenure_domain::catalog::{
    Order, OrderInput, OrderLineInput, OrderPatch, OrderStatus, SalesChannel,
};
use tenure_domain::ids::{CustomerId, OrderId};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::{ListResponse, page};
use crate::auth::{self, Authorized};
use crate::extract::{Id, Json, Query};
use crate::{ApiError, AppState};

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_orders, create_order))
        .routes(routes!(get_order, update_order, delete_order))
}

#[derive(Serialize, Deserialize, utoipa::ToSchema, Clone)]
#[serde(deny_unknown_fields)]
pub struct OrderLineDto {
    pub product_id: Option<i64>,
    #[serde(default)]
    pub description: String,
    /// Defaults to 1.
    #[serde(default = "one")]
    pub quantity: i64,
    pub unit_price_minor: i64,
    /// Defaults to quantity × unit price.
    pub total_minor: Option<i64>,
}

fn one() -> i64 {
    1
}

/// An order as the API shows it.
#[derive(Serialize, utoipa::ToSchema)]
pub struct OrderDto {
    pub id: i64,
    pub external_id: Option<String>,
    pub customer_id: i64,
    pub occurred_at: DateTime<Utc>,
    /// ISO 4217.
    pub currency: String,
    /// The order total in minor units of `currency` (cents for USD, fen for CNY).
    pub total_minor: i64,
    pub channel: SalesChannel,
    pub status: OrderStatus,
    pub lines: Vec<OrderLineDto>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl From<Order> for OrderDto {
    fn from(o: Order) -> Self {
        OrderDto {
            id: o.id.0,
            external_id: o.data.external_id,
            customer_id: o.data.customer_id.0,
            occurred_at: o.data.occurred_at,
            currency: o.data.currency,
            total_minor: o.data.total_minor,
            channel: o.data.channel,
            status: o.data.status,
            lines: o
                .data
                .lines
                .into_iter()
                .map(|l| OrderLineDto {
                    product_id: l.product_id.map(|p| p.0),
                    description: l.description,
                    quantity: l.quantity,
                    unit_price_minor: l.unit_price_minor,
                    total_minor: Some(l.total_minor),
                })
                .collect(),
            created_at: o.created_at,
            updated_at: o.updated_at,
        }
    }
}

/// The body of `POST /api/v1/orders`.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateOrder {
    pub customer_id: i64,
    pub external_id: Option<String>,
    pub occurred_at: DateTime<Utc>,
    /// ISO 4217; defaults to the reporting currency.
    pub currency: Option<String>,
    /// Defaults to the sum of the lines.
    pub total_minor: Option<i64>,
    pub channel: Option<SalesChannel>,
    pub status: Option<OrderStatus>,
    #[serde(default)]
    pub lines: Vec<OrderLineDto>,
}

/// The body of `PATCH /api/v1/orders/{id}`.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateOrder {
    pub customer_id: Option<i64>,
    pub occurred_at: Option<DateTime<Utc>>,
    pub currency: Option<String>,
    pub total_minor: Option<i64>,
    pub channel: Option<SalesChannel>,
    pub status: Option<OrderStatus>,
    pub lines: Option<Vec<OrderLineDto>>,
}

impl From<OrderLineDto> for OrderLineInput {
    fn from(l: OrderLineDto) -> Self {
        OrderLineInput {
            product_id: l.product_id,
            description: l.description,
            quantity: l.quantity,
            unit_price_minor: l.unit_price_minor,
            total_minor: l.total_minor,
        }
    }
}

impl From<CreateOrder> for OrderInput {
    fn from(o: CreateOrder) -> Self {
        OrderInput {
            external_id: o.external_id,
            occurred_at: o.occurred_at,
            currency: o.currency,
            total_minor: o.total_minor,
            channel: o.channel,
            status: o.status,
            lines: o.lines.into_iter().map(OrderLineInput::from).collect(),
        }
    }
}

impl From<UpdateOrder> for OrderPatch {
    fn from(o: UpdateOrder) -> Self {
        OrderPatch {
            customer_id: o.customer_id,
            occurred_at: o.occurred_at,
            currency: o.currency,
            total_minor: o.total_minor,
            channel: o.channel,
            status: o.status,
            lines: o
                .lines
                .map(|l| l.into_iter().map(OrderLineInput::from).collect()),
        }
    }
}

#[derive(Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct OrderListParams {
    pub customer_id: Option<i64>,
    pub limit: Option<u32>,
    pub cursor: Option<String>,
}

/// List orders, optionally of one customer.
#[utoipa::path(get, path = "/api/v1/orders", tag = "orders", params(OrderListParams), security(("bearer" = [])),
    responses((status = 200, body = ListResponse<OrderDto>)))]
async fn list_orders(
    caller: Authorized<auth::ReadAggregates>,
    State(state): State<AppState>,
    Query(p): Query<OrderListParams>,
) -> Result<axum::Json<ListResponse<OrderDto>>, ApiError> {
    let found = state
        .app
        .list_orders(
            &caller.actor,
            p.customer_id.map(CustomerId),
            &page(p.limit, &p.cursor),
        )
        .await?;
    Ok(axum::Json(ListResponse::of(found, OrderDto::from)))
}

/// Record an order; the customer's aggregates update in the same transaction.
#[utoipa::path(post, path = "/api/v1/orders", tag = "orders", request_body = CreateOrder, security(("bearer" = [])),
    responses((status = 201, body = OrderDto), (status = 409, body = crate::problem::Problem),
              (status = 422, body = crate::problem::Problem)))]
async fn create_order(
    caller: Authorized<auth::WriteCustomers>,
    State(state): State<AppState>,
    Json(body): Json<CreateOrder>,
) -> Result<impl IntoResponse, ApiError> {
    let customer = body.customer_id;
    let order = state
        .app
        .record_order(&caller.actor, customer, body.into())
        .await?;
    let location = format!("/api/v1/orders/{}", order.id);
    Ok((
        StatusCode::CREATED,
        [(header::LOCATION, location)],
        axum::Json(OrderDto::from(order)),
    ))
}

#[utoipa::path(get, path = "/api/v1/orders/{id}", tag = "orders", params(("id" = i64, Path)), security(("bearer" = [])),
    responses((status = 200, body = OrderDto), (status = 404, body = crate::problem::Problem)))]
async fn get_order(
    caller: Authorized<auth::ReadAggregates>,
    State(state): State<AppState>,
    Id(id): Id,
) -> Result<axum::Json<OrderDto>, ApiError> {
    Ok(axum::Json(OrderDto::from(
        state.app.get_order(&caller.actor, OrderId(id)).await?,
    )))
}

/// Change an order (status, time, amounts, lines); aggregates follow.
#[utoipa::path(patch, path = "/api/v1/orders/{id}", tag = "orders", params(("id" = i64, Path)),
    request_body = UpdateOrder, security(("bearer" = [])),
    responses((status = 200, body = OrderDto), (status = 404, body = crate::problem::Problem),
              (status = 422, body = crate::problem::Problem)))]
async fn update_order(
    caller: Authorized<auth::WriteCustomers>,
    State(state): State<AppState>,
    Id(id): Id,
    Json(body): Json<UpdateOrder>,
) -> Result<axum::Json<OrderDto>, ApiError> {
    let order = state
        .app
        .update_order(&caller.actor, OrderId(id), body.into())
        .await?;
    Ok(axum::Json(OrderDto::from(order)))
}

#[utoipa::path(delete, path = "/api/v1/orders/{id}", tag = "orders", params(("id" = i64, Path)), security(("bearer" = [])),
    responses((status = 204), (status = 404, body = crate::problem::Problem)))]
async fn delete_order(
    caller: Authorized<auth::DeleteCustomers>,
    State(state): State<AppState>,
    Id(id): Id,
) -> Result<StatusCode, ApiError> {
    state.app.delete_order(&caller.actor, OrderId(id)).await?;
    Ok(StatusCode::NO_CONTENT)
}
