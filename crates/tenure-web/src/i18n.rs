//! The web application's three languages: Fluent message bundles (`locales/*.ftl`, built
//! into the binary), the choice of language for a request, and numbers, money and dates
//! written the way each language writes them.

use std::collections::HashMap;

use chrono::{Datelike, NaiveDate};
use fluent_bundle::concurrent::FluentBundle;
use fluent_bundle::{FluentArgs, FluentResource, FluentValue};

/// A language of the user interface.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Lang {
    En,
    /// Simplified Chinese (Mainland China, Singapore).
    ZhCn,
    /// Traditional Chinese (Taiwan, Hong Kong, Macao).
    ZhTw,
}

impl Lang {
    pub const ALL: [Lang; 3] = [Lang::En, Lang::ZhCn, Lang::ZhTw];

    /// The tag used in `?lang=` and in `<html lang>`.
    pub fn tag(self) -> &'static str {
        match self {
            Lang::En => "en",
            Lang::ZhCn => "zh-CN",
            Lang::ZhTw => "zh-TW",
        }
    }

    /// The language's own name, shown in the language menu.
    pub fn own_name(self) -> &'static str {
        match self {
            Lang::En => "English",
            Lang::ZhCn => "简体中文",
            Lang::ZhTw => "繁體中文",
        }
    }

    /// The language a tag names: exact tags first, then the fallbacks a Chinese reader
    /// expects (`zh`, `zh-Hans`, `zh-SG` → simplified; `zh-Hant`, `zh-HK`, `zh-MO` →
    /// traditional). `None` for languages the interface does not speak.
    pub fn from_tag(tag: &str) -> Option<Lang> {
        let tag = tag.trim().replace('_', "-").to_ascii_lowercase();
        let mut parts = tag.split('-');
        match parts.next()? {
            "en" => Some(Lang::En),
            "zh" => {
                let rest: Vec<&str> = parts.collect();
                if rest.contains(&"hant") {
                    Some(Lang::ZhTw)
                } else if rest.contains(&"hans") {
                    Some(Lang::ZhCn)
                } else if rest.iter().any(|r| matches!(*r, "tw" | "hk" | "mo")) {
                    Some(Lang::ZhTw)
                } else {
                    Some(Lang::ZhCn)
                }
            }
            _ => None,
        }
    }

    /// The best language for an `Accept-Language` header: the first, by quality, that the
    /// interface speaks; English when none.
    pub fn negotiate(accept: &str) -> Lang {
        let mut wanted: Vec<(f32, usize, &str)> = accept
            .split(',')
            .enumerate()
            .filter_map(|(i, part)| {
                let mut bits = part.split(';');
                let tag = bits.next()?.trim();
                let q = bits
                    .find_map(|b| b.trim().strip_prefix("q="))
                    .map_or(Some(1.0), |q| q.trim().parse::<f32>().ok())?;
                (q > 0.0 && !tag.is_empty()).then_some((q, i, tag))
            })
            .collect();
        wanted.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)));
        wanted
            .into_iter()
            .find_map(|(_, _, tag)| Lang::from_tag(tag))
            .unwrap_or(Lang::En)
    }

    fn source(self) -> &'static str {
        match self {
            Lang::En => include_str!("../locales/en.ftl"),
            Lang::ZhCn => include_str!("../locales/zh-CN.ftl"),
            Lang::ZhTw => include_str!("../locales/zh-TW.ftl"),
        }
    }

    /// Writes an integer with digit groups: `1,234,567` (the same in all three).
    pub fn number(self, n: i64) -> String {
        let digits = n.unsigned_abs().to_string();
        let mut out = String::with_capacity(digits.len() + digits.len() / 3 + 1);
        if n < 0 {
            out.push('-');
        }
        for (i, c) in digits.chars().enumerate() {
            if i > 0 && (digits.len() - i).is_multiple_of(3) {
                out.push(',');
            }
            out.push(c);
        }
        out
    }

    /// A decimal with `places` digits after the point and digit groups.
    pub fn decimal(self, v: f64, places: usize) -> String {
        if !v.is_finite() {
            return "–".into();
        }
        let s = format!("{:.*}", places, v.abs());
        let (int, frac) = s.split_once('.').unwrap_or((&s, ""));
        let int: i64 = int.parse().unwrap_or(0);
        let sign = if v < 0.0 && s.chars().any(|c| c.is_ascii_digit() && c != '0') {
            "-"
        } else {
            ""
        };
        if frac.is_empty() {
            format!("{sign}{}", self.number(int))
        } else {
            format!("{sign}{}.{frac}", self.number(int))
        }
    }

    /// A share as a percentage: `42.5%`.
    pub fn percent(self, share: f64) -> String {
        format!("{}%", self.decimal(share * 100.0, 1))
    }

    /// Money in minor units of `currency`: `¥1,234.50`, `$12.00`, `NT$300`, `1,234.50 CHF`.
    pub fn money_minor(self, minor: i64, currency: &str) -> String {
        let exp = tenure_domain::money::minor_exponent(currency);
        let value = minor as f64 / 10f64.powi(exp as i32);
        self.money(value, currency, exp as usize)
    }

    /// Money in whole units (as the models give it).
    pub fn money(self, value: f64, currency: &str, places: usize) -> String {
        let symbol = match (currency, self) {
            ("CNY", _) | ("JPY", _) => Some("¥"),
            ("USD", Lang::En) => Some("$"),
            ("USD", _) => Some("US$"),
            ("EUR", _) => Some("€"),
            ("GBP", _) => Some("£"),
            ("HKD", _) => Some("HK$"),
            ("TWD", _) => Some("NT$"),
            _ => None,
        };
        let amount = self.decimal(value.abs(), places);
        let sign = if value < 0.0 { "-" } else { "" };
        match symbol {
            Some(s) => format!("{sign}{s}{amount}"),
            None => format!("{sign}{amount} {currency}"),
        }
    }

    /// A date: `1 Dec 2026` in English, `2026年12月1日` in Chinese.
    pub fn date(self, d: NaiveDate) -> String {
        match self {
            Lang::En => d.format("%-d %b %Y").to_string(),
            Lang::ZhCn | Lang::ZhTw => format!("{}年{}月{}日", d.year(), d.month(), d.day()),
        }
    }

    /// A month: `Mar 2026` in English, `2026年3月` in Chinese.
    pub fn month(self, year: i32, month: u32) -> String {
        match self {
            Lang::En => NaiveDate::from_ymd_opt(year, month, 1)
                .map(|d| d.format("%b %Y").to_string())
                .unwrap_or_default(),
            Lang::ZhCn | Lang::ZhTw => format!("{year}年{month}月"),
        }
    }
}

