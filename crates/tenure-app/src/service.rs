//! Service use cases: tickets and their SLA clocks, follow-up tasks and their rules,
//! surveys with single-use invitations, the closed loop (an unhappy answer opens a ticket,
//! a resolved ticket invites a CSAT answer and schedules a call-back), the SLA scan and the
//! service reports.

use chrono::{DateTime, Datelike, Duration, Utc};
use hmac::{KeyInit, Mac};
use sha2::Digest;
use tenure_domain::access::Permission;
use tenure_domain::changes::{Actor, ActorKind, Event, Source};
use tenure_domain::customer::Channel;
use tenure_domain::ids::{
    CustomerId, InvitationId, ResponseId, SegmentId, StaffUserId, SurveyId, TaskId, TicketId,
};
use tenure_domain::loyalty::BonusEvent;
use tenure_domain::service::{
    MessageInput, MessageKind, Service, ServiceSettings, TaskInput, TaskPatch, TaskSource,
    TaskStatus, TicketCategory, TicketFields, TicketInput, TicketPatch, TicketPriority,
    TicketStatus,
};
use tenure_domain::survey::{
    AnswerInput, Importance, NpsGroup, SurveyDefinition, SurveyKind, check_response, nps,
};
use tenure_store::WriteTx;
use tenure_store::service::{
    BreachColumn, Feedback, Invitation, NewResponse, Response, ScoreCounts, ScoreGroup, Survey,
    Task, TaskFilter, Ticket, TicketEvent, TicketFilter, TicketMessage,
};

use crate::unit::{Context, Handler, HandlerFuture};
use crate::{App, AppError, AppResult, Listed, PageRequest, require};

const SETTINGS: &str = "service";
const SECRET: &str = "survey_link_secret";

fn settings_from(v: Option<serde_json::Value>) -> AppResult<ServiceSettings> {
    match v {
        None => Ok(ServiceSettings::default()),
        Some(v) => serde_json::from_value(v).map_err(|e| {
            AppError::Internal(format!("the stored service settings are unreadable: {e}"))
        }),
    }
}

pub(crate) async fn service_in(tx: &mut WriteTx<'_>) -> AppResult<Service> {
    settings_from(tx.setting(SETTINGS).await?)?
        .check()
        .map_err(|e| AppError::Internal(format!("the stored service settings are invalid: {e}")))
}

/// The staff member acting, when a signed-in user acts.
pub fn staff_of(actor: &Actor) -> Option<StaffUserId> {
    (actor.kind == ActorKind::User)
        .then_some(actor.id)
        .flatten()
        .map(StaffUserId)
}

/// How a customer answers a survey: Tenure on their behalf, through the public page.
fn respondent() -> Actor {
    Actor {
        kind: ActorKind::System,
        id: None,
        name: "survey".into(),
        role: tenure_domain::access::Role::Admin,
        source: Source::Web,
    }
}

/// One SLA target as staff see it.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct SlaTimer {
    pub due: Option<DateTime<Utc>>,
    /// Business minutes left (negative: overdue by), while the target is open.
    pub minutes_left: Option<i64>,
    pub met_at: Option<DateTime<Utc>>,
    pub breached: bool,
    pub paused: bool,
}

/// A ticket with its SLA timers.
#[derive(Debug, Clone)]
pub struct TicketSummary {
    pub ticket: Ticket,
    pub first_response: SlaTimer,
    pub resolution: SlaTimer,
}

/// A ticket with everything about it.
#[derive(Debug, Clone)]
pub struct TicketView {
    pub summary: TicketSummary,
    pub messages: Vec<TicketMessage>,
    pub events: Vec<TicketEvent>,
    pub tasks: Vec<Task>,
    pub invitations: Vec<InvitationLink>,
    pub next: Vec<TicketStatus>,
}

/// A survey invitation and its link.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct InvitationLink {
    pub invitation_id: InvitationId,
    pub survey_id: SurveyId,
    pub customer_id: CustomerId,
    pub token: String,
    /// The address to give the customer.
    pub url: String,
    pub expires_at: DateTime<Utc>,
    pub answered_at: Option<DateTime<Utc>>,
}

/// What the public answer page shows.
#[derive(Debug, Clone)]
pub struct PublicSurvey {
    pub survey: Survey,
    pub invitation: Invitation,
    pub locale: String,
    pub customer_name: String,
}

/// What the SLA scan did.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct SlaScan {
    pub first_response_breaches: u64,
    pub resolution_breaches: u64,
    pub warnings: u64,
    pub reminders_sent: u64,
}

/// A recorded answer and what the loop did with it.
#[derive(Debug, Clone)]
pub struct Answered {
    pub response: ResponseId,
    pub opened_ticket: Option<TicketId>,
    pub bonus: bool,
}

/// NPS and CSAT of one group.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize)]
pub struct ScoreSummary {
    pub nps: Option<f64>,
    pub promoters: i64,
    pub passives: i64,
    pub detractors: i64,
    pub csat: Option<f64>,
    /// Share of CSAT answers of 4 or 5, percent.
    pub csat_satisfied: Option<f64>,
    pub csat_answers: i64,
}

impl ScoreSummary {
    fn of(c: &ScoreCounts) -> ScoreSummary {
        let promoters = c.nps[9] + c.nps[10];
        let passives = c.nps[7] + c.nps[8];
        let detractors: i64 = c.nps[..7].iter().sum();
        let n: i64 = c.csat.iter().sum();
        let total: i64 = c.csat.iter().enumerate().map(|(s, k)| s as i64 * k).sum();
        ScoreSummary {
            nps: nps(promoters, passives, detractors),
            promoters,
            passives,
            detractors,
            csat: (n > 0).then(|| total as f64 / n as f64),
            csat_satisfied: (n > 0).then(|| (c.csat[4] + c.csat[5]) as f64 * 100.0 / n as f64),
            csat_answers: n,
        }
    }
}

/// The service reports over a period.
#[derive(Debug, Clone)]
pub struct ServiceReport {
    pub since: DateTime<Utc>,
    /// `YYYY-MM` and its scores.
    pub by_month: Vec<(String, ScoreSummary)>,
    pub by_channel: Vec<(Option<Channel>, ScoreSummary)>,
    pub by_agent: Vec<(Option<StaffUserId>, ScoreSummary)>,
    pub by_segment: Vec<(SegmentId, String, ScoreSummary)>,
    pub servqual: tenure_store::service::ServqualReport,
    pub agents: Vec<tenure_store::service::AgentRow>,
    pub breaches: Vec<tenure_store::service::BreachRow>,
    pub loss_reasons: Vec<(Option<String>, Option<TicketCategory>, i64)>,
    pub overdue: Vec<tenure_store::service::OverdueRow>,
}

fn timer(
    service: &Service,
    due: Option<DateTime<Utc>>,
    met: Option<DateTime<Utc>>,
    breached: bool,
    paused_at: Option<DateTime<Utc>>,
    now: DateTime<Utc>,
) -> SlaTimer {
    let at = paused_at.unwrap_or(now);
    let minutes_left = match (due, met) {
        (Some(d), None) if d >= at => Some(service.minutes_between(at, d)),
        (Some(d), None) => Some(-service.minutes_between(d, at)),
        _ => None,
    };
    SlaTimer {
        due,
        minutes_left,
        met_at: met,
        breached: breached || minutes_left.is_some_and(|m| m < 0 && due.is_some_and(|d| d < at)),
        paused: paused_at.is_some() && met.is_none(),
    }
}

fn summarize(service: &Service, t: Ticket, now: DateTime<Utc>) -> TicketSummary {
    let first_response = timer(
        service,
        t.first_response_due,
        t.first_response_at,
        t.first_response_breached,
        t.paused_at,
        now,
    );
    let resolution = timer(
        service,
        t.resolution_due,
        t.resolved_at,
        t.resolution_breached,
        t.paused_at,
        now,
    );
    TicketSummary {
        ticket: t,
        first_response,
        resolution,
    }
}

