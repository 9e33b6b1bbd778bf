//! Customers: the list with search and filters, the 360° page with the timeline, the
//! create and edit forms, and deleting with confirmation.

use axum::Form;
use axum::extract::Path;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use serde::Serialize;
use tenure_app::model::{CustomerFilter, TimelineEntry};
use tenure_app::{AppError, PageRequest};
use tenure_domain::access::Permission;
use tenure_domain::customer::{
    Customer, CustomerInput, CustomerKind, CustomerPatchInput, ProfileInput, display_name,
};
use tenure_domain::ids::CustomerId;
use tenure_domain::prediction::Prediction;

use super::{param, query_pairs};
use crate::render::{app_error, page, ser};
use crate::session::{Ctx, field};

/// Customers per page of the list.
const PAGE: u32 = 25;
/// Timeline entries per page.
const TIMELINE_PAGE: u32 = 20;

/// A customer as a row of the list.
#[derive(Serialize)]
struct Row {
    id: i64,
    name: String,
    kind: String,
    email: Option<String>,
    phone: Option<String>,
    tags: Vec<String>,
    orders: i64,
    spend_minor: i64,
    last_purchase: Option<String>,
}

fn row(c: &Customer) -> Row {
    Row {
        id: c.id.0,
        name: display_name(&c.data.name),
        kind: c.data.kind.to_string(),
        email: c.data.email.clone(),
        phone: c.data.phone.clone(),
        tags: c.data.tags.clone(),
        orders: c.stats.orders_count,
        spend_minor: c.stats.total_spend_minor,
        last_purchase: c.stats.last_purchase_at.map(|t| t.date_naive().to_string()),
    }
}

fn parse_f64(
    pairs: &[(String, String)],
    name: &str,
    errors: &mut Vec<(String, String)>,
) -> Option<f64> {
    let v = param(pairs, name)?;
    match v.parse::<f64>() {
        Ok(f) if f.is_finite() => Some(f),
        _ => {
            errors.push((name.to_owned(), format!("{v:?} is not a number")));
            None
        }
    }
}

pub async fn list(ctx: Ctx) -> Response {
    let actor = step!(ctx.allowed(Permission::ReadCustomers));
    let pairs = query_pairs(&ctx.query);
    let mut errors: Vec<(String, String)> = Vec::new();
    let kind = param(&pairs, "kind").and_then(|k| k.parse::<CustomerKind>().ok());
    let risk = param(&pairs, "risk");
    let sort = param(&pairs, "sort").unwrap_or("oldest");
    let mut filter = CustomerFilter {
        q: param(&pairs, "q").map(str::to_owned),
        kind,
        tag: param(&pairs, "tag").map(str::to_owned),
        clv_min: parse_f64(&pairs, "clv_min", &mut errors),
        newest_first: sort == "newest",
        ..Default::default()
    };
    if risk == Some("at_risk") {
        filter.p_alive_max = Some(tenure_app::analytics::AT_RISK_BELOW);
    }
    let request = PageRequest {
        limit: Some(PAGE),
        cursor: param(&pairs, "cursor").map(str::to_owned),
    };
    let listed = if errors.is_empty() {
        match ctx.state.app.list_customers(&actor, filter, &request).await {
            Ok(l) => Some(l),
            Err(AppError::BadParameter(invalid)) | Err(AppError::Invalid(invalid)) => {
                errors.extend(invalid.0.into_iter().map(|e| (e.field, e.message)));
                None
            }
            Err(e) => return app_error(&ctx, e),
        }
    } else {
        None
    };
    let (rows, next_cursor) = match listed {
        Some(l) => (l.items.iter().map(row).collect::<Vec<_>>(), l.next_cursor),
        None => (Vec::new(), None),
    };
    // The address of the next page: these filters and the cursor.
    let next_href = next_cursor.map(|c| super::next_page("/customers", &pairs, c));
    let notice = param(&pairs, "notice").map(|n| match n {
        "deleted" => ctx.t("customer-deleted"),
        _ => String::new(),
    });
    page(
        &ctx,
        if errors.is_empty() {
            StatusCode::OK
        } else {
            StatusCode::BAD_REQUEST
        },
        "customers.html",
        Some("results"),
        minijinja::context! {
            rows => ser(&rows), next_href, errors, notice,
            q => param(&pairs, "q").unwrap_or(""),
            kind => param(&pairs, "kind").unwrap_or(""),
            tag => param(&pairs, "tag").unwrap_or(""),
            clv_min => param(&pairs, "clv_min").unwrap_or(""),
            risk => risk.unwrap_or(""),
            sort,
            paged => param(&pairs, "cursor").is_some(),
            may_write => actor.allows(Permission::WriteCustomers),
            currency => ctx.state.app.reporting_currency(),
        },
    )
}

