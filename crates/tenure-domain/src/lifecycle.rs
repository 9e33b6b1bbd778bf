//! The customer life cycle: the stages a customer passes through (potential → prospect →
//! new → active → loyal → at risk → churned → won back), the thresholds a business sets for
//! them, prospect qualification, reasons for loss, and the pure rule that places a customer
//! from their behaviour.
//!
//! A café's "at risk" is a few weeks of silence, a car dealer's a few years, so every
//! threshold is the business's own ([`LifecycleSettings`]). "At risk" also listens to the
//! customer's own rhythm (a weekly buyer silent for a month is at risk long before a yearly
//! buyer is) and to the purchase model's P(alive) when the models have run.

use chrono::{DateTime, Duration, Utc};

use crate::text_enum;
use crate::validation::{FieldError, Invalid};

text_enum! {
    /// Where a customer stands in their life cycle.
    pub enum Stage {
        /// Known, but neither qualified nor a buyer (a suspect).
        Potential => "potential",
        /// Qualified: can pay, can decide, needs it; not yet a buyer.
        Prospect => "prospect",
        /// A first-time buyer, within the "new" period after the first purchase.
        New => "new",
        /// Buying.
        Active => "active",
        /// Buying, with many orders.
        Loyal => "loyal",
        /// Silent for longer than the threshold, their own rhythm, or unlikely to be alive.
        AtRisk => "at_risk",
        /// Lost: no purchase within the churn threshold.
        Churned => "churned",
        /// Bought again after being lost, within the "won back" period.
        WonBack => "won_back",
    }
}

text_enum! {
    /// Why a customer was lost.
    pub enum LossReason {
        Price => "price",
        PoorService => "poor_service",
        ProductQuality => "product_quality",
        /// Rudeness or slow response.
        SlowResponse => "slow_response",
        Competitor => "competitor",
        Moved => "moved",
        Other => "other",
        Unknown => "unknown",
    }
}

text_enum! {
    /// Who gave a loss reason.
    pub enum LossReasonSource {
        Staff => "staff",
        /// Inferred from the customer's last complaint.
        Inferred => "inferred",
    }
}

text_enum! {
    /// Why a customer moved to a stage.
    pub enum TransitionReason {
        /// Known, no purchase and not qualified.
        NoPurchase => "no_purchase",
        /// Qualified by money, authority and need.
        Qualified => "qualified",
        /// A first purchase.
        FirstPurchase => "first_purchase",
        /// Bought again after the "new" period.
        RepeatPurchase => "repeat_purchase",
        /// Reached the order count of a loyal customer.
        Orders => "orders",
        /// Silent beyond the at-risk threshold.
        Recency => "recency",
        /// Silent for several times their own usual gap between purchases.
        Rhythm => "rhythm",
        /// P(alive) fell below the threshold.
        PAlive => "p_alive",
        /// Silent beyond the churn threshold.
        Lapsed => "lapsed",
        /// Bought again after being lost.
        Returned => "returned",
        /// A staff member set the stage by hand.
        Override => "override",
        /// A staff member removed the manual stage.
        OverrideCleared => "override_cleared",
        /// The purchases that placed the customer were changed or removed.
        HistoryChanged => "history_changed",
    }
}

/// The thresholds of one business. Days are whole days; money is in major units.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(default, deny_unknown_fields)]
pub struct LifecycleSettings {
    /// A first-time buyer is "new" for this many days after the first purchase.
    pub new_days: u32,
    /// Orders that make a buying customer "loyal".
    pub loyal_orders: u32,
    /// No purchase for this many days: "at risk".
    pub at_risk_days: u32,
    /// No purchase for this many days: "churned".
    pub churned_days: u32,
    /// "At risk" when silent for this many times the customer's own average gap between
    /// purchase days; 0 turns the rhythm rule off.
    pub rhythm_factor: f64,
    /// The rhythm rule needs at least this many purchase days to know a rhythm.
    pub rhythm_min_purchase_days: u32,
    /// "At risk" when P(alive) is below this; 0 turns the rule off.
    pub p_alive_at_risk: f64,
    /// A customer who came back is "won back" for this many days after the returning
    /// purchase.
    pub won_back_days: u32,
    /// A prospect is parked after this many contacts without progress (no buying signal,
    /// no change of qualification).
    pub prospect_contact_cap: u32,
    /// A churned customer is worth winning back when their predicted CLV is at least this.
    pub win_back_min_clv: f64,
}

