//! The loyalty program's rules: how a business configures it (earn rules, bonus events,
//! points lifetime, tiers, the money value of a point), how many points an order earns, which
//! lots a redemption or a reversal consumes, which tier a member qualifies for, and the
//! coupons' and referral codes' spelling.
//!
//! Points are whole numbers. Every balance is the sum of an append-only ledger; the rules
//! here only decide what the next entries are.

use chrono::{DateTime, Utc};

use crate::text_enum;
use crate::validation::{FieldError, Invalid};

text_enum! {
    /// What a ledger entry records.
    pub enum EntryKind {
        /// Points an order earned.
        Earn => "earn",
        /// Points a bonus event gave (welcome, birthday, referral, survey answered).
        Bonus => "bonus",
        /// Points spent on a reward or given back for a discount.
        Redeem => "redeem",
        /// Points whose lifetime ended unspent.
        Expire => "expire",
        /// A correction by staff, with its reason.
        Adjust => "adjust",
        /// Points taken back because their order was refunded, reduced or deleted.
        Reverse => "reverse",
        /// Pending points that became spendable when the return window closed (two entries:
        /// minus in the pending bucket, plus in the available one).
        Release => "release",
    }
}

text_enum! {
    /// Which balance an entry moves: spendable points, or points waiting for an order's
    /// return window to close.
    pub enum Bucket {
        Available => "available",
        Pending => "pending",
    }
}

text_enum! {
    /// The events that give bonus points.
    pub enum BonusEvent {
        /// The first purchase of a member.
        Welcome => "welcome",
        Birthday => "birthday",
        /// The member referred someone who has now bought.
        Referral => "referral",
        /// The member came through a referral and has now bought.
        Referred => "referred",
        SurveyAnswered => "survey_answered",
    }
}

text_enum! {
    /// What qualifies a member for a tier over the rolling window.
    pub enum TierBasis {
        /// Points earned (orders and bonuses, less reversals) — never the spendable balance.
        Points => "points",
        /// Money spent, in major units of the reporting currency.
        Spend => "spend",
    }
}

text_enum! {
    /// Why a member's tier changed.
    pub enum TierReason {
        /// The member reached the tier's threshold.
        Qualified => "qualified",
        /// The member stayed below the tier for the whole grace period.
        GraceEnded => "grace_ended",
        /// The program's tiers changed and the member's tier is gone.
        ProgramChanged => "program_changed",
    }
}

text_enum! {
    /// How a coupon discounts.
    pub enum DiscountKind {
        /// A percentage of the order (1–100).
        Percent => "percent",
        /// A fixed amount in major units.
        Amount => "amount",
    }
}

/// Points a category's products earn, as a multiple of the base rate.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct CategoryRate {
    pub category_id: i64,
    /// 0 excludes the category; 2 earns double.
    pub multiplier: f64,
}

/// One membership tier.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct Tier {
    /// A short name, `member`, `silver`, ...: lowercase letters, digits and `_`.
    pub name: String,
    /// Points earned (or money spent) over the window that qualify; the first tier's is 0.
    pub threshold: i64,
    /// Orders earn this many times the base rate at this tier.
    pub multiplier: f64,
    /// What the tier gives, in the business's words (shown to the member).
    #[serde(default)]
    pub privileges: Vec<String>,
}

/// Points the bonus events give; 0 turns one off.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(default, deny_unknown_fields)]
pub struct Bonuses {
    pub welcome: i64,
    pub birthday: i64,
    /// To the member who referred a new buyer.
    pub referral: i64,
    /// To the new buyer who came through a referral.
    pub referred: i64,
    pub survey_answered: i64,
}

impl Default for Bonuses {
    fn default() -> Self {
        Bonuses {
            welcome: 50,
            birthday: 100,
            referral: 200,
            referred: 100,
            survey_answered: 20,
        }
    }
}

impl Bonuses {
    pub fn points(&self, event: BonusEvent) -> i64 {
        match event {
            BonusEvent::Welcome => self.welcome,
            BonusEvent::Birthday => self.birthday,
            BonusEvent::Referral => self.referral,
            BonusEvent::Referred => self.referred,
            BonusEvent::SurveyAnswered => self.survey_answered,
        }
    }
}

