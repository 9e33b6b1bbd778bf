//! The loyalty program on both databases: orders earn in their own transaction, refunds
//! take back what they earned even when it was spent, retries change nothing, concurrent
//! redemptions spend exactly the balance, and a killed expiry run leaves the ledger balanced
//! and is completed by the next.

use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{TimeZone, Utc};
use reqwest::Method;
use serde_json::{Value, json};
use sqlx::Row;
use tenure_app::Clock;
use tenure_domain::ids::CustomerId;
use tenure_testkit::{TestApp, TestDb, spawn_app};

/// Switches the program on: 1 point per unit, a welcome bonus of 50, points for a year.
async fn program_on(app: &TestApp, extra: Value) {
    let mut program = json!({
        "enabled": true,
        "points_per_unit": 1.0,
        "bonuses": {"welcome": 50, "birthday": 0, "referral": 200, "referred": 100, "survey_answered": 0},
        "lifetime_days": 365,
    });
    if let (Some(p), Some(e)) = (program.as_object_mut(), extra.as_object()) {
        for (k, v) in e {
            p.insert(k.clone(), v.clone());
        }
    }
    let res = app
        .admin(Method::PUT, "/api/v1/loyalty/program")
        .json(&program)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200, "{}", res.text().await.unwrap());
}

async fn keyed(app: &TestApp, path: &str, key: &str, body: Value) -> (u16, Value) {
    let res = app
        .admin(Method::POST, path)
        .header("Idempotency-Key", key)
        .json(&body)
        .send()
        .await
        .unwrap();
    let status = res.status().as_u16();
    (status, res.json().await.unwrap_or(Value::Null))
}

async fn member(app: &TestApp, id: i64) -> Value {
    let (s, m) = app
        .get_json(&format!("/api/v1/customers/{id}/loyalty"))
        .await;
    assert_eq!(s, 200, "{m}");
    m
}

/// The member's balances equal their ledger and their lots.
async fn assert_balanced(app: &TestApp, id: i64) {
    let m = member(app, id).await;
    let sums = app.store.ledger_sums(CustomerId(id)).await.unwrap();
    assert_eq!(m["balance"], sums.available, "balance = ledger");
    assert_eq!(m["pending"], sums.pending, "pending = ledger");
    assert_eq!(m["owed"], sums.owed, "owed = deferred − settled");
    assert_eq!(m["balance"], sums.lots_available, "balance = lots");
    assert_eq!(m["pending"], sums.lots_pending, "pending = lots");
    assert!(m["balance"].as_i64().unwrap() >= 0);
}

async fn customer(app: &TestApp, name: &str) -> i64 {
    let (s, c) = app
        .post_json("/api/v1/customers", json!({"name": name}))
        .await;
    assert_eq!(s, 201, "{c}");
    c["id"].as_i64().unwrap()
}

async fn order(app: &TestApp, id: i64, total_minor: i64, lines: Value) -> i64 {
    let (s, o) = app
        .post_json(
            "/api/v1/orders",
            json!({"customer_id": id, "occurred_at": app.app.now().to_rfc3339(), "total_minor": total_minor, "lines": lines}),
        )
        .await;
    assert_eq!(s, 201, "{o}");
    o["id"].as_i64().unwrap()
}

