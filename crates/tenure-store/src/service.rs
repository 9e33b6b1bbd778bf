//! Service: tickets with their messages and status history, follow-up tasks, surveys,
//! their single-use invitations and answers, each customer's latest feedback, and the
//! service reports.
//!
//! Every write of a ticket locks it first (`FOR UPDATE` on PostgreSQL, the writer slot on
//! SQLite) and bumps its `version`, so concurrent changes of one ticket apply one after the
//! other. An invitation is claimed with a guarded update (`answered_at IS NULL`), so a token
//! answers once however many requests race.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use sqlx::any::AnyRow;
use sqlx::{AssertSqlSafe, Row};
use tenure_domain::customer::Channel;
use tenure_domain::ids::{
    CustomerId, InvitationId, ResponseId, StaffUserId, SurveyId, TaskId, TicketId, TicketMessageId,
};
use tenure_domain::service::{
    Attachment, MessageKind, TaskSource, TaskStatus, TicketCategory, TicketPriority, TicketStatus,
};
use tenure_domain::survey::{Answer, NpsGroup, ServqualScores, SurveyDefinition, SurveyKind};

use crate::decode::{json, parsed};
use crate::sql::{Select, Table, require};
use crate::time::{from_micros, opt_time, time, to_micros};
use crate::{Page, Store, StoreError, StoreResult, WriteTx};

fn opt_parsed<T: std::str::FromStr<Err = String>>(
    row: &AnyRow,
    column: &'static str,
) -> StoreResult<Option<T>> {
    let v: Option<String> = row.try_get(column)?;
    v.map(|s| {
        s.parse()
            .map_err(|e: String| StoreError::corrupt(column, e))
    })
    .transpose()
}

fn micros_opt(t: Option<DateTime<Utc>>) -> Option<i64> {
    t.map(to_micros)
}

fn lock_suffix(w: &WriteTx<'_>) -> &'static str {
    if w.backend() == crate::Backend::Postgres {
        " FOR UPDATE"
    } else {
        ""
    }
}

// ---------------------------------------------------------------------------------------
// Tickets

/// A ticket as stored.
#[derive(Debug, Clone, PartialEq)]
pub struct Ticket {
    pub id: TicketId,
    pub external_id: Option<String>,
    pub customer_id: CustomerId,
    pub subject: String,
    pub category: TicketCategory,
    pub priority: TicketPriority,
    pub channel: Channel,
    pub status: TicketStatus,
    pub assignee_id: Option<StaffUserId>,
    pub opened_at: DateTime<Utc>,
    pub first_response_at: Option<DateTime<Utc>>,
    pub first_response_due: Option<DateTime<Utc>>,
    pub resolution_due: Option<DateTime<Utc>>,
    /// Set while the ticket waits on the customer.
    pub paused_at: Option<DateTime<Utc>>,
    /// Business minutes spent waiting on the customer.
    pub paused_minutes: i64,
    pub resolved_at: Option<DateTime<Utc>>,
    pub closed_at: Option<DateTime<Utc>>,
    pub first_response_breached: bool,
    pub resolution_breached: bool,
    /// The escalation warning before the resolution breach went out.
    pub warned: bool,
    /// Business minutes to the first reply.
    pub first_response_minutes: Option<i64>,
    /// Business minutes to resolution, waiting on the customer left out.
    pub resolution_minutes: Option<i64>,
    /// The survey answer that opened this ticket.
    pub response_id: Option<ResponseId>,
    pub version: i64,
    pub created_by: String,
    pub updated_at: DateTime<Utc>,
}

const TICKET_COLUMNS: &str = "id, external_id, customer_id, subject, category, priority, channel, status, \
     assignee_id, opened_at, first_response_at, first_response_due, resolution_due, paused_at, \
     paused_minutes, resolved_at, closed_at, first_response_breached, resolution_breached, warned, \
     first_response_minutes, resolution_minutes, response_id, version, created_by, updated_at";

pub(crate) const TICKET_SELECT: &str = "SELECT id, external_id, customer_id, subject, category, priority, channel, status, \
     assignee_id, opened_at, first_response_at, first_response_due, resolution_due, paused_at, \
     paused_minutes, resolved_at, closed_at, first_response_breached, resolution_breached, warned, \
     first_response_minutes, resolution_minutes, response_id, version, created_by, updated_at FROM tickets";

pub(crate) fn ticket_from_row(row: &AnyRow) -> StoreResult<Ticket> {
    let flag = |c: &'static str| -> StoreResult<bool> { Ok(row.try_get::<i64, _>(c)? != 0) };
    Ok(Ticket {
        id: TicketId(row.try_get("id")?),
        external_id: row.try_get("external_id")?,
        customer_id: CustomerId(row.try_get("customer_id")?),
        subject: row.try_get("subject")?,
        category: parsed(row, "category")?,
        priority: parsed(row, "priority")?,
        channel: parsed(row, "channel")?,
        status: parsed(row, "status")?,
        assignee_id: row
            .try_get::<Option<i64>, _>("assignee_id")?
            .map(StaffUserId),
        opened_at: time(row, "opened_at")?,
        first_response_at: opt_time(row, "first_response_at")?,
        first_response_due: opt_time(row, "first_response_due")?,
        resolution_due: opt_time(row, "resolution_due")?,
        paused_at: opt_time(row, "paused_at")?,
        paused_minutes: row.try_get("paused_minutes")?,
        resolved_at: opt_time(row, "resolved_at")?,
        closed_at: opt_time(row, "closed_at")?,
        first_response_breached: flag("first_response_breached")?,
        resolution_breached: flag("resolution_breached")?,
        warned: flag("warned")?,
        first_response_minutes: row.try_get("first_response_minutes")?,
        resolution_minutes: row.try_get("resolution_minutes")?,
        response_id: row
            .try_get::<Option<i64>, _>("response_id")?
            .map(ResponseId),
        version: row.try_get("version")?,
        created_by: row.try_get("created_by")?,
        updated_at: time(row, "updated_at")?,
    })
}

/// A message on a ticket.
#[derive(Debug, Clone, PartialEq)]
pub struct TicketMessage {
    pub id: TicketMessageId,
    pub ticket_id: TicketId,
    pub kind: MessageKind,
    pub body: String,
    pub attachments: Vec<Attachment>,
    pub author_id: Option<StaffUserId>,
    pub author_name: String,
    pub at: DateTime<Utc>,
}

/// A status move of a ticket.
#[derive(Debug, Clone, PartialEq)]
pub struct TicketEvent {
    pub id: i64,
    pub at: DateTime<Utc>,
    pub from: Option<TicketStatus>,
    pub to: TicketStatus,
    pub actor_name: String,
}

/// Which tickets a list shows.
#[derive(Debug, Clone, Default)]
pub struct TicketFilter {
    pub customer: Option<CustomerId>,
    /// Only tickets of the customers this staff member owns.
    pub owner: Option<StaffUserId>,
    pub assignee: Option<StaffUserId>,
    pub status: Option<TicketStatus>,
    /// Only tickets not yet resolved.
    pub active: bool,
    pub category: Option<TicketCategory>,
    /// Only tickets that breached an SLA target.
    pub breached: bool,
}

/// The columns of a ticket's changeable state, in the order [`bind_state`] binds them.
const TICKET_STATE: &str = "subject, category, priority, channel, status, assignee_id, \
     first_response_at, first_response_due, resolution_due, paused_at, paused_minutes, resolved_at, \
     closed_at, first_response_breached, resolution_breached, warned, first_response_minutes, \
     resolution_minutes";

type AnyQuery<'q> = sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments>;

/// Binds the [`TICKET_STATE`] columns of `t`.
fn bind_state<'q>(q: AnyQuery<'q>, t: &Ticket) -> AnyQuery<'q> {
    q.bind(t.subject.clone())
        .bind(t.category.as_str())
        .bind(t.priority.as_str())
        .bind(t.channel.as_str())
        .bind(t.status.as_str())
        .bind(t.assignee_id.map(|a| a.0))
        .bind(micros_opt(t.first_response_at))
        .bind(micros_opt(t.first_response_due))
        .bind(micros_opt(t.resolution_due))
        .bind(micros_opt(t.paused_at))
        .bind(t.paused_minutes)
        .bind(micros_opt(t.resolved_at))
        .bind(micros_opt(t.closed_at))
        .bind(i64::from(t.first_response_breached))
        .bind(i64::from(t.resolution_breached))
        .bind(i64::from(t.warned))
        .bind(t.first_response_minutes)
        .bind(t.resolution_minutes)
}

