//! Life-cycle stages, segments and the retention reports: RFM and cohorts checked customer
//! by customer and cell by cell against a computation from the raw orders, stage moves
//! under a controlled clock, segment membership kept by writes, on both databases.

use std::collections::{BTreeMap, HashMap};

use chrono::{DateTime, Datelike, Duration, NaiveDate, Utc};
use serde_json::{Value, json};
use sqlx::Row;
use tenure_app::lifecycle::LifecycleEdit;
use tenure_app::segments::SegmentDraft;
use tenure_app::{App, AppError, AppOptions, Clock};
use tenure_domain::ids::CustomerId;
use tenure_domain::lifecycle::{LossReason, Stage, TransitionReason};
use tenure_testkit::{TestApp, TestDb, operator, spawn_app_with};

fn csv_rows(text: &str) -> Vec<Vec<String>> {
    text.lines()
        .map(|l| l.split(',').map(str::to_owned).collect())
        .collect()
}

/// The score rule, written the slow way: 1 + ⌊5·k/n⌋ with k the number of strictly worse
/// values.
fn slow_scores(values: &[i64], higher_is_better: bool) -> Vec<u8> {
    let n = values.len();
    values
        .iter()
        .map(|v| {
            let worse = values
                .iter()
                .filter(|w| if higher_is_better { *w < v } else { *w > v })
                .count();
            (1 + 5 * worse / n) as u8
        })
        .collect()
}

/// The named segment of an R score and (F + M)/2 rounded up, from the documented grid.
fn grid_segment(r: u8, f: u8, m: u8) -> &'static str {
    let fm = (f + m).div_ceil(2);
    match (r, fm) {
        (4..=5, 4..=5) => "champions",
        (4..=5, 3) | (3, 3..=5) => "loyal",
        (4..=5, 2) => "potential_loyalists",
        (5, 1) => "new",
        (4, 1) => "promising",
        (3, 2) => "need_attention",
        (3, 1) => "about_to_sleep",
        (2, 3..=5) | (1, 3) => "at_risk",
        (2, 1..=2) => "hibernating",
        (1, 4..=5) => "cant_lose_them",
        _ => "lost",
    }
}