/// A business's loyalty program. Money is in major units of the reporting currency.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(default, deny_unknown_fields)]
pub struct LoyaltyProgram {
    /// Whether orders earn points and bonuses are given. Redemptions of points already held
    /// work either way.
    pub enabled: bool,
    /// Orders before this time earn nothing (imported history).
    pub starts_at: Option<DateTime<Utc>>,
    /// Points per major unit spent, to three decimals.
    pub points_per_unit: f64,
    /// Orders below this total earn nothing.
    pub min_order: f64,
    pub categories: Vec<CategoryRate>,
    pub bonuses: Bonuses,
    /// Days a lot of points lives after it is earned; 0: points never expire.
    pub lifetime_days: u32,
    /// Days an order's points wait (the return window) before they can be spent; 0: at once.
    pub pending_days: u32,
    /// What one point is worth, for the liability report.
    pub point_value: f64,
    pub tier_basis: TierBasis,
    /// The rolling window tiers qualify over, in days.
    pub tier_window_days: u32,
    /// Days a member keeps a tier after falling below it.
    pub tier_grace_days: u32,
    /// In ascending thresholds; the first (threshold 0) is every member's.
    pub tiers: Vec<Tier>,
}

impl Default for LoyaltyProgram {
    fn default() -> Self {
        let tier = |name: &str, threshold, multiplier, privileges: &[&str]| Tier {
            name: name.into(),
            threshold,
            multiplier,
            privileges: privileges.iter().map(|p| (*p).into()).collect(),
        };
        LoyaltyProgram {
            enabled: false,
            starts_at: None,
            points_per_unit: 1.0,
            min_order: 0.0,
            categories: Vec::new(),
            bonuses: Bonuses::default(),
            lifetime_days: 365,
            pending_days: 0,
            point_value: 0.01,
            tier_basis: TierBasis::Points,
            tier_window_days: 365,
            tier_grace_days: 30,
            tiers: vec![
                tier("member", 0, 1.0, &[]),
                tier("silver", 500, 1.25, &["Free drink on your birthday"]),
                tier(
                    "gold",
                    2000,
                    1.5,
                    &["Free drink on your birthday", "Free refills"],
                ),
                tier(
                    "platinum",
                    5000,
                    2.0,
                    &[
                        "Free drink on your birthday",
                        "Free refills",
                        "Priority service",
                    ],
                ),
            ],
        }
    }
}

/// The most points one entry may move.
pub const POINTS_MAX: i64 = 1_000_000_000_000;
const RATE_MAX: f64 = 1_000.0;

/// A rate in thousandths (1.25 → 1250); `None` when it has more than three decimals.
fn milli(rate: f64) -> Option<i64> {
    let m = (rate * 1000.0).round();
    ((rate * 1000.0 - m).abs() < 1e-6).then_some(m as i64)
}

fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 32
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
}

