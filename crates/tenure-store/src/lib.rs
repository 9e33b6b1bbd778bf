//! Tenure's storage boundary: migrations, queries and transactions over SQLite (the
//! embedded default) and PostgreSQL, through one code path.
//!
//! Architecture invariant: every query is written once, with `$n` placeholders, and runs on
//! both databases through sqlx's `any` driver. What differs between the two lives in
//! [`dialect`] and in the two migration folders, nowhere else.
//!
//! Architecture invariant: a failed query is an error, never `None` or an empty list; an
//! outage surfaces as [`StoreError::Unavailable`].

pub mod accounts;
pub mod analytics;
pub mod backup;
pub mod changes;
pub mod customers;
mod decode;
pub mod dialect;
pub mod duplicates;
mod error;
pub mod export;
pub mod interactions;
pub mod jobs;
pub mod journeys;
pub mod lifecycle;
pub mod load;
pub mod loyalty;
pub mod orders;
pub mod privacy;
pub mod products;
pub mod recommendations;
pub mod refresh;
pub mod registry;
pub mod segments;
pub mod service;
mod sql;
pub mod stats;
#[cfg(test)]
mod tidy;
mod time;
pub mod timeline;
pub mod users;
pub mod web;
pub mod webhooks;

use std::sync::Arc;
use std::time::Duration;

use sqlx::any::AnyPoolOptions;
use sqlx::{Any, AnyPool, Transaction};
use tokio::sync::{Mutex, MutexGuard};

pub use dialect::Backend;
pub use error::{StoreError, StoreResult};
pub use time::{from_micros, to_micros};

/// A page of a list and where the next one starts.
#[derive(Debug, Clone)]
pub struct Page<T, C> {
    pub items: Vec<T>,
    pub next: Option<C>,
}

impl<T, C> Page<T, C> {
    /// A page from a query that fetched up to `limit + 1` items: the extra one only tells
    /// that more follow.
    pub(crate) fn cut(mut items: Vec<T>, limit: i64, key: impl Fn(&T) -> C) -> Self {
        let more = items.len() as i64 > limit;
        items.truncate(usize::try_from(limit).unwrap_or(0));
        let next = if more { items.last().map(key) } else { None };
        Page { items, next }
    }
}

/// Settings for opening a store.
#[derive(Clone)]
pub struct StoreOptions {
    /// `sqlite://FILE?mode=rwc` or `postgres://...`.
    pub url: String,
    /// Most connections the pool opens.
    pub max_connections: u32,
    /// How long a request waits for a connection before the store reports itself
    /// unavailable.
    pub acquire_timeout: Duration,
    /// The currency in which per-customer spend is summed (ISO 4217).
    pub reporting_currency: String,
    /// A streaming replica of the PostgreSQL primary (`TENURE_READ_DATABASE_URL`) that
    /// list pages, segment counts and reports read from; writes, and reads of what a
    /// request has just written, stay on the primary.
    pub read_url: Option<String>,
}

impl std::fmt::Debug for StoreOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StoreOptions")
            .field("url", &redact_url(&self.url))
            .field("max_connections", &self.max_connections)
            .field("acquire_timeout", &self.acquire_timeout)
            .field("reporting_currency", &self.reporting_currency)
            .field("read_url", &self.read_url.as_deref().map(redact_url))
            .finish()
    }
}

impl StoreOptions {
    pub fn new(url: impl Into<String>) -> Self {
        Self {
            url: url.into(),
            max_connections: 16,
            acquire_timeout: Duration::from_secs(3),
            reporting_currency: "USD".into(),
            read_url: None,
        }
    }
}

/// A database URL with its password replaced, safe to log.
pub fn redact_url(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme_end), Some(at)) if at > scheme_end => {
            let userinfo = &url[scheme_end + 3..at];
            let user = userinfo.split(':').next().unwrap_or("");
            format!("{}://{user}:***{}", &url[..scheme_end], &url[at..])
        }
        _ => url.to_owned(),
    }
}

/// The store: a connection pool and the rules for writing through it.
#[derive(Clone)]
pub struct Store {
    pool: AnyPool,
    /// The replica, when one is configured (see [`Store::reader`]).
    replica: Option<Replica>,
    backend: Backend,
    /// SQLite admits one writer at a time; writers in this process queue here instead of
    /// spinning on the database's busy handler.
    writer: Arc<Mutex<()>>,
    reporting_currency: Arc<str>,
    /// For imports into a SQLite file: a plain connection (see `sqlite_load`).
    loader: Option<Arc<Loader>>,
    /// For imports into PostgreSQL: a connection of its own, for `COPY`.
    pg_loader: Option<Arc<PgLoader>>,
}

/// A read replica's pool and whether it answered its last health check.
#[derive(Clone)]
struct Replica {
    pool: AnyPool,
    up: Arc<std::sync::atomic::AtomicBool>,
}

