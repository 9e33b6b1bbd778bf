//! Service on both databases: SLA clocks in business hours across a weekend, a holiday
//! week and a make-up Saturday, paused while the ticket waits on the customer; reminders
//! never at night; the ticket workflow; single-use survey links; the closed loop (an
//! unhappy answer opens a ticket, a resolution schedules a call-back and a CSAT invitation);
//! SERVQUAL gaps; concurrent changes of one ticket; the follow-up rules.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use reqwest::Method;
use serde_json::{Value, json};
use tenure_app::{AppError, Clock};
use tenure_domain::survey::AnswerInput;
use tenure_testkit::{TestApp, TestDb, operator};

fn at(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
}

async fn customer(app: &TestApp, name: &str) -> i64 {
    let (s, c) = app
        .post_json(
            "/api/v1/customers",
            json!({"name": name, "locale": "zh-CN"}),
        )
        .await;
    assert_eq!(s, 201, "{c}");
    c["id"].as_i64().unwrap()
}

async fn send(app: &TestApp, method: Method, path: &str, body: Value) -> (u16, Value) {
    let res = app.admin(method, path).json(&body).send().await.unwrap();
    let s = res.status().as_u16();
    (s, res.json().await.unwrap_or(Value::Null))
}

/// A Shanghai business: weekdays 9–12 and 13–18, Golden Week 1–7 October off, Saturday
/// 10 October a make-up working day; normal tickets answered in 4 business hours and
/// resolved in 16.
async fn chinese_calendar(app: &TestApp) {
    let mut s = serde_json::to_value(tenure_domain::service::ServiceSettings::default()).unwrap();
    s["calendar"]["time_zone"] = json!("Asia/Shanghai");
    s["calendar"]["holidays"] = json!(
        (1..=7)
            .map(|d| json!({"date": format!("2026-10-{d:02}"), "name": "国庆节"}))
            .collect::<Vec<_>>()
    );
    s["calendar"]["workdays"] = json!([{"date": "2026-10-10", "name": "国庆节 补班"}]);
    for p in s["sla"].as_array_mut().unwrap() {
        if p["priority"] == "normal" {
            p["first_response_minutes"] = json!(240);
            p["resolution_minutes"] = json!(960);
        }
    }
    let (st, body) = send(app, Method::PUT, "/api/v1/service/settings", s).await;
    assert_eq!(st, 200, "{body}");
}

async fn ticket(app: &TestApp, id: i64) -> Value {
    let (s, t) = app.get_json(&format!("/api/v1/tickets/{id}")).await;
    assert_eq!(s, 200, "{t}");
    t
}

async fn scan(app: &TestApp) -> Value {
    let (s, r) = send(app, Method::POST, "/api/v1/service/sla-scan", json!({})).await;
    assert_eq!(s, 200, "{r}");
    r
}

