//! `tenure import`: bad rows reported by line, re-runs idempotent, encodings, and an
//! import killed half-way completed by running it again — on both databases.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::tenure;
use tenure_store::customers::CustomerFilter;
use tenure_testkit::TestDb;

/// The stored customer with `external_id`.
async fn customer(
    store: &tenure_store::Store,
    external_id: &str,
) -> tenure_domain::customer::Customer {
    store
        .find_customer_by_external_id(external_id)
        .await
        .unwrap()
        .unwrap_or_else(|| panic!("no customer {external_id}"))
}

/// The order rows stored, read from the table (the aggregates of a first load are built
/// only at its end).
async fn stored_orders(db: &TestDb) -> usize {
    let pool = db.raw_pool().await;
    let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM orders")
        .fetch_one(&pool)
        .await
        .unwrap();
    pool.close().await;
    n as usize
}

/// Whether the index `name` exists.
/// On PostgreSQL, whether the orders' foreign key to their customer is there, and checked
/// for every row (`None` on SQLite, whose keys are part of the table).
async fn orders_key_validated(db: &TestDb) -> Option<bool> {
    if db.backend != tenure_store::Backend::Postgres {
        return None;
    }
    let pool = db.raw_pool().await;
    let v: Option<bool> = sqlx::query_scalar(
        "SELECT convalidated FROM pg_constraint WHERE conrelid = CAST('orders' AS regclass) \
         AND contype = 'f' AND pg_get_constraintdef(oid) LIKE '%REFERENCES customers%'",
    )
    .fetch_optional(&pool)
    .await
    .unwrap();
    pool.close().await;
    Some(v.unwrap_or(false))
}

async fn index_exists(db: &TestDb, name: &str) -> bool {
    let pool = db.raw_pool().await;
    let sql = match db.backend {
        tenure_store::Backend::Sqlite => {
            "SELECT COUNT(*) FROM sqlite_master WHERE type = 'index' AND name = $1"
        }
        tenure_store::Backend::Postgres => {
            "SELECT COUNT(*) FROM pg_indexes WHERE schemaname = current_schema() AND indexname = $1"
        }
    };
    let n: i64 = sqlx::query_scalar(sql)
        .bind(name)
        .fetch_one(&pool)
        .await
        .unwrap();
    pool.close().await;
    n > 0
}

async fn orders_count(store: &tenure_store::Store) -> usize {
    let stats = store.all_customer_stats().await.unwrap();
    stats.iter().map(|(_, s)| s.orders_count as usize).sum()
}

#[tokio::test]
async fn purchase_logs_import_once_with_bad_rows_reported_by_line() {
    for db in TestDb::all().await {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("purchases.csv");
        // A spreadsheet export: byte-order mark, CRLF, a header in any case, bad rows.
        let text = "\u{feff}Customer_External_ID,occurred_at,amount,channel\r\n\
                    C1,2024-01-05,19.99,store\r\n\
                    C1,2024-01-05,19.99,store\r\n\
                    C1,2024-02-01T10:00:00+08:00,5.00,online\r\n\
                    C2,2024-03-01,abc,store\r\n\
                    C2,2024-03-32,1.00,store\r\n\
                    C2,2024-03-02,1.00,teleport\r\n\
                    ,2024-03-02,1.00,store\r\n\
                    C3,2024-04-01,0.00,app\r\n";
        std::fs::write(&file, text).unwrap();
        let path = file.to_str().unwrap();

        let out = tenure(&db, &["import", "purchases", path]);
        assert!(
            !out.status.success(),
            "rejected rows make the exit non-zero"
        );
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            stdout
                .contains("8 rows, 4 imported, 0 already present, 4 rejected, 2 customers created"),
            "{stdout}"
        );
        let errors = std::fs::read_to_string(dir.path().join("purchases.csv.errors.csv")).unwrap();
        let lines: Vec<&str> = errors.lines().collect();
        assert_eq!(lines[0], "line,column,reason");
        let located: Vec<String> = lines[1..]
            .iter()
            .map(|l| l.split(',').take(2).collect::<Vec<_>>().join(","))
            .collect();
        assert_eq!(
            located,
            [
                "5,amount",
                "6,occurred_at",
                "7,channel",
                "8,customer_external_id"
            ]
        );

        let store = db.store().await;
        let c1 = customer(&store, "C1").await;
        assert_eq!(
            c1.stats.orders_count, 3,
            "two identical purchases on one day are two orders"
        );
        assert_eq!(c1.stats.purchase_days, 2);
        assert_eq!(c1.stats.total_spend_minor, 1999 * 2 + 500);
        let kept = store.all_customer_stats().await.unwrap();
        tenure_testkit::rebuild_stats(&store).await;
        assert_eq!(
            store.all_customer_stats().await.unwrap(),
            kept,
            "aggregates equal a rebuild"
        );

        // Fix the file's bad rows and run again: the good rows are not duplicated.
        let fixed = text
            .replace("abc", "2.50")
            .replace("03-32", "03-30")
            .replace("teleport", "phone")
            .replace(",2024-03-02,1.00,store", "C4,2024-03-02,1.00,store");
        std::fs::write(&file, fixed).unwrap();
        let out = tenure(&db, &["import", "purchases", path]);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(
            String::from_utf8_lossy(&out.stdout)
                .contains("8 rows, 4 imported, 4 already present, 0 rejected")
        );
        assert!(
            !dir.path().join("purchases.csv.errors.csv").exists(),
            "the stale error file is removed"
        );
        let out = tenure(&db, &["import", "purchases", path]);
        assert!(
            String::from_utf8_lossy(&out.stdout).contains("8 rows, 0 imported, 8 already present")
        );
        assert_eq!(orders_count(&store).await, 8);
    }
}

