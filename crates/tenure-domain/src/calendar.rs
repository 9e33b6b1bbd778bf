//! The business's own calendar: opening hours per weekday (several ranges a day), days off
//! (holidays) and make-up working days (the Chinese calendar's 调休 / 补班: a Saturday that
//! is a working day), in the business's time zone. Service-level clocks count only the time
//! it is open; reminders wait for the next opening.
//!
//! Everything is computed in local time and converted to UTC at the edges of each range, so
//! a clock change (DST) moves the ranges with the wall clock as staff see it.

use std::collections::BTreeMap;

use chrono::{DateTime, Datelike, Duration, NaiveDate, NaiveTime, TimeZone, Utc, Weekday};

use crate::validation::{FieldError, Invalid};

/// One opening range of a day, `"09:00"` to `"12:30"` (24-hour, local time).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct OpenRange {
    pub start: String,
    pub end: String,
}

/// A dated exception: a day off or a make-up working day.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct CalendarDay {
    pub date: NaiveDate,
    /// What the day is, in the business's words (`春节`, `National Day (make-up)`).
    #[serde(default)]
    pub name: String,
}

/// The opening hours of a week, Monday first.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(default, deny_unknown_fields)]
pub struct Week {
    pub mon: Vec<OpenRange>,
    pub tue: Vec<OpenRange>,
    pub wed: Vec<OpenRange>,
    pub thu: Vec<OpenRange>,
    pub fri: Vec<OpenRange>,
    pub sat: Vec<OpenRange>,
    pub sun: Vec<OpenRange>,
}

fn ranges(list: &[(&str, &str)]) -> Vec<OpenRange> {
    list.iter()
        .map(|(s, e)| OpenRange {
            start: (*s).into(),
            end: (*e).into(),
        })
        .collect()
}

impl Default for Week {
    fn default() -> Self {
        let day = || ranges(&[("09:00", "12:00"), ("13:00", "18:00")]);
        Week {
            mon: day(),
            tue: day(),
            wed: day(),
            thu: day(),
            fri: day(),
            sat: Vec::new(),
            sun: Vec::new(),
        }
    }
}

impl Week {
    pub fn day(&self, d: Weekday) -> &[OpenRange] {
        match d {
            Weekday::Mon => &self.mon,
            Weekday::Tue => &self.tue,
            Weekday::Wed => &self.wed,
            Weekday::Thu => &self.thu,
            Weekday::Fri => &self.fri,
            Weekday::Sat => &self.sat,
            Weekday::Sun => &self.sun,
        }
    }

    pub fn day_mut(&mut self, d: Weekday) -> &mut Vec<OpenRange> {
        match d {
            Weekday::Mon => &mut self.mon,
            Weekday::Tue => &mut self.tue,
            Weekday::Wed => &mut self.wed,
            Weekday::Thu => &mut self.thu,
            Weekday::Fri => &mut self.fri,
            Weekday::Sat => &mut self.sat,
            Weekday::Sun => &mut self.sun,
        }
    }
}

/// The weekdays, Monday first, with the field names of [`Week`].
pub const WEEKDAYS: [(Weekday, &str); 7] = [
    (Weekday::Mon, "mon"),
    (Weekday::Tue, "tue"),
    (Weekday::Wed, "wed"),
    (Weekday::Thu, "thu"),
    (Weekday::Fri, "fri"),
    (Weekday::Sat, "sat"),
    (Weekday::Sun, "sun"),
];

/// A business's calendar.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(default, deny_unknown_fields)]
pub struct BusinessCalendar {
    /// An IANA time zone, `Asia/Shanghai`.
    pub time_zone: String,
    pub week: Week,
    /// Days the business is closed although the week says open.
    pub holidays: Vec<CalendarDay>,
    /// Days the business works although the week says closed (补班), with the hours of
    /// `workday_hours`.
    pub workdays: Vec<CalendarDay>,
    /// Whose hours a make-up working day keeps: `mon` … `sun`.
    pub workday_hours: String,
}

impl Default for BusinessCalendar {
    fn default() -> Self {
        BusinessCalendar {
            time_zone: "UTC".into(),
            week: Week::default(),
            holidays: Vec::new(),
            workdays: Vec::new(),
            workday_hours: "mon".into(),
        }
    }
}

