//! The life cycle and retention pages: where customers stand and how they move between
//! stages, retention by month, the cohort heat-map, the RFM grid, revenue concentration
//! and who is worth winning back (`/retention`); segments with a live count while the
//! filter is typed (`/segments`); the profit simulator (`/profit`); and the staff's
//! life-cycle form on the 360° page.

use axum::Form;
use axum::extract::Path;
use axum::http::StatusCode;
use axum::response::Response;
use chrono::Duration;
use serde::Serialize;
use tenure_app::PageRequest;
use tenure_app::lifecycle::LifecycleEdit;
use tenure_app::retention::ProfitQuestion;
use tenure_app::segments::{SegmentDraft, check_expression};
use tenure_domain::access::Permission;
use tenure_domain::customer::display_name;
use tenure_domain::ids::{CustomerId, SegmentId};
use tenure_domain::jobs::JobKind;
use tenure_domain::lifecycle::{LossReason, Stage};

use super::customers::see_other;
use super::{param, path_id, query_pairs};
use crate::charts::{self, Series};
use crate::render::{app_error, page, ser};
use crate::session::Ctx;

/// The heat class (h0 … h10) of a share 0–1.
fn heat(x: f64) -> String {
    format!("h{}", (x.clamp(0.0, 1.0) * 10.0).round() as u32)
}

#[derive(Serialize)]
struct CohortLine {
    cohort: String,
    size: u64,
    cells: Vec<(String, String)>,
}

