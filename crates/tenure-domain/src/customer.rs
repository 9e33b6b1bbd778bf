//! The customer record's vocabularies and value types, each with the parser that checks
//! user input.

use chrono::{Datelike, NaiveDate};
use serde::{Deserialize, Serialize};

use crate::text_enum;

/// Longest customer or account name accepted, in characters.
pub const NAME_MAX: usize = 200;

text_enum! {
    /// A customer is a person or an organisation.
    pub enum CustomerKind {
        Person => "person",
        Organisation => "organisation",
    }
}

text_enum! {
    /// The kind of business relationship an account has with us. Distributors are
    /// customers too and get the same retention tools.
    pub enum AccountType {
        EndCustomer => "end_customer",
        Distributor => "distributor",
        Reseller => "reseller",
        Partner => "partner",
    }
}

text_enum! {
    /// A channel on which we talk with a customer.
    pub enum Channel {
        Phone => "phone",
        Email => "email",
        Sms => "sms",
        Chat => "chat",
        Social => "social",
        InPerson => "in_person",
        App => "app",
        Web => "web",
    }
}

text_enum! {
    /// Who started an interaction.
    pub enum Direction {
        Inbound => "inbound",
        Outbound => "outbound",
    }
}

text_enum! {
    /// What an interaction was.
    pub enum InteractionKind {
        Call => "call",
        Message => "message",
        Meeting => "meeting",
        Visit => "visit",
        Note => "note",
        Inquiry => "inquiry",
        Complaint => "complaint",
        Feedback => "feedback",
        Other => "other",
    }
}

text_enum! {
    /// Kinds of contact point beyond the primary email and phone.
    pub enum ContactKind {
        Email => "email",
        Phone => "phone",
        Address => "address",
        Wechat => "wechat",
        Line => "line",
        Whatsapp => "whatsapp",
        Other => "other",
    }
}

text_enum! {
    /// Channels that need the customer's consent before we send on them.
    pub enum ConsentChannel {
        Email => "email",
        Sms => "sms",
        Phone => "phone",
        Im => "im",
        Post => "post",
        App => "app",
    }
}

text_enum! {
    /// Whether consent is given.
    pub enum ConsentStatus {
        Granted => "granted",
        Withdrawn => "withdrawn",
    }
}

/// A contact point: one more way to reach the customer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct ContactPoint {
    pub kind: ContactKind,
    pub value: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub label: Option<String>,
}

/// The state of consent on one channel, with when and where it was given or withdrawn.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Consent {
    pub channel: ConsentChannel,
    pub status: ConsentStatus,
    /// When it was given or withdrawn (RFC 3339, UTC).
    pub at: chrono::DateTime<chrono::Utc>,
    /// Where it came from: "web form", "import", "phone call", ...
    pub source: String,
}

/// A customer's name: 1–200 characters, any script.
pub fn parse_name(s: &str) -> Result<String, String> {
    crate::validation::required_text(s, NAME_MAX)
}

/// An email address, lower-cased in its domain, at most 254 characters.
pub fn parse_email(s: &str) -> Result<String, String> {
    let t = s.trim();
    if t.len() > 254 {
        return Err("must be at most 254 characters".into());
    }
    if !email_address::EmailAddress::is_valid(t) || !t.contains('@') {
        return Err(format!("{t:?} is not a valid email address"));
    }
    let (local, domain) = t
        .rsplit_once('@')
        .ok_or_else(|| format!("{t:?} is not a valid email address"))?;
    if !domain.contains('.') {
        return Err(format!(
            "{t:?} is not a valid email address (the domain has no dot)"
        ));
    }
    Ok(format!("{local}@{}", domain.to_lowercase()))
}

/// A phone number: digits with optional `+`, spaces, dashes, dots and parentheses; 6–15
/// digits (the E.164 limit).
pub fn parse_phone(s: &str) -> Result<String, String> {
    let t = s.trim();
    if t.chars().count() > 32 {
        return Err("must be at most 32 characters".into());
    }
    let allowed = |c: char| c.is_ascii_digit() || matches!(c, ' ' | '-' | '.' | '(' | ')');
    let body = t.strip_prefix('+').unwrap_or(t);
    if !body.chars().all(allowed) {
        return Err(format!(
            "{t:?} is not a phone number: only digits, spaces, '-', '.', '(', ')' and a leading '+' are allowed"
        ));
    }
    let digits = body.chars().filter(char::is_ascii_digit).count();
    if !(6..=15).contains(&digits) {
        return Err(format!(
            "{t:?} is not a phone number: it must have 6 to 15 digits (has {digits})"
        ));
    }
    Ok(t.to_owned())
}

