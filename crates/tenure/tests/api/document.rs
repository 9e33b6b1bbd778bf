//! The OpenAPI document tells the truth about the wire, every answer can be matched to the
//! server's log by its request id, and the command line's user errors are one line.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

use reqwest::Method;
use serde_json::{Value, json};
use tenure_testkit::{TestDb, spawn_app};

fn document() -> Value {
    serde_json::to_value(tenure_http::openapi()).unwrap()
}

/// Every operation of the document as (method, path, operation).
fn operations(doc: &Value) -> Vec<(String, String, Value)> {
    let mut out = Vec::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, op) in item.as_object().unwrap() {
            out.push((method.clone(), path.clone(), op.clone()));
        }
    }
    out
}

#[test]
fn enums_are_published_as_the_server_spells_them() {
    let doc = document();
    let schemas = doc["components"]["schemas"].as_object().unwrap();
    let mut enums = 0;
    for (name, schema) in schemas {
        let Some(values) = schema["enum"].as_array() else {
            continue;
        };
        enums += 1;
        for v in values {
            let v = v.as_str().unwrap();
            assert!(
                // Lower-case words joined by `_` (webhook events name their record and
                // what happened to it with a `.`, as receivers expect).
                v.bytes().all(|b| b.is_ascii_lowercase()
                    || b.is_ascii_digit()
                    || b == b'_'
                    || (b == b'.' && name == "WebhookEvent")),
                "{name} publishes {v:?}, which the server does not accept"
            );
        }
    }
    assert!(enums >= 12, "only {enums} enums in the document");
    assert_eq!(
        schemas["CustomerKind"]["enum"],
        json!(["person", "organisation"])
    );
    assert_eq!(
        schemas["Role"]["enum"],
        json!(["admin", "manager", "agent", "analyst", "read_only"])
    );
    // Two vocabularies both called "channel" in the code: one schema each.
    assert_eq!(
        schemas["Channel"]["enum"],
        json!([
            "phone",
            "email",
            "sms",
            "chat",
            "social",
            "in_person",
            "app",
            "web"
        ])
    );
    assert_eq!(
        schemas["MessageChannel"]["enum"],
        json!(["email", "sms", "im", "app"])
    );
}

#[tokio::test]
async fn a_value_picked_from_the_document_is_accepted_and_read_back() {
    let doc = document();
    let kinds = doc["components"]["schemas"]["CustomerKind"]["enum"].clone();
    let app = spawn_app(TestDb::sqlite()).await;
    let kind = kinds[1].as_str().unwrap();
    let (status, made) = app
        .post_json(
            "/api/v1/customers",
            json!({"name": "Acme Ltd", "kind": kind}),
        )
        .await;
    assert_eq!(status, 201, "{made}");
    assert!(kinds.as_array().unwrap().contains(&made["kind"]), "{made}");
}

#[test]
fn every_error_answer_is_documented_as_problem_json() {
    let doc = document();
    for (method, path, op) in operations(&doc) {
        let responses = op["responses"].as_object().unwrap();
        let documented = |status: &str| responses.contains_key(status);
        let mut expected = vec!["400", "401", "403", "503"];
        if path.contains("{id}") {
            expected.push("404");
        }
        if op.get("requestBody").is_some() {
            expected.extend(["413", "415", "422"]);
        }
        if method == "patch" {
            expected.push("409");
        }
        for status in expected {
            assert!(
                documented(status),
                "{method} {path} does not document {status}"
            );
        }
        for (status, answer) in responses {
            let Some(content) = answer["content"].as_object() else {
                continue;
            };
            if status.starts_with('4') || status.starts_with('5') {
                assert!(
                    content.contains_key("application/problem+json")
                        && !content.contains_key("application/json"),
                    "{method} {path} {status} is not declared as problem+json: {content:?}"
                );
            }
        }
    }
}

