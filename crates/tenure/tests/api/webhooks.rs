//! Outgoing webhooks: a local receiver gets each event signed, once per delivery, and a
//! failed call is retried with backoff until it is answered; the delivery log keeps each
//! attempt.

use chrono::{DateTime, Utc};
use reqwest::Method;
use serde_json::{Value, json};
use tenure_app::jobs::Worker;
use tenure_app::{App, AppOptions, Clock};
use tenure_testkit::{TestDb, spawn_app_with};

type Calls = std::sync::Arc<std::sync::Mutex<Vec<(axum::http::HeaderMap, String)>>>;

/// A receiver: `/hook` answers the first call 500 and the rest 200; `/gone` answers 410.
async fn receiver() -> (u16, Calls) {
    let calls: Calls = Calls::default();
    let seen = calls.clone();
    let gone = calls.clone();
    let router = axum::Router::new()
        .route(
            "/hook",
            axum::routing::post(move |headers: axum::http::HeaderMap, body: String| {
                let seen = seen.clone();
                async move {
                    let mut c = seen.lock().unwrap();
                    c.push((headers, body));
                    if c.len() == 1 {
                        axum::http::StatusCode::INTERNAL_SERVER_ERROR
                    } else {
                        axum::http::StatusCode::NO_CONTENT
                    }
                }
            }),
        )
        .route(
            "/gone",
            axum::routing::post(move |headers: axum::http::HeaderMap, body: String| {
                let gone = gone.clone();
                async move {
                    gone.lock().unwrap().push((headers, body));
                    axum::http::StatusCode::GONE
                }
            }),
        );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        let _ = axum::serve(listener, router).await;
    });
    (port, calls)
}

fn at(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
}

#[tokio::test]
async fn events_reach_the_endpoint_signed_and_a_failed_call_is_retried() {
    use hmac::{KeyInit, Mac};
    let (port, calls) = receiver().await;
    for db in TestDb::all().await {
        calls.lock().unwrap().clear();
        let clock = Clock::fixed(at("2026-12-04T10:00:00Z"));
        let c2 = clock.clone();
        let app = spawn_app_with(
            db,
            move |s| {
                App::builder(s)
                    .options(AppOptions {
                        clock: c2,
                        ..AppOptions::default()
                    })
                    .build()
            },
            tenure_http::auth::TOKEN_TTL,
        )
        .await;
        let (status, hook) = app
            .post_json(
                "/api/v1/webhooks",
                json!({"url": format!("http://127.0.0.1:{port}/hook"), "description": "the data warehouse",
                       "events": ["customer.created", "ticket.created"]}),
            )
            .await;
        assert_eq!(status, 201, "{hook}");
        let secret = hook["secret"].as_str().unwrap().to_owned();
        let hook_id = hook["id"].as_i64().unwrap();
        // Switched off, and one that is gone: neither holds up the other.
        let (_, off) = app
            .post_json(
                "/api/v1/webhooks",
                json!({"url": format!("http://127.0.0.1:{port}/hook"), "events": ["customer.created"], "enabled": false}),
            )
            .await;
        let (_, gone) = app
            .post_json(
                "/api/v1/webhooks",
                json!({"url": format!("http://127.0.0.1:{port}/gone"), "events": ["ticket.created"]}),
            )
            .await;
        let (status, bad) = app
            .post_json(
                "/api/v1/webhooks",
                json!({"url": "ftp://example.com", "events": []}),
            )
            .await;
        assert_eq!(status, 422, "{bad}");

        let (_, c) = app
            .post_json(
                "/api/v1/customers",
                json!({"name": "Hook Customer", "email": "hook@example.com"}),
            )
            .await;
        let cid = c["id"].as_i64().unwrap();
        let (status, _) = app
            .post_json(
                "/api/v1/tickets",
                json!({"customer_id": cid, "subject": "Late parcel"}),
            )
            .await;
        assert_eq!(status, 201);

        let worker = Worker::new(app.app.clone(), "hooks");
        worker.run_until_idle().await.unwrap();
        let first: Vec<(axum::http::HeaderMap, String)> = calls.lock().unwrap().clone();
        // /hook: customer.created (answered 500) and ticket.created; /gone: ticket.created.
        assert_eq!(first.len(), 3, "{first:?}");
        for (headers, body) in &first {
            let doc: Value = serde_json::from_str(body).unwrap();
            assert_eq!(doc["data"]["customer_id"], cid);
            assert_eq!(headers["x-tenure-event"], doc["event"].as_str().unwrap());
            assert!(
                !body.contains("Hook Customer") && !body.contains("hook@"),
                "no personal data: {body}"
            );
            // customer.created goes only to /hook: signed with its secret.
            if doc["event"] == "customer.created" {
                let ts = headers["x-tenure-timestamp"].to_str().unwrap();
                let mut mac =
                    hmac::Hmac::<sha2::Sha256>::new_from_slice(secret.as_bytes()).unwrap();
                mac.update(format!("{ts}.{body}").as_bytes());
                let expected: String = mac
                    .finalize()
                    .into_bytes()
                    .iter()
                    .map(|b| format!("{b:02x}"))
                    .collect();
                assert_eq!(
                    headers["x-tenure-signature"].to_str().unwrap(),
                    format!("sha256={expected}"),
                    "signed with the endpoint's secret"
                );
            }
        }
        // The failed one is due again after its backoff, not before.
        worker.run_until_idle().await.unwrap();
        assert_eq!(calls.lock().unwrap().len(), 3);
        clock.set(at("2026-12-04T10:00:31Z"));
        worker.run_until_idle().await.unwrap();
        let all = calls.lock().unwrap().clone();
        assert_eq!(all.len(), 4);
        let retried = &all[3];
        assert_eq!(retried.0["x-tenure-event"], "customer.created");
        let first_try = first
            .iter()
            .find(|(h, _)| h["x-tenure-event"] == "customer.created")
            .unwrap();
        assert_eq!(
            retried.0["x-tenure-delivery"], first_try.0["x-tenure-delivery"],
            "a retry is the same delivery"
        );
        assert_eq!(retried.1, first_try.1, "with the same body");

        // The delivery log.
        let (status, log) = app
            .get_json(&format!("/api/v1/webhooks/{hook_id}/deliveries"))
            .await;
        assert_eq!(status, 200, "{log}");
        let items = log["items"].as_array().unwrap();
        assert_eq!(items.len(), 2);
        let created = items
            .iter()
            .find(|d| d["event"] == "customer.created")
            .unwrap();
        assert_eq!(created["status"], "delivered");
        assert_eq!(created["attempts"], 2);
        assert_eq!(created["response_code"], 204);
        let (_, gone_log) = app
            .get_json(&format!("/api/v1/webhooks/{}/deliveries", gone["id"]))
            .await;
        assert_eq!(gone_log["items"][0]["status"], "failed");
        assert_eq!(gone_log["items"][0]["attempts"], 1);
        assert_eq!(gone_log["items"][0]["response_code"], 410);
        let (_, off_log) = app
            .get_json(&format!("/api/v1/webhooks/{}/deliveries", off["id"]))
            .await;
        assert_eq!(
            off_log["items"].as_array().unwrap().len(),
            0,
            "a disabled endpoint hears nothing"
        );

        // Changing an endpoint is audited; its secret never is.
        let res = app
            .admin(Method::PUT, &format!("/api/v1/webhooks/{hook_id}"))
            .json(&json!({"url": format!("http://127.0.0.1:{port}/hook"), "events": ["customer.created"], "enabled": false}))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 200);
        let (_, audit) = app.get_json("/api/v1/audit?entity=webhook").await;
        let text = audit.to_string();
        assert!(
            text.contains("\"enabled\":{\"after\":0,\"before\":1}"),
            "{text}"
        );
        assert!(
            !text.contains(&secret),
            "the audit log never holds the secret"
        );
        let (_, listed) = app.get_json("/api/v1/webhooks").await;
        assert!(!listed.to_string().contains(&secret), "nor does the list");
    }
}

