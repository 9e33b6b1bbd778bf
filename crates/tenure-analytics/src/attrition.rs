//! Month-by-month retention and attrition for a non-contractual business, where nobody
//! cancels and a customer counts as lost once they have gone a set number of months
//! (the window) without buying.
//!
//! A customer is in the base of month t when they bought in some month of
//! `[t - window, t - 1]`, that is when they were still active at the start of t. They are
//! retained in t when they also bought in some month of `[t - window + 1, t]`, so that they
//! are still within the window at the end of t; otherwise they are lost in t. Retention is
//! `retained / base` and attrition `1 - retention`. A month with an empty base has no
//! meaningful rate, and both are reported as `f64::NAN` rather than as a made-up 0 or 1.

/// Retention in one month.
#[derive(Debug, Clone, PartialEq)]
pub struct PeriodRetention {
    /// The month index (see [`crate::cohorts::month_index`]).
    pub period: i32,
    /// Customers active at the start of the month.
    pub base: u64,
    /// Those of them still active at its end.
    pub retained: u64,
    /// `base - retained`.
    pub lost: u64,
    /// `retained / base`; NaN when the base is empty.
    pub retention: f64,
    /// `1 - retention`; NaN when the base is empty.
    pub attrition: f64,
}

/// Builds the retention table one customer at a time in O(months they bought in) per
/// customer and O(periods) at the end.
///
/// One purchase in month m puts the customer in the base of months `[m + 1, m + window]`.
/// Merging those intervals over a customer's purchases gives the maximal runs of months in
/// which they are in the base. Within a run [a, b] the customer is retained in every month
/// but the last, because month t + 1 is also in the base exactly when they bought in
/// `[t - window + 1, t]`; in b they are lost. So each run adds one to the base of every
/// month in it (a difference array) and one to the lost count of month b.
#[derive(Debug, Clone)]
pub struct RetentionBuilder {
    first_period: i32,
    last_period: i32,
    window: u32,
    /// Difference array of the base: `base_delta[i]` is the change from period i - 1 to i.
    base_delta: Vec<i64>,
    lost: Vec<u64>,
}

impl RetentionBuilder {
    /// A builder for the months `first_period..=last_period` (no rows when the last is
    /// before the first). `window` is the number of months without a purchase after which a
    /// customer counts as lost; a window of 0 makes no sense and is treated as 1.
    pub fn new(first_period: i32, last_period: i32, window: u32) -> Self {
        let periods =
            usize::try_from(i64::from(last_period) - i64::from(first_period) + 1).unwrap_or(0);
        RetentionBuilder {
            first_period,
            last_period,
            window: window.max(1),
            base_delta: vec![0; periods + 1],
            lost: vec![0; periods],
        }
    }

    /// Adds one customer by the month indexes they bought in, which should be sorted and
    /// distinct; duplicates do no harm, and unsorted months are sorted on a copy first.
    pub fn add(&mut self, months: &[i32]) {
        if months.is_sorted() {
            self.add_sorted(months);
        } else {
            let mut sorted = months.to_vec();
            sorted.sort_unstable();
            self.add_sorted(&sorted);
        }
    }

    fn add_sorted(&mut self, months: &[i32]) {
        let window = i64::from(self.window);
        let mut run: Option<(i64, i64)> = None;
        for &month in months {
            let (start, end) = (i64::from(month) + 1, i64::from(month) + window);
            run = match run {
                // The new interval touches or overlaps the run: the run extends to its end,
                // which is the furthest since the months are sorted.
                Some((a, b)) if start <= b + 1 => Some((a, end.max(b))),
                Some(finished) => {
                    self.add_run(finished);
                    Some((start, end))
                }
                None => Some((start, end)),
            };
        }
        if let Some(finished) = run {
            self.add_run(finished);
        }
    }

    /// Counts one maximal run [a, b] of base months, clipped to the table's periods.
    fn add_run(&mut self, (a, b): (i64, i64)) {
        let first = i64::from(self.first_period);
        let last = i64::from(self.last_period);
        let (from, to) = (a.max(first), b.min(last));
        if from > to {
            return;
        }
        let offset = |t: i64| usize::try_from(t - first).ok();
        if let Some(slot) = offset(from).and_then(|i| self.base_delta.get_mut(i)) {
            *slot += 1;
        }
        if let Some(slot) = offset(to + 1).and_then(|i| self.base_delta.get_mut(i)) {
            *slot -= 1;
        }
        if b <= last
            && let Some(slot) = offset(b).and_then(|i| self.lost.get_mut(i))
        {
            *slot += 1;
        }
    }

    /// One row per month from the first period to the last, in order.
    pub fn finish(self) -> Vec<PeriodRetention> {
        let mut base = 0i64;
        self.base_delta
            .iter()
            .zip(&self.lost)
            .zip(self.first_period..)
            .map(|((&delta, &lost), period)| {
                base += delta;
                // Every run adds before it subtracts, so the running sum is never negative.
                let base = u64::try_from(base).unwrap_or(0);
                let retained = base.saturating_sub(lost);
                let (retention, attrition) = if base == 0 {
                    (f64::NAN, f64::NAN)
                } else {
                    let retention = retained as f64 / base as f64;
                    (retention, 1.0 - retention)
                };
                PeriodRetention {
                    period,
                    base,
                    retained,
                    lost,
                    retention,
                    attrition,
                }
            })
            .collect()
    }
}

