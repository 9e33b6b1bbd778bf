//! How real spreadsheet exports write a table, read the way their users expect: the
//! encoding (checked before anything is stored), the delimiter, header names in Chinese or
//! English (or mapped by hand), dates such as `2024/3/5`, `05.03.2024` or `2024年3月5日`,
//! and amounts such as `¥1,234.50`, `1.234,50 €` or `1 234,50`.

use std::io::{Read, Seek, SeekFrom};

use chrono::{DateTime, NaiveDate, NaiveDateTime, NaiveTime, Utc};

use crate::{AppError, AppResult};

/// The character encoding of the input.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Encoding {
    /// UTF-8, with or without a byte-order mark.
    #[default]
    Utf8,
    /// GB18030 (and so GBK and GB2312), as Chinese spreadsheet programs export.
    Gb18030,
    /// Windows-1252 (a superset of Latin-1), as Western European spreadsheet programs export.
    Windows1252,
}

impl Encoding {
    pub fn name(self) -> &'static str {
        match self {
            Encoding::Utf8 => "UTF-8",
            Encoding::Gb18030 => "GB18030",
            Encoding::Windows1252 => "Windows-1252",
        }
    }

    pub(crate) fn codec(self) -> &'static encoding_rs::Encoding {
        match self {
            Encoding::Utf8 => encoding_rs::UTF_8,
            Encoding::Gb18030 => encoding_rs::GB18030,
            Encoding::Windows1252 => encoding_rs::WINDOWS_1252,
        }
    }
}

/// How day, month and year stand in a date.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DateFormat {
    /// Year first: 2024-03-05, 2024/3/5, 2024.3.5, 2024年3月5日, 20240305.
    Ymd,
    /// Day first: 05/03/2024, 5.3.2024.
    Dmy,
    /// Month first: 03/05/2024.
    Mdy,
    /// A strftime pattern such as `%d-%b-%Y` (chrono's syntax); with a time or without.
    Pattern(String),
}

impl std::str::FromStr for DateFormat {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s.trim().to_ascii_lowercase().as_str() {
            "ymd" | "iso" => Ok(DateFormat::Ymd),
            "dmy" => Ok(DateFormat::Dmy),
            "mdy" => Ok(DateFormat::Mdy),
            _ if s.contains('%') => Ok(DateFormat::Pattern(s.trim().to_owned())),
            _ => Err(format!(
                "{s:?} is not a date format: give ymd, dmy, mdy or a pattern such as %d.%m.%Y"
            )),
        }
    }
}

/// How a file writes its table, besides the columns every kind of file has.
#[derive(Debug, Clone, Default)]
pub struct Format {
    pub encoding: Encoding,
    /// The field separator; found from the header line when not given (`,`, `;` or tab).
    pub delimiter: Option<u8>,
    /// How dates are written; recognised when unambiguous when not given.
    pub dates: Option<DateFormat>,
    /// Amounts use a decimal comma (`1.234,50`); otherwise recognised where unambiguous.
    pub decimal_comma: bool,
    /// Columns named by hand: (Tenure's column, the file's header).
    pub columns: Vec<(String, String)>,
}

impl Format {
    /// Reads `--map field=Header,field=Header`.
    pub fn parse_map(s: &str) -> Result<Vec<(String, String)>, String> {
        s.split(',')
            .filter(|p| !p.trim().is_empty())
            .map(|pair| {
                let (field, header) = pair
                    .split_once('=')
                    .ok_or_else(|| format!("{pair:?} is not field=Header"))?;
                let (field, header) = (field.trim(), header.trim());
                if field.is_empty() || header.is_empty() {
                    return Err(format!("{pair:?} is not field=Header"));
                }
                Ok((field.to_owned(), header.to_owned()))
            })
            .collect()
    }
}

