//! Service: tickets (complaints, questions, requests) with their status workflow and
//! service-level clocks, follow-up tasks, and the business's service settings (calendar,
//! SLA policies per priority, the follow-up rules).
//!
//! An SLA clock counts open business time only ([`crate::calendar`]) and stands still while
//! the ticket waits on the customer: pausing keeps the due time, resuming moves it on by the
//! time the ticket waited, counted in the same business hours.

use chrono::{DateTime, Duration, Utc};

use crate::calendar::{BusinessCalendar, Hours};
use crate::customer::Channel;
use crate::ids::{CustomerId, StaffUserId};
use crate::text_enum;
use crate::validation::{Collector, FieldError, Invalid};

text_enum! {
    /// What a ticket is about.
    pub enum TicketCategory {
        ProductQuality => "product_quality",
        LateDelivery => "late_delivery",
        WrongSpecification => "wrong_specification",
        Packaging => "packaging",
        ServiceAttitude => "service_attitude",
        Billing => "billing",
        Other => "other",
    }
}

text_enum! {
    /// How soon a ticket must be answered; each has its own SLA policy.
    pub enum TicketPriority {
        Low => "low",
        Normal => "normal",
        High => "high",
        Urgent => "urgent",
    }
}

text_enum! {
    /// Where a ticket stands.
    pub enum TicketStatus {
        New => "new",
        Open => "open",
        /// Waiting for the customer: the SLA clocks stand still.
        PendingCustomer => "pending_customer",
        Resolved => "resolved",
        Closed => "closed",
        Reopened => "reopened",
    }
}

text_enum! {
    /// What a message on a ticket is.
    pub enum MessageKind {
        /// An answer to the customer (the first one stops the first-response clock).
        Reply => "reply",
        /// An internal note, never shown to the customer.
        Note => "note",
        /// Something the customer wrote.
        Customer => "customer",
    }
}

text_enum! {
    /// Where a task stands.
    pub enum TaskStatus {
        Open => "open",
        Done => "done",
        Cancelled => "cancelled",
    }
}

text_enum! {
    /// Who made a task.
    pub enum TaskSource {
        /// Staff, by hand.
        Manual => "manual",
        /// A resolved complaint: call the customer back.
        Callback => "callback",
        /// A prospect was contacted: the next contact.
        NextContact => "next_contact",
        /// A customer became a top customer: a thank-you call.
        ThankYou => "thank_you",
        /// A ticket is about to breach or breached its SLA.
        Escalation => "escalation",
        /// A journey step.
        Journey => "journey",
    }
}

impl TicketStatus {
    /// Whether the ticket still needs work (its resolution clock runs or is paused).
    pub fn is_active(self) -> bool {
        !matches!(self, TicketStatus::Resolved | TicketStatus::Closed)
    }

    /// The statuses a ticket may move to from this one.
    pub fn next(self) -> &'static [TicketStatus] {
        use TicketStatus::*;
        match self {
            New => &[Open, PendingCustomer, Resolved, Closed],
            Open | Reopened => &[PendingCustomer, Resolved, Closed],
            PendingCustomer => &[Open, Resolved, Closed],
            Resolved => &[Closed, Reopened],
            Closed => &[Reopened],
        }
    }

    /// Checks a move, naming the illegal one.
    pub fn move_to(self, to: TicketStatus) -> Result<TicketStatus, String> {
        if self.next().contains(&to) {
            Ok(to)
        } else {
            let allowed: Vec<&str> = self.next().iter().map(|s| s.as_str()).collect();
            Err(format!(
                "a ticket cannot move from {self} to {to}; from {self} it can move to {}",
                allowed.join(", ")
            ))
        }
    }
}

/// The category a churned customer's latest complaint suggests as their loss reason.
pub fn loss_reason_of(c: TicketCategory) -> crate::lifecycle::LossReason {
    use crate::lifecycle::LossReason;
    match c {
        TicketCategory::ProductQuality
        | TicketCategory::WrongSpecification
        | TicketCategory::Packaging => LossReason::ProductQuality,
        TicketCategory::ServiceAttitude => LossReason::SlowResponse,
        TicketCategory::Billing => LossReason::Price,
        TicketCategory::LateDelivery | TicketCategory::Other => LossReason::PoorService,
    }
}

