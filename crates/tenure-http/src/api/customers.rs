//! `/api/v1/customers`: create, read, update, delete, list and search, and the timeline.

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::IntoResponse;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use tenure_app::model::{CustomerFilter, TimelineEntry};
use tenure_domain::customer::{
    self as dc, Consent, ConsentChannel, ConsentStatus, ContactPoint, Customer, CustomerKind,
};
use tenure_domain::ids::{AccountId, CustomerId, StaffUserId};
use tenure_domain::prediction::Prediction;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::{ListResponse, PageParams, double_option, page};
use crate::api::interactions::InteractionDto;
use crate::api::orders::OrderDto;
use crate::auth::{self, Authorized};
use crate::extract::{Id, Json, Query};
use crate::{ApiError, AppState};

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_customers, create_customer))
        .routes(routes!(at_risk_customers))
        .routes(routes!(get_customer, update_customer, delete_customer))
        .routes(routes!(customer_timeline))
}

/// A customer as the API shows it.
#[derive(Serialize, utoipa::ToSchema)]
pub struct CustomerDto {
    pub id: i64,
    pub external_id: Option<String>,
    pub kind: CustomerKind,
    pub name: String,
    pub email: Option<String>,
    pub phone: Option<String>,
    /// `YYYY-MM-DD`.
    pub birthday: Option<String>,
    pub locale: Option<String>,
    pub region: Option<String>,
    pub acquisition_source: Option<String>,
    pub acquisition_channel: Option<String>,
    pub account_id: Option<i64>,
    pub owner_id: Option<i64>,
    pub tags: Vec<String>,
    pub contact_points: Vec<ContactPoint>,
    #[schema(value_type = Object)]
    pub preferences: serde_json::Map<String, serde_json::Value>,
    #[schema(value_type = Object)]
    pub custom_fields: serde_json::Map<String, serde_json::Value>,
    pub consents: Vec<Consent>,
    pub stats: StatsDto,
    /// What the customer-base models predict (`tenure analytics clv`); absent until they
    /// have run, and on lists.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub predictions: Option<PredictionDto>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    /// Increases on every change; send it back in `If-Match` to update only what you read.
    pub version: i64,
}

/// The models' view of a customer, as of `computed_at`.
#[derive(Serialize, utoipa::ToSchema)]
pub struct PredictionDto {
    /// Probability that the customer is still buying (BG/NBD, or Pareto/NBD when that is
    /// the model `tenure analytics clv` fitted).
    pub p_alive: f64,
    /// 1 − p_alive.
    pub churn_risk: f64,
    /// Purchases expected over the horizon.
    pub expected_purchases: f64,
    /// Expected value of a purchase, in the reporting currency (Gamma-Gamma).
    pub expected_value: f64,
    /// Discounted customer lifetime value over the horizon, in the reporting currency.
    pub clv: f64,
    /// churn_risk × clv: what the at-risk list ranks by.
    pub value_at_risk: f64,
    pub horizon_days: i64,
    pub computed_at: DateTime<Utc>,
}

impl From<Prediction> for PredictionDto {
    fn from(p: Prediction) -> Self {
        PredictionDto {
            p_alive: p.p_alive,
            churn_risk: p.churn_risk(),
            expected_purchases: p.expected_purchases,
            expected_value: p.expected_value,
            clv: p.clv,
            value_at_risk: p.value_at_risk(),
            horizon_days: p.horizon_days,
            computed_at: p.computed_at,
        }
    }
}

/// Aggregates kept current on every order and interaction write.
#[derive(Serialize, utoipa::ToSchema)]
pub struct StatsDto {
    pub first_purchase_at: Option<DateTime<Utc>>,
    pub last_purchase_at: Option<DateTime<Utc>>,
    pub orders_count: i64,
    pub purchase_days: i64,
    /// In minor units of the reporting currency.
    pub total_spend_minor: i64,
    /// Spend on purchase days after the first one, in minor units.
    pub repeat_spend_minor: i64,
    pub interactions_count: i64,
    pub last_contact_at: Option<DateTime<Utc>>,
}