#[tokio::test]
async fn rfm_and_cohorts_agree_with_the_raw_orders_customer_by_customer() {
    for db in TestDb::all().await {
        crate::ok(&crate::tenure(&db, &["demo", "--customers", "300"]));
        let as_of = Utc::now().date_naive();
        let day = |t: i64| DateTime::from_timestamp_micros(t).unwrap().date_naive();
        // The raw orders, read past the application.
        let pool = db.raw_pool().await;
        let rows = sqlx::query(
            "SELECT c.external_id, o.occurred_at, o.total_minor, o.currency FROM orders o \
             JOIN customers c ON c.id = o.customer_id WHERE o.status = 'completed'",
        )
        .fetch_all(&pool)
        .await
        .unwrap();
        let mut by: BTreeMap<String, Vec<(NaiveDate, i64)>> = BTreeMap::new();
        for r in &rows {
            let currency: String = r.get("currency");
            let value = if currency == "USD" {
                r.get::<i64, _>("total_minor")
            } else {
                0
            };
            by.entry(r.get("external_id"))
                .or_default()
                .push((day(r.get("occurred_at")), value));
        }
        pool.close().await;

        let keys: Vec<&String> = by.keys().collect();
        let recency: Vec<i64> = keys
            .iter()
            .map(|k| (as_of - by[*k].iter().map(|(d, _)| *d).max().unwrap()).num_days())
            .collect();
        let frequency: Vec<i64> = keys.iter().map(|k| by[*k].len() as i64).collect();
        let monetary: Vec<i64> = keys
            .iter()
            .map(|k| by[*k].iter().map(|(_, v)| v).sum())
            .collect();
        let (r, f, m) = (
            slow_scores(&recency, false),
            slow_scores(&frequency, true),
            slow_scores(&monetary, true),
        );
        let out = crate::ok(&crate::tenure(
            &db,
            &["analytics", "rfm", "--format", "csv"],
        ));
        let table = csv_rows(&out);
        assert_eq!(
            table[0].join(","),
            "customer_external_id,recency_days,frequency,monetary,r,f,m,segment"
        );
        let got: HashMap<&str, &Vec<String>> = table[1..]
            .iter()
            .map(|row| (row[0].as_str(), row))
            .collect();
        assert_eq!(got.len(), keys.len(), "one row per buyer");
        for (k, key) in keys.iter().enumerate() {
            let row = got[key.as_str()];
            let want = [
                key.to_string(),
                recency[k].to_string(),
                frequency[k].to_string(),
                format!("{:.2}", monetary[k] as f64 / 100.0),
                r[k].to_string(),
                f[k].to_string(),
                m[k].to_string(),
                grid_segment(r[k], f[k], m[k]).to_owned(),
            ];
            assert_eq!(row.as_slice(), want.as_slice(), "customer {key}");
        }

        // Cohorts: acquisition month, months since, size, buyers that month.
        let month = |d: NaiveDate| d.year() * 12 + d.month0() as i32;
        let mut size: BTreeMap<i32, u64> = BTreeMap::new();
        let mut active: BTreeMap<(i32, i32), u64> = BTreeMap::new();
        for orders in by.values() {
            let first = month(orders.iter().map(|(d, _)| *d).min().unwrap());
            *size.entry(first).or_default() += 1;
            let mut months: Vec<i32> = orders.iter().map(|(d, _)| month(*d)).collect();
            months.sort_unstable();
            months.dedup();
            for mo in months {
                *active.entry((first, mo - first)).or_default() += 1;
            }
        }
        let last = month(as_of);
        let mut want = vec!["cohort,period,size,active,retention".to_owned()];
        for (cohort, n) in &size {
            for p in 0..=(last - cohort) {
                let a = active.get(&(*cohort, p)).copied().unwrap_or(0);
                want.push(format!(
                    "{:04}-{:02},{p},{n},{a},{:.6}",
                    cohort / 12,
                    cohort % 12 + 1,
                    a as f64 / *n as f64
                ));
            }
        }
        let out = crate::ok(&crate::tenure(
            &db,
            &[
                "analytics",
                "cohorts",
                "--format",
                "csv",
                "--as-of",
                &as_of.to_string(),
            ],
        ));
        assert_eq!(out.lines().collect::<Vec<_>>(), want, "cell by cell");

        // The refresh stores the same numbers the commands compute.
        let refreshed = crate::ok(&crate::tenure(
            &db,
            &["analytics", "refresh", "--format", "json"],
        ));
        let summary: Value = serde_json::from_str(&refreshed).unwrap();
        assert_eq!(summary["buyers"], keys.len());
        let stages: u64 = summary["stages"]
            .as_object()
            .unwrap()
            .values()
            .map(|v| v.as_u64().unwrap())
            .sum();
        assert_eq!(stages, 300, "every customer has a stage");
        let stored = crate::ok(&crate::tenure(
            &db,
            &["analytics", "cohorts", "--format", "csv"],
        ));
        assert_eq!(
            stored.lines().collect::<Vec<_>>(),
            want,
            "the stored matrix"
        );
        let pareto: Value = serde_json::from_str(&crate::ok(&crate::tenure(
            &db,
            &["analytics", "pareto", "--format", "json"],
        )))
        .unwrap();
        let mut spend: Vec<i64> = monetary.clone();
        spend.sort_unstable_by(|a, b| b.cmp(a));
        let top = spend.len().div_ceil(5);
        let share = spend[..top].iter().sum::<i64>() as f64 / spend.iter().sum::<i64>() as f64;
        assert!((pareto["top20_share"].as_f64().unwrap() - share).abs() < 1e-9);
        let g = pareto["gini"].as_f64().unwrap();
        assert!(g > 0.2 && g < 0.9, "a realistic concentration: {g}");
        let retention = crate::ok(&crate::tenure(&db, &["analytics", "retention"]));
        assert!(retention.contains("yearly retention: "), "{retention}");
    }
}

