//! Journeys, enrolments, message templates and the outbox.
//!
//! A customer enters a journey once per occasion: the enrolment's unique key is (journey,
//! customer, occasion), and an insert that meets it does nothing. A worker advancing an
//! enrolment locks it (`FOR UPDATE SKIP LOCKED` on PostgreSQL, the writer slot on SQLite)
//! and writes the messages its steps decide in the same transaction. Workers claim due
//! messages the same way, a batch at a time, under a lease; each message's end (sent,
//! failed, skipped, tried again later) is its own small write, so a worker killed half-way
//! leaves the messages it sent marked sent and the rest to be claimed again when the lease
//! runs out.

use chrono::{DateTime, NaiveDate, Utc};
use sqlx::any::AnyRow;
use sqlx::{AssertSqlSafe, Row};
use tenure_domain::ids::{CustomerId, EnrollmentId, JourneyId, MessageId, TemplateId};
use tenure_domain::journey::{
    Channel, ConversionKind, EnrollmentStatus, JourneyDefinition, MessageClass, MessageStatus,
    SkipReason,
};

use crate::decode::{json, parsed};
use crate::time::{opt_time, time, to_micros};
use crate::{Backend, Store, StoreError, StoreResult, WriteTx};

/// A stored journey.
#[derive(Debug, Clone, PartialEq)]
pub struct Journey {
    pub id: JourneyId,
    pub name: String,
    pub title: String,
    pub description: String,
    pub definition: JourneyDefinition,
    pub enabled: bool,
    pub version: i64,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

const JOURNEY_COLUMNS: &str =
    "id, name, title, description, definition, enabled, version, created_at, updated_at";

fn journey_from_row(row: &AnyRow) -> StoreResult<Journey> {
    Ok(Journey {
        id: JourneyId(row.try_get("id")?),
        name: row.try_get("name")?,
        title: row.try_get("title")?,
        description: row.try_get("description")?,
        definition: json(row, "definition")?,
        enabled: row.try_get::<i64, _>("enabled")? != 0,
        version: row.try_get("version")?,
        created_at: time(row, "created_at")?,
        updated_at: time(row, "updated_at")?,
    })
}

/// A customer's way through a journey.
#[derive(Debug, Clone, PartialEq)]
pub struct Enrollment {
    pub id: EnrollmentId,
    pub journey_id: JourneyId,
    pub customer_id: CustomerId,
    pub occasion: String,
    /// The day of the occasion in the customer's time zone (a birthday, a holiday).
    pub occasion_on: Option<NaiveDate>,
    pub status: EnrollmentStatus,
    /// The next step to run (0-based).
    pub step: i64,
    pub next_at: Option<DateTime<Utc>>,
    pub entered_at: DateTime<Utc>,
    pub finished_at: Option<DateTime<Utc>>,
}

const ENROLLMENT_COLUMNS: &str = "id, journey_id, customer_id, occasion, occasion_on, status, step, next_at, entered_at, finished_at";

fn enrollment_from_row(row: &AnyRow) -> StoreResult<Enrollment> {
    let on: Option<String> = row.try_get("occasion_on")?;
    Ok(Enrollment {
        id: EnrollmentId(row.try_get("id")?),
        journey_id: JourneyId(row.try_get("journey_id")?),
        customer_id: CustomerId(row.try_get("customer_id")?),
        occasion: row.try_get("occasion")?,
        occasion_on: on
            .map(|s| {
                NaiveDate::parse_from_str(&s, "%Y-%m-%d")
                    .map_err(|e| StoreError::corrupt("occasion_on", e.to_string()))
            })
            .transpose()?,
        status: parsed(row, "status")?,
        step: row.try_get("step")?,
        next_at: opt_time(row, "next_at")?,
        entered_at: time(row, "entered_at")?,
        finished_at: opt_time(row, "finished_at")?,
    })
}

/// An enrolment to make.
#[derive(Debug, Clone)]
pub struct NewEnrollment {
    pub journey: JourneyId,
    pub customer: CustomerId,
    pub occasion: String,
    pub occasion_on: Option<NaiveDate>,
    pub control: bool,
    pub at: DateTime<Utc>,
}

/// A message template in one channel and language.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Template {
    pub id: TemplateId,
    pub name: String,
    pub channel: Channel,
    pub locale: String,
    pub subject: String,
    pub body: String,
    pub updated_at: DateTime<Utc>,
}

const TEMPLATE_COLUMNS: &str = "id, name, channel, locale, subject, body, updated_at";

fn template_from_row(row: &AnyRow) -> StoreResult<Template> {
    Ok(Template {
        id: TemplateId(row.try_get("id")?),
        name: row.try_get("name")?,
        channel: parsed(row, "channel")?,
        locale: row.try_get("locale")?,
        subject: row.try_get("subject")?,
        body: row.try_get("body")?,
        updated_at: time(row, "updated_at")?,
    })
}

