//! `/api/v1/orders`: orders with line items, in integer minor units with their currency.

use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use tenure_domain::Invalid;
use tenure_domain::catalog::{Order, OrderData, OrderLine, OrderStatus, SalesChannel, lines_total};
use tenure_domain::ids::{CustomerId, OrderId, ProductId};
use tenure_domain::validation::Collector;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::{ListResponse, decode_id_cursor, encode_cursor, limit};
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

/// Largest money amount accepted, in minor units (a trillion major units).
const AMOUNT_MAX: i64 = 100_000_000_000_000;

fn amount(v: i64) -> Result<i64, String> {
    if v.abs() > AMOUNT_MAX {
        Err("is out of range".into())
    } else {
        Ok(v)
    }
}

fn lines(c: &mut Collector, input: Vec<OrderLineDto>) -> Vec<OrderLine> {
    if input.len() > 500 {
        c.push("lines", "at most 500 lines");
        return Vec::new();
    }
    input
        .into_iter()
        .enumerate()
        .filter_map(|(i, l)| {
            let f = |name: &str| format!("lines[{i}].{name}");
            let description = c.check(
                &f("description"),
                tenure_domain::validation::text(&l.description, 500, false),
            )?;
            if !(1..=1_000_000).contains(&l.quantity) {
                c.push(&f("quantity"), "must be between 1 and 1000000");
                return None;
            }
            let unit = c.check(&f("unit_price_minor"), amount(l.unit_price_minor))?;
            let total = match l.total_minor {
                Some(t) => c.check(&f("total_minor"), amount(t))?,
                None => c.check(
                    &f("total_minor"),
                    unit.checked_mul(l.quantity)
                        .ok_or_else(|| "overflows".to_owned())
                        .and_then(amount),
                )?,
            };
            if let Some(p) = l.product_id
                && p <= 0
            {
                c.push(&f("product_id"), "must be a positive id");
                return None;
            }
            Some(OrderLine {
                product_id: l.product_id.map(ProductId),
                description,
                quantity: l.quantity,
                unit_price_minor: unit,
                total_minor: total,
            })
        })
        .collect()
}

fn not_future(c: &mut Collector, at: DateTime<Utc>) {
    if at > Utc::now() + chrono::Duration::days(1) {
        c.push("occurred_at", "must not be in the future");
    }
}

impl CreateOrder {
    fn validate(self, reporting_currency: &str) -> Result<OrderData, Invalid> {
        let mut c = Collector::new();
        if self.customer_id <= 0 {
            c.push("customer_id", "must be a positive id");
        }
        let external_id = c.check_opt("external_id", self.external_id, |s| {
            tenure_domain::validation::external_id(&s)
        });
        not_future(&mut c, self.occurred_at);
        let currency = match self.currency {
            Some(cur) => c.check("currency", tenure_domain::money::parse_currency(&cur)),
            None => Some(reporting_currency.to_owned()),
        };
        let lines = lines(&mut c, self.lines);
        let total = match self.total_minor {
            Some(t) => c.check("total_minor", amount(t)),
            None => c.check(
                "total_minor",
                lines_total(&lines).ok_or_else(|| "overflows".to_owned()),
            ),
        };
        c.finish()?;
        Ok(OrderData {
            external_id,
            customer_id: CustomerId(self.customer_id),
            occurred_at: self.occurred_at,
            currency: currency.unwrap_or_default(),
            total_minor: total.unwrap_or_default(),
            channel: self.channel.unwrap_or(SalesChannel::Other),
            status: self.status.unwrap_or(OrderStatus::Completed),
            lines,
        })
    }
}