impl WriteTx<'_> {
    /// Inserts a ticket; `t.id` and `t.version` are ignored. `None` when its external id is
    /// stored already (an import's re-run).
    pub async fn insert_ticket(&mut self, t: &Ticket) -> StoreResult<Option<Ticket>> {
        require(
            &mut self.tx,
            Table::Customers,
            t.customer_id.0,
            "customer_id",
        )
        .await?;
        if let Some(a) = t.assignee_id {
            require(&mut self.tx, Table::StaffUsers, a.0, "assignee_id").await?;
        }
        let q = sqlx::query(AssertSqlSafe(format!(
            "INSERT INTO tickets (external_id, customer_id, opened_at, created_by, response_id, updated_at, \
             {TICKET_STATE}, version) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, \
             $19, $20, $21, $22, $23, $24, 1) ON CONFLICT (external_id) DO NOTHING RETURNING {TICKET_COLUMNS}"
        )))
        .bind(t.external_id.clone())
        .bind(t.customer_id.0)
        .bind(to_micros(t.opened_at))
        .bind(t.created_by.clone())
        .bind(t.response_id.map(|r| r.0))
        .bind(to_micros(t.updated_at));
        let row = bind_state(q, t).fetch_optional(&mut *self.tx).await?;
        row.as_ref().map(ticket_from_row).transpose()
    }

    /// A ticket, locked on PostgreSQL until the transaction ends.
    pub async fn ticket_for_update(&mut self, id: TicketId) -> StoreResult<Ticket> {
        let lock = lock_suffix(self);
        let row = sqlx::query(AssertSqlSafe(format!(
            "{TICKET_SELECT} WHERE id = $1{lock}"
        )))
        .bind(id.0)
        .fetch_optional(&mut *self.tx)
        .await?
        .ok_or(StoreError::NotFound { what: "ticket" })?;
        ticket_from_row(&row)
    }

    /// Writes a ticket's state back, one version on.
    pub async fn save_ticket(&mut self, t: &Ticket) -> StoreResult<Ticket> {
        if let Some(a) = t.assignee_id {
            require(&mut self.tx, Table::StaffUsers, a.0, "assignee_id").await?;
        }
        let q = sqlx::query(AssertSqlSafe(format!(
            "UPDATE tickets SET ({TICKET_STATE}) = ($2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, \
             $14, $15, $16, $17, $18, $19), version = version + 1, \
             updated_at = $20 WHERE id = $1 AND version = $21 RETURNING {TICKET_COLUMNS}"
        )))
        .bind(t.id.0);
        let row = bind_state(q, t)
            .bind(to_micros(t.updated_at))
            .bind(t.version)
            .fetch_optional(&mut *self.tx)
            .await?
            .ok_or_else(|| StoreError::Conflict {
                constraint: "tickets_version".into(),
            })?;
        ticket_from_row(&row)
    }

    #[allow(clippy::too_many_arguments)]
    pub async fn add_ticket_message(
        &mut self,
        ticket: &Ticket,
        kind: MessageKind,
        body: &str,
        attachments: &[Attachment],
        author: Option<StaffUserId>,
        author_name: &str,
        at: DateTime<Utc>,
    ) -> StoreResult<TicketMessageId> {
        let id: i64 = sqlx::query_scalar(
            "INSERT INTO ticket_messages (ticket_id, customer_id, kind, body, attachments, author_id, author_name, at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING id",
        )
        .bind(ticket.id.0)
        .bind(ticket.customer_id.0)
        .bind(kind.as_str())
        .bind(body.to_owned())
        .bind(serde_json::to_string(attachments).unwrap_or_else(|_| "[]".into()))
        .bind(author.map(|a| a.0))
        .bind(author_name.to_owned())
        .bind(to_micros(at))
        .fetch_one(&mut *self.tx)
        .await?;
        Ok(TicketMessageId(id))
    }

    pub async fn add_ticket_event(
        &mut self,
        ticket: &Ticket,
        from: Option<TicketStatus>,
        at: DateTime<Utc>,
        actor_name: &str,
    ) -> StoreResult<()> {
        sqlx::query(
            "INSERT INTO ticket_events (ticket_id, customer_id, at, from_status, to_status, actor_name) \
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(ticket.id.0)
        .bind(ticket.customer_id.0)
        .bind(to_micros(at))
        .bind(from.map(|s| s.as_str()))
        .bind(ticket.status.as_str())
        .bind(actor_name.to_owned())
        .execute(&mut *self.tx)
        .await?;
        Ok(())
    }

    /// Active tickets, not waiting on the customer, whose first reply is due by `by` and
    /// not yet marked breached.
    pub async fn first_responses_due(
        &mut self,
        by: DateTime<Utc>,
        limit: i64,
    ) -> StoreResult<Vec<Ticket>> {
        let rows = sqlx::query(AssertSqlSafe(format!(
            "{TICKET_SELECT} WHERE first_response_at IS NULL AND first_response_breached = 0 \
             AND paused_at IS NULL AND first_response_due <= $1 ORDER BY first_response_due LIMIT $2"
        )))
        .bind(to_micros(by))
        .bind(limit)
        .fetch_all(&mut *self.tx)
        .await?;
        rows.iter().map(ticket_from_row).collect()
    }

    /// Active tickets, not waiting on the customer, due for resolution by `by`; with
    /// `unwarned`, only those whose warning has not gone out.
    pub async fn resolutions_due(
        &mut self,
        by: DateTime<Utc>,
        unwarned: bool,
        limit: i64,
    ) -> StoreResult<Vec<Ticket>> {
        let sql = if unwarned {
            "WHERE resolved_at IS NULL AND resolution_breached = 0 AND paused_at IS NULL \
             AND resolution_due <= $1 AND warned = 0 ORDER BY resolution_due LIMIT $2"
        } else {
            "WHERE resolved_at IS NULL AND resolution_breached = 0 AND paused_at IS NULL \
             AND resolution_due <= $1 ORDER BY resolution_due LIMIT $2"
        };
        let rows = sqlx::query(AssertSqlSafe(format!("{TICKET_SELECT} {sql}")))
            .bind(to_micros(by))
            .bind(limit)
            .fetch_all(&mut *self.tx)
            .await?;
        rows.iter().map(ticket_from_row).collect()
    }

    /// Marks tickets' first-response (or resolution) target breached, and the warning sent.
    pub async fn mark_tickets(
        &mut self,
        ids: &[i64],
        column: BreachColumn,
        at: DateTime<Utc>,
    ) -> StoreResult<u64> {
        let mut n = 0;
        for chunk in ids.chunks(500) {
            let mut q = String::from("UPDATE tickets SET ");
            q.push_str(match column {
                BreachColumn::FirstResponse => "first_response_breached = 1",
                BreachColumn::Resolution => "resolution_breached = 1",
                BreachColumn::Warned => "warned = 1",
            });
            q.push_str(", version = version + 1, updated_at = $1 WHERE id IN (");
            for i in 0..chunk.len() {
                if i > 0 {
                    q.push(',');
                }
                q.push('$');
                q.push_str(&(i + 2).to_string());
            }
            q.push(')');
            let mut query = sqlx::query(AssertSqlSafe(q)).bind(to_micros(at));
            for id in chunk {
                query = query.bind(*id);
            }
            n += query.execute(&mut *self.tx).await?.rows_affected();
        }
        Ok(n)
    }
}

/// Which flag [`WriteTx::mark_tickets`] sets.
#[derive(Debug, Clone, Copy)]
pub enum BreachColumn {
    FirstResponse,
    Resolution,
    Warned,
}

fn message_from_row(r: &AnyRow) -> StoreResult<TicketMessage> {
    Ok(TicketMessage {
        id: TicketMessageId(r.try_get("id")?),
        ticket_id: TicketId(r.try_get("ticket_id")?),
        kind: parsed(r, "kind")?,
        body: r.try_get("body")?,
        attachments: json(r, "attachments")?,
        author_id: r.try_get::<Option<i64>, _>("author_id")?.map(StaffUserId),
        author_name: r.try_get("author_name")?,
        at: time(r, "at")?,
    })
}

impl Store {
    pub async fn get_ticket(&self, id: TicketId) -> StoreResult<Ticket> {
        let row = sqlx::query(AssertSqlSafe(format!("{TICKET_SELECT} WHERE id = $1")))
            .bind(id.0)
            .fetch_optional(self.pool())
            .await?
            .ok_or(StoreError::NotFound { what: "ticket" })?;
        ticket_from_row(&row)
    }

