//! Every route × every role: the role table decides, and every route needs a token.

use reqwest::Method;
use serde_json::json;
use tenure_domain::access::{Permission, Role};
use tenure_testkit::{TestDb, spawn_app};

/// Every `/api/v1` operation and the permission it needs.
const ROUTES: &[(&str, &str, Permission)] = &[
    ("GET", "/api/v1/customers", Permission::ReadAggregates),
    ("POST", "/api/v1/customers", Permission::WriteCustomers),
    ("GET", "/api/v1/customers/{id}", Permission::ReadAggregates),
    (
        "PATCH",
        "/api/v1/customers/{id}",
        Permission::WriteCustomers,
    ),
    (
        "DELETE",
        "/api/v1/customers/{id}",
        Permission::DeleteCustomers,
    ),
    (
        "GET",
        "/api/v1/customers/{id}/timeline",
        Permission::ReadCustomers,
    ),
    ("GET", "/api/v1/customers/{id}/export", Permission::Privacy),
    ("POST", "/api/v1/customers/{id}/erase", Permission::Privacy),
    ("GET", "/api/v1/audit", Permission::ReadAudit),
    ("GET", "/api/v1/settings/privacy", Permission::Privacy),
    ("PUT", "/api/v1/settings/privacy", Permission::Privacy),
    ("GET", "/api/v1/webhooks", Permission::ManageUsers),
    ("POST", "/api/v1/webhooks", Permission::ManageUsers),
    ("GET", "/api/v1/webhooks/{id}", Permission::ManageUsers),
    ("PUT", "/api/v1/webhooks/{id}", Permission::ManageUsers),
    ("DELETE", "/api/v1/webhooks/{id}", Permission::ManageUsers),
    (
        "GET",
        "/api/v1/webhooks/{id}/deliveries",
        Permission::ManageUsers,
    ),
    ("GET", "/api/v1/accounts", Permission::ReadAggregates),
    ("POST", "/api/v1/accounts", Permission::WriteCatalog),
    ("GET", "/api/v1/accounts/{id}", Permission::ReadAggregates),
    ("PATCH", "/api/v1/accounts/{id}", Permission::WriteCatalog),
    ("DELETE", "/api/v1/accounts/{id}", Permission::WriteCatalog),
    ("GET", "/api/v1/products", Permission::ReadAggregates),
    ("POST", "/api/v1/products", Permission::WriteCatalog),
    ("GET", "/api/v1/products/{id}", Permission::ReadAggregates),
    ("PATCH", "/api/v1/products/{id}", Permission::WriteCatalog),
    (
        "GET",
        "/api/v1/product-categories",
        Permission::ReadAggregates,
    ),
    (
        "POST",
        "/api/v1/product-categories",
        Permission::WriteCatalog,
    ),
    ("GET", "/api/v1/orders", Permission::ReadAggregates),
    ("POST", "/api/v1/orders", Permission::WriteCustomers),
    ("GET", "/api/v1/orders/{id}", Permission::ReadAggregates),
    ("PATCH", "/api/v1/orders/{id}", Permission::WriteCustomers),
    ("DELETE", "/api/v1/orders/{id}", Permission::DeleteCustomers),
    ("GET", "/api/v1/interactions", Permission::ReadCustomers),
    ("POST", "/api/v1/interactions", Permission::WriteCustomers),
    (
        "GET",
        "/api/v1/interactions/{id}",
        Permission::ReadCustomers,
    ),
    (
        "DELETE",
        "/api/v1/interactions/{id}",
        Permission::DeleteCustomers,
    ),
    (
        "GET",
        "/api/v1/customers/at-risk",
        Permission::ReadAggregates,
    ),
    (
        "GET",
        "/api/v1/products/{id}/also-bought",
        Permission::ReadAggregates,
    ),
    (
        "GET",
        "/api/v1/customers/{id}/recommendations",
        Permission::ReadCustomers,
    ),
    ("GET", "/api/v1/duplicates", Permission::ReadCustomers),
    (
        "GET",
        "/api/v1/customers/{id}/duplicates",
        Permission::ReadCustomers,
    ),
    (
        "POST",
        "/api/v1/customers/{id}/merge",
        Permission::DeleteCustomers,
    ),
    ("GET", "/api/v1/merges", Permission::ReadCustomers),
    ("GET", "/api/v1/merges/{id}", Permission::ReadCustomers),
    (
        "POST",
        "/api/v1/merges/{id}/undo",
        Permission::DeleteCustomers,
    ),
    ("GET", "/api/v1/users", Permission::ManageUsers),
    ("POST", "/api/v1/users", Permission::ManageUsers),
    (
        "PATCH",
        "/api/v1/interactions/{id}",
        Permission::WriteCustomers,
    ),
    ("GET", "/api/v1/tokens", Permission::ManageUsers),
    ("POST", "/api/v1/tokens", Permission::ManageUsers),
    ("DELETE", "/api/v1/tokens/{id}", Permission::ManageUsers),
    ("GET", "/api/v1/jobs", Permission::ReadAggregates),
    ("POST", "/api/v1/jobs", Permission::WriteCatalog),
    ("GET", "/api/v1/jobs/{id}", Permission::ReadAggregates),
    (
        "GET",
        "/api/v1/analytics/stages",
        Permission::ReadAggregates,
    ),
    ("GET", "/api/v1/analytics/rfm", Permission::ReadAggregates),
    (
        "GET",
        "/api/v1/analytics/cohorts",
        Permission::ReadAggregates,
    ),
    (
        "GET",
        "/api/v1/analytics/retention",
        Permission::ReadAggregates,
    ),
    (
        "GET",
        "/api/v1/analytics/pareto",
        Permission::ReadAggregates,
    ),
    (
        "GET",
        "/api/v1/analytics/win-back",
        Permission::ReadAggregates,
    ),
    (
        "GET",
        "/api/v1/analytics/profit",
        Permission::ReadAggregates,
    ),
    (
        "GET",
        "/api/v1/settings/lifecycle",
        Permission::ReadAggregates,
    ),
    (
        "PUT",
        "/api/v1/settings/lifecycle",
        Permission::WriteCatalog,
    ),
    (
        "GET",
        "/api/v1/customers/{id}/lifecycle",
        Permission::ReadAggregates,
    ),
    (
        "PATCH",
        "/api/v1/customers/{id}/lifecycle",
        Permission::WriteCustomers,
    ),
    ("GET", "/api/v1/segments", Permission::ReadAggregates),
    ("POST", "/api/v1/segments", Permission::WriteCatalog),
    ("GET", "/api/v1/segments/{id}", Permission::ReadAggregates),
    ("PUT", "/api/v1/segments/{id}", Permission::WriteCatalog),
    ("DELETE", "/api/v1/segments/{id}", Permission::WriteCatalog),
    (
        "GET",
        "/api/v1/segments/{id}/members",
        Permission::ReadAggregates,
    ),
    (
        "GET",
        "/api/v1/segments/{id}/history",
        Permission::ReadAggregates,
    ),
    ("POST", "/api/v1/segments/count", Permission::ReadAggregates),
    (
        "GET",
        "/api/v1/customers/{id}/loyalty",
        Permission::ReadAggregates,
    ),
    (
        "POST",
        "/api/v1/customers/{id}/member-link",
        Permission::ReadCustomers,
    ),
    ("POST", "/api/v1/loyalty/earn", Permission::WriteCustomers),
    ("POST", "/api/v1/loyalty/redeem", Permission::WriteCustomers),
    ("POST", "/api/v1/loyalty/adjust", Permission::WriteCustomers),
    ("POST", "/api/v1/loyalty/enrol", Permission::WriteCustomers),
    (
        "POST",
        "/api/v1/loyalty/referrals",
        Permission::WriteCustomers,
    ),
    ("GET", "/api/v1/loyalty/program", Permission::ReadAggregates),
    ("PUT", "/api/v1/loyalty/program", Permission::WriteCatalog),
    ("GET", "/api/v1/loyalty/rewards", Permission::ReadAggregates),
    ("POST", "/api/v1/loyalty/rewards", Permission::WriteCatalog),
    (
        "PUT",
        "/api/v1/loyalty/rewards/{id}",
        Permission::WriteCatalog,
    ),
    (
        "POST",
        "/api/v1/loyalty/rewards/{id}/redeem",
        Permission::WriteCustomers,
    ),
    (
        "GET",
        "/api/v1/loyalty/campaigns",
        Permission::ReadAggregates,
    ),
    (
        "POST",
        "/api/v1/loyalty/campaigns",
        Permission::WriteCatalog,
    ),
    (
        "GET",
        "/api/v1/loyalty/campaigns/{id}",
        Permission::ReadAggregates,
    ),
    (
        "POST",
        "/api/v1/loyalty/coupons/redeem",
        Permission::WriteCustomers,
    ),
    (
        "GET",
        "/api/v1/analytics/loyalty",
        Permission::ReadAggregates,
    ),
    ("GET", "/api/v1/tickets", Permission::ReadCustomers),
    ("POST", "/api/v1/tickets", Permission::WriteCustomers),
    ("GET", "/api/v1/tickets/{id}", Permission::ReadCustomers),
    ("PATCH", "/api/v1/tickets/{id}", Permission::WriteCustomers),
    (
        "POST",
        "/api/v1/tickets/{id}/messages",
        Permission::WriteCustomers,
    ),
    ("GET", "/api/v1/tasks", Permission::ReadCustomers),
    ("POST", "/api/v1/tasks", Permission::WriteCustomers),
    ("GET", "/api/v1/tasks/overdue", Permission::ReadAggregates),
    ("GET", "/api/v1/journeys", Permission::ReadAggregates),
    ("GET", "/api/v1/journeys/{id}", Permission::ReadAggregates),
    ("PATCH", "/api/v1/journeys/{id}", Permission::WriteCatalog),
    ("GET", "/api/v1/messages", Permission::ReadCustomers),
    ("GET", "/api/v1/templates", Permission::ReadAggregates),
    ("POST", "/api/v1/templates", Permission::WriteCatalog),
    ("GET", "/api/v1/templates/{id}", Permission::ReadAggregates),
    (
        "POST",
        "/api/v1/templates/{id}/preview",
        Permission::ReadCustomers,
    ),
    ("GET", "/api/v1/tasks/{id}", Permission::ReadCustomers),
    ("PATCH", "/api/v1/tasks/{id}", Permission::WriteCustomers),
    ("GET", "/api/v1/surveys", Permission::ReadAggregates),
    ("POST", "/api/v1/surveys", Permission::WriteCatalog),
    ("GET", "/api/v1/surveys/{id}", Permission::ReadAggregates),
    ("PATCH", "/api/v1/surveys/{id}", Permission::WriteCatalog),
    (
        "POST",
        "/api/v1/surveys/{id}/invitations",
        Permission::WriteCustomers,
    ),
    (
        "GET",
        "/api/v1/surveys/{id}/responses",
        Permission::ReadCustomers,
    ),
    (
        "POST",
        "/api/v1/surveys/{id}/responses",
        Permission::WriteCustomers,
    ),
    (
        "GET",
        "/api/v1/service/settings",
        Permission::ReadAggregates,
    ),
    ("PUT", "/api/v1/service/settings", Permission::WriteCatalog),
    ("POST", "/api/v1/service/calendar", Permission::WriteCatalog),
    (
        "POST",
        "/api/v1/service/sla-scan",
        Permission::WriteCustomers,
    ),
    (
        "GET",
        "/api/v1/analytics/service",
        Permission::ReadAggregates,
    ),
    (
        "GET",
        "/api/v1/customers/{id}/feedback",
        Permission::ReadCustomers,
    ),
];