#[tokio::test]
async fn customers_import_from_gb18030() {
    for db in TestDb::all().await {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("客户.csv");
        let text = "external_id,name,email,phone,tags,locale\n\
                    K1,王小明,xm@example.com,+86 138 0013 8000,vip;常客,zh-CN\n\
                    K2,陳美玲,,+886 912 345 678,,zh-TW\n\
                    K3,,bad-email,,,\n";
        let (bytes, _, _) = encoding_rs::GB18030.encode(text);
        std::fs::write(&file, &bytes).unwrap();
        let path = file.to_str().unwrap();
        let out = tenure(&db, &["import", "customers", path, "--encoding", "gb18030"]);
        assert!(!out.status.success());
        let errors = std::fs::read_to_string(dir.path().join("客户.csv.errors.csv")).unwrap();
        assert!(errors.contains("4,name,must not be empty"), "{errors}");
        assert!(errors.contains("4,email,"), "{errors}");

        let store = db.store().await;
        let k1 = customer(&store, "K1").await;
        assert_eq!(k1.data.name, "王小明");
        assert_eq!(k1.data.tags, ["vip", "常客"]);
        let filter = CustomerFilter {
            q: Some("美玲".into()),
            ..Default::default()
        };
        let found = store.search_customers(&filter, None, 10).await.unwrap();
        assert_eq!(found.items.len(), 1);

        let out = tenure(&db, &["import", "customers", path, "--encoding", "gb18030"]);
        assert!(
            String::from_utf8_lossy(&out.stdout)
                .contains("0 imported, 2 already present, 1 rejected")
        );
    }
}

#[tokio::test]
async fn an_import_killed_half_way_completes_when_run_again() {
    for db in TestDb::all().await {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("big.csv");
        let mut text = String::from("customer_external_id,occurred_at,amount\n");
        let rows = 200_000;
        for i in 0..rows {
            text.push_str(&format!(
                "X{},2024-{:02}-{:02},{}.{:02}\n",
                i % 5000,
                i % 12 + 1,
                i % 28 + 1,
                i % 90 + 1,
                i % 100
            ));
        }
        std::fs::write(&file, text).unwrap();
        let path = file.to_str().unwrap();
        let store = db.store().await;

        let mut child = Command::new(env!("CARGO_BIN_EXE_tenure"))
            .args(["import", "purchases", path, "--batch", "200"])
            .env("DATABASE_URL", &db.url)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        // Wait until some batches are in, then kill it without warning.
        let deadline = Instant::now() + Duration::from_secs(60);
        while stored_orders(&db).await < 2_000 && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        child.kill().unwrap();
        child.wait().unwrap();
        let partial = stored_orders(&db).await;
        assert!(
            partial > 0 && partial < rows,
            "killed half-way: {partial} of {rows}"
        );
        // It was a first load (the database was empty): its marker says so, the index it
        // dropped is still missing.
        assert!(store.first_load_pending().await.unwrap());
        assert!(!index_exists(&db, "orders_customer_time").await);

        let out = tenure(&db, &["import", "purchases", path]);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(orders_count(&store).await, rows, "every purchase once");
        assert_eq!(stored_orders(&db).await, rows);
        assert!(!store.first_load_pending().await.unwrap(), "finished");
        assert!(index_exists(&db, "orders_customer_time").await);
        let kept = store.all_customer_stats().await.unwrap();
        tenure_testkit::rebuild_stats(&store).await;
        assert_eq!(
            store.all_customer_stats().await.unwrap(),
            kept,
            "aggregates equal a rebuild"
        );
    }
}

