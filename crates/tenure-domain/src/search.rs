//! Search terms: what is indexed for a customer, and how a query becomes term prefixes.
//!
//! The index holds, per customer, a set of short terms. A query matches a customer when
//! each of its parts is a prefix of one of the customer's terms. So that a partial Chinese
//! name ("小明" in "王小明") matches, every suffix of a run of CJK characters is a term;
//! Latin names are split into words, each a term, which gives word-prefix matching
//! ("joh smi" finds "John Smith"). Emails, phone digits and external ids are terms too.
//! A Chinese name is also indexed in pinyin without tones, whole and as initials, from
//! each of its characters on: `liminglang`, `lml`, `minglang`, `ml`, … so that staff who
//! type romanised find 李明朗 (`lml`, `limi`, `minglang`). A character read several ways
//! adds each reading (at most a few per name).

/// Longest CJK run indexed; longer runs are cut (names are never this long).
const CJK_RUN_MAX: usize = 16;
/// Longest term kept.
const TERM_MAX: usize = 64;
/// At most this many query parts are used.
pub const QUERY_PARTS_MAX: usize = 4;

/// Whether `c` is a CJK ideograph or a kana/hangul character (scripts written without
/// spaces between words).
pub fn is_cjk(c: char) -> bool {
    matches!(c as u32,
        0x3040..=0x30FF      // Hiragana, Katakana
        | 0x3400..=0x4DBF    // CJK Extension A
        | 0x4E00..=0x9FFF    // CJK Unified Ideographs
        | 0xAC00..=0xD7AF    // Hangul syllables
        | 0xF900..=0xFAFF    // CJK Compatibility Ideographs
        | 0x20000..=0x2FA1F) // Extensions B.. and compatibility supplement
}

fn truncate(s: &str, max: usize) -> String {
    s.chars().take(max).collect()
}

/// Splits text into lower-cased Latin words and CJK runs.
pub(crate) fn pieces(text: &str) -> Vec<(bool, String)> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut cur_cjk = false;
    for c in text.chars() {
        let cjk = is_cjk(c);
        let word = cjk || c.is_alphanumeric();
        if (!word || cjk != cur_cjk) && !cur.is_empty() {
            out.push((cur_cjk, std::mem::take(&mut cur)));
        }
        if word {
            cur_cjk = cjk;
            cur.extend(c.to_lowercase());
        }
    }
    if !cur.is_empty() {
        out.push((cur_cjk, cur));
    }
    out
}

/// What is indexed for one customer.
#[derive(Debug, Default)]
pub struct Indexed<'a> {
    pub names: Vec<&'a str>,
    pub emails: Vec<&'a str>,
    pub phones: Vec<&'a str>,
    pub external_id: Option<&'a str>,
}

/// The search terms of a customer, sorted and without duplicates.
pub fn terms(input: &Indexed<'_>) -> Vec<String> {
    let mut out = Vec::new();
    for name in &input.names {
        for (cjk, piece) in pieces(name) {
            if cjk {
                let chars: Vec<char> = piece.chars().take(CJK_RUN_MAX).collect();
                for i in 0..chars.len() {
                    out.push(chars[i..].iter().collect());
                }
                out.extend(pinyin_terms(&chars));
            } else {
                out.push(truncate(&piece, TERM_MAX));
            }
        }
    }
    for email in &input.emails {
        out.push(truncate(&email.to_lowercase(), TERM_MAX));
    }
    for phone in &input.phones {
        let digits = crate::customer::phone_digits(phone);
        // The number as written and without a country code of one to three digits, so
        // both "+86 138..." and "138..." find it.
        for skip in 0..=3 {
            if digits.len() >= skip + 6 {
                out.push(digits[skip..].to_owned());
            }
        }
    }
    if let Some(x) = input.external_id {
        out.push(truncate(&x.to_lowercase(), TERM_MAX));
        // Its pieces too, because a query is split at punctuation ("CRM-42" → "crm", "42").
        out.extend(pieces(x).into_iter().map(|(_, p)| truncate(&p, TERM_MAX)));
    }
    out.sort();
    out.dedup();
    out
}