pub async fn retention(ctx: Ctx) -> Response {
    let actor = step!(ctx.allowed(Permission::ReadAggregates));
    let app = &ctx.state.app;
    let now = app.now();
    let stages = fetch!(
        &ctx,
        app.stage_report(&actor, now - Duration::days(30), now + Duration::seconds(1))
            .await
    );
    let retention = fetch!(&ctx, app.retention_report(&actor, None).await);
    let cohorts = fetch!(&ctx, app.cohorts(&actor, None).await);
    let rfm = fetch!(&ctx, app.rfm_summary(&actor, None).await);
    let conc = fetch!(&ctx, app.concentration(&actor, None).await);
    let win_back = fetch!(&ctx, app.win_back(&actor, PageRequest::first(10)).await);
    let lang = ctx.lang;

    let stage_labels: Vec<String> = stages
        .counts
        .iter()
        .map(|(s, _)| ctx.t(&format!("stage-{s}")))
        .collect();
    let stage_values: Vec<f64> = stages.counts.iter().map(|(_, n)| *n as f64).collect();
    let stage_chart = charts::bars(
        &ctx.t("retention-stages"),
        &stage_labels,
        &stage_values,
        &|v| lang.number(v.round() as i64),
    );
    let months: Vec<String> = retention.overall.iter().map(|p| p.period.clone()).collect();
    let rates: Vec<f64> = retention
        .overall
        .iter()
        .map(|p| p.retention.unwrap_or(0.0))
        .collect();
    let retention_chart = charts::lines(
        &ctx.t("retention-trend"),
        &months,
        &[Series {
            name: &ctx.t("retention-rate"),
            values: &rates,
            class: "line-a",
        }],
        &|v| lang.percent(v),
    );
    let curve_labels: Vec<String> = conc.curve.iter().map(|(c, _)| lang.percent(*c)).collect();
    let curve_values: Vec<f64> = conc.curve.iter().map(|(_, v)| *v).collect();
    let equal: Vec<f64> = conc.curve.iter().map(|(c, _)| *c).collect();
    let curve_chart = charts::lines(
        &ctx.t("retention-concentration"),
        &curve_labels,
        &[
            Series {
                name: &ctx.t("retention-revenue-share"),
                values: &curve_values,
                class: "line-a",
            },
            Series {
                name: &ctx.t("retention-equal-share"),
                values: &equal,
                class: "line-b",
            },
        ],
        &|v| lang.percent(v),
    );
    // The latest 12 cohorts, 12 months each, as a heat-map.
    let mut lines: Vec<CohortLine> = Vec::new();
    for c in &cohorts.cells {
        if lines.last().is_none_or(|l| l.cohort != c.cohort) {
            lines.push(CohortLine {
                cohort: c.cohort.clone(),
                size: c.size,
                cells: Vec::new(),
            });
        }
        if let Some(l) = lines.last_mut()
            && c.period <= 12
        {
            l.cells.push((lang.percent(c.retention), heat(c.retention)));
        }
    }
    let skip = lines.len().saturating_sub(12);
    let lines: Vec<CohortLine> = lines.into_iter().skip(skip).collect();
    let grid_max = rfm.grid.iter().flatten().copied().max().unwrap_or(1).max(1) as f64;
    let grid: Vec<(u8, Vec<(u64, String)>)> = rfm
        .grid
        .iter()
        .enumerate()
        .rev()
        .map(|(k, row)| {
            (
                (k + 1) as u8,
                row.iter()
                    .map(|n| (*n, heat(*n as f64 / grid_max)))
                    .collect(),
            )
        })
        .collect();
    let flows: Vec<(Option<String>, String, u64)> = stages
        .flows
        .iter()
        .map(|(a, b, n)| (a.map(|s| s.to_string()), b.to_string(), *n))
        .collect();
    let losses: Vec<(String, u64)> = stages
        .loss_reasons
        .iter()
        .map(|(r, n)| (r.map_or_else(|| "none".to_owned(), |r| r.to_string()), *n))
        .collect();
    let winners: Vec<(i64, String, f64, Option<String>)> = win_back
        .items
        .iter()
        .map(|(c, clv, r)| {
            (
                c.id.0,
                display_name(&c.data.name),
                *clv,
                r.loss_reason.map(|l| l.to_string()),
            )
        })
        .collect();
    let channels: Vec<(String, Option<f64>, u64)> = retention
        .by_channel
        .iter()
        .filter_map(|(k, rows)| rows.last().map(|p| (k.clone(), p.retention, p.base)))
        .collect();
    let segments: Vec<(String, Option<f64>, u64)> = retention
        .by_segment
        .iter()
        .filter_map(|(k, rows)| rows.last().map(|p| (k.clone(), p.retention, p.base)))
        .collect();
    let notice = param(&query_pairs(&ctx.query), "notice").map(|_| ctx.t("retention-queued"));
    page(
        &ctx,
        StatusCode::OK,
        "retention.html",
        None,
        minijinja::context! {
            as_of => retention.as_of.to_string(),
            counts => ser(&stages.counts.iter().map(|(s, n)| (s.to_string(), *n)).collect::<Vec<_>>()),
            flows => ser(&flows), losses => ser(&losses),
            stage_chart, retention_chart, curve_chart,
            yearly => retention.yearly_retention,
            window => retention.window_months,
            retention_rows => ser(&retention.overall.iter().rev().take(12).map(|p| (p.period.clone(), p.base, p.retained, p.lost, p.retention)).collect::<Vec<_>>()),
            channels => ser(&channels), segments => ser(&segments),
            cohorts => ser(&lines),
            grid => ser(&grid),
            rfm_segments => ser(&rfm.segments.iter().map(|s| (s.segment.clone(), s.customers, s.revenue)).collect::<Vec<_>>()),
            buyers => rfm.customers,
            top20 => conc.top20_share, gini => conc.gini, revenue => conc.revenue,
            winners => ser(&winners),
            currency => ctx.state.app.reporting_currency(),
            may_refresh => actor.allows(Permission::WriteCatalog),
            notice,
        },
    )
}

pub async fn refresh(ctx: Ctx, Form(form): Form<Vec<(String, String)>>) -> Response {
    let actor = step!(ctx.form_actor(&form, Permission::WriteCatalog));
    match ctx
        .state
        .app
        .queue_job(&actor, JobKind::AnalyticsRefresh)
        .await
    {
        Ok(_) => see_other("/retention?notice=queued"),
        Err(e) => app_error(&ctx, e),
    }
}

