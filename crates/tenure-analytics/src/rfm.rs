//! RFM scoring: each customer's recency, frequency and monetary value scored 1 to 5 by
//! quintile within the customer base, and the named segment those scores put them in.
//!
//! # Scores
//!
//! Each of the three values is scored on its own. The customers are ranked from the worst
//! value to the best: for frequency and monetary value a higher value is better, for
//! recency (days since the last purchase) a lower value is better. A value's score is
//!
//! ```text
//! score = 1 + floor(5 · k / n)
//! ```
//!
//! where `n` is the number of customers and `k` the number of customers whose value is
//! strictly worse, that is the 0-based position of the first of its ties in the ranking
//! from worst to best. Score 5 is the best fifth and score 1 the worst. Equal values
//! therefore always get the same score, and a run of ties that spans several quintiles gets
//! the lowest score of the ranks it spans: when 40 % of the customers bought exactly once,
//! all of them score 1 on frequency and nobody scores 2.
//!
//! # Segments
//!
//! The segment comes from the recency score R and the combined frequency-monetary score
//! FM = (F + M) / 2 rounded half up, `fm = (f + m + 1) / 2` in integers:
//!
//! | R \ FM | 5              | 4              | 3        | 2                   | 1              |
//! |--------|----------------|----------------|----------|---------------------|----------------|
//! | 5      | champions      | champions      | loyal    | potential_loyalists | new            |
//! | 4      | champions      | champions      | loyal    | potential_loyalists | promising      |
//! | 3      | loyal          | loyal          | loyal    | need_attention      | about_to_sleep |
//! | 2      | at_risk        | at_risk        | at_risk  | hibernating         | hibernating    |
//! | 1      | cant_lose_them | cant_lose_them | at_risk  | lost                | lost           |

use std::fmt;
use std::str::FromStr;

/// One customer's raw RFM values. `recency_days` = days from the as-of day back to the last
/// purchase day (>= 0), `frequency` = number of orders (>= 1), `monetary_minor` = total
/// spend in minor units (>= 0, may be 0).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RfmInput {
    pub recency_days: i64,
    pub frequency: i64,
    pub monetary_minor: i64,
}

/// One customer's three quintile scores (1 to 5, 5 best) and the segment they give.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RfmScore {
    pub r: u8,
    pub f: u8,
    pub m: u8,
    pub segment: RfmSegment,
}

/// The named customer segments of the RFM grid (see the module documentation).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum RfmSegment {
    Champions,
    Loyal,
    PotentialLoyalists,
    New,
    Promising,
    NeedAttention,
    AboutToSleep,
    AtRisk,
    CantLoseThem,
    Hibernating,
    Lost,
}

impl RfmSegment {
    /// Every segment, from the most to the least valuable.
    pub const ALL: [RfmSegment; 11] = [
        RfmSegment::Champions,
        RfmSegment::Loyal,
        RfmSegment::PotentialLoyalists,
        RfmSegment::New,
        RfmSegment::Promising,
        RfmSegment::NeedAttention,
        RfmSegment::AboutToSleep,
        RfmSegment::AtRisk,
        RfmSegment::CantLoseThem,
        RfmSegment::Hibernating,
        RfmSegment::Lost,
    ];