impl From<Customer> for CustomerDto {
    /// The customer as the application gave it, already projected for the caller's role.
    fn from(c: Customer) -> Self {
        let d = c.data;
        let s = c.stats;
        CustomerDto {
            id: c.id.0,
            external_id: d.external_id,
            kind: d.kind,
            name: d.name,
            email: d.email,
            phone: d.phone,
            birthday: d.birthday.map(|b| b.format("%Y-%m-%d").to_string()),
            locale: d.locale,
            region: d.region,
            acquisition_source: d.acquisition_source,
            acquisition_channel: d.acquisition_channel,
            account_id: d.account_id.map(|a| a.0),
            owner_id: d.owner_id.map(|o| o.0),
            tags: d.tags,
            contact_points: d.contact_points,
            preferences: d.preferences,
            custom_fields: d.custom_fields,
            consents: c.consents,
            stats: StatsDto {
                first_purchase_at: s.first_purchase_at,
                last_purchase_at: s.last_purchase_at,
                orders_count: s.orders_count,
                purchase_days: s.purchase_days,
                total_spend_minor: s.total_spend_minor,
                repeat_spend_minor: s.repeat_spend_minor,
                interactions_count: s.interactions_count,
                last_contact_at: s.last_contact_at,
            },
            predictions: None,
            created_at: c.created_at,
            updated_at: c.updated_at,
            version: c.version,
        }
    }
}

/// A change of consent on one channel.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ConsentInput {
    pub channel: ConsentChannel,
    pub status: ConsentStatus,
    /// Where the consent came from ("web form", "phone call", ...).
    pub source: String,
    /// When it was given; now when left out.
    pub at: Option<DateTime<Utc>>,
}

/// The body of `POST /api/v1/customers`. Only `name` is required.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateCustomer {
    pub name: String,
    pub kind: Option<CustomerKind>,
    pub external_id: Option<String>,
    pub email: Option<String>,
    pub phone: Option<String>,
    /// `YYYY-MM-DD`.
    pub birthday: Option<String>,
    pub locale: Option<String>,
    pub region: Option<String>,
    pub acquisition_source: Option<String>,
    pub acquisition_channel: Option<String>,
    pub account_id: Option<i64>,
    pub owner_id: Option<i64>,
    #[serde(default)]
    pub tags: Vec<String>,
    #[serde(default)]
    pub contact_points: Vec<ContactPoint>,
    #[schema(value_type = Option<Object>)]
    pub preferences: Option<serde_json::Value>,
    #[schema(value_type = Option<Object>)]
    pub custom_fields: Option<serde_json::Value>,
    #[serde(default)]
    pub consents: Vec<ConsentInput>,
}

/// The body of `PATCH /api/v1/customers/{id}`: fields left out stay; `null` clears.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateCustomer {
    pub name: Option<String>,
    pub kind: Option<CustomerKind>,
    #[serde(default, deserialize_with = "double_option")]
    #[schema(value_type = Option<String>)]
    pub external_id: Option<Option<String>>,
    #[serde(default, deserialize_with = "double_option")]
    #[schema(value_type = Option<String>)]
    pub email: Option<Option<String>>,
    #[serde(default, deserialize_with = "double_option")]
    #[schema(value_type = Option<String>)]
    pub phone: Option<Option<String>>,
    #[serde(default, deserialize_with = "double_option")]
    #[schema(value_type = Option<String>)]
    pub birthday: Option<Option<String>>,
    #[serde(default, deserialize_with = "double_option")]
    #[schema(value_type = Option<String>)]
    pub locale: Option<Option<String>>,
    #[serde(default, deserialize_with = "double_option")]
    #[schema(value_type = Option<String>)]
    pub region: Option<Option<String>>,
    #[serde(default, deserialize_with = "double_option")]
    #[schema(value_type = Option<String>)]
    pub acquisition_source: Option<Option<String>>,
    #[serde(default, deserialize_with = "double_option")]
    #[schema(value_type = Option<String>)]
    pub acquisition_channel: Option<Option<String>>,
    #[serde(default, deserialize_with = "double_option")]
    #[schema(value_type = Option<i64>)]
    pub account_id: Option<Option<i64>>,
    #[serde(default, deserialize_with = "double_option")]
    #[schema(value_type = Option<i64>)]
    pub owner_id: Option<Option<i64>>,
    pub tags: Option<Vec<String>>,
    pub contact_points: Option<Vec<ContactPoint>>,
    #[schema(value_type = Option<Object>)]
    pub preferences: Option<serde_json::Value>,
    #[schema(value_type = Option<Object>)]
    pub custom_fields: Option<serde_json::Value>,
    #[serde(default)]
    pub consents: Vec<ConsentInput>,
}

