//! The service pages: the ticket queue with its SLA timers (`/tickets`), a ticket with its
//! conversation and workflow (`/tickets/{id}`), my tasks and the overdue report (`/tasks`),
//! the surveys with their builder and results (`/surveys`, `/surveys/{id}`), the service
//! report with the settings and the business calendar (`/service`), the service panel of
//! the 360° page, and the public answer page a customer opens from an invitation
//! (`/s/{token}`), without signing in.

use std::collections::{BTreeMap, HashMap};

use axum::Form;
use axum::extract::{Multipart, Path};
use axum::http::StatusCode;
use axum::response::Response;
use chrono::{DateTime, NaiveDate, Utc};
use serde::Serialize;
use tenure_app::model::{ServqualReport, Task, TaskFilter, TicketFilter};
use tenure_app::service::{SlaTimer, TicketSummary};
use tenure_app::{AppError, PageRequest};
use tenure_domain::access::Permission;
use tenure_domain::calendar::{CalendarDay, OpenRange, WEEKDAYS};
use tenure_domain::changes::Actor;
use tenure_domain::customer::Channel;
use tenure_domain::ids::{CustomerId, StaffUserId, SurveyId, TaskId, TicketId};
use tenure_domain::service::{
    Attachment, MessageInput, MessageKind, ServiceSettings, TaskInput, TaskPatch, TaskStatus,
    TicketCategory, TicketInput, TicketPatch, TicketPriority, TicketStatus,
};
use tenure_domain::survey::{
    AnswerInput, ChoiceOption, Dimension, Importance, LOCALES, Localized, Question, QuestionKind,
    SurveyDefinition, SurveyKind, localized,
};

use super::customers::see_other;
use super::{field_errors, names, options, param, path_id, query_pairs};
use crate::i18n::Lang;
use crate::render::{app_error, error_page, page, ser};
use crate::session::{Ctx, field, same_origin};

/// Business minutes as hours and minutes: `3 h 20 min`.
fn span(ctx: &Ctx, minutes: i64) -> String {
    let m = minutes.abs();
    ctx.t_with(
        "service-span",
        &[("h", (m / 60).into()), ("m", (m % 60).into())],
    )
}

#[derive(Serialize)]
struct TimerView {
    /// `met`, `breached`, `paused`, `warn` (less than an hour left), `running`, `none`.
    state: &'static str,
    /// The business time left or overdue, as words.
    left: String,
    due: Option<String>,
}

/// The business's time zone: times on the service pages read as the business reads them
/// (and as the task form takes them).
pub(crate) struct Zone(chrono_tz::Tz);

impl Zone {
    pub(crate) async fn of(ctx: &Ctx, actor: &Actor) -> Result<Zone, Response> {
        let settings = ctx
            .state
            .app
            .service_settings(actor)
            .await
            .map_err(|e| app_error(ctx, e))?;
        Ok(Zone(
            tenure_domain::calendar::parse_time_zone(&settings.calendar.time_zone)
                .unwrap_or(chrono_tz::UTC),
        ))
    }

    /// `t` with the zone's offset, for the templates' `datetime` and `date` filters.
    pub(crate) fn tz(&self) -> chrono_tz::Tz {
        self.0
    }

    pub(crate) fn at(&self, t: DateTime<Utc>) -> String {
        t.with_timezone(&self.0).to_rfc3339()
    }
}

fn timer_view(ctx: &Ctx, zone: &Zone, t: &SlaTimer) -> TimerView {
    let state = match (t.met_at, t.minutes_left) {
        (Some(_), _) if t.breached => "breached",
        (Some(_), _) => "met",
        (None, _) if t.breached => "breached",
        (None, _) if t.paused => "paused",
        (None, Some(m)) if m < 60 => "warn",
        (None, Some(_)) => "running",
        (None, None) => "none",
    };
    TimerView {
        state,
        left: t.minutes_left.map(|m| span(ctx, m)).unwrap_or_default(),
        due: t.due.map(|d| zone.at(d)),
    }
}

#[derive(Serialize)]
struct TicketRow {
    id: i64,
    subject: String,
    customer_id: i64,
    customer: String,
    category: String,
    priority: String,
    status: String,
    channel: String,
    assignee: String,
    opened_at: String,
    first_response: TimerView,
    resolution: TimerView,
}

/// Names of staff by id, for showing who a ticket or task is with.
type Staff = Vec<(StaffUserId, String)>;

fn staff_name(staff: &Staff, id: Option<StaffUserId>) -> String {
    id.and_then(|i| staff.iter().find(|(s, _)| *s == i))
        .map(|(_, n)| n.clone())
        .unwrap_or_default()
}

fn ticket_row(
    ctx: &Ctx,
    s: &TicketSummary,
    names: &HashMap<CustomerId, String>,
    staff: &Staff,
    zone: &Zone,
) -> TicketRow {
    let t = &s.ticket;
    TicketRow {
        id: t.id.0,
        subject: t.subject.clone(),
        customer_id: t.customer_id.0,
        customer: names.get(&t.customer_id).cloned().unwrap_or_default(),
        category: t.category.to_string(),
        priority: t.priority.to_string(),
        status: t.status.to_string(),
        channel: t.channel.to_string(),
        assignee: staff_name(staff, t.assignee_id),
        opened_at: zone.at(t.opened_at),
        first_response: timer_view(ctx, zone, &s.first_response),
        resolution: timer_view(ctx, zone, &s.resolution),
    }
}

#[derive(Serialize)]
struct TaskRow {
    id: i64,
    title: String,
    note: String,
    customer_id: Option<i64>,
    customer: String,
    ticket_id: Option<i64>,
    assignee: String,
    due_at: String,
    overdue: bool,
    status: String,
    source: String,
}

fn task_row(
    t: &Task,
    names: &HashMap<CustomerId, String>,
    staff: &Staff,
    now: DateTime<Utc>,
    zone: &Zone,
) -> TaskRow {
    TaskRow {
        id: t.id.0,
        title: t.title.clone(),
        note: t.note.clone(),
        customer_id: t.customer_id.map(|c| c.0),
        customer: t
            .customer_id
            .and_then(|c| names.get(&c).cloned())
            .unwrap_or_default(),
        ticket_id: t.ticket_id.map(|i| i.0),
        assignee: staff_name(staff, t.assignee_id),
        due_at: zone.at(t.due_at),
        overdue: t.status == TaskStatus::Open && t.due_at < now,
        status: t.status.to_string(),
        source: t.source.to_string(),
    }
}

/// The acting user alone, when the directory is empty (a token, or staff without names).
fn only_me(actor: &Actor) -> Staff {
    tenure_app::service::staff_of(actor)
        .map(|id| (id, actor.name.clone()))
        .into_iter()
        .collect()
}

async fn directory(ctx: &Ctx, actor: &Actor) -> Result<Staff, Response> {
    // An analyst's service report has no one to assign work to.
    if !actor.allows(Permission::ReadCustomers) {
        return Ok(only_me(actor));
    }
    match ctx.state.app.staff_directory(actor).await {
        Ok(s) if !s.is_empty() => Ok(s),
        Ok(_) => Ok(only_me(actor)),
        Err(e) => Err(app_error(ctx, e)),
    }
}

// -- the ticket queue ------------------------------------------------------------------------

/// A new-ticket form's values as typed.
#[derive(Serialize, Default)]
struct TicketForm {
    customer_id: String,
    subject: String,
    description: String,
    category: String,
    priority: String,
    channel: String,
    assignee_id: String,
    errors: BTreeMap<String, String>,
}

pub async fn tickets(ctx: Ctx) -> Response {
    let actor = step!(ctx.allowed(Permission::ReadCustomers));
    let pairs = query_pairs(&ctx.query);
    let form = TicketForm {
        customer_id: param(&pairs, "customer").unwrap_or_default().to_owned(),
        category: "other".into(),
        priority: "normal".into(),
        channel: "phone".into(),
        ..TicketForm::default()
    };
    queue(&ctx, &actor, form, StatusCode::OK).await
}

