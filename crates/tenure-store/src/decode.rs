//! Reading stored values back: enums stored as text, JSON documents.

use sqlx::Row;
use sqlx::any::AnyRow;

use crate::{StoreError, StoreResult};

/// A `text_enum!` value stored as `TEXT`.
pub(crate) fn parsed<T: std::str::FromStr<Err = String>>(
    row: &AnyRow,
    column: &'static str,
) -> StoreResult<T> {
    let text: String = row.try_get(column)?;
    text.parse()
        .map_err(|e: String| StoreError::corrupt(column, e))
}

/// A JSON document stored as `TEXT`.
pub(crate) fn json<T: serde::de::DeserializeOwned>(
    row: &AnyRow,
    column: &'static str,
) -> StoreResult<T> {
    let text: String = row.try_get(column)?;
    serde_json::from_str(&text).map_err(|e| StoreError::corrupt(column, e.to_string()))
}
