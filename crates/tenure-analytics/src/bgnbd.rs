//! The BG/NBD model (Fader, Hardie & Lee 2005): while alive a customer buys at a Poisson
//! rate λ ~ Gamma(r, α); after each repeat purchase they drop out with probability
//! p ~ Beta(a, b). Fitted by maximum likelihood on per-customer summaries (x, t_x, T).

use rayon::prelude::*;

use crate::optimize::{Objective, maximize_from, maximize_staged, standard_errors};

use crate::special::{digamma, hyp2f1, hyp2f1_many, ln_beta, ln_gamma};
use crate::summary::{ByRepeats, CHUNK, Summary, sample};

/// Fitted (or given) BG/NBD parameters.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BgNbd {
    pub r: f64,
    pub alpha: f64,
    pub a: f64,
    pub b: f64,
}

/// A fit: the parameters, the summed log-likelihood and the standard errors.
#[derive(Debug, Clone, PartialEq)]
pub struct Fit {
    pub params: BgNbd,
    pub log_likelihood: f64,
    /// Standard errors of r, α, a, b.
    pub standard_errors: [f64; 4],
    pub iterations: usize,
    pub converged: bool,
}

impl Objective for ByRepeats {
    fn value_and_gradient(&self, p: &[f64], g: &mut [f64]) -> f64 {
        let (r, alpha, a, b) = (p[0], p[1], p[2], p[3]);
        // Terms of x alone, summed with their counts.
        let (lg_r, dg_r, lb_ab, dg_ab, dg_b) = (
            ln_gamma(r),
            digamma(r),
            ln_beta(a, b),
            digamma(a + b),
            digamma(b),
        );
        let mut value = 0.0;
        g.iter_mut().for_each(|v| *v = 0.0);
        for (&x, &n) in self.xs.iter().zip(&self.counts) {
            value += n * (ln_gamma(r + x) - lg_r + r * alpha.ln() + ln_beta(a, b + x) - lb_ab);
            g[0] += n * (digamma(r + x) - dg_r + alpha.ln());
            g[1] += n * r / alpha;
            g[2] += n * (dg_ab - digamma(a + b + x));
            g[3] += n * (digamma(b + x) - digamma(a + b + x) - dg_b + dg_ab);
        }
        // The per-customer mixture: alive at T, or dropped out after the last purchase.
        // ln(a/(b+x−1)) and 1/(b+x−1) depend on x alone.
        let ln_a = a.ln();
        let by_x: Vec<(f64, f64)> = self
            .xs
            .iter()
            .map(|&x| (ln_a - (b + x - 1.0).ln(), 1.0 / (b + x - 1.0)))
            .collect();
        let inv_a = 1.0 / a;
        // Summed in fixed chunks on all cores, then in chunk order: the same result every run.
        let partial: Vec<[f64; 5]> = self
            .rows
            .par_chunks(CHUNK)
            .map(|chunk| {
                let mut acc = [0.0; 5];
                for &(i, t_x, t) in chunk {
                    let x = self.xs[i];
                    let rx = r + x;
                    let ln_t = (alpha + t).ln();
                    let l1 = -rx * ln_t;
                    if x > 0.0 {
                        let (ln_ratio, inv_bx) = by_x[i];
                        let ln_tx = (alpha + t_x).ln();
                        let l2 = ln_ratio - rx * ln_tx;
                        // ln(e^l1 + e^l2) and the two weights from one exponential.
                        let e = (-(l1 - l2).abs()).exp();
                        let share = 1.0 / (1.0 + e);
                        let (w1, w2) = if l1 >= l2 {
                            (share, e * share)
                        } else {
                            (e * share, share)
                        };
                        acc[0] += l1.max(l2) + e.ln_1p();
                        acc[1] += -w1 * ln_t - w2 * ln_tx;
                        acc[2] += -rx * (w1 / (alpha + t) + w2 / (alpha + t_x));
                        acc[3] += w2 * inv_a;
                        acc[4] += -w2 * inv_bx;
                    } else {
                        acc[0] += l1;
                        acc[1] += -ln_t;
                        acc[2] += -rx / (alpha + t);
                    }
                }
                acc
            })
            .collect();
        for acc in partial {
            value += acc[0];
            for (gk, v) in g.iter_mut().zip(&acc[1..]) {
                *gk += v;
            }
        }
        value
    }
}

/// Fits BG/NBD to the summaries by maximum likelihood (see [`maximize_from`] for how the
/// starting points are used).
pub fn fit(customers: &[Summary]) -> Fit {
    let data = ByRepeats::new(customers);
    let mean_t = customers.iter().map(|c| c.t).sum::<f64>() / customers.len().max(1) as f64;
    let starts = [
        [1.0, 1.0, 1.0, 1.0],
        [0.5, mean_t.max(1.0) / 4.0, 1.0, 2.0],
        [0.1, 10.0, 0.5, 5.0],
    ];
    let m = match sample(customers, 20_000) {
        Some((part, share)) => maximize_staged(&data, &ByRepeats::new(&part), share, &starts),
        None => maximize_from(&data, &starts),
    };
    let se = standard_errors(&data, &m.params);
    Fit {
        params: BgNbd {
            r: m.params[0],
            alpha: m.params[1],
            a: m.params[2],
            b: m.params[3],
        },
        log_likelihood: m.log_likelihood,
        standard_errors: [se[0], se[1], se[2], se[3]],
        iterations: m.iterations,
        converged: m.converged,
    }
}