#[tokio::test]
async fn orders_earn_once_and_refunds_take_back_what_they_earned_even_when_spent() {
    for db in TestDb::all().await {
        let app = spawn_app(db).await;
        // A category that earns double.
        let (s, cat) = app
            .post_json("/api/v1/product-categories", json!({"name": "Beans"}))
            .await;
        assert_eq!(s, 201, "{cat}");
        let (s, beans) = app
            .post_json(
                "/api/v1/products",
                json!({"name": "House blend", "category_id": cat["id"], "price_minor": 2000}),
            )
            .await;
        assert_eq!(s, 201, "{beans}");
        program_on(
            &app,
            json!({"categories": [{"category_id": cat["id"], "multiplier": 2.0}]}),
        )
        .await;

        let ann = customer(&app, "Ann Member").await;
        // 100.00 of which 40.00 beans: 60 + 2 × 40 = 140 points, and the welcome bonus.
        let o1 = order(
            &app,
            ann,
            10_000,
            json!([{"product_id": beans["id"], "quantity": 2, "unit_price_minor": 2000}]),
        )
        .await;
        let m = member(&app, ann).await;
        assert_eq!(m["balance"], 190, "{m}");
        assert_eq!(m["tier"], "member");
        assert!(m["referral_code"].as_str().unwrap().len() == 8);
        let kinds: Vec<&str> = m["history"]["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["kind"].as_str().unwrap())
            .collect();
        assert_eq!(kinds, ["earn", "bonus"], "newest first");
        assert_eq!(m["lots"].as_array().unwrap().len(), 2);
        assert!(m["lots"][0]["expires_at"].is_string());

        // Updating the order's channel earns nothing more: one earn per order.
        let res = app
            .admin(Method::PATCH, &format!("/api/v1/orders/{o1}"))
            .json(&json!({"channel": "online"}))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 200);
        assert_eq!(member(&app, ann).await["balance"], 190);

        // Redeem with a key; the replay answers the same and changes nothing.
        let body = json!({"customer_id": ann, "points": 150, "reason": "free coffee"});
        let (s, first) = keyed(&app, "/api/v1/loyalty/redeem", "r-1", body.clone()).await;
        assert_eq!(s, 201, "{first}");
        assert_eq!(first["balance"], 40);
        let (s, again) = keyed(&app, "/api/v1/loyalty/redeem", "r-1", body.clone()).await;
        assert_eq!(
            (s, &again),
            (201, &first),
            "a replay answers the first answer"
        );
        assert_eq!(member(&app, ann).await["balance"], 40);
        let (s, p) = keyed(
            &app,
            "/api/v1/loyalty/redeem",
            "r-1",
            json!({"customer_id": ann, "points": 10, "reason": "free coffee"}),
        )
        .await;
        assert_eq!(s, 422, "same key, other body: {p}");
        assert_eq!(p["errors"][0]["field"], "Idempotency-Key");
        let res = app
            .admin(Method::POST, "/api/v1/loyalty/redeem")
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 400, "a redemption needs a key");
        let (s, p) = keyed(
            &app,
            "/api/v1/loyalty/redeem",
            "r-2",
            json!({"customer_id": ann, "points": 41}),
        )
        .await;
        assert_eq!(s, 409, "{p}");
        assert!(
            p["detail"]
                .as_str()
                .unwrap()
                .contains("40 points does not cover 41")
        );

        // Refund the order: its 140 points come back out, 100 of them spent already — the
        // 40 left go and 100 are owed, so redeem-then-refund gains nothing.
        let res = app
            .admin(Method::PATCH, &format!("/api/v1/orders/{o1}"))
            .json(&json!({"status": "refunded"}))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 200);
        let m = member(&app, ann).await;
        assert_eq!(
            (m["balance"].as_i64(), m["owed"].as_i64()),
            (Some(0), Some(100)),
            "{m}"
        );
        assert_balanced(&app, ann).await;
        // Refunding it again takes nothing more.
        let res = app
            .admin(Method::PATCH, &format!("/api/v1/orders/{o1}"))
            .json(&json!({"status": "refunded", "channel": "store"}))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 200);
        assert_eq!(member(&app, ann).await["owed"], 100);

        // The next order's 300 points pay the debt first.
        let o2 = order(&app, ann, 30_000, json!([])).await;
        let m = member(&app, ann).await;
        assert_eq!(
            (m["balance"].as_i64(), m["owed"].as_i64()),
            (Some(200), Some(0)),
            "{m}"
        );
        assert_balanced(&app, ann).await;

        // A partial refund (the total cut to a third) takes back two thirds of its points.
        let res = app
            .admin(Method::PATCH, &format!("/api/v1/orders/{o2}"))
            .json(&json!({"total_minor": 10_000}))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 200, "{}", res.text().await.unwrap());
        assert_eq!(
            member(&app, ann).await["balance"],
            0,
            "300 → 100 earned; 100 were owed"
        );
        let o3 = order(&app, ann, 5_000, json!([])).await;
        assert_eq!(member(&app, ann).await["balance"], 50);
        // A deleted order takes back what it earned.
        let res = app
            .admin(Method::DELETE, &format!("/api/v1/orders/{o3}"))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 204);
        assert_eq!(member(&app, ann).await["balance"], 0);
        assert_balanced(&app, ann).await;

        // A staff adjustment needs a reason and shows who made it.
        let (s, p) = keyed(
            &app,
            "/api/v1/loyalty/adjust",
            "a-1",
            json!({"customer_id": ann, "points": 25, "reason": " "}),
        )
        .await;
        assert_eq!(s, 422, "{p}");
        let (s, r) = keyed(
            &app,
            "/api/v1/loyalty/adjust",
            "a-2",
            json!({"customer_id": ann, "points": 25, "reason": "the machine was broken"}),
        )
        .await;
        assert_eq!(s, 201, "{r}");
        let m = member(&app, ann).await;
        assert_eq!(m["history"]["items"][0]["kind"], "adjust");
        assert_eq!(m["history"]["items"][0]["actor"], "test admin");
        assert_eq!(m["balance"], 25);

        // The ledger is on the timeline.
        let (_, tl) = app
            .get_json(&format!("/api/v1/customers/{ann}/timeline?limit=100"))
            .await;
        let loyalty: Vec<&Value> = tl["items"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|i| i["kind"] == "loyalty")
            .collect();
        assert!(loyalty.iter().any(|i| i["loyalty"]["kind"] == "reverse"));
        assert!(
            tl["items"]
                .as_array()
                .unwrap()
                .iter()
                .any(|i| i["kind"] == "tier")
        );

        // Segments see points and tiers.
        let (s, c) = app
            .post_json(
                "/api/v1/segments/count",
                json!({"expression": "points >= 25 and tier = \"member\""}),
            )
            .await;
        assert_eq!(s, 200, "{c}");
        assert_eq!(c["count"], 1);
        assert!(app.store.unbalanced_members(10).await.unwrap().is_empty());
    }
}

