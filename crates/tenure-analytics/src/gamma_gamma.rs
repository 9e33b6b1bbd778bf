//! The Gamma-Gamma spend model (Fader, Hardie & Lee 2005, "RFM and CLV"): a customer's
//! purchase values are Gamma(p, ν) with ν ~ Gamma(q, γ) across customers, independent of
//! how often they buy. Fitted on repeat buyers' mean repeat-purchase value z̄.

use rayon::prelude::*;

use crate::optimize::{Objective, maximize_from, maximize_staged, standard_errors};
use crate::special::{digamma, ln_gamma};
use crate::summary::{CHUNK, Summary, distinct, sample};

/// Fitted (or given) Gamma-Gamma parameters.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct GammaGamma {
    pub p: f64,
    pub q: f64,
    pub gamma: f64,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Fit {
    pub params: GammaGamma,
    pub log_likelihood: f64,
    /// Standard errors of p, q, γ.
    pub standard_errors: [f64; 3],
    /// Repeat buyers the fit used (x > 0 and z̄ > 0).
    pub customers: usize,
    pub iterations: usize,
    pub converged: bool,
}

/// The repeat buyers with a positive mean value, grouped by x: the terms of x alone (the
/// gamma functions) are computed once per distinct x, and Σ ln z̄ per x once for all.
struct Data {
    /// Distinct x, the number of buyers with it, and the sum of their ln z̄.
    groups: Vec<(f64, f64, f64)>,
    /// (index into `groups`, z̄) per buyer.
    rows: Vec<(usize, f64)>,
}

impl Data {
    fn new(customers: &[Summary]) -> Data {
        Data::from_pairs(
            customers
                .iter()
                .filter(|c| c.x > 0.0 && c.monetary > 0.0)
                .map(|c| (c.x, c.monetary))
                .collect(),
        )
    }

    fn from_pairs(pairs: Vec<(f64, f64)>) -> Data {
        let (xs, index) = distinct(pairs.iter().map(|p| p.0));
        let mut groups: Vec<(f64, f64, f64)> = xs.iter().map(|&x| (x, 0.0, 0.0)).collect();
        let rows = pairs
            .iter()
            .zip(index)
            .map(|(&(_, z), i)| {
                groups[i].1 += 1.0;
                groups[i].2 += z.ln();
                (i, z)
            })
            .collect();
        Data { groups, rows }
    }
}

impl Objective for Data {
    fn value_and_gradient(&self, params: &[f64], g: &mut [f64]) -> f64 {
        let (p, q, gamma) = (params[0], params[1], params[2]);
        let (lg_q, dg_q, ln_gamma_scale) = (ln_gamma(q), digamma(q), gamma.ln());
        let mut value = 0.0;
        g.iter_mut().for_each(|v| *v = 0.0);
        // Σ over buyers of lnΓ(px+q) − lnΓ(px) − lnΓ(q) + q ln γ + (px−1) ln z̄ + px ln x,
        // by x.
        for &(x, n, sum_ln_z) in &self.groups {
            let px = p * x;
            let ln_x = x.ln();
            let dg_pxq = digamma(px + q);
            value += n * (ln_gamma(px + q) - ln_gamma(px) - lg_q + q * ln_gamma_scale + px * ln_x)
                + (px - 1.0) * sum_ln_z;
            g[0] += n * x * (dg_pxq - digamma(px) + ln_x) + x * sum_ln_z;
            g[1] += n * (dg_pxq - dg_q + ln_gamma_scale);
            g[2] += n * q / gamma;
        }
        // −(px+q) ln(γ + x z̄) per buyer, summed in fixed chunks on all cores, then in chunk
        // order: the same result every run.
        let partial: Vec<[f64; 4]> = self
            .rows
            .par_chunks(CHUNK)
            .map(|chunk| {
                let mut acc = [0.0; 4];
                for &(i, z) in chunk {
                    let x = self.groups[i].0;
                    let pxq = p * x + q;
                    let denominator = gamma + x * z;
                    let ld = denominator.ln();
                    acc[0] -= pxq * ld;
                    acc[1] -= x * ld;
                    acc[2] -= ld;
                    acc[3] -= pxq / denominator;
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

/// Fits Gamma-Gamma by maximum likelihood on the repeat buyers (x > 0, z̄ > 0); customers
/// without repeat purchases, or whose repeat purchases were all free, carry no spend
/// information and are left out.
pub fn fit(customers: &[Summary]) -> Fit {
    let data = Data::new(customers);
    let mean = data.rows.iter().map(|c| c.1).sum::<f64>() / data.rows.len().max(1) as f64;
    let starts = [
        [1.0, 1.0, 1.0],
        [2.0, 2.0, mean.max(1e-3)],
        [10.0, 5.0, 10.0],
    ];
    let m = match sample(&data.rows, 50_000) {
        Some((part, share)) => {
            let part = Data::from_pairs(part.iter().map(|&(i, z)| (data.groups[i].0, z)).collect());
            maximize_staged(&data, &part, share, &starts)
        }
        None => maximize_from(&data, &starts),
    };
    let se = standard_errors(&data, &m.params);
    Fit {
        params: GammaGamma {
            p: m.params[0],
            q: m.params[1],
            gamma: m.params[2],
        },
        log_likelihood: m.log_likelihood,
        standard_errors: [se[0], se[1], se[2]],
        customers: data.rows.len(),
        iterations: m.iterations,
        converged: m.converged,
    }
}

impl GammaGamma {
    /// The expected value of a purchase of a customer with this history (the population
    /// mean pγ/(q−1) when they have no repeat purchases).
    pub fn expected_value(&self, c: &Summary) -> f64 {
        let GammaGamma { p, q, gamma } = *self;
        if c.x > 0.0 {
            (gamma + c.x * c.monetary) * p / (p * c.x + q - 1.0)
        } else {
            p * gamma / (q - 1.0)
        }
    }
}
