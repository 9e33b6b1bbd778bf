//! Duplicates: found by email, phone and names in any script variant; merged with their
//! whole history; merges recorded and undone — through the API, on both databases.

use reqwest::Method;
use serde_json::{Value, json};
use tenure_domain::access::Role;
use tenure_testkit::{TestApp, TestDb, spawn_app};

async fn customer(app: &TestApp, body: Value) -> i64 {
    let (status, c) = app.post_json("/api/v1/customers", body).await;
    assert_eq!(status, 201, "{c}");
    c["id"].as_i64().unwrap()
}

async fn order(app: &TestApp, customer: i64, day: &str, total: i64) {
    let (status, o) = app
        .post_json(
            "/api/v1/orders",
            json!({"customer_id": customer, "occurred_at": format!("{day}T10:00:00Z"), "total_minor": total}),
        )
        .await;
    assert_eq!(status, 201, "{o}");
}

fn pair_ids(item: &Value) -> (i64, i64) {
    (
        item["customers"][0]["id"].as_i64().unwrap(),
        item["customers"][1]["id"].as_i64().unwrap(),
    )
}

fn reasons(item: &Value) -> Vec<&str> {
    item["reasons"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r.as_str().unwrap())
        .collect()
}

#[tokio::test]
async fn duplicates_are_found_merged_with_their_history_and_unmerged() {
    for db in TestDb::all().await {
        let app = spawn_app(db).await;
        let dawen = customer(
            &app,
            json!({"name": "陳大文", "external_id": "D-1", "email": "dawen@example.com",
            "birthday": "1980-02-03", "tags": ["vip"]}),
        )
        .await;
        let dawen2 = customer(&app, json!({"name": "陈 大文", "external_id": "D-2", "email": "DaWen@example.com",
            "birthday": "1980-02-03", "phone": "+86 138 0013 8000", "region": "香港", "tags": ["wine"]}))
        .await;
        let john = customer(
            &app,
            json!({"name": "John Smith", "phone": "+1 555 0100 77"}),
        )
        .await;
        let jon = customer(
            &app,
            json!({"name": "Jon Smith", "phone": "+1 (555) 0100-77"}),
        )
        .await;
        let other = customer(
            &app,
            json!({"name": "Someone Else", "email": "else@example.com"}),
        )
        .await;
        order(&app, dawen, "2024-01-05", 1000).await;
        order(&app, dawen2, "2024-02-05", 2000).await;
        order(&app, dawen2, "2024-03-05", 3000).await;
        let (status, _) = app
            .post_json(
                "/api/v1/interactions",
                json!({"customer_id": dawen2, "channel": "phone",
                "direction": "inbound", "kind": "complaint", "subject": "Late delivery",
                "occurred_at": "2024-03-06T10:00:00Z"}),
            )
            .await;
        assert_eq!(status, 201);

        // The review list: best first, with reasons; nobody pairs with `other`.
        let (status, list) = app.get_json("/api/v1/duplicates").await;
        assert_eq!(status, 200, "{list}");
        let items = list["items"].as_array().unwrap();
        assert_eq!(items.len(), 2, "{list}");
        assert_eq!(pair_ids(&items[0]), (dawen, dawen2));
        assert_eq!(
            reasons(&items[0]),
            ["same_email", "same_name_and_birthday", "same_name"]
        );
        assert_eq!(items[0]["name_similarity"], 1.0);
        assert_eq!(pair_ids(&items[1]), (john, jon));
        assert_eq!(reasons(&items[1]), ["same_phone"]);
        assert!(items[0]["score"].as_f64() > items[1]["score"].as_f64());
        assert!(items.iter().all(|i| {
            let (a, b) = pair_ids(i);
            a != other && b != other
        }));
        // Paging walks the same order.
        let (_, first) = app.get_json("/api/v1/duplicates?limit=1").await;
        assert_eq!(pair_ids(&first["items"][0]), (dawen, dawen2));
        let cursor = first["next_cursor"].as_str().unwrap();
        let (_, second) = app
            .get_json(&format!("/api/v1/duplicates?limit=1&cursor={cursor}"))
            .await;
        assert_eq!(pair_ids(&second["items"][0]), (john, jon));
        assert!(second["next_cursor"].is_null());
        let (_, of_jon) = app
            .get_json(&format!("/api/v1/customers/{jon}/duplicates"))
            .await;
        assert_eq!(of_jon["items"].as_array().unwrap().len(), 1);
        let (status, _) = app.get_json("/api/v1/duplicates?min_score=2").await;
        assert_eq!(status, 400);

        // Merging needs the right to delete; bad targets are refused clearly.
        let merge_path = format!("/api/v1/customers/{dawen}/merge");
        let res = app
            .as_role(Role::Agent, Method::POST, &merge_path)
            .json(&json!({"duplicate_id": dawen2}))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 403);
        let (status, body) = app
            .post_json(&merge_path, json!({"duplicate_id": dawen}))
            .await;
        assert_eq!(status, 422, "{body}");
        let (status, body) = app
            .post_json(&merge_path, json!({"duplicate_id": 999_999}))
            .await;
        assert_eq!(status, 422, "{body}");
        assert_eq!(body["errors"][0]["field"], "duplicate_id");

        let (status, m) = app
            .post_json(&merge_path, json!({"duplicate_id": dawen2}))
            .await;
        assert_eq!(status, 200, "{m}");
        let merge_id = m["id"].as_i64().unwrap();
        assert_eq!(m["moved"]["orders"], 2);
        assert_eq!(m["moved"]["interactions"], 1);
        assert_eq!(m["merged_by"], "test admin");
        let (status, _) = app.get_json(&format!("/api/v1/customers/{dawen2}")).await;
        assert_eq!(status, 404);
        let (_, c) = app.get_json(&format!("/api/v1/customers/{dawen}")).await;
        assert_eq!(c["stats"]["orders_count"], 3);
        assert_eq!(c["stats"]["total_spend_minor"], 6000);
        assert_eq!(c["stats"]["interactions_count"], 1);
        assert_eq!(c["phone"], "+86 138 0013 8000", "gaps filled: {c}");
        assert_eq!(c["region"], "香港");
        assert_eq!(c["tags"], json!(["vip", "wine"]));
        let (_, timeline) = app
            .get_json(&format!("/api/v1/customers/{dawen}/timeline"))
            .await;
        // Orders and interactions of both, and both profiles' stage moves.
        let items = timeline["items"].as_array().unwrap();
        let history = items.iter().filter(|i| i["kind"] != "stage").count();
        assert_eq!(history, 4);
        assert!(items.iter().any(|i| i["kind"] == "stage"), "{timeline}");
        let (_, list) = app.get_json("/api/v1/duplicates").await;
        assert_eq!(list["items"].as_array().unwrap().len(), 1);
        tenure_testkit::rebuild_stats(&app.store).await;
        let (_, rebuilt) = app.get_json(&format!("/api/v1/customers/{dawen}")).await;
        assert_eq!(rebuilt["stats"], c["stats"], "aggregates equal a rebuild");

        // The merged customer's external id now names the survivor in imports.
        let purchase = tenure_store::load::PurchaseRow {
            customer_external_id: "D-2".into(),
            order_external_id: "late-D-2".into(),
            occurred_at: "2024-04-01T10:00:00Z".parse().unwrap(),
            total_minor: 500,
            currency: "USD".into(),
            channel: tenure_domain::catalog::SalesChannel::Online,
            status: tenure_domain::catalog::OrderStatus::Completed,
        };
        let outcome = app
            .store
            .import_purchases(&[purchase], &tenure_testkit::operator())
            .await
            .unwrap();
        assert_eq!((outcome.inserted, outcome.customers_created), (1, 0));
        let (_, c) = app.get_json(&format!("/api/v1/customers/{dawen}")).await;
        assert_eq!(c["stats"]["orders_count"], 4);

        // A later merge into the same survivor must be undone first.
        let (status, m2) = app
            .post_json(&merge_path, json!({"duplicate_id": jon}))
            .await;
        assert_eq!(status, 200, "{m2}");
        let undo = format!("/api/v1/merges/{merge_id}/undo");
        let (status, body) = app.post_json(&undo, json!({})).await;
        assert_eq!(status, 409, "{body}");
        assert!(
            body["detail"]
                .as_str()
                .unwrap()
                .contains("undo that one first")
        );
        let (status, _) = app
            .post_json(&format!("/api/v1/merges/{}/undo", m2["id"]), json!({}))
            .await;
        assert_eq!(status, 200);

        // An edit after the merge survives its undo.
        let res = app
            .admin(Method::PATCH, &format!("/api/v1/customers/{dawen}"))
            .json(&json!({"region": "九龍"}))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 200);

        let (status, undone) = app.post_json(&undo, json!({})).await;
        assert_eq!(status, 200, "{undone}");
        assert!(undone["undone_at"].is_string());
        let back = undone["merged_id"].as_i64().unwrap();
        let (status, d2) = app.get_json(&format!("/api/v1/customers/{back}")).await;
        assert_eq!(status, 200);
        assert_eq!(d2["external_id"], "D-2");
        assert_eq!(d2["name"], "陈 大文");
        assert_eq!(d2["stats"]["orders_count"], 2);
        assert_eq!(d2["stats"]["interactions_count"], 1);
        let (_, d1) = app.get_json(&format!("/api/v1/customers/{dawen}")).await;
        assert_eq!(
            d1["stats"]["orders_count"], 2,
            "its own order and the one imported after the merge stay"
        );
        assert_eq!(d1["phone"], Value::Null);
        assert_eq!(d1["region"], "九龍");
        assert_eq!(d1["tags"], json!(["vip"]));
        let (status, _) = app.post_json(&undo, json!({})).await;
        assert_eq!(status, 409, "undone once only");
        let (_, list) = app.get_json("/api/v1/duplicates").await;
        assert_eq!(list["items"].as_array().unwrap().len(), 2, "{list}");
        let (_, merges) = app
            .get_json(&format!("/api/v1/merges?customer_id={dawen}"))
            .await;
        assert_eq!(merges["items"].as_array().unwrap().len(), 2);
        tenure_testkit::rebuild_stats(&app.store).await;
        let (_, rebuilt) = app.get_json(&format!("/api/v1/customers/{back}")).await;
        assert_eq!(rebuilt["stats"], d2["stats"]);
    }
}

