//! Black-box tests of the HTTP API through a spawned server, on SQLite and (when
//! configured) PostgreSQL. One test binary for all API tests.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod access;
mod analytics;
mod browser;
mod cli;
mod cluster;
mod concurrency;
mod core;
mod customers;
mod document;
mod duplicates;
mod errors;
mod exchange;
mod faults;
mod fuzz;
mod import;
mod jobs;
mod journeys;
mod lifecycle;
mod loyalty;
mod orders;
mod recommendations;
mod service;
mod tokens;
mod trust;
mod web;
mod webhooks;

/// Runs the `tenure` binary on `db`.
pub fn tenure(db: &tenure_testkit::TestDb, args: &[&str]) -> std::process::Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_tenure"))
        .args(args)
        .env("DATABASE_URL", &db.url)
        .env("RUST_LOG", "warn")
        .env("RUST_BACKTRACE", "0")
        .output()
        .expect("run tenure")
}

/// Every item of a paged list, following `next_cursor` from `path` (which has a query).
pub async fn all_items(app: &tenure_testkit::TestApp, path: &str) -> Vec<serde_json::Value> {
    let mut items = Vec::new();
    let mut next = path.to_owned();
    loop {
        let (status, page) = app.get_json(&next).await;
        assert_eq!(status, 200, "{next}: {page}");
        items.extend(page["items"].as_array().unwrap().iter().cloned());
        match page["next_cursor"].as_str() {
            Some(c) => next = format!("{path}&cursor={c}"),
            None => return items,
        }
    }
}

/// Its standard output, after checking that it succeeded.
pub fn ok(out: &std::process::Output) -> String {
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}