impl LoyaltyProgram {
    /// Every field at fault, by name.
    pub fn validate(&self) -> Result<(), Invalid> {
        let mut errors = Vec::new();
        let rate = |field: String, v: f64, errors: &mut Vec<FieldError>| {
            if !v.is_finite() || !(0.0..=RATE_MAX).contains(&v) || milli(v).is_none() {
                errors.push(FieldError::new(
                    field,
                    format!("must be between 0 and {RATE_MAX} with at most three decimals"),
                ));
            }
        };
        rate("points_per_unit".into(), self.points_per_unit, &mut errors);
        if !self.min_order.is_finite() || !(0.0..=1e9).contains(&self.min_order) {
            errors.push(FieldError::new(
                "min_order",
                "must be between 0 and 1000000000",
            ));
        }
        if !self.point_value.is_finite() || !(0.0..=1e6).contains(&self.point_value) {
            errors.push(FieldError::new(
                "point_value",
                "must be between 0 and 1000000",
            ));
        }
        let mut seen = std::collections::HashSet::new();
        for (i, c) in self.categories.iter().enumerate() {
            rate(
                format!("categories[{i}].multiplier"),
                c.multiplier,
                &mut errors,
            );
            if c.category_id <= 0 {
                errors.push(FieldError::new(
                    format!("categories[{i}].category_id"),
                    "must be a positive id",
                ));
            } else if !seen.insert(c.category_id) {
                errors.push(FieldError::new(
                    format!("categories[{i}].category_id"),
                    "is listed twice",
                ));
            }
        }
        for (field, v) in [
            ("bonuses.welcome", self.bonuses.welcome),
            ("bonuses.birthday", self.bonuses.birthday),
            ("bonuses.referral", self.bonuses.referral),
            ("bonuses.referred", self.bonuses.referred),
            ("bonuses.survey_answered", self.bonuses.survey_answered),
        ] {
            if !(0..=1_000_000).contains(&v) {
                errors.push(FieldError::new(
                    field,
                    "must be between 0 and 1000000 points",
                ));
            }
        }
        for (field, v, max) in [
            ("lifetime_days", self.lifetime_days, 36_600),
            ("pending_days", self.pending_days, 366),
            ("tier_grace_days", self.tier_grace_days, 3_660),
        ] {
            if v > max {
                errors.push(FieldError::new(
                    field,
                    format!("must be at most {max} days"),
                ));
            }
        }
        if self.tier_window_days == 0 || self.tier_window_days > 3_660 {
            errors.push(FieldError::new(
                "tier_window_days",
                "must be between 1 and 3660 days",
            ));
        }
        if self.tiers.is_empty() {
            errors.push(FieldError::new("tiers", "needs at least one tier"));
        } else if self.tiers[0].threshold != 0 {
            errors.push(FieldError::new(
                "tiers[0].threshold",
                "must be 0: the first tier is every member's",
            ));
        }
        if self.tiers.len() > 20 {
            errors.push(FieldError::new("tiers", "at most 20 tiers"));
        }
        let mut names = std::collections::HashSet::new();
        for (i, t) in self.tiers.iter().enumerate() {
            if !valid_name(&t.name) {
                errors.push(FieldError::new(
                    format!("tiers[{i}].name"),
                    "must be 1–32 lowercase letters, digits or _",
                ));
            } else if !names.insert(t.name.as_str()) {
                errors.push(FieldError::new(format!("tiers[{i}].name"), "is used twice"));
            }
            if i > 0 && t.threshold <= self.tiers[i - 1].threshold {
                errors.push(FieldError::new(
                    format!("tiers[{i}].threshold"),
                    "must be above the previous tier's",
                ));
            }
            if t.threshold < 0 || t.threshold > POINTS_MAX {
                errors.push(FieldError::new(
                    format!("tiers[{i}].threshold"),
                    "must be between 0 and 1000000000000",
                ));
            }
            rate(format!("tiers[{i}].multiplier"), t.multiplier, &mut errors);
            if t.privileges.len() > 20 || t.privileges.iter().any(|p| p.chars().count() > 200) {
                errors.push(FieldError::new(
                    format!("tiers[{i}].privileges"),
                    "at most 20, each at most 200 characters",
                ));
            }
        }
        if errors.is_empty() {
            Ok(())
        } else {
            Err(Invalid(errors))
        }
    }

    pub fn tier(&self, name: &str) -> Option<&Tier> {
        self.tiers.iter().find(|t| t.name == name)
    }

    /// The first tier, every member's.
    pub fn base_tier(&self) -> &str {
        self.tiers.first().map_or("member", |t| t.name.as_str())
    }

    /// The highest tier `value` (points earned or spend over the window) reaches.
    pub fn qualifying_tier(&self, value: i64) -> &str {
        self.tiers
            .iter()
            .rev()
            .find(|t| value >= t.threshold)
            .map_or_else(|| self.base_tier(), |t| t.name.as_str())
    }

    /// The tier above `tier`, if any.
    pub fn next_tier(&self, tier: &str) -> Option<&Tier> {
        let i = self.tiers.iter().position(|t| t.name == tier)?;
        self.tiers.get(i + 1)
    }

    fn rank(&self, tier: &str) -> Option<usize> {
        self.tiers.iter().position(|t| t.name == tier)
    }

