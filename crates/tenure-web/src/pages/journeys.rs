//! The journeys pages: the list with each journey's switch and the delivery settings
//! (`/journeys`), a journey's steps, report and the customers it did not reach
//! (`/journeys/{id}`), the templates with their editor and a preview for a real customer
//! (`/templates`, `/templates/{id}`), the messages panel of the 360° page — and the
//! customer's side: the unsubscribe page behind the link every email carries (`/u/{token}`,
//! no sign-in). Opening that page asks; the button — or a mail program's one-click POST
//! (RFC 8058) — unsubscribes. The token itself is the authority, so the POST needs no form
//! key: a mail provider sends it from elsewhere.

use std::collections::BTreeMap;

use axum::Form;
use axum::extract::Path;
use axum::http::StatusCode;
use axum::response::Response;
use serde::Serialize;
use tenure_app::model::{JourneyCounts, Message, MessageFilter, Template};
use tenure_app::{AppError, PageRequest};
use tenure_domain::access::Permission;
use tenure_domain::changes::Actor;
use tenure_domain::ids::{CustomerId, JourneyId, TemplateId};
use tenure_domain::journey::{
    Channel, FrequencyCap, JourneyDefinition, JourneySettings, Lift, MessageStatus, Reentry,
    SkipReason, Step, Trigger,
};
use tenure_domain::survey::LOCALES;

use super::customers::see_other;
use super::{field_errors, names, options, param, path_id, query_pairs};
use crate::render::{app_error, error_page, page, ser};
use crate::session::{Ctx, field};

fn channel_word(ctx: &Ctx, channel: Channel) -> String {
    ctx.t(&format!("channel-{channel}"))
}

/// Minutes as the largest whole unit: `2 days`, `3 h`, `45 min`.
fn duration(ctx: &Ctx, minutes: u32) -> String {
    let n = |v: u32| [("n", i64::from(v).into())];
    if minutes >= 1440 && minutes.is_multiple_of(1440) {
        ctx.t_with("journey-days", &n(minutes / 1440))
    } else if minutes >= 60 && minutes.is_multiple_of(60) {
        ctx.t_with("journey-hours", &n(minutes / 60))
    } else {
        ctx.t_with("journey-minutes", &n(minutes))
    }
}

/// What starts a journey, in words.
fn trigger_text(ctx: &Ctx, t: &Trigger) -> String {
    match t {
        Trigger::Event { event, stage } => {
            let what = ctx.t(&format!("journey-event-{event}"));
            match stage {
                Some(s) => ctx.t_with(
                    "journey-trigger-stage",
                    &[
                        ("event", what.into()),
                        ("stage", ctx.t(&format!("stage-{s}")).into()),
                    ],
                ),
                None => what,
            }
        }
        Trigger::Birthday => ctx.t("journey-trigger-birthday"),
        Trigger::Holiday { holidays } => ctx.t_with(
            "journey-trigger-holiday",
            &[(
                "holidays",
                holidays
                    .iter()
                    .map(|h| ctx.t(&format!("holiday-{h}")))
                    .collect::<Vec<_>>()
                    .join(", ")
                    .into(),
            )],
        ),
        Trigger::Anniversary => ctx.t("journey-trigger-anniversary"),
        Trigger::PointsExpiring { days } => {
            ctx.t_with("journey-trigger-points", &[("n", i64::from(*days).into())])
        }
        Trigger::Daily => ctx.t("journey-trigger-daily"),
    }
}

fn reentry_text(ctx: &Ctx, r: Reentry) -> String {
    match r {
        Reentry::Never => ctx.t("journey-reentry-never"),
        Reentry::EachOccasion => ctx.t("journey-reentry-each"),
        Reentry::AfterDays(d) => ctx.t_with("journey-reentry-after", &[("n", i64::from(d).into())]),
    }
}

/// One step, in words, with its kind for the page's marker.
#[derive(Serialize)]
struct StepView {
    kind: &'static str,
    text: String,
    /// A condition or template name the page shows as code.
    code: Option<String>,
}