/// One priority's targets, in business minutes.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct SlaPolicy {
    pub priority: TicketPriority,
    pub first_response_minutes: u32,
    pub resolution_minutes: u32,
}

/// The service settings: the `service` document of the settings.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(default, deny_unknown_fields)]
pub struct ServiceSettings {
    pub calendar: BusinessCalendar,
    /// One per priority.
    pub sla: Vec<SlaPolicy>,
    /// An escalation reminder goes to the assignee this many business minutes before a
    /// breach (and again at the breach); 0 turns the warning off.
    pub warn_before_minutes: u32,
    /// A resolved complaint creates a call-back task due this many business minutes later;
    /// 0 turns the rule off.
    pub callback_after_minutes: u32,
    /// A contact with a prospect creates a next-contact task this many days later; 0: off.
    pub next_contact_days: u32,
    /// A customer whose spend reaches this (major units) gets a thank-you call; 0: off.
    pub thank_you_spend: u64,
    /// A resolved ticket invites its customer to a CSAT survey.
    pub csat_after_resolution: bool,
    /// An NPS answer at or below this opens a ticket (detractors: 6).
    pub nps_ticket_at_most: u8,
    /// A CSAT answer at or below this opens a ticket.
    pub csat_ticket_at_most: u8,
    /// Days a survey invitation stays valid.
    pub invitation_days: u32,
}

impl Default for ServiceSettings {
    fn default() -> Self {
        let p = |priority, first_response_minutes, resolution_minutes| SlaPolicy {
            priority,
            first_response_minutes,
            resolution_minutes,
        };
        ServiceSettings {
            calendar: BusinessCalendar::default(),
            sla: vec![
                p(TicketPriority::Urgent, 60, 480),
                p(TicketPriority::High, 240, 960),
                p(TicketPriority::Normal, 480, 2400),
                p(TicketPriority::Low, 960, 4800),
            ],
            warn_before_minutes: 60,
            callback_after_minutes: 480,
            next_contact_days: 7,
            thank_you_spend: 1000,
            csat_after_resolution: true,
            nps_ticket_at_most: 6,
            csat_ticket_at_most: 2,
            invitation_days: 30,
        }
    }
}

/// The most business minutes a target may be (a year of a 24/7 business).
const TARGET_MAX: u32 = 525_600;

/// Checked settings: the calendar ready to count with.
#[derive(Debug, Clone)]
pub struct Service {
    pub settings: ServiceSettings,
    pub hours: Hours,
}

impl ServiceSettings {
    /// Every field at fault, by name.
    pub fn check(self) -> Result<Service, Invalid> {
        let mut errors = Vec::new();
        let hours = match self.calendar.hours() {
            Ok(h) => Some(h),
            Err(Invalid(e)) => {
                errors.extend(
                    e.into_iter()
                        .map(|f| FieldError::new(format!("calendar.{}", f.field), f.message)),
                );
                None
            }
        };
        for p in TicketPriority::ALL {
            let n = self.sla.iter().filter(|s| s.priority == *p).count();
            if n != 1 {
                errors.push(FieldError::new(
                    "sla",
                    format!("needs exactly one policy for priority {p} (has {n})"),
                ));
            }
        }
        for (i, s) in self.sla.iter().enumerate() {
            for (f, v) in [
                ("first_response_minutes", s.first_response_minutes),
                ("resolution_minutes", s.resolution_minutes),
            ] {
                if v == 0 || v > TARGET_MAX {
                    errors.push(FieldError::new(
                        format!("sla[{i}].{f}"),
                        format!("must be between 1 and {TARGET_MAX} business minutes"),
                    ));
                }
            }
            if s.first_response_minutes > s.resolution_minutes {
                errors.push(FieldError::new(
                    format!("sla[{i}].first_response_minutes"),
                    "must not be longer than the resolution target",
                ));
            }
        }
        for (f, v, max) in [
            ("warn_before_minutes", self.warn_before_minutes, 10_080),
            (
                "callback_after_minutes",
                self.callback_after_minutes,
                TARGET_MAX,
            ),
            ("next_contact_days", self.next_contact_days, 366),
            ("invitation_days", self.invitation_days, 366),
        ] {
            if v > max {
                errors.push(FieldError::new(f, format!("must be at most {max}")));
            }
        }
        if self.invitation_days == 0 {
            errors.push(FieldError::new("invitation_days", "must be at least 1"));
        }
        if self.nps_ticket_at_most > 10 {
            errors.push(FieldError::new("nps_ticket_at_most", "must be 0 to 10"));
        }
        if self.csat_ticket_at_most > 5 {
            errors.push(FieldError::new("csat_ticket_at_most", "must be 0 to 5"));
        }
        if self.thank_you_spend > 1_000_000_000_000 {
            errors.push(FieldError::new("thank_you_spend", "is too large"));
        }
        match hours {
            Some(hours) if errors.is_empty() => Ok(Service {
                settings: self,
                hours,
            }),
            _ => Err(Invalid(errors)),
        }
    }
}

