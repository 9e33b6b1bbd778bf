//! The audit log page, and a customer's privacy requests: everything held about them as
//! JSON or as a bundle of CSV files, and their erasure.

use std::io::Write;

use axum::Form;
use axum::body::Body;
use axum::extract::Path;
use axum::http::StatusCode;
use axum::response::Response;
use serde::Serialize;
use tenure_app::PageRequest;
use tenure_app::model::{ChangeFilter, ChangeRecord};
use tenure_app::privacy::CustomerExport;
use tenure_domain::access::Permission;
use tenure_domain::changes::{ActorKind, Entity};
use tenure_domain::ids::CustomerId;

use super::customers::see_other;
use super::exchange::attachment;
use super::service::Zone;
use super::{names, options, param, path_id, query_pairs};
use crate::render::{app_error, page, ser};
use crate::session::Ctx;

/// Longest value shown in a cell of the log; the API has them whole.
const VALUE_SHOWN: usize = 120;

#[derive(Serialize)]
struct FieldView {
    name: String,
    before: Option<String>,
    after: String,
    /// Times are stored as microseconds; shown as dates in the business's zone.
    is_time: bool,
}

/// Whether a column holds a time (`created_at`, `resolution_due`, `tier_since`, ...).
fn is_time_column(name: &str) -> bool {
    name.ends_with("_at") || name.ends_with("_due") || name.ends_with("_since")
}

/// A stored value as the page shows it: a time column's microseconds as a time.
fn shown_as(name: &str, v: &serde_json::Value, zone: &Zone) -> (String, bool) {
    if is_time_column(name)
        && let Some(t) = v.as_i64().and_then(chrono::DateTime::from_timestamp_micros)
    {
        return (zone.at(t), true);
    }
    (shown(v), false)
}

#[derive(Serialize)]
struct EntryView {
    at: String,
    who: String,
    source: String,
    entity: String,
    entity_id: Option<i64>,
    operation: String,
    customer_id: Option<i64>,
    customer: Option<String>,
    detail: Option<String>,
    fields: Vec<FieldView>,
    before_unknown: bool,
}