/// The due times of a ticket: its priority's targets plus the business time it waited.
fn set_dues(service: &Service, t: &mut Ticket) {
    let p = service.policy(t.priority);
    let add = |m: u32| {
        service.hours.add_open(
            t.opened_at,
            Duration::minutes(i64::from(m) + t.paused_minutes),
        )
    };
    t.first_response_due = add(p.first_response_minutes);
    t.resolution_due = add(p.resolution_minutes);
}

fn hash_token(token: &str) -> String {
    crate::hex(&sha2::Sha256::digest(token.as_bytes()))
}

impl App {
    pub(crate) async fn survey_secret(&self, tx: &mut WriteTx<'_>) -> AppResult<Vec<u8>> {
        Ok(tx
            .setting_once(SECRET, &crate::random_hex(32), self.now())
            .await?
            .into_bytes())
    }

    pub(crate) fn token_for(secret: &[u8], id: InvitationId) -> AppResult<String> {
        let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(secret)
            .map_err(|e| AppError::Internal(e.to_string()))?;
        mac.update(format!("invitation:{id}").as_bytes());
        let full = crate::hex(&mac.finalize().into_bytes());
        Ok(full[..tenure_domain::survey::TOKEN_LEN].to_owned())
    }

    pub(crate) fn link(&self, token: &str) -> String {
        format!("{}/s/{token}", self.options().base_url)
    }

    // -- settings ------------------------------------------------------------------------

    pub async fn service_settings(&self, actor: &Actor) -> AppResult<ServiceSettings> {
        require(actor, Permission::ReadAggregates)?;
        settings_from(self.store().setting(SETTINGS).await?)
    }

    pub async fn set_service_settings(
        &self,
        actor: &Actor,
        settings: ServiceSettings,
    ) -> AppResult<ServiceSettings> {
        require(actor, Permission::WriteCatalog)?;
        let checked = settings.check()?;
        let value = serde_json::to_value(&checked.settings)
            .map_err(|e| AppError::Internal(e.to_string()))?;
        let mut uow = self.begin(actor).await?;
        uow.tx.put_setting(SETTINGS, &value).await?;
        uow.emit(Event::SettingsChanged { name: SETTINGS });
        uow.commit().await?;
        Ok(checked.settings)
    }

    /// Adds an iCal file's days off and make-up working days to the calendar.
    pub async fn import_calendar(&self, actor: &Actor, ics: &str) -> AppResult<(usize, usize)> {
        require(actor, Permission::WriteCatalog)?;
        let days =
            tenure_domain::calendar::parse_ical(ics).map_err(|e| AppError::field("file", e))?;
        let mut uow = self.begin(actor).await?;
        let mut s = settings_from(uow.tx.setting(SETTINGS).await?)?;
        let counts = s.calendar.merge_days(days);
        let checked = s.check()?;
        let value = serde_json::to_value(&checked.settings)
            .map_err(|e| AppError::Internal(e.to_string()))?;
        uow.tx.put_setting(SETTINGS, &value).await?;
        uow.emit(Event::SettingsChanged { name: SETTINGS });
        uow.commit().await?;
        Ok(counts)
    }

    // -- tickets -------------------------------------------------------------------------

    pub async fn create_ticket(&self, actor: &Actor, input: TicketInput) -> AppResult<Ticket> {
        require(actor, Permission::WriteCustomers)?;
        let fields = input.parse(&self.input_context())?;
        self.check_owner(actor, fields.customer_id).await?;
        let now = self.now();
        let mut uow = self.begin(actor).await?;
        let t = open_ticket(&mut uow.tx, actor, fields, None, now).await?;
        let Some(t) = t else {
            return Err(AppError::Conflict(
                "a ticket with this external_id exists".into(),
            ));
        };
        uow.emit(Event::TicketCreated {
            ticket: t.id,
            customer: t.customer_id,
        });
        uow.commit().await?;
        Ok(t)
    }

    pub async fn ticket(&self, actor: &Actor, id: TicketId) -> AppResult<TicketView> {
        require(actor, Permission::ReadCustomers)?;
        let store = self.store();
        let t = store.get_ticket(id).await?;
        self.check_owner(actor, t.customer_id).await?;
        let service = self.current_service().await?;
        let messages = store.ticket_messages(id).await?;
        let events = store.ticket_events(id).await?;
        let tasks = store
            .list_tasks(
                &TaskFilter {
                    ticket: Some(id),
                    ..TaskFilter::default()
                },
                None,
                100,
            )
            .await?
            .items;
        let invitations = store.ticket_invitations(id).await?;
        let secret = self.secret(SECRET).await?;
        let invitations = invitations
            .into_iter()
            .map(|i| {
                let token = Self::token_for(&secret, i.id)?;
                Ok(InvitationLink {
                    invitation_id: i.id,
                    survey_id: i.survey_id,
                    customer_id: i.customer_id,
                    url: self.link(&token),
                    token,
                    expires_at: i.expires_at,
                    answered_at: i.answered_at,
                })
            })
            .collect::<AppResult<Vec<_>>>()?;
        let next = t.status.next().to_vec();
        Ok(TicketView {
            summary: summarize(&service, t, self.now()),
            messages,
            events,
            tasks,
            invitations,
            next,
        })
    }

    pub async fn tickets(
        &self,
        actor: &Actor,
        filter: &TicketFilter,
        page: &PageRequest,
    ) -> AppResult<Listed<TicketSummary>> {
        require(actor, Permission::ReadCustomers)?;
        let limit = page.limit()?;
        let before = page.after::<TicketCursor>()?.map(|c| c.0);
        let service = self.current_service().await?;
        let now = self.now();
        let filter = TicketFilter {
            owner: self.owner_scope(actor).await?,
            ..filter.clone()
        };
        let p = self.store().list_tickets(&filter, before, limit).await?;
        Ok(Listed {
            next_cursor: p
                .next
                .map(|n| tenure_domain::cursor::encode(&TicketCursor(n))),
            items: p
                .items
                .into_iter()
                .map(|t| summarize(&service, t, now))
                .collect(),
        })
    }

    async fn current_service(&self) -> AppResult<Service> {
        settings_from(self.store().setting(SETTINGS).await?)?
            .check()
            .map_err(|e| {
                AppError::Internal(format!("the stored service settings are invalid: {e}"))
            })
    }

    /// Changes a ticket's fields and moves its status; an illegal move is refused naming it.
    pub async fn update_ticket(
        &self,
        actor: &Actor,
        id: TicketId,
        patch: TicketPatch,
        expected_version: Option<i64>,
    ) -> AppResult<Ticket> {
        require(actor, Permission::WriteCustomers)?;
        patch.check()?;
        let now = self.now();
        let mut uow = self.begin(actor).await?;
        let service = service_in(&mut uow.tx).await?;
        let mut t = uow.tx.ticket_for_update(id).await?;
        if let Some(v) = expected_version
            && v != t.version
        {
            return Err(AppError::PreconditionFailed { current: t.version });
        }
        let before = t.clone();
        if let Some(s) = patch.subject {
            t.subject = s.trim().to_owned();
        }
        if let Some(c) = patch.category {
            t.category = c;
        }
        if let Some(c) = patch.channel {
            t.channel = c;
        }
        if let Some(a) = patch.assignee_id {
            t.assignee_id = a.map(StaffUserId);
        }
        if let Some(p) = patch.priority
            && p != t.priority
        {
            t.priority = p;
            set_dues(&service, &mut t);
        }
        let moved = match patch.status {
            Some(to) if to != t.status || !t.status.next().contains(&to) => {
                let from = t.status;
                t.status = from.move_to(to).map_err(|m| AppError::field("status", m))?;
                apply_move(&service, &mut t, from, now);
                Some(from)
            }
            _ => None,
        };
        if t == before {
            return Ok(t);
        }
        t.updated_at = now;
        let saved = uow.tx.save_ticket(&t).await?;
        if let Some(from) = moved {
            uow.tx
                .add_ticket_event(&saved, Some(from), now, &actor.display_name())
                .await?;
            if saved.status == TicketStatus::Resolved
                && let Some(link) = self
                    .after_resolution(&mut uow.tx, actor, &service, &saved, now)
                    .await?
            {
                uow.emit(Event::SurveyInvited {
                    invitation: link.invitation_id,
                    survey: link.survey_id,
                    customer: link.customer_id,
                });
            }
        }
        uow.tx.refresh_feedback(saved.customer_id).await?;
        uow.emit(Event::TicketUpdated {
            ticket: saved.id,
            customer: saved.customer_id,
        });
        uow.commit().await?;
        Ok(saved)
    }

