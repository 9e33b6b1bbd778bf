//! Journeys and the messages they send: what starts a journey (an event or a schedule),
//! who may enter (a segment expression), its steps, when a customer may enter again, the
//! control group held out to measure it, and the pure rules of delivery — quiet hours in
//! the customer's time zone, the frequency cap, the missed-send window — and the holiday
//! calendars, Gregorian and Chinese lunisolar.

use chrono::{DateTime, Datelike, Duration, NaiveDate, NaiveTime, TimeZone, Utc};
use chrono_tz::Tz;
use serde::{Deserialize, Serialize};

use crate::lifecycle::Stage;
use crate::text_enum;

text_enum! {
    schema = MessageChannel;
    /// Where a message goes.
    pub enum Channel {
        Email => "email",
        Sms => "sms",
        /// Instant messaging (WeChat, LINE, WhatsApp) through the gateway.
        Im => "im",
        /// The in-app inbox on the member page.
        App => "app",
    }
}

text_enum! {
    /// What a message is, which decides the rules it meets: a transactional message (a
    /// receipt, a survey about the customer's own ticket) goes through quiet hours and the
    /// frequency cap; a marketing one waits for the morning and counts against the cap.
    pub enum MessageClass {
        Transactional => "transactional",
        Marketing => "marketing",
    }
}

text_enum! {
    /// Where a message of the outbox stands.
    pub enum MessageStatus {
        /// Waiting for its time and a worker.
        Queued => "queued",
        /// Claimed by a worker under a lease.
        Sending => "sending",
        /// Handed to the server or gateway (or put in the inbox).
        Sent => "sent",
        /// Failed for good (a refused address, too many attempts).
        Failed => "failed",
        /// Decided but not sent, for the reason recorded.
        Skipped => "skipped",
    }
}

text_enum! {
    /// Why a customer was not sent a message.
    pub enum SkipReason {
        /// No consent on the channel (a marketing message needs it given).
        NoConsent => "no_consent",
        /// The customer unsubscribed from the channel.
        Unsubscribed => "unsubscribed",
        /// No address for the channel, or one the server refused.
        InvalidAddress => "invalid_address",
        /// The frequency cap was reached and this message had the lower priority.
        Capped => "capped",
        /// Quiet hours lasted past the send window.
        QuietHours => "quiet_hours",
        /// The send window closed before a worker could send it (downtime).
        Missed => "missed",
        /// Delivery failed.
        Failed => "failed",
        /// The channel is not configured on this server.
        NoChannel => "no_channel",
    }
}

text_enum! {
    /// Events that start a journey.
    pub enum EventKind {
        /// A customer's first completed order.
        FirstPurchase => "first_purchase",
        /// A customer moved to another life-cycle stage (optionally: to this one).
        StageChanged => "stage_changed",
        /// A member moved up a tier.
        TierUpgraded => "tier_upgraded",
        /// A customer was invited to answer a survey (the CSAT link after a resolved
        /// ticket).
        SurveyInvited => "survey_invited",
        /// A customer answered a survey.
        SurveyAnswered => "survey_answered",
    }
}

text_enum! {
    /// The holidays a greeting journey can keep.
    pub enum Holiday {
        NewYear => "new_year",
        Valentines => "valentines",
        Christmas => "christmas",
        /// 春节, the first day of the first lunar month.
        SpringFestival => "spring_festival",
        /// 元宵节, the 15th of the first lunar month.
        Lantern => "lantern",
        /// 端午节, the 5th of the fifth lunar month.
        DragonBoat => "dragon_boat",
        /// 中秋节, the 15th of the eighth lunar month.
        MidAutumn => "mid_autumn",
    }
}

text_enum! {
    /// What counts as a journey converting a customer.
    pub enum ConversionKind {
        /// A completed order.
        Purchase => "purchase",
        /// Any return: an order or a contact.
        Return => "return",
        /// A loyalty redemption.
        Redemption => "redemption",
    }
}

