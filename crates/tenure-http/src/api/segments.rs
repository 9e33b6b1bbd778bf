//! `/api/v1/segments`: segments in the filter language, their members and history, and the
//! live count of an expression being edited.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use tenure_app::segments::SegmentDraft;
use tenure_domain::ids::SegmentId;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::customers::CustomerDto;
use super::{ListResponse, PageParams, page};
use crate::auth::{self, Authorized};
use crate::extract::{Id, Json, Query};
use crate::{ApiError, AppState};

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_segments, create_segment))
        .routes(routes!(get_segment, update_segment, delete_segment))
        .routes(routes!(segment_members))
        .routes(routes!(segment_history))
        .routes(routes!(count_segment))
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct SegmentDto {
    pub id: i64,
    pub name: String,
    pub description: String,
    /// The filter, e.g. `stage = "at_risk" and clv > 500` (see docs/segments.md).
    pub expression: String,
    /// The segments it is built on.
    pub depends_on: Vec<String>,
    pub members: i64,
    /// When every customer was last checked against it.
    pub refreshed_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub version: i64,
}

impl From<tenure_app::model::SegmentRow> for SegmentDto {
    fn from(s: tenure_app::model::SegmentRow) -> Self {
        SegmentDto {
            id: s.id.0,
            name: s.name,
            description: s.description,
            expression: s.expression,
            depends_on: s.depends_on,
            members: s.members,
            refreshed_at: s.refreshed_at,
            created_at: s.created_at,
            updated_at: s.updated_at,
            version: s.version,
        }
    }
}

/// A segment to create.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SegmentBody {
    #[schema(max_length = 100)]
    pub name: String,
    #[serde(default)]
    #[schema(max_length = 1000)]
    pub description: String,
    #[schema(max_length = 4000)]
    pub expression: String,
}

/// The new state of a segment, at the version it was read.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SegmentUpdate {
    #[schema(max_length = 100)]
    pub name: String,
    #[serde(default)]
    #[schema(max_length = 1000)]
    pub description: String,
    #[schema(max_length = 4000)]
    pub expression: String,
    /// The version read; a later one answers 412.
    pub version: i64,
}

/// Every segment, by name.
#[utoipa::path(get, path = "/api/v1/segments", tag = "segments", security(("bearer" = [])),
    responses((status = 200, body = ListResponse<SegmentDto>)))]
async fn list_segments(
    caller: Authorized<auth::ReadAggregates>,
    State(state): State<AppState>,
) -> Result<axum::Json<ListResponse<SegmentDto>>, ApiError> {
    let all = state.app.segments(&caller.actor).await?;
    Ok(axum::Json(ListResponse::all(
        all.into_iter().map(SegmentDto::from).collect(),
    )))
}

/// Create a segment; its members are worked out at once and kept current by every write.
#[utoipa::path(post, path = "/api/v1/segments", tag = "segments", request_body = SegmentBody,
    security(("bearer" = [])),
    responses((status = 201, body = SegmentDto), (status = 409, body = crate::problem::Problem),
        (status = 422, body = crate::problem::Problem)))]
async fn create_segment(
    caller: Authorized<auth::WriteCatalog>,
    State(state): State<AppState>,
    Json(body): Json<SegmentBody>,
) -> Result<impl IntoResponse, ApiError> {
    let s = state
        .app
        .create_segment(
            &caller.actor,
            SegmentDraft {
                name: body.name,
                description: body.description,
                expression: body.expression,
            },
        )
        .await?;
    Ok((StatusCode::CREATED, axum::Json(SegmentDto::from(s))))
}

#[utoipa::path(get, path = "/api/v1/segments/{id}", tag = "segments", params(("id" = i64, Path)),
    security(("bearer" = [])),
    responses((status = 200, body = SegmentDto), (status = 404, body = crate::problem::Problem)))]
async fn get_segment(
    caller: Authorized<auth::ReadAggregates>,
    State(state): State<AppState>,
    Id(id): Id,
) -> Result<axum::Json<SegmentDto>, ApiError> {
    Ok(axum::Json(
        state
            .app
            .segment(&caller.actor, SegmentId(id))
            .await?
            .into(),
    ))
}

/// Change a segment; it and every segment built on it are worked out again.
#[utoipa::path(put, path = "/api/v1/segments/{id}", tag = "segments", params(("id" = i64, Path)),
    request_body = SegmentUpdate, security(("bearer" = [])),
    responses((status = 200, body = SegmentDto), (status = 404, body = crate::problem::Problem),
        (status = 409, body = crate::problem::Problem), (status = 412, body = crate::problem::Problem),
        (status = 422, body = crate::problem::Problem)))]