    /// A reply, a note or the customer's words on a ticket. The first reply stops the
    /// first-response clock; the customer writing back resumes a waiting ticket and reopens
    /// a resolved one.
    pub async fn add_ticket_message(
        &self,
        actor: &Actor,
        id: TicketId,
        input: MessageInput,
    ) -> AppResult<TicketMessage> {
        require(actor, Permission::WriteCustomers)?;
        let body = input.check()?;
        let now = self.now();
        let mut uow = self.begin(actor).await?;
        let service = service_in(&mut uow.tx).await?;
        let mut t = uow.tx.ticket_for_update(id).await?;
        let from = t.status;
        match input.kind {
            MessageKind::Reply => {
                if t.first_response_at.is_none() {
                    t.first_response_at = Some(now);
                    t.first_response_minutes =
                        Some((service.minutes_between(t.opened_at, now) - t.paused_minutes).max(0));
                    if t.first_response_due.is_some_and(|d| now > d) {
                        t.first_response_breached = true;
                    }
                }
                if matches!(t.status, TicketStatus::New | TicketStatus::Reopened) {
                    t.status = TicketStatus::Open;
                }
            }
            MessageKind::Customer => {
                let to = match t.status {
                    TicketStatus::PendingCustomer => Some(TicketStatus::Open),
                    TicketStatus::Resolved | TicketStatus::Closed => Some(TicketStatus::Reopened),
                    _ => None,
                };
                if let Some(to) = to {
                    t.status = to;
                    apply_move(&service, &mut t, from, now);
                }
            }
            MessageKind::Note => {}
        }
        t.updated_at = now;
        let saved = uow.tx.save_ticket(&t).await?;
        if saved.status != from {
            uow.tx
                .add_ticket_event(&saved, Some(from), now, &actor.display_name())
                .await?;
            uow.tx.refresh_feedback(saved.customer_id).await?;
        }
        let mid = uow
            .tx
            .add_ticket_message(
                &saved,
                input.kind,
                &body,
                &input.attachments,
                staff_of(actor),
                &actor.display_name(),
                now,
            )
            .await?;
        uow.emit(Event::TicketUpdated {
            ticket: saved.id,
            customer: saved.customer_id,
        });
        uow.commit().await?;
        Ok(TicketMessage {
            id: mid,
            ticket_id: saved.id,
            kind: input.kind,
            body,
            attachments: input.attachments,
            author_id: staff_of(actor),
            author_name: actor.display_name(),
            at: now,
        })
    }

    /// The call-back task and the CSAT invitation of a resolved ticket (each once).
    async fn after_resolution(
        &self,
        tx: &mut WriteTx<'_>,
        actor: &Actor,
        service: &Service,
        t: &Ticket,
        now: DateTime<Utc>,
    ) -> AppResult<Option<InvitationLink>> {
        let s = &service.settings;
        if s.callback_after_minutes > 0 {
            let due = service
                .hours
                .add_open(now, Duration::minutes(i64::from(s.callback_after_minutes)))
                .unwrap_or(now);
            let brief = tx.customer_brief_in(t.customer_id).await?;
            insert_rule_task(
                tx,
                actor,
                service,
                RuleTask {
                    title: format!(
                        "Call {} back about \u{201c}{}\u{201d}",
                        brief.name, t.subject
                    ),
                    customer: Some(t.customer_id),
                    ticket: Some(t.id),
                    assignee: t.assignee_id.or(brief.owner_id),
                    due,
                    source: TaskSource::Callback,
                    key: format!("callback:ticket:{}", t.id),
                },
                now,
            )
            .await?;
        }
        if s.csat_after_resolution {
            let survey = match tx.active_survey_of(SurveyKind::Csat).await? {
                Some(s) => s.id,
                None => {
                    tx.insert_survey(
                        "CSAT after a ticket",
                        SurveyKind::Csat,
                        &SurveyKind::Csat.template(),
                        true,
                        now,
                    )
                    .await?
                }
            };
            return self
                .invite_in(
                    tx,
                    survey,
                    t.customer_id,
                    Some(t.id),
                    Some(&format!("csat:ticket:{}", t.id)),
                    service,
                    now,
                )
                .await;
        }
        Ok(None)
    }

    // -- tasks ---------------------------------------------------------------------------

    pub async fn create_task(&self, actor: &Actor, input: TaskInput) -> AppResult<Task> {
        require(actor, Permission::WriteCustomers)?;
        input.check()?;
        let now = self.now();
        let mut uow = self.begin(actor).await?;
        let service = service_in(&mut uow.tx).await?;
        let remind =
            input.due_at - Duration::minutes(i64::from(input.remind_before_minutes.unwrap_or(0)));
        let task = Task {
            id: TaskId(0),
            title: input.title.trim().to_owned(),
            note: input.note.trim().to_owned(),
            customer_id: input.customer_id.map(CustomerId),
            ticket_id: input.ticket_id.map(TicketId),
            assignee_id: input
                .assignee_id
                .map(StaffUserId)
                .or_else(|| staff_of(actor)),
            due_at: input.due_at,
            remind_at: Some(service.remind_at(remind.max(now))),
            reminded_at: None,
            status: TaskStatus::Open,
            source: TaskSource::Manual,
            source_key: None,
            created_by: actor.display_name(),
            created_at: now,
            done_at: None,
            updated_at: now,
        };
        let saved = uow
            .tx
            .insert_task(&task)
            .await?
            .ok_or_else(|| AppError::Internal("a task without a key conflicted".into()))?;
        uow.emit(Event::TaskCreated {
            task: saved.id,
            customer: saved.customer_id,
        });
        uow.commit().await?;
        Ok(saved)
    }

    pub async fn update_task(
        &self,
        actor: &Actor,
        id: TaskId,
        patch: TaskPatch,
    ) -> AppResult<Task> {
        require(actor, Permission::WriteCustomers)?;
        patch.check()?;
        let now = self.now();
        let mut uow = self.begin(actor).await?;
        let service = service_in(&mut uow.tx).await?;
        let mut t = uow.tx.task_for_update(id).await?;
        if let Some(v) = patch.title {
            t.title = v.trim().to_owned();
        }
        if let Some(v) = patch.note {
            t.note = v.trim().to_owned();
        }
        if let Some(a) = patch.assignee_id {
            t.assignee_id = a.map(StaffUserId);
        }
        if let Some(d) = patch.due_at
            && d != t.due_at
        {
            t.due_at = d;
            t.remind_at = Some(service.remind_at(d.max(now)));
            t.reminded_at = None;
        }
        if let Some(s) = patch.status
            && s != t.status
        {
            t.status = s;
            t.done_at = (s == TaskStatus::Done).then_some(now);
        }
        t.updated_at = now;
        let saved = uow.tx.save_task(&t).await?;
        uow.emit(Event::TaskUpdated {
            task: saved.id,
            customer: saved.customer_id,
        });
        uow.commit().await?;
        Ok(saved)
    }

