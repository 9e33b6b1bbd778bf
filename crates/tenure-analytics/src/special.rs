//! Special functions the models need: log-gamma, digamma, log-beta and the Gauss
//! hypergeometric function for the arguments the BG/NBD expectations use.

/// ln Γ(x) for x > 0.
pub fn ln_gamma(x: f64) -> f64 {
    libm::lgamma(x)
}

/// ln B(a, b).
pub fn ln_beta(a: f64, b: f64) -> f64 {
    ln_gamma(a) + ln_gamma(b) - ln_gamma(a + b)
}

/// ψ(x) = d/dx ln Γ(x) for x > 0: recurrence up to x ≥ 10, then the asymptotic series
/// (truncation error below 1e-16 there).
pub fn digamma(mut x: f64) -> f64 {
    let mut acc = 0.0;
    while x < 10.0 {
        acc -= 1.0 / x;
        x += 1.0;
    }
    let inv = 1.0 / x;
    let inv2 = inv * inv;
    // Bernoulli-number series: 1/12, 1/120, 1/252, 1/240, 1/132, 691/32760, 1/12.
    let series = inv2
        * (1.0 / 12.0
            - inv2
                * (1.0 / 120.0
                    - inv2
                        * (1.0 / 252.0
                            - inv2
                                * (1.0 / 240.0
                                    - inv2
                                        * (1.0 / 132.0
                                            - inv2 * (691.0 / 32760.0 - inv2 / 12.0))))));
    acc + x.ln() - 0.5 * inv - series
}

/// ₂F₁(a, b; c; z) for 0 ≤ z < 1 by its power series, summed until the terms stop
/// mattering. The BG/NBD expectations call it with z = t/(α+T+t).
pub fn hyp2f1(a: f64, b: f64, c: f64, z: f64) -> f64 {
    let mut term = 1.0;
    let mut sum = 1.0;
    let mut n = 0.0;
    while n < 100_000.0 {
        term *= (a + n) * (b + n) / ((c + n) * (n + 1.0)) * z;
        sum += term;
        if term.abs() <= 1e-17 * sum.abs() {
            break;
        }
        n += 1.0;
    }
    sum
}

/// ₂F₁(a, b; c; z) at several z at once (each 0 ≤ z < 1), into `out`: the series'
/// coefficients do not depend on z, so they are computed once for all of them.
pub fn hyp2f1_many(a: f64, b: f64, c: f64, zs: &[f64], out: &mut [f64]) {
    let mut powers: smallvec::SmallVec<[f64; 32]> = smallvec::smallvec![1.0; zs.len()];
    out.iter_mut().for_each(|o| *o = 1.0);
    let mut coefficient = 1.0;
    let mut n = 0.0;
    while n < 100_000.0 {
        coefficient *= (a + n) * (b + n) / ((c + n) * (n + 1.0));
        let mut done = true;
        for ((o, p), z) in out.iter_mut().zip(&mut powers).zip(zs) {
            *p *= z;
            let term = coefficient * *p;
            *o += term;
            done &= term.abs() <= 1e-17 * o.abs();
        }
        if done {
            break;
        }
        n += 1.0;
    }
}

