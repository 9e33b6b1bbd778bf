//! `/api/v1/journeys` and `/api/v1/messages`: the journeys with their report (entered,
//! held out, messages by outcome, treated against control), switching them on and off, and
//! the messages of the outbox — sent, waiting, and not sent with the reason — and
//! `/api/v1/templates`: the message templates, checked when saved and previewed for a real
//! customer.

use axum::extract::State;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use tenure_domain::ids::{CustomerId, JourneyId, TemplateId};
use tenure_domain::journey::{
    Channel, JourneyDefinition, Lift, MessageClass, MessageStatus, SkipReason,
};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::{ListResponse, page};
use crate::auth::{self, Authorized};
use crate::extract::{Id, Json, Query};
use crate::{ApiError, AppState};

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_journeys))
        .routes(routes!(get_journey, update_journey))
        .routes(routes!(list_messages))
        .routes(routes!(list_templates, save_template))
        .routes(routes!(get_template))
        .routes(routes!(preview_template))
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct JourneyDto {
    pub id: i64,
    /// The name commands use (`tenure journeys enable NAME`).
    pub name: String,
    pub title: String,
    pub description: String,
    pub enabled: bool,
    pub definition: JourneyDefinition,
    pub updated_at: DateTime<Utc>,
}

impl From<tenure_app::model::Journey> for JourneyDto {
    fn from(j: tenure_app::model::Journey) -> Self {
        JourneyDto {
            id: j.id.0,
            name: j.name,
            title: j.title,
            description: j.description,
            enabled: j.enabled,
            definition: j.definition,
            updated_at: j.updated_at,
        }
    }
}

/// Messages of a journey by outcome.
#[derive(Serialize, utoipa::ToSchema)]
pub struct OutcomeDto {
    pub status: MessageStatus,
    /// Why it was not sent (skipped and failed messages).
    pub reason: Option<SkipReason>,
    pub messages: i64,
}

/// A journey and what it did.
#[derive(Serialize, utoipa::ToSchema)]
pub struct JourneyReportDto {
    #[serde(flatten)]
    pub journey: JourneyDto,
    /// Enrolments: all, still going, finished, left at an exit, held out as control.
    pub entered: i64,
    pub active: i64,
    pub completed: i64,
    pub exited: i64,
    pub control: i64,
    pub outcomes: Vec<OutcomeDto>,
    /// Conversion of the treated against the control group within the journey's window,
    /// with the difference and its 95% confidence interval.
    pub lift: Lift,
}

/// Every journey, the ready-made ones included.
#[utoipa::path(get, path = "/api/v1/journeys", tag = "journeys", security(("bearer" = [])),
    responses((status = 200, body = Vec<JourneyDto>)))]
async fn list_journeys(
    caller: Authorized<auth::ReadAggregates>,
    State(state): State<AppState>,
) -> Result<axum::Json<Vec<JourneyDto>>, ApiError> {
    let js = state.app.journeys(&caller.actor).await?;
    Ok(axum::Json(js.into_iter().map(JourneyDto::from).collect()))
}

/// A journey with its report.
#[utoipa::path(get, path = "/api/v1/journeys/{id}", tag = "journeys", params(("id" = i64, Path)), security(("bearer" = [])),
    responses((status = 200, body = JourneyReportDto), (status = 404, body = crate::problem::Problem)))]
async fn get_journey(
    caller: Authorized<auth::ReadAggregates>,
    State(state): State<AppState>,
    Id(id): Id,
) -> Result<axum::Json<JourneyReportDto>, ApiError> {
    let r = state
        .app
        .journey_report(&caller.actor, JourneyId(id))
        .await?;
    Ok(axum::Json(JourneyReportDto {
        journey: r.journey.into(),
        entered: r.counts.entered,
        active: r.counts.active,
        completed: r.counts.completed,
        exited: r.counts.exited,
        control: r.counts.control,
        outcomes: r
            .counts
            .messages
            .into_iter()
            .map(|(status, reason, messages)| OutcomeDto {
                status,
                reason,
                messages,
            })
            .collect(),
        lift: r.lift,
    }))
}