impl Replica {
    /// Opens the pool lazily (a replica that is down does not keep the primary's server
    /// from starting) and checks it every two seconds while the store lives: reads go to
    /// it only while it answers, to the primary meanwhile.
    fn open(options: AnyPoolOptions, url: &str) -> StoreResult<Replica> {
        let pool = options.connect_lazy(url)?;
        let up = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let watched = Arc::downgrade(&up);
        let probe = pool.clone();
        tokio::spawn(async move {
            let mut was = None;
            loop {
                let Some(up) = watched.upgrade() else { return };
                let ok = tokio::time::timeout(
                    Duration::from_secs(1),
                    sqlx::query("SELECT 1").execute(&probe),
                )
                .await
                .is_ok_and(|r| r.is_ok());
                up.store(ok, std::sync::atomic::Ordering::Relaxed);
                if was != Some(ok) {
                    if ok {
                        tracing::info!("the read replica answers; lists and reports read from it");
                    } else {
                        tracing::warn!(
                            "the read replica does not answer; lists and reports read from the primary"
                        );
                    }
                    was = Some(ok);
                }
                drop(up);
                tokio::time::sleep(Duration::from_secs(2)).await;
            }
        });
        Ok(Replica { pool, up })
    }
}

/// The import connections to PostgreSQL, opened on first use: up to
/// [`load::PG_LOADERS`] batches are written at once (PostgreSQL runs each connection's
/// statements on one core).
pub(crate) struct PgLoader {
    url: String,
    pub(crate) idle: std::sync::Mutex<Vec<sqlx::PgConnection>>,
    permits: Arc<tokio::sync::Semaphore>,
}

/// The connection of [`sqlite_load`], opened on first use.
struct Loader {
    path: String,
    conn: std::sync::Mutex<Option<rusqlite::Connection>>,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store")
            .field("backend", &self.backend)
            .finish_non_exhaustive()
    }
}

/// A write transaction, holding the process's writer slot on SQLite. Every write of the
/// store is a method of it, so a use case can make several writes and commit them as one;
/// dropped without [`WriteTx::commit`], it rolls back.
pub struct WriteTx<'s> {
    pub(crate) tx: Transaction<'static, Any>,
    pub(crate) store: &'s Store,
    /// Match keys customers gained or lost in this transaction so far.
    pub(crate) key_changes: Vec<customers::KeyChange>,
    _writer: Option<MutexGuard<'s, ()>>,
}

impl WriteTx<'_> {
    pub async fn commit(self) -> StoreResult<()> {
        self.tx.commit().await?;
        Ok(())
    }

    pub async fn rollback(self) -> StoreResult<()> {
        self.tx.rollback().await?;
        Ok(())
    }

    pub fn backend(&self) -> Backend {
        self.store.backend
    }

    /// The match keys customers gained or lost since the last call: the duplicate
    /// candidates follow them.
    pub fn take_key_changes(&mut self) -> Vec<customers::KeyChange> {
        std::mem::take(&mut self.key_changes)
    }

    pub fn reporting_currency(&self) -> &str {
        &self.store.reporting_currency
    }

    /// On PostgreSQL, locks the row `id` of `table` until the transaction ends (SQLite's
    /// writer slot already serialises every write). Call it before reading a row that the
    /// transaction will write back, so a concurrent writer cannot slip in between.
    pub(crate) async fn lock(&mut self, table: sql::Table, id: i64) -> StoreResult<bool> {
        if self.backend() == Backend::Sqlite {
            return Ok(true);
        }
        let found: Option<i64> = sqlx::query_scalar(table.lock_sql())
            .bind(id)
            .fetch_optional(&mut *self.tx)
            .await?;
        Ok(found.is_some())
    }
}

/// Whether the server refused a connection because the database it names does not exist.
fn is_missing_database(e: &sqlx::Error) -> bool {
    matches!(e, sqlx::Error::Database(d) if d.code().as_deref() == Some("3D000"))
}

/// Creates the PostgreSQL database `url` names (as SQLite creates its file), connecting to
/// the server's `postgres` database to do so.
async fn create_database(url: &str) -> StoreResult<()> {
    use sqlx::{ConnectOptions, Connection};
    let options: sqlx::postgres::PgConnectOptions = url.parse()?;
    let Some(name) = options.get_database().map(str::to_owned) else {
        return Err(StoreError::Config(format!(
            "{} names no database",
            redact_url(url)
        )));
    };
    let mut admin = options.clone().database("postgres").connect().await?;
    let quoted = format!("\"{}\"", name.replace('"', "\"\""));
    let created = sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {quoted}")))
        .execute(&mut admin)
        .await;
    let _ = admin.close().await;
    match created {
        Ok(_) => {
            tracing::info!(database = %name, "created the PostgreSQL database");
            Ok(())
        }
        // Another process created it first.
        Err(sqlx::Error::Database(e)) if e.code().as_deref() == Some("42P04") => Ok(()),
        Err(e) => Err(e.into()),
    }
}

