//! The shifted-beta-geometric model of contractual retention (Fader & Hardie 2007): each
//! subscriber renews each period with a fixed probability 1 − θ, θ ~ Beta(α, β) across
//! subscribers. Fitted on a cohort's survivor counts at renewals 0, 1, 2, ...

use crate::optimize::{Objective, maximize_from, standard_errors};
use crate::special::{digamma, ln_beta};

/// Fitted (or given) sBG parameters.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Sbg {
    pub alpha: f64,
    pub beta: f64,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Fit {
    pub params: Sbg,
    pub log_likelihood: f64,
    /// Standard errors of α and β.
    pub standard_errors: [f64; 2],
    pub converged: bool,
}

/// Survivor counts: `survivors[0]` started, `survivors[t]` were still subscribed after
/// renewal t.
struct Data(Vec<f64>);

impl Objective for Data {
    fn value_and_gradient(&self, p: &[f64], g: &mut [f64]) -> f64 {
        let (a, b) = (p[0], p[1]);
        let lb = ln_beta(a, b);
        let (dg_a, dg_b, dg_ab) = (digamma(a), digamma(b), digamma(a + b));
        let mut value = 0.0;
        g[0] = 0.0;
        g[1] = 0.0;
        let n = self.0.len() - 1;
        // Those lost at renewal t: P(T = t) = B(α+1, β+t−1)/B(α, β).
        for t in 1..=n {
            let lost = self.0[t - 1] - self.0[t];
            let tf = t as f64;
            value += lost * (ln_beta(a + 1.0, b + tf - 1.0) - lb);
            g[0] += lost * (digamma(a + 1.0) - digamma(a + b + tf) - dg_a + dg_ab);
            g[1] += lost * (digamma(b + tf - 1.0) - digamma(a + b + tf) - dg_b + dg_ab);
        }
        // Those still there after the last renewal: S(n) = B(α, β+n)/B(α, β).
        let nf = n as f64;
        let alive = self.0[n];
        value += alive * (ln_beta(a, b + nf) - lb);
        g[0] += alive * (dg_a - digamma(a + b + nf) - dg_a + dg_ab);
        g[1] += alive * (digamma(b + nf) - digamma(a + b + nf) - dg_b + dg_ab);
        value
    }
}

/// Fits sBG to a cohort's survivor counts (at least the start and one renewal).
pub fn fit(survivors: &[f64]) -> Fit {
    let data = Data(survivors.to_vec());
    let nan = Fit {
        params: Sbg {
            alpha: f64::NAN,
            beta: f64::NAN,
        },
        log_likelihood: f64::NAN,
        standard_errors: [f64::NAN; 2],
        converged: false,
    };
    if survivors.len() < 2 {
        return nan;
    }
    let m = maximize_from(&data, &[[1.0, 1.0], [0.5, 3.0], [3.0, 0.5]]);
    if !m.log_likelihood.is_finite() {
        return nan;
    }
    let se = standard_errors(&data, &m.params);
    Fit {
        params: Sbg {
            alpha: m.params[0],
            beta: m.params[1],
        },
        log_likelihood: m.log_likelihood,
        standard_errors: [se[0], se[1]],
        converged: m.converged,
    }
}

impl Sbg {
    /// S(t) = B(α, β+t)/B(α, β): the share still subscribed after renewal t.
    pub fn survival(&self, t: u32) -> f64 {
        (ln_beta(self.alpha, self.beta + f64::from(t)) - ln_beta(self.alpha, self.beta)).exp()
    }

    /// The share of those subscribed after renewal t−1 who renew at t: (β+t−1)/(α+β+t−1).
    pub fn retention(&self, t: u32) -> f64 {
        let t = f64::from(t);
        (self.beta + t - 1.0) / (self.alpha + self.beta + t - 1.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reproduces_the_published_fits() {
        // Fader & Hardie (2007): regular and high-end customers, renewals 0..7.
        let regular = [1000.0, 631.0, 468.0, 382.0, 326.0, 289.0, 262.0, 241.0];
        let high_end = [1000.0, 869.0, 743.0, 653.0, 593.0, 551.0, 517.0, 491.0];
        for (survivors, alpha, beta) in [(regular, 0.704, 1.182), (high_end, 0.668, 3.806)] {
            let f = fit(&survivors);
            assert!(f.converged, "{f:?}");
            assert!((f.params.alpha - alpha).abs() < 5e-4, "{f:?}");
            assert!((f.params.beta - beta).abs() < 5e-4, "{f:?}");
            // The fitted curve tracks the data.
            for (t, s) in survivors.iter().enumerate() {
                let predicted = 1000.0 * f.params.survival(t as u32);
                assert!((predicted - s).abs() < 25.0, "t={t}: {predicted} vs {s}");
            }
            let r1 = f.params.retention(1);
            assert!((r1 - f.params.survival(1)).abs() < 1e-12);
        }
    }
}