/// The digits of a phone number, for matching.
pub fn phone_digits(s: &str) -> String {
    s.chars().filter(char::is_ascii_digit).collect()
}

/// A birthday as `YYYY-MM-DD`, between 1900 and `today`.
pub fn parse_birthday(s: &str, today: NaiveDate) -> Result<NaiveDate, String> {
    let d = NaiveDate::parse_from_str(s.trim(), "%Y-%m-%d")
        .map_err(|_| format!("{s:?} is not a date in the form YYYY-MM-DD"))?;
    if d.year() < 1900 || d > today {
        return Err(format!("{s} is not a plausible birthday"));
    }
    Ok(d)
}

/// A BCP 47 language tag such as `en`, `zh-CN` or `zh-Hant-TW`.
pub fn parse_locale(s: &str) -> Result<String, String> {
    let t = s.trim();
    let mut parts = t.split('-');
    let lang_ok = parts
        .next()
        .is_some_and(|l| (2..=3).contains(&l.len()) && l.chars().all(|c| c.is_ascii_alphabetic()));
    let rest_ok =
        parts.all(|p| (1..=8).contains(&p.len()) && p.chars().all(|c| c.is_ascii_alphanumeric()));
    if !lang_ok || !rest_ok || t.len() > 35 {
        return Err(format!(
            "{t:?} is not a language tag such as en, zh-CN or zh-TW"
        ));
    }
    Ok(t.to_owned())
}

/// Tags: at most 50, each 1–64 characters, no commas; duplicates removed, order kept.
pub fn parse_tags(tags: Vec<String>) -> Result<Vec<String>, String> {
    if tags.len() > 50 {
        return Err("at most 50 tags".into());
    }
    let mut out: Vec<String> = Vec::with_capacity(tags.len());
    for t in tags {
        let t = crate::validation::required_text(&t, 64).map_err(|m| format!("tag {t:?} {m}"))?;
        if t.contains(',') {
            return Err(format!("tag {t:?} must not contain a comma"));
        }
        if !out.contains(&t) {
            out.push(t);
        }
    }
    Ok(out)
}