/// `"09:30"` as a time of day; `"24:00"` is the end of the day.
fn parse_hm(s: &str) -> Option<NaiveTime> {
    let (h, m) = s.trim().split_once(':')?;
    if h.is_empty() || h.len() > 2 || m.len() != 2 {
        return None;
    }
    let (h, m): (u32, u32) = (h.parse().ok()?, m.parse().ok()?);
    if h == 24 && m == 0 {
        return NaiveTime::from_hms_opt(23, 59, 59);
    }
    NaiveTime::from_hms_opt(h, m, 0)
}

/// The longest span a clock is walked (a calendar open a few hours a year still answers).
const HORIZON_DAYS: i64 = 3 * 366;

/// A checked calendar, ready to count with.
#[derive(Debug, Clone)]
pub struct Hours {
    tz: chrono_tz::Tz,
    week: [Vec<(NaiveTime, NaiveTime)>; 7],
    holidays: std::collections::BTreeSet<NaiveDate>,
    workdays: std::collections::BTreeSet<NaiveDate>,
    workday_hours: Weekday,
}

/// An IANA zone by name, or a message saying it is not one.
pub fn parse_time_zone(s: &str) -> Result<chrono_tz::Tz, String> {
    s.trim().parse::<chrono_tz::Tz>().map_err(|_| {
        format!("{s:?} is not a time zone name such as Asia/Shanghai or Europe/Berlin")
    })
}

impl BusinessCalendar {
    /// Checks every field and builds the counting form.
    pub fn hours(&self) -> Result<Hours, Invalid> {
        let mut errors = Vec::new();
        let tz = match parse_time_zone(&self.time_zone) {
            Ok(tz) => Some(tz),
            Err(m) => {
                errors.push(FieldError::new("time_zone", m));
                None
            }
        };
        let mut week: [Vec<(NaiveTime, NaiveTime)>; 7] = Default::default();
        let mut any_open = false;
        for (i, (day, name)) in WEEKDAYS.iter().enumerate() {
            let mut prev_end: Option<NaiveTime> = None;
            for (j, r) in self.week.day(*day).iter().enumerate() {
                let field = format!("week.{name}[{j}]");
                match (parse_hm(&r.start), parse_hm(&r.end)) {
                    (Some(s), Some(e)) if s < e => {
                        if prev_end.is_some_and(|p| s < p) {
                            errors.push(FieldError::new(
                                field.clone(),
                                "overlaps or comes before the range above it",
                            ));
                        } else {
                            week[i].push((s, e));
                            any_open = true;
                            prev_end = Some(e);
                        }
                    }
                    (Some(_), Some(_)) => {
                        errors.push(FieldError::new(field.clone(), "must end after it starts"))
                    }
                    _ => errors.push(FieldError::new(
                        field.clone(),
                        "start and end must be times such as 09:00 and 17:30",
                    )),
                }
                if j >= 8 {
                    errors.push(FieldError::new(field, "at most 8 ranges a day"));
                    break;
                }
            }
        }
        if !any_open {
            errors.push(FieldError::new(
                "week",
                "the business must be open at some time of the week",
            ));
        }
        let workday_hours = WEEKDAYS
            .iter()
            .find(|(_, n)| *n == self.workday_hours)
            .map(|(d, _)| *d);
        if workday_hours.is_none() {
            errors.push(FieldError::new(
                "workday_hours",
                "must be one of mon, tue, wed, thu, fri, sat, sun",
            ));
        }
        let holidays: std::collections::BTreeSet<NaiveDate> =
            self.holidays.iter().map(|d| d.date).collect();
        let mut workdays = std::collections::BTreeSet::new();
        for (i, d) in self.workdays.iter().enumerate() {
            if holidays.contains(&d.date) {
                errors.push(FieldError::new(
                    format!("workdays[{i}].date"),
                    format!("{} is also listed as a holiday", d.date),
                ));
            }
            workdays.insert(d.date);
        }
        for (field, list) in [("holidays", &self.holidays), ("workdays", &self.workdays)] {
            if list.len() > 2_000 {
                errors.push(FieldError::new(field, "at most 2000 days"));
            }
            for (i, d) in list.iter().enumerate() {
                if d.name.chars().count() > 100 {
                    errors.push(FieldError::new(
                        format!("{field}[{i}].name"),
                        "must be at most 100 characters",
                    ));
                }
            }
        }
        match (tz, workday_hours, errors.is_empty()) {
            (Some(tz), Some(workday_hours), true) => Ok(Hours {
                tz,
                week,
                holidays,
                workdays,
                workday_hours,
            }),
            _ => Err(Invalid(errors)),
        }
    }