    pub async fn ticket_messages(&self, id: TicketId) -> StoreResult<Vec<TicketMessage>> {
        let rows = sqlx::query(
            "SELECT id, ticket_id, kind, body, attachments, author_id, author_name, at \
             FROM ticket_messages WHERE ticket_id = $1 ORDER BY id LIMIT 2000",
        )
        .bind(id.0)
        .fetch_all(self.pool())
        .await?;
        rows.iter().map(message_from_row).collect()
    }

    pub async fn ticket_events(&self, id: TicketId) -> StoreResult<Vec<TicketEvent>> {
        let rows = sqlx::query(
            "SELECT id, at, from_status, to_status, actor_name FROM ticket_events \
             WHERE ticket_id = $1 ORDER BY id LIMIT 2000",
        )
        .bind(id.0)
        .fetch_all(self.pool())
        .await?;
        rows.iter()
            .map(|r| {
                Ok(TicketEvent {
                    id: r.try_get("id")?,
                    at: time(r, "at")?,
                    from: opt_parsed(r, "from_status")?,
                    to: parsed(r, "to_status")?,
                    actor_name: r.try_get("actor_name")?,
                })
            })
            .collect()
    }

    /// Tickets newest first.
    pub async fn list_tickets(
        &self,
        f: &TicketFilter,
        before: Option<TicketId>,
        limit: u32,
    ) -> StoreResult<Page<Ticket, TicketId>> {
        let mut s = Select::new(TICKET_SELECT);
        if let Some(c) = f.customer {
            s.filter("customer_id = {}", c.0)?;
        }
        s.owned_by(f.owner)?;
        if let Some(a) = f.assignee {
            s.filter("assignee_id = {}", a.0)?;
        }
        if let Some(st) = f.status {
            s.filter("status = {}", st.as_str().to_owned())?;
        }
        if f.active {
            s.filter("resolved_at IS NULL AND status <> {}", "closed".to_owned())?;
        }
        if let Some(c) = f.category {
            s.filter("category = {}", c.as_str().to_owned())?;
        }
        if f.breached {
            s.filter(
                "(first_response_breached = {} OR resolution_breached = 1)",
                1_i64,
            )?;
        }
        if let Some(b) = before {
            s.filter("id < {}", b.0)?;
        }
        let limit = i64::from(limit.clamp(1, 500));
        let (sql, args) = s.finish("ORDER BY id DESC", limit + 1)?;
        let rows = sqlx::query_with(AssertSqlSafe(sql), args)
            .fetch_all(self.reader_unless(f.customer.is_some()))
            .await?;
        let items = rows
            .iter()
            .map(ticket_from_row)
            .collect::<StoreResult<Vec<_>>>()?;
        Ok(Page::cut(items, limit, |t| t.id))
    }
}

// ---------------------------------------------------------------------------------------
// Tasks

#[derive(Debug, Clone, PartialEq)]
pub struct Task {
    pub id: TaskId,
    pub title: String,
    pub note: String,
    pub customer_id: Option<CustomerId>,
    pub ticket_id: Option<TicketId>,
    pub assignee_id: Option<StaffUserId>,
    pub due_at: DateTime<Utc>,
    pub remind_at: Option<DateTime<Utc>>,
    pub reminded_at: Option<DateTime<Utc>>,
    pub status: TaskStatus,
    pub source: TaskSource,
    pub source_key: Option<String>,
    pub created_by: String,
    pub created_at: DateTime<Utc>,
    pub done_at: Option<DateTime<Utc>>,
    pub updated_at: DateTime<Utc>,
}

pub(crate) const TASK_SELECT: &str = "SELECT id, title, note, customer_id, ticket_id, assignee_id, due_at, remind_at, \
     reminded_at, status, source, source_key, created_by, created_at, done_at, updated_at FROM tasks";
const TASK_COLUMNS: &str = "id, title, note, customer_id, ticket_id, assignee_id, due_at, remind_at, \
     reminded_at, status, source, source_key, created_by, created_at, done_at, updated_at";

pub(crate) fn task_from_row(r: &AnyRow) -> StoreResult<Task> {
    Ok(Task {
        id: TaskId(r.try_get("id")?),
        title: r.try_get("title")?,
        note: r.try_get("note")?,
        customer_id: r.try_get::<Option<i64>, _>("customer_id")?.map(CustomerId),
        ticket_id: r.try_get::<Option<i64>, _>("ticket_id")?.map(TicketId),
        assignee_id: r.try_get::<Option<i64>, _>("assignee_id")?.map(StaffUserId),
        due_at: time(r, "due_at")?,
        remind_at: opt_time(r, "remind_at")?,
        reminded_at: opt_time(r, "reminded_at")?,
        status: parsed(r, "status")?,
        source: parsed(r, "source")?,
        source_key: r.try_get("source_key")?,
        created_by: r.try_get("created_by")?,
        created_at: time(r, "created_at")?,
        done_at: opt_time(r, "done_at")?,
        updated_at: time(r, "updated_at")?,
    })
}

/// Which tasks a list shows.
#[derive(Debug, Clone, Default)]
pub struct TaskFilter {
    /// Only tasks about the customers this staff member owns, and their own tasks about
    /// no customer.
    pub owner: Option<StaffUserId>,
    pub assignee: Option<StaffUserId>,
    pub customer: Option<CustomerId>,
    pub ticket: Option<TicketId>,
    pub status: Option<TaskStatus>,
    /// Open and due before this time.
    pub overdue_at: Option<DateTime<Utc>>,
    /// Reminders that went out and are still open.
    pub reminded: bool,
}

/// One person's open and overdue tasks.
#[derive(Debug, Clone, PartialEq)]
pub struct OverdueRow {
    pub assignee_id: Option<StaffUserId>,
    pub assignee_name: Option<String>,
    pub open: i64,
    pub overdue: i64,
    pub oldest_due: Option<DateTime<Utc>>,
}

impl WriteTx<'_> {
    /// Inserts a task; `None` when a task with its `source_key` exists (a rule fires once).
    pub async fn insert_task(&mut self, t: &Task) -> StoreResult<Option<Task>> {
        if let Some(c) = t.customer_id {
            require(&mut self.tx, Table::Customers, c.0, "customer_id").await?;
        }
        if let Some(a) = t.assignee_id {
            require(&mut self.tx, Table::StaffUsers, a.0, "assignee_id").await?;
        }
        if let Some(k) = t.ticket_id {
            let found: Option<i64> = sqlx::query_scalar("SELECT id FROM tickets WHERE id = $1")
                .bind(k.0)
                .fetch_optional(&mut *self.tx)
                .await?;
            if found.is_none() {
                return Err(StoreError::BadReference {
                    field: "ticket_id",
                    message: format!("ticket {k} does not exist"),
                });
            }
        }
        let row = sqlx::query(AssertSqlSafe(format!(
            "INSERT INTO tasks (title, note, customer_id, ticket_id, assignee_id, due_at, remind_at, \
             reminded_at, status, source, source_key, created_by, created_at, done_at, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15) \
             ON CONFLICT (source_key) DO NOTHING RETURNING {TASK_COLUMNS}"
        )))
        .bind(t.title.clone())
        .bind(t.note.clone())
        .bind(t.customer_id.map(|c| c.0))
        .bind(t.ticket_id.map(|c| c.0))
        .bind(t.assignee_id.map(|c| c.0))
        .bind(to_micros(t.due_at))
        .bind(micros_opt(t.remind_at))
        .bind(micros_opt(t.reminded_at))
        .bind(t.status.as_str())
        .bind(t.source.as_str())
        .bind(t.source_key.clone())
        .bind(t.created_by.clone())
        .bind(to_micros(t.created_at))
        .bind(micros_opt(t.done_at))
        .bind(to_micros(t.updated_at))
        .fetch_optional(&mut *self.tx)
        .await?;
        row.as_ref().map(task_from_row).transpose()
    }

    pub async fn task_for_update(&mut self, id: TaskId) -> StoreResult<Task> {
        let lock = lock_suffix(self);
        let row = sqlx::query(AssertSqlSafe(format!("{TASK_SELECT} WHERE id = $1{lock}")))
            .bind(id.0)
            .fetch_optional(&mut *self.tx)
            .await?
            .ok_or(StoreError::NotFound { what: "task" })?;
        task_from_row(&row)
    }

    pub async fn save_task(&mut self, t: &Task) -> StoreResult<Task> {
        if let Some(a) = t.assignee_id {
            require(&mut self.tx, Table::StaffUsers, a.0, "assignee_id").await?;
        }
        let row = sqlx::query(AssertSqlSafe(format!(
            "UPDATE tasks SET title = $2, note = $3, assignee_id = $4, due_at = $5, remind_at = $6, \
             reminded_at = $7, status = $8, done_at = $9, updated_at = $10 WHERE id = $1 RETURNING {TASK_COLUMNS}"
        )))
        .bind(t.id.0)
        .bind(t.title.clone())
        .bind(t.note.clone())
        .bind(t.assignee_id.map(|c| c.0))
        .bind(to_micros(t.due_at))
        .bind(micros_opt(t.remind_at))
        .bind(micros_opt(t.reminded_at))
        .bind(t.status.as_str())
        .bind(micros_opt(t.done_at))
        .bind(to_micros(t.updated_at))
        .fetch_optional(&mut *self.tx)
        .await?
        .ok_or(StoreError::NotFound { what: "task" })?;
        task_from_row(&row)
    }

    /// Sends the reminders due by `now`: marks them gone out and returns them.
    pub async fn send_due_reminders(
        &mut self,
        now: DateTime<Utc>,
        limit: i64,
    ) -> StoreResult<Vec<Task>> {
        let rows = sqlx::query(AssertSqlSafe(format!(
            "UPDATE tasks SET reminded_at = $1, updated_at = $1 WHERE id IN (SELECT id FROM tasks \
             WHERE reminded_at IS NULL AND remind_at IS NOT NULL AND remind_at <= $1 AND status = 'open' \
             ORDER BY remind_at LIMIT $2) RETURNING {TASK_COLUMNS}"
        )))
        .bind(to_micros(now))
        .bind(limit)
        .fetch_all(&mut *self.tx)
        .await?;
        rows.iter().map(task_from_row).collect()
    }
}

