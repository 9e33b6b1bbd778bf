//! The store story: every storage method exercised in the order a business would use them,
//! on a temporary SQLite file and, when configured, on a fresh PostgreSQL database.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use chrono::{DateTime, TimeZone, Utc};
use proptest::prelude::*;
use tenure_domain::access::Role;
use tenure_domain::catalog::{OrderData, OrderLine, OrderStatus, ProductData, SalesChannel};
use tenure_domain::customer::{
    AccountData, AccountType, Channel, ConsentChange, ConsentChannel, ConsentStatus, CustomerData,
    CustomerPatch, Direction, InteractionKind,
};
use tenure_domain::ids::{CustomerId, InteractionId, OrderId};
use tenure_domain::interaction::InteractionData;
use tenure_store::customers::CustomerFilter;
use tenure_store::timeline::TimelineEntry;
use tenure_store::{Store, StoreError, StoreResult, WriteTx};

/// Runs `f` in a write transaction and commits it.
async fn write<T>(
    store: &Store,
    f: impl for<'w, 's> AsyncFnOnce(&'w mut WriteTx<'s>) -> StoreResult<T>,
) -> StoreResult<T> {
    let mut w = store.begin_write().await?;
    let out = f(&mut w).await?;
    w.commit().await?;
    Ok(out)
}

/// Changes an order with `change`, the way the application does: read it locked, edit,
/// write back.
async fn update_order(
    store: &Store,
    id: OrderId,
    change: impl FnOnce(&mut OrderData) -> Result<(), tenure_domain::Invalid>,
) -> StoreResult<tenure_domain::catalog::Order> {
    let mut w = store.begin_write().await?;
    let before = w.get_order_for_update(id).await?;
    let mut data = before.data.clone();
    change(&mut data).map_err(StoreError::Invalid)?;
    let after = w.update_order(&before, &data).await?;
    w.commit().await?;
    Ok(after)
}
use tenure_testkit::TestDb;

fn at(y: i32, m: u32, d: u32, h: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(y, m, d, h, 0, 0).unwrap()
}

fn order(customer: CustomerId, when: DateTime<Utc>, total: i64) -> OrderData {
    OrderData {
        external_id: None,
        customer_id: customer,
        occurred_at: when,
        currency: "USD".into(),
        total_minor: total,
        channel: SalesChannel::Store,
        status: OrderStatus::Completed,
        lines: vec![],
    }
}

fn interaction(customer: CustomerId, when: DateTime<Utc>) -> InteractionData {
    InteractionData {
        external_id: None,
        customer_id: customer,
        channel: Channel::Phone,
        direction: Direction::Inbound,
        kind: InteractionKind::Call,
        subject: "asked about a refill".into(),
        body: String::new(),
        staff_user_id: None,
        buying_signal: true,
        occurred_at: when,
    }
}

async fn search(store: &Store, q: &str) -> Vec<String> {
    let filter = CustomerFilter {
        q: Some(q.into()),
        ..Default::default()
    };
    let page = store.search_customers(&filter, None, 100).await.unwrap();
    page.items.into_iter().map(|c| c.data.name).collect()
}

#[tokio::test]
async fn store_story() {
    for db in TestDb::all().await {
        story(&db.store().await).await;
    }
}