    /// Adds the days of an iCal import: days off as holidays, make-up working days as
    /// workdays, replacing what the calendar said of those dates. Returns how many of each.
    pub fn merge_days(&mut self, days: Vec<ImportedDay>) -> (usize, usize) {
        let mut holidays: BTreeMap<NaiveDate, String> =
            self.holidays.drain(..).map(|d| (d.date, d.name)).collect();
        let mut workdays: BTreeMap<NaiveDate, String> =
            self.workdays.drain(..).map(|d| (d.date, d.name)).collect();
        let (mut off, mut on) = (0, 0);
        for d in days {
            if d.working {
                holidays.remove(&d.date);
                workdays.insert(d.date, d.name);
                on += 1;
            } else {
                workdays.remove(&d.date);
                holidays.insert(d.date, d.name);
                off += 1;
            }
        }
        let back = |m: BTreeMap<NaiveDate, String>| {
            m.into_iter()
                .map(|(date, name)| CalendarDay { date, name })
                .collect()
        };
        self.holidays = back(holidays);
        self.workdays = back(workdays);
        (off, on)
    }
}

impl Hours {
    pub fn time_zone(&self) -> chrono_tz::Tz {
        self.tz
    }

    /// The opening ranges of a local date.
    pub fn ranges_on(&self, date: NaiveDate) -> &[(NaiveTime, NaiveTime)] {
        if self.holidays.contains(&date) {
            return &[];
        }
        let day = if self.workdays.contains(&date) {
            self.workday_hours
        } else {
            date.weekday()
        };
        &self.week[day.num_days_from_monday() as usize]
    }

    /// A local wall-clock time as UTC; in a DST gap, the first valid moment after it.
    fn utc(&self, date: NaiveDate, t: NaiveTime) -> DateTime<Utc> {
        let local = date.and_time(t);
        match self.tz.from_local_datetime(&local) {
            chrono::LocalResult::Single(x) => x.with_timezone(&Utc),
            chrono::LocalResult::Ambiguous(a, _) => a.with_timezone(&Utc),
            chrono::LocalResult::None => {
                let later = local + Duration::hours(1);
                self.tz
                    .from_local_datetime(&later)
                    .earliest()
                    .map_or_else(|| later.and_utc(), |x| x.with_timezone(&Utc))
            }
        }
    }

    /// The opening intervals of a local date, in UTC.
    fn intervals(&self, date: NaiveDate) -> impl Iterator<Item = (DateTime<Utc>, DateTime<Utc>)> {
        self.ranges_on(date)
            .iter()
            .map(move |(s, e)| (self.utc(date, *s), self.utc(date, *e)))
    }

    fn local_date(&self, at: DateTime<Utc>) -> NaiveDate {
        at.with_timezone(&self.tz).date_naive()
    }

    /// Whether the business is open at `at`.
    pub fn is_open(&self, at: DateTime<Utc>) -> bool {
        self.intervals(self.local_date(at))
            .any(|(s, e)| s <= at && at < e)
    }

    /// `at` when open, else the next opening; `None` when nothing opens within the horizon.
    pub fn next_open(&self, at: DateTime<Utc>) -> Option<DateTime<Utc>> {
        let first = self.local_date(at);
        for d in 0..HORIZON_DAYS {
            let date = first + Duration::days(d);
            for (s, e) in self.intervals(date) {
                if at < e {
                    return Some(s.max(at));
                }
            }
        }
        None
    }

    /// The open time between `from` and `to` (zero when `to` is not after `from`).
    pub fn open_between(&self, from: DateTime<Utc>, to: DateTime<Utc>) -> Duration {
        if to <= from {
            return Duration::zero();
        }
        let mut total = Duration::zero();
        let (first, last) = (self.local_date(from), self.local_date(to));
        let days = (last - first).num_days().min(HORIZON_DAYS);
        for d in 0..=days {
            for (s, e) in self.intervals(first + Duration::days(d)) {
                let (s, e) = (s.max(from), e.min(to));
                if s < e {
                    total += e - s;
                }
            }
        }
        total
    }

    /// The moment `open` of open time after `from` has passed; `None` beyond the horizon.
    pub fn add_open(&self, from: DateTime<Utc>, open: Duration) -> Option<DateTime<Utc>> {
        let mut left = open;
        if left <= Duration::zero() {
            return Some(from);
        }
        let first = self.local_date(from);
        for d in 0..HORIZON_DAYS {
            for (s, e) in self.intervals(first + Duration::days(d)) {
                let s = s.max(from);
                if s >= e {
                    continue;
                }
                if e - s >= left {
                    return Some(s + left);
                }
                left -= e - s;
            }
        }
        None
    }
}