#[tokio::test]
async fn referrals_reward_both_sides_once_on_the_first_purchase() {
    for db in TestDb::all().await {
        let app = spawn_app(db).await;
        program_on(&app, json!({})).await;
        let ann = customer(&app, "Ann Referrer").await;
        let (s, m) = app
            .post_json("/api/v1/loyalty/enrol", json!({"customer_id": ann}))
            .await;
        assert_eq!(s, 200, "{m}");
        assert_eq!(m["balance"], 50, "welcome bonus on enrolment");
        let code = m["referral_code"].as_str().unwrap().to_lowercase();
        let bob = customer(&app, "Bob Referred").await;
        let (s, p) = app
            .post_json(
                "/api/v1/loyalty/referrals",
                json!({"customer_id": ann, "code": code}),
            )
            .await;
        assert_eq!(s, 422, "no self-referral: {p}");
        // Typed in lower case with a dash: still the code.
        let typed = format!("{}-{}", &code[..4], &code[4..]);
        let (s, m) = app
            .post_json(
                "/api/v1/loyalty/referrals",
                json!({"customer_id": bob, "code": typed}),
            )
            .await;
        assert_eq!(s, 200, "{m}");
        assert_eq!(m["referred_by"], ann);
        order(&app, bob, 1_000, json!([])).await;
        order(&app, bob, 1_000, json!([])).await;
        // Bob: welcome 50 + 10 + 10 + referred 100; Ann: 50 + referral 200, once.
        assert_eq!(member(&app, bob).await["balance"], 170);
        assert_eq!(member(&app, ann).await["balance"], 250);
        let (s, _) = app
            .post_json(
                "/api/v1/loyalty/referrals",
                json!({"customer_id": bob, "code": code}),
            )
            .await;
        assert_eq!(s, 409, "referred already and has bought");
    }
}