async fn story(store: &Store) {
    // Staff, an account and a richly described customer.
    let owner = write(store, async |w| {
        w.create_user("owner@example.com", "Olga Owner", Role::Manager, None)
            .await
    })
    .await
    .unwrap();
    let account = write(store, async |w| {
        w.create_account(&AccountData {
            external_id: Some("ACME".into()),
            name: "上海贸易有限公司".into(),
            account_type: AccountType::Distributor,
            owner_id: Some(owner.id),
        })
        .await
    })
    .await
    .unwrap();
    let mut data = CustomerData::named("王小明");
    data.external_id = Some("CRM-1".into());
    data.email = Some("xiaoming@example.com".into());
    data.phone = Some("+86 138 0013 8000".into());
    data.tags = vec!["vip".into(), "常客".into()];
    data.account_id = Some(account.id);
    data.owner_id = Some(owner.id);
    data.preferences
        .insert("room".into(), serde_json::json!("high floor"));
    let consent = ConsentChange {
        channel: ConsentChannel::Email,
        status: ConsentStatus::Granted,
        source: "web form".into(),
        at: at(2024, 1, 1, 9),
    };
    let wang = write(store, async |w| {
        w.create_customer(&data, std::slice::from_ref(&consent))
            .await
    })
    .await
    .unwrap();
    assert_eq!(wang.data, data);
    assert_eq!(wang.consents.len(), 1);
    assert_eq!(wang.stats.orders_count, 0);
    assert_eq!(store.get_customer(wang.id).await.unwrap(), wang);
    assert_eq!(
        store
            .find_customer_by_external_id("CRM-1")
            .await
            .unwrap()
            .map(|c| c.id),
        Some(wang.id)
    );

    // The same external id twice is a conflict, not a second customer.
    let dup = write(store, async |w| w.create_customer(&data, &[]).await).await;
    assert!(matches!(dup, Err(StoreError::Conflict { .. })), "{dup:?}");
    // A missing owner is a field-level error.
    let mut orphan = CustomerData::named("Nobody");
    orphan.owner_id = Some(tenure_domain::ids::StaffUserId(999_999));
    assert!(matches!(
        write(store, async |w| w.create_customer(&orphan, &[]).await).await,
        Err(StoreError::BadReference {
            field: "owner_id",
            ..
        })
    ));

    let mut smith = CustomerData::named("John Smith");
    smith.email = Some("john.smith@example.com".into());
    let smith = write(store, async |w| w.create_customer(&smith, &[]).await)
        .await
        .unwrap();
    let chan = write(store, async |w| {
        w.create_customer(&CustomerData::named("陳大文"), &[]).await
    })
    .await
    .unwrap();

    // Search in both scripts, by email, phone and external id.
    assert_eq!(search(store, "小明").await, ["王小明"]);
    assert_eq!(search(store, "王").await, ["王小明"]);
    assert_eq!(search(store, "大文").await, ["陳大文"]);
    assert_eq!(search(store, "smi").await, ["John Smith"]);
    assert_eq!(search(store, "john smith").await, ["John Smith"]);
    assert_eq!(
        search(store, "john.smith@example.com").await,
        ["John Smith"]
    );
    assert_eq!(search(store, "13800138000").await, ["王小明"]);
    assert_eq!(search(store, "crm-1").await, ["王小明"]);
    assert!(search(store, "nobody").await.is_empty());

    // Filters and pagination.
    let vip = CustomerFilter {
        tag: Some("vip".into()),
        ..Default::default()
    };
    assert_eq!(
        store
            .list_customers(&vip, None, 10)
            .await
            .unwrap()
            .items
            .len(),
        1
    );
    let first = store
        .list_customers(&CustomerFilter::default(), None, 2)
        .await
        .unwrap();
    assert_eq!(first.items.len(), 2);
    let second = store
        .list_customers(&CustomerFilter::default(), first.next, 2)
        .await
        .unwrap();
    assert_eq!(
        second.items.iter().map(|c| c.id).collect::<Vec<_>>(),
        [chan.id]
    );
    assert!(second.next.is_none());

    // Updates: a patch, the version check, tags and search follow the change.
    let patch = CustomerPatch {
        name: Some("王晓明".into()),
        tags: Some(vec!["常客".into()]),
        email: Some(None),
        consents: vec![ConsentChange {
            status: ConsentStatus::Withdrawn,
            at: at(2024, 2, 1, 9),
            ..consent.clone()
        }],
        ..Default::default()
    };
    let updated = write(store, async |w| {
        w.update_customer(wang.id, &patch, Some(wang.version)).await
    })
    .await
    .unwrap();
    assert_eq!(updated.version, wang.version + 1);
    assert_eq!(updated.data.email, None);
    assert_eq!(updated.consents[0].status, ConsentStatus::Withdrawn);
    assert!(matches!(
        write(store, async |w| w
            .update_customer(wang.id, &patch, Some(wang.version))
            .await)
        .await,
        Err(StoreError::VersionMismatch { .. })
    ));
    assert!(
        store
            .list_customers(&vip, None, 10)
            .await
            .unwrap()
            .items
            .is_empty()
    );
    assert!(search(store, "小明").await.is_empty());
    assert_eq!(search(store, "晓明").await, ["王晓明"]);

    // Catalogue and orders; aggregates follow every write.
    let cat = write(store, async |w| w.create_category("Tea", None).await)
        .await
        .unwrap();
    let tea = write(store, async |w| {
        w.create_product(&ProductData {
            external_id: Some("SKU-TEA".into()),
            name: "Longjing".into(),
            category_id: Some(cat.id),
            price_minor: Some(4200),
            currency: "USD".into(),
            active: true,
        })
        .await
    })
    .await
    .unwrap();
    let mut first_order = order(wang.id, at(2024, 3, 1, 10), 0);
    first_order.lines = vec![OrderLine {
        product_id: Some(tea.id),
        description: "Longjing 250g".into(),
        quantity: 2,
        unit_price_minor: 4200,
        total_minor: 8400,
    }];
    first_order.total_minor = 8400;
    let o1 = write(store, async |w| w.create_order(&first_order).await)
        .await
        .unwrap();
    assert_eq!(o1.data.lines, first_order.lines);
    let o2 = write(store, async |w| {
        w.create_order(&order(wang.id, at(2024, 3, 1, 18), 1000))
            .await
    })
    .await
    .unwrap();
    let o3 = write(store, async |w| {
        w.create_order(&order(wang.id, at(2024, 4, 2, 12), 2500))
            .await
    })
    .await
    .unwrap();
    let mut eur = order(wang.id, at(2024, 4, 3, 12), 9999);
    eur.currency = "EUR".into();
    write(store, async |w| w.create_order(&eur).await)
        .await
        .unwrap();
    let s = store.get_customer(wang.id).await.unwrap().stats;
    assert_eq!(s.orders_count, 4);
    assert_eq!(s.purchase_days, 3);
    assert_eq!(
        s.total_spend_minor,
        8400 + 1000 + 2500,
        "spend counts the reporting currency only"
    );
    assert_eq!(s.repeat_spend_minor, 2500);
    assert_eq!(s.first_purchase_at, Some(at(2024, 3, 1, 10)));
    assert_eq!(s.last_purchase_at, Some(at(2024, 4, 3, 12)));

    let cancelled = update_order(store, o3.id, |d| {
        d.status = OrderStatus::Cancelled;
        Ok(())
    });
    assert_eq!(cancelled.await.unwrap().data.status, OrderStatus::Cancelled);
    let s = store.get_customer(wang.id).await.unwrap().stats;
    assert_eq!(
        (s.orders_count, s.total_spend_minor, s.repeat_spend_minor),
        (3, 9400, 0)
    );
    write(store, async |w| w.delete_order(o2.id).await)
        .await
        .unwrap();
    assert!(matches!(
        store.get_order(o2.id).await,
        Err(StoreError::NotFound { .. })
    ));
    assert_eq!(
        store
            .get_customer(wang.id)
            .await
            .unwrap()
            .stats
            .total_spend_minor,
        8400
    );
    let bad = order(CustomerId(999_999), at(2024, 1, 1, 0), 1);
    assert!(matches!(
        write(store, async |w| w.create_order(&bad).await).await,
        Err(StoreError::BadReference {
            field: "customer_id",
            ..
        })
    ));

    // Interactions set the last contact.
    let i1 = write(store, async |w| {
        w.create_interaction(&interaction(wang.id, at(2024, 3, 1, 10)))
            .await
    })
    .await
    .unwrap();
    assert!(i1.data.buying_signal);
    let s = store.get_customer(wang.id).await.unwrap().stats;
    assert_eq!(
        (s.interactions_count, s.last_contact_at),
        (1, Some(at(2024, 3, 1, 10)))
    );

    // The timeline: newest first, ties broken stably, pages neither skip nor repeat.
    let mut seen = Vec::new();
    let mut cursor = None;
    loop {
        let page = store.timeline(wang.id, cursor, 1).await.unwrap();
        seen.extend(page.items.iter().map(TimelineEntry::position));
        match page.next {
            Some(n) => cursor = Some(n),
            None => break,
        }
    }
    assert_eq!(seen.len(), 4, "three orders and one interaction: {seen:?}");
    let mut sorted = seen.clone();
    sorted.sort_by(|a, b| b.cmp(a));
    assert_eq!(seen, sorted);
    assert_eq!(
        seen[2].at_micros, seen[3].at_micros,
        "an order and an interaction at the same time"
    );

    // Rebuilding from raw rows gives what the writes kept.
    let kept = store.all_customer_stats().await.unwrap();
    assert_eq!(
        write(store, async |w| w.rebuild_aggregates().await)
            .await
            .unwrap(),
        3
    );
    assert_eq!(store.all_customer_stats().await.unwrap(), kept);

    // Bulk loading, then deletion cascades.
    let bulk: Vec<CustomerData> = (0..1200)
        .map(|i| {
            let mut d = CustomerData::named(format!("Bulk {i} 李"));
            d.external_id = Some(format!("B{i}"));
            d.tags = vec!["bulk".into()];
            d
        })
        .collect();
    let ids = write(store, async |w| w.insert_customers(&bulk).await)
        .await
        .unwrap();
    assert_eq!(ids.len(), 1200);
    assert_eq!(
        store
            .get_customer(ids[1199])
            .await
            .unwrap()
            .data
            .external_id
            .as_deref(),
        Some("B1199")
    );
    let bulk_tag = CustomerFilter {
        tag: Some("bulk".into()),
        ..Default::default()
    };
    assert_eq!(
        store
            .list_customers(&bulk_tag, None, 1000)
            .await
            .unwrap()
            .items
            .len(),
        1000
    );
    // Search pages walk every match once, however many there are.
    let li = CustomerFilter {
        q: Some("李".into()),
        ..Default::default()
    };
    let mut found = Vec::new();
    let mut after = None;
    loop {
        let page = store.search_customers(&li, after, 500).await.unwrap();
        found.extend(page.items.iter().map(|c| c.id));
        match page.next {
            Some(p) => after = Some(p),
            None => break,
        }
    }
    let total = found.len();
    found.sort();
    found.dedup();
    assert_eq!((total, found.len()), (1200, 1200));
    let li_bulk = CustomerFilter {
        q: Some("bulk 李".into()),
        tag: Some("bulk".into()),
        ..Default::default()
    };
    assert_eq!(
        store
            .search_customers(&li_bulk, None, 5)
            .await
            .unwrap()
            .items
            .len(),
        5
    );
    let fresh = write(store, async |w| {
        w.create_customer(&CustomerData::named("After Bulk"), &[])
            .await
    })
    .await
    .unwrap();
    assert!(
        fresh.id.0 > ids[1199].0,
        "ids keep increasing after a bulk load"
    );

    write(store, async |w| w.delete_customer(wang.id).await)
        .await
        .unwrap();
    assert!(matches!(
        store.get_customer(wang.id).await,
        Err(StoreError::NotFound { .. })
    ));
    assert!(matches!(
        store.get_order(o1.id).await,
        Err(StoreError::NotFound { .. })
    ));
    assert!(
        store
            .list_interactions(Some(wang.id), None, 10)
            .await
            .unwrap()
            .items
            .is_empty()
    );
    assert!(matches!(
        write(store, async |w| w.delete_customer(wang.id).await).await,
        Err(StoreError::NotFound { .. })
    ));
    let _ = (smith, i1);

    // Tokens resolve by hash, and stop when revoked.
    let token_id = write(store, async |w| {
        w.create_token("ci", Role::Agent, "tnr_secret", None).await
    })
    .await
    .unwrap();
    assert_eq!(
        store
            .authenticate_token("tnr_secret")
            .await
            .unwrap()
            .map(|p| p.role),
        Some(Role::Agent)
    );
    assert_eq!(store.authenticate_token("tnr_other").await.unwrap(), None);
    write(store, async |w| w.revoke_token(token_id).await)
        .await
        .unwrap();
    assert_eq!(store.authenticate_token("tnr_secret").await.unwrap(), None);
}