async fn queue(ctx: &Ctx, actor: &Actor, form: TicketForm, status: StatusCode) -> Response {
    let app = &ctx.state.app;
    let pairs = query_pairs(&ctx.query);
    let view = param(&pairs, "view").unwrap_or("active");
    let me = tenure_app::service::staff_of(actor);
    let mut filter = TicketFilter {
        status: param(&pairs, "status").and_then(|s| s.parse().ok()),
        category: param(&pairs, "category").and_then(|s| s.parse().ok()),
        customer: param(&pairs, "customer").and_then(path_id).map(CustomerId),
        ..TicketFilter::default()
    };
    match view {
        "mine" => {
            filter.assignee = me;
            filter.active = true;
        }
        "breached" => {
            filter.breached = true;
            filter.active = true;
        }
        "all" => {}
        _ => filter.active = filter.status.is_none(),
    }
    let request = PageRequest {
        cursor: param(&pairs, "cursor").map(str::to_owned),
        limit: Some(50),
    };
    let listed = fetch!(ctx, app.tickets(actor, &filter, &request).await);
    let zone = step!(Zone::of(ctx, actor).await);
    let staff = step!(directory(ctx, actor).await);
    let names = step!(
        names(
            ctx,
            actor,
            listed.items.iter().map(|s| s.ticket.customer_id)
        )
        .await
    );
    let rows: Vec<TicketRow> = listed
        .items
        .iter()
        .map(|s| ticket_row(ctx, s, &names, &staff, &zone))
        .collect();
    let more = listed
        .next_cursor
        .map(|c| super::next_page("/tickets", &pairs, c));
    page(
        ctx,
        status,
        "tickets.html",
        Some("rows"),
        minijinja::context! {
            rows => ser(&rows),
            more,
            view,
            status_filter => filter.status.map(|s| s.to_string()),
            category_filter => filter.category.map(|s| s.to_string()),
            statuses => options(TicketStatus::ALL),
            categories => options(TicketCategory::ALL),
            priorities => options(TicketPriority::ALL),
            channels => options(Channel::ALL),
            staff => staff.iter().map(|(i, n)| (i.0, n.clone())).collect::<Vec<_>>(),
            form => ser(&form),
            may_write => actor.allows(Permission::WriteCustomers),
        },
    )
}

pub async fn create_ticket(ctx: Ctx, Form(form): Form<Vec<(String, String)>>) -> Response {
    let actor = step!(ctx.form_actor(&form, Permission::WriteCustomers));
    let get = |n: &str| field(&form, n).trim().to_owned();
    let typed = TicketForm {
        customer_id: get("customer_id"),
        subject: get("subject"),
        description: field(&form, "description").to_owned(),
        category: get("category"),
        priority: get("priority"),
        channel: get("channel"),
        assignee_id: get("assignee_id"),
        errors: BTreeMap::new(),
    };
    let mut errors = BTreeMap::new();
    let customer_id = match typed.customer_id.parse::<i64>() {
        Ok(c) if c > 0 => c,
        _ => {
            errors.insert("customer_id".into(), ctx.t("service-customer-number"));
            0
        }
    };
    let input = TicketInput {
        external_id: None,
        customer_id,
        subject: typed.subject.clone(),
        description: typed.description.clone(),
        category: typed.category.parse().unwrap_or(TicketCategory::Other),
        priority: typed.priority.parse().unwrap_or(TicketPriority::Normal),
        channel: typed.channel.parse().unwrap_or(Channel::Phone),
        assignee_id: typed.assignee_id.parse().ok(),
        opened_at: None,
    };
    let result = if errors.is_empty() {
        ctx.state.app.create_ticket(&actor, input).await
    } else {
        Err(AppError::Invalid(tenure_domain::validation::Invalid(
            Vec::new(),
        )))
    };
    match result {
        Ok(t) => see_other(&format!("/tickets/{}", t.id.0)),
        Err(e) => match field_errors(&e) {
            Some(more) => {
                errors.extend(more);
                let typed = TicketForm { errors, ..typed };
                queue(&ctx, &actor, typed, StatusCode::UNPROCESSABLE_ENTITY).await
            }
            None => app_error(&ctx, e),
        },
    }
}

// -- a ticket --------------------------------------------------------------------------------

pub async fn ticket(ctx: Ctx, Path(raw): Path<String>) -> Response {
    let actor = step!(ctx.allowed(Permission::ReadCustomers));
    let Some(id) = path_id(&raw) else {
        return ctx.not_found();
    };
    show_ticket(&ctx, &actor, TicketId(id), BTreeMap::new(), StatusCode::OK).await
}

async fn show_ticket(
    ctx: &Ctx,
    actor: &Actor,
    id: TicketId,
    errors: BTreeMap<String, String>,
    status: StatusCode,
) -> Response {
    let app = &ctx.state.app;
    let v = fetch!(ctx, app.ticket(actor, id).await);
    let zone = step!(Zone::of(ctx, actor).await);
    let staff = step!(directory(ctx, actor).await);
    let names = step!(names(ctx, actor, std::iter::once(v.summary.ticket.customer_id)).await);
    let now = app.now();
    let row = ticket_row(ctx, &v.summary, &names, &staff, &zone);
    let t = &v.summary.ticket;
    let messages: Vec<_> = v
        .messages
        .iter()
        .map(|m| {
            minijinja::context! {
                kind => m.kind.to_string(),
                body => m.body.clone(),
                author => m.author_name.clone(),
                at => zone.at(m.at),
                attachments => m.attachments.iter().map(|a| (a.name.clone(), a.url.clone())).collect::<Vec<_>>(),
            }
        })
        .collect();
    let events: Vec<(String, String, String, String)> = v
        .events
        .iter()
        .map(|e| {
            (
                zone.at(e.at),
                e.from.map(|f| f.to_string()).unwrap_or_default(),
                e.to.to_string(),
                e.actor_name.clone(),
            )
        })
        .collect();
    let tasks: Vec<TaskRow> = v
        .tasks
        .iter()
        .map(|k| task_row(k, &names, &staff, now, &zone))
        .collect();
    let invitations: Vec<(String, String, Option<String>)> = v
        .invitations
        .iter()
        .map(|i| {
            (
                i.url.clone(),
                zone.at(i.expires_at),
                i.answered_at.map(|a| zone.at(a)),
            )
        })
        .collect();
    page(
        ctx,
        status,
        "ticket.html",
        None,
        minijinja::context! {
            tk => ser(&row),
            version => t.version,
            assignee_id => t.assignee_id.map(|a| a.0),
            response_id => t.response_id.map(|r| r.0),
            resolved_at => t.resolved_at.map(|r| r.to_rfc3339()),
            first_response_at => t.first_response_at.map(|r| r.to_rfc3339()),
            paused => t.paused_at.is_some(),
            messages, events, tasks => ser(&tasks), invitations,
            next => options(&v.next),
            categories => options(TicketCategory::ALL),
            priorities => options(TicketPriority::ALL),
            staff => staff.iter().map(|(i, n)| (i.0, n.clone())).collect::<Vec<_>>(),
            errors,
            may_write => actor.allows(Permission::WriteCustomers),
        },
    )
}

/// The ticket page's forms: a status move, a reply or note, the ticket's fields.
pub async fn ticket_action(
    ctx: Ctx,
    Path(raw): Path<String>,
    Form(form): Form<Vec<(String, String)>>,
) -> Response {
    let actor = step!(ctx.form_actor(&form, Permission::WriteCustomers));
    let Some(id) = path_id(&raw) else {
        return ctx.not_found();
    };
    let app = &ctx.state.app;
    let id = TicketId(id);
    let version = field(&form, "version").parse::<i64>().ok();
    let result = match field(&form, "action") {
        "move" => {
            let Ok(to) = field(&form, "status").parse::<TicketStatus>() else {
                return ctx.not_found();
            };
            let patch = TicketPatch {
                status: Some(to),
                ..TicketPatch::default()
            };
            app.update_ticket(&actor, id, patch, version)
                .await
                .map(|_| ())
        }
        "edit" => {
            let assignee = field(&form, "assignee_id");
            let patch = TicketPatch {
                category: field(&form, "category").parse().ok(),
                priority: field(&form, "priority").parse().ok(),
                assignee_id: Some(assignee.parse::<i64>().ok()),
                ..TicketPatch::default()
            };
            app.update_ticket(&actor, id, patch, version)
                .await
                .map(|_| ())
        }
        "message" => {
            let name = field(&form, "attachment_name").trim();
            let url = field(&form, "attachment_url").trim();
            let attachments = if url.is_empty() {
                Vec::new()
            } else {
                vec![Attachment {
                    name: if name.is_empty() {
                        url.to_owned()
                    } else {
                        name.to_owned()
                    },
                    url: url.to_owned(),
                }]
            };
            let input = MessageInput {
                kind: field(&form, "kind").parse().unwrap_or(MessageKind::Note),
                body: field(&form, "body").to_owned(),
                attachments,
            };
            app.add_ticket_message(&actor, id, input).await.map(|_| ())
        }
        _ => return ctx.not_found(),
    };
    match result {
        Ok(()) => see_other(&format!("/tickets/{}", id.0)),
        Err(e) => match field_errors(&e) {
            Some(errors) => {
                show_ticket(&ctx, &actor, id, errors, StatusCode::UNPROCESSABLE_ENTITY).await
            }
            None => app_error(&ctx, e),
        },
    }
}