fn shown(v: &serde_json::Value) -> String {
    let text = match v {
        serde_json::Value::Null => "–".to_owned(),
        serde_json::Value::String(s) if s.is_empty() => "\"\"".to_owned(),
        serde_json::Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    if text.chars().count() > VALUE_SHOWN {
        let cut: String = text.chars().take(VALUE_SHOWN).collect();
        format!("{cut}…")
    } else {
        text
    }
}

fn entry_view(
    r: &ChangeRecord,
    names: &std::collections::HashMap<CustomerId, String>,
    zone: &Zone,
) -> EntryView {
    let who = match r.actor_kind {
        ActorKind::Token | ActorKind::User => r.actor_name.clone(),
        kind => format!("{kind}:{}", r.actor_name),
    };
    let created = r.change.operation == tenure_domain::changes::Operation::Create;
    let fields: Vec<FieldView> = r
        .fields
        .as_ref()
        .and_then(|f| f.as_object())
        .map(|f| {
            f.iter()
                .map(|(name, change)| {
                    let (after, is_time) = change
                        .get("after")
                        .map(|v| shown_as(name, v, zone))
                        .unwrap_or_default();
                    FieldView {
                        name: name.clone(),
                        // A new record had nothing before.
                        before: change
                            .get("before")
                            .filter(|_| !created)
                            .map(|v| shown_as(name, v, zone).0),
                        after,
                        is_time,
                    }
                })
                .collect()
        })
        .unwrap_or_default();
    // A record last written before values were kept: what it held before is not known.
    let before_unknown =
        !created && !fields.is_empty() && fields.iter().all(|f| f.before.is_none());
    EntryView {
        at: zone.at(r.at),
        who,
        source: r.source.to_string(),
        entity: r.change.entity.to_string(),
        entity_id: r.change.entity_id,
        operation: r.change.operation.to_string(),
        customer_id: r.change.customer_id.map(|c| c.0),
        customer: r.change.customer_id.and_then(|c| names.get(&c).cloned()),
        detail: r.change.detail.clone(),
        fields,
        before_unknown,
    }
}

/// `/audit?customer=&user=&since=&entity=`: who changed what, newest first.
pub async fn list(ctx: Ctx) -> Response {
    let actor = step!(ctx.allowed(Permission::ReadAudit));
    let app = &ctx.state.app;
    let pairs = query_pairs(&ctx.query);
    let zone = step!(Zone::of(&ctx, &actor).await);
    let customer = param(&pairs, "customer").unwrap_or_default().to_owned();
    let user = param(&pairs, "user").unwrap_or_default().to_owned();
    let since = param(&pairs, "since").unwrap_or_default().to_owned();
    let entity = param(&pairs, "entity").unwrap_or_default().to_owned();
    let mut errors: Vec<(String, String)> = Vec::new();
    let customer_id = match customer.as_str() {
        "" => None,
        raw => match path_id(raw) {
            Some(id) => Some(CustomerId(id)),
            None => {
                errors.push(("customer".into(), ctx.t("audit-bad-customer")));
                None
            }
        },
    };
    let since_at = match since.as_str() {
        "" => None,
        raw => match chrono::NaiveDate::parse_from_str(raw, "%Y-%m-%d")
            .ok()
            .and_then(|d| d.and_hms_opt(0, 0, 0))
            .and_then(|d| d.and_local_timezone(zone.tz()).earliest())
        {
            Some(t) => Some(t.with_timezone(&chrono::Utc)),
            None => {
                errors.push(("since".into(), ctx.t("audit-bad-since")));
                None
            }
        },
    };
    let entity_kind = entity.parse::<Entity>().ok();
    let filter = ChangeFilter {
        customer_id,
        actor: (!user.is_empty()).then(|| user.clone()),
        since: since_at,
        entity: entity_kind,
        ..ChangeFilter::default()
    };
    let request = PageRequest {
        cursor: param(&pairs, "cursor").map(str::to_owned),
        limit: Some(50),
    };
    let listed = if errors.is_empty() {
        fetch!(&ctx, app.audit_log(&actor, &filter, &request).await)
    } else {
        tenure_app::Listed {
            items: Vec::new(),
            next_cursor: None,
        }
    };
    let names = step!(
        names(
            &ctx,
            &actor,
            listed.items.iter().filter_map(|r| r.change.customer_id)
        )
        .await
    );
    let rows: Vec<EntryView> = listed
        .items
        .iter()
        .map(|r| entry_view(r, &names, &zone))
        .collect();
    let more = listed
        .next_cursor
        .map(|c| super::next_page("/audit", &pairs, c));
    let (retention, own_customers) = if actor.allows(Permission::Privacy) {
        let s = fetch!(&ctx, app.privacy_settings(&actor).await);
        (
            s.retention_days.map(|d| d.to_string()),
            s.agents_own_customers,
        )
    } else {
        (None, false)
    };
    page(
        &ctx,
        StatusCode::OK,
        "audit.html",
        None,
        minijinja::context! {
            rows => ser(&rows), more, errors,
            customer, user, since, entity,
            entities => options(Entity::ALL),
            may_privacy => actor.allows(Permission::Privacy),
            retention, own_customers, notice => param(&pairs, "notice"),
            retention_min => tenure_app::privacy::RETENTION_MIN_DAYS,
        },
    )
}

/// Saves the retention period (empty: keep for ever).
pub async fn save_retention(ctx: Ctx, Form(form): Form<Vec<(String, String)>>) -> Response {
    let actor = step!(ctx.form_actor(&form, Permission::Privacy));
    let raw = crate::session::field(&form, "retention_days")
        .trim()
        .to_owned();
    let days = if raw.is_empty() {
        None
    } else {
        match raw.parse::<u32>() {
            Ok(d) => Some(d),
            Err(_) => {
                return app_error(
                    &ctx,
                    tenure_app::AppError::field("retention_days", ctx.t("audit-retention-number")),
                );
            }
        }
    };
    let settings = tenure_app::privacy::PrivacySettings {
        retention_days: days,
        agents_own_customers: crate::session::field(&form, "agents_own_customers") == "1",
    };
    match ctx.state.app.set_privacy_settings(&actor, settings).await {
        Ok(_) => see_other("/audit?notice=retention"),
        Err(e) => app_error(&ctx, e),
    }
}

fn customer_id(raw: &str) -> Option<CustomerId> {
    path_id(raw).map(CustomerId)
}

async fn exported(ctx: &Ctx, raw: &str) -> Result<CustomerExport, Response> {
    let actor = ctx.allowed(Permission::Privacy)?;
    let Some(id) = customer_id(raw) else {
        return Err(ctx.not_found());
    };
    ctx.state
        .app
        .export_customer(&actor, id)
        .await
        .map_err(|e| app_error(ctx, e))
}

/// Everything held about the customer as one JSON document.
pub async fn export_json(ctx: Ctx, Path(raw): Path<String>) -> Response {
    let export = step!(exported(&ctx, &raw).await);
    let body = serde_json::to_vec_pretty(&export).unwrap_or_default();
    attachment(
        Body::from(body),
        "application/json",
        &format!("customer-{}.json", export.customer_id.0),
    )
}

/// Everything held about the customer as a ZIP of CSV files, one per table (cells a
/// spreadsheet would run as a formula are written as text).
pub async fn export_zip(ctx: Ctx, Path(raw): Path<String>) -> Response {
    let export = step!(exported(&ctx, &raw).await);
    match bundle(&export) {
        Ok(bytes) => attachment(
            Body::from(bytes),
            "application/zip",
            &format!("customer-{}.zip", export.customer_id.0),
        ),
        Err(e) => app_error(&ctx, tenure_app::AppError::Internal(e)),
    }
}

fn bundle(export: &CustomerExport) -> Result<Vec<u8>, String> {
    let mut zip = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let options = zip::write::SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Deflated);
    for table in &export.tables {
        let mut columns: Vec<&String> = Vec::new();
        for row in &table.rows {
            for k in row.keys() {
                if !columns.contains(&k) {
                    columns.push(k);
                }
            }
        }
        let mut csv = csv::Writer::from_writer(Vec::new());
        csv.write_record(&columns).map_err(|e| e.to_string())?;
        for row in &table.rows {
            let cells = columns.iter().map(|c| match row.get(*c) {
                None | Some(serde_json::Value::Null) => String::new(),
                Some(serde_json::Value::String(s)) => {
                    tenure_app::export::spreadsheet_safe(s.clone())
                }
                Some(other) => other.to_string(),
            });
            csv.write_record(cells).map_err(|e| e.to_string())?;
        }
        let bytes = csv.into_inner().map_err(|e| e.to_string())?;
        zip.start_file(format!("{}.csv", table.table), options)
            .map_err(|e| e.to_string())?;
        zip.write_all(&bytes).map_err(|e| e.to_string())?;
    }
    let out = zip.finish().map_err(|e| e.to_string())?;
    Ok(out.into_inner())
}

/// The confirmation before erasing a customer.
pub async fn erase_form(ctx: Ctx, Path(raw): Path<String>) -> Response {
    let actor = step!(ctx.allowed(Permission::Privacy));
    let Some(id) = customer_id(&raw) else {
        return ctx.not_found();
    };
    match ctx.state.app.get_customer(&actor, id).await {
        Ok((c, _)) => page(
            &ctx,
            StatusCode::OK,
            "customer_erase.html",
            None,
            minijinja::context! { id => id.0, name => tenure_domain::customer::display_name(&c.data.name) },
        ),
        Err(e) => app_error(&ctx, e),
    }
}

pub async fn erase(
    ctx: Ctx,
    Path(raw): Path<String>,
    Form(form): Form<Vec<(String, String)>>,
) -> Response {
    let actor = step!(ctx.form_actor(&form, Permission::Privacy));
    let Some(id) = customer_id(&raw) else {
        return ctx.not_found();
    };
    match ctx.state.app.erase_customer(&actor, id).await {
        Ok(()) => see_other(&format!("/customers/{}?notice=erased", id.0)),
        Err(e) => app_error(&ctx, e),
    }
}
