//! Maximising a smooth log-likelihood of a few positive parameters: BFGS on the logarithms
//! of the parameters (so every step stays positive) with a backtracking line search, and
//! the standard errors from the observed information.

// Small dense matrices (a parameter or two per row) read best with explicit indices.
#![allow(clippy::needless_range_loop)]

/// A log-likelihood and its gradient at the (positive) parameters.
pub trait Objective {
    /// Returns the log-likelihood, writing its gradient with respect to the parameters.
    fn value_and_gradient(&self, params: &[f64], gradient: &mut [f64]) -> f64;
}

/// A log-likelihood whose gradient is taken by central differences: the reference the
/// analytic gradients are tested against. The step is the cube root of the machine
/// epsilon relative to each parameter, which balances truncation against rounding: the
/// gradient is good to about eight digits.
#[cfg(test)]
pub(crate) struct CentralDifferences<F>(pub F);

#[cfg(test)]
impl<F: Fn(&[f64]) -> f64> Objective for CentralDifferences<F> {
    fn value_and_gradient(&self, params: &[f64], gradient: &mut [f64]) -> f64 {
        let f = &self.0;
        let mut p = params.to_vec();
        for i in 0..params.len() {
            let h = 6e-6 * params[i].abs().max(1e-8);
            p[i] = params[i] + h;
            let up = f(&p);
            p[i] = params[i] - h;
            let down = f(&p);
            p[i] = params[i];
            gradient[i] = (up - down) / (2.0 * h);
        }
        f(params)
    }
}

/// A maximum found.
#[derive(Debug, Clone, PartialEq)]
pub struct Maximum {
    pub params: Vec<f64>,
    pub log_likelihood: f64,
    pub iterations: usize,
    pub converged: bool,
    /// The final approximation of the inverse Hessian of the negative log-likelihood in
    /// the logarithms of the parameters.
    pub inverse_hessian: Vec<Vec<f64>>,
}

/// Maximises `f` from `start` (every element positive).
pub fn maximize(f: &impl Objective, start: &[f64]) -> Maximum {
    maximize_with(f, start, None)
}

/// Maximises `f` from `start`, with `inverse_hessian` (in log-parameters) as the first
/// curvature estimate when one is known — from a fit on a sample, say.
pub fn maximize_with(
    f: &impl Objective,
    start: &[f64],
    inverse_hessian: Option<Vec<Vec<f64>>>,
) -> Maximum {
    let n = start.len();
    let mut theta: Vec<f64> = start.iter().map(|p| p.ln()).collect();
    let eval = |theta: &[f64], grad: &mut [f64]| {
        let params: Vec<f64> = theta.iter().map(|t| t.exp()).collect();
        let mut g = vec![0.0; n];
        let v = f.value_and_gradient(&params, &mut g);
        // Minimise the negative log-likelihood in log-parameters: d/dθ = p · d/dp.
        for i in 0..n {
            grad[i] = -g[i] * params[i];
        }
        -v
    };
    let mut grad = vec![0.0; n];
    let mut value = eval(&theta, &mut grad);
    // The inverse Hessian approximation, starting as the identity scaled to the gradient
    // unless one is given.
    let scale = 1.0 / norm(&grad).max(1.0);
    let mut h = inverse_hessian.unwrap_or_else(|| {
        let mut h = identity(n);
        for (i, row) in h.iter_mut().enumerate() {
            row[i] = scale;
        }
        h
    });
    let mut converged = false;
    let mut iterations = 0;
    while iterations < 500 {
        iterations += 1;
        let direction: Vec<f64> = (0..n)
            .map(|i| -(0..n).map(|j| h[i][j] * grad[j]).sum::<f64>())
            .collect();
        let slope: f64 = (0..n).map(|i| direction[i] * grad[i]).sum();
        let direction = if slope >= 0.0 {
            // Not a descent direction: restart from steepest descent.
            h = identity(n);
            grad.iter().map(|g| -g * scale).collect()
        } else {
            direction
        };
        let slope: f64 = (0..n).map(|i| direction[i] * grad[i]).sum();
        let mut step = 1.0;
        let mut next = vec![0.0; n];
        let mut next_grad = vec![0.0; n];
        let mut next_value = f64::INFINITY;
        for _ in 0..60 {
            for i in 0..n {
                next[i] = theta[i] + step * direction[i];
            }
            next_value = eval(&next, &mut next_grad);
            if next_value.is_finite() && next_value <= value + 1e-4 * step * slope {
                break;
            }
            step *= 0.5;
        }
        if !next_value.is_finite() || next_value > value {
            converged = norm(&grad) <= 1e-4 * value.abs().max(1.0);
            break;
        }
        let s: Vec<f64> = (0..n).map(|i| next[i] - theta[i]).collect();
        let y: Vec<f64> = (0..n).map(|i| next_grad[i] - grad[i]).collect();
        let improvement = value - next_value;
        theta = next;
        grad.clone_from(&next_grad);
        value = next_value;
        let sy: f64 = (0..n).map(|i| s[i] * y[i]).sum();
        if sy > 1e-12 {
            bfgs_update(&mut h, &s, &y, sy);
        }
        // Converged when the gradient (in log-parameters) is negligible next to the size of
        // the log-likelihood, or when steps no longer change it at all.
        if norm(&grad) <= 1e-7 * value.abs().max(1.0) || improvement <= 1e-15 * value.abs() {
            converged = norm(&grad) <= 1e-4 * value.abs().max(1.0);
            break;
        }
    }
    Maximum {
        params: theta.iter().map(|t| t.exp()).collect(),
        log_likelihood: -value,
        iterations,
        converged,
        inverse_hessian: h,
    }
}