// -- tasks -----------------------------------------------------------------------------------

#[derive(Serialize, Default)]
struct TaskForm {
    title: String,
    note: String,
    customer_id: String,
    due_at: String,
    assignee_id: String,
    errors: BTreeMap<String, String>,
}

pub async fn tasks(ctx: Ctx) -> Response {
    let actor = step!(ctx.allowed(Permission::ReadCustomers));
    let pairs = query_pairs(&ctx.query);
    let form = TaskForm {
        customer_id: param(&pairs, "customer").unwrap_or_default().to_owned(),
        ..TaskForm::default()
    };
    task_page(&ctx, &actor, form, StatusCode::OK).await
}

async fn task_page(ctx: &Ctx, actor: &Actor, form: TaskForm, status: StatusCode) -> Response {
    let app = &ctx.state.app;
    let pairs = query_pairs(&ctx.query);
    let now = app.now();
    let me = tenure_app::service::staff_of(actor);
    let view = param(&pairs, "view").unwrap_or(if me.is_some() { "mine" } else { "open" });
    let filter = TaskFilter {
        assignee: if view == "mine" { me } else { None },
        status: if view == "done" {
            Some(TaskStatus::Done)
        } else {
            Some(TaskStatus::Open)
        },
        overdue_at: (view == "overdue").then_some(now),
        ..TaskFilter::default()
    };
    let request = PageRequest {
        cursor: param(&pairs, "cursor").map(str::to_owned),
        limit: Some(50),
    };
    let listed = fetch!(ctx, app.tasks(actor, &filter, &request).await);
    let zone = step!(Zone::of(ctx, actor).await);
    let staff = step!(directory(ctx, actor).await);
    let names = step!(
        names(
            ctx,
            actor,
            listed.items.iter().filter_map(|t| t.customer_id)
        )
        .await
    );
    let rows: Vec<TaskRow> = listed
        .items
        .iter()
        .map(|t| task_row(t, &names, &staff, now, &zone))
        .collect();
    let report = if actor.allows(Permission::ReadAggregates) {
        fetch!(ctx, app.overdue_tasks(actor).await)
            .into_iter()
            .map(|r| {
                (
                    r.assignee_name.unwrap_or_default(),
                    r.open,
                    r.overdue,
                    r.oldest_due.map(|d| zone.at(d)),
                )
            })
            .collect()
    } else {
        Vec::new()
    };
    let more = listed
        .next_cursor
        .map(|c| super::next_page("/tasks", &pairs, c));
    page(
        ctx,
        status,
        "tasks.html",
        None,
        minijinja::context! {
            rows => ser(&rows), more, view, report,
            staff => staff.iter().map(|(i, n)| (i.0, n.clone())).collect::<Vec<_>>(),
            me => me.map(|m| m.0),
            form => ser(&form),
            time_zone => fetch!(ctx, app.service_settings(actor).await).calendar.time_zone,
            may_write => actor.allows(Permission::WriteCustomers),
        },
    )
}

/// A `datetime-local` value (`2026-10-10T09:30`) in the business's time zone.
fn local_time(raw: &str, tz: &str) -> Option<DateTime<Utc>> {
    let naive = chrono::NaiveDateTime::parse_from_str(raw.trim(), "%Y-%m-%dT%H:%M").ok()?;
    let zone = tenure_domain::calendar::parse_time_zone(tz).ok()?;
    naive
        .and_local_timezone(zone)
        .earliest()
        .map(|t| t.with_timezone(&Utc))
}

pub async fn create_task(ctx: Ctx, Form(form): Form<Vec<(String, String)>>) -> Response {
    let actor = step!(ctx.form_actor(&form, Permission::WriteCustomers));
    let app = &ctx.state.app;
    let get = |n: &str| field(&form, n).trim().to_owned();
    let typed = TaskForm {
        title: get("title"),
        note: field(&form, "note").to_owned(),
        customer_id: get("customer_id"),
        due_at: get("due_at"),
        assignee_id: get("assignee_id"),
        errors: BTreeMap::new(),
    };
    let tz = fetch!(&ctx, app.service_settings(&actor).await)
        .calendar
        .time_zone;
    let mut errors = BTreeMap::new();
    let due = local_time(&typed.due_at, &tz);
    if due.is_none() {
        errors.insert("due_at".to_owned(), ctx.t("service-due-needed"));
    }
    let customer_id = match typed.customer_id.as_str() {
        "" => None,
        c => match c.parse::<i64>() {
            Ok(c) if c > 0 => Some(c),
            _ => {
                errors.insert("customer_id".to_owned(), ctx.t("service-customer-number"));
                None
            }
        },
    };
    let result = match due {
        Some(due_at) if errors.is_empty() => {
            app.create_task(
                &actor,
                TaskInput {
                    title: typed.title.clone(),
                    note: typed.note.clone(),
                    customer_id,
                    ticket_id: None,
                    assignee_id: typed.assignee_id.parse().ok(),
                    due_at,
                    remind_before_minutes: None,
                },
            )
            .await
        }
        _ => Err(AppError::Invalid(tenure_domain::validation::Invalid(
            Vec::new(),
        ))),
    };
    match result {
        Ok(_) => see_other("/tasks"),
        Err(e) => match field_errors(&e) {
            Some(more) => {
                errors.extend(more);
                task_page(
                    &ctx,
                    &actor,
                    TaskForm { errors, ..typed },
                    StatusCode::UNPROCESSABLE_ENTITY,
                )
                .await
            }
            None => app_error(&ctx, e),
        },
    }
}

/// A task's buttons: done, cancelled, open again.
pub async fn task_action(
    ctx: Ctx,
    Path(raw): Path<String>,
    Form(form): Form<Vec<(String, String)>>,
) -> Response {
    let actor = step!(ctx.form_actor(&form, Permission::WriteCustomers));
    let Some(id) = path_id(&raw) else {
        return ctx.not_found();
    };
    let Ok(status) = field(&form, "status").parse::<TaskStatus>() else {
        return ctx.not_found();
    };
    let patch = TaskPatch {
        status: Some(status),
        ..TaskPatch::default()
    };
    match ctx.state.app.update_task(&actor, TaskId(id), patch).await {
        Ok(_) => {
            let back = field(&form, "back");
            see_other(if back.starts_with('/') && !back.starts_with("//") {
                back
            } else {
                "/tasks"
            })
        }
        Err(e) => app_error(&ctx, e),
    }
}

// -- surveys ---------------------------------------------------------------------------------

pub async fn surveys(ctx: Ctx) -> Response {
    let actor = step!(ctx.allowed(Permission::ReadAggregates));
    survey_list(&ctx, &actor, BTreeMap::new(), String::new(), StatusCode::OK).await
}

async fn survey_list(
    ctx: &Ctx,
    actor: &Actor,
    errors: BTreeMap<String, String>,
    name: String,
    status: StatusCode,
) -> Response {
    let list = fetch!(ctx, ctx.state.app.surveys(actor).await);
    let rows: Vec<(i64, String, String, bool, usize, String)> = list
        .iter()
        .map(|s| {
            (
                s.id.0,
                s.name.clone(),
                s.kind.to_string(),
                s.active,
                s.definition.questions.len(),
                s.updated_at.to_rfc3339(),
            )
        })
        .collect();
    page(
        ctx,
        status,
        "surveys.html",
        None,
        minijinja::context! {
            rows, errors, name,
            kinds => options(SurveyKind::ALL),
            may_write => actor.allows(Permission::WriteCatalog),
        },
    )
}