/// The body of `PATCH /api/v1/journeys/{id}`: what to change.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct JourneyPatch {
    pub enabled: Option<bool>,
    pub title: Option<String>,
    pub description: Option<String>,
    /// The whole definition (checked: steps, templates, conditions).
    pub definition: Option<JourneyDefinition>,
}

/// Switch a journey on or off, or change it.
#[utoipa::path(patch, path = "/api/v1/journeys/{id}", tag = "journeys", params(("id" = i64, Path)), request_body = JourneyPatch, security(("bearer" = [])),
    responses((status = 200, body = JourneyDto), (status = 404, body = crate::problem::Problem), (status = 422, body = crate::problem::Problem)))]
async fn update_journey(
    caller: Authorized<auth::WriteCatalog>,
    State(state): State<AppState>,
    Id(id): Id,
    Json(p): Json<JourneyPatch>,
) -> Result<axum::Json<JourneyDto>, ApiError> {
    let j = state
        .app
        .update_journey(
            &caller.actor,
            JourneyId(id),
            p.title,
            p.description,
            p.definition,
            p.enabled,
        )
        .await?;
    Ok(axum::Json(j.into()))
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct OutboxMessageDto {
    pub id: i64,
    pub customer_id: i64,
    pub journey_id: Option<i64>,
    pub channel: Channel,
    pub class: MessageClass,
    pub priority: i64,
    pub template: String,
    pub locale: String,
    pub address: Option<String>,
    pub subject: String,
    pub body_text: String,
    pub status: MessageStatus,
    /// Why it was not sent.
    pub reason: Option<SkipReason>,
    pub detail: Option<String>,
    pub attempts: i64,
    /// When it may go (quiet hours move it on) and by when at the latest.
    pub due_at: DateTime<Utc>,
    pub send_by: Option<DateTime<Utc>>,
    pub sent_at: Option<DateTime<Utc>>,
    pub read_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
}

impl From<tenure_app::model::Message> for OutboxMessageDto {
    fn from(m: tenure_app::model::Message) -> Self {
        OutboxMessageDto {
            id: m.id.0,
            customer_id: m.customer_id.0,
            journey_id: m.journey_id.map(|j| j.0),
            channel: m.channel,
            class: m.class,
            priority: m.priority,
            template: m.template,
            locale: m.locale,
            address: m.address,
            subject: m.subject,
            body_text: m.body_text,
            status: m.status,
            reason: m.reason,
            detail: m.detail,
            attempts: m.attempts,
            due_at: m.due_at,
            send_by: m.send_by,
            sent_at: m.sent_at,
            read_at: m.read_at,
            created_at: m.created_at,
        }
    }
}

#[derive(Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct MessageListParams {
    pub customer_id: Option<i64>,
    pub journey_id: Option<i64>,
    pub channel: Option<Channel>,
    pub status: Option<MessageStatus>,
    /// Only the messages not sent for this reason.
    pub reason: Option<SkipReason>,
    /// Only the messages not sent (skipped or failed), with their reasons.
    pub not_sent: Option<bool>,
    pub limit: Option<u32>,
    pub cursor: Option<String>,
}

/// Messages, newest first.
#[utoipa::path(get, path = "/api/v1/messages", tag = "journeys", params(MessageListParams), security(("bearer" = [])),
    responses((status = 200, body = ListResponse<OutboxMessageDto>)))]
async fn list_messages(
    caller: Authorized<auth::ReadCustomers>,
    State(state): State<AppState>,
    Query(p): Query<MessageListParams>,
) -> Result<axum::Json<ListResponse<OutboxMessageDto>>, ApiError> {
    let filter = tenure_app::model::MessageFilter {
        customer: p.customer_id.map(CustomerId),
        journey: p.journey_id.map(JourneyId),
        channel: p.channel,
        status: p.status,
        reason: p.reason,
        not_sent: p.not_sent.unwrap_or(false),
        ..tenure_app::model::MessageFilter::default()
    };
    let found = state
        .app
        .messages(&caller.actor, &filter, &page(p.limit, &p.cursor))
        .await?;
    Ok(axum::Json(ListResponse::of(found, OutboxMessageDto::from)))
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct TemplateDto {
    pub id: i64,
    /// The name a journey's send step uses; one per channel and language.
    pub name: String,
    pub channel: Channel,
    /// `en`, `zh-CN` or `zh-TW`.
    pub locale: String,
    /// Email only.
    pub subject: String,
    /// The text, with customer fields in double braces (`{{ customer.first_name }}`).
    pub body: String,
    pub updated_at: DateTime<Utc>,
}

impl From<tenure_app::model::Template> for TemplateDto {
    fn from(t: tenure_app::model::Template) -> Self {
        TemplateDto {
            id: t.id.0,
            name: t.name,
            channel: t.channel,
            locale: t.locale,
            subject: t.subject,
            body: t.body,
            updated_at: t.updated_at,
        }
    }
}

/// Every template, by name, channel and language.
#[utoipa::path(get, path = "/api/v1/templates", tag = "journeys", security(("bearer" = [])),
    responses((status = 200, body = Vec<TemplateDto>)))]