/// Maximises on a sample first (`sample` holds `share` of the data, drawn evenly), then
/// polishes on all of it (`full`) from the sample's maximum, with the sample's curvature
/// scaled to the whole: a few passes over the whole data instead of dozens. Falls back to
/// [`maximize_from`] on the whole data when the polish does not converge.
pub fn maximize_staged<const N: usize>(
    full: &impl Objective,
    sample: &impl Objective,
    share: f64,
    starts: &[[f64; N]],
) -> Maximum {
    let first = maximize_from(sample, starts);
    if first.converged && first.log_likelihood.is_finite() {
        let h = first
            .inverse_hessian
            .iter()
            .map(|row| row.iter().map(|v| v * share).collect())
            .collect();
        let m = maximize_with(full, &first.params, Some(h));
        if m.converged && m.log_likelihood.is_finite() {
            return Maximum {
                iterations: first.iterations + m.iterations,
                ..m
            };
        }
    }
    maximize_from(full, starts)
}

/// Maximises `f` from the first start; the next starts are tried only while no run has
/// converged, so a poor start cannot trap the fit and a good one costs one run. The best
/// finite maximum wins (all `NaN` when none is finite).
pub fn maximize_from<const N: usize>(f: &impl Objective, starts: &[[f64; N]]) -> Maximum {
    let mut best: Option<Maximum> = None;
    for s in starts {
        let m = maximize(f, s);
        let done = m.converged && m.log_likelihood.is_finite();
        if m.log_likelihood.is_finite()
            && best
                .as_ref()
                .is_none_or(|b| m.log_likelihood > b.log_likelihood)
        {
            best = Some(m);
        }
        if done {
            break;
        }
    }
    best.unwrap_or(Maximum {
        params: vec![f64::NAN; N],
        log_likelihood: f64::NAN,
        iterations: 0,
        converged: false,
        inverse_hessian: identity(N),
    })
}

/// Standard errors of the parameters at a maximum: the square roots of the diagonal of
/// the inverse of the observed information (the negative Hessian, by forward differences
/// of the gradient, which vanishes at the maximum: one gradient per parameter plus one).
pub fn standard_errors(f: &impl Objective, params: &[f64]) -> Vec<f64> {
    let n = params.len();
    let mut hessian = vec![vec![0.0; n]; n];
    let mut g_here = vec![0.0; n];
    let mut g_step = vec![0.0; n];
    f.value_and_gradient(params, &mut g_here);
    for j in 0..n {
        let h = 1e-5 * params[j].abs().max(1e-8);
        let mut p = params.to_vec();
        p[j] = params[j] + h;
        f.value_and_gradient(&p, &mut g_step);
        for i in 0..n {
            hessian[i][j] = -(g_step[i] - g_here[i]) / h;
        }
    }
    // Symmetrise, then invert.
    for i in 0..n {
        for j in 0..i {
            let m = 0.5 * (hessian[i][j] + hessian[j][i]);
            hessian[i][j] = m;
            hessian[j][i] = m;
        }
    }
    match invert(hessian) {
        Some(inv) => (0..n).map(|i| inv[i][i].max(0.0).sqrt()).collect(),
        None => vec![f64::NAN; n],
    }
}

