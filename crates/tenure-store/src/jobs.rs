//! The durable job queue: jobs are rows; a worker claims a due one inside a write
//! transaction — `FOR UPDATE SKIP LOCKED` on PostgreSQL, so workers on many servers never
//! claim the same job and never wait for each other; the writer slot on SQLite, which
//! admits one claimer at a time — and holds it under a lease. A worker that dies leaves a
//! lease that runs out, and the job is claimed again. Every run is recorded.

use chrono::{DateTime, Utc};
use sqlx::Row;
use sqlx::any::AnyRow;
use tenure_domain::ids::JobId;
use tenure_domain::jobs::{JobKind, JobStatus, RunOutcome, backoff};

use crate::decode::parsed;
use crate::sql::Select;
use crate::time::{now_micros, opt_time, time};
use crate::{Backend, Page, Store, StoreResult, WriteTx};

/// A job to queue.
#[derive(Debug, Clone)]
pub struct NewJob {
    pub kind: JobKind,
    pub payload: serde_json::Value,
    pub run_at: DateTime<Utc>,
    /// While a job holds this key no other job with it can be queued.
    pub unique_key: Option<String>,
    /// Keep the key once the job has ended (a schedule's slot runs once, ever) instead of
    /// releasing it (pending work queued once at a time).
    pub keep_key: bool,
    pub max_attempts: i64,
}

/// A queued, running or finished job.
#[derive(Debug, Clone, PartialEq)]
pub struct Job {
    pub id: JobId,
    pub kind: JobKind,
    pub payload: serde_json::Value,
    pub unique_key: Option<String>,
    pub status: JobStatus,
    pub run_at: DateTime<Utc>,
    pub attempts: i64,
    pub max_attempts: i64,
    pub locked_by: Option<String>,
    pub locked_until: Option<DateTime<Utc>>,
    pub last_error: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// One run of a job.
#[derive(Debug, Clone, PartialEq)]
pub struct JobRun {
    pub id: i64,
    pub job_id: JobId,
    pub worker: String,
    pub attempt: i64,
    pub started_at: DateTime<Utc>,
    pub finished_at: DateTime<Utc>,
    pub outcome: RunOutcome,
    pub error: Option<String>,
    pub detail: Option<String>,
}

const JOB_COLUMNS: &str = "id, kind, payload, unique_key, status, run_at, attempts, max_attempts, locked_by, \
     locked_until, last_error, created_at, updated_at";

fn job_from_row(row: &AnyRow) -> StoreResult<Job> {
    Ok(Job {
        id: JobId(row.try_get("id")?),
        kind: parsed(row, "kind")?,
        payload: crate::decode::json(row, "payload")?,
        unique_key: row.try_get("unique_key")?,
        status: parsed(row, "status")?,
        run_at: time(row, "run_at")?,
        attempts: row.try_get("attempts")?,
        max_attempts: row.try_get("max_attempts")?,
        locked_by: row.try_get("locked_by")?,
        locked_until: opt_time(row, "locked_until")?,
        last_error: row.try_get("last_error")?,
        created_at: time(row, "created_at")?,
        updated_at: time(row, "updated_at")?,
    })
}

fn run_from_row(row: &AnyRow) -> StoreResult<JobRun> {
    Ok(JobRun {
        id: row.try_get("id")?,
        job_id: JobId(row.try_get("job_id")?),
        worker: row.try_get("worker")?,
        attempt: row.try_get("attempt")?,
        started_at: time(row, "started_at")?,
        finished_at: time(row, "finished_at")?,
        outcome: parsed(row, "outcome")?,
        error: row.try_get("error")?,
        detail: row.try_get("detail")?,
    })
}

/// The next due job: queued and its time has come, or running under a lease that ran out
/// (its worker died). PostgreSQL adds `FOR UPDATE SKIP LOCKED` (see [`Backend`]).
const DUE: &str = "SELECT id FROM jobs WHERE ((status = $1 AND run_at <= $3) OR (status = $2 AND locked_until < $3))";
const DUE_KIND: &str = " AND kind = $4";
const DUE_ORDER: &str = " ORDER BY run_at, id LIMIT 1";

/// How a run of a job ended, as the worker reports it.
#[derive(Debug, Clone)]
pub struct Finished {
    pub started_at: DateTime<Utc>,
    /// `None` on success; the error otherwise.
    pub error: Option<String>,
    /// What the run did (a small JSON object), on success.
    pub detail: Option<String>,
}

impl WriteTx<'_> {
    /// Queues a job; `None` when another job holds its unique key (the slot is taken, or the
    /// same work is already pending).
    pub async fn enqueue_job(&mut self, job: &NewJob) -> StoreResult<Option<JobId>> {
        let now = now_micros();
        let id: Option<i64> = sqlx::query_scalar(
            "INSERT INTO jobs (kind, payload, unique_key, keep_key, status, run_at, attempts, max_attempts, \
             created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, 0, $7, $8, $8) \
             ON CONFLICT (unique_key) DO NOTHING RETURNING id",
        )
        .bind(job.kind.as_str())
        .bind(job.payload.to_string())
        .bind(job.unique_key.clone())
        .bind(i64::from(job.keep_key))
        .bind(JobStatus::Queued.as_str())
        .bind(job.run_at.timestamp_micros())
        .bind(job.max_attempts.max(1))
        .bind(now)
        .fetch_optional(&mut *self.tx)
        .await?;
        Ok(id.map(JobId))
    }
}