#[cfg(test)]
#[allow(clippy::indexing_slicing)]
mod tests {
    use super::*;

    /// The definition applied directly, month by month and customer by customer.
    fn brute_force(
        customers: &[Vec<i32>],
        first: i32,
        last: i32,
        window: i32,
    ) -> Vec<(i32, u64, u64, u64)> {
        (first..=last)
            .map(|t| {
                let bought_in = |m: &Vec<i32>, from: i32, to: i32| {
                    m.iter().any(|&month| (from..=to).contains(&month))
                };
                let mut base = 0;
                let mut retained = 0;
                for m in customers {
                    if bought_in(m, t - window, t - 1) {
                        base += 1;
                        if bought_in(m, t - window + 1, t) {
                            retained += 1;
                        }
                    }
                }
                (t, base, retained, base - retained)
            })
            .collect()
    }

    fn rows(table: &[PeriodRetention]) -> Vec<(i32, u64, u64, u64)> {
        table
            .iter()
            .map(|r| (r.period, r.base, r.retained, r.lost))
            .collect()
    }

    #[test]
    fn a_window_of_one_month() {
        // Bought in 3, 4 and 5: in the base of 4, 5 and 6; retained in 4 and 5 because they
        // bought in those months, lost in 6.
        let mut builder = RetentionBuilder::new(1, 8, 1);
        builder.add(&[3, 4, 5]);
        let table = builder.finish();
        assert_eq!(
            rows(&table),
            vec![
                (1, 0, 0, 0),
                (2, 0, 0, 0),
                (3, 0, 0, 0),
                (4, 1, 1, 0),
                (5, 1, 1, 0),
                (6, 1, 0, 1),
                (7, 0, 0, 0),
                (8, 0, 0, 0),
            ]
        );
        assert!(table[0].retention.is_nan() && table[0].attrition.is_nan());
        assert_eq!((table[3].retention, table[3].attrition), (1.0, 0.0));
        assert_eq!((table[5].retention, table[5].attrition), (0.0, 1.0));
    }

    #[test]
    fn a_window_of_three_months() {
        // Two customers, window 3. The first bought in 0 and 3: base months [1, 3] and
        // [4, 6] touch and make one run 1..=6, lost in 6. The second bought in 2 only: base
        // months 3..=5, lost in 5.
        let mut builder = RetentionBuilder::new(0, 8, 3);
        builder.add(&[0, 3]);
        builder.add(&[2]);
        let table = builder.finish();
        let base: Vec<u64> = table.iter().map(|r| r.base).collect();
        let lost: Vec<u64> = table.iter().map(|r| r.lost).collect();
        assert_eq!(base, vec![0, 1, 1, 2, 2, 2, 1, 0, 0]);
        assert_eq!(lost, vec![0, 0, 0, 0, 0, 1, 1, 0, 0]);
        assert_eq!(table[5].retention, 0.5);
    }

    #[test]
    fn runs_outside_the_table_are_clipped() {
        let mut builder = RetentionBuilder::new(10, 12, 2);
        // Base months 9..=13: in the base throughout, lost only after the table ends.
        builder.add(&[8, 10, 11]);
        // Base months 4..=5: entirely before the table.
        builder.add(&[3]);
        let table = builder.finish();
        assert_eq!(
            rows(&table),
            vec![(10, 1, 1, 0), (11, 1, 1, 0), (12, 1, 1, 0)]
        );
        assert!(RetentionBuilder::new(5, 4, 1).finish().is_empty());
    }

    #[test]
    fn unsorted_and_repeated_months_count_once() {
        let mut sorted = RetentionBuilder::new(0, 20, 2);
        sorted.add(&[1, 5, 6, 9]);
        let mut messy = RetentionBuilder::new(0, 20, 2);
        messy.add(&[9, 5, 1, 6, 5, 9]);
        assert_eq!(rows(&sorted.finish()), rows(&messy.finish()));
    }

    #[test]
    fn matches_the_definition_on_random_data() {
        let mut state = 3u64;
        let mut next = move || {
            state = state
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            state >> 33
        };
        for window in [1, 2, 3, 6, 12] {
            let mut customers = Vec::new();
            for _ in 0..200 {
                let mut months: Vec<i32> = (0..1 + next() % 10)
                    .map(|_| (next() % 40) as i32 - 5)
                    .collect();
                months.sort_unstable();
                months.dedup();
                customers.push(months);
            }
            let (first, last) = (0, 36);
            let mut builder = RetentionBuilder::new(first, last, window as u32);
            for m in &customers {
                builder.add(m);
            }
            let table = builder.finish();
            assert_eq!(
                rows(&table),
                brute_force(&customers, first, last, window),
                "window {window}"
            );
            for r in &table {
                if r.base > 0 {
                    assert!((r.retention + r.attrition - 1.0).abs() < 1e-12);
                }
            }
        }
    }
}