/// A message of the outbox.
#[derive(Debug, Clone, PartialEq)]
pub struct Message {
    pub id: MessageId,
    pub customer_id: CustomerId,
    pub journey_id: Option<JourneyId>,
    pub enrollment_id: Option<EnrollmentId>,
    pub channel: Channel,
    pub class: MessageClass,
    pub priority: i64,
    pub template: String,
    pub locale: String,
    pub address: Option<String>,
    pub subject: String,
    pub body_text: String,
    pub body_html: Option<String>,
    pub status: MessageStatus,
    pub reason: Option<SkipReason>,
    pub detail: Option<String>,
    pub attempts: i64,
    pub due_at: DateTime<Utc>,
    pub send_by: Option<DateTime<Utc>>,
    pub sent_at: Option<DateTime<Utc>>,
    pub read_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

macro_rules! message_columns {
    () => {
        "id, customer_id, journey_id, enrollment_id, channel, class, priority, \
         template, locale, address, subject, body_text, body_html, status, reason, detail, attempts, \
         due_at, send_by, sent_at, read_at, created_at, updated_at"
    };
}

const MESSAGE_COLUMNS: &str = message_columns!();

pub(crate) const MESSAGE_SELECT: &str = concat!("SELECT ", message_columns!(), " FROM messages");

pub(crate) fn message_from_row(row: &AnyRow) -> StoreResult<Message> {
    let reason: Option<String> = row.try_get("reason")?;
    Ok(Message {
        id: MessageId(row.try_get("id")?),
        customer_id: CustomerId(row.try_get("customer_id")?),
        journey_id: row.try_get::<Option<i64>, _>("journey_id")?.map(JourneyId),
        enrollment_id: row
            .try_get::<Option<i64>, _>("enrollment_id")?
            .map(EnrollmentId),
        channel: parsed(row, "channel")?,
        class: parsed(row, "class")?,
        priority: row.try_get("priority")?,
        template: row.try_get("template")?,
        locale: row.try_get("locale")?,
        address: row.try_get("address")?,
        subject: row.try_get("subject")?,
        body_text: row.try_get("body_text")?,
        body_html: row.try_get("body_html")?,
        status: parsed(row, "status")?,
        reason: reason
            .map(|r| {
                r.parse()
                    .map_err(|e: String| StoreError::corrupt("reason", e))
            })
            .transpose()?,
        detail: row.try_get("detail")?,
        attempts: row.try_get("attempts")?,
        due_at: time(row, "due_at")?,
        send_by: opt_time(row, "send_by")?,
        sent_at: opt_time(row, "sent_at")?,
        read_at: opt_time(row, "read_at")?,
        created_at: time(row, "created_at")?,
        updated_at: time(row, "updated_at")?,
    })
}

/// A message a step decided.
#[derive(Debug, Clone)]
pub struct NewMessage {
    pub customer: CustomerId,
    pub journey: Option<JourneyId>,
    pub enrollment: Option<EnrollmentId>,
    /// Makes the decision once: the step of the enrolment that decides it.
    pub dedup_key: String,
    pub channel: Channel,
    pub class: MessageClass,
    pub priority: i64,
    pub template: String,
    pub locale: String,
    pub address: Option<String>,
    pub subject: String,
    pub body_text: String,
    pub body_html: Option<String>,
    /// `Queued`, or `Skipped` with the reason when it is decided not to send.
    pub status: MessageStatus,
    pub reason: Option<SkipReason>,
    pub due_at: DateTime<Utc>,
    pub send_by: Option<DateTime<Utc>>,
    pub at: DateTime<Utc>,
}

/// How the delivery of a claimed message ended.
#[derive(Debug, Clone)]
pub enum Delivery {
    Sent {
        detail: Option<String>,
    },
    /// Try again at `at`.
    Retry {
        at: DateTime<Utc>,
        detail: String,
    },
    Failed {
        reason: SkipReason,
        detail: String,
    },
    Skipped {
        reason: SkipReason,
        detail: Option<String>,
    },
}

/// One marketing message counted against the frequency cap.
#[derive(Debug, Clone, Copy)]
pub struct Capped {
    pub id: MessageId,
    pub priority: i64,
    pub status: MessageStatus,
}

/// Counts for a journey's report.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct JourneyCounts {
    pub entered: i64,
    pub active: i64,
    pub completed: i64,
    pub exited: i64,
    pub control: i64,
    /// Messages by status (and, for skipped and failed, reason).
    pub messages: Vec<(MessageStatus, Option<SkipReason>, i64)>,
}

/// Treated and control enrolments and how many of each converted.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ConversionCounts {
    pub treated: i64,
    pub treated_converted: i64,
    pub control: i64,
    pub control_converted: i64,
}

fn day(d: Option<NaiveDate>) -> Option<String> {
    d.map(|d| d.format("%Y-%m-%d").to_string())
}