fn consents(input: Vec<ConsentInput>) -> Vec<dc::ConsentInput> {
    input
        .into_iter()
        .map(|x| dc::ConsentInput {
            channel: x.channel,
            status: x.status,
            source: x.source,
            at: x.at,
        })
        .collect()
}

impl CreateCustomer {
    fn input(&self) -> dc::CustomerInput<'_> {
        dc::CustomerInput {
            profile: dc::ProfileInput {
                name: &self.name,
                kind: self.kind,
                external_id: self.external_id.as_deref(),
                email: self.email.as_deref(),
                phone: self.phone.as_deref(),
                birthday: self.birthday.as_deref(),
                locale: self.locale.as_deref(),
                region: self.region.as_deref(),
                acquisition_source: self.acquisition_source.as_deref(),
                acquisition_channel: self.acquisition_channel.as_deref(),
                tags: self.tags.clone(),
            },
            account_id: self.account_id,
            owner_id: self.owner_id,
            contact_points: self.contact_points.clone(),
            preferences: self.preferences.clone(),
            custom_fields: self.custom_fields.clone(),
            consents: Vec::new(),
        }
    }
}

impl From<UpdateCustomer> for dc::CustomerPatchInput {
    fn from(u: UpdateCustomer) -> Self {
        dc::CustomerPatchInput {
            name: u.name,
            kind: u.kind,
            external_id: u.external_id,
            email: u.email,
            phone: u.phone,
            birthday: u.birthday,
            locale: u.locale,
            region: u.region,
            acquisition_source: u.acquisition_source,
            acquisition_channel: u.acquisition_channel,
            account_id: u.account_id,
            owner_id: u.owner_id,
            tags: u.tags,
            contact_points: u.contact_points,
            preferences: u.preferences,
            custom_fields: u.custom_fields,
            consents: consents(u.consents),
        }
    }
}

/// Filters of the customer list.
#[derive(Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct CustomerListParams {
    /// Search: partial names in any script, email, phone or external id.
    pub q: Option<String>,
    pub kind: Option<CustomerKind>,
    pub tag: Option<String>,
    pub account_id: Option<i64>,
    pub owner_id: Option<i64>,
    pub external_id: Option<String>,
    pub email: Option<String>,
    /// Customers whose predicted lifetime value (`predictions.clv`) is at least this.
    pub clv_min: Option<f64>,
    /// … at most this.
    pub clv_max: Option<f64>,
    /// Customers whose probability of still buying (`predictions.p_alive`) is at least this.
    pub p_alive_min: Option<f64>,
    /// … at most this (`p_alive_max=0.3`: likely lost).
    pub p_alive_max: Option<f64>,
    pub limit: Option<u32>,
    pub cursor: Option<String>,
}

/// List customers in id order, filtered; with `q`, search (best match first).
#[utoipa::path(get, path = "/api/v1/customers", tag = "customers", params(CustomerListParams),
    security(("bearer" = [])),
    responses((status = 200, body = ListResponse<CustomerDto>), (status = 400, body = crate::problem::Problem)))]
async fn list_customers(
    caller: Authorized<auth::ReadAggregates>,
    State(state): State<AppState>,
    Query(p): Query<CustomerListParams>,
) -> Result<axum::Json<ListResponse<CustomerDto>>, ApiError> {
    let filter = CustomerFilter {
        q: p.q,
        kind: p.kind,
        tag: p.tag,
        account_id: p.account_id.map(AccountId),
        owner_id: p.owner_id.map(StaffUserId),
        external_id: p.external_id,
        email: p.email.map(|e| dc::parse_email(&e).unwrap_or(e)),
        clv_min: p.clv_min,
        clv_max: p.clv_max,
        p_alive_min: p.p_alive_min,
        p_alive_max: p.p_alive_max,
        newest_first: false,
    };
    let found = state
        .app
        .list_customers(&caller.actor, filter, &page(p.limit, &p.cursor))
        .await?;
    Ok(axum::Json(ListResponse::of(found, CustomerDto::from)))
}

/// The ranked at-risk list: customers by churn risk times CLV, highest first — the
/// valuable customers whose staying is in doubt (those sure to stay and those surely gone
/// both rank low). Each carries its `predictions`.
#[utoipa::path(get, path = "/api/v1/customers/at-risk", tag = "customers", params(PageParams),
    security(("bearer" = [])),
    responses((status = 200, body = ListResponse<CustomerDto>), (status = 400, body = crate::problem::Problem)))]
