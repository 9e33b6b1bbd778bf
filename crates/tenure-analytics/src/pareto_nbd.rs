//! The Pareto/NBD model (Schmittlein, Morrison & Colombo 1987): while alive a customer buys
//! at a Poisson rate λ ~ Gamma(r, α) and stays alive for an exponential lifetime with rate
//! μ ~ Gamma(s, β). Likelihood and expectations as in Fader & Hardie (2005), "A note on
//! deriving the Pareto/NBD model and related expressions".
//!
//! For one customer,
//! L = Γ(r+x) αʳ βˢ / Γ(r) · [ (α+T)^−(r+x) (β+T)^−s + s/(r+s+x) · A₀ ],
//! where A₀ is a difference of two ₂F₁(r+s+x, ·; r+s+x+1; z) terms at t_x and T. The
//! gradient is analytic: the series' derivatives in its parameters and argument are summed
//! alongside it.

use rayon::prelude::*;

use crate::optimize::{Objective, maximize_from, maximize_staged, standard_errors};
use crate::special::{digamma, ln_gamma, ln_hyp2f1_one};
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

    /// ln D(y) and (when `GRADIENT`) its gradient in (r, α, s, β), where A₀ = D(t_x) − D(T)
    /// and D(y) = ₂F₁(r+s+x, b; r+s+x+1; z(y)) / (m+y)^(r+s+x), m the larger of α and β.
    /// After Euler's transformation (see [`ln_hyp2f1_one`]):
    /// for α ≥ β, ln D = −(r+x) ln(α+y) − s ln(β+y) + ln ₂F₁(1, r+x; r+s+x+1; (α−β)/(α+y));
    /// for α < β, ln D = (1−r−x) ln(α+y) − (s+1) ln(β+y) + ln ₂F₁(1, s+1; r+s+x+1; (β−α)/(β+y)).
    fn ln_d<const GRADIENT: bool>(&self, x: f64, y: f64) -> (f64, [f64; 4]) {
        let ParetoNbd { r, alpha, s, beta } = *self;
        let a = r + s + x;
        let (ay, by) = (alpha + y, beta + y);
        let (la, lb) = (ay.ln(), by.ln());
        if alpha >= beta {
            let (lg, [gc, ga, gz]) = ln_hyp2f1_one::<GRADIENT>(r + x, a, (alpha - beta) / ay);
            let value = -(r + x) * la - s * lb + lg;
            // ∂z/∂α = (β+y)/(α+y)², ∂z/∂β = −1/(α+y).
            let gradient = [
                -la + gc + ga,
                -(r + x) / ay + gz * by / (ay * ay),
                -lb + ga,
                -s / by - gz / ay,
            ];
            (value, gradient)
        } else {
            let (lg, [gc, ga, gz]) = ln_hyp2f1_one::<GRADIENT>(s + 1.0, a, (beta - alpha) / by);
            let value = (1.0 - r - x) * la - (s + 1.0) * lb + lg;
            // ∂z/∂α = −1/(β+y), ∂z/∂β = (α+y)/(β+y)².
            let gradient = [
                -la + ga,
                (1.0 - r - x) / ay - gz / by,
                -lb + gc + ga,
                -(s + 1.0) / by + gz * ay / (by * by),
            ];
            (value, gradient)
        }
    }

    /// One customer's log-likelihood without the terms of x alone, and (when `GRADIENT`)
    /// its gradient: the log of the sum of the two parts of the likelihood, alive at T and
    /// died unseen between t_x and T.
    fn ln_parts<const GRADIENT: bool>(&self, x: f64, t_x: f64, t: f64) -> (f64, [f64; 4]) {
        let (alive, died, alive_gradient, died_gradient) = self.parts::<GRADIENT>(x, t_x, t);
        let m = alive.max(died);
        let (e1, e2) = ((alive - m).exp(), (died - m).exp());
        let total = e1 + e2;
        let (w1, w2) = (e1 / total, e2 / total);
        let mut g = [0.0; 4];
        if GRADIENT {
            for k in 0..4 {
                g[k] = w1 * alive_gradient[k] + if w2 > 0.0 { w2 * died_gradient[k] } else { 0.0 };
            }
        }
        (m + total.ln(), g)
    }

    /// ln of the two parts of the likelihood without their common factor, with gradients.
    fn parts<const GRADIENT: bool>(
        &self,
        x: f64,
        t_x: f64,
        t: f64,
    ) -> (f64, f64, [f64; 4], [f64; 4]) {
        let ParetoNbd { r, alpha, s, beta } = *self;
        let alive = -(r + x) * (alpha + t).ln() - s * (beta + t).ln();
        let alive_gradient = [
            -(alpha + t).ln(),
            -(r + x) / (alpha + t),
            -(beta + t).ln(),
            -s / (beta + t),
        ];
        let (d1, g1) = self.ln_d::<GRADIENT>(x, t_x);
        let (d2, g2) = self.ln_d::<GRADIENT>(x, t);
        if d1 <= d2 {
            // t_x = T: no room to have died unseen.
            return (alive, f64::NEG_INFINITY, alive_gradient, [0.0; 4]);
        }
        // ln A₀ = ln(D₁ − D₂), ∂ ln A₀ = (∂ln D₁ − ρ ∂ln D₂)/(1 − ρ) with ρ = D₂/D₁.
        let rho = (d2 - d1).exp();
        let ln_a0 = d1 + ln_1m_exp(d2 - d1);
        let a = r + s + x;
        let died = s.ln() - a.ln() + ln_a0;
        let mut died_gradient = [0.0; 4];
        if GRADIENT {
            for k in 0..4 {
                died_gradient[k] = (g1[k] - rho * g2[k]) / (1.0 - rho);
            }
            died_gradient[0] -= 1.0 / a;
            died_gradient[2] += 1.0 / s - 1.0 / a;
        }
        (alive, died, alive_gradient, died_gradient)
    }

    fn log_likelihood_grouped(&self, data: &ByRepeats, gradient: Option<&mut [f64]>) -> f64 {
        let ParetoNbd { r, alpha, s, beta } = *self;
        let common = -ln_gamma(r) + r * alpha.ln() + s * beta.ln();
        let dg_r = digamma(r);
        let mut value = 0.0;
        let mut g = [0.0; 4];
        for (&x, &n) in data.xs.iter().zip(&data.counts) {
            value += n * (ln_gamma(r + x) + common);
            g[0] += n * (digamma(r + x) - dg_r + alpha.ln());
            g[1] += n * r / alpha;
            g[2] += n * beta.ln();
            g[3] += n * s / beta;
        }
        let want_gradient = gradient.is_some();
        // Summed in fixed chunks on all cores, then in chunk order: the same result every run.
        let partial: Vec<[f64; 5]> = data
            .rows
            .par_chunks(CHUNK)
            .map(|chunk| {
                let mut acc = [0.0; 5];
                for &(i, t_x, t) in chunk {
                    let (v, gk) = if want_gradient {
                        self.ln_parts::<true>(data.xs[i], t_x, t)
                    } else {
                        self.ln_parts::<false>(data.xs[i], t_x, t)
                    };
                    acc[0] += v;
                    for k in 0..4 {
                        acc[k + 1] += gk[k];
                    }
                }
                acc
            })
            .collect();
        for acc in partial {
            value += acc[0];
            for k in 0..4 {
                g[k] += acc[k + 1];
            }
        }
        if let Some(out) = gradient {
            out.copy_from_slice(&g);
        }
        if value.is_nan() {
            f64::NEG_INFINITY
        } else {
            value
        }
    }

    /// The summed log-likelihood of the summaries under these parameters.
    pub fn log_likelihood(&self, customers: &[Summary]) -> f64 {
        self.log_likelihood_grouped(&ByRepeats::new(customers), None)
    }

    /// The probability that a customer with this history is still alive at T.
    pub fn p_alive(&self, c: &Summary) -> f64 {
        let (alive, died, _, _) = self.parts::<false>(c.x, c.t_x, c.t);
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

/// The summed log-likelihood as an objective, with its analytic gradient.
struct Likelihood(ByRepeats);

impl Objective for Likelihood {
    fn value_and_gradient(&self, params: &[f64], gradient: &mut [f64]) -> f64 {
        ParetoNbd::from_slice(params).log_likelihood_grouped(&self.0, Some(gradient))
    }
}

/// Fits Pareto/NBD to the summaries by maximum likelihood (see [`maximize_from`] for how the
/// starting points are used).
pub fn fit(customers: &[Summary]) -> Fit {
    let data = Likelihood(ByRepeats::new(customers));
    let mean_t = customers.iter().map(|c| c.t).sum::<f64>() / customers.len().max(1) as f64;
    let starts = [
        [0.5, 10.0, 0.5, 10.0],
        [1.0, 1.0, 1.0, 1.0],
        [0.1, mean_t.max(1.0), 1.5, mean_t.max(1.0)],
    ];
    let m = match sample(customers, 20_000) {
        Some((part, share)) => {
            maximize_staged(&data, &Likelihood(ByRepeats::new(&part)), share, &starts)
        }
        None => maximize_from(&data, &starts),
    };
    let se = standard_errors(&data, &m.params);
    Fit {
        params: ParetoNbd::from_slice(&m.params),
        log_likelihood: m.log_likelihood,
        standard_errors: [se[0], se[1], se[2], se[3]],
        iterations: m.iterations,
        converged: m.converged,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::optimize::CentralDifferences;

    #[test]
    fn the_analytic_gradient_matches_central_differences() {
        let customers: Vec<Summary> = [
            (0.0, 0.0, 38.0),
            (1.0, 2.0, 38.0),
            (3.0, 30.0, 31.0),
            (12.0, 20.0, 40.0),
            (2.0, 39.0, 39.0),
            (0.0, 0.0, 0.5),
        ]
        .iter()
        .map(|&(x, t_x, t)| Summary {
            x,
            t_x,
            t,
            monetary: 0.0,
        })
        .collect();
        let data = Likelihood(ByRepeats::new(&customers));
        let numeric = CentralDifferences(|p: &[f64]| {
            ParetoNbd::from_slice(p).log_likelihood_grouped(&data.0, None)
        });
        // α > β, α < β, and α ≫ β (the argument of ₂F₁ close to 1 for recent customers).
        for params in [
            [0.55, 10.6, 0.6, 11.7],
            [0.8, 14.0, 1.3, 3.0],
            [1.4, 200.0, 0.7, 0.5],
        ] {
            let (mut exact, mut approx) = ([0.0; 4], [0.0; 4]);
            let v = data.value_and_gradient(&params, &mut exact);
            let w = numeric.value_and_gradient(&params, &mut approx);
            assert_eq!(v, w);
            for k in 0..4 {
                assert!(
                    (exact[k] - approx[k]).abs() < 1e-5 * approx[k].abs().max(1.0),
                    "{params:?} [{k}]: {exact:?} vs {approx:?}"
                );
            }
        }
    }
}
