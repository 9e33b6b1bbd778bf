//! The store's errors: few, and each one something a caller acts on differently. Both
//! drivers — sqlx for every query, rusqlite for the SQLite import connection — map their
//! errors here, through the same rules: a busy or unreachable database is `Unavailable`,
//! a uniqueness violation is a `Conflict` named `table_column` whichever database said so,
//! an arithmetic overflow is `OutOfRange`.

/// What can go wrong in the store.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The row asked for does not exist.
    #[error("{what} not found")]
    NotFound { what: &'static str },
    /// A uniqueness rule would be broken, e.g. a second customer with the same external id.
    /// `constraint` is `table_column[_column…]` on both databases.
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
    /// A sum or product would leave the 64-bit range the database stores.
    #[error("{0}")]
    OutOfRange(String),
    /// The database cannot be reached or is busy; retry later.
    #[error("database unavailable: {0}")]
    Unavailable(String),
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
    Database(String),
}

pub type StoreResult<T> = Result<T, StoreError>;

/// What a database error means, whichever driver reported it.
fn classify(
    code: &str,
    message: &str,
    constraint: Option<&str>,
    unique: bool,
) -> Option<StoreError> {
    if unique {
        let constraint = match constraint {
            Some(c) => normalise_constraint(c),
            None => unique_column_from_message(message),
        };
        return Some(StoreError::Conflict { constraint });
    }
    // PostgreSQL: the server is shutting down or refuses connections (class 57: operator
    // intervention; 08: connection exception; 53: resources; 55000: the database does not
    // accept connections now; 3D000: it is gone), or a deadlock or serialisation failure
    // the client may retry (40001, 40P01).
    // SQLite: the database is busy or locked past the timeout (5, 6 and their extended
    // codes 261, 517, 262).
    let unavailable = code.starts_with("57")
        || code.starts_with("08")
        || code.starts_with("53")
        || matches!(code, "55000" | "3D000" | "40001" | "40P01")
        || matches!(code, "5" | "6" | "261" | "262" | "517");
    if unavailable {
        return Some(StoreError::Unavailable(message.to_owned()));
    }
    // A points balance the change would take below zero (the ledger's `CHECK (balance >=
    // 0)`, PostgreSQL 23514, SQLite 275): the records' state refuses it, a conflict rather
    // than a failure — undoing a merge whose points were spent since, say.
    if matches!(code, "23514" | "275") && message.contains("balance") {
        return Some(StoreError::Refused(
            "the change would take a points balance below zero (points it would move back were \
             spent since)"
                .into(),
        ));
    }
    // PostgreSQL 22003 (numeric value out of range); SQLite says "integer overflow".
    if code == "22003" || message.contains("integer overflow") {
        return Some(StoreError::OutOfRange(
            "a sum would exceed the largest amount Tenure stores (about 9.2 × 10^18 minor units)"
                .into(),
        ));
    }
    None
}

impl From<sqlx::Error> for StoreError {
    fn from(e: sqlx::Error) -> Self {
        match &e {
            sqlx::Error::PoolTimedOut
            | sqlx::Error::PoolClosed
            | sqlx::Error::Io(_)
            | sqlx::Error::Tls(_) => StoreError::Unavailable(e.to_string()),
            sqlx::Error::Database(db) => {
                let code = db.code().unwrap_or_default();
                classify(
                    &code,
                    db.message(),
                    db.constraint(),
                    db.is_unique_violation(),
                )
                .unwrap_or_else(|| StoreError::Database(e.to_string()))
            }
            _ => StoreError::Database(e.to_string()),
        }
    }
}

impl From<rusqlite::Error> for StoreError {
    fn from(e: rusqlite::Error) -> Self {
        if let rusqlite::Error::SqliteFailure(failure, message) = &e {
            let message = message.clone().unwrap_or_else(|| e.to_string());
            let unique = matches!(
                failure.extended_code,
                rusqlite::ffi::SQLITE_CONSTRAINT_UNIQUE
                    | rusqlite::ffi::SQLITE_CONSTRAINT_PRIMARYKEY
            );
            if let Some(mapped) =
                classify(&failure.extended_code.to_string(), &message, None, unique).or_else(|| {
                    classify(
                        &(failure.extended_code & 0xff).to_string(),
                        &message,
                        None,
                        false,
                    )
                })
            {
                return mapped;
            }
        }
        StoreError::Database(e.to_string())
    }
}

/// PostgreSQL names unique constraints `table_column_key`; drop the suffix so a conflict
/// reads the same as SQLite's.
fn normalise_constraint(name: &str) -> String {
    name.strip_suffix("_key").unwrap_or(name).to_owned()
}

/// SQLite names the columns, not the constraint: "UNIQUE constraint failed:
/// order_lines.order_id, order_lines.line_no" → `order_lines_order_id_line_no`.
fn unique_column_from_message(message: &str) -> String {
    let cols = message.rsplit(": ").next().unwrap_or(message);
    let mut table = None;
    let mut parts = Vec::new();
    for c in cols.split(',').map(str::trim) {
        match c.split_once('.') {
            Some((t, col)) => {
                table.get_or_insert(t);
                parts.push(col);
            }
            None => parts.push(c),
        }
    }
    let mut out = table.map(|t| vec![t]).unwrap_or_default();
    out.extend(parts);
    out.join("_")
}

impl StoreError {
    pub(crate) fn corrupt(column: &'static str, message: impl Into<String>) -> Self {
        StoreError::Corrupt {
            column,
            message: message.into(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn conflicts_are_named_alike_on_both_databases() {
        assert_eq!(
            unique_column_from_message("UNIQUE constraint failed: customers.external_id"),
            "customers_external_id"
        );
        assert_eq!(
            unique_column_from_message(
                "UNIQUE constraint failed: order_lines.order_id, order_lines.line_no"
            ),
            "order_lines_order_id_line_no"
        );
        assert_eq!(
            normalise_constraint("customers_external_id_key"),
            "customers_external_id"
        );
        assert_eq!(
            normalise_constraint("order_lines_order_id_line_no_key"),
            "order_lines_order_id_line_no"
        );
    }

    #[test]
    fn busy_is_unavailable_on_both_drivers() {
        assert!(matches!(
            classify("5", "database is locked", None, false),
            Some(StoreError::Unavailable(_))
        ));
        assert!(matches!(
            classify("40P01", "deadlock detected", None, false),
            Some(StoreError::Unavailable(_))
        ));
        let busy = rusqlite::Error::SqliteFailure(
            rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_BUSY),
            Some("database is locked".into()),
        );
        assert!(matches!(StoreError::from(busy), StoreError::Unavailable(_)));
        let unique = rusqlite::Error::SqliteFailure(
            rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_CONSTRAINT_UNIQUE),
            Some("UNIQUE constraint failed: customers.external_id".into()),
        );
        assert!(matches!(
            StoreError::from(unique),
            StoreError::Conflict { constraint } if constraint == "customers_external_id"
        ));
    }

    #[test]
    fn overflow_is_out_of_range() {
        assert!(matches!(
            classify("1", "integer overflow", None, false),
            Some(StoreError::OutOfRange(_))
        ));
        assert!(matches!(
            classify("22003", "bigint out of range", None, false),
            Some(StoreError::OutOfRange(_))
        ));
    }
}
