//! Segment filters: the small language in which staff describe a group of customers, and
//! the order in which segments built on other segments are worked out.
//!
//! A filter is a line of text such as
//!
//! ```text
//! stage = "at_risk" and (clv > 500 or tag in ("vip", "b2b")) and not in_segment("staff")
//! ```
//!
//! - A condition compares a field with a value: `field op value` with `op` one of `=`,
//!   `!=`, `<`, `<=`, `>`, `>=` (`==` is read as `=`, `<>` as `!=`), or checks a list:
//!   `field in (v1, v2, ...)`, `field not in (...)`.
//! - Conditions combine with `and`, `or`, `not` and parentheses; `not` binds tightest, then
//!   `and`, then `or`. Keywords, field names and function names ignore case.
//! - Values are text in double (or single) quotes with `\"` and `\\` escapes, numbers
//!   (whole or decimal, optionally negative), dates written as text `"YYYY-MM-DD"`, and
//!   `true` / `false`. Curly quotes and full-width parentheses and commas read as the
//!   plain ones.
//! - `in_segment("name")` is true for the customers of another segment; `has(email)` (also
//!   `phone`, `birthday`) for those whose profile has that field filled in. `true` and
//!   `false` on their own are conditions that hold for everyone and no one.
//! - For `tag`, `tag = "x"` means the customer has the tag `x`, `tag != "x"` that they do
//!   not, `tag in (...)` that they have at least one of them and `tag not in (...)` none.
//! - A filter is at most [`MAX_LENGTH`] characters and nests parentheses and `not` at most
//!   [`MAX_DEPTH`] deep.
//!
//! [`parse`] checks every value against its field's type, so the [`Expr`] it returns
//! carries values ready to be bound as query parameters: money, probabilities and other
//! numbers as [`Value::Decimal`], counts and scores as [`Value::Int`], dates as
//! [`Value::Date`]. A filter that does not parse yields a [`ParseError`] with the position
//! of the offending text and a message a shop manager can act on. `docs/segments.md`
//! describes the language for the people who write filters.

use std::collections::HashSet;
use std::fmt;

use chrono::NaiveDate;

/// Longest filter accepted, in characters.
pub const MAX_LENGTH: usize = 4000;

/// Deepest nesting of parentheses and `not` accepted. Real filters stay far below it; the
/// limit keeps a pasted or generated filter from exhausting the stack.
pub const MAX_DEPTH: usize = 32;

/// The spellings of the lifecycle stages.
const STAGES: &[&str] = &[
    "potential",
    "prospect",
    "new",
    "active",
    "loyal",
    "at_risk",
    "churned",
    "won_back",
];

/// The spellings of the NPS groups.
const NPS_GROUPS: &[&str] = &["promoter", "passive", "detractor"];

/// The spellings of the reasons a customer was lost.
const LOSS_REASONS: &[&str] = &[
    "price",
    "poor_service",
    "product_quality",
    "slow_response",
    "competitor",
    "moved",
    "other",
    "unknown",
];

/// The spellings of the RFM segments.
const RFM_SEGMENTS: &[&str] = &[
    "champions",
    "loyal",
    "potential_loyalists",
    "new",
    "promising",
    "need_attention",
    "about_to_sleep",
    "at_risk",
    "cant_lose_them",
    "hibernating",
    "lost",
];

/// The spellings of the customer kinds.
const CUSTOMER_KINDS: &[&str] = &["person", "organisation"];

/// Names that will become fields once the part of Tenure that fills them in is set up,
/// with the reason they cannot be used yet. They get their own message so that nobody
/// takes them for a misspelling.
const RESERVED: &[(&str, &str)] = &[];

/// The function names, for suggestions when an unknown one is called.
const FUNCTIONS: &[&str] = &["in_segment", "has"];

/// What a filter may look at.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Field {
    Stage,
    RfmSegment,
    Kind,
    LossReason,
    Region,
    Locale,
    AcquisitionChannel,
    AcquisitionSource,
    /// One of the customer's tags: a condition on `Tag` is about whether the customer has
    /// the tag, so `Cmp { Tag, Eq, "x" }` holds when they have `x`, `Cmp { Tag, Ne, "x" }`
    /// when they do not, `In { Tag, .. }` when they have any of the values and
    /// `In { Tag, negated: true, .. }` when they have none of them.
    Tag,
    R,
    F,
    M,
    Orders,
    RecencyDays,
    Interactions,
    Spend,
    Clv,
    ExpectedValue,
    PAlive,
    ChurnRisk,
    ExpectedPurchases,
    FirstPurchase,
    LastPurchase,
    LastContact,
    Created,
    StageSince,
    ProspectParked,
    Email,
    Phone,
    Birthday,
    Tier,
    Points,
    NpsGroup,
    Csat,
    OpenTickets,
}

/// The type of a field, which decides the values and comparisons it accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FieldType {
    /// Text from a fixed list of spellings.
    Enum(&'static [&'static str]),
    /// Free text: compared for equality only.
    Text,
    /// A whole number.
    Integer,
    /// An amount of money in major units (12.50), decimals allowed.
    Money,
    /// A probability from 0 to 1.
    Probability,
    /// Any number, decimals allowed.
    Number,
    /// A calendar day.
    Date,
    /// Yes or no.
    Bool,
    /// An optional profile field that can only be checked for being filled in, with `has`.
    Presence,
}

impl FieldType {
    /// What values of this type look like, for people.
    pub fn label(self) -> &'static str {
        match self {
            FieldType::Enum(_) => "one of a fixed list of values, in quotes",
            FieldType::Text => "text in quotes",
            FieldType::Integer => "a whole number",
            FieldType::Money => "an amount of money, such as 500 or 12.50",
            FieldType::Probability => "a probability from 0 to 1, such as 0.3",
            FieldType::Number => "a number, such as 2 or 1.5",
            FieldType::Date => "a date in quotes, such as \"2024-03-31\"",
            FieldType::Bool => "true or false",
            FieldType::Presence => "checked with has()",
        }
    }

    /// Whether `<`, `<=`, `>` and `>=` make sense for values of this type.
    fn is_ordered(self) -> bool {
        matches!(
            self,
            FieldType::Integer
                | FieldType::Money
                | FieldType::Probability
                | FieldType::Number
                | FieldType::Date
        )
    }
}

/// One entry of the field catalogue.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FieldSpec {
    pub field: Field,
    /// The name written in filters.
    pub name: &'static str,
    pub kind: FieldType,
    /// One line of plain English saying what the field holds.
    pub description: &'static str,
}

impl FieldSpec {
    /// The catalogue entry of `field`.
    pub const fn of(field: Field) -> FieldSpec {
        FieldSpec {
            field,
            name: field.name(),
            kind: field.kind(),
            description: field.description(),
        }
    }
}

/// Every field a filter may use, in the order the documentation lists them.
pub const FIELDS: &[FieldSpec] = &[
    FieldSpec::of(Field::Stage),
    FieldSpec::of(Field::RfmSegment),
    FieldSpec::of(Field::Kind),
    FieldSpec::of(Field::LossReason),
    FieldSpec::of(Field::Region),
    FieldSpec::of(Field::Locale),
    FieldSpec::of(Field::AcquisitionChannel),
    FieldSpec::of(Field::AcquisitionSource),
    FieldSpec::of(Field::Tag),
    FieldSpec::of(Field::R),
    FieldSpec::of(Field::F),
    FieldSpec::of(Field::M),
    FieldSpec::of(Field::Orders),
    FieldSpec::of(Field::RecencyDays),
    FieldSpec::of(Field::Interactions),
    FieldSpec::of(Field::Spend),
    FieldSpec::of(Field::Clv),
    FieldSpec::of(Field::ExpectedValue),
    FieldSpec::of(Field::PAlive),
    FieldSpec::of(Field::ChurnRisk),
    FieldSpec::of(Field::ExpectedPurchases),
    FieldSpec::of(Field::FirstPurchase),
    FieldSpec::of(Field::LastPurchase),
    FieldSpec::of(Field::LastContact),
    FieldSpec::of(Field::Created),
    FieldSpec::of(Field::StageSince),
    FieldSpec::of(Field::ProspectParked),
    FieldSpec::of(Field::Email),
    FieldSpec::of(Field::Phone),
    FieldSpec::of(Field::Birthday),
    FieldSpec::of(Field::Tier),
    FieldSpec::of(Field::Points),
    FieldSpec::of(Field::NpsGroup),
    FieldSpec::of(Field::Csat),
    FieldSpec::of(Field::OpenTickets),
];