/// Checks that the whole input is text in `encoding` before anything is read into the
/// database, then rewinds it. A file that is not names the line and the encoding it
/// probably is.
pub fn check_encoding<R: Read + Seek>(input: &mut R, encoding: Encoding) -> AppResult<()> {
    let read_error = |e: std::io::Error| AppError::field("file", format!("could not be read: {e}"));
    let start = input.stream_position().map_err(read_error)?;
    let bad = first_malformed_line(input, encoding).map_err(read_error)?;
    if let Some(line) = bad {
        let mut hint = String::from(
            "give the file's encoding with --encoding gb18030 (Chinese spreadsheet programs) or --encoding windows-1252 (Western European ones)",
        );
        for other in [Encoding::Gb18030, Encoding::Utf8] {
            if other == encoding {
                continue;
            }
            input.seek(SeekFrom::Start(start)).map_err(read_error)?;
            if first_malformed_line(input, other)
                .map_err(read_error)?
                .is_none()
            {
                hint = format!(
                    "the file reads cleanly as {}: run again with --encoding {}",
                    other.name(),
                    other.name().to_ascii_lowercase()
                );
                break;
            }
        }
        input.seek(SeekFrom::Start(start)).map_err(read_error)?;
        return Err(AppError::field(
            "file",
            format!(
                "line {line} is not valid {}, so nothing was imported; {hint}",
                encoding.name()
            ),
        ));
    }
    input.seek(SeekFrom::Start(start)).map_err(read_error)?;
    Ok(())
}

/// The first line holding bytes that are not text in `encoding`, if any.
fn first_malformed_line<R: Read>(
    input: &mut R,
    encoding: Encoding,
) -> std::io::Result<Option<u64>> {
    let mut decoder = encoding.codec().new_decoder_with_bom_removal();
    let mut buf = vec![0u8; 64 * 1024];
    let mut out = String::with_capacity(64 * 1024 * 3);
    let mut line = 1u64;
    loop {
        let n = input.read(&mut buf)?;
        let last = n == 0;
        let mut chunk = &buf[..n];
        loop {
            out.clear();
            let (result, read) =
                decoder.decode_to_string_without_replacement(chunk, &mut out, last);
            match result {
                encoding_rs::DecoderResult::InputEmpty => {
                    line += memchr_count(&chunk[..read]);
                    break;
                }
                encoding_rs::DecoderResult::OutputFull => {
                    line += memchr_count(&chunk[..read]);
                    out.reserve(64 * 1024);
                    chunk = &chunk[read..];
                }
                encoding_rs::DecoderResult::Malformed(..) => {
                    return Ok(Some(line + memchr_count(&chunk[..read])));
                }
            }
        }
        if last {
            return Ok(None);
        }
    }
}

fn memchr_count(bytes: &[u8]) -> u64 {
    bytes.iter().filter(|&&b| b == b'\n').count() as u64
}

/// The separator a header line uses: the most frequent of `,`, `;` and tab outside quotes
/// (a comma when none is there).
pub fn detect_delimiter(header: &str) -> u8 {
    let mut counts = [0usize; 3];
    let mut quoted = false;
    for c in header.chars() {
        match c {
            '"' => quoted = !quoted,
            ',' if !quoted => counts[0] += 1,
            ';' if !quoted => counts[1] += 1,
            '\t' if !quoted => counts[2] += 1,
            _ => {}
        }
    }
    let candidates = [b',', b';', b'\t'];
    let (best, _) = counts.iter().enumerate().fold(
        (0, 0),
        |(bi, bc), (i, &c)| if c > bc { (i, c) } else { (bi, bc) },
    );
    candidates[best]
}

/// A header as compared with column names and aliases: trimmed, without a byte-order mark,
/// lower case, without spaces, underscores, hyphens or dots.
pub fn header_key(h: &str) -> String {
    h.trim()
        .trim_start_matches('\u{feff}')
        .chars()
        .filter(|c| !c.is_whitespace() && !matches!(c, '_' | '-' | '.'))
        .flat_map(char::to_lowercase)
        .collect()
}

