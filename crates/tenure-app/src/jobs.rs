//! Scheduled and queued work through the store's durable job table: the schedules, queuing
//! jobs, and the worker that runs them — any number of workers, on any number of servers,
//! claim jobs safely, and a schedule's slot runs once however many of them run.
//!
//! The worker is written as [`Worker::try_execute_task`]: claim one due job, run it, record
//! the run. Its loops ([`Worker::run`], [`Worker::run_until_idle`]) call it; tests call it
//! directly to drain the queue.

use chrono::{Duration, Utc};
use tenure_domain::access::Permission;
use tenure_domain::changes::{Actor, Event};
use tenure_domain::ids::JobId;
use tenure_domain::jobs::{JobKind, JobStatus, RunOutcome, Schedule};
use tenure_store::WriteTx;
use tenure_store::jobs::{Finished, Job, JobRun, NewJob};

use crate::analytics::ClvOptions;
use crate::{App, AppError, AppResult, Listed, PageRequest, listed, require};

/// How often a job may fail before it is given up.
const MAX_ATTEMPTS: i64 = 5;

/// The schedules every worker keeps: the loyalty expiry (with the earn of imported orders
/// and the birthday bonuses) every day at 01:00 UTC and the tier evaluation at 01:15, the
/// model refresh at 02:00, and the analytics refresh (stages, RFM, segments, retention
/// reports, which read the models' P(alive), the points and the tiers) at 02:30.
pub fn default_schedules() -> Vec<Schedule> {
    vec![
        Schedule {
            kind: JobKind::ModelRefresh,
            every: Duration::days(1),
            offset: Duration::hours(2),
        },
        Schedule {
            kind: JobKind::AnalyticsRefresh,
            every: Duration::days(1),
            offset: Duration::minutes(150),
        },
        Schedule {
            kind: JobKind::LoyaltyExpire,
            every: Duration::days(1),
            offset: Duration::minutes(60),
        },
        Schedule {
            kind: JobKind::LoyaltyTiers,
            every: Duration::days(1),
            offset: Duration::minutes(75),
        },
        Schedule {
            kind: JobKind::SlaScan,
            every: Duration::minutes(10),
            offset: Duration::zero(),
        },
        Schedule {
            kind: JobKind::Retention,
            every: Duration::days(1),
            offset: Duration::minutes(210),
        },
        // Hourly, so that each time zone's day is looked at soon after it begins there.
        Schedule {
            kind: JobKind::JourneySchedules,
            every: Duration::hours(1),
            offset: Duration::minutes(5),
        },
    ]
}

/// Queues `kind` now unless a job holding `key` is pending already.
pub(crate) async fn queue_once(
    tx: &mut WriteTx<'_>,
    kind: JobKind,
    key: &str,
) -> AppResult<Option<JobId>> {
    Ok(tx
        .enqueue_job(&NewJob {
            kind,
            payload: serde_json::json!({}),
            run_at: Utc::now(),
            unique_key: Some(key.to_owned()),
            keep_key: false,
            max_attempts: MAX_ATTEMPTS,
        })
        .await?)
}

impl App {
    /// Queues a job by hand, to run as soon as a worker is free. `None` when the same work
    /// is pending already.
    pub async fn queue_job(&self, actor: &Actor, kind: JobKind) -> AppResult<Option<JobId>> {
        require(actor, Permission::WriteCatalog)?;
        let mut uow = self.begin(actor).await?;
        let id = queue_once(&mut uow.tx, kind, &format!("{kind}:pending")).await?;
        if let Some(job) = id {
            uow.emit(Event::JobQueued { job });
        }
        uow.commit().await?;
        Ok(id)
    }

    /// Queues the current slot of every schedule, once: a slot already queued (by this
    /// worker or any other) is left as it is. Returns the jobs this call queued.
    pub async fn queue_due_schedules(&self) -> AppResult<Vec<JobId>> {
        let now = Utc::now();
        let actor = Actor::system();
        let mut uow = self.begin(&actor).await?;
        let mut queued = Vec::new();
        for s in &self.options().schedules {
            let job = NewJob {
                kind: s.kind,
                payload: serde_json::json!({ "slot": s.slot(now).to_rfc3339() }),
                run_at: s.slot(now),
                unique_key: Some(s.key(now)),
                keep_key: true,
                max_attempts: MAX_ATTEMPTS,
            };
            if let Some(id) = uow.tx.enqueue_job(&job).await? {
                queued.push(id);
            }
        }
        uow.commit().await?;
        Ok(queued)
    }

