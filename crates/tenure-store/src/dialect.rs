//! The one place where SQLite and PostgreSQL differ at run time: URL handling and
//! per-connection settings. (Schema differences live in the two migration folders.)

use sqlx::{AnyConnection, Executor};

use crate::{StoreError, StoreResult};

/// Which database a store talks to, picked from the URL's scheme.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

impl Backend {
    pub fn from_url(url: &str) -> StoreResult<Backend> {
        if url.starts_with("sqlite:") {
            Ok(Backend::Sqlite)
        } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Ok(Backend::Postgres)
        } else {
            Err(StoreError::Config(format!(
                "unsupported database URL {:?}: use sqlite://FILE or postgres://...",
                crate::redact_url(url)
            )))
        }
    }

    /// SQLite files are created when missing, so a fresh machine needs no setup.
    pub(crate) fn prepare_url(self, url: &str) -> StoreResult<String> {
        match self {
            Backend::Sqlite if !url.contains("mode=") && !url.contains(":memory:") => {
                let sep = if url.contains('?') { '&' } else { '?' };
                Ok(format!("{url}{sep}mode=rwc"))
            }
            _ => Ok(url.to_owned()),
        }
    }

    pub(crate) async fn on_connect(self, conn: &mut AnyConnection) -> Result<(), sqlx::Error> {
        if self == Backend::Postgres {
            // Statements are prepared once per connection. Left to itself, PostgreSQL
            // compares a generic plan with its first custom plans and, for a search whose
            // `LIMIT $n` it cannot see, keeps planning every execution anew (over a
            // millisecond each, more than running it). Tenure's queries are index walks
            // whose plan does not depend on the values, so one generic plan serves.
            conn.execute("SET plan_cache_mode = force_generic_plan")
                .await?;
            // A generic plan cannot see `LIMIT $n`, prices the whole range and would start
            // parallel workers (milliseconds each) for a page of twenty rows. Requests are
            // short; the pool already runs them in parallel.
            conn.execute("SET max_parallel_workers_per_gather = 0")
                .await?;
        }
        if self == Backend::Sqlite {
            // WAL lets readers run while one writer writes; NORMAL sync is durable in WAL
            // mode except on power loss; foreign keys are off by default in SQLite.
            for pragma in [
                "PRAGMA journal_mode = WAL",
                "PRAGMA synchronous = NORMAL",
                "PRAGMA busy_timeout = 10000",
                "PRAGMA foreign_keys = ON",
                // Each connection has a private page cache; reads of the file beyond it go
                // through one shared memory map instead of being copied per connection.
                "PRAGMA cache_size = -16384",
                "PRAGMA mmap_size = 1073741824",
            ] {
                conn.execute(pragma).await?;
            }
        }
        Ok(())
    }
}

/// The highest id a SQLite table has ever used: the larger of its current maximum and the
/// highest id deleted from it (`id_floors`, kept by triggers), so an id deleted at the top
/// is never handed out again. Inserts name their ids above it.
pub(crate) const SQLITE_LAST_CUSTOMER_ID: &str = "SELECT MAX(COALESCE((SELECT MAX(id) FROM customers), 0), \
     COALESCE((SELECT last FROM id_floors WHERE name = 'customers'), 0))";
pub(crate) const SQLITE_LAST_ORDER_ID: &str = "SELECT MAX(COALESCE((SELECT MAX(id) FROM orders), 0), \
     COALESCE((SELECT last FROM id_floors WHERE name = 'orders'), 0))";
pub(crate) const SQLITE_LAST_INTERACTION_ID: &str = "SELECT MAX(COALESCE((SELECT MAX(id) FROM interactions), 0), \
     COALESCE((SELECT last FROM id_floors WHERE name = 'interactions'), 0))";

/// `n` fresh ids from a PostgreSQL table's identity sequence (`$1` the table, `$2` n).
pub(crate) const POSTGRES_NEXT_IDS: &str =
    "SELECT nextval(pg_get_serial_sequence($1, 'id')) FROM generate_series(1, $2)";

impl Backend {
    /// Reserves `n` fresh ids for `table` inside a write transaction: inserts into the
    /// tables whose ids clients hold name their ids, which keeps SQLite from reusing a
    /// deleted one, and bulk inserts need no `RETURNING` (whose row order neither database
    /// promises).
    pub(crate) async fn reserve_id(
        self,
        tx: &mut sqlx::Transaction<'static, sqlx::Any>,
        table: &'static str,
    ) -> StoreResult<i64> {
        self.reserve_ids(tx, table, 1)
            .await?
            .first()
            .copied()
            .ok_or_else(|| StoreError::Config(format!("no id reserved for {table}")))
    }

    pub(crate) async fn reserve_ids(
        self,
        tx: &mut sqlx::Transaction<'static, sqlx::Any>,
        table: &'static str,
        n: usize,
    ) -> StoreResult<Vec<i64>> {
        if n == 0 {
            return Ok(Vec::new());
        }
        let n = i64::try_from(n).map_err(|_| StoreError::Config("batch too large".into()))?;
        match self {
            // The write transaction holds SQLite's only write lock, so the last id is stable.
            Backend::Sqlite => {
                let sql = match table {
                    "customers" => SQLITE_LAST_CUSTOMER_ID,
                    "orders" => SQLITE_LAST_ORDER_ID,
                    "interactions" => SQLITE_LAST_INTERACTION_ID,
                    other => {
                        return Err(StoreError::Config(format!("no id reservation for {other}")));
                    }
                };
                let max: i64 = sqlx::query_scalar(sql).fetch_one(&mut **tx).await?;
                Ok((max + 1..=max + n).collect())
            }
            Backend::Postgres => {
                let ids: Vec<i64> = sqlx::query_scalar(POSTGRES_NEXT_IDS)
                    .bind(table)
                    .bind(n)
                    .fetch_all(&mut **tx)
                    .await?;
                Ok(ids)
            }
        }
    }
}

impl Backend {
    /// Appends the `n`-th bind placeholder. Queries use `$n` everywhere, which both
    /// databases accept; only the very wide statements of bulk loads use SQLite's
    /// anonymous `?`, because SQLite looks up each named `$n` among all names seen so far,
    /// which grows quadratically with thousands of values.
    pub(crate) fn push_placeholder(self, sql: &mut String, n: usize) {
        match self {
            Backend::Sqlite => sql.push('?'),
            Backend::Postgres => {
                sql.push('$');
                sql.push_str(&n.to_string());
            }
        }
    }
}