impl Service {
    pub fn policy(&self, p: TicketPriority) -> &SlaPolicy {
        self.settings
            .sla
            .iter()
            .find(|s| s.priority == p)
            .unwrap_or(&self.settings.sla[0])
    }

    /// The due times of a ticket opened (or re-prioritised) at `at`.
    pub fn due(&self, p: TicketPriority, at: DateTime<Utc>) -> SlaDue {
        let policy = self.policy(p);
        let add = |m: u32| self.hours.add_open(at, Duration::minutes(i64::from(m)));
        SlaDue {
            first_response: add(policy.first_response_minutes),
            resolution: add(policy.resolution_minutes),
        }
    }

    /// A due time moved on by the business time between `paused_at` and `resumed_at`.
    pub fn resume(
        &self,
        due: Option<DateTime<Utc>>,
        paused_at: DateTime<Utc>,
        resumed_at: DateTime<Utc>,
    ) -> Option<DateTime<Utc>> {
        let due = due?;
        if due <= paused_at {
            return Some(due);
        }
        let left = self.hours.open_between(paused_at, due);
        self.hours.add_open(resumed_at, left)
    }

    /// When a reminder decided at `at` goes out: at once when the business is open, else
    /// at its next opening — never at night or on a day off.
    pub fn remind_at(&self, at: DateTime<Utc>) -> DateTime<Utc> {
        self.hours.next_open(at).unwrap_or(at)
    }

    /// The business time between two moments, in whole minutes.
    pub fn minutes_between(&self, from: DateTime<Utc>, to: DateTime<Utc>) -> i64 {
        self.hours.open_between(from, to).num_minutes()
    }
}

/// A ticket's two deadlines; `None` when the calendar never opens within its horizon.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SlaDue {
    pub first_response: Option<DateTime<Utc>>,
    pub resolution: Option<DateTime<Utc>>,
}

/// Longest ticket subject and message, in characters.
pub const SUBJECT_MAX: usize = 300;
pub const MESSAGE_MAX: usize = 20_000;
/// Attachments a message may reference.
pub const ATTACHMENTS_MAX: usize = 20;

/// A file kept elsewhere (a shared drive, an object store) that a message points to.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct Attachment {
    pub name: String,
    /// An `http(s)` address.
    pub url: String,
}

/// Checks attachments: names present, addresses `http(s)://`.
pub fn check_attachments(c: &mut Collector, list: &[Attachment]) {
    if list.len() > ATTACHMENTS_MAX {
        c.push(
            "attachments",
            format!("at most {ATTACHMENTS_MAX} attachments"),
        );
    }
    for (i, a) in list.iter().enumerate() {
        if a.name.trim().is_empty() || a.name.chars().count() > 200 {
            c.push(
                &format!("attachments[{i}].name"),
                "must be 1 to 200 characters",
            );
        }
        let u = a.url.trim();
        if !(u.starts_with("https://") || u.starts_with("http://"))
            || u.len() > 2_000
            || u.chars().any(char::is_whitespace)
        {
            c.push(
                &format!("attachments[{i}].url"),
                "must be an http:// or https:// address",
            );
        }
    }
}

/// A ticket as given, before it is checked.
#[derive(Debug, Clone)]
pub struct TicketInput {
    pub external_id: Option<String>,
    pub customer_id: i64,
    pub subject: String,
    /// The customer's words (the first message), when given.
    pub description: String,
    pub category: TicketCategory,
    pub priority: TicketPriority,
    pub channel: Channel,
    pub assignee_id: Option<i64>,
    /// Now when left out (imports give the historical time).
    pub opened_at: Option<DateTime<Utc>>,
}