#[tokio::test]
async fn the_demo_loads_a_business_once_and_orders_and_interactions_import_with_errors_by_line() {
    for db in TestDb::all().await {
        let out = tenure(&db, &["demo", "--customers", "300"]);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let store = db.store().await;
        let stats = store.all_customer_stats().await.unwrap();
        assert_eq!(stats.len(), 300);
        let orders = orders_count(&store).await;
        assert!(orders > 1_000, "about ten orders a customer: {orders}");
        assert!(stats.iter().any(|(_, s)| s.interactions_count > 0));
        let out = tenure(&db, &["demo", "--customers", "300"]);
        assert!(out.status.success());
        assert_eq!(
            orders_count(&store).await,
            orders,
            "a second demo adds nothing"
        );
        tenure_testkit::rebuild_stats(&store).await;
        assert_eq!(
            store.all_customer_stats().await.unwrap(),
            stats,
            "aggregates equal a rebuild"
        );

        let dir = tempfile::tempdir().unwrap();
        let orders_file = dir.path().join("orders.csv");
        std::fs::write(
            &orders_file,
            "external_id,customer_external_id,occurred_at,currency,total,channel,status\n\
             O-1,C00000001,2024-05-01T10:00:00Z,USD,12.00,online,refunded\n\
             O-2,C00000001,2024-05-02T10:00:00Z,USD,12.00,online,lost\n\
             ,C00000001,2024-05-03T10:00:00Z,USD,12.00,online,completed\n",
        )
        .unwrap();
        let out = tenure(&db, &["import", "orders", orders_file.to_str().unwrap()]);
        assert!(!out.status.success());
        let errors = std::fs::read_to_string(dir.path().join("orders.csv.errors.csv")).unwrap();
        assert!(
            errors.contains("3,status,") && errors.contains("4,external_id,is required"),
            "{errors}"
        );
        let c1 = customer(&store, "C00000001").await;
        let all = store.list_orders(Some(c1.id), None, 1000).await.unwrap();
        let o1 = all
            .items
            .iter()
            .find(|o| o.data.external_id.as_deref() == Some("O-1"))
            .unwrap();
        assert_eq!(
            o1.data.status,
            tenure_domain::catalog::OrderStatus::Refunded
        );

        let interactions_file = dir.path().join("interactions.csv");
        std::fs::write(
            &interactions_file,
            "external_id,customer_external_id,occurred_at,channel,direction,kind,subject,buying_signal\n\
             I-1,C00000002,2024-05-01T10:00:00Z,phone,inbound,inquiry,\"Price, please\",true\n\
             I-2,C00000002,2024-05-01T11:00:00Z,phone,sideways,call,Hello,false\n",
        )
        .unwrap();
        let out = tenure(
            &db,
            &[
                "import",
                "interactions",
                interactions_file.to_str().unwrap(),
            ],
        );
        assert!(!out.status.success());
        let errors =
            std::fs::read_to_string(dir.path().join("interactions.csv.errors.csv")).unwrap();
        assert!(errors.contains("3,direction,"), "{errors}");
        let c2 = customer(&store, "C00000002").await;
        let list = store
            .list_interactions(Some(c2.id), None, 100)
            .await
            .unwrap();
        let signal = list
            .items
            .iter()
            .find(|i| i.data.subject == "Price, please")
            .unwrap();
        assert!(signal.data.buying_signal);
    }
}

/// The spend and orders of the customer with `external_id`.
async fn spend_of(store: &tenure_store::Store, external_id: &str) -> (i64, i64) {
    let c = customer(store, external_id).await;
    (c.stats.total_spend_minor, c.stats.orders_count)
}