/// Header names spreadsheets commonly give a column, in Chinese and English, by the
/// column's meaning.
pub mod aliases {
    pub const CUSTOMER_ID: &[&str] = &[
        "客户编号",
        "客户编码",
        "客户id",
        "客户号",
        "会员编号",
        "会员号",
        "会员id",
        "会员卡号",
        "顾客编号",
        "客戶編號",
        "會員編號",
        "customer id",
        "customer no",
        "customer number",
        "customer",
        "client id",
        "member id",
        "customerid",
        "kundennummer",
        "kunden-nr",
        "kundennr",
        "kunde",
        "numéro client",
        "n° client",
        "client",
        "cliente",
        "número de cliente",
        "codice cliente",
    ];
    pub const ORDER_ID: &[&str] = &[
        "订单号",
        "订单编号",
        "订单id",
        "单号",
        "交易号",
        "交易编号",
        "流水号",
        "訂單編號",
        "訂單號",
        "order id",
        "order no",
        "order number",
        "order",
        "transaction id",
        "invoice",
        "invoice number",
        "receipt",
        "bestellnummer",
        "auftragsnummer",
        "rechnungsnummer",
        "numéro de commande",
        "commande",
        "pedido",
        "número de pedido",
        "ordine",
    ];
    pub const DATE: &[&str] = &[
        "日期",
        "时间",
        "下单时间",
        "下单日期",
        "交易日期",
        "交易时间",
        "购买日期",
        "消费日期",
        "消费时间",
        "订单日期",
        "支付时间",
        "付款时间",
        "日期時間",
        "交易日期時間",
        "date",
        "time",
        "datetime",
        "order date",
        "purchase date",
        "transaction date",
        "date time",
        "timestamp",
        "datum",
        "bestelldatum",
        "kaufdatum",
        "date de commande",
        "fecha",
        "data",
    ];
    pub const AMOUNT: &[&str] = &[
        "金额",
        "实付金额",
        "订单金额",
        "消费金额",
        "支付金额",
        "付款金额",
        "总金额",
        "合计",
        "金額",
        "amount",
        "total",
        "sales",
        "value",
        "revenue",
        "order total",
        "net amount",
        "betrag",
        "umsatz",
        "summe",
        "gesamt",
        "montant",
        "importe",
        "monto",
        "importo",
        "totale",
    ];
    pub const NAME: &[&str] = &[
        "姓名",
        "名字",
        "客户名称",
        "客户姓名",
        "会员姓名",
        "名称",
        "顾客姓名",
        "客戶名稱",
        "name",
        "full name",
        "customer name",
        "contact name",
        "nom",
        "nombre",
        "nome",
    ];
    pub const EMAIL: &[&str] = &[
        "邮箱",
        "电子邮件",
        "电子邮箱",
        "邮件",
        "電子郵件",
        "email",
        "e-mail",
        "email address",
        "mail",
    ];
    pub const PHONE: &[&str] = &[
        "电话",
        "手机",
        "手机号",
        "手机号码",
        "联系电话",
        "电话号码",
        "電話",
        "手機",
        "phone",
        "mobile",
        "telephone",
        "tel",
        "phone number",
        "mobile phone",
        "telefon",
        "handy",
        "téléphone",
        "teléfono",
        "telefono",
    ];
    pub const BIRTHDAY: &[&str] = &[
        "生日",
        "出生日期",
        "birthday",
        "date of birth",
        "dob",
        "birth date",
    ];
    pub const REGION: &[&str] = &[
        "地区", "区域", "城市", "省份", "地區", "region", "city", "area",
    ];
    pub const CURRENCY: &[&str] = &[
        "币种", "货币", "幣種", "currency", "währung", "devise", "moneda", "valuta",
    ];
    pub const CHANNEL: &[&str] = &["渠道", "销售渠道", "通路", "channel", "sales channel"];
    pub const STATUS: &[&str] = &["状态", "订单状态", "狀態", "status", "order status"];
    pub const QUANTITY: &[&str] = &["数量", "數量", "quantity", "qty"];
    pub const UNIT_PRICE: &[&str] = &["单价", "單價", "unit price", "price each"];
    pub const PRICE: &[&str] = &["价格", "售价", "單價", "价钱", "price"];
    pub const PRODUCT_ID: &[&str] = &[
        "商品编号",
        "产品编号",
        "商品id",
        "sku",
        "商品編號",
        "product id",
        "product code",
        "item id",
    ];
    pub const DESCRIPTION: &[&str] = &["描述", "商品名称", "品名", "description", "item"];
    pub const CATEGORY: &[&str] = &["类别", "分类", "品类", "類別", "category"];
    pub const TAGS: &[&str] = &["标签", "標籤", "tags"];
}

