//! Surveys: CSAT (1–5), NPS (0–10: promoters, passives, detractors), SERVQUAL (the 22-item
//! structure of Parasuraman, Zeithaml & Berry, 1988 — tangibles 4 items, reliability 5,
//! responsiveness 4, assurance 4, empathy 5 — each answered on a 7-point scale for what the
//! customer expects and for what they experienced, and a 100-point split of importance across
//! the five dimensions) and custom surveys (scale, choice and text questions).
//!
//! A survey is a definition (questions in every language the business writes them in); an
//! answer is checked against it here, and the scores a report needs are computed once, when
//! the answer is recorded.

use std::collections::BTreeMap;

use crate::text_enum;
use crate::validation::{Collector, FieldError, Invalid};

text_enum! {
    pub enum SurveyKind {
        Csat => "csat",
        Nps => "nps",
        Servqual => "servqual",
        Custom => "custom",
    }
}

text_enum! {
    /// Where an NPS answer puts the customer.
    pub enum NpsGroup {
        /// 9–10.
        Promoter => "promoter",
        /// 7–8.
        Passive => "passive",
        /// 0–6.
        Detractor => "detractor",
    }
}

text_enum! {
    /// The five SERVQUAL dimensions.
    pub enum Dimension {
        Tangibles => "tangibles",
        Reliability => "reliability",
        Responsiveness => "responsiveness",
        Assurance => "assurance",
        Empathy => "empathy",
    }
}

text_enum! {
    pub enum QuestionKind {
        /// A whole number between `min` and `max`.
        Scale => "scale",
        /// One of the options.
        Choice => "choice",
        /// Free text.
        Text => "text",
    }
}

impl NpsGroup {
    pub fn of(score: i64) -> NpsGroup {
        match score {
            9.. => NpsGroup::Promoter,
            7..=8 => NpsGroup::Passive,
            _ => NpsGroup::Detractor,
        }
    }
}

/// Net Promoter Score: percent promoters minus percent detractors.
pub fn nps(promoters: i64, passives: i64, detractors: i64) -> Option<f64> {
    let n = promoters + passives + detractors;
    (n > 0).then(|| (promoters - detractors) as f64 * 100.0 / n as f64)
}

/// Text in several languages: `{"en": "...", "zh-CN": "..."}`.
pub type Localized = BTreeMap<String, String>;

/// The languages a survey is written in.
pub const LOCALES: [&str; 3] = ["en", "zh-CN", "zh-TW"];

/// The text for `locale`: that language, the other Chinese script, English, or any.
pub fn localized<'a>(l: &'a Localized, locale: &str) -> &'a str {
    let fallback = match locale {
        "zh-CN" => "zh-TW",
        "zh-TW" => "zh-CN",
        _ => "en",
    };
    l.get(locale)
        .or_else(|| l.get(fallback))
        .or_else(|| l.get("en"))
        .or_else(|| l.values().next())
        .map_or("", String::as_str)
}

fn loc(en: &str, cn: &str, tw: &str) -> Localized {
    [("en", en), ("zh-CN", cn), ("zh-TW", tw)]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect()
}

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct ChoiceOption {
    pub id: String,
    pub label: Localized,
}

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct Question {
    /// `a-z`, digits and `_`; answers name it.
    pub id: String,
    pub kind: QuestionKind,
    pub text: Localized,
    /// The scale's ends (scale questions).
    #[serde(default)]
    pub min: i64,
    #[serde(default)]
    pub max: i64,
    /// The scale's end labels, `[low, high]` (scale questions, optional).
    #[serde(default)]
    pub labels: Vec<Localized>,
    #[serde(default)]
    pub options: Vec<ChoiceOption>,
    #[serde(default)]
    pub required: bool,
    /// The SERVQUAL dimension of an item.
    #[serde(default)]
    pub dimension: Option<Dimension>,
}

/// A survey's questions, in every language it is written in.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct SurveyDefinition {
    pub title: Localized,
    #[serde(default)]
    pub intro: Localized,
    pub questions: Vec<Question>,
}

fn scale(id: &str, text: Localized, min: i64, max: i64, labels: Vec<Localized>) -> Question {
    Question {
        id: id.into(),
        kind: QuestionKind::Scale,
        text,
        min,
        max,
        labels,
        options: Vec::new(),
        required: true,
        dimension: None,
    }
}

