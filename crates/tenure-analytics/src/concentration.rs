//! Revenue concentration: how much of the revenue the best customers bring, as the share
//! of the top fifth, the Gini coefficient and a Lorenz-style curve read from the top.
//!
//! With `n` customers and total revenue `T`:
//!
//! - the top-20 % share is the revenue share of the top ⌈0.2 · n⌉ customers by spend;
//! - the Gini coefficient is computed exactly from the values sorted ascending,
//!   `G = 2 Σ_{i=1..n} i · x_(i) / (n · T) − (n + 1) / n`, which is 0 when everyone spends
//!   the same and (n − 1) / n when one customer brings all the revenue;
//! - the curve point at p percent of the customers is the revenue share of the top
//!   ⌈p · n / 100⌉ customers, for p = 0..=100, so it starts at (0, 0) and ends at (1, 1).
//!
//! Negative and NaN spends are counted as 0. When there are no customers or the total is
//! 0, there is no revenue to share out: the shares and the Gini coefficient are 0 and the
//! curve is (p / 100, 0) throughout, ending at (1, 0) rather than (1, 1).

/// The concentration of revenue over a customer base.
#[derive(Debug, Clone, PartialEq)]
pub struct Concentration {
    pub customers: u64,
    pub total: f64,
    /// The revenue share of the top ⌈20 % · n⌉ customers by spend.
    pub top20_share: f64,
    pub gini: f64,
    /// Lorenz-style curve from the top: `curve[k]` = (share of customers, share of revenue)
    /// for k = 0..=100 percent of the customers ranked by spend descending;
    /// `curve[0]` = (0, 0) and `curve[100]` = (1, 1).
    pub curve: Vec<(f64, f64)>,
}

/// Spend as counted: negative and NaN values become 0.
fn counted(x: f64) -> f64 {
    if x > 0.0 { x } else { 0.0 }
}

/// The concentration of `spend`, one value per customer (customers who spent nothing
/// count). Sorts `spend` in place, highest first.
pub fn concentration(spend: &mut [f64]) -> Concentration {
    spend.sort_unstable_by(|a, b| counted(*b).total_cmp(&counted(*a)));
    let n = spend.len();
    let n_wide = n as u128;

    // The number of top customers behind each curve point: ⌈p · n / 100⌉, non-decreasing.
    let targets: Vec<usize> = (0..=100u128)
        .map(|p| usize::try_from((p * n_wide).div_ceil(100)).unwrap_or(n))
        .collect();

    // One pass over the customers, highest first, accumulates the prefix sums at the
    // targets and the Gini sum. With the values descending, the customer at 0-based
    // position j is at 1-based position n − j in ascending order.
    let mut prefix_at = Vec::with_capacity(targets.len());
    let mut pending = targets.iter().peekable();
    let mut running = 0.0;
    let mut weighted = 0.0;
    for (j, &x) in spend.iter().enumerate() {
        while pending.next_if(|&&t| t == j).is_some() {
            prefix_at.push(running);
        }
        let x = counted(x);
        running += x;
        weighted += (n - j) as f64 * x;
    }
    // The remaining targets are n, the whole base. Taking the total from the same sum
    // makes the last share exactly 1.
    let total = running;
    prefix_at.extend(pending.map(|_| total));

    let has_revenue = total > 0.0;
    let share = |prefix: f64| if has_revenue { prefix / total } else { 0.0 };
    let curve: Vec<(f64, f64)> = prefix_at
        .iter()
        .zip(0..=100u32)
        .map(|(&prefix, p)| (f64::from(p) / 100.0, share(prefix)))
        .collect();
    let top20_share = curve.get(20).map_or(0.0, |&(_, s)| s);
    let gini = if has_revenue {
        let nf = n as f64;
        // Rounding can leave a tiny negative value for an even spread; the true value is
        // never below 0.
        (2.0 * weighted / (nf * total) - (nf + 1.0) / nf).max(0.0)
    } else {
        0.0
    };
    Concentration {
        customers: n as u64,
        total,
        top20_share,
        gini,
        curve,
    }
}