pub async fn create_survey(ctx: Ctx, Form(form): Form<Vec<(String, String)>>) -> Response {
    let actor = step!(ctx.form_actor(&form, Permission::WriteCatalog));
    let kind = field(&form, "kind").parse().unwrap_or(SurveyKind::Nps);
    let name = field(&form, "name").to_owned();
    match ctx
        .state
        .app
        .create_survey(&actor, &name, kind, None, true)
        .await
    {
        Ok(s) => see_other(&format!("/surveys/{}", s.id.0)),
        Err(e) => match field_errors(&e) {
            Some(errors) => {
                survey_list(&ctx, &actor, errors, name, StatusCode::UNPROCESSABLE_ENTITY).await
            }
            None => app_error(&ctx, e),
        },
    }
}

/// One question as the templates show it, in the page's language.
#[derive(Serialize)]
struct QuestionView {
    id: String,
    kind: String,
    text: String,
    min: i64,
    max: i64,
    /// The scale's points, low to high.
    points: Vec<i64>,
    low: String,
    high: String,
    options: Vec<(String, String)>,
    required: bool,
    /// SERVQUAL items ask for an expectation too.
    servqual: bool,
    dimension: Option<String>,
}

fn question_views(def: &SurveyDefinition, kind: SurveyKind, locale: &str) -> Vec<QuestionView> {
    def.questions
        .iter()
        .map(|q| QuestionView {
            id: q.id.clone(),
            kind: q.kind.to_string(),
            text: localized(&q.text, locale).to_owned(),
            min: q.min,
            max: q.max,
            points: if q.kind == QuestionKind::Scale && q.max >= q.min && q.max - q.min <= 20 {
                (q.min..=q.max).collect()
            } else {
                Vec::new()
            },
            low: q
                .labels
                .first()
                .map(|l| localized(l, locale).to_owned())
                .unwrap_or_default(),
            high: q
                .labels
                .get(1)
                .map(|l| localized(l, locale).to_owned())
                .unwrap_or_default(),
            options: q
                .options
                .iter()
                .map(|o| (o.id.clone(), localized(&o.label, locale).to_owned()))
                .collect(),
            required: q.required,
            servqual: kind == SurveyKind::Servqual && q.dimension.is_some(),
            dimension: q.dimension.map(|d| d.to_string()),
        })
        .collect()
}

/// The answers of a survey form: `q.{id}` (a scale value, a choice, a text), `e.{id}` (a
/// SERVQUAL expectation) and `w.{dimension}` (the importance split, when given).
fn read_answers(
    ctx: &Ctx,
    def: &SurveyDefinition,
    form: &[(String, String)],
) -> Result<(Vec<AnswerInput>, Option<Importance>), BTreeMap<String, String>> {
    let mut errors = BTreeMap::new();
    let mut answers = Vec::new();
    for q in &def.questions {
        let raw = field(form, &format!("q.{}", q.id)).trim();
        let mut a = AnswerInput {
            question: q.id.clone(),
            ..AnswerInput::default()
        };
        match q.kind {
            QuestionKind::Scale => {
                if !raw.is_empty() {
                    match raw.parse::<i64>() {
                        Ok(v) => a.value = Some(v),
                        Err(_) => {
                            errors.insert(q.id.clone(), ctx.t("service-whole-number"));
                        }
                    }
                }
                let e = field(form, &format!("e.{}", q.id)).trim();
                if !e.is_empty() {
                    a.expectation = e.parse().ok();
                }
            }
            QuestionKind::Choice => a.choice = (!raw.is_empty()).then(|| raw.to_owned()),
            QuestionKind::Text => a.text = (!raw.is_empty()).then(|| raw.to_owned()),
        }
        if a.value.is_some() || a.expectation.is_some() || a.choice.is_some() || a.text.is_some() {
            answers.push(a);
        }
    }
    let weights: Vec<(Dimension, Option<i64>)> = Dimension::ALL
        .iter()
        .map(|d| {
            (
                *d,
                field(form, &format!("w.{d}")).trim().parse::<i64>().ok(),
            )
        })
        .collect();
    let importance = weights.iter().any(|(_, w)| w.is_some()).then(|| {
        let w = |d: Dimension| {
            weights
                .iter()
                .find(|(x, _)| *x == d)
                .and_then(|(_, w)| *w)
                .unwrap_or(0)
        };
        Importance {
            tangibles: w(Dimension::Tangibles),
            reliability: w(Dimension::Reliability),
            responsiveness: w(Dimension::Responsiveness),
            assurance: w(Dimension::Assurance),
            empathy: w(Dimension::Empathy),
        }
    });
    if errors.is_empty() {
        Ok((answers, importance))
    } else {
        Err(errors)
    }
}

/// Field errors of a recorded answer, keyed as the form's questions are: `answers[2].value`
/// becomes the id of the third question.
fn answer_errors(
    def: &SurveyDefinition,
    e: BTreeMap<String, String>,
    answers: &[AnswerInput],
) -> BTreeMap<String, String> {
    e.into_iter()
        .map(|(k, v)| {
            let key = k
                .strip_prefix("answers[")
                .and_then(|r| r.split_once(']'))
                .and_then(|(i, _)| i.parse::<usize>().ok())
                .and_then(|i| answers.get(i))
                .map(|a| a.question.clone())
                .or_else(|| {
                    def.questions
                        .iter()
                        .find(|q| k.contains(&q.id))
                        .map(|q| q.id.clone())
                })
                .unwrap_or(k);
            (key, v)
        })
        .collect()
}

/// The builder's rows: one per question and a blank one to add.
#[derive(Serialize)]
struct BuilderRow {
    id: String,
    kind: String,
    text: Vec<(String, String)>,
    min: String,
    max: String,
    /// One line per option: `id | en | zh-CN | zh-TW`.
    options: String,
    required: bool,
    dimension: String,
}

fn builder_rows(def: &SurveyDefinition) -> Vec<BuilderRow> {
    let text = |l: &Localized| -> Vec<(String, String)> {
        LOCALES
            .iter()
            .map(|loc| ((*loc).to_owned(), l.get(*loc).cloned().unwrap_or_default()))
            .collect()
    };
    let mut rows: Vec<BuilderRow> = def
        .questions
        .iter()
        .map(|q| BuilderRow {
            id: q.id.clone(),
            kind: q.kind.to_string(),
            text: text(&q.text),
            min: q.min.to_string(),
            max: q.max.to_string(),
            options: q
                .options
                .iter()
                .map(|o| {
                    std::iter::once(o.id.clone())
                        .chain(
                            LOCALES
                                .iter()
                                .map(|l| o.label.get(*l).cloned().unwrap_or_default()),
                        )
                        .collect::<Vec<_>>()
                        .join(" | ")
                })
                .collect::<Vec<_>>()
                .join("\n"),
            required: q.required,
            dimension: q.dimension.map(|d| d.to_string()).unwrap_or_default(),
        })
        .collect();
    rows.push(BuilderRow {
        id: String::new(),
        kind: "scale".into(),
        text: text(&Localized::new()),
        min: "1".into(),
        max: "5".into(),
        options: String::new(),
        required: false,
        dimension: String::new(),
    });
    rows
}

/// The builder form as a definition; the domain checks what it means.
fn read_builder(form: &[(String, String)], old: &SurveyDefinition) -> SurveyDefinition {
    let loc = |prefix: &str| -> Localized {
        LOCALES
            .iter()
            .filter_map(|l| {
                let v = field(form, &format!("{prefix}.{l}")).trim();
                (!v.is_empty()).then(|| ((*l).to_owned(), v.to_owned()))
            })
            .collect()
    };
    let mut questions = Vec::new();
    for i in 0..200 {
        let p = format!("q{i}");
        if !form.iter().any(|(k, _)| k.starts_with(&format!("{p}."))) {
            break;
        }
        let id = field(form, &format!("{p}.id")).trim().to_owned();
        let text = loc(&format!("{p}.text"));
        if id.is_empty() && text.is_empty() {
            continue;
        }
        let previous = old.questions.iter().find(|q| q.id == id);
        let options = field(form, &format!("{p}.options"))
            .lines()
            .filter(|l| !l.trim().is_empty())
            .map(|l| {
                let mut parts = l.split('|').map(str::trim);
                let id = parts.next().unwrap_or_default().to_owned();
                let label = LOCALES
                    .iter()
                    .zip(parts)
                    .filter(|(_, v)| !v.is_empty())
                    .map(|(l, v)| ((*l).to_owned(), v.to_owned()))
                    .collect();
                ChoiceOption { id, label }
            })
            .collect();
        questions.push(Question {
            kind: field(form, &format!("{p}.kind"))
                .parse()
                .unwrap_or(QuestionKind::Text),
            text,
            min: field(form, &format!("{p}.min")).trim().parse().unwrap_or(0),
            max: field(form, &format!("{p}.max")).trim().parse().unwrap_or(0),
            labels: previous.map(|q| q.labels.clone()).unwrap_or_default(),
            options,
            required: !field(form, &format!("{p}.required")).is_empty(),
            dimension: field(form, &format!("{p}.dimension")).parse().ok(),
            id,
        });
    }
    SurveyDefinition {
        title: loc("title"),
        intro: loc("intro"),
        questions,
    }
}