/// Contact points: at most 20; emails and phones are checked like the primary ones.
pub fn parse_contact_points(points: Vec<ContactPoint>) -> Result<Vec<ContactPoint>, String> {
    if points.len() > 20 {
        return Err("at most 20 contact points".into());
    }
    points
        .into_iter()
        .enumerate()
        .map(|(i, p)| {
            let value = match p.kind {
                ContactKind::Email => parse_email(&p.value),
                ContactKind::Phone => parse_phone(&p.value),
                _ => crate::validation::required_text(&p.value, 500),
            }
            .map_err(|m| format!("[{i}].value: {m}"))?;
            let label = p
                .label
                .map(|l| crate::validation::text(&l, 64, false))
                .transpose()
                .map_err(|m| format!("[{i}].label: {m}"))?;
            Ok(ContactPoint {
                kind: p.kind,
                value,
                label,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emails_are_checked_and_domains_lowercased() {
        assert_eq!(
            parse_email(" Jane.Doe@Example.COM ").as_deref(),
            Ok("Jane.Doe@example.com")
        );
        assert!(parse_email("not-an-email").is_err());
        assert!(parse_email("a@b").is_err());
        assert!(parse_email("张三@例子.中国").is_ok());
    }

    #[test]
    fn phones_need_six_to_fifteen_digits() {
        assert!(parse_phone("+86 138 0013 8000").is_ok());
        assert!(parse_phone("(02) 2345-6789").is_ok());
        assert!(parse_phone("12345").is_err());
        assert!(parse_phone("call me").is_err());
        assert!(parse_phone("+1234567890123456").is_err());
        assert_eq!(phone_digits("+86 138-0013"), "861380013");
    }

    #[test]
    fn birthdays_must_be_plausible() {
        let today = NaiveDate::from_ymd_opt(2026, 1, 1).unwrap_or_default();
        assert!(parse_birthday("1990-02-28", today).is_ok());
        assert!(parse_birthday("1990-02-30", today).is_err());
        assert!(parse_birthday("2030-01-01", today).is_err());
        assert!(parse_birthday("28/02/1990", today).is_err());
    }

    #[test]
    fn locales_are_language_tags() {
        for ok in ["en", "zh-CN", "zh-TW", "zh-Hant-TW"] {
            assert!(parse_locale(ok).is_ok(), "{ok}");
        }
        for bad in ["", "english!", "z", "zh_CN"] {
            assert!(parse_locale(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn tags_are_deduplicated_and_checked() {
        let tags = parse_tags(vec!["vip".into(), "常客".into(), "vip".into()]);
        assert_eq!(tags, Ok(vec!["vip".to_owned(), "常客".to_owned()]));
        assert!(parse_tags(vec!["a,b".into()]).is_err());
        assert!(parse_tags(vec![String::new()]).is_err());
    }
}

/// The writable fields of a customer, validated.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CustomerData {
    pub kind: CustomerKind,
    pub name: String,
    pub external_id: Option<String>,
    pub email: Option<String>,
    pub phone: Option<String>,
    pub birthday: Option<chrono::NaiveDate>,
    pub locale: Option<String>,
    pub region: Option<String>,
    pub acquisition_source: Option<String>,
    pub acquisition_channel: Option<String>,
    pub account_id: Option<crate::ids::AccountId>,
    pub owner_id: Option<crate::ids::StaffUserId>,
    pub tags: Vec<String>,
    pub contact_points: Vec<ContactPoint>,
    pub preferences: serde_json::Map<String, serde_json::Value>,
    pub custom_fields: serde_json::Map<String, serde_json::Value>,
}

impl CustomerData {
    /// A person with only a name; the rest empty.
    pub fn named(name: impl Into<String>) -> Self {
        CustomerData {
            kind: CustomerKind::Person,
            name: name.into(),
            external_id: None,
            email: None,
            phone: None,
            birthday: None,
            locale: None,
            region: None,
            acquisition_source: None,
            acquisition_channel: None,
            account_id: None,
            owner_id: None,
            tags: Vec::new(),
            contact_points: Vec::new(),
            preferences: serde_json::Map::new(),
            custom_fields: serde_json::Map::new(),
        }
    }
}

/// A change of consent on one channel.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsentChange {
    pub channel: ConsentChannel,
    pub status: ConsentStatus,
    pub source: String,
    pub at: chrono::DateTime<chrono::Utc>,
}

/// Applies consent changes to the current consent state, one entry per channel, the
/// latest change winning.
pub fn apply_consents(current: &mut Vec<Consent>, changes: &[ConsentChange]) {
    for ch in changes {
        let entry = Consent {
            channel: ch.channel,
            status: ch.status,
            at: ch.at,
            source: ch.source.clone(),
        };
        match current.iter_mut().find(|c| c.channel == ch.channel) {
            Some(c) if c.at <= ch.at => *c = entry,
            Some(_) => {}
            None => current.push(entry),
        }
    }
    current.sort_by_key(|c| c.channel);
}

/// A partial update: `None` leaves a field as it is; for optional fields `Some(None)`
/// clears it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct CustomerPatch {
    pub kind: Option<CustomerKind>,
    pub name: Option<String>,
    pub external_id: Option<Option<String>>,
    pub email: Option<Option<String>>,
    pub phone: Option<Option<String>>,
    pub birthday: Option<Option<chrono::NaiveDate>>,
    pub locale: Option<Option<String>>,
    pub region: Option<Option<String>>,
    pub acquisition_source: Option<Option<String>>,
    pub acquisition_channel: Option<Option<String>>,
    pub account_id: Option<Option<crate::ids::AccountId>>,
    pub owner_id: Option<Option<crate::ids::StaffUserId>>,
    pub tags: Option<Vec<String>>,
    pub contact_points: Option<Vec<ContactPoint>>,
    pub preferences: Option<serde_json::Map<String, serde_json::Value>>,
    pub custom_fields: Option<serde_json::Map<String, serde_json::Value>>,
    pub consents: Vec<ConsentChange>,
}

impl CustomerPatch {
    /// Applies the patch to `data`.
    pub fn apply(&self, data: &mut CustomerData) {
        fn set<T: Clone>(dst: &mut T, src: &Option<T>) {
            if let Some(v) = src {
                *dst = v.clone();
            }
        }
        set(&mut data.kind, &self.kind);
        set(&mut data.name, &self.name);
        set(&mut data.external_id, &self.external_id);
        set(&mut data.email, &self.email);
        set(&mut data.phone, &self.phone);
        set(&mut data.birthday, &self.birthday);
        set(&mut data.locale, &self.locale);
        set(&mut data.region, &self.region);
        set(&mut data.acquisition_source, &self.acquisition_source);
        set(&mut data.acquisition_channel, &self.acquisition_channel);
        set(&mut data.account_id, &self.account_id);
        set(&mut data.owner_id, &self.owner_id);
        set(&mut data.tags, &self.tags);
        set(&mut data.contact_points, &self.contact_points);
        set(&mut data.preferences, &self.preferences);
        set(&mut data.custom_fields, &self.custom_fields);
    }
}

/// Per-customer aggregates kept current on every order and interaction write.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CustomerStats {
    pub first_purchase_at: Option<chrono::DateTime<chrono::Utc>>,
    pub last_purchase_at: Option<chrono::DateTime<chrono::Utc>>,
    pub orders_count: i64,
    pub purchase_days: i64,
    pub total_spend_minor: i64,
    pub repeat_spend_minor: i64,
    pub interactions_count: i64,
    pub last_contact_at: Option<chrono::DateTime<chrono::Utc>>,
}

/// A stored customer.
#[derive(Debug, Clone, PartialEq)]
pub struct Customer {
    pub id: crate::ids::CustomerId,
    pub data: CustomerData,
    pub consents: Vec<Consent>,
    pub created_at: chrono::DateTime<chrono::Utc>,
    pub updated_at: chrono::DateTime<chrono::Utc>,
    pub version: i64,
    pub stats: CustomerStats,
}

/// The search terms of a customer's data.
pub fn search_terms(data: &CustomerData) -> Vec<String> {
    let mut emails: Vec<&str> = data.email.as_deref().into_iter().collect();
    let mut phones: Vec<&str> = data.phone.as_deref().into_iter().collect();
    for p in &data.contact_points {
        match p.kind {
            ContactKind::Email => emails.push(&p.value),
            ContactKind::Phone => phones.push(&p.value),
            _ => {}
        }
    }
    let mut terms = crate::search::terms(&crate::search::Indexed {
        names: vec![&data.name],
        emails,
        phones,
        external_id: data.external_id.as_deref(),
    });
    // The duplicate-finding keys live in the same index, below every searchable term.
    terms.extend(crate::duplicates::match_keys(data));
    terms.sort();
    terms.dedup();
    terms
}

/// The writable fields of an account.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccountData {
    pub external_id: Option<String>,
    pub name: String,
    pub account_type: AccountType,
    pub owner_id: Option<crate::ids::StaffUserId>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Account {
    pub id: crate::ids::AccountId,
    pub data: AccountData,
    pub created_at: chrono::DateTime<chrono::Utc>,
    pub updated_at: chrono::DateTime<chrono::Utc>,
}

/// A customer's profile as text — from a JSON body or a CSV row — before it is checked.
#[derive(Debug, Default)]
pub struct ProfileInput<'a> {
    pub name: &'a str,
    pub kind: Option<CustomerKind>,
    pub external_id: Option<&'a str>,
    pub email: Option<&'a str>,
    pub phone: Option<&'a str>,
    pub birthday: Option<&'a str>,
    pub locale: Option<&'a str>,
    pub region: Option<&'a str>,
    pub acquisition_source: Option<&'a str>,
    pub acquisition_channel: Option<&'a str>,
    pub tags: Vec<String>,
}

impl ProfileInput<'_> {
    /// Checks every field, recording what is wrong in `c` (the caller finishes it), and
    /// returns the customer's data with the fields that parsed.
    pub fn parse(self, c: &mut crate::validation::Collector, today: NaiveDate) -> CustomerData {
        let text = |s: &str| crate::validation::text(s, 100, false);
        let mut d = CustomerData::named(c.check("name", parse_name(self.name)).unwrap_or_default());
        d.kind = self.kind.unwrap_or(CustomerKind::Person);
        d.external_id = c.check_opt(
            "external_id",
            self.external_id,
            crate::validation::external_id,
        );
        d.email = c.check_opt("email", self.email, parse_email);
        d.phone = c.check_opt("phone", self.phone, parse_phone);
        d.birthday = c.check_opt("birthday", self.birthday, |s| parse_birthday(s, today));
        d.locale = c.check_opt("locale", self.locale, parse_locale);
        d.region = c
            .check_opt("region", self.region, text)
            .filter(|s| !s.is_empty());
        d.acquisition_source = c
            .check_opt("acquisition_source", self.acquisition_source, text)
            .filter(|s| !s.is_empty());
        d.acquisition_channel = c
            .check_opt("acquisition_channel", self.acquisition_channel, text)
            .filter(|s| !s.is_empty());
        d.tags = c.check("tags", parse_tags(self.tags)).unwrap_or_default();
        d
    }
}

/// A change of consent as given; `at` is now when left out.
#[derive(Debug, Clone)]
pub struct ConsentInput {
    pub channel: ConsentChannel,
    pub status: ConsentStatus,
    /// Where the consent came from ("web form", "phone call", ...).
    pub source: String,
    pub at: Option<chrono::DateTime<chrono::Utc>>,
}

/// Checks consent changes, naming errors `consents[i].field`.
fn parse_consents(
    c: &mut crate::validation::Collector,
    ctx: &crate::validation::InputContext<'_>,
    input: Vec<ConsentInput>,
) -> Vec<ConsentChange> {
    input
        .into_iter()
        .enumerate()
        .filter_map(|(i, x)| {
            let source = c.check(
                &format!("consents[{i}].source"),
                crate::validation::required_text(&x.source, 200),
            )?;
            let at = x.at.unwrap_or(ctx.now);
            if at > ctx.now + chrono::Duration::minutes(5) {
                c.push(&format!("consents[{i}].at"), "must not be in the future");
                return None;
            }
            Some(ConsentChange {
                channel: x.channel,
                status: x.status,
                source,
                at,
            })
        })
        .collect()
}

/// Most preference or custom-field keys.
pub const DOCUMENT_KEYS_MAX: usize = 64;

fn document(v: serde_json::Value) -> Result<serde_json::Map<String, serde_json::Value>, String> {
    crate::validation::json_object(v, DOCUMENT_KEYS_MAX)
}

/// The preference that names the customer's time zone (an IANA name); messages keep quiet
/// hours and wait for local times in it.
pub const TIME_ZONE_KEY: &str = "time_zone";
/// The preference that says which calendar the customer keeps their birthday by:
/// `gregorian` (the default) or `lunar`.
pub const BIRTHDAY_CALENDAR_KEY: &str = "birthday_calendar";

/// Preferences: a JSON object whose reserved keys are checked — `time_zone` must be a time
/// zone the server knows, `birthday_calendar` `gregorian` or `lunar` — so that a bad value
/// is refused when the profile is written, not found when a message is due.
fn preferences(v: serde_json::Value) -> Result<serde_json::Map<String, serde_json::Value>, String> {
    let map = document(v)?;
    match map.get(TIME_ZONE_KEY) {
        None | Some(serde_json::Value::Null) => {}
        Some(serde_json::Value::String(s)) => {
            crate::journey::parse_time_zone(s).map_err(|m| format!("{TIME_ZONE_KEY}: {m}"))?;
        }
        Some(_) => {
            return Err(format!(
                "{TIME_ZONE_KEY}: must be a text such as \"Asia/Shanghai\""
            ));
        }
    }
    match map.get(BIRTHDAY_CALENDAR_KEY) {
        None | Some(serde_json::Value::Null) => {}
        Some(serde_json::Value::String(s)) if s == "gregorian" || s == "lunar" => {}
        Some(_) => {
            return Err(format!(
                "{BIRTHDAY_CALENDAR_KEY}: must be \"gregorian\" or \"lunar\""
            ));
        }
    }
    Ok(map)
}

impl CustomerData {
    /// The customer's time zone, when their preferences name a valid one.
    pub fn time_zone(&self) -> Option<chrono_tz::Tz> {
        self.preferences
            .get(TIME_ZONE_KEY)
            .and_then(|v| v.as_str())
            .and_then(|s| s.parse().ok())
    }

    /// Whether the customer keeps their birthday on the lunar calendar.
    pub fn lunar_birthday(&self) -> bool {
        self.preferences
            .get(BIRTHDAY_CALENDAR_KEY)
            .and_then(|v| v.as_str())
            == Some("lunar")
    }
}

/// A whole customer as given (a JSON body, a form): the profile plus what only the API and
/// the web application set (account, owner, contact points, preferences, custom fields,
/// consents).
#[derive(Debug, Default)]
pub struct CustomerInput<'a> {
    pub profile: ProfileInput<'a>,
    pub account_id: Option<i64>,
    pub owner_id: Option<i64>,
    pub contact_points: Vec<ContactPoint>,
    pub preferences: Option<serde_json::Value>,
    pub custom_fields: Option<serde_json::Value>,
    pub consents: Vec<ConsentInput>,
}

impl CustomerInput<'_> {
    pub fn parse(
        self,
        c: &mut crate::validation::Collector,
        ctx: &crate::validation::InputContext<'_>,
    ) -> (CustomerData, Vec<ConsentChange>) {
        let mut data = self.profile.parse(c, ctx.today());
        data.account_id = c
            .check_opt(
                "account_id",
                self.account_id,
                crate::validation::positive_id,
            )
            .map(crate::ids::AccountId);
        data.owner_id = c
            .check_opt("owner_id", self.owner_id, crate::validation::positive_id)
            .map(crate::ids::StaffUserId);
        data.contact_points = c
            .check("contact_points", parse_contact_points(self.contact_points))
            .unwrap_or_default();
        data.preferences = c
            .check_opt("preferences", self.preferences, preferences)
            .unwrap_or_default();
        data.custom_fields = c
            .check_opt("custom_fields", self.custom_fields, document)
            .unwrap_or_default();
        let consents = parse_consents(c, ctx, self.consents);
        (data, consents)
    }
}

