//! The holdout check: fit on the purchases up to a calibration end, then compare what the
//! model expects in the following period with what happened — per customer, grouped by
//! how often customers bought in calibration (the "conditional expectations" chart), and as
//! the cohort's cumulative repeat purchases period by period (the tracking chart).
//!
//! Time is in whole days (purchase days, as the summaries count them) and reported in units
//! of `days_per_unit` days.

use crate::clv::PurchaseModel;
use crate::summary::Summary;

/// Calibration frequencies at and above this share the last bucket.
pub const LAST_BUCKET: u32 = 7;

/// Customers who bought `x` times in calibration (`x` = [`LAST_BUCKET`] means that many or
/// more): their mean repeat purchases in the holdout period, actual and expected.
#[derive(Debug, Clone, PartialEq)]
pub struct Bucket {
    pub x: u32,
    pub customers: usize,
    pub actual: f64,
    pub predicted: f64,
}

/// One period of the tracking chart: the cohort's repeat purchases in the period ending on
/// `last_day` (inclusive), and cumulated from the first purchase on.
#[derive(Debug, Clone, PartialEq)]
pub struct Period {
    pub last_day: i64,
    pub holdout: bool,
    pub actual: f64,
    pub predicted: f64,
    pub actual_cumulative: f64,
    pub predicted_cumulative: f64,
}

/// The outcome of a holdout check.
#[derive(Debug, Clone, PartialEq)]
pub struct Report {
    /// Customers whose first purchase is on or before the calibration end.
    pub customers: usize,
    /// Length of the holdout period in units.
    pub holdout_units: f64,
    /// Repeat purchases in the holdout period: what happened and what the model expected.
    pub actual_total: f64,
    pub predicted_total: f64,
    /// Per customer, |expected − actual| and (expected − actual)² averaged.
    pub mean_absolute_error: f64,
    pub root_mean_squared_error: f64,
    pub by_frequency: Vec<Bucket>,
    pub tracking: Vec<Period>,
    /// Mean absolute percentage error of the cumulative holdout purchases over the holdout
    /// periods (periods with no purchases yet are skipped).
    pub tracking_mape: f64,
}

/// The calibration summary (in units of `days_per_unit` days) of one customer's distinct,
/// sorted purchase days; `None` when the first purchase is after `calibration_end`.
pub fn calibration_summary(
    days: &[i64],
    calibration_end: i64,
    days_per_unit: f64,
) -> Option<Summary> {
    crate::summary::of_days(days, |d| d, |_| 0.0, calibration_end, days_per_unit)
}

