//! `/api/v1/jobs`: the scheduled and queued work, the record of every run, and queuing a
//! job by hand.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use tenure_app::model::{Job, JobRun};
use tenure_domain::ids::JobId;
use tenure_domain::jobs::{JobKind, JobStatus, RunOutcome};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::{ListResponse, page};
use crate::auth::{self, Authorized};
use crate::extract::{Id, Json, Query};
use crate::{ApiError, AppState};

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_jobs, queue_job))
        .routes(routes!(get_job))
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct JobDto {
    pub id: i64,
    pub kind: JobKind,
    pub status: JobStatus,
    /// When it is (or was) due.
    pub run_at: DateTime<Utc>,
    pub attempts: i64,
    pub max_attempts: i64,
    /// The worker holding it while it runs.
    pub locked_by: Option<String>,
    pub last_error: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl From<Job> for JobDto {
    fn from(j: Job) -> Self {
        JobDto {
            id: j.id.0,
            kind: j.kind,
            status: j.status,
            run_at: j.run_at,
            attempts: j.attempts,
            max_attempts: j.max_attempts,
            locked_by: j.locked_by,
            last_error: j.last_error,
            created_at: j.created_at,
            updated_at: j.updated_at,
        }
    }
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct JobRunDto {
    pub worker: String,
    pub attempt: i64,
    pub started_at: DateTime<Utc>,
    pub finished_at: DateTime<Utc>,
    pub outcome: RunOutcome,
    pub error: Option<String>,
    /// What the run did, as a JSON object.
    #[schema(value_type = Option<Object>)]
    pub detail: Option<serde_json::Value>,
}

impl From<JobRun> for JobRunDto {
    fn from(r: JobRun) -> Self {
        JobRunDto {
            worker: r.worker,
            attempt: r.attempt,
            started_at: r.started_at,
            finished_at: r.finished_at,
            outcome: r.outcome,
            error: r.error,
            detail: r.detail.and_then(|d| serde_json::from_str(&d).ok()),
        }
    }
}

/// A job with every run of it.
#[derive(Serialize, utoipa::ToSchema)]
pub struct JobDetailDto {
    #[serde(flatten)]
    pub job: JobDto,
    pub runs: Vec<JobRunDto>,
}

#[derive(Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct JobListParams {
    pub status: Option<JobStatus>,
    pub limit: Option<u32>,
    pub cursor: Option<String>,
}

/// Jobs, newest first.
#[utoipa::path(get, path = "/api/v1/jobs", tag = "jobs", params(JobListParams), security(("bearer" = [])),
    responses((status = 200, body = ListResponse<JobDto>)))]
async fn list_jobs(
    caller: Authorized<auth::ReadAggregates>,
    State(state): State<AppState>,
    Query(p): Query<JobListParams>,
) -> Result<axum::Json<ListResponse<JobDto>>, ApiError> {
    let found = state
        .app
        .list_jobs(&caller.actor, p.status, &page(p.limit, &p.cursor))
        .await?;
    Ok(axum::Json(ListResponse::of(found, JobDto::from)))
}

#[utoipa::path(get, path = "/api/v1/jobs/{id}", tag = "jobs", params(("id" = i64, Path)), security(("bearer" = [])),
    responses((status = 200, body = JobDetailDto), (status = 404, body = crate::problem::Problem)))]
async fn get_job(
    caller: Authorized<auth::ReadAggregates>,
    State(state): State<AppState>,
    Id(id): Id,
) -> Result<axum::Json<JobDetailDto>, ApiError> {
    let (job, runs) = state.app.job(&caller.actor, JobId(id)).await?;
    Ok(axum::Json(JobDetailDto {
        job: job.into(),
        runs: runs.into_iter().map(JobRunDto::from).collect(),
    }))
}

/// The body of `POST /api/v1/jobs`.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct QueueJob {
    pub kind: JobKind,
}

/// A job queued, or the same work already pending.
#[derive(Serialize, utoipa::ToSchema)]
pub struct QueuedDto {
    /// The new job; `null` when the same work was pending already.
    pub id: Option<i64>,
}

/// Queue a job to run as soon as a worker is free (the model refresh after a large import,
/// say).
#[utoipa::path(post, path = "/api/v1/jobs", tag = "jobs", request_body = QueueJob, security(("bearer" = [])),
    responses((status = 202, body = QueuedDto), (status = 403, body = crate::problem::Problem)))]
async fn queue_job(
    caller: Authorized<auth::WriteCatalog>,
    State(state): State<AppState>,
    Json(body): Json<QueueJob>,
) -> Result<impl IntoResponse, ApiError> {
    let id = state.app.queue_job(&caller.actor, body.kind).await?;
    Ok((
        StatusCode::ACCEPTED,
        axum::Json(QueuedDto {
            id: id.map(|j| j.0),
        }),
    ))
}
