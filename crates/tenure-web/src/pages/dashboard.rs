//! The dashboard: how many customers, how many new and active in the range, revenue by
//! month, the spread of customer value, who is at risk, where new customers come from.

use axum::http::StatusCode;
use axum::response::Response;
use chrono::{Duration, NaiveDate, Utc};
use serde::Serialize;
use tenure_app::PageRequest;
use tenure_domain::access::Permission;

use crate::charts;
use crate::render::{app_error, page, ser};
use crate::session::Ctx;

/// The range shown when none is asked for: the last twelve months up to today.
fn default_range(today: NaiveDate) -> (NaiveDate, NaiveDate) {
    let from = today
        .checked_sub_months(chrono::Months::new(12))
        .map_or(today, |d| d + Duration::days(1));
    (from, today)
}

#[derive(Serialize)]
struct AtRiskRow {
    id: i64,
    name: String,
    p_alive: f64,
    clv: f64,
    value_at_risk: f64,
}

#[derive(Serialize)]
struct Preset {
    key: &'static str,
    from: String,
    to: String,
    current: bool,
}

pub async fn show(ctx: Ctx) -> Response {
    let actor = step!(ctx.allowed(Permission::ReadAggregates));
    let pairs = super::query_pairs(&ctx.query);
    let today = Utc::now().date_naive();
    let (mut from, mut to) = default_range(today);
    let mut range_error = None;
    let parse =
        |name: &str| super::param(&pairs, name).map(|v| NaiveDate::parse_from_str(v, "%Y-%m-%d"));
    match (parse("from"), parse("to")) {
        (Some(Ok(f)), Some(Ok(t))) if f <= t => (from, to) = (f, t),
        (Some(Ok(f)), None) if f <= today => from = f,
        (None, None) => {}
        _ => range_error = Some(ctx.t("dashboard-range-invalid")),
    }
    let d = fetch!(&ctx, ctx.state.app.dashboard(&actor, from, to).await);
    let at_risk = match ctx.state.app.at_risk(&actor, &PageRequest::first(10)).await {
        Ok(l) => l.items,
        Err(e) => return app_error(&ctx, e),
    };
    let loyalty =
        super::loyalty::dashboard_view(fetch!(&ctx, ctx.state.app.loyalty_summary(&actor).await));
    let lang = ctx.lang;
    let currency = d.currency.clone();
    let exp = tenure_domain::money::minor_exponent(&currency);
    let scale = 10f64.powi(exp as i32);
    let months: Vec<String> = d
        .revenue_by_month
        .iter()
        .map(|m| lang.month(m.year, m.month))
        .collect();
    let revenue: Vec<f64> = d
        .revenue_by_month
        .iter()
        .map(|m| m.value_minor as f64 / scale)
        .collect();
    let money0 = |v: f64| lang.money(v, &currency, 0);
    let revenue_chart = charts::bars(&ctx.t("dashboard-revenue"), &months, &revenue, &money0);
    let band_labels: Vec<String> = d
        .clv_bands
        .iter()
        .map(|(lo, hi, _)| match hi {
            Some(hi) if *lo == 0.0 => format!("< {}", lang.money(*hi, &currency, 0)),
            Some(hi) => format!("{}–{}", lang.decimal(*lo, 0), lang.decimal(*hi, 0)),
            None => format!("≥ {}", lang.money(*lo, &currency, 0)),
        })
        .collect();
    let band_counts: Vec<f64> = d.clv_bands.iter().map(|b| b.2 as f64).collect();
    let clv_chart = charts::bars(&ctx.t("dashboard-clv"), &band_labels, &band_counts, &|v| {
        lang.number(v.round() as i64)
    });
    let unknown = ctx.t("dashboard-channel-unknown");
    let acquisition: Vec<(String, u64, f64)> = {
        let total: u64 = d.acquisition.iter().map(|a| a.1).sum();
        d.acquisition
            .iter()
            .map(|(c, n)| {
                (
                    c.clone().unwrap_or_else(|| unknown.clone()),
                    *n,
                    if total > 0 {
                        *n as f64 / total as f64
                    } else {
                        0.0
                    },
                )
            })
            .collect()
    };
    let at_risk: Vec<AtRiskRow> = at_risk
        .into_iter()
        .map(|(c, p)| AtRiskRow {
            id: c.id.0,
            name: tenure_domain::customer::display_name(&c.data.name),
            p_alive: p.p_alive,
            clv: p.clv,
            value_at_risk: p.value_at_risk(),
        })
        .collect();
    let presets: Vec<Preset> = [
        ("dashboard-last-30", Duration::days(29)),
        ("dashboard-last-90", Duration::days(89)),
        ("dashboard-last-365", Duration::days(364)),
        ("dashboard-last-3y", Duration::days(3 * 365 - 1)),
    ]
    .into_iter()
    .map(|(key, back)| {
        let f = today - back;
        Preset {
            key,
            from: f.to_string(),
            to: today.to_string(),
            current: f == from && today == to,
        }
    })
    .collect();
    page(
        &ctx,
        if range_error.is_some() {
            StatusCode::BAD_REQUEST
        } else {
            StatusCode::OK
        },
        "dashboard.html",
        None,
        minijinja::context! {
            from => from.to_string(), to => to.to_string(), range_error, presets => ser(&presets),
            currency, customers => d.customers, new_customers => d.new_customers,
            active_customers => d.active_customers, revenue_minor => d.revenue_minor,
            orders => d.orders, predicted => d.predicted,
            revenue_chart, clv_chart, acquisition, at_risk => ser(&at_risk),
            month_rows => d.revenue_by_month.iter().zip(&months).map(|(m, l)| (l.clone(), m.orders, m.value_minor)).collect::<Vec<_>>(),
            computed_at => d.computed_at.to_rfc3339(),
            loyalty => ser(&loyalty),
        },
    )
}