/// A checked ticket.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TicketFields {
    pub external_id: Option<String>,
    pub customer_id: CustomerId,
    pub subject: String,
    pub description: String,
    pub category: TicketCategory,
    pub priority: TicketPriority,
    pub channel: Channel,
    pub assignee_id: Option<StaffUserId>,
    pub opened_at: DateTime<Utc>,
}

impl TicketInput {
    pub fn parse(self, ctx: &crate::validation::InputContext<'_>) -> Result<TicketFields, Invalid> {
        let mut c = Collector::new();
        let external_id = c.check_opt("external_id", self.external_id, |x| {
            crate::validation::external_id(&x)
        });
        let customer = c.check(
            "customer_id",
            crate::validation::positive_id(self.customer_id),
        );
        let subject = c.check(
            "subject",
            crate::validation::required_text(&self.subject, SUBJECT_MAX),
        );
        let description = c.check(
            "description",
            crate::validation::text(&self.description, MESSAGE_MAX, true),
        );
        let assignee = c.check_opt(
            "assignee_id",
            self.assignee_id,
            crate::validation::positive_id,
        );
        let opened_at = self.opened_at.unwrap_or(ctx.now);
        ctx.not_future(&mut c, "opened_at", opened_at);
        c.finish()?;
        Ok(TicketFields {
            external_id,
            customer_id: CustomerId(customer.unwrap_or_default()),
            subject: subject.unwrap_or_default(),
            description: description.unwrap_or_default(),
            category: self.category,
            priority: self.priority,
            channel: self.channel,
            assignee_id: assignee.map(StaffUserId),
            opened_at,
        })
    }
}

/// A change to a ticket's fields (its status moves through [`TicketStatus::move_to`]).
#[derive(Debug, Clone, Default)]
pub struct TicketPatch {
    pub subject: Option<String>,
    pub category: Option<TicketCategory>,
    pub priority: Option<TicketPriority>,
    pub channel: Option<Channel>,
    /// `Some(None)` unassigns.
    pub assignee_id: Option<Option<i64>>,
    pub status: Option<TicketStatus>,
}

impl TicketPatch {
    pub fn check(&self) -> Result<(), Invalid> {
        let mut c = Collector::new();
        if let Some(s) = &self.subject {
            c.check("subject", crate::validation::required_text(s, SUBJECT_MAX));
        }
        if let Some(Some(a)) = self.assignee_id {
            c.check("assignee_id", crate::validation::positive_id(a));
        }
        c.finish()
    }
}

/// A message on a ticket as given.
#[derive(Debug, Clone)]
pub struct MessageInput {
    pub kind: MessageKind,
    pub body: String,
    pub attachments: Vec<Attachment>,
}

impl MessageInput {
    pub fn check(&self) -> Result<String, Invalid> {
        let mut c = Collector::new();
        let body = c.check(
            "body",
            crate::validation::required_text(&self.body, MESSAGE_MAX),
        );
        check_attachments(&mut c, &self.attachments);
        c.finish()?;
        Ok(body.unwrap_or_default())
    }
}

/// Longest task title and note.
pub const TASK_TITLE_MAX: usize = 300;
pub const TASK_NOTE_MAX: usize = 5_000;

/// A task as given.
#[derive(Debug, Clone)]
pub struct TaskInput {
    pub title: String,
    pub note: String,
    pub customer_id: Option<i64>,
    pub ticket_id: Option<i64>,
    pub assignee_id: Option<i64>,
    pub due_at: DateTime<Utc>,
    /// A reminder this many minutes before the due time (the reminder still waits for
    /// business hours); `None`: at the due time.
    pub remind_before_minutes: Option<u32>,
}

impl TaskInput {
    pub fn check(&self) -> Result<(), Invalid> {
        let mut c = Collector::new();
        c.check(
            "title",
            crate::validation::required_text(&self.title, TASK_TITLE_MAX),
        );
        c.check(
            "note",
            crate::validation::text(&self.note, TASK_NOTE_MAX, true),
        );
        for (f, v) in [
            ("customer_id", self.customer_id),
            ("ticket_id", self.ticket_id),
            ("assignee_id", self.assignee_id),
        ] {
            if let Some(v) = v {
                c.check(f, crate::validation::positive_id(v));
            }
        }
        if self.remind_before_minutes.is_some_and(|m| m > 43_200) {
            c.push("remind_before_minutes", "must be at most 43200 (30 days)");
        }
        c.finish()
    }
}

