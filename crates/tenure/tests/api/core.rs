//! The application core: every write in one transaction with its effects, the change log,
//! the registry of customer-owned tables, and the defects found reading the store.

use std::sync::Arc;

use serde_json::json;
use sqlx::Row;
use tenure_app::unit::{Context, Handler, HandlerFuture};
use tenure_app::{App, AppError, PageRequest};
use tenure_domain::catalog::{OrderData, OrderStatus, SalesChannel};
use tenure_domain::changes::{ActorKind, Entity, Event, Operation, Source};
use tenure_domain::customer::{
    ConsentChannel, ConsentInput, ConsentStatus, CustomerInput, ProfileInput,
};
use tenure_domain::ids::CustomerId;
use tenure_store::changes::ChangeFilter;
use tenure_store::{Store, StoreError};
use tenure_testkit::{TestDb, operator, spawn_app};

/// A handler that refuses the creation of a customer with one name: the write must roll
/// back with it.
struct RefuseName(&'static str);

impl Handler for RefuseName {
    fn name(&self) -> &'static str {
        "refuse a name"
    }

    fn handle<'a>(&'a self, ctx: &'a mut Context<'_, '_>, event: &'a Event) -> HandlerFuture<'a> {
        Box::pin(async move {
            if let Event::CustomerCreated { customer } = event {
                let c = ctx.tx.get_customer(*customer).await?;
                if c.data.name == self.0 {
                    return Err(AppError::Internal("refused by the test handler".into()));
                }
            }
            Ok(())
        })
    }
}

fn named(name: &str) -> CustomerInput<'_> {
    CustomerInput {
        profile: ProfileInput {
            name,
            ..Default::default()
        },
        ..Default::default()
    }
}

async fn all_changes(store: &Store) -> Vec<tenure_store::changes::ChangeRecord> {
    store
        .changes(&ChangeFilter::default(), None, 1000)
        .await
        .unwrap()
        .items
}

#[tokio::test]
async fn a_committed_write_leaves_one_change_log_entry_and_a_rolled_back_one_none() {
    for db in TestDb::all().await {
        let store = db.store().await;
        let app = App::builder(store.clone())
            .handler(Arc::new(RefuseName("Doomed")))
            .build();
        let me = operator();

        let refused = app.create_customer(&me, named("Doomed")).await;
        assert!(matches!(refused, Err(AppError::Internal(_))), "{refused:?}");
        let found = app
            .list_customers(&me, Default::default(), &PageRequest::default())
            .await
            .unwrap();
        assert!(
            found.items.is_empty(),
            "the refused customer was rolled back"
        );
        assert!(
            all_changes(&store).await.is_empty(),
            "a rolled-back write leaves no change-log entry"
        );

        let kept = app.create_customer(&me, named("Kept")).await.unwrap();
        let changes = all_changes(&store).await;
        assert_eq!(changes.len(), 1, "{changes:?}");
        let c = &changes[0];
        assert_eq!(
            (c.change.entity, c.change.operation, c.change.entity_id),
            (Entity::Customer, Operation::Create, Some(kept.id.0))
        );
        assert_eq!(c.change.customer_id, Some(kept.id));
        assert_eq!((c.actor_kind, c.source), (ActorKind::Cli, Source::Cli));
        assert_eq!(c.actor_name, "test");

        // A failed write of another kind (an order for a missing customer) leaves nothing.
        let before = all_changes(&store).await.len();
        let order = tenure_domain::catalog::OrderInput {
            external_id: None,
            occurred_at: chrono::Utc::now(),
            currency: None,
            total_minor: Some(100),
            channel: None,
            status: None,
            lines: Vec::new(),
        };
        assert!(app.record_order(&me, 999_999, order).await.is_err());
        assert_eq!(all_changes(&store).await.len(), before);
    }
}