impl WriteTx<'_> {
    /// Stores a journey; `None` when one of that name exists (a ready-made journey seeded
    /// by two servers at once is stored once).
    pub async fn insert_journey(
        &mut self,
        name: &str,
        title: &str,
        description: &str,
        definition: &JourneyDefinition,
        enabled: bool,
        at: DateTime<Utc>,
    ) -> StoreResult<Option<Journey>> {
        let row = sqlx::query(AssertSqlSafe(format!(
            "INSERT INTO journeys (name, title, description, definition, enabled, version, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, $5, 1, $6, $6) ON CONFLICT (name) DO NOTHING RETURNING {JOURNEY_COLUMNS}"
        )))
        .bind(name.to_owned())
        .bind(title.to_owned())
        .bind(description.to_owned())
        .bind(crate::customers::to_json(definition))
        .bind(i64::from(enabled))
        .bind(to_micros(at))
        .fetch_optional(&mut *self.tx)
        .await?;
        row.as_ref().map(journey_from_row).transpose()
    }

    /// Changes a journey's title, description, definition and switch.
    pub async fn update_journey(&mut self, j: &Journey, at: DateTime<Utc>) -> StoreResult<Journey> {
        let row = sqlx::query(AssertSqlSafe(format!(
            "UPDATE journeys SET title = $2, description = $3, definition = $4, enabled = $5, \
             version = version + 1, updated_at = $6 WHERE id = $1 RETURNING {JOURNEY_COLUMNS}"
        )))
        .bind(j.id.0)
        .bind(j.title.clone())
        .bind(j.description.clone())
        .bind(crate::customers::to_json(&j.definition))
        .bind(i64::from(j.enabled))
        .bind(to_micros(at))
        .fetch_optional(&mut *self.tx)
        .await?
        .ok_or(StoreError::NotFound { what: "journey" })?;
        journey_from_row(&row)
    }

    /// The journeys that are switched on, read inside the write.
    pub async fn enabled_journeys(&mut self) -> StoreResult<Vec<Journey>> {
        let rows = sqlx::query(AssertSqlSafe(format!(
            "SELECT {JOURNEY_COLUMNS} FROM journeys WHERE enabled = 1 ORDER BY id"
        )))
        .fetch_all(&mut *self.tx)
        .await?;
        rows.iter().map(journey_from_row).collect()
    }

    /// Enrols a customer; `None` when they are enrolled for this occasion already.
    pub async fn enroll(&mut self, e: &NewEnrollment) -> StoreResult<Option<EnrollmentId>> {
        Ok(self
            .enroll_many(std::slice::from_ref(e))
            .await?
            .first()
            .map(|(id, _, _)| *id))
    }

    /// Enrols many at once; returns the enrolments made — id, customer, and whether held
    /// out (those already in for the occasion are left as they are).
    pub async fn enroll_many(
        &mut self,
        rows: &[NewEnrollment],
    ) -> StoreResult<Vec<(EnrollmentId, i64, bool)>> {
        let mut out = Vec::with_capacity(rows.len());
        for chunk in rows.chunks(500) {
            let mut sql = String::from(
                "INSERT INTO journey_enrollments (journey_id, customer_id, occasion, occasion_on, status, step, \
                 next_at, entered_at, finished_at) VALUES ",
            );
            for i in 0..chunk.len() {
                let b = i * 8;
                if i > 0 {
                    sql.push_str(", ");
                }
                sql.push_str(&format!(
                    "(${}, ${}, ${}, ${}, ${}, 0, ${}, ${}, ${})",
                    b + 1,
                    b + 2,
                    b + 3,
                    b + 4,
                    b + 5,
                    b + 6,
                    b + 7,
                    b + 8
                ));
            }
            sql.push_str(
                " ON CONFLICT (journey_id, customer_id, occasion) DO NOTHING RETURNING id, customer_id, status",
            );
            let mut q = sqlx::query(AssertSqlSafe(sql));
            for e in chunk {
                let (status, next_at) = if e.control {
                    (EnrollmentStatus::Control, None)
                } else {
                    (EnrollmentStatus::Active, Some(to_micros(e.at)))
                };
                q = q
                    .bind(e.journey.0)
                    .bind(e.customer.0)
                    .bind(e.occasion.clone())
                    .bind(day(e.occasion_on))
                    .bind(status.as_str())
                    .bind(next_at)
                    .bind(to_micros(e.at))
                    .bind(e.control.then(|| to_micros(e.at)));
            }
            for row in q.fetch_all(&mut *self.tx).await? {
                let status: String = row.try_get("status")?;
                out.push((
                    EnrollmentId(row.try_get("id")?),
                    row.try_get("customer_id")?,
                    status == EnrollmentStatus::Control.as_str(),
                ));
            }
        }
        Ok(out)
    }

    /// When each of these customers last entered `journey` (any occasion).
    pub async fn last_entries(
        &mut self,
        journey: JourneyId,
        customers: &[i64],
    ) -> StoreResult<std::collections::HashMap<i64, DateTime<Utc>>> {
        // One range of the (journey, customer) index per thousand customers: a long IN
        // list is planned badly as a generic plan.
        let mut out = std::collections::HashMap::new();
        let mut ids = customers.to_vec();
        ids.sort_unstable();
        ids.dedup();
        let wanted: std::collections::HashSet<i64> = ids.iter().copied().collect();
        for chunk in ids.chunks(1_000) {
            let (Some(lo), Some(hi)) = (chunk.first(), chunk.last()) else {
                continue;
            };
            let rows = sqlx::query(
                "SELECT customer_id, MAX(entered_at) AS at FROM journey_enrollments \
                 WHERE journey_id = $1 AND customer_id BETWEEN $2 AND $3 GROUP BY customer_id",
            )
            .bind(journey.0)
            .bind(*lo)
            .bind(*hi)
            .fetch_all(&mut *self.tx)
            .await?;
            for row in rows {
                let c: i64 = row.try_get("customer_id")?;
                if wanted.contains(&c) {
                    out.insert(c, time(&row, "at")?);
                }
            }
        }
        Ok(out)
    }

    /// Locks an enrolment that is due at `now`; `None` when it is not (another worker has
    /// it, or it moved on).
    pub async fn lock_due_enrollment(
        &mut self,
        id: EnrollmentId,
        now: DateTime<Utc>,
    ) -> StoreResult<Option<Enrollment>> {
        let mut sql = format!(
            "SELECT {ENROLLMENT_COLUMNS} FROM journey_enrollments WHERE id = $1 AND status = 'active' AND next_at <= $2"
        );
        if self.backend() == Backend::Postgres {
            sql.push_str(" FOR UPDATE SKIP LOCKED");
        }
        let row = sqlx::query(AssertSqlSafe(sql))
            .bind(id.0)
            .bind(to_micros(now))
            .fetch_optional(&mut *self.tx)
            .await?;
        row.as_ref().map(enrollment_from_row).transpose()
    }

    /// Records where an enrolment stands after its steps ran.
    pub async fn save_enrollment(&mut self, e: &Enrollment) -> StoreResult<()> {
        sqlx::query(
            "UPDATE journey_enrollments SET status = $2, step = $3, next_at = $4, finished_at = $5 WHERE id = $1",
        )
        .bind(e.id.0)
        .bind(e.status.as_str())
        .bind(e.step)
        .bind(e.next_at.map(to_micros))
        .bind(e.finished_at.map(to_micros))
        .execute(&mut *self.tx)
        .await?;
        Ok(())
    }

    /// Writes a message to the outbox; `None` when its step decided it already.
    pub async fn insert_message(&mut self, m: &NewMessage) -> StoreResult<Option<MessageId>> {
        let id: Option<i64> = sqlx::query_scalar(
            "INSERT INTO messages (customer_id, journey_id, enrollment_id, dedup_key, channel, class, priority, \
             template, locale, address, subject, body_text, body_html, status, reason, attempts, due_at, send_by, \
             created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, 0, \
             $16, $17, $18, $18) ON CONFLICT (dedup_key) DO NOTHING RETURNING id",
        )
        .bind(m.customer.0)
        .bind(m.journey.map(|j| j.0))
        .bind(m.enrollment.map(|e| e.0))
        .bind(m.dedup_key.clone())
        .bind(m.channel.as_str())
        .bind(m.class.as_str())
        .bind(m.priority)
        .bind(m.template.clone())
        .bind(m.locale.clone())
        .bind(m.address.clone())
        .bind(m.subject.clone())
        .bind(m.body_text.clone())
        .bind(m.body_html.clone())
        .bind(m.status.as_str())
        .bind(m.reason.map(|r| r.as_str()))
        .bind(to_micros(m.due_at))
        .bind(m.send_by.map(to_micros))
        .bind(to_micros(m.at))
        .fetch_optional(&mut *self.tx)
        .await?;
        Ok(id.map(MessageId))
    }

    /// The marketing messages of `customer` on `channel` decided since `since` that count
    /// against the cap (queued, being sent or sent).
    pub async fn cap_usage(
        &mut self,
        customer: CustomerId,
        channel: Channel,
        since: DateTime<Utc>,
    ) -> StoreResult<Vec<Capped>> {
        let rows = sqlx::query(
            "SELECT id, priority, status FROM messages WHERE customer_id = $1 AND channel = $2 \
             AND class = 'marketing' AND created_at >= $3 AND status IN ('queued','sending','sent') ORDER BY id",
        )
        .bind(customer.0)
        .bind(channel.as_str())
        .bind(to_micros(since))
        .fetch_all(&mut *self.tx)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(Capped {
                    id: MessageId(r.try_get("id")?),
                    priority: r.try_get("priority")?,
                    status: parsed(r, "status")?,
                })
            })
            .collect()
    }

    /// Skips a queued message (it yielded to one of higher priority); false when it was
    /// claimed or ended meanwhile.
    pub async fn skip_queued_message(
        &mut self,
        id: MessageId,
        reason: SkipReason,
        detail: &str,
        at: DateTime<Utc>,
    ) -> StoreResult<bool> {
        let n = sqlx::query(
            "UPDATE messages SET status = 'skipped', reason = $2, detail = $3, updated_at = $4 \
             WHERE id = $1 AND status = 'queued'",
        )
        .bind(id.0)
        .bind(reason.as_str())
        .bind(detail.to_owned())
        .bind(to_micros(at))
        .execute(&mut *self.tx)
        .await?
        .rows_affected();
        Ok(n == 1)
    }

    /// Saves a template (by name, channel and locale).
    pub async fn upsert_template(
        &mut self,
        name: &str,
        channel: Channel,
        locale: &str,
        subject: &str,
        body: &str,
        at: DateTime<Utc>,
    ) -> StoreResult<Template> {
        let row = sqlx::query(AssertSqlSafe(format!(
            "INSERT INTO message_templates (name, channel, locale, subject, body, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (name, channel, locale) DO UPDATE SET \
             subject = excluded.subject, body = excluded.body, updated_at = excluded.updated_at \
             RETURNING {TEMPLATE_COLUMNS}"
        )))
        .bind(name.to_owned())
        .bind(channel.as_str())
        .bind(locale.to_owned())
        .bind(subject.to_owned())
        .bind(body.to_owned())
        .bind(to_micros(at))
        .fetch_one(&mut *self.tx)
        .await?;
        template_from_row(&row)
    }

    /// Saves a template only when none exists under its name, channel and locale.
    pub async fn seed_template(
        &mut self,
        name: &str,
        channel: Channel,
        locale: &str,
        subject: &str,
        body: &str,
        at: DateTime<Utc>,
    ) -> StoreResult<()> {
        sqlx::query(
            "INSERT INTO message_templates (name, channel, locale, subject, body, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (name, channel, locale) DO NOTHING",
        )
        .bind(name.to_owned())
        .bind(channel.as_str())
        .bind(locale.to_owned())
        .bind(subject.to_owned())
        .bind(body.to_owned())
        .bind(to_micros(at))
        .execute(&mut *self.tx)
        .await?;
        Ok(())
    }

    /// The templates of `name` on `channel`, every locale.
    pub async fn templates_named(
        &mut self,
        name: &str,
        channel: Channel,
    ) -> StoreResult<Vec<Template>> {
        let rows = sqlx::query(AssertSqlSafe(format!(
            "SELECT {TEMPLATE_COLUMNS} FROM message_templates WHERE name = $1 AND channel = $2 ORDER BY locale"
        )))
        .bind(name.to_owned())
        .bind(channel.as_str())
        .fetch_all(&mut *self.tx)
        .await?;
        rows.iter().map(template_from_row).collect()
    }

    /// Marks the customer's unread inbox messages read.
    pub async fn mark_inbox_read(
        &mut self,
        customer: CustomerId,
        at: DateTime<Utc>,
    ) -> StoreResult<u64> {
        Ok(sqlx::query(
            "UPDATE messages SET read_at = $2 WHERE customer_id = $1 AND channel = 'app' AND status = 'sent' AND read_at IS NULL",
        )
        .bind(customer.0)
        .bind(to_micros(at))
        .execute(&mut *self.tx)
        .await?
        .rows_affected())
    }
}

