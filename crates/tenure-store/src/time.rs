//! Times are stored as microseconds since the Unix epoch, UTC, on both databases.

use chrono::{DateTime, Utc};

pub fn to_micros(t: DateTime<Utc>) -> i64 {
    t.timestamp_micros()
}

pub fn from_micros(m: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_micros(m).unwrap_or_default()
}

pub(crate) fn now_micros() -> i64 {
    Utc::now().timestamp_micros()
}