fn step_view(ctx: &Ctx, s: &Step) -> StepView {
    let plain = |kind, text| StepView {
        kind,
        text,
        code: None,
    };
    match s {
        Step::Wait { minutes } => plain(
            "wait",
            ctx.t_with(
                "journey-step-wait",
                &[("time", duration(ctx, *minutes).into())],
            ),
        ),
        Step::WaitUntil { local_time } => plain(
            "wait",
            ctx.t_with(
                "journey-step-wait-until",
                &[("time", local_time.clone().into())],
            ),
        ),
        Step::Branch {
            condition,
            otherwise,
        } => StepView {
            kind: "branch",
            text: ctx.t_with(
                "journey-step-branch",
                &[("step", i64::try_from(*otherwise).unwrap_or(0).into())],
            ),
            code: Some(condition.clone()),
        },
        Step::Send {
            channel,
            template,
            class,
            priority,
        } => StepView {
            kind: "send",
            text: ctx.t_with(
                "journey-step-send",
                &[
                    ("channel", channel_word(ctx, *channel).into()),
                    ("class", ctx.t(&format!("outbox-class-{class}")).into()),
                    ("priority", i64::from(*priority).into()),
                ],
            ),
            code: Some(template.clone()),
        },
        Step::AddTag { tag } => StepView {
            kind: "tag",
            text: ctx.t("journey-step-add-tag"),
            code: Some(tag.clone()),
        },
        Step::RemoveTag { tag } => StepView {
            kind: "tag",
            text: ctx.t("journey-step-remove-tag"),
            code: Some(tag.clone()),
        },
        Step::GrantPoints { points, reason } => plain(
            "points",
            ctx.t_with(
                "journey-step-points",
                &[("n", (*points).into()), ("reason", reason.clone().into())],
            ),
        ),
        Step::CreateTask { title, due_days } => plain(
            "task",
            ctx.t_with(
                "journey-step-task",
                &[
                    ("title", title.clone().into()),
                    ("n", i64::from(*due_days).into()),
                ],
            ),
        ),
        Step::Exit => plain("exit", ctx.t("journey-step-exit")),
    }
}

/// A journey's title and description in the page's language: a ready-made journey whose
/// words nobody changed reads in every language; words a business wrote stay as written.
fn words(ctx: &Ctx, j: &tenure_app::model::Journey) -> (String, String) {
    let stock = tenure_app::messages::ready_made()
        .iter()
        .find(|r| r.name == j.name);
    let title = match stock {
        Some(r) if r.title == j.title => ctx.t(&format!("ready-{}", r.name)),
        _ => j.title.clone(),
    };
    let description = match stock {
        Some(r) if r.description == j.description => ctx.t(&format!("ready-{}-about", r.name)),
        _ => j.description.clone(),
    };
    (title, description)
}

/// Messages by outcome: (sent, queued, not sent).
fn outcome_totals(c: &JourneyCounts) -> (i64, i64, i64) {
    let mut t = (0, 0, 0);
    for (status, _, n) in &c.messages {
        match status {
            MessageStatus::Sent => t.0 += n,
            MessageStatus::Queued | MessageStatus::Sending => t.1 += n,
            MessageStatus::Failed | MessageStatus::Skipped => t.2 += n,
        }
    }
    t
}

// -- the list and the settings ---------------------------------------------------------------

#[derive(Serialize)]
struct JourneyRow {
    id: i64,
    title: String,
    description: String,
    trigger: String,
    enabled: bool,
    entered: i64,
    active: i64,
    control: i64,
    sent: i64,
    queued: i64,
    not_sent: i64,
}

/// The settings form as typed.
#[derive(Serialize)]
struct SettingsForm {
    quiet_start: String,
    quiet_end: String,
    cap_max: String,
    cap_days: String,
    business_name: String,
}