impl Field {
    /// The name written in filters.
    pub const fn name(self) -> &'static str {
        match self {
            Field::Stage => "stage",
            Field::RfmSegment => "rfm_segment",
            Field::Kind => "kind",
            Field::LossReason => "loss_reason",
            Field::Region => "region",
            Field::Locale => "locale",
            Field::AcquisitionChannel => "acquisition_channel",
            Field::AcquisitionSource => "acquisition_source",
            Field::Tag => "tag",
            Field::R => "r",
            Field::F => "f",
            Field::M => "m",
            Field::Orders => "orders",
            Field::RecencyDays => "recency_days",
            Field::Interactions => "interactions",
            Field::Spend => "spend",
            Field::Clv => "clv",
            Field::ExpectedValue => "expected_value",
            Field::PAlive => "p_alive",
            Field::ChurnRisk => "churn_risk",
            Field::ExpectedPurchases => "expected_purchases",
            Field::FirstPurchase => "first_purchase",
            Field::LastPurchase => "last_purchase",
            Field::LastContact => "last_contact",
            Field::Created => "created",
            Field::StageSince => "stage_since",
            Field::ProspectParked => "prospect_parked",
            Field::Email => "email",
            Field::Phone => "phone",
            Field::Birthday => "birthday",
            Field::Tier => "tier",
            Field::Points => "points",
            Field::NpsGroup => "nps_group",
            Field::Csat => "csat",
            Field::OpenTickets => "open_tickets",
        }
    }

    /// The field's type.
    pub const fn kind(self) -> FieldType {
        match self {
            Field::Stage => FieldType::Enum(STAGES),
            Field::RfmSegment => FieldType::Enum(RFM_SEGMENTS),
            Field::Kind => FieldType::Enum(CUSTOMER_KINDS),
            Field::LossReason => FieldType::Enum(LOSS_REASONS),
            Field::NpsGroup => FieldType::Enum(NPS_GROUPS),
            Field::Region
            | Field::Locale
            | Field::AcquisitionChannel
            | Field::AcquisitionSource
            | Field::Tag
            | Field::Tier => FieldType::Text,
            Field::R
            | Field::F
            | Field::M
            | Field::Orders
            | Field::RecencyDays
            | Field::Interactions
            | Field::Points
            | Field::Csat
            | Field::OpenTickets => FieldType::Integer,
            Field::Spend | Field::Clv | Field::ExpectedValue => FieldType::Money,
            Field::PAlive | Field::ChurnRisk => FieldType::Probability,
            Field::ExpectedPurchases => FieldType::Number,
            Field::FirstPurchase
            | Field::LastPurchase
            | Field::LastContact
            | Field::Created
            | Field::StageSince => FieldType::Date,
            Field::ProspectParked => FieldType::Bool,
            Field::Email | Field::Phone | Field::Birthday => FieldType::Presence,
        }
    }

    /// One line of plain English saying what the field holds.
    pub const fn description(self) -> &'static str {
        match self {
            Field::Stage => {
                "where the customer is in their lifecycle, such as new, active or at_risk"
            }
            Field::RfmSegment => {
                "the customer's RFM segment, from how recently, how often and how much they buy"
            }
            Field::Kind => "whether the customer is a person or an organisation",
            Field::LossReason => "why a lost customer left",
            Field::Region => "the region on the customer's profile",
            Field::Locale => "the customer's language, such as en or zh-CN",
            Field::AcquisitionChannel => "the channel through which the customer first came",
            Field::AcquisitionSource => "where the customer first came from, such as a campaign",
            Field::Tag => "a tag on the customer: tag = \"vip\" means the customer has the tag vip",
            Field::R => "recency score, from 1 (bought longest ago) to 5 (bought most recently)",
            Field::F => "frequency score, from 1 (buys least often) to 5 (buys most often)",
            Field::M => "monetary score, from 1 (spends least) to 5 (spends most)",
            Field::Orders => "how many orders the customer has placed",
            Field::RecencyDays => "days since the customer's last purchase",
            Field::Interactions => "how many calls, messages, visits and notes are recorded",
            Field::Spend => "everything the customer has spent, in the shop's currency",
            Field::Clv => "predicted customer lifetime value, in the shop's currency",
            Field::ExpectedValue => "predicted value of one purchase, in the shop's currency",
            Field::PAlive => "predicted probability that the customer is still buying, 0 to 1",
            Field::ChurnRisk => {
                "predicted probability that the customer has stopped buying, 0 to 1"
            }
            Field::ExpectedPurchases => "predicted number of purchases over the forecast period",
            Field::FirstPurchase => "the day of the customer's first purchase",
            Field::LastPurchase => "the day of the customer's last purchase",
            Field::LastContact => "the day of the last recorded contact with the customer",
            Field::Created => "the day the customer was added to Tenure",
            Field::StageSince => "the day the customer entered their current stage",
            Field::ProspectParked => "whether a prospect has been set aside for now",
            Field::Email => "the customer's email address, checked with has(email)",
            Field::Phone => "the customer's phone number, checked with has(phone)",
            Field::Birthday => "the customer's birthday, checked with has(birthday)",
            Field::Tier => "the member's loyalty tier, such as \"gold\"; non-members have none",
            Field::Points => "the member's spendable loyalty points (0 for non-members)",
            Field::NpsGroup => {
                "where the customer's latest NPS answer puts them: promoter, passive or detractor"
            }
            Field::Csat => "the customer's latest CSAT score, 1 to 5",
            Field::OpenTickets => "how many of the customer's tickets are not yet resolved",
        }
    }

    /// The field written `name`, ignoring case.
    pub fn from_name(name: &str) -> Option<Field> {
        FIELDS
            .iter()
            .find(|s| s.name.eq_ignore_ascii_case(name))
            .map(|s| s.field)
    }
}

impl fmt::Display for Field {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A comparison operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CmpOp {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
}

impl CmpOp {
    /// The usual spelling.
    pub fn symbol(self) -> &'static str {
        match self {
            CmpOp::Eq => "=",
            CmpOp::Ne => "!=",
            CmpOp::Lt => "<",
            CmpOp::Le => "<=",
            CmpOp::Gt => ">",
            CmpOp::Ge => ">=",
        }
    }
}

/// A value in a condition, already checked against its field's type.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// For enum fields, one of the field's spellings; for text fields, as written.
    Text(String),
    Int(i64),
    /// For money (major units), probabilities and other numbers.
    Decimal(f64),
    Date(NaiveDate),
    Bool(bool),
}

/// A parsed filter.
#[derive(Debug, Clone, PartialEq)]
pub enum Expr {
    /// Every part holds; never directly inside another `And`.
    And(Vec<Expr>),
    /// At least one part holds; never directly inside another `Or`.
    Or(Vec<Expr>),
    Not(Box<Expr>),
    Cmp {
        field: Field,
        op: CmpOp,
        value: Value,
    },
    /// The field is one of the values (none of them when `negated`).
    In {
        field: Field,
        values: Vec<Value>,
        negated: bool,
    },
    /// The customer is in the segment of that name.
    InSegment(String),
    /// The optional profile field is filled in.
    Has(Field),
    /// `true` or `false` written as a condition of its own.
    Const(bool),
}

impl Expr {
    /// The names of the segments this filter refers to, each once, in order of appearance.
    pub fn segment_refs(&self) -> Vec<String> {
        let mut out: Vec<String> = Vec::new();
        self.walk(&mut |e| {
            if let Expr::InSegment(name) = e
                && !out.contains(name)
            {
                out.push(name.clone());
            }
        });
        out
    }

    /// The fields this filter looks at, each once, in order of appearance.
    pub fn fields(&self) -> Vec<Field> {
        let mut out: Vec<Field> = Vec::new();
        self.walk(&mut |e| {
            let field = match e {
                Expr::Cmp { field, .. } | Expr::In { field, .. } | Expr::Has(field) => *field,
                _ => return,
            };
            if !out.contains(&field) {
                out.push(field);
            }
        });
        out
    }

    /// Calls `f` on this expression and every expression inside it, parents first.
    fn walk(&self, f: &mut impl FnMut(&Expr)) {
        f(self);
        match self {
            Expr::And(parts) | Expr::Or(parts) => parts.iter().for_each(|p| p.walk(f)),
            Expr::Not(inner) => inner.walk(f),
            _ => {}
        }
    }
}

/// Why a filter did not parse, and where.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseError {
    /// Where the offending text starts: a 0-based character offset in the input.
    pub position: usize,
    /// How many characters the offending text spans; at least 1.
    pub length: usize,
    pub message: String,
}

impl ParseError {
    fn new(position: usize, length: usize, message: impl Into<String>) -> ParseError {
        ParseError {
            position,
            length: length.max(1),
            message: message.into(),
        }
    }

    /// Two lines for a terminal or a monospaced box on a page: the line of `input` holding
    /// the error and, under it, `^~~~` marking the offending text.
    pub fn caret(&self, input: &str) -> String {
        let chars: Vec<char> = input.chars().collect();
        let is_break = |c: &char| *c == '\n' || *c == '\r';
        let pos = self.position.min(chars.len());
        let line_start = chars
            .iter()
            .take(pos)
            .rposition(is_break)
            .map_or(0, |i| i.saturating_add(1));
        let line_end = chars
            .iter()
            .enumerate()
            .skip(pos)
            .find(|(_, c)| is_break(c))
            .map_or(chars.len(), |(i, _)| i);
        let line: String = chars
            .iter()
            .skip(line_start)
            .take(line_end.saturating_sub(line_start))
            .collect();
        let mut marker = String::new();
        for &c in chars
            .iter()
            .skip(line_start)
            .take(pos.saturating_sub(line_start))
        {
            // A tab is copied so that the marker lines up however wide the tab is shown.
            if c == '\t' {
                marker.push('\t');
            } else {
                marker.extend(std::iter::repeat_n(' ', display_width(c)));
            }
        }
        let span_end = pos.saturating_add(self.length).min(line_end);
        let span_width: usize = chars
            .iter()
            .skip(pos)
            .take(span_end.saturating_sub(pos))
            .map(|&c| display_width(c))
            .sum();
        marker.push('^');
        marker.extend(std::iter::repeat_n('~', span_width.saturating_sub(1)));
        format!("{line}\n{marker}")
    }
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "at column {}: {}",
            self.position.saturating_add(1),
            self.message
        )
    }
}

impl std::error::Error for ParseError {}

/// How many columns a monospaced font gives `c`: Chinese, Japanese and Korean characters
/// and full-width punctuation take two, so the marker under them needs two spaces.
fn display_width(c: char) -> usize {
    let wide = crate::search::is_cjk(c)
        || matches!(
            c as u32,
            0x1100..=0x115F | 0x2E80..=0x303E | 0xFF01..=0xFF60 | 0xFFE0..=0xFFE6
        );
    if wide { 2 } else { 1 }
}

/// Parses a filter, checking every field name and every value against its field's type.
pub fn parse(input: &str) -> Result<Expr, ParseError> {
    let count = input.chars().count();
    if count > MAX_LENGTH {
        return Err(ParseError::new(
            MAX_LENGTH,
            count.saturating_sub(MAX_LENGTH),
            format!(
                "the expression is too long: at most {MAX_LENGTH} characters, this one has {count}"
            ),
        ));
    }
    let tokens = lex(input)?;
    let Some(last) = tokens.last() else {
        return Err(ParseError::new(0, 1, "the expression is empty"));
    };
    // The end is marked right after the last token, not after trailing spaces or line
    // breaks, so that a caret for "nothing follows" sits next to the text it is about.
    let end = Token {
        tok: Tok::End,
        pos: last.pos.saturating_add(last.len),
        len: 1,
        src: String::new(),
    };
    let mut p = Parser {
        tokens,
        next: 0,
        end,
        depth: 0,
        prev: None,
    };
    let expr = p.or_expr()?;
    let t = p.peek();
    match t.tok {
        Tok::End => Ok(expr),
        Tok::Close => Err(error_at(t, "unexpected \")\"")),
        _ => Err(missing_connector(t)),
    }
}

/// A token's kind and, for words, text and numbers, what it holds.
#[derive(Debug, Clone, PartialEq)]
enum Tok {
    /// A keyword, field name, function name, `true` or `false`, as written.
    Word(String),
    /// Quoted text, with its escapes resolved.
    Text(String),
    /// A number as written, already known to be whole or decimal.
    Number(String),
    Op(CmpOp),
    Open,
    Close,
    Comma,
    End,
}

#[derive(Debug, Clone)]
struct Token {
    tok: Tok,
    /// 0-based character offset of the first character.
    pos: usize,
    /// Length in characters.
    len: usize,
    /// The text as written, for messages.
    src: String,
}

fn error_at(t: &Token, message: impl Into<String>) -> ParseError {
    ParseError::new(t.pos, t.len, message)
}

