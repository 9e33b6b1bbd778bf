//! The application's errors: what a use case can fail with, one kind per different thing
//! a caller does about it. Every interface maps these once (the API to problem+json, the
//! command line to a message).

use tenure_domain::{FieldError, Invalid};
use tenure_store::StoreError;

#[derive(Debug, thiserror::Error)]
pub enum AppError {
    /// The input breaks a rule; every field at fault is named.
    #[error("{0}")]
    Invalid(Invalid),
    /// A parameter of the request itself (a page size, a cursor, a filter bound) is
    /// unusable, as opposed to the record it carries.
    #[error("{0}")]
    BadParameter(Invalid),
    #[error("{0}")]
    NotFound(String),
    /// The change conflicts with stored records (a second customer with the same external
    /// id, undoing a merge twice, ...).
    #[error("{0}")]
    Conflict(String),
    /// The record changed since the caller read it.
    #[error("the record was changed since you read it; it is now at version {current}")]
    PreconditionFailed { current: i64 },
    /// The actor's role may not do this.
    #[error("{0}")]
    Forbidden(String),
    /// Too many failed sign-ins; the next try is accepted after this many seconds.
    #[error("too many failed sign-ins; try again in {retry_after_secs} seconds")]
    TooManyAttempts { retry_after_secs: u64 },
    /// The database cannot be reached or is busy; the caller may retry.
    #[error("the database is unavailable: {0}")]
    Unavailable(String),
    /// Something that should not happen; the message is for the log, not for clients.
    #[error("internal error: {0}")]
    Internal(String),
}

pub type AppResult<T> = Result<T, AppError>;

impl AppError {
    pub fn field(field: &str, message: impl Into<String>) -> Self {
        AppError::Invalid(Invalid::one(field, message))
    }

    pub fn parameter(field: &str, message: impl Into<String>) -> Self {
        AppError::BadParameter(Invalid::one(field, message))
    }

    /// The fields at fault, when the input was.
    pub fn field_errors(&self) -> &[FieldError] {
        match self {
            AppError::Invalid(i) | AppError::BadParameter(i) => &i.0,
            _ => &[],
        }
    }
}

impl From<Invalid> for AppError {
    fn from(e: Invalid) -> Self {
        AppError::Invalid(e)
    }
}

impl From<StoreError> for AppError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::NotFound { what } => AppError::NotFound(format!("{what} not found")),
            StoreError::Conflict { constraint } => {
                AppError::Conflict(conflict_message(&constraint))
            }
            StoreError::Refused(reason) => AppError::Conflict(reason),
            StoreError::BadReference { field, message } => AppError::field(field, message),
            StoreError::Invalid(invalid) => AppError::Invalid(invalid),
            StoreError::VersionMismatch { current } => AppError::PreconditionFailed { current },
            StoreError::OutOfRange(message) => AppError::field("total_minor", message),
            StoreError::Unavailable(message) => AppError::Unavailable(message),
            other => AppError::Internal(other.to_string()),
        }
    }
}

/// Names the field a uniqueness conflict is about (`table_column`, the same on both
/// databases).
fn conflict_message(constraint: &str) -> String {
    if constraint.ends_with("external_id") {
        "a record with this external_id already exists".into()
    } else if constraint.ends_with("email") {
        "a record with this email already exists".into()
    } else if constraint.ends_with("name") {
        "a record with this name already exists".into()
    } else {
        format!("the record conflicts with an existing one ({constraint})")
    }
}