    pub async fn task(&self, actor: &Actor, id: TaskId) -> AppResult<Task> {
        require(actor, Permission::ReadCustomers)?;
        Ok(self.store().get_task(id).await?)
    }

    pub async fn tasks(
        &self,
        actor: &Actor,
        filter: &TaskFilter,
        page: &PageRequest,
    ) -> AppResult<Listed<Task>> {
        require(actor, Permission::ReadCustomers)?;
        let limit = page.limit()?;
        let after = page.after::<TaskCursor>()?.map(|c| (c.0, c.1));
        let filter = TaskFilter {
            owner: self.owner_scope(actor).await?,
            ..filter.clone()
        };
        let p = self.store().list_tasks(&filter, after, limit).await?;
        Ok(Listed {
            next_cursor: p
                .next
                .map(|(a, b)| tenure_domain::cursor::encode(&TaskCursor(a, b))),
            items: p.items,
        })
    }

    pub async fn overdue_tasks(
        &self,
        actor: &Actor,
    ) -> AppResult<Vec<tenure_store::service::OverdueRow>> {
        require(actor, Permission::ReadAggregates)?;
        Ok(self.store().overdue_report(self.now()).await?)
    }

    // -- the SLA scan ----------------------------------------------------------------------

    /// Marks breached targets, sends escalation warnings before a breach and reminders of
    /// breaches and due tasks — reminders only while the business is open, so none goes out
    /// at night or on a day off (they wait for the next opening).
    pub async fn run_sla_scan(&self, actor: &Actor) -> AppResult<SlaScan> {
        require(actor, Permission::WriteCustomers)?;
        let now = self.now();
        let mut out = SlaScan::default();
        const CHUNK: i64 = 1_000;
        loop {
            let mut uow = self.begin(actor).await?;
            let service = service_in(&mut uow.tx).await?;
            let mut did = 0;
            let due = uow.tx.first_responses_due(now, CHUNK).await?;
            let ids: Vec<i64> = due.iter().map(|t| t.id.0).collect();
            out.first_response_breaches += uow
                .tx
                .mark_tickets(&ids, BreachColumn::FirstResponse, now)
                .await?;
            for t in &due {
                escalate(&mut uow.tx, actor, &service, t, "first_response", now).await?;
            }
            did += due.len();
            let due = uow.tx.resolutions_due(now, false, CHUNK).await?;
            let ids: Vec<i64> = due.iter().map(|t| t.id.0).collect();
            out.resolution_breaches += uow
                .tx
                .mark_tickets(&ids, BreachColumn::Resolution, now)
                .await?;
            for t in &due {
                escalate(&mut uow.tx, actor, &service, t, "resolution", now).await?;
            }
            did += due.len();
            let warn = service.settings.warn_before_minutes;
            if warn > 0
                && let Some(by) = service
                    .hours
                    .add_open(now, Duration::minutes(i64::from(warn)))
            {
                let due = uow.tx.resolutions_due(by, true, CHUNK).await?;
                let ids: Vec<i64> = due.iter().map(|t| t.id.0).collect();
                out.warnings += uow.tx.mark_tickets(&ids, BreachColumn::Warned, now).await?;
                for t in &due {
                    escalate(&mut uow.tx, actor, &service, t, "warning", now).await?;
                }
                did += due.len();
            }
            if service.hours.is_open(now) {
                let sent = uow.tx.send_due_reminders(now, CHUNK).await?;
                out.reminders_sent += sent.len() as u64;
                did += sent.len();
            }
            if did > 0 {
                uow.emit(Event::SlaScanned {
                    breaches: out.first_response_breaches + out.resolution_breaches,
                    reminders: out.reminders_sent,
                });
            }
            uow.commit().await?;
            if did == 0 {
                return Ok(out);
            }
        }
    }

    // -- surveys ---------------------------------------------------------------------------

    pub async fn surveys(&self, actor: &Actor) -> AppResult<Vec<Survey>> {
        require(actor, Permission::ReadAggregates)?;
        Ok(self.store().list_surveys().await?)
    }

    pub async fn survey(&self, actor: &Actor, id: SurveyId) -> AppResult<Survey> {
        require(actor, Permission::ReadAggregates)?;
        Ok(self.store().get_survey(id).await?)
    }

    /// Creates a survey; the standard kinds start from their template when no definition
    /// is given.
    pub async fn create_survey(
        &self,
        actor: &Actor,
        name: &str,
        kind: SurveyKind,
        definition: Option<SurveyDefinition>,
        active: bool,
    ) -> AppResult<Survey> {
        require(actor, Permission::WriteCatalog)?;
        let name = tenure_domain::validation::required_text(name, 200)
            .map_err(|m| AppError::field("name", m))?;
        let def = definition.unwrap_or_else(|| kind.template());
        def.check(kind)?;
        let now = self.now();
        let mut uow = self.begin(actor).await?;
        let id = uow.tx.insert_survey(&name, kind, &def, active, now).await?;
        uow.emit(Event::SurveyCreated { survey: id });
        let s = uow.tx.survey_in(id).await?;
        uow.commit().await?;
        Ok(s)
    }

    pub async fn update_survey(
        &self,
        actor: &Actor,
        id: SurveyId,
        name: Option<String>,
        definition: Option<SurveyDefinition>,
        active: Option<bool>,
    ) -> AppResult<Survey> {
        require(actor, Permission::WriteCatalog)?;
        let now = self.now();
        let mut uow = self.begin(actor).await?;
        let s = uow.tx.survey_in(id).await?;
        let name = match name {
            Some(n) => tenure_domain::validation::required_text(&n, 200)
                .map_err(|m| AppError::field("name", m))?,
            None => s.name,
        };
        let def = definition.unwrap_or(s.definition);
        def.check(s.kind)?;
        uow.tx
            .update_survey(id, &name, &def, active.unwrap_or(s.active), now)
            .await?;
        uow.emit(Event::SurveyUpdated { survey: id });
        let s = uow.tx.survey_in(id).await?;
        uow.commit().await?;
        Ok(s)
    }

    /// Invites a customer to answer a survey: a single-use link.
    pub async fn invite(
        &self,
        actor: &Actor,
        survey: SurveyId,
        customer: CustomerId,
        ticket: Option<TicketId>,
    ) -> AppResult<InvitationLink> {
        require(actor, Permission::WriteCustomers)?;
        let now = self.now();
        let mut uow = self.begin(actor).await?;
        let s = uow.tx.survey_in(survey).await?;
        if !s.active {
            return Err(AppError::field("survey_id", "the survey is switched off"));
        }
        let service = service_in(&mut uow.tx).await?;
        let link = self
            .invite_in(&mut uow.tx, survey, customer, ticket, None, &service, now)
            .await?
            .ok_or_else(|| AppError::Internal("an invitation without a key conflicted".into()))?;
        uow.emit(Event::SurveyInvited {
            invitation: link.invitation_id,
            survey,
            customer,
        });
        uow.commit().await?;
        Ok(link)
    }

    #[allow(clippy::too_many_arguments)]
    async fn invite_in(
        &self,
        tx: &mut WriteTx<'_>,
        survey: SurveyId,
        customer: CustomerId,
        ticket: Option<TicketId>,
        key: Option<&str>,
        service: &Service,
        now: DateTime<Utc>,
    ) -> AppResult<Option<InvitationLink>> {
        let secret = self.survey_secret(tx).await?;
        let expires_at = now + Duration::days(i64::from(service.settings.invitation_days));
        let placeholder = format!("pending:{}", crate::random_hex(16));
        let Some(id) = tx
            .insert_invitation(survey, customer, ticket, &placeholder, key, now, expires_at)
            .await?
        else {
            return Ok(None);
        };
        let token = Self::token_for(&secret, id)?;
        tx.set_invitation_hash(id, &hash_token(&token)).await?;
        Ok(Some(InvitationLink {
            invitation_id: id,
            survey_id: survey,
            customer_id: customer,
            url: self.link(&token),
            token,
            expires_at,
            answered_at: None,
        }))
    }