/// One write of the property test.
#[derive(Debug, Clone)]
enum Op {
    Insert {
        customer: usize,
        day: u32,
        hour: u32,
        amount: i64,
        cancelled: bool,
        euro: bool,
    },
    Update {
        order: usize,
        day: u32,
        amount: i64,
        cancelled: bool,
        customer: usize,
    },
    Delete {
        order: usize,
    },
    Contact {
        customer: usize,
        day: u32,
    },
    Uncontact {
        interaction: usize,
    },
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => (0..3usize, 1..28u32, 0..24u32, 1..100_000i64, prop::bool::weighted(0.2), prop::bool::weighted(0.1))
            .prop_map(|(customer, day, hour, amount, cancelled, euro)| Op::Insert { customer, day, hour, amount, cancelled, euro }),
        2 => (0..50usize, 1..28u32, 1..100_000i64, prop::bool::weighted(0.3), 0..3usize)
            .prop_map(|(order, day, amount, cancelled, customer)| Op::Update { order, day, amount, cancelled, customer }),
        1 => (0..50usize).prop_map(|order| Op::Delete { order }),
        1 => (0..3usize, 1..28u32).prop_map(|(customer, day)| Op::Contact { customer, day }),
        1 => (0..50usize).prop_map(|interaction| Op::Uncontact { interaction }),
    ]
}

