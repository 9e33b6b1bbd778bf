//! Likely duplicates: the keys two records of one person share, how alike two records are,
//! and how two profiles combine in a merge (and come apart again in an undo).
//!
//! Each customer gets a few match keys — email, phone, normalised name, normalised name with
//! birthday — stored in the search index under a control-character prefix no query can
//! produce. Customers sharing a key are candidates; a candidate pair is scored by the keys it
//! shares and by how alike the names are. Names are normalised so that case, spacing, word
//! order and traditional versus simplified Chinese do not matter ("陳大文" = "陈 大文",
//! "SMITH, John" = "john smith").

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};

use crate::customer::{Consent, ContactKind, ContactPoint, CustomerData, phone_digits};
use crate::ids::CustomerId;
use crate::text_enum;

/// Every match key starts with this character; searchable terms never do.
pub const KEY_PREFIX: char = '\u{1}';

text_enum! {
    /// Why two customers look like one person.
    pub enum MatchReason {
        SameEmail => "same_email",
        SamePhone => "same_phone",
        SameNameAndBirthday => "same_name_and_birthday",
        SameName => "same_name",
    }
}

impl MatchReason {
    fn tag(self) -> char {
        match self {
            MatchReason::SameEmail => 'e',
            MatchReason::SamePhone => 'p',
            MatchReason::SameNameAndBirthday => 'b',
            MatchReason::SameName => 'n',
        }
    }

    /// How much this reason alone says the records are one person.
    fn weight(self) -> f64 {
        match self {
            MatchReason::SameEmail => 0.9,
            MatchReason::SamePhone => 0.8,
            MatchReason::SameNameAndBirthday => 0.85,
            MatchReason::SameName => 0.5,
        }
    }

    /// More customers than this sharing one key say nothing about any two of them (a
    /// common name, a shop's own phone number typed into every record).
    pub fn group_limit(self) -> usize {
        match self {
            MatchReason::SameName => 8,
            _ => 25,
        }
    }

    /// The reason a stored key stands for.
    pub fn of_key(key: &str) -> Option<MatchReason> {
        let mut chars = key.chars();
        if chars.next() != Some(KEY_PREFIX) {
            return None;
        }
        let tag = chars.next()?;
        MatchReason::ALL.iter().copied().find(|r| r.tag() == tag)
    }
}

/// The lowest and the highest possible key, for a range scan over all of them.
pub fn key_range() -> (String, String) {
    (KEY_PREFIX.to_string(), char::from(2).to_string())
}

fn key(reason: MatchReason, value: &str) -> String {
    format!("{KEY_PREFIX}{}{value}", reason.tag())
}

/// A name with case, punctuation, spacing, Latin word order and traditional characters
/// normalised away; `None` when nothing is left.
pub fn name_key(name: &str) -> Option<String> {
    let simplified = fast2s::convert(name);
    let mut cjk = String::new();
    let mut words: Vec<String> = Vec::new();
    for (is_cjk, piece) in crate::search::pieces(&simplified) {
        if is_cjk {
            cjk.push_str(&piece);
        } else {
            words.push(piece);
        }
    }
    words.sort();
    let mut out = cjk;
    for w in words {
        if !out.is_empty() {
            out.push(' ');
        }
        out.push_str(&w);
    }
    (!out.is_empty()).then_some(out)
}

/// The match keys of a customer.
pub fn match_keys(d: &CustomerData) -> Vec<String> {
    let mut keys = Vec::new();
    let emails = d.email.iter().chain(
        d.contact_points
            .iter()
            .filter(|p| p.kind == ContactKind::Email)
            .map(|p| &p.value),
    );
    for e in emails {
        keys.push(key(MatchReason::SameEmail, &e.trim().to_lowercase()));
    }
    let phones = d.phone.iter().chain(
        d.contact_points
            .iter()
            .filter(|p| p.kind == ContactKind::Phone)
            .map(|p| &p.value),
    );
    for p in phones {
        let digits = phone_digits(p);
        if digits.len() >= 6 {
            keys.push(key(MatchReason::SamePhone, &digits));
        }
    }
    if let Some(n) = name_key(&d.name) {
        if let Some(b) = d.birthday {
            keys.push(key(
                MatchReason::SameNameAndBirthday,
                &format!("{n}|{}", b.format("%Y-%m-%d")),
            ));
        }
        keys.push(key(MatchReason::SameName, &n));
    }
    keys
}