    /// The survey behind a link, for the public answer page: a forged token is not found,
    /// a used or expired one is refused.
    pub async fn public_survey(&self, token: &str) -> AppResult<PublicSurvey> {
        let inv = self.valid_invitation(token).await?;
        let survey = self.store().get_survey(inv.survey_id).await?;
        let brief = self.store().customer_brief(inv.customer_id).await?;
        Ok(PublicSurvey {
            survey,
            invitation: inv,
            locale: brief.locale.unwrap_or_else(|| "en".into()),
            customer_name: brief.name,
        })
    }

    async fn valid_invitation(&self, token: &str) -> AppResult<Invitation> {
        let forged = || AppError::NotFound("this survey link is not valid".into());
        if !tenure_domain::survey::token_shape(token) {
            return Err(forged());
        }
        let inv = self
            .store()
            .invitation_by_hash(&hash_token(token))
            .await?
            .ok_or_else(forged)?;
        check_open(&inv, self.now())?;
        Ok(inv)
    }

    /// The customer's answer through their link: once per link.
    pub async fn answer_by_token(
        &self,
        token: &str,
        answers: Vec<AnswerInput>,
        importance: Option<Importance>,
    ) -> AppResult<Answered> {
        let forged = || AppError::NotFound("this survey link is not valid".into());
        if !tenure_domain::survey::token_shape(token) {
            return Err(forged());
        }
        let actor = respondent();
        let now = self.now();
        let mut uow = self.begin(&actor).await?;
        let inv = uow
            .tx
            .invitation_by_hash_in(&hash_token(token))
            .await?
            .ok_or_else(forged)?;
        check_open(&inv, now)?;
        let survey = uow.tx.survey_in(inv.survey_id).await?;
        let checked = check_response(survey.kind, &survey.definition, &answers, importance)?;
        if !uow.tx.claim_invitation(inv.id, now).await? {
            return Err(AppError::Conflict(
                "this survey link was used already".into(),
            ));
        }
        let answered = self
            .record_in(
                &mut uow,
                &survey,
                inv.customer_id,
                Some(inv.id),
                inv.ticket_id,
                None,
                None,
                checked,
                now,
            )
            .await?;
        uow.commit().await?;
        Ok(answered)
    }

    /// Staff record an answer (given on the phone, on paper, in the shop).
    #[allow(clippy::too_many_arguments)]
    pub async fn record_response(
        &self,
        actor: &Actor,
        survey: SurveyId,
        customer: CustomerId,
        answers: Vec<AnswerInput>,
        importance: Option<Importance>,
        ticket: Option<TicketId>,
        channel: Option<Channel>,
        answered_at: Option<DateTime<Utc>>,
    ) -> AppResult<Answered> {
        require(actor, Permission::WriteCustomers)?;
        let ctx = self.input_context();
        let at = answered_at.unwrap_or(ctx.now);
        let mut c = tenure_domain::validation::Collector::new();
        ctx.not_future(&mut c, "answered_at", at);
        c.finish()?;
        let mut uow = self.begin(actor).await?;
        let s = uow.tx.survey_in(survey).await?;
        let checked = check_response(s.kind, &s.definition, &answers, importance)?;
        let answered = self
            .record_in(
                &mut uow, &s, customer, None, ticket, channel, None, checked, at,
            )
            .await?;
        uow.commit().await?;
        Ok(answered)
    }

    /// Stores an answer and closes the loop: the feedback row, a ticket for an unhappy
    /// answer, the survey bonus.
    #[allow(clippy::too_many_arguments)]
    pub(crate) async fn record_in(
        &self,
        uow: &mut crate::unit::UnitOfWork<'_>,
        survey: &Survey,
        customer: CustomerId,
        invitation: Option<InvitationId>,
        ticket: Option<TicketId>,
        channel: Option<Channel>,
        external_id: Option<String>,
        checked: tenure_domain::survey::CheckedResponse,
        at: DateTime<Utc>,
    ) -> AppResult<Answered> {
        let actor = uow.actor().clone();
        let source = match ticket {
            Some(t) => Some(uow.tx.ticket_for_update(t).await?),
            None => None,
        };
        if let Some(t) = &source
            && t.customer_id != customer
        {
            return Err(AppError::field(
                "ticket_id",
                "the ticket belongs to another customer",
            ));
        }
        let new = NewResponse {
            invitation_id: invitation,
            ticket_id: ticket,
            agent_id: source.as_ref().and_then(|t| t.assignee_id),
            channel: channel.or(source.as_ref().map(|t| t.channel)),
            ..new_response(survey, customer, external_id, &checked, at, &actor)
        };
        let Some(id) = uow.tx.insert_response(&new).await? else {
            return Err(AppError::Conflict(
                "a survey response with this external_id exists".into(),
            ));
        };
        let service = service_in(&mut uow.tx).await?;
        let s = &service.settings;
        let unhappy = match (survey.kind, checked.score) {
            (SurveyKind::Nps, Some(v)) => v <= i64::from(s.nps_ticket_at_most),
            (SurveyKind::Csat, Some(v)) => v <= i64::from(s.csat_ticket_at_most),
            _ => false,
        };
        let mut opened = None;
        if unhappy {
            let fields = TicketFields {
                external_id: None,
                customer_id: customer,
                subject: format!(
                    "Unhappy {} answer: {} of {}",
                    survey.kind.as_str().to_uppercase(),
                    checked.score.unwrap_or_default(),
                    if survey.kind == SurveyKind::Nps {
                        10
                    } else {
                        5
                    }
                ),
                description: checked.comment.clone().unwrap_or_default(),
                category: source
                    .as_ref()
                    .map_or(TicketCategory::Other, |t| t.category),
                priority: TicketPriority::High,
                channel: new.channel.unwrap_or(Channel::Web),
                assignee_id: source.as_ref().and_then(|t| t.assignee_id),
                opened_at: self.now().max(at),
            };
            if let Some(t) = open_ticket(&mut uow.tx, &actor, fields, Some(id), self.now()).await? {
                uow.tx.link_response_ticket(id, t.id).await?;
                uow.emit(Event::TicketCreated {
                    ticket: t.id,
                    customer,
                });
                opened = Some(t.id);
            }
        }
        uow.tx.refresh_feedback(customer).await?;
        let bonus = crate::loyalty::bonus_in(
            &mut uow.tx,
            &actor,
            customer,
            BonusEvent::SurveyAnswered,
            &format!("response:{id}"),
            self.now(),
        )
        .await?;
        if bonus {
            uow.emit(Event::PointsChanged { customer });
        }
        uow.emit(Event::SurveyAnswered {
            response: id,
            survey: survey.id,
            customer,
        });
        Ok(Answered {
            response: id,
            opened_ticket: opened,
            bonus,
        })
    }

    pub async fn responses(
        &self,
        actor: &Actor,
        survey: Option<SurveyId>,
        customer: Option<CustomerId>,
        page: &PageRequest,
    ) -> AppResult<Listed<Response>> {
        require(actor, Permission::ReadCustomers)?;
        let limit = page.limit()?;
        let before = page.after::<ResponseCursor>()?.map(|c| c.0);
        let p = self
            .store()
            .list_responses(
                survey,
                customer,
                self.owner_scope(actor).await?,
                before,
                limit,
            )
            .await?;
        Ok(Listed {
            next_cursor: p
                .next
                .map(|n| tenure_domain::cursor::encode(&ResponseCursor(n))),
            items: p.items,
        })
    }