text_enum! {
    /// Where a customer's way through a journey stands.
    pub enum EnrollmentStatus {
        /// Going through the steps; the next is due at `next_at`.
        Active => "active",
        /// Went through every step.
        Completed => "completed",
        /// Left at an exit step, or no longer met the entry condition.
        Exited => "exited",
        /// Held out in the control group: entered, sent nothing, measured.
        Control => "control",
    }
}

/// How a day's date is read: the holiday of `date`, if any.
pub fn holiday_on(date: NaiveDate) -> Option<Holiday> {
    Holiday::ALL
        .iter()
        .copied()
        .find(|h| date_of(*h, date.year()) == Some(date))
}

/// The date of `holiday` in Gregorian `year` (`None` outside the lunisolar table's years).
pub fn date_of(holiday: Holiday, year: i32) -> Option<NaiveDate> {
    let lunar = |month: u8, day: u8| {
        let y = u16::try_from(year).ok()?;
        chinese_lunisolar_calendar::LunisolarDate::from_ymd(y, month, false, day)
            .ok()
            .map(|d| d.to_naive_date())
    };
    match holiday {
        Holiday::NewYear => NaiveDate::from_ymd_opt(year, 1, 1),
        Holiday::Valentines => NaiveDate::from_ymd_opt(year, 2, 14),
        Holiday::Christmas => NaiveDate::from_ymd_opt(year, 12, 25),
        Holiday::SpringFestival => lunar(1, 1),
        Holiday::Lantern => lunar(1, 15),
        Holiday::DragonBoat => lunar(5, 5),
        Holiday::MidAutumn => lunar(8, 15),
    }
}

/// The lunar month and day of a Gregorian date (a leap month counts as its month).
pub fn lunar_month_day(date: NaiveDate) -> Option<(u8, u8)> {
    let d = chinese_lunisolar_calendar::LunisolarDate::from_date(date).ok()?;
    Some((d.to_lunar_month().to_u8(), d.to_lunar_day().to_u8()))
}

/// Whether someone born on `born` has their birthday on `today`. On the Gregorian calendar
/// a 29 February birthday is kept on 28 February in other years. On the lunar calendar the
/// birthday is the lunar month and day of birth, in the regular (not the leap) month; a
/// birthday on the 30th is kept on the 29th in a year whose month has 29 days.
pub fn is_birthday(born: NaiveDate, today: NaiveDate, lunar: bool) -> bool {
    if !lunar {
        if born.month() == 2
            && born.day() == 29
            && NaiveDate::from_ymd_opt(today.year(), 2, 29).is_none()
        {
            return today.month() == 2 && today.day() == 28;
        }
        return born.month() == today.month() && born.day() == today.day();
    }
    let (Some((bm, bd)), Ok(t)) = (
        lunar_month_day(born),
        chinese_lunisolar_calendar::LunisolarDate::from_date(today),
    ) else {
        return false;
    };
    if t.to_lunar_month().is_leap_month() {
        return false;
    }
    let (tm, td) = (t.to_lunar_month().to_u8(), t.to_lunar_day().to_u8());
    if tm != bm {
        return false;
    }
    if td == bd {
        return true;
    }
    // Born on the 30th: kept on the 29th when this year's month ends on the 29th.
    bd == 30 && td == 29 && {
        let next = today.succ_opt();
        next.and_then(lunar_month_day).is_none_or(|(m, _)| m != tm)
    }
}

/// The instant a wall-clock time `at` on `date` falls on in `tz` (the first of two on a
/// clock going back; the moment after a gap on a clock going forward).
pub fn local_instant(tz: Tz, date: NaiveDate, at: NaiveTime) -> DateTime<Utc> {
    let naive = date.and_time(at);
    match tz.from_local_datetime(&naive) {
        chrono::LocalResult::Single(t) | chrono::LocalResult::Ambiguous(t, _) => {
            t.with_timezone(&Utc)
        }
        chrono::LocalResult::None => tz
            .from_local_datetime(&(naive + Duration::hours(1)))
            .earliest()
            .map_or_else(|| naive.and_utc(), |t| t.with_timezone(&Utc)),
    }
}

