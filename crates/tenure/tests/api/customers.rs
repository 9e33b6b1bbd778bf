//! Customers through the API: create, read, update with If-Match, search, list, delete.

use reqwest::Method;
use serde_json::json;
use tenure_testkit::{TestDb, spawn_app};

#[tokio::test]
async fn a_customer_lives_through_the_api() {
    for db in TestDb::all().await {
        let app = spawn_app(db).await;
        let res = app
            .admin(Method::POST, "/api/v1/customers")
            .json(&json!({
                "name": "陈美玲", "email": "meiling@example.com", "phone": "+852 9123 4567",
                "external_id": "HK-77", "birthday": "1988-08-08", "locale": "zh-TW",
                "tags": ["vip"], "preferences": {"seat": "aisle"}, "custom_fields": {"member_since": 2015},
                "contact_points": [{"kind": "wechat", "value": "meiling88"}],
                "consents": [{"channel": "sms", "status": "granted", "source": "store sign-up"}]
            }))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status().as_u16(), 201);
        let location = res.headers()["location"].to_str().unwrap().to_owned();
        let created: serde_json::Value = res.json().await.unwrap();
        assert_eq!(location, format!("/api/v1/customers/{}", created["id"]));
        assert_eq!(created["name"], "陈美玲");
        assert_eq!(created["consents"][0]["channel"], "sms");
        assert_eq!(created["stats"]["orders_count"], 0);

        let res = app.admin(Method::GET, &location).send().await.unwrap();
        let etag = res.headers()["etag"].to_str().unwrap().to_owned();
        let read: serde_json::Value = res.json().await.unwrap();
        assert_eq!(read, created);

        // The same external id again is a conflict that names the field.
        let (status, problem) = app
            .post_json(
                "/api/v1/customers",
                json!({"name": "Other", "external_id": "HK-77"}),
            )
            .await;
        assert_eq!(status, 409);
        assert!(
            problem["detail"].as_str().unwrap().contains("external_id"),
            "{problem}"
        );

        // Update with If-Match: once, then the stale version is refused.
        let patch = json!({"name": "陳美玲", "email": null, "tags": ["vip", "gold"]});
        let res = app
            .admin(Method::PATCH, &location)
            .header("if-match", &etag)
            .json(&patch)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status().as_u16(), 200);
        let updated: serde_json::Value = res.json().await.unwrap();
        assert_eq!(updated["email"], serde_json::Value::Null);
        assert_eq!(updated["version"], 2);
        let res = app
            .admin(Method::PATCH, &location)
            .header("if-match", &etag)
            .json(&patch)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status().as_u16(), 412);

        // Search: partial Chinese names (traditional here), Latin prefixes, phone, external id.
        app.post_json(
            "/api/v1/customers",
            json!({"name": "Peter Parker", "email": "peter@dailybugle.com"}),
        )
        .await;
        for (q, expected) in [
            ("美玲", "陳美玲"),
            ("陳", "陳美玲"),
            ("par", "Peter Parker"),
            ("91234567", "陳美玲"),
            ("hk-77", "陳美玲"),
            ("peter@dailybugle.com", "Peter Parker"),
        ] {
            let (status, body) = app
                .get_json(&format!("/api/v1/customers?q={}", urlencode(q)))
                .await;
            assert_eq!(status, 200);
            let names: Vec<&str> = body["items"]
                .as_array()
                .unwrap()
                .iter()
                .map(|c| c["name"].as_str().unwrap())
                .collect();
            assert_eq!(names, [expected], "q={q}");
        }
        let (_, by_tag) = app.get_json("/api/v1/customers?tag=gold").await;
        assert_eq!(by_tag["items"].as_array().unwrap().len(), 1);

        // Pages: every customer exactly once.
        for i in 0..7 {
            app.post_json("/api/v1/customers", json!({"name": format!("Page {i}")}))
                .await;
        }
        let seen: Vec<i64> = crate::all_items(&app, "/api/v1/customers?limit=3")
            .await
            .iter()
            .map(|c| c["id"].as_i64().unwrap())
            .collect();
        assert_eq!(seen.len(), 9);
        assert!(seen.windows(2).all(|w| w[0] < w[1]));

        // Search pages: every match once, through the search cursor.
        let mut found = Vec::new();
        let mut path = "/api/v1/customers?q=page&limit=3".to_owned();
        loop {
            let (status, page) = app.get_json(&path).await;
            assert_eq!(status, 200, "{page}");
            found.extend(
                page["items"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|c| c["name"].as_str().unwrap().to_owned()),
            );
            match page["next_cursor"].as_str() {
                Some(c) => path = format!("/api/v1/customers?q=page&limit=3&cursor={c}"),
                None => break,
            }
        }
        found.sort();
        assert_eq!(
            found,
            (0..7).map(|i| format!("Page {i}")).collect::<Vec<_>>()
        );

        let res = app.admin(Method::DELETE, &location).send().await.unwrap();
        assert_eq!(res.status().as_u16(), 204);
        let (status, problem) = app.get_json(&location).await;
        assert_eq!(status, 404);
        assert_eq!(problem["status"], 404);
    }
}

fn urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

#[tokio::test]
async fn docs_health_and_metrics_are_served() {
    let app = spawn_app(TestDb::sqlite()).await;
    let doc: serde_json::Value = app
        .client
        .get(app.url("/api/openapi.json"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(doc["paths"]["/api/v1/customers/{id}/timeline"]["get"].is_object());
    assert!(doc["components"]["securitySchemes"]["bearer"].is_object());
    let page = app.client.get(app.url("/api/docs/")).send().await.unwrap();
    assert_eq!(page.status().as_u16(), 200);
    assert!(page.text().await.unwrap().contains("swagger"));
    assert_eq!(app.get_text("/healthz").await, "ok");
    assert_eq!(
        app.client
            .get(app.url("/readyz"))
            .send()
            .await
            .unwrap()
            .status()
            .as_u16(),
        200
    );
    app.get_json("/api/v1/customers").await;
    let metrics = app.get_text("/metrics").await;
    assert!(
        metrics.contains(
            r#"tenure_http_requests_total{method="GET",route="/api/v1/customers",status="200"} 1"#
        ),
        "{metrics}"
    );
    assert!(metrics.contains("tenure_http_request_duration_seconds_bucket"));
}