/// An amount as a spreadsheet writes it, in the plain form `12.50`: currency symbols and
/// codes, spaces and apostrophes between digit groups and thousands separators removed,
/// the decimal separator found (the last of `.` and `,` when both are there; a lone comma
/// followed by other than three digits, or any comma with `decimal_comma`). An ISO code
/// beside the number must be the row's currency.
pub fn plain_amount(s: &str, currency: &str, decimal_comma: bool) -> Result<String, String> {
    let t = s.trim();
    let bad = || format!("{s:?} is not an amount such as 1234.50, 1,234.50 or ¥1,234.50");
    // Accounting negatives: (12.50).
    let (t, paren_negative) = match t.strip_prefix('(').and_then(|r| r.strip_suffix(')')) {
        Some(inner) => (inner.trim(), true),
        None => (t, false),
    };
    let is_marker = |c: char| {
        c.is_alphabetic()
            || matches!(
                c,
                '¥' | '￥' | '$' | '€' | '£' | '₩' | '₹' | '฿' | '₫' | '₱'
            )
            || c == '元'
    };
    let num_start = t
        .find(|c: char| !is_marker(c) && !c.is_whitespace())
        .ok_or_else(bad)?;
    let num_end = t
        .rfind(|c: char| !is_marker(c) && !c.is_whitespace())
        .map(|i| i + t[i..].chars().next().map_or(1, char::len_utf8))
        .ok_or_else(bad)?;
    for marker in [&t[..num_start], &t[num_end..]] {
        let marker: String = marker.chars().filter(|c| !c.is_whitespace()).collect();
        let letters: String = marker.chars().filter(|c| c.is_ascii_alphabetic()).collect();
        let symbol = marker.chars().count() == 1 && !marker.chars().all(char::is_alphanumeric);
        let dollar = letters.len() == 2 && marker == format!("{letters}$");
        let code = letters.len() == 3 && marker == letters;
        if !(marker.is_empty() || symbol || marker == "元" || dollar || code) {
            return Err(bad());
        }
        if code {
            let code = match letters.to_ascii_uppercase().as_str() {
                "RMB" => "CNY".to_owned(),
                other => other.to_owned(),
            };
            if !code.eq_ignore_ascii_case(currency) {
                return Err(format!(
                    "{s:?} is in {code}, but the row's currency is {currency}"
                ));
            }
        }
    }
    let number: String = t[num_start..num_end]
        .chars()
        .filter(|c| !c.is_whitespace() && !matches!(c, '\'' | '’'))
        .collect();
    if number.is_empty()
        || !number
            .chars()
            .all(|c| c.is_ascii_digit() || matches!(c, '.' | ',' | '-' | '+'))
    {
        return Err(bad());
    }
    let last_dot = number.rfind('.');
    let last_comma = number.rfind(',');
    let decimal = if decimal_comma {
        Some(',')
    } else {
        match (last_dot, last_comma) {
            (Some(d), Some(c)) => Some(if c > d { ',' } else { '.' }),
            (None, Some(c)) => {
                let after = number.len() - c - 1;
                (number.matches(',').count() == 1 && after != 3).then_some(',')
            }
            (Some(_), None) => (number.matches('.').count() == 1).then_some('.'),
            (None, None) => None,
        }
    };
    // Digit groups between thousands separators have three digits.
    let (int, frac) = match decimal.and_then(|d| number.rfind(d)) {
        Some(i) => (&number[..i], Some(&number[i + 1..])),
        None => (&number[..], None),
    };
    let groups: Vec<&str> = int.split(['.', ',']).collect();
    if groups.len() > 1
        && (groups[0].trim_start_matches(['-', '+']).len() > 3
            || groups[1..].iter().any(|g| g.len() != 3))
    {
        return Err(bad());
    }
    if frac.is_some_and(|f| f.contains(['.', ','])) {
        return Err(bad());
    }
    let mut plain = String::with_capacity(number.len() + 1);
    if paren_negative {
        plain.push('-');
    }
    plain.push_str(&groups.concat());
    if let Some(f) = frac {
        plain.push('.');
        plain.push_str(f);
    }
    Ok(plain)
}

/// A date or time as a spreadsheet writes it, in UTC: RFC 3339, or a date (with or
/// without a time of day after it) written year first, day first or month first. Without a
/// format, day-first and month-first dates are read only when they cannot be the other
/// (a day above 12), and dotted dates (`05.03.2024`) are day first.
pub fn parse_time(s: &str, format: Option<&DateFormat>) -> Result<DateTime<Utc>, String> {
    let s = s.trim();
    if let Ok(t) = DateTime::parse_from_rfc3339(s) {
        return Ok(t.with_timezone(&Utc));
    }
    if let Some(DateFormat::Pattern(p)) = format {
        return NaiveDateTime::parse_from_str(s, p)
            .or_else(|_| NaiveDate::parse_from_str(s, p).map(|d| d.and_time(NaiveTime::MIN)))
            .map(|t| t.and_utc())
            .map_err(|e| format!("{s:?} does not match the date format {p:?}: {e}"));
    }
    let (date, time) = split_time(s);
    let time = match time {
        None => NaiveTime::MIN,
        Some(t) => parse_time_of_day(t)
            .ok_or_else(|| format!("{s:?} has a time of day that cannot be read"))?,
    };
    let date = parse_date(date, format)?;
    Ok(date.and_time(time).and_utc())
}

