//! `/api/v1/audit` and a customer's privacy requests: `GET /api/v1/customers/{id}/export`
//! (everything held about them) and `POST /api/v1/customers/{id}/erase`.

use axum::extract::State;
use axum::http::StatusCode;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use tenure_app::model::{ChangeFilter, ChangeRecord};
use tenure_app::privacy::CustomerExport;
use tenure_domain::changes::{ActorKind, Entity, Operation, Source};
use tenure_domain::ids::CustomerId;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::{ListResponse, page};
use crate::auth::{self, Authorized};
use crate::extract::{Id, Json, Query};
use crate::{ApiError, AppState};

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(audit_log))
        .routes(routes!(export_customer))
        .routes(routes!(erase_customer))
        .routes(routes!(get_privacy_settings, put_privacy_settings))
}

/// How long personal data of inactive customers is kept.
#[derive(Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PrivacySettingsDto {
    /// Customers with no purchase, contact or change for this many days (30–36500) are
    /// anonymised by the daily retention job, as an erase request would; `null` keeps them.
    #[schema(minimum = 30, maximum = 36500)]
    pub retention_days: Option<u32>,
    /// Agents see and change only the customers they own (`owner_id`); agents' API tokens
    /// are refused customer records while this holds. Off when left out.
    #[serde(default)]
    pub agents_own_customers: bool,
}

impl From<tenure_app::privacy::PrivacySettings> for PrivacySettingsDto {
    fn from(s: tenure_app::privacy::PrivacySettings) -> Self {
        PrivacySettingsDto {
            retention_days: s.retention_days,
            agents_own_customers: s.agents_own_customers,
        }
    }
}

#[utoipa::path(get, path = "/api/v1/settings/privacy", tag = "audit", security(("bearer" = [])),
    responses((status = 200, body = PrivacySettingsDto), (status = 403, body = crate::problem::Problem)))]
async fn get_privacy_settings(
    caller: Authorized<auth::Privacy>,
    State(state): State<AppState>,
) -> Result<axum::Json<PrivacySettingsDto>, ApiError> {
    let s = state.app.privacy_settings(&caller.actor).await?;
    Ok(axum::Json(s.into()))
}

/// Set the retention period (the daily `retention` job applies it; queue it with
/// `POST /api/v1/jobs` to apply it now) and whether agents see only their own customers.
#[utoipa::path(put, path = "/api/v1/settings/privacy", tag = "audit", request_body = PrivacySettingsDto,
    security(("bearer" = [])),
    responses((status = 200, body = PrivacySettingsDto), (status = 403, body = crate::problem::Problem),
              (status = 422, body = crate::problem::Problem)))]
async fn put_privacy_settings(
    caller: Authorized<auth::Privacy>,
    State(state): State<AppState>,
    Json(body): Json<PrivacySettingsDto>,
) -> Result<axum::Json<PrivacySettingsDto>, ApiError> {
    let s = state
        .app
        .set_privacy_settings(
            &caller.actor,
            tenure_app::privacy::PrivacySettings {
                retention_days: body.retention_days,
                agents_own_customers: body.agents_own_customers,
            },
        )
        .await?;
    Ok(axum::Json(s.into()))
}

/// Who made a change.
#[derive(Serialize, utoipa::ToSchema)]
pub struct AuditActorDto {
    pub kind: ActorKind,
    /// The token's id, for a change made with an API token.
    pub id: Option<i64>,
    /// The user's or token's name; `cli:NAME` at the command line, `system:worker` for
    /// scheduled work.
    pub name: String,
}

/// One entry of the audit log.
#[derive(Serialize, utoipa::ToSchema)]
pub struct AuditEntryDto {
    pub id: i64,
    pub at: DateTime<Utc>,
    pub actor: AuditActorDto,
    /// The interface the change came through.
    pub source: Source,
    pub entity: Entity,
    pub entity_id: Option<i64>,
    pub operation: Operation,
    pub customer_id: Option<i64>,
    /// Counts, for changes to many rows at once.
    #[schema(value_type = Option<Object>)]
    pub detail: Option<serde_json::Value>,
    /// Each field the change set: `{"before": .., "after": ..}` (`before` left out when the
    /// record was last written before values were kept; cleared when the customer was
    /// erased or deleted).
    #[schema(value_type = Option<Object>)]
    pub fields: Option<serde_json::Value>,
}