#[test]
fn the_role_table_covers_every_operation_of_the_openapi_document() {
    let doc = serde_json::to_value(tenure_http::openapi()).unwrap();
    let mut documented: Vec<(String, String)> = Vec::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for method in item.as_object().unwrap().keys() {
            documented.push((method.to_uppercase(), path.clone()));
        }
    }
    documented.sort();
    let mut tabled: Vec<(String, String)> = ROUTES
        .iter()
        .map(|(m, p, _)| (m.to_string(), p.to_string()))
        .collect();
    tabled.sort();
    assert_eq!(documented, tabled);
}

/// A body that passes validation for each write route, so an allowed role gets past the
/// permission check and a refused one is refused before the body matters.
fn body_for(method: &str, path: &str, n: usize) -> Option<serde_json::Value> {
    match (method, path) {
        ("POST", "/api/v1/customers") => Some(json!({"name": format!("Role Test {n}")})),
        ("PATCH", "/api/v1/customers/{id}") => Some(json!({"region": "north"})),
        ("POST", "/api/v1/accounts") => Some(json!({"name": format!("Account {n}")})),
        ("PATCH", "/api/v1/accounts/{id}") => Some(json!({"account_type": "reseller"})),
        ("POST", "/api/v1/products") => Some(json!({"name": format!("Product {n}")})),
        ("PATCH", "/api/v1/products/{id}") => Some(json!({"active": false})),
        ("POST", "/api/v1/product-categories") => Some(json!({"name": format!("Category {n}")})),
        ("POST", "/api/v1/orders") => Some(
            json!({"customer_id": 1, "occurred_at": "2024-01-01T00:00:00Z", "total_minor": 100}),
        ),
        ("PATCH", "/api/v1/orders/{id}") => Some(json!({"channel": "online"})),
        ("POST", "/api/v1/interactions") => {
            Some(json!({"customer_id": 1, "channel": "email", "direction": "outbound"}))
        }
        ("POST", "/api/v1/users") => {
            Some(json!({"email": format!("user{n}@example.com"), "role": "agent"}))
        }
        ("PATCH", "/api/v1/interactions/{id}") => Some(json!({"subject": "called back"})),
        ("PUT", "/api/v1/settings/lifecycle") => Some(json!({"at_risk_days": 120})),
        ("PATCH", "/api/v1/customers/{id}/lifecycle") => Some(json!({"need": true})),
        ("POST", "/api/v1/segments") => {
            Some(json!({"name": format!("Segment {n}"), "expression": "orders > 0"}))
        }
        ("PUT", "/api/v1/segments/{id}") => Some(
            json!({"name": format!("Segment {n} again"), "expression": "orders > 1", "version": 1}),
        ),
        ("POST", "/api/v1/segments/count") => Some(json!({"expression": "stage = \"new\""})),
        ("POST", "/api/v1/tokens") => Some(json!({"name": format!("token {n}"), "role": "agent"})),
        ("POST", "/api/v1/jobs") => Some(json!({"kind": "recommendations_build"})),
        ("PUT", "/api/v1/settings/privacy") => Some(json!({"retention_days": null})),
        ("POST", "/api/v1/webhooks") | ("PUT", "/api/v1/webhooks/{id}") => Some(
            json!({"url": format!("https://hooks.example.com/{n}"), "events": ["customer.created"]}),
        ),
        ("POST", "/api/v1/customers/{id}/member-link") => Some(json!({"days": 3})),
        ("POST", "/api/v1/loyalty/earn" | "/api/v1/loyalty/redeem") => {
            Some(json!({"customer_id": 1, "points": 5, "reason": "role test"}))
        }
        ("POST", "/api/v1/loyalty/adjust") => {
            Some(json!({"customer_id": 1, "points": -5, "reason": "role test"}))
        }
        ("POST", "/api/v1/loyalty/enrol" | "/api/v1/loyalty/rewards/{id}/redeem") => {
            Some(json!({"customer_id": 1}))
        }
        ("PUT", "/api/v1/loyalty/program") => Some(json!({"enabled": true})),
        ("POST" | "PUT", "/api/v1/loyalty/rewards" | "/api/v1/loyalty/rewards/{id}") => {
            Some(json!({"name": format!("Reward {n}"), "points_cost": 5}))
        }
        ("POST", "/api/v1/loyalty/campaigns") => Some(
            json!({"name": format!("Campaign {n}"), "discount_kind": "percent", "discount_value": 10, "generate": 1}),
        ),
        ("POST", "/api/v1/tickets") => {
            Some(json!({"customer_id": 1, "subject": format!("Ticket {n}"), "category": "billing"}))
        }
        ("PATCH", "/api/v1/tickets/{id}") => Some(json!({"priority": "high"})),
        ("POST", "/api/v1/tickets/{id}/messages") => {
            Some(json!({"kind": "reply", "body": "We are on it."}))
        }
        ("POST", "/api/v1/tasks") => {
            Some(json!({"title": format!("Task {n}"), "due_at": "2030-01-01T09:00:00Z"}))
        }
        ("PATCH", "/api/v1/tasks/{id}") => Some(json!({"status": "done"})),
        ("POST", "/api/v1/surveys") => Some(json!({"name": format!("Survey {n}"), "kind": "nps"})),
        ("PATCH", "/api/v1/journeys/{id}") => Some(json!({"title": format!("Journey {n}")})),
        ("POST", "/api/v1/templates") => Some(
            json!({"name": format!("role-{n}"), "channel": "sms", "locale": "en", "body": "Hello {{ customer.first_name }}"}),
        ),
        ("POST", "/api/v1/templates/{id}/preview") => Some(json!({"customer_id": 1})),
        ("PATCH", "/api/v1/surveys/{id}") => Some(json!({"name": format!("Survey {n} again")})),
        ("POST", "/api/v1/surveys/{id}/invitations") => Some(json!({"customer_id": 1})),
        ("POST", "/api/v1/surveys/{id}/responses") => {
            Some(json!({"customer_id": 1, "answers": [{"question": "score", "value": 9}]}))
        }
        ("PUT", "/api/v1/service/settings") => Some(json!({"warn_before_minutes": 30})),
        ("POST", "/api/v1/service/calendar") => Some(
            json!({"ics": "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nBEGIN:VEVENT\r\nUID:x\r\nDTSTART;VALUE=DATE:20300101\r\nSUMMARY:New Year\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n"}),
        ),
        _ => None,
    }
}

