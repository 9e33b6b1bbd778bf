//! Discounted customer lifetime value from the two models.

use crate::bgnbd::BgNbd;
use crate::gamma_gamma::GammaGamma;
use crate::summary::Summary;

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

/// Σ_{i=1..n} margin · m̂ · [E(Y(L·i)) − E(Y(L·(i−1)))] / (1+d)^i.
pub fn clv(bgnbd: &BgNbd, spend: &GammaGamma, c: &Summary, terms: ClvTerms) -> f64 {
    let value = spend.expected_value(c) * terms.margin;
    let mut total = 0.0;
    let mut before = 0.0;
    for i in 1..=terms.periods {
        let now = bgnbd.expected_purchases(c, terms.period_length * f64::from(i));
        total += value * (now - before) / (1.0 + terms.discount_rate).powi(i as i32);
        before = now;
    }
    total
}