impl Store {
    /// Opens the pool, creating a missing PostgreSQL database. Does not migrate; call
    /// [`Store::migrate`].
    pub async fn connect(options: &StoreOptions) -> StoreResult<Store> {
        sqlx::any::install_default_drivers();
        let backend = Backend::from_url(&options.url)?;
        let url = backend.prepare_url(&options.url)?;
        let pool_options = AnyPoolOptions::new()
            .max_connections(options.max_connections)
            .min_connections(0)
            .acquire_timeout(options.acquire_timeout)
            .after_connect(move |conn, _meta| {
                Box::pin(async move { backend.on_connect(conn).await })
            });
        let pool = match pool_options.clone().connect(&url).await {
            Err(e) if backend == Backend::Postgres && is_missing_database(&e) => {
                create_database(&url).await?;
                pool_options.clone().connect(&url).await?
            }
            opened => opened?,
        };
        let replica = match &options.read_url {
            None => None,
            Some(read) => {
                if backend != Backend::Postgres || Backend::from_url(read)? != Backend::Postgres {
                    return Err(StoreError::Config(
                        "a read replica (TENURE_READ_DATABASE_URL) is a PostgreSQL standby of a PostgreSQL primary".into(),
                    ));
                }
                Some(Replica::open(pool_options, &backend.prepare_url(read)?)?)
            }
        };
        Ok(Store {
            pool,
            replica,
            backend,
            writer: Arc::new(Mutex::new(())),
            reporting_currency: options.reporting_currency.clone().into(),
            loader: match backend {
                Backend::Sqlite => load::sqlite::file_of(&options.url).map(|path| {
                    Arc::new(Loader {
                        path,
                        conn: std::sync::Mutex::new(None),
                    })
                }),
                _ => None,
            },
            pg_loader: (backend == Backend::Postgres).then(|| {
                Arc::new(PgLoader {
                    url: url.clone(),
                    idle: std::sync::Mutex::new(Vec::new()),
                    permits: Arc::new(tokio::sync::Semaphore::new(load::PG_LOADERS)),
                })
            }),
        })
    }

    /// An import connection to PostgreSQL, waiting while all are in use (imports into
    /// SQLite go through `Store::load_sqlite`; an in-memory SQLite database has neither).
    pub(crate) async fn pg_loader(&self) -> StoreResult<load::postgres::LoaderConn> {
        let Some(loader) = &self.pg_loader else {
            return Err(StoreError::Config(
                "imports need a SQLite file or PostgreSQL".into(),
            ));
        };
        let permit = loader
            .permits
            .clone()
            .acquire_owned()
            .await
            .map_err(|_| StoreError::Config("the import connections are closed".into()))?;
        let idle = loader
            .idle
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .pop();
        let conn = match idle {
            Some(conn) => conn,
            None => load::postgres::connect(&loader.url).await?,
        };
        Ok(load::postgres::LoaderConn::new(
            conn,
            loader.clone(),
            permit,
        ))
    }

    /// How many import batches may be written at once: several on PostgreSQL, one into a
    /// SQLite file (one writer at a time).
    pub fn import_writers(&self) -> usize {
        match self.backend {
            Backend::Postgres => load::PG_LOADERS,
            Backend::Sqlite => 1,
        }
    }

    /// Runs `f` on the import connection to a SQLite file, holding the writer slot; `None`
    /// on PostgreSQL.
    pub(crate) async fn load_sqlite<T>(
        &self,
        f: impl FnOnce(&mut rusqlite::Connection) -> StoreResult<T>,
    ) -> Option<StoreResult<T>> {
        let loader = self.loader.as_ref()?;
        let _writer = self.writer.lock().await;
        let run = || {
            let mut slot = loader
                .conn
                .lock()
                .map_err(|_| StoreError::Config("the bulk-load connection was poisoned".into()))?;
            let conn = match &mut *slot {
                Some(conn) => conn,
                empty => empty.insert(load::sqlite::open(&loader.path)?),
            };
            f(conn)
        };
        // The statements run on this thread; on a multi-threaded runtime, let the other
        // tasks move elsewhere meanwhile.
        Some(match tokio::runtime::Handle::current().runtime_flavor() {
            tokio::runtime::RuntimeFlavor::MultiThread => tokio::task::block_in_place(run),
            _ => run(),
        })
    }