/// A server whose clock stands still at `t` until the test moves it.
pub(crate) async fn app_at(db: TestDb, clock: &Clock) -> TestApp {
    let clock = clock.clone();
    spawn_app_with(
        db,
        move |s| {
            App::builder(s)
                .options(AppOptions {
                    clock,
                    ..AppOptions::default()
                })
                .build()
        },
        tenure_http::auth::TOKEN_TTL,
    )
    .await
}

async fn order(app: &TestApp, customer: i64, at: DateTime<Utc>) {
    let (status, o) = app
        .post_json(
            "/api/v1/orders",
            json!({"customer_id": customer, "occurred_at": at.to_rfc3339(), "total_minor": 12_000}),
        )
        .await;
    assert_eq!(status, 201, "{o}");
}

async fn stage_of(
    app: &TestApp,
    id: i64,
) -> (Stage, Vec<(Option<Stage>, Stage, TransitionReason)>) {
    let l = app
        .app
        .customer_lifecycle(&operator(), CustomerId(id))
        .await
        .unwrap();
    let mut moves: Vec<_> = l.history.iter().map(|t| (t.from, t.to, t.reason)).collect();
    moves.reverse();
    (l.record.stage, moves)
}

#[tokio::test]
async fn stages_move_with_purchases_and_with_time_alone() {
    for db in TestDb::all().await {
        // Early enough that every order stays in the past of the real clock too.
        let t0: DateTime<Utc> = "2025-06-02T10:00:00Z".parse().unwrap();
        let clock = Clock::fixed(t0);
        let app = app_at(db, &clock).await;
        let me = operator();
        let (status, c) = app
            .post_json("/api/v1/customers", json!({"name": "Lin Mei"}))
            .await;
        assert_eq!(status, 201, "{c}");
        let id = c["id"].as_i64().unwrap();
        assert_eq!(stage_of(&app, id).await.0, Stage::Potential);

        // Qualified by money, authority and need: a prospect.
        let edit = LifecycleEdit {
            money: Some(true),
            authority: Some(true),
            need: Some(true),
            ..LifecycleEdit::default()
        };
        app.app
            .edit_lifecycle(&me, CustomerId(id), edit)
            .await
            .unwrap();
        assert_eq!(stage_of(&app, id).await.0, Stage::Prospect);

        // The first purchase makes a new customer inside the order's own write.
        order(&app, id, t0).await;
        assert_eq!(stage_of(&app, id).await.0, Stage::New);
        clock.set(t0 + Duration::days(3));
        let (status, _) = app
            .post_json(
                "/api/v1/interactions",
                json!({"customer_id": id, "channel": "phone", "direction": "inbound",
                       "kind": "complaint", "subject": "late delivery",
                       "occurred_at": (t0 + Duration::days(3)).to_rfc3339()}),
            )
            .await;
        assert_eq!(status, 201);

        // Time alone: the scheduled refresh moves the customer on.
        for (days, want) in [
            (100, Stage::Active),
            (200, Stage::AtRisk),
            (400, Stage::Churned),
        ] {
            clock.set(t0 + Duration::days(days));
            app.app.refresh_analytics(&me, None).await.unwrap();
            assert_eq!(stage_of(&app, id).await.0, want, "after {days} days");
        }
        let lost = app
            .app
            .customer_lifecycle(&me, CustomerId(id))
            .await
            .unwrap();
        assert_eq!(
            lost.record.loss_reason,
            Some(LossReason::PoorService),
            "inferred from the complaint before they went silent"
        );
        // Staff know better.
        app.app
            .edit_lifecycle(
                &me,
                CustomerId(id),
                LifecycleEdit {
                    loss_reason: Some(LossReason::Moved),
                    ..LifecycleEdit::default()
                },
            )
            .await
            .unwrap();
        let report = app
            .app
            .stage_report(&me, t0, t0 + Duration::days(500))
            .await
            .unwrap();
        assert_eq!(report.loss_reasons, vec![(Some(LossReason::Moved), 1)]);

        // An order brings the customer back at once, without a refresh.
        let back = t0 + Duration::days(401);
        clock.set(back);
        order(&app, id, back).await;
        let (stage, moves) = stage_of(&app, id).await;
        assert_eq!(stage, Stage::WonBack);
        assert_eq!(
            moves,
            vec![
                (None, Stage::Potential, TransitionReason::NoPurchase),
                (
                    Some(Stage::Potential),
                    Stage::Prospect,
                    TransitionReason::Qualified
                ),
                (
                    Some(Stage::Prospect),
                    Stage::New,
                    TransitionReason::FirstPurchase
                ),
                (
                    Some(Stage::New),
                    Stage::Active,
                    TransitionReason::RepeatPurchase
                ),
                (
                    Some(Stage::Active),
                    Stage::AtRisk,
                    TransitionReason::Recency
                ),
                (
                    Some(Stage::AtRisk),
                    Stage::Churned,
                    TransitionReason::Lapsed
                ),
                (
                    Some(Stage::Churned),
                    Stage::WonBack,
                    TransitionReason::Returned
                ),
            ]
        );
        let flows = app
            .app
            .stage_report(&me, t0, back + Duration::seconds(1))
            .await
            .unwrap()
            .flows;
        assert!(
            flows.contains(&(Some(Stage::Churned), Stage::WonBack, 1)),
            "{flows:?}"
        );

        // A manual stage wins over the rule until it is removed.
        app.app
            .edit_lifecycle(
                &me,
                CustomerId(id),
                LifecycleEdit {
                    override_stage: Some(Some(Stage::Loyal)),
                    note: Some("our oldest client".into()),
                    ..LifecycleEdit::default()
                },
            )
            .await
            .unwrap();
        assert_eq!(stage_of(&app, id).await.0, Stage::Loyal);
        app.app.refresh_analytics(&me, None).await.unwrap();
        assert_eq!(
            stage_of(&app, id).await.0,
            Stage::Loyal,
            "the refresh keeps it"
        );
        app.app
            .edit_lifecycle(
                &me,
                CustomerId(id),
                LifecycleEdit {
                    override_stage: Some(None),
                    ..LifecycleEdit::default()
                },
            )
            .await
            .unwrap();
        let (stage, moves) = stage_of(&app, id).await;
        assert_eq!(stage, Stage::WonBack);
        assert_eq!(moves.last().unwrap().2, TransitionReason::OverrideCleared);
    }
}