/// Every language's messages.
pub struct Catalog {
    bundles: HashMap<Lang, FluentBundle<FluentResource>>,
}

impl std::fmt::Debug for Catalog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Catalog").finish_non_exhaustive()
    }
}

impl Catalog {
    /// Parses the built-in message files. A syntax error in one is a programming error
    /// caught by the tests; it is reported here rather than hidden.
    pub fn load() -> Result<Catalog, String> {
        let mut bundles = HashMap::new();
        for lang in Lang::ALL {
            let resource = FluentResource::try_new(lang.source().to_owned())
                .map_err(|(_, errors)| format!("{}: {errors:?}", lang.tag()))?;
            let id: unic_langid::LanguageIdentifier = lang
                .tag()
                .parse()
                .map_err(|e| format!("{}: {e}", lang.tag()))?;
            let mut bundle = FluentBundle::new_concurrent(vec![id]);
            // Bidirectional isolation marks would show up in attributes and tests.
            bundle.set_use_isolating(false);
            bundle
                .add_resource(resource)
                .map_err(|errors| format!("{}: {errors:?}", lang.tag()))?;
            bundles.insert(lang, bundle);
        }
        Ok(Catalog { bundles })
    }

    /// A catalog without messages: every key reads as itself.
    pub fn empty() -> Catalog {
        Catalog {
            bundles: HashMap::new(),
        }
    }