impl UpdateOrder {
    fn apply(self, d: &mut OrderData) -> Result<(), Invalid> {
        let mut c = Collector::new();
        if let Some(id) = self.customer_id {
            if id <= 0 {
                c.push("customer_id", "must be a positive id");
            }
            d.customer_id = CustomerId(id);
        }
        if let Some(at) = self.occurred_at {
            not_future(&mut c, at);
            d.occurred_at = at;
        }
        if let Some(cur) = self.currency
            && let Some(cur) = c.check("currency", tenure_domain::money::parse_currency(&cur))
        {
            d.currency = cur;
        }
        if let Some(ch) = self.channel {
            d.channel = ch;
        }
        if let Some(s) = self.status {
            d.status = s;
        }
        let lines_changed = self.lines.is_some();
        if let Some(l) = self.lines {
            d.lines = lines(&mut c, l);
        }
        match self.total_minor {
            Some(t) => {
                if let Some(t) = c.check("total_minor", amount(t)) {
                    d.total_minor = t;
                }
            }
            None if lines_changed => {
                if let Some(t) = c.check(
                    "total_minor",
                    lines_total(&d.lines).ok_or_else(|| "overflows".to_owned()),
                ) {
                    d.total_minor = t;
                }
            }
            None => {}
        }
        c.finish()
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
    _caller: Authorized<auth::ReadAggregates>,
    State(state): State<AppState>,
    Query(p): Query<OrderListParams>,
) -> Result<axum::Json<ListResponse<OrderDto>>, ApiError> {
    let after = decode_id_cursor(p.cursor.as_deref())?.map(OrderId);
    let page = state
        .store
        .list_orders(p.customer_id.map(CustomerId), after, limit(p.limit)?)
        .await?;
    Ok(axum::Json(ListResponse {
        items: page.items.into_iter().map(OrderDto::from).collect(),
        next_cursor: page.next.map(|id| encode_cursor(&id.0.to_string())),
    }))
}

/// Record an order; the customer's aggregates update in the same transaction.
#[utoipa::path(post, path = "/api/v1/orders", tag = "orders", request_body = CreateOrder, security(("bearer" = [])),
    responses((status = 201, body = OrderDto), (status = 409, body = crate::problem::Problem),
              (status = 422, body = crate::problem::Problem)))]
async fn create_order(
    _caller: Authorized<auth::WriteCustomers>,
    State(state): State<AppState>,
    Json(body): Json<CreateOrder>,
) -> Result<impl IntoResponse, ApiError> {
    let data = body.validate(state.store.reporting_currency())?;
    let order = state.store.create_order(&data).await?;
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
    _caller: Authorized<auth::ReadAggregates>,
    State(state): State<AppState>,
    Id(id): Id,
) -> Result<axum::Json<OrderDto>, ApiError> {
    Ok(axum::Json(OrderDto::from(
        state.store.get_order(OrderId(id)).await?,
    )))
}

/// Change an order (status, time, amounts, lines); aggregates follow.
#[utoipa::path(patch, path = "/api/v1/orders/{id}", tag = "orders", params(("id" = i64, Path)),
    request_body = UpdateOrder, security(("bearer" = [])),
    responses((status = 200, body = OrderDto), (status = 404, body = crate::problem::Problem),
              (status = 422, body = crate::problem::Problem)))]
async fn update_order(
    _caller: Authorized<auth::WriteCustomers>,
    State(state): State<AppState>,
    Id(id): Id,
    Json(body): Json<UpdateOrder>,
) -> Result<axum::Json<OrderDto>, ApiError> {
    let order = state
        .store
        .update_order(OrderId(id), |d| body.apply(d))
        .await?;
    Ok(axum::Json(OrderDto::from(order)))
}

#[utoipa::path(delete, path = "/api/v1/orders/{id}", tag = "orders", params(("id" = i64, Path)), security(("bearer" = [])),
    responses((status = 204), (status = 404, body = crate::problem::Problem)))]
async fn delete_order(
    _caller: Authorized<auth::DeleteCustomers>,
    State(state): State<AppState>,
    Id(id): Id,
) -> Result<StatusCode, ApiError> {
    state.store.delete_order(OrderId(id)).await?;
    Ok(StatusCode::NO_CONTENT)
}
