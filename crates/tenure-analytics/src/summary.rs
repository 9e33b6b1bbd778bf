//! Per-customer summaries of a purchase history, as the models take them: x (repeat
//! purchase days within the calibration period), t_x (first to last purchase day), T (first
//! purchase day to the calibration end) and z̄ (mean value of the repeat purchase days).
//! Purchases on the same day count as one purchase worth the day's sum.

use std::collections::BTreeMap;

use chrono::NaiveDate;

/// One customer's summary; times in the unit the caller chose (days or weeks).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Summary {
    pub x: f64,
    pub t_x: f64,
    pub t: f64,
    /// z̄: the mean value of the repeat purchase days; 0 without repeat purchases.
    pub monetary: f64,
}

/// Summarises purchases `(customer, day, value)` up to and including `calibration_end`,
/// with times in units of `days_per_unit` days (7 for weeks). Customers whose first
/// purchase is after the calibration end are left out. The result is in customer order.
pub fn summarize<K: Ord + Clone>(
    purchases: impl IntoIterator<Item = (K, NaiveDate, f64)>,
    calibration_end: NaiveDate,
    days_per_unit: f64,
) -> Vec<(K, Summary)> {
    let mut days: BTreeMap<K, BTreeMap<i64, f64>> = BTreeMap::new();
    for (k, day, value) in purchases {
        if day <= calibration_end {
            *days
                .entry(k)
                .or_default()
                .entry(day.to_epoch_days().into())
                .or_insert(0.0) += value;
        }
    }
    let end = calibration_end.to_epoch_days().into();
    days.into_iter()
        .filter_map(|(k, by_day)| {
            let days: Vec<(i64, f64)> = by_day.into_iter().collect();
            Some((k, of_days(&days, |d| d.0, |d| d.1, end, days_per_unit)?))
        })
        .collect()
}

/// The summary of one customer from their purchase days — distinct, in order, each
/// giving its day number with `day` and its value with `value` — counting those up to and
/// including `calibration_end`; `None` when the first is after it.
pub fn of_days<D: Copy>(
    days: &[D],
    day: impl Fn(D) -> i64,
    value: impl Fn(D) -> f64,
    calibration_end: i64,
    days_per_unit: f64,
) -> Option<Summary> {
    let first = day(*days.first()?);
    if first > calibration_end {
        return None;
    }
    let within = days.partition_point(|&d| day(d) <= calibration_end);
    let last = day(days[within - 1]);
    let repeat = &days[1..within];
    let x = repeat.len() as f64;
    Some(Summary {
        x,
        t_x: (last - first) as f64 / days_per_unit,
        t: (calibration_end - first) as f64 / days_per_unit,
        monetary: if repeat.is_empty() {
            0.0
        } else {
            repeat.iter().map(|&d| value(d)).sum::<f64>() / x
        },
    })
}

/// Every k-th customer, about `size` of them, and the share they are of the whole, for a
/// fit that starts on a sample (see [`crate::optimize::maximize_staged`]); `None` when
/// there are too few customers (under four times `size`) for a sample to save time.
pub(crate) fn sample<T: Clone>(all: &[T], size: usize) -> Option<(Vec<T>, f64)> {
    if all.len() < 4 * size.max(1) {
        return None;
    }
    let step = all.len() / size;
    let sample: Vec<T> = all.iter().step_by(step).cloned().collect();
    let share = sample.len() as f64 / all.len() as f64;
    Some((sample, share))
}

/// Customers per unit of parallel work in the likelihoods.
pub(crate) const CHUNK: usize = 16_384;

/// Customers grouped by repeat count, so the likelihood terms that depend on x alone are
/// computed once per distinct x at each evaluation.
pub(crate) struct ByRepeats {
    /// Distinct x values.
    pub xs: Vec<f64>,
    /// (index into `xs`, t_x, T) per customer.
    pub rows: Vec<(usize, f64, f64)>,
    /// Customers per distinct x.
    pub counts: Vec<f64>,
}

impl ByRepeats {
    pub fn new(customers: &[Summary]) -> ByRepeats {
        let (xs, index) = distinct(customers.iter().map(|c| c.x));
        let mut counts = vec![0.0; xs.len()];
        let rows = customers
            .iter()
            .zip(index)
            .map(|(c, i)| {
                counts[i] += 1.0;
                (i, c.t_x, c.t)
            })
            .collect();
        ByRepeats { xs, rows, counts }
    }
}

/// The distinct values in increasing order, and each value's index among them. A hash of
/// the few distinct repeat counts instead of sorting every customer's.
pub(crate) fn distinct(values: impl Iterator<Item = f64>) -> (Vec<f64>, Vec<usize>) {
    let mut seen: std::collections::HashMap<u64, usize> = std::collections::HashMap::new();
    let mut first_seen = Vec::new();
    let index: Vec<usize> = values
        .map(|v| {
            *seen.entry(v.to_bits()).or_insert_with(|| {
                first_seen.push(v);
                first_seen.len() - 1
            })
        })
        .collect();
    let mut order: Vec<usize> = (0..first_seen.len()).collect();
    order.sort_by(|&a, &b| first_seen[a].total_cmp(&first_seen[b]));
    let mut rank = vec![0; order.len()];
    for (r, &i) in order.iter().enumerate() {
        rank[i] = r;
    }
    let xs = order.iter().map(|&i| first_seen[i]).collect();
    (xs, index.into_iter().map(|i| rank[i]).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn distinct_values_are_ordered_and_indexed() {
        let (xs, index) = distinct([3.0, 0.0, 3.0, 1.0, 0.0].into_iter());
        assert_eq!(xs, vec![0.0, 1.0, 3.0]);
        assert_eq!(index, vec![2, 0, 2, 1, 0]);
    }
}