fn comment() -> Question {
    Question {
        id: "comment".into(),
        kind: QuestionKind::Text,
        text: loc(
            "Anything you would like to tell us?",
            "还有什么想告诉我们的吗？",
            "還有什麼想告訴我們的嗎？",
        ),
        min: 0,
        max: 0,
        labels: Vec::new(),
        options: Vec::new(),
        required: false,
        dimension: None,
    }
}

/// The 22 SERVQUAL items in our own words: id, dimension, English, simplified and
/// traditional Chinese.
const SERVQUAL_ITEMS: [(&str, Dimension, &str, &str, &str); 22] = [
    (
        "tan1",
        Dimension::Tangibles,
        "The equipment looks modern.",
        "设备现代、齐全。",
        "設備現代、齊全。",
    ),
    (
        "tan2",
        Dimension::Tangibles,
        "The premises are pleasant to be in.",
        "店面环境美观舒适。",
        "店面環境美觀舒適。",
    ),
    (
        "tan3",
        Dimension::Tangibles,
        "Staff are neat and well presented.",
        "员工衣着整洁、得体。",
        "員工衣著整潔、得體。",
    ),
    (
        "tan4",
        Dimension::Tangibles,
        "Leaflets, receipts and other materials look good.",
        "宣传单、票据等资料清晰美观。",
        "宣傳單、票據等資料清晰美觀。",
    ),
    (
        "rel1",
        Dimension::Reliability,
        "They do what they promise by the time they promise.",
        "承诺的事情按时做到。",
        "承諾的事情按時做到。",
    ),
    (
        "rel2",
        Dimension::Reliability,
        "When you have a problem, they sincerely try to solve it.",
        "遇到问题时，真心实意帮您解决。",
        "遇到問題時，真心實意幫您解決。",
    ),
    (
        "rel3",
        Dimension::Reliability,
        "They get it right the first time.",
        "第一次就把服务做好。",
        "第一次就把服務做好。",
    ),
    (
        "rel4",
        Dimension::Reliability,
        "They deliver at the time they say.",
        "在承诺的时间提供服务。",
        "在承諾的時間提供服務。",
    ),
    (
        "rel5",
        Dimension::Reliability,
        "Their bills and records are free of mistakes.",
        "账单与记录准确无误。",
        "帳單與記錄準確無誤。",
    ),
    (
        "res1",
        Dimension::Responsiveness,
        "They tell you exactly when things will be done.",
        "明确告诉您服务何时完成。",
        "明確告訴您服務何時完成。",
    ),
    (
        "res2",
        Dimension::Responsiveness,
        "Staff serve you promptly.",
        "员工迅速为您服务。",
        "員工迅速為您服務。",
    ),
    (
        "res3",
        Dimension::Responsiveness,
        "Staff are always willing to help.",
        "员工总是乐于帮助您。",
        "員工總是樂於幫助您。",
    ),
    (
        "res4",
        Dimension::Responsiveness,
        "Staff are never too busy to answer you.",
        "员工再忙也会回应您的请求。",
        "員工再忙也會回應您的請求。",
    ),
    (
        "ass1",
        Dimension::Assurance,
        "The way staff behave gives you confidence.",
        "员工的言行让您放心。",
        "員工的言行讓您放心。",
    ),
    (
        "ass2",
        Dimension::Assurance,
        "You feel safe dealing with them.",
        "与他们打交道让您感到安心。",
        "與他們打交道讓您感到安心。",
    ),
    (
        "ass3",
        Dimension::Assurance,
        "Staff are courteous every time.",
        "员工始终彬彬有礼。",
        "員工始終彬彬有禮。",
    ),
    (
        "ass4",
        Dimension::Assurance,
        "Staff know enough to answer your questions.",
        "员工具备解答您问题的专业知识。",
        "員工具備解答您問題的專業知識。",
    ),
    (
        "emp1",
        Dimension::Empathy,
        "They pay attention to you as an individual.",
        "给予您个别的关照。",
        "給予您個別的關照。",
    ),
    (
        "emp2",
        Dimension::Empathy,
        "Their opening hours suit you.",
        "营业时间方便您。",
        "營業時間方便您。",
    ),
    (
        "emp3",
        Dimension::Empathy,
        "Staff give you personal care.",
        "员工对您给予贴心的关注。",
        "員工對您給予貼心的關注。",
    ),
    (
        "emp4",
        Dimension::Empathy,
        "They have your best interests at heart.",
        "真正把您的利益放在心上。",
        "真正把您的利益放在心上。",
    ),
    (
        "emp5",
        Dimension::Empathy,
        "Staff understand what you in particular need.",
        "员工了解您的具体需求。",
        "員工了解您的具體需求。",
    ),
];

