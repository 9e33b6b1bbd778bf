//! Backups and restores. A SQLite database is copied online with `VACUUM INTO` (a
//! consistent snapshot while the server keeps serving); a PostgreSQL database with
//! `pg_dump --format=custom`, restored with `pg_restore` into an empty database. Neither
//! overwrites: a backup refuses an existing file, a restore a database that holds tables.

use std::path::Path;

use crate::dialect::Backend;
use crate::{Store, StoreError, StoreResult};

fn refused(message: impl Into<String>) -> StoreError {
    StoreError::Config(message.into())
}

/// A PostgreSQL URL for the client tools, and its password apart (given to them through
/// `PGPASSWORD`, so it shows in no process list).
fn client_url(url: &str) -> (String, Option<String>) {
    let Some((scheme, rest)) = url.split_once("://") else {
        return (url.to_owned(), None);
    };
    let Some((userinfo, host)) = rest.split_once('@') else {
        return (url.to_owned(), None);
    };
    match userinfo.split_once(':') {
        Some((user, password)) => (
            format!("{scheme}://{user}@{host}"),
            Some(password.to_owned()),
        ),
        None => (url.to_owned(), None),
    }
}

async fn run_tool(tool: &str, args: &[&str], password: Option<&str>) -> StoreResult<()> {
    let mut cmd = tokio::process::Command::new(tool);
    cmd.args(args);
    if let Some(p) = password {
        cmd.env("PGPASSWORD", p);
    }
    let out = cmd.output().await.map_err(|e| {
        refused(format!(
            "{tool} could not be run ({e}); install the PostgreSQL client tools \
             (apt-get install postgresql-client)"
        ))
    })?;
    if out.status.success() {
        Ok(())
    } else {
        Err(refused(format!(
            "{tool} failed: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        )))
    }
}

impl Store {
    /// Writes a consistent copy of the whole database to `file`, which must not exist.
    pub async fn backup(&self, file: &Path) -> StoreResult<()> {
        if file.exists() {
            return Err(refused(format!(
                "{} exists; a backup never overwrites a file",
                file.display()
            )));
        }
        let name = file
            .to_str()
            .ok_or_else(|| refused("the backup file's name is not UTF-8"))?
            .to_owned();
        match self.backend() {
            Backend::Sqlite => {
                sqlx::query("VACUUM INTO $1")
                    .bind(name)
                    .execute(self.pool())
                    .await?;
                Ok(())
            }
            Backend::Postgres => {
                let url = self
                    .pg_loader
                    .as_ref()
                    .map(|l| l.url.clone())
                    .ok_or_else(|| refused("no PostgreSQL address"))?;
                let (url, password) = client_url(&url);
                run_tool(
                    "pg_dump",
                    &[
                        "--format=custom",
                        "--no-owner",
                        "--no-privileges",
                        "--file",
                        &name,
                        "--dbname",
                        &url,
                    ],
                    password.as_deref(),
                )
                .await
            }
        }
    }
}

/// Restores the backup in `file` into the database at `url`, which must be empty (a new
/// SQLite file, or a PostgreSQL database without tables). Open the store afterwards: a
/// backup of an older version is migrated forward then.
pub async fn restore(file: &Path, url: &str) -> StoreResult<()> {
    if !file.is_file() {
        return Err(refused(format!("{} is not a file", file.display())));
    }
    let name = file
        .to_str()
        .ok_or_else(|| refused("the backup file's name is not UTF-8"))?;
    match Backend::from_url(url)? {
        Backend::Sqlite => {
            let target = crate::load::sqlite::file_of(url).ok_or_else(|| {
                refused("a restore needs a SQLite file, not an in-memory database")
            })?;
            let target = Path::new(&target);
            if target.metadata().is_ok_and(|m| m.len() > 0) {
                return Err(refused(format!(
                    "{} exists; restore into a new file (and move it into place)",
                    target.display()
                )));
            }
            // Check it is a SQLite database of Tenure before it takes the place.
            let check = rusqlite::Connection::open_with_flags(
                file,
                rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY,
            )?;
            let migrations: i64 = check
                .query_row(
                    "SELECT COUNT(*) FROM sqlite_master WHERE name = '_sqlx_migrations'",
                    [],
                    |r| r.get(0),
                )
                .map_err(|_| refused(format!("{name} is not a SQLite backup of Tenure")))?;
            if migrations == 0 {
                return Err(refused(format!("{name} is not a backup of Tenure")));
            }
            drop(check);
            let partial = target.with_extension("restoring");
            tokio::fs::copy(file, &partial)
                .await
                .map_err(|e| refused(format!("copying the backup: {e}")))?;
            tokio::fs::rename(&partial, target)
                .await
                .map_err(|e| refused(format!("moving the restored database into place: {e}")))?;
            Ok(())
        }
        Backend::Postgres => {
            let url = Backend::Postgres.prepare_url(url)?;
            // The database is made when missing, and must hold no tables.
            let store = Store::connect(&crate::StoreOptions {
                url: url.clone(),
                max_connections: 1,
                acquire_timeout: std::time::Duration::from_secs(10),
                reporting_currency: "USD".into(),
                read_url: None,
            })
            .await?;
            let tables: i64 = sqlx::query_scalar(
                "SELECT COUNT(*) FROM information_schema.tables WHERE table_schema = current_schema()",
            )
            .fetch_one(store.pool())
            .await?;
            store.pool().close().await;
            if tables > 0 {
                return Err(refused(
                    "the database holds tables; restore into a new, empty database",
                ));
            }
            let (url, password) = client_url(&url);
            run_tool(
                "pg_restore",
                &[
                    "--no-owner",
                    "--no-privileges",
                    "--exit-on-error",
                    "--single-transaction",
                    "--dbname",
                    &url,
                    name,
                ],
                password.as_deref(),
            )
            .await
        }
    }
}

impl Store {
    /// Every table of the schema with its number of rows, by name: what a backup holds.
    pub async fn table_counts(&self) -> StoreResult<Vec<(String, i64)>> {
        let names: Vec<String> = match self.backend() {
            Backend::Sqlite => sqlx::query_scalar(
                "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name",
            )
            .fetch_all(self.pool())
            .await?,
            Backend::Postgres => sqlx::query_scalar(
                "SELECT table_name::text FROM information_schema.tables \
                 WHERE table_schema = current_schema() AND table_type = 'BASE TABLE' ORDER BY 1",
            )
            .fetch_all(self.pool())
            .await?,
        };
        let mut out = Vec::with_capacity(names.len());
        for name in names {
            // The names come from the schema itself; quoted all the same.
            let sql = format!("SELECT COUNT(*) FROM \"{}\"", name.replace('"', "\"\""));
            let n: i64 = sqlx::query_scalar(sqlx::AssertSqlSafe(sql))
                .fetch_one(self.pool())
                .await?;
            out.push((name, n));
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::client_url;

    #[test]
    fn the_password_is_kept_apart_from_the_address() {
        assert_eq!(
            client_url("postgres://tenure:s3cret@db.example:5432/crm"),
            (
                "postgres://tenure@db.example:5432/crm".into(),
                Some("s3cret".into())
            )
        );
        assert_eq!(
            client_url("postgres://postgres@127.0.0.1/test"),
            ("postgres://postgres@127.0.0.1/test".into(), None)
        );
    }
}