pub use crate::calendar::parse_time_zone;

/// A wall-clock time `HH:MM`.
pub fn parse_local_time(s: &str) -> Result<NaiveTime, String> {
    NaiveTime::parse_from_str(s.trim(), "%H:%M")
        .map_err(|_| format!("{s:?} is not a time of day in the form HH:MM"))
}

/// Quiet hours: from `start` to `end` local time, across midnight when `end` < `start`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QuietHours {
    pub start: NaiveTime,
    pub end: NaiveTime,
}

impl QuietHours {
    /// When a marketing message decided at `now` for a customer in `tz` may go out: `now`
    /// outside quiet hours, else the end of them.
    pub fn release(&self, tz: Tz, now: DateTime<Utc>) -> DateTime<Utc> {
        if self.start == self.end {
            return now;
        }
        let local = now.with_timezone(&tz);
        let (date, time) = (local.date_naive(), local.time());
        let quiet = if self.start < self.end {
            time >= self.start && time < self.end
        } else {
            time >= self.start || time < self.end
        };
        if !quiet {
            return now;
        }
        let end_date = if self.start > self.end && time >= self.start {
            date.succ_opt().unwrap_or(date)
        } else {
            date
        };
        local_instant(tz, end_date, self.end).max(now)
    }
}

/// The frequency cap: at most `max` marketing messages per customer and channel within
/// `days`, across every journey.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct FrequencyCap {
    pub max: u32,
    pub days: u32,
}

/// What starts a journey.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum Trigger {
    /// An event of a write.
    Event {
        event: EventKind,
        /// For `stage_changed`: only a move to this stage.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        stage: Option<Stage>,
    },
    /// Every customer with a birthday today in their time zone (lunar for those who keep
    /// it so).
    Birthday,
    /// Everyone the entry condition admits, on each of these holidays.
    Holiday { holidays: Vec<Holiday> },
    /// The yearly return of the first purchase.
    Anniversary,
    /// Members with points expiring within `days` days.
    PointsExpiring { days: u32 },
    /// Every day, everyone the entry condition admits (re-entry rules keep it from
    /// repeating).
    Daily,
}

impl Trigger {
    /// Whether a schedule, not an event, starts it.
    pub fn is_scheduled(&self) -> bool {
        !matches!(self, Trigger::Event { .. })
    }
}

/// One step of a journey.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum Step {
    /// Wait this many minutes.
    Wait {
        minutes: u32,
    },
    /// Wait until this local time (`HH:MM`) in the customer's time zone: today if it is
    /// still ahead, else at once on the day of the occasion, else tomorrow.
    WaitUntil {
        local_time: String,
    },
    /// Go on when the condition (a segment expression) holds for the customer; else jump
    /// to step `otherwise` (1-based; one past the last ends the journey).
    Branch {
        condition: String,
        otherwise: usize,
    },
    /// Decide a message from a template on a channel.
    Send {
        channel: Channel,
        template: String,
        class: MessageClass,
        /// 1 (lowest) to 9; decides which message yields to the frequency cap.
        #[serde(default = "default_priority")]
        priority: u8,
    },
    AddTag {
        tag: String,
    },
    RemoveTag {
        tag: String,
    },
    /// Credit points (once per enrolment).
    GrantPoints {
        points: i64,
        reason: String,
    },
    /// A task for staff, due this many days later.
    CreateTask {
        title: String,
        due_days: u32,
    },
    /// Leave the journey.
    Exit,
}

fn default_priority() -> u8 {
    5
}

/// When a customer who went through a journey may enter it again.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum Reentry {
    /// Once ever.
    Never,
    /// At each new occasion (each birthday, each holiday), never twice for one.
    EachOccasion,
    /// Again once this many days have passed since the last entry.
    AfterDays(u32),
}

/// How a journey's effect is measured.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Conversion {
    pub kind: ConversionKind,
    pub window_days: u32,
}