async fn run_ops(store: &Store, ops: &[Op]) {
    let mut customers = Vec::new();
    for i in 0..3 {
        customers.push(
            write(store, async |w| {
                w.create_customer(&CustomerData::named(format!("P{i}")), &[])
                    .await
            })
            .await
            .unwrap()
            .id,
        );
    }
    let mut orders: Vec<OrderId> = Vec::new();
    let mut interactions: Vec<InteractionId> = Vec::new();
    for op in ops {
        match *op {
            Op::Insert {
                customer,
                day,
                hour,
                amount,
                cancelled,
                euro,
            } => {
                let mut o = order(customers[customer], at(2024, 5, day, hour), amount);
                if cancelled {
                    o.status = OrderStatus::Cancelled;
                }
                if euro {
                    o.currency = "EUR".into();
                }
                orders.push(
                    write(store, async |w| w.create_order(&o).await)
                        .await
                        .unwrap()
                        .id,
                );
            }
            Op::Update {
                order,
                day,
                amount,
                cancelled,
                customer,
            } if !orders.is_empty() => {
                let id = orders[order % orders.len()];
                update_order(store, id, |d| {
                    d.occurred_at = at(2024, 5, day, 12);
                    d.total_minor = amount;
                    d.status = if cancelled {
                        OrderStatus::Cancelled
                    } else {
                        OrderStatus::Completed
                    };
                    d.customer_id = customers[customer];
                    Ok(())
                })
                .await
                .unwrap();
            }
            Op::Delete { order } if !orders.is_empty() => {
                let id = orders.remove(order % orders.len());
                write(store, async |w| w.delete_order(id).await)
                    .await
                    .unwrap();
            }
            Op::Contact { customer, day } => {
                interactions.push(
                    write(store, async |w| {
                        w.create_interaction(&interaction(customers[customer], at(2024, 5, day, 8)))
                            .await
                    })
                    .await
                    .unwrap()
                    .id,
                );
            }
            Op::Uncontact { interaction } if !interactions.is_empty() => {
                let id = interactions.remove(interaction % interactions.len());
                write(store, async |w| w.delete_interaction(id).await)
                    .await
                    .unwrap();
            }
            _ => {}
        }
    }
}