/// A token as a message names it.
fn describe(t: &Token) -> String {
    match t.tok {
        Tok::End => "the end".to_owned(),
        Tok::Text(_) => format!("the text {}", t.src),
        _ => format!("\"{}\"", t.src),
    }
}

fn missing_connector(t: &Token) -> ParseError {
    error_at(
        t,
        format!(
            "expected \"and\" or \"or\" between conditions, found {}",
            describe(t)
        ),
    )
}

fn is_keyword(w: &str) -> bool {
    ["and", "or", "not", "in"]
        .iter()
        .any(|k| k.eq_ignore_ascii_case(w))
}

/// Whether `s` is a whole or decimal number with an optional leading minus.
fn is_number(s: &str) -> bool {
    let body = s.strip_prefix('-').unwrap_or(s);
    let digits = |p: &str| !p.is_empty() && p.chars().all(|c| c.is_ascii_digit());
    match body.split_once('.') {
        Some((whole, fraction)) => digits(whole) && digits(fraction),
        None => digits(body),
    }
}

/// Splits the input into tokens.
fn lex(input: &str) -> Result<Vec<Token>, ParseError> {
    let chars: Vec<char> = input.chars().collect();
    let at = |i: usize| chars.get(i).copied();
    let mut out = Vec::new();
    let mut i = 0;
    while let Some(c) = at(i) {
        if c.is_whitespace() {
            i += 1;
            continue;
        }
        let start = i;
        let next = at(i + 1);
        let tok = match c {
            // Full-width parentheses and commas come from Chinese and Japanese input
            // methods; reading them as the ASCII ones spares people an invisible mistake.
            '(' | '（' => {
                i += 1;
                Tok::Open
            }
            ')' | '）' => {
                i += 1;
                Tok::Close
            }
            ',' | '，' => {
                i += 1;
                Tok::Comma
            }
            '=' => {
                i += if next == Some('=') { 2 } else { 1 };
                Tok::Op(CmpOp::Eq)
            }
            '!' if next == Some('=') => {
                i += 2;
                Tok::Op(CmpOp::Ne)
            }
            '!' => {
                return Err(ParseError::new(
                    start,
                    1,
                    "\"!\" on its own is not an operator: write != for \"is not equal to\", or not before a condition",
                ));
            }
            '<' => match next {
                Some('=') => {
                    i += 2;
                    Tok::Op(CmpOp::Le)
                }
                Some('>') => {
                    i += 2;
                    Tok::Op(CmpOp::Ne)
                }
                _ => {
                    i += 1;
                    Tok::Op(CmpOp::Lt)
                }
            },
            '>' => {
                if next == Some('=') {
                    i += 2;
                    Tok::Op(CmpOp::Ge)
                } else {
                    i += 1;
                    Tok::Op(CmpOp::Gt)
                }
            }
            '"' | '\'' | '“' | '‘' => {
                let (text, after) = lex_text(&chars, start)?;
                i = after;
                Tok::Text(text)
            }
            c if c.is_ascii_digit() || (c == '-' && next.is_some_and(|n| n.is_ascii_digit())) => {
                // A number runs on through letters and dots so that "12abc" or "1.2.3"
                // is reported whole rather than as a number followed by something else.
                i += 1;
                while at(i).is_some_and(|c| c.is_alphanumeric() || c == '_' || c == '.') {
                    i += 1;
                }
                let src: String = chars.iter().skip(start).take(i - start).collect();
                if !is_number(&src) {
                    return Err(ParseError::new(
                        start,
                        i - start,
                        format!("\"{src}\" is not a number"),
                    ));
                }
                Tok::Number(src)
            }
            c if c.is_alphabetic() || c == '_' => {
                i += 1;
                while at(i).is_some_and(|c| c.is_alphanumeric() || c == '_') {
                    i += 1;
                }
                Tok::Word(chars.iter().skip(start).take(i - start).collect())
            }
            other => {
                return Err(ParseError::new(
                    start,
                    1,
                    format!("unexpected character \"{other}\""),
                ));
            }
        };
        out.push(Token {
            tok,
            pos: start,
            len: i - start,
            src: chars.iter().skip(start).take(i - start).collect(),
        });
    }
    Ok(out)
}

/// Reads quoted text starting at the opening quote `start`; returns the text and the
/// offset just after the closing quote. Curly quotes close with their partner, so text
/// pasted from a word processor reads as intended.
fn lex_text(chars: &[char], start: usize) -> Result<(String, usize), ParseError> {
    let close = match chars.get(start) {
        Some('“') => '”',
        Some('‘') => '’',
        Some(&c) => c,
        None => '"',
    };
    let unterminated = || {
        ParseError::new(
            start,
            chars.len().saturating_sub(start),
            format!("unterminated text: add a closing {close}"),
        )
    };
    let mut text = String::new();
    let mut i = start + 1;
    loop {
        match chars.get(i).copied() {
            None => return Err(unterminated()),
            Some('\\') => match chars.get(i + 1).copied() {
                Some(c) if c == '\\' || c == '"' || c == '\'' || c == close => {
                    text.push(c);
                    i += 2;
                }
                Some(c) => {
                    return Err(ParseError::new(
                        i,
                        2,
                        format!(
                            "\"\\{c}\" is not allowed in text: write \\\" for a quote and \\\\ for a backslash"
                        ),
                    ));
                }
                None => return Err(unterminated()),
            },
            Some(c) if c == close => return Ok((text, i + 1)),
            Some(c) => {
                text.push(c);
                i += 1;
            }
        }
    }
}

