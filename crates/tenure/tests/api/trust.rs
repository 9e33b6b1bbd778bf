//! Trust: the audit log of every change with its values before and after, and privacy
//! requests — everything held about a customer handed out, and erased everywhere while
//! their totals stay.

use reqwest::Method;
use serde_json::{Value, json};
use tenure_domain::access::Role;
use tenure_testkit::{TestDb, operator, spawn_app};

async fn send(req: reqwest::RequestBuilder) -> (u16, Value) {
    let res = req.send().await.unwrap();
    let status = res.status().as_u16();
    let text = res.text().await.unwrap();
    (
        status,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}

#[tokio::test]
async fn the_audit_log_records_who_changed_which_fields_from_what_to_what() {
    for db in TestDb::all().await {
        let app = spawn_app(db).await;
        let (status, c) = send(
            app.as_role(Role::Manager, Method::POST, "/api/v1/customers")
                .json(&json!({"name": "Ada Lovelace", "email": "ada@example.com"})),
        )
        .await;
        assert_eq!(status, 201, "{c}");
        let id = c["id"].as_i64().unwrap();
        let started = chrono::Utc::now();
        let (status, _) = send(
            app.as_role(
                Role::Agent,
                Method::PATCH,
                &format!("/api/v1/customers/{id}"),
            )
            .json(&json!({"email": "ada@analytical.example", "region": "London"})),
        )
        .await;
        assert_eq!(status, 200);
        // A configuration change is audited with its values too.
        let (_, settings) = send(app.admin(Method::GET, "/api/v1/service/settings")).await;
        let mut changed = settings.clone();
        changed["warn_before_minutes"] =
            json!(settings["warn_before_minutes"].as_i64().unwrap() + 15);
        let (status, body) = send(
            app.as_role(Role::Manager, Method::PUT, "/api/v1/service/settings")
                .json(&changed),
        )
        .await;
        assert_eq!(status, 200, "{body}");

        let (status, log) = send(app.as_role(
            Role::Manager,
            Method::GET,
            &format!("/api/v1/audit?customer_id={id}"),
        ))
        .await;
        assert_eq!(status, 200, "{log}");
        let items = log["items"].as_array().unwrap();
        // Newest first: the agent's edit, then the manager's create.
        let edit = &items[0];
        assert_eq!(edit["operation"], "update", "{log}");
        assert_eq!(edit["entity"], "customer");
        assert_eq!(edit["actor"]["name"], "test agent");
        assert_eq!(edit["actor"]["kind"], "token");
        assert_eq!(edit["source"], "api");
        assert_eq!(
            edit["fields"]["email"],
            json!({"before": "ada@example.com", "after": "ada@analytical.example"})
        );
        assert_eq!(
            edit["fields"]["region"],
            json!({"before": null, "after": "London"})
        );
        assert!(
            edit["fields"].get("name").is_none(),
            "an unchanged field is not listed: {edit}"
        );
        let create = items
            .iter()
            .find(|e| e["operation"] == "create" && e["entity"] == "customer")
            .unwrap();
        assert_eq!(create["actor"]["name"], "test manager");
        assert_eq!(create["fields"]["name"]["after"], "Ada Lovelace");

        // By who acted, and by time.
        let (_, by_agent) = send(app.admin(Method::GET, "/api/v1/audit?user=test%20agent")).await;
        let by_agent = by_agent["items"].as_array().unwrap();
        assert!(!by_agent.is_empty());
        assert!(by_agent.iter().all(|e| e["actor"]["name"] == "test agent"));
        let since = started.to_rfc3339_opts(chrono::SecondsFormat::Micros, true);
        let (_, recent) = send(
            app.admin(Method::GET, "/api/v1/audit")
                .query(&[("since", &since)]),
        )
        .await;
        let recent = recent["items"].as_array().unwrap();
        assert!(
            recent
                .iter()
                .all(|e| e["operation"] != "create" || e["entity"] != "customer")
        );
        let settings_entry = recent
            .iter()
            .find(|e| e["entity"] == "settings")
            .unwrap_or_else(|| panic!("the settings change is in the log: {recent:?}"));
        assert_eq!(settings_entry["actor"]["name"], "test manager");
        assert!(
            settings_entry["fields"]["value"]["after"]
                .as_str()
                .is_some_and(|v| v.contains("warn_before_minutes")),
            "{settings_entry}"
        );

        // Pages, newest first, without repeats.
        let (_, first) = send(app.admin(Method::GET, "/api/v1/audit?limit=2")).await;
        let cursor = first["next_cursor"].as_str().unwrap().to_owned();
        let (_, second) = send(
            app.admin(Method::GET, "/api/v1/audit")
                .query(&[("limit", "2"), ("cursor", &cursor)]),
        )
        .await;
        let a = first["items"][1]["id"].as_i64().unwrap();
        let b = second["items"][0]["id"].as_i64().unwrap();
        assert!(b < a, "the second page goes on back in time");

        // Only who may read it.
        for role in [Role::Agent, Role::Analyst, Role::ReadOnly] {
            let (status, _) = send(app.as_role(role, Method::GET, "/api/v1/audit")).await;
            assert_eq!(status, 403, "{role}");
        }
    }
}

#[tokio::test]
async fn an_erased_customer_leaves_no_personal_data_while_their_totals_stay() {
    for db in TestDb::all().await {
        let sqlite = db.backend == tenure_store::Backend::Sqlite;
        let app = spawn_app(db).await;
        let (_, zeb) = app
            .post_json(
                "/api/v1/customers",
                json!({
                    "name": "Zebulon Quixotic", "external_id": "ZQ-1",
                    "email": "zebulon.q@nowhere.example", "phone": "+44 20 7946 0958",
                    "tags": ["zebulon-fan"], "birthday": "1970-05-04",
                    "consents": [{"channel": "email", "status": "granted", "source": "Zebulon's web form"}]
                }),
            )
            .await;
        let id = zeb["id"].as_i64().unwrap();
        let (_, dup) = app
            .post_json(
                "/api/v1/customers",
                json!({"name": "Zeb Quixotic", "external_id": "ZQ-2", "email": "zebulon.q@nowhere.example"}),
            )
            .await;
        let (status, _) = app
            .post_json(
                &format!("/api/v1/customers/{id}/merge"),
                json!({"duplicate_id": dup["id"]}),
            )
            .await;
        assert_eq!(status, 200);
        let (status, _) = send(
            app.admin(Method::PATCH, &format!("/api/v1/customers/{id}"))
                .json(&json!({"phone": "+44 20 7946 0959", "region": "Quixotic Hills"})),
        )
        .await;
        assert_eq!(status, 200);
        let (status, _) = app
            .post_json(
                "/api/v1/orders",
                json!({"customer_id": id, "external_id": "order-1", "occurred_at": "2026-03-01T10:00:00Z",
                       "lines": [{"description": "Zebulon's usual", "quantity": 2, "unit_price_minor": 450}]}),
            )
            .await;
        assert_eq!(status, 201);
        let (status, _) = app
            .post_json(
                "/api/v1/interactions",
                json!({"customer_id": id, "channel": "phone", "direction": "inbound",
                       "subject": "Zebulon called", "body": "Zebulon Quixotic, +44 20 7946 0958"}),
            )
            .await;
        assert_eq!(status, 201);
        let (status, _) = app
            .post_json(
                "/api/v1/tickets",
                json!({"customer_id": id, "subject": "Zebulon's kettle", "description": "Call Zebulon on 7946 0958"}),
            )
            .await;
        assert_eq!(status, 201);
        app.app
            .adjust_points(
                &operator(),
                tenure_domain::ids::CustomerId(id),
                75,
                "Goodwill for Zebulon",
                None,
            )
            .await
            .unwrap();
        let (_, before) = app.get_json(&format!("/api/v1/customers/{id}")).await;
        let (_, points_before) = app
            .get_json(&format!("/api/v1/customers/{id}/loyalty"))
            .await;

        // The export holds all of it, table by table.
        let (status, export) = send(app.as_role(
            Role::Manager,
            Method::GET,
            &format!("/api/v1/customers/{id}/export"),
        ))
        .await;
        assert_eq!(status, 200, "{export}");
        let tables: Vec<&str> = export["tables"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t["table"].as_str().unwrap())
            .collect();
        for t in [
            "customers",
            "orders",
            "order_lines",
            "interactions",
            "consent_events",
            "tickets",
            "ticket_messages",
            "loyalty_entries",
            "customer_merges",
            "change_log",
        ] {
            assert!(tables.contains(&t), "the export has {t}: {tables:?}");
        }
        assert!(export.to_string().contains("Zebulon's usual"));
        for role in [Role::Agent, Role::Analyst, Role::ReadOnly] {
            let (status, _) =
                send(app.as_role(role, Method::GET, &format!("/api/v1/customers/{id}/export")))
                    .await;
            assert_eq!(status, 403, "{role} may not export");
        }

        let pool = app.db.raw_pool().await;
        let schema = crate::core::tables(&pool, sqlite).await;
        let holding = |needle: &'static str| {
            let pool = pool.clone();
            let schema = schema.clone();
            async move {
                let mut found = Vec::new();
                for (t, cols) in &schema {
                    for c in cols {
                        let n: i64 = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
                            "SELECT COUNT(*) FROM {t} WHERE LOWER({c}) LIKE $1"
                        )))
                        .bind(format!("%{}%", needle.to_lowercase()))
                        .fetch_one(&pool)
                        .await
                        .unwrap();
                        if n > 0 {
                            found.push(format!("{t}.{c}"));
                        }
                    }
                }
                found
            }
        };
        assert!(
            holding("zebulon").await.len() > 8,
            "the check sees the data"
        );

        let (status, body) = send(app.as_role(
            Role::Manager,
            Method::POST,
            &format!("/api/v1/customers/{id}/erase"),
        ))
        .await;
        assert_eq!(status, 204, "{body}");

        for needle in ["zebulon", "quixotic", "ZQ-", "7946", "nowhere.example"] {
            assert_eq!(
                holding(needle).await,
                Vec::<String>::new(),
                "{needle} is still held"
            );
        }
        // The record stays, anonymous, with its totals; so do the points.
        let (status, after) = app.get_json(&format!("/api/v1/customers/{id}")).await;
        assert_eq!(status, 200);
        assert_eq!(after["name"], "");
        assert_eq!(after["email"], Value::Null);
        assert_eq!(after["stats"], before["stats"]);
        let (_, points_after) = app
            .get_json(&format!("/api/v1/customers/{id}/loyalty"))
            .await;
        assert_eq!(points_after["balance"], points_before["balance"]);
        // The audit log says who erased them, and keeps no value of theirs.
        let (_, log) = app
            .get_json(&format!("/api/v1/audit?customer_id={id}"))
            .await;
        let items = log["items"].as_array().unwrap();
        assert_eq!(items[0]["operation"], "erase", "{log}");
        assert_eq!(items[0]["actor"]["name"], "test manager");
        assert!(items.iter().any(|e| e["operation"] == "export"));
        // The merge record stays readable, and can still be undone (into an anonymous
        // record).
        let (status, merges) = app.get_json("/api/v1/merges").await;
        assert_eq!(status, 200, "{merges}");
        let merge = merges["items"][0]["id"].as_i64().unwrap();
        let (status, body) = app
            .post_json(&format!("/api/v1/merges/{merge}/undo"), json!({}))
            .await;
        assert_eq!(status, 200, "{body}");
        for needle in ["zebulon", "quixotic", "ZQ-", "nowhere.example"] {
            assert_eq!(
                holding(needle).await,
                Vec::<String>::new(),
                "{needle} is back"
            );
        }
        // A second request changes nothing and is answered the same.
        let (status, _) =
            send(app.admin(Method::POST, &format!("/api/v1/customers/{id}/erase"))).await;
        assert_eq!(status, 204);
        let (status, _) = send(app.admin(Method::POST, "/api/v1/customers/999999/erase")).await;
        assert_eq!(status, 404);
        pool.close().await;
    }
}

