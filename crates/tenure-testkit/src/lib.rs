//! Test helpers: every test gets its own database — a temporary SQLite file, and a fresh
//! PostgreSQL database when `TENURE_TEST_POSTGRES_URL` names a server — and, for API
//! tests, its own server on a free port.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::HashMap;
use std::net::SocketAddr;

use sqlx::Connection;
use tenure_domain::access::Role;
use tenure_store::{Backend, Store, StoreOptions};

/// The environment variable naming a PostgreSQL server for tests, e.g.
/// `postgres://postgres@127.0.0.1:5432/postgres`.
pub const POSTGRES_ENV: &str = "TENURE_TEST_POSTGRES_URL";

/// A database that exists for one test and is removed afterwards.
pub struct TestDb {
    pub backend: Backend,
    pub url: String,
    _dir: Option<tempfile::TempDir>,
    pg: Option<(String, String)>,
}

impl TestDb {
    pub fn sqlite() -> TestDb {
        let dir = tempfile::tempdir().expect("temporary directory");
        let url = format!(
            "sqlite://{}?mode=rwc",
            dir.path().join("tenure.db").display()
        );
        TestDb {
            backend: Backend::Sqlite,
            url,
            _dir: Some(dir),
            pg: None,
        }
    }

    /// A fresh PostgreSQL database, or `None` (with a note on stderr) when no server is
    /// configured.
    pub async fn postgres() -> Option<TestDb> {
        let Ok(admin) = std::env::var(POSTGRES_ENV) else {
            skip(&format!(
                "{POSTGRES_ENV} is not set; skipping the PostgreSQL run of this test"
            ));
            return None;
        };
        let name = format!("tenure_test_{:016x}", rand::random::<u64>());
        let mut conn = sqlx::PgConnection::connect(&admin)
            .await
            .expect("connect to the PostgreSQL test server");
        sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
            .execute(&mut conn)
            .await
            .expect("create database");
        let _ = conn.close().await;
        let url = replace_db_name(&admin, &name);
        Some(TestDb {
            backend: Backend::Postgres,
            url,
            _dir: None,
            pg: Some((admin, name)),
        })
    }

    /// SQLite always, PostgreSQL too when configured: run a test body on each.
    pub async fn all() -> Vec<TestDb> {
        let mut dbs = vec![TestDb::sqlite()];
        dbs.extend(TestDb::postgres().await);
        dbs
    }

    pub fn options(&self) -> StoreOptions {
        StoreOptions::new(self.url.clone())
    }

    /// A migrated store on this database.
    pub async fn store(&self) -> Store {
        let store = Store::connect(&self.options())
            .await
            .expect("connect to the test database");
        store.migrate().await.expect("migrate the test database");
        store
    }

    /// A pool of the generic driver on this database, for tests that look at or damage the
    /// stored rows themselves.
    pub async fn raw_pool(&self) -> sqlx::AnyPool {
        sqlx::any::install_default_drivers();
        sqlx::any::AnyPoolOptions::new()
            .max_connections(2)
            .connect(&self.url)
            .await
            .expect("connect to the test database")
    }

    /// For PostgreSQL: the admin URL and the database name.
    pub fn postgres_admin(&self) -> Option<(&str, &str)> {
        self.pg.as_ref().map(|(a, n)| (a.as_str(), n.as_str()))
    }
}

fn replace_db_name(url: &str, name: &str) -> String {
    let (base, query) = url
        .split_once('?')
        .map_or((url, None), |(b, q)| (b, Some(q)));
    let cut = base
        .rfind('/')
        .filter(|&i| i > base.find("://").map_or(0, |s| s + 2))
        .unwrap_or(base.len());
    let mut out = format!("{}/{}", &base[..cut], name);
    if let Some(q) = query {
        out.push('?');
        out.push_str(q);
    }
    out
}

impl Drop for TestDb {
    fn drop(&mut self) {
        if let Some((admin, name)) = self.pg.take() {
            // Dropped from a plain thread with its own runtime: Drop cannot await.
            let _ = std::thread::spawn(move || {
                let rt = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .expect("runtime");
                rt.block_on(async move {
                    if let Ok(mut conn) = sqlx::PgConnection::connect(&admin).await {
                        let sql = format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)");
                        let _ = sqlx::query(sqlx::AssertSqlSafe(sql))
                            .execute(&mut conn)
                            .await;
                        let _ = conn.close().await;
                    }
                });
            })
            .join();
        }
    }
}

/// The reference data folder (`TENURE_REFERENCE_DATA`, or `shared/data` beside the
/// checkout); `None`, with a note, when it is not on this machine.
pub fn reference_data() -> Option<std::path::PathBuf> {
    let dir = std::env::var_os("TENURE_REFERENCE_DATA")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| {
            std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/data")
        });
    if dir.join("cdnow/CDNOW_sample.txt").exists() {
        Some(dir)
    } else {
        skip(&format!(
            "the CDNOW reference data is not at {} (set TENURE_REFERENCE_DATA)",
            dir.display()
        ));
        None
    }
}