#[tokio::test]
async fn an_admin_adds_and_switches_off_an_endpoint_on_the_page() {
    use crate::web::signed_in;
    use tenure_domain::access::Role;
    let (port, calls) = receiver().await;
    let app = tenure_testkit::spawn_app(TestDb::sqlite()).await;
    let mut admin = signed_in(&app, Role::Admin).await;
    let empty = admin.get("/webhooks").await;
    assert_eq!(empty.status, 200, "{}", empty.body);
    assert!(empty.body.contains("No endpoint yet."));
    let refused = admin
        .submit(
            "/webhooks",
            "/webhooks",
            &[("url", "not a url"), ("events", "customer.created")],
        )
        .await;
    assert_eq!(refused.status, 422);
    assert!(
        refused.body.contains("must start with https:"),
        "{}",
        refused.body
    );
    assert!(
        refused.body.contains("value=\"not a url\""),
        "the input stays"
    );
    let url = format!("http://127.0.0.1:{port}/hook");
    let added = admin
        .submit(
            "/webhooks",
            "/webhooks",
            &[
                ("url", &url),
                ("description", "warehouse"),
                ("events", "customer.created"),
                ("events", "ticket.created"),
            ],
        )
        .await;
    assert_eq!(added.status, 200);
    assert!(added.body.contains("whsec_"), "the secret is shown once");
    let again = admin.get("/webhooks").await;
    assert!(!again.body.contains("whsec_"), "and only once");
    assert!(again.body.contains("customer.created") && again.body.contains("warehouse"));

    app.post_json("/api/v1/customers", json!({"name": "Page Hook"}))
        .await;
    Worker::new(app.app.clone(), "w")
        .run_until_idle()
        .await
        .unwrap();
    assert_eq!(calls.lock().unwrap().len(), 1);
    let log = admin.get("/webhooks").await;
    assert!(log.body.contains("Latest deliveries"));
    assert!(
        log.body.contains("500"),
        "the failed first answer shows: {}",
        log.body
    );
    assert!(log.body.contains("next try"));

    let id = app.app.webhooks(&tenure_testkit::operator()).await.unwrap()[0]
        .id
        .0;
    let off = admin
        .submit(
            "/webhooks",
            &format!("/webhooks/{id}"),
            &[("action", "toggle")],
        )
        .await;
    assert_eq!(off.status, 303);
    assert!(admin.get("/webhooks").await.body.contains("Switch on"));
    let mut manager = signed_in(&app, Role::Manager).await;
    assert_eq!(manager.get("/webhooks").await.status, 403);
}