    /// The segment's stable spelling, as used in URLs and stored settings.
    pub fn as_str(self) -> &'static str {
        match self {
            RfmSegment::Champions => "champions",
            RfmSegment::Loyal => "loyal",
            RfmSegment::PotentialLoyalists => "potential_loyalists",
            RfmSegment::New => "new",
            RfmSegment::Promising => "promising",
            RfmSegment::NeedAttention => "need_attention",
            RfmSegment::AboutToSleep => "about_to_sleep",
            RfmSegment::AtRisk => "at_risk",
            RfmSegment::CantLoseThem => "cant_lose_them",
            RfmSegment::Hibernating => "hibernating",
            RfmSegment::Lost => "lost",
        }
    }

    /// The segment of the scores `r`, `f` and `m` by the grid in the module documentation.
    /// Scores outside 1..=5 are clamped into that range first, so every input has a segment.
    pub fn from_scores(r: u8, f: u8, m: u8) -> RfmSegment {
        let r = r.clamp(1, 5);
        let f = f.clamp(1, 5);
        let m = m.clamp(1, 5);
        let fm = (f + m).div_ceil(2);
        match (r, fm) {
            (5, 4..) | (4, 4..) => RfmSegment::Champions,
            (5, 3) | (4, 3) | (3, 3..) => RfmSegment::Loyal,
            (5, 2) | (4, 2) => RfmSegment::PotentialLoyalists,
            (5, _) => RfmSegment::New,
            (4, _) => RfmSegment::Promising,
            (3, 2) => RfmSegment::NeedAttention,
            (3, _) => RfmSegment::AboutToSleep,
            (2, 3..) | (1, 3) => RfmSegment::AtRisk,
            (2, _) => RfmSegment::Hibernating,
            (_, 4..) => RfmSegment::CantLoseThem,
            _ => RfmSegment::Lost,
        }
    }
}

impl fmt::Display for RfmSegment {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for RfmSegment {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        RfmSegment::ALL
            .into_iter()
            .find(|segment| segment.as_str() == s)
            .ok_or_else(|| {
                let spellings: Vec<&str> = RfmSegment::ALL.iter().map(|s| s.as_str()).collect();
                format!(
                    "unknown RFM segment \"{s}\"; expected one of: {}",
                    spellings.join(", ")
                )
            })
    }
}

/// Scores every input; `output[i]` is `inputs[i]`'s score.
pub fn score(inputs: &[RfmInput]) -> Vec<RfmScore> {
    let recency: Vec<i64> = inputs.iter().map(|i| i.recency_days).collect();
    let r = quintiles(&recency, false);
    drop(recency);
    let frequency: Vec<i64> = inputs.iter().map(|i| i.frequency).collect();
    let f = quintiles(&frequency, true);
    drop(frequency);
    let monetary: Vec<i64> = inputs.iter().map(|i| i.monetary_minor).collect();
    let m = quintiles(&monetary, true);
    drop(monetary);
    r.into_iter()
        .zip(f)
        .zip(m)
        .map(|((r, f), m)| RfmScore {
            r,
            f,
            m,
            segment: RfmSegment::from_scores(r, f, m),
        })
        .collect()
}

/// The quintile score 1..=5 of each value by the tie rule in the module documentation;
/// `higher_is_better` says the direction. Sorts once, so it takes O(n log n) time.
pub fn quintiles(values: &[i64], higher_is_better: bool) -> Vec<u8> {
    let n = values.len();
    // The sort key orders values from worst to best. Bitwise not reverses the order of
    // i64 without the overflow that negating i64::MIN would cause.
    let mut ranked: Vec<(i64, usize)> = values
        .iter()
        .enumerate()
        .map(|(index, &value)| (if higher_is_better { value } else { !value }, index))
        .collect();
    ranked.sort_unstable_by_key(|&(key, _)| key);

    let mut scores = vec![1u8; n];
    // The width of `n` is at most 64 bits, so 5 · k never overflows u128.
    let n_wide = n as u128;
    let mut previous: Option<i64> = None;
    let mut score = 1u8;
    for (position, &(key, index)) in ranked.iter().enumerate() {
        if previous != Some(key) {
            previous = Some(key);
            let k = position as u128;
            // k < n, so the quotient is at most 4 and the score fits in 1..=5.
            score = 1 + u8::try_from(5 * k / n_wide).unwrap_or(4);
        }
        if let Some(slot) = scores.get_mut(index) {
            *slot = score;
        }
    }
    scores
}

#[cfg(test)]
#[allow(clippy::indexing_slicing)]
mod tests {
    use super::*;

