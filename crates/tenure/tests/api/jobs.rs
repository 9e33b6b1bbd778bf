//! The durable job queue: schedules run once per slot however many workers run, failures
//! are retried with backoff and then given up, a dead worker's job is taken over, and
//! `tenure worker --until-idle` drains the queue.

use tenure_app::App;
use tenure_app::jobs::{ExecutionOutcome, Worker};
use tenure_domain::jobs::{JobKind, JobStatus, RunOutcome, Schedule};
use tenure_testkit::{TestDb, operator};

/// An application on `db` with one schedule: the model refresh every hour.
async fn app_on(db: &TestDb) -> App {
    let store = db.store().await;
    App::builder(store)
        .options(tenure_app::AppOptions {
            schedules: vec![Schedule {
                kind: JobKind::ModelRefresh,
                every: chrono::Duration::hours(1),
                offset: chrono::Duration::zero(),
            }],
            job_lease: chrono::Duration::minutes(5),
            ..tenure_app::AppOptions::default()
        })
        .build()
}

/// A few customers with purchases, so the model refresh has something to fit.
async fn some_purchases(db: &TestDb) {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("purchases.csv");
    let mut csv = String::from("customer_external_id,occurred_at,amount\n");
    for c in 0..40 {
        for k in 0..(c % 5) + 1 {
            csv.push_str(&format!(
                "C{c},2024-{:02}-{:02},{}.50\n",
                k % 12 + 1,
                c % 27 + 1,
                10 + c
            ));
        }
    }
    std::fs::write(&file, csv).unwrap();
    crate::ok(&crate::tenure(
        db,
        &["import", "purchases", file.to_str().unwrap()],
    ));
}

async fn drain(worker: &Worker) -> Vec<ExecutionOutcome> {
    let mut ran = Vec::new();
    loop {
        match worker.try_execute_task().await.unwrap() {
            ExecutionOutcome::EmptyQueue => return ran,
            o => ran.push(o),
        }
    }
}

// Two applications in one process share the SQLite file as two servers would; on one
// thread, the bulk-load connection's blocking wait for the file's lock would stall the other
// application's transaction that holds it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_scheduled_job_runs_once_per_slot_however_many_workers_run() {
    for db in TestDb::all().await {
        some_purchases(&db).await;
        // Two servers: two applications with pools of their own on one database.
        let (one, two) = (app_on(&db).await, app_on(&db).await);
        let (q1, q2) = tokio::join!(one.queue_due_schedules(), two.queue_due_schedules());
        let queued = q1.unwrap().len() + q2.unwrap().len();
        assert_eq!(queued, 1, "one job for the slot, whoever queued it");
        let (w1, w2) = (
            Worker::new(one.clone(), "one"),
            Worker::new(two.clone(), "two"),
        );
        let (r1, r2) = tokio::join!(drain(&w1), drain(&w2));
        let ran: Vec<_> = r1.into_iter().chain(r2).collect();
        let refreshes = ran
            .iter()
            .filter(|o| {
                matches!(
                    o,
                    ExecutionOutcome::Ran {
                        kind: JobKind::ModelRefresh,
                        ..
                    }
                )
            })
            .count();
        assert_eq!(refreshes, 1, "{ran:?}");
        // Queuing the same slot again does nothing.
        assert!(one.queue_due_schedules().await.unwrap().is_empty());
        let jobs = one
            .list_jobs(&operator(), None, &tenure_app::PageRequest::default())
            .await
            .unwrap()
            .items;
        let refresh = jobs
            .iter()
            .find(|j| j.kind == JobKind::ModelRefresh && j.status == JobStatus::Done)
            .unwrap_or_else(|| panic!("the refresh is done: {jobs:?}"));
        let (_, runs) = one.job(&operator(), refresh.id).await.unwrap();
        assert_eq!(runs.len(), 1);
        assert_eq!(runs[0].outcome, RunOutcome::Succeeded);
        let detail: serde_json::Value =
            serde_json::from_str(runs[0].detail.as_deref().unwrap()).unwrap();
        assert_eq!(detail["customers"], 40, "{detail}");
        // The refresh stored predictions.
        let (c, p) = one
            .get_customer(&operator(), tenure_domain::ids::CustomerId(1))
            .await
            .unwrap();
        assert!(p.is_some(), "customer {} has a prediction", c.id);
    }
}