/// A change to a customer as given: fields left out stay; for optional fields
/// `Some(None)` clears.
#[derive(Debug, Default)]
pub struct CustomerPatchInput {
    pub name: Option<String>,
    pub kind: Option<CustomerKind>,
    pub external_id: Option<Option<String>>,
    pub email: Option<Option<String>>,
    pub phone: Option<Option<String>>,
    pub birthday: Option<Option<String>>,
    pub locale: Option<Option<String>>,
    pub region: Option<Option<String>>,
    pub acquisition_source: Option<Option<String>>,
    pub acquisition_channel: Option<Option<String>>,
    pub account_id: Option<Option<i64>>,
    pub owner_id: Option<Option<i64>>,
    pub tags: Option<Vec<String>>,
    pub contact_points: Option<Vec<ContactPoint>>,
    pub preferences: Option<serde_json::Value>,
    pub custom_fields: Option<serde_json::Value>,
    pub consents: Vec<ConsentInput>,
}

/// An optional-and-clearable field: `Some(None)` clears, `Some(Some(v))` sets.
fn clearable<T, U>(
    c: &mut crate::validation::Collector,
    field: &str,
    v: Option<Option<U>>,
    parse: impl FnOnce(U) -> Result<T, String>,
) -> Option<Option<T>> {
    match v {
        None => None,
        Some(None) => Some(None),
        Some(Some(s)) => c.check(field, parse(s)).map(Some),
    }
}