#[tokio::test]
async fn sla_clocks_count_business_hours_across_a_weekend_a_holiday_and_a_make_up_day() {
    for db in TestDb::all().await {
        let clock = Clock::fixed(at("2026-09-30T16:00:00+08:00"));
        let app = crate::lifecycle::app_at(db, &clock).await;
        chinese_calendar(&app).await;
        let c = customer(&app, "王芳").await;
        let (s, t) = app
            .post_json(
                "/api/v1/tickets",
                json!({"customer_id": c, "subject": "水壶漏水", "description": "用了两天就漏水",
                       "category": "product_quality", "channel": "phone"}),
            )
            .await;
        assert_eq!(s, 201, "{t}");
        let id = t["id"].as_i64().unwrap();
        let t = ticket(&app, id).await;
        // 2 h on Wednesday, Golden Week off, 2 h on Thursday 8 October.
        assert_eq!(
            at(t["first_response"]["due"].as_str().unwrap()),
            at("2026-10-08T11:00:00+08:00")
        );
        // 2 h + 8 h on the 8th + 6 h on Friday the 9th.
        assert_eq!(
            at(t["resolution"]["due"].as_str().unwrap()),
            at("2026-10-09T16:00:00+08:00")
        );
        assert_eq!(t["status"], "new");
        assert_eq!(t["messages"][0]["kind"], "customer");

        // A holiday morning: nothing is due, nothing breaches.
        clock.set(at("2026-10-03T10:00:00+08:00"));
        let r = scan(&app).await;
        assert_eq!(r["first_response_breaches"], 0);
        assert_eq!(
            ticket(&app, id).await["first_response"]["minutes_left"],
            120,
            "two business hours left on the 8th"
        );

        // Waiting on the customer from Thursday 10:00 to the make-up Saturday 10:00: 16
        // business hours that do not count.
        clock.set(at("2026-10-08T10:00:00+08:00"));
        let (s, b) = send(
            &app,
            Method::PATCH,
            &format!("/api/v1/tickets/{id}"),
            json!({"status": "pending_customer"}),
        )
        .await;
        assert_eq!(s, 200, "{b}");
        clock.set(at("2026-10-09T17:00:00+08:00"));
        let r = scan(&app).await;
        assert_eq!(
            r["first_response_breaches"], 0,
            "a paused ticket does not breach"
        );
        assert!(
            ticket(&app, id).await["first_response"]["paused"]
                .as_bool()
                .unwrap()
        );
        clock.set(at("2026-10-10T10:00:00+08:00"));
        let (s, b) = send(
            &app,
            Method::POST,
            &format!("/api/v1/tickets/{id}/messages"),
            json!({"kind": "customer", "body": "照片在这里", "attachments": [{"name": "photo.jpg", "url": "https://files.example/photo.jpg"}]}),
        )
        .await;
        assert_eq!(s, 201, "{b}");
        let t = ticket(&app, id).await;
        assert_eq!(
            t["status"], "open",
            "the customer's answer resumes the ticket"
        );
        assert_eq!(
            at(t["first_response"]["due"].as_str().unwrap()),
            at("2026-10-10T11:00:00+08:00")
        );
        // 2 + 8 + 8 + 8 on Saturday, Sunday off, 6 on Monday the 12th.
        assert_eq!(
            at(t["resolution"]["due"].as_str().unwrap()),
            at("2026-10-12T16:00:00+08:00")
        );

        // The first reply is late: the scan marks the breach and reminds at once (it is a
        // working Saturday).
        clock.set(at("2026-10-10T11:30:00+08:00"));
        let r = scan(&app).await;
        assert_eq!(r["first_response_breaches"], 1, "{r}");
        assert!(r["reminders_sent"].as_u64().unwrap() >= 1, "{r}");
        assert_eq!(scan(&app).await["first_response_breaches"], 0, "once");

        // A task due on Saturday night is reminded on Monday at nine, not at midnight.
        clock.set(at("2026-10-10T22:00:00+08:00"));
        let (s, task) = app
            .post_json(
                "/api/v1/tasks",
                json!({"title": "回电话", "customer_id": c, "due_at": "2026-10-10T23:30:00+08:00"}),
            )
            .await;
        assert_eq!(s, 201, "{task}");
        assert_eq!(
            at(task["remind_at"].as_str().unwrap()),
            at("2026-10-12T09:00:00+08:00")
        );
        clock.set(at("2026-10-11T00:05:00+08:00"));
        assert_eq!(scan(&app).await["reminders_sent"], 0);
        clock.set(at("2026-10-12T09:01:00+08:00"));
        assert!(scan(&app).await["reminders_sent"].as_u64().unwrap() >= 1);
        let (_, task) = app.get_json(&format!("/api/v1/tasks/{}", task["id"])).await;
        assert_eq!(
            at(task["reminded_at"].as_str().unwrap()),
            at("2026-10-12T09:01:00+08:00")
        );

        // The reply and the resolution: 27 business hours open, 16 of them waiting.
        clock.set(at("2026-10-12T09:30:00+08:00"));
        let (s, _) = send(
            &app,
            Method::POST,
            &format!("/api/v1/tickets/{id}/messages"),
            json!({"kind": "reply", "body": "您好，我们马上为您换货。"}),
        )
        .await;
        assert_eq!(s, 201);
        clock.set(at("2026-10-12T10:00:00+08:00"));
        let (s, b) = send(
            &app,
            Method::PATCH,
            &format!("/api/v1/tickets/{id}"),
            json!({"status": "resolved"}),
        )
        .await;
        assert_eq!(s, 200, "{b}");
        let t = ticket(&app, id).await;
        assert_eq!(t["first_response_minutes"], 1590 - 960);
        assert_eq!(t["resolution_minutes"], 27 * 60 - 960);
        assert!(t["first_response"]["breached"].as_bool().unwrap());
        assert!(!t["resolution"]["breached"].as_bool().unwrap());
        // The closed loop: a call-back on the next business day and a CSAT invitation.
        let sources: Vec<&str> = t["tasks"]
            .as_array()
            .unwrap()
            .iter()
            .map(|x| x["source"].as_str().unwrap())
            .collect();
        assert!(sources.contains(&"callback"), "{sources:?}");
        assert!(sources.contains(&"escalation"), "{sources:?}");
        assert_eq!(t["invitations"].as_array().unwrap().len(), 1);
        assert!(
            t["invitations"][0]["url"]
                .as_str()
                .unwrap()
                .ends_with(t["invitations"][0]["token"].as_str().unwrap())
        );
        // The agents' view and the breach report count it.
        let (_, report) = app.get_json("/api/v1/analytics/service").await;
        let row = report["breaches"]
            .as_array()
            .unwrap()
            .iter()
            .find(|b| b["category"] == "product_quality")
            .unwrap_or_else(|| panic!("{report}"));
        assert_eq!(row["first_response_breaches"], 1);
        // The timeline shows the ticket and its tasks.
        let (_, tl) = app
            .get_json(&format!("/api/v1/customers/{c}/timeline"))
            .await;
        let kinds: Vec<&str> = tl["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|i| i["kind"].as_str().unwrap())
            .collect();
        assert!(
            kinds.contains(&"ticket") && kinds.contains(&"task"),
            "{kinds:?}"
        );
    }
}

#[tokio::test]
async fn the_workflow_refuses_an_illegal_move_by_name() {
    for db in TestDb::all().await {
        let clock = Clock::fixed(at("2026-06-01T10:00:00Z"));
        let app = crate::lifecycle::app_at(db, &clock).await;
        let c = customer(&app, "Ann Lee").await;
        let (_, t) = app
            .post_json(
                "/api/v1/tickets",
                json!({"customer_id": c, "subject": "Invoice twice", "category": "billing"}),
            )
            .await;
        let path = format!("/api/v1/tickets/{}", t["id"]);
        for status in ["open", "resolved", "closed"] {
            let (s, b) = send(&app, Method::PATCH, &path, json!({"status": status})).await;
            assert_eq!(s, 200, "{status}: {b}");
        }
        let (s, b) = send(
            &app,
            Method::PATCH,
            &path,
            json!({"status": "pending_customer"}),
        )
        .await;
        assert_eq!(s, 422, "{b}");
        let msg = b["errors"][0]["message"].as_str().unwrap();
        assert!(msg.contains("from closed to pending_customer"), "{msg}");
        assert_eq!(b["errors"][0]["field"], "status");
        let (s, b) = send(&app, Method::PATCH, &path, json!({"status": "reopened"})).await;
        assert_eq!(s, 200, "{b}");
        assert_eq!(b["status"], "reopened");
        assert!(b["resolved_at"].is_null());
        // A stale version is refused, the current one accepted.
        let (s, _) = send(
            &app,
            Method::PATCH,
            &path,
            json!({"priority": "high", "version": 1}),
        )
        .await;
        assert_eq!(s, 412);
        let v = b["version"].clone();
        let (s, b) = send(
            &app,
            Method::PATCH,
            &path,
            json!({"priority": "high", "version": v}),
        )
        .await;
        assert_eq!(s, 200, "{b}");
        // Bad input names its field.
        let (s, b) = app
            .post_json(
                "/api/v1/tickets",
                json!({"customer_id": c, "subject": "  ", "category": "weather"}),
            )
            .await;
        assert_eq!(s, 400, "an unknown category is not a ticket: {b}");
        let (s, b) = app
            .post_json(
                "/api/v1/tickets",
                json!({"customer_id": c, "subject": "  ", "category": "billing"}),
            )
            .await;
        assert_eq!(s, 422, "{b}");
        assert_eq!(b["errors"][0]["field"], "subject");
        let (s, b) = send(
            &app,
            Method::POST,
            &format!("{path}/messages"),
            json!({"kind": "note", "body": "x", "attachments": [{"name": "a", "url": "ftp://x"}]}),
        )
        .await;
        assert_eq!(s, 422, "{b}");
        assert_eq!(b["errors"][0]["field"], "attachments[0].url");
    }
}

async fn invite(app: &TestApp, survey: &Value, c: i64) -> String {
    let (s, i) = app
        .post_json(
            &format!("/api/v1/surveys/{survey}/invitations"),
            json!({"customer_id": c}),
        )
        .await;
    assert_eq!(s, 201, "{i}");
    i["token"].as_str().unwrap().to_owned()
}

async fn record(app: &TestApp, survey: &Value, c: i64, score: i64) -> (u16, Value) {
    app.post_json(
        &format!("/api/v1/surveys/{survey}/responses"),
        json!({"customer_id": c, "answers": [{"question": "score", "value": score},
               {"question": "comment", "text": "太慢了"}], "channel": "phone"}),
    )
    .await
}

fn nps(score: i64) -> Vec<AnswerInput> {
    vec![AnswerInput {
        question: "score".into(),
        value: Some(score),
        ..AnswerInput::default()
    }]
}

#[tokio::test]
async fn survey_links_answer_once_and_cannot_be_forged() {
    for db in TestDb::all().await {
        let clock = Clock::fixed(at("2026-06-01T10:00:00Z"));
        let app = crate::lifecycle::app_at(db, &clock).await;
        let c = customer(&app, "李明").await;
        let (s, survey) = app
            .post_json(
                "/api/v1/surveys",
                json!({"name": "NPS 2026", "kind": "nps"}),
            )
            .await;
        assert_eq!(s, 201, "{survey}");
        assert_eq!(survey["definition"]["questions"][0]["max"], 10);
        let token = invite(&app, &survey["id"], c).await;
        let page = app.app.public_survey(&token).await.unwrap();
        assert_eq!(page.locale, "zh-CN");
        // Reading the page changes nothing.
        assert!(app.app.public_survey(&token).await.is_ok());

        // Sixteen answers at once through one link: exactly one counts.
        let a = Arc::new(app.app.clone());
        let mut handles = Vec::new();
        for _ in 0..16 {
            let a = a.clone();
            let t = token.clone();
            handles.push(tokio::spawn(async move {
                a.answer_by_token(&t, nps(9), None).await
            }));
        }
        let mut ok = 0;
        for h in handles {
            match h.await.unwrap() {
                Ok(_) => ok += 1,
                Err(AppError::Conflict(m)) => assert!(m.contains("used already"), "{m}"),
                Err(e) => panic!("{e}"),
            }
        }
        assert_eq!(ok, 1);
        let (_, list) = app
            .get_json(&format!("/api/v1/surveys/{}/responses", survey["id"]))
            .await;
        assert_eq!(list["items"].as_array().unwrap().len(), 1);
        assert_eq!(list["items"][0]["nps_group"], "promoter");
        assert!(matches!(
            app.app.public_survey(&token).await,
            Err(AppError::Conflict(_))
        ));

        // Forged, altered and garbage tokens are not found.
        let mut altered = token.clone().into_bytes();
        altered[0] = if altered[0] == b'a' { b'b' } else { b'a' };
        for t in [
            String::from_utf8(altered).unwrap(),
            "0".repeat(40),
            "../../etc/passwd".into(),
            String::new(),
        ] {
            assert!(
                matches!(app.app.public_survey(&t).await, Err(AppError::NotFound(_))),
                "{t}"
            );
            assert!(matches!(
                app.app.answer_by_token(&t, nps(0), None).await,
                Err(AppError::NotFound(_))
            ));
        }

        // An invitation expires after its days.
        let late = invite(&app, &survey["id"], c).await;
        clock.set(at("2026-07-15T10:00:00Z"));
        match app.app.answer_by_token(&late, nps(10), None).await {
            Err(AppError::Conflict(m)) => assert!(m.contains("expired"), "{m}"),
            other => panic!("{other:?}"),
        }
        // A wrong answer is refused without using the link up.
        let fresh = invite(&app, &survey["id"], c).await;
        let e = app
            .app
            .answer_by_token(&fresh, nps(11), None)
            .await
            .unwrap_err();
        assert!(matches!(e, AppError::Invalid(_)), "{e}");
        assert!(app.app.answer_by_token(&fresh, nps(7), None).await.is_ok());
    }
}

#[tokio::test]
async fn an_unhappy_answer_opens_a_ticket_and_feeds_segments_and_points() {
    for db in TestDb::all().await {
        let clock = Clock::fixed(at("2026-06-01T10:00:00Z"));
        let app = crate::lifecycle::app_at(db, &clock).await;
        let (s, b) = send(
            &app,
            Method::PUT,
            "/api/v1/loyalty/program",
            json!({"enabled": true, "bonuses": {"welcome": 0, "birthday": 0, "referral": 0, "referred": 0, "survey_answered": 20}}),
        )
        .await;
        assert_eq!(s, 200, "{b}");
        let c = customer(&app, "Bo Chen").await;
        let happy = customer(&app, "Di Wu").await;
        let (_, survey) = app
            .post_json("/api/v1/surveys", json!({"name": "NPS", "kind": "nps"}))
            .await;
        let (_, csat) = app
            .post_json("/api/v1/surveys", json!({"name": "CSAT", "kind": "csat"}))
            .await;
        let (s, a) = record(&app, &survey["id"], c, 3).await;
        assert_eq!(s, 201, "{a}");
        assert!(a["bonus"].as_bool().unwrap());
        let opened = a["opened_ticket_id"]
            .as_i64()
            .expect("a detractor opens a ticket");
        let t = ticket(&app, opened).await;
        assert_eq!(t["priority"], "high");
        assert_eq!(t["response_id"], a["response_id"]);
        assert_eq!(t["messages"][0]["body"], "太慢了");
        let (_, a2) = record(&app, &survey["id"], happy, 10).await;
        assert!(a2["opened_ticket_id"].is_null());
        let (_, a3) = record(&app, &csat["id"], happy, 2).await;
        assert!(a3["opened_ticket_id"].is_i64(), "CSAT 2 opens a ticket");
        let (_, a4) = record(&app, &csat["id"], c, 4).await;
        assert!(a4["opened_ticket_id"].is_null());

        let (s, n) = app
            .post_json(
                "/api/v1/segments/count",
                json!({"expression": "nps_group = \"detractor\" and open_tickets >= 1"}),
            )
            .await;
        assert_eq!(s, 200, "{n}");
        assert_eq!(n["count"], 1, "{n}");
        let (_, n) = app
            .post_json("/api/v1/segments/count", json!({"expression": "csat <= 2"}))
            .await;
        assert_eq!(n["count"], 1, "{n}");
        let (_, f) = app
            .get_json(&format!("/api/v1/customers/{c}/feedback"))
            .await;
        assert_eq!(f["nps_group"], "detractor");
        assert_eq!(f["csat_score"], 4);
        let (_, m) = app
            .get_json(&format!("/api/v1/customers/{c}/loyalty"))
            .await;
        assert_eq!(m["balance"], 40, "two answers, 20 points each: {m}");
        let (_, r) = app.get_json("/api/v1/analytics/service").await;
        let month = &r["by_month"][0];
        assert_eq!(month["key"], "2026-06", "{r}");
        assert_eq!(month["nps"], 0.0, "one promoter, one detractor");
        assert_eq!(month["csat"], 3.0);
        assert_eq!(r["by_channel"][0]["key"], "phone");
    }
}

#[tokio::test]
async fn servqual_gaps_per_dimension_reach_the_report() {
    for db in TestDb::all().await {
        let clock = Clock::fixed(at("2026-06-01T10:00:00Z"));
        let app = crate::lifecycle::app_at(db, &clock).await;
        let c = customer(&app, "Eve Lin").await;
        let (s, survey) = app
            .post_json(
                "/api/v1/surveys",
                json!({"name": "SERVQUAL", "kind": "servqual"}),
            )
            .await;
        assert_eq!(s, 201, "{survey}");
        assert_eq!(
            survey["definition"]["questions"].as_array().unwrap().len(),
            22
        );
        let answers: Vec<Value> = tenure_domain::survey::servqual_items()
            .map(|(id, d)| {
                let p = if d == tenure_domain::survey::Dimension::Reliability {
                    3
                } else {
                    6
                };
                json!({"question": id, "value": p, "expectation": 7})
            })
            .collect();
        let (s, a) = app
            .post_json(
                &format!("/api/v1/surveys/{}/responses", survey["id"]),
                json!({"customer_id": c, "answers": answers, "importance":
                    {"tangibles": 10, "reliability": 50, "responsiveness": 20, "assurance": 10, "empathy": 10}}),
            )
            .await;
        assert_eq!(s, 201, "{a}");
        let (_, r) = app.get_json("/api/v1/analytics/service").await;
        assert_eq!(r["servqual_responses"], 1);
        let rel = &r["servqual_dimensions"][1];
        assert_eq!(rel["dimension"], "reliability");
        assert_eq!(rel["expectation"], 7.0);
        assert_eq!(rel["gap"], -4.0);
        // Unweighted: (−1 −4 −1 −1 −1) / 5; weighted: −0.1 −2 −0.2 −0.1 −0.1.
        assert!((r["servqual_gap"].as_f64().unwrap() + 1.6).abs() < 1e-9);
        assert!((r["servqual_weighted_gap"].as_f64().unwrap() + 2.5).abs() < 1e-9);
        assert_eq!(r["servqual_items"].as_array().unwrap().len(), 22);
        // Importance that does not add up is refused, naming the field.
        let (s, b) = app
            .post_json(
                &format!("/api/v1/surveys/{}/responses", survey["id"]),
                json!({"customer_id": c, "answers": [], "importance":
                    {"tangibles": 10, "reliability": 10, "responsiveness": 10, "assurance": 10, "empathy": 10}}),
            )
            .await;
        assert_eq!(s, 422);
        assert!(
            b["errors"]
                .as_array()
                .unwrap()
                .iter()
                .any(|e| e["field"] == "importance")
        );
    }
}

#[tokio::test]
async fn concurrent_changes_of_one_ticket_all_apply() {
    for db in TestDb::all().await {
        let clock = Clock::default();
        let app = Arc::new(crate::lifecycle::app_at(db, &clock).await);
        let c = customer(&app, "Fay Zhou").await;
        let (_, t) = app
            .post_json(
                "/api/v1/tickets",
                json!({"customer_id": c, "subject": "Late parcel", "category": "late_delivery"}),
            )
            .await;
        let id = t["id"].as_i64().unwrap();
        let mut handles = Vec::new();
        for i in 0..32 {
            let app = app.clone();
            handles.push(tokio::spawn(async move {
                let (path, body, method) = match i % 4 {
                    0 => (
                        format!("/api/v1/tickets/{id}/messages"),
                        json!({"kind": "reply", "body": format!("reply {i}")}),
                        Method::POST,
                    ),
                    1 => (
                        format!("/api/v1/tickets/{id}/messages"),
                        json!({"kind": "note", "body": format!("note {i}")}),
                        Method::POST,
                    ),
                    2 => (
                        format!("/api/v1/tickets/{id}"),
                        json!({"priority": if i % 8 == 2 { "high" } else { "urgent" }}),
                        Method::PATCH,
                    ),
                    _ => (
                        format!("/api/v1/tickets/{id}"),
                        json!({"subject": format!("Late parcel {i}")}),
                        Method::PATCH,
                    ),
                };
                send(&app, method, &path, body).await.0
            }));
        }
        for h in handles {
            let s = h.await.unwrap();
            assert!(s == 200 || s == 201, "{s}");
        }
        let t = ticket(&app, id).await;
        assert_eq!(t["messages"].as_array().unwrap().len(), 16);
        assert_eq!(t["status"], "open");
        assert!(t["first_response_minutes"].is_i64());
        // Every save moved the version on exactly once.
        let saves = 1 + 16 + 8 + 8;
        assert!(
            t["version"].as_i64().unwrap() <= saves && t["version"].as_i64().unwrap() >= 17,
            "{}",
            t["version"]
        );
        let history = t["history"].as_array().unwrap();
        assert_eq!(history.len(), 2, "new, then open once: {history:?}");
    }
}

#[tokio::test]
async fn follow_up_rules_make_their_tasks_once() {
    for db in TestDb::all().await {
        let clock = Clock::fixed(at("2026-06-01T10:00:00Z"));
        let app = crate::lifecycle::app_at(db, &clock).await;
        let mut s =
            serde_json::to_value(tenure_domain::service::ServiceSettings::default()).unwrap();
        s["thank_you_spend"] = json!(100);
        let (st, b) = send(&app, Method::PUT, "/api/v1/service/settings", s).await;
        assert_eq!(st, 200, "{b}");
        let buyer = customer(&app, "Gus Ma").await;
        for total in [6_000, 6_000, 6_000] {
            let (s, o) = app
                .post_json(
                    "/api/v1/orders",
                    json!({"customer_id": buyer, "occurred_at": "2026-05-30T10:00:00Z", "total_minor": total}),
                )
                .await;
            assert_eq!(s, 201, "{o}");
        }
        let (_, tasks) = app
            .get_json(&format!("/api/v1/tasks?customer_id={buyer}"))
            .await;
        let thanks: Vec<&Value> = tasks["items"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|t| t["source"] == "thank_you")
            .collect();
        assert_eq!(thanks.len(), 1, "{tasks}");

        let prospect = customer(&app, "Hana Xu").await;
        for _ in 0..2 {
            let (s, i) = app
                .post_json(
                    "/api/v1/interactions",
                    json!({"customer_id": prospect, "channel": "phone", "direction": "outbound"}),
                )
                .await;
            assert_eq!(s, 201, "{i}");
        }
        let (_, tasks) = app
            .get_json(&format!("/api/v1/tasks?customer_id={prospect}"))
            .await;
        let next: Vec<&Value> = tasks["items"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|t| t["source"] == "next_contact")
            .collect();
        assert_eq!(next.len(), 2, "{tasks}");
        assert_eq!(
            next.iter().filter(|t| t["status"] == "open").count(),
            1,
            "the second contact closes the first task"
        );

        // A task past due shows in the overdue report.
        let (s, _) = app
            .post_json(
                "/api/v1/tasks",
                json!({"title": "Send the catalogue", "due_at": "2026-05-20T10:00:00Z"}),
            )
            .await;
        assert_eq!(s, 201);
        let (_, overdue) = app.get_json("/api/v1/tasks/overdue").await;
        assert!(
            overdue
                .as_array()
                .unwrap()
                .iter()
                .any(|r| r["overdue"].as_i64().unwrap() >= 1),
            "{overdue}"
        );
    }
}

#[tokio::test]
async fn a_churned_customer_gets_their_complaint_as_the_loss_reason() {
    for db in TestDb::all().await {
        let clock = Clock::fixed(at("2024-01-10T10:00:00Z"));
        let app = crate::lifecycle::app_at(db, &clock).await;
        let c = customer(&app, "Ivy Qin").await;
        let (s, _) = app
            .post_json(
                "/api/v1/orders",
                json!({"customer_id": c, "occurred_at": "2024-01-05T10:00:00Z", "total_minor": 5000}),
            )
            .await;
        assert_eq!(s, 201);
        let (s, _) = app
            .post_json(
                "/api/v1/tickets",
                json!({"customer_id": c, "subject": "Charged twice", "category": "billing"}),
            )
            .await;
        assert_eq!(s, 201);
        clock.set(at("2026-06-01T10:00:00Z"));
        app.app.refresh_analytics(&operator(), None).await.unwrap();
        let (_, l) = app
            .get_json(&format!("/api/v1/customers/{c}/lifecycle"))
            .await;
        assert_eq!(l["stage"], "churned", "{l}");
        assert_eq!(l["loss_reason"], "price", "a billing complaint: {l}");
        let (_, r) = app.get_json("/api/v1/analytics/service").await;
        assert!(
            r["loss_reasons"]
                .as_array()
                .unwrap()
                .iter()
                .any(|x| x["loss_reason"] == "price" && x["complaint_category"] == "billing"),
            "{r}"
        );
    }
}

#[tokio::test]
async fn an_ical_calendar_adds_days_off_and_make_up_days() {
    for db in TestDb::all().await {
        let app = crate::lifecycle::app_at(db, &Clock::default()).await;
        let ics = "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//x//y//EN\r\n\
            BEGIN:VEVENT\r\nUID:1\r\nDTSTART;VALUE=DATE:20270206\r\nDTEND;VALUE=DATE:20270213\r\nSUMMARY:春节\r\nEND:VEVENT\r\n\
            BEGIN:VEVENT\r\nUID:2\r\nDTSTART;VALUE=DATE:20270214\r\nSUMMARY:春节 补班\r\nEND:VEVENT\r\n\
            END:VCALENDAR\r\n";
        let (s, r) = app
            .post_json("/api/v1/service/calendar", json!({"ics": ics}))
            .await;
        assert_eq!(s, 200, "{r}");
        assert_eq!(r, json!({"holidays": 7, "workdays": 1}));
        let (_, set) = app.get_json("/api/v1/service/settings").await;
        assert_eq!(set["calendar"]["workdays"][0]["date"], "2027-02-14");
        let (s, r) = app
            .post_json("/api/v1/service/calendar", json!({"ics": "not a calendar"}))
            .await;
        assert_eq!(s, 422, "{r}");
        assert_eq!(r["errors"][0]["field"], "file");
    }
}

/// The value of attribute `attr` of the first tag of `body` that contains `marker`.
fn href_after<'a>(body: &'a str, marker: &str) -> &'a str {
    let at = body
        .find(marker)
        .unwrap_or_else(|| panic!("{marker} in {body}"));
    let rest = &body[at + marker.len()..];
    &rest[..rest.find('"').unwrap()]
}

