//! Concurrent writers: no update is lost and the aggregates stay exact.

use reqwest::Method;
use serde_json::json;
use tenure_testkit::{TestDb, spawn_app};

#[tokio::test]
async fn parallel_writes_to_one_customer_lose_nothing() {
    for db in TestDb::all().await {
        let app = std::sync::Arc::new(spawn_app(db).await);
        let (_, c) = app
            .post_json("/api/v1/customers", json!({"name": "Busy Customer"}))
            .await;
        let id = c["id"].as_i64().unwrap();

        let mut tasks = Vec::new();
        for i in 0..24 {
            let app = app.clone();
            tasks.push(tokio::spawn(async move {
                let patch = app
                    .admin(Method::PATCH, &format!("/api/v1/customers/{id}"))
                    .json(&json!({"region": format!("r{i}")}))
                    .send()
                    .await
                    .unwrap()
                    .status()
                    .as_u16();
                let (order, _) = app
                    .post_json("/api/v1/orders", json!({"customer_id": id, "occurred_at": format!("2024-01-{:02}T12:00:00Z", i % 28 + 1), "total_minor": 100 + i}))
                    .await;
                let (interaction, _) = app
                    .post_json("/api/v1/interactions", json!({"customer_id": id, "channel": "chat", "direction": "inbound"}))
                    .await;
                (patch, order, interaction)
            }));
        }
        for t in tasks {
            assert_eq!(t.await.unwrap(), (200, 201, 201));
        }
        let (_, c) = app.get_json(&format!("/api/v1/customers/{id}")).await;
        assert_eq!(c["version"], 25, "every patch applied once");
        assert_eq!(c["stats"]["orders_count"], 24);
        assert_eq!(
            c["stats"]["total_spend_minor"],
            (0..24).map(|i| 100 + i).sum::<i64>()
        );
        assert_eq!(c["stats"]["purchase_days"], 24);
        assert_eq!(c["stats"]["interactions_count"], 24);

        // The same new external id from many clients at once: one wins, the rest conflict.
        let mut tasks = Vec::new();
        for _ in 0..8 {
            let app = app.clone();
            tasks.push(tokio::spawn(async move {
                app.post_json(
                    "/api/v1/customers",
                    json!({"name": "Twin", "external_id": "TWIN-1"}),
                )
                .await
                .0
            }));
        }
        let mut statuses = Vec::new();
        for t in tasks {
            statuses.push(t.await.unwrap());
        }
        statuses.sort();
        assert_eq!(statuses, [201, 409, 409, 409, 409, 409, 409, 409]);
    }
}