impl CustomerPatchInput {
    pub fn parse(
        self,
        c: &mut crate::validation::Collector,
        ctx: &crate::validation::InputContext<'_>,
    ) -> CustomerPatch {
        let text = |s: String| crate::validation::text(&s, 100, false);
        let today = ctx.today();
        CustomerPatch {
            name: c.check_opt("name", self.name, |s| parse_name(&s)),
            kind: self.kind,
            external_id: clearable(c, "external_id", self.external_id, |s: String| {
                crate::validation::external_id(&s)
            }),
            email: clearable(c, "email", self.email, |s: String| parse_email(&s)),
            phone: clearable(c, "phone", self.phone, |s: String| parse_phone(&s)),
            birthday: clearable(c, "birthday", self.birthday, |s: String| {
                parse_birthday(&s, today)
            }),
            locale: clearable(c, "locale", self.locale, |s: String| parse_locale(&s)),
            region: clearable(c, "region", self.region, text),
            acquisition_source: clearable(c, "acquisition_source", self.acquisition_source, text),
            acquisition_channel: clearable(
                c,
                "acquisition_channel",
                self.acquisition_channel,
                text,
            ),
            account_id: clearable(c, "account_id", self.account_id, |v| {
                crate::validation::positive_id(v).map(crate::ids::AccountId)
            }),
            owner_id: clearable(c, "owner_id", self.owner_id, |v| {
                crate::validation::positive_id(v).map(crate::ids::StaffUserId)
            }),
            tags: c.check_opt("tags", self.tags, parse_tags),
            contact_points: c.check_opt(
                "contact_points",
                self.contact_points,
                parse_contact_points,
            ),
            preferences: c.check_opt("preferences", self.preferences, preferences),
            custom_fields: c.check_opt("custom_fields", self.custom_fields, document),
            consents: parse_consents(c, ctx, self.consents),
        }
    }
}