#[tokio::test]
async fn a_manager_reads_the_audit_log_exports_and_erases_a_customer_from_the_pages() {
    use crate::web::signed_in;
    use std::io::Read;
    for db in TestDb::all().await {
        let app = spawn_app(db).await;
        let (_, c) = app
            .post_json(
                "/api/v1/customers",
                json!({"name": "Grace Hopper", "email": "grace@navy.example", "phone": "+1 202 555 0142"}),
            )
            .await;
        let id = c["id"].as_i64().unwrap();
        let (status, _) = send(
            app.admin(Method::PATCH, &format!("/api/v1/customers/{id}"))
                .json(&json!({"email": "=HYPERLINK(\"http://x\")"})),
        )
        .await;
        assert_eq!(status, 422, "a formula is not an email address");
        let (status, _) = send(
            app.admin(Method::PATCH, &format!("/api/v1/customers/{id}"))
                .json(&json!({"email": "grace@cobol.example", "region": "=1+2"})),
        )
        .await;
        assert_eq!(status, 200);

        let mut manager = signed_in(&app, Role::Manager).await;
        let page = manager.get(&format!("/customers/{id}")).await;
        assert_eq!(page.status, 200);
        for link in ["/audit?customer=", "/export.zip", "/export.json", "/erase"] {
            assert!(page.body.contains(link), "the 360° page links {link}");
        }
        let log = manager.get(&format!("/audit?customer={id}")).await;
        assert_eq!(log.status, 200);
        assert!(log.body.contains("Changed"), "{}", log.body);
        assert!(
            log.body.contains("<del>grace@navy.example</del>"),
            "{}",
            log.body
        );
        assert!(log.body.contains("<ins>grace@cobol.example</ins>"));
        assert!(log.body.contains("through the API"));
        let bad = manager.get("/audit?customer=abc&since=tomorrow").await;
        assert_eq!(bad.status, 200);
        assert!(bad.body.contains("The customer number is a whole number"));
        assert!(bad.body.contains("The date is written as"));

        // The CSV bundle: one file per table; a formula-looking cell is text.
        let (status, headers, zip) = manager
            .get_bytes(&format!("/customers/{id}/export.zip"))
            .await;
        assert_eq!(status, 200);
        assert_eq!(headers["content-type"], "application/zip");
        let mut archive = zip::ZipArchive::new(std::io::Cursor::new(zip)).unwrap();
        let mut customers = String::new();
        archive
            .by_name("customers.csv")
            .unwrap()
            .read_to_string(&mut customers)
            .unwrap();
        assert!(customers.contains("Grace Hopper"), "{customers}");
        assert!(customers.contains("'=1+2"), "{customers}");
        assert!(archive.by_name("change_log.csv").is_ok());
        let (status, _, json_export) = manager
            .get_bytes(&format!("/customers/{id}/export.json"))
            .await;
        assert_eq!(status, 200);
        let doc: Value = serde_json::from_slice(&json_export).unwrap();
        assert_eq!(doc["customer_id"], id);

        // Erase from the page.
        let form = manager.get(&format!("/customers/{id}/erase")).await;
        assert!(
            form.body
                .contains("Erase the personal data of Grace Hopper?")
        );
        let done = manager
            .submit(
                &format!("/customers/{id}/erase"),
                &format!("/customers/{id}/erase"),
                &[],
            )
            .await;
        assert_eq!(done.status, 303);
        let after = manager.get(&format!("/customers/{id}?notice=erased")).await;
        assert!(after.body.contains("personal data was erased"));
        assert!(!after.body.contains("Grace"));
        let log = manager.get(&format!("/audit?customer={id}")).await;
        assert!(log.body.contains("Erased"));
        assert!(
            !log.body.contains("grace@"),
            "the log keeps no value of theirs"
        );

        // The retention period, from the same page.
        let saved = manager
            .submit("/audit", "/audit/retention", &[("retention_days", "400")])
            .await;
        assert_eq!(saved.status, 303);
        let page = manager.get("/audit?notice=retention").await;
        assert!(page.body.contains("value=\"400\""), "the period shows");
        assert!(page.body.contains("The retention period was saved"));
        let refused = manager
            .submit("/audit", "/audit/retention", &[("retention_days", "3")])
            .await;
        assert_eq!(refused.status, 400);
        assert!(
            refused.body.contains("between 30 and 36500"),
            "{}",
            refused.body
        );

        // Who may not.
        let mut agent = signed_in(&app, Role::Agent).await;
        assert_eq!(agent.get("/audit").await.status, 403);
        assert_eq!(
            agent.get(&format!("/customers/{id}/erase")).await.status,
            403
        );
        assert_eq!(
            agent
                .get_bytes(&format!("/customers/{id}/export.zip"))
                .await
                .0,
            403
        );
        let page = agent.get(&format!("/customers/{id}")).await;
        assert!(!page.body.contains("/erase"));
    }
}