impl SettingsForm {
    fn of(s: &JourneySettings) -> SettingsForm {
        SettingsForm {
            quiet_start: s.quiet_start.clone(),
            quiet_end: s.quiet_end.clone(),
            cap_max: s.cap.max.to_string(),
            cap_days: s.cap.days.to_string(),
            business_name: s.business_name.clone(),
        }
    }
}

pub async fn list(ctx: Ctx) -> Response {
    let actor = step!(ctx.allowed(Permission::ReadAggregates));
    list_page(&ctx, &actor, None, StatusCode::OK).await
}

async fn list_page(
    ctx: &Ctx,
    actor: &Actor,
    notice: Option<(SettingsForm, BTreeMap<String, String>)>,
    status: StatusCode,
) -> Response {
    let app = &ctx.state.app;
    let journeys = fetch!(ctx, app.journey_overview(actor).await);
    let rows: Vec<JourneyRow> = journeys
        .iter()
        .map(|(j, c)| {
            let (sent, queued, not_sent) = outcome_totals(c);
            let (title, description) = words(ctx, j);
            JourneyRow {
                id: j.id.0,
                title,
                description,
                trigger: trigger_text(ctx, &j.definition.trigger),
                enabled: j.enabled,
                entered: c.entered,
                active: c.active,
                control: c.control,
                sent,
                queued,
                not_sent,
            }
        })
        .collect();
    let (form, errors) = match notice {
        Some(n) => n,
        None => (
            SettingsForm::of(&fetch!(ctx, app.journey_settings(actor).await)),
            BTreeMap::new(),
        ),
    };
    let pairs = query_pairs(&ctx.query);
    page(
        ctx,
        status,
        "journeys.html",
        None,
        minijinja::context! {
            rows => ser(&rows),
            settings => ser(&form),
            errors,
            saved => param(&pairs, "saved").is_some(),
            may_write => actor.allows(Permission::WriteCatalog),
        },
    )
}