    /// The tie rule written out directly: count the strictly worse values for each value.
    fn brute_force(values: &[i64], higher_is_better: bool) -> Vec<u8> {
        let n = values.len();
        values
            .iter()
            .map(|&v| {
                let worse = values
                    .iter()
                    .filter(|&&w| if higher_is_better { w < v } else { w > v })
                    .count();
                (1 + 5 * worse / n) as u8
            })
            .collect()
    }

    /// A tiny deterministic linear congruential generator, so the tests need no dependency.
    struct Lcg(u64);

    impl Lcg {
        fn next(&mut self) -> u64 {
            self.0 = self
                .0
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            self.0 >> 33
        }
    }

    #[test]
    fn ties_take_the_score_of_their_first_rank() {
        // n = 10. Ranked worst to best, the four 1s start at k = 0 → 1 + floor(0/10) = 1;
        // 2 has k = 4 → 1 + floor(20/10) = 3; 3 has k = 5 → 1 + floor(25/10) = 3;
        // 4 has k = 6 → 1 + 3 = 4; 5 has k = 7 → 1 + floor(35/10) = 4; 6 has k = 8 → 5;
        // 7 has k = 9 → 1 + floor(45/10) = 5. Score 2 is skipped because the ties span it.
        let values = [1, 1, 1, 1, 2, 3, 4, 5, 6, 7];
        assert_eq!(quintiles(&values, true), vec![1, 1, 1, 1, 3, 3, 4, 4, 5, 5]);

        // The same values in another order score the same, value by value.
        let shuffled = [7, 1, 4, 1, 6, 2, 1, 5, 3, 1];
        assert_eq!(
            quintiles(&shuffled, true),
            vec![5, 1, 4, 1, 5, 3, 1, 4, 3, 1]
        );

        // n = 5 distinct values: k = 0..4 → scores 1..5, one per value.
        assert_eq!(quintiles(&[50, 10, 40, 20, 30], true), vec![5, 1, 4, 2, 3]);

        // n = 7 with a tie at the top: 1 (k 0) → 1; 2 (k 1) → 1 + floor(5/7) = 1;
        // 3 (k 2) → 1 + floor(10/7) = 2; 4 (k 3) → 1 + floor(15/7) = 3;
        // 5 (k 4) → 1 + floor(20/7) = 3; the two 9s (k 5) → 1 + floor(25/7) = 4.
        // Nobody scores 5, because the best value is shared.
        assert_eq!(
            quintiles(&[1, 2, 3, 4, 5, 9, 9], true),
            vec![1, 1, 2, 3, 3, 4, 4]
        );

        // All equal: every value has k = 0.
        assert_eq!(quintiles(&[3, 3, 3, 3], true), vec![1, 1, 1, 1]);
        assert_eq!(quintiles(&[42], false), vec![1]);
        assert!(quintiles(&[], true).is_empty());
        assert!(score(&[]).is_empty());
    }

    #[test]
    fn extreme_values_do_not_overflow() {
        assert_eq!(quintiles(&[i64::MIN, 0, i64::MAX], false), vec![4, 2, 1]);
        assert_eq!(quintiles(&[i64::MIN, 0, i64::MAX], true), vec![1, 2, 4]);
    }

    #[test]
    fn the_most_recent_customer_scores_five_on_recency() {
        // Recency is better when lower: ranked worst to best the days are 40, 30, 20, 10, 0.
        let inputs: Vec<RfmInput> = [0, 10, 20, 30, 40]
            .into_iter()
            .map(|d| RfmInput {
                recency_days: d,
                frequency: 1,
                monetary_minor: 0,
            })
            .collect();
        let scores = score(&inputs);
        let r: Vec<u8> = scores.iter().map(|s| s.r).collect();
        assert_eq!(r, vec![5, 4, 3, 2, 1]);
        // Everyone has the same frequency and spend, so those score 1 throughout.
        assert!(scores.iter().all(|s| s.f == 1 && s.m == 1));
        assert_eq!(scores[0].segment, RfmSegment::New);
        assert_eq!(scores[4].segment, RfmSegment::Lost);
    }