#[tokio::test]
async fn the_service_pages_run_the_loop_in_every_language() {
    use crate::web::signed_in;
    use tenure_domain::access::Role;
    for db in TestDb::all().await {
        let app = tenure_testkit::spawn_app(db).await;
        let c = customer(&app, "Lin Mei").await;
        let mut b = signed_in(&app, Role::Manager).await;
        let mut agent = signed_in(&app, Role::Agent).await;

        // A ticket from the queue's form: a wrong customer number is shown on the form.
        let bad = [
            ("customer_id", "abc"),
            ("subject", "Box arrived crushed"),
            ("description", ""),
            ("category", "packaging"),
            ("priority", "high"),
            ("channel", "phone"),
            ("assignee_id", ""),
        ];
        let p = b.get("/tickets?lang=en").await;
        assert_eq!(p.status, 200, "{}", p.body);
        let p = b.submit("/tickets?lang=en", "/tickets", &bad).await;
        assert_eq!(p.status, 422, "{}", p.body);
        assert!(
            p.body.contains("Enter the customer&#x27;s number.")
                || p.body.contains("Enter the customer's number."),
            "{}",
            p.body
        );
        assert!(
            p.body.contains("value=\"Box arrived crushed\""),
            "the input is kept"
        );
        let cs = c.to_string();
        let mut good = bad;
        good[0] = ("customer_id", &cs);
        let p = b.submit("/tickets", "/tickets", &good).await;
        assert_eq!(p.status, 303, "{}", p.body);
        let at = p.location().to_owned();
        assert!(at.starts_with("/tickets/"), "{at}");
        let p = b.get(&format!("{at}?lang=en")).await;
        assert_eq!(p.status, 200);
        assert!(p.body.contains("Box arrived crushed") && p.body.contains("Packaging"));
        assert!(
            p.body.contains("sla-running") || p.body.contains("sla-warn"),
            "the SLA clocks run: {}",
            p.body
        );

        // A reply stops the first-response clock; resolving invites a CSAT answer.
        let version = href_after(&p.body, "name=\"version\" value=\"").to_owned();
        let p = agent
            .submit(
                &at,
                &at,
                &[
                    ("action", "message"),
                    ("kind", "reply"),
                    ("body", "A new box is on its way."),
                    ("attachment_name", ""),
                    ("attachment_url", ""),
                ],
            )
            .await;
        assert_eq!(p.status, 303, "{}", p.body);
        // The reply opened the ticket.
        let p = agent.get(&format!("{at}?lang=en")).await;
        assert!(p.body.contains("<strong>Open</strong>"), "{}", p.body);
        // A stale form (the version it was read at) is refused, not applied.
        let p = agent
            .submit(
                &at,
                &at,
                &[
                    ("action", "move"),
                    ("status", "resolved"),
                    ("version", &version),
                ],
            )
            .await;
        assert_eq!(p.status, 409, "{}", p.body);
        let p = agent
            .submit(
                &at,
                &at,
                &[("action", "move"), ("status", "resolved"), ("version", "")],
            )
            .await;
        assert_eq!(p.status, 303, "{}", p.body);
        let p = agent.get(&format!("{at}?lang=zh-CN")).await;
        assert!(
            p.body.contains("已解决") && p.body.contains("A new box is on its way."),
            "{}",
            p.body
        );
        assert!(
            p.body.contains("投诉回访"),
            "the call-back task: {}",
            p.body
        );
        // Pages escape "/" in attributes.
        let link = href_after(&p.body, "<a href=\"&#x2f;s&#x2f;").to_owned();
        let token = link.clone();
        assert_eq!(token.len(), 40, "{link}");

        // The customer opens the rating link: it only pre-selects; nothing is recorded.
        let mut public = crate::web::Browser::new(&app);
        let p = public.get(&format!("/s/{token}?score=2")).await;
        assert_eq!(p.status, 200, "{}", p.body);
        assert!(p.body.contains("value=\"2\" checked"), "{}", p.body);
        let f = app
            .app
            .feedback(&operator(), tenure_domain::ids::CustomerId(c))
            .await
            .unwrap();
        assert_eq!(f.csat_score, None, "a followed link is no vote");
        let p = public
            .post(
                &format!("/s/{token}"),
                &[("q.score", "2"), ("q.comment", "still crushed")],
            )
            .await;
        assert_eq!(p.status, 200, "{}", p.body);
        assert!(
            p.body.contains("answer") || p.body.contains("谢谢") || p.body.contains("Thank"),
            "{}",
            p.body
        );
        let p = public
            .post(&format!("/s/{token}"), &[("q.score", "5")])
            .await;
        assert_eq!(p.status, 409, "a used link: {}", p.body);
        let forged = "0".repeat(40);
        assert_eq!(public.get(&format!("/s/{forged}")).await.status, 404);
        assert_eq!(public.get("/s/nope").await.status, 404);
        let f = app
            .app
            .feedback(&operator(), tenure_domain::ids::CustomerId(c))
            .await
            .unwrap();
        assert_eq!(f.csat_score, Some(2));
        assert_eq!(f.open_tickets, 1, "CSAT 2 opened a ticket");

        // The queue, the 360° panel, tasks, surveys and the report in every language.
        for lang in ["en", "zh-CN", "zh-TW"] {
            for path in [
                "/tickets",
                "/tickets?view=all",
                "/tickets?view=breached",
                "/tasks",
                "/tasks?view=overdue",
                "/surveys",
                "/service",
                &format!("/customers/{c}"),
            ] {
                let p = b
                    .get(&format!(
                        "{path}{}lang={lang}",
                        if path.contains('?') { "&" } else { "?" }
                    ))
                    .await;
                assert_eq!(p.status, 200, "{path} in {lang}: {}", p.body);
            }
        }
        let p = b.get(&format!("/customers/{c}?lang=en")).await;
        assert!(p.body.contains("h-service"));
        assert!(
            p.body.contains("<strong>2</strong> / 5"),
            "the CSAT on the 360° page: {}",
            p.body
        );

        // A task by hand, due in the business's time, then done.
        let mut settings = app.app.service_settings(&operator()).await.unwrap();
        settings.calendar.time_zone = "Asia/Shanghai".into();
        app.app
            .set_service_settings(&operator(), settings)
            .await
            .unwrap();
        let p = agent
            .submit(
                "/tasks",
                "/tasks",
                &[
                    ("title", "Send a sample"),
                    ("due_at", "2030-03-04T10:30"),
                    ("customer_id", &cs),
                    ("assignee_id", ""),
                    ("note", ""),
                ],
            )
            .await;
        assert_eq!(p.status, 303, "{}", p.body);
        let p = agent.get("/tasks?view=open&lang=en").await;
        assert!(p.body.contains("Send a sample"), "{}", p.body);
        assert!(
            p.body.contains("4 Mar 2030 10:30"),
            "shown in the business's time: {}",
            p.body
        );
        let task = app
            .app
            .tasks(&operator(), &Default::default(), &Default::default())
            .await
            .unwrap()
            .items
            .into_iter()
            .find(|t| t.title == "Send a sample")
            .unwrap();
        assert_eq!(
            task.due_at.to_rfc3339(),
            "2030-03-04T02:30:00+00:00",
            "10:30 in Shanghai"
        );
        let p = agent
            .submit(
                "/tasks",
                &format!("/tasks/{}", task.id.0),
                &[("status", "done"), ("back", "/tasks")],
            )
            .await;
        assert_eq!(p.status, 303, "{}", p.body);

        // An NPS survey from the page; staff record a detractor's answer on its page.
        let p = b
            .submit(
                "/surveys",
                "/surveys",
                &[("name", "After-sales NPS"), ("kind", "nps")],
            )
            .await;
        assert_eq!(p.status, 303, "{}", p.body);
        let survey = p.location().to_owned();
        let p = b
            .submit(
                &survey,
                &survey,
                &[
                    ("action", "record"),
                    ("customer_id", &cs),
                    ("channel", "phone"),
                    ("q.score", "11"),
                ],
            )
            .await;
        assert_eq!(p.status, 422, "11 is off the scale: {}", p.body);
        let p = b
            .submit(
                &survey,
                &survey,
                &[
                    ("action", "record"),
                    ("customer_id", &cs),
                    ("channel", "phone"),
                    ("q.score", "4"),
                    ("q.comment", "too slow"),
                ],
            )
            .await;
        assert_eq!(p.status, 200, "{}", p.body);
        assert!(
            p.body.contains("It opened ticket #"),
            "a detractor opens a ticket: {}",
            p.body
        );
        let p = b.get(&format!("{survey}?lang=en")).await;
        assert!(
            p.body.contains("too slow") && p.body.contains("Detractor"),
            "{}",
            p.body
        );
        let p = b
            .submit(
                &survey,
                &survey,
                &[("action", "invite"), ("customer_id", &cs)],
            )
            .await;
        assert!(
            p.body.contains("&#x2f;s&#x2f;"),
            "an invitation link: {}",
            p.body
        );
        // The builder rewords the question (the domain checks the definition).
        let p = b.get(&survey).await;
        assert!(p.body.contains("name=\"q0.text.zh-CN\""), "{}", p.body);
        let p = b
            .submit(
                &survey,
                &survey,
                &[
                    ("action", "build"),
                    ("name", "After-sales NPS"),
                    ("title.en", "Tell us"),
                    ("q0.id", "score"),
                    ("q0.kind", "scale"),
                    ("q0.min", "0"),
                    ("q0.max", "10"),
                    ("q0.required", "1"),
                    ("q0.text.en", "Would you recommend our repairs?"),
                    ("q0.options", ""),
                    ("q0.dimension", ""),
                ],
            )
            .await;
        assert_eq!(p.status, 303, "{}", p.body);
        let p = b.get(&format!("{survey}?lang=en")).await;
        assert!(
            p.body.contains("Would you recommend our repairs?"),
            "{}",
            p.body
        );

        // Settings: a bad day line is shown on the form; a good calendar is saved; iCal adds days.
        let settings: Vec<(&str, &str)> = vec![
            ("time_zone", "Asia/Shanghai"),
            ("week.mon", "09:00-12:00, 13:00-18:00"),
            ("week.tue", "09:00-18:00"),
            ("week.wed", "09:00-18:00"),
            ("week.thu", "09:00-18:00"),
            ("week.fri", "09:00-18:00"),
            ("week.sat", ""),
            ("week.sun", ""),
            ("holidays", "2026-10-01 国庆节\nsoon"),
            ("workdays", "2026-09-27 国庆调休"),
            ("workday_hours", "mon"),
            ("sla.urgent.first", "30"),
            ("sla.urgent.resolution", "240"),
            ("sla.high.first", "60"),
            ("sla.high.resolution", "480"),
            ("sla.normal.first", "240"),
            ("sla.normal.resolution", "1440"),
            ("sla.low.first", "480"),
            ("sla.low.resolution", "2880"),
            ("warn_before_minutes", "30"),
            ("callback_after_minutes", "240"),
            ("next_contact_days", "7"),
            ("thank_you_spend", "1000"),
            ("csat_after_resolution", "1"),
            ("nps_ticket_at_most", "6"),
            ("csat_ticket_at_most", "2"),
            ("invitation_days", "14"),
        ];
        let p = b
            .submit("/service?lang=en", "/service/settings", &settings)
            .await;
        assert_eq!(p.status, 422, "{}", p.body);
        assert!(p.body.contains("Line 2"), "{}", p.body);
        let mut settings = settings;
        settings[8] = ("holidays", "2026-10-01 国庆节");
        let p = b.submit("/service", "/service/settings", &settings).await;
        assert_eq!(p.status, 303, "{}", p.body);
        let s = app.app.service_settings(&operator()).await.unwrap();
        assert_eq!(s.invitation_days, 14);
        assert_eq!(s.calendar.workdays[0].name, "国庆调休");
        let ics = "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nBEGIN:VEVENT\r\nUID:a\r\nDTSTART;VALUE=DATE:20270211\r\nDTEND;VALUE=DATE:20270213\r\nSUMMARY:春节\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n";
        let p = b
            .upload_to(
                "/service?lang=en",
                "/service/calendar",
                &[],
                ("cn.ics", ics.as_bytes().to_vec()),
            )
            .await;
        assert_eq!(p.status, 200, "{}", p.body);
        assert!(p.body.contains("Added 2 days off"), "{}", p.body);
        let p = b
            .upload_to(
                "/service?lang=en",
                "/service/calendar",
                &[],
                ("x.ics", b"not a calendar".to_vec()),
            )
            .await;
        assert_eq!(p.status, 422, "{}", p.body);

        // An agent may not change the settings or the surveys.
        let p = agent
            .submit("/tickets", "/service/settings", &settings)
            .await;
        assert_eq!(p.status, 403);
        let p = agent
            .submit("/tickets", "/surveys", &[("name", "x"), ("kind", "csat")])
            .await;
        assert_eq!(p.status, 403);
    }
}