pub async fn segments(ctx: Ctx) -> Response {
    let actor = step!(ctx.allowed(Permission::ReadAggregates));
    let all = fetch!(&ctx, ctx.state.app.segments(&actor).await);
    let rows: Vec<(i64, String, String, i64, Option<String>)> = all
        .into_iter()
        .map(|s| {
            (
                s.id.0,
                s.name,
                s.expression,
                s.members,
                s.refreshed_at.map(|t| t.to_rfc3339()),
            )
        })
        .collect();
    page(
        &ctx,
        StatusCode::OK,
        "segments.html",
        None,
        minijinja::context! { rows => ser(&rows), may_write => actor.allows(Permission::WriteCatalog) },
    )
}

/// What the preview block shows: the count with its time, who would enter and leave, or
/// where the filter fails.
#[derive(Serialize, Default)]
struct PreviewView {
    shown: bool,
    count: Option<u64>,
    as_of: Option<String>,
    entering: Option<(u64, Vec<(i64, String)>)>,
    leaving: Option<(u64, Vec<(i64, String)>)>,
    error: Option<String>,
    caret: Option<String>,
}

async fn preview(
    ctx: &Ctx,
    expression: &str,
    against: Option<SegmentId>,
) -> Result<PreviewView, Response> {
    if expression.trim().is_empty() {
        return Ok(PreviewView::default());
    }
    let actor = ctx.actor()?;
    if let Err(e) = check_expression(expression) {
        return Ok(PreviewView {
            shown: true,
            error: Some(e.message),
            caret: Some(e.caret),
            ..PreviewView::default()
        });
    }
    match ctx
        .state
        .app
        .preview_segment(&actor, expression, against)
        .await
    {
        Ok(p) => {
            let people = |s: Option<(u64, Vec<tenure_domain::customer::Customer>)>| {
                s.map(|(n, v)| {
                    (
                        n,
                        v.into_iter()
                            .map(|c| (c.id.0, display_name(&c.data.name)))
                            .collect(),
                    )
                })
            };
            Ok(PreviewView {
                shown: true,
                count: Some(p.count),
                as_of: Some(p.as_of.to_rfc3339()),
                entering: people(p.entering),
                leaving: people(p.leaving),
                ..PreviewView::default()
            })
        }
        Err(e) if !e.field_errors().is_empty() => Ok(PreviewView {
            shown: true,
            error: Some(e.field_errors()[0].message.clone()),
            ..PreviewView::default()
        }),
        Err(e) => Err(app_error(ctx, e)),
    }
}

#[derive(Serialize, Default)]
struct SegmentForm {
    id: Option<i64>,
    name: String,
    description: String,
    expression: String,
    version: i64,
    members: Vec<(i64, String, String)>,
    member_count: i64,
    name_error: Option<String>,
    expression_error: Option<String>,
    other_error: Option<String>,
}

impl SegmentForm {
    fn with_errors(mut self, errors: Vec<(String, String)>) -> Self {
        for (field, message) in errors {
            match field.as_str() {
                "name" => self.name_error = Some(message),
                "expression" => self.expression_error = Some(message),
                _ => self.other_error = Some(message),
            }
        }
        self
    }
}

#[allow(clippy::result_large_err)]
async fn render_form(ctx: &Ctx, form: SegmentForm, status: StatusCode) -> Response {
    let actor = step!(ctx.allowed(Permission::ReadAggregates));
    let shown = step!(preview(ctx, &form.expression, form.id.map(SegmentId)).await);
    page(
        ctx,
        status,
        "segment_form.html",
        Some("preview"),
        minijinja::context! {
            form => ser(&form), preview => ser(&shown),
            may_write => actor.allows(Permission::WriteCatalog),
        },
    )
}

/// The form of a new segment; `?expression=` previews it (htmx asks for the preview block
/// alone while the filter is typed).
pub async fn new_segment(ctx: Ctx) -> Response {
    let pairs = query_pairs(&ctx.query);
    let form = SegmentForm {
        name: param(&pairs, "name").unwrap_or("").to_owned(),
        description: param(&pairs, "description").unwrap_or("").to_owned(),
        expression: param(&pairs, "expression").unwrap_or("").to_owned(),
        ..SegmentForm::default()
    };
    render_form(&ctx, form, StatusCode::OK).await
}