/// How many items each dimension has in SERVQUAL.
pub const SERVQUAL_ITEM_COUNTS: [(Dimension, usize); 5] = [
    (Dimension::Tangibles, 4),
    (Dimension::Reliability, 5),
    (Dimension::Responsiveness, 4),
    (Dimension::Assurance, 4),
    (Dimension::Empathy, 5),
];

/// The dimension of a SERVQUAL item id (`tan1` … `emp5`).
pub fn item_dimension(id: &str) -> Option<Dimension> {
    SERVQUAL_ITEMS.iter().find(|i| i.0 == id).map(|i| i.1)
}

/// The ids of the SERVQUAL items, in order.
pub fn servqual_items() -> impl Iterator<Item = (&'static str, Dimension)> {
    SERVQUAL_ITEMS.iter().map(|i| (i.0, i.1))
}

impl SurveyKind {
    /// The survey a business starts from: the standard question(s) in three languages.
    pub fn template(self) -> SurveyDefinition {
        match self {
            SurveyKind::Csat => SurveyDefinition {
                title: loc(
                    "How did we do?",
                    "您对我们的服务满意吗？",
                    "您對我們的服務滿意嗎？",
                ),
                intro: Localized::new(),
                questions: vec![
                    scale(
                        "score",
                        loc(
                            "How satisfied are you with the help you received?",
                            "您对获得的帮助满意吗？",
                            "您對獲得的幫助滿意嗎？",
                        ),
                        1,
                        5,
                        vec![
                            loc("Very dissatisfied", "非常不满意", "非常不滿意"),
                            loc("Very satisfied", "非常满意", "非常滿意"),
                        ],
                    ),
                    comment(),
                ],
            },
            SurveyKind::Nps => SurveyDefinition {
                title: loc(
                    "Would you recommend us?",
                    "您会推荐我们吗？",
                    "您會推薦我們嗎？",
                ),
                intro: Localized::new(),
                questions: vec![
                    scale(
                        "score",
                        loc(
                            "How likely are you to recommend us to a friend or colleague?",
                            "您向朋友或同事推荐我们的可能性有多大？",
                            "您向朋友或同事推薦我們的可能性有多大？",
                        ),
                        0,
                        10,
                        vec![
                            loc("Not at all likely", "完全不可能", "完全不可能"),
                            loc("Extremely likely", "极有可能", "極有可能"),
                        ],
                    ),
                    comment(),
                ],
            },
            SurveyKind::Servqual => SurveyDefinition {
                title: loc(
                    "Your expectations and your experience",
                    "您的期望与实际体验",
                    "您的期望與實際體驗",
                ),
                intro: loc(
                    "For each statement, say how much it should hold for an excellent business (expectation) and how much it holds for us (experience): 1 strongly disagree, 7 strongly agree. Then share 100 points among the five areas by how much each matters to you.",
                    "请就每一项说明：优秀的商家应当做到什么程度（期望），我们实际做到什么程度（体验）：1 表示非常不同意，7 表示非常同意。最后按重要程度把 100 分分配给五个方面。",
                    "請就每一項說明：優秀的商家應當做到什麼程度（期望），我們實際做到什麼程度（體驗）：1 表示非常不同意，7 表示非常同意。最後按重要程度把 100 分分配給五個方面。",
                ),
                questions: SERVQUAL_ITEMS
                    .iter()
                    .map(|(id, d, en, cn, tw)| Question {
                        dimension: Some(*d),
                        ..scale(id, loc(en, cn, tw), 1, 7, Vec::new())
                    })
                    .collect(),
            },
            SurveyKind::Custom => SurveyDefinition {
                title: loc("A few questions", "几个小问题", "幾個小問題"),
                intro: Localized::new(),
                questions: vec![comment()],
            },
        }
    }
}

/// Most questions a custom survey may have.
pub const QUESTIONS_MAX: usize = 50;
const TEXT_MAX: usize = 2_000;