fn check_rebuild_equals_incremental(cases: u32, postgres: bool) {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let config = ProptestConfig {
        cases,
        failure_persistence: None,
        ..ProptestConfig::default()
    };
    proptest!(config, |(ops in prop::collection::vec(op(), 1..40))| {
        rt.block_on(async {
            let db = if postgres { TestDb::postgres().await } else { Some(TestDb::sqlite()) };
            let Some(db) = db else { return };
            let store = db.store().await;
            run_ops(&store, &ops).await;
            let incremental = store.all_customer_stats().await.unwrap();
            write(&store, async |w| w.rebuild_aggregates().await).await.unwrap();
            let rebuilt = store.all_customer_stats().await.unwrap();
            assert_eq!(incremental, rebuilt, "ops: {ops:?}");
            store.close().await;
        });
    });
}

#[test]
fn aggregates_rebuild_equals_incremental_on_sqlite() {
    check_rebuild_equals_incremental(48, false);
}

#[test]
fn aggregates_rebuild_equals_incremental_on_postgres() {
    check_rebuild_equals_incremental(12, true);
}

#[tokio::test]
async fn concurrent_orders_for_one_customer_keep_exact_aggregates() {
    for db in TestDb::all().await {
        let store = db.store().await;
        let c = write(&store, async |w| {
            w.create_customer(&CustomerData::named("Rush"), &[]).await
        })
        .await
        .unwrap()
        .id;
        let mut tasks = Vec::new();
        for i in 0..48 {
            let store = store.clone();
            tasks.push(tokio::spawn(async move {
                let day = i % 28 + 1;
                write(&store, async |w| {
                    w.create_order(&order(c, at(2024, 6, day, 12), 10)).await
                })
                .await
                .unwrap();
                write(&store, async |w| {
                    w.create_interaction(&interaction(c, at(2024, 6, day, 13)))
                        .await
                })
                .await
                .unwrap();
            }));
        }
        for t in tasks {
            t.await.unwrap();
        }
        let s = store.get_customer(c).await.unwrap().stats;
        assert_eq!(
            (
                s.orders_count,
                s.total_spend_minor,
                s.purchase_days,
                s.interactions_count
            ),
            (48, 480, 28, 48)
        );
    }
}

