//! Acquisition cohorts: customers grouped by the month of their first purchase, and the
//! share of each cohort that bought again in each later month (the retention triangle).
//!
//! Months are plain integers, `year * 12 + (month - 1)`, called the month index, so that
//! consecutive months differ by one and periods are differences of indexes.

use std::collections::BTreeMap;

use chrono::{Datelike, NaiveDate};

/// The month index of `date`: `year * 12 + (month - 1)`.
pub fn month_index(date: NaiveDate) -> i32 {
    // month0() is at most 11, so the conversion cannot fail; the fallback is never used.
    date.year() * 12 + i32::try_from(date.month0()).unwrap_or(0)
}

/// The month index as "YYYY-MM".
pub fn month_label(index: i32) -> String {
    let year = index.div_euclid(12);
    let month = index.rem_euclid(12) + 1;
    format!("{year:04}-{month:02}")
}

/// One customer's activity: the acquisition month (the month of the first purchase) and
/// the sorted, de-duplicated month indexes in which they bought, the first included.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Activity<'a> {
    pub first_month: i32,
    pub months: &'a [i32],
}

/// One cell of the cohort matrix.
#[derive(Debug, Clone, PartialEq)]
pub struct CohortCell {
    /// The acquisition month index.
    pub cohort: i32,
    /// Months since acquisition; period 0 is the acquisition month itself.
    pub period: u32,
    /// Customers acquired in the cohort month.
    pub size: u64,
    /// Those of them who bought in month `cohort + period`.
    pub active: u64,
    /// `active / size`.
    pub retention: f64,
}

/// The cohort matrix: for each acquisition month up to `last_month` and each period
/// `0..=(last_month - cohort)`, `size` = customers acquired that month, `active` = those
/// who bought in month `cohort + period`, `retention` = `active / size`. Rows are ordered
/// by cohort, then period. Cohorts with no customers are omitted, and months after
/// `last_month` are ignored.
pub fn cohort_matrix<'a>(
    customers: impl IntoIterator<Item = Activity<'a>>,
    last_month: i32,
) -> Vec<CohortCell> {
    let mut builder = CohortBuilder::new(last_month);
    for customer in customers {
        builder.add(customer.first_month, customer.months.iter().copied());
    }
    builder.finish()
}

/// One cohort's counts while the matrix is being built.
#[derive(Debug, Clone)]
struct Row {
    size: u64,
    /// `active[p]` counts the customers who bought in period p.
    active: Vec<u64>,
    /// `stamp[p]` is the serial number of the last customer counted in period p, so that a
    /// month listed twice for one customer is counted once without sorting their months.
    stamp: Vec<u64>,
}

/// Builds the cohort matrix one customer at a time, in memory proportional to cohorts ×
/// periods rather than to customers.
#[derive(Debug, Clone)]
pub struct CohortBuilder {
    last_month: i32,
    rows: BTreeMap<i32, Row>,
    /// The serial number of the customer being added; 0 marks a period nobody counted yet.
    serial: u64,
}

impl CohortBuilder {
    /// A builder for the matrix up to and including `last_month`.
    pub fn new(last_month: i32) -> Self {
        CohortBuilder {
            last_month,
            rows: BTreeMap::new(),
            serial: 0,
        }
    }

    /// Adds one customer acquired in `first_month` who bought in `months`, which may be
    /// unsorted and contain duplicates; each month counts once. The acquisition month counts
    /// as a purchase month whether or not `months` lists it, since the customer was acquired
    /// by buying then. Months before the acquisition month or after the last month are
    /// ignored, and so is a customer acquired after the last month.
    pub fn add(&mut self, first_month: i32, months: impl IntoIterator<Item = i32>) {
        if first_month > self.last_month {
            return;
        }
        self.serial += 1;
        let serial = self.serial;
        let periods = i64::from(self.last_month) - i64::from(first_month) + 1;
        let row = self.rows.entry(first_month).or_insert_with(|| {
            let periods = usize::try_from(periods).unwrap_or(0);
            Row {
                size: 0,
                active: vec![0; periods],
                stamp: vec![0; periods],
            }
        });
        row.size += 1;
        let mut count = |period: i64| {
            let Ok(period) = usize::try_from(period) else {
                return;
            };
            if let (Some(stamp), Some(active)) =
                (row.stamp.get_mut(period), row.active.get_mut(period))
                && *stamp != serial
            {
                *stamp = serial;
                *active += 1;
            }
        };
        count(0);
        for month in months {
            // Out-of-range periods (negative or past the last month) find no slot.
            count(i64::from(month) - i64::from(first_month));
        }
    }

