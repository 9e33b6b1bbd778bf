//! The Pareto/NBD model (Schmittlein, Morrison & Colombo 1987): while alive a customer buys
//! at a Poisson rate λ ~ Gamma(r, α) and stays alive for an exponential lifetime with rate
//! μ ~ Gamma(s, β). Likelihood and expectations as in Fader & Hardie (2005), "A note on
//! deriving the Pareto/NBD model and related expressions".
//!
//! For one customer,
//! L = Γ(r+x) αʳ βˢ / Γ(r) · [ (α+T)^−(r+x) (β+T)^−s + s/(r+s+x) · A₀ ],
//! where A₀ is a difference of two ₂F₁(r+s+x, ·; r+s+x+1; z) terms at t_x and T. Its
//! derivatives in the parameters have no convenient closed form, so the fit takes the
//! gradient by central differences (about eight correct digits, ample for the maximum).

use rayon::prelude::*;

use crate::optimize::{CentralDifferences, maximize_from, maximize_staged, standard_errors};
use crate::special::{ln_gamma, ln_hyp2f1_next};
use crate::summary::{ByRepeats, CHUNK, Summary, sample};

/// Fitted (or given) Pareto/NBD parameters.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ParetoNbd {
    pub r: f64,
    pub alpha: f64,
    pub s: f64,
    pub beta: f64,
}

/// A fit: the parameters, the summed log-likelihood and the standard errors.
#[derive(Debug, Clone, PartialEq)]
pub struct Fit {
    pub params: ParetoNbd,
    pub log_likelihood: f64,
    /// Standard errors of r, α, s, β.
    pub standard_errors: [f64; 4],
    pub iterations: usize,
    pub converged: bool,
}

/// ln(1 − eˣ) for x < 0, accurate at both ends.
fn ln_1m_exp(x: f64) -> f64 {
    if x > -std::f64::consts::LN_2 {
        (-x.exp_m1()).ln()
    } else {
        (-x.exp()).ln_1p()
    }
}

impl ParetoNbd {
    fn from_slice(p: &[f64]) -> ParetoNbd {
        ParetoNbd {
            r: p[0],
            alpha: p[1],
            s: p[2],
            beta: p[3],
        }
    }

    /// ln A₀; −∞ when t_x = T (no room to have died unseen).
    fn ln_a0(&self, x: f64, t_x: f64, t: f64) -> f64 {
        let ParetoNbd { r, alpha, s, beta } = *self;
        // The form whose argument stays in [0, 1): divide by the larger of α and β.
        let (m, b) = if alpha >= beta {
            (alpha, s + 1.0)
        } else {
            (beta, r + x)
        };
        let d = (alpha - beta).abs();
        let a = r + s + x;
        let ln_d = |y: f64| ln_hyp2f1_next(a, b, d / (m + y)) - a * (m + y).ln();
        let (hi, lo) = (ln_d(t_x), ln_d(t));
        if hi > lo {
            hi + ln_1m_exp(lo - hi)
        } else {
            f64::NEG_INFINITY
        }
    }

    /// ln of the two parts of the likelihood without their common factor: alive at T,
    /// and died unseen between t_x and T.
    fn parts(&self, x: f64, t_x: f64, t: f64) -> (f64, f64) {
        let ParetoNbd { r, alpha, s, beta } = *self;
        let alive = -(r + x) * (alpha + t).ln() - s * (beta + t).ln();
        let died = s.ln() - (r + s + x).ln() + self.ln_a0(x, t_x, t);
        (alive, died)
    }