#[tokio::test]
async fn a_chinese_spreadsheet_export_imports_whole() {
    for db in TestDb::all().await {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("消费记录.csv");
        let text = "客户编号,日期,金额,订单号\n\
                    客001,2024/3/5,\"¥1,234.50\",D1\n\
                    客001,2024年3月9日,88,D2\n\
                    客002,2024.4.1 14:30,￥12.00,D3\n\
                    客002,20240402,1234.5 元,D4\n";
        std::fs::write(&file, text).unwrap();
        let path = file.to_str().unwrap();
        let out = tenure(&db, &["import", "purchases", path, "--currency", "CNY"]);
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "{stdout}{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(stdout.contains("4 rows, 4 imported"), "{stdout}");
        let store = db.store().await;
        assert_eq!(spend_of(&store, "客001").await, (123_450 + 8_800, 2));
        assert_eq!(spend_of(&store, "客002").await, (1_200 + 123_450, 2));
        let out = tenure(&db, &["import", "purchases", path, "--currency", "CNY"]);
        assert!(
            String::from_utf8_lossy(&out.stdout).contains("0 imported, 4 already present"),
            "a re-run adds nothing"
        );
    }
}

#[tokio::test]
async fn a_european_semicolon_file_imports_by_its_headers_or_mapped_columns() {
    for db in TestDb::all().await {
        let dir = tempfile::tempdir().unwrap();
        // German headers are known; the amounts use a decimal comma.
        let file = dir.path().join("umsatz.csv");
        let text = "Kundennummer;Datum;Betrag;Bemerkung\n\
                    K1;05.03.2024;1 234,50;erste\n\
                    K1;06.03.2024;\"1.234,50 €\";zweite\n\
                    K2;07.03.2024;12,5;dritte\n\
                    K2;08.03.2024;1.000;vierte\n";
        std::fs::write(&file, text).unwrap();
        let path = file.to_str().unwrap();
        let out = tenure(
            &db,
            &[
                "import",
                "purchases",
                path,
                "--currency",
                "EUR",
                "--decimal-comma",
            ],
        );
        assert!(
            out.status.success(),
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        let store = db.store().await;
        assert_eq!(spend_of(&store, "K1").await, (246_900, 2));
        assert_eq!(
            spend_of(&store, "K2").await,
            (1_250 + 100_000, 2),
            "with --decimal-comma, 1.000 is a thousand"
        );

        // Headers no alias knows are named by --map; without it the file is refused before
        // anything is stored, saying how to name the columns.
        let file = dir.path().join("buchungen.csv");
        std::fs::write(&file, "KdNr;Buchungstag;Brutto\nK3;09.03.2024;7,00\n").unwrap();
        let path = file.to_str().unwrap();
        let out = tenure(&db, &["import", "purchases", path, "--currency", "EUR"]);
        assert!(!out.status.success());
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            stderr.contains("--map customer_external_id=HEADER"),
            "{stderr}"
        );
        assert!(stderr.contains("KdNr,Buchungstag,Brutto"), "{stderr}");
        let out = tenure(
            &db,
            &[
                "import",
                "purchases",
                path,
                "--currency",
                "EUR",
                "--map",
                "amount=Summe",
            ],
        );
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains("no column \"Summe\""), "{stderr}");
        let map = "customer_external_id=KdNr,occurred_at=Buchungstag,amount=Brutto";
        let out = tenure(
            &db,
            &[
                "import",
                "purchases",
                path,
                "--currency",
                "EUR",
                "--map",
                map,
            ],
        );
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(spend_of(&store, "K3").await, (700, 1));
    }
}

#[tokio::test]
async fn ambiguous_dates_are_rejected_by_line_until_the_format_is_given() {
    let db = TestDb::sqlite();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("purchases.csv");
    let text = "customer_external_id\tdate\tamount\n\
                C1\t25/03/2024\t10.00\n\
                C1\t05/03/2024\t11.00\n";
    std::fs::write(&file, text).unwrap();
    let path = file.to_str().unwrap();
    let out = tenure(&db, &["import", "purchases", path]);
    assert!(!out.status.success());
    let errors = std::fs::read_to_string(dir.path().join("purchases.csv.errors.csv")).unwrap();
    assert!(errors.contains("3,occurred_at,"), "{errors}");
    assert!(errors.contains("--date-format dmy"), "{errors}");
    let out = tenure(&db, &["import", "purchases", path, "--date-format", "dmy"]);
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("1 imported, 1 already present"),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    let store = db.store().await;
    let c1 = customer(&store, "C1").await;
    assert_eq!(
        c1.stats.first_purchase_at.unwrap().to_rfc3339(),
        "2024-03-05T00:00:00+00:00"
    );
}