#[derive(Serialize, Default)]
struct Distribution {
    answers: usize,
    /// Score → answers.
    counts: Vec<(i64, usize, u32)>,
    nps: Option<f64>,
    promoters: usize,
    passives: usize,
    detractors: usize,
    mean: Option<f64>,
}

fn distribution(kind: SurveyKind, scores: &[i64]) -> Distribution {
    let (lo, hi) = match kind {
        SurveyKind::Nps => (0, 10),
        SurveyKind::Csat => (1, 5),
        _ => return Distribution::default(),
    };
    let most = (lo..=hi)
        .map(|s| scores.iter().filter(|x| **x == s).count())
        .max()
        .unwrap_or(0)
        .max(1);
    let counts = (lo..=hi)
        .map(|s| {
            let n = scores.iter().filter(|x| **x == s).count();
            (s, n, ((n * 20 / most) * 5) as u32)
        })
        .collect();
    let promoters = scores.iter().filter(|s| **s >= 9).count();
    let passives = scores.iter().filter(|s| (7..=8).contains(*s)).count();
    let detractors = scores.iter().filter(|s| **s <= 6).count();
    Distribution {
        answers: scores.len(),
        counts,
        nps: (kind == SurveyKind::Nps)
            .then(|| {
                tenure_domain::survey::nps(promoters as i64, passives as i64, detractors as i64)
            })
            .flatten(),
        promoters,
        passives,
        detractors,
        mean: (!scores.is_empty()).then(|| scores.iter().sum::<i64>() as f64 / scores.len() as f64),
    }
}

pub async fn survey(ctx: Ctx, Path(raw): Path<String>) -> Response {
    let actor = step!(ctx.allowed(Permission::ReadAggregates));
    let Some(id) = path_id(&raw) else {
        return ctx.not_found();
    };
    show_survey(&ctx, &actor, SurveyId(id), None, StatusCode::OK).await
}

/// What a form of the survey page left to show again: its errors and, for an
/// invitation, the link made.
#[derive(Default)]
struct SurveyNotice {
    errors: BTreeMap<String, String>,
    builder: Option<SurveyDefinition>,
    link: Option<(String, String)>,
    recorded: Option<(i64, Option<i64>)>,
}

async fn show_survey(
    ctx: &Ctx,
    actor: &Actor,
    id: SurveyId,
    notice: Option<SurveyNotice>,
    status: StatusCode,
) -> Response {
    let app = &ctx.state.app;
    let s = fetch!(ctx, app.survey(actor, id).await);
    let zone = step!(Zone::of(ctx, actor).await);
    let notice = notice.unwrap_or_default();
    let pairs = query_pairs(&ctx.query);
    let may_read_customers = actor.allows(Permission::ReadCustomers);
    let responses = if may_read_customers {
        fetch!(
            ctx,
            app.responses(
                actor,
                Some(id),
                None,
                &PageRequest {
                    cursor: None,
                    limit: Some(200)
                }
            )
            .await
        )
        .items
    } else {
        Vec::new()
    };
    let scores: Vec<i64> = responses.iter().filter_map(|r| r.score).collect();
    let dist = distribution(s.kind, &scores);
    let names = if may_read_customers {
        step!(names(ctx, actor, responses.iter().map(|r| r.customer_id)).await)
    } else {
        HashMap::new()
    };
    let latest: Vec<_> = responses
        .iter()
        .take(25)
        .map(|r| {
            minijinja::context! {
                at => zone.at(r.answered_at),
                customer_id => r.customer_id.0,
                customer => names.get(&r.customer_id).cloned().unwrap_or_default(),
                score => r.score,
                group => r.nps_group.map(|g| g.to_string()),
                gap => r.gap,
                comment => r.comment.clone(),
                ticket => r.opened_ticket_id.map(|t| t.0),
                channel => r.channel.map(|c| c.to_string()),
            }
        })
        .collect();
    let servqual = if s.kind == SurveyKind::Servqual {
        let report = fetch!(ctx, app.service_report(actor, 12).await).servqual;
        Some(servqual_view(ctx, &report))
    } else {
        None
    };
    let def = notice.builder.as_ref().unwrap_or(&s.definition);
    let form_locale = param(&pairs, "locale").unwrap_or(ctx.lang.tag()).to_owned();
    page(
        ctx,
        status,
        "survey.html",
        None,
        minijinja::context! {
            id => s.id.0,
            name => s.name.clone(),
            kind => s.kind.to_string(),
            active => s.active,
            title => localized(&s.definition.title, ctx.lang.tag()),
            questions => ser(&question_views(&s.definition, s.kind, ctx.lang.tag())),
            builder => ser(&builder_rows(def)),
            title_text => LOCALES.iter().map(|l| (*l, def.title.get(*l).cloned().unwrap_or_default())).collect::<Vec<_>>(),
            intro_text => LOCALES.iter().map(|l| (*l, def.intro.get(*l).cloned().unwrap_or_default())).collect::<Vec<_>>(),
            dimensions => options(Dimension::ALL),
            question_kinds => options(QuestionKind::ALL),
            dist => ser(&dist),
            latest, servqual => ser(&servqual),
            errors => notice.errors,
            link => notice.link,
            recorded => notice.recorded,
            form_locale,
            channels => options(Channel::ALL),
            may_write => actor.allows(Permission::WriteCustomers),
            may_build => actor.allows(Permission::WriteCatalog),
            may_read_customers,
        },
    )
}

#[derive(Serialize)]
struct ServqualView {
    responses: i64,
    /// Dimension, expectation, perception, gap, and bar widths (0–100 in steps of 5).
    dimensions: Vec<(String, f64, f64, f64, u32, u32)>,
    gap: Option<f64>,
    weighted_gap: Option<f64>,
    items: Vec<(String, String, f64, f64, f64)>,
}

fn servqual_view(ctx: &Ctx, r: &ServqualReport) -> ServqualView {
    let width = |v: f64| -> u32 { (((v / 7.0).clamp(0.0, 1.0) * 20.0).round() as u32) * 5 };
    let template = SurveyKind::Servqual.template();
    let texts: HashMap<&str, &str> = template
        .questions
        .iter()
        .map(|q| (q.id.as_str(), localized(&q.text, ctx.lang.tag())))
        .collect();
    ServqualView {
        responses: r.responses,
        dimensions: Dimension::ALL
            .iter()
            .enumerate()
            .map(|(i, d)| {
                let (e, p) = (r.expectation[i], r.perception[i]);
                (d.to_string(), e, p, p - e, width(e), width(p))
            })
            .collect(),
        gap: r.gap,
        weighted_gap: r.weighted_gap,
        items: r
            .items
            .iter()
            .map(|(q, e, p, _)| {
                (
                    q.clone(),
                    texts
                        .get(q.as_str())
                        .copied()
                        .unwrap_or_default()
                        .to_owned(),
                    *e,
                    *p,
                    p - e,
                )
            })
            .collect(),
    }
}