fn valid_id(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 40
        && s.chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
}

fn check_localized(errors: &mut Vec<FieldError>, field: &str, l: &Localized, required: bool) {
    if required && l.values().all(|v| v.trim().is_empty()) {
        errors.push(FieldError::new(
            field,
            "needs a text in at least one language",
        ));
    }
    for (k, v) in l {
        if !LOCALES.contains(&k.as_str()) {
            errors.push(FieldError::new(
                format!("{field}.{k}"),
                format!("is not a language of Tenure ({})", LOCALES.join(", ")),
            ));
        } else if v.chars().count() > TEXT_MAX {
            errors.push(FieldError::new(
                format!("{field}.{k}"),
                format!("must be at most {TEXT_MAX} characters"),
            ));
        }
    }
}

impl SurveyDefinition {
    /// Checks the definition for a survey of `kind`: the standard surveys keep their
    /// structure (the scale of CSAT and NPS, SERVQUAL's 22 items by dimension) and only
    /// their wording is the business's.
    pub fn check(&self, kind: SurveyKind) -> Result<(), Invalid> {
        let mut e = Vec::new();
        check_localized(&mut e, "title", &self.title, true);
        check_localized(&mut e, "intro", &self.intro, false);
        if self.questions.is_empty() || self.questions.len() > QUESTIONS_MAX {
            e.push(FieldError::new(
                "questions",
                format!("needs 1 to {QUESTIONS_MAX} questions"),
            ));
        }
        let mut seen = std::collections::HashSet::new();
        for (i, q) in self.questions.iter().enumerate() {
            let f = |name: &str| format!("questions[{i}].{name}");
            if !valid_id(&q.id) {
                e.push(FieldError::new(
                    f("id"),
                    "must be 1 to 40 lowercase letters, digits or _",
                ));
            } else if !seen.insert(q.id.as_str()) {
                e.push(FieldError::new(
                    f("id"),
                    format!("{:?} is used twice", q.id),
                ));
            }
            check_localized(&mut e, &f("text"), &q.text, true);
            match q.kind {
                QuestionKind::Scale => {
                    if q.min < 0 || q.max > 100 || q.min >= q.max || q.max - q.min > 20 {
                        e.push(FieldError::new(
                            f("max"),
                            "a scale needs 0 <= min < max <= 100 with at most 21 points",
                        ));
                    }
                    if !(q.labels.is_empty() || q.labels.len() == 2) {
                        e.push(FieldError::new(f("labels"), "needs a low and a high label"));
                    }
                }
                QuestionKind::Choice => {
                    if q.options.len() < 2 || q.options.len() > 20 {
                        e.push(FieldError::new(f("options"), "needs 2 to 20 options"));
                    }
                    let mut ids = std::collections::HashSet::new();
                    for (j, o) in q.options.iter().enumerate() {
                        if !valid_id(&o.id) || !ids.insert(o.id.as_str()) {
                            e.push(FieldError::new(
                                format!("questions[{i}].options[{j}].id"),
                                "must be a distinct id of lowercase letters, digits or _",
                            ));
                        }
                        check_localized(
                            &mut e,
                            &format!("questions[{i}].options[{j}].label"),
                            &o.label,
                            true,
                        );
                    }
                }
                QuestionKind::Text => {}
            }
            if kind != SurveyKind::Servqual && q.dimension.is_some() {
                e.push(FieldError::new(
                    f("dimension"),
                    "only SERVQUAL items have a dimension",
                ));
            }
        }
        let score = self.questions.iter().find(|q| q.id == "score");
        match kind {
            SurveyKind::Csat | SurveyKind::Nps => {
                let (min, max) = if kind == SurveyKind::Csat {
                    (1, 5)
                } else {
                    (0, 10)
                };
                if !score.is_some_and(|q| {
                    q.kind == QuestionKind::Scale && q.min == min && q.max == max && q.required
                }) {
                    e.push(FieldError::new(
                        "questions",
                        format!(
                            "a {kind} survey needs a required scale question \"score\" from {min} to {max}"
                        ),
                    ));
                }
            }
            SurveyKind::Servqual => {
                let items: Vec<(&str, Option<Dimension>)> = self
                    .questions
                    .iter()
                    .map(|q| (q.id.as_str(), q.dimension))
                    .collect();
                let standard: Vec<(&str, Option<Dimension>)> =
                    servqual_items().map(|(i, d)| (i, Some(d))).collect();
                let scales_ok = self
                    .questions
                    .iter()
                    .all(|q| q.kind == QuestionKind::Scale && q.min == 1 && q.max == 7);
                if items != standard || !scales_ok {
                    e.push(FieldError::new(
                        "questions",
                        "a SERVQUAL survey has the 22 items tan1–tan4, rel1–rel5, res1–res4, ass1–ass4 and emp1–emp5 in that order, each on a 1–7 scale; only their wording can change",
                    ));
                }
            }
            SurveyKind::Custom => {}
        }
        if e.is_empty() {
            Ok(())
        } else {
            Err(Invalid(e))
        }
    }
}