/// Whether this is a CI run (`CI` set to anything but `false` or `0`), where nothing may be
/// skipped.
pub fn in_ci() -> bool {
    is_ci(std::env::var("CI").ok().as_deref())
}

fn is_ci(value: Option<&str>) -> bool {
    value.is_some_and(|v| !v.is_empty() && v != "false" && v != "0")
}

/// Notes a part of a test that cannot run on this machine; under CI that is a failure, so
/// a missing service or data set never passes as a green test.
pub fn skip(why: &str) {
    assert!(!in_ci(), "CI must run every test, but {why}");
    eprintln!("SKIPPED: {why}");
}

/// A running server on its own database, with a token for every role.
pub struct TestApp {
    pub addr: SocketAddr,
    pub client: reqwest::Client,
    pub tokens: HashMap<Role, String>,
    /// The application the server runs, to set up and check through its use cases.
    pub app: tenure_app::App,
    /// The store beneath it, for checks that look at the stored rows themselves.
    pub store: Store,
    pub db: TestDb,
}

/// The operator at the test's command line: the actor of set-up steps.
pub fn operator() -> tenure_domain::changes::Actor {
    tenure_domain::changes::Actor::cli("test")
}

/// Starts the application on `db` on a free port.
pub async fn spawn_app(db: TestDb) -> TestApp {
    spawn_app_with(db, tenure_app::App::new, tenure_http::auth::TOKEN_TTL).await
}

/// Starts the application built by `build` on `db`, trusting resolved tokens for
/// `token_ttl`.
pub async fn spawn_app_with(
    db: TestDb,
    build: impl FnOnce(Store) -> tenure_app::App,
    token_ttl: std::time::Duration,
) -> TestApp {
    let store = db.store().await;
    let app_core = build(store.clone());
    let mut tokens = HashMap::new();
    for role in Role::ALL {
        let made = app_core
            .create_token(&operator(), &format!("test {role}"), *role, None)
            .await
            .expect("create token");
        tokens.insert(*role, made.token);
    }
    let app = tenure_http::router(tenure_http::AppState::with_token_ttl(
        app_core.clone(),
        token_ttl,
    ));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("local addr");
    tokio::spawn(async move {
        let _ = axum::serve(
            listener,
            app.into_make_service_with_connect_info::<SocketAddr>(),
        )
        .await;
    });
    TestApp {
        addr,
        client: reqwest::Client::new(),
        tokens,
        app: app_core,
        store,
        db,
    }
}

impl TestApp {
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }

    /// A request with the token of `role`.
    pub fn as_role(
        &self,
        role: Role,
        method: reqwest::Method,
        path: &str,
    ) -> reqwest::RequestBuilder {
        self.client
            .request(method, self.url(path))
            .bearer_auth(&self.tokens[&role])
    }

    pub fn admin(&self, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
        self.as_role(Role::Admin, method, path)
    }

    /// POSTs JSON as admin and returns the status and body.
    pub async fn post_json(&self, path: &str, body: serde_json::Value) -> (u16, serde_json::Value) {
        let res = self
            .admin(reqwest::Method::POST, path)
            .json(&body)
            .send()
            .await
            .expect("request");
        let status = res.status().as_u16();
        (status, res.json().await.unwrap_or(serde_json::Value::Null))
    }

    /// GETs as admin and returns the status and body.
    pub async fn get_json(&self, path: &str) -> (u16, serde_json::Value) {
        let res = self
            .admin(reqwest::Method::GET, path)
            .send()
            .await
            .expect("request");
        let status = res.status().as_u16();
        (status, res.json().await.unwrap_or(serde_json::Value::Null))
    }

    /// The body of an unauthenticated GET (pages, health, metrics).
    pub async fn get_text(&self, path: &str) -> String {
        self.client
            .get(self.url(path))
            .send()
            .await
            .expect("request")
            .text()
            .await
            .expect("body")
    }
}

/// Recomputes every customer's aggregates from raw rows, to compare with the ones every
/// write keeps.
pub async fn rebuild_stats(store: &Store) {
    let mut w = store.begin_write().await.expect("begin");
    w.rebuild_aggregates().await.expect("rebuild aggregates");
    w.commit().await.expect("commit");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ci_is_any_value_but_false() {
        assert!(is_ci(Some("true")));
        assert!(is_ci(Some("1")));
        assert!(!is_ci(Some("false")));
        assert!(!is_ci(Some("0")));
        assert!(!is_ci(Some("")));
        assert!(!is_ci(None));
    }

    #[test]
    fn database_names_are_replaced() {
        assert_eq!(
            replace_db_name("postgres://u@h:5432/postgres", "x"),
            "postgres://u@h:5432/x"
        );
        assert_eq!(
            replace_db_name("postgres://u@h/postgres?sslmode=disable", "x"),
            "postgres://u@h/x?sslmode=disable"
        );
        assert_eq!(
            replace_db_name("postgres://u@h:5432", "x"),
            "postgres://u@h:5432/x"
        );
    }
}