/// A day an iCal file names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImportedDay {
    pub date: NaiveDate,
    pub name: String,
    /// A make-up working day (补班) rather than a day off.
    pub working: bool,
}

/// Words in an event's summary that make it a working day rather than a day off.
const WORKING_WORDS: &[&str] = &[
    "补班",
    "補班",
    "上班",
    "调休上班",
    "班)",
    "（班）",
    "(班)",
    "working day",
    "workday",
    "make-up",
    "makeup",
];

fn is_working(summary: &str) -> bool {
    let s = summary.to_lowercase();
    WORKING_WORDS.iter().any(|w| s.contains(w)) || s.trim_end().ends_with('班')
}

/// The longest iCal file read, in bytes.
pub const ICAL_MAX: usize = 2 * 1024 * 1024;

fn ical_date(v: &str) -> Option<NaiveDate> {
    let digits: String = v.chars().take(8).collect();
    NaiveDate::parse_from_str(&digits, "%Y%m%d").ok()
}

/// Reads the days of an iCal (RFC 5545) calendar: every event's dates from `DTSTART` up to
/// its `DTEND` (exclusive, as all-day events write it), named by its `SUMMARY`. An event whose
/// summary says 补班 / 上班 / "working day" is a make-up working day; any other a day off.
pub fn parse_ical(text: &str) -> Result<Vec<ImportedDay>, String> {
    if text.len() > ICAL_MAX {
        return Err(format!("is larger than {} bytes", ICAL_MAX));
    }
    if !text
        .trim_start_matches('\u{feff}')
        .trim_start()
        .starts_with("BEGIN:VCALENDAR")
    {
        return Err("is not an iCal calendar (it must begin with BEGIN:VCALENDAR)".into());
    }
    let reader = ical::IcalParser::new(text.as_bytes());
    let mut out = Vec::new();
    for cal in reader {
        let cal = cal.map_err(|e| format!("cannot be read: {e}"))?;
        for (n, ev) in cal.events.iter().enumerate() {
            let prop = |name: &str| {
                ev.properties
                    .iter()
                    .find(|p| p.name.eq_ignore_ascii_case(name))
                    .and_then(|p| p.value.clone())
            };
            let Some(start) = prop("DTSTART").as_deref().and_then(ical_date) else {
                return Err(format!("event {} has no readable DTSTART date", n + 1));
            };
            let end = prop("DTEND")
                .as_deref()
                .and_then(ical_date)
                .filter(|e| *e > start)
                .unwrap_or(start + Duration::days(1));
            if (end - start).num_days() > 366 {
                return Err(format!("event {} lasts longer than a year", n + 1));
            }
            let name: String = prop("SUMMARY")
                .unwrap_or_default()
                .replace("\\,", ",")
                .replace("\\;", ";")
                .chars()
                .take(100)
                .collect();
            let working = is_working(&name);
            let mut d = start;
            while d < end {
                out.push(ImportedDay {
                    date: d,
                    name: name.clone(),
                    working,
                });
                d += Duration::days(1);
            }
        }
    }
    if out.len() > 2_000 {
        return Err("names more than 2000 days".into());
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cn() -> Hours {
        BusinessCalendar {
            time_zone: "Asia/Shanghai".into(),
            holidays: (1..=7)
                .map(|d| CalendarDay {
                    date: NaiveDate::from_ymd_opt(2026, 10, d).unwrap(),
                    name: "国庆节".into(),
                })
                .collect(),
            workdays: vec![CalendarDay {
                date: NaiveDate::from_ymd_opt(2026, 10, 10).unwrap(),
                name: "国庆节 补班".into(),
            }],
            ..BusinessCalendar::default()
        }
        .hours()
        .unwrap()
    }

    fn at(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    #[test]
    fn open_time_skips_lunch_nights_and_weekends() {
        let h = cn();
        // Friday 2026-09-25 17:00 +08:00 to Monday 28th 10:00: 1 h on Friday, 1 h on Monday.
        let d = h.open_between(
            at("2026-09-25T17:00:00+08:00"),
            at("2026-09-28T10:00:00+08:00"),
        );
        assert_eq!(d, Duration::hours(2));
        // Lunch does not count.
        let d = h.open_between(
            at("2026-09-28T11:30:00+08:00"),
            at("2026-09-28T13:30:00+08:00"),
        );
        assert_eq!(d, Duration::minutes(60));
        assert!(!h.is_open(at("2026-09-28T12:30:00+08:00")));
        assert!(h.is_open(at("2026-09-28T13:00:00+08:00")));
    }

    #[test]
    fn holidays_close_and_a_make_up_saturday_opens() {
        let h = cn();
        // Wednesday 30 Sept 17:00 + 4 h: 1 h that day, then the whole Golden Week is off,
        // Thursday 8th is the next working day.
        let due = h
            .add_open(at("2026-09-30T17:00:00+08:00"), Duration::hours(4))
            .unwrap();
        assert_eq!(due, at("2026-10-08T12:00:00+08:00"));
        // Saturday 10 Oct is a make-up working day with Monday's hours.
        assert!(h.is_open(at("2026-10-10T09:30:00+08:00")));
        assert!(!h.is_open(at("2026-10-17T09:30:00+08:00")));
        assert_eq!(
            h.next_open(at("2026-10-09T20:00:00+08:00")),
            Some(at("2026-10-10T09:00:00+08:00"))
        );
        // Counting and adding agree.
        let from = at("2026-09-29T10:15:00+08:00");
        let due = h.add_open(from, Duration::minutes(1234)).unwrap();
        assert_eq!(h.open_between(from, due), Duration::minutes(1234));
    }

    #[test]
    fn clock_changes_follow_the_wall_clock() {
        let h = BusinessCalendar {
            time_zone: "Europe/Berlin".into(),
            ..BusinessCalendar::default()
        }
        .hours()
        .unwrap();
        // Friday 2026-03-27 17:00 CET to Monday 30 10:00 CEST (clocks went forward on Sunday).
        let d = h.open_between(
            at("2026-03-27T17:00:00+01:00"),
            at("2026-03-30T10:00:00+02:00"),
        );
        assert_eq!(d, Duration::hours(2));
    }

    #[test]
    fn a_bad_calendar_names_each_fault() {
        let mut c = BusinessCalendar {
            time_zone: "Mars/Olympus".into(),
            workday_hours: "someday".into(),
            ..BusinessCalendar::default()
        };
        c.week.mon = ranges(&[("18:00", "09:00"), ("9", "10:00")]);
        c.week.tue = ranges(&[("10:00", "12:00"), ("11:00", "13:00")]);
        let e = c.hours().unwrap_err();
        let fields: Vec<&str> = e.0.iter().map(|f| f.field.as_str()).collect();
        assert_eq!(
            fields,
            [
                "time_zone",
                "week.mon[0]",
                "week.mon[1]",
                "week.tue[1]",
                "workday_hours"
            ]
        );
        let closed = BusinessCalendar {
            week: Week {
                mon: vec![],
                tue: vec![],
                wed: vec![],
                thu: vec![],
                fri: vec![],
                sat: vec![],
                sun: vec![],
            },
            ..BusinessCalendar::default()
        };
        assert_eq!(closed.hours().unwrap_err().0[0].field, "week");
    }

    #[test]
    fn ical_days_off_and_make_up_days() {
        let ics = "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//x//y//EN\r\n\
            BEGIN:VEVENT\r\nUID:1\r\nDTSTART;VALUE=DATE:20260217\r\nDTEND;VALUE=DATE:20260220\r\nSUMMARY:春节 休\r\nEND:VEVENT\r\n\
            BEGIN:VEVENT\r\nUID:2\r\nDTSTART;VALUE=DATE:20260214\r\nSUMMARY:春节 补班\r\nEND:VEVENT\r\n\
            BEGIN:VEVENT\r\nUID:3\r\nDTSTART:20261225T000000Z\r\nSUMMARY:Christmas\r\nEND:VEVENT\r\n\
            END:VCALENDAR\r\n";
        let days = parse_ical(ics).unwrap();
        assert_eq!(days.len(), 5);
        assert!(days[..3].iter().all(|d| !d.working && d.name == "春节 休"));
        assert!(days[3].working);
        assert_eq!(days[4].date, NaiveDate::from_ymd_opt(2026, 12, 25).unwrap());
        let mut c = BusinessCalendar::default();
        assert_eq!(c.merge_days(days), (4, 1));
        assert_eq!(c.holidays.len(), 4);
        assert!(parse_ical("hello").is_err());
        assert!(
            parse_ical("BEGIN:VCALENDAR\nBEGIN:VEVENT\nSUMMARY:x\nEND:VEVENT\nEND:VCALENDAR\n")
                .is_err()
        );
    }
}