/// One answer as given. For SERVQUAL items `value` is the perception (what the customer
/// experienced) and `expectation` what they expect of an excellent business.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct AnswerInput {
    pub question: String,
    #[serde(default)]
    pub value: Option<i64>,
    #[serde(default)]
    pub expectation: Option<i64>,
    #[serde(default)]
    pub choice: Option<String>,
    #[serde(default)]
    pub text: Option<String>,
}

/// The customer's 100 points of importance across the SERVQUAL dimensions.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct Importance {
    pub tangibles: i64,
    pub reliability: i64,
    pub responsiveness: i64,
    pub assurance: i64,
    pub empathy: i64,
}

impl Importance {
    pub fn get(&self, d: Dimension) -> i64 {
        match d {
            Dimension::Tangibles => self.tangibles,
            Dimension::Reliability => self.reliability,
            Dimension::Responsiveness => self.responsiveness,
            Dimension::Assurance => self.assurance,
            Dimension::Empathy => self.empathy,
        }
    }
}

/// A SERVQUAL answer's means per dimension (in [`Dimension::ALL`] order).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ServqualScores {
    pub expectation: [f64; 5],
    pub perception: [f64; 5],
    pub importance: Option<Importance>,
}

impl ServqualScores {
    pub fn gap(&self, i: usize) -> f64 {
        self.perception[i] - self.expectation[i]
    }

    /// The unweighted gap: the mean of the five dimensions' gaps.
    pub fn overall(&self) -> f64 {
        (0..5).map(|i| self.gap(i)).sum::<f64>() / 5.0
    }

    /// The gap weighted by the customer's importance split, when they gave one.
    pub fn weighted(&self) -> Option<f64> {
        let w = self.importance?;
        Some(
            Dimension::ALL
                .iter()
                .enumerate()
                .map(|(i, d)| self.gap(i) * w.get(*d) as f64 / 100.0)
                .sum(),
        )
    }
}

/// A checked answer.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Answer {
    pub question: String,
    pub value: Option<i64>,
    pub expectation: Option<i64>,
    pub choice: Option<String>,
    pub text: Option<String>,
}

/// A whole response, checked, with the scores reports read.
#[derive(Debug, Clone, PartialEq)]
pub struct CheckedResponse {
    /// CSAT 1–5 or NPS 0–10.
    pub score: Option<i64>,
    pub nps_group: Option<NpsGroup>,
    /// The free-text `comment`, when given.
    pub comment: Option<String>,
    pub answers: Vec<Answer>,
    pub servqual: Option<ServqualScores>,
}