#[test]
fn the_bounds_the_server_enforces_are_in_the_schemas() {
    let doc = document();
    let list = &doc["paths"]["/api/v1/customers"]["get"]["parameters"];
    let limit = list
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == "limit")
        .unwrap();
    assert_eq!(limit["schema"]["minimum"], 1);
    assert_eq!(limit["schema"]["maximum"], tenure_app::MAX_LIMIT);
    let get = &doc["paths"]["/api/v1/customers/{id}"]["get"]["parameters"][0];
    assert_eq!(get["name"], "id");
    assert_eq!(get["schema"]["minimum"], 1);
    let schemas = &doc["components"]["schemas"];
    assert_eq!(
        schemas["CreateCustomer"]["properties"]["name"]["maxLength"],
        tenure_domain::customer::NAME_MAX
    );
    assert_eq!(
        schemas["OrderLineDto"]["properties"]["quantity"]["maximum"],
        tenure_domain::money::QUANTITY_MAX
    );
    assert_eq!(
        schemas["CreateOrder"]["properties"]["lines"]["maxItems"],
        tenure_domain::catalog::LINES_MAX
    );
}

#[tokio::test]
async fn answers_outside_the_bounds_are_the_documented_ones() {
    let app = spawn_app(TestDb::sqlite()).await;
    let (status, body) = app.get_json("/api/v1/customers?limit=501").await;
    assert_eq!(status, 400, "{body}");
    let (status, body) = app.get_json("/api/v1/customers/0").await;
    assert_eq!(status, 400, "{body}");
    let long = "n".repeat(tenure_domain::customer::NAME_MAX + 1);
    let (status, body) = app
        .post_json("/api/v1/customers", json!({ "name": long }))
        .await;
    assert_eq!(status, 422, "{body}");
    let res = app
        .admin(Method::POST, "/api/v1/customers")
        .body(r#"{"name":"x"}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 415);
    assert_eq!(
        res.headers()["content-type"],
        "application/problem+json",
        "error bodies are problem+json, as documented"
    );
}

#[tokio::test]
async fn an_integer_written_with_a_zero_fraction_is_an_integer() {
    let app = spawn_app(TestDb::sqlite()).await;
    let (_, c) = app
        .post_json("/api/v1/customers", json!({"name": "Float Fan"}))
        .await;
    let id = c["id"].as_i64().unwrap();
    // JSON Schema counts 351.0 as an integer; so does the server.
    let body = format!(
        r#"{{"customer_id": {id}.0, "occurred_at": "2024-03-05T10:00:00Z",
            "lines": [{{"description": "tea", "quantity": 2.0, "unit_price_minor": 351.0}}]}}"#
    );
    let res = app
        .admin(Method::POST, "/api/v1/orders")
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await
        .unwrap();
    let status = res.status();
    let order: Value = res.json().await.unwrap();
    assert_eq!(status, 201, "{order}");
    assert_eq!(order["total_minor"], 702);
    let (status, body) = app
        .post_json(
            "/api/v1/orders",
            json!({"customer_id": id, "occurred_at": "2024-03-05T10:00:00Z",
                   "lines": [{"description": "tea", "quantity": 2.5, "unit_price_minor": 100}]}),
        )
        .await;
    assert_eq!(status, 400, "a real fraction is still refused: {body}");
    assert_eq!(body["errors"][0]["field"], "lines[0].quantity", "{body}");
}

#[tokio::test]
async fn the_api_page_calls_no_outside_validator() {
    let app = spawn_app(TestDb::sqlite()).await;
    let js = app.get_text("/api/docs/swagger-initializer.js").await;
    let compact: String = js.chars().filter(|c| !c.is_whitespace()).collect();
    assert!(compact.contains(r#""validatorUrl":"none""#), "{js}");
}

#[tokio::test]
async fn every_answer_carries_its_request_id() {
    let app = spawn_app(TestDb::sqlite()).await;
    let res = app
        .admin(Method::GET, "/api/v1/customers/999")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 404);
    let header = res.headers()["x-request-id"].to_str().unwrap().to_owned();
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["request_id"], header.as_str(), "{body}");
    let other = app
        .admin(Method::GET, "/api/v1/customers")
        .send()
        .await
        .unwrap();
    assert_ne!(other.headers()["x-request-id"].to_str().unwrap(), header);
    // A caller's own plain id is kept, so a proxy's trace id follows the request.
    let mine = app
        .admin(Method::GET, "/api/v1/customers")
        .header("x-request-id", "till-7-0042")
        .send()
        .await
        .unwrap();
    assert_eq!(mine.headers()["x-request-id"], "till-7-0042");
}