impl Store {
    /// The names of these customers, for lists that show whose a row is.
    pub async fn customer_names(
        &self,
        ids: &[i64],
    ) -> StoreResult<std::collections::HashMap<i64, String>> {
        let mut conn = self.pool().acquire().await?;
        crate::duplicates::names_of(&mut conn, ids).await
    }
}

impl Store {
    pub async fn get_task(&self, id: TaskId) -> StoreResult<Task> {
        let row = sqlx::query(AssertSqlSafe(format!("{TASK_SELECT} WHERE id = $1")))
            .bind(id.0)
            .fetch_optional(self.pool())
            .await?
            .ok_or(StoreError::NotFound { what: "task" })?;
        task_from_row(&row)
    }

    /// Tasks by due time, soonest first.
    pub async fn list_tasks(
        &self,
        f: &TaskFilter,
        after: Option<(i64, i64)>,
        limit: u32,
    ) -> StoreResult<Page<Task, (i64, i64)>> {
        let mut s = Select::new(TASK_SELECT);
        if let Some(o) = f.owner {
            s.filter2(
                "(customer_id IN (SELECT id FROM customers WHERE owner_id = {1}) \
                 OR (customer_id IS NULL AND assignee_id = {2}))",
                o.0,
                o.0,
            )?;
        }
        if let Some(a) = f.assignee {
            s.filter("assignee_id = {}", a.0)?;
        }
        if let Some(c) = f.customer {
            s.filter("customer_id = {}", c.0)?;
        }
        if let Some(t) = f.ticket {
            s.filter("ticket_id = {}", t.0)?;
        }
        if let Some(st) = f.status {
            s.filter("status = {}", st.as_str().to_owned())?;
        }
        if let Some(at) = f.overdue_at {
            s.filter("status = 'open' AND due_at < {}", to_micros(at))?;
        }
        if f.reminded {
            s.filter(
                "status = 'open' AND reminded_at IS NOT NULL AND reminded_at > {}",
                0_i64,
            )?;
        }
        if let Some((due, id)) = after {
            s.filter3(
                "(due_at > {1} OR (due_at = {2} AND id > {3}))",
                due,
                due,
                id,
            )?;
        }
        let limit = i64::from(limit.clamp(1, 500));
        let (sql, args) = s.finish("ORDER BY due_at, id", limit + 1)?;
        let rows = sqlx::query_with(AssertSqlSafe(sql), args)
            .fetch_all(self.reader_unless(f.customer.is_some() || f.ticket.is_some()))
            .await?;
        let items = rows
            .iter()
            .map(task_from_row)
            .collect::<StoreResult<Vec<_>>>()?;
        Ok(Page::cut(items, limit, |t| (to_micros(t.due_at), t.id.0)))
    }

    /// Open and overdue tasks per person.
    pub async fn overdue_report(&self, now: DateTime<Utc>) -> StoreResult<Vec<OverdueRow>> {
        let rows = sqlx::query(
            "SELECT t.assignee_id, u.name AS assignee_name, COUNT(*) AS open, \
             SUM(CASE WHEN t.due_at < $1 THEN 1 ELSE 0 END) AS overdue, \
             MIN(CASE WHEN t.due_at < $1 THEN t.due_at END) AS oldest \
             FROM tasks t LEFT JOIN staff_users u ON u.id = t.assignee_id \
             WHERE t.status = 'open' GROUP BY t.assignee_id, u.name ORDER BY overdue DESC, open DESC",
        )
        .bind(to_micros(now))
        .fetch_all(self.reader())
        .await?;
        rows.iter()
            .map(|r| {
                Ok(OverdueRow {
                    assignee_id: r.try_get::<Option<i64>, _>("assignee_id")?.map(StaffUserId),
                    assignee_name: r.try_get("assignee_name")?,
                    open: r.try_get("open")?,
                    overdue: r.try_get::<Option<i64>, _>("overdue")?.unwrap_or(0),
                    oldest_due: opt_time(r, "oldest")?,
                })
            })
            .collect()
    }
}

// ---------------------------------------------------------------------------------------
// Surveys, invitations, answers

#[derive(Debug, Clone, PartialEq)]
pub struct Survey {
    pub id: SurveyId,
    pub name: String,
    pub kind: SurveyKind,
    pub definition: SurveyDefinition,
    pub active: bool,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

const SURVEY_SELECT: &str =
    "SELECT id, name, kind, definition, active, created_at, updated_at FROM surveys";

fn survey_from_row(r: &AnyRow) -> StoreResult<Survey> {
    Ok(Survey {
        id: SurveyId(r.try_get("id")?),
        name: r.try_get("name")?,
        kind: parsed(r, "kind")?,
        definition: json(r, "definition")?,
        active: r.try_get::<i64, _>("active")? != 0,
        created_at: time(r, "created_at")?,
        updated_at: time(r, "updated_at")?,
    })
}

#[derive(Debug, Clone, PartialEq)]
pub struct Invitation {
    pub id: InvitationId,
    pub survey_id: SurveyId,
    pub customer_id: CustomerId,
    pub ticket_id: Option<TicketId>,
    pub created_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
    pub answered_at: Option<DateTime<Utc>>,
    pub response_id: Option<ResponseId>,
}

const INVITATION_SELECT: &str = "SELECT id, survey_id, customer_id, ticket_id, created_at, expires_at, \
     answered_at, response_id FROM survey_invitations";

fn invitation_from_row(r: &AnyRow) -> StoreResult<Invitation> {
    Ok(Invitation {
        id: InvitationId(r.try_get("id")?),
        survey_id: SurveyId(r.try_get("survey_id")?),
        customer_id: CustomerId(r.try_get("customer_id")?),
        ticket_id: r.try_get::<Option<i64>, _>("ticket_id")?.map(TicketId),
        created_at: time(r, "created_at")?,
        expires_at: time(r, "expires_at")?,
        answered_at: opt_time(r, "answered_at")?,
        response_id: r.try_get::<Option<i64>, _>("response_id")?.map(ResponseId),
    })
}

/// A response to store.
#[derive(Debug, Clone)]
pub struct NewResponse {
    pub external_id: Option<String>,
    pub survey_id: SurveyId,
    pub kind: SurveyKind,
    pub customer_id: CustomerId,
    pub invitation_id: Option<InvitationId>,
    pub ticket_id: Option<TicketId>,
    pub agent_id: Option<StaffUserId>,
    pub channel: Option<Channel>,
    pub score: Option<i64>,
    pub nps_group: Option<NpsGroup>,
    pub comment: Option<String>,
    pub answered_at: DateTime<Utc>,
    pub recorded_by: String,
    pub servqual: Option<ServqualScores>,
    pub answers: Vec<Answer>,
}

/// A stored response.
#[derive(Debug, Clone, PartialEq)]
pub struct Response {
    pub id: ResponseId,
    pub survey_id: SurveyId,
    pub kind: SurveyKind,
    pub customer_id: CustomerId,
    pub ticket_id: Option<TicketId>,
    pub agent_id: Option<StaffUserId>,
    pub channel: Option<Channel>,
    pub score: Option<i64>,
    pub nps_group: Option<NpsGroup>,
    pub comment: Option<String>,
    pub answered_at: DateTime<Utc>,
    pub recorded_by: String,
    pub gap: Option<f64>,
    pub weighted_gap: Option<f64>,
    pub opened_ticket_id: Option<TicketId>,
}

pub(crate) const RESPONSE_SELECT: &str = "SELECT id, survey_id, kind, customer_id, ticket_id, agent_id, channel, score, \
     nps_group, comment, answered_at, recorded_by, gap, weighted_gap, opened_ticket_id FROM survey_responses";

pub(crate) fn response_from_row(r: &AnyRow) -> StoreResult<Response> {
    Ok(Response {
        id: ResponseId(r.try_get("id")?),
        survey_id: SurveyId(r.try_get("survey_id")?),
        kind: parsed(r, "kind")?,
        customer_id: CustomerId(r.try_get("customer_id")?),
        ticket_id: r.try_get::<Option<i64>, _>("ticket_id")?.map(TicketId),
        agent_id: r.try_get::<Option<i64>, _>("agent_id")?.map(StaffUserId),
        channel: opt_parsed(r, "channel")?,
        score: r.try_get("score")?,
        nps_group: opt_parsed(r, "nps_group")?,
        comment: r.try_get("comment")?,
        answered_at: time(r, "answered_at")?,
        recorded_by: r.try_get("recorded_by")?,
        gap: r.try_get("gap")?,
        weighted_gap: r.try_get("weighted_gap")?,
        opened_ticket_id: r
            .try_get::<Option<i64>, _>("opened_ticket_id")?
            .map(TicketId),
    })
}

/// A customer's latest scores and open tickets.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Feedback {
    pub nps_score: Option<i64>,
    pub nps_group: Option<NpsGroup>,
    pub nps_at: Option<DateTime<Utc>>,
    pub csat_score: Option<i64>,
    pub csat_at: Option<DateTime<Utc>>,
    pub open_tickets: i64,
    pub last_category: Option<TicketCategory>,
    pub last_ticket_at: Option<DateTime<Utc>>,
}

