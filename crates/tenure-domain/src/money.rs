//! Money: an integer number of minor units with an ISO 4217 currency. Never a float.

use std::str::FromStr;

/// The largest amount of money accepted anywhere, in minor units (a trillion major
/// units). Every order, line and price is capped by it, so that sums over a customer's
/// history stay far from the 64-bit limit.
pub const AMOUNT_MAX: i64 = 100_000_000_000_000;

/// The largest quantity on an order line.
pub const QUANTITY_MAX: i64 = 1_000_000;

/// An amount in minor units within ±[`AMOUNT_MAX`]; negative amounts (discount lines)
/// are allowed.
pub fn check_amount(v: i64) -> Result<i64, String> {
    if (-AMOUNT_MAX..=AMOUNT_MAX).contains(&v) {
        Ok(v)
    } else {
        Err(format!(
            "is out of range: at most {} minor units either way",
            AMOUNT_MAX
        ))
    }
}

/// An amount in minor units between 0 and [`AMOUNT_MAX`] (an order total, a price).
pub fn check_total(v: i64) -> Result<i64, String> {
    if v < 0 {
        Err("must not be negative (record a refund as an order with status refunded)".into())
    } else {
        check_amount(v)
    }
}

/// A line quantity between 1 and [`QUANTITY_MAX`].
pub fn check_quantity(q: i64) -> Result<i64, String> {
    if (1..=QUANTITY_MAX).contains(&q) {
        Ok(q)
    } else {
        Err(format!("must be between 1 and {QUANTITY_MAX}"))
    }
}

/// A line's total: quantity × unit price, within the amount cap.
pub fn line_total(quantity: i64, unit_price_minor: i64) -> Result<i64, String> {
    quantity
        .checked_mul(unit_price_minor)
        .ok_or_else(|| "quantity × unit price is out of range".to_owned())
        .and_then(check_amount)
}

/// A checked ISO 4217 currency code such as `USD`, `CNY` or `JPY`.
pub fn parse_currency(s: &str) -> Result<String, String> {
    let code = s.trim().to_ascii_uppercase();
    iso_currency::Currency::from_code(&code)
        .map(|c| c.code().to_owned())
        .ok_or_else(|| format!("{s:?} is not an ISO 4217 currency code"))
}

/// How many decimal places the currency's minor unit has (2 for USD, 0 for JPY).
pub fn minor_exponent(currency: &str) -> u32 {
    iso_currency::Currency::from_code(currency)
        .and_then(|c| c.exponent())
        .map(u32::from)
        .unwrap_or(2)
}

/// Parses a decimal amount ("12.5", "-3", "1999.99") into minor units of `currency`,
/// refusing more decimals than the currency has.
pub fn parse_amount(s: &str, currency: &str) -> Result<i64, String> {
    let t = s.trim();
    let exp = minor_exponent(currency);
    let (neg, digits) = match t.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, t.strip_prefix('+').unwrap_or(t)),
    };
    let (int, frac) = digits.split_once('.').unwrap_or((digits, ""));
    let bad = || format!("{s:?} is not an amount such as 12.50");
    if int.is_empty() && frac.is_empty()
        || !int.chars().all(|c| c.is_ascii_digit())
        || !frac.chars().all(|c| c.is_ascii_digit())
    {
        return Err(bad());
    }
    let frac_trimmed = frac.trim_end_matches('0');
    if frac_trimmed.len() > exp as usize {
        return Err(format!(
            "{s:?} has more decimals than {currency} allows ({exp})"
        ));
    }
    let int_val = if int.is_empty() {
        0
    } else {
        i64::from_str(int).map_err(|_| bad())?
    };
    let mut frac_val: i64 = 0;
    for i in 0..exp as usize {
        let d = frac_trimmed
            .as_bytes()
            .get(i)
            .map_or(0, |b| i64::from(b - b'0'));
        frac_val = frac_val * 10 + d;
    }
    let scale = 10_i64.pow(exp);
    let v = int_val
        .checked_mul(scale)
        .and_then(|v| v.checked_add(frac_val))
        .ok_or_else(|| format!("{s:?} is too large"))?;
    Ok(if neg { -v } else { v })
}

/// Formats minor units as a decimal string in major units ("12.50").
pub fn format_minor(minor: i64, currency: &str) -> String {
    let exp = minor_exponent(currency);
    if exp == 0 {
        return minor.to_string();
    }
    let scale = 10_i64.pow(exp);
    let sign = if minor < 0 { "-" } else { "" };
    let abs = minor.unsigned_abs();
    format!(
        "{sign}{}.{:0width$}",
        abs / scale as u64,
        abs % scale as u64,
        width = exp as usize
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn amounts_parse_into_minor_units_of_their_currency() {
        assert_eq!(parse_amount("12.5", "USD"), Ok(1250));
        assert_eq!(parse_amount("0.01", "USD"), Ok(1));
        assert_eq!(parse_amount("-3", "CNY"), Ok(-300));
        assert_eq!(parse_amount("1200", "JPY"), Ok(1200));
        assert!(parse_amount("12.5", "JPY").is_err());
        assert!(parse_amount("1.234", "USD").is_err());
        assert!(parse_amount("abc", "USD").is_err());
        assert!(parse_amount("", "USD").is_err());
        assert!(parse_amount("99999999999999999999", "USD").is_err());
    }

    #[test]
    fn minor_units_format_back() {
        assert_eq!(format_minor(1250, "USD"), "12.50");
        assert_eq!(format_minor(-5, "EUR"), "-0.05");
        assert_eq!(format_minor(1200, "JPY"), "1200");
    }

    #[test]
    fn amounts_are_capped_without_wrapping() {
        assert!(check_amount(i64::MIN).is_err());
        assert!(check_amount(i64::MAX).is_err());
        assert!(check_amount(-AMOUNT_MAX).is_ok());
        assert!(check_total(-1).is_err());
        assert!(check_total(AMOUNT_MAX + 1).is_err());
        assert_eq!(line_total(3, 250), Ok(750));
        assert!(line_total(QUANTITY_MAX, AMOUNT_MAX).is_err());
        assert!(line_total(i64::MAX, 2).is_err());
        assert!(check_quantity(0).is_err());
    }

    #[test]
    fn currencies_are_iso_codes() {
        assert_eq!(parse_currency("cny").as_deref(), Ok("CNY"));
        assert!(parse_currency("XXQ").is_err());
    }
}
