//! `/api/v1/tickets`, `/api/v1/tasks`, `/api/v1/surveys`, `/api/v1/service/*` (the
//! calendar, SLA policies and follow-up rules; the SLA scan), `/api/v1/analytics/service`
//! and `/api/v1/customers/{id}/feedback`.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use tenure_app::model::{Response, Task, TaskFilter, Ticket, TicketFilter};
use tenure_app::service::{SlaTimer, TicketSummary};
use tenure_domain::customer::Channel;
use tenure_domain::ids::{CustomerId, StaffUserId, SurveyId, TaskId, TicketId};
use tenure_domain::service::{
    Attachment, MessageInput, MessageKind, ServiceSettings, TaskInput, TaskPatch, TaskSource,
    TaskStatus, TicketCategory, TicketInput, TicketPatch, TicketPriority, TicketStatus,
};
use tenure_domain::survey::{AnswerInput, Importance, NpsGroup, SurveyDefinition, SurveyKind};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::{ListResponse, page};
use crate::auth::{self, Authorized};
use crate::extract::{Id, Json, Query};
use crate::{ApiError, AppState};

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_tickets, create_ticket))
        .routes(routes!(get_ticket, update_ticket))
        .routes(routes!(add_message))
        .routes(routes!(list_tasks, create_task))
        .routes(routes!(overdue))
        .routes(routes!(get_task, update_task))
        .routes(routes!(list_surveys, create_survey))
        .routes(routes!(get_survey, update_survey))
        .routes(routes!(invite))
        .routes(routes!(list_responses, record_response))
        .routes(routes!(get_settings, put_settings))
        .routes(routes!(import_calendar))
        .routes(routes!(sla_scan))
        .routes(routes!(report))
        .routes(routes!(feedback))
}

fn positive(v: i64, field: &str) -> Result<(), ApiError> {
    if v > 0 {
        Ok(())
    } else {
        Err(ApiError::field(field, "must be a positive id"))
    }
}

// -- tickets ---------------------------------------------------------------------------------

/// An SLA target: its due time, what is left of it in business minutes, when it was met.
#[derive(Serialize, utoipa::ToSchema)]
pub struct SlaTimerDto {
    pub due: Option<DateTime<Utc>>,
    /// Business minutes left; negative: overdue by. `null` once met.
    pub minutes_left: Option<i64>,
    pub met_at: Option<DateTime<Utc>>,
    pub breached: bool,
    /// Waiting on the customer: the clock stands still.
    pub paused: bool,
}

impl From<SlaTimer> for SlaTimerDto {
    fn from(t: SlaTimer) -> Self {
        SlaTimerDto {
            due: t.due,
            minutes_left: t.minutes_left,
            met_at: t.met_at,
            breached: t.breached,
            paused: t.paused,
        }
    }
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct TicketDto {
    pub id: i64,
    pub external_id: Option<String>,
    pub customer_id: i64,
    pub subject: String,
    pub category: TicketCategory,
    pub priority: TicketPriority,
    pub channel: Channel,
    pub status: TicketStatus,
    pub assignee_id: Option<i64>,
    pub opened_at: DateTime<Utc>,
    pub resolved_at: Option<DateTime<Utc>>,
    pub closed_at: Option<DateTime<Utc>>,
    /// Business minutes to the first reply and to resolution (waiting left out).
    pub first_response_minutes: Option<i64>,
    pub resolution_minutes: Option<i64>,
    /// The survey answer that opened the ticket.
    pub response_id: Option<i64>,
    /// Send it back as `version` to refuse a change made meanwhile.
    pub version: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub first_response: Option<SlaTimerDto>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub resolution: Option<SlaTimerDto>,
}

impl TicketDto {
    pub fn plain(t: Ticket) -> TicketDto {
        TicketDto {
            id: t.id.0,
            external_id: t.external_id,
            customer_id: t.customer_id.0,
            subject: t.subject,
            category: t.category,
            priority: t.priority,
            channel: t.channel,
            status: t.status,
            assignee_id: t.assignee_id.map(|a| a.0),
            opened_at: t.opened_at,
            resolved_at: t.resolved_at,
            closed_at: t.closed_at,
            first_response_minutes: t.first_response_minutes,
            resolution_minutes: t.resolution_minutes,
            response_id: t.response_id.map(|r| r.0),
            version: t.version,
            first_response: None,
            resolution: None,
        }
    }