/// The survey page's forms: invite a customer, record an answer, save the builder, switch
/// the survey on or off.
pub async fn survey_action(
    ctx: Ctx,
    Path(raw): Path<String>,
    Form(form): Form<Vec<(String, String)>>,
) -> Response {
    let actor = step!(ctx.check_form(&form));
    let Some(id) = path_id(&raw) else {
        return ctx.not_found();
    };
    let id = SurveyId(id);
    let app = &ctx.state.app;
    let need = match field(&form, "action") {
        "build" | "toggle" => Permission::WriteCatalog,
        _ => Permission::WriteCustomers,
    };
    if !actor.allows(need) {
        return error_page(
            &ctx,
            StatusCode::FORBIDDEN,
            &ctx.t("error-forbidden-detail"),
        );
    }
    let customer = |errors: &mut BTreeMap<String, String>| match field(&form, "customer_id")
        .trim()
        .parse::<i64>()
    {
        Ok(c) if c > 0 => Some(CustomerId(c)),
        _ => {
            errors.insert("customer_id".into(), ctx.t("service-customer-number"));
            None
        }
    };
    let mut notice = SurveyNotice::default();
    match field(&form, "action") {
        "invite" => {
            if let Some(c) = customer(&mut notice.errors) {
                match app.invite(&actor, id, c, None).await {
                    Ok(link) => notice.link = Some((link.url, link.expires_at.to_rfc3339())),
                    Err(e) => match field_errors(&e) {
                        Some(errs) => notice.errors.extend(errs),
                        None => return app_error(&ctx, e),
                    },
                }
            }
        }
        "record" => {
            let s = fetch!(&ctx, app.survey(&actor, id).await);
            let c = customer(&mut notice.errors);
            match (c, read_answers(&ctx, &s.definition, &form)) {
                (Some(c), Ok((answers, importance))) => {
                    let channel = field(&form, "channel").parse().ok();
                    match app
                        .record_response(
                            &actor,
                            id,
                            c,
                            answers.clone(),
                            importance,
                            None,
                            channel,
                            None,
                        )
                        .await
                    {
                        Ok(a) => {
                            notice.recorded = Some((a.response.0, a.opened_ticket.map(|t| t.0)))
                        }
                        Err(e) => match field_errors(&e) {
                            Some(errs) => {
                                notice
                                    .errors
                                    .extend(answer_errors(&s.definition, errs, &answers))
                            }
                            None => return app_error(&ctx, e),
                        },
                    }
                }
                (_, Err(errs)) => notice.errors.extend(errs),
                (None, Ok(_)) => {}
            }
        }
        "build" => {
            let s = fetch!(&ctx, app.survey(&actor, id).await);
            let def = read_builder(&form, &s.definition);
            let name = Some(field(&form, "name").to_owned());
            match app
                .update_survey(&actor, id, name, Some(def.clone()), None)
                .await
            {
                Ok(_) => return see_other(&format!("/surveys/{}#h-builder", id.0)),
                Err(e) => match field_errors(&e) {
                    Some(errs) => {
                        notice.errors = errs;
                        notice.builder = Some(def);
                    }
                    None => return app_error(&ctx, e),
                },
            }
        }
        "toggle" => {
            let s = fetch!(&ctx, app.survey(&actor, id).await);
            return match app
                .update_survey(&actor, id, None, None, Some(!s.active))
                .await
            {
                Ok(_) => see_other(&format!("/surveys/{}", id.0)),
                Err(e) => app_error(&ctx, e),
            };
        }
        _ => return ctx.not_found(),
    }
    let status = if notice.errors.is_empty() {
        StatusCode::OK
    } else {
        StatusCode::UNPROCESSABLE_ENTITY
    };
    show_survey(&ctx, &actor, id, Some(notice), status).await
}

// -- the public answer page ------------------------------------------------------------------

/// The answer page of an invitation. A rating link (`?score=3`) only pre-selects the answer:
/// the customer confirms it with the button (a mail scanner following the link votes
/// nothing).
pub async fn public_form(mut ctx: Ctx, Path(token): Path<String>) -> Response {
    let app = ctx.state.app.clone();
    let s = match app.public_survey(&token).await {
        Ok(s) => s,
        Err(e) => return public_error(&ctx, e),
    };
    if !ctx.lang_given
        && let Some(l) = Lang::from_tag(&s.locale)
    {
        ctx.lang = l;
    }
    let pairs = query_pairs(&ctx.query);
    let mut chosen: BTreeMap<String, String> = BTreeMap::new();
    if let (Some(score), Some(q)) = (
        param(&pairs, "score").and_then(|v| v.parse::<i64>().ok()),
        s.survey.definition.questions.first(),
    ) && q.kind == QuestionKind::Scale
        && (q.min..=q.max).contains(&score)
    {
        chosen.insert(format!("q.{}", q.id), score.to_string());
    }
    answer_page(&ctx, &s, &token, chosen, BTreeMap::new(), StatusCode::OK)
}

fn answer_page(
    ctx: &Ctx,
    s: &tenure_app::service::PublicSurvey,
    token: &str,
    chosen: BTreeMap<String, String>,
    errors: BTreeMap<String, String>,
    status: StatusCode,
) -> Response {
    let locale = ctx.lang.tag();
    let def = &s.survey.definition;
    page(
        ctx,
        status,
        "answer.html",
        None,
        minijinja::context! {
            token,
            title => localized(&def.title, locale),
            intro => localized(&def.intro, locale),
            name => s.customer_name.clone(),
            questions => ser(&question_views(def, s.survey.kind, locale)),
            servqual => s.survey.kind == SurveyKind::Servqual,
            dimensions => options(Dimension::ALL),
            chosen, errors,
            thanks => false,
        },
    )
}

fn public_error(ctx: &Ctx, e: AppError) -> Response {
    match e {
        AppError::NotFound(_) => {
            error_page(ctx, StatusCode::NOT_FOUND, &ctx.t("answer-link-invalid"))
        }
        AppError::Conflict(_) => error_page(ctx, StatusCode::CONFLICT, &ctx.t("answer-link-used")),
        e => app_error(ctx, e),
    }
}

pub async fn public_answer(
    mut ctx: Ctx,
    Path(token): Path<String>,
    Form(form): Form<Vec<(String, String)>>,
) -> Response {
    if !same_origin(&ctx.headers) {
        return error_page(&ctx, StatusCode::FORBIDDEN, &ctx.t("error-csrf"));
    }
    let app = ctx.state.app.clone();
    let s = match app.public_survey(&token).await {
        Ok(s) => s,
        Err(e) => return public_error(&ctx, e),
    };
    if !ctx.lang_given
        && let Some(l) = Lang::from_tag(&s.locale)
    {
        ctx.lang = l;
    }
    let chosen: BTreeMap<String, String> = form
        .iter()
        .filter(|(k, _)| k.starts_with("q.") || k.starts_with("e.") || k.starts_with("w."))
        .cloned()
        .collect();
    let (answers, importance) = match read_answers(&ctx, &s.survey.definition, &form) {
        Ok(a) => a,
        Err(errors) => {
            return answer_page(
                &ctx,
                &s,
                &token,
                chosen,
                errors,
                StatusCode::UNPROCESSABLE_ENTITY,
            );
        }
    };
    match app
        .answer_by_token(&token, answers.clone(), importance)
        .await
    {
        Ok(_) => page(
            &ctx,
            StatusCode::OK,
            "answer.html",
            None,
            minijinja::context! { thanks => true, name => s.customer_name.clone() },
        ),
        Err(e) => match field_errors(&e) {
            Some(errs) => {
                let errors = answer_errors(&s.survey.definition, errs, &answers);
                answer_page(
                    &ctx,
                    &s,
                    &token,
                    chosen,
                    errors,
                    StatusCode::UNPROCESSABLE_ENTITY,
                )
            }
            None => public_error(&ctx, e),
        },
    }
}

// -- the service report and settings ---------------------------------------------------------

/// The settings form's values as typed.
#[derive(Serialize, Default)]
struct SettingsForm {
    time_zone: String,
    /// Day name, ranges (`09:00-12:00, 13:00-18:00`).
    week: Vec<(String, String)>,
    holidays: String,
    workdays: String,
    workday_hours: String,
    /// Priority, first response, resolution (minutes).
    sla: Vec<(String, String, String)>,
    warn_before_minutes: String,
    callback_after_minutes: String,
    next_contact_days: String,
    thank_you_spend: String,
    csat_after_resolution: bool,
    nps_ticket_at_most: String,
    csat_ticket_at_most: String,
    invitation_days: String,
    errors: BTreeMap<String, String>,
}

fn days_text(days: &[CalendarDay]) -> String {
    days.iter()
        .map(|d| format!("{} {}", d.date, d.name).trim_end().to_owned())
        .collect::<Vec<_>>()
        .join("\n")
}

