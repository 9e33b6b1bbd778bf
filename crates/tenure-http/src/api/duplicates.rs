//! Duplicate customers: likely pairs to review, merges, and undoing them.

use axum::extract::State;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use tenure_app::model::{Candidate, CandidateSide, Merge};
use tenure_domain::duplicates::MatchReason;
use tenure_domain::ids::{CustomerId, MergeId};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::{ListResponse, page};
use crate::auth::{self, Authorized};
use crate::extract::{Id, Json, Query};
use crate::{ApiError, AppState};

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_duplicates))
        .routes(routes!(customer_duplicates))
        .routes(routes!(merge_customer))
        .routes(routes!(list_merges))
        .routes(routes!(get_merge))
        .routes(routes!(undo_merge))
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct DuplicateSide {
    pub id: i64,
    pub external_id: Option<String>,
    pub name: String,
    pub email: Option<String>,
    pub phone: Option<String>,
}

impl From<CandidateSide> for DuplicateSide {
    fn from(s: CandidateSide) -> Self {
        DuplicateSide {
            id: s.id.0,
            external_id: s.external_id,
            name: s.name,
            email: s.email,
            phone: s.phone,
        }
    }
}

/// Two customers that look like one person, and why.
#[derive(Serialize, utoipa::ToSchema)]
pub struct DuplicateDto {
    /// The pair, lower id first.
    pub customers: [DuplicateSide; 2],
    pub reasons: Vec<MatchReason>,
    /// How alike the names are, 0–1 (traditional and simplified Chinese, case, spacing and
    /// word order do not count as differences).
    pub name_similarity: f64,
    /// 0–1; the list is ordered by it, best first.
    pub score: f64,
}

impl From<Candidate> for DuplicateDto {
    fn from(c: Candidate) -> Self {
        DuplicateDto {
            score: c.pair.score(),
            customers: [c.a.into(), c.b.into()],
            reasons: c.pair.reasons.into_iter().collect(),
            name_similarity: c.pair.name_similarity,
        }
    }
}

#[derive(Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct DuplicateParams {
    /// Lowest score listed, 0–1 (default 0.5: a shared name alone).
    pub min_score: Option<f64>,
    pub limit: Option<u32>,
    pub cursor: Option<String>,
}

/// Likely duplicate customers, best first: the same email or phone, the same name (in any
/// script variant) with the same birthday, or the same uncommon name.
#[utoipa::path(get, path = "/api/v1/duplicates", tag = "duplicates", params(DuplicateParams),
    security(("bearer" = [])),
    responses((status = 200, body = ListResponse<DuplicateDto>), (status = 400, body = crate::problem::Problem)))]
async fn list_duplicates(
    caller: Authorized<auth::ReadCustomers>,
    State(state): State<AppState>,
    Query(p): Query<DuplicateParams>,
) -> Result<axum::Json<ListResponse<DuplicateDto>>, ApiError> {
    let found = state
        .app
        .duplicate_candidates(&caller.actor, None, p.min_score, &page(p.limit, &p.cursor))
        .await?;
    Ok(axum::Json(ListResponse::of(found, DuplicateDto::from)))
}

/// The likely duplicates of one customer.
#[utoipa::path(get, path = "/api/v1/customers/{id}/duplicates", tag = "duplicates",
    params(("id" = i64, Path), DuplicateParams), security(("bearer" = [])),
    responses((status = 200, body = ListResponse<DuplicateDto>), (status = 404, body = crate::problem::Problem)))]
async fn customer_duplicates(
    caller: Authorized<auth::ReadCustomers>,
    State(state): State<AppState>,
    Id(id): Id,
    Query(p): Query<DuplicateParams>,
) -> Result<axum::Json<ListResponse<DuplicateDto>>, ApiError> {
    let found = state
        .app
        .duplicate_candidates(
            &caller.actor,
            Some(CustomerId(id)),
            p.min_score,
            &page(p.limit, &p.cursor),
        )
        .await?;
    Ok(axum::Json(ListResponse::of(found, DuplicateDto::from)))
}

/// The rows a merge moved to the survivor.
#[derive(Serialize, utoipa::ToSchema)]
pub struct MovedDto {
    pub orders: usize,
    pub interactions: usize,
    pub consent_events: usize,
}

/// A recorded merge.
#[derive(Serialize, utoipa::ToSchema)]
pub struct MergeDto {
    pub id: i64,
    /// The customer that stays.
    pub survivor_id: i64,
    /// The customer merged away (after an undo, the id it came back with).
    pub merged_id: i64,
    pub merged_external_id: Option<String>,
    pub merged_name: String,
    pub moved: MovedDto,
    pub merged_by: String,
    pub merged_at: DateTime<Utc>,
    pub undone_by: Option<String>,
    pub undone_at: Option<DateTime<Utc>>,
}