    fn timed(s: TicketSummary) -> TicketDto {
        TicketDto {
            first_response: Some(s.first_response.into()),
            resolution: Some(s.resolution.into()),
            ..TicketDto::plain(s.ticket)
        }
    }
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct MessageDto {
    pub id: i64,
    pub kind: MessageKind,
    pub body: String,
    pub attachments: Vec<Attachment>,
    pub author_id: Option<i64>,
    pub author_name: String,
    pub at: DateTime<Utc>,
}

impl From<tenure_app::model::TicketMessage> for MessageDto {
    fn from(m: tenure_app::model::TicketMessage) -> Self {
        MessageDto {
            id: m.id.0,
            kind: m.kind,
            body: m.body,
            attachments: m.attachments,
            author_id: m.author_id.map(|a| a.0),
            author_name: m.author_name,
            at: m.at,
        }
    }
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct StatusChangeDto {
    pub at: DateTime<Utc>,
    pub from: Option<TicketStatus>,
    pub to: TicketStatus,
    pub by: String,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct InvitationDto {
    pub invitation_id: i64,
    pub survey_id: i64,
    pub customer_id: i64,
    /// The single-use address to give the customer.
    pub url: String,
    pub token: String,
    pub expires_at: DateTime<Utc>,
    pub answered_at: Option<DateTime<Utc>>,
}

impl From<tenure_app::service::InvitationLink> for InvitationDto {
    fn from(i: tenure_app::service::InvitationLink) -> Self {
        InvitationDto {
            invitation_id: i.invitation_id.0,
            survey_id: i.survey_id.0,
            customer_id: i.customer_id.0,
            url: i.url,
            token: i.token,
            expires_at: i.expires_at,
            answered_at: i.answered_at,
        }
    }
}

/// A ticket with its messages, status history, tasks and survey invitations.
#[derive(Serialize, utoipa::ToSchema)]
pub struct TicketDetailDto {
    #[serde(flatten)]
    pub ticket: TicketDto,
    pub messages: Vec<MessageDto>,
    pub history: Vec<StatusChangeDto>,
    pub tasks: Vec<TaskDto>,
    pub invitations: Vec<InvitationDto>,
    /// The statuses it may move to next.
    pub next_statuses: Vec<TicketStatus>,
}

#[derive(Deserialize, Serialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateTicket {
    pub customer_id: i64,
    pub subject: String,
    /// The customer's words.
    #[serde(default)]
    pub description: String,
    #[serde(default = "default_category")]
    pub category: TicketCategory,
    #[serde(default = "default_priority")]
    pub priority: TicketPriority,
    #[serde(default = "default_channel")]
    pub channel: Channel,
    pub assignee_id: Option<i64>,
    pub external_id: Option<String>,
    /// When it was opened (default now).
    pub opened_at: Option<DateTime<Utc>>,
}

fn default_category() -> TicketCategory {
    TicketCategory::Other
}
fn default_priority() -> TicketPriority {
    TicketPriority::Normal
}
fn default_channel() -> Channel {
    Channel::Email
}

#[derive(Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct TicketListParams {
    pub customer_id: Option<i64>,
    pub assignee_id: Option<i64>,
    pub status: Option<TicketStatus>,
    pub category: Option<TicketCategory>,
    /// Only tickets not yet resolved.
    pub active: Option<bool>,
    /// Only tickets that breached a target.
    pub breached: Option<bool>,
    pub limit: Option<u32>,
    pub cursor: Option<String>,
}

/// Tickets, newest first, with their SLA timers.
#[utoipa::path(get, path = "/api/v1/tickets", tag = "service", params(TicketListParams),
    security(("bearer" = [])), responses((status = 200, body = ListResponse<TicketDto>)))]
async fn list_tickets(
    caller: Authorized<auth::ReadCustomers>,
    State(state): State<AppState>,
    Query(p): Query<TicketListParams>,
) -> Result<axum::Json<ListResponse<TicketDto>>, ApiError> {
    let filter = TicketFilter {
        customer: p.customer_id.map(CustomerId),
        assignee: p.assignee_id.map(StaffUserId),
        status: p.status,
        active: p.active.unwrap_or(false),
        category: p.category,
        breached: p.breached.unwrap_or(false),
        owner: None,
    };
    let found = state
        .app
        .tickets(&caller.actor, &filter, &page(p.limit, &p.cursor))
        .await?;
    Ok(axum::Json(ListResponse::of(found, TicketDto::timed)))
}

/// Open a ticket; its SLA clocks start from the priority's policy, in business hours.
#[utoipa::path(post, path = "/api/v1/tickets", tag = "service", request_body = CreateTicket,
    security(("bearer" = [])),
    responses((status = 201, body = TicketDto), (status = 409, body = crate::problem::Problem),
        (status = 422, body = crate::problem::Problem)))]
async fn create_ticket(
    caller: Authorized<auth::WriteCustomers>,
    State(state): State<AppState>,
    Json(b): Json<CreateTicket>,
) -> Result<impl IntoResponse, ApiError> {
    let t = state
        .app
        .create_ticket(
            &caller.actor,
            TicketInput {
                external_id: b.external_id,
                customer_id: b.customer_id,
                subject: b.subject,
                description: b.description,
                category: b.category,
                priority: b.priority,
                channel: b.channel,
                assignee_id: b.assignee_id,
                opened_at: b.opened_at,
            },
        )
        .await?;
    let location = format!("/api/v1/tickets/{}", t.id);
    Ok((
        StatusCode::CREATED,
        [(axum::http::header::LOCATION, location)],
        axum::Json(TicketDto::plain(t)),
    ))
}

#[utoipa::path(get, path = "/api/v1/tickets/{id}", tag = "service", params(("id" = i64, Path)),
    security(("bearer" = [])),
    responses((status = 200, body = TicketDetailDto), (status = 404, body = crate::problem::Problem)))]