#[tokio::test]
async fn rewards_and_coupons_keep_their_stock_and_limits() {
    for db in TestDb::all().await {
        let app = spawn_app(db).await;
        program_on(&app, json!({})).await;
        let ann = customer(&app, "Ann Coupon").await;
        keyed(
            &app,
            "/api/v1/loyalty/adjust",
            "seed",
            json!({"customer_id": ann, "points": 1000, "reason": "opening balance"}),
        )
        .await;
        let (s, reward) = app
            .post_json(
                "/api/v1/loyalty/rewards",
                json!({"name": "Tote bag", "points_cost": 400, "stock": 1}),
            )
            .await;
        assert_eq!(s, 201, "{reward}");
        let path = format!("/api/v1/loyalty/rewards/{}/redeem", reward["id"]);
        let (s, r) = keyed(&app, &path, "t-1", json!({"customer_id": ann})).await;
        assert_eq!(
            (s, r["balance"].as_i64()),
            (201, Some(650)),
            "1000 + welcome 50 − 400: {r}"
        );
        let (s, p) = keyed(&app, &path, "t-2", json!({"customer_id": ann})).await;
        assert_eq!(s, 409, "out of stock: {p}");
        let (_, list) = app.get_json("/api/v1/loyalty/rewards").await;
        assert_eq!(list["items"][0]["stock"], 0);

        let (s, c) = app
            .post_json(
                "/api/v1/loyalty/campaigns",
                json!({"name": "Spring", "discount_kind": "percent", "discount_value": 15,
                       "max_uses": 2, "per_customer": 1, "codes": ["spring-26"], "generate": 3}),
            )
            .await;
        assert_eq!(s, 201, "{c}");
        assert_eq!(c["codes"], 4);
        let use_code = |key: &'static str, customer: i64| {
            let app = &app;
            async move {
                keyed(
                    app,
                    "/api/v1/loyalty/coupons/redeem",
                    key,
                    json!({"code": "SPRING26", "customer_id": customer, "order_minor": 2_000}),
                )
                .await
            }
        };
        let (s, r) = use_code("c-1", ann).await;
        assert_eq!((s, r["discount_minor"].as_i64()), (201, Some(300)), "{r}");
        assert_eq!(use_code("c-1", ann).await.1, r, "replayed");
        assert_eq!(use_code("c-2", ann).await.0, 409, "once per customer");
        let bob = customer(&app, "Bob Coupon").await;
        assert_eq!(use_code("c-3", bob).await.0, 201);
        let cid = customer(&app, "Cid Coupon").await;
        assert_eq!(use_code("c-4", cid).await.0, 409, "the code was used up");
        let (s, p) = keyed(
            &app,
            "/api/v1/loyalty/coupons/redeem",
            "c-5",
            json!({"code": "NOPE1", "customer_id": cid}),
        )
        .await;
        assert_eq!(s, 422, "{p}");
        let (_, detail) = app
            .get_json(&format!("/api/v1/loyalty/campaigns/{}", c["id"]))
            .await;
        assert_eq!(detail["campaign"]["uses"], 2);
        assert_eq!(detail["coupons"]["items"].as_array().unwrap().len(), 4);
    }
}

#[tokio::test]
async fn sixty_four_concurrent_redemptions_spend_exactly_the_balance() {
    for db in TestDb::all().await {
        let app = Arc::new(spawn_app(db).await);
        program_on(&app, json!({"bonuses": {"welcome": 0}})).await;
        let ann = customer(&app, "Ann Rush").await;
        keyed(
            &app,
            "/api/v1/loyalty/adjust",
            "seed",
            json!({"customer_id": ann, "points": 1000, "reason": "opening balance"}),
        )
        .await;
        let mut tasks = Vec::new();
        for i in 0..64 {
            let app = app.clone();
            tasks.push(tokio::spawn(async move {
                keyed(
                    &app,
                    "/api/v1/loyalty/redeem",
                    &format!("rush-{i}"),
                    json!({"customer_id": ann, "points": 45, "reason": "rush"}),
                )
                .await
                .0
            }));
        }
        let mut statuses = Vec::new();
        for t in tasks {
            statuses.push(t.await.unwrap());
        }
        let won = statuses.iter().filter(|s| **s == 201).count();
        let refused = statuses.iter().filter(|s| **s == 409).count();
        assert_eq!(
            (won, refused),
            (22, 42),
            "1000 covers 22 × 45: {statuses:?}"
        );
        let m = member(&app, ann).await;
        assert_eq!(m["balance"], 10);
        assert_balanced(&app, ann).await;
    }
}