#[tokio::test]
async fn the_command_line_lists_merges_and_undoes() {
    for db in TestDb::all().await {
        let store = db.store().await;
        let core = tenure_app::App::new(store.clone());
        let mut a = tenure_domain::customer::CustomerData::named("Maria Garcia");
        a.email = Some("maria@example.com".into());
        let mut b = tenure_domain::customer::CustomerData::named("María García");
        b.email = Some("MARIA@example.com".into());
        let ids = core
            .load_customers(&tenure_testkit::operator(), &[a, b])
            .await
            .unwrap();
        let run = |args: &[&str]| crate::ok(&crate::tenure(&db, args));
        let listed = run(&["duplicates", "list", "--format", "json"]);
        let pairs: Vec<Value> = listed
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(pairs.len(), 1, "{listed}");
        assert_eq!(pair_ids(&pairs[0]), (ids[0].0, ids[1].0));
        assert_eq!(reasons(&pairs[0]), ["same_email"]);

        let merged = run(&[
            "duplicates",
            "merge",
            &ids[0].to_string(),
            &ids[1].to_string(),
        ]);
        assert!(
            merged.starts_with(&format!("merged customer {} into {}", ids[1], ids[0])),
            "{merged}"
        );
        assert!(
            run(&["duplicates", "list"]).lines().count() == 1,
            "only the header is left"
        );
        let history = run(&["duplicates", "history"]);
        assert!(history.contains("standing"), "{history}");
        let merge_id = history
            .split_whitespace()
            .nth(1)
            .unwrap()
            .trim_end_matches(':')
            .to_owned();
        let undone = run(&["duplicates", "undo", &merge_id]);
        assert!(undone.contains("is back"), "{undone}");
        assert_eq!(
            store.get_customer(ids[1]).await.unwrap().data.name,
            "María García"
        );
    }
}