async fn get_ticket(
    caller: Authorized<auth::ReadCustomers>,
    State(state): State<AppState>,
    Id(id): Id,
) -> Result<axum::Json<TicketDetailDto>, ApiError> {
    let v = state.app.ticket(&caller.actor, TicketId(id)).await?;
    Ok(axum::Json(TicketDetailDto {
        ticket: TicketDto::timed(v.summary),
        messages: v.messages.into_iter().map(MessageDto::from).collect(),
        history: v
            .events
            .into_iter()
            .map(|e| StatusChangeDto {
                at: e.at,
                from: e.from,
                to: e.to,
                by: e.actor_name,
            })
            .collect(),
        tasks: v.tasks.into_iter().map(TaskDto::from).collect(),
        invitations: v.invitations.into_iter().map(InvitationDto::from).collect(),
        next_statuses: v.next,
    }))
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateTicket {
    pub subject: Option<String>,
    pub category: Option<TicketCategory>,
    pub priority: Option<TicketPriority>,
    pub channel: Option<Channel>,
    /// `null` unassigns.
    #[serde(default, deserialize_with = "super::double_option")]
    #[schema(value_type = Option<i64>)]
    pub assignee_id: Option<Option<i64>>,
    /// Moves the ticket; an illegal move is a 422 naming it.
    pub status: Option<TicketStatus>,
    /// The version read; a ticket changed since is a 412.
    pub version: Option<i64>,
}

#[utoipa::path(patch, path = "/api/v1/tickets/{id}", tag = "service", params(("id" = i64, Path)),
    request_body = UpdateTicket, security(("bearer" = [])),
    responses((status = 200, body = TicketDto), (status = 404, body = crate::problem::Problem),
        (status = 412, body = crate::problem::Problem), (status = 422, body = crate::problem::Problem)))]
async fn update_ticket(
    caller: Authorized<auth::WriteCustomers>,
    State(state): State<AppState>,
    Id(id): Id,
    Json(b): Json<UpdateTicket>,
) -> Result<axum::Json<TicketDto>, ApiError> {
    let t = state
        .app
        .update_ticket(
            &caller.actor,
            TicketId(id),
            TicketPatch {
                subject: b.subject,
                category: b.category,
                priority: b.priority,
                channel: b.channel,
                assignee_id: b.assignee_id,
                status: b.status,
            },
            b.version,
        )
        .await?;
    Ok(axum::Json(TicketDto::plain(t)))
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateMessage {
    /// `reply` (to the customer; the first stops the first-response clock), `note`
    /// (internal) or `customer` (the customer's words).
    pub kind: MessageKind,
    pub body: String,
    #[serde(default)]
    pub attachments: Vec<Attachment>,
}

#[utoipa::path(post, path = "/api/v1/tickets/{id}/messages", tag = "service", params(("id" = i64, Path)),
    request_body = CreateMessage, security(("bearer" = [])),
    responses((status = 201, body = MessageDto), (status = 404, body = crate::problem::Problem),
        (status = 422, body = crate::problem::Problem)))]
async fn add_message(
    caller: Authorized<auth::WriteCustomers>,
    State(state): State<AppState>,
    Id(id): Id,
    Json(b): Json<CreateMessage>,
) -> Result<impl IntoResponse, ApiError> {
    let m = state
        .app
        .add_ticket_message(
            &caller.actor,
            TicketId(id),
            MessageInput {
                kind: b.kind,
                body: b.body,
                attachments: b.attachments,
            },
        )
        .await?;
    Ok((StatusCode::CREATED, axum::Json(MessageDto::from(m))))
}

// -- tasks -----------------------------------------------------------------------------------

#[derive(Serialize, utoipa::ToSchema)]
pub struct TaskDto {
    pub id: i64,
    pub title: String,
    pub note: String,
    pub customer_id: Option<i64>,
    pub ticket_id: Option<i64>,
    pub assignee_id: Option<i64>,
    pub due_at: DateTime<Utc>,
    /// When the reminder goes out (within business hours).
    pub remind_at: Option<DateTime<Utc>>,
    pub reminded_at: Option<DateTime<Utc>>,
    pub status: TaskStatus,
    pub source: TaskSource,
    pub created_by: String,
    pub created_at: DateTime<Utc>,
    pub done_at: Option<DateTime<Utc>>,
}

impl From<Task> for TaskDto {
    fn from(t: Task) -> Self {
        TaskDto {
            id: t.id.0,
            title: t.title,
            note: t.note,
            customer_id: t.customer_id.map(|c| c.0),
            ticket_id: t.ticket_id.map(|c| c.0),
            assignee_id: t.assignee_id.map(|c| c.0),
            due_at: t.due_at,
            remind_at: t.remind_at,
            reminded_at: t.reminded_at,
            status: t.status,
            source: t.source,
            created_by: t.created_by,
            created_at: t.created_at,
            done_at: t.done_at,
        }
    }
}

#[derive(Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct TaskListParams {
    pub assignee_id: Option<i64>,
    pub customer_id: Option<i64>,
    pub ticket_id: Option<i64>,
    pub status: Option<TaskStatus>,
    /// Only open tasks past their due time.
    pub overdue: Option<bool>,
    pub limit: Option<u32>,
    pub cursor: Option<String>,
}

