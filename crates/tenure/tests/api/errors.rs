//! Bad input of every kind gets problem+json naming the field, never a 500.

use proptest::prelude::*;
use reqwest::Method;
use serde_json::json;
use tenure_testkit::{TestApp, TestDb, spawn_app};

async fn problem(
    app: &TestApp,
    method: Method,
    path: &str,
    body: Option<&str>,
) -> (u16, serde_json::Value) {
    let mut req = app.admin(method, path);
    if let Some(b) = body {
        req = req
            .header("content-type", "application/json")
            .body(b.to_owned());
    }
    let res = req.send().await.unwrap();
    let status = res.status().as_u16();
    let ct = res
        .headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap().to_owned());
    assert_eq!(
        ct.as_deref(),
        Some("application/problem+json"),
        "{path} {body:?}"
    );
    (status, res.json().await.unwrap())
}

fn fields(p: &serde_json::Value) -> Vec<String> {
    p["errors"].as_array().map_or_else(Vec::new, |e| {
        e.iter()
            .map(|e| e["field"].as_str().unwrap().to_owned())
            .collect()
    })
}

#[tokio::test]
async fn bad_input_gets_field_level_problems() {
    let app = spawn_app(TestDb::sqlite()).await;
    let post = |body: &'static str| problem(&app, Method::POST, "/api/v1/customers", Some(body));

    let (s, p) = post("{\"name\": ").await;
    assert_eq!(s, 400);
    assert!(p["detail"].as_str().unwrap().contains("not valid JSON"));

    let (s, p) = post(r#"{"name": 42}"#).await;
    assert_eq!((s, fields(&p)), (400, vec!["name".to_owned()]));

    let (s, p) = post(r#"{"name": "A", "nickname": "B"}"#).await;
    assert_eq!((s, fields(&p)), (400, vec!["nickname".to_owned()]));

    let (s, p) = post(r#"{"name": "A", "kind": "robot"}"#).await;
    assert_eq!((s, fields(&p)), (400, vec!["kind".to_owned()]));

    let (s, p) =
        post(r#"{"name": "A", "contact_points": [{"kind": "email", "value": "x", "extra": 1}]}"#)
            .await;
    assert_eq!(
        (s, fields(&p)),
        (400, vec!["contact_points[0].extra".to_owned()])
    );

    let long = format!(r#"{{"name": "{}"}}"#, "名".repeat(201));
    let (s, p) = problem(&app, Method::POST, "/api/v1/customers", Some(&long)).await;
    assert_eq!((s, fields(&p)), (422, vec!["name".to_owned()]));
    assert!(
        p["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains("at most 200")
    );

    let (s, p) = post(r#"{"name": "", "email": "nope", "phone": "12", "birthday": "1990-13-01", "locale": "??", "tags": [""]}"#).await;
    assert_eq!(s, 422);
    assert_eq!(
        fields(&p),
        ["name", "email", "phone", "birthday", "locale", "tags"]
    );

    let (s, p) = problem(&app, Method::GET, "/api/v1/customers/abc", None).await;
    assert_eq!((s, fields(&p)), (400, vec!["id".to_owned()]));
    let (s, _) = problem(&app, Method::GET, "/api/v1/customers/-1", None).await;
    assert_eq!(s, 400);
    let (s, _) = problem(
        &app,
        Method::GET,
        "/api/v1/customers/99999999999999999999",
        None,
    )
    .await;
    assert_eq!(s, 400);
    let (s, _) = problem(&app, Method::GET, "/api/v1/customers/424242", None).await;
    assert_eq!(s, 404);

    let (s, p) = problem(&app, Method::GET, "/api/v1/customers?limit=0", None).await;
    assert_eq!((s, fields(&p)), (400, vec!["limit".to_owned()]));
    let (s, p) = problem(&app, Method::GET, "/api/v1/customers?limit=abc", None).await;
    assert_eq!((s, fields(&p)), (400, vec!["limit".to_owned()]));
    let (s, p) = problem(&app, Method::GET, "/api/v1/customers?cursor=%%%", None).await;
    assert_eq!((s, fields(&p)), (400, vec!["cursor".to_owned()]));
    let (s, p) = problem(&app, Method::GET, "/api/v1/customers?colour=red", None).await;
    assert_eq!((s, fields(&p)), (400, vec!["colour".to_owned()]));
    let (s, p) = problem(
        &app,
        Method::GET,
        "/api/v1/customers/1/timeline?cursor=bm9wZQ",
        None,
    )
    .await;
    assert_eq!((s, fields(&p)), (400, vec!["cursor".to_owned()]));

    let (s, _) = problem(&app, Method::GET, "/no/such/route", None).await;
    assert_eq!(s, 404);
    let (s, _) = problem(&app, Method::PUT, "/api/v1/customers", None).await;
    assert_eq!(s, 405);

    let res = app
        .admin(Method::POST, "/api/v1/customers")
        .body("name=x")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status().as_u16(), 415);
    let big = format!(r#"{{"name": "{}"}}"#, "x".repeat(2 * 1024 * 1024));
    let (s, _) = problem(&app, Method::POST, "/api/v1/customers", Some(&big)).await;
    assert_eq!(s, 413);
    let (s, p) = problem(
        &app,
        Method::PATCH,
        "/api/v1/customers/1",
        Some(r#"{"name": "x"}"#),
    )
    .await;
    assert_eq!(s, 404, "{p}");
}

/// Arbitrary JSON thrown at every write route gets a 4xx problem, never a 5xx.
#[test]
fn arbitrary_bodies_never_cause_a_server_error() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let app = rt.block_on(spawn_app(TestDb::sqlite()));
    let (_, c) = rt.block_on(app.post_json("/api/v1/customers", json!({"name": "Target"})));
    let id = c["id"].as_i64().unwrap();
    let leaf = prop_oneof![
        Just(serde_json::Value::Null),
        any::<bool>().prop_map(serde_json::Value::from),
        any::<i64>().prop_map(serde_json::Value::from),
        any::<f64>()
            .prop_filter("finite", |f| f.is_finite())
            .prop_map(serde_json::Value::from),
        ".{0,40}".prop_map(serde_json::Value::from),
        Just(json!("2024-01-01T00:00:00Z")),
        Just(json!(id)),
    ];
    let value = leaf.prop_recursive(3, 24, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(serde_json::Value::from),
            prop::collection::hash_map(
                prop_oneof![
                    Just("name".to_owned()),
                    Just("customer_id".to_owned()),
                    Just("lines".to_owned()),
                    Just("email".to_owned()),
                    Just("occurred_at".to_owned()),
                    Just("tags".to_owned()),
                    "[a-z_]{1,12}"
                ],
                inner,
                0..6
            )
            .prop_map(|m| serde_json::Value::Object(m.into_iter().collect())),
        ]
    });
    let routes = [
        (Method::POST, "/api/v1/customers".to_owned()),
        (Method::PATCH, format!("/api/v1/customers/{id}")),
        (Method::POST, "/api/v1/orders".to_owned()),
        (Method::POST, "/api/v1/interactions".to_owned()),
        (Method::POST, "/api/v1/accounts".to_owned()),
        (Method::POST, "/api/v1/products".to_owned()),
        (Method::POST, "/api/v1/users".to_owned()),
    ];
    let config = ProptestConfig {
        cases: 200,
        failure_persistence: None,
        ..ProptestConfig::default()
    };
    proptest!(config, |(body in value, route in 0..routes.len())| {
        let (method, path) = &routes[route];
        let status = rt.block_on(async {
            app.admin(method.clone(), path).json(&body).send().await.unwrap().status().as_u16()
        });
        prop_assert!(status < 500, "{method} {path} {body}: {status}");
    });
}