    /// Jobs, newest first, optionally of one status.
    pub async fn list_jobs(
        &self,
        actor: &Actor,
        status: Option<JobStatus>,
        page: &PageRequest,
    ) -> AppResult<Listed<Job>> {
        require(actor, Permission::ReadAggregates)?;
        let (limit, before) = (page.limit()?, page.after::<JobId>()?);
        Ok(listed(
            self.store().list_jobs(status, before, limit).await?,
            |j| j,
        ))
    }

    /// A job and every run of it.
    pub async fn job(&self, actor: &Actor, id: JobId) -> AppResult<(Job, Vec<JobRun>)> {
        require(actor, Permission::ReadAggregates)?;
        Ok((
            self.store().get_job(id).await?,
            self.store().job_runs(id).await?,
        ))
    }

    /// Runs one job's work as Tenure itself; the run's detail on success.
    async fn execute(&self, job: &Job) -> AppResult<String> {
        let actor = Actor::system();
        match job.kind {
            JobKind::ModelRefresh => {
                let report = self.refresh_models(&actor, &ClvOptions::default()).await?;
                Ok(match report {
                    Some(r) => serde_json::json!({
                        "customers": r.customers,
                        "log_likelihood": r.log_likelihood,
                    })
                    .to_string(),
                    None => serde_json::json!({ "customers": 0, "note": "no purchases yet" })
                        .to_string(),
                })
            }
            JobKind::DuplicatesRebuild => {
                let pairs = self.rebuild_duplicates(&actor).await?;
                Ok(serde_json::json!({ "pairs": pairs }).to_string())
            }
            JobKind::RecommendationsBuild => {
                let report = self
                    .build_recommendations(
                        &actor,
                        &crate::analytics::RecommendationOptions::default(),
                    )
                    .await?;
                Ok(report.json.to_string())
            }
            JobKind::LoyaltyExpire => {
                let earned = self.earn_missing(&actor).await?;
                let r = self.run_loyalty_expiry(&actor).await?;
                Ok(serde_json::json!({
                    "orders_credited": earned,
                    "released_lots": r.released_lots,
                    "expired_lots": r.expired_lots,
                    "members": r.members,
                    "birthday_bonuses": r.birthday_bonuses,
                })
                .to_string())
            }
            JobKind::SlaScan => {
                let r = self.run_sla_scan(&actor).await?;
                Ok(serde_json::to_string(&r).map_err(|e| AppError::Internal(e.to_string()))?)
            }
            JobKind::LoyaltyTiers => {
                let r = self.evaluate_tiers(&actor).await?;
                Ok(serde_json::to_string(&r).map_err(|e| AppError::Internal(e.to_string()))?)
            }
            JobKind::Retention => {
                let erased = self.apply_retention(&actor).await?;
                Ok(serde_json::json!({ "anonymised": erased }).to_string())
            }
            JobKind::JourneySchedules => {
                let r = self.evaluate_journey_schedules().await?;
                Ok(serde_json::to_string(&r).map_err(|e| AppError::Internal(e.to_string()))?)
            }
            JobKind::AnalyticsRefresh => {
                let r = self.refresh_analytics(&actor, None).await?;
                Ok(serde_json::json!({
                    "as_of": r.as_of.to_string(),
                    "customers": r.customers,
                    "stage_moves": r.stage_moves,
                    "segments": r.segments,
                })
                .to_string())
            }
        }
    }
}

/// What one call of [`Worker::try_execute_task`] did.
#[derive(Debug, Clone, PartialEq)]
pub enum ExecutionOutcome {
    /// Nothing was due.
    EmptyQueue,
    /// A job ran; how it ended.
    Ran {
        job: JobId,
        kind: JobKind,
        outcome: RunOutcome,
    },
}

/// A job worker: claims due jobs one at a time and runs them.
#[derive(Clone)]
pub struct Worker {
    app: App,
    id: String,
}

/// What a worker run until idle did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct IdleRun {
    pub jobs: u64,
    /// Enrolments moved along their journeys.
    pub steps: u64,
    pub sent: u64,
    /// Messages that failed for good.
    pub failed: u64,
}

impl Worker {
    /// A worker named after this process and `role` (`serve`, `worker`, `import`).
    pub fn new(app: App, role: &str) -> Worker {
        let id = format!(
            "{role}:{}:{:08x}",
            std::process::id(),
            rand::random::<u32>()
        );
        Worker { app, id }
    }

    pub fn id(&self) -> &str {
        &self.id
    }