/// The stored pairs as (a, b, reasons, score), in list order.
async fn stored_pairs(app: &tenure_app::App) -> Vec<(i64, i64, Vec<String>, f64)> {
    let mut out = Vec::new();
    let mut page = tenure_app::PageRequest::first(500);
    loop {
        let found = app
            .duplicate_candidates(&tenure_testkit::operator(), None, Some(0.0), &page)
            .await
            .unwrap();
        out.extend(found.items.iter().map(|c| {
            (
                c.a.id.0,
                c.b.id.0,
                c.pair.reasons.iter().map(|r| r.to_string()).collect(),
                c.pair.score(),
            )
        }));
        match found.next_cursor {
            Some(c) => page.cursor = Some(c),
            None => return out,
        }
    }
}

#[tokio::test]
async fn the_candidates_follow_every_customer_write_and_equal_a_rebuild() {
    use tenure_domain::customer::{CustomerInput, CustomerPatchInput, ProfileInput};
    for db in TestDb::all().await {
        let app = tenure_app::App::new(db.store().await);
        let me = tenure_testkit::operator();
        let person = |name: &'static str, email: Option<&'static str>| CustomerInput {
            profile: ProfileInput {
                name,
                email,
                ..Default::default()
            },
            ..Default::default()
        };
        let a = app
            .create_customer(&me, person("Kim Lee", Some("kim@example.com")))
            .await
            .unwrap();
        let b = app
            .create_customer(&me, person("Kimberly Stone", Some("kim@example.com")))
            .await
            .unwrap();
        let pairs = stored_pairs(&app).await;
        assert_eq!(pairs.len(), 1);
        assert_eq!((pairs[0].0, pairs[0].1), (a.id.0, b.id.0));
        assert_eq!(pairs[0].2, ["same_email"]);

        // A changed email ends the pair; changing it back brings it back.
        let change_email = |email: &'static str| CustomerPatchInput {
            email: Some(Some(email.to_owned())),
            ..Default::default()
        };
        app.update_customer(&me, b.id, change_email("stone@example.com"), None)
            .await
            .unwrap();
        assert!(stored_pairs(&app).await.is_empty());
        app.update_customer(&me, b.id, change_email("kim@example.com"), None)
            .await
            .unwrap();
        assert_eq!(stored_pairs(&app).await.len(), 1);

        // Nine people called Wang Fang: too common a name to say anything; when one goes,
        // the other eight pair up (a name groups at most eight).
        let mut wangs = Vec::new();
        for _ in 0..9 {
            wangs.push(
                app.create_customer(&me, person("Wang Fang", None))
                    .await
                    .unwrap()
                    .id,
            );
        }
        assert_eq!(
            stored_pairs(&app).await.len(),
            1,
            "nine share a name: no pairs"
        );
        app.delete_customer(&me, wangs[4]).await.unwrap();
        let pairs = stored_pairs(&app).await;
        let by_name = pairs.iter().filter(|p| p.2 == ["same_name"]).count();
        assert_eq!(by_name, 8 * 7 / 2, "the remaining eight pair up");
        // A ninth again: the name stops pairing.
        app.create_customer(&me, person("王芳 Wang Fang", None))
            .await
            .unwrap();
        app.create_customer(&me, person("Fang Wang", None))
            .await
            .unwrap();
        let kept = stored_pairs(&app).await;
        assert_eq!(kept.len(), 1, "{kept:?}");

        // Merges and undos keep them too, and everything equals a rebuild from scratch.
        let c = app
            .create_customer(&me, person("Kim Lee", None))
            .await
            .unwrap();
        let m = app.merge_customers(&me, a.id, c.id).await.unwrap();
        let after_merge = stored_pairs(&app).await;
        app.rebuild_duplicates(&me).await.unwrap();
        assert_eq!(stored_pairs(&app).await, after_merge);
        app.undo_merge(&me, m.id).await.unwrap();
        let after_undo = stored_pairs(&app).await;
        assert!(
            after_undo.len() > after_merge.len(),
            "the restored Kim Lee pairs again"
        );
        app.rebuild_duplicates(&me).await.unwrap();
        assert_eq!(stored_pairs(&app).await, after_undo);
    }
}