    fn log_likelihood_grouped(&self, data: &ByRepeats) -> f64 {
        let ParetoNbd { r, alpha, s, beta } = *self;
        let common = -ln_gamma(r) + r * alpha.ln() + s * beta.ln();
        let mut value: f64 = data
            .xs
            .iter()
            .zip(&data.counts)
            .map(|(&x, &n)| n * (ln_gamma(r + x) + common))
            .sum();
        // Summed in fixed chunks on all cores, then in chunk order: the same result every run.
        let partial: Vec<f64> = data
            .rows
            .par_chunks(CHUNK)
            .map(|chunk| {
                chunk
                    .iter()
                    .map(|&(i, t_x, t)| {
                        let (alive, died) = self.parts(data.xs[i], t_x, t);
                        let m = alive.max(died);
                        m + ((alive - m).exp() + (died - m).exp()).ln()
                    })
                    .sum::<f64>()
            })
            .collect();
        value += partial.iter().sum::<f64>();
        if value.is_nan() {
            f64::NEG_INFINITY
        } else {
            value
        }
    }

    /// The summed log-likelihood of the summaries under these parameters.
    pub fn log_likelihood(&self, customers: &[Summary]) -> f64 {
        self.log_likelihood_grouped(&ByRepeats::new(customers))
    }

    /// The probability that a customer with this history is still alive at T.
    pub fn p_alive(&self, c: &Summary) -> f64 {
        let (alive, died) = self.parts(c.x, c.t_x, c.t);
        1.0 / (1.0 + (died - alive).exp())
    }

    /// (1 − ((β+T)/(β+T+t))^(s−1)) / (s−1): the lifetime part of the expectations (its
    /// limit ln((β+T+t)/(β+T)) at s = 1).
    fn lifetime_factor(&self, from: f64, horizon: f64) -> f64 {
        let base = self.beta + from;
        let ratio = horizon / base;
        let k = self.s - 1.0;
        if k.abs() < 1e-9 {
            ratio.ln_1p()
        } else {
            -(-k * ratio.ln_1p()).exp_m1() / k
        }
    }

    /// Expected purchases in the next `horizon` time units for a customer with this history.
    pub fn expected_purchases(&self, c: &Summary, horizon: f64) -> f64 {
        let mut out = [0.0];
        self.expected_purchases_many(c, &[horizon], &mut out);
        out[0]
    }

    /// Expected purchases over each of `horizons` (into `out`), P(alive) computed once.
    pub fn expected_purchases_many(&self, c: &Summary, horizons: &[f64], out: &mut [f64]) {
        let ParetoNbd { r, alpha, beta, .. } = *self;
        let scale = (r + c.x) * (beta + c.t) / (alpha + c.t) * self.p_alive(c);
        for (o, h) in out.iter_mut().zip(horizons) {
            *o = scale * self.lifetime_factor(c.t, *h);
        }
    }

    /// Expected purchases of a new customer in their first `t` time units.
    pub fn expected_purchases_new(&self, t: f64) -> f64 {
        let ParetoNbd { r, alpha, beta, .. } = *self;
        r * beta / alpha * self.lifetime_factor(0.0, t)
    }
}

/// Fits Pareto/NBD to the summaries by maximum likelihood (see [`maximize_from`] for how the
/// starting points are used).
pub fn fit(customers: &[Summary]) -> Fit {
    let data = ByRepeats::new(customers);
    let f = CentralDifferences(|p: &[f64]| ParetoNbd::from_slice(p).log_likelihood_grouped(&data));
    let mean_t = customers.iter().map(|c| c.t).sum::<f64>() / customers.len().max(1) as f64;
    let starts = [
        [0.5, 10.0, 0.5, 10.0],
        [1.0, 1.0, 1.0, 1.0],
        [0.1, mean_t.max(1.0), 1.5, mean_t.max(1.0)],
    ];
    let m = match sample(customers, 20_000) {
        Some((part, share)) => {
            let part = ByRepeats::new(&part);
            let g = CentralDifferences(|p: &[f64]| {
                ParetoNbd::from_slice(p).log_likelihood_grouped(&part)
            });
            maximize_staged(&f, &g, share, &starts)
        }
        None => maximize_from(&f, &starts),
    };
    let se = standard_errors(&f, &m.params);
    Fit {
        params: ParetoNbd::from_slice(&m.params),
        log_likelihood: m.log_likelihood,
        standard_errors: [se[0], se[1], se[2], se[3]],
        iterations: m.iterations,
        converged: m.converged,
    }
}
