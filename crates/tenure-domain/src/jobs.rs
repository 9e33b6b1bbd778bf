//! The durable job queue's vocabulary and its pure rules: what kinds of work there are,
//! the states a job goes through, when a failed job is tried again, and which slot of a
//! schedule a moment falls in.

use chrono::{DateTime, Duration, Utc};

use crate::text_enum;

text_enum! {
    /// What a job does.
    pub enum JobKind {
        /// Fit the customer-base models and score every customer.
        ModelRefresh => "model_refresh",
        /// Recompute every duplicate candidate pair (after an import, or on demand).
        DuplicatesRebuild => "duplicates_rebuild",
        /// Rebuild the "bought together" model.
        RecommendationsBuild => "recommendations_build",
        /// Place every customer in their stage, score RFM, rebuild the segments and the
        /// retention reports.
        AnalyticsRefresh => "analytics_refresh",
        /// Release pending points whose return window closed, expire lots whose lifetime
        /// ended, give the day's birthday bonuses.
        LoyaltyExpire => "loyalty_expire",
        /// Move members between tiers by what they earned over the window.
        LoyaltyTiers => "loyalty_tiers",
        /// Mark SLA breaches, queue escalation reminders within business hours, send the
        /// due task reminders.
        SlaScan => "sla_scan",
        /// Enrol the day's entrants of the scheduled journeys: birthdays, holidays,
        /// anniversaries, expiring points, segments looked at daily.
        JourneySchedules => "journey_schedules",
        /// Anonymises customers inactive beyond the retention period (when one is set).
        Retention => "retention",
    }
}

text_enum! {
    /// Where a job stands.
    pub enum JobStatus {
        /// Waiting for its time and a worker.
        Queued => "queued",
        /// Claimed by a worker whose lease runs until `locked_until`.
        Running => "running",
        Done => "done",
        /// Failed as many times as it may; it will not run again by itself.
        Failed => "failed",
    }
}

text_enum! {
    /// How one run of a job ended.
    pub enum RunOutcome {
        Succeeded => "succeeded",
        /// Failed; queued again after a backoff.
        Retrying => "retrying",
        /// Failed for the last time.
        GaveUp => "gave_up",
    }
}

/// How long to wait before attempt `attempts + 1` after `attempts` failures: 30 s, doubling
/// each time, at most an hour.
pub fn backoff(attempts: u32) -> Duration {
    let secs = 30_i64.saturating_mul(1_i64 << attempts.saturating_sub(1).min(20));
    Duration::seconds(secs.min(3_600))
}

/// A recurring job: every `every`, starting at `offset` past the epoch (UTC). A daily job
/// at 02:00 is `every` = 1 day, `offset` = 2 hours.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Schedule {
    pub kind: JobKind,
    pub every: Duration,
    pub offset: Duration,
}

impl Schedule {
    /// The start of the slot `now` falls in. Every worker computes the same slot, so a job
    /// keyed by it is queued once however many workers run.
    pub fn slot(&self, now: DateTime<Utc>) -> DateTime<Utc> {
        let every = self.every.num_seconds().max(1);
        let offset = self.offset.num_seconds();
        let t = now.timestamp() - offset;
        let start = t.div_euclid(every) * every + offset;
        DateTime::from_timestamp(start, 0).unwrap_or(now)
    }

    /// The key that makes a slot's job unique.
    pub fn key(&self, now: DateTime<Utc>) -> String {
        format!("{}@{}", self.kind, self.slot(now).to_rfc3339())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_an_hour() {
        assert_eq!(backoff(1), Duration::seconds(30));
        assert_eq!(backoff(2), Duration::seconds(60));
        assert_eq!(backoff(3), Duration::seconds(120));
        assert_eq!(backoff(40), Duration::seconds(3_600));
    }

    #[test]
    fn every_moment_of_a_day_falls_in_that_days_slot() {
        let s = Schedule {
            kind: JobKind::ModelRefresh,
            every: Duration::days(1),
            offset: Duration::hours(2),
        };
        let at = |t: &str| DateTime::parse_from_rfc3339(t).unwrap().with_timezone(&Utc);
        assert_eq!(
            s.slot(at("2026-12-01T02:00:00Z")),
            at("2026-12-01T02:00:00Z")
        );
        assert_eq!(
            s.slot(at("2026-12-02T01:59:59Z")),
            at("2026-12-01T02:00:00Z")
        );
        assert_eq!(
            s.slot(at("2026-12-01T01:00:00Z")),
            at("2026-11-30T02:00:00Z")
        );
        assert_eq!(
            s.key(at("2026-12-01T13:00:00Z")),
            "model_refresh@2026-12-01T02:00:00+00:00"
        );
    }
}