    /// Runs `f` on a fresh plain connection to the SQLite file, for a large read that the
    /// generic driver would decode value by value; `None` on PostgreSQL. Reads take no
    /// writer slot: in WAL mode they see the last committed state while writes go on.
    pub(crate) async fn read_sqlite<T>(
        &self,
        f: impl FnOnce(&rusqlite::Connection) -> StoreResult<T>,
    ) -> Option<StoreResult<T>> {
        let loader = self.loader.as_ref()?;
        let run = || {
            let conn = load::sqlite::open(&loader.path)?;
            // A read keeps a small cache and sorts through a temporary file, so a large
            // GROUP BY does not hold the whole result in memory twice.
            conn.execute_batch("PRAGMA cache_size = -65536; PRAGMA temp_store = FILE;")?;
            f(&conn)
        };
        Some(match tokio::runtime::Handle::current().runtime_flavor() {
            tokio::runtime::RuntimeFlavor::MultiThread => tokio::task::block_in_place(run),
            _ => run(),
        })
    }

    /// Applies every pending migration of this backend.
    pub async fn migrate(&self) -> StoreResult<()> {
        let migrator = match self.backend {
            Backend::Sqlite => sqlx::migrate!("migrations/sqlite"),
            Backend::Postgres => sqlx::migrate!("migrations/postgres"),
        };
        migrator.run(&self.pool).await.map_err(StoreError::Migrate)
    }

    pub fn backend(&self) -> Backend {
        self.backend
    }

    pub fn reporting_currency(&self) -> &str {
        &self.reporting_currency
    }

    /// Checks that the database answers.
    pub async fn ping(&self) -> StoreResult<()> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }

    /// Refreshes the planner's statistics; run after loading many rows, so that plans are
    /// made from what the tables hold now rather than from their empty state.
    pub async fn analyze(&self) -> StoreResult<()> {
        // A SQLite file is analysed on the import connection, which reads through its cache
        // rather than mapping the file: the pool's connections map up to a GiB of it, and
        // after a large load all of that would count as the importing process's memory.
        if let Some(done) = self
            .load_sqlite(|c| {
                c.execute_batch("PRAGMA analysis_limit = 1000; ANALYZE;")?;
                Ok(())
            })
            .await
        {
            return done;
        }
        if self.backend == Backend::Postgres {
            // On the import connection: analysing a freshly loaded database takes seconds by
            // nature, not worth a slow-statement warning.
            let mut conn = self.pg_loader().await?;
            sqlx::query("ANALYZE").execute(conn.get()?).await?;
            return Ok(());
        }
        let mut conn = self.pool.acquire().await?;
        if self.backend == Backend::Sqlite {
            // Sample about a thousand rows per index instead of reading every one: the
            // plans only need the rough shape, and a full ANALYZE of a large file takes
            // longer than loading it.
            sqlx::query("PRAGMA analysis_limit = 1000")
                .execute(&mut *conn)
                .await?;
        }
        sqlx::query("ANALYZE").execute(&mut *conn).await?;
        Ok(())
    }

    /// Closes every connection; used at shutdown.
    pub async fn close(&self) {
        self.pool.close().await;
    }

    pub(crate) fn pool(&self) -> &AnyPool {
        &self.pool
    }

    /// The pool for reads that may lag the primary by the replica's delay: list pages,
    /// segment counts, reports. The primary's when no replica is configured or the replica
    /// did not answer its last health check.
    pub(crate) fn reader(&self) -> &AnyPool {
        match &self.replica {
            Some(r) if r.up.load(std::sync::atomic::Ordering::Relaxed) => &r.pool,
            _ => &self.pool,
        }
    }

    /// [`Store::reader`] for a list across the business; the primary for one scoped to a
    /// single customer or record (`own`), which a page shows right after writing to it.
    pub(crate) fn reader_unless(&self, own: bool) -> &AnyPool {
        if own { &self.pool } else { self.reader() }
    }

    /// Starts a write transaction. On SQLite it waits for this process's writer slot and
    /// then takes the database's write lock at once (`BEGIN IMMEDIATE`), so a transaction
    /// never fails half-way for want of the lock.
    pub async fn begin_write(&self) -> StoreResult<WriteTx<'_>> {
        let guard = match self.backend {
            Backend::Sqlite => Some(self.writer.lock().await),
            Backend::Postgres => None,
        };
        let tx = match self.backend {
            Backend::Sqlite => self.pool.begin_with("BEGIN IMMEDIATE").await?,
            Backend::Postgres => self.pool.begin().await?,
        };
        Ok(WriteTx {
            tx,
            store: self,
            key_changes: Vec::new(),
            _writer: guard,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_are_redacted() {
        assert_eq!(
            redact_url("postgres://bob:secret@db:5432/x"),
            "postgres://bob:***@db:5432/x"
        );
        assert_eq!(
            redact_url("sqlite://tenure.db?mode=rwc"),
            "sqlite://tenure.db?mode=rwc"
        );
    }
}
