//! Duplicate customers: likely pairs to review, merges, and undoing them.

use axum::extract::State;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use tenure_domain::duplicates::MatchReason;
use tenure_domain::ids::CustomerId;
use tenure_store::duplicates::{Candidate, CandidatePosition, CandidateSide, Merge};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::{ListResponse, decode_cursor, decode_id_cursor, encode_cursor, limit};
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

/// Pairs scoring below this are not listed unless asked for.
const DEFAULT_MIN_SCORE: f64 = 0.5;

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
            customers: [c.a.into(), c.b.into()],
            reasons: c.reasons.into_iter().collect(),
            name_similarity: c.name_similarity,
            score: c.score,
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

impl DuplicateParams {
    fn min_score(&self) -> Result<f64, ApiError> {
        match self.min_score {
            None => Ok(DEFAULT_MIN_SCORE),
            Some(s) if (0.0..=1.0).contains(&s) => Ok(s),
            Some(s) => Err(ApiError::field(
                "min_score",
                format!("must be between 0 and 1 (got {s})"),
            )),
        }
    }

    fn after(&self) -> Result<Option<CandidatePosition>, ApiError> {
        let Some(c) = self.cursor.as_deref() else {
            return Ok(None);
        };
        let text = decode_cursor(c)?;
        let bad = || ApiError::field("cursor", "not a cursor returned by this API");
        let mut parts = text.split(':');
        let mut next = || {
            parts
                .next()
                .and_then(|p| p.parse::<i64>().ok())
                .ok_or_else(bad)
        };
        let (score, a, b) = (next()?, next()?, next()?);
        Ok(Some(CandidatePosition {
            score: score as f64 / 1000.0,
            a: CustomerId(a),
            b: CustomerId(b),
        }))
    }
}

fn candidate_page(
    page: tenure_store::Page<Candidate, CandidatePosition>,
) -> ListResponse<DuplicateDto> {
    ListResponse {
        items: page.items.into_iter().map(DuplicateDto::from).collect(),
        next_cursor: page.next.map(|p| {
            encode_cursor(&format!(
                "{}:{}:{}",
                (p.score * 1000.0).round() as i64,
                p.a,
                p.b
            ))
        }),
    }
}

/// Likely duplicate customers, best first: the same email or phone, the same name (in any
/// script variant) with the same birthday, or the same uncommon name.
#[utoipa::path(get, path = "/api/v1/duplicates", tag = "duplicates", params(DuplicateParams),
    security(("bearer" = [])),
    responses((status = 200, body = ListResponse<DuplicateDto>), (status = 400, body = crate::problem::Problem)))]
async fn list_duplicates(
    _caller: Authorized<auth::ReadCustomers>,
    State(state): State<AppState>,
    Query(p): Query<DuplicateParams>,
) -> Result<axum::Json<ListResponse<DuplicateDto>>, ApiError> {
    let page = state
        .store
        .duplicate_candidates(None, p.min_score()?, p.after()?, limit(p.limit)? as usize)
        .await?;
    Ok(axum::Json(candidate_page(page)))
}

/// The likely duplicates of one customer.
#[utoipa::path(get, path = "/api/v1/customers/{id}/duplicates", tag = "duplicates",
    params(("id" = i64, Path), DuplicateParams), security(("bearer" = [])),
    responses((status = 200, body = ListResponse<DuplicateDto>), (status = 404, body = crate::problem::Problem)))]
async fn customer_duplicates(
    _caller: Authorized<auth::ReadCustomers>,
    State(state): State<AppState>,
    Id(id): Id,
    Query(p): Query<DuplicateParams>,
) -> Result<axum::Json<ListResponse<DuplicateDto>>, ApiError> {
    let (min_score, after, limit) = (p.min_score()?, p.after()?, limit(p.limit)? as usize);
    state.store.get_customer(CustomerId(id)).await?;
    let page = state
        .store
        .duplicate_candidates(Some(CustomerId(id)), min_score, after, limit)
        .await?;
    Ok(axum::Json(candidate_page(page)))
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
            id: m.id,
            survivor_id: m.survivor_id.0,
            merged_id: m.merged_id.0,
            merged_external_id: m.merged_external_id,
            merged_name: m.merged_profile.data.name,
            moved: MovedDto {
                orders: m.moved.orders.len(),
                interactions: m.moved.interactions.len(),
                consent_events: m.moved.consent_events.len(),
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
        .store
        .merge_customers(
            CustomerId(id),
            CustomerId(body.duplicate_id),
            &caller.principal.name,
        )
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
    _caller: Authorized<auth::ReadCustomers>,
    State(state): State<AppState>,
    Query(p): Query<MergeListParams>,
) -> Result<axum::Json<ListResponse<MergeDto>>, ApiError> {
    let before = decode_id_cursor(p.cursor.as_deref())?;
    let page = state
        .store
        .list_merges(
            p.customer_id.map(CustomerId),
            before,
            i64::from(limit(p.limit)?),
        )
        .await?;
    Ok(axum::Json(ListResponse {
        items: page.items.into_iter().map(MergeDto::from).collect(),
        next_cursor: page.next.map(|id| encode_cursor(&id.to_string())),
    }))
}

#[utoipa::path(get, path = "/api/v1/merges/{id}", tag = "duplicates", params(("id" = i64, Path)),
    security(("bearer" = [])),
    responses((status = 200, body = MergeDto), (status = 404, body = crate::problem::Problem)))]
async fn get_merge(
    _caller: Authorized<auth::ReadCustomers>,
    State(state): State<AppState>,
    Id(id): Id,
) -> Result<axum::Json<MergeDto>, ApiError> {
    Ok(axum::Json(state.store.get_merge(id).await?.into()))
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
            .store
            .undo_merge(id, &caller.principal.name)
            .await?
            .into(),
    ))
}