impl Store {
    pub async fn journeys(&self) -> StoreResult<Vec<Journey>> {
        let rows = sqlx::query(AssertSqlSafe(format!(
            "SELECT {JOURNEY_COLUMNS} FROM journeys ORDER BY id"
        )))
        .fetch_all(self.pool())
        .await?;
        rows.iter().map(journey_from_row).collect()
    }

    pub async fn get_journey(&self, id: JourneyId) -> StoreResult<Journey> {
        let row = sqlx::query(AssertSqlSafe(format!(
            "SELECT {JOURNEY_COLUMNS} FROM journeys WHERE id = $1"
        )))
        .bind(id.0)
        .fetch_optional(self.pool())
        .await?
        .ok_or(StoreError::NotFound { what: "journey" })?;
        journey_from_row(&row)
    }

    pub async fn journey_by_name(&self, name: &str) -> StoreResult<Journey> {
        let row = sqlx::query(AssertSqlSafe(format!(
            "SELECT {JOURNEY_COLUMNS} FROM journeys WHERE name = $1"
        )))
        .bind(name.to_owned())
        .fetch_optional(self.pool())
        .await?
        .ok_or(StoreError::NotFound { what: "journey" })?;
        journey_from_row(&row)
    }

    /// Enrolments whose next step is due, oldest first.
    pub async fn due_enrollments(
        &self,
        now: DateTime<Utc>,
        limit: u32,
    ) -> StoreResult<Vec<EnrollmentId>> {
        let ids: Vec<i64> = sqlx::query_scalar(
            "SELECT id FROM journey_enrollments WHERE status = 'active' AND next_at <= $1 ORDER BY next_at, id LIMIT $2",
        )
        .bind(to_micros(now))
        .bind(i64::from(limit))
        .fetch_all(self.pool())
        .await?;
        Ok(ids.into_iter().map(EnrollmentId).collect())
    }