    /// Points an order earns: the base rate on its total, a category's multiplier on the
    /// lines of that category (lines without one, and what the lines do not cover, at the
    /// base rate), all times the member's tier multiplier; rounded down. `None` when the
    /// order does not earn (program off, before its start, below the minimum).
    pub fn order_points(&self, order: &OrderForPoints<'_>, tier: &str) -> Option<i64> {
        if !self.enabled
            || order.total_minor <= 0
            || self.starts_at.is_some_and(|s| order.occurred_at < s)
            || (order.total_minor as f64) < self.min_order * 100.0
        {
            return None;
        }
        let base = i128::from(milli(self.points_per_unit)?);
        let tier_m = i128::from(
            self.tier(tier)
                .and_then(|t| milli(t.multiplier))
                .unwrap_or(1000),
        );
        let mut covered: i128 = 0;
        let mut weighted: i128 = 0; // minor units × category multiplier (thousandths)
        for (amount, category) in order.lines {
            let amount = i128::from((*amount).max(0));
            let m = category
                .and_then(|c| self.categories.iter().find(|r| r.category_id == c))
                .and_then(|r| milli(r.multiplier))
                .unwrap_or(1000);
            covered += amount;
            weighted += amount * i128::from(m);
        }
        let rest = (i128::from(order.total_minor) - covered).max(0);
        weighted += rest * 1000;
        // minor units / 100 × base/1000 × category/1000 × tier/1000
        let points = weighted * base * tier_m / (100 * 1000 * 1000 * 1000);
        let points = i64::try_from(points).unwrap_or(POINTS_MAX).min(POINTS_MAX);
        (points > 0).then_some(points)
    }

    /// When a lot earned at `at` expires.
    pub fn expiry(&self, at: DateTime<Utc>) -> Option<DateTime<Utc>> {
        (self.lifetime_days > 0).then(|| at + chrono::Duration::days(i64::from(self.lifetime_days)))
    }

    /// When an order's points earned at `at` become spendable; `None`: at once.
    pub fn available_at(&self, at: DateTime<Utc>) -> Option<DateTime<Utc>> {
        (self.pending_days > 0).then(|| at + chrono::Duration::days(i64::from(self.pending_days)))
    }

    /// Where a member's tier goes at `now`, given what they qualify for and whether a grace
    /// period is running. Upgrades are immediate; a member below their tier keeps it until
    /// the grace period ends, then drops to the tier they qualify for.
    pub fn evaluate_tier(
        &self,
        current: &str,
        value: i64,
        grace_until: Option<DateTime<Utc>>,
        now: DateTime<Utc>,
    ) -> TierDecision {
        let qualified = self.qualifying_tier(value).to_owned();
        let (Some(cur), Some(q)) = (self.rank(current), self.rank(&qualified)) else {
            // The member's tier is no longer in the program.
            return TierDecision::Change {
                to: qualified,
                reason: TierReason::ProgramChanged,
            };
        };
        if q > cur {
            TierDecision::Change {
                to: qualified,
                reason: TierReason::Qualified,
            }
        } else if q == cur {
            match grace_until {
                Some(_) => TierDecision::EndGrace,
                None => TierDecision::Keep,
            }
        } else {
            match grace_until {
                None if self.tier_grace_days > 0 => TierDecision::StartGrace {
                    until: now + chrono::Duration::days(i64::from(self.tier_grace_days)),
                },
                Some(until) if until > now => TierDecision::Keep,
                _ => TierDecision::Change {
                    to: qualified,
                    reason: TierReason::GraceEnded,
                },
            }
        }
    }
}

/// What the tier evaluation decides for one member.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TierDecision {
    Keep,
    Change {
        to: String,
        reason: TierReason,
    },
    /// Fell below the tier: keep it until `until`.
    StartGrace {
        until: DateTime<Utc>,
    },
    /// Qualifies again for the tier held under grace.
    EndGrace,
}

/// What of an order the earn rule reads.
#[derive(Debug, Clone)]
pub struct OrderForPoints<'a> {
    pub occurred_at: DateTime<Utc>,
    pub total_minor: i64,
    /// Each line's total in minor units and its product's category.
    pub lines: &'a [(i64, Option<i64>)],
}