#[tokio::test]
async fn a_file_in_the_wrong_encoding_is_refused_before_anything_is_stored() {
    for db in TestDb::all().await {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("orders.csv");
        let text = "customer_external_id,occurred_at,amount\n\
                    C1,2024-03-01,5.00\n\
                    王小明,2024-03-05,12.00\n";
        let (bytes, _, _) = encoding_rs::GB18030.encode(text);
        std::fs::write(&file, &bytes).unwrap();
        let path = file.to_str().unwrap();
        let out = tenure(&db, &["import", "purchases", path]);
        assert!(!out.status.success());
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains("line 3"), "{stderr}");
        assert!(stderr.contains("--encoding gb18030"), "{stderr}");
        let store = db.store().await;
        assert!(
            store.all_customer_stats().await.unwrap().is_empty(),
            "not even the valid first row is stored"
        );
        let out = tenure(&db, &["import", "purchases", path, "--encoding", "gb18030"]);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(spend_of(&store, "王小明").await, (1_200, 1));
        assert_eq!(store.all_customer_stats().await.unwrap().len(), 2);
    }
}

#[tokio::test]
async fn a_first_load_builds_indexes_and_aggregates_once_and_an_interrupted_one_is_finished() {
    use tenure_domain::catalog::{OrderStatus, SalesChannel};
    use tenure_store::load::PurchaseRow;
    for db in TestDb::all().await {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("purchases.csv");
        let mut text = String::from("customer_external_id,occurred_at,amount,order_external_id\n");
        let mut rows = Vec::new();
        for i in 0..3_000_i64 {
            let (customer, day) = (format!("K{}", i % 300), i % 28 + 1);
            text.push_str(&format!(
                "{customer},2025-03-{day:02},{}.50,O{i}\n",
                i % 40 + 1
            ));
            rows.push(PurchaseRow {
                customer_external_id: customer,
                order_external_id: format!("O{i}"),
                occurred_at: format!("2025-03-{day:02}T00:00:00Z").parse().unwrap(),
                total_minor: (i % 40 + 1) * 100 + 50,
                currency: "USD".into(),
                channel: SalesChannel::Store,
                status: OrderStatus::Completed,
            });
        }
        std::fs::write(&file, text).unwrap();
        let path = file.to_str().unwrap();
        let store = db.store().await;
        let tables = [
            "orders",
            "customers",
            "customer_tags",
            "customer_search_terms",
        ];

        // An import that began a first load, stored a third of the file and stopped: its
        // secondary indexes are gone and no aggregate is built yet.
        assert!(store.begin_first_load(&tables).await.unwrap());
        assert!(!index_exists(&db, "orders_customer_time").await);
        assert!(!index_exists(&db, "customer_search_terms_customer").await);
        assert_ne!(
            orders_key_validated(&db).await,
            Some(true),
            "PostgreSQL loads without the per-row foreign-key check"
        );
        for batch in rows[..1_000].chunks(250) {
            store
                .import_purchases(batch, &tenure_testkit::operator())
                .await
                .unwrap();
        }
        assert_eq!(stored_orders(&db).await, 1_000);
        assert_eq!(orders_count(&store).await, 0, "aggregates wait for the end");
        // It had begun building the indexes again when it stopped.
        let pool = db.raw_pool().await;
        sqlx::query("CREATE INDEX orders_customer_time ON orders (customer_id, occurred_at, id)")
            .execute(&pool)
            .await
            .unwrap();
        pool.close().await;

        // Run again, it carries the load on and finishes it.
        let out = tenure(&db, &["import", "purchases", path]);
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(
            stdout.contains("3000 rows, 2000 imported, 1000 already present"),
            "{stdout}"
        );
        assert!(!store.first_load_pending().await.unwrap());
        for index in [
            "orders_customer_time",
            "customer_search_terms_customer",
            "customer_tags_customer",
        ] {
            assert!(index_exists(&db, index).await, "{index} built again");
        }
        assert_ne!(
            orders_key_validated(&db).await,
            Some(false),
            "the foreign key is back, every row checked"
        );
        assert_eq!(orders_count(&store).await, 3_000);
        let loaded = store.all_customer_stats().await.unwrap();
        assert_eq!(loaded.len(), 300);
        tenure_testkit::rebuild_stats(&store).await;
        assert_eq!(
            store.all_customer_stats().await.unwrap(),
            loaded,
            "aggregates equal a rebuild"
        );
        let k7 = customer(&store, "K7").await;
        assert!(k7.data.name.starts_with("Customer"), "{}", k7.data.name);
        // The search terms waited and were moved into place at the end: K7 is found.
        let filter = CustomerFilter {
            q: Some("K7".into()),
            ..Default::default()
        };
        let found = store.search_customers(&filter, None, 10).await.unwrap();
        assert!(found.items.iter().any(|c| c.id == k7.id), "{found:?}");

        // The tables now hold thousands of rows: a further file keeps the per-batch path,
        // refreshing the aggregates of the customers it touches as it goes.
        assert!(!store.begin_first_load(&tables[..1]).await.unwrap());
        let more = dir.path().join("more.csv");
        std::fs::write(
            &more,
            "customer_external_id,occurred_at,amount,order_external_id\nK7,2025-04-01,9.00,O-more\n",
        )
        .unwrap();
        let out = tenure(&db, &["import", "purchases", more.to_str().unwrap()]);
        assert!(out.status.success());
        assert!(!store.first_load_pending().await.unwrap());
        assert_eq!(orders_count(&store).await, 3_001);
    }
}