    /// The message `key` in `lang` with `args`; the key itself when missing (a test makes
    /// sure none is).
    pub fn message(&self, lang: Lang, key: &str, args: &[(&str, FluentValue<'_>)]) -> String {
        let Some(bundle) = self.bundles.get(&lang) else {
            return key.to_owned();
        };
        let (id, attr) = key
            .split_once('.')
            .map_or((key, None), |(m, a)| (m, Some(a)));
        let Some(msg) = bundle.get_message(id) else {
            return key.to_owned();
        };
        let pattern = match attr {
            Some(a) => msg.get_attribute(a).map(|a| a.value()),
            None => msg.value(),
        };
        let Some(pattern) = pattern else {
            return key.to_owned();
        };
        let mut fargs = FluentArgs::new();
        for (k, v) in args {
            fargs.set(*k, v.clone());
        }
        let mut errors = Vec::new();
        bundle
            .format_pattern(pattern, Some(&fargs), &mut errors)
            .into_owned()
    }

    /// Whether `lang` has the message (or attribute) `key`.
    pub fn has(&self, lang: Lang, key: &str) -> bool {
        let Some(bundle) = self.bundles.get(&lang) else {
            return false;
        };
        let (id, attr) = key
            .split_once('.')
            .map_or((key, None), |(m, a)| (m, Some(a)));
        bundle.get_message(id).is_some_and(|m| match attr {
            Some(a) => m.get_attribute(a).is_some(),
            None => m.value().is_some(),
        })
    }

    /// The message ids a language defines.
    pub fn ids(lang: Lang) -> Vec<String> {
        lang.source()
            .lines()
            .filter_map(|l| {
                let (id, _) = l.split_once('=')?;
                let id = id.trim_end();
                (!id.is_empty()
                    && id.chars().next().is_some_and(|c| c.is_ascii_alphabetic())
                    && id
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_'))
                .then(|| id.to_owned())
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chinese_readers_land_on_their_script() {
        for (header, lang) in [
            ("zh", Lang::ZhCn),
            ("zh-CN", Lang::ZhCn),
            ("zh-Hans", Lang::ZhCn),
            ("zh-Hans-CN", Lang::ZhCn),
            ("zh-SG", Lang::ZhCn),
            ("zh-TW", Lang::ZhTw),
            ("zh-Hant", Lang::ZhTw),
            ("zh-Hant-TW", Lang::ZhTw),
            ("zh-HK", Lang::ZhTw),
            ("zh-MO", Lang::ZhTw),
            ("zh_hk", Lang::ZhTw),
            ("en-GB,en;q=0.8", Lang::En),
            ("fr-FR, zh-HK;q=0.7, en;q=0.5", Lang::ZhTw),
            ("de, fr;q=0.5", Lang::En),
            ("en;q=0.3, zh-TW;q=0.9", Lang::ZhTw),
            ("zh-TW;q=0, zh-CN", Lang::ZhCn),
            ("", Lang::En),
            ("*", Lang::En),
        ] {
            assert_eq!(Lang::negotiate(header), lang, "{header}");
        }
    }

    #[test]
    fn every_language_has_every_message() {
        let en = Catalog::ids(Lang::En);
        assert!(en.len() > 50, "the English bundle is the reference");
        for lang in [Lang::ZhCn, Lang::ZhTw] {
            let ids = Catalog::ids(lang);
            let missing: Vec<&String> = en.iter().filter(|k| !ids.contains(k)).collect();
            let extra: Vec<&String> = ids.iter().filter(|k| !en.contains(k)).collect();
            assert!(missing.is_empty(), "{} lacks {missing:?}", lang.tag());
            assert!(extra.is_empty(), "{} has unknown {extra:?}", lang.tag());
        }
        let catalog = Catalog::load().unwrap_or_else(|e| panic!("{e}"));
        for lang in Lang::ALL {
            for id in &en {
                assert!(catalog.has(lang, id), "{}: {id} has no value", lang.tag());
            }
        }
    }

    #[test]
    fn numbers_money_and_dates_read_as_each_language_writes_them() {
        assert_eq!(Lang::En.number(1_234_567), "1,234,567");
        assert_eq!(Lang::En.number(-1000), "-1,000");
        assert_eq!(Lang::En.number(999), "999");
        assert_eq!(Lang::ZhCn.money_minor(123_450, "CNY"), "¥1,234.50");
        assert_eq!(Lang::En.money_minor(1_200, "USD"), "$12.00");
        assert_eq!(Lang::ZhTw.money_minor(1_200, "USD"), "US$12.00");
        assert_eq!(Lang::En.money_minor(300, "JPY"), "¥300");
        assert_eq!(Lang::En.money_minor(-250, "EUR"), "-€2.50");
        assert_eq!(Lang::En.money_minor(123_450, "CHF"), "1,234.50 CHF");
        let d = NaiveDate::from_ymd_opt(2026, 12, 1).unwrap_or_default();
        assert_eq!(Lang::ZhCn.date(d), "2026年12月1日");
        assert_eq!(Lang::ZhTw.date(d), "2026年12月1日");
        assert_eq!(Lang::En.date(d), "1 Dec 2026");
        assert_eq!(Lang::En.percent(0.425), "42.5%");
        assert_eq!(Lang::En.decimal(-0.001, 2), "0.00");
    }
}