    /// A customer's enrolments, newest first.
    pub async fn customer_enrollments(&self, customer: CustomerId) -> StoreResult<Vec<Enrollment>> {
        let rows = sqlx::query(AssertSqlSafe(format!(
            "SELECT {ENROLLMENT_COLUMNS} FROM journey_enrollments WHERE customer_id = $1 ORDER BY entered_at DESC, id DESC LIMIT 200"
        )))
        .bind(customer.0)
        .fetch_all(self.pool())
        .await?;
        rows.iter().map(enrollment_from_row).collect()
    }

    /// Claims up to `limit` due messages for `worker` until `lease_until`: queued ones whose
    /// time came, and ones being sent by a worker whose lease ran out. Each claim counts an
    /// attempt.
    pub async fn claim_messages(
        &self,
        worker: &str,
        now: DateTime<Utc>,
        lease_until: DateTime<Utc>,
        limit: u32,
    ) -> StoreResult<Vec<Message>> {
        let mut w = self.begin_write().await?;
        let mut sql = String::from(
            "SELECT id FROM messages WHERE (status = 'queued' AND due_at <= $1) \
             OR (status = 'sending' AND locked_until < $1) ORDER BY due_at, id LIMIT $2",
        );
        if self.backend() == Backend::Postgres {
            sql.push_str(" FOR UPDATE SKIP LOCKED");
        }
        let ids: Vec<i64> = sqlx::query_scalar(AssertSqlSafe(sql))
            .bind(to_micros(now))
            .bind(i64::from(limit))
            .fetch_all(&mut *w.tx)
            .await?;
        let mut out = Vec::with_capacity(ids.len());
        for id in ids {
            let row = sqlx::query(AssertSqlSafe(format!(
                "UPDATE messages SET status = 'sending', locked_by = $2, locked_until = $3, attempts = attempts + 1, \
                 updated_at = $4 WHERE id = $1 RETURNING {MESSAGE_COLUMNS}"
            )))
            .bind(id)
            .bind(worker.to_owned())
            .bind(to_micros(lease_until))
            .bind(to_micros(now))
            .fetch_one(&mut *w.tx)
            .await?;
            out.push(message_from_row(&row)?);
        }
        w.commit().await?;
        Ok(out)
    }