/// Readings of one character kept at most (heteronyms beyond are rare in names).
const READINGS_MAX: usize = 3;
/// Spellings of a whole name kept at most.
const SPELLINGS_MAX: usize = 8;

/// The pinyin terms of a run of CJK characters: for each suffix, its readings joined
/// (`liminglang`) and their initials (`lml`). Characters without a reading (kana,
/// hangul, rare ideographs) end the romanised part.
fn pinyin_terms(chars: &[char]) -> Vec<String> {
    use pinyin::ToPinyinMulti;
    let readings: Vec<Vec<&'static str>> = chars
        .iter()
        .map_while(|c| {
            let multi = c.to_pinyin_multi()?;
            let mut r: Vec<&'static str> = multi.into_iter().map(|p| p.plain()).collect();
            r.dedup();
            r.truncate(READINGS_MAX);
            Some(r)
        })
        .collect();
    let mut out = Vec::new();
    for start in 0..readings.len() {
        // Every combination of readings from `start` on, up to SPELLINGS_MAX.
        let mut spellings: Vec<(String, String)> = vec![(String::new(), String::new())];
        for r in &readings[start..] {
            let mut next = Vec::new();
            for (whole, initials) in &spellings {
                for p in r {
                    if next.len() < SPELLINGS_MAX {
                        let mut w = whole.clone();
                        w.push_str(p);
                        let mut i = initials.clone();
                        i.extend(p.chars().next());
                        next.push((w, i));
                    }
                }
            }
            spellings = next;
        }
        for (whole, initials) in spellings {
            out.push(truncate(&whole, TERM_MAX));
            out.push(initials);
        }
    }
    out
}

/// The prefixes a query must all match: emails and phone numbers stay whole, other text is
/// split like names. Empty when the query has nothing searchable.
pub fn query_prefixes(q: &str) -> Vec<String> {
    // Control characters never reach the index (and mark its duplicate keys).
    let q: String = q.chars().filter(|c| !c.is_control()).collect();
    let q = q.trim();
    let mut parts: Vec<String> = if q.contains('@') {
        vec![truncate(&q.to_lowercase(), TERM_MAX)]
    } else if q.chars().filter(char::is_ascii_digit).count() >= 4
        && q.chars()
            .all(|c| c.is_ascii_digit() || " +-().".contains(c))
    {
        vec![crate::customer::phone_digits(q)]
    } else {
        pieces(q)
            .into_iter()
            .map(|(cjk, p)| truncate(&p, if cjk { CJK_RUN_MAX } else { TERM_MAX }))
            .collect()
    };
    parts.sort();
    parts.dedup();
    // A part that is a prefix of another adds nothing.
    let all = parts.clone();
    parts.retain(|p| !all.iter().any(|o| o != p && o.starts_with(p.as_str())));
    parts.truncate(QUERY_PARTS_MAX);
    parts
}