#[tokio::test]
async fn every_api_write_is_in_the_change_log_with_its_token() {
    for db in TestDb::all().await {
        let app = spawn_app(db).await;
        let (_, c) = app
            .post_json("/api/v1/customers", json!({"name": "Logged"}))
            .await;
        let id = c["id"].as_i64().unwrap();
        let (status, o) = app
            .post_json(
                "/api/v1/orders",
                json!({"customer_id": id, "occurred_at": "2024-02-01T10:00:00Z", "total_minor": 990}),
            )
            .await;
        assert_eq!(status, 201, "{o}");
        let res = app
            .admin(reqwest::Method::PATCH, &format!("/api/v1/customers/{id}"))
            .json(&json!({"region": "east"}))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 200);
        let changes = app
            .store
            .changes(
                &ChangeFilter {
                    customer_id: Some(CustomerId(id)),
                    ..Default::default()
                },
                None,
                100,
            )
            .await
            .unwrap()
            .items;
        let seen: Vec<_> = changes
            .iter()
            .map(|c| (c.change.entity, c.change.operation))
            .collect();
        assert_eq!(
            seen,
            [
                (Entity::Customer, Operation::Create),
                (Entity::Order, Operation::Create),
                (Entity::Customer, Operation::Update),
            ]
        );
        assert!(
            changes
                .iter()
                .all(|c| c.actor_kind == ActorKind::Token && c.source == Source::Api)
        );
        assert!(changes.iter().all(|c| c.actor_name == "test admin"));
    }
}

#[tokio::test]
async fn an_import_batch_logs_one_entry_in_its_own_transaction() {
    for db in TestDb::all().await {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("purchases.csv");
        std::fs::write(
            &file,
            "customer_external_id,occurred_at,amount\nL1,2024-01-05,10.00\nL2,2024-01-06,12.50\nL1,2024-02-01,3.00\n",
        )
        .unwrap();
        crate::ok(&crate::tenure(
            &db,
            &["import", "purchases", file.to_str().unwrap()],
        ));
        let store = db.store().await;
        let imports: Vec<_> = all_changes(&store)
            .await
            .into_iter()
            .filter(|c| c.change.operation == Operation::Import)
            .collect();
        assert_eq!(imports.len(), 1, "{imports:?}");
        assert_eq!(imports[0].source, Source::Import);
        assert_eq!(imports[0].change.entity, Entity::Order);
        let detail: serde_json::Value =
            serde_json::from_str(imports[0].change.detail.as_deref().unwrap()).unwrap();
        assert_eq!(detail, json!({"inserted": 3, "skipped": 0, "created": 2}));
    }
}

/// Every text column of every table, and the tables with a customer column.
pub(crate) async fn tables(pool: &sqlx::AnyPool, sqlite: bool) -> Vec<(String, Vec<String>)> {
    let names: Vec<String> = if sqlite {
        sqlx::query_scalar(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' \
             AND name NOT LIKE '_sqlx%' ORDER BY name",
        )
        .fetch_all(pool)
        .await
        .unwrap()
    } else {
        sqlx::query_scalar(
            "SELECT table_name::text FROM information_schema.tables WHERE table_schema = 'public' \
             AND table_name NOT LIKE '_sqlx%' ORDER BY 1",
        )
        .fetch_all(pool)
        .await
        .unwrap()
    };
    let mut out = Vec::new();
    for t in names {
        let columns: Vec<String> = if sqlite {
            sqlx::query(sqlx::AssertSqlSafe(format!("PRAGMA table_info({t})")))
                .fetch_all(pool)
                .await
                .unwrap()
                .iter()
                .filter(|r| r.get::<String, _>("type").eq_ignore_ascii_case("TEXT"))
                .map(|r| r.get::<String, _>("name"))
                .collect()
        } else {
            sqlx::query_scalar(
                "SELECT column_name::text FROM information_schema.columns \
                 WHERE table_name = $1 AND data_type = 'text'",
            )
            .bind(t.clone())
            .fetch_all(pool)
            .await
            .unwrap()
        };
        out.push((t, columns));
    }
    out
}