    /// Records how a claimed message's delivery ended; false when `worker` no longer held
    /// it (its lease ran out and another worker took it).
    pub async fn finish_message(
        &self,
        id: MessageId,
        worker: &str,
        end: &Delivery,
        now: DateTime<Utc>,
    ) -> StoreResult<bool> {
        let (status, reason, detail, due, sent) = match end {
            Delivery::Sent { detail } => {
                (MessageStatus::Sent, None, detail.clone(), None, Some(now))
            }
            Delivery::Retry { at, detail } => (
                MessageStatus::Queued,
                None,
                Some(detail.clone()),
                Some(*at),
                None,
            ),
            Delivery::Failed { reason, detail } => (
                MessageStatus::Failed,
                Some(*reason),
                Some(detail.clone()),
                None,
                None,
            ),
            Delivery::Skipped { reason, detail } => (
                MessageStatus::Skipped,
                Some(*reason),
                detail.clone(),
                None,
                None,
            ),
        };
        let n = sqlx::query(
            "UPDATE messages SET status = $3, reason = $4, detail = $5, due_at = COALESCE($6, due_at), \
             sent_at = $7, locked_by = NULL, locked_until = NULL, updated_at = $8 \
             WHERE id = $1 AND status = 'sending' AND locked_by = $2",
        )
        .bind(id.0)
        .bind(worker.to_owned())
        .bind(status.as_str())
        .bind(reason.map(|r| r.as_str()))
        .bind(detail)
        .bind(due.map(to_micros))
        .bind(sent.map(to_micros))
        .bind(to_micros(now))
        .execute(self.pool())
        .await?
        .rows_affected();
        Ok(n == 1)
    }

    pub async fn get_message(&self, id: MessageId) -> StoreResult<Message> {
        let row = sqlx::query(AssertSqlSafe(format!(
            "SELECT {MESSAGE_COLUMNS} FROM messages WHERE id = $1"
        )))
        .bind(id.0)
        .fetch_optional(self.pool())
        .await?
        .ok_or(StoreError::NotFound { what: "message" })?;
        message_from_row(&row)
    }

    /// Messages, newest first, filtered by customer, journey, channel and status; `before`
    /// is the cursor (a message id).
    pub async fn list_messages(
        &self,
        filter: &MessageFilter,
        before: Option<MessageId>,
        limit: u32,
    ) -> StoreResult<crate::Page<Message, MessageId>> {
        let limit = i64::from(limit.clamp(1, 1000));
        let mut s = crate::sql::Select::new(MESSAGE_SELECT);
        s.owned_by(filter.owner)?;
        if let Some(c) = filter.customer {
            s.filter("customer_id = {}", c.0)?;
        }
        if let Some(j) = filter.journey {
            s.filter("journey_id = {}", j.0)?;
        }
        if let Some(ch) = filter.channel {
            s.filter("channel = {}", ch.as_str().to_owned())?;
        }
        if let Some(st) = filter.status {
            s.filter("status = {}", st.as_str().to_owned())?;
        }
        if let Some(r) = filter.reason {
            s.filter("reason = {}", r.as_str().to_owned())?;
        }
        if filter.not_sent {
            s.filter2(
                "status IN ({1}, {2})",
                "skipped".to_owned(),
                "failed".to_owned(),
            )?;
        }
        if let Some(b) = before {
            s.filter("id < {}", b.0)?;
        }
        let (sql, args) = s.finish("ORDER BY id DESC", limit + 1)?;
        let rows = sqlx::query_with(AssertSqlSafe(sql), args)
            .fetch_all(self.reader_unless(filter.customer.is_some()))
            .await?;
        let items = rows
            .iter()
            .map(message_from_row)
            .collect::<StoreResult<Vec<_>>>()?;
        Ok(crate::Page::cut(items, limit, |m| m.id))
    }

    /// How many messages of the outbox are due or being sent at `now`.
    pub async fn messages_due(&self, now: DateTime<Utc>) -> StoreResult<i64> {
        Ok(sqlx::query_scalar(
            "SELECT COUNT(*) FROM messages WHERE (status = 'queued' AND due_at <= $1) OR (status = 'sending' AND locked_until < $1)",
        )
        .bind(to_micros(now))
        .fetch_one(self.pool())
        .await?)
    }

