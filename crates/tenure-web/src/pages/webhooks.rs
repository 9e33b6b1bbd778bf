//! `/webhooks`: the endpoints told of customer, stage, ticket and loyalty events (admins),
//! with the latest deliveries and how each went.

use axum::Form;
use axum::extract::Path;
use axum::http::StatusCode;
use axum::response::Response;
use serde::Serialize;
use tenure_app::PageRequest;
use tenure_app::webhooks::EndpointInput;
use tenure_domain::access::Permission;
use tenure_domain::ids::WebhookId;
use tenure_domain::webhook::WebhookEvent;

use super::customers::see_other;
use super::service::Zone;
use super::{field_errors, options, path_id};
use crate::render::{app_error, page, ser};
use crate::session::{Ctx, field};

#[derive(Serialize)]
struct EndpointView {
    id: i64,
    url: String,
    description: String,
    events: Vec<String>,
    enabled: bool,
}

#[derive(Serialize)]
struct DeliveryView {
    id: i64,
    endpoint: String,
    event: String,
    status: String,
    attempts: i64,
    code: Option<i64>,
    error: Option<String>,
    at: String,
    due: String,
}

#[derive(Serialize, Default)]
struct Draft {
    url: String,
    description: String,
    events: Vec<String>,
}

pub async fn list(ctx: Ctx) -> Response {
    let actor = step!(ctx.allowed(Permission::ManageUsers));
    show(&ctx, &actor, Draft::default(), None, None, StatusCode::OK).await
}

async fn show(
    ctx: &Ctx,
    actor: &tenure_domain::changes::Actor,
    draft: Draft,
    errors: Option<std::collections::BTreeMap<String, String>>,
    secret: Option<String>,
    status: StatusCode,
) -> Response {
    let app = &ctx.state.app;
    let zone = step!(Zone::of(ctx, actor).await);
    let endpoints = fetch!(ctx, app.webhooks(actor).await);
    let deliveries = fetch!(
        ctx,
        app.webhook_deliveries(actor, None, &PageRequest::first(50))
            .await
    );
    let url_of = |id: WebhookId| {
        endpoints
            .iter()
            .find(|e| e.id == id)
            .map(|e| e.url.clone())
            .unwrap_or_default()
    };
    let rows: Vec<DeliveryView> = deliveries
        .items
        .iter()
        .map(|d| DeliveryView {
            id: d.id.0,
            endpoint: url_of(d.endpoint_id),
            event: d.event.to_string(),
            status: d.status.to_string(),
            attempts: d.attempts,
            code: d.response_code,
            error: d.last_error.clone(),
            at: zone.at(d.delivered_at.unwrap_or(d.created_at)),
            due: zone.at(d.due_at),
        })
        .collect();
    let list: Vec<EndpointView> = endpoints
        .iter()
        .map(|e| EndpointView {
            id: e.id.0,
            url: e.url.clone(),
            description: e.description.clone(),
            events: e.events.iter().map(ToString::to_string).collect(),
            enabled: e.enabled,
        })
        .collect();
    page(
        ctx,
        status,
        "webhooks.html",
        None,
        minijinja::context! {
            endpoints => ser(&list), deliveries => ser(&rows), draft => ser(&draft),
            errors => errors.unwrap_or_default(), secret,
            all_events => options(WebhookEvent::ALL),
        },
    )
}

fn chosen_events(form: &[(String, String)]) -> Vec<WebhookEvent> {
    form.iter()
        .filter(|(k, _)| k == "events")
        .filter_map(|(_, v)| v.parse().ok())
        .collect()
}

pub async fn create(ctx: Ctx, Form(form): Form<Vec<(String, String)>>) -> Response {
    let actor = step!(ctx.form_actor(&form, Permission::ManageUsers));
    let events = chosen_events(&form);
    let draft = Draft {
        url: field(&form, "url").trim().to_owned(),
        description: field(&form, "description").trim().to_owned(),
        events: events.iter().map(ToString::to_string).collect(),
    };
    let input = EndpointInput {
        url: draft.url.clone(),
        description: draft.description.clone(),
        events,
        enabled: true,
    };
    match ctx.state.app.create_webhook(&actor, input).await {
        Ok((_, secret)) => {
            show(
                &ctx,
                &actor,
                Draft::default(),
                None,
                Some(secret),
                StatusCode::OK,
            )
            .await
        }
        Err(e) => match field_errors(&e) {
            Some(errors) => {
                show(
                    &ctx,
                    &actor,
                    draft,
                    Some(errors),
                    None,
                    StatusCode::UNPROCESSABLE_ENTITY,
                )
                .await
            }
            None => app_error(&ctx, e),
        },
    }
}

/// Switch an endpoint on or off (`action=toggle`), or remove it (`action=delete`).
pub async fn action(
    ctx: Ctx,
    Path(raw): Path<String>,
    Form(form): Form<Vec<(String, String)>>,
) -> Response {
    let actor = step!(ctx.form_actor(&form, Permission::ManageUsers));
    let Some(id) = path_id(&raw).map(WebhookId) else {
        return ctx.not_found();
    };
    let app = &ctx.state.app;
    let done = match field(&form, "action") {
        "delete" => app.delete_webhook(&actor, id).await,
        _ => {
            let e = fetch!(&ctx, app.webhook(&actor, id).await);
            app.update_webhook(
                &actor,
                id,
                EndpointInput {
                    url: e.url,
                    description: e.description,
                    events: e.events,
                    enabled: !e.enabled,
                },
            )
            .await
            .map(|_| ())
        }
    };
    match done {
        Ok(()) => see_other("/webhooks"),
        Err(e) => app_error(&ctx, e),
    }
}