#[tokio::test]
async fn a_deleted_customer_leaves_no_trace_of_their_personal_data_in_any_table() {
    for db in TestDb::all().await {
        let sqlite = db.backend == tenure_store::Backend::Sqlite;
        let store = db.store().await;
        let app = App::new(store.clone());
        let me = operator();
        let mut input = named("Zebulon Quixotic");
        input.profile.external_id = Some("ZQ-1");
        input.profile.email = Some("zebulon.q@nowhere.example");
        input.profile.phone = Some("+44 20 7946 0958");
        input.profile.tags = vec!["zebulon-fan".into()];
        input.consents = vec![ConsentInput {
            channel: ConsentChannel::Email,
            status: ConsentStatus::Granted,
            source: "Zebulon's web form".into(),
            at: None,
        }];
        let zeb = app.create_customer(&me, input).await.unwrap();
        // A duplicate merged into them: merge records and aliases hold their profiles.
        let mut dup = named("Zeb Quixotic");
        dup.profile.external_id = Some("ZQ-2");
        dup.profile.email = Some("zebulon.q@nowhere.example");
        let dup = app.create_customer(&me, dup).await.unwrap();
        let pairs = app
            .duplicate_candidates(&me, Some(zeb.id), None, &PageRequest::default())
            .await
            .unwrap();
        assert_eq!(pairs.items.len(), 1, "the two are candidates");
        app.merge_customers(&me, zeb.id, dup.id).await.unwrap();
        let order = tenure_domain::catalog::OrderInput {
            external_id: Some("ZQ-order".into()),
            occurred_at: chrono::Utc::now(),
            currency: None,
            total_minor: None,
            channel: None,
            status: None,
            lines: vec![tenure_domain::catalog::OrderLineInput {
                description: "Zebulon's usual".into(),
                quantity: 1,
                unit_price_minor: 450,
                ..Default::default()
            }],
        };
        app.record_order(&me, zeb.id.0, order).await.unwrap();
        let call = tenure_domain::interaction::InteractionInput {
            external_id: Some("ZQ-call".into()),
            channel: tenure_domain::customer::Channel::Phone,
            direction: tenure_domain::customer::Direction::Inbound,
            kind: None,
            subject: "Zebulon called about his order".into(),
            body: "Zebulon Quixotic, +44 20 7946 0958".into(),
            staff_user_id: None,
            buying_signal: false,
            occurred_at: None,
        };
        app.record_interaction(&me, zeb.id.0, call).await.unwrap();
        // Someone else, to see that the check finds what is there.
        app.create_customer(&me, named("Ada Bystander"))
            .await
            .unwrap();

        let pool = db.raw_pool().await;
        let count = |table: &str, column: &str, needle: &str| {
            let sql = format!("SELECT COUNT(*) FROM {table} WHERE LOWER({column}) LIKE $1");
            let pool = pool.clone();
            let needle = format!("%{}%", needle.to_lowercase());
            async move {
                sqlx::query_scalar::<_, i64>(sqlx::AssertSqlSafe(sql))
                    .bind(needle)
                    .fetch_one(&pool)
                    .await
                    .unwrap()
            }
        };
        let schema = tables(&pool, sqlite).await;
        let found_before = {
            let mut n = 0;
            for (t, cols) in &schema {
                for c in cols {
                    n += count(t, c, "zebulon").await;
                }
            }
            n
        };
        assert!(
            found_before > 5,
            "the check sees the data while it is there"
        );

        app.delete_customer(&me, zeb.id).await.unwrap();

        for needle in ["zebulon", "quixotic", "ZQ-", "7946", "nowhere.example"] {
            for (t, cols) in &schema {
                for c in cols {
                    assert_eq!(
                        count(t, c, needle).await,
                        0,
                        "{t}.{c} still holds {needle:?} after the delete"
                    );
                }
            }
        }
        // Every table of the registry: no row names the customer but the change log.
        for table in tenure_store::registry::CUSTOMER_TABLES {
            if table.ownership == tenure_store::registry::Ownership::Log {
                continue;
            }
            for column in table.columns {
                let n: i64 = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
                    "SELECT COUNT(*) FROM {} WHERE {column} = $1",
                    table.name
                )))
                .bind(zeb.id.0)
                .fetch_one(&pool)
                .await
                .unwrap();
                assert_eq!(
                    n, 0,
                    "{}.{column} still names customer {}",
                    table.name, zeb.id
                );
            }
        }
        assert_eq!(count("customers", "name", "bystander").await, 1);
        pool.close().await;
    }
}