    /// The enrolment and message counts of a journey.
    pub async fn journey_counts(&self, journey: JourneyId) -> StoreResult<JourneyCounts> {
        let mut c = JourneyCounts::default();
        let rows = sqlx::query(
            "SELECT status, COUNT(*) AS n FROM journey_enrollments WHERE journey_id = $1 GROUP BY status",
        )
        .bind(journey.0)
        .fetch_all(self.reader())
        .await?;
        for r in rows {
            let n: i64 = r.try_get("n")?;
            c.entered += n;
            match parsed::<EnrollmentStatus>(&r, "status")? {
                EnrollmentStatus::Active => c.active = n,
                EnrollmentStatus::Completed => c.completed = n,
                EnrollmentStatus::Exited => c.exited = n,
                EnrollmentStatus::Control => c.control = n,
            }
        }
        let rows = sqlx::query(
            "SELECT status, reason, COUNT(*) AS n FROM messages WHERE journey_id = $1 GROUP BY status, reason ORDER BY status, reason",
        )
        .bind(journey.0)
        .fetch_all(self.reader())
        .await?;
        for r in rows {
            let reason: Option<String> = r.try_get("reason")?;
            c.messages.push((
                parsed(&r, "status")?,
                reason.and_then(|s| s.parse().ok()),
                r.try_get("n")?,
            ));
        }
        Ok(c)
    }

    /// Treated and control enrolments of `journey` and how many converted within
    /// `window_days` of entering.
    pub async fn journey_conversions(
        &self,
        journey: JourneyId,
        kind: ConversionKind,
        window_days: u32,
    ) -> StoreResult<ConversionCounts> {
        let window = i64::from(window_days) * 86_400_000_000;
        let orders = "EXISTS (SELECT 1 FROM orders o WHERE o.customer_id = e.customer_id AND o.status = 'completed' \
             AND o.occurred_at > e.entered_at AND o.occurred_at <= e.entered_at + $2)";
        let contacts = "EXISTS (SELECT 1 FROM interactions i WHERE i.customer_id = e.customer_id \
             AND i.direction = 'inbound' AND i.occurred_at > e.entered_at AND i.occurred_at <= e.entered_at + $2)";
        let redeemed = "EXISTS (SELECT 1 FROM loyalty_entries l WHERE l.customer_id = e.customer_id AND l.kind = 'redeem' \
             AND l.at > e.entered_at AND l.at <= e.entered_at + $2)";
        let condition = match kind {
            ConversionKind::Purchase => orders.to_owned(),
            ConversionKind::Return => format!("({orders} OR {contacts})"),
            ConversionKind::Redemption => redeemed.to_owned(),
        };
        let rows = sqlx::query(AssertSqlSafe(format!(
            "SELECT CASE WHEN e.status = 'control' THEN 1 ELSE 0 END AS control, COUNT(*) AS n, \
             SUM(CASE WHEN {condition} THEN 1 ELSE 0 END) AS converted \
             FROM journey_enrollments e WHERE e.journey_id = $1 GROUP BY CASE WHEN e.status = 'control' THEN 1 ELSE 0 END"
        )))
        .bind(journey.0)
        .bind(window)
        .fetch_all(self.pool())
        .await?;
        let mut c = ConversionCounts::default();
        for r in rows {
            let control: i64 = r.try_get("control")?;
            let n: i64 = r.try_get("n")?;
            let k: Option<i64> = r.try_get("converted")?;
            if control == 1 {
                (c.control, c.control_converted) = (n, k.unwrap_or(0));
            } else {
                (c.treated, c.treated_converted) = (n, k.unwrap_or(0));
            }
        }
        Ok(c)
    }

    pub async fn templates(&self) -> StoreResult<Vec<Template>> {
        let rows = sqlx::query(AssertSqlSafe(format!(
            "SELECT {TEMPLATE_COLUMNS} FROM message_templates ORDER BY name, channel, locale"
        )))
        .fetch_all(self.pool())
        .await?;
        rows.iter().map(template_from_row).collect()
    }

    pub async fn get_template(&self, id: TemplateId) -> StoreResult<Template> {
        let row = sqlx::query(AssertSqlSafe(format!(
            "SELECT {TEMPLATE_COLUMNS} FROM message_templates WHERE id = $1"
        )))
        .bind(id.0)
        .fetch_optional(self.pool())
        .await?
        .ok_or(StoreError::NotFound { what: "template" })?;
        template_from_row(&row)
    }
}

/// Which messages to list.
#[derive(Debug, Clone, Default)]
pub struct MessageFilter {
    pub customer: Option<CustomerId>,
    /// Only messages to the customers this staff member owns.
    pub owner: Option<tenure_domain::ids::StaffUserId>,
    pub journey: Option<JourneyId>,
    pub channel: Option<Channel>,
    pub status: Option<MessageStatus>,
    /// Only those not sent for this reason.
    pub reason: Option<SkipReason>,
    /// Only the skipped and failed ones (the customers not sent a message, and why).
    pub not_sent: bool,
}

