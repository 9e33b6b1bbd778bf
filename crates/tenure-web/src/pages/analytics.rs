//! The customer-base models: the latest fit with its standard errors, a holdout check
//! (expected against actual repeat purchases, over time and by how often customers bought
//! before), and refreshing the models in the background.

use axum::Form;
use axum::http::StatusCode;
use axum::response::Response;
use chrono::{Duration, NaiveDate, Utc};
use serde::Serialize;
use tenure_app::PageRequest;
use tenure_app::analytics::Model;
use tenure_domain::access::Permission;
use tenure_domain::jobs::JobKind;

use super::customers::see_other;
use super::{param, query_pairs};
use crate::charts::{self, Series};
use crate::render::{app_error, page, ser};
use crate::session::Ctx;

#[derive(Serialize)]
struct Fit {
    model: String,
    params: Vec<(String, f64, Option<f64>)>,
    log_likelihood: f64,
    customers: i64,
    calibration_end: String,
    fitted_at: String,
}

fn fit_view(f: &tenure_app::model::StoredFit) -> Fit {
    let ses = &f.params["standard_errors"];
    let mut params = Vec::new();
    if let Some(map) = f.params.as_object() {
        for (k, v) in map {
            if let Some(x) = v.as_f64()
                && !matches!(
                    k.as_str(),
                    "log_likelihood" | "customers" | "fit_seconds" | "iterations"
                )
            {
                params.push((k.clone(), x, ses[k].as_f64()));
            }
        }
    }
    Fit {
        model: f.model.clone(),
        params,
        log_likelihood: f.log_likelihood,
        customers: f.customers,
        calibration_end: f.calibration_end.clone(),
        fitted_at: f.fitted_at.to_rfc3339(),
    }
}

pub async fn show(ctx: Ctx) -> Response {
    let actor = step!(ctx.allowed(Permission::ReadAggregates));
    let fits = match ctx.state.app.latest_fits(&actor).await {
        Ok(f) => f.iter().map(fit_view).collect::<Vec<_>>(),
        Err(e) => return app_error(&ctx, e),
    };
    let jobs = match ctx
        .state
        .app
        .list_jobs(&actor, None, &PageRequest::first(50))
        .await
    {
        Ok(l) => l.items,
        Err(e) => return app_error(&ctx, e),
    };
    let refresh = jobs
        .iter()
        .find(|j| j.kind == JobKind::ModelRefresh)
        .map(|j| {
            (
                j.id.0,
                j.status.to_string(),
                j.updated_at.to_rfc3339(),
                j.last_error.clone(),
            )
        });
    let running = refresh
        .as_ref()
        .is_some_and(|r| r.1 == "queued" || r.1 == "running");
    let pairs = query_pairs(&ctx.query);
    let today = Utc::now().date_naive();
    let default_end = today - Duration::weeks(39);
    let asked = param(&pairs, "calibration_end");
    let mut holdout_error = None;
    let mut holdout = None;
    if let Some(raw) = asked {
        match NaiveDate::parse_from_str(raw, "%Y-%m-%d") {
            Ok(end) => match ctx
                .state
                .app
                .holdout_check(&actor, Model::BgNbd, end, None)
                .await
            {
                Ok(r) => holdout = Some(r.json),
                Err(e) if !e.field_errors().is_empty() => {
                    holdout_error = Some(e.field_errors()[0].message.clone());
                }
                Err(e) => return app_error(&ctx, e),
            },
            Err(_) => holdout_error = Some(ctx.t("analytics-date-invalid")),
        }
    }
    let lang = ctx.lang;
    let (tracking_chart, frequency_chart, holdout_summary) = match &holdout {
        Some(h) => {
            let points = h["tracking"].as_array().cloned().unwrap_or_default();
            let labels: Vec<String> = points
                .iter()
                .map(|p| {
                    p["week_ending"]
                        .as_str()
                        .and_then(|d| NaiveDate::parse_from_str(d, "%Y-%m-%d").ok())
                        .map(|d| lang.date(d))
                        .unwrap_or_default()
                })
                .collect();
            let column = |rows: &[serde_json::Value], k: &str| -> Vec<f64> {
                rows.iter().map(|r| r[k].as_f64().unwrap_or(0.0)).collect()
            };
            let (a_name, e_name) = (ctx.t("analytics-actual"), ctx.t("analytics-expected"));
            // Actual against expected, as two lines.
            let compare = |title: &str,
                           labels: &[String],
                           actual: &[f64],
                           expected: &[f64],
                           fmt: &dyn Fn(f64) -> String| {
                charts::lines(
                    title,
                    labels,
                    &[
                        Series {
                            name: &a_name,
                            values: actual,
                            class: "line-a",
                        },
                        Series {
                            name: &e_name,
                            values: expected,
                            class: "line-b",
                        },
                    ],
                    fmt,
                )
            };
            let tracking = compare(
                &ctx.t("analytics-tracking"),
                &labels,
                &column(&points, "actual_cumulative"),
                &column(&points, "predicted_cumulative"),
                &|v| lang.number(v.round() as i64),
            );
            let buckets = h["by_frequency"].as_array().cloned().unwrap_or_default();
            let labels: Vec<String> = buckets
                .iter()
                .map(|b| b["x"].as_str().unwrap_or("").to_owned())
                .collect();
            let frequency = compare(
                &ctx.t("analytics-by-frequency"),
                &labels,
                &column(&buckets, "actual"),
                &column(&buckets, "predicted"),
                &|v| lang.decimal(v, 1),
            );
            let summary = (
                h["customers"].as_u64().unwrap_or(0),
                h["calibration_end"].as_str().unwrap_or("").to_owned(),
                h["holdout_end"].as_str().unwrap_or("").to_owned(),
                h["actual_total"].as_f64().unwrap_or(0.0),
                h["predicted_total"].as_f64().unwrap_or(0.0),
                h["relative_error"].as_f64().unwrap_or(0.0),
                buckets
                    .iter()
                    .map(|b| {
                        (
                            b["x"].as_str().unwrap_or("").to_owned(),
                            b["customers"].as_u64().unwrap_or(0),
                            b["actual"].as_f64().unwrap_or(0.0),
                            b["predicted"].as_f64().unwrap_or(0.0),
                        )
                    })
                    .collect::<Vec<_>>(),
            );
            (Some(tracking), Some(frequency), Some(summary))
        }
        None => (None, None, None),
    };
    let notice = (param(&pairs, "notice") == Some("queued")).then(|| ctx.t("analytics-queued"));
    page(
        &ctx,
        StatusCode::OK,
        "analytics.html",
        Some("refresh"),
        minijinja::context! {
            fits => ser(&fits), refresh, running, notice,
            calibration_end => asked.unwrap_or(&default_end.to_string()).to_owned(),
            holdout_error, tracking_chart, frequency_chart, holdout_summary,
            may_refresh => actor.allows(Permission::WriteCatalog),
        },
    )
}

pub async fn refresh(ctx: Ctx, Form(form): Form<Vec<(String, String)>>) -> Response {
    let actor = step!(ctx.form_actor(&form, Permission::WriteCatalog));
    match ctx.state.app.queue_job(&actor, JobKind::ModelRefresh).await {
        Ok(_) => see_other("/analytics?notice=queued"),
        Err(e) => app_error(&ctx, e),
    }
}