fn field(form: &[(String, String)], name: &str) -> String {
    form.iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.clone())
        .unwrap_or_default()
}

fn form_errors(e: &tenure_app::AppError) -> Vec<(String, String)> {
    e.field_errors()
        .iter()
        .map(|f| (f.field.clone(), f.message.clone()))
        .collect()
}

pub async fn create_segment(ctx: Ctx, Form(form): Form<Vec<(String, String)>>) -> Response {
    let actor = step!(ctx.form_actor(&form, Permission::WriteCatalog));
    let draft = SegmentDraft {
        name: field(&form, "name"),
        description: field(&form, "description"),
        expression: field(&form, "expression"),
    };
    match ctx.state.app.create_segment(&actor, draft.clone()).await {
        Ok(s) => see_other(&format!("/segments/{}", s.id)),
        Err(e)
            if !e.field_errors().is_empty() || matches!(e, tenure_app::AppError::Conflict(_)) =>
        {
            let mut errors = form_errors(&e);
            if errors.is_empty() {
                errors.push(("name".into(), ctx.t("segment-name-taken")));
            }
            let f = SegmentForm {
                name: draft.name,
                description: draft.description,
                expression: draft.expression,
                ..SegmentForm::default()
            }
            .with_errors(errors);
            render_form(&ctx, f, StatusCode::UNPROCESSABLE_ENTITY).await
        }
        Err(e) => app_error(&ctx, e),
    }
}

async fn stored_form(ctx: &Ctx, id: SegmentId) -> Result<SegmentForm, Response> {
    let actor = ctx.actor()?;
    let s = ctx
        .state
        .app
        .segment(&actor, id)
        .await
        .map_err(|e| app_error(ctx, e))?;
    let members = ctx
        .state
        .app
        .segment_members(&actor, id, PageRequest::first(20))
        .await
        .map_err(|e| app_error(ctx, e))?;
    Ok(SegmentForm {
        id: Some(id.0),
        name: s.name,
        description: s.description,
        expression: s.expression,
        version: s.version,
        member_count: s.members,
        members: members
            .items
            .into_iter()
            .map(|(c, since)| (c.id.0, display_name(&c.data.name), since.to_rfc3339()))
            .collect(),
        ..SegmentForm::default()
    })
}

pub async fn show_segment(ctx: Ctx, Path(raw): Path<String>) -> Response {
    step!(ctx.allowed(Permission::ReadAggregates));
    let Some(id) = path_id(&raw) else {
        return ctx.not_found();
    };
    let mut form = step!(stored_form(&ctx, SegmentId(id)).await);
    if let Some(e) = param(&query_pairs(&ctx.query), "expression") {
        form.expression = e.to_owned();
    }
    render_form(&ctx, form, StatusCode::OK).await
}

pub async fn update_segment(
    ctx: Ctx,
    Path(raw): Path<String>,
    Form(form): Form<Vec<(String, String)>>,
) -> Response {
    let actor = step!(ctx.form_actor(&form, Permission::WriteCatalog));
    let Some(id) = path_id(&raw) else {
        return ctx.not_found();
    };
    if field(&form, "action") == "delete" {
        return match ctx.state.app.delete_segment(&actor, SegmentId(id)).await {
            Ok(()) => see_other("/segments"),
            Err(e) => app_error(&ctx, e),
        };
    }
    let draft = SegmentDraft {
        name: field(&form, "name"),
        description: field(&form, "description"),
        expression: field(&form, "expression"),
    };
    let version = field(&form, "version").parse().unwrap_or(0);
    match ctx
        .state
        .app
        .update_segment(&actor, SegmentId(id), version, draft.clone())
        .await
    {
        Ok(_) => see_other(&format!("/segments/{id}")),
        Err(e) if !e.field_errors().is_empty() => {
            let mut f = step!(stored_form(&ctx, SegmentId(id)).await);
            f.name = draft.name;
            f.description = draft.description;
            f.expression = draft.expression;
            let f = f.with_errors(form_errors(&e));
            render_form(&ctx, f, StatusCode::UNPROCESSABLE_ENTITY).await
        }
        Err(e) => app_error(&ctx, e),
    }
}

