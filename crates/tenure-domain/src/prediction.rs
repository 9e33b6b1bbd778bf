//! What the customer-base models predict for a customer, and the rules derived from it:
//! churn risk and the value at risk that ranks the at-risk list.

use crate::cursor::CursorKey;
use crate::ids::CustomerId;

/// What the models predict for a customer.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Prediction {
    /// Probability that the customer is still buying.
    pub p_alive: f64,
    /// Purchases expected over the horizon.
    pub expected_purchases: f64,
    /// Expected value of a purchase, in the reporting currency.
    pub expected_value: f64,
    /// Discounted value over the horizon, in the reporting currency.
    pub clv: f64,
    pub horizon_days: i64,
    pub computed_at: chrono::DateTime<chrono::Utc>,
}

impl Prediction {
    /// 1 − P(alive).
    pub fn churn_risk(&self) -> f64 {
        1.0 - self.p_alive
    }

    /// Churn risk times CLV: what the at-risk list ranks by. Customers almost sure to stay
    /// (no risk) and almost surely gone (no value left) both score low; the valuable
    /// customers whose staying is in doubt score high.
    pub fn value_at_risk(&self) -> f64 {
        self.churn_risk() * self.clv
    }
}

/// Where a page of the at-risk list ends: highest value at risk first, then by id
/// descending.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct AtRiskPosition {
    pub value_at_risk: f64,
    pub customer: CustomerId,
}

impl CursorKey for AtRiskPosition {
    const TAG: &'static str = "at_risk";
    type Parts = (f64, i64);

    fn to_parts(&self) -> (f64, i64) {
        (self.value_at_risk, self.customer.0)
    }

    fn from_parts((v, id): (f64, i64)) -> Option<Self> {
        (v.is_finite() && id > 0).then_some(AtRiskPosition {
            value_at_risk: v,
            customer: CustomerId(id),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn value_at_risk_is_risk_times_value() {
        let p = Prediction {
            p_alive: 0.25,
            expected_purchases: 2.0,
            expected_value: 10.0,
            clv: 100.0,
            horizon_days: 365,
            computed_at: chrono::Utc::now(),
        };
        assert_eq!(p.churn_risk(), 0.75);
        assert_eq!(p.value_at_risk(), 75.0);
        let pos = AtRiskPosition {
            value_at_risk: 0.1 + 0.2,
            customer: CustomerId(7),
        };
        let back: AtRiskPosition = crate::cursor::decode(&crate::cursor::encode(&pos)).unwrap();
        assert_eq!(back, pos, "an f64 position survives the cursor exactly");
        // A value whose shortest form a fast, inexact float parser reads one unit in the last
        // place off (a page boundary of the at-risk list repeated its customer).
        for v in [13.5940592064675, 2.0f64.powi(-1074), f64::MAX, 1.0 / 3.0] {
            let pos = AtRiskPosition {
                value_at_risk: v,
                customer: CustomerId(7),
            };
            let back: AtRiskPosition = crate::cursor::decode(&crate::cursor::encode(&pos)).unwrap();
            assert_eq!(back.value_at_risk.to_bits(), v.to_bits(), "{v:e}");
        }
    }
}
