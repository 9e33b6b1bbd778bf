//! The store's errors: few, and each one something a caller acts on differently.

/// What can go wrong in the store.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The row asked for does not exist.
    #[error("{what} not found")]
    NotFound { what: &'static str },
    /// A uniqueness rule would be broken, e.g. a second customer with the same external id.
    #[error("conflict on {constraint}")]
    Conflict { constraint: String },
    /// The operation does not fit the records' current state (undoing a merge twice, ...).
    #[error("{0}")]
    Refused(String),
    /// A referenced row does not exist (a customer id on an order, an owner id, ...).
    #[error("{field}: {message}")]
    BadReference {
        field: &'static str,
        message: String,
    },
    /// The change asked for breaks a domain rule.
    #[error("{0}")]
    Invalid(tenure_domain::Invalid),
    /// A row changed since the caller read it.
    #[error("the record was changed by someone else (now at version {current})")]
    VersionMismatch { current: i64 },
    /// The database cannot be reached; retry later.
    #[error("database unavailable: {0}")]
    Unavailable(#[source] sqlx::Error),
    /// Bad store configuration (an unsupported URL, ...).
    #[error("{0}")]
    Config(String),
    /// A stored value could not be read back.
    #[error("corrupt stored value in {column}: {message}")]
    Corrupt {
        column: &'static str,
        message: String,
    },
    #[error("migration failed: {0}")]
    Migrate(#[source] sqlx::migrate::MigrateError),
    #[error("database error: {0}")]
    Other(#[source] sqlx::Error),
}

pub type StoreResult<T> = Result<T, StoreError>;

impl From<sqlx::Error> for StoreError {
    fn from(e: sqlx::Error) -> Self {
        match &e {
            sqlx::Error::PoolTimedOut
            | sqlx::Error::PoolClosed
            | sqlx::Error::Io(_)
            | sqlx::Error::Tls(_) => StoreError::Unavailable(e),
            sqlx::Error::Database(db) => {
                if db.is_unique_violation() {
                    let constraint = db
                        .constraint()
                        .map(str::to_owned)
                        .unwrap_or_else(|| unique_column_from_message(db.message()));
                    return StoreError::Conflict { constraint };
                }
                // PostgreSQL: the server is shutting down or refuses connections
                // (class 57: operator intervention; 08: connection exception; 53: resources;
                // 55000: the database does not accept connections now; 3D000: it is gone).
                let code = db.code().unwrap_or_default();
                if code.starts_with("57")
                    || code.starts_with("08")
                    || code.starts_with("53")
                    || code == "55000"
                    || code == "3D000"
                {
                    return StoreError::Unavailable(e);
                }
                // PostgreSQL: a deadlock or serialisation failure; the client may retry.
                if code == "40001" || code == "40P01" {
                    return StoreError::Unavailable(e);
                }
                // SQLite: the database is locked or busy past the timeout.
                if matches!(code.as_ref(), "5" | "6" | "261" | "517") {
                    return StoreError::Unavailable(e);
                }
                StoreError::Other(e)
            }
            _ => StoreError::Other(e),
        }
    }
}

/// SQLite names the column, not the constraint: "UNIQUE constraint failed: customers.external_id".
fn unique_column_from_message(message: &str) -> String {
    message
        .rsplit(": ")
        .next()
        .unwrap_or(message)
        .replace('.', "_")
}

impl StoreError {
    pub(crate) fn corrupt(column: &'static str, message: impl Into<String>) -> Self {
        StoreError::Corrupt {
            column,
            message: message.into(),
        }
    }
}