async fn at_risk_customers(
    caller: Authorized<auth::ReadAggregates>,
    State(state): State<AppState>,
    Query(p): Query<PageParams>,
) -> Result<axum::Json<ListResponse<CustomerDto>>, ApiError> {
    let found = state.app.at_risk(&caller.actor, &p.page()).await?;
    Ok(axum::Json(ListResponse::of(found, |(c, prediction)| {
        let mut dto = CustomerDto::from(c);
        dto.predictions = Some(PredictionDto::from(prediction));
        dto
    })))
}

/// Create a customer.
#[utoipa::path(post, path = "/api/v1/customers", tag = "customers", request_body = CreateCustomer,
    security(("bearer" = [])),
    responses((status = 201, body = CustomerDto), (status = 409, body = crate::problem::Problem),
              (status = 422, body = crate::problem::Problem)))]
async fn create_customer(
    caller: Authorized<auth::WriteCustomers>,
    State(state): State<AppState>,
    Json(mut body): Json<CreateCustomer>,
) -> Result<impl IntoResponse, ApiError> {
    let given = consents(std::mem::take(&mut body.consents));
    let mut input = body.input();
    input.consents = given;
    let customer = state.app.create_customer(&caller.actor, input).await?;
    let location = format!("/api/v1/customers/{}", customer.id);
    Ok((
        StatusCode::CREATED,
        [(header::LOCATION, location)],
        axum::Json(CustomerDto::from(customer)),
    ))
}

/// Read a customer with their aggregates.
#[utoipa::path(get, path = "/api/v1/customers/{id}", tag = "customers", params(("id" = i64, Path)),
    security(("bearer" = [])),
    responses((status = 200, body = CustomerDto), (status = 404, body = crate::problem::Problem)))]
async fn get_customer(
    caller: Authorized<auth::ReadAggregates>,
    State(state): State<AppState>,
    Id(id): Id,
) -> Result<impl IntoResponse, ApiError> {
    let (customer, prediction) = state
        .app
        .get_customer(&caller.actor, CustomerId(id))
        .await?;
    let etag = format!("\"{}\"", customer.version);
    let mut dto = CustomerDto::from(customer);
    dto.predictions = prediction.map(PredictionDto::from);
    Ok(([(header::ETAG, etag)], axum::Json(dto)))
}

/// The version an `If-Match` header asks for, if any.
fn if_match(headers: &HeaderMap) -> Result<Option<i64>, ApiError> {
    headers
        .get(header::IF_MATCH)
        .map(|v| {
            v.to_str()
                .ok()
                .and_then(|s| {
                    s.trim()
                        .trim_start_matches("W/")
                        .trim_matches('"')
                        .parse()
                        .ok()
                })
                .ok_or_else(|| {
                    ApiError::field("If-Match", "must be the ETag of a customer, e.g. \"3\"")
                })
        })
        .transpose()
}

/// Update a customer; with `If-Match` only if unchanged since read.
#[utoipa::path(patch, path = "/api/v1/customers/{id}", tag = "customers", params(("id" = i64, Path)),
    request_body = UpdateCustomer, security(("bearer" = [])),
    responses((status = 200, body = CustomerDto), (status = 404, body = crate::problem::Problem),
              (status = 412, body = crate::problem::Problem), (status = 422, body = crate::problem::Problem)))]
async fn update_customer(
    caller: Authorized<auth::WriteCustomers>,
    State(state): State<AppState>,
    Id(id): Id,
    headers: HeaderMap,
    Json(body): Json<UpdateCustomer>,
) -> Result<impl IntoResponse, ApiError> {
    let expected = if_match(&headers)?;
    let customer = state
        .app
        .update_customer(&caller.actor, CustomerId(id), body.into(), expected)
        .await?;
    let etag = format!("\"{}\"", customer.version);
    Ok((
        [(header::ETAG, etag)],
        axum::Json(CustomerDto::from(customer)),
    ))
}

/// Delete a customer with their orders and interactions.
#[utoipa::path(delete, path = "/api/v1/customers/{id}", tag = "customers", params(("id" = i64, Path)),
    security(("bearer" = [])),
    responses((status = 204), (status = 404, body = crate::problem::Problem)))]