/// The total of the stored order `external_id`, read from the table.
async fn order_total(db: &TestDb, external_id: &str) -> i64 {
    let pool = db.raw_pool().await;
    let total: i64 = sqlx::query_scalar("SELECT total_minor FROM orders WHERE external_id = $1")
        .bind(external_id)
        .fetch_one(&pool)
        .await
        .unwrap();
    pool.close().await;
    total
}

/// Runs `tenure import KIND FILE --batch BATCH`: whether it succeeded, and what it printed
/// (its standard error too, when it failed).
fn import_in_batches(
    db: &TestDb,
    kind: &str,
    file: &std::path::Path,
    batch: usize,
) -> (bool, String) {
    let batch = batch.to_string();
    let out = tenure(
        db,
        &["import", kind, file.to_str().unwrap(), "--batch", &batch],
    );
    let mut printed = String::from_utf8_lossy(&out.stdout).into_owned();
    if !out.status.success() {
        printed.push_str(&String::from_utf8_lossy(&out.stderr));
    }
    (out.status.success(), printed)
}

/// On PostgreSQL a first load writes several batches at once. What it stores is what a load
/// one batch after another stores: of two rows with one key the first in the file is kept
/// (in the next batch or far from it), a customer named across batches is created once,
/// order lines are found by their order whichever batch it came in, and the lines naming
/// no order are reported by their line in the file.
#[tokio::test]
async fn a_first_load_written_batches_at_once_stores_what_one_batch_at_a_time_would() {
    for db in TestDb::all().await {
        let dir = tempfile::tempdir().unwrap();
        let mut rows = Vec::new();
        let mut walk_ins = 0;
        for c in 0..200 {
            for k in 0..c % 4 + 1 {
                rows.push(format!(
                    "O{c}-{k},C{c:03},2025-03-{:02}T10:00:00Z,USD,{}.00,store,completed",
                    k + 1,
                    c % 9 + 1
                ));
                // A customer every few rows names: the batches naming it take turns.
                if rows.len() % 37 == 0 {
                    walk_ins += 1;
                    rows.push(format!(
                        "W{walk_ins},WALK-IN,2025-04-01T10:00:00Z,USD,3.00,online,completed"
                    ));
                }
            }
        }
        let dup = |id: &str, total: u32| {
            format!("{id},C900,2025-05-01T10:00:00Z,USD,{total}.00,app,completed")
        };
        // With 20 rows a batch, rows 30 and 55 are in neighbouring batches.
        rows.insert(55, dup("DUP-NEAR", 2));
        rows.insert(30, dup("DUP-NEAR", 1));
        rows.push(dup("DUP-FAR", 6));
        rows.insert(0, dup("DUP-FAR", 5));
        let orders = dir.path().join("orders.csv");
        std::fs::write(
            &orders,
            format!(
                "external_id,customer_external_id,occurred_at,currency,total,channel,status\n{}\n",
                rows.join("\n")
            ),
        )
        .unwrap();
        let (imported, stdout) = import_in_batches(&db, "orders", &orders, 20);
        assert!(imported, "{stdout}");
        let n = rows.len();
        assert!(
            stdout.contains(&format!(
                "{n} rows, {} imported, 2 already present, 0 rejected, 202 customers created",
                n - 2
            )),
            "{stdout}"
        );
        assert_eq!(
            order_total(&db, "DUP-NEAR").await,
            100,
            "the first row is kept"
        );
        assert_eq!(
            order_total(&db, "DUP-FAR").await,
            500,
            "the first row is kept"
        );
        let store = db.store().await;
        assert_eq!(stored_orders(&db).await, n - 2);
        assert_eq!(
            customer(&store, "WALK-IN").await.stats.orders_count,
            walk_ins as i64
        );
        let loaded = store.all_customer_stats().await.unwrap();
        assert_eq!(loaded.len(), 202);
        tenure_testkit::rebuild_stats(&store).await;
        assert_eq!(
            store.all_customer_stats().await.unwrap(),
            loaded,
            "aggregates equal a rebuild"
        );

        // Two lines an order, and lines of an order the file of orders did not have: at the
        // start, at the end and between orders, reported by line.
        let mut lines = vec![
            "order_external_id,line_no,product_external_id,description,quantity,unit_price,total"
                .to_owned(),
        ];
        let mut unknown = Vec::new();
        for (i, row) in rows.iter().enumerate() {
            let order = row.split(',').next().unwrap();
            if order.starts_with("DUP") {
                continue;
            }
            if i % 50 == 0 {
                unknown.push(lines.len() + 1);
                lines.push(format!("NOPE-{i},1,P1,Tea,1,1.00,1.00"));
            }
            for l in 1..=2 {
                lines.push(format!("{order},{l},P{l},Tea,1,2.00,2.00"));
            }
        }
        unknown.push(lines.len() + 1);
        lines.push("NOPE-END,1,P1,Tea,1,1.00,1.00".into());
        let file = dir.path().join("order_lines.csv");
        std::fs::write(&file, lines.join("\n") + "\n").unwrap();
        let (_, stdout) = import_in_batches(&db, "order-lines", &file, 15);
        let rows_in = lines.len() - 1;
        let stored = rows_in - unknown.len();
        assert!(
            stdout.contains(&format!(
                "{rows_in} rows, {stored} imported, 0 already present, {} rejected",
                unknown.len()
            )),
            "{stdout}"
        );
        let errors =
            std::fs::read_to_string(dir.path().join("order_lines.csv.errors.csv")).unwrap();
        let reported: Vec<usize> = errors
            .lines()
            .skip(1)
            .map(|l| l.split(',').next().unwrap().parse().unwrap())
            .collect();
        assert_eq!(reported, unknown);
        let pool = db.raw_pool().await;
        let per_order: Vec<i64> = sqlx::query_scalar(
            "SELECT COUNT(l.id) FROM orders o LEFT JOIN order_lines l ON l.order_id = o.id \
             WHERE o.external_id NOT LIKE 'DUP%' GROUP BY o.id",
        )
        .fetch_all(&pool)
        .await
        .unwrap();
        pool.close().await;
        assert_eq!(per_order.len(), n - 4);
        assert!(
            per_order.iter().all(|&k| k == 2),
            "every order has its two lines"
        );
    }
}