#[tokio::test]
async fn historical_tickets_and_answers_import_with_line_numbers_and_once() {
    for db in TestDb::all().await {
        let dir = tempfile::tempdir().unwrap();
        let customers = dir.path().join("customers.csv");
        std::fs::write(&customers, "external_id,name\nC1,Ada Wu\nC2,Bo Li\n").unwrap();
        crate::ok(&crate::tenure(
            &db,
            &["import", "customers", customers.to_str().unwrap()],
        ));
        let tickets = dir.path().join("tickets.csv");
        std::fs::write(
            &tickets,
            "external_id,customer_external_id,opened_at,subject,category,priority,status,first_response_at,resolved_at\n\
             T1,C1,2026-03-02T09:00:00Z,Box crushed,packaging,high,closed,2026-03-02T10:00:00Z,2026-03-03T09:00:00Z\n\
             T2,C9,2026-03-02T09:00:00Z,Who is this,other,normal,open,,\n\
             T3,C2,2026-03-02T09:00:00Z,Still waiting,late_delivery,urgent,open,,\n\
             T4,C2,yesterday,Bad date,weather,normal,open,,\n",
        )
        .unwrap();
        let out = crate::tenure(&db, &["import", "tickets", tickets.to_str().unwrap()]);
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(text.contains("2 imported"), "{text}");
        let errors = std::fs::read_to_string(dir.path().join("tickets.csv.errors.csv")).unwrap();
        assert!(errors.contains("3,customer_external_id"), "{errors}");
        assert!(
            errors.contains("5,opened_at") && errors.contains("5,category"),
            "{errors}"
        );
        // A second run stores nothing twice.
        let again = crate::tenure(&db, &["import", "tickets", tickets.to_str().unwrap()]);
        let again = format!(
            "{}{}",
            String::from_utf8_lossy(&again.stdout),
            String::from_utf8_lossy(&again.stderr)
        );
        assert!(again.contains("0 imported, 2 already present"), "{again}");

        let app = tenure_testkit::spawn_app(db).await;
        let listed = app
            .app
            .tickets(&operator(), &Default::default(), &Default::default())
            .await
            .unwrap()
            .items;
        assert_eq!(listed.len(), 2);
        let closed = listed
            .iter()
            .find(|t| t.ticket.subject == "Box crushed")
            .unwrap();
        assert_eq!(closed.ticket.status.as_str(), "closed");
        assert_eq!(closed.ticket.first_response_minutes, Some(60));
        let open = listed
            .iter()
            .find(|t| t.ticket.subject == "Still waiting")
            .unwrap();
        assert!(
            open.resolution.breached,
            "an urgent ticket open since March: {:?}",
            open.resolution
        );
        let (_, tasks) = app.get_json("/api/v1/tasks").await;
        assert_eq!(
            tasks["items"].as_array().unwrap().len(),
            0,
            "history makes no call-backs"
        );

        let (_, _) = app
            .post_json(
                "/api/v1/surveys",
                json!({"name": "NPS 2026", "kind": "nps"}),
            )
            .await;
        let answers = dir.path().join("answers.csv");
        std::fs::write(
            &answers,
            "external_id,customer_external_id,answered_at,survey,score,comment,channel\n\
             R1,C1,2026-04-01T12:00:00Z,NPS 2026,3,太慢了,phone\n\
             R2,C2,2026-04-01T12:00:00Z,NPS 2026,10,,\n\
             R3,C2,2026-04-01T12:00:00Z,NPS 2027,9,,\n\
             R4,C2,2026-04-01T12:00:00Z,NPS 2026,11,,\n",
        )
        .unwrap();
        let out = crate::tenure(
            &app.db,
            &["import", "survey-responses", answers.to_str().unwrap()],
        );
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(text.contains("2 imported"), "{text}");
        let errors = std::fs::read_to_string(dir.path().join("answers.csv.errors.csv")).unwrap();
        assert!(
            errors.contains("4,survey") && errors.contains("5,score"),
            "{errors}"
        );
        let (_, n) = app
            .post_json(
                "/api/v1/segments/count",
                json!({"expression": "nps_group = \"detractor\""}),
            )
            .await;
        assert_eq!(n["count"], 1, "{n}");
        let (_, open) = app.get_json("/api/v1/tickets?active=true").await;
        assert_eq!(
            open["items"].as_array().unwrap().len(),
            1,
            "a historical detractor opens no ticket"
        );
    }
}
