//! A database that goes away gives 503 problem+json, and the server recovers by itself
//! when it returns.

use std::time::{Duration, Instant};

use reqwest::Method;
use serde_json::json;
use sqlx::Connection;
use tenure_testkit::{TestDb, spawn_app};

async fn admin_exec(admin: &str, sql: String) {
    let mut conn = sqlx::PgConnection::connect(admin).await.unwrap();
    sqlx::query(sqlx::AssertSqlSafe(sql))
        .execute(&mut conn)
        .await
        .unwrap();
    conn.close().await.unwrap();
}

#[tokio::test]
async fn a_lost_database_gives_503_and_service_resumes_when_it_returns() {
    let Some(db) = TestDb::postgres().await else {
        return;
    };
    let (admin, name) = db
        .postgres_admin()
        .map(|(a, n)| (a.to_owned(), n.to_owned()))
        .unwrap();
    let app = spawn_app(db).await;
    let (_, c) = app
        .post_json("/api/v1/customers", json!({"name": "Resilient"}))
        .await;
    let path = format!("/api/v1/customers/{}", c["id"]);
    assert_eq!(app.get_json(&path).await.0, 200);

    // The database refuses new connections and drops the open ones.
    admin_exec(
        &admin,
        format!("ALTER DATABASE {name} ALLOW_CONNECTIONS false"),
    )
    .await;
    admin_exec(
        &admin,
        format!("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{name}'"),
    )
    .await;
    for _ in 0..3 {
        let res = app.admin(Method::GET, &path).send().await.unwrap();
        assert_eq!(res.status().as_u16(), 503);
        assert_eq!(res.headers()["content-type"], "application/problem+json");
        assert!(res.headers().contains_key("retry-after"));
    }
    let (status, _) = app
        .post_json("/api/v1/customers", json!({"name": "Lost?"}))
        .await;
    assert_eq!(
        status, 503,
        "a write during the outage is refused, not half-done"
    );
    assert_eq!(
        app.client
            .get(app.url("/readyz"))
            .send()
            .await
            .unwrap()
            .status()
            .as_u16(),
        503
    );
    assert_eq!(
        app.client
            .get(app.url("/healthz"))
            .send()
            .await
            .unwrap()
            .status()
            .as_u16(),
        200
    );

    // Back again: the same server answers without a restart.
    admin_exec(
        &admin,
        format!("ALTER DATABASE {name} ALLOW_CONNECTIONS true"),
    )
    .await;
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let status = app.get_json(&path).await.0;
        if status == 200 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "still {status} after the database returned"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let (_, list) = app.get_json("/api/v1/customers?q=lost").await;
    assert!(
        list["items"].as_array().unwrap().is_empty(),
        "the refused write left nothing behind"
    );
}

/// The server's request log stays quiet: its standard error is a pipe nobody reads.
const QUIET: &[(&str, &str)] = &[("RUST_LOG", "warn")];

/// One write of a burst: what was asked, with its key, and the answer if one came.
#[derive(Clone)]
pub(crate) struct Sent {
    kind: &'static str,
    path: &'static str,
    key: String,
    body: serde_json::Value,
    /// The status and the record's id, when the answer arrived.
    pub(crate) answer: Option<(u16, Option<i64>)>,
}

/// Writers posting orders, points and tickets for `customer` until the server stops
/// answering (or `stop_after` writes each); every request carries its own key.
pub(crate) async fn burst(
    base: &str,
    token: &str,
    customer: i64,
    writers: usize,
    tag: &str,
    until: Instant,
) -> Vec<Sent> {
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap();
    let mut tasks = Vec::new();
    for w in 0..writers {
        let (client, base, token, tag) = (
            client.clone(),
            base.to_owned(),
            token.to_owned(),
            tag.to_owned(),
        );
        tasks.push(tokio::spawn(async move {
            let mut sent = Vec::new();
            for i in 0..100_000 {
                let (kind, path, body) = match i % 3 {
                    0 => (
                        "order",
                        "/api/v1/orders",
                        json!({"customer_id": customer, "occurred_at": "2026-11-01T10:00:00Z",
                               "lines": [{"description": "Tea", "quantity": 1, "unit_price_minor": 250}]}),
                    ),
                    1 => (
                        "points",
                        "/api/v1/loyalty/adjust",
                        json!({"customer_id": customer, "points": 3, "reason": "burst"}),
                    ),
                    _ => (
                        "ticket",
                        "/api/v1/tickets",
                        json!({"customer_id": customer, "subject": format!("Burst {w}-{i}")}),
                    ),
                };
                let key = format!("{tag}-{w}-{i}");
                let res = client
                    .post(format!("{base}{path}"))
                    .bearer_auth(&token)
                    .header("Idempotency-Key", &key)
                    .json(&body)
                    .send()
                    .await;
                let answer = match res {
                    Ok(r) => {
                        let status = r.status().as_u16();
                        let v: serde_json::Value = r.json().await.unwrap_or_default();
                        Some((status, v["id"].as_i64()))
                    }
                    Err(_) => None,
                };
                let stopped = answer.is_none() || Instant::now() > until;
                sent.push(Sent {
                    kind,
                    path,
                    key,
                    body,
                    answer,
                });
                if stopped {
                    break;
                }
            }
            sent
        }));
    }
    let mut all = Vec::new();
    for t in tasks {
        all.extend(t.await.unwrap());
    }
    all
}