impl Store {
    /// Claims the next due job (of `kind`, when given) for `worker` until `lease_until`,
    /// counting the attempt.
    pub async fn claim_job(
        &self,
        worker: &str,
        now: DateTime<Utc>,
        lease_until: DateTime<Utc>,
        kind: Option<JobKind>,
    ) -> StoreResult<Option<Job>> {
        let mut w = self.begin_write().await?;
        let mut due = DUE.to_owned();
        if kind.is_some() {
            due.push_str(DUE_KIND);
        }
        due.push_str(DUE_ORDER);
        if self.backend() == Backend::Postgres {
            due.push_str(" FOR UPDATE SKIP LOCKED");
        }
        let mut q = sqlx::query_scalar(sqlx::AssertSqlSafe(due))
            .bind(JobStatus::Queued.as_str())
            .bind(JobStatus::Running.as_str())
            .bind(now.timestamp_micros());
        if let Some(k) = kind {
            q = q.bind(k.as_str());
        }
        let id: Option<i64> = q.fetch_optional(&mut *w.tx).await?;
        let Some(id) = id else {
            w.rollback().await?;
            return Ok(None);
        };
        let row = sqlx::query(sqlx::AssertSqlSafe(format!(
            "UPDATE jobs SET status = $2, locked_by = $3, locked_until = $4, attempts = attempts + 1, \
             updated_at = $5 WHERE id = $1 RETURNING {JOB_COLUMNS}"
        )))
        .bind(id)
        .bind(JobStatus::Running.as_str())
        .bind(worker.to_owned())
        .bind(lease_until.timestamp_micros())
        .bind(now.timestamp_micros())
        .fetch_one(&mut *w.tx)
        .await?;
        let job = job_from_row(&row)?;
        w.commit().await?;
        Ok(Some(job))
    }