impl WriteTx<'_> {
    pub async fn insert_survey(
        &mut self,
        name: &str,
        kind: SurveyKind,
        def: &SurveyDefinition,
        active: bool,
        now: DateTime<Utc>,
    ) -> StoreResult<SurveyId> {
        let id: i64 = sqlx::query_scalar(
            "INSERT INTO surveys (name, kind, definition, active, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $5) RETURNING id",
        )
        .bind(name.to_owned())
        .bind(kind.as_str())
        .bind(
            serde_json::to_string(def)
                .map_err(|e| StoreError::corrupt("definition", e.to_string()))?,
        )
        .bind(i64::from(active))
        .bind(to_micros(now))
        .fetch_one(&mut *self.tx)
        .await?;
        Ok(SurveyId(id))
    }

    pub async fn update_survey(
        &mut self,
        id: SurveyId,
        name: &str,
        def: &SurveyDefinition,
        active: bool,
        now: DateTime<Utc>,
    ) -> StoreResult<()> {
        let n = sqlx::query(
            "UPDATE surveys SET name = $2, definition = $3, active = $4, updated_at = $5 WHERE id = $1",
        )
        .bind(id.0)
        .bind(name.to_owned())
        .bind(serde_json::to_string(def).map_err(|e| StoreError::corrupt("definition", e.to_string()))?)
        .bind(i64::from(active))
        .bind(to_micros(now))
        .execute(&mut *self.tx)
        .await?;
        if n.rows_affected() == 0 {
            return Err(StoreError::NotFound { what: "survey" });
        }
        Ok(())
    }

    pub async fn survey_in(&mut self, id: SurveyId) -> StoreResult<Survey> {
        let row = sqlx::query(AssertSqlSafe(format!("{SURVEY_SELECT} WHERE id = $1")))
            .bind(id.0)
            .fetch_optional(&mut *self.tx)
            .await?
            .ok_or(StoreError::NotFound { what: "survey" })?;
        survey_from_row(&row)
    }

    /// The oldest active survey of `kind`, the one rules invite to.
    pub async fn active_survey_of(&mut self, kind: SurveyKind) -> StoreResult<Option<Survey>> {
        let row = sqlx::query(AssertSqlSafe(format!(
            "{SURVEY_SELECT} WHERE kind = $1 AND active = 1 ORDER BY id LIMIT 1"
        )))
        .bind(kind.as_str())
        .fetch_optional(&mut *self.tx)
        .await?;
        row.as_ref().map(survey_from_row).transpose()
    }

    /// Stores an invitation by its token's hash; `None` when one with `source_key` exists.
    #[allow(clippy::too_many_arguments)]
    pub async fn insert_invitation(
        &mut self,
        survey: SurveyId,
        customer: CustomerId,
        ticket: Option<TicketId>,
        token_hash: &str,
        source_key: Option<&str>,
        now: DateTime<Utc>,
        expires_at: DateTime<Utc>,
    ) -> StoreResult<Option<InvitationId>> {
        require(&mut self.tx, Table::Customers, customer.0, "customer_id").await?;
        let got: Option<i64> = sqlx::query_scalar(
            "INSERT INTO survey_invitations (survey_id, customer_id, ticket_id, token_hash, source_key, \
             created_at, expires_at) VALUES ($1, $2, $3, $4, $5, $6, $7) \
             ON CONFLICT (source_key) DO NOTHING RETURNING id",
        )
        .bind(survey.0)
        .bind(customer.0)
        .bind(ticket.map(|t| t.0))
        .bind(token_hash.to_owned())
        .bind(source_key.map(str::to_owned))
        .bind(to_micros(now))
        .bind(to_micros(expires_at))
        .fetch_optional(&mut *self.tx)
        .await?;
        Ok(got.map(InvitationId))
    }

    /// Claims an invitation for its one answer: `false` when it was answered already
    /// (by an earlier or a concurrent request).
    pub async fn claim_invitation(
        &mut self,
        id: InvitationId,
        at: DateTime<Utc>,
    ) -> StoreResult<bool> {
        let n = sqlx::query(
            "UPDATE survey_invitations SET answered_at = $2 WHERE id = $1 AND answered_at IS NULL",
        )
        .bind(id.0)
        .bind(to_micros(at))
        .execute(&mut *self.tx)
        .await?;
        Ok(n.rows_affected() == 1)
    }

    pub async fn invitation_by_hash_in(&mut self, hash: &str) -> StoreResult<Option<Invitation>> {
        let row = sqlx::query(AssertSqlSafe(format!(
            "{INVITATION_SELECT} WHERE token_hash = $1"
        )))
        .bind(hash.to_owned())
        .fetch_optional(&mut *self.tx)
        .await?;
        row.as_ref().map(invitation_from_row).transpose()
    }

    /// Stores a response with its answers; `None` when its external id is stored already.
    pub async fn insert_response(&mut self, r: &NewResponse) -> StoreResult<Option<ResponseId>> {
        require(
            &mut self.tx,
            Table::Customers,
            r.customer_id.0,
            "customer_id",
        )
        .await?;
        let sq = r.servqual.as_ref();
        let e = |i: usize| sq.map(|s| s.expectation[i]);
        let p = |i: usize| sq.map(|s| s.perception[i]);
        let w = |d| sq.and_then(|s| s.importance).map(|w| w.get(d));
        use tenure_domain::survey::Dimension as D;
        let got: Option<i64> = sqlx::query_scalar(
            "INSERT INTO survey_responses (external_id, survey_id, kind, customer_id, invitation_id, ticket_id, \
             agent_id, channel, score, nps_group, comment, answered_at, recorded_by, \
             e_tangibles, p_tangibles, e_reliability, p_reliability, e_responsiveness, p_responsiveness, \
             e_assurance, p_assurance, e_empathy, p_empathy, \
             w_tangibles, w_reliability, w_responsiveness, w_assurance, w_empathy, gap, weighted_gap) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, \
             $20, $21, $22, $23, $24, $25, $26, $27, $28, $29, $30) \
             ON CONFLICT (external_id) DO NOTHING RETURNING id",
        )
        .bind(r.external_id.clone())
        .bind(r.survey_id.0)
        .bind(r.kind.as_str())
        .bind(r.customer_id.0)
        .bind(r.invitation_id.map(|i| i.0))
        .bind(r.ticket_id.map(|i| i.0))
        .bind(r.agent_id.map(|i| i.0))
        .bind(r.channel.map(|c| c.as_str()))
        .bind(r.score)
        .bind(r.nps_group.map(|g| g.as_str()))
        .bind(r.comment.clone())
        .bind(to_micros(r.answered_at))
        .bind(r.recorded_by.clone())
        .bind(e(0))
        .bind(p(0))
        .bind(e(1))
        .bind(p(1))
        .bind(e(2))
        .bind(p(2))
        .bind(e(3))
        .bind(p(3))
        .bind(e(4))
        .bind(p(4))
        .bind(w(D::Tangibles))
        .bind(w(D::Reliability))
        .bind(w(D::Responsiveness))
        .bind(w(D::Assurance))
        .bind(w(D::Empathy))
        .bind(sq.map(|s| s.overall()))
        .bind(sq.and_then(|s| s.weighted()))
        .fetch_optional(&mut *self.tx)
        .await?;
        let Some(id) = got else { return Ok(None) };
        let mut bulk = crate::sql::Bulk::new(
            self.backend(),
            "INSERT INTO survey_answers (response_id, customer_id, question, value, expectation, choice, text)",
            7,
        );
        for a in &r.answers {
            bulk.row(&mut self.tx, |row| {
                row.add(id)?;
                row.add(r.customer_id.0)?;
                row.add(a.question.clone())?;
                row.add(a.value)?;
                row.add(a.expectation)?;
                row.add(a.choice.clone())?;
                row.add(a.text.clone())
            })
            .await?;
        }
        bulk.flush(&mut self.tx).await?;
        if let Some(inv) = r.invitation_id {
            sqlx::query("UPDATE survey_invitations SET response_id = $2 WHERE id = $1")
                .bind(inv.0)
                .bind(id)
                .execute(&mut *self.tx)
                .await?;
        }
        Ok(Some(ResponseId(id)))
    }

    /// Records which ticket an answer opened.
    pub async fn link_response_ticket(
        &mut self,
        response: ResponseId,
        ticket: TicketId,
    ) -> StoreResult<()> {
        sqlx::query("UPDATE survey_responses SET opened_ticket_id = $2 WHERE id = $1")
            .bind(response.0)
            .bind(ticket.0)
            .execute(&mut *self.tx)
            .await?;
        Ok(())
    }

    /// Recomputes a customer's feedback row from their answers and tickets.
    pub async fn refresh_feedback(&mut self, customer: CustomerId) -> StoreResult<()> {
        let latest = |kind: &'static str| {
            sqlx::query(
                "SELECT score, nps_group, answered_at FROM survey_responses WHERE customer_id = $1 \
                 AND kind = $2 AND score IS NOT NULL ORDER BY answered_at DESC, id DESC LIMIT 1",
            )
            .bind(customer.0)
            .bind(kind)
        };
        let nps = latest("nps").fetch_optional(&mut *self.tx).await?;
        let csat = latest("csat").fetch_optional(&mut *self.tx).await?;
        let open: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM tickets WHERE customer_id = $1 AND resolved_at IS NULL AND status <> 'closed'",
        )
        .bind(customer.0)
        .fetch_one(&mut *self.tx)
        .await?;
        let last = sqlx::query(
            "SELECT category, opened_at FROM tickets WHERE customer_id = $1 ORDER BY opened_at DESC, id DESC LIMIT 1",
        )
        .bind(customer.0)
        .fetch_optional(&mut *self.tx)
        .await?;
        if nps.is_none() && csat.is_none() && last.is_none() {
            sqlx::query("DELETE FROM customer_feedback WHERE customer_id = $1")
                .bind(customer.0)
                .execute(&mut *self.tx)
                .await?;
            return Ok(());
        }
        let score = |r: &Option<AnyRow>| -> StoreResult<(Option<i64>, Option<i64>)> {
            match r {
                Some(r) => Ok((r.try_get("score")?, Some(r.try_get("answered_at")?))),
                None => Ok((None, None)),
            }
        };
        let (nps_score, nps_at) = score(&nps)?;
        let nps_group: Option<String> = match &nps {
            Some(r) => r.try_get("nps_group")?,
            None => None,
        };
        let (csat_score, csat_at) = score(&csat)?;
        let (category, last_at): (Option<String>, Option<i64>) = match &last {
            Some(r) => (r.try_get("category")?, r.try_get("opened_at")?),
            None => (None, None),
        };
        sqlx::query(
            "INSERT INTO customer_feedback (customer_id, nps_score, nps_group, nps_at, csat_score, csat_at, \
             open_tickets, last_category, last_ticket_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) \
             ON CONFLICT (customer_id) DO UPDATE SET nps_score = excluded.nps_score, nps_group = excluded.nps_group, \
             nps_at = excluded.nps_at, csat_score = excluded.csat_score, csat_at = excluded.csat_at, \
             open_tickets = excluded.open_tickets, last_category = excluded.last_category, \
             last_ticket_at = excluded.last_ticket_at",
        )
        .bind(customer.0)
        .bind(nps_score)
        .bind(nps_group)
        .bind(nps_at)
        .bind(csat_score)
        .bind(csat_at)
        .bind(open)
        .bind(category)
        .bind(last_at)
        .execute(&mut *self.tx)
        .await?;
        Ok(())
    }

    /// The category of the customer's latest ticket opened within `[from, to]`.
    pub async fn ticket_category_between(
        &mut self,
        customer: CustomerId,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> StoreResult<Option<TicketCategory>> {
        let c: Option<String> = sqlx::query_scalar(
            "SELECT category FROM tickets WHERE customer_id = $1 AND opened_at >= $2 AND opened_at <= $3 \
             ORDER BY opened_at DESC, id DESC LIMIT 1",
        )
        .bind(customer.0)
        .bind(to_micros(from))
        .bind(to_micros(to))
        .fetch_optional(&mut *self.tx)
        .await?;
        c.map(|s| {
            s.parse()
                .map_err(|e: String| StoreError::corrupt("category", e))
        })
        .transpose()
    }
}