impl Default for LifecycleSettings {
    fn default() -> Self {
        LifecycleSettings {
            new_days: 90,
            loyal_orders: 5,
            at_risk_days: 180,
            churned_days: 365,
            rhythm_factor: 3.0,
            rhythm_min_purchase_days: 3,
            p_alive_at_risk: 0.3,
            won_back_days: 90,
            prospect_contact_cap: 5,
            win_back_min_clv: 100.0,
        }
    }
}

/// The longest threshold anyone needs: ten years.
const MAX_DAYS: u32 = 3_650;

impl LifecycleSettings {
    /// Checks the thresholds fit together; every field at fault is named.
    pub fn validate(&self) -> Result<(), Invalid> {
        let mut errors = Vec::new();
        let days = [
            ("new_days", self.new_days),
            ("at_risk_days", self.at_risk_days),
            ("churned_days", self.churned_days),
            ("won_back_days", self.won_back_days),
        ];
        for (field, v) in days {
            if v == 0 || v > MAX_DAYS {
                errors.push(FieldError::new(
                    field,
                    format!("must be between 1 and {MAX_DAYS} days"),
                ));
            }
        }
        if self.churned_days <= self.at_risk_days {
            errors.push(FieldError::new(
                "churned_days",
                "must be longer than at_risk_days: a customer is at risk before being lost",
            ));
        }
        if self.loyal_orders < 2 || self.loyal_orders > 10_000 {
            errors.push(FieldError::new(
                "loyal_orders",
                "must be between 2 and 10000",
            ));
        }
        if !(0.0..=100.0).contains(&self.rhythm_factor) {
            errors.push(FieldError::new(
                "rhythm_factor",
                "must be between 0 (off) and 100",
            ));
        }
        if self.rhythm_min_purchase_days < 2 || self.rhythm_min_purchase_days > 1_000 {
            errors.push(FieldError::new(
                "rhythm_min_purchase_days",
                "must be between 2 and 1000",
            ));
        }
        if !(0.0..1.0).contains(&self.p_alive_at_risk) {
            errors.push(FieldError::new(
                "p_alive_at_risk",
                "must be at least 0 (off) and below 1",
            ));
        }
        if self.prospect_contact_cap == 0 || self.prospect_contact_cap > 1_000 {
            errors.push(FieldError::new(
                "prospect_contact_cap",
                "must be between 1 and 1000",
            ));
        }
        if !self.win_back_min_clv.is_finite() || self.win_back_min_clv < 0.0 {
            errors.push(FieldError::new(
                "win_back_min_clv",
                "must be zero or a positive amount",
            ));
        }
        if errors.is_empty() {
            Ok(())
        } else {
            Err(Invalid(errors))
        }
    }

    /// The churn window in whole months, for reports counted by month.
    pub fn churn_window_months(&self) -> u32 {
        ((f64::from(self.churned_days) / 30.436_875).round() as u32).max(1)
    }
}

/// What the stage rule reads about one customer.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct StageFacts {
    pub first_purchase: Option<DateTime<Utc>>,
    pub last_purchase: Option<DateTime<Utc>>,
    pub orders: i64,
    pub purchase_days: i64,
    /// The purchase model's P(alive), when the models have run.
    pub p_alive: Option<f64>,
    /// Money, authority and need all confirmed.
    pub qualified: bool,
    /// The latest purchase made after a silence of at least the churn threshold.
    pub returned_at: Option<DateTime<Utc>>,
}

/// A stage with the reason for it and a sentence saying so.
#[derive(Debug, Clone, PartialEq)]
pub struct Placement {
    pub stage: Stage,
    pub reason: TransitionReason,
    pub detail: String,
}

fn days(d: Duration) -> i64 {
    d.num_days()
}

