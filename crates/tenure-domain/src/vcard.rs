//! vCard (RFC 6350, and the 2.1/3.0 dialects phones and address books still write):
//! reading contacts and writing customers as contacts.

use crate::customer::{ContactKind, CustomerData, CustomerKind};

/// One contact read from a vCard file, with the line its `BEGIN:VCARD` is on.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Card {
    pub line: u64,
    pub uid: Option<String>,
    /// `FN`, or the name put together from `N`.
    pub name: Option<String>,
    pub organisation: Option<String>,
    pub is_organisation: bool,
    pub emails: Vec<String>,
    pub phones: Vec<String>,
    /// `YYYY-MM-DD` when the card has a full date.
    pub birthday: Option<String>,
    pub categories: Vec<String>,
    pub note: Option<String>,
}

/// A content line, unfolded: name (upper case, without group), parameters, raw value.
struct Property {
    name: String,
    params: Vec<(String, String)>,
    value: String,
}

impl Property {
    fn parse(line: &str) -> Option<Property> {
        let (head, value) = split_unquoted(line, ':')?;
        let mut parts = head.split(';');
        let name = parts
            .next()?
            .rsplit('.')
            .next()?
            .trim()
            .to_ascii_uppercase();
        let params = parts
            .map(|p| match p.split_once('=') {
                Some((k, v)) => (
                    k.trim().to_ascii_uppercase(),
                    v.trim_matches('"').to_owned(),
                ),
                // vCard 2.1 bare parameters: `TEL;CELL:`, `N;QUOTED-PRINTABLE:`.
                None => ("TYPE".to_owned(), p.trim().to_owned()),
            })
            .collect();
        Some(Property {
            name,
            params,
            value: value.to_owned(),
        })
    }

    fn param_is(&self, key: &str, value: &str) -> bool {
        self.params
            .iter()
            .any(|(k, v)| k == key && v.split(',').any(|x| x.eq_ignore_ascii_case(value)))
            || (key == "ENCODING"
                && self
                    .params
                    .iter()
                    .any(|(k, v)| k == "TYPE" && v.eq_ignore_ascii_case(value)))
    }

    /// The value with quoted-printable decoded (2.1) and, for the given charset, as text.
    fn text(&self) -> String {
        if self.param_is("ENCODING", "QUOTED-PRINTABLE") {
            let bytes = decode_quoted_printable(&self.value);
            String::from_utf8_lossy(&bytes).into_owned()
        } else {
            self.value.clone()
        }
    }
}

/// Splits at the first `sep` outside double quotes.
fn split_unquoted(s: &str, sep: char) -> Option<(&str, &str)> {
    let mut quoted = false;
    for (i, c) in s.char_indices() {
        match c {
            '"' => quoted = !quoted,
            c if c == sep && !quoted => return Some((&s[..i], &s[i + 1..])),
            _ => {}
        }
    }
    None
}

fn decode_quoted_printable(s: &str) -> Vec<u8> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'=' {
            let hex = |c: u8| (c as char).to_digit(16);
            if let (Some(h), Some(l)) = (
                b.get(i + 1).copied().and_then(hex),
                b.get(i + 2).copied().and_then(hex),
            ) {
                out.push((h * 16 + l) as u8);
                i += 3;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    out
}

/// Splits a structured value at unescaped `sep` and unescapes each part.
fn components(value: &str, sep: char) -> Vec<String> {
    let mut out = vec![String::new()];
    let mut chars = value.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => match chars.next() {
                Some('n' | 'N') => out.last_mut().into_iter().for_each(|s| s.push('\n')),
                Some(o) => out.last_mut().into_iter().for_each(|s| s.push(o)),
                None => {}
            },
            c if c == sep => out.push(String::new()),
            c => out.last_mut().into_iter().for_each(|s| s.push(c)),
        }
    }
    out.into_iter().map(|s| s.trim().to_owned()).collect()
}

fn unescape(value: &str) -> String {
    components(value, '\u{0}').concat()
}

/// A birthday as `YYYY-MM-DD` from `19900501`, `1990-05-01` or `1990-05-01T00:00:00Z`;
/// `None` for dates without a year (`--0501`).
fn birthday(value: &str) -> Option<String> {
    let digits: String = value
        .split('T')
        .next()?
        .chars()
        .filter(char::is_ascii_digit)
        .collect();
    if value.starts_with("--") || digits.len() != 8 {
        return None;
    }
    Some(format!(
        "{}-{}-{}",
        &digits[..4],
        &digits[4..6],
        &digits[6..]
    ))
}