#[tokio::test]
async fn concurrent_earn_redeem_and_expiry_lose_no_update() {
    for db in TestDb::all().await {
        let start = Utc.with_ymd_and_hms(2026, 1, 10, 9, 0, 0).unwrap();
        let clock = Clock::fixed(start);
        let app = Arc::new(crate::lifecycle::app_at(db, &clock).await);
        program_on(
            &app,
            json!({"bonuses": {"welcome": 0}, "lifetime_days": 30}),
        )
        .await;
        let ann = customer(&app, "Ann Busy").await;
        for i in 0..10 {
            keyed(
                &app,
                "/api/v1/loyalty/earn",
                &format!("old-{i}"),
                json!({"customer_id": ann, "points": 100, "reason": "old"}),
            )
            .await;
        }
        // A month and a day later the old lots are due to expire.
        clock.set(start + chrono::Duration::days(31));
        let mut tasks = Vec::new();
        for i in 0..24 {
            let app = app.clone();
            tasks.push(tokio::spawn(async move {
                let (path, points) = if i % 2 == 0 {
                    ("/api/v1/loyalty/earn", 30)
                } else {
                    ("/api/v1/loyalty/redeem", 20)
                };
                let (s, _) = keyed(
                    &app,
                    path,
                    &format!("mix-{i}"),
                    json!({"customer_id": ann, "points": points, "reason": "mix"}),
                )
                .await;
                (i % 2 == 0, s)
            }));
        }
        let expiry = {
            let app = app.clone();
            tokio::spawn(async move {
                app.app
                    .run_loyalty_expiry(&tenure_testkit::operator())
                    .await
                    .unwrap()
            })
        };
        let mut earned = 0;
        let mut redeemed = 0;
        for t in tasks {
            match t.await.unwrap() {
                (true, 201) => earned += 30,
                (false, 201) => redeemed += 20,
                (false, 409) => {}
                other => panic!("unexpected {other:?}"),
            }
        }
        expiry.await.unwrap();
        // A second run finds nothing left to expire.
        let again = app
            .app
            .run_loyalty_expiry(&tenure_testkit::operator())
            .await
            .unwrap();
        assert_eq!(again.expired_lots, 0);
        let m = member(&app, ann).await;
        assert_eq!(
            m["balance"].as_i64().unwrap(),
            earned - redeemed,
            "every old point expired, every new one counted: {m}"
        );
        assert_balanced(&app, ann).await;
        let expired: i64 = app
            .store
            .loyalty_entries(CustomerId(ann), None, 500)
            .await
            .unwrap()
            .items
            .iter()
            .filter(|e| e.kind == tenure_domain::loyalty::EntryKind::Expire)
            .map(|e| -e.points)
            .sum();
        assert_eq!(expired, 1000, "each old lot expired once");
    }
}

async fn count(pool: &sqlx::AnyPool, sql: &'static str) -> i64 {
    sqlx::query(sql)
        .fetch_one(pool)
        .await
        .unwrap()
        .get::<i64, _>(0)
}