/// A value as written, before it is checked against its field.
enum Raw<'a> {
    Text(&'a str),
    Number(&'a str),
    Bool(bool),
    /// A word that is not a keyword: most often text someone forgot to quote.
    Bare(&'a str),
}

struct Parser {
    tokens: Vec<Token>,
    next: usize,
    /// Returned by `peek` once every token is used.
    end: Token,
    /// How many parentheses and `not`s enclose the current position.
    depth: usize,
    /// The last token consumed, which messages name as what something was expected after.
    prev: Option<Token>,
}

impl Parser {
    fn peek(&self) -> &Token {
        self.tokens.get(self.next).unwrap_or(&self.end)
    }

    fn bump(&mut self) -> Token {
        let t = self.peek().clone();
        if self.next < self.tokens.len() {
            self.next += 1;
        }
        self.prev = Some(t.clone());
        t
    }

    fn at_word(&self, word: &str) -> bool {
        matches!(&self.peek().tok, Tok::Word(w) if w.eq_ignore_ascii_case(word))
    }

    /// Goes one level deeper for the parenthesis or `not` in `t`.
    fn enter(&mut self, t: &Token) -> Result<(), ParseError> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return Err(error_at(
                t,
                format!(
                    "the expression is nested too deeply: at most {MAX_DEPTH} levels of parentheses and \"not\""
                ),
            ));
        }
        Ok(())
    }

    fn leave(&mut self) {
        self.depth = self.depth.saturating_sub(1);
    }

    fn or_expr(&mut self) -> Result<Expr, ParseError> {
        let mut parts = vec![self.and_expr()?];
        while self.at_word("or") {
            self.bump();
            parts.push(self.and_expr()?);
        }
        Ok(join(parts, false))
    }

    fn and_expr(&mut self) -> Result<Expr, ParseError> {
        let mut parts = vec![self.not_expr()?];
        while self.at_word("and") {
            self.bump();
            parts.push(self.not_expr()?);
        }
        Ok(join(parts, true))
    }

    fn not_expr(&mut self) -> Result<Expr, ParseError> {
        if !self.at_word("not") {
            return self.atom();
        }
        let t = self.bump();
        self.enter(&t)?;
        let inner = self.not_expr()?;
        self.leave();
        Ok(Expr::Not(Box::new(inner)))
    }

    /// A parenthesised filter, a function call, `true`/`false` or a comparison.
    fn atom(&mut self) -> Result<Expr, ParseError> {
        let t = self.peek().clone();
        match &t.tok {
            Tok::Open => {
                self.bump();
                self.enter(&t)?;
                let inner = self.or_expr()?;
                let close = self.peek();
                match close.tok {
                    Tok::Close => {}
                    Tok::End => return Err(unclosed(&t)),
                    _ => return Err(missing_connector(close)),
                }
                self.bump();
                self.leave();
                Ok(inner)
            }
            Tok::Word(w) if is_keyword(w) => Err(self.expected_condition(&t)),
            Tok::Word(w) if w.eq_ignore_ascii_case("true") => {
                self.bump();
                Ok(Expr::Const(true))
            }
            Tok::Word(w) if w.eq_ignore_ascii_case("false") => {
                self.bump();
                Ok(Expr::Const(false))
            }
            Tok::Word(w) if w.eq_ignore_ascii_case("in_segment") => self.in_segment(),
            Tok::Word(w) if w.eq_ignore_ascii_case("has") => self.has(),
            Tok::Word(w) => {
                let w = w.clone();
                self.comparison(&t, &w)
            }
            _ => Err(self.expected_condition(&t)),
        }
    }

    /// The error for `t` where a condition should start.
    fn expected_condition(&self, t: &Token) -> ParseError {
        match (&self.prev, &t.tok) {
            (None, Tok::Close) => error_at(t, "unexpected \")\""),
            (Some(open), Tok::Close) if open.tok == Tok::Open => ParseError::new(
                open.pos,
                t.pos.saturating_add(1).saturating_sub(open.pos),
                "empty parentheses: put a condition between \"(\" and \")\"",
            ),
            (None, _) => error_at(
                t,
                format!(
                    "expected a condition such as stage = \"active\", found {}",
                    describe(t)
                ),
            ),
            (Some(p), _) => error_at(
                t,
                format!(
                    "expected a condition after \"{}\", found {}",
                    p.src,
                    describe(t)
                ),
            ),
        }
    }

    /// `field op value`, `field in (...)` or `field not in (...)`, the field word being
    /// `t`.
    fn comparison(&mut self, t: &Token, word: &str) -> Result<Expr, ParseError> {
        let field = match Field::from_name(word) {
            Some(f) => f,
            None => {
                let called = self
                    .tokens
                    .get(self.next + 1)
                    .is_some_and(|n| n.tok == Tok::Open);
                return Err(unknown_name(t, word, called));
            }
        };
        let name = field.name();
        let kind = field.kind();
        if kind == FieldType::Presence {
            return Err(error_at(
                t,
                format!("`{name}` can only be checked for being filled in: write has({name})"),
            ));
        }
        self.bump();
        let op_tok = self.peek().clone();
        match &op_tok.tok {
            Tok::Op(op) => {
                if !kind.is_ordered() && !matches!(op, CmpOp::Eq | CmpOp::Ne) {
                    return Err(error_at(
                        &op_tok,
                        format!("`{name}` can be compared with =, !=, in or not in"),
                    ));
                }
                self.bump();
                let value = self.value(field)?;
                Ok(Expr::Cmp {
                    field,
                    op: *op,
                    value,
                })
            }
            Tok::Word(w) if w.eq_ignore_ascii_case("in") => {
                self.bump();
                self.list(field, false)
            }
            Tok::Word(w) if w.eq_ignore_ascii_case("not") => {
                self.bump();
                if !self.at_word("in") {
                    let t = self.peek();
                    return Err(error_at(
                        t,
                        format!("expected \"in\" after \"not\", found {}", describe(t)),
                    ));
                }
                self.bump();
                self.list(field, true)
            }
            _ => {
                let ops = if kind.is_ordered() {
                    "=, !=, <, <=, >, >=, in or not in"
                } else {
                    "=, !=, in or not in"
                };
                Err(error_at(
                    &op_tok,
                    format!("expected {ops} after `{name}`, found {}", describe(&op_tok)),
                ))
            }
        }
    }

    /// `(v1, v2, ...)` after `in`.
    fn list(&mut self, field: Field, negated: bool) -> Result<Expr, ParseError> {
        let open = self.peek().clone();
        if open.tok != Tok::Open {
            return Err(error_at(
                &open,
                format!(
                    "expected \"(\" after \"in\", found {}: write the values as (\"a\", \"b\")",
                    describe(&open)
                ),
            ));
        }
        self.bump();
        if let Tok::Close = self.peek().tok {
            let close = self.peek();
            return Err(ParseError::new(
                open.pos,
                close.pos.saturating_add(1).saturating_sub(open.pos),
                "the list after \"in\" is empty",
            ));
        }
        let mut values = Vec::new();
        loop {
            if self.peek().tok == Tok::End {
                return Err(unclosed(&open));
            }
            values.push(self.value(field)?);
            let t = self.peek();
            match t.tok {
                Tok::Comma => {
                    self.bump();
                }
                Tok::Close => {
                    self.bump();
                    return Ok(Expr::In {
                        field,
                        values,
                        negated,
                    });
                }
                Tok::End => return Err(unclosed(&open)),
                _ => {
                    return Err(error_at(
                        t,
                        format!("expected \",\" or \")\" in the list, found {}", describe(t)),
                    ));
                }
            }
        }
    }

    /// The value after an operator, `(` or `,`, checked against `field`.
    fn value(&mut self, field: Field) -> Result<Value, ParseError> {
        let t = self.peek().clone();
        let after = self.prev.as_ref().map_or(String::new(), |p| p.src.clone());
        let raw = match &t.tok {
            Tok::Text(s) => Raw::Text(s),
            Tok::Number(n) => Raw::Number(n),
            Tok::Word(w) if w.eq_ignore_ascii_case("true") => Raw::Bool(true),
            Tok::Word(w) if w.eq_ignore_ascii_case("false") => Raw::Bool(false),
            Tok::Word(w) if !is_keyword(w) => Raw::Bare(w),
            _ => {
                return Err(error_at(
                    &t,
                    format!("expected a value after \"{after}\", found {}", describe(&t)),
                ));
            }
        };
        let value = check_value(field, raw, &t)?;
        self.bump();
        Ok(value)
    }

    /// Expects `(` after the function name just read.
    fn open_call(&mut self, function: &str) -> Result<Token, ParseError> {
        self.bump();
        let open = self.peek().clone();
        if open.tok != Tok::Open {
            return Err(error_at(
                &open,
                format!("expected \"(\" after {function}, found {}", describe(&open)),
            ));
        }
        self.bump();
        Ok(open)
    }

    /// Expects the `)` that closes the call opened by `open`.
    fn close_call(&mut self, open: &Token, what: &str) -> Result<(), ParseError> {
        let t = self.peek();
        match t.tok {
            Tok::Close => {
                self.bump();
                Ok(())
            }
            Tok::End => Err(unclosed(open)),
            _ => Err(error_at(
                t,
                format!("expected \")\" after the {what}, found {}", describe(t)),
            )),
        }
    }

    /// `in_segment("name")`.
    fn in_segment(&mut self) -> Result<Expr, ParseError> {
        let open = self.open_call("in_segment")?;
        let t = self.peek().clone();
        let name = match &t.tok {
            Tok::Text(s) => s.trim().to_owned(),
            Tok::Word(w) if !is_keyword(w) => {
                return Err(error_at(
                    &t,
                    format!("put the segment name in double quotes: in_segment(\"{w}\")"),
                ));
            }
            Tok::End => return Err(unclosed(&open)),
            _ => {
                return Err(error_at(
                    &t,
                    "in_segment needs the name of a segment in quotes, such as in_segment(\"staff\")",
                ));
            }
        };
        if name.is_empty() {
            return Err(error_at(&t, "the segment name is empty"));
        }
        self.bump();
        self.close_call(&open, "segment name")?;
        Ok(Expr::InSegment(name))
    }

    /// `has(field)`.
    fn has(&mut self) -> Result<Expr, ParseError> {
        let open = self.open_call("has")?;
        let t = self.peek().clone();
        let word = match &t.tok {
            Tok::Word(w) if !is_keyword(w) => w.clone(),
            Tok::Text(s) => s.clone(),
            Tok::End => return Err(unclosed(&open)),
            _ => {
                return Err(error_at(&t, "has() needs a field name, such as has(email)"));
            }
        };
        let presence = || {
            FIELDS
                .iter()
                .filter(|s| s.kind == FieldType::Presence)
                .map(|s| s.name)
        };
        let field = match Field::from_name(&word) {
            Some(f) if f.kind() == FieldType::Presence => f,
            Some(f) => {
                return Err(error_at(
                    &t,
                    format!("has() checks email, phone or birthday, not `{}`", f.name()),
                ));
            }
            None => {
                if let Some(reserved) = reserved(&t, &word) {
                    return Err(reserved);
                }
                let hint = closest(&word, presence())
                    .map_or(String::from("."), |s| format!("; did you mean \"{s}\"?"));
                return Err(error_at(
                    &t,
                    format!("unknown field \"{word}\"{hint} has() checks email, phone or birthday"),
                ));
            }
        };
        self.bump();
        self.close_call(&open, "field name")?;
        Ok(Expr::Has(field))
    }
}

/// Joins the parts of an `and` (or an `or`), lifting the parts of a parenthesised `and`
/// (`or`) into it, so that equal filters come out equal however they were bracketed.
fn join(mut parts: Vec<Expr>, and: bool) -> Expr {
    if parts.len() == 1
        && let Some(only) = parts.pop()
    {
        return only;
    }
    let mut flat = Vec::with_capacity(parts.len());
    for part in parts {
        match part {
            Expr::And(inner) if and => flat.extend(inner),
            Expr::Or(inner) if !and => flat.extend(inner),
            other => flat.push(other),
        }
    }
    if and { Expr::And(flat) } else { Expr::Or(flat) }
}

fn unclosed(open: &Token) -> ParseError {
    ParseError::new(
        open.pos,
        1,
        format!(
            "unclosed parenthesis opened at column {}",
            open.pos.saturating_add(1)
        ),
    )
}

/// The error for a name reserved for a later field, if `word` is one.
fn reserved(t: &Token, word: &str) -> Option<ParseError> {
    RESERVED
        .iter()
        .find(|(name, _)| name.eq_ignore_ascii_case(word))
        .map(|(name, why)| error_at(t, format!("`{name}` is not available yet: {why}")))
}

/// The error for a word that names neither a field nor a function. `called` says whether
/// a `(` follows it, in which case it was meant as a function.
fn unknown_name(t: &Token, word: &str, called: bool) -> ParseError {
    if let Some(reserved) = reserved(t, word) {
        return reserved;
    }
    if called {
        let hint = closest(word, FUNCTIONS.iter().copied())
            .map_or(String::from("."), |s| format!("; did you mean \"{s}\"?"));
        return error_at(
            t,
            format!(
                "unknown function \"{word}\"{hint} The functions are in_segment(\"name\") and has(field)"
            ),
        );
    }
    let names: Vec<&str> = FIELDS.iter().map(|s| s.name).collect();
    let hint = closest(word, names.iter().copied())
        .map_or(String::from("."), |s| format!("; did you mean \"{s}\"?"));
    error_at(
        t,
        format!(
            "unknown field \"{word}\"{hint} The fields are {}",
            names.join(", ")
        ),
    )
}

/// The candidate closest to `word`, if any is close enough to be a likely misspelling.
/// Spaces and dashes count as underscores, so "at risk" finds "at_risk" straight away.
fn closest<'a>(word: &str, candidates: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    let w = word.trim().to_lowercase();
    let squashed: String = w
        .chars()
        .map(|c| if c == ' ' || c == '-' { '_' } else { c })
        .collect();
    let mut best: Option<(&str, f64)> = None;
    for c in candidates {
        let score = if squashed == c {
            1.0
        } else {
            strsim::normalized_damerau_levenshtein(&w, c)
                .max(strsim::normalized_damerau_levenshtein(&squashed, c))
        };
        if score >= 0.5 && best.is_none_or(|(_, b)| score > b) {
            best = Some((c, score));
        }
    }
    best.map(|(c, _)| c)
}