#[tokio::test]
async fn ids_are_never_reused_after_a_delete() {
    for db in TestDb::all().await {
        let store = db.store().await;
        let app = App::new(store.clone());
        let me = operator();
        let a = app.create_customer(&me, named("First")).await.unwrap();
        let b = app.create_customer(&me, named("Newest")).await.unwrap();
        app.delete_customer(&me, b.id).await.unwrap();
        let c = app.create_customer(&me, named("After")).await.unwrap();
        assert!(c.id > b.id, "{} reused {}", c.id, b.id);
        // Bulk loads reserve ids past the deleted ones too.
        let ids = app
            .load_customers(&me, &[tenure_domain::customer::CustomerData::named("Bulk")])
            .await
            .unwrap();
        app.delete_customer(&me, ids[0]).await.unwrap();
        let ids2 = app
            .load_customers(
                &me,
                &[tenure_domain::customer::CustomerData::named("Bulk 2")],
            )
            .await
            .unwrap();
        assert!(ids2[0] > ids[0]);

        let order = |total| tenure_domain::catalog::OrderInput {
            external_id: None,
            occurred_at: chrono::Utc::now(),
            currency: None,
            total_minor: Some(total),
            channel: None,
            status: None,
            lines: Vec::new(),
        };
        let o1 = app.record_order(&me, a.id.0, order(100)).await.unwrap();
        app.delete_order(&me, o1.id).await.unwrap();
        let o2 = app.record_order(&me, a.id.0, order(200)).await.unwrap();
        assert!(o2.id > o1.id);
    }
}

#[tokio::test]
async fn a_corrupt_stored_time_is_an_error_not_the_epoch() {
    for db in TestDb::all().await {
        let app = spawn_app(db).await;
        let (_, c) = app
            .post_json("/api/v1/customers", json!({"name": "Time Traveller"}))
            .await;
        let (_, o) = app
            .post_json(
                "/api/v1/orders",
                json!({"customer_id": c["id"], "occurred_at": "2024-03-01T09:00:00Z", "total_minor": 5}),
            )
            .await;
        let pool = app.db.raw_pool().await;
        sqlx::query("UPDATE orders SET occurred_at = $1 WHERE id = $2")
            .bind(i64::MAX)
            .bind(o["id"].as_i64().unwrap())
            .execute(&pool)
            .await
            .unwrap();
        pool.close().await;
        let read = app
            .store
            .get_order(tenure_domain::ids::OrderId(o["id"].as_i64().unwrap()))
            .await;
        assert!(
            matches!(
                read,
                Err(StoreError::Corrupt {
                    column: "occurred_at",
                    ..
                })
            ),
            "{read:?}"
        );
        let (status, body) = app.get_json(&format!("/api/v1/orders/{}", o["id"])).await;
        assert_eq!(status, 500, "{body}");
        assert_eq!(body["type"], "urn:tenure:problem:internal");
    }
}

#[tokio::test]
async fn a_total_of_i64_min_is_refused_not_wrapped() {
    let app = spawn_app(TestDb::sqlite()).await;
    let (_, c) = app
        .post_json("/api/v1/customers", json!({"name": "Edge"}))
        .await;
    for total in [i64::MIN, -1, 100_000_000_000_001] {
        let (status, body) = app
            .post_json(
                "/api/v1/orders",
                json!({"customer_id": c["id"], "occurred_at": "2024-03-01T09:00:00Z", "total_minor": total}),
            )
            .await;
        assert_eq!(status, 422, "{total}: {body}");
        assert_eq!(body["errors"][0]["field"], "total_minor");
    }
    // A line whose total overflows is an error in the API as in the import.
    let (status, body) = app
        .post_json(
            "/api/v1/orders",
            json!({"customer_id": c["id"], "occurred_at": "2024-03-01T09:00:00Z",
                   "lines": [{"quantity": 1000000, "unit_price_minor": 99999999999999_i64}]}),
        )
        .await;
    assert_eq!(status, 422, "{body}");
    assert_eq!(body["errors"][0]["field"], "lines[0].total_minor");
}