fn settings_form(s: &ServiceSettings) -> SettingsForm {
    let c = &s.calendar;
    SettingsForm {
        time_zone: c.time_zone.clone(),
        week: WEEKDAYS
            .iter()
            .map(|(d, name)| {
                (
                    (*name).to_owned(),
                    c.week
                        .day(*d)
                        .iter()
                        .map(|r| format!("{}-{}", r.start, r.end))
                        .collect::<Vec<_>>()
                        .join(", "),
                )
            })
            .collect(),
        holidays: days_text(&c.holidays),
        workdays: days_text(&c.workdays),
        workday_hours: c.workday_hours.clone(),
        sla: TicketPriority::ALL
            .iter()
            .map(|p| {
                let policy = s.sla.iter().find(|x| x.priority == *p);
                (
                    p.to_string(),
                    policy
                        .map(|x| x.first_response_minutes.to_string())
                        .unwrap_or_default(),
                    policy
                        .map(|x| x.resolution_minutes.to_string())
                        .unwrap_or_default(),
                )
            })
            .collect(),
        warn_before_minutes: s.warn_before_minutes.to_string(),
        callback_after_minutes: s.callback_after_minutes.to_string(),
        next_contact_days: s.next_contact_days.to_string(),
        thank_you_spend: s.thank_you_spend.to_string(),
        csat_after_resolution: s.csat_after_resolution,
        nps_ticket_at_most: s.nps_ticket_at_most.to_string(),
        csat_ticket_at_most: s.csat_ticket_at_most.to_string(),
        invitation_days: s.invitation_days.to_string(),
        errors: BTreeMap::new(),
    }
}

/// Reads the settings form; every field at fault when a value does not parse (the domain
/// checks the rest).
fn parse_settings(
    ctx: &Ctx,
    form: &[(String, String)],
) -> Result<ServiceSettings, BTreeMap<String, String>> {
    let mut errors = BTreeMap::new();
    let get = |n: &str| field(form, n).trim().to_owned();
    let mut s = ServiceSettings::default();
    s.calendar.time_zone = get("time_zone");
    for (d, name) in WEEKDAYS {
        let raw = get(&format!("week.{name}"));
        let mut ranges = Vec::new();
        for part in raw
            .split([',', '，', ';'])
            .map(str::trim)
            .filter(|p| !p.is_empty())
        {
            match part.split_once('-') {
                Some((a, b)) => ranges.push(OpenRange {
                    start: a.trim().to_owned(),
                    end: b.trim().to_owned(),
                }),
                None => {
                    errors.insert(
                        format!("calendar.week.{name}"),
                        ctx.t("service-ranges-help"),
                    );
                }
            }
        }
        *s.calendar.week.day_mut(d) = ranges;
    }
    let mut days = |name: &str| -> Vec<CalendarDay> {
        let mut out = Vec::new();
        for (i, line) in field(form, name).lines().enumerate() {
            let line = line.trim();
            if line.is_empty() {
                continue;
            }
            let (date, rest) = line.split_once(char::is_whitespace).unwrap_or((line, ""));
            match NaiveDate::parse_from_str(date, "%Y-%m-%d") {
                Ok(date) => out.push(CalendarDay {
                    date,
                    name: rest.trim().to_owned(),
                }),
                Err(_) => {
                    errors.insert(
                        format!("calendar.{name}"),
                        ctx.t_with("service-day-line", &[("line", (i + 1).into())]),
                    );
                }
            }
        }
        out
    };
    s.calendar.holidays = days("holidays");
    s.calendar.workdays = days("workdays");
    s.calendar.workday_hours = get("workday_hours");
    let mut num = |name: &str| -> u64 {
        match get(name).parse::<u64>() {
            Ok(v) => v,
            Err(_) => {
                errors.insert(name.to_owned(), ctx.t("service-whole-number"));
                0
            }
        }
    };
    let mut sla = Vec::new();
    for p in TicketPriority::ALL {
        let first = num(&format!("sla.{p}.first"));
        let resolve = num(&format!("sla.{p}.resolution"));
        sla.push(tenure_domain::service::SlaPolicy {
            priority: *p,
            first_response_minutes: u32::try_from(first).unwrap_or(u32::MAX),
            resolution_minutes: u32::try_from(resolve).unwrap_or(u32::MAX),
        });
    }
    s.sla = sla;
    let small = |v: u64| u32::try_from(v).unwrap_or(u32::MAX);
    s.warn_before_minutes = small(num("warn_before_minutes"));
    s.callback_after_minutes = small(num("callback_after_minutes"));
    s.next_contact_days = small(num("next_contact_days"));
    s.thank_you_spend = num("thank_you_spend");
    s.nps_ticket_at_most = u8::try_from(num("nps_ticket_at_most")).unwrap_or(u8::MAX);
    s.csat_ticket_at_most = u8::try_from(num("csat_ticket_at_most")).unwrap_or(u8::MAX);
    s.invitation_days = small(num("invitation_days"));
    s.csat_after_resolution = !field(form, "csat_after_resolution").is_empty();
    if errors.is_empty() {
        Ok(s)
    } else {
        Err(errors)
    }
}

/// The settings form as typed, with its errors, for showing it again.
fn typed_settings(form: &[(String, String)], errors: BTreeMap<String, String>) -> SettingsForm {
    let get = |n: &str| field(form, n).trim().to_owned();
    SettingsForm {
        time_zone: get("time_zone"),
        week: WEEKDAYS
            .iter()
            .map(|(_, n)| ((*n).to_owned(), get(&format!("week.{n}"))))
            .collect(),
        holidays: field(form, "holidays").to_owned(),
        workdays: field(form, "workdays").to_owned(),
        workday_hours: get("workday_hours"),
        sla: TicketPriority::ALL
            .iter()
            .map(|p| {
                (
                    p.to_string(),
                    get(&format!("sla.{p}.first")),
                    get(&format!("sla.{p}.resolution")),
                )
            })
            .collect(),
        warn_before_minutes: get("warn_before_minutes"),
        callback_after_minutes: get("callback_after_minutes"),
        next_contact_days: get("next_contact_days"),
        thank_you_spend: get("thank_you_spend"),
        csat_after_resolution: !field(form, "csat_after_resolution").is_empty(),
        nps_ticket_at_most: get("nps_ticket_at_most"),
        csat_ticket_at_most: get("csat_ticket_at_most"),
        invitation_days: get("invitation_days"),
        errors,
    }
}

pub async fn service(ctx: Ctx) -> Response {
    let actor = step!(ctx.allowed(Permission::ReadAggregates));
    let settings = fetch!(&ctx, ctx.state.app.service_settings(&actor).await);
    report_page(&ctx, &actor, settings_form(&settings), None, StatusCode::OK).await
}