/// The writable fields of an account as given.
#[derive(Debug, Clone, Default)]
pub struct AccountInput {
    pub external_id: Option<String>,
    pub name: String,
    /// An end customer when left out.
    pub account_type: Option<AccountType>,
    pub owner_id: Option<i64>,
}

impl AccountInput {
    pub fn parse(self, c: &mut crate::validation::Collector) -> Option<AccountData> {
        let name = c.check("name", parse_name(&self.name));
        let external_id = match self.external_id {
            Some(x) => Some(c.check("external_id", crate::validation::external_id(&x))?),
            None => None,
        };
        let owner_id = match self.owner_id {
            Some(o) => Some(c.check("owner_id", crate::validation::positive_id(o))?),
            None => None,
        };
        Some(AccountData {
            external_id,
            name: name?,
            account_type: self.account_type.unwrap_or(AccountType::EndCustomer),
            owner_id: owner_id.map(crate::ids::StaffUserId),
        })
    }
}

/// A change to an account: fields left out stay; `Some(None)` clears.
#[derive(Debug, Clone, Default)]
pub struct AccountPatch {
    pub external_id: Option<Option<String>>,
    pub name: Option<String>,
    pub account_type: Option<AccountType>,
    pub owner_id: Option<Option<i64>>,
}

impl AccountPatch {
    pub fn apply(self, d: &mut AccountData) -> Result<(), crate::Invalid> {
        let mut c = crate::validation::Collector::new();
        if let Some(x) = clearable(&mut c, "external_id", self.external_id, |s: String| {
            crate::validation::external_id(&s)
        }) {
            d.external_id = x;
        }
        if let Some(n) = c.check_opt("name", self.name, |s| parse_name(&s)) {
            d.name = n;
        }
        if let Some(t) = self.account_type {
            d.account_type = t;
        }
        if let Some(o) = clearable(&mut c, "owner_id", self.owner_id, |v| {
            crate::validation::positive_id(v).map(crate::ids::StaffUserId)
        }) {
            d.owner_id = o;
        }
        c.finish()
    }
}