/// Checks a value written in token `t` against `field`'s type and converts it.
fn check_value(field: Field, raw: Raw<'_>, t: &Token) -> Result<Value, ParseError> {
    let name = field.name();
    let fail = |message: String| Err(error_at(t, message));
    match field.kind() {
        FieldType::Enum(values) => {
            let listed = values.join(", ");
            match raw {
                Raw::Text(s) => {
                    let lower = s.trim().to_lowercase();
                    if let Some(v) = values.iter().find(|v| **v == lower) {
                        return Ok(Value::Text((*v).to_owned()));
                    }
                    let hint = closest(s, values.iter().copied())
                        .map_or(String::from("."), |c| format!("; did you mean \"{c}\"?"));
                    fail(format!(
                        "\"{s}\" is not a value of `{name}`{hint} The values are {listed}"
                    ))
                }
                Raw::Bare(w) => fail(format!("put text in double quotes: \"{w}\"")),
                Raw::Number(_) | Raw::Bool(_) => {
                    fail(format!("`{name}` takes text in quotes, one of {listed}"))
                }
            }
        }
        FieldType::Text => match raw {
            Raw::Text(s) => Ok(Value::Text(s.to_owned())),
            Raw::Bare(w) => fail(format!("put text in double quotes: \"{w}\"")),
            Raw::Number(n) => fail(format!(
                "`{name}` takes text in quotes, not a number: write \"{n}\""
            )),
            Raw::Bool(_) => fail(format!("`{name}` takes text in quotes, not true or false")),
        },
        FieldType::Integer => {
            let n = number_or_fail(field, raw, t)?;
            if n.contains('.') {
                return fail(format!("`{name}` takes a whole number, not {n}"));
            }
            let Ok(v) = n.parse::<i64>() else {
                return fail("this number is too large".to_owned());
            };
            if matches!(field, Field::R | Field::F | Field::M) && !(1..=5).contains(&v) {
                return fail(format!("`{name}` is a score from 1 to 5, not {v}"));
            }
            Ok(Value::Int(v))
        }
        FieldType::Money | FieldType::Number | FieldType::Probability => {
            let n = number_or_fail(field, raw, t)?;
            let v = match n.parse::<f64>() {
                Ok(v) if v.is_finite() => v,
                _ => return fail("this number is too large".to_owned()),
            };
            if field.kind() == FieldType::Probability && !(0.0..=1.0).contains(&v) {
                // Probabilities are often thought of as percentages; showing the
                // conversion saves a trip to the documentation.
                let hint = if v > 1.0 && v <= 100.0 {
                    format!("; write {} for {n}%", v / 100.0)
                } else {
                    String::new()
                };
                return fail(format!(
                    "`{name}` is a probability from 0 to 1, not {n}{hint}"
                ));
            }
            Ok(Value::Decimal(v))
        }
        FieldType::Date => match raw {
            Raw::Text(s) => parse_date(s.trim())
                .map(Value::Date)
                .map_err(|message| error_at(t, message)),
            Raw::Bare(w) => fail(format!("put text in double quotes: \"{w}\"")),
            Raw::Number(_) | Raw::Bool(_) => fail(format!(
                "`{name}` takes a date in quotes, such as \"2024-03-31\""
            )),
        },
        FieldType::Bool => match raw {
            Raw::Bool(b) => Ok(Value::Bool(b)),
            Raw::Text(s) if s.eq_ignore_ascii_case("true") || s.eq_ignore_ascii_case("false") => {
                fail(format!("`{name}` takes true or false without quotes"))
            }
            _ => fail(format!("`{name}` takes true or false")),
        },
        FieldType::Presence => fail(format!(
            "`{name}` can only be checked for being filled in: write has({name})"
        )),
    }
}

/// The number written for a numeric field, or the error saying what to write instead.
fn number_or_fail<'a>(field: Field, raw: Raw<'a>, t: &Token) -> Result<&'a str, ParseError> {
    let name = field.name();
    let message = match raw {
        Raw::Number(n) => return Ok(n),
        Raw::Text(s) if is_number(s.trim()) => {
            format!("`{name}` takes a number without quotes: write {}", s.trim())
        }
        Raw::Text(_) => format!("`{name}` takes a number, not text"),
        Raw::Bare(w) => format!("`{name}` takes a number, not \"{w}\""),
        Raw::Bool(_) => format!("`{name}` takes a number, not true or false"),
    };
    Err(error_at(t, message))
}

/// A day written `YYYY-MM-DD`.
fn parse_date(s: &str) -> Result<NaiveDate, String> {
    let shaped = s.chars().count() == 10
        && s.chars().enumerate().all(|(i, c)| {
            if i == 4 || i == 7 {
                c == '-'
            } else {
                c.is_ascii_digit()
            }
        });
    if !shaped {
        return Err(format!(
            "\"{s}\" is not a date: write dates as \"YYYY-MM-DD\", such as \"2024-03-31\""
        ));
    }
    NaiveDate::parse_from_str(s, "%Y-%m-%d")
        .map_err(|_| format!("\"{s}\" is not a date: there is no such day"))
}

/// Segments that refer to each other in a circle, so none of them can be worked out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CycleError {
    /// The segments on the circle, each once, each referring to the next and the last to
    /// the first.
    pub cycle: Vec<String>,
}

impl fmt::Display for CycleError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut names: Vec<&str> = self.cycle.iter().map(String::as_str).collect();
        if let Some(first) = names.first().copied() {
            names.push(first);
        }
        write!(
            f,
            "segments refer to each other in a circle: {}",
            names.join(" → ")
        )
    }
}

impl std::error::Error for CycleError {}

/// The order in which to work out segments that refer to other segments: each segment
/// comes after every segment it refers to. `segments` holds each segment's name with the
/// names its filter refers to ([`Expr::segment_refs`]). Among segments that are ready at
/// the same time the input order is kept, so the result does not change from run to run.
/// References to names not in `segments` are left out here; reporting them is up to the
/// caller. A name given twice counts once, with the references of both.
pub fn build_order(segments: &[(String, Vec<String>)]) -> Result<Vec<String>, CycleError> {
    let mut names: Vec<&str> = Vec::new();
    for (name, _) in segments {
        if !names.contains(&name.as_str()) {
            names.push(name);
        }
    }
    let known: HashSet<&str> = names.iter().copied().collect();
    let refs: Vec<(&str, Vec<&str>)> = names
        .iter()
        .map(|&name| {
            let deps = segments
                .iter()
                .filter(|(n, _)| n == name)
                .flat_map(|(_, r)| r.iter().map(String::as_str))
                .filter(|r| known.contains(r))
                .collect();
            (name, deps)
        })
        .collect();
    let mut done: HashSet<&str> = HashSet::new();
    let mut order: Vec<String> = Vec::with_capacity(names.len());
    while order.len() < names.len() {
        let ready = refs
            .iter()
            .find(|(name, deps)| !done.contains(name) && deps.iter().all(|d| done.contains(d)));
        match ready {
            Some((name, _)) => {
                done.insert(name);
                order.push((*name).to_owned());
            }
            None => {
                return Err(CycleError {
                    cycle: find_cycle(&refs, &done),
                });
            }
        }
    }
    Ok(order)
}

