//! Tenure beyond one process: two `tenure serve` processes and two `tenure worker`
//! processes on one PostgreSQL database, driven at once, act as one Tenure — scheduled jobs
//! run once across them, each message reaches the SMTP server once, the loyalty ledger is
//! exact, and a session made on one server is good on the other.

use std::collections::BTreeMap;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tenure_testkit::{TestDb, skip};

use crate::faults::{burst, member, settle_and_check};
use crate::journeys::Smtp;
use crate::web::{Browser, PASSWORD};

/// Processes killed when the test ends, however it ends.
struct Procs(Vec<Child>);

impl Drop for Procs {
    fn drop(&mut self) {
        for c in &mut self.0 {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

async fn get(client: &reqwest::Client, token: &str, url: String) -> Value {
    let res = client.get(&url).bearer_auth(token).send().await.unwrap();
    assert_eq!(res.status(), 200, "GET {url}");
    res.json().await.unwrap()
}

/// Creates a customer through the server at `base`; its id.
async fn create_customer(client: &reqwest::Client, token: &str, base: &str, body: Value) -> i64 {
    let res = client
        .post(format!("{base}/api/v1/customers"))
        .bearer_auth(token)
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 201);
    res.json::<Value>().await.unwrap()["id"].as_i64().unwrap()
}

/// Every item of a paged list.
async fn all_items(client: &reqwest::Client, token: &str, url: &str) -> Vec<Value> {
    let mut items = Vec::new();
    let sep = if url.contains('?') { '&' } else { '?' };
    let mut next = format!("{url}{sep}limit=500");
    loop {
        let page = get(client, token, next.clone()).await;
        items.extend(page["items"].as_array().unwrap().iter().cloned());
        match page["next_cursor"].as_str() {
            Some(c) => next = format!("{url}{sep}limit=500&cursor={c}"),
            None => return items,
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_servers_and_two_workers_on_one_postgresql_act_as_one() {
    let Some(db) = TestDb::postgres().await else {
        skip("no PostgreSQL (TENURE_TEST_POSTGRES_URL); skipping the cluster test");
        return;
    };
    let Some(smtp) = Smtp::start() else { return };
    let token = crate::ok(&crate::tenure(
        &db,
        &["token", "create", "--name", "cluster", "--role", "admin"],
    ))
    .lines()
    .last()
    .unwrap()
    .to_owned();
    crate::ok(&crate::tenure(
        &db,
        &[
            "user",
            "create",
            "--email",
            "mia@shop.example",
            "--role",
            "manager",
            "--password",
            PASSWORD,
        ],
    ));
    let smtp_url = format!("smtp://127.0.0.1:{}", smtp.port);
    let env = [
        ("TENURE_SMTP_URL", smtp_url.as_str()),
        ("TENURE_SMTP_FROM", "Tea House <hello@tea.example.com>"),
        ("RUST_LOG", "warn"),
    ];
    // Two servers (each runs a worker of its own) and two worker processes.
    let (a, addr_a) = crate::document::serve(&db, &env);
    let (b, addr_b) = crate::document::serve(&db, &env);
    let mut procs = Procs(vec![a, b]);
    for _ in 0..2 {
        procs.0.push(
            Command::new(env!("CARGO_BIN_EXE_tenure"))
                .arg("worker")
                .env("DATABASE_URL", &db.url)
                .envs(env)
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .unwrap(),
        );
    }
    let (base_a, base_b) = (format!("http://{addr_a}"), format!("http://{addr_b}"));
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(20))
        .build()
        .unwrap();
    for base in [&base_a, &base_b] {
        let ready = crate::document::first_answer(|| client.get(format!("{base}/readyz"))).await;
        assert_eq!(ready.status(), 200);
    }

    // The welcome journey on, switched on through one server, seen by the other.
    let journeys = get(&client, &token, format!("{base_b}/api/v1/journeys")).await;
    let welcome = journeys
        .as_array()
        .unwrap()
        .iter()
        .find(|j| j["name"] == "welcome")
        .unwrap()["id"]
        .as_i64()
        .unwrap();
    let res = client
        .patch(format!("{base_a}/api/v1/journeys/{welcome}"))
        .bearer_auth(&token)
        .json(&json!({"enabled": true}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);

    // At once: writers on both servers for one loyalty member, and new buyers who are
    // created on one server and buy on the other (each first purchase sends a welcome).
    let loyal = member(&base_a, &token, "Cluster Customer").await;
    let until = Instant::now() + Duration::from_secs(8);
    let on_a = tokio::spawn({
        let (base, token) = (base_a.clone(), token.clone());
        async move { burst(&base, &token, loyal, 3, "a", until).await }
    });
    let on_b = tokio::spawn({
        let (base, token) = (base_b.clone(), token.clone());
        async move { burst(&base, &token, loyal, 3, "b", until).await }
    });
    let buyers = 30;
    let mut buys = Vec::new();
    for i in 0..buyers {
        let (client, token) = (client.clone(), token.clone());
        let (here, there) = if i % 2 == 0 {
            (base_a.clone(), base_b.clone())
        } else {
            (base_b.clone(), base_a.clone())
        };
        buys.push(tokio::spawn(async move {
            let body = json!({
                "name": format!("Buyer {i}"),
                "email": format!("buyer{i}@example.com"),
                "consents": [{"channel": "email", "status": "granted", "source": "counter"}],
            });
            let id = create_customer(&client, &token, &here, body).await;
            let res = client
                .post(format!("{there}/api/v1/orders"))
                .bearer_auth(&token)
                .header("Idempotency-Key", format!("buy-{i}"))
                .json(&json!({"customer_id": id, "occurred_at": "2026-11-20T10:00:00Z",
                              "lines": [{"description": "Oolong", "quantity": 1, "unit_price_minor": 1800}]}))
                .send()
                .await
                .unwrap();
            assert_eq!(res.status(), 201);
        }));
    }
    for t in buys {
        t.await.unwrap();
    }
    let mut sent = on_a.await.unwrap();
    sent.extend(on_b.await.unwrap());
    assert!(sent.len() > 30, "the writers wrote: {}", sent.len());
    assert!(
        sent.iter().all(|s| matches!(s.answer, Some((201, _)))),
        "every write through either server is acknowledged"
    );

    // Every write exactly once, read back through the other server than half were made on.
    let (acknowledged, present) = settle_and_check(&base_b, &token, loyal, sent).await;
    assert_eq!(acknowledged, present);
    // The ledger is exact: the balance is the sum of its entries, and each adjustment of
    // three points is in it once.
    let url = format!("{base_a}/api/v1/customers/{loyal}/loyalty?limit=500");
    let m = get(&client, &token, url.clone()).await;
    let mut total = 0;
    let mut page = m.clone();
    loop {
        let items = page["history"]["items"].as_array().unwrap();
        total += items
            .iter()
            .map(|e| e["points"].as_i64().unwrap())
            .sum::<i64>();
        let Some(c) = page["history"]["next_cursor"].as_str() else {
            break;
        };
        page = get(&client, &token, format!("{url}&cursor={c}")).await;
    }
    assert_eq!(
        m["balance"].as_i64().unwrap() + m["pending"].as_i64().unwrap(),
        total,
        "{m}"
    );

    // Each welcome reaches the SMTP server once, whichever worker took it.
    let deadline = Instant::now() + Duration::from_secs(60);
    while Smtp::message_ids(&smtp.received()).0 < buyers && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // A moment longer, for a second delivery of any of them to show.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let got = smtp.received();
    assert_eq!(
        Smtp::message_ids(&got),
        (buyers, buyers),
        "each welcome once"
    );
    for i in 0..buyers {
        assert_eq!(
            got.matches(&format!("To: buyer{i}@example.com")).count(),
            1,
            "buyer{i} got one welcome"
        );
    }

    // The scheduled jobs of the moment: queued by four workers, each slot once, each run once.
    let deadline = Instant::now() + Duration::from_secs(60);
    let jobs = loop {
        let jobs = all_items(&client, &token, &format!("{base_a}/api/v1/jobs")).await;
        let busy = jobs
            .iter()
            .any(|j| j["status"] == "queued" || j["status"] == "running");
        if !busy || Instant::now() > deadline {
            break jobs;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    let mut slots: BTreeMap<(String, String), usize> = BTreeMap::new();
    for j in &jobs {
        *slots
            .entry((j["kind"].to_string(), j["run_at"].to_string()))
            .or_default() += 1;
    }
    assert!(
        slots.values().all(|n| *n == 1),
        "one job per schedule slot: {slots:?}"
    );
    let kinds: std::collections::BTreeSet<_> = jobs.iter().map(|j| j["kind"].to_string()).collect();
    assert!(
        kinds.len() >= 7,
        "every schedule queued its slot: {kinds:?}"
    );
    for j in &jobs {
        assert_eq!(j["status"], "done", "{j}");
        let detail = get(&client, &token, format!("{base_b}/api/v1/jobs/{}", j["id"])).await;
        let runs = detail["runs"].as_array().unwrap();
        assert_eq!(runs.len(), 1, "{} ran once: {runs:?}", j["kind"]);
        assert_eq!(runs[0]["outcome"], "succeeded");
    }

    // A session made on one server is good on the other, and signing out on that one ends it.
    let mut browser = Browser::at(base_a.clone());
    let page = browser.sign_in("mia@shop.example", PASSWORD).await;
    assert_eq!(page.status, 303, "{}", page.body);
    browser.switch_to(base_b.clone());
    let page = browser.get("/customers").await;
    assert_eq!(page.status, 200, "signed in on the other server too");
    assert!(page.body.contains("Buyer 1"), "{}", page.body);
    let page = browser.submit("/", "/logout", &[]).await;
    assert_eq!(page.status, 303);
    browser.switch_to(base_a.clone());
    let page = browser.get("/customers").await;
    assert_eq!(page.status, 303, "signed out on both");
    assert!(page.location().starts_with("/login"), "{}", page.location());
    drop(procs);
}

/// Runs `sql` on the server at `url` (its `postgres` database).
async fn on_server(url: &str, sql: &'static str) {
    use sqlx::Connection;
    let admin = url.replace("/tenure", "/postgres");
    let mut conn = sqlx::PgConnection::connect(&admin).await.unwrap();
    sqlx::query(sql).execute(&mut conn).await.unwrap();
    conn.close().await.unwrap();
}

/// Whether the customer list (read from the replica) shows `name`.
async fn listed(client: &reqwest::Client, token: &str, base: &str, name: &str) -> bool {
    let page = get(
        client,
        token,
        format!("{base}/api/v1/customers?q={}", name.replace(' ', "+")),
    )
    .await;
    page["items"]
        .as_array()
        .unwrap()
        .iter()
        .any(|c| c["name"] == name)
}

async fn until_listed(client: &reqwest::Client, token: &str, base: &str, name: &str) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while !listed(client, token, base, name).await {
        assert!(
            Instant::now() < deadline,
            "{name} never reached the replica"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn lists_and_reports_read_from_a_streaming_replica_while_writes_stay_on_the_primary() {
    use crate::faults::{Cluster, tenure_at};
    let Some(primary) = Cluster::start() else {
        return;
    };
    let token = crate::ok(&tenure_at(
        &primary.url(),
        &["token", "create", "--name", "replica", "--role", "admin"],
    ))
    .lines()
    .last()
    .unwrap()
    .to_owned();
    let standby = Cluster::standby_of(&primary);
    let port = crate::faults::free_port();
    let server = Command::new(env!("CARGO_BIN_EXE_tenure"))
        .args(["serve", "--addr", &format!("127.0.0.1:{port}")])
        .env("DATABASE_URL", primary.url())
        .env("TENURE_READ_DATABASE_URL", standby.url())
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let _procs = Procs(vec![server]);
    let base = format!("http://127.0.0.1:{port}");
    let client = reqwest::Client::new();
    crate::document::first_answer(|| client.get(format!("{base}/readyz"))).await;

    // Replication runs: what is written reaches the list and the segment.
    let body = json!({"name": "Bea Early", "tags": ["vip"]});
    create_customer(&client, &token, &base, body).await;
    let res = client
        .post(format!("{base}/api/v1/segments"))
        .bearer_auth(&token)
        .json(&json!({"name": "VIPs", "expression": "tag = \"vip\""}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 201, "a segment is saved on the primary");
    let segment = res.json::<Value>().await.unwrap()["id"].as_i64().unwrap();
    until_listed(&client, &token, &base, "Bea Early").await;
    let members = async || {
        let page = get(
            &client,
            &token,
            format!("{base}/api/v1/segments/{segment}/members"),
        )
        .await;
        page["items"].as_array().unwrap().len()
    };
    let count = async || {
        let res = client
            .post(format!("{base}/api/v1/segments/count"))
            .bearer_auth(&token)
            .json(&json!({"expression": "tag = \"vip\""}))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 200);
        res.json::<Value>().await.unwrap()["count"]
            .as_u64()
            .unwrap()
    };
    let deadline = Instant::now() + Duration::from_secs(20);
    while members().await < 1 {
        assert!(
            Instant::now() < deadline,
            "the segment never reached the replica"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // The replica stops replaying: writes still succeed (they go to the primary, which a
    // read-only standby would refuse), the record just written reads back at once, and the
    // list and the segment's members and count read from the replica.
    on_server(&standby.url(), "SELECT pg_wal_replay_pause()").await;
    let body = json!({"name": "Cai Lagging", "tags": ["vip"]});
    let id = create_customer(&client, &token, &base, body).await;
    let res = client
        .post(format!("{base}/api/v1/orders"))
        .bearer_auth(&token)
        .json(&json!({"customer_id": id, "occurred_at": "2026-11-20T10:00:00Z",
                      "lines": [{"description": "Oolong", "quantity": 1, "unit_price_minor": 1800}]}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 201, "an order is written on the primary");
    let one = get(&client, &token, format!("{base}/api/v1/customers/{id}")).await;
    assert_eq!(
        one["name"], "Cai Lagging",
        "read-your-own-write on the primary"
    );
    assert_eq!(one["stats"]["orders_count"], 1);
    let orders = get(
        &client,
        &token,
        format!("{base}/api/v1/orders?customer_id={id}"),
    )
    .await;
    assert_eq!(
        orders["items"].as_array().unwrap().len(),
        1,
        "a customer's own orders come from the primary"
    );
    assert!(
        !listed(&client, &token, &base, "Cai Lagging").await,
        "the list reads from the paused replica"
    );
    assert_eq!(
        (members().await, count().await),
        (1, 1),
        "the segment's members and counts read from the paused replica"
    );

    // Replay resumes: the replica catches up and the list shows the new customer.
    on_server(&standby.url(), "SELECT pg_wal_replay_resume()").await;
    until_listed(&client, &token, &base, "Cai Lagging").await;
    assert_eq!((members().await, count().await), (2, 2));

    // The replica goes down: within a health check the lists read from the primary.
    standby.pg_ctl(&["-m", "immediate", "stop"]);
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut ok_in_a_row = 0;
    while ok_in_a_row < 5 {
        assert!(
            Instant::now() < deadline,
            "the lists never fell back to the primary"
        );
        let res = client
            .get(format!("{base}/api/v1/customers?q=Cai"))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap();
        ok_in_a_row = if res.status() == 200 {
            ok_in_a_row + 1
        } else {
            0
        };
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(listed(&client, &token, &base, "Cai Lagging").await);
}