    pub async fn response(
        &self,
        actor: &Actor,
        id: ResponseId,
    ) -> AppResult<(Response, Vec<tenure_domain::survey::Answer>)> {
        require(actor, Permission::ReadCustomers)?;
        Ok(self.store().get_response(id).await?)
    }

    /// The staff who can be given tickets and tasks: id and name (the e-mail address where
    /// the name is empty), for the assignee lists of the service pages.
    pub async fn staff_directory(&self, actor: &Actor) -> AppResult<Vec<(StaffUserId, String)>> {
        require(actor, Permission::ReadCustomers)?;
        Ok(self
            .store()
            .list_users()
            .await?
            .into_iter()
            .filter(|u| u.role.allows(Permission::WriteCustomers))
            .map(|u| (u.id, if u.name.is_empty() { u.email } else { u.name }))
            .collect())
    }

    /// The names of these customers, for lists that show whose a row is.
    pub async fn customer_names(
        &self,
        actor: &Actor,
        ids: &[CustomerId],
    ) -> AppResult<std::collections::HashMap<CustomerId, String>> {
        require(actor, Permission::ReadCustomers)?;
        let raw: Vec<i64> = ids.iter().map(|c| c.0).collect();
        Ok(self
            .store()
            .customer_names(&raw)
            .await?
            .into_iter()
            .map(|(k, v)| (CustomerId(k), v))
            .collect())
    }

    pub async fn feedback(&self, actor: &Actor, customer: CustomerId) -> AppResult<Feedback> {
        require(actor, Permission::ReadCustomers)?;
        Ok(self.store().feedback(customer).await?)
    }

    // -- reports ---------------------------------------------------------------------------

    /// NPS and CSAT over time, by channel, agent and segment; SERVQUAL's gaps; agents'
    /// response and resolution times; breaches; loss reasons beside complaint categories.
    pub async fn service_report(&self, actor: &Actor, months: u32) -> AppResult<ServiceReport> {
        require(actor, Permission::ReadAggregates)?;
        let months = months.clamp(1, 60);
        let now = self.now();
        let since = month_start(now, months - 1);
        let store = self.store();
        let mut by_month: std::collections::BTreeMap<String, ScoreCounts> = Default::default();
        for (day, c) in store.score_counts(ScoreGroup::Day, since).await? {
            let d = DateTime::from_timestamp(day * 86_400, 0).unwrap_or(now);
            let key = format!("{:04}-{:02}", d.year(), d.month());
            let e = by_month.entry(key).or_default();
            for i in 0..11 {
                e.nps[i] += c.nps[i];
            }
            for i in 0..6 {
                e.csat[i] += c.csat[i];
            }
        }
        let channels: Vec<Channel> = Channel::ALL.to_vec();
        let by_channel = store
            .score_counts(ScoreGroup::Channel, since)
            .await?
            .into_iter()
            .map(|(g, c)| {
                let ch = usize::try_from(g - 1)
                    .ok()
                    .and_then(|i| channels.get(i).copied());
                (ch, ScoreSummary::of(&c))
            })
            .collect();
        let by_agent = store
            .score_counts(ScoreGroup::Agent, since)
            .await?
            .into_iter()
            .map(|(g, c)| ((g > 0).then_some(StaffUserId(g)), ScoreSummary::of(&c)))
            .collect();
        let names: std::collections::HashMap<SegmentId, String> = store
            .segments()
            .await?
            .into_iter()
            .map(|s| (s.id, s.name))
            .collect();
        let by_segment = store
            .score_counts(ScoreGroup::Segment, since)
            .await?
            .into_iter()
            .map(|(g, c)| {
                let id = SegmentId(g);
                (
                    id,
                    names.get(&id).cloned().unwrap_or_default(),
                    ScoreSummary::of(&c),
                )
            })
            .collect();
        Ok(ServiceReport {
            since,
            by_month: by_month
                .into_iter()
                .map(|(k, c)| (k, ScoreSummary::of(&c)))
                .collect(),
            by_channel,
            by_agent,
            by_segment,
            servqual: store.servqual_report(since).await?,
            agents: store.agent_report(since).await?,
            breaches: store.breach_report(since).await?,
            loss_reasons: store.loss_reasons_by_category().await?,
            overdue: store.overdue_report(now).await?,
        })
    }
}

fn month_start(now: DateTime<Utc>, back: u32) -> DateTime<Utc> {
    let mut y = now.year();
    let mut m = now.month() as i32 - back as i32;
    while m <= 0 {
        m += 12;
        y -= 1;
    }
    chrono::NaiveDate::from_ymd_opt(y, m as u32, 1)
        .and_then(|d| d.and_hms_opt(0, 0, 0))
        .map_or(now, |d| d.and_utc())
}

fn check_open(inv: &Invitation, now: DateTime<Utc>) -> AppResult<()> {
    if inv.answered_at.is_some() {
        return Err(AppError::Conflict(
            "this survey link was used already".into(),
        ));
    }
    if inv.expires_at < now {
        return Err(AppError::Conflict("this survey link has expired".into()));
    }
    Ok(())
}

/// Applies the clocks' side of a status move (`t.status` is the new status).
fn apply_move(service: &Service, t: &mut Ticket, from: TicketStatus, now: DateTime<Utc>) {
    if from == TicketStatus::PendingCustomer
        && let Some(p) = t.paused_at.take()
    {
        t.paused_minutes += service.minutes_between(p, now);
        set_dues(service, t);
    }
    match t.status {
        TicketStatus::PendingCustomer => t.paused_at = Some(now),
        TicketStatus::Resolved | TicketStatus::Closed => {
            if t.resolved_at.is_none() {
                t.resolved_at = Some(now);
                t.resolution_minutes =
                    Some((service.minutes_between(t.opened_at, now) - t.paused_minutes).max(0));
                if t.resolution_due.is_some_and(|d| now > d) {
                    t.resolution_breached = true;
                }
            }
            if t.status == TicketStatus::Closed {
                t.closed_at = Some(now);
            }
        }
        TicketStatus::Reopened => {
            t.resolved_at = None;
            t.closed_at = None;
            t.resolution_minutes = None;
            t.warned = false;
        }
        TicketStatus::New | TicketStatus::Open => {}
    }
}

/// Opens a ticket with its clocks, its first message and its first event.
async fn open_ticket(
    tx: &mut WriteTx<'_>,
    actor: &Actor,
    f: TicketFields,
    response: Option<ResponseId>,
    now: DateTime<Utc>,
) -> AppResult<Option<Ticket>> {
    store_ticket(tx, actor, f, response, None, now).await
}

/// What an imported ticket went through before Tenure: its status and when it was first
/// answered and resolved (the SLA minutes and breaches follow from them).
#[derive(Debug, Clone, PartialEq)]
pub struct TicketHistory {
    pub status: TicketStatus,
    pub first_response_at: Option<DateTime<Utc>>,
    pub resolved_at: Option<DateTime<Utc>>,
}

fn apply_history(service: &Service, t: &mut Ticket, h: &TicketHistory) {
    t.status = h.status;
    if let Some(at) = h.first_response_at.filter(|at| *at >= t.opened_at) {
        t.first_response_at = Some(at);
        t.first_response_minutes = Some(service.minutes_between(t.opened_at, at));
        t.first_response_breached = t.first_response_due.is_some_and(|d| at > d);
    }
    let done = matches!(h.status, TicketStatus::Resolved | TicketStatus::Closed);
    if let Some(at) = h.resolved_at.filter(|at| done && *at >= t.opened_at) {
        t.resolved_at = Some(at);
        t.resolution_minutes = Some(service.minutes_between(t.opened_at, at));
        t.resolution_breached = t.resolution_due.is_some_and(|d| at > d);
        if h.status == TicketStatus::Closed {
            t.closed_at = Some(at);
        }
    }
}