#[tokio::test]
async fn prospects_count_contacts_and_park_at_the_cap() {
    for db in TestDb::all().await {
        let clock = Clock::fixed("2026-03-01T09:00:00Z".parse().unwrap());
        let app = app_at(db, &clock).await;
        let (_, c) = app
            .post_json("/api/v1/customers", json!({"name": "Acme Ltd"}))
            .await;
        let id = c["id"].as_i64().unwrap();
        for k in 0..5 {
            let (status, _) = app
                .post_json(
                    "/api/v1/interactions",
                    json!({"customer_id": id, "channel": "phone", "direction": "outbound",
                           "kind": "call", "buying_signal": k == 1,
                           "occurred_at": format!("2026-02-0{}T10:00:00Z", k + 1)}),
                )
                .await;
            assert_eq!(status, 201);
        }
        let l = app
            .app
            .customer_lifecycle(&operator(), CustomerId(id))
            .await
            .unwrap();
        assert_eq!(l.record.contact_attempts, 5);
        assert_eq!(l.record.buying_signals, 1);
        assert_eq!(
            l.record.attempts_since_progress, 3,
            "calls after the buying signal"
        );
        assert!(!l.record.parked);
        for k in 6..8 {
            app.post_json(
                "/api/v1/interactions",
                json!({"customer_id": id, "channel": "email", "direction": "outbound",
                       "kind": "message", "occurred_at": format!("2026-02-0{k}T10:00:00Z")}),
            )
            .await;
        }
        let l = app
            .app
            .customer_lifecycle(&operator(), CustomerId(id))
            .await
            .unwrap();
        assert!(
            l.record.parked,
            "five contacts without progress: {:?}",
            l.record
        );
    }
}