/// A number from the query, or `default`.
fn number(pairs: &[(String, String)], name: &str, default: f64) -> f64 {
    param(pairs, name)
        .and_then(|v| v.parse::<f64>().ok())
        .filter(|v| v.is_finite())
        .unwrap_or(default)
}

pub async fn profit(ctx: Ctx) -> Response {
    let actor = step!(ctx.allowed(Permission::ReadAggregates));
    let pairs = query_pairs(&ctx.query);
    let d = ProfitQuestion::default();
    let q = ProfitQuestion {
        defection_cut_points: number(&pairs, "cut", d.defection_cut_points),
        margin_rate: number(&pairs, "margin", d.margin_rate * 100.0) / 100.0,
        acquisition_cost: number(&pairs, "acquisition", d.acquisition_cost),
        discount_rate: number(&pairs, "discount", d.discount_rate * 100.0) / 100.0,
        horizon_years: number(&pairs, "years", f64::from(d.horizon_years)).round() as u32,
        retention: param(&pairs, "retention")
            .and_then(|v| v.parse::<f64>().ok())
            .map(|v| v / 100.0),
        ..d
    };
    let (answer, error) = match ctx.state.app.profit_simulation(&actor, q.clone()).await {
        Ok(a) => (Some(a), None),
        Err(e) if !e.field_errors().is_empty() => (None, Some(e.field_errors()[0].message.clone())),
        Err(e) => return app_error(&ctx, e),
    };
    let lang = ctx.lang;
    let currency = ctx.state.app.reporting_currency().to_owned();
    let (chart, result) = match &answer {
        Some(a) => {
            let labels: Vec<String> = a
                .effect
                .now
                .yearly
                .iter()
                .map(|y| y.year.to_string())
                .collect();
            let now: Vec<f64> = a
                .effect
                .now
                .yearly
                .iter()
                .map(|y| y.cumulative_discounted)
                .collect();
            let better: Vec<f64> = a
                .effect
                .improved
                .yearly
                .iter()
                .map(|y| y.cumulative_discounted)
                .collect();
            let cur = currency.clone();
            let chart = charts::lines(
                &ctx.t("profit-chart"),
                &labels,
                &[
                    Series {
                        name: &ctx.t("profit-now"),
                        values: &now,
                        class: "line-b",
                    },
                    Series {
                        name: &ctx.t("profit-improved"),
                        values: &better,
                        class: "line-a",
                    },
                ],
                &move |v| lang.money(v, &cur, 0),
            );
            let scenario = |s: &tenure_app::retention::Scenario| {
                (
                    s.retention,
                    s.average_lifetime_years,
                    s.value_per_customer,
                    s.total_value,
                )
            };
            (
                Some(chart),
                Some((
                    scenario(&a.effect.now),
                    scenario(&a.effect.improved),
                    a.effect.profit_increase,
                    a.effect.value_change,
                    a.inputs.customers,
                    a.inputs.margin_per_customer,
                    a.measured_retention,
                )),
            )
        }
        None => (None, None),
    };
    let retention_pct = q.retention.map(|r| (r * 100.0).round());
    page(
        &ctx,
        if error.is_some() {
            StatusCode::UNPROCESSABLE_ENTITY
        } else {
            StatusCode::OK
        },
        "profit.html",
        Some("result"),
        minijinja::context! {
            cut => q.defection_cut_points, margin => (q.margin_rate * 100.0).round(),
            acquisition => q.acquisition_cost, discount => (q.discount_rate * 100.0).round(),
            years => q.horizon_years, retention => retention_pct,
            chart, result => ser(&result), error, currency,
        },
    )
}