/// `tenure serve` on a free port of `db` with `env`, its standard error piped.
pub(crate) fn serve(
    db: &TestDb,
    env: &[(&str, &str)],
) -> (std::process::Child, std::net::SocketAddr) {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    let server = Command::new(env!("CARGO_BIN_EXE_tenure"))
        .args(["serve", "--addr", &addr.to_string()])
        .env("DATABASE_URL", &db.url)
        .envs(env.iter().copied())
        .stderr(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    (server, addr)
}

/// The first answer to `req` once the server listens.
pub(crate) async fn first_answer(req: impl Fn() -> reqwest::RequestBuilder) -> reqwest::Response {
    for _ in 0..100 {
        match req().send().await {
            Ok(res) => return res,
            Err(_) => tokio::time::sleep(std::time::Duration::from_millis(100)).await,
        }
    }
    panic!("the server never answered");
}

#[tokio::test]
async fn the_request_log_has_one_line_a_request_without_personal_data() {
    let db = TestDb::sqlite();
    let token = crate::ok(&crate::tenure(
        &db,
        &["token", "create", "--name", "log", "--role", "admin"],
    ))
    .lines()
    .last()
    .unwrap()
    .to_owned();
    let (mut server, addr) = serve(&db, &[("RUST_LOG", "info"), ("NO_COLOR", "1")]);
    let client = reqwest::Client::new();
    let url = format!("http://{addr}/api/v1/customers?q=Wang%20Secretname");
    let answer = first_answer(|| client.get(&url).bearer_auth(&token)).await;
    assert_eq!(answer.status(), 200);
    let id = answer.headers()["x-request-id"]
        .to_str()
        .unwrap()
        .to_owned();
    server.kill().unwrap();
    let stderr = BufReader::new(server.stderr.take().unwrap());
    let lines: Vec<String> = stderr.lines().map_while(Result::ok).collect();
    server.wait().unwrap();
    let logged: Vec<&String> = lines.iter().filter(|l| l.contains(&id)).collect();
    assert_eq!(logged.len(), 1, "{lines:#?}");
    let line = logged[0];
    for part in ["INFO", "GET", "/api/v1/customers", "200", "duration_ms"] {
        assert!(line.contains(part), "{part} missing from {line}");
    }
    for secret in ["Secretname", "Wang", &token[..12]] {
        assert!(
            !lines.iter().any(|l| l.contains(secret)),
            "{secret} logged: {lines:#?}"
        );
    }
}

#[test]
fn a_user_error_is_one_line_even_with_backtraces_on() {
    let db = TestDb::sqlite();
    let out = Command::new(env!("CARGO_BIN_EXE_tenure"))
        .args(["import", "purchases", "/no/such/file.csv"])
        .env("DATABASE_URL", &db.url)
        .env("RUST_LOG", "warn")
        .env("RUST_BACKTRACE", "1")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    let lines: Vec<&str> = stderr.lines().filter(|l| !l.trim().is_empty()).collect();
    assert_eq!(lines.len(), 1, "{stderr}");
    assert!(lines[0].starts_with("error: "), "{stderr}");
    assert!(lines[0].contains("/no/such/file.csv"), "{stderr}");
}

#[tokio::test]
async fn the_metrics_can_require_a_token() {
    let db = TestDb::sqlite();
    let (mut server, addr) = serve(
        &db,
        &[
            ("TENURE_METRICS_TOKEN", "scrape-me-7f3a"),
            ("RUST_LOG", "warn"),
        ],
    );
    let client = reqwest::Client::new();
    let url = format!("http://{addr}/metrics");
    let anonymous = first_answer(|| client.get(&url)).await;
    assert_eq!(anonymous.status(), 401);
    assert!(
        anonymous.headers()["www-authenticate"]
            .to_str()
            .unwrap()
            .starts_with("Bearer")
    );
    let wrong = client
        .get(&url)
        .bearer_auth("scrape-me")
        .send()
        .await
        .unwrap();
    assert_eq!(wrong.status(), 401);
    let right = client
        .get(&url)
        .bearer_auth("scrape-me-7f3a")
        .send()
        .await
        .unwrap();
    assert_eq!(right.status(), 200);
    let text = right.text().await.unwrap();
    assert!(text.contains("# TYPE"), "{text}");
    // Health stays open for the load balancer.
    let health = client
        .get(format!("http://{addr}/healthz"))
        .send()
        .await
        .unwrap();
    assert_eq!(health.status(), 200);
    server.kill().unwrap();
    server.wait().unwrap();
}