async fn store_ticket(
    tx: &mut WriteTx<'_>,
    actor: &Actor,
    f: TicketFields,
    response: Option<ResponseId>,
    history: Option<&TicketHistory>,
    now: DateTime<Utc>,
) -> AppResult<Option<Ticket>> {
    let service = service_in(tx).await?;
    let mut t = Ticket {
        id: TicketId(0),
        external_id: f.external_id,
        customer_id: f.customer_id,
        subject: f.subject,
        category: f.category,
        priority: f.priority,
        channel: f.channel,
        status: TicketStatus::New,
        assignee_id: f.assignee_id,
        opened_at: f.opened_at,
        first_response_at: None,
        first_response_due: None,
        resolution_due: None,
        paused_at: None,
        paused_minutes: 0,
        resolved_at: None,
        closed_at: None,
        first_response_breached: false,
        resolution_breached: false,
        warned: false,
        first_response_minutes: None,
        resolution_minutes: None,
        response_id: response,
        version: 1,
        created_by: actor.display_name(),
        updated_at: now,
    };
    set_dues(&service, &mut t);
    if let Some(h) = history {
        apply_history(&service, &mut t, h);
    }
    let Some(saved) = tx.insert_ticket(&t).await? else {
        return Ok(None);
    };
    if !f.description.is_empty() {
        tx.add_ticket_message(
            &saved,
            MessageKind::Customer,
            &f.description,
            &[],
            None,
            &actor.display_name(),
            saved.opened_at,
        )
        .await?;
    }
    tx.add_ticket_event(&saved, None, saved.opened_at, &actor.display_name())
        .await?;
    tx.refresh_feedback(saved.customer_id).await?;
    Ok(Some(saved))
}

/// A response to store, without invitation, ticket or agent.
fn new_response(
    survey: &Survey,
    customer: CustomerId,
    external_id: Option<String>,
    checked: &tenure_domain::survey::CheckedResponse,
    at: DateTime<Utc>,
    actor: &Actor,
) -> NewResponse {
    NewResponse {
        external_id,
        survey_id: survey.id,
        kind: survey.kind,
        customer_id: customer,
        invitation_id: None,
        ticket_id: None,
        agent_id: None,
        channel: None,
        score: checked.score,
        nps_group: checked.nps_group,
        comment: checked.comment.clone(),
        answered_at: at,
        recorded_by: actor.display_name(),
        servqual: checked.servqual,
        answers: checked.answers.clone(),
    }
}

/// A historical ticket of an import file.
#[derive(Debug, Clone)]
pub struct ImportedTicket {
    pub line: u64,
    pub customer_external_id: String,
    /// `customer_id` is resolved from `customer_external_id` when the batch is stored.
    pub fields: TicketFields,
    pub history: TicketHistory,
}

/// A historical survey answer of an import file (NPS and CSAT surveys: a score and a
/// comment).
#[derive(Debug, Clone)]
pub struct ImportedResponse {
    pub line: u64,
    pub external_id: String,
    pub customer_external_id: String,
    /// The survey's name.
    pub survey: String,
    pub answered_at: DateTime<Utc>,
    pub channel: Option<Channel>,
    pub score: i64,
    pub comment: Option<String>,
}

/// What a batch of imported tickets or answers did.
#[derive(Debug, Default)]
pub struct ImportedBatch {
    pub inserted: u64,
    pub skipped: u64,
    /// Line, column, reason.
    pub rejections: Vec<(u64, &'static str, String)>,
}

impl App {
    /// Stores a batch of historical tickets and survey answers in one transaction. History
    /// does not run the loop: no call-backs, invitations, tickets for unhappy answers or
    /// bonus points; it does set the customers' scores and open tickets. A row whose
    /// external id is stored already is skipped (a re-run); one naming an unknown customer
    /// or survey is rejected.
    pub(crate) async fn import_service_batch(
        &self,
        actor: &Actor,
        tickets: Vec<ImportedTicket>,
        responses: Vec<ImportedResponse>,
    ) -> AppResult<ImportedBatch> {
        let store = self.store();
        let mut out = ImportedBatch::default();
        let mut customers: std::collections::HashMap<String, Option<CustomerId>> =
            Default::default();
        let wanted = tickets
            .iter()
            .map(|t| &t.customer_external_id)
            .chain(responses.iter().map(|r| &r.customer_external_id));
        for x in wanted {
            if !customers.contains_key(x) {
                let c = store.find_customer_by_external_id(x).await?.map(|c| c.id);
                customers.insert(x.clone(), c);
            }
        }
        let surveys = store.list_surveys().await?;
        let mut uow = self.begin(actor).await?;
        for mut t in tickets {
            let Some(Some(c)) = customers.get(&t.customer_external_id) else {
                out.rejections.push((
                    t.line,
                    "customer_external_id",
                    format!(
                        "no customer {:?} (import the customers first)",
                        t.customer_external_id
                    ),
                ));
                continue;
            };
            t.fields.customer_id = *c;
            let opened = t.fields.opened_at;
            match store_ticket(&mut uow.tx, actor, t.fields, None, Some(&t.history), opened).await?
            {
                Some(_) => out.inserted += 1,
                None => out.skipped += 1,
            }
        }
        for r in responses {
            let Some(Some(c)) = customers.get(&r.customer_external_id) else {
                out.rejections.push((
                    r.line,
                    "customer_external_id",
                    format!(
                        "no customer {:?} (import the customers first)",
                        r.customer_external_id
                    ),
                ));
                continue;
            };
            let Some(survey) = surveys.iter().find(|s| s.name == r.survey) else {
                out.rejections
                    .push((r.line, "survey", format!("no survey named {:?}", r.survey)));
                continue;
            };
            if !matches!(survey.kind, SurveyKind::Nps | SurveyKind::Csat) {
                out.rejections.push((
                    r.line,
                    "survey",
                    "only NPS and CSAT answers are imported from a file".into(),
                ));
                continue;
            }
            let Some(first) = survey.definition.questions.first() else {
                out.rejections
                    .push((r.line, "survey", "the survey has no question".into()));
                continue;
            };
            let mut answers = vec![AnswerInput {
                question: first.id.clone(),
                value: Some(r.score),
                ..AnswerInput::default()
            }];
            if let (Some(text), Some(q)) = (
                &r.comment,
                survey
                    .definition
                    .questions
                    .iter()
                    .find(|q| q.kind == tenure_domain::survey::QuestionKind::Text),
            ) {
                answers.push(AnswerInput {
                    question: q.id.clone(),
                    text: Some(text.clone()),
                    ..AnswerInput::default()
                });
            }
            let checked = match check_response(survey.kind, &survey.definition, &answers, None) {
                Ok(c) => c,
                Err(e) => {
                    let reason =
                        e.0.iter()
                            .map(|f| f.message.clone())
                            .collect::<Vec<_>>()
                            .join("; ");
                    out.rejections.push((r.line, "score", reason));
                    continue;
                }
            };
            let new = NewResponse {
                channel: r.channel,
                ..new_response(
                    survey,
                    *c,
                    Some(r.external_id),
                    &checked,
                    r.answered_at,
                    actor,
                )
            };
            match uow.tx.insert_response(&new).await? {
                Some(_) => {
                    uow.tx.refresh_feedback(*c).await?;
                    out.inserted += 1;
                }
                None => out.skipped += 1,
            }
        }
        uow.commit().await?;
        Ok(out)
    }
}

struct RuleTask {
    title: String,
    customer: Option<CustomerId>,
    ticket: Option<TicketId>,
    assignee: Option<StaffUserId>,
    due: DateTime<Utc>,
    source: TaskSource,
    key: String,
}

/// A task a rule makes, once per key; its reminder at the due time within business hours.
async fn insert_rule_task(
    tx: &mut WriteTx<'_>,
    actor: &Actor,
    service: &Service,
    r: RuleTask,
    now: DateTime<Utc>,
) -> AppResult<Option<Task>> {
    let task = Task {
        id: TaskId(0),
        title: r
            .title
            .chars()
            .take(tenure_domain::service::TASK_TITLE_MAX)
            .collect(),
        note: String::new(),
        customer_id: r.customer,
        ticket_id: r.ticket,
        assignee_id: r.assignee,
        due_at: r.due,
        remind_at: Some(service.remind_at(r.due.max(now))),
        reminded_at: None,
        status: TaskStatus::Open,
        source: r.source,
        source_key: Some(r.key),
        created_by: actor.display_name(),
        created_at: now,
        done_at: None,
        updated_at: now,
    };
    Ok(tx.insert_task(&task).await?)
}

/// An escalation reminder to the assignee: at once when open, else at the next opening.
async fn escalate(
    tx: &mut WriteTx<'_>,
    actor: &Actor,
    service: &Service,
    t: &Ticket,
    what: &str,
    now: DateTime<Utc>,
) -> AppResult<()> {
    let title = match what {
        "first_response" => format!("First reply overdue: \u{201c}{}\u{201d}", t.subject),
        "resolution" => format!("Resolution overdue: \u{201c}{}\u{201d}", t.subject),
        _ => format!("Resolution due soon: \u{201c}{}\u{201d}", t.subject),
    };
    let due = match what {
        "first_response" => t.first_response_due,
        _ => t.resolution_due,
    }
    .unwrap_or(now);
    insert_rule_task(
        tx,
        actor,
        service,
        RuleTask {
            title,
            customer: Some(t.customer_id),
            ticket: Some(t.id),
            assignee: t.assignee_id,
            due,
            source: TaskSource::Escalation,
            key: format!("escalation:ticket:{}:{what}", t.id),
        },
        now,
    )
    .await?;
    Ok(())
}

/// The follow-up rules on writes: a contact with a prospect schedules the next one, a
/// customer whose spend crosses the line gets a thank-you call, a merge re-reads both
/// customers' feedback.
pub struct FollowUps {
    pub clock: crate::Clock,
}

impl Handler for FollowUps {
    fn name(&self) -> &'static str {
        "follow-ups"
    }