/// Tasks by due time, soonest first.
#[utoipa::path(get, path = "/api/v1/tasks", tag = "service", params(TaskListParams),
    security(("bearer" = [])), responses((status = 200, body = ListResponse<TaskDto>)))]
async fn list_tasks(
    caller: Authorized<auth::ReadCustomers>,
    State(state): State<AppState>,
    Query(p): Query<TaskListParams>,
) -> Result<axum::Json<ListResponse<TaskDto>>, ApiError> {
    let filter = TaskFilter {
        assignee: p.assignee_id.map(StaffUserId),
        customer: p.customer_id.map(CustomerId),
        ticket: p.ticket_id.map(TicketId),
        status: p.status,
        overdue_at: p.overdue.unwrap_or(false).then(|| state.app.now()),
        ..TaskFilter::default()
    };
    let found = state
        .app
        .tasks(&caller.actor, &filter, &page(p.limit, &p.cursor))
        .await?;
    Ok(axum::Json(ListResponse::of(found, TaskDto::from)))
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateTask {
    pub title: String,
    #[serde(default)]
    pub note: String,
    pub customer_id: Option<i64>,
    pub ticket_id: Option<i64>,
    /// Default: the signed-in user (a token's task has none).
    pub assignee_id: Option<i64>,
    pub due_at: DateTime<Utc>,
    /// Remind this many minutes before the due time (within business hours).
    pub remind_before_minutes: Option<u32>,
}

#[utoipa::path(post, path = "/api/v1/tasks", tag = "service", request_body = CreateTask,
    security(("bearer" = [])),
    responses((status = 201, body = TaskDto), (status = 422, body = crate::problem::Problem)))]
async fn create_task(
    caller: Authorized<auth::WriteCustomers>,
    State(state): State<AppState>,
    Json(b): Json<CreateTask>,
) -> Result<impl IntoResponse, ApiError> {
    let t = state
        .app
        .create_task(
            &caller.actor,
            TaskInput {
                title: b.title,
                note: b.note,
                customer_id: b.customer_id,
                ticket_id: b.ticket_id,
                assignee_id: b.assignee_id,
                due_at: b.due_at,
                remind_before_minutes: b.remind_before_minutes,
            },
        )
        .await?;
    Ok((StatusCode::CREATED, axum::Json(TaskDto::from(t))))
}

#[utoipa::path(get, path = "/api/v1/tasks/{id}", tag = "service", params(("id" = i64, Path)),
    security(("bearer" = [])),
    responses((status = 200, body = TaskDto), (status = 404, body = crate::problem::Problem)))]
async fn get_task(
    caller: Authorized<auth::ReadCustomers>,
    State(state): State<AppState>,
    Id(id): Id,
) -> Result<axum::Json<TaskDto>, ApiError> {
    Ok(axum::Json(
        state.app.task(&caller.actor, TaskId(id)).await?.into(),
    ))
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateTask {
    pub title: Option<String>,
    pub note: Option<String>,
    #[serde(default, deserialize_with = "super::double_option")]
    #[schema(value_type = Option<i64>)]
    pub assignee_id: Option<Option<i64>>,
    pub due_at: Option<DateTime<Utc>>,
    pub status: Option<TaskStatus>,
}

#[utoipa::path(patch, path = "/api/v1/tasks/{id}", tag = "service", params(("id" = i64, Path)),
    request_body = UpdateTask, security(("bearer" = [])),
    responses((status = 200, body = TaskDto), (status = 404, body = crate::problem::Problem),
        (status = 422, body = crate::problem::Problem)))]
async fn update_task(
    caller: Authorized<auth::WriteCustomers>,
    State(state): State<AppState>,
    Id(id): Id,
    Json(b): Json<UpdateTask>,
) -> Result<axum::Json<TaskDto>, ApiError> {
    let t = state
        .app
        .update_task(
            &caller.actor,
            TaskId(id),
            TaskPatch {
                title: b.title,
                note: b.note,
                assignee_id: b.assignee_id,
                due_at: b.due_at,
                status: b.status,
            },
        )
        .await?;
    Ok(axum::Json(t.into()))
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct OverdueDto {
    pub assignee_id: Option<i64>,
    pub assignee_name: Option<String>,
    pub open: i64,
    pub overdue: i64,
    pub oldest_due: Option<DateTime<Utc>>,
}

/// Open and overdue tasks per person.
#[utoipa::path(get, path = "/api/v1/tasks/overdue", tag = "service", security(("bearer" = [])),
    responses((status = 200, body = Vec<OverdueDto>)))]
async fn overdue(
    caller: Authorized<auth::ReadAggregates>,
    State(state): State<AppState>,
) -> Result<axum::Json<Vec<OverdueDto>>, ApiError> {
    let rows = state.app.overdue_tasks(&caller.actor).await?;
    Ok(axum::Json(
        rows.into_iter()
            .map(|r| OverdueDto {
                assignee_id: r.assignee_id.map(|a| a.0),
                assignee_name: r.assignee_name,
                open: r.open,
                overdue: r.overdue,
                oldest_due: r.oldest_due,
            })
            .collect(),
    ))
}