/// A timeline entry as the page shows it.
#[derive(Serialize)]
struct Entry {
    kind: &'static str,
    at: String,
    title: String,
    detail: String,
    amount_minor: Option<i64>,
    currency: Option<String>,
}

fn entry(e: &TimelineEntry) -> Entry {
    match e {
        TimelineEntry::Order(o) => Entry {
            kind: "order",
            at: o.data.occurred_at.to_rfc3339(),
            title: o
                .data
                .external_id
                .clone()
                .unwrap_or_else(|| format!("#{}", o.id)),
            detail: format!("{} · {}", o.data.channel, o.data.status),
            amount_minor: Some(o.data.total_minor),
            currency: Some(o.data.currency.clone()),
        },
        TimelineEntry::Interaction(i) => Entry {
            kind: "interaction",
            at: i.data.occurred_at.to_rfc3339(),
            title: if i.data.subject.is_empty() {
                i.data.kind.to_string()
            } else {
                i.data.subject.clone()
            },
            detail: format!(
                "{} · {} · {}",
                i.data.channel, i.data.direction, i.data.kind
            ),
            amount_minor: None,
            currency: None,
        },
        TimelineEntry::Prediction(_, p) => Entry {
            kind: "prediction",
            at: p.computed_at.to_rfc3339(),
            title: String::new(),
            detail: format!("{:.0}%", p.p_alive * 100.0),
            amount_minor: None,
            currency: None,
        },
        TimelineEntry::Stage(t) => Entry {
            kind: "stage",
            at: t.at.to_rfc3339(),
            title: match t.from {
                Some(from) => format!("{from} → {}", t.to),
                None => t.to.to_string(),
            },
            detail: t.detail.clone(),
            amount_minor: None,
            currency: None,
        },
        TimelineEntry::Loyalty(e) => Entry {
            kind: "loyalty",
            at: e.at.to_rfc3339(),
            title: format!("{:+} · {}", e.points, e.kind),
            detail: e.reason.clone(),
            amount_minor: None,
            currency: None,
        },
        TimelineEntry::Tier(t) => Entry {
            kind: "tier",
            at: t.at.to_rfc3339(),
            title: match &t.from_tier {
                Some(from) => format!("{from} → {}", t.to_tier),
                None => t.to_tier.clone(),
            },
            detail: t.reason.to_string(),
            amount_minor: None,
            currency: None,
        },
        TimelineEntry::Ticket(t) => Entry {
            kind: "ticket",
            at: t.opened_at.to_rfc3339(),
            title: t.subject.clone(),
            detail: format!("{} · {} · {}", t.category, t.priority, t.status),
            amount_minor: None,
            currency: None,
        },
        TimelineEntry::Task(t) => Entry {
            kind: "task",
            at: t.created_at.to_rfc3339(),
            title: t.title.clone(),
            detail: format!("{} · {}", t.source, t.status),
            amount_minor: None,
            currency: None,
        },
        TimelineEntry::Survey(r) => Entry {
            kind: "survey",
            at: r.answered_at.to_rfc3339(),
            title: match (r.score, r.nps_group) {
                (Some(s), Some(g)) => format!("{} {s} · {g}", r.kind.as_str().to_uppercase()),
                (Some(s), None) => format!("{} {s}", r.kind.as_str().to_uppercase()),
                _ => r.kind.as_str().to_uppercase(),
            },
            detail: r.comment.clone().unwrap_or_default(),
            amount_minor: None,
            currency: None,
        },
        TimelineEntry::Message(m) => Entry {
            kind: "message",
            at: m.created_at.to_rfc3339(),
            title: if m.subject.is_empty() {
                m.template.clone()
            } else {
                m.subject.clone()
            },
            detail: match m.reason {
                Some(r) => format!("{} · {} · {r}", m.channel, m.status),
                None => format!("{} · {}", m.channel, m.status),
            },
            amount_minor: None,
            currency: None,
        },
    }
}