    /// Claims one due job (of `kind` when given), runs it and records the run.
    async fn execute_one(&self, kind: Option<JobKind>) -> AppResult<ExecutionOutcome> {
        let now = Utc::now();
        let lease = now + self.app.options().job_lease;
        let Some(job) = self
            .app
            .store()
            .claim_job(&self.id, now, lease, kind)
            .await?
        else {
            return Ok(ExecutionOutcome::EmptyQueue);
        };
        let started_at = Utc::now();
        tracing::info!(job = job.id.0, kind = %job.kind, attempt = job.attempts, worker = %self.id, "running a job");
        // On a task of its own, so a panic in the job is the job's failure, not the worker's.
        let (app, claimed) = (self.app.clone(), job.clone());
        let result = tokio::spawn(async move { app.execute(&claimed).await })
            .await
            .unwrap_or_else(|e| Err(AppError::Internal(format!("the job panicked: {e}"))));
        let finished = match result {
            Ok(detail) => Finished {
                started_at,
                error: None,
                detail: Some(detail),
            },
            Err(e) => {
                tracing::warn!(job = job.id.0, kind = %job.kind, error = %e, "a job failed");
                Finished {
                    started_at,
                    error: Some(e.to_string()),
                    detail: None,
                }
            }
        };
        let outcome = self
            .app
            .store()
            .finish_job(&job, &self.id, &finished)
            .await?;
        Ok(ExecutionOutcome::Ran {
            job: job.id,
            kind: job.kind,
            outcome,
        })
    }

    /// Claims the next due job, runs it, and records how it ended.
    pub async fn try_execute_task(&self) -> AppResult<ExecutionOutcome> {
        self.execute_one(None).await
    }

    /// Runs every due job of `kind` now (an import finishing its duplicate rebuild).
    pub async fn run_kind(&self, kind: JobKind) -> AppResult<u64> {
        let mut n = 0;
        while let ExecutionOutcome::Ran { .. } = self.execute_one(Some(kind)).await? {
            n += 1;
        }
        Ok(n)
    }

    /// Runs the journeys' due steps and delivers the due messages, a batch of each;
    /// returns how many enrolments moved and messages were claimed.
    pub async fn run_messages(&self) -> AppResult<(u64, crate::messages::DeliveryReport)> {
        let moved = self.app.advance_journeys(200).await?;
        let mut delivered = self.app.deliver_messages(&self.id).await?;
        // Webhook deliveries keep the worker busy while any is due (their outcomes are in
        // their own log).
        let hooks = self.app.deliver_webhooks(&self.id).await?;
        delivered.claimed += hooks.claimed;
        Ok((moved, delivered))
    }

    /// Queues the schedules' current slots, then runs jobs, journey steps and deliveries
    /// until none is due.
    pub async fn run_until_idle(&self) -> AppResult<IdleRun> {
        self.app.queue_due_schedules().await?;
        let mut run = IdleRun::default();
        loop {
            let mut busy = false;
            while let ExecutionOutcome::Ran { .. } = self.try_execute_task().await? {
                run.jobs += 1;
                busy = true;
            }
            let (moved, delivered) = self.run_messages().await?;
            run.steps += moved;
            run.sent += delivered.sent;
            run.failed += delivered.failed;
            if moved > 0 || delivered.claimed > 0 {
                busy = true;
            }
            if !busy {
                return Ok(run);
            }
        }
    }

    /// Runs until `stop` resolves: queues the schedules, runs what is due, and waits a
    /// moment when nothing is. A database outage is logged and waited out.
    pub async fn run(&self, stop: impl std::future::Future<Output = ()>) {
        tokio::pin!(stop);
        let idle = std::time::Duration::from_secs(2);
        let mut last_schedule = None;
        loop {
            let minute = Utc::now().timestamp() / 60;
            if last_schedule != Some(minute) {
                match self.app.queue_due_schedules().await {
                    Ok(_) => last_schedule = Some(minute),
                    Err(e) => tracing::warn!(error = %e, "could not queue the schedules"),
                }
            }
            let mut wait = match self.try_execute_task().await {
                Ok(ExecutionOutcome::Ran { .. }) => std::time::Duration::ZERO,
                Ok(ExecutionOutcome::EmptyQueue) => idle,
                Err(e) => {
                    tracing::warn!(error = %e, "the job worker could not reach the queue");
                    idle
                }
            };
            match self.run_messages().await {
                Ok((moved, d)) if moved > 0 || d.claimed > 0 => {
                    wait = std::time::Duration::ZERO;
                }
                Ok(_) => {}
                Err(e) => tracing::warn!(error = %e, "the journeys or the outbox could not be run"),
            }
            tokio::select! {
                _ = &mut stop => return,
                _ = tokio::time::sleep(wait) => {}
            }
        }
    }
}