// -- surveys ---------------------------------------------------------------------------------

#[derive(Serialize, utoipa::ToSchema)]
pub struct SurveyDto {
    pub id: i64,
    pub name: String,
    pub kind: SurveyKind,
    pub definition: SurveyDefinition,
    pub active: bool,
    pub created_at: DateTime<Utc>,
}

impl From<tenure_app::model::Survey> for SurveyDto {
    fn from(s: tenure_app::model::Survey) -> Self {
        SurveyDto {
            id: s.id.0,
            name: s.name,
            kind: s.kind,
            definition: s.definition,
            active: s.active,
            created_at: s.created_at,
        }
    }
}

#[utoipa::path(get, path = "/api/v1/surveys", tag = "service", security(("bearer" = [])),
    responses((status = 200, body = Vec<SurveyDto>)))]
async fn list_surveys(
    caller: Authorized<auth::ReadAggregates>,
    State(state): State<AppState>,
) -> Result<axum::Json<Vec<SurveyDto>>, ApiError> {
    let s = state.app.surveys(&caller.actor).await?;
    Ok(axum::Json(s.into_iter().map(SurveyDto::from).collect()))
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateSurvey {
    pub name: String,
    pub kind: SurveyKind,
    /// The questions; CSAT, NPS and SERVQUAL start from their standard wording in three
    /// languages when left out.
    pub definition: Option<SurveyDefinition>,
    #[serde(default = "yes")]
    pub active: bool,
}

fn yes() -> bool {
    true
}

#[utoipa::path(post, path = "/api/v1/surveys", tag = "service", request_body = CreateSurvey,
    security(("bearer" = [])),
    responses((status = 201, body = SurveyDto), (status = 422, body = crate::problem::Problem)))]
async fn create_survey(
    caller: Authorized<auth::WriteCatalog>,
    State(state): State<AppState>,
    Json(b): Json<CreateSurvey>,
) -> Result<impl IntoResponse, ApiError> {
    let s = state
        .app
        .create_survey(&caller.actor, &b.name, b.kind, b.definition, b.active)
        .await?;
    Ok((StatusCode::CREATED, axum::Json(SurveyDto::from(s))))
}

#[utoipa::path(get, path = "/api/v1/surveys/{id}", tag = "service", params(("id" = i64, Path)),
    security(("bearer" = [])),
    responses((status = 200, body = SurveyDto), (status = 404, body = crate::problem::Problem)))]
async fn get_survey(
    caller: Authorized<auth::ReadAggregates>,
    State(state): State<AppState>,
    Id(id): Id,
) -> Result<axum::Json<SurveyDto>, ApiError> {
    Ok(axum::Json(
        state.app.survey(&caller.actor, SurveyId(id)).await?.into(),
    ))
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateSurvey {
    pub name: Option<String>,
    pub definition: Option<SurveyDefinition>,
    pub active: Option<bool>,
}

#[utoipa::path(patch, path = "/api/v1/surveys/{id}", tag = "service", params(("id" = i64, Path)),
    request_body = UpdateSurvey, security(("bearer" = [])),
    responses((status = 200, body = SurveyDto), (status = 404, body = crate::problem::Problem),
        (status = 422, body = crate::problem::Problem)))]
async fn update_survey(
    caller: Authorized<auth::WriteCatalog>,
    State(state): State<AppState>,
    Id(id): Id,
    Json(b): Json<UpdateSurvey>,
) -> Result<axum::Json<SurveyDto>, ApiError> {
    let s = state
        .app
        .update_survey(&caller.actor, SurveyId(id), b.name, b.definition, b.active)
        .await?;
    Ok(axum::Json(s.into()))
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateInvitation {
    pub customer_id: i64,
    pub ticket_id: Option<i64>,
}

/// A single-use link for a customer to answer the survey (no login).
#[utoipa::path(post, path = "/api/v1/surveys/{id}/invitations", tag = "service", params(("id" = i64, Path)),
    request_body = CreateInvitation, security(("bearer" = [])),
    responses((status = 201, body = InvitationDto), (status = 404, body = crate::problem::Problem),
        (status = 422, body = crate::problem::Problem)))]