/// The points an order's earn should now stand at: all of them while the order is complete
/// at its earned total, a share when its total was reduced (a partial refund), none when it
/// was refunded, cancelled or deleted. A raised total earns nothing more.
pub fn order_points_now(earned: i64, earned_on_minor: i64, total_minor: Option<i64>) -> i64 {
    match total_minor {
        None => 0,
        Some(t) if earned_on_minor <= 0 || t >= earned_on_minor => earned,
        Some(t) => {
            let share = i128::from(earned) * i128::from(t.max(0)) / i128::from(earned_on_minor);
            i64::try_from(share).unwrap_or(0)
        }
    }
}

/// A lot of points: what one earn or bonus gave, and what is left of it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lot {
    pub id: i64,
    pub remaining: i64,
    pub expires_at: Option<DateTime<Utc>>,
}

/// Which lots `points` come from: the closest expiry first (lots that never expire last),
/// older lots first among equals. Returns `(lot id, points taken)` and what the lots could
/// not cover.
pub fn consume(lots: &[Lot], points: i64) -> (Vec<(i64, i64)>, i64) {
    let mut order: Vec<&Lot> = lots.iter().filter(|l| l.remaining > 0).collect();
    order.sort_by_key(|l| (l.expires_at.is_none(), l.expires_at, l.id));
    let mut left = points;
    let mut taken = Vec::new();
    for l in order {
        if left == 0 {
            break;
        }
        let take = l.remaining.min(left);
        taken.push((l.id, take));
        left -= take;
    }
    (taken, left)
}

/// The alphabet of referral and coupon codes: no 0/O, 1/I/L, so a code read aloud or
/// copied from paper is typed right.
pub const CODE_ALPHABET: &[u8] = b"23456789ABCDEFGHJKMNPQRSTUVWXYZ";

/// A code as a customer might type it: trimmed, upper case, spaces and dashes dropped.
pub fn normalize_code(code: &str) -> String {
    code.chars()
        .filter(|c| !c.is_whitespace() && *c != '-')
        .flat_map(char::to_uppercase)
        .collect()
}

/// Whether a code is well formed (4–32 letters and digits after normalising).
pub fn valid_code(code: &str) -> bool {
    (4..=32).contains(&code.len()) && code.chars().all(|c| c.is_ascii_alphanumeric())
}

/// A reward of the catalogue, as stored.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct RewardData {
    pub name: String,
    #[serde(default)]
    pub description: String,
    pub points_cost: i64,
    /// How many are left; `null`: unlimited.
    #[serde(default)]
    pub stock: Option<i64>,
    #[serde(default)]
    pub valid_from: Option<DateTime<Utc>>,
    #[serde(default)]
    pub valid_until: Option<DateTime<Utc>>,
    #[serde(default = "yes")]
    pub active: bool,
}

fn yes() -> bool {
    true
}

fn check_window(
    errors: &mut Vec<FieldError>,
    from: Option<DateTime<Utc>>,
    until: Option<DateTime<Utc>>,
) {
    if let (Some(f), Some(u)) = (from, until)
        && u <= f
    {
        errors.push(FieldError::new("valid_until", "must be after valid_from"));
    }
}

fn check_name(errors: &mut Vec<FieldError>, name: &str) {
    let n = name.trim().chars().count();
    if n == 0 || n > 200 {
        errors.push(FieldError::new("name", "must be 1–200 characters"));
    }
}

impl RewardData {
    pub fn validate(&self) -> Result<(), Invalid> {
        let mut errors = Vec::new();
        check_name(&mut errors, &self.name);
        if self.description.chars().count() > 2_000 {
            errors.push(FieldError::new("description", "at most 2000 characters"));
        }
        if !(1..=POINTS_MAX).contains(&self.points_cost) {
            errors.push(FieldError::new(
                "points_cost",
                "must be between 1 and 1000000000000 points",
            ));
        }
        if self
            .stock
            .is_some_and(|s| !(0..=1_000_000_000).contains(&s))
        {
            errors.push(FieldError::new("stock", "must be between 0 and 1000000000"));
        }
        check_window(&mut errors, self.valid_from, self.valid_until);
        if errors.is_empty() {
            Ok(())
        } else {
            Err(Invalid(errors))
        }
    }