/// Checks answers against a survey: every required question answered, values on their
/// scales, choices among the options, no unknown questions or answers twice.
pub fn check_response(
    kind: SurveyKind,
    def: &SurveyDefinition,
    answers: &[AnswerInput],
    importance: Option<Importance>,
) -> Result<CheckedResponse, Invalid> {
    let mut c = Collector::new();
    let mut out = Vec::new();
    let mut seen = std::collections::HashSet::new();
    for (i, a) in answers.iter().enumerate() {
        let f = |n: &str| format!("answers[{i}].{n}");
        let Some(q) = def.questions.iter().find(|q| q.id == a.question) else {
            c.push(
                &f("question"),
                format!("the survey has no question {:?}", a.question),
            );
            continue;
        };
        if !seen.insert(q.id.as_str()) {
            c.push(&f("question"), format!("{:?} is answered twice", q.id));
            continue;
        }
        let in_scale = |v: i64| (q.min..=q.max).contains(&v);
        let mut answer = Answer {
            question: q.id.clone(),
            value: None,
            expectation: None,
            choice: None,
            text: None,
        };
        match q.kind {
            QuestionKind::Scale => {
                match a.value {
                    Some(v) if in_scale(v) => answer.value = Some(v),
                    Some(_) => c.push(&f("value"), format!("must be {} to {}", q.min, q.max)),
                    None if q.required => c.push(&f("value"), "is required"),
                    None => {}
                }
                if kind == SurveyKind::Servqual {
                    match a.expectation {
                        Some(v) if in_scale(v) => answer.expectation = Some(v),
                        Some(_) => {
                            c.push(&f("expectation"), format!("must be {} to {}", q.min, q.max))
                        }
                        None => c.push(&f("expectation"), "is required"),
                    }
                } else if a.expectation.is_some() {
                    c.push(&f("expectation"), "only SERVQUAL items have an expectation");
                }
            }
            QuestionKind::Choice => match &a.choice {
                Some(ch) if q.options.iter().any(|o| &o.id == ch) => {
                    answer.choice = Some(ch.clone())
                }
                Some(_) => c.push(&f("choice"), "is not one of the question's options"),
                None if q.required => c.push(&f("choice"), "is required"),
                None => {}
            },
            QuestionKind::Text => {
                let t = a.text.as_deref().unwrap_or("").trim();
                if t.chars().count() > TEXT_MAX {
                    c.push(&f("text"), format!("must be at most {TEXT_MAX} characters"));
                } else if t.is_empty() && q.required {
                    c.push(&f("text"), "is required");
                } else if !t.is_empty() {
                    answer.text = Some(t.to_owned());
                }
            }
        }
        out.push(answer);
    }
    for q in &def.questions {
        if q.required && !seen.contains(q.id.as_str()) {
            c.push("answers", format!("question {:?} is not answered", q.id));
        }
    }
    let servqual = if kind == SurveyKind::Servqual {
        if let Some(w) = importance {
            let parts = Dimension::ALL.iter().map(|d| w.get(*d));
            if parts.clone().any(|p| !(0..=100).contains(&p)) || parts.sum::<i64>() != 100 {
                c.push(
                    "importance",
                    "the five dimensions' points must be 0 to 100 each and add up to 100",
                );
            }
        }
        let mut sums = [(0.0, 0.0, 0u32); 5];
        for a in &out {
            if let (Some(d), Some(p), Some(e)) =
                (item_dimension(&a.question), a.value, a.expectation)
            {
                let s = &mut sums[Dimension::ALL.iter().position(|x| *x == d).unwrap_or(0)];
                s.0 += e as f64;
                s.1 += p as f64;
                s.2 += 1;
            }
        }
        let mean = |s: f64, n: u32| if n == 0 { 0.0 } else { s / f64::from(n) };
        Some(ServqualScores {
            expectation: sums.map(|s| mean(s.0, s.2)),
            perception: sums.map(|s| mean(s.1, s.2)),
            importance,
        })
    } else {
        if importance.is_some() {
            c.push("importance", "only a SERVQUAL survey asks for importance");
        }
        None
    };
    c.finish()?;
    let score = match kind {
        SurveyKind::Csat | SurveyKind::Nps => out
            .iter()
            .find(|a| a.question == "score")
            .and_then(|a| a.value),
        _ => None,
    };
    Ok(CheckedResponse {
        score,
        nps_group: (kind == SurveyKind::Nps)
            .then(|| score.map(NpsGroup::of))
            .flatten(),
        comment: out
            .iter()
            .find(|a| a.question == "comment")
            .and_then(|a| a.text.clone()),
        answers: out,
        servqual,
    })
}

/// Invitation tokens: 20 random bytes as 40 lowercase hex digits.
pub const TOKEN_LEN: usize = 40;