#[derive(Serialize)]
struct PredictionView {
    p_alive: f64,
    churn_risk: f64,
    clv: f64,
    expected_purchases: f64,
    value_at_risk: f64,
    horizon_days: i64,
    computed_at: String,
    at_risk: bool,
}

fn prediction_view(p: &Prediction) -> PredictionView {
    PredictionView {
        p_alive: p.p_alive,
        churn_risk: p.churn_risk(),
        clv: p.clv,
        expected_purchases: p.expected_purchases,
        value_at_risk: p.value_at_risk(),
        horizon_days: p.horizon_days,
        computed_at: p.computed_at.to_rfc3339(),
        at_risk: p.p_alive < tenure_app::analytics::AT_RISK_BELOW,
    }
}

fn customer_id(raw: &str) -> Option<CustomerId> {
    super::path_id(raw).map(CustomerId)
}

async fn timeline_page(
    ctx: &Ctx,
    actor: &tenure_domain::changes::Actor,
    id: CustomerId,
    cursor: Option<String>,
) -> Result<(Vec<Entry>, Option<String>), Response> {
    let request = PageRequest {
        limit: Some(TIMELINE_PAGE),
        cursor,
    };
    match ctx.state.app.timeline(actor, id, &request).await {
        Ok(l) => Ok((
            l.items.iter().map(entry).collect(),
            l.next_cursor.map(|c| {
                format!(
                    "/customers/{id}/timeline?cursor={}",
                    crate::session::form_urlencoded_byte_serialize(&c)
                )
            }),
        )),
        Err(e) => Err(app_error(ctx, e)),
    }
}

pub async fn show(ctx: Ctx, Path(raw): Path<String>) -> Response {
    let actor = step!(ctx.allowed(Permission::ReadCustomers));
    let Some(id) = customer_id(&raw) else {
        return ctx.not_found();
    };
    full_page(&ctx, &actor, id, None, None).await
}