    /// Whether it can be redeemed at `now` (active, within its dates, in stock).
    pub fn available(&self, now: DateTime<Utc>) -> bool {
        self.active
            && self.valid_from.is_none_or(|f| now >= f)
            && self.valid_until.is_none_or(|u| now < u)
            && self.stock.is_none_or(|s| s > 0)
    }
}

/// A coupon campaign, as stored.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct CampaignData {
    pub name: String,
    pub discount_kind: DiscountKind,
    /// Whole percent (1–100) or minor units of the reporting currency.
    pub discount_value: i64,
    /// Uses per code: 1 for single-use codes; `null` for unlimited.
    #[serde(default)]
    pub max_uses: Option<i64>,
    /// How often one customer may use the campaign.
    #[serde(default = "one")]
    pub per_customer: i64,
    #[serde(default)]
    pub valid_from: Option<DateTime<Utc>>,
    #[serde(default)]
    pub valid_until: Option<DateTime<Utc>>,
}

fn one() -> i64 {
    1
}

impl CampaignData {
    pub fn validate(&self) -> Result<(), Invalid> {
        let mut errors = Vec::new();
        check_name(&mut errors, &self.name);
        match self.discount_kind {
            DiscountKind::Percent if !(1..=100).contains(&self.discount_value) => {
                errors.push(FieldError::new("discount_value", "a percentage is 1–100"));
            }
            DiscountKind::Amount
                if !(1..=crate::money::AMOUNT_MAX).contains(&self.discount_value) =>
            {
                errors.push(FieldError::new(
                    "discount_value",
                    "must be a positive amount",
                ));
            }
            _ => {}
        }
        if self
            .max_uses
            .is_some_and(|m| !(1..=1_000_000_000).contains(&m))
        {
            errors.push(FieldError::new(
                "max_uses",
                "must be between 1 and 1000000000",
            ));
        }
        if !(1..=1_000_000).contains(&self.per_customer) {
            errors.push(FieldError::new(
                "per_customer",
                "must be between 1 and 1000000",
            ));
        }
        check_window(&mut errors, self.valid_from, self.valid_until);
        if errors.is_empty() {
            Ok(())
        } else {
            Err(Invalid(errors))
        }
    }

    /// The discount on an order of `order_minor` (a percentage rounds down; an amount is at
    /// most the order).
    pub fn discount(&self, order_minor: i64) -> i64 {
        match self.discount_kind {
            DiscountKind::Percent => {
                i64::try_from(i128::from(order_minor) * i128::from(self.discount_value) / 100)
                    .unwrap_or(0)
            }
            DiscountKind::Amount => self.discount_value.min(order_minor.max(0)),
        }
    }

    pub fn valid_at(&self, now: DateTime<Utc>) -> bool {
        self.valid_from.is_none_or(|f| now >= f) && self.valid_until.is_none_or(|u| now < u)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn at(d: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 1, d, 12, 0, 0)
            .single()
            .unwrap_or_default()
    }

    fn on() -> LoyaltyProgram {
        LoyaltyProgram {
            enabled: true,
            ..LoyaltyProgram::default()
        }
    }

    #[test]
    fn orders_earn_by_total_category_and_tier() {
        let mut p = on();
        p.categories.push(CategoryRate {
            category_id: 7,
            multiplier: 2.0,
        });
        let lines = [(3_000, Some(7)), (2_000, None)];
        let o = OrderForPoints {
            occurred_at: at(2),
            total_minor: 6_050,
            lines: &lines,
        };
        // 30.00 at 2×, 20.00 + 10.50 not covered by lines at 1× → 60 + 30.5 = 90 (down).
        assert_eq!(p.order_points(&o, "member"), Some(90));
        // gold 1.5×: 135.75 → 135
        assert_eq!(p.order_points(&o, "gold"), Some(135));
        p.min_order = 100.0;
        assert_eq!(p.order_points(&o, "member"), None);
        p.min_order = 0.0;
        p.starts_at = Some(at(3));
        assert_eq!(p.order_points(&o, "member"), None);
        p.enabled = false;
        p.starts_at = None;
        assert_eq!(p.order_points(&o, "member"), None);
    }