fn identity(n: usize) -> Vec<Vec<f64>> {
    (0..n)
        .map(|i| (0..n).map(|j| if i == j { 1.0 } else { 0.0 }).collect())
        .collect()
}

fn norm(v: &[f64]) -> f64 {
    v.iter().map(|x| x * x).sum::<f64>().sqrt()
}

fn bfgs_update(h: &mut [Vec<f64>], s: &[f64], y: &[f64], sy: f64) {
    let n = s.len();
    let rho = 1.0 / sy;
    let hy: Vec<f64> = (0..n)
        .map(|i| (0..n).map(|j| h[i][j] * y[j]).sum())
        .collect();
    let yhy: f64 = (0..n).map(|i| y[i] * hy[i]).sum();
    for i in 0..n {
        for j in 0..n {
            h[i][j] += -rho * (hy[i] * s[j] + s[i] * hy[j]) + (rho * rho * yhy + rho) * s[i] * s[j];
        }
    }
}

/// Gauss–Jordan inversion with partial pivoting; `None` when singular.
fn invert(mut m: Vec<Vec<f64>>) -> Option<Vec<Vec<f64>>> {
    let n = m.len();
    let mut inv = identity(n);
    for col in 0..n {
        let pivot = (col..n).max_by(|&a, &b| m[a][col].abs().total_cmp(&m[b][col].abs()))?;
        if m[pivot][col].abs() < 1e-300 {
            return None;
        }
        m.swap(col, pivot);
        inv.swap(col, pivot);
        let d = m[col][col];
        for j in 0..n {
            m[col][j] /= d;
            inv[col][j] /= d;
        }
        for row in 0..n {
            if row != col {
                let factor = m[row][col];
                for j in 0..n {
                    m[row][j] -= factor * m[col][j];
                    inv[row][j] -= factor * inv[col][j];
                }
            }
        }
    }
    Some(inv)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The negative Rosenbrock function: a narrow curved valley, maximum 0 at (1, 1).
    struct Valley;

    impl Objective for Valley {
        fn value_and_gradient(&self, p: &[f64], g: &mut [f64]) -> f64 {
            let (x, y) = (p[0], p[1]);
            g[0] = -(-2.0 * (1.0 - x) - 400.0 * x * (y - x * x));
            g[1] = -(200.0 * (y - x * x));
            -((1.0 - x).powi(2) + 100.0 * (y - x * x).powi(2))
        }
    }

    #[test]
    fn finds_the_maximum_of_a_curved_valley_from_a_poor_start() {
        let m = maximize(&Valley, &[3.0, 0.2]);
        assert!(m.converged, "{m:?}");
        assert!((m.params[0] - 1.0).abs() < 1e-5, "{m:?}");
        assert!((m.params[1] - 1.0).abs() < 1e-5, "{m:?}");
    }

    #[test]
    fn central_differences_find_the_same_maximum() {
        let f = CentralDifferences(|p: &[f64]| {
            -((1.0 - p[0]).powi(2) + 100.0 * (p[1] - p[0] * p[0]).powi(2))
        });
        let mut g = [0.0; 2];
        let mut exact = [0.0; 2];
        f.value_and_gradient(&[1.7, 0.4], &mut g);
        Valley.value_and_gradient(&[1.7, 0.4], &mut exact);
        for i in 0..2 {
            assert!(
                (g[i] - exact[i]).abs() < 1e-6 * exact[i].abs(),
                "{g:?} {exact:?}"
            );
        }
        let m = maximize(&f, &[3.0, 0.2]);
        assert!(m.converged, "{m:?}");
        assert!(
            (m.params[0] - 1.0).abs() < 1e-4 && (m.params[1] - 1.0).abs() < 1e-4,
            "{m:?}"
        );
    }

    #[test]
    fn inverts_small_matrices() {
        let inv = invert(vec![vec![4.0, 7.0], vec![2.0, 6.0]]).unwrap_or_default();
        assert!((inv[0][0] - 0.6).abs() < 1e-12 && (inv[0][1] + 0.7).abs() < 1e-12);
        assert!(invert(vec![vec![1.0, 2.0], vec![2.0, 4.0]]).is_none());
    }
}