    /// Records how a run of `job` (claimed by `worker`) ended: done on success; on failure
    /// queued again after a backoff, or failed for good once its attempts are used up. A
    /// worker whose lease was taken over (it ran too long) records its run but leaves the
    /// job to its new holder. Returns the run's outcome.
    pub async fn finish_job(
        &self,
        job: &Job,
        worker: &str,
        finished: &Finished,
    ) -> StoreResult<RunOutcome> {
        let now = chrono::Utc::now();
        let outcome = match &finished.error {
            None => RunOutcome::Succeeded,
            Some(_) if job.attempts < job.max_attempts => RunOutcome::Retrying,
            Some(_) => RunOutcome::GaveUp,
        };
        let (status, run_at) = match outcome {
            RunOutcome::Succeeded => (JobStatus::Done, job.run_at),
            RunOutcome::Retrying => (
                JobStatus::Queued,
                now + backoff(u32::try_from(job.attempts).unwrap_or(u32::MAX)),
            ),
            RunOutcome::GaveUp => (JobStatus::Failed, job.run_at),
        };
        let mut w = self.begin_write().await?;
        // A finished job gives up a key it only held while pending.
        let release = status != JobStatus::Queued;
        sqlx::query(
            "UPDATE jobs SET status = $2, run_at = $3, locked_by = NULL, locked_until = NULL, last_error = $4, \
             updated_at = $5, unique_key = CASE WHEN $6 = 1 AND keep_key = 0 THEN NULL ELSE unique_key END \
             WHERE id = $1 AND status = $7 AND locked_by = $8",
        )
        .bind(job.id.0)
        .bind(status.as_str())
        .bind(run_at.timestamp_micros())
        .bind(finished.error.clone())
        .bind(now.timestamp_micros())
        .bind(i64::from(release))
        .bind(JobStatus::Running.as_str())
        .bind(worker.to_owned())
        .execute(&mut *w.tx)
        .await?;
        sqlx::query(
            "INSERT INTO job_runs (job_id, worker, attempt, started_at, finished_at, outcome, error, detail) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        )
        .bind(job.id.0)
        .bind(worker.to_owned())
        .bind(job.attempts)
        .bind(finished.started_at.timestamp_micros())
        .bind(now.timestamp_micros())
        .bind(outcome.as_str())
        .bind(finished.error.clone())
        .bind(finished.detail.clone())
        .execute(&mut *w.tx)
        .await?;
        w.commit().await?;
        Ok(outcome)
    }

    pub async fn get_job(&self, id: JobId) -> StoreResult<Job> {
        let row = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {JOB_COLUMNS} FROM jobs WHERE id = $1"
        )))
        .bind(id.0)
        .fetch_optional(self.pool())
        .await?
        .ok_or(crate::StoreError::NotFound { what: "job" })?;
        job_from_row(&row)
    }

    /// Jobs, newest first, optionally of one status.
    pub async fn list_jobs(
        &self,
        status: Option<JobStatus>,
        before: Option<JobId>,
        limit: u32,
    ) -> StoreResult<Page<Job, JobId>> {
        let limit = i64::from(limit.clamp(1, 1000));
        let mut s = Select::new(
            "SELECT id, kind, payload, unique_key, status, run_at, attempts, max_attempts, locked_by, \
             locked_until, last_error, created_at, updated_at FROM jobs",
        );
        if let Some(st) = status {
            s.filter("status = {}", st.as_str().to_owned())?;
        }
        if let Some(b) = before {
            s.filter("id < {}", b.0)?;
        }
        let (sql, args) = s.finish("ORDER BY id DESC", limit + 1)?;
        let rows = sqlx::query_with(sqlx::AssertSqlSafe(sql), args)
            .fetch_all(self.pool())
            .await?;
        let items = rows
            .iter()
            .map(job_from_row)
            .collect::<StoreResult<Vec<_>>>()?;
        Ok(Page::cut(items, limit, |j| j.id))
    }

    /// Every run of a job, oldest first.
    pub async fn job_runs(&self, job: JobId) -> StoreResult<Vec<JobRun>> {
        let rows = sqlx::query(
            "SELECT id, job_id, worker, attempt, started_at, finished_at, outcome, error, detail \
             FROM job_runs WHERE job_id = $1 ORDER BY id",
        )
        .bind(job.0)
        .fetch_all(self.pool())
        .await?;
        rows.iter().map(run_from_row).collect()
    }
}