#[tokio::test]
async fn segments_are_kept_by_writes_and_refuse_what_cannot_be_worked_out() {
    for db in TestDb::all().await {
        let t0: DateTime<Utc> = "2026-01-05T10:00:00Z".parse().unwrap();
        let clock = Clock::fixed(t0 + Duration::days(250));
        let app = app_at(db, &clock).await;
        let me = operator();
        let mut ids = Vec::new();
        for (name, tags) in [
            ("A", json!(["vip"])),
            ("B", json!([])),
            ("C", json!(["staff"])),
        ] {
            let (_, c) = app
                .post_json("/api/v1/customers", json!({"name": name, "tags": tags}))
                .await;
            let id = c["id"].as_i64().unwrap();
            order(&app, id, t0).await;
            ids.push(id);
        }
        app.app.refresh_analytics(&me, None).await.unwrap();
        let draft = |name: &str, expression: &str| SegmentDraft {
            name: name.into(),
            description: String::new(),
            expression: expression.into(),
        };
        app.app
            .create_segment(&me, draft("staff", r#"tag = "staff""#))
            .await
            .unwrap();
        let vip = app
            .app
            .create_segment(
                &me,
                draft(
                    "valuable at risk",
                    r#"stage = "at_risk" and (spend > 100 or tag in ("vip", "b2b")) and not in_segment("staff")"#,
                ),
            )
            .await
            .unwrap();
        assert_eq!(vip.members, 2, "A and B, not staff C");
        let members = app
            .app
            .segment_members(&me, vip.id, tenure_app::PageRequest::first(10))
            .await
            .unwrap();
        let got: Vec<i64> = members.items.iter().map(|(c, _)| c.id.0).collect();
        assert_eq!(got, vec![ids[0], ids[1]]);

        // An order moves B out of "at risk", and so out of the segment, in the same write.
        order(&app, ids[1], clock.now()).await;
        let vip = app.app.segment(&me, vip.id).await.unwrap();
        assert_eq!(vip.members, 1);
        let history = app.app.segment_history(&me, vip.id, 10).await.unwrap();
        assert_eq!((history[0].customer.0, history[0].entered), (ids[1], false));

        // The live count and who would enter and leave.
        let p = app
            .app
            .preview_segment(&me, r#"stage = "at_risk""#, Some(vip.id))
            .await
            .unwrap();
        assert_eq!(p.count, 2);
        assert_eq!(p.entering.as_ref().unwrap().0, 1, "C would enter");
        assert_eq!(p.leaving.as_ref().unwrap().0, 0);

        // What cannot be worked out is refused with a message at its place.
        let bad = app
            .app
            .create_segment(&me, draft("broken", r#"stage = "at risk""#))
            .await
            .unwrap_err();
        let msg = bad.field_errors()[0].message.clone();
        assert!(
            msg.contains("column 9") && msg.contains("did you mean \"at_risk\""),
            "{msg}"
        );
        let staff = app
            .app
            .segments(&me)
            .await
            .unwrap()
            .into_iter()
            .find(|s| s.name == "staff")
            .unwrap();
        let cycle = app
            .app
            .update_segment(
                &me,
                staff.id,
                staff.version,
                draft("staff", r#"in_segment("valuable at risk")"#),
            )
            .await
            .unwrap_err();
        assert!(
            cycle.field_errors()[0].message.contains("circle"),
            "{:?}",
            cycle.field_errors()
        );
        assert!(matches!(
            app.app.delete_segment(&me, staff.id).await,
            Err(AppError::Conflict(_))
        ));
        let missing = app
            .app
            .preview_segment(&me, r#"in_segment("nobody")"#, None)
            .await
            .unwrap_err();
        assert!(
            missing.field_errors()[0]
                .message
                .contains("no segment named")
        );
    }
}

#[tokio::test]
async fn the_profit_simulator_refuses_numbers_too_large_to_total() {
    let app = tenure_testkit::spawn_app(tenure_testkit::TestDb::sqlite()).await;
    let (status, problem) = app
        .get_json("/api/v1/analytics/profit?customers=1.7976931348623157e308")
        .await;
    assert_eq!(status, 422, "{problem}");
    assert!(
        problem["errors"].to_string().contains("customers"),
        "{problem}"
    );
    let (status, answer) = app
        .get_json("/api/v1/analytics/profit?customers=1000&yearly_spend_per_customer=300")
        .await;
    assert_eq!(status, 200, "{answer}");
    assert!(answer["now"]["total_value"].is_number(), "{answer}");
}