#[tokio::test]
async fn a_retried_post_with_its_idempotency_key_is_recorded_once() {
    for db in TestDb::all().await {
        let app = spawn_app(db).await;
        let (_, c) = app
            .post_json("/api/v1/customers", json!({"name": "Retry Customer"}))
            .await;
        let id = c["id"].as_i64().unwrap();
        let order = json!({"customer_id": id, "occurred_at": "2026-11-01T10:00:00Z",
                           "lines": [{"description": "Tea", "quantity": 1, "unit_price_minor": 300}]});
        let post = |path: &str, key: &str, body: &Value| {
            app.admin(Method::POST, path)
                .header("Idempotency-Key", key)
                .json(body)
        };
        let first = post("/api/v1/orders", "order-1", &order)
            .send()
            .await
            .unwrap();
        assert_eq!(first.status(), 201);
        let first: Value = first.json().await.unwrap();
        let again = post("/api/v1/orders", "order-1", &order)
            .send()
            .await
            .unwrap();
        assert_eq!(again.status(), 201);
        assert_eq!(again.headers()["idempotent-replayed"], "true");
        let again: Value = again.json().await.unwrap();
        assert_eq!(again, first, "the retry gets the first answer");
        let (_, list) = app
            .get_json(&format!("/api/v1/orders?customer_id={id}"))
            .await;
        assert_eq!(list["items"].as_array().unwrap().len(), 1, "{list}");

        // The same key for another request is refused.
        let mut other = order.clone();
        other["lines"][0]["quantity"] = json!(2);
        let res = post("/api/v1/orders", "order-1", &other)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 422);
        // A request refused for its values wrote nothing: corrected, it goes through with
        // the same key.
        let bad = json!({"customer_id": id, "channel": "phone", "direction": "sideways", "subject": "x", "body": ""});
        let res = post("/api/v1/interactions", "call-1", &bad)
            .send()
            .await
            .unwrap();
        assert!(res.status().is_client_error());
        let good = json!({"customer_id": id, "channel": "phone", "direction": "inbound", "subject": "Asked about tea", "body": ""});
        let res = post("/api/v1/interactions", "call-1", &good)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 201, "{}", res.text().await.unwrap());

        // Ten copies of one request at once: one interaction.
        let note = json!({"customer_id": id, "channel": "email", "direction": "outbound", "subject": "Sent the catalogue", "body": ""});
        let sends = (0..10).map(|_| post("/api/v1/interactions", "note-1", &note).send());
        let answers = futures_util::future::join_all(sends).await;
        let statuses: Vec<u16> = answers
            .iter()
            .map(|r| r.as_ref().unwrap().status().as_u16())
            .collect();
        assert!(
            statuses.iter().all(|s| *s == 201 || *s == 409),
            "{statuses:?}"
        );
        assert!(statuses.contains(&201));
        let (_, list) = app
            .get_json(&format!("/api/v1/interactions?customer_id={id}"))
            .await;
        let subjects: Vec<&str> = list["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|i| i["subject"].as_str().unwrap())
            .collect();
        assert_eq!(
            subjects
                .iter()
                .filter(|s| **s == "Sent the catalogue")
                .count(),
            1,
            "{subjects:?}"
        );

        // A write that committed but whose answer was lost (the server died before
        // storing it): the retry is refused, not written twice.
        let pool = app.db.raw_pool().await;
        sqlx::query("UPDATE idempotency_keys SET response = '' WHERE key = 'order-1'")
            .execute(&pool)
            .await
            .unwrap();
        let res = post("/api/v1/orders", "order-1", &order)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 409);
        let (_, list) = app
            .get_json(&format!("/api/v1/orders?customer_id={id}"))
            .await;
        assert_eq!(list["items"].as_array().unwrap().len(), 1);
        // Keys are the caller's own: another token's same key is another request.
        let res = app
            .as_role(Role::Manager, Method::POST, "/api/v1/orders")
            .header("Idempotency-Key", "order-1")
            .json(&order)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 201);
        let bad_key = post("/api/v1/orders", "has space", &order)
            .send()
            .await
            .unwrap();
        assert_eq!(bad_key.status(), 400);
        pool.close().await;
    }
}

