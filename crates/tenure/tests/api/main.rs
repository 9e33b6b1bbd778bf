//! Black-box tests of the HTTP API through a spawned server, on SQLite and (when
//! configured) PostgreSQL. One test binary for all API tests.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod access;
mod analytics;
mod cli;
mod concurrency;
mod customers;
mod duplicates;
mod errors;
mod exchange;
mod faults;
mod import;
mod orders;