impl Customer {
    /// The customer as `role` may see it: roles that see only aggregates (analysts) get
    /// names, emails and phones masked and the birthday, contact points, preferences and
    /// custom fields left out. Every interface shows customers through this projection.
    pub fn seen_by(mut self, role: crate::access::Role) -> Customer {
        use crate::access::mask;
        if !role.sees_masked_personal_data() {
            return self;
        }
        let d = &mut self.data;
        d.name = mask::name(&d.name);
        d.email = d.email.as_deref().map(mask::email);
        d.phone = d.phone.as_deref().map(mask::phone);
        d.external_id = d.external_id.as_deref().map(mask::reference);
        d.birthday = None;
        for c in &mut self.consents {
            c.source = "***".into();
        }
        d.contact_points.clear();
        d.preferences.clear();
        d.custom_fields.clear();
        self
    }
}

/// A name as staff read it: a Chinese (or Japanese, Korean) name written with spaces
/// between its parts ("王 小明") is shown family name first without them ("王小明"); other
/// names as written.
pub fn display_name(name: &str) -> String {
    let parts: Vec<&str> = name.split_whitespace().collect();
    if parts.len() > 1
        && parts
            .iter()
            .all(|p| p.chars().all(|c| crate::search::is_cjk(c) || c == '·'))
    {
        parts.concat()
    } else {
        name.trim().to_owned()
    }
}

#[cfg(test)]
mod display_tests {
    use super::display_name;

    #[test]
    fn chinese_names_read_without_spaces_family_name_first() {
        assert_eq!(display_name("王 小明"), "王小明");
        assert_eq!(display_name("  李明朗 "), "李明朗");
        assert_eq!(display_name("John Smith"), "John Smith");
        assert_eq!(display_name("Alex 王"), "Alex 王");
    }
}
