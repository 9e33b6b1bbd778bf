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