/// How alike two names are, 0–1, after normalisation: Jaro–Winkler for Latin names,
/// normalised edit distance for names in CJK scripts.
pub fn name_similarity(a: &str, b: &str) -> f64 {
    let (Some(a), Some(b)) = (name_key(a), name_key(b)) else {
        return 0.0;
    };
    if a.chars().any(crate::search::is_cjk) || b.chars().any(crate::search::is_cjk) {
        strsim::normalized_levenshtein(&a, &b)
    } else {
        strsim::jaro_winkler(&a, &b)
    }
}

/// A pair's score, 0–1: the shared keys combined as independent evidence, discounted when
/// only contact details are shared and the names differ (a family's shared email).
pub fn score(reasons: &BTreeSet<MatchReason>, name_similarity: f64) -> f64 {
    let miss: f64 = reasons.iter().map(|r| 1.0 - r.weight()).product();
    let mut s = 1.0 - miss;
    let by_name = reasons.contains(&MatchReason::SameName);
    if !by_name && name_similarity < 0.6 {
        s *= 0.6;
    } else if !by_name {
        s *= 0.8 + 0.2 * name_similarity;
    }
    (s * 1000.0).round() / 1000.0
}

/// The reasons each pair of customers shares, collected group by group.
pub type Pairs = std::collections::HashMap<(i64, i64), BTreeSet<MatchReason>>;

/// Adds the pairs made by the customers sharing match key `key` (ids in ascending order),
/// when the group is small enough to say something about any two of them. With `only`,
/// just the pairs that customer is part of.
pub fn add_group_pairs(key: &str, members: &[i64], only: Option<i64>, pairs: &mut Pairs) {
    let Some(reason) = MatchReason::of_key(key) else {
        return;
    };
    if members.len() < 2 || members.len() > reason.group_limit() {
        return;
    }
    for (i, &a) in members.iter().enumerate() {
        for &b in &members[i + 1..] {
            if only.is_none_or(|o| o == a || o == b) {
                pairs
                    .entry((a.min(b), a.max(b)))
                    .or_default()
                    .insert(reason);
            }
        }
    }
}

/// A scored candidate pair, lower id first.
#[derive(Debug, Clone, PartialEq)]
pub struct ScoredPair {
    pub a: CustomerId,
    pub b: CustomerId,
    pub reasons: BTreeSet<MatchReason>,
    /// Rounded to thousandths.
    pub name_similarity: f64,
    /// 0–1, in thousandths; lists are ordered by it, best first.
    pub score_milli: i64,
}

impl ScoredPair {
    /// Scores a pair from the reasons it shares and the two names.
    pub fn new(
        a: CustomerId,
        b: CustomerId,
        reasons: BTreeSet<MatchReason>,
        name_a: &str,
        name_b: &str,
    ) -> Self {
        let similarity = name_similarity(name_a, name_b);
        let s = score(&reasons, similarity);
        ScoredPair {
            a,
            b,
            name_similarity: (similarity * 1000.0).round() / 1000.0,
            score_milli: (s * 1000.0).round() as i64,
            reasons,
        }
    }

    pub fn score(&self) -> f64 {
        self.score_milli as f64 / 1000.0
    }
}

/// The reasons as stored: their spellings joined by commas, in order.
pub fn reasons_text(reasons: &BTreeSet<MatchReason>) -> String {
    reasons
        .iter()
        .map(|r| r.as_str())
        .collect::<Vec<_>>()
        .join(",")
}

/// The reasons stored by [`reasons_text`].
pub fn parse_reasons(text: &str) -> Result<BTreeSet<MatchReason>, String> {
    text.split(',')
        .filter(|s| !s.is_empty())
        .map(str::parse)
        .collect()
}

/// Where a page of candidate pairs ends: best first, then by ids.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CandidatePosition {
    pub score_milli: i64,
    pub a: CustomerId,
    pub b: CustomerId,
}

impl crate::cursor::CursorKey for CandidatePosition {
    const TAG: &'static str = "duplicates";
    type Parts = (i64, i64, i64);

    fn to_parts(&self) -> Self::Parts {
        (self.score_milli, self.a.0, self.b.0)
    }

    fn from_parts((score_milli, a, b): Self::Parts) -> Option<Self> {
        ((0..=1000).contains(&score_milli) && a > 0 && b > a).then_some(CandidatePosition {
            score_milli,
            a: CustomerId(a),
            b: CustomerId(b),
        })
    }
}

/// A customer's profile and consents, as kept in a merge record.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Profile {
    pub data: CustomerData,
    pub consents: Vec<Consent>,
}

