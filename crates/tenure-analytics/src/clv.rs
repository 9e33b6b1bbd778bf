//! Discounted customer lifetime value from the two models.

use crate::bgnbd::BgNbd;
use crate::gamma_gamma::GammaGamma;
use crate::pareto_nbd::ParetoNbd;
use crate::summary::Summary;

/// A model of how many purchases a customer makes and whether they are still a customer:
/// BG/NBD or Pareto/NBD.
pub trait PurchaseModel: Sync {
    /// The probability that a customer with this history is still alive at T.
    fn p_alive(&self, c: &Summary) -> f64;
    /// Expected purchases over each of `horizons` (into `out`) for a customer with this
    /// history.
    fn expected_purchases_many(&self, c: &Summary, horizons: &[f64], out: &mut [f64]);
    /// Expected purchases in the next `horizon` time units for a customer with this history.
    fn expected_purchases(&self, c: &Summary, horizon: f64) -> f64 {
        let mut out = [0.0];
        self.expected_purchases_many(c, &[horizon], &mut out);
        out[0]
    }
    /// Expected purchases of a new customer in their first `t` time units.
    fn expected_purchases_new(&self, t: f64) -> f64;
}

macro_rules! purchase_model {
    ($t:ty) => {
        impl PurchaseModel for $t {
            fn p_alive(&self, c: &Summary) -> f64 {
                <$t>::p_alive(self, c)
            }
            fn expected_purchases_many(&self, c: &Summary, horizons: &[f64], out: &mut [f64]) {
                <$t>::expected_purchases_many(self, c, horizons, out)
            }
            fn expected_purchases_new(&self, t: f64) -> f64 {
                <$t>::expected_purchases_new(self, t)
            }
        }
    };
}

purchase_model!(BgNbd);
purchase_model!(ParetoNbd);

/// How CLV is counted: over `periods` periods of `period_length` time units each, with
/// expected spend times `margin`, discounted at `discount_rate` per period.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ClvTerms {
    pub periods: u32,
    pub period_length: f64,
    pub discount_rate: f64,
    pub margin: f64,
}

impl ClvTerms {
    /// Twelve months of 4.345 weeks, 1 % a month, the whole spend.
    pub const MONTHLY_WEEKS_YEAR: ClvTerms = ClvTerms {
        periods: 12,
        period_length: 4.345,
        discount_rate: 0.01,
        margin: 1.0,
    };
}

impl ClvTerms {
    /// The ends of the periods, in time units: L, 2L, … nL.
    pub fn horizons(&self) -> Vec<f64> {
        (1..=self.periods)
            .map(|i| self.period_length * f64::from(i))
            .collect()
    }

    /// Σ_{i=1..n} margin · m̂ · [E(Y(L·i)) − E(Y(L·(i−1)))] / (1+d)^i, from the expected
    /// purchases at the ends of the periods (see [`ClvTerms::horizons`]) and the expected
    /// value of a purchase m̂.
    pub fn discounted(&self, value: f64, expected: &[f64]) -> f64 {
        let value = value * self.margin;
        let mut total = 0.0;
        let mut before = 0.0;
        let mut discount = 1.0;
        for &now in expected {
            discount /= 1.0 + self.discount_rate;
            total += value * (now - before) * discount;
            before = now;
        }
        total
    }
}

/// Σ_{i=1..n} margin · m̂ · [E(Y(L·i)) − E(Y(L·(i−1)))] / (1+d)^i.
pub fn clv(
    model: &(impl PurchaseModel + ?Sized),
    spend: &GammaGamma,
    c: &Summary,
    terms: ClvTerms,
) -> f64 {
    let horizons = terms.horizons();
    let mut expected = vec![0.0; horizons.len()];
    model.expected_purchases_many(c, &horizons, &mut expected);
    terms.discounted(spend.expected_value(c), &expected)
}