/// The 360° page, its timeline from `cursor`; for a fragment request with `block`, that
/// block of it.
async fn full_page(
    ctx: &Ctx,
    actor: &tenure_domain::changes::Actor,
    id: CustomerId,
    cursor: Option<String>,
    block: Option<&str>,
) -> Response {
    let (ctx, actor) = (ctx, actor.clone());
    let (c, prediction) = fetch!(ctx, ctx.state.app.get_customer(&actor, id).await);
    let (entries, more) = match timeline_page(ctx, &actor, id, cursor).await {
        Ok(x) => x,
        Err(res) => return res,
    };
    let offers = match ctx.state.app.next_best_offers(&actor, id, Some(5)).await {
        Ok(o) => o
            .into_iter()
            .map(|r| {
                (
                    r.product.data.name,
                    r.product.data.price_minor,
                    r.product.data.currency,
                    r.customers,
                )
            })
            .collect::<Vec<_>>(),
        Err(e) => return app_error(ctx, e),
    };
    let merges = match ctx
        .state
        .app
        .list_merges(&actor, Some(id), &PageRequest::first(5))
        .await
    {
        Ok(l) => l
            .items
            .into_iter()
            .map(|m| {
                (
                    m.id.0,
                    m.merged_id.0,
                    m.merged_at.to_rfc3339(),
                    m.undone_at.is_some(),
                )
            })
            .collect::<Vec<_>>(),
        Err(e) => return app_error(ctx, e),
    };
    let consents: Vec<(String, String, String, String)> = c
        .consents
        .iter()
        .map(|k| {
            (
                k.channel.to_string(),
                k.status.to_string(),
                k.at.to_rfc3339(),
                k.source.clone(),
            )
        })
        .collect();
    let contact_points: Vec<(String, String, String)> = c
        .data
        .contact_points
        .iter()
        .map(|p| {
            (
                p.kind.to_string(),
                p.value.clone(),
                p.label.clone().unwrap_or_default(),
            )
        })
        .collect();
    let preferences: Vec<(String, String)> = c
        .data
        .preferences
        .iter()
        .map(|(k, v)| {
            (
                k.clone(),
                v.as_str().map_or_else(|| v.to_string(), str::to_owned),
            )
        })
        .collect();
    let lifecycle = match super::lifecycle::customer_view(ctx, &actor, id).await {
        Ok(l) => l,
        Err(res) => return res,
    };
    let loyalty = match super::loyalty::customer_view(ctx, &actor, id).await {
        Ok(l) => l,
        Err(res) => return res,
    };
    let service = match super::service::customer_view(ctx, &actor, id).await {
        Ok(v) => v,
        Err(res) => return res,
    };
    let messages = match super::journeys::customer_view(ctx, &actor, id).await {
        Ok(v) => v,
        Err(res) => return res,
    };
    let s = &c.stats;
    page(
        ctx,
        StatusCode::OK,
        "customer.html",
        block,
        minijinja::context! {
            id => c.id.0,
            name => display_name(&c.data.name),
            kind => c.data.kind.to_string(),
            external_id => c.data.external_id.clone(),
            email => c.data.email.clone(),
            phone => c.data.phone.clone(),
            birthday => c.data.birthday.map(|b| b.to_string()),
            locale => c.data.locale.clone(),
            region => c.data.region.clone(),
            acquisition_source => c.data.acquisition_source.clone(),
            acquisition_channel => c.data.acquisition_channel.clone(),
            tags => c.data.tags.clone(),
            contact_points, consents, preferences,
            created_at => c.created_at.to_rfc3339(),
            orders => s.orders_count,
            spend_minor => s.total_spend_minor,
            first_purchase => s.first_purchase_at.map(|t| t.to_rfc3339()),
            last_purchase => s.last_purchase_at.map(|t| t.to_rfc3339()),
            interactions => s.interactions_count,
            last_contact => s.last_contact_at.map(|t| t.to_rfc3339()),
            prediction => ser(&prediction.as_ref().map(prediction_view)),
            offers, merges, entries => ser(&entries), more,
            currency => ctx.state.app.reporting_currency(),
            may_write => actor.allows(Permission::WriteCustomers),
            may_delete => actor.allows(Permission::DeleteCustomers),
            may_privacy => actor.allows(Permission::Privacy),
            may_audit => actor.allows(Permission::ReadAudit),
            erased => param(&query_pairs(&ctx.query), "notice") == Some("erased"),
            lifecycle => ser(&lifecycle),
            loyalty => ser(&loyalty),
            service => ser(&service),
            messages => ser(&messages),
        },
    )
}

pub async fn timeline(ctx: Ctx, Path(raw): Path<String>) -> Response {
    let actor = step!(ctx.allowed(Permission::ReadCustomers));
    let Some(id) = customer_id(&raw) else {
        return ctx.not_found();
    };
    let pairs = query_pairs(&ctx.query);
    let cursor = param(&pairs, "cursor").map(str::to_owned);
    // The whole page's values, so that the block renders as it does inside the page.
    full_page(&ctx, &actor, id, cursor, Some("timeline")).await
}

/// The form's fields, in order.
const FIELDS: &[&str] = &[
    "name",
    "kind",
    "external_id",
    "email",
    "phone",
    "birthday",
    "locale",
    "region",
    "acquisition_source",
    "acquisition_channel",
    "tags",
];

