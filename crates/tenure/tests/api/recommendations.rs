//! Recommendations on a generated business: the co-occurrence model beats offering the
//! best-sellers on a time split, and the API answers "also bought" and next best offers
//! without offering what a customer already bought or what is no longer sold.

use std::process::Command;

use serde_json::{Value, json};
use tenure_testkit::{TestDb, spawn_app};

use crate::{ok, tenure};

#[tokio::test]
async fn bought_together_beats_best_sellers_and_never_offers_what_is_owned() {
    let dir = tempfile::tempdir().unwrap();
    let generated = dir.path().join("generated");
    ok(&Command::new(env!("CARGO_BIN_EXE_tenure"))
        .args(["generate", "--customers", "1000", "--seed", "21", "--out"])
        .arg(&generated)
        .output()
        .unwrap());
    for db in TestDb::all().await {
        crate::exchange::import_all(&db, &generated);

        // Evaluated on a time split: trained on what was bought up to mid-2024, tested on
        // the products customers bought for the first time after it.
        let e: Value = serde_json::from_str(&ok(&tenure(
            &db,
            &[
                "analytics",
                "recommendations",
                "--split",
                "2024-06-30",
                "--top",
                "3",
                "--format",
                "json",
            ],
        )))
        .unwrap();
        let customers = e["customers"].as_f64().unwrap();
        assert!(customers > 100.0, "{e}");
        let (ours, best) = (
            e["hit_rate"].as_f64().unwrap(),
            e["best_seller_hit_rate"].as_f64().unwrap(),
        );
        assert_eq!(ours, e["hits"].as_f64().unwrap() / customers);
        assert!(ours > best * 1.1, "{e}");

        let built: Value = serde_json::from_str(&ok(&tenure(
            &db,
            &["analytics", "recommendations", "--format", "json"],
        )))
        .unwrap();
        assert_eq!(built["products"], 42, "{built}");
        assert!(built["pairs"].as_u64().unwrap() > 0);

        let app = spawn_app(db).await;
        let (_, products) = app.get_json("/api/v1/products?limit=100").await;
        let first = products["items"][0]["id"].as_i64().unwrap();
        let (status, also) = app
            .get_json(&format!("/api/v1/products/{first}/also-bought?limit=5"))
            .await;
        assert_eq!(status, 200, "{also}");
        let items = also["items"].as_array().unwrap();
        assert_eq!(items.len(), 5);
        let scores: Vec<f64> = items.iter().map(|i| i["score"].as_f64().unwrap()).collect();
        assert!(scores.windows(2).all(|w| w[0] >= w[1]), "{also}");
        assert!(items.iter().all(|i| i["product"]["id"] != first));
        assert!(items.iter().all(|i| i["customers"].as_i64().unwrap() >= 2));

        // A customer's offers: none of what they bought, best first.
        let (_, customers) = app.get_json("/api/v1/customers?limit=20").await;
        let id = customers["items"][3]["id"].as_i64().unwrap();
        let owned = owned_products(&app, id).await;
        assert!(!owned.is_empty());
        let (status, offers) = app
            .get_json(&format!("/api/v1/customers/{id}/recommendations?limit=5"))
            .await;
        assert_eq!(status, 200, "{offers}");
        let offered: Vec<i64> = offers["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|i| i["product"]["id"].as_i64().unwrap())
            .collect();
        assert_eq!(offered.len(), 5.min(42 - owned.len()), "{offers}");
        assert!(offered.iter().all(|p| !owned.contains(p)), "{offers}");

        // A product taken off sale is no longer offered.
        let top = offered[0];
        let res = app
            .admin(reqwest::Method::PATCH, &format!("/api/v1/products/{top}"))
            .json(&json!({"active": false}))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 200);
        let (_, offers) = app
            .get_json(&format!("/api/v1/customers/{id}/recommendations?limit=5"))
            .await;
        assert!(
            offers["items"]
                .as_array()
                .unwrap()
                .iter()
                .all(|i| i["product"]["id"] != top),
            "{offers}"
        );

        // Unknown ids are 404; a limit out of range names the field.
        let (status, _) = app
            .get_json("/api/v1/customers/999999999/recommendations")
            .await;
        assert_eq!(status, 404);
        let (status, _) = app.get_json("/api/v1/products/999999999/also-bought").await;
        assert_eq!(status, 404);
        let (status, body) = app
            .get_json(&format!("/api/v1/customers/{id}/recommendations?limit=0"))
            .await;
        assert_eq!(status, 400);
        assert_eq!(body["errors"][0]["field"], "limit", "{body}");
    }
}

/// Every product on the customer's orders, read from the timeline.
async fn owned_products(app: &tenure_testkit::TestApp, id: i64) -> Vec<i64> {
    let mut owned: Vec<i64> =
        crate::all_items(app, &format!("/api/v1/customers/{id}/timeline?limit=500"))
            .await
            .iter()
            .flat_map(|item| {
                item["order"]["lines"]
                    .as_array()
                    .cloned()
                    .unwrap_or_default()
            })
            .filter_map(|line| line["product_id"].as_i64())
            .collect();
    owned.sort();
    owned.dedup();
    owned
}