#[tokio::test]
async fn an_expiry_run_killed_half_way_leaves_the_ledger_balanced_and_the_next_completes_it() {
    for db in TestDb::all().await {
        crate::ok(&crate::tenure(&db, &["demo", "--customers", "3000"]));
        let pool = db.raw_pool().await;
        let lots = count(
            &pool,
            "SELECT COUNT(*) FROM loyalty_lots WHERE remaining > 0",
        )
        .await;
        assert!(lots > 10_000, "the demo's members hold many lots: {lots}");
        // Every lot's time is up.
        sqlx::query("UPDATE loyalty_lots SET expires_at = 1")
            .execute(&pool)
            .await
            .unwrap();
        let mut child = Command::new(env!("CARGO_BIN_EXE_tenure"))
            .args(["loyalty", "expire"])
            .env("DATABASE_URL", &db.url)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(120);
        while count(
            &pool,
            "SELECT COUNT(*) FROM loyalty_entries WHERE kind = 'expire'",
        )
        .await
            < 1_500
            && Instant::now() < deadline
        {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        child.kill().unwrap();
        child.wait().unwrap();
        let expired = count(
            &pool,
            "SELECT COUNT(*) FROM loyalty_entries WHERE kind = 'expire'",
        )
        .await;
        assert!(
            expired > 0 && expired < lots,
            "killed half-way: {expired} of {lots}"
        );
        let out = crate::tenure(&db, &["loyalty", "check"]);
        assert!(
            out.status.success(),
            "balanced after the kill: {}",
            String::from_utf8_lossy(&out.stderr)
        );

        let out = crate::ok(&crate::tenure(&db, &["loyalty", "expire"]));
        assert!(out.contains("lots expired: "), "{out}");
        assert_eq!(
            count(
                &pool,
                "SELECT COUNT(*) FROM loyalty_entries WHERE kind = 'expire'"
            )
            .await,
            lots,
            "every lot expired once"
        );
        assert_eq!(
            count(
                &pool,
                "SELECT COUNT(*) FROM loyalty_lots WHERE remaining > 0 AND expires_at = 1"
            )
            .await,
            0,
            "nothing due is left"
        );
        crate::ok(&crate::tenure(&db, &["loyalty", "check"]));
        let out = crate::ok(&crate::tenure(&db, &["loyalty", "expire"]));
        assert!(
            out.contains("lots expired: 0"),
            "a third run changes nothing: {out}"
        );
    }
}

#[tokio::test]
async fn imported_orders_earn_once_and_tiers_move_up_at_once_and_down_after_grace() {
    for db in TestDb::all().await {
        let start = Utc.with_ymd_and_hms(2026, 3, 1, 9, 0, 0).unwrap();
        let clock = Clock::fixed(start);
        let app = crate::lifecycle::app_at(db, &clock).await;
        program_on(
            &app,
            json!({"bonuses": {"welcome": 0}, "tier_window_days": 90, "tier_grace_days": 30,
                   "starts_at": "2026-01-01T00:00:00Z"}),
        )
        .await;
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("purchases.csv");
        std::fs::write(
            &file,
            "customer_external_id,occurred_at,amount\nP1,2025-12-20,100.00\nP1,2026-02-01,2500.00\nP2,2026-02-10,600.00\n",
        )
        .unwrap();
        crate::ok(&crate::tenure(
            &app.db,
            &["import", "purchases", file.to_str().unwrap()],
        ));
        let actor = tenure_testkit::operator();
        assert_eq!(
            app.app.earn_missing(&actor).await.unwrap(),
            2,
            "the order before the start earns nothing"
        );
        assert_eq!(
            app.app.earn_missing(&actor).await.unwrap(),
            0,
            "and nothing twice"
        );
        let pool = app.db.raw_pool().await;
        let id_of = |ext: &'static str| {
            let pool = pool.clone();
            async move {
                sqlx::query("SELECT id FROM customers WHERE external_id = $1")
                    .bind(ext)
                    .fetch_one(&pool)
                    .await
                    .unwrap()
                    .get::<i64, _>(0)
            }
        };
        let (p1, p2) = (id_of("P1").await, id_of("P2").await);
        assert_eq!(member(&app, p1).await["balance"], 2500);
        let r = app.app.evaluate_tiers(&actor).await.unwrap();
        assert_eq!((r.upgraded, r.downgraded), (2, 0));
        assert_eq!(member(&app, p1).await["tier"], "gold");
        let m2 = member(&app, p2).await;
        assert_eq!(m2["tier"], "silver");
        assert_eq!(m2["next_tier"]["name"], "gold");
        assert_eq!(m2["next_tier"]["to_go"], 1400);

        // Spending points does not lower a tier: it is earned points that count.
        keyed(
            &app,
            "/api/v1/loyalty/redeem",
            "spend",
            json!({"customer_id": p1, "points": 2400}),
        )
        .await;
        app.app.evaluate_tiers(&actor).await.unwrap();
        assert_eq!(member(&app, p1).await["tier"], "gold");

        // After the window the points no longer qualify: grace first, then down.
        clock.set(start + chrono::Duration::days(100));
        let r = app.app.evaluate_tiers(&actor).await.unwrap();
        assert_eq!((r.grace_started, r.downgraded), (2, 0));
        let m = member(&app, p1).await;
        assert_eq!(m["tier"], "gold");
        assert!(m["grace_until"].is_string());
        clock.set(start + chrono::Duration::days(131));
        let r = app.app.evaluate_tiers(&actor).await.unwrap();
        assert_eq!(r.downgraded, 2);
        let m = member(&app, p1).await;
        assert_eq!(m["tier"], "member");
        let moves: Vec<(Value, Value)> = m["tier_history"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| (t["from"].clone(), t["to"].clone()))
            .collect();
        assert_eq!(
            moves,
            [
                (json!("gold"), json!("member")),
                (json!("member"), json!("gold")),
                (Value::Null, json!("member")),
            ]
        );
        let (s, report) = app.get_json("/api/v1/analytics/loyalty").await;
        assert_eq!(s, 200, "{report}");
        assert_eq!(report["members"], 2);
        assert_eq!(report["points_available"], 100 + 600);
        assert!((report["liability"].as_f64().unwrap() - 7.0).abs() < 1e-9);
        assert!(report["tier_moves"].as_array().unwrap().len() >= 2);
    }
}

