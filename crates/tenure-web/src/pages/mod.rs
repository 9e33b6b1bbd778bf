//! The pages, by area. Each handler takes the request context ([`Ctx`]), checks what the
//! user may do, calls the application and renders a template.

/// The value of a step of a page, or the response that ends the request early (the
/// sign-in page, a 403 or 404 page).
macro_rules! step {
    ($e:expr) => {
        match $e {
            Ok(v) => v,
            Err(res) => return res,
        }
    };
}

/// The value of a use case, or the error page for its failure.
macro_rules! fetch {
    ($ctx:expr, $e:expr) => {
        match $e {
            Ok(v) => v,
            Err(e) => return crate::render::app_error($ctx, e),
        }
    };
}

mod analytics;
mod audit;
mod auth;
mod customers;
mod dashboard;
mod duplicates;
mod exchange;
mod journeys;
mod lifecycle;
mod loyalty;
mod service;
mod webhooks;

use std::collections::{BTreeMap, HashMap};

use axum::Router;
use axum::response::Response;
use axum::routing::{get, post};
use tenure_app::AppError;
use tenure_domain::changes::Actor;
use tenure_domain::ids::CustomerId;

use crate::WebState;
use crate::session::Ctx;

pub fn routes() -> Router<WebState> {
    Router::new()
        .route("/", get(dashboard::show))
        .route("/login", get(auth::form).post(auth::sign_in))
        .route("/logout", post(auth::sign_out))
        .route("/customers", get(customers::list).post(customers::create))
        .route("/customers/new", get(customers::new_form))
        .route(
            "/customers/{id}",
            get(customers::show).post(customers::update),
        )
        .route("/customers/{id}/edit", get(customers::edit_form))
        .route("/customers/{id}/timeline", get(customers::timeline))
        .route(
            "/customers/{id}/delete",
            get(customers::delete_form).post(customers::delete),
        )
        .route("/customers/{id}/export.json", get(audit::export_json))
        .route("/customers/{id}/export.zip", get(audit::export_zip))
        .route(
            "/customers/{id}/erase",
            get(audit::erase_form).post(audit::erase),
        )
        .route("/audit", get(audit::list))
        .route("/audit/retention", post(audit::save_retention))
        .route("/webhooks", get(webhooks::list).post(webhooks::create))
        .route("/webhooks/{id}", post(webhooks::action))
        .route("/duplicates", get(duplicates::list))
        .route("/duplicates/merge", post(duplicates::merge))
        .route("/merges/{id}/undo", post(duplicates::undo))
        .route(
            "/import",
            get(exchange::import_form)
                .post(exchange::upload)
                .layer(axum::extract::DefaultBodyLimit::max(exchange::UPLOAD_MAX)),
        )
        .route("/import/{id}", get(exchange::import_status))
        .route("/import/{id}/rejected.csv", get(exchange::rejected_csv))
        .route("/export", get(exchange::export_page))
        .route("/export/{kind}", get(exchange::download))
        .route("/analytics", get(analytics::show))
        .route("/analytics/refresh", post(analytics::refresh))
        .route("/retention", get(lifecycle::retention))
        .route("/retention/refresh", post(lifecycle::refresh))
        .route(
            "/segments",
            get(lifecycle::segments).post(lifecycle::create_segment),
        )
        .route("/segments/new", get(lifecycle::new_segment))
        .route(
            "/segments/{id}",
            get(lifecycle::show_segment).post(lifecycle::update_segment),
        )
        .route("/profit", get(lifecycle::profit))
        .route("/customers/{id}/lifecycle", post(lifecycle::edit_customer))
        .route("/customers/{id}/loyalty", post(loyalty::customer_action))
        .route("/loyalty", get(loyalty::show))
        .route("/loyalty/program", post(loyalty::save_program))
        .route("/loyalty/rewards", post(loyalty::create_reward))
        .route("/loyalty/rewards/{id}/toggle", post(loyalty::toggle_reward))
        .route("/loyalty/campaigns", post(loyalty::create_campaign))
        .route("/loyalty/run", post(loyalty::run))
        .route("/m/{token}", get(loyalty::member))
        .route(
            "/tickets",
            get(service::tickets).post(service::create_ticket),
        )
        .route(
            "/tickets/{id}",
            get(service::ticket).post(service::ticket_action),
        )
        .route("/tasks", get(service::tasks).post(service::create_task))
        .route("/tasks/{id}", post(service::task_action))
        .route(
            "/surveys",
            get(service::surveys).post(service::create_survey),
        )
        .route(
            "/surveys/{id}",
            get(service::survey).post(service::survey_action),
        )
        .route("/service", get(service::service))
        .route("/service/settings", post(service::save_settings))
        .route(
            "/service/calendar",
            post(service::import_calendar)
                .layer(axum::extract::DefaultBodyLimit::max(service::CALENDAR_MAX)),
        )
        .route("/service/sla-scan", post(service::sla_scan))
        .route(
            "/s/{token}",
            get(service::public_form).post(service::public_answer),
        )
        .route("/journeys", get(journeys::list))
        .route("/journeys/settings", post(journeys::save_settings))
        .route("/journeys/{id}", get(journeys::show).post(journeys::action))
        .route(
            "/templates",
            get(journeys::templates).post(journeys::create_template),
        )
        .route(
            "/templates/{id}",
            get(journeys::template).post(journeys::template_action),
        )
        .route(
            "/u/{token}",
            get(journeys::unsubscribe_form).post(journeys::unsubscribe),
        )
        .route("/assets/{name}", get(crate::assets::serve))
}