#[tokio::test]
async fn a_restored_backup_holds_the_whole_story_and_takes_new_writes() {
    let mut pairs = vec![(TestDb::sqlite(), TestDb::sqlite())];
    if let (Some(a), Some(b)) = (TestDb::postgres().await, TestDb::postgres().await) {
        pairs.push((a, b));
    }
    for (db, target) in pairs {
        let store = db.store().await;
        story(&store).await;
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("tenure.backup");
        store.backup(&file).await.unwrap();
        assert!(
            store.backup(&file).await.is_err(),
            "a backup never overwrites a file"
        );
        tenure_store::backup::restore(&file, &target.url)
            .await
            .unwrap();
        assert!(
            tenure_store::backup::restore(&file, &target.url)
                .await
                .is_err(),
            "a restore never overwrites a database"
        );
        let restored = target.store().await;
        let before = store.table_counts().await.unwrap();
        let after = restored.table_counts().await.unwrap();
        assert!(
            before.iter().map(|(_, n)| n).sum::<i64>() > 50,
            "{before:?}"
        );
        assert_eq!(after, before, "every table holds what it held");
        // What the story reads back reads the same from the restored copy.
        assert_eq!(
            search(&restored, "小明").await,
            search(&store, "小明").await
        );
        let original: Vec<_> = {
            use futures_util::TryStreamExt;
            store.stream_customers().try_collect().await.unwrap()
        };
        let copy: Vec<_> = {
            use futures_util::TryStreamExt;
            restored.stream_customers().try_collect().await.unwrap()
        };
        assert_eq!(copy, original);
        // New writes continue the ids, never reuse them.
        let newest = original.iter().map(|c| c.id.0).max().unwrap();
        let made = write(&restored, async |w| {
            w.create_customer(&CustomerData::named("After the restore"), &[])
                .await
        })
        .await
        .unwrap();
        assert!(made.id.0 > newest, "{} after {newest}", made.id);
        // A file that is not a backup is refused.
        let junk = dir.path().join("junk");
        std::fs::write(&junk, b"not a database").unwrap();
        let fresh = TestDb::sqlite();
        assert!(
            tenure_store::backup::restore(&junk, &fresh.url)
                .await
                .is_err()
        );
    }
}