#[cfg(test)]
#[allow(clippy::indexing_slicing)]
mod tests {
    use super::*;

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() < 1e-12
    }

    fn check_curve(c: &Concentration) {
        assert_eq!(c.curve.len(), 101);
        assert_eq!(c.curve[0], (0.0, 0.0));
        assert_eq!(c.curve[100], (1.0, 1.0));
        for pair in c.curve.windows(2) {
            assert!(pair[1].0 > pair[0].0 && pair[1].1 >= pair[0].1, "{pair:?}");
        }
        assert_eq!(c.curve[20].1, c.top20_share);
    }

    #[test]
    fn an_even_spread() {
        let c = concentration(&mut [1.0, 1.0, 1.0, 1.0, 1.0]);
        assert_eq!(c.customers, 5);
        assert_eq!(c.total, 5.0);
        assert!(close(c.gini, 0.0));
        // ⌈0.2 · 5⌉ = 1 customer of five equal ones.
        assert!(close(c.top20_share, 0.2));
        check_curve(&c);
        // At 50 %: ⌈2.5⌉ = 3 customers.
        assert!(close(c.curve[50].1, 0.6));
    }

    #[test]
    fn one_customer_holds_everything() {
        let mut spend = [0.0, 0.0, 10.0, 0.0, 0.0];
        let c = concentration(&mut spend);
        // Ascending 0, 0, 0, 0, 10: 2 · 5 · 10 / (5 · 10) − 6/5 = 0.8 = (n − 1) / n.
        assert!(close(c.gini, 0.8));
        assert_eq!(c.top20_share, 1.0);
        assert_eq!(spend, [10.0, 0.0, 0.0, 0.0, 0.0]);
        check_curve(&c);
        assert!(c.curve[1..].iter().all(|&(_, s)| s == 1.0));
    }

    #[test]
    fn hand_worked_uneven_base() {
        // Ascending 1, 2, 3, 4, 10, total 20: Σ i · x = 1 + 4 + 9 + 16 + 50 = 80,
        // G = 160 / 100 − 6/5 = 0.4. The top ⌈0.2 · 5⌉ = 1 brings 10 / 20.
        let c = concentration(&mut [3.0, 10.0, 1.0, 4.0, 2.0]);
        assert!(close(c.gini, 0.4));
        assert!(close(c.top20_share, 0.5));
        // 30 %: ⌈1.5⌉ = 2 customers, 14 / 20; 41 %: ⌈2.05⌉ = 3, 17 / 20.
        assert!(close(c.curve[30].1, 0.7));
        assert!(close(c.curve[41].1, 0.85));
        check_curve(&c);
    }

    #[test]
    fn matches_the_pairwise_definition_of_gini() {
        // G = Σ_i Σ_j |x_i − x_j| / (2 n² mean).
        let mut state = 5u64;
        for n in [1usize, 2, 3, 7, 50, 333] {
            let spend: Vec<f64> = (0..n)
                .map(|_| {
                    state = state
                        .wrapping_mul(6_364_136_223_846_793_005)
                        .wrapping_add(1_442_695_040_888_963_407);
                    ((state >> 33) % 1000) as f64 / 7.0
                })
                .collect();
            let total: f64 = spend.iter().sum();
            let pairs: f64 = spend
                .iter()
                .flat_map(|a| spend.iter().map(move |b| (a - b).abs()))
                .sum();
            let expected = pairs / (2.0 * n as f64 * total);
            let c = concentration(&mut spend.clone());
            assert!((c.gini - expected).abs() < 1e-9, "n {n}");
            check_curve(&c);
            // ⌈0.2 · n⌉ top customers, summed directly.
            let mut sorted = spend.clone();
            sorted.sort_by(|a, b| b.total_cmp(a));
            let top: f64 = sorted[..n.div_ceil(5)].iter().sum();
            assert!((c.top20_share - top / total).abs() < 1e-12);
        }
    }

    #[test]
    fn no_revenue() {
        for spend in [&mut [][..], &mut [0.0, 0.0, -3.0, f64::NAN][..]] {
            let c = concentration(spend);
            assert_eq!((c.total, c.top20_share, c.gini), (0.0, 0.0, 0.0));
            assert_eq!(c.curve.len(), 101);
            assert_eq!(c.curve[100], (1.0, 0.0));
            assert!(c.curve.iter().all(|&(_, s)| s == 0.0));
        }
        assert_eq!(concentration(&mut []).customers, 0);
    }

    #[test]
    fn negative_and_nan_spend_count_as_zero() {
        let c = concentration(&mut [-5.0, f64::NAN, 0.0, 0.0, 10.0]);
        assert_eq!(c.total, 10.0);
        assert!(close(c.gini, 0.8));
    }
}