#[tokio::test]
async fn a_sum_beyond_64_bits_is_a_clear_error_and_the_customer_stays_writable() {
    for db in TestDb::all().await {
        let store = db.store().await;
        let mut w = store.begin_write().await.unwrap();
        let c = w
            .create_customer(&tenure_domain::customer::CustomerData::named("Huge"), &[])
            .await
            .unwrap()
            .id;
        w.commit().await.unwrap();
        // The store is below the input rules; amounts this large only reach it from a
        // database written by something else.
        let order = |total| OrderData {
            external_id: None,
            customer_id: c,
            occurred_at: chrono::Utc::now(),
            currency: "USD".into(),
            total_minor: total,
            channel: SalesChannel::Store,
            status: OrderStatus::Completed,
            lines: Vec::new(),
        };
        let mut w = store.begin_write().await.unwrap();
        w.create_order(&order(5_000_000_000_000_000_000))
            .await
            .unwrap();
        w.commit().await.unwrap();
        let mut w = store.begin_write().await.unwrap();
        let second = w.create_order(&order(5_000_000_000_000_000_000)).await;
        assert!(
            matches!(second, Err(StoreError::OutOfRange(_))),
            "{second:?}"
        );
        drop(w);
        // Nothing half-written; a normal order still goes through.
        let mut w = store.begin_write().await.unwrap();
        w.create_order(&order(100)).await.unwrap();
        w.commit().await.unwrap();
        let stats = store.get_customer(c).await.unwrap().stats;
        assert_eq!(
            (stats.orders_count, stats.total_spend_minor),
            (2, 5_000_000_000_000_000_100)
        );
    }
}

#[tokio::test]
async fn concurrent_patches_of_an_account_or_a_product_lose_no_update() {
    for db in TestDb::all().await {
        let app = spawn_app(db).await;
        for round in 0..12 {
            let (_, a) = app
                .post_json("/api/v1/accounts", json!({"name": format!("Acme {round}")}))
                .await;
            let (_, p) = app
                .post_json("/api/v1/products", json!({"name": format!("Tea {round}")}))
                .await;
            let patch = |path: String, body: serde_json::Value| {
                app.admin(reqwest::Method::PATCH, &path).json(&body).send()
            };
            let account = format!("/api/v1/accounts/{}", a["id"]);
            let product = format!("/api/v1/products/{}", p["id"]);
            let (r1, r2, r3, r4) = tokio::join!(
                patch(
                    account.clone(),
                    json!({"name": format!("Acme renamed {round}")})
                ),
                patch(account.clone(), json!({"account_type": "distributor"})),
                patch(product.clone(), json!({"price_minor": 1234})),
                patch(product.clone(), json!({"active": false})),
            );
            for r in [r1, r2, r3, r4] {
                assert_eq!(r.unwrap().status(), 200);
            }
            let (_, a) = app.get_json(&account).await;
            assert_eq!(
                (
                    a["name"].as_str().unwrap(),
                    a["account_type"].as_str().unwrap()
                ),
                (format!("Acme renamed {round}").as_str(), "distributor"),
                "round {round}"
            );
            let (_, p) = app.get_json(&product).await;
            assert_eq!(
                (p["price_minor"].as_i64(), p["active"].as_bool()),
                (Some(1234), Some(false))
            );
        }
    }
}

#[tokio::test]
async fn two_concurrent_undos_of_one_merge_restore_the_customer_once() {
    for db in TestDb::all().await {
        let store = db.store().await;
        let app = App::new(store.clone());
        let me = operator();
        for round in 0..6 {
            let s = app
                .create_customer(&me, named(&format!("Keeper {round}")))
                .await
                .unwrap();
            let d = app
                .create_customer(&me, named(&format!("Gone {round}")))
                .await
                .unwrap();
            let m = app.merge_customers(&me, s.id, d.id).await.unwrap();
            let (a, b) = tokio::join!(app.undo_merge(&me, m.id), app.undo_merge(&me, m.id));
            let ok = [a.is_ok(), b.is_ok()];
            assert_eq!(ok.iter().filter(|x| **x).count(), 1, "{a:?} {b:?}");
            let refused = if a.is_ok() { b } else { a };
            assert!(matches!(refused, Err(AppError::Conflict(_))), "{refused:?}");
            let gone = app
                .list_customers(
                    &me,
                    tenure_app::model::CustomerFilter {
                        q: Some(format!("Gone {round}")),
                        ..Default::default()
                    },
                    &PageRequest::default(),
                )
                .await
                .unwrap();
            assert_eq!(gone.items.len(), 1, "the merged customer came back once");
        }
    }
}