impl Store {
    pub async fn list_surveys(&self) -> StoreResult<Vec<Survey>> {
        let rows = sqlx::query(AssertSqlSafe(format!(
            "{SURVEY_SELECT} ORDER BY id LIMIT 1000"
        )))
        .fetch_all(self.pool())
        .await?;
        rows.iter().map(survey_from_row).collect()
    }

    pub async fn get_survey(&self, id: SurveyId) -> StoreResult<Survey> {
        let row = sqlx::query(AssertSqlSafe(format!("{SURVEY_SELECT} WHERE id = $1")))
            .bind(id.0)
            .fetch_optional(self.pool())
            .await?
            .ok_or(StoreError::NotFound { what: "survey" })?;
        survey_from_row(&row)
    }

    pub async fn invitation_by_hash(&self, hash: &str) -> StoreResult<Option<Invitation>> {
        let row = sqlx::query(AssertSqlSafe(format!(
            "{INVITATION_SELECT} WHERE token_hash = $1"
        )))
        .bind(hash.to_owned())
        .fetch_optional(self.pool())
        .await?;
        row.as_ref().map(invitation_from_row).transpose()
    }

    /// The invitation a ticket's resolution made, if any.
    pub async fn ticket_invitations(&self, ticket: TicketId) -> StoreResult<Vec<Invitation>> {
        let rows = sqlx::query(AssertSqlSafe(format!(
            "{INVITATION_SELECT} WHERE ticket_id = $1 ORDER BY id LIMIT 100"
        )))
        .bind(ticket.0)
        .fetch_all(self.pool())
        .await?;
        rows.iter().map(invitation_from_row).collect()
    }

    pub async fn get_response(&self, id: ResponseId) -> StoreResult<(Response, Vec<Answer>)> {
        let row = sqlx::query(AssertSqlSafe(format!("{RESPONSE_SELECT} WHERE id = $1")))
            .bind(id.0)
            .fetch_optional(self.pool())
            .await?
            .ok_or(StoreError::NotFound {
                what: "survey response",
            })?;
        let rows = sqlx::query(
            "SELECT question, value, expectation, choice, text FROM survey_answers WHERE response_id = $1 \
             ORDER BY question LIMIT 200",
        )
        .bind(id.0)
        .fetch_all(self.pool())
        .await?;
        let answers = rows
            .iter()
            .map(|r| {
                Ok(Answer {
                    question: r.try_get("question")?,
                    value: r.try_get("value")?,
                    expectation: r.try_get("expectation")?,
                    choice: r.try_get("choice")?,
                    text: r.try_get("text")?,
                })
            })
            .collect::<StoreResult<Vec<_>>>()?;
        Ok((response_from_row(&row)?, answers))
    }