fn values_of(c: &Customer) -> Vec<(String, String)> {
    let d = &c.data;
    let s = |v: &Option<String>| v.clone().unwrap_or_default();
    vec![
        ("name".into(), d.name.clone()),
        ("kind".into(), d.kind.to_string()),
        ("external_id".into(), s(&d.external_id)),
        ("email".into(), s(&d.email)),
        ("phone".into(), s(&d.phone)),
        (
            "birthday".into(),
            d.birthday.map(|b| b.to_string()).unwrap_or_default(),
        ),
        ("locale".into(), s(&d.locale)),
        ("region".into(), s(&d.region)),
        ("acquisition_source".into(), s(&d.acquisition_source)),
        ("acquisition_channel".into(), s(&d.acquisition_channel)),
        ("tags".into(), d.tags.join(", ")),
        ("version".into(), c.version.to_string()),
    ]
}

fn form_page(
    ctx: &Ctx,
    status: StatusCode,
    id: Option<i64>,
    values: &[(String, String)],
    errors: &[(String, String)],
) -> Response {
    let fields: Vec<(&str, String, Option<String>)> = FIELDS
        .iter()
        .map(|f| {
            (
                *f,
                field(values, f).to_owned(),
                errors.iter().find(|(k, _)| k == f).map(|(_, m)| m.clone()),
            )
        })
        .collect();
    // Errors of fields the form does not show (consents, a stale version).
    let other: Vec<String> = errors
        .iter()
        .filter(|(k, _)| !FIELDS.contains(&k.as_str()))
        .map(|(_, m)| m.clone())
        .collect();
    page(
        ctx,
        status,
        "customer_form.html",
        None,
        minijinja::context! {
            id, fields, other, version => field(values, "version"),
            has_errors => !errors.is_empty(),
            kinds => ["person", "organisation"],
        },
    )
}

fn tags(v: &str) -> Vec<String> {
    v.split([',', '，', ';'])
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .map(str::to_owned)
        .collect()
}

fn opt(v: &str) -> Option<&str> {
    let t = v.trim();
    (!t.is_empty()).then_some(t)
}

/// A field of an edit: cleared when emptied, set otherwise.
fn clearable(v: &str) -> Option<Option<String>> {
    Some(opt(v).map(str::to_owned))
}

/// The fields a refused write names; a uniqueness conflict is the customer number's.
fn errors_of(e: &AppError) -> Vec<(String, String)> {
    match e {
        AppError::Conflict(m) => vec![("external_id".to_owned(), m.clone())],
        _ => e
            .field_errors()
            .iter()
            .map(|f| (f.field.clone(), f.message.clone()))
            .collect(),
    }
}

pub async fn new_form(ctx: Ctx) -> Response {
    step!(ctx.allowed(Permission::WriteCustomers));
    form_page(
        &ctx,
        StatusCode::OK,
        None,
        &[("kind".into(), "person".into())],
        &[],
    )
}

pub async fn create(ctx: Ctx, Form(form): Form<Vec<(String, String)>>) -> Response {
    let actor = step!(ctx.form_actor(&form, Permission::WriteCustomers));
    let kind = field(&form, "kind").parse::<CustomerKind>().ok();
    let input = CustomerInput {
        profile: ProfileInput {
            name: field(&form, "name"),
            kind,
            external_id: opt(field(&form, "external_id")),
            email: opt(field(&form, "email")),
            phone: opt(field(&form, "phone")),
            birthday: opt(field(&form, "birthday")),
            locale: opt(field(&form, "locale")),
            region: opt(field(&form, "region")),
            acquisition_source: opt(field(&form, "acquisition_source")),
            acquisition_channel: opt(field(&form, "acquisition_channel")),
            tags: tags(field(&form, "tags")),
        },
        account_id: None,
        owner_id: None,
        contact_points: Vec::new(),
        preferences: None,
        custom_fields: None,
        consents: Vec::new(),
    };
    match ctx.state.app.create_customer(&actor, input).await {
        Ok(c) => see_other(&format!("/customers/{}", c.id)),
        Err(e @ (AppError::Invalid(_) | AppError::Conflict(_))) => form_page(
            &ctx,
            StatusCode::UNPROCESSABLE_ENTITY,
            None,
            &form,
            &errors_of(&e),
        ),
        Err(e) => app_error(&ctx, e),
    }
}

