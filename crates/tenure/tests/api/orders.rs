//! Orders and interactions through the API, the aggregates they keep, and the timeline.

use reqwest::Method;
use serde_json::json;
use tenure_testkit::{TestDb, spawn_app};

#[tokio::test]
async fn orders_and_interactions_feed_aggregates_and_the_timeline() {
    for db in TestDb::all().await {
        let app = spawn_app(db).await;
        let (_, c) = app
            .post_json("/api/v1/customers", json!({"name": "Ana Lima"}))
            .await;
        let cid = c["id"].as_i64().unwrap();
        let (_, cat) = app
            .post_json("/api/v1/product-categories", json!({"name": "Coffee"}))
            .await;
        let (status, p) = app
            .post_json(
                "/api/v1/products",
                json!({"name": "Espresso beans", "category_id": cat["id"], "price_minor": 1599}),
            )
            .await;
        assert_eq!(status, 201);

        let (status, o1) = app
            .post_json("/api/v1/orders", json!({
                "customer_id": cid, "occurred_at": "2024-02-01T09:00:00Z", "channel": "online",
                "lines": [{"product_id": p["id"], "quantity": 2, "unit_price_minor": 1599}, {"description": "Shipping", "unit_price_minor": 500}]
            }))
            .await;
        assert_eq!(status, 201, "{o1}");
        assert_eq!(o1["total_minor"], 2 * 1599 + 500);
        assert_eq!(o1["currency"], "USD");
        let (_, o2) = app.post_json("/api/v1/orders", json!({"customer_id": cid, "occurred_at": "2024-03-01T09:00:00Z", "total_minor": 1000})).await;
        app.post_json("/api/v1/interactions", json!({"customer_id": cid, "channel": "phone", "direction": "outbound", "kind": "call", "subject": "Thank-you call", "occurred_at": "2024-03-02T10:00:00Z", "buying_signal": true})).await;

        let (_, c) = app.get_json(&format!("/api/v1/customers/{cid}")).await;
        assert_eq!(c["stats"]["orders_count"], 2);
        assert_eq!(c["stats"]["purchase_days"], 2);
        assert_eq!(c["stats"]["total_spend_minor"], 3698 + 1000);
        assert_eq!(c["stats"]["repeat_spend_minor"], 1000);
        assert_eq!(c["stats"]["last_contact_at"], "2024-03-02T10:00:00Z");

        // Refunding the second order takes it out of the aggregates.
        let res = app
            .admin(Method::PATCH, &format!("/api/v1/orders/{}", o2["id"]))
            .json(&json!({"status": "refunded"}))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status().as_u16(), 200);
        let (_, c) = app.get_json(&format!("/api/v1/customers/{cid}")).await;
        assert_eq!(c["stats"]["orders_count"], 1);
        assert_eq!(c["stats"]["repeat_spend_minor"], 0);

        // The timeline, newest first, in pages of one.
        let mut kinds = Vec::new();
        let mut path = format!("/api/v1/customers/{cid}/timeline?limit=1");
        loop {
            let (status, page) = app.get_json(&path).await;
            assert_eq!(status, 200, "{page}");
            for item in page["items"].as_array().unwrap() {
                kinds.push((
                    item["kind"].as_str().unwrap().to_owned(),
                    item["occurred_at"].as_str().unwrap().to_owned(),
                ));
            }
            match page["next_cursor"].as_str() {
                Some(cur) => {
                    path = format!("/api/v1/customers/{cid}/timeline?limit=1&cursor={cur}")
                }
                None => break,
            }
        }
        // The stage moves come first (they happened now): placed as potential, then lost,
        // since the orders are years old.
        let stages = kinds.iter().take_while(|(k, _)| k == "stage").count();
        assert_eq!(stages, 2, "{kinds:?}");
        let kinds: Vec<_> = kinds.into_iter().skip(stages).collect();
        assert_eq!(
            kinds,
            [
                ("interaction".to_owned(), "2024-03-02T10:00:00Z".to_owned()),
                ("order".to_owned(), "2024-03-01T09:00:00Z".to_owned()),
                ("order".to_owned(), "2024-02-01T09:00:00Z".to_owned()),
            ]
        );
        let (_, orders) = app
            .get_json(&format!("/api/v1/orders?customer_id={cid}"))
            .await;
        assert_eq!(orders["items"][0]["lines"].as_array().unwrap().len(), 2);

        // Orders for unknown customers or products are refused with the field named.
        let (status, problem) = app.post_json("/api/v1/orders", json!({"customer_id": 999999, "occurred_at": "2024-02-01T09:00:00Z", "total_minor": 1})).await;
        assert_eq!(status, 422);
        assert_eq!(problem["errors"][0]["field"], "customer_id");
        let (status, problem) = app.post_json("/api/v1/orders", json!({"customer_id": cid, "occurred_at": "2024-02-01T09:00:00Z", "currency": "XYZ", "lines": [{"quantity": 0, "unit_price_minor": 1}]})).await;
        assert_eq!(status, 422);
        let fields: Vec<&str> = problem["errors"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["field"].as_str().unwrap())
            .collect();
        assert_eq!(fields, ["currency", "lines[0].quantity"]);

        // Accounts carry a type; a customer can belong to one.
        let (status, acct) = app
            .post_json(
                "/api/v1/accounts",
                json!({"name": "North Distribution", "account_type": "distributor"}),
            )
            .await;
        assert_eq!(status, 201);
        let res = app
            .admin(Method::PATCH, &format!("/api/v1/customers/{cid}"))
            .json(&json!({"account_id": acct["id"]}))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status().as_u16(), 200);
        let (_, members) = app
            .get_json(&format!("/api/v1/customers?account_id={}", acct["id"]))
            .await;
        assert_eq!(members["items"][0]["id"], cid);
    }
}