/// The survivor's profile after taking in the duplicate: empty fields are filled from the
/// duplicate, tags and contact points are united (the duplicate's own email and phone
/// become contact points when they differ), preferences and custom fields are added where
/// the survivor has none, and per channel the most recent consent decision wins.
pub fn merge_profiles(survivor: &Profile, duplicate: &Profile) -> Profile {
    let s = &survivor.data;
    let d = &duplicate.data;
    let mut out = s.clone();
    macro_rules! fill {
        ($($f:ident),+) => {$(
            if out.$f.is_none() {
                out.$f = d.$f.clone();
            }
        )+};
    }
    fill!(
        external_id,
        email,
        phone,
        birthday,
        locale,
        region,
        acquisition_source,
        acquisition_channel,
        account_id,
        owner_id
    );
    for t in &d.tags {
        if !out.tags.contains(t) {
            out.tags.push(t.clone());
        }
    }
    let mut points: Vec<ContactPoint> = d.contact_points.clone();
    if let Some(e) = &d.email
        && out.email.as_ref() != Some(e)
    {
        points.push(ContactPoint {
            kind: ContactKind::Email,
            value: e.clone(),
            label: None,
        });
    }
    if let Some(p) = &d.phone
        && out.phone.as_ref() != Some(p)
    {
        points.push(ContactPoint {
            kind: ContactKind::Phone,
            value: p.clone(),
            label: None,
        });
    }
    for p in points {
        if !out
            .contact_points
            .iter()
            .any(|q| q.kind == p.kind && q.value == p.value)
        {
            out.contact_points.push(p);
        }
    }
    for (k, v) in &d.preferences {
        out.preferences
            .entry(k.clone())
            .or_insert_with(|| v.clone());
    }
    for (k, v) in &d.custom_fields {
        out.custom_fields
            .entry(k.clone())
            .or_insert_with(|| v.clone());
    }
    let mut consents = survivor.consents.clone();
    for c in &duplicate.consents {
        match consents.iter_mut().find(|x| x.channel == c.channel) {
            Some(x) if x.at < c.at => *x = c.clone(),
            Some(_) => {}
            None => consents.push(c.clone()),
        }
    }
    consents.sort_by_key(|c| c.channel);
    Profile {
        data: out,
        consents,
    }
}