    #[test]
    fn score_combines_the_three_directions() {
        let inputs = [
            RfmInput {
                recency_days: 1,
                frequency: 9,
                monetary_minor: 90_000,
            },
            RfmInput {
                recency_days: 300,
                frequency: 1,
                monetary_minor: 0,
            },
        ];
        let scores = score(&inputs);
        // n = 2: the better value has k = 1 → 1 + floor(5/2) = 3, the worse k = 0 → 1.
        assert_eq!(
            scores,
            vec![
                RfmScore {
                    r: 3,
                    f: 3,
                    m: 3,
                    segment: RfmSegment::Loyal
                },
                RfmScore {
                    r: 1,
                    f: 1,
                    m: 1,
                    segment: RfmSegment::Lost
                },
            ]
        );
    }

    #[test]
    fn every_grid_cell_maps_to_its_segment() {
        use RfmSegment::*;
        // grid[5 - r][5 - fm], as in the table of the module documentation.
        let grid = [
            [Champions, Champions, Loyal, PotentialLoyalists, New],
            [Champions, Champions, Loyal, PotentialLoyalists, Promising],
            [Loyal, Loyal, Loyal, NeedAttention, AboutToSleep],
            [AtRisk, AtRisk, AtRisk, Hibernating, Hibernating],
            [CantLoseThem, CantLoseThem, AtRisk, Lost, Lost],
        ];
        let mut seen = std::collections::BTreeSet::new();
        for r in 1..=5u8 {
            for f in 1..=5u8 {
                for m in 1..=5u8 {
                    let fm = (f + m).div_ceil(2);
                    let expected = grid[usize::from(5 - r)][usize::from(5 - fm)];
                    let segment = RfmSegment::from_scores(r, f, m);
                    assert_eq!(segment, expected, "r {r} f {f} m {m}");
                    seen.insert(segment);
                }
            }
        }
        // All eleven segments are reachable from valid scores.
        assert_eq!(seen.len(), RfmSegment::ALL.len());
        // FM rounds half up: f 1, m 2 → fm 2; f 2, m 3 → fm 3.
        assert_eq!(RfmSegment::from_scores(3, 1, 2), NeedAttention);
        assert_eq!(RfmSegment::from_scores(5, 2, 3), Loyal);
        // Out-of-range scores are clamped.
        assert_eq!(RfmSegment::from_scores(0, 0, 0), Lost);
        assert_eq!(RfmSegment::from_scores(9, 9, 9), Champions);
    }

    #[test]
    fn spellings_round_trip() {
        for segment in RfmSegment::ALL {
            assert_eq!(segment.as_str().parse::<RfmSegment>(), Ok(segment));
            assert_eq!(segment.to_string(), segment.as_str());
        }
        let error = "vip".parse::<RfmSegment>().unwrap_err();
        assert!(error.contains("\"vip\""), "{error}");
        assert!(error.contains("cant_lose_them"), "{error}");
    }

    #[test]
    fn matches_the_brute_force_rule_on_random_inputs() {
        let mut rng = Lcg(7);
        for round in 0..300 {
            let n = 1 + (rng.next() % 60) as usize;
            // Narrow ranges make many ties, wide ones few.
            let range = 1 + rng.next() % if round % 2 == 0 { 5 } else { 1000 };
            let values: Vec<i64> = (0..n).map(|_| (rng.next() % range) as i64 - 2).collect();
            for higher_is_better in [true, false] {
                assert_eq!(
                    quintiles(&values, higher_is_better),
                    brute_force(&values, higher_is_better),
                    "{values:?} {higher_is_better}"
                );
            }
        }
    }

    #[test]
    fn a_large_base_scores_in_equal_fifths() {
        let n = 100_000;
        let values: Vec<i64> = (0..n).rev().collect();
        let scores = quintiles(&values, true);
        for s in 1..=5u8 {
            assert_eq!(scores.iter().filter(|&&x| x == s).count(), 20_000);
        }
        assert_eq!(scores[0], 5);
        assert_eq!(scores[n as usize - 1], 1);
    }
}