async fn invite(
    caller: Authorized<auth::WriteCustomers>,
    State(state): State<AppState>,
    Id(id): Id,
    Json(b): Json<CreateInvitation>,
) -> Result<impl IntoResponse, ApiError> {
    positive(b.customer_id, "customer_id")?;
    if let Some(t) = b.ticket_id {
        positive(t, "ticket_id")?;
    }
    let link = state
        .app
        .invite(
            &caller.actor,
            SurveyId(id),
            CustomerId(b.customer_id),
            b.ticket_id.map(TicketId),
        )
        .await?;
    Ok((StatusCode::CREATED, axum::Json(InvitationDto::from(link))))
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct ResponseDto {
    pub id: i64,
    pub survey_id: i64,
    pub kind: SurveyKind,
    pub customer_id: i64,
    pub ticket_id: Option<i64>,
    /// The ticket's assignee when the answer is about a ticket.
    pub agent_id: Option<i64>,
    pub channel: Option<Channel>,
    pub score: Option<i64>,
    pub nps_group: Option<NpsGroup>,
    pub comment: Option<String>,
    /// SERVQUAL: perception − expectation, the mean of the five dimensions, and weighted by
    /// the customer's importance split.
    pub gap: Option<f64>,
    pub weighted_gap: Option<f64>,
    /// The ticket an unhappy answer opened.
    pub opened_ticket_id: Option<i64>,
    pub answered_at: DateTime<Utc>,
    pub recorded_by: String,
}

impl From<Response> for ResponseDto {
    fn from(r: Response) -> Self {
        ResponseDto {
            id: r.id.0,
            survey_id: r.survey_id.0,
            kind: r.kind,
            customer_id: r.customer_id.0,
            ticket_id: r.ticket_id.map(|t| t.0),
            agent_id: r.agent_id.map(|t| t.0),
            channel: r.channel,
            score: r.score,
            nps_group: r.nps_group,
            comment: r.comment,
            gap: r.gap,
            weighted_gap: r.weighted_gap,
            opened_ticket_id: r.opened_ticket_id.map(|t| t.0),
            answered_at: r.answered_at,
            recorded_by: r.recorded_by,
        }
    }
}

#[derive(Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ResponseListParams {
    pub customer_id: Option<i64>,
    pub limit: Option<u32>,
    pub cursor: Option<String>,
}

#[utoipa::path(get, path = "/api/v1/surveys/{id}/responses", tag = "service",
    params(("id" = i64, Path), ResponseListParams), security(("bearer" = [])),
    responses((status = 200, body = ListResponse<ResponseDto>)))]
async fn list_responses(
    caller: Authorized<auth::ReadCustomers>,
    State(state): State<AppState>,
    Id(id): Id,
    Query(p): Query<ResponseListParams>,
) -> Result<axum::Json<ListResponse<ResponseDto>>, ApiError> {
    let found = state
        .app
        .responses(
            &caller.actor,
            Some(SurveyId(id)),
            p.customer_id.map(CustomerId),
            &page(p.limit, &p.cursor),
        )
        .await?;
    Ok(axum::Json(ListResponse::of(found, ResponseDto::from)))
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RecordResponse {
    pub customer_id: i64,
    pub answers: Vec<AnswerInput>,
    /// SERVQUAL: 100 points shared across the five dimensions.
    pub importance: Option<Importance>,
    pub ticket_id: Option<i64>,
    pub channel: Option<Channel>,
    pub answered_at: Option<DateTime<Utc>>,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct AnsweredDto {
    pub response_id: i64,
    /// The ticket an unhappy answer opened.
    pub opened_ticket_id: Option<i64>,
    /// Whether the survey bonus points were given.
    pub bonus: bool,
}

impl From<tenure_app::service::Answered> for AnsweredDto {
    fn from(a: tenure_app::service::Answered) -> Self {
        AnsweredDto {
            response_id: a.response.0,
            opened_ticket_id: a.opened_ticket.map(|t| t.0),
            bonus: a.bonus,
        }
    }
}

/// Staff record an answer (given on the phone, on paper, in the shop).
#[utoipa::path(post, path = "/api/v1/surveys/{id}/responses", tag = "service", params(("id" = i64, Path)),
    request_body = RecordResponse, security(("bearer" = [])),
    responses((status = 201, body = AnsweredDto), (status = 404, body = crate::problem::Problem),
        (status = 422, body = crate::problem::Problem)))]
async fn record_response(
    caller: Authorized<auth::WriteCustomers>,
    State(state): State<AppState>,
    Id(id): Id,
    Json(b): Json<RecordResponse>,
) -> Result<impl IntoResponse, ApiError> {
    positive(b.customer_id, "customer_id")?;
    if let Some(t) = b.ticket_id {
        positive(t, "ticket_id")?;
    }
    let a = state
        .app
        .record_response(
            &caller.actor,
            SurveyId(id),
            CustomerId(b.customer_id),
            b.answers,
            b.importance,
            b.ticket_id.map(TicketId),
            b.channel,
            b.answered_at,
        )
        .await?;
    Ok((StatusCode::CREATED, axum::Json(AnsweredDto::from(a))))
}

// -- settings, scan, reports -----------------------------------------------------------------

#[utoipa::path(get, path = "/api/v1/service/settings", tag = "service", security(("bearer" = [])),
    responses((status = 200, body = ServiceSettings)))]
async fn get_settings(
    caller: Authorized<auth::ReadAggregates>,
    State(state): State<AppState>,
) -> Result<axum::Json<ServiceSettings>, ApiError> {
    Ok(axum::Json(state.app.service_settings(&caller.actor).await?))
}

/// The business calendar (opening hours, holidays, make-up working days, time zone), SLA
/// policies per priority and the follow-up rules.
#[utoipa::path(put, path = "/api/v1/service/settings", tag = "service", request_body = ServiceSettings,
    security(("bearer" = [])),
    responses((status = 200, body = ServiceSettings), (status = 422, body = crate::problem::Problem)))]