    #[test]
    fn fractional_rates_round_down_never_up() {
        let mut p = on();
        p.points_per_unit = 0.333;
        let o = OrderForPoints {
            occurred_at: at(2),
            total_minor: 999,
            lines: &[],
        };
        // 9.99 × 0.333 = 3.32667
        assert_eq!(p.order_points(&o, "member"), Some(3));
        p.points_per_unit = 0.3333;
        assert!(p.validate().is_err());
    }

    #[test]
    fn a_refund_takes_back_the_share_of_what_was_refunded() {
        assert_eq!(order_points_now(100, 10_000, Some(10_000)), 100);
        assert_eq!(order_points_now(100, 10_000, Some(12_000)), 100);
        assert_eq!(order_points_now(100, 10_000, Some(2_500)), 25);
        assert_eq!(order_points_now(100, 10_000, Some(0)), 0);
        assert_eq!(order_points_now(100, 10_000, None), 0);
    }

    #[test]
    fn lots_are_consumed_closest_expiry_first() {
        let lots = [
            Lot {
                id: 1,
                remaining: 50,
                expires_at: None,
            },
            Lot {
                id: 2,
                remaining: 30,
                expires_at: Some(at(20)),
            },
            Lot {
                id: 3,
                remaining: 40,
                expires_at: Some(at(10)),
            },
            Lot {
                id: 4,
                remaining: 0,
                expires_at: Some(at(5)),
            },
        ];
        assert_eq!(consume(&lots, 60), (vec![(3, 40), (2, 20)], 0));
        assert_eq!(consume(&lots, 200), (vec![(3, 40), (2, 30), (1, 50)], 80));
        assert_eq!(consume(&lots, 0), (vec![], 0));
    }

    #[test]
    fn tiers_go_up_at_once_and_down_after_the_grace_period() {
        let p = on();
        assert_eq!(p.qualifying_tier(0), "member");
        assert_eq!(p.qualifying_tier(500), "silver");
        assert_eq!(p.qualifying_tier(4_999), "gold");
        assert_eq!(
            p.evaluate_tier("member", 2_500, None, at(1)),
            TierDecision::Change {
                to: "gold".into(),
                reason: TierReason::Qualified
            }
        );
        assert_eq!(
            p.evaluate_tier("gold", 100, None, at(1)),
            TierDecision::StartGrace { until: at(31) }
        );
        assert_eq!(
            p.evaluate_tier("gold", 100, Some(at(31)), at(20)),
            TierDecision::Keep
        );
        assert_eq!(
            p.evaluate_tier("gold", 600, Some(at(31)), at(31)),
            TierDecision::Change {
                to: "silver".into(),
                reason: TierReason::GraceEnded
            }
        );
        assert_eq!(
            p.evaluate_tier("gold", 2_000, Some(at(31)), at(20)),
            TierDecision::EndGrace
        );
        assert_eq!(
            p.evaluate_tier("diamond", 0, None, at(1)),
            TierDecision::Change {
                to: "member".into(),
                reason: TierReason::ProgramChanged
            }
        );
    }

    #[test]
    fn a_program_is_checked_field_by_field() {
        assert!(LoyaltyProgram::default().validate().is_ok());
        let mut p = on();
        p.tiers[0].threshold = 10;
        p.tiers[2].threshold = 100;
        p.tiers[3].name = "Platinum!".into();
        p.tier_window_days = 0;
        let Err(Invalid(errors)) = p.validate() else {
            panic!("accepted a broken program")
        };
        let fields: Vec<&str> = errors.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(
            fields,
            [
                "tier_window_days",
                "tiers[0].threshold",
                "tiers[2].threshold",
                "tiers[3].name"
            ]
        );
    }

    #[test]
    fn codes_are_read_as_typed() {
        assert_eq!(normalize_code(" ab-cd 23 "), "ABCD23");
        assert!(valid_code("ABCD23"));
        assert!(!valid_code("AB"));
        assert!(!valid_code("ABC$"));
    }
}