/// A query string's pairs.
pub(crate) fn query_pairs(q: &str) -> Vec<(String, String)> {
    serde_urlencoded::from_str(q).unwrap_or_default()
}

/// The value of `name` in `pairs`, trimmed; `None` when absent or empty.
pub(crate) fn param<'a>(pairs: &'a [(String, String)], name: &str) -> Option<&'a str> {
    pairs
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.trim())
        .filter(|v| !v.is_empty())
}

/// The address of the next page of a list at `path`: the request's other parameters and
/// `cursor`.
pub(crate) fn next_page(path: &str, pairs: &[(String, String)], cursor: String) -> String {
    let mut q: Vec<(String, String)> = pairs
        .iter()
        .filter(|(k, _)| k != "cursor")
        .cloned()
        .collect();
    q.push(("cursor".into(), cursor));
    format!(
        "{path}?{}",
        serde_urlencoded::to_string(&q).unwrap_or_default()
    )
}

/// A record id from the address: a positive integer, else `None` (a 404).
pub(crate) fn path_id(raw: &str) -> Option<i64> {
    raw.parse::<i64>().ok().filter(|i| *i > 0)
}

/// Field → message of a use case's refusal, to show on the form; other errors go to the
/// error page.
pub(crate) fn field_errors(e: &AppError) -> Option<BTreeMap<String, String>> {
    match e {
        AppError::Invalid(inv) | AppError::BadParameter(inv) => Some(
            inv.0
                .iter()
                .map(|f| (f.field.clone(), f.message.clone()))
                .collect(),
        ),
        _ => None,
    }
}

/// The names of customers by id, to show beside what is about them.
pub(crate) async fn names(
    ctx: &Ctx,
    actor: &Actor,
    ids: impl Iterator<Item = CustomerId>,
) -> Result<HashMap<CustomerId, String>, Response> {
    let mut ids: Vec<CustomerId> = ids.collect();
    ids.sort_unstable_by_key(|c| c.0);
    ids.dedup();
    ctx.state
        .app
        .customer_names(actor, &ids)
        .await
        .map_err(|e| crate::render::app_error(ctx, e))
}

/// The values of a closed set, as the forms offer them.
pub(crate) fn options<T: Copy + std::fmt::Display>(all: &[T]) -> Vec<String> {
    all.iter().map(ToString::to_string).collect()
}