#[tokio::test]
async fn the_command_line_backs_up_and_restores_a_business() {
    let mut pairs = vec![(TestDb::sqlite(), TestDb::sqlite())];
    if let (Some(a), Some(b)) = (TestDb::postgres().await, TestDb::postgres().await) {
        pairs.push((a, b));
    }
    for (db, target) in pairs {
        let out = crate::tenure(&db, &["demo", "--customers", "60"]);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("shop.backup");
        let file_arg = file.to_str().unwrap();
        let out = crate::tenure(&db, &["backup", file_arg]);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(String::from_utf8_lossy(&out.stdout).starts_with("backed up to"));
        let again = crate::tenure(&db, &["backup", file_arg]);
        assert!(!again.status.success());
        assert!(
            String::from_utf8_lossy(&again.stderr).contains("never overwrites"),
            "{}",
            String::from_utf8_lossy(&again.stderr)
        );
        let out = crate::tenure(&target, &["restore", file_arg]);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(String::from_utf8_lossy(&out.stdout).contains("restored"));
        for kind in ["customers", "orders", "interactions"] {
            let a = crate::tenure(&db, &["export", kind]);
            let b = crate::tenure(&target, &["export", kind]);
            assert!(a.status.success() && a.stdout.len() > 100);
            assert_eq!(a.stdout, b.stdout, "the {kind} of the restored copy");
        }
        let out = crate::tenure(&target, &["restore", file_arg]);
        assert!(
            !out.status.success(),
            "a restore never overwrites a database"
        );
    }
}

