//! Times are stored as microseconds since the Unix epoch, UTC, on both databases.

use chrono::{DateTime, Utc};
use sqlx::Row;
use sqlx::any::AnyRow;

use crate::{StoreError, StoreResult};

pub fn to_micros(t: DateTime<Utc>) -> i64 {
    t.timestamp_micros()
}

/// A stored time; a value outside chrono's range is reported as corrupt, never read as
/// some other time.
pub fn from_micros(m: i64) -> StoreResult<DateTime<Utc>> {
    DateTime::from_timestamp_micros(m)
        .ok_or_else(|| StoreError::corrupt("time", format!("{m} is not a time in microseconds")))
}

/// The time in `column` of `row`.
pub(crate) fn time(row: &AnyRow, column: &'static str) -> StoreResult<DateTime<Utc>> {
    let m: i64 = row.try_get(column)?;
    DateTime::from_timestamp_micros(m)
        .ok_or_else(|| StoreError::corrupt(column, format!("{m} is not a time in microseconds")))
}

/// The optional time in `column` of `row`.
pub(crate) fn opt_time(row: &AnyRow, column: &'static str) -> StoreResult<Option<DateTime<Utc>>> {
    let m: Option<i64> = row.try_get(column)?;
    m.map(|m| {
        DateTime::from_timestamp_micros(m).ok_or_else(|| {
            StoreError::corrupt(column, format!("{m} is not a time in microseconds"))
        })
    })
    .transpose()
}

pub(crate) fn now_micros() -> i64 {
    Utc::now().timestamp_micros()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_impossible_time_is_corrupt_not_the_epoch() {
        assert!(from_micros(i64::MAX).is_err());
        assert_eq!(from_micros(0).unwrap().timestamp(), 0);
    }
}