    /// Responses newest first, of a survey or a customer.
    pub async fn list_responses(
        &self,
        survey: Option<SurveyId>,
        customer: Option<CustomerId>,
        owner: Option<StaffUserId>,
        before: Option<ResponseId>,
        limit: u32,
    ) -> StoreResult<Page<Response, ResponseId>> {
        let mut s = Select::new(RESPONSE_SELECT);
        s.owned_by(owner)?;
        if let Some(v) = survey {
            s.filter("survey_id = {}", v.0)?;
        }
        if let Some(c) = customer {
            s.filter("customer_id = {}", c.0)?;
        }
        if let Some(b) = before {
            s.filter("id < {}", b.0)?;
        }
        let limit = i64::from(limit.clamp(1, 500));
        let (sql, args) = s.finish("ORDER BY id DESC", limit + 1)?;
        let rows = sqlx::query_with(AssertSqlSafe(sql), args)
            .fetch_all(self.reader_unless(customer.is_some()))
            .await?;
        let items = rows
            .iter()
            .map(response_from_row)
            .collect::<StoreResult<Vec<_>>>()?;
        Ok(Page::cut(items, limit, |r| r.id))
    }

    pub async fn feedback(&self, customer: CustomerId) -> StoreResult<Feedback> {
        let row = sqlx::query(
            "SELECT nps_score, nps_group, nps_at, csat_score, csat_at, open_tickets, last_category, last_ticket_at \
             FROM customer_feedback WHERE customer_id = $1",
        )
        .bind(customer.0)
        .fetch_optional(self.pool())
        .await?;
        let Some(r) = row else {
            return Ok(Feedback::default());
        };
        Ok(Feedback {
            nps_score: r.try_get("nps_score")?,
            nps_group: opt_parsed(&r, "nps_group")?,
            nps_at: opt_time(&r, "nps_at")?,
            csat_score: r.try_get("csat_score")?,
            csat_at: opt_time(&r, "csat_at")?,
            open_tickets: r.try_get("open_tickets")?,
            last_category: opt_parsed(&r, "last_category")?,
            last_ticket_at: opt_time(&r, "last_ticket_at")?,
        })
    }
}

// ---------------------------------------------------------------------------------------
// Reports

/// Counts of answers by score, for one group of a breakdown.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ScoreCounts {
    /// NPS answers by score 0–10.
    pub nps: [i64; 11],
    /// CSAT answers by score 1–5 (index 0 unused).
    pub csat: [i64; 6],
}

impl ScoreCounts {
    fn add(&mut self, kind: &str, score: i64, n: i64) {
        match kind {
            "nps" if (0..=10).contains(&score) => self.nps[score as usize] += n,
            "csat" if (1..=5).contains(&score) => self.csat[score as usize] += n,
            _ => {}
        }
    }
}

/// What an NPS and CSAT breakdown groups by.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ScoreGroup {
    /// UTC day numbers since the epoch (the application folds them into months).
    Day,
    Channel,
    Agent,
    Segment,
}

/// SERVQUAL means over the answers in a period.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ServqualReport {
    pub responses: i64,
    /// Per dimension (in `Dimension::ALL` order): mean expectation and mean perception.
    pub expectation: [f64; 5],
    pub perception: [f64; 5],
    pub gap: Option<f64>,
    pub weighted_gap: Option<f64>,
    /// Per item: id, mean expectation, mean perception, answers.
    pub items: Vec<(String, f64, f64, i64)>,
}

/// One agent's tickets.
#[derive(Debug, Clone, PartialEq)]
pub struct AgentRow {
    pub agent_id: Option<StaffUserId>,
    pub agent_name: Option<String>,
    pub tickets: i64,
    pub resolved: i64,
    pub open: i64,
    pub first_response_minutes: Option<f64>,
    pub resolution_minutes: Option<f64>,
    pub first_response_breaches: i64,
    pub resolution_breaches: i64,
}

/// Tickets by category and priority with their breaches.
#[derive(Debug, Clone, PartialEq)]
pub struct BreachRow {
    pub category: TicketCategory,
    pub priority: TicketPriority,
    pub tickets: i64,
    pub open: i64,
    pub first_response_breaches: i64,
    pub resolution_breaches: i64,
}

impl Store {
    /// NPS and CSAT answer counts since `since`, grouped by `by`.
    pub async fn score_counts(
        &self,
        by: ScoreGroup,
        since: DateTime<Utc>,
    ) -> StoreResult<Vec<(i64, ScoreCounts)>> {
        let sql = match by {
            ScoreGroup::Day => {
                "SELECT (r.answered_at / 86400000000) AS g, r.kind, r.score, COUNT(*) AS n FROM survey_responses r \
                 WHERE r.answered_at >= $1 AND r.kind IN ('nps', 'csat') AND r.score IS NOT NULL \
                 GROUP BY (r.answered_at / 86400000000), r.kind, r.score"
            }
            ScoreGroup::Channel => {
                "SELECT CASE r.channel WHEN 'phone' THEN 1 WHEN 'email' THEN 2 WHEN 'sms' THEN 3 WHEN 'chat' THEN 4 \
                 WHEN 'social' THEN 5 WHEN 'in_person' THEN 6 WHEN 'app' THEN 7 WHEN 'web' THEN 8 ELSE 0 END AS g, \
                 r.kind, r.score, COUNT(*) AS n FROM survey_responses r \
                 WHERE r.answered_at >= $1 AND r.kind IN ('nps', 'csat') AND r.score IS NOT NULL \
                 GROUP BY r.channel, r.kind, r.score"
            }
            ScoreGroup::Agent => {
                "SELECT COALESCE(r.agent_id, 0) AS g, r.kind, r.score, COUNT(*) AS n FROM survey_responses r \
                 WHERE r.answered_at >= $1 AND r.kind IN ('nps', 'csat') AND r.score IS NOT NULL \
                 GROUP BY r.agent_id, r.kind, r.score"
            }
            ScoreGroup::Segment => {
                "SELECT m.segment_id AS g, r.kind, r.score, COUNT(*) AS n FROM survey_responses r \
                 JOIN segment_members m ON m.customer_id = r.customer_id \
                 WHERE r.answered_at >= $1 AND r.kind IN ('nps', 'csat') AND r.score IS NOT NULL \
                 GROUP BY m.segment_id, r.kind, r.score"
            }
        };
        let rows = sqlx::query(sql)
            .bind(to_micros(since))
            .fetch_all(self.reader())
            .await?;
        let mut out: std::collections::BTreeMap<i64, ScoreCounts> = Default::default();
        for r in &rows {
            let g: i64 = r.try_get("g")?;
            let kind: String = r.try_get("kind")?;
            let score: i64 = r.try_get("score")?;
            let n: i64 = r.try_get("n")?;
            out.entry(g).or_default().add(&kind, score, n);
        }
        Ok(out.into_iter().collect())
    }