/// A change to a task.
#[derive(Debug, Clone, Default)]
pub struct TaskPatch {
    pub title: Option<String>,
    pub note: Option<String>,
    pub assignee_id: Option<Option<i64>>,
    pub due_at: Option<DateTime<Utc>>,
    pub status: Option<TaskStatus>,
}

impl TaskPatch {
    pub fn check(&self) -> Result<(), Invalid> {
        let mut c = Collector::new();
        if let Some(t) = &self.title {
            c.check("title", crate::validation::required_text(t, TASK_TITLE_MAX));
        }
        if let Some(n) = &self.note {
            c.check("note", crate::validation::text(n, TASK_NOTE_MAX, true));
        }
        if let Some(Some(a)) = self.assignee_id {
            c.check("assignee_id", crate::validation::positive_id(a));
        }
        c.finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_workflow_names_an_illegal_move() {
        use TicketStatus::*;
        assert_eq!(New.move_to(Open), Ok(Open));
        assert_eq!(Resolved.move_to(Reopened), Ok(Reopened));
        let e = Closed.move_to(PendingCustomer).unwrap_err();
        assert!(e.contains("from closed to pending_customer"), "{e}");
        assert!(e.contains("reopened"), "{e}");
        assert!(Open.move_to(Open).is_err());
        assert!(Closed.move_to(Resolved).is_err());
        // Every status can end up closed, and nothing is a dead end.
        for s in TicketStatus::ALL {
            assert!(!s.next().is_empty());
            assert!(s.next().contains(&Closed) || s.next().contains(&Reopened));
        }
    }

    #[test]
    fn settings_need_a_policy_per_priority() {
        let mut s = ServiceSettings::default();
        s.sla.pop();
        s.sla[0].first_response_minutes = 0;
        s.sla[1].first_response_minutes = 5000;
        let e = s.check().unwrap_err();
        let fields: Vec<&str> = e.0.iter().map(|f| f.field.as_str()).collect();
        assert_eq!(
            fields,
            [
                "sla",
                "sla[0].first_response_minutes",
                "sla[1].first_response_minutes"
            ]
        );
        assert!(ServiceSettings::default().check().is_ok());
    }

    #[test]
    fn a_paused_clock_resumes_with_the_business_time_left() {
        let mut settings = ServiceSettings::default();
        settings.calendar.time_zone = "Asia/Shanghai".into();
        let s = settings.check().unwrap();
        let at = |x: &str| DateTime::parse_from_rfc3339(x).unwrap().with_timezone(&Utc);
        // Normal: 8 business hours to first response. Opened Friday 16:00.
        let due = s.due(TicketPriority::Normal, at("2026-09-25T16:00:00+08:00"));
        assert_eq!(due.first_response, Some(at("2026-09-28T16:00:00+08:00")));
        // Paused Friday 17:00 (7 business hours left), resumed Tuesday 09:00.
        let resumed = s.resume(
            due.first_response,
            at("2026-09-25T17:00:00+08:00"),
            at("2026-09-29T09:00:00+08:00"),
        );
        assert_eq!(resumed, Some(at("2026-09-29T17:00:00+08:00")));
        // A reminder decided on Saturday night goes out on Monday at nine.
        assert_eq!(
            s.remind_at(at("2026-09-26T23:00:00+08:00")),
            at("2026-09-28T09:00:00+08:00")
        );
    }

    #[test]
    fn attachments_are_references() {
        let mut c = Collector::new();
        check_attachments(
            &mut c,
            &[
                Attachment {
                    name: "photo.jpg".into(),
                    url: "https://files.example/p.jpg".into(),
                },
                Attachment {
                    name: "".into(),
                    url: "javascript:alert(1)".into(),
                },
            ],
        );
        let e = c.into_errors();
        assert_eq!(e.len(), 2);
        assert_eq!(e[1].field, "attachments[1].url");
    }
}