#[tokio::test]
async fn a_first_load_without_foreign_key_checks_still_ends_with_every_key_whole() {
    use tenure_store::load::{OrderLineRow, PurchaseRow};
    let Some(db) = TestDb::postgres().await else {
        return;
    };
    let store = db.store().await;
    let by = tenure_testkit::operator();
    let purchases: Vec<PurchaseRow> = (0..40)
        .map(|i| PurchaseRow {
            customer_external_id: format!("K{}", i % 4),
            order_external_id: format!("O{i}"),
            occurred_at: "2025-03-01T00:00:00Z".parse().unwrap(),
            total_minor: 1_000,
            currency: "USD".into(),
            channel: tenure_domain::catalog::SalesChannel::Store,
            status: tenure_domain::catalog::OrderStatus::Completed,
        })
        .collect();
    store.import_purchases(&purchases, &by).await.unwrap();
    let tables = ["order_lines"];
    assert!(store.begin_first_load(&tables).await.unwrap());
    let line = |order: usize, product: &str| OrderLineRow {
        order_external_id: format!("O{order}"),
        line_no: 1,
        product_external_id: Some(product.into()),
        description: String::new(),
        quantity: 1,
        unit_price_minor: 1_000,
        total_minor: 1_000,
    };
    let lines: Vec<OrderLineRow> = (0..40)
        .map(|i| line(i, if i % 2 == 0 { "P-kept" } else { "P-gone" }))
        .collect();
    store.import_order_lines(&lines[..20], &by).await.unwrap();
    // The key to products is off during the load: a product deleted meanwhile leaves its
    // lines pointing nowhere until the load ends.
    let pool = db.raw_pool().await;
    sqlx::query("DELETE FROM products WHERE external_id = 'P-gone'")
        .execute(&pool)
        .await
        .unwrap();
    store.import_order_lines(&lines[20..], &by).await.unwrap();
    // A line already stored comes again in a batch of new ones (the first-load fast path
    // is undone and the batch is stored the careful way).
    let again: Vec<OrderLineRow> = [line(0, "P-kept")]
        .into_iter()
        .chain((0..40).map(|i| OrderLineRow {
            line_no: 2,
            ..line(i, "P-kept")
        }))
        .collect();
    let outcome = store.import_order_lines(&again, &by).await.unwrap();
    assert_eq!((outcome.inserted, outcome.skipped), (40, 1));
    store.finish_first_load().await.unwrap();

    let count = |sql: &'static str| {
        let pool = pool.clone();
        async move {
            sqlx::query_scalar::<_, i64>(sql)
                .fetch_one(&pool)
                .await
                .unwrap()
        }
    };
    assert_eq!(count("SELECT COUNT(*) FROM order_lines").await, 80);
    assert_eq!(
        count(
            "SELECT COUNT(*) FROM order_lines l WHERE l.product_id IS NOT NULL \
             AND NOT EXISTS (SELECT 1 FROM products p WHERE p.id = l.product_id)"
        )
        .await,
        0,
        "no line points at the deleted product"
    );
    // The lines of the product created again after its deletion (the second half of the
    // file named it again) keep it; the first half's were cleared, as the key would have.
    assert_eq!(
        count("SELECT COUNT(*) FROM order_lines WHERE product_id IS NULL").await,
        10
    );
    assert_eq!(
        count(
            "SELECT COUNT(*) FROM pg_constraint WHERE conrelid = CAST('order_lines' AS regclass) \
             AND contype = 'f' AND NOT convalidated"
        )
        .await,
        0,
        "every key of the lines is back and checked"
    );
    assert_eq!(
        count(
            "SELECT COUNT(*) FROM pg_constraint WHERE conrelid = CAST('order_lines' AS regclass) \
             AND contype = 'f'"
        )
        .await,
        3
    );
    pool.close().await;
}