#[tokio::test]
async fn every_route_checks_the_token_and_the_role() {
    for db in TestDb::all().await {
        let app = spawn_app(db).await;
        let job = app.app.queue_due_schedules().await.unwrap()[0];
        let mut n = 0;
        for role in Role::ALL.iter().copied() {
            for (method, template, permission) in ROUTES {
                n += 1;
                // Fresh rows for every request so deletes by one role do not starve the next.
                let (_, c) = app
                    .post_json("/api/v1/customers", json!({"name": format!("Target {n}")}))
                    .await;
                let (_, a) = app
                    .post_json("/api/v1/accounts", json!({"name": format!("Target {n}")}))
                    .await;
                let (_, p) = app
                    .post_json("/api/v1/products", json!({"name": format!("Target {n}")}))
                    .await;
                let (_, o) = app
                    .post_json("/api/v1/orders", json!({"customer_id": c["id"], "occurred_at": "2024-01-01T00:00:00Z", "total_minor": 1}))
                    .await;
                let (_, i) = app
                    .post_json(
                        "/api/v1/interactions",
                        json!({"customer_id": c["id"], "channel": "sms", "direction": "inbound"}),
                    )
                    .await;
                // A duplicate to merge into `c`, and a standing merge to read and undo.
                let (_, dup) = app
                    .post_json("/api/v1/customers", json!({"name": format!("Dup {n}")}))
                    .await;
                let (_, s) = app
                    .post_json(
                        "/api/v1/customers",
                        json!({"name": format!("Survivor {n}")}),
                    )
                    .await;
                let merge = app
                    .app
                    .merge_customers(
                        &tenure_testkit::operator(),
                        tenure_domain::ids::CustomerId(s["id"].as_i64().unwrap()),
                        tenure_domain::ids::CustomerId(dup["id"].as_i64().unwrap()),
                    )
                    .await
                    .unwrap();
                let (_, dup) = app
                    .post_json("/api/v1/customers", json!({"name": format!("Dup {n}")}))
                    .await;
                let token = app
                    .app
                    .create_token(&tenure_testkit::operator(), "to revoke", Role::Agent, None)
                    .await
                    .unwrap();
                // A segment only where the route needs one: every write re-checks them all.
                let segment = if template.contains("/segments/{id}") {
                    app.app
                        .create_segment(
                            &tenure_testkit::operator(),
                            tenure_app::segments::SegmentDraft {
                                name: format!("Target {n}"),
                                description: String::new(),
                                expression: "orders > 0".into(),
                            },
                        )
                        .await
                        .unwrap()
                        .id
                        .0
                } else {
                    0
                };
                // Points to spend, a reward, a coupon code and a referrer where the route
                // needs them.
                let op = tenure_testkit::operator();
                let cid = tenure_domain::ids::CustomerId(c["id"].as_i64().unwrap());
                if template.contains("redeem") || template.contains("adjust") {
                    app.app
                        .adjust_points(&op, cid, 100, "role test", None)
                        .await
                        .unwrap();
                }
                let loyalty_id = if template.contains("/loyalty/rewards/{id}") {
                    app.app
                        .create_reward(
                            &op,
                            tenure_domain::loyalty::RewardData {
                                name: format!("Target {n}"),
                                description: String::new(),
                                points_cost: 5,
                                stock: None,
                                valid_from: None,
                                valid_until: None,
                                active: true,
                            },
                        )
                        .await
                        .unwrap()
                        .id
                        .0
                } else if template.contains("/loyalty/campaigns/{id}")
                    || template.contains("/loyalty/coupons")
                {
                    app.app
                        .create_campaign(
                            &op,
                            tenure_domain::loyalty::CampaignData {
                                name: format!("Target {n}"),
                                discount_kind: tenure_domain::loyalty::DiscountKind::Percent,
                                discount_value: 10,
                                max_uses: None,
                                per_customer: 1,
                                valid_from: None,
                                valid_until: None,
                            },
                            &[format!("ROLE{n}")],
                            0,
                        )
                        .await
                        .unwrap()
                        .id
                        .0
                } else {
                    0
                };
                // A ticket, a task and a survey of `c` where the route reads or changes one.
                let service_id = match template.split('/').nth(3) {
                    Some("tickets") if template.contains("{id}") => {
                        let (_, t) = app
                            .post_json(
                                "/api/v1/tickets",
                                json!({"customer_id": c["id"], "subject": format!("Target {n}")}),
                            )
                            .await;
                        t["id"].clone()
                    }
                    Some("tasks") if template.contains("{id}") => {
                        let (_, t) = app
                            .post_json(
                                "/api/v1/tasks",
                                json!({"title": format!("Target {n}"), "customer_id": c["id"], "due_at": "2030-01-01T09:00:00Z"}),
                            )
                            .await;
                        t["id"].clone()
                    }
                    Some("surveys") if template.contains("{id}") => {
                        let (_, t) = app
                            .post_json(
                                "/api/v1/surveys",
                                json!({"name": format!("Target {n}"), "kind": "nps"}),
                            )
                            .await;
                        t["id"].clone()
                    }
                    _ => json!(0),
                };
                let id = match template.split('/').nth(3) {
                    Some("webhooks") => {
                        let (e, _) = app
                            .app
                            .create_webhook(
                                &op,
                                tenure_app::webhooks::EndpointInput {
                                    url: format!("https://hooks.example.com/target-{n}"),
                                    description: String::new(),
                                    events: vec![
                                        tenure_domain::webhook::WebhookEvent::TicketCreated,
                                    ],
                                    enabled: false,
                                },
                            )
                            .await
                            .unwrap();
                        json!(e.id.0)
                    }
                    Some("journeys") => {
                        json!(app.app.journeys(&op).await.unwrap()[0].id.0)
                    }
                    Some("templates") => {
                        json!(app.app.templates(&op).await.unwrap()[0].id.0)
                    }
                    Some("tickets" | "tasks" | "surveys") => service_id,
                    Some("loyalty") => json!(loyalty_id),
                    Some("segments") => json!(segment),
                    Some("merges") => json!(merge.id.0),
                    Some("tokens") => json!(token.id.0),
                    Some("jobs") => json!(job.0),
                    Some("customers") => c["id"].clone(),
                    Some("accounts") => a["id"].clone(),
                    Some("products") => p["id"].clone(),
                    Some("orders") => o["id"].clone(),
                    _ => i["id"].clone(),
                };
                let path = template.replace("{id}", &id.to_string());
                let m = Method::from_bytes(method.as_bytes()).unwrap();

                let mut anonymous = app.client.request(m.clone(), app.url(&path));
                let mut req = app
                    .as_role(role, m, &path)
                    .header("Idempotency-Key", format!("role-{n}"));
                let body = if *template == "/api/v1/customers/{id}/merge" {
                    Some(json!({"duplicate_id": dup["id"]}))
                } else if *template == "/api/v1/loyalty/coupons/redeem" {
                    Some(json!({"code": format!("ROLE{n}"), "customer_id": c["id"]}))
                } else if *template == "/api/v1/loyalty/referrals" {
                    let referrer = app
                        .app
                        .enrol(
                            &op,
                            tenure_domain::ids::CustomerId(s["id"].as_i64().unwrap()),
                        )
                        .await
                        .unwrap();
                    Some(json!({"customer_id": dup["id"], "code": referrer.referral_code}))
                } else {
                    body_for(method, template, n)
                };
                if let Some(b) = body {
                    let b = if template == &"/api/v1/orders"
                        || template == &"/api/v1/interactions"
                        || b.get("customer_id").is_some_and(|v| v == &json!(1))
                    {
                        let mut b = b;
                        b["customer_id"] = c["id"].clone();
                        b
                    } else {
                        b
                    };
                    req = req.json(&b);
                    anonymous = anonymous.json(&b);
                }
                let status = anonymous.send().await.unwrap().status().as_u16();
                assert_eq!(status, 401, "{method} {template} without a token");
                let res = req.send().await.unwrap();
                let status = res.status().as_u16();
                if role.allows(*permission) {
                    assert!(
                        status < 400,
                        "{role} {method} {template}: {status} {}",
                        res.text().await.unwrap()
                    );
                } else {
                    assert_eq!(status, 403, "{role} {method} {template}");
                    let ct = res.headers()["content-type"].to_str().unwrap().to_owned();
                    assert_eq!(ct, "application/problem+json");
                }
            }
        }
    }
}