/// A customer a schedule may enrol, with what the schedule needs to know of them.
#[derive(Debug, Clone)]
pub struct Candidate {
    pub customer: CustomerId,
    pub birthday: Option<NaiveDate>,
    /// The preferences document (JSON text): its time zone and birthday calendar.
    pub preferences: String,
}

impl Store {
    /// Customers whose Gregorian birthday is on one of `month_days` (`MM-DD`), and every
    /// customer who keeps their birthday on the lunar calendar.
    pub async fn birthday_candidates(&self, month_days: &[String]) -> StoreResult<Vec<Candidate>> {
        let mut sql = String::from(
            "SELECT id, birthday, preferences FROM customers WHERE birthday IS NOT NULL AND \
             (preferences LIKE '%\"birthday_calendar\":\"lunar\"%' OR substr(birthday, 6, 5) IN (",
        );
        for i in 0..month_days.len().max(1) {
            if i > 0 {
                sql.push_str(", ");
            }
            sql.push_str(&format!("${}", i + 1));
        }
        sql.push_str(")) ORDER BY id");
        let mut q = sqlx::query(AssertSqlSafe(sql));
        if month_days.is_empty() {
            q = q.bind(String::new());
        }
        for md in month_days {
            q = q.bind(md.clone());
        }
        let rows = q.fetch_all(self.pool()).await?;
        rows.iter()
            .map(|r| {
                let b: Option<String> = r.try_get("birthday")?;
                Ok(Candidate {
                    customer: CustomerId(r.try_get("id")?),
                    birthday: b.and_then(|b| NaiveDate::parse_from_str(&b, "%Y-%m-%d").ok()),
                    preferences: r.try_get("preferences")?,
                })
            })
            .collect()
    }

    /// Customers whose preferences name a time zone of their own: (customer, time zone).
    pub async fn customer_time_zones(&self) -> StoreResult<Vec<(i64, String)>> {
        let rows = sqlx::query(
            "SELECT id, preferences FROM customers WHERE preferences LIKE '%\"time_zone\":%' ORDER BY id",
        )
        .fetch_all(self.pool())
        .await?;
        let mut out = Vec::with_capacity(rows.len());
        for r in rows {
            let p: String = r.try_get("preferences")?;
            let v: serde_json::Value = serde_json::from_str(&p).unwrap_or_default();
            if let Some(tz) = v.get("time_zone").and_then(|t| t.as_str()) {
                out.push((r.try_get("id")?, tz.to_owned()));
            }
        }
        Ok(out)
    }

    /// Every customer id, ascending.
    pub async fn all_customer_ids(&self) -> StoreResult<Vec<i64>> {
        Ok(sqlx::query_scalar("SELECT id FROM customers ORDER BY id")
            .fetch_all(self.pool())
            .await?)
    }

    /// (customer, first purchase) of every buyer.
    pub async fn first_purchases(&self) -> StoreResult<Vec<(i64, DateTime<Utc>)>> {
        let rows = sqlx::query(
            "SELECT customer_id, first_purchase_at FROM customer_stats WHERE first_purchase_at IS NOT NULL ORDER BY customer_id",
        )
        .fetch_all(self.pool())
        .await?;
        rows.iter()
            .map(|r| Ok((r.try_get("customer_id")?, time(r, "first_purchase_at")?)))
            .collect()
    }

    /// Members with points expiring after `from` and up to `to`: (customer, the first
    /// expiry, the points expiring by `to`).
    pub async fn expiring_points(
        &self,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> StoreResult<Vec<(i64, DateTime<Utc>, i64)>> {
        let rows = sqlx::query(
            "SELECT customer_id, MIN(expires_at) AS first, CAST(SUM(remaining) AS BIGINT) AS points FROM loyalty_lots \
             WHERE remaining > 0 AND expires_at IS NOT NULL AND expires_at > $1 AND expires_at <= $2 \
             GROUP BY customer_id ORDER BY customer_id",
        )
        .bind(to_micros(from))
        .bind(to_micros(to))
        .fetch_all(self.pool())
        .await?;
        rows.iter()
            .map(|r| {
                Ok((
                    r.try_get("customer_id")?,
                    time(r, "first")?,
                    r.try_get("points")?,
                ))
            })
            .collect()
    }
}

/// A member's latest tier move, read inside the write that made it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TierMove {
    pub id: i64,
    pub from_tier: Option<String>,
    pub to_tier: String,
    /// `qualified` (up, or the first tier), `grace_ended` (down), `program_changed`.
    pub reason: String,
}

impl WriteTx<'_> {
    pub async fn last_tier_move(&mut self, customer: CustomerId) -> StoreResult<Option<TierMove>> {
        let row = sqlx::query(
            "SELECT id, from_tier, to_tier, reason FROM loyalty_tier_changes WHERE customer_id = $1 ORDER BY id DESC LIMIT 1",
        )
        .bind(customer.0)
        .fetch_optional(&mut *self.tx)
        .await?;
        row.map(|r| {
            Ok(TierMove {
                id: r.try_get("id")?,
                from_tier: r.try_get("from_tier")?,
                to_tier: r.try_get("to_tier")?,
                reason: r.try_get("reason")?,
            })
        })
        .transpose()
    }
}