async fn update_segment(
    caller: Authorized<auth::WriteCatalog>,
    State(state): State<AppState>,
    Id(id): Id,
    Json(body): Json<SegmentUpdate>,
) -> Result<axum::Json<SegmentDto>, ApiError> {
    let s = state
        .app
        .update_segment(
            &caller.actor,
            SegmentId(id),
            body.version,
            SegmentDraft {
                name: body.name,
                description: body.description,
                expression: body.expression,
            },
        )
        .await?;
    Ok(axum::Json(s.into()))
}

/// Delete a segment no other segment is built on.
#[utoipa::path(delete, path = "/api/v1/segments/{id}", tag = "segments", params(("id" = i64, Path)),
    security(("bearer" = [])),
    responses((status = 204), (status = 404, body = crate::problem::Problem), (status = 409, body = crate::problem::Problem)))]
async fn delete_segment(
    caller: Authorized<auth::WriteCatalog>,
    State(state): State<AppState>,
    Id(id): Id,
) -> Result<StatusCode, ApiError> {
    state
        .app
        .delete_segment(&caller.actor, SegmentId(id))
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct MemberDto {
    pub customer: CustomerDto,
    pub since: DateTime<Utc>,
}

/// A segment's members, by customer id.
#[utoipa::path(get, path = "/api/v1/segments/{id}/members", tag = "segments", params(("id" = i64, Path), PageParams),
    security(("bearer" = [])),
    responses((status = 200, body = ListResponse<MemberDto>), (status = 404, body = crate::problem::Problem)))]
async fn segment_members(
    caller: Authorized<auth::ReadAggregates>,
    State(state): State<AppState>,
    Id(id): Id,
    Query(p): Query<PageParams>,
) -> Result<axum::Json<ListResponse<MemberDto>>, ApiError> {
    let found = state
        .app
        .segment_members(&caller.actor, SegmentId(id), page(p.limit, &p.cursor))
        .await?;
    Ok(axum::Json(ListResponse::of(found, |(c, since)| {
        MemberDto {
            customer: c.into(),
            since,
        }
    })))
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct MembershipChangeDto {
    pub customer_id: i64,
    pub at: DateTime<Utc>,
    /// `entered` or `left`.
    pub change: String,
}

/// Who entered and left the segment, newest first (the latest 200).
#[utoipa::path(get, path = "/api/v1/segments/{id}/history", tag = "segments", params(("id" = i64, Path)),
    security(("bearer" = [])),
    responses((status = 200, body = ListResponse<MembershipChangeDto>), (status = 404, body = crate::problem::Problem)))]
async fn segment_history(
    caller: Authorized<auth::ReadAggregates>,
    State(state): State<AppState>,
    Id(id): Id,
) -> Result<axum::Json<ListResponse<MembershipChangeDto>>, ApiError> {
    let h = state
        .app
        .segment_history(&caller.actor, SegmentId(id), 200)
        .await?;
    Ok(axum::Json(ListResponse::all(
        h.into_iter()
            .map(|c| MembershipChangeDto {
                customer_id: c.customer.0,
                at: c.at,
                change: if c.entered { "entered" } else { "left" }.to_owned(),
            })
            .collect(),
    )))
}

/// An expression to count.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CountBody {
    #[schema(max_length = 4000)]
    pub expression: String,
    /// A segment to compare with: who would enter and who would leave it.
    pub segment_id: Option<i64>,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct ChangePreviewDto {
    pub customers: u64,
    /// The first few.
    pub sample: Vec<CustomerDto>,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct CountDto {
    pub count: u64,
    pub as_of: DateTime<Utc>,
    pub entering: Option<ChangePreviewDto>,
    pub leaving: Option<ChangePreviewDto>,
}

/// How many customers an expression selects now (a parse error is a 422 naming the
/// column), and with `segment_id`, who would enter and leave that segment.
#[utoipa::path(post, path = "/api/v1/segments/count", tag = "segments", request_body = CountBody,
    security(("bearer" = [])),
    responses((status = 200, body = CountDto), (status = 404, body = crate::problem::Problem),
        (status = 422, body = crate::problem::Problem)))]
async fn count_segment(
    caller: Authorized<auth::ReadAggregates>,
    State(state): State<AppState>,
    Json(body): Json<CountBody>,
) -> Result<axum::Json<CountDto>, ApiError> {
    if body.segment_id.is_some_and(|id| id <= 0) {
        return Err(ApiError::field("segment_id", "must be a positive id"));
    }
    let p = state
        .app
        .preview_segment(
            &caller.actor,
            &body.expression,
            body.segment_id.map(SegmentId),
        )
        .await?;
    let side = |s: Option<(u64, Vec<tenure_domain::customer::Customer>)>| {
        s.map(|(n, v)| ChangePreviewDto {
            customers: n,
            sample: v.into_iter().map(CustomerDto::from).collect(),
        })
    };
    Ok(axum::Json(CountDto {
        count: p.count,
        as_of: p.as_of,
        entering: side(p.entering),
        leaving: side(p.leaving),
    }))
}