/// Staff's life-cycle form on the 360° page: a manual stage (or none), a loss reason, the
/// qualification of a prospect.
pub async fn edit_customer(
    ctx: Ctx,
    Path(raw): Path<String>,
    Form(form): Form<Vec<(String, String)>>,
) -> Response {
    let actor = step!(ctx.form_actor(&form, Permission::WriteCustomers));
    let Some(id) = path_id(&raw) else {
        return ctx.not_found();
    };
    let stage = field(&form, "override_stage");
    let override_stage = match stage.as_str() {
        "" => None,
        "none" => Some(None),
        s => match s.parse::<Stage>() {
            Ok(s) => Some(Some(s)),
            Err(_) => return ctx.not_found(),
        },
    };
    let loss_reason = match field(&form, "loss_reason").as_str() {
        "" => None,
        s => match s.parse::<LossReason>() {
            Ok(r) => Some(r),
            Err(_) => return ctx.not_found(),
        },
    };
    let qualified = form.iter().any(|(k, _)| k == "qualification");
    let flag = |name: &str| qualified.then(|| form.iter().any(|(k, v)| k == name && v == "on"));
    let edit = LifecycleEdit {
        override_stage,
        note: Some(field(&form, "note")).filter(|n| !n.trim().is_empty()),
        loss_reason,
        money: flag("money"),
        authority: flag("authority"),
        need: flag("need"),
    };
    match ctx
        .state
        .app
        .edit_lifecycle(&actor, CustomerId(id), edit)
        .await
    {
        Ok(_) => see_other(&format!("/customers/{id}#h-lifecycle")),
        Err(e) => app_error(&ctx, e),
    }
}

/// The life-cycle panel's values for the 360° page.
#[derive(Serialize)]
pub(crate) struct LifecycleView {
    stage: String,
    computed_stage: String,
    since: String,
    override_stage: Option<String>,
    override_note: Option<String>,
    loss_reason: Option<String>,
    loss_reason_source: Option<String>,
    money: bool,
    authority: bool,
    need: bool,
    contact_attempts: i64,
    attempts_since_progress: i64,
    buying_signals: i64,
    parked: bool,
    rfm: Option<(u8, u8, u8, String)>,
    segments: Vec<(String, String)>,
    history: Vec<(String, Option<String>, String, String, String)>,
    stages: Vec<String>,
    loss_reasons: Vec<String>,
}

pub(crate) async fn customer_view(
    ctx: &Ctx,
    actor: &tenure_domain::changes::Actor,
    id: CustomerId,
) -> Result<Option<LifecycleView>, Response> {
    if !actor.allows(Permission::ReadAggregates) {
        return Ok(None);
    }
    let l = ctx
        .state
        .app
        .customer_lifecycle(actor, id)
        .await
        .map_err(|e| app_error(ctx, e))?;
    let r = l.record;
    Ok(Some(LifecycleView {
        stage: r.stage.to_string(),
        computed_stage: r.computed_stage.to_string(),
        since: r.stage_since.to_rfc3339(),
        override_stage: r.override_stage.map(|s| s.to_string()),
        override_note: r.override_note,
        loss_reason: r.loss_reason.map(|s| s.to_string()),
        loss_reason_source: r.loss_reason_source.map(|s| s.to_string()),
        money: r.money,
        authority: r.authority,
        need: r.need,
        contact_attempts: r.contact_attempts,
        attempts_since_progress: r.attempts_since_progress,
        buying_signals: r.buying_signals,
        parked: r.parked,
        rfm: l
            .rfm
            .map(|s| (s.r, s.f, s.m, s.segment.as_str().to_owned())),
        segments: l
            .segments
            .into_iter()
            .map(|(n, since)| (n, since.to_rfc3339()))
            .collect(),
        history: l
            .history
            .into_iter()
            .take(10)
            .map(|t| {
                (
                    t.at.to_rfc3339(),
                    t.from.map(|s| s.to_string()),
                    t.to.to_string(),
                    t.reason.to_string(),
                    t.actor_name,
                )
            })
            .collect(),
        stages: Stage::ALL.iter().map(|s| s.to_string()).collect(),
        loss_reasons: LossReason::ALL.iter().map(|s| s.to_string()).collect(),
    }))
}