/// Compares `model` (fitted on the calibration summaries) with what the customers did after
/// `calibration_end` up to `holdout_end`. `histories` holds each customer's distinct purchase
/// days in order; tracking periods are `days_per_unit` days long and end on the calibration
/// end.
pub fn check(
    model: &(impl PurchaseModel + ?Sized),
    histories: &[Vec<i64>],
    calibration_end: i64,
    holdout_end: i64,
    days_per_unit: f64,
) -> Report {
    let holdout_units = (holdout_end - calibration_end) as f64 / days_per_unit;
    let mut buckets: Vec<Bucket> = (0..=LAST_BUCKET)
        .map(|x| Bucket {
            x,
            customers: 0,
            actual: 0.0,
            predicted: 0.0,
        })
        .collect();
    let (mut customers, mut actual_total, mut predicted_total) = (0, 0.0, 0.0);
    let (mut absolute, mut squared) = (0.0, 0.0);
    let Some(origin) = histories
        .iter()
        .filter_map(|h| h.first().copied())
        .filter(|&f| f <= calibration_end)
        .min()
    else {
        return Report {
            customers: 0,
            holdout_units,
            actual_total: 0.0,
            predicted_total: 0.0,
            mean_absolute_error: 0.0,
            root_mean_squared_error: 0.0,
            by_frequency: Vec::new(),
            tracking: Vec::new(),
            tracking_mape: 0.0,
        };
    };
    let span = (holdout_end - origin) as usize + 1;
    // Repeat purchases per day, and new customers per day, from the origin.
    let mut repeats_on = vec![0.0; span];
    let mut acquired_on = vec![0.0; span];
    for days in histories {
        let Some(c) = calibration_summary(days, calibration_end, days_per_unit) else {
            continue;
        };
        customers += 1;
        acquired_on[(days[0] - origin) as usize] += 1.0;
        for &d in days.iter().skip(1).filter(|&&d| d <= holdout_end) {
            repeats_on[(d - origin) as usize] += 1.0;
        }
        let actual = days
            .iter()
            .filter(|&&d| d > calibration_end && d <= holdout_end)
            .count() as f64;
        let predicted = model.expected_purchases(&c, holdout_units);
        actual_total += actual;
        predicted_total += predicted;
        absolute += (predicted - actual).abs();
        squared += (predicted - actual).powi(2);
        let b = &mut buckets[(c.x as u32).min(LAST_BUCKET) as usize];
        b.customers += 1;
        b.actual += actual;
        b.predicted += predicted;
    }
    for b in &mut buckets {
        if b.customers > 0 {
            b.actual /= b.customers as f64;
            b.predicted /= b.customers as f64;
        }
    }
    let n = customers.max(1) as f64;

    // Expected repeat purchases of one customer `lag` days after their first purchase.
    let expected_by_lag: Vec<f64> = (0..span)
        .map(|lag| model.expected_purchases_new(lag as f64 / days_per_unit))
        .collect();
    let step = days_per_unit.round().max(1.0) as i64;
    // Period ends: the calibration end, and steps of one unit either side of it.
    let mut first_end = calibration_end;
    while first_end - step >= origin {
        first_end -= step;
    }
    let mut tracking = Vec::new();
    let (mut actual_cumulative, mut previous_predicted) = (0.0, 0.0);
    let mut day = origin;
    let mut end = first_end;
    while day <= holdout_end {
        let last_day = end.min(holdout_end);
        while day <= last_day {
            actual_cumulative += repeats_on[(day - origin) as usize];
            day += 1;
        }
        let e = (last_day - origin) as usize;
        let predicted_cumulative: f64 = (0..=e)
            .filter(|&f| acquired_on[f] > 0.0)
            .map(|f| acquired_on[f] * expected_by_lag[e - f])
            .sum();
        let actual = actual_cumulative
            - tracking
                .last()
                .map_or(0.0, |p: &Period| p.actual_cumulative);
        tracking.push(Period {
            last_day,
            holdout: last_day > calibration_end,
            actual,
            predicted: predicted_cumulative - previous_predicted,
            actual_cumulative,
            predicted_cumulative,
        });
        previous_predicted = predicted_cumulative;
        end += step;
    }
    // The error of the cumulative purchases counted from the calibration end.
    let at_end = tracking
        .iter()
        .rfind(|p| !p.holdout)
        .map_or((0.0, 0.0), |p| {
            (p.actual_cumulative, p.predicted_cumulative)
        });
    let errors: Vec<f64> = tracking
        .iter()
        .filter(|p| p.holdout && p.actual_cumulative > at_end.0)
        .map(|p| {
            let actual = p.actual_cumulative - at_end.0;
            ((p.predicted_cumulative - at_end.1) - actual).abs() / actual
        })
        .collect();
    Report {
        customers,
        holdout_units,
        actual_total,
        predicted_total,
        mean_absolute_error: absolute / n,
        root_mean_squared_error: (squared / n).sqrt(),
        by_frequency: buckets.into_iter().filter(|b| b.customers > 0).collect(),
        tracking,
        tracking_mape: if errors.is_empty() {
            0.0
        } else {
            errors.iter().sum::<f64>() / errors.len() as f64
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A model that expects one purchase per unit of time from everyone, alive for sure.
    struct Steady;

    impl PurchaseModel for Steady {
        fn p_alive(&self, _: &Summary) -> f64 {
            1.0
        }
        fn expected_purchases_many(&self, _: &Summary, horizons: &[f64], out: &mut [f64]) {
            out.copy_from_slice(horizons);
        }
        fn expected_purchases_new(&self, t: f64) -> f64 {
            t
        }
    }

    #[test]
    fn counts_holdout_purchases_and_tracks_the_cohort() {
        // Units of one day. Calibration ends on day 10, holdout to day 14 (4 units).
        let histories = vec![
            vec![0, 3, 10, 12],  // x = 2 in calibration, 1 in holdout
            vec![5, 11, 13, 14], // x = 0, 3 in holdout
            vec![12, 13],        // first purchase after calibration: not in the cohort
            vec![],
        ];
        let r = check(&Steady, &histories, 10, 14, 1.0);
        assert_eq!(r.customers, 2);
        assert_eq!(r.holdout_units, 4.0);
        assert_eq!(r.actual_total, 4.0);
        assert_eq!(r.predicted_total, 8.0);
        assert_eq!(r.mean_absolute_error, (3.0 + 1.0) / 2.0);
        assert_eq!(r.root_mean_squared_error, ((9.0 + 1.0) / 2.0_f64).sqrt());
        assert_eq!(
            r.by_frequency,
            vec![
                Bucket {
                    x: 0,
                    customers: 1,
                    actual: 3.0,
                    predicted: 4.0
                },
                Bucket {
                    x: 2,
                    customers: 1,
                    actual: 1.0,
                    predicted: 4.0
                },
            ]
        );
        // One period per day from day 0 to day 14; repeat purchases of the cohort only.
        assert_eq!(r.tracking.len(), 15);
        let last = r.tracking.last().unwrap();
        assert_eq!(last.last_day, 14);
        assert_eq!(last.actual_cumulative, 6.0);
        // Expected: 14 days for the first customer, 9 for the second.
        assert_eq!(last.predicted_cumulative, 23.0);
        let day10 = &r.tracking[10];
        assert!(!day10.holdout && r.tracking[11].holdout);
        assert_eq!(day10.actual_cumulative, 2.0);
        assert_eq!(day10.predicted_cumulative, 15.0);
        // Holdout cumulative from day 10: actual 1, 2, 3, 4 against expected 2, 4, 6, 8.
        assert!((r.tracking_mape - (1.0 + 1.0 + 1.0 + 1.0) / 4.0).abs() < 1e-12);
        assert_eq!(r.tracking[12].actual, 1.0);
    }

    #[test]
    fn summaries_count_repeat_days_within_calibration() {
        let s = calibration_summary(&[7, 14, 21, 70], 28, 7.0).unwrap();
        assert_eq!((s.x, s.t_x, s.t), (2.0, 2.0, 3.0));
        assert!(calibration_summary(&[30], 28, 7.0).is_none());
    }
}
