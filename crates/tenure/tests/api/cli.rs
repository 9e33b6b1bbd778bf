//! The command line: users, tokens (printed once, alone on the last line) and the
//! aggregate rebuild, against the same database the server uses.

use crate::tenure;
use reqwest::Method;
use tenure_testkit::{TestDb, spawn_app};

#[tokio::test]
async fn tokens_made_on_the_command_line_open_the_api() {
    for db in TestDb::all().await {
        let out = tenure(
            &db,
            &[
                "token",
                "create",
                "--name",
                "shop integration",
                "--role",
                "agent",
            ],
        );
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let stdout = String::from_utf8(out.stdout).unwrap();
        let token = stdout.lines().last().unwrap().to_owned();
        assert!(
            token.starts_with("tnr_") && !token.contains(' '),
            "{stdout}"
        );

        let out = tenure(
            &db,
            &[
                "user",
                "create",
                "--email",
                "boss@example.com",
                "--role",
                "admin",
                "--password",
                "a long enough secret",
            ],
        );
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let out = tenure(
            &db,
            &[
                "user",
                "create",
                "--email",
                "x@example.com",
                "--role",
                "emperor",
                "--password",
                "a long enough secret",
            ],
        );
        assert!(!out.status.success());
        assert!(String::from_utf8_lossy(&out.stderr).contains("expected one of"));

        let app = spawn_app(db).await;
        let res = app
            .client
            .get(app.url("/api/v1/customers"))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status().as_u16(), 200);
        let res = app
            .client
            .request(Method::GET, app.url("/api/v1/users"))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap();
        assert_eq!(
            res.status().as_u16(),
            403,
            "an agent token may not manage users"
        );
        let (_, users) = app.get_json("/api/v1/users").await;
        assert_eq!(users["items"][0]["email"], "boss@example.com");

        let out = tenure(&app.db, &["aggregates", "rebuild"]);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(String::from_utf8_lossy(&out.stdout).contains("rebuilt aggregates of"));
    }
}

#[tokio::test]
async fn serve_says_what_it_serves() {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_tenure"))
        .args(["serve", "--help"])
        .output()
        .unwrap();
    let help = crate::ok(&out);
    let summary = help.lines().next().unwrap();
    assert!(
        summary.contains("API") && summary.contains("job worker"),
        "{summary}"
    );
    assert!(!help.contains("web UI"), "no web UI yet: {help}");
}

#[tokio::test]
async fn a_missing_postgres_database_is_created_like_a_sqlite_file() {
    let Some(db) = TestDb::postgres().await else {
        return;
    };
    let (admin, name) = db.postgres_admin().unwrap();
    let fresh = format!("{name}_fresh");
    let url = db.url.replace(name, &fresh);
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_tenure"))
        .arg("migrate")
        .env("DATABASE_URL", &url)
        .env("RUST_LOG", "warn")
        .output()
        .unwrap();
    let admin = admin.to_owned();
    // Dropped before checking, so a failure leaves nothing behind.
    {
        use sqlx::Connection;
        let mut conn = sqlx::PgConnection::connect(&admin).await.unwrap();
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "DROP DATABASE IF EXISTS {fresh} WITH (FORCE)"
        )))
        .execute(&mut conn)
        .await
        .unwrap();
    }
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        "migrations applied"
    );
}