/// Places a customer from their behaviour at `now`. The rules, in order:
/// 1. no purchase: prospect when qualified, else potential;
/// 2. silent for `churned_days`: churned;
/// 3. silent for `at_risk_days`, for `rhythm_factor` times their own average gap (with
///    enough purchase days to know it), or P(alive) below `p_alive_at_risk`: at risk;
/// 4. a purchase after a silence of `churned_days`, within `won_back_days`: won back;
/// 5. within `new_days` of the first purchase and on one purchase day: new;
/// 6. `loyal_orders` orders or more: loyal;
/// 7. otherwise active.
pub fn place(f: &StageFacts, s: &LifecycleSettings, now: DateTime<Utc>) -> Placement {
    let p = |stage, reason, detail: String| Placement {
        stage,
        reason,
        detail,
    };
    let (Some(first), Some(last)) = (f.first_purchase, f.last_purchase) else {
        return if f.qualified {
            p(
                Stage::Prospect,
                TransitionReason::Qualified,
                "can pay, can decide and needs it".into(),
            )
        } else {
            p(
                Stage::Potential,
                TransitionReason::NoPurchase,
                "no purchase yet".into(),
            )
        };
    };
    let silence = days(now - last).max(0);
    if silence >= i64::from(s.churned_days) {
        return p(
            Stage::Churned,
            TransitionReason::Lapsed,
            format!(
                "no purchase for {silence} days (lost after {})",
                s.churned_days
            ),
        );
    }
    if silence >= i64::from(s.at_risk_days) {
        return p(
            Stage::AtRisk,
            TransitionReason::Recency,
            format!(
                "no purchase for {silence} days (at risk after {})",
                s.at_risk_days
            ),
        );
    }
    if s.rhythm_factor > 0.0
        && f.purchase_days >= i64::from(s.rhythm_min_purchase_days)
        && f.purchase_days > 1
    {
        let gap = days(last - first) as f64 / (f.purchase_days - 1) as f64;
        if gap >= 1.0 && silence as f64 > s.rhythm_factor * gap {
            return p(
                Stage::AtRisk,
                TransitionReason::Rhythm,
                format!(
                    "no purchase for {silence} days, {:.1} times their usual {:.0}-day gap",
                    silence as f64 / gap,
                    gap
                ),
            );
        }
    }
    if let Some(alive) = f.p_alive
        && s.p_alive_at_risk > 0.0
        && alive < s.p_alive_at_risk
    {
        return p(
            Stage::AtRisk,
            TransitionReason::PAlive,
            format!("P(alive) {alive:.2} is below {:.2}", s.p_alive_at_risk),
        );
    }
    if let Some(back) = f.returned_at
        && days(now - back) < i64::from(s.won_back_days)
    {
        return p(
            Stage::WonBack,
            TransitionReason::Returned,
            format!("bought again on {} after being lost", back.date_naive()),
        );
    }
    if days(now - first) < i64::from(s.new_days) && f.purchase_days <= 1 {
        return p(
            Stage::New,
            TransitionReason::FirstPurchase,
            format!("first purchase on {}", first.date_naive()),
        );
    }
    if f.orders >= i64::from(s.loyal_orders) {
        return p(
            Stage::Loyal,
            TransitionReason::Orders,
            format!("{} orders (loyal from {})", f.orders, s.loyal_orders),
        );
    }
    p(
        Stage::Active,
        TransitionReason::RepeatPurchase,
        format!("{} orders, last on {}", f.orders, last.date_naive()),
    )
}

/// The latest purchase day that followed a silence of at least `churned_days`, from a
/// customer's purchase days in ascending order (days since the epoch).
pub fn returned_after_lapse(purchase_days: &[i64], churned_days: u32) -> Option<i64> {
    purchase_days
        .windows(2)
        .filter_map(|w| match w {
            [a, b] if b - a >= i64::from(churned_days) => Some(*b),
            _ => None,
        })
        .next_back()
}

/// Whether a prospect is parked: `attempts` contacts since the last progress reached the
/// cap.
pub fn parked(attempts_since_progress: i64, s: &LifecycleSettings) -> bool {
    attempts_since_progress >= i64::from(s.prospect_contact_cap)
}