async fn delete_customer(
    caller: Authorized<auth::DeleteCustomers>,
    State(state): State<AppState>,
    Id(id): Id,
) -> Result<StatusCode, ApiError> {
    state
        .app
        .delete_customer(&caller.actor, CustomerId(id))
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// One entry of a customer's timeline.
#[derive(Serialize, utoipa::ToSchema)]
pub struct TimelineItemDto {
    /// `order`, `interaction`, `prediction` (the current CLV, P(alive) and churn risk,
    /// at the time the models computed them), `stage`, `loyalty` (a ledger entry), `tier`,
    /// `ticket`, `task`, `survey` (an answer) or `message` (a journey's message with its
    /// status: sent, queued, failed, or skipped and why).
    pub kind: String,
    pub occurred_at: DateTime<Utc>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub order: Option<OrderDto>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub interaction: Option<InteractionDto>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub prediction: Option<PredictionDto>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stage: Option<super::lifecycle::TransitionDto>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub loyalty: Option<super::loyalty::LedgerEntryDto>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tier: Option<super::loyalty::TierChangeDto>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ticket: Option<super::service::TicketDto>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub task: Option<super::service::TaskDto>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub survey: Option<super::service::ResponseDto>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message: Option<super::journeys::OutboxMessageDto>,
}

impl TimelineItemDto {
    fn with(mut self, f: impl FnOnce(&mut Self)) -> Self {
        f(&mut self);
        self
    }
    fn with_ticket(mut self, t: tenure_app::model::Ticket) -> Self {
        self.ticket = Some(super::service::TicketDto::plain(t));
        self
    }
    fn with_task(mut self, t: tenure_app::model::Task) -> Self {
        self.task = Some(t.into());
        self
    }
    fn with_survey(mut self, r: tenure_app::model::Response) -> Self {
        self.survey = Some(r.into());
        self
    }
}

/// Everything about a customer, newest first.
#[utoipa::path(get, path = "/api/v1/customers/{id}/timeline", tag = "customers",
    params(("id" = i64, Path), PageParams), security(("bearer" = [])),
    responses((status = 200, body = ListResponse<TimelineItemDto>), (status = 404, body = crate::problem::Problem)))]
async fn customer_timeline(
    caller: Authorized<auth::ReadCustomers>,
    State(state): State<AppState>,
    Id(id): Id,
    Query(p): Query<PageParams>,
) -> Result<axum::Json<ListResponse<TimelineItemDto>>, ApiError> {
    let found = state
        .app
        .timeline(&caller.actor, CustomerId(id), &p.page())
        .await?;
    let item = |kind: &str, occurred_at| TimelineItemDto {
        kind: kind.into(),
        occurred_at,
        order: None,
        interaction: None,
        prediction: None,
        stage: None,
        loyalty: None,
        tier: None,
        ticket: None,
        task: None,
        survey: None,
        message: None,
    };
    Ok(axum::Json(ListResponse::of(found, |e| match e {
        TimelineEntry::Order(o) => TimelineItemDto {
            ..item("order", o.data.occurred_at)
        }
        .with(|d| d.order = Some(OrderDto::from(o))),
        TimelineEntry::Interaction(i) => TimelineItemDto {
            ..item("interaction", i.data.occurred_at)
        }
        .with(|d| d.interaction = Some(InteractionDto::from(i))),
        TimelineEntry::Prediction(_, p) => TimelineItemDto {
            ..item("prediction", p.computed_at)
        }
        .with(|d| d.prediction = Some(PredictionDto::from(p))),
        TimelineEntry::Stage(t) => TimelineItemDto {
            ..item("stage", t.at)
        }
        .with(|d| d.stage = Some(t.into())),
        TimelineEntry::Loyalty(e) => TimelineItemDto {
            ..item("loyalty", e.at)
        }
        .with(|d| d.loyalty = Some(e.into())),
        TimelineEntry::Tier(t) => TimelineItemDto {
            ..item("tier", t.at)
        }
        .with(|d| d.tier = Some(t.into())),
        TimelineEntry::Ticket(t) => TimelineItemDto {
            ..item("ticket", t.opened_at)
        }
        .with_ticket(t),
        TimelineEntry::Task(t) => TimelineItemDto {
            ..item("task", t.created_at)
        }
        .with_task(t),
        TimelineEntry::Survey(r) => TimelineItemDto {
            ..item("survey", r.answered_at)
        }
        .with_survey(r),
        TimelineEntry::Message(m) => TimelineItemDto {
            ..item("message", m.created_at)
        }
        .with(|d| d.message = Some(m.into())),
    })))
}