    fn handle<'a>(&'a self, ctx: &'a mut Context<'_, '_>, event: &'a Event) -> HandlerFuture<'a> {
        Box::pin(async move {
            let now = self.clock.now();
            match event {
                Event::InteractionRecorded {
                    interaction,
                    customer,
                } => {
                    let service = service_in(ctx.tx).await?;
                    let days = service.settings.next_contact_days;
                    if days == 0 {
                        return Ok(());
                    }
                    let brief = ctx.tx.customer_brief_in(*customer).await?;
                    if !matches!(brief.stage.as_deref(), Some("prospect") | Some("potential")) {
                        return Ok(());
                    }
                    ctx.tx
                        .finish_tasks(*customer, TaskSource::NextContact, now)
                        .await?;
                    let due = service.remind_at(now + Duration::days(i64::from(days)));
                    let actor = ctx.actor.clone();
                    insert_rule_task(
                        ctx.tx,
                        &actor,
                        &service,
                        RuleTask {
                            title: format!("Next contact with {}", brief.name),
                            customer: Some(*customer),
                            ticket: None,
                            assignee: brief.owner_id.or_else(|| staff_of(&actor)),
                            due,
                            source: TaskSource::NextContact,
                            key: format!("next_contact:interaction:{interaction}"),
                        },
                        now,
                    )
                    .await?;
                }
                Event::OrderRecorded { customer, .. } => {
                    let service = service_in(ctx.tx).await?;
                    let line = service.settings.thank_you_spend;
                    if line == 0 {
                        return Ok(());
                    }
                    let brief = ctx.tx.customer_brief_in(*customer).await?;
                    let exp = tenure_domain::money::minor_exponent(ctx.tx.reporting_currency());
                    let minor = i64::try_from(line)
                        .unwrap_or(i64::MAX)
                        .saturating_mul(10_i64.pow(exp));
                    if brief.spend_minor < minor {
                        return Ok(());
                    }
                    let due = service
                        .hours
                        .add_open(now, Duration::hours(8))
                        .unwrap_or(now);
                    let actor = ctx.actor.clone();
                    insert_rule_task(
                        ctx.tx,
                        &actor,
                        &service,
                        RuleTask {
                            title: format!("Thank-you call to {}", brief.name),
                            customer: Some(*customer),
                            ticket: None,
                            assignee: brief.owner_id,
                            due,
                            source: TaskSource::ThankYou,
                            key: format!("thank_you:customer:{customer}"),
                        },
                        now,
                    )
                    .await?;
                }
                Event::CustomersMerged { survivor, .. } => {
                    ctx.tx.refresh_feedback(*survivor).await?;
                }
                Event::MergeUndone {
                    survivor, restored, ..
                } => {
                    ctx.tx.refresh_feedback(*survivor).await?;
                    ctx.tx.refresh_feedback(*restored).await?;
                }
                _ => {}
            }
            Ok(())
        })
    }
}

/// Where a page of tickets ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TicketCursor(pub TicketId);

impl tenure_domain::cursor::CursorKey for TicketCursor {
    const TAG: &'static str = "tickets";
    type Parts = (i64,);
    fn to_parts(&self) -> Self::Parts {
        (self.0.0,)
    }
    fn from_parts((id,): Self::Parts) -> Option<Self> {
        (id > 0).then_some(TicketCursor(TicketId(id)))
    }
}

/// Where a page of tasks ends: due time and id.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TaskCursor(pub i64, pub i64);

impl tenure_domain::cursor::CursorKey for TaskCursor {
    const TAG: &'static str = "tasks";
    type Parts = (i64, i64);
    fn to_parts(&self) -> Self::Parts {
        (self.0, self.1)
    }
    fn from_parts((due, id): Self::Parts) -> Option<Self> {
        (id > 0).then_some(TaskCursor(due, id))
    }
}

/// Where a page of survey responses ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ResponseCursor(pub ResponseId);

impl tenure_domain::cursor::CursorKey for ResponseCursor {
    const TAG: &'static str = "responses";
    type Parts = (i64,);
    fn to_parts(&self) -> Self::Parts {
        (self.0.0,)
    }
    fn from_parts((id,): Self::Parts) -> Option<Self> {
        (id > 0).then_some(ResponseCursor(ResponseId(id)))
    }
}

/// The group a score puts an NPS answer in, for callers showing one.
pub fn nps_group(score: i64) -> NpsGroup {
    NpsGroup::of(score)
}

/// A task a journey step makes for the customer's owner, once per `key`.
pub(crate) async fn journey_task_in(
    tx: &mut WriteTx<'_>,
    actor: &Actor,
    customer: CustomerId,
    title: &str,
    due: DateTime<Utc>,
    key: &str,
    now: DateTime<Utc>,
) -> AppResult<Option<TaskId>> {
    let service = service_in(tx).await?;
    let brief = tx.customer_brief_in(customer).await?;
    let task = insert_rule_task(
        tx,
        actor,
        &service,
        RuleTask {
            title: title.to_owned(),
            customer: Some(customer),
            ticket: None,
            assignee: brief.owner_id,
            due,
            source: TaskSource::Journey,
            key: key.to_owned(),
        },
        now,
    )
    .await?;
    Ok(task.map(|t| t.id))
}