/// ln ₂F₁(1, c; a+1; z) for a > 0, c > 0 and 0 ≤ z < 1, with (when `GRADIENT`) its
/// partial derivatives in c, a and z.
///
/// This is the Pareto/NBD likelihood's hypergeometric term: by Euler's transformation
/// ₂F₁(a, b; a+1; z) = (1−z)^(1−b) ₂F₁(1, a+1−b; a+1; z), and the series on the right has
/// positive terms that fall at least as fast as zᵏ, so nothing cancels and nothing
/// overflows. z comes close to 1 for customers seen briefly when one of the model's two
/// rate scales is much larger than the other, and there the series is long; for z > 0.9 the
/// connection formula to 1−z is used instead (with b = a+1−c),
/// ₂F₁(a, b; a+1; z) = Γ(a+1)Γ(1−b)/Γ(a+1−b) z⁻ᵃ + (1−z)^(1−b) a/(b−1) ₂F₁(1, a+1−b; 2−b; 1−z),
/// unless b is close to an integer (where its two halves grow without bound and cancel);
/// its derivatives are taken by central differences.
pub fn ln_hyp2f1_one<const GRADIENT: bool>(c: f64, a: f64, z: f64) -> (f64, [f64; 3]) {
    if z <= 0.0 {
        return (0.0, [0.0, 0.0, c / (a + 1.0)]);
    }
    let b = a + 1.0 - c;
    if z > 0.9 && b < 30.0 && (b - b.round()).abs() > 1e-3 {
        let at = |c: f64, a: f64, z: f64| connection_to_one_minus_z(a, a + 1.0 - c, z).map(f64::ln);
        if let Some(v) = at(c, a, z) {
            if !GRADIENT {
                return (v, [0.0; 3]);
            }
            let (hc, ha, hz) = (1e-6 * c, 1e-6 * a, 1e-6 * (1.0 - z));
            let derivatives = (
                at(c + hc, a, z).zip(at(c - hc, a, z)),
                at(c, a + ha, z).zip(at(c, a - ha, z)),
                at(c, a, z + hz).zip(at(c, a, z - hz)),
            );
            if let (Some(dc), Some(da), Some(dz)) = derivatives {
                return (
                    v,
                    [
                        (dc.0 - dc.1) / (2.0 * hc),
                        (da.0 - da.1) / (2.0 * ha),
                        (dz.0 - dz.1) / (2.0 * hz),
                    ],
                );
            }
        }
    }
    // Σ gₖ with g₀ = 1, gₖ₊₁ = gₖ (c+k)/(a+1+k) z; ∂ln gₖ/∂c = Σ_{j<k} 1/(c+j),
    // ∂ln gₖ/∂a = −Σ_{j<k} 1/(a+1+j), ∂ln gₖ/∂z = k/z.
    let (mut term, mut sum) = (1.0, 1.0);
    let (mut sc, mut sa) = (0.0, 0.0);
    let (mut dc, mut da, mut dz) = (0.0, 0.0, 0.0);
    let mut k = 0.0;
    while k < 1e6 {
        term *= (c + k) / (a + 1.0 + k) * z;
        sum += term;
        if GRADIENT {
            sc += 1.0 / (c + k);
            sa += 1.0 / (a + 1.0 + k);
            dc += term * sc;
            da -= term * sa;
            dz += term * (k + 1.0);
        }
        if term <= 1e-17 * sum {
            break;
        }
        k += 1.0;
    }
    (sum.ln(), [dc / sum, da / sum, dz / (z * sum)])
}

