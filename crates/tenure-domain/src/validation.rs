//! Field-level validation errors, shared by every value type that parses user input.

use std::fmt;

/// One field at fault and a message a person can act on.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct FieldError {
    pub field: String,
    pub message: String,
}

impl FieldError {
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            message: message.into(),
        }
    }
}

/// Input that failed validation: every field at fault, not only the first one found.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Invalid(pub Vec<FieldError>);

impl Invalid {
    pub fn one(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self(vec![FieldError::new(field, message)])
    }
}

impl fmt::Display for Invalid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let parts: Vec<String> = self
            .0
            .iter()
            .map(|e| format!("{}: {}", e.field, e.message))
            .collect();
        f.write_str(&parts.join("; "))
    }
}

impl std::error::Error for Invalid {}

/// Collects field errors while a whole input is checked, so the caller hears about every
/// problem at once.
#[derive(Debug, Default)]
pub struct Collector {
    errors: Vec<FieldError>,
}

impl Collector {
    pub fn new() -> Self {
        Self::default()
    }

    /// Keeps the value when it parsed, records the error under `field` when it did not.
    pub fn check<T>(&mut self, field: &str, result: Result<T, String>) -> Option<T> {
        match result {
            Ok(v) => Some(v),
            Err(message) => {
                self.errors.push(FieldError::new(field, message));
                None
            }
        }
    }

    /// Like [`Collector::check`] for an optional input.
    pub fn check_opt<T, U>(
        &mut self,
        field: &str,
        value: Option<U>,
        parse: impl FnOnce(U) -> Result<T, String>,
    ) -> Option<T> {
        value.and_then(|v| self.check(field, parse(v)))
    }

    pub fn push(&mut self, field: &str, message: impl Into<String>) {
        self.errors.push(FieldError::new(field, message));
    }

    /// Whether nothing was recorded so far.
    pub fn is_clean(&self) -> bool {
        self.errors.is_empty()
    }

    /// Records every error of `other`, its fields renamed by `rename` (a CSV column for
    /// an input field, say).
    pub fn absorb(&mut self, other: Collector, rename: impl Fn(&str) -> String) {
        self.errors.extend(
            other
                .errors
                .into_iter()
                .map(|e| FieldError::new(rename(&e.field), e.message)),
        );
    }

    /// The errors recorded so far.
    pub fn into_errors(self) -> Vec<FieldError> {
        self.errors
    }

    pub fn finish(self) -> Result<(), Invalid> {
        if self.errors.is_empty() {
            Ok(())
        } else {
            Err(Invalid(self.errors))
        }
    }
}

/// What the input rules need to know beyond the input: the moment it arrived (for the
/// future-date rule and plausible birthdays) and the business's reporting currency (the
/// default for amounts given without one).
#[derive(Debug, Clone, Copy)]
pub struct InputContext<'a> {
    pub now: chrono::DateTime<chrono::Utc>,
    pub reporting_currency: &'a str,
}

impl<'a> InputContext<'a> {
    pub fn new(reporting_currency: &'a str) -> Self {
        InputContext {
            now: chrono::Utc::now(),
            reporting_currency,
        }
    }

    pub fn today(&self) -> chrono::NaiveDate {
        self.now.date_naive()
    }

    /// A currency code given or the reporting currency.
    pub fn currency(&self, c: &mut Collector, field: &str, given: Option<&str>) -> Option<String> {
        match given {
            Some(cur) => c.check(field, crate::money::parse_currency(cur)),
            None => Some(self.reporting_currency.to_owned()),
        }
    }

    /// Records an error under `field` when `at` lies in the future. A day of slack allows
    /// for clocks and time zones: a shop in UTC+14 records "today" ahead of UTC.
    pub fn not_future(&self, c: &mut Collector, field: &str, at: chrono::DateTime<chrono::Utc>) {
        if at > self.now + chrono::Duration::days(1) {
            c.push(field, "must not be in the future");
        }
    }
}

/// A positive id given by a client.
pub fn positive_id(v: i64) -> Result<i64, String> {
    if v > 0 {
        Ok(v)
    } else {
        Err("must be a positive id".into())
    }
}

/// Checks a free-text field: trimmed, within `max` characters, no control characters
/// other than newlines and tabs when `multiline`.
pub fn text(value: &str, max: usize, multiline: bool) -> Result<String, String> {
    let trimmed = value.trim();
    let count = trimmed.chars().count();
    if count > max {
        return Err(format!("must be at most {max} characters (got {count})"));
    }
    let bad = trimmed
        .chars()
        .any(|c| c.is_control() && !(multiline && (c == '\n' || c == '\t' || c == '\r')));
    if bad {
        return Err("must not contain control characters".into());
    }
    Ok(trimmed.to_owned())
}

/// Like [`text`] but also refuses an empty value.
pub fn required_text(value: &str, max: usize) -> Result<String, String> {
    let t = text(value, max, false)?;
    if t.is_empty() {
        return Err("must not be empty".into());
    }
    Ok(t)
}

/// An identifier from another system: 1–128 visible characters.
pub fn external_id(value: &str) -> Result<String, String> {
    let t = required_text(value, 128)?;
    if t.chars().any(char::is_whitespace) {
        return Err("must not contain whitespace".into());
    }
    Ok(t)
}

/// A JSON object of at most `max_keys` keys whose encoding is at most 16 KiB.
pub fn json_object(
    value: serde_json::Value,
    max_keys: usize,
) -> Result<serde_json::Map<String, serde_json::Value>, String> {
    let serde_json::Value::Object(map) = value else {
        return Err("must be a JSON object".into());
    };
    if map.len() > max_keys {
        return Err(format!("must have at most {max_keys} keys"));
    }
    if let Some(k) = map.keys().find(|k| k.is_empty() || k.chars().count() > 64) {
        return Err(format!("key {k:?} must be 1–64 characters"));
    }
    let size = serde_json::to_string(&map)
        .map(|s| s.len())
        .unwrap_or(usize::MAX);
    if size > 16 * 1024 {
        return Err("must be at most 16 KiB when encoded".into());
    }
    Ok(map)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_trims_and_counts_characters_not_bytes() {
        assert_eq!(text("  王小明 ", 3, false).as_deref(), Ok("王小明"));
        assert!(text("王小明", 2, false).is_err());
        assert!(text("a\u{7}b", 10, false).is_err());
        assert!(text("a\nb", 10, true).is_ok());
    }

    #[test]
    fn collector_reports_every_field() {
        let mut c = Collector::new();
        c.check("a", required_text("", 5));
        c.check("b", required_text("ok", 5));
        c.check("c", external_id("has space"));
        let err = c.finish().unwrap_err();
        let fields: Vec<_> = err.0.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(fields, ["a", "c"]);
    }
}