/// Everything a journey does.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct JourneyDefinition {
    pub trigger: Trigger,
    /// A segment expression a customer must meet to enter; empty admits everyone.
    #[serde(default)]
    pub entry: String,
    pub steps: Vec<Step>,
    pub reentry: Reentry,
    /// The percentage (0–50) held out as a control group.
    #[serde(default)]
    pub control_percent: u8,
    pub conversion: Conversion,
    /// A message whose time passed while no worker ran is sent late within this many hours
    /// of its time, and skipped as missed after.
    pub late_window_hours: u32,
}

/// Most steps of a journey.
pub const STEPS_MAX: usize = 30;

impl JourneyDefinition {
    /// Checks what needs no database: step numbers, times, tags, points, percentages.
    /// Templates and expressions are checked by the application, which knows them.
    pub fn check(&self) -> Vec<crate::FieldError> {
        let mut errors = Vec::new();
        let mut push = |field: String, m: String| errors.push(crate::FieldError::new(&field, m));
        if self.steps.is_empty() {
            push("steps".into(), "a journey needs at least one step".into());
        }
        if self.steps.len() > STEPS_MAX {
            push("steps".into(), format!("at most {STEPS_MAX} steps"));
        }
        if self.control_percent > 50 {
            push("control_percent".into(), "must be between 0 and 50".into());
        }
        if !(1..=365).contains(&self.conversion.window_days) {
            push(
                "conversion.window_days".into(),
                "must be between 1 and 365".into(),
            );
        }
        if self.late_window_hours > 24 * 30 {
            push(
                "late_window_hours".into(),
                "must be at most 720 (30 days)".into(),
            );
        }
        match &self.trigger {
            Trigger::Holiday { holidays } if holidays.is_empty() => {
                push(
                    "trigger.holidays".into(),
                    "name at least one holiday".into(),
                );
            }
            Trigger::PointsExpiring { days } if !(1..=90).contains(days) => {
                push("trigger.days".into(), "must be between 1 and 90".into());
            }
            _ => {}
        }
        for (i, s) in self.steps.iter().enumerate() {
            let f = |name: &str| format!("steps[{i}].{name}");
            match s {
                Step::Wait { minutes } if *minutes == 0 || *minutes > 60 * 24 * 366 => {
                    push(f("minutes"), "must be between 1 and 527040 (a year)".into());
                }
                Step::WaitUntil { local_time } => {
                    if let Err(m) = parse_local_time(local_time) {
                        push(f("local_time"), m);
                    }
                }
                Step::Branch { otherwise, .. }
                    if *otherwise <= i + 1 || *otherwise > self.steps.len() + 1 =>
                {
                    push(
                        f("otherwise"),
                        format!(
                            "must name a later step, {} to {}",
                            i + 2,
                            self.steps.len() + 1
                        ),
                    );
                }
                Step::Send { priority, .. } if !(1..=9).contains(priority) => {
                    push(f("priority"), "must be between 1 and 9".into());
                }
                Step::AddTag { tag } | Step::RemoveTag { tag } => {
                    if let Err(m) = crate::customer::parse_tags(vec![tag.clone()]) {
                        push(f("tag"), m);
                    }
                }
                Step::GrantPoints { points, reason } => {
                    if !(1..=1_000_000).contains(points) {
                        push(f("points"), "must be between 1 and 1000000".into());
                    }
                    if reason.trim().is_empty() {
                        push(f("reason"), "must not be empty".into());
                    }
                }
                Step::CreateTask { title, due_days } => {
                    if title.trim().is_empty() {
                        push(f("title"), "must not be empty".into());
                    }
                    if *due_days > 365 {
                        push(f("due_days"), "must be at most 365".into());
                    }
                }
                _ => {}
            }
        }
        errors
    }

    /// The templates its send steps use.
    pub fn templates(&self) -> Vec<(usize, &str)> {
        self.steps
            .iter()
            .enumerate()
            .filter_map(|(i, s)| match s {
                Step::Send { template, .. } => Some((i, template.as_str())),
                _ => None,
            })
            .collect()
    }
}