#[tokio::test]
async fn customers_written_through_the_api_during_a_first_load_are_found_by_what_they_are_now() {
    use reqwest::Method;
    use serde_json::json;
    for db in TestDb::all().await {
        let app = tenure_testkit::spawn_app(db).await;
        let store = &app.store;
        let by = tenure_testkit::operator();
        let tables = ["customers", "customer_tags", "customer_search_terms"];
        assert!(store.begin_first_load(&tables).await.unwrap());
        let batch: Vec<tenure_domain::customer::CustomerData> = (0..50)
            .map(|i| tenure_domain::customer::CustomerData {
                external_id: Some(format!("K{i}")),
                ..tenure_domain::customer::CustomerData::named(format!("Oldname{i} Person"))
            })
            .collect();
        store.import_customers(&batch[..25], &by).await.unwrap();
        // Meanwhile one customer of the file is renamed and another is created.
        let renamed = customer(store, "K7").await;
        let status = app
            .admin(
                Method::PATCH,
                &format!("/api/v1/customers/{}", renamed.id.0),
            )
            .json(&json!({"name": "Newname Person"}))
            .send()
            .await
            .unwrap()
            .status();
        assert_eq!(status, 200);
        let (status, created) = app
            .post_json("/api/v1/customers", json!({"name": "Meanwhile Customer"}))
            .await;
        assert_eq!(status, 201, "{created}");
        store.import_customers(&batch[25..], &by).await.unwrap();
        store.finish_first_load().await.unwrap();

        let found = |q: &'static str| {
            let app = &app;
            async move {
                let (status, page) = app.get_json(&format!("/api/v1/customers?q={q}")).await;
                assert_eq!(status, 200, "{page}");
                page["items"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|c| c["name"].as_str().unwrap().to_owned())
                    .collect::<Vec<_>>()
            }
        };
        assert_eq!(found("Newname").await, ["Newname Person"]);
        assert!(found("Oldname7").await.is_empty(), "the old name is gone");
        assert_eq!(found("Oldname8").await, ["Oldname8 Person"]);
        assert_eq!(found("Oldname40").await, ["Oldname40 Person"]);
        assert_eq!(found("Meanwhile").await, ["Meanwhile Customer"]);
    }
}