async fn put_settings(
    caller: Authorized<auth::WriteCatalog>,
    State(state): State<AppState>,
    Json(b): Json<ServiceSettings>,
) -> Result<axum::Json<ServiceSettings>, ApiError> {
    Ok(axum::Json(
        state.app.set_service_settings(&caller.actor, b).await?,
    ))
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CalendarImport {
    /// An iCal (RFC 5545) calendar: each event's days become days off, or make-up working
    /// days when its summary says 补班 / 上班 / "working day".
    pub ics: String,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct CalendarImported {
    pub holidays: usize,
    pub workdays: usize,
}

#[utoipa::path(post, path = "/api/v1/service/calendar", tag = "service", request_body = CalendarImport,
    security(("bearer" = [])),
    responses((status = 200, body = CalendarImported), (status = 422, body = crate::problem::Problem)))]
async fn import_calendar(
    caller: Authorized<auth::WriteCatalog>,
    State(state): State<AppState>,
    Json(b): Json<CalendarImport>,
) -> Result<axum::Json<CalendarImported>, ApiError> {
    let (holidays, workdays) = state.app.import_calendar(&caller.actor, &b.ics).await?;
    Ok(axum::Json(CalendarImported { holidays, workdays }))
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct SlaScanDto {
    pub first_response_breaches: u64,
    pub resolution_breaches: u64,
    pub warnings: u64,
    pub reminders_sent: u64,
}

/// Runs the SLA scan now (it also runs every ten minutes).
#[utoipa::path(post, path = "/api/v1/service/sla-scan", tag = "service", security(("bearer" = [])),
    responses((status = 200, body = SlaScanDto)))]