/// Whether `t` could be a token at all (anything else is refused before a lookup).
pub fn token_shape(t: &str) -> bool {
    t.len() == TOKEN_LEN
        && t.bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ans(q: &str, value: i64, expectation: Option<i64>) -> AnswerInput {
        AnswerInput {
            question: q.into(),
            value: Some(value),
            expectation,
            ..AnswerInput::default()
        }
    }

    #[test]
    fn nps_groups_and_score() {
        assert_eq!(NpsGroup::of(10), NpsGroup::Promoter);
        assert_eq!(NpsGroup::of(9), NpsGroup::Promoter);
        assert_eq!(NpsGroup::of(8), NpsGroup::Passive);
        assert_eq!(NpsGroup::of(7), NpsGroup::Passive);
        assert_eq!(NpsGroup::of(6), NpsGroup::Detractor);
        assert_eq!(NpsGroup::of(0), NpsGroup::Detractor);
        assert_eq!(nps(5, 3, 2), Some(30.0));
        assert_eq!(nps(0, 0, 0), None);
    }

    #[test]
    fn the_templates_pass_their_own_checks() {
        for k in SurveyKind::ALL {
            k.template().check(*k).unwrap();
        }
        let sq = SurveyKind::Servqual.template();
        let counts: Vec<usize> = SERVQUAL_ITEM_COUNTS
            .iter()
            .map(|(d, _)| {
                sq.questions
                    .iter()
                    .filter(|q| q.dimension == Some(*d))
                    .count()
            })
            .collect();
        assert_eq!(counts, [4, 5, 4, 4, 5]);
        for q in &sq.questions {
            for l in LOCALES {
                assert!(!localized(&q.text, l).is_empty());
            }
        }
    }

    #[test]
    fn a_standard_survey_keeps_its_structure() {
        let mut nps_def = SurveyKind::Nps.template();
        nps_def.questions[0].max = 5;
        assert!(nps_def.check(SurveyKind::Nps).is_err());
        let mut sq = SurveyKind::Servqual.template();
        sq.questions[0]
            .text
            .insert("en".into(), "Shiny tools.".into());
        assert!(sq.check(SurveyKind::Servqual).is_ok());
        sq.questions.pop();
        assert!(sq.check(SurveyKind::Servqual).is_err());
    }

    #[test]
    fn servqual_gaps_per_dimension_and_weighted() {
        let def = SurveyKind::Servqual.template();
        // Expect 6 everywhere; experience 6 except reliability (3) and empathy (5).
        let answers: Vec<AnswerInput> = servqual_items()
            .map(|(id, d)| {
                let p = match d {
                    Dimension::Reliability => 3,
                    Dimension::Empathy => 5,
                    _ => 6,
                };
                ans(id, p, Some(6))
            })
            .collect();
        let w = Importance {
            tangibles: 10,
            reliability: 40,
            responsiveness: 20,
            assurance: 10,
            empathy: 20,
        };
        let r = check_response(SurveyKind::Servqual, &def, &answers, Some(w)).unwrap();
        let s = r.servqual.unwrap();
        assert_eq!(s.gap(1), -3.0);
        assert_eq!(s.gap(4), -1.0);
        assert!((s.overall() - (-4.0 / 5.0)).abs() < 1e-12);
        assert!((s.weighted().unwrap() - (-3.0 * 0.4 - 0.2)).abs() < 1e-12);
        let bad = Importance { tangibles: 50, ..w };
        assert!(check_response(SurveyKind::Servqual, &def, &answers, Some(bad)).is_err());
    }

    #[test]
    fn answers_are_checked_against_the_questions() {
        let def = SurveyKind::Csat.template();
        let ok = check_response(SurveyKind::Csat, &def, &[ans("score", 2, None)], None).unwrap();
        assert_eq!(ok.score, Some(2));
        assert_eq!(ok.nps_group, None);
        let e = check_response(
            SurveyKind::Csat,
            &def,
            &[ans("score", 9, None), ans("nope", 1, None)],
            None,
        )
        .unwrap_err();
        let fields: Vec<&str> = e.0.iter().map(|f| f.field.as_str()).collect();
        assert_eq!(fields, ["answers[0].value", "answers[1].question"]);
        let e = check_response(SurveyKind::Csat, &def, &[], None).unwrap_err();
        assert!(e.0[0].message.contains("\"score\" is not answered"));
        let n = check_response(
            SurveyKind::Nps,
            &SurveyKind::Nps.template(),
            &[ans("score", 6, None)],
            None,
        )
        .unwrap();
        assert_eq!(n.nps_group, Some(NpsGroup::Detractor));
    }

    #[test]
    fn tokens_have_one_shape() {
        assert!(token_shape(&"ab".repeat(20)));
        assert!(!token_shape(&"AB".repeat(20)));
        assert!(!token_shape("abc"));
        assert!(!token_shape(&"zz".repeat(20)));
    }
}