#[tokio::test]
async fn a_failing_job_is_retried_with_backoff_then_given_up() {
    for db in TestDb::all().await {
        let app = app_on(&db).await;
        let me = operator();
        let job = app
            .queue_job(&me, JobKind::RecommendationsBuild)
            .await
            .unwrap()
            .expect("queued");
        // The job's table is gone: every run fails.
        let pool = db.raw_pool().await;
        sqlx::query("DROP TABLE product_associations")
            .execute(&pool)
            .await
            .unwrap();
        let worker = Worker::new(app.clone(), "test");
        let mut outcomes = Vec::new();
        for _ in 0..5 {
            match worker.try_execute_task().await.unwrap() {
                ExecutionOutcome::Ran { outcome, .. } => outcomes.push(outcome),
                ExecutionOutcome::EmptyQueue => panic!("the job was not due"),
            }
            let (j, _) = app.job(&me, job).await.unwrap();
            if j.status == JobStatus::Queued {
                let wait = j.run_at - chrono::Utc::now();
                assert!(
                    wait > chrono::Duration::seconds(20),
                    "a failed job waits before its next attempt ({wait})"
                );
                assert_eq!(
                    worker.try_execute_task().await.unwrap(),
                    ExecutionOutcome::EmptyQueue,
                    "not due during its backoff"
                );
                // Let the backoff pass.
                sqlx::query("UPDATE jobs SET run_at = $1 WHERE id = $2")
                    .bind(chrono::Utc::now().timestamp_micros() - 1)
                    .bind(job.0)
                    .execute(&pool)
                    .await
                    .unwrap();
            }
        }
        assert_eq!(
            outcomes,
            [
                RunOutcome::Retrying,
                RunOutcome::Retrying,
                RunOutcome::Retrying,
                RunOutcome::Retrying,
                RunOutcome::GaveUp
            ]
        );
        let (j, runs) = app.job(&me, job).await.unwrap();
        assert_eq!(j.status, JobStatus::Failed);
        assert_eq!(j.attempts, 5);
        assert!(
            j.last_error
                .as_deref()
                .unwrap_or("")
                .contains("product_associations"),
            "{j:?}"
        );
        assert_eq!(runs.len(), 5);
        assert!(runs.iter().all(|r| r.error.is_some()));
        // Given up, the same work can be queued again.
        assert!(
            app.queue_job(&me, JobKind::RecommendationsBuild)
                .await
                .unwrap()
                .is_some()
        );
        pool.close().await;
    }
}

#[tokio::test]
async fn a_job_whose_worker_died_is_taken_over_when_its_lease_runs_out() {
    for db in TestDb::all().await {
        let app = app_on(&db).await;
        let me = operator();
        let job = app
            .queue_job(&me, JobKind::DuplicatesRebuild)
            .await
            .unwrap()
            .unwrap();
        // A worker claims it and dies: its claim is the only trace.
        let pool = db.raw_pool().await;
        sqlx::query(
            "UPDATE jobs SET status = 'running', locked_by = 'dead', locked_until = $1, attempts = 1 WHERE id = $2",
        )
        .bind((chrono::Utc::now() + chrono::Duration::minutes(5)).timestamp_micros())
        .bind(job.0)
        .execute(&pool)
        .await
        .unwrap();
        let worker = Worker::new(app.clone(), "alive");
        assert_eq!(
            worker.try_execute_task().await.unwrap(),
            ExecutionOutcome::EmptyQueue,
            "a job under a live lease is left alone"
        );
        sqlx::query("UPDATE jobs SET locked_until = $1 WHERE id = $2")
            .bind(chrono::Utc::now().timestamp_micros() - 1)
            .bind(job.0)
            .execute(&pool)
            .await
            .unwrap();
        assert!(matches!(
            worker.try_execute_task().await.unwrap(),
            ExecutionOutcome::Ran {
                outcome: RunOutcome::Succeeded,
                ..
            }
        ));
        let (j, runs) = app.job(&me, job).await.unwrap();
        assert_eq!((j.status, j.attempts), (JobStatus::Done, 2));
        assert_eq!(runs.len(), 1);
        assert!(runs[0].worker.starts_with("alive:"));
        pool.close().await;
    }
}

#[tokio::test]
async fn the_worker_command_runs_what_is_due_and_exits() {
    for db in TestDb::all().await {
        some_purchases(&db).await;
        let out = crate::ok(&crate::tenure(
            &db,
            &["jobs", "queue", "recommendations_build"],
        ));
        assert!(out.starts_with("queued job"), "{out}");
        let out = crate::ok(&crate::tenure(&db, &["worker", "--until-idle"]));
        // The queued job and today's model refresh, analytics refresh, loyalty expiry, tier
        // evaluation, retention, SLA scan and the hour's look at the scheduled journeys.
        assert!(out.contains("ran 8 jobs"), "{out}");
        let out = crate::ok(&crate::tenure(&db, &["worker", "--until-idle"]));
        assert!(
            out.contains("ran 0 jobs"),
            "the daily slot ran already: {out}"
        );
        let listed = crate::ok(&crate::tenure(&db, &["jobs", "list"]));
        assert!(
            listed.contains("model_refresh") && listed.contains("done"),
            "{listed}"
        );
    }
}