    /// SERVQUAL means since `since`.
    pub async fn servqual_report(&self, since: DateTime<Utc>) -> StoreResult<ServqualReport> {
        let r = sqlx::query(
            "SELECT COUNT(*) AS n, AVG(e_tangibles) AS e0, AVG(p_tangibles) AS p0, AVG(e_reliability) AS e1, \
             AVG(p_reliability) AS p1, AVG(e_responsiveness) AS e2, AVG(p_responsiveness) AS p2, \
             AVG(e_assurance) AS e3, AVG(p_assurance) AS p3, AVG(e_empathy) AS e4, AVG(p_empathy) AS p4, \
             AVG(gap) AS gap, AVG(weighted_gap) AS wgap FROM survey_responses \
             WHERE kind = 'servqual' AND answered_at >= $1",
        )
        .bind(to_micros(since))
        .fetch_one(self.reader())
        .await?;
        let f = |c: &'static str| -> StoreResult<f64> {
            Ok(r.try_get::<Option<f64>, _>(c)?.unwrap_or(0.0))
        };
        let mut out = ServqualReport {
            responses: r.try_get("n")?,
            expectation: [f("e0")?, f("e1")?, f("e2")?, f("e3")?, f("e4")?],
            perception: [f("p0")?, f("p1")?, f("p2")?, f("p3")?, f("p4")?],
            gap: r.try_get("gap")?,
            weighted_gap: r.try_get("wgap")?,
            items: Vec::new(),
        };
        if out.responses == 0 {
            return Ok(out);
        }
        let rows = sqlx::query(
            "SELECT a.question, AVG(CAST(a.expectation AS DOUBLE PRECISION)) AS e, AVG(CAST(a.value AS DOUBLE PRECISION)) AS p, \
             COUNT(*) AS n FROM survey_answers a JOIN survey_responses r ON r.id = a.response_id \
             WHERE r.kind = 'servqual' AND r.answered_at >= $1 AND a.expectation IS NOT NULL \
             GROUP BY a.question",
        )
        .bind(to_micros(since))
        .fetch_all(self.reader())
        .await?;
        let mut items = HashMap::new();
        for r in &rows {
            let q: String = r.try_get("question")?;
            items.insert(
                q,
                (
                    r.try_get::<Option<f64>, _>("e")?.unwrap_or(0.0),
                    r.try_get::<Option<f64>, _>("p")?.unwrap_or(0.0),
                    r.try_get::<i64, _>("n")?,
                ),
            );
        }
        for (id, _) in tenure_domain::survey::servqual_items() {
            if let Some((e, p, n)) = items.remove(id) {
                out.items.push((id.to_owned(), e, p, n));
            }
        }
        Ok(out)
    }

    /// Tickets per assignee opened since `since`.
    pub async fn agent_report(&self, since: DateTime<Utc>) -> StoreResult<Vec<AgentRow>> {
        let rows = sqlx::query(
            "SELECT t.assignee_id, u.name AS agent_name, COUNT(*) AS tickets, \
             SUM(CASE WHEN t.resolved_at IS NOT NULL THEN 1 ELSE 0 END) AS resolved, \
             SUM(CASE WHEN t.resolved_at IS NULL AND t.status <> 'closed' THEN 1 ELSE 0 END) AS open, \
             AVG(CAST(t.first_response_minutes AS DOUBLE PRECISION)) AS frm, \
             AVG(CAST(t.resolution_minutes AS DOUBLE PRECISION)) AS rm, \
             CAST(SUM(t.first_response_breached) AS BIGINT) AS frb, CAST(SUM(t.resolution_breached) AS BIGINT) AS rb \
             FROM tickets t LEFT JOIN staff_users u ON u.id = t.assignee_id WHERE t.opened_at >= $1 \
             GROUP BY t.assignee_id, u.name ORDER BY tickets DESC",
        )
        .bind(to_micros(since))
        .fetch_all(self.reader())
        .await?;
        rows.iter()
            .map(|r| {
                let n = |c: &'static str| -> StoreResult<i64> {
                    Ok(r.try_get::<Option<i64>, _>(c)?.unwrap_or(0))
                };
                Ok(AgentRow {
                    agent_id: r.try_get::<Option<i64>, _>("assignee_id")?.map(StaffUserId),
                    agent_name: r.try_get("agent_name")?,
                    tickets: n("tickets")?,
                    resolved: n("resolved")?,
                    open: n("open")?,
                    first_response_minutes: r.try_get("frm")?,
                    resolution_minutes: r.try_get("rm")?,
                    first_response_breaches: n("frb")?,
                    resolution_breaches: n("rb")?,
                })
            })
            .collect()
    }

    /// Tickets and breaches by category and priority, opened since `since`.
    pub async fn breach_report(&self, since: DateTime<Utc>) -> StoreResult<Vec<BreachRow>> {
        let rows = sqlx::query(
            "SELECT category, priority, COUNT(*) AS tickets, \
             SUM(CASE WHEN resolved_at IS NULL AND status <> 'closed' THEN 1 ELSE 0 END) AS open, \
             CAST(SUM(first_response_breached) AS BIGINT) AS frb, CAST(SUM(resolution_breached) AS BIGINT) AS rb \
             FROM tickets WHERE opened_at >= $1 GROUP BY category, priority",
        )
        .bind(to_micros(since))
        .fetch_all(self.reader())
        .await?;
        rows.iter()
            .map(|r| {
                let n = |c: &'static str| -> StoreResult<i64> {
                    Ok(r.try_get::<Option<i64>, _>(c)?.unwrap_or(0))
                };
                Ok(BreachRow {
                    category: parsed(r, "category")?,
                    priority: parsed(r, "priority")?,
                    tickets: n("tickets")?,
                    open: n("open")?,
                    first_response_breaches: n("frb")?,
                    resolution_breaches: n("rb")?,
                })
            })
            .collect()
    }

    /// Churned customers by loss reason and the category of their latest complaint.
    pub async fn loss_reasons_by_category(
        &self,
    ) -> StoreResult<Vec<(Option<String>, Option<TicketCategory>, i64)>> {
        let rows = sqlx::query(
            "SELECT l.loss_reason, f.last_category, COUNT(*) AS n FROM customer_lifecycle l \
             LEFT JOIN customer_feedback f ON f.customer_id = l.customer_id WHERE l.stage = 'churned' \
             GROUP BY l.loss_reason, f.last_category ORDER BY n DESC",
        )
        .fetch_all(self.pool())
        .await?;
        rows.iter()
            .map(|r| {
                Ok((
                    r.try_get("loss_reason")?,
                    opt_parsed(r, "last_category")?,
                    r.try_get("n")?,
                ))
            })
            .collect()
    }
}

/// A time from stored micros (for callers with raw columns).
pub fn at(m: i64) -> StoreResult<DateTime<Utc>> {
    from_micros(m)
}

/// What the follow-up rules need to know of a customer.
#[derive(Debug, Clone, PartialEq)]
pub struct CustomerBrief {
    pub name: String,
    pub locale: Option<String>,
    pub owner_id: Option<StaffUserId>,
    pub stage: Option<String>,
    pub spend_minor: i64,
}

const BRIEF_SQL: &str = "SELECT c.name, c.locale, c.owner_id, l.stage, COALESCE(s.total_spend_minor, 0) AS spend \
     FROM customers c LEFT JOIN customer_lifecycle l ON l.customer_id = c.id \
     LEFT JOIN customer_stats s ON s.customer_id = c.id WHERE c.id = $1";

fn brief_from_row(r: &AnyRow) -> StoreResult<CustomerBrief> {
    Ok(CustomerBrief {
        name: r.try_get("name")?,
        locale: r.try_get("locale")?,
        owner_id: r.try_get::<Option<i64>, _>("owner_id")?.map(StaffUserId),
        stage: r.try_get("stage")?,
        spend_minor: r.try_get("spend")?,
    })
}

impl WriteTx<'_> {
    pub async fn customer_brief_in(&mut self, c: CustomerId) -> StoreResult<CustomerBrief> {
        let row = sqlx::query(BRIEF_SQL)
            .bind(c.0)
            .fetch_optional(&mut *self.tx)
            .await?
            .ok_or(StoreError::NotFound { what: "customer" })?;
        brief_from_row(&row)
    }

    /// Marks a customer's open tasks from `source` done (the contact they asked for happened).
    pub async fn finish_tasks(
        &mut self,
        customer: CustomerId,
        source: TaskSource,
        at: DateTime<Utc>,
    ) -> StoreResult<u64> {
        Ok(sqlx::query(
            "UPDATE tasks SET status = 'done', done_at = $3, updated_at = $3 \
             WHERE customer_id = $1 AND source = $2 AND status = 'open'",
        )
        .bind(customer.0)
        .bind(source.as_str())
        .bind(to_micros(at))
        .execute(&mut *self.tx)
        .await?
        .rows_affected())
    }
}

impl Store {
    pub async fn customer_brief(&self, c: CustomerId) -> StoreResult<CustomerBrief> {
        let row = sqlx::query(BRIEF_SQL)
            .bind(c.0)
            .fetch_optional(self.pool())
            .await?
            .ok_or(StoreError::NotFound { what: "customer" })?;
        brief_from_row(&row)
    }
}

impl WriteTx<'_> {
    /// Sets an invitation's token hash (the token is derived from its id).
    pub async fn set_invitation_hash(&mut self, id: InvitationId, hash: &str) -> StoreResult<()> {
        sqlx::query("UPDATE survey_invitations SET token_hash = $2 WHERE id = $1")
            .bind(id.0)
            .bind(hash.to_owned())
            .execute(&mut *self.tx)
            .await?;
        Ok(())
    }
}