impl From<ChangeRecord> for AuditEntryDto {
    fn from(r: ChangeRecord) -> Self {
        let name = match r.actor_kind {
            ActorKind::Token | ActorKind::User => r.actor_name,
            kind => format!("{kind}:{}", r.actor_name),
        };
        AuditEntryDto {
            id: r.id,
            at: r.at,
            actor: AuditActorDto {
                kind: r.actor_kind,
                id: r.actor_id,
                name,
            },
            source: r.source,
            entity: r.change.entity,
            entity_id: r.change.entity_id,
            operation: r.change.operation,
            customer_id: r.change.customer_id.map(|c| c.0),
            detail: r.change.detail.and_then(|d| serde_json::from_str(&d).ok()),
            fields: r.fields,
        }
    }
}

#[derive(Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct AuditParams {
    /// Changes concerning this customer (their profile, orders, tickets, points, ...).
    pub customer_id: Option<i64>,
    /// Changes made by this user or token (its name).
    pub user: Option<String>,
    /// From this time on.
    pub since: Option<DateTime<Utc>>,
    /// Before this time.
    pub until: Option<DateTime<Utc>>,
    /// Changes to this kind of record.
    pub entity: Option<Entity>,
    pub limit: Option<u32>,
    pub cursor: Option<String>,
}

/// Who changed what, when, through which interface, with the values before and after;
/// newest first. Append-only: nothing in the API changes or removes an entry.
#[utoipa::path(get, path = "/api/v1/audit", tag = "audit", params(AuditParams), security(("bearer" = [])),
    responses((status = 200, body = ListResponse<AuditEntryDto>), (status = 403, body = crate::problem::Problem)))]
async fn audit_log(
    caller: Authorized<auth::ReadAudit>,
    State(state): State<AppState>,
    Query(p): Query<AuditParams>,
) -> Result<axum::Json<ListResponse<AuditEntryDto>>, ApiError> {
    let filter = ChangeFilter {
        customer_id: p.customer_id.map(CustomerId),
        actor: p.user.filter(|u| !u.is_empty()),
        since: p.since,
        until: p.until,
        entity: p.entity,
        newest_first: true,
    };
    let found = state
        .app
        .audit_log(&caller.actor, &filter, &page(p.limit, &p.cursor))
        .await?;
    Ok(axum::Json(ListResponse::of(found, AuditEntryDto::from)))
}

/// Everything held about a customer.
#[derive(Serialize, utoipa::ToSchema)]
pub struct CustomerExportDto {
    pub customer_id: i64,
    pub exported_at: DateTime<Utc>,
    /// Every table holding rows of the customer (their profile, orders and lines,
    /// interactions, consents, points, tickets, survey answers, messages, merge records,
    /// the audit log's entries about them), with those rows as objects of their columns.
    pub tables: Vec<ExportedTableDto>,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct ExportedTableDto {
    pub table: String,
    #[schema(value_type = Vec<Object>)]
    pub rows: Vec<serde_json::Map<String, serde_json::Value>>,
}

impl From<CustomerExport> for CustomerExportDto {
    fn from(e: CustomerExport) -> Self {
        CustomerExportDto {
            customer_id: e.customer_id.0,
            exported_at: e.exported_at,
            tables: e
                .tables
                .into_iter()
                .map(|t| ExportedTableDto {
                    table: t.table.to_owned(),
                    rows: t.rows,
                })
                .collect(),
        }
    }
}

/// Everything held about one customer, for a privacy (subject access) request. The
/// hand-out is recorded in the audit log.
#[utoipa::path(get, path = "/api/v1/customers/{id}/export", tag = "audit", params(("id" = i64, Path)),
    security(("bearer" = [])),
    responses((status = 200, body = CustomerExportDto), (status = 403, body = crate::problem::Problem),
              (status = 404, body = crate::problem::Problem)))]
async fn export_customer(
    caller: Authorized<auth::Privacy>,
    State(state): State<AppState>,
    Id(id): Id,
) -> Result<axum::Json<CustomerExportDto>, ApiError> {
    let export = state
        .app
        .export_customer(&caller.actor, CustomerId(id))
        .await?;
    Ok(axum::Json(export.into()))
}

/// Erase a customer's personal data on request: their profile, the text of their
/// interactions, messages, tickets and answers, their merge records and aliases, and the
/// values the audit log kept about them. The customer stays as an anonymous record with
/// their orders, points and scores, so totals and reports do not change. Cannot be undone.
#[utoipa::path(post, path = "/api/v1/customers/{id}/erase", tag = "audit", params(("id" = i64, Path)),
    security(("bearer" = [])),
    responses((status = 204), (status = 403, body = crate::problem::Problem),
              (status = 404, body = crate::problem::Problem)))]
async fn erase_customer(
    caller: Authorized<auth::Privacy>,
    State(state): State<AppState>,
    Id(id): Id,
) -> Result<StatusCode, ApiError> {
    state
        .app
        .erase_customer(&caller.actor, CustomerId(id))
        .await?;
    Ok(StatusCode::NO_CONTENT)
}