/// Sends every write that got no answer (or a 503) again with its key, then checks that
/// each key is recorded exactly once: acknowledged records are there, and the counts of
/// orders, tickets and points are those of the keys that were carried out.
pub(crate) async fn settle_and_check(
    base: &str,
    token: &str,
    customer: i64,
    mut sent: Vec<Sent>,
) -> (usize, usize) {
    let client = reqwest::Client::new();
    let acknowledged = sent
        .iter()
        .filter(|s| matches!(s.answer, Some((201, _))))
        .count();
    for s in &sent {
        if let Some((201, Some(id))) = s.answer {
            let path = match s.kind {
                "order" => format!("/api/v1/orders/{id}"),
                "ticket" => format!("/api/v1/tickets/{id}"),
                _ => continue,
            };
            let res = client
                .get(format!("{base}{path}"))
                .bearer_auth(token)
                .send()
                .await
                .unwrap();
            assert_eq!(res.status(), 200, "acknowledged {} {id} is gone", s.kind);
        }
    }
    // The writes whose answer was lost, again with their keys.
    for s in sent.iter_mut() {
        if matches!(s.answer, Some((201, _))) {
            continue;
        }
        // A 503 says "later": a client retries it, with the same key.
        let mut status = 503;
        for _ in 0..100 {
            let res = client
                .post(format!("{base}{}", s.path))
                .bearer_auth(token)
                .header("Idempotency-Key", &s.key)
                .json(&s.body)
                .send()
                .await
                .unwrap();
            status = res.status().as_u16();
            if status != 503 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        assert!(
            status == 201 || status == 409,
            "a retried {} answered {status}",
            s.kind
        );
        s.answer = Some((status, None));
    }
    let carried_out = |kind: &str| {
        sent.iter()
            .filter(|s| s.kind == kind && matches!(s.answer, Some((201 | 409, _))))
            .count() as i64
    };
    let orders: serde_json::Value = client
        .get(format!("{base}/api/v1/customers/{customer}"))
        .bearer_auth(token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        orders["stats"]["orders_count"].as_i64().unwrap(),
        carried_out("order"),
        "each order key recorded exactly once"
    );
    // The ledger: one entry per adjustment carried out.
    let mut adjustments = 0;
    let mut next = format!("{base}/api/v1/customers/{customer}/loyalty?limit=500");
    loop {
        let member: serde_json::Value = client
            .get(&next)
            .bearer_auth(token)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        adjustments += member["history"]["items"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|e| e["reason"] == "burst")
            .count() as i64;
        match member["history"]["next_cursor"].as_str() {
            Some(c) => {
                next = format!("{base}/api/v1/customers/{customer}/loyalty?limit=500&cursor={c}")
            }
            None => break,
        }
    }
    assert_eq!(
        adjustments,
        carried_out("points"),
        "each points key in the ledger exactly once"
    );
    let mut tickets = 0;
    let mut next = format!("{base}/api/v1/tickets?customer_id={customer}&limit=500");
    loop {
        let page: serde_json::Value = client
            .get(&next)
            .bearer_auth(token)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        tickets += page["items"].as_array().unwrap().len() as i64;
        match page["next_cursor"].as_str() {
            Some(c) => {
                next = format!("{base}/api/v1/tickets?customer_id={customer}&limit=500&cursor={c}")
            }
            None => break,
        }
    }
    assert_eq!(
        tickets,
        carried_out("ticket"),
        "each ticket key recorded exactly once"
    );
    let present = (carried_out("order") + carried_out("ticket") + carried_out("points")) as usize;
    (acknowledged, present)
}

/// A loyalty member to write for, made as soon as the server at `base` answers.
pub(crate) async fn member(base: &str, token: &str, name: &str) -> i64 {
    let client = reqwest::Client::new();
    let res = crate::document::first_answer(|| {
        client
            .post(format!("{base}/api/v1/customers"))
            .bearer_auth(token)
            .json(&json!({ "name": name }))
    })
    .await;
    let customer = res.json::<serde_json::Value>().await.unwrap()["id"]
        .as_i64()
        .unwrap();
    client
        .post(format!("{base}/api/v1/loyalty/enrol"))
        .bearer_auth(token)
        .json(&json!({ "customer_id": customer }))
        .send()
        .await
        .unwrap();
    customer
}

#[tokio::test]
async fn a_server_killed_mid_burst_keeps_every_acknowledged_write_exactly_once() {
    for db in TestDb::all().await {
        let token = crate::ok(&crate::tenure(
            &db,
            &["token", "create", "--name", "burst", "--role", "admin"],
        ))
        .lines()
        .last()
        .unwrap()
        .to_owned();
        let (mut server, addr) = crate::document::serve(&db, QUIET);
        let base = format!("http://{addr}");
        let client = reqwest::Client::new();
        let customer = member(&base, &token, "Burst Customer").await;
        let writes = tokio::spawn({
            let (base, token) = (base.clone(), token.clone());
            async move {
                let until = Instant::now() + Duration::from_secs(60);
                burst(&base, &token, customer, 8, "kill", until).await
            }
        });
        tokio::time::sleep(Duration::from_millis(1500)).await;
        server.kill().unwrap(); // SIGKILL: no shutdown, no flush
        server.wait().unwrap();
        let sent = writes.await.unwrap();
        assert!(
            sent.len() > 30,
            "the burst wrote before the kill: {}",
            sent.len()
        );
        let mut by_status = std::collections::BTreeMap::new();
        for s in &sent {
            *by_status.entry(s.answer.map(|a| a.0)).or_insert(0) += 1;
        }
        eprintln!("{:?}: answers before the kill {by_status:?}", db.backend);

        let (mut server, addr) = crate::document::serve(&db, QUIET);
        let base = format!("http://{addr}");
        crate::document::first_answer(|| client.get(format!("{base}/readyz"))).await;
        let (acknowledged, present) = settle_and_check(&base, &token, customer, sent).await;
        eprintln!(
            "{:?}: {acknowledged} writes acknowledged before kill -9, {present} present after the restart and the retries",
            db.backend
        );
        assert!(present >= acknowledged);
        server.kill().unwrap();
        let _ = server.wait();
    }
}

/// A PostgreSQL cluster of its own, to restart under load: `initdb` as the `postgres`
/// user in a temporary directory, on a free port.
pub(crate) struct Cluster {
    dir: std::path::PathBuf,
    port: u16,
}

const PG_BIN: &str = "/usr/lib/postgresql/15/bin";

fn as_postgres(args: &[&str]) -> std::process::Output {
    std::process::Command::new("runuser")
        .args(["-u", "postgres", "--"])
        .args(args)
        .output()
        .expect("runuser")
}

impl Cluster {
    pub(crate) fn start() -> Option<Cluster> {
        let root = std::process::Command::new("id")
            .arg("-u")
            .output()
            .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0");
        if !root || !std::path::Path::new(PG_BIN).join("initdb").exists() {
            tenure_testkit::skip(
                "a PostgreSQL cluster of its own needs root and the PostgreSQL 15 server binaries; skipping the restart test",
            );
            return None;
        }
        let dir = Cluster::new_dir();
        let data = dir.join("data");
        let init = as_postgres(&[
            &format!("{PG_BIN}/initdb"),
            "-D",
            data.to_str().unwrap(),
            "-U",
            "postgres",
            "--auth=trust",
        ]);
        assert!(
            init.status.success(),
            "{}",
            String::from_utf8_lossy(&init.stderr)
        );
        let c = Cluster {
            dir,
            port: free_port(),
        };
        c.pg_ctl(&["start"]);
        Some(c)
    }

    /// A hot standby of `primary`, streaming from it: a `pg_basebackup` of it that starts
    /// as a replica (`-R` writes the primary's address and `standby.signal`).
    pub(crate) fn standby_of(primary: &Cluster) -> Cluster {
        let dir = Cluster::new_dir();
        let data = dir.join("data");
        let backup = as_postgres(&[
            &format!("{PG_BIN}/pg_basebackup"),
            "-D",
            data.to_str().unwrap(),
            "-h",
            "127.0.0.1",
            "-p",
            &primary.port.to_string(),
            "-U",
            "postgres",
            "-R",
            "-X",
            "stream",
            "-c",
            "fast",
        ]);
        assert!(
            backup.status.success(),
            "{}",
            String::from_utf8_lossy(&backup.stderr)
        );
        let c = Cluster {
            dir,
            port: free_port(),
        };
        c.pg_ctl(&["start"]);
        c
    }

    fn new_dir() -> std::path::PathBuf {
        let dir = std::env::temp_dir().join(format!(
            "tenure-pg-{}-{}",
            std::process::id(),
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos()
        ));
        std::fs::create_dir_all(&dir).unwrap();
        let chown = std::process::Command::new("chown")
            .args(["-R", "postgres", dir.to_str().unwrap()])
            .status()
            .unwrap();
        assert!(chown.success());
        dir
    }

    pub(crate) fn pg_ctl(&self, what: &[&str]) {
        let data = self.dir.join("data");
        let options = format!(
            "-c listen_addresses=127.0.0.1 -p {} -k {}",
            self.port,
            self.dir.display()
        );
        let mut args = vec![
            format!("{PG_BIN}/pg_ctl"),
            "-D".into(),
            data.display().to_string(),
            "-o".into(),
            options,
            "-w".into(),
            "-l".into(),
            self.dir.join("log").display().to_string(),
        ];
        args.extend(what.iter().map(|s| s.to_string()));
        let refs: Vec<&str> = args.iter().map(String::as_str).collect();
        let out = as_postgres(&refs);
        assert!(
            out.status.success(),
            "pg_ctl {what:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    pub(crate) fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/tenure", self.port)
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let data = self.dir.join("data");
        let _ = as_postgres(&[
            &format!("{PG_BIN}/pg_ctl"),
            "-D",
            data.to_str().unwrap_or_default(),
            "-m",
            "immediate",
            "stop",
        ]);
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

pub(crate) fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

pub(crate) fn tenure_at(url: &str, args: &[&str]) -> std::process::Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_tenure"))
        .args(args)
        .env("DATABASE_URL", url)
        .env("RUST_LOG", "warn")
        .output()
        .expect("run tenure")
}

#[tokio::test]
async fn postgresql_restarted_under_load_gives_503s_then_every_write_lands_once() {
    let Some(cluster) = Cluster::start() else {
        return;
    };
    let url = cluster.url();
    let token = crate::ok(&tenure_at(
        &url,
        &["token", "create", "--name", "load", "--role", "admin"],
    ))
    .lines()
    .last()
    .unwrap()
    .to_owned();
    let port = free_port();
    let mut server = std::process::Command::new(env!("CARGO_BIN_EXE_tenure"))
        .args(["serve", "--addr", &format!("127.0.0.1:{port}")])
        .env("DATABASE_URL", &url)
        .env("RUST_LOG", "warn")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let base = format!("http://127.0.0.1:{port}");
    let customer = member(&base, &token, "Load Customer").await;
    let started = Instant::now();
    let writes = tokio::spawn({
        let (base, token) = (base.clone(), token.clone());
        async move {
            burst(
                &base,
                &token,
                customer,
                8,
                "restart",
                started + Duration::from_secs(11),
            )
            .await
        }
    });
    tokio::time::sleep(Duration::from_millis(1500)).await;
    // A crash of the database server, down for longer than a request waits for a
    // connection (3 s), then its recovery.
    cluster.pg_ctl(&["-m", "immediate", "stop"]);
    tokio::time::sleep(Duration::from_millis(4500)).await;
    cluster.pg_ctl(&["start"]);
    let sent = writes.await.unwrap();
    let unavailable = sent
        .iter()
        .filter(|s| matches!(s.answer, Some((503, _))))
        .count();
    let other: Vec<u16> = sent
        .iter()
        .filter_map(|s| s.answer.map(|a| a.0))
        .filter(|s| *s != 201 && *s != 503)
        .collect();
    assert!(
        other.is_empty(),
        "only 201 or 503 under the restart: {other:?}"
    );
    assert!(unavailable > 0, "the outage was seen");
    let last = sent.iter().rev().find_map(|s| s.answer).unwrap();
    assert_eq!(last.0, 201, "Tenure recovered without a restart of its own");
    let (acknowledged, present) = settle_and_check(&base, &token, customer, sent).await;
    eprintln!(
        "PostgreSQL restarted under load: {acknowledged} writes acknowledged, {unavailable} refused with 503, {present} present after the retries"
    );
    server.kill().unwrap();
    let _ = server.wait();
}