pub async fn edit_form(ctx: Ctx, Path(raw): Path<String>) -> Response {
    let actor = step!(ctx.allowed(Permission::WriteCustomers));
    let Some(id) = customer_id(&raw) else {
        return ctx.not_found();
    };
    match ctx.state.app.get_customer(&actor, id).await {
        Ok((c, _)) => form_page(&ctx, StatusCode::OK, Some(id.0), &values_of(&c), &[]),
        Err(e) => app_error(&ctx, e),
    }
}

pub async fn update(
    ctx: Ctx,
    Path(raw): Path<String>,
    Form(form): Form<Vec<(String, String)>>,
) -> Response {
    let actor = step!(ctx.form_actor(&form, Permission::WriteCustomers));
    let Some(id) = customer_id(&raw) else {
        return ctx.not_found();
    };
    let kind = field(&form, "kind").parse::<CustomerKind>().ok();
    let patch = CustomerPatchInput {
        name: Some(field(&form, "name").to_owned()),
        kind,
        external_id: clearable(field(&form, "external_id")),
        email: clearable(field(&form, "email")),
        phone: clearable(field(&form, "phone")),
        birthday: clearable(field(&form, "birthday")),
        locale: clearable(field(&form, "locale")),
        region: clearable(field(&form, "region")),
        acquisition_source: clearable(field(&form, "acquisition_source")),
        acquisition_channel: clearable(field(&form, "acquisition_channel")),
        account_id: None,
        owner_id: None,
        tags: Some(tags(field(&form, "tags"))),
        contact_points: None,
        preferences: None,
        custom_fields: None,
        consents: Vec::new(),
    };
    let expected = field(&form, "version").parse::<i64>().ok();
    match ctx
        .state
        .app
        .update_customer(&actor, id, patch, expected)
        .await
    {
        Ok(c) => see_other(&format!("/customers/{}", c.id)),
        Err(AppError::PreconditionFailed { current }) => {
            let mut values = form.clone();
            values.retain(|(k, _)| k != "version");
            values.push(("version".into(), current.to_string()));
            form_page(
                &ctx,
                StatusCode::CONFLICT,
                Some(id.0),
                &values,
                &[("version".into(), ctx.t("error-changed"))],
            )
        }
        Err(e @ (AppError::Invalid(_) | AppError::Conflict(_))) => form_page(
            &ctx,
            StatusCode::UNPROCESSABLE_ENTITY,
            Some(id.0),
            &form,
            &errors_of(&e),
        ),
        Err(e) => app_error(&ctx, e),
    }
}

pub async fn delete_form(ctx: Ctx, Path(raw): Path<String>) -> Response {
    let actor = step!(ctx.allowed(Permission::DeleteCustomers));
    let Some(id) = customer_id(&raw) else {
        return ctx.not_found();
    };
    match ctx.state.app.get_customer(&actor, id).await {
        Ok((c, _)) => page(
            &ctx,
            StatusCode::OK,
            "customer_delete.html",
            None,
            minijinja::context! { id => id.0, name => display_name(&c.data.name),
            orders => c.stats.orders_count, interactions => c.stats.interactions_count },
        ),
        Err(e) => app_error(&ctx, e),
    }
}

pub async fn delete(
    ctx: Ctx,
    Path(raw): Path<String>,
    Form(form): Form<Vec<(String, String)>>,
) -> Response {
    let actor = step!(ctx.form_actor(&form, Permission::DeleteCustomers));
    let Some(id) = customer_id(&raw) else {
        return ctx.not_found();
    };
    match ctx.state.app.delete_customer(&actor, id).await {
        Ok(()) => see_other("/customers?notice=deleted"),
        Err(e) => app_error(&ctx, e),
    }
}

/// After a successful post: the page to see, fetched with GET.
pub(crate) fn see_other(to: &str) -> Response {
    let mut res = Redirect::to(to).into_response();
    *res.status_mut() = StatusCode::SEE_OTHER;
    res
}