#[tokio::test]
async fn a_merge_whose_points_were_spent_since_cannot_be_undone_and_says_why() {
    for db in tenure_testkit::TestDb::all().await {
        let app = tenure_testkit::spawn_app(db).await;
        let op = tenure_testkit::operator();
        let (_, s) = app
            .post_json(
                "/api/v1/customers",
                serde_json::json!({"name": "Survivor Points"}),
            )
            .await;
        let (_, d) = app
            .post_json(
                "/api/v1/customers",
                serde_json::json!({"name": "Merged Points"}),
            )
            .await;
        let (s, d) = (
            tenure_domain::ids::CustomerId(s["id"].as_i64().unwrap()),
            tenure_domain::ids::CustomerId(d["id"].as_i64().unwrap()),
        );
        app.app
            .adjust_points(&op, d, 100, "welcome", None)
            .await
            .unwrap();
        let merge = app.app.merge_customers(&op, s, d).await.unwrap();
        // The survivor spends the points the merge brought.
        app.app
            .adjust_points(&op, s, -100, "spent", None)
            .await
            .unwrap();
        let (status, body) = app
            .post_json(
                &format!("/api/v1/merges/{}/undo", merge.id.0),
                serde_json::json!({}),
            )
            .await;
        assert_eq!(status, 409, "{body}");
        assert!(
            body["detail"].as_str().unwrap().contains("below zero"),
            "{body}"
        );
        // Nothing moved.
        let (status, _) = app.get_json(&format!("/api/v1/customers/{}", d.0)).await;
        assert_eq!(status, 404, "the merged customer stays merged");
    }
}