/// The survivor's profile when a merge is undone: every field the merge changed goes back
/// to its value before the merge, unless it was edited since (then the edit stays). Tags and
/// contact points the merge added are removed; those added since stay.
pub fn unmerge_profile(before: &Profile, merged: &Profile, current: &Profile) -> Profile {
    let (b, m, c) = (&before.data, &merged.data, &current.data);
    let mut out = c.clone();
    macro_rules! back {
        ($($f:ident),+) => {$(
            if c.$f == m.$f {
                out.$f = b.$f.clone();
            }
        )+};
    }
    back!(
        kind,
        name,
        external_id,
        email,
        phone,
        birthday,
        locale,
        region,
        acquisition_source,
        acquisition_channel,
        account_id,
        owner_id
    );
    out.tags
        .retain(|t| b.tags.contains(t) || !m.tags.contains(t));
    out.contact_points
        .retain(|p| b.contact_points.contains(p) || !m.contact_points.contains(p));
    for (map, before_map, merged_map) in [
        (&mut out.preferences, &b.preferences, &m.preferences),
        (&mut out.custom_fields, &b.custom_fields, &m.custom_fields),
    ] {
        map.retain(|k, v| before_map.contains_key(k) || merged_map.get(k) != Some(v));
    }
    let consents = if current.consents == merged.consents {
        before.consents.clone()
    } else {
        current.consents.clone()
    };
    Profile {
        data: out,
        consents,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::customer::{ConsentChannel, ConsentStatus};

    fn person(name: &str) -> CustomerData {
        CustomerData::named(name)
    }

    fn reasons_between(a: &CustomerData, b: &CustomerData) -> BTreeSet<MatchReason> {
        let kb = match_keys(b);
        match_keys(a)
            .iter()
            .filter(|k| kb.contains(k))
            .filter_map(|k| MatchReason::of_key(k))
            .collect()
    }

    #[test]
    fn names_normalise_script_case_spacing_and_word_order() {
        assert_eq!(name_key("陳大文"), name_key("陈 大文"));
        assert_eq!(name_key("SMITH, John"), name_key("john smith"));
        assert_ne!(name_key("王小明"), name_key("王晓明"));
        assert_eq!(name_key(" - "), None);
    }

    #[test]
    fn keys_stay_below_every_search_term() {
        let mut c = person("Ann Lee");
        c.email = Some("Ann@Example.com".into());
        c.phone = Some("+86 138 0013 8000".into());
        c.birthday = chrono::NaiveDate::from_ymd_opt(1990, 5, 1);
        let keys = match_keys(&c);
        assert_eq!(keys.len(), 4);
        let (lo, hi) = key_range();
        for k in &keys {
            assert!(
                k.as_str() >= lo.as_str() && k.as_str() < hi.as_str(),
                "{k:?}"
            );
            assert!(MatchReason::of_key(k).is_some());
        }
        for q in crate::search::query_prefixes(&format!("{KEY_PREFIX}eann@example.com")) {
            assert!(!q.starts_with(KEY_PREFIX));
        }
    }

    #[test]
    fn shared_keys_explain_the_match() {
        let mut a = person("陳大文");
        let mut b = person("陈大文");
        a.birthday = chrono::NaiveDate::from_ymd_opt(1980, 2, 3);
        b.birthday = a.birthday;
        let r = reasons_between(&a, &b);
        assert_eq!(
            r,
            BTreeSet::from([MatchReason::SameNameAndBirthday, MatchReason::SameName])
        );
        let mut c = person("Someone Else");
        c.email = Some("x@example.com".into());
        let mut d = person("Other Person");
        d.contact_points.push(ContactPoint {
            kind: ContactKind::Email,
            value: "X@example.com".into(),
            label: None,
        });
        assert_eq!(
            reasons_between(&c, &d),
            BTreeSet::from([MatchReason::SameEmail])
        );
    }

    #[test]
    fn scores_rank_strong_evidence_first() {
        let email = BTreeSet::from([MatchReason::SameEmail]);
        let name = BTreeSet::from([MatchReason::SameName]);
        let both = BTreeSet::from([
            MatchReason::SameEmail,
            MatchReason::SameName,
            MatchReason::SameNameAndBirthday,
        ]);
        assert!(score(&both, 1.0) > score(&email, 0.95));
        assert!(score(&email, 0.95) > score(&name, 1.0));
        // A shared family email with different names ranks below a near-identical name.
        assert!(score(&email, 0.2) < score(&email, 0.95));
        assert!(name_similarity("Jon Smith", "John Smith") > 0.9);
        assert!(name_similarity("王小明", "王晓明") > 0.6);
        assert!(name_similarity("王小明", "李华") < 0.4);
    }

    #[test]
    fn merge_fills_gaps_and_undo_restores_what_was_not_edited() {
        let at = |d: u32| {
            chrono::NaiveDate::from_ymd_opt(2024, 1, d)
                .and_then(|d| d.and_hms_opt(0, 0, 0))
                .map(|t| t.and_utc())
                .unwrap_or_default()
        };
        let mut s = person("Ann Lee");
        s.email = Some("ann@example.com".into());
        s.tags = vec!["vip".into()];
        let mut d = person("Ann  Lee");
        d.email = Some("ann.lee@work.example".into());
        d.phone = Some("+1 555 0100".into());
        d.region = Some("Shanghai".into());
        d.tags = vec!["wine".into(), "vip".into()];
        let survivor = Profile {
            data: s,
            consents: vec![Consent {
                channel: ConsentChannel::Email,
                status: ConsentStatus::Granted,
                at: at(1),
                source: "form".into(),
            }],
        };
        let duplicate = Profile {
            data: d,
            consents: vec![Consent {
                channel: ConsentChannel::Email,
                status: ConsentStatus::Withdrawn,
                at: at(5),
                source: "unsubscribe".into(),
            }],
        };
        let merged = merge_profiles(&survivor, &duplicate);
        assert_eq!(merged.data.email.as_deref(), Some("ann@example.com"));
        assert_eq!(merged.data.phone.as_deref(), Some("+1 555 0100"));
        assert_eq!(merged.data.tags, vec!["vip", "wine"]);
        assert!(
            merged
                .data
                .contact_points
                .iter()
                .any(|p| p.value == "ann.lee@work.example")
        );
        // The later withdrawal wins.
        assert_eq!(merged.consents[0].status, ConsentStatus::Withdrawn);

        assert_eq!(unmerge_profile(&survivor, &merged, &merged), survivor);

        // An edit made after the merge survives the undo.
        let mut edited = merged.clone();
        edited.data.region = Some("Beijing".into());
        edited.data.tags.push("new".into());
        let undone = unmerge_profile(&survivor, &merged, &edited);
        assert_eq!(undone.data.region.as_deref(), Some("Beijing"));
        assert_eq!(undone.data.tags, vec!["vip", "new"]);
        assert_eq!(undone.data.phone, None);
        assert!(undone.data.contact_points.is_empty());
    }
}