/// Joins folded lines (a line starting with a space or tab continues the previous one) and
/// quoted-printable soft breaks (a QP line ending in `=`), keeping each line's number.
fn unfold(text: &str) -> Vec<(u64, String)> {
    let mut out: Vec<(u64, String)> = Vec::new();
    let mut soft_break = false;
    for (i, raw) in text.lines().enumerate() {
        let line = raw.trim_end_matches('\r');
        let n = i as u64 + 1;
        if soft_break && let Some(last) = out.last_mut() {
            last.1.push_str(line);
        } else if (line.starts_with(' ') || line.starts_with('\t')) && !out.is_empty() {
            if let Some(last) = out.last_mut() {
                last.1.push_str(&line[1..]);
            }
        } else if !line.is_empty() {
            out.push((n, line.to_owned()));
        }
        soft_break = out.last().is_some_and(|(_, l)| {
            l.to_ascii_uppercase().contains("QUOTED-PRINTABLE") && l.ends_with('=')
        });
        if soft_break && let Some(last) = out.last_mut() {
            last.1.pop();
        }
    }
    out
}

/// Reads every card of a vCard file. A card missing its `END:VCARD` is reported with the
/// line it starts on.
pub fn parse(text: &str) -> Vec<Result<Card, (u64, String)>> {
    let mut cards = Vec::new();
    let mut current: Option<Card> = None;
    for (line, content) in unfold(text) {
        let Some(p) = Property::parse(&content) else {
            if current.take().is_some() {
                cards.push(Err((line, format!("not a vCard line: {content:?}"))));
            }
            continue;
        };
        match p.name.as_str() {
            "BEGIN" if p.value.eq_ignore_ascii_case("VCARD") => {
                if let Some(c) = current.take() {
                    cards.push(Err((c.line, "the card has no END:VCARD".into())));
                }
                current = Some(Card {
                    line,
                    ..Card::default()
                });
            }
            "END" if p.value.eq_ignore_ascii_case("VCARD") => {
                if let Some(c) = current.take() {
                    cards.push(Ok(c));
                }
            }
            _ => {
                let Some(c) = current.as_mut() else { continue };
                let text = p.text();
                match p.name.as_str() {
                    "UID" => c.uid = Some(unescape(&text)).filter(|s| !s.is_empty()),
                    "FN" => c.name = Some(unescape(&text)).filter(|s| !s.is_empty()),
                    "N" if c.name.is_none() => {
                        // family;given;additional;prefix;suffix
                        let n = components(&text, ';');
                        let given = n.get(1).cloned().unwrap_or_default();
                        let family = n.first().cloned().unwrap_or_default();
                        let cjk = family
                            .chars()
                            .chain(given.chars())
                            .any(crate::search::is_cjk);
                        let name = if cjk {
                            format!("{family}{given}")
                        } else {
                            format!("{given} {family}")
                        };
                        c.name = Some(name.trim().to_owned()).filter(|s| !s.is_empty());
                    }
                    "ORG" => {
                        c.organisation = components(&text, ';')
                            .into_iter()
                            .next()
                            .filter(|s| !s.is_empty());
                    }
                    "KIND" => c.is_organisation = text.eq_ignore_ascii_case("org"),
                    "X-ABSHOWAS" => c.is_organisation |= text.eq_ignore_ascii_case("COMPANY"),
                    "EMAIL" => c.emails.push(unescape(&text)),
                    "TEL" => c.phones.push(unescape(text.trim_start_matches("tel:"))),
                    "BDAY" => c.birthday = birthday(&text),
                    "CATEGORIES" => c
                        .categories
                        .extend(components(&text, ',').into_iter().filter(|s| !s.is_empty())),
                    "NOTE" => c.note = Some(unescape(&text)),
                    _ => {}
                }
            }
        }
    }
    if let Some(c) = current {
        cards.push(Err((c.line, "the card has no END:VCARD".into())));
    }
    cards
}

fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            ',' => out.push_str("\\,"),
            ';' => out.push_str("\\;"),
            '\n' => out.push_str("\\n"),
            '\r' => {}
            c => out.push(c),
        }
    }
    out
}

/// Appends a content line, folded at 75 octets without splitting a character.
fn push_line(out: &mut String, line: &str) {
    let mut width = 0;
    for c in line.chars() {
        if width + c.len_utf8() > 75 {
            out.push_str("\r\n ");
            width = 1;
        }
        out.push(c);
        width += c.len_utf8();
    }
    out.push_str("\r\n");
}