#[tokio::test]
async fn bad_and_revoked_tokens_are_refused() {
    let app = spawn_app(TestDb::sqlite()).await;
    for header in ["Bearer nope", "Basic abc", "Bearer ", "tnr_x"] {
        let res = app
            .client
            .get(app.url("/api/v1/customers"))
            .header("authorization", header)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status().as_u16(), 401, "{header}");
        assert_eq!(res.headers()["www-authenticate"], "Bearer");
    }
}

#[tokio::test]
async fn analysts_see_masked_personal_data_and_cannot_search_it() {
    let app = spawn_app(TestDb::sqlite()).await;
    let (_, c) = app
        .post_json("/api/v1/customers", json!({"name": "Jane Doe", "email": "jane@example.com", "phone": "+1 415 555 0100", "birthday": "1980-04-05",
            "external_id": "CRM-778812", "consents": [{"channel": "email", "status": "granted", "source": "Jane's sign-up at the Oak Street shop"}]}))
        .await;
    let res = app
        .as_role(
            Role::Analyst,
            Method::GET,
            &format!("/api/v1/customers/{}", c["id"]),
        )
        .send()
        .await
        .unwrap();
    let body: serde_json::Value = res.json().await.unwrap();
    assert_eq!(body["name"], "J***");
    assert_eq!(body["email"], "j***@e***.com");
    assert_eq!(body["phone"], "***0100");
    assert_eq!(body["birthday"], serde_json::Value::Null);
    assert_eq!(body["external_id"], "***12");
    assert_eq!(body["consents"][0]["source"], "***");
    assert_eq!(body["consents"][0]["status"], "granted");
    let text = body.to_string();
    for personal in ["Jane", "example.com", "778812", "Oak Street", "1980"] {
        assert!(
            !text.contains(personal),
            "an analyst sees {personal}: {text}"
        );
    }
    // Lists too.
    let res = app
        .as_role(Role::Analyst, Method::GET, "/api/v1/customers")
        .send()
        .await
        .unwrap();
    let text = res.text().await.unwrap();
    for personal in ["Jane", "example.com", "778812", "Oak Street"] {
        assert!(
            !text.contains(personal),
            "an analyst's list shows {personal}: {text}"
        );
    }
    let res = app
        .as_role(Role::Analyst, Method::GET, "/api/v1/customers?q=jane")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status().as_u16(), 403);
    let res = app
        .as_role(Role::ReadOnly, Method::GET, "/api/v1/customers?q=jane")
        .send()
        .await
        .unwrap();
    let body: serde_json::Value = res.json().await.unwrap();
    assert_eq!(body["items"][0]["email"], "jane@example.com");
}