/// The smallest string greater than every string starting with `prefix`, for a range scan
/// `term >= prefix AND term < upper`. `None` when no such bound exists.
pub fn prefix_upper_bound(prefix: &str) -> Option<String> {
    let mut chars: Vec<char> = prefix.chars().collect();
    while let Some(last) = chars.pop() {
        let mut next = last as u32 + 1;
        if (0xD800..=0xDFFF).contains(&next) {
            next = 0xE000;
        }
        if let Some(c) = char::from_u32(next) {
            chars.push(c);
            return Some(chars.into_iter().collect());
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn matches(input: &Indexed<'_>, q: &str) -> bool {
        let ts = terms(input);
        let qs = query_prefixes(q);
        !qs.is_empty()
            && qs
                .iter()
                .all(|p| ts.iter().any(|t| t.starts_with(p.as_str())))
    }

    #[test]
    fn partial_chinese_names_match_anywhere_in_the_name() {
        let c = Indexed {
            names: vec!["王小明"],
            ..Default::default()
        };
        for q in ["王", "小明", "明", "王小明", "小"] {
            assert!(matches(&c, q), "{q}");
        }
        assert!(!matches(&c, "李"));
        assert!(!matches(&c, "明王"));
        let t = Indexed {
            names: vec!["陳大文"],
            ..Default::default()
        };
        assert!(matches(&t, "大文"));
    }

    #[test]
    fn chinese_names_match_by_pinyin_and_initials() {
        let c = Indexed {
            names: vec!["李明朗"],
            ..Default::default()
        };
        for q in [
            "lml",
            "liminglang",
            "limi",
            "LiMing",
            "minglang",
            "ml",
            "lang",
            "l",
        ] {
            assert!(matches(&c, q), "{q}");
        }
        for q in ["lmz", "wang", "mingli"] {
            assert!(!matches(&c, q), "{q}");
        }
        // A heteronym: 曾 reads zeng and ceng; the family name is zeng.
        let z = Indexed {
            names: vec!["曾小明"],
            ..Default::default()
        };
        assert!(matches(&z, "zxm") && matches(&z, "zengxiaoming"));
        // Traditional characters have readings too.
        let t = Indexed {
            names: vec!["陳大文"],
            ..Default::default()
        };
        assert!(matches(&t, "cdw") && matches(&t, "chendawen"));
    }

    #[test]
    fn latin_names_match_word_prefixes_in_any_order() {
        let c = Indexed {
            names: vec!["John Smith-Jones"],
            ..Default::default()
        };
        for q in ["joh", "SMI", "jones", "smith john", "j s"] {
            assert!(matches(&c, q), "{q}");
        }
        assert!(!matches(&c, "ohn"));
        assert!(!matches(&c, "john brown"));
    }

    #[test]
    fn mixed_scripts_split_into_words_and_runs() {
        let c = Indexed {
            names: vec!["Alex王"],
            ..Default::default()
        };
        assert!(matches(&c, "alex"));
        assert!(matches(&c, "王"));
    }

    #[test]
    fn emails_phones_and_external_ids_match() {
        let c = Indexed {
            names: vec!["Ann"],
            emails: vec!["Ann.Lee@Example.com"],
            phones: vec!["+86 138 0013 8000"],
            external_id: Some("CRM-00042"),
        };
        assert!(matches(&c, "ann.lee@example.com"));
        assert!(matches(&c, "ann.lee@"));
        assert!(matches(&c, "+86 138 0013 8000"));
        assert!(matches(&c, "13800138000"));
        assert!(matches(&c, "1380013"));
        assert!(matches(&c, "crm-00042"));
        assert!(!matches(&c, "bob@example.com"));
    }

    #[test]
    fn queries_without_words_have_no_prefixes() {
        assert!(query_prefixes("  ").is_empty());
        assert!(query_prefixes("!!!").is_empty());
    }

    #[test]
    fn upper_bounds_bracket_the_prefix() {
        assert_eq!(prefix_upper_bound("joh").as_deref(), Some("joi"));
        assert_eq!(prefix_upper_bound("小").as_deref(), Some("尐"));
        assert_eq!(prefix_upper_bound(""), None);
        let ub = prefix_upper_bound("王小").unwrap_or_default();
        assert!("王小明" < ub.as_str());
        assert!("王尐" >= ub.as_str());
    }
}

/// Where a page of search results ends: the matching term and the customer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SearchPosition {
    pub term: String,
    pub id: crate::ids::CustomerId,
}

impl crate::cursor::CursorKey for SearchPosition {
    const TAG: &'static str = "search";
    type Parts = (String, i64);

    fn to_parts(&self) -> (String, i64) {
        (self.term.clone(), self.id.0)
    }

    fn from_parts((term, id): (String, i64)) -> Option<Self> {
        (id > 0).then_some(SearchPosition {
            term,
            id: crate::ids::CustomerId(id),
        })
    }
}