async fn list_templates(
    caller: Authorized<auth::ReadAggregates>,
    State(state): State<AppState>,
) -> Result<axum::Json<Vec<TemplateDto>>, ApiError> {
    let list = state.app.templates(&caller.actor).await?;
    Ok(axum::Json(
        list.into_iter().map(TemplateDto::from).collect(),
    ))
}

/// The body of `POST /api/v1/templates`.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TemplateInput {
    pub name: String,
    pub channel: Channel,
    pub locale: String,
    #[serde(default)]
    pub subject: String,
    pub body: String,
}

/// Creates a template, or replaces the one of this name, channel and language. It is
/// rendered with an example customer first: a misspelt field or a syntax error is a 422
/// naming `subject` or `body` and the line, never a failure when a message is due.
#[utoipa::path(post, path = "/api/v1/templates", tag = "journeys", request_body = TemplateInput, security(("bearer" = [])),
    responses((status = 200, body = TemplateDto), (status = 422, body = crate::problem::Problem)))]
async fn save_template(
    caller: Authorized<auth::WriteCatalog>,
    State(state): State<AppState>,
    Json(t): Json<TemplateInput>,
) -> Result<axum::Json<TemplateDto>, ApiError> {
    let saved = state
        .app
        .save_template(
            &caller.actor,
            &t.name,
            t.channel,
            &t.locale,
            &t.subject,
            &t.body,
        )
        .await?;
    Ok(axum::Json(saved.into()))
}

#[utoipa::path(get, path = "/api/v1/templates/{id}", tag = "journeys", params(("id" = i64, Path)), security(("bearer" = [])),
    responses((status = 200, body = TemplateDto), (status = 404, body = crate::problem::Problem)))]
async fn get_template(
    caller: Authorized<auth::ReadAggregates>,
    State(state): State<AppState>,
    Id(id): Id,
) -> Result<axum::Json<TemplateDto>, ApiError> {
    let t = state.app.template(&caller.actor, TemplateId(id)).await?;
    Ok(axum::Json(t.into()))
}

/// The body of a preview: whom for, and optionally an edit not yet saved.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PreviewInput {
    pub customer_id: i64,
    /// A draft to preview instead of the saved text.
    pub subject: Option<String>,
    pub body: Option<String>,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct PreviewDto {
    pub subject: String,
    pub body: String,
}

/// The template rendered for a real customer — their name, tier, points, offers and links —
/// as they would receive it. Nothing is sent or stored.
#[utoipa::path(post, path = "/api/v1/templates/{id}/preview", tag = "journeys", params(("id" = i64, Path)), request_body = PreviewInput, security(("bearer" = [])),
    responses((status = 200, body = PreviewDto), (status = 404, body = crate::problem::Problem), (status = 422, body = crate::problem::Problem)))]
async fn preview_template(
    caller: Authorized<auth::ReadCustomers>,
    State(state): State<AppState>,
    Id(id): Id,
    Json(p): Json<PreviewInput>,
) -> Result<axum::Json<PreviewDto>, ApiError> {
    let (subject, body) = state
        .app
        .preview_template(
            &caller.actor,
            TemplateId(id),
            CustomerId(p.customer_id),
            p.subject.as_deref(),
            p.body.as_deref(),
        )
        .await?;
    Ok(axum::Json(PreviewDto { subject, body }))
}