/// Whether `customer` is held out of `journey` as control: a fixed draw per customer and
/// journey, so the same customer lands on the same side every time, on every server.
pub fn in_control(journey: i64, customer: i64, percent: u8) -> bool {
    if percent == 0 {
        return false;
    }
    draw(journey, customer) % 10_000 < u64::from(percent) * 100
}

/// A stable, well-mixed number from two ids (SplitMix64's finaliser); not for secrets.
fn draw(a: i64, b: i64) -> u64 {
    fn mix(mut z: u64) -> u64 {
        z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    mix(mix(a.cast_unsigned()) ^ b.cast_unsigned())
}

/// Treated against control: conversion rates, their difference and its 95% confidence
/// interval (normal approximation for two proportions).
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Lift {
    pub treated: u64,
    pub treated_converted: u64,
    pub control: u64,
    pub control_converted: u64,
    pub treated_rate: Option<f64>,
    pub control_rate: Option<f64>,
    /// Treated rate minus control rate.
    pub difference: Option<f64>,
    pub ci_low: Option<f64>,
    pub ci_high: Option<f64>,
}

impl Lift {
    pub fn new(treated: u64, treated_converted: u64, control: u64, control_converted: u64) -> Lift {
        #[allow(clippy::cast_precision_loss)]
        let rate = |k: u64, n: u64| (n > 0).then(|| k as f64 / n as f64);
        let (p1, p2) = (
            rate(treated_converted, treated),
            rate(control_converted, control),
        );
        let (difference, ci_low, ci_high) = match (p1, p2) {
            (Some(a), Some(b)) => {
                #[allow(clippy::cast_precision_loss)]
                let se = (a * (1.0 - a) / treated as f64 + b * (1.0 - b) / control as f64).sqrt();
                let d = a - b;
                (Some(d), Some(d - 1.96 * se), Some(d + 1.96 * se))
            }
            _ => (None, None, None),
        };
        Lift {
            treated,
            treated_converted,
            control,
            control_converted,
            treated_rate: p1,
            control_rate: p2,
            difference,
            ci_low,
            ci_high,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(s: &str) -> NaiveDate {
        NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap_or_default()
    }

    #[test]
    fn lunar_holidays_fall_on_the_reference_dates() {
        for (h, dates) in [
            (
                Holiday::SpringFestival,
                vec!["2024-02-10", "2025-01-29", "2026-02-17", "2027-02-06"],
            ),
            (
                Holiday::Lantern,
                vec!["2024-02-24", "2025-02-12", "2026-03-03"],
            ),
            (
                Holiday::DragonBoat,
                vec!["2024-06-10", "2025-05-31", "2026-06-19"],
            ),
            (
                Holiday::MidAutumn,
                vec!["2024-09-17", "2025-10-06", "2026-09-25"],
            ),
        ] {
            for s in dates {
                assert_eq!(date_of(h, d(s).year()), Some(d(s)), "{h} {s}");
                assert_eq!(holiday_on(d(s)), Some(h), "{s}");
            }
        }
        assert_eq!(holiday_on(d("2026-12-25")), Some(Holiday::Christmas));
        assert_eq!(holiday_on(d("2026-12-24")), None);
    }

    #[test]
    fn lunar_birthdays_come_back_on_the_lunar_date() {
        // Born on Spring Festival 1990 (1990-01-27): the birthday is each Spring Festival.
        let born = d("1990-01-27");
        assert_eq!(lunar_month_day(born), Some((1, 1)));
        assert!(is_birthday(born, d("2026-02-17"), true));
        assert!(!is_birthday(born, d("2026-01-27"), true));
        assert!(is_birthday(born, d("2026-01-27"), false));
        // 29 February is kept on 28 February in other years.
        assert!(is_birthday(d("2000-02-29"), d("2026-02-28"), false));
        assert!(is_birthday(d("2000-02-29"), d("2028-02-29"), false));
        assert!(!is_birthday(d("2000-02-29"), d("2028-02-28"), false));
    }

    #[test]
    fn quiet_hours_defer_to_the_morning_in_the_customers_zone() {
        let q = QuietHours {
            start: NaiveTime::from_hms_opt(21, 0, 0).unwrap_or_default(),
            end: NaiveTime::from_hms_opt(9, 0, 0).unwrap_or_default(),
        };
        let shanghai: Tz = "Asia/Shanghai".parse().unwrap_or(Tz::UTC);
        let t = |s: &str| {
            DateTime::parse_from_rfc3339(s)
                .map(|t| t.with_timezone(&Utc))
                .unwrap_or_default()
        };
        // 23:30 in Shanghai → 09:00 the next morning there.
        assert_eq!(
            q.release(shanghai, t("2026-12-03T15:30:00Z")),
            t("2026-12-04T01:00:00Z")
        );
        // 06:00 in Shanghai → 09:00 the same day.
        assert_eq!(
            q.release(shanghai, t("2026-12-03T22:00:00Z")),
            t("2026-12-04T01:00:00Z")
        );
        // 14:00 in Shanghai → now.
        assert_eq!(
            q.release(shanghai, t("2026-12-03T06:00:00Z")),
            t("2026-12-03T06:00:00Z")
        );
    }

    #[test]
    fn control_groups_are_stable_and_near_the_percentage() {
        let held: usize = (1..=10_000).filter(|c| in_control(7, *c, 10)).count();
        assert!((800..=1200).contains(&held), "{held}");
        assert_eq!(in_control(7, 42, 10), in_control(7, 42, 10));
        assert!(!(1..=1000).any(|c| in_control(7, c, 0)));
    }

    #[test]
    fn lift_has_a_confidence_interval() {
        let l = Lift::new(1000, 150, 1000, 100);
        let diff = l.difference.unwrap_or_default();
        assert!((diff - 0.05).abs() < 1e-9);
        let (lo, hi) = (l.ci_low.unwrap_or_default(), l.ci_high.unwrap_or_default());
        assert!(lo > 0.0 && lo < 0.05 && hi > 0.05, "{lo} {hi}");
        assert_eq!(Lift::new(10, 1, 0, 0).difference, None);
    }
}

/// The business's rules for every journey's messages.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(default, deny_unknown_fields)]
pub struct JourneySettings {
    /// Quiet hours, local time of the customer (`HH:MM`); equal times mean none.
    pub quiet_start: String,
    pub quiet_end: String,
    /// One cap per customer and channel across every journey (marketing messages).
    pub cap: FrequencyCap,
    /// The name messages are signed with.
    pub business_name: String,
}

impl Default for JourneySettings {
    fn default() -> Self {
        JourneySettings {
            quiet_start: "21:00".into(),
            quiet_end: "09:00".into(),
            cap: FrequencyCap { max: 3, days: 7 },
            business_name: "Tenure".into(),
        }
    }
}

impl JourneySettings {
    /// Every field at fault; the quiet hours when all is well.
    pub fn check(&self) -> Result<QuietHours, crate::Invalid> {
        let mut errors = Vec::new();
        let start = parse_local_time(&self.quiet_start)
            .map_err(|m| errors.push(crate::FieldError::new("quiet_start", m)))
            .ok();
        let end = parse_local_time(&self.quiet_end)
            .map_err(|m| errors.push(crate::FieldError::new("quiet_end", m)))
            .ok();
        if !(1..=100).contains(&self.cap.max) {
            errors.push(crate::FieldError::new(
                "cap.max",
                "must be between 1 and 100",
            ));
        }
        if !(1..=90).contains(&self.cap.days) {
            errors.push(crate::FieldError::new(
                "cap.days",
                "must be between 1 and 90",
            ));
        }
        if self.business_name.trim().is_empty() || self.business_name.chars().count() > 100 {
            errors.push(crate::FieldError::new(
                "business_name",
                "must be 1 to 100 characters",
            ));
        }
        match (start, end) {
            (Some(start), Some(end)) if errors.is_empty() => Ok(QuietHours { start, end }),
            _ => Err(crate::Invalid(errors)),
        }
    }
}