/// The date and the time of day of `2024-03-05 14:30`, `2024-03-05T14:30:00`, `5.3.2024 9:05`.
fn split_time(s: &str) -> (&str, Option<&str>) {
    if let Some((d, t)) = s.split_once('T')
        && t.contains(':')
    {
        return (d, Some(t));
    }
    match s.split_once(char::is_whitespace) {
        Some((d, t)) if t.contains(':') => (d.trim(), Some(t.trim())),
        _ => (s, None),
    }
}

fn parse_time_of_day(t: &str) -> Option<NaiveTime> {
    let t = t.trim_end_matches('Z');
    ["%H:%M:%S%.f", "%H:%M:%S", "%H:%M"]
        .iter()
        .find_map(|f| NaiveTime::parse_from_str(t, f).ok())
}

/// A calendar date in any of the usual orders.
pub fn parse_date(s: &str, format: Option<&DateFormat>) -> Result<NaiveDate, String> {
    let unreadable = || {
        format!(
            "{s:?} is not a date such as 2024-03-05, 2024/3/5, 05.03.2024 or 2024年3月5日 (see --date-format)"
        )
    };
    let t = s.trim().trim_end_matches('日');
    if t.len() == 8 && t.bytes().all(|b| b.is_ascii_digit()) {
        return ymd(&t[..4], &t[4..6], &t[6..]).ok_or_else(unreadable);
    }
    let sep = t
        .chars()
        .find(|c| matches!(c, '-' | '/' | '.' | '年' | '月'))
        .ok_or_else(unreadable)?;
    let parts: Vec<&str> = t
        .split(['-', '/', '.', '年', '月'])
        .map(str::trim)
        .collect();
    let [a, b, c] = parts[..] else {
        return Err(unreadable());
    };
    if [a, b, c]
        .iter()
        .any(|p| p.is_empty() || !p.bytes().all(|b| b.is_ascii_digit()))
    {
        return Err(unreadable());
    }
    let order = match format {
        Some(f) => f.clone(),
        None if a.len() == 4 => DateFormat::Ymd,
        None if c.len() == 4 && sep == '.' => DateFormat::Dmy,
        None if c.len() == 4 => {
            let (x, y) = (a.parse::<u32>().unwrap_or(0), b.parse::<u32>().unwrap_or(0));
            if x > 12 {
                DateFormat::Dmy
            } else if y > 12 || x == y {
                DateFormat::Mdy
            } else {
                return Err(format!(
                    "{s:?} could be day/month or month/day; give --date-format dmy or --date-format mdy"
                ));
            }
        }
        None => return Err(unreadable()),
    };
    let date = match order {
        DateFormat::Ymd => ymd(a, b, c),
        DateFormat::Dmy => ymd(c, b, a),
        DateFormat::Mdy => ymd(c, a, b),
        DateFormat::Pattern(_) => None,
    };
    date.ok_or_else(|| format!("{s:?} is not a date in the calendar ({order:?} order)"))
}