/// The loss reason inferred for a customer who just churned: the category of their latest
/// ticket before they went silent when they opened one (a billing complaint says price, a
/// faulty product says quality), a complaint on another channel says the service failed
/// them; otherwise nobody knows.
pub fn inferred_loss_reason(
    complained: bool,
    ticket: Option<crate::service::TicketCategory>,
) -> LossReason {
    match ticket {
        Some(c) => crate::service::loss_reason_of(c),
        None if complained => LossReason::PoorService,
        None => LossReason::Unknown,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(&format!("{s}T12:00:00Z"))
            .unwrap()
            .with_timezone(&Utc)
    }

    fn buyer(first: &str, last: &str, orders: i64, purchase_days: i64) -> StageFacts {
        StageFacts {
            first_purchase: Some(at(first)),
            last_purchase: Some(at(last)),
            orders,
            purchase_days,
            ..StageFacts::default()
        }
    }

    #[test]
    fn customers_without_purchases_are_potential_until_qualified() {
        let s = LifecycleSettings::default();
        let now = at("2026-06-01");
        assert_eq!(
            place(&StageFacts::default(), &s, now).stage,
            Stage::Potential
        );
        let q = StageFacts {
            qualified: true,
            ..StageFacts::default()
        };
        assert_eq!(place(&q, &s, now).stage, Stage::Prospect);
    }

    #[test]
    fn time_alone_moves_a_buyer_through_the_stages() {
        let s = LifecycleSettings::default();
        let f = buyer("2026-01-01", "2026-01-01", 1, 1);
        assert_eq!(place(&f, &s, at("2026-01-02")).stage, Stage::New);
        // After the new period without a second purchase: active.
        assert_eq!(place(&f, &s, at("2026-04-15")).stage, Stage::Active);
        assert_eq!(place(&f, &s, at("2026-06-30")).stage, Stage::AtRisk);
        let lost = place(&f, &s, at("2027-01-01"));
        assert_eq!(lost.stage, Stage::Churned);
        assert_eq!(lost.reason, TransitionReason::Lapsed);
        assert!(lost.detail.contains("365 days"), "{}", lost.detail);
    }

    #[test]
    fn many_orders_make_a_loyal_customer() {
        let s = LifecycleSettings::default();
        let f = buyer("2025-01-01", "2026-05-20", 6, 6);
        assert_eq!(place(&f, &s, at("2026-06-01")).stage, Stage::Loyal);
        let f = buyer("2025-01-01", "2026-05-20", 4, 4);
        assert_eq!(place(&f, &s, at("2026-06-01")).stage, Stage::Active);
    }

    #[test]
    fn a_weekly_buyer_silent_for_a_month_is_at_risk_by_their_rhythm() {
        let s = LifecycleSettings::default();
        // Ten purchase days a week apart, then silence.
        let f = buyer("2026-01-01", "2026-03-05", 10, 10);
        let p = place(&f, &s, at("2026-04-10"));
        assert_eq!(p.stage, Stage::AtRisk);
        assert_eq!(p.reason, TransitionReason::Rhythm);
        // Without the rhythm rule the same customer is still loyal.
        let off = LifecycleSettings {
            rhythm_factor: 0.0,
            ..s
        };
        assert_eq!(place(&f, &off, at("2026-04-10")).stage, Stage::Loyal);
    }

    #[test]
    fn a_low_p_alive_is_at_risk() {
        let s = LifecycleSettings::default();
        let mut f = buyer("2025-01-01", "2026-05-01", 2, 2);
        f.p_alive = Some(0.1);
        assert_eq!(
            place(&f, &s, at("2026-05-10")).reason,
            TransitionReason::PAlive
        );
        f.p_alive = Some(0.9);
        assert_eq!(place(&f, &s, at("2026-05-10")).stage, Stage::Active);
    }

    #[test]
    fn a_purchase_after_a_lapse_wins_the_customer_back() {
        let s = LifecycleSettings::default();
        let days = [100, 110, 600];
        let back = returned_after_lapse(&days, s.churned_days).unwrap();
        assert_eq!(back, 600);
        let mut f = buyer("2024-01-01", "2026-05-01", 3, 3);
        f.returned_at = Some(at("2026-05-01"));
        assert_eq!(place(&f, &s, at("2026-05-10")).stage, Stage::WonBack);
        // After the won-back period the customer is placed as any other.
        assert_eq!(place(&f, &s, at("2026-08-15")).stage, Stage::Active);
        assert_eq!(returned_after_lapse(&[1, 2, 3], 365), None);
    }

    #[test]
    fn settings_that_do_not_fit_together_are_refused_by_field() {
        let bad = LifecycleSettings {
            at_risk_days: 400,
            churned_days: 300,
            p_alive_at_risk: 1.5,
            ..LifecycleSettings::default()
        };
        let e = bad.validate().unwrap_err();
        let fields: Vec<_> = e.0.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(fields, ["churned_days", "p_alive_at_risk"]);
        assert!(LifecycleSettings::default().validate().is_ok());
        assert_eq!(LifecycleSettings::default().churn_window_months(), 12);
    }

    #[test]
    fn prospects_park_at_the_contact_cap() {
        let s = LifecycleSettings::default();
        assert!(!parked(4, &s));
        assert!(parked(5, &s));
        assert_eq!(inferred_loss_reason(true, None), LossReason::PoorService);
        assert_eq!(
            inferred_loss_reason(false, Some(crate::service::TicketCategory::Billing)),
            LossReason::Price
        );
    }
}