/// ₂F₁(1, a+1−b; a+1; z) from the expansion around z = 1 (see [`ln_hyp2f1_one`]);
/// `None` when cancellation leaves nothing trustworthy.
fn connection_to_one_minus_z(a: f64, b: f64, z: f64) -> Option<f64> {
    let w = 1.0 - z;
    let (ln_num, sign_num) = libm::lgamma_r(1.0 - b);
    let (ln_den, sign_den) = libm::lgamma_r(a + 1.0 - b);
    let first = f64::from(sign_num * sign_den)
        * (ln_gamma(a + 1.0) + ln_num - ln_den - a * z.ln() + (b - 1.0) * w.ln()).exp();
    let mut term = 1.0;
    let mut sum = 1.0;
    let mut k = 0.0;
    while k < 10_000.0 {
        term *= (a + 1.0 - b + k) / (2.0 - b + k) * w;
        sum += term;
        if k > b && term.abs() <= 1e-17 * sum.abs() {
            break;
        }
        k += 1.0;
    }
    let total = first + a / (b - 1.0) * sum;
    (total.is_finite() && total > 0.0).then_some(total)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digamma_matches_known_values() {
        // ψ(1) = −γ (Euler–Mascheroni), ψ(1/2) = −γ − 2 ln 2, ψ(10) = H_9 − γ.
        let euler = 0.577_215_664_901_532_9;
        assert!((digamma(1.0) + euler).abs() < 1e-14);
        assert!((digamma(0.5) + euler + 2.0 * 2f64.ln()).abs() < 1e-14);
        let h9: f64 = (1..=9).map(|k| 1.0 / f64::from(k)).sum();
        assert!((digamma(10.0) - (h9 - euler)).abs() < 1e-14);
        // ψ is the derivative of ln Γ.
        for x in [0.1, 0.7, 3.3, 25.0] {
            let h = 1e-6;
            let numeric = (ln_gamma(x + h) - ln_gamma(x - h)) / (2.0 * h);
            assert!((digamma(x) - numeric).abs() < 1e-7, "{x}");
        }
    }

    /// ln ₂F₁(a, b; a+1; z) through Euler's transformation.
    fn ln_hyp2f1_next(a: f64, b: f64, z: f64) -> f64 {
        (1.0 - b) * (-z).ln_1p() + ln_hyp2f1_one::<false>(a + 1.0 - b, a, z).0
    }

    #[test]
    fn the_pareto_form_has_the_derivatives_of_its_value() {
        for (c, a) in [(0.7, 1.4), (2.5, 3.0), (1.2, 12.0)] {
            for z in [0.05, 0.5, 0.85, 0.95] {
                let (v, g) = ln_hyp2f1_one::<true>(c, a, z);
                assert_eq!(v, ln_hyp2f1_one::<false>(c, a, z).0);
                let h = 1e-6;
                let numeric = [
                    (ln_hyp2f1_one::<false>(c + h, a, z).0 - ln_hyp2f1_one::<false>(c - h, a, z).0)
                        / (2.0 * h),
                    (ln_hyp2f1_one::<false>(c, a + h, z).0 - ln_hyp2f1_one::<false>(c, a - h, z).0)
                        / (2.0 * h),
                    (ln_hyp2f1_one::<false>(c, a, z + h * (1.0 - z)).0
                        - ln_hyp2f1_one::<false>(c, a, z - h * (1.0 - z)).0)
                        / (2.0 * h * (1.0 - z)),
                ];
                for i in 0..3 {
                    assert!(
                        (g[i] - numeric[i]).abs() < 1e-6 * numeric[i].abs().max(1.0),
                        "{c} {a} {z} [{i}]: {} vs {}",
                        g[i],
                        numeric[i]
                    );
                }
            }
        }
    }

    #[test]
    fn the_pareto_form_agrees_with_the_plain_series_and_across_its_two_methods() {
        for (a, b) in [(1.2, 1.6), (3.5, 0.4), (2.8, 2.7), (12.0, 1.3)] {
            for z in [0.0, 0.2, 0.6, 0.85] {
                let plain = hyp2f1(a, b, a + 1.0, z).ln();
                let ours = ln_hyp2f1_next(a, b, z);
                assert!(
                    (ours - plain).abs() < 1e-12,
                    "{a} {b} {z}: {ours} vs {plain}"
                );
            }
            // Either side of the switch to the expansion around 1, and close to 1, against
            // the long series.
            for z in [0.899_999, 0.900_001, 0.95, 0.999] {
                let plain = hyp2f1(a, b, a + 1.0, z).ln();
                let ours = ln_hyp2f1_next(a, b, z);
                assert!(
                    (ours - plain).abs() < 1e-10,
                    "{a} {b} {z}: {ours} vs {plain}"
                );
            }
        }
        // ₂F₁(1, 1; 2; z) = −ln(1−z)/z, with b an integer (the long series is used).
        let z: f64 = 0.99;
        let exact = (-(1.0 - z).ln() / z).ln();
        assert!((ln_hyp2f1_next(1.0, 1.0, z) - exact).abs() < 1e-12);
    }

    #[test]
    fn many_at_once_equal_one_at_a_time() {
        let zs = [0.0, 0.1, 0.45, 0.8, 0.97];
        let mut out = [0.0; 5];
        hyp2f1_many(1.3, 2.7, 3.1, &zs, &mut out);
        for (z, v) in zs.iter().zip(out) {
            let one = hyp2f1(1.3, 2.7, 3.1, *z);
            assert!((v - one).abs() <= 1e-14 * one, "{z}: {v} vs {one}");
        }
    }

    #[test]
    fn hypergeometric_series_matches_closed_forms() {
        // ₂F₁(1, 1; 2; z) = −ln(1−z)/z and ₂F₁(a, b; b; z) = (1−z)^(−a).
        for z in [0.1, 0.5, 0.9] {
            assert!((hyp2f1(1.0, 1.0, 2.0, z) + (1.0 - z).ln() / z).abs() < 1e-12);
            assert!((hyp2f1(0.7, 2.5, 2.5, z) - (1.0 - z).powf(-0.7)).abs() < 1e-12);
        }
    }
}