impl BgNbd {
    /// The summed log-likelihood of the summaries under these parameters.
    pub fn log_likelihood(&self, customers: &[Summary]) -> f64 {
        let mut g = [0.0; 4];
        ByRepeats::new(customers).value_and_gradient(&[self.r, self.alpha, self.a, self.b], &mut g)
    }

    /// The probability that a customer with this history is still alive at T.
    pub fn p_alive(&self, c: &Summary) -> f64 {
        if c.x == 0.0 {
            return 1.0;
        }
        let rx = self.r + c.x;
        let ratio =
            (self.a / (self.b + c.x - 1.0)) * ((self.alpha + c.t) / (self.alpha + c.t_x)).powf(rx);
        1.0 / (1.0 + ratio)
    }

    /// Expected purchases in the next `horizon` time units for a customer with this history.
    pub fn expected_purchases(&self, c: &Summary, horizon: f64) -> f64 {
        let mut out = [0.0];
        self.expected_purchases_many(c, &[horizon], &mut out);
        out[0]
    }

    /// Expected purchases over each of `horizons` (into `out`), sharing the work between
    /// them.
    pub fn expected_purchases_many(&self, c: &Summary, horizons: &[f64], out: &mut [f64]) {
        let BgNbd { r, alpha, a, b } = *self;
        let (x, t) = (c.x, c.t);
        let rx = r + x;
        let zs: smallvec::SmallVec<[f64; 32]> =
            horizons.iter().map(|h| h / (alpha + t + h)).collect();
        // ₂F₁(r+x, b+x; a+b+x−1; z), or the same by Euler's transformation,
        // (1−z)^(a−1−r−x) ₂F₁(a+b−1−r, a−1; a+b+x−1; z), whichever has the smaller leading
        // parameters and so the shorter series: with a fitted near CDNOW's the second, whose
        // parameters stay small whatever x (the first's terms grow like n^(r+x−a) first);
        // with a large a (a fit to a handful of customers) the first, where the second's
        // terms would grow like (az)ⁿ/n! and overflow. Times (1−z)^(r+x), the second's
        // prefactor leaves (1−z)^(a−1).
        let (p, q, s) = (rx, b + x, a + b + x - 1.0);
        let euler = ((s - p) * (s - q)).abs() < p * q;
        let power = if euler {
            hyp2f1_many(s - p, s - q, s, &zs, out);
            a - 1.0
        } else {
            hyp2f1_many(p, q, s, &zs, out);
            rx
        };
        let denominator = if x > 0.0 {
            1.0 + (a / (b + x - 1.0)) * ((alpha + t) / (alpha + c.t_x)).powf(rx)
        } else {
            1.0
        };
        let scale = (a + b + x - 1.0) / (a - 1.0) / denominator;
        for (o, z) in out.iter_mut().zip(&zs) {
            // (α+T)/(α+T+t) = 1 − z.
            *o = scale * (1.0 - (1.0 - z).powf(power) * *o);
        }
    }

    /// Expected purchases of a new customer in their first `t` time units.
    pub fn expected_purchases_new(&self, t: f64) -> f64 {
        let BgNbd { r, alpha, a, b } = *self;
        let f = hyp2f1(r, b, a + b - 1.0, t / (alpha + t));
        (a + b - 1.0) / (a - 1.0) * (1.0 - (alpha / (alpha + t)).powf(r) * f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The conditional expectation straight from its formula, with the untransformed series.
    fn by_the_formula(m: &BgNbd, c: &Summary, horizon: f64) -> f64 {
        let BgNbd { r, alpha, a, b } = *m;
        let (x, rx) = (c.x, r + c.x);
        let z = horizon / (alpha + c.t + horizon);
        let f = hyp2f1(rx, b + x, a + b + x - 1.0, z);
        let denominator = if x > 0.0 {
            1.0 + (a / (b + x - 1.0)) * ((alpha + c.t) / (alpha + c.t_x)).powf(rx)
        } else {
            1.0
        };
        (a + b + x - 1.0) / (a - 1.0) * (1.0 - (1.0 - z).powf(rx) * f) / denominator
    }

    #[test]
    fn expected_purchases_agree_with_the_formula_near_cdnow_and_far_from_it() {
        let near_cdnow = BgNbd {
            r: 0.243,
            alpha: 4.414,
            a: 0.793,
            b: 2.426,
        };
        // A fit to a handful of customers: dropping out all but never.
        let degenerate = BgNbd {
            r: 0.5,
            alpha: 10.0,
            a: 5_000.0,
            b: 20_000.0,
        };
        for m in [near_cdnow, degenerate] {
            for (x, t_x, t) in [(0.0, 0.0, 30.0), (2.0, 30.43, 38.86), (25.0, 70.0, 78.0)] {
                let c = Summary {
                    x,
                    t_x,
                    t,
                    monetary: 0.0,
                };
                let horizons = [4.0, 26.0, 52.0];
                let mut many = [0.0; 3];
                m.expected_purchases_many(&c, &horizons, &mut many);
                for (h, got) in horizons.iter().zip(many) {
                    let want = by_the_formula(&m, &c, *h);
                    assert!(got.is_finite() && got >= 0.0, "{m:?} {c:?} {h}: {got}");
                    assert!(
                        (got - want).abs() <= 1e-9 * want.abs().max(1e-12),
                        "{m:?} {c:?} {h}: {got} vs {want}"
                    );
                }
            }
        }
    }
}