#[tokio::test]
async fn a_member_link_opens_the_member_page_and_a_forged_or_expired_one_is_refused() {
    for db in TestDb::all().await {
        let app = spawn_app(db).await;
        program_on(&app, json!({})).await;
        let ann = customer(&app, "Ann Phone").await;
        order(&app, ann, 12_345, json!([])).await;
        let (s, link) = app
            .post_json(
                &format!("/api/v1/customers/{ann}/member-link"),
                json!({"days": 7}),
            )
            .await;
        assert_eq!(s, 201, "{link}");
        let token = link["token"].as_str().unwrap();
        assert!(
            link["url"]
                .as_str()
                .unwrap()
                .ends_with(&format!("/m/{token}"))
        );
        let page = app
            .client
            .get(app.url(&format!("/m/{token}?lang=zh-CN")))
            .send()
            .await
            .unwrap();
        assert_eq!(page.status(), 200);
        let html = page.text().await.unwrap();
        assert!(html.contains("173"), "balance 123 + 50 welcome: {html}");
        assert!(html.contains("积分"), "in the customer's language");
        // One character changed in the signature, or another customer's id: refused.
        let mut forged = token.to_owned();
        let last = forged.pop().unwrap();
        forged.push(if last == 'A' { 'B' } else { 'A' });
        let res = app
            .client
            .get(app.url(&format!("/m/{forged}")))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 403);
        let other = token.replacen(&ann.to_string(), &(ann + 1).to_string(), 1);
        let res = app
            .client
            .get(app.url(&format!("/m/{other}")))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 403);
        let res = app.client.get(app.url("/m/garbage")).send().await.unwrap();
        assert_eq!(res.status(), 403);
    }
}