/// Appends a customer as a vCard 4.0 contact; `uid` is its external id.
pub fn write(out: &mut String, uid: &str, c: &CustomerData) {
    push_line(out, "BEGIN:VCARD");
    push_line(out, "VERSION:4.0");
    if c.kind == CustomerKind::Organisation {
        push_line(out, "KIND:org");
        push_line(out, &format!("ORG:{}", escape(&c.name)));
    }
    push_line(out, &format!("UID:{}", escape(uid)));
    push_line(out, &format!("FN:{}", escape(&c.name)));
    let emails = c.email.iter().chain(
        c.contact_points
            .iter()
            .filter(|p| p.kind == ContactKind::Email)
            .map(|p| &p.value),
    );
    for (i, e) in emails.enumerate() {
        let pref = if i == 0 { ";PREF=1" } else { "" };
        push_line(out, &format!("EMAIL{pref}:{}", escape(e)));
    }
    let phones = c.phone.iter().chain(
        c.contact_points
            .iter()
            .filter(|p| p.kind == ContactKind::Phone)
            .map(|p| &p.value),
    );
    for (i, p) in phones.enumerate() {
        let pref = if i == 0 { ";PREF=1" } else { "" };
        push_line(
            out,
            &format!("TEL;VALUE=uri{pref}:tel:{}", p.replace(' ', "-")),
        );
    }
    if let Some(b) = c.birthday {
        push_line(out, &format!("BDAY:{}", b.format("%Y%m%d")));
    }
    if !c.tags.is_empty() {
        let tags: Vec<String> = c.tags.iter().map(|t| escape(t)).collect();
        push_line(out, &format!("CATEGORIES:{}", tags.join(",")));
    }
    push_line(out, "END:VCARD");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_dialects_phones_write() {
        let text = "BEGIN:VCARD\r\nVERSION:2.1\r\nN;CHARSET=UTF-8;ENCODING=QUOTED-PRINTABLE:=E7=8E=8B;=E5=B0=8F=E6=98=8E;;;\r\n\
                    TEL;CELL:138 0013 8000\r\nTEL;HOME:010-1234567\r\nEND:VCARD\r\n\
                    BEGIN:VCARD\nVERSION:3.0\nitem1.EMAIL;type=INTERNET;type=pref:ann@example.com\n\
                    FN:Ann Lee\nN:Lee;Ann;;;\nBDAY:1990-05-01\nCATEGORIES:vip,wine\\, red\n\
                    NOTE:met at the fair\\, 2024\n  and again\nEND:VCARD\n\
                    BEGIN:VCARD\nVERSION:4.0\nKIND:org\nFN:Acme Ltd\nUID:urn:uuid:42\nBDAY:--0501\n";
        let cards = parse(text);
        assert_eq!(cards.len(), 3);
        let wang = cards[0].as_ref().unwrap();
        assert_eq!(wang.line, 1);
        assert_eq!(wang.name.as_deref(), Some("王小明"));
        assert_eq!(wang.phones, vec!["138 0013 8000", "010-1234567"]);
        let ann = cards[1].as_ref().unwrap();
        assert_eq!(ann.line, 7);
        assert_eq!(ann.name.as_deref(), Some("Ann Lee"));
        assert_eq!(ann.emails, vec!["ann@example.com"]);
        assert_eq!(ann.birthday.as_deref(), Some("1990-05-01"));
        assert_eq!(ann.categories, vec!["vip", "wine, red"]);
        assert_eq!(ann.note.as_deref(), Some("met at the fair, 2024 and again"));
        assert_eq!(cards[2], Err((17, "the card has no END:VCARD".into())));
    }

    #[test]
    fn writes_what_it_reads_back() {
        let mut c = CustomerData::named("陳大文; \"Big\" Man, the second");
        c.email = Some("dawen@example.com".into());
        c.phone = Some("+852 9123 4567".into());
        c.birthday = chrono::NaiveDate::from_ymd_opt(1975, 12, 31);
        c.tags = vec!["vip".into(), "a,b".into()];
        c.contact_points.push(crate::customer::ContactPoint {
            kind: ContactKind::Email,
            value: "work@example.com".into(),
            label: None,
        });
        let mut out = String::new();
        write(&mut out, "C-1", &c);
        assert!(out.lines().all(|l| l.len() <= 76), "{out}");
        let cards = parse(&out);
        let card = cards[0].as_ref().unwrap();
        assert_eq!(card.uid.as_deref(), Some("C-1"));
        assert_eq!(card.name.as_deref(), Some(c.name.as_str()));
        assert_eq!(card.emails, vec!["dawen@example.com", "work@example.com"]);
        assert_eq!(card.phones, vec!["+852-9123-4567"]);
        assert_eq!(card.birthday.as_deref(), Some("1975-12-31"));
        assert_eq!(card.categories, vec!["vip", "a,b"]);
    }

    #[test]
    fn long_lines_fold_between_characters() {
        let mut c = CustomerData::named("名".repeat(60));
        c.tags = vec!["x".repeat(100)];
        let mut out = String::new();
        write(&mut out, "u", &c);
        assert!(out.split("\r\n").all(|l| l.len() <= 75));
        let card = parse(&out).remove(0).unwrap();
        assert_eq!(card.name, Some("名".repeat(60)));
        assert_eq!(card.categories, vec!["x".repeat(100)]);
    }
}