/// A circle among the segments not yet `done`. Each of them refers to another one not
/// done (otherwise it would be ready), so following those references from the first one
/// must come back to a segment already passed; the circle is the way from there.
fn find_cycle(refs: &[(&str, Vec<&str>)], done: &HashSet<&str>) -> Vec<String> {
    let deps_of = |name: &str| {
        refs.iter()
            .find(|(n, _)| *n == name)
            .and_then(|(_, deps)| deps.iter().copied().find(|d| !done.contains(d)))
    };
    let mut path: Vec<&str> = refs
        .iter()
        .map(|(n, _)| *n)
        .find(|n| !done.contains(n))
        .into_iter()
        .collect();
    while let Some(next) = path.last().and_then(|&cur| deps_of(cur)) {
        if let Some(k) = path.iter().position(|p| *p == next) {
            return path.iter().skip(k).map(|s| (*s).to_owned()).collect();
        }
        path.push(next);
    }
    path.iter().map(|s| (*s).to_owned()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(input: &str) -> Expr {
        parse(input).unwrap_or_else(|e| panic!("{input:?}: {e}\n{}", e.caret(input)))
    }

    fn err(input: &str) -> ParseError {
        match parse(input) {
            Ok(e) => panic!("{input:?} parsed as {e:?}"),
            Err(e) => e,
        }
    }

    fn int(field: Field, op: CmpOp, v: i64) -> Expr {
        Expr::Cmp {
            field,
            op,
            value: Value::Int(v),
        }
    }

    fn text(field: Field, op: CmpOp, v: &str) -> Expr {
        Expr::Cmp {
            field,
            op,
            value: Value::Text(v.to_owned()),
        }
    }

    fn dec(field: Field, op: CmpOp, v: f64) -> Expr {
        Expr::Cmp {
            field,
            op,
            value: Value::Decimal(v),
        }
    }

    fn texts(values: &[&str]) -> Vec<Value> {
        values
            .iter()
            .map(|v| Value::Text((*v).to_owned()))
            .collect()
    }

    const DOCS: &str = include_str!("../../../docs/segments.md");

    /// The contents of every fenced block in the documentation opened with ```` ```lang ````.
    fn doc_blocks(lang: &str) -> Vec<String> {
        let mut out = Vec::new();
        let mut current: Option<Vec<&str>> = None;
        for line in DOCS.lines() {
            match current.as_mut() {
                Some(lines) if line.trim() == "```" => {
                    out.push(lines.join("\n"));
                    current = None;
                }
                Some(lines) => lines.push(line),
                None if line.trim() == format!("```{lang}") => current = Some(Vec::new()),
                None => {}
            }
        }
        out
    }

    #[test]
    fn every_example_in_the_documentation_parses() {
        let examples = doc_blocks("segment");
        assert!(examples.len() > 30, "found {}", examples.len());
        for example in examples {
            ok(&example);
        }
    }

    #[test]
    fn the_documented_refusal_is_what_the_parser_says() {
        let blocks = doc_blocks("text");
        let block = blocks.first().expect("a text block");
        let lines: Vec<&str> = block.lines().collect();
        let [display, input, marker] = lines[..] else {
            panic!("{block}");
        };
        let e = err(input);
        assert_eq!(e.to_string(), display);
        assert_eq!(e.caret(input), format!("{input}\n{marker}"));
    }

    #[test]
    fn the_documented_messages_are_the_parser_s() {
        let deep = format!("{}r = 1{}", "(".repeat(33), ")".repeat(33));
        let long = format!("r = 1{}", " ".repeat(4205));
        let inputs = [
            "",
            "stage = \"new\" clv > 500",
            "clv = and r = 1",
            "stage = active",
            "tag = \"vip",
            "tag in(\"vip\", \"b2b\"",
            "r = 1)",
            "()",
            "tag in ()",
            "tag in (\"vip\" \"b2b\")",
            "clvv > 5",
            "stage = \"at risk\"",
            "stage > \"new\"",
            "r = 7",
            "churn_risk > 70",
            "orders = 2.5",
            "clv > \"500\"",
            "region = 500",
            "created < \"2024-02-30\"",
            "created < \"31/03/2024\"",
            "prospect_parked = \"yes\"",
            "email = \"a@b.c\"",
            deep.as_str(),
            long.as_str(),
        ];
        let section = DOCS
            .split("## When a filter is refused")
            .nth(1)
            .expect("the section on refusals");
        let documented: Vec<String> = section
            .lines()
            .filter(|l| l.starts_with("| `"))
            .map(|l| {
                let cell = l.trim_start_matches("| ");
                let cell = cell.split(" | ").next().unwrap_or_default().trim();
                let cell = cell
                    .strip_prefix("`` ")
                    .and_then(|c| c.strip_suffix(" ``"))
                    .or_else(|| cell.strip_prefix('`').and_then(|c| c.strip_suffix('`')))
                    .unwrap_or(cell);
                cell.to_owned()
            })
            .collect();
        assert_eq!(documented.len(), inputs.len(), "{documented:#?}");
        for (input, message) in inputs.iter().zip(&documented) {
            let got = err(input).message;
            match message.strip_suffix(" …") {
                Some(prefix) => assert!(got.starts_with(prefix), "{input:?}: {got}"),
                None => assert_eq!(&got, message, "{input:?}"),
            }
        }
    }

    #[test]
    fn the_headline_example() {
        let e = ok(
            "stage = \"at_risk\" and (clv > 500 or tag in (\"vip\", \"b2b\")) and not in_segment(\"staff\")",
        );
        assert_eq!(
            e,
            Expr::And(vec![
                text(Field::Stage, CmpOp::Eq, "at_risk"),
                Expr::Or(vec![
                    dec(Field::Clv, CmpOp::Gt, 500.0),
                    Expr::In {
                        field: Field::Tag,
                        values: texts(&["vip", "b2b"]),
                        negated: false,
                    },
                ]),
                Expr::Not(Box::new(Expr::InSegment("staff".into()))),
            ])
        );
        assert_eq!(e.segment_refs(), vec!["staff".to_owned()]);
        assert_eq!(e.fields(), vec![Field::Stage, Field::Clv, Field::Tag]);
    }

    #[test]
    fn and_binds_before_or() {
        let (r, f, m) = (
            int(Field::R, CmpOp::Eq, 1),
            int(Field::F, CmpOp::Eq, 2),
            int(Field::M, CmpOp::Eq, 3),
        );
        assert_eq!(
            ok("r = 1 or f = 2 and m = 3"),
            Expr::Or(vec![r.clone(), Expr::And(vec![f.clone(), m.clone()])])
        );
        assert_eq!(
            ok("r = 1 and f = 2 or m = 3"),
            Expr::Or(vec![Expr::And(vec![r.clone(), f.clone()]), m.clone()])
        );
        assert_eq!(
            ok("(r = 1 or f = 2) and m = 3"),
            Expr::And(vec![Expr::Or(vec![r, f]), m])
        );
    }

    #[test]
    fn not_binds_tightest() {
        let (r, f) = (int(Field::R, CmpOp::Eq, 1), int(Field::F, CmpOp::Eq, 2));
        assert_eq!(
            ok("not r = 1 and f = 2"),
            Expr::And(vec![Expr::Not(Box::new(r.clone())), f.clone()])
        );
        assert_eq!(
            ok("not (r = 1 and f = 2)"),
            Expr::Not(Box::new(Expr::And(vec![r.clone(), f.clone()])))
        );
        assert_eq!(
            ok("r = 1 or not f = 2"),
            Expr::Or(vec![r.clone(), Expr::Not(Box::new(f))])
        );
        assert_eq!(
            ok("not not r = 1"),
            Expr::Not(Box::new(Expr::Not(Box::new(r))))
        );
    }

    #[test]
    fn nested_parentheses_and_flattening() {
        let (r, f, m) = (
            int(Field::R, CmpOp::Eq, 1),
            int(Field::F, CmpOp::Eq, 2),
            int(Field::M, CmpOp::Eq, 3),
        );
        assert_eq!(ok("((((r = 1))))"), r.clone());
        assert_eq!(
            ok("(r = 1 and (f = 2 and (m = 3)))"),
            Expr::And(vec![r.clone(), f.clone(), m.clone()])
        );
        assert_eq!(
            ok("r = 1 or (f = 2 or m = 3)"),
            Expr::Or(vec![r.clone(), f.clone(), m.clone()])
        );
        assert_eq!(
            ok("((r = 1 or (f = 2))) and m = 3"),
            Expr::And(vec![Expr::Or(vec![r.clone(), f.clone()]), m.clone()])
        );
        assert_eq!(
            ok("r = 1 and (f = 2 or (m = 3 and r = 1))"),
            Expr::And(vec![r.clone(), Expr::Or(vec![f, Expr::And(vec![m, r])]),])
        );
    }

    #[test]
    fn keywords_and_names_ignore_case() {
        assert_eq!(
            ok("STAGE = \"New\" AND NOT Has(Email) Or TAG IN (\"a\") aNd Prospect_Parked = TRUE"),
            ok("stage = \"new\" and not has(email) or tag in (\"a\") and prospect_parked = true")
        );
        assert_eq!(
            ok("tag NOT IN ('a') OR In_Segment(\"x\")"),
            Expr::Or(vec![
                Expr::In {
                    field: Field::Tag,
                    values: texts(&["a"]),
                    negated: true,
                },
                Expr::InSegment("x".into()),
            ])
        );
        assert_eq!(ok("TRUE"), Expr::Const(true));
        assert_eq!(
            ok("false or r = 1"),
            Expr::Or(vec![Expr::Const(false), int(Field::R, CmpOp::Eq, 1)])
        );
    }

    #[test]
    fn operators_and_their_other_spellings() {
        for (src, op) in [
            ("=", CmpOp::Eq),
            ("==", CmpOp::Eq),
            ("!=", CmpOp::Ne),
            ("<>", CmpOp::Ne),
            ("<", CmpOp::Lt),
            ("<=", CmpOp::Le),
            (">", CmpOp::Gt),
            (">=", CmpOp::Ge),
        ] {
            assert_eq!(ok(&format!("orders {src} 3")), int(Field::Orders, op, 3));
            assert_eq!(ok(&format!("orders{src}3")), int(Field::Orders, op, 3));
        }
        assert_eq!(ok("clv>-5"), dec(Field::Clv, CmpOp::Gt, -5.0));
    }

    #[test]
    fn values_come_out_typed() {
        assert_eq!(ok("spend >= 12.50"), dec(Field::Spend, CmpOp::Ge, 12.5));
        assert_eq!(ok("clv > 500"), dec(Field::Clv, CmpOp::Gt, 500.0));
        assert_eq!(
            ok("expected_purchases < 2"),
            dec(Field::ExpectedPurchases, CmpOp::Lt, 2.0)
        );
        assert_eq!(ok("p_alive <= 1"), dec(Field::PAlive, CmpOp::Le, 1.0));
        assert_eq!(ok("churn_risk > 0"), dec(Field::ChurnRisk, CmpOp::Gt, 0.0));
        assert_eq!(
            ok("recency_days > 90"),
            int(Field::RecencyDays, CmpOp::Gt, 90)
        );
        assert_eq!(
            ok("last_purchase >= '2024-01-31'"),
            Expr::Cmp {
                field: Field::LastPurchase,
                op: CmpOp::Ge,
                value: Value::Date(NaiveDate::from_ymd_opt(2024, 1, 31).unwrap()),
            }
        );
        assert_eq!(
            ok("prospect_parked != false"),
            Expr::Cmp {
                field: Field::ProspectParked,
                op: CmpOp::Ne,
                value: Value::Bool(false),
            }
        );
        assert_eq!(
            ok("stage = \" At_Risk \""),
            text(Field::Stage, CmpOp::Eq, "at_risk")
        );
        assert_eq!(
            ok(r#"acquisition_source = "the \"spring\" campaign""#),
            text(
                Field::AcquisitionSource,
                CmpOp::Eq,
                "the \"spring\" campaign"
            )
        );
        assert_eq!(
            ok(r"region = 'a\\b\'c'"),
            text(Field::Region, CmpOp::Eq, "a\\b'c")
        );
        assert_eq!(
            ok("region = \"North\""),
            text(Field::Region, CmpOp::Eq, "North")
        );
        assert_eq!(
            ok("orders in (1, 2, 3)"),
            Expr::In {
                field: Field::Orders,
                values: vec![Value::Int(1), Value::Int(2), Value::Int(3)],
                negated: false,
            }
        );
        assert_eq!(
            ok("has(phone) and has(\"birthday\")"),
            Expr::And(vec![Expr::Has(Field::Phone), Expr::Has(Field::Birthday)])
        );
    }

    #[test]
    fn curly_quotes_and_full_width_punctuation_read_as_plain() {
        assert_eq!(
            ok("region = “North”"),
            text(Field::Region, CmpOp::Eq, "North")
        );
        assert_eq!(
            ok("region = ‘North’"),
            text(Field::Region, CmpOp::Eq, "North")
        );
        assert_eq!(
            ok("tag in（\"a\"，\"b\"）"),
            Expr::In {
                field: Field::Tag,
                values: texts(&["a", "b"]),
                negated: false,
            }
        );
    }

    #[test]
    fn tag_conditions_say_whether_the_customer_has_the_tag() {
        assert_eq!(ok("tag = \"x\""), text(Field::Tag, CmpOp::Eq, "x"));
        assert_eq!(ok("tag != \"x\""), text(Field::Tag, CmpOp::Ne, "x"));
        assert_eq!(
            ok("tag in (\"x\", \"y\")"),
            Expr::In {
                field: Field::Tag,
                values: texts(&["x", "y"]),
                negated: false,
            }
        );
        assert_eq!(
            ok("tag not in (\"x\", \"y\")"),
            Expr::In {
                field: Field::Tag,
                values: texts(&["x", "y"]),
                negated: true,
            }
        );
        assert_eq!(Field::Tag.kind(), FieldType::Text);
        assert!(
            err("tag > \"x\"")
                .message
                .contains("`tag` can be compared with")
        );
    }

    /// (input, position, length, message) for every refusal.
    const ERRORS: &[(&str, usize, usize, &str)] = &[
        ("", 0, 1, "the expression is empty"),
        ("  \n ", 0, 1, "the expression is empty"),
        (
            "clv = and r = 1",
            6,
            3,
            "expected a value after \"=\", found \"and\"",
        ),
        ("clv >", 5, 1, "expected a value after \">\", found the end"),
        (
            "r = 1 and (f = 2 or m = 3",
            10,
            1,
            "unclosed parenthesis opened at column 11",
        ),
        (
            "tag in(\"vip\", \"b2b\"",
            6,
            1,
            "unclosed parenthesis opened at column 7",
        ),
        (
            "tag in (\"a\",",
            7,
            1,
            "unclosed parenthesis opened at column 8",
        ),
        ("has(email", 3, 1, "unclosed parenthesis opened at column 4"),
        (
            "in_segment(\"x\"",
            10,
            1,
            "unclosed parenthesis opened at column 11",
        ),
        (")", 0, 1, "unexpected \")\""),
        ("r = 1)", 5, 1, "unexpected \")\""),
        ("(r = 1))", 7, 1, "unexpected \")\""),
        (
            "stage = \"new\" clv > 500",
            14,
            3,
            "expected \"and\" or \"or\" between conditions, found \"clv\"",
        ),
        (
            "(r = 1 f = 2)",
            7,
            1,
            "expected \"and\" or \"or\" between conditions, found \"f\"",
        ),
        (
            "r = 1, f = 2",
            5,
            1,
            "expected \"and\" or \"or\" between conditions, found \",\"",
        ),
        ("tag = \"vip", 6, 4, "unterminated text: add a closing \""),
        ("tag = 'vip", 6, 4, "unterminated text: add a closing '"),
        ("tag = “vip", 6, 4, "unterminated text: add a closing ”"),
        (
            "tag = \"a\\n\"",
            8,
            2,
            "\"\\n\" is not allowed in text: write \\\" for a quote and \\\\ for a backslash",
        ),
        (
            "stage < \"new\"",
            6,
            1,
            "`stage` can be compared with =, !=, in or not in",
        ),
        (
            "tag >= \"x\"",
            4,
            2,
            "`tag` can be compared with =, !=, in or not in",
        ),
        (
            "prospect_parked > true",
            16,
            1,
            "`prospect_parked` can be compared with =, !=, in or not in",
        ),
        (
            "stage = \"at risk\"",
            8,
            9,
            "\"at risk\" is not a value of `stage`; did you mean \"at_risk\"? The values are potential, prospect, new, active, loyal, at_risk, churned, won_back",
        ),
        (
            "kind = \"company\"",
            7,
            9,
            "\"company\" is not a value of `kind`. The values are person, organisation",
        ),
        (
            "stage = 5",
            8,
            1,
            "`stage` takes text in quotes, one of potential, prospect, new, active, loyal, at_risk, churned, won_back",
        ),
        ("r = 7", 4, 1, "`r` is a score from 1 to 5, not 7"),
        ("m in (0, 1)", 6, 1, "`m` is a score from 1 to 5, not 0"),
        (
            "churn_risk > 70",
            13,
            2,
            "`churn_risk` is a probability from 0 to 1, not 70; write 0.7 for 70%",
        ),
        (
            "p_alive < -0.1",
            10,
            4,
            "`p_alive` is a probability from 0 to 1, not -0.1",
        ),
        (
            "first_purchase > \"2024-02-30\"",
            17,
            12,
            "\"2024-02-30\" is not a date: there is no such day",
        ),
        (
            "created = \"31/03/2024\"",
            10,
            12,
            "\"31/03/2024\" is not a date: write dates as \"YYYY-MM-DD\", such as \"2024-03-31\"",
        ),
        (
            "created = 2024",
            10,
            4,
            "`created` takes a date in quotes, such as \"2024-03-31\"",
        ),
        (
            "orders = 2.5",
            9,
            3,
            "`orders` takes a whole number, not 2.5",
        ),
        (
            "orders = 99999999999999999999",
            9,
            20,
            "this number is too large",
        ),
        (
            "clv > \"500\"",
            6,
            5,
            "`clv` takes a number without quotes: write 500",
        ),
        ("clv > \"lots\"", 6, 6, "`clv` takes a number, not text"),
        ("clv > lots", 6, 4, "`clv` takes a number, not \"lots\""),
        (
            "clv > true",
            6,
            4,
            "`clv` takes a number, not true or false",
        ),
        (
            "region = 500",
            9,
            3,
            "`region` takes text in quotes, not a number: write \"500\"",
        ),
        (
            "region = false",
            9,
            5,
            "`region` takes text in quotes, not true or false",
        ),
        (
            "stage = active",
            8,
            6,
            "put text in double quotes: \"active\"",
        ),
        (
            "prospect_parked = \"yes\"",
            18,
            5,
            "`prospect_parked` takes true or false",
        ),
        (
            "prospect_parked = \"true\"",
            18,
            6,
            "`prospect_parked` takes true or false without quotes",
        ),
        (
            "email = \"a@b.c\"",
            0,
            5,
            "`email` can only be checked for being filled in: write has(email)",
        ),
        (
            "has(clv)",
            4,
            3,
            "has() checks email, phone or birthday, not `clv`",
        ),
        (
            "has(emial)",
            4,
            5,
            "unknown field \"emial\"; did you mean \"email\"? has() checks email, phone or birthday",
        ),
        (
            "has(zzz)",
            4,
            3,
            "unknown field \"zzz\". has() checks email, phone or birthday",
        ),
        (
            "has()",
            4,
            1,
            "has() needs a field name, such as has(email)",
        ),
        (
            "has email",
            4,
            5,
            "expected \"(\" after has, found \"email\"",
        ),
        (
            "has(email phone)",
            10,
            5,
            "expected \")\" after the field name, found \"phone\"",
        ),
        (
            "in_segmnt(\"x\")",
            0,
            9,
            "unknown function \"in_segmnt\"; did you mean \"in_segment\"? The functions are in_segment(\"name\") and has(field)",
        ),
        (
            "in_segment(staff)",
            11,
            5,
            "put the segment name in double quotes: in_segment(\"staff\")",
        ),
        ("in_segment(\"  \")", 11, 4, "the segment name is empty"),
        (
            "in_segment()",
            11,
            1,
            "in_segment needs the name of a segment in quotes, such as in_segment(\"staff\")",
        ),
        (
            "in_segment(\"a\" \"b\")",
            15,
            3,
            "expected \")\" after the segment name, found the text \"b\"",
        ),
        (
            "in_segment \"a\"",
            11,
            3,
            "expected \"(\" after in_segment, found the text \"a\"",
        ),
        ("tag in ()", 7, 2, "the list after \"in\" is empty"),
        (
            "tag in (\"a\" \"b\")",
            12,
            3,
            "expected \",\" or \")\" in the list, found the text \"b\"",
        ),
        (
            "tag in (\"a\",)",
            12,
            1,
            "expected a value after \",\", found \")\"",
        ),
        (
            "tag in \"a\"",
            7,
            3,
            "expected \"(\" after \"in\", found the text \"a\": write the values as (\"a\", \"b\")",
        ),
        (
            "tag not = \"a\"",
            8,
            1,
            "expected \"in\" after \"not\", found \"=\"",
        ),
        (
            "stage \"new\"",
            6,
            5,
            "expected =, !=, in or not in after `stage`, found the text \"new\"",
        ),
        (
            "clv",
            3,
            1,
            "expected =, !=, <, <=, >, >=, in or not in after `clv`, found the end",
        ),
        (
            "r = 1 and   ",
            9,
            1,
            "expected a condition after \"and\", found the end",
        ),
        (
            "r = 1 OR or f = 1",
            9,
            2,
            "expected a condition after \"OR\", found \"or\"",
        ),
        ("(", 1, 1, "expected a condition after \"(\", found the end"),
        (
            "( )",
            0,
            3,
            "empty parentheses: put a condition between \"(\" and \")\"",
        ),
        (
            "= 5",
            0,
            1,
            "expected a condition such as stage = \"active\", found \"=\"",
        ),
        (
            "in (\"a\")",
            0,
            2,
            "expected a condition such as stage = \"active\", found \"in\"",
        ),
        ("r = 1 # x", 6, 1, "unexpected character \"#\""),
        ("r = .5", 4, 1, "unexpected character \".\""),
        (
            "r ! 1",
            2,
            1,
            "\"!\" on its own is not an operator: write != for \"is not equal to\", or not before a condition",
        ),
        ("r = 12abc", 4, 5, "\"12abc\" is not a number"),
        ("clv > 1.2.3", 6, 5, "\"1.2.3\" is not a number"),
    ];

    #[test]
    fn every_refusal_names_its_place() {
        for &(input, position, length, message) in ERRORS {
            let e = err(input);
            assert_eq!(
                (e.position, e.length, e.message.as_str()),
                (position, length, message),
                "{input:?}"
            );
        }
    }

    #[test]
    fn unknown_fields_suggest_the_closest_and_list_them_all() {
        let e = err("clvv > 5");
        assert_eq!((e.position, e.length), (0, 4));
        assert!(
            e.message
                .starts_with("unknown field \"clvv\"; did you mean \"clv\"? The fields are stage, rfm_segment, kind,"),
            "{}",
            e.message
        );
        assert!(
            e.message
                .ends_with("email, phone, birthday, tier, points, nps_group, csat, open_tickets"),
            "{}",
            e.message
        );
        assert!(
            err("stag = \"new\"")
                .message
                .contains("did you mean \"stage\"?")
        );
        assert!(
            err("lastpurchase > \"2024-01-01\"")
                .message
                .contains("did you mean \"last_purchase\"?")
        );
        assert!(
            err("recency > 5")
                .message
                .contains("did you mean \"recency_days\"?")
        );
        let far = err("zzzzzz = 1").message;
        assert!(
            far.starts_with("unknown field \"zzzzzz\". The fields are stage,"),
            "{far}"
        );
    }

    #[test]
    fn enum_values_suggest_the_closest_spelling() {
        assert_eq!(closest("at risk", STAGES.iter().copied()), Some("at_risk"));
        assert_eq!(
            closest("won-back", STAGES.iter().copied()),
            Some("won_back")
        );
        assert_eq!(closest("churn", STAGES.iter().copied()), Some("churned"));
        assert_eq!(closest("vip", STAGES.iter().copied()), None);
        assert_eq!(
            closest("can't lose them", RFM_SEGMENTS.iter().copied()),
            Some("cant_lose_them")
        );
        assert!(
            err("loss_reason = \"bad service\"")
                .message
                .contains("did you mean \"poor_service\"?")
        );
        assert!(
            err("rfm_segment = \"champion\"")
                .message
                .contains("did you mean \"champions\"?")
        );
    }

    #[test]
    fn the_error_shows_its_column_and_a_marker() {
        let input = "stage = \"new\" clv > 500";
        let e = err(input);
        assert_eq!(
            e.to_string(),
            "at column 15: expected \"and\" or \"or\" between conditions, found \"clv\""
        );
        assert_eq!(
            e.caret(input),
            "stage = \"new\" clv > 500\n              ^~~"
        );
        let input = "tag = \"vip";
        assert_eq!(err(input).caret(input), "tag = \"vip\n      ^~~~");
        // Nothing follows: the marker sits right after the text, not after trailing spaces.
        let input = "r = 1 and   ";
        assert_eq!(err(input).caret(input), "r = 1 and   \n         ^");
        // A filter over several lines shows the line at fault.
        let input = "r = 1 and\nclv >\n";
        let e = err(input);
        assert_eq!(e.position, 15);
        assert_eq!(e.caret(input), "clv >\n     ^");
        let input = "r = 1 and\r\nclv = 'x'";
        assert_eq!(err(input).caret(input), "clv = 'x'\n      ^~~");
        // Tabs are copied and wide characters take two columns.
        let input = "\tclv";
        assert_eq!(err(input).caret(input), "\tclv\n\t   ^");
        let input = "region = \"北部\" 客户";
        let e = err(input);
        assert_eq!((e.position, e.length), (14, 2));
        assert_eq!(e.caret(input), format!("{input}\n{}^~~~", " ".repeat(16)));
        // A position past the end, from a caller's own error, still gives a marker.
        let e = ParseError::new(99, 3, "x");
        assert_eq!(e.caret("ab"), "ab\n  ^");
        assert_eq!(e.caret(""), "\n^");
    }

    #[test]
    fn nesting_is_limited() {
        let depth = |n: usize| format!("{}r = 1{}", "(".repeat(n), ")".repeat(n));
        ok(&depth(MAX_DEPTH));
        let e = err(&depth(MAX_DEPTH + 1));
        assert_eq!((e.position, e.length), (MAX_DEPTH, 1));
        assert_eq!(
            e.message,
            "the expression is nested too deeply: at most 32 levels of parentheses and \"not\""
        );
        let nots = |n: usize| format!("{}r = 1", "not ".repeat(n));
        ok(&nots(MAX_DEPTH));
        let e = err(&nots(MAX_DEPTH + 1));
        assert_eq!((e.position, e.length), (4 * MAX_DEPTH, 3));
        // Parentheses and not count together; siblings do not add up.
        ok(&format!("{} or {}", depth(MAX_DEPTH), nots(MAX_DEPTH)));
        let mixed = format!("{}{}r = 1{}", "not (".repeat(16), "(", ")".repeat(17));
        assert!(err(&mixed).message.contains("nested too deeply"));
        // Far deeper input is refused quickly rather than exhausting the stack.
        assert!(
            err(&"(".repeat(MAX_LENGTH))
                .message
                .contains("nested too deeply")
        );
    }

    #[test]
    fn length_is_limited() {
        let at_limit = format!("r = 1{}", " ".repeat(MAX_LENGTH - 5));
        ok(&at_limit);
        let over = format!("{at_limit}  ");
        let e = err(&over);
        assert_eq!((e.position, e.length), (MAX_LENGTH, 2));
        assert_eq!(
            e.message,
            "the expression is too long: at most 4000 characters, this one has 4002"
        );
        // Characters are counted, not bytes.
        ok(&format!("region = \"{}\"", "北".repeat(MAX_LENGTH - 11)));
    }

    #[test]
    fn segment_refs_and_fields_are_distinct_in_order() {
        let e = ok(
            "in_segment(\"b\") or (in_segment(\"a\") and not in_segment(\"b\")) or has(email) and clv > 1 and in_segment(\"c\") and clv < 9",
        );
        assert_eq!(e.segment_refs(), vec!["b", "a", "c"]);
        assert_eq!(e.fields(), vec![Field::Email, Field::Clv]);
        assert!(ok("true").segment_refs().is_empty());
    }

    #[test]
    fn the_catalogue_agrees_with_the_fields() {
        let mut seen = HashSet::new();
        for spec in FIELDS {
            assert_eq!(Field::from_name(spec.name), Some(spec.field));
            assert_eq!(
                Field::from_name(&spec.name.to_uppercase()),
                Some(spec.field)
            );
            assert_eq!(spec.field.name(), spec.name);
            assert_eq!(spec.field.kind(), spec.kind);
            assert!(!spec.description.is_empty() && !spec.description.ends_with('.'));
            assert!(seen.insert(spec.field), "{} twice", spec.name);
            assert!(
                DOCS.contains(&format!("`{}`", spec.name)),
                "{} undocumented",
                spec.name
            );
        }
        assert_eq!(seen.len(), 35);
        for (name, _) in RESERVED {
            assert!(Field::from_name(name).is_none());
        }
        let kinds: Vec<&str> = crate::customer::CustomerKind::ALL
            .iter()
            .map(|k| k.as_str())
            .collect();
        assert_eq!(kinds, CUSTOMER_KINDS);
    }

    fn deps(list: &[(&str, &[&str])]) -> Vec<(String, Vec<String>)> {
        list.iter()
            .map(|(n, r)| ((*n).to_owned(), r.iter().map(|s| (*s).to_owned()).collect()))
            .collect()
    }

    #[test]
    fn segments_come_after_those_they_use() {
        assert_eq!(
            build_order(&deps(&[("c", &["b"]), ("b", &["a"]), ("a", &[])])),
            Ok(vec!["a".into(), "b".into(), "c".into()])
        );
        // Among segments ready together the input order is kept.
        assert_eq!(
            build_order(&deps(&[("x", &[]), ("y", &["z"]), ("z", &[]), ("w", &[])])),
            Ok(vec!["x".into(), "z".into(), "y".into(), "w".into()])
        );
        assert_eq!(
            build_order(&deps(&[
                ("d", &["b", "c"]),
                ("c", &["a"]),
                ("b", &["a"]),
                ("a", &[])
            ])),
            Ok(vec!["a".into(), "c".into(), "b".into(), "d".into()])
        );
        // Unknown names are the caller's to report.
        assert_eq!(
            build_order(&deps(&[("a", &["nowhere"])])),
            Ok(vec!["a".into()])
        );
        // A name given twice counts once, with the references of both.
        assert_eq!(
            build_order(&deps(&[
                ("a", &[]),
                ("b", &["a"]),
                ("a", &["c"]),
                ("c", &[])
            ])),
            Ok(vec!["c".into(), "a".into(), "b".into()])
        );
        assert_eq!(build_order(&[]), Ok(Vec::new()));
    }

    #[test]
    fn circles_are_named() {
        let e = build_order(&deps(&[("a", &["b"]), ("b", &["a"])])).unwrap_err();
        assert_eq!(e.cycle, vec!["a", "b"]);
        assert_eq!(
            e.to_string(),
            "segments refer to each other in a circle: a → b → a"
        );
        let e = build_order(&deps(&[("a", &["a"])])).unwrap_err();
        assert_eq!(e.cycle, vec!["a"]);
        assert_eq!(
            e.to_string(),
            "segments refer to each other in a circle: a → a"
        );
        // The circle is named without the segments that merely lead into it.
        let e = build_order(&deps(&[
            ("x", &["a"]),
            ("a", &["b"]),
            ("b", &["c"]),
            ("c", &["a"]),
            ("ok", &[]),
        ]))
        .unwrap_err();
        assert_eq!(e.cycle, vec!["a", "b", "c"]);
    }

    /// A small deterministic generator, so that a failure can be replayed.
    struct Lcg(u64);

    impl Lcg {
        fn below(&mut self, n: usize) -> usize {
            self.0 = self
                .0
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            ((self.0 >> 33) as usize) % n
        }
    }

    fn check_anything(input: &str) {
        match parse(input) {
            Ok(e) => {
                e.segment_refs();
                e.fields();
                e.walk(&mut |x| match x {
                    Expr::And(parts) => {
                        assert!(parts.len() > 1);
                        assert!(
                            !parts.iter().any(|p| matches!(p, Expr::And(_))),
                            "{input:?}"
                        );
                    }
                    Expr::Or(parts) => {
                        assert!(parts.len() > 1);
                        assert!(!parts.iter().any(|p| matches!(p, Expr::Or(_))), "{input:?}");
                    }
                    _ => {}
                });
            }
            Err(e) => {
                let count = input.chars().count();
                assert!(e.length >= 1, "{input:?}");
                assert!(e.position <= count.max(1), "{input:?}: {e:?}");
                assert!(!e.message.is_empty());
                assert!(e.to_string().starts_with("at column "));
                assert_eq!(e.caret(input).lines().count(), 2, "{input:?}");
            }
        }
    }

    #[test]
    fn token_soup_never_panics() {
        const TOKENS: &[&str] = &[
            "stage",
            "clv",
            "tag",
            "r",
            "orders",
            "p_alive",
            "created",
            "prospect_parked",
            "email",
            "tier",
            "nps_group",
            "has",
            "in_segment",
            "stag",
            "(",
            ")",
            ",",
            "=",
            "==",
            "!=",
            "<>",
            "<",
            "<=",
            ">",
            ">=",
            "!",
            "and",
            "or",
            "not",
            "in",
            "AND",
            "\"at_risk\"",
            "\"vip\"",
            "'x'",
            "\"2024-02-30\"",
            "\"2024-01-01\"",
            "\"",
            "'",
            "\\",
            "500",
            "-1.5",
            "0.3",
            "7",
            "1.2.3",
            "true",
            "false",
            "#",
            "（",
            "）",
            "，",
            "“",
            "”",
            "北",
            "\n",
            "\t",
            "",
            "-",
            ".",
        ];
        let mut rng = Lcg(42);
        let mut parsed = 0;
        for _ in 0..20_000 {
            let n = rng.below(24);
            let mut input = String::new();
            for _ in 0..n {
                if let Some(t) = TOKENS.get(rng.below(TOKENS.len())) {
                    input.push_str(t);
                }
                if rng.below(4) > 0 {
                    input.push(' ');
                }
            }
            check_anything(&input);
            parsed += usize::from(parse(&input).is_ok());
        }
        // The soup is only a real test if some of it parses.
        assert!(parsed > 0);
        // Sentences that parse stay parsing when built from valid pieces.
        let conditions = [
            "stage = \"new\"",
            "clv > 5",
            "tag in (\"a\", \"b\")",
            "has(email)",
            "in_segment(\"s\")",
            "true",
        ];
        let joins = [" and ", " or ", " and not ", " or ("];
        for _ in 0..2_000 {
            let mut input = String::new();
            let mut open = 0;
            for i in 0..(1 + rng.below(8)) {
                if i > 0 {
                    let j = joins[rng.below(joins.len())];
                    if j.ends_with('(') {
                        open += 1;
                    }
                    input.push_str(j);
                }
                input.push_str(conditions[rng.below(conditions.len())]);
            }
            input.push_str(&")".repeat(open));
            ok(&input);
        }
    }

    #[test]
    fn character_soup_never_panics() {
        let chars: Vec<char> = "abcsr_=<>!()（），,\"'“”‘’\\ -.0123456789\n\t北"
            .chars()
            .collect();
        let mut rng = Lcg(7);
        for _ in 0..20_000 {
            let n = rng.below(30);
            let input: String = (0..n).map(|_| chars[rng.below(chars.len())]).collect();
            check_anything(&input);
        }
    }
}

#[cfg(test)]
mod vocabulary {
    use crate::lifecycle::{LossReason, Stage};

    #[test]
    fn the_value_lists_are_the_stored_vocabularies() {
        let stages: Vec<&str> = Stage::ALL.iter().map(|s| s.as_str()).collect();
        assert_eq!(super::STAGES, stages.as_slice());
        let reasons: Vec<&str> = LossReason::ALL.iter().map(|s| s.as_str()).collect();
        assert_eq!(super::LOSS_REASONS, reasons.as_slice());
    }
}