impl From<Merge> for MergeDto {
    fn from(m: Merge) -> Self {
        MergeDto {
            id: m.id.0,
            survivor_id: m.survivor_id.0,
            merged_id: m.merged_id.0,
            merged_external_id: m.merged_external_id,
            merged_name: m.merged_profile.data.name,
            moved: MovedDto {
                orders: m.moved.count("orders"),
                interactions: m.moved.count("interactions"),
                consent_events: m.moved.count("consent_events"),
            },
            merged_by: m.merged_by,
            merged_at: m.merged_at,
            undone_by: m.undone_by,
            undone_at: m.undone_at,
        }
    }
}

/// The body of `POST /api/v1/customers/{id}/merge`.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MergeRequest {
    /// The customer to merge into this one; it disappears, its history moves over.
    pub duplicate_id: i64,
}

/// Merge a duplicate into this customer: orders (with lines), interactions and consent
/// history move over, empty fields are filled from the duplicate, tags and contact points
/// are united, aggregates are recomputed. The merge is recorded and can be undone.
#[utoipa::path(post, path = "/api/v1/customers/{id}/merge", tag = "duplicates", params(("id" = i64, Path)),
    request_body = MergeRequest, security(("bearer" = [])),
    responses((status = 200, body = MergeDto), (status = 404, body = crate::problem::Problem),
        (status = 422, body = crate::problem::Problem)))]
async fn merge_customer(
    caller: Authorized<auth::DeleteCustomers>,
    State(state): State<AppState>,
    Id(id): Id,
    Json(body): Json<MergeRequest>,
) -> Result<axum::Json<MergeDto>, ApiError> {
    if body.duplicate_id <= 0 {
        return Err(ApiError::field("duplicate_id", "must be a positive id"));
    }
    let merge = state
        .app
        .merge_customers(&caller.actor, CustomerId(id), CustomerId(body.duplicate_id))
        .await?;
    Ok(axum::Json(merge.into()))
}

#[derive(Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct MergeListParams {
    /// Only merges this customer was part of.
    pub customer_id: Option<i64>,
    pub limit: Option<u32>,
    pub cursor: Option<String>,
}

/// Merges, newest first.
#[utoipa::path(get, path = "/api/v1/merges", tag = "duplicates", params(MergeListParams),
    security(("bearer" = [])), responses((status = 200, body = ListResponse<MergeDto>)))]
async fn list_merges(
    caller: Authorized<auth::ReadCustomers>,
    State(state): State<AppState>,
    Query(p): Query<MergeListParams>,
) -> Result<axum::Json<ListResponse<MergeDto>>, ApiError> {
    let found = state
        .app
        .list_merges(
            &caller.actor,
            p.customer_id.map(CustomerId),
            &page(p.limit, &p.cursor),
        )
        .await?;
    Ok(axum::Json(ListResponse::of(found, MergeDto::from)))
}

#[utoipa::path(get, path = "/api/v1/merges/{id}", tag = "duplicates", params(("id" = i64, Path)),
    security(("bearer" = [])),
    responses((status = 200, body = MergeDto), (status = 404, body = crate::problem::Problem)))]
async fn get_merge(
    caller: Authorized<auth::ReadCustomers>,
    State(state): State<AppState>,
    Id(id): Id,
) -> Result<axum::Json<MergeDto>, ApiError> {
    Ok(axum::Json(
        state
            .app
            .get_merge(&caller.actor, MergeId(id))
            .await?
            .into(),
    ))
}

/// Undo a merge: the merged customer comes back with its history; the survivor's fields
/// return to what they were, keeping edits made since the merge.
#[utoipa::path(post, path = "/api/v1/merges/{id}/undo", tag = "duplicates", params(("id" = i64, Path)),
    security(("bearer" = [])),
    responses((status = 200, body = MergeDto), (status = 404, body = crate::problem::Problem),
        (status = 409, body = crate::problem::Problem)))]
async fn undo_merge(
    caller: Authorized<auth::DeleteCustomers>,
    State(state): State<AppState>,
    Id(id): Id,
) -> Result<axum::Json<MergeDto>, ApiError> {
    Ok(axum::Json(
        state
            .app
            .undo_merge(&caller.actor, MergeId(id))
            .await?
            .into(),
    ))
}