#[tokio::test]
async fn customers_inactive_beyond_the_retention_period_are_anonymised_by_the_daily_job() {
    use tenure_app::{App, AppOptions, Clock};
    for db in TestDb::all().await {
        // The business's clock stands two years on: today's customers are long inactive
        // unless they bought since.
        let clock = Clock::fixed(chrono::Utc::now() + chrono::Duration::days(730));
        let c2 = clock.clone();
        let app = tenure_testkit::spawn_app_with(
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
        let (_, gone) = app
            .post_json(
                "/api/v1/customers",
                json!({"name": "Long Gone", "email": "gone@example.com"}),
            )
            .await;
        let (_, back) = app
            .post_json(
                "/api/v1/customers",
                json!({"name": "Still Buying", "email": "buying@example.com"}),
            )
            .await;
        let recent = (clock.now() - chrono::Duration::days(10)).to_rfc3339();
        let (status, _) = app
            .post_json(
                "/api/v1/orders",
                json!({"customer_id": back["id"], "occurred_at": recent,
                       "lines": [{"description": "Tea", "quantity": 1, "unit_price_minor": 900}]}),
            )
            .await;
        assert_eq!(status, 201);

        let (status, body) = send(
            app.as_role(Role::Manager, Method::PUT, "/api/v1/settings/privacy")
                .json(&json!({"retention_days": 5})),
        )
        .await;
        assert_eq!(status, 422, "{body}");
        let (status, _) = send(
            app.as_role(Role::Manager, Method::PUT, "/api/v1/settings/privacy")
                .json(&json!({"retention_days": 365})),
        )
        .await;
        assert_eq!(status, 200);
        let (_, settings) = app.get_json("/api/v1/settings/privacy").await;
        assert_eq!(settings["retention_days"], 365);

        let (status, _) = app
            .post_json("/api/v1/jobs", json!({"kind": "retention"}))
            .await;
        assert_eq!(status, 202);
        let worker = tenure_app::jobs::Worker::new(app.app.clone(), "retention");
        worker.run_until_idle().await.unwrap();
        let (_, g) = app
            .get_json(&format!("/api/v1/customers/{}", gone["id"]))
            .await;
        assert_eq!(g["name"], "", "anonymised: {g}");
        assert_eq!(g["email"], Value::Null);
        let (_, b) = app
            .get_json(&format!("/api/v1/customers/{}", back["id"]))
            .await;
        assert_eq!(b["name"], "Still Buying");
        let (_, log) = app
            .get_json(&format!("/api/v1/audit?customer_id={}", gone["id"]))
            .await;
        assert_eq!(log["items"][0]["operation"], "erase");
        assert_eq!(log["items"][0]["actor"]["name"], "system:worker");
        assert_eq!(log["items"][0]["source"], "job");
        // Run again: nobody twice.
        let before: Vec<Value> =
            crate::all_items(&app, "/api/v1/audit?entity=customer&limit=100").await;
        app.post_json("/api/v1/jobs", json!({"kind": "retention"}))
            .await;
        worker.run_until_idle().await.unwrap();
        let after: Vec<Value> =
            crate::all_items(&app, "/api/v1/audit?entity=customer&limit=100").await;
        assert_eq!(
            after.iter().filter(|e| e["operation"] == "erase").count(),
            before.iter().filter(|e| e["operation"] == "erase").count()
        );
    }
}

#[tokio::test]
async fn a_business_can_limit_agents_to_the_customers_they_own() {
    use crate::web::signed_in;
    for db in TestDb::all().await {
        let app = spawn_app(db).await;
        let mut agent = signed_in(&app, Role::Agent).await;
        let me = app
            .app
            .list_users(&operator())
            .await
            .unwrap()
            .into_iter()
            .find(|u| u.role == Role::Agent)
            .unwrap()
            .id
            .0;
        let (_, mine) = app
            .post_json(
                "/api/v1/customers",
                json!({"name": "Mine Customer", "owner_id": me, "tags": ["kettle"]}),
            )
            .await;
        let (_, theirs) = app
            .post_json(
                "/api/v1/customers",
                json!({"name": "Theirs Customer", "tags": ["kettle"]}),
            )
            .await;
        let (mine, theirs) = (mine["id"].as_i64().unwrap(), theirs["id"].as_i64().unwrap());
        // Each has a task, a place in a segment, a survey answer, a welcome message (not
        // sent: no address) and a value at risk.
        for (c, title) in [(mine, "Call mine back"), (theirs, "Call theirs back")] {
            let (s, _) = app
                .post_json(
                    "/api/v1/tasks",
                    json!({"title": title, "customer_id": c, "due_at": "2030-01-01T10:00:00Z"}),
                )
                .await;
            assert_eq!(s, 201);
        }
        let (_, segment) = app
            .post_json(
                "/api/v1/segments",
                json!({"name": "Kettle owners", "expression": "tag = \"kettle\""}),
            )
            .await;
        assert_eq!(segment["members"], 2, "{segment}");
        let (_, survey) = app
            .post_json(
                "/api/v1/surveys",
                json!({"name": "How was it", "kind": "nps"}),
            )
            .await;
        let welcome = app.app.journey_named(&operator(), "welcome").await.unwrap();
        app.app
            .set_journey_enabled(&operator(), welcome.id, true)
            .await
            .unwrap();
        let pool = app.db.raw_pool().await;
        for (c, risk) in [(mine, 10.0_f64), (theirs, 20.0)] {
            let (s, body) = app
                .post_json(
                    &format!("/api/v1/surveys/{}/responses", survey["id"]),
                    json!({"customer_id": c, "answers": [{"question": "score", "value": 9}]}),
                )
                .await;
            assert_eq!(s, 201, "{body}");
            let (s, body) = app
                .post_json(
                    "/api/v1/orders",
                    json!({"customer_id": c, "occurred_at": "2026-12-03T02:30:00Z", "total_minor": 8_800}),
                )
                .await;
            assert_eq!(s, 201, "{body}");
            sqlx::query(
                "INSERT INTO customer_predictions (customer_id, p_alive, expected_purchases, \
                 expected_value, clv, horizon_days, computed_at, value_at_risk) \
                 VALUES ($1, 0.2, 0.5, 40.0, 25.0, 365, 0, $2)",
            )
            .bind(c)
            .bind(risk)
            .execute(&pool)
            .await
            .unwrap();
        }
        tenure_app::jobs::Worker::new(app.app.clone(), "test")
            .run_messages()
            .await
            .unwrap();
        let (_, my_ticket) = app
            .post_json(
                "/api/v1/tickets",
                json!({"customer_id": mine, "subject": "Kettle of mine"}),
            )
            .await;
        let (_, their_ticket) = app
            .post_json(
                "/api/v1/tickets",
                json!({"customer_id": theirs, "subject": "Kettle of theirs"}),
            )
            .await;
        // Off (the default): an agent sees everyone.
        assert_eq!(agent.get(&format!("/customers/{theirs}")).await.status, 200);
        assert!(
            agent
                .get("/tickets?view=open")
                .await
                .body
                .contains("Kettle of theirs")
        );

        let (status, _) = send(
            app.as_role(Role::Manager, Method::PUT, "/api/v1/settings/privacy")
                .json(&json!({"agents_own_customers": true})),
        )
        .await;
        assert_eq!(status, 200);
        let list = agent.get("/customers").await;
        assert!(list.body.contains("Mine Customer"));
        assert!(
            !list.body.contains("Theirs Customer"),
            "the list holds only theirs"
        );
        let search = agent.get("/customers?q=customer").await;
        assert!(!search.body.contains("Theirs Customer"), "so does a search");
        assert_eq!(agent.get(&format!("/customers/{mine}")).await.status, 200);
        assert_eq!(agent.get(&format!("/customers/{theirs}")).await.status, 404);
        assert_eq!(
            agent
                .get(&format!("/customers/{theirs}/timeline"))
                .await
                .status,
            404
        );
        // Nor can they write to them.
        let edit = agent
            .submit(
                &format!("/customers/{mine}"),
                &format!("/customers/{theirs}"),
                &[("name", "Renamed"), ("kind", "person")],
            )
            .await;
        assert_eq!(edit.status, 404);
        let ticket = agent
            .submit(
                "/tickets",
                "/tickets",
                &[
                    ("customer_id", &theirs.to_string()),
                    ("subject", "Not mine"),
                ],
            )
            .await;
        assert!(
            ticket.status == 404 || ticket.status == 422,
            "{}",
            ticket.status
        );
        // The ticket queue and a ticket: theirs only.
        let queue = agent.get("/tickets?view=open").await;
        assert!(queue.body.contains("Kettle of mine"), "{}", queue.body);
        assert!(!queue.body.contains("Kettle of theirs"), "the queue");
        assert_eq!(
            agent
                .get(&format!("/tickets/{}", my_ticket["id"]))
                .await
                .status,
            200
        );
        assert_eq!(
            agent
                .get(&format!("/tickets/{}", their_ticket["id"]))
                .await
                .status,
            404
        );
        // Tasks, the at-risk list on the dashboard and a segment's members: theirs only.
        let tasks = agent.get("/tasks?view=open").await;
        assert!(tasks.body.contains("Call mine back"), "{}", tasks.body);
        assert!(!tasks.body.contains("Call theirs back"));
        let home = agent.get("/").await;
        assert!(home.body.contains("Mine Customer"), "{}", home.body);
        assert!(!home.body.contains("Theirs Customer"));
        let members = agent.get(&format!("/segments/{}", segment["id"])).await;
        assert!(members.body.contains("Mine Customer"), "{}", members.body);
        assert!(!members.body.contains("Theirs Customer"));
        // Messages and survey answers, as the agent's session lists them.
        let as_agent = tenure_domain::changes::Actor {
            kind: tenure_domain::changes::ActorKind::User,
            id: Some(me),
            name: "agent".into(),
            role: Role::Agent,
            source: tenure_domain::changes::Source::Web,
        };
        let page = tenure_app::PageRequest::first(50);
        let messages = app
            .app
            .messages(&as_agent, &Default::default(), &page)
            .await
            .unwrap();
        assert!(!messages.items.is_empty());
        assert!(messages.items.iter().all(|m| m.customer_id.0 == mine));
        let all = app
            .app
            .messages(&operator(), &Default::default(), &page)
            .await
            .unwrap();
        assert!(all.items.iter().any(|m| m.customer_id.0 == theirs));
        let answers = app
            .app
            .responses(&as_agent, None, None, &page)
            .await
            .unwrap();
        let answered: Vec<i64> = answers.items.iter().map(|r| r.customer_id.0).collect();
        assert_eq!(answered, vec![mine]);
        // An agent's token stands for no one: refused while the rule holds.
        let (status, _) = send(app.as_role(
            Role::Agent,
            Method::GET,
            &format!("/api/v1/customers/{mine}"),
        ))
        .await;
        assert_eq!(status, 403);
        // Managers see everyone.
        let (status, _) = app.get_json(&format!("/api/v1/customers/{theirs}")).await;
        assert_eq!(status, 200);
        let (_, settings) = app.get_json("/api/v1/settings/privacy").await;
        assert_eq!(settings["agents_own_customers"], true);
    }
}
