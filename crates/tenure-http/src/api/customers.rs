//! `/api/v1/customers`: create, read, update, delete, list and search, and the timeline.

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::IntoResponse;
use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use tenure_domain::access::{Role, mask};
use tenure_domain::customer::{
    self as dc, Consent, ConsentChange, ConsentChannel, ConsentStatus, ContactPoint, Customer,
    CustomerData, CustomerKind, CustomerPatch,
};
use tenure_domain::ids::{AccountId, CustomerId, StaffUserId};
use tenure_domain::timeline::TimelinePosition;
use tenure_domain::validation::Collector;
use tenure_store::customers::{CustomerFilter, SearchPosition};
use tenure_store::timeline::TimelineEntry;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::{
    ListResponse, PageParams, decode_cursor, decode_id_cursor, double_option, encode_cursor, limit,
};
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

impl From<tenure_store::analytics::Prediction> for PredictionDto {
    fn from(p: tenure_store::analytics::Prediction) -> Self {
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

impl CustomerDto {
    /// The DTO as `role` may see it: analysts get personal data masked.
    pub fn new(c: Customer, role: Role) -> Self {
        let masked = role.sees_masked_personal_data();
        let d = c.data;
        let s = c.stats;
        CustomerDto {
            id: c.id.0,
            external_id: d.external_id,
            kind: d.kind,
            name: if masked { mask::name(&d.name) } else { d.name },
            email: d.email.map(|e| if masked { mask::email(&e) } else { e }),
            phone: d.phone.map(|p| if masked { mask::phone(&p) } else { p }),
            birthday: if masked {
                None
            } else {
                d.birthday.map(|b| b.format("%Y-%m-%d").to_string())
            },
            locale: d.locale,
            region: d.region,
            acquisition_source: d.acquisition_source,
            acquisition_channel: d.acquisition_channel,
            account_id: d.account_id.map(|a| a.0),
            owner_id: d.owner_id.map(|o| o.0),
            tags: d.tags,
            contact_points: if masked { Vec::new() } else { d.contact_points },
            preferences: if masked {
                Default::default()
            } else {
                d.preferences
            },
            custom_fields: if masked {
                Default::default()
            } else {
                d.custom_fields
            },
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

fn today() -> NaiveDate {
    Utc::now().date_naive()
}

fn id_field(c: &mut Collector, field: &str, v: i64) -> Option<i64> {
    c.check(
        field,
        if v > 0 {
            Ok(v)
        } else {
            Err("must be a positive id".into())
        },
    )
}

fn consents(c: &mut Collector, input: Vec<ConsentInput>) -> Vec<ConsentChange> {
    let now = Utc::now();
    input
        .into_iter()
        .enumerate()
        .filter_map(|(i, x)| {
            let source = c.check(
                &format!("consents[{i}].source"),
                tenure_domain::validation::required_text(&x.source, 200),
            )?;
            let at = x.at.unwrap_or(now);
            if at > now + chrono::Duration::minutes(5) {
                c.push(&format!("consents[{i}].at"), "must not be in the future");
                return None;
            }
            Some(ConsentChange {
                channel: x.channel,
                status: x.status,
                source,
                at,
            })
        })
        .collect()
}

impl CreateCustomer {
    fn validate(self) -> Result<(CustomerData, Vec<ConsentChange>), ApiError> {
        let mut c = Collector::new();
        let mut data = dc::ProfileInput {
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
            tags: self.tags,
        }
        .parse(&mut c, today());
        data.account_id = self
            .account_id
            .and_then(|v| id_field(&mut c, "account_id", v))
            .map(AccountId);
        data.owner_id = self
            .owner_id
            .and_then(|v| id_field(&mut c, "owner_id", v))
            .map(StaffUserId);
        data.contact_points = c
            .check(
                "contact_points",
                dc::parse_contact_points(self.contact_points),
            )
            .unwrap_or_default();
        data.preferences = c
            .check_opt("preferences", self.preferences, |v| {
                tenure_domain::validation::json_object(v, 64)
            })
            .unwrap_or_default();
        data.custom_fields = c
            .check_opt("custom_fields", self.custom_fields, |v| {
                tenure_domain::validation::json_object(v, 64)
            })
            .unwrap_or_default();
        let consents = consents(&mut c, self.consents);
        c.finish()?;
        Ok((data, consents))
    }
}

/// Validates an optional-and-clearable field: `Some(None)` clears, `Some(Some(v))` sets.
fn clearable<T>(
    c: &mut Collector,
    field: &str,
    v: Option<Option<String>>,
    parse: impl FnOnce(String) -> Result<T, String>,
) -> Option<Option<T>> {
    match v {
        None => None,
        Some(None) => Some(None),
        Some(Some(s)) => c.check(field, parse(s)).map(Some),
    }
}

impl UpdateCustomer {
    fn validate(self) -> Result<CustomerPatch, ApiError> {
        let mut c = Collector::new();
        let text = |max: usize| move |s: String| tenure_domain::validation::text(&s, max, false);
        let patch = CustomerPatch {
            name: c.check_opt("name", self.name, |s| dc::parse_name(&s)),
            kind: self.kind,
            external_id: clearable(&mut c, "external_id", self.external_id, |s| {
                tenure_domain::validation::external_id(&s)
            }),
            email: clearable(&mut c, "email", self.email, |s| dc::parse_email(&s)),
            phone: clearable(&mut c, "phone", self.phone, |s| dc::parse_phone(&s)),
            birthday: clearable(&mut c, "birthday", self.birthday, |s| {
                dc::parse_birthday(&s, today())
            }),
            locale: clearable(&mut c, "locale", self.locale, |s| dc::parse_locale(&s)),
            region: clearable(&mut c, "region", self.region, text(100)),
            acquisition_source: clearable(
                &mut c,
                "acquisition_source",
                self.acquisition_source,
                text(100),
            ),
            acquisition_channel: clearable(
                &mut c,
                "acquisition_channel",
                self.acquisition_channel,
                text(100),
            ),
            account_id: match self.account_id {
                None => None,
                Some(None) => Some(None),
                Some(Some(v)) => id_field(&mut c, "account_id", v).map(|v| Some(AccountId(v))),
            },
            owner_id: match self.owner_id {
                None => None,
                Some(None) => Some(None),
                Some(Some(v)) => id_field(&mut c, "owner_id", v).map(|v| Some(StaffUserId(v))),
            },
            tags: c.check_opt("tags", self.tags, dc::parse_tags),
            contact_points: c.check_opt(
                "contact_points",
                self.contact_points,
                dc::parse_contact_points,
            ),
            preferences: c.check_opt("preferences", self.preferences, |v| {
                tenure_domain::validation::json_object(v, 64)
            }),
            custom_fields: c.check_opt("custom_fields", self.custom_fields, |v| {
                tenure_domain::validation::json_object(v, 64)
            }),
            consents: consents(&mut c, self.consents),
        };
        c.finish()?;
        Ok(patch)
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
    let role = caller.principal.role;
    let personal = p.q.is_some() || p.email.is_some() || p.external_id.is_some();
    if personal && role.sees_masked_personal_data() {
        return Err(ApiError::Forbidden(format!(
            "the {role} role may not search by personal data"
        )));
    }
    if p.q.as_ref().is_some_and(|q| q.chars().count() > 200) {
        return Err(ApiError::field("q", "must be at most 200 characters"));
    }
    for (name, v) in [("clv_min", p.clv_min), ("clv_max", p.clv_max)] {
        if v.is_some_and(|v| !v.is_finite()) {
            return Err(ApiError::field(name, "must be a finite number"));
        }
    }
    for (name, v) in [
        ("p_alive_min", p.p_alive_min),
        ("p_alive_max", p.p_alive_max),
    ] {
        if v.is_some_and(|v| !(0.0..=1.0).contains(&v)) {
            return Err(ApiError::field(
                name,
                "must be a probability between 0 and 1",
            ));
        }
    }
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
    };
    let limit = limit(p.limit)?;
    let (items, next_cursor) = if filter.q.is_some() {
        let after = p.cursor.as_deref().map(decode_search_cursor).transpose()?;
        let page = state.store.search_customers(&filter, after, limit).await?;
        (
            page.items,
            page.next
                .map(|p| encode_cursor(&format!("{}.{}", p.id, p.term))),
        )
    } else {
        let after = decode_id_cursor(p.cursor.as_deref())?.map(CustomerId);
        let page = state.store.list_customers(&filter, after, limit).await?;
        (
            page.items,
            page.next.map(|id| encode_cursor(&id.0.to_string())),
        )
    };
    Ok(axum::Json(ListResponse {
        items: items
            .into_iter()
            .map(|c| CustomerDto::new(c, role))
            .collect(),
        next_cursor,
    }))
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
    let after = p
        .cursor
        .as_deref()
        .map(|c| {
            decode_cursor(c)?
                .rsplit_once('_')
                .and_then(|(v, id)| {
                    Some((
                        v.parse::<f64>().ok().filter(|v| v.is_finite())?,
                        CustomerId(id.parse().ok()?),
                    ))
                })
                .ok_or_else(|| ApiError::field("cursor", "not a cursor returned by this API"))
        })
        .transpose()?;
    let page = state.store.at_risk(after, limit(p.limit)?).await?;
    let role = caller.principal.role;
    Ok(axum::Json(ListResponse {
        items: page
            .items
            .into_iter()
            .map(|(c, prediction)| {
                let mut dto = CustomerDto::new(c, role);
                dto.predictions = Some(PredictionDto::from(prediction));
                dto
            })
            .collect(),
        next_cursor: page
            .next
            .map(|(v, id)| encode_cursor(&format!("{v}_{}", id.0))),
    }))
}

/// A search cursor: `<id>.<term>`.
fn decode_search_cursor(cursor: &str) -> Result<SearchPosition, ApiError> {
    decode_cursor(cursor)?
        .split_once('.')
        .and_then(|(id, term)| {
            Some(SearchPosition {
                id: CustomerId(id.parse().ok()?),
                term: term.to_owned(),
            })
        })
        .ok_or_else(|| ApiError::field("cursor", "not a cursor returned by this API"))
}

/// Create a customer.
#[utoipa::path(post, path = "/api/v1/customers", tag = "customers", request_body = CreateCustomer,
    security(("bearer" = [])),
    responses((status = 201, body = CustomerDto), (status = 409, body = crate::problem::Problem),
              (status = 422, body = crate::problem::Problem)))]
async fn create_customer(
    caller: Authorized<auth::WriteCustomers>,
    State(state): State<AppState>,
    Json(body): Json<CreateCustomer>,
) -> Result<impl IntoResponse, ApiError> {
    let (data, consents) = body.validate()?;
    let customer = state.store.create_customer(&data, &consents).await?;
    let location = format!("/api/v1/customers/{}", customer.id);
    Ok((
        StatusCode::CREATED,
        [(header::LOCATION, location)],
        axum::Json(CustomerDto::new(customer, caller.principal.role)),
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
    let customer = state.store.get_customer(CustomerId(id)).await?;
    let etag = format!("\"{}\"", customer.version);
    let mut dto = CustomerDto::new(customer, caller.principal.role);
    dto.predictions = state
        .store
        .prediction(CustomerId(id))
        .await?
        .map(PredictionDto::from);
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
    let patch = body.validate()?;
    let customer = state
        .store
        .update_customer(CustomerId(id), &patch, expected)
        .await?;
    let etag = format!("\"{}\"", customer.version);
    Ok((
        [(header::ETAG, etag)],
        axum::Json(CustomerDto::new(customer, caller.principal.role)),
    ))
}

/// Delete a customer with their orders and interactions.
#[utoipa::path(delete, path = "/api/v1/customers/{id}", tag = "customers", params(("id" = i64, Path)),
    security(("bearer" = [])),
    responses((status = 204), (status = 404, body = crate::problem::Problem)))]
async fn delete_customer(
    _caller: Authorized<auth::DeleteCustomers>,
    State(state): State<AppState>,
    Id(id): Id,
) -> Result<StatusCode, ApiError> {
    state.store.delete_customer(CustomerId(id)).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// One entry of a customer's timeline.
#[derive(Serialize, utoipa::ToSchema)]
pub struct TimelineItemDto {
    /// `order`, `interaction` or `prediction` (the current CLV, P(alive) and churn risk,
    /// at the time the models computed them).
    pub kind: String,
    pub occurred_at: DateTime<Utc>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub order: Option<OrderDto>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub interaction: Option<InteractionDto>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub prediction: Option<PredictionDto>,
}

/// Everything about a customer, newest first.
#[utoipa::path(get, path = "/api/v1/customers/{id}/timeline", tag = "customers",
    params(("id" = i64, Path), PageParams), security(("bearer" = [])),
    responses((status = 200, body = ListResponse<TimelineItemDto>), (status = 404, body = crate::problem::Problem)))]
async fn customer_timeline(
    _caller: Authorized<auth::ReadCustomers>,
    State(state): State<AppState>,
    Id(id): Id,
    Query(p): Query<PageParams>,
) -> Result<axum::Json<ListResponse<TimelineItemDto>>, ApiError> {
    let before = p
        .cursor
        .as_deref()
        .map(|c| {
            TimelinePosition::decode(&decode_cursor(c)?)
                .ok_or_else(|| ApiError::field("cursor", "not a cursor returned by this API"))
        })
        .transpose()?;
    let page = state
        .store
        .timeline(CustomerId(id), before, limit(p.limit)?)
        .await?;
    let items = page
        .items
        .into_iter()
        .map(|e| match e {
            TimelineEntry::Order(o) => TimelineItemDto {
                kind: "order".into(),
                occurred_at: o.data.occurred_at,
                order: Some(OrderDto::from(o)),
                interaction: None,
                prediction: None,
            },
            TimelineEntry::Interaction(i) => TimelineItemDto {
                kind: "interaction".into(),
                occurred_at: i.data.occurred_at,
                order: None,
                interaction: Some(InteractionDto::from(i)),
                prediction: None,
            },
            TimelineEntry::Prediction(_, p) => TimelineItemDto {
                kind: "prediction".into(),
                occurred_at: p.computed_at,
                order: None,
                interaction: None,
                prediction: Some(PredictionDto::from(p)),
            },
        })
        .collect();
    Ok(axum::Json(ListResponse {
        items,
        next_cursor: page.next.map(|p| encode_cursor(&p.encode())),
    }))
}