pub async fn save_settings(ctx: Ctx, Form(form): Form<Vec<(String, String)>>) -> Response {
    let actor = step!(ctx.form_actor(&form, Permission::WriteCatalog));
    let typed = SettingsForm {
        quiet_start: field(&form, "quiet_start").trim().to_owned(),
        quiet_end: field(&form, "quiet_end").trim().to_owned(),
        cap_max: field(&form, "cap_max").trim().to_owned(),
        cap_days: field(&form, "cap_days").trim().to_owned(),
        business_name: field(&form, "business_name").trim().to_owned(),
    };
    let mut errors = BTreeMap::new();
    let mut number = |name: &str, v: &str| match v.parse::<u32>() {
        Ok(n) => n,
        Err(_) => {
            errors.insert(format!("cap.{name}"), ctx.t("journey-whole-number"));
            0
        }
    };
    let cap = FrequencyCap {
        max: number("max", &typed.cap_max),
        days: number("days", &typed.cap_days),
    };
    if errors.is_empty() {
        let s = JourneySettings {
            quiet_start: typed.quiet_start.clone(),
            quiet_end: typed.quiet_end.clone(),
            cap,
            business_name: typed.business_name.clone(),
        };
        match ctx.state.app.set_journey_settings(&actor, s).await {
            Ok(_) => return see_other("/journeys?saved=1#h-settings"),
            Err(e) => match field_errors(&e) {
                Some(errs) => errors = errs,
                None => return app_error(&ctx, e),
            },
        }
    }
    list_page(
        &ctx,
        &actor,
        Some((typed, errors)),
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await
}

// -- a journey -------------------------------------------------------------------------------

/// A journey's edit form as typed.
struct JourneyForm {
    title: String,
    description: String,
    definition: String,
    errors: BTreeMap<String, String>,
}

#[derive(Serialize)]
struct LiftView {
    treated: u64,
    treated_converted: u64,
    control: u64,
    control_converted: u64,
    /// Percentages with one decimal.
    treated_rate: Option<String>,
    control_rate: Option<String>,
    difference: Option<String>,
    ci: Option<(String, String)>,
    /// `better`, `worse` or `unclear` (the interval holds zero, or there is no control).
    verdict: &'static str,
}

fn lift_view(l: &Lift) -> LiftView {
    let pct = |v: f64| format!("{:.1}", v * 100.0);
    let signed = |v: f64| format!("{:+.1}", v * 100.0);
    let verdict = match (l.ci_low, l.ci_high) {
        (Some(lo), _) if lo > 0.0 => "better",
        (_, Some(hi)) if hi < 0.0 => "worse",
        _ => "unclear",
    };
    LiftView {
        treated: l.treated,
        treated_converted: l.treated_converted,
        control: l.control,
        control_converted: l.control_converted,
        treated_rate: l.treated_rate.map(pct),
        control_rate: l.control_rate.map(pct),
        difference: l.difference.map(signed),
        ci: l.ci_low.zip(l.ci_high).map(|(a, b)| (signed(a), signed(b))),
        verdict,
    }
}

#[derive(Serialize)]
struct MessageRow {
    id: i64,
    at: String,
    customer_id: i64,
    customer: String,
    channel: String,
    subject: String,
    template: String,
    status: String,
    reason: Option<String>,
    detail: String,
}

fn message_row(m: &Message, customer: String) -> MessageRow {
    MessageRow {
        id: m.id.0,
        at: m.sent_at.unwrap_or(m.created_at).to_rfc3339(),
        customer_id: m.customer_id.0,
        customer,
        channel: m.channel.to_string(),
        subject: m.subject.clone(),
        template: m.template.clone(),
        status: m.status.to_string(),
        reason: m.reason.map(|r| r.to_string()),
        detail: m.detail.clone().unwrap_or_default(),
    }
}

pub async fn show(ctx: Ctx, Path(raw): Path<String>) -> Response {
    let actor = step!(ctx.allowed(Permission::ReadAggregates));
    let Some(id) = path_id(&raw) else {
        return ctx.not_found();
    };
    show_journey(&ctx, &actor, JourneyId(id), None, StatusCode::OK).await
}

async fn show_journey(
    ctx: &Ctx,
    actor: &Actor,
    id: JourneyId,
    form: Option<JourneyForm>,
    status: StatusCode,
) -> Response {
    let app = &ctx.state.app;
    let r = fetch!(ctx, app.journey_report(actor, id).await);
    let j = &r.journey;
    let d = &j.definition;
    let may_read_customers = actor.allows(Permission::ReadCustomers);
    let pairs = query_pairs(&ctx.query);
    let reason: Option<SkipReason> = param(&pairs, "reason").and_then(|v| v.parse().ok());
    let not_sent = if may_read_customers {
        let filter = MessageFilter {
            journey: Some(id),
            reason,
            not_sent: true,
            ..MessageFilter::default()
        };
        let items = fetch!(
            ctx,
            app.messages(actor, &filter, &PageRequest::first(50)).await
        )
        .items;
        let who = step!(names(ctx, actor, items.iter().map(|m| m.customer_id)).await);
        items
            .iter()
            .map(|m| message_row(m, who.get(&m.customer_id).cloned().unwrap_or_default()))
            .collect()
    } else {
        Vec::new()
    };
    let outcomes: Vec<(String, Option<String>, i64)> = r
        .counts
        .messages
        .iter()
        .map(|(s, why, n)| (s.to_string(), why.map(|w| w.to_string()), *n))
        .collect();
    let form = form.unwrap_or_else(|| JourneyForm {
        title: j.title.clone(),
        description: j.description.clone(),
        definition: serde_json::to_string_pretty(d).unwrap_or_default(),
        errors: BTreeMap::new(),
    });
    let (title, description) = words(ctx, j);
    page(
        ctx,
        status,
        "journey.html",
        None,
        minijinja::context! {
            id => j.id.0,
            name => j.name.clone(),
            title, description,
            enabled => j.enabled,
            trigger => trigger_text(ctx, &d.trigger),
            entry => d.entry.clone(),
            reentry => reentry_text(ctx, d.reentry),
            control_percent => d.control_percent,
            conversion => ctx.t_with(
                &format!("journey-conversion-{}", d.conversion.kind),
                &[("n", i64::from(d.conversion.window_days).into())],
            ),
            late_window => d.late_window_hours,
            steps => ser(&d.steps.iter().map(|s| step_view(ctx, s)).collect::<Vec<_>>()),
            counts => minijinja::context! {
                entered => r.counts.entered,
                active => r.counts.active,
                completed => r.counts.completed,
                exited => r.counts.exited,
                control => r.counts.control,
            },
            outcomes,
            lift => ser(&lift_view(&r.lift)),
            not_sent => ser(&not_sent),
            reason => reason.map(|r| r.to_string()),
            reasons => options(SkipReason::ALL),
            form_title => form.title,
            form_description => form.description,
            form_definition => form.definition,
            errors => form.errors,
            saved => param(&pairs, "saved").is_some(),
            may_write => actor.allows(Permission::WriteCatalog),
            may_read_customers,
        },
    )
}

/// The journey page's forms: switch it on or off, save its title, description and
/// definition.
pub async fn action(
    ctx: Ctx,
    Path(raw): Path<String>,
    Form(form): Form<Vec<(String, String)>>,
) -> Response {
    let actor = step!(ctx.form_actor(&form, Permission::WriteCatalog));
    let Some(id) = path_id(&raw) else {
        return ctx.not_found();
    };
    let id = JourneyId(id);
    let app = &ctx.state.app;
    match field(&form, "action") {
        "toggle" => {
            let j = fetch!(&ctx, app.journey(&actor, id).await);
            let back = if field(&form, "back") == "list" {
                "/journeys".to_owned()
            } else {
                format!("/journeys/{}", id.0)
            };
            match app.set_journey_enabled(&actor, id, !j.enabled).await {
                Ok(_) => see_other(&back),
                Err(e) => match field_errors(&e) {
                    // A journey whose definition no longer holds cannot be switched on:
                    // show why beside its definition.
                    Some(errors) => {
                        let f = JourneyForm {
                            title: j.title.clone(),
                            description: j.description.clone(),
                            definition: serde_json::to_string_pretty(&j.definition)
                                .unwrap_or_default(),
                            errors,
                        };
                        show_journey(&ctx, &actor, id, Some(f), StatusCode::UNPROCESSABLE_ENTITY)
                            .await
                    }
                    None => app_error(&ctx, e),
                },
            }
        }
        "edit" => {
            let mut f = JourneyForm {
                title: field(&form, "title").to_owned(),
                description: field(&form, "description").to_owned(),
                definition: field(&form, "definition").to_owned(),
                errors: BTreeMap::new(),
            };
            let definition = match serde_json::from_str::<JourneyDefinition>(&f.definition) {
                Ok(d) => d,
                Err(e) => {
                    f.errors.insert("definition".into(), e.to_string());
                    return show_journey(
                        &ctx,
                        &actor,
                        id,
                        Some(f),
                        StatusCode::UNPROCESSABLE_ENTITY,
                    )
                    .await;
                }
            };
            match app
                .update_journey(
                    &actor,
                    id,
                    Some(f.title.clone()),
                    Some(f.description.clone()),
                    Some(definition),
                    None,
                )
                .await
            {
                Ok(_) => see_other(&format!("/journeys/{}?saved=1", id.0)),
                Err(e) => match field_errors(&e) {
                    Some(errors) => {
                        f.errors = errors;
                        show_journey(&ctx, &actor, id, Some(f), StatusCode::UNPROCESSABLE_ENTITY)
                            .await
                    }
                    None => app_error(&ctx, e),
                },
            }
        }
        _ => ctx.not_found(),
    }
}

// -- templates -------------------------------------------------------------------------------

/// A template form as typed.
#[derive(Serialize, Default)]
struct TemplateForm {
    name: String,
    channel: String,
    locale: String,
    subject: String,
    body: String,
}

pub async fn templates(ctx: Ctx) -> Response {
    let actor = step!(ctx.allowed(Permission::ReadAggregates));
    let form = TemplateForm {
        channel: Channel::Email.to_string(),
        locale: ctx.lang.tag().to_owned(),
        ..TemplateForm::default()
    };
    template_list(&ctx, &actor, form, BTreeMap::new(), StatusCode::OK).await
}

async fn template_list(
    ctx: &Ctx,
    actor: &Actor,
    form: TemplateForm,
    errors: BTreeMap<String, String>,
    status: StatusCode,
) -> Response {
    let list = fetch!(ctx, ctx.state.app.templates(actor).await);
    let rows: Vec<(i64, String, String, String, String, String)> = list
        .iter()
        .map(|t| {
            (
                t.id.0,
                t.name.clone(),
                t.channel.to_string(),
                t.locale.clone(),
                t.subject.clone(),
                t.updated_at.to_rfc3339(),
            )
        })
        .collect();
    page(
        ctx,
        status,
        "templates.html",
        None,
        minijinja::context! {
            rows,
            form => ser(&form),
            errors,
            channels => options(Channel::ALL),
            locales => LOCALES,
            may_write => actor.allows(Permission::WriteCatalog),
        },
    )
}

pub async fn create_template(ctx: Ctx, Form(form): Form<Vec<(String, String)>>) -> Response {
    let actor = step!(ctx.form_actor(&form, Permission::WriteCatalog));
    let typed = TemplateForm {
        name: field(&form, "name").trim().to_owned(),
        channel: field(&form, "channel").to_owned(),
        locale: field(&form, "locale").to_owned(),
        subject: field(&form, "subject").to_owned(),
        body: field(&form, "body").to_owned(),
    };
    let Ok(channel) = typed.channel.parse::<Channel>() else {
        let errors = BTreeMap::from([("channel".to_owned(), ctx.t("template-pick-channel"))]);
        return template_list(
            &ctx,
            &actor,
            typed,
            errors,
            StatusCode::UNPROCESSABLE_ENTITY,
        )
        .await;
    };
    match ctx
        .state
        .app
        .save_template(
            &actor,
            &typed.name,
            channel,
            &typed.locale,
            &typed.subject,
            &typed.body,
        )
        .await
    {
        Ok(t) => see_other(&format!("/templates/{}?saved=1", t.id.0)),
        Err(e) => match field_errors(&e) {
            Some(errors) => {
                template_list(
                    &ctx,
                    &actor,
                    typed,
                    errors,
                    StatusCode::UNPROCESSABLE_ENTITY,
                )
                .await
            }
            None => app_error(&ctx, e),
        },
    }
}

/// What the template editor shows besides the template: the draft, its errors, a preview.
#[derive(Default)]
struct EditorState {
    draft: Option<(String, String)>,
    errors: BTreeMap<String, String>,
    preview: Option<(String, String, String)>,
    customer: String,
}

/// The fields a template may use, as `customer.name`, from the sample the check renders.
fn template_fields() -> Vec<(String, String)> {
    fn walk(prefix: &str, v: &serde_json::Value, out: &mut Vec<(String, String)>) {
        match v {
            serde_json::Value::Object(m) => {
                for (k, v) in m {
                    let p = if prefix.is_empty() {
                        k.clone()
                    } else {
                        format!("{prefix}.{k}")
                    };
                    walk(&p, v, out);
                }
            }
            serde_json::Value::Array(a) => {
                if let Some(first) = a.first() {
                    walk(&format!("{prefix}[0]"), first, out);
                }
            }
            serde_json::Value::String(s) => out.push((prefix.to_owned(), s.clone())),
            other => out.push((prefix.to_owned(), other.to_string())),
        }
    }
    let mut out = Vec::new();
    walk("", &tenure_app::messages::sample_context(), &mut out);
    out
}

pub async fn template(ctx: Ctx, Path(raw): Path<String>) -> Response {
    let actor = step!(ctx.allowed(Permission::ReadAggregates));
    let Some(id) = path_id(&raw) else {
        return ctx.not_found();
    };
    let pairs = query_pairs(&ctx.query);
    let state = EditorState {
        customer: param(&pairs, "customer").unwrap_or_default().to_owned(),
        ..EditorState::default()
    };
    editor(&ctx, &actor, TemplateId(id), state, StatusCode::OK).await
}

async fn editor(
    ctx: &Ctx,
    actor: &Actor,
    id: TemplateId,
    state: EditorState,
    status: StatusCode,
) -> Response {
    let app = &ctx.state.app;
    let t: Template = fetch!(ctx, app.template(actor, id).await);
    let all = fetch!(ctx, app.templates(actor).await);
    let siblings: Vec<(i64, String, bool)> = all
        .iter()
        .filter(|o| o.name == t.name && o.channel == t.channel)
        .map(|o| (o.id.0, o.locale.clone(), o.id == t.id))
        .collect();
    let used_by: Vec<(i64, String)> = fetch!(ctx, app.journeys(actor).await)
        .iter()
        .filter(|j| {
            j.definition.steps.iter().any(|s| {
                matches!(s, Step::Send { channel, template, .. }
                    if *channel == t.channel && *template == t.name)
            })
        })
        .map(|j| (j.id.0, words(ctx, j).0))
        .collect();
    let (subject, body) = state
        .draft
        .unwrap_or_else(|| (t.subject.clone(), t.body.clone()));
    let pairs = query_pairs(&ctx.query);
    page(
        ctx,
        status,
        "template.html",
        None,
        minijinja::context! {
            id => t.id.0,
            name => t.name.clone(),
            channel => t.channel.to_string(),
            locale => t.locale.clone(),
            updated_at => t.updated_at.to_rfc3339(),
            subject, body,
            has_subject => t.channel == Channel::Email,
            siblings, used_by,
            fields => template_fields(),
            errors => state.errors,
            preview => state.preview,
            customer => state.customer,
            saved => param(&pairs, "saved").is_some(),
            may_write => actor.allows(Permission::WriteCatalog),
            may_preview => actor.allows(Permission::ReadCustomers),
        },
    )
}

/// The editor's buttons: preview the draft for a customer, or save it.
pub async fn template_action(
    ctx: Ctx,
    Path(raw): Path<String>,
    Form(form): Form<Vec<(String, String)>>,
) -> Response {
    let actor = step!(ctx.check_form(&form));
    let Some(id) = path_id(&raw) else {
        return ctx.not_found();
    };
    let id = TemplateId(id);
    let app = &ctx.state.app;
    let need = if field(&form, "action") == "save" {
        Permission::WriteCatalog
    } else {
        Permission::ReadCustomers
    };
    if !actor.allows(need) {
        return error_page(
            &ctx,
            StatusCode::FORBIDDEN,
            &ctx.t("error-forbidden-detail"),
        );
    }
    let subject = field(&form, "subject").to_owned();
    let body = field(&form, "body").to_owned();
    let mut state = EditorState {
        customer: field(&form, "customer_id").trim().to_owned(),
        draft: Some((subject.clone(), body.clone())),
        ..EditorState::default()
    };
    match field(&form, "action") {
        "save" => {
            let t = fetch!(&ctx, app.template(&actor, id).await);
            match app
                .save_template(&actor, &t.name, t.channel, &t.locale, &subject, &body)
                .await
            {
                Ok(_) => return see_other(&format!("/templates/{}?saved=1", id.0)),
                Err(e) => match field_errors(&e) {
                    Some(errs) => state.errors = errs,
                    None => return app_error(&ctx, e),
                },
            }
        }
        "preview" => match state.customer.parse::<i64>() {
            Ok(c) if c > 0 => {
                match app
                    .preview_template(&actor, id, CustomerId(c), Some(&subject), Some(&body))
                    .await
                {
                    Ok((s, b)) => {
                        let who = step!(names(&ctx, &actor, std::iter::once(CustomerId(c))).await);
                        state.preview =
                            Some((who.get(&CustomerId(c)).cloned().unwrap_or_default(), s, b));
                    }
                    Err(AppError::NotFound(_)) => {
                        state
                            .errors
                            .insert("customer_id".into(), ctx.t("template-no-customer"));
                    }
                    Err(e) => match field_errors(&e) {
                        Some(errs) => state.errors = errs,
                        None => return app_error(&ctx, e),
                    },
                }
            }
            _ => {
                state
                    .errors
                    .insert("customer_id".into(), ctx.t("service-customer-number"));
            }
        },
        _ => return ctx.not_found(),
    }
    let status = if state.errors.is_empty() {
        StatusCode::OK
    } else {
        StatusCode::UNPROCESSABLE_ENTITY
    };
    editor(&ctx, &actor, id, state, status).await
}

// -- the 360° page ---------------------------------------------------------------------------

/// The messages panel of the 360° page.
#[derive(Serialize)]
pub(crate) struct CustomerMessages {
    messages: Vec<MessageRow>,
    /// The customer's journeys: (journey id, title, status, entered at).
    journeys: Vec<(i64, String, String, String)>,
}

pub(crate) async fn customer_view(
    ctx: &Ctx,
    actor: &Actor,
    id: CustomerId,
) -> Result<CustomerMessages, Response> {
    let app = &ctx.state.app;
    let fail = |e| app_error(ctx, e);
    let filter = MessageFilter {
        customer: Some(id),
        ..MessageFilter::default()
    };
    let messages = app
        .messages(actor, &filter, &PageRequest::first(10))
        .await
        .map_err(fail)?
        .items;
    let titles: BTreeMap<i64, String> = if actor.allows(Permission::ReadAggregates) {
        app.journeys(actor)
            .await
            .map_err(fail)?
            .iter()
            .map(|j| (j.id.0, words(ctx, j).0))
            .collect()
    } else {
        BTreeMap::new()
    };
    let journeys = app
        .customer_journeys(actor, id)
        .await
        .map_err(fail)?
        .iter()
        .take(10)
        .map(|e| {
            (
                e.journey_id.0,
                titles.get(&e.journey_id.0).cloned().unwrap_or_default(),
                e.status.to_string(),
                e.entered_at.to_rfc3339(),
            )
        })
        .collect();
    Ok(CustomerMessages {
        messages: messages
            .iter()
            .map(|m| message_row(m, String::new()))
            .collect(),
        journeys,
    })
}

// -- the unsubscribe page --------------------------------------------------------------------

fn invalid(ctx: &Ctx, e: AppError) -> Response {
    match e {
        AppError::NotFound(_) => {
            error_page(ctx, StatusCode::NOT_FOUND, &ctx.t("unsubscribe-invalid"))
        }
        e => app_error(ctx, e),
    }
}

fn unsubscribe_page(
    ctx: &Ctx,
    name: String,
    channel: Channel,
    done: bool,
    token: String,
) -> Response {
    page(
        ctx,
        StatusCode::OK,
        "unsubscribe.html",
        None,
        minijinja::context! {
            name => name,
            channel => channel_word(ctx, channel),
            done => done,
            token => token,
        },
    )
}

pub async fn unsubscribe_form(ctx: Ctx, Path(token): Path<String>) -> Response {
    let app = ctx.state.app.clone();
    match app.unsubscribe_target(&token).await {
        Ok((name, channel, done)) => unsubscribe_page(&ctx, name, channel, done, token),
        Err(e) => invalid(&ctx, e),
    }
}

pub async fn unsubscribe(ctx: Ctx, Path(token): Path<String>) -> Response {
    let app = ctx.state.app.clone();
    match app.unsubscribe(&token).await {
        Ok((name, channel)) => unsubscribe_page(&ctx, name, channel, true, token),
        Err(e) => invalid(&ctx, e),
    }
}