async fn report_page(
    ctx: &Ctx,
    actor: &Actor,
    form: SettingsForm,
    notice: Option<String>,
    status: StatusCode,
) -> Response {
    let app = &ctx.state.app;
    let pairs = query_pairs(&ctx.query);
    let notice = notice.or_else(|| param(&pairs, "saved").map(|_| ctx.t("service-saved")));
    let months = param(&pairs, "months")
        .and_then(|m| m.parse().ok())
        .unwrap_or(12u32);
    let r = fetch!(ctx, app.service_report(actor, months).await);
    let score = |s: &tenure_app::service::ScoreSummary| {
        minijinja::context! {
            nps => s.nps, promoters => s.promoters, passives => s.passives, detractors => s.detractors,
            csat => s.csat, satisfied => s.csat_satisfied, csat_answers => s.csat_answers,
            answers => s.promoters + s.passives + s.detractors,
        }
    };
    let staff = step!(directory(ctx, actor).await);
    let by_month: Vec<_> = r
        .by_month
        .iter()
        .map(|(m, s)| (m.clone(), score(s)))
        .collect();
    let by_channel: Vec<_> = r
        .by_channel
        .iter()
        .map(|(c, s)| (c.map(|c| c.to_string()).unwrap_or_default(), score(s)))
        .collect();
    let by_agent: Vec<_> = r
        .by_agent
        .iter()
        .map(|(a, s)| (staff_name(&staff, *a), score(s)))
        .collect();
    let by_segment: Vec<_> = r
        .by_segment
        .iter()
        .map(|(id, name, s)| (id.0, name.clone(), score(s)))
        .collect();
    let agents: Vec<_> = r
        .agents
        .iter()
        .map(|a| {
            let csat = r
                .by_agent
                .iter()
                .find(|(id, _)| *id == a.agent_id)
                .and_then(|(_, s)| s.csat);
            minijinja::context! {
                name => a.agent_name.clone().unwrap_or_default(),
                tickets => a.tickets, resolved => a.resolved, open => a.open,
                first_response => a.first_response_minutes.map(|m| span(ctx, m.round() as i64)),
                resolution => a.resolution_minutes.map(|m| span(ctx, m.round() as i64)),
                first_breaches => a.first_response_breaches,
                resolution_breaches => a.resolution_breaches,
                csat,
            }
        })
        .collect();
    let breaches: Vec<_> = r
        .breaches
        .iter()
        .map(|b| {
            (
                b.category.to_string(),
                b.priority.to_string(),
                b.tickets,
                b.open,
                b.first_response_breaches,
                b.resolution_breaches,
            )
        })
        .collect();
    let losses: Vec<_> = r
        .loss_reasons
        .iter()
        .map(|(l, c, n)| {
            (
                l.clone().unwrap_or_default(),
                c.map(|c| c.to_string()).unwrap_or_default(),
                *n,
            )
        })
        .collect();
    let months_axis: Vec<String> = r.by_month.iter().map(|(m, _)| m.clone()).collect();
    let share = |f: fn(&tenure_app::service::ScoreSummary) -> i64| -> Vec<f64> {
        r.by_month
            .iter()
            .map(|(_, s)| {
                let n = s.promoters + s.passives + s.detractors;
                if n == 0 {
                    0.0
                } else {
                    f(s) as f64 * 100.0 / n as f64
                }
            })
            .collect()
    };
    let (promoters, detractors) = (share(|s| s.promoters), share(|s| s.detractors));
    let (p_name, d_name) = (ctx.t("service-promoters"), ctx.t("service-detractors"));
    let lang = ctx.lang;
    let nps_chart = (!months_axis.is_empty()).then(|| {
        crate::charts::lines(
            &ctx.t("service-nps-chart"),
            &months_axis,
            &[
                crate::charts::Series {
                    name: &p_name,
                    values: &promoters,
                    class: "line-a",
                },
                crate::charts::Series {
                    name: &d_name,
                    values: &detractors,
                    class: "line-b",
                },
            ],
            &|v| lang.percent(v / 100.0),
        )
    });
    page(
        ctx,
        status,
        "service.html",
        None,
        minijinja::context! {
            months, by_month, by_channel, by_agent, by_segment, agents, breaches, losses,
            servqual => ser(&servqual_view(ctx, &r.servqual)),
            nps_chart,
            form => ser(&form),
            notice,
            weekdays => WEEKDAYS.iter().map(|(_, n)| *n).collect::<Vec<_>>(),
            may_write => actor.allows(Permission::WriteCatalog),
            may_scan => actor.allows(Permission::WriteCustomers),
        },
    )
}

pub async fn save_settings(ctx: Ctx, Form(form): Form<Vec<(String, String)>>) -> Response {
    let actor = step!(ctx.form_actor(&form, Permission::WriteCatalog));
    let settings = match parse_settings(&ctx, &form) {
        Ok(s) => s,
        Err(errors) => {
            return report_page(
                &ctx,
                &actor,
                typed_settings(&form, errors),
                None,
                StatusCode::UNPROCESSABLE_ENTITY,
            )
            .await;
        }
    };
    match ctx.state.app.set_service_settings(&actor, settings).await {
        Ok(_) => see_other("/service?saved=1#h-settings"),
        Err(e) => match field_errors(&e) {
            Some(errors) => {
                report_page(
                    &ctx,
                    &actor,
                    typed_settings(&form, errors),
                    None,
                    StatusCode::UNPROCESSABLE_ENTITY,
                )
                .await
            }
            None => app_error(&ctx, e),
        },
    }
}

/// The largest iCal file taken.
pub const CALENDAR_MAX: usize = 1024 * 1024;

/// An iCal file of days off (and make-up working days) added to the calendar.
pub async fn import_calendar(ctx: Ctx, mut multipart: Multipart) -> Response {
    let mut pairs: Vec<(String, String)> = Vec::new();
    let mut ics = String::new();
    loop {
        match multipart.next_field().await {
            Ok(Some(part)) => {
                let name = part.name().unwrap_or("").to_owned();
                match part.text().await {
                    Ok(text) if name == "file" => ics = text,
                    Ok(text) => pairs.push((name, text)),
                    Err(e) => {
                        return error_page(&ctx, StatusCode::BAD_REQUEST, &e.to_string());
                    }
                }
            }
            Ok(None) => break,
            Err(e) => return error_page(&ctx, StatusCode::BAD_REQUEST, &e.to_string()),
        }
    }
    let actor = step!(ctx.form_actor(&pairs, Permission::WriteCatalog));
    let app = &ctx.state.app;
    match app.import_calendar(&actor, &ics).await {
        Ok((holidays, workdays)) => {
            let settings = fetch!(&ctx, app.service_settings(&actor).await);
            let notice = ctx.t_with(
                "service-calendar-imported",
                &[("holidays", holidays.into()), ("workdays", workdays.into())],
            );
            report_page(
                &ctx,
                &actor,
                settings_form(&settings),
                Some(notice),
                StatusCode::OK,
            )
            .await
        }
        Err(e) => match field_errors(&e) {
            Some(errors) => {
                let settings = fetch!(&ctx, app.service_settings(&actor).await);
                let mut form = settings_form(&settings);
                form.errors = errors
                    .into_values()
                    .map(|v| ("ics".to_owned(), v))
                    .collect();
                report_page(&ctx, &actor, form, None, StatusCode::UNPROCESSABLE_ENTITY).await
            }
            None => app_error(&ctx, e),
        },
    }
}

pub async fn sla_scan(ctx: Ctx, Form(form): Form<Vec<(String, String)>>) -> Response {
    let actor = step!(ctx.form_actor(&form, Permission::WriteCustomers));
    match ctx.state.app.run_sla_scan(&actor).await {
        Ok(_) => see_other("/tickets?view=breached"),
        Err(e) => app_error(&ctx, e),
    }
}

// -- the 360° page's panel -------------------------------------------------------------------

/// The service panel of the 360° page: the latest scores, open tickets and open tasks.
#[derive(Serialize)]
pub(crate) struct CustomerService {
    nps: Option<i64>,
    nps_group: Option<String>,
    csat: Option<i64>,
    open_tickets: i64,
    last_category: Option<String>,
    tickets: Vec<TicketRow>,
    tasks: Vec<TaskRow>,
    surveys: Vec<(i64, String)>,
}

#[allow(clippy::result_large_err)]
pub(crate) async fn customer_view(
    ctx: &Ctx,
    actor: &Actor,
    id: CustomerId,
) -> Result<CustomerService, Response> {
    let app = &ctx.state.app;
    let fail = |e| app_error(ctx, e);
    let f = app.feedback(actor, id).await.map_err(fail)?;
    let tickets = app
        .tickets(
            actor,
            &TicketFilter {
                customer: Some(id),
                ..TicketFilter::default()
            },
            &PageRequest {
                cursor: None,
                limit: Some(5),
            },
        )
        .await
        .map_err(fail)?;
    let tasks = app
        .tasks(
            actor,
            &TaskFilter {
                customer: Some(id),
                status: Some(TaskStatus::Open),
                ..TaskFilter::default()
            },
            &PageRequest {
                cursor: None,
                limit: Some(5),
            },
        )
        .await
        .map_err(fail)?;
    let surveys = if actor.allows(Permission::ReadAggregates) {
        app.surveys(actor)
            .await
            .map_err(fail)?
            .into_iter()
            .filter(|s| s.active)
            .map(|s| (s.id.0, s.name))
            .collect()
    } else {
        Vec::new()
    };
    let staff = directory(ctx, actor).await?;
    let zone = Zone::of(ctx, actor).await?;
    let names = HashMap::new();
    let now = app.now();
    Ok(CustomerService {
        nps: f.nps_score,
        nps_group: f.nps_group.map(|g| g.to_string()),
        csat: f.csat_score,
        open_tickets: f.open_tickets,
        last_category: f.last_category.map(|c| c.to_string()),
        tickets: tickets
            .items
            .iter()
            .map(|s| ticket_row(ctx, s, &names, &staff, &zone))
            .collect(),
        tasks: tasks
            .items
            .iter()
            .map(|t| task_row(t, &names, &staff, now, &zone))
            .collect(),
        surveys,
    })
}