    /// The matrix, ordered by cohort and then period.
    pub fn finish(self) -> Vec<CohortCell> {
        let cells = self.rows.values().map(|row| row.active.len()).sum();
        let mut out = Vec::with_capacity(cells);
        for (cohort, row) in self.rows {
            let size = row.size;
            out.extend(
                row.active
                    .into_iter()
                    .zip(0u32..)
                    .map(|(active, period)| CohortCell {
                        cohort,
                        period,
                        size,
                        active,
                        retention: active as f64 / size as f64,
                    }),
            );
        }
        out
    }
}

#[cfg(test)]
#[allow(clippy::indexing_slicing)]
mod tests {
    use super::*;

    fn date(y: i32, m: u32, d: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, d).unwrap()
    }

    #[test]
    fn month_indexes_and_labels() {
        assert_eq!(month_index(date(2024, 1, 31)), 2024 * 12);
        assert_eq!(month_index(date(2024, 12, 1)), 2024 * 12 + 11);
        assert_eq!(
            month_index(date(2025, 1, 1)) - month_index(date(2024, 12, 31)),
            1
        );
        assert_eq!(month_label(2024 * 12), "2024-01");
        assert_eq!(month_label(2024 * 12 + 11), "2024-12");
        assert_eq!(month_label(month_index(date(987, 6, 15))), "0987-06");
    }

    #[test]
    fn small_matrix_by_hand() {
        let jan = 2024 * 12;
        let (feb, mar) = (jan + 1, jan + 2);
        let a = [jan, feb, mar];
        let b = [jan, mar];
        let c = [jan];
        let d = [feb, mar, mar + 5];
        let customers = [
            Activity {
                first_month: jan,
                months: &a,
            },
            Activity {
                first_month: jan,
                months: &b,
            },
            Activity {
                first_month: jan,
                months: &c,
            },
            Activity {
                first_month: feb,
                months: &d,
            },
        ];
        let matrix = cohort_matrix(customers, mar);
        let rows: Vec<(i32, u32, u64, u64)> = matrix
            .iter()
            .map(|c| (c.cohort, c.period, c.size, c.active))
            .collect();
        assert_eq!(
            rows,
            vec![
                (jan, 0, 3, 3),
                (jan, 1, 3, 1),
                (jan, 2, 3, 2),
                (feb, 0, 1, 1),
                (feb, 1, 1, 1),
            ]
        );
        assert!((matrix[1].retention - 1.0 / 3.0).abs() < 1e-15);
        assert_eq!(matrix[3].retention, 1.0);
    }

    #[test]
    fn builder_counts_each_month_once_and_ignores_out_of_range() {
        let mut builder = CohortBuilder::new(10);
        // Unsorted, with duplicates, a month before acquisition and one after the end.
        builder.add(5, [7, 5, 7, 3, 12, 7, 6]);
        // The acquisition month counts even when it is not listed.
        builder.add(5, [6]);
        // Acquired after the last month: left out entirely.
        builder.add(11, [11]);
        let matrix = builder.finish();
        let active: Vec<u64> = matrix.iter().map(|c| c.active).collect();
        assert_eq!(active, vec![2, 2, 1, 0, 0, 0]);
        assert!(matrix.iter().all(|c| c.cohort == 5 && c.size == 2));
        assert_eq!(matrix.last().map(|c| c.period), Some(5));
        assert!(CohortBuilder::new(0).finish().is_empty());
    }

    #[test]
    fn matches_a_direct_count_on_random_data() {
        let mut state = 11u64;
        let mut next = move || {
            state = state
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            state >> 33
        };
        let last = 30;
        let mut customers: Vec<Vec<i32>> = Vec::new();
        for _ in 0..400 {
            let first = (next() % 34) as i32;
            let mut months = vec![first];
            for _ in 0..(next() % 8) {
                months.push(first + (next() % 12) as i32);
            }
            months.sort_unstable();
            months.dedup();
            customers.push(months);
        }
        let matrix = cohort_matrix(
            customers.iter().map(|m| Activity {
                first_month: m[0],
                months: m,
            }),
            last,
        );
        let mut expected = Vec::new();
        for cohort in 0..=last {
            let members: Vec<&Vec<i32>> = customers.iter().filter(|m| m[0] == cohort).collect();
            if members.is_empty() {
                continue;
            }
            for period in 0..=(last - cohort) {
                let active = members
                    .iter()
                    .filter(|m| m.contains(&(cohort + period)))
                    .count();
                expected.push((cohort, period as u32, members.len() as u64, active as u64));
            }
        }
        let got: Vec<(i32, u32, u64, u64)> = matrix
            .iter()
            .map(|c| (c.cohort, c.period, c.size, c.active))
            .collect();
        assert_eq!(got, expected);
    }
}
