//! The customer's side of messages: the unsubscribe page behind the link every email
//! carries (`/u/{token}`, no sign-in). Opening it asks; the button — or a mail program's
//! one-click POST (RFC 8058) — unsubscribes. The token itself is the authority, so the
//! POST needs no form key: a mail provider sends it from elsewhere.

use axum::extract::Path;
use axum::http::StatusCode;
use axum::response::Response;
use tenure_app::AppError;

use crate::render::{app_error, error_page, page};
use crate::session::Ctx;

fn channel_word(ctx: &Ctx, channel: tenure_domain::journey::Channel) -> String {
    ctx.t(&format!("channel-{channel}"))
}

fn invalid(ctx: &Ctx, e: AppError) -> Response {
    match e {
        AppError::NotFound(_) => {
            error_page(ctx, StatusCode::NOT_FOUND, &ctx.t("unsubscribe-invalid"))
        }
        e => app_error(ctx, e),
    }
}

pub async fn unsubscribe_form(ctx: Ctx, Path(token): Path<String>) -> Response {
    let app = ctx.state.app.clone();
    match app.unsubscribe_target(&token).await {
        Ok((name, channel, done)) => page(
            &ctx,
            StatusCode::OK,
            "unsubscribe.html",
            None,
            minijinja::context! {
                name => name,
                channel => channel_word(&ctx, channel),
                done => done,
                token => token,
            },
        ),
        Err(e) => invalid(&ctx, e),
    }
}

pub async fn unsubscribe(ctx: Ctx, Path(token): Path<String>) -> Response {
    let app = ctx.state.app.clone();
    match app.unsubscribe(&token).await {
        Ok((name, channel)) => page(
            &ctx,
            StatusCode::OK,
            "unsubscribe.html",
            None,
            minijinja::context! {
                name => name,
                channel => channel_word(&ctx, channel),
                done => true,
                token => token,
            },
        ),
        Err(e) => invalid(&ctx, e),
    }
}