#[tokio::test]
async fn pending_points_wait_for_the_return_window_and_member_links_expire() {
    for db in TestDb::all().await {
        let start = Utc.with_ymd_and_hms(2026, 5, 1, 9, 0, 0).unwrap();
        let clock = Clock::fixed(start);
        let app = crate::lifecycle::app_at(db, &clock).await;
        program_on(&app, json!({"bonuses": {"welcome": 0}, "pending_days": 14})).await;
        let ann = customer(&app, "Ann Pending").await;
        let o = order(&app, ann, 8_000, json!([])).await;
        let m = member(&app, ann).await;
        assert_eq!(
            (m["balance"].as_i64(), m["pending"].as_i64()),
            (Some(0), Some(80)),
            "{m}"
        );
        assert_eq!(m["lots"][0]["pending"], true);
        let (s, _) = keyed(
            &app,
            "/api/v1/loyalty/redeem",
            "early",
            json!({"customer_id": ann, "points": 10}),
        )
        .await;
        assert_eq!(s, 409, "pending points cannot be spent");
        assert_balanced(&app, ann).await;

        // A member link for a day, opened two days later, is refused.
        let (s, link) = app
            .post_json(
                &format!("/api/v1/customers/{ann}/member-link"),
                json!({"days": 1}),
            )
            .await;
        assert_eq!(s, 201, "{link}");
        let url = app.url(&format!("/m/{}", link["token"].as_str().unwrap()));
        assert_eq!(app.client.get(&url).send().await.unwrap().status(), 200);

        // The return window closes: the run releases them, once.
        clock.set(start + chrono::Duration::days(15));
        let actor = tenure_testkit::operator();
        let r = app.app.run_loyalty_expiry(&actor).await.unwrap();
        assert_eq!(r.released_lots, 1);
        assert_eq!(
            app.app
                .run_loyalty_expiry(&actor)
                .await
                .unwrap()
                .released_lots,
            0
        );
        let m = member(&app, ann).await;
        assert_eq!(
            (m["balance"].as_i64(), m["pending"].as_i64()),
            (Some(80), Some(0)),
            "{m}"
        );
        assert_balanced(&app, ann).await;
        assert_eq!(
            app.client.get(&url).send().await.unwrap().status(),
            403,
            "expired"
        );

        // A refund within the window takes the points from the pending bucket.
        let o2 = order(&app, ann, 5_000, json!([])).await;
        assert_eq!(member(&app, ann).await["pending"], 50);
        let res = app
            .admin(Method::PATCH, &format!("/api/v1/orders/{o2}"))
            .json(&json!({"status": "refunded"}))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 200);
        let m = member(&app, ann).await;
        assert_eq!(
            (m["balance"].as_i64(), m["pending"].as_i64()),
            (Some(80), Some(0)),
            "{m}"
        );
        assert_balanced(&app, ann).await;
        let _ = o;
    }
}

#[tokio::test]
async fn a_merge_moves_the_points_to_the_survivor_and_an_undo_gives_them_back() {
    for db in TestDb::all().await {
        let app = spawn_app(db).await;
        program_on(&app, json!({"bonuses": {"welcome": 0}})).await;
        let ann = customer(&app, "Ann Twice").await;
        let dup = customer(&app, "Ann Twice").await;
        order(&app, ann, 10_000, json!([])).await;
        order(&app, dup, 4_000, json!([])).await;
        let (s, merge) = app
            .post_json(
                &format!("/api/v1/customers/{ann}/merge"),
                json!({"duplicate_id": dup}),
            )
            .await;
        assert_eq!(s, 200, "{merge}");
        assert_eq!(
            member(&app, ann).await["balance"],
            140,
            "both members' points"
        );
        assert_balanced(&app, ann).await;
        let (s, undone) = app
            .post_json(&format!("/api/v1/merges/{}/undo", merge["id"]), json!({}))
            .await;
        assert_eq!(s, 200, "{undone}");
        let restored = undone["merged_id"].as_i64().unwrap();
        assert_eq!(member(&app, ann).await["balance"], 100);
        assert_eq!(member(&app, restored).await["balance"], 40);
        assert_balanced(&app, ann).await;
        assert_balanced(&app, restored).await;
    }
}