fn ymd(y: &str, m: &str, d: &str) -> Option<NaiveDate> {
    if y.len() != 4 {
        return None;
    }
    NaiveDate::from_ymd_opt(y.parse().ok()?, m.parse().ok()?, d.parse().ok()?)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn day(y: i32, m: u32, d: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, d).unwrap()
    }

    #[test]
    fn dates_in_the_usual_spellings() {
        for s in [
            "2024-03-05",
            "2024/3/5",
            "2024.3.5",
            "2024年3月5日",
            "20240305",
            "05.03.2024",
            "5.3.2024",
        ] {
            assert_eq!(parse_date(s, None), Ok(day(2024, 3, 5)), "{s}");
        }
        assert_eq!(parse_date("25/03/2024", None), Ok(day(2024, 3, 25)));
        assert_eq!(parse_date("03/25/2024", None), Ok(day(2024, 3, 25)));
        assert_eq!(parse_date("05/05/2024", None), Ok(day(2024, 5, 5)));
        let ambiguous = parse_date("05/03/2024", None).unwrap_err();
        assert!(ambiguous.contains("--date-format"), "{ambiguous}");
        assert_eq!(
            parse_date("05/03/2024", Some(&DateFormat::Dmy)),
            Ok(day(2024, 3, 5))
        );
        assert_eq!(
            parse_date("05/03/2024", Some(&DateFormat::Mdy)),
            Ok(day(2024, 5, 3))
        );
        assert!(parse_date("2024-02-30", None).is_err());
        assert!(parse_date("yesterday", None).is_err());
        assert!(parse_date("24-3-5", None).is_err());
    }

    #[test]
    fn times_with_the_date() {
        let t = |s: &str| parse_time(s, None).unwrap().to_rfc3339();
        assert_eq!(t("2024/3/5 14:30"), "2024-03-05T14:30:00+00:00");
        assert_eq!(t("05.03.2024 09:05:07"), "2024-03-05T09:05:07+00:00");
        assert_eq!(t("2024-03-05T14:30:00"), "2024-03-05T14:30:00+00:00");
        assert_eq!(t("2024-03-05T14:30:00+08:00"), "2024-03-05T06:30:00+00:00");
        let pattern = DateFormat::Pattern("%d-%b-%Y".into());
        assert_eq!(
            parse_time("05-Mar-2024", Some(&pattern))
                .unwrap()
                .to_rfc3339(),
            "2024-03-05T00:00:00+00:00"
        );
        assert!(parse_time("2024/3/5 25:00", None).is_err());
    }

    #[test]
    fn amounts_in_the_usual_spellings() {
        let a = |s: &str| plain_amount(s, "CNY", false).unwrap();
        assert_eq!(a("¥1,234.50"), "1234.50");
        assert_eq!(a("￥1,234.50"), "1234.50");
        assert_eq!(a("1,234.50"), "1234.50");
        assert_eq!(a("1 234,50"), "1234.50");
        assert_eq!(a("1\u{a0}234,50"), "1234.50");
        assert_eq!(a("1.234,50"), "1234.50");
        assert_eq!(a("1'234.50"), "1234.50");
        assert_eq!(a("12,5"), "12.5");
        assert_eq!(a("1,234"), "1234");
        assert_eq!(a("1,234,567"), "1234567");
        assert_eq!(a("1234.50 元"), "1234.50");
        assert_eq!(a("RMB 88"), "88");
        assert_eq!(a("(12.50)"), "-12.50");
        assert_eq!(a("-3"), "-3");
        assert_eq!(plain_amount("1.234", "EUR", true).unwrap(), "1234");
        assert_eq!(plain_amount("1.234,5", "EUR", true).unwrap(), "1234.5");
        assert_eq!(plain_amount("12,50 €", "EUR", false).unwrap(), "12.50");
        let wrong = plain_amount("12.50 EUR", "USD", false).unwrap_err();
        assert!(wrong.contains("EUR") && wrong.contains("USD"), "{wrong}");
        assert!(plain_amount("twelve", "USD", false).is_err());
        assert!(plain_amount("¥", "CNY", false).is_err());
        assert!(plain_amount("12.5.5", "CNY", false).is_err());
        assert!(plain_amount("12x", "CNY", false).is_err());
        assert!(plain_amount("1,23", "CNY", true).is_ok());
        assert!(plain_amount("12,34,5", "CNY", false).is_err());
        assert!(plain_amount("1.234.567,8", "EUR", false).unwrap() == "1234567.8");
    }

    #[test]
    fn delimiters_are_found_in_the_header() {
        assert_eq!(detect_delimiter("a,b,c"), b',');
        assert_eq!(detect_delimiter("客户编号;日期;金额"), b';');
        assert_eq!(detect_delimiter("a\tb\tc"), b'\t');
        assert_eq!(detect_delimiter("\"a;b\",c"), b',');
        assert_eq!(detect_delimiter("single"), b',');
    }

    #[test]
    fn headers_compare_loosely() {
        assert_eq!(header_key(" Customer ID "), "customerid");
        assert_eq!(
            header_key("\u{feff}customer_external_id"),
            "customerexternalid"
        );
        assert_eq!(header_key("客户编号"), "客户编号");
    }

    #[test]
    fn a_wrong_encoding_names_the_line_and_the_likely_one() {
        let (gb, _, _) = encoding_rs::GB18030.encode("id,name\nC1,王小明\n");
        let mut input = std::io::Cursor::new(gb.into_owned());
        let err = check_encoding(&mut input, Encoding::Utf8).unwrap_err();
        let msg = err.to_string();
        assert!(msg.contains("line 2"), "{msg}");
        assert!(msg.contains("--encoding gb18030"), "{msg}");
        assert!(check_encoding(&mut input, Encoding::Gb18030).is_ok());
        assert_eq!(input.position(), 0, "the input is rewound");
        let mut fine = std::io::Cursor::new("id,name\nC1,王小明\n".as_bytes().to_vec());
        assert!(check_encoding(&mut fine, Encoding::Utf8).is_ok());
    }
}