async fn sla_scan(
    caller: Authorized<auth::WriteCustomers>,
    State(state): State<AppState>,
) -> Result<axum::Json<SlaScanDto>, ApiError> {
    let r = state.app.run_sla_scan(&caller.actor).await?;
    Ok(axum::Json(SlaScanDto {
        first_response_breaches: r.first_response_breaches,
        resolution_breaches: r.resolution_breaches,
        warnings: r.warnings,
        reminders_sent: r.reminders_sent,
    }))
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct ScoresDto {
    /// The group: a month `YYYY-MM`, a channel, an agent id or a segment id.
    pub key: String,
    pub nps: Option<f64>,
    pub promoters: i64,
    pub passives: i64,
    pub detractors: i64,
    pub csat: Option<f64>,
    /// Percent of CSAT answers of 4 or 5.
    pub csat_satisfied: Option<f64>,
    pub csat_answers: i64,
}

fn scores(key: String, s: tenure_app::service::ScoreSummary) -> ScoresDto {
    ScoresDto {
        key,
        nps: s.nps,
        promoters: s.promoters,
        passives: s.passives,
        detractors: s.detractors,
        csat: s.csat,
        csat_satisfied: s.csat_satisfied,
        csat_answers: s.csat_answers,
    }
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct DimensionDto {
    pub dimension: tenure_domain::survey::Dimension,
    pub expectation: f64,
    pub perception: f64,
    pub gap: f64,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct ItemDto {
    pub item: String,
    pub expectation: f64,
    pub perception: f64,
    pub gap: f64,
    pub answers: i64,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct AgentDto {
    pub agent_id: Option<i64>,
    pub agent_name: Option<String>,
    pub tickets: i64,
    pub resolved: i64,
    pub open: i64,
    /// Mean business minutes to the first reply and to resolution.
    pub first_response_minutes: Option<f64>,
    pub resolution_minutes: Option<f64>,
    pub first_response_breaches: i64,
    pub resolution_breaches: i64,
    pub csat: Option<f64>,
    pub nps: Option<f64>,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct BreachDto {
    pub category: TicketCategory,
    pub priority: TicketPriority,
    pub tickets: i64,
    pub open: i64,
    pub first_response_breaches: i64,
    pub resolution_breaches: i64,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct LossDto {
    pub loss_reason: Option<String>,
    /// The category of the churned customers' latest ticket.
    pub complaint_category: Option<TicketCategory>,
    pub customers: i64,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct ServiceReportDto {
    pub since: DateTime<Utc>,
    pub by_month: Vec<ScoresDto>,
    pub by_channel: Vec<ScoresDto>,
    pub by_agent: Vec<ScoresDto>,
    pub by_segment: Vec<ScoresDto>,
    pub servqual_responses: i64,
    pub servqual_dimensions: Vec<DimensionDto>,
    pub servqual_items: Vec<ItemDto>,
    pub servqual_gap: Option<f64>,
    pub servqual_weighted_gap: Option<f64>,
    pub agents: Vec<AgentDto>,
    pub breaches: Vec<BreachDto>,
    pub loss_reasons: Vec<LossDto>,
    pub overdue_tasks: Vec<OverdueDto>,
}

#[derive(Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ReportParams {
    /// Months back, 1–60 (default 12).
    pub months: Option<u32>,
}

/// NPS and CSAT over time, by channel, agent and segment; SERVQUAL gaps with the
/// expectation and perception profiles; agent performance; breaches; loss reasons beside
/// complaint categories; overdue tasks per person.
#[utoipa::path(get, path = "/api/v1/analytics/service", tag = "service", params(ReportParams),
    security(("bearer" = [])), responses((status = 200, body = ServiceReportDto)))]
async fn report(
    caller: Authorized<auth::ReadAggregates>,
    State(state): State<AppState>,
    Query(p): Query<ReportParams>,
) -> Result<axum::Json<ServiceReportDto>, ApiError> {
    let r = state
        .app
        .service_report(&caller.actor, p.months.unwrap_or(12))
        .await?;
    Ok(axum::Json(report_dto(r)))
}

pub fn report_dto(r: tenure_app::service::ServiceReport) -> ServiceReportDto {
    let agent_scores: std::collections::HashMap<Option<i64>, tenure_app::service::ScoreSummary> = r
        .by_agent
        .iter()
        .map(|(a, s)| (a.map(|a| a.0), s.clone()))
        .collect();
    let dims = tenure_domain::survey::Dimension::ALL;
    ServiceReportDto {
        since: r.since,
        by_month: r.by_month.into_iter().map(|(k, s)| scores(k, s)).collect(),
        by_channel: r
            .by_channel
            .into_iter()
            .map(|(c, s)| scores(c.map_or_else(|| "none".into(), |c| c.to_string()), s))
            .collect(),
        by_agent: r
            .by_agent
            .into_iter()
            .map(|(a, s)| scores(a.map_or_else(|| "none".into(), |a| a.to_string()), s))
            .collect(),
        by_segment: r
            .by_segment
            .into_iter()
            .map(|(id, name, s)| scores(format!("{id} {name}"), s))
            .collect(),
        servqual_responses: r.servqual.responses,
        servqual_dimensions: dims
            .iter()
            .enumerate()
            .map(|(i, d)| DimensionDto {
                dimension: *d,
                expectation: r.servqual.expectation[i],
                perception: r.servqual.perception[i],
                gap: r.servqual.perception[i] - r.servqual.expectation[i],
            })
            .collect(),
        servqual_items: r
            .servqual
            .items
            .into_iter()
            .map(|(item, e, p, n)| ItemDto {
                item,
                expectation: e,
                perception: p,
                gap: p - e,
                answers: n,
            })
            .collect(),
        servqual_gap: r.servqual.gap,
        servqual_weighted_gap: r.servqual.weighted_gap,
        agents: r
            .agents
            .into_iter()
            .map(|a| {
                let s = agent_scores.get(&a.agent_id.map(|x| x.0));
                AgentDto {
                    agent_id: a.agent_id.map(|x| x.0),
                    agent_name: a.agent_name,
                    tickets: a.tickets,
                    resolved: a.resolved,
                    open: a.open,
                    first_response_minutes: a.first_response_minutes,
                    resolution_minutes: a.resolution_minutes,
                    first_response_breaches: a.first_response_breaches,
                    resolution_breaches: a.resolution_breaches,
                    csat: s.and_then(|s| s.csat),
                    nps: s.and_then(|s| s.nps),
                }
            })
            .collect(),
        breaches: r
            .breaches
            .into_iter()
            .map(|b| BreachDto {
                category: b.category,
                priority: b.priority,
                tickets: b.tickets,
                open: b.open,
                first_response_breaches: b.first_response_breaches,
                resolution_breaches: b.resolution_breaches,
            })
            .collect(),
        loss_reasons: r
            .loss_reasons
            .into_iter()
            .map(|(l, c, n)| LossDto {
                loss_reason: l,
                complaint_category: c,
                customers: n,
            })
            .collect(),
        overdue_tasks: r
            .overdue
            .into_iter()
            .map(|o| OverdueDto {
                assignee_id: o.assignee_id.map(|a| a.0),
                assignee_name: o.assignee_name,
                open: o.open,
                overdue: o.overdue,
                oldest_due: o.oldest_due,
            })
            .collect(),
    }
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct FeedbackDto {
    pub nps_score: Option<i64>,
    pub nps_group: Option<NpsGroup>,
    pub nps_at: Option<DateTime<Utc>>,
    pub csat_score: Option<i64>,
    pub csat_at: Option<DateTime<Utc>>,
    pub open_tickets: i64,
    pub last_category: Option<TicketCategory>,
    pub last_ticket_at: Option<DateTime<Utc>>,
}

/// A customer's latest NPS and CSAT and their open tickets.
#[utoipa::path(get, path = "/api/v1/customers/{id}/feedback", tag = "service",
    params(("id" = i64, Path)), security(("bearer" = [])),
    responses((status = 200, body = FeedbackDto)))]
async fn feedback(
    caller: Authorized<auth::ReadCustomers>,
    State(state): State<AppState>,
    Id(id): Id,
) -> Result<axum::Json<FeedbackDto>, ApiError> {
    let f = state.app.feedback(&caller.actor, CustomerId(id)).await?;
    Ok(axum::Json(FeedbackDto {
        nps_score: f.nps_score,
        nps_group: f.nps_group,
        nps_at: f.nps_at,
        csat_score: f.csat_score,
        csat_at: f.csat_at,
        open_tickets: f.open_tickets,
        last_category: f.last_category,
        last_ticket_at: f.last_ticket_at,
    }))
}
