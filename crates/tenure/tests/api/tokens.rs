//! Tokens have a life cycle: listed, revoked (refused within the cache time by every server),
//! expiring; and staff passwords need not pass through a shell's history.

use std::io::Write;
use std::time::Duration;

use reqwest::Method;
use serde_json::json;
use tenure_domain::access::Role;
use tenure_testkit::{TestDb, operator, spawn_app_with};

async fn status_with(app: &tenure_testkit::TestApp, token: &str) -> u16 {
    app.client
        .get(app.url("/api/v1/customers"))
        .bearer_auth(token)
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

#[tokio::test]
async fn a_token_revoked_elsewhere_is_refused_within_the_cache_time() {
    for db in TestDb::all().await {
        let ttl = Duration::from_millis(800);
        let app = spawn_app_with(db, tenure_app::App::new, ttl).await;
        let made = app
            .app
            .create_token(&operator(), "shop till", Role::Agent, None)
            .await
            .unwrap();
        assert_eq!(status_with(&app, &made.token).await, 200);
        // Revoked from the command line: another process, which cannot clear this
        // server's cache.
        let out = crate::ok(&crate::tenure(
            &app.db,
            &["token", "revoke", &made.id.to_string()],
        ));
        assert!(
            out.starts_with(&format!("revoked token {}", made.id)),
            "{out}"
        );
        tokio::time::sleep(ttl + Duration::from_millis(300)).await;
        assert_eq!(status_with(&app, &made.token).await, 401);
        // Revoking twice says so.
        let again = crate::tenure(&app.db, &["token", "revoke", &made.id.to_string()]);
        assert!(!again.status.success());
        assert!(String::from_utf8_lossy(&again.stderr).contains("not found"));
    }
}

#[tokio::test]
async fn a_token_revoked_through_the_api_is_refused_at_once_by_that_server() {
    let app = spawn_app_with(
        TestDb::sqlite(),
        tenure_app::App::new,
        Duration::from_secs(30),
    )
    .await;
    let (status, made) = app
        .post_json(
            "/api/v1/tokens",
            json!({"name": "integration", "role": "agent"}),
        )
        .await;
    assert_eq!(status, 201, "{made}");
    let token = made["token"].as_str().unwrap().to_owned();
    assert_eq!(status_with(&app, &token).await, 200);
    let (_, list) = app.get_json("/api/v1/tokens").await;
    let listed = list["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["id"] == made["id"])
        .unwrap()
        .clone();
    assert_eq!(listed["name"], "integration");
    assert!(
        listed.get("token").is_none(),
        "a listed token never shows the token"
    );
    assert!(listed["revoked_at"].is_null());
    let res = app
        .admin(Method::DELETE, &format!("/api/v1/tokens/{}", made["id"]))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 204);
    assert_eq!(status_with(&app, &token).await, 401);
    let (_, list) = app.get_json("/api/v1/tokens").await;
    let listed = list["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["id"] == made["id"])
        .unwrap()
        .clone();
    assert!(listed["revoked_at"].is_string());
}

#[tokio::test]
async fn an_expired_token_is_refused() {
    for db in TestDb::all().await {
        let app = spawn_app_with(db, tenure_app::App::new, Duration::from_millis(200)).await;
        let made = app
            .app
            .create_token(
                &operator(),
                "short-lived",
                Role::Manager,
                Some(chrono::Duration::milliseconds(700)),
            )
            .await
            .unwrap();
        assert_eq!(status_with(&app, &made.token).await, 200);
        tokio::time::sleep(Duration::from_millis(1000)).await;
        assert_eq!(status_with(&app, &made.token).await, 401);
        let listed = crate::ok(&crate::tenure(&app.db, &["token", "list"]));
        let line = listed
            .lines()
            .find(|l| l.contains("short-lived"))
            .unwrap()
            .to_owned();
        assert!(line.contains("expired"), "{listed}");
        // The command line makes tokens that expire in days.
        let out = crate::ok(&crate::tenure(
            &app.db,
            &[
                "token",
                "create",
                "--name",
                "ci",
                "--role",
                "read_only",
                "--expires-in-days",
                "7",
            ],
        ));
        assert!(out.contains("valid until"), "{out}");
        let token = out.lines().last().unwrap();
        assert_eq!(status_with(&app, token).await, 200);
    }
}

#[tokio::test]
async fn a_staff_password_can_come_from_standard_input() {
    let db = TestDb::sqlite();
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_tenure"))
        .args([
            "user",
            "create",
            "--email",
            "amy@example.com",
            "--role",
            "manager",
            "--password-stdin",
        ])
        .env("DATABASE_URL", &db.url)
        .env("RUST_LOG", "warn")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"correct horse battery staple\n")
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let stdout = crate::ok(&out);
    assert!(stdout.contains("amy@example.com"), "{stdout}");
    let store = db.store().await;
    let (user, hash) = store
        .find_user_by_email("amy@example.com")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(user.role, Role::Manager);
    let hash = hash.unwrap();
    assert!(tenure_app::password::verify(
        "correct horse battery staple",
        &hash
    ));
    assert!(!tenure_app::password::verify(
        "correct horse battery staple\n",
        &hash
    ));

    // Too short a password is refused with the rule.
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_tenure"))
        .args([
            "user",
            "create",
            "--email",
            "bo@example.com",
            "--role",
            "agent",
            "--password",
            "short",
        ])
        .env("DATABASE_URL", &db.url)
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("at least 10 characters"));
}
